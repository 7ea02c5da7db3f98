//! Browser mode end to end, on the real example server: its cookie routes over
//! real HTTP (the cookie's attributes, rotation, logout, and the 403s for
//! forged requests, which spend nothing), and its page at `/` in real headless
//! Chromium driven through WebDriver: sign up, log in, the refresh token out
//! of JavaScript's reach, a reload that stays logged in, the session list and
//! revoking another session, two tabs refreshing at once, forged requests from
//! pages on other origins, and logout. A screenshot of the page after login is
//! written to `target/browser-after-login.png`.
//!
//! Chromium comes from Debian's `chromium` and `chromium-driver` packages
//! (`.ci/run` installs them); without them the Chromium test skips with a
//! printed reason, except under `CI`.

mod common;
#[path = "common/server.rs"]
mod server;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use server::Server;
use webdriver::Browser;

const PASSWORD: &str = "correct horse battery staple";

/// One answer of the server.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The refresh token the answer's `Set-Cookie` carries.
    fn cookie(&self) -> String {
        let set = self.headers["set-cookie"].to_str().unwrap();
        set.strip_prefix("refresh_token=")
            .and_then(|rest| rest.split(';').next())
            .unwrap_or_else(|| panic!("no refresh cookie in {set}"))
            .to_owned()
    }
}

async fn send(
    base: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let res = client.request(req).await.expect("an answer");
    let (parts, body) = res.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// A request from the app's own page: its `Host`, `Origin` and Fetch Metadata.
fn from_page<'a>(host: &'a str, origin: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("host", host),
        ("origin", origin),
        ("sec-fetch-site", "same-origin"),
        ("content-type", "application/json"),
    ]
}

async fn register(base: &str, username: &str) {
    let body = json!({ "username": username, "password": PASSWORD }).to_string();
    let r = send(
        base,
        Method::POST,
        "/api/users/",
        &[("content-type", "application/json")],
        &body,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_routes_over_http() {
    let server = Server::start(&[("DATABASE_URL", "memory"), ("REUSE_GRACE_SECS", "0")]);
    let base = server.base.clone();
    let host = base.trim_start_matches("http://").to_owned();
    let page = from_page(&host, &base);

    // The page: HTML, kept to its own origin.
    let r = send(&base, Method::GET, "/", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    let policy = r.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"));
    assert_eq!(r.headers["x-frame-options"], "DENY");

    register(&base, "carol").await;
    let credentials = json!({ "username": "carol", "password": PASSWORD }).to_string();
    let wrong = json!({ "username": "carol", "password": "nope" }).to_string();
    let r = send(&base, Method::POST, "/api/cookie/token/", &page, &wrong).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get("set-cookie").is_none());

    // Login: {"access"} only, the refresh token in the cookie.
    let r = send(
        &base,
        Method::POST,
        "/api/cookie/token/",
        &page,
        &credentials,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(r.headers["cache-control"], "no-store");
    let keys: Vec<String> = r.json().as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["access"]);
    let set = r.headers["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/cookie/"] {
        assert!(set.contains(attribute), "{attribute}: {set}");
    }
    let mut token = r.cookie();

    // Forged refreshes and logouts: 403 JSON, nothing spent (window 0: a spent
    // token would be refused afterwards).
    let evil = "http://evil.example";
    let forged: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "cross-site",
            vec![
                ("host", &host),
                ("sec-fetch-site", "cross-site"),
                ("content-type", "application/json"),
            ],
        ),
        (
            "foreign origin",
            vec![
                ("host", &host),
                ("origin", evil),
                ("content-type", "application/json"),
            ],
        ),
        (
            "foreign referer",
            vec![
                ("host", &host),
                ("referer", "http://evil.example/x"),
                ("content-type", "application/json"),
            ],
        ),
        (
            "form",
            vec![
                ("host", &host),
                ("origin", &base),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
        ),
    ];
    let cookie = format!("refresh_token={token}");
    for (what, headers) in &forged {
        for path in [
            "/api/cookie/refresh/",
            "/api/cookie/logout/",
            "/api/cookie/token/",
        ] {
            let mut headers = headers.clone();
            headers.push(("cookie", &cookie));
            let r = send(&base, Method::POST, path, &headers, &credentials).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{what} {path}");
            assert_eq!(r.json()["error"], "cross_site_request", "{what} {path}");
            assert!(r.headers.get("set-cookie").is_none(), "{what} {path}");
        }
    }

    // Refresh from the page: a new access token and the next cookie.
    for _ in 0..3 {
        let mut headers = page.clone();
        let cookie = format!("refresh_token={token}");
        headers.push(("cookie", &cookie));
        let r = send(&base, Method::POST, "/api/cookie/refresh/", &headers, "").await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
        assert!(r.json()["access"].is_string() && r.json().get("refresh").is_none());
        let next = r.cookie();
        assert_ne!(next, token);
        token = next;
    }

    // Logout: the cookie cleared, the session over.
    let mut headers = page.clone();
    let cookie = format!("refresh_token={token}");
    headers.push(("cookie", &cookie));
    let r = send(&base, Method::POST, "/api/cookie/logout/", &headers, "{}").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = send(&base, Method::POST, "/api/cookie/refresh/", &headers, "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// Serves one HTML page, to every request, on a free loopback port of
/// `host` (`127.0.0.1` or `localhost`): a page of another origin.
async fn serve_page(html: String) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let html = html.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut conn, &mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    html.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(html.as_bytes()).await;
            });
        }
    });
    (port, task)
}

