//! How a [`RedisStore`] is made: [`RedisStoreBuilder`] (a URL, an existing
//! connection manager, or a cluster's seed URLs; the key prefix, the
//! connection settings), and the URL redaction that keeps a password out of
//! `Debug`.

use std::fmt;
use std::time::Duration;

use ::redis::Client;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::connection::Connection;
use super::durability::ReplicaAcks;
use super::link::Link;
use super::log::LogSource;
use super::records::Keys;
use super::store::RedisStore;
use super::{DEFAULT_KEY_PREFIX, redis_err};
use crate::error::StoreError;

/// The default bound on read-decide-write rounds of one rotation.
const DEFAULT_MAX_ATTEMPTS: u32 = 24;

/// The default bound on the wait for each answer from Redis.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the connection comes from.
enum Source {
    Url(String),
    Manager(ConnectionManager),
    #[cfg(feature = "redis-cluster")]
    Cluster(Vec<String>),
}

/// Builds a [`RedisStore`]: from a URL or an existing [`ConnectionManager`], with a
/// key prefix.
#[must_use]
pub struct RedisStoreBuilder {
    source: Option<Source>,
    prefix: String,
    config: Option<ConnectionManagerConfig>,
    max_attempts: u32,
    response_timeout: Option<Duration>,
    replica_acks: Option<ReplicaAcks>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            None => "none".to_owned(),
            Some(Source::Url(u)) => redact_url(u),
            Some(Source::Manager(_)) => "connection manager".to_owned(),
            #[cfg(feature = "redis-cluster")]
            Some(Source::Cluster(urls)) => redact_urls(urls),
        };
        f.debug_struct("RedisStoreBuilder")
            .field("source", &source)
            .field("prefix", &self.prefix)
            .field("max_attempts", &self.max_attempts)
            .field("response_timeout", &self.response_timeout)
            .field("replica_acks", &self.replica_acks)
            .finish_non_exhaustive()
    }
}

impl Default for RedisStoreBuilder {
    fn default() -> Self {
        RedisStoreBuilder {
            source: None,
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            config: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            response_timeout: None,
            replica_acks: None,
        }
    }
}

/// The connection manager's settings when none are given: fail fast while Redis
/// is away (a request gets a 503 within about a second instead of hanging), and
/// keep reconnecting in the background on the next requests.
pub fn default_connection_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(DEFAULT_RESPONSE_TIMEOUT))
}

impl RedisStore {
    /// A builder; give it a URL or a connection manager.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder::default()
    }

    /// Connects to `url` with the default key prefix and settings.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().url(url).build().await
    }
}

