//! Signing and verification keys: each with a `kid` and one pinned algorithm,
//! key rotation without logging anyone out, and the JWKS of the public halves.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

use super::prepared::Prepared;
use crate::error::ConfigError;

/// One key: a `kid`, the one algorithm it may be used with, the verification half,
/// and (for signing keys) the private half.
///
/// `Debug` shows the `kid` and the algorithm, never key material. The key
/// material lives in jsonwebtoken's `EncodingKey`/`DecodingKey`, which zeroize
/// their bytes on drop.
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
    /// The verification state, prepared once (see `prepared.rs`).
    pub(super) prepared: Prepared,
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
        .or_else(|| {
            AlgorithmFamily::Rsa
                .algorithms()
                .contains(&alg)
                .then_some(AlgorithmFamily::Rsa)
        })
        .or_else(|| {
            AlgorithmFamily::Ec
                .algorithms()
                .contains(&alg)
                .then_some(AlgorithmFamily::Ec)
        })
        .or_else(|| {
            AlgorithmFamily::Ed
                .algorithms()
                .contains(&alg)
                .then_some(AlgorithmFamily::Ed)
        })
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
        super::crypto::ensure_provider()?;
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
        let mismatch = || ConfigError::KeyMismatch {
            kid: kid.clone(),
            alg,
        };
        let encoding = EncodingKey::from_secret(secret).map_err(|_| mismatch())?;
        let decoding = DecodingKey::from_secret(secret).map_err(|_| mismatch())?;
        let key = Key {
            kid,
            alg,
            encoding: Some(encoding),
            decoding,
            public_jwk: None,
            prepared: Prepared::hmac(alg, secret),
        };
        key.self_test()?;
        Ok(key)
    }

    /// A signing key from a private key in PEM: PKCS#8 or SEC1 (`BEGIN EC
    /// PRIVATE KEY`, what `openssl ecparam -genkey` writes) for EC, PKCS#8 for
    /// Ed25519, PKCS#1 or PKCS#8 for RSA. Its public half verifies, and is
    /// published in the JWKS.
    ///
    /// ```text
    /// openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out es256.pem
    /// openssl genpkey -algorithm ed25519 -out ed25519.pem
    /// openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out rs256.pem
    /// ```
    pub fn from_private_pem(
        kid: impl Into<String>,
        alg: Algorithm,
        pem: impl AsRef<[u8]>,
    ) -> Result<Self, ConfigError> {
        super::crypto::ensure_provider()?;
        let kid = kid.into();
        check_kid(&kid)?;
        let pem = pem.as_ref();
        let mismatch = || ConfigError::KeyMismatch {
            kid: kid.clone(),
            alg,
        };
        let encoding = match family_of(alg)? {
            AlgorithmFamily::Hmac => return Err(mismatch()),
            AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(pem),
            // SEC1 (`openssl ecparam -genkey`) read as the PKCS#8 it holds.
            AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem).or_else(|e| {
                super::sec1::to_pkcs8(pem).map_or(Err(e), |p| EncodingKey::from_ec_pem(&p))
            }),
            AlgorithmFamily::Ed => EncodingKey::from_ed_pem(pem),
        }
        .map_err(|_| mismatch())?;
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(|_| mismatch())?;
        if !jwk_fits(&jwk, alg) {
            return Err(mismatch());
        }
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|_| mismatch())?;
        complete_jwk(&mut jwk, &kid, alg);
        let key = Key {
            kid,
            alg,
            encoding: Some(encoding),
            prepared: Prepared::public(alg, &decoding),
            decoding,
            public_jwk: Some(jwk),
        };
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
        super::crypto::ensure_provider()?;
        let kid = kid.into();
        check_kid(&kid)?;
        let pem = pem.as_ref();
        let mismatch = || ConfigError::KeyMismatch {
            kid: kid.clone(),
            alg,
        };
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
        Ok(Key {
            kid,
            alg,
            encoding: None,
            prepared: Prepared::public(alg, &decoding),
            decoding,
            public_jwk: Some(jwk),
        })
    }

    /// A verification-only key from a public JWK. Its `kid` and `alg` are required;
    /// symmetric (`oct`) JWKs are refused, and so are JWKs meant for something
    /// else than verifying signatures (`use` other than `sig`, `key_ops` without
    /// `verify`), RSA moduli outside 2048 to 8192 bits and EC/OKP coordinates of
    /// the wrong length for their curve.
    ///
    /// ```
    /// use tower_jwt_auth::{Key, Algorithm};
    /// use jsonwebtoken::jwk::Jwk;
    /// let jwk: Jwk = serde_json::from_str(r#"{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"ed-1",
    ///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#).unwrap();
    /// let key = Key::from_jwk(&jwk).unwrap();
    /// assert_eq!(key.kid(), "ed-1");
    /// assert!(!key.can_sign());
    /// ```
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, ConfigError> {
        super::crypto::ensure_provider()?;
        let kid = jwk.common.key_id.clone().ok_or(ConfigError::BadKid)?;
        check_kid(&kid)?;
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok())
            .ok_or(ConfigError::BadName("jwk alg".into()))?;
        let mismatch = || ConfigError::KeyMismatch {
            kid: kid.clone(),
            alg,
        };
        if family_of(alg)? == AlgorithmFamily::Hmac || !jwk_fits(jwk, alg) {
            return Err(mismatch());
        }
        // RFC 7517 §4.2/§4.3: a key published for encryption is not a signature key.
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return Err(mismatch());
        }
        if jwk
            .common
            .key_operations
            .as_ref()
            .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
        {
            return Err(mismatch());
        }
        let decoding = DecodingKey::from_jwk(jwk).map_err(|_| mismatch())?;
        let mut public = jwk.clone();
        complete_jwk(&mut public, &kid, alg);
        Ok(Key {
            kid,
            alg,
            encoding: None,
            prepared: Prepared::public(alg, &decoding),
            decoding,
            public_jwk: Some(public),
        })
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
        Key {
            encoding: None,
            ..self.clone()
        }
    }

    /// Verifies `signature` over `message` with this key's one algorithm.
    ///
    /// This is the signature step of [`Jwt::validate`](crate::Jwt::validate) and
    /// [`verify_signature`](crate::verify_signature): for a JWS, `message` is the
    /// ASCII `header.payload` and `signature` the base64url-decoded third part.
    /// ES256/ES384 signatures are the JWS form, raw `r‖s` (IEEE P1363), not DER;
    /// EdDSA is Ed25519; HMAC tags must be the full hash length (a truncated tag
    /// is refused). Returns `false`, never panics, for a signature of the wrong
    /// length, a key the crypto backend cannot use, or no crypto backend at all.
    ///
    /// ```
    /// use tower_jwt_auth::{Key, Algorithm};
    /// let key = Key::hmac("k1", Algorithm::HS256, [7u8; 32]).unwrap();
    /// let tag = key.sign(b"hello").unwrap();
    /// assert!(key.verify(b"hello", &tag));
    /// assert!(!key.verify(b"hellO", &tag));
    /// assert!(!key.verify(b"hello", &tag[..16]));
    /// ```
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        if signature.is_empty() || signature.len() > MAX_SIGNATURE_LEN {
            return false;
        }
        if let Some(verified) = self.prepared.verify(message, signature) {
            return verified;
        }
        let Some(provider) = CryptoProvider::try_get_default() else {
            return false;
        };
        let Ok(verifier) = (provider.verifier_factory)(&self.alg, &self.decoding) else {
            return false;
        };
        // The backend's verifiers take a `Vec`: one copy of a few hundred bytes at
        // most, the same single allocation jsonwebtoken's own `decode` makes.
        // HMAC tags are compared by the backend in constant time (aws-lc's
        // `hmac::verify`, RustCrypto's `verify_slice`); this crate compares no
        // secret bytes itself.
        verifier.verify(message, &signature.to_vec()).is_ok()
    }

    /// Signs `message` with this key's algorithm and returns the raw signature
    /// (the bytes a JWS carries base64url-encoded); `None` for a
    /// verification-only key or when the backend refuses.
    pub fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let enc = self.encoding.as_ref()?;
        let sig = jsonwebtoken::crypto::sign(message, enc, self.alg).ok()?;
        URL_SAFE_NO_PAD.decode(sig).ok()
    }

    pub(crate) fn encoding(&self) -> Option<&EncodingKey> {
        self.encoding.as_ref()
    }

    /// Signs and verifies a probe message: catches a key that parses but does not
    /// fit its algorithm (a P-384 key configured as ES256, say) at build time.
    fn self_test(&self) -> Result<(), ConfigError> {
        let mismatch = || ConfigError::KeyMismatch {
            kid: self.kid.clone(),
            alg: self.alg,
        };
        if self.encoding.is_none() {
            return Ok(());
        }
        let probe = b"tower-jwt-auth key self test";
        let sig = self.sign(probe).ok_or_else(mismatch)?;
        if self.verify(probe, &sig) {
            Ok(())
        } else {
            Err(mismatch())
        }
    }
}

