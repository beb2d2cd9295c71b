//! In-memory store: nothing survives the process; every run starts clean.

use super::{canonical_locks, LeaseRecord, LockStore, OpenRecord, Snapshot, StartInfo};
use crate::brlock::HeldLock;
use crate::error::StoreError;
use crate::types::{ClientId, FileId, LeaseKey, OpenId};
use parking_lot::Mutex;

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<(u64, Snapshot)>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl LockStore for MemoryStore {
    fn begin(&self) -> Result<StartInfo, StoreError> {
        let mut g = self.inner.lock();
        g.0 += 1;
        Ok(StartInfo {
            epoch: g.0,
            previous_clean: true,
        })
    }
    fn mark_clean(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn put_open(&self, rec: &OpenRecord) -> Result<(), StoreError> {
        self.inner.lock().1.opens.insert(rec.id, rec.clone());
        Ok(())
    }
    fn remove_open(&self, id: OpenId) -> Result<(), StoreError> {
        self.inner.lock().1.opens.remove(&id);
        Ok(())
    }
    fn put_lease(&self, rec: &LeaseRecord) -> Result<(), StoreError> {
        self.inner
            .lock()
            .1
            .leases
            .insert((rec.client, rec.key), rec.clone());
        Ok(())
    }
    fn remove_lease(&self, client: ClientId, key: LeaseKey) -> Result<(), StoreError> {
        self.inner.lock().1.leases.remove(&(client, key));
        Ok(())
    }
    fn put_locks(&self, file: FileId, locks: &[HeldLock]) -> Result<(), StoreError> {
        let mut g = self.inner.lock();
        if locks.is_empty() {
            g.1.locks.remove(&file);
        } else {
            g.1.locks.insert(file, canonical_locks(locks));
        }
        Ok(())
    }
    fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(self.inner.lock().1.clone())
    }
    fn clear(&self) -> Result<(), StoreError> {
        self.inner.lock().1 = Snapshot::default();
        Ok(())
    }
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
