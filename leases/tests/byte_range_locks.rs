//! Byte-range locks in the unified table: conflict matrix, POSIX split/merge/unlock of
//! sub-ranges, SMB stacking and exact unlock, overflow-safe ranges, blocking requests
//! woken in order, deadlock refusal, and the R break a lock causes.

mod common;
use common::*;
use leasefs_leases::*;
use std::sync::Arc;

/// MS-FSA 2.1.4.10 (byte-range lock conflict) for SMB opens and POSIX.1 fcntl for lock
/// owners. Rows: held (owner, kind, range) x requested (owner, kind, range) -> conflict.
#[test]
fn conflict_matrix() {
    use LockKind::{Exclusive as X, Shared as S};
    let smb_a = LockOwner::Open(OpenId(1));
    let smb_b = LockOwner::Open(OpenId(2));
    let px_a = posix(1, 1);
    let px_b = posix(1, 2);
    type Row = (
        &'static str,
        LockOwner,
        LockKind,
        ByteRange,
        LockOwner,
        LockKind,
        ByteRange,
        bool,
    );
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        ("shared/shared other open",      smb_a, S, range(0, 10), smb_b, S, range(5, 10), false),
        ("shared/excl other open",        smb_a, S, range(0, 10), smb_b, X, range(5, 10), true),
        ("excl/shared other open",        smb_a, X, range(0, 10), smb_b, S, range(5, 10), true),
        ("excl/excl other open",          smb_a, X, range(0, 10), smb_b, X, range(5, 10), true),
        ("excl/excl disjoint",            smb_a, X, range(0, 10), smb_b, X, range(10, 10), false),
        ("excl/excl last byte touches",   smb_a, X, range(0, 10), smb_b, X, range(9, 1), true),
        ("same open: shared in own excl", smb_a, X, range(0, 10), smb_a, S, range(2, 2), false),
        ("same open: excl over own excl", smb_a, X, range(0, 10), smb_a, X, range(2, 2), true),
        ("same open: excl over own shared", smb_a, S, range(0, 10), smb_a, X, range(2, 2), true),
        ("same open: shared over shared", smb_a, S, range(0, 10), smb_a, S, range(0, 10), false),
        ("zero length inside excl",       smb_a, X, range(0, 10), smb_b, X, range(5, 0), true),
        ("zero length at start of excl",  smb_a, X, range(0, 10), smb_b, X, range(0, 0), false),
        ("posix same owner replaces",     px_a,  X, range(0, 10), px_a,  X, range(5, 10), false),
        ("posix same owner shared/excl",  px_a,  S, range(0, 10), px_a,  X, range(5, 10), false),
        ("posix other owner",             px_a,  S, range(0, 10), px_b,  X, range(5, 10), true),
        ("posix other owner shared",      px_a,  S, range(0, 10), px_b,  S, range(5, 10), false),
        ("posix vs smb same bytes",       px_a,  X, range(0, 10), smb_b, S, range(0, 1), true),
        ("smb vs posix same bytes",       smb_a, S, range(0, 10), px_b,  X, range(9, 1), true),
        ("to EOF vs last byte",           px_a,  X, ByteRange::to_eof(100), px_b, S, range(u64::MAX, 1), true),
        ("to EOF vs before start",        px_a,  X, ByteRange::to_eof(100), px_b, X, range(0, 100), false),
        ("whole space vs last byte",      smb_a, X, range(0, u64::MAX), smb_b, X, range(u64::MAX, 1), false),
        ("whole space vs byte before",    smb_a, X, range(0, u64::MAX), smb_b, X, range(u64::MAX - 1, 1), true),
    ];
    for (what, ho, hk, hr, ro, rk, rr, want) in table {
        let (m, _c) = manual_mgr();
        let f = file(1);
        // SMB owners must be real opens of the file.
        for _ in 0..2 {
            must_open(&m, &OpenRequest::new(f, owner(5), Access::READ_WRITE));
        }
        m.lock(&lock_req(f, ho, hr, hk, false))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let probe = lock_req(f, ro, rr, rk, false);
        assert_eq!(m.test_lock(&probe).is_some(), want, "{what}: test_lock");
        match (want, m.lock(&probe)) {
            (true, Err(LockError::Conflict { range, kind })) => {
                assert_eq!((range, kind), (hr, hk), "{what}: reported conflict")
            }
            (false, Ok(LockOutcome::Granted)) => {}
            (_, other) => panic!("{what}: expected conflict={want}, got {other:?}"),
        }
    }
}

