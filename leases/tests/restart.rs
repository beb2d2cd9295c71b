//! Restart after an unclean stop: a child process (this test binary re-executed with
//! LEASEFS_RESTART_CHILD set) writes opens, leases and POSIX locks into sled, flushes,
//! and is killed with SIGKILL. Reopening finds a consistent store and enters grace:
//! conflicting new state waits (InGrace), the former owner reclaims what it held (and
//! no more), another client cannot, and whatever is not reclaimed is dropped when grace
//! ends. A clean shutdown leaves nothing to reclaim.

mod common;
use common::*;
use leasefs_leases::*;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "LEASEFS_RESTART_CHILD";
const GRACE: Duration = Duration::from_secs(45);

fn config(dir: &Path, clock: Option<Arc<ManualClock>>) -> ManagerConfig {
    ManagerConfig {
        state_dir: Some(dir.to_path_buf()),
        grace_period: GRACE,
        drive_deadlines: false,
        clock: clock.map(|c| c as Arc<dyn Clock>),
        ..Default::default()
    }
}

/// What the child holds when it is killed:
/// - file 1: client 1 has two opens (read; read/write) sharing lease key 1 at RH;
/// - file 2: local client 1, lock owner 7, exclusive 0..100; local client 2 shared 200..300;
/// - file 3: client 2 has a read open with lease key 2 at RWH.
fn write_state(m: &LockManager) {
    must_open(m, &leased_open(file(1), 1, 1, st("RH"), Access::READ));
    let g = must_open(m, &leased_open(file(1), 1, 1, st("RH"), Access::READ_WRITE));
    assert_eq!(g.lease.unwrap().state, st("RH"));
    m.lock(&lock_req(
        file(2),
        posix(1, 7),
        range(0, 100),
        LockKind::Exclusive,
        false,
    ))
    .unwrap();
    m.lock(&lock_req(
        file(2),
        posix(2, 1),
        range(200, 100),
        LockKind::Shared,
        false,
    ))
    .unwrap();
    must_open(m, &leased_open(file(3), 2, 2, st("RWH"), Access::READ));
}

