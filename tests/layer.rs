//! JwtAuthLayer: tower-test mocks, axum Router, a real hyper server, RFC 6750 answers.

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
use tower_jwt_auth::conformance::{FailingStore, sessions_for, test_jwt};
use tower_jwt_auth::{
    AuthError, Claims, JwtAuthLayer, MemoryStore, MemoryUsers, NoCustomClaims, Sessions,
    TokenError, TokenSource, TokenStore,
};
use uuid::Uuid;

type Body = Full<Bytes>;

fn get(token: Option<&str>) -> Request<Body> {
    let mut b = Request::get("/");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::default()).unwrap()
}

async fn json(res: Response<Body>) -> serde_json::Value {
    serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
}

fn echo() -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send {
    service_fn(|req: Request<Body>| async move {
        let who = req
            .extensions()
            .get::<Claims>()
            .map(|c| c.user_id().to_owned())
            .unwrap_or_else(|| "anonymous".into());
        Ok::<_, Infallible>(Response::new(Body::from(who)))
    })
}

#[tokio::test]
async fn rejected_requests_never_reach_the_inner_service() {
    let jwt = test_jwt();
    let (mut svc, mut handle) = tower_test::mock::spawn_layer::<Request<Body>, Response<Body>, _>(
        JwtAuthLayer::new(jwt.clone()),
    );
    // Readiness passes through: the mock is not ready until the handle allows it.
    handle.allow(0);
    assert!(svc.poll_ready().is_pending());
    handle.allow(3);
    assert!(svc.poll_ready().is_ready());

    for req in [get(None), get(Some("not.a.token")), get(Some("a b"))] {
        let res = svc.call(req).await.unwrap();
        assert!(res.status().is_client_error());
    }
    assert!(
        handle.poll_request().is_pending(),
        "the inner service saw a refused request"
    );

    assert!(svc.poll_ready().is_ready());
    let (token, _) = jwt
        .issue_access("u1", Uuid::new_v4(), &NoCustomClaims)
        .unwrap();
    let fut = svc.call(get(Some(&token)));
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req.extensions().get::<Claims>().unwrap().user_id(), "u1");
    send.send_response(Response::new(Body::from("ok")));
    assert_eq!(fut.await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn rfc6750_challenges_and_json_bodies() {
    let jwt = test_jwt();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(jwt.clone()).realm("shop"))
        .service(echo());

    let res = svc.clone().oneshot(get(None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"shop\"");
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = json(res).await;
    assert!(body["error"].is_string() && body["error_description"].is_string());

    let res = svc.clone().oneshot(get(Some("abc.def.ghi"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge
            .starts_with("Bearer realm=\"shop\", error=\"invalid_token\", error_description=\""),
        "{challenge}"
    );
    assert_eq!(json(res).await["error"], "invalid_token");

    // Two Authorization headers, or a malformed one: 400 invalid_request.
    let (token, _) = jwt
        .issue_access("u1", Uuid::new_v4(), &NoCustomClaims)
        .unwrap();
    let two = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::default())
        .unwrap();
    let res = svc.clone().oneshot(two).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(res).await["error"], "invalid_request");
    let res = svc
        .clone()
        .oneshot(get(Some(&format!("{token} extra"))))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Scheme is case-insensitive; another scheme is no token at all.
    let lower = Request::get("/")
        .header("authorization", format!("bearer {token}"))
        .body(Body::default())
        .unwrap();
    assert_eq!(
        svc.clone().oneshot(lower).await.unwrap().status(),
        StatusCode::OK
    );
    let basic = Request::get("/")
        .header("authorization", "Basic dTpw")
        .body(Body::default())
        .unwrap();
    let res = svc.clone().oneshot(basic).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"shop\"");

    // A token in the query string is never read.
    let q = Request::get(format!("/?access_token={token}"))
        .body(Body::default())
        .unwrap();
    assert_eq!(
        svc.oneshot(q).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn refresh_tokens_are_not_access_tokens() {
    let (sessions, _, id) = sessions_for(Arc::new(MemoryStore::new()));
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(sessions.jwt().clone()))
        .service(echo());
    assert_eq!(
        svc.clone()
            .oneshot(get(Some(&pair.refresh)))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        svc.oneshot(get(Some(&pair.access))).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn cookie_and_custom_sources() {
    let jwt = test_jwt();
    let (token, _) = jwt
        .issue_access("u1", Uuid::new_v4(), &NoCustomClaims)
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(jwt.clone()).token_source(TokenSource::Cookie("access".into())))
        .service(echo());
    let req = Request::get("/")
        .header("cookie", format!("theme=dark; access={token}"))
        .body(Body::default())
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "u1");
    // The header is not read in cookie mode.
    assert_eq!(
        svc.oneshot(get(Some(&token))).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let svc = ServiceBuilder::new()
        .layer(
            JwtAuthLayer::new(jwt).token_source(TokenSource::custom(|h| {
                Ok(h.get("x-token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned))
            })),
        )
        .service(echo());
    let req = Request::get("/")
        .header("x-token", &token)
        .body(Body::default())
        .unwrap();
    assert_eq!(svc.oneshot(req).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn optional_mode_lets_anonymous_through_but_not_bad_tokens() {
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(test_jwt()).optional())
        .service(echo());
    let res = svc.clone().oneshot(get(None)).await.unwrap();
    assert_eq!(
        res.into_body().collect().await.unwrap().to_bytes(),
        "anonymous"
    );
    assert_eq!(
        svc.oneshot(get(Some("x.y.z"))).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Roles {
    roles: Vec<String>,
}

#[tokio::test]
async fn custom_claims_reach_the_service() {
    let jwt = test_jwt();
    let custom = Roles {
        roles: vec!["admin".into()],
    };
    let (token, _) = jwt.issue_access("u1", Uuid::new_v4(), &custom).unwrap();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::<Roles>::with_claims(jwt))
        .service(service_fn(|req: Request<Body>| async move {
            let c = req.extensions().get::<Claims<Roles>>().unwrap();
            Ok::<_, Infallible>(Response::new(Body::from(c.custom().roles.join(","))))
        }));
    let res = svc.oneshot(get(Some(&token))).await.unwrap();
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "admin");
}

/// Without the revocation check the layer has no store: an inactive user's
/// request is refused, and the session is left to the next refresh, which
/// revokes it.
#[tokio::test]
async fn an_inactive_user_without_the_revocation_check() {
    let (sessions, users, id) = sessions_for(Arc::new(MemoryStore::new()));
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(sessions.jwt().clone()).resolve_user(users.clone()))
        .service(echo());
    users.set_active(&id, false);
    let res = svc.clone().oneshot(get(Some(&pair.access))).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        sessions
            .refresh(&pair.refresh)
            .await
            .unwrap_err()
            .token_error(),
        Some(TokenError::UserInactive)
    );
    users.set_active(&id, true);
    assert_eq!(
        sessions
            .refresh(&pair.refresh)
            .await
            .unwrap_err()
            .token_error(),
        Some(TokenError::Revoked),
        "the refresh revoked the session"
    );
}

#[tokio::test]
async fn revocation_check_and_user_resolution() {
    let failing = Arc::new(FailingStore::new(Arc::new(MemoryStore::new())));
    let store: Arc<dyn TokenStore> = failing.clone();
    let (sessions, users, id) = sessions_for(store.clone());
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let svc = ServiceBuilder::new()
        .layer(
            JwtAuthLayer::new(sessions.jwt().clone())
                .revocation_check(store)
                .resolve_user(users.clone()),
        )
        .service(service_fn(|req: Request<Body>| async move {
            let name = req
                .extensions()
                .get::<String>()
                .cloned()
                .unwrap_or_default();
            Ok::<_, Infallible>(Response::new(Body::from(name)))
        }));
    let res = svc.clone().oneshot(get(Some(&pair.access))).await.unwrap();
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "alice");

    // Store down: 503 with Retry-After, and no invalid_token challenge.
    failing.set_down(true);
    let res = svc.clone().oneshot(get(Some(&pair.access))).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(res.headers().get("www-authenticate").is_none());
    failing.set_down(false);

    // Inactive user: 401, and (the revocation check being on) the session is
    // revoked, as a refresh would revoke it: reactivating does not revive it.
    users.set_active(&id, false);
    assert_eq!(
        svc.clone()
            .oneshot(get(Some(&pair.access)))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    users.set_active(&id, true);
    let res = svc.clone().oneshot(get(Some(&pair.access))).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        sessions
            .refresh(&pair.refresh)
            .await
            .unwrap_err()
            .token_error(),
        Some(TokenError::Revoked)
    );

    // Logout takes effect on the access token at once.
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    assert_eq!(
        svc.clone()
            .oneshot(get(Some(&pair.access)))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    sessions.logout(&pair.refresh).await.unwrap();
    let res = svc.oneshot(get(Some(&pair.access))).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json(res).await["error_description"],
        "the token has been revoked"
    );
}

#[tokio::test]
async fn user_id_that_cannot_parse_is_refused_without_lookup() {
    // The resolver's id type is a UUID; a token naming "42" cannot be one.
    let users = Arc::new(MemoryUsers::<Uuid, String>::new());
    let jwt = test_jwt();
    let (token, _) = jwt
        .issue_access("42", Uuid::new_v4(), &NoCustomClaims)
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(jwt).resolve_user(users))
        .service(echo());
    let res = svc.oneshot(get(Some(&token))).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json(res).await["error_description"],
        "the token's user id is not valid"
    );
}

