//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`): install any recorder (a Prometheus exporter, say) and these appear.
//!
//! | name | kind | labels |
//! | --- | --- | --- |
//! | `tower_jwt_auth_validations_total` | counter | `outcome`: `accepted`, `anonymous` (optional route, no token), or the refusal reason (`missing_token`, `expired`, `signature`, `revoked`, `user_inactive`, `store_unavailable`, `invalid_request`...) |
//! | `tower_jwt_auth_rotations_total` | counter | `outcome`: `rotated`, `redelivered`, `reuse_detected`, `revoked`, `expired`, `unknown`, `invalid_token`, `user_refused`, `claims_refused`, `claims_unavailable`, `store_unavailable`, `issue_failed` |
//! | `tower_jwt_auth_store_call_seconds` | histogram | `op`: the [`TokenStore`](crate::TokenStore) method (`create_session`, `rotate`, `revoke_session`, `revoke_user`, `is_revoked`, `list_sessions`, `purge_expired`) |
//! | `tower_jwt_auth_store_errors_total` | counter | `op` |
//! | `tower_jwt_auth_purged_rows_total` | counter | |
//! | `tower_jwt_auth_events_dropped_total` | counter | |
//! | `tower_jwt_auth_revocation_checks_total` | counter | `source`: `view` (a [`RevocationView`](crate::RevocationView) answered, no I/O), `store` (the store was asked) |
//! | `tower_jwt_auth_user_lookups_total` | counter | `source`: `cache` (a [`UserCache`](crate::UserCache) answered), `resolver` (it asked its resolver) |
//! | `tower_jwt_auth_key_fetches_total` | counter | `issuer` (a [`TrustedIssuer`](crate::TrustedIssuer)'s `iss`), `outcome`: `ok`, `failed` |
//!
//! Validations are counted by [`JwtAuthLayer`](crate::JwtAuthLayer); rotations
//! (refresh and sliding renewal) and store calls by [`Sessions`](crate::Sessions),
//! the layer's revocation check and [`PurgeTask`](crate::PurgeTask). Every label
//! is a static string: recording allocates nothing. Without the feature every
//! function here is an empty inline function.

#[cfg(feature = "metrics")]
use std::time::Instant;

use crate::error::{AuthError, TokenError};

/// Metric names.
pub mod names {
    /// Access-token validations by the layer, by `outcome`.
    pub const VALIDATIONS: &str = "tower_jwt_auth_validations_total";
    /// Refresh-token rotations and sliding renewals, by `outcome`.
    pub const ROTATIONS: &str = "tower_jwt_auth_rotations_total";
    /// Store call latency in seconds, by `op`.
    pub const STORE_CALL_SECONDS: &str = "tower_jwt_auth_store_call_seconds";
    /// Store calls that failed, by `op`.
    pub const STORE_ERRORS: &str = "tower_jwt_auth_store_errors_total";
    /// Rows removed by purges.
    pub const PURGED_ROWS: &str = "tower_jwt_auth_purged_rows_total";
    /// Session events dropped (too many hook calls in flight, or a full channel).
    pub const EVENTS_DROPPED: &str = "tower_jwt_auth_events_dropped_total";
    /// Revocation checks by the layer, by the `source` that answered.
    pub const REVOCATION_CHECKS: &str = "tower_jwt_auth_revocation_checks_total";
    /// User lookups through a `UserCache`, by `source`.
    pub const USER_LOOKUPS: &str = "tower_jwt_auth_user_lookups_total";
    /// Fetches of a trusted issuer's keys, by `issuer` and `outcome`.
    pub const KEY_FETCHES: &str = "tower_jwt_auth_key_fetches_total";
}

/// One counter increment with a static name and one static label: no allocation.
#[cfg(feature = "metrics")]
macro_rules! count {
    ($name:literal, $label:literal, $value:expr, [$($lit:literal),* $(,)?]) => {
        match $value {
            $($lit => ::metrics::counter!($name, $label => $lit).increment(1),)*
            _ => ::metrics::counter!($name, $label => "other").increment(1),
        }
    };
}

/// The reason label of a refused request.
#[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]
pub(crate) fn refusal_label(e: &AuthError) -> &'static str {
    match e {
        AuthError::MissingToken => "missing_token",
        AuthError::InvalidToken(t) => token_label(*t),
        AuthError::InvalidRequest(_) => "invalid_request",
        AuthError::PayloadTooLarge => "payload_too_large",
        AuthError::MethodNotAllowed => "method_not_allowed",
        AuthError::StoreUnavailable(_) => "store_unavailable",
        AuthError::Misconfigured(_) => "misconfigured",
        AuthError::BadCredentials => "bad_credentials",
        AuthError::CrossSiteRequest(_) => "cross_site_request",
        AuthError::InsufficientScope(_) => "insufficient_scope",
        AuthError::KeysUnavailable => "keys_unavailable",
    }
}

