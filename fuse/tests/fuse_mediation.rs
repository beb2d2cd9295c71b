//! Local access through the mount is mediated by the lock manager: a W lease held by
//! another client is broken (and waited for) before a local open proceeds, and local
//! fcntl locks share one byte-range table with other front ends' locks.

mod common;

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use common::TestMount;
use leasefs_leases::{
    Access, BreakNotice, BreakSink, ByteRange, ClientId, FileId, LeaseKey, LeaseRequest,
    LeaseState, LeaseVersion, LockError, LockKind, LockManager, LockOutcome, LockOwner,
    LockRequest, ManagerConfig, OpenGrant, OpenOutcome, OpenRequest, OwnerId, Protocol,
};
use parking_lot::Mutex;

/// A remote client's break notifications, as an SMB connection would receive them.
#[derive(Default)]
struct Recorder {
    notices: Mutex<Vec<BreakNotice>>,
    cv: parking_lot::Condvar,
}

impl BreakSink for Recorder {
    fn deliver(&self, notice: BreakNotice) {
        self.notices.lock().push(notice);
        self.cv.notify_all();
    }
}

impl Recorder {
    fn wait_for_notice(&self) -> BreakNotice {
        let mut g = self.notices.lock();
        while g.is_empty() {
            // generous bound so a broken build fails instead of hanging CI
            if self
                .cv
                .wait_for(&mut g, Duration::from_secs(60))
                .timed_out()
            {
                panic!("no break notice delivered");
            }
        }
        g[0].clone()
    }
}

const CLIENT: ClientId = ClientId([7; 16]);
const KEY: LeaseKey = LeaseKey([9; 16]);

fn remote() -> OwnerId {
    OwnerId::new(Protocol::Smb, CLIENT, 1)
}

fn file_id(p: &Path) -> FileId {
    let md = fs::metadata(p).unwrap();
    FileId::new(md.dev(), md.ino())
}

/// Opens `path` (a backing file) in the manager as a remote client holding an RWH lease.
fn hold_rwh(mgr: &LockManager, path: &Path) -> (Arc<Recorder>, OpenGrant) {
    let rec = Arc::new(Recorder::default());
    mgr.register_sink(remote(), rec.clone());
    let mut req = OpenRequest::new(file_id(path), remote(), Access::READ_WRITE);
    req.lease = Some(LeaseRequest {
        client: CLIENT,
        key: KEY,
        state: LeaseState::RWH,
        version: LeaseVersion::V2 { parent: None },
        oplock: false,
    });
    let grant = match mgr.open(&req).unwrap() {
        OpenOutcome::Opened(g) => g,
        OpenOutcome::Wait(_) => panic!("nothing to break"),
    };
    assert_eq!(grant.lease.unwrap().state, LeaseState::RWH);
    (rec, grant)
}

fn manager(break_timeout: Duration) -> Arc<LockManager> {
    LockManager::open_store(ManagerConfig {
        break_timeout,
        ..Default::default()
    })
    .unwrap()
}

/// Opens `p` for writing on another thread; the result arrives on the channel.
fn open_wronly_async(p: std::path::PathBuf) -> mpsc::Receiver<std::io::Result<fs::File>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(fs::OpenOptions::new().write(true).open(p));
    });
    rx
}

fn stat_many(t: &TestMount, n: usize) {
    for i in 0..n {
        let md = fs::metadata(t.m(&format!("other-{}", i % 10))).unwrap();
        assert_eq!(md.len(), 5);
    }
}

#[test]
fn local_open_waits_for_the_ack_while_other_requests_are_served() {
    // a long deadline: only the ack may let the open through
    let mgr = manager(Duration::from_secs(600));
    let t = TestMount::with_manager(mgr.clone(), |_| {});
    fs::write(t.b("leased"), b"cached by a remote client").unwrap();
    for i in 0..10 {
        fs::write(t.b(&format!("other-{i}")), b"other").unwrap();
    }
    let (rec, _grant) = hold_rwh(&mgr, &t.b("leased"));

    let opened = open_wronly_async(t.m("leased"));
    let notice = rec.wait_for_notice();
    assert_eq!(notice.from, LeaseState::RWH);
    assert!(notice.ack_required);
    // a local writer whose writes the daemon does not see: nobody may cache (DESIGN)
    assert_eq!(notice.to, LeaseState::NONE);

    // The open is parked on its own thread: 1,000 stats of other files complete meanwhile.
    stat_many(&t, 1000);
    assert!(
        matches!(opened.try_recv(), Err(mpsc::TryRecvError::Empty)),
        "the local open went through before the lease holder acknowledged the break"
    );
    // still blocked a while later (not a timing assertion: it must not finish at all)
    std::thread::sleep(Duration::from_millis(300));
    assert!(matches!(opened.try_recv(), Err(mpsc::TryRecvError::Empty)));

    mgr.ack_break(CLIENT, KEY, notice.to).unwrap();
    let f = opened
        .recv_timeout(Duration::from_secs(60))
        .expect("open finished after the ack")
        .expect("open succeeded");
    drop(f);
}

