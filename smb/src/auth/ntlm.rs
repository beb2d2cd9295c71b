//! NTLMSSP messages and NTLMv2 verification, server side (MS-NLMP).
//!
//! Only NTLMv2 responses are accepted: NTLMv1/LM responses are crackable
//! and no client we support needs them (Samba's clients and Windows have
//! sent NTLMv2 by default for years).

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;
use rc4::{KeyInit, Rc4, StreamCipher};
use subtle::ConstantTimeEq;

type HmacMd5 = Hmac<Md5>;

pub(crate) const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
pub(crate) const MSG_NEGOTIATE: u32 = 1;
pub(crate) const MSG_CHALLENGE: u32 = 2;
pub(crate) const MSG_AUTHENTICATE: u32 = 3;

// NegotiateFlags (MS-NLMP 2.2.2.5).
pub(crate) const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
pub(crate) const NEGOTIATE_OEM: u32 = 0x0000_0002;
pub(crate) const REQUEST_TARGET: u32 = 0x0000_0004;
pub(crate) const NEGOTIATE_SIGN: u32 = 0x0000_0010;
pub(crate) const NEGOTIATE_SEAL: u32 = 0x0000_0020;
pub(crate) const NEGOTIATE_NTLM: u32 = 0x0000_0200;
pub(crate) const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
pub(crate) const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
pub(crate) const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
pub(crate) const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
pub(crate) const NEGOTIATE_VERSION: u32 = 0x0200_0000;
pub(crate) const NEGOTIATE_128: u32 = 0x2000_0000;
pub(crate) const NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;
pub(crate) const NEGOTIATE_56: u32 = 0x8000_0000;

// AV_PAIR ids (MS-NLMP 2.2.2.1).
const AV_EOL: u16 = 0;
const AV_NB_COMPUTER_NAME: u16 = 1;
const AV_NB_DOMAIN_NAME: u16 = 2;
const AV_DNS_COMPUTER_NAME: u16 = 3;
const AV_DNS_DOMAIN_NAME: u16 = 4;
const AV_FLAGS: u16 = 6;
const AV_TIMESTAMP: u16 = 7;
/// MsvAvFlags bit: the AUTHENTICATE message carries a MIC.
const AV_FLAG_MIC_PRESENT: u32 = 0x0000_0002;

/// Offset of the MIC field in AUTHENTICATE_MESSAGE (after the 8-byte Version).
pub(crate) const MIC_OFFSET: usize = 72;

/// Names the server announces in its CHALLENGE (TargetName and AV pairs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    /// NetBIOS computer name, upper case, at most 15 characters.
    pub netbios_name: String,
    /// NetBIOS domain. A standalone server announces its own name here,
    /// like a Windows machine with only local accounts.
    pub netbios_domain: String,
    /// DNS host name.
    pub dns_name: String,
    /// DNS domain name; for a standalone server its DNS host name.
    pub dns_domain: String,
}

impl Default for ServerIdentity {
    fn default() -> Self {
        ServerIdentity {
            netbios_name: "LEASEFS".into(),
            netbios_domain: "LEASEFS".into(),
            dns_name: "leasefs".into(),
            dns_domain: "leasefs".into(),
        }
    }
}

pub(crate) fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn u16_at(buf: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(buf.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(buf: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(off..off + 4)?.try_into().ok()?))
}

/// Resolves a (Len, MaxLen, BufferOffset) field to its payload bytes.
fn field(msg: &[u8], off: usize) -> Result<&[u8], String> {
    let len = usize::from(u16_at(msg, off).ok_or("truncated NTLMSSP header")?);
    let start = u32_at(msg, off + 4).ok_or("truncated NTLMSSP header")? as usize;
    if len == 0 {
        return Ok(&[]);
    }
    msg.get(start..start.checked_add(len).ok_or("field overflow")?)
        .ok_or_else(|| "NTLMSSP field points outside the message".to_string())
}

/// Checks the signature and message type of an NTLMSSP message.
pub(crate) fn message_type(msg: &[u8]) -> Option<u32> {
    if msg.len() < 12 || &msg[..8] != SIGNATURE {
        return None;
    }
    u32_at(msg, 8)
}

/// NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1): only the flags matter to a server.
pub(crate) fn parse_negotiate(msg: &[u8]) -> Result<u32, String> {
    if message_type(msg) != Some(MSG_NEGOTIATE) {
        return Err("expected an NTLMSSP NEGOTIATE message".into());
    }
    u32_at(msg, 12).ok_or_else(|| "truncated NTLMSSP NEGOTIATE".into())
}

