//! The `metrics` feature: validations by outcome (the layer), rotations by
//! outcome (refresh and sliding renewal), store call latency, purged rows, on
//! a recorder of our own.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_jwt_auth::conformance::{Users, sessions_for};
use tower_jwt_auth::metrics::names;
use tower_jwt_auth::{
    JwtAuthLayer, MemoryStore, NoCustomClaims, PurgeTask, Sessions, SlidingTokens, TokenStore,
};

#[derive(Default)]
struct Cell {
    count: Mutex<u64>,
    samples: Mutex<Vec<f64>>,
}

impl CounterFn for Cell {
    fn increment(&self, v: u64) {
        *self.count.lock().unwrap() += v;
    }
    fn absolute(&self, v: u64) {
        *self.count.lock().unwrap() = v;
    }
}

impl HistogramFn for Cell {
    fn record(&self, v: f64) {
        self.samples.lock().unwrap().push(v);
    }
}

/// Keeps every counter and histogram by `name{label=value,...}`.
#[derive(Default, Clone)]
struct Rec(Arc<Mutex<HashMap<String, Arc<Cell>>>>);

impl Rec {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.0.lock().unwrap().entry(name).or_default().clone()
    }
    fn count(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| *c.count.lock().unwrap())
    }
    fn samples(&self, name: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .get(name)
            .map_or(0, |c| c.samples.lock().unwrap().len())
    }
}

impl Recorder for Rec {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}

/// Runs `f` on a current-thread runtime with `rec` as this thread's recorder.
fn with_recorder<F: Future<Output = ()>>(rec: &Rec, f: impl FnOnce() -> F) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(rec, || rt.block_on(f()));
}

fn v(outcome: &str) -> String {
    format!("{}{{outcome={outcome}}}", names::VALIDATIONS)
}
fn r(outcome: &str) -> String {
    format!("{}{{outcome={outcome}}}", names::ROTATIONS)
}
fn op(op: &str) -> String {
    format!("{}{{op={op}}}", names::STORE_CALL_SECONDS)
}

#[test]
fn validations_by_outcome() {
    let rec = Rec::default();
    with_recorder(&rec, || async {
        let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        let (sessions, _, id) = sessions_for(store.clone());
        let pair = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        let svc = ServiceBuilder::new()
            .layer(JwtAuthLayer::new(sessions.jwt().clone()).revocation_check(store.clone()))
            .service(service_fn(|_: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
            }));
        let call = |auth: Option<String>| {
            let svc = svc.clone();
            async move {
                let mut req = Request::get("/");
                if let Some(a) = auth {
                    req = req.header("authorization", a);
                }
                svc.oneshot(req.body(Full::default()).unwrap())
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(
            call(Some(format!("Bearer {}", pair.access))).await,
            StatusCode::OK
        );
        assert_eq!(
            call(Some(format!("Bearer {}", pair.access))).await,
            StatusCode::OK
        );
        assert_eq!(call(None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            call(Some("Bearer abc".into())).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(Some(format!("Bearer {}", pair.refresh))).await,
            StatusCode::UNAUTHORIZED
        );
        sessions.logout(&pair.refresh).await.unwrap();
        assert_eq!(
            call(Some(format!("Bearer {}", pair.access))).await,
            StatusCode::UNAUTHORIZED
        );
    });
    assert_eq!(rec.count(&v("accepted")), 2);
    assert_eq!(rec.count(&v("missing_token")), 1);
    assert_eq!(rec.count(&v("malformed")), 1);
    assert_eq!(rec.count(&v("wrong_type")), 1);
    assert_eq!(rec.count(&v("revoked")), 1);
    // The revocation check's store calls are timed.
    assert_eq!(rec.samples(&op("is_revoked")), 3);
}

#[test]
fn rotations_and_store_latency() {
    let rec = Rec::default();
    with_recorder(&rec, || async {
        let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        let (sessions, users, id): (Sessions<Users>, _, _) = sessions_for(store.clone());
        // Strict single use: the replay below is reuse, not a re-delivery.
        let sessions = sessions
            .with_sliding(SlidingTokens::new())
            .with_reuse_grace(std::time::Duration::ZERO)
            .unwrap();
        let p = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        let q = sessions.refresh(&p.refresh).await.unwrap();
        assert!(sessions.refresh(&p.refresh).await.is_err()); // reuse
        assert!(sessions.refresh(&q.refresh).await.is_err()); // revoked
        assert!(sessions.refresh("garbage").await.is_err()); // invalid token
        let t = sessions
            .login_sliding(&id, &NoCustomClaims, None)
            .await
            .unwrap();
        sessions.renew_sliding(&t.token).await.unwrap();
        let s = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
        users.set_active(&id, false);
        assert!(sessions.refresh(&s.refresh).await.is_err()); // user refused
        sessions.list_sessions(&id.to_string()).await.unwrap();
        sessions.revoke_user(&id).await.unwrap();

        let purge = PurgeTask::start(store, Duration::from_millis(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
        purge.stop().await;
    });
    assert_eq!(rec.count(&r("rotated")), 2);
    assert_eq!(rec.count(&r("reuse_detected")), 1);
    assert_eq!(rec.count(&r("revoked")), 1);
    assert_eq!(rec.count(&r("invalid_token")), 1);
    assert_eq!(rec.count(&r("user_refused")), 1);
    assert_eq!(rec.samples(&op("create_session")), 3);
    assert_eq!(rec.samples(&op("rotate")), 4);
    // The refused user's session revocation.
    assert_eq!(rec.samples(&op("revoke_session")), 1);
    assert_eq!(rec.samples(&op("revoke_user")), 1);
    assert_eq!(rec.samples(&op("list_sessions")), 1);
    assert!(rec.samples(&op("purge_expired")) >= 1);
    assert_eq!(
        rec.count(&format!("{}{{op=rotate}}", names::STORE_ERRORS)),
        0
    );
}

#[test]
fn trusted_issuer_key_fetches_by_outcome() {
    let rec = Rec::default();
    with_recorder(&rec, || async {
        // A JWKS URL where nothing listens, then a prefetch: one failed fetch.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let issuer = tower_jwt_auth::TrustedIssuer::jwks_url(
            "https://idp.test/",
            &format!("http://127.0.0.1:{port}/jwks"),
        )
        .audience("api")
        .allow_http()
        .build()
        .unwrap();
        assert!(issuer.prefetch().await.is_err());
    });
    assert_eq!(
        rec.count(&format!(
            "{}{{issuer=https://idp.test/,outcome=failed}}",
            names::KEY_FETCHES
        )),
        1
    );
}
