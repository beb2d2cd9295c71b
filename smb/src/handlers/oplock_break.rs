//! OPLOCK_BREAK acknowledgments (MS-SMB2 3.3.5.22): a 36-byte lease break
//! acknowledgment (2.2.24.2) or a 24-byte oplock break acknowledgment (2.2.24.1).

use super::{Outcome, Req};
use crate::leasing::context::level;
use crate::leasing::sink::oplock_wire_level;
use crate::server::Server;
use crate::session::ConnState;
use crate::wire::{status, Put, Reader};
use leasefs_leases::{AckError, ClientId, LeaseKey, LeaseState, OplockLevel};
use std::sync::Arc;

pub fn handle(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let r = Reader::new(req.body);
    match r.u16(0).map_err(super::wire_err)? {
        36 => lease_ack(srv, st, r),
        24 => oplock_ack(srv, st, req, r),
        _ => Err(status::INVALID_PARAMETER),
    }
}

/// 3.3.5.22.2: validation order and status codes are the spec's; the manager returns
/// which check failed.
fn lease_ack(srv: &Arc<Server>, st: &mut ConnState, r: Reader) -> Result<Outcome, u32> {
    let key = LeaseKey(r.guid(8).map_err(super::wire_err)?);
    let state = r.u32(24).map_err(super::wire_err)?;
    if state & !0x7 != 0 {
        return Err(status::REQUEST_NOT_ACCEPTED);
    }
    let acked = LeaseState(state as u8);
    srv.hub
        .manager()
        .ack_break(ClientId(st.client_guid), key, acked)
        .map_err(|e| match e {
            AckError::NotFound => status::OBJECT_NAME_NOT_FOUND,
            // Includes a late ack after the deadline revoked the lease (3.3.6.5).
            AckError::NotBreaking => status::UNSUCCESSFUL,
            AckError::NotSubset => status::REQUEST_NOT_ACCEPTED,
        })?;
    // 2.2.25.2: the response echoes the key and the state now held.
    let mut b = Vec::with_capacity(36);
    b.put_u16(36);
    b.put_u16(0);
    b.put_u32(0);
    b.extend_from_slice(&key.0);
    b.put_u32(acked.0 as u32);
    b.put_u64(0);
    Ok(Outcome::Done(status::SUCCESS, b))
}

/// 3.3.5.22.1: the acknowledged level must be one the break allows.
fn oplock_ack(srv: &Arc<Server>, st: &mut ConnState, req: &Req, r: Reader) -> Result<Outcome, u32> {
    let lvl = r.u8(2).map_err(super::wire_err)?;
    let state = match lvl {
        level::NONE => LeaseState::NONE,
        level::II => LeaseState::R,
        level::EXCLUSIVE => LeaseState::RW,
        level::BATCH => LeaseState::RWH,
        _ => return Err(status::INVALID_PARAMETER),
    };
    let o = super::open_mut(st, req, 8)?;
    let (open, persistent, volatile) = (o.lock_open, o.persistent, o.volatile);
    let now = srv
        .hub
        .manager()
        .ack_oplock(open, state)
        .map_err(|e| match e {
            AckError::NotFound | AckError::NotBreaking | AckError::NotSubset => {
                status::INVALID_OPLOCK_PROTOCOL
            }
        })?;
    let mut b = Vec::with_capacity(24);
    b.put_u16(24);
    b.put_u8(oplock_wire_level(OplockLevel::from_lease_state(now)));
    b.put_u8(0);
    b.put_u32(0);
    b.put_u64(persistent);
    b.put_u64(volatile);
    Ok(Outcome::Done(status::SUCCESS, b))
}
