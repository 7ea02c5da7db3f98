//! The login endpoint over HTTP semantics: the refresh endpoint's JSON shape and
//! headers, one answer for every bad credential, JSON errors for malformed
//! bodies, 503 when the users table is down, browser mode (the cookie, and the
//! cross-site checks that come with it), and `TokenPair` as JSON.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use tower_jwt_auth::conformance::{Users, sessions_for};
use tower_jwt_auth::{
    DecoyHash, LoggedIn, LoginEndpoint, LoginError, MemoryStore, RefreshCookie, SessionEndpoint,
    Sessions, StoreError,
};
use uuid::Uuid;

type Body = Full<Bytes>;
type Answer = (StatusCode, http::HeaderMap, serde_json::Value);

fn post(content_type: &str, body: impl Into<Bytes>) -> Request<Body> {
    Request::post("/api/token/")
        .header("content-type", content_type)
        .header("user-agent", "Firefox on a laptop")
        .body(Full::new(body.into()))
        .unwrap()
}

fn credentials(username: &str, password: &str) -> Request<Body> {
    let body = serde_json::json!({ "username": username, "password": password });
    post("application/json", body.to_string())
}

async fn read(res: Response<Body>) -> Answer {
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).expect("every answer is JSON");
    (parts.status, parts.headers, json)
}

async fn call(ep: &LoginEndpoint<Users>, req: Request<Body>) -> Answer {
    read(ep.clone().oneshot(req).await.unwrap()).await
}

/// The app's users: `ada` (password `s3cret`), `bob` (inactive), and the
/// table going down when `down` says so. Each check costs 20 ms (a hash);
/// an unknown user's password is checked against the decoy.
fn login_for(
    sessions: Sessions<Users>,
    ada: Uuid,
    down: Arc<std::sync::atomic::AtomicBool>,
) -> LoginEndpoint<Users> {
    let decoy = DecoyHash::new("decoy");
    LoginEndpoint::new(sessions, move |req| {
        let (decoy, down) = (decoy.clone(), down.clone());
        async move {
            if down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(LoginError::Unavailable(StoreError::new("users table down")));
            }
            let (id, hash, active) = match req.username.as_str() {
                "ada" => (Some(ada), Some("s3cret".to_owned()), true),
                "bob" => (Some(Uuid::new_v4()), Some("hunter2".to_owned()), false),
                _ => (None, None, false),
            };
            let password = req.password.clone();
            let matches = decoy
                .verify(hash, |hash| async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    hash == password
                })
                .await;
            match id {
                Some(id) if matches && active => Ok(LoggedIn::user(id)),
                _ => Err(LoginError::BadCredentials),
            }
        }
    })
}

fn setup() -> (
    Sessions<Users>,
    LoginEndpoint<Users>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    let (sessions, _, ada) = sessions_for(Arc::new(MemoryStore::new()));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let login = login_for(sessions.clone(), ada, down.clone());
    (sessions, login, down)
}

#[tokio::test]
async fn login_answers_as_the_refresh_endpoint() {
    let (sessions, login, _) = setup();
    let (status, headers, body) = call(&login, credentials("ada", "s3cret")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "no-store");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access", "refresh"]);
    // The pair works: the access token is accepted, the refresh token rotates
    // through the refresh endpoint, which answers the same shape.
    let claims = sessions
        .check_access(body["access"].as_str().unwrap())
        .await
        .unwrap();
    let refresh = SessionEndpoint::refresh(sessions.clone());
    let req = post(
        "application/json",
        serde_json::json!({ "refresh": body["refresh"] }).to_string(),
    );
    let (status, headers, next) = read(refresh.oneshot(req).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-store");
    let next_keys: Vec<&String> = next.as_object().unwrap().keys().collect();
    assert_eq!(next_keys, keys);
    // The session is labelled with the User-Agent.
    let listed = sessions.list_sessions(claims.user_id()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].label.as_deref(), Some("Firefox on a laptop"));
}

#[tokio::test]
async fn every_bad_credential_gets_one_answer_in_about_the_same_time() {
    let (_, login, _) = setup();
    let mut answers = Vec::new();
    for (user, password) in [("ada", "guess"), ("bob", "hunter2"), ("nobody", "s3cret")] {
        let started = std::time::Instant::now();
        let (status, headers, body) = call(&login, credentials(user, password)).await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{user}");
        assert_eq!(
            headers["www-authenticate"], "Bearer realm=\"api\"",
            "{user}"
        );
        assert_eq!(headers["cache-control"], "no-store", "{user}");
        // An unknown user costs a password check too (the decoy's).
        assert!(took >= Duration::from_millis(20), "{user}: {took:?}");
        answers.push(body);
    }
    assert_eq!(answers[0]["error"], "invalid_grant");
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
}

#[tokio::test]
async fn malformed_bodies_get_json_errors() {
    let (_, login, _) = setup();
    let cases: Vec<(Request<Body>, StatusCode)> = vec![
        (post("application/json", "{"), StatusCode::BAD_REQUEST),
        (
            post("application/json", r#"{"username":"ada"}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            post("application/json", r#"{"username":1,"password":"x"}"#),
            StatusCode::BAD_REQUEST,
        ),
        (post("application/json", ""), StatusCode::BAD_REQUEST),
        (
            post("text/plain", r#"{"username":"ada","password":"s3cret"}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            post("application/json", vec![b' '; 17 * 1024]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Request::get("/api/token/")
                .body(Full::new(Bytes::new()))
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (req, expected) in cases {
        let (status, _, body) = call(&login, req).await;
        assert_eq!(status, expected, "{body}");
        assert!(body["error"].is_string() && body["error_description"].is_string());
    }
}

#[tokio::test]
async fn users_table_down_is_503_with_retry_after() {
    let (_, login, down) = setup();
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, headers, body) = call(&login, credentials("ada", "s3cret")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["error"], "temporarily_unavailable");
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        call(&login, credentials("ada", "s3cret")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn browser_mode_sets_the_cookie_and_keeps_the_token_out_of_the_body() {
    let (_, login, _) = setup();
    let cookie = RefreshCookie::new().path("/api/cookie/");
    let login = login.refresh_cookie(cookie);
    let (status, headers, body) = call(&login, credentials("ada", "s3cret")).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access"]);
    let set = headers["set-cookie"].to_str().unwrap();
    assert!(set.starts_with("refresh_token=ey"), "{set}");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/cookie/"] {
        assert!(set.contains(attribute), "{attribute}: {set}");
    }
}

#[test]
fn a_token_pair_serializes_as_the_endpoints_answer() {
    let pair = tower_jwt_auth::TokenPair {
        access: "a.b.c".into(),
        refresh: "d.e.f".into(),
        session_id: Uuid::nil(),
        refresh_jti: Uuid::nil(),
        access_expires_at: 1,
        refresh_expires_at: 2,
    };
    assert_eq!(
        serde_json::to_value(&pair).unwrap(),
        serde_json::json!({ "access": "a.b.c", "refresh": "d.e.f" })
    );
}
