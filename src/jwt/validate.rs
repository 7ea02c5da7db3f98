//! Validating a token: the JWS steps of [`jws`](super::jws), then the claim
//! rules (RFC 8725, RFC 9068): times with leeway, issuer, audience, explicit
//! typing, and the claims this crate needs (`jti`, `sid`, the user id).

use std::borrow::Cow;
use std::cell::Cell;

use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::b64::PayloadBuf;
use super::builder::Settings;
use super::claims::{Claims, TokenKind, custom_claims, shared_audience, shared_issuer};
use super::handle::Jwt;
use super::jws;
use super::one_pass::read_payload;
use super::payload::RawPayload;
use crate::error::TokenError;

impl Jwt {
    /// Validates a token of the given kind and returns its claims.
    ///
    /// ```
    /// use tower_jwt_auth::{Jwt, Key, Algorithm, TokenKind, NoCustomClaims};
    /// let jwt = Jwt::builder()
    ///     .signing_key(Key::hmac("k1", Algorithm::HS256, [7u8; 32]).unwrap())
    ///     .build()
    ///     .unwrap();
    /// let pair = jwt.issue_pair("3f2b6c4e-8a61-4c43-9d1e-2a6f0b7c9e11", &NoCustomClaims).unwrap();
    /// let claims = jwt.validate::<NoCustomClaims>(&pair.access, TokenKind::Access).unwrap();
    /// assert_eq!(claims.user_id(), "3f2b6c4e-8a61-4c43-9d1e-2a6f0b7c9e11");
    /// // A refresh token is not an access token.
    /// assert!(jwt.validate::<NoCustomClaims>(&pair.refresh, TokenKind::Access).is_err());
    /// ```
    pub fn validate<C: DeserializeOwned>(
        &self,
        token: &str,
        kind: TokenKind,
    ) -> Result<Claims<C>, TokenError> {
        self.validate_at(token, kind, self.now())
    }

    /// [`Jwt::validate`] with the clock given: `now` is seconds since the Unix
    /// epoch. For tests and for replaying a decision at a known instant; requests
    /// go through [`Jwt::validate`].
    ///
    /// ```
    /// use tower_jwt_auth::{Jwt, Key, Algorithm, TokenKind, TokenError, NoCustomClaims};
    /// let jwt = Jwt::builder()
    ///     .signing_key(Key::hmac("k1", Algorithm::HS256, [7u8; 32]).unwrap())
    ///     .build()
    ///     .unwrap();
    /// let pair = jwt.issue_pair("42", &NoCustomClaims).unwrap();
    /// let exp = pair.access_expires_at;
    /// assert!(jwt.validate_at::<NoCustomClaims>(&pair.access, TokenKind::Access, exp - 1).is_ok());
    /// // Dead at `exp`, not one second later.
    /// let err = jwt.validate_at::<NoCustomClaims>(&pair.access, TokenKind::Access, exp).unwrap_err();
    /// assert_eq!(err, TokenError::Expired);
    /// ```
    pub fn validate_at<C: DeserializeOwned>(
        &self,
        token: &str,
        kind: TokenKind,
        now: u64,
    ) -> Result<Claims<C>, TokenError> {
        let s = self.settings();
        if token.len() > s.max_token_size {
            return Err(TokenError::TooLarge);
        }
        let dup = Cell::new(false);
        let mut buf = PayloadBuf::new();
        let payload = jws::verify_typed(token, kind, &self.keys(), &dup, &mut buf)?;
        let (reg, custom) = read_payload::<C>(payload, &s.user_id_claim, &dup)?;
        let times = check_registered(&reg, s, kind, now)?;
        let (jti, session_id, user_id) = required_ids(&reg)?;
        let custom: C = custom.map_or_else(|| custom_claims(payload), Ok)?;
        let scopes = reg.scopes();
        Ok(Claims {
            user_id,
            kind,
            jti,
            session_id,
            issued_at: times.issued_at,
            not_before: times.not_before,
            expires_at: times.expires_at,
            issuer: shared_issuer(reg.iss, s.issuer.as_ref()),
            scopes,
            outside: None,
            audience: shared_audience(&reg.aud, Some(&s.audience)),
            custom,
        })
    }
}

/// The three dates of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) issued_at: u64,
    pub(crate) not_before: Option<u64>,
    pub(crate) expires_at: u64,
}

/// The time rules, written once (the verified-token cache applies them too):
/// dead *at* `exp` (with no leeway a token whose `exp` is this second is
/// refused), `nbf` and `iat` not in the future, each with the leeway.
pub(crate) fn check_times(t: Times, leeway: u64, now: u64) -> Result<(), TokenError> {
    if expired(t.expires_at, leeway, now) {
        return Err(TokenError::Expired);
    }
    if t.not_before
        .is_some_and(|nbf| nbf > now.saturating_add(leeway))
    {
        return Err(TokenError::NotYetValid);
    }
    if t.issued_at > now.saturating_add(leeway) {
        return Err(TokenError::IssuedInFuture);
    }
    Ok(())
}

/// Whether a token dying at `expires_at` is dead at `now`: dead *at* `exp`.
pub(crate) fn expired(expires_at: u64, leeway: u64, now: u64) -> bool {
    now >= expires_at.saturating_add(leeway)
}

/// Times, issuer, audience and token type of a payload whose signature verified.
fn check_registered(
    reg: &RawPayload<'_>,
    s: &Settings,
    kind: TokenKind,
    now: u64,
) -> Result<Times, TokenError> {
    let expires_at = reg.exp.ok_or(TokenError::MissingExpiry)?;
    // A missing `iat` is reported after the other time rules, as 0 passes them.
    let mut times = Times {
        issued_at: reg.iat.unwrap_or(0),
        not_before: reg.nbf,
        expires_at,
    };
    check_times(times, s.leeway, now)?;
    times.issued_at = reg.iat.ok_or(TokenError::MissingClaim)?;
    if let Some(want) = &s.issuer
        && reg.iss.as_deref() != Some(&**want)
    {
        return Err(TokenError::Issuer);
    }
    if s.audience.is_empty() {
        // RFC 7519 §4.1.3: a recipient that is not named in a present `aud`
        // must refuse the token; with no audience configured we are named in none.
        if reg.aud_present {
            return Err(TokenError::Audience);
        }
    } else if !reg.aud.iter().any(|a| s.audience.iter().any(|w| w == a)) {
        return Err(TokenError::Audience);
    }
    if reg.token_type.as_deref() != Some(kind.claim_value()) {
        return Err(TokenError::WrongType);
    }
    Ok(times)
}

/// `jti`, `sid` and the user id: present, and the ids in the one hyphenated
/// spelling this crate writes (one spelling per id).
fn required_ids(reg: &RawPayload<'_>) -> Result<(Uuid, Uuid, String), TokenError> {
    let parse_uuid = |v: &Option<Cow<'_, str>>| {
        v.as_deref()
            .filter(|v| v.len() == 36)
            .and_then(|v| Uuid::try_parse(v).ok())
            .ok_or(TokenError::MissingClaim)
    };
    let jti = parse_uuid(&reg.jti)?;
    let session_id = parse_uuid(&reg.sid)?;
    match reg.user_id.as_deref() {
        Some(u) if !u.is_empty() => Ok((jti, session_id, u.to_owned())),
        _ => Err(TokenError::MissingClaim),
    }
}