/// The child's half, not a test of its own: `killed_child_state_is_reclaimable` runs it
/// in a child process (`--ignored --exact restart_child_writer`) and kills it.
#[test]
#[ignore = "helper run in a child process by killed_child_state_is_reclaimable"]
fn restart_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let m = LockManager::open_store(config(dir, None)).expect("open sled");
    write_state(&m);
    m.flush().expect("flush");
    std::fs::write(dir.join("child.ready"), b"ready").expect("marker");
    // Wait to be killed; never exit cleanly.
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn run_child_and_kill(dir: &Path) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe)
        .args([
            "restart_child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let t0 = Instant::now();
    while !dir.join("child.ready").exists() {
        if let Some(st) = child.try_wait().expect("try_wait") {
            panic!("child exited early: {st}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "child never got ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
}

fn reclaim_open(f: FileId, access: Access, lease: Option<LeaseRequest>) -> Reclaim {
    Reclaim::Open {
        file: f,
        access,
        share: ShareAccess::ALL,
        is_dir: false,
        lease,
    }
}

#[test]
fn killed_child_state_is_reclaimable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    run_child_and_kill(dir);

    let clock = Arc::new(ManualClock::default());
    let m = LockManager::open_store(config(dir, Some(clock.clone()))).expect("reopen");
    let info = m.start_info();
    assert!(!info.previous_clean);
    assert_eq!(info.epoch, 2);
    assert!(m.in_grace());
    // The store is consistent and holds what the child wrote.
    let snap = m.store_snapshot().unwrap();
    assert_eq!(m.persisted_view(), snap);
    assert_eq!(snap.opens.len(), 3);
    assert_eq!(snap.leases.len(), 2);
    assert_eq!(snap.locks.get(&file(2)).map(|l| l.len()), Some(2));
    assert_eq!(snap.leases[&(client(1), key(1))].state, st("RH"));

    // Conflicting new state on those files waits for grace.
    assert_eq!(
        m.open(&OpenRequest::new(file(1), owner(3), Access::READ))
            .err(),
        Some(LockError::InGrace(file(1)))
    );
    assert_eq!(
        m.lock(&lock_req(
            file(2),
            posix(3, 1),
            range(50, 1),
            LockKind::Shared,
            false
        ))
        .err(),
        Some(LockError::InGrace(file(2)))
    );
    // A file nobody held is free.
    let free = must_open(&m, &OpenRequest::new(file(9), owner(3), Access::READ));

    // Reclaims: another client is refused; a claim beyond what was held is refused.
    let o1 = owner(1);
    assert_eq!(
        m.reclaim(owner(3), &reclaim_open(file(1), Access::READ, None)),
        Err(ReclaimError::WrongClient)
    );
    assert_eq!(
        m.reclaim(
            owner(2),
            &reclaim_open(file(1), Access::READ, Some(lease_req(1, 1, st("RH"))))
        ),
        Err(ReclaimError::WrongClient)
    );
    assert_eq!(
        m.reclaim(
            o1,
            &reclaim_open(file(1), Access::READ, Some(lease_req(1, 1, st("RWH"))))
        ),
        Err(ReclaimError::Exceeds),
        "lease state above what was held"
    );
    assert_eq!(
        m.reclaim(o1, &reclaim_open(file(1), Access::DELETE, None)),
        Err(ReclaimError::Exceeds),
        "access above what was held"
    );
    assert_eq!(
        m.reclaim(o1, &reclaim_open(file(7), Access::READ, None)),
        Err(ReclaimError::NotFound)
    );
    // The right client gets its open and lease back.
    let g = m
        .reclaim(
            o1,
            &reclaim_open(file(1), Access::READ_WRITE, Some(lease_req(1, 1, st("RH")))),
        )
        .unwrap()
        .expect("an open");
    assert_eq!(g.lease.unwrap().state, st("RH"));
    assert_eq!(m.persisted_view(), m.store_snapshot().unwrap());
    // POSIX locks: within what was held, by the same client.
    let lo = LockOwner::Posix {
        owner: local(1),
        lock_owner: 7,
    };
    // The claimant is `reclaim`'s owner argument; the claim names file, range, kind.
    let claim = |r: ByteRange, kind| Reclaim::Lock {
        file: file(2),
        lock_owner: 7,
        range: r,
        kind,
    };
    assert_eq!(
        m.reclaim(local(3), &claim(range(0, 10), LockKind::Shared)),
        Err(ReclaimError::WrongClient)
    );
    assert_eq!(
        m.reclaim(local(1), &claim(range(50, 100), LockKind::Exclusive)),
        Err(ReclaimError::Exceeds)
    );
    assert_eq!(
        m.reclaim(local(1), &claim(range(0, 100), LockKind::Exclusive)),
        Ok(None)
    );
    assert!(m
        .view()
        .locks
        .iter()
        .any(|l| l.owner == lo && l.range == range(0, 100)));
    assert_eq!(m.persisted_view(), m.store_snapshot().unwrap());
    // Still in grace: client 2's state on files 2 and 3 is reserved.
    assert!(m.in_grace());
    assert_eq!(
        m.open(&OpenRequest::new(file(3), owner(3), Access::READ))
            .err(),
        Some(LockError::InGrace(file(3)))
    );

    // Grace ends by the clock: the rest is dropped, new state is allowed.
    clock.advance(GRACE);
    assert!(!m.in_grace());
    assert_eq!(
        m.reclaim(owner(2), &reclaim_open(file(3), Access::READ, None)),
        Err(ReclaimError::NotInGrace)
    );
    let snap = m.store_snapshot().unwrap();
    assert_eq!(m.persisted_view(), snap);
    assert_eq!(
        snap.opens.len(),
        2,
        "the reclaimed open and the new one on file 9"
    );
    assert_eq!(
        snap.leases.keys().copied().collect::<Vec<_>>(),
        vec![(client(1), key(1))]
    );
    assert_eq!(snap.locks.get(&file(2)).map(|l| l.len()), Some(1));
    must_open(&m, &OpenRequest::new(file(3), owner(3), Access::READ));
    m.lock(&lock_req(
        file(2),
        posix(3, 1),
        range(200, 10),
        LockKind::Exclusive,
        false,
    ))
    .expect("client 2's shared lock is gone");
    m.close(free.open);
    drop(m);

    // Dropped without a clean shutdown: the next start is unclean again, and end_grace
    // drops everything nobody reclaims.
    let m = open_store_retry(config(dir, None)).expect("reopen");
    assert!(!m.start_info().previous_clean);
    assert_eq!(m.start_info().epoch, 3);
    assert!(m.in_grace());
    assert!(!m.store_snapshot().unwrap().is_empty());
    m.end_grace();
    assert!(!m.in_grace());
    assert!(m.store_snapshot().unwrap().is_empty());
    assert_eq!(m.persisted_view(), m.store_snapshot().unwrap());

    // A clean shutdown leaves nothing to reclaim.
    must_open(&m, &leased_open(file(1), 1, 1, st("RWH"), Access::READ));
    m.shutdown_clean().unwrap();
    drop(m);
    let m = open_store_retry(config(dir, None)).expect("reopen");
    assert!(m.start_info().previous_clean);
    assert_eq!(m.start_info().epoch, 4);
    assert!(!m.in_grace());
    assert!(m.store_snapshot().unwrap().is_empty());
    assert_eq!(
        m.reclaim(owner(1), &reclaim_open(file(1), Access::READ, None)),
        Err(ReclaimError::NotInGrace)
    );
}

/// An unclean stop without a child process (the manager is dropped without
/// `shutdown_clean`), then reclaims that leave a persisted lease unclaimed or re-keyed:
/// the store must keep matching the manager's persisted view throughout.
#[test]
fn reclaim_keeps_store_and_view_equal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let m = open_store_retry(config(dir, None)).unwrap();
        // A lease open on file 1, and a traditional (Batch) oplock open on file 2.
        must_open(&m, &leased_open(file(1), 1, 1, st("RH"), Access::READ));
        let mut op = leased_open(
            file(2),
            1,
            0,
            OplockLevel::Batch.as_lease_state(),
            Access::READ,
        );
        op.lease.as_mut().unwrap().oplock = true;
        must_open(&m, &op);
        // A V2 lease upgraded once (epoch 2) on file 3.
        must_open(&m, &leased_open(file(3), 1, 3, st("R"), Access::READ));
        let g = must_open(&m, &leased_open(file(3), 1, 3, st("RH"), Access::READ));
        assert_eq!(g.lease.unwrap().epoch, 2);
        m.flush().unwrap();
    }
    let m = open_store_retry(config(dir, None)).unwrap();
    assert!(m.in_grace());
    let snap = m.store_snapshot().unwrap();
    assert_eq!(snap.leases.len(), 3);
    // The reclaimed lease resumes at the epoch the client last heard.
    let g = m
        .reclaim(
            owner(1),
            &reclaim_open(file(3), Access::READ, Some(lease_req(1, 3, st("RH")))),
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        (g.lease.unwrap().state, g.lease.unwrap().epoch),
        (st("RH"), 2)
    );
    assert_eq!(
        m.persisted_view(),
        m.store_snapshot().unwrap(),
        "after lease reclaim"
    );
    // Reclaim the lease open without its lease: the lease is no longer reclaimable.
    m.reclaim(owner(1), &reclaim_open(file(1), Access::READ, None))
        .unwrap();
    assert_eq!(
        m.persisted_view(),
        m.store_snapshot().unwrap(),
        "after reclaim without lease"
    );
    // Reclaim the oplock open with its oplock: it gets a new private key.
    let old_key = snap
        .leases
        .values()
        .find(|l| l.oplock)
        .map(|l| l.key)
        .unwrap();
    let claim = Reclaim::Open {
        file: file(2),
        access: Access::READ,
        share: ShareAccess::ALL,
        is_dir: false,
        lease: Some(LeaseRequest {
            client: client(1),
            key: old_key,
            state: st("RWH"),
            version: LeaseVersion::V2 { parent: None },
            oplock: true,
        }),
    };
    let g = m.reclaim(owner(1), &claim).unwrap().unwrap();
    assert_eq!(g.lease.unwrap().state, st("RWH"));
    assert_eq!(
        m.persisted_view(),
        m.store_snapshot().unwrap(),
        "after oplock reclaim"
    );
    m.end_grace();
    assert_eq!(
        m.persisted_view(),
        m.store_snapshot().unwrap(),
        "after grace"
    );
    // The reclaimed lease on file 3 and the re-keyed oplock remain.
    assert_eq!(m.store_snapshot().unwrap().leases.len(), 2);
}
