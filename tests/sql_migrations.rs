//! The SQL stores' schema upgrades, on every database: tables at version 1,
//! holding a live session, a used token and a revoke-all cutoff in seconds, are
//! migrated to the latest version; the data is converted (creation to the
//! millisecond, the live token's expiry on its session, the cutoff in
//! milliseconds) and the store goes on with it (rotation, revocation, listing);
//! and the upgraded tables are the ones an empty database gets in one step
//! (`schema.sql`): same columns, types, nullability and indexes.
//!
//! PostgreSQL at `TEST_POSTGRES_URL` and MariaDB/MySQL at `TEST_MYSQL_URL`
//! (skipped when unreachable, except under `CI`); SQLite in a file.

mod common;

use sqlx::{MySqlPool, PgPool, SqlitePool};
use tower_jwt_auth::store::sql::SqlStoreOptions;
use tower_jwt_auth::store::{RevocationLog, Revoked, RotateOutcome, RotateRequest};
use tower_jwt_auth::{MySqlStore, PgStore, SqliteStore, TokenStore};
use uuid::Uuid;

/// Version 1's schema files, as shipped.
const V1_POSTGRES: &str = include_str!("../src/store/sql/migrations/postgres/0001_initial.sql");
const V1_MYSQL: &str = include_str!("../src/store/sql/migrations/mysql/0001_initial.sql");
const V1_SQLITE: &str = include_str!("../src/store/sql/migrations/sqlite/0001_initial.sql");

/// How one database writes what the test needs in SQL text.
struct Dialect {
    quote: char,
    /// An id literal.
    id: fn(Uuid) -> String,
}

const POSTGRES: Dialect = Dialect {
    quote: '"',
    id: |id| format!("'{id}'::uuid"),
};
const MYSQL: Dialect = Dialect {
    quote: '`',
    id: |id| format!("UNHEX('{}')", id.simple()),
};
const SQLITE: Dialect = Dialect {
    quote: '"',
    id: |id| format!("X'{}'", id.simple()),
};

/// What the version-1 tables hold, and when.
struct V1Data {
    now: u64,
    /// bob's session: its first token used, its second live.
    session: Uuid,
    used: Uuid,
    live: Uuid,
    /// carol's sessions, before and after her revoke-all cutoff (in seconds).
    carol_before: Uuid,
    carol_after: Uuid,
}

impl V1Data {
    fn new() -> Self {
        V1Data {
            now: tower_jwt_auth::Clock::system().now_secs(),
            session: Uuid::new_v4(),
            used: Uuid::new_v4(),
            live: Uuid::new_v4(),
            carol_before: Uuid::new_v4(),
            carol_after: Uuid::new_v4(),
        }
    }

    /// Version 1's schema for `prefix`, its version recorded, and the data, as
    /// statements.
    fn statements(&self, d: &Dialect, v1: &str, prefix: &str) -> Vec<String> {
        let q = |name: &str| format!("{0}{prefix}{name}{0}", d.quote);
        let id = d.id;
        let t = self.now;
        let mut out: Vec<String> = v1
            .replace("{p}", prefix)
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n")
            .split(';')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let (s, tok, c, v) = (
            q("sessions"),
            q("refresh_tokens"),
            q("user_cutoffs"),
            q("schema_versions"),
        );
        out.push(format!(
            "CREATE TABLE {v} (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)"
        ));
        out.push(format!(
            "INSERT INTO {v} (version, applied_at) VALUES (1, {t})"
        ));
        let session = |sid: Uuid, user: &str, created: u64, live: Uuid, parent: String| {
            format!(
                "INSERT INTO {s} (session_id, user_id, created_at, last_rotated_at, expires_at, \
                 revoked_at, live_jti, live_parent, label) VALUES \
                 ({}, '{user}', {created}, {created}, {}, NULL, {}, {parent}, 'laptop')",
                id(sid),
                t + 1000,
                id(live)
            )
        };
        let token = |jti: Uuid, sid: Uuid, used: String, expires: u64| {
            format!(
                "INSERT INTO {tok} (jti, session_id, parent_jti, issued_at, expires_at, used_at) \
                 VALUES ({}, {}, NULL, {}, {expires}, {used})",
                id(jti),
                id(sid),
                t - 30
            )
        };
        out.push(session(
            self.session,
            "bob",
            t - 30,
            self.live,
            id(self.used),
        ));
        out.push(token(
            self.used,
            self.session,
            (t - 20).to_string(),
            t + 500,
        ));
        out.push(token(self.live, self.session, "NULL".into(), t + 600));
        let (before, after) = (Uuid::new_v4(), Uuid::new_v4());
        out.push(session(
            self.carol_before,
            "carol",
            t - 20,
            before,
            "NULL".into(),
        ));
        out.push(token(before, self.carol_before, "NULL".into(), t + 600));
        out.push(session(self.carol_after, "carol", t, after, "NULL".into()));
        out.push(token(after, self.carol_after, "NULL".into(), t + 600));
        // carol's revoke-all, at t - 10, in version 1's seconds.
        out.push(format!(
            "INSERT INTO {c} (user_id, cutoff) VALUES ('carol', {})",
            t - 10
        ));
        out
    }

