//! [`TokenStore`] for [`SqlStore`], on every database: each call is one
//! transaction (or one read), whose decisions come from
//! [`rotation`](crate::store::rotation) and [`state`](crate::store::state).

use async_trait::async_trait;
use uuid::Uuid;

use super::dialect::SqlDatabase;
use super::driver::{Bind as _, Get as _, RowsAffected as _, query};
use super::store::{SqlStore, TxError, one_row};
use super::{from_db, to_db};
use crate::error::StoreError;
use crate::store::rotation::{self, Decision, SessionState, TokenState};
use crate::store::state::{self, SessionCheck};
use crate::store::{NewSession, RotateOutcome, RotateRequest, SessionInfo, TokenStore};

#[async_trait]
impl<DB: SqlDatabase> TokenStore for SqlStore<DB> {
    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        self.run("create_session", || async {
            let _writer = self.writer().await;
            let mut tx = self.begin().await?;
            // The user's cutoff row is locked first, as a revoke-all locks it:
            // either that revoke-all committed before (its cutoff is read
            // here), or it waits for this commit and then revokes this session.
            let cutoff = self.lock_cutoff(&mut tx, &s.user_id).await?;
            let revoked = state::predates_cutoff(s.created_at_ms, cutoff);
            self.insert_session(&mut tx, s, revoked).await?;
            let first = NewToken {
                jti: s.jti,
                parent: None,
                issued_at: s.created_at,
                expires_at: state::capped_expiry(s.token_expires_at, s.session_expires_at),
            };
            self.insert_token(&mut tx, s.session_id, first).await?;
            self.commit(tx).await?;
            Ok(())
        })
        .await
    }

    async fn rotate(&self, req: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        self.run("rotate", || async {
            let _writer = self.writer().await;
            let mut tx = self.begin().await?;
            // The session row is locked first: every rotation of this session
            // queues here, so the reads below are current.
            let session = self.lock_session(&mut tx, req.session_id).await?;
            let token = match &session {
                Some(s) if s.user_id == req.user_id => self.read_token(&mut tx, req).await?,
                _ => None,
            };
            let decision = rotation::decide(session.as_ref(), token.as_ref(), req);
            if let Some(session) = &session {
                self.apply(&mut tx, decision, session, req).await?;
            }
            // The outcome (a revocation included) is answered only once it is
            // committed.
            self.commit(tx).await?;
            Ok(rotation::outcome(decision, session.as_ref(), req))
        })
        .await
    }

    async fn revoke_session(
        &self,
        session_id: Uuid,
        user_id: &str,
        now: u64,
    ) -> Result<bool, StoreError> {
        self.run("revoke_session", || async {
            let _writer = self.writer().await;
            let mut tx = self.begin().await?;
            let revoked = self.revoke(&mut tx, session_id, user_id, now).await? > 0;
            self.commit(tx).await?;
            Ok(revoked)
        })
        .await
    }

    async fn revoke_user(&self, user_id: &str, now_ms: u64) -> Result<u64, StoreError> {
        self.run("revoke_user", || async {
            let _writer = self.writer().await;
            let mut tx = self.begin().await?;
            // The cutoff first, its row locked until the commit: a session
            // creation of this user waits for it, or committed before and is
            // revoked below. It only moves forward (`state::next_cutoff`, as
            // GREATEST/MAX in the upsert itself).
            query::<DB>(&self.sql.upsert_cutoff)
                .arg(user_id.to_owned())
                .arg(to_db(now_ms))
                .execute(DB::conn(&mut tx))
                .await?;
            let n = query::<DB>(&self.sql.revoke_user)
                .arg(to_db(now_ms / 1000))
                .arg(user_id.to_owned())
                .execute(DB::conn(&mut tx))
                .await?
                .rows_affected();
            self.log_user(&mut tx, user_id, now_ms).await?;
            self.commit(tx).await?;
            Ok(n)
        })
        .await
    }

    async fn is_revoked(
        &self,
        session_id: Uuid,
        user_id: &str,
        issued_at: u64,
    ) -> Result<bool, StoreError> {
        self.run("is_revoked", || async {
            let mut conn = self.acquire().await?;
            let row = query::<DB>(&self.sql.read_revocation)
                .arg(session_id)
                .fetch_optional(DB::conn(&mut conn))
                .await?;
            conn.release();
            let Some(row) = row else {
                return Ok(state::is_revoked(None, user_id, issued_at, None));
            };
            // The cutoff read is the session owner's: when the owner is another
            // user, the session counts as revoked whatever the cutoff.
            let owner: String = row.col(0)?;
            let session = SessionCheck {
                user_id: &owner,
                revoked: row.col::<Option<i64>>(1)?.is_some(),
                created_at_ms: from_db(row.col(2)?),
            };
            let cutoff = row.col::<Option<i64>>(3)?.map(from_db);
            Ok(state::is_revoked(Some(session), user_id, issued_at, cutoff))
        })
        .await
    }

    async fn list_sessions(&self, user_id: &str, now: u64) -> Result<Vec<SessionInfo>, StoreError> {
        self.run("list_sessions", || async {
            let mut conn = self.acquire().await?;
            let rows = query::<DB>(&self.sql.list_sessions)
                .arg(user_id.to_owned())
                .fetch_all(DB::conn(&mut conn))
                .await?;
            conn.release();
            let mut listed = Vec::new();
            for row in &rows {
                let session = session_state::<DB>(row)?;
                let used_at = row.col::<Option<i64>>(5)?.map(from_db);
                let live = row
                    .col::<Option<i64>>(6)?
                    .map(|expires_at| TokenState::new(used_at, from_db(expires_at)));
                // The owner is checked here too, byte for byte.
                if session.user_id == user_id && state::is_listable(&session, live.as_ref(), now) {
                    listed.push(session_info::<DB>(
                        row,
                        session.user_id,
                        session.expires_at,
                    )?);
                }
            }
            Ok(listed)
        })
        .await
    }

    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        let in_sessions = self.purge_sessions(now).await?;
        let tokens = self.purge_tokens(now).await?;
        self.purge_cutoffs().await?;
        self.purge_revocations(now).await?;
        Ok(in_sessions + tokens)
    }
}

