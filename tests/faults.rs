//! Sessions survive store faults (issue "Sessions survive faults"): the store is
//! reached through the tests' TCP proxy, which drops every open connection 40
//! times, and 4 times among them freezes every open connection instead (open,
//! nothing passing, for good: a flow a firewall or NAT dropped without a word),
//! while 6 sessions keep rotating through the refresh endpoint, with default
//! settings. Then:
//!
//! - no session was lost: every client still holds a working refresh token;
//! - the endpoint answered only 200, or 503 with `Retry-After`;
//! - every session rotates within 10 s after the last drop;
//! - no transaction older than the operation timeout is left in the database.
//!
//! PostgreSQL (`TEST_POSTGRES_URL`), MariaDB/MySQL (`TEST_MYSQL_URL`) and Redis
//! (`TEST_REDIS_URL`); skipped when unreachable, except under `CI`. The counts of
//! each run are printed (`--nocapture`) and kept in RELIABILITY.md.

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use proxy::Proxy;
use tower::ServiceExt;
use tower_jwt_auth::conformance::{Users, test_jwt};
use tower_jwt_auth::{NoCustomClaims, SessionEndpoint, Sessions, TokenStore};
use uuid::Uuid;

/// Clients rotating their own session.
const CLIENTS: usize = 6;
/// Connection drops.
const DROPS: usize = 40;
/// How long after the last drop every session must have rotated.
const RECOVERY: Duration = Duration::from_secs(10);

/// What the clients saw.
#[derive(Debug, Default)]
struct Counts {
    ok: AtomicU64,
    unavailable: AtomicU64,
    /// Anything else: a 401 (a lost session), a 5xx that is not 503, a 503
    /// without `Retry-After`.
    wrong: AtomicU64,
}

/// One refresh over the endpoint: the status, the new refresh token on 200,
/// and whether a 503 carried `Retry-After`.
async fn refresh(
    endpoint: &SessionEndpoint<Users, NoCustomClaims>,
    token: &str,
) -> (StatusCode, Option<String>, bool) {
    let req = Request::post("/api/token/refresh/")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(format!(
            r#"{{"refresh":"{token}"}}"#
        ))))
        .unwrap();
    let res = endpoint.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let retry_after = res.headers().contains_key("retry-after");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let next = json["refresh"].as_str().map(str::to_owned);
    (status, next, retry_after)
}

