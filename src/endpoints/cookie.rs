//! Browser mode: the refresh token in an HttpOnly cookie.

use http::{HeaderMap, HeaderValue};

use super::csrf;
use crate::error::{AuthError, ConfigError};
use crate::jwt::TokenPair;
use crate::wire::credentials::cookie;

/// The `SameSite` attribute of the refresh cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on same-site requests only (the default).
    Strict,
    /// Also sent on top-level navigations.
    Lax,
    /// Sent everywhere (requires `Secure`).
    None,
}

/// Browser mode: the refresh cookie's name and attributes (HttpOnly always;
/// Secure, SameSite Strict and a path scoped to the token routes by default),
/// and the defence against cross-site request forgery that comes with it.
///
/// An endpoint in browser mode refuses, with 403 `cross_site_request` and
/// before reading the body, a request that `Sec-Fetch-Site` says is
/// cross-site, whose `Origin` (or, without one, `Referer`) is not an allowed
/// origin, or whose content type is not `application/json` (what a cross-site
/// form can send). Allowed origins are the request's own (`Origin` on the
/// `Host` it was sent to) unless [`RefreshCookie::allowed_origins`] names them.
/// A request with none of those three headers is not from a browser and
/// passes. This follows OWASP's CSRF cheat sheet (Fetch Metadata, then
/// standard-header verification); `SameSite=Strict` stays on as well.
#[derive(Debug, Clone)]
pub struct RefreshCookie {
    name: String,
    path: String,
    secure: bool,
    same_site: SameSite,
    allowed_origins: Vec<String>,
    csrf_check: bool,
}

impl Default for RefreshCookie {
    fn default() -> Self {
        RefreshCookie {
            name: "refresh_token".into(),
            path: "/api/token/".into(),
            secure: true,
            same_site: SameSite::Strict,
            allowed_origins: Vec::new(),
            csrf_check: true,
        }
    }
}

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

impl RefreshCookie {
    /// A cookie named `refresh_token`, `Path=/api/token/`, Secure, SameSite=Strict.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cookie name; characters outside RFC 6265's token set are dropped.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.chars().filter(|c| token_char(*c)).collect();
        self
    }

    /// The path the browser sends it to: the refresh and logout routes' common prefix.
    pub fn path(mut self, path: &str) -> Self {
        self.path = path
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != ';')
            .collect();
        self
    }

    /// Whether to mark it `Secure` (default true; false only for plain-HTTP development).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The `SameSite` attribute.
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// The origins (`scheme://host[:port]`) whose pages may call the
    /// browser-mode routes, when the app's pages are not served from the API's
    /// own origin; replaces the same-origin default. An entry with a path, or
    /// not an origin, is an error.
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut allowed = Vec::new();
        for origin in origins {
            let origin = origin.as_ref();
            allowed.push(
                csrf::normalize_origin(origin)
                    .ok_or_else(|| ConfigError::BadOrigin(origin.to_owned()))?,
            );
        }
        self.allowed_origins = allowed;
        Ok(self)
    }

    /// Turns the cross-site checks off (default on). Only for an app that
    /// defends against forgery itself, with a CSRF token for instance.
    pub fn csrf_check(mut self, on: bool) -> Self {
        self.csrf_check = on;
        self
    }

    /// Refuses a request that may be forged from another site (see the type's
    /// docs), before anything is read.
    pub(crate) fn check_request(&self, parts: &http::request::Parts) -> Result<(), AuthError> {
        if self.csrf_check {
            csrf::check(&parts.headers, &self.allowed_origins)
        } else {
            Ok(())
        }
    }

    pub(crate) fn read<'h>(&self, headers: &'h HeaderMap) -> Result<Option<&'h str>, AuthError> {
        cookie(headers, &self.name)
    }

    /// The `Set-Cookie` value for `value`, living `max_age` seconds.
    fn header(&self, value: &str, max_age: u64) -> Option<HeaderValue> {
        let same_site = match self.same_site {
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::None => cookie::SameSite::None,
        };
        let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
        let cookie = cookie::Cookie::build((self.name.as_str(), value))
            .http_only(true)
            .secure(self.secure)
            .same_site(same_site)
            .path(self.path.as_str())
            .max_age(cookie::time::Duration::seconds(max_age))
            .build();
        HeaderValue::from_str(&cookie.to_string()).ok()
    }

    /// The `Set-Cookie` value carrying the pair's refresh token, at `now`.
    pub(crate) fn set(&self, pair: &TokenPair, now: u64) -> Option<HeaderValue> {
        self.header(&pair.refresh, pair.refresh_expires_at.saturating_sub(now))
    }

    pub(crate) fn clear(&self) -> HeaderValue {
        self.header("", 0)
            .unwrap_or_else(|| HeaderValue::from_static("refresh_token=; Max-Age=0"))
    }
}
