//! The filesystem state shared by every worker thread, and the `fuser::Filesystem` glue that
//! hands each request to its operation group in `ops/`.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, Errno, FileHandle, Filesystem, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLock, ReplyLseek,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::attr;
use crate::handles::HandleTable;
use crate::inode::{Inode, InodeStore};
use crate::mediation::{Gate, Mediator};
use crate::passthrough::Passthrough;
use crate::sys;

/// Everything the operations share. Wrapped in an `Arc` so that an operation that has to
/// wait (for a lease break or a blocking lock) can finish on its own thread while the
/// session threads go on serving other requests.
pub struct Fs {
    pub inodes: InodeStore,
    pub handles: HandleTable,
    pub passthrough: Passthrough,
    pub mediator: Mediator,
    /// `/proc/self/fd`, to reopen `O_PATH` handles with real access modes.
    proc_fd: OwnedFd,
    /// How long the kernel may cache entries and attributes.
    pub ttl: Duration,
}

pub fn errno(e: io::Error) -> Errno {
    Errno::from_i32(sys::errno_of(&e))
}

impl Fs {
    pub fn new(
        backing: &Path,
        mediator: Mediator,
        passthrough: bool,
        ttl: Duration,
    ) -> io::Result<Self> {
        let root = sys::openat(
            File::open("/")?.as_fd(),
            &sys::cstr(backing.as_os_str())?,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )?;
        let st = sys::fstat(root.as_fd())?;
        let proc_fd = sys::openat(
            File::open("/")?.as_fd(),
            c"/proc/self/fd",
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )?;
        Ok(Self {
            inodes: InodeStore::new(root, &st),
            handles: HandleTable::default(),
            passthrough: Passthrough::new(passthrough),
            mediator,
            proc_fd,
            ttl,
        })
    }

    pub fn inode(&self, ino: INodeNo) -> Result<Arc<Inode>, Errno> {
        self.inodes.get(ino.0).ok_or(Errno::ESTALE)
    }

    /// Opens the backing object of `inode` for I/O (its `O_PATH` handle has no access mode).
    pub fn reopen(&self, inode: &Inode, flags: i32) -> io::Result<File> {
        let name = sys::fd_name(inode.fd().as_raw_fd());
        let flags = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_NOFOLLOW);
        sys::openat(self.proc_fd.as_fd(), &name, flags, 0).map(File::from)
    }

    pub fn proc_dir(&self) -> std::os::fd::BorrowedFd<'_> {
        self.proc_fd.as_fd()
    }

    /// Runs a path-based call on the backing object through its `/proc/self/fd` name
    /// (for calls that have no descriptor form accepting an `O_PATH` handle).
    pub fn via_proc<T>(
        &self,
        inode: &Inode,
        f: impl FnOnce(std::os::fd::RawFd, &CStr) -> io::Result<T>,
    ) -> io::Result<T> {
        f(self.proc_fd.as_raw_fd(), &sys::fd_name(inode.fd_raw()))
    }

    /// Finds `name` in `parent` and takes one kernel reference on its node.
    pub fn lookup_node(
        &self,
        parent: &Inode,
        name: &CStr,
    ) -> io::Result<(Arc<Inode>, libc::stat64)> {
        let fd = sys::openat(parent.fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let st = sys::fstat(fd.as_fd())?;
        let node = self.inodes.intern(fd, &st);
        node.set_parent(parent.key);
        Ok((node, st))
    }

    pub fn stat(&self, inode: &Inode) -> io::Result<libc::stat64> {
        sys::fstat(inode.fd())
    }

    pub fn reply_entry(&self, reply: ReplyEntry, inode: &Inode, st: &libc::stat64) {
        reply.entry(&self.ttl, &attr::to_attr(inode.nodeid, st), Generation(0));
    }

    /// Runs `finish` now if `gate` is open, else on a thread of its own once the lock
    /// manager lets the operation proceed; `retry` asks again after each wake-up, since a
    /// break that ended may have let another conflicting grant in.
    pub fn gated<T: Send + 'static>(
        self: &Arc<Self>,
        gate: Gate<T>,
        retry: impl Fn(&Fs) -> Gate<T> + Send + 'static,
        finish: impl FnOnce(&Fs, T) + Send + 'static,
    ) {
        match gate {
            Gate::Ready(v) => finish(self, v),
            Gate::Wait(w) => {
                let fs = self.clone();
                std::thread::Builder::new()
                    .name("leasefs-wait".into())
                    .spawn(move || {
                        let mut w = w;
                        loop {
                            w.wait();
                            match retry(&fs) {
                                Gate::Ready(v) => return finish(&fs, v),
                                Gate::Wait(next) => w = next,
                            }
                        }
                    })
                    .expect("spawning a waiter thread");
            }
        }
    }
}