#[tokio::test]
async fn custom_rejection() {
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(test_jwt()).on_rejection(|e: &AuthError| {
            let mut r = Response::new(Body::from("custom"));
            *r.status_mut() = e.status();
            r
        }))
        .service(echo());
    let res = svc.oneshot(get(None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.into_body().collect().await.unwrap().to_bytes(),
        "custom"
    );
}

#[tokio::test]
async fn axum_router_with_extractors() {
    use axum::{Router, routing::get as route_get};
    use tower_jwt_auth::axum::{Authenticated, CurrentUser};

    async fn me(Authenticated(c): Authenticated, CurrentUser(name): CurrentUser<String>) -> String {
        format!("{} {}", c.user_id(), name)
    }
    async fn maybe(a: Option<Authenticated>) -> &'static str {
        if a.is_some() { "in" } else { "out" }
    }
    async fn no_layer(_a: Authenticated) -> &'static str {
        "unreachable"
    }

    let (sessions, users, id) = sessions_for(Arc::new(MemoryStore::new()));
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let layer = JwtAuthLayer::new(sessions.jwt().clone())
        .revocation_check(sessions.store().clone())
        .resolve_user(users);
    let app = Router::new()
        .route("/me", route_get(me))
        .layer(layer.clone())
        .merge(
            Router::new()
                .route("/maybe", route_get(maybe))
                .layer(JwtAuthLayer::new(sessions.jwt().clone()).optional()),
        )
        .merge(Router::new().route("/nolayer", route_get(no_layer)));

    let req = |uri: &str, t: Option<&str>| {
        let mut b = Request::get(uri);
        if let Some(t) = t {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(axum::body::Body::empty()).unwrap()
    };
    let res = app
        .clone()
        .oneshot(req("/me", Some(&pair.access)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.into_body().collect().await.unwrap().to_bytes(),
        format!("{id} alice")
    );
    assert_eq!(
        app.clone()
            .oneshot(req("/me", None))
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let res = app.clone().oneshot(req("/maybe", None)).await.unwrap();
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "out");
    let res = app
        .clone()
        .oneshot(req("/maybe", Some(&pair.access)))
        .await
        .unwrap();
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "in");
    // Without the layer the extractor rejects with 401, never a 500.
    let res = app
        .oneshot(req("/nolayer", Some(&pair.access)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn real_http_through_a_plain_hyper_server() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;

    let (sessions, _, id) = sessions_for(Arc::new(MemoryStore::new()));
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(sessions.jwt().clone()))
        .service(service_fn(
            |req: Request<hyper::body::Incoming>| async move {
                let who = req
                    .extensions()
                    .get::<Claims>()
                    .map(|c| c.user_id().to_owned())
                    .unwrap_or_default();
                Ok::<_, Infallible>(Response::new(Full::<Bytes>::from(who)))
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc),
            );
        }
    });
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let send = |t: Option<String>| {
        let client = client.clone();
        async move {
            let mut b = Request::get(format!("http://{addr}/"));
            if let Some(t) = t {
                b = b.header("authorization", format!("Bearer {t}"));
            }
            client
                .request(b.body(Full::default()).unwrap())
                .await
                .unwrap()
        }
    };
    let res = send(Some(pair.access.clone())).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.into_body().collect().await.unwrap().to_bytes(),
        id.to_string()
    );
    assert_eq!(send(None).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(Some(pair.refresh.clone())).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[allow(dead_code)]
fn sessions_type_check(
    s: Sessions<MemoryUsers<Uuid, String>>,
) -> Sessions<MemoryUsers<Uuid, String>> {
    s
}

#[tokio::test]
async fn an_extractor_for_another_claims_type_fails_loudly_and_the_realm_is_the_layers() {
    use axum::{Router, routing::get as route_get};
    use tower_jwt_auth::axum::Authenticated;

    async fn roles(Authenticated(c): Authenticated<Roles>) -> String {
        c.custom().roles.join(",")
    }
    async fn maybe_roles(a: Option<Authenticated<Roles>>) -> &'static str {
        if a.is_some() { "in" } else { "out" }
    }
    async fn plain(Authenticated(c): Authenticated) -> String {
        c.user_id().to_owned()
    }

    let jwt = test_jwt();
    let custom = Roles {
        roles: vec!["admin".into()],
    };
    let (token, _) = jwt.issue_access("u1", Uuid::new_v4(), &custom).unwrap();
    // The layer makes Claims<NoCustomClaims>; the handlers ask for Claims<Roles>.
    let wrong = Router::new()
        .route("/roles", route_get(roles))
        .route("/maybe", route_get(maybe_roles))
        .layer(JwtAuthLayer::new(jwt.clone()).optional());
    let right = Router::new()
        .route("/roles", route_get(roles))
        .layer(JwtAuthLayer::<Roles>::with_claims(jwt.clone()));
    let anonymous = Router::new()
        .route("/plain", route_get(plain))
        .layer(JwtAuthLayer::new(jwt).optional().realm("shop"));

    let req = |uri: &str, t: Option<&str>| {
        let mut b = Request::get(uri);
        if let Some(t) = t {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(axum::body::Body::empty()).unwrap()
    };
    for (uri, t) in [
        ("/roles", Some(token.as_str())),
        ("/maybe", Some(&token)),
        ("/maybe", None),
    ] {
        let res = wrong.clone().oneshot(req(uri, t)).await.unwrap();
        assert_eq!(
            res.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{uri} {t:?}"
        );
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "server_error");
        // The type names go to the log, not to the client.
        assert!(!String::from_utf8_lossy(&body).contains("Roles"));
    }
    let res = right.oneshot(req("/roles", Some(&token))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "admin");
    // An anonymous request behind an optional layer: 401 in the layer's realm.
    let res = anonymous.oneshot(req("/plain", None)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"shop\"");
}
