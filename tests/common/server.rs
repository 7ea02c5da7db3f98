//! The example server (`examples/server/`) as a process on a free port, for
//! the end-to-end tests: built once with the test binary's features, started
//! with a clean environment, killed on drop (its stderr printed when the test
//! failed).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The HS256 secret the servers under test sign with, so a test can mint its own
/// tokens (expired ones, tokens for unknown users).
pub const SECRET: &str = "an end-to-end test secret of at least 32 bytes";

/// The compiled example, built once per test binary with the features this test
/// binary was built with (so the build is the one `cargo test` already made).
pub fn server_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| example_binary("server"))
}

/// The example `name`, built with the features this test binary was built
/// with.
pub fn example_binary(name: &str) -> PathBuf {
    {
        let exe = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/server_e2e-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>")
            .to_path_buf();
        let profile = profile_dir
            .file_name()
            .and_then(|p| p.to_str())
            .unwrap_or("debug")
            .to_owned();
        let target_dir = profile_dir.parent().expect("the target dir").to_path_buf();
        let features: Vec<&str> = [
            ("aws-lc-rs", cfg!(feature = "aws-lc-rs")),
            ("rust-crypto", cfg!(feature = "rust-crypto")),
            ("axum", cfg!(feature = "axum")),
            ("sqlite", cfg!(feature = "sqlite")),
            ("postgres", cfg!(feature = "postgres")),
            ("mysql", cfg!(feature = "mysql")),
            ("redis", cfg!(feature = "redis")),
            ("tracing", cfg!(feature = "tracing")),
            ("metrics", cfg!(feature = "metrics")),
            ("remote-keys", cfg!(feature = "remote-keys")),
            ("sql", cfg!(feature = "sql")),
            ("test-util", cfg!(feature = "test-util")),
        ]
        .into_iter()
        .filter_map(|(f, on)| on.then_some(f))
        .collect();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--quiet",
            "--example",
            name,
            "--no-default-features",
        ])
        .arg("--features")
        .arg(features.join(","))
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
        match profile.as_str() {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "cargo build --example {name} failed");
        let bin = profile_dir
            .join("examples")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "{} was not built", bin.display());
        bin
    }
}

/// Every variable the server reads: cleared, so the caller's environment does not leak in.
pub const SERVER_VARS: &[&str] = &[
    "BIND",
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_CLUSTER_URLS",
    "JWT_ALG",
    "JWT_SECRET",
    "JWT_PRIVATE_KEY_FILE",
    "JWT_KID",
    "JWT_ISSUER",
    "JWT_AUDIENCE",
    "ACCESS_TTL_SECS",
    "REFRESH_TTL_SECS",
    "SESSION_MAX_AGE_SECS",
    "REUSE_GRACE_SECS",
    "TABLE_PREFIX",
    "METRICS_BIND",
    "PUBLIC_ORIGIN",
    "OIDC_ISSUER",
    "OIDC_AUDIENCE",
    "OIDC_ALLOW_HTTP",
    "RUST_LOG",
];

pub fn server_command(vars: &[(&str, &str)], dir: &Path) -> Command {
    example_command(server_binary(), vars, dir)
}

/// The example at `bin` with `vars` and nothing else of the caller's
/// server variables.
pub fn example_command(bin: &Path, vars: &[(&str, &str)], dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir);
    for v in SERVER_VARS {
        cmd.env_remove(v);
    }
    cmd.env("RUST_LOG", "warn");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// A scratch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(super::common::unique_name("tower_jwt_auth_e2e"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server. Killed on drop (also when the test panics, and then its
/// stderr is printed).
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub dir: TempDir,
}

impl Server {
    /// Starts the server on a free port with `vars` (plus the test secret unless
    /// an algorithm is given) and waits for the address it prints.
    pub fn start(vars: &[(&str, &str)]) -> Server {
        let dir = TempDir::new();
        let mut all: Vec<(&str, &str)> = vec![("BIND", "127.0.0.1:0")];
        if !vars
            .iter()
            .any(|(k, _)| *k == "JWT_ALG" || *k == "JWT_SECRET")
        {
            all.push(("JWT_SECRET", SECRET));
        }
        all.extend_from_slice(vars);
        Self::spawn(server_binary(), &all, dir)
    }

    /// Starts the example `name` on a free port with `vars`, and waits for
    /// the address it prints (`listening on http://...`).
    pub fn start_example(name: &str, vars: &[(&str, &str)]) -> Server {
        let mut all: Vec<(&str, &str)> = vec![("BIND", "127.0.0.1:0")];
        all.extend_from_slice(vars);
        Self::spawn(&example_binary(name), &all, TempDir::new())
    }

    fn spawn(bin: &Path, all: &[(&str, &str)], dir: TempDir) -> Server {
        let mut child = example_command(bin, all, &dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let printed = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.trim().to_owned());
                }
                printed.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child,
            base: String::new(),
            stdout,
            stderr,
            dir,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => server.base = base,
            Err(_) => panic!(
                "the server printed no address; stderr:\n{}",
                server.stderr_text()
            ),
        }
        server
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// The metrics URL the server printed (`METRICS_BIND` set), waiting for it.
    pub fn metrics_url(&self) -> String {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let url = self.stdout.lock().unwrap().iter().find_map(|l| {
                l.split("metrics: ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_owned)
            });
            if let Some(url) = url {
                return url;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no metrics URL printed; stdout:\n{}",
            self.stdout.lock().unwrap().join("\n")
        );
    }

    /// Waits up to `limit` for a line containing `needle` on stderr.
    pub fn wait_stderr(&self, needle: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.stderr_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- server stderr ({}) ---\n{}",
                self.dir.0.display(),
                self.stderr_text()
            );
        }
    }
}

pub fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}
