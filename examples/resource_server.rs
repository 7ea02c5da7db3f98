//! "My tokens come from Auth0 / Keycloak / Okta / Entra ID": an axum API that
//! issues no tokens of its own and accepts the access tokens of one OpenID
//! Provider, found by discovery, with scope and role checks.
//!
//! ```text
//! OIDC_ISSUER=https://your-tenant.eu.auth0.com/ OIDC_AUDIENCE=https://orders.example.com \
//!     cargo run --example resource_server
//! # Keycloak: roles live in realm_access.roles
//! OIDC_ISSUER=https://sso.example.com/realms/acme OIDC_AUDIENCE=orders-api \
//!     ROLES_CLAIM=realm_access.roles cargo run --example resource_server
//! ```
//!
//! `OIDC_ISSUER` and `OIDC_AUDIENCE` are required; `ROLES_CLAIM` (a
//! dot-separated path), `BIND` (default `127.0.0.1:3002`) and
//! `OIDC_ALLOW_HTTP=1` (a plain-HTTP provider on loopback, for tests) are
//! optional.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /api/public/` | 200 for anyone |
//! | `GET /api/claims/` | 200 `{"sub","iss","scope","roles","client_id"}` for any valid token, 401 otherwise |
//! | `GET /api/orders/` | scope `read` (any of `read`, `admin`), else 403 `insufficient_scope` |
//! | `GET /api/admin/` | role `admin` (from `ROLES_CLAIM`) or scope `admin`, else 403 |

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_jwt_auth::axum::{Authenticated, Authorized, Requirement};
use tower_jwt_auth::{Claims, JwtAuthLayer, NoCustomClaims, RequireClaims, TrustedIssuer};

/// Tokens of an administrator: the `admin` role or the `admin` scope.
struct Admin;

impl Requirement for Admin {
    const SCOPE: &'static str = "admin";
    fn allows(claims: &Claims) -> bool {
        claims.has_role("admin") || claims.has_scope("admin")
    }
}

async fn public() -> &'static str {
    "hello, anyone\n"
}

async fn whoami(Authenticated(claims): Authenticated) -> Json<Value> {
    Json(json!({
        "sub": claims.user_id(),
        "iss": claims.issuer(),
        "scope": claims.scopes().join(" "),
        "roles": claims.roles(),
        "client_id": claims.client_id(),
    }))
}

async fn orders(Authenticated(claims): Authenticated) -> Json<Value> {
    Json(json!({ "orders": [], "for": claims.user_id() }))
}

async fn admin(auth: Authorized<Admin>) -> Json<Value> {
    Json(json!({ "admin": auth.claims.user_id() }))
}

fn issuer() -> Result<TrustedIssuer, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let iss = var("OIDC_ISSUER").ok_or("set OIDC_ISSUER (the provider's `iss`)")?;
    let audience = var("OIDC_AUDIENCE").ok_or("set OIDC_AUDIENCE (this API's audience)")?;
    let mut builder = TrustedIssuer::discover(&iss).audience(&audience);
    if let Some(path) = var("ROLES_CLAIM") {
        builder = builder.roles_claim(&path);
    }
    if var("OIDC_ALLOW_HTTP").as_deref() == Some("1") {
        builder = builder.allow_http();
    }
    builder.build().map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let issuer = match issuer() {
        Ok(issuer) => issuer,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Fetch the keys now, so the first request does not wait; a provider that
    // is down is not fatal: requests answer 503 until its keys arrive.
    if let Err(e) = issuer.prefetch().await {
        eprintln!("warning: {e}");
    }
    let auth = JwtAuthLayer::<NoCustomClaims>::trusting(issuer);
    let readers = RequireClaims::<NoCustomClaims>::any_scope(&["read", "admin"]);
    let app = Router::new()
        .route("/api/claims/", get(whoami))
        .route("/api/admin/", get(admin))
        .route("/api/orders/", get(orders).route_layer(readers))
        .route_layer(auth)
        // Outside the layer: no token needed.
        .route("/api/public/", get(public));

    let bind: SocketAddr = std::env::var("BIND")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 3002)));
    let listener = match tokio::net::TcpListener::bind(bind).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("BIND: cannot listen on {bind}: {e}");
            return ExitCode::from(2);
        }
    };
    println!("listening on http://{}", listener.local_addr().unwrap());
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
