//! Requests that wait for a lease break without the async path (issue 5).
//!
//! Only the last request of a compound may go async (MS-SMB2 3.3.4.2), so a CREATE
//! earlier in a compound that must wait for another holder's break cannot be handed to
//! its own task; and a rename or delete disposition gets no interim response at all on
//! Windows (newer smbtorture compound tests check it), alone or in a compound. Blocking
//! the connection until the break ends is no answer: the holder's ack may have to come
//! on this very connection. So the compound (possibly of that one request) stops
//! before the waiting request (`Outcome::Suspend`), keeps the responses built so far,
//! and the connection goes on serving other frames. A CREATE is answered STATUS_PENDING
//! meanwhile, as Windows does, and its final response carries that AsyncId. When the
//! wait ends (ack, release, disconnect or deadline), the compound resumes on the
//! connection task from that request, which runs again and now proceeds, and the rest
//! of the compound's responses go out together.
//!
//! A CANCEL naming the waiting request (3.3.5.16: by AsyncId after an interim response,
//! else by MessageId) ends the wait: that request fails with STATUS_CANCELLED and the
//! compound goes on (a related request after a failed CREATE fails with its status,
//! 3.3.5.2.7.2). A disconnect drops it.

use crate::conn::Resp;
use crate::session::ConnState;
use crate::wire::{Header, HEADER_LEN};
use leasefs_leases::BreakWait;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Where processing of a compound stands.
pub(crate) struct Cursor {
    pub encrypted: Option<u64>,
    /// Offset of the next request in the decrypted message.
    pub at: usize,
    /// Requests processed so far (the compound length limit).
    pub count: usize,
    pub resps: Vec<Resp>,
    /// Effective header and status of the previous request.
    pub prev: Option<(Header, u32)>,
    pub chain_error: Option<u32>,
    /// The FileId a related request would inherit (`ConnState::compound_fid`).
    pub compound_fid: Option<(u64, u64)>,
    /// The request at `at` was cancelled while it waited.
    pub cancelled: bool,
    /// The AsyncId of the request at `at`, when it was answered STATUS_PENDING.
    pub async_id: Option<u64>,
}

impl Cursor {
    pub fn new(encrypted: Option<u64>) -> Self {
        Cursor {
            encrypted,
            at: 0,
            count: 0,
            resps: Vec::new(),
            prev: None,
            chain_error: None,
            compound_fid: None,
            cancelled: false,
            async_id: None,
        }
    }
}

/// A compound stopped before a request that waits for a break.
pub(crate) struct Suspended {
    pub plain: Vec<u8>,
    pub cursor: Cursor,
}

pub(crate) type ResumeQueue = mpsc::UnboundedSender<Box<Suspended>>;

/// The compound goes on after `done`, which nothing can cancel: a delete-on-close CLOSE
/// inside a compound is answered at once (its handle is gone either way), but the
/// requests after it wait until the unlink it started has happened, so they see the
/// name gone (`handlers::unlink`).
pub(crate) fn park_after(s: Box<Suspended>, done: crate::handlers::Finish, resume: ResumeQueue) {
    tokio::spawn(async move {
        done.await;
        // Fails only when the connection is gone, and the compound with it.
        let _ = resume.send(s);
    });
}

/// Waits for `w` on its own task, then hands the compound back to the connection task
/// through `resume`. The wait is registered with the connection's pending operations
/// under the waiting request's MessageId (and AsyncId, if it was answered
/// STATUS_PENDING), so CANCEL and teardown find it.
pub(crate) fn park(st: &mut ConnState, mut s: Box<Suspended>, w: BreakWait, resume: ResumeQueue) {
    let mid = s
        .plain
        .get(s.cursor.at..)
        .filter(|r| r.len() >= HEADER_LEN)
        .and_then(|r| Header::parse(r).ok())
        .map(|h| h.message_id)
        .unwrap_or(u64::MAX);
    // CANCEL names a request answered STATUS_PENDING by its AsyncId, others by
    // MessageId (3.3.5.16).
    let key = match s.cursor.async_id {
        Some(id) => id,
        None => st.next_async_id(),
    };
    let (ctx, crx) = oneshot::channel();
    st.pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, (mid, ctx));
    let pending = Arc::clone(&st.pending);
    tracing::debug!(message_id = mid, "compound waits for a break");
    tokio::spawn(async move {
        let cancelled = tokio::select! {
            why = w => {
                tracing::debug!(?why, message_id = mid, "compound may go on");
                false
            }
            r = crx => r.is_ok(),
        };
        pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        s.cursor.cancelled = cancelled;
        // Fails only when the connection is gone, and the compound with it.
        let _ = resume.send(s);
    });
}
