//! Just enough DER (ITU-T X.690) to read and write SPNEGO tokens.
//!
//! SPNEGO (RFC 4178) is the only ASN.1 this server speaks and it uses a
//! handful of definite-length constructs, so a strict tag-length-value
//! reader keeps the dependency surface small. Indefinite lengths and
//! multi-byte tags are refused: no SPNEGO peer sends them.

/// One decoded tag-length-value element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    /// The whole element, tag and length included (for MIC computation,
    /// which covers the DER bytes exactly as the peer sent them).
    pub raw: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DerError(pub &'static str);

/// Reads one element from the front of `input`, returning it and the rest.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (&tag, after_tag) = input.split_first().ok_or(DerError("empty element"))?;
    if tag & 0x1F == 0x1F {
        return Err(DerError("multi-byte tags are not used by SPNEGO"));
    }
    let (&first, mut rest) = after_tag.split_first().ok_or(DerError("missing length"))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 {
            return Err(DerError("indefinite length"));
        }
        if n > 4 || rest.len() < n {
            return Err(DerError("bad long-form length"));
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return Err(DerError("element longer than its container"));
    }
    let header_len = input.len() - rest.len();
    let tlv = Tlv {
        tag,
        content: &rest[..len],
        raw: &input[..header_len + len],
    };
    Ok((tlv, &rest[len..]))
}

/// Reads one element that must carry `tag`.
pub(crate) fn expect_tlv(input: &[u8], tag: u8) -> Result<(Tlv<'_>, &[u8]), DerError> {
    let (tlv, rest) = read_tlv(input)?;
    if tlv.tag != tag {
        return Err(DerError("unexpected tag"));
    }
    Ok((tlv, rest))
}

/// Iterates over the consecutive elements of a constructed value.
pub(crate) fn elements(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, DerError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tlv, rest) = read_tlv(content)?;
        out.push(tlv);
        content = rest;
    }
    Ok(out)
}

/// Encodes one element with a minimal definite length.
pub(crate) fn write_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

pub(crate) const TAG_INTEGER_ENUMERATED: u8 = 0x0A;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_APPLICATION_0: u8 = 0x60;

/// Context-specific constructed tag `[n]`.
pub(crate) const fn context(n: u8) -> u8 {
    0xA0 | n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![0x5Au8; len];
            let enc = write_tlv(TAG_OCTET_STRING, &content);
            let (tlv, rest) = read_tlv(&enc).unwrap();
            assert_eq!(tlv.tag, TAG_OCTET_STRING);
            assert_eq!(tlv.content, &content[..]);
            assert_eq!(tlv.raw, &enc[..]);
            assert!(rest.is_empty());
        }
        assert_eq!(write_tlv(0x04, &[0u8; 128])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(write_tlv(0x04, &[0u8; 256])[..4], [0x04, 0x82, 0x01, 0x00]);
    }

    #[test]
    fn malformed_input_is_refused() {
        assert!(read_tlv(&[]).is_err());
        assert!(read_tlv(&[0x04]).is_err());
        assert!(read_tlv(&[0x04, 0x05, 1, 2]).is_err());
        assert!(read_tlv(&[0x04, 0x80, 0, 0]).is_err());
        assert!(read_tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(read_tlv(&[0x04, 0x82, 0x01]).is_err());
        assert!(read_tlv(&[0x1F, 0x01, 0x00]).is_err());
        assert!(expect_tlv(&[0x04, 0x00], 0x30).is_err());
    }
}
