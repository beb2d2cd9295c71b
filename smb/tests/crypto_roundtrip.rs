//! Round trips and tamper detection for SMB2 signing and encryption through
//! the public `leasefs_smb::crypto` API.

use leasefs_smb::crypto::{
    decrypt_message, derive_session_keys, encrypt_message, sign_message, transform_session_id,
    verify_signature, Cipher, CryptoError, Dialect, PreauthHash, SMB2_FLAGS_SIGNED,
    TRANSFORM_HEADER_LEN,
};

/// A plausible SMB2 message: 64-byte header (ECHO response) plus a body.
fn message(body_len: usize) -> Vec<u8> {
    let mut m = vec![0u8; 64 + body_len];
    m[..4].copy_from_slice(&[0xFE, b'S', b'M', b'B']);
    m[4..6].copy_from_slice(&64u16.to_le_bytes());
    m[12..14].copy_from_slice(&0x000Du16.to_le_bytes());
    m[16..20].copy_from_slice(&0x0000_0001u32.to_le_bytes()); // SERVER_TO_REDIR
    m[40..48].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    for (i, b) in m[64..].iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    m
}

fn flags(m: &[u8]) -> u32 {
    u32::from_le_bytes(m[16..20].try_into().unwrap())
}

#[test]
fn sign_then_verify_every_dialect() {
    let session_key = [0x42u8; 16];
    let mut preauth = PreauthHash::new();
    preauth.update(b"negotiate request");
    for dialect in Dialect::ALL {
        let keys = derive_session_keys(dialect, &session_key, Some(&preauth.value()));
        let mut m = message(37);
        sign_message(dialect, &keys.signing, &mut m);
        assert_ne!(flags(&m) & SMB2_FLAGS_SIGNED, 0, "{dialect:?}: flag set");
        assert_eq!(flags(&m) & 1, 1, "{dialect:?}: other flags kept");
        assert_ne!(&m[48..64], &[0u8; 16], "{dialect:?}: signature written");
        assert!(verify_signature(dialect, &keys.signing, &m), "{dialect:?}");

        // Any flipped bit outside the signature breaks it...
        for pos in [0usize, 16, 40, 47, 64, m.len() - 1] {
            let mut t = m.clone();
            t[pos] ^= 0x01;
            assert!(
                !verify_signature(dialect, &keys.signing, &t),
                "{dialect:?} byte {pos}"
            );
        }
        // ...and so does a flipped signature bit, a truncation or a wrong key.
        let mut t = m.clone();
        t[50] ^= 0x80;
        assert!(!verify_signature(dialect, &keys.signing, &t));
        assert!(!verify_signature(dialect, &keys.signing, &m[..m.len() - 1]));
        assert!(!verify_signature(dialect, &[0x43u8; 16], &m));
    }
}

#[test]
fn signing_algorithm_differs_between_2x_and_3x() {
    // 2.x signs with HMAC-SHA256 and 3.x with AES-CMAC: the same key gives
    // different signatures, and a 2.1 signature does not verify as 3.0.
    let key = [7u8; 16];
    let mut a = message(8);
    let mut b = message(8);
    sign_message(Dialect::Smb210, &key, &mut a);
    sign_message(Dialect::Smb300, &key, &mut b);
    assert_ne!(a[48..64], b[48..64]);
    assert!(!verify_signature(Dialect::Smb300, &key, &a));
    // 2.0.2 and 2.1 share the algorithm, as do 3.0 and 3.1.1.
    assert!(verify_signature(Dialect::Smb202, &key, &a));
    assert!(verify_signature(Dialect::Smb311, &key, &b));
}

#[test]
fn resigning_is_idempotent_and_short_messages_are_ignored() {
    let key = [9u8; 16];
    let mut m = message(0);
    sign_message(Dialect::Smb302, &key, &mut m);
    let first = m.clone();
    sign_message(Dialect::Smb302, &key, &mut m);
    assert_eq!(m, first);

    let mut short = vec![0xAAu8; 63];
    sign_message(Dialect::Smb311, &key, &mut short);
    assert_eq!(short, vec![0xAAu8; 63]);
    assert!(!verify_signature(Dialect::Smb311, &key, &short));
}

#[test]
fn encrypt_then_decrypt_both_ciphers() {
    let key = [0x5Au8; 16];
    for cipher in [Cipher::Aes128Ccm, Cipher::Aes128Gcm] {
        for len in [64usize, 65, 100, 4096, 70_000] {
            let m = message(len - 64);
            let frame = encrypt_message(cipher, &key, 0xDEAD_BEEF_0000_0001, &m);
            assert_eq!(frame.len(), TRANSFORM_HEADER_LEN + m.len());
            assert_eq!(&frame[..4], &[0xFD, b'S', b'M', b'B']);
            assert_eq!(
                u32::from_le_bytes(frame[36..40].try_into().unwrap()) as usize,
                m.len()
            );
            assert_eq!(u16::from_le_bytes(frame[42..44].try_into().unwrap()), 1);
            // The nonce uses 11 (CCM) or 12 (GCM) bytes; the rest is zero.
            assert!(frame[20 + cipher.nonce_len()..36].iter().all(|&b| b == 0));
            assert_ne!(&frame[TRANSFORM_HEADER_LEN..], &m[..], "ciphertext differs");
            assert_eq!(transform_session_id(&frame), Some(0xDEAD_BEEF_0000_0001));
            let (sid, plain) = decrypt_message(cipher, &key, &frame).unwrap();
            assert_eq!(sid, 0xDEAD_BEEF_0000_0001);
            assert_eq!(plain, m);
        }
    }
}

