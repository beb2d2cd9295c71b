//! Which opens break which holders (MS-FSA 2.1.4.12 "stat opens"), how far an opener
//! waits, and a byte-range lock against the locker's own Level II oplock
//! (MS-FSA 2.1.5.7). Each row names the smbtorture test that checks Windows does it.

mod common;
use common::*;
use leasefs_leases::*;
use std::sync::Arc;

/// The second open, by another client, while client 1 holds a lease or an oplock.
#[derive(Clone, Copy, Debug)]
enum Second {
    /// FILE_READ_ATTRIBUTES / FILE_WRITE_ATTRIBUTES / SYNCHRONIZE only.
    Stat,
    /// READ_CONTROL (and stat bits): no data access, more than a stat open.
    Metadata,
    /// FILE_READ_EA, WRITE_DAC, ...: no data access, not a stat open of any kind.
    NoDataAccess,
    /// Attributes only, but FILE_OVERWRITE(_IF) / FILE_SUPERSEDE: it truncates, so the
    /// front end does not mark it as a stat open.
    StatOverwrite,
    ReadData,
}

fn second(f: FileId, kind: Second) -> OpenRequest {
    let base = OpenRequest::new(f, owner(2), Access::NONE);
    match kind {
        Second::Stat => OpenRequest {
            stat_only: true,
            metadata_only: true,
            ..base
        },
        Second::Metadata => OpenRequest {
            metadata_only: true,
            ..base
        },
        Second::NoDataAccess => base,
        Second::StatOverwrite => OpenRequest {
            overwrite: true,
            ..base
        },
        Second::ReadData => OpenRequest::new(f, owner(2), Access::READ),
    }
}

struct Row {
    oplock: bool,
    held: &'static str,
    second: Second,
    /// The break notice's target, or None when nothing is sent.
    break_to: Option<&'static str>,
    waits: bool,
}

#[rustfmt::skip]
fn table() -> Vec<Row> {
    use Second::*;
    let r = |oplock, held, second, break_to, waits| Row { oplock, held, second, break_to, waits };
    vec![
        // smb2.oplock.statopen1: only attribute/synchronize opens spare a batch oplock.
        r(true,  "RWH", Stat,          None,         false),
        r(true,  "RWH", Metadata,      Some("RH"),   true),
        r(true,  "RWH", NoDataAccess,  Some("RH"),   true),
        r(true,  "RWH", ReadData,      Some("RH"),   true),
        // smb2.lease.statopen4: a lease is spared by READ_CONTROL as well.
        r(false, "RWH", Stat,          None,         false),
        r(false, "RWH", Metadata,      None,         false),
        r(false, "RWH", NoDataAccess,  Some("RH"),   true),
        r(false, "RWH", ReadData,      Some("RH"),   true),
        // smb2.oplock.exclusive5, batch13/14/16: an attribute-only open that truncates
        // breaks to None and waits for the write caching to go.
        r(true,  "RWH", StatOverwrite, Some("none"), true),
        r(true,  "RW",  StatOverwrite, Some("none"), true),
        r(false, "RWH", StatOverwrite, Some("none"), true),
        // smb2.lease.breaking4: without W the overwrite does not wait for the ack.
        r(false, "RH",  StatOverwrite, Some("none"), false),
        r(true,  "R",   StatOverwrite, Some("none"), false),
    ]
}

