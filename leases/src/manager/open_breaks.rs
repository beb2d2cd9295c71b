//! What an open does to other keys' caching: which holders it breaks, and how far the
//! opener waits before it may proceed. Pure rules, kept apart from the bookkeeping in
//! `opens.rs` and the dispatch in `breaks.rs`.
//!
//! | open (other key)                         | breaks oplocks | breaks leases | waits while the holder has |
//! |------------------------------------------|----------------|---------------|----------------------------|
//! | stat open (attributes, synchronize only) | no             | no            | -                          |
//! | metadata only (also the security desc.)  | yes            | no            | W                          |
//! | any other open                           | yes            | yes           | W                          |
//! | overwrite / supersede (never a stat open)| yes, to None   | yes, to None  | W                          |
//! | writer whose writes are unseen (local)   | yes, to None   | yes, to None  | anything                   |
//! | sharing violation                        | H stripped     | H stripped    | H                          |

use super::OpenRequest;
use crate::lease::{BreakReason, Lease, LeaseState};

/// Whether an open that is not a stat open breaks `holder`'s caching.
///
/// MS-FSA 2.1.4.12 exempts only opens whose access is limited to FILE_READ_ATTRIBUTES,
/// FILE_WRITE_ATTRIBUTES and SYNCHRONIZE (`stat_only`); an open asking for anything
/// else, even extended attributes or the security descriptor, breaks a traditional
/// oplock (smbtorture smb2.oplock.statopen1 checks Windows does). Windows exempts
/// READ_CONTROL as well when the holder is a lease (smb2.lease.statopen4), which is
/// what `metadata_only` expresses.
pub(crate) fn open_breaks(req: &OpenRequest, holder: &Lease) -> bool {
    if req.stat_only {
        return false;
    }
    !req.metadata_only || holder.oplock
}

/// The state a holder must come down to before the requester may proceed; the break
/// itself may go further (`break_target`). An open (plain or overwriting) only waits
/// for write caching to be given up: dirty data must reach the file first, while
/// cached reads and handles are dropped by the notification alone (smbtorture
/// smb2.lease.breaking4: an overwrite breaks RH to None without waiting for the ack).
/// A sharing violation waits for H, because only closing cached handles can resolve
/// it (MS-FSA 2.1.5.1.2). Every other trigger waits for its whole target.
pub(crate) fn wait_need(reason: BreakReason, target: LeaseState) -> LeaseState {
    match reason {
        BreakReason::Open | BreakReason::Overwrite => LeaseState::RWH.without(LeaseState::W),
        BreakReason::SharingViolation => LeaseState::RWH.without(LeaseState::H),
        _ => target,
    }
}

/// The next step of a break whose holder acknowledged `held` while `required` was
/// asked of it in the meantime: Windows gives up handle and write caching before read
/// caching, one notification at a time (smbtorture smb2.lease.breaking3: RWH acked
/// to RH with None required is broken to R, and only then to None).
pub(crate) fn next_step(held: LeaseState, required: LeaseState) -> LeaseState {
    if held.has(LeaseState::H) || held.has(LeaseState::W) {
        required.union(LeaseState::R)
    } else {
        required
    }
}
