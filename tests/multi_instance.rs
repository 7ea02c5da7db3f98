//! Several app instances on one store share rotation and revocation (issue 6).
//!
//! Each test starts three instances, A, B and C, that share nothing but the store's
//! data: each has its own store handle (its own Redis connection manager, or its
//! own PostgreSQL pool), its own `Jwt` built from the same key configuration, its
//! own user resolver and `Sessions`, and its own axum router served by a real
//! server on its own 127.0.0.1 port. The tests talk to them over HTTP only (apart
//! from the login, which calls `Sessions::login` on A as an app's login route would):
//!
//! - 64 concurrent refreshes of one token, spread round-robin over A, B and C and
//!   released by a barrier, give exactly one 200 and 63 401s, ten rounds running
//!   (with no reuse window; within the default window, Redis only: 64 200s
//!   answering one and the same successor);
//! - a logout on A is refused on B, and B refuses the session at once (refresh,
//!   `/api/me/` behind `JwtAuthLayer::revocation_check`, verify);
//! - reuse detected on B ends the session on A and C;
//! - revoke-all on C takes effect on A and B.
//!
//! The Redis scenarios run on a Redis Cluster too (3 masters, 3 replicas,
//! started by the tests), and there, while sessions rotate on two instances,
//! every master is failed over to its replica in turn: no session is lost,
//! nothing but a 503 answers during the gaps, and every session rotates after.
//!
//! Redis at `TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`), PostgreSQL at
//! `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`); a test
//! whose service is unreachable is skipped with its reason printed, except under
//! `CI`, where it fails. The three instances of one test share a key prefix / table
//! prefix that no other test uses; it is removed at the end of a passing test.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio::sync::Barrier;
use tokio::task::JoinHandle;
use tower_jwt_auth::axum::Authenticated;
use tower_jwt_auth::conformance::{Users, test_jwt};
use tower_jwt_auth::store::redis::redis;
use tower_jwt_auth::store::sql::SqlStoreOptions;
use tower_jwt_auth::{
    JwtAuthLayer, NoCustomClaims, PgStore, RedisStore, SessionEndpoint, Sessions, TokenError,
    TokenPair, TokenStore,
};
use uuid::Uuid;

/// Concurrent refreshes of one token in a race.
const RACERS: usize = 64;
/// Races per backend.
const ROUNDS: usize = 10;
/// Instance indices.
const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const NAMES: [&str; 3] = ["A", "B", "C"];
/// No reuse window: strict single use, what most scenarios here assume.
const STRICT: Duration = Duration::ZERO;
/// How long one HTTP exchange may take before the test fails instead of hanging.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

// ---------------------------------------------------------------------------
// Instances

/// One app instance: its sessions (for the login) and its server's address.
struct Instance {
    sessions: Sessions<Users>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What the store of a test leaves behind, removed at the end of a passing test.
enum Leftovers {
    Redis {
        con: redis::aio::ConnectionManager,
        prefix: String,
    },
    Postgres {
        pool: PgPool,
        tables: Vec<String>,
    },
    /// The test's Redis Cluster goes away with the test process.
    Nothing,
}

/// Three instances on one store, two users (`alice`, `bob`) every instance knows,
/// and an HTTP client.
struct Cluster {
    instances: Vec<Instance>,
    client: HttpClient,
    alice: Uuid,
    bob: Uuid,
    /// 24 more users every instance knows (their keys spread over the slots
    /// of a Redis Cluster).
    others: Vec<Uuid>,
    leftovers: Leftovers,
    backend: &'static str,
}

async fn me(Authenticated(claims): Authenticated) -> Json<Value> {
    Json(json!({ "id": claims.user_id(), "session": claims.session_id() }))
}

/// The instance's routes, at the example server's paths: the crate's session
/// endpoints, and `/api/me/` behind `JwtAuthLayer` with the revocation check on
/// this instance's own store handle.
fn router(sessions: &Sessions<Users>) -> Router {
    let me_auth =
        JwtAuthLayer::new(sessions.jwt().clone()).revocation_check(sessions.store().clone());
    Router::new()
        .route_service(
            "/api/token/refresh/",
            SessionEndpoint::refresh(sessions.clone()),
        )
        .route_service(
            "/api/token/blacklist/",
            SessionEndpoint::logout(sessions.clone()),
        )
        .route_service(
            "/api/token/verify/",
            SessionEndpoint::verify(sessions.clone()),
        )
        .route_service(
            "/api/token/revoke-all/",
            SessionEndpoint::revoke_all(sessions.clone()),
        )
        .route("/api/me/", get(me).route_layer(me_auth))
}

impl Cluster {
    /// Starts one instance on each store handle, with reuse window `window`.
    async fn start(
        backend: &'static str,
        stores: Vec<Arc<dyn TokenStore>>,
        leftovers: Leftovers,
        window: Duration,
    ) -> Cluster {
        assert_eq!(stores.len(), NAMES.len());
        let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let others: Vec<Uuid> = (0..24).map(|_| Uuid::new_v4()).collect();
        let mut instances = Vec::new();
        for store in stores {
            // Each instance resolves users on its own, as separate processes would.
            let users = Arc::new(Users::new());
            users.insert(alice, "alice".into());
            users.insert(bob, "bob".into());
            for (k, user) in others.iter().enumerate() {
                users.insert(*user, format!("user{k}"));
            }
            // Its own Jwt, from the same key configuration.
            let sessions: Sessions<Users> = Sessions::new(test_jwt(), store, users)
                .with_reuse_grace(window)
                .expect("a window of whole seconds");
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("local address");
            let app = router(&sessions);
            let server = tokio::spawn(async move {
                axum::serve(listener, app).await.expect("server runs");
            });
            instances.push(Instance {
                sessions,
                addr,
                server,
            });
        }
        let addrs: HashSet<_> = instances.iter().map(|i| i.addr).collect();
        assert_eq!(addrs.len(), NAMES.len(), "one port per instance");
        Cluster {
            instances,
            client: Client::builder(TokioExecutor::new()).build_http(),
            alice,
            bob,
            others,
            leftovers,
            backend,
        }
    }

