//! A real OpenID Provider for the tests: node's `oidc-provider` (version in
//! `tests/oidc/VERSION`), installed once into a cache folder and started on a
//! loopback port by `tests/oidc/provider.mjs` (see `tests/oidc/README.md`).
//! Without node or npm a test skips with a printed reason, or fails under CI.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub const AUDIENCE: &str = "urn:tower-jwt-auth:test";

/// The folder holding `node_modules/oidc-provider`: `OIDC_PROVIDER_CACHE`, or
/// a folder under the target directory; installed there on first use.
fn modules_dir() -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let version = std::fs::read_to_string(manifest.join("tests/oidc/VERSION"))
            .map_err(|e| format!("tests/oidc/VERSION: {e}"))?
            .trim()
            .to_owned();
        let dir = match std::env::var_os("OIDC_PROVIDER_CACHE") {
            Some(dir) => PathBuf::from(dir),
            None => std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| manifest.join("target"), PathBuf::from)
                .join(format!("oidc-provider-{version}")),
        };
        if dir.join("node_modules/oidc-provider/package.json").exists() {
            return Ok(dir);
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let out = Command::new("npm")
            .args(["install", "--prefix"])
            .arg(&dir)
            .arg(format!("oidc-provider@{version}"))
            .args(["--no-audit", "--no-fund", "--no-save", "--silent"])
            .output()
            .map_err(|e| format!("npm: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm install oidc-provider@{version} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(dir)
    })
    .clone()
}

/// A running provider, stopped on drop.
pub struct Provider {
    child: Child,
    _stdin: ChildStdin,
    pub issuer: String,
    pub port: u16,
    stderr: std::sync::Arc<Mutex<Vec<String>>>,
}

impl Provider {
    /// Starts a provider signing with the key in `key_file` (made there when
    /// missing) on `port` (0: any). `None` when node is not available and the
    /// test may skip.
    pub fn start(key_file: &Path, port: u16) -> Option<Provider> {
        let modules = match modules_dir() {
            Ok(dir) => dir,
            Err(e) => return super::common::unavailable("the OpenID Provider (node, npm)", e),
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/provider.mjs");
        let mut child = match Command::new("node")
            .arg(script)
            .arg("--modules")
            .arg(&modules)
            .args([
                "--port",
                &port.to_string(),
                "--alg",
                "ES256",
                "--watch-stdin",
            ])
            .arg("--key-file")
            .arg(key_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => return super::common::unavailable("node", e),
        };
        let stdin = child.stdin.take().unwrap();
        let stderr = std::sync::Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
        });
        let mut provider = Provider {
            child,
            _stdin: stdin,
            issuer: String::new(),
            port: 0,
            stderr,
        };
        let ready: Value = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => serde_json::from_str(&line).expect("the ready line"),
            Err(_) => panic!(
                "the provider did not start: {}",
                provider.stderr.lock().unwrap().join("\n")
            ),
        };
        provider.issuer = ready["issuer"].as_str().unwrap().to_owned();
        provider.port = u16::try_from(ready["port"].as_u64().unwrap()).unwrap();
        Some(provider)
    }

    /// An access token for `scope` from the client_credentials grant.
    pub async fn token(&self, scope: &str) -> String {
        let body = format!(
            "grant_type=client_credentials&scope={}&resource={}",
            scope.replace(' ', "%20"),
            AUDIENCE.replace(':', "%3A")
        );
        let (status, json) = post_form(
            &format!("{}/token", self.issuer),
            "api-client:api-secret",
            body,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "token: {json}");
        json["access_token"].as_str().unwrap().to_owned()
    }

    /// The provider's public JWKS.
    pub async fn jwks(&self) -> Value {
        get_json(&format!("{}/jwks", self.issuer)).await
    }

    /// How many times the provider's JWKS was requested.
    pub async fn jwks_fetches(&self) -> u64 {
        get_json(&format!("{}/__test/jwks-fetches", self.issuer)).await["count"]
            .as_u64()
            .unwrap()
    }

    /// Stops the provider and waits for it to exit.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn post_form(url: &str, basic: &str, body: String) -> (StatusCode, Value) {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(basic);
    let req = Request::post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {auth}"))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = client().request(req).await.expect("the provider answers");
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get_json(url: &str) -> Value {
    let req = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    let res = client().request(req).await.expect("the provider answers");
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
