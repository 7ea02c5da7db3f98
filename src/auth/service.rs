//! The middleware service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::context::LayerContext;
use super::future::ResponseFuture;
use super::rejection::OnRejection;
use super::source::TokenSource;
use crate::cache::{Digest, TokenCache};
use crate::error::{AuthError, TokenError};
use crate::issuers::{Judged, TrustedIssuer};
use crate::jwt::{Claims, TokenKind};
use crate::jwt::{Jwt, jws};
use crate::metrics::{self, StoreOp};
use crate::revocations::{RevocationView, ViewAnswer};
use crate::store::TokenStore;
use crate::user::{UserLookup, UserResolver};
use crate::wire::BoxFuture;

pub(crate) type Inserter = Box<dyn FnOnce(&mut Extensions) + Send>;

/// A [`UserResolver`] with its types erased: resolves and returns what to insert.
pub(crate) trait ErasedResolver: Send + Sync {
    fn resolve(&self, user_id: String) -> BoxFuture<Result<Inserter, AuthError>>;
}

impl<U: UserResolver> ErasedResolver for Arc<U> {
    fn resolve(&self, user_id: String) -> BoxFuture<Result<Inserter, AuthError>> {
        let users = self.clone();
        Box::pin(async move {
            // A value that cannot be the id type is refused without a lookup.
            let id: U::Id = user_id.parse().map_err(|_| TokenError::UserId)?;
            match UserResolver::resolve(&*users, &id).await? {
                UserLookup::Active(user) => Ok(Box::new(move |ext: &mut Extensions| {
                    ext.insert(user);
                }) as Inserter),
                UserLookup::Inactive | UserLookup::Missing => Err(TokenError::UserInactive.into()),
            }
        })
    }
}

#[derive(Clone)]
pub(crate) struct AuthConfig {
    pub(crate) jwt: Jwt,
    pub(crate) source: TokenSource,
    pub(crate) optional: bool,
    pub(crate) revocation: Option<Arc<dyn TokenStore>>,
    pub(crate) user: Option<Arc<dyn ErasedResolver>>,
    /// Outside issuers whose tokens are accepted besides the app's own.
    pub(crate) issuers: Arc<[TrustedIssuer]>,
    /// The in-memory revocation view, asked before the store.
    pub(crate) view: Option<RevocationView>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt", &self.jwt)
            .field("source", &self.source)
            .field("optional", &self.optional)
            .field("revocation_check", &self.revocation.is_some())
            .field("resolve_user", &self.user.is_some())
            .field("issuers", &self.issuers)
            .field("revocation_view", &self.view.is_some())
            .finish()
    }
}

/// What a layer and all its services share, behind one `Arc`: the store
/// checks' future holds one reference for the configuration and the cache.
pub(crate) struct Shared<C> {
    pub(crate) config: AuthConfig,
    /// The opt-in verified-token cache (typed by the claims it stores).
    pub(crate) cache: Option<TokenCache<C>>,
    /// Told to the handlers behind the layer, in every request's extensions
    /// (read only by the axum extractors).
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) context: LayerContext,
}

impl<C> Clone for Shared<C> {
    fn clone(&self) -> Self {
        Shared {
            config: self.config.clone(),
            cache: self.cache.clone(),
            context: self.context.clone(),
        }
    }
}

impl<C> fmt::Debug for Shared<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("cache", &self.cache)
            .finish()
    }
}

/// The service [`JwtAuthLayer`](super::JwtAuthLayer) wraps around an inner service.
pub struct JwtAuth<S, C, R> {
    inner: S,
    shared: Arc<Shared<C>>,
    rejection: R,
}

impl<S, C, R> JwtAuth<S, C, R> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<C>>, rejection: R) -> Self {
        JwtAuth {
            inner,
            shared,
            rejection,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Clone, C, R: Clone> Clone for JwtAuth<S, C, R> {
    fn clone(&self) -> Self {
        JwtAuth::new(
            self.inner.clone(),
            self.shared.clone(),
            self.rejection.clone(),
        )
    }
}

impl<S: fmt::Debug, C, R: fmt::Debug> fmt::Debug for JwtAuth<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("inner", &self.inner)
            .field("config", &self.shared.config)
            .field("cache", &self.shared.cache)
            .finish_non_exhaustive()
    }
}

