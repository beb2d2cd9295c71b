//! SPNEGO token framing (RFC 4178, RFC 2743 3.1, MS-SPNG).
//!
//! The server only negotiates NTLMSSP, so this module just has to find the
//! NTLMSSP token inside whatever the client sends and wrap replies the way
//! Windows and Samba do.

use super::der::{
    context, elements, expect_tlv, read_tlv, write_tlv, DerError, TAG_APPLICATION_0,
    TAG_INTEGER_ENUMERATED, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE,
};

/// DER content of OID 1.3.6.1.5.5.2 (SPNEGO).
pub(crate) const SPNEGO_OID: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x02];
/// DER content of OID 1.3.6.1.4.1.311.2.2.10 (NTLMSSP).
pub(crate) const NTLMSSP_OID: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0A];

/// negState values (RFC 4178 4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NegState {
    AcceptCompleted = 0,
    AcceptIncomplete = 1,
    RequestMic = 3,
}

/// A parsed NegTokenInit (RFC 4178 4.2.1).
#[derive(Debug, Clone)]
pub(crate) struct NegTokenInit<'a> {
    /// OIDs (DER content bytes) in the client's order of preference.
    pub mech_types: Vec<&'a [u8]>,
    /// The MechTypeList exactly as encoded by the client: mechListMIC is
    /// computed over these bytes.
    pub mech_types_der: &'a [u8],
    pub mech_token: Option<&'a [u8]>,
}

/// A parsed NegTokenResp (RFC 4178 4.2.2).
#[derive(Debug, Clone, Default)]
pub(crate) struct NegTokenResp<'a> {
    pub neg_state: Option<u8>,
    pub response_token: Option<&'a [u8]>,
    pub mech_list_mic: Option<&'a [u8]>,
}

#[derive(Debug, Clone)]
pub(crate) enum SpnegoToken<'a> {
    Init(NegTokenInit<'a>),
    Resp(NegTokenResp<'a>),
}

impl From<DerError> for String {
    fn from(e: DerError) -> String {
        format!("malformed SPNEGO token: {}", e.0)
    }
}

/// True when `buf` looks like SPNEGO rather than a bare NTLMSSP message.
pub(crate) fn is_spnego(buf: &[u8]) -> bool {
    matches!(
        buf.first(),
        Some(&TAG_APPLICATION_0) | Some(0xA0) | Some(0xA1)
    )
}

/// Parses an InitialContextToken (GSS-API framed NegTokenInit), a bare
/// NegTokenInit or a NegTokenResp.
pub(crate) fn parse(buf: &[u8]) -> Result<SpnegoToken<'_>, String> {
    let (outer, _) = read_tlv(buf)?;
    match outer.tag {
        TAG_APPLICATION_0 => {
            // RFC 2743 3.1: thisMech OID followed by the inner token.
            let (oid, inner) = expect_tlv(outer.content, TAG_OID)?;
            if oid.content != SPNEGO_OID {
                return Err("GSS-API token for a mechanism other than SPNEGO".into());
            }
            let (init, _) = expect_tlv(inner, context(0))?;
            parse_init(init.content).map(SpnegoToken::Init)
        }
        t if t == context(0) => parse_init(outer.content).map(SpnegoToken::Init),
        t if t == context(1) => parse_resp(outer.content).map(SpnegoToken::Resp),
        _ => Err("not a SPNEGO token".into()),
    }
}

fn parse_init(content: &[u8]) -> Result<NegTokenInit<'_>, String> {
    let (seq, _) = expect_tlv(content, TAG_SEQUENCE)?;
    let mut token = NegTokenInit {
        mech_types: Vec::new(),
        mech_types_der: &[],
        mech_token: None,
    };
    for field in elements(seq.content)? {
        match field.tag {
            t if t == context(0) => {
                let (list, _) = expect_tlv(field.content, TAG_SEQUENCE)?;
                token.mech_types_der = list.raw;
                for oid in elements(list.content)? {
                    if oid.tag != TAG_OID {
                        return Err("mechTypes entry is not an OID".into());
                    }
                    token.mech_types.push(oid.content);
                }
            }
            t if t == context(2) => {
                let (tok, _) = expect_tlv(field.content, TAG_OCTET_STRING)?;
                token.mech_token = Some(tok.content);
            }
            // [1] reqFlags, [3] mechListMIC (RFC 4178 says ignore it here),
            // and [3] negHints in the MS-SPNG server-initiated variant.
            _ => {}
        }
    }
    if token.mech_types.is_empty() {
        return Err("NegTokenInit without mechTypes".into());
    }
    Ok(token)
}

