//! Minting tokens: the access/refresh pair of a session, each token signed with
//! the current signing key, the app's custom claims beside the registered ones.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use uuid::Uuid;

use super::claims::{REGISTERED, TokenKind};
use super::handle::Jwt;

/// A freshly minted access/refresh pair.
///
/// `Debug` shows the session and expiries, never the tokens. `Serialize` writes
/// what the refresh endpoint answers, `{"access","refresh"}`, so an app's own
/// route can answer `Json(pair)`; a [`LoginEndpoint`](crate::LoginEndpoint)
/// also sets `Cache-Control: no-store` and, in browser mode, the cookie.
#[derive(Clone)]
pub struct TokenPair {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
    /// The session (family) both tokens belong to.
    pub session_id: Uuid,
    /// The refresh token's `jti`.
    pub refresh_jti: Uuid,
    /// When the access token dies (seconds since the epoch).
    pub access_expires_at: u64,
    /// When the refresh token dies (seconds since the epoch).
    pub refresh_expires_at: u64,
}

impl Serialize for TokenPair {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut body = serializer.serialize_struct("TokenPair", 2)?;
        body.serialize_field("access", &self.access)?;
        body.serialize_field("refresh", &self.refresh)?;
        body.end()
    }
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("access", &"[redacted]")
            .field("refresh", &"[redacted]")
            .field("session_id", &self.session_id)
            .field("refresh_jti", &self.refresh_jti)
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish()
    }
}

/// Minting a token failed: the custom claims are not a JSON object, use a
/// registered claim name, or the signer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The custom claims did not serialize to a JSON object.
    #[error("custom claims must serialize to a JSON object")]
    NotAnObject,
    /// A custom claim uses a registered claim name.
    #[error("custom claim `{0}` collides with a registered claim")]
    Collision(String),
    /// Serialization or signing failed.
    #[error("could not sign the token")]
    Signing,
    /// The user id is empty: validation refuses such a token, so none is minted.
    #[error("the user id is empty")]
    EmptyUserId,
}

/// What goes into one token besides the custom claims.
pub(crate) struct Mint<'a> {
    pub(crate) kind: TokenKind,
    pub(crate) user_id: &'a str,
    pub(crate) jti: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
}

impl Jwt {
    /// Signs one token with the current signing key.
    pub(crate) fn mint<C: Serialize>(&self, m: Mint<'_>, custom: &C) -> Result<String, IssueError> {
        let s = self.settings();
        if m.user_id.is_empty() {
            return Err(IssueError::EmptyUserId);
        }
        let mut payload = match serde_json::to_value(custom).map_err(|_| IssueError::Signing)? {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => serde_json::Map::new(),
            _ => return Err(IssueError::NotAnObject),
        };
        if let Some(k) = payload
            .keys()
            .find(|k| REGISTERED.contains(&k.as_str()) || **k == s.user_id_claim)
        {
            return Err(IssueError::Collision(k.clone()));
        }
        payload.insert(s.user_id_claim.clone(), m.user_id.into());
        payload.insert("token_type".into(), m.kind.claim_value().into());
        payload.insert("jti".into(), m.jti.to_string().into());
        payload.insert("sid".into(), m.session_id.to_string().into());
        payload.insert("iat".into(), m.issued_at.into());
        payload.insert("exp".into(), m.expires_at.into());
        if let Some(iss) = &s.issuer {
            payload.insert("iss".into(), (&**iss).into());
        }
        match &s.audience[..] {
            [] => {}
            [one] => {
                payload.insert("aud".into(), one.as_str().into());
            }
            many => {
                payload.insert("aud".into(), many.to_vec().into());
            }
        }
        let keys = self.keys();
        let key = keys.signing();
        let header = serde_json::json!({ "alg": key.algorithm(), "typ": m.kind.header_typ(), "kid": key.kid() });
        let header = serde_json::to_vec(&header).map_err(|_| IssueError::Signing)?;
        let payload = serde_json::to_vec(&payload).map_err(|_| IssueError::Signing)?;
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let enc = key.encoding().ok_or(IssueError::Signing)?;
        let sig = jsonwebtoken::crypto::sign(token.as_bytes(), enc, key.algorithm())
            .map_err(|_| IssueError::Signing)?;
        token.push('.');
        token.push_str(&sig);
        Ok(token)
    }

    /// Mints an access token for an existing session.
    pub fn issue_access<C: Serialize>(
        &self,
        user_id: &str,
        session_id: Uuid,
        custom: &C,
    ) -> Result<(String, u64), IssueError> {
        self.issue_access_until(user_id, session_id, custom, u64::MAX)
    }

    /// [`Jwt::issue_access`], never expiring after `until` (the session's
    /// absolute expiry: no access token outlives its session).
    pub(crate) fn issue_access_until<C: Serialize>(
        &self,
        user_id: &str,
        session_id: Uuid,
        custom: &C,
        until: u64,
    ) -> Result<(String, u64), IssueError> {
        let now = self.now();
        let exp = now
            .saturating_add(self.inner.settings.access_ttl)
            .min(until);
        let m = Mint {
            kind: TokenKind::Access,
            user_id,
            jti: Uuid::new_v4(),
            session_id,
            issued_at: now,
            expires_at: exp,
        };
        Ok((self.mint(m, custom)?, exp))
    }

    /// Mints a refresh token with a given `jti` and expiry.
    pub(crate) fn issue_refresh<C: Serialize>(
        &self,
        user_id: &str,
        session_id: Uuid,
        jti: Uuid,
        expires_at: u64,
        custom: &C,
    ) -> Result<String, IssueError> {
        let m = Mint {
            kind: TokenKind::Refresh,
            user_id,
            jti,
            session_id,
            issued_at: self.now(),
            expires_at,
        };
        self.mint(m, custom)
    }

    /// Mints an access/refresh pair for a new session, without recording it
    /// anywhere: for stateless use. Apps with rotation use
    /// [`Sessions::login`](crate::Sessions::login), which records the session first.
    pub fn issue_pair<C: Serialize>(
        &self,
        user_id: &str,
        custom: &C,
    ) -> Result<TokenPair, IssueError> {
        let s = &self.inner.settings;
        let session_expires_at = self.now().saturating_add(s.session_max_age);
        let refresh_expires_at = self.now() + s.refresh_ttl.min(s.session_max_age);
        let ids = (Uuid::new_v4(), Uuid::new_v4());
        self.pair(user_id, ids, refresh_expires_at, session_expires_at, custom)
    }

    /// The pair of a new session `ids` = (session, first refresh `jti`); no
    /// token outlives `session_expires_at`.
    pub(crate) fn pair<C: Serialize>(
        &self,
        user_id: &str,
        (session_id, refresh_jti): (Uuid, Uuid),
        refresh_expires_at: u64,
        session_expires_at: u64,
        custom: &C,
    ) -> Result<TokenPair, IssueError> {
        let (access, access_expires_at) =
            self.issue_access_until(user_id, session_id, custom, session_expires_at)?;
        let refresh =
            self.issue_refresh(user_id, session_id, refresh_jti, refresh_expires_at, custom)?;
        Ok(TokenPair {
            access,
            refresh,
            session_id,
            refresh_jti,
            access_expires_at,
            refresh_expires_at,
        })
    }
}
