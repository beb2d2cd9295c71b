//! CREATE request/response and create contexts (MS-SMB2 2.2.13, 2.2.13.2, 2.2.14).

use super::{utf16_to_string, Put, Reader, WireError, WireResult, HEADER_LEN};

pub const DISP_SUPERSEDE: u32 = 0;
pub const DISP_OPEN: u32 = 1;
pub const DISP_CREATE: u32 = 2;
pub const DISP_OPEN_IF: u32 = 3;
pub const DISP_OVERWRITE: u32 = 4;
pub const DISP_OVERWRITE_IF: u32 = 5;

pub const ACTION_SUPERSEDED: u32 = 0;
pub const ACTION_OPENED: u32 = 1;
pub const ACTION_CREATED: u32 = 2;
pub const ACTION_OVERWRITTEN: u32 = 3;

pub const OPT_DIRECTORY_FILE: u32 = 0x0000_0001;
pub const OPT_NON_DIRECTORY_FILE: u32 = 0x0000_0040;
pub const OPT_DELETE_ON_CLOSE: u32 = 0x0000_1000;

/// Access mask bits (MS-SMB2 2.2.13.1.1, MS-DTYP 2.4.3).
pub mod access {
    pub const READ_DATA: u32 = 0x0000_0001;
    pub const WRITE_DATA: u32 = 0x0000_0002;
    pub const APPEND_DATA: u32 = 0x0000_0004;
    pub const READ_EA: u32 = 0x0000_0008;
    pub const WRITE_EA: u32 = 0x0000_0010;
    pub const EXECUTE: u32 = 0x0000_0020;
    pub const DELETE_CHILD: u32 = 0x0000_0040;
    pub const READ_ATTRIBUTES: u32 = 0x0000_0080;
    pub const WRITE_ATTRIBUTES: u32 = 0x0000_0100;
    pub const DELETE: u32 = 0x0001_0000;
    pub const READ_CONTROL: u32 = 0x0002_0000;
    pub const WRITE_DAC: u32 = 0x0004_0000;
    pub const WRITE_OWNER: u32 = 0x0008_0000;
    pub const SYNCHRONIZE: u32 = 0x0010_0000;
    pub const ACCESS_SYSTEM_SECURITY: u32 = 0x0100_0000;
    pub const MAXIMUM_ALLOWED: u32 = 0x0200_0000;
    pub const GENERIC_ALL: u32 = 0x1000_0000;
    pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
    pub const GENERIC_WRITE: u32 = 0x4000_0000;
    pub const GENERIC_READ: u32 = 0x8000_0000;
    pub const FILE_ALL: u32 = 0x001F_01FF;
    pub const FILE_GENERIC_READ: u32 = 0x0012_0089;
    pub const FILE_GENERIC_WRITE: u32 = 0x0012_0116;
    pub const FILE_GENERIC_EXECUTE: u32 = 0x0012_00A0;
    /// Bits that modify data or metadata: refused on a read-only share.
    pub const ANY_WRITE: u32 = WRITE_DATA
        | APPEND_DATA
        | WRITE_EA
        | WRITE_ATTRIBUTES
        | DELETE
        | DELETE_CHILD
        | WRITE_DAC
        | WRITE_OWNER;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateContext {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub oplock_level: u8,
    pub impersonation: u32,
    pub desired_access: u32,
    pub file_attributes: u32,
    pub share_access: u32,
    pub disposition: u32,
    pub options: u32,
    pub name: String,
    pub contexts: Vec<CreateContext>,
}

impl CreateRequest {
    pub fn parse(body: &[u8]) -> WireResult<Self> {
        let r = Reader::new(body);
        if r.u16(0)? != 57 {
            return Err(WireError::Invalid("create structure size"));
        }
        let name_off = r.u16(44)? as usize;
        let name_len = r.u16(46)? as usize;
        let name = utf16_to_string(r.header_relative(name_off, name_len)?)?;
        let ctx_off = r.u32(48)? as usize;
        let ctx_len = r.u32(52)? as usize;
        let contexts = parse_contexts(r.header_relative(ctx_off, ctx_len)?)?;
        Ok(CreateRequest {
            oplock_level: r.u8(3)?,
            impersonation: r.u32(4)?,
            desired_access: r.u32(24)?,
            file_attributes: r.u32(28)?,
            share_access: r.u32(32)?,
            disposition: r.u32(36)?,
            options: r.u32(40)?,
            name,
            contexts,
        })
    }

