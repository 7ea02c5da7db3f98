//! A provider's JWKS, read into verification keys: each key pinned to the one
//! algorithm it was published for, and every key that could be misused
//! skipped rather than trusted.

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;
use serde_json::Value;

use crate::jwt::Key;

/// The most keys read from one JWKS (providers publish a handful).
const MAX_KEYS: usize = 64;

/// The verification keys of a JWKS document for the allowed `algorithms`.
/// Skipped: symmetric keys (`kty: oct`: a JWKS is public, and an HMAC secret
/// published there would let anyone sign), keys for encryption (`use` other
/// than `sig`), keys without `kid`, keys whose algorithm is not allowed or not
/// known, and a `kid` seen twice (both: which one signed would be ambiguous).
/// An error when the document is not a JWKS or no key is usable.
pub(crate) fn usable_keys(body: &[u8], algorithms: &[Algorithm]) -> Result<Vec<Key>, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| "the JWKS is not JSON")?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no `keys` array")?;
    let mut keys: Vec<Key> = Vec::new();
    let mut ambiguous: Vec<String> = Vec::new();
    for entry in entries.iter().take(MAX_KEYS) {
        let Some(key) = verification_key(entry, algorithms) else {
            continue;
        };
        if keys.iter().any(|k| k.kid() == key.kid()) {
            ambiguous.push(key.kid().to_owned());
        } else {
            keys.push(key);
        }
    }
    keys.retain(|k| !ambiguous.iter().any(|a| a == k.kid()));
    if keys.is_empty() {
        return Err("the JWKS has no usable signature key".into());
    }
    Ok(keys)
}

/// One JWK as a key, or `None` when it must not be used.
fn verification_key(entry: &Value, algorithms: &[Algorithm]) -> Option<Key> {
    let field = |name: &str| entry.get(name).and_then(Value::as_str);
    if field("kty")? == "oct" || field("use").is_some_and(|u| u != "sig") {
        return None;
    }
    field("kid")?;
    let alg = match field("alg") {
        Some(alg) => alg.parse::<Algorithm>().ok()?,
        None => implied_algorithm(field("kty")?, field("crv"))?,
    };
    if !algorithms.contains(&alg) {
        return None;
    }
    let mut entry = entry.clone();
    // An object (it has a `kty`); inserting into anything else would panic.
    entry.as_object_mut()?.insert(
        "alg".to_owned(),
        Value::String(crate::jwt::jws::alg_name(alg).to_owned()),
    );
    let jwk: Jwk = serde_json::from_value(entry).ok()?;
    Key::from_jwk(&jwk).ok()
}

/// The algorithm a JWK without `alg` is for, from its type and curve: the one
/// algorithm each EC and OKP curve signs with, RS256 for RSA (RFC 7518's
/// recommended RSA algorithm, what providers that omit `alg` sign with).
fn implied_algorithm(kty: &str, crv: Option<&str>) -> Option<Algorithm> {
    match (kty, crv) {
        ("RSA", _) => Some(Algorithm::RS256),
        ("EC", Some("P-256")) => Some(Algorithm::ES256),
        ("EC", Some("P-384")) => Some(Algorithm::ES384),
        ("OKP", Some("Ed25519")) => Some(Algorithm::EdDSA),
        _ => None,
    }
}
