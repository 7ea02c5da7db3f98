//! Reading a JSON request body: method, content type and size are checked before
//! the body is read whole; the size limit also holds while reading.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Method};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use crate::error::AuthError;

/// The default body size limit: 16 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;

pub(crate) fn check_method(method: &Method) -> Result<(), AuthError> {
    if method == Method::POST {
        Ok(())
    } else {
        Err(AuthError::MethodNotAllowed)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads the body, refusing anything over `limit` bytes (413) before and while reading.
pub(crate) async fn read_limited<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, AuthError>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(AuthError::PayloadTooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(AuthError::PayloadTooLarge)
        }
        Err(_) => Err(AuthError::InvalidRequest(
            "the request body could not be read",
        )),
    }
}

/// Parses a JSON object body. An empty body is `{}` only when `allow_empty`.
pub(crate) fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    bytes: &[u8],
    allow_empty: bool,
) -> Result<T, AuthError> {
    if bytes.is_empty() && allow_empty {
        return serde_json::from_slice(b"{}")
            .map_err(|_| AuthError::InvalidRequest("malformed JSON body"));
    }
    if !is_json(headers) {
        return Err(AuthError::InvalidRequest(
            "the body must be application/json",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            AuthError::InvalidRequest("a required field is missing or has the wrong type")
        } else {
            AuthError::InvalidRequest("malformed JSON body")
        }
    })
}
