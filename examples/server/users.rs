//! The users table, as a Django project has it: an integer primary key, a UUID
//! `uuid` column that is the id field tokens carry, a unique username, an Argon2
//! password hash and an active flag. It lives in the same database as the
//! sessions (or in memory), and [`Users`] is also the [`UserResolver`] that finds a
//! token's user by the `uuid` column, never by the primary key.

use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use async_trait::async_trait;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use serde::Serialize;
use sqlx::mysql::MySqlPool;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::Semaphore;
use tower_jwt_auth::{DecoyHash, SqlUsers, StoreError, UserLookup, UserResolver};
use uuid::Uuid;

/// A user as requests see it: what `/api/me/` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// The id field: the `uuid` column, the value tokens carry.
    pub id: Uuid,
    /// The username.
    pub username: String,
}

/// What login needs: the user, the password hash and the active flag.
pub struct Credentials {
    /// The user.
    pub user: User,
    /// The PHC string of the Argon2 hash.
    pub password_hash: String,
    /// Whether the user may sign in.
    pub active: bool,
}

/// Why a user could not be created.
#[derive(Debug)]
pub enum CreateError {
    /// The username is taken.
    Taken,
    /// The database failed.
    Store(StoreError),
}

/// The statements of one SQL dialect on one table, written once at start.
struct Statements {
    insert: String,
    by_username: String,
    by_id: String,
}

impl Statements {
    /// `$n` placeholders for PostgreSQL (with the UUID cast), `?` elsewhere.
    fn new(table: &str, postgres: bool) -> Self {
        let (uuid_param, uuid_text) = if postgres {
            ("CAST($1 AS UUID)", "CAST(uuid AS TEXT)")
        } else {
            ("?", "uuid")
        };
        let p = |n: usize| {
            if postgres {
                format!("${n}")
            } else {
                "?".to_owned()
            }
        };
        Statements {
            insert: format!(
                "INSERT INTO {table} (uuid, username, password_hash, is_active, date_joined) VALUES ({uuid_param}, {}, {}, TRUE, {})",
                p(2),
                p(3),
                p(4)
            ),
            by_username: format!(
                "SELECT {uuid_text} AS uuid, username, password_hash, is_active FROM {table} WHERE username = {}",
                p(1)
            ),
            by_id: format!("SELECT username FROM {table} WHERE uuid = {uuid_param}"),
        }
    }
}

enum Backend {
    Memory {
        by_name: DashMap<String, (Uuid, String, bool)>,
        by_id: DashMap<Uuid, String>,
    },
    Sqlite {
        pool: SqlitePool,
        sql: Statements,
        resolver: SqlUsers<Uuid>,
    },
    Postgres {
        pool: PgPool,
        sql: Statements,
        resolver: SqlUsers<Uuid>,
    },
    MySql {
        pool: MySqlPool,
        sql: Statements,
        resolver: SqlUsers<Uuid>,
    },
}

/// The users table, in whichever database the server uses. Cheap to clone.
///
/// As a [`UserResolver`] it answers the user's UUID: on SQL databases through
/// the crate's [`SqlUsers`], which looks the `uuid` column up (never the integer
/// primary key) and checks `is_active`.
#[derive(Clone)]
pub struct Users {
    backend: Arc<Backend>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &*self.backend {
            Backend::Memory { .. } => "memory",
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
            Backend::MySql { .. } => "mysql",
        };
        f.debug_struct("Users").field("backend", &kind).finish()
    }
}

fn store_err(e: sqlx::Error) -> StoreError {
    StoreError::with_source("the users table could not be queried", e)
}

fn config_err(e: tower_jwt_auth::ConfigError) -> sqlx::Error {
    sqlx::Error::Configuration(Box::new(e))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn sql(text: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(text.to_owned())
}

/// Reads a login row, whichever the database.
fn credentials<R: Row>(row: &R) -> Result<Credentials, StoreError>
where
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    let uuid: String = row.try_get("uuid").map_err(store_err)?;
    Ok(Credentials {
        user: User {
            id: uuid
                .parse()
                .map_err(|e| StoreError::with_source("a uuid in the users table is invalid", e))?,
            username: row.try_get("username").map_err(store_err)?,
        },
        password_hash: row.try_get("password_hash").map_err(store_err)?,
        active: row.try_get("is_active").map_err(store_err)?,
    })
}

impl Users {
    /// Users in process memory.
    pub fn memory() -> Self {
        Users {
            backend: Arc::new(Backend::Memory {
                by_name: DashMap::new(),
                by_id: DashMap::new(),
            }),
        }
    }

