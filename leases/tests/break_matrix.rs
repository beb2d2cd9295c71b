//! Break matrices: what an operation by someone else does to a held lease (break-to,
//! ACK_REQUIRED, whether the requester waits), and the break engine's rules (merged
//! targets, progressive breaks, one notification per key, epochs, ack validation,
//! deadlines, disconnects).

mod common;
use common::*;
use leasefs_leases::*;
use std::sync::Arc;
use std::time::Duration;

/// The operations another party performs while client 1 holds a lease on file 1.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// A plain open (read) by another client: MS-FSA 2.1.4.12, strip W.
    OpenRead,
    /// An open with write access whose writes the manager sees: strip W (R breaks at
    /// the first write, DESIGN.md "Local access" last paragraph).
    OpenWrite,
    /// FILE_OVERWRITE / FILE_SUPERSEDE / O_TRUNC: break to None.
    OpenOverwrite,
    /// A local read-only open through the passthrough path: strip W.
    LocalOpenRead,
    /// A local write open through the passthrough path: break to None.
    LocalOpenWrite,
    /// Attributes only: breaks nothing.
    StatOpen,
    /// A sharing violation (the holder shares read only): strip H, then fail.
    SharingViolation,
    /// A write through another open: break to None, the writer never waits.
    Write,
    /// truncate by path: break to None.
    Truncate,
    Unlink,
    Rename,
    /// A byte-range lock: break to None, never waits (MS-FSA 2.1.5.7).
    ByteRangeLock,
}

#[derive(Debug, PartialEq, Eq)]
enum Res {
    Proceeds,
    Waits,
    Fails,
}

fn run_op(m: &LockManager, op: Op) -> (Res, Option<BreakWait>) {
    let f = file(1);
    let other = |access| OpenRequest::new(f, owner(2), access);
    let open = |req: OpenRequest| match m.open(&req) {
        Ok(OpenOutcome::Opened(_)) => (Res::Proceeds, None),
        Ok(OpenOutcome::Wait(w)) => (Res::Waits, Some(w)),
        Err(LockError::SharingViolation) => (Res::Fails, None),
        Err(e) => panic!("{op:?}: {e}"),
    };
    let trig = |o: BreakOutcome| match o {
        BreakOutcome::Proceed => (Res::Proceeds, None),
        BreakOutcome::Wait(w) => (Res::Waits, Some(w)),
    };
    let by = Requester::owner(owner(2));
    match op {
        Op::OpenRead => open(other(Access::READ)),
        Op::OpenWrite => open(other(Access::READ_WRITE)),
        Op::OpenOverwrite => open(OpenRequest {
            overwrite: true,
            ..other(Access::WRITE)
        }),
        Op::LocalOpenRead => open(OpenRequest {
            writes_unseen: true,
            ..OpenRequest::new(f, local(9), Access::READ)
        }),
        Op::LocalOpenWrite => open(OpenRequest {
            writes_unseen: true,
            ..OpenRequest::new(f, local(9), Access::WRITE)
        }),
        Op::StatOpen => open(OpenRequest {
            stat_only: true,
            ..other(Access::NONE)
        }),
        Op::SharingViolation => open(other(Access::WRITE)),
        Op::Write => {
            // A stat-only open breaks nothing, so the write is the only trigger.
            let g = must_open(
                m,
                &OpenRequest {
                    stat_only: true,
                    ..other(Access::NONE)
                },
            );
            trig(m.before_write(g.open))
        }
        Op::Truncate => trig(m.before_truncate(f, &by)),
        Op::Unlink => trig(m.before_unlink(f, Some(file(100)), &by)),
        Op::Rename => trig(m.before_rename(f, Some(file(100)), Some(file(101)), &by)),
        Op::ByteRangeLock => {
            m.lock(&lock_req(
                f,
                posix(2, 1),
                range(0, 10),
                LockKind::Exclusive,
                false,
            ))
            .expect("lock");
            (Res::Proceeds, None)
        }
    }
}

struct Row {
    held: &'static str,
    op: Op,
    /// The break notice's target, or None when nothing is sent.
    break_to: Option<&'static str>,
    ack_required: bool,
    res: Res,
    /// Lease state right after the operation (before any ack).
    after: &'static str,
}

