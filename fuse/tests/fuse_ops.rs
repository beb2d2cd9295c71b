//! File operations through a real mount, compared with the backing directory.

mod common;

use std::ffi::CString;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{is_mounted, TestMount};

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn both(tweak: impl Fn(&mut leasefs_fuse::MountConfig)) -> Vec<TestMount> {
    vec![
        TestMount::new(|c| {
            c.passthrough = true;
            tweak(c)
        }),
        TestMount::new(|c| {
            c.passthrough = false;
            tweak(c)
        }),
    ]
}

#[test]
fn write_read_and_backing_agree() {
    for t in both(|_| {}) {
        fs::write(t.m("a.txt"), b"hello world").unwrap();
        assert_eq!(fs::read(t.b("a.txt")).unwrap(), b"hello world");
        assert_eq!(fs::read(t.m("a.txt")).unwrap(), b"hello world");

        // append, overwrite in the middle, O_TRUNC
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(t.m("a.txt"))
            .unwrap();
        f.write_all(b"!!").unwrap();
        drop(f);
        assert_eq!(fs::read(t.b("a.txt")).unwrap(), b"hello world!!");
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(t.m("a.txt"))
            .unwrap();
        f.seek(SeekFrom::Start(6)).unwrap();
        f.write_all(b"WORLD").unwrap();
        drop(f);
        assert_eq!(fs::read(t.m("a.txt")).unwrap(), b"hello WORLD!!");
        fs::write(t.m("a.txt"), b"x").unwrap();
        assert_eq!(fs::read(t.b("a.txt")).unwrap(), b"x");

        // a large file crosses many requests
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(t.m("big"), &big).unwrap();
        assert_eq!(fs::read(t.b("big")).unwrap(), big);
        let mut back = Vec::new();
        fs::File::open(t.m("big"))
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, big);

        // created through the backing dir, seen through the mount
        fs::write(t.b("from-backing"), b"b").unwrap();
        assert_eq!(fs::read(t.m("from-backing")).unwrap(), b"b");
    }
}

