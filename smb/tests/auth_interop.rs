//! Interoperability of `leasefs_smb::auth` and `leasefs_smb::crypto` with
//! real clients (Samba's smbclient, Python smbprotocol + pyspnego), before
//! and independently of the real server.
//!
//! A deliberately minimal SMB2 responder (NEGOTIATE, SESSION_SETUP, and a
//! TREE_CONNECT that always answers STATUS_BAD_NETWORK_NAME) runs on
//! 127.0.0.1 and a client connects to it. When the client reports
//! BAD_NETWORK_NAME for the tree connect, it has accepted our SPNEGO/NTLMv2
//! exchange, verified our mechListMIC, and accepted the signed (or
//! encrypted) responses made with keys derived by our KDF and preauth hash;
//! the responder in turn checks the signature or decrypts the client's
//! TREE_CONNECT with the keys it derived.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use leasefs_smb::auth::{AuthError, AuthStep, Credentials, NtlmAuthenticator};
use leasefs_smb::crypto::{
    decrypt_message, derive_session_keys, encrypt_message, sign_message, verify_signature, Cipher,
    Dialect, PreauthHash, SessionKeys,
};

const STATUS_SUCCESS: u32 = 0;
const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;
const STATUS_LOGON_FAILURE: u32 = 0xC000_006D;
const STATUS_BAD_NETWORK_NAME: u32 = 0xC000_00CC;
const STATUS_ACCESS_DENIED: u32 = 0xC000_0022;
const STATUS_NOT_SUPPORTED: u32 = 0xC000_00BB;

const FLAGS_SERVER_TO_REDIR: u32 = 0x1;

#[derive(Clone)]
struct Config {
    /// Dialect the responder picks when the client offers it.
    dialect: Dialect,
    /// Cipher chosen for 3.1.1 when the client offers it.
    cipher: Cipher,
    require_encryption: bool,
    creds: Arc<Credentials>,
}

/// What the responder observed, for server-side assertions.
#[derive(Debug, Default, Clone)]
struct Observed {
    dialect: Option<Dialect>,
    auth: Option<Result<(String, bool, bool), AuthError>>,
    /// TREE_CONNECT arrived with a valid signature.
    tree_connect_signed_ok: bool,
    /// TREE_CONNECT arrived encrypted and decrypted correctly.
    tree_connect_encrypted_ok: bool,
    errors: Vec<String>,
}

struct Session {
    id: u64,
    keys: Option<SessionKeys>,
    preauth: PreauthHash,
    guest_or_anon: bool,
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn response_header(req: &[u8], status: u32, session_id: u64) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(&[0xFE, b'S', b'M', b'B']);
    h[4..6].copy_from_slice(&64u16.to_le_bytes());
    h[8..12].copy_from_slice(&status.to_le_bytes());
    h[12..14].copy_from_slice(&req[12..14]); // command
    let credits = le16(req, 14).max(1);
    h[14..16].copy_from_slice(&credits.to_le_bytes());
    h[16..20].copy_from_slice(&FLAGS_SERVER_TO_REDIR.to_le_bytes());
    h[24..32].copy_from_slice(&req[24..32]); // message id
    h[32..36].copy_from_slice(&req[32..36]);
    h[36..40].copy_from_slice(&req[36..40]); // tree id
    h[40..48].copy_from_slice(&session_id.to_le_bytes());
    h
}

fn error_body() -> Vec<u8> {
    // SMB2 ERROR Response (MS-SMB2 2.2.2): StructureSize 9, no data.
    vec![9, 0, 0, 0, 0, 0, 0, 0, 0]
}

fn pad8(v: &mut Vec<u8>) {
    while v.len() % 8 != 0 {
        v.push(0);
    }
}

