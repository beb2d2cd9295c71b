//! Extended attributes, through the `/proc/self/fd` name of the node's handle (the xattr
//! calls take no `O_PATH` descriptor). Symlinks carry none here: the proc name of a
//! symlink handle would address the magic link, not the symlink.

use std::ffi::{CString, OsStr};

use fuser::{Errno, INodeNo, ReplyEmpty, ReplyXattr};

use crate::fs::{errno, Fs};
use crate::inode::Inode;
use crate::sys::{self, cvt};

impl Fs {
    fn xattr_path(&self, ino: INodeNo) -> Result<(std::sync::Arc<Inode>, CString), Errno> {
        let node = self.inode(ino)?;
        if node.is_symlink() {
            return Err(Errno::EPERM);
        }
        let path = CString::new(format!("/proc/self/fd/{}", node.fd_raw())).expect("no nul");
        Ok((node, path))
    }

    fn reply_sized(reply: ReplyXattr, size: u32, r: Result<Vec<u8>, Errno>) {
        match r {
            Ok(v) if size == 0 => reply.size(v.len() as u32),
            Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
            Ok(v) => reply.data(&v),
            Err(e) => reply.error(e),
        }
    }

    /// Calls a get/list xattr function twice: once for the size, once for the value.
    fn fetch(call: impl Fn(*mut libc::c_void, usize) -> isize) -> Result<Vec<u8>, Errno> {
        loop {
            let n = cvt(call(std::ptr::null_mut(), 0)).map_err(errno)?;
            let mut buf = vec![0u8; n as usize];
            match cvt(call(buf.as_mut_ptr().cast(), buf.len())) {
                Ok(m) => {
                    buf.truncate(m as usize);
                    return Ok(buf);
                }
                // grew in between: ask again
                Err(e) if e.raw_os_error() == Some(libc::ERANGE) => continue,
                Err(e) => return Err(errno(e)),
            }
        }
    }

    pub fn getxattr(&self, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let r = (|| {
            let (_node, path) = match self.xattr_path(ino) {
                Err(e) if e == Errno::EPERM => return Err(Errno::NO_XATTR),
                r => r?,
            };
            let name = sys::cstr(name).map_err(errno)?;
            Self::fetch(|buf, len| unsafe {
                libc::getxattr(path.as_ptr(), name.as_ptr(), buf, len)
            })
        })();
        Self::reply_sized(reply, size, r)
    }

    pub fn listxattr(&self, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let r = (|| {
            let (_node, path) = match self.xattr_path(ino) {
                Err(e) if e == Errno::EPERM => return Ok(Vec::new()),
                r => r?,
            };
            Self::fetch(|buf, len| unsafe { libc::listxattr(path.as_ptr(), buf.cast(), len) })
        })();
        Self::reply_sized(reply, size, r)
    }

    pub fn setxattr(
        &self,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            let (_node, path) = self.xattr_path(ino)?;
            let name = sys::cstr(name).map_err(errno)?;
            cvt(unsafe {
                libc::setxattr(
                    path.as_ptr(),
                    name.as_ptr(),
                    value.as_ptr().cast(),
                    value.len(),
                    flags,
                )
            })
            .map_err(errno)
        })();
        match r {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    pub fn removexattr(&self, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = (|| {
            let (_node, path) = match self.xattr_path(ino) {
                Err(e) if e == Errno::EPERM => return Err(Errno::NO_XATTR),
                r => r?,
            };
            let name = sys::cstr(name).map_err(errno)?;
            cvt(unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) }).map_err(errno)
        })();
        match r {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
