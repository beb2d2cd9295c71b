//! LOCK (MS-SMB2 3.3.5.14): byte-range locks live in the lock manager's table, owned by
//! the open (LockOwner::Open semantics: exact ranges, shared locks stack). A single
//! blocking lock that conflicts goes async and completes when the range frees up.

use super::{reader, Outcome, Req};
use crate::locking::LockResult;
use crate::server::Server;
use crate::session::ConnState;
use crate::wire::{status, Reader};
use std::sync::Arc;

const SHARED: u32 = 0x01;
const EXCLUSIVE: u32 = 0x02;
const UNLOCK: u32 = 0x04;
const FAIL_IMMEDIATELY: u32 = 0x10;

struct Element {
    offset: u64,
    length: u64,
    flags: u32,
}

pub fn handle(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let r = reader(req, 48)?;
    let o = super::open_mut(st, req, 8)?;
    // MS-SMB2 3.3.5.14: the open is looked up by the whole FileId; a matching volatile
    // part with a different persistent part names no open (smbtorture
    // smb2.lock.valid-request). The all-ones FileId of a related compound request is
    // resolved by open_mut.
    let persistent = r.u64(8).map_err(super::wire_err)?;
    if persistent != u64::MAX && persistent != o.persistent {
        return Err(status::FILE_CLOSED);
    }
    let count = r.u16(2).map_err(super::wire_err)? as usize;
    if count == 0 || count > 4096 {
        return Err(status::INVALID_PARAMETER);
    }
    let locks = Reader::new(r.bytes(24, count * 24).map_err(super::wire_err)?);
    let mut els = Vec::with_capacity(count);
    for i in 0..count {
        let at = i * 24;
        els.push(Element {
            offset: locks.u64(at).map_err(super::wire_err)?,
            length: locks.u64(at + 8).map_err(super::wire_err)?,
            flags: locks.u32(at + 16).map_err(super::wire_err)?,
        });
    }
    let o = super::open_mut(st, req, 8)?;
    let (file, open) = (o.file, o.lock_open);
    for e in &els {
        // MS-FSA 2.1.5.7: a range whose end wraps past 2^64 is invalid.
        if e.length > 0 && e.offset.checked_add(e.length - 1).is_none() {
            return Err(status::INVALID_LOCK_RANGE);
        }
    }
    if els[0].flags & UNLOCK != 0 {
        for e in &els {
            if e.flags != UNLOCK {
                return Err(status::INVALID_PARAMETER);
            }
            srv.hub.unlock(file, open, e.offset, e.length)?;
        }
        return Ok(Outcome::Done(status::SUCCESS, vec![4, 0, 0, 0]));
    }
    for e in &els {
        if !matches!(e.flags, SHARED | EXCLUSIVE | 0x11 | 0x12) {
            return Err(status::INVALID_PARAMETER);
        }
        // 3.3.5.14.2: only a lone lock may block.
        if els.len() > 1 && e.flags & FAIL_IMMEDIATELY == 0 {
            return Err(status::INVALID_PARAMETER);
        }
    }
    let mut taken = Vec::new();
    for e in &els {
        let exclusive = e.flags & EXCLUSIVE != 0;
        let wait = e.flags & FAIL_IMMEDIATELY == 0;
        match srv
            .hub
            .lock(file, open, e.offset, e.length, exclusive, wait)
        {
            Ok(LockResult::Granted) => taken.push((e.offset, e.length)),
            Ok(LockResult::Wait(fut)) => {
                return Ok(Outcome::Async(Box::pin(async move {
                    match fut.await {
                        Ok(()) => (status::SUCCESS, vec![4, 0, 0, 0]),
                        // The handle closed (or its tree/session went) while waiting:
                        // the lock was never granted (MS-SMB2 3.3.5.14.2).
                        Err(status::CANCELLED) => {
                            (status::RANGE_NOT_LOCKED, vec![9, 0, 0, 0, 0, 0, 0, 0, 0])
                        }
                        Err(s) => (s, vec![9, 0, 0, 0, 0, 0, 0, 0, 0]),
                    }
                })));
            }
            Err(s) => {
                // All-or-nothing: undo what this request already took.
                for (off, len) in taken {
                    let _ = srv.hub.unlock(file, open, off, len);
                }
                return Err(s);
            }
        }
    }
    Ok(Outcome::Done(status::SUCCESS, vec![4, 0, 0, 0]))
}
