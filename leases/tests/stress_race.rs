//! Concurrency stress: an ack, the break deadline (real deadline thread, system clock,
//! short timeout), a close and a disconnect race on one lease while several requesters
//! wait on it. Each waiter must complete exactly once, nothing may deadlock, and the
//! state must end consistent. (A loom/shuttle model would need cfg plumbing through
//! parking_lot; issue 2 accepts a stress test.)

mod common;
use common::*;
use leasefs_leases::*;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

const BREAK_TIMEOUT: Duration = Duration::from_millis(8);
/// Far above anything a correct run needs: only a hang gets here.
const HANG: Duration = Duration::from_secs(60);

/// Forwards notices to the thread playing the client.
struct Chan(Mutex<mpsc::Sender<BreakNotice>>);
impl BreakSink for Chan {
    fn deliver(&self, n: BreakNotice) {
        let _ = self.0.lock().send(n);
    }
}

/// A tiny deterministic generator, so a failing iteration can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn upto(&mut self, d: Duration) -> Duration {
        Duration::from_micros(self.next() % (d.as_micros() as u64 + 1))
    }
}

/// Aborts the process if the test is still running after `HANG` * 10: a deadlock in the
/// manager would otherwise hang CI instead of failing.
fn watchdog() -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < HANG * 10 {
            if d.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "stress test still running after {:?}: manager deadlock",
            HANG * 10
        );
        std::process::abort();
    });
    done
}

#[test]
fn ack_vs_deadline_vs_close_vs_disconnect() {
    let done = watchdog();
    let cfg = ManagerConfig {
        break_timeout: BREAK_TIMEOUT,
        ..Default::default()
    };
    let m = LockManager::with_store(cfg, Box::new(MemoryStore::new())).unwrap();
    let mut tally = std::collections::HashMap::new();
    let iterations = 300;
    for it in 0..iterations {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((it as u64 + 1) * 0x1000_0001));
        let f = file(it as u64 + 1);
        let holder = OwnerId::new(Protocol::Smb, client(1), it as u64 + 1);
        let (tx, rx) = mpsc::channel();
        m.register_sink(holder, Arc::new(Chan(Mutex::new(tx))));
        let k = it as u128 + 1;
        let h = must_open(
            &m,
            &OpenRequest {
                owner: holder,
                ..leased_open(f, 1, k, st("RWH"), Access::READ)
            },
        );
        // Several requesters wait on the same lease for different reasons.
        let mut waits = vec![must_wait(&m, &OpenRequest::new(f, owner(2), Access::READ))];
        if let BreakOutcome::Wait(w) = m.before_truncate(f, &Requester::owner(owner(3))) {
            waits.push(w);
        }
        if let BreakOutcome::Wait(w) = m.before_unlink(f, None, &Requester::owner(owner(4))) {
            waits.push(w);
        }
        // The truncate and unlink may find the lease already revoked under load; then
        // they proceed, which is right, and there is less to race on.
        assert!(!waits.is_empty());
        let scenario = it % 4; // which racers run besides the deadline thread
        let ack_delay = rng.upto(BREAK_TIMEOUT * 2);
        let close_delay = rng.upto(BREAK_TIMEOUT * 2);
        let acked = Arc::new(Mutex::new(Vec::new()));
        std::thread::scope(|s| {
            // The client: acks every break it is sent, late or not.
            let (m1, acked1) = (&m, acked.clone());
            s.spawn(move || {
                std::thread::sleep(ack_delay);
                while let Ok(n) = rx.recv_timeout(BREAK_TIMEOUT * 4) {
                    let r = m1.ack_break(n.client, n.key, n.to);
                    acked1.lock().push((n.to, r));
                }
            });
            if scenario == 1 || scenario == 3 {
                let m2 = &m;
                s.spawn(move || {
                    std::thread::sleep(close_delay);
                    m2.close(h.open);
                });
            }
            if scenario == 2 {
                let m3 = &m;
                s.spawn(move || {
                    std::thread::sleep(close_delay);
                    m3.owner_gone(holder);
                });
            }
            for w in &waits {
                let r = w.wait_timeout(HANG);
                assert!(
                    r.is_some(),
                    "iteration {it}: waiter never woken (deadlock?)"
                );
            }
        });
        let reasons: Vec<WakeReason> = waits.iter().map(|w| w.try_result().unwrap()).collect();
        for (w, r) in waits.iter().zip(&reasons) {
            assert_eq!(
                w.wake_attempts(),
                1,
                "iteration {it}: {r:?} raced another wake"
            );
            *tally.entry(*r).or_insert(0u32) += 1;
        }
        let acks = acked.lock().clone();
        // The state ends consistent: the lease is gone or not breaking, at RH or below.
        match lease_view(&m, 1, k) {
            None => assert_ne!(
                scenario, 0,
                "iteration {it}: lease vanished without a close"
            ),
            Some(v) => {
                assert!(!v.breaking, "iteration {it}: still breaking: {v:?}");
                assert!(v.state.is_subset_of(st("R")), "iteration {it}: {v:?}");
            }
        }
        for r in &reasons {
            match r {
                // Acked: some ack was accepted.
                WakeReason::Acked => assert!(
                    acks.iter().any(|(_, r)| r.is_ok()),
                    "iteration {it}: woken by an ack nobody made: {acks:?}"
                ),
                // A revoked lease refuses the late ack that follows (MS-SMB2 3.3.6.5).
                WakeReason::Revoked => assert!(
                    acks.iter().all(|(_, r)| *r != Err(AckError::NotSubset)),
                    "iteration {it}: {acks:?}"
                ),
                WakeReason::Released => assert!(scenario == 1 || scenario == 3),
                WakeReason::Disconnected => assert_eq!(scenario, 2),
                WakeReason::Cancelled => panic!("iteration {it}: nobody cancelled"),
            }
        }
        // A requester can now open: nothing is left that needs an ack.
        let again = must_open(&m, &OpenRequest::new(f, owner(2), Access::READ));
        m.close(again.open);
        m.owner_gone(holder);
        assert_eq!(m.persisted_view(), m.store_snapshot().unwrap());
    }
    assert!(m.view().leases.is_empty() && m.view().opens.is_empty());
    eprintln!("wake reasons over {iterations} iterations: {tally:?}");
    done.store(true, Ordering::Relaxed);
}