/// MS-FSA 2.1.4.12 (break on open/write/lock), MS-FSA 2.1.5.1.2 (sharing violation
/// breaks H), MS-SMB2 3.3.4.7 (ACK_REQUIRED when the state being broken holds W or H;
/// R-only breaks are applied at once and never delay the requester), DESIGN.md local
/// access table (writes_unseen opens).
#[rustfmt::skip]
fn table() -> Vec<Row> {
    use Op::*;
    use Res::*;
    let r = |held, op, break_to, ack_required, res, after| Row { held, op, break_to, ack_required, res, after };
    vec![
        r("RWH", OpenRead,        Some("RH"),   true,  Waits,    "RWH"),
        r("RW",  OpenRead,        Some("R"),    true,  Waits,    "RW"),
        r("RH",  OpenRead,        None,         false, Proceeds, "RH"),
        r("R",   OpenRead,        None,         false, Proceeds, "R"),
        r("RWH", OpenWrite,       Some("RH"),   true,  Waits,    "RWH"),
        r("RH",  OpenWrite,       None,         false, Proceeds, "RH"),
        r("R",   OpenWrite,       None,         false, Proceeds, "R"),
        r("RWH", OpenOverwrite,   Some("none"), true,  Waits,    "RWH"),
        r("RW",  OpenOverwrite,   Some("none"), true,  Waits,    "RW"),
        // An open waits for W only (smbtorture smb2.lease.breaking4: RH is broken to
        // None by an overwrite that does not wait for the ack).
        r("RH",  OpenOverwrite,   Some("none"), true,  Proceeds, "RH"),
        r("R",   OpenOverwrite,   Some("none"), false, Proceeds, "none"),
        r("RWH", LocalOpenRead,   Some("RH"),   true,  Waits,    "RWH"),
        r("RH",  LocalOpenRead,   None,         false, Proceeds, "RH"),
        r("RWH", LocalOpenWrite,  Some("none"), true,  Waits,    "RWH"),
        r("RH",  LocalOpenWrite,  Some("none"), true,  Waits,    "RH"),
        r("R",   LocalOpenWrite,  Some("none"), false, Proceeds, "none"),
        r("RWH", StatOpen,        None,         false, Proceeds, "RWH"),
        r("RW",  StatOpen,        None,         false, Proceeds, "RW"),
        r("RWH", SharingViolation, Some("RW"),  true,  Waits,    "RWH"),
        r("RH",  SharingViolation, Some("R"),   true,  Waits,    "RH"),
        r("RW",  SharingViolation, None,        false, Fails,    "RW"),
        r("R",   SharingViolation, None,        false, Fails,    "R"),
        r("RWH", Write,           Some("none"), true,  Proceeds, "RWH"),
        r("RH",  Write,           Some("none"), true,  Proceeds, "RH"),
        r("R",   Write,           Some("none"), false, Proceeds, "none"),
        r("RWH", Truncate,        Some("none"), true,  Waits,    "RWH"),
        r("RH",  Truncate,        Some("none"), true,  Waits,    "RH"),
        r("R",   Truncate,        Some("none"), false, Proceeds, "none"),
        r("RWH", Unlink,          Some("R"),    true,  Waits,    "RWH"),
        r("RH",  Unlink,          Some("R"),    true,  Waits,    "RH"),
        r("RW",  Unlink,          Some("R"),    true,  Waits,    "RW"),
        r("R",   Unlink,          None,         false, Proceeds, "R"),
        r("RWH", Rename,          Some("R"),    true,  Waits,    "RWH"),
        r("RH",  Rename,          Some("R"),    true,  Waits,    "RH"),
        r("R",   Rename,          None,         false, Proceeds, "R"),
        r("RWH", ByteRangeLock,   Some("none"), true,  Proceeds, "RWH"),
        r("R",   ByteRangeLock,   Some("none"), false, Proceeds, "none"),
    ]
}

