//! The example server: SimpleJWT's default URLs and JSON shapes on axum, with
//! refresh-token rotation, reuse detection and revocation done by tower-jwt-auth.
//!
//! ```text
//! cargo run --example server
//! ```
//!
//! With nothing set it keeps users and sessions in the SQLite file
//! `tower-jwt-auth-example.db` in the working directory (created and migrated at
//! start), listens on 127.0.0.1:3000 and prints a quick start of curl lines.
//! Routes: see [`routes`]. Configuration, all optional (see [`config`]):
//!
//! | variable | default |
//! | --- | --- |
//! | `BIND` | `127.0.0.1:3000` (port 0: any free port; the real one is printed) |
//! | `DATABASE_URL` | `sqlite://tower-jwt-auth-example.db`; `postgres://...`, `mysql://...` or `memory` |
//! | `REDIS_URL` | unset; when set, sessions live in Redis (users stay in `DATABASE_URL`) |
//! | `REDIS_CLUSTER_URLS` | unset; comma-separated seed nodes (`redis://host:port/`) of a Redis Cluster that holds the sessions instead |
//! | `JWT_ALG` | `HS256`; also `HS384`, `HS512`, `ES256`, `ES384`, `EdDSA`, `RS256` |
//! | `JWT_SECRET` | for HS*: at least 32 bytes; unset: a random secret (tokens die with the process) |
//! | `JWT_PRIVATE_KEY_FILE` | for ES*/EdDSA/RS256: a PEM private key; unset: a generated key pair |
//! | `JWT_KID`, `JWT_ISSUER`, `JWT_AUDIENCE` | `main` (generated keys get a random kid), none, none |
//! | `ACCESS_TTL_SECS`, `REFRESH_TTL_SECS` | 300, 86400 |
//! | `SESSION_MAX_AGE_SECS` | 30 days: no rotation extends a session past it |
//! | `REUSE_GRACE_SECS` | 10: the reuse window; a spent refresh token presented again within it gets its unused successor again (a lost answer, two tabs); 0: strict single use |
//! | `TABLE_PREFIX` | none: tables `users` and `jwt_auth_*` (Redis keys too) |
//! | `OIDC_ISSUER`, `OIDC_AUDIENCE` | unset; when set, access tokens of that OpenID Provider (found by discovery) are accepted too, on `/api/claims/` and `/api/admin/` (see [`outside`]); `OIDC_ALLOW_HTTP=1` allows a plain-HTTP provider on loopback |
//! | `METRICS_BIND` | unset; when set (e.g. `127.0.0.1:9100`), `GET /metrics` in Prometheus text format on that address (see [`metrics`]) |
//! | `RUST_LOG` | `info,sqlx=warn` (requests are logged by method, path and status only) |
//!
//! A configuration that cannot work stops the server at start with one line on
//! stderr and exit code 2. Ctrl-C or SIGTERM stop it gracefully: requests in
//! flight finish (for at most 30 seconds).

mod body;
mod browser;
mod config;
mod errors;
mod keys;
mod login;
mod metrics;
mod outside;
mod routes;
mod users;

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower_jwt_auth::events::{EventKind, SessionEvent};
use tower_jwt_auth::{
    Jwt, MemoryStore, MySqlStore, PgStore, PurgeTask, RedisStore, RevocationLog, RevocationView,
    Sessions, SqlStoreOptions, SqliteStore, StoreError, TokenStore, UserCache,
};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, ConfigError, Database};
use crate::metrics::MetricsServer;
use crate::routes::AppState;
use crate::users::{Passwords, Profiles, Users};

