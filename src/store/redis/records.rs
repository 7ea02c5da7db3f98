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
//! | `cr`, `rot` | when the session was created, and last rotated (seconds) |
//! | `crm` | when the session was created, in milliseconds: what the user's revoke-all cutoff is compared with (absent in sessions written before it existed: `cr` × 1000) |
//! | `lbl` | the label, if any |
//! | `t:{jti}` | one refresh token: `{expires_at}` while unused, `{expires_at}:{used_at}` after |

use uuid::Uuid;

use super::EXPIRY_MARGIN_SECS;
use crate::error::StoreError;
use crate::store::SessionInfo;
use crate::store::rotation::{SessionState, TokenState};
use crate::store::state::SessionCheck;

/// The key names under one prefix. Every key of one user carries the same
/// hash tag, `{T}` with `T` = [`user_tag`], so on a Redis Cluster a user's
/// sessions, session set and cutoff share one slot and each script touches
/// keys of one slot only.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys under `prefix`: 1 to 128 bytes, without whitespace, control
    /// characters, the glob characters `* ? [ ] \` (the purge `SCAN`s a
    /// pattern) or braces (a cluster hash tag is the store's to set).
    pub(super) fn new(prefix: &str) -> Result<Self, StoreError> {
        if prefix.is_empty()
            || prefix.len() > 128
            || prefix.chars().any(|c| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(c, '*' | '?' | '[' | ']' | '\\' | '{' | '}')
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

    /// A session's hash (its user's tag).
    pub(super) fn session(&self, user: &str, id: Uuid) -> String {
        format!(
            "{}:{{{}}}:s:{}",
            self.prefix,
            user_tag(user),
            id.as_hyphenated()
        )
    }

    /// A user's set of session ids.
    pub(super) fn user(&self, user: &str) -> String {
        format!("{}:{{{}}}:u:{user}", self.prefix, user_tag(user))
    }

    /// A user's revocation cutoff.
    pub(super) fn cutoff(&self, user: &str) -> String {
        format!("{}:{{{}}}:cut:{user}", self.prefix, user_tag(user))
    }

    /// The revocation log: a stream, one entry per revocation (one key, so
    /// one slot on a cluster).
    pub(super) fn revocations(&self) -> String {
        format!("{}:rev", self.prefix)
    }

    /// The `SCAN` pattern of the user set keys (`kind` `u`) or the cutoff keys
    /// (`cut`). It matches more: see [`Keys::user_in`].
    pub(super) fn pattern(&self, kind: &str) -> String {
        format!("{}:{{*}}:{kind}:*", self.prefix)
    }

    /// The user whose user set (`kind` `u`) or cutoff (`cut`) `key` is, when
    /// it is one of this prefix's: its tag must be the user's. A key of another
    /// prefix that starts with this one cannot be told apart from one of a user
    /// whose id matches: keeping prefixes apart is the app's part (see
    /// [`RedisStoreBuilder::key_prefix`]).
    ///
    /// [`RedisStoreBuilder::key_prefix`]: super::RedisStoreBuilder::key_prefix
    pub(super) fn user_in<'k>(&self, key: &'k str, kind: &str) -> Option<&'k str> {
        let rest = key.strip_prefix(self.prefix.as_str())?.strip_prefix(":{")?;
        let (tag, rest) = rest.split_once("}:")?;
        let user = rest.strip_prefix(kind)?.strip_prefix(':')?;
        (tag == user_tag(user)).then_some(user)
    }
}

