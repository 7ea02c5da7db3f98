//! SEC1 EC private keys (`BEGIN EC PRIVATE KEY`, what `openssl ecparam
//! -genkey` writes) rewritten as PKCS#8, the form the crypto backends read:
//! what `openssl pkcs8 -topk8 -nocrypt` does, in a few lines of DER.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The `id-ecPublicKey` algorithm (1.2.840.10045.2.1).
const EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
/// `[0]` (the named curve) and `[1]` (the public key) of an `ECPrivateKey`.
const PARAMETERS: u8 = 0xA0;
const PUBLIC_KEY: u8 = 0xA1;

/// `pem` as a PKCS#8 PEM when it is a SEC1 EC private key naming its curve;
/// `None` otherwise (another PEM type, a malformed key, no curve).
pub(crate) fn to_pkcs8(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body = text
        .split("-----BEGIN EC PRIVATE KEY-----")
        .nth(1)?
        .split("-----END EC PRIVATE KEY-----")
        .next()?;
    let base64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(base64).ok()?;
    let pkcs8 = rewrap(&der)?;
    let encoded = STANDARD.encode(pkcs8);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    Some(
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
        .into_bytes(),
    )
}

/// `ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING,
/// [0] namedCurve OPTIONAL, [1] publicKey OPTIONAL }` as a PKCS#8
/// `PrivateKeyInfo` whose algorithm names the curve (the inner key keeps its
/// public key, not the curve, as PKCS#8 keys do).
fn rewrap(der: &[u8]) -> Option<Vec<u8>> {
    let (fields, rest) = read(der, SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (version, fields) = read(fields, INTEGER)?;
    let (secret, mut fields) = read(fields, OCTET_STRING)?;
    if version != [1] {
        return None;
    }
    let (mut curve, mut public) = (None, None);
    while !fields.is_empty() {
        let (&tag, _) = fields.split_first()?;
        let (content, rest) = read(fields, tag)?;
        match tag {
            PARAMETERS => {
                let (oid, after) = read(content, OID)?;
                if !after.is_empty() {
                    return None;
                }
                curve = Some(oid);
            }
            PUBLIC_KEY => public = Some(content),
            _ => return None,
        }
        fields = rest;
    }
    let mut inner = [encode(INTEGER, &[1]), encode(OCTET_STRING, secret)].concat();
    if let Some(public) = public {
        inner.extend(encode(PUBLIC_KEY, public));
    }
    let algorithm = [encode(OID, EC_PUBLIC_KEY), encode(OID, curve?)].concat();
    let info = [
        encode(INTEGER, &[0]),
        encode(SEQUENCE, &algorithm),
        encode(OCTET_STRING, &encode(SEQUENCE, &inner)),
    ]
    .concat();
    Some(encode(SEQUENCE, &info))
}

/// The content of the DER element at the start of `der`, which must have
/// tag `tag`, and what follows it.
fn read(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = der.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = match len {
        0..=0x7F => (usize::from(len), rest),
        0x81 => (usize::from(*rest.first()?), &rest[1..]),
        0x82 => (
            usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?])),
            rest.get(2..)?,
        ),
        _ => return None,
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// A DER element: `tag`, the length, `content`.
fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend([0x81, len as u8]),
        _ => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl ecparam -name prime256v1 -genkey -noout` and the same key
    /// through `openssl pkcs8 -topk8 -nocrypt`.
    const SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIJiIwBAM5EHhvyQQ8PsA4eArU7jcQrMcYPJFzM6XvUd0oAoGCCqGSM49
AwEHoUQDQgAEG5eXKxhvADNoaqHNecboDYfICqVv4rHKkzN4GtZhvrXCIri/GUyA
G9PbhBRH+U1I7rr2DIsRvo1VMS5vkHnjDg==
-----END EC PRIVATE KEY-----
";
    const PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmIjAEAzkQeG/JBDw
+wDh4CtTuNxCsxxg8kXMzpe9R3ShRANCAAQbl5crGG8AM2hqoc15xugNh8gKpW/i
scqTM3ga1mG+tcIiuL8ZTIAb09uEFEf5TUjuuvYMixG+jVUxLm+QeeMO
-----END PRIVATE KEY-----
";

    #[test]
    fn a_sec1_key_becomes_what_openssl_pkcs8_writes() {
        let converted = to_pkcs8(SEC1.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(converted).unwrap(), PKCS8);
    }

    #[test]
    fn anything_else_is_left_alone() {
        assert_eq!(to_pkcs8(PKCS8.as_bytes()), None);
        assert_eq!(
            to_pkcs8(b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----"),
            None
        );
        assert_eq!(to_pkcs8(b"not a key"), None);
    }
}
