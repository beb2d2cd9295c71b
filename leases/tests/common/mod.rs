//! Helpers shared by the integration tests: owners, files, keys, a recording break sink
//! and managers on a manual clock.
#![allow(dead_code)]

use leasefs_leases::*;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

/// A break sink that records every notice it is handed.
#[derive(Default)]
pub struct Recorder {
    pub notices: Mutex<Vec<BreakNotice>>,
}

impl Recorder {
    pub fn take(&self) -> Vec<BreakNotice> {
        std::mem::take(&mut *self.notices.lock())
    }
    pub fn len(&self) -> usize {
        self.notices.lock().len()
    }
}

impl BreakSink for Recorder {
    fn deliver(&self, notice: BreakNotice) {
        self.notices.lock().push(notice);
    }
}

pub const TIMEOUT: Duration = Duration::from_secs(35);

/// A manager over the in-memory store on a manual clock, deadlines driven by hand.
pub fn manual_mgr() -> (Arc<LockManager>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let cfg = ManagerConfig {
        clock: Some(clock.clone()),
        drive_deadlines: false,
        break_timeout: TIMEOUT,
        ..Default::default()
    };
    let m = LockManager::with_store(cfg, Box::new(MemoryStore::new())).expect("memory store");
    (m, clock)
}

pub fn client(n: u128) -> ClientId {
    ClientId::from_u128(n)
}

/// An SMB owner: client `n`, session 1.
pub fn owner(n: u128) -> OwnerId {
    OwnerId::new(Protocol::Smb, client(n), 1)
}

pub fn local(n: u128) -> OwnerId {
    OwnerId::new(Protocol::Local, client(n), 0)
}

pub fn file(n: u64) -> FileId {
    FileId::new(1, n)
}

pub fn key(n: u128) -> LeaseKey {
    LeaseKey::from_u128(n)
}

pub fn st(s: &str) -> LeaseState {
    LeaseState::parse(s).unwrap_or_else(|| panic!("bad state {s}"))
}

pub fn lease_req(c: u128, k: u128, state: LeaseState) -> LeaseRequest {
    LeaseRequest {
        client: client(c),
        key: key(k),
        state,
        version: LeaseVersion::V2 { parent: None },
        oplock: false,
    }
}

/// An open by SMB client `c` on `f` with lease key `k` asking for `state`.
pub fn leased_open(f: FileId, c: u128, k: u128, state: LeaseState, access: Access) -> OpenRequest {
    OpenRequest {
        lease: Some(lease_req(c, k, state)),
        ..OpenRequest::new(f, owner(c), access)
    }
}

/// Opens and expects an immediate grant.
pub fn must_open(m: &LockManager, req: &OpenRequest) -> OpenGrant {
    match m.open(req) {
        Ok(OpenOutcome::Opened(g)) => g,
        Ok(OpenOutcome::Wait(w)) => panic!("open {req:?} had to wait ({w:?})"),
        Err(e) => panic!("open {req:?} failed: {e}"),
    }
}

/// Opens and expects to be told to wait.
pub fn must_wait(m: &LockManager, req: &OpenRequest) -> BreakWait {
    match m.open(req) {
        Ok(OpenOutcome::Wait(w)) => w,
        Ok(OpenOutcome::Opened(g)) => panic!("open {req:?} was granted at once: {g:?}"),
        Err(e) => panic!("open {req:?} failed: {e}"),
    }
}

/// The current state of lease (client, key), if it exists.
pub fn lease_state(m: &LockManager, c: u128, k: u128) -> Option<LeaseState> {
    let (c, k) = (client(c).to_string(), key(k).to_string());
    m.view()
        .leases
        .into_iter()
        .find(|l| l.client == c && l.key == k)
        .map(|l| l.state)
}

pub fn lease_view(m: &LockManager, c: u128, k: u128) -> Option<leasefs_leases::manager::LeaseView> {
    let (c, k) = (client(c).to_string(), key(k).to_string());
    m.view()
        .leases
        .into_iter()
        .find(|l| l.client == c && l.key == k)
}

pub fn range(o: u64, l: u64) -> ByteRange {
    ByteRange::new(o, l).expect("valid range")
}

pub fn posix(c: u128, lock_owner: u64) -> LockOwner {
    LockOwner::Posix {
        owner: local(c),
        lock_owner,
    }
}

pub fn lock_req(f: FileId, o: LockOwner, r: ByteRange, kind: LockKind, wait: bool) -> LockRequest {
    LockRequest {
        file: f,
        owner: o,
        range: r,
        kind,
        wait,
    }
}

/// Opens a sled store, retrying briefly while a just-dropped store in this process
/// still holds sled's file lock (its background threads let go of the file a moment
/// after the `Db` is dropped).
pub fn open_sled_retry(dir: &std::path::Path) -> Result<SledStore, StoreError> {
    let t0 = std::time::Instant::now();
    loop {
        match SledStore::open(dir) {
            Err(StoreError::Sled(e))
                if t0.elapsed() < Duration::from_secs(10)
                    && e.to_string().contains("could not acquire lock") =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// `LockManager::open_store` with the same retry.
pub fn open_store_retry(cfg: ManagerConfig) -> Result<Arc<LockManager>, StoreError> {
    let dir = cfg.state_dir.clone().expect("a state dir");
    let store = open_sled_retry(&dir)?;
    LockManager::with_store(cfg, Box::new(store))
}