    /// A session for `user`, started by instance `i` (the app's login route would
    /// call this after checking the password).
    async fn login(&self, i: usize, user: Uuid) -> TokenPair {
        self.instances[i]
            .sessions
            .login(&user, &NoCustomClaims, None)
            .await
            .expect("login")
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.instances[i].addr
    }

    async fn refresh(&self, i: usize, refresh: &str) -> (StatusCode, Value) {
        send(
            &self.client,
            refresh_request(self.addr(i), "/api/token/refresh/", refresh),
        )
        .await
    }

    /// A refresh expected to succeed: the new pair's (access, refresh).
    async fn refresh_ok(&self, i: usize, refresh: &str) -> (String, String) {
        let (status, body) = self.refresh(i, refresh).await;
        assert_eq!(status, StatusCode::OK, "refresh on {}: {body}", NAMES[i]);
        (
            body["access"].as_str().expect("access").to_owned(),
            body["refresh"].as_str().expect("refresh").to_owned(),
        )
    }

    async fn logout(&self, i: usize, refresh: &str) -> (StatusCode, Value) {
        send(
            &self.client,
            refresh_request(self.addr(i), "/api/token/blacklist/", refresh),
        )
        .await
    }

    async fn verify(&self, i: usize, token: &str) -> (StatusCode, Value) {
        let req = Request::post(format!("http://{}/api/token/verify/", self.addr(i)))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                json!({ "token": token }).to_string(),
            )))
            .unwrap();
        send(&self.client, req).await
    }

    async fn revoke_all(&self, i: usize, access: &str) -> (StatusCode, Value) {
        let req = Request::post(format!("http://{}/api/token/revoke-all/", self.addr(i)))
            .header("authorization", format!("Bearer {access}"))
            .body(Full::default())
            .unwrap();
        send(&self.client, req).await
    }

    async fn me(&self, i: usize, access: &str) -> (StatusCode, Value) {
        let req = Request::get(format!("http://{}/api/me/", self.addr(i)))
            .header("authorization", format!("Bearer {access}"))
            .body(Full::default())
            .unwrap();
        send(&self.client, req).await
    }

    /// `access` is accepted by `/api/me/` on instance `i`, as `user`.
    async fn assert_me_ok(&self, i: usize, access: &str, user: Uuid, what: &str) {
        let (status, body) = self.me(i, access).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{what}: /api/me/ on {}: {body}",
            NAMES[i]
        );
        assert_eq!(body["id"], user.to_string(), "{what}");
    }

    /// A refusal for `reason`: 401 `invalid_token` (not a 503 or anything else),
    /// with the reason's text as `error_description`. The reason tells a shared
    /// store from separate ones: a store that never saw the session would answer
    /// "not recognised", not "revoked" or "already used".
    #[track_caller]
    fn assert_refused(
        i: usize,
        (status, body): (StatusCode, Value),
        reason: TokenError,
        what: &str,
    ) {
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{what} on {}: {body}",
            NAMES[i]
        );
        assert_eq!(body["error"], "invalid_token", "{what} on {}", NAMES[i]);
        assert_eq!(
            body["error_description"],
            reason.to_string(),
            "{what} on {}",
            NAMES[i]
        );
    }

    /// The session of `refresh` / `access` is over on instance `i`: its refresh
    /// token, its access token (`/api/me/` and verify) are refused.
    async fn assert_session_over(&self, i: usize, access: &str, refresh: &str, what: &str) {
        Self::assert_refused(
            i,
            self.me(i, access).await,
            TokenError::Revoked,
            &format!("{what}: /api/me/ with the access token"),
        );
        Self::assert_refused(
            i,
            self.verify(i, access).await,
            TokenError::Revoked,
            &format!("{what}: verify of the access token"),
        );
        Self::assert_refused(
            i,
            self.refresh(i, refresh).await,
            TokenError::Revoked,
            &format!("{what}: refresh"),
        );
    }

    /// Removes the test's keys or tables.
    async fn finish(self) {
        let Cluster {
            instances,
            leftovers,
            ..
        } = self;
        drop(instances);
        match leftovers {
            Leftovers::Redis { mut con, prefix } => {
                let pattern = format!("{prefix}:*");
                let mut cursor = 0u64;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(500)
                        .query_async(&mut con)
                        .await
                        .expect("SCAN");
                    if !keys.is_empty() {
                        let _: () = redis::cmd("DEL")
                            .arg(&keys)
                            .query_async(&mut con)
                            .await
                            .expect("DEL");
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            }
            Leftovers::Nothing => {}
            Leftovers::Postgres { pool, tables } => {
                let sql = format!("DROP TABLE IF EXISTS {} CASCADE", tables.join(", "));
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .expect("drop the test's tables");
            }
        }
    }
}

