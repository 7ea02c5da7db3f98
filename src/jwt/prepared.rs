//! Verification keys prepared once per key, not once per token: with the
//! aws-lc-rs backend an HMAC key's inner and outer pads are hashed once, and a
//! public key is parsed and validated once (`ParsedPublicKey`), where
//! jsonwebtoken's verifier redoes both for every signature. The algorithms
//! are the ones jsonwebtoken's aws-lc-rs verifiers use, so a signature
//! verifies here exactly when it verifies there (the key tests run both).
//! Keys that cannot be prepared (RSA keys given as modulus and exponent, the
//! RustCrypto backend) verify through jsonwebtoken's verifier as before.

#[cfg(feature = "aws-lc-rs")]
use jsonwebtoken::Algorithm;
#[cfg(feature = "aws-lc-rs")]
use jsonwebtoken::DecodingKey;

/// A key's verification state, ready to use.
#[derive(Clone)]
pub(crate) enum Prepared {
    /// Not prepared: jsonwebtoken's verifier, built per call.
    Backend,
    #[cfg(feature = "aws-lc-rs")]
    Hmac(Box<aws_lc_rs::hmac::Key>),
    #[cfg(feature = "aws-lc-rs")]
    Public(aws_lc_rs::signature::ParsedPublicKey),
}

impl Prepared {
    /// An HMAC key of `alg` over `secret`.
    #[cfg_attr(not(feature = "aws-lc-rs"), allow(unused_variables))]
    pub(crate) fn hmac(alg: jsonwebtoken::Algorithm, secret: &[u8]) -> Prepared {
        #[cfg(feature = "aws-lc-rs")]
        {
            use aws_lc_rs::hmac;
            let algorithm = match alg {
                Algorithm::HS256 => hmac::HMAC_SHA256,
                Algorithm::HS384 => hmac::HMAC_SHA384,
                Algorithm::HS512 => hmac::HMAC_SHA512,
                _ => return Prepared::Backend,
            };
            Prepared::Hmac(Box::new(hmac::Key::new(algorithm, secret)))
        }
        #[cfg(not(feature = "aws-lc-rs"))]
        Prepared::Backend
    }

    /// A public key of `alg` as jsonwebtoken holds it, parsed once.
    #[cfg_attr(not(feature = "aws-lc-rs"), allow(unused_variables))]
    pub(crate) fn public(
        alg: jsonwebtoken::Algorithm,
        key: &jsonwebtoken::DecodingKey,
    ) -> Prepared {
        #[cfg(feature = "aws-lc-rs")]
        {
            prepare_public(alg, key).unwrap_or(Prepared::Backend)
        }
        #[cfg(not(feature = "aws-lc-rs"))]
        Prepared::Backend
    }

    /// `Some(verified)` when prepared, `None` to use the backend's verifier.
    #[cfg_attr(not(feature = "aws-lc-rs"), allow(unused_variables))]
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Option<bool> {
        match self {
            Prepared::Backend => None,
            #[cfg(feature = "aws-lc-rs")]
            Prepared::Hmac(key) => Some(aws_lc_rs::hmac::verify(key, message, signature).is_ok()),
            #[cfg(feature = "aws-lc-rs")]
            Prepared::Public(key) => Some(key.verify_sig(message, signature).is_ok()),
        }
    }
}

