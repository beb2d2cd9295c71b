//! Session key derivation (MS-SMB2 3.3.5.5.3, 3.1.4.2).
//!
//! SMB 3.x never uses the authentication session key directly: it derives
//! one key per purpose with the SP800-108 counter-mode KDF (HMAC-SHA256,
//! r = 32, one iteration, L = 128), so a signing key leak does not expose
//! encryption keys and (3.1.1) the keys are bound to the preauth hash.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Dialect;

/// Keys of one authenticated session, named from the server's point of view.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    pub signing: [u8; 16],
    /// Server -> client (the server encrypts responses with it).
    pub encryption: [u8; 16],
    /// Client -> server (the server decrypts requests with it).
    pub decryption: [u8; 16],
    pub application: [u8; 16],
}

impl std::fmt::Debug for SessionKeys {
    // Keys never go to logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys { .. }")
    }
}

/// SP800-108 section 5.1 counter mode with HMAC-SHA256, as profiled by
/// MS-SMB2 3.1.4.2: K(1) = PRF(Ki, [1]_32 || Label || 0x00 || Context || [128]_32),
/// truncated to the 128 bits SMB asks for. `label` excludes the 0x00
/// separator; callers pass SMB's labels with their own terminating NUL.
pub(crate) fn sp800_108_hmac_sha256(key: &[u8], label: &[u8], context: &[u8]) -> [u8; 16] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&1u32.to_be_bytes());
    mac.update(label);
    mac.update(&[0u8]);
    mac.update(context);
    mac.update(&128u32.to_be_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// Derives the per-purpose keys for a session.
///
/// - 2.0.2 / 2.1: there is no KDF; signing (HMAC-SHA256) and the
///   application key are the session key itself (MS-SMB2 3.3.5.5.3).
///   These dialects cannot encrypt, so `encryption`/`decryption` are left
///   all-zero and must not be used.
/// - 3.0 / 3.0.2: fixed labels and contexts.
/// - 3.1.1: labels "SMBSigningKey", "SMBS2CCipherKey", "SMBC2SCipherKey",
///   "SMBAppKey" with the session's final preauth integrity hash as context.
///   A missing hash is treated as 64 zero bytes, which yields keys no client
///   will match: the caller must pass the hash.
pub fn derive_session_keys(
    dialect: Dialect,
    session_key: &[u8; 16],
    preauth: Option<&[u8; 64]>,
) -> SessionKeys {
    match dialect {
        Dialect::Smb202 | Dialect::Smb210 => SessionKeys {
            signing: *session_key,
            encryption: [0u8; 16],
            decryption: [0u8; 16],
            application: *session_key,
        },
        Dialect::Smb300 | Dialect::Smb302 => SessionKeys {
            signing: sp800_108_hmac_sha256(session_key, b"SMB2AESCMAC\0", b"SmbSign\0"),
            // "ServerIn " (with a trailing space) is what the spec specifies.
            encryption: sp800_108_hmac_sha256(session_key, b"SMB2AESCCM\0", b"ServerOut\0"),
            decryption: sp800_108_hmac_sha256(session_key, b"SMB2AESCCM\0", b"ServerIn \0"),
            application: sp800_108_hmac_sha256(session_key, b"SMB2APP\0", b"SmbRpc\0"),
        },
        Dialect::Smb311 => {
            let zero = [0u8; 64];
            let ctx: &[u8] = preauth.unwrap_or(&zero);
            SessionKeys {
                signing: sp800_108_hmac_sha256(session_key, b"SMBSigningKey\0", ctx),
                encryption: sp800_108_hmac_sha256(session_key, b"SMBS2CCipherKey\0", ctx),
                decryption: sp800_108_hmac_sha256(session_key, b"SMBC2SCipherKey\0", ctx),
                application: sp800_108_hmac_sha256(session_key, b"SMBAppKey\0", ctx),
            }
        }
    }
}
