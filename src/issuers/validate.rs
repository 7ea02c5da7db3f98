//! Judging an outside token by its issuer's rules: the JWS steps with the
//! issuer's keys (keys from the token's header never), the times with the
//! issuer's leeway, `iss`, `aud`, the user claim, optional RFC 9068 typing,
//! scopes, roles, and the app's custom claims.

use std::borrow::Cow;
use std::cell::Cell;

use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::issuer::{IssuerKeys, IssuerRules, TrustedIssuer};
use crate::error::{AuthError, TokenError};
use crate::jwt::validate::{Times, check_times};
use crate::jwt::{
    Claims, Key, OutsideClaims, PayloadBuf, TokenKind, custom_claims, jws, shared_audience,
    shared_issuer,
};

/// What the keys at hand could decide about a token.
pub(crate) enum Judged<C> {
    /// Decided: the claims, or why not.
    Done(Result<Claims<C>, AuthError>),
    /// The keys must be fetched first (none yet, or its `kid` is unknown and a
    /// fetch is allowed now).
    #[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
    NeedsKeys,
}

impl TrustedIssuer {
    /// Judges `token` with the keys at hand, without waiting.
    pub(crate) fn judge<C: DeserializeOwned>(&self, token: &str, now: u64) -> Judged<C> {
        match &self.inner.keys {
            IssuerKeys::Static(keys) => {
                Judged::Done(self.inner.validate(token, keys, now).map_err(Into::into))
            }
            #[cfg(feature = "remote-keys")]
            IssuerKeys::Remote(remote) => match remote.keys() {
                Some(guard) => {
                    let keys = (*guard).as_deref().map_or(&[][..], |s| s.keys.as_slice());
                    match self.inner.validate(token, keys, now) {
                        Err(TokenError::UnknownKey)
                            if remote.worth_waiting() || !remote.is_current(&guard) =>
                        {
                            Judged::NeedsKeys
                        }
                        judged => Judged::Done(judged.map_err(Into::into)),
                    }
                }
                None if remote.worth_waiting() => Judged::NeedsKeys,
                None => Judged::Done(Err(AuthError::KeysUnavailable)),
            },
        }
    }

    /// Fetches the keys (one fetch for all the requests waiting), then judges
    /// `token` with them: 503 when there are still none.
    pub(crate) async fn judge_after_fetch<C: DeserializeOwned>(
        &self,
        token: &str,
        now: u64,
    ) -> Result<Claims<C>, AuthError> {
        match &self.inner.keys {
            IssuerKeys::Static(keys) => Ok(self.inner.validate(token, keys, now)?),
            #[cfg(feature = "remote-keys")]
            IssuerKeys::Remote(remote) => {
                let seen = remote.keys().and_then(|guard| (*guard).clone());
                let snapshot = remote
                    .fetch(seen.as_ref())
                    .await
                    .map_err(|_| AuthError::KeysUnavailable)?;
                Ok(self.inner.validate(token, &snapshot.keys, now)?)
            }
        }
    }
}

impl IssuerRules {
    /// The issuer's rules, with `keys`.
    pub(crate) fn validate<C: DeserializeOwned>(
        &self,
        token: &str,
        keys: &[Key],
        now: u64,
    ) -> Result<Claims<C>, TokenError> {
        if token.len() > self.max_token_size {
            return Err(TokenError::TooLarge);
        }
        let dup = Cell::new(false);
        let mut buf = PayloadBuf::new();
        let payload = jws::verify_with(
            token,
            |typ| !self.require_at_jwt || typ.is_some_and(|t| TokenKind::Access.matches_typ(t)),
            |kid| keys.iter().find(|k| k.kid() == kid),
            &dup,
            &mut buf,
        )?;
        let (reg, custom) = crate::jwt::read_payload::<C>(payload, &self.user_claim, &dup)?;
        let times = Times {
            issued_at: reg.iat.unwrap_or(0),
            not_before: reg.nbf,
            expires_at: reg.exp.ok_or(TokenError::MissingExpiry)?,
        };
        check_times(times, self.leeway, now)?;
        if reg.iss.as_deref() != Some(self.iss.as_str()) {
            return Err(TokenError::Issuer);
        }
        if !reg
            .aud
            .iter()
            .any(|a| self.audiences.iter().any(|w| w == a))
        {
            return Err(TokenError::Audience);
        }
        let user_id = match reg.user_id.as_deref() {
            Some(u) if !u.is_empty() => u.to_owned(),
            _ => return Err(TokenError::MissingClaim),
        };
        let roles = match &self.roles_claim {
            Some(path) => super::roles::roles_at(payload, path)?,
            None => Vec::new(),
        };
        let custom: C = custom.map_or_else(|| custom_claims(payload), Ok)?;
        let scopes = reg.scopes();
        Ok(Claims {
            user_id,
            kind: TokenKind::Access,
            jti: Uuid::nil(),
            session_id: Uuid::nil(),
            issued_at: times.issued_at,
            not_before: times.not_before,
            expires_at: times.expires_at,
            issuer: shared_issuer(reg.iss, None),
            audience: shared_audience(&reg.aud, None),
            scopes,
            outside: Some(Box::new(OutsideClaims {
                roles,
                client_id: reg.client_id.map(Cow::into_owned),
            })),
            custom,
        })
    }
}