/// The attacker's page: a `fetch` with credentials and an auto-submitted
/// form, both to the refresh route of `target`; the title says when done. The
/// form has no field: its empty body would pass as a browser-mode refresh,
/// so only the forgery checks stand between it and a rotation.
fn attack_page(target: &str) -> String {
    format!(
        r#"<!doctype html><title>attacking</title>
<form id="f" method="POST" action="{target}/api/cookie/refresh/" target="sink"></form>
<iframe name="sink"></iframe>
<script>
fetch("{target}/api/cookie/refresh/", {{method: "POST", credentials: "include",
  headers: {{"content-type": "application/json"}}, body: "{{}}"}})
  .catch(() => null)
  .then(() => {{ document.getElementById("f").submit(); setTimeout(() => document.title = "done", 1500); }});
</script>"#
    )
}

/// The current session's `last_rotated_at`, as the page's access token sees it.
async fn last_rotated(browser: &Browser, base: &str) -> u64 {
    let access = browser
        .run(
            "return window.__accessForTests ? window.__accessForTests() : null;",
            json!([]),
        )
        .await;
    let access = access.as_str().map(str::to_owned);
    let access = match access {
        Some(a) => a,
        None => panic!("the page exposes no access token to the test"),
    };
    let auth = format!("Bearer {access}");
    let r = send(
        base,
        Method::GET,
        "/api/sessions/",
        &[("authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json();
    let current = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .expect("the current session is listed")
        .clone();
    current["last_rotated_at"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = Server::start(&[("DATABASE_URL", "memory")]);
    let base = server.base.clone();
    let long = Duration::from_secs(15);

    // Sign up and log in through the page.
    browser.goto(&format!("{base}/")).await;
    assert!(
        browser.wait_for("window.appState", long).await,
        "the page loaded"
    );
    browser.fill("#signup-username", "dora").await;
    browser.fill("#signup-password", PASSWORD).await;
    browser.click("#signup-submit").await;
    assert!(
        browser
            .wait_for(
                "/created|signed up|account/i.test(document.querySelector('#status').textContent)",
                long
            )
            .await,
        "sign-up: {}",
        browser
            .run(
                "return document.querySelector('#status').textContent;",
                json!([])
            )
            .await
    );
    browser.fill("#login-username", "dora").await;
    browser.fill("#login-password", PASSWORD).await;
    browser.click("#login-submit").await;
    assert!(
        browser.wait_for("window.appState.loggedIn", long).await,
        "logged in"
    );
    assert!(
        browser
            .wait_for(
                "document.querySelector('#me').textContent.includes('dora')",
                long
            )
            .await,
        "/api/me/ shown"
    );
    assert!(
        browser
            .wait_for(
                "document.querySelectorAll('#sessions .session.current').length === 1",
                long
            )
            .await
    );
    let png = browser.screenshot().await;
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser-after-login.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("screenshot: {}", shot.display());

    // The refresh token is out of JavaScript's reach.
    let cookies = browser.run("return document.cookie;", json!([])).await;
    assert!(
        !cookies.as_str().unwrap().contains("refresh_token"),
        "{cookies}"
    );

    // A reload stays logged in (the cookie refreshes silently).
    browser.goto(&format!("{base}/")).await;
    assert!(
        browser
            .wait_for("window.appState && window.appState.loggedIn", long)
            .await,
        "after reload"
    );

    // Another session of the same user (a login from elsewhere), listed and
    // revoked from the page: its refresh token is refused afterwards.
    let other = send(
        &base,
        Method::POST,
        "/api/token/",
        &[
            ("content-type", "application/json"),
            ("user-agent", "another device"),
        ],
        &json!({ "username": "dora", "password": PASSWORD }).to_string(),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    browser.goto(&format!("{base}/")).await;
    assert!(
        browser
            .wait_for(
                "document.querySelectorAll('#sessions .session').length === 2",
                long
            )
            .await
    );
    browser
        .click("#sessions .session:not(.current) .revoke")
        .await;
    assert!(
        browser
            .wait_for(
                "document.querySelectorAll('#sessions .session').length === 1",
                long
            )
            .await
    );
    let refresh = json!({ "refresh": other.json()["refresh"] }).to_string();
    let r = send(
        &base,
        Method::POST,
        "/api/token/refresh/",
        &[("content-type", "application/json")],
        &refresh,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "the revoked session's token"
    );

    // Two tabs refresh at the same moment: both stay logged in.
    let first = browser.window().await;
    let second = browser.new_tab().await;
    browser.switch_to(&second).await;
    browser.goto(&format!("{base}/")).await;
    assert!(
        browser
            .wait_for("window.appState && window.appState.loggedIn", long)
            .await,
        "second tab"
    );
    let at = json!([chrono_free_now_ms() + 800]);
    let schedule = "const at = arguments[0]; window.__raced = null; \
        setTimeout(() => window.refreshNow().then(ok => window.__raced = ok), Math.max(0, at - Date.now())); \
        return true;";
    browser.run(schedule, at.clone()).await;
    browser.switch_to(&first).await;
    browser.run(schedule, at).await;
    for tab in [&first, &second] {
        browser.switch_to(tab).await;
        assert!(browser.wait_for("window.__raced !== null", long).await);
        assert_eq!(
            browser.run("return window.__raced;", json!([])).await,
            true,
            "a racing tab"
        );
        assert_eq!(
            browser.run("return window.refreshNow();", json!([])).await,
            true,
            "afterwards"
        );
    }

    // Pages of other origins post to the refresh route: same-site on another
    // port (the cookie is sent; the origin check refuses) and cross-site
    // (localhost: SameSite keeps the cookie, Fetch Metadata refuses). Nothing
    // is rotated, and the session still works.
    browser.switch_to(&first).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = last_rotated(&browser, &base).await;
    let (port, attacker) = serve_page(attack_page(&base)).await;
    let attack_tab = browser.new_tab().await;
    browser.switch_to(&attack_tab).await;
    for origin in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
    ] {
        browser.goto(&origin).await;
        assert!(
            browser.wait_for("document.title === 'done'", long).await,
            "{origin}"
        );
    }
    attacker.abort();
    browser.switch_to(&first).await;
    assert_eq!(
        last_rotated(&browser, &base).await,
        before,
        "a forged refresh rotated"
    );
    assert_eq!(
        browser.run("return window.refreshNow();", json!([])).await,
        true
    );

    // Logout ends the session: a later refresh fails.
    browser.click("#logout").await;
    assert!(browser.wait_for("!window.appState.loggedIn", long).await);
    assert_eq!(
        browser.run("return window.refreshNow();", json!([])).await,
        false
    );
    drop(server);
}

/// Milliseconds since the epoch, as the browser's `Date.now()` counts them.
fn chrono_free_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