/// Many threads acking, breaking and closing on a few files at once, with the real
/// deadline thread: the manager must never deadlock and every wait must end.
#[test]
fn many_threads_many_leases() {
    let done = watchdog();
    let cfg = ManagerConfig {
        break_timeout: BREAK_TIMEOUT,
        ..Default::default()
    };
    let m = LockManager::with_store(cfg, Box::new(MemoryStore::new())).unwrap();
    let threads = 4u128;
    std::thread::scope(|s| {
        for t in 0..threads {
            let m = &m;
            s.spawn(move || {
                let mut rng = Rng(0xDEAD_BEEF ^ (t as u64 + 1));
                let me = owner(10 + t);
                // The sink acks synchronously from inside delivery: it must be called
                // with no manager lock held.
                struct AckNow(std::sync::Weak<LockManager>);
                impl BreakSink for AckNow {
                    fn deliver(&self, n: BreakNotice) {
                        if let Some(m) = self.0.upgrade() {
                            if n.epoch % 2 == 0 {
                                let _ = m.ack_break(n.client, n.key, n.to);
                            }
                        }
                    }
                }
                m.register_sink(me, Arc::new(AckNow(Arc::downgrade(m))));
                for i in 0..300u64 {
                    let f = file(rng.next() % 3 + 1);
                    let k = (t << 32) | i as u128;
                    let req = OpenRequest {
                        owner: me,
                        ..leased_open(f, 10 + t, k, st("RWH"), Access::READ)
                    };
                    let g = match m.open(&req) {
                        Ok(OpenOutcome::Opened(g)) => Some(g),
                        Ok(OpenOutcome::Wait(w)) => {
                            assert!(w.wait_timeout(HANG).is_some(), "open wait hung");
                            assert_eq!(w.wake_attempts(), 1);
                            None
                        }
                        Err(e) => panic!("{e}"),
                    };
                    if rng.next() % 3 == 0 {
                        if let BreakOutcome::Wait(w) = m.before_truncate(f, &Requester::owner(me)) {
                            assert!(w.wait_timeout(HANG).is_some(), "truncate wait hung");
                            assert_eq!(w.wake_attempts(), 1);
                        }
                    }
                    if let Some(g) = g {
                        if rng.next() % 4 != 0 {
                            m.close(g.open);
                        }
                    }
                }
                m.owner_gone(me);
            });
        }
    });
    assert!(m.view().leases.is_empty());
    assert_eq!(m.persisted_view(), m.store_snapshot().unwrap());
    done.store(true, Ordering::Relaxed);
}

