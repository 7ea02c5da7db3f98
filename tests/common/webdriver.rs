//! Just enough W3C WebDriver to drive headless Chromium from a test: a
//! `chromedriver` process on a free loopback port, one browser session, and
//! the commands the browser tests use (navigate, find, type, click, run a
//! script, windows, screenshot). The driver and Chromium end when the
//! `Browser` drops (one process group, killed).
//!
//! Chromium and its driver come from Debian's `chromium` and `chromium-driver`
//! packages (`CHROMIUM` and `CHROMEDRIVER` name other binaries). Without them
//! the tests skip with a printed reason, except under `CI`.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// The W3C key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium under `chromedriver`.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: Client<HttpConnector, Full<Bytes>>,
    profile: std::path::PathBuf,
}

/// The binaries, from the environment or Debian's paths; `None` (with why)
/// when either is missing.
fn binaries() -> Result<(String, String), String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let driver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    for path in [&chromium, &driver] {
        if !std::path::Path::new(path).exists() {
            return Err(format!(
                "{path} is not installed (apt-get install chromium chromium-driver)"
            ));
        }
    }
    Ok((chromium, driver))
}

impl Browser {
    /// Starts the driver and a headless browser session, or answers why not
    /// (the binaries are missing); panics under `CI` instead.
    pub async fn start() -> Option<Browser> {
        let (chromium, driver) = match binaries() {
            Ok(found) => found,
            Err(why) => return super::common::unavailable("Chromium", why),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Its own process group: the driver and every Chromium process it
        // starts end together on drop.
        let child = Command::new(driver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = std::env::temp_dir().join(super::common::unique_name("chromium_profile"));
        let mut browser = Browser {
            driver: child,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            profile,
        };
        browser.wait_ready().await;
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--window-size=1100,900",
                    format!("--user-data-dir={}", browser.profile.display()),
                ],
            },
        }}});
        let created = browser.call(Method::POST, "/session", caps).await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Some(browser)
    }

    async fn wait_ready(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(status) = self.try_call(Method::GET, "/status", Value::Null).await
                && status["ready"] == true
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready in 20 s");
    }

    async fn try_call(&self, method: Method, path: &str, body: Value) -> Result<Value, String> {
        let body = if body.is_null() {
            Bytes::new()
        } else {
            Bytes::from(body.to_string())
        };
        let req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let res = tokio::time::timeout(Duration::from_secs(60), self.client.request(req))
            .await
            .map_err(|_| "no answer in 60 s".to_owned())?
            .map_err(|e| e.to_string())?;
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let answer: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if answer["value"]["error"].is_string() {
            return Err(format!("{}", answer["value"]));
        }
        Ok(answer["value"].clone())
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> Value {
        let what = format!("{method} {path}");
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {what}: {e}"))
    }

    async fn command(&self, method: Method, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, body).await
    }

    /// Opens `url` in the current window.
    pub async fn goto(&self, url: &str) {
        self.command(Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    /// The element matching the CSS `selector`.
    pub async fn find(&self, selector: &str) -> String {
        let found = self
            .command(
                Method::POST,
                "/element",
                json!({ "using": "css selector", "value": selector }),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {selector}: {found}"))
            .to_owned()
    }

    /// Types `text` into the element matching `selector`, after clearing it.
    pub async fn fill(&self, selector: &str, text: &str) {
        let el = self.find(selector).await;
        self.command(Method::POST, &format!("/element/{el}/clear"), json!({}))
            .await;
        self.command(
            Method::POST,
            &format!("/element/{el}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Clicks the element matching `selector`.
    pub async fn click(&self, selector: &str) {
        let el = self.find(selector).await;
        self.command(Method::POST, &format!("/element/{el}/click"), json!({}))
            .await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) and answers
    /// what it returns; a returned promise is awaited.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.command(
            Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// Waits up to `limit` for `condition` (a script expression) to be true.
    pub async fn wait_for(&self, condition: &str, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self
                .run(&format!("return !!({condition});"), json!([]))
                .await
                == true
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// The current window's handle.
    pub async fn window(&self) -> String {
        let handle = self.command(Method::GET, "/window", Value::Null).await;
        handle.as_str().expect("a handle").to_owned()
    }

    /// Opens a new tab and answers its handle (the current window stays).
    pub async fn new_tab(&self) -> String {
        let opened = self
            .command(Method::POST, "/window/new", json!({ "type": "tab" }))
            .await;
        opened["handle"].as_str().expect("a handle").to_owned()
    }

    /// Makes `handle` the current window.
    pub async fn switch_to(&self, handle: &str) {
        self.command(Method::POST, "/window", json!({ "handle": handle }))
            .await;
    }

    /// A PNG screenshot of the current window.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let data = self.command(Method::GET, "/screenshot", Value::Null).await;
        base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("base64"))
            .expect("a PNG")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
