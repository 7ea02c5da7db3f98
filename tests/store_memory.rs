//! The conformance suite on MemoryStore.

mod common;

use std::sync::Arc;

use tower_jwt_auth::{MemoryStore, TokenStore};

tower_jwt_auth::token_store_conformance!(async || Some(
    Arc::new(MemoryStore::new()) as Arc<dyn TokenStore>
));
