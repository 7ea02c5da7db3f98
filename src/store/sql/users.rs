//! [`SqlUsers`]: a [`UserResolver`] on the app's own users table.
//!
//! It looks users up by the column the app chose as its id field (a UUID
//! column beside an integer primary key, an integer key, an email), never by an
//! assumed primary key. Table and column names are checked when the resolver is
//! built; the id value is always a bound parameter, of the column's own type so
//! that the column's index is used.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use async_trait::async_trait;
use sqlx::query::Query;
use sqlx::{Pool, SqlStr};
use uuid::Uuid;

use super::dialect::SqlDatabase;
use super::driver::{Bind as _, Get as _, query, trusted};
use super::validate_ident;
use crate::error::{ConfigError, StoreError};
use crate::user::{UserLookup, UserResolver};

/// The SQL type of the id column, chosen by [`SqlUsers`]' `Id` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdType {
    /// `Id = uuid::Uuid`: a `UUID` column on PostgreSQL; on MySQL, MariaDB and
    /// SQLite a text column (`CHAR(36)`, `UUID` on MariaDB, `TEXT`) holding the
    /// hyphenated form.
    Uuid,
    /// `Id = i64`: any integer column.
    Integer,
    /// `Id = String`: a text column (an email, a username), compared exactly as
    /// the column's collation compares.
    Text,
}

mod sealed {
    /// An id value, bound with the column's type.
    #[allow(unreachable_pub)]
    #[derive(Debug)]
    pub enum IdValue<'a> {
        Uuid(uuid::Uuid),
        Integer(i64),
        Text(&'a str),
    }

    #[allow(unreachable_pub)]
    pub trait Sealed {
        fn id_value(&self) -> IdValue<'_>;
    }
}
use sealed::IdValue;

/// The id types [`SqlUsers`] can look users up by: [`Uuid`], `i64`, `String`.
///
/// The token's user id claim is parsed into this type before any query: a value
/// that cannot be one (not a UUID where the column is a UUID) is refused with a
/// 401 and the database is never asked.
pub trait SqlUserId:
    sealed::Sealed + FromStr + fmt::Display + Clone + Send + Sync + 'static
{
    /// The column type this id binds as.
    const ID_TYPE: IdType;
}

impl sealed::Sealed for Uuid {
    fn id_value(&self) -> IdValue<'_> {
        IdValue::Uuid(*self)
    }
}
impl SqlUserId for Uuid {
    const ID_TYPE: IdType = IdType::Uuid;
}
impl sealed::Sealed for i64 {
    fn id_value(&self) -> IdValue<'_> {
        IdValue::Integer(*self)
    }
}
impl SqlUserId for i64 {
    const ID_TYPE: IdType = IdType::Integer;
}
impl sealed::Sealed for String {
    fn id_value(&self) -> IdValue<'_> {
        IdValue::Text(self)
    }
}
impl SqlUserId for String {
    const ID_TYPE: IdType = IdType::Text;
}

#[derive(Clone)]
enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
    /// Built without any database feature: nothing can construct a resolver.
    #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
    #[allow(dead_code)]
    None,
}

