//! The JWS compact serialization, read strictly: canonical unpadded base64url
//! in three parts, JSON objects without duplicate keys (parsed once each,
//! straight from the decoded bytes), no keys from headers (`jku`, `x5u`, `x5c`,
//! `jwk`), no `crit`, `alg` pinned to the key named by `kid`.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::json::{CowStr, KeyStr, SeenKeys, parse_json};

use super::b64::{HeaderBuf, PayloadBuf};
use super::claims::TokenKind;
use super::keys::{Key, KeySet, MAX_SIGNATURE_LEN};
use crate::error::TokenError;

/// The header and signature steps for a token of `kind` signed by a key of
/// `keys`: explicit typing (`typ`), the key named by `kid`, the pinned
/// algorithm, the signature. Answers the decoded payload (in `payload`), not
/// yet parsed.
pub(crate) fn verify_typed<'b>(
    token: &str,
    kind: TokenKind,
    keys: &KeySet,
    dup: &Cell<bool>,
    payload: &'b mut PayloadBuf,
) -> Result<&'b [u8], TokenError> {
    verify_with(
        token,
        |typ| typ.is_some_and(|t| kind.matches_typ(t)),
        |kid| keys.find(kid),
        dup,
        payload,
    )
}

/// The header and signature steps with the rules given: `typ_ok` judges the
/// `typ` header (absent: `None`), `find` names the key for a `kid` (a token
/// without `kid` is [`TokenError::UnknownKey`]), whose pinned algorithm the
/// header must name. Answers the decoded payload (in `payload`), not yet
/// parsed.
pub(crate) fn verify_with<'k, 'b>(
    token: &str,
    typ_ok: impl FnOnce(Option<&str>) -> bool,
    find: impl FnOnce(&str) -> Option<&'k Key>,
    dup: &Cell<bool>,
    payload: &'b mut PayloadBuf,
) -> Result<&'b [u8], TokenError> {
    let (header_b64, payload_b64, sig_b64) = split(token, Payload::NonEmpty)?;
    let mut header_buf = HeaderBuf::new();
    let header_json = header_buf.decode(header_b64)?;
    let header = parse_json(header_json, HeaderSeed { dup }, dup)?;
    header.check()?;
    if !typ_ok(header.typ.as_deref()) {
        return Err(TokenError::WrongType);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(find)
        .ok_or(TokenError::UnknownKey)?;
    check_signature(
        key,
        &header,
        token,
        header_b64.len() + 1 + payload_b64.len(),
        sig_b64,
    )?;
    payload.decode(payload_b64)
}

/// What `pick` makes of the `iss` of a token's payload, read before any
/// signature work to choose the issuer whose rules and keys judge it; `None`
/// when the token is not a JWS compact form or its payload names no issuer (it
/// then goes to the app's own rules, which refuse it if it is not theirs).
pub(crate) fn pick_by_issuer<T>(token: &str, pick: impl FnOnce(&str) -> Option<T>) -> Option<T> {
    #[derive(Deserialize)]
    struct Iss<'a> {
        #[serde(borrow)]
        iss: Option<Cow<'a, str>>,
    }
    let (_, payload_b64, _) = split(token, Payload::NonEmpty).ok()?;
    let mut payload = PayloadBuf::new();
    let iss: Iss<'_> = serde_json::from_slice(payload.decode(payload_b64).ok()?).ok()?;
    pick(iss.iss.as_deref()?)
}

/// Verifies a JWS compact signature with one key, pinned to the key's algorithm.
///
/// The header and signature steps of [`Jwt::validate`](crate::Jwt::validate), on their own (for test
/// vectors and for apps that check foreign JWS objects): canonical unpadded
/// base64url in three parts (only the payload may be empty), a JSON-object
/// header without duplicate keys, no `jku`/`x5u`/`x5c`/`jwk`, no `crit`, `alg`
/// equal to the key's algorithm, a `kid` (when present) equal to the key's, then
/// [`Key::verify`](crate::Key::verify). The payload is not read: it need not be
/// a claim set.
///
/// ```
/// use tower_jwt_auth::{verify_signature, Key, Algorithm, TokenError};
/// // RFC 7515 appendix A.1 with a key of our own: any payload, any header fields.
/// let key = Key::hmac("k1", Algorithm::HS256, [7u8; 32]).unwrap();
/// let signing_input = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.aGVsbG8";
/// let sig = key.sign(signing_input.as_bytes()).unwrap();
/// use base64::Engine;
/// let jws = format!("{signing_input}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig));
/// assert_eq!(verify_signature(&jws, &key), Ok(()));
/// let none = "eyJhbGciOiJub25lIn0.aGVsbG8.";
/// assert!(verify_signature(none, &key).is_err());
/// ```
pub fn verify_signature(token: &str, key: &Key) -> Result<(), TokenError> {
    let (header_b64, payload_b64, sig_b64) = split(token, Payload::MayBeEmpty)?;
    let dup = Cell::new(false);
    let mut header_buf = HeaderBuf::new();
    let header_json = header_buf.decode(header_b64)?;
    let header = parse_json(header_json, HeaderSeed { dup: &dup }, &dup)?;
    header.check()?;
    if header.kid.as_deref().is_some_and(|kid| kid != key.kid()) {
        return Err(TokenError::UnknownKey);
    }
    // The payload is not decoded here, but its spelling must still be the one
    // canonical base64url: otherwise two texts would carry one signed payload.
    if !canonical_b64(payload_b64) {
        return Err(TokenError::Base64);
    }
    check_signature(
        key,
        &header,
        token,
        header_b64.len() + 1 + payload_b64.len(),
        sig_b64,
    )
}

