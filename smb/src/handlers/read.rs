//! READ (MS-SMB2 3.3.5.12).

use super::{reader, Outcome, Req};
use crate::server::Server;
use crate::session::{ConnState, Handle};
use crate::vfs::streams;
use crate::wire::create::access;
use crate::wire::{status, Put, HEADER_LEN};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

pub fn handle(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let r = reader(req, 49)?;
    let length = r.u32(4).map_err(super::wire_err)?;
    let offset = r.u64(8).map_err(super::wire_err)?;
    let min = r.u32(32).map_err(super::wire_err)?;
    if length > crate::MAX_IO {
        return Err(status::INVALID_PARAMETER);
    }
    let o = super::open_mut(st, req, 16)?;
    if o.is_dir {
        return Err(status::INVALID_DEVICE_REQUEST);
    }
    if o.granted & (access::READ_DATA | access::EXECUTE) == 0 {
        return Err(status::ACCESS_DENIED);
    }
    srv.hub
        .check_io(o.file, o.lock_open, offset, length as u64, false)?;
    let data = match &o.handle {
        Handle::File(f) => {
            let mut buf = vec![0u8; length as usize];
            let mut got = 0usize;
            while got < buf.len() {
                match f.read_at(&mut buf[got..], offset + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(status::from_io(&e)),
                }
            }
            buf.truncate(got);
            buf
        }
        Handle::Stream { base, name } => {
            let all = streams::read(std::os::fd::AsRawFd::as_raw_fd(base), name)
                .map_err(|e| status::from_io(&e))?;
            let start = (offset.min(all.len() as u64)) as usize;
            let end = start.saturating_add(length as usize).min(all.len());
            all[start..end].to_vec()
        }
        _ => return Err(status::INVALID_DEVICE_REQUEST),
    };
    // 3.3.5.12: nothing read past EOF, or less than MinimumCount, is END_OF_FILE.
    if (data.is_empty() && length > 0) || (data.len() as u32) < min {
        return Err(status::END_OF_FILE);
    }
    o.position = offset + data.len() as u64;
    let mut b = Vec::with_capacity(16 + data.len());
    b.put_u16(17);
    b.put_u8((HEADER_LEN + 16) as u8);
    b.put_u8(0);
    b.put_u32(data.len() as u32);
    b.put_u32(0);
    b.put_u32(0);
    if data.is_empty() {
        b.put_u8(0);
    } else {
        b.extend_from_slice(&data);
    }
    Ok(Outcome::Done(status::SUCCESS, b))
}