impl RedisStoreBuilder {
    /// Connect to this URL (`redis://[:password@]host:port/db`, `rediss://` needs
    /// the `redis` crate's TLS features). The password never shows in `Debug`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.source = Some(Source::Url(url.into()));
        self
    }

    /// Use an existing connection manager (its own reconnect settings apply; the
    /// store's [response timeout](Self::response_timeout) bounds every request
    /// on it all the same).
    pub fn connection_manager(mut self, manager: ConnectionManager) -> Self {
        self.source = Some(Source::Manager(manager));
        self
    }

    /// Run on a Redis Cluster (or Valkey cluster, ElastiCache or MemoryDB in
    /// cluster mode) reached through these seed nodes
    /// (`redis://[:password@]host:port/`, one is enough; the others are
    /// learned from the cluster). Requests are routed by slot and follow
    /// `MOVED`/`ASK` redirections and failovers; every key of one user shares
    /// one slot (see the [module docs](super)). Feature `redis-cluster`.
    #[cfg(feature = "redis-cluster")]
    pub fn cluster_urls<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.source = Some(Source::Cluster(urls.into_iter().map(Into::into).collect()));
        self
    }

    /// The key prefix (default [`DEFAULT_KEY_PREFIX`]), so several apps can share
    /// one Redis. Give each app its own; one prefix should not be another followed
    /// by `:`. Must be 1 to 128 bytes, without whitespace or the glob characters
    /// `* ? [ ] \` or braces.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Reconnect and timeout settings for a store built from a URL (default:
    /// [`default_connection_config`]). On a cluster, its connection and
    /// response timeouts apply to each node's connection.
    pub fn connection_config(mut self, config: ConnectionManagerConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// How long the store waits for each answer from Redis before the call fails
    /// with a [`StoreError`] (503): a Redis that stopped answering never hangs a
    /// request. It bounds every request the store sends (a rotation sends two),
    /// whatever the connection's own settings, so it also applies to a
    /// [connection manager](Self::connection_manager) built elsewhere. Default:
    /// the response timeout of the [connection settings](Self::connection_config)
    /// when they have one, else [`DEFAULT_RESPONSE_TIMEOUT`] (1 s). Must not be
    /// zero.
    ///
    /// A request that timed out may still run in Redis: a rotation whose answer
    /// came too late is answered again (the same successor) to the client's
    /// retry within the reuse window.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = Some(timeout);
        self
    }

    /// Answer a write (a session created, a rotation, a revocation) only once
    /// `replicas` replicas have it (`WAIT`, sent with the write to its node),
    /// waiting at most `timeout` for them; a write they did not all
    /// acknowledge in time is a [`StoreError`] (503), which the client retries.
    /// Redis replicates asynchronously: without this, a primary that dies just
    /// after answering can take the write with it, and a client holding the
    /// successor of a lost rotation has lost its session. With it, a failover
    /// loses no answered write as long as a replica that has it is promoted.
    /// Off by default; `docs/redis.md` measures what it costs. `replicas`
    /// must be at least 1 and `timeout` not zero.
    pub fn replica_acks(mut self, replicas: u32, timeout: Duration) -> Self {
        self.replica_acks = Some(ReplicaAcks { replicas, timeout });
        self
    }

    /// How many read-decide-write rounds one rotation may take when concurrent
    /// writers keep changing its session (default 24, at least 1). Running out is a
    /// [`StoreError`], never a token outcome.
    pub fn max_rotation_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Connects now and loads the scripts (`SCRIPT LOAD`): an unreachable Redis
    /// is an error here. Later calls send only the scripts' hashes.
    pub async fn build(mut self) -> Result<RedisStore, StoreError> {
        let keys = self.keys()?;
        let store = match self.take_source()? {
            Source::Manager(m) => {
                self.finish(keys, Link::new(Connection::Node(m), None), None, None)
            }
            Source::Url(url) => {
                let (client, config) = self.client(&url)?;
                let con = ConnectionManager::new_with_config(client.clone(), config.clone())
                    .await
                    .map_err(redis_err)?;
                let redacted = redact_url(&url);
                let link = Link::new(Connection::Node(con), Some((client.clone(), config)));
                let source = LogSource::Node(client);
                self.finish(keys, link, Some(redacted), Some(source))
            }
            #[cfg(feature = "redis-cluster")]
            Source::Cluster(urls) => {
                let (client, config) = self.cluster_client(&urls)?;
                let con = client
                    .get_async_connection_with_config(config)
                    .await
                    .map_err(redis_err)?;
                let redacted = redact_urls(&urls);
                let source = LogSource::Cluster(Box::new(client));
                let link = Link::new(Connection::Cluster(con), None);
                self.finish(keys, link, Some(redacted), Some(source))
            }
        };
        store.load_scripts().await?;
        Ok(store)
    }

    /// Builds without connecting: the connection is made on first use, so an app
    /// can start while Redis is still away (its requests get 503 until it is back).
    /// Needs a Tokio runtime.
    pub fn build_lazy(mut self) -> Result<RedisStore, StoreError> {
        let keys = self.keys()?;
        match self.take_source()? {
            Source::Manager(m) => {
                let link = Link::new(Connection::Node(m), None);
                Ok(self.finish(keys, link, None, None))
            }
            Source::Url(url) => {
                let (client, config) = self.client(&url)?;
                let con = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                    .map_err(redis_err)?;
                let redacted = redact_url(&url);
                let link = Link::new(Connection::Node(con), Some((client.clone(), config)));
                let source = LogSource::Node(client);
                Ok(self.finish(keys, link, Some(redacted), Some(source)))
            }
            #[cfg(feature = "redis-cluster")]
            Source::Cluster(urls) => {
                let (client, config) = self.cluster_client(&urls)?;
                let con = client.get_pending_async_connection_with_config(config);
                let redacted = redact_urls(&urls);
                let source = LogSource::Cluster(Box::new(client));
                let link = Link::new(Connection::Cluster(con), None);
                Ok(self.finish(keys, link, Some(redacted), Some(source)))
            }
        }
    }

    /// The keys under the configured prefix, once the settings are checked.
    fn keys(&self) -> Result<Keys, StoreError> {
        if self
            .replica_acks
            .is_some_and(|a| a.replicas == 0 || a.timeout.is_zero())
        {
            return Err(StoreError::new(
                "replica acknowledgements need at least one replica and a timeout",
            ));
        }
        if self.response_timeout.is_some_and(|t| t.is_zero()) {
            return Err(StoreError::new(
                "the Redis response timeout must not be zero",
            ));
        }
        Keys::new(&self.prefix)
    }

    /// The configured source, taken out of the builder.
    fn take_source(&mut self) -> Result<Source, StoreError> {
        self.source
            .take()
            .ok_or_else(|| StoreError::new("no Redis URL or connection manager configured"))
    }

    /// The client for `url`, and the connection settings to open it with.
    fn client(&mut self, url: &str) -> Result<(Client, ConnectionManagerConfig), StoreError> {
        // The parse error could quote the URL: keep it out of the error.
        let client = Client::open(url).map_err(|_| StoreError::new("invalid Redis URL"))?;
        let config = self.config.take().unwrap_or_else(default_connection_config);
        if self.response_timeout.is_none() {
            self.response_timeout = config.response_timeout().filter(|t| !t.is_zero());
        }
        Ok((client, config))
    }

    /// The cluster client for seed `urls`, and the settings of its node
    /// connections: the timeouts of the [connection
    /// settings](Self::connection_config).
    #[cfg(feature = "redis-cluster")]
    fn cluster_client(
        &mut self,
        urls: &[String],
    ) -> Result<
        (
            ::redis::cluster::ClusterClient,
            ::redis::cluster::ClusterConfig,
        ),
        StoreError,
    > {
        if urls.is_empty() {
            return Err(StoreError::new("no Redis Cluster seed URL configured"));
        }
        let settings = self.config.take().unwrap_or_else(default_connection_config);
        let response = settings
            .response_timeout()
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_RESPONSE_TIMEOUT);
        let connect = settings
            .connection_timeout()
            .filter(|t| !t.is_zero())
            .unwrap_or(DEFAULT_RESPONSE_TIMEOUT);
        if self.response_timeout.is_none() {
            self.response_timeout = Some(response);
        }
        // The parse error could quote a URL: keep it out of the error.
        let client = ::redis::cluster::ClusterClientBuilder::new(urls.to_vec())
            .connection_timeout(connect)
            .response_timeout(response)
            .build()
            .map_err(|_| StoreError::new("invalid Redis Cluster URL"))?;
        let config = ::redis::cluster::ClusterConfig::new()
            .set_connection_timeout(connect)
            .set_response_timeout(response);
        Ok((client, config))
    }

    /// The store; only the redacted URL is kept, for `Debug`.
    fn finish(
        self,
        keys: Keys,
        con: Link,
        redacted_url: Option<String>,
        log_source: Option<LogSource>,
    ) -> RedisStore {
        let timeout = self.response_timeout.unwrap_or(DEFAULT_RESPONSE_TIMEOUT);
        let mut store = RedisStore::new(
            con,
            keys,
            redacted_url,
            self.max_attempts,
            timeout,
            log_source,
        );
        store.replica_acks = self.replica_acks;
        store
    }
}

/// Seed URLs, each redacted, comma-separated.
#[cfg(feature = "redis-cluster")]
fn redact_urls(urls: &[String]) -> String {
    urls.iter()
        .map(|u| redact_url(u))
        .collect::<Vec<_>>()
        .join(",")
}

/// The URL with its password (userinfo or `password=` query parameter) replaced by `***`.
fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let at = rest + at;
            if let Some(colon) = out[rest..at].find(':') {
                out.replace_range(rest + colon + 1..at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("pass") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://:s3cret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact_url("redis://user:s3cret@host/"),
            "redis://user:***@host/"
        );
        assert_eq!(redact_url("redis://host:6379/"), "redis://host:6379/");
        assert_eq!(redact_url("redis://user@host/"), "redis://user@host/");
        assert_eq!(
            redact_url("redis://host/?password=s3cret&db=1"),
            "redis://host/?password=***&db=1"
        );
        assert_eq!(redact_url("redis://a:b:c@d@host/"), "redis://a:***@host/");
    }

    #[test]
    fn debug_hides_the_password() {
        let b = RedisStore::builder().url("redis://:hunter2hunter2@localhost/");
        assert!(!format!("{b:?}").contains("hunter2"));
    }
}
