//! Rotations per second on Redis next to PostgreSQL and a Redis Cluster (3
//! masters, 3 replicas, started by the bench on loopback ports; with and
//! without `replica_acks(1, 1 s)`, the `WAIT` after each write), in the same
//! run, with 1 and 16 concurrent clients; and the revocation check's cost per
//! request (`is_revoked`, one round trip) on each, with `MemoryStore` for scale.
//!
//! `cargo bench --bench redis_rotation -- --warm-up-time 1 --measurement-time 3`
//!
//! Services: `TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`) and
//! `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`); a
//! backend that is not reachable is left out (and said so). Keys and tables are
//! under a bench-only prefix and purged at the end.
//!
//! What one "rotation" is: `TokenStore::rotate` of a session's live token (the
//! store's whole atomic step; no JWT signing). Each client rotates its own chain,
//! a fresh session every 100 rotations (sessions are created before the clock
//! starts), so sessions stay the size real ones reach. With N clients, criterion's
//! time per iteration is wall time / rotations of all clients together, so its
//! `elem/s` is the aggregate rotation rate.

use std::sync::Arc;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tower_jwt_auth::store::{NewSession, RotateOutcome, RotateRequest};
use tower_jwt_auth::{MemoryStore, PgStore, RedisStore, SqlStoreOptions, TokenStore};
use uuid::Uuid;

#[path = "../tests/common/redis_cluster.rs"]
#[allow(dead_code)]
mod redis_cluster;

/// What the cluster helper calls when it cannot start a cluster.
fn unavailable<T>(what: &str, err: impl std::fmt::Display) -> Option<T> {
    eprintln!("{what} left out: {err}");
    None
}

const CHAIN: u64 = 100;
const PREFIX: &str = "bench_rr";

fn url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn backends() -> Vec<(&'static str, Arc<dyn TokenStore>)> {
    let mut out: Vec<(&'static str, Arc<dyn TokenStore>)> = Vec::new();
    match RedisStore::builder()
        .url(url("TEST_REDIS_URL", "redis://127.0.0.1:6379/"))
        .key_prefix(PREFIX)
        .build()
        .await
    {
        Ok(s) => out.push(("redis", Arc::new(s))),
        Err(e) => eprintln!("redis left out: {e}"),
    }
    let pg_url = url(
        "TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/test",
    );
    match PgStore::connect_with(
        &pg_url,
        SqlStoreOptions::new().table_prefix(format!("{PREFIX}_")),
    )
    .await
    {
        Ok(s) => match s.migrate().await {
            Ok(()) => out.push(("postgres", Arc::new(s))),
            Err(e) => eprintln!("postgres left out: {e}"),
        },
        Err(e) => eprintln!("postgres left out: {e}"),
    }
    if let Some(cluster) = redis_cluster::cluster() {
        let build = |acks: bool| {
            let builder = RedisStore::builder()
                .cluster_urls(cluster.urls.clone())
                .key_prefix(PREFIX);
            let builder = if acks {
                builder.replica_acks(1, std::time::Duration::from_secs(1))
            } else {
                builder
            };
            builder.build()
        };
        out.push(("redis_cluster", Arc::new(build(false).await.unwrap())));
        out.push(("redis_cluster_wait1", Arc::new(build(true).await.unwrap())));
    }
    out
}

fn new_session(user: &str) -> NewSession {
    let t = now();
    NewSession::new(
        Uuid::new_v4(),
        user.to_owned(),
        Uuid::new_v4(),
        t,
        t + 86_400,
        t + 86_400,
    )
    .with_label(None)
}

/// One client: `n` rotations over chains of [`CHAIN`], sessions made beforehand.
async fn client_sessions(store: &Arc<dyn TokenStore>, n: u64) -> Vec<NewSession> {
    let mut out = Vec::new();
    for _ in 0..n.div_ceil(CHAIN) {
        let s = new_session(&format!("bench-user-{}", Uuid::new_v4()));
        store.create_session(&s).await.unwrap();
        out.push(s);
    }
    out
}

async fn rotate_chains(store: Arc<dyn TokenStore>, sessions: Vec<NewSession>, mut n: u64) {
    for s in sessions {
        let mut jti = s.jti;
        for _ in 0..n.min(CHAIN) {
            let req = RotateRequest::new(
                s.session_id,
                s.user_id.clone(),
                jti,
                Uuid::new_v4(),
                now(),
                3600,
            )
            .with_grace(0);
            let out = store.rotate(&req).await.unwrap();
            assert!(matches!(out, RotateOutcome::Rotated { .. }), "{out:?}");
            jti = req.successor_jti;
        }
        n = n.saturating_sub(CHAIN);
    }
}

fn rotations(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let stores = rt.block_on(backends());
    let mut g = c.benchmark_group("rotation");
    g.throughput(Throughput::Elements(1));
    for (name, store) in &stores {
        for clients in [1u64, 16] {
            g.bench_with_input(
                BenchmarkId::new(*name, format!("{clients}_clients")),
                &clients,
                |b, &clients| {
                    b.to_async(&rt).iter_custom(|iters| {
                        let store = store.clone();
                        async move {
                            // Spread `iters` rotations over the clients.
                            let per = (0..clients)
                                .map(|i| iters / clients + u64::from(i < iters % clients));
                            let mut work = Vec::new();
                            for n in per {
                                work.push((client_sessions(&store, n).await, n));
                            }
                            let start = Instant::now();
                            let tasks: Vec<_> = work
                                .into_iter()
                                .map(|(s, n)| tokio::spawn(rotate_chains(store.clone(), s, n)))
                                .collect();
                            for t in tasks {
                                t.await.unwrap();
                            }
                            start.elapsed()
                        }
                    });
                },
            );
        }
    }
    g.finish();

    // The revocation check: one `is_revoked` per request, as the layer does it.
    let mut g = c.benchmark_group("revocation_check");
    let mut all = stores.clone();
    all.push(("memory", Arc::new(MemoryStore::new())));
    for (name, store) in &all {
        let s = new_session("bench-revocation");
        rt.block_on(store.create_session(&s)).unwrap();
        let iat = now();
        g.bench_function(*name, |b| {
            b.to_async(&rt).iter(|| {
                let store = store.clone();
                async move {
                    let revoked = store
                        .is_revoked(s.session_id, "bench-revocation", iat)
                        .await
                        .unwrap();
                    assert!(!revoked);
                }
            });
        });
    }
    g.finish();

    // Leave nothing behind: everything under the bench prefix is "expired" by then.
    for (_, store) in &stores {
        rt.block_on(store.purge_expired(u64::MAX / 4)).unwrap();
    }
}

criterion_group!(benches, rotations);
criterion_main!(benches);
