//! IOCTL (MS-SMB2 3.3.5.15): VALIDATE_NEGOTIATE_INFO (3.3.5.15.12) for 3.0/3.0.2, DFS
//! referrals answered "not a DFS share", everything else STATUS_NOT_SUPPORTED.

use super::{reader, Outcome, Req};
use crate::crypto::Dialect;
use crate::server::Server;
use crate::session::ConnState;
use crate::wire::{status, Put, Reader, HEADER_LEN};
use std::sync::Arc;

const FSCTL_VALIDATE_NEGOTIATE_INFO: u32 = 0x0014_0204;
const FSCTL_DFS_GET_REFERRALS: u32 = 0x0006_0194;
const FSCTL_DFS_GET_REFERRALS_EX: u32 = 0x0006_01B0;
const FSCTL_GET_REPARSE_POINT: u32 = 0x0009_00A8;
const FSCTL_CREATE_OR_GET_OBJECT_ID: u32 = 0x0009_00C0;
const NOT_A_REPARSE_POINT: u32 = 0xC000_0275;

fn response(ctl: u32, fid: (u64, u64), out: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(48 + out.len());
    b.put_u16(49);
    b.put_u16(0);
    b.put_u32(ctl);
    b.put_u64(fid.0);
    b.put_u64(fid.1);
    b.put_u32((HEADER_LEN + 48) as u32);
    b.put_u32(0);
    b.put_u32((HEADER_LEN + 48) as u32);
    b.put_u32(out.len() as u32);
    b.put_u32(0);
    b.put_u32(0);
    b.extend_from_slice(out);
    if out.is_empty() {
        b.put_u8(0);
    }
    b
}

pub fn handle(_srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let r = reader(req, 57)?;
    let ctl = r.u32(4).map_err(super::wire_err)?;
    let fid = (
        r.u64(8).map_err(super::wire_err)?,
        r.u64(16).map_err(super::wire_err)?,
    );
    let in_off = r.u32(24).map_err(super::wire_err)? as usize;
    let in_len = r.u32(28).map_err(super::wire_err)? as usize;
    let max_out = r.u32(44).map_err(super::wire_err)? as usize;
    // Everything but the connection-level FSCTLs names a file: a stale handle is
    // FILE_CLOSED whatever the control code (3.3.5.15).
    if !matches!(
        ctl,
        FSCTL_VALIDATE_NEGOTIATE_INFO | FSCTL_DFS_GET_REFERRALS | FSCTL_DFS_GET_REFERRALS_EX
    ) {
        super::open_mut(st, req, 8)?;
    }
    let input = r.header_relative(in_off, in_len).map_err(super::wire_err)?;
    match ctl {
        FSCTL_VALIDATE_NEGOTIATE_INFO => validate_negotiate(st, ctl, fid, input, max_out),
        FSCTL_DFS_GET_REFERRALS | FSCTL_DFS_GET_REFERRALS_EX => Err(status::NOT_FOUND),
        FSCTL_CREATE_OR_GET_OBJECT_ID => {
            // FILE_OBJECTID_BUFFER (MS-FSCC 2.1.3.1): derived from the inode so it is
            // stable for the file's life.
            let o = super::open_mut(st, req, 8)?;
            let mut id = Vec::with_capacity(64);
            id.put_u64(o.file.ino);
            id.put_u64(o.file.dev);
            id.put_zeros(48);
            if max_out < id.len() {
                return Err(status::BUFFER_TOO_SMALL);
            }
            Ok(Outcome::Done(status::SUCCESS, response(ctl, fid, &id)))
        }
        FSCTL_GET_REPARSE_POINT => {
            super::open_mut(st, req, 8)?;
            Err(NOT_A_REPARSE_POINT)
        }
        _ => Err(status::NOT_SUPPORTED),
    }
}

/// The client re-states what it sent in NEGOTIATE; any difference means a downgrade by
/// a man in the middle and the connection must not continue (3.3.5.15.12).
fn validate_negotiate(
    st: &mut ConnState,
    ctl: u32,
    fid: (u64, u64),
    input: &[u8],
    max_out: usize,
) -> Result<Outcome, u32> {
    let d = st.dialect.ok_or(status::ACCESS_DENIED)?;
    if d == Dialect::Smb311 {
        // 3.1.1 is protected by the preauth hash; Windows drops the connection here.
        return Err(status::ACCESS_DENIED);
    }
    let r = Reader::new(input);
    let caps = r.u32(0).map_err(|_| status::INVALID_PARAMETER)?;
    let guid = r.guid(4).map_err(|_| status::INVALID_PARAMETER)?;
    let mode = r.u16(20).map_err(|_| status::INVALID_PARAMETER)?;
    let n = r.u16(22).map_err(|_| status::INVALID_PARAMETER)? as usize;
    let mut dialects = Vec::with_capacity(n);
    for i in 0..n {
        dialects.push(r.u16(24 + 2 * i).map_err(|_| status::INVALID_PARAMETER)?);
    }
    if caps != st.client_caps
        || guid != st.client_guid
        || mode != st.client_security_mode
        || dialects != st.client_dialects
    {
        tracing::warn!(conn = st.id, "VALIDATE_NEGOTIATE_INFO mismatch");
        return Ok(Outcome::Disconnect("VALIDATE_NEGOTIATE_INFO mismatch"));
    }
    if max_out < 24 {
        return Err(status::INVALID_PARAMETER);
    }
    let mut out = Vec::with_capacity(24);
    out.put_u32(st.server_caps);
    out.extend_from_slice(&st.server_guid);
    out.put_u16(st.server_security_mode);
    out.put_u16(d.to_wire());
    Ok(Outcome::Done(status::SUCCESS, response(ctl, fid, &out)))
}