#[test]
fn local_open_proceeds_after_the_break_deadline_without_ack() {
    let mgr = manager(Duration::from_millis(700));
    let t = TestMount::with_manager(mgr.clone(), |_| {});
    fs::write(t.b("leased"), b"x").unwrap();
    for i in 0..10 {
        fs::write(t.b(&format!("other-{i}")), b"other").unwrap();
    }
    let (rec, _grant) = hold_rwh(&mgr, &t.b("leased"));

    let opened = open_wronly_async(t.m("leased"));
    rec.wait_for_notice();
    stat_many(&t, 1000);
    // never acked: the deadline revokes the lease and the open proceeds
    let mut f = opened
        .recv_timeout(Duration::from_secs(60))
        .expect("open finished after the deadline")
        .expect("open succeeded");
    use std::io::Write;
    f.write_all(b"local write").unwrap();
    drop(f);
    assert_eq!(
        leasefs_leases::Stats::get(&mgr.stats().revokes),
        1,
        "the lease was revoked at its deadline"
    );
    assert_eq!(
        mgr.ack_break(CLIENT, KEY, LeaseState::NONE),
        Err(leasefs_leases::AckError::NotBreaking),
        "a late ack is refused"
    );
    assert_eq!(fs::read(t.b("leased")).unwrap(), b"local write");
}

#[test]
fn unlink_and_rename_wait_for_handle_caching_breaks() {
    let mgr = manager(Duration::from_secs(600));
    let t = TestMount::with_manager(mgr.clone(), |_| {});
    fs::write(t.b("victim"), b"x").unwrap();
    let (rec, _grant) = hold_rwh(&mgr, &t.b("victim"));

    let (tx, rx) = mpsc::channel();
    let p = t.m("victim");
    std::thread::spawn(move || {
        let _ = tx.send(fs::remove_file(p));
    });
    let notice = rec.wait_for_notice();
    assert!(
        !notice.to.has(LeaseState::H),
        "unlink breaks handle caching"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty)));
    assert!(t.b("victim").exists(), "not unlinked before the ack");
    mgr.ack_break(CLIENT, KEY, notice.to).unwrap();
    rx.recv_timeout(Duration::from_secs(60)).unwrap().unwrap();
    assert!(!t.b("victim").exists());
}

fn fcntl_lock(
    f: &fs::File,
    cmd: i32,
    typ: i32,
    start: i64,
    len: i64,
) -> std::io::Result<libc::flock> {
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = start;
    fl.l_len = len;
    let r = unsafe { libc::fcntl(f.as_raw_fd(), cmd, &mut fl) };
    if r == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(fl)
    }
}

/// An open of the backing file by a remote owner, to hang SMB-style locks on.
fn remote_open(mgr: &LockManager, path: &Path) -> leasefs_leases::OpenId {
    match mgr
        .open(&OpenRequest::new(
            file_id(path),
            remote(),
            Access::READ_WRITE,
        ))
        .unwrap()
    {
        OpenOutcome::Opened(g) => g.open,
        OpenOutcome::Wait(_) => panic!("nothing to break"),
    }
}

#[test]
fn local_fcntl_lock_blocks_a_manager_lock() {
    let mgr = LockManager::in_memory();
    let t = TestMount::with_manager(mgr.clone(), |_| {});
    fs::write(t.m("locked"), vec![0u8; 100]).unwrap();
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(t.m("locked"))
        .unwrap();
    fcntl_lock(&f, libc::F_SETLK, libc::F_WRLCK, 10, 20).unwrap();

    let open = remote_open(&mgr, &t.b("locked"));
    let req = |start, len| LockRequest {
        file: file_id(&t.b("locked")),
        owner: LockOwner::Open(open),
        range: ByteRange::new(start, len).unwrap(),
        kind: LockKind::Exclusive,
        wait: false,
    };
    assert!(matches!(
        mgr.lock(&req(25, 10)),
        Err(LockError::Conflict { .. })
    ));
    assert!(
        matches!(mgr.lock(&req(30, 10)), Ok(LockOutcome::Granted)),
        "bytes 30.. are free"
    );

    // POSIX close semantics: closing the descriptor drops the local lock
    drop(f);
    assert!(matches!(mgr.lock(&req(10, 5)), Ok(LockOutcome::Granted)));
}

