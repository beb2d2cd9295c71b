//! Command dispatch (MS-SMB2 3.3.5.2) and one module per command handler.

pub mod close;
pub mod create;
pub mod echo;
pub mod flush;
pub mod ioctl;
pub mod lock;
pub mod negotiate;
pub mod notify;
pub mod oplock_break;
pub mod query_dir;
pub mod query_info;
pub mod read;
pub mod session_setup;
pub mod set_info;
pub mod tree;
pub mod unlink;
pub mod write;

use crate::server::Server;
use crate::session::{ConnState, Open};
use crate::wire::{cmd, status, Header, Reader};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub struct Req<'a> {
    /// Effective header (related-compound fields already inherited).
    pub hdr: &'a Header,
    /// The request after the 64-byte header.
    pub body: &'a [u8],
    /// The whole request message, header included (for the preauth hash).
    pub raw: &'a [u8],
    pub encrypted: bool,
    pub related: bool,
}

pub type AsyncOp = Pin<Box<dyn Future<Output = (u32, Vec<u8>)> + Send>>;

/// Work a request started that must end before the rest of its compound runs.
pub type Finish = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Bytes a `Outcome::Reserved` body keeps free at its front: the 4-byte transport
/// length and the 64-byte SMB2 header, written in place so large READ payloads are
/// never copied again after the file read.
pub const RESERVED: usize = 4 + crate::wire::HEADER_LEN;

