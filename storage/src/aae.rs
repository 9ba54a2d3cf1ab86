//! Active anti-entropy state kept by every engine: Merkle leaves over the token ring, and the
//! per-range horizons before which tombstones may be dropped.
//!
//! The leaves are Riak's Tictac idea: a leaf is the XOR of a digest of every record whose
//! token falls in it, so a write changes its leaf by `old digest ^ new digest` with no rescan
//! and no lock beyond the key's own. The leaves split the token ring into
//! [`MERKLE_LEAVES`] equal slices (by the token's top [`MERKLE_LEAF_BITS`] bits), whatever the
//! ring looks like: a token range's tree is the run of leaves it covers, and its inner levels
//! are XORs over runs of leaves, computed when asked. So nothing is rebuilt when the ring
//! changes, and the memory is fixed: [`MerkleLeaves::bytes`].
//!
//! A record's digest covers its key's token and the versions of its two cells, not its value
//! or expiry time: a version is never issued twice, so the versions name the content (Riak
//! hashes the key and the version vector the same way). Turning an expired value into a
//! tombstone keeps both versions, so expiry leaves the leaves alone and replicas that expire
//! a key at the same moment keep matching.

use std::sync::atomic::{AtomicU64, Ordering};

use twox_hash::XxHash3_64;

use crate::record::Record;

/// Bits of a token that choose its leaf.
pub const MERKLE_LEAF_BITS: u32 = 20;
/// Leaves over the whole ring: 2^20, 8 MiB of `u64`s. At a million keys a node, about one key
/// per leaf a replica holds, so a differing leaf names about one key.
pub const MERKLE_LEAVES: usize = 1 << MERKLE_LEAF_BITS;

/// The digest of one record, as the leaves count it.
pub fn record_digest(token: u64, record: &Record) -> u64 {
    let mut bytes = [0u8; 24];
    bytes[0..8].copy_from_slice(&record.value_version.hlc.to_le_bytes());
    bytes[8..12].copy_from_slice(&record.value_version.node.to_le_bytes());
    bytes[12..16].copy_from_slice(&record.expiry_version.node.to_le_bytes());
    bytes[16..24].copy_from_slice(&record.expiry_version.hlc.to_le_bytes());
    let mut digest = XxHash3_64::oneshot_with_seed(token, &bytes);
    // A collection's cells change without its versions (a replica that missed an older
    // element write has the same header), so its digest covers them, through the digest
    // the collection keeps cell by cell (equal states, equal digests).
    if let Some(collection) = record.cells() {
        digest ^= XxHash3_64::oneshot_with_seed(token ^ 1, &collection.digest().to_le_bytes());
    }
    // A HyperLogLog's registers merge without a newer version too (see `Record::merge`).
    if record.kind == crate::record::DataType::HyperLogLog
        && let Some(bytes) = record.bytes()
    {
        digest ^= XxHash3_64::oneshot_with_seed(token ^ 2, bytes);
    }
    // Never 0, so that a record always changes its leaf.
    digest | 1
}

/// The leaf a token falls in.
pub fn leaf_of(token: u64) -> u32 {
    (token >> (64 - MERKLE_LEAF_BITS)) as u32
}

/// The first token of leaf `leaf`.
pub fn leaf_first_token(leaf: u32) -> u64 {
    u64::from(leaf) << (64 - MERKLE_LEAF_BITS)
}

/// The last token of leaf `leaf`.
pub fn leaf_last_token(leaf: u32) -> u64 {
    leaf_first_token(leaf) | (u64::MAX >> MERKLE_LEAF_BITS)
}

/// The Merkle leaves of everything a store holds.
pub struct MerkleLeaves {
    leaves: Box<[AtomicU64]>,
}

impl Default for MerkleLeaves {
    fn default() -> Self {
        MerkleLeaves::new()
    }
}

impl std::fmt::Debug for MerkleLeaves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerkleLeaves").finish_non_exhaustive()
    }
}

