//! One TCP connection: Direct TCP framing (MS-SMB2 2.1: a zero byte and a 24-bit
//! big-endian length), decryption, compound splitting (3.3.5.2.7), signature checks
//! (3.3.5.2.4), dispatch, and the response path (credits 3.3.1.2, signing 3.3.4.1.1,
//! encryption 3.3.4.1.4, async interim responses 3.3.4.2).
//!
//! Requests of a connection are handled in order on this task; handlers do blocking
//! file I/O under `block_in_place`. A large plain WRITE is handed over before its
//! payload is all in and written as it arrives (`stream_write`). Operations that must
//! wait (a blocking byte-range lock, CHANGE_NOTIFY, a CREATE or CLOSE waiting for a
//! lease break) answer STATUS_PENDING at once and finish on their own task; a compound
//! whose request must wait for a break where it may not go async stops there and
//! resumes on this task when the wait ends (`suspend`). Nothing here waits for another
//! holder in place.

use crate::crypto;
use crate::handlers::{self, Outcome};
use crate::server::Server;
use crate::session::{ConnState, SecSnapshot};
use crate::stream_write;
use crate::suspend::{Cursor, Suspended};
use crate::wire::{self, cmd, status, Header, HEADER_LEN};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("idle timeout")]
    Idle,
}

/// Pending async operations of a connection, by AsyncId: the sender cancels it.
pub type PendingMap = Arc<Mutex<HashMap<u64, (u64, oneshot::Sender<()>)>>>;

pub async fn run(srv: Arc<Server>, stream: TcpStream, id: u64) -> Result<(), ConnError> {
    let live =
        crate::liveness::Liveness::attach(&stream, id, srv.hub.manager().config().break_timeout);
    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    let live_w = live.clone();
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                break;
            }
            if let Some(l) = &live_w {
                l.wrote(&frame);
            }
        }
        let _ = wr.shutdown().await;
    });
    let pending: PendingMap = Arc::new(Mutex::new(HashMap::new()));
    let mut st = ConnState::new(id, tx.clone(), Arc::clone(&pending));
    if let Some(l) = &live {
        st.leases.sink.watch_liveness(Arc::clone(l));
    }
    // Frames are read on their own task, at most FRAME_QUEUE ahead of the one being
    // handled, so receiving the next WRITE overlaps with writing the previous one to
    // disk while memory per connection stays bounded.
    let (ftx, frx) = mpsc::channel::<Result<Incoming, ConnError>>(FRAME_QUEUE);
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>(FRAME_QUEUE + 1);
    let reader = tokio::spawn(read_frames(Arc::clone(&srv), rd, ftx, free_rx));
    let result = read_loop(&srv, &mut st, frx, free_tx, &tx).await;
    reader.abort();
    // Teardown: pending operations end, opens close (delete-on-close applies, MS-SMB2
    // 3.3.7.1), and everything this connection held in the lock manager is released.
    for (_, (_, cancel)) in pending.lock().unwrap_or_else(|p| p.into_inner()).drain() {
        let _ = cancel.send(());
    }
    tokio::task::block_in_place(|| st.teardown(&srv));
    drop(st);
    drop(tx);
    let _ = writer.await;
    if let Some(l) = live {
        l.close();
    }
    result
}

/// Frames read ahead of the one being handled.
const FRAME_QUEUE: usize = 2;

/// A frame as the request loop receives it.
enum Incoming {
    Whole(Vec<u8>),
    /// A large plain WRITE: its header and fixed part, and the payload still arriving
    /// (`stream_write`).
    Stream(Vec<u8>, stream_write::Payload),
}

/// What `read_one` read.
enum Read {
    Whole(Vec<u8>),
    /// The first `stream_write::HEAD` bytes of a streamable WRITE; `rest` more follow.
    StreamHead(Vec<u8>, usize),
}

