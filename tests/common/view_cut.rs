//! The revocation view's feed cut by the tests' TCP proxy, on any store with a
//! revocation log: past the view's bound the layer answers 503 alone, or asks
//! the store when it has one, under concurrent load, never accepting on stale
//! data; once the proxy is back the view catches up by itself, with the logout
//! made while it was cut off. Included by the tests that own a proxy
//! (`#[path = "common/view_cut.rs"] mod view_cut;`, beside `mod proxy;`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use std::time::Instant;
use tower::{Layer, ServiceExt, service_fn};

use tower_jwt_auth::conformance::{Users, sessions_for};
use tower_jwt_auth::{JwtAuthLayer, NoCustomClaims, RevocationLog, RevocationView, TokenStore};
use tower_jwt_auth::{Sessions, ViewAnswer};
use uuid::Uuid;

use crate::proxy::Proxy;

pub type Body = Full<Bytes>;

/// The status `svc` answers a request bearing `token`.
pub async fn status(
    svc: &(impl tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone),
    token: &str,
) -> StatusCode {
    let req = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::default())
        .unwrap();
    svc.clone().oneshot(req).await.unwrap().status()
}

/// `direct` reaches the store itself; `via_proxy` is the same store reached
/// through `proxy`, whose log the view follows (poll 100 ms, bound 500 ms).
pub async fn never_stale_and_catches_up(
    direct: Arc<dyn TokenStore>,
    via_proxy: Arc<dyn RevocationLog>,
    proxy: &Proxy,
) {
    let (sessions, _, id) = sessions_for(direct.clone());
    let view = RevocationView::builder(via_proxy.clone())
        .poll_interval(Duration::from_millis(100))
        .max_lag(Duration::from_millis(500))
        .start();
    view.ready(Duration::from_secs(5)).await.unwrap();
    let ok = || {
        service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::default()))
        })
    };
    let alone = JwtAuthLayer::new(sessions.jwt().clone())
        .revocation_view(view.clone())
        .layer(ok());
    let with_store = JwtAuthLayer::new(sessions.jwt().clone())
        .revocation_view(view.clone())
        .revocation_check(direct.clone())
        .layer(ok());

    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let other = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    assert_eq!(status(&alone, &pair.access).await, StatusCode::OK);
    // The feed's connections are cut; a logout happens on another instance meanwhile.
    proxy.cut();
    sessions.logout(&pair.refresh).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!view.is_fresh(), "past its bound without reading the log");
    // Concurrent load while the feed is down: never a stale accept.
    let load: Vec<_> = (0..64)
        .map(|i| {
            let (alone, with_store) = (alone.clone(), with_store.clone());
            let (gone, live) = (pair.access.clone(), other.access.clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    (status(&alone, &gone).await, status(&alone, &live).await)
                } else {
                    (
                        status(&with_store, &gone).await,
                        status(&with_store, &live).await,
                    )
                }
            })
        })
        .collect();
    for (i, l) in load.into_iter().enumerate() {
        let (gone, live) = l.await.unwrap();
        if i % 2 == 0 {
            assert_eq!(
                (gone, live),
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    StatusCode::SERVICE_UNAVAILABLE
                )
            );
        } else {
            assert_eq!((gone, live), (StatusCode::UNAUTHORIZED, StatusCode::OK));
        }
    }
    // Back: the view catches up by itself, with the logout made while it was cut off.
    proxy.restore();
    view.ready(Duration::from_secs(10)).await.unwrap();
    assert_eq!(status(&alone, &pair.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&alone, &other.access).await, StatusCode::OK);
}

/// One logout on `sessions`' store: the time until `view` refuses it.
async fn logout_refused_after(
    sessions: &Sessions<Users>,
    view: &RevocationView,
    id: Uuid,
) -> Duration {
    let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    sessions.logout(&pair.refresh).await.unwrap();
    let start = Instant::now();
    while view.check(pair.session_id, &id.to_string(), 0) != ViewAnswer::Revoked {
        assert!(start.elapsed() < Duration::from_secs(15), "never refused");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    start.elapsed()
}

/// `via_proxy`'s connections frozen by `proxy` (open, and silent for good: a
/// flow a firewall or NAT dropped without a word): the view's feed is found
/// hung and replaced, and logouts are pushed again (three in a row under
/// 100 ms, with a 3 s poll that alone could not do it), without a restart.
pub async fn hung_feed_is_replaced(
    direct: Arc<dyn TokenStore>,
    via_proxy: Arc<dyn RevocationLog>,
    proxy: &Proxy,
) {
    let (sessions, _, id) = sessions_for(direct);
    let view = RevocationView::builder(via_proxy)
        .poll_interval(Duration::from_secs(3))
        .max_lag(Duration::from_secs(30))
        .start();
    view.ready(Duration::from_secs(5)).await.unwrap();
    // The view's LISTEN opens right after its first read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = logout_refused_after(&sessions, &view, id).await;
    assert!(before < Duration::from_millis(100), "pushed: {before:?}");

    proxy.freeze();
    let start = Instant::now();
    let mut in_a_row = 0;
    let mut times = Vec::new();
    while in_a_row < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the push never came back: {times:?}"
        );
        let t = logout_refused_after(&sessions, &view, id).await;
        times.push(t);
        in_a_row = if t < Duration::from_millis(100) {
            in_a_row + 1
        } else {
            0
        };
    }
    eprintln!(
        "pushed again {:?} after the freeze; logouts meanwhile: {times:?}",
        start.elapsed()
    );
}
