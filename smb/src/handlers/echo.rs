//! ECHO (MS-SMB2 3.3.5.15) and CANCEL (3.3.5.16).

use super::{reader, Outcome, Req};
use crate::session::ConnState;
use crate::wire::status;

pub fn echo(req: &Req) -> Result<Outcome, u32> {
    reader(req, 4)?;
    Ok(Outcome::Done(status::SUCCESS, vec![4, 0, 0, 0]))
}

/// CANCEL names the pending request by AsyncId (async form) or MessageId; it has no
/// response of its own — the cancelled request completes with STATUS_CANCELLED.
pub fn cancel(st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let mut p = st.pending.lock().unwrap_or_else(|e| e.into_inner());
    let key = if req.hdr.is_async() {
        p.contains_key(&req.hdr.async_id)
            .then_some(req.hdr.async_id)
    } else {
        p.iter()
            .find(|(_, (mid, _))| *mid == req.hdr.message_id)
            .map(|(k, _)| *k)
            // Samba's client cancels an already-pending request with MessageId 0 and
            // no AsyncId in some paths; take the newest pending operation then.
            .or_else(|| {
                (req.hdr.message_id == 0)
                    .then(|| p.keys().max().copied())
                    .flatten()
            })
    };
    tracing::debug!(
        message_id = req.hdr.message_id,
        async_id = req.hdr.async_id,
        found = key.is_some(),
        flags = req.hdr.flags,
        pending = ?p.iter().map(|(k, (m, _))| (*k, *m)).collect::<Vec<_>>(),
        "CANCEL"
    );
    if let Some(k) = key {
        if let Some((_, tx)) = p.remove(&k) {
            let _ = tx.send(());
        }
    }
    Ok(Outcome::Silent)
}
