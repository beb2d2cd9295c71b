//! SET_INFO (MS-SMB2 3.3.5.21; semantics from MS-FSA 2.1.5.14): basic, rename,
//! disposition, end-of-file, allocation, position, mode.

use super::{reader, Outcome, Req};
use crate::notify::{self, Change};
use crate::server::Server;
use crate::session::{ConnState, Handle};
use crate::vfs::{self, streams};
use crate::wire::create::access;
use crate::wire::info::*;
use crate::wire::{from_filetime, status, utf16_to_string, Reader};
use leasefs_leases::FileId;
use std::os::fd::AsRawFd;
use std::sync::Arc;

fn io(e: std::io::Error) -> u32 {
    status::from_io(&e)
}

pub fn handle(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    // Issue 5: a rename or delete disposition waiting for other holders' H breaks
    // waits without blocking the connection and without an interim response
    // (leasing::pending, suspend.rs).
    st.leases.pending.begin(false);
    let r = handle_inner(srv, st, req);
    if let Some(o) = crate::leasing::pending::outcome_without_interim(st, &r) {
        return Ok(o);
    }
    r
}

fn handle_inner(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let r = reader(req, 33)?;
    let info_type = r.u8(2).map_err(super::wire_err)?;
    let cls = r.u8(3).map_err(super::wire_err)?;
    let len = r.u32(4).map_err(super::wire_err)? as usize;
    let off = r.u16(8).map_err(super::wire_err)? as usize;
    tracing::trace!(info_type, cls, len, "SET_INFO");
    let buf = Reader::new(r.header_relative(off, len).map_err(super::wire_err)?);
    let read_only = st.tree(req.hdr.session_id, req.hdr.tree_id)?.read_only;
    let v = super::open_mut(st, req, 16)?.volatile;
    match info_type {
        INFO_FILE => {}
        INFO_SECURITY => {
            // ACLs are not stored (access is the share's and the filesystem's); accept
            // the request like a filesystem without ACL support would.
            if read_only {
                return Err(status::ACCESS_DENIED);
            }
            return Ok(done());
        }
        INFO_FILESYSTEM | INFO_QUOTA => return Err(status::NOT_SUPPORTED),
        _ => return Err(status::INVALID_PARAMETER),
    }
    let short = |n: usize| {
        if len < n {
            Err(status::INFO_LENGTH_MISMATCH)
        } else {
            Ok(())
        }
    };
    match cls {
        class::POSITION => {
            short(8)?;
            let p = buf.u64(0).map_err(super::wire_err)?;
            if let Some(o) = st.opens.get_mut(&v) {
                o.position = p;
            }
            return Ok(done());
        }
        class::MODE => {
            short(4)?;
            let m = buf.u32(0).map_err(super::wire_err)?;
            // MS-FSCC 2.4.26: only the five mode bits, and not both synchronous modes.
            if m & !0x3E != 0 || m & 0x30 == 0x30 {
                return Err(status::INVALID_PARAMETER);
            }
            if let Some(o) = st.opens.get_mut(&v) {
                o.mode = m;
            }
            return Ok(done());
        }
        _ => {}
    }
    if read_only {
        return Err(status::ACCESS_DENIED);
    }
    match cls {
        class::BASIC => {
            short(40)?;
            set_basic(st, v, &buf).inspect(|_| crate::leasing::directory::modified(st, v))
        }
        class::DISPOSITION | class::DISPOSITION_EX => {
            short(1)?;
            let delete = if cls == class::DISPOSITION {
                buf.u8(0).map_err(super::wire_err)? != 0
            } else {
                buf.u32(0).map_err(super::wire_err)? & 1 != 0
            };
            set_disposition(srv, st, v, delete)
        }
        class::END_OF_FILE | class::ALLOCATION => {
            short(8)?;
            let size = buf.u64(0).map_err(super::wire_err)?;
            set_size(srv, st, v, size, cls == class::ALLOCATION)
                .inspect(|_| crate::leasing::directory::modified(st, v))
        }
        class::RENAME | class::RENAME_EX => {
            short(20)?;
            rename(srv, st, v, &buf)
        }
        class::FULL_EA => Err(status::EAS_NOT_SUPPORTED),
        _ => Err(status::INVALID_INFO_CLASS),
    }
}

fn done() -> Outcome {
    Outcome::Done(status::SUCCESS, vec![2, 0])
}

