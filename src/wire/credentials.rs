//! Reading credentials from request headers: the `Authorization: Bearer` token
//! (RFC 6750 §2.1) and a named cookie. The layer and the endpoints share these.

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};

use crate::error::AuthError;

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1).
pub(crate) fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidRequest(
            "more than one Authorization header",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::InvalidRequest("the Authorization header is not ASCII"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = rest.trim_matches(' ');
    // Branch-free, so it vectorizes: it runs over every byte of every token.
    let separators = token.bytes().fold(0u8, |acc, b| {
        acc | u8::from((b == b' ') | (b == b',') | (b == b'\t'))
    });
    if token.is_empty() || separators != 0 {
        return Err(AuthError::InvalidRequest("malformed Bearer credentials"));
    }
    Ok(Some(token))
}

/// The value of cookie `name` across all `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, AuthError> {
    let mut found = None;
    for value in headers.get_all(COOKIE) {
        let value = value
            .to_str()
            .map_err(|_| AuthError::InvalidRequest("the Cookie header is not ASCII"))?;
        for pair in value.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k == name {
                if found.is_some() {
                    return Err(AuthError::InvalidRequest("the token cookie is sent twice"));
                }
                found = Some(v.trim_matches('"'));
            }
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(values: &[&str]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for v in values {
            m.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(&h(&[])).unwrap(), None);
        assert_eq!(bearer(&h(&["Bearer abc"])).unwrap(), Some("abc"));
        assert_eq!(bearer(&h(&["bEaReR abc"])).unwrap(), Some("abc"));
        assert_eq!(bearer(&h(&["Basic abc"])).unwrap(), None);
        assert!(bearer(&h(&["Bearer"])).is_err());
        assert!(bearer(&h(&["Bearer "])).is_err());
        assert!(bearer(&h(&["Bearer a b"])).is_err());
        assert!(bearer(&h(&["Bearer a", "Bearer b"])).is_err());
        let mut m = HeaderMap::new();
        m.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xc3\xa9").unwrap(),
        );
        assert!(bearer(&m).is_err());
    }

    #[test]
    fn cookie_parsing() {
        let mut m = HeaderMap::new();
        m.append(COOKIE, HeaderValue::from_static("a=1; access=tok; b=2"));
        assert_eq!(cookie(&m, "access").unwrap(), Some("tok"));
        assert_eq!(cookie(&m, "none").unwrap(), None);
        m.append(COOKIE, HeaderValue::from_static("access=other"));
        assert!(cookie(&m, "access").is_err());
    }
}
