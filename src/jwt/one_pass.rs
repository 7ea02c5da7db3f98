//! The app's custom claims and the claims validation reads, in one pass over
//! the payload.
//!
//! The app's claims type `C` is handed a view of the payload's object in which
//! every key is still there (so `C` reads exactly what a parse of the whole
//! payload would give it), while each claim validation reads (a [`Claim`]) is
//! taken on the way: when `C` skips such a value (a derived struct skips every
//! key it has no field for) the value is read once, typed, straight from the
//! bytes; when `C` wants it too, the value is captured as raw JSON, then read
//! for validation and handed to `C` from that slice.
//!
//! Any failure (a bad value, a duplicate key, a `C` that does not read a JSON
//! object) answers `None`, and the caller takes the two-pass path, whose
//! answers (which error, in which order) are the reference: this is only a
//! faster way to the same result.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::StrDeserializer;
use serde::de::{
    self, Deserialize, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess,
    Visitor,
};
use serde_json::value::RawValue;

use super::json::{KeyStr, SeenKeys};
use super::payload::{Claim, RawPayload, ReadClaim, parse_payload};
use crate::error::TokenError;

/// Validation's claims of a verified payload, and the app's claims `C` when
/// one pass read both. `None` for `C`: read it with
/// [`custom_claims`](super::claims::custom_claims) once the rules have passed,
/// so that a token breaking a rule is refused for that rule whatever its
/// custom claims (the order two passes give).
pub(crate) fn read_payload<'de, C: DeserializeOwned>(
    payload: &'de [u8],
    user_id_claim: &str,
    dup: &Cell<bool>,
) -> Result<(RawPayload<'de>, Option<C>), TokenError> {
    match claims_in_one_pass::<C>(payload, user_id_claim) {
        Some((reg, custom)) => Ok((reg, Some(custom))),
        None => Ok((parse_payload(payload, user_id_claim, dup)?, None)),
    }
}

/// The claims validation reads and the app's claims `C`, parsed in one pass;
/// `None` when the one pass fails or `C` is zero-sized (nothing to read: the
/// plain pass and [`custom_claims`](super::claims::custom_claims) are cheaper).
fn claims_in_one_pass<'de, C: DeserializeOwned>(
    payload: &'de [u8],
    user_id_claim: &str,
) -> Option<(RawPayload<'de>, C)> {
    if std::mem::size_of::<C>() == 0 {
        return None;
    }
    let dup = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(payload);
    let visitor = Both {
        user_id_claim,
        dup: &dup,
        claims: PhantomData,
    };
    let both = de.deserialize_map(visitor).ok()?;
    de.end().ok()?;
    Some(both)
}

/// Visits the payload's object: `C` first, through [`Shared`], then whatever
/// `C` left unread.
struct Both<'a, C> {
    user_id_claim: &'a str,
    dup: &'a Cell<bool>,
    claims: PhantomData<fn() -> C>,
}

impl<'de, C: DeserializeOwned> Visitor<'de> for Both<'_, C> {
    type Value = (RawPayload<'de>, C);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let mut shared = Shared {
            map,
            payload: RawPayload::default(),
            seen: SeenKeys::new(self.dup),
            user_id_claim: self.user_id_claim,
            pending: Pending::Nothing,
        };
        let custom = C::deserialize(AppView(&mut shared))?;
        while shared.next_key::<IgnoredAny>()?.is_some() {
            shared.next_value::<IgnoredAny>()?;
        }
        shared.seen.finish()?;
        Ok((shared.payload, custom))
    }
}

/// Whose value follows the key last handed out.
enum Pending {
    Nothing,
    Validation(Claim),
    App,
}

/// The payload's map as `C` sees it: every key, with validation's claims taken
/// on the way.
struct Shared<'a, 'de, A> {
    map: A,
    payload: RawPayload<'de>,
    seen: SeenKeys<'a, 'de>,
    user_id_claim: &'a str,
    pending: Pending,
}

