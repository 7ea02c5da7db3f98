//! The crate's errors: one enum for everything a request can be refused for,
//! each variant mapped once to its HTTP status and RFC 6750 error code.

use std::time::Duration;

use http::StatusCode;

/// Why a token was refused. Carried by [`AuthError::InvalidToken`].
///
/// The text of each reason is safe to show a client: it never contains the token,
/// a key or a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is longer than the configured size cap.
    #[error("the token is too large")]
    TooLarge,
    /// Not three base64url segments separated by dots.
    #[error("the token is malformed")]
    Malformed,
    /// A segment is not canonical unpadded base64url.
    #[error("the token is not valid base64url")]
    Base64,
    /// The header or payload is not a JSON object, or a claim has the wrong JSON type.
    #[error("the token is not valid JSON")]
    Json,
    /// A JSON object in the token names the same key twice.
    #[error("the token has a duplicate JSON key")]
    DuplicateKey,
    /// The `alg` header is missing, `none`, or not the algorithm pinned to the key.
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// The `kid` header is missing or names no known key.
    #[error("the token's key id is unknown")]
    UnknownKey,
    /// The header carries `jku`, `x5u`, `x5c` or `jwk`: keys are never taken from tokens.
    #[error("the token names an external key")]
    ExternalKey,
    /// The header has a `crit` list (no extension is understood here).
    #[error("the token has critical header parameters that are not understood")]
    Critical,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    Signature,
    /// The header `typ` or the `token_type` claim is not the one this endpoint accepts.
    #[error("wrong token type")]
    WrongType,
    /// `exp` is missing.
    #[error("the token has no expiry")]
    MissingExpiry,
    /// `exp` has passed (a token is dead at `exp`, plus leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// `iss` is missing or not the configured issuer.
    #[error("the token's issuer is not accepted")]
    Issuer,
    /// `aud` is missing or names none of the configured audiences.
    #[error("the token's audience is not accepted")]
    Audience,
    /// A claim the crate needs (`jti`, `sid`, the user id claim, `token_type`) is missing or malformed.
    #[error("the token lacks a required claim")]
    MissingClaim,
    /// The user id claim cannot be parsed as the application's id type.
    #[error("the token's user id is not valid")]
    UserId,
    /// The session was logged out, revoked, or all sessions of the user were revoked.
    #[error("the token has been revoked")]
    Revoked,
    /// A refresh token that was already used was presented again: the session is now revoked.
    #[error("the refresh token was already used; the session has been revoked")]
    Reused,
    /// The store does not know this refresh token.
    #[error("the refresh token is not recognised")]
    Unknown,
    /// The user no longer exists or is not active.
    #[error("the user is not active")]
    UserInactive,
}

