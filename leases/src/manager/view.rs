//! A read-only picture of the manager's state for display and tests.

use super::State;
use crate::brlock::{LockKind, LockOwner};
use crate::lease::LeaseState;
use crate::range::ByteRange;
use crate::types::{FileId, OpenId, OwnerId};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Serialize)]
pub struct OpenView {
    pub id: OpenId,
    pub file: FileId,
    pub owner: OwnerId,
    pub read: bool,
    pub write: bool,
    pub delete: bool,
    pub share: u8,
    pub stat_only: bool,
    pub lease_key: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LeaseView {
    pub file: FileId,
    pub owner: OwnerId,
    pub client: String,
    pub key: String,
    pub state: LeaseState,
    pub epoch: u16,
    pub oplock: bool,
    pub is_dir: bool,
    pub breaking: bool,
    pub break_to: Option<LeaseState>,
    /// Time left before revocation, when breaking.
    pub deadline_in: Option<Duration>,
    pub opens: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct LockView {
    pub file: FileId,
    pub owner: LockOwner,
    pub range: ByteRange,
    pub kind: LockKind,
    /// Blocked requests queued behind this file's locks.
    pub waiting: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct StateView {
    pub opens: Vec<OpenView>,
    pub leases: Vec<LeaseView>,
    pub locks: Vec<LockView>,
    pub in_grace: bool,
    /// Requests (opens, unlinks, ...) waiting for a break to finish.
    pub break_waiters: usize,
}

impl State {
    pub(crate) fn view(&self, now: Instant) -> StateView {
        let mut v = StateView {
            in_grace: self.grace.is_some(),
            break_waiters: self.waiters.len(),
            ..Default::default()
        };
        for e in self.opens.values() {
            v.opens.push(OpenView {
                id: e.id,
                file: e.req.file,
                owner: e.req.owner,
                read: e.req.access.read,
                write: e.req.access.write,
                delete: e.req.access.delete,
                share: e.req.share.0,
                stat_only: e.req.stat_only,
                lease_key: e.lease.map(|(_, k)| k.to_string()),
            });
        }
        for e in self.leases.values() {
            let l = &e.lease;
            v.leases.push(LeaseView {
                file: l.file,
                owner: l.owner,
                client: l.client.to_string(),
                key: l.key.to_string(),
                state: l.state,
                epoch: l.epoch,
                oplock: l.oplock,
                is_dir: l.is_dir,
                breaking: l.breaking,
                break_to: l.breaking.then_some(l.break_to),
                deadline_in: l.deadline.map(|d| d.saturating_duration_since(now)),
                opens: e.opens.len(),
            });
        }
        for (file, f) in &self.files {
            for h in f.locks.held() {
                v.locks.push(LockView {
                    file: *file,
                    owner: h.owner,
                    range: h.range,
                    kind: h.kind,
                    waiting: false,
                });
            }
            for p in &f.pending {
                v.locks.push(LockView {
                    file: *file,
                    owner: p.req.owner,
                    range: p.req.range,
                    kind: p.req.kind,
                    waiting: true,
                });
            }
        }
        v.opens.sort_by_key(|o| o.id);
        v.leases
            .sort_by(|a, b| (a.file, &a.client, &a.key).cmp(&(b.file, &b.client, &b.key)));
        v.locks.sort_by_key(|l| (l.file, l.range, l.waiting));
        v
    }
}