fn negotiate(cfg: &Config, req: &[u8], obs: &mut Observed) -> (Vec<u8>, Dialect, Option<Cipher>) {
    let count = usize::from(le16(req, 64 + 2));
    let offered: Vec<u16> = (0..count).map(|i| le16(req, 64 + 36 + 2 * i)).collect();
    let dialect = if offered.contains(&cfg.dialect.to_wire()) {
        cfg.dialect
    } else {
        offered
            .iter()
            .filter_map(|&d| Dialect::from_wire(d))
            .max()
            .expect("client offered a known dialect")
    };
    obs.dialect = Some(dialect);
    // 3.1.1 negotiate contexts in the request: does the client offer our cipher?
    let mut cipher = None;
    if dialect == Dialect::Smb311 {
        let mut off = le32(req, 64 + 28) as usize;
        let n = le16(req, 64 + 32);
        for _ in 0..n {
            let ty = le16(req, off);
            let len = usize::from(le16(req, off + 2));
            let data = &req[off + 8..off + 8 + len];
            if ty == 2 {
                let ciphers: Vec<u16> = (0..usize::from(le16(data, 0)))
                    .map(|i| le16(data, 2 + 2 * i))
                    .collect();
                if ciphers.contains(&cfg.cipher.to_wire()) {
                    cipher = Some(cfg.cipher);
                }
            }
            off += 8 + len;
            off = (off + 7) & !7;
        }
    } else if dialect.is_smb3() {
        cipher = Some(Cipher::Aes128Ccm);
    }
    let blob = leasefs_smb::auth::negotiate_security_blob();
    let mut body = vec![0u8; 64];
    body[0..2].copy_from_slice(&65u16.to_le_bytes());
    body[2..4].copy_from_slice(&0x0003u16.to_le_bytes()); // signing enabled + required
    body[4..6].copy_from_slice(&dialect.to_wire().to_le_bytes());
    body[8..24].copy_from_slice(&[0x11; 16]);
    let caps: u32 = if dialect.is_smb3() && dialect != Dialect::Smb311 {
        0x40 // SMB2_GLOBAL_CAP_ENCRYPTION (3.0/3.0.2 only)
    } else {
        0
    };
    body[24..28].copy_from_slice(&caps.to_le_bytes());
    for o in [28, 32, 36] {
        body[o..o + 4].copy_from_slice(&(1u32 << 20).to_le_bytes());
    }
    body[56..58].copy_from_slice(&128u16.to_le_bytes());
    body[58..60].copy_from_slice(&(blob.len() as u16).to_le_bytes());
    body.extend_from_slice(&blob);
    if dialect == Dialect::Smb311 {
        pad8(&mut body);
        let ctx_off = 64 + body.len();
        let mut contexts = Vec::new();
        // PREAUTH_INTEGRITY_CAPABILITIES: SHA-512 with a 32-byte salt.
        let mut data = vec![1, 0, 32, 0, 1, 0];
        data.extend_from_slice(&[0x5A; 32]);
        contexts.extend_from_slice(&1u16.to_le_bytes());
        contexts.extend_from_slice(&(data.len() as u16).to_le_bytes());
        contexts.extend_from_slice(&[0; 4]);
        contexts.extend_from_slice(&data);
        let mut count = 1u16;
        if let Some(c) = cipher {
            pad8(&mut contexts);
            contexts.extend_from_slice(&2u16.to_le_bytes());
            contexts.extend_from_slice(&4u16.to_le_bytes());
            contexts.extend_from_slice(&[0; 4]);
            contexts.extend_from_slice(&1u16.to_le_bytes());
            contexts.extend_from_slice(&c.to_wire().to_le_bytes());
            count += 1;
        }
        body[6..8].copy_from_slice(&count.to_le_bytes());
        body[60..64].copy_from_slice(&(ctx_off as u32).to_le_bytes());
        body.extend_from_slice(&contexts);
    }
    (body, dialect, cipher)
}

fn send(stream: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let len = msg.len() as u32;
    stream.write_all(&[0, (len >> 16) as u8, (len >> 8) as u8, len as u8])?;
    stream.write_all(msg)
}

