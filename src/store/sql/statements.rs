//! The SQL store's statements: what each one binds and returns, and the text
//! MySQL and SQLite share word for word. Each database's own text is in its
//! file (`postgres.rs`, `mysql.rs`, `sqlite.rs`), written out in its placeholder
//! syntax (`$1` on PostgreSQL, `?` on MySQL and SQLite), with the store's
//! quoted table names put in once, when the store is built.

// `Quoted` and `Statements` appear in the sealed `Dialect` trait: public in
// name only.
#![allow(unreachable_pub)]

use sqlx::SqlStr;

use super::TableNames;
use super::dialect::Dialect;
use super::driver::trusted;

/// A store's table names, quoted for its database.
#[derive(Debug)]
pub struct Quoted {
    pub(crate) sessions: String,
    pub(crate) tokens: String,
    pub(crate) cutoffs: String,
    pub(crate) versions: String,
}

impl Quoted {
    /// `names`, quoted by `DB` (the names were checked by
    /// [`validate_ident`](super::validate_ident)).
    pub(crate) fn new<DB: Dialect>(names: &TableNames) -> Self {
        Quoted {
            sessions: DB::quote(&names.sessions),
            tokens: DB::quote(&names.refresh_tokens),
            cutoffs: DB::quote(&names.user_cutoffs),
            versions: DB::quote(&names.schema_versions),
        }
    }
}

/// Every statement of a store, in one database's text. The binds of each are
/// listed in order; the columns a `SELECT` returns are listed after `->`.
#[derive(Debug)]
pub struct Statements {
    /// session_id, user_id, created_at, last_rotated_at, expires_at, live_jti, label
    pub(crate) insert_session: SqlStr,
    /// jti, session_id, parent_jti, issued_at, expires_at
    pub(crate) insert_token: SqlStr,
    /// session_id -> user_id, revoked_at, expires_at, live_jti, live_parent;
    /// locks the row until the transaction ends.
    pub(crate) lock_session: SqlStr,
    /// jti, session_id -> used_at, expires_at; the latest committed row.
    pub(crate) read_token: SqlStr,
    /// used_at, successor_jti, jti, session_id; only while unused.
    pub(crate) mark_used: SqlStr,
    /// live_jti, live_parent, last_rotated_at, session_id; only while not revoked.
    pub(crate) move_live: SqlStr,
    /// revoked_at, session_id; only while not revoked.
    pub(crate) revoke_session: SqlStr,
    /// user_id, cutoff: the revoke-all cutoff, moved forward only
    /// ([`state::next_cutoff`](crate::store::state::next_cutoff)).
    pub(crate) upsert_cutoff: SqlStr,
    /// user_id: makes the user's cutoff row (cutoff 0) when it is missing.
    pub(crate) ensure_cutoff: SqlStr,
    /// user_id -> cutoff, the row locked until the transaction ends.
    pub(crate) lock_cutoff: SqlStr,
    /// The cutoffs no stored session falls under
    /// ([`state::cutoff_purgeable`](crate::store::state::cutoff_purgeable)).
    pub(crate) purge_cutoffs: SqlStr,
    /// revoked_at, user_id; the user's sessions not yet revoked.
    pub(crate) revoke_user: SqlStr,
    /// session_id -> the session's user_id, revoked_at, and its user's cutoff.
    pub(crate) read_revocation: SqlStr,
    /// user_id -> every session of the user, oldest first: user_id, revoked_at,
    /// expires_at, live_jti, live_parent, the live token's used_at and
    /// expires_at, then session_id, created_at, last_rotated_at, label.
    pub(crate) list_sessions: SqlStr,
    /// now, limit -> session_id of sessions
    /// [`state::session_purgeable`](crate::store::state::session_purgeable),
    /// locked.
    pub(crate) purge_pick_sessions: SqlStr,
    /// The purge batch size of session ids (a short batch repeats one), so that
    /// the statement is prepared once: deletes their tokens.
    pub(crate) purge_tokens_of: SqlStr,
    /// The same ids: deletes the sessions.
    pub(crate) purge_sessions: SqlStr,
    /// now, limit: deletes tokens
    /// [`state::token_purgeable`](crate::store::state::token_purgeable).
    pub(crate) purge_tokens: SqlStr,
    /// Creates the table of applied migrations.
    pub(crate) create_versions: SqlStr,
    /// -> version, of every migration applied.
    pub(crate) applied_versions: SqlStr,
    /// version, applied_at
    pub(crate) record_version: SqlStr,
}

