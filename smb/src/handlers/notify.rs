//! CHANGE_NOTIFY (MS-SMB2 3.3.5.19): always async. A handle subscribes to the server's
//! change events at its first request and keeps the subscription, so changes that
//! happen between two requests are delivered by the next one. Completes with the
//! pending changes, NOTIFY_ENUM_DIR when they do not fit or were lost, NOTIFY_CLEANUP
//! when the handle closes, or CANCELLED.

use super::{reader, Outcome, Req};
use crate::notify::{Change, ACTION_MODIFIED};
use crate::server::Server;
use crate::session::ConnState;
use crate::wire::{status, string_to_utf16, Put, HEADER_LEN};
use std::sync::Arc;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

const WATCH_TREE: u16 = 0x0001;
/// FILE_NOTIFY_CHANGE_FILE_NAME | FILE_NOTIFY_CHANGE_DIR_NAME (MS-SMB2 2.2.35).
const NAME_CHANGES: u32 = 0x0000_0003;
/// ATTRIBUTES | SIZE | LAST_WRITE | LAST_ACCESS | CREATION | EA | SECURITY | STREAM_*.
const DATA_CHANGES: u32 = 0x0000_0FFC;

/// A handle's subscription; the lock serializes the handle's outstanding requests.
pub type Watch = Arc<Subscription>;

pub struct Subscription {
    rx: tokio::sync::Mutex<Receiver<Change>>,
    /// OutputBufferLength of the handle's first CHANGE_NOTIFY: like Windows (and Samba),
    /// the changes a handle collects are bounded by it for the handle's life, so once
    /// it was too small every later request completes with NOTIFY_ENUM_DIR too
    /// (smbtorture smb2.notify.valid-req).
    first_buffer: usize,
}

fn encode(changes: &[Change], base: &str, max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut prev: Option<usize> = None;
    for c in changes {
        let full = if c.dir == base {
            c.name.clone()
        } else {
            let sub = c
                .dir
                .strip_prefix(base)
                .unwrap_or(&c.dir)
                .trim_start_matches('/');
            format!("{sub}/{}", c.name)
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
    let filter = r.u32(24).map_err(super::wire_err)?;
    // MS-SMB2 3.3.5.19: an OutputBufferLength above the negotiated MaxTransactSize is
    // invalid (the sizes negotiate.rs announces).
    let max_transact = match st.dialect {
        Some(crate::crypto::Dialect::Smb202) | None => 65536,
        Some(_) => crate::MAX_IO as usize,
    };
    if max > max_transact {
        return Err(status::INVALID_PARAMETER);
    }
    let o = super::open_mut(st, req, 8)?;
    if !o.is_dir {
        return Err(status::INVALID_PARAMETER);
    }
    let base = o.path.rel();
    let tree = flags & WATCH_TREE != 0;
    let mut closed = o.closed.subscribe();
    let watch = o
        .notify
        .get_or_insert_with(|| {
            Arc::new(Subscription {
                rx: tokio::sync::Mutex::new(srv.events.subscribe()),
                first_buffer: max,
            })
        })
        .clone();
    let max = max.min(watch.first_buffer);
    let relevant = move |c: &Change| {
        let in_scope =
            c.dir == base || (tree && (base.is_empty() || c.dir.starts_with(&format!("{base}/"))));
        let wanted = if c.action == ACTION_MODIFIED {
            filter & DATA_CHANGES != 0
        } else {
            filter & NAME_CHANGES != 0
        };
        in_scope && wanted
    };
    let base = o.path.rel();
    Ok(Outcome::Async(Box::pin(async move {
        let mut rx = tokio::select! {
            g = watch.rx.lock() => g,
            _ = closed.changed() => return (status::NOTIFY_CLEANUP, body(&[])),
        };
        let mut got = Vec::new();
        loop {
            tokio::select! {
                _ = closed.changed() => return (status::NOTIFY_CLEANUP, body(&[])),
                ev = rx.recv() => match ev {
                    Ok(c) if relevant(&c) => { got.push(c); break; }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => return (status::NOTIFY_ENUM_DIR, body(&[])),
                    Err(RecvError::Closed) => return (status::NOTIFY_CLEANUP, body(&[])),
                },
            }
        }
        // Everything else already queued goes in the same response.
        loop {
            match rx.try_recv() {
                Ok(c) if relevant(&c) => got.push(c),
                Ok(_) => {}
                Err(TryRecvError::Lagged(_)) => return (status::NOTIFY_ENUM_DIR, body(&[])),
                Err(_) => break,
            }
        }
        match encode(&got, &base, max) {
            Some(b) => (status::SUCCESS, body(&b)),
            None => (status::NOTIFY_ENUM_DIR, body(&[])),
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
