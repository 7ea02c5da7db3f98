//! Reading a JSON request body: method, content type and size are checked before
//! the body is read whole; the size limit also holds while reading. A body over
//! the limit is read on and thrown away (up to [`MAX_DISCARD_BYTES`]) before
//! the 413 goes out: a server that answers and closes while the client is still
//! sending makes the client's kernel see a reset, and the client never reads
//! the 413.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Method};
use http_body::Body;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::error::AuthError;

/// The default body size limit: 16 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;

/// How much of an oversized body is read and thrown away so that its 413 is
/// delivered: 8 MiB. A body declared larger than this is not read at all (its
/// client gets the 413 if it reads while sending, as curl and browsers do).
pub const MAX_DISCARD_BYTES: u64 = 8 << 20;

/// How long discarding an oversized body may take before the 413 goes out anyway.
pub const MAX_DISCARD_TIME: Duration = Duration::from_secs(5);

/// Reads `body` to its end and throws it away, at most [`MAX_DISCARD_BYTES`]
/// and [`MAX_DISCARD_TIME`]: call it before answering 413 to a request whose
/// body was not read, so the answer reaches a client that is still sending.
/// Answers whether the body was read to its end.
pub async fn discard_body<B: Body>(body: B) -> bool {
    discard(body, 0).await
}

async fn discard<B: Body>(body: B, already: u64) -> bool {
    let mut body = std::pin::pin!(body);
    let mut seen = already;
    let read = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                seen = seen.saturating_add(data.remaining() as u64);
                if seen > MAX_DISCARD_BYTES {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(MAX_DISCARD_TIME, read)
        .await
        .unwrap_or(false)
}

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

/// Reads a request body whole, refusing anything over `limit` bytes with
/// [`AuthError::PayloadTooLarge`] (413) before and while reading; an oversized
/// body is discarded first, so the 413 reaches the client (see the module
/// docs). For an app's own routes (a login route) that want the endpoints'
/// behaviour.
pub async fn read_body<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, AuthError>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        if declared.is_some_and(|n| n <= MAX_DISCARD_BYTES) {
            discard(body, 0).await;
        }
        return Err(AuthError::PayloadTooLarge);
    }
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| AuthError::InvalidRequest("the request body could not be read"))?;
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len().saturating_add(data.remaining()) > limit {
            let seen = (buf.len() + data.remaining()) as u64;
            discard(body, seen).await;
            return Err(AuthError::PayloadTooLarge);
        }
        while data.has_remaining() {
            let chunk = data.chunk();
            buf.extend_from_slice(chunk);
            let n = chunk.len();
            data.advance(n);
        }
    }
    Ok(buf.freeze())
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
