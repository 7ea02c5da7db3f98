//! The server's configuration, read from the environment. Every variable has a
//! default that works on a fresh machine; a value that cannot work is an error
//! with one clear line, reported before anything starts.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tower_jwt_auth::Algorithm;
use zeroize::Zeroizing;

/// The SQLite file created in the working directory when `DATABASE_URL` is unset.
pub const DEFAULT_SQLITE_FILE: &str = "tower-jwt-auth-example.db";

/// A configuration that cannot work: printed as one line, exit code 2.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where users and (unless `REDIS_URL` is set) sessions live.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// In process memory: gone at exit.
    Memory,
    /// A SQLite URL (`sqlite://path`; the file is created when missing).
    Sqlite(String),
    /// A PostgreSQL URL.
    Postgres(String),
    /// A MySQL or MariaDB URL.
    MySql(String),
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl Database {
    /// The URL with any password replaced by `***`, for messages and logs.
    pub fn display(&self) -> String {
        match self {
            Database::Memory => "memory".into(),
            Database::Sqlite(u) | Database::Postgres(u) | Database::MySql(u) => redact(u),
        }
    }
}

/// The signing key's source.
pub enum KeySource {
    /// An HMAC secret from `JWT_SECRET`.
    Secret(Zeroizing<Vec<u8>>),
    /// A private key in PEM from `JWT_PRIVATE_KEY_FILE`.
    PemFile(PathBuf),
    /// Nothing given: a random secret or a fresh key pair, valid until the process ends.
    Generate,
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Secret(_) => f.write_str("Secret(***)"),
            KeySource::PemFile(p) => f.debug_tuple("PemFile").field(p).finish(),
            KeySource::Generate => f.write_str("Generate"),
        }
    }
}

/// Everything the server reads from the environment.
#[derive(Debug)]
pub struct Config {
    /// `BIND`: the listening address (default `127.0.0.1:3000`; port 0 picks a free one).
    pub bind: SocketAddr,
    /// `DATABASE_URL`: users, and sessions unless Redis holds them.
    pub database: Database,
    /// `REDIS_URL` or `REDIS_CLUSTER_URLS`: when set, sessions live in Redis.
    pub redis: Option<Redis>,
    /// `JWT_ALG` (default HS256).
    pub alg: Algorithm,
    /// `JWT_SECRET` or `JWT_PRIVATE_KEY_FILE`, or neither.
    pub key: KeySource,
    /// `JWT_KID`: the key id in token headers and the JWKS.
    pub kid: Option<String>,
    /// `JWT_ISSUER`: written into and required on every token.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: written into and required on every token.
    pub audience: Option<String>,
    /// `ACCESS_TTL_SECS` (default 300).
    pub access_ttl: Duration,
    /// `REFRESH_TTL_SECS` (default 86400).
    pub refresh_ttl: Duration,
    /// `SESSION_MAX_AGE_SECS` (default: the crate's, 30 days).
    pub session_max_age: Option<Duration>,
    /// `REUSE_GRACE_SECS`, the reuse window (default 10 s; 0: strict single use).
    pub reuse_grace: Duration,
    /// `TABLE_PREFIX`: prefixed to the users table (default none).
    pub table_prefix: String,
    /// `METRICS_BIND`: when set, `GET /metrics` (Prometheus text format) is served
    /// on this address, a listener of its own (default: no metrics route).
    pub metrics_bind: Option<SocketAddr>,
    /// `PUBLIC_ORIGIN`: the origin (`scheme://host[:port]`) whose pages may
    /// call the cookie routes; default: the origin each request was sent to.
    pub public_origin: Option<String>,
    /// `OIDC_ISSUER` with `OIDC_AUDIENCE` (and `OIDC_ALLOW_HTTP=1` for a
    /// provider on loopback): an outside issuer whose tokens are accepted too.
    pub oidc: Option<Oidc>,
}

/// An outside OpenID Provider whose access tokens the server accepts.
#[derive(Debug, Clone)]
pub struct Oidc {
    /// `OIDC_ISSUER`: its `iss`, where discovery starts.
    pub issuer: String,
    /// `OIDC_AUDIENCE`: the audience its tokens must carry for this API.
    pub audience: String,
    /// `OIDC_ALLOW_HTTP=1`: a plain-HTTP provider (loopback tests only).
    pub allow_http: bool,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `get` (the environment, or a map in tests).
    /// An empty variable counts as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let err = |msg: String| ConfigError(msg);

