//! The revocation log's contract ([`RevocationLog`]), for every store that
//! keeps one: [`revocation_log_conformance`] runs each rule on a fresh store.

use std::sync::Arc;

use uuid::Uuid;

use crate::store::log::{Revocation, RevocationLog, Revoked};
use crate::store::{NewSession, TokenStore};

/// Runs the revocation log's rules on `store`, fresh and empty:
///
/// - every revocation is logged once, in order: a logout (not a second
///   logout of the same session), a revoke-all with its cutoff;
/// - an entry carries what it revokes and until when it matters (the
///   session's expiry; the revoke-all's at least the user's last session's);
/// - `revocations_after(seq)` is the log after `seq`, at most `limit` entries;
/// - a purge removes the entries that stopped mattering, never the newest.
///
/// Panics on the first rule broken.
pub async fn revocation_log_conformance<S: TokenStore + RevocationLog>(store: Arc<S>) {
    let now = 1_800_000_000u64;
    let session = |user: &str, expires_at: u64| {
        NewSession::new(
            Uuid::now_v7(),
            user,
            Uuid::now_v7(),
            now,
            now + 600,
            expires_at,
        )
    };
    assert!(
        store.revocations_after(0, 100).await.unwrap().is_empty(),
        "a fresh log is empty"
    );

    let short = session("ada", now + 3_600);
    let long = session("ada", now + 86_400);
    let other = session("bob", now + 7_200);
    for s in [&short, &long, &other] {
        store.create_session(s).await.unwrap();
    }
    assert!(
        store
            .revoke_session(short.session_id, &short.user_id, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_session(short.session_id, &short.user_id, now + 1)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_session(Uuid::now_v7(), "ada", now)
            .await
            .unwrap(),
        "an unknown session"
    );
    assert!(
        store
            .revoke_session(other.session_id, &other.user_id, now)
            .await
            .unwrap()
    );
    store.revoke_user("ada", now * 1000 + 5).await.unwrap();

    let log = store.revocations_after(0, 100).await.unwrap();
    check_entries(&log, &short, &other, now);

    let first = log[0].seq;
    let after = store.revocations_after(first, 100).await.unwrap();
    assert_eq!(after.len(), log.len() - 1, "after the first entry");
    assert!(after.iter().all(|e| e.seq > first));
    assert_eq!(
        store.revocations_after(0, 1).await.unwrap().len(),
        1,
        "the limit"
    );

    // Past every expiry, a purge leaves the newest entry only.
    store.purge_expired(now + 400 * 86_400).await.unwrap();
    let left = store.revocations_after(0, 100).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].seq, log.last().unwrap().seq);
    // And new entries come after it.
    let late = session("cy", now + 400 * 86_400 + 600);
    store.create_session(&late).await.unwrap();
    store
        .revoke_session(late.session_id, &late.user_id, now)
        .await
        .unwrap();
    let newest = store.revocations_after(left[0].seq, 100).await.unwrap();
    assert_eq!(newest.len(), 1, "{newest:?}");
}

/// The entries of the log after two logouts (`short`, `other`) and ada's revoke-all.
fn check_entries(log: &[Revocation], short: &NewSession, other: &NewSession, now: u64) {
    assert!(
        log.windows(2).all(|w| w[0].seq < w[1].seq),
        "in sequence order: {log:?}"
    );
    let sessions: Vec<(Uuid, u64)> = log
        .iter()
        .filter_map(|e| match &e.revoked {
            Revoked::Session {
                session_id,
                expires_at,
            } => Some((*session_id, *expires_at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sessions,
        [
            (short.session_id, now + 3_600),
            (other.session_id, now + 7_200)
        ],
        "each revoked session once, with its expiry, in order"
    );
    let cutoffs: Vec<(&str, u64, u64)> = log
        .iter()
        .filter_map(|e| match &e.revoked {
            Revoked::User {
                user_id,
                cutoff_ms,
                expires_at,
            } => Some((user_id.as_str(), *cutoff_ms, *expires_at)),
            _ => None,
        })
        .collect();
    assert_eq!(cutoffs.len(), 1, "{log:?}");
    assert_eq!((cutoffs[0].0, cutoffs[0].1), ("ada", now * 1000 + 5));
    assert!(
        cutoffs[0].2 >= now + 86_400,
        "a revoke-all matters as long as the user's last session: {}",
        cutoffs[0].2
    );
    assert!(matches!(log.last().unwrap().revoked, Revoked::User { .. }));
}
