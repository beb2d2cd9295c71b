//! Byte-range locks in the unified table: grants, queues of blocked requests, deadlock
//! detection, release on close and disconnect.

use super::{LockOutcome, LockRequest, Outbox, PendingLock, Requester, Shared, State};
use crate::brlock::LockOwner;
use crate::error::LockError;
use crate::events::EventKind;
use crate::lease::BreakReason;
use crate::types::{FileId, OwnerId};
use crate::wait::{Slot, WaitHandle, Withdraw};
use std::collections::HashSet;
use std::sync::Weak;

impl State {
    pub(crate) fn lock(
        &mut self,
        sh: &Shared,
        w: Weak<dyn Withdraw>,
        req: &LockRequest,
        out: &mut Outbox,
    ) -> Result<LockOutcome, LockError> {
        self.cause = (
            match req.owner {
                LockOwner::Posix { owner, .. } => Some(owner),
                LockOwner::Open(o) => self.opens.get(&o).map(|e| e.req.owner),
            },
            "lock",
        );
        let now = sh.now();
        if self.grace_blocks(sh, req.file, now) {
            return Err(LockError::InGrace(req.file));
        }
        if let LockOwner::Open(o) = req.owner {
            match self.opens.get(&o) {
                Some(e) if e.req.file == req.file => {}
                _ => return Err(LockError::UnknownOpen),
            }
        }
        let f = self.file_mut(req.file);
        if let Some(c) = f.locks.first_conflict(&req.owner, &req.range, req.kind) {
            if !req.wait {
                self.gc_file(req.file);
                return Err(LockError::Conflict {
                    range: c.range,
                    kind: c.kind,
                });
            }
            let blockers = f.locks.blockers(&req.owner, &req.range, req.kind);
            if self.would_deadlock(&req.owner, blockers) {
                return Err(LockError::Deadlock);
            }
            let id = self.next_wait_id();
            let slot = Slot::new();
            // Remember the file under the front-end owner even before anything is held,
            // so a disconnect (owner_gone) finds and cancels this queued request instead
            // of granting it later to an owner that no longer exists.
            if let LockOwner::Posix { owner, .. } = req.owner {
                self.owner_lock_files
                    .entry(owner)
                    .or_default()
                    .insert(req.file);
            }
            self.file_mut(req.file).pending.push_back(PendingLock {
                id,
                req: *req,
                slot: slot.clone(),
            });
            self.lock_waits.insert(id, req.file);
            let kind = EventKind::LockWait {
                owner: req.owner,
                range: req.range,
                kind: req.kind,
            };
            let who = self.cause.0;
            self.emit(Some(req.file), who, kind, out);
            return Ok(LockOutcome::Wait(WaitHandle { slot, id, owner: w }));
        }
        self.apply_lock(sh, req, out);
        if req.owner.is_posix() {
            // POSIX.1 fcntl: a new lock replaces the owner's locks over its range, so it may
            // downgrade exclusive to shared or give bytes up; queued requests that this
            // unblocks must be granted now, as Linux wakes blocked waiters on replace.
            self.grant_pending(sh, req.file, out);
        }
        Ok(LockOutcome::Granted)
    }

    /// Grants a lock known not to conflict, persists it and breaks others' read caching
    /// (MS-FSA 2.1.5.7: a byte-range lock breaks Level II / R caching, without waiting).
    fn apply_lock(&mut self, sh: &Shared, req: &LockRequest, out: &mut Outbox) {
        let f = self.file_mut(req.file);
        f.locks.insert(req.owner, req.range, req.kind);
        self.store_locks(sh, req.file);
        let who = self.cause.0;
        let kind = EventKind::Lock {
            owner: req.owner,
            range: req.range,
            kind: req.kind,
        };
        self.emit(Some(req.file), who, kind, out);
        let by = match req.owner {
            LockOwner::Posix { owner, .. } => {
                self.owner_lock_files
                    .entry(owner)
                    .or_default()
                    .insert(req.file);
                Requester::owner(owner)
            }
            LockOwner::Open(o) => match self.opens.get(&o) {
                Some(e) => Requester {
                    owner: e.req.owner,
                    lease: e.lease,
                },
                None => return,
            },
        };
        let mut ids = self.other_leases(req.file, &by);
        // MS-FSA 2.1.5.7 / 2.1.4.12: the locker's own Level II oplock goes too
        // (smbtorture smb2.oplock.brl1, brl3: a self lock breaks Level II to none).
        ids.extend(self.own_level2_oplock(by.lease));
        let now = sh.now();
        let none: Weak<dyn Withdraw> = Weak::<Shared>::new();
        self.break_leases(sh, &none, &ids, BreakReason::ByteRangeLock, false, now, out);
    }

    /// Whether `requester` waiting on `blockers` closes a cycle: follow each blocker's
    /// own queued requests to the owners they wait on.
    fn would_deadlock(&self, requester: &LockOwner, blockers: Vec<LockOwner>) -> bool {
        let mut stack = blockers;
        let mut seen = HashSet::new();
        while let Some(o) = stack.pop() {
            if o == *requester {
                return true;
            }
            if !seen.insert(o) {
                continue;
            }
            for file in self.lock_waits.values().collect::<HashSet<_>>() {
                let Some(f) = self.files.get(file) else {
                    continue;
                };
                for p in f.pending.iter().filter(|p| p.req.owner == o) {
                    stack.extend(f.locks.blockers(&p.req.owner, &p.req.range, p.req.kind));
                }
            }
        }
        false
    }

