//! The lease create context "RqLs" (MS-SMB2 2.2.13.2.8 request V1, 2.2.13.2.10 request
//! V2, 2.2.14.2.10/2.2.14.2.11 responses) and the oplock level byte of CREATE
//! (2.2.13 RequestedOplockLevel, 2.2.14 OplockLevel).

use crate::wire::{Put, Reader, WireError, WireResult};

pub const NAME: &[u8] = b"RqLs";

/// 2.2.13.2.10: the V2 request carries a valid ParentLeaseKey.
pub const FLAG_PARENT_LEASE_KEY_SET: u32 = 0x04;
/// 2.2.14.2.10: the lease is being broken; the client keeps the current state.
pub const FLAG_BREAK_IN_PROGRESS: u32 = 0x02;

/// CREATE RequestedOplockLevel / OplockLevel values (2.2.13).
pub mod level {
    pub const NONE: u8 = 0x00;
    pub const II: u8 = 0x01;
    pub const EXCLUSIVE: u8 = 0x08;
    pub const BATCH: u8 = 0x09;
    pub const LEASE: u8 = 0xFF;
}

/// V1 contexts are 32 bytes; V2 add ParentLeaseKey, Epoch and Reserved (52 bytes).
const V1_LEN: usize = 32;
const V2_LEN: usize = 52;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V2Fields {
    pub parent: [u8; 16],
    pub epoch: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseContext {
    pub key: [u8; 16],
    pub state: u32,
    pub flags: u32,
    pub v2: Option<V2Fields>,
}

impl LeaseContext {
    /// The version is told apart by the data length alone (3.3.5.9.8 vs 3.3.5.9.11);
    /// anything shorter than V1 is malformed.
    pub fn parse(data: &[u8]) -> WireResult<Self> {
        let r = Reader::new(data);
        if data.len() < V1_LEN {
            return Err(WireError::Invalid("lease context length"));
        }
        let key = r.guid(0)?;
        let state = r.u32(16)?;
        let flags = r.u32(20)?;
        let v2 = if data.len() >= V2_LEN {
            Some(V2Fields {
                parent: r.guid(32)?,
                epoch: r.u16(48)?,
            })
        } else {
            None
        };
        Ok(LeaseContext {
            key,
            state,
            flags,
            v2,
        })
    }

    pub fn parent_key(&self) -> Option<[u8; 16]> {
        match self.v2 {
            Some(v) if self.flags & FLAG_PARENT_LEASE_KEY_SET != 0 => Some(v.parent),
            _ => None,
        }
    }

    /// The response context: same version as the request, LeaseDuration zero.
    pub fn encode(&self) -> Vec<u8> {
        let mut d = Vec::with_capacity(V2_LEN);
        d.extend_from_slice(&self.key);
        d.put_u32(self.state);
        d.put_u32(self.flags);
        d.put_u64(0);
        if let Some(v) = self.v2 {
            d.extend_from_slice(&v.parent);
            d.put_u16(v.epoch);
            d.put_u16(0);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_round_trip() {
        let v1 = LeaseContext {
            key: [7; 16],
            state: 7,
            flags: 0,
            v2: None,
        };
        let b = v1.encode();
        assert_eq!(b.len(), 32);
        assert_eq!(LeaseContext::parse(&b).unwrap(), v1);
        let v2 = LeaseContext {
            key: [1; 16],
            state: 3,
            flags: FLAG_PARENT_LEASE_KEY_SET,
            v2: Some(V2Fields {
                parent: [2; 16],
                epoch: 0x4711,
            }),
        };
        let b = v2.encode();
        assert_eq!(b.len(), 52);
        let back = LeaseContext::parse(&b).unwrap();
        assert_eq!(back, v2);
        assert_eq!(back.parent_key(), Some([2; 16]));
        assert!(LeaseContext::parse(&b[..20]).is_err());
    }
}
