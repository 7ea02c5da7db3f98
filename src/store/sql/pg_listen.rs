//! The PostgreSQL revocation view's `LISTEN` connection, kept honest.
//!
//! A revoking transaction's `NOTIFY` wakes the view at its commit. The
//! connection that listens is one of its own: a one-connection pool made from
//! the store's connect options, so the app's pool keeps all its connections,
//! and a connection that hangs holds nothing of the app's (sqlx's listener,
//! when dropped, sends `UNLISTEN` on its connection from a task of its own; on
//! a hung connection that task waits as long as the socket does).
//!
//! A flow that a firewall or a NAT dropped without a word never errors: reads
//! on it wait forever, and the view would lose its push for good (it would
//! still read the log every poll interval, so nothing is missed, only late).
//! So a connection silent for the probe interval is sent a `NOTIFY` on a
//! channel only it listens to; one that has not heard it within the interval
//! again is taken for hung and replaced.

use std::time::{Duration, Instant};

use sqlx::Postgres;
use sqlx::postgres::{PgListener, PgPoolOptions};
use uuid::Uuid;

use super::store::SqlStore;
use crate::error::StoreError;

/// One `LISTEN` connection and what tells it is alive.
pub(super) struct Listening {
    listener: PgListener,
    /// The channel only this connection listens to.
    probe_channel: String,
    /// When it last heard anything (a revocation or its probe).
    heard: Instant,
    /// When its probe was sent, while unanswered.
    probed: Option<Instant>,
}

impl Listening {
    /// A new connection listening to the store's channel and a probe channel
    /// of its own.
    async fn open(store: &SqlStore<Postgres>) -> Result<Self, StoreError> {
        let bound = store.options.get_operation_timeout();
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(bound)
            .connect_lazy_with((*store.pool().connect_options()).clone());
        let probe_channel = format!("tower_jwt_auth_probe_{}", Uuid::new_v4().simple());
        let channel = store.revocation_channel();
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener
                .listen_all([channel.as_str(), probe_channel.as_str()])
                .await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let listener = match tokio::time::timeout(bound, listening).await {
            Ok(Ok(listener)) => listener,
            Ok(Err(e)) => return Err(StoreError::with_source("LISTEN failed", e)),
            Err(_) => return Err(StoreError::new("LISTEN timed out")),
        };
        Ok(Listening {
            listener,
            probe_channel,
            heard: Instant::now(),
            probed: None,
        })
    }

    /// Sends the probe through the store's pool; if it cannot be sent (the
    /// database is away), the connection is not blamed: the next probe is an
    /// interval later.
    async fn probe(&mut self, store: &SqlStore<Postgres>) {
        let notify = sqlx::query("SELECT pg_notify($1, '')")
            .bind(&self.probe_channel)
            .execute(store.pool());
        match tokio::time::timeout(store.options.get_operation_timeout(), notify).await {
            Ok(Ok(_)) => self.probed = Some(Instant::now()),
            _ => self.heard = Instant::now(),
        }
    }
}

/// Returns when a revocation may have been logged (a `NOTIFY` on the store's
/// channel, or the connection lost: the caller reads the log either way), or
/// after `timeout`. Opens the connection on first use and again after it was
/// lost or found hung; probes it while it is silent.
pub(super) async fn wait(store: &SqlStore<Postgres>, timeout: Duration) -> Result<(), StoreError> {
    let deadline = Instant::now() + timeout;
    let every = store.options.get_listen_probe_interval();
    let mut slot = store.log_waiter.lock().await;
    loop {
        if !slot.as_ref().is_some_and(|b| b.is::<Listening>()) {
            *slot = Some(Box::new(Listening::open(store).await?));
        }
        let Some(l) = slot.as_mut().and_then(|b| b.downcast_mut::<Listening>()) else {
            return Ok(());
        };
        if l.probed.is_some_and(|at| at.elapsed() >= every) {
            #[cfg(feature = "tracing")]
            tracing::warn!(
                target: "tower_jwt_auth::revocations",
                "the LISTEN connection did not hear its probe: replaced"
            );
            *slot = None;
            return Ok(());
        }
        if l.probed.is_none() && l.heard.elapsed() >= every {
            l.probe(store).await;
        }
        let next_check = l.probed.unwrap_or(l.heard) + every;
        let until = deadline.min(next_check);
        match tokio::time::timeout_at(until.into(), l.listener.try_recv()).await {
            Err(_) if Instant::now() >= deadline => return Ok(()),
            Err(_) => {}
            Ok(Ok(Some(notification))) => {
                l.heard = Instant::now();
                l.probed = None;
                if notification.channel() != l.probe_channel {
                    return Ok(());
                }
            }
            // The connection was lost: a new one next time; the caller reads
            // the log now, so nothing pushed meanwhile is missed.
            Ok(Ok(None)) => {
                *slot = None;
                return Ok(());
            }
            Ok(Err(e)) => {
                *slot = None;
                return Err(StoreError::with_source("LISTEN connection failed", e));
            }
        }
    }
}
