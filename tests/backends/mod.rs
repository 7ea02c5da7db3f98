//! The backends the session-feature tests (events, claims refresh, sliding tokens,
//! purge task) run on: MemoryStore and SQLite. Every test takes a `Backend` and
//! is generated once per backend by `for_each_backend!`.
#![allow(dead_code)]

use std::sync::Arc;

use tower_jwt_auth::{MemoryStore, SqliteStore, TokenStore};

/// A fresh store of one kind.
pub enum Backend {
    /// MemoryStore.
    Memory(Arc<MemoryStore>),
    /// SQLite: a named shared in-memory database, migrated (a pool of 8).
    Sqlite(Arc<SqliteStore>),
}

impl Backend {
    pub async fn memory() -> Self {
        Backend::Memory(Arc::new(MemoryStore::new()))
    }

    pub async fn sqlite() -> Self {
        let url = format!(
            "sqlite:file:hooks_{}?mode=memory&cache=shared",
            uuid::Uuid::new_v4().simple()
        );
        let store = SqliteStore::connect(&url).await.expect("open SQLite");
        store.migrate().await.expect("migrate");
        Backend::Sqlite(Arc::new(store))
    }

    pub fn store(&self) -> Arc<dyn TokenStore> {
        match self {
            Backend::Memory(s) => s.clone(),
            Backend::Sqlite(s) => s.clone(),
        }
    }

    /// (sessions, refresh-token rows) the store holds, expired or not.
    pub async fn rows(&self) -> (u64, u64) {
        match self {
            Backend::Memory(s) => (s.session_count() as u64, s.token_count() as u64),
            Backend::Sqlite(s) => {
                let count = |sql: &'static str| async move {
                    let n: i64 = sqlx::query_scalar(sql)
                        .fetch_one(s.pool())
                        .await
                        .expect("count rows");
                    n as u64
                };
                (
                    count("SELECT COUNT(*) FROM jwt_auth_sessions").await,
                    count("SELECT COUNT(*) FROM jwt_auth_refresh_tokens").await,
                )
            }
        }
    }
}

/// Generates `mod memory { #[tokio::test] ... }` and `mod sqlite { ... }`: one
/// test per listed async fn, each taking a fresh `Backend`.
#[macro_export]
macro_rules! for_each_backend {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::backends::Backend::memory().await).await
                }
            )*
        }
        mod sqlite {
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::backends::Backend::sqlite().await).await
                }
            )*
        }
    };
}
