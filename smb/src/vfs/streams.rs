//! Alternate data streams (`file:stream`, MS-FSCC 2.1.5.3) kept in extended attributes
//! of the base file, one `user.leasefs.stream.<name>` attribute per stream.
//!
//! Linux filesystems have no named streams; xattrs are the one per-inode store that
//! follows the file across renames. Their size is limited (64 KiB on most
//! filesystems), which bounds stream size; a larger write fails with DISK_FULL.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

const PREFIX: &str = "user.leasefs.stream.";

fn attr_name(stream: &str) -> io::Result<CString> {
    CString::new(format!("{PREFIX}{stream}"))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The stream's content, or ENODATA when it does not exist.
pub fn read(fd: RawFd, stream: &str) -> io::Result<Vec<u8>> {
    let name = attr_name(stream)?;
    loop {
        // SAFETY: size query with a null buffer.
        let n = unsafe { libc::fgetxattr(fd, name.as_ptr(), std::ptr::null_mut(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; n as usize];
        // SAFETY: buf has n bytes.
        let m = unsafe { libc::fgetxattr(fd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if m < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ERANGE) {
                continue; // grew between the two calls
            }
            return Err(e);
        }
        buf.truncate(m as usize);
        return Ok(buf);
    }
}

pub fn write_all(fd: RawFd, stream: &str, data: &[u8]) -> io::Result<()> {
    let name = attr_name(stream)?;
    // SAFETY: data is a valid buffer of data.len() bytes.
    let rc = unsafe { libc::fsetxattr(fd, name.as_ptr(), data.as_ptr().cast(), data.len(), 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn exists(fd: RawFd, stream: &str) -> bool {
    read(fd, stream).is_ok()
}

pub fn remove(fd: RawFd, stream: &str) -> io::Result<()> {
    let name = attr_name(stream)?;
    // SAFETY: valid fd and name.
    let rc = unsafe { libc::fremovexattr(fd, name.as_ptr()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Named streams of a file with their sizes.
pub fn list(fd: RawFd) -> io::Result<Vec<(String, u64)>> {
    // SAFETY: size query.
    let n = unsafe { libc::flistxattr(fd, std::ptr::null_mut(), 0) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOTSUP) {
            return Ok(Vec::new());
        }
        return Err(e);
    }
    let mut buf = vec![0u8; n as usize];
    // SAFETY: buf has n bytes.
    let m = unsafe { libc::flistxattr(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if m < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(m as usize);
    let mut out = Vec::new();
    for raw in buf.split(|b| *b == 0) {
        if let Ok(s) = std::str::from_utf8(raw) {
            if let Some(stream) = s.strip_prefix(PREFIX) {
                let len = read(fd, stream).map(|d| d.len() as u64).unwrap_or(0);
                out.push((stream.to_string(), len));
            }
        }
    }
    Ok(out)
}

/// Apply a write at `offset` to the stream's content.
pub fn pwrite(fd: RawFd, stream: &str, offset: u64, data: &[u8]) -> io::Result<()> {
    let mut cur = match read(fd, stream) {
        Ok(v) => v,
        Err(e) if e.raw_os_error() == Some(libc::ENODATA) => Vec::new(),
        Err(e) => return Err(e),
    };
    let end = offset
        .checked_add(data.len() as u64)
        .filter(|e| *e <= 16 << 20)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::E2BIG))? as usize;
    if cur.len() < end {
        cur.resize(end, 0);
    }
    cur[offset as usize..end].copy_from_slice(data);
    write_all(fd, stream, &cur)
}

pub fn truncate(fd: RawFd, stream: &str, len: u64) -> io::Result<()> {
    let mut cur = read(fd, stream)?;
    if len > 16 << 20 {
        return Err(io::Error::from_raw_os_error(libc::E2BIG));
    }
    cur.resize(len as usize, 0);
    write_all(fd, stream, &cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn stream_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(d.path().join("f")).unwrap();
        let fd = f.as_raw_fd();
        if write_all(fd, "probe", b"").is_err() {
            eprintln!("no user xattrs on this filesystem; skipping");
            return;
        }
        remove(fd, "probe").unwrap();
        assert!(!exists(fd, "s"));
        pwrite(fd, "s", 3, b"abc").unwrap();
        assert_eq!(read(fd, "s").unwrap(), b"\0\0\0abc");
        truncate(fd, "s", 4).unwrap();
        assert_eq!(list(fd).unwrap(), vec![("s".to_string(), 4)]);
        remove(fd, "s").unwrap();
        assert!(list(fd).unwrap().is_empty());
    }
}
