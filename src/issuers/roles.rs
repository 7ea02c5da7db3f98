//! Reading an outside token's roles at the issuer's configured claim path, in
//! one pass over the payload that builds nothing but the roles (no JSON tree
//! of the whole payload: an identity provider's token carries many claims the
//! layer never reads).
//!
//! The path is tried as one key first (Auth0's namespaced claims are URLs with
//! dots), else as dot-separated keys. Absent, or `null`: no roles. A string is
//! one role; an array of strings is the roles; anything else where the path
//! ends is a malformed token, never silently no roles. A path that runs into a
//! value that is not an object finds nothing.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::TokenError;
use crate::jwt::KeyStr;

/// The visitor methods for JSON numbers and booleans, each answering `$value`.
macro_rules! numbers_and_bools_give {
    ($out:ty, $value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<$out, E> {
            Ok($value)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<$out, E> {
            Ok($value)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<$out, E> {
            Ok($value)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<$out, E> {
            Ok($value)
        }
    };
}

/// The roles at `path` in a (verified) payload.
pub(super) fn roles_at(payload: &[u8], path: &str) -> Result<Vec<String>, TokenError> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let lookup = Lookup {
        whole: Some(path),
        dotted: path,
    };
    let found = de::Deserializer::deserialize_map(&mut de, lookup)
        .and_then(|found| de.end().map(|()| found))
        .map_err(|_| TokenError::Json)?;
    match found.whole.or(found.dotted) {
        None | Some(Roles::Null) => Ok(Vec::new()),
        Some(Roles::List(roles)) => Ok(roles),
        Some(Roles::Invalid) => Err(TokenError::Json),
    }
}

/// A value where the path ends, read without failing the parse (a dotted
/// candidate may lose to the whole key, whatever it holds).
enum Roles {
    /// `null`: no roles.
    Null,
    /// A string, or an array of strings.
    List(Vec<String>),
    /// Anything else: a malformed token, if this is the value chosen.
    Invalid,
}

impl<'de> Deserialize<'de> for Roles {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Roles;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Roles, E> {
                Ok(Roles::Null)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Roles, E> {
                Ok(Roles::List(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Roles, A::Error> {
                let mut roles = Some(Vec::new());
                while let Some(Role(role)) = seq.next_element()? {
                    match (&mut roles, role) {
                        (Some(list), Some(role)) => list.push(role),
                        _ => roles = None,
                    }
                }
                Ok(roles.map_or(Roles::Invalid, Roles::List))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Roles, A::Error> {
                IgnoredAny.visit_map(map).map(|_| Roles::Invalid)
            }
            numbers_and_bools_give!(Roles, Roles::Invalid);
        }
        d.deserialize_any(V)
    }
}

/// One element of a roles array: a string, or `None` for anything else.
struct Role(Option<String>);

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Role;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Role, E> {
                Ok(Role(Some(v.to_owned())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Role, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| Role(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Role, A::Error> {
                IgnoredAny.visit_map(map).map(|_| Role(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Role, E> {
                Ok(Role(None))
            }
            numbers_and_bools_give!(Role, Role(None));
        }
        d.deserialize_any(V)
    }
}

/// What one object held: the value under the whole path as one key (looked
/// for at the top level only), and the value the dotted path leads to.
#[derive(Default)]
struct Found {
    whole: Option<Roles>,
    dotted: Option<Roles>,
}

/// Looks in one object for `whole` and for the dotted path `dotted`.
struct Lookup<'p> {
    whole: Option<&'p str>,
    dotted: &'p str,
}

impl<'de> Visitor<'de> for Lookup<'_> {
    type Value = Found;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let (first, rest) = match self.dotted.split_once('.') {
            Some((first, rest)) => (first, Some(rest)),
            None => (self.dotted, None),
        };
        let mut found = Found::default();
        while let Some(KeyStr(key)) = map.next_key()? {
            if self.whole == Some(&*key) {
                found.whole = Some(map.next_value()?);
            } else if key == first {
                found.dotted = match rest {
                    None => Some(map.next_value()?),
                    Some(rest) => map.next_value_seed(Descend(rest))?,
                };
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// The rest of a dotted path, inside a value: an object is looked into,
/// anything else holds nothing.
struct Descend<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for Descend<'_> {
    type Value = Option<Roles>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Roles>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Descend<'_> {
    type Value = Option<Roles>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<Roles>, A::Error> {
        let lookup = Lookup {
            whole: None,
            dotted: self.0,
        };
        lookup.visit_map(map).map(|found| found.dotted)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Roles>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    numbers_and_bools_give!(Option<Roles>, None);
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<Roles>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<Roles>, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// The reference: the whole payload as a JSON tree, looked up as the
    /// layer did before.
    fn by_tree(payload: &[u8], path: &str) -> Result<Vec<String>, TokenError> {
        let doc: Value = serde_json::from_slice(payload).map_err(|_| TokenError::Json)?;
        let found = doc
            .get(path)
            .or_else(|| path.split('.').try_fold(&doc, |v, segment| v.get(segment)));
        match found {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(role)) => Ok(vec![role.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or(TokenError::Json))
                .collect(),
            Some(_) => Err(TokenError::Json),
        }
    }

    #[test]
    fn one_pass_finds_what_the_tree_finds() {
        let payloads = [
            json!({"realm_access": {"roles": ["a", "b"]}, "sub": "x"}),
            json!({"realm_access": {"roles": "a"}}),
            json!({"realm_access": {"roles": null}}),
            json!({"realm_access": {"roles": 5}}),
            json!({"realm_access": {"roles": ["a", 5]}}),
            json!({"realm_access": {"other": ["a"]}}),
            json!({"realm_access": "flat"}),
            json!({"realm_access": ["x", {"roles": ["no"]}]}),
            json!({"realm_access": {"roles": {"deep": 1}}}),
            json!({"realm_access.roles": ["whole"], "realm_access": {"roles": ["dotted"]}}),
            json!({"realm_access": {"roles": ["dotted"]}, "realm_access.roles": null}),
            json!({"realm_access.roles": ["whole"], "realm_access": {"roles": 5}}),
            json!({"realm_access": {"roles": [["nested"]]}}),
            json!({"realm_access": {"roles": [true, "a"]}}),
            json!({"https://acme.example/roles": ["admin"]}),
            json!({"roles": ["top"], "a": {"b": {"c": ["deep"]}}}),
            json!({"a": {"b": {"c": "one"}, "x": [1, 2, {"y": null}]}}),
            json!({}),
        ];
        let paths = [
            "realm_access.roles",
            "https://acme.example/roles",
            "roles",
            "a.b.c",
            "a.b",
            "realm_access",
        ];
        for payload in &payloads {
            let bytes = payload.to_string().into_bytes();
            for path in paths {
                assert_eq!(
                    roles_at(&bytes, path),
                    by_tree(&bytes, path),
                    "{payload} at {path}"
                );
            }
        }
    }
}
