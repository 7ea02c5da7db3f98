//! The layer and its builder methods.

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use super::context::LayerContext;
use super::rejection::JsonRejection;
use super::require::RequireClaims;
use super::service::{AuthConfig, ErasedResolver, JwtAuth, Shared};
use super::source::TokenSource;
use crate::cache::TokenCache;
use crate::issuers::TrustedIssuer;
use crate::jwt::{Claims, Jwt, NoCustomClaims};
use crate::revocations::RevocationView;
use crate::sessions::Sessions;
use crate::store::TokenStore;
use crate::user::UserResolver;

/// Validates access tokens in front of a service. See the [module docs](crate::auth).
///
/// `C` is the app's custom-claims type (the claims in extensions are `Claims<C>`);
/// `R` builds the response for refused requests.
#[must_use]
pub struct JwtAuthLayer<C = NoCustomClaims, R = JsonRejection> {
    shared: Arc<Shared<C>>,
    rejection: R,
}

impl<C, R: Clone> Clone for JwtAuthLayer<C, R> {
    fn clone(&self) -> Self {
        JwtAuthLayer {
            shared: self.shared.clone(),
            rejection: self.rejection.clone(),
        }
    }
}

impl<C, R: fmt::Debug> fmt::Debug for JwtAuthLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field("config", &self.shared.config)
            .field("rejection", &self.rejection)
            .field("cache", &self.shared.cache)
            .finish()
    }
}

impl JwtAuthLayer<NoCustomClaims, JsonRejection> {
    /// A stateless layer for tokens without custom claims: signature and claims
    /// only, `Authorization: Bearer`, JSON rejections in realm `api`. For an
    /// app's own claims type, see [`JwtAuthLayer::with_claims`].
    pub fn new(jwt: Jwt) -> Self {
        Self::with_claims(jwt)
    }
}

impl<C: Send + Sync + 'static> JwtAuthLayer<C, JsonRejection> {
    /// A layer whose requests carry `Claims<C>`: the app's custom-claims type,
    /// chosen once, here. Extractors asking for another type fail loudly (see
    /// the `axum` module), never as a silent 401 or an anonymous request.
    ///
    /// ```
    /// # use tower_jwt_auth::{Algorithm, Jwt, JwtAuthLayer, Key};
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct AppClaims { role: String }
    /// # let jwt = Jwt::builder().signing_key(Key::hmac("k", Algorithm::HS256, [1u8; 32]).unwrap()).build().unwrap();
    /// let layer = JwtAuthLayer::<AppClaims>::with_claims(jwt);
    /// ```
    pub fn with_claims(jwt: Jwt) -> Self {
        JwtAuthLayer {
            shared: Arc::new(Shared {
                config: AuthConfig {
                    jwt,
                    source: TokenSource::Bearer,
                    optional: false,
                    revocation: None,
                    user: None,
                    issuers: Arc::from([]),
                    view: None,
                },
                cache: None,
                context: LayerContext::of::<C>(JsonRejection::default().realm_arc()),
            }),
            rejection: JsonRejection::default(),
        }
    }

    /// A layer for the tokens of `sessions`: their [`Jwt`] and their claims
    /// type, so the type is written once, on [`Sessions`]. The revocation check
    /// stays opt-in ([`JwtAuthLayer::revocation_check`]).
    pub fn for_sessions<R: UserResolver>(sessions: &Sessions<R, C>) -> Self
    where
        C: crate::sessions::CustomClaims,
    {
        Self::with_claims(sessions.jwt().clone())
    }

    /// The realm named in `WWW-Authenticate` challenges (default `api`), by the
    /// layer's rejections and by the axum extractors behind it.
    pub fn realm(mut self, realm: &str) -> Self {
        self.rejection = JsonRejection::with_realm(realm);
        Arc::make_mut(&mut self.shared).context.realm = self.rejection.realm_arc();
        self
    }
}

impl<C: Send + Sync + 'static> JwtAuthLayer<C, JsonRejection> {
    /// A layer for an API whose tokens all come from outside identity
    /// providers (a resource server with no tokens of its own): `issuer`'s
    /// tokens are accepted, every other token is refused. Trust more issuers
    /// with [`JwtAuthLayer::trust`].
    ///
    /// ```
    /// # use tower_jwt_auth::{Algorithm, Key, JwtAuthLayer, NoCustomClaims, TrustedIssuer};
    /// # let pem = std::fs::read("tests/keys/es256.pub.pem").unwrap();
    /// let keycloak = TrustedIssuer::with_keys(
    ///     "https://sso.example.com/realms/acme",
    ///     [Key::from_public_pem("kc-1", Algorithm::ES256, &pem).unwrap()],
    /// )
    /// .audience("orders-api")
    /// .roles_claim("realm_access.roles")
    /// .build()
    /// .unwrap();
    /// let auth = JwtAuthLayer::<NoCustomClaims>::trusting(keycloak);
    /// ```
    pub fn trusting(issuer: TrustedIssuer) -> Self {
        Self::with_claims(Jwt::accepting_none()).trust(issuer)
    }
}