fn refresh_request(addr: SocketAddr, path: &str, refresh: &str) -> Request<Full<Bytes>> {
    Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            json!({ "refresh": refresh }).to_string(),
        )))
        .unwrap()
}

/// One HTTP exchange: the status and the JSON body (`null` when empty).
async fn send(client: &HttpClient, req: Request<Full<Bytes>>) -> (StatusCode, Value) {
    let target = req.uri().to_string();
    let exchange = async {
        let res = client.request(req).await.expect("the instance answers");
        let status = res.status();
        let bytes = res
            .into_body()
            .collect()
            .await
            .expect("the body arrives")
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("every answer is JSON")
        };
        (status, body)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer from {target} within {REQUEST_TIMEOUT:?}"))
}

// ---------------------------------------------------------------------------
// Backends

fn redis_url() -> String {
    common::service_url(common::REDIS_URL.0, common::REDIS_URL.1)
}

fn postgres_url() -> String {
    common::service_url(common::POSTGRES_URL.0, common::POSTGRES_URL.1)
}

/// Three instances on one Redis, each with its own store (its own connection
/// manager), all under one fresh key prefix, with reuse window `window`.
async fn redis_cluster(window: Duration) -> Option<Cluster> {
    let url = redis_url();
    let prefix = common::unique_name("tjwt_multi");
    let mut stores = Vec::new();
    for _ in NAMES {
        match RedisStore::builder()
            .url(&url)
            .key_prefix(&prefix)
            .build()
            .await
        {
            Ok(s) => stores.push(s),
            Err(e) => return common::unavailable("Redis", e),
        }
    }
    // Three handles, three connections: Redis sees three different clients.
    let mut client_ids = HashSet::new();
    for store in &stores {
        let id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut store.connection_manager().expect("a single-node store"))
            .await
            .expect("CLIENT ID");
        client_ids.insert(id);
    }
    assert_eq!(client_ids.len(), NAMES.len(), "one connection per instance");
    let leftovers = Leftovers::Redis {
        con: stores[0].connection_manager().expect("a single-node store"),
        prefix,
    };
    let stores = stores
        .into_iter()
        .map(|s| Arc::new(s) as Arc<dyn TokenStore>)
        .collect();
    Some(Cluster::start("Redis", stores, leftovers, window).await)
}

/// Held (shared) by the tests on this binary's Redis Cluster, and alone by the
/// one that fails its masters over.
static CLUSTER_IN_USE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Three instances on the test's Redis Cluster, each with its own store (its
/// own cluster connection), under one fresh key prefix, with reuse window
/// `window`.
async fn redis_cluster_instances(window: Duration) -> Option<Cluster> {
    redis_cluster_instances_with(window, |b| b).await
}

