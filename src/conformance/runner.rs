//! Runs a [`Suite`] on one backend: an empty store for each case (fresh, or
//! reset after another case), [`STORES_AT_ONCE`] cases at a time, cleanup, the
//! skip/CI policy, and one report naming every failure.
//!
//! ```
//! use tower_jwt_auth::MemoryStore;
//! use tower_jwt_auth::conformance::{FreshStore, STORE_SUITE, Unavailable, run_suite};
//!
//! async fn fresh() -> Result<FreshStore, Unavailable> {
//!     Ok(FreshStore::new(MemoryStore::new()))
//! }
//!
//! # #[tokio::main] async fn main() {
//! run_suite(STORE_SUITE, fresh).await;
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinError;

use super::{Case, Suite};
use crate::store::TokenStore;

/// How long one case may run before it counts as failed (a hung store).
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// How many stores a suite makes at once. A database runs schema changes one
/// after another, and a migration that queues behind every other case's would
/// meet the store's operation timeout; a case starts as soon as its store is
/// made.
pub const STORES_MADE_AT_ONCE: usize = 4;

/// How many stores a suite holds at once, so how many cases run at once. A
/// store with a reset ([`FreshStore::with_reset`]) is emptied after a case
/// and handed to the next: a suite on a database makes this many table sets,
/// not one per case.
pub const STORES_AT_ONCE: usize = 8;

type Cleanup = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;
type Reset = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A fresh, empty store for one case, and how to drop what it created (its
/// tables, its keys, its database file) once the case is over.
pub struct FreshStore {
    store: Arc<dyn TokenStore>,
    cleanup: Option<Cleanup>,
    reset: Option<Reset>,
}

impl fmt::Debug for FreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FreshStore")
            .field("store", &self.store)
            .field("cleanup", &self.cleanup.is_some())
            .field("reset", &self.reset.is_some())
            .finish()
    }
}

impl FreshStore {
    /// A store that needs no cleanup (it lives in memory).
    pub fn new(store: impl TokenStore) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// [`FreshStore::new`] for a store already shared.
    pub fn from_arc(store: Arc<dyn TokenStore>) -> Self {
        FreshStore {
            store,
            cleanup: None,
            reset: None,
        }
    }

    /// Runs `cleanup` after the case, whether it passed or failed, once the
    /// case's own handle on the store is dropped.
    pub fn with_cleanup<F, Fut>(mut self, cleanup: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.cleanup = Some(Box::new(move || Box::pin(cleanup())));
        self
    }

    /// Lets the suite reuse this store for another case once `reset` has
    /// emptied it (deleted every row or key the case wrote), instead of making
    /// a new one: for a database, where making tables costs far more than
    /// emptying them. A store is reused only after a case that passed; the
    /// cleanup still runs once, when the suite is over.
    pub fn with_reset<F, Fut>(mut self, reset: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.reset = Some(Arc::new(move || Box::pin(reset())));
        self
    }

    /// Runs the cleanup, if any, once the store is no longer shared.
    async fn clean_up(self) {
        let FreshStore { store, cleanup, .. } = self;
        drop(store);
        if let Some(cleanup) = cleanup {
            cleanup().await;
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }
}

/// A backend's service is not there (not running on this machine): the suite
/// skips, or fails under `CI`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    reason: String,
}

