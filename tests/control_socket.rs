//! The control socket end to end: a real Unix socket served by `ControlServer` over a
//! lock manager, driven by the real `leasefs` binary (`locks`, `lease hold`, `break`).

use leasefs::control::{socket_path, ControlConfig, ControlServer};
use leasefs_leases::{
    Access, ClientId, FileId, LockManager, ManagerConfig, OpenOutcome, OpenRequest, OwnerId,
    Protocol, WakeReason,
};

use std::path::{Path, PathBuf};
use std::process::Command;

use std::sync::Arc;
use std::time::Duration;

mod cli_common;
use cli_common::{LineChild, BIN};

// Fields drop in order: the server stops before its directory goes.
struct Daemon {
    _server: ControlServer,
    mgr: Arc<LockManager>,
    state: PathBuf,
    backing: PathBuf,
    _dir: tempfile::TempDir,
}

fn daemon(break_timeout: Duration) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let backing = dir.path().join("data");
    std::fs::create_dir_all(&backing).unwrap();
    std::fs::write(backing.join("file.txt"), b"hello").unwrap();
    let mgr = LockManager::open_store(ManagerConfig {
        break_timeout,
        ..Default::default()
    })
    .unwrap();
    let server = ControlServer::start(
        ControlConfig {
            socket: socket_path(&state),
            backing: backing.clone(),
            mount: None,
        },
        mgr.clone(),
    )
    .unwrap();
    Daemon {
        _server: server,
        mgr,
        state,
        backing,
        _dir: dir,
    }
}

fn leasefs(d: &Daemon, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--state-dir")
        .arg(&d.state)
        .output()
        .unwrap()
}

fn local_writer(file: FileId) -> OpenRequest {
    let owner = OwnerId::new(Protocol::Local, ClientId::from_u128(7), 1);
    OpenRequest {
        writes_unseen: true,
        ..OpenRequest::new(file, owner, Access::READ_WRITE)
    }
}

fn id_of(p: &Path) -> FileId {
    leasefs::control::paths::file_id(p).unwrap()
}

