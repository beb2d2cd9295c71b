//! FLUSH (MS-SMB2 3.3.5.11).

use super::{reader, Outcome, Req};
use crate::server::Server;
use crate::session::{ConnState, Handle};
use crate::wire::create::access;
use crate::wire::status;
use std::sync::Arc;

pub fn handle(_srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    reader(req, 24)?;
    let o = super::open_mut(st, req, 8)?;
    // 3.3.5.11: flushing needs write or append access.
    if o.granted & (access::WRITE_DATA | access::APPEND_DATA) == 0 {
        return Err(status::ACCESS_DENIED);
    }
    if let Handle::File(f) = &o.handle {
        f.sync_data().map_err(|e| status::from_io(&e))?;
    }
    Ok(Outcome::Done(status::SUCCESS, vec![4, 0, 0, 0]))
}
