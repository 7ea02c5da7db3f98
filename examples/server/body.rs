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

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, _state: &S) -> Result<Self, ApiError> {
        let headers = req.headers();
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
            return Err(ApiError::too_large());
        }
        let json = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::bad_request("the body must be application/json"));
        }
        let bytes = match axum::body::to_bytes(req.into_body(), BODY_LIMIT).await {
            Ok(b) => b,
            Err(e) if is_length_limit(&e) => return Err(ApiError::too_large()),
            Err(_) => return Err(ApiError::bad_request("the request body could not be read")),
        };
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
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(ApiError::too_large().into_response());
    }
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) if is_length_limit(&e) => return Err(ApiError::too_large().into_response()),
        Err(_) => {
            return Err(ApiError::bad_request("the request body could not be read").into_response());
        }
    };
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