/// The statements MySQL and SQLite write differently: locking reads, the
/// cutoff upsert, and bounded deletes. Each of the two gives its own to
/// [`Statements::positional`].
#[derive(Debug)]
#[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
pub(crate) struct Differing {
    pub(crate) lock_session: SqlStr,
    pub(crate) read_token: SqlStr,
    pub(crate) upsert_cutoff: SqlStr,
    pub(crate) ensure_cutoff: SqlStr,
    pub(crate) lock_cutoff: SqlStr,
    pub(crate) purge_pick_sessions: SqlStr,
    pub(crate) purge_tokens: SqlStr,
}

#[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
impl Statements {
    /// The statements of MySQL and SQLite: `?` placeholders, the text shared
    /// word for word (the table names quoted each database's way), and each
    /// database's `own`.
    pub(crate) fn positional(n: &Quoted, purge_batch: u32, own: Differing) -> Self {
        let (s, t, c, v) = (&n.sessions, &n.tokens, &n.cutoffs, &n.versions);
        let ids = vec!["?"; purge_batch as usize].join(", ");
        Statements {
            insert_session: trusted(format!(
                "INSERT INTO {s} (session_id, user_id, created_at, last_rotated_at, expires_at, live_jti, label, created_at_ms, revoked_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            insert_token: trusted(format!(
                "INSERT INTO {t} (jti, session_id, parent_jti, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)"
            )),
            lock_session: own.lock_session,
            read_token: own.read_token,
            mark_used: trusted(format!(
                "UPDATE {t} SET used_at = ?, successor_jti = ? \
                 WHERE jti = ? AND session_id = ? AND used_at IS NULL"
            )),
            move_live: trusted(format!(
                "UPDATE {s} SET live_jti = ?, live_parent = ?, last_rotated_at = ? \
                 WHERE session_id = ? AND revoked_at IS NULL"
            )),
            revoke_session: trusted(format!(
                "UPDATE {s} SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL"
            )),
            upsert_cutoff: own.upsert_cutoff,
            ensure_cutoff: own.ensure_cutoff,
            lock_cutoff: own.lock_cutoff,
            // state::cutoff_purgeable: no stored session was created before it.
            purge_cutoffs: trusted(format!(
                "DELETE FROM {c} WHERE NOT EXISTS \
                 (SELECT 1 FROM {s} WHERE {s}.user_id = {c}.user_id AND {s}.created_at_ms < {c}.cutoff)"
            )),
            revoke_user: trusted(format!(
                "UPDATE {s} SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"
            )),
            read_revocation: trusted(format!(
                "SELECT s.user_id, s.revoked_at, c.cutoff, s.created_at_ms FROM {s} s \
                 LEFT JOIN {c} c ON c.user_id = s.user_id WHERE s.session_id = ?"
            )),
            list_sessions: trusted(format!(
                "SELECT s.user_id, s.revoked_at, s.expires_at, s.live_jti, s.live_parent, \
                 t.used_at, t.expires_at, s.session_id, s.created_at, s.last_rotated_at, s.label \
                 FROM {s} s LEFT JOIN {t} t ON t.jti = s.live_jti \
                 WHERE s.user_id = ? ORDER BY s.created_at, s.session_id"
            )),
            purge_pick_sessions: own.purge_pick_sessions,
            purge_tokens_of: trusted(format!("DELETE FROM {t} WHERE session_id IN ({ids})")),
            purge_sessions: trusted(format!("DELETE FROM {s} WHERE session_id IN ({ids})")),
            purge_tokens: own.purge_tokens,
            create_versions: trusted(format!(
                "CREATE TABLE IF NOT EXISTS {v} (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)"
            )),
            applied_versions: trusted(format!("SELECT version FROM {v}")),
            record_version: trusted(format!(
                "INSERT INTO {v} (version, applied_at) VALUES (?, ?)"
            )),
        }
    }
}

#[cfg(test)]
impl Statements {
    /// Every statement.
    pub(crate) fn all(&self) -> Vec<&SqlStr> {
        vec![
            &self.insert_session,
            &self.insert_token,
            &self.lock_session,
            &self.read_token,
            &self.mark_used,
            &self.move_live,
            &self.revoke_session,
            &self.upsert_cutoff,
            &self.ensure_cutoff,
            &self.lock_cutoff,
            &self.purge_cutoffs,
            &self.revoke_user,
            &self.read_revocation,
            &self.list_sessions,
            &self.purge_pick_sessions,
            &self.purge_tokens_of,
            &self.purge_sessions,
            &self.purge_tokens,
            &self.create_versions,
            &self.applied_versions,
            &self.record_version,
        ]
    }
}
