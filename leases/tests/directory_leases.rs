//! Directory leases in the lock manager: grants (R or RH, never W) and the breaks of a
//! parent's leases when its namespace changes (leases/src/manager/directory.rs),
//! including the exemption of the requester's own ParentLeaseKey.

mod common;
use common::*;
use leasefs_leases::*;
use std::sync::Arc;

const DIR: u64 = 100;
const DIR2: u64 = 101;
const DIR_KEY: u128 = 50;

/// Client `c` opens directory `d` with a V2 lease `k` asking for `state`.
fn dir_open(d: u64, c: u128, k: u128, state: LeaseState) -> OpenRequest {
    OpenRequest {
        is_dir: true,
        ..leased_open(file(d), c, k, state, Access::READ)
    }
}

/// Client `c` opens child `f` with lease `k` naming `parent` as its ParentLeaseKey.
fn child_open(f: u64, c: u128, k: u128, parent: Option<u128>) -> OpenRequest {
    let mut req = leased_open(file(f), c, k, st("RWH"), Access::READ_WRITE);
    if let Some(l) = req.lease.as_mut() {
        l.version = LeaseVersion::V2 {
            parent: parent.map(key),
        };
    }
    req
}

/// A manager where client 1 holds RH on DIR with DIR_KEY; returns its notices.
fn with_dir_lease() -> (Arc<LockManager>, Arc<Recorder>) {
    let (m, _clock) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    m.register_sink(owner(2), Arc::new(Recorder::default()));
    let g = must_open(&m, &dir_open(DIR, 1, DIR_KEY, st("RWH")));
    assert_eq!(g.lease.map(|l| l.state), Some(st("RH")));
    (m, rec)
}

fn assert_broken_to_none(rec: &Recorder) {
    let n = rec.take();
    assert_eq!(n.len(), 1, "one break notice expected: {n:?}");
    assert_eq!((n[0].from, n[0].to), (st("RH"), st("none")));
    assert_eq!(n[0].key, key(DIR_KEY));
    assert_eq!(n[0].reason, BreakReason::DirectoryChange);
    // MS-SMB2 3.3.4.7: breaking H requires an acknowledgment.
    assert!(n[0].ack_required);
}

#[test]
fn directory_lease_is_r_or_rh_never_w() {
    let (m, _clock) = manual_mgr();
    for (ask, want) in [("RWH", "RH"), ("RW", "R"), ("RH", "RH"), ("R", "R")] {
        let g = must_open(&m, &dir_open(DIR, 1, 7, st(ask)));
        assert_eq!(g.lease.map(|l| l.state), Some(st(want)), "asked {ask}");
        m.close(g.open);
    }
}

#[test]
fn child_created_by_another_client_breaks_rh_to_none_without_waiting() {
    let (m, rec) = with_dir_lease();
    let by = Requester::owner(owner(2));
    assert!(matches!(
        m.before_create_child(file(DIR), &by),
        BreakOutcome::Proceed
    ));
    assert_broken_to_none(&rec);
    assert_eq!(
        m.ack_break(client(1), key(DIR_KEY), st("none")),
        Ok(st("none"))
    );
    // After the ack the holder can take RH again.
    let g = must_open(&m, &dir_open(DIR, 1, DIR_KEY, st("RH")));
    assert_eq!(g.lease.map(|l| l.state), Some(st("RH")));
}

#[test]
fn child_created_by_the_holder_without_parent_key_breaks() {
    let (m, rec) = with_dir_lease();
    m.break_parent(file(DIR), &Requester::owner(owner(1)), None);
    assert_broken_to_none(&rec);
}

#[test]
fn own_parent_lease_key_does_not_break() {
    let (m, rec) = with_dir_lease();
    let by = Requester::owner(owner(1));
    m.break_parent(file(DIR), &by, Some((client(1), key(DIR_KEY))));
    assert!(rec.take().is_empty());
    assert_eq!(lease_state(&m, 1, DIR_KEY), Some(st("RH")));
}

#[test]
fn same_parent_key_from_another_client_breaks() {
    // Lease keys are per client: client 2 naming the same key is not the holder.
    let (m, rec) = with_dir_lease();
    let by = Requester::owner(owner(2));
    m.break_parent(file(DIR), &by, Some((client(2), key(DIR_KEY))));
    assert_broken_to_none(&rec);
}

#[test]
fn local_create_breaks_and_never_waits() {
    let (m, rec) = with_dir_lease();
    let by = Requester::owner(local(9));
    assert!(matches!(
        m.before_create_child(file(DIR), &by),
        BreakOutcome::Proceed
    ));
    assert_broken_to_none(&rec);
}

