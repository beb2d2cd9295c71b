//! Attributes: getattr, setattr (mode, owner, size, times), statfs, access.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;

use fuser::{
    AccessFlags, Errno, FileHandle, INodeNo, ReplyAttr, ReplyEmpty, ReplyStatfs, Request, TimeOrNow,
};

use crate::attr::{timespec, to_attr};
use crate::fs::{errno, Fs};
use crate::handles::Handle;
use crate::inode::Inode;
use crate::sys::{self, cvt};

/// The parts of a SETATTR request this filesystem applies.
pub struct Change {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeOrNow>,
    pub mtime: Option<TimeOrNow>,
    pub fh: Option<FileHandle>,
}

fn time_spec(t: Option<TimeOrNow>) -> libc::timespec {
    match t {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(TimeOrNow::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(TimeOrNow::SpecificTime(t)) => timespec(t),
    }
}

impl Fs {
    pub fn getattr(&self, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = (|| {
            let node = self.inode(ino)?;
            let st = match fh.and_then(|fh| self.handles.file(fh.0)) {
                Some(h) => sys::fstat(h.as_file().expect("file").file.as_fd()),
                None => self.stat(&node),
            }
            .map_err(errno)?;
            Ok(to_attr(node.nodeid, &st))
        })();
        match r {
            Ok(a) => reply.attr(&self.ttl, &a),
            Err(e) => reply.error(e),
        }
    }

    pub fn setattr(self: &Arc<Self>, ino: INodeNo, c: Change, reply: ReplyAttr) {
        let node = match self.inode(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let handle = c.fh.and_then(|fh| self.handles.file(fh.0));
        if c.size.is_none() {
            return self.apply(&node, handle.as_deref(), &c, reply);
        }
        // A size change through the mount breaks other holders' caching first (DESIGN:
        // truncate / setattr(size) → break to None).
        let key = node.key;
        let gate = self.mediator.before_truncate(key);
        self.gated(
            gate,
            move |fs| fs.mediator.before_truncate(key),
            move |fs, ()| fs.apply(&node, handle.as_deref(), &c, reply),
        );
    }

    fn apply(&self, node: &Inode, handle: Option<&Handle>, c: &Change, reply: ReplyAttr) {
        let file = handle.and_then(Handle::as_file).map(|h| &h.file);
        let r = (|| -> std::io::Result<()> {
            if c.uid.is_some() || c.gid.is_some() {
                let uid = c.uid.unwrap_or(u32::MAX);
                let gid = c.gid.unwrap_or(u32::MAX);
                cvt(unsafe {
                    libc::fchownat(
                        node.fd_raw(),
                        sys::EMPTY.as_ptr(),
                        uid,
                        gid,
                        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                    )
                })?;
            }
            if let Some(mode) = c.mode {
                if node.is_symlink() {
                    return Err(std::io::Error::from_raw_os_error(libc::EOPNOTSUPP));
                }
                self.via_proc(node, |dir, name| {
                    cvt(unsafe { libc::fchmodat(dir, name.as_ptr(), mode & 0o7777, 0) })
                })?;
            }
            if let Some(size) = c.size {
                let size = i64::try_from(size)
                    .map_err(|_| std::io::Error::from_raw_os_error(libc::EFBIG))?;
                let own;
                let f = match file {
                    Some(f) => f,
                    None => {
                        own = self.reopen(node, libc::O_WRONLY)?;
                        &own
                    }
                };
                sys::retry(|| cvt(unsafe { libc::ftruncate64(f.as_raw_fd(), size) }))?;
            }
            if c.atime.is_some() || c.mtime.is_some() {
                let times = [time_spec(c.atime), time_spec(c.mtime)];
                let r = cvt(unsafe {
                    libc::utimensat(
                        node.fd_raw(),
                        sys::EMPTY.as_ptr(),
                        times.as_ptr(),
                        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                    )
                });
                if let Err(e) = r {
                    if e.raw_os_error() != Some(libc::EINVAL) || node.is_symlink() {
                        return Err(e);
                    }
                    self.via_proc(node, |dir, name| {
                        cvt(unsafe { libc::utimensat(dir, name.as_ptr(), times.as_ptr(), 0) })
                    })?;
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            return reply.error(errno(e));
        }
        // Owner, mode, size and times show in the directory listing: SMB directory
        // leases on the parent go, without waiting (DESIGN.md "metadata change").
        if let Some(p) = node.parent() {
            self.mediator.child_changed(p);
        }
        match self.stat(node) {
            Ok(st) => reply.attr(&self.ttl, &to_attr(node.nodeid, &st)),
            Err(e) => reply.error(errno(e)),
        }
    }

    pub fn statfs(&self, ino: INodeNo, reply: ReplyStatfs) {
        let r = self
            .inode(ino)
            .and_then(|n| sys::statvfs(n.fd()).map_err(errno));
        match r {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    /// ACCESS is only sent without `default_permissions`; answer as the caller would be
    /// answered by the backing filesystem.
    pub fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let r = (|| {
            let node = self.inode(ino)?;
            let st = self.stat(&node).map_err(errno)?;
            let mask = mask.bits();
            if mask == libc::F_OK || req.uid() == 0 {
                // root may do anything but execute a file with no x bit at all
                if mask & libc::X_OK != 0 && st.st_mode & 0o111 == 0 && !node.is_dir() {
                    return Err(Errno::EACCES);
                }
                return Ok(());
            }
            let bits = if st.st_uid == req.uid() {
                (st.st_mode >> 6) & 7
            } else if st.st_gid == req.gid() {
                (st.st_mode >> 3) & 7
            } else {
                st.st_mode & 7
            };
            if (mask as u32) & !bits != 0 {
                return Err(Errno::EACCES);
            }
            Ok(())
        })();
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