/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How often expired sessions and tokens are purged from the store.
const PURGE_EVERY: Duration = Duration::from_secs(600);
/// How long `/api/me/` remembers a user (a deactivation made in the database
/// is seen within this; a revoke-all at once).
const USER_CACHE_TTL: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    tune_malloc();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return startup_failed(&e),
    };
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return startup_failed(&ConfigError(format!("cannot start the async runtime: {e}")));
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal::Startup(e)) => startup_failed(&e),
        Err(Fatal::Serve(e)) => {
            eprintln!("error: the server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Keeps the server's memory flat across logins, on glibc.
///
/// Each Argon2 hash takes a 19 MiB block. glibc's malloc serves blocks that
/// large with `mmap` and gives them back at `free`, but then raises its mmap
/// threshold to the size just freed: every later hash is carved from a malloc
/// heap instead, and the heaps of the runtime's blocking threads keep what was
/// freed. Measured on this server (release build, 48 logins, 16 at a time):
/// 31 MiB of RSS at start, 694 MiB after. With the threshold pinned (which
/// also turns the dynamic adjustment off) large blocks stay mapped and unmapped
/// each time: 12 MiB at start, 14 MiB after. `scripts/loadtest.sh` tracks RSS
/// under load. Other allocators (musl's, jemalloc, mimalloc) need nothing here.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets a malloc tuning parameter; it is called once,
    // first thing in `main`, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// One clear line, exit code 2.
fn startup_failed(e: &ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

enum Fatal {
    Startup(ConfigError),
    Serve(std::io::Error),
}

impl From<ConfigError> for Fatal {
    fn from(e: ConfigError) -> Self {
        Fatal::Startup(e)
    }
}

fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            Targets::new()
                .with_default(Level::INFO)
                .with_target("sqlx", Level::WARN)
        });
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    tracing_subscriber::registry().with(fmt).with(filter).init();
}

async fn run(config: Config) -> Result<(), Fatal> {
    // First, so that every metric recorded from here on is exported.
    let metrics = match config.metrics_bind {
        Some(bind) => Some(MetricsServer::start(bind).await?),
        None => None,
    };
    let signing = keys::signing_key(config.alg, &config.key, config.kid.as_deref())?;
    let mut jwt = Jwt::builder()
        .signing_key(signing.key)
        .access_ttl(config.access_ttl)
        .refresh_ttl(config.refresh_ttl);
    if let Some(age) = config.session_max_age {
        jwt = jwt.session_max_age(age);
    }
    if let Some(iss) = &config.issuer {
        jwt = jwt.issuer(iss.clone());
    }
    if let Some(aud) = &config.audience {
        jwt = jwt.audience(aud.clone());
    }
    let jwt = jwt
        .build()
        .map_err(|e| ConfigError(format!("token configuration: {e}")))?;

    let (backend, users) = open_storage(&config).await?;
    let store: Arc<dyn TokenStore> = backend.clone();
    // Logouts refused on every instance without a store call per request:
    // the view follows the store's revocation log, and a revoke-all drops the
    // user from the user cache.
    let user_cache = UserCache::new(Arc::new(Profiles(users.clone())), USER_CACHE_TTL);
    let forget = user_cache.clone();
    let view = RevocationView::builder(backend)
        .on_user_revoked(move |user| forget.invalidate_value(user))
        .start();
    let sessions = Sessions::new(jwt, store.clone(), Arc::new(users.clone()))
        .with_revocation_view(view.clone())
        .with_reuse_grace(config.reuse_grace)
        .map_err(|e| ConfigError(format!("REUSE_GRACE_SECS: {e}")))?
        .with_events(on_session_event);
    let passwords = Passwords::new(4);
    let warm = passwords.clone();
    tokio::task::spawn_blocking(move || warm.warm_up());
    // Expired sessions and tokens go away without a cron job (SimpleJWT needs one).
    let purge = PurgeTask::start(store, PURGE_EVERY);

    let cookie = browser::cookie(config.public_origin.as_deref())
        .map_err(|e| ConfigError(format!("PUBLIC_ORIGIN: {e}")))?;
    let issuer = match &config.oidc {
        Some(oidc) => Some(outside::issuer(oidc).map_err(ConfigError)?),
        None => None,
    };
    let outside_routes = outside::routes(&sessions, issuer);
    let app = routes::app(
        AppState {
            sessions,
            users,
            passwords,
            view,
            user_cache,
        },
        cookie,
        outside_routes,
    );
    let listener = TcpListener::bind(config.bind)
        .await
        .map_err(|e| ConfigError(format!("BIND: cannot listen on {}: {e}", config.bind)))?;
    let addr = listener.local_addr().map_err(Fatal::Serve)?;

    if let Some(warning) = &signing.warning {
        eprintln!("warning: {warning}");
    }
    print_quick_start(addr, metrics.as_ref().map(|m| m.addr), &config);
    tracing::info!(%addr, "listening");

    let stopping = Arc::new(Notify::new());
    let serve =
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal(stopping.clone()));
    let deadline = async {
        stopping.notified().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = serve => result.map_err(Fatal::Serve)?,
        () = deadline => tracing::warn!("requests still in flight after {SHUTDOWN_GRACE:?}; stopping anyway"),
    }
    if let Some(metrics) = metrics {
        metrics.stop();
    }
    let purged = purge.stop().await;
    tracing::info!(?purged, "stopped");
    Ok(())
}

