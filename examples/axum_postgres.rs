//! An axum app on PostgreSQL, as a newcomer would build it: sessions in
//! `PgStore`, users in the app's own table found by a UUID column beside the
//! integer key (`SqlUsers`), Argon2 passwords, login, refresh and logout
//! routes, an optional route, a role carried in the tokens, and JWKS.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --example axum_postgres
//! ```
//!
//! `DATABASE_URL` is required; `BIND` (default `127.0.0.1:3001`), `TABLE_PREFIX`
//! (default `app_`, for the users table and the store's tables) and
//! `JWT_PRIVATE_KEY_FILE` (an ES256 key in PEM: PKCS#8, or SEC1 from `openssl
//! ecparam -genkey`; default a key generated at start) are optional.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /api/users/` `{"username","password"}` | 201 `{"id"}` (the UUID); the first user is an admin |
//! | `POST /api/token/` `{"username","password"}` | 200 `{"access","refresh"}` |
//! | `POST /api/token/refresh/` `{"refresh"}` | 200 `{"access","refresh"}` |
//! | `POST /api/token/blacklist/` `{"refresh"}` | 200 `{}` |
//! | `GET /api/me/` | 200 `{"id","role"}` with a valid access token |
//! | `GET /api/hello/` | 200, a greeting for a signed-in user or a guest |
//! | `GET /api/admin/` | 200 for role `admin`, 403 otherwise |
//! | `GET /.well-known/jwks.json` | the public key |

use std::net::SocketAddr;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_jwt_auth::axum::Authenticated;
use tower_jwt_auth::sqlx::{self, PgPool, Row};
use tower_jwt_auth::store::sql::SqlStoreOptions;
use tower_jwt_auth::{
    Algorithm, DecoyHash, JwksEndpoint, Jwt, JwtAuthLayer, Key, LoggedIn, LoginEndpoint,
    LoginError, LoginRequest, PgStore, SessionEndpoint, Sessions, SqlUsers, StoreError,
};
use uuid::Uuid;

/// What the tokens carry besides the registered claims: the user's role, as
/// it was at login (see `Sessions::with_claims_refresh` to recompute it at
/// each refresh).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct AppClaims {
    role: String,
}

type AppSessions = Sessions<SqlUsers<Uuid>, AppClaims>;

#[derive(Clone)]
struct App {
    db: PgPool,
    users_table: String,
    decoy: DecoyHash,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL to a PostgreSQL URL")?;
    let prefix = std::env::var("TABLE_PREFIX").unwrap_or_else(|_| "app_".into());
    let bind: SocketAddr = std::env::var("BIND")
        .unwrap_or_else(|_| "127.0.0.1:3001".into())
        .parse()?;
    let db = PgPool::connect(&url).await?;

    // The app's users: an integer key, and the UUID the tokens carry.
    let users_table = format!("{prefix}users");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {users_table} (
            id BIGSERIAL PRIMARY KEY,
            public_id UUID NOT NULL UNIQUE,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL,
            is_active BOOLEAN NOT NULL DEFAULT TRUE)"
    )))
    .execute(&db)
    .await?;
    let users = SqlUsers::<Uuid>::builder(users_table.clone(), "public_id")
        .active_column("is_active")
        .postgres(db.clone())?;

    // Sessions in the same database, under the same prefix.
    let store = PgStore::with_options(db.clone(), SqlStoreOptions::new().table_prefix(&prefix))?;
    store.migrate().await?;
    let store = Arc::new(store);
    let jwt = Jwt::builder().signing_key(signing_key()?).build()?;
    let sessions: AppSessions = Sessions::new(jwt.clone(), store.clone(), Arc::new(users));

    let app = App {
        db,
        users_table,
        decoy: DecoyHash::new(hash("a password nobody has").ok_or("argon2 failed")?),
    };
    let auth = JwtAuthLayer::for_sessions(&sessions).revocation_check(store);
    let router = Router::new()
        .route("/api/me/", get(me).route_layer(auth.clone()))
        .route("/api/admin/", get(admin).route_layer(auth.clone()))
        .route("/api/hello/", get(hello).route_layer(auth.optional()))
        .route("/api/users/", post(register))
        .with_state(app.clone())
        .route_service("/api/token/", login(&app, sessions.clone()))
        .route_service(
            "/api/token/refresh/",
            SessionEndpoint::refresh(sessions.clone()),
        )
        .route_service("/api/token/blacklist/", SessionEndpoint::logout(sessions))
        .route_service("/.well-known/jwks.json", JwksEndpoint::new(jwt));
    let listener = tokio::net::TcpListener::bind(bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}