    /// The table `{prefix}users` in a SQLite database, created if missing.
    pub async fn sqlite(pool: SqlitePool, prefix: &str) -> Result<Self, sqlx::Error> {
        let table = format!("{prefix}users");
        sqlx::query(sql(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                uuid TEXT NOT NULL UNIQUE,
                username TEXT NOT NULL UNIQUE,
                password_hash TEXT NOT NULL,
                is_active BOOLEAN NOT NULL DEFAULT TRUE,
                date_joined INTEGER NOT NULL
            )"
        )))
        .execute(&pool)
        .await?;
        let resolver = SqlUsers::<Uuid>::builder(&table, "uuid")
            .active_column("is_active")
            .sqlite(pool.clone())
            .map_err(config_err)?;
        let sql = Statements::new(&table, false);
        Ok(Users {
            backend: Arc::new(Backend::Sqlite {
                pool,
                sql,
                resolver,
            }),
        })
    }

    /// The table `{prefix}users` in a PostgreSQL database, created if missing.
    pub async fn postgres(pool: PgPool, prefix: &str) -> Result<Self, sqlx::Error> {
        let table = format!("{prefix}users");
        sqlx::query(sql(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                id BIGSERIAL PRIMARY KEY,
                uuid UUID NOT NULL UNIQUE,
                username VARCHAR(150) NOT NULL UNIQUE,
                password_hash TEXT NOT NULL,
                is_active BOOLEAN NOT NULL DEFAULT TRUE,
                date_joined BIGINT NOT NULL
            )"
        )))
        .execute(&pool)
        .await?;
        let resolver = SqlUsers::<Uuid>::builder(&table, "uuid")
            .active_column("is_active")
            .postgres(pool.clone())
            .map_err(config_err)?;
        let sql = Statements::new(&table, true);
        Ok(Users {
            backend: Arc::new(Backend::Postgres {
                pool,
                sql,
                resolver,
            }),
        })
    }

    /// The table `{prefix}users` in a MySQL or MariaDB database, created if missing.
    /// Usernames compare case-sensitively (binary collation), as on the other backends.
    pub async fn mysql(pool: MySqlPool, prefix: &str) -> Result<Self, sqlx::Error> {
        let table = format!("{prefix}users");
        sqlx::query(sql(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                id BIGINT AUTO_INCREMENT PRIMARY KEY,
                uuid CHAR(36) NOT NULL UNIQUE,
                username VARCHAR(150) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL UNIQUE,
                password_hash VARCHAR(255) NOT NULL,
                is_active BOOLEAN NOT NULL DEFAULT TRUE,
                date_joined BIGINT NOT NULL
            ) CHARACTER SET utf8mb4"
        )))
        .execute(&pool)
        .await?;
        let resolver = SqlUsers::<Uuid>::builder(&table, "uuid")
            .active_column("is_active")
            .mysql(pool.clone())
            .map_err(config_err)?;
        let sql = Statements::new(&table, false);
        Ok(Users {
            backend: Arc::new(Backend::MySql {
                pool,
                sql,
                resolver,
            }),
        })
    }

    /// Adds an active user; the username must be free.
    pub async fn create(&self, username: &str, password_hash: &str) -> Result<User, CreateError> {
        let id = Uuid::new_v4();
        let (uuid, now) = (id.to_string(), now_secs());
        macro_rules! insert {
            ($pool:expr, $sql:expr) => {
                sqlx::query(sql(&$sql.insert))
                    .bind(&uuid)
                    .bind(username)
                    .bind(password_hash)
                    .bind(now)
                    .execute($pool)
                    .await
                    .map(drop)
            };
        }
        let result = match &*self.backend {
            Backend::Memory { by_name, by_id } => {
                return match by_name.entry(username.to_owned()) {
                    Entry::Occupied(_) => Err(CreateError::Taken),
                    Entry::Vacant(v) => {
                        v.insert((id, password_hash.to_owned(), true));
                        by_id.insert(id, username.to_owned());
                        Ok(User {
                            id,
                            username: username.to_owned(),
                        })
                    }
                };
            }
            Backend::Sqlite { pool, sql: s, .. } => insert!(pool, s),
            Backend::Postgres { pool, sql: s, .. } => insert!(pool, s),
            Backend::MySql { pool, sql: s, .. } => insert!(pool, s),
        };
        match result {
            Ok(()) => Ok(User {
                id,
                username: username.to_owned(),
            }),
            Err(e) if is_unique_violation(&e) => Err(CreateError::Taken),
            Err(e) => Err(CreateError::Store(store_err(e))),
        }
    }

    /// Finds a user by username, for login.
    pub async fn by_username(&self, username: &str) -> Result<Option<Credentials>, StoreError> {
        macro_rules! fetch {
            ($pool:expr, $sql:expr) => {
                match sqlx::query(sql(&$sql.by_username))
                    .bind(username)
                    .fetch_optional($pool)
                    .await
                {
                    Ok(Some(row)) => Some(credentials(&row)?),
                    Ok(None) => None,
                    Err(e) => return Err(store_err(e)),
                }
            };
        }
        Ok(match &*self.backend {
            Backend::Memory { by_name, .. } => by_name.get(username).map(|r| Credentials {
                user: User {
                    id: r.0,
                    username: username.to_owned(),
                },
                password_hash: r.1.clone(),
                active: r.2,
            }),
            Backend::Sqlite { pool, sql: s, .. } => fetch!(pool, s),
            Backend::Postgres { pool, sql: s, .. } => fetch!(pool, s),
            Backend::MySql { pool, sql: s, .. } => fetch!(pool, s),
        })
    }

    /// Finds a user by the id field (the `uuid` column), whether active or not.
    pub async fn by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        let uuid = id.to_string();
        macro_rules! fetch {
            ($pool:expr, $sql:expr) => {
                sqlx::query_scalar::<_, String>(sql(&$sql.by_id))
                    .bind(&uuid)
                    .fetch_optional($pool)
                    .await
                    .map_err(store_err)?
            };
        }
        let username = match &*self.backend {
            Backend::Memory { by_id, .. } => by_id.get(&id).map(|name| name.value().clone()),
            Backend::Sqlite { pool, sql: s, .. } => fetch!(pool, s),
            Backend::Postgres { pool, sql: s, .. } => fetch!(pool, s),
            Backend::MySql { pool, sql: s, .. } => fetch!(pool, s),
        };
        Ok(username.map(|username| User { id, username }))
    }
}

