//! The connection a [`RedisStore`](super::RedisStore) sends its requests on:
//! one Redis node (a [`ConnectionManager`]), or a Redis Cluster (the `redis`
//! crate's cluster connection, feature `redis-cluster`), which routes each
//! request by its key's slot and follows `MOVED`/`ASK` redirections and
//! failovers. The store's calls are written once against this type; only the
//! key scans of the purge need to know which it is (a cluster is scanned on
//! each master).

use ::redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use ::redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value};

/// One node, or a cluster.
#[derive(Clone)]
pub(super) enum Connection {
    /// A single Redis (or a Sentinel-managed primary behind one address).
    Node(ConnectionManager),
    /// A connection of its own to one node, for blocking reads of the
    /// revocation log.
    Reader(MultiplexedConnection),
    /// A Redis Cluster.
    #[cfg(feature = "redis-cluster")]
    Cluster(::redis::cluster_async::ClusterConnection),
}

/// A node a key scan visits.
pub(super) enum ScanNode {
    /// The one node of a single-node connection.
    Only,
    /// A cluster master, by its address.
    #[cfg(feature = "redis-cluster")]
    Master {
        /// Its host, as the cluster announces it.
        host: String,
        /// Its port.
        port: u16,
    },
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Node(c) => c.req_packed_command(cmd),
            Connection::Reader(c) => c.req_packed_command(cmd),
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Reader(c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Node(c) => c.get_db(),
            Connection::Reader(c) => c.get_db(),
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

impl Connection {
    /// Whether this is a cluster connection.
    pub(super) fn is_cluster(&self) -> bool {
        match self {
            Connection::Node(_) | Connection::Reader(_) => false,
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(_) => true,
        }
    }

    /// The nodes a key scan must visit to see every key: the one node, or
    /// every master of the cluster (from `CLUSTER NODES`, failed ones left out).
    pub(super) async fn scan_nodes(&mut self) -> RedisResult<Vec<ScanNode>> {
        match self {
            Connection::Node(_) | Connection::Reader(_) => Ok(vec![ScanNode::Only]),
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(c) => {
                let nodes: String = ::redis::cmd("CLUSTER").arg("NODES").query_async(c).await?;
                Ok(masters(&nodes))
            }
        }
    }

    /// Sends `cmd` to `node` (a scan step: it names no key to route by).
    pub(super) async fn query_on<T: FromRedisValue>(
        &mut self,
        node: &ScanNode,
        cmd: Cmd,
    ) -> RedisResult<T> {
        match (self, node) {
            (con, ScanNode::Only) => cmd.query_async(con).await,
            #[cfg(feature = "redis-cluster")]
            (Connection::Cluster(c), ScanNode::Master { host, port }) => {
                use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let value = c.route_command(cmd, routing).await?;
                Ok(::redis::from_redis_value(value)?)
            }
            #[cfg(feature = "redis-cluster")]
            (con, ScanNode::Master { .. }) => cmd.query_async(con).await,
        }
    }
}

/// The masters in a `CLUSTER NODES` reply that serve slots and are not
/// failing: `<id> <ip:port@cport[,hostname]> <flags> ...`.
#[cfg(feature = "redis-cluster")]
fn masters(nodes: &str) -> Vec<ScanNode> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.nth(1)?;
            let flags = fields.next()?;
            let flags: Vec<&str> = flags.split(',').collect();
            let serves_slots = line.split_whitespace().nth(8).is_some();
            if !flags.contains(&"master")
                || flags
                    .iter()
                    .any(|f| matches!(*f, "fail" | "fail?" | "noaddr"))
                || !serves_slots
            {
                return None;
            }
            let host_port = address.split(['@', ',']).next()?;
            let (host, port) = host_port.rsplit_once(':')?;
            Some(ScanNode::Master {
                host: host.to_owned(),
                port: port.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(all(test, feature = "redis-cluster"))]
mod tests {
    use super::*;

    #[test]
    fn masters_are_read_from_cluster_nodes() {
        let nodes = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002,host-b master - 0 1 2 connected 5461-10922
c3 127.0.0.1:7003@17003 master,fail - 0 1 3 connected 10923-16383
d4 127.0.0.1:7004@17004 slave a1 0 1 1 connected
e5 127.0.0.1:7005@17005 master - 0 1 5 connected
";
        let found: Vec<(String, u16)> = masters(nodes)
            .into_iter()
            .filter_map(|n| match n {
                ScanNode::Master { host, port } => Some((host, port)),
                ScanNode::Only => None,
            })
            .collect();
        assert_eq!(
            found,
            [
                ("127.0.0.1".to_owned(), 7001),
                ("127.0.0.1".to_owned(), 7002)
            ]
        );
    }
}
