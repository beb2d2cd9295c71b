//! CREATE (MS-SMB2 3.3.5.9; open/create semantics from MS-FSA 2.1.5.1).
//!
//! Order matters: resolve the name beneath the root, decide the disposition, open the
//! descriptor without truncating, register the open with the lock manager (share
//! access, MS-FSA 2.1.5.1.2), and only then truncate for OVERWRITE/SUPERSEDE, so a
//! sharing violation never destroys data.

use super::{Outcome, Req};
use crate::locking::OpenParams;
use crate::notify::{self, Change};
use crate::server::Server;
use crate::session::{ConnState, Handle, Open};
use crate::vfs::{self, streams, SmbPath};
use crate::wire::create::*;
use crate::wire::info::{FileMeta, ATTR_ARCHIVE, ATTR_HIDDEN, ATTR_READONLY, ATTR_SYSTEM};
use crate::wire::{status, Put};
use leasefs_leases::{Access, FileId, ShareAccess};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

const IMPERSONATION_DELEGATE: u32 = 3;
const BAD_IMPERSONATION_LEVEL: u32 = 0xC000_00A5;
/// Access bits a client may ask for (MS-SMB2 3.3.5.9: others are ACCESS_DENIED).
const VALID_ACCESS: u32 = 0xF21F_01FF;

/// Expand GENERIC_* and MAXIMUM_ALLOWED into file rights (MS-SMB2 3.3.5.9, MS-DTYP).
pub fn map_generic(mask: u32, read_only: bool) -> u32 {
    let mut m = mask
        & !(access::GENERIC_ALL
            | access::GENERIC_READ
            | access::GENERIC_WRITE
            | access::GENERIC_EXECUTE
            | access::MAXIMUM_ALLOWED);
    if mask & access::GENERIC_READ != 0 {
        m |= access::FILE_GENERIC_READ;
    }
    if mask & access::GENERIC_WRITE != 0 {
        m |= access::FILE_GENERIC_WRITE;
    }
    if mask & access::GENERIC_EXECUTE != 0 {
        m |= access::FILE_GENERIC_EXECUTE;
    }
    if mask & access::GENERIC_ALL != 0 {
        m |= access::FILE_ALL;
    }
    if mask & access::MAXIMUM_ALLOWED != 0 {
        m |= maximal_access(read_only);
    }
    m
}

pub fn maximal_access(read_only: bool) -> u32 {
    if read_only {
        access::FILE_GENERIC_READ | access::FILE_GENERIC_EXECUTE
    } else {
        access::FILE_ALL
    }
}

/// Reduce an access mask to the three classes share modes speak about (MS-FSA 2.1.5.1.2).
pub fn access_classes(granted: u32) -> Access {
    Access {
        read: granted & (access::READ_DATA | access::EXECUTE) != 0,
        write: granted & (access::WRITE_DATA | access::APPEND_DATA) != 0,
        delete: granted & access::DELETE != 0,
    }
}

/// How an open counts for oplock and lease breaks: `(stat_only, metadata_only)` for
/// the lock manager. MS-FSA 2.1.4.12: an open asking for nothing but
/// FILE_READ_ATTRIBUTES, FILE_WRITE_ATTRIBUTES and SYNCHRONIZE is a stat open and
/// breaks nothing; Windows also lets READ_CONTROL by leases (smbtorture
/// smb2.lease.statopen4) but not by oplocks (smb2.oplock.statopen1). An open that
/// truncates (OVERWRITE, OVERWRITE_IF, SUPERSEDE) writes, so it is never a stat open
/// whatever it asks for (smb2.oplock.exclusive5, batch13/14/16; Samba adds
/// FILE_WRITE_DATA to such an open for the same reason).
pub fn stat_class(granted: u32, truncates: bool) -> (bool, bool) {
    const STAT: u32 = access::READ_ATTRIBUTES | access::WRITE_ATTRIBUTES | access::SYNCHRONIZE;
    let only = |bits: u32| granted & bits != 0 && granted & !bits == 0;
    if truncates {
        return (false, false);
    }
    (only(STAT), only(STAT | access::READ_CONTROL))
}

/// Streams get their own identity in the lock manager: MS-FSA keeps share modes per
/// stream, so `f:s` and `f` do not conflict with each other.
pub fn stream_file_id(base: FileId, name: &str) -> FileId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.to_lowercase().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    FileId::new(base.dev ^ (h | 1 << 63), base.ino)
}

fn io_status(e: std::io::Error) -> u32 {
    status::from_io(&e)
}

