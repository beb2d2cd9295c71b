//! A local open waits on a lease another client holds.
//!
//! Mounts a temp directory through leasefs, lets a pretend remote client (as an SMB client
//! would) open `report.txt` with an RWH lease through the lock manager, then opens the file
//! for writing through the mount. The open blocks until the client acknowledges the break
//! (after 2 s here), or, with `--no-ack`, until the break deadline (3 s) revokes the lease.
//!
//!     cargo run -p leasefs-fuse --example local_open_waits [-- --no-ack]
//!
//! Needs root (or a setuid fusermount3) and /dev/fuse.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use leasefs_leases::{
    Access, BreakNotice, BreakSink, ClientId, FileId, LeaseKey, LeaseRequest, LeaseState,
    LeaseVersion, LockManager, ManagerConfig, OpenOutcome, OpenRequest, OwnerId, Protocol,
};

fn letters(s: LeaseState) -> String {
    let mut out: String = [
        (LeaseState::R, 'R'),
        (LeaseState::W, 'W'),
        (LeaseState::H, 'H'),
    ]
    .iter()
    .filter(|(b, _)| s.has(*b))
    .map(|(_, c)| *c)
    .collect();
    if out.is_empty() {
        out.push_str("None");
    }
    out
}

struct PrintingClient {
    t0: Instant,
    tx: std::sync::mpsc::Sender<BreakNotice>,
}

impl BreakSink for PrintingClient {
    fn deliver(&self, n: BreakNotice) {
        println!(
            "[{:5.2}s] remote client: break notice {} -> {} (ack required: {})",
            self.t0.elapsed().as_secs_f64(),
            letters(n.from),
            letters(n.to),
            n.ack_required
        );
        let _ = self.tx.send(n);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let no_ack = std::env::args().any(|a| a == "--no-ack");
    let t0 = Instant::now();
    let backing = tempfile::tempdir()?;
    let mnt = tempfile::tempdir()?;
    std::fs::write(backing.path().join("report.txt"), b"draft 1\n")?;

    let mgr = LockManager::open_store(ManagerConfig {
        break_timeout: Duration::from_secs(3),
        ..Default::default()
    })?;
    let mount = leasefs_fuse::mount(
        leasefs_fuse::MountConfig::new(backing.path(), mnt.path()),
        mgr.clone(),
    )?;
    println!(
        "mounted {} on {}",
        backing.path().display(),
        mnt.path().display()
    );

    // The remote client opens report.txt with a read/write/handle-caching lease.
    let client = ClientId::from_u128(0xC11E);
    let key = LeaseKey::from_u128(0x1EA5E);
    let owner = OwnerId::new(Protocol::Smb, client, 1);
    let (tx, notices) = std::sync::mpsc::channel();
    mgr.register_sink(owner, Arc::new(PrintingClient { t0, tx }));
    let md = std::fs::metadata(backing.path().join("report.txt"))?;
    let mut req = OpenRequest::new(FileId::new(md.dev(), md.ino()), owner, Access::READ_WRITE);
    req.lease = Some(LeaseRequest {
        client,
        key,
        state: LeaseState::RWH,
        version: LeaseVersion::V2 { parent: None },
        oplock: false,
    });
    match mgr.open(&req)? {
        OpenOutcome::Opened(g) => println!(
            "remote client holds lease {}",
            letters(g.lease.map_or(LeaseState::NONE, |l| l.state))
        ),
        OpenOutcome::Wait(_) => unreachable!("nobody else holds the file"),
    }

    // A local program opens the file for writing through the mount.
    let path = mnt.path().join("report.txt");
    let local = std::thread::spawn(move || -> std::io::Result<()> {
        println!(
            "[{:5.2}s] local: open(O_WRONLY|O_APPEND) ...",
            t0.elapsed().as_secs_f64()
        );
        let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
        println!("[{:5.2}s] local: open returned", t0.elapsed().as_secs_f64());
        f.write_all(b"local edit\n")
    });

    let notice = notices.recv_timeout(Duration::from_secs(30))?;
    if no_ack {
        println!("remote client does not answer; the deadline (3 s) will revoke the lease");
    } else {
        std::thread::sleep(Duration::from_secs(2));
        let now = mgr.ack_break(client, key, notice.to)?;
        println!(
            "[{:5.2}s] remote client: acknowledged, lease now {}",
            t0.elapsed().as_secs_f64(),
            letters(now)
        );
    }
    local.join().expect("local thread")?;
    print!(
        "backing file now:\n{}",
        std::fs::read_to_string(backing.path().join("report.txt"))?
    );
    mount.unmount()?;
    Ok(())
}
