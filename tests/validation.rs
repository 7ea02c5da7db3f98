//! Every validation rule of DESIGN.md ("Validation, exactly"), each proven by a
//! hand-crafted hostile token that the rule, and only the rule, refuses.
//!
//! Each test first shows the same token without the defect validating (so the
//! crafting is right), then asserts the exact [`TokenError`]: removing a rule
//! makes its test fail, either because the token is accepted or because a later
//! check answers with another reason. Time is pinned with `Jwt::validate_at`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};
use tower_jwt_auth::{
    Algorithm, Claims, IssueError, Jwt, Key, NoCustomClaims, TokenError, TokenKind,
};

const NOW: u64 = 1_800_000_000;
const SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
const JTI: &str = "7d3f1c9e-2b4a-4e8f-9a6b-1c2d3e4f5a6b";
const SID: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
const ISS: &str = "https://auth.example.com";
const AUD: &str = "api";

const RS256_PEM: &[u8] = include_bytes!("keys/rs256.pem");
const RS256_PUB: &[u8] = include_bytes!("keys/rs256.pub.pem");
const ES256_PEM: &[u8] = include_bytes!("keys/es256.pem");
const ES256_PUB: &[u8] = include_bytes!("keys/es256.pub.pem");

use Algorithm::{ES256, HS256, HS384, RS256, RS512};
use TokenKind::{Access, Refresh};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `b64(header).b64(payload).sig` signed with `key` under `alg`.
fn sign_with(alg: Algorithm, key: &EncodingKey, header: &str, payload: &str) -> String {
    sign_input(alg, key, &format!("{}.{}", b64(header), b64(payload)))
}

/// Signs an already encoded signing input as it is (for non-canonical encodings).
fn sign_input(alg: Algorithm, key: &EncodingKey, input: &str) -> String {
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
    format!("{input}.{sig}")
}

fn hmac_key() -> EncodingKey {
    EncodingKey::from_secret(SECRET).unwrap()
}

/// HS256 with the configured secret: a token only the header/payload can spoil.
fn hs(header: &str, payload: &str) -> String {
    sign_with(HS256, &hmac_key(), header, payload)
}

fn header(kind: TokenKind) -> String {
    let typ = match kind {
        Access => "at+jwt",
        Refresh => "refresh+jwt",
    };
    json!({"alg": "HS256", "typ": typ, "kid": "hs"}).to_string()
}

/// A valid claim set for `kind` at `NOW`, with `changes` applied (`null` removes).
fn claims(kind: TokenKind, changes: Value) -> String {
    let mut c = json!({
        "sub": "3f2b6c4e-8a61-4c43-9d1e-2a6f0b7c9e11",
        "token_type": if kind == Access { "access" } else { "refresh" },
        "jti": JTI,
        "sid": SID,
        "iat": NOW - 10,
        "exp": NOW + 300,
    });
    let (Value::Object(map), Value::Object(changes)) = (&mut c, changes) else {
        panic!("objects")
    };
    for (k, v) in changes {
        if v.is_null() {
            map.remove(&k);
        } else {
            map.insert(k, v);
        }
    }
    c.to_string()
}

fn token(kind: TokenKind, changes: Value) -> String {
    hs(&header(kind), &claims(kind, changes))
}

fn jwt() -> Jwt {
    Jwt::builder()
        .signing_key(Key::hmac("hs", HS256, SECRET).unwrap())
        .build()
        .unwrap()
}

fn jwt_iss_aud() -> Jwt {
    Jwt::builder()
        .signing_key(Key::hmac("hs", HS256, SECRET).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap()
}

fn check(jwt: &Jwt, token: &str, kind: TokenKind) -> Result<Claims, TokenError> {
    jwt.validate_at::<NoCustomClaims>(token, kind, NOW)
}

fn refused(jwt: &Jwt, token: &str, kind: TokenKind) -> TokenError {
    check(jwt, token, kind).expect_err("the token must be refused")
}

#[test]
fn crafted_baseline_validates() {
    let jwt = jwt();
    let c = check(&jwt, &token(Access, json!({})), Access).unwrap();
    assert_eq!(c.jti().to_string(), JTI);
    assert_eq!(c.session_id().to_string(), SID);
    check(&jwt, &token(Refresh, json!({})), Refresh).unwrap();
    // And tokens the crate mints itself.
    let pair = jwt.issue_pair("u1", &NoCustomClaims).unwrap();
    jwt.validate::<NoCustomClaims>(&pair.access, Access)
        .unwrap();
    jwt.validate::<NoCustomClaims>(&pair.refresh, Refresh)
        .unwrap();
}

#[test]
fn alg_none_in_any_case_is_refused() {
    let jwt = jwt();
    let payload = claims(Access, json!({}));
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = json!({"alg": alg, "typ": "at+jwt", "kid": "hs"}).to_string();
        // Even carrying a signature the pinned key would accept: `alg` must name the key's algorithm.
        assert_eq!(
            refused(&jwt, &hs(&h, &payload), Access),
            TokenError::Algorithm,
            "{alg}"
        );
        // The classic forms: any signature, or none at all.
        let input = format!("{}.{}", b64(&h), b64(&payload));
        assert_eq!(
            refused(&jwt, &format!("{input}.AAAA"), Access),
            TokenError::Algorithm,
            "{alg}"
        );
        assert_eq!(
            refused(&jwt, &format!("{input}."), Access),
            TokenError::Malformed,
            "{alg}"
        );
    }
    // No `alg` at all.
    let h = json!({"typ": "at+jwt", "kid": "hs"}).to_string();
    assert_eq!(
        refused(&jwt, &hs(&h, &payload), Access),
        TokenError::Algorithm
    );
}