impl<C, R> JwtAuthLayer<C, R> {
    /// Also accepts the access tokens of `issuer`, an outside identity
    /// provider (see [`TrustedIssuer`]): a token whose `iss` is the issuer's is
    /// judged by the issuer's rules and keys, every other token by the app's
    /// own [`Jwt`]. Outside tokens have no session here, so the revocation
    /// check does not apply to them, and a layer that
    /// [resolves users](JwtAuthLayer::resolve_user) refuses them (401): its
    /// routes are for the app's own users. The claims type `C` must accept
    /// both kinds of payload (make fields that only one kind carries
    /// `Option`s). Outside tokens bypass the verified-token cache.
    pub fn trust(mut self, issuer: TrustedIssuer) -> Self {
        let config = self.config_mut();
        let mut issuers = config.issuers.to_vec();
        issuers.retain(|i| i.issuer() != issuer.issuer());
        issuers.push(issuer);
        config.issuers = issuers.into();
        self
    }
}

impl<C: Send + Sync + 'static, R: Clone> JwtAuthLayer<C, R> {
    /// A [`RequireClaims`] layer of this layer's claims type and rejection
    /// (realm included): requests whose claims fail `predicate` get 403
    /// `insufficient_scope` naming `scope`. Put it inside this layer.
    ///
    /// ```
    /// # use tower_jwt_auth::{Algorithm, Jwt, JwtAuthLayer, Key};
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct AppClaims { roles: Vec<String> }
    /// # let jwt = Jwt::builder().signing_key(Key::hmac("k", Algorithm::HS256, [1u8; 32]).unwrap()).build().unwrap();
    /// let auth = JwtAuthLayer::<AppClaims>::with_claims(jwt);
    /// let admins = auth.require("admin", |c| c.custom().roles.iter().any(|r| r == "admin"));
    /// ```
    pub fn require(
        &self,
        scope: &str,
        predicate: impl Fn(&Claims<C>) -> bool + Send + Sync + 'static,
    ) -> RequireClaims<C, R> {
        RequireClaims::new(scope, predicate).on_rejection(self.rejection.clone())
    }
}

impl<C, R> JwtAuthLayer<C, R> {
    fn config_mut(&mut self) -> &mut AuthConfig {
        &mut Arc::make_mut(&mut self.shared).config
    }

    /// Turns on the verified-token cache: a token seen before skips the
    /// signature check and the decoding, while its expiry, its key and (with
    /// the revocation check) its session are still checked on every request.
    /// See [`TokenCache`] for the bounds and
    /// [`TokenCache::revocation_staleness`] for how it meets the revocation check.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_jwt_auth::{Algorithm, Jwt, JwtAuthLayer, Key, TokenCache};
    /// # let jwt = Jwt::builder().signing_key(Key::hmac("k", Algorithm::HS256, [1u8; 32]).unwrap()).build().unwrap();
    /// let layer = JwtAuthLayer::new(jwt)
    ///     .cache(TokenCache::new(10_000, 8 << 20).revocation_staleness(Duration::from_secs(5)));
    /// ```
    pub fn cache(mut self, cache: TokenCache<C>) -> Self {
        Arc::make_mut(&mut self.shared).cache = Some(cache);
        self
    }

    /// Where to find the token (default: `Authorization: Bearer`).
    pub fn token_source(mut self, source: TokenSource) -> Self {
        self.config_mut().source = source;
        self
    }

    /// Lets requests without a token through, without claims (for routes where
    /// authentication is optional). A token that is sent must still be valid:
    /// an expired, badly signed or revoked token answers 401 `invalid_token`,
    /// not an anonymous request. The client sending it believes it is signed
    /// in; treated as anonymous it would never learn to refresh, and its user
    /// would see a signed-out page while holding a session. The 401 tells it to
    /// refresh (or sign in again).
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

    /// Checks revocation in `view`, in memory, with no store round trip: a
    /// logged-out session's access token is refused as soon as the view has
    /// read the store's log. When the view cannot tell (behind its bound, or a
    /// token issued in the second of a revoke-all), the store decides if
    /// [`JwtAuthLayer::revocation_check`] gave one, else the request gets 503.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tower_jwt_auth::{JwtAuthLayer, MemoryStore, RevocationView};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let jwt = tower_jwt_auth::conformance::test_jwt();
    /// let store = Arc::new(MemoryStore::new());
    /// let view = RevocationView::builder(store.clone()).start();
    /// let auth = JwtAuthLayer::new(jwt)
    ///     .revocation_view(view)
    ///     .revocation_check(store); // the fallback
    /// # }
    /// ```
    pub fn revocation_view(mut self, view: RevocationView) -> Self {
        self.config_mut().view = Some(view);
        self
    }

    /// Resolves the user named by each token and puts `U::User` into the request
    /// extensions; a missing or inactive user is refused (401) and, when the
    /// revocation check is on, the token's session is revoked too, as a
    /// refresh would revoke it ([`UserLookup::Inactive`](crate::UserLookup::Inactive)).
    pub fn resolve_user<U: UserResolver>(mut self, users: Arc<U>) -> Self {
        self.config_mut().user = Some(Arc::new(users) as Arc<dyn ErasedResolver>);
        self
    }

    /// Replaces the rejection response builder.
    pub fn on_rejection<R2>(self, rejection: R2) -> JwtAuthLayer<C, R2> {
        JwtAuthLayer {
            shared: self.shared,
            rejection,
        }
    }
}

impl<S, C, R: Clone> Layer<S> for JwtAuthLayer<C, R> {
    type Service = JwtAuth<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth::new(inner, self.shared.clone(), self.rejection.clone())
    }
}
