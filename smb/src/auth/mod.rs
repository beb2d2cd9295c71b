//! SESSION_SETUP authentication: SPNEGO (RFC 4178, MS-SPNG) carrying
//! NTLMSSP (MS-NLMP) with NTLMv2 verification against configured users.
//!
//! One [`NtlmAuthenticator`] handles one SESSION_SETUP exchange: feed it
//! each request's security buffer and send back what it returns. The caller
//! maps [`AuthStep::Continue`] to STATUS_MORE_PROCESSING_REQUIRED,
//! [`AuthStep::Done`] to STATUS_SUCCESS (setting SMB2_SESSION_FLAG_IS_GUEST
//! or IS_NULL as flagged) and every [`AuthError`] to STATUS_LOGON_FAILURE
//! (MS-SMB2 3.3.5.5.3).

mod der;
mod ntlm;
mod spnego;

use std::collections::HashMap;
use std::sync::Arc;

use rand::RngCore;
use subtle::ConstantTimeEq;

pub use ntlm::ServerIdentity;
use spnego::{NegState, SpnegoToken, NTLMSSP_OID};

/// Accounts the server accepts. Keys are user names (matched
/// case-insensitively, as Windows does), values are clear-text passwords
/// (NTLM needs the NT hash, which is as good as the password anyway).
#[derive(Clone, Default)]
pub struct Credentials {
    pub users: HashMap<String, String>,
    /// Allow anonymous (null) sessions and map unknown users to guest, like
    /// Samba's `map to guest = bad user`.
    pub allow_guest: bool,
}

impl std::fmt::Debug for Credentials {
    // Passwords never go to logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut users: Vec<&String> = self.users.keys().collect();
        users.sort();
        f.debug_struct("Credentials")
            .field("users", &users)
            .field("allow_guest", &self.allow_guest)
            .finish()
    }
}

impl Credentials {
    /// The configured spelling and password of `user`, matched without
    /// regard to case.
    fn lookup(&self, user: &str) -> Option<(&str, &str)> {
        if let Some((k, v)) = self.users.get_key_value(user) {
            return Some((k.as_str(), v.as_str()));
        }
        let folded = user.to_lowercase();
        self.users
            .iter()
            .find(|(k, _)| k.to_lowercase() == folded)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The SPNEGO NegTokenInit advertising NTLMSSP
/// (OID 1.3.6.1.4.1.311.2.2.10) that the server returns in its NEGOTIATE
/// response security buffer (MS-SMB2 3.3.5.3.1, MS-SPNG 3.2.5.2).
pub fn negotiate_security_blob() -> Vec<u8> {
    spnego::encode_server_init()
}

/// Result of one authentication round.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Send `response` with STATUS_MORE_PROCESSING_REQUIRED.
    Continue { response: Vec<u8> },
    /// Authentication finished; send `response` with STATUS_SUCCESS.
    ///
    /// `session_key` is the NTLM ExportedSessionKey, the input to
    /// [`crate::crypto::derive_session_keys`]. For guest and anonymous
    /// sessions it is all zeros: no key is shared with the client, so such
    /// sessions can be neither signed nor encrypted (MS-SMB2 3.3.5.5.3).
    /// `user` is the configured spelling of the account; for a guest it is
    /// the name the client sent and for anonymous it is empty.
    Done {
        response: Vec<u8>,
        session_key: [u8; 16],
        user: String,
        guest: bool,
        anonymous: bool,
    },
}

impl std::fmt::Debug for AuthStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthStep::Continue { response } => f
                .debug_struct("Continue")
                .field("response_len", &response.len())
                .finish(),
            AuthStep::Done {
                response,
                user,
                guest,
                anonymous,
                ..
            } => f
                .debug_struct("Done")
                .field("response_len", &response.len())
                .field("user", user)
                .field("guest", guest)
                .field("anonymous", anonymous)
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Wrong password, unknown user (without guest mapping), NTLMv1, or a
    /// MIC that does not verify.
    #[error("logon failure")]
    LogonFailure,
    /// The security buffer could not be parsed or arrived out of order.
    #[error("invalid security token: {0}")]
    InvalidToken(String),
    /// Anonymous logon attempted while guest access is disabled.
    #[error("guest and anonymous logons are not allowed")]
    GuestNotAllowed,
}