/// MS-FSA 2.1.5.7: offset + length - 1 must not wrap (STATUS_INVALID_LOCK_RANGE).
#[test]
fn overflowing_ranges_are_refused() {
    assert!(matches!(
        ByteRange::new(u64::MAX, 2),
        Err(RangeError::Overflow { .. })
    ));
    assert!(matches!(
        ByteRange::new(2, u64::MAX),
        Err(RangeError::Overflow { .. })
    ));
    assert_eq!(ByteRange::new(1, u64::MAX).unwrap().last, u64::MAX);
    assert!(ByteRange::new(0, u64::MAX).is_ok());
    assert!(ByteRange::new(u64::MAX, 1).is_ok());
    assert!(ByteRange::new(u64::MAX, 0).is_ok());
    let e: LockError = ByteRange::new(u64::MAX, 2).unwrap_err().into();
    assert!(matches!(e, LockError::Range(_)));
}

fn held(m: &LockManager) -> Vec<(LockOwner, ByteRange, LockKind)> {
    let mut v: Vec<_> = m
        .view()
        .locks
        .into_iter()
        .filter(|l| !l.waiting)
        .map(|l| (l.owner, l.range, l.kind))
        .collect();
    v.sort();
    v
}

/// POSIX.1 fcntl: a new lock by the same owner replaces, splits or merges what it held;
/// unlocking a sub-range splits; unlocking what is not held succeeds.
#[test]
fn posix_split_merge_unlock() {
    use LockKind::{Exclusive as X, Shared as S};
    let (m, _c) = manual_mgr();
    let f = file(1);
    let o = posix(1, 1);
    let incl = ByteRange::inclusive;
    m.lock(&lock_req(f, o, range(0, 100), X, false)).unwrap();
    m.lock(&lock_req(f, o, range(40, 20), S, false)).unwrap();
    assert_eq!(
        held(&m),
        vec![
            (o, incl(0, 39), X),
            (o, incl(40, 59), S),
            (o, incl(60, 99), X)
        ]
    );
    // Re-locking the middle exclusively merges everything back.
    m.lock(&lock_req(f, o, range(40, 20), X, false)).unwrap();
    assert_eq!(held(&m), vec![(o, incl(0, 99), X)]);
    // Adjacent locks of one kind merge.
    m.lock(&lock_req(f, o, range(100, 10), X, false)).unwrap();
    assert_eq!(held(&m), vec![(o, incl(0, 109), X)]);
    // Unlock a sub-range: split in two.
    m.unlock(f, o, range(10, 10)).unwrap();
    assert_eq!(held(&m), vec![(o, incl(0, 9), X), (o, incl(20, 109), X)]);
    // Unlock across the hole and into the second part.
    m.unlock(f, o, range(5, 20)).unwrap();
    assert_eq!(held(&m), vec![(o, incl(0, 4), X), (o, incl(25, 109), X)]);
    // Unlocking nothing is fine for POSIX.
    m.unlock(f, o, range(500, 10)).unwrap();
    // To EOF, then unlock the tail only.
    m.lock(&lock_req(f, o, ByteRange::to_eof(200), S, false))
        .unwrap();
    m.unlock(f, o, ByteRange::to_eof(300)).unwrap();
    assert_eq!(
        held(&m),
        vec![
            (o, incl(0, 4), X),
            (o, incl(25, 109), X),
            (o, incl(200, 299), S)
        ]
    );
    // Another owner can take the bytes that were released.
    m.lock(&lock_req(f, posix(1, 2), range(5, 20), X, false))
        .unwrap();
    m.lock(&lock_req(f, posix(1, 2), ByteRange::to_eof(300), X, false))
        .unwrap();
    // Close semantics: all of one lock owner's locks go.
    m.release_posix_locks(f, local(1), 1);
    assert!(held(&m).iter().all(|(ow, _, _)| *ow == posix(1, 2)));
}

