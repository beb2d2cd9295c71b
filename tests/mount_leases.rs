//! A real `leasefs mount` daemon, a lease held through its control socket with
//! `leasefs lease hold`, and local writes on the mount: the write waits for the ack (or
//! the deadline), and `leasefs locks --watch` shows what happened.

mod cli_common;

use cli_common::{LineChild, BIN};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct MountDaemon {
    child: Child,
    mnt: PathBuf,
    state: PathBuf,
    backing: PathBuf,
    _dir: tempfile::TempDir,
}

fn mounted(p: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(p.to_str().unwrap_or("")))
        })
        .unwrap_or(false)
}

impl MountDaemon {
    fn start(break_timeout: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (backing, mnt, state) = (
            dir.path().join("data"),
            dir.path().join("mnt"),
            dir.path().join("state"),
        );
        std::fs::create_dir_all(&backing).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        std::fs::write(backing.join("f.txt"), b"from the start\n").unwrap();
        let child = Command::new(BIN)
            .args(["mount", "--backing"])
            .arg(&backing)
            .arg("--mount")
            .arg(&mnt)
            .arg("--state-dir")
            .arg(&state)
            .args(["--break-timeout", break_timeout])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Self {
            child,
            mnt: mnt.canonicalize().unwrap(),
            state,
            backing,
            _dir: dir,
        };
        let t0 = Instant::now();
        while !(mounted(&d.mnt) && socket_ready(&d.state)) {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "mount did not come up"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }
}

fn socket_ready(state: &Path) -> bool {
    state.join("control.sock").exists()
}

impl Drop for MountDaemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if mounted(&self.mnt) {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

fn append_line(path: &Path, line: &str) -> Duration {
    let t0 = Instant::now();
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(line.as_bytes()).unwrap();
    drop(f);
    t0.elapsed()
}

#[test]
fn local_write_waits_for_the_ack_and_watch_shows_it() {
    let d = MountDaemon::start("30");
    let file = d.mnt.join("f.txt");
    let watch = LineChild::watch(&d.state);
    let holder = LineChild::hold(&d.state, &file, "auto");
    watch.expect("grant");
    let took = append_line(&file, "local line\n");
    holder.expect("break RWH -> none");
    holder.expect("acknowledged");
    // Far below the 30 s deadline: the write went through on the ack.
    assert!(took < Duration::from_secs(20), "write took {took:?}");
    let line = watch.expect("break_sent");
    assert!(line.contains("f.txt") && line.contains("local"), "{line}");
    watch.expect("ack");
    assert_eq!(
        std::fs::read_to_string(d.backing.join("f.txt")).unwrap(),
        "from the start\nlocal line\n"
    );
}

#[test]
fn local_write_proceeds_after_the_deadline_when_the_holder_never_acks() {
    let d = MountDaemon::start("1");
    let file = d.mnt.join("f.txt");
    let watch = LineChild::watch(&d.state);
    let holder = LineChild::hold(&d.state, &file, "never");
    let took = append_line(&file, "after revoke\n");
    holder.expect("not acknowledging");
    assert!(
        took >= Duration::from_millis(900),
        "the write must wait for the 1 s deadline, took {took:?}"
    );
    watch.expect("break_sent");
    assert!(watch.expect("revoke").contains("deadline passed"));
    // Revoked to none (not to the break-to state), and the holder still has its open.
    let out = Command::new(BIN)
        .args(["locks", "--json", "--state-dir"])
        .arg(&d.state)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lease = v["leases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["protocol"] == "control")
        .cloned()
        .unwrap();
    assert_eq!(lease["state"], "none", "{v}");
    assert!(std::fs::read_to_string(d.backing.join("f.txt"))
        .unwrap()
        .ends_with("after revoke\n"));
}

#[test]
fn locks_shows_local_opens_and_fcntl_locks() {
    let d = MountDaemon::start("30");
    let file = d.mnt.join("f.txt");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&file)
        .unwrap();
    let fl = libc::flock {
        l_type: libc::F_WRLCK as i16,
        l_whence: libc::SEEK_SET as i16,
        l_start: 10,
        l_len: 20,
        l_pid: 0,
    };
    assert_eq!(
        unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&f), libc::F_SETLK, &fl) },
        0
    );
    let out = Command::new(BIN)
        .args(["locks", "--json", "--file"])
        .arg(&file)
        .arg("--state-dir")
        .arg(&d.state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lock = &v["locks"][0];
    assert_eq!(
        (
            lock["start"].as_u64(),
            lock["end"].as_u64(),
            lock["type"].as_str()
        ),
        (Some(10), Some(29), Some("exclusive")),
        "{v}"
    );
    assert_eq!(lock["path"], file.display().to_string());
    assert!(
        v["opens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["protocol"] == "local" && o["write"] == true),
        "{v}"
    );
    let table = String::from_utf8_lossy(
        &Command::new(BIN)
            .args(["locks", "--state-dir"])
            .arg(&d.state)
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    assert!(
        table.contains("10-29") && table.contains("exclusive"),
        "{table}"
    );
    drop(f);
}
