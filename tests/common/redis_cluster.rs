//! A Redis Cluster for the tests: 3 masters and 3 replicas that the test
//! process starts on loopback ports it picks (`redis-server --cluster-enabled
//! yes`, then `redis-cli --cluster create ... --cluster-replicas 1`), once per
//! test binary, and that go away with it: each node runs under a watchdog shell
//! that stops the node and deletes its directory once the test process is gone,
//! however it ends. `TEST_REDIS_CLUSTER_URLS` (comma-separated `redis://host:port/`
//! seed URLs) names a running cluster to use instead.
//!
//! Without `redis-server` the tests that need a cluster are skipped, except
//! under `CI` (`.ci/run` makes sure it is installed).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running cluster: its seed URLs.
pub struct RedisCluster {
    /// `redis://127.0.0.1:port/` of every node.
    pub urls: Vec<String>,
    /// Where the nodes keep their files, for a cluster the tests started
    /// (`None` for `TEST_REDIS_CLUSTER_URLS`).
    pub dir: Option<PathBuf>,
}

/// The environment variable that names a running cluster.
pub const CLUSTER_URLS: &str = "TEST_REDIS_CLUSTER_URLS";

/// The cluster of this test binary, started on first use; `None` (skip) when
/// it cannot be, except under CI, where that fails the test.
pub fn cluster() -> Option<&'static RedisCluster> {
    static CLUSTER: OnceLock<Result<RedisCluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(start_or_find) {
        Ok(c) => Some(c),
        Err(why) => super::unavailable("Redis Cluster", why),
    }
}

fn start_or_find() -> Result<RedisCluster, String> {
    if let Ok(urls) = std::env::var(CLUSTER_URLS) {
        let urls: Vec<String> = urls.split(',').map(|u| u.trim().to_owned()).collect();
        return Ok(RedisCluster { urls, dir: None });
    }
    let which = Command::new("redis-server").arg("--version").output();
    if !which.is_ok_and(|o| o.status.success()) {
        return Err("redis-server is not installed".to_owned());
    }
    let ports = free_ports(6)?;
    let dir = std::env::temp_dir().join(format!("tjwt-cluster-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for port in &ports {
        start_node(&dir, *port)?;
    }
    for port in &ports {
        wait_for(Duration::from_secs(10), || {
            cli(*port, &["PING"]).is_ok_and(|o| o == "PONG")
        })
        .map_err(|_| format!("node {port} did not start (see {})", dir.display()))?;
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut create = Command::new("redis-cli");
    create
        .arg("--cluster")
        .arg("create")
        .args(&nodes)
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = create.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let cluster = RedisCluster {
        urls: ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}/"))
            .collect(),
        dir: Some(dir),
    };
    wait_for(Duration::from_secs(30), || cluster.is_settled())
        .map_err(|_| "the cluster did not settle in 30 s".to_owned())?;
    Ok(cluster)
}

/// Six loopback ports whose cluster bus ports (+10000) are free too.
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    let mut held = Vec::new();
    for _ in 0..200 {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if let Ok(bus_listener) = TcpListener::bind(("127.0.0.1", bus)) {
            ports.push(port);
            held.push((listener, bus_listener));
            if ports.len() == n {
                return Ok(ports);
            }
        }
    }
    Err("no free loopback ports for the cluster".to_owned())
}

/// Starts one node under a watchdog shell: when this process is gone, the
/// shell stops the node (if it still runs) and deletes the cluster's
/// directory. A node that dies (or is killed by a test) leaves the others'
/// files alone, and can be started again on its port.
fn start_node(dir: &std::path::Path, port: u16) -> Result<(), String> {
    let dir = dir.display().to_string();
    let script = format!(
        "redis-server --port {port} --bind 127.0.0.1 --cluster-enabled yes \
         --cluster-config-file '{dir}/nodes-{port}.conf' --cluster-node-timeout 2000 \
         --dir '{dir}' --save '' --appendonly no --logfile '{dir}/{port}.log' & node=$!; \
         while kill -0 {parent} 2>/dev/null; do sleep 0.3; done; \
         kill $node 2>/dev/null; wait $node; rm -rf '{dir}'",
        parent = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `redis-cli -p port args...`, its output trimmed.
pub fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Polls `ready` every 100 ms until it holds or `limit` has passed.
pub fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> Result<(), ()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(())
}

/// One node of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub port: u16,
    pub master: bool,
    /// The master's id, for a replica.
    pub master_id: Option<String>,
    pub failing: bool,
}

impl RedisCluster {
    /// The nodes' ports (from the URLs).
    pub fn ports(&self) -> Vec<u16> {
        self.urls
            .iter()
            .filter_map(|u| u.trim_end_matches('/').rsplit(':').next()?.parse().ok())
            .collect()
    }