    pub(crate) fn unlock(
        &mut self,
        sh: &Shared,
        file: FileId,
        owner: LockOwner,
        range: crate::range::ByteRange,
        out: &mut Outbox,
    ) -> Result<(), LockError> {
        self.cause = (
            match owner {
                LockOwner::Posix { owner, .. } => Some(owner),
                LockOwner::Open(o) => self.opens.get(&o).map(|e| e.req.owner),
            },
            "unlock",
        );
        let removed = match self.files.get_mut(&file) {
            Some(f) => f.locks.remove(&owner, &range),
            None => false,
        };
        if !removed {
            return match owner {
                LockOwner::Posix { .. } => Ok(()),
                LockOwner::Open(_) => Err(LockError::RangeNotLocked),
            };
        }
        let who = self.cause.0;
        self.emit(Some(file), who, EventKind::Unlock { owner, range }, out);
        self.locks_changed(sh, file, out);
        Ok(())
    }

    /// Drops all locks and queued requests of one lock owner on a file.
    pub(crate) fn release_lock_owner(
        &mut self,
        sh: &Shared,
        file: FileId,
        owner: LockOwner,
        out: &mut Outbox,
    ) {
        // POSIX (MS-FSA has no equivalent): a close drops the owner's locks but a blocked
        // F_SETLKW of the same owner in another thread keeps waiting; an SMB handle's
        // queued requests go with it.
        let cancel_pending = matches!(owner, LockOwner::Open(_));
        self.release_locks_where(sh, file, |o| *o == owner, cancel_pending, out);
    }

    /// A disconnected front-end owner: every POSIX lock owner under it goes, queued
    /// requests included.
    pub(crate) fn release_posix_owner(
        &mut self,
        sh: &Shared,
        file: FileId,
        owner: OwnerId,
        out: &mut Outbox,
    ) {
        let mine = |o: &LockOwner| matches!(o, LockOwner::Posix { owner: x, .. } if *x == owner);
        self.release_locks_where(sh, file, mine, true, out);
    }

    /// Drops the held locks whose owner `mine` selects (and, with `cancel_pending`, their
    /// queued requests), then lets queued requests of others through.
    fn release_locks_where(
        &mut self,
        sh: &Shared,
        file: FileId,
        mine: impl Fn(&LockOwner) -> bool,
        cancel_pending: bool,
        out: &mut Outbox,
    ) {
        let Some(f) = self.files.get_mut(&file) else {
            return;
        };
        let removed = f.locks.remove_where(|h| mine(&h.owner));
        let mut cancelled = Vec::new();
        f.pending.retain(|p| {
            if cancel_pending && mine(&p.req.owner) {
                cancelled.push((p.id, p.slot.clone()));
                false
            } else {
                true
            }
        });
        for (id, slot) in cancelled {
            self.lock_waits.remove(&id);
            out.lock_wakes.push((slot, Err(LockError::Cancelled)));
        }
        if removed {
            self.locks_changed(sh, file, out);
        }
        self.gc_file(file);
    }

    pub(crate) fn withdraw_lock(&mut self, sh: &Shared, id: u64, out: &mut Outbox) {
        let Some(file) = self.lock_waits.remove(&id) else {
            return;
        };
        if let Some(f) = self.files.get_mut(&file) {
            if let Some(pos) = f.pending.iter().position(|p| p.id == id) {
                if let Some(p) = f.pending.remove(pos) {
                    out.lock_wakes.push((p.slot, Err(LockError::Cancelled)));
                }
            }
        }
        // A withdrawn request may have been holding later ones back.
        self.grant_pending(sh, file, out);
        self.gc_file(file);
    }

    /// Persists the file's locks and grants queued requests that no longer conflict.
    fn locks_changed(&mut self, sh: &Shared, file: FileId, out: &mut Outbox) {
        self.store_locks(sh, file);
        self.grant_pending(sh, file, out);
        self.gc_file(file);
    }

    /// Queued requests are granted in arrival order, each as soon as no held lock
    /// conflicts with it (MS-FSA 2.1.5.8: on unlock the waiting locks are walked in order
    /// and every one that can now be granted is). An earlier waiter does not hold later
    /// ones back: it may itself be blocked by a lock of a later waiter, and holding that
    /// waiter back would be a deadlock the wait-for graph in `would_deadlock` (which only
    /// follows held locks) cannot see.
    fn grant_pending(&mut self, sh: &Shared, file: FileId, out: &mut Outbox) {
        let mut i = 0;
        loop {
            let Some(f) = self.files.get(&file) else {
                return;
            };
            if i >= f.pending.len() {
                return;
            }
            let p = &f.pending[i];
            if f.locks
                .first_conflict(&p.req.owner, &p.req.range, p.req.kind)
                .is_some()
            {
                i += 1;
                continue;
            }
            let Some(p) = self.files.get_mut(&file).and_then(|f| f.pending.remove(i)) else {
                return;
            };
            self.lock_waits.remove(&p.id);
            self.apply_lock(sh, &p.req, out);
            out.lock_wakes.push((p.slot, Ok(())));
            if p.req.owner.is_posix() {
                // A granted POSIX lock may have downgraded its owner's earlier locks (see
                // `lock`), which can unblock requests already passed over: rescan.
                i = 0;
            }
        }
    }
}