#[test]
fn directories_names_and_links() {
    for t in both(|_| {}) {
        fs::create_dir(t.m("d")).unwrap();
        fs::create_dir_all(t.m("d/e/f")).unwrap();
        assert!(t.b("d/e/f").is_dir());
        fs::write(t.m("d/e/f/file"), b"1").unwrap();
        fs::rename(t.m("d/e"), t.m("moved")).unwrap();
        assert_eq!(fs::read(t.b("moved/f/file")).unwrap(), b"1");
        assert!(!t.b("d/e").exists());

        fs::hard_link(t.m("moved/f/file"), t.m("hard")).unwrap();
        let (a, b) = (
            fs::metadata(t.m("hard")).unwrap(),
            fs::metadata(t.m("moved/f/file")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino());
        assert_eq!(a.nlink(), 2);
        assert_eq!(fs::metadata(t.b("hard")).unwrap().nlink(), 2);

        std::os::unix::fs::symlink("moved/f/file", t.m("sym")).unwrap();
        assert_eq!(
            fs::read_link(t.m("sym")).unwrap(),
            Path::new("moved/f/file")
        );
        assert_eq!(
            fs::read_link(t.b("sym")).unwrap(),
            Path::new("moved/f/file")
        );
        assert_eq!(fs::read(t.m("sym")).unwrap(), b"1");
        assert!(fs::symlink_metadata(t.m("sym"))
            .unwrap()
            .file_type()
            .is_symlink());

        let mut names: Vec<_> = fs::read_dir(t.mnt_path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mut native: Vec<_> = fs::read_dir(t.backing.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        native.sort();
        assert_eq!(names, native);
        assert_eq!(names, ["d", "hard", "moved", "sym"]);

        // many entries: several readdir rounds
        fs::create_dir(t.m("many")).unwrap();
        for i in 0..600 {
            fs::write(t.m(&format!("many/file-with-a-longish-name-{i:04}")), b"").unwrap();
        }
        assert_eq!(fs::read_dir(t.m("many")).unwrap().count(), 600);

        fs::remove_file(t.m("hard")).unwrap();
        assert!(!t.b("hard").exists());
        assert_eq!(fs::metadata(t.m("moved/f/file")).unwrap().nlink(), 1);
        assert_eq!(
            fs::remove_dir(t.m("moved")).unwrap_err().raw_os_error(),
            Some(libc::ENOTEMPTY)
        );
        fs::remove_dir_all(t.m("moved")).unwrap();
        assert!(!t.b("moved").exists());
    }
}

#[test]
fn rename_flags() {
    for t in both(|_| {}) {
        fs::write(t.m("x"), b"x").unwrap();
        fs::write(t.m("y"), b"y").unwrap();
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                c(&t.m("x")).as_ptr(),
                libc::AT_FDCWD,
                c(&t.m("y")).as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        assert_eq!(r, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EEXIST)
        );
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                c(&t.m("x")).as_ptr(),
                libc::AT_FDCWD,
                c(&t.m("y")).as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        assert_eq!(r, 0);
        assert_eq!(fs::read(t.b("x")).unwrap(), b"y");
        assert_eq!(fs::read(t.b("y")).unwrap(), b"x");
        assert_eq!(fs::read(t.m("x")).unwrap(), b"y");
        fs::rename(t.m("x"), t.m("y")).unwrap();
        assert_eq!(fs::read(t.b("y")).unwrap(), b"y");
        assert!(!t.m("x").exists());
    }
}

#[test]
fn attributes_and_xattrs() {
    for t in both(|_| {}) {
        fs::write(t.m("f"), b"0123456789").unwrap();
        fs::set_permissions(t.m("f"), fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(fs::metadata(t.b("f")).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(fs::metadata(t.m("f")).unwrap().mode() & 0o7777, 0o640);

        std::os::unix::fs::chown(t.m("f"), Some(1234), Some(4321)).unwrap();
        let md = fs::metadata(t.b("f")).unwrap();
        assert_eq!((md.uid(), md.gid()), (1234, 4321));
        assert_eq!(fs::metadata(t.m("f")).unwrap().uid(), 1234);

        // truncate by path and through a handle
        let f = fs::OpenOptions::new().write(true).open(t.m("f")).unwrap();
        f.set_len(4).unwrap();
        drop(f);
        assert_eq!(fs::read(t.b("f")).unwrap(), b"0123");
        let r = unsafe { libc::truncate(c(&t.m("f")).as_ptr(), 2) };
        assert_eq!(r, 0);
        assert_eq!(fs::metadata(t.b("f")).unwrap().len(), 2);
        assert_eq!(fs::metadata(t.m("f")).unwrap().len(), 2);

        // times
        let times = [
            libc::timespec {
                tv_sec: 1_000_000,
                tv_nsec: 5,
            },
            libc::timespec {
                tv_sec: 2_000_000,
                tv_nsec: 7,
            },
        ];
        let r =
            unsafe { libc::utimensat(libc::AT_FDCWD, c(&t.m("f")).as_ptr(), times.as_ptr(), 0) };
        assert_eq!(r, 0);
        let md = fs::metadata(t.b("f")).unwrap();
        assert_eq!(
            (md.atime(), md.mtime(), md.mtime_nsec()),
            (1_000_000, 2_000_000, 7)
        );
        assert_eq!(fs::metadata(t.m("f")).unwrap().mtime(), 2_000_000);

        // xattrs
        let name = c"user.leasefs";
        let r = unsafe {
            libc::setxattr(
                c(&t.m("f")).as_ptr(),
                name.as_ptr(),
                b"v1".as_ptr().cast(),
                2,
                0,
            )
        };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        let mut buf = [0u8; 16];
        let n = unsafe {
            libc::getxattr(
                c(&t.b("f")).as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                16,
            )
        };
        assert_eq!(&buf[..n as usize], b"v1");
        let n = unsafe {
            libc::getxattr(
                c(&t.m("f")).as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                16,
            )
        };
        assert_eq!(&buf[..n as usize], b"v1");
        let n = unsafe { libc::listxattr(c(&t.m("f")).as_ptr(), buf.as_mut_ptr().cast(), 16) };
        assert_eq!(&buf[..n as usize], b"user.leasefs\0");
        assert_eq!(
            unsafe { libc::removexattr(c(&t.m("f")).as_ptr(), name.as_ptr()) },
            0
        );
        let n = unsafe {
            libc::getxattr(
                c(&t.b("f")).as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                16,
            )
        };
        assert_eq!(n, -1);

        // statfs matches the backing filesystem
        let mut a: libc::statvfs = unsafe { std::mem::zeroed() };
        let mut b: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(
            unsafe { libc::statvfs(c(t.mnt_path()).as_ptr(), &mut a) },
            0
        );
        assert_eq!(
            unsafe { libc::statvfs(c(t.backing.path()).as_ptr(), &mut b) },
            0
        );
        assert_eq!((a.f_blocks, a.f_bsize), (b.f_blocks, b.f_bsize));

        // special files
        let r = unsafe { libc::mkfifo(c(&t.m("fifo")).as_ptr(), 0o600) };
        assert_eq!(r, 0);
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(
            &fs::metadata(t.b("fifo")).unwrap().file_type()
        ));
    }
}

#[test]
fn fallocate_lseek_copy_range_fsync() {
    for t in both(|_| {}) {
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(t.m("sparse"))
            .unwrap();
        use std::os::fd::AsRawFd;
        assert_eq!(unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, 8192) }, 0);
        assert_eq!(fs::metadata(t.b("sparse")).unwrap().len(), 8192);
        f.sync_all().unwrap();
        f.sync_data().unwrap();
        // data at 1 MiB, a hole before it
        use std::os::unix::fs::FileExt;
        f.write_all_at(b"data", 1 << 20).unwrap();
        let off = unsafe { libc::lseek(f.as_raw_fd(), 8192, libc::SEEK_DATA) };
        assert_eq!(off, 1 << 20);
        drop(f);

        fs::write(t.m("src"), vec![7u8; 100_000]).unwrap();
        fs::copy(t.m("src"), t.m("dst")).unwrap();
        assert_eq!(fs::read(t.b("dst")).unwrap(), vec![7u8; 100_000]);
    }
}

#[test]
fn open_handles_survive_renames_behind_the_mount() {
    let t = TestMount::new(|c| c.attr_timeout = std::time::Duration::from_millis(0));
    fs::write(t.m("f"), b"abc").unwrap();
    let mut f = fs::File::open(t.m("f")).unwrap();
    fs::rename(t.b("f"), t.b("g")).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "abc");
    assert_eq!(fs::read(t.m("g")).unwrap(), b"abc");
    assert!(!t.m("f").exists());
}