/// Direct TCP framing (MS-SMB2 2.1): a zero byte, a 24-bit length, the message. A bad
/// length or a silent peer ends the connection; buffers come back through `free` so
/// large frames are not reallocated each time.
async fn read_frames(
    srv: Arc<Server>,
    mut rd: tokio::net::tcp::OwnedReadHalf,
    out: mpsc::Sender<Result<Incoming, ConnError>>,
    mut free: mpsc::Receiver<Vec<u8>>,
) {
    let (pieces_back, mut pieces) = mpsc::channel(stream_write::PIECES_AHEAD + 2);
    loop {
        let r = read_one(&srv, &mut rd, &mut free).await;
        let stop = !matches!(r, Ok(Some(_)));
        let (msg, rest) = match r {
            Ok(Some(Read::Whole(buf))) => (Ok(Incoming::Whole(buf)), None),
            Ok(Some(Read::StreamHead(head, rest))) => {
                let (ptx, prx) = mpsc::channel(stream_write::PIECES_AHEAD);
                let p = stream_write::Payload::new(prx, rest, pieces_back.clone());
                (Ok(Incoming::Stream(head, p)), Some((ptx, rest)))
            }
            Ok(None) => return, // clean EOF: dropping `out` ends the request loop
            Err(e) => (Err(e), None),
        };
        if out.send(msg).await.is_err() || stop {
            return;
        }
        if let Some((ptx, rest)) = rest {
            // The next frame is read only once this payload is all in, so requests
            // stay in order.
            if let Err(e) = read_payload(&srv, &mut rd, ptx, rest, &mut pieces).await {
                let _ = out.send(Err(e)).await;
                return;
            }
        }
    }
}

/// The payload of a streamed WRITE, in pieces. A handler that went away (connection
/// ending) is not an error here; the request loop notices on its own.
async fn read_payload(
    srv: &Server,
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    ptx: mpsc::Sender<Vec<u8>>,
    mut rest: usize,
    pieces: &mut mpsc::Receiver<Vec<u8>>,
) -> Result<(), ConnError> {
    while rest > 0 {
        let mut piece = pieces.try_recv().unwrap_or_default();
        piece.resize(rest.min(stream_write::PIECE), 0);
        tokio::time::timeout(srv.cfg.idle_timeout, rd.read_exact(&mut piece))
            .await
            .map_err(|_| ConnError::Idle)??;
        rest -= piece.len();
        if ptx.send(piece).await.is_err() {
            // Nobody consumes it any more; keep reading so framing stays intact
            // until the loop ends the connection.
            continue;
        }
    }
    Ok(())
}

async fn read_one(
    srv: &Server,
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    free: &mut mpsc::Receiver<Vec<u8>>,
) -> Result<Option<Read>, ConnError> {
    let mut nb = [0u8; 4];
    match tokio::time::timeout(srv.cfg.idle_timeout, rd.read_exact(&mut nb)).await {
        Err(_) => return Err(ConnError::Idle),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Ok(r) => {
            r?;
        }
    }
    if nb[0] != 0 {
        return Err(ConnError::Protocol("not a session message"));
    }
    let len = u32::from_be_bytes([0, nb[1], nb[2], nb[3]]) as usize;
    if len < 4 || len > srv.cfg.max_frame {
        return Err(ConnError::Protocol("frame length"));
    }
    let mut head = Vec::new();
    if len >= stream_write::STREAM_MIN {
        head.resize(stream_write::HEAD, 0);
        tokio::time::timeout(srv.cfg.idle_timeout, rd.read_exact(&mut head))
            .await
            .map_err(|_| ConnError::Idle)??;
        if stream_write::streamable(&head, len) {
            return Ok(Some(Read::StreamHead(head, len - stream_write::HEAD)));
        }
    }
    // A reused buffer keeps its length, so only bytes past it get zeroed.
    let mut buf = free.try_recv().unwrap_or_default();
    buf.resize(len, 0);
    buf[..head.len()].copy_from_slice(&head);
    tokio::time::timeout(srv.cfg.idle_timeout, rd.read_exact(&mut buf[head.len()..]))
        .await
        .map_err(|_| ConnError::Idle)??;
    Ok(Some(Read::Whole(buf)))
}

