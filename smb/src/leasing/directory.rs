//! Directory leases over SMB 3.x (issue 5): which CREATEs may get one, and the SMB
//! operations that break the leases of a parent directory.
//!
//! Grants (MS-SMB2 3.3.5.9.11): only a V2 lease context on a connection that
//! negotiated SMB2_GLOBAL_CAP_DIRECTORY_LEASING (3.x, see `handlers::negotiate`) gets a
//! directory lease, and W is masked off, so a directory holds R or RH. A V1 context on
//! a directory, or any lease on 2.x, gets no lease at all (as Windows and Samba answer).
//!
//! Breaks: the lock manager breaks the parent's leases (`LockManager::break_parent`,
//! leases/src/manager/directory.rs) when a child is created here, deleted or renamed
//! (the manager's unlink/rename triggers name the parents), or closed after it was
//! modified through the handle (MS-FSA 2.1.5.4: the last-write time is updated at
//! cleanup, which is when Windows breaks the parent; smbtorture smb2.lease.v2_request
//! checks that the write itself does not break it). Size, time and attribute changes
//! through SET_INFO are treated the same way: they mark the handle modified.
//!
//! An open whose lease context named the directory's lease as its ParentLeaseKey does
//! not break that lease.

use super::context::{self, LeaseContext};
use super::Ask;
use crate::server::Server;
use crate::session::{ConnState, Open};
use crate::vfs::{self, SmbPath};
use crate::wire::create::CreateRequest;
use crate::wire::negotiate::CAP_DIRECTORY_LEASING;
use leasefs_leases::{ClientId, FileId, LeaseKey, LeaseState, OpenId, Requester};
use std::os::fd::AsRawFd;

/// Whether this connection may hold directory leases (3.3.5.4 capability negotiated).
pub fn offered(st: &ConnState) -> bool {
    st.server_caps & CAP_DIRECTORY_LEASING != 0
}

/// The state a directory lease request may be granted at most, or None when the
/// request gets no directory lease at all (V1 context, capability not negotiated).
pub fn requested_state(st: &ConnState, c: &LeaseContext) -> Option<LeaseState> {
    if !offered(st) || c.v2.is_none() {
        return None;
    }
    // 3.3.5.9.11: a directory never caches writes; an "RWH" request is granted RH.
    Some(LeaseState((c.state & 0x7) as u8).without(LeaseState::W))
}

/// Whether a CREATE of a directory answers with a lease context.
pub fn grants(st: &ConnState, ask: &Ask) -> bool {
    match ask {
        Ask::Lease(c) => requested_state(st, c).is_some(),
        _ => false,
    }
}

/// The parent directory lease a CREATE speaks for: its V2 context's ParentLeaseKey
/// when SMB2_LEASE_FLAG_PARENT_LEASE_KEY_SET is set (2.2.13.2.10), keyed by this
/// client (lease keys are per ClientGuid).
pub fn parent_lease_of(st: &ConnState, creq: &CreateRequest) -> Option<(ClientId, LeaseKey)> {
    if creq.oplock_level != context::level::LEASE {
        return None;
    }
    let c = LeaseContext::parse(&creq.context(context::NAME)?.data).ok()?;
    c.parent_key()
        .map(|k| (ClientId(st.client_guid), LeaseKey(k)))
}

/// The lock-manager identity of the directory holding `path`.
pub fn parent_id(srv: &Server, path: &SmbPath) -> Option<FileId> {
    let d = srv.root.parent_dir(path).ok()?;
    let s = vfs::fstat(d.as_raw_fd()).ok()?;
    Some(FileId::new(s.st_dev, s.st_ino))
}

/// A CREATE is about to make a new name in `path`'s directory: break the directory's
/// leases except the one the request names as its parent (MS-FSA 2.1.5.1.2.1).
pub fn before_create_child(srv: &Server, st: &ConnState, creq: &CreateRequest, path: &SmbPath) {
    if let Some(pid) = parent_id(srv, path) {
        srv.hub.manager().break_parent(
            pid,
            &Requester::owner(st.owner()),
            parent_lease_of(st, creq),
        );
    }
}

/// What a handle remembers for its parent directory's leases.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChildOfDir {
    /// The handle wrote data: its close breaks the parent's leases.
    pub modified: bool,
    /// The ParentLeaseKey its CREATE named, which its close does not break.
    pub parent_lease: Option<(ClientId, LeaseKey)>,
}

impl ChildOfDir {
    /// `overwritten`: the CREATE truncated an existing file (OVERWRITE, SUPERSEDE).
    pub fn new(st: &ConnState, creq: &CreateRequest, overwritten: bool) -> Self {
        ChildOfDir {
            modified: overwritten,
            parent_lease: parent_lease_of(st, creq),
        }
    }
}

/// Data, size, times or attributes changed through handle `v` (WRITE, SET_INFO): the
/// parent's leases are broken when the handle closes, as for a write.
pub fn modified(st: &mut ConnState, v: u64) {
    if let Some(o) = st.opens.get_mut(&v) {
        o.dir_child.modified = true;
    }
}

/// A handle is being closed: a modified file changes its directory (MS-FSA 2.1.5.4,
/// the last-write time is set at cleanup), so the parent's leases go.
pub fn on_close(srv: &Server, o: &Open) {
    if !o.dir_child.modified || o.path.stream.is_some() {
        return;
    }
    if let Some(pid) = parent_id(srv, &o.path) {
        srv.hub
            .manager()
            .break_parent(pid, &Requester::owner(o.owner), o.dir_child.parent_lease);
    }
}

/// Tells the lock manager which directories are above a leased open, so a rename of
/// one of them (through the mount: SMB renames of a directory with open handles below
/// are refused) breaks the lease's handle caching first (DESIGN.md "rename of the file
/// or its parent"). One lookup per path component, for leased opens only.
pub fn register_ancestors(srv: &Server, path: &SmbPath, open: OpenId) {
    let n = path.parts.len();
    let dirs: Vec<FileId> = (1..n)
        .filter_map(|i| {
            let rel = path.parts[..i].join("/");
            let d = srv
                .root
                .open_beneath(&rel, libc::O_PATH | libc::O_DIRECTORY, 0)
                .ok()?;
            let s = vfs::fstat(d.as_raw_fd()).ok()?;
            Some(FileId::new(s.st_dev, s.st_ino))
        })
        .collect();
    if !dirs.is_empty() {
        srv.hub.manager().set_ancestors(open, dirs);
    }
}
