//! The SQL store's one migration runner, for every database: the schema files
//! of `migrations/<database>/`, rendered for the store's table prefix, applied
//! in one transaction under the database's migration lock, each version once
//! (or, on an empty database, the whole latest schema at once).

use sqlx::{Connection as _, SqlStr};

use super::dialect::SqlDatabase;
use super::driver::{Bind as _, Get as _, query, trusted};
use super::store::{SqlStore, TxError};
use super::to_db;
use crate::clock::system_secs;
use crate::error::StoreError;

/// A schema version and its statements.
type Migration = (i64, Vec<SqlStr>);

impl<DB: SqlDatabase> SqlStore<DB> {
    /// Creates or upgrades the store's tables; idempotent, and safe to run from
    /// several instances at once: one transaction under a lock named after the
    /// table prefix (PostgreSQL: an advisory transaction lock; MySQL: a named
    /// lock, `GET_LOCK`, held while it runs, as MySQL's DDL is not transactional;
    /// SQLite: the write lock of `BEGIN IMMEDIATE`).
    ///
    /// An empty database (no recorded version, no sessions table) gets the
    /// latest schema in one step (`migrations/<database>/schema.sql`), with
    /// every version recorded; tables at an older version get each numbered
    /// migration they lack, in order.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrations = render(DB::MIGRATIONS, self.options.get_table_prefix());
        let key = format!("tower_jwt_auth:{}", self.options.get_table_prefix());
        self.run("migrate", || async {
            let mut conn = self.acquire().await?;
            self.apply_migrations(&mut conn, &migrations, &key).await?;
            // Unless the lock is released, the connection is closed, not handed
            // back to the pool with the lock (MySQL's lock lives as long as the
            // connection).
            DB::unlock_migrations(&mut conn, &key).await?;
            conn.release();
            Ok(())
        })
        .await
    }

    /// Applies the `migrations` not yet recorded, on `conn`, in one transaction.
    async fn apply_migrations(
        &self,
        conn: &mut DB::Connection,
        migrations: &[Migration],
        key: &str,
    ) -> Result<(), TxError> {
        let mut tx = conn.begin_with(DB::BEGIN).await?;
        DB::lock_migrations(&mut tx, key).await?;
        sqlx::raw_sql(self.sql.create_versions.clone())
            .execute(DB::conn(&mut tx))
            .await?;
        let applied = query::<DB>(&self.sql.applied_versions)
            .fetch_all(DB::conn(&mut tx))
            .await?
            .iter()
            .map(|row| row.col(0))
            .collect::<Result<Vec<i64>, _>>()?;
        let empty = applied.is_empty()
            && query::<DB>(&self.sql.table_exists)
                .arg(self.tables.sessions.clone())
                .fetch_optional(DB::conn(&mut tx))
                .await?
                .is_none();
        if empty {
            // One step to the latest schema; every version it holds recorded.
            let schema = render(&[(0, DB::SCHEMA)], self.options.get_table_prefix());
            let versions: Vec<i64> = migrations.iter().map(|(v, _)| *v).collect();
            self.apply_schema(&mut tx, &schema[0].1, &versions).await?;
        } else {
            for (version, statements) in migrations {
                if !applied.contains(version) {
                    self.apply_schema(&mut tx, statements, &[*version]).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Runs `statements` in `tx` and records `versions` as applied.
    async fn apply_schema(
        &self,
        tx: &mut sqlx::Transaction<'_, DB>,
        statements: &[SqlStr],
        versions: &[i64],
    ) -> Result<(), TxError> {
        for statement in statements {
            let done = sqlx::raw_sql(statement.clone()).execute(DB::conn(tx)).await;
            match done {
                Err(e) if e.as_database_error().is_some_and(DB::already_applied) => {}
                done => {
                    done?;
                }
            }
        }
        for &version in versions {
            query::<DB>(&self.sql.record_version)
                .arg(version)
                .arg(to_db(system_secs()))
                .execute(DB::conn(tx))
                .await?;
        }
        Ok(())
    }
}

/// The migration files rendered for `prefix` (`{p}` in them), split into
/// statements, without comments.
pub(super) fn render(files: &[(i64, &'static str)], prefix: &str) -> Vec<Migration> {
    files
        .iter()
        .map(|(version, text)| (*version, statements(&text.replace("{p}", prefix))))
        .collect()
}

/// The statements of one migration file: `--` lines dropped (a `;` in a
/// comment ends nothing), then split at `;`.
fn statements(text: &str) -> Vec<SqlStr> {
    let code: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    code.join("\n")
        .split(';')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(trusted)
        .collect()
}
