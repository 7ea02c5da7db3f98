//! Token validation from arbitrary bytes: never panics; anything that validates
//! must be a token this configuration signed.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tower_jwt_auth::{Jwt, NoCustomClaims, TokenKind};

static JWT: OnceLock<Jwt> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let jwt = JWT.get_or_init(common::jwt);
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    for kind in [TokenKind::Access, TokenKind::Refresh] {
        if let Ok(claims) = jwt.validate::<NoCustomClaims>(token, kind) {
            // Only a genuinely signed token gets here: the fuzzer cannot forge HS256.
            assert_eq!(claims.kind(), kind);
        }
        let _ = jwt.validate::<serde_json_value::Value>(token, kind);
    }
});

mod serde_json_value {
    /// Any custom claims: exercises the second parse of the payload.
    pub type Value = std::collections::BTreeMap<String, IgnoredValue>;
    #[derive(Debug)]
    pub struct IgnoredValue;
    impl<'de> serde::Deserialize<'de> for IgnoredValue {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            serde::de::IgnoredAny::deserialize(d).map(|_| IgnoredValue)
        }
    }
}
