//! The lock manager: one table of opens, leases and byte-range locks for every front end.
//!
//! All state sits behind one mutex. Operations decide under the lock and collect what
//! must happen outside it (break notifications, waking waiters) into an [`Outbox`] that
//! is delivered after the lock is released: a sink may block or call back into the
//! manager (DESIGN.md, break engine rules).

mod breaks;
mod deadline;
mod directory;
mod locks;
mod open_breaks;
mod opens;
mod recovery;
mod view;

pub use opens::oplock_key;
pub use recovery::{Reclaim, ReclaimError};
pub use view::{LeaseView, LockView, OpenView, StateView};

use crate::brlock::LockKind;
use crate::brlock::{LockOwner, LockTable};
use crate::clock::{Clock, SystemClock};
use crate::error::LockError;
use crate::error::StoreError;
use crate::lease::{BreakNotice, Lease, LeaseState};
use crate::range::ByteRange;
use crate::store::{LockStore, MemoryStore, SledStore, Snapshot, StartInfo};
use crate::types::{Access, ClientId, FileId, LeaseKey, OpenId, OwnerId, ShareAccess};
use crate::wait::{Slot, WakeReason, Withdraw};
use parking_lot::{Condvar, Mutex};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default break deadline: Windows' OplockBreakWait and Samba's OPLOCK_BREAK_TIMEOUT.
pub const DEFAULT_BREAK_TIMEOUT: Duration = Duration::from_secs(35);
/// How long former owners may reclaim state after an unclean stop.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(45);

/// Receives break notifications for the owners it was registered for. Called with no
/// manager lock held; it must not block for long (queue the notice and return).
pub trait BreakSink: Send + Sync {
    fn deliver(&self, notice: BreakNotice);
}

#[derive(Clone)]
pub struct ManagerConfig {
    /// Where the sled store lives; `None` keeps state in memory only.
    pub state_dir: Option<PathBuf>,
    pub break_timeout: Duration,
    pub grace_period: Duration,
    /// Flush the store after every change (see the `store` module on durability).
    pub sync_writes: bool,
    /// Time source; `None` is the system clock.
    pub clock: Option<Arc<dyn Clock>>,
    /// Run the deadline thread. Tests driving a manual clock turn it off and call
    /// [`LockManager::expire_due`].
    pub drive_deadlines: bool,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            state_dir: None,
            break_timeout: DEFAULT_BREAK_TIMEOUT,
            grace_period: DEFAULT_GRACE_PERIOD,
            sync_writes: false,
            clock: None,
            drive_deadlines: true,
        }
    }
}

impl std::fmt::Debug for ManagerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerConfig")
            .field("state_dir", &self.state_dir)
            .field("break_timeout", &self.break_timeout)
            .field("grace_period", &self.grace_period)
            .field("sync_writes", &self.sync_writes)
            .field("drive_deadlines", &self.drive_deadlines)
            .finish()
    }
}

/// Counters for benchmarks, metrics and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub breaks_sent: AtomicU64,
    pub acks: AtomicU64,
    pub revokes: AtomicU64,
    /// Sum and maximum of how late revocations landed after their deadline.
    pub revoke_late_ns_total: AtomicU64,
    pub revoke_late_ns_max: AtomicU64,
    pub store_errors: AtomicU64,
}

impl Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// An open as the manager sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenRequest {
    pub file: FileId,
    pub owner: OwnerId,
    pub access: Access,
    pub share: ShareAccess,
    /// Attributes/synchronize only (MS-FSA 2.1.4.12's stat open): breaks nothing and
    /// is ignored by share modes. A front end must not set it for an open that
    /// truncates (`overwrite`): that open writes.
    pub stat_only: bool,
    /// No data access, but more than `stat_only` allows: the security descriptor
    /// (READ_CONTROL) too. Such an open breaks traditional oplocks but not leases
    /// (see `open_breaks`).
    pub metadata_only: bool,
    /// Truncates or supersedes the file (O_TRUNC, FILE_OVERWRITE, FILE_SUPERSEDE).
    pub overwrite: bool,
    /// The front end will not report this open's writes (kernel FUSE passthrough), so
    /// nobody else may cache reads (if it writes) or writes (if it reads) meanwhile.
    pub writes_unseen: bool,
    pub is_dir: bool,
    pub lease: Option<crate::lease::LeaseRequest>,
}

