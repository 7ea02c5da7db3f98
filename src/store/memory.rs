//! [`MemoryStore`]: a [`TokenStore`] in process memory, on DashMap.
//!
//! Each session is one map entry; a rotation holds that entry's lock across the
//! read, the decision and the write, so it is atomic without a second lookup.
//! Work per operation is bounded by the session's own size (a hash lookup inside
//! it), never by the number of sessions, except `purge_expired`, which scans.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use dashmap::DashMap;
use uuid::Uuid;

use crate::error::StoreError;
use crate::store::rotation::{self, Decision, SessionState, TokenState};
use crate::store::state::{self, SessionCheck};
use crate::store::{NewSession, RotateOutcome, RotateRequest, SessionInfo, TokenStore};

#[derive(Debug)]
struct Session {
    state: SessionState,
    revoked_at: Option<u64>,
    created_at: u64,
    last_rotated_at: u64,
    label: Option<String>,
    tokens: HashMap<Uuid, TokenState>,
}

/// An in-memory [`TokenStore`] for single-instance apps and tests.
///
/// Everything is lost on restart (every session ends); apps with several
/// instances need a shared store (SQL or Redis).
#[derive(Debug, Default)]
pub struct MemoryStore {
    sessions: DashMap<Uuid, Session>,
    by_user: DashMap<String, HashSet<Uuid>>,
    /// Per user: tokens issued before this second are revoked (log out everywhere).
    user_cutoff: DashMap<String, u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many sessions the store holds (live, revoked or expired but not purged).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// How many refresh-token records the store holds.
    pub fn token_count(&self) -> usize {
        self.sessions.iter().map(|s| s.tokens.len()).sum()
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        let mut tokens = HashMap::with_capacity(2);
        tokens.insert(
            s.jti,
            TokenState::new(
                None,
                state::capped_expiry(s.token_expires_at, s.session_expires_at),
            ),
        );
        let session = Session {
            state: SessionState::new(
                s.user_id.clone(),
                false,
                s.session_expires_at,
                Some(s.jti),
                None,
            ),
            revoked_at: None,
            created_at: s.created_at,
            last_rotated_at: s.created_at,
            label: s.label.clone(),
            tokens,
        };
        match self.sessions.entry(s.session_id) {
            dashmap::Entry::Occupied(_) => {
                return Err(StoreError::new("session id already exists"));
            }
            dashmap::Entry::Vacant(v) => {
                v.insert(session);
            }
        }
        self.by_user
            .entry(s.user_id.clone())
            .or_default()
            .insert(s.session_id);
        Ok(())
    }

    async fn rotate(&self, req: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        let Some(mut entry) = self.sessions.get_mut(&req.session_id) else {
            return Ok(rotation::outcome(rotation::decide(None, None, req), 0));
        };
        let session = &mut *entry;
        let token = session.tokens.get(&req.jti).copied();
        let decision = rotation::decide(Some(&session.state), token.as_ref(), req);
        let expires_at = rotation::successor_expiry(&session.state, req);
        match decision {
            Decision::Rotate | Decision::RotateWithinGrace => {
                // Rotate marks the presented (live) token used; grace marks the
                // current live token superseded. Either way the old live token is used.
                if let Some(live) = session
                    .state
                    .live_jti
                    .and_then(|j| session.tokens.get_mut(&j))
                {
                    live.used_at = Some(req.now);
                }
                session
                    .tokens
                    .insert(req.successor_jti, TokenState::new(None, expires_at));
                session.state.live_parent = Some(req.jti);
                session.state.live_jti = Some(req.successor_jti);
                session.last_rotated_at = req.now;
            }
            Decision::RevokeForReuse => {
                session.state.revoked = true;
                session.revoked_at = Some(req.now);
            }
            Decision::Refuse(_) => {}
        }
        Ok(rotation::outcome(decision, expires_at))
    }

    async fn revoke_session(&self, session_id: Uuid, now: u64) -> Result<bool, StoreError> {
        let Some(mut s) = self.sessions.get_mut(&session_id) else {
            return Ok(false);
        };
        if s.state.revoked {
            return Ok(false);
        }
        s.state.revoked = true;
        s.revoked_at = Some(now);
        Ok(true)
    }

    async fn revoke_user(&self, user_id: &str, now: u64) -> Result<u64, StoreError> {
        // The cutoff first: from here on no older token passes the revocation check,
        // even before the loop below reaches its session.
        self.user_cutoff
            .entry(user_id.to_owned())
            .and_modify(|c| *c = state::next_cutoff(Some(*c), now))
            .or_insert(now);
        let ids: Vec<Uuid> = self
            .by_user
            .get(user_id)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let mut revoked = 0;
        for id in ids {
            if self.revoke_session(id, now).await? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    async fn is_revoked(
        &self,
        session_id: Uuid,
        user_id: &str,
        issued_at: u64,
    ) -> Result<bool, StoreError> {
        let session = self.sessions.get(&session_id);
        let check = session.as_ref().map(|s| SessionCheck {
            user_id: &s.state.user_id,
            revoked: s.state.revoked,
        });
        let cutoff = self.user_cutoff.get(user_id).map(|c| *c);
        Ok(state::is_revoked(check, user_id, issued_at, cutoff))
    }

    async fn list_sessions(&self, user_id: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError> {
        let ids: Vec<Uuid> = self
            .by_user
            .get(user_id)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let mut out: Vec<SessionInfo> = ids
            .into_iter()
            .filter_map(|id| {
                let s = self.sessions.get(&id)?;
                // The owner is checked again: the index could be stale.
                let live = s.state.live_jti.and_then(|j| s.tokens.get(&j));
                (s.state.user_id == user_id && state::is_listable(&s.state, live, now)).then(|| {
                    SessionInfo::new(
                        id,
                        s.state.user_id.clone(),
                        s.created_at,
                        s.state.expires_at,
                    )
                    .with_last_rotated_at(s.last_rotated_at)
                    .with_label(s.label.clone())
                })
            })
            .collect();
        out.sort_by_key(|s| (s.created_at, s.session_id));
        Ok(out)
    }

    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        let mut removed = 0u64;
        let mut emptied = Vec::new();
        self.sessions.retain(|id, s| {
            if state::session_purgeable(s.state.expires_at, now) {
                removed += s.tokens.len() as u64;
                emptied.push((*id, s.state.user_id.clone()));
                return false;
            }
            let before = s.tokens.len();
            s.tokens.retain(|_, t| !state::token_purgeable(t, now));
            removed += (before - s.tokens.len()) as u64;
            true
        });
        for (id, user) in emptied {
            if let dashmap::Entry::Occupied(mut e) = self.by_user.entry(user) {
                e.get_mut().remove(&id);
                if e.get().is_empty() {
                    e.remove();
                }
            }
        }
        Ok(removed)
    }
}
