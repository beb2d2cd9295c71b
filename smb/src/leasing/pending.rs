//! Blocked opens (MS-SMB2 3.3.4.2, 3.3.5.9): a CREATE that must wait for other
//! holders' breaks is answered STATUS_PENDING with an AsyncId, and runs again on its
//! connection once the wait ends (ack, release, disconnect or deadline).
//!
//! The wait itself is an `Outcome::Async` future, so CANCEL, disconnect teardown and
//! the signing/encryption of the final response are the connection's usual async
//! machinery. Re-running needs the connection state, which only the connection task
//! holds: the future hands the request back to that task through a queue and awaits
//! the result. The connection task drains the queue between frames.
//!
//! Where a request must wait but may not take this path (a CREATE inside a compound,
//! 3.3.4.2) or gets no interim response on Windows (a rename or delete disposition,
//! which smbtorture's newer compound tests check), the wait is handed to `suspend`
//! instead: its compound stops before it and resumes when the wait ends.

use crate::handlers::{self, AsyncOp, Outcome, Req};
use crate::server::Server;
use crate::session::ConnState;
use crate::wire::{status, Header, HEADER_LEN};
use leasefs_leases::BreakWait;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// A CREATE to run again, and where its final (status, body) goes.
pub struct Retry {
    hdr: Header,
    raw: Vec<u8>,
    encrypted: bool,
    reply: oneshot::Sender<(u32, Vec<u8>)>,
}

pub struct Pending {
    may_async: AtomicBool,
    parked: Mutex<Option<BreakWait>>,
    tx: mpsc::UnboundedSender<Retry>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Retry>>>,
}

fn error_body() -> Vec<u8> {
    vec![9, 0, 0, 0, 0, 0, 0, 0, 0]
}

impl Pending {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Pending {
            may_async: AtomicBool::new(false),
            parked: Mutex::new(None),
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    pub fn begin(&self, may_async: bool) {
        self.may_async.store(may_async, Ordering::Relaxed);
        self.parked.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    pub fn may_go_async(&self) -> bool {
        self.may_async.load(Ordering::Relaxed)
    }

    pub fn park(&self, w: BreakWait) {
        *self.parked.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
    }

    /// The queue the connection task drains (taken once, by the read loop).
    pub fn take_queue(&self) -> Option<mpsc::UnboundedReceiver<Retry>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl Default for Pending {
    fn default() -> Self {
        Self::new()
    }
}

/// Waits for a break another operation triggered (rename, MS-SMB2 3.3.5.21.1 with
/// MS-FSA 2.1.5.14.11; delete disposition, 2.1.5.14.3: handle caching of other keys
/// goes first). The wait is parked and STATUS_PENDING returned;
/// `outcome_without_interim` turns that into a suspended compound (suspend.rs), and the
/// request runs again once the wait ends (the break is then done, so it proceeds).
/// Never blocks the connection: the holder's ack may have to come on it.
pub fn settle(p: &Pending, o: leasefs_leases::BreakOutcome) -> Result<(), u32> {
    match o {
        leasefs_leases::BreakOutcome::Proceed => Ok(()),
        leasefs_leases::BreakOutcome::Wait(w) => {
            p.park(w);
            Err(status::PENDING)
        }
    }
}

/// The break wait a handler parked when it answered STATUS_PENDING, if any.
fn take_parked(st: &ConnState, r: &Result<Outcome, u32>) -> Option<BreakWait> {
    if r.as_ref().err() != Some(&status::PENDING) {
        return None;
    }
    st.leases
        .pending
        .parked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
}

/// Called by CREATE with its result: when the open parked a break wait,
/// the answer is STATUS_PENDING now and the retried request's result later; inside a
/// compound, where only the last request may go async (3.3.4.2), the compound is
/// suspended at this request instead.
pub fn outcome(st: &ConnState, req: &Req, r: &Result<Outcome, u32>) -> Option<Outcome> {
    let w = take_parked(st, r)?;
    if !st.leases.pending.may_go_async() {
        // Inside a compound: the compound waits, not the connection (suspend.rs), and
        // the CREATE is answered STATUS_PENDING as Windows does.
        return Some(Outcome::Suspend {
            wait: w,
            interim: true,
        });
    }
    let tx = st.leases.pending.tx.clone();
    let hdr = req.hdr.clone();
    let raw = req.raw.to_vec();
    let encrypted = req.encrypted;
    let fut: AsyncOp = Box::pin(async move {
        let why = w.await;
        tracing::debug!(?why, "blocked CREATE may run again");
        let (reply, result) = oneshot::channel();
        let job = Retry {
            hdr,
            raw,
            encrypted,
            reply,
        };
        if tx.send(job).is_err() {
            return (status::CANCELLED, error_body());
        }
        result.await.unwrap_or((status::CANCELLED, error_body()))
    });
    Some(Outcome::Async(fut))
}

/// Called by SET_INFO (rename, delete disposition) with its result: when it parked a
/// break wait, the request waits without an interim response, alone or inside its
/// compound, and runs again when the wait ends. Windows sends no STATUS_PENDING for
/// these waits (unlike a CREATE's), and clients do not expect one.
pub fn outcome_without_interim(st: &ConnState, r: &Result<Outcome, u32>) -> Option<Outcome> {
    let w = take_parked(st, r)?;
    Some(Outcome::Suspend {
        wait: w,
        interim: false,
    })
}

/// Runs a CREATE again on its connection (from the read loop, between frames).
pub fn run(srv: &Arc<Server>, st: &mut ConnState, mut job: Retry) {
    tracing::debug!(
        message_id = job.hdr.message_id,
        "running blocked CREATE again"
    );
    if job.reply.is_closed() {
        // Cancelled or the connection is going away.
        return;
    }
    let Some(body) = job.raw.get(HEADER_LEN..) else {
        let _ = job.reply.send((status::INVALID_PARAMETER, error_body()));
        return;
    };
    let req = Req {
        hdr: &job.hdr,
        body,
        raw: &job.raw,
        encrypted: job.encrypted,
        related: false,
    };
    let out = handlers::dispatch(srv, st, &req);
    match out {
        Outcome::Done(s, b) => {
            tracing::debug!(status = format_args!("{s:#x}"), "blocked CREATE finished");
            let _ = job.reply.send((s, b));
        }
        // Another break to wait for: chain the new wait onto the same AsyncId.
        Outcome::Async(fut) => {
            tokio::spawn(async move {
                tokio::select! {
                    r = fut => { let _ = job.reply.send(r); }
                    _ = job.reply.closed() => {}
                }
            });
        }
        _ => {
            let _ = job.reply.send((status::UNSUCCESSFUL, error_body()));
        }
    }
}

/// The read loop's wait between frames: a retry that is ready, or the socket readable.
pub async fn next_retry(q: &mut Option<mpsc::UnboundedReceiver<Retry>>) -> Option<Retry> {
    match q {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
