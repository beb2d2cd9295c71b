//! `leasefs serve --mount` with the mount's long attribute cache (30 s): changes made over
//! SMB show through the mount at once, because the SMB server's change events invalidate
//! the kernel's cached names and attributes.

mod smb_common;

use smb_common::Server;
use std::path::Path;

/// Invalidation runs on its own thread right after the SMB server publishes the change,
/// so give it a moment (far below the 30 s cache) before calling the mount stale.
fn soon(what: &str, ok: impl Fn() -> bool) {
    let t0 = std::time::Instant::now();
    while !ok() {
        assert!(t0.elapsed() < std::time::Duration::from_secs(2), "{what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn smb(srv: &Server, cmds: &str, cwd: &Path) {
    let a = Server::user_auth();
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    let (ok, out) = srv.smbclient("SMB3_11", &a, cmds, cwd);
    assert!(ok, "smbclient -c {cmds:?} failed:\n{out}");
}

#[test]
fn smb_changes_invalidate_the_mounts_caches() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("share")).unwrap();
    std::fs::write(dir.path().join("share").join("grow.txt"), b"short").unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mnt_s = mnt.to_str().unwrap().to_string();
    let srv = Server::start_in(dir, &["--mount", &mnt_s, "--attr-timeout", "30"]);
    let local = tempfile::tempdir().unwrap();

    // Prime the kernel's caches: the size of grow.txt, and a negative entry for new.txt.
    assert_eq!(std::fs::metadata(mnt.join("grow.txt")).unwrap().len(), 5);
    assert!(std::fs::metadata(mnt.join("new.txt")).is_err());
    assert!(std::fs::metadata(mnt.join("gone.txt")).is_err());

    let long = b"a much longer content than before\n".repeat(100);
    std::fs::write(local.path().join("long.txt"), &long).unwrap();
    smb(
        &srv,
        "put long.txt grow.txt; put long.txt new.txt",
        local.path(),
    );
    soon("stale size through the mount", || {
        std::fs::metadata(mnt.join("grow.txt"))
            .map(|m| m.len())
            .ok()
            == Some(long.len() as u64)
    });
    assert_eq!(std::fs::read(mnt.join("grow.txt")).unwrap(), long);
    soon("stale negative entry through the mount", || {
        std::fs::metadata(mnt.join("new.txt")).is_ok()
    });
    assert_eq!(std::fs::read(mnt.join("new.txt")).unwrap(), long);

    smb(&srv, "rename new.txt gone.txt", local.path());
    soon("renamed-away name still visible", || {
        std::fs::metadata(mnt.join("new.txt")).is_err()
    });
    assert_eq!(std::fs::read(mnt.join("gone.txt")).unwrap(), long);
    smb(&srv, "del gone.txt", local.path());
    soon("deleted file still visible", || {
        std::fs::metadata(mnt.join("gone.txt")).is_err()
    });
}
