//! A JWKS server the tests control: what it answers (keys, a status, a slow
//! or oversized body, a redirect), counted per request, on a loopback port of
//! its own, with a discovery document naming its own base URL as the issuer.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// What `/jwks` answers.
#[derive(Clone)]
pub enum Answer {
    /// The document, with this `Cache-Control` if any.
    Keys(Value, Option<&'static str>),
    /// This status and an empty body.
    Status(u16),
    /// The keys, after this long.
    Slow(Value, Duration),
    /// A body of this many bytes, with `Content-Length` or streamed without it.
    Oversized { bytes: usize, streamed: bool },
    /// A 302 to this URL.
    Redirect(String),
}

#[derive(Clone)]
struct Shared {
    answer: Arc<Mutex<Answer>>,
    jwks_hits: Arc<AtomicUsize>,
    /// What `/moved/jwks` serves (404 when `None`).
    moved: Arc<Mutex<Option<Value>>>,
    base: String,
}

pub struct JwksServer {
    pub base: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(answer: Answer) -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = Shared {
            answer: Arc::new(Mutex::new(answer)),
            jwks_hits: Arc::new(AtomicUsize::new(0)),
            moved: Arc::new(Mutex::new(None)),
            base: base.clone(),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/moved/jwks", get(moved))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        JwksServer { base, shared, task }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base)
    }

    pub fn answer(&self, answer: Answer) {
        *self.shared.answer.lock().unwrap() = answer;
    }

    /// What `/moved/jwks` serves: the target of a same-origin redirect.
    pub fn serve_moved(&self, doc: Value) {
        *self.shared.moved.lock().unwrap() = Some(doc);
    }

    /// Requests to `/jwks` so far.
    pub fn jwks_hits(&self) -> usize {
        self.shared.jwks_hits.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn discovery(State(s): State<Shared>) -> impl IntoResponse {
    axum::Json(json!({
        "issuer": s.base,
        "jwks_uri": format!("{}/jwks", s.base),
        "token_endpoint": format!("{}/token", s.base),
    }))
}

/// The target of a same-origin redirect.
async fn moved(State(s): State<Shared>) -> Response {
    let doc = s.moved.lock().unwrap().clone();
    match doc {
        Some(doc) => axum::Json(doc).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn jwks(State(s): State<Shared>) -> Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let answer = s.answer.lock().unwrap().clone();
    match answer {
        Answer::Keys(doc, cache_control) => {
            let mut res = axum::Json(doc).into_response();
            if let Some(cc) = cache_control {
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, cc.parse().unwrap());
            }
            res
        }
        Answer::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Answer::Slow(doc, delay) => {
            tokio::time::sleep(delay).await;
            axum::Json(doc).into_response()
        }
        Answer::Oversized { bytes, streamed } => {
            let padding = "x".repeat(bytes);
            let doc = json!({ "keys": [], "padding": padding }).to_string();
            if streamed {
                let chunks: Vec<bytes::Bytes> = doc
                    .as_bytes()
                    .chunks(1024)
                    .map(bytes::Bytes::copy_from_slice)
                    .collect();
                Response::new(Body::new(Chunked(chunks.into_iter())))
            } else {
                doc.into_response()
            }
        }
        Answer::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
    }
}

/// A body sent in chunks without a length (chunked transfer encoding).
struct Chunked(std::vec::IntoIter<bytes::Bytes>);

impl http_body::Body for Chunked {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.next().map(|b| Ok(http_body::Frame::data(b))))
    }
}
