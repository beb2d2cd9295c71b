//! Exchanges driven by a minimal NTLMv2 client written from MS-NLMP 3.1.5,
//! plus the MS-NLMP 4.2.4 AUTHENTICATE message as a known answer.

use super::ntlm::{self, *};
use super::spnego::{self, NegState, SpnegoToken, NTLMSSP_OID};
use super::*;

fn creds(allow_guest: bool) -> Arc<Credentials> {
    let mut users = HashMap::new();
    users.insert("alice".to_string(), "Secret123".to_string());
    users.insert("User".to_string(), "Password".to_string());
    Arc::new(Credentials { users, allow_guest })
}

/// NTLMSSP_NEGOTIATE_ANONYMOUS (MS-NLMP 2.2.2.5); the server does not rely on it.
const NEGOTIATE_ANONYMOUS: u32 = 0x0000_0800;

const CLIENT_FLAGS: u32 = NEGOTIATE_UNICODE
    | REQUEST_TARGET
    | NEGOTIATE_SIGN
    | NEGOTIATE_SEAL
    | NEGOTIATE_NTLM
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_VERSION
    | NEGOTIATE_128
    | NEGOTIATE_KEY_EXCH
    | NEGOTIATE_56;

fn negotiate_msg(flags: u32) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&MSG_NEGOTIATE.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&[0u8; 16]); // empty domain and workstation fields
    m.extend_from_slice(&[6, 1, 0xB1, 0x1D, 0, 0, 0, 0x0F]);
    m
}

fn u16_at(b: &[u8], o: usize) -> usize {
    usize::from(u16::from_le_bytes([b[o], b[o + 1]]))
}

fn u32_at(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<md5::Md5> as Mac>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// What the test client knows after building AUTHENTICATE.
struct ClientResult {
    message: Vec<u8>,
    exported_session_key: [u8; 16],
    flags: u32,
}

struct ClientOpts<'a> {
    user: &'a str,
    domain: &'a str,
    password: &'a str,
    with_mic: bool,
    corrupt_mic: bool,
}

impl Default for ClientOpts<'_> {
    fn default() -> Self {
        ClientOpts {
            user: "alice",
            domain: "WORKGROUP",
            password: "Secret123",
            with_mic: true,
            corrupt_mic: false,
        }
    }
}

/// Builds an NTLMv2 AUTHENTICATE for `challenge` (MS-NLMP 3.1.5.1.2).
fn authenticate_msg(negotiate: &[u8], challenge: &[u8], o: &ClientOpts<'_>) -> ClientResult {
    assert_eq!(&challenge[..8], SIGNATURE);
    let flags = u32_at(challenge, 20) as u32;
    let server_challenge: [u8; 8] = challenge[24..32].try_into().unwrap();
    let ti_len = u16_at(challenge, 40);
    let ti_off = u32_at(challenge, 44);
    let target_info = &challenge[ti_off..ti_off + ti_len];
    // Copy the server's AV pairs minus EOL, add MsvAvFlags (MIC present),
    // then EOL.
    let mut av = target_info[..target_info.len() - 4].to_vec();
    if o.with_mic {
        av.extend_from_slice(&[6, 0, 4, 0, 2, 0, 0, 0]);
    }
    av.extend_from_slice(&[0, 0, 0, 0]);
    let mut temp = vec![1u8, 1, 0, 0, 0, 0, 0, 0];
    temp.extend_from_slice(&0x01d9_0000_1234_5678u64.to_le_bytes());
    temp.extend_from_slice(&[0xAB; 8]);
    temp.extend_from_slice(&[0; 4]);
    temp.extend_from_slice(&av);
    temp.extend_from_slice(&[0; 4]);
    let key = ntowfv2(o.password, o.user, o.domain);
    let proof = hmac_md5(&key, &[&server_challenge, &temp]);
    let base = hmac_md5(&key, &[&proof]);
    let mut nt = proof.to_vec();
    nt.extend_from_slice(&temp);
    let lm = [0u8; 24];
    let random_key = [0x3Cu8; 16];
    let mut enc_key = random_key;
    ntlm::rc4(&base, &mut enc_key);

    let domain = utf16le(o.domain);
    let user = utf16le(o.user);
    let ws = utf16le("TESTHOST");
    let payload_start = 88;
    let mut payload = Vec::new();
    let mut fields = Vec::new();
    for part in [&lm[..], &nt, &domain, &user, &ws, &enc_key] {
        fields.push((part.len(), payload_start + payload.len()));
        payload.extend_from_slice(part);
    }
    let mut m = Vec::new();
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&MSG_AUTHENTICATE.to_le_bytes());
    for (len, off) in &fields {
        m.extend_from_slice(&(*len as u16).to_le_bytes());
        m.extend_from_slice(&(*len as u16).to_le_bytes());
        m.extend_from_slice(&(*off as u32).to_le_bytes());
    }
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&[6, 1, 0xB1, 0x1D, 0, 0, 0, 0x0F]);
    m.extend_from_slice(&[0u8; 16]); // MIC placeholder
    assert_eq!(m.len(), payload_start);
    m.extend_from_slice(&payload);
    if o.with_mic {
        let mut mic = hmac_md5(&random_key, &[negotiate, challenge, &m]);
        if o.corrupt_mic {
            mic[0] ^= 1;
        }
        m[72..88].copy_from_slice(&mic);
    }
    ClientResult {
        message: m,
        exported_session_key: random_key,
        flags,
    }
}

