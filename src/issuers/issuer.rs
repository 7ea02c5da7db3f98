//! [`TrustedIssuer`] and its builder: one outside identity provider, its rules
//! and where its keys come from.

use std::fmt;
use std::sync::Arc;
#[cfg(feature = "remote-keys")]
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::policy::FetchPolicy;
#[cfg(feature = "remote-keys")]
use super::remote::{RemoteKeys, RemoteSource};
use crate::error::ConfigError;
use crate::jwt::Key;

/// Algorithms an outside issuer's keys may sign with when none are named:
/// every asymmetric one jsonwebtoken verifies. HMAC needs a secret shared with
/// the provider, so it is accepted only when named, and only with static keys.
pub(crate) const DEFAULT_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The largest token an outside issuer's tokens may be (bytes) unless set.
const DEFAULT_MAX_TOKEN_SIZE: usize = 16 * 1024;

/// An outside identity provider whose access tokens a
/// [`JwtAuthLayer`](crate::JwtAuthLayer) accepts besides the app's own (see
/// [`JwtAuthLayer::trust`](crate::JwtAuthLayer::trust)): Auth0, Okta,
/// Keycloak, Entra ID, Zitadel, Ory, or a company's own OpenID Provider.
///
/// A token's `iss` picks its issuer before any signature work; the issuer's
/// rules then judge it: its keys (each verifying only the algorithm it was
/// published for), the audiences it must carry, the leeway, the claim that
/// names the user, where roles are, and optionally the RFC 9068 `typ:
/// at+jwt` header. Keys named in a token's header (`jku`, `x5u`, `jwk`, `x5c`)
/// are never used.
///
/// Clones share the keys and their cache: trust one value in several layers
/// and the provider's JWKS is fetched once for all of them.
///
/// ```
/// use tower_jwt_auth::{Algorithm, Key, TrustedIssuer};
/// // Static keys (a provider whose public key you configure yourself):
/// let pem = std::fs::read("tests/keys/es256.pub.pem").unwrap();
/// let issuer = TrustedIssuer::with_keys(
///     "https://login.example.com/",
///     [Key::from_public_pem("prov-1", Algorithm::ES256, &pem).unwrap()],
/// )
/// .audience("https://api.example.com")
/// .roles_claim("realm_access.roles")
/// .build()
/// .unwrap();
/// assert_eq!(issuer.issuer(), "https://login.example.com/");
/// ```
#[derive(Clone)]
pub struct TrustedIssuer {
    pub(crate) inner: Arc<IssuerRules>,
}

impl fmt::Debug for TrustedIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.inner;
        f.debug_struct("TrustedIssuer")
            .field("iss", &r.iss)
            .field("audiences", &r.audiences)
            .field("algorithms", &r.algorithms)
            .field("leeway", &r.leeway)
            .field("user_claim", &r.user_claim)
            .field("require_at_jwt", &r.require_at_jwt)
            .field("keys", &r.keys)
            .finish_non_exhaustive()
    }
}

/// What a [`TrustedIssuer`] holds once built.
pub(crate) struct IssuerRules {
    pub(crate) iss: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) leeway: u64,
    pub(crate) user_claim: String,
    /// The path to the roles claim: a top-level key, else dot-separated keys.
    pub(crate) roles_claim: Option<String>,
    pub(crate) require_at_jwt: bool,
    pub(crate) max_token_size: usize,
    pub(crate) keys: IssuerKeys,
}

/// Where an issuer's keys are.
pub(crate) enum IssuerKeys {
    Static(Vec<Key>),
    #[cfg(feature = "remote-keys")]
    Remote(Arc<RemoteKeys>),
}

impl fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssuerKeys::Static(keys) => f.debug_list().entries(keys.iter().map(Key::kid)).finish(),
            #[cfg(feature = "remote-keys")]
            IssuerKeys::Remote(remote) => remote.fmt(f),
        }
    }
}

impl TrustedIssuer {
    /// An issuer whose public keys are given here (no fetching).
    pub fn with_keys(iss: &str, keys: impl IntoIterator<Item = Key>) -> TrustedIssuerBuilder {
        TrustedIssuerBuilder::new(iss, Keys::Static(keys.into_iter().collect()))
    }

    /// An issuer found by OpenID Connect discovery: its keys are read from the
    /// `jwks_uri` of `{iss}/.well-known/openid-configuration`, whose `issuer`
    /// must be `iss` exactly (feature `remote-keys`).
    #[cfg(feature = "remote-keys")]
    pub fn discover(iss: &str) -> TrustedIssuerBuilder {
        TrustedIssuerBuilder::new(iss, Keys::Remote(RemoteSource::Discovery))
    }

