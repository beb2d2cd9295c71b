//! The share's view of the backing directory: name validation, resolution strictly
//! beneath the share root, and `stat` → MS-FSCC metadata.
//!
//! Every name a client sends is resolved with `openat2(RESOLVE_BENEATH)` relative to the
//! share root's descriptor, so `..`, absolute paths and symlinks (at any component)
//! that would leave the root fail with EXDEV inside the kernel instead of relying on
//! string checks that races could defeat.

pub mod case_fold;
pub mod short_name;
pub mod streams;

use crate::wire::info::{
    FileMeta, ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_HIDDEN, ATTR_NORMAL, ATTR_READONLY, ATTR_SYSTEM,
};
use crate::wire::{filetime, status};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A client path split into its parts (MS-FSCC 2.1.5 pathname rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmbPath {
    /// Components relative to the share root, never empty strings, never `.`/`..`.
    pub parts: Vec<String>,
    /// `name:stream[:$DATA]` on the last component (MS-FSCC 2.1.5.3); `None` for the
    /// unnamed data stream.
    pub stream: Option<String>,
    /// The name spelled the unnamed data stream out (`name::$DATA`), which a directory
    /// does not have (MS-FSA 2.1.5.1; smbtorture smb2.streams.dir).
    pub unnamed_data: bool,
}

impl SmbPath {
    /// Relative path with `/` separators ("" for the root).
    pub fn rel(&self) -> String {
        self.parts.join("/")
    }
    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }
    pub fn parent_rel(&self) -> String {
        match self.parts.split_last() {
            Some((_, p)) => p.join("/"),
            None => String::new(),
        }
    }
    pub fn last(&self) -> Option<&str> {
        self.parts.last().map(|s| s.as_str())
    }
}

/// Parse a wire name. Errors are the NTSTATUS a Windows server returns for the same
/// malformed name (MS-SMB2 3.3.5.9: leading separators are invalid in CREATE).
pub fn parse_name(name: &str) -> Result<SmbPath, u32> {
    let name = name.trim_end_matches('\0');
    if name.starts_with('\\') || name.starts_with('/') {
        return Err(status::INVALID_PARAMETER);
    }
    let mut parts = Vec::new();
    let mut stream = None;
    let mut unnamed_data = false;
    let comps: Vec<&str> = name.split('\\').collect();
    let n = comps.len();
    for (i, c) in comps.into_iter().enumerate() {
        if c.is_empty() {
            if i + 1 == n && i > 0 {
                continue; // a trailing backslash is tolerated, like Windows
            }
            if n == 1 {
                break; // the share root
            }
            return Err(status::OBJECT_NAME_INVALID);
        }
        if c == "." || c == ".." {
            return Err(status::OBJECT_PATH_SYNTAX_BAD);
        }
        let mut comp = c;
        if let Some(colon) = c.find(':') {
            if i + 1 != n {
                return Err(status::OBJECT_NAME_INVALID);
            }
            let (base, rest) = c.split_at(colon);
            let rest = &rest[1..];
            let sname = match rest.rsplit_once(':') {
                Some((s, ty)) if ty.eq_ignore_ascii_case("$DATA") => s,
                Some(_) => return Err(status::OBJECT_NAME_INVALID),
                None => rest,
            };
            if sname.contains(':') || sname.contains('/') {
                return Err(status::OBJECT_NAME_INVALID);
            }
            if !sname.is_empty() {
                stream = Some(sname.to_string());
            } else if rest.len() > sname.len() {
                unnamed_data = true;
            }
            comp = base;
            if comp.is_empty() {
                // ":stream" on the share root directory
                break;
            }
        }
        if comp.chars().any(|ch| {
            matches!(ch, '/' | '<' | '>' | '"' | '|' | '*' | '?' | '\0') || (ch as u32) < 0x20
        }) {
            return Err(status::OBJECT_NAME_INVALID);
        }
        if comp.len() > 255 {
            return Err(status::OBJECT_NAME_INVALID);
        }
        parts.push(comp.to_string());
    }
    Ok(SmbPath {
        parts,
        stream,
        unnamed_data,
    })
}

/// The share root: a directory descriptor every lookup starts from.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(if s.is_empty() { "." } else { s })
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

