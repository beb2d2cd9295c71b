//! Every call from the FUSE front end into the lock manager, and the translation of its
//! answers into errno values (DESIGN.md, "Local access through the FUSE mount").
//!
//! Local programs hold no lease; each local open is registered as an open with its access
//! mode so the manager's rules apply to it as to any SMB open:
//!
//! | local operation                      | manager call                         |
//! |--------------------------------------|--------------------------------------|
//! | open / create (incl. O_TRUNC)        | `open` (overwrite = O_TRUNC)          |
//! | daemon-served write, copy_file_range | `before_write`                        |
//! | truncate / setattr(size)             | `before_truncate`                     |
//! | unlink / rmdir                       | `before_unlink`                       |
//! | rename (and the name it replaces)    | `before_rename` / `before_unlink`     |
//! | create / mkdir / mknod / symlink / link | `before_create_child` (dir leases) |
//! | close (release)                      | `close`                               |
//! | fcntl F_GETLK / F_SETLK / F_SETLKW   | `test_lock` / `lock` / `unlock`        |
//! | close of any descriptor (flush)      | `release_posix_locks`                 |
//!
//! A call that answers "wait" hands back a [`Gate::Wait`]; the caller finishes the FUSE
//! request on a thread of its own after the wait, so a blocked open never holds a session
//! thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fuser::Errno;
use leasefs_leases::{
    Access, BreakOutcome, BreakWait, ByteRange, ClientId, FileId, LockError, LockKind, LockManager,
    LockOutcome, LockOwner, LockRequest, LockWait, OpenId, OpenOutcome, OpenRequest, OwnerId,
    Protocol, Requester, ShareAccess,
};
use parking_lot::Mutex;

use crate::inode::BackingKey;

/// The largest offset POSIX locks can name (the kernel's OFFSET_MAX): an end at or past it
/// means "to the end of the file".
const OFFSET_MAX: u64 = i64::MAX as u64;

pub struct Mediator {
    mgr: Arc<LockManager>,
    /// The owner every local open and lock of this mount is registered under. POSIX lock
    /// owners (one per process file table) are told apart inside it by `lock_owner`.
    owner: OwnerId,
    /// Last pid seen per POSIX lock owner, for F_GETLK's `l_pid`.
    pids: Mutex<HashMap<u64, u32>>,
}

/// An open registered in the lock manager; closed on release.
#[derive(Clone, Copy, Debug)]
pub struct LocalOpen {
    id: OpenId,
}

/// Whether an operation may go on now, or after waiting.
pub enum Gate<T> {
    Ready(T),
    Wait(Waiter),
}

/// A break in progress that the operation waits out (ack, release, disconnect or the
/// break deadline), after which it asks the manager again.
pub struct Waiter(BreakWait);

impl Waiter {
    pub fn wait(self) {
        let why = self.0.wait();
        tracing::debug!("break wait ended: {why:?}");
    }
}

pub enum LockGate {
    Ready(Result<(), Errno>),
    Wait(LockWaiter),
}

/// A queued F_SETLKW; `Ok` once the lock is granted.
pub struct LockWaiter(LockWait);

impl LockWaiter {
    pub fn wait(self) -> Result<(), Errno> {
        self.0.wait().map_err(|e| lock_errno(&e))
    }
}

#[derive(Clone, Copy, Debug)]
pub struct OpenMode {
    pub read: bool,
    pub write: bool,
    pub overwrite: bool,
    pub is_dir: bool,
    pub writes_unseen: bool,
}

/// A conflicting lock as F_GETLK reports it.
pub struct Conflict {
    pub start: u64,
    pub end: u64,
    pub typ: i32,
    pub pid: u32,
}

fn file_id(k: BackingKey) -> FileId {
    FileId::new(k.dev, k.ino)
}

/// Errno for a refused open or lock.
fn lock_errno(e: &LockError) -> Errno {
    Errno::from_i32(match e {
        // An SMB open denies this access (share modes). POSIX has no such notion; EBUSY
        // ("resource busy") is what the caller sees.
        LockError::SharingViolation => libc::EBUSY,
        // F_SETLK on a conflicting range: Linux answers EAGAIN.
        LockError::Conflict { .. } => libc::EAGAIN,
        LockError::Deadlock => libc::EDEADLK,
        LockError::InGrace(_) => libc::EAGAIN,
        LockError::Cancelled => libc::EINTR,
        LockError::Range(_) | LockError::LeaseKeyOnOtherFile => libc::EINVAL,
        LockError::UnknownOpen => libc::EBADF,
        LockError::RangeNotLocked => libc::ENOLCK,
    })
}

fn gate(o: BreakOutcome) -> Gate<()> {
    match o {
        BreakOutcome::Proceed => Gate::Ready(()),
        BreakOutcome::Wait(w) => Gate::Wait(Waiter(w)),
    }
}

/// FUSE lock range (inclusive end, OFFSET_MAX = to EOF) → manager range.
fn range(start: u64, end: u64) -> Result<ByteRange, Errno> {
    if end >= OFFSET_MAX {
        Ok(ByteRange::to_eof(start))
    } else if end < start {
        Err(Errno::EINVAL)
    } else {
        Ok(ByteRange::inclusive(start, end))
    }
}

static MOUNTS: AtomicU64 = AtomicU64::new(0);

impl Mediator {
    /// A mediator for one mount; each mount is its own local client of the manager.
    pub fn new(mgr: Arc<LockManager>) -> Self {
        let seq = MOUNTS.fetch_add(1, Ordering::Relaxed);
        let client = ClientId::from_u128(((std::process::id() as u128) << 64) | seq as u128);
        Self {
            mgr,
            owner: OwnerId::new(Protocol::Local, client, 0),
            pids: Mutex::new(HashMap::new()),
        }
    }

