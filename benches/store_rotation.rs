//! Rotations per second and the revocation check's cost, on every token store
//! backend, in one run:
//!
//! ```text
//! cargo bench --bench store_rotation -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! - `rotate/<backend>/1`: one client rotating one session's chain (latency).
//! - `rotate/<backend>/16`: 16 clients at once, each rotating its own session
//!   (throughput: criterion's elements/s are rotations/s).
//! - `is_revoked/<backend>`: the check every authenticated request makes.
//!
//! PostgreSQL and MariaDB come from `TEST_POSTGRES_URL` / `TEST_MYSQL_URL` (the
//! tests' defaults otherwise); a backend that cannot be reached is skipped with a
//! printed line. SQLite is a WAL file under the target directory.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use tower_jwt_auth::store::sql::SqlStoreOptions;
use tower_jwt_auth::store::{NewSession, RotateOutcome, RotateRequest};
use tower_jwt_auth::{MemoryStore, MySqlStore, PgStore, SqliteStore, TokenStore};
use uuid::Uuid;

type Opened = Result<Arc<dyn TokenStore>, String>;
type Open = fn() -> Pin<Box<dyn Future<Output = Opened>>>;

/// Every backend measured, in order. A new backend is one more line here (and
/// its `open_*` function).
fn backends() -> Vec<(&'static str, Open)> {
    vec![
        ("memory", || {
            Box::pin(async { Ok(Arc::new(MemoryStore::new()) as Arc<dyn TokenStore>) })
        }),
        ("sqlite", || Box::pin(open_sqlite())),
        ("postgres", || Box::pin(open_postgres())),
        ("mariadb", || Box::pin(open_mysql())),
        // ("redis", || Box::pin(open_redis())),  // the Redis store goes here
    ]
}

fn env_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

fn bench_prefix() -> String {
    format!("bench_{}_", Uuid::new_v4().simple())
}

async fn open_sqlite() -> Opened {
    let path = std::env::temp_dir().join(format!(
        "tower-jwt-auth-bench-{}.db",
        Uuid::new_v4().simple()
    ));
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

async fn open_postgres() -> Opened {
    let url = env_url(
        "TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    let options = SqlStoreOptions::new().table_prefix(bench_prefix());
    let store = PgStore::connect_with(&url, options)
        .await
        .map_err(|e| format!("{e}"))?;
    store.migrate().await.map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

async fn open_mysql() -> Opened {
    let url = env_url("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
    let options = SqlStoreOptions::new().table_prefix(bench_prefix());
    let store = MySqlStore::connect_with(&url, options)
        .await
        .map_err(|e| format!("{e}"))?;
    store.migrate().await.map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A session whose chain a client rotates.
struct Chain {
    store: Arc<dyn TokenStore>,
    session_id: Uuid,
    user_id: String,
    jti: Uuid,
}

impl Chain {
    async fn new(store: Arc<dyn TokenStore>) -> Chain {
        let now = now();
        let s = NewSession::new(
            Uuid::new_v4(),
            format!("bench-{}", Uuid::new_v4().simple()),
            Uuid::new_v4(),
            now,
            now + 86_400,
            now + 7 * 86_400,
        )
        .with_label(None);
        store.create_session(&s).await.expect("create session");
        Chain {
            store,
            session_id: s.session_id,
            user_id: s.user_id,
            jti: s.jti,
        }
    }

    async fn rotate(&mut self) {
        let r = RotateRequest::new(
            self.session_id,
            self.user_id.clone(),
            self.jti,
            Uuid::new_v4(),
            now(),
            86_400,
        )
        .with_grace(0);
        let outcome = self.store.rotate(&r).await.expect("rotate");
        assert!(
            matches!(outcome, RotateOutcome::Rotated { .. }),
            "{outcome:?}"
        );
        self.jti = r.successor_jti;
    }
}

/// `clients` clients, each rotating its own chain `iters` times; the wall time.
async fn rotate_concurrently(store: Arc<dyn TokenStore>, clients: usize, iters: u64) -> Duration {
    let mut chains = Vec::with_capacity(clients);
    for _ in 0..clients {
        chains.push(Chain::new(store.clone()).await);
    }
    let start = Instant::now();
    let tasks: Vec<_> = chains
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                for _ in 0..iters {
                    c.rotate().await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client task");
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for (name, open) in backends() {
        let store = match rt.block_on(open()) {
            Ok(s) => s,
            Err(e) => {
                println!("skipped {name}: {e}");
                continue;
            }
        };
        bench_backend(c, &rt, name, store);
    }
}

fn bench_backend(c: &mut Criterion, rt: &Runtime, name: &str, store: Arc<dyn TokenStore>) {
    let mut g = c.benchmark_group("rotate");
    for clients in [1usize, 16] {
        g.throughput(Throughput::Elements(clients as u64));
        g.bench_function(format!("{name}/{clients}"), |b| {
            b.to_async(rt)
                .iter_custom(|iters| rotate_concurrently(store.clone(), clients, iters));
        });
    }
    g.finish();

    let chain = rt.block_on(Chain::new(store.clone()));
    let issued_at = now();
    let mut g = c.benchmark_group("is_revoked");
    g.throughput(Throughput::Elements(1));
    g.bench_function(name, |b| {
        b.to_async(rt).iter(|| async {
            let revoked = chain
                .store
                .is_revoked(chain.session_id, &chain.user_id, issued_at)
                .await
                .expect("check");
            assert!(!revoked);
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
