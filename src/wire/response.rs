//! The one place errors become HTTP responses: JSON `{"error","error_description"}`,
//! the RFC 6750 `WWW-Authenticate` challenge, `Retry-After` on 503.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use serde::Serialize;

use crate::error::{AuthError, RETRY_AFTER as RETRY_AFTER_SECS};

/// The realm of `WWW-Authenticate` challenges unless the app names another:
/// the one default the layer, the endpoints and the axum extractors share.
pub(crate) const DEFAULT_REALM: &str = "api";

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// A JSON response with `Cache-Control: no-store` (token responses must not be cached).
pub(crate) fn json<B: From<Bytes>>(status: StatusCode, body: &impl Serialize) -> Response<B> {
    let bytes = serde_json::to_vec(body)
        .map(Bytes::from)
        .unwrap_or_else(|_| Bytes::from_static(b"{}"));
    let mut res = Response::new(B::from(bytes));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The response for an error: status and code from [`AuthError`], a Bearer
/// challenge on 401 (no error code when no token was sent, RFC 6750 §3.1), and
/// `Retry-After` on 503 (without `invalid_token`, which tells clients to discard
/// their tokens).
pub fn error_response<B: From<Bytes>>(error: &AuthError, realm: &str) -> Response<B> {
    let description = error.description();
    let mut res = json(
        error.status(),
        &ErrorBody {
            error: error.code(),
            error_description: &description,
        },
    );
    let challenge = match error {
        AuthError::MissingToken | AuthError::BadCredentials => {
            Some(format!("Bearer realm=\"{realm}\""))
        }
        AuthError::InvalidToken(_) => Some(format!(
            "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{description}\""
        )),
        AuthError::InsufficientScope(scope) => Some(format!(
            "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"",
            challenge_value(scope)
        )),
        AuthError::InvalidRequest(_) if error.status() == StatusCode::BAD_REQUEST => Some(format!(
            "Bearer realm=\"{realm}\", error=\"invalid_request\""
        )),
        _ => None,
    };
    if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    if matches!(
        error,
        AuthError::StoreUnavailable(_) | AuthError::KeysUnavailable
    ) {
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS.as_secs()));
    }
    if matches!(error, AuthError::MethodNotAllowed) {
        res.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
    }
    res
}

/// `value` as it may stand inside a quoted challenge parameter (a realm, a
/// scope) of a header value: printable ASCII and spaces, without `"` or `\`
/// (anything else would make the header invalid, and it would be dropped).
fn challenge_value(value: &str) -> String {
    value
        .chars()
        .filter(|c| (c.is_ascii_graphic() || *c == ' ') && *c != '"' && *c != '\\')
        .collect()
}

/// A realm that can sit inside a quoted challenge parameter.
pub(crate) fn challenge_realm(realm: &str) -> std::sync::Arc<str> {
    challenge_value(realm).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A realm or scope with any characters still gives a valid challenge.
    #[test]
    fn challenge_parameters_stay_valid_header_text() {
        for (given, kept) in [
            ("shop", "shop"),
            ("café \"x\"\\\n", "caf x"),
            ("orders:read admin", "orders:read admin"),
        ] {
            assert_eq!(challenge_value(given), kept);
            let res: Response<Bytes> = error_response(
                &AuthError::InsufficientScope(given.to_owned()),
                &challenge_realm(given),
            );
            assert!(res.headers().contains_key(WWW_AUTHENTICATE), "{given:?}");
        }
    }
}
