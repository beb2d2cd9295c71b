//! Grant matrices: what a lease request is granted, given what the lease already holds,
//! what other opens of the file allow, and the file type.

mod common;
use common::*;
use leasefs_leases::*;

const ALL_REQUESTS: [&str; 8] = ["none", "R", "H", "RH", "W", "RW", "WH", "RWH"];

/// MS-SMB2 3.3.5.9.8 (lease request handling) with DESIGN.md "Lease semantics":
/// - valid file states are None, R, RH, RW, RWH; H or W without R is granted None;
/// - a request that is not a superset of the held state leaves the lease unchanged, so
///   an open never downgrades a lease (MS-SMB2 3.3.5.9.8, Windows as smbtorture's
///   smb2.lease.upgrade2 checks): RH + RW stays RH and RW + RH stays RW. DESIGN.md's
///   union rule (which gave RWH in the two cells marked `*`) was changed to this.
///
/// Rows: held state (granted to a first open of the key) x requested state (second open
/// of the same key) -> the lease state after the second open.
#[rustfmt::skip]
const HELD_X_REQUESTED: &[(&str, [&str; 8])] = &[
    //            none   R      H      RH     W      RW     WH     RWH
    ("none", ["none", "R",   "none", "RH",  "none", "RW",  "none", "RWH"]),
    ("R",    ["R",    "R",   "R",    "RH",  "R",    "RW",  "R",    "RWH"]),
    ("RH",   ["RH",   "RH",  "RH",   "RH",  "RH",   "RH",  "RH",   "RWH"]), // * RW
    ("RW",   ["RW",   "RW",  "RW",   "RW",  "RW",   "RW",  "RW",   "RWH"]), // * RH
    ("RWH",  ["RWH",  "RWH", "RWH",  "RWH", "RWH",  "RWH", "RWH",  "RWH"]),
];

#[test]
fn held_x_requested_on_a_file() {
    for (held, row) in HELD_X_REQUESTED {
        for (req, want) in ALL_REQUESTS.iter().zip(row.iter()) {
            let (m, _c) = manual_mgr();
            let f = file(1);
            let g1 = must_open(&m, &leased_open(f, 1, 1, st(held), Access::READ));
            assert_eq!(
                g1.lease.map(|l| l.state),
                Some(st(held)),
                "first grant of {held}"
            );
            let g2 = must_open(&m, &leased_open(f, 1, 1, st(req), Access::READ));
            let got = g2.lease.expect("lease grant").state;
            assert_eq!(got, st(want), "held {held}, requested {req}");
            assert_eq!(lease_state(&m, 1, 1), Some(st(want)));
            // The pure rule agrees with the manager.
            assert_eq!(
                lease::grant_state(st(req), st(held), LeaseState::RWH, false),
                st(want),
                "grant_state({req}, held {held})"
            );
        }
    }
}

/// DESIGN.md "Lease semantics": directories hold None, R or RH; W is stripped as
/// Windows Server 2022 does; invalid combinations are granted None.
#[test]
fn directory_leases_strip_w() {
    #[rustfmt::skip]
    let table: [(&str, &str); 8] = [
        ("none", "none"), ("R", "R"), ("H", "none"), ("RH", "RH"),
        ("W", "none"), ("RW", "R"), ("WH", "none"), ("RWH", "RH"),
    ];
    for (req, want) in table {
        let (m, _c) = manual_mgr();
        let mut o = leased_open(file(1), 1, 1, st(req), Access::READ);
        o.is_dir = true;
        let g = must_open(&m, &o);
        assert_eq!(g.lease.expect("grant").state, st(want), "dir request {req}");
        assert!(LeaseState::parse(want).unwrap().is_valid(true));
    }
}

