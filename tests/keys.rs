//! Keys: rotation without logging anyone out, retirement that takes effect at
//! once in every clone, the JWKS (checked through jsonwebtoken's own decoder),
//! secrets kept out of `Debug`, and every bad key or setting a `ConfigError`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};
use tower_jwt_auth::{Algorithm, ConfigError, Jwt, Key, NoCustomClaims, TokenError, TokenKind};

const ES256_PEM: &[u8] = include_bytes!("keys/es256.pem");
const ES256_B_PEM: &[u8] = include_bytes!("keys/es256-b.pem");
const ES256_PUB: &[u8] = include_bytes!("keys/es256.pub.pem");
const ES384_PEM: &[u8] = include_bytes!("keys/es384.pem");
const ES384_PUB: &[u8] = include_bytes!("keys/es384.pub.pem");
const ED25519_PEM: &[u8] = include_bytes!("keys/ed25519.pem");
const ED25519_PUB: &[u8] = include_bytes!("keys/ed25519.pub.pem");
const RS256_PEM: &[u8] = include_bytes!("keys/rs256.pem");
const RS256_B_PEM: &[u8] = include_bytes!("keys/rs256-b.pem");
const RS256_PUB: &[u8] = include_bytes!("keys/rs256.pub.pem");

const SECRET: &[u8] = b"super-secret-hmac-key-0123456789-abcdef";
const USER: &str = "3f2b6c4e-8a61-4c43-9d1e-2a6f0b7c9e11";

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn access(jwt: &Jwt) -> String {
    jwt.issue_pair(USER, &NoCustomClaims).unwrap().access
}

fn valid(jwt: &Jwt, token: &str) -> Result<(), TokenError> {
    jwt.validate::<NoCustomClaims>(token, TokenKind::Access)
        .map(|_| ())
}

#[test]
fn rotation_keeps_old_tokens_until_the_key_is_retired_in_every_clone() {
    let jwt = Jwt::builder()
        .signing_key(Key::from_private_pem("A", Algorithm::ES256, ES256_PEM).unwrap())
        .build()
        .unwrap();
    let clone = jwt.clone();
    let by_a = access(&jwt);
    assert_eq!(kid_of(&by_a), "A");
    valid(&jwt, &by_a).unwrap();

    jwt.rotate_signing_key(Key::from_private_pem("B", Algorithm::ES256, ES256_B_PEM).unwrap())
        .unwrap();
    assert_eq!(jwt.signing_kid(), "B");
    assert_eq!(clone.signing_kid(), "B", "clones share the key set");
    let by_b = access(&clone);
    assert_eq!(kid_of(&by_b), "B");
    // Nobody is logged out by a rotation.
    valid(&jwt, &by_a).unwrap();
    valid(&clone, &by_a).unwrap();
    valid(&jwt, &by_b).unwrap();

    // The signing key cannot be retired; an unknown kid is not retired.
    assert!(!jwt.retire_key("B"));
    assert!(!jwt.retire_key("nope"));
    assert!(jwt.retire_key("A"));
    assert_eq!(valid(&jwt, &by_a), Err(TokenError::UnknownKey));
    assert_eq!(
        valid(&clone, &by_a),
        Err(TokenError::UnknownKey),
        "retired in every clone at once"
    );
    valid(&clone, &by_b).unwrap();
    assert!(!jwt.retire_key("A"), "already retired");
    assert!(
        jwt.jwks()
            .keys
            .iter()
            .all(|k| k.common.key_id.as_deref() != Some("A"))
    );
}

