//! A small HTTP load generator for the example server (`examples/server/`), used
//! by `scripts/loadtest.sh` for what a generic tool cannot do: refresh-token
//! rotation, where every request spends the token the next one needs.
//!
//! ```text
//! cargo run --release --example loadgen -- --base http://127.0.0.1:3000 \
//!     --mode refresh --workers 16 --duration 20 --username alice --password '...'
//! ```
//!
//! Each worker has one keep-alive HTTP/1.1 connection and a session of its own
//! (one login, with `User-Agent: loadgen/<n>`), and then loops:
//!
//! - `--mode refresh`: `POST /api/token/refresh/` with its current refresh token,
//!   keeping the new one the answer carries;
//! - `--mode me`: `GET /api/me/` with its access token.
//!
//! It stops at `--duration` seconds or `--requests` requests, whichever comes
//! first (both are bounded: at most one hour, at most 100 million). Only the
//! loopback range is accepted as a target. A `--warmup` of N seconds runs first
//! and is not counted. Every answer but a 200 counts as an error (a worker
//! whose refresh failed logs in again to go on); a connection that fails is
//! reopened. It prints one summary line of `key=value` pairs:
//! requests, errors, seconds, requests per second, and latency percentiles.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

const MAX_DURATION: u64 = 3600;
const MAX_REQUESTS: u64 = 100_000_000;
/// A worker that cannot log in this many times in a row gives up.
const MAX_LOGIN_FAILURES: u32 = 5;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Me,
    Refresh,
}

#[derive(Debug)]
struct Args {
    addr: SocketAddr,
    mode: Mode,
    workers: usize,
    duration: Duration,
    warmup: Duration,
    requests: u64,
    username: String,
    password: String,
}

fn usage() -> &'static str {
    "usage: loadgen --base http://127.0.0.1:PORT --mode me|refresh --username U --password P \
     [--workers N (16)] [--duration SECS (20)] [--warmup SECS (0)] [--requests N (unbounded but for the duration)]"
}

fn parse_args() -> Result<Args, String> {
    let mut base = None;
    let mut mode = None;
    let mut workers = 16usize;
    let mut duration = 20u64;
    let mut warmup = 0u64;
    let mut requests = MAX_REQUESTS;
    let mut username = None;
    let mut password = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: `{v}` is not a number"))
        };
        match flag.as_str() {
            "--base" => base = Some(value()?),
            "--mode" => {
                mode = Some(match value()?.as_str() {
                    "me" => Mode::Me,
                    "refresh" => Mode::Refresh,
                    other => return Err(format!("--mode: `{other}` is not me or refresh")),
                })
            }
            "--workers" => workers = number(value()?)? as usize,
            "--duration" => duration = number(value()?)?,
            "--warmup" => warmup = number(value()?)?,
            "--requests" => requests = number(value()?)?,
            "--username" => username = Some(value()?),
            "--password" => password = Some(value()?),
            "-h" | "--help" => return Err(usage().into()),
            other => return Err(format!("unknown argument `{other}`\n{}", usage())),
        }
    }
    let base = base.ok_or("--base is required")?;
    let authority = base
        .strip_prefix("http://")
        .ok_or("--base: only http:// URLs")?
        .trim_end_matches('/');
    let addr: SocketAddr = authority
        .parse()
        .map_err(|_| format!("--base: `{authority}` is not an IP address with a port"))?;
    if !addr.ip().is_loopback() {
        return Err("--base: only loopback addresses (127.0.0.0/8, [::1]) are targets".into());
    }
    if !(1..=1024).contains(&workers) {
        return Err("--workers: 1 to 1024".into());
    }
    if !(1..=MAX_DURATION).contains(&duration) || warmup > MAX_DURATION {
        return Err(format!("--duration: 1 to {MAX_DURATION} seconds"));
    }
    if !(1..=MAX_REQUESTS).contains(&requests) {
        return Err(format!("--requests: 1 to {MAX_REQUESTS}"));
    }
    Ok(Args {
        addr,
        mode: mode.ok_or("--mode is required")?,
        workers,
        duration: Duration::from_secs(duration),
        warmup: Duration::from_secs(warmup),
        requests,
        username: username.ok_or("--username is required")?,
        password: password.ok_or("--password is required")?,
    })
}

/// One keep-alive connection.
struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Self {
        Conn {
            addr,
            host: addr.to_string(),
            sender: None,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, Error> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("connected above"))
    }

    /// Sends one request and reads the whole answer. A transport error drops the
    /// connection (the next call reconnects).
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), Error> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body))?;
        let result = async {
            let sender = self.sender().await?;
            sender.ready().await?;
            let res = sender.send_request(req).await?;
            let status = res.status();
            let body = res.into_body().collect().await?.to_bytes();
            Ok::<_, Error>((status, body))
        }
        .await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }
}

/// What a worker holds: its connection and its session's tokens.
struct Worker {
    id: usize,
    conn: Conn,
    access: String,
    refresh: String,
    login_body: Bytes,
}

fn token(body: &[u8], field: &str) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get(field)?.as_str().map(str::to_owned)
}

