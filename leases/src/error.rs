//! Errors the manager returns; front ends map them to errno or NTSTATUS.

use crate::range::ByteRange;
use crate::types::FileId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Share modes of an existing open forbid this open (STATUS_SHARING_VIOLATION).
    #[error("sharing violation")]
    SharingViolation,
    /// MS-SMB2 3.3.5.9.8: a lease key may be used on one file only (STATUS_INVALID_PARAMETER).
    #[error("lease key already in use on another file")]
    LeaseKeyOnOtherFile,
    #[error("unknown open")]
    UnknownOpen,
    /// A byte-range lock conflicts and the request does not wait (EAGAIN / LOCK_NOT_GRANTED).
    #[error("byte range {range} conflicts with a {kind:?} lock")]
    Conflict {
        range: ByteRange,
        kind: crate::brlock::LockKind,
    },
    /// Waiting would close a cycle of lock waiters (EDEADLK).
    #[error("lock wait would deadlock")]
    Deadlock,
    /// An unlock named no lock held by that owner (STATUS_RANGE_NOT_LOCKED).
    #[error("range not locked")]
    RangeNotLocked,
    #[error(transparent)]
    Range(#[from] crate::range::RangeError),
    /// State for this file is reserved for its former owners during the grace period.
    #[error("file {0} is in its recovery grace period")]
    InGrace(FileId),
    /// The waiting request was withdrawn or its owner disconnected.
    #[error("request cancelled")]
    Cancelled,
}

/// Results of MS-SMB2 3.3.5.22.2 acknowledgment validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// No such lease (STATUS_OBJECT_NAME_NOT_FOUND).
    #[error("no lease with that key")]
    NotFound,
    /// The lease is not breaking, e.g. a late ack after revocation (STATUS_UNSUCCESSFUL).
    #[error("lease is not breaking")]
    NotBreaking,
    /// The acknowledged state is not within the break-to state (STATUS_REQUEST_NOT_ACCEPTED).
    #[error("acknowledged state is not a subset of the break-to state")]
    NotSubset,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt record {key}: {msg}")]
    Corrupt { key: String, msg: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
