//! NEGOTIATE request/response and negotiate contexts (MS-SMB2 2.2.3, 2.2.3.1, 2.2.4).

use super::{Put, Reader, WireError, WireResult, HEADER_LEN};

pub const DIALECT_202: u16 = 0x0202;
pub const DIALECT_210: u16 = 0x0210;
pub const DIALECT_300: u16 = 0x0300;
pub const DIALECT_302: u16 = 0x0302;
pub const DIALECT_311: u16 = 0x0311;
/// MS-SMB2 3.3.5.3.1: the "SMB 2.???" wildcard answered to a multi-protocol SMB1 negotiate.
pub const DIALECT_WILDCARD: u16 = 0x02FF;

pub const SIGNING_ENABLED: u16 = 0x0001;
pub const SIGNING_REQUIRED: u16 = 0x0002;

pub const CAP_DFS: u32 = 0x01;
pub const CAP_LEASING: u32 = 0x02;
pub const CAP_LARGE_MTU: u32 = 0x04;
pub const CAP_DIRECTORY_LEASING: u32 = 0x20;
pub const CAP_ENCRYPTION: u32 = 0x40;

pub const CTX_PREAUTH_INTEGRITY: u16 = 0x0001;
pub const CTX_ENCRYPTION: u16 = 0x0002;
pub const CTX_SIGNING: u16 = 0x0008;
pub const HASH_SHA512: u16 = 0x0001;
pub const CIPHER_AES128_CCM: u16 = 0x0001;
pub const CIPHER_AES128_GCM: u16 = 0x0002;
pub const SIGNING_HMAC_SHA256: u16 = 0x0000;
pub const SIGNING_AES_CMAC: u16 = 0x0001;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NegotiateRequest {
    pub security_mode: u16,
    pub capabilities: u32,
    pub client_guid: [u8; 16],
    pub dialects: Vec<u16>,
    /// Present only when 3.1.1 is offered.
    pub hash_algorithms: Vec<u16>,
    pub ciphers: Vec<u16>,
    pub signing_algorithms: Vec<u16>,
    pub has_preauth_context: bool,
}

impl NegotiateRequest {
    /// `body` is the message after the 64-byte header.
    pub fn parse(body: &[u8]) -> WireResult<Self> {
        let r = Reader::new(body);
        if r.u16(0)? != 36 {
            return Err(WireError::Invalid("negotiate structure size"));
        }
        let count = r.u16(2)? as usize;
        if count == 0 {
            return Err(WireError::Invalid("no dialects"));
        }
        let mut req = NegotiateRequest {
            security_mode: r.u16(4)?,
            capabilities: r.u32(8)?,
            client_guid: r.guid(12)?,
            ..Default::default()
        };
        for i in 0..count {
            req.dialects.push(r.u16(36 + 2 * i)?);
        }
        if req.dialects.contains(&DIALECT_311) {
            let ctx_off = r.u32(28)? as usize;
            let ctx_count = r.u16(32)? as usize;
            let mut at = ctx_off
                .checked_sub(HEADER_LEN)
                .ok_or(WireError::Invalid("context offset"))?;
            for _ in 0..ctx_count {
                at = (at + 7) & !7;
                let ty = r.u16(at)?;
                let len = r.u16(at + 2)? as usize;
                let data = Reader::new(r.bytes(at + 8, len)?);
                match ty {
                    CTX_PREAUTH_INTEGRITY => {
                        req.has_preauth_context = true;
                        let n = data.u16(0)? as usize;
                        for i in 0..n {
                            req.hash_algorithms.push(data.u16(4 + 2 * i)?);
                        }
                    }
                    CTX_ENCRYPTION => {
                        let n = data.u16(0)? as usize;
                        for i in 0..n {
                            req.ciphers.push(data.u16(2 + 2 * i)?);
                        }
                    }
                    CTX_SIGNING => {
                        let n = data.u16(0)? as usize;
                        for i in 0..n {
                            req.signing_algorithms.push(data.u16(2 + 2 * i)?);
                        }
                    }
                    _ => {} // MS-SMB2 3.3.5.4: unknown contexts are ignored
                }
                at += 8 + len;
            }
        }
        Ok(req)
    }
}

#[derive(Debug, Clone)]
pub struct NegotiateResponse {
    pub security_mode: u16,
    pub dialect: u16,
    pub server_guid: [u8; 16],
    pub capabilities: u32,
    pub max_transact: u32,
    pub max_read: u32,
    pub max_write: u32,
    pub system_time: u64,
    pub security_blob: Vec<u8>,
    /// (type, data) contexts for 3.1.1.
    pub contexts: Vec<(u16, Vec<u8>)>,
}