impl<S, C, R, ReqB, ResB> Service<Request<ReqB>> for JwtAuth<S, C, R>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    C: DeserializeOwned + Clone + Send + Sync + 'static,
    R: OnRejection<ResB>,
    ReqB: Send + 'static,
    ResB: 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        let cfg = &self.shared.config;
        let token = match cfg.source.extract(req.headers()) {
            Ok(Some(token)) => token,
            Ok(None) if cfg.optional => {
                metrics::validation_anonymous();
                self.shared.tell_context(&mut req);
                return ResponseFuture::inner(self.inner.call(req));
            }
            Ok(None) => return refuse(&self.rejection, AuthError::MissingToken),
            Err(e) => return refuse(&self.rejection, e),
        };
        let checked = match self.shared.validate(&token) {
            Ok(Some(checked)) => checked,
            Ok(None) => {
                // A trusted issuer's keys must be fetched first.
                let token = token.into_owned();
                return self.checking(req, Pending::FetchKeys(token));
            }
            Err(e) => return refuse(&self.rejection, e),
        };
        drop(token);
        if !checked.needs_store(cfg) {
            metrics::validation_accepted();
            self.shared.admit(&mut req, checked.claims);
            return ResponseFuture::inner(self.inner.call(req));
        }
        self.checking(req, Pending::StoreChecks(checked))
    }
}

impl<S, C, R> JwtAuth<S, C, R> {
    /// The slow path, in a future: what is `pending` (a key fetch, or the
    /// store checks of claims already checked), the opt-in store checks, then the
    /// service that was polled ready (a clone takes its place here, as tower's
    /// docs advise). The future holds one reference, to what the layer's
    /// services share.
    fn checking<ReqB, ResB>(
        &mut self,
        mut req: Request<ReqB>,
        pending: Pending<C>,
    ) -> ResponseFuture<S::Future>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        C: DeserializeOwned + Clone + Send + Sync + 'static,
        R: OnRejection<ResB>,
        ReqB: Send + 'static,
        ResB: 'static,
    {
        let clone = self.inner.clone();
        let svc = std::mem::replace(&mut self.inner, clone);
        let (shared, rejection) = (self.shared.clone(), self.rejection.clone());
        ResponseFuture::checking(Box::pin(async move {
            let checked = match pending {
                Pending::StoreChecks(checked) => Ok(checked),
                Pending::FetchKeys(token) => shared.validate_after_fetch(&token).await,
            };
            let insert = match checked {
                Ok(checked) if checked.needs_store(&shared.config) => shared
                    .store_checks(&checked)
                    .await
                    .map(|insert| (checked, insert)),
                Ok(checked) => Ok((checked, None)),
                Err(e) => Err(e),
            };
            match insert {
                Ok((checked, insert)) => {
                    metrics::validation_accepted();
                    shared.admit(&mut req, checked.claims);
                    if let Some(insert) = insert {
                        insert(req.extensions_mut());
                    }
                    let mut svc = svc;
                    svc.call(req).await
                }
                Err(e) => {
                    metrics::validation_refused(&e);
                    Ok(rejection.on_rejection(&e))
                }
            }
        }))
    }
}

/// What the slow path still has to do before the inner service is called.
enum Pending<C> {
    /// The token passed; the opt-in store checks remain.
    StoreChecks(Checked<C>),
    /// A trusted issuer's keys must be fetched, then the token judged.
    FetchKeys(String),
}

/// A token whose signature and claims passed, and what the store checks need.
struct Checked<C> {
    claims: Claims<C>,
    /// With the cache: the token's digest, to record the store's answer.
    digest: Option<Digest>,
    /// With the cache: the store's last answer for it is recent enough to skip it.
    revocation_fresh: bool,
    /// From a trusted issuer: no session or user of this app to check.
    outside: bool,
}

