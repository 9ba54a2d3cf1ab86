//! The ring position of a key.
//!
//! xxh3 of the key bytes: stable across processes, machines and releases (never `ahash` or
//! std's hasher, which are seeded per process). A golden-vector test pins it.

use twox_hash::XxHash3_64;

/// The 64-bit ring token of a key.
pub fn key_token(key: &[u8]) -> u64 {
    XxHash3_64::oneshot(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_of_the_empty_key_matches_the_xxh3_reference_vector() {
        assert_eq!(key_token(b""), 0x2d06_8005_38d3_94c2);
    }
}
