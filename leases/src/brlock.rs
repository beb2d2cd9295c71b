//! Byte-range locks of one file, shared by every protocol.
//!
//! Two ownership models meet here: POSIX record locks belong to a lock owner, and a new
//! lock by the same owner replaces, splits or merges what it held over that range
//! (POSIX.1 fcntl); SMB locks belong to an open, stack, and are unlocked only by naming
//! the exact range (MS-FSA 2.1.5.7 / 2.1.5.8).

use crate::range::ByteRange;
use crate::types::{OpenId, OwnerId};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockKind {
    Shared,
    Exclusive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LockOwner {
    /// A POSIX lock owner (FUSE `lock_owner`, NLM `oh`) within a front-end owner.
    Posix { owner: OwnerId, lock_owner: u64 },
    /// An SMB open: locks are per handle.
    Open(OpenId),
}

impl LockOwner {
    pub fn is_posix(&self) -> bool {
        matches!(self, LockOwner::Posix { .. })
    }
}

impl fmt::Display for LockOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockOwner::Posix { owner, lock_owner } => write!(f, "{owner}#{lock_owner:x}"),
            LockOwner::Open(o) => write!(f, "{o}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HeldLock {
    pub owner: LockOwner,
    pub range: ByteRange,
    pub kind: LockKind,
}

/// A conflicting lock found by a test or a refused request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockConflict {
    pub owner: LockOwner,
    pub range: ByteRange,
    pub kind: LockKind,
}

/// Whether a held lock stands in the way of a request.
pub fn conflicts(held: &HeldLock, owner: &LockOwner, range: &ByteRange, kind: LockKind) -> bool {
    if !held.range.overlaps(range) {
        return false;
    }
    if held.kind == LockKind::Shared && kind == LockKind::Shared {
        return false;
    }
    if held.owner == *owner {
        // POSIX: an owner's own locks are replaced, never in conflict.
        // SMB: a handle may take a shared lock inside its own exclusive range, but two
        // exclusive locks or exclusive over shared overlap even on one handle (MS-FSA 2.1.5.7).
        return match owner {
            LockOwner::Posix { .. } => false,
            LockOwner::Open(_) => !(held.kind == LockKind::Exclusive && kind == LockKind::Shared),
        };
    }
    true
}

#[derive(Clone, Debug, Default)]
pub struct LockTable {
    held: Vec<HeldLock>,
}