/// [`redis_cluster_instances`] with stores built by `configure`.
async fn redis_cluster_instances_with(
    window: Duration,
    configure: impl Fn(tower_jwt_auth::RedisStoreBuilder) -> tower_jwt_auth::RedisStoreBuilder,
) -> Option<Cluster> {
    let seeds = common::redis_cluster::cluster()?;
    let prefix = common::unique_name("tjwt_multi");
    let mut stores = Vec::new();
    for _ in NAMES {
        let builder = RedisStore::builder()
            .cluster_urls(seeds.urls.clone())
            .key_prefix(&prefix);
        let store = configure(builder)
            .build()
            .await
            .expect("a store on the test cluster");
        stores.push(Arc::new(store) as Arc<dyn TokenStore>);
    }
    Some(Cluster::start("Redis Cluster", stores, Leftovers::Nothing, window).await)
}

/// Three instances on one PostgreSQL, each with its own store on its own pool,
/// all on one fresh table prefix; each migrates at start-up, concurrently, as
/// instances starting together do. No reuse window.
async fn postgres_cluster() -> Option<Cluster> {
    let url = postgres_url();
    let prefix = format!("{}_", common::unique_name("mi"));
    // Whether PostgreSQL is there at all, quickly (the pools below wait longer).
    match PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&url)
        .await
    {
        Ok(probe) => probe.close().await,
        Err(e) => return common::unavailable("PostgreSQL", e),
    }
    let mut stores = Vec::new();
    for _ in NAMES {
        // Small pools: several of these tests run at once on one server. A
        // generous timeout: the machine running the tests may be busy, and a
        // store timeout would be a 503, which the assertions refuse.
        let pool = match PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await
        {
            Ok(p) => p,
            Err(e) => return common::unavailable("PostgreSQL", e),
        };
        let options = SqlStoreOptions::new()
            .table_prefix(prefix.clone())
            .operation_timeout(Duration::from_secs(30));
        stores.push(Arc::new(
            PgStore::with_options(pool, options).expect("valid table prefix"),
        ));
    }
    let migrations = stores.iter().map(|s| {
        let s = s.clone();
        tokio::spawn(async move { s.migrate().await })
    });
    for m in migrations.collect::<Vec<_>>() {
        m.await.expect("migrate task").expect("migrate");
    }
    // Three pools, three server connections.
    let mut pids = HashSet::new();
    for store in &stores {
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .expect("pg_backend_pid");
        pids.insert(pid);
    }
    assert_eq!(pids.len(), NAMES.len(), "one pool per instance");
    let t = stores[0].table_names();
    let leftovers = Leftovers::Postgres {
        pool: stores[0].pool().clone(),
        tables: vec![
            t.refresh_tokens.clone(),
            t.sessions.clone(),
            t.user_cutoffs.clone(),
            t.schema_versions.clone(),
        ],
    };
    let stores = stores
        .into_iter()
        .map(|s| s as Arc<dyn TokenStore>)
        .collect();
    Some(Cluster::start("PostgreSQL", stores, leftovers, STRICT).await)
}

// ---------------------------------------------------------------------------
// Scenarios

