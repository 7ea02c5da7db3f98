//! Sliding tokens on MemoryStore and SQLite: off until switched on; one token is
//! the access token and renews itself inside its window, even after its `exp`;
//! the window slides but never past the session's absolute lifetime; the store's
//! revocations, reuse detection, user checks and the claims hook all apply; the
//! renewal endpoint's HTTP contract.

mod backends;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use backends::Backend;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_jwt_auth::conformance::{Users, test_jwt};
use tower_jwt_auth::events::EventKind;
use tower_jwt_auth::{
    Algorithm, AuthError, Claims, ClaimsContext, Jwt, JwtAuthLayer, Key, MemoryStore,
    NoCustomClaims, SessionEndpoint, Sessions, SlidingEndpoint, SlidingTokens, TokenError,
    TokenKind, TokenStore,
};
use uuid::Uuid;

fn jwt_with(max_age: u64) -> Jwt {
    Jwt::builder()
        .signing_key(Key::hmac("test", Algorithm::HS256, [42u8; 32]).unwrap())
        .issuer("tower-jwt-auth-tests")
        .audience("tests")
        .session_max_age(Duration::from_secs(max_age))
        .build()
        .unwrap()
}

fn setup(jwt: Jwt, store: Arc<dyn TokenStore>) -> (Sessions<Users>, Arc<Users>, Uuid) {
    let users = Arc::new(Users::new());
    let id = Uuid::new_v4();
    users.insert(id, "alice".into());
    // Strict single use: the cases replay a renewed token to see it refused
    // (the reuse window has its own case below).
    let sessions = Sessions::new(jwt, store, users.clone())
        .with_reuse_grace(Duration::ZERO)
        .unwrap();
    (sessions, users, id)
}

fn token_err<T: std::fmt::Debug>(r: Result<T, AuthError>) -> TokenError {
    match r {
        Err(AuthError::InvalidToken(e)) => e,
        other => panic!("expected a refused token, got {other:?}"),
    }
}

fn renew_request(body: String) -> Request<Full<Bytes>> {
    Request::post("/api/token/refresh/")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn json(res: Response<Full<Bytes>>) -> serde_json::Value {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// The layer with the revocation check, in front of a service that echoes the user.
async fn call_api(store: Arc<dyn TokenStore>, jwt: Jwt, token: &str) -> StatusCode {
    let svc = ServiceBuilder::new()
        .layer(JwtAuthLayer::new(jwt).revocation_check(store))
        .service(service_fn(|req: Request<Full<Bytes>>| async move {
            let claims = req.extensions().get::<Claims>().unwrap();
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::from(
                claims.user_id().to_owned(),
            )))
        }));
    let req = Request::get("/api/me/")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::default())
        .unwrap();
    svc.oneshot(req).await.unwrap().status()
}

