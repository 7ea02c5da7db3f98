//! Tokens of an outside identity provider, signed here: the tests' stand-in
//! for Auth0, Keycloak and the like when no provider runs (see `oidc.rs` for
//! a real one).
#![allow(dead_code)]

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

pub const ES256_PEM: &[u8] = include_bytes!("../keys/es256.pem");
pub const ES256_PUB_PEM: &[u8] = include_bytes!("../keys/es256.pub.pem");
pub const ES256_B_PEM: &[u8] = include_bytes!("../keys/es256-b.pem");
pub const RS256_PEM: &[u8] = include_bytes!("../keys/rs256.pem");
pub const RS256_PUB_PEM: &[u8] = include_bytes!("../keys/rs256.pub.pem");

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A Keycloak-shaped access token's claims: `sub`, `iss`, `aud`, times,
/// `scope`, roles in `realm_access.roles`, `azp`.
pub fn keycloak_claims(iss: &str, aud: &str, scope: &str, roles: &[&str]) -> Value {
    let now = now();
    json!({
        "exp": now + 300,
        "iat": now,
        "jti": "onrtac:3e1b7c2a-1f4d-4f7e-9d7e-000000000000",
        "iss": iss,
        "aud": aud,
        "sub": "f3a1c9e2-5b7d-4e2a-8c1f-9d0e6b4a2c11",
        "typ": "Bearer",
        "azp": "orders-web",
        "realm_access": { "roles": roles },
        "scope": scope,
        "client_id": "orders-web",
    })
}

/// `claims` signed with `alg` by `pem` under `kid`, `typ` in the header.
pub fn sign(alg: Algorithm, pem: &[u8], kid: &str, typ: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 => {
            EncodingKey::from_rsa_pem(pem).unwrap()
        }
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem).unwrap(),
        _ => EncodingKey::from_ec_pem(pem).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    header.typ = typ.map(str::to_owned);
    encode(&header, claims, &key).unwrap()
}

/// HS256 over `claims` with `secret` as the HMAC key (the algorithm-confusion
/// attack: a public key's bytes used as the secret).
pub fn sign_hs256(secret: &[u8], kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.into());
    encode(&header, claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
}