#[test]
fn nonces_are_fresh() {
    let key = [1u8; 16];
    let m = message(16);
    let a = encrypt_message(Cipher::Aes128Gcm, &key, 1, &m);
    let b = encrypt_message(Cipher::Aes128Gcm, &key, 1, &m);
    assert_ne!(a[20..32], b[20..32]);
    assert_ne!(a[52..], b[52..]);
}

#[test]
fn tampering_is_detected() {
    let key = [0x33u8; 16];
    for cipher in [Cipher::Aes128Ccm, Cipher::Aes128Gcm] {
        let frame = encrypt_message(cipher, &key, 77, &message(50));
        // Tag, nonce, session id (authenticated as AAD) and ciphertext bytes.
        for pos in [4usize, 19, 20, 30, 44, 51, 52, frame.len() - 1] {
            let mut t = frame.clone();
            t[pos] ^= 0x04;
            assert_eq!(
                decrypt_message(cipher, &key, &t),
                Err(CryptoError::AuthenticationFailed),
                "{cipher:?} byte {pos}"
            );
        }
        assert_eq!(
            decrypt_message(cipher, &[0x34u8; 16], &frame),
            Err(CryptoError::AuthenticationFailed)
        );
        let other = match cipher {
            Cipher::Aes128Ccm => Cipher::Aes128Gcm,
            Cipher::Aes128Gcm => Cipher::Aes128Ccm,
        };
        assert_eq!(
            decrypt_message(other, &key, &frame),
            Err(CryptoError::AuthenticationFailed)
        );
    }
}

#[test]
fn malformed_frames_are_refused() {
    let key = [0x10u8; 16];
    let frame = encrypt_message(Cipher::Aes128Gcm, &key, 5, &message(10));
    assert_eq!(
        decrypt_message(Cipher::Aes128Gcm, &key, &frame[..3]),
        Err(CryptoError::Truncated)
    );
    assert_eq!(
        decrypt_message(Cipher::Aes128Gcm, &key, &frame[..51]),
        Err(CryptoError::Truncated)
    );
    assert!(matches!(
        decrypt_message(Cipher::Aes128Gcm, &key, &frame[..frame.len() - 1]),
        Err(CryptoError::SizeMismatch { .. })
    ));
    let mut t = frame.clone();
    t[0] = 0xFE;
    assert_eq!(
        decrypt_message(Cipher::Aes128Gcm, &key, &t),
        Err(CryptoError::NotTransform)
    );
    assert_eq!(transform_session_id(&t), None);
    let mut t = frame.clone();
    t[42] = 2;
    assert_eq!(
        decrypt_message(Cipher::Aes128Gcm, &key, &t),
        Err(CryptoError::UnsupportedFlags(2))
    );
}

#[test]
fn key_derivation_separates_purposes_and_binds_preauth() {
    let sk = [0x77u8; 16];
    let k2 = derive_session_keys(Dialect::Smb210, &sk, None);
    assert_eq!(k2.signing, sk);
    assert_eq!(k2.application, sk);

    let k30 = derive_session_keys(Dialect::Smb300, &sk, None);
    let all = [
        k30.signing,
        k30.encryption,
        k30.decryption,
        k30.application,
        sk,
    ];
    for i in 0..all.len() {
        for j in i + 1..all.len() {
            assert_ne!(all[i], all[j]);
        }
    }

    let mut h1 = PreauthHash::new();
    h1.update(b"a");
    let mut h2 = h1.clone();
    h2.update(b"b");
    let a = derive_session_keys(Dialect::Smb311, &sk, Some(&h1.value()));
    let b = derive_session_keys(Dialect::Smb311, &sk, Some(&h2.value()));
    assert_ne!(a.signing, b.signing);
    assert_ne!(a.encryption, b.encryption);
    assert_ne!(a.signing, k30.signing);
}

#[test]
fn random_frames_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let key = [0x21u8; 16];
    let good = encrypt_message(Cipher::Aes128Gcm, &key, 9, &message(40));
    for _ in 0..5000 {
        let mut f = if rng.gen_bool(0.5) {
            good.clone()
        } else {
            let n = rng.gen_range(0..120);
            (0..n).map(|_| rng.gen()).collect()
        };
        if !f.is_empty() {
            let i = rng.gen_range(0..f.len());
            f[i] = rng.gen();
            f.truncate(rng.gen_range(0..=f.len()));
        }
        for cipher in [Cipher::Aes128Ccm, Cipher::Aes128Gcm] {
            let _ = decrypt_message(cipher, &key, &f);
        }
        let _ = transform_session_id(&f);
        for d in Dialect::ALL {
            let _ = verify_signature(d, &key, &f);
        }
    }
}
