//! Opens: share modes, the breaks an open triggers, lease grants, close.

use super::{
    LeaseEntry, LeaseId, OpenEntry, OpenGrant, OpenOutcome, OpenRequest, Outbox, Shared, State,
};
use crate::error::LockError;
use crate::events::EventKind;
use crate::lease::{grant_state, BreakReason, Lease, LeaseGrant, LeaseState};
use crate::store::{LeaseRecord, OpenRecord};
use crate::types::{LeaseKey, OpenId, ShareAccess};
use crate::wait::{WakeReason, Withdraw};
use std::sync::Weak;

/// MS-FSA 2.1.5.1.2: an existing open and a new one conflict when either wants an
/// access the other does not share. An open with no data access (read, write or
/// delete) takes no part in the check at all, whatever else it asks for.
pub(crate) fn share_conflict(existing: &OpenRequest, new: &OpenRequest) -> bool {
    if existing.stat_only || new.stat_only || existing.access.is_none() || new.access.is_none() {
        return false;
    }
    let denies = |a: &OpenRequest, b: &OpenRequest| {
        (a.access.read && !b.share.contains(ShareAccess::READ))
            || (a.access.write && !b.share.contains(ShareAccess::WRITE))
            || (a.access.delete && !b.share.contains(ShareAccess::DELETE))
    };
    denies(new, existing) || denies(existing, new)
}

/// The private lease key of a traditional oplock: one per open. Public so a front end
/// can route an oplock's break notice back to its handle.
pub fn oplock_key(open: OpenId) -> LeaseKey {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"oplock\0\0");
    k[8..].copy_from_slice(&open.0.to_be_bytes());
    LeaseKey(k)
}

impl State {
    pub(crate) fn open(
        &mut self,
        sh: &Shared,
        withdraw: Weak<dyn Withdraw>,
        req: &OpenRequest,
        out: &mut Outbox,
    ) -> Result<OpenOutcome, LockError> {
        self.cause = (Some(req.owner), "open");
        let now = sh.now();
        if self.grace_blocks(sh, req.file, now) {
            return Err(LockError::InGrace(req.file));
        }
        let my_lease: Option<LeaseId> = req.lease.filter(|l| !l.oplock).map(|l| (l.client, l.key));
        if let Some(id) = my_lease {
            if let Some(e) = self.leases.get(&id) {
                if e.lease.file != req.file {
                    return Err(LockError::LeaseKeyOnOtherFile);
                }
            }
        }
        let requester = super::Requester {
            owner: req.owner,
            lease: my_lease,
        };
        if !req.stat_only {
            if let Some(f) = self.files.get(&req.file) {
                let conflicting: Vec<OpenId> = f
                    .opens
                    .iter()
                    .copied()
                    .filter(|o| {
                        self.opens
                            .get(o)
                            .is_some_and(|e| share_conflict(&e.req, req))
                    })
                    .collect();
                if !conflicting.is_empty() {
                    // MS-SMB2 3.3.5.9 / MS-FSA 2.1.5.1.2: a sharing violation first breaks the
                    // handle caching of the conflicting opens' leases; the holders may close
                    // their cached handles, and the open is retried after the ack.
                    let mut ids: Vec<LeaseId> = conflicting
                        .iter()
                        .filter_map(|o| self.opens.get(o).and_then(|e| e.lease))
                        .collect();
                    ids.sort();
                    ids.dedup();
                    ids.retain(|id| Some(*id) != my_lease);
                    if let Some(w) = self.break_leases(
                        sh,
                        &withdraw,
                        &ids,
                        BreakReason::SharingViolation,
                        true,
                        now,
                        out,
                    ) {
                        return Ok(OpenOutcome::Wait(w));
                    }
                    return Err(LockError::SharingViolation);
                }
                let reason = if req.writes_unseen && req.access.write {
                    BreakReason::UnseenWriter
                } else if req.overwrite {
                    BreakReason::Overwrite
                } else {
                    BreakReason::Open
                };
                let ids: Vec<LeaseId> = self
                    .other_leases(req.file, &requester)
                    .into_iter()
                    .filter(|id| {
                        self.leases
                            .get(id)
                            .is_some_and(|e| super::open_breaks::open_breaks(req, &e.lease))
                    })
                    .collect();
                if let Some(w) = self.break_leases(sh, &withdraw, &ids, reason, true, now, out) {
                    return Ok(OpenOutcome::Wait(w));
                }
            }
        }
        // The prior state only matters for the Grant event, so skip the lookup when
        // nobody listens.
        let before = req
            .lease
            .filter(|l| !l.oplock && !self.subscribers.is_empty())
            .and_then(|l| self.leases.get(&(l.client, l.key)).map(|e| e.lease.state));
        let grant = self.register_open(sh, req, false);
        let a = req.access;
        let kind = EventKind::Open {
            open: grant.open,
            read: a.read,
            write: a.write,
            delete: a.delete,
        };
        self.emit(Some(req.file), Some(req.owner), kind, out);
        if let (Some(lr), Some(lg)) = (req.lease, grant.lease) {
            if before != Some(lg.state) {
                let key = if lr.oplock {
                    oplock_key(grant.open)
                } else {
                    lr.key
                };
                let upgrade = before.is_some();
                let kind = EventKind::Grant {
                    client: lr.client,
                    key,
                    state: lg.state,
                    upgrade,
                };
                self.emit(Some(req.file), Some(req.owner), kind, out);
            }
        }
        Ok(OpenOutcome::Opened(grant))
    }

