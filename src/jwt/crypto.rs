//! Picks jsonwebtoken's crypto provider explicitly.
//!
//! jsonwebtoken infers its provider from its own features and panics on first use
//! when both or neither are on. Features are additive (`--all-features`, or another
//! crate enabling the other backend), so the provider is installed here, before any
//! key is built: aws-lc-rs when compiled in, RustCrypto otherwise.

use jsonwebtoken::crypto::CryptoProvider;

use crate::error::ConfigError;

pub(crate) fn ensure_provider() -> Result<(), ConfigError> {
    #[cfg(feature = "aws-lc-rs")]
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
    // Installing fails harmlessly when the application installed one first; what
    // matters is that a provider is now in place.
    CryptoProvider::try_get_default()
        .map(|_| ())
        .ok_or(ConfigError::NoCryptoBackend)
}