/// A refresh token to insert into a session.
struct NewToken {
    jti: Uuid,
    parent: Option<Uuid>,
    issued_at: u64,
    expires_at: u64,
}

/// The steps of session creation and rotation, each inside the caller's
/// transaction (`tx`).
impl<DB: SqlDatabase> SqlStore<DB> {
    /// The user's revoke-all cutoff (milliseconds), its row locked until the
    /// transaction ends (created first, at 0, where the database needs a row to
    /// lock); `None` when the user has none.
    async fn lock_cutoff(
        &self,
        tx: &mut DB::Connection,
        user_id: &str,
    ) -> Result<Option<u64>, TxError> {
        if let Some(ensure) = &self.sql.ensure_cutoff {
            query::<DB>(ensure)
                .arg(user_id.to_owned())
                .execute(DB::conn(tx))
                .await?;
        }
        let row = query::<DB>(&self.sql.lock_cutoff)
            .arg(user_id.to_owned())
            .fetch_optional(DB::conn(tx))
            .await?;
        Ok(row.map(|row| row.col(0).map(from_db)).transpose()?)
    }

    /// Inserts session `s`, revoked at its creation when a revoke-all cutoff
    /// came after it (`revoked`).
    async fn insert_session(
        &self,
        tx: &mut DB::Connection,
        s: &NewSession,
        revoked: bool,
    ) -> Result<(), sqlx::Error> {
        let live_expires_at = state::capped_expiry(s.token_expires_at, s.session_expires_at);
        query::<DB>(&self.sql.insert_session)
            .arg(s.session_id)
            .arg(s.user_id.clone())
            .arg(to_db(s.created_at))
            .arg(to_db(s.created_at_ms))
            .arg(to_db(s.created_at))
            .arg(to_db(s.session_expires_at))
            .arg(revoked.then_some(to_db(s.created_at)))
            .arg(s.jti)
            .arg(Some(to_db(live_expires_at)))
            .arg(s.label.clone())
            .execute(DB::conn(tx))
            .await?;
        Ok(())
    }

    /// The session's state (with its user's cutoff), its row locked until the
    /// transaction ends; `None` when there is no such session.
    async fn lock_session(
        &self,
        tx: &mut DB::Connection,
        session_id: Uuid,
    ) -> Result<Option<SessionState>, TxError> {
        let row = query::<DB>(&self.sql.lock_session)
            .arg(session_id)
            .fetch_optional(DB::conn(tx))
            .await?;
        let locked = |row: &DB::Row| -> Result<SessionState, sqlx::Error> {
            Ok(session_state::<DB>(row)?
                .with_live_expires_at(row.col::<Option<i64>>(5)?.map(from_db))
                .with_created_at_ms(from_db(row.col(6)?))
                .with_user_cutoff_ms(row.col::<Option<i64>>(7)?.map(from_db)))
        };
        Ok(row.as_ref().map(locked).transpose()?)
    }

