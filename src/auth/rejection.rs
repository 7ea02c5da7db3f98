//! What a refused request gets back: pluggable, with a JSON default.

use bytes::Bytes;
use http::Response;

use crate::error::AuthError;
use crate::wire::response::DEFAULT_REALM;

/// Builds the response for a refused request. Implemented by [`JsonRejection`]
/// and by any `Fn(&AuthError) -> Response<B>` closure.
///
/// ```
/// use http::{Response, StatusCode};
/// use http_body_util::Full;
/// use bytes::Bytes;
/// use tower_jwt_auth::{AuthError, Jwt, JwtAuthLayer, Key, Algorithm};
/// # let jwt = Jwt::builder().signing_key(Key::hmac("k", Algorithm::HS256, [1u8; 32]).unwrap()).build().unwrap();
/// let layer = JwtAuthLayer::new(jwt).on_rejection(|e: &AuthError| {
///     let mut res = Response::new(Full::<Bytes>::from("nope"));
///     *res.status_mut() = e.status();
///     res
/// });
/// ```
pub trait OnRejection<B>: Clone + Send + Sync + 'static {
    /// The response for `error`.
    fn on_rejection(&self, error: &AuthError) -> Response<B>;
}

impl<B, F> OnRejection<B> for F
where
    F: Fn(&AuthError) -> Response<B> + Clone + Send + Sync + 'static,
{
    fn on_rejection(&self, error: &AuthError) -> Response<B> {
        self(error)
    }
}

/// The default rejection: RFC 6750 challenge and a JSON `{"error","error_description"}` body.
#[derive(Debug, Clone)]
pub struct JsonRejection {
    realm: std::sync::Arc<str>,
}

impl Default for JsonRejection {
    fn default() -> Self {
        JsonRejection {
            realm: DEFAULT_REALM.into(),
        }
    }
}

impl JsonRejection {
    /// A rejection whose challenges name `realm`. Quotes and backslashes are dropped.
    pub fn with_realm(realm: &str) -> Self {
        JsonRejection {
            realm: crate::wire::response::challenge_realm(realm),
        }
    }

    /// The realm named in challenges.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    pub(crate) fn realm_arc(&self) -> std::sync::Arc<str> {
        self.realm.clone()
    }
}

impl<B: From<Bytes>> OnRejection<B> for JsonRejection {
    fn on_rejection(&self, error: &AuthError) -> Response<B> {
        crate::wire::response::error_response(error, &self.realm)
    }
}