    /// Leases on `file` that are not the requester's.
    pub(crate) fn other_leases(
        &self,
        file: crate::types::FileId,
        by: &super::Requester,
    ) -> Vec<LeaseId> {
        match self.files.get(&file) {
            Some(f) => f
                .leases
                .iter()
                .copied()
                .filter(|id| Some(*id) != by.lease)
                .collect(),
            None => Vec::new(),
        }
    }

    /// What other opens of the file let a new lease hold (DESIGN.md "Local access"):
    /// W only for the sole opener key (MS-FSA 2.1.5.17); no R or W beside an open whose
    /// writes the manager does not see; no W beside one whose reads it does not see.
    fn allowed_for_new_lease(&self, req: &OpenRequest, lease_id: Option<LeaseId>) -> LeaseState {
        let mut allowed = LeaseState::RWH;
        let asking_oplock = req.lease.is_some_and(|l| l.oplock);
        if let Some(f) = self.files.get(&req.file) {
            for o in &f.opens {
                let Some(e) = self.opens.get(o) else { continue };
                if e.req.stat_only || (lease_id.is_some() && e.lease == lease_id) {
                    continue;
                }
                // An open a lease would not be broken for does not hold a lease back
                // either (open_breaks): it still limits an oplock.
                if e.req.metadata_only && !asking_oplock {
                    continue;
                }
                allowed = allowed.without(LeaseState::W);
                if e.req.writes_unseen && e.req.access.write {
                    allowed = allowed.without(LeaseState::R);
                }
            }
            // Other keys' caching, whatever opens carry it (a stat open breaks nothing,
            // but may hold a lease): MS-FSA 2.1.5.17.2 grants no read caching beside
            // another key's write caching (the request is not granted), and write
            // caching only when no other key caches anything.
            for lid in &f.leases {
                if Some(*lid) == lease_id {
                    continue;
                }
                let Some(e) = self.leases.get(lid) else {
                    continue;
                };
                if e.lease.state.has(LeaseState::W) {
                    allowed = LeaseState::NONE;
                } else if !e.lease.state.is_none() {
                    allowed = allowed.without(LeaseState::W);
                }
                // MS-FSA 2.1.5.17.2: Level II oplocks and handle-caching leases do not
                // coexist. Beside an oplock a lease gets no H; beside a lease holding H
                // an oplock request gets nothing (smbtorture smb2.lease.oplock checks
                // Windows does both).
                if e.lease.oplock && !e.lease.state.is_none() {
                    allowed = allowed.without(LeaseState::H);
                }
                if asking_oplock && e.lease.state.has(LeaseState::H) {
                    allowed = LeaseState::NONE;
                }
            }
        }
        allowed
    }

