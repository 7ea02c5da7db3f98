//! Finding the user a token names, by the app's configured id field.
//!
//! The token carries the id field's value as a string; the resolver's `Id` type
//! (a UUID, an integer, a string) parses it first, so a value that cannot be an
//! id is refused without a lookup.

use std::fmt;
use std::hash::Hash;
use std::str::FromStr;

use async_trait::async_trait;
use dashmap::DashMap;

use crate::error::StoreError;

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserLookup<U> {
    /// The user exists and may hold tokens.
    Active(U),
    /// The user exists but is not active: refused, and the session revoked,
    /// whichever path sees it first: a refresh ([`Sessions`](crate::Sessions)),
    /// or a request through [`JwtAuthLayer::resolve_user`](crate::JwtAuthLayer::resolve_user)
    /// when the layer's revocation check is on (without it the layer has no
    /// store: it refuses the request, and the next refresh revokes the session).
    Inactive,
    /// No such user (deleted since login): as [`UserLookup::Inactive`].
    Missing,
}

/// Finds a user by the configured id field's value.
///
/// ```
/// use tower_jwt_auth::{MemoryUsers, UserResolver, UserLookup};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let users: MemoryUsers<uuid::Uuid, String> = MemoryUsers::new();
/// let id = uuid::Uuid::new_v4();
/// users.insert(id, "alice".to_string());
/// assert_eq!(users.resolve(&id).await.unwrap(), UserLookup::Active("alice".to_string()));
/// users.set_active(&id, false);
/// assert_eq!(users.resolve(&id).await.unwrap(), UserLookup::Inactive);
/// # }
/// ```
#[async_trait]
pub trait UserResolver: Send + Sync + 'static {
    /// The id field's type: parsed from the token's user id claim.
    type Id: FromStr + fmt::Display + Send + Sync + 'static;
    /// What the app wants to see in request extensions.
    type User: Clone + Send + Sync + 'static;

    /// Looks the user up. Backend failures are [`StoreError`]s (503), never "missing".
    async fn resolve(&self, id: &Self::Id) -> Result<UserLookup<Self::User>, StoreError>;
}

/// An in-memory [`UserResolver`] keyed by the id field's value.
pub struct MemoryUsers<Id, U> {
    users: DashMap<Id, (U, bool)>,
}

impl<Id: Eq + Hash, U> Default for MemoryUsers<Id, U> {
    fn default() -> Self {
        MemoryUsers {
            users: DashMap::new(),
        }
    }
}

impl<Id: Eq + Hash, U> fmt::Debug for MemoryUsers<Id, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryUsers")
            .field("len", &self.users.len())
            .finish()
    }
}

impl<Id: Eq + Hash, U> MemoryUsers<Id, U> {
    /// An empty set of users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces an active user.
    pub fn insert(&self, id: Id, user: U) {
        self.users.insert(id, (user, true));
    }

    /// Marks a user active or inactive; `false` if there is no such user.
    pub fn set_active(&self, id: &Id, active: bool) -> bool {
        self.users.get_mut(id).map(|mut u| u.1 = active).is_some()
    }

    /// Deletes a user; `true` if it existed.
    pub fn remove(&self, id: &Id) -> bool {
        self.users.remove(id).is_some()
    }
}

#[async_trait]
impl<Id, U> UserResolver for MemoryUsers<Id, U>
where
    Id: FromStr + fmt::Display + Eq + Hash + Send + Sync + 'static,
    U: Clone + Send + Sync + 'static,
{
    type Id = Id;
    type User = U;

    async fn resolve(&self, id: &Id) -> Result<UserLookup<U>, StoreError> {
        Ok(match self.users.get(id) {
            Some(u) if u.1 => UserLookup::Active(u.0.clone()),
            Some(_) => UserLookup::Inactive,
            None => UserLookup::Missing,
        })
    }
}