#[test]
fn held_x_operation() {
    for row in table() {
        let (m, _c) = manual_mgr();
        let rec = Arc::new(Recorder::default());
        m.register_sink(owner(1), rec.clone());
        let mut holder = leased_open(file(1), 1, 1, st(row.held), Access::READ);
        // The holder shares read only, so a write open is a sharing violation.
        if matches!(row.op, Op::SharingViolation) {
            holder.share = ShareAccess::READ;
        }
        let g = must_open(&m, &holder);
        assert_eq!(g.lease.unwrap().state, st(row.held));
        let epoch0 = g.lease.unwrap().epoch;
        let what = format!("{} x {:?}", row.held, row.op);
        let (res, wait) = run_op(&m, row.op);
        assert_eq!(res, row.res, "{what}: requester");
        let notices = rec.take();
        match row.break_to {
            None => assert!(notices.is_empty(), "{what}: unexpected {notices:?}"),
            Some(to) => {
                assert_eq!(notices.len(), 1, "{what}: one notice per key");
                let n = &notices[0];
                assert_eq!((n.from, n.to), (st(row.held), st(to)), "{what}: break");
                assert_eq!(n.ack_required, row.ack_required, "{what}: ack required");
                assert_eq!(n.epoch, epoch0 + 1, "{what}: epoch bumps on dispatch");
                assert_eq!(n.key, key(1));
                assert_eq!(n.owner, owner(1));
            }
        }
        let v = lease_view(&m, 1, 1).expect("lease");
        assert_eq!(v.state, st(row.after), "{what}: state after");
        assert_eq!(v.breaking, row.ack_required, "{what}: breaking");
        // Acknowledging to the break-to state lets a waiting requester proceed.
        if let (Some(to), true) = (row.break_to, row.ack_required) {
            assert_eq!(
                m.ack_break(client(1), key(1), st(to)),
                Ok(st(to)),
                "{what}: ack"
            );
            if let Some(w) = &wait {
                assert_eq!(
                    w.try_result(),
                    Some(WakeReason::Acked),
                    "{what}: woken by ack"
                );
                assert_eq!(w.wake_attempts(), 1);
            }
        }
        if row.res == Res::Waits {
            assert!(wait.is_some());
        }
    }
}

/// MS-FSA 2.1.5.1.2 with MS-SMB2 3.3.5.9: a sharing violation first breaks the handle
/// caching of the conflicting lease; after the ack the open is retried and still fails,
/// but if the holder closes its cached handle instead the retry succeeds.
#[test]
fn sharing_violation_breaks_h_then_fails_or_succeeds_after_close() {
    for close_instead in [false, true] {
        let (m, _c) = manual_mgr();
        let rec = Arc::new(Recorder::default());
        m.register_sink(owner(1), rec.clone());
        let holder = OpenRequest {
            share: ShareAccess::READ,
            ..leased_open(file(1), 1, 1, st("RWH"), Access::READ)
        };
        let h = must_open(&m, &holder);
        let req = OpenRequest::new(file(1), owner(2), Access::WRITE);
        let w = must_wait(&m, &req);
        if close_instead {
            m.close(h.open);
            assert_eq!(w.try_result(), Some(WakeReason::Released));
            must_open(&m, &req);
        } else {
            m.ack_break(client(1), key(1), st("RW")).unwrap();
            assert_eq!(w.try_result(), Some(WakeReason::Acked));
            assert_eq!(m.open(&req).err(), Some(LockError::SharingViolation));
            assert_eq!(rec.len(), 1, "no second break: RW holds no H");
        }
    }
}

