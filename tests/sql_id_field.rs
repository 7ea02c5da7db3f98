//! The id field is not the primary key (SimpleJWT answered 500 here): on each
//! database, a users table with an integer primary key `id`, a unique `uuid`
//! column and a unique `email` column, resolved by [`SqlUsers`] and with tokens in
//! the same database's store. For each id field (`uuid`, `id`, `email`): login, ten
//! chained rotations, logout, reuse, revoke-all, a deleted user (401, never 500),
//! an inactive user, and a user id claim that cannot be the column's type (401
//! with no query at all).

mod common;

use std::fmt::Debug;
use std::sync::Arc;

use sqlx::mysql::MySqlPoolOptions;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{AssertSqlSafe, MySqlPool, PgPool, SqlitePool};
use tower_jwt_auth::conformance::test_jwt;
use tower_jwt_auth::store::sql::{SqlStoreOptions, SqlUserId};
use tower_jwt_auth::{
    AuthError, MySqlStore, NoCustomClaims, PgStore, Sessions, SqlUsers, SqliteStore, TokenError,
    TokenStore,
};
use uuid::Uuid;

#[derive(Clone)]
enum Db {
    Sqlite(SqlitePool),
    Pg(PgPool),
    My(MySqlPool),
}

/// A users table of the app's own, beside the crate's tables, in one database.
struct Fixture {
    db: Db,
    table: String,
    store: Arc<dyn TokenStore>,
}

/// One row of the users table.
#[derive(Debug, Clone)]
struct UserRow {
    pk: i64,
    uuid: Uuid,
    email: String,
}