#[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]
fn token_label(e: TokenError) -> &'static str {
    match e {
        TokenError::TooLarge => "too_large",
        TokenError::Malformed => "malformed",
        TokenError::Base64 => "base64",
        TokenError::Json => "json",
        TokenError::DuplicateKey => "duplicate_key",
        TokenError::Algorithm => "algorithm",
        TokenError::UnknownKey => "unknown_key",
        TokenError::ExternalKey => "external_key",
        TokenError::Critical => "critical",
        TokenError::Signature => "signature",
        TokenError::WrongType => "wrong_type",
        TokenError::MissingExpiry => "missing_expiry",
        TokenError::Expired => "expired",
        TokenError::NotYetValid => "not_yet_valid",
        TokenError::IssuedInFuture => "issued_in_future",
        TokenError::Issuer => "issuer",
        TokenError::Audience => "audience",
        TokenError::MissingClaim => "missing_claim",
        TokenError::UserId => "user_id",
        TokenError::Revoked => "revoked",
        TokenError::Reused => "reused",
        TokenError::Unknown => "unknown",
        TokenError::UserInactive => "user_inactive",
    }
}

/// The layer accepted a token.
#[inline]
pub(crate) fn validation_accepted() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!("tower_jwt_auth_validations_total", "outcome" => "accepted").increment(1);
}

/// The layer let a request without a token through (optional authentication).
#[inline]
pub(crate) fn validation_anonymous() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!("tower_jwt_auth_validations_total", "outcome" => "anonymous").increment(1);
}

/// The layer refused a request.
#[inline]
pub(crate) fn validation_refused(e: &AuthError) {
    #[cfg(feature = "metrics")]
    count!(
        "tower_jwt_auth_validations_total",
        "outcome",
        refusal_label(e),
        [
            "missing_token",
            "invalid_request",
            "payload_too_large",
            "method_not_allowed",
            "store_unavailable",
            "too_large",
            "malformed",
            "base64",
            "json",
            "duplicate_key",
            "algorithm",
            "unknown_key",
            "external_key",
            "critical",
            "signature",
            "wrong_type",
            "missing_expiry",
            "expired",
            "not_yet_valid",
            "issued_in_future",
            "issuer",
            "audience",
            "missing_claim",
            "user_id",
            "revoked",
            "reused",
            "unknown",
            "user_inactive",
        ]
    );
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "tower_jwt_auth::auth",
        reason = refusal_label(e),
        "request refused"
    );
    #[cfg(not(any(feature = "metrics", feature = "tracing")))]
    let _ = e;
}

/// The outcome of one rotation or sliding renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rotation {
    Rotated,
    Redelivered,
    ReuseDetected,
    Revoked,
    Expired,
    Unknown,
    InvalidToken,
    UserRefused,
    ClaimsRefused,
    ClaimsUnavailable,
    StoreUnavailable,
    IssueFailed,
}

impl Rotation {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn label(self) -> &'static str {
        match self {
            Rotation::Rotated => "rotated",
            Rotation::Redelivered => "redelivered",
            Rotation::ReuseDetected => "reuse_detected",
            Rotation::Revoked => "revoked",
            Rotation::Expired => "expired",
            Rotation::Unknown => "unknown",
            Rotation::InvalidToken => "invalid_token",
            Rotation::UserRefused => "user_refused",
            Rotation::ClaimsRefused => "claims_refused",
            Rotation::ClaimsUnavailable => "claims_unavailable",
            Rotation::StoreUnavailable => "store_unavailable",
            Rotation::IssueFailed => "issue_failed",
        }
    }
}

/// Counts one rotation outcome.
#[inline]
pub(crate) fn rotation(outcome: Rotation) {
    #[cfg(feature = "metrics")]
    count!(
        "tower_jwt_auth_rotations_total",
        "outcome",
        outcome.label(),
        [
            "rotated",
            "redelivered",
            "reuse_detected",
            "revoked",
            "expired",
            "unknown",
            "invalid_token",
            "user_refused",
            "claims_refused",
            "claims_unavailable",
            "store_unavailable",
            "issue_failed",
        ]
    );
    #[cfg(not(feature = "metrics"))]
    let _ = outcome;
}

/// A [`TokenStore`](crate::TokenStore) method, the `op` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreOp {
    CreateSession,
    Rotate,
    RevokeSession,
    RevokeUser,
    IsRevoked,
    ListSessions,
    PurgeExpired,
}

impl StoreOp {
    #[cfg(feature = "metrics")]
    fn label(self) -> &'static str {
        match self {
            StoreOp::CreateSession => "create_session",
            StoreOp::Rotate => "rotate",
            StoreOp::RevokeSession => "revoke_session",
            StoreOp::RevokeUser => "revoke_user",
            StoreOp::IsRevoked => "is_revoked",
            StoreOp::ListSessions => "list_sessions",
            StoreOp::PurgeExpired => "purge_expired",
        }
    }
}

