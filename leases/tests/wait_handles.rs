//! Wait handles as futures and blocking waits: completed by the manager from another
//! thread, withdrawn when dropped, and never left pending when the manager goes away.

mod common;
use common::*;
use leasefs_leases::*;
use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Far above anything a correct run needs: only a hang gets here.
const HANG: Duration = Duration::from_secs(30);

struct ThreadWaker(std::thread::Thread);
impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: polls `fut` on this thread, parking between wake-ups.
fn block_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    let t0 = std::time::Instant::now();
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        assert!(t0.elapsed() < HANG, "future never completed");
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

#[test]
fn break_wait_future_completes_on_ack_from_another_thread() {
    let (m, _c) = manual_mgr();
    m.register_sink(owner(1), Arc::new(Recorder::default()));
    must_open(&m, &leased_open(file(1), 1, 1, st("RWH"), Access::READ));
    let w = must_wait(&m, &OpenRequest::new(file(1), owner(2), Access::READ));
    let m2 = m.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        m2.ack_break(client(1), key(1), st("RH")).unwrap();
    });
    assert_eq!(block_on(w), WakeReason::Acked);
    t.join().unwrap();
}

#[test]
fn lock_wait_future_and_blocking_wait() {
    let (m, _c) = manual_mgr();
    let f = file(1);
    m.lock(&lock_req(
        f,
        posix(1, 1),
        range(0, 10),
        LockKind::Exclusive,
        false,
    ))
    .unwrap();
    let LockOutcome::Wait(w) = m
        .lock(&lock_req(
            f,
            posix(1, 2),
            range(0, 10),
            LockKind::Exclusive,
            true,
        ))
        .unwrap()
    else {
        panic!("must queue")
    };
    let m2 = m.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        m2.unlock(f, posix(1, 1), range(0, 10)).unwrap();
    });
    assert_eq!(block_on(w), Ok(()));
    t.join().unwrap();
    // A blocking waiter on another thread, woken by an unlock here.
    let (tx, rx) = mpsc::channel();
    let m3 = m.clone();
    let t = std::thread::spawn(move || {
        match m3
            .lock(&lock_req(
                f,
                posix(1, 3),
                range(5, 1),
                LockKind::Shared,
                true,
            ))
            .unwrap()
        {
            LockOutcome::Wait(w) => {
                tx.send(()).unwrap();
                w.wait()
            }
            LockOutcome::Granted => panic!("must queue"),
        }
    });
    rx.recv_timeout(HANG).unwrap();
    m.unlock(f, posix(1, 2), range(0, 10)).unwrap();
    assert_eq!(t.join().unwrap(), Ok(()));
}

#[test]
fn dropping_a_pending_future_withdraws_it() {
    let (m, _c) = manual_mgr();
    let f = file(1);
    m.lock(&lock_req(
        f,
        posix(1, 1),
        range(0, 10),
        LockKind::Exclusive,
        false,
    ))
    .unwrap();
    let LockOutcome::Wait(w) = m
        .lock(&lock_req(
            f,
            posix(1, 2),
            range(0, 10),
            LockKind::Exclusive,
            true,
        ))
        .unwrap()
    else {
        panic!("must queue")
    };
    // Poll once (registers a waker), then drop.
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut w = Box::pin(w);
    assert!(w.as_mut().poll(&mut cx).is_pending());
    drop(w);
    assert!(m.view().locks.iter().all(|l| !l.waiting));
    m.unlock(f, posix(1, 1), range(0, 10)).unwrap();
    assert!(
        m.view().locks.is_empty(),
        "nothing granted to a withdrawn request"
    );
}

/// DESIGN.md: every waiter is woken. A manager that goes away (dropped without a clean
/// shutdown) must not leave blocked requesters waiting forever.
#[test]
fn dropping_the_manager_cancels_pending_waits() {
    let cfg = ManagerConfig::default(); // deadline thread on, 35 s timeout
    let m = LockManager::with_store(cfg, Box::new(MemoryStore::new())).unwrap();
    m.register_sink(owner(1), Arc::new(Recorder::default()));
    let f = file(1);
    must_open(&m, &leased_open(f, 1, 1, st("RWH"), Access::READ));
    let bw = must_wait(&m, &OpenRequest::new(f, owner(2), Access::READ));
    m.lock(&lock_req(
        f,
        posix(1, 1),
        range(0, 10),
        LockKind::Exclusive,
        false,
    ))
    .unwrap();
    let LockOutcome::Wait(lw) = m
        .lock(&lock_req(
            f,
            posix(1, 2),
            range(0, 10),
            LockKind::Exclusive,
            true,
        ))
        .unwrap()
    else {
        panic!("must queue")
    };
    // Drop on another thread: it must return (the deadline thread must not sit out the
    // 35 s deadline) ...
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(m);
        let _ = tx.send(());
    });
    rx.recv_timeout(HANG).expect("dropping the manager hung");
    // ... and the waiters must be told.
    assert_eq!(bw.wait_timeout(HANG), Some(WakeReason::Cancelled));
    assert_eq!(lw.wait_timeout(HANG), Some(Err(LockError::Cancelled)));
    assert_eq!(bw.wake_attempts(), 1);
    assert_eq!(lw.wake_attempts(), 1);
}