fn serve_one(cfg: Config, mut stream: TcpStream) -> Observed {
    let mut obs = Observed::default();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut conn_preauth = PreauthHash::new();
    let mut dialect = Dialect::Smb202;
    let mut cipher = None;
    let mut session: Option<Session> = None;
    let mut authenticator: Option<NtlmAuthenticator> = None;
    loop {
        let mut nb = [0u8; 4];
        if stream.read_exact(&mut nb).is_err() {
            break;
        }
        let len = (usize::from(nb[1]) << 16) | (usize::from(nb[2]) << 8) | usize::from(nb[3]);
        let mut frame = vec![0u8; len];
        if stream.read_exact(&mut frame).is_err() {
            break;
        }
        let mut encrypted = false;
        let req = if frame.starts_with(&[0xFD, b'S', b'M', b'B']) {
            let Some(s) = session.as_ref().filter(|s| s.keys.is_some()) else {
                obs.errors
                    .push("encrypted frame before a keyed session".into());
                break;
            };
            let keys = s.keys.as_ref().unwrap();
            match decrypt_message(cipher.unwrap(), &keys.decryption, &frame) {
                Ok((sid, plain)) => {
                    assert_eq!(sid, s.id);
                    encrypted = true;
                    plain
                }
                Err(e) => {
                    obs.errors.push(format!("decrypt failed: {e}"));
                    break;
                }
            }
        } else if frame.starts_with(&[0xFE, b'S', b'M', b'B']) {
            frame
        } else {
            obs.errors.push(format!(
                "unexpected frame {:02x?}",
                &frame[..4.min(frame.len())]
            ));
            break;
        };
        if le32(&req, 20) != 0 {
            obs.errors.push("compound request not expected".into());
            break;
        }
        let command = le16(&req, 12);
        let sid = session.as_ref().map_or(0, |s| s.id);
        let (status, body, sign) = match command {
            0 => {
                conn_preauth.update(&req);
                let (body, d, c) = negotiate(&cfg, &req, &mut obs);
                dialect = d;
                cipher = c;
                (STATUS_SUCCESS, body, false)
            }
            1 => {
                let s = session.get_or_insert_with(|| Session {
                    id: 0x0000_4000_0000_0011,
                    keys: None,
                    preauth: conn_preauth.clone(),
                    guest_or_anon: false,
                });
                s.preauth.update(&req);
                let off = usize::from(le16(&req, 64 + 12));
                let blen = usize::from(le16(&req, 64 + 14));
                let auth =
                    authenticator.get_or_insert_with(|| NtlmAuthenticator::new(cfg.creds.clone()));
                let step = auth.step(&req[off..off + blen]);
                let (status, flags, token, sign) = match step {
                    Ok(AuthStep::Continue { response }) => {
                        (STATUS_MORE_PROCESSING_REQUIRED, 0u16, response, false)
                    }
                    Ok(AuthStep::Done {
                        response,
                        session_key,
                        user,
                        guest,
                        anonymous,
                    }) => {
                        obs.auth = Some(Ok((user, guest, anonymous)));
                        let mut flags = 0u16;
                        if guest {
                            flags |= 0x1;
                        }
                        if anonymous {
                            flags |= 0x2;
                        }
                        let keyed = !guest && !anonymous;
                        s.guest_or_anon = !keyed;
                        if keyed {
                            let h = s.preauth.value();
                            s.keys = Some(derive_session_keys(dialect, &session_key, Some(&h)));
                            if cfg.require_encryption {
                                flags |= 0x4; // SMB2_SESSION_FLAG_ENCRYPT_DATA
                            }
                        }
                        (STATUS_SUCCESS, flags, response, keyed)
                    }
                    Err(e) => {
                        obs.auth = Some(Err(e));
                        (STATUS_LOGON_FAILURE, 0, Vec::new(), false)
                    }
                };
                let mut body = vec![0u8; 8];
                body[0..2].copy_from_slice(&9u16.to_le_bytes());
                body[2..4].copy_from_slice(&flags.to_le_bytes());
                body[4..6].copy_from_slice(&72u16.to_le_bytes());
                body[6..8].copy_from_slice(&(token.len() as u16).to_le_bytes());
                body.extend_from_slice(&token);
                if token.is_empty() {
                    body.push(0);
                }
                (status, body, sign)
            }
            2 => (STATUS_SUCCESS, vec![4, 0, 0, 0], true),
            3 => {
                let s = session.as_ref();
                let keyed = s.and_then(|s| s.keys.as_ref());
                if encrypted {
                    obs.tree_connect_encrypted_ok = true;
                    (STATUS_BAD_NETWORK_NAME, error_body(), false)
                } else if let Some(keys) = keyed {
                    if verify_signature(dialect, &keys.signing, &req) {
                        obs.tree_connect_signed_ok = true;
                        (STATUS_BAD_NETWORK_NAME, error_body(), true)
                    } else {
                        obs.errors
                            .push("TREE_CONNECT signature did not verify".into());
                        (STATUS_ACCESS_DENIED, error_body(), false)
                    }
                } else if s.is_some_and(|s| s.guest_or_anon) {
                    (STATUS_BAD_NETWORK_NAME, error_body(), false)
                } else {
                    (STATUS_ACCESS_DENIED, error_body(), false)
                }
            }
            _ => (STATUS_NOT_SUPPORTED, error_body(), true),
        };
        let sid = if command == 1 {
            session.as_ref().map_or(sid, |s| s.id)
        } else {
            sid
        };
        let mut msg = response_header(&req, status, sid);
        msg.extend_from_slice(&body);
        if command == 0 {
            conn_preauth.update(&msg);
        }
        if command == 1 && status == STATUS_MORE_PROCESSING_REQUIRED {
            if let Some(s) = session.as_mut() {
                s.preauth.update(&msg);
            }
        }
        let keys = session.as_ref().and_then(|s| s.keys.as_ref());
        let out = match (encrypted, keys) {
            (true, Some(k)) => encrypt_message(cipher.unwrap(), &k.encryption, sid, &msg),
            (false, Some(k)) if sign => {
                sign_message(dialect, &k.signing, &mut msg);
                msg
            }
            _ => msg,
        };
        if send(&mut stream, &out).is_err() {
            break;
        }
    }
    obs
}