impl OpenRequest {
    /// A plain open with no lease, sharing everything.
    pub fn new(file: FileId, owner: OwnerId, access: Access) -> Self {
        Self {
            file,
            owner,
            access,
            share: ShareAccess::ALL,
            stat_only: false,
            metadata_only: false,
            overwrite: false,
            writes_unseen: false,
            is_dir: false,
            lease: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenGrant {
    pub open: OpenId,
    pub lease: Option<crate::lease::LeaseGrant>,
}

#[derive(Debug)]
pub enum OpenOutcome {
    Opened(OpenGrant),
    /// Other holders are being broken: wait, then call `open` again with the same request.
    Wait(crate::wait::BreakWait),
}

#[derive(Debug)]
pub enum BreakOutcome {
    Proceed,
    Wait(crate::wait::BreakWait),
}

impl BreakOutcome {
    /// Blocks until the operation may proceed; returns why the wait ended, if any.
    pub fn wait(self) -> Option<WakeReason> {
        match self {
            BreakOutcome::Proceed => None,
            BreakOutcome::Wait(w) => Some(w.wait()),
        }
    }
}

/// Who asks for an operation; leases with the requester's key are never broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requester {
    pub owner: OwnerId,
    pub lease: Option<(ClientId, LeaseKey)>,
}

impl Requester {
    pub fn owner(owner: OwnerId) -> Self {
        Self { owner, lease: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockRequest {
    pub file: FileId,
    pub owner: LockOwner,
    pub range: ByteRange,
    pub kind: LockKind,
    /// Queue behind conflicting locks instead of failing.
    pub wait: bool,
}

#[derive(Debug)]
pub enum LockOutcome {
    Granted,
    Wait(crate::wait::LockWait),
}

pub(crate) type LeaseId = (ClientId, LeaseKey);
pub(crate) type LockSlot = Slot<Result<(), LockError>>;

#[derive(Clone, Debug)]
pub(crate) struct OpenEntry {
    pub req: OpenRequest,
    pub id: OpenId,
    pub lease: Option<LeaseId>,
}

pub(crate) struct LeaseEntry {
    pub lease: Lease,
    pub opens: Vec<OpenId>,
    /// Break waiters that need this lease to come down.
    pub waiters: Vec<u64>,
}

pub(crate) struct BreakWaiter {
    pub slot: Arc<Slot<WakeReason>>,
    /// Leases still above what this waiter needs, with the state it needs.
    pub pending: HashMap<LeaseId, LeaseState>,
}

pub(crate) struct PendingLock {
    pub id: u64,
    pub req: LockRequest,
    pub slot: Arc<LockSlot>,
}

#[derive(Default)]
pub(crate) struct FileEntry {
    pub opens: Vec<OpenId>,
    pub leases: Vec<LeaseId>,
    pub locks: LockTable,
    pub pending: VecDeque<PendingLock>,
}

impl FileEntry {
    fn is_idle(&self) -> bool {
        self.opens.is_empty()
            && self.leases.is_empty()
            && self.locks.is_empty()
            && self.pending.is_empty()
    }
}

/// Work to do once the manager lock is released.
#[derive(Default)]
pub(crate) struct Outbox {
    pub notices: Vec<(Arc<dyn BreakSink>, BreakNotice)>,
    pub wakes: Vec<(Arc<Slot<WakeReason>>, WakeReason)>,
    pub lock_wakes: Vec<(Arc<LockSlot>, Result<(), LockError>)>,
    pub events: Vec<crate::events::Event>,
}

pub(crate) struct State {
    pub next_open: u64,
    pub next_wait: u64,
    pub opens: HashMap<OpenId, OpenEntry>,
    pub files: HashMap<FileId, FileEntry>,
    pub leases: HashMap<LeaseId, LeaseEntry>,
    pub waiters: HashMap<u64, BreakWaiter>,
    /// Blocked lock requests: wait id -> file.
    pub lock_waits: HashMap<u64, FileId>,
    pub deadlines: BinaryHeap<Reverse<(Instant, u64, LeaseId)>>,
    pub sinks: HashMap<OwnerId, Arc<dyn BreakSink>>,
    pub owner_opens: HashMap<OwnerId, HashSet<OpenId>>,
    pub owner_lock_files: HashMap<OwnerId, HashSet<FileId>>,
    pub grace: Option<recovery::Grace>,
    pub shutdown: bool,
    /// Event subscribers; events are only built while there is one.
    pub subscribers: Vec<(u64, Arc<dyn crate::events::EventSink>)>,
    /// The operation being run and who asked, stamped on its events.
    pub cause: (Option<OwnerId>, &'static str),
    /// Directories above a leased open's file, as its front end reported them
    /// (directory.rs: renaming one breaks the open's handle caching).
    pub ancestors: HashMap<OpenId, Vec<FileId>>,
}

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub deadline_cv: Condvar,
    pub store: Box<dyn LockStore>,
    pub clock: Arc<dyn Clock>,
    pub config: ManagerConfig,
    pub stats: Stats,
    pub start: StartInfo,
}

/// The lock manager. Cheap to share behind an `Arc`; every method is thread-safe.
pub struct LockManager {
    shared: Arc<Shared>,
    deadline_thread: Option<JoinHandle<()>>,
}

impl LockManager {
    /// Opens the store the config names (sled under `state_dir`, else memory), starts a
    /// new server epoch and, after an unclean stop, enters the grace period.
    pub fn open_store(config: ManagerConfig) -> Result<Arc<Self>, StoreError> {
        let store: Box<dyn LockStore> = match &config.state_dir {
            Some(dir) => Box::new(SledStore::open(dir)?),
            None => Box::new(MemoryStore::new()),
        };
        Self::with_store(config, store)
    }

    /// A manager over an in-memory store with the default configuration.
    pub fn in_memory() -> Arc<Self> {
        match Self::with_store(ManagerConfig::default(), Box::new(MemoryStore::new())) {
            Ok(m) => m,
            Err(e) => unreachable!("the memory store cannot fail: {e}"),
        }
    }

    pub fn with_store(
        config: ManagerConfig,
        store: Box<dyn LockStore>,
    ) -> Result<Arc<Self>, StoreError> {
        let start = store.begin()?;
        let persisted = store.load()?;
        let clock: Arc<dyn Clock> = config
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock));
        let now = clock.now();
        let mut state = State {
            next_open: 1,
            next_wait: 1,
            opens: HashMap::new(),
            files: HashMap::new(),
            leases: HashMap::new(),
            waiters: HashMap::new(),
            lock_waits: HashMap::new(),
            deadlines: BinaryHeap::new(),
            sinks: HashMap::new(),
            owner_opens: HashMap::new(),
            owner_lock_files: HashMap::new(),
            grace: None,
            shutdown: false,
            subscribers: Vec::new(),
            cause: (None, ""),
            ancestors: HashMap::new(),
        };
        if start.previous_clean || persisted.is_empty() {
            if !persisted.is_empty() {
                store.clear()?;
            }
        } else {
            state.next_open = persisted.opens.keys().map(|o| o.0 + 1).max().unwrap_or(1);
            tracing::info!(
                epoch = start.epoch,
                opens = persisted.opens.len(),
                leases = persisted.leases.len(),
                lock_files = persisted.locks.len(),
                "unclean stop: entering the reclaim grace period"
            );
            state.grace = Some(recovery::Grace::new(persisted, now + config.grace_period));
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            deadline_cv: Condvar::new(),
            store,
            clock,
            config: config.clone(),
            stats: Stats::default(),
            start,
        });
        let deadline_thread = if config.drive_deadlines {
            Some(deadline::spawn(shared.clone()))
        } else {
            None
        };
        Ok(Arc::new(Self {
            shared,
            deadline_thread,
        }))
    }

    pub fn config(&self) -> &ManagerConfig {
        &self.shared.config
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// This run's server epoch and what the previous run left.
    pub fn start_info(&self) -> StartInfo {
        self.shared.start
    }

    /// Subscribes to the event stream; returns an id for [`LockManager::unsubscribe`].
    pub fn subscribe(&self, sink: Arc<dyn crate::events::EventSink>) -> u64 {
        let mut st = self.shared.state.lock();
        let id = st.next_wait_id();
        st.subscribers.push((id, sink));
        id
    }

    pub fn unsubscribe(&self, id: u64) {
        self.shared
            .state
            .lock()
            .subscribers
            .retain(|(i, _)| *i != id);
    }

    /// Routes break notifications for `owner` to `sink`. Register before the owner's
    /// first lease request so a break that fires at once has somewhere to go.
    pub fn register_sink(&self, owner: OwnerId, sink: Arc<dyn BreakSink>) {
        self.shared.state.lock().sinks.insert(owner, sink);
    }

    /// The owner's connection is gone: close its opens, drop its leases, locks and
    /// queued lock requests, and let everyone waiting on them proceed.
    pub fn owner_gone(&self, owner: OwnerId) {
        let out = {
            let mut st = self.shared.state.lock();
            let mut out = Outbox::default();
            st.cause = (Some(owner), "disconnect");
            st.emit(
                None,
                Some(owner),
                crate::events::EventKind::Disconnect,
                &mut out,
            );
            st.owner_gone(&self.shared, owner, &mut out);
            st.cause = (None, "");
            out
        };
        self.shared.deliver(out);
    }

    /// Registers an open after share-mode checks and the breaks it triggers.
    pub fn open(&self, req: &OpenRequest) -> Result<OpenOutcome, LockError> {
        let (res, out) = self
            .shared
            .with_state(|st, sh, out| st.open(sh, self.weak(), req, out));
        self.shared.deliver(out);
        res
    }

    pub fn close(&self, open: OpenId) {
        let ((), out) = self
            .shared
            .with_state(|st, sh, out| st.close(sh, open, WakeReason::Released, out));
        self.shared.deliver(out);
    }

    /// Acknowledges a break (MS-SMB2 3.3.5.22.2); returns the state the lease now holds.
    pub fn ack_break(
        &self,
        client: ClientId,
        key: LeaseKey,
        state: LeaseState,
    ) -> Result<LeaseState, crate::error::AckError> {
        let (res, out) = self
            .shared
            .with_state(|st, sh, out| st.ack((client, key), state, sh, out));
        self.shared.deliver(out);
        res
    }

    /// Acknowledges an oplock break on an open (MS-SMB2 3.3.5.22.1).
    pub fn ack_oplock(
        &self,
        open: OpenId,
        state: LeaseState,
    ) -> Result<LeaseState, crate::error::AckError> {
        let (res, out) = self.shared.with_state(|st, sh, out| {
            let id = st
                .opens
                .get(&open)
                .and_then(|o| o.lease)
                .ok_or(crate::error::AckError::NotFound)?;
            st.ack(id, state, sh, out)
        });
        self.shared.deliver(out);
        res
    }

    /// A data write or size change through `open` is about to happen.
    pub fn before_write(&self, open: OpenId) -> BreakOutcome {
        self.trigger(|st, sh, w, out| st.before_write(sh, w, open, out))
    }

    /// The file's size is about to change outside an open (truncate by path).
    pub fn before_truncate(&self, file: FileId, by: &Requester) -> BreakOutcome {
        self.trigger(|st, sh, w, out| st.before_truncate(sh, w, file, by, out))
    }

    /// The file is about to be unlinked from `parent`.
    pub fn before_unlink(
        &self,
        file: FileId,
        parent: Option<FileId>,
        by: &Requester,
    ) -> BreakOutcome {
        self.trigger(|st, sh, w, out| {
            st.before_namespace_change(
                sh,
                w,
                file,
                &[parent],
                crate::lease::BreakReason::Unlink,
                by,
                out,
            )
        })
    }

    /// The file is about to be renamed (or linked over).
    pub fn before_rename(
        &self,
        file: FileId,
        from_parent: Option<FileId>,
        to_parent: Option<FileId>,
        by: &Requester,
    ) -> BreakOutcome {
        self.trigger(|st, sh, w, out| {
            st.before_namespace_change(
                sh,
                w,
                file,
                &[from_parent, to_parent],
                crate::lease::BreakReason::Rename,
                by,
                out,
            )
        })
    }

    /// A child is about to be created in directory `parent` (breaks directory leases;
    /// see `directory.rs`, and `break_parent` for a requester naming a parent lease).
    pub fn before_create_child(&self, parent: FileId, by: &Requester) -> BreakOutcome {
        self.break_parent(parent, by, None)
    }

    /// Operator-initiated break of every lease on `file` down to `to`, subject to the
    /// same ack and deadline rules.
    pub fn break_file(&self, file: FileId, to: LeaseState) -> BreakOutcome {
        self.trigger(|st, sh, w, out| st.operator_break(sh, w, file, to, out))
    }

    /// Takes a byte-range lock.
    pub fn lock(&self, req: &LockRequest) -> Result<LockOutcome, LockError> {
        let (res, out) = self
            .shared
            .with_state(|st, sh, out| st.lock(sh, self.weak(), req, out));
        self.shared.deliver(out);
        res
    }

    pub fn unlock(
        &self,
        file: FileId,
        owner: LockOwner,
        range: ByteRange,
    ) -> Result<(), LockError> {
        let (res, out) = self
            .shared
            .with_state(|st, sh, out| st.unlock(sh, file, owner, range, out));
        self.shared.deliver(out);
        res
    }

    /// The first lock that would conflict with `req`, without taking anything.
    pub fn test_lock(&self, req: &LockRequest) -> Option<crate::brlock::LockConflict> {
        let st = self.shared.state.lock();
        st.files
            .get(&req.file)
            .and_then(|f| f.locks.first_conflict(&req.owner, &req.range, req.kind))
    }

    /// POSIX close semantics: drop every lock this lock owner holds on the file.
    pub fn release_posix_locks(&self, file: FileId, owner: OwnerId, lock_owner: u64) {
        let ((), out) = self.shared.with_state(|st, sh, out| {
            st.release_lock_owner(sh, file, LockOwner::Posix { owner, lock_owner }, out)
        });
        self.shared.deliver(out);
    }

    /// Revokes every lease whose deadline has passed by the manager's clock. The deadline
    /// thread calls this itself; tests with a manual clock call it by hand.
    pub fn expire_due(&self) -> usize {
        let (n, out) = self.shared.with_state(|st, sh, out| st.expire_due(sh, out));
        self.shared.deliver(out);
        n
    }

    /// The earliest pending break deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.shared.state.lock().next_deadline()
    }

    /// Reclaims state persisted before an unclean stop, during the grace period.
    pub fn reclaim(
        &self,
        owner: OwnerId,
        claim: &Reclaim,
    ) -> Result<Option<OpenGrant>, ReclaimError> {
        let (res, out) = self
            .shared
            .with_state(|st, sh, out| st.reclaim(sh, owner, claim, out));
        self.shared.deliver(out);
        res
    }

    /// Whether the grace period is running (it ends at its deadline or with `end_grace`).
    pub fn in_grace(&self) -> bool {
        let now = self.shared.clock.now();
        let mut st = self.shared.state.lock();
        st.grace_active(&self.shared, now)
    }

    /// Ends the grace period now, dropping whatever was not reclaimed.
    pub fn end_grace(&self) {
        let mut st = self.shared.state.lock();
        st.end_grace(&self.shared);
    }

    /// The state as it should be persisted (live state plus unreclaimed state in grace).
    pub fn persisted_view(&self) -> Snapshot {
        self.shared.state.lock().persisted_view()
    }

    /// What the store holds now.
    pub fn store_snapshot(&self) -> Result<Snapshot, StoreError> {
        self.shared.store.load()
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.shared.store.flush()
    }

    /// A read-only picture of everything held, for `leasefs locks` and tests.
    pub fn view(&self) -> StateView {
        let now = self.shared.clock.now();
        self.shared.state.lock().view(now)
    }

    /// Clean shutdown: releases everything and writes the clean marker, so the next
    /// start has nothing to reclaim.
    pub fn shutdown_clean(&self) -> Result<(), StoreError> {
        let out = {
            let mut st = self.shared.state.lock();
            let mut out = Outbox::default();
            let owners: Vec<OwnerId> = st
                .owner_opens
                .keys()
                .chain(st.owner_lock_files.keys())
                .copied()
                .collect();
            for o in owners {
                st.owner_gone(&self.shared, o, &mut out);
            }
            out
        };
        self.shared.deliver(out);
        self.shared.store.clear()?;
        self.shared.store.mark_clean()
    }

    fn weak(&self) -> std::sync::Weak<dyn Withdraw> {
        let s: Arc<dyn Withdraw> = self.shared.clone();
        Arc::downgrade(&s)
    }

    fn trigger(
        &self,
        f: impl FnOnce(
            &mut State,
            &Shared,
            std::sync::Weak<dyn Withdraw>,
            &mut Outbox,
        ) -> Result<BreakOutcome, LockError>,
    ) -> BreakOutcome {
        let w = self.weak();
        let (res, out) = self.shared.with_state(|st, sh, out| f(st, sh, w, out));
        self.shared.deliver(out);
        res.unwrap_or(BreakOutcome::Proceed)
    }
}

impl Drop for LockManager {
    fn drop(&mut self) {
        // DESIGN.md: every waiter is woken. Nothing can ack, revoke or release for a
        // manager that is gone, so requesters still blocked on a break or a queued
        // lock are cancelled rather than left waiting forever (the deadline thread
        // stops with it). State stays as it is in the store: without
        // `shutdown_clean` the next start treats it as an unclean stop.
        let out = {
            let mut st = self.shared.state.lock();
            st.shutdown = true;
            st.cancel_all_waits()
        };
        self.shared.deadline_cv.notify_all();
        if let Some(t) = self.deadline_thread.take() {
            let _ = t.join();
        }
        self.shared.deliver(out);
        let _ = self.shared.store.flush();
    }
}

impl Shared {
    fn with_state<T>(&self, f: impl FnOnce(&mut State, &Shared, &mut Outbox) -> T) -> (T, Outbox) {
        let mut out = Outbox::default();
        let res = {
            let mut st = self.state.lock();
            let r = f(&mut st, self, &mut out);
            st.cause = (None, "");
            r
        };
        (res, out)
    }

    /// Delivers notices and wakes waiters; never called with the state lock held.
    pub(crate) fn deliver(&self, out: Outbox) {
        if !out.events.is_empty() {
            let subs = self.state.lock().subscribers.clone();
            for e in &out.events {
                for (_, s) in &subs {
                    s.event(e);
                }
            }
        }
        for (slot, reason) in out.wakes {
            slot.complete(reason);
        }
        for (slot, res) in out.lock_wakes {
            slot.complete(res);
        }
        for (sink, notice) in out.notices {
            sink.deliver(notice);
        }
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Logs and counts a store failure; lock state in memory stays authoritative.
    pub(crate) fn store_result(&self, what: &str, r: Result<(), StoreError>) {
        match r {
            Ok(()) => {
                if self.config.sync_writes {
                    if let Err(e) = self.store.flush() {
                        self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "store flush failed");
                    }
                }
            }
            Err(e) => {
                self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, what, "store write failed");
            }
        }
    }
}

impl Withdraw for Shared {
    fn withdraw(&self, id: u64) {
        let mut out = Outbox::default();
        {
            let mut st = self.state.lock();
            st.withdraw(self, id, &mut out);
        }
        self.deliver(out);
    }
}

impl State {
    /// Records an event if anyone listens.
    pub(crate) fn emit(
        &self,
        file: Option<FileId>,
        owner: Option<OwnerId>,
        kind: crate::events::EventKind,
        out: &mut Outbox,
    ) {
        if self.subscribers.is_empty() {
            return;
        }
        out.events.push(crate::events::Event {
            at: std::time::SystemTime::now(),
            file,
            owner,
            cause: self.cause.0,
            op: self.cause.1,
            kind,
        });
    }