/// The session-event hook: the crate has already logged each event at its
/// level (target `tower_jwt_auth::events`); this is where an app alerts on the
/// one that matters, a replayed refresh token, the sign of a stolen one. It runs
/// off the request path, so it could send an e-mail or page someone.
fn on_session_event(event: &SessionEvent) {
    if matches!(event.kind, EventKind::ReuseDetected) {
        tracing::warn!(
            target: "server::alerts",
            user = %event.user_id,
            session = event.session_id.map(tracing::field::display),
            "security alert: a spent refresh token was replayed; the session is revoked and its holder must log in again"
        );
    }
}

/// The token store and the users table, in the configured database (sessions in
/// Redis instead when `REDIS_URL` is set). Tables are created or migrated here.
/// A token store that also keeps a revocation log: every store here does.
trait Backend: TokenStore + RevocationLog {}
impl<T: TokenStore + RevocationLog> Backend for T {}

async fn open_storage(config: &Config) -> Result<(Arc<dyn Backend>, Users), ConfigError> {
    let prefix = &config.table_prefix;
    let options = SqlStoreOptions::new().table_prefix(format!("{prefix}jwt_auth_"));
    let where_ = config.database.display();
    let unreachable = |e: StoreError| {
        ConfigError(format!(
            "cannot open the database {where_}: {}",
            store_chain(&e)
        ))
    };
    let users_failed = |e: sqlx::Error| {
        ConfigError(format!(
            "cannot create the users table in {where_}: {}",
            chain(&e)
        ))
    };
    let migrate_failed = |e: StoreError| {
        ConfigError(format!(
            "cannot migrate the token tables in {where_}: {}",
            store_chain(&e)
        ))
    };
    let tokens_in_sql = config.redis.is_none();

    let (sql_store, users): (Option<Arc<dyn Backend>>, Users) = match &config.database {
        Database::Memory => (Some(Arc::new(MemoryStore::new())), Users::memory()),
        Database::Sqlite(url) => {
            let store = SqliteStore::connect_with(url, options)
                .await
                .map_err(unreachable)?;
            let users = Users::sqlite(store.pool().clone(), prefix)
                .await
                .map_err(users_failed)?;
            if tokens_in_sql {
                store.migrate().await.map_err(migrate_failed)?;
            }
            (Some(Arc::new(store)), users)
        }
        Database::Postgres(url) => {
            let store = PgStore::connect_with(url, options)
                .await
                .map_err(unreachable)?;
            let users = Users::postgres(store.pool().clone(), prefix)
                .await
                .map_err(users_failed)?;
            if tokens_in_sql {
                store.migrate().await.map_err(migrate_failed)?;
            }
            (Some(Arc::new(store)), users)
        }
        Database::MySql(url) => {
            let store = MySqlStore::connect_with(url, options)
                .await
                .map_err(unreachable)?;
            let users = Users::mysql(store.pool().clone(), prefix)
                .await
                .map_err(users_failed)?;
            if tokens_in_sql {
                store.migrate().await.map_err(migrate_failed)?;
            }
            (Some(Arc::new(store)), users)
        }
    };
    let store = match &config.redis {
        None => sql_store.ok_or_else(|| ConfigError("no token store".into()))?,
        Some(target) => {
            let builder = RedisStore::builder().key_prefix(format!("{prefix}jwt_auth"));
            let builder = match target {
                config::Redis::Node(url) => builder.url(url.clone()),
                config::Redis::Cluster(urls) => builder.cluster_urls(urls.clone()),
            };
            let redis = builder.build().await.map_err(|e| {
                ConfigError(format!(
                    "cannot reach Redis at {}: {}",
                    target.describe(),
                    store_chain(&e)
                ))
            })?;
            Arc::new(redis) as Arc<dyn Backend>
        }
    };
    Ok((store, users))
}

