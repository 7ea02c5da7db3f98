//! Where the layer finds the token: the `Authorization: Bearer` header, a named
//! cookie, or the app's own function.

use std::fmt;
use std::sync::Arc;

use http::HeaderMap;

use crate::error::AuthError;
use crate::wire::credentials::{bearer, cookie};

type CustomFn = dyn Fn(&HeaderMap) -> Result<Option<String>, AuthError> + Send + Sync;

/// Where to look for the access token.
///
/// Tokens in the query string are never read (RFC 6750 §2.3: they end up in logs).
#[derive(Clone, Default)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`, scheme case-insensitive (the default).
    /// Another scheme counts as no token; two headers or a malformed one is a 400.
    #[default]
    Bearer,
    /// A cookie with this name. Two cookies of that name are a 400.
    Cookie(String),
    /// The app's own function over the request headers.
    Custom(Arc<CustomFn>),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Bearer => f.write_str("Bearer"),
            TokenSource::Cookie(name) => f.debug_tuple("Cookie").field(name).finish(),
            TokenSource::Custom(_) => f.write_str("Custom"),
        }
    }
}

impl TokenSource {
    /// A custom source.
    ///
    /// ```
    /// use tower_jwt_auth::TokenSource;
    /// let source = TokenSource::custom(|headers| {
    ///     Ok(headers.get("x-api-token").and_then(|v| v.to_str().ok()).map(str::to_owned))
    /// });
    /// ```
    pub fn custom(
        f: impl Fn(&HeaderMap) -> Result<Option<String>, AuthError> + Send + Sync + 'static,
    ) -> Self {
        TokenSource::Custom(Arc::new(f))
    }

    /// Finds the token: `Ok(None)` when none was sent.
    pub(crate) fn extract<'h>(
        &self,
        headers: &'h HeaderMap,
    ) -> Result<Option<std::borrow::Cow<'h, str>>, AuthError> {
        match self {
            TokenSource::Bearer => bearer(headers).map(|t| t.map(std::borrow::Cow::Borrowed)),
            TokenSource::Cookie(name) => {
                cookie(headers, name).map(|t| t.map(std::borrow::Cow::Borrowed))
            }
            TokenSource::Custom(f) => f(headers).map(|t| t.map(std::borrow::Cow::Owned)),
        }
    }
}
