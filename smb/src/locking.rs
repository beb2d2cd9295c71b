//! The one place this crate talks to the lock manager (`leasefs-leases`).
//!
//! Every SMB open (share modes, MS-FSA 2.1.5.1.2) and byte-range lock (MS-FSA 2.1.5.7)
//! lives in the lock manager shared with the FUSE front end, so a local `fcntl` lock
//! and an SMB LOCK on the same bytes conflict, and share modes hold across protocols.
//! Handlers call only the functions here, in SMB terms, and get NTSTATUS values back.
//!
//! Leases and oplocks (issue 5) live in `leasing`. Nothing here blocks an SMB
//! connection on another holder's break: operations that must wait for an ack go
//! async (`leasing::pending`, `handlers::unlink`); only `open`, which the SMB handlers
//! do not use, still waits in place.

use crate::wire::status;
use leasefs_leases::{
    Access, BreakOutcome, ByteRange, FileId, LockError, LockKind, LockManager, LockOutcome,
    LockOwner, LockRequest, OpenId, OpenOutcome, OpenRequest, OwnerId, Requester, ShareAccess,
};
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
pub struct OpenParams {
    pub file: FileId,
    pub owner: OwnerId,
    pub access: Access,
    pub share: ShareAccess,
    /// Attributes/synchronize only: never conflicts (MS-FSA 2.1.5.1.2).
    pub stat_only: bool,
    /// No data access but the security descriptor as well (`OpenRequest::metadata_only`).
    pub metadata_only: bool,
    pub overwrite: bool,
    pub is_dir: bool,
}

/// A byte-range request that must wait for another holder to unlock. Dropping it
/// withdraws the request from the manager (CANCEL, close, disconnect).
pub type LockWaitFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), u32>> + Send>>;

pub enum LockResult {
    Granted,
    Wait(LockWaitFuture),
}

pub struct LockHub {
    mgr: Arc<LockManager>,
}

pub(crate) fn lock_status(e: LockError) -> u32 {
    match e {
        LockError::SharingViolation => status::SHARING_VIOLATION,
        LockError::LeaseKeyOnOtherFile => status::INVALID_PARAMETER,
        LockError::UnknownOpen => status::FILE_CLOSED,
        // MS-SMB2 3.3.5.14: a lock that cannot be granted at once.
        LockError::Conflict { .. } | LockError::Deadlock => status::LOCK_NOT_GRANTED,
        LockError::RangeNotLocked => status::RANGE_NOT_LOCKED,
        LockError::Range(_) => status::INVALID_LOCK_RANGE,
        LockError::InGrace(_) => status::FILE_NOT_AVAILABLE,
        LockError::Cancelled => status::CANCELLED,
    }
}

/// Waits for other holders' breaks. The manager guarantees every wait ends (ack,
/// release, disconnect or the break deadline), so blocking here is bounded; no SMB
/// request path calls it (see the module comment).
fn settle(o: BreakOutcome) {
    if let BreakOutcome::Wait(w) = o {
        let why = w.wait();
        tracing::debug!(?why, "break wait finished");
    }
}

impl LockHub {
    pub fn new(mgr: Arc<LockManager>) -> Arc<Self> {
        Arc::new(LockHub { mgr })
    }

    pub fn manager(&self) -> &Arc<LockManager> {
        &self.mgr
    }

    /// Register an open, checking share access against every other open of the file
    /// from any front end (MS-FSA 2.1.5.1.2.1).
    pub fn open(&self, p: &OpenParams) -> Result<OpenId, u32> {
        let req = OpenRequest {
            file: p.file,
            owner: p.owner,
            access: p.access,
            share: p.share,
            stat_only: p.stat_only,
            metadata_only: p.metadata_only,
            overwrite: p.overwrite,
            writes_unseen: false,
            is_dir: p.is_dir,
            lease: None,
        };
        loop {
            match self.mgr.open(&req).map_err(lock_status)? {
                OpenOutcome::Opened(g) => return Ok(g.open),
                // Another holder's lease is being broken: wait, then ask again.
                OpenOutcome::Wait(w) => settle(BreakOutcome::Wait(w)),
            }
        }
    }

    /// Close an open; its byte-range locks go with it (MS-FSA 2.1.5.4).
    pub fn close(&self, id: OpenId) {
        self.mgr.close(id);
    }

    fn range(offset: u64, len: u64) -> Result<ByteRange, u32> {
        ByteRange::new(offset, len).map_err(|_| status::INVALID_LOCK_RANGE)
    }

    /// Take a byte-range lock owned by the open (SMB semantics: exact ranges, shared
    /// locks stack). A conflict fails at once unless `wait`.
    pub fn lock(
        &self,
        file: FileId,
        open: OpenId,
        offset: u64,
        len: u64,
        exclusive: bool,
        wait: bool,
    ) -> Result<LockResult, u32> {
        let req = LockRequest {
            file,
            owner: LockOwner::Open(open),
            range: Self::range(offset, len)?,
            kind: if exclusive {
                LockKind::Exclusive
            } else {
                LockKind::Shared
            },
            wait,
        };
        match self.mgr.lock(&req).map_err(lock_status)? {
            LockOutcome::Granted => Ok(LockResult::Granted),
            LockOutcome::Wait(w) => Ok(LockResult::Wait(Box::pin(async move {
                w.await.map_err(lock_status)
            }))),
        }
    }

    pub fn unlock(&self, file: FileId, open: OpenId, offset: u64, len: u64) -> Result<(), u32> {
        self.mgr
            .unlock(file, LockOwner::Open(open), Self::range(offset, len)?)
            .map_err(lock_status)
    }

