//! Cross-site request forgery defence for browser mode (the refresh token in a
//! cookie), after OWASP's CSRF cheat sheet: Fetch Metadata first, then the
//! standard headers, and a JSON-only body.
//!
//! A request is refused (403, nothing read, spent or revoked) when:
//! - `Sec-Fetch-Site` is `cross-site`;
//! - `Origin` is present and is not an allowed origin (`null` never is);
//! - without `Origin`, `Referer` is present and its origin is not allowed;
//! - it declares a content type other than `application/json` (the types a
//!   cross-site HTML form can send without a preflight).
//!
//! Allowed origins are the configured ones ([`RefreshCookie::allowed_origins`])
//! or, when none is configured, the request's own: `Origin`'s host and port
//! equal to the `Host` header. A request carrying none of `Sec-Fetch-Site`,
//! `Origin` and `Referer` is not a browser's and passes: forgery needs a
//! victim's browser, and every current browser sends `Origin` on a `POST`.
//!
//! [`RefreshCookie::allowed_origins`]: crate::RefreshCookie::allowed_origins

use http::HeaderMap;
use http::header::{CONTENT_TYPE, HOST, ORIGIN, REFERER};

use crate::error::AuthError;

/// The `Sec-Fetch-Site` request header (Fetch Metadata).
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// Checks a browser-mode request against the allowed origins (`allowed`;
/// empty: the request's own origin).
pub(crate) fn check(headers: &HeaderMap, allowed: &[String]) -> Result<(), AuthError> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if header(SEC_FETCH_SITE).is_some_and(|site| site.eq_ignore_ascii_case("cross-site")) {
        return Err(AuthError::CrossSiteRequest(
            "a cross-site request (Sec-Fetch-Site)",
        ));
    }
    let origin = match (header(ORIGIN.as_str()), header(REFERER.as_str())) {
        (Some(origin), _) => Some(origin.to_owned()),
        (None, Some(referer)) => Some(origin_of(referer).unwrap_or_default()),
        (None, None) => None,
    };
    if let Some(origin) = origin
        && !is_allowed(&origin, allowed, header(HOST.as_str()))
    {
        return Err(AuthError::CrossSiteRequest(
            "the request's origin is not allowed",
        ));
    }
    if let Some(kind) = header(CONTENT_TYPE.as_str()) {
        let mime = kind.split(';').next().unwrap_or_default().trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(AuthError::CrossSiteRequest(
                "browser-mode requests must be application/json",
            ));
        }
    }
    Ok(())
}

/// Whether `origin` (`scheme://host[:port]`) is allowed: one of `allowed`, or,
/// when none is configured, on the request's own `host`.
fn is_allowed(origin: &str, allowed: &[String], host: Option<&str>) -> bool {
    if origin.is_empty() || origin == "null" {
        return false;
    }
    if !allowed.is_empty() {
        return allowed.iter().any(|a| a.eq_ignore_ascii_case(origin));
    }
    let authority = origin
        .split_once("://")
        .map(|(_, authority)| authority)
        .unwrap_or_default();
    host.is_some_and(|host| !host.is_empty() && host.eq_ignore_ascii_case(authority))
}

/// The origin (`scheme://host[:port]`) of an absolute URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!scheme.is_empty() && !authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// An allowed origin as configured: `scheme://host[:port]`, without a path or
/// a trailing slash; `None` when it is not one.
pub(crate) fn normalize_origin(origin: &str) -> Option<String> {
    let trimmed = origin.trim().trim_end_matches('/');
    let normalized = origin_of(trimmed)?;
    (normalized.len() == trimmed.len()).then_some(normalized)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_static(value));
        }
        h
    }

    fn refused(pairs: &[(&'static str, &'static str)], allowed: &[String]) -> bool {
        matches!(
            check(&headers(pairs), allowed),
            Err(AuthError::CrossSiteRequest(_))
        )
    }

    #[test]
    fn same_origin_passes_and_cross_site_is_refused() {
        let host = ("host", "app.example:8080");
        let json = ("content-type", "application/json; charset=utf-8");
        assert!(!refused(
            &[host, json, ("origin", "https://app.example:8080")],
            &[]
        ));
        assert!(!refused(&[host, ("sec-fetch-site", "same-origin")], &[]));
        assert!(!refused(&[host], &[]), "not a browser");
        assert!(refused(&[host, ("sec-fetch-site", "cross-site")], &[]));
        assert!(refused(&[host, ("origin", "https://evil.example")], &[]));
        assert!(refused(&[host, ("origin", "null")], &[]));
        assert!(
            refused(&[host, ("origin", "https://app.example")], &[]),
            "port"
        );
        assert!(refused(&[host, ("referer", "https://evil.example/x")], &[]));
        assert!(!refused(
            &[host, ("referer", "https://app.example:8080/p?q")],
            &[]
        ));
        assert!(refused(&[host, ("referer", "not a url")], &[]));
        assert!(
            refused(&[("origin", "https://app.example:8080")], &[]),
            "no host"
        );
        for form in [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain",
        ] {
            let mut h = headers(&[host]);
            h.insert(CONTENT_TYPE, HeaderValue::from_static(form));
            assert!(check(&h, &[]).is_err(), "{form}");
        }
    }

    #[test]
    fn configured_origins_replace_the_host_rule() {
        let allowed = vec!["https://app.example".to_owned()];
        let api_host = ("host", "api.example");
        assert!(!refused(
            &[api_host, ("origin", "https://app.example")],
            &allowed
        ));
        assert!(refused(
            &[api_host, ("origin", "https://api.example")],
            &allowed
        ));
        assert!(
            refused(&[api_host, ("origin", "http://app.example")], &allowed),
            "scheme"
        );
    }

    #[test]
    fn origins_are_normalized_when_configured() {
        assert_eq!(
            normalize_origin("https://app.example/").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(normalize_origin("https://app.example/path"), None);
        assert_eq!(normalize_origin("app.example"), None);
    }
}
