//! The payload of a token: the claims validation reads (registered claims,
//! the user id under the app's configured name, scopes, `client_id`), each read
//! by one [`Claim`] so that the plain pass here and the single pass with the
//! app's own claims (`one_pass.rs`) read them alike.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::json::{CowStr, KeyStr, SeenKeys, parse_json};
use crate::error::TokenError;

/// The registered claims of a decoded payload (`user_id_claim` names the user).
pub(crate) fn parse_payload<'de>(
    payload: &'de [u8],
    user_id_claim: &str,
    dup: &Cell<bool>,
) -> Result<RawPayload<'de>, TokenError> {
    parse_json(payload, PayloadSeed { user_id_claim, dup }, dup)
}

/// A NumericDate: a non-negative JSON number of seconds (fractions floored).
struct NumericDate(u64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative number of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                Ok(NumericDate(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                u64::try_from(v)
                    .map(NumericDate)
                    .map_err(|_| E::custom("negative date"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                if v.is_finite() && v >= 0.0 && v < u64::MAX as f64 {
                    Ok(NumericDate(v.floor() as u64))
                } else {
                    Err(E::custom("bad date"))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `aud`: one string or an array of strings, the first held inline (a token
/// almost always names one audience: no allocation for it).
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(crate) struct Audience<'de> {
    first: Option<Cow<'de, str>>,
    more: Vec<Cow<'de, str>>,
}

impl<'de> Audience<'de> {
    fn push(&mut self, aud: Cow<'de, str>) {
        match self.first {
            None => self.first = Some(aud),
            Some(_) => self.more.push(aud),
        }
    }
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.first.iter().chain(&self.more).map(|a| &**a)
    }
}

impl<'de> Deserialize<'de> for Audience<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Audience<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                let mut out = Audience::default();
                out.push(Cow::Borrowed(v));
                Ok(out)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let mut out = Audience::default();
                out.push(Cow::Owned(v.to_owned()));
                Ok(out)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Audience::default();
                while let Some(CowStr(s)) = seq.next_element()? {
                    out.push(s);
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// The strings of a `scope` or `scp` claim: a string, or an array of strings.
/// Any other value (an app's own claim of that name with another meaning) is
/// read as no scope, never as a malformed token.
fn scope_words(value: serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::String(s) => vec![s],
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The claims validation reads; the app's custom claims are parsed separately.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(crate) struct RawPayload<'de> {
    pub(crate) exp: Option<u64>,
    pub(crate) nbf: Option<u64>,
    pub(crate) iat: Option<u64>,
    pub(crate) jti: Option<Cow<'de, str>>,
    pub(crate) sid: Option<Cow<'de, str>>,
    pub(crate) token_type: Option<Cow<'de, str>>,
    pub(crate) iss: Option<Cow<'de, str>>,
    pub(crate) aud: Audience<'de>,
    /// `aud` is in the payload (even as an empty list).
    pub(crate) aud_present: bool,
    pub(crate) user_id: Option<Cow<'de, str>>,
    /// `scope` and `scp`, each a string or an array of strings, as read.
    pub(crate) scope: Vec<String>,
    pub(crate) client_id: Option<Cow<'de, str>>,
}

impl RawPayload<'_> {
    /// The scopes: every space-separated word of `scope` and `scp`.
    pub(crate) fn scopes(&self) -> Vec<String> {
        self.scope
            .iter()
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// One claim validation reads, named by its key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Claim {
    UserId,
    Exp,
    Nbf,
    Iat,
    Jti,
    Sid,
    TokenType,
    Iss,
    Aud,
    Scope,
    Scp,
    ClientId,
}

impl Claim {
    /// The claim `key` names, if validation reads it; the app's configured
    /// user id claim comes first (it may be any name).
    pub(super) fn of(key: &str, user_id_claim: &str) -> Option<Claim> {
        if key == user_id_claim {
            return Some(Claim::UserId);
        }
        Some(match key {
            "exp" => Claim::Exp,
            "nbf" => Claim::Nbf,
            "iat" => Claim::Iat,
            "jti" => Claim::Jti,
            "sid" => Claim::Sid,
            "token_type" => Claim::TokenType,
            "iss" => Claim::Iss,
            "aud" => Claim::Aud,
            "scope" => Claim::Scope,
            "scp" => Claim::Scp,
            "client_id" => Claim::ClientId,
            _ => return None,
        })
    }

    /// The claim's bit in [`SeenKeys`].
    pub(super) fn bit(self) -> u32 {
        self as u32
    }

    /// Reads the claim's value from `d` into `p`.
    pub(super) fn read<'de, D: de::Deserializer<'de>>(
        self,
        d: D,
        p: &mut RawPayload<'de>,
    ) -> Result<(), D::Error> {
        let text = |d: D| CowStr::deserialize(d).map(|s| Some(s.0));
        let date = |d: D| NumericDate::deserialize(d).map(|n| Some(n.0));
        match self {
            Claim::UserId => p.user_id = text(d)?,
            Claim::Exp => p.exp = date(d)?,
            Claim::Nbf => p.nbf = date(d)?,
            Claim::Iat => p.iat = date(d)?,
            Claim::Jti => p.jti = text(d)?,
            Claim::Sid => p.sid = text(d)?,
            Claim::TokenType => p.token_type = text(d)?,
            Claim::Iss => p.iss = text(d)?,
            Claim::Aud => {
                p.aud = Audience::deserialize(d)?;
                p.aud_present = true;
            }
            Claim::Scope | Claim::Scp => {
                p.scope
                    .extend(scope_words(serde_json::Value::deserialize(d)?));
            }
            Claim::ClientId => p.client_id = text(d)?,
        }
        Ok(())
    }
}

/// Reads one [`Claim`]'s value into a payload: the seed for `next_value_seed`.
pub(super) struct ReadClaim<'p, 'de> {
    pub(super) claim: Claim,
    pub(super) into: &'p mut RawPayload<'de>,
}

impl<'de> DeserializeSeed<'de> for ReadClaim<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.claim.read(d, self.into)
    }
}

struct PayloadSeed<'a> {
    user_id_claim: &'a str,
    dup: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = RawPayload<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_> {
    type Value = RawPayload<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut p = RawPayload::default();
        let mut seen = SeenKeys::new(self.dup);
        while let Some(KeyStr(key)) = map.next_key()? {
            match Claim::of(&key, self.user_id_claim) {
                Some(claim) => {
                    seen.known(claim.bit())?;
                    map.next_value_seed(ReadClaim {
                        claim,
                        into: &mut p,
                    })?;
                }
                None => {
                    seen.other(key)?;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        seen.finish()?;
        Ok(p)
    }
}