    /// The cluster's nodes, as the first node that answers sees them.
    pub fn nodes(&self) -> Vec<Node> {
        let Some(text) = self
            .ports()
            .into_iter()
            .find_map(|p| cli(p, &["CLUSTER", "NODES"]).ok())
        else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let port = f
                    .get(1)?
                    .split('@')
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()?;
                let flags = *f.get(2)?;
                Some(Node {
                    id: f.first()?.to_string(),
                    port,
                    master: flags.contains("master"),
                    master_id: f.get(3).filter(|m| **m != "-").map(|m| m.to_string()),
                    failing: flags.contains("fail"),
                })
            })
            .collect()
    }

    /// Every node says the cluster is ok, three masters each have a replica
    /// in sync, and the nodes agree on who is master.
    pub fn is_settled(&self) -> bool {
        let ports = self.ports();
        let ok = ports.iter().all(|p| {
            cli(*p, &["CLUSTER", "INFO"]).is_ok_and(|info| info.contains("cluster_state:ok"))
        });
        if !ok {
            return false;
        }
        let nodes = self.nodes();
        let masters: Vec<&Node> = nodes.iter().filter(|n| n.master && !n.failing).collect();
        masters.len() == 3
            && masters.iter().all(|m| {
                cli(m.port, &["INFO", "replication"])
                    .is_ok_and(|i| i.contains("connected_slaves:1") && i.contains("state=online"))
            })
            && nodes.iter().filter(|n| !n.master).all(|r| {
                cli(r.port, &["INFO", "replication"])
                    .is_ok_and(|i| i.contains("master_link_status:up"))
            })
    }

    /// Fails the master at `master_port` over to its replica (`CLUSTER
    /// FAILOVER` on the replica: the master stops taking writes, the replica
    /// catches up, then takes over) and waits until the cluster has settled on
    /// the new master. The new master's port.
    pub fn fail_over(&self, master_port: u16) -> u16 {
        let replica = self.replica_of(master_port);
        let answer = cli(replica.port, &["CLUSTER", "FAILOVER"]).expect("CLUSTER FAILOVER");
        assert_eq!(answer, "OK", "CLUSTER FAILOVER on {}", replica.port);
        wait_for(Duration::from_secs(30), || {
            self.nodes()
                .iter()
                .any(|n| n.port == replica.port && n.master)
                && self.is_settled()
        })
        .expect("the replica took over and the cluster settled");
        replica.port
    }

    /// Kills the master at `master_port` (`SIGKILL`: no goodbye to the
    /// cluster), waits until its replica has taken over (the cluster's node
    /// timeout, 2 s, then an election), then starts the node again on its port
    /// and waits until it has rejoined as the new master's replica. The
    /// promoted replica's port. Only for a cluster the tests started.
    pub fn kill_master(&self, master_port: u16) -> u16 {
        let dir = self.dir.as_ref().expect("a cluster the tests started");
        let replica = self.replica_of(master_port);
        let info = cli(master_port, &["INFO", "server"]).expect("INFO server");
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .expect("the node's pid")
            .trim()
            .to_owned();
        let killed = Command::new("kill").args(["-9", &pid]).status();
        assert!(killed.is_ok_and(|s| s.success()), "kill -9 {pid}");
        wait_for(Duration::from_secs(30), || {
            cli(replica.port, &["ROLE"]).is_ok_and(|r| r.starts_with("master"))
                && cli(replica.port, &["CLUSTER", "INFO"])
                    .is_ok_and(|i| i.contains("cluster_state:ok"))
        })
        .expect("the replica took over");
        start_node(dir, master_port).expect("restart the killed node");
        wait_for(Duration::from_secs(30), || self.is_settled())
            .expect("the restarted node rejoined as a replica");
        replica.port
    }

    /// The replica of the master at `master_port`.
    fn replica_of(&self, master_port: u16) -> Node {
        let nodes = self.nodes();
        let master = nodes
            .iter()
            .find(|n| n.port == master_port && n.master)
            .expect("a master at that port");
        nodes
            .iter()
            .find(|n| n.master_id.as_deref() == Some(master.id.as_str()))
            .expect("the master has a replica")
            .clone()
    }

    /// The ports of the current masters.
    pub fn master_ports(&self) -> Vec<u16> {
        self.nodes()
            .into_iter()
            .filter(|n| n.master && !n.failing)
            .map(|n| n.port)
            .collect()
    }
}

impl RedisCluster {
    /// How many slots the master at `port` serves.
    pub fn slot_count(&self, port: u16) -> u32 {
        let nodes = cli(port, &["CLUSTER", "NODES"]).expect("CLUSTER NODES");
        let line = nodes
            .lines()
            .find(|l| l.contains("myself"))
            .expect("the node itself");
        line.split_whitespace()
            .skip(8)
            .filter(|r| !r.starts_with('['))
            .map(|r| match r.split_once('-') {
                Some((a, b)) => b.parse::<u32>().unwrap() - a.parse::<u32>().unwrap() + 1,
                None => 1,
            })
            .sum()
    }

    /// Moves `slots` hash slots from the master at `from` to the master at `to`
    /// (`redis-cli --cluster reshard`: each slot is marked migrating, its keys
    /// are `MIGRATE`d one batch at a time, then the slot is handed over; clients
    /// meanwhile get `ASK`, `TRYAGAIN` and then `MOVED`), and waits until the
    /// cluster has settled.
    pub fn reshard(&self, from: u16, to: u16, slots: u32) {
        let id_of = |port: u16| cli(port, &["CLUSTER", "MYID"]).expect("CLUSTER MYID");
        let out = Command::new("redis-cli")
            .args(["--cluster", "reshard", &format!("127.0.0.1:{from}")])
            .args(["--cluster-from", &id_of(from)])
            .args(["--cluster-to", &id_of(to)])
            .args(["--cluster-slots", &slots.to_string()])
            .args(["--cluster-pipeline", "10", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("redis-cli --cluster reshard");
        assert!(
            out.status.success(),
            "reshard: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_for(Duration::from_secs(30), || self.is_settled()).expect("settled after the reshard");
    }
}