/// `ROUNDS` times: a fresh session from A, then 64 refreshes of its refresh token
/// at once, round-robin over A, B and C, released together by a barrier. Exactly
/// one is 200, the 63 others 401 `invalid_token` (no 503). With no grace window the
/// losers are replays of a spent token, so the winner's new pair is dead too, on
/// every instance.
async fn race(cluster: &Cluster) {
    let mut wins = [0usize; 3];
    let mut reuse_answers = 0;
    for round in 0..ROUNDS {
        let pair = cluster.login(A, cluster.alice).await;
        // The session started on A is known to B and C.
        for i in [B, C] {
            cluster
                .assert_me_ok(i, &pair.access, cluster.alice, "before the race")
                .await;
        }
        let barrier = Arc::new(Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|k| {
                let i = k % NAMES.len();
                let req = refresh_request(cluster.addr(i), "/api/token/refresh/", &pair.refresh);
                let client = cluster.client.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let (status, body) = send(&client, req).await;
                    (i, status, body)
                })
            })
            .collect();
        let (reused, revoked) = (
            TokenError::Reused.to_string(),
            TokenError::Revoked.to_string(),
        );
        let mut winners = Vec::new();
        let mut refused = [0usize; 2];
        for racer in racers {
            let (i, status, body) = racer.await.expect("racer");
            match status {
                StatusCode::OK => winners.push((i, body)),
                StatusCode::UNAUTHORIZED => {
                    assert_eq!(body["error"], "invalid_token", "round {round}: {body}");
                    // A loser saw the winner's rotation (the token is spent: reuse)
                    // or the revocation that reuse caused; never an unknown token.
                    let why = body["error_description"].as_str().unwrap_or_default();
                    if why == reused {
                        refused[0] += 1;
                    } else if why == revoked {
                        refused[1] += 1;
                    } else {
                        panic!("round {round}: {} refused for {why:?}", NAMES[i]);
                    }
                }
                other => panic!("round {round}: {other} from {}: {body}", NAMES[i]),
            }
        }
        assert!(refused[0] >= 1, "round {round}: the reuse was detected");
        reuse_answers += refused[0];
        let refused = refused[0] + refused[1];
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one 200 of {RACERS}"
        );
        assert_eq!(refused, RACERS - 1, "round {round}: every other one is 401");
        let (winner, body) = winners.pop().unwrap();
        wins[winner] += 1;
        let access = body["access"].as_str().expect("access");
        let refresh = body["refresh"].as_str().expect("refresh");
        for i in [A, B, C] {
            cluster
                .assert_session_over(
                    i,
                    access,
                    refresh,
                    &format!("round {round}: the winner's pair after the replays"),
                )
                .await;
        }
    }
    eprintln!(
        "{}: {ROUNDS} rounds of {RACERS} refreshes: one 200 and {} 401s each; \
         won on A {}, B {}, C {}; 401s answering reuse {reuse_answers}, revoked the rest",
        cluster.backend,
        RACERS - 1,
        wins[A],
        wins[B],
        wins[C]
    );
}

/// The `jti` of a refresh token (its payload, read without checking: the
/// instances checked it).
fn jti_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["jti"].as_str().expect("a jti").to_owned()
}

/// Within the reuse window (the default, 10 s), `ROUNDS` times: 64 refreshes of
/// one token at once over A, B and C are all 200, and all answer one and the
/// same successor (a linear chain across instances: no second branch). That
/// successor then rotates on B; the raced token replayed on C after that is
/// reuse, and the session is over on every instance.
async fn race_within_window(cluster: &Cluster) {
    for round in 0..ROUNDS {
        let pair = cluster.login(A, cluster.alice).await;
        let barrier = Arc::new(Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|k| {
                let i = k % NAMES.len();
                let req = refresh_request(cluster.addr(i), "/api/token/refresh/", &pair.refresh);
                let (client, barrier) = (cluster.client.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    send(&client, req).await
                })
            })
            .collect();
        let mut successors = HashSet::new();
        let mut last = None;
        for racer in racers {
            let (status, body) = racer.await.expect("racer");
            assert_eq!(status, StatusCode::OK, "round {round}: {body}");
            let refresh = body["refresh"].as_str().expect("refresh").to_owned();
            successors.insert(jti_of(&refresh));
            last = Some(body);
        }
        assert_eq!(successors.len(), 1, "round {round}: one successor");
        let body = last.expect("64 answers");
        let (access, refresh) = (
            body["access"].as_str().expect("access"),
            body["refresh"].as_str().expect("refresh"),
        );
        let (next_access, next_refresh) = cluster.refresh_ok(B, refresh).await;
        Cluster::assert_refused(
            C,
            cluster.refresh(C, &pair.refresh).await,
            TokenError::Reused,
            "the raced token after its successor was used",
        );
        for i in [A, B, C] {
            cluster
                .assert_session_over(i, &next_access, &next_refresh, "after the replay on C")
                .await;
            cluster
                .assert_session_over(i, access, refresh, "after the replay on C")
                .await;
        }
    }
}