impl NegotiateResponse {
    pub fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(65);
        out.put_u16(self.security_mode);
        out.put_u16(self.dialect);
        out.put_u16(self.contexts.len() as u16);
        out.extend_from_slice(&self.server_guid);
        out.put_u32(self.capabilities);
        out.put_u32(self.max_transact);
        out.put_u32(self.max_read);
        out.put_u32(self.max_write);
        out.put_u64(self.system_time);
        out.put_u64(0); // ServerStartTime
        out.put_u16((HEADER_LEN + 64) as u16);
        out.put_u16(self.security_blob.len() as u16);
        let ctx_off_at = out.len();
        out.put_u32(0);
        out.extend_from_slice(&self.security_blob);
        if self.contexts.is_empty() {
            if self.security_blob.is_empty() {
                out.put_u8(0);
            }
            return;
        }
        // Contexts start 8-byte aligned relative to the header (2.2.4).
        while (HEADER_LEN + out.len() - start) % 8 != 0 {
            out.push(0);
        }
        let off = (HEADER_LEN + out.len() - start) as u32;
        out[ctx_off_at..ctx_off_at + 4].copy_from_slice(&off.to_le_bytes());
        for (i, (ty, data)) in self.contexts.iter().enumerate() {
            if i > 0 {
                while (out.len() - start) % 8 != 0 {
                    out.push(0);
                }
            }
            out.put_u16(*ty);
            out.put_u16(data.len() as u16);
            out.put_u32(0);
            out.extend_from_slice(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_311() -> Vec<u8> {
        let mut b = Vec::new();
        b.put_u16(36);
        b.put_u16(2);
        b.put_u16(1);
        b.put_u16(0);
        b.put_u32(0x7f);
        b.extend_from_slice(&[7u8; 16]);
        b.put_u32(0); // context offset, patched
        b.put_u16(2);
        b.put_u16(0);
        b.put_u16(DIALECT_300);
        b.put_u16(DIALECT_311);
        b.pad_to(8);
        let off = (HEADER_LEN + b.len()) as u32;
        b[28..32].copy_from_slice(&off.to_le_bytes());
        b.put_u16(CTX_PREAUTH_INTEGRITY);
        b.put_u16(38);
        b.put_u32(0);
        b.put_u16(1);
        b.put_u16(32);
        b.put_u16(HASH_SHA512);
        b.put_zeros(32);
        b.pad_to(8);
        b.put_u16(CTX_ENCRYPTION);
        b.put_u16(6);
        b.put_u32(0);
        b.put_u16(2);
        b.put_u16(CIPHER_AES128_GCM);
        b.put_u16(CIPHER_AES128_CCM);
        b
    }

    #[test]
    fn parses_contexts() {
        let req = NegotiateRequest::parse(&request_311()).unwrap();
        assert_eq!(req.dialects, vec![DIALECT_300, DIALECT_311]);
        assert_eq!(req.hash_algorithms, vec![HASH_SHA512]);
        assert_eq!(req.ciphers, vec![CIPHER_AES128_GCM, CIPHER_AES128_CCM]);
        assert_eq!(req.client_guid, [7u8; 16]);
    }

    #[test]
    fn truncated_contexts_are_errors() {
        let b = request_311();
        for cut in [10, 40, b.len() - 3] {
            assert!(NegotiateRequest::parse(&b[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn response_layout() {
        let resp = NegotiateResponse {
            security_mode: 1,
            dialect: DIALECT_311,
            server_guid: [1; 16],
            capabilities: 0,
            max_transact: 1 << 20,
            max_read: 1 << 20,
            max_write: 1 << 20,
            system_time: 0,
            security_blob: vec![0xaa; 5],
            contexts: vec![
                (CTX_PREAUTH_INTEGRITY, vec![1, 2, 3]),
                (CTX_ENCRYPTION, vec![1, 0, 2, 0]),
            ],
        };
        let mut v = Vec::new();
        resp.write(&mut v);
        let r = Reader::new(&v);
        assert_eq!(r.u16(6).unwrap(), 2);
        let off = r.u32(60).unwrap() as usize - HEADER_LEN;
        assert_eq!(off % 8, 0);
        assert_eq!(r.u16(off).unwrap(), CTX_PREAUTH_INTEGRITY);
        assert_eq!(r.u16(off + 16).unwrap(), CTX_ENCRYPTION);
    }
}