        let bind = match get("BIND") {
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
            Some(v) => v.trim().parse().map_err(|_| {
                err(format!("BIND: `{v}` is not an address with a port, such as 127.0.0.1:3000 or [::1]:8080"))
            })?,
        };
        let metrics_bind = match get("METRICS_BIND") {
            None => None,
            Some(v) => Some(v.trim().parse::<SocketAddr>().map_err(|_| {
                err(format!(
                    "METRICS_BIND: `{v}` is not an address with a port, such as 127.0.0.1:9100"
                ))
            })?),
        };
        if metrics_bind.is_some_and(|m| m == bind && m.port() != 0) {
            return Err(err(
                "METRICS_BIND: must differ from BIND (metrics have a listener of their own)".into(),
            ));
        }
        let database = parse_database(get("DATABASE_URL"))?;
        let redis = parse_redis(get("REDIS_URL"), get("REDIS_CLUSTER_URLS"))?;
        let alg = match get("JWT_ALG") {
            None => Algorithm::HS256,
            Some(v) => parse_alg(&v)?,
        };
        let hmac = matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512);
        let key = match (get("JWT_SECRET"), get("JWT_PRIVATE_KEY_FILE")) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "JWT_SECRET and JWT_PRIVATE_KEY_FILE are both set: give one".into(),
                ));
            }
            (Some(secret), None) if hmac => {
                let min = match alg {
                    Algorithm::HS384 => 48,
                    Algorithm::HS512 => 64,
                    _ => 32,
                };
                if secret.len() < min {
                    return Err(err(format!(
                        "JWT_SECRET must be at least {min} bytes for {alg:?} (it has {}); make one with `openssl rand -base64 48`",
                        secret.len()
                    )));
                }
                KeySource::Secret(Zeroizing::new(secret.into_bytes()))
            }
            (Some(_), None) => {
                return Err(err(format!(
                    "JWT_SECRET is for HS256/HS384/HS512; {alg:?} signs with a private key: set JWT_PRIVATE_KEY_FILE or unset both"
                )));
            }
            (None, Some(path)) if !hmac => KeySource::PemFile(PathBuf::from(path)),
            (None, Some(_)) => {
                return Err(err(format!(
                    "JWT_PRIVATE_KEY_FILE is for asymmetric algorithms; {alg:?} uses JWT_SECRET"
                )));
            }
            (None, None) => KeySource::Generate,
        };
        let secs = |name: &str,
                    default: Option<u64>,
                    min: u64|
         -> Result<Option<Duration>, ConfigError> {
            match get(name) {
                None => Ok(default.map(Duration::from_secs)),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n >= min && n <= 10 * 365 * 86_400 => Ok(Some(Duration::from_secs(n))),
                    _ => Err(err(format!(
                        "{name}: `{v}` is not a number of seconds between {min} and 315360000"
                    ))),
                },
            }
        };
        let access_ttl = secs("ACCESS_TTL_SECS", Some(300), 1)?.unwrap_or_default();
        let refresh_ttl = secs("REFRESH_TTL_SECS", Some(86_400), 1)?.unwrap_or_default();
        let session_max_age = secs("SESSION_MAX_AGE_SECS", None, 1)?;
        let default_window = tower_jwt_auth::sessions::DEFAULT_REUSE_WINDOW.as_secs();
        let reuse_grace = secs("REUSE_GRACE_SECS", Some(default_window), 0)?.unwrap_or_default();
        if reuse_grace > Duration::from_secs(300) {
            return Err(err(
                "REUSE_GRACE_SECS: at most 300 seconds (the reuse window is for lost answers and racing tabs)"
                    .into(),
            ));
        }
        let table_prefix = get("TABLE_PREFIX").unwrap_or_default();
        if table_prefix.len() > 32
            || !table_prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(err(
                "TABLE_PREFIX: up to 32 characters of a-z, 0-9 and _".into()
            ));
        }
        let kid = get("JWT_KID");
        if kid
            .as_ref()
            .is_some_and(|k| k.len() > 128 || k.chars().any(|c| c.is_control()))
        {
            return Err(err("JWT_KID: up to 128 printable characters".into()));
        }
        let public_origin = get("PUBLIC_ORIGIN").map(|v| v.trim().to_owned());
        if let Some(origin) = &public_origin
            && let Err(e) = tower_jwt_auth::RefreshCookie::new().allowed_origins([origin])
        {
            return Err(err(format!("PUBLIC_ORIGIN: {e}")));
        }
        let oidc = match (get("OIDC_ISSUER"), get("OIDC_AUDIENCE")) {
            (None, None) => None,
            (Some(issuer), Some(audience)) => Some(Oidc {
                issuer: issuer.trim().to_owned(),
                audience: audience.trim().to_owned(),
                allow_http: match get("OIDC_ALLOW_HTTP").as_deref().map(str::trim) {
                    None | Some("0") => false,
                    Some("1") => true,
                    Some(v) => return Err(err(format!("OIDC_ALLOW_HTTP: `{v}` is not 0 or 1"))),
                },
            }),
            (Some(_), None) => {
                return Err(err(
                    "OIDC_ISSUER needs OIDC_AUDIENCE: the audience its tokens carry for this API"
                        .into(),
                ));
            }
            (None, Some(_)) => return Err(err("OIDC_AUDIENCE is set without OIDC_ISSUER".into())),
        };
        Ok(Config {
            oidc,
            bind,
            database,
            redis,
            alg,
            key,
            kid,
            issuer: get("JWT_ISSUER"),
            audience: get("JWT_AUDIENCE"),
            access_ttl,
            refresh_ttl,
            session_max_age,
            reuse_grace,
            table_prefix,
            metrics_bind,
            public_origin,
        })
    }
}

