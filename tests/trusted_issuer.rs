//! Trusted issuers with static keys: outside tokens (Keycloak-shaped, signed
//! here) beside the app's own, by the layer's rules, and authorization by
//! scope and role with 403 `insufficient_scope`.

#[path = "common/outside.rs"]
mod outside;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::Algorithm;
use outside::*;
use serde_json::{Value, json};
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};
use tower_jwt_auth::axum::{Authenticated, Authorized, Requirement};
use tower_jwt_auth::conformance::test_jwt;
use tower_jwt_auth::{
    Claims, JwtAuthLayer, Key, MemoryUsers, NoCustomClaims, RequireClaims, TrustedIssuer,
};
use uuid::Uuid;

type Req = RequireClaims<NoCustomClaims>;

const ISS: &str = "https://sso.example.com/realms/acme";
const AUD: &str = "orders-api";

type Body = Full<Bytes>;

fn keycloak() -> TrustedIssuer {
    TrustedIssuer::with_keys(
        ISS,
        [
            Key::from_public_pem("kc-es", Algorithm::ES256, ES256_PUB_PEM).unwrap(),
            Key::from_public_pem("kc-rs", Algorithm::RS256, RS256_PUB_PEM).unwrap(),
        ],
    )
    .audience(AUD)
    .roles_claim("realm_access.roles")
    .build()
    .unwrap()
}

fn get_req(token: &str) -> Request<Body> {
    Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::default())
        .unwrap()
}

/// Echoes what the layer put into the request.
fn echo()
-> impl tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send {
    service_fn(|req: Request<Body>| async move {
        let c = req.extensions().get::<Claims>().unwrap();
        let body = json!({
            "sub": c.user_id(),
            "iss": c.issuer(),
            "local": c.is_local(),
            "scopes": c.scopes(),
            "roles": c.roles(),
            "client_id": c.client_id(),
        });
        Ok::<_, Infallible>(Response::new(Body::from(body.to_string())))
    })
}

async fn call(
    svc: impl tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    token: &str,
) -> (StatusCode, Value, Option<String>) {
    let res = svc.oneshot(get_req(token)).await.unwrap();
    let status = res.status();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        challenge,
    )
}

#[tokio::test]
async fn outside_tokens_are_accepted_beside_the_apps_own() {
    let jwt = test_jwt();
    let svc = JwtAuthLayer::new(jwt.clone())
        .trust(keycloak())
        .layer(echo());

    let claims = keycloak_claims(ISS, AUD, "orders:read profile", &["user", "auditor"]);
    for (alg, pem, kid) in [
        (Algorithm::ES256, ES256_PEM, "kc-es"),
        (Algorithm::RS256, RS256_PEM, "kc-rs"),
    ] {
        let token = sign(alg, pem, kid, Some("JWT"), &claims);
        let (status, body, _) = call(svc.clone(), &token).await;
        assert_eq!(status, StatusCode::OK, "{alg:?}: {body}");
        assert_eq!(body["sub"], "f3a1c9e2-5b7d-4e2a-8c1f-9d0e6b4a2c11");
        assert_eq!(body["iss"], ISS);
        assert_eq!(body["local"], false);
        assert_eq!(body["scopes"], json!(["orders:read", "profile"]));
        assert_eq!(body["roles"], json!(["user", "auditor"]));
        assert_eq!(body["client_id"], "orders-web");
    }

    // The app's own tokens still pass, as local ones.
    let (own, _) = jwt
        .issue_access("7", Uuid::new_v4(), &NoCustomClaims)
        .unwrap();
    let (status, body, _) = call(svc.clone(), &own).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["local"], true);
    assert_eq!(body["roles"], json!([]));
}

