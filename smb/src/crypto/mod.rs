//! SMB2/3 cryptography: dialect identifiers, preauthentication integrity,
//! session key derivation, message signing and message encryption.
//!
//! Everything here works on raw SMB2 messages (starting at the 64-byte
//! header, without the 4-byte Direct TCP transport prefix) so the transport
//! and dispatch layers stay free of cryptographic detail.

mod kdf;
mod preauth;
mod signing;
mod transform;

pub use kdf::{derive_session_keys, SessionKeys};
pub use preauth::PreauthHash;
pub use signing::{sign_message, verify_signature, SMB2_FLAGS_SIGNED};
pub use transform::{
    decrypt_message, encrypt_message, transform_session_id, TRANSFORM_HEADER_LEN,
    TRANSFORM_PROTOCOL_ID,
};

/// SMB2 dialect revisions this server can negotiate (MS-SMB2 2.2.3, 2.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dialect {
    Smb202,
    Smb210,
    Smb300,
    Smb302,
    Smb311,
}

impl Dialect {
    /// All dialects in ascending order, useful for picking the highest common one.
    pub const ALL: [Dialect; 5] = [
        Dialect::Smb202,
        Dialect::Smb210,
        Dialect::Smb300,
        Dialect::Smb302,
        Dialect::Smb311,
    ];

    /// Maps a DialectRevision wire value to a dialect; 0x02FF (the SMB1
    /// multi-protocol wildcard) and unknown values yield `None`.
    pub fn from_wire(value: u16) -> Option<Dialect> {
        match value {
            0x0202 => Some(Dialect::Smb202),
            0x0210 => Some(Dialect::Smb210),
            0x0300 => Some(Dialect::Smb300),
            0x0302 => Some(Dialect::Smb302),
            0x0311 => Some(Dialect::Smb311),
            _ => None,
        }
    }

    pub fn to_wire(self) -> u16 {
        match self {
            Dialect::Smb202 => 0x0202,
            Dialect::Smb210 => 0x0210,
            Dialect::Smb300 => 0x0300,
            Dialect::Smb302 => 0x0302,
            Dialect::Smb311 => 0x0311,
        }
    }

    /// True for the SMB 3.x family, which signs with AES-CMAC, derives keys
    /// with the SP800-108 KDF and may encrypt (MS-SMB2 3.1.4.1, 3.1.4.2).
    pub fn is_smb3(self) -> bool {
        matches!(self, Dialect::Smb300 | Dialect::Smb302 | Dialect::Smb311)
    }
}

/// Encryption algorithms (MS-SMB2 2.2.3.1.2 SMB2_ENCRYPTION_CAPABILITIES).
/// SMB 3.0/3.0.2 always use AES-128-CCM; 3.1.1 negotiates one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    Aes128Ccm,
    Aes128Gcm,
}

impl Cipher {
    pub fn from_wire(value: u16) -> Option<Cipher> {
        match value {
            1 => Some(Cipher::Aes128Ccm),
            2 => Some(Cipher::Aes128Gcm),
            _ => None,
        }
    }

    pub fn to_wire(self) -> u16 {
        match self {
            Cipher::Aes128Ccm => 1,
            Cipher::Aes128Gcm => 2,
        }
    }

    /// Bytes of the 16-byte TRANSFORM_HEADER Nonce field that the AEAD
    /// actually uses (MS-SMB2 2.2.41: AES-CCM 11, AES-GCM 12; rest zero).
    pub fn nonce_len(self) -> usize {
        match self {
            Cipher::Aes128Ccm => 11,
            Cipher::Aes128Gcm => 12,
        }
    }
}

/// Why an encrypted frame was refused. Any of these means the connection
/// should be dropped (MS-SMB2 3.3.5.2.1.1: a frame that fails decryption is
/// answered by disconnecting).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("frame shorter than an SMB2 TRANSFORM_HEADER")]
    Truncated,
    #[error("frame does not start with the 0xFD 'SMB' transform protocol id")]
    NotTransform,
    #[error("OriginalMessageSize {declared} does not match the {actual} ciphertext bytes")]
    SizeMismatch { declared: usize, actual: usize },
    #[error("unsupported transform Flags/EncryptionAlgorithm {0:#06x}")]
    UnsupportedFlags(u16),
    #[error("message authentication failed (wrong key or tampered frame)")]
    AuthenticationFailed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_wire_round_trip() {
        for d in Dialect::ALL {
            assert_eq!(Dialect::from_wire(d.to_wire()), Some(d));
        }
        assert_eq!(Dialect::from_wire(0x02FF), None);
        assert_eq!(Dialect::from_wire(0x0301), None);
        assert!(Dialect::Smb300.is_smb3());
        assert!(!Dialect::Smb210.is_smb3());
        assert!(Dialect::Smb202 < Dialect::Smb311);
    }

    #[test]
    fn cipher_wire_values() {
        assert_eq!(Cipher::Aes128Ccm.to_wire(), 1);
        assert_eq!(Cipher::Aes128Gcm.to_wire(), 2);
        assert_eq!(Cipher::from_wire(2), Some(Cipher::Aes128Gcm));
        assert_eq!(Cipher::from_wire(3), None);
    }
}

#[cfg(test)]
mod vectors;
