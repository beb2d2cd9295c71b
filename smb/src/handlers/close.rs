//! CLOSE (MS-SMB2 3.3.5.10) and the shared release path used by LOGOFF, TREE_DISCONNECT
//! and connection teardown (3.3.7.1).

use super::{reader, Outcome, Req};
use crate::notify::{self, Change};
use crate::server::Server;
use crate::session::{ConnState, Handle, Open};
use crate::vfs::{self, streams};
use crate::wire::{status, Put};
use std::sync::Arc;

const CLOSE_FLAG_POSTQUERY_ATTRIB: u16 = 0x0001;

/// Drop an open: leave the lock manager (which also drops its byte-range locks), and
/// delete the file when this was the last open of a delete-pending file (MS-FSA
/// 2.1.5.4: delete-on-close takes effect at cleanup of the last handle).
pub fn release(srv: &Server, o: Open) {
    let _ = o.closed.send(true);
    srv.hub.close(o.lock_open);
    crate::leasing::directory::on_close(srv, &o);
    let mut files = srv.files();
    let e = files.entry(o.file).or_default();
    if o.delete_on_close {
        e.delete_pending = true;
    }
    e.opens = e.opens.saturating_sub(1);
    e.handles.retain(|h| h.0 != o.volatile);
    let delete = e.opens == 0 && e.delete_pending;
    if e.opens == 0 {
        files.remove(&o.file);
    }
    drop(files);
    if delete {
        if o.path.stream.is_none() {
            let parent = srv
                .root
                .parent_dir(&o.path)
                .ok()
                .and_then(|d| vfs::fstat(std::os::fd::AsRawFd::as_raw_fd(&d)).ok())
                .map(|s| leasefs_leases::FileId::new(s.st_dev, s.st_ino));
            srv.hub.before_unlink(o.file, parent, o.owner);
        }
        let res = match &o.handle {
            Handle::Stream { base, name } => {
                streams::remove(std::os::fd::AsRawFd::as_raw_fd(base), name)
            }
            _ => srv.root.unlink(&o.path, o.is_dir),
        };
        match res {
            Ok(()) => notify::publish(srv, Change::removed(&o.path)),
            Err(e) => tracing::debug!(path = %o.path.rel(), "delete on close failed: {e}"),
        }
    }
}

pub fn handle(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let r = reader(req, 24)?;
    let flags = r.u16(2).map_err(super::wire_err)?;
    let v = super::open_mut(st, req, 8)?.volatile;
    let o = st.opens.remove(&v).ok_or(status::FILE_CLOSED)?;
    let meta = if flags & CLOSE_FLAG_POSTQUERY_ATTRIB != 0 {
        o.handle.fd().and_then(|fd| vfs::meta_fd(fd).ok())
    } else {
        None
    };
    release(srv, o);
    let mut b = Vec::with_capacity(60);
    b.put_u16(60);
    match meta {
        Some(m) => {
            b.put_u16(CLOSE_FLAG_POSTQUERY_ATTRIB);
            b.put_u32(0);
            for t in m.times() {
                b.put_u64(t);
            }
            b.put_u64(m.allocation);
            b.put_u64(m.size);
            b.put_u32(m.attributes);
        }
        None => {
            b.put_u16(0);
            b.put_zeros(56);
        }
    }
    Ok(Outcome::Done(status::SUCCESS, b))
}