#[test]
fn alg_confusion_public_key_as_hmac_secret_is_refused() {
    for (alg, pem, public) in [(RS256, RS256_PEM, RS256_PUB), (ES256, ES256_PEM, ES256_PUB)] {
        let jwt = Jwt::builder()
            .signing_key(Key::from_private_pem("asym", alg, pem).unwrap())
            .build()
            .unwrap();
        let payload = claims(Access, json!({}));
        let honest = json!({"alg": format!("{alg:?}"), "typ": "at+jwt", "kid": "asym"}).to_string();
        let enc = match alg {
            RS256 => EncodingKey::from_rsa_pem(pem).unwrap(),
            _ => EncodingKey::from_ec_pem(pem).unwrap(),
        };
        check(&jwt, &sign_with(alg, &enc, &honest, &payload), Access).unwrap();
        // The attacker knows the public key: HS256 keyed with its PEM bytes (and its
        // DER-less, trimmed variant), presented under the asymmetric key's kid.
        let h = json!({"alg": "HS256", "typ": "at+jwt", "kid": "asym"}).to_string();
        let trimmed = String::from_utf8_lossy(public).trim().to_owned();
        for secret in [public, trimmed.as_bytes()] {
            let forged = sign_with(
                HS256,
                &EncodingKey::from_secret(secret).unwrap(),
                &h,
                &payload,
            );
            assert_eq!(
                refused(&jwt, &forged, Access),
                TokenError::Algorithm,
                "{alg:?}"
            );
        }
    }
}

#[test]
fn another_algorithm_of_the_same_family_is_refused() {
    let jwt = jwt();
    let payload = claims(Access, json!({}));
    let h = json!({"alg": "HS384", "typ": "at+jwt", "kid": "hs"}).to_string();
    let t = sign_with(HS384, &hmac_key(), &h, &payload);
    assert_eq!(refused(&jwt, &t, Access), TokenError::Algorithm);
    // The header says HS256 but the MAC is HS384: the pinned algorithm decides.
    let h256 = header(Access);
    let t = sign_with(HS384, &hmac_key(), &h256, &payload);
    assert_eq!(refused(&jwt, &t, Access), TokenError::Signature);

    let rsa = Jwt::builder()
        .signing_key(Key::from_private_pem("rs", RS256, RS256_PEM).unwrap())
        .build()
        .unwrap();
    let enc = EncodingKey::from_rsa_pem(RS256_PEM).unwrap();
    let ok = json!({"alg": "RS256", "typ": "at+jwt", "kid": "rs"}).to_string();
    check(&rsa, &sign_with(RS256, &enc, &ok, &payload), Access).unwrap();
    let h = json!({"alg": "RS512", "typ": "at+jwt", "kid": "rs"}).to_string();
    assert_eq!(
        refused(&rsa, &sign_with(RS512, &enc, &h, &payload), Access),
        TokenError::Algorithm
    );
}

#[test]
fn refresh_is_not_access_and_access_is_not_refresh() {
    let jwt = jwt();
    let refresh = token(Refresh, json!({}));
    let access = token(Access, json!({}));
    assert_eq!(refused(&jwt, &refresh, Access), TokenError::WrongType);
    assert_eq!(refused(&jwt, &access, Refresh), TokenError::WrongType);
    // Header and claim disagree: each on its own is enough to refuse.
    let typ_says_access = hs(&header(Access), &claims(Refresh, json!({})));
    assert_eq!(
        refused(&jwt, &typ_says_access, Access),
        TokenError::WrongType
    );
    assert_eq!(
        refused(&jwt, &typ_says_access, Refresh),
        TokenError::WrongType
    );
    let claim_says_access = hs(&header(Refresh), &claims(Access, json!({})));
    assert_eq!(
        refused(&jwt, &claim_says_access, Access),
        TokenError::WrongType
    );
    assert_eq!(
        refused(&jwt, &claim_says_access, Refresh),
        TokenError::WrongType
    );
    // No typ header, no token_type claim, a generic typ.
    let no_typ = hs(
        &json!({"alg": "HS256", "kid": "hs"}).to_string(),
        &claims(Access, json!({})),
    );
    assert_eq!(refused(&jwt, &no_typ, Access), TokenError::WrongType);
    let jwt_typ = hs(
        &json!({"alg": "HS256", "typ": "JWT", "kid": "hs"}).to_string(),
        &claims(Access, json!({})),
    );
    assert_eq!(refused(&jwt, &jwt_typ, Access), TokenError::WrongType);
    let no_claim = token(Access, json!({"token_type": null}));
    assert_eq!(refused(&jwt, &no_claim, Access), TokenError::WrongType);
    // RFC 7515 §4.1.9: the media type may carry its `application/` prefix, any case.
    let long_typ = hs(
        &json!({"alg": "HS256", "typ": "application/AT+JWT", "kid": "hs"}).to_string(),
        &claims(Access, json!({})),
    );
    check(&jwt, &long_typ, Access).unwrap();
}

