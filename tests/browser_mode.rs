//! Browser mode's defence against cross-site request forgery, over HTTP
//! semantics: refresh, logout and login with the refresh token in a cookie
//! refuse (403, JSON, nothing spent or revoked) a request `Sec-Fetch-Site`
//! calls cross-site, a foreign `Origin`, a foreign `Referer` without `Origin`,
//! and a form content type; same-origin requests and configured origins pass.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::ServiceExt;
use tower_jwt_auth::conformance::{Users, sessions_for};
use tower_jwt_auth::{
    ConfigError, LoggedIn, LoginEndpoint, LoginError, MemoryStore, RefreshCookie, SessionEndpoint,
    Sessions,
};

type Body = Full<Bytes>;

const HOST: &str = "app.example:8443";
const SAME_ORIGIN: &str = "https://app.example:8443";

/// The forged requests: each header set a cross-site page can make a browser
/// send, or a header a browser sends for one.
const FORGED: &[(&str, &[(&str, &str)])] = &[
    (
        "Sec-Fetch-Site: cross-site",
        &[("sec-fetch-site", "cross-site")],
    ),
    ("a foreign Origin", &[("origin", "https://evil.example")]),
    ("Origin: null", &[("origin", "null")]),
    (
        "a foreign Referer, no Origin",
        &[("referer", "https://evil.example/page")],
    ),
    (
        "a form content type",
        &[("content-type", "application/x-www-form-urlencoded")],
    ),
    ("text/plain", &[("content-type", "text/plain")]),
];

/// A browser-mode request from the app's own page, with `extra` headers
/// replacing its defaults; `token` in the cookie.
fn request(token: Option<&str>, body: &'static str, extra: &[(&str, &str)]) -> Request<Body> {
    let mut headers = vec![
        ("host", HOST),
        ("origin", SAME_ORIGIN),
        ("sec-fetch-site", "same-origin"),
        ("content-type", "application/json"),
    ];
    for (name, value) in extra {
        headers.retain(|(n, _)| n != name);
        if *name == "referer" {
            headers.retain(|(n, _)| *n != "origin");
        }
        headers.push((name, value));
    }
    let mut req = Request::post("/api/cookie/refresh/");
    for (name, value) in headers {
        req = req.header(name, value);
    }
    if let Some(token) = token {
        req = req.header("cookie", format!("refresh_token={token}"));
    }
    req.body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

async fn read(res: Response<Body>) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).expect("every answer is JSON");
    (parts.status, parts.headers, json)
}

fn cookie() -> RefreshCookie {
    RefreshCookie::new().path("/api/cookie/")
}

/// Sessions with strict single use (window 0): a token spent by a forged
/// request would make the next real refresh fail.
fn sessions() -> (Sessions<Users>, uuid::Uuid) {
    let (s, _, id) = sessions_for(Arc::new(MemoryStore::new()));
    (s.with_reuse_grace(Duration::ZERO).unwrap(), id)
}

fn assert_forbidden(status: StatusCode, body: &serde_json::Value, what: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
    assert_eq!(body["error"], "cross_site_request", "{what}");
    assert!(body["error_description"].is_string(), "{what}");
}

#[tokio::test]
async fn forged_refreshes_and_logouts_are_refused_and_spend_nothing() {
    let (sessions, id) = sessions();
    let refresh = SessionEndpoint::refresh(sessions.clone()).refresh_cookie(cookie());
    let logout = SessionEndpoint::logout(sessions.clone()).refresh_cookie(cookie());
    let pair = sessions
        .login(&id, &Default::default(), None)
        .await
        .unwrap();
    let mut token = pair.refresh.clone();
    for (what, headers) in FORGED {
        for ep in [&refresh, &logout] {
            let req = request(Some(&token), "{}", headers);
            let (status, _, body) = read(ep.clone().oneshot(req).await.unwrap()).await;
            assert_forbidden(status, &body, what);
        }
        // Nothing was spent or revoked: the same token rotates from the page.
        let req = request(Some(&token), "{}", &[]);
        let (status, headers, body) = read(refresh.clone().oneshot(req).await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "after {what}: {body}");
        let set = headers["set-cookie"].to_str().unwrap();
        token = set["refresh_token=".len()..]
            .split(';')
            .next()
            .unwrap()
            .to_owned();
    }
    // A referer from the page itself, without Origin, passes; so does a
    // client that is not a browser (none of the three headers).
    let req = request(
        Some(&token),
        "",
        &[("referer", "https://app.example:8443/")],
    );
    let (status, headers, _) = read(refresh.clone().oneshot(req).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let set = headers["set-cookie"].to_str().unwrap();
    token = set["refresh_token=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let plain = Request::post("/api/cookie/logout/")
        .header("cookie", format!("refresh_token={token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, _) = read(logout.oneshot(plain).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn forged_logins_are_refused() {
    let (sessions, id) = sessions();
    let login = LoginEndpoint::new(sessions.clone(), move |req| async move {
        match (req.username.as_str(), req.password.as_str()) {
            ("ada", "s3cret") => Ok(LoggedIn::user(id)),
            _ => Err(LoginError::BadCredentials),
        }
    })
    .refresh_cookie(cookie());
    let credentials = r#"{"username":"ada","password":"s3cret"}"#;
    for (what, headers) in FORGED {
        let req = request(None, credentials, headers);
        let (status, headers, body) = read(login.clone().oneshot(req).await.unwrap()).await;
        assert_forbidden(status, &body, what);
        assert!(headers.get("set-cookie").is_none(), "{what}");
    }
    assert!(
        sessions
            .list_sessions(&id.to_string())
            .await
            .unwrap()
            .is_empty()
    );
    let req = request(None, credentials, &[]);
    let (status, headers, _) = read(login.oneshot(req).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.contains_key("set-cookie"));
}

#[tokio::test]
async fn configured_origins_replace_the_same_origin_rule() {
    let (sessions, id) = sessions();
    let cookie = cookie()
        .allowed_origins(["https://pages.example/"])
        .unwrap();
    let refresh = SessionEndpoint::refresh(sessions.clone()).refresh_cookie(cookie);
    let pair = sessions
        .login(&id, &Default::default(), None)
        .await
        .unwrap();
    // The API's own origin is no longer enough...
    let req = request(Some(&pair.refresh), "{}", &[]);
    let (status, _, body) = read(refresh.clone().oneshot(req).await.unwrap()).await;
    assert_forbidden(status, &body, "the API's own origin");
    // ...the configured one is (a same-site page: Sec-Fetch-Site says so).
    let from_pages = [
        ("origin", "https://pages.example"),
        ("sec-fetch-site", "same-site"),
    ];
    let req = request(Some(&pair.refresh), "{}", &from_pages);
    assert_eq!(
        read(refresh.oneshot(req).await.unwrap()).await.0,
        StatusCode::OK
    );
    // What is not an origin is refused when configured.
    for bad in ["pages.example", "https://pages.example/app", ""] {
        assert!(
            matches!(
                RefreshCookie::new().allowed_origins([bad]),
                Err(ConfigError::BadOrigin(_))
            ),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn the_check_can_be_turned_off() {
    let (sessions, id) = sessions();
    let refresh =
        SessionEndpoint::refresh(sessions.clone()).refresh_cookie(cookie().csrf_check(false));
    let pair = sessions
        .login(&id, &Default::default(), None)
        .await
        .unwrap();
    let req = request(
        Some(&pair.refresh),
        "{}",
        &[("origin", "https://evil.example")],
    );
    assert_eq!(
        read(refresh.oneshot(req).await.unwrap()).await.0,
        StatusCode::OK
    );
}