#[test]
fn unmount_leaves_no_mount() {
    let t = TestMount::new(|_| {});
    let mnt = t.mnt_path().canonicalize().unwrap();
    assert!(is_mounted(&mnt));
    drop(t);
    assert!(!is_mounted(&mnt));
}

#[test]
fn busy_mount_still_unmounts() {
    let mut t = TestMount::new(|_| {});
    let mnt = t.mnt_path().canonicalize().unwrap();
    fs::write(t.m("f"), b"x").unwrap();
    let held = fs::File::open(t.m("f")).unwrap();
    t.handle.take().unwrap().unmount().unwrap();
    assert!(!is_mounted(&mnt));
    drop(held);
}

#[test]
fn kernel_passthrough_is_used_when_offered() {
    let t = TestMount::new(|c| c.passthrough = true);
    fs::write(t.m("f"), b"through the kernel").unwrap();
    assert_eq!(fs::read(t.m("f")).unwrap(), b"through the kernel");
    assert!(
        t.handle.as_ref().unwrap().passthrough_active(),
        "kernel 6.9+ offers FUSE_PASSTHROUGH; registering a backing must have worked"
    );
    let t = TestMount::new(|c| c.passthrough = false);
    fs::write(t.m("f"), b"x").unwrap();
    assert!(!t.handle.as_ref().unwrap().passthrough_active());
}