fn file_id_of(fd: &OwnedFd) -> Result<FileId, u32> {
    let st = vfs::fstat(fd.as_raw_fd()).map_err(io_status)?;
    Ok(FileId::new(st.st_dev, st.st_ino))
}

pub fn handle(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let creq = CreateRequest::parse(req.body).map_err(super::wire_err)?;
    st.leases.reset(req);
    tracing::trace!(
        name = %creq.name,
        contexts = ?creq.contexts.iter().map(|c| String::from_utf8_lossy(&c.name).to_string()).collect::<Vec<_>>(),
        "CREATE"
    );
    let mut r = open(srv, st, req, &creq);
    // Issue 5: waiting for another holder's break goes async (STATUS_PENDING).
    if let Some(o) = crate::leasing::pending::outcome(st, req, &r) {
        return Ok(o);
    }
    if r.as_ref().err() == Some(&status::OBJECT_NAME_COLLISION) && creq.disposition != DISP_CREATE {
        // Another client created the name between our lookup and our create: for
        // the open-or-create dispositions that is an existing file, so look again.
        r = open(srv, st, req, &creq);
    }
    if let Err(s) = &r {
        tracing::debug!(
            name = %creq.name,
            access = format_args!("{:#x}", creq.desired_access),
            options = format_args!("{:#x}", creq.options),
            attrs = format_args!("{:#x}", creq.file_attributes),
            disposition = creq.disposition,
            status = format_args!("{s:#x}"),
            "CREATE failed"
        );
    }
    r
}