impl Root {
    pub fn open(path: &std::path::Path) -> io::Result<Root> {
        let f = std::fs::File::open(path)?;
        if !f.metadata()?.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(Root { fd: f.into() })
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// openat2 beneath the root. `rel` uses `/` separators, "" is the root itself.
    pub fn open_beneath(&self, rel: &str, flags: i32, mode: u32) -> io::Result<OwnedFd> {
        let path = cstr(rel)?;
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (flags | libc::O_CLOEXEC) as u64;
        how.mode = if flags & libc::O_CREAT != 0 {
            mode as u64
        } else {
            0
        };
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: path is a valid C string, `how` a properly sized open_how.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.fd.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a fresh descriptor we now own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    }

    /// Whether `p` names the unnamed data stream (`dir::$DATA`) of an existing
    /// directory: such an open fails before any sharing check, with NOT_A_DIRECTORY
    /// or FILE_IS_A_DIRECTORY (MS-FSA 2.1.5.1).
    pub fn is_dir_data_stream(&self, p: &SmbPath) -> bool {
        p.unnamed_data
            && p.stream.is_none()
            && self
                .open_beneath(&p.rel(), libc::O_PATH, 0)
                .ok()
                .and_then(|f| fstat(f.as_raw_fd()).ok())
                .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
    }

    /// Descriptor of the parent directory of `p` (for mkdirat/unlinkat/renameat, which
    /// then only ever see a single, validated name component).
    pub fn parent_dir(&self, p: &SmbPath) -> io::Result<OwnedFd> {
        self.open_beneath(&p.parent_rel(), libc::O_PATH | libc::O_DIRECTORY, 0)
    }

    pub fn mkdir(&self, p: &SmbPath) -> io::Result<()> {
        let dir = self.parent_dir(p)?;
        let name = cstr(p.last().unwrap_or("."))?;
        // SAFETY: valid fd and C string.
        let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o777) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn unlink(&self, p: &SmbPath, is_dir: bool) -> io::Result<()> {
        let dir = self.parent_dir(p)?;
        let name = cstr(
            p.last()
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EBUSY))?,
        )?;
        let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
        // SAFETY: valid fd and C string.
        let rc = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Rename; with `replace` false an existing target fails with EEXIST
    /// (RENAME_NOREPLACE), which is FileRenameInformation.ReplaceIfExists = 0.
    pub fn rename(&self, from: &SmbPath, to: &SmbPath, replace: bool) -> io::Result<()> {
        let fdir = self.parent_dir(from)?;
        let tdir = self.parent_dir(to)?;
        let fname = cstr(
            from.last()
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EBUSY))?,
        )?;
        let tname = cstr(
            to.last()
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EBUSY))?,
        )?;
        let flags = if replace { 0 } else { libc::RENAME_NOREPLACE };
        // SAFETY: valid fds and C strings.
        let rc = unsafe {
            libc::renameat2(
                fdir.as_raw_fd(),
                fname.as_ptr(),
                tdir.as_raw_fd(),
                tname.as_ptr(),
                flags,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stat of a name inside a directory descriptor (for directory listings); follows a
    /// symlink only when it stays beneath the root.
    pub fn stat_in(&self, dir_rel: &str, name: &str) -> io::Result<libc::stat> {
        let rel = if dir_rel.is_empty() {
            name.to_string()
        } else {
            format!("{dir_rel}/{name}")
        };
        let fd = self.open_beneath(&rel, libc::O_PATH, 0)?;
        fstat(fd.as_raw_fd())
    }
}

pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    let rc = unsafe { libc::fstat(fd, &mut st) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// Birth time via statx when the filesystem records it, else the older of mtime/ctime
/// (CreationTime must never be later than LastWriteTime for Windows tools).
fn birth_time(fd: RawFd, st: &libc::stat) -> u64 {
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let empty = c"";
    // SAFETY: valid fd, empty path with AT_EMPTY_PATH, valid out-pointer.
    let rc = unsafe {
        libc::statx(
            fd,
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_BTIME,
            &mut stx,
        )
    };
    if rc == 0 && stx.stx_mask & libc::STATX_BTIME != 0 {
        return filetime(stx.stx_btime.tv_sec, stx.stx_btime.tv_nsec as i64);
    }
    filetime(st.st_mtime, st.st_mtime_nsec).min(filetime(st.st_ctime, st.st_ctime_nsec))
}

pub fn meta_of(st: &libc::stat, creation: u64) -> FileMeta {
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let mut attributes = if is_dir { ATTR_DIRECTORY } else { ATTR_ARCHIVE };
    if st.st_mode & 0o200 == 0 {
        attributes |= ATTR_READONLY;
    }
    FileMeta {
        creation,
        access: filetime(st.st_atime, st.st_atime_nsec),
        write: filetime(st.st_mtime, st.st_mtime_nsec),
        change: filetime(st.st_ctime, st.st_ctime_nsec),
        size: if is_dir { 0 } else { st.st_size as u64 },
        allocation: if is_dir {
            0
        } else {
            (st.st_blocks as u64) * 512
        },
        attributes,
        nlink: st.st_nlink as u32,
        index: st.st_ino,
        is_dir,
    }
}

pub fn meta_fd(fd: RawFd) -> io::Result<FileMeta> {
    let st = fstat(fd)?;
    let mut m = meta_of(&st, birth_time(fd, &st));
    let kept = Kept::load(fd);
    if kept.creation != 0 {
        m.creation = kept.creation;
    }
    if kept.change != 0 {
        m.change = kept.change;
    }
    if kept.attributes & ATTRS_SET != 0 {
        // Client-set DOS attributes; READONLY and DIRECTORY always follow the file.
        let mut a = kept.attributes & (ATTR_HIDDEN | ATTR_SYSTEM | ATTR_ARCHIVE);
        a |= m.attributes & (ATTR_READONLY | ATTR_DIRECTORY);
        if a == 0 {
            a = ATTR_NORMAL;
        }
        m.attributes = a;
    }
    Ok(m)
}

/// Linux cannot set a file's birth or change time and has no DOS attributes, but SMB
/// clients set them through FileBasicInformation and expect to read them back
/// (MS-FSA 2.1.5.14.2). We keep client-set values in one xattr: CreationTime and
/// ChangeTime as FILETIMEs (0 = not set) and the attributes (`ATTRS_SET` marks them
/// present). A later data change through the server drops the ChangeTime.
const KEPT_XATTR: &std::ffi::CStr = c"user.leasefs.basic";
const ATTRS_SET: u32 = 0x8000_0000;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    pub creation: u64,
    pub change: u64,
    pub attributes: u32,
}

impl Kept {
    pub fn load(fd: RawFd) -> Kept {
        let mut buf = [0u8; 20];
        // SAFETY: buf is 20 writable bytes.
        let n =
            unsafe { libc::fgetxattr(fd, KEPT_XATTR.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n != 20 {
            return Kept::default();
        }
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&buf[i..i + 8]);
            u64::from_le_bytes(a)
        };
        Kept {
            creation: u64_at(0),
            change: u64_at(8),
            attributes: u32::from_le_bytes([buf[16], buf[17], buf[18], buf[19]]),
        }
    }

    pub fn store(&self, fd: RawFd) -> io::Result<()> {
        let mut buf = [0u8; 20];
        buf[..8].copy_from_slice(&self.creation.to_le_bytes());
        buf[8..16].copy_from_slice(&self.change.to_le_bytes());
        buf[16..].copy_from_slice(&self.attributes.to_le_bytes());
        // SAFETY: valid fd, name and 20-byte buffer.
        let rc =
            unsafe { libc::fsetxattr(fd, KEPT_XATTR.as_ptr(), buf.as_ptr().cast(), buf.len(), 0) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Record client-set times and attributes; `None` keeps what is stored.
pub fn keep_basic(
    fd: RawFd,
    creation: Option<u64>,
    change: Option<u64>,
    attributes: Option<u32>,
) -> io::Result<()> {
    let mut k = Kept::load(fd);
    if let Some(c) = creation {
        k.creation = c;
    }
    if let Some(c) = change {
        k.change = c;
    }
    if let Some(a) = attributes {
        k.attributes = a | ATTRS_SET;
    }
    k.store(fd)
}

/// A data change through the server makes a client-set ChangeTime stale.
pub fn clear_change_override(fd: RawFd) {
    let mut k = Kept::load(fd);
    if k.change != 0 {
        k.change = 0;
        // Failure only leaves the old value in place.
        let _ = k.store(fd);
    }
}

/// Change times through an open descriptor; `None` leaves a time as it is
/// (FileBasicInformation: 0 and -1 mean "do not change", MS-FSCC 2.4.7).
pub fn set_times(
    fd: RawFd,
    atime: Option<(i64, i64)>,
    mtime: Option<(i64, i64)>,
) -> io::Result<()> {
    let conv = |t: Option<(i64, i64)>| match t {
        Some((s, ns)) => libc::timespec {
            tv_sec: s,
            tv_nsec: ns,
        },
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
    };
    let ts = [conv(atime), conv(mtime)];
    // SAFETY: valid fd and a two-element timespec array.
    let rc = unsafe { libc::futimens(fd, ts.as_ptr()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The directory entries of an open directory, read through a duplicate of its
/// descriptor so the handle's own offset is untouched.
pub fn list_dir(fd: RawFd) -> io::Result<Vec<String>> {
    // SAFETY: dup of a descriptor we own; fdopendir takes ownership of the copy.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // O_PATH descriptors cannot be read; reopen through /proc for a readable one.
    let path = CString::new(format!("/proc/self/fd/{dup}"))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C string.
    let rfd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: dup is ours.
    unsafe { libc::close(dup) };
    if rfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: rfd is a fresh directory descriptor; closedir closes it.
    let dirp = unsafe { libc::fdopendir(rfd) };
    if dirp.is_null() {
        let e = io::Error::last_os_error();
        unsafe { libc::close(rfd) };
        return Err(e);
    }
    let mut names = Vec::new();
    loop {
        // SAFETY: dirp is a valid DIR*.
        let ent = unsafe { libc::readdir(dirp) };
        if ent.is_null() {
            break;
        }
        // SAFETY: d_name is NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
        if let Ok(s) = name.to_str() {
            if s != "." && s != ".." {
                names.push(s.to_string());
            }
        }
    }
    // SAFETY: dirp valid, closed once.
    unsafe { libc::closedir(dirp) };
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_name("").unwrap().parts, Vec::<String>::new());
        assert_eq!(parse_name("a\\b").unwrap().rel(), "a/b");
        assert_eq!(parse_name("a\\b\\").unwrap().rel(), "a/b");
        let d = parse_name("dir::$DATA").unwrap();
        assert!(d.unnamed_data && d.stream.is_none());
        assert!(!parse_name("dir").unwrap().unnamed_data);
        assert!(!parse_name("f:s:$DATA").unwrap().unnamed_data);
        assert_eq!(parse_name("x:str").unwrap().stream.as_deref(), Some("str"));
        assert_eq!(
            parse_name("x:str:$DATA").unwrap().stream.as_deref(),
            Some("str")
        );
        assert_eq!(parse_name("x::$DATA").unwrap().stream, None);
        assert_eq!(
            parse_name("..").unwrap_err(),
            status::OBJECT_PATH_SYNTAX_BAD
        );
        assert_eq!(
            parse_name("a\\..\\..\\etc").unwrap_err(),
            status::OBJECT_PATH_SYNTAX_BAD
        );
        assert!(parse_name("\\abs").is_err());
        assert!(parse_name("a/../b").is_err());
        assert!(parse_name("a\\\\b").is_err());
        assert!(parse_name("a:b\\c").is_err());
    }

    #[test]
    fn beneath_refuses_escapes() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"x").unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("sub/out")).unwrap();
        std::os::unix::fs::symlink("../sub", d.path().join("sub/loop")).unwrap();
        std::fs::write(d.path().join("sub/f"), b"y").unwrap();
        let root = Root::open(d.path()).unwrap();
        assert!(root.open_beneath("sub/f", libc::O_RDONLY, 0).is_ok());
        assert!(root.open_beneath("sub/loop/f", libc::O_RDONLY, 0).is_ok());
        assert!(root
            .open_beneath("sub/out/secret", libc::O_RDONLY, 0)
            .is_err());
        assert!(root
            .open_beneath("../etc/passwd", libc::O_RDONLY, 0)
            .is_err());
        assert!(root.open_beneath("/etc/passwd", libc::O_RDONLY, 0).is_err());
        let fd = root
            .open_beneath("sub", libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .unwrap();
        assert_eq!(list_dir(fd.as_raw_fd()).unwrap(), vec!["f", "loop", "out"]);
    }
}