impl MerkleLeaves {
    /// All leaves empty (the digest of no records is 0).
    pub fn new() -> MerkleLeaves {
        MerkleLeaves {
            leaves: (0..MERKLE_LEAVES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds or removes one record: XOR is its own inverse, so the same call does both.
    /// Callers hold the key's lock, so two changes of one key never interleave.
    pub fn toggle(&self, token: u64, record: &Record) {
        self.leaves[leaf_of(token) as usize]
            .fetch_xor(record_digest(token, record), Ordering::Relaxed);
    }

    /// Replaces `old` (if any) by `new` (if any) for the key with `token`.
    pub fn replace(&self, token: u64, old: Option<&Record>, new: Option<&Record>) {
        let digest =
            old.map_or(0, |r| record_digest(token, r)) ^ new.map_or(0, |r| record_digest(token, r));
        if digest != 0 {
            self.leaves[leaf_of(token) as usize].fetch_xor(digest, Ordering::Relaxed);
        }
    }

    /// Replaces a record whose digest was `old` by one whose digest is `new` (see
    /// [`record_digest`]): for a record changed where it is stored.
    pub fn swap(&self, token: u64, old: u64, new: u64) {
        if old != new {
            self.leaves[leaf_of(token) as usize].fetch_xor(old ^ new, Ordering::Relaxed);
        }
    }

    /// The XOR of leaves `first..=last`: the digest of every record in those leaves.
    pub fn span_digest(&self, first: u32, last: u32) -> u64 {
        let last = (last as usize).min(MERKLE_LEAVES - 1);
        let first = first as usize;
        if first > last {
            return 0;
        }
        self.leaves[first..=last]
            .iter()
            .fold(0, |acc, leaf| acc ^ leaf.load(Ordering::Relaxed))
    }

    /// Empties every leaf (the store was cleared).
    pub fn clear(&self) {
        for leaf in self.leaves.iter() {
            leaf.store(0, Ordering::Relaxed);
        }
    }

    /// Memory the leaves take.
    pub fn bytes(&self) -> usize {
        self.leaves.len() * std::mem::size_of::<AtomicU64>()
    }

    /// Whether these leaves equal `other`'s, leaf by leaf (tests compare an incrementally
    /// kept tree with one rebuilt from a scan).
    pub fn same_as(&self, other: &MerkleLeaves) -> bool {
        self.leaves
            .iter()
            .zip(other.leaves.iter())
            .all(|(a, b)| a.load(Ordering::Relaxed) == b.load(Ordering::Relaxed))
    }
}

/// Before what time (unix ms) a tombstone may be dropped, by the token of its key.
///
/// In a cluster a tombstone may go only once its range has been repaired with every replica
/// after it was written (see docs/cluster.md, "Anti-entropy"); each range then has its own
/// horizon, and tokens in no listed span keep every tombstone. A single node has one horizon
/// for every token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TombstoneHorizon {
    /// Sorted, disjoint inclusive token spans `(first, last, before_ms)`.
    spans: Vec<(u64, u64, u64)>,
    /// The horizon of tokens in no span.
    otherwise_ms: u64,
}

impl TombstoneHorizon {
    /// The same horizon for every token.
    pub fn uniform(before_ms: u64) -> TombstoneHorizon {
        TombstoneHorizon {
            spans: Vec::new(),
            otherwise_ms: before_ms,
        }
    }

    /// A horizon per inclusive token span; tokens in none keep every tombstone. The spans
    /// must not overlap (callers pass a ring's ranges).
    pub fn by_span(mut spans: Vec<(u64, u64, u64)>) -> TombstoneHorizon {
        spans.sort_unstable();
        TombstoneHorizon {
            spans,
            otherwise_ms: 0,
        }
    }

    /// Tombstones of keys with `token` whose newest version is older than this may go.
    pub fn before_ms(&self, token: u64) -> u64 {
        let at = self.spans.partition_point(|&(first, _, _)| first <= token);
        match at.checked_sub(1).map(|i| self.spans[i]) {
            Some((_, last, before_ms)) if token <= last => before_ms,
            _ => self.otherwise_ms,
        }
    }

    /// Whether a record with this token may be dropped as an old tombstone: it holds no value
    /// (deleted, or expired and reclaimed) and its newest version is older than the horizon.
    ///
    /// A collection is not reclaimed when it expires (its digest covers its cells, and a
    /// reclaim must not change a leaf), so one that expired before the horizon goes too.
    pub fn allows_drop(&self, token: u64, record: &Record) -> bool {
        let before = self.before_ms(token);
        (!record.holds_value() || record.expiry_ms.is_some_and(|at| at < before))
            && record.version().unix_ms() < before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Version;
    use bytes::Bytes;

    fn record(hlc: u64) -> Record {
        Record::new(Bytes::from_static(b"v"), None, Version { hlc, node: 1 })
    }

    #[test]
    fn replacing_and_removing_a_record_returns_the_leaf_to_its_old_digest() {
        let leaves = MerkleLeaves::new();
        let token = 0xdead_beef_0000_0000;
        leaves.toggle(token, &record(1));
        let one = leaves.span_digest(0, u32::MAX);
        leaves.replace(token, Some(&record(1)), Some(&record(2)));
        assert_ne!(leaves.span_digest(0, u32::MAX), one);
        leaves.replace(token, Some(&record(2)), None);
        assert_eq!(leaves.span_digest(0, u32::MAX), 0);
    }

    #[test]
    fn the_digest_names_versions_not_values() {
        let a = record(7);
        let mut expired = a.clone();
        expired.value = None;
        assert_eq!(record_digest(5, &a), record_digest(5, &expired));
        assert_ne!(record_digest(5, &a), record_digest(6, &a));
        assert_ne!(record_digest(5, &a), record_digest(5, &record(8)));
    }

    #[test]
    fn leaves_split_the_ring_evenly() {
        assert_eq!(leaf_of(0), 0);
        assert_eq!(leaf_of(u64::MAX), (MERKLE_LEAVES - 1) as u32);
        assert_eq!(leaf_of(leaf_last_token(42)), 42);
        assert_eq!(leaf_of(leaf_last_token(42) + 1), 43);
        assert_eq!(leaf_first_token(43), leaf_last_token(42) + 1);
    }

    #[test]
    fn a_horizon_is_found_by_span_and_tokens_outside_keep_everything() {
        let horizon = TombstoneHorizon::by_span(vec![(100, 199, 5_000), (10, 20, 7_000)]);
        assert_eq!(horizon.before_ms(10), 7_000);
        assert_eq!(horizon.before_ms(20), 7_000);
        assert_eq!(horizon.before_ms(150), 5_000);
        assert_eq!(horizon.before_ms(21), 0);
        assert_eq!(horizon.before_ms(9), 0);
        assert_eq!(horizon.before_ms(200), 0);
        assert_eq!(TombstoneHorizon::uniform(3).before_ms(u64::MAX), 3);
    }
}