    /// Records an open and grants its lease. A reclaimed lease gets back exactly the
    /// (already validated) state it asks for instead of going through the grant rules.
    pub(crate) fn register_open(
        &mut self,
        sh: &Shared,
        req: &OpenRequest,
        reclaim: bool,
    ) -> OpenGrant {
        let id = OpenId(self.next_open);
        self.next_open += 1;
        let mut grant = None;
        let mut lease_id = None;
        if let Some(lr) = req.lease {
            let key = if lr.oplock { oplock_key(id) } else { lr.key };
            let lid = (lr.client, key);
            let allowed = self.allowed_for_new_lease(req, Some(lid));
            self.leases.entry(lid).or_insert_with(|| LeaseEntry {
                lease: Lease {
                    client: lr.client,
                    key,
                    file: req.file,
                    owner: req.owner,
                    state: LeaseState::NONE,
                    version: lr.version,
                    epoch: 0,
                    is_dir: req.is_dir,
                    oplock: lr.oplock,
                    breaking: false,
                    break_to: LeaseState::NONE,
                    required: LeaseState::NONE,
                    break_started: None,
                    deadline: None,
                    break_seq: 0,
                    reason: None,
                },
                opens: Vec::new(),
                waiters: Vec::new(),
            });
            let Some(entry) = self.leases.get_mut(&lid) else {
                unreachable!("the lease entry was inserted above")
            };
            let l = &mut entry.lease;
            let is_new = entry.opens.is_empty();
            // No upgrade while a break is in flight: the client learns of the break through
            // SMB2_LEASE_FLAG_BREAK_IN_PROGRESS and keeps the current state.
            if !l.breaking {
                let granted = if reclaim {
                    lr.state.normalize(req.is_dir)
                } else {
                    let g = grant_state(lr.state, l.state, allowed, req.is_dir);
                    // MS-FSA 2.1.5.17.2: a lease that already caches something is
                    // upgraded all or nothing: to exactly the requested state when it can
                    // be held beside the other keys' leases, else not at all (smbtorture
                    // smb2.lease.upgrade3; smb2.lease.break asks RWH of a lease broken
                    // to R beside another R and keeps R). A new lease, or one broken to
                    // None, gets what can be shared (smb2.lease.nobreakself).
                    if !is_new && !l.state.is_none() && g != l.state && g != lr.state {
                        l.state
                    } else {
                        g
                    }
                };
                if granted != l.state
                    && !is_new
                    && matches!(l.version, crate::lease::LeaseVersion::V2 { .. })
                {
                    // MS-SMB2 3.3.5.9.11: an upgrade of a V2 lease bumps the epoch.
                    l.epoch = l.epoch.wrapping_add(1);
                }
                if is_new && matches!(l.version, crate::lease::LeaseVersion::V2 { .. }) {
                    l.epoch = 1;
                }
                l.state = granted;
            }
            l.owner = req.owner;
            entry.opens.push(id);
            grant = Some(LeaseGrant {
                state: l.state,
                epoch: l.epoch,
                breaking: l.breaking,
            });
            lease_id = Some(lid);
            let rec = lease_record(&entry.lease);
            let f = self.file_mut(req.file);
            if !f.leases.contains(&lid) {
                f.leases.push(lid);
            }
            sh.store_result("put lease", sh.store.put_lease(&rec));
        }
        self.opens.insert(
            id,
            OpenEntry {
                req: *req,
                id,
                lease: lease_id,
            },
        );
        self.file_mut(req.file).opens.push(id);
        self.owner_opens.entry(req.owner).or_default().insert(id);
        sh.store_result(
            "put open",
            sh.store.put_open(&open_record(id, req, lease_id)),
        );
        OpenGrant {
            open: id,
            lease: grant,
        }
    }

