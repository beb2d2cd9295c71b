//! End to end: `leasefs serve` on loopback driven by Samba's smbclient.

mod smb_common;

use smb_common::{random_bytes, Server};
use std::io::{Read, Write};

fn auth() -> Vec<String> {
    Server::user_auth()
}

fn run(srv: &Server, proto: &str, cmds: &str, cwd: &std::path::Path) -> String {
    let a = auth();
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    let (ok, out) = srv.smbclient(proto, &a, cmds, cwd);
    assert!(ok, "smbclient -m {proto} -c {cmds:?} failed:\n{out}");
    out
}

fn round_trip(proto: &str) {
    let srv = Server::start(&[]);
    let local = tempfile::tempdir().unwrap();
    let data = random_bytes(3 * 1024 * 1024 + 12345, proto.len() as u64 + 7);
    std::fs::write(local.path().join("up.bin"), &data).unwrap();
    run(
        &srv,
        proto,
        "put up.bin big.bin; get big.bin down.bin",
        local.path(),
    );
    assert_eq!(
        std::fs::read(srv.backing().join("big.bin")).unwrap(),
        data,
        "backing copy differs"
    );
    assert_eq!(
        std::fs::read(local.path().join("down.bin")).unwrap(),
        data,
        "downloaded copy differs"
    );

    run(
        &srv,
        proto,
        "mkdir dir1; rename big.bin dir1\\moved.bin",
        local.path(),
    );
    assert!(srv.backing().join("dir1/moved.bin").is_file());
    assert!(!srv.backing().join("big.bin").exists());
    let listing = run(&srv, proto, "ls dir1\\*", local.path());
    assert!(listing.contains("moved.bin"), "{listing}");
    run(&srv, proto, "del dir1\\moved.bin; rmdir dir1", local.path());
    assert!(!srv.backing().join("dir1").exists());
    let listing = run(&srv, proto, "ls", local.path());
    assert!(!listing.contains("dir1"), "{listing}");
}

#[test]
fn smbclient_smb2_10_round_trip() {
    round_trip("SMB2_10");
}

#[test]
fn smbclient_smb3_round_trip() {
    round_trip("SMB3");
}

#[test]
fn smbclient_smb3_11_round_trip() {
    round_trip("SMB3_11");
}

#[test]
fn wrong_password_is_refused() {
    let srv = Server::start(&[]);
    let local = tempfile::tempdir().unwrap();
    let (ok, out) = srv.smbclient("SMB3_11", &["-U", "alice%wrong"], "ls", local.path());
    assert!(!ok);
    assert!(out.contains("NT_STATUS_LOGON_FAILURE"), "{out}");
    let (ok, out) = srv.smbclient("SMB3_11", &["-U", "mallory%x"], "ls", local.path());
    assert!(!ok, "{out}");
}

#[test]
fn guest_only_with_flag() {
    let local = tempfile::tempdir().unwrap();
    let srv = Server::start(&[]);
    let (ok, out) = srv.smbclient("SMB3", &["-N"], "ls", local.path());
    assert!(!ok, "anonymous accepted without --guest:\n{out}");
    drop(srv);
    let srv = Server::start(&["--guest"]);
    std::fs::write(srv.backing().join("visible.txt"), b"x").unwrap();
    let (ok, out) = srv.smbclient("SMB3", &["-N"], "ls", local.path());
    assert!(ok, "anonymous refused with --guest:\n{out}");
    assert!(out.contains("visible.txt"), "{out}");
}

#[test]
fn names_ignore_case_unless_case_sensitive() {
    let local = tempfile::tempdir().unwrap();
    let a = auth();
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    for (flags, found) in [(&[][..], true), (&["--case-sensitive"][..], false)] {
        let srv = Server::start(flags);
        std::fs::create_dir(srv.backing().join("Docs")).unwrap();
        std::fs::write(srv.backing().join("Docs/Notes.TXT"), b"notes").unwrap();
        let _ = std::fs::remove_file(local.path().join("got.txt"));
        let (ok, out) = srv.smbclient("SMB3_11", &a, "get docs/notes.txt got.txt", local.path());
        assert_eq!(ok, found, "{flags:?}: {out}");
        if found {
            assert_eq!(
                std::fs::read(local.path().join("got.txt")).unwrap(),
                b"notes"
            );
        }
        // A put under another case writes the existing file, or makes a second one.
        std::fs::write(local.path().join("new.txt"), b"new").unwrap();
        let (ok, out) = srv.smbclient("SMB3_11", &a, "put new.txt DOCS/notes.txt", local.path());
        assert_eq!(ok, found, "{flags:?}: {out}");
        let on_disk = std::fs::read(srv.backing().join("Docs/Notes.TXT")).unwrap();
        assert_eq!(on_disk, if found { &b"new"[..] } else { &b"notes"[..] });
    }
}

