//! leasefs-leases: the protocol-neutral lock manager.
//!
//! Every front end (FUSE mount, SMB server, NLM) registers its opens, leases and
//! byte-range locks here, so a local writer breaks an SMB client's lease and a local
//! `fcntl` lock conflicts with an SMB lock. The manager knows owners and access
//! requests, never protocols; front ends translate at their edges.
//!
//! Map: [`types`] identities, [`lease`] lease states and the grant/break rules,
//! [`range`] byte ranges, [`brlock`] per-file lock tables, [`wait`] wait handles,
//! [`manager`] the manager (opens, break engine, deadlines, recovery), [`store`]
//! persistence, [`clock`] time sources.

pub mod brlock;
pub mod clock;
pub mod error;
pub mod events;
pub mod lease;
pub mod manager;
pub mod range;
pub mod store;
pub mod types;
pub mod wait;

pub use brlock::{HeldLock, LockConflict, LockKind, LockOwner};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AckError, LockError, StoreError};
pub use events::{Event, EventKind, EventSink};
pub use lease::{
    BreakNotice, BreakReason, LeaseGrant, LeaseRequest, LeaseState, LeaseVersion, OplockLevel,
};
pub use manager::{
    oplock_key, BreakOutcome, BreakSink, LockManager, LockOutcome, LockRequest, ManagerConfig,
    OpenGrant, OpenOutcome, OpenRequest, Reclaim, ReclaimError, Requester, StateView, Stats,
    DEFAULT_BREAK_TIMEOUT, DEFAULT_GRACE_PERIOD,
};
pub use range::{ByteRange, RangeError};
pub use store::{LockStore, MemoryStore, SledStore, Snapshot, StartInfo};
pub use types::*;
pub use wait::{BreakWait, LockWait, WakeReason};
