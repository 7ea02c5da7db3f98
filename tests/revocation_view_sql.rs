//! The revocation view on the SQL stores' log: two instances on one database
//! (each its own pool), 100 logouts on A refused by B's view (p99 and max
//! printed; PostgreSQL pushes at commit: under 100 ms; MariaDB and SQLite are
//! polled: under the interval + 100 ms), a revoke-all, a restart that loads the
//! log, and on PostgreSQL the view's connections cut by the tests' TCP proxy:
//! past the bound the layer answers 503 or asks the store, never a stale
//! accept, and the view catches up by itself.

mod common;
#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/view_cut.rs"]
mod view_cut;

use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use proxy::Proxy;
use sqlx::mysql::MySqlPoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;
use tower::{Layer, service_fn};
use tower_jwt_auth::conformance::sessions_for;
use tower_jwt_auth::store::sql::SqlStoreOptions;
use tower_jwt_auth::{
    JwtAuthLayer, MySqlStore, NoCustomClaims, PgStore, RevocationLog, RevocationView, SqliteStore,
    TokenStore, ViewAnswer,
};
use view_cut::{Body, status};

/// 100 logouts on instance A (`a`), each refused by instance B's view (of
/// `b`): returns the propagation times, sorted.
async fn propagation(
    db: &str,
    a: Arc<dyn TokenStore>,
    b: Arc<dyn RevocationLog>,
    poll: Duration,
) -> Vec<Duration> {
    let (sessions, _, id) = sessions_for(a.clone());
    let view = RevocationView::builder(b).poll_interval(poll).start();
    view.ready(Duration::from_secs(5)).await.unwrap();
    let layer_b = JwtAuthLayer::new(sessions.jwt().clone())
        .revocation_view(view.clone())
        .layer(service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::default()))
        }));
    let mut times = Vec::new();
    for _ in 0..100 {
        let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        assert_eq!(status(&layer_b, &pair.access).await, StatusCode::OK);
        sessions.logout(&pair.refresh).await.unwrap();
        let start = Instant::now();
        while view.check(pair.session_id, &id.to_string(), 0) != ViewAnswer::Revoked {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{db}: not propagated"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(start.elapsed());
        assert_eq!(
            status(&layer_b, &pair.access).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // A revoke-all on A: every earlier token refused on B.
    let older = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    sessions.revoke_user(&id).await.unwrap();
    let start = Instant::now();
    while view.check(older.session_id, &id.to_string(), 0) != ViewAnswer::Revoked {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{db}: revoke-all not propagated"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    times.sort();
    let p99 = times[98];
    let max = times[99];
    eprintln!(
        "{db}: propagation of 100 logouts: median {:?}, p99 {p99:?}, max {max:?} (poll interval {poll:?})",
        times[50]
    );
    times
}

/// A restarted instance loads what was revoked before it started.
async fn restart_loads(db: &str, store: Arc<dyn RevocationLog>, revoked: usize) {
    let view = RevocationView::builder(store).start();
    view.ready(Duration::from_secs(5)).await.unwrap();
    assert!(
        view.revoked_sessions() >= revoked,
        "{db}: {}",
        view.revoked_sessions()
    );
    assert_eq!(view.users_with_cutoff(), 1, "{db}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pushes_logouts_to_other_instances() {
    let url = common::service_url(common::POSTGRES_URL.0, common::POSTGRES_URL.1);
    let Ok(probe) = sqlx::PgPool::connect(&url)
        .await
        .map_err(|e| common::unavailable::<()>("PostgreSQL", e))
    else {
        return;
    };
    probe.close().await;
    let prefix = format!("{}_", common::unique_name("view"));
    let store = |prefix: &str| {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy(&url)
            .unwrap();
        PgStore::with_options(pool, SqlStoreOptions::new().table_prefix(prefix)).unwrap()
    };
    let (a, b) = (Arc::new(store(&prefix)), Arc::new(store(&prefix)));
    a.migrate().await.unwrap();
    let times = propagation("PostgreSQL", a.clone(), b.clone(), Duration::from_secs(1)).await;
    assert!(
        times[98] < Duration::from_millis(100),
        "p99 {:?}",
        times[98]
    );
    restart_loads("PostgreSQL", b, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_logouts_reach_other_instances_within_the_poll_interval() {
    let url = common::service_url(common::MYSQL_URL.0, common::MYSQL_URL.1);
    let Ok(probe) = sqlx::MySqlPool::connect(&url)
        .await
        .map_err(|e| common::unavailable::<()>("MariaDB", e))
    else {
        return;
    };
    probe.close().await;
    let prefix = format!("{}_", common::unique_name("view"));
    let store = |prefix: &str| {
        let pool = MySqlPoolOptions::new()
            .max_connections(4)
            .connect_lazy(&url)
            .unwrap();
        MySqlStore::with_options(pool, SqlStoreOptions::new().table_prefix(prefix)).unwrap()
    };
    let (a, b) = (Arc::new(store(&prefix)), Arc::new(store(&prefix)));
    a.migrate().await.unwrap();
    let poll = Duration::from_millis(100);
    let times = propagation("MariaDB", a.clone(), b.clone(), poll).await;
    assert!(
        times[99] < poll + Duration::from_millis(100),
        "max {:?}",
        times[99]
    );
    restart_loads("MariaDB", b, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_logouts_reach_other_instances_within_the_poll_interval() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}.db", common::unique_name("view")));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = || async {
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        SqliteStore::with_options(pool, SqlStoreOptions::new()).unwrap()
    };
    let (a, b) = (Arc::new(store().await), Arc::new(store().await));
    a.migrate().await.unwrap();
    let poll = Duration::from_millis(100);
    let times = propagation("SQLite", a.clone(), b.clone(), poll).await;
    assert!(
        times[99] < poll + Duration::from_millis(100),
        "max {:?}",
        times[99]
    );
    restart_loads("SQLite", b, 100).await;
    let _ = std::fs::remove_file(&path);
}

/// A PostgreSQL store reached directly (migrated) and the same tables reached
/// through a new proxy, whose store has `via` as its options (table prefix
/// set here) and 1 s bounds; `None` (skipped) when PostgreSQL is away.
async fn pg_behind_proxy(
    name: &str,
    via: SqlStoreOptions,
) -> Option<(Arc<PgStore>, Arc<PgStore>, Proxy)> {
    let url = common::service_url(common::POSTGRES_URL.0, common::POSTGRES_URL.1);
    let probe = sqlx::PgPool::connect(&url)
        .await
        .map_err(|e| common::unavailable::<()>("PostgreSQL", e))
        .ok()?;
    probe.close().await;
    let options = PgConnectOptions::from_str(&url).unwrap();
    let proxy = Proxy::start(format!("{}:{}", options.get_host(), options.get_port())).await;
    let prefix = format!("{}_", common::unique_name(name));
    let direct = PgStore::with_options(
        PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy(&url)
            .unwrap(),
        SqlStoreOptions::new().table_prefix(&prefix),
    )
    .unwrap();
    direct.migrate().await.unwrap();
    let via_proxy = PgStore::with_options(
        PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(1))
            .connect_lazy_with(options.host("127.0.0.1").port(proxy.addr().port())),
        via.table_prefix(&prefix)
            .operation_timeout(Duration::from_secs(1)),
    )
    .unwrap();
    Some((Arc::new(direct), Arc::new(via_proxy), proxy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_view_cut_off_by_the_proxy_never_accepts_stale_and_catches_up() {
    let Some((direct, via_proxy, proxy)) = pg_behind_proxy("viewcut", SqlStoreOptions::new()).await
    else {
        return;
    };
    view_cut::never_stale_and_catches_up(direct, via_proxy, &proxy).await;
}

/// Every connection of the view frozen by the proxy (open, and silent for
/// good: a flow a firewall or NAT dropped without a word): the `LISTEN`
/// connection is probed, found hung and replaced, and logouts are pushed again
/// (three in a row under 100 ms, with a 3 s poll that alone could not do it),
/// without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hung_listen_is_found_by_its_probe_and_replaced() {
    let via = SqlStoreOptions::new().listen_probe_interval(Duration::from_millis(500));
    let Some((direct, via_proxy, proxy)) = pg_behind_proxy("viewhung", via).await else {
        return;
    };
    view_cut::hung_feed_is_replaced(direct, via_proxy, &proxy).await;
}
