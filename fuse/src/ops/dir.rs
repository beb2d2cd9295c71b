//! Directory streams: opendir, readdir, readdirplus, releasedir, fsyncdir.
//!
//! Offsets handed to the kernel are the backing filesystem's own `d_off` cookies, so a
//! stream resumes with one `lseek` wherever the kernel's buffer filled up.

use std::ffi::{CStr, OsStr};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use fuser::{
    Errno, FileHandle, FopenFlags, Generation, INodeNo, OpenFlags, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyOpen,
};
use parking_lot::Mutex;

use crate::attr::{dirent_type, file_type, to_attr};
use crate::fs::{errno, Fs};
use crate::handles::{DirHandle, Handle};
use crate::inode::BackingKey;
use crate::sys::{self, cvt};

struct Entry<'a> {
    ino: u64,
    next: u64,
    d_type: u8,
    name: &'a CStr,
}

/// Walks the stream from `offset`, calling `each` until it reports a full reply buffer.
fn walk(
    f: &std::fs::File,
    offset: u64,
    mut each: impl FnMut(Entry<'_>) -> bool,
) -> std::io::Result<()> {
    let fd = f.as_raw_fd();
    cvt(unsafe { libc::lseek64(fd, offset as i64, libc::SEEK_SET) })?;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n =
            cvt(unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) })?;
        if n == 0 {
            return Ok(());
        }
        let mut pos = 0usize;
        while pos < n as usize {
            // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            let rec = &buf[pos..];
            let ino = u64::from_ne_bytes(rec[0..8].try_into().expect("8 bytes"));
            let next = i64::from_ne_bytes(rec[8..16].try_into().expect("8 bytes")) as u64;
            let reclen = u16::from_ne_bytes(rec[16..18].try_into().expect("2 bytes")) as usize;
            let d_type = rec[18];
            let name = CStr::from_bytes_until_nul(&rec[19..reclen])
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EIO))?;
            if each(Entry {
                ino,
                next,
                d_type,
                name,
            }) {
                return Ok(());
            }
            pos += reclen;
        }
    }
}

impl Fs {
    fn dir(&self, fh: FileHandle) -> Result<std::sync::Arc<Handle>, Errno> {
        self.handles
            .get(fh.0)
            .filter(|h| h.as_dir().is_some())
            .ok_or(Errno::EBADF)
    }

    pub fn opendir(&self, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = (|| {
            let node = self.inode(ino)?;
            let f = self
                .reopen(&node, libc::O_RDONLY | libc::O_DIRECTORY)
                .map_err(errno)?;
            Ok(self.handles.insert(Handle::Dir(DirHandle {
                inode: node,
                stream: Mutex::new(f),
            })))
        })();
        match r {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    pub fn readdir(&self, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let h = match self.dir(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let d = h.as_dir().expect("dir");
        let dev = d.inode.key.dev;
        let stream = d.stream.lock();
        let r = walk(&stream, offset, |e| {
            let kind = dirent_type(e.d_type).unwrap_or_else(|| {
                sys::fstatat(d.inode.fd(), e.name, libc::AT_SYMLINK_NOFOLLOW)
                    .map(|st| file_type(st.st_mode))
                    .unwrap_or(fuser::FileType::RegularFile)
            });
            // Report the node id a stat would show, where the kernel knows the file.
            let ino = self
                .inodes
                .by_key(BackingKey { dev, ino: e.ino })
                .map_or(e.ino, |n| n.nodeid);
            reply.add(
                INodeNo(ino),
                e.next,
                kind,
                OsStr::from_bytes(e.name.to_bytes()),
            )
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    pub fn readdirplus(&self, fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        let h = match self.dir(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let d = h.as_dir().expect("dir");
        let dir_st = match self.stat(&d.inode) {
            Ok(st) => st,
            Err(e) => return reply.error(errno(e)),
        };
        let stream = d.stream.lock();
        let mut failed = None;
        let mut added = 0usize;
        let r = walk(&stream, offset, |e| {
            let name = OsStr::from_bytes(e.name.to_bytes());
            if e.name == c"." || e.name == c".." {
                // The kernel takes no reference for these (fuse_direntplus_link).
                let attr = to_attr(d.inode.nodeid, &dir_st);
                added += 1;
                return reply.add(
                    INodeNo(e.ino),
                    e.next,
                    name,
                    &self.ttl,
                    &attr,
                    Generation(0),
                );
            }
            match self.lookup_node(&d.inode, e.name) {
                Ok((node, st)) => {
                    let attr = to_attr(node.nodeid, &st);
                    let full = reply.add(
                        INodeNo(node.nodeid),
                        e.next,
                        name,
                        &self.ttl,
                        &attr,
                        Generation(0),
                    );
                    if full {
                        // not sent: give back the reference the lookup took
                        self.inodes.forget(node.nodeid, 1);
                    } else {
                        added += 1;
                    }
                    full
                }
                // vanished since getdents: skip it
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => false,
                Err(err) => {
                    failed = Some(err);
                    true
                }
            }
        });
        match (r, failed) {
            (Err(e), _) => reply.error(errno(e)),
            (Ok(()), Some(e)) if added == 0 => reply.error(errno(e)),
            _ => reply.ok(),
        }
    }

    pub fn releasedir(&self, fh: FileHandle, reply: ReplyEmpty) {
        self.handles.remove(fh.0);
        reply.ok()
    }

    pub fn fsyncdir(&self, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        let r = self.dir(fh).and_then(|h| {
            let f = h.as_dir().expect("dir").stream.lock();
            if datasync {
                f.sync_data()
            } else {
                f.sync_all()
            }
            .map_err(errno)
        });
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