/// MS-FSA 2.1.5.7 / 2.1.5.8: SMB locks belong to the open, stack, and are unlocked only
/// by naming the exact range (STATUS_RANGE_NOT_LOCKED otherwise); closing the open
/// releases them.
#[test]
fn smb_stacking_and_exact_unlock() {
    use LockKind::Shared as S;
    let (m, _c) = manual_mgr();
    let f = file(1);
    let g = must_open(&m, &OpenRequest::new(f, owner(1), Access::READ_WRITE));
    let o = LockOwner::Open(g.open);
    m.lock(&lock_req(f, o, range(0, 10), S, false)).unwrap();
    m.lock(&lock_req(f, o, range(0, 10), S, false)).unwrap();
    assert_eq!(held(&m).len(), 2, "stacked");
    assert_eq!(m.unlock(f, o, range(0, 5)), Err(LockError::RangeNotLocked));
    assert_eq!(m.unlock(f, o, range(0, 11)), Err(LockError::RangeNotLocked));
    assert_eq!(
        m.unlock(f, LockOwner::Open(OpenId(999)), range(0, 10)),
        Err(LockError::RangeNotLocked)
    );
    m.unlock(f, o, range(0, 10)).unwrap();
    assert_eq!(held(&m).len(), 1);
    m.unlock(f, o, range(0, 10)).unwrap();
    assert_eq!(m.unlock(f, o, range(0, 10)), Err(LockError::RangeNotLocked));
    // Zero-length locks can be taken and released.
    m.lock(&lock_req(f, o, range(7, 0), LockKind::Exclusive, false))
        .unwrap();
    m.unlock(f, o, range(7, 0)).unwrap();
    // A lock on an open of another file, or an unknown open, is refused.
    assert_eq!(
        m.lock(&lock_req(file(2), o, range(0, 1), S, false)).err(),
        Some(LockError::UnknownOpen)
    );
    // Close releases the handle's locks and lets others in.
    m.lock(&lock_req(f, o, range(0, 10), LockKind::Exclusive, false))
        .unwrap();
    m.close(g.open);
    assert!(held(&m).is_empty());
}

/// Blocking requests queue and are granted in arrival order as conflicts go away.
#[test]
fn blocking_requests_are_woken_in_order() {
    use LockKind::{Exclusive as X, Shared as S};
    let (m, _c) = manual_mgr();
    let f = file(1);
    let (a, b, c, d) = (posix(1, 1), posix(1, 2), posix(1, 3), posix(1, 4));
    m.lock(&lock_req(f, a, range(0, 10), X, false)).unwrap();
    let wait = |o, k| match m.lock(&lock_req(f, o, range(0, 10), k, true)).unwrap() {
        LockOutcome::Wait(w) => w,
        LockOutcome::Granted => panic!("must queue"),
    };
    let wb = wait(b, X);
    let wc = wait(c, S);
    let wd = wait(d, S);
    assert!(m.view().locks.iter().filter(|l| l.waiting).count() == 3);
    m.unlock(f, a, range(0, 10)).unwrap();
    assert_eq!(wb.try_result(), Some(Ok(())), "first in line");
    assert!(!wc.is_done() && !wd.is_done());
    m.unlock(f, b, range(0, 10)).unwrap();
    // Both shared requests fit together.
    assert_eq!(wc.try_result(), Some(Ok(())));
    assert_eq!(wd.try_result(), Some(Ok(())));
    for w in [&wb, &wc, &wd] {
        assert_eq!(w.wake_attempts(), 1);
    }
    assert_eq!(held(&m), vec![(c, range(0, 10), S), (d, range(0, 10), S)]);
}