#[tokio::test]
async fn outside_tokens_are_judged_by_their_issuers_rules() {
    let svc = JwtAuthLayer::new(test_jwt())
        .trust(keycloak())
        .layer(echo());
    let good = keycloak_claims(ISS, AUD, "orders:read", &["user"]);
    let refused = |token: String, why: &'static str| {
        let svc = svc.clone();
        async move {
            let (status, body, challenge) = call(svc, &token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
            assert_eq!(body["error"], "invalid_token", "{why}");
            assert!(challenge.unwrap().contains("invalid_token"), "{why}");
        }
    };

    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("billing-api");
    refused(
        sign(Algorithm::ES256, ES256_PEM, "kc-es", None, &wrong_aud),
        "wrong audience",
    )
    .await;

    let mut expired = good.clone();
    expired["exp"] = json!(now() - 120);
    refused(
        sign(Algorithm::ES256, ES256_PEM, "kc-es", None, &expired),
        "expired",
    )
    .await;

    let mut no_sub = good.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    refused(
        sign(Algorithm::ES256, ES256_PEM, "kc-es", None, &no_sub),
        "no sub",
    )
    .await;

    // A token of another provider that claims this issuer: its key is not ours.
    refused(
        sign(Algorithm::ES256, ES256_B_PEM, "kc-es", None, &good),
        "another key",
    )
    .await;

    // Tampered: the payload changed after signing.
    let token = sign(Algorithm::ES256, ES256_PEM, "kc-es", None, &good);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut forged = good.clone();
    forged["realm_access"]["roles"] = json!(["admin"]);
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
    refused(parts.join("."), "tampered").await;

    // Algorithm confusion: HS256 keyed with the public key's bytes, under an
    // RSA and an EC key's kid: an asymmetric key never verifies HMAC.
    refused(
        sign_hs256(RS256_PUB_PEM, "kc-rs", &good),
        "HS256 with the RSA public key",
    )
    .await;
    refused(
        sign_hs256(ES256_PUB_PEM, "kc-es", &good),
        "HS256 with the EC public key",
    )
    .await;

    // A kid the issuer does not have, and no kid at all.
    refused(
        sign(Algorithm::ES256, ES256_PEM, "kc-other", None, &good),
        "unknown kid",
    )
    .await;

    // An unknown issuer goes to the app's own rules, which refuse it.
    let mut other_iss = good.clone();
    other_iss["iss"] = json!("https://evil.example.com/");
    refused(
        sign(Algorithm::ES256, ES256_PEM, "kc-es", None, &other_iss),
        "unknown iss",
    )
    .await;
}

