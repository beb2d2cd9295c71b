//! Lease state bits and the pure rules that decide grants and break targets.

use crate::types::{ClientId, FileId, LeaseKey, OwnerId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Instant;

/// Caching state of a lease with the wire bit values (MS-SMB2 2.2.13.2.8):
/// R = read caching, H = handle caching, W = write caching.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct LeaseState(pub u8);

impl LeaseState {
    pub const NONE: Self = Self(0);
    pub const R: Self = Self(0x01);
    pub const H: Self = Self(0x02);
    pub const W: Self = Self(0x04);
    pub const RH: Self = Self(0x03);
    pub const RW: Self = Self(0x05);
    pub const RWH: Self = Self(0x07);

    pub fn has(self, bits: Self) -> bool {
        self.0 & bits.0 == bits.0 && bits.0 != 0
    }
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn is_subset_of(self, other: Self) -> bool {
        other.contains(self)
    }
    pub fn union(self, o: Self) -> Self {
        Self(self.0 | o.0)
    }
    pub fn intersect(self, o: Self) -> Self {
        Self(self.0 & o.0)
    }
    pub fn without(self, o: Self) -> Self {
        Self(self.0 & !o.0)
    }

    /// States a lease may hold on a file: None, R, RH, RW, RWH (MS-SMB2 3.3.5.9.8:
    /// any other requested combination is granted None). Directories: None, R, RH.
    pub fn is_valid(self, is_dir: bool) -> bool {
        if is_dir {
            matches!(self, Self::NONE | Self::R | Self::RH)
        } else {
            matches!(self, Self::NONE | Self::R | Self::RH | Self::RW | Self::RWH)
        }
    }

    /// Largest valid state contained in `self`: what remains after bits were
    /// stripped by a break (H or W without R is not a state a lease can hold).
    pub fn normalize(self, is_dir: bool) -> Self {
        let s = if is_dir { self.without(Self::W) } else { self };
        if s.has(Self::R) {
            s
        } else {
            Self::NONE
        }
    }

    /// Parses "R", "RH", "RW", "RWH", "none" (any order, any case).
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("none") || t.is_empty() || t == "-" {
            return Some(Self::NONE);
        }
        let mut s = Self::NONE;
        for c in t.chars() {
            s = s.union(match c.to_ascii_uppercase() {
                'R' => Self::R,
                'H' => Self::H,
                'W' => Self::W,
                _ => return None,
            });
        }
        Some(s)
    }
}

impl fmt::Display for LeaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("none");
        }
        for (bit, c) in [(Self::R, 'R'), (Self::W, 'W'), (Self::H, 'H')] {
            if self.has(bit) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// SMB 2.1 leases carry only key and state; SMB 3.x adds the epoch, the parent
/// directory's lease key and flags (MS-SMB2 2.2.13.2.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LeaseVersion {
    V1,
    V2 { parent: Option<LeaseKey> },
}

/// Traditional oplock levels (MS-SMB2 2.2.13), mapped onto lease states: they run on
/// the same engine with a private key per open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OplockLevel {
    None,
    LevelII,
    Exclusive,
    Batch,
}

impl OplockLevel {
    pub fn as_lease_state(self) -> LeaseState {
        match self {
            OplockLevel::None => LeaseState::NONE,
            OplockLevel::LevelII => LeaseState::R,
            OplockLevel::Exclusive => LeaseState::RW,
            OplockLevel::Batch => LeaseState::RWH,
        }
    }

    /// The level an oplock holder has for a lease state (the inverse of
    /// `as_lease_state`, rounding down to a level that exists).
    pub fn from_lease_state(s: LeaseState) -> Self {
        if s.contains(LeaseState::RWH) {
            OplockLevel::Batch
        } else if s.contains(LeaseState::RW) {
            OplockLevel::Exclusive
        } else if s.has(LeaseState::R) {
            OplockLevel::LevelII
        } else {
            OplockLevel::None
        }
    }
}

/// What a front end asks for when an open wants a lease or an oplock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseRequest {
    pub client: ClientId,
    pub key: LeaseKey,
    pub state: LeaseState,
    pub version: LeaseVersion,
    /// A traditional oplock (the key is private to the open).
    pub oplock: bool,
}

/// What the open got: state, epoch and whether a break of this lease is under way
/// (the V2 response's SMB2_LEASE_FLAG_BREAK_IN_PROGRESS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrant {
    pub state: LeaseState,
    pub epoch: u16,
    pub breaking: bool,
}