    pub(crate) fn file_mut(&mut self, file: FileId) -> &mut FileEntry {
        self.files.entry(file).or_default()
    }

    /// Forgets a file entry that no longer holds anything.
    pub(crate) fn gc_file(&mut self, file: FileId) {
        if self.files.get(&file).is_some_and(|f| f.is_idle()) {
            self.files.remove(&file);
        }
    }

    /// Completes every pending break wait and queued lock request as cancelled.
    fn cancel_all_waits(&mut self) -> Outbox {
        let mut out = Outbox::default();
        for (_, bw) in self.waiters.drain() {
            out.wakes.push((bw.slot, WakeReason::Cancelled));
        }
        for e in self.leases.values_mut() {
            e.waiters.clear();
        }
        self.lock_waits.clear();
        for f in self.files.values_mut() {
            for p in f.pending.drain(..) {
                out.lock_wakes.push((p.slot, Err(LockError::Cancelled)));
            }
        }
        out
    }

    pub(crate) fn next_wait_id(&mut self) -> u64 {
        let id = self.next_wait;
        self.next_wait += 1;
        id
    }

    fn owner_gone(&mut self, sh: &Shared, owner: OwnerId, out: &mut Outbox) {
        self.sinks.remove(&owner);
        if let Some(opens) = self.owner_opens.remove(&owner) {
            let mut opens: Vec<OpenId> = opens.into_iter().collect();
            opens.sort();
            for o in opens {
                self.close(sh, o, WakeReason::Disconnected, out);
            }
        }
        if let Some(files) = self.owner_lock_files.remove(&owner) {
            for f in files {
                self.release_posix_owner(sh, f, owner, out);
            }
        }
    }
}
