//! What a token says: the registered claims, the token type, the session (family)
//! id, the user id as the string value of the app's configured id field, and the
//! app's own custom claims.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::payload::Audience;

/// The two kinds of token. Each endpoint accepts only its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A short-lived token sent on every request (header `typ: at+jwt`, RFC 9068).
    Access,
    /// A long-lived, single-use token exchanged at the refresh endpoint (header `typ: refresh+jwt`).
    Refresh,
}

impl TokenKind {
    /// The value of the `token_type` claim (SimpleJWT's claim name and values).
    pub fn claim_value(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }

    /// The value of the `typ` header.
    pub fn header_typ(self) -> &'static str {
        match self {
            TokenKind::Access => "at+jwt",
            TokenKind::Refresh => "refresh+jwt",
        }
    }

    /// Whether a `typ` header value names this kind (case-insensitive, with or
    /// without the `application/` prefix, RFC 7515 §4.1.9).
    pub(crate) fn matches_typ(self, typ: &str) -> bool {
        let typ = typ
            .get(..12)
            .filter(|p| p.eq_ignore_ascii_case("application/"))
            .map_or(typ, |_| &typ[12..]);
        typ.eq_ignore_ascii_case(self.header_typ())
    }
}

/// The custom-claims type for apps that have none: serializes to nothing and
/// accepts any payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoCustomClaims;

impl Serialize for NoCustomClaims {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

impl<'de> Deserialize<'de> for NoCustomClaims {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| NoCustomClaims)
    }
}

/// The claims of a validated token, with typed accessors.
///
/// `C` is the application's own claims type: any serde type that (de)serializes as
/// a JSON object. Its fields sit at the top level of the payload beside the
/// registered claims; their names must not collide with them.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims<C = NoCustomClaims> {
    pub(crate) user_id: String,
    pub(crate) kind: TokenKind,
    pub(crate) jti: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) issued_at: u64,
    pub(crate) not_before: Option<u64>,
    pub(crate) expires_at: u64,
    /// Shared with the [`Jwt`](crate::Jwt)'s settings when it is the configured
    /// issuer (no allocation per token).
    pub(crate) issuer: Option<Arc<str>>,
    /// `None` for no audience; shared with the settings when it is exactly the
    /// configured list.
    pub(crate) audience: Option<Arc<[String]>>,
    /// `scope` (space-separated) or `scp` (an array), as a list.
    pub(crate) scopes: Vec<String>,
    /// What only a token from a [`TrustedIssuer`](crate::TrustedIssuer)
    /// carries; `None` for this app's own tokens (boxed: the common claims
    /// stay small).
    pub(crate) outside: Option<Box<OutsideClaims>>,
    pub(crate) custom: C,
}

/// The claims only an outside token has.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct OutsideClaims {
    /// Roles read from the issuer's configured claim path.
    pub(crate) roles: Vec<String>,
    /// `client_id` (RFC 9068), when present.
    pub(crate) client_id: Option<String>,
}

impl<C> Claims<C> {
    /// The user id claim: the string value of the app's configured id field
    /// (a UUID, an integer, an email...), never an assumed primary key.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The user id parsed as the app's id type; `None` when it does not parse.
    ///
    /// ```
    /// # use tower_jwt_auth::Claims;
    /// # fn f(claims: &Claims) {
    /// let id: Option<uuid::Uuid> = claims.user_id_as();
    /// # }
    /// ```
    pub fn user_id_as<T: FromStr>(&self) -> Option<T> {
        self.user_id.parse().ok()
    }

    /// Access or refresh.
    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The token's unique id (`jti`). Nil for a token from a
    /// [`TrustedIssuer`](crate::TrustedIssuer), whose `jti` is not this crate's
    /// (and which has no session here).
    pub fn jti(&self) -> Uuid {
        self.jti
    }

    /// The session (refresh-token family) this token belongs to (`sid`). Nil
    /// for a token from a [`TrustedIssuer`](crate::TrustedIssuer): sessions
    /// live with the provider that issued it.
    pub fn session_id(&self) -> Uuid {
        self.session_id
    }

