//! Wycheproof test vectors (tests/vectors/wycheproof, Apache-2.0, see its LICENSE)
//! through the crate's own signature step.
//!
//! Raw-signature files go through [`Key::verify`], the step `Jwt::validate` uses;
//! the JWS file goes through [`verify_signature`] (header rules, pinned `alg`,
//! strict base64url, then `Key::verify`). Every case is counted: `valid` must be
//! accepted, `invalid` refused, `acceptable` may go either way. A case the crate
//! cannot express (an HMAC key under 32 bytes, a truncated tag, an algorithm
//! jsonwebtoken lacks) or refuses by policy is named below by rule, asserted
//! refused, and counted apart: nothing is skipped.
//!
//! `cargo test --test vectors -- --nocapture` prints the counts per file.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use serde_json::Value;
use tower_jwt_auth::{Algorithm, ConfigError, Key, TokenError, verify_signature};

fn load(name: &str) -> Value {
    let path = format!(
        "{}/tests/vectors/wycheproof/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn groups(file: &Value) -> &[Value] {
    file["testGroups"].as_array().unwrap()
}

fn tests(group: &Value) -> &[Value] {
    group["tests"].as_array().unwrap()
}

/// The counts of one file.
#[derive(Default)]
struct Tally {
    total: usize,
    valid_accepted: usize,
    invalid_refused: usize,
    acceptable_accepted: usize,
    acceptable_refused: usize,
    /// `valid` cases refused, by the rule that refuses them.
    valid_refused: BTreeMap<&'static str, usize>,
    /// `invalid` cases accepted: only snapshot defects, by name.
    invalid_accepted: BTreeMap<&'static str, usize>,
}

impl Tally {
    /// Records a case the crate could express: the verdict must match the label.
    fn record(&mut self, file: &str, case: &Value, accepted: bool) {
        self.total += 1;
        let id = &case["tcId"];
        match (case["result"].as_str().unwrap(), accepted) {
            ("valid", true) => self.valid_accepted += 1,
            ("invalid", false) => self.invalid_refused += 1,
            ("acceptable", true) => self.acceptable_accepted += 1,
            ("acceptable", false) => self.acceptable_refused += 1,
            (result, accepted) => {
                panic!(
                    "{file} tcId {id} ({}): {result} but accepted = {accepted}",
                    case["comment"]
                )
            }
        }
    }

    /// Records a case refused under a named rule. `valid` ones are counted by rule;
    /// `invalid` ones are ordinary refusals.
    fn refused_by(&mut self, file: &str, case: &Value, rule: &'static str) {
        if case["result"] == "valid" {
            self.total += 1;
            *self.valid_refused.entry(rule).or_default() += 1;
        } else {
            self.record(file, case, false);
        }
    }

    fn check_total(&self, file: &Value) {
        assert_eq!(
            self.total as u64,
            file["numberOfTests"].as_u64().unwrap(),
            "every case counted"
        );
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cases: valid accepted {}, invalid refused {}, acceptable accepted {} / refused {}",
            self.total,
            self.valid_accepted,
            self.invalid_refused,
            self.acceptable_accepted,
            self.acceptable_refused
        )?;
        for (rule, n) in &self.valid_refused {
            write!(f, "\n    valid refused ({rule}): {n}")?;
        }
        for (why, n) in &self.invalid_accepted {
            write!(f, "\n    invalid accepted ({why}): {n}")?;
        }
        Ok(())
    }
}

/// Runs a raw-signature file whose groups carry a public key in PEM.
fn raw_signature_file(name: &str, alg: Algorithm) -> Tally {
    let file = load(name);
    let mut tally = Tally::default();
    for group in groups(&file) {
        let pem = group["publicKeyPem"].as_str().unwrap();
        let key = Key::from_public_pem("wycheproof", alg, pem);
        for case in tests(group) {
            match &key {
                Ok(key) => {
                    let msg = hex(case["msg"].as_str().unwrap());
                    let sig = hex(case["sig"].as_str().unwrap());
                    tally.record(name, case, key.verify(&msg, &sig));
                }
                Err(_) => tally.refused_by(name, case, "public key refused at build"),
            }
        }
    }
    tally.check_total(&file);
    println!("{name}: {tally}");
    tally
}

