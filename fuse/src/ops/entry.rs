//! Names: lookup, creation of nodes, unlink/rmdir, rename, link, readlink.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;

use fuser::{Errno, INodeNo, RenameFlags, ReplyData, ReplyEmpty, ReplyEntry, Request};

use crate::creds::{create_as, owner_after_retry};
use crate::fs::{errno, Fs};
use crate::inode::{BackingKey, Inode};
use crate::mediation::Gate;
use crate::sys::{self, cvt};

impl Fs {
    pub fn lookup(&self, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = (|| {
            let parent = self.inode(parent)?;
            let name = sys::cstr(name).map_err(errno)?;
            self.lookup_node(&parent, &name).map_err(errno)
        })();
        match r {
            Ok((node, st)) => self.reply_entry(reply, &node, &st),
            Err(e) => reply.error(e),
        }
    }

    /// Creates a node with `make` acting as the caller, then looks it up.
    fn make_node(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        reply: ReplyEntry,
        make: impl Fn(&Inode, &std::ffi::CStr) -> std::io::Result<()>,
    ) {
        let r = (|| {
            let parent = self.inode(parent)?;
            let cname = sys::cstr(name).map_err(errno)?;
            self.mediator.before_create_child(parent.key);
            let (uid, gid) = (req.uid(), req.gid());
            let ((), retried) = create_as(uid, gid, || make(&parent, &cname)).map_err(errno)?;
            if retried {
                let pmode = self.stat(&parent).map_err(errno)?.st_mode;
                let (u, g) = owner_after_retry(uid, gid, pmode);
                cvt(unsafe {
                    libc::fchownat(
                        parent.fd_raw(),
                        cname.as_ptr(),
                        u,
                        g,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                })
                .map_err(errno)?;
            }
            self.lookup_node(&parent, &cname).map_err(errno)
        })();
        match r {
            Ok((node, st)) => self.reply_entry(reply, &node, &st),
            Err(e) => reply.error(e),
        }
    }

    pub fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.make_node(req, parent, name, reply, |p, n| {
            cvt(unsafe { libc::mknodat(p.fd_raw(), n.as_ptr(), mode, rdev as libc::dev_t) })
                .map(drop)
        })
    }

    pub fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        reply: ReplyEntry,
    ) {
        self.make_node(req, parent, name, reply, |p, n| {
            cvt(unsafe { libc::mkdirat(p.fd_raw(), n.as_ptr(), mode) }).map(drop)
        })
    }

    pub fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let target = match sys::cstr(target.as_os_str()) {
            Ok(t) => t,
            Err(e) => return reply.error(errno(e)),
        };
        self.make_node(req, parent, name, reply, |p, n| {
            cvt(unsafe { libc::symlinkat(target.as_ptr(), p.fd_raw(), n.as_ptr()) }).map(drop)
        })
    }

    pub fn readlink(&self, ino: INodeNo, reply: ReplyData) {
        let r = (|| {
            let node = self.inode(ino)?;
            let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
            let n = cvt(unsafe {
                libc::readlinkat(
                    node.fd_raw(),
                    sys::EMPTY.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            })
            .map_err(errno)?;
            buf.truncate(n as usize);
            Ok(buf)
        })();
        match r {
            Ok(buf) => reply.data(&buf),
            Err(e) => reply.error(e),
        }
    }

    /// Identity of `name` in `parent` without following a final symlink.
    fn key_of(parent: &Inode, name: &std::ffi::CStr) -> Result<BackingKey, Errno> {
        sys::fstatat(parent.fd(), name, libc::AT_SYMLINK_NOFOLLOW)
            .map(|st| BackingKey::of(&st))
            .map_err(errno)
    }

    /// UNLINK and RMDIR: holders of handle caching on the file (or of leases on the
    /// directory) are broken before the name goes away (DESIGN: unlink → break H and W).
    pub fn remove(self: &Arc<Self>, parent: INodeNo, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        let prep = (|| {
            let parent = self.inode(parent)?;
            let cname = sys::cstr(name).map_err(errno)?;
            let key = Self::key_of(&parent, &cname)?;
            Ok((parent, cname, key))
        })();
        let (parent, cname, key) = match prep {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let pkey = parent.key;
        let gate = self.mediator.before_unlink(key, pkey);
        self.gated(
            gate,
            move |fs| fs.mediator.before_unlink(key, pkey),
            move |_fs, ()| {
                let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
                match cvt(unsafe { libc::unlinkat(parent.fd_raw(), cname.as_ptr(), flags) }) {
                    Ok(_) => reply.ok(),
                    Err(e) => reply.error(errno(e)),
                }
            },
        );
    }

    pub fn rename(
        self: &Arc<Self>,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let prep = (|| {
            let from = self.inode(parent)?;
            let to = self.inode(newparent)?;
            let cname = sys::cstr(name).map_err(errno)?;
            let cnew = sys::cstr(newname).map_err(errno)?;
            let src = Self::key_of(&from, &cname)?;
            // The name being replaced (or, for RENAME_EXCHANGE, moved) loses its entry too.
            let dst = Self::key_of(&to, &cnew).ok();
            Ok((from, to, cname, cnew, src, dst))
        })();
        let (from, to, cname, cnew, src, dst) = match prep {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let (fk, tk) = (from.key, to.key);
        let exchange = flags.contains(RenameFlags::RENAME_EXCHANGE);
        let check = move |fs: &Fs| -> Gate<()> {
            if let Gate::Wait(w) = fs.mediator.before_rename(src, fk, tk) {
                return Gate::Wait(w);
            }
            match dst {
                Some(d) if d != src && exchange => fs.mediator.before_rename(d, tk, fk),
                Some(d) if d != src => fs.mediator.before_unlink(d, tk),
                _ => Gate::Ready(()),
            }
        };
        let gate = check(self);
        self.gated(gate, check, move |fs, ()| {
            let r = cvt(unsafe {
                libc::renameat2(
                    from.fd_raw(),
                    cname.as_ptr(),
                    to.fd_raw(),
                    cnew.as_ptr(),
                    flags.bits(),
                )
            });
            match r {
                Ok(_) => {
                    // The moved node's directory leases are now those of its new parent.
                    if let Some(n) = fs.inodes.by_key(src) {
                        n.set_parent(tk);
                    }
                    if exchange {
                        if let Some(n) = dst.and_then(|d| fs.inodes.by_key(d)) {
                            n.set_parent(fk);
                        }
                    }
                    reply.ok()
                }
                Err(e) => reply.error(errno(e)),
            }
        });
    }

    pub fn link(&self, ino: INodeNo, newparent: INodeNo, newname: &OsStr, reply: ReplyEntry) {
        let r = (|| {
            let node = self.inode(ino)?;
            let parent = self.inode(newparent)?;
            let cname = sys::cstr(newname).map_err(errno)?;
            self.mediator.before_create_child(parent.key);
            // linkat(AT_EMPTY_PATH) on the O_PATH handle links the very inode, whatever
            // name it has now.
            cvt(unsafe {
                libc::linkat(
                    node.fd_raw(),
                    sys::EMPTY.as_ptr(),
                    parent.fd_raw(),
                    cname.as_ptr(),
                    libc::AT_EMPTY_PATH,
                )
            })
            .map_err(errno)?;
            self.lookup_node(&parent, &cname).map_err(errno)
        })();
        match r {
            Ok((node, st)) => self.reply_entry(reply, &node, &st),
            Err(e) => reply.error(e),
        }
    }
}