#[test]
fn rotation_refuses_a_kid_already_in_use() {
    let jwt = Jwt::builder().hs256("k1", [1u8; 32]).build().unwrap();
    let old = access(&jwt);
    // Reusing the signing kid would silently log everyone out.
    let same = Key::hmac("k1", Algorithm::HS256, [2u8; 32]).unwrap();
    assert_eq!(
        jwt.rotate_signing_key(same),
        Err(ConfigError::DuplicateKid("k1".into()))
    );
    valid(&jwt, &old).unwrap();
    jwt.rotate_signing_key(Key::hmac("k2", Algorithm::HS256, [2u8; 32]).unwrap())
        .unwrap();
    // And reusing a verification kid would replace a key that still verifies tokens.
    let again = Key::hmac("k1", Algorithm::HS256, [3u8; 32]).unwrap();
    assert_eq!(
        jwt.rotate_signing_key(again),
        Err(ConfigError::DuplicateKid("k1".into()))
    );
    valid(&jwt, &old).unwrap();
    let dup = Key::hmac("k2", Algorithm::HS256, [4u8; 32]).unwrap();
    assert!(matches!(
        jwt.add_verification_key(dup),
        Err(ConfigError::DuplicateKid(_))
    ));
}

#[test]
fn hmac_rotation_across_algorithms() {
    let jwt = Jwt::builder().hs256("h1", [1u8; 32]).build().unwrap();
    let old = access(&jwt);
    jwt.rotate_signing_key(Key::from_private_pem("e1", Algorithm::EdDSA, ED25519_PEM).unwrap())
        .unwrap();
    let new = access(&jwt);
    assert_eq!(kid_of(&new), "e1");
    valid(&jwt, &old).unwrap();
    valid(&jwt, &new).unwrap();
    assert!(jwt.retire_key("h1"));
    assert_eq!(valid(&jwt, &old), Err(TokenError::UnknownKey));
}

fn jwks_jwt() -> Jwt {
    Jwt::builder()
        .signing_key(Key::from_private_pem("es", Algorithm::ES256, ES256_PEM).unwrap())
        .verification_key(Key::from_public_pem("ed", Algorithm::EdDSA, ED25519_PUB).unwrap())
        .verification_key(Key::from_private_pem("rs", Algorithm::RS256, RS256_PEM).unwrap())
        .verification_key(Key::hmac("hs", Algorithm::HS256, SECRET).unwrap())
        .issuer("https://auth.example.com")
        .audience("api")
        .build()
        .unwrap()
}

#[test]
fn jwks_lists_public_keys_with_kid_alg_use_and_never_a_secret() {
    let jwt = jwks_jwt();
    let jwks = jwt.jwks();
    let text = serde_json::to_string(&jwks).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let keys = doc["keys"].as_array().unwrap();
    let mut seen: Vec<(&str, &str, &str)> = keys
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap(),
                k["alg"].as_str().unwrap(),
                k["kty"].as_str().unwrap(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("ed", "EdDSA", "OKP"),
            ("es", "ES256", "EC"),
            ("rs", "RS256", "RSA")
        ]
    );
    for k in keys {
        assert_eq!(k["use"], "sig");
        // Public halves only: no private members of any key type.
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(k.get(private).is_none(), "{private} in {k}");
        }
    }
    assert!(!text.contains("\"oct\""));
    assert!(!text.contains("\"hs\""));
    assert!(!text.contains(&URL_SAFE_NO_PAD.encode(SECRET)));
    assert!(!text.contains("super-secret"));
}