/// A [`UserResolver`] on the app's users table: a user is active when a row has
/// the id value in the id column (and, if configured, a true "active" column).
///
/// The resolved user is its id. Apps that want more of the row in request
/// extensions implement [`UserResolver`] themselves; this one is the lookup
/// refresh needs.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use tower_jwt_auth::{SqlUsers, UserLookup, UserResolver};
/// let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
/// sqlx::raw_sql("CREATE TABLE users (id INTEGER PRIMARY KEY, uuid TEXT UNIQUE NOT NULL, is_active BOOLEAN NOT NULL)")
///     .execute(&pool).await.unwrap();
/// let alice = uuid::Uuid::new_v4();
/// sqlx::query("INSERT INTO users (uuid, is_active) VALUES (?, TRUE)").bind(alice.to_string()).execute(&pool).await.unwrap();
///
/// // The id field is the `uuid` column, not the integer primary key.
/// let users = SqlUsers::<uuid::Uuid>::builder("users", "uuid").active_column("is_active").sqlite(pool).unwrap();
/// assert_eq!(users.resolve(&alice).await.unwrap(), UserLookup::Active(alice));
/// assert_eq!(users.resolve(&uuid::Uuid::new_v4()).await.unwrap(), UserLookup::Missing);
///
/// // Names are identifiers, checked when the resolver is built.
/// assert!(SqlUsers::<i64>::builder("users; DROP TABLE users", "id").sqlite(sqlx::SqlitePool::connect_lazy("sqlite::memory:").unwrap()).is_err());
/// # }
/// ```
pub struct SqlUsers<Id: SqlUserId> {
    backend: Backend,
    sql: SqlStr,
    has_active: bool,
    table: String,
    id_column: String,
    _id: PhantomData<fn() -> Id>,
}

impl<Id: SqlUserId> fmt::Debug for SqlUsers<Id> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlUsers")
            .field("table", &self.table)
            .field("id_column", &self.id_column)
            .field("id_type", &Id::ID_TYPE)
            .field("has_active_column", &self.has_active)
            .finish_non_exhaustive()
    }
}

impl<Id: SqlUserId> Clone for SqlUsers<Id> {
    fn clone(&self) -> Self {
        SqlUsers {
            backend: self.backend.clone(),
            sql: self.sql.clone(),
            has_active: self.has_active,
            table: self.table.clone(),
            id_column: self.id_column.clone(),
            _id: PhantomData,
        }
    }
}

impl<Id: SqlUserId> SqlUsers<Id> {
    /// Starts a resolver on `table` (`users`, or `schema.users`), looking users
    /// up by `id_column`, whose type `Id` gives ([`Uuid`], `i64` or `String`).
    pub fn builder(table: impl Into<String>, id_column: impl Into<String>) -> SqlUsersBuilder<Id> {
        SqlUsersBuilder {
            table: table.into(),
            id_column: id_column.into(),
            active_column: None,
            _id: PhantomData,
        }
    }

    /// The id column's type.
    pub fn id_type(&self) -> IdType {
        Id::ID_TYPE
    }
}

/// Configures a [`SqlUsers`]; the names are checked by the database-specific
/// `build` methods (`sqlite`,
/// `postgres`, `mysql`, one per database feature).
pub struct SqlUsersBuilder<Id> {
    table: String,
    id_column: String,
    active_column: Option<String>,
    _id: PhantomData<fn() -> Id>,
}

impl<Id> fmt::Debug for SqlUsersBuilder<Id> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlUsersBuilder")
            .field("table", &self.table)
            .field("id_column", &self.id_column)
            .field("active_column", &self.active_column)
            .finish()
    }
}

impl<Id: SqlUserId> SqlUsersBuilder<Id> {
    /// A boolean (or integer) column: users whose value is false, 0 or NULL are
    /// inactive (refused, and their session revoked).
    pub fn active_column(mut self, column: impl Into<String>) -> Self {
        self.active_column = Some(column.into());
        self
    }

