//! The records in Redis, read into Rust: the key names under a prefix, the
//! fields of a session hash, and their parsing into [`SessionState`],
//! [`TokenState`], [`SessionCheck`] and [`SessionInfo`].
//!
//! A session hash `P:s:{session}` has these fields (the Lua scripts write them):
//!
//! | field | what |
//! | --- | --- |
//! | `user` | the user id value |
//! | `rev` | `1` once revoked, else `0`; `rat`: when |
//! | `exp` | the absolute expiry |
//! | `live`, `par` | the live token's `jti`, and the `jti` it replaced (absent before the first rotation) |
//! | `lexp` | the live token's expiry (removed when a purge removes the live token) |
//! | `v` | the version, raised by every write a rotation must not miss |
//! | `cr`, `rot` | when the session was created, and last rotated |
//! | `lbl` | the label, if any |
//! | `t:{jti}` | one refresh token: `{expires_at}` while unused, `{expires_at}:{used_at}` after |

use uuid::Uuid;

use super::EXPIRY_MARGIN_SECS;
use crate::error::StoreError;
use crate::store::SessionInfo;
use crate::store::rotation::{SessionState, TokenState};
use crate::store::state::SessionCheck;

/// The key names under one prefix.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys under `prefix`: 1 to 128 bytes, without whitespace, control
    /// characters or the glob characters `* ? [ ] \` (the purge `SCAN`s a pattern).
    pub(super) fn new(prefix: &str) -> Result<Self, StoreError> {
        if prefix.is_empty()
            || prefix.len() > 128
            || prefix.chars().any(|c| {
                c.is_whitespace() || c.is_control() || matches!(c, '*' | '?' | '[' | ']' | '\\')
            })
        {
            return Err(StoreError::new("invalid Redis key prefix"));
        }
        Ok(Keys {
            prefix: prefix.to_owned(),
        })
    }

    /// The prefix.
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A session's hash.
    pub(super) fn session(&self, id: Uuid) -> String {
        format!("{}:s:{}", self.prefix, id.as_hyphenated())
    }

    /// A user's set of session ids.
    pub(super) fn user(&self, user: &str) -> String {
        format!("{}:u:{user}", self.prefix)
    }

    /// A user's revocation cutoff.
    pub(super) fn cutoff(&self, user: &str) -> String {
        format!("{}:cut:{user}", self.prefix)
    }

    /// The `SCAN` pattern of the session keys. It matches more: see
    /// [`Keys::session_id_in`].
    pub(super) fn session_pattern(&self) -> String {
        format!("{}:s:*", self.prefix)
    }

    /// The session id in `key` when it is one of this prefix's session keys, not
    /// a key of another prefix that starts with this one plus `:s:`.
    pub(super) fn session_id_in<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.prefix.as_str())?
            .strip_prefix(":s:")
            .filter(|id| id.len() == 36 && Uuid::parse_str(id).is_ok())
    }
}

/// When Redis deletes the keys of a session that ends at `expires_at`.
pub(super) fn expire_at(expires_at: u64) -> u64 {
    expires_at.saturating_add(EXPIRY_MARGIN_SECS)
}

/// A token's field name in its session's hash.
pub(super) fn token_field(jti: Uuid) -> String {
    format!("t:{}", jti.as_hyphenated())
}

/// The fields rotation reads, in this order, followed by the token's field.
pub(super) const SNAPSHOT_FIELDS: [&str; 6] = ["user", "rev", "exp", "live", "par", "v"];

/// The fields the revocation check reads, in this order.
pub(super) const CHECK_FIELDS: [&str; 2] = ["user", "rev"];

/// The fields the session list reads, in this order.
pub(super) const LISTED_FIELDS: [&str; 9] = [
    "user", "rev", "exp", "live", "par", "lexp", "cr", "rot", "lbl",
];

/// What a rotation reads, in one `HMGET`.
pub(super) struct Snapshot {
    /// The session, `None` when Redis has no record of it.
    pub(super) session: Option<SessionState>,
    /// The presented token, `None` when the session has no record of it.
    pub(super) token: Option<TokenState>,
    /// The session's version (empty when there is no session).
    pub(super) version: String,
}

/// Reads the reply to `HMGET` of [`SNAPSHOT_FIELDS`] and the token's field.
pub(super) fn snapshot(reply: Vec<Option<String>>) -> Result<Snapshot, StoreError> {
    let [user, rev, exp, live, par, version, token] =
        <[Option<String>; 7]>::try_from(reply).map_err(|_| corrupt())?;
    let Some(session) = session_state(user, rev, exp, live, par)? else {
        return Ok(Snapshot {
            session: None,
            token: None,
            version: String::new(),
        });
    };
    let token = token.as_deref().map(parse_token).transpose()?;
    Ok(Snapshot {
        session: Some(session),
        token,
        version: version.ok_or_else(corrupt)?,
    })
}