#[test]
fn expiry_is_required_and_a_token_is_dead_at_exp() {
    let jwt = jwt();
    let t = token(Access, json!({"exp": NOW + 1}));
    check(&jwt, &t, Access).unwrap();
    assert_eq!(
        jwt.validate_at::<NoCustomClaims>(&t, Access, NOW + 1)
            .unwrap_err(),
        TokenError::Expired
    );
    let t = token(Access, json!({"exp": NOW}));
    assert_eq!(refused(&jwt, &t, Access), TokenError::Expired);
    let t = token(Access, json!({"exp": NOW - 1}));
    assert_eq!(refused(&jwt, &t, Access), TokenError::Expired);
    let t = token(Access, json!({"exp": 0}));
    assert_eq!(refused(&jwt, &t, Access), TokenError::Expired);
    assert_eq!(
        refused(&jwt, &token(Access, json!({"exp": null})), Access),
        TokenError::MissingExpiry
    );
}

#[test]
fn exp_must_be_a_number() {
    let jwt = jwt();
    for bad in [
        json!("1800000300"),
        json!(-1),
        json!(true),
        json!([NOW + 300]),
        json!({"n": 1}),
    ] {
        assert_eq!(
            refused(&jwt, &token(Access, json!({"exp": bad})), Access),
            TokenError::Json,
            "{bad}"
        );
    }
    // Fractions are allowed by RFC 7519 §2 and floored.
    check(
        &jwt,
        &token(Access, json!({"exp": (NOW + 300) as f64 + 0.5})),
        Access,
    )
    .unwrap();
    assert_eq!(
        refused(
            &jwt,
            &token(Access, json!({"exp": NOW as f64 + 0.9})),
            Access
        ),
        TokenError::Expired
    );
}

#[test]
fn leeway_accepts_within_its_bound_only() {
    let jwt = Jwt::builder()
        .signing_key(Key::hmac("hs", HS256, SECRET).unwrap())
        .leeway(Duration::from_secs(30))
        .build()
        .unwrap();
    check(&jwt, &token(Access, json!({"exp": NOW - 29})), Access).unwrap();
    assert_eq!(
        refused(&jwt, &token(Access, json!({"exp": NOW - 30})), Access),
        TokenError::Expired
    );
    check(&jwt, &token(Access, json!({"nbf": NOW + 30})), Access).unwrap();
    assert_eq!(
        refused(&jwt, &token(Access, json!({"nbf": NOW + 31})), Access),
        TokenError::NotYetValid
    );
    check(&jwt, &token(Access, json!({"iat": NOW + 30})), Access).unwrap();
    assert_eq!(
        refused(&jwt, &token(Access, json!({"iat": NOW + 31})), Access),
        TokenError::IssuedInFuture
    );
}

#[test]
fn nbf_in_the_future_is_refused() {
    let jwt = jwt();
    check(&jwt, &token(Access, json!({"nbf": NOW})), Access).unwrap();
    assert_eq!(
        refused(&jwt, &token(Access, json!({"nbf": NOW + 1})), Access),
        TokenError::NotYetValid
    );
    assert_eq!(
        refused(&jwt, &token(Access, json!({"nbf": "0"})), Access),
        TokenError::Json
    );
}

#[test]
fn iat_in_the_future_is_refused_and_iat_is_required() {
    let jwt = jwt();
    check(&jwt, &token(Access, json!({"iat": NOW})), Access).unwrap();
    assert_eq!(
        refused(&jwt, &token(Access, json!({"iat": NOW + 1})), Access),
        TokenError::IssuedInFuture
    );
    assert_eq!(
        refused(&jwt, &token(Access, json!({"iat": null})), Access),
        TokenError::MissingClaim
    );
}

#[test]
fn issuer_is_required_when_configured() {
    let jwt = jwt_iss_aud();
    check(
        &jwt,
        &token(Access, json!({"iss": ISS, "aud": AUD})),
        Access,
    )
    .unwrap();
    assert_eq!(
        refused(&jwt, &token(Access, json!({"aud": AUD})), Access),
        TokenError::Issuer
    );
    let wrong = token(
        Access,
        json!({"iss": "https://evil.example.com", "aud": AUD}),
    );
    assert_eq!(refused(&jwt, &wrong, Access), TokenError::Issuer);
    let case = token(
        Access,
        json!({"iss": "HTTPS://AUTH.EXAMPLE.COM", "aud": AUD}),
    );
    assert_eq!(refused(&jwt, &case, Access), TokenError::Issuer);
    assert_eq!(
        refused(&jwt, &token(Access, json!({"iss": 1, "aud": AUD})), Access),
        TokenError::Json
    );
    // Without a configured issuer, any `iss` is fine.
    check(
        &self::jwt(),
        &token(Access, json!({"iss": "anyone"})),
        Access,
    )
    .unwrap();
}

#[test]
fn audience_is_required_when_configured() {
    let jwt = jwt_iss_aud();
    check(
        &jwt,
        &token(Access, json!({"iss": ISS, "aud": [ "other", AUD ]})),
        Access,
    )
    .unwrap();
    assert_eq!(
        refused(&jwt, &token(Access, json!({"iss": ISS})), Access),
        TokenError::Audience
    );
    assert_eq!(
        refused(
            &jwt,
            &token(Access, json!({"iss": ISS, "aud": "other"})),
            Access
        ),
        TokenError::Audience
    );
    assert_eq!(
        refused(&jwt, &token(Access, json!({"iss": ISS, "aud": []})), Access),
        TokenError::Audience
    );
    assert_eq!(
        refused(
            &jwt,
            &token(Access, json!({"iss": ISS, "aud": [1]})),
            Access
        ),
        TokenError::Json
    );
}