    pub fn context(&self, name: &[u8]) -> Option<&CreateContext> {
        self.contexts.iter().find(|c| c.name == name)
    }
}

/// Create contexts are a chain linked by `Next` offsets (2.2.13.2); each offset is
/// relative to the start of its own context.
pub fn parse_contexts(buf: &[u8]) -> WireResult<Vec<CreateContext>> {
    let mut out = Vec::new();
    if buf.is_empty() {
        return Ok(out);
    }
    let r = Reader::new(buf);
    let mut at = 0usize;
    loop {
        let next = r.u32(at)? as usize;
        let name_off = r.u16(at + 4)? as usize;
        let name_len = r.u16(at + 6)? as usize;
        let data_off = r.u16(at + 10)? as usize;
        let data_len = r.u32(at + 12)? as usize;
        let name = r.bytes(at + name_off, name_len)?.to_vec();
        let data = if data_len > 0 {
            r.bytes(at + data_off, data_len)?.to_vec()
        } else {
            Vec::new()
        };
        out.push(CreateContext { name, data });
        if out.len() > 64 {
            return Err(WireError::Invalid("too many create contexts"));
        }
        if next == 0 {
            break;
        }
        if next < 16 || next % 8 != 0 {
            return Err(WireError::Invalid("create context chain"));
        }
        at += next;
    }
    Ok(out)
}

/// Serialize response contexts; returns the bytes to append at an 8-aligned offset.
pub fn write_contexts(ctxs: &[CreateContext]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, c) in ctxs.iter().enumerate() {
        let start = out.len();
        out.put_u32(0);
        out.put_u16(16);
        out.put_u16(c.name.len() as u16);
        out.put_u16(0);
        let data_off = (16 + c.name.len()).div_ceil(8) * 8;
        out.put_u16(if c.data.is_empty() {
            0
        } else {
            data_off as u16
        });
        out.put_u32(c.data.len() as u32);
        out.extend_from_slice(&c.name);
        while out.len() - start < data_off {
            out.push(0);
        }
        out.extend_from_slice(&c.data);
        if i + 1 < ctxs.len() {
            out.pad_to(8);
            let next = (out.len() - start) as u32;
            out[start..start + 4].copy_from_slice(&next.to_le_bytes());
        }
    }
    out
}

#[derive(Debug, Clone, Default)]
pub struct CreateResponse {
    pub oplock_level: u8,
    pub action: u32,
    pub times: [u64; 4],
    pub allocation: u64,
    pub eof: u64,
    pub attributes: u32,
    pub file_id: (u64, u64),
    pub contexts: Vec<CreateContext>,
}

impl CreateResponse {
    pub fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(89);
        out.put_u8(self.oplock_level);
        out.put_u8(0);
        out.put_u32(self.action);
        for t in self.times {
            out.put_u64(t);
        }
        out.put_u64(self.allocation);
        out.put_u64(self.eof);
        out.put_u32(self.attributes);
        out.put_u32(0);
        out.put_u64(self.file_id.0);
        out.put_u64(self.file_id.1);
        if self.contexts.is_empty() {
            out.put_u32(0);
            out.put_u32(0);
            out.put_u8(0);
        } else {
            let blob = write_contexts(&self.contexts);
            out.put_u32((HEADER_LEN + 88) as u32);
            out.put_u32(blob.len() as u32);
            debug_assert_eq!(out.len() - start, 88);
            out.extend_from_slice(&blob);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::string_to_utf16;

    #[test]
    fn contexts_round_trip() {
        let ctxs = vec![
            CreateContext {
                name: b"MxAc".to_vec(),
                data: vec![],
            },
            CreateContext {
                name: b"QFid".to_vec(),
                data: vec![9; 32],
            },
            CreateContext {
                name: b"RqLs".to_vec(),
                data: vec![1; 52],
            },
        ];
        let blob = write_contexts(&ctxs);
        assert_eq!(parse_contexts(&blob).unwrap(), ctxs);
    }

    #[test]
    fn create_parse() {
        let name = string_to_utf16("dir\\a.txt");
        let mut b = Vec::new();
        b.put_u16(57);
        b.put_u8(0);
        b.put_u8(0);
        b.put_u32(2);
        b.put_u64(0);
        b.put_u64(0);
        b.put_u32(access::GENERIC_READ);
        b.put_u32(0x80);
        b.put_u32(7);
        b.put_u32(DISP_OPEN_IF);
        b.put_u32(OPT_NON_DIRECTORY_FILE);
        b.put_u16((HEADER_LEN + 56) as u16);
        b.put_u16(name.len() as u16);
        b.put_u32(0);
        b.put_u32(0);
        b.extend_from_slice(&name);
        let req = CreateRequest::parse(&b).unwrap();
        assert_eq!(req.name, "dir\\a.txt");
        assert_eq!(req.disposition, DISP_OPEN_IF);
        assert_eq!(req.share_access, 7);
        // a name that runs past the end is an error, not a panic
        b[46] = 0xff;
        assert!(CreateRequest::parse(&b).is_err());
    }
}
