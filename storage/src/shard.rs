//! How both engines split the ring into shards: by the top [`SHARD_BITS`] bits of a key's
//! token, so that a shard is a range of the ring.
//!
//! One rule for both because what rests on it is shared: a `SCAN` cursor is the token where
//! the next shard starts, `Store::visit_spans` visits only the shards a span covers, and the
//! tests of the `Store` trait run the same spans against both engines. The log keydir's
//! entry tag (`log::keydir`) keeps the token bits below the shard's, derived from
//! [`SHARD_BITS`]; nothing on disk depends on the shard count.

/// log2 of the number of shards.
pub(crate) const SHARD_BITS: u32 = 12;
/// Number of shards; shard `i` holds the tokens whose top [`SHARD_BITS`] bits are `i`.
pub(crate) const SHARDS: usize = 1 << SHARD_BITS;

/// The shard holding `token`: its top [`SHARD_BITS`] bits.
pub(crate) fn shard_of(token: u64) -> usize {
    (token >> (64 - SHARD_BITS)) as usize
}

/// The first token of shard `index`: the cursor that resumes a walk there.
pub(crate) fn shard_start(index: usize) -> u64 {
    (index as u64) << (64 - SHARD_BITS)
}