/// Whether a part made of base64url characters is canonical unpadded base64url:
/// no impossible length, zero unused bits in the last character.
fn canonical_b64(part: &str) -> bool {
    let Some(&last) = part.as_bytes().last() else {
        return true;
    };
    let value = match last {
        b'A'..=b'Z' => last - b'A',
        b'a'..=b'z' => last - b'a' + 26,
        b'0'..=b'9' => last - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return false,
    };
    match part.len() % 4 {
        1 => false,
        2 => value & 0x0f == 0,
        3 => value & 0x03 == 0,
        _ => true,
    }
}

/// The pinned algorithm, then the signature over `token[..message_len]`
/// through [`Key::verify`](crate::Key::verify).
fn check_signature(
    key: &Key,
    header: &RawHeader<'_>,
    token: &str,
    message_len: usize,
    sig_b64: &str,
) -> Result<(), TokenError> {
    match header.alg.as_deref() {
        Some(alg) if alg == alg_name(key.algorithm()) => {}
        _ => return Err(TokenError::Algorithm),
    }
    // Decoded on the stack: the only allocation of the signature step is the
    // backend's own copy inside `Key::verify`.
    let mut sig = [0u8; SIG_BUF];
    if sig_b64.len() > MAX_SIG_B64 {
        return Err(TokenError::Signature);
    }
    let n = URL_SAFE_NO_PAD
        .decode_slice(sig_b64, &mut sig)
        .map_err(|_| TokenError::Base64)?;
    let sig = sig.get(..n).ok_or(TokenError::Signature)?;
    let message = token
        .as_bytes()
        .get(..message_len)
        .ok_or(TokenError::Malformed)?;
    if key.verify(message, sig) {
        Ok(())
    } else {
        Err(TokenError::Signature)
    }
}

/// base64url length of the longest signature [`Key::verify`](crate::Key::verify) accepts.
const MAX_SIG_B64: usize = (MAX_SIGNATURE_LEN * 4).div_ceil(3);
/// Room for the base64 decoder's conservative output estimate (whole 3-byte groups).
const SIG_BUF: usize = MAX_SIG_B64.div_ceil(4) * 3;

pub(crate) fn alg_name(alg: jsonwebtoken::Algorithm) -> &'static str {
    use jsonwebtoken::Algorithm as A;
    match alg {
        A::HS256 => "HS256",
        A::HS384 => "HS384",
        A::HS512 => "HS512",
        A::ES256 => "ES256",
        A::ES384 => "ES384",
        A::RS256 => "RS256",
        A::RS384 => "RS384",
        A::RS512 => "RS512",
        A::PS256 => "PS256",
        A::PS384 => "PS384",
        A::PS512 => "PS512",
        A::EdDSA => "EdDSA",
        // An algorithm added to jsonwebtoken later matches no header until named here.
        _ => "\0",
    }
}

/// Splits `header.payload.signature`; anything else (JWE's five parts, stray
/// characters, empty parts) is malformed. An empty payload is a legal JWS (the
/// empty octet string) but never a JWT, so only [`verify_signature`] allows it.
fn split(token: &str, payload: Payload) -> Result<(&str, &str, &str), TokenError> {
    // A branch-free fold rather than `all`: the compiler vectorizes it, and this
    // scan runs over every byte of every token (10x faster on a 400-byte token).
    let stray = token.bytes().fold(0u8, |acc, b| {
        acc | u8::from(!(b.is_ascii_alphanumeric() | (b == b'-') | (b == b'_') | (b == b'.')))
    });
    if stray != 0 {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None)
            if !h.is_empty()
                && !s.is_empty()
                && (!p.is_empty() || payload == Payload::MayBeEmpty) =>
        {
            Ok((h, p, s))
        }
        _ => Err(TokenError::Malformed),
    }
}

/// Whether [`split`] accepts an empty payload part.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Payload {
    NonEmpty,
    MayBeEmpty,
}

/// The header fields validation reads.
#[derive(Default)]
struct RawHeader<'de> {
    alg: Option<Cow<'de, str>>,
    typ: Option<Cow<'de, str>>,
    kid: Option<Cow<'de, str>>,
    /// `crit` is present: no extension is understood, so the token is refused.
    crit: bool,
    /// `jku`, `x5u`, `x5c` or `jwk` is present: keys never come from the token.
    external: bool,
}

impl RawHeader<'_> {
    /// The header rules that need no key: no keys from the token, no `crit`.
    fn check(&self) -> Result<(), TokenError> {
        if self.external {
            return Err(TokenError::ExternalKey);
        }
        if self.crit {
            return Err(TokenError::Critical);
        }
        Ok(())
    }
}

struct HeaderSeed<'a> {
    dup: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for HeaderSeed<'_> {
    type Value = RawHeader<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeaderSeed<'_> {
    type Value = RawHeader<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut h = RawHeader::default();
        let mut seen = SeenKeys::new(self.dup);
        while let Some(KeyStr(key)) = map.next_key()? {
            match &*key {
                "alg" => {
                    seen.known(0)?;
                    h.alg = Some(map.next_value::<CowStr<'de>>()?.0);
                }
                "typ" => {
                    seen.known(1)?;
                    h.typ = Some(map.next_value::<CowStr<'de>>()?.0);
                }
                "kid" => {
                    seen.known(2)?;
                    h.kid = Some(map.next_value::<CowStr<'de>>()?.0);
                }
                "crit" => {
                    seen.known(3)?;
                    map.next_value::<IgnoredAny>()?;
                    h.crit = true;
                }
                "jku" | "x5u" | "x5c" | "jwk" => {
                    seen.other(key)?;
                    map.next_value::<IgnoredAny>()?;
                    h.external = true;
                }
                _ => {
                    seen.other(key)?;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        seen.finish()?;
        Ok(h)
    }
}