    /// The presented token's state; `None` when the session has no such token
    /// (never issued, or purged).
    async fn read_token(
        &self,
        tx: &mut DB::Connection,
        req: &RotateRequest,
    ) -> Result<Option<TokenState>, TxError> {
        let row = query::<DB>(&self.sql.read_token)
            .arg(req.jti)
            .arg(req.session_id)
            .fetch_optional(DB::conn(tx))
            .await?;
        let token = |row: &DB::Row| -> Result<TokenState, sqlx::Error> {
            let used_at = row.col::<Option<i64>>(0)?.map(from_db);
            Ok(TokenState::new(used_at, from_db(row.col(1)?)))
        };
        Ok(row.as_ref().map(token).transpose()?)
    }

    /// Applies `decision` with conditional writes whose row counts are checked.
    /// Nothing here reads the live token's own row: what re-delivery needs of
    /// it (its expiry) is on the session row, so a purged live token is judged
    /// by the rules like any other (see [`rotation::decide`]).
    async fn apply(
        &self,
        tx: &mut DB::Connection,
        decision: Decision,
        session: &SessionState,
        req: &RotateRequest,
    ) -> Result<(), TxError> {
        match decision {
            Decision::Rotate => {
                // `decide` rotates only the live token, which is unused: only
                // one caller can make this write succeed.
                let n = query::<DB>(&self.sql.mark_used)
                    .arg(to_db(req.now))
                    .arg(req.successor_jti)
                    .arg(req.jti)
                    .arg(req.session_id)
                    .execute(DB::conn(tx))
                    .await?
                    .rows_affected();
                one_row(n, "the live token was already used")?;
                let expires_at = rotation::successor_expiry(session, req);
                self.make_live(tx, req, expires_at).await
            }
            Decision::Revoke(_) => {
                let n = self
                    .revoke(tx, req.session_id, &req.user_id, req.now)
                    .await?;
                one_row(n, "the session changed under its lock")
            }
            Decision::Redeliver { .. } | Decision::Refuse(_) => Ok(()),
        }
    }

    /// Inserts the successor (parent: the presented token) and makes it the
    /// session's live token.
    async fn make_live(
        &self,
        tx: &mut DB::Connection,
        req: &RotateRequest,
        expires_at: u64,
    ) -> Result<(), TxError> {
        let successor = NewToken {
            jti: req.successor_jti,
            parent: Some(req.jti),
            issued_at: req.now,
            expires_at,
        };
        self.insert_token(tx, req.session_id, successor).await?;
        let n = query::<DB>(&self.sql.move_live)
            .arg(req.successor_jti)
            .arg(req.jti)
            .arg(to_db(expires_at))
            .arg(to_db(req.now))
            .arg(req.session_id)
            .execute(DB::conn(tx))
            .await?
            .rows_affected();
        one_row(n, "the session changed under its lock")
    }

    /// Inserts `token` into session `session_id`.
    async fn insert_token(
        &self,
        tx: &mut DB::Connection,
        session_id: Uuid,
        token: NewToken,
    ) -> Result<(), sqlx::Error> {
        query::<DB>(&self.sql.insert_token)
            .arg(token.jti)
            .arg(session_id)
            .arg(token.parent)
            .arg(to_db(token.issued_at))
            .arg(to_db(token.expires_at))
            .execute(DB::conn(tx))
            .await?;
        Ok(())
    }

    /// Revokes session `session_id` of `user_id` at `now` unless it was
    /// revoked before; returns the rows changed (0 or 1).
    async fn revoke(
        &self,
        conn: &mut DB::Connection,
        session_id: Uuid,
        user_id: &str,
        now: u64,
    ) -> Result<u64, sqlx::Error> {
        let revoked = query::<DB>(&self.sql.revoke_session)
            .arg(to_db(now))
            .arg(session_id)
            .arg(user_id.to_owned())
            .execute(DB::conn(conn))
            .await?
            .rows_affected();
        if revoked > 0 {
            self.log_session(conn, session_id).await?;
        }
        Ok(revoked)
    }
}

/// A session's state from the first five columns of `row`: `user_id,
/// revoked_at, expires_at, live_jti, live_parent`.
fn session_state<DB: SqlDatabase>(row: &DB::Row) -> Result<SessionState, sqlx::Error> {
    Ok(SessionState::new(
        row.col::<String>(0)?,
        row.col::<Option<i64>>(1)?.is_some(),
        from_db(row.col(2)?),
        row.col(3)?,
        row.col(4)?,
    ))
}

/// A listed session from a row of the session list (columns 7 to 10).
fn session_info<DB: SqlDatabase>(
    row: &DB::Row,
    user_id: String,
    expires_at: u64,
) -> Result<SessionInfo, sqlx::Error> {
    Ok(
        SessionInfo::new(row.col(7)?, user_id, from_db(row.col(8)?), expires_at)
            .with_last_rotated_at(from_db(row.col(9)?))
            .with_label(row.col(10)?),
    )
}