#[test]
fn manager_lock_blocks_local_fcntl_and_setlkw_waits_without_stalling() {
    let mgr = LockManager::in_memory();
    let t = TestMount::with_manager(mgr.clone(), |_| {});
    fs::write(t.m("locked"), vec![0u8; 100]).unwrap();
    for i in 0..10 {
        fs::write(t.m(&format!("other-{i}")), b"other").unwrap();
    }
    let open = remote_open(&mgr, &t.b("locked"));
    let range = ByteRange::new(0, 50).unwrap();
    let req = LockRequest {
        file: file_id(&t.b("locked")),
        owner: LockOwner::Open(open),
        range,
        kind: LockKind::Exclusive,
        wait: false,
    };
    assert!(matches!(mgr.lock(&req), Ok(LockOutcome::Granted)));

    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(t.m("locked"))
        .unwrap();
    let e = fcntl_lock(&f, libc::F_SETLK, libc::F_WRLCK, 40, 10).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
    let e = fcntl_lock(&f, libc::F_SETLK, libc::F_RDLCK, 0, 1).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
    fcntl_lock(&f, libc::F_SETLK, libc::F_WRLCK, 50, 10).unwrap();
    let got = fcntl_lock(&f, libc::F_GETLK, libc::F_WRLCK, 0, 0).unwrap();
    assert_eq!(got.l_type as i32, libc::F_WRLCK);
    assert_eq!((got.l_start, got.l_len), (0, 50));

    // F_SETLKW parks on its own thread until the other owner unlocks
    let (tx, rx) = mpsc::channel();
    let f2 = f.try_clone().unwrap();
    std::thread::spawn(move || {
        // f2 travels back: closing it would drop the lock (POSIX close semantics)
        let r = fcntl_lock(&f2, libc::F_SETLKW, libc::F_WRLCK, 0, 10).map(drop);
        let _ = tx.send((r, f2));
    });
    stat_many(&t, 1000);
    std::thread::sleep(Duration::from_millis(200));
    assert!(matches!(rx.try_recv(), Err(mpsc::TryRecvError::Empty)));
    mgr.unlock(file_id(&t.b("locked")), LockOwner::Open(open), range)
        .unwrap();
    let (r, f2) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("F_SETLKW returned after the unlock");
    r.expect("lock granted");
    // now the remote owner is the one refused
    assert!(matches!(mgr.lock(&req), Err(LockError::Conflict { .. })));
    drop(f2);
    assert!(
        matches!(mgr.lock(&req), Ok(LockOutcome::Granted)),
        "close released it"
    );
    drop(f);
}

/// FUSE cannot abandon a request the daemon has read: a process killed while its open
/// waits for a break stays until the open is answered, then exits, and the kernel's
/// RELEASE unregisters the open.
#[test]
fn a_process_killed_while_its_open_waits_leaves_no_open_behind() {
    let mgr = manager(Duration::from_secs(600));
    let t = TestMount::with_manager(mgr.clone(), |_| {});
    fs::write(t.b("leased"), b"x").unwrap();
    let (rec, _grant) = hold_rwh(&mgr, &t.b("leased"));
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("echo local >> {}", t.m("leased").display()))
        .spawn()
        .unwrap();
    let notice = rec.wait_for_notice();
    child.kill().unwrap();
    mgr.ack_break(CLIENT, KEY, notice.to).unwrap();
    child.wait().unwrap();
    let file = file_id(&t.b("leased"));
    let local_opens = |mgr: &LockManager| {
        mgr.view()
            .opens
            .iter()
            .filter(|o| o.file == file && o.owner.protocol == Protocol::Local)
            .count()
    };
    // RELEASE is sent asynchronously after the process exits: poll for it (bounded)
    let t0 = std::time::Instant::now();
    while local_opens(&mgr) > 0 && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        local_opens(&mgr),
        0,
        "the dead process's open was left registered"
    );
    assert_eq!(
        fs::read(t.b("leased")).unwrap(),
        b"x",
        "nothing was written"
    );
}