#[tokio::test]
async fn keys_in_the_token_header_are_never_used() {
    let svc = JwtAuthLayer::new(test_jwt())
        .trust(keycloak())
        .layer(echo());
    let good = keycloak_claims(ISS, AUD, "orders:read", &["user"]);
    let token = sign(Algorithm::ES256, ES256_PEM, "kc-es", None, &good);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for (name, value) in [
        ("jku", json!("https://evil.example.com/jwks")),
        ("x5u", json!("https://evil.example.com/cert")),
        ("jwk", json!({"kty": "oct", "k": "AAAA"})),
        ("x5c", json!(["MIIB"])),
    ] {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut header: Value = serde_json::from_slice(&b64.decode(&parts[0]).unwrap()).unwrap();
        header[name] = value;
        parts[0] = b64.encode(header.to_string());
        let (status, body, _) = call(svc.clone(), &parts.join(".")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
    }
}

#[tokio::test]
async fn rfc9068_typing_is_required_when_asked() {
    let strict = TrustedIssuer::with_keys(
        ISS,
        [Key::from_public_pem("kc-es", Algorithm::ES256, ES256_PUB_PEM).unwrap()],
    )
    .audience(AUD)
    .require_at_jwt()
    .build()
    .unwrap();
    let svc = JwtAuthLayer::new(test_jwt()).trust(strict).layer(echo());
    let claims = keycloak_claims(ISS, AUD, "", &[]);
    for (typ, want) in [
        (Some("at+jwt"), StatusCode::OK),
        (Some("application/at+JWT"), StatusCode::OK),
        (Some("JWT"), StatusCode::UNAUTHORIZED),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let token = sign(Algorithm::ES256, ES256_PEM, "kc-es", typ, &claims);
        assert_eq!(call(svc.clone(), &token).await.0, want, "typ {typ:?}");
    }
}

#[tokio::test]
async fn a_resource_server_trusts_only_its_issuers() {
    let svc = JwtAuthLayer::<NoCustomClaims>::trusting(keycloak()).layer(echo());
    let outside = sign(
        Algorithm::ES256,
        ES256_PEM,
        "kc-es",
        None,
        &keycloak_claims(ISS, AUD, "", &[]),
    );
    assert_eq!(call(svc.clone(), &outside).await.0, StatusCode::OK);
    // A token of some other Jwt (the test one) is refused: there is no own issuer.
    let (own, _) = test_jwt()
        .issue_access("7", Uuid::new_v4(), &NoCustomClaims)
        .unwrap();
    assert_eq!(call(svc, &own).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_layer_that_resolves_users_refuses_outside_tokens() {
    let users = Arc::new(MemoryUsers::<String, ()>::new());
    users.insert("f3a1c9e2-5b7d-4e2a-8c1f-9d0e6b4a2c11".into(), ());
    let svc = JwtAuthLayer::new(test_jwt())
        .trust(keycloak())
        .resolve_user(users)
        .layer(echo());
    let outside = sign(
        Algorithm::ES256,
        ES256_PEM,
        "kc-es",
        None,
        &keycloak_claims(ISS, AUD, "", &[]),
    );
    let (status, body, _) = call(svc, &outside).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

fn admin_only()
-> impl tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    ServiceBuilder::new()
        .layer(JwtAuthLayer::new(test_jwt()).trust(keycloak()))
        .layer(RequireClaims::<NoCustomClaims>::any_role(&["admin", "ops"]))
        .service(echo())
}

#[tokio::test]
async fn roles_and_scopes_are_required_with_403_insufficient_scope() {
    let token = |scope: &str, roles: &[&str]| {
        sign(
            Algorithm::ES256,
            ES256_PEM,
            "kc-es",
            None,
            &keycloak_claims(ISS, AUD, scope, roles),
        )
    };
    // Any of the roles.
    assert_eq!(
        call(admin_only(), &token("", &["ops"])).await.0,
        StatusCode::OK
    );
    let (status, body, challenge) = call(admin_only(), &token("", &["user"])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(
        challenge.unwrap(),
        r#"Bearer realm="api", error="insufficient_scope", scope="admin ops""#
    );
    // A bad token is still 401, never 403.
    assert_eq!(
        call(admin_only(), "not.a.token").await.0,
        StatusCode::UNAUTHORIZED
    );

    let cases: [(Req, &str, &[&str], StatusCode); 6] = [
        (
            Req::all_roles(&["user", "auditor"]),
            "",
            &["user", "auditor"],
            StatusCode::OK,
        ),
        (
            Req::all_roles(&["user", "auditor"]),
            "",
            &["user"],
            StatusCode::FORBIDDEN,
        ),
        (
            Req::any_scope(&["orders:write", "orders:admin"]),
            "orders:admin",
            &[],
            StatusCode::OK,
        ),
        (
            Req::any_scope(&["orders:write"]),
            "orders:read",
            &[],
            StatusCode::FORBIDDEN,
        ),
        (Req::all_scopes(&["a", "b"]), "b a c", &[], StatusCode::OK),
        (
            Req::all_scopes(&["a", "b"]),
            "a c",
            &[],
            StatusCode::FORBIDDEN,
        ),
    ];
    for (require, scope, roles, want) in cases {
        let svc = ServiceBuilder::new()
            .layer(JwtAuthLayer::new(test_jwt()).trust(keycloak()))
            .layer(require)
            .service(echo());
        assert_eq!(
            call(svc, &token(scope, roles)).await.0,
            want,
            "{scope:?} {roles:?}"
        );
    }

    // A predicate on the claims, from the layer (its realm included).
    let auth = JwtAuthLayer::new(test_jwt())
        .trust(keycloak())
        .realm("orders");
    let svc = ServiceBuilder::new()
        .layer(auth.clone())
        .layer(auth.require("orders-web", |c| c.client_id() == Some("orders-web")))
        .service(echo());
    assert_eq!(call(svc, &token("", &[])).await.0, StatusCode::OK);
    let svc = ServiceBuilder::new()
        .layer(auth.clone())
        .layer(auth.require("billing-web", |c| c.client_id() == Some("billing-web")))
        .service(echo());
    let (status, _, challenge) = call(svc, &token("", &[])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        challenge
            .unwrap()
            .starts_with(r#"Bearer realm="orders", error="insufficient_scope""#)
    );
}

#[tokio::test]
async fn a_requirement_without_a_layer_in_front_refuses() {
    let svc = ServiceBuilder::new()
        .layer(Req::any_scope(&["read"]))
        .service(echo());
    let res = svc.oneshot(get_req("whatever")).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

struct OrdersWrite;
impl Requirement for OrdersWrite {
    const SCOPE: &'static str = "orders:write";
    fn allows(claims: &Claims) -> bool {
        claims.has_scope("orders:write")
    }
}

#[tokio::test]
async fn the_authorized_extractor_answers_403_for_a_missing_scope() {
    async fn write(auth: Authorized<OrdersWrite>) -> String {
        auth.claims.user_id().to_owned()
    }
    async fn me(Authenticated(claims): Authenticated) -> String {
        claims.user_id().to_owned()
    }
    let app = Router::new()
        .route("/write", get(write))
        .route("/me", get(me))
        .layer(JwtAuthLayer::new(test_jwt()).trust(keycloak()).optional());
    let token = |scope: &str| {
        sign(
            Algorithm::ES256,
            ES256_PEM,
            "kc-es",
            None,
            &keycloak_claims(ISS, AUD, scope, &[]),
        )
    };
    let send = |path: &'static str, token: Option<String>| {
        let app = app.clone();
        async move {
            let mut req = Request::get(path);
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let res = app
                .oneshot(req.body(axum::body::Body::empty()).unwrap())
                .await
                .unwrap();
            let challenge = res
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            (res.status(), challenge)
        }
    };
    assert_eq!(
        send("/write", Some(token("orders:write"))).await.0,
        StatusCode::OK
    );
    let (status, challenge) = send("/write", Some(token("orders:read"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge.unwrap(),
        r#"Bearer realm="api", error="insufficient_scope", scope="orders:write""#
    );
    assert_eq!(send("/write", None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send("/me", Some(token("orders:read"))).await.0,
        StatusCode::OK
    );
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Staff {
    groups: Vec<String>,
}

#[tokio::test]
async fn any_of_and_all_of_read_roles_from_the_apps_own_claims() {
    let jwt = test_jwt();
    let token = |groups: &[&str]| {
        let staff = Staff {
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        jwt.issue_access("7", Uuid::new_v4(), &staff).unwrap().0
    };
    let groups = |c: &Claims<Staff>| c.custom().groups.clone();
    let ok = || {
        service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::default()))
        })
    };
    let cases = [
        (
            RequireClaims::<Staff>::any_of(&["ops", "admin"], groups),
            &["ops"][..],
            StatusCode::OK,
        ),
        (
            RequireClaims::<Staff>::any_of(&["ops", "admin"], groups),
            &["sales"][..],
            StatusCode::FORBIDDEN,
        ),
        (
            RequireClaims::<Staff>::all_of(&["ops", "admin"], groups),
            &["admin", "ops"][..],
            StatusCode::OK,
        ),
        (
            RequireClaims::<Staff>::all_of(&["ops", "admin"], groups),
            &["ops"][..],
            StatusCode::FORBIDDEN,
        ),
    ];
    for (require, held, want) in cases {
        let svc = ServiceBuilder::new()
            .layer(JwtAuthLayer::<Staff>::with_claims(jwt.clone()))
            .layer(require)
            .service(ok());
        assert_eq!(call(svc, &token(held)).await.0, want, "{held:?}");
    }
}

/// A token the app's own keys verify but whose `iss` names a trusted issuer
/// is judged by that issuer's rules (refused here: the issuer never signed
/// it), as it was when `iss` was read before anything else; the same token
/// passes a layer that trusts no issuer. Own tokens are tried first, so this
/// is the one case where the order could show.
#[tokio::test]
async fn an_own_signature_on_a_trusted_issuers_iss_is_judged_by_the_issuer() {
    let secret = [9u8; 32];
    let jwt = tower_jwt_auth::Jwt::builder()
        .signing_key(Key::hmac("own", Algorithm::HS256, secret).unwrap())
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "sub": "7",
        "token_type": "access",
        "jti": Uuid::new_v4().to_string(),
        "sid": Uuid::new_v4().to_string(),
        "iat": now,
        "exp": now + 300,
        "iss": ISS,
    });
    let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
    header.kid = Some("own".into());
    header.typ = Some("at+jwt".into());
    let key = jsonwebtoken::EncodingKey::from_secret(&secret).unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();

    let alone = JwtAuthLayer::new(jwt.clone()).layer(echo());
    let (status, body, _) = call(alone, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let trusting = JwtAuthLayer::new(jwt).trust(keycloak()).layer(echo());
    let (status, _, _) = call(trusting, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
