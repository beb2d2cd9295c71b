//! SMB 3.x message encryption (MS-SMB2 2.2.41 TRANSFORM_HEADER, 3.1.4.3,
//! 3.3.4.1.4, 3.3.5.2.1.1).
//!
//! Layout of the 52-byte header:
//! ```text
//!  0  ProtocolId  0xFD 'S' 'M' 'B'
//!  4  Signature   16-byte AEAD tag
//! 20  Nonce       16 bytes (11 used by CCM, 12 by GCM, rest zero)
//! 36  OriginalMessageSize (u32)
//! 40  Reserved (u16)
//! 42  Flags / EncryptionAlgorithm (u16) = 0x0001
//! 44  SessionId (u64)
//! ```
//! The associated data is bytes 20..52 (everything after the Signature),
//! so the session id and sizes are authenticated too.

use aes::Aes128;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce as GcmNonce, Tag as GcmTag};
use ccm::consts::{U11, U16};
use ccm::Ccm;
use rand::RngCore;

use super::{Cipher, CryptoError};

type Aes128Ccm = Ccm<Aes128, U16, U11>;

pub const TRANSFORM_PROTOCOL_ID: [u8; 4] = [0xFD, b'S', b'M', b'B'];
pub const TRANSFORM_HEADER_LEN: usize = 52;
const AAD_RANGE: std::ops::Range<usize> = 20..52;
/// 3.0/3.0.2 call this field EncryptionAlgorithm (1 = AES-128-CCM); 3.1.1
/// calls it Flags (1 = Encrypted). Either way the value on the wire is 1.
const TRANSFORM_FLAG_ENCRYPTED: u16 = 0x0001;

/// Session id of a TRANSFORM_HEADER frame, so the caller can look up the
/// session (and its decryption key and cipher) before decrypting.
pub fn transform_session_id(frame: &[u8]) -> Option<u64> {
    if frame.len() < TRANSFORM_HEADER_LEN || frame[..4] != TRANSFORM_PROTOCOL_ID {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&frame[44..52]);
    Some(u64::from_le_bytes(id))
}

/// Encrypts one SMB2 message (or a whole compound chain) for `session_id`
/// with a fresh random nonce. Returns the TRANSFORM_HEADER followed by the
/// ciphertext, ready for the Direct TCP transport.
pub fn encrypt_message(cipher: Cipher, key: &[u8; 16], session_id: u64, message: &[u8]) -> Vec<u8> {
    // Nonces must never repeat under one key (MS-SMB2 3.1.4.3); 88/96 random
    // bits from the OS generator make a collision negligible.
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce[..cipher.nonce_len()]);
    encrypt_with_nonce(cipher, key, session_id, &nonce, message)
}

/// Deterministic core of [`encrypt_message`]; the nonce field is written to
/// the header exactly as given and its first 11 (CCM) or 12 (GCM) bytes are
/// the AEAD nonce. Exposed to the crate for test vectors.
pub(crate) fn encrypt_with_nonce(
    cipher: Cipher,
    key: &[u8; 16],
    session_id: u64,
    nonce: &[u8; 16],
    message: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(TRANSFORM_HEADER_LEN + message.len());
    frame.extend_from_slice(&TRANSFORM_PROTOCOL_ID);
    frame.extend_from_slice(&[0u8; 16]);
    frame.extend_from_slice(nonce);
    // SMB2 messages are bounded far below 4 GiB by the transport's 24-bit
    // length, so the size always fits.
    frame.extend_from_slice(&(message.len() as u32).to_le_bytes());
    frame.extend_from_slice(&0u16.to_le_bytes());
    frame.extend_from_slice(&TRANSFORM_FLAG_ENCRYPTED.to_le_bytes());
    frame.extend_from_slice(&session_id.to_le_bytes());
    frame.extend_from_slice(message);

    let (header, body) = frame.split_at_mut(TRANSFORM_HEADER_LEN);
    let aad = &header[AAD_RANGE];
    let tag: [u8; 16] = match cipher {
        Cipher::Aes128Ccm => {
            let aead = Aes128Ccm::new(key.into());
            let n = ccm::Nonce::<U11>::from_slice(&nonce[..11]);
            aead.encrypt_in_place_detached(n, aad, body)
                .expect("CCM accepts any SMB-sized message")
                .into()
        }
        Cipher::Aes128Gcm => {
            let aead = Aes128Gcm::new(key.into());
            let n = GcmNonce::from_slice(&nonce[..12]);
            aead.encrypt_in_place_detached(n, aad, body)
                .expect("GCM accepts any SMB-sized message")
                .into()
        }
    };
    header[4..20].copy_from_slice(&tag);
    frame
}

/// Authenticates and decrypts a TRANSFORM_HEADER frame. Returns the session
/// id from the header and the plaintext SMB2 message(s).
pub fn decrypt_message(
    cipher: Cipher,
    key: &[u8; 16],
    frame: &[u8],
) -> Result<(u64, Vec<u8>), CryptoError> {
    if frame.len() < 4 {
        return Err(CryptoError::Truncated);
    }
    if frame[..4] != TRANSFORM_PROTOCOL_ID {
        return Err(CryptoError::NotTransform);
    }
    if frame.len() < TRANSFORM_HEADER_LEN {
        return Err(CryptoError::Truncated);
    }
    let header = &frame[..TRANSFORM_HEADER_LEN];
    let body = &frame[TRANSFORM_HEADER_LEN..];
    let declared = u32::from_le_bytes([header[36], header[37], header[38], header[39]]) as usize;
    if declared != body.len() {
        return Err(CryptoError::SizeMismatch {
            declared,
            actual: body.len(),
        });
    }
    let flags = u16::from_le_bytes([header[42], header[43]]);
    if flags != TRANSFORM_FLAG_ENCRYPTED {
        return Err(CryptoError::UnsupportedFlags(flags));
    }
    let session_id = transform_session_id(frame).ok_or(CryptoError::Truncated)?;
    let aad = &header[AAD_RANGE];
    let nonce = &header[20..36];
    let tag = &header[4..20];
    let mut plain = body.to_vec();
    let ok = match cipher {
        Cipher::Aes128Ccm => {
            let aead = Aes128Ccm::new(key.into());
            aead.decrypt_in_place_detached(
                ccm::Nonce::<U11>::from_slice(&nonce[..11]),
                aad,
                &mut plain,
                ccm::Tag::<U16>::from_slice(tag),
            )
        }
        Cipher::Aes128Gcm => {
            let aead = Aes128Gcm::new(key.into());
            aead.decrypt_in_place_detached(
                GcmNonce::from_slice(&nonce[..12]),
                aad,
                &mut plain,
                GcmTag::from_slice(tag),
            )
        }
    };
    ok.map_err(|_| CryptoError::AuthenticationFailed)?;
    Ok((session_id, plain))
}