#[test]
fn ecdsa_p256_sha256_p1363() {
    let t = raw_signature_file("ecdsa_secp256r1_sha256_p1363_test.json", Algorithm::ES256);
    assert!(t.valid_refused.is_empty(), "{t}");
    assert!(t.invalid_accepted.is_empty());
}

#[test]
fn ecdsa_p384_sha384_p1363() {
    let t = raw_signature_file("ecdsa_secp384r1_sha384_p1363_test.json", Algorithm::ES384);
    assert!(t.valid_refused.is_empty(), "{t}");
}

#[test]
fn ed25519() {
    let t = raw_signature_file("ed25519_test.json", Algorithm::EdDSA);
    assert!(t.valid_refused.is_empty(), "{t}");
}

#[test]
fn rsa_pkcs1_2048_sha256() {
    let t = raw_signature_file("rsa_signature_2048_sha256_test.json", Algorithm::RS256);
    assert!(t.valid_refused.is_empty(), "{t}");
}

#[test]
fn hmac_sha256() {
    let name = "hmac_sha256_test.json";
    let file = load(name);
    let mut tally = Tally::default();
    for group in groups(&file) {
        let tag_bits = group["tagSize"].as_u64().unwrap();
        for case in tests(group) {
            let secret = hex(case["key"].as_str().unwrap());
            let msg = hex(case["msg"].as_str().unwrap());
            let tag = hex(case["tag"].as_str().unwrap());
            let key = match Key::hmac("wycheproof", Algorithm::HS256, &secret) {
                Ok(key) => key,
                Err(e) => {
                    assert!(secret.len() < 32, "only short secrets are refused");
                    assert!(
                        matches!(e, ConfigError::ShortSecret { min: 32, .. }),
                        "{e:?}"
                    );
                    tally.refused_by(name, case, "HMAC key under 32 bytes refuses to build");
                    continue;
                }
            };
            let accepted = key.verify(&msg, &tag);
            if tag_bits < 256 {
                // HS256 is the full 256-bit tag (RFC 7518 §3.2): a truncated tag is refused.
                assert!(!accepted, "tcId {}: a truncated tag verified", case["tcId"]);
                tally.refused_by(name, case, "truncated tag");
            } else {
                tally.record(name, case, accepted);
            }
        }
    }
    tally.check_total(&file);
    println!("{name}: {tally}");
    assert!(
        tally
            .valid_refused
            .keys()
            .all(|r| r.starts_with("HMAC key under") || *r == "truncated tag"),
        "{tally}"
    );
}

/// The key of one JWS group, as this crate would hold it: asymmetric keys from
/// their public JWK ([`Key::from_jwk`], which checks `use`, `key_ops`, curve and
/// size), symmetric ones from the decoded `k`.
fn jws_key(group: &Value) -> Result<Key, String> {
    let public = group.get("public").filter(|p| p["kty"] != "oct");
    if let Some(public) = public {
        let jwk: Jwk = serde_json::from_value(public.clone()).map_err(|e| format!("JWK: {e}"))?;
        return Key::from_jwk(&jwk).map_err(|e| format!("{e:?}"));
    }
    let private = &group["private"];
    assert_eq!(private["kty"], "oct");
    let k = URL_SAFE_NO_PAD
        .decode(private["k"].as_str().unwrap())
        .unwrap();
    let alg: Algorithm = private["alg"].as_str().unwrap().parse().unwrap();
    Key::hmac(private["kid"].as_str().unwrap(), alg, k).map_err(|e| format!("{e:?}"))
}

