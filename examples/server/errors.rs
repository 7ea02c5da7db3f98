//! Every error the server answers is JSON `{"error","error_description"}`: the
//! crate's own ([`AuthError`]), the routes' ([`ApiError`]), and, through
//! [`json_errors`], whatever a middleware or axum itself answers (404, 405, 408,
//! 413, a caught panic).

use axum::Json;
use axum::body::Body;
use axum::http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower_jwt_auth::AuthError;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// An error answer of the server's own routes.
#[derive(Debug)]
pub enum ApiError {
    /// One of the crate's errors, answered as the crate answers it.
    Auth(AuthError),
    /// Any other error: status, code, description.
    Other {
        /// The status.
        status: StatusCode,
        /// The machine-readable code.
        code: &'static str,
        /// The text for people; never holds a password or a token.
        description: String,
    },
}

impl ApiError {
    /// 400 `invalid_request`.
    pub fn bad_request(description: impl Into<String>) -> Self {
        ApiError::Other {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            description: description.into(),
        }
    }

    /// 404 for a resource the caller cannot see (whether or not it exists).
    pub fn not_found(description: impl Into<String>) -> Self {
        ApiError::Other {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            description: description.into(),
        }
    }

    /// 409 for a username that is taken.
    pub fn taken() -> Self {
        ApiError::Other {
            status: StatusCode::CONFLICT,
            code: "username_taken",
            description: "a user with that username already exists".into(),
        }
    }

    /// 413 for a body over the limit.
    pub fn too_large() -> Self {
        ApiError::Auth(AuthError::PayloadTooLarge)
    }

    /// 503 with `Retry-After`: the database is down (never read as "no such user").
    pub fn unavailable() -> Self {
        ApiError::Other {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "temporarily_unavailable",
            description: "the user database is unavailable, retry later".into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Auth(e)
    }
}

/// A JSON error response.
pub fn error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut res = (
        status,
        Json(ErrorBody {
            error: code,
            error_description: description,
        }),
    )
        .into_response();
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"api\""),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Auth(e) => e.into_response(),
            ApiError::Other {
                status,
                code,
                description,
            } => error(status, code, &description),
        }
    }
}

/// 404 for every path the server does not serve.
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// 405 naming the methods the route accepts.
pub fn method_not_allowed(allow: &'static str) -> Response {
    let mut res = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed",
    );
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    res
}

/// The answer for a panic caught by `CatchPanicLayer` (a bug, never request input).
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "internal error",
    )
}

/// Rewrites an error answer that is not JSON (a middleware's, or axum's own) into
/// the JSON error shape, keeping its status and headers.
pub async fn json_errors<B>(res: Response<B>) -> Response
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let status = res.status();
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res.map(Body::new);
    }
    let (code, description) = match status {
        StatusCode::BAD_REQUEST => ("invalid_request", "the request is malformed"),
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed"),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => ("invalid_request", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("invalid_request", "the body must be application/json")
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            ("temporarily_unavailable", "the server is busy, retry later")
        }
        s if s.is_server_error() => ("server_error", "internal error"),
        _ => ("invalid_request", "the request was refused"),
    };
    let (parts, _) = res.into_parts();
    let mut out = error(status, code, description);
    for (name, value) in parts.headers.iter() {
        if name != CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name, value.clone());
        }
    }
    out
}
