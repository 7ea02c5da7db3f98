//! Claims recomputed at refresh, on MemoryStore and SQLite: the default keeps
//! them (SimpleJWT's behaviour); a hook rebuilds them from the user as they are
//! now (SimpleJWT #705: stale claims forever); a failing, panicking or refusing
//! hook fails closed, before the token is spent.

mod backends;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use backends::Backend;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tower::ServiceExt;
use tower_jwt_auth::conformance::test_jwt;
use tower_jwt_auth::events::{EventKind, RefusalReason};
use tower_jwt_auth::{
    AuthError, ClaimsContext, ClaimsError, MemoryUsers, SessionEndpoint, Sessions, TokenError,
    TokenKind, TokenStore,
};
use uuid::Uuid;

/// The app's claims: a role and a counter of recomputations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Roles {
    role: String,
    #[serde(default)]
    generation: u32,
}

/// Users carry their current role.
type Users = MemoryUsers<Uuid, String>;

fn setup(store: Arc<dyn TokenStore>) -> (Sessions<Users, Roles>, Arc<Users>, Uuid) {
    let users = Arc::new(Users::new());
    let id = Uuid::new_v4();
    users.insert(id, "admin".into());
    (Sessions::new(test_jwt(), store, users.clone()), users, id)
}

fn admin() -> Roles {
    Roles {
        role: "admin".into(),
        generation: 0,
    }
}

fn custom(s: &Sessions<Users, Roles>, access: &str) -> Roles {
    s.jwt()
        .validate::<Roles>(access, TokenKind::Access)
        .unwrap()
        .into_custom()
}

fn token_err<T: std::fmt::Debug>(r: Result<T, AuthError>) -> TokenError {
    match r {
        Err(AuthError::InvalidToken(e)) => e,
        other => panic!("expected a refused token, got {other:?}"),
    }
}

/// Without a hook, the login's claims travel unchanged through every rotation,
/// in the access and the refresh token.
async fn default_keeps_claims(b: Backend) {
    let (s, users, id) = setup(b.store());
    let mut p = s.login(&id, &admin(), None).await.unwrap();
    users.insert(id, "viewer".into());
    for _ in 0..3 {
        p = s.refresh(&p.refresh).await.unwrap();
        assert_eq!(custom(&s, &p.access), admin());
        let r = s
            .jwt()
            .validate::<Roles>(&p.refresh, TokenKind::Refresh)
            .unwrap();
        assert_eq!(r.custom(), &admin());
    }
}

/// The hook sees who is refreshing and the old claims, and its answer goes into
/// both new tokens; the next rotation sees those.
async fn hook_recomputes(b: Backend) {
    let (s, users, id) = setup(b.store());
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let s = s.with_claims_refresh(move |ctx: ClaimsContext<String, Roles>| {
        c.fetch_add(1, Ordering::SeqCst);
        async move {
            Ok(Roles {
                role: ctx.user,
                generation: ctx.claims.generation + 1,
            })
        }
    });
    let p = s.login(&id, &admin(), None).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "login takes the app's claims"
    );
    users.insert(id, "viewer".into());
    let q = s.refresh(&p.refresh).await.unwrap();
    assert_eq!(
        custom(&s, &q.access),
        Roles {
            role: "viewer".into(),
            generation: 1
        }
    );
    let r = s.refresh(&q.refresh).await.unwrap();
    assert_eq!(custom(&s, &r.access).generation, 2);
    let refresh_claims = s
        .jwt()
        .validate::<Roles>(&r.refresh, TokenKind::Refresh)
        .unwrap();
    assert_eq!(refresh_claims.custom().generation, 2);
    // The context names the session and the user.
    let seen = Arc::new(std::sync::Mutex::new(None));
    let seen2 = seen.clone();
    let (s2, _, id2) = setup(b.store());
    let s2 = s2.with_claims_refresh(move |ctx: ClaimsContext<String, Roles>| {
        *seen2.lock().unwrap() = Some((ctx.user_id.clone(), ctx.session_id));
        async move { Ok(ctx.claims) }
    });
    let p2 = s2.login(&id2, &admin(), None).await.unwrap();
    s2.refresh(&p2.refresh).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        Some((id2.to_string(), p2.session_id))
    );
}

