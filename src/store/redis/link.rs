//! The store's connection, replaced when it stops answering.
//!
//! A flow dropped without a word (a firewall's or a NAT's idle timeout, a
//! host gone) never errors: TCP notices after hours, and a
//! [`ConnectionManager`] reconnects on errors, not on timeouts. So every
//! request would time out, for good. A request that gets no answer within the
//! response timeout puts a new connection in place for the requests after it
//! (at most once per response timeout, so a slow Redis is not flooded with
//! connections); requests already sent finish or time out on the old one.
//! Only a connection the store opened itself from a URL can be opened again: a
//! connection manager the app gave is kept as it is, and a cluster connection
//! follows the cluster's own topology refreshes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ::redis::Client;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use arc_swap::ArcSwap;

use super::connection::Connection;

/// The connection in use, and how to open another.
pub(super) struct Link {
    current: ArcSwap<Connection>,
    reopen: Option<(Client, ConnectionManagerConfig)>,
    /// When the connection was last replaced.
    replaced_at: Mutex<Option<Instant>>,
}

impl Link {
    /// `con`, which `reopen` (a client and its settings) can open again.
    pub(super) fn new(con: Connection, reopen: Option<(Client, ConnectionManagerConfig)>) -> Self {
        Link {
            current: ArcSwap::from_pointee(con),
            reopen,
            replaced_at: Mutex::new(None),
        }
    }

    /// The connection for a request (a cheap clone: it shares the connection).
    pub(super) fn get(&self) -> Connection {
        Connection::clone(&self.current.load())
    }

    /// A request got no answer within `timeout`: the next requests go to a
    /// new connection, unless one was put in place within `timeout`.
    pub(super) fn timed_out(&self, timeout: Duration) {
        let Some((client, config)) = &self.reopen else {
            return;
        };
        let mut at = self
            .replaced_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if at.is_some_and(|t| t.elapsed() < timeout) {
            return;
        }
        // Lazy: it connects on its first request, so this never waits.
        if let Ok(con) = ConnectionManager::new_lazy_with_config(client.clone(), config.clone()) {
            self.current.store(Arc::new(Connection::Node(con)));
            *at = Some(Instant::now());
            #[cfg(feature = "tracing")]
            tracing::warn!(
                target: "tower_jwt_auth::store::redis",
                "Redis did not answer within the response timeout: a new connection replaces the old one"
            );
        }
    }
}