impl<'de, A: MapAccess<'de>> Shared<'_, 'de, A> {
    /// Reads a value its key's reader did not ask for (a `C` that asked for
    /// two keys in a row): validation's claim still gets read.
    fn skip_pending(&mut self) -> Result<(), A::Error> {
        match std::mem::replace(&mut self.pending, Pending::Nothing) {
            Pending::Nothing => Ok(()),
            Pending::Validation(claim) => self.map.next_value_seed(ReadClaim {
                claim,
                into: &mut self.payload,
            }),
            Pending::App => self.map.next_value::<IgnoredAny>().map(drop),
        }
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Shared<'_, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.skip_pending()?;
        let Some(KeyStr(key)) = self.map.next_key()? else {
            return Ok(None);
        };
        let value = seed.deserialize(StrDeserializer::<A::Error>::new(&key))?;
        match Claim::of(&key, self.user_id_claim) {
            Some(claim) => {
                self.seen.known(claim.bit())?;
                self.pending = Pending::Validation(claim);
            }
            None => {
                self.seen.other(key)?;
                self.pending = Pending::App;
            }
        }
        Ok(Some(value))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        match std::mem::replace(&mut self.pending, Pending::Nothing) {
            Pending::Validation(claim) => self.map.next_value_seed(Taken {
                claim,
                into: &mut self.payload,
                seed,
            }),
            Pending::App => self.map.next_value_seed(seed),
            Pending::Nothing => Err(de::Error::custom("a value asked for before its key")),
        }
    }
}

/// `C`'s deserializer: the payload's object, as a map (or `Some` of it).
struct AppView<'s, S>(&'s mut S);

impl<'de, S: MapAccess<'de>> Deserializer<'de> for AppView<'_, S> {
    type Error = S::Error;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, S::Error> {
        visitor.visit_map(self.0)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, S::Error> {
        visitor.visit_some(self)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, S::Error> {
        visitor.visit_newtype_struct(self)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// The seed for a value validation reads: `seed` is `C`'s.
struct Taken<'p, 'de, V> {
    claim: Claim,
    into: &'p mut RawPayload<'de>,
    seed: V,
}

impl<'de, V: DeserializeSeed<'de>> DeserializeSeed<'de> for Taken<'_, 'de, V> {
    type Value = V::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.seed.deserialize(Tee {
            d,
            claim: self.claim,
            into: self.into,
        })
    }
}

/// A value both validation and `C` are handed.
struct Tee<'p, 'de, D> {
    d: D,
    claim: Claim,
    into: &'p mut RawPayload<'de>,
}

impl<'de, D: Deserializer<'de>> Tee<'_, 'de, D> {
    /// Captures the value's raw JSON, reads validation's claim from it, then
    /// runs `C`'s request `f` on it.
    fn both<T>(
        self,
        f: impl FnOnce(
            &mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
        ) -> serde_json::Result<T>,
    ) -> Result<T, D::Error> {
        let raw = <&'de RawValue>::deserialize(self.d)?;
        let json = raw.get();
        self.claim
            .read(&mut serde_json::Deserializer::from_str(json), self.into)
            .map_err(de::Error::custom)?;
        f(&mut serde_json::Deserializer::from_str(json)).map_err(de::Error::custom)
    }
}

/// `C`'s requests for a value, each answered from the captured JSON by the
/// same request.
macro_rules! from_raw {
    ($($method:ident)*) => {$(
        fn $method<W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, D::Error> {
            self.both(|json| json.$method(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Tee<'_, 'de, D> {
    type Error = D::Error;

    /// `C` skips the value (serde_json answers a skip with `visit_unit`):
    /// validation reads it once, straight from the bytes.
    fn deserialize_ignored_any<W: Visitor<'de>>(self, visitor: W) -> Result<W::Value, D::Error> {
        self.claim.read(self.d, self.into)?;
        visitor.visit_unit()
    }

    from_raw! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier
    }

    fn deserialize_unit_struct<W: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: W,
    ) -> Result<W::Value, D::Error> {
        self.both(|json| json.deserialize_unit_struct(name, visitor))
    }
    fn deserialize_newtype_struct<W: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: W,
    ) -> Result<W::Value, D::Error> {
        self.both(|json| json.deserialize_newtype_struct(name, visitor))
    }
    fn deserialize_tuple<W: Visitor<'de>>(
        self,
        len: usize,
        visitor: W,
    ) -> Result<W::Value, D::Error> {
        self.both(|json| json.deserialize_tuple(len, visitor))
    }
    fn deserialize_tuple_struct<W: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: W,
    ) -> Result<W::Value, D::Error> {
        self.both(|json| json.deserialize_tuple_struct(name, len, visitor))
    }
    fn deserialize_struct<W: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: W,
    ) -> Result<W::Value, D::Error> {
        self.both(|json| json.deserialize_struct(name, fields, visitor))
    }
    fn deserialize_enum<W: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: W,
    ) -> Result<W::Value, D::Error> {
        self.both(|json| json.deserialize_enum(name, variants, visitor))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;
    use serde_json::Value;

    use super::*;

    /// The two-pass reference: validation's claims, then `C` from the whole payload.
    fn two_passes<'de, C: DeserializeOwned>(
        payload: &'de [u8],
        user_id_claim: &str,
    ) -> Option<(RawPayload<'de>, C)> {
        let reg = parse_payload(payload, user_id_claim, &Cell::new(false)).ok()?;
        Some((reg, serde_json::from_slice(payload).ok()?))
    }