/// Flags the server answers with (MS-NLMP 3.2.5.1.1 from the client's side,
/// 3.3.1 for the server): echo what both sides support, prefer extended
/// session security over LM_KEY, always send target info (NTLMv2 needs it).
pub(crate) fn challenge_flags(client: u32) -> u32 {
    let mut f = NEGOTIATE_NTLM | NEGOTIATE_TARGET_INFO | REQUEST_TARGET | TARGET_TYPE_SERVER;
    f |= if client & NEGOTIATE_UNICODE != 0 {
        NEGOTIATE_UNICODE
    } else {
        NEGOTIATE_OEM
    };
    f |= client
        & (NEGOTIATE_SIGN
            | NEGOTIATE_SEAL
            | NEGOTIATE_ALWAYS_SIGN
            | NEGOTIATE_EXTENDED_SESSIONSECURITY
            | NEGOTIATE_VERSION
            | NEGOTIATE_128
            | NEGOTIATE_56
            | NEGOTIATE_KEY_EXCH);
    f
}

fn av_pair(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// Current time as a Windows FILETIME (100 ns ticks since 1601-01-01).
pub(crate) fn filetime_now() -> u64 {
    const EPOCH_DIFF_SECS: u64 = 11_644_473_600;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_secs() + EPOCH_DIFF_SECS) * 10_000_000 + u64::from(now.subsec_nanos() / 100)
}

/// CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2).
pub(crate) fn build_challenge(
    flags: u32,
    server_challenge: &[u8; 8],
    id: &ServerIdentity,
    timestamp: u64,
) -> Vec<u8> {
    let encode = |s: &str| -> Vec<u8> {
        if flags & NEGOTIATE_UNICODE != 0 {
            utf16le(s)
        } else {
            s.bytes().filter(u8::is_ascii).collect()
        }
    };
    let target_name = encode(&id.netbios_name);
    // AV pair values are always UTF-16LE, whatever the negotiated charset.
    let mut info = Vec::new();
    av_pair(&mut info, AV_NB_DOMAIN_NAME, &utf16le(&id.netbios_domain));
    av_pair(&mut info, AV_NB_COMPUTER_NAME, &utf16le(&id.netbios_name));
    av_pair(&mut info, AV_DNS_DOMAIN_NAME, &utf16le(&id.dns_domain));
    av_pair(&mut info, AV_DNS_COMPUTER_NAME, &utf16le(&id.dns_name));
    // A timestamp makes clients send a MIC over the three messages and an
    // all-zero LMv2 response (MS-NLMP 3.1.5.1.2).
    av_pair(&mut info, AV_TIMESTAMP, &timestamp.to_le_bytes());
    av_pair(&mut info, AV_EOL, &[]);

    const HEADER: usize = 56;
    let mut m = Vec::with_capacity(HEADER + target_name.len() + info.len());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&MSG_CHALLENGE.to_le_bytes());
    m.extend_from_slice(&(target_name.len() as u16).to_le_bytes());
    m.extend_from_slice(&(target_name.len() as u16).to_le_bytes());
    m.extend_from_slice(&(HEADER as u32).to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(server_challenge);
    m.extend_from_slice(&[0u8; 8]);
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&((HEADER + target_name.len()) as u32).to_le_bytes());
    // VERSION (MS-NLMP 2.2.2.10): 10.0 build 20348, NTLMSSP revision 15.
    // Only meaningful with NEGOTIATE_VERSION, but always present so the
    // payload offset is the same for every client.
    m.extend_from_slice(&[10, 0, 0x7C, 0x4F, 0, 0, 0, 0x0F]);
    m.extend_from_slice(&target_name);
    m.extend_from_slice(&info);
    m
}

/// NegotiateFlags of a CHALLENGE message this server built.
pub(crate) fn parse_challenge_flags(challenge: &[u8]) -> u32 {
    u32_at(challenge, 20).unwrap_or(0)
}

/// The fields of AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3) a server needs.
#[derive(Debug, Clone)]
pub(crate) struct Authenticate<'a> {
    pub lm_response: &'a [u8],
    pub nt_response: &'a [u8],
    pub domain: String,
    pub user: String,
    pub encrypted_session_key: &'a [u8],
    pub flags: u32,
}

