//! File I/O: open, create, read, write, flush, release, fsync, fallocate, lseek,
//! copy_file_range.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use fuser::{
    BackingId, CopyFileRangeFlags, Errno, FileHandle, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, ReplyCreate, ReplyData, ReplyEmpty, ReplyLseek, ReplyOpen, ReplyWrite, Request,
};

use crate::attr::to_attr;
use crate::creds::{create_as, owner_after_retry};
use crate::fs::{errno, Fs};
use crate::handles::{FileHandle as Open, Handle};
use crate::inode::Inode;
use crate::mediation::{Gate, LocalOpen, OpenMode};
use crate::passthrough::Backing;
use crate::sys::{self, cvt};

/// How an open was answered: through a kernel passthrough backing or by the daemon.
enum Served {
    Passthrough(Arc<Backing>),
    Daemon(FopenFlags),
}

fn open_mode(flags: i32, passthrough: bool) -> OpenMode {
    let acc = flags & libc::O_ACCMODE;
    OpenMode {
        read: acc != libc::O_WRONLY,
        write: acc != libc::O_RDONLY,
        overwrite: flags & libc::O_TRUNC != 0,
        is_dir: false,
        // The daemon never sees writes the kernel passes through, so nobody else may
        // cache the file while such an open can write (DESIGN, "Local access").
        writes_unseen: passthrough,
    }
}

/// Flags for the daemon's own descriptor: O_DIRECT would make its unaligned buffers fail,
/// and the kernel does direct I/O for the caller already.
fn backing_flags(flags: i32) -> i32 {
    flags & !(libc::O_DIRECT | libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY)
}

impl Fs {
    fn handle(&self, fh: FileHandle) -> Result<Arc<Handle>, Errno> {
        self.handles.file(fh.0).ok_or(Errno::EBADF)
    }

    /// Decides how the open of `node` is served, registering a passthrough backing with
    /// `register` when the kernel can take the I/O.
    fn serve(
        &self,
        node: &Inode,
        write: bool,
        register: impl FnOnce(&File) -> std::io::Result<BackingId>,
    ) -> Served {
        let pt = self.passthrough.enabled() && node.is_reg();
        match self
            .passthrough
            .backing_for(node, write, |f| self.reopen(node, f), register)
        {
            Some(b) => Served::Passthrough(b),
            // The kernel refuses a passthrough open of an inode that has cached (page
            // cache) opens, so while passthrough is on, daemon-served opens bypass the
            // page cache.
            None if pt => Served::Daemon(FopenFlags::FOPEN_DIRECT_IO),
            None => Served::Daemon(FopenFlags::empty()),
        }
    }

    fn add_open(&self, node: Arc<Inode>, file: File, open: LocalOpen, served: &Served) -> u64 {
        let backing = match served {
            Served::Passthrough(b) => Some(b.clone()),
            Served::Daemon(_) => None,
        };
        self.handles.insert(Handle::File(Open {
            inode: node,
            file,
            open,
            _backing: backing,
        }))
    }

    pub fn open(self: &Arc<Self>, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let node = match self.inode(ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let flags = flags.0;
        let mode = open_mode(flags, self.passthrough.enabled() && node.is_reg());
        let key = node.key;
        let gate = self.mediator.open(key, mode);
        self.gated(
            gate,
            move |fs| fs.mediator.open(key, mode),
            move |fs, granted| {
                let open = match granted {
                    Ok(o) => o,
                    Err(e) => return reply.error(e),
                };
                let file = match fs.reopen(&node, backing_flags(flags)) {
                    Ok(f) => f,
                    Err(e) => {
                        fs.mediator.close(open);
                        return reply.error(errno(e));
                    }
                };
                let served = fs.serve(&node, mode.write, |f| reply.open_backing(f));
                let fh = fs.add_open(node, file, open, &served);
                match served {
                    Served::Passthrough(b) => {
                        reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &b.id)
                    }
                    Served::Daemon(f) => reply.opened(FileHandle(fh), f),
                }
            },
        );
    }