/// A client: refreshes its session again and again; on 503 it waits a second
/// (the `Retry-After`) and retries with the same token, as a real client does.
/// Returns its last working token, or `None` when its session was lost.
async fn client(
    endpoint: SessionEndpoint<Users, NoCustomClaims>,
    mut token: String,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) -> Option<String> {
    while !stop.load(Ordering::SeqCst) {
        match refresh(&endpoint, &token).await {
            (StatusCode::OK, Some(next), _) => {
                counts.ok.fetch_add(1, Ordering::Relaxed);
                token = next;
            }
            (StatusCode::SERVICE_UNAVAILABLE, _, true) => {
                counts.unavailable.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            (status, _, _) => {
                counts.wrong.fetch_add(1, Ordering::Relaxed);
                eprintln!("client answered {status}: its session is lost");
                return None;
            }
        }
    }
    Some(token)
}

/// The whole run on one store reached through `proxy`; `leftover` asks the
/// database directly how many transactions are older than the operation
/// timeout. Prints the counts for the report, then asserts.
async fn fault_run<F, Fut>(name: &str, store: Arc<dyn TokenStore>, proxy: &Proxy, leftover: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let users = Arc::new(Users::new());
    let sessions: Sessions<Users> = Sessions::new(test_jwt(), store, users.clone());
    let endpoint = SessionEndpoint::refresh(sessions.clone());
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let id = Uuid::new_v4();
        users.insert(id, format!("client-{i}"));
        let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        tasks.push(tokio::spawn(client(
            endpoint.clone(),
            pair.refresh,
            stop.clone(),
            counts.clone(),
        )));
    }
    // The chaos: every open connection dropped, DROPS times, at uneven moments
    // (some while a rotation is in flight, some between them); every tenth
    // time frozen instead, for good (new connections pass).
    for i in 0..DROPS {
        tokio::time::sleep(Duration::from_millis(60 + (i as u64 * 37) % 140)).await;
        if i % 10 == 9 {
            proxy.freeze();
            continue;
        }
        proxy.cut();
        tokio::time::sleep(Duration::from_millis(20 + (i as u64 * 53) % 80)).await;
        proxy.restore();
    }
    let last_drop = Instant::now();
    // Let the clients run on a little, then stop them and collect their tokens.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    let lost = tokens.iter().filter(|t| t.is_none()).count();
    // Every session rotates within RECOVERY of the last drop.
    let mut recovered = 0;
    for token in tokens.into_iter().flatten() {
        loop {
            match refresh(&endpoint, &token).await {
                (StatusCode::OK, Some(_), _) => {
                    recovered += 1;
                    break;
                }
                (StatusCode::SERVICE_UNAVAILABLE, _, true) if last_drop.elapsed() < RECOVERY => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                (status, _, _) => panic!(
                    "{name}: a session did not rotate {:?} after the last drop: {status}",
                    last_drop.elapsed()
                ),
            }
        }
    }
    let recovery = last_drop.elapsed();
    let stale = leftover().await;
    println!(
        "{name}: {DROPS} faults (every tenth a freeze), {CLIENTS} sessions: {} rotations 200, {} answers 503, {} wrong, {lost} sessions lost, {recovered} rotated after the last drop (all within {:.1} s), {stale} transactions older than the operation timeout",
        counts.ok.load(Ordering::Relaxed),
        counts.unavailable.load(Ordering::Relaxed),
        counts.wrong.load(Ordering::Relaxed),
        recovery.as_secs_f64(),
    );
    assert_eq!(lost, 0, "{name}: sessions lost");
    assert_eq!(
        counts.wrong.load(Ordering::Relaxed),
        0,
        "{name}: answers other than 200/503"
    );
    assert_eq!(
        recovered, CLIENTS,
        "{name}: sessions that rotated after the faults"
    );
    assert!(recovery <= RECOVERY, "{name}: recovery took {recovery:?}");
    assert_eq!(stale, 0, "{name}: transactions left open in the database");
    assert!(
        counts.unavailable.load(Ordering::Relaxed) > 0,
        "{name}: the faults were never felt (the proxy is not in the path?)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_sessions_survive_connection_drops() {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use tower_jwt_auth::PgStore;
    use tower_jwt_auth::store::sql::SqlStoreOptions;

    let url = common::service_url(common::POSTGRES_URL.0, common::POSTGRES_URL.1);
    let direct = match PgPoolOptions::new().max_connections(2).connect(&url).await {
        Ok(p) => p,
        Err(e) => return common::unavailable("PostgreSQL", e).unwrap_or(()),
    };
    let options = PgConnectOptions::from_str(&url).unwrap();
    let proxy = Proxy::start(format!("{}:{}", options.get_host(), options.get_port())).await;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_lazy_with(options.host("127.0.0.1").port(proxy.addr().port()));
    let prefix = format!("{}_", common::unique_name("faults"));
    let store = PgStore::with_options(pool, SqlStoreOptions::new().table_prefix(prefix)).unwrap();
    store.migrate().await.unwrap();
    let timeout = SqlStoreOptions::new().get_operation_timeout().as_secs();
    fault_run("PostgreSQL", Arc::new(store), &proxy, || {
        let direct = direct.clone();
        async move {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND xact_start IS NOT NULL AND pid <> pg_backend_pid() \
                 AND now() - xact_start > interval '{timeout} seconds'"
            )))
            .fetch_one(&direct)
            .await
            .unwrap();
            n as u64
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_sessions_survive_connection_drops() {
    use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
    use tower_jwt_auth::MySqlStore;
    use tower_jwt_auth::store::sql::SqlStoreOptions;

    let url = common::service_url(common::MYSQL_URL.0, common::MYSQL_URL.1);
    let direct = match MySqlPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
    {
        Ok(p) => p,
        Err(e) => return common::unavailable("MySQL/MariaDB", e).unwrap_or(()),
    };
    let options = MySqlConnectOptions::from_str(&url).unwrap();
    let proxy = Proxy::start(format!("{}:{}", options.get_host(), options.get_port())).await;
    let pool = MySqlPoolOptions::new()
        .max_connections(8)
        .connect_lazy_with(options.host("127.0.0.1").port(proxy.addr().port()));
    let prefix = format!("{}_", common::unique_name("faults"));
    let store =
        MySqlStore::with_options(pool, SqlStoreOptions::new().table_prefix(prefix)).unwrap();
    store.migrate().await.unwrap();
    let timeout = SqlStoreOptions::new().get_operation_timeout().as_secs();
    fault_run("MariaDB", Arc::new(store), &proxy, || {
        let direct = direct.clone();
        async move {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM information_schema.innodb_trx \
                 WHERE trx_started < NOW() - INTERVAL {timeout} SECOND"
            )))
            .fetch_one(&direct)
            .await
            .unwrap();
            n as u64
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_sessions_survive_connection_drops() {
    use tower_jwt_auth::RedisStore;

    let url = common::service_url(common::REDIS_URL.0, common::REDIS_URL.1);
    if let Err(e) = RedisStore::connect(&url).await {
        return common::unavailable("Redis", e).unwrap_or(());
    }
    let proxy = Proxy::start(proxy::redis_host_port(&url)).await;
    let store = RedisStore::builder()
        .url(proxy::redis_url_via(&url, &proxy))
        .key_prefix(common::unique_name("faults"))
        .build()
        .await
        .unwrap();
    // Redis has no transactions to leave open: its atomic steps are scripts.
    fault_run("Redis", Arc::new(store), &proxy, || async { 0 }).await;
}