fn decode_string(bytes: &[u8], unicode: bool) -> Result<String, String> {
    if unicode {
        if bytes.len() % 2 != 0 {
            return Err("odd-length UTF-16 string".into());
        }
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).map_err(|_| "invalid UTF-16 string".into())
    } else {
        // OEM code page: treat as Latin-1, which is exact for ASCII names.
        Ok(bytes.iter().map(|&b| char::from(b)).collect())
    }
}

pub(crate) fn parse_authenticate(msg: &[u8]) -> Result<Authenticate<'_>, String> {
    if message_type(msg) != Some(MSG_AUTHENTICATE) {
        return Err("expected an NTLMSSP AUTHENTICATE message".into());
    }
    let flags = u32_at(msg, 60).ok_or("truncated NTLMSSP AUTHENTICATE")?;
    let unicode = flags & NEGOTIATE_UNICODE != 0;
    Ok(Authenticate {
        lm_response: field(msg, 12)?,
        nt_response: field(msg, 20)?,
        domain: decode_string(field(msg, 28)?, unicode)?,
        user: decode_string(field(msg, 36)?, unicode)?,
        encrypted_session_key: field(msg, 52)?,
        flags,
    })
}

/// Anonymous logon (MS-NLMP 3.3.5.1.2 / 3.2.5.1.2): no user, no NT
/// response, and an LM response that is empty or a single zero byte.
pub(crate) fn is_anonymous(a: &Authenticate<'_>) -> bool {
    a.user.is_empty() && a.nt_response.is_empty() && matches!(a.lm_response, [] | [0])
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <HmacMd5 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// NTOWFv2 (MS-NLMP 3.3.2): HMAC-MD5 keyed by the NT hash (MD4 of the
/// UTF-16LE password) over UTF-16LE(UPPERCASE(user) || domain). The domain
/// keeps its case.
pub(crate) fn ntowfv2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash: [u8; 16] = Md4::digest(utf16le(password)).into();
    let mut ud = user.to_uppercase();
    ud.push_str(domain);
    hmac_md5(&nt_hash, &[&utf16le(&ud)])
}

/// The parts of the client's NTLMv2 blob (NTLMv2_CLIENT_CHALLENGE, the
/// `temp` of MS-NLMP 3.3.2) the server acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ntlmv2Blob {
    /// MsvAvFlags has the MIC bit: the AUTHENTICATE message carries a MIC
    /// that must verify (MS-NLMP 3.3.5.2).
    pub mic_present: bool,
}

/// Checks the structure of an NTLMv2 response before any cryptography, so
/// that a malformed blob is a protocol error (STATUS_INVALID_PARAMETER, as
/// Samba answers since its bug 14932) rather than a wrong password.
///
/// Layout (MS-NLMP 2.2.2.7): NTProofStr(16), then RespType(1) = 1,
/// HiRespType(1) = 1, Reserved1(2), Reserved2(4), TimeStamp(8),
/// ChallengeFromClient(8), Reserved3(4), AV pairs ending in MsvAvEOL.
/// Clients may pad after MsvAvEOL.
pub(crate) fn parse_ntlmv2_response(nt_response: &[u8]) -> Result<Ntlmv2Blob, String> {
    let temp = nt_response
        .get(16..)
        .filter(|t| t.len() >= 28)
        .ok_or("NTLMv2 response shorter than its fixed header")?;
    if temp[0] != 1 || temp[1] != 1 {
        return Err("NTLMv2 response with an unknown RespType".into());
    }
    let mut mic_present = false;
    let mut pos = 28;
    loop {
        let (Some(id), Some(len)) = (u16_at(temp, pos), u16_at(temp, pos + 2)) else {
            return Err("NTLMv2 AV pairs are not terminated by MsvAvEOL".into());
        };
        let len = usize::from(len);
        let value = temp
            .get(pos + 4..pos + 4 + len)
            .ok_or("NTLMv2 AV pair longer than the response")?;
        match id {
            AV_EOL => return Ok(Ntlmv2Blob { mic_present }),
            AV_FLAGS => {
                let flags = u32_at(value, 0).ok_or("short MsvAvFlags")?;
                mic_present = flags & AV_FLAG_MIC_PRESENT != 0;
            }
            _ => {}
        }
        pos += 4 + len;
    }
}