/// DESIGN.md "Break engine": several reasons merge (AND) into one pending target, one
/// notification per lease key at a time, and the break continues progressively after
/// an ack that still holds more than the merged target (MS-SMB2 3.3.5.22.2), in steps
/// (H and W before R) that keep the epoch of the first notification, while everyone
/// who had to wait waits for the last step (smbtorture smb2.lease.breaking3,
/// v2_breaking3 check Windows does all three).
#[test]
fn merged_targets_and_progressive_break() {
    let (m, _c) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    let f = file(1);
    must_open(&m, &leased_open(f, 1, 1, st("RWH"), Access::READ));
    let w_open = must_wait(&m, &OpenRequest::new(f, owner(2), Access::READ));
    let BreakOutcome::Wait(w_trunc) = m.before_truncate(f, &Requester::owner(owner(3))) else {
        panic!("truncate must wait for RWH");
    };
    let BreakOutcome::Wait(w_unlink) = m.before_unlink(f, None, &Requester::owner(owner(4))) else {
        panic!("unlink must wait");
    };
    let n = rec.take();
    assert_eq!(
        n.len(),
        1,
        "one notification while the first is in flight: {n:?}"
    );
    assert_eq!((n[0].from, n[0].to, n[0].epoch), (st("RWH"), st("RH"), 2));
    // The holder acks what it was asked. The open's need is met, but the break goes
    // on (to R first: H goes before R) and everyone who waited keeps waiting.
    assert_eq!(m.ack_break(client(1), key(1), st("RH")), Ok(st("RH")));
    assert!(!w_open.is_done() && !w_trunc.is_done() && !w_unlink.is_done());
    let n = rec.take();
    assert_eq!(n.len(), 1, "progressive break: {n:?}");
    assert_eq!((n[0].from, n[0].to, n[0].epoch), (st("RH"), st("R"), 2));
    assert!(n[0].ack_required);
    let v = lease_view(&m, 1, 1).unwrap();
    assert!(v.breaking);
    assert_eq!(v.break_to, Some(st("R")));
    // The last step (R to None) needs no ack: it is applied at once and everyone
    // proceeds.
    assert_eq!(m.ack_break(client(1), key(1), st("R")), Ok(st("none")));
    let n = rec.take();
    assert_eq!(n.len(), 1, "last step: {n:?}");
    assert_eq!((n[0].from, n[0].to, n[0].epoch), (st("R"), st("none"), 2));
    assert!(!n[0].ack_required);
    for w in [&w_open, &w_trunc, &w_unlink] {
        assert_eq!(w.try_result(), Some(WakeReason::Acked));
        assert_eq!(w.wake_attempts(), 1);
    }
    assert_eq!(rec.len(), 0);
    assert!(!lease_view(&m, 1, 1).unwrap().breaking);
    // The epoch moved once, on the first dispatch: not on acks, not on later steps.
    assert_eq!(lease_view(&m, 1, 1).unwrap().epoch, 2);
}

/// An ack that gives up more than asked is fine (any subset of break-to); the lease is
/// then not broken again.
#[test]
fn ack_below_target_ends_the_break() {
    let (m, _c) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    must_open(&m, &leased_open(file(1), 1, 1, st("RWH"), Access::READ));
    let w = must_wait(&m, &OpenRequest::new(file(1), owner(2), Access::READ));
    assert_eq!(m.ack_break(client(1), key(1), st("R")), Ok(st("R")));
    assert_eq!(w.try_result(), Some(WakeReason::Acked));
    assert!(!lease_view(&m, 1, 1).unwrap().breaking);
}

/// Two opens of one lease key: one notification for the key, not one per open.
#[test]
fn one_notification_per_key() {
    let (m, _c) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    let f = file(1);
    must_open(&m, &leased_open(f, 1, 1, st("RWH"), Access::READ));
    must_open(&m, &leased_open(f, 1, 1, st("RWH"), Access::READ));
    let _w = must_wait(&m, &OpenRequest::new(f, owner(2), Access::READ));
    let _w2 = must_wait(&m, &OpenRequest::new(f, owner(3), Access::READ));
    assert_eq!(rec.len(), 1);
}

/// MS-SMB2 3.3.5.22.2 acknowledgment validation.
#[test]
fn ack_validation() {
    let (m, _c) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    let f = file(1);
    must_open(&m, &leased_open(f, 1, 1, st("RWH"), Access::READ));
    // Unknown key: STATUS_OBJECT_NAME_NOT_FOUND.
    assert_eq!(
        m.ack_break(client(1), key(99), st("R")),
        Err(AckError::NotFound)
    );
    assert_eq!(
        m.ack_break(client(2), key(1), st("R")),
        Err(AckError::NotFound)
    );
    // Not breaking: STATUS_UNSUCCESSFUL.
    assert_eq!(
        m.ack_break(client(1), key(1), st("RH")),
        Err(AckError::NotBreaking)
    );
    let w = must_wait(&m, &OpenRequest::new(f, owner(2), Access::READ));
    // More than break-to (RH): STATUS_REQUEST_NOT_ACCEPTED; the break stays in flight.
    assert_eq!(
        m.ack_break(client(1), key(1), st("RWH")),
        Err(AckError::NotSubset)
    );
    assert_eq!(
        m.ack_break(client(1), key(1), st("RW")),
        Err(AckError::NotSubset)
    );
    assert!(!w.is_done());
    assert!(lease_view(&m, 1, 1).unwrap().breaking);
    assert_eq!(m.ack_break(client(1), key(1), st("RH")), Ok(st("RH")));
    // A second ack for the same break: not breaking any more.
    assert_eq!(
        m.ack_break(client(1), key(1), st("RH")),
        Err(AckError::NotBreaking)
    );
    // Oplock acks are routed by open.
    assert_eq!(
        m.ack_oplock(OpenId(12345), st("R")),
        Err(AckError::NotFound)
    );
}