/// FileBasicInformation: a time of 0 means "leave", -1 means "stop updating" which we
/// also treat as leave (MS-FSCC 2.4.7); READONLY maps to the owner write bit.
fn set_basic(st: &mut ConnState, v: u64, buf: &Reader) -> Result<Outcome, u32> {
    let o = st.opens.get_mut(&v).ok_or(status::FILE_CLOSED)?;
    if o.granted & access::WRITE_ATTRIBUTES == 0 {
        return Err(status::ACCESS_DENIED);
    }
    let fd = o.handle.fd().ok_or(status::INVALID_HANDLE)?;
    let t = |at: usize| -> Result<Option<(i64, i64)>, u32> {
        let x = buf.u64(at).map_err(super::wire_err)?;
        Ok(if x == 0 || x == u64::MAX || x == u64::MAX - 1 {
            None
        } else {
            Some(from_filetime(x))
        })
    };
    let (atime, mtime) = (t(8)?, t(16)?);
    if atime.is_some() || mtime.is_some() {
        vfs::set_times(fd, atime, mtime).map_err(io)?;
    }
    // CreationTime, ChangeTime and DOS attributes have no Linux equivalent; keep them
    // beside the file (vfs::keep_basic).
    let raw = |at: usize| -> Result<Option<u64>, u32> {
        let x = buf.u64(at).map_err(super::wire_err)?;
        Ok((x != 0 && x < u64::MAX - 1).then_some(x))
    };
    let (creation, change) = (raw(0)?, raw(24)?);
    let new_attrs = buf.u32(32).map_err(super::wire_err)?;
    let kept_attrs =
        (new_attrs != 0).then_some(new_attrs & (ATTR_HIDDEN | ATTR_SYSTEM | ATTR_ARCHIVE));
    if creation.is_some() || change.is_some() || kept_attrs.is_some() {
        if let Err(e) = vfs::keep_basic(fd, creation, change, kept_attrs) {
            // Filesystems without user xattrs simply do not keep them.
            tracing::debug!("keeping basic information: {e}");
        }
    }
    let attrs = buf.u32(32).map_err(super::wire_err)?;
    if attrs != 0 {
        if o.is_dir
            && attrs & ATTR_DIRECTORY == 0
            && attrs & !(ATTR_READONLY | ATTR_HIDDEN | ATTR_SYSTEM | ATTR_ARCHIVE | ATTR_NORMAL)
                != 0
        {
            return Err(status::INVALID_PARAMETER);
        }
        if !o.is_dir && attrs & ATTR_DIRECTORY != 0 {
            return Err(status::INVALID_PARAMETER);
        }
        let s = vfs::fstat(fd).map_err(io)?;
        let mode = s.st_mode & 0o7777;
        let new = if attrs & ATTR_READONLY != 0 {
            mode & !0o222
        } else {
            mode | 0o200
        };
        if new != mode {
            // SAFETY: valid fd.
            if unsafe { libc::fchmod(fd, new) } < 0 {
                return Err(io(std::io::Error::last_os_error()));
            }
        }
    }
    Ok(done())
}

fn set_disposition(srv: &Server, st: &mut ConnState, v: u64, delete: bool) -> Result<Outcome, u32> {
    let o = st.opens.get_mut(&v).ok_or(status::FILE_CLOSED)?;
    if o.granted & access::DELETE == 0 {
        return Err(status::ACCESS_DENIED);
    }
    if delete {
        if o.path.is_root() && o.path.stream.is_none() {
            return Err(status::CANNOT_DELETE);
        }
        let fd = o.handle.fd().ok_or(status::INVALID_HANDLE)?;
        let meta = vfs::meta_fd(fd).map_err(io)?;
        if !o.is_dir && meta.attributes & ATTR_READONLY != 0 && o.path.stream.is_none() {
            return Err(status::CANNOT_DELETE);
        }
        if o.is_dir && !vfs::list_dir(fd).map_err(io)?.is_empty() {
            return Err(status::DIRECTORY_NOT_EMPTY);
        }
    } else {
        o.delete_on_close = false;
    }
    if delete {
        // MS-FSA 2.1.5.14.3 with 2.1.4.12: marking the file for deletion breaks other
        // keys' handle caching first, and waits for the acks (without holding the
        // connection, see leasing::pending and suspend.rs), so their cached handles
        // can go.
        let (file, is_stream) = (o.file, o.path.stream.is_some());
        if !is_stream {
            let by = st
                .opens
                .get(&v)
                .map(|o| crate::leasing::requester(st, o))
                .ok_or(status::FILE_CLOSED)?;
            crate::leasing::pending::settle(
                &st.leases.pending,
                srv.hub.manager().before_unlink(file, None, &by),
            )?;
        }
    }
    let o = st.opens.get_mut(&v).ok_or(status::FILE_CLOSED)?;
    srv.files().entry(o.file).or_default().delete_pending = delete;
    Ok(done())
}

