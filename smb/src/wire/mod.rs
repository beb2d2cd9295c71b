//! SMB2 wire codec: the 64-byte header, status codes and little-endian helpers, plus
//! one module per command's request/response structures (MS-SMB2 2.2).
//!
//! We decode requests by reading fields at the fixed offsets MS-SMB2 2.2 gives and
//! encode responses by appending to a `Vec<u8>`; every read is bounds-checked and a
//! short or inconsistent buffer is a `WireError`, never a panic.

pub mod create;
pub mod header;
pub mod info;
pub mod negotiate;
pub mod status;

pub use header::*;

/// A request that does not fit the layout MS-SMB2 2.2 prescribes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("message too short: need {need} bytes at offset {at}")]
    Short { at: usize, need: usize },
    #[error("invalid {0}")]
    Invalid(&'static str),
}

pub type WireResult<T> = Result<T, WireError>;

/// Bounds-checked little-endian reads over a request body.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    pub buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    pub fn bytes(&self, at: usize, len: usize) -> WireResult<&'a [u8]> {
        let end = at
            .checked_add(len)
            .ok_or(WireError::Short { at, need: len })?;
        self.buf
            .get(at..end)
            .ok_or(WireError::Short { at, need: len })
    }
    pub fn u8(&self, at: usize) -> WireResult<u8> {
        Ok(self.bytes(at, 1)?[0])
    }
    pub fn u16(&self, at: usize) -> WireResult<u16> {
        let b = self.bytes(at, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&self, at: usize) -> WireResult<u32> {
        let b = self.bytes(at, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&self, at: usize) -> WireResult<u64> {
        let b = self.bytes(at, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub fn guid(&self, at: usize) -> WireResult<[u8; 16]> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.bytes(at, 16)?);
        Ok(a)
    }
    /// A buffer addressed by an offset counted from the start of the SMB2 header, as
    /// every Offset field in MS-SMB2 2.2 is. `body_start` is the header's size (64).
    pub fn header_relative(&self, offset: usize, len: usize) -> WireResult<&'a [u8]> {
        if len == 0 {
            return Ok(&[]);
        }
        let at = offset
            .checked_sub(HEADER_LEN)
            .ok_or(WireError::Invalid("buffer offset inside header"))?;
        self.bytes(at, len)
    }
}

/// Little-endian appends for responses.
pub trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_zeros(&mut self, n: usize);
    fn pad_to(&mut self, align: usize);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
    fn pad_to(&mut self, align: usize) {
        while self.len() % align != 0 {
            self.push(0);
        }
    }
}

pub fn set_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn set_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// UTF-16LE bytes (as every SMB2 name is) to a Rust string; unpaired surrogates are
/// invalid names rather than silently replaced, so two different wire names never map
/// to the same file.
pub fn utf16_to_string(b: &[u8]) -> WireResult<String> {
    if b.len() % 2 != 0 {
        return Err(WireError::Invalid("odd-length UTF-16 name"));
    }
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| WireError::Invalid("UTF-16 name"))
}

pub fn string_to_utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// Seconds/nanoseconds since the Unix epoch to a Windows FILETIME (100 ns since 1601).
pub fn filetime(secs: i64, nsecs: i64) -> u64 {
    const EPOCH_DIFF: i64 = 11_644_473_600;
    let t = (secs + EPOCH_DIFF)
        .saturating_mul(10_000_000)
        .saturating_add(nsecs / 100);
    t.max(0) as u64
}

/// FILETIME back to (secs, nsecs) since the Unix epoch.
pub fn from_filetime(ft: u64) -> (i64, i64) {
    const EPOCH_DIFF: i64 = 11_644_473_600;
    let ft = ft as i64;
    let secs = ft.div_euclid(10_000_000) - EPOCH_DIFF;
    let nsecs = ft.rem_euclid(10_000_000) * 100;
    (secs, nsecs)
}

pub fn now_filetime() -> u64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    filetime(d.as_secs() as i64, d.subsec_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetime_round_trip() {
        let ft = filetime(1_700_000_000, 123_456_700);
        assert_eq!(from_filetime(ft), (1_700_000_000, 123_456_700));
        assert_eq!(filetime(0, 0), 116_444_736_000_000_000);
    }

    #[test]
    fn reader_bounds() {
        let r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16(0), Ok(0x0201));
        assert!(r.u32(0).is_err());
        assert!(r.bytes(usize::MAX, 2).is_err());
        assert!(r.header_relative(10, 1).is_err());
    }

    #[test]
    fn utf16() {
        let b = string_to_utf16("a\\b.txt");
        assert_eq!(utf16_to_string(&b).unwrap(), "a\\b.txt");
        assert!(utf16_to_string(&[0, 0xd8]).is_err());
        assert!(utf16_to_string(&[1]).is_err());
    }
}