impl LockTable {
    pub fn held(&self) -> &[HeldLock] {
        &self.held
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    pub fn from_held(held: Vec<HeldLock>) -> Self {
        Self { held }
    }

    pub fn first_conflict(
        &self,
        owner: &LockOwner,
        range: &ByteRange,
        kind: LockKind,
    ) -> Option<LockConflict> {
        self.held
            .iter()
            .find(|h| conflicts(h, owner, range, kind))
            .map(|h| LockConflict {
                owner: h.owner,
                range: h.range,
                kind: h.kind,
            })
    }

    /// Owners whose locks block the request (for deadlock detection).
    pub fn blockers(&self, owner: &LockOwner, range: &ByteRange, kind: LockKind) -> Vec<LockOwner> {
        let mut v: Vec<LockOwner> = self
            .held
            .iter()
            .filter(|h| conflicts(h, owner, range, kind))
            .map(|h| h.owner)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Applies a lock known not to conflict.
    pub fn insert(&mut self, owner: LockOwner, range: ByteRange, kind: LockKind) {
        match owner {
            LockOwner::Open(_) => self.held.push(HeldLock { owner, range, kind }),
            LockOwner::Posix { .. } => {
                self.posix_cut(&owner, &range);
                self.held.push(HeldLock { owner, range, kind });
                self.posix_merge(&owner, kind);
            }
        }
    }

    /// Removes a lock. POSIX owners may unlock any sub-range (splitting what they hold);
    /// an SMB unlock must name a range exactly as it was locked.
    /// Returns whether anything was released.
    pub fn remove(&mut self, owner: &LockOwner, range: &ByteRange) -> bool {
        match owner {
            LockOwner::Open(_) => {
                match self.held.iter().position(|h| {
                    h.owner == *owner
                        && h.range.start == range.start
                        && h.range.len() == range.len()
                }) {
                    Some(i) => {
                        self.held.remove(i);
                        true
                    }
                    None => false,
                }
            }
            LockOwner::Posix { .. } => self.posix_cut(owner, range),
        }
    }

    /// Drops everything `pred` selects; returns whether anything went.
    pub fn remove_where(&mut self, pred: impl Fn(&HeldLock) -> bool) -> bool {
        let before = self.held.len();
        self.held.retain(|h| !pred(h));
        before != self.held.len()
    }

    fn posix_cut(&mut self, owner: &LockOwner, range: &ByteRange) -> bool {
        let mut changed = false;
        let mut out = Vec::with_capacity(self.held.len() + 1);
        for h in self.held.drain(..) {
            if h.owner == *owner && h.range.overlaps(range) {
                changed = true;
                for part in h.range.subtract(range) {
                    out.push(HeldLock {
                        owner: h.owner,
                        range: part,
                        kind: h.kind,
                    });
                }
            } else {
                out.push(h);
            }
        }
        self.held = out;
        changed
    }

    fn posix_merge(&mut self, owner: &LockOwner, kind: LockKind) {
        let (mut mine, rest): (Vec<HeldLock>, Vec<HeldLock>) = self
            .held
            .drain(..)
            .partition(|h| h.owner == *owner && h.kind == kind);
        mine.sort_by_key(|h| h.range.start);
        let mut merged: Vec<HeldLock> = Vec::with_capacity(mine.len());
        for h in mine {
            match merged.last_mut() {
                Some(last) if last.range.touches(&h.range) => {
                    last.range =
                        ByteRange::inclusive(last.range.start, last.range.last.max(h.range.last));
                }
                _ => merged.push(h),
            }
        }
        self.held = rest;
        self.held.extend(merged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ClientId, Protocol};

    fn posix(n: u64) -> LockOwner {
        LockOwner::Posix {
            owner: OwnerId::new(Protocol::Local, ClientId::from_u128(1), 0),
            lock_owner: n,
        }
    }
    fn r(o: u64, l: u64) -> ByteRange {
        ByteRange::new(o, l).unwrap()
    }

    #[test]
    fn posix_split_and_merge() {
        let mut t = LockTable::default();
        t.insert(posix(1), r(0, 100), LockKind::Exclusive);
        t.insert(posix(1), r(10, 10), LockKind::Shared);
        let mut held: Vec<_> = t.held().iter().map(|h| (h.range, h.kind)).collect();
        held.sort();
        assert_eq!(
            held,
            vec![
                (ByteRange::inclusive(0, 9), LockKind::Exclusive),
                (ByteRange::inclusive(10, 19), LockKind::Shared),
                (ByteRange::inclusive(20, 99), LockKind::Exclusive)
            ]
        );
        t.insert(posix(1), r(10, 10), LockKind::Exclusive);
        assert_eq!(t.held().len(), 1);
        assert_eq!(t.held()[0].range, ByteRange::inclusive(0, 99));
        assert!(t.remove(&posix(1), &r(50, 10)));
        assert_eq!(t.held().len(), 2);
    }

    #[test]
    fn smb_locks_stack_and_need_exact_unlock() {
        let o = LockOwner::Open(OpenId(7));
        let mut t = LockTable::default();
        t.insert(o, r(0, 10), LockKind::Shared);
        t.insert(o, r(0, 10), LockKind::Shared);
        assert!(!t.remove(&o, &r(0, 5)));
        assert!(t.remove(&o, &r(0, 10)));
        assert_eq!(t.held().len(), 1);
        assert!(t
            .first_conflict(&o, &r(5, 1), LockKind::Exclusive)
            .is_some());
        assert!(t
            .first_conflict(&LockOwner::Open(OpenId(8)), &r(5, 1), LockKind::Shared)
            .is_none());
    }
}