    fn by(&self) -> Requester {
        Requester::owner(self.owner)
    }

    pub fn open(&self, file: BackingKey, mode: OpenMode) -> Gate<Result<LocalOpen, Errno>> {
        let req = OpenRequest {
            file: file_id(file),
            owner: self.owner,
            access: Access {
                read: mode.read,
                write: mode.write,
                delete: false,
            },
            // POSIX has no share modes: a local open denies nothing to others.
            share: ShareAccess::ALL,
            stat_only: false,
            metadata_only: false,
            overwrite: mode.overwrite,
            writes_unseen: mode.writes_unseen,
            is_dir: mode.is_dir,
            lease: None,
        };
        match self.mgr.open(&req) {
            Ok(OpenOutcome::Opened(g)) => Gate::Ready(Ok(LocalOpen { id: g.open })),
            Ok(OpenOutcome::Wait(w)) => Gate::Wait(Waiter(w)),
            Err(e) => Gate::Ready(Err(lock_errno(&e))),
        }
    }

    pub fn close(&self, open: LocalOpen) {
        self.mgr.close(open.id)
    }

    pub fn before_write(&self, open: &LocalOpen) -> Gate<()> {
        gate(self.mgr.before_write(open.id))
    }

    pub fn before_truncate(&self, file: BackingKey) -> Gate<()> {
        gate(self.mgr.before_truncate(file_id(file), &self.by()))
    }

    pub fn before_unlink(&self, file: BackingKey, parent: BackingKey) -> Gate<()> {
        gate(
            self.mgr
                .before_unlink(file_id(file), Some(file_id(parent)), &self.by()),
        )
    }

    pub fn before_rename(&self, file: BackingKey, from: BackingKey, to: BackingKey) -> Gate<()> {
        gate(self.mgr.before_rename(
            file_id(file),
            Some(file_id(from)),
            Some(file_id(to)),
            &self.by(),
        ))
    }

    /// A name is about to appear in `parent`: directory leases on it lose R (no wait).
    pub fn before_create_child(&self, parent: BackingKey) {
        if let BreakOutcome::Wait(w) = self.mgr.before_create_child(file_id(parent), &self.by()) {
            w.wait();
        }
    }

    /// A child of `parent` changed its size, times, mode or owner: directory leases on
    /// `parent` go (MS-FSA 2.1.5.4 / 2.1.5.14.2 report these in the listing). Never
    /// waits: only the holder's cached listing is stale.
    pub fn child_changed(&self, parent: BackingKey) {
        self.mgr.break_parent(file_id(parent), &self.by(), None);
    }

    fn posix(&self, lock_owner: u64) -> LockOwner {
        LockOwner::Posix {
            owner: self.owner,
            lock_owner,
        }
    }

    fn kind(typ: i32) -> Result<LockKind, Errno> {
        match typ {
            libc::F_RDLCK => Ok(LockKind::Shared),
            libc::F_WRLCK => Ok(LockKind::Exclusive),
            _ => Err(Errno::EINVAL),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn getlk(
        &self,
        file: BackingKey,
        lock_owner: u64,
        start: u64,
        end: u64,
        typ: i32,
        _pid: u32,
    ) -> Result<Option<Conflict>, Errno> {
        let req = LockRequest {
            file: file_id(file),
            owner: self.posix(lock_owner),
            range: range(start, end)?,
            kind: Self::kind(typ)?,
            wait: false,
        };
        Ok(self.mgr.test_lock(&req).map(|c| {
            let pid = match c.owner {
                LockOwner::Posix { owner, lock_owner } if owner == self.owner => {
                    self.pids.lock().get(&lock_owner).copied().unwrap_or(0)
                }
                // held by another front end: no local process to name
                _ => 0,
            };
            Conflict {
                start: c.range.start.min(OFFSET_MAX),
                end: c.range.last.min(OFFSET_MAX),
                typ: match c.kind {
                    LockKind::Shared => libc::F_RDLCK,
                    LockKind::Exclusive => libc::F_WRLCK,
                },
                pid,
            }
        }))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn setlk(
        &self,
        file: BackingKey,
        lock_owner: u64,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
    ) -> LockGate {
        let range = match range(start, end) {
            Ok(r) => r,
            Err(e) => return LockGate::Ready(Err(e)),
        };
        let owner = self.posix(lock_owner);
        if typ == libc::F_UNLCK {
            let r = self.mgr.unlock(file_id(file), owner, range);
            return LockGate::Ready(r.map_err(|e| lock_errno(&e)));
        }
        let kind = match Self::kind(typ) {
            Ok(k) => k,
            Err(e) => return LockGate::Ready(Err(e)),
        };
        {
            let mut pids = self.pids.lock();
            if pids.len() > 65_536 {
                pids.clear();
            }
            pids.insert(lock_owner, pid);
        }
        let req = LockRequest {
            file: file_id(file),
            owner,
            range,
            kind,
            wait: sleep,
        };
        match self.mgr.lock(&req) {
            Ok(LockOutcome::Granted) => LockGate::Ready(Ok(())),
            Ok(LockOutcome::Wait(w)) => LockGate::Wait(LockWaiter(w)),
            Err(e) => LockGate::Ready(Err(lock_errno(&e))),
        }
    }

    /// POSIX: closing any descriptor of a file drops the closing process's locks on it.
    pub fn release_posix(&self, file: BackingKey, lock_owner: u64) {
        self.mgr
            .release_posix_locks(file_id(file), self.owner, lock_owner)
    }

    /// The mount is going away: drop whatever local opens and locks remain.
    pub fn shutdown(&self) {
        self.mgr.owner_gone(self.owner)
    }
}