#[test]
fn an_audience_naming_someone_else_is_refused_when_none_is_configured() {
    // RFC 7519 §4.1.3: a recipient not named in a present `aud` must refuse.
    let jwt = jwt();
    assert_eq!(
        refused(&jwt, &token(Access, json!({"aud": "someone-else"})), Access),
        TokenError::Audience
    );
    assert_eq!(
        refused(&jwt, &token(Access, json!({"aud": []})), Access),
        TokenError::Audience
    );
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    let jwt = jwt();
    let payload = claims(Access, json!({}));
    let other = json!({"alg": "HS256", "typ": "at+jwt", "kid": "other"}).to_string();
    assert_eq!(
        refused(&jwt, &hs(&other, &payload), Access),
        TokenError::UnknownKey
    );
    let none = json!({"alg": "HS256", "typ": "at+jwt"}).to_string();
    assert_eq!(
        refused(&jwt, &hs(&none, &payload), Access),
        TokenError::UnknownKey
    );
    let empty = json!({"alg": "HS256", "typ": "at+jwt", "kid": ""}).to_string();
    assert_eq!(
        refused(&jwt, &hs(&empty, &payload), Access),
        TokenError::UnknownKey
    );
    let case = json!({"alg": "HS256", "typ": "at+jwt", "kid": "HS"}).to_string();
    assert_eq!(
        refused(&jwt, &hs(&case, &payload), Access),
        TokenError::UnknownKey
    );
    let number = json!({"alg": "HS256", "typ": "at+jwt", "kid": 1}).to_string();
    assert_eq!(
        refused(&jwt, &hs(&number, &payload), Access),
        TokenError::Json
    );
}

#[test]
fn keys_named_by_the_token_are_never_used() {
    let jwt = jwt();
    let payload = claims(Access, json!({}));
    let jwk = json!({"kty": "oct", "k": b64(SECRET), "kid": "hs"});
    for (name, value) in [
        ("jku", json!("https://evil.example.com/jwks.json")),
        ("x5u", json!("https://evil.example.com/cert.pem")),
        ("x5c", json!(["MIIB"])),
        ("jwk", jwk),
    ] {
        let mut h = json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs"});
        h[name] = value;
        assert_eq!(
            refused(&jwt, &hs(&h.to_string(), &payload), Access),
            TokenError::ExternalKey,
            "{name}"
        );
    }
}

#[test]
fn crit_is_refused_even_empty() {
    let jwt = jwt();
    let payload = claims(Access, json!({}));
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!("exp")] {
        let h = json!({"alg": "HS256", "typ": "at+jwt", "kid": "hs", "crit": crit, "exp": 1});
        assert_eq!(
            refused(&jwt, &hs(&h.to_string(), &payload), Access),
            TokenError::Critical,
            "{crit}"
        );
    }
}

#[test]
fn tampered_payload_and_spliced_signature_are_refused() {
    let jwt = jwt();
    let t = token(Access, json!({}));
    let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
    parts[1] = b64(claims(Access, json!({"sub": "admin"})));
    assert_eq!(
        refused(&jwt, &parts.join("."), Access),
        TokenError::Signature
    );
    // The signature of another valid token on this header and payload.
    let other = token(Access, json!({"sub": "admin"}));
    let spliced = format!(
        "{}.{}",
        t.rsplit_once('.').unwrap().0,
        other.rsplit_once('.').unwrap().1
    );
    check(&jwt, &other, Access).unwrap();
    assert_eq!(refused(&jwt, &spliced, Access), TokenError::Signature);
    // A signature made with another secret of the right length.
    let other_secret = EncodingKey::from_secret(&[9u8; 32]).unwrap();
    let forged = sign_with(
        HS256,
        &other_secret,
        &header(Access),
        &claims(Access, json!({})),
    );
    assert_eq!(refused(&jwt, &forged, Access), TokenError::Signature);
    // A truncated or extended MAC.
    let (input, sig) = t.rsplit_once('.').unwrap();
    assert_eq!(
        refused(&jwt, &format!("{input}.{}", &sig[..20]), Access),
        TokenError::Signature
    );
    assert_eq!(
        refused(&jwt, &format!("{input}.{sig}AAAA"), Access),
        TokenError::Signature
    );
}

#[test]
fn padded_base64_is_refused() {
    let jwt = jwt();
    let t = token(Access, json!({}));
    let parts: Vec<&str> = t.split('.').collect();
    // The 32-byte MAC encodes to 43 characters: standard base64 would add one '='.
    assert_eq!(parts[2].len() % 4, 3);
    assert_eq!(
        refused(&jwt, &format!("{t}="), Access),
        TokenError::Malformed
    );
    let padded = |s: &str| format!("{s}{}", "=".repeat((4 - s.len() % 4) % 4));
    let h = padded(parts[0]);
    let p = padded(parts[1]);
    if h != parts[0] {
        let input = format!("{h}.{}", parts[1]);
        assert_eq!(
            refused(&jwt, &sign_input(HS256, &hmac_key(), &input), Access),
            TokenError::Malformed
        );
    }
    if p != parts[1] {
        let input = format!("{}.{p}", parts[0]);
        assert_eq!(
            refused(&jwt, &sign_input(HS256, &hmac_key(), &input), Access),
            TokenError::Malformed
        );
    }
}