/// A session rotated on B is logged out on A: B refuses the logout a second
/// time, and refuses the session at once (refresh, access token on `/api/me/`,
/// verify); so does C. Another session of the same user lives on.
async fn logout(cluster: &Cluster) {
    let first = cluster.login(A, cluster.alice).await;
    let other = cluster.login(C, cluster.alice).await;
    let (access, refresh) = cluster.refresh_ok(B, &first.refresh).await;
    for i in [A, B, C] {
        cluster
            .assert_me_ok(i, &access, cluster.alice, "before the logout")
            .await;
        let (status, body) = cluster.verify(i, &access).await;
        assert_eq!(status, StatusCode::OK, "verify before the logout: {body}");
    }

    let (status, body) = cluster.logout(A, &refresh).await;
    assert_eq!(status, StatusCode::OK, "logout on A: {body}");

    Cluster::assert_refused(
        B,
        cluster.logout(B, &refresh).await,
        TokenError::Revoked,
        "the same logout again",
    );
    for i in [B, C] {
        cluster
            .assert_session_over(i, &access, &refresh, "after the logout on A")
            .await;
        Cluster::assert_refused(
            i,
            cluster.me(i, &first.access).await,
            TokenError::Revoked,
            "the session's first access token after the logout on A",
        );
    }
    // Only that session: the user's other one still works everywhere.
    cluster
        .assert_me_ok(B, &other.access, cluster.alice, "the other session")
        .await;
    cluster.refresh_ok(B, &other.refresh).await;
}

/// A rotates a session; the spent token is replayed on B (reuse): A then
/// refuses the live refresh token and C the live access token. The user's other
/// session, and another user's, live on.
async fn reuse(cluster: &Cluster) {
    let first = cluster.login(A, cluster.alice).await;
    let other = cluster.login(B, cluster.alice).await;
    let bobs = cluster.login(C, cluster.bob).await;
    let (access, refresh) = cluster.refresh_ok(A, &first.refresh).await;
    cluster
        .assert_me_ok(C, &access, cluster.alice, "before the replay")
        .await;

    Cluster::assert_refused(
        B,
        cluster.refresh(B, &first.refresh).await,
        TokenError::Reused,
        "the replay of the spent token",
    );

    Cluster::assert_refused(
        A,
        cluster.refresh(A, &refresh).await,
        TokenError::Revoked,
        "the live refresh token after the replay on B",
    );
    Cluster::assert_refused(
        C,
        cluster.me(C, &access).await,
        TokenError::Revoked,
        "the live access token after the replay on B",
    );
    for i in [A, B, C] {
        cluster
            .assert_session_over(i, &access, &refresh, "after the replay on B")
            .await;
    }
    // The family only: the user's other session and bob's are untouched.
    cluster
        .assert_me_ok(A, &other.access, cluster.alice, "alice's other session")
        .await;
    cluster.refresh_ok(C, &other.refresh).await;
    cluster.refresh_ok(A, &bobs.refresh).await;
}

/// Three sessions of alice, started on A, B and C (one rotated on A), and one of
/// bob. Revoke-all on C with one of alice's access tokens: A and B refuse every
/// session of alice at once; bob's lives on.
async fn revoke_all(cluster: &Cluster) {
    let s1 = cluster.login(A, cluster.alice).await;
    let s2 = cluster.login(B, cluster.alice).await;
    let s3 = cluster.login(C, cluster.alice).await;
    let bobs = cluster.login(A, cluster.bob).await;
    let (s3_access, s3_refresh) = cluster.refresh_ok(A, &s3.refresh).await;
    let sessions = [
        (s1.access.clone(), s1.refresh.clone()),
        (s2.access.clone(), s2.refresh.clone()),
        (s3_access, s3_refresh),
    ];
    for (access, _) in &sessions {
        for i in [A, B] {
            cluster
                .assert_me_ok(i, access, cluster.alice, "before the revoke-all")
                .await;
        }
    }

    let (status, body) = cluster.revoke_all(C, &s2.access).await;
    assert_eq!(status, StatusCode::OK, "revoke-all on C: {body}");

    for (n, (access, refresh)) in sessions.iter().enumerate() {
        for i in [A, B] {
            cluster
                .assert_session_over(
                    i,
                    access,
                    refresh,
                    &format!("alice's session {} after revoke-all on C", n + 1),
                )
                .await;
        }
    }
    Cluster::assert_refused(
        A,
        cluster.revoke_all(A, &s1.access).await,
        TokenError::Revoked,
        "revoke-all again with a revoked access token",
    );
    // Bob is another user.
    cluster
        .assert_me_ok(B, &bobs.access, cluster.bob, "bob's session")
        .await;
    cluster.refresh_ok(B, &bobs.refresh).await;
}