/// A user's hash tag: 16 hex digits of the FNV-1a hash of the user id, so any
/// id (empty, with braces, long) makes a tag of the same shape. Two users with
/// one tag only share a slot: every key still names its user.
pub(super) fn user_tag(user: &str) -> String {
    let hash = user.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// When Redis deletes the keys of a session that ends at `expires_at`.
pub(super) fn expire_at(expires_at: u64) -> u64 {
    expires_at.saturating_add(EXPIRY_MARGIN_SECS)
}

/// A token's field name in its session's hash.
pub(super) fn token_field(jti: Uuid) -> String {
    format!("t:{}", jti.as_hyphenated())
}

/// The fields every read of a session's state takes, first and in this order
/// (see [`session_state`]).
const SESSION_FIELDS: [&str; 8] = ["user", "rev", "exp", "live", "par", "lexp", "cr", "crm"];

/// The fields the revocation check reads, in this order.
pub(super) const CHECK_FIELDS: [&str; 4] = ["user", "rev", "cr", "crm"];

/// The `HMGET` arguments of a rotation's read of session `key`: the session's
/// state, its version, then the presented token's field.
pub(super) fn snapshot_args(key: &str, jti: Uuid) -> ::redis::Cmd {
    let mut cmd = ::redis::cmd("HMGET");
    cmd.arg(key)
        .arg(&SESSION_FIELDS)
        .arg("v")
        .arg(token_field(jti));
    cmd
}

/// The `HMGET` arguments of the session list's read of session `key`.
pub(super) fn listed_args(key: &str) -> ::redis::Cmd {
    let mut cmd = ::redis::cmd("HMGET");
    cmd.arg(key).arg(&SESSION_FIELDS).arg(&["rot", "lbl"]);
    cmd
}

/// What a rotation reads, in one round trip.
pub(super) struct Snapshot {
    /// The session, `None` when Redis has no record of it; its
    /// `user_cutoff_ms` is the cutoff read with it.
    pub(super) session: Option<SessionState>,
    /// The presented token, `None` when the session has no record of it.
    pub(super) token: Option<TokenState>,
    /// The session's version (empty when there is no session).
    pub(super) version: String,
    /// The user's cutoff as read (empty when there is none): the script that
    /// applies the decision checks it is still this.
    pub(super) cutoff: String,
}

/// Reads the reply to [`snapshot_args`], and the user's cutoff read with it.
pub(super) fn snapshot(
    reply: Vec<Option<String>>,
    cutoff: Option<String>,
) -> Result<Snapshot, StoreError> {
    let [.., version, token] = with_tail(&reply, 2)? else {
        return Err(corrupt());
    };
    let cutoff_ms = parse_opt_u64(cutoff.as_deref())?;
    let Some(session) = session_state(&reply)? else {
        return Ok(Snapshot {
            session: None,
            token: None,
            version: String::new(),
            cutoff: String::new(),
        });
    };
    let token = token.as_deref().map(parse_token).transpose()?;
    Ok(Snapshot {
        session: Some(session.with_user_cutoff_ms(cutoff_ms)),
        token,
        version: version.clone().ok_or_else(corrupt)?,
        cutoff: cutoff.unwrap_or_default(),
    })
}

/// Reads the reply to `HMGET` of [`CHECK_FIELDS`]: `None` when there is no session.
pub(super) fn session_check(
    reply: &[Option<String>],
) -> Result<Option<SessionCheck<'_>>, StoreError> {
    match reply {
        [Some(user), rev, cr, crm] => Ok(Some(SessionCheck {
            user_id: user,
            revoked: is_set(rev.as_deref()),
            created_at_ms: created_at_ms(cr.as_deref(), crm.as_deref())?,
        })),
        [None, ..] => Ok(None),
        _ => Err(corrupt()),
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

/// Reads the reply to [`listed_args`] for session `id`: `None` when there is
/// no session.
pub(super) fn listed(id: Uuid, reply: Vec<Option<String>>) -> Result<Option<Listed>, StoreError> {
    let [.., cr, _, rot, lbl] = with_tail(&reply, 2)? else {
        return Err(corrupt());
    };
    let Some(state) = session_state(&reply)? else {
        return Ok(None);
    };
    // The live token is never used: the script that marks it used moves `live`
    // on in the same step. So its expiry, kept in `lexp`, is all of it the list
    // needs.
    let live = state.live_expires_at.map(|e| TokenState::new(None, e));
    let created_at = parse_u64(cr.as_deref())?;
    let info = SessionInfo::new(id, state.user_id.clone(), created_at, state.expires_at)
        .with_last_rotated_at(parse_u64(rot.as_deref())?)
        .with_label(lbl.clone());
    Ok(Some(Listed { state, live, info }))
}

/// `reply`, checked to hold the values of [`SESSION_FIELDS`] and `n` more.
fn with_tail(reply: &[Option<String>], n: usize) -> Result<&[Option<String>], StoreError> {
    if reply.len() == SESSION_FIELDS.len() + n {
        Ok(reply)
    } else {
        Err(corrupt())
    }
}

/// A session's state from the values of [`SESSION_FIELDS`] that start `reply`:
/// `None` when it has no user (no session).
fn session_state(reply: &[Option<String>]) -> Result<Option<SessionState>, StoreError> {
    let [user, rev, exp, live, par, lexp, cr, crm, ..] = reply else {
        return Err(corrupt());
    };
    let Some(user_id) = user else {
        return Ok(None);
    };
    Ok(Some(
        SessionState::new(
            user_id.clone(),
            is_set(rev.as_deref()),
            parse_u64(exp.as_deref())?,
            parse_uuid(live.as_deref())?,
            parse_uuid(par.as_deref())?,
        )
        .with_live_expires_at(parse_opt_u64(lexp.as_deref())?)
        .with_created_at_ms(created_at_ms(cr.as_deref(), crm.as_deref())?),
    ))
}

/// When a session was created, in milliseconds: `crm`, or for a session
/// written before `crm` existed, `cr` (seconds) × 1000.
fn created_at_ms(cr: Option<&str>, crm: Option<&str>) -> Result<u64, StoreError> {
    match crm {
        Some(ms) => parse_u64(Some(ms)),
        None => Ok(parse_u64(cr)?.saturating_mul(1000)),
    }
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
    fn creation_time_in_milliseconds() {
        assert_eq!(created_at_ms(Some("7"), Some("7250")).unwrap(), 7250);
        // A record written before `crm` existed.
        assert_eq!(created_at_ms(Some("7"), None).unwrap(), 7000);
        assert!(created_at_ms(None, None).is_err());
        let some = |v: &str| Some(v.to_owned());
        let row = [some("u"), some("0"), some("7"), None];
        let check = session_check(&row).unwrap().unwrap();
        assert_eq!(
            (check.user_id, check.revoked, check.created_at_ms),
            ("u", false, 7000)
        );
        assert!(session_check(&[None, None, None, None]).unwrap().is_none());
        assert!(session_check(&[some("u")]).is_err());
    }

    #[test]
    fn snapshots() {
        let some = |v: &str| Some(v.to_owned());
        let (live, par) = (Uuid::new_v4(), Uuid::new_v4());
        let mut row = vec![
            some("u"),
            some("0"),
            some("100"),
            some(&live.to_string()),
            some(&par.to_string()),
            some("90"),
            some("5"),
            some("5500"),
            some("3"),
            some("50:20"),
        ];
        let snap = snapshot(row.clone(), some("6000")).unwrap();
        let session = snap.session.unwrap();
        assert_eq!(session.live_jti, Some(live));
        assert_eq!(session.live_parent, Some(par));
        assert_eq!(session.live_expires_at, Some(90));
        assert_eq!(session.created_at_ms, 5500);
        assert_eq!(session.user_cutoff_ms, Some(6000));
        assert_eq!(snap.token, Some(TokenState::new(Some(20), 50)));
        assert_eq!((snap.version.as_str(), snap.cutoff.as_str()), ("3", "6000"));
        row.pop();
        assert!(snapshot(row, None).is_err());
    }

    #[test]
    fn prefixes() {
        assert!(Keys::new("app:auth").is_ok());
        for bad in [
            "",
            "a b",
            "a*",
            "a?",
            "a[b]",
            "a\\b",
            "a{b",
            "a}",
            &"x".repeat(129),
        ] {
            assert!(Keys::new(bad).is_err(), "{bad:?}");
        }
    }

    /// The hash-tag rule of Redis Cluster: the first `{`, the first `}` after
    /// it, non-empty between.
    fn hash_tag(key: &str) -> &str {
        let Some(open) = key.find('{') else {
            return key;
        };
        match key[open + 1..].find('}') {
            Some(0) | None => key,
            Some(len) => &key[open + 1..open + 1 + len],
        }
    }

    #[test]
    fn a_users_keys_share_one_tag() {
        let keys = Keys::new("app").unwrap();
        for user in ["a:b", "", "}{", "{x}", "ü", &"u".repeat(300)] {
            let tag = hash_tag(&keys.user(user)).to_owned();
            assert_eq!(tag.len(), 16, "{user:?}");
            assert_eq!(hash_tag(&keys.cutoff(user)), tag);
            assert_eq!(hash_tag(&keys.session(user, Uuid::new_v4())), tag);
            assert_eq!(keys.user_in(&keys.user(user), "u"), Some(user));
            assert_eq!(keys.user_in(&keys.cutoff(user), "cut"), Some(user));
            assert_eq!(keys.user_in(&keys.user(user), "cut"), None);
        }
        assert_ne!(user_tag("a"), user_tag("b"));
        let forged = keys.user("a").replace(&user_tag("a"), &user_tag("b"));
        assert_eq!(keys.user_in(&forged, "u"), None);
        assert_eq!(Keys::new("ap").unwrap().user_in(&keys.user("a"), "u"), None);
    }
}