impl Fixture {
    async fn sqlite() -> Option<Fixture> {
        let url = format!(
            "sqlite:file:{}?mode=memory&cache=shared",
            common::unique_name("ids")
        );
        let store = SqliteStore::connect(&url).await.expect("open SQLite");
        store.migrate().await.unwrap();
        let table = common::unique_name("users");
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, \
             email TEXT NOT NULL UNIQUE, is_active BOOLEAN NOT NULL DEFAULT 1)"
        )))
        .execute(store.pool())
        .await
        .unwrap();
        Some(Fixture {
            db: Db::Sqlite(store.pool().clone()),
            table,
            store: Arc::new(store),
        })
    }

    async fn postgres() -> Option<Fixture> {
        let url = common::service_url(common::POSTGRES_URL.0, common::POSTGRES_URL.1);
        let pool = match PgPoolOptions::new().max_connections(8).connect(&url).await {
            Ok(p) => p,
            Err(e) => return common::unavailable("PostgreSQL", e),
        };
        let prefix = format!("{}_", common::unique_name("i"));
        let store =
            PgStore::with_options(pool.clone(), SqlStoreOptions::new().table_prefix(prefix))
                .unwrap();
        store.migrate().await.unwrap();
        let table = common::unique_name("users");
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE TABLE {table} (id SERIAL PRIMARY KEY, uuid UUID NOT NULL UNIQUE, \
             email VARCHAR(255) NOT NULL UNIQUE, is_active BOOLEAN NOT NULL DEFAULT TRUE)"
        )))
        .execute(&pool)
        .await
        .unwrap();
        Some(Fixture {
            db: Db::Pg(pool),
            table,
            store: Arc::new(store),
        })
    }

    async fn mysql() -> Option<Fixture> {
        let url = common::service_url(common::MYSQL_URL.0, common::MYSQL_URL.1);
        let pool = match MySqlPoolOptions::new()
            .max_connections(8)
            .connect(&url)
            .await
        {
            Ok(p) => p,
            Err(e) => return common::unavailable("MariaDB", e),
        };
        let prefix = format!("{}_", common::unique_name("i"));
        let store =
            MySqlStore::with_options(pool.clone(), SqlStoreOptions::new().table_prefix(prefix))
                .unwrap();
        store.migrate().await.unwrap();
        let table = common::unique_name("users");
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, uuid CHAR(36) NOT NULL UNIQUE, \
             email VARCHAR(255) NOT NULL UNIQUE, is_active BOOLEAN NOT NULL DEFAULT TRUE)"
        )))
        .execute(&pool)
        .await
        .unwrap();
        Some(Fixture {
            db: Db::My(pool),
            table,
            store: Arc::new(store),
        })
    }

    async fn add_user(&self) -> UserRow {
        let uuid = Uuid::new_v4();
        let email = format!("{}@example.com", uuid.simple());
        let t = &self.table;
        let pk = match &self.db {
            Db::Sqlite(p) => sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {t} (uuid, email) VALUES (?, ?)"
            )))
            .bind(uuid.to_string())
            .bind(&email)
            .execute(p)
            .await
            .unwrap()
            .last_insert_rowid(),
            Db::Pg(p) => i64::from(
                sqlx::query_scalar::<_, i32>(AssertSqlSafe(format!(
                    "INSERT INTO {t} (uuid, email) VALUES ($1, $2) RETURNING id"
                )))
                .bind(uuid)
                .bind(&email)
                .fetch_one(p)
                .await
                .unwrap(),
            ),
            Db::My(p) => sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {t} (uuid, email) VALUES (?, ?)"
            )))
            .bind(uuid.to_string())
            .bind(&email)
            .execute(p)
            .await
            .unwrap()
            .last_insert_id() as i64,
        };
        UserRow { pk, uuid, email }
    }

    async fn exec(&self, sql: String, pk: i64) {
        match &self.db {
            Db::Sqlite(p) => sqlx::query(AssertSqlSafe(sql))
                .bind(pk)
                .execute(p)
                .await
                .map(|_| ()),
            Db::Pg(p) => sqlx::query(AssertSqlSafe(sql.replace('?', "$1")))
                .bind(pk as i32)
                .execute(p)
                .await
                .map(|_| ()),
            Db::My(p) => sqlx::query(AssertSqlSafe(sql))
                .bind(pk)
                .execute(p)
                .await
                .map(|_| ()),
        }
        .unwrap()
    }

    async fn delete_user(&self, pk: i64) {
        self.exec(format!("DELETE FROM {} WHERE id = ?", self.table), pk)
            .await;
    }

    async fn deactivate(&self, pk: i64) {
        self.exec(
            format!("UPDATE {} SET is_active = FALSE WHERE id = ?", self.table),
            pk,
        )
        .await;
    }

    fn users<Id: SqlUserId>(&self, column: &str) -> SqlUsers<Id> {
        let b = SqlUsers::<Id>::builder(self.table.clone(), column).active_column("is_active");
        match self.db.clone() {
            Db::Sqlite(p) => b.sqlite(p),
            Db::Pg(p) => b.postgres(p),
            Db::My(p) => b.mysql(p),
        }
        .expect("valid names")
    }

    /// The same resolver and a store on closed pools: any query fails with a 503.
    async fn closed<Id: SqlUserId>(&self, column: &str) -> (SqlUsers<Id>, Arc<dyn TokenStore>) {
        let b = SqlUsers::<Id>::builder(self.table.clone(), column);
        let (users, store): (_, Arc<dyn TokenStore>) = match &self.db {
            Db::Sqlite(_) => {
                let p = SqlitePoolOptions::new()
                    .connect_lazy("sqlite::memory:")
                    .unwrap();
                p.close().await;
                (b.sqlite(p.clone()), Arc::new(SqliteStore::new(p)))
            }
            Db::Pg(p) => {
                let p = PgPoolOptions::new().connect_lazy_with((*p.connect_options()).clone());
                p.close().await;
                (b.postgres(p.clone()), Arc::new(PgStore::new(p)))
            }
            Db::My(p) => {
                let p = MySqlPoolOptions::new().connect_lazy_with((*p.connect_options()).clone());
                p.close().await;
                (b.mysql(p.clone()), Arc::new(MySqlStore::new(p)))
            }
        };
        (users.unwrap(), store)
    }
}

fn refused<T: Debug>(r: Result<T, AuthError>) -> TokenError {
    match r {
        Err(e @ AuthError::InvalidToken(_)) => {
            assert_eq!(e.status(), http::StatusCode::UNAUTHORIZED);
            e.token_error().unwrap()
        }
        other => panic!("expected a 401, got {other:?}"),
    }
}

