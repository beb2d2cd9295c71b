//! Preauthentication integrity hash (MS-SMB2 3.3.5.4, 3.3.5.5).
//!
//! SMB 3.1.1 binds the session keys to every byte of the NEGOTIATE and
//! SESSION_SETUP exchange, so a man in the middle who strips capabilities or
//! downgrades the dialect produces different keys and the first signed
//! message fails. The value starts as 64 zero bytes and each message is
//! folded in as H = SHA-512(H || message).

use sha2::{Digest, Sha512};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreauthHash {
    value: [u8; 64],
}

impl Default for PreauthHash {
    fn default() -> Self {
        Self::new()
    }
}

impl PreauthHash {
    pub fn new() -> Self {
        PreauthHash { value: [0u8; 64] }
    }

    /// Folds one whole SMB2 message (header included, transport prefix
    /// excluded) into the chain.
    pub fn update(&mut self, message: &[u8]) {
        let mut hasher = Sha512::new();
        hasher.update(self.value);
        hasher.update(message);
        self.value.copy_from_slice(&hasher.finalize());
    }

    pub fn value(&self) -> [u8; 64] {
        self.value
    }
}
