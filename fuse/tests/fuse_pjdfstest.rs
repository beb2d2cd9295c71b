//! The POSIX conformance suite pjdfstest (crates.io, the Rust rewrite) against a mount.
//!
//! Installs pjdfstest 0.2.2 under target/pjdfstest on first use (about 3 minutes on two
//! cores), or uses `$PJDFSTEST` / one on PATH. Failures listed under `expected_failures`
//! in fuse/pjdfstest/pjdfstest.toml are tolerated; that list may only shrink.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestMount;

/// Cases that fail now and then on any FUSE mount, retried alone before they count:
/// open::etxtbsy opens the file for writing right after spawning it, and on a FUSE mount
/// (about 1 run in 6, passthrough or not; never on the native directory) the spawned
/// exec has not yet denied write access when the open is checked.
const FLAKY: &[&str] = &["open::etxtbsy"];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pjdfstest() -> PathBuf {
    if let Some(p) = std::env::var_os("PJDFSTEST") {
        return p.into();
    }
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v pjdfstest"])
        .output()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !p.is_empty() {
            return p.into();
        }
    }
    let root = crate_dir().join("../target/pjdfstest");
    let bin = root.join("bin/pjdfstest");
    if !bin.exists() {
        let st = Command::new(env!("CARGO"))
            .args([
                "install",
                "pjdfstest",
                "--version",
                "0.2.2",
                "--locked",
                "--root",
            ])
            .arg(&root)
            .arg("--target-dir")
            .arg(root.join("build"))
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("running cargo install pjdfstest");
        assert!(st.success(), "cargo install pjdfstest failed");
    }
    bin
}

/// pjdfstest 0.2.2 builds a PATH_MAX-long path and underflows when
/// (PATH_MAX - 1 - len(base)) is a multiple of NAME_MAX/2; keep the base off that length.
fn base_dir(mnt: &Path) -> PathBuf {
    let mut p = mnt.join("pjd");
    while (4095 - p.as_os_str().len() - 9) % 127 == 0 {
        p.set_file_name(format!("{}x", p.file_name().unwrap().to_string_lossy()));
    }
    p
}

#[test]
fn pjdfstest_conformance() {
    let bin = pjdfstest();
    for passthrough in [true, false] {
        let t = TestMount::new(|c| {
            c.allow_other = true;
            c.passthrough = passthrough;
        });
        let base = base_dir(t.mnt_path());
        std::fs::create_dir(&base).unwrap();
        let run = |filter: &[&str]| {
            Command::new(&bin)
                .arg("-c")
                .arg(crate_dir().join("pjdfstest/pjdfstest.toml"))
                .arg("-p")
                .arg(&base)
                .args(if filter.is_empty() {
                    &[][..]
                } else {
                    &["-e"][..]
                })
                .args(filter)
                .current_dir(&base)
                .output()
                .expect("running pjdfstest")
        };
        let out = run(&[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let log = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("pjdfstest-passthrough-{passthrough}.log"));
        let _ = std::fs::write(&log, [&out.stdout[..], &out.stderr[..]].concat());
        eprintln!("full output: {}", log.display());
        let summary = stdout
            .lines()
            .find(|l| l.starts_with("Summary:"))
            .unwrap_or("no summary")
            .to_string();
        eprintln!("pjdfstest (passthrough {passthrough}): {summary}");
        let mut failed = Vec::new();
        let mut lines = stdout.lines().peekable();
        while let Some(l) = lines.next() {
            if l.contains("FAILED") {
                eprintln!("  {l}");
                if let Some(why) = lines.peek() {
                    eprintln!("  {why}");
                }
                failed.push(l.split_whitespace().next().unwrap_or("").to_string());
            }
        }
        let only_flaky = !failed.is_empty() && failed.iter().all(|f| FLAKY.contains(&f.as_str()));
        let retried_ok = only_flaky
            && failed
                .iter()
                .all(|f| (0..5).any(|_| run(&[f.as_str()]).status.success()));
        if retried_ok {
            eprintln!("  flaky {failed:?} passed when retried alone");
        }
        assert!(
            out.status.success() || retried_ok,
            "pjdfstest failed beyond the expected failures: {summary}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
