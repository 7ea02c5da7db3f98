//! Resource-server mode: access tokens from outside identity providers.
//!
//! A [`TrustedIssuer`] is one provider (Auth0, Okta, Keycloak, Entra ID,
//! Zitadel, Ory, a company's own OpenID Provider): its `iss`, the audiences
//! its tokens must carry, the algorithms, the leeway, the claim that names the
//! user, where roles are, and where its keys come from (static keys, a JWKS
//! URL, or OpenID Connect discovery; the last two with the `remote-keys`
//! feature). [`JwtAuthLayer::trust`](crate::JwtAuthLayer::trust) adds issuers
//! to a layer, which then accepts the app's own tokens and theirs; a token's
//! `iss` picks the rules that judge it before any signature work.
//!
//! | file | what it holds |
//! | --- | --- |
//! | `issuer.rs` | [`TrustedIssuer`], its builder, the rules it holds |
//! | `validate.rs` | judging a token by its issuer's rules |
//! | `policy.rs` | fetch limits, refresh intervals, `Cache-Control` |
//! | `remote.rs` | the remote keys' cache: lock-free reads, single-flight, rate-limited fetches, bounded staleness |
//! | `fetch.rs` | HTTPS fetches with a timeout, a size cap and same-origin redirects |
//! | `jwks.rs` | a JWKS read into keys, each pinned to one algorithm |

#[cfg(feature = "remote-keys")]
mod fetch;
mod issuer;
#[cfg(feature = "remote-keys")]
mod jwks;
mod policy;
#[cfg(feature = "remote-keys")]
mod remote;
mod roles;
mod validate;

pub use issuer::{KeysUnavailable, TrustedIssuer, TrustedIssuerBuilder};
pub(crate) use validate::Judged;