/// Validity of states (MS-SMB2 2.2.13.2.8 / 3.3.5.9.8) and normalization after bits are
/// stripped by a break.
#[test]
fn state_validity_and_normalization() {
    #[rustfmt::skip]
    let table: [(&str, bool, bool, &str, &str); 8] = [
        // state  valid-file valid-dir normalize(file) normalize(dir)
        ("none", true,  true,  "none", "none"),
        ("R",    true,  true,  "R",    "R"),
        ("H",    false, false, "none", "none"),
        ("RH",   true,  true,  "RH",   "RH"),
        ("W",    false, false, "none", "none"),
        ("RW",   true,  false, "RW",   "R"),
        ("WH",   false, false, "none", "none"),
        ("RWH",  true,  false, "RWH",  "RH"),
    ];
    for (s, vf, vd, nf, nd) in table {
        assert_eq!(st(s).is_valid(false), vf, "{s} valid on a file");
        assert_eq!(st(s).is_valid(true), vd, "{s} valid on a directory");
        assert_eq!(st(s).normalize(false), st(nf), "{s} normalized on a file");
        assert_eq!(
            st(s).normalize(true),
            st(nd),
            "{s} normalized on a directory"
        );
    }
}

/// DESIGN.md "Local access through the FUSE mount" and MS-FSA 2.1.5.17 (W only for the
/// sole opener key): what a new lease may hold beside another open of the file.
/// Rows: the other open -> granted state for requests RWH, RW, RH, R.
#[test]
fn grants_beside_other_opens() {
    struct Other {
        what: &'static str,
        req: fn(FileId) -> OpenRequest,
        want: [&'static str; 4],
    }
    #[rustfmt::skip]
    let table = [
        Other { what: "another client's plain read open",
            req: |f| OpenRequest::new(f, owner(2), Access::READ),
            want: ["RH", "R", "RH", "R"] },
        Other { what: "another client's plain write open (writes seen)",
            req: |f| OpenRequest::new(f, owner(2), Access::READ_WRITE),
            want: ["RH", "R", "RH", "R"] },
        Other { what: "a local read-only open (writes unseen)",
            req: |f| OpenRequest { writes_unseen: true, ..OpenRequest::new(f, local(9), Access::READ) },
            want: ["RH", "R", "RH", "R"] },
        Other { what: "a local write open (writes unseen)",
            req: |f| OpenRequest { writes_unseen: true, ..OpenRequest::new(f, local(9), Access::READ_WRITE) },
            want: ["none", "none", "none", "none"] },
        Other { what: "a stat-only open",
            req: |f| OpenRequest { stat_only: true, ..OpenRequest::new(f, owner(2), Access::NONE) },
            want: ["RWH", "RW", "RH", "R"] },
        Other { what: "another key's R lease",
            req: |f| leased_open(f, 2, 7, st("R"), Access::READ),
            want: ["RH", "R", "RH", "R"] },
        Other { what: "the same client's open with another key",
            req: |f| leased_open(f, 1, 7, st("RH"), Access::READ),
            want: ["RH", "R", "RH", "R"] },
    ];
    for row in table {
        for (req, want) in ["RWH", "RW", "RH", "R"].iter().zip(row.want) {
            let (m, _c) = manual_mgr();
            let f = file(1);
            must_open(&m, &(row.req)(f));
            let g = must_open(&m, &leased_open(f, 1, 1, st(req), Access::READ));
            assert_eq!(
                g.lease.expect("grant").state,
                st(want),
                "beside {}, request {req}",
                row.what
            );
        }
    }
}

/// Opens sharing the key share the lease: a second open of the same key neither breaks
/// the lease nor loses W (DESIGN.md: opens with the same key never break each other).
#[test]
fn same_key_opens_share_the_lease() {
    let (m, _c) = manual_mgr();
    let rec = std::sync::Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    let f = file(1);
    let a = must_open(&m, &leased_open(f, 1, 1, st("RWH"), Access::READ_WRITE));
    let b = must_open(&m, &leased_open(f, 1, 1, st("RWH"), Access::READ_WRITE));
    assert_ne!(a.open, b.open);
    assert_eq!(b.lease.unwrap().state, st("RWH"));
    assert_eq!(rec.len(), 0);
    assert_eq!(m.view().leases.len(), 1);
    assert_eq!(m.view().leases[0].opens, 2);
    m.close(a.open);
    assert_eq!(
        lease_state(&m, 1, 1),
        Some(st("RWH")),
        "lease lives while an open remains"
    );
    m.close(b.open);
    assert_eq!(lease_state(&m, 1, 1), None, "lease goes with its last open");
}

/// MS-SMB2 3.3.5.9.8: a lease key already used on another file gives
/// STATUS_INVALID_PARAMETER; once that lease is gone the key is free again.
#[test]
fn same_key_on_another_file_is_refused() {
    let (m, _c) = manual_mgr();
    let a = must_open(&m, &leased_open(file(1), 1, 1, st("RH"), Access::READ));
    assert_eq!(
        m.open(&leased_open(file(2), 1, 1, st("RH"), Access::READ))
            .err(),
        Some(LockError::LeaseKeyOnOtherFile)
    );
    // The same key from another client is another lease.
    must_open(&m, &leased_open(file(2), 2, 1, st("RH"), Access::READ));
    m.close(a.open);
    must_open(&m, &leased_open(file(2), 1, 1, st("RH"), Access::READ));
}

/// MS-SMB2 3.3.5.9 (oplocks) with DESIGN.md: Level II = R, Exclusive = RW, Batch = RWH;
/// each oplock gets a private key per open.
#[test]
fn oplock_levels_map_to_lease_states() {
    let table = [
        (OplockLevel::None, "none"),
        (OplockLevel::LevelII, "R"),
        (OplockLevel::Exclusive, "RW"),
        (OplockLevel::Batch, "RWH"),
    ];
    for (level, want) in table {
        assert_eq!(level.as_lease_state(), st(want));
        assert_eq!(OplockLevel::from_lease_state(st(want)), level);
        let (m, _c) = manual_mgr();
        let mut o = leased_open(file(1), 1, 1, level.as_lease_state(), Access::READ);
        o.lease.as_mut().unwrap().oplock = true;
        o.lease.as_mut().unwrap().version = LeaseVersion::V1;
        let g = must_open(&m, &o);
        assert_eq!(g.lease.unwrap().state, st(want), "{level:?}");
    }
    // RH has no oplock level of its own: it rounds down to Level II.
    assert_eq!(
        OplockLevel::from_lease_state(st("RH")),
        OplockLevel::LevelII
    );

    // Two oplock opens by one client with the same (ignored) key are separate leases.
    let (m, _c) = manual_mgr();
    let mut o = leased_open(file(1), 1, 1, st("R"), Access::READ);
    o.lease.as_mut().unwrap().oplock = true;
    must_open(&m, &o);
    must_open(&m, &o);
    assert_eq!(m.view().leases.len(), 2);
    assert!(m.view().leases.iter().all(|l| l.oplock));
}

/// MS-SMB2 3.3.5.9.8 / 3.3.5.9.11: a new V2 lease starts at epoch 1, an upgrade bumps it,
/// a request that changes nothing does not. V1 leases carry no epoch.
#[test]
fn v2_epoch_on_grant_and_upgrade() {
    let (m, _c) = manual_mgr();
    let f = file(1);
    let g = must_open(&m, &leased_open(f, 1, 1, st("R"), Access::READ));
    assert_eq!(g.lease.unwrap().epoch, 1);
    let g = must_open(&m, &leased_open(f, 1, 1, st("R"), Access::READ));
    assert_eq!(g.lease.unwrap().epoch, 1, "no change, no bump");
    let g = must_open(&m, &leased_open(f, 1, 1, st("RH"), Access::READ));
    assert_eq!(
        (g.lease.unwrap().state, g.lease.unwrap().epoch),
        (st("RH"), 2)
    );
    let mut v1 = leased_open(f, 3, 3, st("RH"), Access::READ);
    v1.lease.as_mut().unwrap().version = LeaseVersion::V1;
    assert_eq!(must_open(&m, &v1).lease.unwrap().epoch, 0);
}

/// MS-FSA 2.1.5.1.2 share access: an open conflicts with an existing one when either
/// wants an access the other does not share. Stat opens (attributes only) take part in
/// neither side.
#[test]
fn share_access_matrix() {
    use ShareAccess as S;
    type Row = (
        &'static str,
        Access,
        ShareAccess,
        bool,
        Access,
        ShareAccess,
        bool,
        bool,
    );
    #[rustfmt::skip]
    let table: [Row; 14] = [
        // what, existing access, existing share, existing stat, new access, new share, new stat, conflict
        ("read/read sharing read",        Access::READ, S::READ, false, Access::READ, S::READ, false, false),
        ("write beside share-read",       Access::READ, S::READ, false, Access::WRITE, S::ALL, false, true),
        ("read not sharing existing write", Access::WRITE, S::ALL, false, Access::READ, S::READ, false, true),
        ("read sharing read|write",       Access::WRITE, S::ALL, false, Access::READ, S(S::READ.0 | S::WRITE.0), false, false),
        ("delete not shared",             Access::DELETE, S::ALL, false, Access::READ, S(S::READ.0 | S::WRITE.0), false, true),
        ("delete beside share-rw",        Access::READ, S(S::READ.0 | S::WRITE.0), false, Access::DELETE, S::ALL, false, true),
        ("delete beside share-all",       Access::READ, S::ALL, false, Access::DELETE, S::ALL, false, false),
        ("share none vs read",            Access::READ, S::NONE, false, Access::READ, S::ALL, false, true),
        ("share none vs stat open",       Access::READ, S::NONE, false, Access::NONE, S::NONE, true, false),
        ("stat open deny-all vs read",    Access::NONE, S::NONE, true, Access::READ, S::NONE, false, false),
        ("no access, share none",         Access::NONE, S::NONE, false, Access::NONE, S::NONE, false, false),
        ("rw vs rw share all",            Access::READ_WRITE, S::ALL, false, Access::READ_WRITE, S::ALL, false, false),
        ("rw vs rw share read",           Access::READ_WRITE, S::ALL, false, Access::READ_WRITE, S::READ, false, true),
        ("write vs write share write",    Access::WRITE, S::WRITE, false, Access::WRITE, S::WRITE, false, false),
    ];
    for (what, ea, es, estat, na, ns, nstat, conflict) in table {
        let (m, _c) = manual_mgr();
        let f = file(1);
        must_open(
            &m,
            &OpenRequest {
                share: es,
                stat_only: estat,
                ..OpenRequest::new(f, owner(1), ea)
            },
        );
        let res = m.open(&OpenRequest {
            share: ns,
            stat_only: nstat,
            ..OpenRequest::new(f, owner(2), na)
        });
        match (conflict, res) {
            (true, Err(LockError::SharingViolation)) => {}
            (false, Ok(OpenOutcome::Opened(_))) => {}
            (_, other) => panic!("{what}: expected conflict={conflict}, got {other:?}"),
        }
    }
}

/// MS-FSA 2.1.5.17.2: read caching is not granted beside another key's write caching,
/// and write caching only when no other key caches anything, even when the other
/// key's lease rides on a stat open (stat opens break nothing, but may hold a lease).
/// Rows: the other key's lease (and whether its open is a stat open), whether the new
/// open is a stat open, requested -> granted.
#[test]
fn grants_beside_leases_on_stat_opens() {
    #[rustfmt::skip]
    let table = [
        // other's state, other stat-only, new stat-only, requested, granted
        ("RW",  false, true,  "R",   "none"),
        ("RW",  false, true,  "RWH", "none"),
        ("RWH", false, true,  "RH",  "none"),
        ("R",   true,  false, "RWH", "RH"),
        ("RH",  true,  false, "RW",  "R"),
        ("R",   true,  true,  "RWH", "RH"),
        ("none", true, false, "RWH", "RWH"),
    ];
    for (other, other_stat, new_stat, req, want) in table {
        let (m, _c) = manual_mgr();
        m.register_sink(owner(2), std::sync::Arc::new(Recorder::default()));
        let f = file(1);
        let mut o = leased_open(f, 2, 2, st(other), Access::READ);
        o.stat_only = other_stat;
        must_open(&m, &o);
        let mut n = leased_open(f, 1, 1, st(req), Access::READ);
        n.stat_only = new_stat;
        let g = must_open(&m, &n);
        let what = format!("other {other} (stat {other_stat}), new stat {new_stat}, request {req}");
        assert_eq!(g.lease.unwrap().state, st(want), "{what}");
        assert_eq!(
            lease_state(&m, 2, 2),
            Some(st(other)),
            "{what}: other untouched"
        );
    }
}
