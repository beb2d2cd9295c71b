//! WRITE (MS-SMB2 3.3.5.13).

use super::{reader, Outcome, Req};
use crate::notify::{self, Change};
use crate::server::Server;
use crate::session::{ConnState, Handle};
use crate::stream_write::Payload;
use crate::vfs::streams;
use crate::wire::create::access;
use crate::wire::{status, Put};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Where the written bytes are: in the request message, or still arriving
/// (`stream_write`).
enum Data<'a> {
    Inline(&'a [u8]),
    Streamed(&'a Payload),
}

pub fn handle(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    handle_with(srv, st, req, None)
}

/// WRITE whose payload may be streamed. Every check runs before the first byte is
/// written; a refused WRITE leaves its payload for the connection to drain.
pub fn handle_with(
    srv: &Arc<Server>,
    st: &mut ConnState,
    req: &Req,
    streamed: Option<&Payload>,
) -> Result<Outcome, u32> {
    let r = reader(req, 49)?;
    let data_off = r.u16(2).map_err(super::wire_err)? as usize;
    let length = r.u32(4).map_err(super::wire_err)? as usize;
    let mut offset = r.u64(8).map_err(super::wire_err)?;
    if length > crate::MAX_IO as usize {
        return Err(status::INVALID_PARAMETER);
    }
    let data = match streamed {
        // stream_write::streamable checked DataOffset and Length against the frame.
        Some(p) if p.len() == length => Data::Streamed(p),
        Some(_) => return Err(status::INVALID_PARAMETER),
        None => Data::Inline(
            r.header_relative(data_off, length)
                .map_err(super::wire_err)?,
        ),
    };
    let o = super::open_mut(st, req, 16)?;
    if o.is_dir {
        return Err(status::INVALID_DEVICE_REQUEST);
    }
    if o.granted & (access::WRITE_DATA | access::APPEND_DATA) == 0 {
        return Err(status::ACCESS_DENIED);
    }
    let fd = o.handle.fd().ok_or(status::INVALID_DEVICE_REQUEST)?;
    if offset == u64::MAX {
        // MS-SMB2 2.2.21: all-ones offset with append access means end of file.
        offset = crate::vfs::fstat(fd)
            .map(|s| s.st_size as u64)
            .map_err(|e| status::from_io(&e))?;
    }
    offset
        .checked_add(length as u64)
        .filter(|e| *e <= i64::MAX as u64)
        .ok_or(status::INVALID_PARAMETER)?;
    srv.hub
        .check_io(o.file, o.lock_open, offset, length as u64, true)?;
    // Others' read caches must go before the data changes (MS-SMB2 3.3.1.4).
    srv.hub.before_write(o.lock_open);
    let written = match (&o.handle, data) {
        (Handle::File(f), Data::Inline(d)) => f.write_all_at(d, offset),
        (Handle::File(f), Data::Streamed(p)) => p.write_at(f, offset),
        (Handle::Stream { name, .. }, Data::Inline(d)) => streams::pwrite(fd, name, offset, d),
        (Handle::Stream { name, .. }, Data::Streamed(p)) => p
            .collect()
            .and_then(|d| streams::pwrite(fd, name, offset, &d)),
        _ => return Err(status::INVALID_DEVICE_REQUEST),
    };
    written.map_err(|e| status::from_io(&e))?;
    o.position = offset + length as u64;
    o.dir_child.modified = true;
    crate::vfs::clear_change_override(fd);
    let path = o.path.clone();
    notify::publish(srv, Change::modified(&path));
    let mut b = Vec::with_capacity(16);
    b.put_u16(17);
    b.put_u16(0);
    b.put_u32(length as u32);
    b.put_u32(0);
    b.put_u16(0);
    b.put_u16(0);
    Ok(Outcome::Done(status::SUCCESS, b))
}