fn continue_response(step: Result<AuthStep, AuthError>) -> Vec<u8> {
    match step {
        Ok(AuthStep::Continue { response }) => response,
        other => panic!("expected Continue, got {other:?}"),
    }
}

#[test]
fn raw_ntlmssp_exchange() {
    let mut auth = NtlmAuthenticator::new(creds(false));
    let neg = negotiate_msg(CLIENT_FLAGS);
    let challenge = continue_response(auth.step(&neg));
    assert_eq!(message_type(&challenge), Some(MSG_CHALLENGE));
    let client = authenticate_msg(&neg, &challenge, &ClientOpts::default());
    match auth.step(&client.message).unwrap() {
        AuthStep::Done {
            response,
            session_key,
            user,
            guest,
            anonymous,
        } => {
            assert!(response.is_empty());
            assert_eq!(session_key, client.exported_session_key);
            assert_eq!(user, "alice");
            assert!(!guest && !anonymous);
        }
        other => panic!("{other:?}"),
    }
    // The exchange is over.
    assert!(matches!(
        auth.step(&client.message),
        Err(AuthError::InvalidToken(_))
    ));
}

#[test]
fn spec_authenticate_message_known_answer() {
    // MS-NLMP 4.2.4.3: with the server challenge fixed to the spec's, the
    // spec's AUTHENTICATE message yields RandomSessionKey 0x55 * 16.
    let mut auth = NtlmAuthenticator::new(creds(false));
    auth.fixed_challenge = Some([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
    continue_response(auth.step(&negotiate_msg(0xe288_8235)));
    match auth.step(&ntlm::tests::spec_authenticate()).unwrap() {
        AuthStep::Done {
            session_key, user, ..
        } => {
            assert_eq!(session_key, [0x55u8; 16]);
            assert_eq!(user, "User");
        }
        other => panic!("{other:?}"),
    }
}

fn spnego_init(mech_types: &[&[u8]], token: Option<&[u8]>) -> Vec<u8> {
    use super::der::*;
    let mut oids = Vec::new();
    for m in mech_types {
        oids.extend(write_tlv(TAG_OID, m));
    }
    let mut fields = write_tlv(context(0), &write_tlv(TAG_SEQUENCE, &oids));
    if let Some(t) = token {
        fields.extend(write_tlv(context(2), &write_tlv(TAG_OCTET_STRING, t)));
    }
    let init = write_tlv(context(0), &write_tlv(TAG_SEQUENCE, &fields));
    let mut inner = write_tlv(TAG_OID, spnego::SPNEGO_OID);
    inner.extend(init);
    write_tlv(TAG_APPLICATION_0, &inner)
}

fn mech_types_der(mech_types: &[&[u8]]) -> Vec<u8> {
    use super::der::*;
    let mut oids = Vec::new();
    for m in mech_types {
        oids.extend(write_tlv(TAG_OID, m));
    }
    write_tlv(TAG_SEQUENCE, &oids)
}

fn resp_fields(buf: &[u8]) -> (Option<u8>, Option<Vec<u8>>, Option<Vec<u8>>) {
    match spnego::parse(buf).unwrap() {
        SpnegoToken::Resp(r) => (
            r.neg_state,
            r.response_token.map(|t| t.to_vec()),
            r.mech_list_mic.map(|t| t.to_vec()),
        ),
        other => panic!("{other:?}"),
    }
}

const KRB5_OID: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x12, 0x01, 0x02, 0x02];

/// Runs a SPNEGO exchange; returns the final Done step and the client's
/// view (exported key, flags) for MIC checks.
fn spnego_exchange(
    auth: &mut NtlmAuthenticator,
    mechs: &[&[u8]],
    opts: &ClientOpts<'_>,
    send_mech_list_mic: bool,
) -> (Result<AuthStep, AuthError>, ClientResult) {
    let neg = negotiate_msg(CLIENT_FLAGS);
    let ntlm_first = mechs[0] == NTLMSSP_OID;
    let first = if ntlm_first {
        spnego_init(mechs, Some(&neg))
    } else {
        // An optimistic token for the other mechanism, ignored by us.
        spnego_init(mechs, Some(b"kerberos AP-REQ"))
    };
    let mut reply = continue_response(auth.step(&first));
    if !ntlm_first {
        let (state, token, _) = resp_fields(&reply);
        assert_eq!(state, Some(NegState::RequestMic as u8));
        assert!(token.is_none());
        let resp = spnego::encode_resp(NegState::AcceptIncomplete, None, Some(&neg), None);
        reply = continue_response(auth.step(&resp));
    }
    let (state, challenge, mic) = resp_fields(&reply);
    let expected = if ntlm_first {
        NegState::AcceptIncomplete
    } else {
        NegState::RequestMic
    };
    assert_eq!(state, Some(expected as u8));
    assert!(mic.is_none());
    let challenge = challenge.expect("challenge token");
    let client = authenticate_msg(&neg, &challenge, opts);
    let mic = send_mech_list_mic.then(|| {
        let mut c2s = SessionSecurity::new(client.flags, &client.exported_session_key, true);
        c2s.mac(0, &mech_types_der(mechs))
    });
    let resp = spnego::encode_resp(
        NegState::AcceptIncomplete,
        None,
        Some(&client.message),
        mic.as_ref().map(|m| &m[..]),
    );
    (auth.step(&resp), client)
}

#[test]
fn spnego_exchange_with_mech_list_mic() {
    let mechs: &[&[u8]] = &[NTLMSSP_OID];
    let mut auth = NtlmAuthenticator::new(creds(false));
    let (step, client) = spnego_exchange(&mut auth, mechs, &ClientOpts::default(), true);
    match step.unwrap() {
        AuthStep::Done {
            response,
            session_key,
            user,
            ..
        } => {
            assert_eq!(session_key, client.exported_session_key);
            assert_eq!(user, "alice");
            let (state, token, mic) = resp_fields(&response);
            assert_eq!(state, Some(NegState::AcceptCompleted as u8));
            assert!(token.is_none());
            // The server's mechListMIC verifies with the server-to-client keys.
            let mut s2c = SessionSecurity::new(client.flags, &client.exported_session_key, false);
            assert_eq!(mic.unwrap(), s2c.mac(0, &mech_types_der(mechs)).to_vec());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn spnego_without_client_mic_gets_no_server_mic() {
    let mut auth = NtlmAuthenticator::new(creds(false));
    let (step, _) = spnego_exchange(&mut auth, &[NTLMSSP_OID], &ClientOpts::default(), false);
    match step.unwrap() {
        AuthStep::Done { response, .. } => {
            let (state, _, mic) = resp_fields(&response);
            assert_eq!(state, Some(0));
            assert!(mic.is_none());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn spnego_ntlm_not_preferred_requests_mic() {
    let mechs: &[&[u8]] = &[KRB5_OID, NTLMSSP_OID];
    let mut auth = NtlmAuthenticator::new(creds(false));
    let (step, client) = spnego_exchange(&mut auth, mechs, &ClientOpts::default(), true);
    match step.unwrap() {
        AuthStep::Done { response, .. } => {
            let (_, _, mic) = resp_fields(&response);
            let mut s2c = SessionSecurity::new(client.flags, &client.exported_session_key, false);
            assert_eq!(mic.unwrap(), s2c.mac(0, &mech_types_der(mechs)).to_vec());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_mech_list_mic_is_refused() {
    let mut auth = NtlmAuthenticator::new(creds(false));
    let neg = negotiate_msg(CLIENT_FLAGS);
    let reply = continue_response(auth.step(&spnego_init(&[NTLMSSP_OID], Some(&neg))));
    let (_, challenge, _) = resp_fields(&reply);
    let client = authenticate_msg(&neg, &challenge.unwrap(), &ClientOpts::default());
    let resp = spnego::encode_resp(
        NegState::AcceptIncomplete,
        None,
        Some(&client.message),
        Some(&[1u8; 16]),
    );
    assert_eq!(auth.step(&resp), Err(AuthError::LogonFailure));
}

fn raw_exchange(allow_guest: bool, opts: &ClientOpts<'_>) -> Result<AuthStep, AuthError> {
    let mut auth = NtlmAuthenticator::new(creds(allow_guest));
    let neg = negotiate_msg(CLIENT_FLAGS);
    let challenge = continue_response(auth.step(&neg));
    let client = authenticate_msg(&neg, &challenge, opts);
    auth.step(&client.message)
}

#[test]
fn wrong_password_fails_even_with_guest() {
    for allow_guest in [false, true] {
        let opts = ClientOpts {
            password: "secret123",
            ..Default::default()
        };
        assert_eq!(
            raw_exchange(allow_guest, &opts),
            Err(AuthError::LogonFailure)
        );
    }
}

#[test]
fn user_name_is_case_insensitive_and_domain_may_be_empty() {
    for (user, domain) in [
        ("ALICE", "WORKGROUP"),
        ("Alice", ""),
        ("alice", "Some.Domain"),
    ] {
        let opts = ClientOpts {
            user,
            domain,
            ..Default::default()
        };
        match raw_exchange(false, &opts).unwrap() {
            AuthStep::Done { user, guest, .. } => {
                assert_eq!(user, "alice");
                assert!(!guest);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn corrupted_mic_fails() {
    let opts = ClientOpts {
        corrupt_mic: true,
        ..Default::default()
    };
    assert_eq!(raw_exchange(false, &opts), Err(AuthError::LogonFailure));
    // Without a MIC announced the same credentials pass.
    let opts = ClientOpts {
        with_mic: false,
        ..Default::default()
    };
    assert!(matches!(
        raw_exchange(false, &opts),
        Ok(AuthStep::Done { .. })
    ));
}

#[test]
fn unknown_user_is_guest_only_when_allowed() {
    let opts = ClientOpts {
        user: "mallory",
        password: "whatever",
        ..Default::default()
    };
    assert_eq!(raw_exchange(false, &opts), Err(AuthError::LogonFailure));
    match raw_exchange(true, &opts).unwrap() {
        AuthStep::Done {
            session_key,
            user,
            guest,
            anonymous,
            ..
        } => {
            assert!(guest && !anonymous);
            assert_eq!(user, "mallory");
            assert_eq!(session_key, [0u8; 16]);
        }
        other => panic!("{other:?}"),
    }
}

fn anonymous_authenticate(lm: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&MSG_AUTHENTICATE.to_le_bytes());
    let payload_start = 72u32;
    // LM response field, then five empty fields.
    m.extend_from_slice(&(lm.len() as u16).to_le_bytes());
    m.extend_from_slice(&(lm.len() as u16).to_le_bytes());
    m.extend_from_slice(&payload_start.to_le_bytes());
    for _ in 0..5 {
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&payload_start.to_le_bytes());
    }
    m.extend_from_slice(&(NEGOTIATE_UNICODE | NEGOTIATE_ANONYMOUS | NEGOTIATE_NTLM).to_le_bytes());
    m.extend_from_slice(&[6, 1, 0xB1, 0x1D, 0, 0, 0, 0x0F]);
    m.extend_from_slice(lm);
    m
}

#[test]
fn anonymous_only_when_allowed() {
    for lm in [&[][..], &[0u8][..]] {
        for allow_guest in [false, true] {
            let mut auth = NtlmAuthenticator::new(creds(allow_guest));
            let neg = negotiate_msg(NEGOTIATE_UNICODE | NEGOTIATE_NTLM | NEGOTIATE_ANONYMOUS);
            let init = spnego_init(&[NTLMSSP_OID], Some(&neg));
            continue_response(auth.step(&init));
            let msg = anonymous_authenticate(lm);
            let resp = spnego::encode_resp(NegState::AcceptIncomplete, None, Some(&msg), None);
            let step = auth.step(&resp);
            if !allow_guest {
                assert_eq!(step, Err(AuthError::GuestNotAllowed));
                continue;
            }
            match step.unwrap() {
                AuthStep::Done {
                    response,
                    session_key,
                    user,
                    guest,
                    anonymous,
                } => {
                    assert!(anonymous && !guest);
                    assert!(user.is_empty());
                    assert_eq!(session_key, [0u8; 16]);
                    let (state, _, mic) = resp_fields(&response);
                    assert_eq!(state, Some(0));
                    assert!(mic.is_none());
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn empty_user_with_response_is_not_anonymous() {
    // An empty user name with an NT response is not a null session: it is an
    // unknown user (so guest at most).
    let opts = ClientOpts {
        user: "",
        ..Default::default()
    };
    assert_eq!(raw_exchange(false, &opts), Err(AuthError::LogonFailure));
    assert_eq!(raw_exchange(true, &opts), Err(AuthError::LogonFailure));
}

#[test]
fn out_of_order_and_garbage_tokens() {
    let mut auth = NtlmAuthenticator::new(creds(true));
    assert!(matches!(auth.step(&[]), Err(AuthError::InvalidToken(_))));
    let mut auth = NtlmAuthenticator::new(creds(true));
    assert!(matches!(
        auth.step(b"NTLMSSP\0\x03\0\0\0"),
        Err(AuthError::InvalidToken(_))
    ));
    let mut auth = NtlmAuthenticator::new(creds(true));
    assert!(matches!(
        auth.step(&spnego::encode_resp(
            NegState::AcceptIncomplete,
            None,
            Some(b"x"),
            None
        )),
        Err(AuthError::InvalidToken(_))
    ));
    // NegTokenInit without NTLMSSP.
    let mut auth = NtlmAuthenticator::new(creds(true));
    assert!(matches!(
        auth.step(&spnego_init(&[KRB5_OID], Some(b"x"))),
        Err(AuthError::InvalidToken(_))
    ));
    // A failed step ends the exchange.
    let mut auth = NtlmAuthenticator::new(creds(true));
    assert!(auth.step(b"garbage").is_err());
    assert!(matches!(
        auth.step(&negotiate_msg(CLIENT_FLAGS)),
        Err(AuthError::InvalidToken(_))
    ));
    // Every truncation of a valid AUTHENTICATE fails cleanly.
    let neg = negotiate_msg(CLIENT_FLAGS);
    let mut probe = NtlmAuthenticator::new(creds(false));
    let challenge = continue_response(probe.step(&neg));
    let client = authenticate_msg(&neg, &challenge, &ClientOpts::default());
    for cut in 0..client.message.len() {
        let mut auth = NtlmAuthenticator::new(creds(true));
        let challenge = continue_response(auth.step(&neg));
        let _ = challenge;
        assert!(auth.step(&client.message[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn negotiate_blob_is_spnego_with_ntlmssp() {
    let blob = negotiate_security_blob();
    match spnego::parse(&blob).unwrap() {
        SpnegoToken::Init(init) => assert_eq!(init.mech_types, vec![NTLMSSP_OID]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn credentials_debug_hides_passwords() {
    let s = format!("{:?}", creds(false));
    assert!(s.contains("alice"));
    assert!(!s.contains("Secret123"));
}

/// Random corruption of every token of valid exchanges must give an error
/// or a well-formed answer, never a panic (the input comes from the network).
#[test]
fn mutated_tokens_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1EA5EF5);
    let neg = negotiate_msg(CLIENT_FLAGS);
    let mechs: &[&[u8]] = &[NTLMSSP_OID];
    for round in 0..3000 {
        let mut auth = NtlmAuthenticator::new(creds(round % 2 == 0));
        let mut first = spnego_init(mechs, Some(&neg));
        let target = rng.gen_range(0..3);
        let mutate = |buf: &mut Vec<u8>, rng: &mut rand::rngs::StdRng| {
            for _ in 0..rng.gen_range(1..4) {
                match rng.gen_range(0..3) {
                    0 if !buf.is_empty() => {
                        let i = rng.gen_range(0..buf.len());
                        buf[i] = rng.gen();
                    }
                    1 if !buf.is_empty() => {
                        let n = rng.gen_range(0..buf.len());
                        buf.truncate(n);
                    }
                    _ => buf.push(rng.gen()),
                }
            }
        };
        if target == 0 {
            mutate(&mut first, &mut rng);
        }
        let Ok(AuthStep::Continue { response }) = auth.step(&first) else {
            continue;
        };
        let Ok(SpnegoToken::Resp(r)) = spnego::parse(&response) else {
            panic!("server produced an unparsable reply");
        };
        let Some(challenge) = r.response_token else {
            continue;
        };
        let mut challenge = challenge.to_vec();
        if target == 1 {
            // A corrupted CHALLENGE seen by the client: the AUTHENTICATE it
            // builds from it must still be handled cleanly.
            let i = rng.gen_range(24..challenge.len());
            challenge[i] ^= 0xFF;
        }
        if challenge.len() < 48 || u32_at(&challenge, 44) + u16_at(&challenge, 40) > challenge.len()
        {
            continue;
        }
        let client = authenticate_msg(&neg, &challenge, &ClientOpts::default());
        let mut msg = client.message;
        if target == 2 {
            mutate(&mut msg, &mut rng);
        }
        let resp = spnego::encode_resp(NegState::AcceptIncomplete, None, Some(&msg), None);
        let _ = auth.step(&resp);
    }
}

#[test]
fn malformed_ntlmv2_blob_is_invalid_token_not_logon_failure() {
    // Samba answers STATUS_INVALID_PARAMETER here (its bug 14932,
    // smbtorture smb2.session.ntlmssp_bug14932), whatever the password.
    for password in ["Secret123", "wrong"] {
        let mut auth = NtlmAuthenticator::new(creds(false));
        let neg = negotiate_msg(CLIENT_FLAGS);
        let challenge = continue_response(auth.step(&neg));
        let opts = ClientOpts {
            password,
            with_mic: false,
            ..Default::default()
        };
        let client = authenticate_msg(&neg, &challenge, &opts);
        let mut m = client.message;
        // Point the NT response length at a cut inside the AV pairs.
        let nt_len = u16_at(&m, 20);
        let cut = (nt_len - 30) as u16;
        m[20..22].copy_from_slice(&cut.to_le_bytes());
        m[22..24].copy_from_slice(&cut.to_le_bytes());
        assert!(
            matches!(auth.step(&m), Err(AuthError::InvalidToken(_))),
            "{password}"
        );
    }
}