/// Why a break was started; carried to notices, events and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BreakReason {
    /// A conflicting open (strip W).
    Open,
    /// An open that overwrites or supersedes.
    Overwrite,
    /// A write-capable open whose writes the manager does not see (kernel
    /// passthrough): nobody may cache anything once it is open, so its opener waits
    /// for every bit to go (DESIGN.md "Local access").
    UnseenWriter,
    /// A sharing violation (strip H).
    SharingViolation,
    Write,
    Truncate,
    ByteRangeLock,
    Unlink,
    Rename,
    /// A child of a directory with a lease changed.
    DirectoryChange,
    /// An operator asked for it.
    Operator,
}

impl fmt::Display for BreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakReason::Open => "open",
            BreakReason::Overwrite => "overwrite",
            BreakReason::UnseenWriter => "unseen-writer",
            BreakReason::SharingViolation => "sharing-violation",
            BreakReason::Write => "write",
            BreakReason::Truncate => "truncate",
            BreakReason::ByteRangeLock => "byte-range-lock",
            BreakReason::Unlink => "unlink",
            BreakReason::Rename => "rename",
            BreakReason::DirectoryChange => "directory-change",
            BreakReason::Operator => "operator",
        })
    }
}

/// A break notification handed to the front end that owns the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakNotice {
    pub owner: OwnerId,
    pub client: ClientId,
    pub key: LeaseKey,
    pub file: FileId,
    pub from: LeaseState,
    pub to: LeaseState,
    /// The lease epoch after this dispatch (MS-SMB2 3.3.4.7: incremented per break sent).
    pub epoch: u16,
    /// MS-SMB2 3.3.4.7: SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED when the current state
    /// holds W or H.
    pub ack_required: bool,
    pub oplock: bool,
    pub version: LeaseVersion,
    pub reason: BreakReason,
}

/// A lease held in the manager, keyed by (client, key).
#[derive(Clone, Debug)]
pub struct Lease {
    pub client: ClientId,
    pub key: LeaseKey,
    pub file: FileId,
    pub owner: OwnerId,
    pub state: LeaseState,
    pub version: LeaseVersion,
    pub epoch: u16,
    pub is_dir: bool,
    pub oplock: bool,
    pub breaking: bool,
    /// The state the notification in flight asked for.
    pub break_to: LeaseState,
    /// Everything that has been asked of this lease so far, merged (AND) across reasons:
    /// when the holder acks to `break_to` and this is smaller, the break continues.
    pub required: LeaseState,
    pub break_started: Option<Instant>,
    pub deadline: Option<Instant>,
    /// Bumped on every dispatch so a stale deadline entry for an earlier break is ignored.
    pub break_seq: u64,
    pub reason: Option<BreakReason>,
}

/// The state to grant, limited by what other opens allow and made valid for the file
/// type. An open never downgrades a lease, and a request that is not a superset of the
/// held state leaves the lease unchanged (MS-SMB2 3.3.5.9.8: the lease is upgraded only
/// when the requested state contains the current one; smbtorture smb2.lease.upgrade2
/// checks Windows does this: RH + RW stays RH, RW + RH stays RW). DESIGN.md said union;
/// we follow the spec and Windows.
pub fn grant_state(
    requested: LeaseState,
    held: LeaseState,
    allowed: LeaseState,
    is_dir: bool,
) -> LeaseState {
    if !requested.is_valid(false) && !held.contains(requested) {
        // Invalid combinations (H or W without R) are granted None unless held already.
        return held;
    }
    if !requested.contains(held) {
        return held;
    }
    let want = requested;
    let mut s = want.intersect(allowed.union(held));
    if is_dir {
        s = s.without(LeaseState::W);
    }
    let s = s.normalize(is_dir);
    if s.contains(held) {
        s
    } else {
        held
    }
}

/// What a conflicting operation asks of another key's lease: the target state
/// (MS-FSA 2.1.4.12 and the table in DESIGN.md).
pub fn break_target(held: LeaseState, reason: BreakReason, is_dir: bool) -> LeaseState {
    let t = match reason {
        BreakReason::Open => held.without(LeaseState::W),
        // MS-FSA 2.1.5.1.2: a sharing violation only needs the holder to close
        // cached handles.
        BreakReason::SharingViolation => held.without(LeaseState::H),
        // Deleting or renaming also invalidates cached writes to the old name.
        BreakReason::Unlink | BreakReason::Rename => {
            held.without(LeaseState::H).without(LeaseState::W)
        }
        BreakReason::Overwrite
        | BreakReason::UnseenWriter
        | BreakReason::Write
        | BreakReason::Truncate
        | BreakReason::ByteRangeLock
        | BreakReason::Operator => LeaseState::NONE,
        BreakReason::DirectoryChange => held.without(LeaseState::R),
    };
    t.normalize(is_dir)
}

/// MS-SMB2 3.3.4.7: an acknowledgment is required when the state being broken holds
/// W or H; R-only breaks are fire-and-forget.
pub fn ack_required(from: LeaseState) -> bool {
    from.has(LeaseState::W) || from.has(LeaseState::H)
}