/// MS-SMB2 3.3.6.5: at the deadline the lease goes to None (not to break-to), breaking
/// clears, waiters proceed, the handle stays open, and a late ack is STATUS_UNSUCCESSFUL.
#[test]
fn deadline_revokes_to_none_and_late_ack_is_refused() {
    let (m, clock) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    let f = file(1);
    let h = must_open(&m, &leased_open(f, 1, 1, st("RWH"), Access::READ));
    let w = must_wait(&m, &OpenRequest::new(f, owner(2), Access::READ));
    let deadline = m.next_deadline().expect("a deadline");
    assert_eq!(lease_view(&m, 1, 1).unwrap().deadline_in, Some(TIMEOUT));
    clock.advance(TIMEOUT - Duration::from_millis(1));
    assert_eq!(m.expire_due(), 0, "not yet");
    assert!(!w.is_done());
    clock.advance(Duration::from_millis(1));
    assert_eq!(m.expire_due(), 1);
    assert_eq!(w.try_result(), Some(WakeReason::Revoked));
    assert_eq!(w.wake_attempts(), 1);
    let v = lease_view(&m, 1, 1).unwrap();
    assert_eq!(v.state, st("none"), "revoked to None, not to RH");
    assert!(!v.breaking);
    assert!(
        m.view().opens.iter().any(|o| o.id == h.open),
        "the handle stays open"
    );
    assert_eq!(
        m.ack_break(client(1), key(1), st("RH")),
        Err(AckError::NotBreaking)
    );
    assert_eq!(Stats::get(&m.stats().revokes), 1);
    assert_eq!(m.next_deadline().filter(|d| *d <= deadline), None);
    // The retried open now succeeds without another break.
    must_open(&m, &OpenRequest::new(f, owner(2), Access::READ));
    assert_eq!(rec.take().len(), 1);
}

/// An ack that arrives in time cancels the deadline: a later expire tick revokes nothing.
#[test]
fn ack_cancels_the_deadline() {
    let (m, clock) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    must_open(&m, &leased_open(file(1), 1, 1, st("RWH"), Access::READ));
    let _w = must_wait(&m, &OpenRequest::new(file(1), owner(2), Access::READ));
    m.ack_break(client(1), key(1), st("RH")).unwrap();
    clock.advance(TIMEOUT * 2);
    assert_eq!(m.expire_due(), 0);
    assert_eq!(lease_state(&m, 1, 1), Some(st("RH")));
}

/// DESIGN.md: if the owner is gone its leases are released and waiters proceed.
#[test]
fn disconnect_releases_and_wakes_waiters() {
    let (m, _c) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    let f = file(1);
    must_open(&m, &leased_open(f, 1, 1, st("RWH"), Access::READ));
    m.lock(&lock_req(
        f,
        posix(1, 5),
        range(0, 10),
        LockKind::Exclusive,
        false,
    ))
    .unwrap();
    let w = must_wait(&m, &OpenRequest::new(f, owner(2), Access::READ));
    m.owner_gone(owner(1));
    assert_eq!(w.try_result(), Some(WakeReason::Disconnected));
    assert_eq!(w.wake_attempts(), 1);
    assert_eq!(lease_state(&m, 1, 1), None);
    assert!(m.view().opens.is_empty());
    // The POSIX lock of the local owner with the same client number is not the SMB
    // owner's: it stays.
    assert_eq!(m.view().locks.len(), 1);
    m.owner_gone(local(1));
    assert!(m.view().locks.is_empty());
    must_open(&m, &OpenRequest::new(f, owner(2), Access::READ));
}