#[test]
fn read_only_share_refuses_writes() {
    let srv = Server::start(&["--read-only"]);
    std::fs::write(srv.backing().join("keep.txt"), b"keep").unwrap();
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("new.txt"), b"new").unwrap();
    let a = auth();
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    let (ok, out) = srv.smbclient("SMB3_11", &a, "put new.txt new.txt", local.path());
    assert!(!ok, "{out}");
    let (ok, out) = srv.smbclient("SMB3_11", &a, "del keep.txt", local.path());
    assert!(!ok, "{out}");
    let (ok, out) = srv.smbclient("SMB3_11", &a, "mkdir d", local.path());
    assert!(!ok, "{out}");
    assert!(!srv.backing().join("new.txt").exists());
    assert!(!srv.backing().join("d").exists());
    assert_eq!(
        std::fs::read(srv.backing().join("keep.txt")).unwrap(),
        b"keep"
    );
    run(&srv, "SMB3_11", "get keep.txt got.txt", local.path());
    assert_eq!(
        std::fs::read(local.path().join("got.txt")).unwrap(),
        b"keep"
    );
}

#[test]
fn path_escapes_are_refused() {
    let srv = Server::start(&[]);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"TOP SECRET").unwrap();
    std::os::unix::fs::symlink(outside.path(), srv.backing().join("escape")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        srv.backing().join("secret-link"),
    )
    .unwrap();
    std::fs::create_dir(srv.backing().join("inner")).unwrap();
    std::fs::write(srv.backing().join("inner/ok.txt"), b"fine").unwrap();
    std::os::unix::fs::symlink("inner/ok.txt", srv.backing().join("ok-link")).unwrap();
    let local = tempfile::tempdir().unwrap();
    let a = auth();
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    for name in [
        "escape\\secret.txt",
        "secret-link",
        "..\\secret.txt",
        "inner\\..\\..\\secret.txt",
    ] {
        let (ok, out) = srv.smbclient(
            "SMB3_11",
            &a,
            &format!("get {name} stolen.txt"),
            local.path(),
        );
        assert!(!ok, "get {name} succeeded:\n{out}");
        if let Ok(got) = std::fs::read(local.path().join("stolen.txt")) {
            assert_ne!(got, b"TOP SECRET", "{name} leaked the file");
        }
    }
    // Writing through an escaping symlink must not create anything outside.
    std::fs::write(local.path().join("evil.txt"), b"evil").unwrap();
    let (ok, _) = srv.smbclient("SMB3_11", &a, "put evil.txt escape\\evil.txt", local.path());
    assert!(!ok);
    assert!(!outside.path().join("evil.txt").exists());
    // A symlink that stays inside the share still works, and the server is still up.
    run(&srv, "SMB3_11", "get ok-link ok.txt", local.path());
    assert_eq!(std::fs::read(local.path().join("ok.txt")).unwrap(), b"fine");
}

fn connection_is_closed(port: u16, payload: &[u8]) -> bool {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let _ = s.write_all(payload);
    let mut buf = [0u8; 256];
    // The server must hang up (EOF or reset) rather than answer garbage.
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn malformed_frames_close_only_that_connection() {
    let mut srv = Server::start(&[]);
    let local = tempfile::tempdir().unwrap();
    // A second client, connected before the attacks, keeps working afterwards.
    let mut header = vec![0u8, 0, 0, 68];
    header.extend_from_slice(&[0xFE, b'S', b'M', b'B']);
    header.extend_from_slice(&[0u8; 64]); // structure size 0: invalid header
    let oversized = [0u8, 0xFF, 0xFF, 0xFF];
    let not_session = [0x85u8, 0, 0, 0];
    let mut garbage = vec![0u8, 0, 0, 32];
    garbage.extend_from_slice(&[0x41; 32]);
    // A NEGOTIATE whose dialect count runs past the end of the message.
    let mut neg = vec![0u8; 64 + 36];
    neg[0..4].copy_from_slice(&[0xFE, b'S', b'M', b'B']);
    neg[4] = 64;
    neg[64] = 36;
    neg[66] = 0xFF;
    let mut short_neg = (neg.len() as u32).to_be_bytes().to_vec();
    short_neg.extend_from_slice(&neg);
    for (what, p) in [
        ("bad header", &header[..]),
        ("oversized length", &oversized[..]),
        ("non-session NetBIOS frame", &not_session[..]),
        ("garbage", &garbage[..]),
        ("truncated negotiate", &short_neg[..]),
    ] {
        assert!(
            connection_is_closed(srv.port, p),
            "{what}: connection left open"
        );
        assert!(srv.is_running(), "{what}: server died");
    }
    run(&srv, "SMB3_11", "ls", local.path());
}
