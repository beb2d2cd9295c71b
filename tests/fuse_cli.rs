//! `leasefs mount` as a user runs it: foreground until a signal, clean unmount, clear
//! errors, and recovery from a crashed daemon's dead mount.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leasefs"))
}

fn mounted(p: &Path) -> bool {
    let p = p.canonicalize().unwrap_or(p.to_path_buf());
    fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(&*p.to_string_lossy()))
}

/// statfs(2) of `p` names a FUSE filesystem (FUSE_SUPER_MAGIC).
fn fuse_answers(p: &Path) -> bool {
    const FUSE_SUPER_MAGIC: libc::__fsword_t = 0x6573_5546;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: a valid NUL-terminated path and a buffer of the right type.
    let rc = unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) };
    // SAFETY: statfs filled the buffer when it returned 0.
    rc == 0 && unsafe { st.assume_init() }.f_type == FUSE_SUPER_MAGIC
}

/// Kills the daemon and detaches its mount if a test fails half-way.
struct Daemon {
    child: Option<Child>,
    mnt: std::path::PathBuf,
}

impl Daemon {
    fn start(backing: &Path, mnt: &Path, extra: &[&str]) -> Self {
        let child = bin()
            .args(["mount", "--backing"])
            .arg(backing)
            .arg("--mount")
            .arg(mnt)
            .arg("--state-dir")
            .arg(mnt.with_extension("state"))
            .args(extra)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn leasefs");
        let d = Self {
            child: Some(child),
            mnt: mnt.to_path_buf(),
        };
        let t0 = Instant::now();
        // A FUSE filesystem answering at `mnt`. A dead mount from a killed daemon fails
        // statfs (ENOTCONN), and while the new daemon detaches it the bare directory
        // underneath shows through, so "mounted, and readdir works" is not enough.
        while !(fuse_answers(mnt) && fs::read_dir(mnt).is_ok()) {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "mount did not appear"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn signal(&mut self, sig: &str) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let st = Command::new("kill")
            .args(["-s", sig, &c.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        c.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if mounted(&self.mnt) {
            let _ = nix_umount_lazy(&self.mnt);
        }
    }
}

fn nix_umount_lazy(p: &Path) -> std::io::Result<()> {
    let st = Command::new("umount").arg("-l").arg(p).status()?;
    assert!(st.success());
    Ok(())
}

#[test]
fn sigterm_and_sigint_unmount_cleanly() {
    for sig in ["TERM", "INT"] {
        let b = tempfile::tempdir().unwrap();
        let m = tempfile::tempdir().unwrap();
        let mut d = Daemon::start(b.path(), m.path(), &[]);
        fs::write(m.path().join("f"), b"through the mount").unwrap();
        assert_eq!(fs::read(b.path().join("f")).unwrap(), b"through the mount");
        let st = d.signal(sig);
        assert!(st.success(), "exit status {st:?} after signal {sig}");
        assert!(!mounted(m.path()), "no mount left behind");
    }
}

#[test]
fn crashed_daemon_mount_can_be_cleaned_and_remounted() {
    let b = tempfile::tempdir().unwrap();
    let m = tempfile::tempdir().unwrap();
    fs::write(b.path().join("f"), b"data").unwrap();

    // 1. cleaned by hand: fusermount3 -u where present, else umount -l
    let mut d = Daemon::start(b.path(), m.path(), &["--no-passthrough"]);
    d.signal("KILL");
    assert!(mounted(m.path()), "a killed daemon leaves its mount behind");
    let e = fs::read_dir(m.path()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(107), "ENOTCONN");
    let fusermount = Command::new("fusermount3").arg("-u").arg(m.path()).status();
    if !matches!(fusermount, Ok(s) if s.success()) {
        nix_umount_lazy(m.path()).unwrap();
    }
    assert!(!mounted(m.path()));

    // 2. a new daemon detaches the dead mount itself
    let mut d = Daemon::start(b.path(), m.path(), &[]);
    d.signal("KILL");
    assert!(mounted(m.path()));
    let mut d = Daemon::start(b.path(), m.path(), &[]);
    assert_eq!(fs::read(m.path().join("f")).unwrap(), b"data");
    assert!(d.signal("TERM").success());
    assert!(!mounted(m.path()));
}

#[test]
fn clear_errors() {
    let b = tempfile::tempdir().unwrap();
    let m = tempfile::tempdir().unwrap();
    let run = |backing: &Path, mnt: &Path| {
        let out = bin()
            .args(["mount", "--backing"])
            .arg(backing)
            .arg("--mount")
            .arg(mnt)
            .arg("--state-dir")
            .arg(mnt.with_extension("state"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&b.path().join("missing"), m.path());
    assert!(
        e.contains("backing directory") && e.contains("does not exist"),
        "{e}"
    );
    let e = run(b.path(), &m.path().join("missing"));
    assert!(
        e.contains("mount point") && e.contains("does not exist"),
        "{e}"
    );
    fs::write(m.path().join("file"), b"").unwrap();
    let e = run(b.path(), m.path());
    assert!(e.contains("is not empty"), "{e}");
    let e = run(b.path(), &m.path().join("file"));
    assert!(e.contains("is not a directory"), "{e}");
}