/// Verifies NTProofStr = HMAC-MD5(ResponseKeyNT, ServerChallenge || temp)
/// in constant time and returns the SessionBaseKey (MS-NLMP 3.3.2,
/// 3.2.5.1.2). The response's structure is checked by
/// [`parse_ntlmv2_response`].
pub(crate) fn verify_ntlmv2(
    response_key_nt: &[u8; 16],
    server_challenge: &[u8; 8],
    nt_response: &[u8],
) -> Option<[u8; 16]> {
    if nt_response.len() < 16 + 28 {
        return None;
    }
    let (proof, temp) = nt_response.split_at(16);
    let expected = hmac_md5(response_key_nt, &[server_challenge, temp]);
    if !bool::from(expected.ct_eq(proof)) {
        return None;
    }
    Some(hmac_md5(response_key_nt, &[proof]))
}

/// RC4 with a 16-byte key, as used by NTLM key exchange and sealing.
pub(crate) fn rc4(key: &[u8; 16], data: &mut [u8]) {
    let mut c = Rc4::new(key.into());
    c.apply_keystream(data);
}

/// ExportedSessionKey (MS-NLMP 3.3.5.2 via 3.2.5.1.2): with KEY_EXCH the
/// client picked a random key and sent it RC4-encrypted under the
/// KeyExchangeKey (for NTLMv2 the SessionBaseKey).
pub(crate) fn exported_session_key(
    flags: u32,
    key_exchange_key: &[u8; 16],
    encrypted_random_session_key: &[u8],
) -> Result<[u8; 16], String> {
    if flags & NEGOTIATE_KEY_EXCH == 0 {
        return Ok(*key_exchange_key);
    }
    let mut key: [u8; 16] = encrypted_random_session_key
        .try_into()
        .map_err(|_| "KEY_EXCH without a 16-byte EncryptedRandomSessionKey".to_string())?;
    rc4(key_exchange_key, &mut key);
    Ok(key)
}

/// MIC = HMAC-MD5(ExportedSessionKey, NEGOTIATE || CHALLENGE ||
/// AUTHENTICATE-with-zeroed-MIC) (MS-NLMP 3.1.5.1.2, 3.2.5.1.2).
pub(crate) fn verify_mic(
    exported_session_key: &[u8; 16],
    negotiate: &[u8],
    challenge: &[u8],
    authenticate: &[u8],
) -> bool {
    let Some(mic) = authenticate.get(MIC_OFFSET..MIC_OFFSET + 16) else {
        return false;
    };
    let mut zeroed = authenticate.to_vec();
    zeroed[MIC_OFFSET..MIC_OFFSET + 16].fill(0);
    let expected = hmac_md5(exported_session_key, &[negotiate, challenge, &zeroed]);
    expected.ct_eq(mic).into()
}

/// One direction of NTLM session security with extended session security
/// (MS-NLMP 3.4.4.2), used only for the SPNEGO mechListMIC.
pub(crate) struct SessionSecurity {
    sign_key: [u8; 16],
    seal: Option<Rc4<rc4::consts::U16>>,
}

const C2S_SIGN: &[u8] = b"session key to client-to-server signing key magic constant\0";
const S2C_SIGN: &[u8] = b"session key to server-to-client signing key magic constant\0";
const C2S_SEAL: &[u8] = b"session key to client-to-server sealing key magic constant\0";
const S2C_SEAL: &[u8] = b"session key to server-to-client sealing key magic constant\0";

/// SIGNKEY (MS-NLMP 3.4.5.2).
pub(crate) fn sign_key(exported: &[u8; 16], client_to_server: bool) -> [u8; 16] {
    let magic = if client_to_server { C2S_SIGN } else { S2C_SIGN };
    let mut h = Md5::new();
    h.update(exported);
    h.update(magic);
    h.finalize().into()
}

/// SEALKEY (MS-NLMP 3.4.5.3) for extended session security: the key is
/// weakened to 56 or 40 bits unless 128-bit was negotiated.
pub(crate) fn seal_key(flags: u32, exported: &[u8; 16], client_to_server: bool) -> [u8; 16] {
    let magic = if client_to_server { C2S_SEAL } else { S2C_SEAL };
    let key: &[u8] = if flags & NEGOTIATE_128 != 0 {
        exported
    } else if flags & NEGOTIATE_56 != 0 {
        &exported[..7]
    } else {
        &exported[..5]
    };
    let mut h = Md5::new();
    h.update(key);
    h.update(magic);
    h.finalize().into()
}

impl SessionSecurity {
    pub(crate) fn new(flags: u32, exported: &[u8; 16], client_to_server: bool) -> Self {
        let seal = (flags & NEGOTIATE_KEY_EXCH != 0)
            .then(|| Rc4::new((&seal_key(flags, exported, client_to_server)).into()));
        SessionSecurity {
            sign_key: sign_key(exported, client_to_server),
            seal,
        }
    }

