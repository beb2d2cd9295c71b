//! CHANGE_NOTIFY (MS-SMB2 3.3.5.19): always async; completes with the first change
//! published for the watched directory (or its subtree with WATCH_TREE), with
//! NOTIFY_CLEANUP when the handle closes, or CANCELLED. Changes between two requests
//! are not queued (a client re-arms after each completion).

use super::{reader, Outcome, Req};
use crate::notify::Change;
use crate::server::Server;
use crate::session::ConnState;
use crate::wire::{status, string_to_utf16, Put, HEADER_LEN};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

const WATCH_TREE: u16 = 0x0001;

fn encode(changes: &[Change], base: &str, max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut prev: Option<usize> = None;
    for c in changes {
        let full = if c.dir == base {
            c.name.clone()
        } else {
            c.dir
                .strip_prefix(base)
                .unwrap_or(&c.dir)
                .trim_start_matches('/')
                .to_string()
                + "/"
                + &c.name
        };
        let name = string_to_utf16(&full.replace('/', "\\"));
        let start = out.len().div_ceil(4) * 4;
        out.resize(start, 0);
        if let Some(p) = prev {
            crate::wire::set_u32(&mut out, p, (start - p) as u32);
        }
        out.put_u32(0);
        out.put_u32(c.action);
        out.put_u32(name.len() as u32);
        out.extend_from_slice(&name);
        prev = Some(start);
    }
    (out.len() <= max).then_some(out)
}

pub fn handle(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let r = reader(req, 32)?;
    let flags = r.u16(2).map_err(super::wire_err)?;
    let max = r.u32(4).map_err(super::wire_err)? as usize;
    let o = super::open_mut(st, req, 8)?;
    if !o.is_dir {
        return Err(status::INVALID_PARAMETER);
    }
    let base = o.path.rel();
    let tree = flags & WATCH_TREE != 0;
    let mut closed = o.closed.subscribe();
    let mut events = srv.events.subscribe();
    Ok(Outcome::Async(Box::pin(async move {
        let relevant = |c: &Change| {
            c.dir == base || (tree && (base.is_empty() || c.dir.starts_with(&format!("{base}/"))))
        };
        loop {
            tokio::select! {
                _ = closed.changed() => return (status::NOTIFY_CLEANUP, body(&[])),
                ev = events.recv() => match ev {
                    Ok(c) if relevant(&c) => {
                        return match encode(&[c], &base, max) {
                            Some(b) => (status::SUCCESS, body(&b)),
                            None => (status::NOTIFY_ENUM_DIR, body(&[])),
                        };
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => return (status::NOTIFY_ENUM_DIR, body(&[])),
                    Err(RecvError::Closed) => return (status::NOTIFY_CLEANUP, body(&[])),
                },
            }
        }
    })))
}

fn body(data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + data.len());
    b.put_u16(9);
    b.put_u16(if data.is_empty() {
        0
    } else {
        (HEADER_LEN + 8) as u16
    });
    b.put_u32(data.len() as u32);
    if data.is_empty() {
        b.put_u8(0);
    } else {
        b.extend_from_slice(data);
    }
    b
}
