//! How a refresh or renewal ends, for the caller and for the metrics.

use crate::error::{AuthError, StoreError};
use crate::metrics::{self, Rotation};

/// A refresh or renewal that failed, and how it counts in the metrics.
pub(crate) struct Failed {
    pub(crate) outcome: Rotation,
    pub(crate) error: AuthError,
}

impl Failed {
    pub(crate) fn new(outcome: Rotation, error: impl Into<AuthError>) -> Self {
        Failed {
            outcome,
            error: error.into(),
        }
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed::new(Rotation::StoreUnavailable, e)
    }
}

/// Counts the outcome of a rotation-shaped call and hands back its result.
pub(crate) fn counted<T>(r: Result<(T, Rotation), Failed>) -> Result<T, AuthError> {
    match r {
        Ok((v, outcome)) => {
            metrics::rotation(outcome);
            Ok(v)
        }
        Err(f) => {
            metrics::rotation(f.outcome);
            Err(f.error)
        }
    }
}

pub(crate) fn issue_failed<E>(_: E) -> Failed {
    Failed::new(
        Rotation::IssueFailed,
        AuthError::InvalidRequest("the custom claims cannot be put into a token"),
    )
}
