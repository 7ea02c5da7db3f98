//! [`MemoryStore`]: a [`TokenStore`] in process memory, on DashMap.
//!
//! Each session is one map entry; a rotation holds that entry's lock across the
//! read, the decision and the write, so it is atomic without a second lookup.
//! A user's entry in the user index serializes that user's session creation
//! against a revoke-all (the cutoff is read and written under it). Work per
//! operation is bounded by the session's own size (a hash lookup inside it),
//! never by the number of sessions, except `purge_expired`, which scans.
//!
//! Lock order, to stay free of deadlocks: a user-index entry before a session
//! entry; a cutoff entry is only ever taken last and alone.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use uuid::Uuid;

use crate::error::StoreError;
use crate::store::log::{Revocation, RevocationLog, Revoked};
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

impl Session {
    fn new(s: &NewSession, revoked: bool) -> Self {
        let expires_at = state::capped_expiry(s.token_expires_at, s.session_expires_at);
        let mut tokens = HashMap::with_capacity(2);
        tokens.insert(s.jti, TokenState::new(None, expires_at));
        Session {
            state: SessionState::new(
                s.user_id.clone(),
                revoked,
                s.session_expires_at,
                Some(s.jti),
                None,
            )
            .with_live_expires_at(Some(expires_at))
            .with_created_at_ms(s.created_at_ms),
            revoked_at: revoked.then_some(s.created_at),
            created_at: s.created_at,
            last_rotated_at: s.created_at,
            label: s.label.clone(),
            tokens,
        }
    }

    fn revoke(&mut self, now: u64) -> bool {
        if self.state.revoked {
            return false;
        }
        self.state.revoked = true;
        self.revoked_at = Some(now);
        true
    }

    fn rotate(&mut self, req: &RotateRequest, expires_at: u64) {
        if let Some(t) = self.tokens.get_mut(&req.jti) {
            t.used_at = Some(req.now);
        }
        self.tokens
            .insert(req.successor_jti, TokenState::new(None, expires_at));
        self.state.live_parent = Some(req.jti);
        self.state.live_jti = Some(req.successor_jti);
        self.state.live_expires_at = Some(expires_at);
        self.last_rotated_at = req.now;
    }
}

