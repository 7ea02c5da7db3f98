//! How long a logout on one instance takes to be refused by another instance's
//! [`RevocationView`], on every store with a revocation log, in one run:
//!
//! ```text
//! cargo bench --bench propagation
//! ```
//!
//! Each store is opened twice (instance A and instance B: two pools or
//! connections on one database, as two servers would hold). A logs in and logs
//! out; B's view is watched from a blocking thread that checks every 50 µs, and
//! the time from the logout's call on A (so the logout's own round trips are
//! counted in) to B's view refusing the session is one sample. Before each logout the bench waits a random part of the poll
//! interval (of 10 ms on the push feeds), so the logouts fall at every phase of
//! B's poll rather than right after one read. The same for a revoke-all of a
//! user (a user cutoff rather than a revoked session).
//!
//! `PROPAGATION_LOGOUTS` sets the logouts per store (default 200; revoke-alls
//! are a quarter of it). PostgreSQL, MariaDB and Redis come from
//! `TEST_POSTGRES_URL`, `TEST_MYSQL_URL` and `TEST_REDIS_URL` (the tests'
//! defaults otherwise); a store that cannot be reached is skipped with a printed
//! line. SQLite is a WAL file in the temporary directory.
//!
//! The bounds printed next to the figures are issue 18's: under 100 ms with a
//! push feed (PostgreSQL `NOTIFY`, a blocking read on Redis's log stream), under
//! the poll interval + 100 ms when polled (SQLite, MariaDB).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_jwt_auth::conformance::sessions_for;
use tower_jwt_auth::store::sql::SqlStoreOptions;
use tower_jwt_auth::{
    MySqlStore, NoCustomClaims, PgStore, RedisStore, RevocationLog, RevocationView, SqliteStore,
    TokenStore, ViewAnswer,
};
use uuid::Uuid;

/// Instance A's store (where the logouts happen) and instance B's (whose log
/// the view follows).
type Pair = (Arc<dyn TokenStore>, Arc<dyn RevocationLog>);
type Open = fn() -> Pin<Box<dyn Future<Output = Result<Pair, String>>>>;

/// One store measured: how its view learns, the poll interval the view is
/// given, and the bound the figures must stay under.
struct Backend {
    name: &'static str,
    feed: &'static str,
    poll: Duration,
    bound: Duration,
    open: Open,
}

/// Every store with a revocation log, in order.
fn backends() -> Vec<Backend> {
    let push = Duration::from_secs(1);
    let polled = Duration::from_millis(100);
    vec![
        Backend {
            name: "PostgreSQL",
            feed: "`NOTIFY` at commit",
            poll: push,
            bound: Duration::from_millis(100),
            open: || Box::pin(open_postgres()),
        },
        Backend {
            name: "Redis",
            feed: "blocking `XREAD` on the log stream",
            poll: push,
            bound: Duration::from_millis(100),
            open: || Box::pin(open_redis()),
        },
        Backend {
            name: "MariaDB",
            feed: "polled",
            poll: polled,
            bound: polled + Duration::from_millis(100),
            open: || Box::pin(open_mysql()),
        },
        Backend {
            name: "SQLite",
            feed: "polled",
            poll: polled,
            bound: polled + Duration::from_millis(100),
            open: || Box::pin(open_sqlite()),
        },
    ]
}

fn env_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

fn prefix() -> String {
    format!("bench_{}_", Uuid::new_v4().simple())
}

