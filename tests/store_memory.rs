//! The conformance suite on MemoryStore.

use tower_jwt_auth::MemoryStore;
use tower_jwt_auth::conformance::{FreshStore, Unavailable};

/// A new store: nothing to connect to, nothing to drop.
async fn fresh_store() -> Result<FreshStore, Unavailable> {
    Ok(FreshStore::new(MemoryStore::new()))
}

tower_jwt_auth::token_store_conformance!(fresh_store);

#[tokio::test]
async fn conformance_revocation_log() {
    tower_jwt_auth::conformance::revocation_log_conformance(
        std::sync::Arc::new(MemoryStore::new()),
    )
    .await;
}
