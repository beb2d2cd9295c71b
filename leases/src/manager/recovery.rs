//! Recovery after an unclean stop: a grace period during which former owners reclaim
//! what the store held (by client id, never more than was held), after which the rest
//! is dropped. New conflicting state on a file with reclaimable state waits for grace.

use super::opens::{lease_record, open_record};
use super::{OpenGrant, OpenRequest, Outbox, Shared, State};
use crate::brlock::{HeldLock, LockKind, LockOwner};
use crate::lease::{LeaseRequest, LeaseState};
use crate::range::ByteRange;
use crate::store::Snapshot;
use crate::types::{Access, FileId, OwnerId, ShareAccess};
use std::time::Instant;

pub(crate) struct Grace {
    pub until: Instant,
    pub reclaimable: Snapshot,
}

impl Grace {
    pub(crate) fn new(reclaimable: Snapshot, until: Instant) -> Self {
        Self { until, reclaimable }
    }

    fn touches(&self, file: FileId) -> bool {
        self.reclaimable.locks.contains_key(&file)
            || self.reclaimable.opens.values().any(|o| o.file == file)
    }
}

/// State a former owner asks to get back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaim {
    Open {
        file: FileId,
        access: Access,
        share: ShareAccess,
        is_dir: bool,
        lease: Option<LeaseRequest>,
    },
    /// A POSIX/NLM byte-range lock.
    Lock {
        file: FileId,
        lock_owner: u64,
        range: ByteRange,
        kind: LockKind,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReclaimError {
    #[error("not in the grace period")]
    NotInGrace,
    #[error("nothing to reclaim on that file")]
    NotFound,
    #[error("the state was held by another client")]
    WrongClient,
    #[error("the claim exceeds what was held")]
    Exceeds,
}

impl State {
    /// Whether grace is running; ends it (dropping leftovers) once its time is up.
    pub(crate) fn grace_active(&mut self, sh: &Shared, now: Instant) -> bool {
        match &self.grace {
            None => false,
            Some(g) if now >= g.until => {
                self.end_grace(sh);
                false
            }
            Some(_) => true,
        }
    }

    pub(crate) fn grace_blocks(&mut self, sh: &Shared, file: FileId, now: Instant) -> bool {
        self.grace_active(sh, now) && self.grace.as_ref().is_some_and(|g| g.touches(file))
    }

    pub(crate) fn end_grace(&mut self, sh: &Shared) {
        let Some(g) = self.grace.take() else { return };
        let dropped =
            g.reclaimable.opens.len() + g.reclaimable.leases.len() + g.reclaimable.locks.len();
        for id in g.reclaimable.opens.keys() {
            sh.store_result("drop open", sh.store.remove_open(*id));
        }
        for (c, k) in g.reclaimable.leases.keys() {
            if !self.leases.contains_key(&(*c, *k)) {
                sh.store_result("drop lease", sh.store.remove_lease(*c, *k));
            }
        }
        for file in g.reclaimable.locks.keys() {
            self.store_locks(sh, *file);
        }
        tracing::info!(dropped, "grace period over; unreclaimed state dropped");
    }

    /// Writes the file's lock list: live locks plus, during grace, unreclaimed ones.
    pub(crate) fn store_locks(&self, sh: &Shared, file: FileId) {
        let mut held: Vec<HeldLock> = self
            .files
            .get(&file)
            .map(|f| f.locks.held().to_vec())
            .unwrap_or_default();
        if let Some(g) = &self.grace {
            if let Some(extra) = g.reclaimable.locks.get(&file) {
                held.extend_from_slice(extra);
            }
        }
        sh.store_result("put locks", sh.store.put_locks(file, &held));
    }

    pub(crate) fn reclaim(
        &mut self,
        sh: &Shared,
        owner: OwnerId,
        claim: &Reclaim,
        out: &mut Outbox,
    ) -> Result<Option<OpenGrant>, ReclaimError> {
        let now = sh.now();
        if !self.grace_active(sh, now) {
            return Err(ReclaimError::NotInGrace);
        }
        let Some(g) = self.grace.as_mut() else {
            return Err(ReclaimError::NotInGrace);
        };
        match *claim {
            Reclaim::Open {
                file,
                access,
                share,
                is_dir,
                lease,
            } => {
                let on_file: Vec<_> = g
                    .reclaimable
                    .opens
                    .values()
                    .filter(|o| o.file == file)
                    .cloned()
                    .collect();
                if on_file.is_empty() {
                    return Err(ReclaimError::NotFound);
                }
                let mine: Vec<_> = on_file
                    .into_iter()
                    .filter(|o| o.owner.client == owner.client)
                    .collect();
                if mine.is_empty() {
                    return Err(ReclaimError::WrongClient);
                }
                let fits = |o: &crate::store::OpenRecord| {
                    let acc_ok = (!access.read || o.access.read)
                        && (!access.write || o.access.write)
                        && (!access.delete || o.access.delete);
                    let share_ok = share.contains(o.share);
                    let lease_ok = match lease {
                        None => true,
                        Some(l) => {
                            o.lease == Some((l.client, l.key))
                                && g.reclaimable
                                    .leases
                                    .get(&(l.client, l.key))
                                    .is_some_and(|r| l.state.is_subset_of(r.state))
                        }
                    };
                    acc_ok && share_ok && lease_ok && o.is_dir == is_dir
                };
                let Some(rec) = mine.into_iter().find(fits) else {
                    return Err(ReclaimError::Exceeds);
                };
                g.reclaimable.opens.remove(&rec.id);
                sh.store_result("reclaimed open", sh.store.remove_open(rec.id));
                // The epoch the client last heard (MS-SMB2 3.3.4.7 / 3.3.5.9.8); a reclaimed
                // lease resumes from it rather than starting over at 1.
                let persisted_epoch = rec
                    .lease
                    .and_then(|lid| g.reclaimable.leases.get(&lid))
                    .map(|r| r.epoch);
                let mut unclaimed_lease = None;
                if let Some(lid) = rec.lease {
                    if !g.reclaimable.opens.values().any(|o| o.lease == Some(lid)) {
                        g.reclaimable.leases.remove(&lid);
                        unclaimed_lease = Some(lid);
                    }
                }
                let req = OpenRequest {
                    file,
                    owner,
                    access,
                    share,
                    stat_only: rec.stat_only,
                    // Not persisted: after a restart such an open counts as a data open.
                    metadata_only: false,
                    overwrite: false,
                    writes_unseen: rec.writes_unseen,
                    is_dir,
                    lease: lease.map(|l| LeaseRequest {
                        state: l.state.intersect(LeaseState::RWH),
                        ..l
                    }),
                };
                // No share checks or breaks: during grace the only other state on the file is
                // reclaimed state, which was compatible before the stop.
                let mut grant = self.register_open(sh, &req, true);
                if let (Some(lid), Some(epoch)) = (rec.lease, persisted_epoch) {
                    if let Some(le) = self.leases.get_mut(&lid) {
                        if le.opens.len() == 1 && le.lease.epoch != epoch {
                            le.lease.epoch = epoch;
                            let lrec = lease_record(&le.lease);
                            sh.store_result("put lease", sh.store.put_lease(&lrec));
                            if let Some(l) = grant.lease.as_mut() {
                                l.epoch = epoch;
                            }
                        }
                    }
                }
                // The persisted lease left the reclaimable set with its last open. If the
                // reclaim did not take it back under the same key (reclaimed without a
                // lease, or an oplock, whose private key follows the new open id), its
                // record must go too, or the store keeps a lease nobody holds and
                // offers it again after the next unclean stop.
                if let Some(lid) = unclaimed_lease {
                    if !self.leases.contains_key(&lid) {
                        sh.store_result(
                            "drop unclaimed lease",
                            sh.store.remove_lease(lid.0, lid.1),
                        );
                    }
                }
                Ok(Some(grant))
            }
            Reclaim::Lock {
                file,
                lock_owner,
                range,
                kind,
            } => {
                let Some(list) = g.reclaimable.locks.get_mut(&file) else {
                    return Err(ReclaimError::NotFound);
                };
                let idx = list.iter().position(|h| {
                    matches!(h.owner, LockOwner::Posix { owner: o, .. } if o.client == owner.client)
                        && h.range.contains(&range)
                        && (kind == LockKind::Shared || h.kind == LockKind::Exclusive)
                });
                let Some(idx) = idx else {
                    let any_mine = list.iter().any(|h| matches!(h.owner, LockOwner::Posix { owner: o, .. } if o.client == owner.client));
                    return Err(if any_mine {
                        ReclaimError::Exceeds
                    } else {
                        ReclaimError::WrongClient
                    });
                };
                let old = list.remove(idx);
                for part in old.range.subtract(&range) {
                    list.push(HeldLock {
                        owner: old.owner,
                        range: part,
                        kind: old.kind,
                    });
                }
                if list.is_empty() {
                    g.reclaimable.locks.remove(&file);
                }
                let new_owner = LockOwner::Posix { owner, lock_owner };
                self.file_mut(file).locks.insert(new_owner, range, kind);
                self.owner_lock_files.entry(owner).or_default().insert(file);
                self.store_locks(sh, file);
                let _ = out;
                Ok(None)
            }
        }
    }

    /// The state as it should be persisted: live state plus unreclaimed state.
    pub(crate) fn persisted_view(&self) -> Snapshot {
        let mut s = Snapshot::default();
        for (id, e) in &self.opens {
            s.opens.insert(*id, open_record(*id, &e.req, e.lease));
        }
        for (lid, e) in &self.leases {
            s.leases.insert(*lid, lease_record(&e.lease));
        }
        for (file, f) in &self.files {
            if !f.locks.is_empty() {
                s.locks.insert(*file, f.locks.held().to_vec());
            }
        }
        if let Some(g) = &self.grace {
            for (id, o) in &g.reclaimable.opens {
                s.opens.insert(*id, o.clone());
            }
            for (lid, l) in &g.reclaimable.leases {
                s.leases.entry(*lid).or_insert_with(|| l.clone());
            }
            for (file, locks) in &g.reclaimable.locks {
                s.locks.entry(*file).or_default().extend_from_slice(locks);
            }
        }
        for v in s.locks.values_mut() {
            v.sort();
        }
        s
    }
}
