//! Lock manager benchmarks (criterion): grant+release throughput on the in-memory and
//! sled stores, byte-range lock/unlock with many locks on one file, and revocation with
//! many leases held of which some are breaking (deadline lateness and tick cost).
//!
//! Run: `cargo bench -p leasefs-leases --bench lock_manager -- --warm-up-time 1 --measurement-time 3`
//! LEASEFS_BENCH_LEASES (default 1000000) and LEASEFS_BENCH_BREAKING (default 10000)
//! scale the revocation benchmarks.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use leasefs_leases::*;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct NullSink;
impl BreakSink for NullSink {
    fn deliver(&self, _n: BreakNotice) {}
}

fn owner(n: u128) -> OwnerId {
    OwnerId::new(Protocol::Smb, ClientId::from_u128(n), 1)
}

fn leased(f: FileId, c: u128, k: u128, state: LeaseState) -> OpenRequest {
    OpenRequest {
        lease: Some(LeaseRequest {
            client: ClientId::from_u128(c),
            key: LeaseKey::from_u128(k),
            state,
            version: LeaseVersion::V2 { parent: None },
            oplock: false,
        }),
        ..OpenRequest::new(f, owner(c), Access::READ)
    }
}

fn opened(m: &LockManager, req: &OpenRequest) -> OpenGrant {
    match m.open(req) {
        Ok(OpenOutcome::Opened(g)) => g,
        other => panic!("open did not grant at once: {other:?}"),
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn manual(store: Box<dyn LockStore>, sync_writes: bool) -> (Arc<LockManager>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let cfg = ManagerConfig {
        clock: Some(clock.clone()),
        drive_deadlines: false,
        sync_writes,
        ..Default::default()
    };
    (LockManager::with_store(cfg, store).expect("store"), clock)
}

/// Open with an RWH lease, then close (the lease goes with the last open).
fn grant_release(c: &mut Criterion) {
    let mut g = c.benchmark_group("grant_release");
    let dir = tempfile::tempdir().expect("tempdir");
    let stores: Vec<(&str, Box<dyn LockStore>, bool)> = vec![
        ("memory", Box::new(MemoryStore::new()), false),
        (
            "sled",
            Box::new(SledStore::open(&dir.path().join("a")).expect("sled")),
            false,
        ),
        (
            "sled_sync_writes",
            Box::new(SledStore::open(&dir.path().join("b")).expect("sled")),
            true,
        ),
    ];
    for (name, store, sync) in stores {
        let (m, _clock) = manual(store, sync);
        m.register_sink(owner(1), Arc::new(NullSink));
        // Some unrelated state, so maps are not trivially empty.
        for i in 0..1000u64 {
            opened(
                &m,
                &leased(FileId::new(2, i), 1, 1_000_000 + i as u128, LeaseState::RH),
            );
        }
        let req = leased(FileId::new(1, 1), 1, 1, LeaseState::RWH);
        if sync {
            g.sample_size(10);
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                let gr = opened(&m, &req);
                m.close(black_box(gr.open));
            })
        });
    }
    g.finish();
}

/// Lock and unlock one more range on a file that already holds `n` locks of other
/// owners (disjoint ranges, so nothing merges and nothing conflicts).
fn byte_range(c: &mut Criterion) {
    let mut g = c.benchmark_group("byte_range_lock_unlock");
    for n in [1_000u64, 10_000] {
        for (name, posix) in [("posix", true), ("smb", false)] {
            let (m, _clock) = manual(Box::new(MemoryStore::new()), false);
            let f = FileId::new(1, 1);
            let mut opens = Vec::new();
            for i in 0..n {
                let owner = if posix {
                    LockOwner::Posix {
                        owner: owner(1),
                        lock_owner: i,
                    }
                } else {
                    let o = opened(&m, &OpenRequest::new(f, owner(1), Access::READ_WRITE));
                    opens.push(o.open);
                    LockOwner::Open(o.open)
                };
                let r = ByteRange::new(i * 10, 5).expect("range");
                let req = LockRequest {
                    file: f,
                    owner,
                    range: r,
                    kind: LockKind::Exclusive,
                    wait: false,
                };
                m.lock(&req).expect("lock");
            }
            let me = if posix {
                LockOwner::Posix {
                    owner: owner(2),
                    lock_owner: 0,
                }
            } else {
                LockOwner::Open(opened(&m, &OpenRequest::new(f, owner(2), Access::READ_WRITE)).open)
            };
            let r = ByteRange::new(n * 10 + 100, 5).expect("range");
            let req = LockRequest {
                file: f,
                owner: me,
                range: r,
                kind: LockKind::Exclusive,
                wait: false,
            };
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    m.lock(black_box(&req)).expect("lock");
                    m.unlock(f, me, r).expect("unlock");
                })
            });
            // A conflicting test against the same table (no change, no store write).
            let probe = LockRequest {
                range: ByteRange::new((n / 2) * 10, 1).expect("range"),
                ..req
            };
            g.bench_with_input(
                BenchmarkId::new(format!("{name}_test_conflict"), n),
                &n,
                |b, _| b.iter(|| black_box(m.test_lock(black_box(&probe)))),
            );
        }
    }
    // The same on the sled store (every change rewrites the file's lock list).
    let dir = tempfile::tempdir().expect("tempdir");
    let (m, _clock) = manual(Box::new(SledStore::open(dir.path()).expect("sled")), false);
    let f = FileId::new(1, 1);
    let n = 1_000u64;
    for i in 0..n {
        let req = LockRequest {
            file: f,
            owner: LockOwner::Posix {
                owner: owner(1),
                lock_owner: i,
            },
            range: ByteRange::new(i * 10, 5).expect("range"),
            kind: LockKind::Exclusive,
            wait: false,
        };
        m.lock(&req).expect("lock");
    }
    let me = LockOwner::Posix {
        owner: owner(2),
        lock_owner: 0,
    };
    let r = ByteRange::new(n * 10 + 100, 5).expect("range");
    let req = LockRequest {
        file: f,
        owner: me,
        range: r,
        kind: LockKind::Exclusive,
        wait: false,
    };
    g.sample_size(20);
    g.bench_with_input(BenchmarkId::new("posix_sled", n), &n, |b, _| {
        b.iter(|| {
            m.lock(black_box(&req)).expect("lock");
            m.unlock(f, me, r).expect("unlock");
        })
    });
    g.finish();
}