async fn open_postgres() -> Result<Pair, String> {
    let url = env_url(
        "TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let prefix = prefix();
    let open = || PgStore::connect_with(&url, SqlStoreOptions::new().table_prefix(&prefix));
    let a = open().await.map_err(|e| e.to_string())?;
    a.migrate().await.map_err(|e| e.to_string())?;
    let b = open().await.map_err(|e| e.to_string())?;
    Ok((Arc::new(a), Arc::new(b)))
}

async fn open_mysql() -> Result<Pair, String> {
    let url = env_url("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
    let prefix = prefix();
    let open = || MySqlStore::connect_with(&url, SqlStoreOptions::new().table_prefix(&prefix));
    let a = open().await.map_err(|e| e.to_string())?;
    a.migrate().await.map_err(|e| e.to_string())?;
    let b = open().await.map_err(|e| e.to_string())?;
    Ok((Arc::new(a), Arc::new(b)))
}

async fn open_redis() -> Result<Pair, String> {
    let url = env_url("TEST_REDIS_URL", "redis://127.0.0.1:6379/");
    let prefix = prefix();
    let open = || RedisStore::builder().url(&url).key_prefix(&prefix).build();
    let a = open().await.map_err(|e| e.to_string())?;
    let b = open().await.map_err(|e| e.to_string())?;
    Ok((Arc::new(a), Arc::new(b)))
}

async fn open_sqlite() -> Result<Pair, String> {
    let path = std::env::temp_dir().join(format!(
        "tower-jwt-auth-propagation-{}.db",
        Uuid::new_v4().simple()
    ));
    let url = format!("sqlite://{}", path.display());
    let a = SqliteStore::connect(&url)
        .await
        .map_err(|e| e.to_string())?;
    a.migrate().await.map_err(|e| e.to_string())?;
    let b = SqliteStore::connect(&url)
        .await
        .map_err(|e| e.to_string())?;
    Ok((Arc::new(a), Arc::new(b)))
}

/// A random wait in `[0, up_to)`.
fn random_wait(up_to: Duration) -> Duration {
    let nanos = up_to.as_nanos().max(1);
    Duration::from_nanos((Uuid::new_v4().as_u128() % nanos) as u64)
}

/// Time from `start` until `view` refuses `session` of `user`, watched from a
/// blocking thread (every 50 µs), so neither the runtime's timer (1 ms) nor the
/// view's own tasks set the resolution.
async fn until_refused(
    view: &RevocationView,
    session: Uuid,
    user: String,
    start: Instant,
) -> Duration {
    let view = view.clone();
    tokio::task::spawn_blocking(move || {
        while view.check(session, &user, 0) != ViewAnswer::Revoked {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "not propagated in 10 s"
            );
            std::thread::sleep(Duration::from_micros(50));
        }
        start.elapsed()
    })
    .await
    .expect("the watcher thread panicked")
}

/// The logouts' and the revoke-alls' propagation times, each sorted.
async fn measure(backend: &Backend, (a, b): Pair, logouts: usize) -> [Vec<Duration>; 2] {
    let (sessions, users, id) = sessions_for(a);
    let view = RevocationView::builder(b)
        .poll_interval(backend.poll)
        .start();
    view.ready(Duration::from_secs(10))
        .await
        .expect("the view did not load");
    let jitter = if backend.feed == "polled" {
        backend.poll
    } else {
        Duration::from_millis(10)
    };
    let mut logout_times = Vec::with_capacity(logouts);
    for _ in 0..logouts {
        let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        tokio::time::sleep(random_wait(jitter)).await;
        let user = id.to_string();
        assert_ne!(view.check(pair.session_id, &user, 0), ViewAnswer::Revoked);
        let start = Instant::now();
        sessions.logout(&pair.refresh).await.unwrap();
        logout_times.push(until_refused(&view, pair.session_id, user, start).await);
    }
    let mut revoke_all_times = Vec::with_capacity(logouts / 4);
    for _ in 0..logouts / 4 {
        let user = Uuid::new_v4();
        users.insert(user, "bob".into());
        let pair = sessions.login(&user, &NoCustomClaims, None).await.unwrap();
        tokio::time::sleep(random_wait(jitter)).await;
        assert_ne!(
            view.check(pair.session_id, &user.to_string(), 0),
            ViewAnswer::Revoked
        );
        let start = Instant::now();
        sessions.revoke_user(&user).await.unwrap();
        revoke_all_times.push(until_refused(&view, pair.session_id, user.to_string(), start).await);
    }
    logout_times.sort();
    revoke_all_times.sort();
    [logout_times, revoke_all_times]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The nearest-rank percentile `p` (0 to 100) of sorted `times`.
fn percentile(times: &[Duration], p: usize) -> Duration {
    let rank = (times.len() * p).div_ceil(100).max(1);
    times[rank - 1]
}

fn main() {
    let logouts: usize = std::env::var("PROPAGATION_LOGOUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!(
        "| store | how the view learns | poll | what | n | median | p99 | max | bound | within |"
    );
    println!("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for backend in backends() {
        let opened = runtime.block_on((backend.open)());
        let pair = match opened {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("{}: skipped, cannot connect: {e}", backend.name);
                continue;
            }
        };
        let results = runtime.block_on(measure(&backend, pair, logouts));
        for (what, times) in ["logout", "revoke-all"].iter().zip(results) {
            let max = times[times.len() - 1];
            println!(
                "| {} | {} | {:?} | {what} | {} | {} | {} | {} | {:?} | {} |",
                backend.name,
                backend.feed,
                backend.poll,
                times.len(),
                ms(percentile(&times, 50)),
                ms(percentile(&times, 99)),
                ms(max),
                backend.bound,
                if max < backend.bound { "yes" } else { "**no**" },
            );
        }
    }
}