async fn read_loop(
    srv: &Arc<Server>,
    st: &mut ConnState,
    mut frames_in: mpsc::Receiver<Result<Incoming, ConnError>>,
    free: mpsc::Sender<Vec<u8>>,
    tx: &mpsc::Sender<Vec<u8>>,
) -> Result<(), ConnError> {
    let mut retries = st.leases.pending.take_queue();
    let (resume_tx, mut resume_rx) = mpsc::unbounded_channel::<Box<Suspended>>();
    loop {
        // Issue 5: a CREATE whose break wait ended runs again between frames
        // (leasing::pending), and so does a compound that waited (suspend). All
        // branches are cancel-safe channel receives.
        let progress = tokio::select! {
            job = crate::leasing::pending::next_retry(&mut retries) => {
                if let Some(job) = job {
                    tokio::task::block_in_place(|| crate::leasing::pending::run(srv, st, job));
                }
                continue;
            }
            s = resume_rx.recv() => match s {
                Some(s) => tokio::task::block_in_place(|| {
                    process_compound(srv, st, &s.plain, s.cursor, None)
                })?,
                None => continue,
            },
            f = frames_in.recv() => {
                match f {
                    None => return Ok(()),
                    Some(f) => match f? {
                        Incoming::Whole(buf) => {
                            let p = tokio::task::block_in_place(|| {
                                process_frame(srv, st, &buf)
                            })?;
                            // Hand the buffer back for the next frame (dropped if the
                            // queue is full).
                            let _ = free.try_send(buf);
                            p
                        }
                        Incoming::Stream(head, payload) => {
                            tokio::task::block_in_place(|| -> Result<Progress, ConnError> {
                                let p = process_compound(
                                    srv,
                                    st,
                                    &head,
                                    Cursor::new(None),
                                    Some(&payload),
                                );
                                // A WRITE refused before writing leaves its payload.
                                payload
                                    .drain()
                                    .map_err(|_| ConnError::Protocol("WRITE cut short"))?;
                                p
                            })?
                        }
                    },
                }
            }
        };
        match progress {
            Progress::Frames(frames) => {
                for f in frames {
                    if tx.send(f).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Progress::Suspended(s, w, interim) => {
                crate::suspend::park(st, s, w, resume_tx.clone());
                if let Some(f) = interim {
                    if tx.send(f).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Progress::After(s, done) => crate::suspend::park_after(s, done, resume_tx.clone()),
        }
    }
}

/// What handling a frame (or resuming a compound) produced.
enum Progress {
    Frames(Vec<Vec<u8>>),
    /// The compound waits for a break before one of its requests (`suspend`), with the
    /// interim response to send for that request, if it gets one.
    Suspended(Box<Suspended>, leasefs_leases::BreakWait, Option<Vec<u8>>),
    /// The compound goes on from its next request once the work is done.
    After(Box<Suspended>, handlers::Finish),
}

/// The STATUS_PENDING interim response (MS-SMB2 3.3.4.2) of one request, as its own
/// frame, signed or encrypted like any response of the session.
fn interim_frame(st: &mut ConnState, hdr: &Header, async_id: u64, sec: &SecSnapshot) -> Vec<u8> {
    let rh = Header {
        credit_charge: hdr.credit_charge,
        status: status::PENDING,
        command: hdr.command,
        credits: st.grant_credits(hdr),
        flags: wire::FLAGS_SERVER_TO_REDIR | wire::FLAGS_ASYNC_COMMAND,
        next_command: 0,
        message_id: hdr.message_id,
        tree_id: 0,
        async_id,
        session_id: hdr.session_id,
        signature: [0; 16],
    };
    let mut msg = Vec::with_capacity(HEADER_LEN + 9);
    rh.write(&mut msg);
    msg.extend_from_slice(&error_body());
    let mut isec = sec.clone();
    isec.signing_required = sec.should_sign(
        hdr.flags & wire::FLAGS_SIGNED != 0,
        hdr.command,
        status::PENDING,
    );
    frame(finish(&isec, msg))
}

fn frame(msg: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 4);
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}

/// One transport frame in, zero or more frames out.
fn process_frame(srv: &Arc<Server>, st: &mut ConnState, buf: &[u8]) -> Result<Progress, ConnError> {
    let proto = buf.get(0..4).ok_or(ConnError::Protocol("short frame"))?;
    if proto == wire::SMB1_ID {
        return handlers::negotiate::smb1_negotiate(srv, st, buf)
            .map(|m| Progress::Frames(vec![frame(m)]));
    }
    let (plain, encrypted_session) = if proto == wire::TRANSFORM_ID {
        let sid =
            crypto::transform_session_id(buf).ok_or(ConnError::Protocol("transform header"))?;
        let (cipher, key) = st
            .decryption_key(sid)
            .ok_or(ConnError::Protocol("encrypted message for unknown session"))?;
        let (_, plain) = crypto::decrypt_message(cipher, &key, buf)
            .map_err(|_| ConnError::Protocol("decryption failed"))?;
        (std::borrow::Cow::Owned(plain), Some(sid))
    } else if proto == wire::PROTOCOL_ID {
        (std::borrow::Cow::Borrowed(buf), None)
    } else {
        return Err(ConnError::Protocol("unknown protocol id"));
    };
    process_compound(srv, st, &plain, Cursor::new(encrypted_session), None)
}

/// The response of one request inside a compound, before chaining.
pub(crate) struct Resp {
    msg: Vec<u8>,
    sec: SecSnapshot,
    /// Sign this message (3.3.4.1.1).
    sign: bool,
}

fn error_body() -> Vec<u8> {
    // MS-SMB2 2.2.2: StructureSize 9, no error contexts, one byte of ErrorData.
    vec![9, 0, 0, 0, 0, 0, 0, 0, 0]
}

/// Handles the requests of one decrypted message from `cur` on (the start, or where a
/// suspended compound stopped). `payload`: the message is a lone WRITE whose data
/// still arrives (`stream_write`).
fn process_compound(
    srv: &Arc<Server>,
    st: &mut ConnState,
    plain: &[u8],
    cur: Cursor,
    payload: Option<&stream_write::Payload>,
) -> Result<Progress, ConnError> {
    let Cursor {
        encrypted,
        mut at,
        mut count,
        mut resps,
        mut prev,
        mut chain_error,
        compound_fid,
        mut cancelled,
        mut async_id,
    } = cur;
    let mut extra_frames = Vec::new();
    st.compound_fid = compound_fid;
    loop {
        count += 1;
        if count > 64 {
            return Err(ConnError::Protocol("compound too long"));
        }
        let rest = plain
            .get(at..)
            .ok_or(ConnError::Protocol("compound offset"))?;
        let mut hdr = Header::parse(rest).map_err(|_| ConnError::Protocol("bad header"))?;
        let len = if hdr.next_command == 0 {
            rest.len()
        } else {
            let n = hdr.next_command as usize;
            if n < HEADER_LEN || n > rest.len() || n % 8 != 0 {
                return Err(ConnError::Protocol("NextCommand"));
            }
            n
        };
        let raw = &rest[..len];
        let body = &raw[HEADER_LEN..];
        // 3.3.5.2.7.2: related requests inherit session, tree and file from the previous.
        let related = hdr.flags & wire::FLAGS_RELATED_OPERATIONS != 0;
        let mut inherited_error = None;
        if related {
            match &prev {
                Some((p, s)) => {
                    hdr.session_id = p.session_id;
                    hdr.tree_id = p.tree_id;
                    // A failed CREATE fails every related request after it with its
                    // status (3.3.5.2.7.2), however long the chain.
                    if *s != status::SUCCESS && p.command == cmd::CREATE {
                        inherited_error = Some(*s);
                        chain_error = Some(*s);
                    } else if chain_error.is_some() {
                        inherited_error = chain_error;
                    }
                }
                None => inherited_error = Some(status::INVALID_PARAMETER),
            }
        } else {
            st.compound_fid = None;
            chain_error = None;
        }
        // Signature check (3.3.5.2.4) for plaintext signed requests of a known session.
        if encrypted.is_none()
            && hdr.flags & wire::FLAGS_SIGNED != 0
            && hdr.command != cmd::NEGOTIATE
        {
            if let Some((dialect, key)) = st.signing_key(hdr.session_id) {
                if !crypto::verify_signature(dialect, &key, raw) {
                    return Err(ConnError::Protocol("bad signature"));
                }
            }
        }
        // 3.3.5.2.4: once a session's client required signing, a plaintext request on it
        // must be signed; otherwise anyone on the path could inject one. NEGOTIATE and
        // SESSION_SETUP come before or build the keys; CANCEL is never answered.
        if inherited_error.is_none()
            && encrypted.is_none()
            && hdr.flags & wire::FLAGS_SIGNED == 0
            && !matches!(
                hdr.command,
                cmd::NEGOTIATE | cmd::SESSION_SETUP | cmd::CANCEL
            )
            && st.requires_signed_requests(hdr.session_id)
        {
            tracing::debug!(
                command = hdr.command,
                "unsigned request on a signing-required session"
            );
            inherited_error = Some(status::ACCESS_DENIED);
        }
        let sec = st.snapshot(hdr.session_id, encrypted.is_some());
        // CANCEL ended this request's wait for a break (suspend); it applies to this
        // request only, whatever else decides its answer.
        let was_cancelled = std::mem::take(&mut cancelled);
        let outcome = match inherited_error {
            Some(s) => Outcome::Done(s, error_body()),
            None if was_cancelled => Outcome::Done(status::CANCELLED, error_body()),
            None => {
                let req = handlers::Req {
                    hdr: &hdr,
                    body,
                    raw,
                    encrypted: encrypted.is_some(),
                    related,
                };
                handlers::dispatch_with(srv, st, &req, payload)
            }
        };
        if let Outcome::Suspend { wait, interim } = outcome {
            // Stop before this request; it runs again once the wait ends. Its interim
            // response, if any, grants the credits and names the AsyncId the final one
            // will carry (3.3.4.2).
            let (async_id, interim) = match (interim, async_id.take()) {
                (_, Some(id)) => (Some(id), None),
                (true, None) => {
                    let id = st.next_async_id();
                    let f = interim_frame(st, &hdr, id, &sec);
                    (Some(id), Some(f))
                }
                (false, None) => (None, None),
            };
            let cursor = Cursor {
                encrypted,
                at,
                count: count.saturating_sub(1),
                resps,
                prev,
                chain_error,
                compound_fid: st.compound_fid,
                cancelled: false,
                async_id,
            };
            let s = Suspended {
                plain: plain.to_vec(),
                cursor,
            };
            return Ok(Progress::Suspended(Box::new(s), wait, interim));
        }
        let granted = st.grant_credits(&hdr);
        let mut rh = Header {
            credit_charge: hdr.credit_charge,
            status: 0,
            command: hdr.command,
            credits: granted,
            flags: wire::FLAGS_SERVER_TO_REDIR | (hdr.flags & wire::FLAGS_RELATED_OPERATIONS),
            next_command: 0,
            message_id: hdr.message_id,
            tree_id: hdr.tree_id,
            async_id: 0,
            session_id: hdr.session_id,
            signature: [0; 16],
        };
        if let Some(id) = async_id.take() {
            // The final response of a request answered STATUS_PENDING while its compound
            // waited; the interim one granted the credits.
            rh.flags |= wire::FLAGS_ASYNC_COMMAND;
            rh.async_id = id;
            rh.credits = 0;
        }
        let mut then_wait = None;
        let (status_code, rbody, reserved) = match outcome {
            Outcome::Done(s, b) => (s, b, false),
            Outcome::DoneThenWait(s, b, f) => {
                then_wait = Some(f);
                (s, b, false)
            }
            Outcome::Reserved(s, b) => (s, b, true),
            Outcome::Disconnect(why) => return Err(ConnError::Protocol(why)),
            // Taken before credits were granted, above.
            Outcome::Suspend { .. } => (status::UNSUCCESSFUL, error_body(), false),
            Outcome::Silent => {
                prev = Some((hdr.clone(), status::SUCCESS));
                if hdr.next_command == 0 {
                    break;
                }
                at += len;
                continue;
            }
            // Only the last request of a compound may go async (MS-SMB2 3.3.4.2); an
            // earlier one that would (a CHANGE_NOTIFY, a blocking LOCK) fails with
            // STATUS_INTERNAL_ERROR as on Windows (smbtorture smb2.compound.interim2),
            // and the rest of the compound goes on. Lease-break waits never get here:
            // they suspend the compound instead (suspend.rs).
            Outcome::Async(_) if hdr.next_command != 0 => {
                (status::INTERNAL_ERROR, error_body(), false)
            }
            Outcome::Async(fut) => {
                let async_id = st.next_async_id();
                let (ctx, crx) = oneshot::channel();
                {
                    let mut p = st.pending.lock().unwrap_or_else(|e| e.into_inner());
                    if p.len() >= srv.cfg.max_pending {
                        drop(p);
                        (status::INSUFFICIENT_RESOURCES, error_body(), false)
                    } else {
                        p.insert(async_id, (hdr.message_id, ctx));
                        drop(p);
                        let mut asec = sec.clone();
                        // 3.3.4.1.1: the final response is signed when the request was.
                        asec.signing_required |= hdr.flags & wire::FLAGS_SIGNED != 0;
                        spawn_async(st, &rh, async_id, asec, fut, crx);
                        rh.flags |= wire::FLAGS_ASYNC_COMMAND;
                        rh.async_id = async_id;
                        (status::PENDING, error_body(), false)
                    }
                }
            }
        };
        rh.status = status_code;
        tracing::trace!(
            cmd = hdr.command,
            mid = hdr.message_id,
            status = format_args!("{status_code:#x}"),
            "response"
        );
        if let Some(s) = st.reply_session_id.take() {
            rh.session_id = s;
        }
        if let Some(t) = st.reply_tree_id.take() {
            rh.tree_id = t;
        }
        // Every response message is built behind 4 bytes for the transport length, so
        // a lone response becomes its frame without another copy.
        let mut msg = if reserved {
            rbody
        } else {
            let mut m = Vec::with_capacity(handlers::RESERVED + rbody.len());
            m.resize(handlers::RESERVED, 0);
            m.extend_from_slice(&rbody);
            m
        };
        let mut h = Vec::with_capacity(HEADER_LEN);
        rh.write(&mut h);
        msg[4..handlers::RESERVED].copy_from_slice(&h);
        handlers::after_response(st, &hdr, status_code, &msg[4..]);
        // Re-snapshot for SESSION_SETUP, which may just have created the keys that sign
        // this reply; everything else (LOGOFF included) uses the keys it arrived under.
        let sec = if hdr.command == cmd::SESSION_SETUP {
            st.snapshot(rh.session_id, encrypted.is_some())
        } else {
            sec
        };
        let sign = sec.should_sign(
            hdr.flags & wire::FLAGS_SIGNED != 0,
            hdr.command,
            status_code,
        );
        resps.push(Resp { msg, sec, sign });
        let mut ph = hdr.clone();
        ph.session_id = rh.session_id;
        ph.tree_id = rh.tree_id;
        prev = Some((ph, status_code));
        if hdr.next_command == 0 {
            break;
        }
        at += len;
        if let Some(done) = then_wait {
            // The rest of the compound runs once this request's work is done.
            let cursor = Cursor {
                encrypted,
                at,
                count,
                resps,
                prev,
                chain_error,
                compound_fid: st.compound_fid,
                cancelled: false,
                async_id: None,
            };
            let s = Suspended {
                plain: plain.to_vec(),
                cursor,
            };
            return Ok(Progress::After(Box::new(s), done));
        }
    }
    if resps.is_empty() {
        return Ok(Progress::Frames(extra_frames));
    }
    // Chain: pad every message to 8 bytes, set NextCommand, then sign.
    let n = resps.len();
    let enc = resps
        .iter()
        .find_map(|r| r.sec.encrypt.map(|(c, k)| (c, k, r.sec.session_id)));
    let sign = |r: &mut Resp| {
        if r.sign && r.sec.encrypt.is_none() {
            if let (Some(d), Some(k)) = (r.sec.dialect, r.sec.signing_key) {
                crypto::sign_message(d, &k, &mut r.msg[4..]);
            }
        }
    };
    let mut chained = if n == 1 {
        let mut r = resps.pop().ok_or(ConnError::Protocol("no response"))?;
        sign(&mut r);
        r.msg
    } else {
        let mut c = vec![0u8; 4];
        for (i, mut r) in resps.into_iter().enumerate() {
            // Windows pads the last response of a compound too (smbtorture
            // smb2.compound.compound-padding checks a READ's body size).
            while (r.msg.len() - 4) % 8 != 0 {
                r.msg.push(0);
            }
            if i + 1 < n {
                let l = (r.msg.len() - 4) as u32;
                wire::set_u32(&mut r.msg, 4 + 20, l);
            }
            sign(&mut r);
            c.extend_from_slice(&r.msg[4..]);
        }
        c
    };
    let out = match enc {
        Some((cipher, key, sid)) => {
            frame(crypto::encrypt_message(cipher, &key, sid, &chained[4..]))
        }
        None => {
            let l = (chained.len() - 4) as u32;
            chained[0..4].copy_from_slice(&l.to_be_bytes());
            chained
        }
    };
    let mut frames = vec![out];
    frames.append(&mut extra_frames);
    Ok(Progress::Frames(frames))
}

/// Run an async operation to completion (or cancellation) and send its final response
/// with the AsyncId of the interim one (MS-SMB2 3.3.4.2).
fn spawn_async(
    st: &ConnState,
    rh: &Header,
    async_id: u64,
    sec: SecSnapshot,
    fut: handlers::AsyncOp,
    cancel: oneshot::Receiver<()>,
) {
    let tx = st.tx.clone();
    let pending = Arc::clone(&st.pending);
    let mut h = rh.clone();
    h.flags |= wire::FLAGS_ASYNC_COMMAND;
    h.flags &= !wire::FLAGS_RELATED_OPERATIONS;
    h.async_id = async_id;
    h.credits = 0;
    tokio::spawn(async move {
        let (s, body) = tokio::select! {
            r = fut => r,
            _ = cancel => (status::CANCELLED, error_body()),
        };
        pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&async_id);
        h.status = s;
        let mut msg = Vec::new();
        h.write(&mut msg);
        msg.extend_from_slice(&body);
        let out = finish(&sec, msg);
        let _ = tx.send(frame(out)).await;
    });
}

/// Sign or encrypt a single (non-compound) message per the session's state.
pub fn finish(sec: &SecSnapshot, mut msg: Vec<u8>) -> Vec<u8> {
    if let Some((c, k)) = sec.encrypt {
        return crypto::encrypt_message(c, &k, sec.session_id, &msg);
    }
    if sec.signing_required {
        if let (Some(d), Some(k)) = (sec.dialect, sec.signing_key) {
            crypto::sign_message(d, &k, &mut msg);
        }
    }
    msg
}