    /// `iat`, seconds since the Unix epoch.
    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// `nbf`, seconds since the Unix epoch, when present.
    pub fn not_before(&self) -> Option<u64> {
        self.not_before
    }

    /// `exp`, seconds since the Unix epoch: the token is dead from this second on.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// `iss`, when present.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// `aud` (a single audience is a one-element list).
    pub fn audience(&self) -> &[String] {
        self.audience.as_deref().unwrap_or(&[])
    }

    /// The scopes the token grants: `scope` (space-separated, RFC 8693 and
    /// RFC 9068) or `scp` (an array of strings, as Entra ID and Okta write it).
    /// Empty when the token has neither.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The roles a [`TrustedIssuer`](crate::TrustedIssuer) put where its
    /// [`roles_claim`](crate::TrustedIssuerBuilder::roles_claim) says (Keycloak's
    /// `realm_access.roles`, for instance). Empty for this app's own tokens,
    /// whose roles are custom claims.
    pub fn roles(&self) -> &[String] {
        self.outside.as_deref().map_or(&[], |o| &o.roles)
    }

    /// Whether [`Claims::roles`] holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles().iter().any(|r| r == role)
    }

    /// `client_id`: the OAuth client an outside token was issued to (RFC
    /// 9068), when present.
    pub fn client_id(&self) -> Option<&str> {
        self.outside.as_deref()?.client_id.as_deref()
    }

    /// Whether the token was issued by this app's own [`Jwt`](crate::Jwt)
    /// (`true`) or by a [`TrustedIssuer`](crate::TrustedIssuer) (`false`).
    pub fn is_local(&self) -> bool {
        self.outside.is_none()
    }

    /// The application's own claims.
    pub fn custom(&self) -> &C {
        &self.custom
    }

    /// Takes the application's own claims out.
    pub fn into_custom(self) -> C {
        self.custom
    }
}

/// The app's custom claims from a payload whose registered claims were read.
/// A claims type that holds no data and takes an empty object
/// ([`NoCustomClaims`], a `struct Empty {}`) is made without a second parse of
/// the payload: it has only one value, the one the parse would make. (Only a
/// type that also refuses unknown fields could differ, and it would refuse
/// every token, which always carries registered claims.)
pub(crate) fn custom_claims<C: serde::de::DeserializeOwned>(
    payload: &[u8],
) -> Result<C, crate::error::TokenError> {
    if std::mem::size_of::<C>() == 0 {
        let empty = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
            std::iter::empty::<(&str, &str)>(),
        );
        if let Ok(claims) = C::deserialize(empty) {
            return Ok(claims);
        }
    }
    serde_json::from_slice(payload).map_err(|_| crate::error::TokenError::Json)
}

/// The issuer a token names, sharing `configured`'s allocation when it is that
/// one.
pub(crate) fn shared_issuer(
    iss: Option<Cow<'_, str>>,
    configured: Option<&Arc<str>>,
) -> Option<Arc<str>> {
    let iss = iss?;
    match configured {
        Some(c) if **c == *iss => Some(c.clone()),
        _ => Some(Arc::from(&*iss)),
    }
}

/// The audiences a token names (`None` for none), sharing `configured`'s
/// allocation when they are the same list.
pub(crate) fn shared_audience(
    aud: &Audience<'_>,
    configured: Option<&Arc<[String]>>,
) -> Option<Arc<[String]>> {
    if aud.is_empty() {
        return None;
    }
    if let Some(c) = configured
        && c.len() == aud.len()
        && c.iter().zip(aud.iter()).all(|(c, a)| c == a)
    {
        return Some(c.clone());
    }
    Some(aud.iter().map(str::to_owned).collect())
}

/// Registered claim names; custom claims may not use them.
pub(crate) const REGISTERED: &[&str] = &[
    "jti",
    "sid",
    "token_type",
    "iat",
    "nbf",
    "exp",
    "iss",
    "aud",
    "sub",
];
