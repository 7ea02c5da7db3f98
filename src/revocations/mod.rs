//! Instant logout without a store round trip per request: a [`RevocationView`]
//! in every instance holds the revoked-but-unexpired sessions and the users'
//! revoke-all cutoffs in memory, fed by the store's revocation log
//! ([`RevocationLog`](crate::store::RevocationLog)), and answers the layer's
//! revocation check with no I/O.
//!
//! | file | what it holds |
//! | --- | --- |
//! | `view.rs` | [`RevocationView`]: the sets, the check, how fresh the view is |
//! | `follow.rs` | the task that loads the log, then follows it in order (gaps waited for) |

mod follow;
mod view;

pub use view::{RevocationView, RevocationViewBuilder, ViewAnswer};