    /// One pass gives what two give, and is taken whenever two passes succeed
    /// (`fast` false: the type may fall back, but must still agree).
    fn agrees<C: DeserializeOwned + PartialEq + fmt::Debug>(payload: &str, fast: bool) {
        for user_id_claim in ["sub", "user_id"] {
            let one = claims_in_one_pass::<C>(payload.as_bytes(), user_id_claim);
            let two = two_passes::<C>(payload.as_bytes(), user_id_claim);
            match (&one, &two) {
                (Some(one), Some(two)) => assert_eq!(one, two, "{payload}"),
                (None, _) if !fast => {}
                (None, None) => {}
                _ => panic!("one pass {one:?}, two passes {two:?}: {payload}"),
            }
        }
    }

    const PAYLOADS: &[&str] = &[
        r#"{"sub":"u1","exp":20,"iat":10,"jti":"j","sid":"s","token_type":"access","iss":"i","aud":"api","role":"admin","perms":["a","b"]}"#,
        r#"{"role":"admin","perms":[],"sub":"u\u0031","aud":["x","api"],"scope":"read write","scp":["x"],"client_id":"c","user_id":7}"#,
        r#"{"user_id":"42","role":"r","perms":["p"],"nbf":1.5,"exp":3e3,"extra":{"deep":[1,{"a":null}]}}"#,
        r#"{"r\u006fle":"esc","perms":["q"],"sub":"s","scope":{"not":"a scope"}}"#,
        r#"{"sub":"s","sub":"t","role":"r","perms":[]}"#,
        r#"{"role":"r","role":"r2","perms":[]}"#,
        r#"{"role":"r","perms":[],"exp":-1}"#,
        r#"{"role":"r","perms":[],"exp":"soon"}"#,
        r#"{"role":"r"}"#,
        r#"[1,2]"#,
        r#"{"role":"r","perms":[]} trailing"#,
        r#"{}"#,
    ];

    #[derive(Deserialize, Debug, PartialEq)]
    struct App {
        role: String,
        perms: Vec<String>,
    }

    /// An app claim with the name of a claim validation also reads.
    #[derive(Deserialize, Debug, PartialEq)]
    struct Overlapping {
        role: String,
        scope: Option<Value>,
        user_id: Option<Value>,
        aud: Option<Value>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        role: String,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Flattened {
        role: String,
        #[serde(flatten)]
        rest: HashMap<String, Value>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Newtype(App);

    #[test]
    fn one_pass_agrees_with_two_passes() {
        for payload in PAYLOADS {
            agrees::<App>(payload, true);
            agrees::<Overlapping>(payload, true);
            agrees::<Value>(payload, true);
            agrees::<HashMap<String, Value>>(payload, true);
            agrees::<Option<App>>(payload, true);
            agrees::<Newtype>(payload, true);
            agrees::<Strict>(payload, true);
            agrees::<Flattened>(payload, false);
        }
    }

    #[test]
    fn the_common_payload_takes_one_pass() {
        let payload = PAYLOADS[0].as_bytes();
        let (reg, app) = claims_in_one_pass::<App>(payload, "sub").unwrap();
        assert_eq!(app.perms, ["a", "b"]);
        assert_eq!(reg.user_id.as_deref(), Some("u1"));
        assert_eq!((reg.exp, reg.iat), (Some(20), Some(10)));
        assert!(reg.aud.iter().eq(["api"]));
        // `C` that reads every key (a JSON value) gets the registered ones too.
        let (_, all) = claims_in_one_pass::<Value>(payload, "sub").unwrap();
        assert_eq!(all["exp"], 20);
        assert_eq!(all["sub"], "u1");
    }

    #[test]
    fn zero_sized_claims_take_the_plain_pass() {
        let payload = PAYLOADS[0].as_bytes();
        assert!(claims_in_one_pass::<crate::NoCustomClaims>(payload, "sub").is_none());
    }
}