/// A waiter whose request is withdrawn (handle dropped) or whose open closes is
/// cancelled, and does not hold later requests back.
#[test]
fn withdrawn_and_cancelled_lock_waits() {
    use LockKind::Exclusive as X;
    let (m, _c) = manual_mgr();
    let f = file(1);
    m.lock(&lock_req(f, posix(1, 1), range(0, 10), X, false))
        .unwrap();
    let LockOutcome::Wait(w1) = m
        .lock(&lock_req(f, posix(1, 2), range(0, 10), X, true))
        .unwrap()
    else {
        panic!()
    };
    let g = must_open(&m, &OpenRequest::new(f, owner(3), Access::READ_WRITE));
    let LockOutcome::Wait(w2) = m
        .lock(&lock_req(f, LockOwner::Open(g.open), range(0, 10), X, true))
        .unwrap()
    else {
        panic!()
    };
    let LockOutcome::Wait(w3) = m
        .lock(&lock_req(f, posix(1, 4), range(0, 10), X, true))
        .unwrap()
    else {
        panic!()
    };
    drop(w1);
    m.close(g.open);
    assert_eq!(w2.try_result(), Some(Err(LockError::Cancelled)));
    m.unlock(f, posix(1, 1), range(0, 10)).unwrap();
    assert_eq!(w3.try_result(), Some(Ok(())));
}

/// EDEADLK: a blocking request that would close a cycle of waiters is refused.
#[test]
fn deadlock_is_refused() {
    use LockKind::Exclusive as X;
    let (m, _c) = manual_mgr();
    let (f, g) = (file(1), file(2));
    let (a, b, c) = (posix(1, 1), posix(1, 2), posix(1, 3));
    m.lock(&lock_req(f, a, range(0, 10), X, false)).unwrap();
    m.lock(&lock_req(g, b, range(0, 10), X, false)).unwrap();
    m.lock(&lock_req(g, c, range(20, 10), X, false)).unwrap();
    // a waits for b (on g), b waits for c (on g); c asking for a's bytes closes the cycle.
    let LockOutcome::Wait(_wa) = m.lock(&lock_req(g, a, range(0, 10), X, true)).unwrap() else {
        panic!()
    };
    let LockOutcome::Wait(_wb) = m.lock(&lock_req(g, b, range(20, 10), X, true)).unwrap() else {
        panic!()
    };
    assert_eq!(
        m.lock(&lock_req(f, c, range(0, 10), X, true)).err(),
        Some(LockError::Deadlock)
    );
    assert_eq!(
        m.lock(&lock_req(f, b, range(5, 1), X, true)).err(),
        Some(LockError::Deadlock)
    );
    // Without waiting it is a plain conflict.
    assert!(matches!(
        m.lock(&lock_req(f, c, range(0, 10), X, false)),
        Err(LockError::Conflict { .. })
    ));
}

/// A queued request that is blocked only by a lock of a later waiter must not hold that
/// waiter back: otherwise neither can ever proceed (an undetected deadlock).
#[test]
fn earlier_waiter_blocked_by_later_waiters_lock_does_not_starve_it() {
    use LockKind::Exclusive as X;
    let (m, _c) = manual_mgr();
    let f = file(1);
    let (p, q, r) = (posix(1, 1), posix(1, 2), posix(1, 3));
    m.lock(&lock_req(f, p, range(0, 10), X, false)).unwrap();
    m.lock(&lock_req(f, r, range(20, 10), X, false)).unwrap();
    // q waits for p's and r's bytes.
    let LockOutcome::Wait(wq) = m.lock(&lock_req(f, q, range(0, 30), X, true)).unwrap() else {
        panic!()
    };
    // p waits for r's bytes only.
    let LockOutcome::Wait(wp) = m.lock(&lock_req(f, p, range(20, 10), X, true)).unwrap() else {
        panic!()
    };
    m.unlock(f, r, range(20, 10)).unwrap();
    assert_eq!(
        wp.try_result(),
        Some(Ok(())),
        "p can take r's bytes: nothing holds them"
    );
    assert!(!wq.is_done());
    m.release_posix_locks(f, local(1), 1);
    assert_eq!(wq.try_result(), Some(Ok(())));
}