#[cfg(feature = "aws-lc-rs")]
fn prepare_public(alg: Algorithm, key: &DecodingKey) -> Option<Prepared> {
    use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
    use jsonwebtoken::DecodingKeyKind;
    let algorithm: &'static dyn VerificationAlgorithm = match alg {
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &sig::ED25519,
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    };
    let parsed = match key.kind() {
        DecodingKeyKind::SecretOrDer(bytes) => ParsedPublicKey::new(algorithm, bytes),
        DecodingKeyKind::RsaModulusExponent { n, e } => {
            ParsedPublicKey::new(algorithm, rsa_public_key_der(n, e))
        }
    };
    parsed.ok().map(Prepared::Public)
}

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`
/// in DER, from big-endian unsigned `n` and `e`: the form jsonwebtoken hands
/// aws-lc-rs for an RSA key read from PEM.
#[cfg(feature = "aws-lc-rs")]
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn length(len: usize, out: &mut Vec<u8>) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
    }
    fn integer(value: &[u8], out: &mut Vec<u8>) {
        let value = &value[value.iter().take_while(|b| **b == 0).count()..];
        let pad = value.first().is_none_or(|b| b & 0x80 != 0);
        out.push(0x02);
        length(value.len() + usize::from(pad), out);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(value);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(n, &mut body);
    integer(e, &mut body);
    let mut der = Vec::with_capacity(body.len() + 8);
    der.push(0x30);
    length(body.len(), &mut der);
    der.extend_from_slice(&body);
    der
}

#[cfg(all(test, feature = "aws-lc-rs"))]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, DecodingKey};

    use super::Prepared;
    use crate::jwt::Key;

    /// Every kind of key, as a signing key and as jsonwebtoken's public key.
    fn test_keys() -> Vec<(Key, DecodingKey)> {
        vec![
            (
                Key::hmac("h", Algorithm::HS256, [3u8; 32]).unwrap(),
                DecodingKey::from_secret(&[3u8; 32]).unwrap(),
            ),
            (
                Key::hmac("h", Algorithm::HS512, [3u8; 64]).unwrap(),
                DecodingKey::from_secret(&[3u8; 64]).unwrap(),
            ),
            (
                Key::from_private_pem(
                    "e",
                    Algorithm::ES256,
                    include_bytes!("../../tests/keys/es256.pem"),
                )
                .unwrap(),
                DecodingKey::from_ec_pem(include_bytes!("../../tests/keys/es256.pub.pem")).unwrap(),
            ),
            (
                Key::from_private_pem(
                    "e",
                    Algorithm::ES384,
                    include_bytes!("../../tests/keys/es384.pem"),
                )
                .unwrap(),
                DecodingKey::from_ec_pem(include_bytes!("../../tests/keys/es384.pub.pem")).unwrap(),
            ),
            (
                Key::from_private_pem(
                    "d",
                    Algorithm::EdDSA,
                    include_bytes!("../../tests/keys/ed25519.pem"),
                )
                .unwrap(),
                DecodingKey::from_ed_pem(include_bytes!("../../tests/keys/ed25519.pub.pem"))
                    .unwrap(),
            ),
            (
                Key::from_private_pem(
                    "r",
                    Algorithm::RS256,
                    include_bytes!("../../tests/keys/rs256.pem"),
                )
                .unwrap(),
                DecodingKey::from_rsa_pem(include_bytes!("../../tests/keys/rs256.pub.pem"))
                    .unwrap(),
            ),
            (
                Key::from_private_pem(
                    "r",
                    Algorithm::PS256,
                    include_bytes!("../../tests/keys/rs256.pem"),
                )
                .unwrap(),
                DecodingKey::from_rsa_pem(include_bytes!("../../tests/keys/rs256.pub.pem"))
                    .unwrap(),
            ),
        ]
    }

    /// Every kind of key is prepared, and agrees with jsonwebtoken's own
    /// verifier on good, altered, truncated and foreign signatures.
    #[test]
    fn prepared_keys_agree_with_the_backend() {
        let keys = test_keys();
        for (key, decoding) in &keys {
            let alg = key.algorithm();
            // The signing key's own verification half, and the public PEM's.
            assert!(!matches!(key.prepared, Prepared::Backend), "{alg:?}");
            let from_pem = Prepared::public(alg, decoding);
            let hmac = matches!(alg, Algorithm::HS256 | Algorithm::HS512);
            assert!(hmac || !matches!(from_pem, Prepared::Backend), "{alg:?}");
            let message = b"eyJhbGciOiJub25lIn0.eyJzdWIiOiI0MiJ9";
            let good = key.sign(message).unwrap();
            let mut altered = good.clone();
            altered[0] ^= 1;
            let truncated = good[..good.len() - 1].to_vec();
            let other = b"eyJhbGciOiJub25lIn0.eyJzdWIiOiI0MyJ9";
            for (msg, sig) in [
                (&message[..], &good),
                (&message[..], &altered),
                (&message[..], &truncated),
                (&other[..], &good),
            ] {
                let backend =
                    jsonwebtoken::crypto::verify(&URL_SAFE_NO_PAD.encode(sig), msg, decoding, alg)
                        .unwrap_or(false);
                assert_eq!(key.verify(msg, sig), backend, "{alg:?}");
                assert_eq!(key.prepared.verify(msg, sig), Some(backend), "{alg:?}");
                if !hmac {
                    assert_eq!(from_pem.verify(msg, sig), Some(backend), "{alg:?}");
                }
            }
            assert!(key.verify(message, &good), "{alg:?}");
        }
    }
}
