//! smbtorture's `smb2.lease` and `smb2.oplock` suites against `leasefs serve` on
//! loopback (issue 5), one smbtorture process per test so a hang costs one test.
//!
//! Prints the pass counts and fails when a test fails that is not listed in
//! `smb/known-failures/smb2.lease.txt` / `smb2.oplock.txt`. The lists may only
//! shrink: a listed test that now passes is reported so it can be removed. A test
//! listed as `# timeout` runs with a short time limit to keep CI time in check.

mod smb_common;

use smb_common::Server;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

/// Time limit of one test, and of one listed as timing out.
const LIMIT: Duration = Duration::from_secs(90);
const LIMIT_KNOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// The server's break deadline: several tests wait for it (smb2.lease.timeout,
/// smb2.oplock.batch22a), so one shorter than the default 35 s keeps the suites fast.
/// It must stay longer than the tests that hold a break unacknowledged on purpose
/// take to ack it (smb2.lease.breaking4 takes about 7 s), and smbtorture is told the
/// same value (`torture:oplocktimeout`, which batch22a measures against).
const BREAK_TIMEOUT: &str = "15";

/// Tests that must run, not skip: smbtorture skips them when the server lacks a
/// feature (directory leases: SMB2_GLOBAL_CAP_DIRECTORY_LEASING), so a skip here means
/// the feature regressed.
const MUST_NOT_SKIP: &[&str] = &["smb2.lease.v2_request_parent", "smb2.lease.v2_request"];

/// name -> listed outcome ("failure", "timeout", ...)
fn known_failures(suite: &str) -> BTreeMap<String, String> {
    let path = format!(
        "{}/smb/known-failures/{suite}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter_map(|l| {
            let (name, note) = l.split_once('#').unwrap_or((l, ""));
            let name = name.trim();
            (!name.is_empty()).then(|| (name.to_string(), note.trim().to_string()))
        })
        .collect()
}

fn list(suite: &str) -> Vec<String> {
    let out = Command::new("smbtorture")
        .args(["--list", suite])
        .output()
        .expect("smbtorture must be installed (scripts/test.sh installs samba-testsuite)");
    let text = String::from_utf8_lossy(&out.stdout);
    // Lines look like "smb2.lease.request.request": suite.test.case; we run suite.test.
    let mut tests: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{suite}.")))
        .filter_map(|l| l.rsplit_once('.').map(|(t, _)| t.to_string()))
        .collect();
    tests.dedup();
    tests
}

/// Tests that block a client's transport: smbtorture then drops the client's outgoing
/// packets with iptables (`torture:use_iptables`), the only way that works against a
/// server other than Samba (the default is a Samba-private FSCTL). The server must see
/// the client's connection as dead when the bytes of a break stay unacknowledged at the
/// TCP level (smb/src/liveness.rs).
const NEED_IPTABLES: &[&str] = &["smb2.oplock.batch22b"];

/// "success", "failure", "error", "skip" or "timeout".
fn run_one(port: u16, test: &str, limit: Duration) -> String {
    let opt = format!("--option=torture:oplocktimeout={BREAK_TIMEOUT}");
    let mut opts = vec![opt.as_str()];
    if NEED_IPTABLES.contains(&test) {
        if let Some(why) = smb_common::iptables_unusable() {
            println!("{test}: SKIPPED, cannot block the client's transport: {why}");
            return "skip".into();
        }
        opts.push("--option=torture:use_iptables=yes");
    }
    let (text, timed_out) = smb_common::smbtorture_with(port, test, limit, &opts);
    if timed_out {
        return "timeout".into();
    }
    for line in text.lines() {
        for kind in ["success", "failure", "error", "skip"] {
            if line.starts_with(&format!("{kind}: ")) {
                return kind.into();
            }
        }
    }
    "error".into()
}

fn run_suite(suite: &str) {
    let srv = Server::start(&["--break-timeout", BREAK_TIMEOUT]);
    let known = known_failures(suite);
    let tests = list(suite);
    assert!(!tests.is_empty(), "smbtorture lists no {suite} tests");
    let mut results = BTreeMap::new();
    for t in &tests {
        let limit = match known.get(t) {
            Some(note) if note.contains("timeout") => LIMIT_KNOWN_TIMEOUT,
            _ => LIMIT,
        };
        let r = run_one(srv.port, t, limit);
        println!("{t}: {r}");
        results.insert(t.clone(), r);
    }
    let pass = results.values().filter(|v| *v == "success").count();
    let skip = results.values().filter(|v| *v == "skip").count();
    // Straight to stderr, past the test harness's output capture, so the counts show
    // in every run (issue 5 asks CI to print them), not only when the test fails.
    let _ = writeln!(
        std::io::stderr(),
        "smbtorture {suite}: {pass} passed, {} failed, {skip} skipped of {}",
        results.len() - pass - skip,
        results.len()
    );
    let fixed: Vec<&String> = known
        .keys()
        .filter(|k| results.get(*k).is_some_and(|v| v == "success"))
        .collect();
    if !fixed.is_empty() {
        println!("now passing, remove from smb/known-failures/{suite}.txt: {fixed:?}");
    }
    let unexpected: Vec<(&String, &String)> = results
        .iter()
        .filter(|(k, v)| {
            let skip_ok = v.as_str() == "skip" && !MUST_NOT_SKIP.contains(&k.as_str());
            v.as_str() != "success" && !skip_ok && !known.contains_key(*k)
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected {suite} failures: {unexpected:#?}"
    );
    assert!(pass > 0, "no {suite} test passed at all");
    for t in MUST_NOT_SKIP
        .iter()
        .filter(|t| t.starts_with(&format!("{suite}.")))
    {
        assert!(results.contains_key(*t), "smbtorture no longer lists {t}");
    }
}

#[test]
fn smbtorture_smb2_lease() {
    run_suite("smb2.lease");
}

#[test]
fn smbtorture_smb2_oplock() {
    run_suite("smb2.oplock");
}