/// Without the switch, nothing sliding works.
async fn off_by_default(b: Backend) {
    let (s, _, id) = setup(test_jwt(), b.store());
    assert!(matches!(
        s.login_sliding(&id, &NoCustomClaims, None).await,
        Err(AuthError::InvalidRequest(_))
    ));
    let on = s.clone().with_sliding(SlidingTokens::new());
    let t = on.login_sliding(&id, &NoCustomClaims, None).await.unwrap();
    assert!(matches!(
        s.renew_sliding(&t.token).await,
        Err(AuthError::InvalidRequest(_))
    ));
    let res = SlidingEndpoint::renew(s)
        .oneshot(renew_request(format!(r#"{{"token": "{}"}}"#, t.token)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

/// One token: an access token for the layer (with the revocation check) and
/// for `check_access`, renewed into a successor in the same session; the
/// renewed one is spent, and replaying it revokes the session.
async fn access_and_renewal(b: Backend) {
    let store = b.store();
    let (s, _, id) = setup(test_jwt(), store.clone());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let s = s.with_sliding(SlidingTokens::new()).with_events(tx);
    let t0 = s
        .login_sliding(&id, &NoCustomClaims, Some("cli".into()))
        .await
        .unwrap();
    assert!(
        !format!("{t0:?}").contains(&t0.token),
        "Debug hides the token"
    );
    assert_eq!(
        call_api(store.clone(), s.jwt().clone(), &t0.token).await,
        StatusCode::OK
    );
    let c = s.check_access(&t0.token).await.unwrap();
    assert_eq!(c.session_id(), t0.session_id);
    assert_eq!(c.expires_at(), t0.expires_at);
    assert!(t0.expires_at < t0.renew_until);
    // A sliding token is not a refresh token.
    assert_eq!(token_err(s.refresh(&t0.token).await), TokenError::WrongType);

    let t1 = s.renew_sliding(&t0.token).await.unwrap();
    assert_eq!(t1.session_id, t0.session_id);
    assert_ne!(t1.token, t0.token);
    assert_eq!(
        call_api(store.clone(), s.jwt().clone(), &t1.token).await,
        StatusCode::OK
    );
    let t2 = s.renew_sliding(&t1.token).await.unwrap();
    // t0 was renewed already: reuse. The session is revoked, t2 with it.
    assert_eq!(
        token_err(s.renew_sliding(&t0.token).await),
        TokenError::Reused
    );
    assert_eq!(
        token_err(s.renew_sliding(&t2.token).await),
        TokenError::Revoked
    );
    assert_eq!(
        token_err(s.check_access(&t2.token).await),
        TokenError::Revoked
    );
    assert_eq!(
        call_api(store, s.jwt().clone(), &t2.token).await,
        StatusCode::UNAUTHORIZED
    );

    let mut kinds = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        assert_eq!(e.session_id, Some(t0.session_id));
        kinds.push(e.kind);
    }
    kinds.sort_by_key(|k| k.name());
    assert_eq!(
        kinds,
        vec![
            EventKind::ReuseDetected,
            EventKind::SlidingIssued,
            EventKind::SlidingRenewed { redelivered: false },
            EventKind::SlidingRenewed { redelivered: false },
        ]
    );
}

/// Past its `exp` the token is no access token, but it still renews inside its
/// window; the session list shows the renewal. Past the window, no renewal.
async fn renews_after_exp_within_window(b: Backend) {
    let store = b.store();
    let (s, _, id) = setup(test_jwt(), store.clone());
    let s = s.with_sliding(
        SlidingTokens::new()
            .lifetime(Duration::from_secs(1))
            .renewal_window(Duration::from_secs(4)),
    );
    let t0 = s
        .login_sliding(&id, &NoCustomClaims, Some("cli".into()))
        .await
        .unwrap();
    let t_short = s.login_sliding(&id, &NoCustomClaims, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        token_err(s.check_access(&t0.token).await),
        TokenError::Expired
    );
    assert_eq!(
        call_api(store.clone(), s.jwt().clone(), &t0.token).await,
        StatusCode::UNAUTHORIZED
    );
    let t1 = s
        .renew_sliding(&t0.token)
        .await
        .expect("renewable after exp");
    s.check_access(&t1.token).await.unwrap();
    // The window slid: one window from the renewal.
    assert!(t1.renew_until >= t0.renew_until + 2, "{t0:?} {t1:?}");
    assert!(t1.expires_at < t1.renew_until);
    let info = s
        .list_sessions(&id.to_string())
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.session_id == t0.session_id)
        .unwrap();
    assert_eq!(info.label.as_deref(), Some("cli"));
    assert!(info.last_rotated_at > info.created_at, "{info:?}");
    // t_short was never renewed: its window has closed by now.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        token_err(s.renew_sliding(&t_short.token).await),
        TokenError::Expired
    );
}

/// The window slides, but never past the session's absolute lifetime, and a
/// token's own `exp` never passes its window.
async fn session_max_age_caps(b: Backend) {
    let (s, _, id) = setup(jwt_with(3), b.store());
    let s = s.with_sliding(
        SlidingTokens::new()
            .lifetime(Duration::from_secs(600))
            .renewal_window(Duration::from_secs(3600)),
    );
    let t0 = s.login_sliding(&id, &NoCustomClaims, None).await.unwrap();
    let end = t0.renew_until;
    assert!(t0.expires_at <= end);
    let t1 = s.renew_sliding(&t0.token).await.unwrap();
    assert_eq!(t1.renew_until, end, "capped by the session");
    assert!(t1.expires_at <= end);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(
        token_err(s.renew_sliding(&t1.token).await),
        TokenError::Expired
    );
}

/// Plain access tokens, refresh tokens, forgeries and foreign tokens do not renew.
async fn only_genuine_sliding_tokens_renew(b: Backend) {
    let store = b.store();
    let (s, _, id) = setup(test_jwt(), store.clone());
    let s = s.with_sliding(SlidingTokens::new().lifetime(Duration::from_secs(1)));
    let pair = s.login(&id, &NoCustomClaims, None).await.unwrap();
    assert_eq!(
        token_err(s.renew_sliding(&pair.access).await),
        TokenError::WrongType
    );
    assert_eq!(
        token_err(s.renew_sliding(&pair.refresh).await),
        TokenError::WrongType
    );
    assert_eq!(
        token_err(s.renew_sliding("not.a.token").await),
        TokenError::Base64
    );

    let t = s.login_sliding(&id, &NoCustomClaims, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Expired as access, and with a broken signature: refused for the signature,
    // not renewed (the exp-free path starts only after the signature verified).
    let (head, sig) = t.token.rsplit_once('.').unwrap();
    let mut forged_sig = sig.to_owned();
    let flip = if forged_sig.starts_with('A') {
        "B"
    } else {
        "A"
    };
    forged_sig.replace_range(0..1, flip);
    let forged = format!("{head}.{forged_sig}");
    assert_eq!(
        token_err(s.renew_sliding(&forged).await),
        TokenError::Signature
    );
    // A token from another key.
    let other = Jwt::builder()
        .signing_key(Key::hmac("test", Algorithm::HS256, [7u8; 32]).unwrap())
        .issuer("tower-jwt-auth-tests")
        .audience("tests")
        .build()
        .unwrap();
    let (s_other, _, _) = setup(other, Arc::new(MemoryStore::new()));
    let s_other = s_other.with_sliding(SlidingTokens::new());
    let foreign = s_other
        .login_sliding(&id, &NoCustomClaims, None)
        .await
        .unwrap();
    assert_eq!(
        token_err(s.renew_sliding(&foreign.token).await),
        TokenError::Signature
    );
    // The genuine one renews.
    s.renew_sliding(&t.token).await.unwrap();
}

/// Logout by session id, log out everywhere, and an inactive user end sliding
/// sessions as they end refresh sessions.
async fn store_revocations_apply(b: Backend) {
    let (s, users, id) = setup(test_jwt(), b.store());
    let s = s.with_sliding(SlidingTokens::new());
    let uid = id.to_string();
    let a = s.login_sliding(&id, &NoCustomClaims, None).await.unwrap();
    assert!(s.revoke_session_of(&uid, a.session_id).await.unwrap());
    assert_eq!(
        token_err(s.renew_sliding(&a.token).await),
        TokenError::Revoked
    );
    assert_eq!(
        token_err(s.check_access(&a.token).await),
        TokenError::Revoked
    );

    let b1 = s.login_sliding(&id, &NoCustomClaims, None).await.unwrap();
    let b2 = s.login(&id, &NoCustomClaims, None).await.unwrap();
    assert_eq!(s.revoke_user(&id).await.unwrap(), 2);
    assert_eq!(
        token_err(s.renew_sliding(&b1.token).await),
        TokenError::Revoked
    );
    assert_eq!(
        token_err(s.check_access(&b2.access).await),
        TokenError::Revoked
    );

    // Logout with the token itself, over HTTP; twice is refused.
    let d = s.login_sliding(&id, &NoCustomClaims, None).await.unwrap();
    let logout = SlidingEndpoint::logout(s.clone());
    let body = format!(r#"{{"token": "{}"}}"#, d.token);
    let res = logout
        .clone()
        .oneshot(renew_request(body.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json(res).await, serde_json::json!({}));
    assert_eq!(
        token_err(s.renew_sliding(&d.token).await),
        TokenError::Revoked
    );
    let res = logout.oneshot(renew_request(body)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        token_err(s.logout_sliding(&d.token).await),
        TokenError::Revoked
    );

    let c = s.login_sliding(&id, &NoCustomClaims, None).await.unwrap();
    users.set_active(&id, false);
    assert_eq!(
        token_err(s.renew_sliding(&c.token).await),
        TokenError::UserInactive
    );
    users.set_active(&id, true);
    assert_eq!(
        token_err(s.renew_sliding(&c.token).await),
        TokenError::Revoked
    );
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Plan {
    plan: String,
}

/// The app's claims ride in sliding tokens and the claims hook recomputes them
/// at each renewal.
async fn claims_and_hook(b: Backend) {
    let users = Arc::new(Users::new());
    let id = Uuid::new_v4();
    users.insert(id, "pro".into());
    let s: Sessions<Users, Plan> = Sessions::new(test_jwt(), b.store(), users.clone())
        .with_sliding(SlidingTokens::new())
        .with_claims_refresh(|ctx: ClaimsContext<String, Plan>| async move {
            Ok(Plan { plan: ctx.user })
        });
    let t0 = s
        .login_sliding(&id, &Plan { plan: "pro".into() }, None)
        .await
        .unwrap();
    let c = s.check_access(&t0.token).await.unwrap();
    assert_eq!(c.custom().plan, "pro");
    users.insert(id, "free".into());
    let t1 = s.renew_sliding(&t0.token).await.unwrap();
    let c = s
        .jwt()
        .validate::<Plan>(&t1.token, TokenKind::Access)
        .unwrap();
    assert_eq!(c.custom().plan, "free");
}

/// The endpoint: 200 `{"token"}`, then the HTTP refusals.
async fn endpoint(b: Backend) {
    let (s, _, id) = setup(test_jwt(), b.store());
    let s = s.with_sliding(SlidingTokens::new());
    let svc = SlidingEndpoint::renew(s.clone()).body_limit(1024);
    let t = s.login_sliding(&id, &NoCustomClaims, None).await.unwrap();

    let res = svc
        .clone()
        .oneshot(renew_request(format!(r#"{{"token": "{}"}}"#, t.token)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body = json(res).await;
    let renewed = body["token"].as_str().unwrap();
    s.check_access(renewed).await.unwrap();

    // Replayed: 401 invalid_token with a challenge.
    let res = svc
        .clone()
        .oneshot(renew_request(format!(r#"{{"token": "{}"}}"#, t.token)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(json(res).await["error"], "invalid_token");

    let status = |req: Request<Full<Bytes>>| {
        let svc = svc.clone();
        async move { svc.oneshot(req).await.unwrap().status() }
    };
    assert_eq!(
        status(renew_request("{}".into())).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(renew_request("{".into())).await,
        StatusCode::BAD_REQUEST
    );
    let get = Request::get("/").body(Full::default()).unwrap();
    assert_eq!(status(get).await, StatusCode::METHOD_NOT_ALLOWED);
    let text = Request::post("/")
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(r#"{"token": "x"}"#)))
        .unwrap();
    assert_eq!(status(text).await, StatusCode::BAD_REQUEST);
    let big = format!(r#"{{"token": "{}"}}"#, "a".repeat(2048));
    assert_eq!(
        status(renew_request(big)).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // The login route's response helper has the same shape.
    let res: Response<Full<Bytes>> = SlidingEndpoint::<Users, NoCustomClaims>::token_response(&t);
    assert_eq!(json(res).await["token"], t.token.as_str());
    // The refresh endpoint refuses sliding tokens.
    let res = SessionEndpoint::refresh(s)
        .oneshot(renew_request(format!(r#"{{"refresh": "{renewed}"}}"#)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// Two renewals at once from two tabs: with a grace window both succeed.
async fn grace_window_for_concurrent_renewals(b: Backend) {
    let (s, _, id) = setup(test_jwt(), b.store());
    let s = s
        .with_sliding(SlidingTokens::new())
        .with_reuse_grace(Duration::from_secs(10))
        .unwrap();
    let t = s.login_sliding(&id, &NoCustomClaims, None).await.unwrap();
    let (a, c) = tokio::join!(s.renew_sliding(&t.token), s.renew_sliding(&t.token));
    let (a, c) = (a.unwrap(), c.unwrap());
    assert_eq!(a.session_id, c.session_id);
}

for_each_backend!(
    off_by_default,
    access_and_renewal,
    renews_after_exp_within_window,
    session_max_age_caps,
    only_genuine_sliding_tokens_renew,
    store_revocations_apply,
    claims_and_hook,
    endpoint,
    grace_window_for_concurrent_renewals,
);