impl From<String> for AuthError {
    fn from(s: String) -> Self {
        AuthError::InvalidToken(s)
    }
}

/// How the client framed its tokens; replies use the same framing.
#[derive(Debug, Clone)]
enum Framing {
    Raw,
    Spnego {
        /// The client's MechTypeList DER, which mechListMIC covers.
        mech_types_der: Vec<u8>,
        /// NTLMSSP was not the client's first choice, so RFC 4178 5
        /// requires a mechListMIC exchange to protect the downgrade.
        mic_required: bool,
    },
}

enum State {
    /// Nothing received yet.
    Start,
    /// SPNEGO chose NTLMSSP over the client's preferred mechanism; waiting
    /// for the NTLMSSP NEGOTIATE in a NegTokenResp.
    AwaitNegotiate { framing: Framing },
    /// CHALLENGE sent; waiting for AUTHENTICATE.
    AwaitAuthenticate {
        framing: Framing,
        negotiate: Vec<u8>,
        challenge: Vec<u8>,
        server_challenge: [u8; 8],
    },
    /// Succeeded or failed; no more input is accepted.
    Finished,
}

/// Server side of one NTLMSSP exchange, optionally inside SPNEGO.
pub struct NtlmAuthenticator {
    creds: Arc<Credentials>,
    identity: ServerIdentity,
    state: State,
    /// Fixed server challenge for known-answer tests.
    #[cfg(test)]
    fixed_challenge: Option<[u8; 8]>,
}

impl NtlmAuthenticator {
    pub fn new(creds: Arc<Credentials>) -> Self {
        Self::with_identity(creds, ServerIdentity::default())
    }

    /// Like [`NtlmAuthenticator::new`] but announcing the given server and
    /// domain names in the CHALLENGE message.
    pub fn with_identity(creds: Arc<Credentials>, identity: ServerIdentity) -> Self {
        NtlmAuthenticator {
            creds,
            identity,
            state: State::Start,
            #[cfg(test)]
            fixed_challenge: None,
        }
    }

