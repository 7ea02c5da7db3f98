//! Browser mode: the refresh token in an HttpOnly cookie.

use http::{HeaderMap, HeaderValue};

use crate::error::AuthError;
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

/// The refresh cookie's name and attributes: HttpOnly always; Secure, SameSite
/// Strict and a path scoped to the token routes by default.
#[derive(Debug, Clone)]
pub struct RefreshCookie {
    name: String,
    path: String,
    secure: bool,
    same_site: SameSite,
}

impl Default for RefreshCookie {
    fn default() -> Self {
        RefreshCookie {
            name: "refresh_token".into(),
            path: "/api/token/".into(),
            secure: true,
            same_site: SameSite::Strict,
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

    pub(crate) fn read<'h>(&self, headers: &'h HeaderMap) -> Result<Option<&'h str>, AuthError> {
        cookie(headers, &self.name)
    }

    fn attributes(&self, max_age: u64) -> String {
        let same_site = match self.same_site {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        };
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "; HttpOnly{secure}; SameSite={same_site}; Path={}; Max-Age={max_age}",
            self.path
        )
    }

    /// The `Set-Cookie` value carrying the pair's refresh token, at `now`.
    pub(crate) fn set(&self, pair: &TokenPair, now: u64) -> Option<HeaderValue> {
        let max_age = pair.refresh_expires_at.saturating_sub(now);
        HeaderValue::from_str(&format!(
            "{}={}{}",
            self.name,
            pair.refresh,
            self.attributes(max_age)
        ))
        .ok()
    }

    pub(crate) fn clear(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("{}={}", self.name, self.attributes(0)))
            .unwrap_or_else(|_| HeaderValue::from_static("refresh_token=; Max-Age=0"))
    }
}