/// A disconnected owner's queued requests are cancelled too, not granted later to an
/// owner that no longer exists.
#[test]
fn disconnect_cancels_queued_posix_requests() {
    use LockKind::Exclusive as X;
    let (m, _c) = manual_mgr();
    let f = file(1);
    m.lock(&lock_req(f, posix(1, 1), range(0, 10), X, false))
        .unwrap();
    let gone = LockOwner::Posix {
        owner: local(2),
        lock_owner: 7,
    };
    let LockOutcome::Wait(w) = m.lock(&lock_req(f, gone, range(0, 10), X, true)).unwrap() else {
        panic!()
    };
    m.owner_gone(local(2));
    assert_eq!(w.try_result(), Some(Err(LockError::Cancelled)));
    m.unlock(f, posix(1, 1), range(0, 10)).unwrap();
    assert!(
        held(&m).is_empty(),
        "nothing granted to the gone owner: {:?}",
        held(&m)
    );
}

/// MS-FSA 2.1.5.7: a byte-range lock breaks other keys' read caching (Level II / R) to
/// None without waiting; the locker's own lease stays.
#[test]
fn lock_breaks_others_read_caching() {
    let (m, _c) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    m.register_sink(owner(2), rec.clone());
    let f = file(1);
    must_open(&m, &leased_open(f, 1, 1, st("R"), Access::READ));
    let mine = must_open(&m, &leased_open(f, 2, 2, st("R"), Access::READ_WRITE));
    m.lock(&lock_req(
        f,
        LockOwner::Open(mine.open),
        range(0, 1),
        LockKind::Shared,
        false,
    ))
    .unwrap();
    let n = rec.take();
    assert_eq!(n.len(), 1);
    assert_eq!(
        (n[0].key, n[0].to, n[0].ack_required),
        (key(1), st("none"), false)
    );
    assert_eq!(lease_state(&m, 1, 1), Some(st("none")));
    assert_eq!(lease_state(&m, 2, 2), Some(st("R")));
    // A local POSIX lock breaks every lease.
    m.lock(&lock_req(
        f,
        posix(9, 1),
        range(5, 1),
        LockKind::Shared,
        false,
    ))
    .unwrap();
    assert_eq!(lease_state(&m, 2, 2), Some(st("none")));
}

/// POSIX.1 fcntl: an owner's new lock replaces what it held over the range, so turning
/// an exclusive lock into a shared one must let queued shared requests in.
#[test]
fn posix_downgrade_wakes_queued_shared_requests() {
    use LockKind::{Exclusive as X, Shared as S};
    let (m, _c) = manual_mgr();
    let f = file(1);
    let (a, b, c) = (posix(1, 1), posix(1, 2), posix(1, 3));
    m.lock(&lock_req(f, a, range(0, 10), X, false)).unwrap();
    let LockOutcome::Wait(wb) = m.lock(&lock_req(f, b, range(0, 10), S, true)).unwrap() else {
        panic!()
    };
    let LockOutcome::Wait(wc) = m.lock(&lock_req(f, c, range(0, 10), X, true)).unwrap() else {
        panic!()
    };
    m.lock(&lock_req(f, a, range(0, 10), S, false)).unwrap();
    assert_eq!(
        wb.try_result(),
        Some(Ok(())),
        "shared waiter granted on downgrade"
    );
    assert!(!wc.is_done(), "the exclusive waiter still conflicts");
    // Unlocking the shared bytes lets the exclusive waiter in.
    m.unlock(f, a, range(0, 10)).unwrap();
    m.unlock(f, b, range(0, 10)).unwrap();
    assert_eq!(wc.try_result(), Some(Ok(())));
}