/// The whole story for one id field. `pick` takes the id field's value from a
/// users row; `bad_claims` are user id claims that cannot be of the column's type.
async fn id_field_story<Id, F>(fx: Fixture, column: &str, pick: F, bad_claims: &[&str])
where
    Id: SqlUserId + Debug + PartialEq,
    F: Fn(&UserRow) -> Id,
{
    let users = Arc::new(fx.users::<Id>(column));
    // Strict single use: the story replays a spent token to see reuse.
    let sessions: Sessions<SqlUsers<Id>> = Sessions::new(test_jwt(), fx.store.clone(), users)
        .with_reuse_grace(std::time::Duration::ZERO)
        .unwrap();

    // Login, ten chained rotations; the store keys everything by the id field's value.
    let alice = fx.add_user().await;
    let id = pick(&alice);
    let mut pair = sessions
        .login(&id, &NoCustomClaims, Some("test".into()))
        .await
        .unwrap();
    for _ in 0..10 {
        let next = sessions.refresh(&pair.refresh).await.expect("rotation");
        assert_eq!(next.session_id, pair.session_id);
        let claims = sessions.check_access(&next.access).await.unwrap();
        assert_eq!(claims.user_id(), id.to_string());
        pair = next;
    }
    let listed = sessions.list_sessions(&id.to_string()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].user_id, id.to_string());

    // Logout.
    sessions.logout(&pair.refresh).await.unwrap();
    assert_eq!(
        refused(sessions.refresh(&pair.refresh).await),
        TokenError::Revoked
    );
    assert_eq!(
        refused(sessions.check_access(&pair.access).await),
        TokenError::Revoked
    );

    // Reuse revokes the session.
    let q0 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let q1 = sessions.refresh(&q0.refresh).await.unwrap();
    assert_eq!(
        refused(sessions.refresh(&q0.refresh).await),
        TokenError::Reused
    );
    assert_eq!(
        refused(sessions.refresh(&q1.refresh).await),
        TokenError::Revoked
    );

    // Revoke-all ends every session of this user, and only theirs.
    let bob = fx.add_user().await;
    let a1 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let a2 = sessions.login(&id, &NoCustomClaims, None).await.unwrap();
    let b1 = sessions
        .login(&pick(&bob), &NoCustomClaims, None)
        .await
        .unwrap();
    assert_eq!(sessions.revoke_all(&a1.access).await.unwrap(), 2);
    for p in [&a1, &a2] {
        assert_eq!(
            refused(sessions.refresh(&p.refresh).await),
            TokenError::Revoked
        );
    }
    sessions.refresh(&b1.refresh).await.unwrap();

    // A user deleted between login and refresh: 401, never 500 (nor 503).
    let carol = fx.add_user().await;
    let c = sessions
        .login(&pick(&carol), &NoCustomClaims, None)
        .await
        .unwrap();
    fx.delete_user(carol.pk).await;
    assert_eq!(
        refused(sessions.refresh(&c.refresh).await),
        TokenError::UserInactive
    );
    assert_eq!(
        refused(sessions.check_access(&c.access).await),
        TokenError::Revoked
    );

    // An inactive user likewise.
    let dave = fx.add_user().await;
    let d = sessions
        .login(&pick(&dave), &NoCustomClaims, None)
        .await
        .unwrap();
    fx.deactivate(dave.pk).await;
    assert_eq!(
        refused(sessions.refresh(&d.refresh).await),
        TokenError::UserInactive
    );

    // A claim that cannot be the column's type is a 401 before any query: the
    // resolver and the store here sit on closed pools, where any query is a 503.
    let (closed_users, closed_store) = fx.closed::<Id>(column).await;
    let offline: Sessions<SqlUsers<Id>> =
        Sessions::new(test_jwt(), closed_store, Arc::new(closed_users));
    for bad in bad_claims {
        let pair = offline.jwt().issue_pair(bad, &NoCustomClaims).unwrap();
        assert_eq!(
            refused(offline.refresh(&pair.refresh).await),
            TokenError::UserId,
            "claim {bad:?}"
        );
    }
    // The control: a well-typed id does query, and a closed pool is a 503.
    let pair = offline
        .jwt()
        .issue_pair(&id.to_string(), &NoCustomClaims)
        .unwrap();
    assert!(matches!(
        offline.refresh(&pair.refresh).await,
        Err(AuthError::StoreUnavailable(_))
    ));
}