#[test]
fn tokens_verify_through_jsonwebtoken_and_the_published_jwk() {
    for (alg, pem) in [
        (Algorithm::ES256, ES256_PEM),
        (Algorithm::EdDSA, ED25519_PEM),
        (Algorithm::RS256, RS256_PEM),
    ] {
        let jwt = Jwt::builder()
            .signing_key(Key::from_private_pem("current", alg, pem).unwrap())
            .issuer("https://auth.example.com")
            .audience("api")
            .build()
            .unwrap();
        let pair = jwt.issue_pair(USER, &json!({"role": "admin"})).unwrap();
        // What a resource server elsewhere does: fetch the JWKS, pick the kid.
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(&serde_json::to_string(&jwt.jwks()).unwrap()).unwrap();
        let header = jsonwebtoken::decode_header(&pair.access).unwrap();
        assert_eq!(header.alg, alg);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = Validation::new(alg);
        validation.set_issuer(&["https://auth.example.com"]);
        validation.set_audience(&["api"]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(&pair.access, &key, &validation).unwrap();
        assert_eq!(data.claims["sub"], USER);
        assert_eq!(data.claims["token_type"], "access");
        assert_eq!(data.claims["role"], "admin");
        assert_eq!(data.claims["sid"], pair.session_id.to_string());
        // The refresh token says what it is in its header.
        let refresh = jsonwebtoken::decode::<Value>(&pair.refresh, &key, &validation).unwrap();
        assert_eq!(refresh.header.typ.as_deref(), Some("refresh+jwt"));
        assert_eq!(refresh.claims["token_type"], "refresh");
        // And another key's JWK does not verify it.
        let other = Key::from_private_pem("x", Algorithm::RS256, RS256_B_PEM).unwrap();
        let other = DecodingKey::from_jwk(other.public_jwk().unwrap()).unwrap();
        if alg == Algorithm::RS256 {
            assert!(jsonwebtoken::decode::<Value>(&pair.access, &other, &validation).is_err());
        }
    }
}

#[test]
fn a_key_from_a_published_jwk_verifies_our_tokens() {
    let issuer = jwks_jwt();
    let pair = issuer.issue_pair(USER, &NoCustomClaims).unwrap();
    let es = issuer.jwks().find("es").unwrap().clone();
    let verifier = Jwt::builder()
        .signing_key(Key::hmac("local", Algorithm::HS256, [5u8; 32]).unwrap())
        .verification_key(Key::from_jwk(&es).unwrap())
        .issuer("https://auth.example.com")
        .audience("api")
        .build()
        .unwrap();
    verifier
        .validate::<NoCustomClaims>(&pair.access, TokenKind::Access)
        .unwrap();
}

fn debug_is_clean(what: &str, debug: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!debug.contains(s), "{what} Debug leaks {s:?}: {debug}");
    }
}

#[test]
fn debug_never_shows_secrets_or_tokens() {
    let secret_text = std::str::from_utf8(SECRET).unwrap();
    let as_bytes = format!("{:?}", &SECRET[..6])
        .trim_end_matches(']')
        .to_owned(); // "[115, 117, ..."
    let b64_secret = URL_SAFE_NO_PAD.encode(SECRET);
    let pem_lines: Vec<String> = [ES256_PEM, RS256_PEM, ED25519_PEM]
        .iter()
        .flat_map(|pem| {
            std::str::from_utf8(pem)
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::to_owned)
        })
        .collect();
    let mut secrets: Vec<&str> = vec![secret_text, "super-secret", &as_bytes, &b64_secret];
    secrets.extend(pem_lines.iter().map(|l| &l[..24]));

    let hmac = Key::hmac("hs", Algorithm::HS256, SECRET).unwrap();
    debug_is_clean("Key", &format!("{hmac:?}"), &secrets);
    for (alg, pem) in [
        (Algorithm::ES256, ES256_PEM),
        (Algorithm::RS256, RS256_PEM),
        (Algorithm::EdDSA, ED25519_PEM),
    ] {
        let key = Key::from_private_pem("k", alg, pem).unwrap();
        debug_is_clean("Key", &format!("{key:?}"), &secrets);
        debug_is_clean("Key", &format!("{key:#?}"), &secrets);
    }
    let builder = Jwt::builder()
        .signing_key(hmac.clone())
        .verification_key(Key::from_private_pem("rs", Algorithm::RS256, RS256_PEM).unwrap());
    debug_is_clean("JwtBuilder", &format!("{builder:?}"), &secrets);
    let jwt = builder.build().unwrap();
    debug_is_clean("Jwt", &format!("{jwt:?}"), &secrets);
    assert!(format!("{jwt:?}").contains("hs"), "kids are shown");

    let pair = jwt.issue_pair(USER, &json!({"role": "admin"})).unwrap();
    let mut with_tokens = secrets.clone();
    for t in [&pair.access, &pair.refresh] {
        with_tokens.push(t);
        with_tokens.extend(t.split('.'));
    }
    debug_is_clean("TokenPair", &format!("{pair:?}"), &with_tokens);
    let claims = jwt
        .validate::<Value>(&pair.access, TokenKind::Access)
        .unwrap();
    debug_is_clean("Claims", &format!("{claims:?}"), &with_tokens);
    // Errors name kids, never keys.
    let e = Key::hmac("short", Algorithm::HS256, &SECRET[..20]).unwrap_err();
    debug_is_clean("ConfigError", &format!("{e:?} {e}"), &secrets);
}