#[cfg(feature = "metrics")]
const OPS: [&str; 7] = [
    "create_session",
    "rotate",
    "revoke_session",
    "revoke_user",
    "is_revoked",
    "list_sessions",
    "purge_expired",
];

/// Times a store call (and counts it as an error when it fails).
#[cfg(feature = "metrics")]
pub(crate) async fn timed<T, E>(
    op: StoreOp,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let start = Instant::now();
    let out = call.await;
    let secs = start.elapsed().as_secs_f64();
    let label = op.label();
    debug_assert!(OPS.contains(&label));
    macro_rules! record {
        ($($lit:literal),*) => {
            match label {
                $($lit => {
                    ::metrics::histogram!("tower_jwt_auth_store_call_seconds", "op" => $lit).record(secs);
                    if out.is_err() {
                        ::metrics::counter!("tower_jwt_auth_store_errors_total", "op" => $lit).increment(1);
                    }
                })*
                _ => {}
            }
        };
    }
    record!(
        "create_session",
        "rotate",
        "revoke_session",
        "revoke_user",
        "is_revoked",
        "list_sessions",
        "purge_expired"
    );
    out
}

/// Without the feature: the call itself, untouched.
#[cfg(not(feature = "metrics"))]
#[inline(always)]
pub(crate) fn timed<F>(_op: StoreOp, call: F) -> F {
    call
}

/// Counts rows removed by a purge.
#[inline]
pub(crate) fn purged(rows: u64) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!("tower_jwt_auth_purged_rows_total").increment(rows);
    #[cfg(not(feature = "metrics"))]
    let _ = rows;
}

/// Who answered a revocation check.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RevocationSource {
    View,
    Store,
}

/// Counts a revocation check by the source that answered it.
#[inline]
pub(crate) fn revocation_answered(source: RevocationSource) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(
        "tower_jwt_auth_revocation_checks_total",
        "source" => match source {
            RevocationSource::View => "view",
            RevocationSource::Store => "store",
        }
    )
    .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = source;
}

/// Counts a user lookup through a `UserCache`: answered by the cache or not.
#[inline]
pub(crate) fn user_lookup(cached: bool) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(
        "tower_jwt_auth_user_lookups_total",
        "source" => if cached { "cache" } else { "resolver" }
    )
    .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = cached;
}

/// Counts a fetch of a trusted issuer's keys (rare: the label's allocation
/// does not matter).
#[inline]
#[cfg_attr(not(feature = "remote-keys"), allow(dead_code))]
pub(crate) fn keys_fetched(issuer: &str, ok: bool) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(
        "tower_jwt_auth_key_fetches_total",
        "issuer" => issuer.to_owned(),
        "outcome" => if ok { "ok" } else { "failed" }
    )
    .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = (issuer, ok);
}

/// Counts a dropped session event.
#[inline]
pub(crate) fn event_dropped() {
    #[cfg(feature = "metrics")]
    ::metrics::counter!("tower_jwt_auth_events_dropped_total").increment(1);
}

/// Describes every metric to the installed recorder (units and help texts, for
/// exporters that show them). Optional; call once after installing a recorder.
#[cfg(feature = "metrics")]
pub fn describe() {
    use ::metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        names::VALIDATIONS,
        "Access-token validations by the auth layer, by outcome"
    );
    describe_counter!(
        names::ROTATIONS,
        "Refresh-token rotations and sliding renewals, by outcome"
    );
    describe_histogram!(
        names::STORE_CALL_SECONDS,
        Unit::Seconds,
        "Token store call latency, by operation"
    );
    describe_counter!(
        names::STORE_ERRORS,
        "Token store calls that failed, by operation"
    );
    describe_counter!(names::PURGED_ROWS, "Token rows removed by purges");
    describe_counter!(
        names::EVENTS_DROPPED,
        "Session events dropped before reaching the hook"
    );
    describe_counter!(
        names::REVOCATION_CHECKS,
        "Revocation checks by the auth layer, by the source that answered (view or store)"
    );
    describe_counter!(
        names::USER_LOOKUPS,
        "User lookups through a UserCache, by source (cache or resolver)"
    );
    describe_counter!(
        names::KEY_FETCHES,
        "Fetches of a trusted issuer's keys (discovery and JWKS), by issuer and outcome"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_label_listed() {
        // The labels `validation_refused` matches on must cover `refusal_label`.
        for e in [
            AuthError::MissingToken,
            AuthError::InvalidRequest("x"),
            AuthError::InvalidToken(TokenError::Expired),
            AuthError::InvalidToken(TokenError::UserInactive),
        ] {
            assert!(!refusal_label(&e).is_empty());
        }
        assert_eq!(Rotation::Redelivered.label(), "redelivered");
    }
}