fn parse_alg(v: &str) -> Result<Algorithm, ConfigError> {
    Ok(match v.trim().to_ascii_uppercase().as_str() {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EDDSA" => Algorithm::EdDSA,
        "RS256" => Algorithm::RS256,
        _ => {
            return Err(ConfigError(format!(
                "JWT_ALG: `{v}` is not one of HS256, HS384, HS512, ES256, ES384, EdDSA, RS256"
            )));
        }
    })
}

fn parse_database(url: Option<String>) -> Result<Database, ConfigError> {
    let Some(url) = url.map(|u| u.trim().to_owned()) else {
        return Ok(Database::Sqlite(format!("sqlite://{DEFAULT_SQLITE_FILE}")));
    };
    if url.eq_ignore_ascii_case("memory") {
        return Ok(Database::Memory);
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(ConfigError(format!(
            "DATABASE_URL: `{}` is not a URL; use sqlite://FILE, postgres://..., mysql://... or memory",
            redact(&url)
        )));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => {
            if rest.is_empty() {
                return Err(ConfigError(
                    "DATABASE_URL: sqlite:// needs a file name, e.g. sqlite://app.db".into(),
                ));
            }
            Ok(Database::Sqlite(url))
        }
        "postgres" | "postgresql" => {
            check_host(&url, rest)?;
            Ok(Database::Postgres(url))
        }
        "mysql" | "mariadb" => {
            check_host(&url, rest)?;
            Ok(Database::MySql(url.replacen("mariadb://", "mysql://", 1)))
        }
        other => Err(ConfigError(format!(
            "DATABASE_URL: unsupported scheme `{other}`; use sqlite://, postgres://, mysql:// or memory"
        ))),
    }
}

fn check_host(url: &str, rest: &str) -> Result<(), ConfigError> {
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() && !rest.contains("host=") {
        return Err(ConfigError(format!(
            "DATABASE_URL: `{}` names no host",
            redact(url)
        )));
    }
    let port = match host.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => host.rsplit_once(':').map(|(_, p)| p),
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Err(ConfigError(format!(
            "DATABASE_URL: `{}` has an invalid port",
            redact(url)
        )));
    }
    Ok(())
}

/// The URL with the password of its user info replaced by `***`.
/// Where sessions live in Redis.
#[derive(Debug, Clone)]
pub enum Redis {
    /// `REDIS_URL`: one Redis.
    Node(String),
    /// `REDIS_CLUSTER_URLS`: a Redis Cluster's seed nodes.
    Cluster(Vec<String>),
}

impl Redis {
    /// The URL or URLs, passwords redacted, for messages.
    pub fn describe(&self) -> String {
        match self {
            Redis::Node(url) => redact(url),
            Redis::Cluster(urls) => {
                let urls: Vec<String> = urls.iter().map(|u| redact(u)).collect();
                format!("the cluster {}", urls.join(","))
            }
        }
    }
}