/// The `fuser` filesystem: negotiation plus dispatch to `ops/`.
pub struct LeaseFs {
    pub fs: Arc<Fs>,
}

#[allow(clippy::too_many_arguments)]
impl Filesystem for LeaseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        crate::creds::private_umask();
        let caps = config.capabilities();
        let mut want = InitFlags::FUSE_POSIX_LOCKS
            | InitFlags::FUSE_ATOMIC_O_TRUNC
            | InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_CACHE_SYMLINKS;
        want &= caps;
        if let Err(missing) = config.add_capabilities(want) {
            tracing::debug!("kernel lacks {missing:?}");
        }
        if !caps.contains(InitFlags::FUSE_POSIX_LOCKS) {
            tracing::warn!("kernel lacks FUSE_POSIX_LOCKS: fcntl locks stay local to this host");
        }
        if self.fs.passthrough.enabled() {
            let pt = caps.contains(InitFlags::FUSE_PASSTHROUGH)
                && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok();
            // Depth 1 suffices over a plain filesystem; an overlayfs backing needs 2.
            let depth = match sys::statfs_type(self.fs.inodes.get(1).expect("root").fd()) {
                Ok(0x794c_7630) => 2,
                _ => 1,
            };
            if !pt || config.set_max_stack_depth(depth).is_err() {
                self.fs
                    .passthrough
                    .disable("kernel does not offer FUSE_PASSTHROUGH");
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.fs.lookup(parent, name, reply)
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.inodes.forget(ino.0, nlookup)
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.fs.getattr(ino, fh, reply)
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = crate::ops::attr::Change {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
            fh,
        };
        self.fs.setattr(ino, change, reply)
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.fs.readlink(ino, reply)
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        self.fs.mknod(req, parent, name, mode, rdev, reply)
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        self.fs.mkdir(req, parent, name, mode, reply)
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.fs.remove(parent, name, false, reply)
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.fs.remove(parent, name, true, reply)
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.fs.symlink(req, parent, link_name, target, reply)
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.fs
            .rename(parent, name, newparent, newname, flags, reply)
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.fs.link(ino, newparent, newname, reply)
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.fs.open(ino, flags, reply)
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.fs.read(fh, offset, size, reply)
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.fs.write(fh, offset, data, reply)
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.fs.flush(fh, lock_owner, reply)
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.release(fh, lock_owner, reply)
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.fsync(fh, datasync, reply)
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.fs.opendir(ino, flags, reply)
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.fs.readdir(fh, offset, reply)
    }

    fn readdirplus(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.fs.readdirplus(fh, offset, reply)
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh, reply)
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.fsyncdir(fh, datasync, reply)
    }

    fn statfs(&self, _req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        self.fs.statfs(ino, reply)
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        self.fs.setxattr(ino, name, value, flags, reply)
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.fs.getxattr(ino, name, size, reply)
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.fs.listxattr(ino, size, reply)
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.fs.removexattr(ino, name, reply)
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.fs.access(req, ino, mask, reply)
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        self.fs.create(req, parent, name, mode, flags, reply)
    }

    fn getlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        self.fs.getlk(ino, lock_owner, start, end, typ, pid, reply)
    }

    fn setlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        self.fs
            .setlk(ino, lock_owner, start, end, typ, pid, sleep, reply)
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.fs.fallocate(fh, offset, length, mode, reply)
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        self.fs.lseek(fh, offset, whence, reply)
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        self.fs
            .copy_file_range(fh_in, offset_in, fh_out, offset_out, len, flags, reply)
    }
}
