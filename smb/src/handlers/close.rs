//! CLOSE (MS-SMB2 3.3.5.10) and the shared release path used by LOGOFF, TREE_DISCONNECT
//! and connection teardown (3.3.7.1).

use super::{reader, unlink, Outcome, Req};
use crate::server::Server;
use crate::session::{ConnState, Open};
use crate::vfs;
use crate::wire::{status, Put};
use leasefs_leases::Requester;
use std::sync::Arc;

const CLOSE_FLAG_POSTQUERY_ATTRIB: u16 = 0x0001;

/// Drop an open: leave the lock manager (which also drops its byte-range locks), and
/// delete the file when this was the last open of a delete-pending file (MS-FSA
/// 2.1.5.4: delete-on-close takes effect at cleanup of the last handle). `by` is the
/// handle's requester, whose own lease key no unlink break touches (MS-SMB2 3.3.1.4).
///
/// When other holders' handle caching must be broken first, the rest finishes on its
/// own task (`unlink`), returned so CLOSE can answer once it is done.
pub fn release(srv: &Arc<Server>, o: Open, by: &Requester) -> Option<unlink::Finishing> {
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
    // This handle's delete-on-close made the file delete-pending beside other handles.
    let pending_beside_others = o.delete_on_close && e.opens > 0;
    if e.opens == 0 {
        files.remove(&o.file);
    }
    drop(files);
    if delete {
        unlink::last_close(srv, o, by)
    } else if pending_beside_others && o.path.stream.is_none() {
        unlink::became_pending(srv, o.file, by)
    } else {
        None
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
    let by = crate::leasing::requester(st, &o);
    let finishing = release(srv, o, &by);
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
    match finishing {
        None => Ok(Outcome::Done(status::SUCCESS, b)),
        // Other holders' H breaks are under way: answer once they and the unlink are
        // done, STATUS_PENDING meanwhile (MS-SMB2 3.3.4.2), so this connection keeps
        // serving requests (the holder's ack may come on it). Only the last request of
        // a compound may go async; elsewhere the close is answered with the compound,
        // whose next requests run once the unlink is done (suspend.rs).
        Some(f) if req.hdr.next_command == 0 => Ok(Outcome::Async(Box::pin(async move {
            let _ = f.await;
            (status::SUCCESS, b)
        }))),
        Some(f) => Ok(Outcome::DoneThenWait(
            status::SUCCESS,
            b,
            Box::pin(async move {
                let _ = f.await;
            }),
        )),
    }
}