/// `REDIS_URL` or `REDIS_CLUSTER_URLS` (comma-separated seed nodes), not both;
/// every URL `redis://` or `rediss://`.
fn parse_redis(
    node: Option<String>,
    cluster: Option<String>,
) -> Result<Option<Redis>, ConfigError> {
    let check = |var: &str, u: &str| {
        if u.starts_with("redis://") || u.starts_with("rediss://") {
            Ok(())
        } else {
            Err(ConfigError(format!(
                "{var}: `{}` is not a redis:// or rediss:// URL",
                redact(u)
            )))
        }
    };
    match (node, cluster) {
        (Some(_), Some(_)) => Err(ConfigError(
            "set REDIS_URL or REDIS_CLUSTER_URLS, not both".into(),
        )),
        (Some(url), None) => {
            check("REDIS_URL", &url)?;
            Ok(Some(Redis::Node(url)))
        }
        (None, Some(list)) => {
            let urls: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect();
            if urls.is_empty() {
                return Err(ConfigError("REDIS_CLUSTER_URLS: no URL given".into()));
            }
            for url in &urls {
                check("REDIS_CLUSTER_URLS", url)?;
            }
            Ok(Some(Redis::Cluster(urls)))
        }
        (None, None) => Ok(None),
    }
}

pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_work_on_a_fresh_machine() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:3000");
        assert_eq!(
            c.database,
            Database::Sqlite("sqlite://tower-jwt-auth-example.db".into())
        );
        assert!(matches!(c.key, KeySource::Generate));
        assert_eq!(c.access_ttl, Duration::from_secs(300));
        assert_eq!(c.refresh_ttl, Duration::from_secs(86_400));
        assert_eq!(c.reuse_grace, Duration::from_secs(10));
        assert_eq!(c.metrics_bind, None);
    }

    #[test]
    fn redis_is_one_node_or_a_cluster() {
        assert!(cfg(&[]).unwrap().redis.is_none());
        let c = cfg(&[("REDIS_URL", "redis://:pw@h:6379/")]).unwrap();
        assert!(matches!(c.redis, Some(Redis::Node(_))));
        let c = cfg(&[("REDIS_CLUSTER_URLS", "redis://a:7000/, redis://b:7001/,")]).unwrap();
        let Some(Redis::Cluster(urls)) = c.redis else {
            panic!("a cluster")
        };
        assert_eq!(urls, ["redis://a:7000/", "redis://b:7001/"]);
        for bad in [
            vec![("REDIS_CLUSTER_URLS", " , ")],
            vec![("REDIS_CLUSTER_URLS", "redis://a:7000/,http://:secret@b/")],
            vec![
                ("REDIS_URL", "redis://a/"),
                ("REDIS_CLUSTER_URLS", "redis://b/"),
            ],
        ] {
            let e = cfg(&bad).unwrap_err();
            assert!(!e.0.contains("secret"), "{}", e.0);
        }
    }

    #[test]
    fn metrics_bind_is_an_address() {
        let c = cfg(&[("METRICS_BIND", "127.0.0.1:9100")]).unwrap();
        assert_eq!(
            c.metrics_bind,
            Some(SocketAddr::from(([127, 0, 0, 1], 9100)))
        );
        assert!(cfg(&[("METRICS_BIND", "9100")]).is_err());
        assert!(cfg(&[("METRICS_BIND", "127.0.0.1:3000")]).is_err());
    }

    #[test]
    fn bad_values_are_one_line_errors() {
        for vars in [
            &[("JWT_SECRET", "short")][..],
            &[("DATABASE_URL", "nonsense")],
            &[("DATABASE_URL", "oracle://x/y")],
            &[("DATABASE_URL", "postgres://u:p@h:notaport/db")],
            &[("BIND", "nowhere")],
            &[("JWT_ALG", "none")],
            &[("ACCESS_TTL_SECS", "0")],
            &[("METRICS_BIND", "somewhere")],
            &[("OIDC_ISSUER", "https://idp.example.com/")],
            &[("OIDC_AUDIENCE", "api")],
            &[
                ("OIDC_ISSUER", "https://idp.example.com/"),
                ("OIDC_AUDIENCE", "api"),
                ("OIDC_ALLOW_HTTP", "yes"),
            ],
            &[
                ("JWT_ALG", "ES256"),
                ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ],
        ] {
            let e = cfg(vars).unwrap_err();
            assert!(!e.0.contains('\n'), "{e}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        let e = cfg(&[("DATABASE_URL", "oracle://u:secret@h/db")]).unwrap_err();
        assert!(!e.0.contains("secret"));
    }

    #[test]
    fn sqlite_files_are_created() {
        let c = cfg(&[("DATABASE_URL", "sqlite:///tmp/x.db")]).unwrap();
        assert_eq!(c.database, Database::Sqlite("sqlite:///tmp/x.db".into()));
        let c = cfg(&[("DATABASE_URL", "memory")]).unwrap();
        assert_eq!(c.database, Database::Memory);
    }
}
