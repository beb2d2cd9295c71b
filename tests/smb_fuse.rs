//! One `leasefs serve --mount`: a file written over SMB reads back identically through the
//! FUSE mount and vice versa, and an SMB byte-range lock and the mount share one lock
//! manager. Needs root and /dev/fuse (CI runs as root).

mod smb_common;

use smb_common::{random_bytes, Server};

fn run(srv: &Server, cmds: &str, cwd: &std::path::Path) -> String {
    let a = Server::user_auth();
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    let (ok, out) = srv.smbclient("SMB3_11", &a, cmds, cwd);
    assert!(ok, "smbclient -c {cmds:?} failed:\n{out}");
    out
}

#[test]
fn smb_and_fuse_see_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("share")).unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mnt_s = mnt.to_str().unwrap().to_string();
    let srv = Server::start_in(dir, &["--mount", &mnt_s]);
    let local = tempfile::tempdir().unwrap();

    // SMB -> FUSE
    let a = random_bytes(2 * 1024 * 1024 + 7, 11);
    std::fs::write(local.path().join("a.bin"), &a).unwrap();
    run(&srv, "put a.bin from_smb.bin", local.path());
    assert_eq!(
        std::fs::read(mnt.join("from_smb.bin")).unwrap(),
        a,
        "SMB write not seen through the mount"
    );

    // FUSE -> SMB
    let b = random_bytes(1024 * 1024 + 3, 12);
    std::fs::write(mnt.join("from_fuse.bin"), &b).unwrap();
    run(&srv, "get from_fuse.bin got.bin", local.path());
    assert_eq!(
        std::fs::read(local.path().join("got.bin")).unwrap(),
        b,
        "mount write not seen over SMB"
    );
    assert_eq!(
        std::fs::read(srv.backing().join("from_fuse.bin")).unwrap(),
        b
    );

    // A directory made through the mount lists over SMB; one made over SMB shows in the mount.
    std::fs::create_dir(mnt.join("made_locally")).unwrap();
    let listing = run(&srv, "mkdir made_remotely; ls", local.path());
    assert!(listing.contains("made_locally"), "{listing}");
    assert!(mnt.join("made_remotely").is_dir());
}
