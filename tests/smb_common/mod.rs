//! Shared helpers for the SMB end-to-end tests: a `leasefs serve` child on a free
//! loopback port that is always stopped (Drop), and an smbclient runner.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const USER: &str = "alice";
pub const PASS: &str = "s3cret-Pass";

pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The FUSE mountpoint when started with `--mount`.
    pub mount: Option<PathBuf>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("share")).expect("mkdir share");
        Self::start_in(dir, extra)
    }

    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_leasefs"));
        cmd.arg("serve")
            .arg("--backing")
            .arg(dir.path().join("share"))
            .args(["--smb-listen", "127.0.0.1:0"])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--user", &format!("{USER}:{PASS}")])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn leasefs serve");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .expect("read port line");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("no port in {line:?}")
            });
        let mount = extra
            .iter()
            .position(|a| *a == "--mount")
            .and_then(|i| extra.get(i + 1))
            .map(PathBuf::from);
        Server {
            child,
            port,
            dir,
            mount,
        }
    }

    pub fn backing(&self) -> PathBuf {
        self.dir.path().join("share")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// smbclient against this server with the given protocol and commands.
    pub fn smbclient(&self, proto: &str, auth: &[&str], cmds: &str, cwd: &Path) -> (bool, String) {
        let out = Command::new("smbclient")
            .arg(format!("//127.0.0.1/{}", "share"))
            .args(["-p", &self.port.to_string()])
            .args(["-m", proto])
            .args(auth)
            .args(["-c", cmds])
            .current_dir(cwd)
            .output()
            .expect("smbclient must be installed (scripts/test.sh installs it)");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success() && !text.contains("NT_STATUS_"), text)
    }

    pub fn user_auth() -> Vec<String> {
        vec!["-U".into(), format!("{USER}%{PASS}")]
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first so a --mount is unmounted cleanly; SIGKILL if it hangs.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(m) = &self.mount {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    // xorshift: deterministic, incompressible enough for a transfer test.
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs `smbtorture` against the server's share for one test or suite, killing it after
/// `limit`. Returns its stdout and whether it timed out.
pub fn smbtorture(port: u16, target: &str, limit: std::time::Duration) -> (String, bool) {
    smbtorture_with(port, target, limit, &[])
}

/// `smbtorture` with extra arguments (e.g. `--option=torture:...` settings).
pub fn smbtorture_with(
    port: u16,
    target: &str,
    limit: std::time::Duration,
    extra: &[&str],
) -> (String, bool) {
    use std::io::Read;
    let mut child = Command::new("smbtorture")
        .arg("//127.0.0.1/share")
        .args(["-p", &port.to_string()])
        .args(["-U", &format!("{USER}%{PASS}")])
        .args(extra)
        .arg(target)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("smbtorture must be installed (scripts/test.sh installs samba-testsuite)");
    let mut out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let start = std::time::Instant::now();
    let mut timed_out = false;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if start.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (reader.join().unwrap_or_default(), timed_out)
}

/// Why `iptables` cannot be used to drop a client's packets here, or `None` when it can
/// (root, the command installed, the filter table readable). Tests that need it skip
/// with this reason instead of passing silently; scripts/test.sh installs iptables.
pub fn iptables_unusable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("iptables needs root".into());
    }
    match Command::new("iptables")
        .args(["-w", "-S", "OUTPUT"])
        .output()
    {
        Err(e) => Some(format!(
            "iptables is not installed ({e}); scripts/test.sh installs it"
        )),
        Ok(o) if !o.status.success() => Some(format!(
            "iptables -S OUTPUT failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}
