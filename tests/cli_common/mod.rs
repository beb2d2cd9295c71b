//! Shared by the end-to-end tests of the `leasefs` binary: children whose stdout is read
//! line by line.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_leasefs");

/// A running `leasefs` child whose stdout lines arrive on a channel; killed on drop.
pub struct LineChild {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl LineChild {
    pub fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn leasefs");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Self { child, lines: rx }
    }

    /// `leasefs lease hold PATH --state RWH --ack ACK`, once it holds the lease.
    pub fn hold(state_dir: &Path, path: &Path, ack: &str) -> Self {
        let h = Self::spawn(
            Command::new(BIN)
                .args(["lease", "hold"])
                .arg(path)
                .args(["--state", "RWH", "--ack", ack, "--state-dir"])
                .arg(state_dir),
        );
        h.expect("holding RWH");
        h
    }

    /// `leasefs locks --watch`, once it is watching.
    pub fn watch(state_dir: &Path) -> Self {
        let w = Self::spawn(
            Command::new(BIN)
                .args(["locks", "--watch", "--state-dir"])
                .arg(state_dir),
        );
        w.expect("watching");
        w
    }

    /// The next line containing `needle` (earlier lines are skipped).
    pub fn expect(&self, needle: &str) -> String {
        loop {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no line containing {needle:?}"));
            if l.contains(needle) {
                return l;
            }
        }
    }
}

impl Drop for LineChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
