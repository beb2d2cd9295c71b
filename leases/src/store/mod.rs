//! Persistence of lock state through the [`LockStore`] trait.
//!
//! Durability (what is on disk when an operation returns):
//! - The server epoch increment at start and the clean-shutdown marker are flushed
//!   before `begin`/`mark_clean` return: recovery decisions rest on them.
//! - Opens, leases and byte-range locks are written to the store before the operation
//!   returns, in the order they happen, but reach the disk with the store's periodic
//!   flush (sled: every 500 ms) unless `ManagerConfig::sync_writes` asks for a flush per
//!   change. Lock state is advisory and reclaimed by its owners, so a crash may lose the
//!   last half second of changes: a lost grant cannot be reclaimed (the client must ask
//!   again), and a lost release leaves a record that grace drops when nobody reclaims it.

mod memory;
mod sled_store;

pub use memory::MemoryStore;
pub use sled_store::SledStore;

use crate::brlock::HeldLock;
use crate::error::StoreError;
use crate::lease::{LeaseState, LeaseVersion};
use crate::types::{Access, ClientId, FileId, LeaseKey, OpenId, OwnerId, ShareAccess};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRecord {
    pub id: OpenId,
    pub file: FileId,
    pub owner: OwnerId,
    pub access: Access,
    pub share: ShareAccess,
    pub stat_only: bool,
    pub writes_unseen: bool,
    pub is_dir: bool,
    pub lease: Option<(ClientId, LeaseKey)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub client: ClientId,
    pub key: LeaseKey,
    pub file: FileId,
    pub owner: OwnerId,
    pub state: LeaseState,
    pub version: LeaseVersion,
    pub epoch: u16,
    pub is_dir: bool,
    pub oplock: bool,
}

/// Everything a store holds, in a canonical order so two views compare with `==`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub opens: BTreeMap<OpenId, OpenRecord>,
    pub leases: BTreeMap<(ClientId, LeaseKey), LeaseRecord>,
    /// Per file, sorted.
    pub locks: BTreeMap<FileId, Vec<HeldLock>>,
}

impl Snapshot {
    pub fn is_empty(&self) -> bool {
        self.opens.is_empty() && self.leases.is_empty() && self.locks.is_empty()
    }
}

/// What `begin` found about the previous run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// This run's server epoch (1 on a new store).
    pub epoch: u64,
    /// Whether the previous run wrote its clean-shutdown marker (true on a new store).
    pub previous_clean: bool,
}

pub trait LockStore: Send + Sync {
    /// Starts a run: increments the server epoch, reads and clears the clean marker.
    fn begin(&self) -> Result<StartInfo, StoreError>;
    /// Records a clean shutdown; the next `begin` reports `previous_clean`.
    fn mark_clean(&self) -> Result<(), StoreError>;
    fn put_open(&self, rec: &OpenRecord) -> Result<(), StoreError>;
    fn remove_open(&self, id: OpenId) -> Result<(), StoreError>;
    fn put_lease(&self, rec: &LeaseRecord) -> Result<(), StoreError>;
    fn remove_lease(&self, client: ClientId, key: LeaseKey) -> Result<(), StoreError>;
    /// Replaces the file's lock list; an empty list removes it.
    fn put_locks(&self, file: FileId, locks: &[HeldLock]) -> Result<(), StoreError>;
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Drops all opens, leases and locks (keeps the epoch).
    fn clear(&self) -> Result<(), StoreError>;
    fn flush(&self) -> Result<(), StoreError>;
}

/// Sorted copy of a lock list, the form both stores keep.
pub(crate) fn canonical_locks(locks: &[HeldLock]) -> Vec<HeldLock> {
    let mut v = locks.to_vec();
    v.sort();
    v
}
