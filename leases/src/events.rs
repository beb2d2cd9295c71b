//! A stream of what the manager does, for `leasefs locks --watch` and metrics.
//!
//! Events are built only while someone subscribes and are delivered after the manager's
//! lock is released, in the order each operation produced them.

use crate::brlock::{LockKind, LockOwner};
use crate::lease::{BreakReason, LeaseState};
use crate::range::ByteRange;
use crate::types::{ClientId, FileId, LeaseKey, OpenId, OwnerId};
use serde::Serialize;
use std::time::{Duration, SystemTime};

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    Open {
        open: OpenId,
        read: bool,
        write: bool,
        delete: bool,
    },
    Close {
        open: OpenId,
    },
    /// A lease was granted to an open (`upgrade`: an existing lease got more bits).
    Grant {
        client: ClientId,
        key: LeaseKey,
        state: LeaseState,
        upgrade: bool,
    },
    BreakSent {
        client: ClientId,
        key: LeaseKey,
        from: LeaseState,
        to: LeaseState,
        reason: BreakReason,
        ack_required: bool,
        epoch: u16,
    },
    Ack {
        client: ClientId,
        key: LeaseKey,
        state: LeaseState,
        latency: Duration,
    },
    /// MS-SMB2 3.3.6.5: the deadline passed; `late` is how long after it this landed.
    Revoke {
        client: ClientId,
        key: LeaseKey,
        late: Duration,
    },
    /// The lease went with its last open (or its owner's disconnect).
    Release {
        client: ClientId,
        key: LeaseKey,
    },
    Lock {
        owner: LockOwner,
        range: ByteRange,
        kind: LockKind,
    },
    Unlock {
        owner: LockOwner,
        range: ByteRange,
    },
    /// A lock request queued behind conflicting locks.
    LockWait {
        owner: LockOwner,
        range: ByteRange,
        kind: LockKind,
    },
    Disconnect,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub at: SystemTime,
    pub file: Option<FileId>,
    /// Whose state this is about.
    pub owner: Option<OwnerId>,
    /// Who caused it (the requester of the operation that triggered a break).
    pub cause: Option<OwnerId>,
    /// The operation that was running: "open", "write", "unlink", "lock", ...
    pub op: &'static str,
    #[serde(flatten)]
    pub kind: EventKind,
}

pub trait EventSink: Send + Sync {
    fn event(&self, e: &Event);
}