    /// An issuer whose keys are the JWKS at `jwks_url` (feature `remote-keys`).
    #[cfg(feature = "remote-keys")]
    pub fn jwks_url(iss: &str, jwks_url: &str) -> TrustedIssuerBuilder {
        TrustedIssuerBuilder::new(iss, Keys::Remote(RemoteSource::Jwks(jwks_url.to_owned())))
    }

    /// The `iss` value this issuer's tokens carry.
    pub fn issuer(&self) -> &str {
        &self.inner.iss
    }

    /// Fetches the keys now (a remote issuer; static keys are always ready),
    /// so the first request does not wait for them. A failure is returned and
    /// also leaves the issuer as it was: requests fetch again (rate-limited)
    /// and answer 503 until keys arrive.
    pub async fn prefetch(&self) -> Result<(), KeysUnavailable> {
        match &self.inner.keys {
            IssuerKeys::Static(_) => Ok(()),
            #[cfg(feature = "remote-keys")]
            IssuerKeys::Remote(remote) => remote.fetch(None).await.map(|_| ()),
        }
    }

    /// How many times this issuer's keys were fetched (successfully or not)
    /// since it was built: discovery and JWKS requests each count.
    pub fn fetch_count(&self) -> u64 {
        match &self.inner.keys {
            IssuerKeys::Static(_) => 0,
            #[cfg(feature = "remote-keys")]
            IssuerKeys::Remote(remote) => remote.fetch_count(),
        }
    }
}

/// The remote keys could not be fetched (and no good keys are at hand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the issuer's keys are unavailable: {0}")]
pub struct KeysUnavailable(pub(crate) String);

/// Where the builder was told the keys are.
enum Keys {
    Static(Vec<Key>),
    #[cfg(feature = "remote-keys")]
    Remote(RemoteSource),
}

/// Builds a [`TrustedIssuer`]; see its constructors.
#[must_use]
pub struct TrustedIssuerBuilder {
    iss: String,
    keys: Keys,
    audiences: Vec<String>,
    algorithms: Option<Vec<Algorithm>>,
    leeway: u64,
    user_claim: String,
    roles_claim: Option<String>,
    require_at_jwt: bool,
    max_token_size: usize,
    policy: FetchPolicy,
}

impl fmt::Debug for TrustedIssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedIssuerBuilder")
            .field("iss", &self.iss)
            .finish_non_exhaustive()
    }
}

impl TrustedIssuerBuilder {
    fn new(iss: &str, keys: Keys) -> Self {
        TrustedIssuerBuilder {
            iss: iss.to_owned(),
            keys,
            audiences: Vec::new(),
            algorithms: None,
            leeway: 30,
            user_claim: "sub".into(),
            roles_claim: None,
            require_at_jwt: false,
            max_token_size: DEFAULT_MAX_TOKEN_SIZE,
            policy: FetchPolicy::default(),
        }
    }

    /// An audience the tokens must name in `aud` (at least one is required;
    /// a token naming any of them is accepted).
    pub fn audience(mut self, audience: &str) -> Self {
        self.audiences.push(audience.to_owned());
        self
    }

