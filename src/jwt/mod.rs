//! The token format: keys and their JWKS, claims, issuing and validating
//! tokens. Everything here is stateless; sessions and stores build on it.
//!
//! | file | what it holds |
//! | --- | --- |
//! | `builder.rs` | [`JwtBuilder`] and the settings it checks |
//! | `handle.rs` | [`Jwt`], the cheaply cloned handle, and key changes at run time |
//! | `keys.rs` | [`Key`]: one `kid`, one pinned algorithm; the key set; JWKS |
//! | `claims.rs` | [`Claims`], [`TokenKind`], [`NoCustomClaims`] |
//! | `issue.rs` | minting tokens, [`TokenPair`] |
//! | `validate.rs` | the claim rules (times, issuer, audience, typing) |
//! | `b64.rs` | decoding a token's parts, on the stack when they fit |
//! | `jws.rs` | the JWS compact form, read strictly; [`verify_signature`] |
//! | `json.rs` | the token's JSON objects: borrowed keys, no duplicates |
//! | `payload.rs` | the claims validation reads, one `Claim` at a time |
//! | `one_pass.rs` | those claims and the app's own in one pass over the payload |
//! | `prepared.rs` | verification keys prepared once per key (aws-lc-rs) |
//! | `crypto.rs` | picking jsonwebtoken's crypto provider |

mod b64;
mod builder;
mod claims;
pub(crate) mod crypto;
mod handle;
mod issue;
mod json;
pub(crate) mod jws;
mod keys;
mod one_pass;
mod payload;
mod prepared;
mod sec1;
pub(crate) mod validate;

pub(crate) use b64::PayloadBuf;
pub use builder::JwtBuilder;
pub use claims::{Claims, NoCustomClaims, TokenKind};
pub(crate) use claims::{OutsideClaims, custom_claims, shared_audience, shared_issuer};
pub use handle::Jwt;
pub(crate) use issue::Mint;
pub use issue::{IssueError, TokenPair};
pub(crate) use json::KeyStr;
pub use jws::verify_signature;
pub use keys::Key;
pub(crate) use keys::KeySet;
pub(crate) use one_pass::read_payload;