/// DESIGN.md "Break engine rules": an owner without a registered sink cannot be told,
/// so its caching is released at once instead of waiting for the deadline.
#[test]
fn owner_without_sink_is_released_at_once() {
    let (m, _c) = manual_mgr();
    let f = file(1);
    must_open(&m, &leased_open(f, 1, 1, st("RWH"), Access::READ));
    must_open(&m, &OpenRequest::new(f, owner(2), Access::READ));
    assert_eq!(lease_state(&m, 1, 1), Some(st("none")));
    assert!(m.next_deadline().is_none());
}

/// Closing the last open of a breaking lease wakes its waiters with Released.
#[test]
fn close_wakes_waiters() {
    let (m, _c) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    let h = must_open(&m, &leased_open(file(1), 1, 1, st("RWH"), Access::READ));
    let w = must_wait(&m, &OpenRequest::new(file(1), owner(2), Access::READ));
    m.close(h.open);
    assert_eq!(w.try_result(), Some(WakeReason::Released));
    assert_eq!(
        m.ack_break(client(1), key(1), st("RH")),
        Err(AckError::NotFound)
    );
}

/// A waiter that needs two leases down completes once, after the second.
#[test]
fn waiter_on_two_leases_completes_once() {
    let (m, clock) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    m.register_sink(owner(2), rec.clone());
    let f = file(1);
    must_open(&m, &leased_open(f, 1, 1, st("RH"), Access::READ));
    must_open(&m, &leased_open(f, 2, 2, st("RH"), Access::READ));
    let BreakOutcome::Wait(w) = m.before_truncate(f, &Requester::owner(owner(3))) else {
        panic!("must wait");
    };
    assert_eq!(rec.take().len(), 2);
    m.ack_break(client(1), key(1), st("none")).unwrap();
    assert!(!w.is_done());
    clock.advance(TIMEOUT);
    assert_eq!(m.expire_due(), 1);
    assert_eq!(w.try_result(), Some(WakeReason::Revoked));
    assert_eq!(w.wake_attempts(), 1);
}

/// Dropping an unfinished wait withdraws it; the break itself goes on.
#[test]
fn dropped_wait_is_withdrawn() {
    let (m, _c) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    must_open(&m, &leased_open(file(1), 1, 1, st("RWH"), Access::READ));
    let w = must_wait(&m, &OpenRequest::new(file(1), owner(2), Access::READ));
    drop(w);
    assert!(lease_view(&m, 1, 1).unwrap().breaking);
    assert_eq!(m.ack_break(client(1), key(1), st("RH")), Ok(st("RH")));
}

/// The requester's own lease key is never broken by its own operations.
#[test]
fn own_key_is_not_broken() {
    let (m, _c) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    let f = file(1);
    let g = must_open(&m, &leased_open(f, 1, 1, st("RWH"), Access::READ_WRITE));
    assert!(matches!(m.before_write(g.open), BreakOutcome::Proceed));
    let by = Requester {
        owner: owner(1),
        lease: Some((client(1), key(1))),
    };
    assert!(matches!(m.before_truncate(f, &by), BreakOutcome::Proceed));
    assert!(matches!(
        m.before_unlink(f, None, &by),
        BreakOutcome::Proceed
    ));
    m.lock(&lock_req(
        f,
        LockOwner::Open(g.open),
        range(0, 1),
        LockKind::Exclusive,
        false,
    ))
    .unwrap();
    assert_eq!(rec.len(), 0);
    assert_eq!(lease_state(&m, 1, 1), Some(st("RWH")));
}

