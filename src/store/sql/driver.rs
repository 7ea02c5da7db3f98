//! What the generic SQL store code needs of a sqlx driver, proven once.
//!
//! sqlx states what a driver can do as bounds on *other* types:
//! `Uuid: Encode<'q, Postgres>`, `&mut PgConnection: Executor<'_>`. Rust carries a
//! trait's bounds on `Self` along to every generic use, but not bounds on other
//! types, so every generic item would have to repeat sqlx's list. [`Driver`] turns
//! them around into items of the driver itself ([`Column::bind`],
//! [`Column::get`], [`Driver::conn`]), proven here by blanket impls for every
//! driver that has them; `DB: SqlDatabase` (whose `Dialect` extends these) is
//! then all the store's code asks for.
//!
//! The store code reads like plain sqlx with two spellings changed:
//! `.arg(value)` for `.bind(value)` ([`Bind`]), `row.col(i)` for
//! `row.try_get(i)` ([`Get`]), and statements run on `DB::conn(&mut tx)`.

// Sealed: public in name only, so that the public `SqlDatabase` can extend
// `Dialect`, which extends these.
#![allow(unreachable_pub)]

use std::sync::Arc;

use sqlx::query::Query;
use sqlx::{
    AssertSqlSafe, ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row as _,
    SqlSafeStr as _, SqlStr, Type,
};

/// A value type the store binds and reads back, in driver `Self`.
pub trait Column<T>: Database {
    /// Binds `value` as the query's next parameter.
    fn bind<'q>(
        query: Query<'q, Self, Self::Arguments>,
        value: T,
    ) -> Query<'q, Self, Self::Arguments>;

    /// Reads column `index` of `row`.
    fn get(row: &Self::Row, index: usize) -> Result<T, sqlx::Error>;
}

impl<DB, T> Column<T> for DB
where
    DB: Database,
    T: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    fn bind<'q>(query: Query<'q, DB, DB::Arguments>, value: T) -> Query<'q, DB, DB::Arguments> {
        query.bind(value)
    }

    fn get(row: &DB::Row, index: usize) -> Result<T, sqlx::Error> {
        row.try_get(index)
    }
}

/// A sqlx driver the SQL stores can use: it runs statements on its
/// connections and counts the rows they changed. (The value types it binds and
/// reads are listed, as [`Column`]s, by the `Dialect` trait.)
pub trait Driver: Database<Arguments: IntoArguments<Self>, QueryResult: RowsAffected> {
    /// A connection, as statements run on it: `&'c mut Self::Connection`.
    type Conn<'c>: Executor<'c, Database = Self>;

    /// Where a statement runs: `query.execute(DB::conn(&mut tx))`.
    fn conn(conn: &mut Self::Connection) -> Self::Conn<'_>;
}

impl<DB> Driver for DB
where
    DB: Database<Arguments: IntoArguments<DB>, QueryResult: RowsAffected>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Conn<'c> = &'c mut DB::Connection;

    fn conn(conn: &mut DB::Connection) -> &mut DB::Connection {
        conn
    }
}

/// What a statement changed: each driver's `rows_affected`, which sqlx has as
/// an inherent method of each driver's result type (implemented in each
/// dialect's file).
pub trait RowsAffected {
    /// How many rows the statement changed.
    fn rows_affected(&self) -> u64;
}

/// `.arg(value)`: [`Query::bind`] for generic code.
pub trait Bind<DB: Database> {
    /// Binds `value` as the next parameter.
    fn arg<T>(self, value: T) -> Self
    where
        DB: Column<T>;
}

impl<DB: Database> Bind<DB> for Query<'_, DB, DB::Arguments> {
    fn arg<T>(self, value: T) -> Self
    where
        DB: Column<T>,
    {
        DB::bind(self, value)
    }
}

/// `row.col(i)`: [`sqlx::Row::try_get`] by column number, for generic code.
pub trait Get<DB: Database> {
    /// Reads column `index`.
    fn col<T>(&self, index: usize) -> Result<T, sqlx::Error>
    where
        DB: Column<T>;
}

impl<R: sqlx::Row> Get<R::Database> for R {
    fn col<T>(&self, index: usize) -> Result<T, sqlx::Error>
    where
        R::Database: Column<T>,
    {
        <R::Database as Column<T>>::get(self, index)
    }
}

/// A statement of the crate's own, ready to run: its text is written in this
/// crate, with only identifiers checked by
/// [`validate_ident`](super::validate_ident) put in. Shared, so that running it
/// copies nothing.
pub(crate) fn trusted(sql: String) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(sql)).into_sql_str()
}

/// A query of `sql`, to bind and run.
pub(crate) fn query<DB: Database>(sql: &SqlStr) -> Query<'static, DB, DB::Arguments> {
    sqlx::query(sql.clone())
}