impl Unavailable {
    /// `service` (a name for people: "PostgreSQL") could not be reached: `error`.
    pub fn new(service: &str, error: impl fmt::Display) -> Self {
        Unavailable {
            reason: format!("{service} is unreachable ({error})"),
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Unavailable {}

/// Whether the `CI` environment variable is set (not empty, `0` or `false`):
/// then every service must be there, and an unavailable backend fails the suite.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Runs every case of `suite` at once, each on its own store from `factory`,
/// and panics naming every case that failed (a panic, a timeout, or a store the
/// factory could not make).
///
/// `factory` is called when a case needs a store and none is spare. When its
/// first answer is [`Unavailable`], the suite prints why and returns without
/// running anything, or panics when [`in_ci`]. At most [`STORES_AT_ONCE`]
/// stores are held at once (so as many cases run), taken in the order the
/// cases are declared; stores are made [`STORES_MADE_AT_ONCE`] at a time. Each
/// case runs in its own task (so a panic fails that case only) under
/// [`CASE_TIMEOUT`]; then its store is reset for the next case (see
/// [`FreshStore::with_reset`]) or cleaned up. Timings go to stderr (shown with
/// `--nocapture`). [`CASES_VAR`] narrows the run to some cases.
pub async fn run_suite<F, Fut>(suite: Suite, factory: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<FreshStore, Unavailable>> + Send + 'static,
{
    let started = Instant::now();
    let first = match factory().await {
        Ok(fresh) => (fresh, started.elapsed()),
        Err(why) if in_ci() => panic!("conformance suite `{}`: {why}, under CI", suite.name),
        Err(why) => {
            eprintln!(
                "skipped: conformance suite `{}`: {why}; start it or set its URL variable",
                suite.name
            );
            return;
        }
    };
    let cases = selected(suite);
    eprintln!(
        "\nconformance suite `{}`: {} of {} cases",
        suite.name,
        cases.len(),
        suite.cases.len()
    );
    let factory = Arc::new(factory);
    let making = Arc::new(Semaphore::new(STORES_MADE_AT_ONCE));
    let held = Arc::new(Semaphore::new(STORES_AT_ONCE));
    let spare = Arc::new(Mutex::new(vec![first]));
    let mut handles = Vec::with_capacity(cases.len());
    for &case in &cases {
        // Turns are taken here, in the order the cases are declared (the
        // slowest first), not in whatever order tasks start.
        let turn = held.clone().acquire_owned().await.expect("never closed");
        let (factory, making, spare) = (factory.clone(), making.clone(), spare.clone());
        handles.push(tokio::spawn(async move {
            let reused = spare.lock().expect("not poisoned").pop();
            let fresh = match reused {
                Some(fresh) => Ok(fresh),
                None => {
                    let made = Instant::now();
                    let _making = making.acquire().await.expect("never closed");
                    factory().await.map(|fresh| (fresh, made.elapsed()))
                }
            };
            let (outcome, after) = run_case(case, fresh).await;
            if let Some(fresh) = after {
                spare.lock().expect("not poisoned").push(fresh);
            }
            drop(turn);
            outcome
        }));
    }
    let mut failures = Vec::new();
    for (case, handle) in cases.iter().zip(handles) {
        match handle.await.unwrap_or_else(|e| Err(panic_message(e))) {
            Ok(times) => eprintln!("  {}::{} ok: {times}", suite.name, case.name),
            Err(why) => failures.push(format!("{}::{}: {why}", suite.name, case.name)),
        }
    }
    let left: Vec<FreshStore> = std::mem::take(&mut *spare.lock().expect("not poisoned"))
        .into_iter()
        .map(|(fresh, _)| fresh)
        .collect();
    for fresh in left {
        fresh.clean_up().await;
    }
    report(suite, cases.len(), failures, started.elapsed());
}

/// The environment variable that narrows a run to some cases: names (or parts
/// of names) separated by commas, as in
/// `CONFORMANCE_CASES=purge,race cargo test --test store_postgres`.
pub const CASES_VAR: &str = "CONFORMANCE_CASES";

/// The cases of `suite` that [`CASES_VAR`] selects (all when it is unset).
fn selected(suite: Suite) -> Vec<Case> {
    let filter = std::env::var(CASES_VAR).unwrap_or_default();
    let wanted: Vec<&str> = filter
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    suite
        .cases
        .iter()
        .filter(|case| wanted.is_empty() || wanted.iter().any(|w| case.name.contains(w)))
        .copied()
        .collect()
}

/// How long a case's store took to make, the case to run, and the cleanup.
#[derive(Debug, Clone, Copy)]
struct Times {
    setup: Duration,
    run: Duration,
    cleanup: Duration,
}

impl fmt::Display for Times {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "store made in {:?}, case ran in {:?}, cleanup took {:?}",
            self.setup, self.run, self.cleanup
        )
    }
}

/// Runs one case on `fresh` (made in the time given) in its own task; then
/// resets the store for the next case when the case passed and the store has a
/// reset (handing it back), or cleans it up.
async fn run_case(
    case: Case,
    fresh: Result<(FreshStore, Duration), Unavailable>,
) -> (Result<Times, String>, Option<(FreshStore, Duration)>) {
    let (fresh, setup) = match fresh {
        Ok(made) => made,
        Err(e) => return (Err(format!("no store: {e}")), None),
    };
    let started = Instant::now();
    let mut task = tokio::spawn((case.run)(fresh.store.clone()));
    let outcome = match tokio::time::timeout(CASE_TIMEOUT, &mut task).await {
        Ok(joined) => joined.map_err(panic_message),
        Err(_) => {
            task.abort();
            let _ = task.await;
            Err(format!("timed out after {CASE_TIMEOUT:?}"))
        }
    };
    let run = started.elapsed();
    let after = match (&outcome, fresh.reset.clone()) {
        (Ok(()), Some(reset)) => {
            reset().await;
            Some((fresh, Duration::ZERO))
        }
        _ => {
            fresh.clean_up().await;
            None
        }
    };
    let times = Times {
        setup,
        run,
        cleanup: started.elapsed() - run,
    };
    (outcome.map(|()| times), after)
}

/// What a case's task died of.
fn panic_message(e: JoinError) -> String {
    if !e.is_panic() {
        return format!("task did not finish: {e}");
    }
    let payload = e.into_panic();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    format!("panicked: {msg}")
}

/// Prints the suite's time; panics with every failure, if any.
fn report(suite: Suite, total: usize, failures: Vec<String>, took: Duration) {
    eprintln!(
        "conformance suite `{}`: {} of {total} cases passed in {took:?}",
        suite.name,
        total - failures.len()
    );
    if !failures.is_empty() {
        panic!(
            "conformance suite `{}`: {} of {total} cases failed:\n  {}",
            suite.name,
            failures.len(),
            failures.join("\n  ")
        );
    }
}
