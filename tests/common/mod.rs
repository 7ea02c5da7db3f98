//! Shared by the integration tests: where the services are, and whether a test may
//! skip when one is not there. The conformance suite applies the same policy
//! itself (`tower_jwt_auth::conformance::runner`); these helpers serve the other
//! tests.
#![allow(dead_code)]

pub mod redis_cluster;

/// The URL of a service, from `var`, or the default for this kind of machine.
pub fn service_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Under CI every service must be there: a test that cannot reach one fails.
/// The conformance runner's rule, so both read `CI` alike.
pub fn in_ci() -> bool {
    tower_jwt_auth::conformance::runner::in_ci()
}

/// Called when a service is unreachable: panics under CI, otherwise prints why the
/// test is skipped and returns `None`.
pub fn unavailable<T>(what: &str, err: impl std::fmt::Display) -> Option<T> {
    if in_ci() {
        panic!("{what} is unreachable under CI: {err}");
    }
    eprintln!("skipped: {what} is unreachable ({err}); start it or set its URL variable");
    None
}

/// A name no other test uses (database, key prefix, table prefix).
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

pub const POSTGRES_URL: (&str, &str) = (
    "TEST_POSTGRES_URL",
    "postgres://postgres@127.0.0.1:5432/test",
);
pub const MYSQL_URL: (&str, &str) = ("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
pub const REDIS_URL: (&str, &str) = ("TEST_REDIS_URL", "redis://127.0.0.1:6379/");