/// `held` leases on distinct files, one owner; returns the holders' opens.
fn many_leases(m: &LockManager, held: usize) -> Vec<OpenId> {
    m.register_sink(owner(1), Arc::new(NullSink));
    m.register_sink(owner(2), Arc::new(NullSink));
    (0..held as u64)
        .map(|i| opened(m, &leased(FileId::new(1, i), 1, i as u128, LeaseState::RWH)).open)
        .collect()
}

/// Starts a break (RWH -> RH, ack required) on the first `n` files; keeps the waits.
fn break_first(m: &LockManager, n: usize) -> Vec<BreakWait> {
    (0..n as u64)
        .map(
            |i| match m.open(&OpenRequest::new(FileId::new(1, i), owner(2), Access::READ)) {
                Ok(OpenOutcome::Wait(w)) => w,
                other => panic!("expected a wait: {other:?}"),
            },
        )
        .collect()
}

/// What an expire_due tick costs with `held` leases of which `breaking` are breaking:
/// when nothing is due, and when all `breaking` deadlines are due at once.
fn revocation_tick(c: &mut Criterion) {
    let held = env_usize("LEASEFS_BENCH_LEASES", 1_000_000);
    let breaking = env_usize("LEASEFS_BENCH_BREAKING", 10_000);
    let mut g = c.benchmark_group("revocation_tick");
    g.sample_size(10);
    let (m, clock) = manual(Box::new(MemoryStore::new()), false);
    let t0 = Instant::now();
    let mut holders = many_leases(&m, held);
    println!("setup: {held} leases granted in {:?}", t0.elapsed());
    let mut waits = break_first(&m, breaking);
    g.bench_function(
        BenchmarkId::new("nothing_due", format!("{held}_held_{breaking}_breaking")),
        |b| b.iter(|| black_box(m.expire_due())),
    );
    // Each iteration: re-grant and re-break `breaking` leases (untimed), then time the
    // one tick that revokes them all.
    g.bench_function(
        BenchmarkId::new("revoke_all_due", format!("{held}_held_{breaking}_breaking")),
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    clock.advance(DEFAULT_BREAK_TIMEOUT + Duration::from_secs(1));
                    let t = Instant::now();
                    let n = m.expire_due();
                    total += t.elapsed();
                    assert_eq!(n, breaking);
                    // Re-arm: the waiting opens gave up (they were never registered); the
                    // holders close and reopen with RWH; then break again.
                    waits.clear();
                    for (i, h) in holders.iter_mut().enumerate().take(breaking) {
                        m.close(*h);
                        let f = FileId::new(1, i as u64);
                        *h = opened(&m, &leased(f, 1, i as u128, LeaseState::RWH)).open;
                    }
                    waits = break_first(&m, breaking);
                }
                total
            })
        },
    );
    g.finish();
    drop(waits);
}

/// How late revocations land after their deadline with the deadline thread and the
/// system clock (not a criterion measurement: printed, for BENCHMARKS.md).
fn revocation_lateness(_c: &mut Criterion) {
    let held = env_usize("LEASEFS_BENCH_LEASES", 1_000_000);
    let breaking = env_usize("LEASEFS_BENCH_BREAKING", 10_000);
    for (held, timeout_ms) in [(breaking, 50u64), (held, 50), (held, 200)] {
        let cfg = ManagerConfig {
            break_timeout: Duration::from_millis(timeout_ms),
            ..Default::default()
        };
        let m = LockManager::with_store(cfg, Box::new(MemoryStore::new())).expect("memory");
        many_leases(&m, held);
        let t0 = Instant::now();
        let waits = break_first(&m, breaking);
        let dispatch = t0.elapsed();
        for w in &waits {
            assert!(
                w.wait_timeout(Duration::from_secs(60)).is_some(),
                "revoke never came"
            );
        }
        let s = m.stats();
        let n = Stats::get(&s.revokes);
        let mean = Stats::get(&s.revoke_late_ns_total) / n.max(1);
        let max = Stats::get(&s.revoke_late_ns_max);
        println!(
            "revocation_lateness: held {held}, breaking {breaking}, timeout {timeout_ms} ms: \
             {n} revokes, late mean {:.3} ms, max {:.3} ms (breaks dispatched over {:?})",
            mean as f64 / 1e6,
            max as f64 / 1e6,
            dispatch
        );
        assert_eq!(n as usize, breaking);
    }
}

criterion_group!(
    benches,
    grant_release,
    byte_range,
    revocation_tick,
    revocation_lateness
);
criterion_main!(benches);