/// A store or user-resolver backend failed (connection refused, pool closed, timeout...).
///
/// Never read as an outcome about a token: requests that hit it answer
/// `503 Service Unavailable` with `Retry-After`, and no refresh token is
/// counted as reused because of it.
#[derive(Debug, thiserror::Error)]
#[error("token store unavailable: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    /// A store error with a message (no secrets, no token text).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A store error wrapping the backend's own error.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The message, without the source chain.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Everything a request can be refused for.
///
/// Each variant maps to one status ([`AuthError::status`]) and one RFC 6750 error
/// code ([`AuthError::code`]); the default responses are built from those alone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No token was sent: 401 with a bare `WWW-Authenticate: Bearer` challenge.
    #[error("authentication required")]
    MissingToken,
    /// A token was sent and refused: 401 `invalid_token`.
    #[error("{0}")]
    InvalidToken(#[from] TokenError),
    /// The request is malformed (two tokens, a broken header, bad JSON): 400 `invalid_request`.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The body is over the configured size limit: 413.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// The endpoint does not accept this method: 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The token store or the user resolver is unreachable: 503 with `Retry-After`.
    #[error("the token store is unavailable, retry later")]
    StoreUnavailable(#[source] StoreError),
    /// A login with credentials of no active account (unknown user, wrong
    /// password, inactive): 401 `invalid_grant`, one answer for each.
    #[error("no active account found with the given credentials")]
    BadCredentials,
    /// A browser-mode request that may be forged from another site (see
    /// [`RefreshCookie`](crate::RefreshCookie)): 403 `cross_site_request`;
    /// nothing was read, spent or revoked.
    #[error("refused: {0}")]
    CrossSiteRequest(&'static str),
    /// The token is valid but does not carry what the route requires (a
    /// scope, a role): 403 `insufficient_scope`, naming what is missing in the
    /// challenge (RFC 6750 §3.1). See [`RequireClaims`](crate::RequireClaims).
    #[error("the token lacks the required scope `{0}`")]
    InsufficientScope(String),
    /// The token names a [`TrustedIssuer`](crate::TrustedIssuer) whose keys
    /// could not be fetched yet (or not for too long): 503 with `Retry-After`,
    /// never 401, as the token may well be good.
    #[error("the issuer's keys are unavailable, retry later")]
    KeysUnavailable,
    /// The server is set up wrong (a handler asks for a claims type its
    /// [`JwtAuthLayer`](crate::JwtAuthLayer) does not produce): 500. The text
    /// names the types for the server's log; clients get a generic description.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::StoreUnavailable(e)
    }
}

/// How long a client is told to wait after a 503.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(1);

impl AuthError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::MissingToken | AuthError::InvalidToken(_) | AuthError::BadCredentials => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::CrossSiteRequest(_) | AuthError::InsufficientScope(_) => {
                StatusCode::FORBIDDEN
            }
            AuthError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            AuthError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AuthError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AuthError::StoreUnavailable(_) | AuthError::KeysUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AuthError::Misconfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error code of the JSON body; the RFC 6750 code where one applies.
    pub fn code(&self) -> &'static str {
        match self {
            // RFC 6750 §3.1: a request without credentials gets no error code in the
            // challenge; the JSON body still needs one.
            AuthError::MissingToken => "not_authenticated",
            AuthError::InvalidToken(_) => "invalid_token",
            AuthError::InvalidRequest(_) | AuthError::PayloadTooLarge => "invalid_request",
            AuthError::MethodNotAllowed => "method_not_allowed",
            // RFC 6749 §5.2: the resource owner's credentials are invalid.
            AuthError::BadCredentials => "invalid_grant",
            AuthError::CrossSiteRequest(_) => "cross_site_request",
            AuthError::InsufficientScope(_) => "insufficient_scope",
            AuthError::StoreUnavailable(_) | AuthError::KeysUnavailable => {
                "temporarily_unavailable"
            }
            AuthError::Misconfigured(_) => "server_error",
        }
    }

    /// A description safe to show a client (no token, key or backend detail).
    pub fn description(&self) -> String {
        match self {
            AuthError::StoreUnavailable(_) => "the token store is unavailable, retry later".into(),
            AuthError::KeysUnavailable => "the issuer's keys are unavailable, retry later".into(),
            AuthError::Misconfigured(_) => "the server is misconfigured".into(),
            other => other.to_string(),
        }
    }

    /// 403 `insufficient_scope` naming `scope`, for a handler's own check.
    pub fn insufficient_scope(scope: impl Into<String>) -> Self {
        AuthError::InsufficientScope(scope.into())
    }

    /// The token reason, when this is [`AuthError::InvalidToken`].
    pub fn token_error(&self) -> Option<TokenError> {
        match self {
            AuthError::InvalidToken(e) => Some(*e),
            _ => None,
        }
    }
}

/// A configuration that cannot work; returned by the builders' `build()`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No signing key was configured.
    #[error("no signing key configured")]
    NoSigningKey,
    /// An HMAC secret is shorter than its algorithm requires.
    #[error("key `{kid}`: {alg:?} needs a secret of at least {min} bytes")]
    ShortSecret {
        /// The key id.
        kid: String,
        /// The algorithm.
        alg: jsonwebtoken::Algorithm,
        /// The minimum length in bytes.
        min: usize,
    },
    /// The key material does not fit the algorithm (wrong PEM type, wrong curve, unparseable).
    #[error("key `{kid}`: the key does not fit {alg:?}")]
    KeyMismatch {
        /// The key id.
        kid: String,
        /// The algorithm.
        alg: jsonwebtoken::Algorithm,
    },
    /// An algorithm this crate does not accept (e.g. `none`).
    #[error("algorithm {0:?} is not supported")]
    UnsupportedAlgorithm(jsonwebtoken::Algorithm),
    /// Two keys have the same `kid`.
    #[error("duplicate key id `{0}`")]
    DuplicateKid(String),
    /// A key id is empty or over 128 bytes.
    #[error("key ids must be 1 to 128 bytes")]
    BadKid,
    /// A lifetime or limit is zero, or the lifetimes contradict each other.
    #[error("{0}")]
    BadLifetime(&'static str),
    /// A name (claim, cookie, table, column) is not acceptable.
    #[error("invalid name `{0}`")]
    BadName(String),
    /// No crypto backend is compiled in: enable `aws-lc-rs` or `rust-crypto`.
    #[error("no crypto backend: enable the `aws-lc-rs` or `rust-crypto` feature")]
    NoCryptoBackend,
    /// An allowed origin that is not `scheme://host[:port]`.
    #[error("`{0}` is not an origin (scheme://host[:port], no path)")]
    BadOrigin(String),
    /// A [`TrustedIssuer`](crate::TrustedIssuer) that cannot work: no
    /// audience, a plain-HTTP URL without `allow_http`, no usable key...
    #[error("trusted issuer: {0}")]
    BadIssuer(String),
}