fn set_size(
    srv: &Server,
    st: &mut ConnState,
    v: u64,
    size: u64,
    allocation: bool,
) -> Result<Outcome, u32> {
    let o = st.opens.get_mut(&v).ok_or(status::FILE_CLOSED)?;
    if o.granted & (access::WRITE_DATA | access::APPEND_DATA) == 0 {
        return Err(status::ACCESS_DENIED);
    }
    if o.is_dir {
        return Err(status::INVALID_PARAMETER);
    }
    if size > i64::MAX as u64 {
        return Err(status::INVALID_PARAMETER);
    }
    srv.hub.before_write(o.lock_open);
    if let Some(fd) = o.handle.fd() {
        vfs::clear_change_override(fd);
    }
    match &o.handle {
        Handle::File(f) => {
            let cur = f.metadata().map_err(io)?.len();
            if !allocation || size < cur {
                f.set_len(size).map_err(io)?;
            } else if size > cur {
                // MS-FSA 2.1.5.14.1: growing the allocation reserves space without
                // changing the size; filesystems without fallocate just skip it.
                // SAFETY: valid fd; size fits i64 (checked above).
                unsafe {
                    libc::fallocate(f.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, size as i64)
                };
            }
        }
        Handle::Stream { base, name } => {
            let cur = streams::read(base.as_raw_fd(), name)
                .map(|d| d.len() as u64)
                .unwrap_or(0);
            if !allocation || size < cur {
                streams::truncate(base.as_raw_fd(), name, size).map_err(io)?;
            }
        }
        Handle::Dir(_) | Handle::Pipe => return Err(status::INVALID_PARAMETER),
    }
    let p = o.path.clone();
    notify::publish(srv, Change::modified(&p));
    Ok(done())
}

