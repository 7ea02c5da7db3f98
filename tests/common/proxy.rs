//! A TCP proxy in front of a real service, which a test can cut and restore: the
//! database "goes away" and comes back without touching the real server.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy. Dropping it stops accepting.
pub struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    freeze: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Proxies a new local port to `target` (`host:port`).
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let (freeze, _) = watch::channel(0u64);
        let (up2, cut2, freeze2) = (up.clone(), cut.clone(), freeze.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let mut cut_rx = cut2.subscribe();
                let mut freeze_rx = freeze2.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.changed() => {}
                        // Frozen: both sockets stay open, nothing passes,
                        // until a cut or the proxy's end.
                        _ = freeze_rx.changed() => {
                            let _ = cut_rx.changed().await;
                        }
                    }
                });
            }
        });
        Proxy {
            addr,
            up,
            cut,
            freeze,
            task,
        }
    }

    /// The proxy's own address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every open connection and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    /// Every open connection goes silent for good, without being closed (a
    /// flow a firewall or NAT dropped without a word: reads on it wait
    /// forever); new connections pass as usual.
    pub fn freeze(&self) {
        self.freeze.send_modify(|n| *n += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut.send_modify(|n| *n += 1);
    }
}

/// `host:port` of a Redis URL (`redis://[user:pass@]host[:port][/db]`), the
/// proxy's target.
pub fn redis_host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:6379")
    }
}

/// The Redis URL `url` with its host and port replaced by `proxy`'s.
pub fn redis_url_via(url: &str, proxy: &Proxy) -> String {
    url.replacen(&redis_host_port(url), &proxy.addr().to_string(), 1)
}