    /// What the upgraded store must answer about the data.
    async fn check(&self, store: &dyn TokenStore) {
        let t = self.now;
        // bob's session is listed, with its label and creation time.
        let listed = store.list_sessions("bob", t).await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].session_id, self.session);
        assert_eq!(listed[0].label.as_deref(), Some("laptop"));
        assert_eq!(listed[0].created_at, t - 30);
        // Its used token is reuse (window 0); first, its live token rotates.
        let rotate = |jti: Uuid| {
            RotateRequest::new(self.session, "bob", jti, Uuid::new_v4(), t, 100).with_grace(0)
        };
        assert!(matches!(
            store.rotate(&rotate(self.live)).await.unwrap(),
            RotateOutcome::Rotated { expires_at, session_expires_at, .. }
                if expires_at == t + 100 && session_expires_at == t + 1000
        ));
        assert_eq!(
            store.rotate(&rotate(self.used)).await.unwrap(),
            RotateOutcome::ReuseDetected
        );
        // carol's cutoff (t - 10 s, now in milliseconds) still covers the
        // session created before it, not the one after.
        assert!(
            store
                .is_revoked(self.carol_before, "carol", t)
                .await
                .unwrap()
        );
        assert!(
            !store
                .is_revoked(self.carol_after, "carol", t)
                .await
                .unwrap()
        );
    }
}

/// Upgrades version-1 tables under prefix `old` with `store_at` and compares
/// them with an empty database's tables under `new`, described by `describe`.
macro_rules! upgrade_test {
    ($pool:expr, $dialect:expr, $v1:expr, $store:ty, $describe:ident) => {{
        let pool = $pool;
        let (old, new) = (
            format!("{}_", common::unique_name("v1")),
            format!("{}_", common::unique_name("v2")),
        );
        let data = V1Data::new();
        for statement in data.statements(&$dialect, $v1, &old) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&pool)
                .await
                .expect("version 1's tables and data");
        }
        let store_at = |prefix: &str| {
            <$store>::with_options(pool.clone(), SqlStoreOptions::new().table_prefix(prefix))
                .unwrap()
        };
        let upgraded = store_at(&old);
        upgraded.migrate().await.expect("upgrade");
        upgraded
            .migrate()
            .await
            .expect("upgrade again: nothing to do");
        data.check(&upgraded).await;
        let fresh = store_at(&new);
        fresh
            .migrate()
            .await
            .expect("an empty database in one step");
        // What was revoked before the upgrade is in the revocation log:
        // carol's revoke-all.
        let log = upgraded.revocations_after(0, 100).await.unwrap();
        assert!(
            log.iter().any(|e| matches!(&e.revoked, Revoked::User { user_id, .. } if user_id == "carol")),
            "{log:?}"
        );
        for table in [
            "sessions",
            "refresh_tokens",
            "user_cutoffs",
            "schema_versions",
            "revocations",
        ] {
            let (a, b) = (
                $describe(&pool, &old, table).await,
                $describe(&pool, &new, table).await,
            );
            assert!(a.len() > 1, "{table}: {a:?}");
            assert_eq!(
                a, b,
                "{table}: upgraded (left) and created whole (right) differ"
            );
        }
        for prefix in [&old, &new] {
            let versions: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT version FROM {0}{prefix}schema_versions{0} ORDER BY version",
                $dialect.quote
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            assert_eq!(versions, [1, 2, 3], "{prefix}");
            drop_tables(&pool, &$dialect, prefix).await;
        }
    }};
}

