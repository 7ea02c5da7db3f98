//! The revocation view's cost: the layer with the view next to the plain
//! layer and to the layer asking the store (`MemoryStore`), HS256, in one
//! interleaved run, with 100 000 revoked sessions in the view (and 1 000 000
//! sessions in the store behind it); then the view's memory per revoked
//! session (resident set growth while it loads them).
//!
//! ```text
//! cargo bench --bench view
//! ```

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use support::{Variant, interleaved, ready};
use tower::{Layer, Service, service_fn};
use tower_jwt_auth::store::NewSession;
use tower_jwt_auth::{
    Algorithm, Jwt, JwtAuthLayer, Key, MemoryStore, NoCustomClaims, RevocationView, TokenStore,
};
use uuid::Uuid;

const BARE: &str = "bare service";
const PLAIN: &str = "layer, no revocation check";
const VIEW: &str = "layer + revocation view (100k revoked)";
const STORE: &str = "layer + revocation check (MemoryStore, 1M sessions)";

/// Resident set size, bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let jwt = Jwt::builder()
        .signing_key(Key::hmac("k1", Algorithm::HS256, [7u8; 32]).unwrap())
        .issuer("bench")
        .audience("api")
        .build()
        .unwrap();
    let now = jwt.clock().now_secs();
    let store = Arc::new(MemoryStore::new());
    let sessions = 1_000_000u32;
    let revoked = 100_000u32;
    let mut ids = Vec::with_capacity(sessions as usize);
    rt.block_on(async {
        for i in 0..sessions {
            let sid = Uuid::new_v4();
            let user = format!("user-{}", i % 50_000);
            let s = NewSession::new(
                sid,
                user.clone(),
                Uuid::new_v4(),
                now,
                now + 86_400,
                now + 30 * 86_400,
            );
            store.create_session(&s).await.unwrap();
            ids.push((sid, user));
        }
    });
    let before = rss();
    rt.block_on(async {
        for (sid, user) in ids.iter().take(revoked as usize) {
            store.revoke_session(*sid, user, now).await.unwrap();
        }
    });
    let log_grew = rss().saturating_sub(before);
    let before = rss();
    let view = {
        let _guard = rt.enter();
        RevocationView::builder(store.clone()).start()
    };
    rt.block_on(view.ready(Duration::from_secs(60))).unwrap();
    let view_grew = rss().saturating_sub(before);
    assert_eq!(view.revoked_sessions(), revoked as usize);
    println!(
        "view of {revoked} revoked sessions: resident set +{:.1} MiB, {:.0} bytes per revoked session (the store's log for them: +{:.1} MiB)",
        view_grew as f64 / 1048576.0,
        view_grew as f64 / f64::from(revoked),
        log_grew as f64 / 1048576.0
    );

    // A live session's access token (not revoked).
    let (live, user) = ids[(revoked + 1) as usize].clone();
    let (token, _) = jwt.issue_access(&user, live, &NoCustomClaims).unwrap();
    let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    let bare = service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(bytes::Bytes::new()))
    });
    let req = || {
        Request::get("/")
            .header(http::header::AUTHORIZATION, header.clone())
            .body(())
            .unwrap()
    };
    let plain = JwtAuthLayer::new(jwt.clone()).layer(bare);
    let with_view = JwtAuthLayer::new(jwt.clone())
        .revocation_view(view.clone())
        .layer(bare);
    let with_store = JwtAuthLayer::new(jwt.clone())
        .revocation_check(store.clone())
        .layer(bare);
    let _guard = rt.enter();
    fn serve<'a, S>(mut svc: S, req: impl Fn() -> Request<()> + 'a) -> impl FnMut() + 'a
    where
        S: Service<Request<()>, Response = Response<bytes::Bytes>, Error = Infallible> + 'a,
    {
        move || assert_eq!(ready(svc.call(req())).unwrap().status(), 200)
    }
    let mut variants = vec![
        Variant::new(BARE, {
            let mut bare = bare;
            move || assert!(ready(bare.call(req())).is_ok())
        }),
        Variant::new(PLAIN, serve(plain, req)),
        Variant::new(VIEW, serve(with_view, req)),
        Variant::new(STORE, serve(with_store, req)),
    ];
    let r = interleaved(&mut variants, 101, Duration::from_millis(1));
    r.print_medians("HS256, own token, live session");
    println!(
        "layer + view / plain layer: {:.3}x; layer + store check / plain layer: {:.3}x",
        r.median_of(|t| (t(VIEW) - t(BARE)) / (t(PLAIN) - t(BARE))),
        r.median_of(|t| (t(STORE) - t(BARE)) / (t(PLAIN) - t(BARE)))
    );
}