    /// Processes one SESSION_SETUP security buffer. Accepts a bare NTLMSSP
    /// message or SPNEGO (a GSS-API framed or bare NegTokenInit, then
    /// NegTokenResp) and answers in the same framing. Any error ends the
    /// exchange: a new SESSION_SETUP needs a new authenticator.
    pub fn step(&mut self, security_buffer: &[u8]) -> Result<AuthStep, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Finished);
        let result = self.advance(state, security_buffer);
        if result.is_err() {
            self.state = State::Finished;
        }
        result
    }

    fn advance(&mut self, state: State, buf: &[u8]) -> Result<AuthStep, AuthError> {
        match state {
            State::Start => self.start(buf),
            State::AwaitNegotiate { framing } => {
                let token = match spnego::parse(buf)? {
                    SpnegoToken::Resp(r) => r.response_token.ok_or_else(|| {
                        AuthError::InvalidToken("NegTokenResp without an NTLMSSP token".into())
                    })?,
                    SpnegoToken::Init(_) => {
                        return Err(AuthError::InvalidToken(
                            "unexpected second NegTokenInit".into(),
                        ))
                    }
                };
                self.send_challenge(framing, token)
            }
            State::AwaitAuthenticate {
                framing,
                negotiate,
                challenge,
                server_challenge,
            } => self.finish(framing, &negotiate, &challenge, &server_challenge, buf),
            State::Finished => Err(AuthError::InvalidToken(
                "authentication exchange already finished".into(),
            )),
        }
    }

    fn start(&mut self, buf: &[u8]) -> Result<AuthStep, AuthError> {
        if !spnego::is_spnego(buf) {
            return self.send_challenge(Framing::Raw, buf);
        }
        let init = match spnego::parse(buf)? {
            SpnegoToken::Init(init) => init,
            SpnegoToken::Resp(_) => {
                return Err(AuthError::InvalidToken(
                    "NegTokenResp before NegTokenInit".into(),
                ))
            }
        };
        let position = init
            .mech_types
            .iter()
            .position(|oid| *oid == NTLMSSP_OID)
            .ok_or_else(|| AuthError::InvalidToken("client does not offer NTLMSSP".into()))?;
        let framing = Framing::Spnego {
            mech_types_der: init.mech_types_der.to_vec(),
            mic_required: position != 0,
        };
        match (position, init.mech_token) {
            // The optimistic token is for NTLMSSP: answer it directly.
            (0, Some(token)) => self.send_challenge(framing, token),
            // Otherwise select NTLMSSP and ask for its first token
            // (RFC 4178 5: request-mic when not the preferred mechanism).
            _ => {
                let state = if position != 0 {
                    NegState::RequestMic
                } else {
                    NegState::AcceptIncomplete
                };
                self.state = State::AwaitNegotiate { framing };
                Ok(AuthStep::Continue {
                    response: spnego::encode_resp(state, Some(NTLMSSP_OID), None, None),
                })
            }
        }
    }

    fn send_challenge(
        &mut self,
        framing: Framing,
        negotiate: &[u8],
    ) -> Result<AuthStep, AuthError> {
        let client_flags = ntlm::parse_negotiate(negotiate)?;
        let flags = ntlm::challenge_flags(client_flags);
        let mut server_challenge = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut server_challenge);
        #[cfg(test)]
        if let Some(c) = self.fixed_challenge {
            server_challenge = c;
        }
        let challenge = ntlm::build_challenge(
            flags,
            &server_challenge,
            &self.identity,
            ntlm::filetime_now(),
        );
        let response = match &framing {
            Framing::Raw => challenge.clone(),
            Framing::Spnego { mic_required, .. } => spnego::encode_resp(
                if *mic_required {
                    NegState::RequestMic
                } else {
                    NegState::AcceptIncomplete
                },
                Some(NTLMSSP_OID),
                Some(&challenge),
                None,
            ),
        };
        self.state = State::AwaitAuthenticate {
            framing,
            negotiate: negotiate.to_vec(),
            challenge,
            server_challenge,
        };
        Ok(AuthStep::Continue { response })
    }

    fn finish(
        &mut self,
        framing: Framing,
        negotiate: &[u8],
        challenge: &[u8],
        server_challenge: &[u8; 8],
        buf: &[u8],
    ) -> Result<AuthStep, AuthError> {
        let (authenticate, client_mic) = match &framing {
            Framing::Raw => (buf, None),
            Framing::Spnego { .. } => match spnego::parse(buf)? {
                SpnegoToken::Resp(r) => (
                    r.response_token.ok_or_else(|| {
                        AuthError::InvalidToken("NegTokenResp without an NTLMSSP token".into())
                    })?,
                    r.mech_list_mic,
                ),
                SpnegoToken::Init(_) => {
                    return Err(AuthError::InvalidToken(
                        "unexpected second NegTokenInit".into(),
                    ))
                }
            },
        };
        let a = ntlm::parse_authenticate(authenticate)?;
        let challenge_flags = ntlm::parse_challenge_flags(challenge);
        let outcome =
            self.authenticate(&a, negotiate, challenge, server_challenge, authenticate)?;

        let response = match framing {
            Framing::Raw => Vec::new(),
            Framing::Spnego {
                mech_types_der,
                mic_required,
            } => {
                // mechListMIC (RFC 4178 5, MS-SPNG 3.3.5.1): verify the
                // client's with the client-to-server keys, answer with ours.
                // Sessions without a shared key (guest, anonymous) cannot.
                let flags = a.flags & challenge_flags;
                let can_sign =
                    outcome.keyed && flags & ntlm::NEGOTIATE_EXTENDED_SESSIONSECURITY != 0;
                let mut server_mic = None;
                if can_sign {
                    if let Some(mic) = client_mic {
                        let mut c2s = ntlm::SessionSecurity::new(flags, &outcome.session_key, true);
                        let expected = c2s.mac(0, &mech_types_der);
                        if !bool::from(expected.ct_eq(mic)) {
                            return Err(AuthError::LogonFailure);
                        }
                    }
                    if client_mic.is_some() || mic_required {
                        let mut s2c =
                            ntlm::SessionSecurity::new(flags, &outcome.session_key, false);
                        server_mic = Some(s2c.mac(0, &mech_types_der));
                    }
                }
                spnego::encode_resp(
                    NegState::AcceptCompleted,
                    None,
                    None,
                    server_mic.as_ref().map(|m| &m[..]),
                )
            }
        };
        Ok(AuthStep::Done {
            response,
            session_key: outcome.session_key,
            user: outcome.user,
            guest: outcome.guest,
            anonymous: outcome.anonymous,
        })
    }

    /// Decides who the client is (MS-NLMP 3.3.5.2 server receiving
    /// AUTHENTICATE).
    fn authenticate(
        &self,
        a: &ntlm::Authenticate<'_>,
        negotiate: &[u8],
        challenge: &[u8],
        server_challenge: &[u8; 8],
        raw: &[u8],
    ) -> Result<Outcome, AuthError> {
        if ntlm::is_anonymous(a) {
            if !self.creds.allow_guest {
                return Err(AuthError::GuestNotAllowed);
            }
            return Ok(Outcome::unkeyed(String::new(), false, true));
        }
        // NTLMv1 (24-byte) responses are refused below like a wrong
        // password; anything longer must be a well-formed NTLMv2 response.
        let blob = if a.nt_response.len() > 24 {
            Some(ntlm::parse_ntlmv2_response(a.nt_response)?)
        } else {
            None
        };
        let Some((user, password)) = self.creds.lookup(&a.user) else {
            // Unknown account: guest if allowed (Samba "map to guest = bad
            // user"); a known account with a wrong password never is.
            if self.creds.allow_guest && !a.user.is_empty() {
                return Ok(Outcome::unkeyed(a.user.clone(), true, false));
            }
            return Err(AuthError::LogonFailure);
        };
        // The client computed NTOWFv2 with the domain it sent; some clients
        // send none (MS-NLMP 3.3.2 allows an empty UserDom).
        let mut domains = vec![a.domain.as_str()];
        if !a.domain.is_empty() {
            domains.push("");
        }
        let blob = blob.ok_or(AuthError::LogonFailure)?;
        let session_base_key = domains
            .into_iter()
            .find_map(|domain| {
                let key = ntlm::ntowfv2(password, &a.user, domain);
                ntlm::verify_ntlmv2(&key, server_challenge, a.nt_response)
            })
            .ok_or(AuthError::LogonFailure)?;
        let session_key =
            ntlm::exported_session_key(a.flags, &session_base_key, a.encrypted_session_key)?;
        if blob.mic_present && !ntlm::verify_mic(&session_key, negotiate, challenge, raw) {
            return Err(AuthError::LogonFailure);
        }
        Ok(Outcome {
            session_key,
            user: user.to_string(),
            guest: false,
            anonymous: false,
            keyed: true,
        })
    }
}

struct Outcome {
    session_key: [u8; 16],
    user: String,
    guest: bool,
    anonymous: bool,
    /// Whether `session_key` is actually shared with the client.
    keyed: bool,
}

impl Outcome {
    fn unkeyed(user: String, guest: bool, anonymous: bool) -> Self {
        Outcome {
            session_key: [0u8; 16],
            user,
            guest,
            anonymous,
            keyed: false,
        }
    }
}

#[cfg(test)]
mod tests;