    pub fn create(
        self: &Arc<Self>,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let made = (|| {
            let parent = self.inode(parent)?;
            let cname = sys::cstr(name).map_err(errno)?;
            self.mediator.before_create_child(parent.key);
            // O_TRUNC waits until the open is mediated: an existing file may be cached by
            // a lease holder that must be broken first.
            // O_EXCL stays: a name created meanwhile (here or behind the mount) is EEXIST
            let f = flags & !(libc::O_TRUNC | libc::O_DIRECT | libc::O_NOCTTY);
            let (uid, gid) = (req.uid(), req.gid());
            let ((file, created), retried) =
                create_as(uid, gid, || open_or_create(parent.fd(), &cname, f, mode))
                    .map_err(errno)?;
            if retried && created {
                let pmode = self.stat(&parent).map_err(errno)?.st_mode;
                let (u, g) = owner_after_retry(uid, gid, pmode);
                cvt(unsafe { libc::fchown(file.as_raw_fd(), u, g) }).map_err(errno)?;
            }
            let path = sys::openat(
                self.proc_dir(),
                &sys::fd_name(file.as_raw_fd()),
                libc::O_PATH,
                0,
            )
            .map_err(errno)?;
            let st = sys::fstat(path.as_fd()).map_err(errno)?;
            let node = self.inodes.intern(path, &st);
            node.set_parent(parent.key);
            Ok((node, File::from(file), created))
        })();
        let (node, file, created) = match made {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let mut omode = open_mode(flags, self.passthrough.enabled() && node.is_reg());
        // open(2) never truncates the file it creates; only a name that existed already
        // (made behind the mount, or in a race) has contents to drop.
        omode.overwrite &= !created;
        let key = node.key;
        let gate = self.mediator.open(key, omode);
        self.gated(
            gate,
            move |fs| fs.mediator.open(key, omode),
            move |fs, granted| {
                let open = match granted {
                    Ok(o) => o,
                    Err(e) => {
                        fs.inodes.forget(node.nodeid, 1);
                        return reply.error(e);
                    }
                };
                let done = (|| {
                    if omode.overwrite {
                        sys::retry(|| cvt(unsafe { libc::ftruncate64(file.as_raw_fd(), 0) }))?;
                    }
                    sys::fstat(file.as_fd())
                })();
                let st = match done {
                    Ok(st) => st,
                    Err(e) => {
                        fs.mediator.close(open);
                        fs.inodes.forget(node.nodeid, 1);
                        return reply.error(errno(e));
                    }
                };
                let attr = to_attr(node.nodeid, &st);
                let served = fs.serve(&node, omode.write, |f| reply.open_backing(f));
                let fh = FileHandle(fs.add_open(node, file, open, &served));
                match served {
                    Served::Passthrough(b) => reply.created_passthrough(
                        &fs.ttl,
                        &attr,
                        Generation(0),
                        fh,
                        FopenFlags::empty(),
                        &b.id,
                    ),
                    Served::Daemon(f) => reply.created(&fs.ttl, &attr, Generation(0), fh, f),
                }
            },
        );
    }

    pub fn read(&self, fh: FileHandle, offset: u64, size: u32, reply: ReplyData) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let f = &h.as_file().expect("file").file;
        let mut buf = vec![0u8; size as usize];
        let mut got = 0;
        while got < buf.len() {
            match f.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return reply.error(errno(e)),
            }
        }
        reply.data(&buf[..got])
    }

    /// A daemon-served write is announced to the lock manager first, so read caches of
    /// other holders are broken (DESIGN: "break R at the first write" where the daemon
    /// sees each write).
    pub fn write(self: &Arc<Self>, fh: FileHandle, offset: u64, data: &[u8], reply: ReplyWrite) {
        let h = match self.handle(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let open = h.as_file().expect("file").open;
        match self.mediator.before_write(&open) {
            Gate::Ready(()) => do_write(&h, offset, data, reply),
            Gate::Wait(w) => {
                let data = data.to_vec();
                self.gated(
                    Gate::Wait(w),
                    move |fs| fs.mediator.before_write(&open),
                    move |_fs, ()| do_write(&h, offset, &data, reply),
                );
            }
        }
    }

    pub fn flush(&self, fh: FileHandle, lock_owner: LockOwner, reply: ReplyEmpty) {
        // POSIX: closing any descriptor of a file drops the closing process's locks on it.
        if let Ok(h) = self.handle(fh) {
            let node = &h.as_file().expect("file").inode;
            self.mediator.release_posix(node.key, lock_owner.0);
        }
        reply.ok()
    }

    pub fn release(&self, fh: FileHandle, lock_owner: Option<LockOwner>, reply: ReplyEmpty) {
        if let Some(h) = self.handles.remove(fh.0) {
            if let Some(f) = h.as_file() {
                if let Some(owner) = lock_owner {
                    self.mediator.release_posix(f.inode.key, owner.0);
                }
                self.mediator.close(f.open);
                // Closing a file opened for writing is when its size and times show in
                // its directory (MS-FSA 2.1.5.4 updates them at cleanup): SMB directory
                // leases on its parent go, without waiting.
                if opened_for_write(&f.file) {
                    if let Some(p) = f.inode.parent() {
                        self.mediator.child_changed(p);
                    }
                }
            }
        }
        reply.ok()
    }

    pub fn fsync(&self, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        let r = self.handle(fh).and_then(|h| {
            let f = &h.as_file().expect("file").file;
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

    pub fn fallocate(&self, fh: FileHandle, offset: u64, len: u64, mode: i32, reply: ReplyEmpty) {
        let r = self.handle(fh).and_then(|h| {
            let f = &h.as_file().expect("file").file;
            sys::retry(|| {
                cvt(unsafe { libc::fallocate64(f.as_raw_fd(), mode, offset as i64, len as i64) })
            })
            .map_err(errno)
        });
        match r {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    pub fn lseek(&self, fh: FileHandle, offset: i64, whence: i32, reply: ReplyLseek) {
        let r = self.handle(fh).and_then(|h| {
            let f = &h.as_file().expect("file").file;
            cvt(unsafe { libc::lseek64(f.as_raw_fd(), offset, whence) }).map_err(errno)
        });
        match r {
            Ok(o) => reply.offset(o),
            Err(e) => reply.error(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn copy_file_range(
        self: &Arc<Self>,
        fh_in: FileHandle,
        off_in: u64,
        fh_out: FileHandle,
        off_out: u64,
        len: u64,
        flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let (hi, ho) = match (self.handle(fh_in), self.handle(fh_out)) {
            (Ok(i), Ok(o)) => (i, o),
            (Err(e), _) | (_, Err(e)) => return reply.error(e),
        };
        let open = ho.as_file().expect("file").open;
        let gate = self.mediator.before_write(&open);
        self.gated(
            gate,
            move |fs| fs.mediator.before_write(&open),
            move |_fs, ()| {
                let mut oi = off_in as i64;
                let mut oo = off_out as i64;
                let r = cvt(unsafe {
                    libc::copy_file_range(
                        hi.as_file().expect("file").file.as_raw_fd(),
                        &mut oi,
                        ho.as_file().expect("file").file.as_raw_fd(),
                        &mut oo,
                        len as usize,
                        flags.bits() as u32,
                    )
                });
                match r {
                    Ok(n) => reply.written(n as u32),
                    Err(e) => reply.error(errno(e)),
                }
            },
        );
    }
}

/// Opens `name` in `parent` with `flags`, creating it with `mode` if it does not exist;
/// tells whether this call created it. Knowing that matters beyond the open: truncating a
/// new, empty file is not only a wasted call but, on ext4 (auto_da_alloc), marks it for
/// block allocation at close, so every created file went to disk at once and its unlink
/// had to free (and discard) real blocks.
fn open_or_create(
    parent: std::os::fd::BorrowedFd<'_>,
    name: &std::ffi::CStr,
    flags: i32,
    mode: u32,
) -> std::io::Result<(std::os::fd::OwnedFd, bool)> {
    if flags & libc::O_EXCL != 0 {
        return sys::openat(parent, name, flags | libc::O_CREAT, mode).map(|f| (f, true));
    }
    // The name may come and go between the two calls (another front end, or the backing
    // directory itself); a few rounds settle it.
    for _ in 0..4 {
        match sys::openat(parent, name, flags | libc::O_CREAT | libc::O_EXCL, mode) {
            Ok(f) => return Ok((f, true)),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
        match sys::openat(parent, name, flags & !libc::O_CREAT, 0) {
            Ok(f) => return Ok((f, false)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    // Still both EEXIST and ENOENT: a dangling symlink, whose target O_CREAT creates as
    // open(2) does. Whether this call created it cannot be told; treat it as existing.
    sys::openat(parent, name, flags | libc::O_CREAT, mode).map(|f| (f, false))
}

fn do_write(h: &Handle, offset: u64, data: &[u8], reply: ReplyWrite) {
    let f = &h.as_file().expect("file").file;
    let mut put = 0;
    while put < data.len() {
        match f.write_at(&data[put..], offset + put as u64) {
            Ok(0) => break,
            Ok(n) => put += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if put > 0 => {
                tracing::debug!("short write: {e}");
                break;
            }
            Err(e) => return reply.error(errno(e)),
        }
    }
    reply.written(put as u32)
}

/// Whether the descriptor was opened with write access.
fn opened_for_write(f: &File) -> bool {
    // SAFETY: F_GETFL on a descriptor we own reads its status flags only.
    let fl = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
    fl >= 0 && fl & libc::O_ACCMODE != libc::O_RDONLY
}

#[cfg(test)]
mod tests {
    use super::open_or_create;
    use std::os::fd::AsFd;

    fn read(path: &std::path::Path) -> Vec<u8> {
        std::fs::read(path).expect("read")
    }

    #[test]
    fn open_or_create_tells_new_from_existing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = std::fs::File::open(dir.path()).expect("dir");
        let w = libc::O_WRONLY;
        let (_, created) = open_or_create(d.as_fd(), c"new", w, 0o644).expect("create");
        assert!(created);
        std::fs::write(dir.path().join("old"), b"kept").expect("write");
        let (_, created) = open_or_create(d.as_fd(), c"old", w, 0o644).expect("open");
        assert!(!created);
        // truncation is the caller's business, after mediation
        assert_eq!(read(&dir.path().join("old")), b"kept");
        let e = open_or_create(d.as_fd(), c"old", w | libc::O_EXCL, 0o644).expect_err("excl");
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        // a dangling symlink: O_CREAT makes its target, as open(2) does
        std::os::unix::fs::symlink("target", dir.path().join("link")).expect("symlink");
        let (_, created) = open_or_create(d.as_fd(), c"link", w, 0o600).expect("via link");
        assert!(!created);
        assert!(dir.path().join("target").exists());
    }
}
