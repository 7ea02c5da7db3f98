//! Starting a session for a user the app has authenticated.

use crate::error::AuthError;
use crate::events::EventKind;
use crate::jwt::TokenPair;
use crate::metrics::{self, StoreOp};
use crate::store::{NewSession, new_store_id};
use crate::user::UserResolver;

use super::{CustomClaims, Sessions};

impl<R: UserResolver, C: CustomClaims> Sessions<R, C> {
    /// Starts a session for a user the app has authenticated (password checked):
    /// mints the pair, records the session in the store, and answers the pair.
    /// `label` is shown in session lists ([`Sessions::list_sessions`]).
    pub async fn login(
        &self,
        user_id: &R::Id,
        custom: &C,
        label: Option<String>,
    ) -> Result<TokenPair, AuthError> {
        let user_id = user_id.to_string();
        let now_ms = self.jwt.clock().now_millis();
        let now = now_ms / 1000;
        let s = self.jwt.settings();
        let session = NewSession::new(
            new_store_id(),
            user_id,
            new_store_id(),
            now,
            now + s.refresh_ttl.min(s.session_max_age),
            now + s.session_max_age,
        )
        .with_created_at_ms(now_ms)
        .with_label(label);
        // Minted first: claims that cannot go into a token leave no session behind.
        let pair = self
            .jwt
            .pair(
                &session.user_id,
                (session.session_id, session.jti),
                session.token_expires_at,
                session.session_expires_at,
                custom,
            )
            .map_err(|_| {
                AuthError::InvalidRequest("the custom claims cannot be put into a token")
            })?;
        metrics::timed(StoreOp::CreateSession, self.store.create_session(&session)).await?;
        self.emit(
            EventKind::PairIssued,
            &session.user_id,
            Some(session.session_id),
        );
        Ok(pair)
    }
}