/// FileRenameInformation (MS-FSCC 2.4.37.2, SMB2 form): the new name is relative to the
/// share root; ReplaceIfExists decides whether an existing target is overwritten.
fn rename(srv: &Server, st: &mut ConnState, v: u64, buf: &Reader) -> Result<Outcome, u32> {
    let replace = buf.u8(0).map_err(super::wire_err)? != 0;
    let name_len = buf.u32(16).map_err(super::wire_err)? as usize;
    let name = utf16_to_string(buf.bytes(20, name_len).map_err(super::wire_err)?)
        .map_err(super::wire_err)?;
    let o = st.opens.get(&v).ok_or(status::FILE_CLOSED)?;
    if o.granted & access::DELETE == 0 {
        return Err(status::ACCESS_DENIED);
    }
    if let Some(old) = o.path.stream.clone() {
        return rename_stream(st, v, &old, &name, replace);
    }
    if name.starts_with(':') {
        // Turning the unnamed data stream into a named one is not supported.
        return Err(status::NOT_SUPPORTED);
    }
    let target = vfs::parse_name(name.trim_start_matches('\\'))?;
    if target.stream.is_some() || target.is_root() || o.path.is_root() {
        return Err(status::INVALID_PARAMETER);
    }
    let from = o.path.clone();
    if target == from {
        return Ok(done());
    }
    let parent_id = |p: &vfs::SmbPath| {
        srv.root
            .parent_dir(p)
            .ok()
            .and_then(|d| vfs::fstat(d.as_raw_fd()).ok())
            .map(|s| FileId::new(s.st_dev, s.st_ino))
    };
    // The rename opens the parent directory with DELETE access and without sharing
    // delete, so an open of the parent that holds DELETE access or does not share
    // delete makes it a sharing violation (as on Windows; smbtorture smb2.rename).
    if let Some(pid) = parent_id(&from) {
        let files = srv.files();
        if let Some(fs) = files.get(&pid) {
            // Attribute-only opens take no part in share modes (MS-FSA 2.1.5.1.2).
            let data = access::READ_DATA
                | access::EXECUTE
                | access::WRITE_DATA
                | access::APPEND_DATA
                | access::DELETE;
            if fs
                .handles
                .iter()
                .any(|h| h.3 & data != 0 && (h.3 & access::DELETE != 0 || h.1 & 0x4 == 0))
            {
                return Err(status::SHARING_VIOLATION);
            }
        }
    }
    {
        let files = srv.files();
        // Renaming is a delete of the old name: every other handle of the file must
        // share delete (MS-FSA 2.1.5.14.11).
        if let Some(fs) = files.get(&o.file) {
            if fs
                .handles
                .iter()
                .any(|h| h.0 != o.volatile && h.1 & 0x4 == 0)
            {
                return Err(status::SHARING_VIOLATION);
            }
        }
        // A directory with open files below it cannot be renamed (Windows returns
        // ACCESS_DENIED).
        if o.is_dir {
            let n = from.parts.len();
            let busy = files
                .values()
                .flat_map(|f| f.handles.iter())
                .any(|h| h.0 != o.volatile && h.2.len() > n && h.2[..n] == from.parts[..]);
            if busy {
                return Err(status::ACCESS_DENIED);
            }
        }
    }
    // Replacing a file someone has open is refused, as on Windows (MS-FSA 2.1.5.14.11).
    if let Ok(t) = srv
        .root
        .open_beneath(&target.rel(), libc::O_PATH | libc::O_NOFOLLOW, 0)
    {
        let ts = vfs::fstat(t.as_raw_fd()).map_err(io)?;
        let tid = FileId::new(ts.st_dev, ts.st_ino);
        if tid != o.file {
            if !replace {
                return Err(status::OBJECT_NAME_COLLISION);
            }
            if ts.st_mode & libc::S_IFMT == libc::S_IFDIR {
                return Err(status::ACCESS_DENIED);
            }
            if srv.files().get(&tid).map(|f| f.opens > 0).unwrap_or(false) {
                return Err(status::ACCESS_DENIED);
            }
        }
    }
    crate::leasing::pending::settle(
        &st.leases.pending,
        srv.hub.manager().before_rename(
            o.file,
            parent_id(&from),
            parent_id(&target),
            &crate::leasing::requester(st, o),
        ),
    )?;
    srv.root.rename(&from, &target, replace).map_err(io)?;
    // Every open below the old name now lives below the new one.
    let old = from.parts.clone();
    for op in st.opens.values_mut() {
        if op.path.parts.len() >= old.len() && op.path.parts[..old.len()] == old[..] {
            let mut parts = target.parts.clone();
            parts.extend_from_slice(&op.path.parts[old.len()..]);
            op.path.parts = parts;
        }
    }
    notify::publish(srv, Change::renamed_old(&from));
    notify::publish(srv, Change::renamed_new(&target));
    Ok(done())
}

/// A stream handle renamed to ":new[:$DATA]" (MS-FSCC 2.4.37: the new name of a stream
/// starts with a colon): the xattr moves to the new name on the same file.
fn rename_stream(
    st: &mut ConnState,
    v: u64,
    old: &str,
    name: &str,
    replace: bool,
) -> Result<Outcome, u32> {
    let Some(new) = name.strip_prefix(':') else {
        return Err(status::INVALID_PARAMETER);
    };
    let new = match new.rsplit_once(':') {
        Some((s, ty)) if ty.eq_ignore_ascii_case("$DATA") => s,
        Some(_) => return Err(status::OBJECT_NAME_INVALID),
        None => new,
    };
    if new.is_empty() {
        return Err(status::NOT_SUPPORTED);
    }
    if new.contains(['/', '\\', ':']) {
        return Err(status::OBJECT_NAME_INVALID);
    }
    let o = st.opens.get_mut(&v).ok_or(status::FILE_CLOSED)?;
    let fd = o.handle.fd().ok_or(status::INVALID_HANDLE)?;
    if new.eq_ignore_ascii_case(old) {
        return Ok(done());
    }
    if streams::exists(fd, new) && !replace {
        return Err(status::OBJECT_NAME_COLLISION);
    }
    let data = streams::read(fd, old).map_err(io)?;
    streams::write_all(fd, new, &data).map_err(io)?;
    streams::remove(fd, old).map_err(io)?;
    o.path.stream = Some(new.to_string());
    if let Handle::Stream { name, .. } = &mut o.handle {
        *name = new.to_string();
    }
    Ok(done())
}
