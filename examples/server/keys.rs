//! The signing key: from `JWT_SECRET` or `JWT_PRIVATE_KEY_FILE`, or made up at
//! start when neither is set (a random HMAC secret, or a fresh key pair whose
//! public half the JWKS route serves). Generated keys live as long as the process.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use base64::Engine;
use tower_jwt_auth::{Algorithm, Key};
use zeroize::Zeroizing;

use crate::config::{ConfigError, KeySource};

/// The key, and a warning to print when it will not survive a restart.
pub struct SigningKey {
    /// The key that signs (and verifies) tokens.
    pub key: Key,
    /// Set when the key was generated.
    pub warning: Option<String>,
}

/// Builds the signing key the configuration asks for.
pub fn signing_key(
    alg: Algorithm,
    source: &KeySource,
    kid: Option<&str>,
) -> Result<SigningKey, ConfigError> {
    let err = |m: String| ConfigError(m);
    match source {
        KeySource::Secret(secret) => {
            let key = Key::hmac(kid.unwrap_or("main"), alg, secret.as_slice())
                .map_err(|e| err(format!("JWT_SECRET: {e}")))?;
            Ok(SigningKey { key, warning: None })
        }
        KeySource::PemFile(path) => {
            let pem = Zeroizing::new(std::fs::read(path).map_err(|e| {
                err(format!(
                    "JWT_PRIVATE_KEY_FILE: cannot read {}: {e}",
                    path.display()
                ))
            })?);
            let key = Key::from_private_pem(kid.unwrap_or("main"), alg, pem.as_slice()).map_err(|_| {
                err(format!(
                    "JWT_PRIVATE_KEY_FILE: {} is not a {alg:?} private key in PEM (PKCS#8; PKCS#1 for RSA)",
                    path.display()
                ))
            })?;
            Ok(SigningKey { key, warning: None })
        }
        KeySource::Generate => {
            let generated_kid = format!(
                "generated-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let kid = kid.unwrap_or(&generated_kid);
            let failed = |_| err(format!("could not generate a {alg:?} key"));
            let key = match alg {
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                    let mut secret = Zeroizing::new([0u8; 64]);
                    aws_lc_rs::rand::fill(secret.as_mut_slice()).map_err(failed)?;
                    let key =
                        Key::hmac(kid, alg, secret.as_slice()).map_err(|e| err(e.to_string()))?;
                    return Ok(SigningKey {
                        key,
                        warning: Some(
                            "JWT_SECRET is not set: signing with a random secret; tokens will not survive a restart"
                                .into(),
                        ),
                    });
                }
                _ => {
                    let pem = generate_pem(alg).map_err(failed)?;
                    Key::from_private_pem(kid, alg, pem.as_bytes())
                        .map_err(|e| err(e.to_string()))?
                }
            };
            Ok(SigningKey {
                key,
                warning: Some(format!(
                    "JWT_PRIVATE_KEY_FILE is not set: generated a {alg:?} key pair (kid {kid}, public half at /.well-known/jwks.json); tokens will not survive a restart"
                )),
            })
        }
    }
}

/// A new private key for `alg` as PKCS#8 PEM.
fn generate_pem(alg: Algorithm) -> Result<Zeroizing<String>, aws_lc_rs::error::Unspecified> {
    let der: Zeroizing<Vec<u8>> = Zeroizing::new(match alg {
        Algorithm::ES256 => EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)?
            .to_pkcs8v1()?
            .as_ref()
            .to_vec(),
        Algorithm::ES384 => EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING)?
            .to_pkcs8v1()?
            .as_ref()
            .to_vec(),
        Algorithm::EdDSA => Ed25519KeyPair::generate()?.to_pkcs8v1()?.as_ref().to_vec(),
        Algorithm::RS256 => {
            let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)?;
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> = pair.as_der()?;
            der.as_ref().to_vec()
        }
        _ => return Err(aws_lc_rs::error::Unspecified),
    });
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der.as_slice()));
    let mut pem = Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).map_err(|_| aws_lc_rs::error::Unspecified)?);
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(pem)
}