async fn uuid_field(fx: Option<Fixture>) {
    let Some(fx) = fx else { return };
    // "42" is what SimpleJWT put where a UUID was expected: the integer primary key.
    id_field_story::<Uuid, _>(fx, "uuid", |u| u.uuid, &["42", "not-a-uuid", "' OR 1=1 --"]).await;
}

async fn integer_field(fx: Option<Fixture>) {
    let Some(fx) = fx else { return };
    let uuid = Uuid::new_v4().to_string();
    id_field_story::<i64, _>(
        fx,
        "id",
        |u| u.pk,
        &[&uuid, "abc", "99999999999999999999", "1.5"],
    )
    .await;
}

async fn text_field(fx: Option<Fixture>) {
    let Some(fx) = fx else { return };
    // Any string is an email-shaped id as far as types go: no unparseable claim.
    id_field_story::<String, _>(fx, "email", |u| u.email.clone(), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_uuid_id_field() {
    uuid_field(Fixture::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_integer_id_field() {
    integer_field(Fixture::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_text_id_field() {
    text_field(Fixture::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_uuid_id_field() {
    uuid_field(Fixture::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_integer_id_field() {
    integer_field(Fixture::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_text_id_field() {
    text_field(Fixture::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_uuid_id_field() {
    uuid_field(Fixture::mysql().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_integer_id_field() {
    integer_field(Fixture::mysql().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_text_id_field() {
    text_field(Fixture::mysql().await).await;
}

/// Names are identifiers, checked when the resolver is built: no SQL through configuration.
#[tokio::test]
async fn names_are_validated() {
    let pool = SqlitePoolOptions::new()
        .connect_lazy("sqlite::memory:")
        .unwrap();
    let bad = |table: &str, column: &str, active: Option<&str>| {
        let mut b = SqlUsers::<Uuid>::builder(table, column);
        if let Some(a) = active {
            b = b.active_column(a);
        }
        b.sqlite(pool.clone()).is_err()
    };
    assert!(bad("users; DROP TABLE users", "uuid", None));
    assert!(bad("users", "uuid = uuid OR 1", None));
    assert!(bad("users", "uuid", Some("1) OR (1")));
    assert!(bad("a.b.c", "uuid", None));
    assert!(bad("", "uuid", None));
    assert!(bad("users", "", None));
    assert!(bad("us\"ers", "uuid", None));
    assert!(!bad("main.users", "uuid", Some("is_active")));
    assert!(!bad("Users_2", "Uuid", None));
}

/// The lookup binds the id with the column's own type, so the column's index
/// can serve it: checked on PostgreSQL (which refuses an index across a type
/// mismatch) with sequential scans off, for each id field.
#[tokio::test]
async fn postgres_lookup_uses_the_id_columns_index() {
    let Some(fx) = Fixture::postgres().await else {
        return;
    };
    let Db::Pg(pool) = &fx.db else { unreachable!() };
    let user = fx.add_user().await;
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let t = &fx.table;
    let plan = |column: &str| {
        AssertSqlSafe(format!(
            "EXPLAIN SELECT 1 FROM \"{t}\" WHERE \"{column}\" = $1"
        ))
    };
    let plans: Vec<Vec<String>> = vec![
        sqlx::query_scalar(plan("uuid"))
            .bind(user.uuid)
            .fetch_all(&mut *conn)
            .await
            .unwrap(),
        sqlx::query_scalar(plan("id"))
            .bind(user.pk)
            .fetch_all(&mut *conn)
            .await
            .unwrap(),
        sqlx::query_scalar(plan("email"))
            .bind(&user.email)
            .fetch_all(&mut *conn)
            .await
            .unwrap(),
    ];
    for plan in plans {
        assert!(plan.iter().any(|l| l.contains("Index")), "{plan:?}");
    }
}
