//! The middleware service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;

use super::future::ResponseFuture;
use super::rejection::OnRejection;
use super::source::TokenSource;
use crate::cache::{Digest, TokenCache};
use crate::error::{AuthError, TokenError};
use crate::jwt::Jwt;
use crate::jwt::{Claims, TokenKind};
use crate::metrics::{self, StoreOp};
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
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt", &self.jwt)
            .field("source", &self.source)
            .field("optional", &self.optional)
            .field("revocation_check", &self.revocation.is_some())
            .field("resolve_user", &self.user.is_some())
            .finish()
    }
}

/// What a layer and all its services share, behind one `Arc`: the store
/// checks' future holds one reference for the configuration and the cache.
pub(crate) struct Shared<C> {
    pub(crate) config: AuthConfig,
    /// The opt-in verified-token cache (typed by the claims it stores).
    pub(crate) cache: Option<TokenCache<C>>,
}

impl<C> Clone for Shared<C> {
    fn clone(&self) -> Self {
        Shared {
            config: self.config.clone(),
            cache: self.cache.clone(),
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
        // With the cache: the token's digest (to record the store's answer) and
        // whether the store's last answer for it is recent enough to skip it.
        let mut cached: Option<Digest> = None;
        let mut revocation_fresh = false;
        let claims: Claims<C> = match cfg.source.extract(req.headers()) {
            Ok(Some(token)) => match &self.shared.cache {
                None => match cfg.jwt.validate(&token, TokenKind::Access) {
                    Ok(claims) => claims,
                    Err(e) => return refuse(&self.rejection, e.into()),
                },
                Some(cache) => {
                    match cache.layer_validate(&cfg.jwt, &token, cfg.revocation.is_some()) {
                        Ok(c) => {
                            cached = c.digest;
                            revocation_fresh = c.revocation_fresh;
                            c.claims
                        }
                        Err(e) => return refuse(&self.rejection, e.into()),
                    }
                }
            },
            Ok(None) if cfg.optional => {
                metrics::validation_anonymous();
                return ResponseFuture::inner(self.inner.call(req));
            }
            Ok(None) => return refuse(&self.rejection, AuthError::MissingToken),
            Err(e) => return refuse(&self.rejection, e),
        };
        if (cfg.revocation.is_none() || revocation_fresh) && cfg.user.is_none() {
            metrics::validation_accepted();
            req.extensions_mut().insert(claims);
            return ResponseFuture::inner(self.inner.call(req));
        }

        // The opt-in checks need the store: run them, then call the service that
        // was polled ready (a clone takes its place here, as tower's docs advise).
        // The future holds one reference, to what the layer's services share.
        let ask_store = !revocation_fresh;
        // Where to record the store's answer: only a cached token's.
        let record = cached;
        let shared = self.shared.clone();
        // The claims travel with the checks and go into the extensions once
        // they pass: the store reads the user id from them, no copy.
        let clone = self.inner.clone();
        let mut svc = std::mem::replace(&mut self.inner, clone);
        let rejection = self.rejection.clone();
        ResponseFuture::checking(Box::pin(async move {
            let checked: Result<Option<Inserter>, AuthError> = async {
                let cfg = &shared.config;
                if ask_store && let Some(store) = &cfg.revocation {
                    let record = record.and_then(|d| shared.cache.as_ref().map(|c| (c, d)));
                    let started = record.map(|(cache, _)| cache.check_started());
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
                match &cfg.user {
                    Some(users) => Ok(Some(users.resolve(claims.user_id.clone()).await?)),
                    None => Ok(None),
                }
            }
            .await;
            match checked {
                Ok(insert) => {
                    metrics::validation_accepted();
                    req.extensions_mut().insert(claims);
                    if let Some(insert) = insert {
                        insert(req.extensions_mut());
                    }
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

/// The rejection response for a request refused before the inner service.
fn refuse<F, B, E, R: OnRejection<B>>(rejection: &R, e: AuthError) -> ResponseFuture<F>
where
    F: std::future::Future<Output = Result<Response<B>, E>>,
{
    metrics::validation_refused(&e);
    ResponseFuture::rejected(Ok(rejection.on_rejection(&e)))
}
