//! The SQL store's statements: what each one binds and returns, and the text
//! every database shares word for word. Each database's own text is in its
//! file (`postgres.rs`, `mysql.rs`, `sqlite.rs`). All are written with `?`
//! placeholders, numbered (`$1`, `$2`, ...) for PostgreSQL, with the store's
//! quoted table names put in once, when the store is built.
//!
//! Times are integer seconds since the epoch, except the columns named `_ms`
//! and the revoke-all `cutoff`, which are milliseconds (schema version 2).

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
    pub(crate) revocations: String,
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
            revocations: DB::quote(&names.revocations),
        }
    }
}

/// Every statement of a store, in one database's text. The binds of each are
/// listed in order; the columns a `SELECT` returns are listed after `->`.
#[derive(Debug)]
pub struct Statements {
    /// session_id, user_id, created_at, created_at_ms, last_rotated_at,
    /// expires_at, revoked_at, live_jti, live_expires_at, label
    pub(crate) insert_session: SqlStr,
    /// jti, session_id, parent_jti, issued_at, expires_at
    pub(crate) insert_token: SqlStr,
    /// user_id: makes sure the user's cutoff row exists (cutoff 0 when it did
    /// not), so that [`Statements::lock_cutoff`] has a row to lock. `None`
    /// where `lock_cutoff` needs no row (it creates it, or a database-wide
    /// write lock orders the writers).
    pub(crate) ensure_cutoff: Option<SqlStr>,
    /// user_id -> cutoff; the row locked until the transaction ends, so that a
    /// session's creation and a revoke-all of its user are ordered.
    pub(crate) lock_cutoff: SqlStr,
    /// session_id -> user_id, revoked_at, expires_at, live_jti, live_parent,
    /// live_expires_at, created_at_ms, and the user's cutoff (not locked);
    /// locks the session row until the transaction ends.
    pub(crate) lock_session: SqlStr,
    /// jti, session_id -> used_at, expires_at; the latest committed row.
    pub(crate) read_token: SqlStr,
    /// used_at, successor_jti, jti, session_id; only while unused.
    pub(crate) mark_used: SqlStr,
    /// live_jti, live_parent, live_expires_at, last_rotated_at, session_id;
    /// only while not revoked.
    pub(crate) move_live: SqlStr,
    /// revoked_at, session_id; only while not revoked.
    pub(crate) revoke_session: SqlStr,
    /// user_id, cutoff: the revoke-all cutoff (milliseconds), moved forward
    /// only ([`state::next_cutoff`](crate::store::state::next_cutoff)).
    pub(crate) upsert_cutoff: SqlStr,
    /// revoked_at, user_id; the user's sessions not yet revoked.
    pub(crate) revoke_user: SqlStr,
    /// session_id -> the session's user_id, revoked_at, created_at_ms, and its
    /// user's cutoff.
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
    /// limit: deletes cutoffs
    /// [`state::cutoff_purgeable`](crate::store::state::cutoff_purgeable).
    pub(crate) purge_cutoffs: SqlStr,
    /// Creates the table of applied migrations.
    pub(crate) create_versions: SqlStr,
    /// -> version, of every migration applied.
    pub(crate) applied_versions: SqlStr,
    /// table name -> 1 row when that table exists.
    pub(crate) table_exists: SqlStr,
    /// version, applied_at
    pub(crate) record_version: SqlStr,
    /// The revocation log's statements.
    pub(crate) log: LogStatements,
}

/// The revocation log's statements (schema version 3).
#[derive(Debug)]
pub struct LogStatements {
    /// session_id: logs the session's revocation, with its expiry.
    pub(crate) session: SqlStr,
    /// user_id -> the latest expiry of the user's sessions (NULL: none).
    pub(crate) sessions_end: SqlStr,
    /// user_id, cutoff, expires_at: logs a revoke-all.
    pub(crate) user: SqlStr,
    /// seq, limit -> seq, session_id, user_id, cutoff, expires_at: the log
    /// after `seq`, in order.
    pub(crate) after: SqlStr,
    /// now: removes the log entries that stopped mattering, but never the
    /// newest (the sequence must not go back where a database would reuse it).
    pub(crate) purge: SqlStr,
    /// channel: wakes the log's readers at commit (PostgreSQL's `NOTIFY`).
    pub(crate) notify: Option<SqlStr>,
}