struct Responder {
    port: u16,
    result: mpsc::Receiver<Observed>,
}

fn start(cfg: Config) -> Responder {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        // One connection per test; the thread ends with it.
        if let Ok((stream, _)) = listener.accept() {
            let _ = tx.send(serve_one(cfg, stream));
        }
    });
    Responder { port, result: rx }
}

fn creds(allow_guest: bool) -> Arc<Credentials> {
    let mut users = HashMap::new();
    users.insert("alice".to_string(), "Secret123".to_string());
    Arc::new(Credentials { users, allow_guest })
}

/// Scratch directory removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "leasefs-auth-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts a responder, runs the client command built for its port (under
/// `timeout` so a hung client cannot hang the suite), and returns the
/// client's combined output and what the responder observed.
fn run_client(cfg: Config, build: impl FnOnce(&str) -> Command) -> (String, Observed) {
    let r = start(cfg);
    let out = build(&r.port.to_string()).output().expect("run the client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let obs = r
        .result
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("responder saw no connection; the client said:\n{text}"));
    (text, obs)
}

/// smbclient with a private, empty configuration.
fn run_smbclient(cfg: Config, args: &[&str]) -> (String, Observed) {
    let dir = TempDir::new();
    let conf = dir.0.join("smb.conf");
    std::fs::write(&conf, "[global]\n").unwrap();
    run_client(cfg, |port| {
        let mut cmd = Command::new("timeout");
        cmd.args(["60", "smbclient", "--configfile"])
            .arg(&conf)
            .args(["//127.0.0.1/share", "-p", port, "-c", "exit"])
            .args(args);
        cmd
    })
}

fn cfg(dialect: Dialect) -> Config {
    Config {
        dialect,
        cipher: Cipher::Aes128Gcm,
        require_encryption: false,
        creds: creds(false),
    }
}

fn assert_reached_tree_connect(text: &str, obs: &Observed) {
    assert!(
        text.contains("NT_STATUS_BAD_NETWORK_NAME"),
        "smbclient did not get past authentication:\n{text}\nobserved: {obs:?}"
    );
    assert!(obs.errors.is_empty(), "{obs:?}");
}