    /// Closes an open; the lease goes with its last open, and everyone waiting on it
    /// proceeds with `reason`.
    pub(crate) fn close(
        &mut self,
        sh: &Shared,
        open: OpenId,
        reason: WakeReason,
        out: &mut Outbox,
    ) {
        let Some(e) = self.opens.remove(&open) else {
            return;
        };
        let file = e.req.file;
        if self.cause.1.is_empty() {
            self.cause = (Some(e.req.owner), "close");
        }
        self.emit(
            Some(file),
            Some(e.req.owner),
            EventKind::Close { open },
            out,
        );
        if let Some(set) = self.owner_opens.get_mut(&e.req.owner) {
            set.remove(&open);
            if set.is_empty() {
                self.owner_opens.remove(&e.req.owner);
            }
        }
        if let Some(f) = self.files.get_mut(&file) {
            f.opens.retain(|o| *o != open);
        }
        sh.store_result("remove open", sh.store.remove_open(open));
        if let Some(lid) = e.lease {
            let last = match self.leases.get_mut(&lid) {
                Some(le) => {
                    le.opens.retain(|o| *o != open);
                    le.opens.is_empty()
                }
                None => false,
            };
            if last {
                self.remove_lease(sh, lid, reason, out);
            } else {
                self.rehome_lease(sh, lid, e.req.owner);
            }
        }
        // SMB byte-range locks belong to the handle (MS-FSA 2.1.5.4: released on cleanup).
        self.release_lock_owner(sh, file, crate::brlock::LockOwner::Open(open), out);
        self.gc_file(file);
    }

    /// MS-SMB2 3.3.4.7: a break is sent on the connection of any open of the lease that
    /// still has one. When the open that routed the lease's breaks goes away but other
    /// opens of the lease remain (another session of the same client), breaks must follow
    /// them; otherwise the next break would find no sink and drop the caching of a
    /// client that is still there without telling it.
    fn rehome_lease(&mut self, sh: &Shared, lid: LeaseId, closed_by: crate::types::OwnerId) {
        let Some(le) = self.leases.get(&lid) else {
            return;
        };
        if le.lease.owner != closed_by {
            return;
        }
        let owners: Vec<_> = le
            .opens
            .iter()
            .filter_map(|o| self.opens.get(o).map(|e| e.req.owner))
            .collect();
        if owners.contains(&closed_by) {
            return;
        }
        let Some(new_owner) = owners
            .iter()
            .copied()
            .find(|o| self.sinks.contains_key(o))
            .or_else(|| owners.first().copied())
        else {
            return;
        };
        if let Some(le) = self.leases.get_mut(&lid) {
            le.lease.owner = new_owner;
            let rec = lease_record(&le.lease);
            sh.store_result("put lease", sh.store.put_lease(&rec));
        }
    }

    pub(crate) fn remove_lease(
        &mut self,
        sh: &Shared,
        lid: LeaseId,
        reason: WakeReason,
        out: &mut Outbox,
    ) {
        let Some(le) = self.leases.remove(&lid) else {
            return;
        };
        if let Some(f) = self.files.get_mut(&le.lease.file) {
            f.leases.retain(|l| *l != lid);
        }
        sh.store_result("remove lease", sh.store.remove_lease(lid.0, lid.1));
        let kind = EventKind::Release {
            client: lid.0,
            key: lid.1,
        };
        self.emit(Some(le.lease.file), Some(le.lease.owner), kind, out);
        for w in le.waiters {
            self.satisfy_waiter(w, lid, reason, out);
        }
    }
}

pub(crate) fn lease_record(l: &Lease) -> LeaseRecord {
    LeaseRecord {
        client: l.client,
        key: l.key,
        file: l.file,
        owner: l.owner,
        state: l.state,
        version: l.version,
        epoch: l.epoch,
        is_dir: l.is_dir,
        oplock: l.oplock,
    }
}

pub(crate) fn open_record(id: OpenId, req: &OpenRequest, lease: Option<LeaseId>) -> OpenRecord {
    OpenRecord {
        id,
        file: req.file,
        owner: req.owner,
        access: req.access,
        share: req.share,
        stat_only: req.stat_only,
        writes_unseen: req.writes_unseen,
        is_dir: req.is_dir,
        lease,
    }
}
