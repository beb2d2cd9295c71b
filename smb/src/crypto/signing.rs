//! SMB2 message signing (MS-SMB2 3.1.4.1, 3.1.5.1).
//!
//! The signature covers the whole message (one message of a compound at a
//! time: from its header to the end of its padded body, i.e. up to
//! NextCommand) with the 16-byte Signature field zeroed.

use aes::Aes128;
use cmac::Cmac;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Dialect;

/// SMB2 header Flags bit that marks a signed message (MS-SMB2 2.2.1).
pub const SMB2_FLAGS_SIGNED: u32 = 0x0000_0008;

const FLAGS_OFFSET: usize = 16;
const SIGNATURE_OFFSET: usize = 48;
const HEADER_LEN: usize = 64;

/// Computes the signature of `message` as if its Signature field were zero.
fn compute(dialect: Dialect, key: &[u8; 16], message: &[u8]) -> [u8; 16] {
    let zero = [0u8; 16];
    let head = &message[..SIGNATURE_OFFSET];
    let tail = &message[SIGNATURE_OFFSET + 16..];
    let mut out = [0u8; 16];
    if dialect.is_smb3() {
        // AES-128-CMAC for every 3.x dialect (AES-GMAC, negotiable in 3.1.1
        // through SIGNING_CAPABILITIES, is not offered by this server).
        let mut mac = <Cmac<Aes128> as Mac>::new_from_slice(key).expect("16-byte AES key");
        mac.update(head);
        mac.update(&zero);
        mac.update(tail);
        out.copy_from_slice(&mac.finalize().into_bytes());
    } else {
        // 2.0.2 / 2.1: HMAC-SHA256 truncated to its first 16 bytes.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
        mac.update(head);
        mac.update(&zero);
        mac.update(tail);
        out.copy_from_slice(&mac.finalize().into_bytes()[..16]);
    }
    out
}

/// Sets SMB2_FLAGS_SIGNED and writes the signature into `message`.
///
/// `message` must be exactly one SMB2 message (for a compound response, the
/// slice of one element including its 8-byte alignment padding, with
/// NextCommand already filled in). Slices shorter than the 64-byte header
/// are left untouched: there is nothing to sign.
pub fn sign_message(dialect: Dialect, signing_key: &[u8; 16], message: &mut [u8]) {
    if message.len() < HEADER_LEN {
        return;
    }
    let mut flags = [0u8; 4];
    flags.copy_from_slice(&message[FLAGS_OFFSET..FLAGS_OFFSET + 4]);
    let flags = u32::from_le_bytes(flags) | SMB2_FLAGS_SIGNED;
    message[FLAGS_OFFSET..FLAGS_OFFSET + 4].copy_from_slice(&flags.to_le_bytes());
    let sig = compute(dialect, signing_key, message);
    message[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 16].copy_from_slice(&sig);
}

/// Checks the Signature field of one SMB2 message in constant time.
/// Returns false for a message too short to carry a header.
pub fn verify_signature(dialect: Dialect, signing_key: &[u8; 16], message: &[u8]) -> bool {
    if message.len() < HEADER_LEN {
        return false;
    }
    let expected = compute(dialect, signing_key, message);
    let got = &message[SIGNATURE_OFFSET..SIGNATURE_OFFSET + 16];
    subtle::ConstantTimeEq::ct_eq(&expected[..], got).into()
}
