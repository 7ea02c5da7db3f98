//! Tokens from an outside identity provider (`OIDC_ISSUER`), beside the
//! server's own:
//!
//! | route | token | success |
//! | --- | --- | --- |
//! | `GET /api/claims/` | any accepted token, own or outside | 200 `{"sub","iss","scope","local"}` |
//! | `GET /api/admin/` | scope `admin` | 200 `{"sub","iss"}`; 403 `insufficient_scope` without it |
//!
//! `/api/me/` stays for the server's own users: its layer resolves users, so
//! it refuses outside tokens. Own tokens on these routes get the revocation
//! check; outside ones have no session here (the provider revokes them).

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tower_jwt_auth::axum::{Authenticated, Authorized, Requirement};
use tower_jwt_auth::{Claims, JwtAuthLayer, Sessions, TrustedIssuer};

use crate::config::Oidc;
use crate::errors::method_not_allowed;
use crate::users::Users;

/// The outside issuer `OIDC_ISSUER` names, found by OpenID Connect discovery.
pub fn issuer(oidc: &Oidc) -> Result<TrustedIssuer, String> {
    let mut builder = TrustedIssuer::discover(&oidc.issuer).audience(&oidc.audience);
    if oidc.allow_http {
        builder = builder.allow_http();
    }
    builder.build().map_err(|e| format!("OIDC_ISSUER: {e}"))
}

/// `/api/claims/` and `/api/admin/`, accepting the server's own tokens and,
/// when one is configured, the outside issuer's.
pub fn routes(sessions: &Sessions<Users>, issuer: Option<TrustedIssuer>) -> Router {
    let mut auth = JwtAuthLayer::for_sessions(sessions).revocation_check(sessions.store().clone());
    if let Some(issuer) = issuer {
        auth = auth.trust(issuer);
    }
    Router::new()
        .route(
            "/api/claims/",
            get(claims)
                .route_layer(auth.clone())
                .fallback(|| async { method_not_allowed("GET, HEAD") }),
        )
        .route(
            "/api/admin/",
            get(admin)
                .route_layer(auth)
                .fallback(|| async { method_not_allowed("GET, HEAD") }),
        )
}

/// Tokens granting the `admin` scope.
struct AdminScope;

impl Requirement for AdminScope {
    const SCOPE: &'static str = "admin";
    fn allows(claims: &Claims) -> bool {
        claims.has_scope("admin")
    }
}

/// `GET /api/claims/`: who the token names and who issued it.
async fn claims(Authenticated(claims): Authenticated) -> Json<Value> {
    Json(json!({
        "sub": claims.user_id(),
        "iss": claims.issuer(),
        "scope": claims.scopes().join(" "),
        "local": claims.is_local(),
    }))
}

/// `GET /api/admin/`: only with scope `admin`.
async fn admin(auth: Authorized<AdminScope>) -> Json<Value> {
    Json(json!({ "sub": auth.claims.user_id(), "iss": auth.claims.issuer() }))
}
