//! Decoding a token's base64url parts without a heap allocation when they fit
//! (a token's header and payload almost always do): into a buffer on the
//! caller's stack, and onto the heap only past its size.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::TokenError;

/// Room for one decoded part: `N` bytes inline, a heap buffer past that.
pub(crate) struct PartBuf<const N: usize> {
    inline: [u8; N],
    heap: Vec<u8>,
}

/// A decoded JOSE header: a few dozen bytes in practice.
pub(crate) type HeaderBuf = PartBuf<256>;
/// A decoded payload: a few hundred bytes in practice (the default size cap
/// allows more, which goes to the heap).
pub(crate) type PayloadBuf = PartBuf<1024>;

impl<const N: usize> PartBuf<N> {
    pub(crate) fn new() -> Self {
        PartBuf {
            inline: [0; N],
            heap: Vec::new(),
        }
    }

    /// Decodes canonical unpadded base64url `part` (the same rules and errors
    /// whichever buffer it goes to) and answers the bytes.
    pub(crate) fn decode(&mut self, part: &str) -> Result<&[u8], TokenError> {
        // The decoder asks for room for whole 3-byte groups.
        if part.len().div_ceil(4) * 3 <= N {
            let n = URL_SAFE_NO_PAD
                .decode_slice(part, &mut self.inline)
                .map_err(|_| TokenError::Base64)?;
            return self.inline.get(..n).ok_or(TokenError::Base64);
        }
        self.heap = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| TokenError::Base64)?;
        Ok(&self.heap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inline and heap decoding agree on every length around the inline size,
    /// and refuse the same non-canonical input.
    #[test]
    fn inline_and_heap_decode_alike() {
        for len in 0..80 {
            let bytes: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
            let part = URL_SAFE_NO_PAD.encode(&bytes);
            let mut small = PartBuf::<16>::new();
            let mut big = PartBuf::<128>::new();
            assert_eq!(small.decode(&part).unwrap(), bytes);
            assert_eq!(big.decode(&part).unwrap(), bytes);
        }
        for bad in ["QR", "QUJ", "A", "QQ==", "Q+", "Q/"] {
            assert_eq!(PartBuf::<16>::new().decode(bad), Err(TokenError::Base64));
            assert_eq!(PartBuf::<1>::new().decode(bad), Err(TokenError::Base64));
        }
    }
}
