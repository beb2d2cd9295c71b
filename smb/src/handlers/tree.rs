//! TREE_CONNECT (MS-SMB2 3.3.5.7) and TREE_DISCONNECT (3.3.5.8).

use super::{reader, Outcome, Req};
use crate::server::Server;
use crate::session::{ConnState, Tree};
use crate::wire::create::access;
use crate::wire::{status, utf16_to_string, Put};
use std::sync::Arc;

const SHARE_TYPE_DISK: u8 = 1;
const SHARE_TYPE_PIPE: u8 = 2;

pub fn connect(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let r = reader(req, 9)?;
    let off = r.u16(4).map_err(super::wire_err)? as usize;
    let len = r.u16(6).map_err(super::wire_err)? as usize;
    let path = utf16_to_string(r.header_relative(off, len).map_err(super::wire_err)?)
        .map_err(super::wire_err)?;
    // "\\server\share": only the share component matters.
    let share = path
        .trim_end_matches('\0')
        .rsplit('\\')
        .next()
        .unwrap_or("");
    let ipc = share.eq_ignore_ascii_case("IPC$");
    if !ipc && !share.eq_ignore_ascii_case(&srv.cfg.share_name) {
        return Err(status::BAD_NETWORK_NAME);
    }
    let read_only = srv.cfg.read_only;
    let sess = st.session(req.hdr.session_id)?;
    let id = sess.next_tree;
    sess.next_tree = sess.next_tree.wrapping_add(1).max(1);
    sess.trees.insert(id, Tree { id, ipc, read_only });
    st.reply_tree_id = Some(id);
    let mut b = Vec::with_capacity(16);
    b.put_u16(16);
    b.put_u8(if ipc {
        SHARE_TYPE_PIPE
    } else {
        SHARE_TYPE_DISK
    });
    b.put_u8(0);
    b.put_u32(0); // ShareFlags: manual caching, no DFS, no forced encryption
    b.put_u32(0); // Capabilities
    b.put_u32(if read_only {
        access::FILE_GENERIC_READ | access::FILE_GENERIC_EXECUTE
    } else {
        access::FILE_ALL
    });
    Ok(Outcome::Done(status::SUCCESS, b))
}

pub fn disconnect(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    reader(req, 4)?;
    let (sid, tid) = (req.hdr.session_id, req.hdr.tree_id);
    st.tree(sid, tid)?;
    st.close_where(srv, |o| o.session_id == sid && o.tree_id == tid);
    st.session(sid)?.trees.remove(&tid);
    Ok(Outcome::Done(status::SUCCESS, vec![4, 0, 0, 0]))
}