/// A store error's message and its sources on one line (without the generic
/// "token store unavailable" of its `Display`, which says nothing at start-up).
fn store_chain(e: &StoreError) -> String {
    match std::error::Error::source(e) {
        Some(source) => format!("{}: {}", e.message(), chain(source)),
        None => e.message().to_owned(),
    }
}

/// An error and its sources on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out.replace('\n', " ")
}

/// Resolves on Ctrl-C or SIGTERM, and tells `stopping`.
async fn shutdown_signal(stopping: Arc<Notify>) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
    stopping.notify_one();
}

/// Prints where the server listens and a quick start: curl lines for register,
/// login, me, refresh and logout, against the real address.
fn print_quick_start(addr: SocketAddr, metrics: Option<SocketAddr>, config: &Config) {
    let host = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    };
    let base = format!("http://{host}");
    let sessions = if let Some(config::Redis::Cluster(_)) = &config.redis {
        "a Redis Cluster"
    } else if config.redis.is_some() {
        "Redis"
    } else {
        "the database"
    };
    let json = "-H 'Content-Type: application/json'";
    let creds = r#"'{"username":"alice","password":"correct horse battery staple"}'"#;
    println!("tower-jwt-auth example server: listening on {base}");
    println!(
        "  database: {} (sessions in {sessions}), tokens: {:?}",
        config.database.display(),
        config.alg
    );
    if let Some(m) = metrics {
        println!("  metrics: http://{m}/metrics (Prometheus text format)");
    }
    println!();
    println!("Quick start, in another terminal:");
    println!("  curl -s -X POST {base}/api/users/ {json} -d {creds}");
    println!("  TOKENS=$(curl -s -X POST {base}/api/token/ {json} -d {creds}); echo \"$TOKENS\"");
    println!(
        "  ACCESS=$(echo \"$TOKENS\" | sed -E 's/.*\"access\":\"([^\"]+)\".*/\\1/'); REFRESH=$(echo \"$TOKENS\" | sed -E 's/.*\"refresh\":\"([^\"]+)\".*/\\1/')"
    );
    println!("  curl -s {base}/api/me/ -H \"Authorization: Bearer $ACCESS\"");
    println!("  curl -s {base}/api/sessions/ -H \"Authorization: Bearer $ACCESS\"");
    println!(
        "  curl -s -X POST {base}/api/token/refresh/ {json} -d \"{{\\\"refresh\\\":\\\"$REFRESH\\\"}}\""
    );
    println!(
        "  curl -s -X POST {base}/api/token/blacklist/ {json} -d \"{{\\\"refresh\\\":\\\"$REFRESH\\\"}}\""
    );
    println!();
}