#[test]
fn short_hmac_secrets_refuse_to_build() {
    for (alg, min) in [
        (Algorithm::HS256, 32),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        let err = Key::hmac("k", alg, vec![7u8; min - 1]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::ShortSecret {
                kid: "k".into(),
                alg,
                min
            }
        );
        Key::hmac("k", alg, vec![7u8; min]).unwrap();
        assert!(Key::hmac("k", alg, []).is_err());
    }
    // The builder shorthand reports it at build(), not by panicking.
    assert!(matches!(
        Jwt::builder().hs256("k", b"short").build(),
        Err(ConfigError::ShortSecret { .. })
    ));
}

#[test]
fn keys_that_do_not_fit_their_algorithm_refuse_to_build() {
    let mismatch = |r: Result<Key, ConfigError>| matches!(r, Err(ConfigError::KeyMismatch { .. }));
    // Private keys.
    assert!(
        mismatch(Key::from_private_pem("k", Algorithm::ES256, ES384_PEM)),
        "P-384 as ES256"
    );
    assert!(
        mismatch(Key::from_private_pem("k", Algorithm::ES384, ES256_PEM)),
        "P-256 as ES384"
    );
    assert!(
        mismatch(Key::from_private_pem("k", Algorithm::ES256, RS256_PEM)),
        "RSA as ES256"
    );
    assert!(
        mismatch(Key::from_private_pem("k", Algorithm::EdDSA, ES256_PEM)),
        "EC as EdDSA"
    );
    assert!(
        mismatch(Key::from_private_pem("k", Algorithm::RS256, ES256_PEM)),
        "EC as RS256"
    );
    assert!(
        mismatch(Key::from_private_pem("k", Algorithm::ES256, ED25519_PEM)),
        "Ed25519 as ES256"
    );
    assert!(
        mismatch(Key::from_private_pem("k", Algorithm::HS256, RS256_PEM)),
        "a PEM as HMAC"
    );
    assert!(
        mismatch(Key::from_private_pem("k", Algorithm::ES256, ES256_PUB)),
        "a public PEM to sign"
    );
    // Public keys.
    assert!(
        mismatch(Key::from_public_pem("k", Algorithm::ES256, ES384_PUB)),
        "public P-384 as ES256"
    );
    assert!(
        mismatch(Key::from_public_pem("k", Algorithm::ES256, RS256_PUB)),
        "public RSA as ES256"
    );
    assert!(
        mismatch(Key::from_public_pem("k", Algorithm::EdDSA, ES256_PUB)),
        "public EC as EdDSA"
    );
    assert!(
        mismatch(Key::from_public_pem("k", Algorithm::RS256, ED25519_PUB)),
        "public Ed25519 as RS256"
    );
    assert!(
        mismatch(Key::from_public_pem("k", Algorithm::HS256, ES256_PUB)),
        "public key as HMAC"
    );
    // HMAC constructor with an asymmetric algorithm.
    assert!(mismatch(Key::hmac("k", Algorithm::ES256, [1u8; 32])));
    // Garbage of every shape.
    let garbage: [&[u8]; 6] = [
        b"",
        b"not a pem",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\n",
        &[0xff, 0xfe, 0x00, 0x2d, 0x2d],
    ];
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::EdDSA,
    ] {
        for g in garbage {
            assert!(
                mismatch(Key::from_private_pem("k", alg, g)),
                "{alg:?} private {g:?}"
            );
            assert!(
                mismatch(Key::from_public_pem("k", alg, g)),
                "{alg:?} public {g:?}"
            );
        }
    }
}

