//! How remote keys are fetched and kept: the limits a [`TrustedIssuer`](crate::TrustedIssuer)
//! builder sets.

use std::time::Duration;

/// Fetch limits and cache lifetimes for one issuer's remote keys.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
pub(crate) struct FetchPolicy {
    /// Plain `http://` URLs are allowed (loopback tests only).
    pub(crate) allow_http: bool,
    /// One request's whole time: connect, headers, body.
    pub(crate) timeout: Duration,
    /// The largest response body read.
    pub(crate) max_bytes: usize,
    /// Bounds on the refresh interval a response's `Cache-Control` asks for.
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    /// The least time between two fetches caused by requests.
    pub(crate) min_interval: Duration,
    /// How long the last good keys serve past their refresh time.
    pub(crate) max_stale: Duration,
    /// Extra trusted root certificates (PEM), beside the system's.
    pub(crate) root_certificates: Vec<Vec<u8>>,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allow_http: false,
            timeout: Duration::from_secs(5),
            max_bytes: 256 * 1024,
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            min_interval: Duration::from_secs(30),
            max_stale: Duration::from_secs(3600),
            root_certificates: Vec::new(),
        }
    }
}

impl FetchPolicy {
    /// The limits make sense together.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.timeout.is_zero() || self.max_bytes == 0 {
            return Err("the fetch timeout and the response size cap must be above zero");
        }
        if self.min_ttl.is_zero() || self.min_ttl > self.max_ttl {
            return Err("the refresh interval needs 0 < min <= max");
        }
        Ok(())
    }

    /// The refresh interval for a response that asked for `max_age` (its
    /// `Cache-Control`), within the bounds; 5 minutes (within the bounds) when
    /// it asked nothing.
    #[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
    pub(crate) fn ttl(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(Duration::from_secs(300))
            .clamp(self.min_ttl, self.max_ttl)
    }
}

/// The `max-age` a `Cache-Control` header value asks for: `no-store` and
/// `no-cache` ask for none (zero), an unreadable value for nothing.
#[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
pub(crate) fn max_age(cache_control: &str) -> Option<Duration> {
    let mut age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            age = v
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_within_bounds() {
        let p = FetchPolicy::default();
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("private"), None);
        assert_eq!(max_age("max-age=abc"), None);
        assert_eq!(
            p.ttl(Some(Duration::from_secs(600))),
            Duration::from_secs(600)
        );
        assert_eq!(p.ttl(Some(Duration::ZERO)), p.min_ttl);
        assert_eq!(p.ttl(Some(Duration::from_secs(10 * 86_400))), p.max_ttl);
        assert_eq!(p.ttl(None), Duration::from_secs(300));
    }
}
