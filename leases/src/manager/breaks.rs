//! The break engine: dispatching breaks, acknowledgments, waiters, revocation.

use super::open_breaks::wait_need;
use super::opens::lease_record;
use super::{BreakOutcome, BreakWaiter, LeaseId, Outbox, Requester, Shared, State};
use crate::error::{AckError, LockError};
use crate::events::EventKind;
use crate::lease::{ack_required, break_target, BreakNotice, BreakReason, LeaseState};
use crate::types::{FileId, OpenId};
use crate::wait::{BreakWait, Slot, WaitHandle, WakeReason, Withdraw};
use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::{Duration, Instant};

impl State {
    /// Breaks each lease in `ids` for `reason`. With `wait`, returns a handle that
    /// completes when every lease that needs an ack is down to what the requester needs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn break_leases(
        &mut self,
        sh: &Shared,
        withdraw: &Weak<dyn Withdraw>,
        ids: &[LeaseId],
        reason: BreakReason,
        wait: bool,
        now: Instant,
        out: &mut Outbox,
    ) -> Option<BreakWait> {
        let mut pending = HashMap::new();
        for id in ids {
            let Some(e) = self.leases.get(id) else {
                continue;
            };
            let target = break_target(e.lease.state, reason, e.lease.is_dir);
            self.break_to(sh, *id, target, reason, now, out);
            self.collect_pending(*id, wait_need(reason, target), &mut pending);
        }
        if !wait || pending.is_empty() {
            return None;
        }
        Some(self.new_waiter(withdraw, pending))
    }

    /// Notes that the requester must wait for lease `id` to come down to `need`, if a
    /// break it has to wait for is in flight.
    fn collect_pending(
        &self,
        id: LeaseId,
        need: LeaseState,
        pending: &mut HashMap<LeaseId, LeaseState>,
    ) {
        if let Some(e) = self.leases.get(&id) {
            if e.lease.breaking && !e.lease.state.is_subset_of(need) {
                let need = pending
                    .get(&id)
                    .map_or(need, |t: &LeaseState| t.intersect(need));
                pending.insert(id, need);
            }
        }
    }

    fn new_waiter(
        &mut self,
        withdraw: &Weak<dyn Withdraw>,
        pending: HashMap<LeaseId, LeaseState>,
    ) -> BreakWait {
        let wid = self.next_wait_id();
        let slot = Slot::new();
        for id in pending.keys() {
            if let Some(e) = self.leases.get_mut(id) {
                e.waiters.push(wid);
            }
        }
        self.waiters.insert(
            wid,
            BreakWaiter {
                slot: slot.clone(),
                pending,
            },
        );
        WaitHandle {
            slot,
            id: wid,
            owner: withdraw.clone(),
        }
    }

    /// Starts (or tightens) a break of lease `id` towards `target`. One notification per
    /// lease at a time: a break already in flight only records the tighter target, and
    /// the ack continues the break progressively (MS-SMB2 3.3.5.22.2).
    pub(crate) fn break_to(
        &mut self,
        sh: &Shared,
        id: LeaseId,
        target: LeaseState,
        reason: BreakReason,
        now: Instant,
        out: &mut Outbox,
    ) {
        self.dispatch(sh, id, target, None, reason, now, out);
    }

    /// Sends one break notification towards `target`. `continues` carries what is
    /// still required when this is the next step of a break whose previous step was
    /// just acknowledged (see `ack`); a new break requires its own target.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        sh: &Shared,
        id: LeaseId,
        target: LeaseState,
        continues: Option<LeaseState>,
        reason: BreakReason,
        now: Instant,
        out: &mut Outbox,
    ) {
        let Some(e) = self.leases.get_mut(&id) else {
            return;
        };
        let l = &mut e.lease;
        let target = target.normalize(l.is_dir);
        if l.breaking {
            l.required = l.required.intersect(target);
            return;
        }
        if l.state.is_subset_of(target) {
            return;
        }
        let from = l.state;
        // MS-SMB2 3.3.4.7: the epoch increments when a break is sent. The further steps
        // of one break keep it: smbtorture smb2.lease.v2_breaking3 checks that Windows
        // sends RH->R and R->None with the epoch of the first RWH->RH notification.
        if continues.is_none() {
            l.epoch = l.epoch.wrapping_add(1);
        }
        l.break_seq += 1;
        l.reason = Some(reason);
        sh.stats.breaks_sent.fetch_add(1, Ordering::Relaxed);
        let Some(sink) = self.sinks.get(&l.owner).cloned() else {
            // The owning connection is gone: nobody can ack, so release the caching now
            // rather than making everyone wait for the deadline.
            l.state = LeaseState::NONE;
            let rec = lease_record(l);
            sh.store_result("put lease", sh.store.put_lease(&rec));
            self.wake_satisfied(id, WakeReason::Disconnected, out);
            return;
        };
        let needs_ack = ack_required(from);
        let (client, key, file, owner, epoch) = (l.client, l.key, l.file, l.owner, l.epoch);
        let notice = BreakNotice {
            owner: l.owner,
            client: l.client,
            key: l.key,
            file: l.file,
            from,
            to: target,
            epoch: l.epoch,
            ack_required: needs_ack,
            oplock: l.oplock,
            version: l.version,
            reason,
        };
        if needs_ack {
            l.breaking = true;
            l.break_to = target;
            l.required = continues.map_or(target, |r| r.intersect(target));
            l.break_started = Some(now);
            let deadline = now + sh.config.break_timeout;
            l.deadline = Some(deadline);
            let seq = l.break_seq;
            let earliest = self
                .deadlines
                .peek()
                .is_none_or(|Reverse((t, _, _))| deadline < *t);
            self.deadlines.push(Reverse((deadline, seq, id)));
            if earliest {
                sh.deadline_cv.notify_all();
            }
            // The epoch just moved (MS-SMB2 3.3.4.7) and the stored record carries it: a
            // reclaim after a restart must see the epoch the client last heard.
            let rec = lease_record(l);
            sh.store_result("put lease", sh.store.put_lease(&rec));
        } else {
            // R-only caching needs no ack and never delays the requester.
            l.state = target;
            let rec = lease_record(l);
            sh.store_result("put lease", sh.store.put_lease(&rec));
        }
        out.notices.push((sink, notice));
        let kind = EventKind::BreakSent {
            client,
            key,
            from,
            to: target,
            reason,
            ack_required: needs_ack,
            epoch,
        };
        self.emit(Some(file), Some(owner), kind, out);
    }

    pub(crate) fn ack(
        &mut self,
        id: LeaseId,
        state: LeaseState,
        sh: &Shared,
        out: &mut Outbox,
    ) -> Result<LeaseState, AckError> {
        let now = sh.now();
        let e = self.leases.get_mut(&id).ok_or(AckError::NotFound)?;
        let l = &mut e.lease;
        if !l.breaking {
            return Err(AckError::NotBreaking);
        }
        if !state.is_subset_of(l.break_to) {
            return Err(AckError::NotSubset);
        }
        let latency = l
            .break_started
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        let (file, owner) = (l.file, l.owner);
        sh.stats.acks.fetch_add(1, Ordering::Relaxed);
        l.state = state.normalize(l.is_dir);
        l.breaking = false;
        l.deadline = None;
        let rec = lease_record(l);
        let required = l.required;
        let reason = l.reason.unwrap_or(BreakReason::Open);
        let held = l.state;
        sh.store_result("put lease", sh.store.put_lease(&rec));
        self.cause = (Some(owner), "ack");
        self.emit(
            Some(file),
            Some(owner),
            EventKind::Ack {
                client: id.0,
                key: id.1,
                state: held,
                latency,
            },
            out,
        );
        if !held.is_subset_of(required) {
            // Progressive break: more was asked while this break was in flight. It
            // continues in steps, handle and write caching before read caching
            // (open_breaks::next_step).
            let next = super::open_breaks::next_step(held, required);
            self.dispatch(sh, id, next, Some(required), reason, now, out);
        }
        self.wake_satisfied(id, WakeReason::Acked, out);
        Ok(self
            .leases
            .get(&id)
            .map_or(LeaseState::NONE, |e| e.lease.state))
    }

    /// Wakes every waiter on `id` whose need the lease now meets.
    pub(crate) fn wake_satisfied(&mut self, id: LeaseId, reason: WakeReason, out: &mut Outbox) {
        let Some(e) = self.leases.get_mut(&id) else {
            return;
        };
        let state = e.lease.state;
        // A requester that had to wait stays behind a break until its last step is
        // acknowledged, even when an earlier step already gave it what it needs
        // (smbtorture smb2.lease.breaking3: the blocked opens complete only after the
        // final ack). MS-FSA 2.1.4.12: an oplock that is breaking makes opens wait.
        let breaking = e.lease.breaking;
        let waiters = std::mem::take(&mut e.waiters);
        let mut keep = Vec::new();
        for w in waiters {
            let satisfied = match self.waiters.get(&w).and_then(|bw| bw.pending.get(&id)) {
                Some(need) => !breaking && state.is_subset_of(*need),
                None => continue,
            };
            if satisfied {
                self.satisfy_waiter(w, id, reason, out);
            } else {
                keep.push(w);
            }
        }
        if let Some(e) = self.leases.get_mut(&id) {
            e.waiters.extend(keep);
        }
    }

    /// Lease `id` no longer holds waiter `w` back; completes the waiter if it was the last.
    pub(crate) fn satisfy_waiter(
        &mut self,
        w: u64,
        id: LeaseId,
        reason: WakeReason,
        out: &mut Outbox,
    ) {
        let done = match self.waiters.get_mut(&w) {
            Some(bw) => {
                bw.pending.remove(&id);
                bw.pending.is_empty()
            }
            None => false,
        };
        if done {
            if let Some(bw) = self.waiters.remove(&w) {
                out.wakes.push((bw.slot, reason));
            }
        }
    }

    /// MS-SMB2 3.3.6.5: when the break deadline passes the lease is set to None (not to
    /// the break-to state), breaking is cleared and waiters proceed; the handle stays open.
    pub(crate) fn expire_due(&mut self, sh: &Shared, out: &mut Outbox) -> usize {
        let now = sh.now();
        let mut n = 0;
        while let Some(Reverse((t, seq, id))) = self.deadlines.peek().copied() {
            if t > now {
                break;
            }
            self.deadlines.pop();
            let Some(e) = self.leases.get_mut(&id) else {
                continue;
            };
            let l = &mut e.lease;
            if !l.breaking || l.break_seq != seq {
                continue;
            }
            l.state = LeaseState::NONE;
            l.breaking = false;
            l.deadline = None;
            let rec = lease_record(l);
            sh.store_result("put lease", sh.store.put_lease(&rec));
            let late = now.saturating_duration_since(t).as_nanos() as u64;
            sh.stats.revokes.fetch_add(1, Ordering::Relaxed);
            sh.stats
                .revoke_late_ns_total
                .fetch_add(late, Ordering::Relaxed);
            sh.stats
                .revoke_late_ns_max
                .fetch_max(late, Ordering::Relaxed);
            tracing::info!(client = %id.0, key = %id.1, late_us = late / 1000, "lease revoked at its break deadline");
            let (file, owner) = (l.file, l.owner);
            self.cause = (None, "deadline");
            let kind = EventKind::Revoke {
                client: id.0,
                key: id.1,
                late: Duration::from_nanos(late),
            };
            self.emit(Some(file), Some(owner), kind, out);
            self.wake_satisfied(id, WakeReason::Revoked, out);
            n += 1;
        }
        n
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Withdraws a break or lock wait whose handle was dropped unfinished.
    pub(crate) fn withdraw(&mut self, sh: &Shared, id: u64, out: &mut Outbox) {
        if let Some(bw) = self.waiters.remove(&id) {
            for lid in bw.pending.keys() {
                if let Some(e) = self.leases.get_mut(lid) {
                    e.waiters.retain(|w| *w != id);
                }
            }
            out.wakes.push((bw.slot, WakeReason::Cancelled));
        } else {
            self.withdraw_lock(sh, id, out);
        }
    }

    /// A write or size change through `open`: break others' read caching (to None).
    /// MS-FSA 2.1.4.12: the writer does not wait for these breaks.
    pub(crate) fn before_write(
        &mut self,
        sh: &Shared,
        w: Weak<dyn Withdraw>,
        open: OpenId,
        out: &mut Outbox,
    ) -> Result<BreakOutcome, LockError> {
        let Some(e) = self.opens.get(&open) else {
            return Err(LockError::UnknownOpen);
        };
        let by = Requester {
            owner: e.req.owner,
            lease: e.lease,
        };
        let file = e.req.file;
        let own = e.lease;
        self.cause = (Some(by.owner), "write");
        let mut ids = self.other_leases(file, &by);
        // MS-FSA 2.1.4.12 / 2.1.5.3: a write breaks every Level II oplock on the
        // stream, the writer's own included (Windows does, smbtorture
        // smb2.oplock.batch1 checks); leases are never broken by their own key.
        ids.extend(self.own_level2_oplock(own));
        let now = sh.now();
        self.break_leases(sh, &w, &ids, BreakReason::Write, false, now, out);
        Ok(BreakOutcome::Proceed)
    }

    /// The requester's own lease when it is a Level II oplock: MS-FSA 2.1.4.12 breaks
    /// every Level II oplock of the stream on a write or a byte-range lock, whoever
    /// holds it, while a lease or an exclusive/batch oplock is never broken by its own
    /// key.
    pub(crate) fn own_level2_oplock(&self, own: Option<LeaseId>) -> Option<LeaseId> {
        let own = own?;
        self.leases
            .get(&own)
            .is_some_and(|l| {
                l.lease.oplock
                    && l.lease.state.has(LeaseState::R)
                    && !l.lease.state.has(LeaseState::W)
            })
            .then_some(own)
    }

    /// A size change by path: everyone else's caching goes, and the requester waits.
    pub(crate) fn before_truncate(
        &mut self,
        sh: &Shared,
        w: Weak<dyn Withdraw>,
        file: FileId,
        by: &Requester,
        out: &mut Outbox,
    ) -> Result<BreakOutcome, LockError> {
        self.cause = (Some(by.owner), "truncate");
        let ids = self.other_leases(file, by);
        let now = sh.now();
        Ok(
            match self.break_leases(sh, &w, &ids, BreakReason::Truncate, true, now, out) {
                Some(wait) => BreakOutcome::Wait(wait),
                None => BreakOutcome::Proceed,
            },
        )
    }

    /// Unlink or rename of `file`: break H and W of other keys and wait; break R of
    /// directory leases on the parents (MS-SMB2 3.3.1.4) without waiting.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn before_namespace_change(
        &mut self,
        sh: &Shared,
        w: Weak<dyn Withdraw>,
        file: FileId,
        parents: &[Option<FileId>],
        reason: BreakReason,
        by: &Requester,
        out: &mut Outbox,
    ) -> Result<BreakOutcome, LockError> {
        self.cause = (
            Some(by.owner),
            if reason == BreakReason::Unlink {
                "unlink"
            } else {
                "rename"
            },
        );
        let now = sh.now();
        if self.grace_blocks(sh, file, now) {
            return Err(LockError::InGrace(file));
        }
        for p in parents.iter().flatten() {
            self.break_directory(sh, *p, by, out);
        }
        let mut ids = self.other_leases(file, by);
        if reason == BreakReason::Rename {
            // A renamed directory moves the files below it (directory.rs).
            self.add_leases_below(file, by, &mut ids);
        }
        Ok(
            match self.break_leases(sh, &w, &ids, reason, true, now, out) {
                Some(wait) => BreakOutcome::Wait(wait),
                None => BreakOutcome::Proceed,
            },
        )
    }

    pub(crate) fn operator_break(
        &mut self,
        sh: &Shared,
        w: Weak<dyn Withdraw>,
        file: FileId,
        to: LeaseState,
        out: &mut Outbox,
    ) -> Result<BreakOutcome, LockError> {
        self.cause = (None, "operator");
        let ids = self.other_leases(
            file,
            &Requester {
                owner: crate::types::OwnerId::new(
                    crate::types::Protocol::Control,
                    crate::types::ClientId([0; 16]),
                    0,
                ),
                lease: None,
            },
        );
        let now = sh.now();
        let mut pending = HashMap::new();
        for id in &ids {
            let target = self
                .leases
                .get(id)
                .map_or(to, |e| e.lease.state.intersect(to));
            self.break_to(sh, *id, target, BreakReason::Operator, now, out);
            self.collect_pending(*id, target, &mut pending);
        }
        Ok(if pending.is_empty() {
            BreakOutcome::Proceed
        } else {
            BreakOutcome::Wait(self.new_waiter(&w, pending))
        })
    }
}