#[test]
fn changes_behind_the_mount_show_after_invalidation() {
    // long timeouts: without the notice the kernel would serve the cached size and name
    let t = TestMount::new(|c| c.attr_timeout = std::time::Duration::from_secs(600));
    fs::write(t.m("f"), b"short").unwrap();
    assert_eq!(fs::metadata(t.m("f")).unwrap().len(), 5);
    fs::write(t.m("g"), b"old g").unwrap();
    assert_eq!(fs::read(t.m("g")).unwrap(), b"old g");
    // another front end (SMB) writes one backing file and replaces another name
    fs::write(t.b("f"), b"much longer now").unwrap();
    fs::write(t.b("g.tmp"), b"new g").unwrap();
    fs::rename(t.b("g.tmp"), t.b("g")).unwrap();
    // the kernel still serves what it cached
    assert_eq!(fs::metadata(t.m("f")).unwrap().len(), 5);
    assert_eq!(fs::read(t.m("g")).unwrap(), b"old g");

    let inv = t.handle.as_ref().unwrap().invalidator().unwrap();
    let md = fs::metadata(t.b("f")).unwrap();
    inv.file_changed(leasefs_leases::FileId::new(md.dev(), md.ino()));
    assert_eq!(fs::metadata(t.m("f")).unwrap().len(), 15);
    assert_eq!(fs::read(t.m("f")).unwrap(), b"much longer now");
    let root = fs::metadata(t.backing.path()).unwrap();
    inv.name_changed(
        leasefs_leases::FileId::new(root.dev(), root.ino()),
        std::ffi::OsStr::new("g"),
    );
    assert_eq!(fs::read(t.m("g")).unwrap(), b"new g");
}

/// Runs `sh -c script` as uid/gid 1 (daemon) with supplementary group 4242.
fn as_user_with_group(script: &str) -> std::process::ExitStatus {
    std::process::Command::new("setpriv")
        .args([
            "--reuid=1",
            "--regid=1",
            "--groups=4242",
            "sh",
            "-c",
            script,
        ])
        .status()
        .expect("setpriv (util-linux)")
}

#[test]
fn other_users_create_as_themselves_also_through_supplementary_groups() {
    let t = TestMount::new(|c| c.allow_other = true);
    fs::create_dir(t.m("shared")).unwrap();
    std::os::unix::fs::chown(t.m("shared"), Some(0), Some(4242)).unwrap();
    fs::set_permissions(t.m("shared"), fs::Permissions::from_mode(0o775)).unwrap();
    let d = t.m("shared");
    let st = as_user_with_group(&format!(
        "echo x > {0}/file && mkdir {0}/dir && ln -s file {0}/sym && mkfifo {0}/fifo",
        d.display()
    ));
    assert!(st.success());
    for name in ["file", "dir", "sym", "fifo"] {
        let md = fs::symlink_metadata(t.b(&format!("shared/{name}"))).unwrap();
        assert_eq!((md.uid(), md.gid()), (1, 1), "{name}");
    }
    // without the group's write permission the kernel refuses, as on a local filesystem
    fs::set_permissions(t.m("shared"), fs::Permissions::from_mode(0o755)).unwrap();
    assert!(!as_user_with_group(&format!("echo x > {}/denied 2>/dev/null", d.display())).success());
    assert!(!t.b("shared/denied").exists());
}
