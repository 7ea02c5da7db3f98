//! Request bodies. The JSON body of the server's own routes (`/api/users/`,
//! `/api/token/`): size, content type and syntax are checked here, so that no
//! body can make a handler fail, and every refusal is the JSON error shape rather
//! than axum's plain text. And HTML-form bodies, which SimpleJWT accepts too,
//! turned into JSON for every route.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::errors::ApiError;

/// The largest body the routes read: 16 KiB, the session endpoints' limit too.
pub const BODY_LIMIT: usize = 16 * 1024;

/// A JSON object body, read whole within [`BODY_LIMIT`].
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

impl JsonObject {
    /// A required string field: 400 when missing, not a string, or empty.
    pub fn string(&self, field: &str) -> Result<&str, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Err(ApiError::bad_request(format!(
                "the field `{field}` is required"
            ))),
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            Some(Value::String(_)) => Err(ApiError::bad_request(format!(
                "the field `{field}` may not be blank"
            ))),
            Some(_) => Err(ApiError::bad_request(format!(
                "the field `{field}` must be a string"
            ))),
        }
    }
}

/// The body within [`BODY_LIMIT`], through the crate's reader: an oversized
/// body is read and discarded before the 413, so a client still sending gets
/// the answer rather than a reset connection.
async fn read_limited(
    headers: &axum::http::HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, ApiError> {
    match tower_jwt_auth::endpoints::read_body(headers, body, BODY_LIMIT).await {
        Ok(bytes) => Ok(bytes),
        Err(tower_jwt_auth::AuthError::PayloadTooLarge) => Err(ApiError::too_large()),
        Err(_) => Err(ApiError::bad_request("the request body could not be read")),
    }
}

/// A safety net for every route, above the routes' own limit: a body declared
/// larger than four times [`BODY_LIMIT`] is discarded and answered 413 before
/// any route sees it (the routes that read bodies refuse over [`BODY_LIMIT`]
/// themselves, chunked bodies included).
pub async fn limit_declared_body(req: Request<Body>) -> Result<Request<Body>, Response> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > 4 * BODY_LIMIT as u64) {
        if declared.is_some_and(|n| n <= tower_jwt_auth::endpoints::MAX_DISCARD_BYTES) {
            tower_jwt_auth::endpoints::discard_body(req.into_body()).await;
        }
        return Err(ApiError::too_large().into_response());
    }
    Ok(req)
}

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, _state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let headers = &parts.headers;
        let json = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        // The size first: an oversized body is 413 whatever its type.
        let bytes = read_limited(headers, body).await?;
        if !json {
            return Err(ApiError::bad_request("the body must be application/json"));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
            Err(_) => Err(ApiError::bad_request("malformed JSON body")),
        }
    }
}

fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// DRF, and so SimpleJWT, also takes HTML-form bodies (`requests.post(url,
/// data=...)` sends one): a form body becomes the equivalent JSON object of
/// strings, so such a client works here unchanged, on the crate's endpoints too.
pub async fn form_as_json(req: Request<Body>) -> Result<Request<Body>, Response> {
    if !is_form(req.headers()) {
        return Ok(req);
    }
    let (mut parts, body) = req.into_parts();
    let bytes = read_limited(&parts.headers, body)
        .await
        .map_err(IntoResponse::into_response)?;
    let Ok(fields) = form_fields(bytes).await else {
        return Err(ApiError::bad_request("malformed form body").into_response());
    };
    let json = serde_json::to_vec(&Value::Object(fields)).unwrap_or_else(|_| b"{}".to_vec());
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(json.len()));
    Ok(Request::from_parts(parts, Body::from(json)))
}

/// The fields of a form body, through axum's own form parser.
async fn form_fields(bytes: axum::body::Bytes) -> Result<Map<String, Value>, ()> {
    // POST: for GET, axum's `Form` would read the query string instead.
    let probe = Request::builder()
        .method(axum::http::Method::POST)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(bytes))
        .map_err(drop)?;
    let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(probe, &())
        .await
        .map_err(drop)?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect())
}
