//! Signing and verification keys: each with a `kid` and one pinned algorithm,
//! key rotation without logging anyone out, and the JWKS of the public halves.

use std::fmt;

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

use crate::error::ConfigError;

/// One key: a `kid`, the one algorithm it may be used with, the verification half,
/// and (for signing keys) the private half.
///
/// `Debug` shows the `kid` and the algorithm, never key material.
///
/// ```
/// use tower_jwt_auth::{Key, Algorithm};
/// let key = Key::hmac("2026-11", Algorithm::HS256, b"a secret of at least thirty-two bytes!!").unwrap();
/// assert_eq!(key.kid(), "2026-11");
/// assert!(format!("{key:?}").contains("2026-11"));
/// assert!(!format!("{key:?}").contains("thirty-two"));
/// ```
#[derive(Clone)]
pub struct Key {
    kid: String,
    alg: Algorithm,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    /// The public JWK; `None` for HMAC secrets, which never leave the process.
    public_jwk: Option<Jwk>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("can_sign", &self.encoding.is_some())
            .finish_non_exhaustive()
    }
}

/// The shortest HMAC secret accepted for an algorithm: its hash output size (RFC 7518 §3.2).
pub(crate) fn min_hmac_secret(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

fn check_kid(kid: &str) -> Result<(), ConfigError> {
    if kid.is_empty() || kid.len() > 128 {
        return Err(ConfigError::BadKid);
    }
    Ok(())
}

fn family_of(alg: Algorithm) -> Result<AlgorithmFamily, ConfigError> {
    AlgorithmFamily::Hmac
        .algorithms()
        .contains(&alg)
        .then_some(AlgorithmFamily::Hmac)
        .or_else(|| AlgorithmFamily::Rsa.algorithms().contains(&alg).then_some(AlgorithmFamily::Rsa))
        .or_else(|| AlgorithmFamily::Ec.algorithms().contains(&alg).then_some(AlgorithmFamily::Ec))
        .or_else(|| AlgorithmFamily::Ed.algorithms().contains(&alg).then_some(AlgorithmFamily::Ed))
        .ok_or(ConfigError::UnsupportedAlgorithm(alg))
}

impl Key {
    /// An HMAC key (HS256, HS384, HS512) that signs and verifies.
    ///
    /// The secret must be at least as long as the hash: 32 bytes for HS256, 48 for
    /// HS384, 64 for HS512.
    pub fn hmac(
        kid: impl Into<String>,
        alg: Algorithm,
        secret: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        crate::crypto::ensure_provider()?;
        let kid = kid.into();
        check_kid(&kid)?;
        if family_of(alg)? != AlgorithmFamily::Hmac {
            return Err(ConfigError::KeyMismatch { kid, alg });
        }
        let secret = secret.as_ref();
        let min = min_hmac_secret(alg);
        if secret.len() < min {
            return Err(ConfigError::ShortSecret { kid, alg, min });
        }
        let mismatch = || ConfigError::KeyMismatch { kid: kid.clone(), alg };
        let encoding = EncodingKey::from_secret(secret).map_err(|_| mismatch())?;
        let decoding = DecodingKey::from_secret(secret).map_err(|_| mismatch())?;
        let key = Key { kid, alg, encoding: Some(encoding), decoding, public_jwk: None };
        key.self_test()?;
        Ok(key)
    }

    /// A signing key from a private key in PEM (PKCS#8 for EC and Ed25519, PKCS#1 or
    /// PKCS#8 for RSA). Its public half verifies, and is published in the JWKS.
    pub fn from_private_pem(
        kid: impl Into<String>,
        alg: Algorithm,
        pem: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        crate::crypto::ensure_provider()?;
        let kid = kid.into();
        check_kid(&kid)?;
        let pem = pem.as_ref();
        let mismatch = || ConfigError::KeyMismatch { kid: kid.clone(), alg };
        let encoding = match family_of(alg)? {
            AlgorithmFamily::Hmac => return Err(mismatch()),
            AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem),
            AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem),
            AlgorithmFamily::Ed => EncodingKey::from_ed_pem(pem),
        }
        .map_err(|_| mismatch())?;
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(|_| mismatch())?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| mismatch())?;
        complete_jwk(&mut jwk, &kid, alg);
        let key = Key { kid, alg, encoding: Some(encoding), decoding, public_jwk: Some(jwk) };
        key.self_test()?;
        Ok(key)
    }

    /// A verification-only key from a public key in PEM (SPKI), for tokens signed
    /// elsewhere or by a retired signing key.
    pub fn from_public_pem(
        kid: impl Into<String>,
        alg: Algorithm,
        pem: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        crate::crypto::ensure_provider()?;
        let kid = kid.into();
        check_kid(&kid)?;
        let pem = pem.as_ref();
        let mismatch = || ConfigError::KeyMismatch { kid: kid.clone(), alg };
        let decoding = match family_of(alg)? {
            AlgorithmFamily::Hmac => return Err(mismatch()),
            AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem),
            AlgorithmFamily::Ec => DecodingKey::from_ec_pem(pem),
            AlgorithmFamily::Ed => DecodingKey::from_ed_pem(pem),
        }
        .map_err(|_| mismatch())?;
        let mut jwk = Jwk::from_decoding_key(&decoding, Some(alg)).map_err(|_| mismatch())?;
        if !jwk_fits(&jwk, alg) {
            return Err(mismatch());
        }
        complete_jwk(&mut jwk, &kid, alg);
        Ok(Key { kid, alg, encoding: None, decoding, public_jwk: Some(jwk) })
    }

    /// A verification-only key from a public JWK. Its `kid` and `alg` are required;
    /// symmetric (`oct`) JWKs are refused.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, ConfigError> {
        crate::crypto::ensure_provider()?;
        let kid = jwk.common.key_id.clone().ok_or(ConfigError::BadKid)?;
        check_kid(&kid)?;
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok())
            .ok_or(ConfigError::BadName("jwk alg".into()))?;
        let mismatch = || ConfigError::KeyMismatch { kid: kid.clone(), alg };
        if family_of(alg)? == AlgorithmFamily::Hmac || !jwk_fits(jwk, alg) {
            return Err(mismatch());
        }
        let decoding = DecodingKey::from_jwk(jwk).map_err(|_| mismatch())?;
        let mut public = jwk.clone();
        complete_jwk(&mut public, &kid, alg);
        Ok(Key { kid, alg, encoding: None, decoding, public_jwk: Some(public) })
    }

    /// The key id, written into the `kid` header of every token this key signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key is used with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// Whether this key holds a private half (or an HMAC secret) and can sign.
    pub fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }

    /// The public JWK (with `kid`, `alg` and `use: sig`); `None` for HMAC keys.
    pub fn public_jwk(&self) -> Option<&Jwk> {
        self.public_jwk.as_ref()
    }

    /// The same key without its private half.
    pub fn verification_only(&self) -> Key {
        Key { encoding: None, ..self.clone() }
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    pub(crate) fn encoding(&self) -> Option<&EncodingKey> {
        self.encoding.as_ref()
    }

    /// Signs and verifies a probe message: catches a key that parses but does not
    /// fit its algorithm (a P-384 key configured as ES256, say) at build time.
    fn self_test(&self) -> Result<(), ConfigError> {
        let mismatch = || ConfigError::KeyMismatch { kid: self.kid.clone(), alg: self.alg };
        let Some(enc) = &self.encoding else { return Ok(()) };
        let probe = b"tower-jwt-auth key self test";
        let sig = jsonwebtoken::crypto::sign(probe, enc, self.alg).map_err(|_| mismatch())?;
        match jsonwebtoken::crypto::verify(&sig, probe, &self.decoding, self.alg) {
            Ok(true) => Ok(()),
            _ => Err(mismatch()),
        }
    }
}