// ---------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_one_winner_of_64_across_instances() {
    let Some(cluster) = redis_cluster(STRICT).await else {
        return;
    };
    race(&cluster).await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_64_within_the_window_share_one_successor_across_instances() {
    let window = tower_jwt_auth::sessions::DEFAULT_REUSE_WINDOW;
    let Some(cluster) = redis_cluster(window).await else {
        return;
    };
    race_within_window(&cluster).await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_logout_on_one_is_refused_on_the_others() {
    let Some(cluster) = redis_cluster(STRICT).await else {
        return;
    };
    logout(&cluster).await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_reuse_on_one_kills_the_session_on_all() {
    let Some(cluster) = redis_cluster(STRICT).await else {
        return;
    };
    reuse(&cluster).await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_revoke_all_on_one_takes_effect_on_all() {
    let Some(cluster) = redis_cluster(STRICT).await else {
        return;
    };
    revoke_all(&cluster).await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_one_winner_of_64_across_instances() {
    let Some(cluster) = postgres_cluster().await else {
        return;
    };
    race(&cluster).await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_logout_on_one_is_refused_on_the_others() {
    let Some(cluster) = postgres_cluster().await else {
        return;
    };
    logout(&cluster).await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_reuse_on_one_kills_the_session_on_all() {
    let Some(cluster) = postgres_cluster().await else {
        return;
    };
    reuse(&cluster).await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_revoke_all_on_one_takes_effect_on_all() {
    let Some(cluster) = postgres_cluster().await else {
        return;
    };
    revoke_all(&cluster).await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_one_winner_of_64_across_instances() {
    let _shared = CLUSTER_IN_USE.read().await;
    let Some(cluster) = redis_cluster_instances(STRICT).await else {
        return;
    };
    race(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_64_within_the_window_share_one_successor_across_instances() {
    let _shared = CLUSTER_IN_USE.read().await;
    let window = tower_jwt_auth::sessions::DEFAULT_REUSE_WINDOW;
    let Some(cluster) = redis_cluster_instances(window).await else {
        return;
    };
    race_within_window(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_logout_on_one_is_refused_on_the_others() {
    let _shared = CLUSTER_IN_USE.read().await;
    let Some(cluster) = redis_cluster_instances(STRICT).await else {
        return;
    };
    logout(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_reuse_on_one_kills_the_session_on_all() {
    let _shared = CLUSTER_IN_USE.read().await;
    let Some(cluster) = redis_cluster_instances(STRICT).await else {
        return;
    };
    reuse(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_revoke_all_on_one_takes_effect_on_all() {
    let _shared = CLUSTER_IN_USE.read().await;
    let Some(cluster) = redis_cluster_instances(STRICT).await else {
        return;
    };
    revoke_all(&cluster).await;
}

/// While 24 sessions rotate over HTTP on A and B, each master of the cluster
/// is failed over to its replica in turn (`CLUSTER FAILOVER`). A refresh may
/// get a 503 during a gap (then the client retries the same token, and within
/// the reuse window gets the successor of a rotation whose answer it lost);
/// nothing else but a 200 is ever answered. After the three failovers every
/// session still rotates: none was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_failover_of_every_master_loses_no_session() {
    // No other test of this binary uses the cluster meanwhile: they would
    // see the 503s of the gaps.
    let _alone = CLUSTER_IN_USE.write().await;
    let Some(seeds) = common::redis_cluster::cluster() else {
        return;
    };
    let window = tower_jwt_auth::sessions::DEFAULT_REUSE_WINDOW;
    let cluster = Arc::new(redis_cluster_instances(window).await.expect("instances"));
    let rotating = Rotating::start(&cluster, 24).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let masters = seeds.master_ports();
    assert_eq!(masters.len(), 3);
    for port in masters {
        let promoted = tokio::task::spawn_blocking(move || seeds.fail_over(port))
            .await
            .expect("failover");
        eprintln!("failed over master {port} to {promoted}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (rotations, unavailable) = rotating.finish(&cluster).await;
    eprintln!(
        "Redis Cluster: 3 failovers under 24 rotating sessions: {rotations} rotations, \
         {unavailable} answers 503, 0 sessions lost"
    );
    assert!(rotations > 100, "the sessions kept rotating: {rotations}");
}

/// While 24 sessions (of 24 users, about 8 on each master) rotate on A and B,
/// every slot but one of a master moves to another and back (`redis-cli --cluster
/// reshard`): requests meet `ASK`,
/// `TRYAGAIN` (a script whose keys are split between the two nodes mid-move)
/// and `MOVED`. Nothing but a 200 or a 503 is answered, and every session
/// rotates after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_resharding_loses_no_session() {
    let _alone = CLUSTER_IN_USE.write().await;
    let Some(seeds) = common::redis_cluster::cluster() else {
        return;
    };
    let window = tower_jwt_auth::sessions::DEFAULT_REUSE_WINDOW;
    let cluster = Arc::new(redis_cluster_instances(window).await.expect("instances"));
    let rotating = Rotating::start(&cluster, 24).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let masters = seeds.master_ports();
    let (from, to) = (masters[0], masters[1]);
    // All but one: a master left without a slot would turn into a replica.
    let slots = seeds.slot_count(from) - 1;
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || {
        seeds.reshard(from, to, slots);
        seeds.reshard(to, from, slots);
    })
    .await
    .expect("reshard");
    let moved = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rotations, unavailable) = rotating.finish(&cluster).await;
    eprintln!(
        "Redis Cluster: {slots} slots moved there and back in {moved:?} under 24 rotating \
         sessions: {rotations} rotations, {unavailable} answers 503, 0 sessions lost"
    );
    assert!(rotations > 100, "the sessions kept rotating: {rotations}");
}

/// A master is killed (`SIGKILL`) while 24 sessions rotate on A and B, with
/// every write acknowledged by a replica before it is answered
/// (`replica_acks(1, 1 s)`). Until the replica takes over (the cluster's node
/// timeout, then an election: seconds), the refreshes of the users on that
/// master get 503 and are retried; nothing else but a 200 is answered, and
/// after the failover every session still rotates: no answered rotation was
/// lost with the dead master.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_a_killed_master_loses_no_acknowledged_rotation() {
    let _alone = CLUSTER_IN_USE.write().await;
    let Some(seeds) = common::redis_cluster::cluster() else {
        return;
    };
    if seeds.dir.is_none() {
        eprintln!("skipped: the nodes of an external cluster are not the test's to kill");
        return;
    }
    let window = tower_jwt_auth::sessions::DEFAULT_REUSE_WINDOW;
    let acked = |b: tower_jwt_auth::RedisStoreBuilder| b.replica_acks(1, Duration::from_secs(1));
    let cluster = Arc::new(
        redis_cluster_instances_with(window, acked)
            .await
            .expect("instances"),
    );
    let rotating = Rotating::start(&cluster, 24).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let victim = seeds.master_ports()[0];
    let started = std::time::Instant::now();
    let promoted = tokio::task::spawn_blocking(move || seeds.kill_master(victim))
        .await
        .expect("kill a master");
    eprintln!(
        "killed master {victim}; {promoted} took over, and {victim} rejoined, in {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rotations, unavailable) = rotating.finish(&cluster).await;
    eprintln!(
        "Redis Cluster: a master killed under 24 rotating sessions: {rotations} rotations, \
         {unavailable} answers 503, 0 sessions lost"
    );
    assert!(
        unavailable > 0,
        "the dead master's users waited for the failover"
    );
    assert!(rotations > 100, "the sessions kept rotating: {rotations}");
}

/// Sessions of as many users rotating over HTTP, each on A and B in turn,
/// until stopped; a 503 is retried with the same token after 50 ms, anything else
/// but a 200 fails the test.
struct Rotating {
    stop: Arc<std::sync::atomic::AtomicBool>,
    chains: Vec<JoinHandle<(String, u32, u32)>>,
}

impl Rotating {
    async fn start(cluster: &Arc<Cluster>, sessions: usize) -> Rotating {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut chains = Vec::new();
        for k in 0..sessions {
            let pair = cluster.login(k % 2, cluster.others[k]).await;
            let (cluster, stop) = (cluster.clone(), stop.clone());
            chains.push(tokio::spawn(async move {
                let (mut refresh, mut rotations, mut unavailable) = (pair.refresh, 0u32, 0u32);
                let mut k = k;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    k += 1;
                    let (status, body) = cluster.refresh(k % 2, &refresh).await;
                    match status {
                        StatusCode::OK => {
                            refresh = body["refresh"].as_str().expect("refresh").to_owned();
                            rotations += 1;
                        }
                        StatusCode::SERVICE_UNAVAILABLE => {
                            unavailable += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        other => panic!("a refresh answered {other}: {body}"),
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (refresh, rotations, unavailable)
            }));
        }
        Rotating { stop, chains }
    }

    /// Stops the chains and checks each session still rotates (on A):
    /// (rotations, 503 answers).
    async fn finish(self, cluster: &Cluster) -> (u32, u32) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut rotations, mut unavailable) = (0, 0);
        for chain in self.chains {
            let (refresh, r, u) = chain.await.expect("a chain ran through");
            rotations += r;
            unavailable += u;
            cluster.refresh_ok(A, &refresh).await;
        }
        (rotations, unavailable)
    }
}