#[test]
fn unlink_of_a_child_breaks_the_parent_unless_its_lease_names_it() {
    let (m, rec) = with_dir_lease();
    // Client 1's child with ParentLeaseKey = DIR_KEY: its unlink keeps the dir lease.
    must_open(&m, &child_open(1, 1, 11, Some(DIR_KEY)));
    let by = Requester {
        owner: owner(1),
        lease: Some((client(1), key(11))),
    };
    assert!(matches!(
        m.before_unlink(file(1), Some(file(DIR)), &by),
        BreakOutcome::Proceed
    ));
    assert!(rec.take().is_empty());
    // A child whose lease names no parent: its unlink breaks the dir lease.
    must_open(&m, &child_open(2, 1, 12, None));
    let by = Requester {
        owner: owner(1),
        lease: Some((client(1), key(12))),
    };
    assert!(matches!(
        m.before_unlink(file(2), Some(file(DIR)), &by),
        BreakOutcome::Proceed
    ));
    assert_broken_to_none(&rec);
}

#[test]
fn rename_breaks_both_parents() {
    let (m, rec) = with_dir_lease();
    let rec2 = Arc::new(Recorder::default());
    m.register_sink(owner(3), rec2.clone());
    let g = must_open(&m, &dir_open(DIR2, 3, 60, st("RH")));
    assert_eq!(g.lease.map(|l| l.state), Some(st("RH")));
    let by = Requester::owner(local(9));
    assert!(matches!(
        m.before_rename(file(1), Some(file(DIR)), Some(file(DIR2)), &by),
        BreakOutcome::Proceed
    ));
    assert_broken_to_none(&rec);
    let n = rec2.take();
    assert_eq!(n.len(), 1);
    assert_eq!((n[0].key, n[0].to), (key(60), st("none")));
}

#[test]
fn r_only_directory_lease_breaks_without_ack() {
    let (m, _clock) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    must_open(&m, &dir_open(DIR, 1, DIR_KEY, st("R")));
    m.before_create_child(file(DIR), &Requester::owner(local(9)));
    let n = rec.take();
    assert_eq!(n.len(), 1);
    assert_eq!((n[0].from, n[0].to), (st("R"), st("none")));
    assert!(!n[0].ack_required);
    assert_eq!(lease_state(&m, 1, DIR_KEY), Some(st("none")));
}

#[test]
fn renaming_a_directory_breaks_handle_caching_below_it_and_waits() {
    let (m, _clock) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    let root = file(1);
    let g = must_open(&m, &leased_open(file(7), 1, 11, st("RH"), Access::READ));
    // file(7) lives in DIR2, which lives in DIR.
    m.set_ancestors(g.open, vec![file(DIR2), file(DIR)]);
    let by = Requester::owner(local(9));
    // Renaming an unrelated directory touches nothing.
    assert!(matches!(
        m.before_rename(file(200), Some(root), Some(root), &by),
        BreakOutcome::Proceed
    ));
    assert!(rec.take().is_empty());
    // Renaming the grandparent breaks H and waits for the ack.
    let w = match m.before_rename(file(DIR), Some(root), Some(root), &by) {
        BreakOutcome::Wait(w) => w,
        BreakOutcome::Proceed => panic!("a rename above a handle-cached file must wait"),
    };
    let n = rec.take();
    assert_eq!(n.len(), 1);
    assert_eq!((n[0].key, n[0].from, n[0].to), (key(11), st("RH"), st("R")));
    assert!(n[0].ack_required);
    assert_eq!(m.ack_break(client(1), key(11), st("R")), Ok(st("R")));
    assert_eq!(w.wait(), WakeReason::Acked);
}

#[test]
fn renaming_a_directory_spares_the_renamers_own_lease_and_closed_opens() {
    let (m, _clock) = manual_mgr();
    let rec = Arc::new(Recorder::default());
    m.register_sink(owner(1), rec.clone());
    let root = file(1);
    let g = must_open(&m, &leased_open(file(7), 1, 11, st("RH"), Access::READ));
    m.set_ancestors(g.open, vec![file(DIR)]);
    let own = Requester {
        owner: owner(1),
        lease: Some((client(1), key(11))),
    };
    assert!(matches!(
        m.before_rename(file(DIR), Some(root), Some(root), &own),
        BreakOutcome::Proceed
    ));
    assert!(rec.take().is_empty());
    m.close(g.open);
    let by = Requester::owner(local(9));
    assert!(matches!(
        m.before_rename(file(DIR), Some(root), Some(root), &by),
        BreakOutcome::Proceed
    ));
    assert!(rec.take().is_empty());
}