fn jwk_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::{AlgorithmParameters as P, EllipticCurve as C};
    match (&jwk.algorithm, alg) {
        (P::EllipticCurve(p), Algorithm::ES256) => p.curve == C::P256,
        (P::EllipticCurve(p), Algorithm::ES384) => p.curve == C::P384,
        (P::OctetKeyPair(p), Algorithm::EdDSA) => p.curve == C::Ed25519,
        (P::RSA(_), a) => family_of(a).ok() == Some(AlgorithmFamily::Rsa),
        _ => false,
    }
}

fn complete_jwk(jwk: &mut Jwk, kid: &str, alg: Algorithm) {
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = key_algorithm(alg);
}

fn key_algorithm(alg: Algorithm) -> Option<KeyAlgorithm> {
    Some(match alg {
        Algorithm::HS256 => KeyAlgorithm::HS256,
        Algorithm::HS384 => KeyAlgorithm::HS384,
        Algorithm::HS512 => KeyAlgorithm::HS512,
        Algorithm::ES256 => KeyAlgorithm::ES256,
        Algorithm::ES384 => KeyAlgorithm::ES384,
        Algorithm::RS256 => KeyAlgorithm::RS256,
        Algorithm::RS384 => KeyAlgorithm::RS384,
        Algorithm::RS512 => KeyAlgorithm::RS512,
        Algorithm::PS256 => KeyAlgorithm::PS256,
        Algorithm::PS384 => KeyAlgorithm::PS384,
        Algorithm::PS512 => KeyAlgorithm::PS512,
        Algorithm::EdDSA => KeyAlgorithm::EdDSA,
        _ => return None,
    })
}