fn open(
    srv: &Arc<Server>,
    st: &mut ConnState,
    req: &Req,
    creq: &CreateRequest,
) -> Result<Outcome, u32> {
    let tree = st.tree(req.hdr.session_id, req.hdr.tree_id)?;
    if tree.ipc {
        // No named pipes are served (srvsvc/wkssvc would be RPC over them).
        return Err(status::OBJECT_NAME_NOT_FOUND);
    }
    if creq.impersonation > IMPERSONATION_DELEGATE {
        return Err(BAD_IMPERSONATION_LEVEL);
    }
    if creq.disposition > DISP_OVERWRITE_IF {
        return Err(status::INVALID_PARAMETER);
    }
    if creq.options & OPT_DIRECTORY_FILE != 0 && creq.options & OPT_NON_DIRECTORY_FILE != 0 {
        return Err(status::INVALID_PARAMETER);
    }
    if creq.desired_access & !VALID_ACCESS != 0 {
        return Err(status::ACCESS_DENIED);
    }
    if creq.desired_access == 0 {
        return Err(status::ACCESS_DENIED);
    }
    let read_only = tree.read_only;
    let granted = map_generic(creq.desired_access, read_only);
    let delete_on_close = creq.options & OPT_DELETE_ON_CLOSE != 0;
    if delete_on_close && granted & access::DELETE == 0 {
        return Err(status::INVALID_PARAMETER);
    }
    let mut path = vfs::parse_name(&creq.name)?;
    // Names are case-insensitive on the wire (vfs/case_fold.rs) unless the share was
    // asked to be case-sensitive.
    if !srv.cfg.case_sensitive {
        srv.root.fold_case(&mut path);
    }
    if srv.root.is_dir_data_stream(&path) {
        return Err(if creq.options & OPT_DIRECTORY_FILE != 0 {
            status::NOT_A_DIRECTORY
        } else {
            status::FILE_IS_A_DIRECTORY
        });
    }
    if path.is_root() && path.stream.is_none() && creq.options & OPT_NON_DIRECTORY_FILE != 0 {
        return Err(status::FILE_IS_A_DIRECTORY);
    }
    let wants_write = granted & access::ANY_WRITE != 0
        || matches!(
            creq.disposition,
            DISP_CREATE | DISP_SUPERSEDE | DISP_OVERWRITE | DISP_OVERWRITE_IF
        )
        || delete_on_close;
    if read_only && wants_write {
        // A read-only share refuses any open that could modify (MS-SMB2 3.3.5.9: the
        // share's MaximalAccess bounds what an open can be granted).
        if creq.disposition == DISP_OPEN_IF || creq.disposition == DISP_OPEN {
            if granted & access::ANY_WRITE != 0 || delete_on_close {
                return Err(status::ACCESS_DENIED);
            }
        } else {
            return Err(status::ACCESS_DENIED);
        }
    }
    let open_rw = granted & (access::WRITE_DATA | access::APPEND_DATA) != 0;

    // Does the (base) file exist? O_PATH follows symlinks beneath the root only.
    let rel = path.rel();
    let existing = match srv.root.open_beneath(&rel, libc::O_PATH, 0) {
        Ok(fd) => Some(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
        Err(e) => {
            return Err(match e.raw_os_error() {
                Some(libc::ENOTDIR) => status::OBJECT_PATH_NOT_FOUND,
                _ => io_status(e),
            })
        }
    };
    if path.stream.is_some() {
        return create_stream(
            srv,
            st,
            req,
            creq,
            &mut path,
            existing,
            granted,
            open_rw,
            delete_on_close,
        );
    }
    let mut action;
    let mut truncate = false;
    let (fd, is_dir) = match existing {
        Some(pfd) => {
            let s = vfs::fstat(pfd.as_raw_fd()).map_err(io_status)?;
            let is_dir = s.st_mode & libc::S_IFMT == libc::S_IFDIR;
            let fid = FileId::new(s.st_dev, s.st_ino);
            if srv
                .files()
                .get(&fid)
                .map(|f| f.delete_pending)
                .unwrap_or(false)
            {
                return Err(status::DELETE_PENDING);
            }
            match creq.disposition {
                DISP_CREATE => return Err(status::OBJECT_NAME_COLLISION),
                _ if is_dir && creq.options & OPT_NON_DIRECTORY_FILE != 0 => {
                    return Err(status::FILE_IS_A_DIRECTORY)
                }
                _ if !is_dir && creq.options & OPT_DIRECTORY_FILE != 0 => {
                    return Err(status::NOT_A_DIRECTORY)
                }
                DISP_OVERWRITE | DISP_OVERWRITE_IF | DISP_SUPERSEDE if is_dir => {
                    return Err(status::INVALID_PARAMETER)
                }
                DISP_OVERWRITE | DISP_OVERWRITE_IF => {
                    truncate = true;
                    action = ACTION_OVERWRITTEN;
                }
                DISP_SUPERSEDE => {
                    truncate = true;
                    action = ACTION_SUPERSEDED;
                }
                _ => action = ACTION_OPENED,
            }
            if delete_on_close && s.st_mode & 0o200 == 0 {
                return Err(status::CANNOT_DELETE);
            }
            if delete_on_close && is_dir {
                // MS-FSA 2.1.5.1.2.1: a non-empty directory cannot be opened for delete-on-close.
                let d = srv
                    .root
                    .open_beneath(&rel, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                    .map_err(io_status)?;
                if !vfs::list_dir(d.as_raw_fd()).map_err(io_status)?.is_empty() {
                    return Err(status::DIRECTORY_NOT_EMPTY);
                }
            }
            let flags = if is_dir {
                libc::O_RDONLY | libc::O_DIRECTORY
            } else if open_rw || truncate {
                libc::O_RDWR
            } else {
                libc::O_RDONLY
            };
            let fd = srv.root.open_beneath(&rel, flags, 0).map_err(io_status)?;
            // The path may have been swapped between the two opens; trust the second.
            (fd, is_dir)
        }
        None => {
            if matches!(creq.disposition, DISP_OPEN | DISP_OVERWRITE) {
                return Err(if parent_exists(srv, &path) {
                    status::OBJECT_NAME_NOT_FOUND
                } else {
                    status::OBJECT_PATH_NOT_FOUND
                });
            }
            if !parent_exists(srv, &path) {
                return Err(status::OBJECT_PATH_NOT_FOUND);
            }
            action = ACTION_CREATED;
            crate::leasing::directory::before_create_child(srv, st, creq, &path);
            if creq.options & OPT_DIRECTORY_FILE != 0 {
                srv.root.mkdir(&path).map_err(io_status)?;
                let fd = srv
                    .root
                    .open_beneath(&rel, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                    .map_err(io_status)?;
                (fd, true)
            } else {
                let mode = if creq.file_attributes & ATTR_READONLY != 0 {
                    0o444
                } else {
                    0o666
                };
                let fd = srv
                    .root
                    .open_beneath(&rel, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, mode)
                    .map_err(io_status)?;
                (fd, false)
            }
        }
    };
    let file = file_id_of(&fd)?;
    let classes = access_classes(granted);
    let (stat_only, metadata_only) = stat_class(granted, truncate);
    let params = OpenParams {
        file,
        owner: st.owner(),
        access: classes,
        share: ShareAccess((creq.share_access & 7) as u8),
        stat_only,
        metadata_only,
        overwrite: truncate,
        is_dir,
    };
    let ask = crate::leasing::ask(st, creq)?;
    let lock_open = match crate::leasing::open(srv, st, &params, &ask) {
        Ok(id) => id,
        Err(s) => {
            if action == ACTION_CREATED {
                // Nobody else could have had it open; undo our creation.
                let _ = srv.root.unlink(&path, is_dir);
            }
            return Err(s);
        }
    };
    let f = std::fs::File::from(fd);
    if truncate {
        if let Err(e) = f.set_len(0) {
            srv.hub.close(lock_open);
            return Err(io_status(e));
        }
        if action == ACTION_OVERWRITTEN || action == ACTION_SUPERSEDED {
            action = if creq.disposition == DISP_SUPERSEDE {
                ACTION_SUPERSEDED
            } else {
                ACTION_OVERWRITTEN
            };
        }
    }
    if action == ACTION_CREATED || truncate {
        // MS-FSA 2.1.5.1.2.1: a new or overwritten file takes the requested DOS
        // attributes; Linux has none, so they are kept in an xattr (vfs::keep_basic).
        let a = creq.file_attributes & (ATTR_HIDDEN | ATTR_SYSTEM | ATTR_ARCHIVE);
        if a != 0 {
            let _ = vfs::keep_basic(f.as_raw_fd(), None, None, Some(a));
        }
    }
    let meta = vfs::meta_fd(f.as_raw_fd()).map_err(io_status)?;
    let handle = if is_dir {
        Handle::Dir(f)
    } else {
        Handle::File(f)
    };
    if action == ACTION_CREATED {
        notify::publish(srv, Change::added(&path));
    } else if truncate {
        notify::publish(srv, Change::modified(&path));
    }
    finish(
        srv,
        st,
        req,
        creq,
        path,
        handle,
        file,
        lock_open,
        granted,
        is_dir,
        delete_on_close,
        action,
        meta,
    )
}

fn parent_exists(srv: &Server, path: &SmbPath) -> bool {
    srv.root
        .open_beneath(&path.parent_rel(), libc::O_PATH | libc::O_DIRECTORY, 0)
        .is_ok()
}

#[allow(clippy::too_many_arguments)]
fn create_stream(
    srv: &Arc<Server>,
    st: &mut ConnState,
    req: &Req,
    creq: &CreateRequest,
    path: &mut SmbPath,
    existing: Option<OwnedFd>,
    granted: u32,
    open_rw: bool,
    delete_on_close: bool,
) -> Result<Outcome, u32> {
    let sname = path.stream.clone().unwrap_or_default();
    if creq.options & OPT_DIRECTORY_FILE != 0 {
        return Err(status::NOT_A_DIRECTORY);
    }
    let rel = path.rel();
    let base_created = existing.is_none();
    let base = match existing {
        Some(_) => {
            let flags = if open_rw || creq.disposition != DISP_OPEN {
                libc::O_RDWR
            } else {
                libc::O_RDONLY
            };
            match srv.root.open_beneath(&rel, flags, 0) {
                Ok(fd) => fd,
                // a directory's streams: xattrs need a readable descriptor only
                Err(e) if e.raw_os_error() == Some(libc::EISDIR) => srv
                    .root
                    .open_beneath(&rel, libc::O_RDONLY, 0)
                    .map_err(io_status)?,
                Err(e) => return Err(io_status(e)),
            }
        }
        None => {
            if matches!(creq.disposition, DISP_OPEN | DISP_OVERWRITE) {
                return Err(status::OBJECT_NAME_NOT_FOUND);
            }
            srv.root
                .open_beneath(&rel, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, 0o666)
                .map_err(io_status)?
        }
    };
    let exists = streams::exists(base.as_raw_fd(), &sname);
    let (action, truncate) = match (exists, creq.disposition) {
        (true, DISP_CREATE) => return Err(status::OBJECT_NAME_COLLISION),
        (true, DISP_OVERWRITE | DISP_OVERWRITE_IF) => (ACTION_OVERWRITTEN, true),
        (true, DISP_SUPERSEDE) => (ACTION_SUPERSEDED, true),
        (true, _) => (ACTION_OPENED, false),
        (false, DISP_OPEN | DISP_OVERWRITE) => return Err(status::OBJECT_NAME_NOT_FOUND),
        (false, _) => (ACTION_CREATED, false),
    };
    let base_id = file_id_of(&base)?;
    let file = stream_file_id(base_id, &sname);
    let classes = access_classes(granted);
    let (stat_only, metadata_only) = stat_class(granted, truncate);
    let params = OpenParams {
        file,
        owner: st.owner(),
        access: classes,
        share: ShareAccess((creq.share_access & 7) as u8),
        stat_only,
        metadata_only,
        overwrite: truncate,
        is_dir: false,
    };
    let ask = crate::leasing::ask(st, creq)?;
    let lock_open = crate::leasing::open(srv, st, &params, &ask)?;
    let res = if action == ACTION_CREATED || truncate {
        streams::write_all(base.as_raw_fd(), &sname, &[])
    } else {
        Ok(())
    };
    if let Err(e) = res {
        srv.hub.close(lock_open);
        if base_created {
            let _ = srv.root.unlink(path, false);
        }
        return Err(io_status(e));
    }
    let mut meta = vfs::meta_fd(base.as_raw_fd()).map_err(io_status)?;
    let len = streams::read(base.as_raw_fd(), &sname)
        .map(|d| d.len() as u64)
        .unwrap_or(0);
    meta.size = len;
    meta.allocation = len.div_ceil(4096) * 4096;
    meta.is_dir = false;
    meta.attributes &= !crate::wire::info::ATTR_DIRECTORY;
    if meta.attributes == 0 {
        meta.attributes = crate::wire::info::ATTR_ARCHIVE;
    }
    let handle = Handle::Stream {
        base: std::fs::File::from(base),
        name: sname,
    };
    finish(
        srv,
        st,
        req,
        creq,
        path.clone(),
        handle,
        file,
        lock_open,
        granted,
        false,
        delete_on_close,
        action,
        meta,
    )
}

#[allow(clippy::too_many_arguments)]
fn finish(
    srv: &Arc<Server>,
    st: &mut ConnState,
    req: &Req,
    creq: &CreateRequest,
    path: SmbPath,
    handle: Handle,
    file: FileId,
    lock_open: leasefs_leases::OpenId,
    granted: u32,
    is_dir: bool,
    delete_on_close: bool,
    action: u32,
    meta: FileMeta,
) -> Result<Outcome, u32> {
    let tree = st.tree(req.hdr.session_id, req.hdr.tree_id)?;
    let mut contexts = Vec::new();
    if creq.context(b"MxAc").is_some() {
        // MS-SMB2 2.2.14.2.5: QueryStatus then MaximalAccess.
        let mut d = Vec::new();
        d.put_u32(status::SUCCESS);
        d.put_u32(maximal_access(tree.read_only));
        contexts.push(CreateContext {
            name: b"MxAc".to_vec(),
            data: d,
        });
    }
    if creq.context(b"QFid").is_some() {
        // MS-SMB2 2.2.14.2.9: DiskFileId (our inode) + VolumeId, 16 reserved bytes.
        let mut d = Vec::new();
        d.put_u64(meta.index);
        d.put_u64(file.dev);
        d.put_zeros(16);
        contexts.push(CreateContext {
            name: b"QFid".to_vec(),
            data: d,
        });
    }
    let v = srv
        .next_handle
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    {
        let mut files = srv.files();
        let e = files.entry(file).or_default();
        e.opens += 1;
        e.handles.push((
            v,
            (creq.share_access & 7) as u8,
            path.parts.clone(),
            granted,
        ));
    }
    // Issue 5: granted oplock level / lease context, and the break route.
    let (oplock_level, lease_ctx, leasing) = crate::leasing::finish_create(
        st,
        req.hdr.session_id,
        req.hdr.tree_id,
        req.encrypted,
        (v, v),
    );
    contexts.extend(lease_ctx);
    if leasing.is_some() {
        crate::leasing::directory::register_ancestors(srv, &path, lock_open);
    }
    let open = Open {
        persistent: v,
        volatile: v,
        session_id: req.hdr.session_id,
        tree_id: req.hdr.tree_id,
        path,
        handle,
        file,
        lock_open,
        owner: st.owner(),
        granted,
        is_dir,
        delete_on_close,
        position: 0,
        mode: creq.options & 0x0000_003E,
        listing: None,
        closed: tokio::sync::watch::channel(false).0,
        notify: None,
        leasing,
        dir_child: crate::leasing::directory::ChildOfDir::new(
            st,
            creq,
            action == ACTION_OVERWRITTEN || action == ACTION_SUPERSEDED,
        ),
    };
    st.opens.insert(v, open);
    st.compound_fid = Some((v, v));
    let resp = CreateResponse {
        oplock_level,
        action,
        times: meta.times(),
        allocation: meta.allocation,
        eof: meta.size,
        attributes: meta.attributes,
        file_id: (v, v),
        contexts,
    };
    let mut body = Vec::new();
    resp.write(&mut body);
    Ok(Outcome::Done(status::SUCCESS, body))
}