impl LogStatements {
    fn new(
        n: &Quoted,
        user_id: fn(&str) -> String,
        notify: Option<&'static str>,
        sql: impl Fn(String) -> SqlStr,
    ) -> Self {
        let (s, r) = (&n.sessions, &n.revocations);
        LogStatements {
            session: sql(format!(
                "INSERT INTO {r} (session_id, expires_at) \
                 SELECT session_id, expires_at FROM {s} WHERE session_id = ?"
            )),
            sessions_end: sql(format!("SELECT MAX(expires_at) FROM {s} WHERE user_id = ?")),
            user: sql(format!(
                "INSERT INTO {r} (user_id, cutoff, expires_at) VALUES (?, ?, ?)"
            )),
            after: sql(format!(
                "SELECT seq, session_id, {}, cutoff, expires_at FROM {r} \
                 WHERE seq > ? ORDER BY seq LIMIT ?",
                user_id("user_id")
            )),
            // A derived table: MySQL reads no table it deletes from otherwise.
            purge: sql(format!(
                "DELETE FROM {r} WHERE expires_at <= ? \
                 AND seq < (SELECT m FROM (SELECT MAX(seq) AS m FROM {r}) newest)"
            )),
            notify: notify.map(|text| sql(text.to_owned())),
        }
    }
}

/// What each database writes its own way: its locks, the cutoff's lock and
/// upsert, bounded deletes, how a user id column is read back, and its
/// placeholders. Each dialect gives its own to [`Statements::new`]; the text is
/// written with `?` placeholders.
#[derive(Debug)]
pub(crate) struct Differing {
    /// Ends the session read of a rotation: its row lock (`FOR UPDATE`), or
    /// nothing where the transaction's `BEGIN` locks the database.
    pub(crate) lock_session: &'static str,
    /// Ends the token read of a rotation: a lock where only a locking read
    /// sees the latest committed row (MySQL's `REPEATABLE READ`).
    pub(crate) lock_token: &'static str,
    /// Ends the pick of expired sessions in a purge batch: their row locks.
    pub(crate) lock_picked: &'static str,
    pub(crate) ensure_cutoff: Option<String>,
    pub(crate) lock_cutoff: String,
    pub(crate) upsert_cutoff: String,
    pub(crate) purge_tokens: String,
    pub(crate) purge_cutoffs: String,
    /// -> 1 row when the table named by the bind exists (in the connection's
    /// schema or database).
    pub(crate) table_exists: &'static str,
    /// The expression that reads user id column `column` back as text.
    pub(crate) user_id: fn(&str) -> String,
    /// Whether placeholders are numbered (`$1`, `$2`, ...: PostgreSQL)
    /// rather than `?`.
    pub(crate) numbered: bool,
    /// The statement that wakes the log's readers, if the database can.
    pub(crate) notify: Option<&'static str>,
}

impl Statements {
    /// A database's statements: the text every database shares word for word
    /// (the table names quoted each database's way), and its `own`.
    pub(crate) fn new(n: &Quoted, purge_batch: u32, own: Differing) -> Self {
        let (s, t, c, v) = (&n.sessions, &n.tokens, &n.cutoffs, &n.versions);
        let sql = |text: String| trusted(if own.numbered { numbered(&text) } else { text });
        let ids = vec!["?"; purge_batch as usize].join(", ");
        let log = LogStatements::new(n, own.user_id, own.notify, sql);
        let owner = (own.user_id)("s.user_id");
        let (lock_session, lock_token, lock_picked) =
            (own.lock_session, own.lock_token, own.lock_picked);
        Statements {
            insert_session: sql(format!(
                "INSERT INTO {s} (session_id, user_id, created_at, created_at_ms, last_rotated_at, \
                 expires_at, revoked_at, live_jti, live_expires_at, label) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            insert_token: sql(format!(
                "INSERT INTO {t} (jti, session_id, parent_jti, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)"
            )),
            ensure_cutoff: own.ensure_cutoff.map(sql),
            lock_cutoff: sql(own.lock_cutoff),
            // The cutoff is read, not locked: a revoke-all revokes the session
            // row itself, after this lock.
            lock_session: sql(format!(
                "SELECT {owner}, s.revoked_at, s.expires_at, s.live_jti, s.live_parent, \
                 s.live_expires_at, s.created_at_ms, \
                 (SELECT c.cutoff FROM {c} c WHERE c.user_id = s.user_id) \
                 FROM {s} s WHERE s.session_id = ?{lock_session}"
            )),
            read_token: sql(format!(
                "SELECT used_at, expires_at FROM {t} WHERE jti = ? AND session_id = ?{lock_token}"
            )),
            mark_used: sql(format!(
                "UPDATE {t} SET used_at = ?, successor_jti = ? \
                 WHERE jti = ? AND session_id = ? AND used_at IS NULL"
            )),
            move_live: sql(format!(
                "UPDATE {s} SET live_jti = ?, live_parent = ?, live_expires_at = ?, last_rotated_at = ? \
                 WHERE session_id = ? AND revoked_at IS NULL"
            )),
            revoke_session: sql(format!(
                "UPDATE {s} SET revoked_at = ? WHERE session_id = ? AND user_id = ? AND revoked_at IS NULL"
            )),
            upsert_cutoff: sql(own.upsert_cutoff),
            revoke_user: sql(format!(
                "UPDATE {s} SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL"
            )),
            read_revocation: sql(format!(
                "SELECT {owner}, s.revoked_at, s.created_at_ms, c.cutoff FROM {s} s \
                 LEFT JOIN {c} c ON c.user_id = s.user_id WHERE s.session_id = ?"
            )),
            list_sessions: sql(format!(
                "SELECT {owner}, s.revoked_at, s.expires_at, s.live_jti, s.live_parent, \
                 t.used_at, t.expires_at, s.session_id, s.created_at, s.last_rotated_at, s.label \
                 FROM {s} s LEFT JOIN {t} t ON t.jti = s.live_jti \
                 WHERE s.user_id = ? ORDER BY s.created_at, s.session_id"
            )),
            // state::session_purgeable: now >= expires_at.
            purge_pick_sessions: sql(format!(
                "SELECT session_id FROM {s} WHERE expires_at <= ? LIMIT ?{lock_picked}"
            )),
            purge_tokens_of: sql(format!("DELETE FROM {t} WHERE session_id IN ({ids})")),
            purge_sessions: sql(format!("DELETE FROM {s} WHERE session_id IN ({ids})")),
            purge_tokens: sql(own.purge_tokens),
            purge_cutoffs: sql(own.purge_cutoffs),
            create_versions: sql(format!(
                "CREATE TABLE IF NOT EXISTS {v} (version BIGINT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)"
            )),
            applied_versions: sql(format!("SELECT version FROM {v}")),
            table_exists: sql(own.table_exists.to_owned()),
            record_version: sql(format!(
                "INSERT INTO {v} (version, applied_at) VALUES (?, ?)"
            )),
            log,
        }
    }
}

