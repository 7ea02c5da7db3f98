//! [`FailingStore`]: a store that can be taken down, the suite's stand-in for a
//! database that went away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::StoreError;
use crate::store::{NewSession, RotateOutcome, RotateRequest, SessionInfo, TokenStore};

/// A store wrapper that fails every call while switched off: the suite's stand-in
/// for a database that went away. Public so backends can test their own wiring.
#[derive(Debug)]
pub struct FailingStore {
    inner: Arc<dyn TokenStore>,
    down: AtomicBool,
}

impl FailingStore {
    /// Wraps a store; it starts up.
    pub fn new(inner: Arc<dyn TokenStore>) -> Self {
        FailingStore {
            inner,
            down: AtomicBool::new(false),
        }
    }

    /// Takes the store down (`true`) or brings it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::new("store is down"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl TokenStore for FailingStore {
    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        self.check()?;
        self.inner.create_session(s).await
    }
    async fn rotate(&self, r: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        self.check()?;
        self.inner.rotate(r).await
    }
    async fn revoke_session(&self, id: Uuid, user: &str, now: u64) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.revoke_session(id, user, now).await
    }
    async fn revoke_user(&self, user: &str, now: u64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.revoke_user(user, now).await
    }
    async fn is_revoked(&self, id: Uuid, user: &str, iat: u64) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.is_revoked(id, user, iat).await
    }
    async fn list_sessions(&self, user: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError> {
        self.check()?;
        self.inner.list_sessions(user, now).await
    }
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.purge_expired(now).await
    }
}