#[test]
fn holder_x_second_open() {
    for row in table() {
        let (m, _c) = manual_mgr();
        let rec = Arc::new(Recorder::default());
        m.register_sink(owner(1), rec.clone());
        let f = file(1);
        let mut holder = leased_open(f, 1, 1, st(row.held), Access::READ_WRITE);
        holder.lease.as_mut().unwrap().oplock = row.oplock;
        let g = must_open(&m, &holder);
        assert_eq!(g.lease.unwrap().state, st(row.held));
        let what = format!(
            "{} {} x {:?}",
            if row.oplock { "oplock" } else { "lease" },
            row.held,
            row.second
        );
        let res = m.open(&second(f, row.second)).expect(&what);
        assert_eq!(
            matches!(res, OpenOutcome::Wait(_)),
            row.waits,
            "{what}: waits"
        );
        let n = rec.take();
        match row.break_to {
            None => assert!(n.is_empty(), "{what}: unexpected {n:?}"),
            Some(to) => {
                assert_eq!(n.len(), 1, "{what}: {n:?}");
                assert_eq!((n[0].from, n[0].to), (st(row.held), st(to)), "{what}");
            }
        }
    }
}

/// A stat open or a metadata open of another client does not keep a lease from being
/// granted W (smb2.lease.statopen2/3/4); a metadata open does keep an oplock from it.
#[test]
fn grants_beside_stat_and_metadata_opens() {
    for (kind, oplock, want) in [
        (Second::Stat, false, "RWH"),
        (Second::Stat, true, "RWH"),
        (Second::Metadata, false, "RWH"),
        (Second::Metadata, true, "RH"),
        (Second::NoDataAccess, false, "RH"),
    ] {
        let (m, _c) = manual_mgr();
        let f = file(1);
        must_open(&m, &second(f, kind));
        let mut req = leased_open(f, 1, 1, st("RWH"), Access::READ_WRITE);
        req.lease.as_mut().unwrap().oplock = oplock;
        let g = must_open(&m, &req);
        assert_eq!(
            g.lease.unwrap().state,
            st(want),
            "{kind:?} then {}",
            if oplock { "oplock" } else { "lease" }
        );
    }
}

/// MS-FSA 2.1.5.1.2: an open without data access takes no part in share modes, even
/// when it is not a stat open (it asks for extended attributes, say).
#[test]
fn no_data_access_ignores_share_modes() {
    let (m, _c) = manual_mgr();
    let f = file(1);
    must_open(
        &m,
        &OpenRequest {
            share: ShareAccess::NONE,
            ..OpenRequest::new(f, owner(1), Access::READ_WRITE)
        },
    );
    must_open(&m, &second(f, Second::NoDataAccess));
    must_open(
        &m,
        &OpenRequest {
            share: ShareAccess::NONE,
            ..second(f, Second::Metadata)
        },
    );
    assert_eq!(
        m.open(&second(f, Second::ReadData)).err(),
        Some(LockError::SharingViolation)
    );
}

/// MS-FSA 2.1.5.7 with 2.1.4.12: a byte-range lock breaks every Level II oplock, the
/// locker's own included (smb2.oplock.brl1, brl3), but never the locker's own lease
/// or its own exclusive/batch oplock.
#[test]
fn lock_breaks_own_level2_oplock_only() {
    for (oplock, held, broken) in [
        (true, "R", true),
        (true, "RW", false),
        (true, "RWH", false),
        (false, "R", false),
        (false, "RWH", false),
    ] {
        let (m, _c) = manual_mgr();
        let rec = Arc::new(Recorder::default());
        m.register_sink(owner(1), rec.clone());
        let f = file(1);
        let mut req = leased_open(f, 1, 1, st(held), Access::READ_WRITE);
        req.lease.as_mut().unwrap().oplock = oplock;
        let g = must_open(&m, &req);
        m.lock(&lock_req(
            f,
            LockOwner::Open(g.open),
            range(0, 4),
            LockKind::Exclusive,
            false,
        ))
        .expect("lock");
        let n = rec.take();
        let what = format!("{} {held}", if oplock { "oplock" } else { "lease" });
        if broken {
            assert_eq!(n.len(), 1, "{what}: {n:?}");
            assert_eq!((n[0].from, n[0].to), (st("R"), st("none")), "{what}");
            assert!(!n[0].ack_required, "{what}");
        } else {
            assert!(n.is_empty(), "{what}: {n:?}");
        }
    }
}
