//! Reading the JSON objects of a token (its header and its payload) strictly:
//! keys borrowed from the decoded bytes, each key seen once, a duplicate key
//! told apart from other errors.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Visitor};

use crate::error::TokenError;

/// Parses one JSON object with a seed; tells a duplicate key apart from other errors.
pub(super) fn parse_json<'de, S: DeserializeSeed<'de>>(
    bytes: &'de [u8],
    seed: S,
    dup: &Cell<bool>,
) -> Result<S::Value, TokenError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v)) {
        Ok(v) => Ok(v),
        Err(_) if dup.get() => Err(TokenError::DuplicateKey),
        Err(_) => Err(TokenError::Json),
    }
}

/// A JSON object key, borrowed from the input when it has no escapes.
pub(crate) struct KeyStr<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for KeyStr<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor).map(KeyStr)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

pub(super) struct CowStr<'de>(pub(super) Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor).map(CowStr)
    }
}

/// Unknown keys made room for at the first one.
const OTHERS_AT_ONCE: usize = 32;

/// Tracks the keys of one object: known keys by bit, others in a list made only
/// when an object has keys this crate does not read, checked for duplicates once
/// at the end (sorted: a cap-sized payload of tiny keys stays O(n log n)).
pub(super) struct SeenKeys<'a, 'de> {
    known: u32,
    others: Vec<Cow<'de, str>>,
    dup: &'a Cell<bool>,
}

impl<'a, 'de> SeenKeys<'a, 'de> {
    pub(super) fn new(dup: &'a Cell<bool>) -> Self {
        SeenKeys {
            known: 0,
            others: Vec::new(),
            dup,
        }
    }
    pub(super) fn known<E: de::Error>(&mut self, bit: u32) -> Result<(), E> {
        if self.known & (1 << bit) != 0 {
            self.dup.set(true);
            return Err(E::custom("duplicate key"));
        }
        self.known |= 1 << bit;
        Ok(())
    }
    pub(super) fn other<E: de::Error>(&mut self, key: Cow<'de, str>) -> Result<(), E> {
        // Room for an identity provider's usual claims at once (Keycloak's
        // tokens carry about 20 this crate does not read), not 4 regrowths.
        if self.others.capacity() == 0 {
            self.others.reserve(OTHERS_AT_ONCE);
        }
        self.others.push(key);
        Ok(())
    }
    pub(super) fn finish<E: de::Error>(mut self) -> Result<(), E> {
        self.others.sort_unstable();
        if self.others.windows(2).any(|w| w[0] == w[1]) {
            self.dup.set(true);
            return Err(E::custom("duplicate key"));
        }
        Ok(())
    }
}