    /// Reads and writes honour other holders' byte-range locks (MS-FSA 2.1.5.2/2.1.5.3:
    /// SMB locks are mandatory for SMB I/O).
    pub fn check_io(
        &self,
        file: FileId,
        open: OpenId,
        offset: u64,
        len: u64,
        write: bool,
    ) -> Result<(), u32> {
        if len == 0 {
            return Ok(());
        }
        let range = ByteRange::new(offset, len).unwrap_or_else(|_| ByteRange::to_eof(offset));
        let req = LockRequest {
            file,
            owner: LockOwner::Open(open),
            range,
            kind: if write {
                LockKind::Exclusive
            } else {
                LockKind::Shared
            },
            wait: false,
        };
        match self.mgr.test_lock(&req) {
            None => Ok(()),
            // The manager's SMB rule makes two exclusive locks of one handle overlap,
            // but I/O inside the handle's own exclusive range is allowed (MS-FSA
            // 2.1.4.10). Nobody else can hold a lock overlapping our exclusive range,
            // so re-test as a shared request, which our own exclusive lock permits.
            Some(c)
                if write && c.owner == LockOwner::Open(open) && c.kind == LockKind::Exclusive =>
            {
                let shared = LockRequest {
                    kind: LockKind::Shared,
                    ..req
                };
                match self.mgr.test_lock(&shared) {
                    None => Ok(()),
                    Some(_) => Err(status::FILE_LOCK_CONFLICT),
                }
            }
            Some(_) => Err(status::FILE_LOCK_CONFLICT),
        }
    }

    /// A data write or size change through `open` (breaks others' read caching). The
    /// manager never makes a writer wait for these (MS-FSA 2.1.4.12: a Read-Handle
    /// holder must ack, but the write goes on), so this never blocks the connection.
    pub fn before_write(&self, open: OpenId) {
        if let BreakOutcome::Wait(w) = self.mgr.before_write(open) {
            tracing::debug!(wait = w.id(), "write does not wait for read-caching breaks");
        }
    }

    /// A child is created in `parent`: directory leases break without an ack wait.
    pub fn before_create_child(&self, parent: FileId, owner: OwnerId) {
        if let BreakOutcome::Wait(w) = self
            .mgr
            .before_create_child(parent, &Requester::owner(owner))
        {
            tracing::debug!(wait = w.id(), "create does not wait for directory breaks");
        }
    }

    /// A connection went away: drop everything it held and wake waiters.
    pub fn owner_gone(&self, owner: OwnerId) {
        self.mgr.owner_gone(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leasefs_leases::{ClientId, Protocol};

    fn hub() -> Arc<LockHub> {
        LockHub::new(LockManager::in_memory())
    }

    fn params(file: u64, access: Access, share: ShareAccess) -> OpenParams {
        OpenParams {
            file: FileId::new(1, file),
            owner: OwnerId::new(Protocol::Smb, ClientId([0; 16]), 1),
            access,
            share,
            stat_only: false,
            metadata_only: false,
            overwrite: false,
            is_dir: false,
        }
    }

    #[test]
    fn share_modes() {
        let hub = hub();
        let a = hub
            .open(&params(1, Access::READ, ShareAccess::READ))
            .unwrap();
        assert_eq!(
            hub.open(&params(1, Access::WRITE, ShareAccess::ALL)),
            Err(status::SHARING_VIOLATION)
        );
        hub.open(&params(1, Access::READ, ShareAccess::READ))
            .unwrap();
        hub.close(a);
        assert!(hub
            .open(&params(2, Access::WRITE, ShareAccess::NONE))
            .is_ok());
    }

    #[test]
    fn byte_ranges() {
        let hub = hub();
        let f = FileId::new(1, 1);
        let a = hub
            .open(&params(1, Access::READ_WRITE, ShareAccess::ALL))
            .unwrap();
        let b = hub
            .open(&params(1, Access::READ_WRITE, ShareAccess::ALL))
            .unwrap();
        assert!(matches!(
            hub.lock(f, a, 0, 10, true, false),
            Ok(LockResult::Granted)
        ));
        assert_eq!(
            hub.lock(f, b, 5, 10, false, false).err(),
            Some(status::LOCK_NOT_GRANTED)
        );
        assert!(matches!(
            hub.lock(f, b, 10, 10, false, false),
            Ok(LockResult::Granted)
        ));
        assert_eq!(
            hub.check_io(f, b, 0, 1, false),
            Err(status::FILE_LOCK_CONFLICT)
        );
        assert_eq!(hub.check_io(f, a, 0, 1, true), Ok(()));
        assert_eq!(hub.unlock(f, a, 0, 5), Err(status::RANGE_NOT_LOCKED));
        hub.unlock(f, a, 0, 10).unwrap();
        assert!(matches!(
            hub.lock(f, b, 0, 10, false, false),
            Ok(LockResult::Granted)
        ));
        assert_eq!(
            hub.lock(f, a, u64::MAX, 2, true, false).err(),
            Some(status::INVALID_LOCK_RANGE)
        );
    }

    #[tokio::test]
    async fn blocking_lock_wakes_on_unlock() {
        let hub = hub();
        let f = FileId::new(1, 1);
        let a = hub
            .open(&params(1, Access::READ_WRITE, ShareAccess::ALL))
            .unwrap();
        let b = hub
            .open(&params(1, Access::READ_WRITE, ShareAccess::ALL))
            .unwrap();
        assert!(matches!(
            hub.lock(f, a, 0, 10, true, false),
            Ok(LockResult::Granted)
        ));
        let fut = match hub.lock(f, b, 0, 10, true, true) {
            Ok(LockResult::Wait(w)) => w,
            _ => panic!("expected wait"),
        };
        let h = tokio::spawn(fut);
        tokio::task::yield_now().await;
        hub.unlock(f, a, 0, 10).unwrap();
        assert_eq!(h.await.unwrap(), Ok(()));
    }
}