#[test]
fn json_web_signature() {
    let name = "json_web_signature_test.json";
    let file = load(name);
    let all: Vec<&Value> = groups(&file).iter().flat_map(tests).collect();
    let jws_of = |id: u64| {
        all.iter().find(|c| c["tcId"] == id).unwrap()["jws"]
            .as_str()
            .unwrap()
    };
    let mut tally = Tally::default();
    let mut key_refusals = BTreeMap::new();
    for group in groups(&file) {
        let key = jws_key(group);
        for case in tests(group) {
            let id = case["tcId"].as_u64().unwrap();
            let jws = case["jws"].as_str().unwrap();
            let key = match &key {
                Ok(key) => key,
                Err(e) => {
                    *key_refusals.entry(e.clone()).or_insert(0) += 1;
                    let p521 = group.get("public").is_some_and(|p| p["crv"] == "P-521");
                    let rule = if p521 {
                        "ES512 (P-521): an algorithm jsonwebtoken lacks, the key cannot be built"
                    } else {
                        "key refused at build"
                    };
                    tally.refused_by(name, case, rule);
                    continue;
                }
            };
            let verdict = verify_signature(jws, key);
            match (id, case["comment"].as_str().unwrap()) {
                // Byte-identical to tcId 357 (valid): this snapshot lost the '=' that
                // made these cases invalid. No verifier can tell them apart; ours
                // answers as for 357, and the padded forms they were meant to carry
                // are refused below.
                (367 | 370, _) => {
                    assert_eq!(jws, jws_of(357));
                    assert_eq!(verdict, Ok(()));
                    tally.total += 1;
                    *tally
                        .invalid_accepted
                        .entry("snapshot defect: identical to valid tcId 357")
                        .or_default() += 1;
                    let (h, rest) = jws.split_once('.').unwrap();
                    let (p, s) = rest.split_once('.').unwrap();
                    for padded in [
                        format!("{h}.{p}.{s}="),
                        format!("{h}.{p}==.{s}"),
                        format!("{h}=.{p}.{s}"),
                    ] {
                        assert_eq!(
                            verify_signature(&padded, key),
                            Err(TokenError::Malformed),
                            "{padded}"
                        );
                    }
                }
                // A '?' inside a base64url part. Lenient decoders skip it; RFC 7515 §2
                // allows no other characters, and the signing input is the text as sent.
                (372 | 373, _) => {
                    assert_eq!(verdict, Err(TokenError::Malformed));
                    tally.refused_by(
                        name,
                        case,
                        "strict base64url: a '?' inside a part (RFC 7515 §2)",
                    );
                }
                // RFC 7520 figure 20 is PS384, but this group's JWK pins `alg: PS256`:
                // one algorithm per key, so the PS384 token is refused.
                (_, "Figure20") => {
                    assert_eq!(verdict, Err(TokenError::Algorithm));
                    tally.refused_by(
                        name,
                        case,
                        "alg pinned by the key's JWK (PS256) and the token says PS384",
                    );
                }
                _ => tally.record(name, case, verdict.is_ok()),
            }
        }
    }
    tally.check_total(&file);
    println!("{name}: {tally}");
    for (why, n) in &key_refusals {
        println!("    key not built ({why}): {n} cases");
    }
    // Keys that must not build: ES512 (jsonwebtoken has no ES512) and the
    // encryption keys (`use: enc`, `key_ops: [encrypt]`, no `alg`), whose cases are
    // all `invalid`. No other `valid` case is refused.
    assert_eq!(key_refusals.values().sum::<usize>(), 6);
    assert_eq!(tally.valid_refused.values().sum::<usize>(), 6, "{tally}");
    assert!(
        !tally.valid_refused.contains_key("key refused at build"),
        "{tally}"
    );
}

#[test]
fn jwks_for_encryption_are_not_verification_keys() {
    // The same JWKs as the vectors' encryption groups, with an `alg` so that only
    // `use` / `key_ops` can refuse them.
    let file = load("json_web_signature_test.json");
    let mut checked = 0;
    for group in groups(&file) {
        let Some(public) = group.get("public") else {
            continue;
        };
        let wrong_use = public.get("use").is_some_and(|u| u != "sig");
        let wrong_ops = public
            .get("key_ops")
            .is_some_and(|ops| !ops.as_array().unwrap().iter().any(|o| o == "verify"));
        if !(wrong_use || wrong_ops) {
            continue;
        }
        let mut public = public.clone();
        public["alg"] = Value::from(if public["kty"] == "RSA" {
            "RS256"
        } else {
            "ES256"
        });
        let jwk: Jwk = serde_json::from_value(public.clone()).unwrap();
        assert!(
            matches!(Key::from_jwk(&jwk), Err(ConfigError::KeyMismatch { .. })),
            "{public}"
        );
        // Without the offending member the same key builds.
        public.as_object_mut().unwrap().remove("use");
        public.as_object_mut().unwrap().remove("key_ops");
        let jwk: Jwk = serde_json::from_value(public).unwrap();
        Key::from_jwk(&jwk).unwrap();
        checked += 1;
    }
    assert_eq!(checked, 4);
}
