//! The conformance suite every [`TokenStore`] backend runs (feature `test-util`).
//!
//! Two suites, so a failure names the layer that broke:
//!
//! - [`store_cases`]: the [`TokenStore`] contract itself, called directly with
//!   explicit `now` values (refusals, purge, listing, revoke-all cutoffs,
//!   rotation races and the grace window through [`TokenStore::rotate`]);
//! - [`session_cases`]: the same store under [`Sessions`](crate::Sessions)
//!   (login, refresh, logout, revoke-all, reuse detection, races), on a manual
//!   [`Clock`](crate::Clock) the cases move instead of sleeping.
//!
//! Each case is written once, in one of those files, inside the `cases!` macro
//! of this module, which both defines it and lists it in [`STORE_CASES`] or
//! [`SESSION_CASES`]: a new case runs on every backend without being listed
//! again. [`runner`] runs a [`Suite`]: every case at once, each on a fresh
//! store from the backend's factory, cleaned up afterwards; it prints each
//! case's timings (`--nocapture`) and panics naming every case that failed.
//! `CONFORMANCE_CASES=purge,race` runs only the cases whose names contain one
//! of those words ([`runner::CASES_VAR`]).
//!
//! # Running it for a backend
//!
//! The factory makes one fresh, empty store (its own database, table prefix or
//! key prefix) and says how to drop what it created, or answers
//! [`Unavailable`] when the service is not there. The suite then skips with the
//! reason, except when the `CI` environment variable is set: then it fails.
//! [`token_store_conformance!`](crate::token_store_conformance) turns both suites
//! into two `#[tokio::test]`s, `conformance_store` and `conformance_sessions`:
//!
//! ```ignore
//! use tower_jwt_auth::conformance::{FreshStore, Unavailable};
//!
//! async fn fresh() -> Result<FreshStore, Unavailable> {
//!     let store = MyStore::connect(&url(), &unique_prefix())
//!         .await
//!         .map_err(|e| Unavailable::new("MyDatabase", e))?;
//!     let dropper = store.clone();
//!     Ok(FreshStore::new(store).with_cleanup(async move || dropper.drop_everything().await))
//! }
//!
//! tower_jwt_auth::token_store_conformance!(fresh);
//! ```
//!
//! The fixtures the cases use ([`test_jwt`], [`sessions_for`], their
//! clock-taking forms [`test_jwt_on`] and [`sessions_on`], [`Users`],
//! [`FailingStore`]) are public for a backend's own tests.
//!
//! [`TokenStore`]: crate::TokenStore
//! [`TokenStore::rotate`]: crate::TokenStore::rotate

// A test suite: its assertions are meant to panic on a failing backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::store::TokenStore;

mod failing;
mod fixtures;
pub mod runner;

/// Defines conformance cases and the list that runs them, in one place.
///
/// Takes the list's name, then the cases as ordinary `pub async fn`s taking an
/// `Arc<dyn TokenStore>`; writes each function unchanged and a
/// `pub const $list: &[Case]` naming every one of them.
macro_rules! cases {
    (
        $(#[$list_doc:meta])*
        pub const $list:ident;
        $(
            $(#[$doc:meta])*
            pub async fn $case:ident($store:ident: $store_ty:ty) $body:block
        )+
    ) => {
        $(
            $(#[$doc])*
            pub async fn $case($store: $store_ty) $body
        )+

        $(#[$list_doc])*
        pub const $list: &[$crate::conformance::Case] = &[$(
            $crate::conformance::Case {
                name: stringify!($case),
                run: |store| Box::pin($case(store)),
            }
        ),+];
    };
}

pub mod log_cases;
pub mod session_cases;
pub mod store_cases;

pub use failing::FailingStore;
pub use fixtures::{Users, sessions_for, sessions_on, test_jwt, test_jwt_on};
pub use log_cases::revocation_log_conformance;
pub use runner::{FreshStore, Unavailable, run_suite};
pub use session_cases::SESSION_CASES;
pub use store_cases::STORE_CASES;

/// What a case returns: a boxed future, so every case fits one [`Case`].
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// One conformance case: its name and the function that runs it on a fresh store.
/// It fails by panicking.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The case's function name, as failures report it.
    pub name: &'static str,
    /// Runs the case on a fresh, empty store.
    pub run: fn(Arc<dyn TokenStore>) -> CaseFuture,
}

/// A named list of cases: one layer of the contract.
#[derive(Debug, Clone, Copy)]
pub struct Suite {
    /// The layer, as failures report it (`store`, `sessions`).
    pub name: &'static str,
    /// Every case of it.
    pub cases: &'static [Case],
}

/// The [`TokenStore`] contract, called directly: [`store_cases`].
pub const STORE_SUITE: Suite = Suite {
    name: "store",
    cases: STORE_CASES,
};

/// The store under [`Sessions`](crate::Sessions): [`session_cases`].
pub const SESSIONS_SUITE: Suite = Suite {
    name: "sessions",
    cases: SESSION_CASES,
};

/// Generates the conformance tests for a backend: `conformance_store` and
/// `conformance_sessions`, one `#[tokio::test]` a [`Suite`], each running every
/// case of it (see [`run_suite`]).
///
/// The argument is the backend's factory: anything callable with no argument
/// whose future (`Send`, `'static`) answers
/// `Result<FreshStore, Unavailable>`, such as an `async fn` or an `async ||`
/// closure that captures nothing. It is called once a case. Needs `tokio`
/// (features `macros` and `rt-multi-thread`) in the backend's dev-dependencies.
#[macro_export]
macro_rules! token_store_conformance {
    ($factory:expr) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance_store() {
            $crate::conformance::run_suite($crate::conformance::STORE_SUITE, $factory).await;
        }

        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn conformance_sessions() {
            $crate::conformance::run_suite($crate::conformance::SESSIONS_SUITE, $factory).await;
        }
    };
}
