//! The SMB2 packet header (MS-SMB2 2.2.1) and command codes (2.2.1.2).

use super::{Reader, WireError, WireResult};

pub const HEADER_LEN: usize = 64;
pub const PROTOCOL_ID: [u8; 4] = [0xFE, b'S', b'M', b'B'];
/// MS-SMB2 2.2.41: an encrypted message starts with this transform header id.
pub const TRANSFORM_ID: [u8; 4] = [0xFD, b'S', b'M', b'B'];
/// MS-SMB2 2.2.42: compression transform (we do not negotiate compression).
pub const COMPRESSION_ID: [u8; 4] = [0xFC, b'S', b'M', b'B'];
pub const SMB1_ID: [u8; 4] = [0xFF, b'S', b'M', b'B'];

pub const FLAGS_SERVER_TO_REDIR: u32 = 0x0000_0001;
pub const FLAGS_ASYNC_COMMAND: u32 = 0x0000_0002;
pub const FLAGS_RELATED_OPERATIONS: u32 = 0x0000_0004;
pub const FLAGS_SIGNED: u32 = 0x0000_0008;

/// Command codes, MS-SMB2 2.2.1.2.
pub mod cmd {
    pub const NEGOTIATE: u16 = 0x00;
    pub const SESSION_SETUP: u16 = 0x01;
    pub const LOGOFF: u16 = 0x02;
    pub const TREE_CONNECT: u16 = 0x03;
    pub const TREE_DISCONNECT: u16 = 0x04;
    pub const CREATE: u16 = 0x05;
    pub const CLOSE: u16 = 0x06;
    pub const FLUSH: u16 = 0x07;
    pub const READ: u16 = 0x08;
    pub const WRITE: u16 = 0x09;
    pub const LOCK: u16 = 0x0A;
    pub const IOCTL: u16 = 0x0B;
    pub const CANCEL: u16 = 0x0C;
    pub const ECHO: u16 = 0x0D;
    pub const QUERY_DIRECTORY: u16 = 0x0E;
    pub const CHANGE_NOTIFY: u16 = 0x0F;
    pub const QUERY_INFO: u16 = 0x10;
    pub const SET_INFO: u16 = 0x11;
    pub const OPLOCK_BREAK: u16 = 0x12;
}

/// A decoded SMB2 header (sync or async form).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub credit_charge: u16,
    /// ChannelSequence/Reserved in requests, Status in responses.
    pub status: u32,
    pub command: u16,
    pub credits: u16,
    pub flags: u32,
    pub next_command: u32,
    pub message_id: u64,
    /// Sync form: TreeId. Async form: unused (see `async_id`).
    pub tree_id: u32,
    pub async_id: u64,
    pub session_id: u64,
    pub signature: [u8; 16],
}

impl Header {
    pub fn parse(buf: &[u8]) -> WireResult<Header> {
        let r = Reader::new(buf);
        if r.bytes(0, 4)? != PROTOCOL_ID {
            return Err(WireError::Invalid("protocol id"));
        }
        if r.u16(4)? != 64 {
            return Err(WireError::Invalid("header structure size"));
        }
        let flags = r.u32(16)?;
        let is_async = flags & FLAGS_ASYNC_COMMAND != 0;
        Ok(Header {
            credit_charge: r.u16(6)?,
            status: r.u32(8)?,
            command: r.u16(12)?,
            credits: r.u16(14)?,
            flags,
            next_command: r.u32(20)?,
            message_id: r.u64(24)?,
            tree_id: if is_async { 0 } else { r.u32(36)? },
            async_id: if is_async { r.u64(32)? } else { 0 },
            session_id: r.u64(40)?,
            signature: r.guid(48)?,
        })
    }

    pub fn is_async(&self) -> bool {
        self.flags & FLAGS_ASYNC_COMMAND != 0
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        use super::Put;
        out.extend_from_slice(&PROTOCOL_ID);
        out.put_u16(64);
        out.put_u16(self.credit_charge);
        out.put_u32(self.status);
        out.put_u16(self.command);
        out.put_u16(self.credits);
        out.put_u32(self.flags);
        out.put_u32(self.next_command);
        out.put_u64(self.message_id);
        if self.is_async() {
            out.put_u64(self.async_id);
        } else {
            out.put_u32(0xFEFF); // ProcessId (reserved); Samba sends 0xFEFF too
            out.put_u32(self.tree_id);
        }
        out.put_u64(self.session_id);
        out.extend_from_slice(&self.signature);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_sync_and_async() {
        for flags in [
            FLAGS_SERVER_TO_REDIR,
            FLAGS_SERVER_TO_REDIR | FLAGS_ASYNC_COMMAND,
        ] {
            let h = Header {
                credit_charge: 1,
                status: 0x103,
                command: cmd::LOCK,
                credits: 7,
                flags,
                next_command: 0,
                message_id: 42,
                tree_id: if flags & FLAGS_ASYNC_COMMAND != 0 {
                    0
                } else {
                    5
                },
                async_id: if flags & FLAGS_ASYNC_COMMAND != 0 {
                    9
                } else {
                    0
                },
                session_id: 0x1234,
                signature: [0; 16],
            };
            let mut v = Vec::new();
            h.write(&mut v);
            assert_eq!(v.len(), HEADER_LEN);
            assert_eq!(Header::parse(&v).unwrap(), h);
        }
    }

    #[test]
    fn header_rejects_garbage() {
        assert!(Header::parse(&[0u8; 64]).is_err());
        assert!(Header::parse(&PROTOCOL_ID).is_err());
    }
}