/// An unavailable hook (and a panicking one) gives 503 with the token unspent:
/// once the hook is back, the same token rotates, with no reuse.
async fn failure_spends_nothing(b: Backend) {
    let (s, _, id) = setup(b.store());
    let mode = Arc::new(AtomicU32::new(0));
    let m = mode.clone();
    let s = s.with_claims_refresh(move |ctx: ClaimsContext<String, Roles>| {
        let mode = m.load(Ordering::SeqCst);
        async move {
            tokio::task::yield_now().await;
            match mode {
                1 => Err(ClaimsError::unavailable("roles database down")),
                2 => panic!("bug in the app's hook"),
                _ => Ok(ctx.claims),
            }
        }
    });
    let p = s.login(&id, &admin(), None).await.unwrap();
    for failing in [1, 2] {
        mode.store(failing, Ordering::SeqCst);
        let r = s.refresh(&p.refresh).await;
        assert!(matches!(r, Err(AuthError::StoreUnavailable(_))), "{r:?}");
        // Over HTTP: 503 with Retry-After, and no invalid_token challenge.
        let res = SessionEndpoint::refresh(s.clone())
            .oneshot(refresh_request(&p.refresh))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().contains_key("retry-after"));
        assert!(!res.headers().contains_key("www-authenticate"));
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert!(!String::from_utf8_lossy(&body).contains("roles database"));
    }
    mode.store(0, Ordering::SeqCst);
    let q = s
        .refresh(&p.refresh)
        .await
        .expect("the token was not spent");
    s.check_access(&q.access).await.unwrap();
    s.refresh(&q.refresh).await.unwrap();
}

/// `Refused` revokes the session (an event says why) and answers 401.
async fn refused_revokes(b: Backend) {
    let (s, users, id) = setup(b.store());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let s = s.with_events(tx).with_claims_refresh(
        move |ctx: ClaimsContext<String, Roles>| async move {
            if ctx.user == "banned" {
                Err(ClaimsError::Refused)
            } else {
                Ok(ctx.claims)
            }
        },
    );
    let p = s.login(&id, &admin(), None).await.unwrap();
    users.insert(id, "banned".into());
    assert_eq!(
        token_err(s.refresh(&p.refresh).await),
        TokenError::UserInactive
    );
    assert_eq!(
        token_err(s.check_access(&p.access).await),
        TokenError::Revoked
    );
    users.insert(id, "admin".into());
    assert_eq!(token_err(s.refresh(&p.refresh).await), TokenError::Revoked);
    let mut kinds = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        kinds.push(e.kind);
    }
    assert!(kinds.contains(&EventKind::UserRefused {
        reason: RefusalReason::ClaimsRefused
    }));
}

/// Claims whose `iat` field the app may set by mistake (it is never read back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Odd {
    role: String,
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

/// New claims that cannot go into a token (a registered claim name) are refused
/// before the rotation: the token stays unspent.
async fn unmintable_claims_spend_nothing(b: Backend) {
    let users = Arc::new(Users::new());
    let id = Uuid::new_v4();
    users.insert(id, "admin".into());
    let broken = Arc::new(AtomicBool::new(true));
    let br = broken.clone();
    let s: Sessions<Users, Odd> = Sessions::new(test_jwt(), b.store(), users).with_claims_refresh(
        move |ctx: ClaimsContext<String, Odd>| {
            let broken = br.load(Ordering::SeqCst);
            async move {
                Ok(Odd {
                    iat: broken.then_some(1),
                    ..ctx.claims
                })
            }
        },
    );
    let odd = Odd {
        role: "admin".into(),
        iat: None,
    };
    let p = s.login(&id, &odd, None).await.unwrap();
    let r = s.refresh(&p.refresh).await;
    assert!(matches!(r, Err(AuthError::InvalidRequest(_))), "{r:?}");
    broken.store(false, Ordering::SeqCst);
    let q = s
        .refresh(&p.refresh)
        .await
        .expect("the token was not spent");
    let c = s
        .jwt()
        .validate::<Odd>(&q.access, TokenKind::Access)
        .unwrap();
    assert_eq!(c.custom(), &odd);
}

/// A missing user is refused before the hook is asked anything.
async fn hook_not_called_for_refused_users(b: Backend) {
    let (s, users, id) = setup(b.store());
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let s = s.with_claims_refresh(move |ctx: ClaimsContext<String, Roles>| {
        c.fetch_add(1, Ordering::SeqCst);
        async move { Ok(ctx.claims) }
    });
    let p = s.login(&id, &admin(), None).await.unwrap();
    users.remove(&id);
    assert_eq!(
        token_err(s.refresh(&p.refresh).await),
        TokenError::UserInactive
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

fn refresh_request(token: &str) -> Request<Full<Bytes>> {
    Request::post("/api/token/refresh/")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(format!(
            r#"{{"refresh": "{token}"}}"#
        ))))
        .unwrap()
}

for_each_backend!(
    default_keeps_claims,
    hook_recomputes,
    failure_spends_nothing,
    refused_revokes,
    unmintable_claims_spend_nothing,
    hook_not_called_for_refused_users,
);