/// An in-memory [`TokenStore`] for single-instance apps and tests.
///
/// Everything is lost on restart (every session ends); apps with several
/// instances need a shared store (SQL or Redis).
#[derive(Debug, Default)]
pub struct MemoryStore {
    sessions: DashMap<Uuid, Session>,
    by_user: DashMap<String, HashSet<Uuid>>,
    /// Per user: the revoke-all cutoff in milliseconds ([`state::next_cutoff`]).
    user_cutoff: DashMap<String, u64>,
    /// The revocation log ([`RevocationLog`]), and its readers' wake-up.
    log: Mutex<MemoryLog>,
    appended: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct MemoryLog {
    last_seq: u64,
    entries: VecDeque<Revocation>,
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

    /// How many revoke-all cutoffs the store holds.
    pub fn cutoff_count(&self) -> usize {
        self.user_cutoff.len()
    }

    fn cutoff(&self, user_id: &str) -> Option<u64> {
        self.user_cutoff.get(user_id).map(|c| *c)
    }

    fn session_ids(&self, user_id: &str) -> Vec<Uuid> {
        self.by_user
            .get(user_id)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        // The user's index entry is held across the cutoff read and the insert:
        // a revoke-all either ran before (its cutoff is seen here) or runs after
        // (it finds this session in the index).
        let mut ids = self.by_user.entry(s.user_id.clone()).or_default();
        let revoked = state::predates_cutoff(s.created_at_ms, self.cutoff(&s.user_id));
        match self.sessions.entry(s.session_id) {
            dashmap::Entry::Occupied(_) => {
                return Err(StoreError::new("session id already exists"));
            }
            dashmap::Entry::Vacant(v) => {
                v.insert(Session::new(s, revoked));
            }
        }
        ids.insert(s.session_id);
        Ok(())
    }

    async fn rotate(&self, req: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        let Some(mut entry) = self.sessions.get_mut(&req.session_id) else {
            return Ok(rotation::outcome(
                rotation::decide(None, None, req),
                None,
                req,
            ));
        };
        let session = &mut *entry;
        session.state.user_cutoff_ms = self.cutoff(&session.state.user_id);
        let token = session.tokens.get(&req.jti).copied();
        let decision = rotation::decide(Some(&session.state), token.as_ref(), req);
        let outcome = rotation::outcome(decision, Some(&session.state), req);
        match decision {
            Decision::Rotate => {
                let expires_at = rotation::successor_expiry(&session.state, req);
                session.rotate(req, expires_at);
            }
            Decision::Revoke(_) => {
                if session.revoke(req.now) {
                    let expires_at = session.state.expires_at;
                    drop(entry);
                    self.append(Revoked::Session {
                        session_id: req.session_id,
                        expires_at,
                    });
                }
            }
            Decision::Redeliver { .. } | Decision::Refuse(_) => {}
        }
        Ok(outcome)
    }

    async fn revoke_session(
        &self,
        session_id: Uuid,
        user_id: &str,
        now: u64,
    ) -> Result<bool, StoreError> {
        let revoked = self
            .sessions
            .get_mut(&session_id)
            .filter(|s| s.state.user_id == user_id)
            .and_then(|mut s| s.revoke(now).then_some(s.state.expires_at));
        if let Some(expires_at) = revoked {
            self.append(Revoked::Session {
                session_id,
                expires_at,
            });
        }
        Ok(revoked.is_some())
    }

    async fn revoke_user(&self, user_id: &str, now_ms: u64) -> Result<u64, StoreError> {
        // The cutoff first, under the user's index entry: from here on no older
        // session passes the checks, and no creation can slip between the
        // cutoff and the listing below.
        let (ids, cutoff_ms) = {
            let index = self.by_user.entry(user_id.to_owned()).or_default();
            let cutoff_ms = *self
                .user_cutoff
                .entry(user_id.to_owned())
                .and_modify(|c| *c = state::next_cutoff(Some(*c), now_ms))
                .or_insert(now_ms);
            (index.iter().copied().collect::<Vec<Uuid>>(), cutoff_ms)
        };
        let now = now_ms / 1000;
        let sessions_end = ids
            .iter()
            .filter_map(|id| self.sessions.get(id).map(|s| s.state.expires_at))
            .max();
        self.append(Revoked::User {
            user_id: user_id.to_owned(),
            cutoff_ms,
            expires_at: state::cutoff_relevant_until(cutoff_ms, sessions_end),
        });
        // The revoke-all's one log entry stands for these sessions.
        let mut revoked = 0;
        for id in ids {
            if self
                .sessions
                .get_mut(&id)
                .is_some_and(|mut s| s.revoke(now))
            {
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
        // Read under the session's guard, nothing copied: this runs on every
        // request with the layer's revocation check. (A cutoff entry is taken
        // last and alone, as everywhere in this store.)
        let session = self.sessions.get(&session_id);
        let check = session.as_ref().map(|s| SessionCheck {
            user_id: &s.state.user_id,
            revoked: s.state.revoked,
            created_at_ms: s.state.created_at_ms,
        });
        Ok(state::is_revoked(
            check,
            user_id,
            issued_at,
            self.cutoff(user_id),
        ))
    }

    async fn list_sessions(&self, user_id: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError> {
        let mut out: Vec<SessionInfo> = self
            .session_ids(user_id)
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
        self.purge_cutoffs();
        // Never the newest entry: the log's contract, kept here too.
        let mut log = self.log();
        let newest = log.last_seq;
        log.entries
            .retain(|e| e.revoked.expires_at() > now || e.seq == newest);
        drop(log);
        Ok(removed)
    }
}

#[async_trait]
impl RevocationLog for MemoryStore {
    fn ordered_at_commit(&self) -> bool {
        true
    }

    async fn revocations_after(
        &self,
        seq: u64,
        limit: usize,
    ) -> Result<Vec<Revocation>, StoreError> {
        let log = self.log();
        Ok(log
            .entries
            .iter()
            .filter(|e| e.seq > seq)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn wait_for_revocations(&self, seq: u64, timeout: Duration) -> Result<(), StoreError> {
        let appended = self.appended.notified();
        let newer = self.log().entries.back().is_some_and(|e| e.seq > seq);
        if newer {
            return Ok(());
        }
        let _ = tokio::time::timeout(timeout, appended).await;
        Ok(())
    }
}

impl MemoryStore {
    /// The revocation log, locked. Nothing panics while it is held, so a
    /// poisoned lock (a panic elsewhere in that thread) still holds a whole log.
    fn log(&self) -> std::sync::MutexGuard<'_, MemoryLog> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends to the revocation log and wakes its readers.
    fn append(&self, revoked: Revoked) {
        let mut log = self.log();
        log.last_seq += 1;
        let seq = log.last_seq;
        log.entries.push_back(Revocation::new(seq, revoked));
        drop(log);
        self.appended.notify_waiters();
    }

    /// Drops the cutoffs no stored session falls under ([`state::cutoff_purgeable`]).
    fn purge_cutoffs(&self) {
        let users: Vec<(String, u64)> = self
            .user_cutoff
            .iter()
            .map(|c| (c.key().clone(), *c.value()))
            .collect();
        for (user, cutoff) in users {
            // Under the user's index entry, as creation and revoke-all are.
            let index = self.by_user.get(&user);
            let oldest = index
                .iter()
                .flat_map(|ids| ids.iter())
                .filter_map(|id| self.sessions.get(id).map(|s| s.state.created_at_ms))
                .min();
            if state::cutoff_purgeable(cutoff, oldest) {
                self.user_cutoff.remove_if(&user, |_, c| *c == cutoff);
            }
            drop(index);
        }
    }
}
