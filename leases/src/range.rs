//! Byte ranges with an inclusive end, so a range reaching the last byte of the 64-bit
//! offset space is representable and no `offset + len` ever overflows.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ByteRange {
    pub start: u64,
    /// Inclusive end. Meaningless when `empty`.
    pub last: u64,
    /// A zero-length range (SMB allows locking zero bytes at an offset).
    pub empty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// MS-FSA 2.1.5.7: offset + length - 1 must not wrap (STATUS_INVALID_LOCK_RANGE).
    #[error("byte range {offset}+{len} wraps past the end of the offset space")]
    Overflow { offset: u64, len: u64 },
}

impl ByteRange {
    /// `len` bytes from `offset`. A zero length gives an empty range at `offset`.
    pub fn new(offset: u64, len: u64) -> Result<Self, RangeError> {
        if len == 0 {
            return Ok(Self {
                start: offset,
                last: offset,
                empty: true,
            });
        }
        let last = offset
            .checked_add(len - 1)
            .ok_or(RangeError::Overflow { offset, len })?;
        Ok(Self {
            start: offset,
            last,
            empty: false,
        })
    }

    /// From `offset` to the end of the offset space (POSIX `l_len == 0`).
    pub fn to_eof(offset: u64) -> Self {
        Self {
            start: offset,
            last: u64::MAX,
            empty: false,
        }
    }

    /// Inclusive bounds, for callers (POSIX) that never create empty ranges.
    pub fn inclusive(start: u64, last: u64) -> Self {
        debug_assert!(start <= last);
        Self {
            start,
            last,
            empty: false,
        }
    }

    pub fn len(&self) -> u128 {
        if self.empty {
            0
        } else {
            (self.last - self.start) as u128 + 1
        }
    }

    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// Whether two ranges share a byte. An empty range shares none, except that one
    /// strictly inside a non-empty range is treated as overlapping it, as Windows does
    /// for zero-length locks.
    pub fn overlaps(&self, o: &Self) -> bool {
        match (self.empty, o.empty) {
            (false, false) => self.start <= o.last && o.start <= self.last,
            (true, false) => o.start < self.start && self.start <= o.last,
            (false, true) => self.start < o.start && o.start <= self.last,
            (true, true) => false,
        }
    }

    pub fn contains(&self, o: &Self) -> bool {
        if o.empty {
            return !self.empty && self.start <= o.start && o.start <= self.last;
        }
        !self.empty && self.start <= o.start && o.last <= self.last
    }

    /// Whether `o` starts right after `self` ends (or overlaps), so the two merge.
    pub fn touches(&self, o: &Self) -> bool {
        if self.empty || o.empty {
            return false;
        }
        self.overlaps(o)
            || self.last.checked_add(1) == Some(o.start)
            || o.last.checked_add(1) == Some(self.start)
    }

    /// The parts of `self` not covered by `cut` (zero, one or two ranges).
    pub fn subtract(&self, cut: &Self) -> Vec<Self> {
        if self.empty || cut.empty || !self.overlaps(cut) {
            return vec![*self];
        }
        let mut out = Vec::with_capacity(2);
        if cut.start > self.start {
            out.push(Self::inclusive(self.start, cut.start - 1));
        }
        if cut.last < self.last {
            out.push(Self::inclusive(cut.last + 1, self.last));
        }
        out
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.empty {
            write!(f, "{}+0", self.start)
        } else if self.last == u64::MAX {
            write!(f, "{}-EOF", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.last)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_is_refused_and_max_range_is_representable() {
        assert!(ByteRange::new(u64::MAX, 2).is_err());
        let r = ByteRange::new(u64::MAX, 1).unwrap();
        assert_eq!((r.start, r.last), (u64::MAX, u64::MAX));
        let all = ByteRange::new(0, u64::MAX).unwrap();
        assert_eq!(all.last, u64::MAX - 1);
        assert_eq!(ByteRange::to_eof(0).len(), 1u128 << 64);
    }

    #[test]
    fn subtract_splits() {
        let r = ByteRange::new(0, 100).unwrap();
        let parts = r.subtract(&ByteRange::new(10, 10).unwrap());
        assert_eq!(
            parts,
            vec![ByteRange::inclusive(0, 9), ByteRange::inclusive(20, 99)]
        );
        assert_eq!(r.subtract(&ByteRange::to_eof(0)), vec![]);
        assert_eq!(
            ByteRange::to_eof(5).subtract(&ByteRange::new(0, 6).unwrap()),
            vec![ByteRange::to_eof(6)]
        );
    }

    #[test]
    fn zero_length_ranges() {
        let z = ByteRange::new(5, 0).unwrap();
        assert!(z.overlaps(&ByteRange::new(0, 10).unwrap()));
        assert!(!z.overlaps(&ByteRange::new(5, 10).unwrap()));
        assert!(!z.overlaps(&z));
        assert!(ByteRange::to_eof(1).touches(&ByteRange::new(0, 1).unwrap()));
    }
}