    /// NTLMSSP_MESSAGE_SIGNATURE with extended session security
    /// (MS-NLMP 2.2.2.9.1, 3.4.4.2): Version 1, the first 8 bytes of
    /// HMAC-MD5(SigningKey, SeqNum || Message) (RC4-encrypted with the
    /// sealing handle when KEY_EXCH was negotiated), SeqNum.
    pub(crate) fn mac(&mut self, seq: u32, message: &[u8]) -> [u8; 16] {
        let full = hmac_md5(&self.sign_key, &[&seq.to_le_bytes(), message]);
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&full[..8]);
        if let Some(rc4) = self.seal.as_mut() {
            rc4.apply_keystream(&mut checksum);
        }
        let mut sig = [0u8; 16];
        sig[..4].copy_from_slice(&1u32.to_le_bytes());
        sig[4..12].copy_from_slice(&checksum);
        sig[12..].copy_from_slice(&seq.to_le_bytes());
        sig
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! MS-NLMP 4.2.4 (NTLMv2 authentication) test vectors: user "User",
    //! domain "Domain", password "Password", server challenge
    //! 0123456789abcdef, client challenge aaaaaaaaaaaaaaaa, timestamp 0,
    //! random session key 0x55 * 16.
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

    /// MS-NLMP 4.2.4.3 AUTHENTICATE_MESSAGE.
    pub(crate) fn spec_authenticate() -> Vec<u8> {
        unhex(
            "4e544c4d535350000300000018001800 6c00000054005400840000000c000c00
             48000000080008005400000010001000 5c00000010001000d8000000358288e2
             0501280a0000000f44006f006d006100 69006e00550073006500720043004f00
             4d005000550054004500520086c35097 ac9cec102554764a57cccc19aaaaaaaa
             aaaaaaaa68cd0ab851e51c96aabc927b ebef6a1c010100000000000000000000
             00000000aaaaaaaaaaaaaaaa00000000 02000c0044006f006d00610069006e00
             01000c00530065007200760065007200 0000000000000000c5dad2544fc97990
             94ce1ce90bc9d03e",
        )
    }

    #[test]
    fn ntowfv2_vector() {
        // MS-NLMP 4.2.4.1.1
        assert_eq!(
            ntowfv2("Password", "User", "Domain").to_vec(),
            unhex("0c868a403bfd7a93a3001ef22ef02e3f")
        );
        // The user name is case-insensitive, the domain is not.
        assert_eq!(
            ntowfv2("Password", "user", "Domain"),
            ntowfv2("Password", "USER", "Domain")
        );
        assert_ne!(
            ntowfv2("Password", "User", "Domain"),
            ntowfv2("Password", "User", "DOMAIN")
        );
    }

    #[test]
    fn authenticate_vector_verifies() {
        let msg = spec_authenticate();
        let a = parse_authenticate(&msg).unwrap();
        assert_eq!(a.user, "User");
        assert_eq!(a.domain, "Domain");
        assert_eq!(a.flags, 0xe288_8235);
        assert_eq!(a.lm_response.len(), 24);
        assert!(!is_anonymous(&a));
        // MS-NLMP 4.2.4.2.2 NTProofStr is the head of the NT response.
        assert_eq!(
            a.nt_response[..16].to_vec(),
            unhex("68cd0ab851e51c96aabc927bebef6a1c")
        );
        let key = ntowfv2("Password", &a.user, &a.domain);
        let base = verify_ntlmv2(&key, &SERVER_CHALLENGE, a.nt_response).unwrap();
        // MS-NLMP 4.2.4.1.2 SessionBaseKey.
        assert_eq!(base.to_vec(), unhex("8de40ccadbc14a82f15cb0ad0de95ca3"));
        let blob = parse_ntlmv2_response(a.nt_response).unwrap();
        assert!(!blob.mic_present);
        // MS-NLMP 4.2.4.2.3: KEY_EXCH recovers RandomSessionKey.
        let exported = exported_session_key(a.flags, &base, a.encrypted_session_key).unwrap();
        assert_eq!(exported, [0x55u8; 16]);
        // MS-NLMP 4.2.4.1.3 / 4.2.4.1.4: client signing and sealing keys.
        assert_eq!(
            sign_key(&exported, true).to_vec(),
            unhex("4788dc861b4782f35d43fd98fe1a2d39")
        );
        assert_eq!(
            seal_key(a.flags, &exported, true).to_vec(),
            unhex("59f600973cc4960a25480a7c196e4c58")
        );
    }