/// Threads taking two overlapping byte-range locks each with blocking requests (so
/// cycles form and must be refused as deadlocks), releasing them by unlock, by POSIX
/// close semantics or by disconnecting: every blocked request must end (granted,
/// refused or cancelled), and nothing may be left held or queued at the end.
#[test]
fn blocking_byte_range_locks_from_many_threads() {
    let done = watchdog();
    let (m, _clock) = manual_mgr();
    let f = file(1);
    let threads = 4u128;
    let stats = Mutex::new((0u32, 0u32, 0u32)); // granted after waiting, deadlocks, cancelled
    std::thread::scope(|s| {
        for t in 0..threads {
            let (m, stats) = (&m, &stats);
            s.spawn(move || {
                let mut rng = Rng(0x1234_5678 ^ ((t as u64 + 1) << 20));
                let me = local(20 + t);
                for i in 0..400u64 {
                    let lo = i % 3; // several POSIX lock owners per front-end owner
                    let o = LockOwner::Posix {
                        owner: me,
                        lock_owner: lo,
                    };
                    let mut held = Vec::new();
                    for _ in 0..2 {
                        let r = range(rng.next() % 100, rng.next() % 20 + 1);
                        let kind = if rng.next() % 3 == 0 {
                            LockKind::Shared
                        } else {
                            LockKind::Exclusive
                        };
                        match m.lock(&lock_req(f, o, r, kind, true)) {
                            Ok(LockOutcome::Granted) => held.push(r),
                            Ok(LockOutcome::Wait(w)) => {
                                let res = w.wait_timeout(HANG);
                                assert!(res.is_some(), "thread {t}: blocked lock never ended");
                                assert_eq!(w.wake_attempts(), 1);
                                match res.unwrap() {
                                    Ok(()) => {
                                        held.push(r);
                                        stats.lock().0 += 1;
                                    }
                                    Err(LockError::Cancelled) => stats.lock().2 += 1,
                                    Err(e) => panic!("thread {t}: {e}"),
                                }
                            }
                            Err(LockError::Deadlock) => {
                                stats.lock().1 += 1;
                                break;
                            }
                            Err(e) => panic!("thread {t}: {e}"),
                        }
                    }
                    std::thread::sleep(Duration::from_micros(rng.next() % 200));
                    match rng.next() % 5 {
                        0 => m.release_posix_locks(f, me, lo),
                        1 => m.owner_gone(me),
                        // Another thread's connection drops while it may be blocked.
                        2 => {
                            m.owner_gone(local(20 + (t + 1) % threads));
                            for r in held {
                                m.unlock(f, o, r).unwrap();
                            }
                        }
                        _ => {
                            for r in held {
                                m.unlock(f, o, r).unwrap();
                            }
                        }
                    }
                }
                m.owner_gone(me);
            });
        }
    });
    let v = m.view();
    assert!(v.locks.is_empty(), "left over: {:?}", v.locks);
    assert_eq!(m.persisted_view(), m.store_snapshot().unwrap());
    eprintln!(
        "granted after waiting, deadlocks refused, cancelled: {:?}",
        stats.lock()
    );
    done.store(true, Ordering::Relaxed);
}