#[test]
fn weak_or_misused_jwks_refuse_to_build() {
    let good = Key::from_private_pem("rs", Algorithm::RS256, RS256_PEM).unwrap();
    let jwk = serde_json::to_value(good.public_jwk().unwrap()).unwrap();
    let build = |v: &Value| Key::from_jwk(&serde_json::from_value::<Jwk>(v.clone()).unwrap());
    build(&jwk).unwrap();
    let mut small = jwk.clone();
    small["n"] = Value::from(URL_SAFE_NO_PAD.encode([0xc5u8; 128])); // 1024 bits
    assert!(
        matches!(build(&small), Err(ConfigError::KeyMismatch { .. })),
        "RSA under 2048 bits"
    );
    let mut huge = jwk.clone();
    huge["n"] = Value::from(URL_SAFE_NO_PAD.encode([0xc5u8; 1025])); // 8200 bits
    assert!(
        matches!(build(&huge), Err(ConfigError::KeyMismatch { .. })),
        "RSA over 8192 bits"
    );
    let mut enc = jwk.clone();
    enc["use"] = Value::from("enc");
    assert!(matches!(build(&enc), Err(ConfigError::KeyMismatch { .. })));
    let mut ops = jwk.clone();
    ops.as_object_mut().unwrap().remove("use");
    ops["key_ops"] = json!(["encrypt", "wrapKey"]);
    assert!(matches!(build(&ops), Err(ConfigError::KeyMismatch { .. })));
    ops["key_ops"] = json!(["verify"]);
    build(&ops).unwrap();
    let mut no_kid = jwk.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    assert_eq!(build(&no_kid).unwrap_err(), ConfigError::BadKid);
    let mut no_alg = jwk.clone();
    no_alg.as_object_mut().unwrap().remove("alg");
    assert!(build(&no_alg).is_err());
    let mut wrong_alg = jwk;
    wrong_alg["alg"] = Value::from("ES256");
    assert!(matches!(
        build(&wrong_alg),
        Err(ConfigError::KeyMismatch { .. })
    ));

    let ec = Key::from_private_pem("ec", Algorithm::ES256, ES256_PEM).unwrap();
    let ec = serde_json::to_value(ec.public_jwk().unwrap()).unwrap();
    build(&ec).unwrap();
    let mut short_x = ec.clone();
    short_x["x"] = Value::from(URL_SAFE_NO_PAD.encode([1u8; 31]));
    assert!(matches!(
        build(&short_x),
        Err(ConfigError::KeyMismatch { .. })
    ));
    let mut wrong_curve = ec;
    wrong_curve["crv"] = Value::from("P-384");
    assert!(matches!(
        build(&wrong_curve),
        Err(ConfigError::KeyMismatch { .. })
    ));
    // A symmetric JWK is never a verification key from outside.
    let oct =
        json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode([1u8; 32]), "alg": "HS256", "kid": "o"});
    assert!(build(&oct).is_err());
}

#[test]
fn bad_settings_are_config_errors() {
    let key = || Key::hmac("k", Algorithm::HS256, [1u8; 32]).unwrap();
    let lifetime = |r: Result<Jwt, ConfigError>| matches!(r, Err(ConfigError::BadLifetime(_)));
    assert!(lifetime(
        Jwt::builder()
            .signing_key(key())
            .access_ttl(Duration::ZERO)
            .build()
    ));
    assert!(lifetime(
        Jwt::builder()
            .signing_key(key())
            .refresh_ttl(Duration::ZERO)
            .build()
    ));
    assert!(lifetime(
        Jwt::builder()
            .signing_key(key())
            .session_max_age(Duration::ZERO)
            .build()
    ));
    // Under a second rounds to zero: still an error.
    assert!(lifetime(
        Jwt::builder()
            .signing_key(key())
            .access_ttl(Duration::from_millis(500))
            .build()
    ));
    assert!(lifetime(
        Jwt::builder().signing_key(key()).max_token_size(10).build()
    ));
    // Key ids.
    assert_eq!(
        Key::hmac("", Algorithm::HS256, [1u8; 32]).unwrap_err(),
        ConfigError::BadKid
    );
    assert_eq!(
        Key::hmac("x".repeat(129), Algorithm::HS256, [1u8; 32]).unwrap_err(),
        ConfigError::BadKid
    );
    assert_eq!(
        Key::from_private_pem("", Algorithm::ES256, ES256_PEM).unwrap_err(),
        ConfigError::BadKid
    );
    assert_eq!(
        Key::from_public_pem("", Algorithm::ES256, ES256_PUB).unwrap_err(),
        ConfigError::BadKid
    );
    let dup = Jwt::builder()
        .signing_key(key())
        .verification_key(Key::from_public_pem("k", Algorithm::ES256, ES256_PUB).unwrap())
        .build();
    assert_eq!(dup.unwrap_err(), ConfigError::DuplicateKid("k".into()));
    let dup2 = Jwt::builder()
        .signing_key(key())
        .verification_key(Key::from_public_pem("v", Algorithm::ES256, ES256_PUB).unwrap())
        .verification_key(Key::from_public_pem("v", Algorithm::EdDSA, ED25519_PUB).unwrap())
        .build();
    assert_eq!(dup2.unwrap_err(), ConfigError::DuplicateKid("v".into()));
    // No key that can sign.
    assert_eq!(
        Jwt::builder().build().unwrap_err(),
        ConfigError::NoSigningKey
    );
    let public_only = Key::from_public_pem("p", Algorithm::ES256, ES256_PUB).unwrap();
    assert_eq!(
        Jwt::builder().signing_key(public_only).build().unwrap_err(),
        ConfigError::NoSigningKey
    );
}