fn parse_resp(content: &[u8]) -> Result<NegTokenResp<'_>, String> {
    let (seq, _) = expect_tlv(content, TAG_SEQUENCE)?;
    let mut token = NegTokenResp::default();
    for field in elements(seq.content)? {
        match field.tag {
            t if t == context(0) => {
                let (e, _) = expect_tlv(field.content, TAG_INTEGER_ENUMERATED)?;
                token.neg_state = e.content.first().copied();
            }
            t if t == context(2) => {
                let (tok, _) = expect_tlv(field.content, TAG_OCTET_STRING)?;
                token.response_token = Some(tok.content);
            }
            t if t == context(3) => {
                let (mic, _) = expect_tlv(field.content, TAG_OCTET_STRING)?;
                token.mech_list_mic = Some(mic.content);
            }
            // [1] supportedMech: only meaningful from the acceptor.
            _ => {}
        }
    }
    Ok(token)
}

/// Encodes a NegTokenResp (the acceptor's answer in every round).
pub(crate) fn encode_resp(
    state: NegState,
    supported_mech: Option<&[u8]>,
    response_token: Option<&[u8]>,
    mech_list_mic: Option<&[u8]>,
) -> Vec<u8> {
    let mut fields = write_tlv(
        context(0),
        &write_tlv(TAG_INTEGER_ENUMERATED, &[state as u8]),
    );
    if let Some(oid) = supported_mech {
        fields.extend(write_tlv(context(1), &write_tlv(TAG_OID, oid)));
    }
    if let Some(tok) = response_token {
        fields.extend(write_tlv(context(2), &write_tlv(TAG_OCTET_STRING, tok)));
    }
    if let Some(mic) = mech_list_mic {
        fields.extend(write_tlv(context(3), &write_tlv(TAG_OCTET_STRING, mic)));
    }
    write_tlv(context(1), &write_tlv(TAG_SEQUENCE, &fields))
}

/// Encodes the GSS-API framed NegTokenInit a server puts in its NEGOTIATE
/// response (MS-SMB2 3.3.5.3.1, MS-SPNG 3.2.5.2), listing only NTLMSSP.
pub(crate) fn encode_server_init() -> Vec<u8> {
    let mech_list = write_tlv(TAG_SEQUENCE, &write_tlv(TAG_OID, NTLMSSP_OID));
    let init = write_tlv(TAG_SEQUENCE, &write_tlv(context(0), &mech_list));
    let mut inner = write_tlv(TAG_OID, SPNEGO_OID);
    inner.extend(write_tlv(context(0), &init));
    write_tlv(TAG_APPLICATION_0, &inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_init_parses_back() {
        let blob = encode_server_init();
        assert_eq!(blob[0], 0x60);
        match parse(&blob).unwrap() {
            SpnegoToken::Init(init) => {
                assert_eq!(init.mech_types, vec![NTLMSSP_OID]);
                assert!(init.mech_token.is_none());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn resp_round_trip() {
        let enc = encode_resp(
            NegState::AcceptIncomplete,
            Some(NTLMSSP_OID),
            Some(b"challenge"),
            Some(b"mic"),
        );
        match parse(&enc).unwrap() {
            SpnegoToken::Resp(r) => {
                assert_eq!(r.neg_state, Some(1));
                assert_eq!(r.response_token, Some(&b"challenge"[..]));
                assert_eq!(r.mech_list_mic, Some(&b"mic"[..]));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn samba_client_init_token() {
        // smbclient's first SESSION_SETUP security buffer (GSS-API framed
        // NegTokenInit listing NTLMSSP with an optimistic NEGOTIATE token), as
        // captured in Microsoft's SMB 3.1.1 preauth test vector.
        let hex = "604806062B0601050502A03E303CA00E300C060A2B06010401823702020AA22A\
                   04284E544C4D5353500001000000978208E200000000000000000000000000000000\
                   060380250000000F";
        let buf: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        match parse(&buf).unwrap() {
            SpnegoToken::Init(init) => {
                assert_eq!(init.mech_types, vec![NTLMSSP_OID]);
                assert_eq!(init.mech_types_der, &buf[16..30]);
                let tok = init.mech_token.unwrap();
                assert_eq!(&tok[..8], b"NTLMSSP\0");
                assert_eq!(tok.len(), 40);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[0x60, 0x03, 0x06, 0x01, 0x00]).is_err());
        assert!(parse(&[0xA0, 0x02, 0x30, 0x00]).is_err()); // no mechTypes
        assert!(parse(&[0xA1, 0x05, 0x30, 0x03, 0xA2, 0x01]).is_err());
        assert!(parse(b"NTLMSSP\0").is_err());
    }
}