#[test]
fn empty_state_prints_no_locks() {
    let d = daemon(Duration::from_secs(35));
    let out = leasefs(&d, &["locks"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no locks"));
}

#[test]
fn hold_with_auto_ack_lets_a_local_writer_through_and_locks_json_shows_it() {
    let d = daemon(Duration::from_secs(60));
    let file = d.backing.join("file.txt");
    let holder = LineChild::hold(&d.state, &file, "auto");

    let out = leasefs(&d, &["locks", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let leases = v["leases"].as_array().unwrap();
    assert_eq!(leases.len(), 1, "{v}");
    assert_eq!(leases[0]["state"], "RWH");
    assert_eq!(leases[0]["protocol"], "control");
    assert_eq!(leases[0]["path"], file.display().to_string());
    assert_eq!(v["opens"].as_array().unwrap().len(), 1);
    let table = String::from_utf8_lossy(&leasefs(&d, &["locks"]).stdout).to_string();
    assert!(table.contains("lease") && table.contains("RWH"), "{table}");

    let OpenOutcome::Wait(w) = d.mgr.open(&local_writer(id_of(&file))).unwrap() else {
        panic!("the writer must wait for the RWH holder")
    };
    holder.expect("break RWH -> none");
    assert_eq!(
        w.wait_timeout(Duration::from_secs(20)),
        Some(WakeReason::Acked)
    );
    holder.expect("acknowledged");
    assert!(matches!(
        d.mgr.open(&local_writer(id_of(&file))).unwrap(),
        OpenOutcome::Opened(_)
    ));
}

#[test]
fn hold_that_never_acks_is_revoked_at_the_deadline() {
    let d = daemon(Duration::from_millis(300));
    let file = d.backing.join("file.txt");
    let holder = LineChild::hold(&d.state, &file, "never");
    let OpenOutcome::Wait(w) = d.mgr.open(&local_writer(id_of(&file))).unwrap() else {
        panic!("must wait")
    };
    holder.expect("not acknowledging");
    assert_eq!(
        w.wait_timeout(Duration::from_secs(20)),
        Some(WakeReason::Revoked)
    );
    let out = leasefs(&d, &["locks", "--json", "--file", file.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["leases"][0]["state"], "none", "{v}");
}

#[test]
fn operator_break_waits_for_the_holder() {
    let d = daemon(Duration::from_secs(60));
    let file = d.backing.join("file.txt");
    let holder = LineChild::hold(&d.state, &file, "after=0.2");
    let out = leasefs(&d, &["break", file.to_str().unwrap(), "--to", "R"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("acked"),
        "{out:?}"
    );
    holder.expect("acknowledged; lease now R");
}

#[test]
fn paths_outside_the_share_and_bad_states_are_refused() {
    let d = daemon(Duration::from_secs(60));
    let out = leasefs(&d, &["break", "/etc/passwd"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("neither under the backing directory"),
        "{out:?}"
    );
    let file = d.backing.join("file.txt");
    let out = leasefs(&d, &["break", file.to_str().unwrap(), "--to", "WX"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a lease state"),
        "{out:?}"
    );
}

#[test]
fn a_non_root_client_is_refused() {
    use std::os::unix::process::CommandExt;
    let d = daemon(Duration::from_secs(60));
    // Let uid 65534 reach the socket file, so the refusal tested is the daemon's own
    // peer-credential check and not only the file mode.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d.state, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        socket_path(&d.state),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    std::fs::set_permissions(d._dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(BIN)
        .args(["locks", "--state-dir"])
        .arg(&d.state)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("root-only"),
        "{out:?}"
    );
    // With the socket's real mode (0600), the file system refuses first.
    std::fs::set_permissions(
        socket_path(&d.state),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["locks", "--state-dir"])
        .arg(&d.state)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("root-only"),
        "{out:?}"
    );
}

#[test]
fn no_daemon_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["locks", "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no leasefs daemon is running"),
        "{out:?}"
    );
}

#[test]
fn watch_shows_break_and_ack_then_break_and_revoke() {
    let d = daemon(Duration::from_millis(300));
    let file = d.backing.join("file.txt");
    let watch = LineChild::watch(&d.state);
    {
        let _holder = LineChild::hold(&d.state, &file, "auto");
        watch.expect("grant");
        let OpenOutcome::Wait(w) = d.mgr.open(&local_writer(id_of(&file))).unwrap() else {
            panic!("must wait")
        };
        assert_eq!(
            w.wait_timeout(Duration::from_secs(20)),
            Some(WakeReason::Acked)
        );
        let line = watch.expect("break_sent");
        assert!(
            line.contains("RWH -> none") && line.contains("caused by local"),
            "{line}"
        );
        assert!(watch.expect("ack").contains("now none"));
    }
    watch.expect("release");
    let _holder = LineChild::hold(&d.state, &file, "never");
    let OpenOutcome::Wait(w) = d.mgr.open(&local_writer(id_of(&file))).unwrap() else {
        panic!("must wait")
    };
    assert_eq!(
        w.wait_timeout(Duration::from_secs(20)),
        Some(WakeReason::Revoked)
    );
    watch.expect("break_sent");
    assert!(watch.expect("revoke").contains("deadline passed"));
}

#[test]
fn watch_survives_a_daemon_restart() {
    let d = daemon(Duration::from_secs(60));
    let watch = LineChild::watch(&d.state);
    let Daemon {
        _server,
        mgr,
        state,
        backing,
        _dir,
    } = d;
    drop(_server);
    watch.expect("reconnecting");
    let server = ControlServer::start(
        ControlConfig {
            socket: socket_path(&state),
            backing: backing.clone(),
            mount: None,
        },
        mgr.clone(),
    )
    .unwrap();
    let d = Daemon {
        _server: server,
        mgr,
        state,
        backing,
        _dir,
    };
    watch.expect("watching");
    let _holder = LineChild::hold(&d.state, &d.backing.join("file.txt"), "auto");
    watch.expect("grant");
}

#[test]
fn config_file_sets_flags_and_command_line_overrides_it() {
    let d = daemon(Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "state_dir = {:?}\nlog = \"warn\"\n",
            d.state.display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["locks", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no locks"));
    // A bogus state dir in the file, the right one on the command line: the flag wins.
    let bogus = dir.path().join("bogus.toml");
    std::fs::write(&bogus, "state-dir = \"/nonexistent/leasefs\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["locks", "--config"])
        .arg(&bogus)
        .arg("--state-dir")
        .arg(&d.state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = Command::new(BIN)
        .args(["locks", "--config"])
        .arg(&bogus)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/leasefs"),
        "{out:?}"
    );
}

#[test]
fn config_file_with_an_unknown_key_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    std::fs::write(&f, "break_timeout = 5\nbrake_timeout = 5\n").unwrap();
    let out = Command::new(BIN)
        .args(["mount", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown key `brake_timeout`"), "{err}");
}

fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.0 200"), "{body}");
    body
}

fn metric(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

#[test]
fn metrics_counters_move_as_breaks_happen() {
    let d = daemon(Duration::from_millis(300));
    let m = leasefs::metrics::MetricsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        d.mgr.clone(),
        vec![],
    )
    .unwrap();
    let body = scrape(m.addr());
    assert_eq!(metric(&body, "leasefs_breaks_acked_total "), 0);
    let file = d.backing.join("file.txt");
    {
        let _h = LineChild::hold(&d.state, &file, "auto");
        assert_eq!(
            metric(&scrape(m.addr()), "leasefs_leases{state=\"RWH\"} "),
            1
        );
        let OpenOutcome::Wait(w) = d.mgr.open(&local_writer(id_of(&file))).unwrap() else {
            panic!("must wait")
        };
        assert_eq!(
            w.wait_timeout(Duration::from_secs(20)),
            Some(WakeReason::Acked)
        );
    }
    let _h = LineChild::hold(&d.state, &file, "never");
    let OpenOutcome::Wait(w) = d.mgr.open(&local_writer(id_of(&file))).unwrap() else {
        panic!("must wait")
    };
    assert_eq!(metric(&scrape(m.addr()), "leasefs_break_waiters "), 1);
    assert_eq!(
        w.wait_timeout(Duration::from_secs(20)),
        Some(WakeReason::Revoked)
    );
    let body = scrape(m.addr());
    assert_eq!(
        metric(
            &body,
            "leasefs_breaks_sent_total{reason=\"unseen-writer\"} "
        ),
        2
    );
    assert_eq!(metric(&body, "leasefs_breaks_acked_total "), 1);
    assert_eq!(metric(&body, "leasefs_breaks_revoked_total "), 1);
    assert_eq!(metric(&body, "leasefs_ack_latency_seconds_count "), 1);
}