/// The longest signature any accepted key makes: RSA with an 8192-bit modulus
/// (the backends' ceiling). Anything longer is refused before the backend sees it.
pub(crate) const MAX_SIGNATURE_LEN: usize = 1024;

/// Whether a public JWK is a well-formed key for `alg`: the right key type and
/// curve, coordinates of the curve's length, an RSA modulus of 2048 to 8192 bits
/// (RFC 7518 §3.3).
fn jwk_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::{AlgorithmParameters as P, EllipticCurve as C};
    let len = |b64: &str| URL_SAFE_NO_PAD.decode(b64).map_or(0, |v| v.len());
    let ec = |x: &str, y: &str, n: usize| len(x) == n && len(y) == n;
    match (&jwk.algorithm, alg) {
        (P::EllipticCurve(p), Algorithm::ES256) => p.curve == C::P256 && ec(&p.x, &p.y, 32),
        (P::EllipticCurve(p), Algorithm::ES384) => p.curve == C::P384 && ec(&p.x, &p.y, 48),
        (P::OctetKeyPair(p), Algorithm::EdDSA) => p.curve == C::Ed25519 && len(&p.x) == 32,
        (P::RSA(p), a) => {
            let bits = URL_SAFE_NO_PAD.decode(&p.n).map_or(0, |n| {
                let n = &n[n.iter().take_while(|b| **b == 0).count()..];
                n.first()
                    .map_or(0, |top| n.len() * 8 - top.leading_zeros() as usize)
            });
            family_of(a).ok() == Some(AlgorithmFamily::Rsa)
                && (2048..=MAX_SIGNATURE_LEN * 8).contains(&bits)
                && !p.e.is_empty()
        }
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
    ///
    /// `next` must bring a new `kid`: reusing one would either replace a key that
    /// still verifies live tokens or give one `kid` two meanings to every JWKS
    /// cache that has seen it.
    pub(crate) fn rotated(&self, next: Key) -> Result<Self, ConfigError> {
        // `verifying` still holds every kid, the current signing key's included:
        // `new` refuses `next` if its kid is among them.
        KeySet::new(next, self.verifying.clone())
    }

    /// A new set without `kid`; the signing key cannot be retired.
    pub(crate) fn retired(&self, kid: &str) -> Option<Self> {
        if self.signing.kid == kid || self.find(kid).is_none() {
            return None;
        }
        let verifying = self
            .verifying
            .iter()
            .filter(|k| k.kid != kid)
            .cloned()
            .collect();
        Some(KeySet {
            signing: self.signing.clone(),
            verifying,
        })
    }

    pub(crate) fn kids(&self) -> Vec<String> {
        self.verifying.iter().map(|k| k.kid.clone()).collect()
    }

    pub(crate) fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .verifying
                .iter()
                .filter_map(|k| k.public_jwk.clone())
                .collect(),
        }
    }
}