    /// The resolver on a SQLite pool.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(self, pool: sqlx::SqlitePool) -> Result<SqlUsers<Id>, ConfigError> {
        self.build::<sqlx::Sqlite>(Backend::Sqlite(pool))
    }

    /// The resolver on a PostgreSQL pool.
    #[cfg(feature = "postgres")]
    pub fn postgres(self, pool: sqlx::PgPool) -> Result<SqlUsers<Id>, ConfigError> {
        self.build::<sqlx::Postgres>(Backend::Postgres(pool))
    }

    /// The resolver on a MySQL or MariaDB pool.
    #[cfg(feature = "mysql")]
    pub fn mysql(self, pool: sqlx::MySqlPool) -> Result<SqlUsers<Id>, ConfigError> {
        self.build::<sqlx::MySql>(Backend::MySql(pool))
    }

    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
        allow(dead_code)
    )]
    fn build<DB: SqlDatabase>(self, backend: Backend) -> Result<SqlUsers<Id>, ConfigError> {
        let mut parts = self.table.split('.');
        let table = match (parts.next(), parts.next(), parts.next()) {
            (Some(t), None, _) => {
                validate_ident(t)?;
                DB::quote(t)
            }
            (Some(schema), Some(t), None) => {
                validate_ident(schema)
                    .and_then(|()| validate_ident(t))
                    .map_err(|_| ConfigError::BadName(self.table.clone()))?;
                format!("{}.{}", DB::quote(schema), DB::quote(t))
            }
            _ => return Err(ConfigError::BadName(self.table.clone())),
        };
        validate_ident(&self.id_column)?;
        let active = match &self.active_column {
            Some(a) => Some(validate_ident(a).map(|()| DB::quote(a))?),
            None => None,
        };
        let id = DB::quote(&self.id_column);
        Ok(SqlUsers {
            backend,
            sql: trusted(DB::user_lookup(&table, &id, active.as_deref())),
            has_active: self.active_column.is_some(),
            table: self.table,
            id_column: self.id_column,
            _id: PhantomData,
        })
    }
}

#[async_trait]
impl<Id: SqlUserId> UserResolver for SqlUsers<Id> {
    type Id = Id;
    type User = Id;

    async fn resolve(&self, id: &Id) -> Result<UserLookup<Id>, StoreError> {
        Ok(match self.find(id.id_value()).await? {
            None => UserLookup::Missing,
            Some(Some(true)) => UserLookup::Active(id.clone()),
            Some(_) => UserLookup::Inactive,
        })
    }
}

impl<Id: SqlUserId> SqlUsers<Id> {
    /// [`lookup`] on the database the resolver was built for.
    async fn find(&self, value: IdValue<'_>) -> Result<Option<Option<bool>>, StoreError> {
        let (sql, has_active) = (&self.sql, self.has_active);
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(pool) => lookup(pool, sql, value, has_active).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => lookup(pool, sql, value, has_active).await,
            #[cfg(feature = "mysql")]
            Backend::MySql(pool) => lookup(pool, sql, value, has_active).await,
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
            Backend::None => {
                let _ = (sql, value, has_active);
                Err(StoreError::new("built without a SQL database feature"))
            }
        }
    }
}

/// Looks the id `value` up with `sql` on `pool`: `None` when no row has it;
/// else whether the user is active (NULL: `Some(None)`), or `Some(Some(true))`
/// when there is no "active" column.
async fn lookup<DB: SqlDatabase>(
    pool: &Pool<DB>,
    sql: &SqlStr,
    value: IdValue<'_>,
    has_active: bool,
) -> Result<Option<Option<bool>>, StoreError> {
    let found = async {
        let mut conn = pool.acquire().await?;
        let row = bind_id(query::<DB>(sql), value)
            .fetch_optional(DB::conn(&mut conn))
            .await?;
        match row {
            None => Ok(None),
            Some(row) if has_active => Ok(Some(row.col(0)?)),
            Some(_) => Ok(Some(Some(true))),
        }
    };
    found
        .await
        .map_err(|e: sqlx::Error| StoreError::with_source("user lookup failed", e))
}

/// Binds an id with the column's type: a native UUID on PostgreSQL, its
/// hyphenated text elsewhere; integers as `BIGINT`; text as text.
fn bind_id<DB: SqlDatabase>(
    q: Query<'static, DB, DB::Arguments>,
    value: IdValue<'_>,
) -> Query<'static, DB, DB::Arguments> {
    match value {
        IdValue::Uuid(u) if DB::NATIVE_UUID => q.arg(u),
        IdValue::Uuid(u) => q.arg(u.hyphenated().to_string()),
        IdValue::Integer(i) => q.arg(i),
        IdValue::Text(t) => q.arg(t.to_owned()),
    }
}
