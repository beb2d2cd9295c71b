//! NEGOTIATE (MS-SMB2 3.3.5.3 / 3.3.5.4) including the SMB1 multi-protocol upgrade
//! (3.3.5.3.1) and 3.1.1 negotiate contexts.

use super::{Outcome, Req};
use crate::conn::ConnError;
use crate::crypto::{Cipher, Dialect, PreauthHash};
use crate::server::Server;
use crate::session::ConnState;
use crate::wire::negotiate::*;
use crate::wire::{cmd, now_filetime, status, Header, Put, HEADER_LEN};
use std::sync::Arc;

const SUPPORTED: [u16; 5] = [
    DIALECT_202,
    DIALECT_210,
    DIALECT_300,
    DIALECT_302,
    DIALECT_311,
];

fn base_response(srv: &Server, dialect: u16) -> NegotiateResponse {
    let big = dialect != DIALECT_202 && dialect != DIALECT_WILDCARD;
    let max = if big { crate::MAX_IO } else { 65536 };
    NegotiateResponse {
        security_mode: SIGNING_ENABLED,
        dialect,
        server_guid: srv.guid,
        // 3.3.5.4: leasing from SMB 2.1 on (issue 5).
        capabilities: if big { CAP_LARGE_MTU | CAP_LEASING } else { 0 },
        max_transact: max,
        max_read: max,
        max_write: max,
        system_time: now_filetime(),
        security_blob: crate::auth::negotiate_security_blob(),
        contexts: Vec::new(),
    }
}

pub fn handle(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    if st.negotiated {
        // 3.3.5.3.1: a second NEGOTIATE on a connection is a protocol error.
        return Ok(Outcome::Disconnect("second NEGOTIATE"));
    }
    let Ok(nreq) = NegotiateRequest::parse(req.body) else {
        // Nothing is established yet; a client that cannot frame NEGOTIATE is not one
        // we can talk to.
        return Ok(Outcome::Disconnect("malformed NEGOTIATE"));
    };
    let dialect = SUPPORTED
        .iter()
        .rev()
        .copied()
        .find(|d| nreq.dialects.contains(d))
        .ok_or(status::NOT_SUPPORTED)?;
    let d = Dialect::from_wire(dialect).ok_or(status::NOT_SUPPORTED)?;
    let mut resp = base_response(srv, dialect);
    st.client_guid = nreq.client_guid;
    st.client_caps = nreq.capabilities;
    st.client_security_mode = nreq.security_mode;
    st.client_dialects = nreq.dialects.clone();
    match d {
        Dialect::Smb311 => {
            // 3.3.5.4: SHA-512 preauth integrity is mandatory for 3.1.1.
            if !nreq.has_preauth_context || !nreq.hash_algorithms.contains(&HASH_SHA512) {
                return Err(status::INVALID_PARAMETER);
            }
            let mut pre = Vec::new();
            pre.put_u16(1);
            pre.put_u16(32);
            pre.put_u16(HASH_SHA512);
            pre.extend_from_slice(&Server::salt());
            resp.contexts.push((CTX_PREAUTH_INTEGRITY, pre));
            if !nreq.ciphers.is_empty() {
                // The client lists ciphers in its order of preference.
                let chosen = nreq.ciphers.iter().copied().find_map(Cipher::from_wire);
                st.cipher = chosen;
                let mut enc = Vec::new();
                enc.put_u16(1);
                enc.put_u16(chosen.map(|c| c.to_wire()).unwrap_or(0));
                resp.contexts.push((CTX_ENCRYPTION, enc));
            }
            if !nreq.signing_algorithms.is_empty() {
                // We sign 3.x with AES-CMAC (crypto::sign_message); every 3.1.1 client
                // that sends this context offers it.
                let mut sig = Vec::new();
                sig.put_u16(1);
                sig.put_u16(SIGNING_AES_CMAC);
                resp.contexts.push((CTX_SIGNING, sig));
            }
            st.preauth = PreauthHash::new();
            st.preauth.update(req.raw);
        }
        // 3.0/3.0.2 encryption is AES-128-CCM, offered through the capability bit.
        Dialect::Smb300 | Dialect::Smb302 if nreq.capabilities & CAP_ENCRYPTION != 0 => {
            resp.capabilities |= CAP_ENCRYPTION;
            st.cipher = Some(Cipher::Aes128Ccm);
        }
        _ => {}
    }
    // 3.3.5.4: directory leases are offered to SMB 3.x clients that ask for them
    // (the capability bit in the request); grants check it (leasing::directory).
    if matches!(d, Dialect::Smb300 | Dialect::Smb302 | Dialect::Smb311)
        && nreq.capabilities & CAP_DIRECTORY_LEASING != 0
    {
        resp.capabilities |= CAP_DIRECTORY_LEASING;
    }
    st.dialect = Some(d);
    st.negotiated = true;
    st.server_security_mode = resp.security_mode;
    st.server_caps = resp.capabilities;
    st.server_guid = srv.guid;
    let mut body = Vec::new();
    resp.write(&mut body);
    Ok(Outcome::Done(status::SUCCESS, body))
}

pub fn hash_response(st: &mut ConnState, msg: &[u8]) {
    if st.dialect == Some(Dialect::Smb311) {
        st.preauth.update(msg);
    }
}

/// 3.3.5.3.1: an SMB1 NEGOTIATE listing "SMB 2.???" is answered with an SMB2 NEGOTIATE
/// response for the wildcard dialect; the client then negotiates again over SMB2.
pub fn smb1_negotiate(
    srv: &Arc<Server>,
    st: &mut ConnState,
    buf: &[u8],
) -> Result<Vec<u8>, ConnError> {
    if st.negotiated || buf.len() < 35 || buf[4] != 0x72 {
        return Err(ConnError::Protocol("SMB1"));
    }
    let bytes = &buf[35..];
    let names: Vec<&[u8]> = bytes
        .split(|b| *b == 0)
        .filter_map(|s| s.strip_prefix(&[0x02]))
        .collect();
    let dialect = if names.contains(&&b"SMB 2.???"[..]) {
        DIALECT_WILDCARD
    } else if names.contains(&&b"SMB 2.002"[..]) {
        DIALECT_202
    } else {
        return Err(ConnError::Protocol("SMB1 without SMB2 dialects"));
    };
    if dialect == DIALECT_202 {
        st.dialect = Some(Dialect::Smb202);
        st.negotiated = true;
    }
    let resp = base_response(srv, dialect);
    let h = Header {
        command: cmd::NEGOTIATE,
        credits: 1,
        flags: crate::wire::FLAGS_SERVER_TO_REDIR,
        ..Default::default()
    };
    let mut msg = Vec::with_capacity(HEADER_LEN + 128);
    h.write(&mut msg);
    resp.write(&mut msg);
    Ok(msg)
}
