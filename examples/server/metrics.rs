//! `METRICS_BIND`: the crate's metrics (feature `metrics`, through the `metrics`
//! facade) in the Prometheus text format, as `GET /metrics` on a listener of its
//! own, so the API's port never exposes them.
//!
//! The route has no authentication: bind it to loopback or a private network
//! that only the scraper reaches. Unset (the default), no recorder is installed
//! and recording a metric costs next to nothing.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_jwt_auth::metrics::names;

use crate::config::ConfigError;
use crate::errors::{method_not_allowed, not_found};

/// How often histograms are compacted (the exporter leaves it to its caller
/// when its own HTTP listener is not used).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Store call latency buckets, in seconds: from an in-memory check (well under
/// 100 µs) to a database that is struggling.
const STORE_CALL_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0,
];

/// The metrics listener, running.
pub struct MetricsServer {
    /// Where it listens (the real port when `METRICS_BIND` asked for port 0).
    pub addr: SocketAddr,
    serve: JoinHandle<()>,
    upkeep: JoinHandle<()>,
}

impl MetricsServer {
    /// Installs the Prometheus recorder as the process's global one and binds
    /// `bind`. Call before anything records a metric.
    pub async fn start(bind: SocketAddr) -> Result<Self, ConfigError> {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(names::STORE_CALL_SECONDS.to_owned()),
                STORE_CALL_BUCKETS,
            )
            .map_err(|e| ConfigError(format!("metrics: {e}")))?
            .install_recorder()
            .map_err(|e| ConfigError(format!("metrics: cannot install the recorder: {e}")))?;
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| ConfigError(format!("METRICS_BIND: cannot listen on {bind}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ConfigError(format!("METRICS_BIND: {e}")))?;
        let app = Router::new()
            .route(
                "/metrics",
                get(render).fallback(|| async { method_not_allowed("GET, HEAD") }),
            )
            .fallback(not_found)
            .with_state(handle.clone());
        let serve = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "the metrics listener stopped");
            }
        });
        let upkeep = tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        });
        Ok(MetricsServer {
            addr,
            serve,
            upkeep,
        })
    }

    /// Stops the listener (a scrape in flight is cut off: the next one retries).
    pub fn stop(self) {
        self.serve.abort();
        self.upkeep.abort();
    }
}

/// `GET /metrics`: every metric recorded so far, in the text exposition format.
async fn render(State(handle): State<PrometheusHandle>) -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        handle.render(),
    )
        .into_response()
}
