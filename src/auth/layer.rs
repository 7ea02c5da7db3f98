//! The layer and its builder methods.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use tower_layer::Layer;

use super::rejection::JsonRejection;
use super::service::{AuthConfig, ErasedResolver, JwtAuth};
use super::source::TokenSource;
use crate::claims::NoCustomClaims;
use crate::config::Jwt;
use crate::store::TokenStore;
use crate::user::UserResolver;

/// Validates access tokens in front of a service. See the [module docs](crate::auth).
///
/// `C` is the app's custom-claims type (the claims in extensions are `Claims<C>`);
/// `R` builds the response for refused requests.
#[must_use]
pub struct JwtAuthLayer<C = NoCustomClaims, R = JsonRejection> {
    config: Arc<AuthConfig>,
    rejection: R,
    _claims: PhantomData<fn() -> C>,
}

impl<C, R: Clone> Clone for JwtAuthLayer<C, R> {
    fn clone(&self) -> Self {
        JwtAuthLayer {
            config: self.config.clone(),
            rejection: self.rejection.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C, R: fmt::Debug> fmt::Debug for JwtAuthLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field("config", &self.config)
            .field("rejection", &self.rejection)
            .finish()
    }
}

impl JwtAuthLayer<NoCustomClaims, JsonRejection> {
    /// A stateless layer: signature and claims only, `Authorization: Bearer`,
    /// JSON rejections in realm `api`.
    pub fn new(jwt: Jwt) -> Self {
        JwtAuthLayer {
            config: Arc::new(AuthConfig {
                jwt,
                source: TokenSource::Bearer,
                optional: false,
                revocation: None,
                user: None,
            }),
            rejection: JsonRejection::default(),
            _claims: PhantomData,
        }
    }
}

impl<C> JwtAuthLayer<C, JsonRejection> {
    /// The realm named in `WWW-Authenticate` challenges (default `api`).
    pub fn realm(mut self, realm: &str) -> Self {
        self.rejection = JsonRejection::with_realm(realm);
        self
    }
}

impl<C, R> JwtAuthLayer<C, R> {
    fn config_mut(&mut self) -> &mut AuthConfig {
        Arc::make_mut(&mut self.config)
    }

    /// Parses the app's own claims as `C2` (inserted as `Claims<C2>`).
    pub fn claims<C2>(self) -> JwtAuthLayer<C2, R> {
        JwtAuthLayer {
            config: self.config,
            rejection: self.rejection,
            _claims: PhantomData,
        }
    }

    /// Where to find the token (default: `Authorization: Bearer`).
    pub fn token_source(mut self, source: TokenSource) -> Self {
        self.config_mut().source = source;
        self
    }

    /// Lets requests without a token through, without claims (for routes where
    /// authentication is optional). A token that is sent must still be valid.
    pub fn optional(mut self) -> Self {
        self.config_mut().optional = true;
        self
    }

    /// Turns on the revocation check: a token whose session was logged out, or
    /// whose user revoked all sessions after it was issued, is refused at once.
    /// One store lookup per request; a store that is down gives 503.
    pub fn revocation_check(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.config_mut().revocation = Some(store);
        self
    }

    /// Resolves the user named by each token and puts `R2::User` into the request
    /// extensions; a missing or inactive user is refused (401).
    pub fn resolve_user<U: UserResolver>(mut self, users: Arc<U>) -> Self {
        self.config_mut().user = Some(Arc::new(users) as Arc<dyn ErasedResolver>);
        self
    }

    /// Replaces the rejection response builder.
    pub fn on_rejection<R2>(self, rejection: R2) -> JwtAuthLayer<C, R2> {
        JwtAuthLayer {
            config: self.config,
            rejection,
            _claims: PhantomData,
        }
    }
}

impl<S, C, R: Clone> Layer<S> for JwtAuthLayer<C, R> {
    type Service = JwtAuth<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth::new(inner, self.config.clone(), self.rejection.clone())
    }
}