/// The keys in force: one signing key, plus keys that only verify.
///
/// Built into a [`Jwt`](crate::Jwt); replaced as a whole on rotation, so a request
/// always sees one consistent set.
#[derive(Clone, Debug)]
pub(crate) struct KeySet {
    signing: Key,
    /// Every key that verifies, the signing key included. Few keys: a scan beats a map.
    verifying: Vec<Key>,
}

impl KeySet {
    pub(crate) fn new(signing: Key, others: Vec<Key>) -> Result<Self, ConfigError> {
        if !signing.can_sign() {
            return Err(ConfigError::NoSigningKey);
        }
        let mut verifying = vec![signing.clone()];
        for k in others {
            if verifying.iter().any(|v| v.kid == k.kid) {
                return Err(ConfigError::DuplicateKid(k.kid));
            }
            verifying.push(k.verification_only());
        }
        Ok(KeySet { signing, verifying })
    }

    pub(crate) fn signing(&self) -> &Key {
        &self.signing
    }

    pub(crate) fn find(&self, kid: &str) -> Option<&Key> {
        self.verifying.iter().find(|k| k.kid == kid)
    }

    /// A new set where `next` signs and the current signing key only verifies.
    pub(crate) fn rotated(&self, next: Key) -> Result<Self, ConfigError> {
        let others = self
            .verifying
            .iter()
            .filter(|k| k.kid != next.kid)
            .cloned()
            .collect();
        KeySet::new(next, others)
    }

    /// A new set without `kid`; the signing key cannot be retired.
    pub(crate) fn retired(&self, kid: &str) -> Option<Self> {
        if self.signing.kid == kid || self.find(kid).is_none() {
            return None;
        }
        let verifying = self.verifying.iter().filter(|k| k.kid != kid).cloned().collect();
        Some(KeySet { signing: self.signing.clone(), verifying })
    }

    pub(crate) fn kids(&self) -> Vec<String> {
        self.verifying.iter().map(|k| k.kid.clone()).collect()
    }

    pub(crate) fn jwks(&self) -> JwkSet {
        JwkSet { keys: self.verifying.iter().filter_map(|k| k.public_jwk.clone()).collect() }
    }
}