/// Drops the four tables under `prefix`.
async fn drop_tables<'p, DB: sqlx::Database>(pool: &'p sqlx::Pool<DB>, d: &Dialect, prefix: &str)
where
    &'p sqlx::Pool<DB>: sqlx::Executor<'p, Database = DB>,
{
    for table in [
        "refresh_tokens",
        "sessions",
        "user_cutoffs",
        "schema_versions",
        "revocations",
    ] {
        let sql = format!("DROP TABLE {0}{prefix}{table}{0}", d.quote);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .expect("drop");
    }
}

/// PostgreSQL: each column (name, type, nullability, default) and each index
/// (its definition), the prefix taken out.
async fn describe_postgres(pool: &PgPool, prefix: &str, table: &str) -> Vec<String> {
    let name = format!("{prefix}{table}");
    let mut out: Vec<String> = sqlx::query_scalar(
        "SELECT column_name || ' ' || data_type || ' ' || is_nullable || ' ' || \
         coalesce(column_default, '') FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1",
    )
    .bind(&name)
    .fetch_all(pool)
    .await
    .unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1",
    )
    .bind(&name)
    .fetch_all(pool)
    .await
    .unwrap();
    out.extend(indexes);
    normalized(out, prefix)
}

/// MariaDB/MySQL: each column (name, full type with charset and collation,
/// nullability, default, generation) and each index column.
async fn describe_mysql(pool: &MySqlPool, prefix: &str, table: &str) -> Vec<String> {
    let name = format!("{prefix}{table}");
    let mut out: Vec<String> = sqlx::query_scalar(
        "SELECT CONCAT_WS(' ', column_name, column_type, is_nullable, \
         coalesce(character_set_name, '-'), coalesce(collation_name, '-'), \
         coalesce(column_default, '-'), extra, coalesce(generation_expression, '')) \
         FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(&name)
    .fetch_all(pool)
    .await
    .unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT CONCAT_WS(' ', index_name, non_unique, seq_in_index, column_name) \
         FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(&name)
    .fetch_all(pool)
    .await
    .unwrap();
    out.extend(indexes);
    normalized(out, prefix)
}

/// SQLite: each column (name, type, not null, default, primary key) and each
/// index (its SQL).
async fn describe_sqlite(pool: &SqlitePool, prefix: &str, table: &str) -> Vec<String> {
    let name = format!("{prefix}{table}");
    let mut out: Vec<String> = sqlx::query_scalar(
        "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || coalesce(dflt_value, '') \
         || ' ' || pk FROM pragma_table_info(?)",
    )
    .bind(&name)
    .fetch_all(pool)
    .await
    .unwrap();
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(sql, name) FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
    )
    .bind(&name)
    .fetch_all(pool)
    .await
    .unwrap();
    out.extend(indexes);
    normalized(out, prefix)
}

/// `rows` with `prefix` taken out and whitespace collapsed, sorted.
fn normalized(rows: Vec<String>, prefix: &str) -> Vec<String> {
    let mut rows: Vec<String> = rows
        .into_iter()
        .map(|r| {
            r.replace(prefix, "")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn postgres_upgrades_version_1_with_its_data() {
    let url = common::service_url(common::POSTGRES_URL.0, common::POSTGRES_URL.1);
    let pool = match PgPool::connect(&url).await {
        Ok(pool) => pool,
        Err(e) => return common::unavailable("PostgreSQL", e).unwrap_or(()),
    };
    upgrade_test!(pool, POSTGRES, V1_POSTGRES, PgStore, describe_postgres);
}

#[tokio::test]
async fn mysql_upgrades_version_1_with_its_data() {
    let url = common::service_url(common::MYSQL_URL.0, common::MYSQL_URL.1);
    let pool = match MySqlPool::connect(&url).await {
        Ok(pool) => pool,
        Err(e) => return common::unavailable("MariaDB", e).unwrap_or(()),
    };
    upgrade_test!(pool, MYSQL, V1_MYSQL, MySqlStore, describe_mysql);
}

#[tokio::test]
async fn sqlite_upgrades_version_1_with_its_data() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}.db", common::unique_name("upgrade")));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = SqlitePool::connect(&url).await.unwrap();
    upgrade_test!(
        pool.clone(),
        SQLITE,
        V1_SQLITE,
        SqliteStore,
        describe_sqlite
    );
    pool.close().await;
    let _ = std::fs::remove_file(&path);
}
