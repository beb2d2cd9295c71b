//! Directory leases: breaking the leases on a parent directory when a child appears,
//! disappears, is renamed in or out, or is modified.
//!
//! A directory lease (R or RH, MS-SMB2 3.3.5.9.11) lets a client cache the listing and
//! keep its directory handle open. MS-FSA 2.1.5.1.2.1 (a new child), 2.1.5.4 (a
//! modified or delete-pending child at cleanup) and 2.1.5.14.11 (rename, both parents)
//! break the parent's leases to None without making the operation wait for the
//! acknowledgment: the change happens at once and the holder only learns that its
//! cached listing is stale. The break of an RH lease still requires an ack (MS-SMB2
//! 3.3.4.7), and the usual deadline revokes a holder that never sends one.
//!
//! The exception is the requester's own parent lease: an open that named the
//! directory's lease key as its ParentLeaseKey (MS-SMB2 2.2.13.2.10) comes from the
//! client that holds that lease, which updates its own cache, so that lease is kept
//! (MS-FSA 2.1.4.13: the parent's oplock key equal to the requester's ParentOplockKey
//! is not broken).

use super::{LeaseId, LockManager, Outbox, Requester, Shared, State};
use crate::lease::{BreakReason, LeaseVersion};
use crate::types::{ClientId, FileId, LeaseKey, OpenId};
use crate::wait::Withdraw;
use crate::BreakOutcome;
use std::sync::Weak;

impl State {
    /// The parent lease the requester speaks for: the one it names explicitly (a
    /// CREATE's ParentLeaseKey, before its own lease exists) or the ParentLeaseKey its
    /// own V2 lease was granted with (unlink, rename and close through that handle).
    fn exempt_parent(&self, by: &Requester, explicit: Option<LeaseId>) -> Option<LeaseId> {
        explicit.or_else(|| {
            let (client, key) = by.lease?;
            match self.leases.get(&(client, key))?.lease.version {
                LeaseVersion::V2 {
                    parent: Some(parent),
                } => Some((client, parent)),
                _ => None,
            }
        })
    }

    /// Breaks the leases on directory `dir` to None without waiting, except the
    /// requester's own parent lease.
    pub(crate) fn break_directory_except(
        &mut self,
        sh: &Shared,
        dir: FileId,
        by: &Requester,
        parent_lease: Option<LeaseId>,
        out: &mut Outbox,
    ) {
        let exempt = self.exempt_parent(by, parent_lease);
        let ids: Vec<LeaseId> = self
            .other_leases(dir, by)
            .into_iter()
            .filter(|id| Some(*id) != exempt)
            .collect();
        if ids.is_empty() {
            return;
        }
        let now = sh.now();
        // Nobody waits for these breaks, so no waiter is registered (no withdraw).
        let none: Weak<dyn Withdraw> = Weak::<Shared>::new();
        self.break_leases(
            sh,
            &none,
            &ids,
            BreakReason::DirectoryChange,
            false,
            now,
            out,
        );
    }

    /// Adds to `ids` the leases of opens below directory `dir` (its front end reported
    /// `dir` among their ancestors), except the requester's: renaming a directory
    /// changes the path of everything below it, so their handle caching goes as for
    /// a rename of the file itself (DESIGN.md "rename of the file or its parent";
    /// MS-FSA 2.1.5.14.11 refuses to rename a directory with open files below, after
    /// breaking their handle caching).
    pub(crate) fn add_leases_below(&self, dir: FileId, by: &Requester, ids: &mut Vec<LeaseId>) {
        for (open, dirs) in &self.ancestors {
            if !dirs.contains(&dir) {
                continue;
            }
            let Some(id) = self.opens.get(open).and_then(|o| o.lease) else {
                continue;
            };
            if Some(id) != by.lease && !ids.contains(&id) {
                ids.push(id);
            }
        }
    }

    fn set_ancestors(&mut self, open: OpenId, dirs: Vec<FileId>) {
        if !self.opens.contains_key(&open) {
            return;
        }
        // Closed opens are dropped here, in bulk, rather than on every close.
        if self.ancestors.len() >= 2 * self.opens.len() + 64 {
            let opens = &self.opens;
            self.ancestors.retain(|o, _| opens.contains_key(o));
        }
        self.ancestors.insert(open, dirs);
    }

    pub(crate) fn break_directory(
        &mut self,
        sh: &Shared,
        dir: FileId,
        by: &Requester,
        out: &mut Outbox,
    ) {
        self.break_directory_except(sh, dir, by, None, out);
    }
}

impl LockManager {
    /// Tells the manager which directories are above `open`'s file (any order; the
    /// share or mount root need not be listed). Renaming one of them then breaks the
    /// handle caching of `open`'s lease and waits, as a rename of the file does. A
    /// hint kept in memory only: after a restart, reopens report it again.
    pub fn set_ancestors(&self, open: OpenId, dirs: Vec<FileId>) {
        let ((), out) = self
            .shared
            .with_state(|st, _sh, _out| st.set_ancestors(open, dirs));
        self.shared.deliver(out);
    }

    /// Something changed in directory `dir` (a child created, deleted, renamed in or
    /// out, or modified): breaks the directory's leases to None without waiting,
    /// except `parent_lease`, the lease the requester named as its ParentLeaseKey
    /// (MS-SMB2 2.2.13.2.10), and the parent lease of the requester's own V2 lease.
    /// Never returns `Wait`; the outcome type matches the other triggers.
    pub fn break_parent(
        &self,
        dir: FileId,
        by: &Requester,
        parent_lease: Option<(ClientId, LeaseKey)>,
    ) -> BreakOutcome {
        self.trigger(|st, sh, _w, out| {
            st.break_directory_except(sh, dir, by, parent_lease, out);
            Ok(BreakOutcome::Proceed)
        })
    }
}