impl Worker {
    async fn login(&mut self) -> Result<(), Error> {
        let agent = format!("loadgen/{}", self.id);
        let (status, body) = self
            .conn
            .send(
                Method::POST,
                "/api/token/",
                &[("content-type", "application/json"), ("user-agent", &agent)],
                self.login_body.clone(),
            )
            .await?;
        if status != StatusCode::OK {
            return Err(format!("login answered {status}").into());
        }
        self.access = token(&body, "access").ok_or("login: no access token")?;
        self.refresh = token(&body, "refresh").ok_or("login: no refresh token")?;
        Ok(())
    }

    async fn login_retrying(&mut self) -> Result<(), Error> {
        let mut failures = 0;
        loop {
            match self.login().await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    failures += 1;
                    if failures >= MAX_LOGIN_FAILURES {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// One request of the mode; `Ok(true)` for a 200.
    async fn once(&mut self, mode: Mode) -> Result<bool, Error> {
        match mode {
            Mode::Me => {
                let auth = format!("Bearer {}", self.access);
                let (status, _) = self
                    .conn
                    .send(
                        Method::GET,
                        "/api/me/",
                        &[("authorization", &auth)],
                        Bytes::new(),
                    )
                    .await?;
                Ok(status == StatusCode::OK)
            }
            Mode::Refresh => {
                let body = json!({ "refresh": self.refresh }).to_string();
                let (status, body) = self
                    .conn
                    .send(
                        Method::POST,
                        "/api/token/refresh/",
                        &[("content-type", "application/json")],
                        Bytes::from(body),
                    )
                    .await?;
                if status != StatusCode::OK {
                    return Ok(false);
                }
                match (token(&body, "refresh"), token(&body, "access")) {
                    (Some(refresh), Some(access)) => {
                        self.refresh = refresh;
                        self.access = access;
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            }
        }
    }
}

struct Shared {
    mode: Mode,
    /// Requests started in the measured phase (bounded by `--requests`).
    started: AtomicU64,
    limit: u64,
}

struct Outcome {
    histogram: Histogram<u64>,
    requests: u64,
    errors: u64,
    transport_errors: u64,
}

async fn run_worker(
    mut w: Worker,
    shared: Arc<Shared>,
    warmup_until: Instant,
    deadline: Instant,
) -> Result<Outcome, Error> {
    w.login_retrying().await?;
    let mut out = Outcome {
        histogram: Histogram::new_with_bounds(1, 120_000_000, 3)?,
        requests: 0,
        errors: 0,
        transport_errors: 0,
    };
    // The warm-up: not counted.
    while Instant::now() < warmup_until {
        if !matches!(w.once(shared.mode).await, Ok(true)) && shared.mode == Mode::Refresh {
            w.login_retrying().await?;
        }
    }
    loop {
        if Instant::now() >= deadline
            || shared.started.fetch_add(1, Ordering::Relaxed) >= shared.limit
        {
            break;
        }
        let start = Instant::now();
        let result = w.once(shared.mode).await;
        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        out.histogram.saturating_record(micros.max(1));
        out.requests += 1;
        match result {
            Ok(true) => {}
            Ok(false) => {
                out.errors += 1;
                if shared.mode == Mode::Refresh {
                    w.login_retrying().await?;
                }
            }
            Err(_) => {
                out.errors += 1;
                out.transport_errors += 1;
                if shared.mode == Mode::Refresh {
                    w.login_retrying().await?;
                }
            }
        }
    }
    Ok(out)
}

fn ms(micros: u64) -> String {
    format!("{:.2}ms", micros as f64 / 1000.0)
}

async fn run(args: Args) -> Result<(), Error> {
    let login_body =
        Bytes::from(json!({ "username": args.username, "password": args.password }).to_string());
    // Every worker logs in first (Argon2 on the server: a few seconds for many
    // workers), then all start together.
    let mut workers = Vec::with_capacity(args.workers);
    for id in 0..args.workers {
        let mut w = Worker {
            id,
            conn: Conn::new(args.addr),
            access: String::new(),
            refresh: String::new(),
            login_body: login_body.clone(),
        };
        w.login_retrying().await?;
        workers.push(w);
    }
    let shared = Arc::new(Shared {
        mode: args.mode,
        started: AtomicU64::new(0),
        limit: args.requests,
    });
    let begin = Instant::now();
    let warmup_until = begin + args.warmup;
    let deadline = warmup_until + args.duration;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|w| tokio::spawn(run_worker(w, shared.clone(), warmup_until, deadline)))
        .collect();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let (mut requests, mut errors, mut transport) = (0u64, 0u64, 0u64);
    for t in tasks {
        let out = t.await??;
        histogram.add(&out.histogram)?;
        requests += out.requests;
        errors += out.errors;
        transport += out.transport_errors;
    }
    let secs = Instant::now()
        .saturating_duration_since(warmup_until)
        .as_secs_f64();
    let mode = match args.mode {
        Mode::Me => "GET /api/me/",
        Mode::Refresh => "POST /api/token/refresh/",
    };
    println!(
        "loadgen: {mode} workers={} requests={requests} errors={errors} (transport {transport}) seconds={secs:.1} rps={:.0} p50={} p90={} p99={} max={}",
        args.workers,
        requests as f64 / secs.max(1e-9),
        ms(histogram.value_at_quantile(0.50)),
        ms(histogram.value_at_quantile(0.90)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.max()),
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