/// `JWT_PRIVATE_KEY_FILE`, or a new ES256 key.
fn signing_key() -> Result<Key, Box<dyn std::error::Error>> {
    let pem = match std::env::var("JWT_PRIVATE_KEY_FILE") {
        Ok(path) => std::fs::read(path)?,
        Err(_) => {
            use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| "key generation failed")?;
            let der = pair.to_pkcs8v1().map_err(|_| "key encoding failed")?;
            let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
            let lines: Vec<&str> = b64
                .as_bytes()
                .chunks(64)
                .map(|c| std::str::from_utf8(c).unwrap_or_default())
                .collect();
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                lines.join("\n")
            );
            eprintln!(
                "JWT_PRIVATE_KEY_FILE is not set: a new ES256 key (tokens end with the process)"
            );
            pem.into_bytes()
        }
    };
    Ok(Key::from_private_pem("es256-1", Algorithm::ES256, pem)?)
}

/// An Argon2id hash of `password` (PHC string).
fn hash(password: &str) -> Option<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .ok()
        .map(|h| h.to_string())
}

/// Whether `password` matches the PHC string `phc`, off the async threads.
async fn verify(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// `POST /api/token/`: the user by username, the password (an unknown user's
/// against the decoy), active accounts only; the role goes into the tokens.
fn login(app: &App, sessions: AppSessions) -> LoginEndpoint<SqlUsers<Uuid>, AppClaims> {
    let app = app.clone();
    LoginEndpoint::new(sessions, move |req: LoginRequest| {
        let app = app.clone();
        async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT public_id, password_hash, role, is_active FROM {} WHERE username = $1",
                app.users_table
            )))
            .bind(&req.username)
            .fetch_optional(&app.db)
            .await
            .map_err(|e| LoginError::Unavailable(StoreError::with_source("users table", e)))?;
            let found = row.map(|r| {
                let (id, hash): (Uuid, String) = (r.get(0), r.get(1));
                let (role, active): (String, bool) = (r.get(2), r.get(3));
                (id, hash, role, active)
            });
            let hash = found.as_ref().map(|f| f.1.clone());
            let password = req.password;
            let matches = app.decoy.verify(hash, |phc| verify(password, phc)).await;
            match found {
                Some((id, _, role, true)) if matches => {
                    Ok(LoggedIn::user(id).with_claims(AppClaims { role }))
                }
                _ => Err(LoginError::BadCredentials),
            }
        }
    })
}

#[derive(Deserialize)]
struct NewUser {
    username: String,
    password: String,
}

/// `POST /api/users/`: a new user; the first one is an admin.
async fn register(State(app): State<App>, Json(new): Json<NewUser>) -> Response {
    if new.username.is_empty() || new.password.len() < 8 {
        let error = json!({ "error": "invalid_request", "error_description": "a username and a password of 8 characters or more" });
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let Some(hash) = hash(&new.password) else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let id = Uuid::new_v4();
    let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {t} (public_id, username, password_hash, role)
         VALUES ($1, $2, $3, CASE WHEN EXISTS (SELECT 1 FROM {t}) THEN 'user' ELSE 'admin' END)",
        t = app.users_table
    )))
    .bind(id)
    .bind(&new.username)
    .bind(hash)
    .execute(&app.db)
    .await;
    match inserted {
        Ok(_) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(e)
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            let error = json!({ "error": "taken", "error_description": "the username is taken" });
            (StatusCode::CONFLICT, Json(error)).into_response()
        }
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// `GET /api/me/`: who the token names.
async fn me(Authenticated(claims): Authenticated<AppClaims>) -> Json<serde_json::Value> {
    Json(json!({ "id": claims.user_id(), "role": claims.custom().role }))
}

/// `GET /api/hello/`: open to guests; a token that is sent must be valid (an
/// expired one is 401, so the client knows to refresh).
async fn hello(auth: Option<Authenticated<AppClaims>>) -> String {
    match auth {
        Some(Authenticated(claims)) => format!("hello {}", claims.user_id()),
        None => "hello guest".into(),
    }
}

/// `GET /api/admin/`: admins only.
async fn admin(Authenticated(claims): Authenticated<AppClaims>) -> Response {
    if claims.custom().role == "admin" {
        Json(json!({ "admin": true })).into_response()
    } else {
        let error = json!({ "error": "insufficient_role", "error_description": "admins only" });
        (StatusCode::FORBIDDEN, Json(error)).into_response()
    }
}