/// `text` with its `?` placeholders numbered `$1`, `$2`, ... (the store's
/// statements hold no `?` anywhere else: identifiers were checked, and there
/// are no string literals in PostgreSQL's).
fn numbered(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut n = 0;
    for ch in text.chars() {
        if ch == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(ch);
        }
    }
    out
}

/// A bounded delete where `DELETE` takes no `LIMIT` (PostgreSQL, SQLite): the
/// unused tokens of `t` past their expiry,
/// [`state::token_purgeable`](crate::store::state::token_purgeable), at most
/// `limit` (`?` binds: now, limit).
#[cfg_attr(not(any(feature = "postgres", feature = "sqlite")), allow(dead_code))]
pub(crate) fn purge_tokens_by_subquery(t: &str) -> String {
    format!(
        "DELETE FROM {t} WHERE jti IN \
         (SELECT jti FROM {t} WHERE used_at IS NULL AND expires_at <= ? LIMIT ?)"
    )
}

/// A bounded delete where `DELETE` takes no `LIMIT` (PostgreSQL, SQLite): the
/// cutoffs of `c` [`state::cutoff_purgeable`](crate::store::state::cutoff_purgeable),
/// at most `limit` (`?` binds it), the condition checked again on each row
/// deleted (a revoke-all may have moved it meanwhile).
#[cfg_attr(not(any(feature = "postgres", feature = "sqlite")), allow(dead_code))]
pub(crate) fn purge_cutoffs_by_subquery(c: &str, s: &str) -> String {
    format!(
        "DELETE FROM {c} WHERE user_id IN \
         (SELECT p.user_id FROM {c} p WHERE {} LIMIT ?) AND {}",
        cutoff_purgeable("p", s),
        cutoff_purgeable(c, s)
    )
}

/// The condition on a cutoff row `c` (a table name or an alias) under which a
/// purge may delete it: [`state::cutoff_purgeable`](crate::store::state::cutoff_purgeable),
/// no stored session of its user was created before it.
pub(crate) fn cutoff_purgeable(c: &str, sessions: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM {sessions} s WHERE s.user_id = {c}.user_id \
         AND s.created_at_ms < {c}.cutoff)"
    )
}

#[cfg(test)]
impl Statements {
    /// Every statement.
    pub(crate) fn all(&self) -> Vec<&SqlStr> {
        let mut all = vec![
            &self.insert_session,
            &self.insert_token,
            &self.lock_cutoff,
            &self.lock_session,
            &self.read_token,
            &self.mark_used,
            &self.move_live,
            &self.revoke_session,
            &self.upsert_cutoff,
            &self.revoke_user,
            &self.read_revocation,
            &self.list_sessions,
            &self.purge_pick_sessions,
            &self.purge_tokens_of,
            &self.purge_sessions,
            &self.purge_tokens,
            &self.purge_cutoffs,
            &self.create_versions,
            &self.applied_versions,
            &self.table_exists,
            &self.record_version,
        ];
        all.extend(self.ensure_cutoff.as_ref());
        all
    }
}