pub enum Outcome {
    Done(u32, Vec<u8>),
    /// Like `Done`, but the first `RESERVED` bytes of the vector are placeholders.
    Reserved(u32, Vec<u8>),
    /// Answer STATUS_PENDING now, the future's result later.
    Async(AsyncOp),
    /// No response at all (CANCEL, MS-SMB2 3.3.5.16).
    Silent,
    /// Must wait for other holders' breaks without taking the async path: the compound
    /// (possibly of this request alone) stops before this request and goes on from it,
    /// running it again, once the wait ends (`suspend`); the connection serves other
    /// frames meanwhile. With `interim`, this request alone is answered STATUS_PENDING
    /// now (a CREATE inside a compound, as Windows does).
    Suspend {
        wait: leasefs_leases::BreakWait,
        interim: bool,
    },
    /// Answered like `Done`, but the requests after it in its compound wait for the
    /// future first (a delete-on-close CLOSE whose unlink waits for breaks, `unlink`).
    DoneThenWait(u32, Vec<u8>, Finish),
    /// Drop the connection (a second NEGOTIATE, a failed VALIDATE_NEGOTIATE_INFO, an
    /// unparseable NEGOTIATE).
    Disconnect(&'static str),
}

pub fn err(s: u32) -> Outcome {
    Outcome::Done(s, vec![9, 0, 0, 0, 0, 0, 0, 0, 0])
}

pub fn ok(body: Vec<u8>) -> Outcome {
    Outcome::Done(status::SUCCESS, body)
}

impl From<Result<Outcome, u32>> for Outcome {
    fn from(r: Result<Outcome, u32>) -> Self {
        match r {
            Ok(o) => o,
            Err(s) => err(s),
        }
    }
}

pub fn dispatch(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Outcome {
    dispatch_with(srv, st, req, None)
}

/// `dispatch` for a request whose WRITE payload is still arriving (`stream_write`).
pub fn dispatch_with(
    srv: &Arc<Server>,
    st: &mut ConnState,
    req: &Req,
    payload: Option<&crate::stream_write::Payload>,
) -> Outcome {
    let c = req.hdr.command;
    if c != cmd::NEGOTIATE && !st.negotiated {
        return err(status::INVALID_PARAMETER);
    }
    let r: Result<Outcome, u32> = match c {
        cmd::NEGOTIATE => negotiate::handle(srv, st, req),
        cmd::SESSION_SETUP => session_setup::handle(srv, st, req),
        cmd::LOGOFF => session_setup::logoff(srv, st, req),
        cmd::TREE_CONNECT => tree::connect(srv, st, req),
        cmd::TREE_DISCONNECT => tree::disconnect(srv, st, req),
        cmd::ECHO => echo::echo(req),
        cmd::CANCEL => echo::cancel(st, req),
        _ => {
            // Everything below needs a valid session and tree (3.3.5.2.5, 3.3.5.2.11).
            if let Err(s) = st.session(req.hdr.session_id) {
                return err(s);
            }
            if let Err(s) = st.tree(req.hdr.session_id, req.hdr.tree_id) {
                return err(s);
            }
            match c {
                cmd::CREATE => create::handle(srv, st, req),
                cmd::CLOSE => close::handle(srv, st, req),
                cmd::FLUSH => flush::handle(srv, st, req),
                cmd::READ => read::handle(srv, st, req),
                cmd::WRITE => write::handle_with(srv, st, req, payload),
                cmd::LOCK => lock::handle(srv, st, req),
                cmd::IOCTL => ioctl::handle(srv, st, req),
                cmd::QUERY_DIRECTORY => query_dir::handle(srv, st, req),
                cmd::CHANGE_NOTIFY => notify::handle(srv, st, req),
                cmd::QUERY_INFO => query_info::handle(srv, st, req),
                cmd::SET_INFO => set_info::handle(srv, st, req),
                cmd::OPLOCK_BREAK => oplock_break::handle(srv, st, req),
                _ => Err(status::INVALID_PARAMETER),
            }
        }
    };
    if let Err(s) = &r {
        tracing::debug!(
            command = c,
            status = format_args!("{s:#x}"),
            "request failed"
        );
    }
    r.into()
}

/// Hook after a response is built, before signing: folds NEGOTIATE and SESSION_SETUP
/// responses into the preauth hash (3.3.5.4, 3.3.5.5).
pub fn after_response(st: &mut ConnState, hdr: &Header, status_code: u32, msg: &[u8]) {
    match hdr.command {
        cmd::NEGOTIATE => negotiate::hash_response(st, msg),
        cmd::SESSION_SETUP => session_setup::hash_response(st, status_code, msg),
        _ => {}
    }
}

/// The FileId of a request at `at` in the body, with 0xFFFF.. meaning "the file of the
/// previous related request" (3.3.5.2.7.2).
pub fn file_id(st: &ConnState, req: &Req, at: usize) -> Result<u64, u32> {
    let r = Reader::new(req.body);
    let p = r.u64(at).map_err(|_| status::INVALID_PARAMETER)?;
    let v = r.u64(at + 8).map_err(|_| status::INVALID_PARAMETER)?;
    if p == u64::MAX && v == u64::MAX {
        if req.related {
            return st.compound_fid.map(|(_, v)| v).ok_or(status::FILE_CLOSED);
        }
        return Err(status::FILE_CLOSED);
    }
    Ok(v)
}

/// The open a request names, checked against its session and tree (3.3.5.2.10 etc.).
pub fn open_mut<'a>(st: &'a mut ConnState, req: &Req, at: usize) -> Result<&'a mut Open, u32> {
    let v = file_id(st, req, at)?;
    match st.opens.get_mut(&v) {
        Some(o) if o.session_id == req.hdr.session_id && o.tree_id == req.hdr.tree_id => {
            // 3.3.5.2.7.2: a related request after one that names a FileId uses that
            // FileId, not only after a CREATE (smbtorture smb2.compound_async).
            let fid = (o.persistent, o.volatile);
            st.compound_fid = Some(fid);
            st.opens.get_mut(&v).ok_or(status::FILE_CLOSED)
        }
        _ => Err(status::FILE_CLOSED),
    }
}

pub fn reader<'a>(req: &Req<'a>, size: u16) -> Result<Reader<'a>, u32> {
    let r = Reader::new(req.body);
    if r.u16(0).map_err(|_| status::INVALID_PARAMETER)? != size {
        return Err(status::INVALID_PARAMETER);
    }
    Ok(r)
}

pub fn wire_err(_: crate::wire::WireError) -> u32 {
    status::INVALID_PARAMETER
}