/// DESIGN.md: directory leases break on create/delete/rename of a child; the creator
/// does not wait.
#[test]
fn directory_lease_breaks_on_child_changes() {
    type DirOp = fn(&LockManager, FileId) -> BreakOutcome;
    let ops: [(&str, DirOp); 3] = [
        ("create", |m, d| {
            m.before_create_child(d, &Requester::owner(owner(2)))
        }),
        ("unlink", |m, d| {
            m.before_unlink(file(50), Some(d), &Requester::owner(owner(2)))
        }),
        ("rename", |m, d| {
            m.before_rename(
                file(50),
                Some(file(77)),
                Some(d),
                &Requester::owner(owner(2)),
            )
        }),
    ];
    for (what, op) in ops {
        let (m, _c) = manual_mgr();
        let rec = Arc::new(Recorder::default());
        m.register_sink(owner(1), rec.clone());
        let d = file(10);
        let mut o = leased_open(d, 1, 1, st("RH"), Access::READ);
        o.is_dir = true;
        must_open(&m, &o);
        assert!(matches!(op(&m, d), BreakOutcome::Proceed), "{what}");
        let n = rec.take();
        assert_eq!(n.len(), 1, "{what}");
        assert_eq!((n[0].from, n[0].to), (st("RH"), st("none")), "{what}");
    }
}

/// Operator breaks go through the same ack and deadline rules.
#[test]
fn operator_break() {
    let (m, _c) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    must_open(&m, &leased_open(file(1), 1, 1, st("RWH"), Access::READ));
    let BreakOutcome::Wait(w) = m.break_file(file(1), st("R")) else {
        panic!("must wait");
    };
    assert_eq!(rec.take()[0].to, st("R"));
    m.ack_break(client(1), key(1), st("R")).unwrap();
    assert_eq!(w.try_result(), Some(WakeReason::Acked));
}

/// Oplocks: a Batch oplock broken by a conflicting open; Level II breaks need no ack.
#[test]
fn oplock_breaks() {
    let (m, _c) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    let f = file(1);
    let mut o = leased_open(f, 1, 1, OplockLevel::Batch.as_lease_state(), Access::READ);
    o.lease.as_mut().unwrap().oplock = true;
    let g = must_open(&m, &o);
    let w = must_wait(&m, &OpenRequest::new(f, owner(2), Access::READ));
    let n = rec.take();
    assert!(n[0].oplock && n[0].ack_required);
    assert_eq!(
        m.ack_oplock(g.open, OplockLevel::LevelII.as_lease_state()),
        Ok(st("R"))
    );
    assert_eq!(w.try_result(), Some(WakeReason::Acked));
    // Level II goes to none on a write and needs no ack.
    let o2 = must_open(&m, &OpenRequest::new(f, owner(2), Access::READ_WRITE));
    assert!(matches!(m.before_write(o2.open), BreakOutcome::Proceed));
    let n = rec.take();
    assert_eq!(
        (n[0].from, n[0].to, n[0].ack_required),
        (st("R"), st("none"), false)
    );
}

/// MS-SMB2 3.3.4.7: a break goes to a connection of any open of the lease. When the
/// session that opened last disconnects but another session of the client still has an
/// open with the key, the break must reach that session, not be dropped as ownerless.
#[test]
fn breaks_follow_the_remaining_session_of_a_lease() {
    let (m, _c) = manual_mgr();
    let s1 = OwnerId::new(Protocol::Smb, client(1), 1);
    let s2 = OwnerId::new(Protocol::Smb, client(1), 2);
    let r1 = Arc::new(Recorder::default());
    let r2 = Arc::new(Recorder::default());
    m.register_sink(s1, r1.clone());
    m.register_sink(s2, r2.clone());
    let f = file(1);
    must_open(&m, &leased_open(f, 1, 1, st("RWH"), Access::READ));
    must_open(
        &m,
        &OpenRequest {
            owner: s2,
            ..leased_open(f, 1, 1, st("RWH"), Access::READ)
        },
    );
    m.owner_gone(s2);
    assert_eq!(lease_state(&m, 1, 1), Some(st("RWH")));
    let w = must_wait(&m, &OpenRequest::new(f, owner(2), Access::READ));
    let n = r1.take();
    assert_eq!(n.len(), 1, "the break reaches session 1");
    assert_eq!((n[0].owner, n[0].to), (s1, st("RH")));
    assert_eq!(r2.len(), 0);
    m.ack_break(client(1), key(1), st("RH")).unwrap();
    assert_eq!(w.try_result(), Some(WakeReason::Acked));
}