#[async_trait]
impl UserResolver for Users {
    type Id = Uuid;
    type User = Uuid;

    /// Finds the user by the `uuid` column (the id field), not the primary key.
    async fn resolve(&self, id: &Uuid) -> Result<UserLookup<Uuid>, StoreError> {
        match &*self.backend {
            Backend::Memory { by_name, by_id } => Ok(match by_id.get(id) {
                None => UserLookup::Missing,
                Some(name) => match by_name.get(name.value()) {
                    Some(r) if r.2 => UserLookup::Active(*id),
                    Some(_) => UserLookup::Inactive,
                    None => UserLookup::Missing,
                },
            }),
            Backend::Sqlite { resolver, .. }
            | Backend::Postgres { resolver, .. }
            | Backend::MySql { resolver, .. } => resolver.resolve(id).await,
        }
    }
}

/// The users `/api/me/` and the session routes see: an active user's id and
/// username, from one lookup by the id field (remembered by a `UserCache` in
/// front of it, so a request needs no query of its own).
#[derive(Clone, Debug)]
pub struct Profiles(pub Users);

#[async_trait]
impl UserResolver for Profiles {
    type Id = Uuid;
    type User = User;

    async fn resolve(&self, id: &Uuid) -> Result<UserLookup<User>, StoreError> {
        Ok(match self.0.resolve(id).await? {
            UserLookup::Active(id) => match self.0.by_id(id).await? {
                Some(user) => UserLookup::Active(user),
                None => UserLookup::Missing,
            },
            UserLookup::Inactive => UserLookup::Inactive,
            UserLookup::Missing => UserLookup::Missing,
        })
    }
}

/// Argon2id password hashing, off the async runtime and a few at a time (each
/// hash takes about 19 MiB and tens of milliseconds by design).
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

/// A hash of a password nobody has: verified against when the username is
/// unknown, so that a login takes as long whether or not the user exists.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(b"no such user")
        .ok()
        .map(|h| h.to_string())
});

impl Passwords {
    /// At most `parallel` hashes at once.
    pub fn new(parallel: usize) -> Self {
        Passwords {
            permits: Arc::new(Semaphore::new(parallel.max(1))),
        }
    }

    /// Computes the dummy hash now rather than on the first unknown username.
    pub fn warm_up(&self) {
        LazyLock::force(&DUMMY_HASH);
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let _permit = self.permits.acquire().await.ok()?;
        tokio::task::spawn_blocking(f).await.ok()
    }

    /// The PHC string of a new Argon2id hash with a random salt.
    pub async fn hash(&self, password: String) -> Option<String> {
        self.blocking(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .ok()
                .map(|h| h.to_string())
        })
        .await
        .flatten()
    }

    /// Whether `password` matches `hash`; with no hash (unknown user), checks
    /// it against the decoy (the same time spent) and answers `false`.
    pub async fn verify(&self, password: String, hash: Option<String>) -> bool {
        let Some(decoy) = DUMMY_HASH.clone() else {
            return false;
        };
        DecoyHash::new(decoy)
            .verify(hash, |phc: String| async move {
                self.blocking(move || {
                    PasswordHash::new(&phc).is_ok_and(|parsed| {
                        Argon2::default()
                            .verify_password(password.as_bytes(), &parsed)
                            .is_ok()
                    })
                })
                .await
                .unwrap_or(false)
            })
            .await
    }
}
