//! The session endpoints over HTTP semantics: status codes, JSON shapes, headers.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use tower_jwt_auth::conformance::{FailingStore, Users, sessions_for};
use tower_jwt_auth::{
    MemoryStore, NoCustomClaims, RefreshCookie, SessionEndpoint, Sessions, TokenStore,
};

type Body = Full<Bytes>;

fn post(body: impl Into<Bytes>) -> Request<Body> {
    Request::post("/")
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

async fn read(res: Response<Body>) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).expect("every answer is JSON"),
    )
}

async fn call(
    ep: &SessionEndpoint<Users, NoCustomClaims>,
    req: Request<Body>,
) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    read(ep.clone().oneshot(req).await.unwrap()).await
}

fn setup() -> (Sessions<Users>, uuid::Uuid) {
    let (s, _, id) = sessions_for(Arc::new(MemoryStore::new()));
    // Strict single use: the cases replay a spent token to see it refused.
    let s = s.with_reuse_grace(std::time::Duration::ZERO).unwrap();
    (s, id)
}

#[tokio::test]
async fn refresh_rotates_and_answers_the_pair() {
    let (sessions, id) = setup();
    let ep = SessionEndpoint::refresh(sessions.clone());
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let (status, headers, body) =
        call(&ep, post(format!(r#"{{"refresh":"{}"}}"#, pair.refresh))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    let (access, refresh) = (
        body["access"].as_str().unwrap(),
        body["refresh"].as_str().unwrap(),
    );
    assert_ne!(refresh, pair.refresh);
    sessions.check_access(access).await.unwrap();

    // The spent token again: 401 invalid_token, and the session is gone.
    let (status, headers, body) =
        call(&ep, post(format!(r#"{{"refresh":"{}"}}"#, pair.refresh))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_token");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    let (status, _, _) = call(&ep, post(format!(r#"{{"refresh":"{refresh}"}}"#))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_requests_are_400_405_413() {
    let (sessions, id) = setup();
    let ep = SessionEndpoint::refresh(sessions.clone());
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();

    for (req, want) in [
        (post("{}"), StatusCode::BAD_REQUEST),
        (post("{"), StatusCode::BAD_REQUEST),
        (post("[]"), StatusCode::BAD_REQUEST),
        (post(r#"{"refresh": 5}"#), StatusCode::BAD_REQUEST),
        (post(""), StatusCode::BAD_REQUEST),
        (post(r#"{"refresh": "garbage"}"#), StatusCode::UNAUTHORIZED),
        (post(r#"{"refresh": ""}"#), StatusCode::UNAUTHORIZED),
        (
            Request::post("/")
                .header("content-type", "text/plain")
                .body(Body::from(format!(r#"{{"refresh":"{}"}}"#, pair.refresh)))
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Request::get("/").body(Body::default()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Request::put("/").body(Body::default()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (post(vec![b' '; 17 * 1024]), StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let (status, headers, body) = call(&ep, req).await;
        assert_eq!(status, want, "{body}");
        assert!(body["error"].is_string() && body["error_description"].is_string());
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(headers["allow"], "POST");
        }
        if status == StatusCode::BAD_REQUEST {
            assert_eq!(body["error"], "invalid_request");
        }
    }
    // None of that spent the token.
    let (status, _, _) = call(&ep, post(format!(r#"{{"refresh":"{}"}}"#, pair.refresh))).await;
    assert_eq!(status, StatusCode::OK);
}

/// A body that yields `n` chunks of 100 bytes, with no length known in advance.
struct Chunks(usize);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![
            b' ';
            100
        ])))))
    }
}

#[tokio::test]
async fn oversized_streaming_body_is_refused_while_reading() {
    let (sessions, _) = setup();
    let ep = SessionEndpoint::refresh(sessions).body_limit(1024);
    let req = Request::post("/")
        .header("content-type", "application/json")
        .body(Chunks(100))
        .unwrap();
    let res = ep.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn logout_verify_and_revoke_all() {
    let (sessions, id) = setup();
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let logout = SessionEndpoint::logout(sessions.clone());
    let verify = SessionEndpoint::verify(sessions.clone());
    let revoke_all = SessionEndpoint::revoke_all(sessions.clone());

    let (status, _, body) = call(&verify, post(format!(r#"{{"token":"{}"}}"#, pair.access))).await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::json!({})));
    let (status, _, _) = call(&verify, post(format!(r#"{{"token":"{}"}}"#, pair.refresh))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&verify, post(r#"{"token":"x.y.z"}"#)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(&verify, post("{}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _, body) = call(
        &logout,
        post(format!(r#"{{"refresh":"{}"}}"#, pair.refresh)),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::json!({})));
    // Logged out: verify refuses both tokens, a second logout is refused.
    let (status, _, _) = call(&verify, post(format!(r#"{{"token":"{}"}}"#, pair.access))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(
        &logout,
        post(format!(r#"{{"refresh":"{}"}}"#, pair.refresh)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let a = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let b = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let no_token = Request::post("/").body(Body::default()).unwrap();
    let (status, headers, _) = call(&revoke_all, no_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"api\"");
    let with_refresh = Request::post("/")
        .header("authorization", format!("Bearer {}", a.refresh))
        .body(Body::default())
        .unwrap();
    assert_eq!(
        call(&revoke_all, with_refresh).await.0,
        StatusCode::UNAUTHORIZED
    );
    let req = Request::post("/")
        .header("authorization", format!("Bearer {}", a.access))
        .body(Body::default())
        .unwrap();
    let (status, _, body) = call(&revoke_all, req).await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::json!({})));
    for p in [&a, &b] {
        assert!(sessions.check_access(&p.access).await.is_err());
        assert!(sessions.refresh(&p.refresh).await.is_err());
    }
}

#[tokio::test]
async fn store_down_is_503_with_retry_after_and_nothing_is_lost() {
    let failing = Arc::new(FailingStore::new(Arc::new(MemoryStore::new())));
    let (sessions, _, id) = sessions_for(failing.clone() as Arc<dyn TokenStore>);
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let ep = SessionEndpoint::refresh(sessions.clone());
    failing.set_down(true);
    let (status, headers, body) =
        call(&ep, post(format!(r#"{{"refresh":"{}"}}"#, pair.refresh))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    assert!(
        headers.get("www-authenticate").is_none(),
        "no invalid_token challenge on a store error"
    );
    assert_eq!(body["error"], "temporarily_unavailable");
    failing.set_down(false);
    let (status, _, _) = call(&ep, post(format!(r#"{{"refresh":"{}"}}"#, pair.refresh))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn browser_cookie_mode() {
    let (sessions, id) = setup();
    let cookie = RefreshCookie::new().path("/api/token/");
    let ep = SessionEndpoint::refresh(sessions.clone()).refresh_cookie(cookie.clone());
    let logout = SessionEndpoint::logout(sessions.clone()).refresh_cookie(cookie);
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let req = Request::post("/")
        .header("cookie", format!("refresh_token={}", pair.refresh))
        .body(Body::default())
        .unwrap();
    let (status, headers, body) = call(&ep, req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["access"].is_string());
    assert!(
        body.get("refresh").is_none(),
        "the refresh token stays out of reach of scripts"
    );
    let set = headers["set-cookie"].to_str().unwrap().to_owned();
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/api/token/",
        "Max-Age=",
    ] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    let new_refresh = set
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("refresh_token=")
        .to_owned();
    let req = Request::post("/")
        .header("cookie", format!("refresh_token={new_refresh}"))
        .body(Body::default())
        .unwrap();
    let (status, headers, _) = call(&logout, req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}
