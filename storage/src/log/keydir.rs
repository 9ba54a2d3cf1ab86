//! The keydir: where each key's newest record is, packed in a 16-byte [`Entry`], in
//! [`SHARDS`](crate::shard::SHARDS) shards by the top bits of the key's token (so a shard is
//! a range of the ring; [`crate::shard`] holds the rule, shared with `MemoryStore`), and what
//! each shard counts of its records.
//!
//! Nothing here reads a segment: an entry names a segment and an offset, and the modules
//! above resolve it through the segment table.

use hashbrown::HashTable;

use super::format::RecordHeader;
use crate::StoreStats;
use crate::eviction::{LFU_INIT_VAL, LRU_CLOCK_MAX, lru_clock};
use crate::record::Record;
use crate::shard::SHARD_BITS;
use crate::shard_guard::Counted;

/// Estimated bytes per key of bookkeeping for `used_bytes`: a 16-byte keydir entry plus a
/// control byte, at the table's load factor (measured, see docs/storage.md).
const ENTRY_OVERHEAD_BYTES: usize = 24;

/// Keydir entry flag (in the low bits of the offset, which is a multiple of 8): the value
/// expired and was reclaimed; the record reads as a tombstone.
pub(super) const SLOT_RECLAIMED: u32 = 1;
const SLOT_FLAGS: u32 = 7;

/// Where a key's newest record is, and how it was used: 16 bytes. The key itself is not
/// kept in memory: it is compared in the mapped segment, which only happens for an entry
/// whose tag matches.
///
/// Of the key's 64-bit token only 32 bits are kept (the `tag`): the top 12 are the shard's
/// number, and the low 20 are dropped to make room for the access statistics. Two keys of
/// one shard share a tag with probability 2^-32, which costs one more key comparison in the
/// map, never a wrong answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    /// Bits 20..52 of the key's token, see [`tag_of`].
    pub tag: u32,
    pub segment: u32,
    /// Offset of the record in the segment, with `SLOT_*` flags in the low 3 bits.
    pub slot: u32,
    /// Eviction statistics: 24-bit LRU clock and 8-bit LFU counter (see [`LRU_BITS`]), read
    /// and updated by `evict`.
    pub access: u32,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 16);

/// Bits of the LRU clock in an [`Entry`]'s `access`; the LFU counter is above them. `evict`
/// reads and updates the packed statistics.
pub(super) const LRU_BITS: u32 = 24;
const _: () = assert!(LRU_CLOCK_MAX == (1 << LRU_BITS) - 1);

/// The access statistics of a key created at `now_ms` (used now, counter
/// [`LFU_INIT_VAL`]), packed as an [`Entry`]'s `access`.
pub(super) fn fresh_access(now_ms: u64) -> u32 {
    lru_clock(now_ms) | (u32::from(LFU_INIT_VAL) << LRU_BITS)
}

/// The token bits below the shard's that an [`Entry`] keeps.
const TAG_SHIFT: u32 = 64 - SHARD_BITS - 32;

/// The tag of a token: the 32 bits below the shard's 12.
pub(super) fn tag_of(token: u64) -> u32 {
    (token >> TAG_SHIFT) as u32
}

/// The keydir table's hash of a tag (the token's own bits are random already): the tag in
/// both halves, so hashbrown's bucket index (low bits) and control byte (top 7 bits) both
/// come from it.
pub(super) fn tag_hash(tag: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(tag)
}

/// The keydir table's hash of a key's token.
pub(super) fn token_hash(token: u64) -> u64 {
    tag_hash(tag_of(token))
}

/// Hasher for the keydir table (growth rehashes with it).
pub(super) fn entry_hash(entry: &Entry) -> u64 {
    tag_hash(entry.tag)
}

/// Whether an entry of the shard holding `from` may have a token ≥ `from` (a scan cursor
/// inside a shard): compared on the tag, so a few keys just below `from` may be visited
/// again, which a scan allows.
pub(super) fn at_or_after(entry: &Entry, from: u64) -> bool {
    entry.tag >= tag_of(from)
}

impl Entry {
    pub fn offset(self) -> usize {
        (self.slot & !SLOT_FLAGS) as usize
    }

    pub fn reclaimed(self) -> bool {
        self.slot & SLOT_RECLAIMED != 0
    }
}

/// One shard of the keydir.
#[derive(Default)]
pub(super) struct Shard {
    pub table: HashTable<Entry>,
    pub stats: StoreStats,
    /// State of the generator for LFU's coin flips.
    pub rng: u64,
}

/// A locked keydir shard (see [`crate::shard_guard`]): reading `used_bytes` locks nothing.
pub(super) type ShardGuard<'a> = crate::shard_guard::ShardGuard<'a, Shard>;

impl Counted for Shard {
    fn counts(&self) -> &StoreStats {
        &self.stats
    }
}

/// What the keydir counts of a record.
#[derive(Debug, Clone, Copy)]
pub(super) struct Kind {
    pub key_len: usize,
    pub value_len: usize,
    pub tombstone: bool,
    pub expiry: bool,
}

impl Kind {
    pub fn of(header: &RecordHeader, reclaimed: bool) -> Kind {
        let tombstone = header.is_keyless() || reclaimed;
        // An emptied collection is no key, but its removed cells still take their bytes.
        let valueless = header.is_tombstone() || reclaimed;
        Kind {
            key_len: header.key_len as usize,
            value_len: if valueless {
                0
            } else {
                header.value_len as usize
            },
            tombstone,
            expiry: header.expiry_ms.is_some(),
        }
    }
}

/// Adds (`add`) or removes one record's share of a shard's counts.
pub(super) fn account(stats: &mut StoreStats, kind: Kind, add: bool) {
    let change = |counter: &mut usize, n: usize| {
        *counter = if add {
            *counter + n
        } else {
            counter.saturating_sub(n)
        };
    };
    change(
        &mut stats.used_bytes,
        kind.key_len + kind.value_len + ENTRY_OVERHEAD_BYTES,
    );
    if kind.tombstone {
        change(&mut stats.tombstones, 1);
    } else {
        change(&mut stats.keys, 1);
        if kind.expiry {
            change(&mut stats.keys_with_expiry, 1);
        }
    }
}

/// The record a header describes, without its value: all that its Merkle digest reads (the
/// versions), with no copy of the key or value.
pub(super) fn header_record(header: &RecordHeader) -> Record {
    header.record_without_value()
}