impl<C> Checked<C> {
    fn outside(claims: Claims<C>) -> Self {
        Checked {
            claims,
            digest: None,
            revocation_fresh: false,
            outside: true,
        }
    }

    fn needs_store(&self, cfg: &AuthConfig) -> bool {
        !self.outside
            && ((cfg.revocation.is_some() && !self.revocation_fresh) || cfg.user.is_some())
    }
}

impl<C: DeserializeOwned + Clone + Send + Sync + 'static> Shared<C> {
    /// Signature and claims: a trusted issuer's rules for a token whose `iss`
    /// names one, else the app's own, through the cache when there is one.
    /// `Ok(None)`: the issuer's keys must be fetched first.
    ///
    /// The app's own rules are tried first: most requests carry the app's own
    /// tokens, and those then pay nothing for the trusted issuers (no read of
    /// `iss` before the signature). Only a token they refuse, or one whose
    /// `iss` names a trusted issuer, is looked at for an issuer: the answer is
    /// the one reading `iss` first would give.
    fn validate(&self, token: &str) -> Result<Option<Checked<C>>, AuthError> {
        let cfg = &self.config;
        let own = self.validate_own(token);
        let mut checked = match own {
            Ok(checked) if !self.names_trusted_issuer(&checked.claims) => checked,
            own => {
                if let Some(issuer) = self.trusted_issuer(token)? {
                    return match issuer.judge::<C>(token, cfg.jwt.now()) {
                        Judged::Done(claims) => claims.map(|c| Some(Checked::outside(c))),
                        Judged::NeedsKeys => Ok(None),
                    };
                }
                own?
            }
        };
        if let Some(view) = &cfg.view
            && !checked.revocation_fresh
        {
            let c = &checked.claims;
            match view.check(c.session_id, &c.user_id, c.issued_at) {
                ViewAnswer::Revoked => {
                    metrics::revocation_answered(metrics::RevocationSource::View);
                    if let (Some(cache), Some(digest)) = (&self.cache, checked.digest) {
                        cache.revoked(&digest);
                    }
                    return Err(TokenError::Revoked.into());
                }
                ViewAnswer::NotRevoked => {
                    metrics::revocation_answered(metrics::RevocationSource::View);
                    checked.revocation_fresh = true;
                }
                // Behind its bound, or the second of a revoke-all: the store
                // decides, and without one nothing is accepted.
                ViewAnswer::Unknown if cfg.revocation.is_none() => {
                    return Err(AuthError::StoreUnavailable(crate::error::StoreError::new(
                        "the revocation view is behind and no store is configured",
                    )));
                }
                ViewAnswer::Unknown => {}
            }
        }
        Ok(Some(checked))
    }

    /// The app's own rules, through the cache when there is one.
    fn validate_own(&self, token: &str) -> Result<Checked<C>, AuthError> {
        let cfg = &self.config;
        Ok(match &self.cache {
            None => Checked {
                claims: cfg.jwt.validate(token, TokenKind::Access)?,
                digest: None,
                revocation_fresh: false,
                outside: false,
            },
            Some(cache) => {
                let c = cache.layer_validate(&cfg.jwt, token, cfg.revocation.is_some())?;
                Checked {
                    claims: c.claims,
                    digest: c.digest,
                    revocation_fresh: c.revocation_fresh,
                    outside: false,
                }
            }
        })
    }

    /// Whether claims the app's own rules accepted name a trusted issuer in
    /// `iss` (only the app's keys could have signed them; such a token is
    /// judged by that issuer's rules, as reading `iss` first would).
    fn names_trusted_issuer(&self, claims: &Claims<C>) -> bool {
        claims
            .issuer()
            .and_then(|iss| self.issuer_named(iss))
            .is_some()
    }

    /// The trusted issuer whose `iss` is `iss`.
    fn issuer_named(&self, iss: &str) -> Option<&TrustedIssuer> {
        self.config.issuers.iter().find(|i| i.issuer() == iss)
    }

    /// The trusted issuer the token's `iss` names, if any. A layer that
    /// resolves users serves this app's users only: it refuses outside tokens.
    fn trusted_issuer(&self, token: &str) -> Result<Option<&TrustedIssuer>, AuthError> {
        if self.config.issuers.is_empty() {
            return Ok(None);
        }
        let found = jws::pick_by_issuer(token, |iss| self.issuer_named(iss));
        if found.is_some() && self.config.user.is_some() {
            return Err(TokenError::Issuer.into());
        }
        Ok(found)
    }

    /// A trusted issuer's token, after fetching the issuer's keys.
    async fn validate_after_fetch(&self, token: &str) -> Result<Checked<C>, AuthError> {
        let issuer = self.trusted_issuer(token)?.ok_or(TokenError::Issuer)?;
        let claims = issuer
            .judge_after_fetch(token, self.config.jwt.now())
            .await?;
        Ok(Checked::outside(claims))
    }

    /// The claims and the layer's context go into the extensions.
    fn admit<B>(&self, req: &mut Request<B>, claims: Claims<C>) {
        req.extensions_mut().insert(claims);
        self.tell_context(req);
    }

    /// The layer's context, for the axum extractors (the only readers): without
    /// the `axum` feature nothing reads it, and the request pays nothing.
    fn tell_context<B>(&self, req: &mut Request<B>) {
        #[cfg(feature = "axum")]
        req.extensions_mut().insert(self.context.clone());
        #[cfg(not(feature = "axum"))]
        let _ = req;
    }

    /// The opt-in checks: revocation (unless the cache's answer is fresh), then
    /// the user. Answers what to insert for the user.
    async fn store_checks(&self, checked: &Checked<C>) -> Result<Option<Inserter>, AuthError> {
        let cfg = &self.config;
        let claims = &checked.claims;
        if !checked.revocation_fresh
            && let Some(store) = &cfg.revocation
        {
            // Where to record the store's answer: only a cached token's.
            let record = checked
                .digest
                .and_then(|d| self.cache.as_ref().map(|c| (c, d)));
            let started = record.map(|(cache, _)| cache.check_started());
            metrics::revocation_answered(metrics::RevocationSource::Store);
            let revoked = metrics::timed(
                StoreOp::IsRevoked,
                store.is_revoked(claims.session_id, &claims.user_id, claims.issued_at),
            )
            .await?;
            if let (Some((cache, digest)), Some(started)) = (record, started) {
                if revoked {
                    cache.revoked(&digest);
                } else {
                    cache.revocation_checked(&digest, started);
                }
            }
            if revoked {
                return Err(TokenError::Revoked.into());
            }
        }
        let Some(users) = &cfg.user else {
            return Ok(None);
        };
        match users.resolve(claims.user_id.clone()).await {
            Err(AuthError::InvalidToken(TokenError::UserInactive)) => {
                self.revoke_refused_user(checked).await;
                Err(TokenError::UserInactive.into())
            }
            resolved => resolved.map(Some),
        }
    }

    /// A missing or inactive user's session is revoked, as a refresh would
    /// revoke it, when the layer has a store (the revocation check on); the
    /// request is refused either way, so a store that fails here only leaves
    /// the revocation to the next refresh.
    async fn revoke_refused_user(&self, checked: &Checked<C>) {
        let Some(store) = &self.config.revocation else {
            return;
        };
        let now = self.config.jwt.clock().now_secs();
        let revoked = metrics::timed(
            StoreOp::RevokeSession,
            store.revoke_session(checked.claims.session_id, &checked.claims.user_id, now),
        )
        .await;
        if revoked.is_ok()
            && let (Some(cache), Some(digest)) = (&self.cache, checked.digest)
        {
            cache.revoked(&digest);
        }
    }
}

/// The rejection response for a request refused before the inner service.
fn refuse<F, B, E, R: OnRejection<B>>(rejection: &R, e: AuthError) -> ResponseFuture<F>
where
    F: std::future::Future<Output = Result<Response<B>, E>>,
{
    metrics::validation_refused(&e);
    ResponseFuture::rejected(Ok(rejection.on_rejection(&e)))
}