/// The same bytes with non-zero unused low bits in the last character.
fn with_trailing_bits(b64: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    assert!(b64.len() % 4 == 2 || b64.len() % 4 == 3, "no unused bits");
    let last = *b64.as_bytes().last().unwrap();
    let idx = ALPHABET.iter().position(|c| *c == last).unwrap();
    assert_eq!(idx & 1, 0, "canonical encodings have zero unused bits");
    format!("{}{}", &b64[..b64.len() - 1], ALPHABET[idx | 1] as char)
}

#[test]
fn non_canonical_base64_is_refused() {
    let jwt = jwt();
    // Pad the JSON with spaces until its encoding leaves unused bits.
    let mut payload = claims(Access, json!({}));
    while b64(&payload).len().is_multiple_of(4) {
        payload.push(' ');
    }
    let p = b64(&payload);
    let header = header(Access);
    check(
        &jwt,
        &sign_input(HS256, &hmac_key(), &format!("{}.{p}", b64(&header))),
        Access,
    )
    .unwrap();
    let bent = with_trailing_bits(&p);
    assert_eq!(URL_SAFE_NO_PAD.decode(&bent).ok(), None);
    // Signed as sent: only the encoding is wrong.
    let t = sign_input(HS256, &hmac_key(), &format!("{}.{bent}", b64(&header)));
    assert_eq!(refused(&jwt, &t, Access), TokenError::Base64);
    // The MAC (43 characters, 2 unused bits): same MAC bytes, another spelling.
    let t = token(Access, json!({}));
    let (input, sig) = t.rsplit_once('.').unwrap();
    assert_eq!(
        refused(
            &jwt,
            &format!("{input}.{}", with_trailing_bits(sig)),
            Access
        ),
        TokenError::Base64
    );
    // A length no encoding has (4n+1 characters), signed as sent.
    let mut odd = p.clone();
    while odd.len() % 4 != 1 {
        odd.push('A');
    }
    let t = sign_input(HS256, &hmac_key(), &format!("{}.{odd}", b64(&header)));
    assert_eq!(refused(&jwt, &t, Access), TokenError::Base64);
}

#[test]
fn characters_outside_base64url_are_refused() {
    let jwt = jwt();
    let t = token(Access, json!({}));
    let first_dot = t.find('.').unwrap();
    for bad in ['+', '/', '?', ' ', '\t', '\n', '%', '*', '\0', '='] {
        for at in [1, first_dot + 2, t.len() - 2] {
            let mut m = t.clone();
            m.insert(at, bad);
            assert_eq!(
                refused(&jwt, &m, Access),
                TokenError::Malformed,
                "{bad:?} at {at}"
            );
        }
    }
    // Standard base64 spelled with '+' and '/' instead of '-' and '_'.
    let std_alpha = t.replace('-', "+").replace('_', "/");
    if std_alpha != t {
        assert_eq!(refused(&jwt, &std_alpha, Access), TokenError::Malformed);
    }
}

#[test]
fn non_ascii_bytes_are_refused() {
    let jwt = jwt();
    let t = token(Access, json!({}));
    for bad in ["é", "\u{ff0e}", "\u{200b}", "\u{feff}", "Ａ"] {
        for at in [0, 5, t.len() / 2, t.len()] {
            let mut m = t.clone();
            m.insert_str(at, bad);
            assert_eq!(
                refused(&jwt, &m, Access),
                TokenError::Malformed,
                "{bad:?} at {at}"
            );
        }
    }
    // Non-ASCII inside the JSON (encoded) is fine: it is the text of a claim.
    check(&jwt, &token(Access, json!({"name": "Zoë"})), Access).unwrap();
}

#[test]
fn wrong_number_of_parts_and_empty_parts_are_refused() {
    let jwt = jwt();
    let t = token(Access, json!({}));
    let (h, rest) = t.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let cases = [
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "....".into(),
        h.into(),
        format!("{h}.{p}"),
        format!("{h}.{p}."),
        format!(".{p}.{s}"),
        format!("{h}..{s}"),
        format!("{t}."),
        format!("{t}.{s}"),
        // JWE compact serialization: five parts (the middle ones may be empty).
        format!("{h}.{p}.{s}.{s}.{s}"),
        format!("{h}..{p}.{s}.{s}"),
        format!("{h}.{s}"),
    ];
    for c in cases {
        assert_eq!(refused(&jwt, &c, Access), TokenError::Malformed, "{c}");
    }
}

#[test]
fn payloads_that_are_not_json_objects_are_refused() {
    let jwt = jwt();
    let h = header(Access);
    for payload in [
        "not json",
        "{",
        "{\"exp\":1}x",
        "[]",
        "[{\"exp\":1}]",
        "\"a string\"",
        "42",
        "null",
        "true",
        "",
    ] {
        if payload.is_empty() {
            continue; // An empty payload is an empty segment: malformed, tested above.
        }
        assert_eq!(
            refused(&jwt, &hs(&h, payload), Access),
            TokenError::Json,
            "{payload}"
        );
    }
    // The same for the header (the token cannot even name its key).
    let payload = claims(Access, json!({}));
    for header in ["not json", "[]", "\"HS256\"", "1", "null"] {
        assert_eq!(
            refused(&jwt, &hs(header, &payload), Access),
            TokenError::Json,
            "{header}"
        );
    }
    // Invalid UTF-8 inside the JSON.
    let input = format!("{}.{}", b64(&h), b64(b"{\"sub\":\"\xff\xfe\"}"));
    assert_eq!(
        refused(&jwt, &sign_input(HS256, &hmac_key(), &input), Access),
        TokenError::Json
    );
}

