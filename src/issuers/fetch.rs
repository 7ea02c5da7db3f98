//! Fetching a discovery document or a JWKS, safely: TLS (rustls) unless plain
//! HTTP was allowed, one timeout for the whole request, a size cap read as the
//! body streams in, redirects only within the same origin, no proxy from the
//! environment.

use std::time::Duration;

use reqwest::redirect::{Attempt, Policy};

use super::policy::{FetchPolicy, max_age};

/// The most redirects followed (each within the same origin).
const MAX_REDIRECTS: usize = 3;

/// An HTTP client for one issuer's key fetches.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    max_bytes: usize,
    allow_http: bool,
}

/// A fetched body and the refresh interval its `Cache-Control` asked for.
pub(crate) struct Fetched {
    pub(crate) body: Vec<u8>,
    pub(crate) max_age: Option<Duration>,
}

impl Fetcher {
    pub(crate) fn new(policy: &FetchPolicy) -> Result<Self, String> {
        let mut roots = Vec::new();
        for pem in &policy.root_certificates {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|_| "a root certificate is not PEM".to_owned())?;
            if certs.is_empty() {
                return Err("a root certificate is not PEM".into());
            }
            roots.extend(certs);
        }
        let client = reqwest::Client::builder()
            .tls_certs_merge(roots)
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .https_only(!policy.allow_http)
            .redirect(Policy::custom(same_origin))
            .no_proxy()
            .user_agent(concat!("tower-jwt-auth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Fetcher {
            client,
            max_bytes: policy.max_bytes,
            allow_http: policy.allow_http,
        })
    }

    /// Whether `url` may be fetched: `https`, or `http` where allowed.
    pub(crate) fn check_url(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|_| format!("`{url}` is not a URL"))?;
        match parsed.scheme() {
            "https" => Ok(()),
            "http" if self.allow_http => Ok(()),
            _ => Err(format!(
                "`{url}` is not https (allow_http permits http for tests)"
            )),
        }
    }

    /// GET `url`: a 200 answer whose body fits the cap.
    pub(crate) async fn get(&self, url: &str) -> Result<Fetched, String> {
        self.check_url(url)?;
        let mut res = self
            .client
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", describe(&e)))?;
        if res.status() != reqwest::StatusCode::OK {
            return Err(format!("GET {url}: status {}", res.status()));
        }
        if res
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(format!(
                "GET {url}: the body is over {} bytes",
                self.max_bytes
            ));
        }
        let max_age = res
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {}", describe(&e)))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(format!(
                    "GET {url}: the body is over {} bytes",
                    self.max_bytes
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }
}

/// Follows a redirect only to the same scheme, host and port, a few times.
fn same_origin(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    let Some(first) = attempt.previous().first() else {
        return attempt.stop();
    };
    let same = first.scheme() == attempt.url().scheme()
        && first.host_str() == attempt.url().host_str()
        && first.port_or_known_default() == attempt.url().port_or_known_default();
    if same && attempt.previous().len() <= MAX_REDIRECTS {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

/// A request error in a few words (reqwest's text names the URL already).
fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else if e.is_body() || e.is_decode() {
        "the body could not be read"
    } else {
        "request failed"
    }
}