    #[test]
    fn wrong_password_or_challenge_fails() {
        let msg = spec_authenticate();
        let a = parse_authenticate(&msg).unwrap();
        let bad = ntowfv2("password", &a.user, &a.domain);
        assert!(verify_ntlmv2(&bad, &SERVER_CHALLENGE, a.nt_response).is_none());
        let good = ntowfv2("Password", &a.user, &a.domain);
        let mut other = SERVER_CHALLENGE;
        other[0] ^= 1;
        assert!(verify_ntlmv2(&good, &other, a.nt_response).is_none());
        let mut tampered = a.nt_response.to_vec();
        let last = tampered.len() - 5;
        tampered[last] ^= 1;
        assert!(verify_ntlmv2(&good, &SERVER_CHALLENGE, &tampered).is_none());
        // NTLMv1-sized responses are never accepted.
        assert!(verify_ntlmv2(&good, &SERVER_CHALLENGE, &a.nt_response[..24]).is_none());
    }

    #[test]
    fn ntlmv2_blob_structure() {
        let msg = spec_authenticate();
        let nt = parse_authenticate(&msg).unwrap().nt_response.to_vec();
        assert!(parse_ntlmv2_response(&nt).is_ok());
        // Unknown RespType.
        let mut bad = nt.clone();
        bad[16] = 2;
        assert!(parse_ntlmv2_response(&bad).is_err());
        // AV pairs cut before MsvAvEOL (the spec response ends with EOL
        // followed by 4 bytes of padding).
        assert!(parse_ntlmv2_response(&nt[..nt.len() - 8]).is_err());
        assert!(parse_ntlmv2_response(&nt[..nt.len() - 6]).is_err());
        assert!(parse_ntlmv2_response(&nt[..nt.len() - 4]).is_ok());
        // An AV pair length running past the end.
        let mut bad = nt.clone();
        bad[16 + 28 + 2] = 0xFF;
        assert!(parse_ntlmv2_response(&bad).is_err());
        assert!(parse_ntlmv2_response(&nt[..16 + 27]).is_err());
        // MsvAvFlags with the MIC bit.
        let mut with_flags = nt[..16 + 28].to_vec();
        with_flags.extend_from_slice(&[6, 0, 4, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert!(parse_ntlmv2_response(&with_flags).unwrap().mic_present);
    }

    #[test]
    fn challenge_layout() {
        let id = ServerIdentity::default();
        let client = 0xe288_8235 | NEGOTIATE_VERSION;
        let flags = challenge_flags(client);
        assert_ne!(flags & NEGOTIATE_UNICODE, 0);
        assert_eq!(flags & NEGOTIATE_OEM, 0);
        assert_ne!(flags & NEGOTIATE_KEY_EXCH, 0);
        assert_ne!(flags & NEGOTIATE_TARGET_INFO, 0);
        let m = build_challenge(flags, &SERVER_CHALLENGE, &id, 0x01d0_0000_0000_0000);
        assert_eq!(message_type(&m), Some(MSG_CHALLENGE));
        assert_eq!(u32_at(&m, 20), Some(flags));
        assert_eq!(&m[24..32], &SERVER_CHALLENGE);
        assert_eq!(field(&m, 12).unwrap(), &utf16le("LEASEFS")[..]);
        let info = field(&m, 40).unwrap();
        // AV pairs end with MsvAvEOL and contain the timestamp.
        assert_eq!(&info[info.len() - 4..], &[0, 0, 0, 0]);
        let ts = 0x01d0_0000_0000_0000u64.to_le_bytes();
        assert!(info
            .windows(12)
            .any(|w| w[..4] == [7, 0, 8, 0] && w[4..] == ts));
        // An OEM-only client gets OEM.
        assert_eq!(challenge_flags(NEGOTIATE_OEM) & NEGOTIATE_UNICODE, 0);
    }

    #[test]
    fn malformed_authenticate_is_refused() {
        let mut msg = spec_authenticate();
        assert!(parse_authenticate(&msg[..40]).is_err());
        // NT response offset pointing past the end.
        msg[24] = 0xF0;
        assert!(parse_authenticate(&msg).is_err());
        assert!(parse_negotiate(b"NTLMSSP\0\x03\0\0\0").is_err());
        assert!(parse_negotiate(b"NTLMSSX\0\x01\0\0\0\0\0\0\0").is_err());
    }
}
