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
    // The response is built in one buffer: transport/header space, the 16-byte READ
    // response, then the file data read straight into place.
    const DATA_AT: usize = super::RESERVED + 16;
    let mut b = Vec::with_capacity(DATA_AT + length as usize);
    b.resize(DATA_AT, 0);
    let got = match &o.handle {
        Handle::File(f) => {
            b.resize(DATA_AT + length as usize, 0);
            let mut got = 0usize;
            while got < length as usize {
                match f.read_at(&mut b[DATA_AT + got..], offset + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(status::from_io(&e)),
                }
            }
            b.truncate(DATA_AT + got);
            got
        }
        Handle::Stream { base, name } => {
            let all = streams::read(std::os::fd::AsRawFd::as_raw_fd(base), name)
                .map_err(|e| status::from_io(&e))?;
            let start = (offset.min(all.len() as u64)) as usize;
            let end = start.saturating_add(length as usize).min(all.len());
            b.extend_from_slice(&all[start..end]);
            end - start
        }
        _ => return Err(status::INVALID_DEVICE_REQUEST),
    };
    // 3.3.5.12: nothing read past EOF, or less than MinimumCount, is END_OF_FILE.
    if (got == 0 && length > 0) || (got as u32) < min {
        return Err(status::END_OF_FILE);
    }
    o.position = offset + got as u64;
    let mut hdr = Vec::with_capacity(16);
    hdr.put_u16(17);
    hdr.put_u8((HEADER_LEN + 16) as u8);
    hdr.put_u8(0);
    hdr.put_u32(got as u32);
    hdr.put_u32(0);
    hdr.put_u32(0);
    b[super::RESERVED..DATA_AT].copy_from_slice(&hdr);
    if got == 0 {
        b.push(0);
    }
    Ok(Outcome::Reserved(status::SUCCESS, b))
}