/// Reads the reply to `HMGET` of [`CHECK_FIELDS`]: `None` when there is no session.
pub(super) fn session_check(reply: &[Option<String>]) -> Option<SessionCheck<'_>> {
    match reply {
        [Some(user), rev] => Some(SessionCheck {
            user_id: user,
            revoked: is_set(rev.as_deref()),
        }),
        _ => None,
    }
}

/// A session as the session list reads it.
pub(super) struct Listed {
    /// Its state.
    pub(super) state: SessionState,
    /// Its live token, if it has one.
    pub(super) live: Option<TokenState>,
    /// What the list shows of it.
    pub(super) info: SessionInfo,
}

/// Reads the reply to `HMGET` of [`LISTED_FIELDS`] for session `id`: `None` when
/// there is no session.
pub(super) fn listed(id: Uuid, reply: Vec<Option<String>>) -> Result<Option<Listed>, StoreError> {
    let [user, rev, exp, live, par, lexp, cr, rot, lbl] =
        <[Option<String>; 9]>::try_from(reply).map_err(|_| corrupt())?;
    let Some(state) = session_state(user, rev, exp, live, par)? else {
        return Ok(None);
    };
    // The live token is never used: the script that marks it used moves `live`
    // on in the same step. So its expiry, kept in `lexp`, is all of it the list
    // needs.
    let live = parse_opt_u64(lexp.as_deref())?.map(|e| TokenState::new(None, e));
    let info = SessionInfo::new(
        id,
        state.user_id.clone(),
        parse_u64(cr.as_deref())?,
        state.expires_at,
    )
    .with_last_rotated_at(parse_u64(rot.as_deref())?)
    .with_label(lbl);
    Ok(Some(Listed { state, live, info }))
}

/// A session's state from its fields: `None` when it has no user (no session).
fn session_state(
    user: Option<String>,
    rev: Option<String>,
    exp: Option<String>,
    live: Option<String>,
    par: Option<String>,
) -> Result<Option<SessionState>, StoreError> {
    let Some(user_id) = user else {
        return Ok(None);
    };
    Ok(Some(SessionState::new(
        user_id,
        is_set(rev.as_deref()),
        parse_u64(exp.as_deref())?,
        parse_uuid(live.as_deref())?,
        parse_uuid(par.as_deref())?,
    )))
}

/// A record Redis holds but this store did not write.
pub(super) fn corrupt() -> StoreError {
    StoreError::new("a Redis session record is malformed")
}

/// A flag field (`rev`): set when `1`.
fn is_set(v: Option<&str>) -> bool {
    v == Some("1")
}

/// A number that must be there.
fn parse_u64(v: Option<&str>) -> Result<u64, StoreError> {
    v.and_then(|s| s.parse().ok()).ok_or_else(corrupt)
}

/// A number that may be absent (a cutoff, a live token's expiry).
pub(super) fn parse_opt_u64(v: Option<&str>) -> Result<Option<u64>, StoreError> {
    v.map(|s| parse_u64(Some(s))).transpose()
}

/// A `jti` that may be absent.
fn parse_uuid(v: Option<&str>) -> Result<Option<Uuid>, StoreError> {
    v.map(|s| Uuid::parse_str(s).map_err(|_| corrupt()))
        .transpose()
}

/// A token field: `"{expires_at}"` while unused, `"{expires_at}:{used_at}"` after.
fn parse_token(v: &str) -> Result<TokenState, StoreError> {
    let (exp, used) = match v.split_once(':') {
        Some((e, u)) => (e, Some(u)),
        None => (v, None),
    };
    Ok(TokenState::new(
        used.map(|u| u.parse().map_err(|_| corrupt())).transpose()?,
        exp.parse().map_err(|_| corrupt())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_fields() {
        assert_eq!(parse_token("100").unwrap(), TokenState::new(None, 100));
        assert_eq!(parse_token("100:7").unwrap(), TokenState::new(Some(7), 100));
        assert!(parse_token("x").is_err());
        assert!(parse_token("1:").is_err());
    }

    #[test]
    fn prefixes() {
        assert!(Keys::new("app:auth").is_ok());
        for bad in ["", "a b", "a*", "a?", "a[b]", "a\\b", &"x".repeat(129)] {
            assert!(Keys::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn session_keys() {
        let keys = Keys::new("app").unwrap();
        let id = Uuid::new_v4();
        let key = keys.session(id);
        assert_eq!(
            keys.session_id_in(&key),
            Some(&*id.as_hyphenated().to_string())
        );
        assert_eq!(keys.session_id_in(&format!("{key}:x")), None);
        assert_eq!(keys.session_id_in(&format!("app:s:x{key}")), None);
        assert_eq!(Keys::new("ap").unwrap().session_id_in(&key), None);
    }
}
