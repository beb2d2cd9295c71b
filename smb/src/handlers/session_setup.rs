//! SESSION_SETUP (MS-SMB2 3.3.5.5) through the auth contract, and LOGOFF (3.3.5.6).

use super::{reader, Outcome, Req};
use crate::auth::{AuthError, AuthStep, NtlmAuthenticator};
use crate::crypto::{derive_session_keys, Dialect};
use crate::server::Server;
use crate::session::{AuthState, ConnState, Session};
use crate::wire::negotiate::SIGNING_REQUIRED;
use crate::wire::{status, Put, Reader, HEADER_LEN};
use std::collections::HashMap;
use std::sync::Arc;

const SESSION_FLAG_IS_GUEST: u16 = 0x0001;
const SESSION_FLAG_IS_NULL: u16 = 0x0002;
const SETUP_FLAG_BINDING: u8 = 0x01;

fn body(flags: u16, blob: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + blob.len());
    b.put_u16(9);
    b.put_u16(flags);
    b.put_u16((HEADER_LEN + 8) as u16);
    b.put_u16(blob.len() as u16);
    if blob.is_empty() {
        b.put_u8(0);
    } else {
        b.extend_from_slice(blob);
    }
    b
}

pub fn handle(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    let r = reader(req, 25)?;
    if r.u8(2).map_err(super::wire_err)? & SETUP_FLAG_BINDING != 0 {
        // Multichannel binding is not offered (no CAP_MULTI_CHANNEL).
        return Err(status::REQUEST_NOT_ACCEPTED);
    }
    let off = r.u16(12).map_err(super::wire_err)? as usize;
    let len = r.u16(14).map_err(super::wire_err)? as usize;
    let blob = r.header_relative(off, len).map_err(super::wire_err)?;
    let dialect = st.dialect.ok_or(status::INVALID_PARAMETER)?;
    let mut sid = req.hdr.session_id;
    if sid == 0 {
        sid = srv.new_session_id();
        st.sessions.insert(
            sid,
            Session {
                id: sid,
                state: AuthState::InProgress {
                    auth: Box::new(NtlmAuthenticator::new(Arc::clone(&srv.cfg.credentials))),
                    preauth: st.preauth.clone(),
                },
                keys: None,
                signing_required: false,
                encrypt_data: false,
                user: String::new(),
                guest: false,
                anonymous: false,
                trees: HashMap::new(),
                next_tree: 1,
                counted: None,
            },
        );
        st.reply_session_id = Some(sid);
    }
    let conn_preauth = st.preauth.clone();
    let client_security_mode = st.client_security_mode;
    let sess = st
        .sessions
        .get_mut(&sid)
        .ok_or(status::USER_SESSION_DELETED)?;
    if sess.is_valid() {
        // Re-authentication (3.3.5.5.2): start a fresh exchange on the same session.
        sess.state = AuthState::InProgress {
            auth: Box::new(NtlmAuthenticator::new(Arc::clone(&srv.cfg.credentials))),
            preauth: conn_preauth,
        };
    }
    let AuthState::InProgress { auth, preauth } = &mut sess.state else {
        return Err(status::INVALID_PARAMETER);
    };
    if dialect == Dialect::Smb311 {
        preauth.update(req.raw);
    }
    match auth.step(blob) {
        Ok(AuthStep::Continue { response }) => Ok(Outcome::Done(
            status::MORE_PROCESSING_REQUIRED,
            body(0, &response),
        )),
        Ok(AuthStep::Done {
            response,
            session_key,
            user,
            guest,
            anonymous,
        }) => {
            let pre = preauth.value();
            let mut flags = 0;
            if guest {
                flags |= SESSION_FLAG_IS_GUEST;
            }
            if anonymous {
                flags |= SESSION_FLAG_IS_NULL;
            }
            // Guest and anonymous sessions have no usable key: no signing, no
            // encryption (3.3.5.5.3).
            if !guest && !anonymous {
                let pre_opt = (dialect == Dialect::Smb311).then_some(&pre);
                sess.keys = Some(derive_session_keys(dialect, &session_key, pre_opt));
                sess.signing_required = client_security_mode & SIGNING_REQUIRED != 0;
            }
            tracing::debug!(session = sid, %user, guest, anonymous, "session established");
            sess.user = user;
            sess.guest = guest;
            sess.anonymous = anonymous;
            sess.state = AuthState::Valid;
            if sess.counted.is_none() {
                sess.counted = Some(crate::server::SessionCount::new(&srv.stats));
            }
            Ok(Outcome::Done(status::SUCCESS, body(flags, &response)))
        }
        Err(e) => {
            tracing::debug!(session = sid, "authentication failed: {e:?}");
            st.sessions.remove(&sid);
            Err(match e {
                AuthError::LogonFailure => status::LOGON_FAILURE,
                AuthError::InvalidToken(_) => status::INVALID_PARAMETER,
                AuthError::GuestNotAllowed => status::ACCESS_DENIED,
            })
        }
    }
}

/// 3.3.5.5: every SESSION_SETUP response except the final successful one is folded
/// into the session's preauth hash.
pub fn hash_response(st: &mut ConnState, status_code: u32, msg: &[u8]) {
    if st.dialect != Some(Dialect::Smb311) || status_code != status::MORE_PROCESSING_REQUIRED {
        return;
    }
    let Ok(sid) = Reader::new(msg).u64(40) else {
        return;
    };
    if let Some(Session {
        state: AuthState::InProgress { preauth, .. },
        ..
    }) = st.sessions.get_mut(&sid)
    {
        preauth.update(msg);
    }
}

pub fn logoff(srv: &Arc<Server>, st: &mut ConnState, req: &Req) -> Result<Outcome, u32> {
    reader(req, 4)?;
    let sid = req.hdr.session_id;
    st.session(sid)?;
    st.close_where(srv, |o| o.session_id == sid);
    st.sessions.remove(&sid);
    Ok(Outcome::Done(status::SUCCESS, vec![4, 0, 0, 0]))
}