#[test]
fn key_verify_is_pinned_to_the_key_algorithm() {
    let es = Key::from_private_pem("es", Algorithm::ES256, ES256_PEM).unwrap();
    let msg = b"header.payload";
    let sig = es.sign(msg).unwrap();
    assert_eq!(sig.len(), 64, "ES256 signatures are raw r||s");
    assert!(es.verify(msg, &sig));
    assert!(es.verification_only().verify(msg, &sig));
    assert!(!es.verify(b"header.payloaD", &sig));
    assert!(!es.verify(msg, &[]));
    assert!(!es.verify(msg, &[0u8; 4096]));
    // The public key bytes as an HMAC secret (alg confusion) verify nothing.
    let confused = Key::hmac("es", Algorithm::HS256, ES256_PUB).unwrap();
    let mac = confused.sign(msg).unwrap();
    assert!(!es.verify(msg, &mac));
    assert!(es.verification_only().sign(msg).is_none());
}

/// Key changes are serialized: concurrent additions are never lost.
#[test]
fn concurrent_key_changes_are_not_lost() {
    let jwt = tower_jwt_auth::Jwt::builder()
        .signing_key(Key::hmac("s", Algorithm::HS256, [1u8; 32]).unwrap())
        .build()
        .unwrap();
    let pem = include_str!("keys/es256.pub.pem");
    std::thread::scope(|scope| {
        for t in 0..8 {
            let jwt = jwt.clone();
            scope.spawn(move || {
                for i in 0..25 {
                    let key =
                        Key::from_public_pem(format!("k{t}-{i}"), Algorithm::ES256, pem).unwrap();
                    jwt.add_verification_key(key).unwrap();
                }
            });
        }
    });
    let jwks = jwt.jwks();
    assert_eq!(jwks.keys.len(), 200, "every concurrent addition is kept");
}

/// Keys as `openssl ecparam -genkey` (SEC1) and `openssl genrsa -traditional`
/// (PKCS#1) write them sign and verify, and a SEC1 key of the wrong curve is
/// still refused.
#[test]
fn sec1_and_pkcs1_private_keys_are_accepted() {
    for (file, alg) in [
        ("es256-sec1.pem", Algorithm::ES256),
        ("es384-sec1.pem", Algorithm::ES384),
        ("rs256-pkcs1.pem", Algorithm::RS256),
    ] {
        let pem =
            std::fs::read(format!("{}/tests/keys/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let key = Key::from_private_pem("k", alg, &pem).unwrap_or_else(|e| panic!("{file}: {e}"));
        let jwt = Jwt::builder().signing_key(key).build().unwrap();
        let token = access(&jwt);
        assert_eq!(valid(&jwt, &token), Ok(()), "{file}");
        assert_eq!(jwt.jwks().keys.len(), 1, "{file}: published");
    }
    let p384 = std::fs::read(format!(
        "{}/tests/keys/es384-sec1.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert!(matches!(
        Key::from_private_pem("k", Algorithm::ES256, &p384),
        Err(ConfigError::KeyMismatch { .. })
    ));
}