    /// The algorithms accepted (default: every asymmetric one). A key is used
    /// only for the one algorithm it was published for (its JWK `alg`, else
    /// the one its type and curve imply); keys for other algorithms are
    /// skipped.
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = Some(algorithms.to_vec());
        self
    }

    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds (default 30).
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// The claim that names the user, [`Claims::user_id`](crate::Claims::user_id)
    /// (default `sub`).
    pub fn user_claim(mut self, claim: &str) -> Self {
        self.user_claim = claim.to_owned();
        self
    }

    /// Where the token lists roles, as a dot-separated path of object keys
    /// (Keycloak: `realm_access.roles`; Auth0 custom claims:
    /// `https://example.com/roles`, which has no dot-free form, so a key with
    /// dots is matched whole first). Read into [`Claims::roles`](crate::Claims::roles).
    pub fn roles_claim(mut self, path: &str) -> Self {
        self.roles_claim = Some(path.to_owned());
        self
    }

    /// Requires the RFC 9068 header `typ: at+jwt` (or `application/at+jwt`), so
    /// an ID token of the same issuer and audience is never taken for an access
    /// token. Off by default: Auth0 (without its RFC 9068 profile), Keycloak
    /// and Entra ID write `typ: JWT`.
    pub fn require_at_jwt(mut self) -> Self {
        self.require_at_jwt = true;
        self
    }

    /// The largest token accepted, in bytes (default 16 KiB).
    pub fn max_token_size(mut self, bytes: usize) -> Self {
        self.max_token_size = bytes;
        self
    }

    /// Allows `http://` discovery and JWKS URLs. Only for a provider on
    /// loopback in tests: keys fetched without TLS can be swapped by anyone on
    /// the path.
    #[cfg(feature = "remote-keys")]
    pub fn allow_http(mut self) -> Self {
        self.policy.allow_http = true;
        self
    }

    /// Also trusts the CA certificates in `pem` (one or more PEM
    /// certificates) for the provider's TLS, beside the system's roots: a
    /// company's private CA in front of its own provider.
    #[cfg(feature = "remote-keys")]
    pub fn root_certificates(mut self, pem: &[u8]) -> Self {
        self.policy.root_certificates.push(pem.to_vec());
        self
    }

    /// How long one fetch (discovery or JWKS) may take (default 5 s).
    #[cfg(feature = "remote-keys")]
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.policy.timeout = timeout;
        self
    }

    /// The largest discovery document or JWKS read, in bytes (default 256 KiB).
    #[cfg(feature = "remote-keys")]
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.policy.max_bytes = bytes;
        self
    }

    /// How often the keys are fetched again: the JWKS response's
    /// `Cache-Control: max-age`, kept within `min..=max` (default 1 minute to
    /// 1 day), or 5 minutes (within the bounds) when it sends none. Tokens are checked with the keys at
    /// hand meanwhile; the refresh runs in the background.
    #[cfg(feature = "remote-keys")]
    pub fn refresh_interval(mut self, min: Duration, max: Duration) -> Self {
        self.policy.min_ttl = min;
        self.policy.max_ttl = max;
        self
    }

    /// The least time between two fetches caused by tokens (default 30 s): a
    /// storm of tokens with unknown `kid`s fetches at most once per interval.
    #[cfg(feature = "remote-keys")]
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.policy.min_interval = interval;
        self
    }

    /// How long the last good keys keep serving when the provider cannot be
    /// reached, counted from when they were due for refresh (default 1 hour).
    /// Past it, tokens of this issuer get 503 until a fetch succeeds.
    #[cfg(feature = "remote-keys")]
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.policy.max_stale = max_stale;
        self
    }

    /// Checks the configuration and builds the issuer.
    pub fn build(self) -> Result<TrustedIssuer, ConfigError> {
        let bad = |why: &str| ConfigError::BadIssuer(format!("{}: {why}", self.iss));
        if self.iss.is_empty() {
            return Err(bad("the issuer is empty"));
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(bad("name at least one audience (RFC 9068 §4)"));
        }
        if self.user_claim.is_empty() || self.max_token_size == 0 {
            return Err(bad("empty user claim or zero token size"));
        }
        self.policy.check().map_err(&bad)?;
        let algorithms = self
            .algorithms
            .clone()
            .unwrap_or_else(|| DEFAULT_ALGORITHMS.to_vec());
        if algorithms.is_empty() {
            return Err(bad("no algorithm allowed"));
        }
        let keys = match self.keys {
            Keys::Static(keys) => {
                let keys: Vec<Key> = keys
                    .into_iter()
                    .map(|k| k.verification_only())
                    .filter(|k| algorithms.contains(&k.algorithm()))
                    .collect();
                if keys.is_empty() {
                    return Err(bad("no key for an allowed algorithm"));
                }
                IssuerKeys::Static(keys)
            }
            #[cfg(feature = "remote-keys")]
            Keys::Remote(source) => {
                if algorithms
                    .iter()
                    .any(|a| jsonwebtoken::AlgorithmFamily::Hmac.algorithms().contains(a))
                {
                    return Err(bad("HMAC keys are never taken from a JWKS"));
                }
                let remote = RemoteKeys::new(&self.iss, source, self.policy, algorithms.clone())
                    .map_err(|why| bad(&why))?;
                IssuerKeys::Remote(Arc::new(remote))
            }
        };
        Ok(TrustedIssuer {
            inner: Arc::new(IssuerRules {
                iss: self.iss,
                audiences: self.audiences,
                algorithms,
                leeway: self.leeway,
                user_claim: self.user_claim,
                roles_claim: self.roles_claim,
                require_at_jwt: self.require_at_jwt,
                max_token_size: self.max_token_size,
                keys,
            }),
        })
    }
}
