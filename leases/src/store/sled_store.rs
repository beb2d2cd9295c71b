//! sled-backed store (the embedded default), one tree per record kind.

use super::{canonical_locks, LeaseRecord, LockStore, OpenRecord, Snapshot, StartInfo};
use crate::brlock::HeldLock;
use crate::error::StoreError;
use crate::types::{ClientId, FileId, LeaseKey, OpenId};
use std::path::Path;

const EPOCH: &[u8] = b"server_epoch";
const CLEAN: &[u8] = b"clean_shutdown";

pub struct SledStore {
    db: sled::Db,
    meta: sled::Tree,
    opens: sled::Tree,
    leases: sled::Tree,
    locks: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the store under `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let db = sled::Config::new()
            .path(dir.join("locks.sled"))
            .flush_every_ms(Some(500))
            .open()?;
        Ok(Self {
            meta: db.open_tree("meta")?,
            opens: db.open_tree("opens")?,
            leases: db.open_tree("leases")?,
            locks: db.open_tree("locks")?,
            db,
        })
    }
}

fn lease_key(client: ClientId, key: LeaseKey) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(&client.0);
    k[16..].copy_from_slice(&key.0);
    k
}

fn file_key(file: FileId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&file.dev.to_be_bytes());
    k[8..].copy_from_slice(&file.ino.to_be_bytes());
    k
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    bincode::serialize(v).map_err(|e| StoreError::Corrupt {
        key: "encode".into(),
        msg: e.to_string(),
    })
}

fn decode<T: serde::de::DeserializeOwned>(
    tree: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    bincode::deserialize(bytes).map_err(|e| StoreError::Corrupt {
        key: format!("{tree}/{key:02x?}"),
        msg: e.to_string(),
    })
}

impl LockStore for SledStore {
    fn begin(&self) -> Result<StartInfo, StoreError> {
        let previous = match self.meta.get(EPOCH)? {
            Some(v) => {
                let b: [u8; 8] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    key: "meta/epoch".into(),
                    msg: format!("{} bytes", v.len()),
                })?;
                Some(u64::from_be_bytes(b))
            }
            None => None,
        };
        let previous_clean = previous.is_none() || self.meta.get(CLEAN)?.is_some();
        let epoch = previous.unwrap_or(0) + 1;
        self.meta.insert(EPOCH, &epoch.to_be_bytes())?;
        self.meta.remove(CLEAN)?;
        self.db.flush()?;
        Ok(StartInfo {
            epoch,
            previous_clean,
        })
    }

    fn mark_clean(&self) -> Result<(), StoreError> {
        self.meta.insert(CLEAN, &[1u8])?;
        self.db.flush()?;
        Ok(())
    }

    fn put_open(&self, rec: &OpenRecord) -> Result<(), StoreError> {
        self.opens.insert(rec.id.0.to_be_bytes(), encode(rec)?)?;
        Ok(())
    }

    fn remove_open(&self, id: OpenId) -> Result<(), StoreError> {
        self.opens.remove(id.0.to_be_bytes())?;
        Ok(())
    }

    fn put_lease(&self, rec: &LeaseRecord) -> Result<(), StoreError> {
        self.leases
            .insert(lease_key(rec.client, rec.key), encode(rec)?)?;
        Ok(())
    }

    fn remove_lease(&self, client: ClientId, key: LeaseKey) -> Result<(), StoreError> {
        self.leases.remove(lease_key(client, key))?;
        Ok(())
    }

    fn put_locks(&self, file: FileId, locks: &[HeldLock]) -> Result<(), StoreError> {
        if locks.is_empty() {
            self.locks.remove(file_key(file))?;
        } else {
            self.locks
                .insert(file_key(file), encode(&(file, canonical_locks(locks)))?)?;
        }
        Ok(())
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        let mut snap = Snapshot::default();
        for kv in self.opens.iter() {
            let (k, v) = kv?;
            let rec: OpenRecord = decode("opens", &k, &v)?;
            snap.opens.insert(rec.id, rec);
        }
        for kv in self.leases.iter() {
            let (k, v) = kv?;
            let rec: LeaseRecord = decode("leases", &k, &v)?;
            snap.leases.insert((rec.client, rec.key), rec);
        }
        for kv in self.locks.iter() {
            let (k, v) = kv?;
            let (file, locks): (FileId, Vec<HeldLock>) = decode("locks", &k, &v)?;
            snap.locks.insert(file, locks);
        }
        Ok(snap)
    }

    fn clear(&self) -> Result<(), StoreError> {
        self.opens.clear()?;
        self.leases.clear()?;
        self.locks.clear()?;
        self.db.flush()?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}