#[test]
fn duplicate_json_keys_are_refused() {
    let jwt = jwt();
    let payload = claims(Access, json!({}));
    let headers = [
        r#"{"alg":"HS256","alg":"HS256","typ":"at+jwt","kid":"hs"}"#,
        r#"{"alg":"HS256","typ":"at+jwt","typ":"at+jwt","kid":"hs"}"#,
        r#"{"alg":"HS256","typ":"at+jwt","kid":"hs","kid":"hs"}"#,
        r#"{"alg":"HS256","typ":"at+jwt","kid":"hs","x":1,"x":2}"#,
        r#"{"alg":"HS256","typ":"at+jwt","kid":"hs","\u0061lg":"HS256"}"#,
    ];
    for h in headers {
        assert_eq!(
            refused(&jwt, &hs(h, &payload), Access),
            TokenError::DuplicateKey,
            "{h}"
        );
    }
    let h = header(Access);
    let body = claims(Access, json!({"role": "user"}));
    check(&jwt, &hs(&h, &body), Access).unwrap();
    let strip = |s: &str| s[..s.len() - 1].to_owned();
    let duplicated = [
        format!(r#"{},"exp":{}}}"#, strip(&body), NOW + 999_999),
        format!(r#"{},"exp":{}}}"#, strip(&body), NOW + 300),
        format!(r#"{},"sub":"admin"}}"#, strip(&body)),
        format!(r#"{},"token_type":"access"}}"#, strip(&body)),
        format!(r#"{},"role":"admin"}}"#, strip(&body)),
        format!(r#"{},"\u0072ole":"admin"}}"#, strip(&body)),
        format!(r#"{},"\u0065xp":1}}"#, strip(&body)),
    ];
    for p in duplicated {
        assert_eq!(
            refused(&jwt, &hs(&h, &p), Access),
            TokenError::DuplicateKey,
            "{p}"
        );
    }
    // Many distinct unknown claims are fine; one repeat among them is not.
    let mut many: String = (0..500).map(|i| format!(r#""c{i}":{i},"#)).collect();
    let ok = format!("{{{many}{}", &body[1..]);
    check(&jwt, &hs(&h, &ok), Access).unwrap();
    many.push_str(r#""c250":0,"#);
    let dup = format!("{{{many}{}", &body[1..]);
    assert_eq!(
        refused(&jwt, &hs(&h, &dup), Access),
        TokenError::DuplicateKey
    );
}

#[test]
fn oversized_tokens_are_refused_before_decoding_and_the_cap_is_configurable() {
    let jwt = jwt();
    // A well-formed, correctly signed token just over the default 8 KiB cap.
    let mut filler = String::new();
    let mut t = token(Access, json!({"f": filler}));
    while t.len() <= 8 * 1024 {
        filler.push_str("xxxxxxxxxxxxxxxx");
        t = token(Access, json!({"f": filler}));
    }
    assert_eq!(refused(&jwt, &t, Access), TokenError::TooLarge);
    let roomy = Jwt::builder()
        .signing_key(Key::hmac("hs", HS256, SECRET).unwrap())
        .max_token_size(16 * 1024)
        .build()
        .unwrap();
    check(&roomy, &t, Access).unwrap();
    // Garbage over the cap is refused as too large, not parsed.
    assert_eq!(
        refused(&jwt, &"a".repeat(8 * 1024 + 1), Access),
        TokenError::TooLarge
    );
    assert_eq!(
        refused(&jwt, &"é".repeat(5000), Access),
        TokenError::TooLarge
    );
    // A small cap refuses an ordinary token.
    let tight = Jwt::builder()
        .signing_key(Key::hmac("hs", HS256, SECRET).unwrap())
        .max_token_size(128)
        .build()
        .unwrap();
    let normal = token(Access, json!({}));
    assert!(normal.len() > 128);
    assert_eq!(refused(&tight, &normal, Access), TokenError::TooLarge);
    check(&jwt, &normal, Access).unwrap();
}

#[test]
fn jti_and_sid_must_be_uuids() {
    let jwt = jwt();
    let simple = JTI.replace('-', "");
    let braced = format!("{{{JTI}}}");
    let urn = format!("urn:uuid:{JTI}");
    let bad = [
        json!("abc"),
        json!(""),
        json!(simple),
        json!(braced),
        json!(urn),
        json!(123),
        json!(null),
    ];
    for v in &bad {
        let want = if v.is_number() {
            TokenError::Json
        } else {
            TokenError::MissingClaim
        };
        assert_eq!(
            refused(&jwt, &token(Access, json!({"jti": v})), Access),
            want,
            "jti {v}"
        );
        assert_eq!(
            refused(&jwt, &token(Access, json!({"sid": v})), Access),
            want,
            "sid {v}"
        );
    }
    // The user id claim is required and non-empty too.
    assert_eq!(
        refused(&jwt, &token(Access, json!({"sub": null})), Access),
        TokenError::MissingClaim
    );
    assert_eq!(
        refused(&jwt, &token(Access, json!({"sub": ""})), Access),
        TokenError::MissingClaim
    );
}

#[test]
fn custom_claims_cannot_take_registered_names_at_issue_time() {
    let jwt = jwt();
    for name in [
        "exp",
        "iat",
        "nbf",
        "iss",
        "aud",
        "sub",
        "jti",
        "sid",
        "token_type",
    ] {
        let mut map = serde_json::Map::new();
        map.insert(name.to_owned(), json!(1));
        let custom = Value::Object(map);
        match jwt.issue_pair("u1", &custom) {
            Err(IssueError::Collision(n)) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
        assert!(matches!(
            jwt.issue_access("u1", uuid::Uuid::new_v4(), &custom),
            Err(IssueError::Collision(_))
        ));
    }
    // With another user id claim, that claim is reserved as well.
    let custom_id = Jwt::builder()
        .signing_key(Key::hmac("hs", HS256, SECRET).unwrap())
        .user_id_claim("uid")
        .build()
        .unwrap();
    assert!(matches!(
        custom_id.issue_pair("u1", &json!({"uid": "admin"})),
        Err(IssueError::Collision(_))
    ));
    assert!(matches!(
        jwt.issue_pair("u1", &json!([1, 2])),
        Err(IssueError::NotAnObject)
    ));
    assert!(matches!(
        jwt.issue_pair("u1", &json!("x")),
        Err(IssueError::NotAnObject)
    ));
    // An empty user id would mint a token that validates nowhere.
    assert!(matches!(
        jwt.issue_pair("", &NoCustomClaims),
        Err(IssueError::EmptyUserId)
    ));
    // Custom claims that do not collide travel and come back.
    let pair = jwt.issue_pair("u1", &json!({"role": "admin"})).unwrap();
    let c = jwt.validate::<Value>(&pair.access, Access).unwrap();
    assert_eq!(c.custom()["role"], "admin");
}

/// xorshift64*: deterministic, dependency-free randomness for the mutation loop.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Mutates `token` `rounds` times (flip, insert, delete, swap bytes; 1 to 3 edits
/// each) and checks that nothing panics and only the unmodified token validates.
fn mutation_loop(jwt: &Jwt, token: &str, rounds: usize, seed: u64) -> (usize, usize) {
    const ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
    let mut rng = Rng(seed);
    let (mut identical, mut refused) = (0, 0);
    for round in 0..rounds {
        let mut bytes = token.as_bytes().to_vec();
        for _ in 0..=rng.below(3) {
            let byte = if rng.below(4) == 0 {
                rng.next() as u8
            } else {
                ALPHABET[rng.below(ALPHABET.len())]
            };
            let len = bytes.len();
            match rng.below(5) {
                0 if len > 0 => bytes[rng.below(len)] ^= 1u8 << rng.below(8),
                1 if len > 0 => bytes[rng.below(len)] = byte,
                2 => bytes.insert(rng.below(len + 1), byte),
                3 if len > 0 => {
                    bytes.remove(rng.below(len));
                }
                _ if len > 1 => {
                    let (a, b) = (rng.below(len), rng.below(len));
                    bytes.swap(a, b);
                }
                _ => bytes.push(byte),
            }
        }
        let mutated = String::from_utf8_lossy(&bytes);
        let result = jwt.validate_at::<Value>(&mutated, Access, NOW);
        if mutated.as_ref() == token {
            identical += 1;
            assert!(
                result.is_ok(),
                "round {round}: the unmodified token must validate"
            );
        } else {
            refused += 1;
            assert!(
                result.is_err(),
                "round {round}: a mutated token validated: {mutated}"
            );
        }
    }
    (identical, refused)
}

#[test]
fn ten_thousand_random_mutations_never_panic_and_never_validate() {
    let jwt = jwt();
    let t = token(Access, json!({"role": "user"}));
    let (identical, refused) = mutation_loop(&jwt, &t, 10_000, 0x9e37_79b9_7f4a_7c15);
    assert_eq!(identical + refused, 10_000);
    assert!(
        refused > 9_000,
        "most mutations change the token ({identical} identical)"
    );
}

#[test]
fn random_mutations_of_an_ecdsa_token_never_validate() {
    // ECDSA signatures are malleable (s and n - s): a mutation must still not
    // produce a second accepted spelling of the token.
    let jwt = Jwt::builder()
        .signing_key(Key::from_private_pem("ec", ES256, ES256_PEM).unwrap())
        .build()
        .unwrap();
    let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": "ec"}).to_string();
    let t = sign_with(
        ES256,
        &EncodingKey::from_ec_pem(ES256_PEM).unwrap(),
        &h,
        &claims(Access, json!({})),
    );
    jwt.validate_at::<Value>(&t, Access, NOW).unwrap();
    let (identical, refused) = mutation_loop(&jwt, &t, 2_000, 0x0123_4567_89ab_cdef);
    assert_eq!(identical + refused, 2_000);
}

#[test]
fn every_refusal_is_a_401_token_error() {
    // The HTTP layer answers every TokenError with 401 invalid_token.
    let e = tower_jwt_auth::AuthError::from(TokenError::Algorithm);
    assert_eq!(e.status(), http::StatusCode::UNAUTHORIZED);
    assert_eq!(e.code(), "invalid_token");
}

#[test]
fn deeply_nested_json_never_overflows_the_stack() {
    let jwt = Jwt::builder()
        .signing_key(Key::hmac("hs", HS256, SECRET).unwrap())
        .max_token_size(64 * 1024)
        .build()
        .unwrap();
    let body = claims(Access, json!({}));
    let nest =
        |open: &str, close: &str, n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
    let deep = format!(
        "{},\"x\":{}}}",
        &body[..body.len() - 1],
        nest("[", "]", 20_000)
    );
    let t = hs(&header(Access), &deep);
    // Claims the crate does not read are skipped without recursion...
    check(&jwt, &t, Access).unwrap();
    // ...and an application type that reads them meets serde_json's depth limit.
    assert_eq!(
        jwt.validate_at::<Value>(&t, Access, NOW).unwrap_err(),
        TokenError::Json
    );
    let deep_header = format!(
        r#"{{"alg":"HS256","typ":"at+jwt","kid":"hs","x":{}}}"#,
        nest("{\"a\":", "}", 5_000)
    );
    check(&jwt, &hs(&deep_header, &body), Access).unwrap();
    // Unbalanced nesting is not JSON.
    let broken = format!("{},\"x\":{}}}", &body[..body.len() - 1], "[".repeat(20_000));
    assert_eq!(
        refused(&jwt, &hs(&header(Access), &broken), Access),
        TokenError::Json
    );
}

#[test]
fn verify_signature_checks_a_foreign_jws_without_reading_its_payload() {
    let key = Key::hmac("hs", HS256, SECRET).unwrap();
    let h = json!({"alg": "HS256", "kid": "hs"}).to_string();
    // Any payload bytes, even empty: a JWS, not a JWT.
    for payload in [&b""[..], b"not json", b"\x00\xff"] {
        let t = sign_input(HS256, &hmac_key(), &format!("{}.{}", b64(&h), b64(payload)));
        assert_eq!(tower_jwt_auth::verify_signature(&t, &key), Ok(()));
    }
    // ...but a JWT never has an empty payload.
    let empty = sign_input(HS256, &hmac_key(), &format!("{}.", b64(header(Access))));
    assert_eq!(refused(&jwt(), &empty, Access), TokenError::Malformed);
    // A kid naming another key, and a payload spelled non-canonically.
    let other = json!({"alg": "HS256", "kid": "other"}).to_string();
    let t = sign_input(HS256, &hmac_key(), &format!("{}.{}", b64(&other), b64("x")));
    assert_eq!(
        tower_jwt_auth::verify_signature(&t, &key),
        Err(TokenError::UnknownKey)
    );
    let bent = with_trailing_bits(&b64("xy"));
    let t = sign_input(HS256, &hmac_key(), &format!("{}.{bent}", b64(&h)));
    assert_eq!(
        tower_jwt_auth::verify_signature(&t, &key),
        Err(TokenError::Base64)
    );
}

#[test]
fn custom_claims_are_read_with_the_rules_first_and_no_duplicates() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct App {
        role: String,
    }
    let jwt = jwt();
    let h = header(Access);
    let app = |p: &str| jwt.validate_at::<App>(&hs(&h, p), Access, NOW);
    let body = claims(Access, json!({"role": "editor"}));
    assert_eq!(app(&body).unwrap().custom().role, "editor");
    // Every key is still the app's to read: a JSON value sees the registered ones.
    let all = jwt
        .validate_at::<Value>(&hs(&h, &body), Access, NOW)
        .unwrap();
    assert_eq!(all.custom()["exp"], json!(NOW + 300));
    assert_eq!(all.custom()["role"], json!("editor"));
    // A rule broken: that rule's error, whatever the custom claims hold.
    let expired_bad = claims(Access, json!({"role": 5, "exp": NOW - 1}));
    assert_eq!(app(&expired_bad).unwrap_err(), TokenError::Expired);
    let wrong_kind_bad = claims(Access, json!({"role": 5, "token_type": "refresh"}));
    assert_eq!(app(&wrong_kind_bad).unwrap_err(), TokenError::WrongType);
    // The rules kept, custom claims the app cannot read: a malformed token.
    let bad = claims(Access, json!({"role": 5}));
    assert_eq!(app(&bad).unwrap_err(), TokenError::Json);
    assert_eq!(
        app(&claims(Access, json!({}))).unwrap_err(),
        TokenError::Json
    );
    // Duplicates, of the app's claim or a registered one, as with no custom claims.
    let strip = |s: &str| s[..s.len() - 1].to_owned();
    for p in [
        format!(r#"{},"role":"admin"}}"#, strip(&body)),
        format!(r#"{},"\u0072ole":"admin"}}"#, strip(&body)),
        format!(r#"{},"exp":{}}}"#, strip(&body), NOW + 999),
        format!(r#"{},"sub":"admin"}}"#, strip(&body)),
    ] {
        assert_eq!(app(&p).unwrap_err(), TokenError::DuplicateKey, "{p}");
    }
}

#[test]
fn issuer_and_audience_read_back_as_the_token_names_them() {
    let named = jwt_iss_aud();
    let read = |changes: Value| check(&named, &token(Access, changes), Access).unwrap();
    let c = read(json!({"iss": ISS, "aud": AUD}));
    assert_eq!(c.issuer(), Some(ISS));
    assert_eq!(c.audience(), [AUD]);
    let c = read(json!({"iss": ISS, "aud": [AUD, "another"]}));
    assert_eq!(c.audience(), [AUD, "another"]);
    let c = read(json!({"iss": ISS, "aud": ["another", AUD]}));
    assert_eq!(c.audience(), ["another", AUD]);
    // No issuer or audience configured: none in the token, none read back;
    // an issuer the app does not require is still read back.
    let plain = jwt();
    let c = check(&plain, &token(Access, json!({})), Access).unwrap();
    assert_eq!((c.issuer(), c.audience()), (None, &[][..]));
    let c = check(&plain, &token(Access, json!({"iss": "elsewhere"})), Access).unwrap();
    assert_eq!(c.issuer(), Some("elsewhere"));
}