#[test]
fn smbclient_signed_sessions_every_dialect() {
    for (d, max) in [
        (Dialect::Smb202, "SMB2_02"),
        (Dialect::Smb210, "SMB2_10"),
        (Dialect::Smb300, "SMB3_00"),
        (Dialect::Smb302, "SMB3_02"),
        (Dialect::Smb311, "SMB3_11"),
    ] {
        let (text, obs) = run_smbclient(cfg(d), &["-U", "alice%Secret123", "-m", max]);
        assert_eq!(obs.dialect, Some(d), "{text}");
        assert_reached_tree_connect(&text, &obs);
        assert!(obs.tree_connect_signed_ok, "{max}: {obs:?}\n{text}");
        match &obs.auth {
            Some(Ok((user, false, false))) => assert_eq!(user, "alice"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn smbclient_encrypted_sessions() {
    for (d, max, cipher) in [
        (Dialect::Smb300, "SMB3_00", Cipher::Aes128Ccm),
        (Dialect::Smb302, "SMB3_02", Cipher::Aes128Ccm),
        (Dialect::Smb311, "SMB3_11", Cipher::Aes128Ccm),
        (Dialect::Smb311, "SMB3_11", Cipher::Aes128Gcm),
    ] {
        let c = Config {
            cipher,
            require_encryption: true,
            ..cfg(d)
        };
        let (text, obs) = run_smbclient(
            c,
            &[
                "-U",
                "alice%Secret123",
                "-m",
                max,
                "--client-protection=encrypt",
            ],
        );
        assert_reached_tree_connect(&text, &obs);
        assert!(
            obs.tree_connect_encrypted_ok,
            "{max} {cipher:?}: {obs:?}\n{text}"
        );
    }
}

#[test]
fn smbclient_wrong_password_is_logon_failure() {
    let (text, obs) = run_smbclient(cfg(Dialect::Smb311), &["-U", "alice%wrong"]);
    assert!(text.contains("NT_STATUS_LOGON_FAILURE"), "{text}");
    assert_eq!(obs.auth, Some(Err(AuthError::LogonFailure)));
}

#[test]
fn smbclient_user_name_case_does_not_matter() {
    let (text, obs) = run_smbclient(cfg(Dialect::Smb311), &["-U", "ALICE%Secret123"]);
    assert_reached_tree_connect(&text, &obs);
    assert!(obs.tree_connect_signed_ok);
}

#[test]
fn smbclient_anonymous_refused_without_guest() {
    let (text, obs) = run_smbclient(cfg(Dialect::Smb311), &["-N", "-U", ""]);
    assert!(text.contains("NT_STATUS_LOGON_FAILURE"), "{text}");
    assert_eq!(obs.auth, Some(Err(AuthError::GuestNotAllowed)));
}

#[test]
fn smbclient_anonymous_with_guest() {
    let c = Config {
        creds: creds(true),
        ..cfg(Dialect::Smb311)
    };
    let (text, obs) = run_smbclient(c, &["-N", "-U", ""]);
    assert_reached_tree_connect(&text, &obs);
    assert_eq!(obs.auth, Some(Ok((String::new(), false, true))));
}

#[test]
fn smbclient_unknown_user_guest_only_when_allowed() {
    let (text, obs) = run_smbclient(cfg(Dialect::Smb311), &["-U", "mallory%x"]);
    assert!(text.contains("NT_STATUS_LOGON_FAILURE"), "{text}");
    assert_eq!(obs.auth, Some(Err(AuthError::LogonFailure)));

    let c = Config {
        creds: creds(true),
        ..cfg(Dialect::Smb311)
    };
    let (text, obs) = run_smbclient(c, &["-U", "mallory%x"]);
    assert_eq!(
        obs.auth,
        Some(Ok(("mallory".into(), true, false))),
        "{text}"
    );
    assert_reached_tree_connect(&text, &obs);
}

// --- Python smbprotocol (with pyspnego's NTLM) ---------------------------------

const SMBPROTOCOL_VERSION: &str = "1.17.0";

const PY_CLIENT: &str = r#"
import sys, uuid
from smbprotocol.connection import Connection
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect
from smbprotocol.exceptions import SMBException

port, dialect, user, pw, enc, proto = sys.argv[1:7]
conn = Connection(uuid.uuid4(), "127.0.0.1", int(port), require_signing=True)
conn.connect(int(dialect, 16), timeout=20)
try:
    s = Session(conn, user, pw, require_encryption=(enc == "1"), auth_protocol=proto)
    s.connect()
    print("SESSION_OK encrypt=%s" % s.encrypt_data)
    try:
        TreeConnect(s, r"\\127.0.0.1\share").connect()
        print("TREE_OK")
    except SMBException as e:
        print("TREE_ERR %s" % type(e).__name__)
except SMBException as e:
    print("SESSION_ERR %s" % type(e).__name__)
finally:
    conn.disconnect(True)
"#;

fn has_smbprotocol(python: &std::path::Path) -> bool {
    Command::new(python)
        .args(["-c", "import smbprotocol"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A Python with smbprotocol: $LEASEFS_TEST_PYTHON, else the suite's venv
/// (target/venv, made by scripts/test.sh), else a venv this test makes once
/// under target/ with a pinned smbprotocol from PyPI.
fn python() -> std::path::PathBuf {
    use std::sync::OnceLock;
    static PYTHON: OnceLock<std::path::PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("LEASEFS_TEST_PYTHON") {
                return p.into();
            }
            let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
            let shared = target.join("venv/bin/python");
            if has_smbprotocol(&shared) {
                return shared;
            }
            let venv = target.join("auth-venv");
            let py = venv.join("bin/python");
            if !has_smbprotocol(&py) {
                let ok = Command::new("python3")
                    .arg("-m")
                    .arg("venv")
                    .arg(&venv)
                    .status()
                    .is_ok_and(|s| s.success())
                    && Command::new(venv.join("bin/pip"))
                        .args(["install", "-q"])
                        .arg(format!("smbprotocol=={SMBPROTOCOL_VERSION}"))
                        .status()
                        .is_ok_and(|s| s.success());
                assert!(ok, "could not create {} with smbprotocol", venv.display());
            }
            py
        })
        .clone()
}

fn run_smbprotocol(
    cfg: Config,
    dialect: Dialect,
    user: &str,
    password: &str,
    encrypt: bool,
    protocol: &str,
) -> (String, Observed) {
    let python = python();
    let dir = TempDir::new();
    let script = dir.0.join("client.py");
    std::fs::write(&script, PY_CLIENT).unwrap();
    run_client(cfg, |port| {
        let mut cmd = Command::new("timeout");
        cmd.arg("60")
            .arg(&python)
            .arg(&script)
            .args([port, &format!("{:x}", dialect.to_wire()), user, password])
            .args([if encrypt { "1" } else { "0" }, protocol]);
        cmd
    })
}

#[test]
fn smbprotocol_encrypted_by_default() {
    // smbprotocol requires encryption unless told otherwise; 3.1.1 with
    // SPNEGO ("negotiate", falling back to NTLM) and with raw NTLMSSP.
    for (d, cipher, proto) in [
        (Dialect::Smb311, Cipher::Aes128Gcm, "negotiate"),
        (Dialect::Smb311, Cipher::Aes128Ccm, "ntlm"),
        (Dialect::Smb302, Cipher::Aes128Ccm, "negotiate"),
        (Dialect::Smb300, Cipher::Aes128Ccm, "ntlm"),
    ] {
        let c = Config {
            cipher,
            require_encryption: true,
            ..cfg(d)
        };
        let (text, obs) = run_smbprotocol(c, d, "alice", "Secret123", true, proto);
        assert!(
            text.contains("SESSION_OK encrypt=True"),
            "{d:?} {proto}: {text}"
        );
        assert!(
            text.contains("TREE_ERR BadNetworkName"),
            "{d:?} {proto}: {text}"
        );
        assert!(obs.tree_connect_encrypted_ok, "{obs:?}");
        assert!(obs.errors.is_empty(), "{obs:?}");
    }
}

#[test]
fn smbprotocol_signed_without_encryption() {
    for (d, proto) in [
        (Dialect::Smb202, "ntlm"),
        (Dialect::Smb210, "negotiate"),
        (Dialect::Smb311, "negotiate"),
    ] {
        let (text, obs) = run_smbprotocol(cfg(d), d, "alice", "Secret123", false, proto);
        assert!(
            text.contains("TREE_ERR BadNetworkName"),
            "{d:?} {proto}: {text}"
        );
        assert!(obs.tree_connect_signed_ok, "{obs:?}");
        assert!(obs.errors.is_empty(), "{obs:?}");
    }
}

#[test]
fn smbprotocol_wrong_password() {
    let (text, obs) = run_smbprotocol(
        cfg(Dialect::Smb311),
        Dialect::Smb311,
        "alice",
        "nope",
        true,
        "negotiate",
    );
    assert!(text.contains("SESSION_ERR LogonFailure"), "{text}");
    assert_eq!(obs.auth, Some(Err(AuthError::LogonFailure)));
}
