//! A key's record: a value cell and an expiry cell, each with its own version.
//!
//! Merge is per cell, the higher version wins, so replicas that saw the same writes in any
//! order agree. `SET` writes both cells with one version; `EXPIRE`/`PERSIST` write only the
//! expiry cell; `DEL` writes a tombstone into the value cell. Expiry is absolute unix time in
//! milliseconds, so every replica expires a key at the same moment.

use std::sync::Arc;

use bytes::Bytes;

use crate::collection::{Collection, CorruptCollection, Summary};

/// The version of a cell: a hybrid logical clock reading, then the writing node as the
/// tie-break. Totally ordered; a node never issues the same version twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// 48 bits of unix milliseconds, then 16 bits of logical counter.
    pub hlc: u64,
    /// The node that issued the version.
    pub node: u32,
}

impl Version {
    /// Older than every issued version: the version of a cell never written.
    pub const ZERO: Version = Version { hlc: 0, node: 0 };

    /// Bits of the logical counter below the milliseconds.
    pub const LOGICAL_BITS: u32 = 16;

    /// The unix milliseconds part of the clock reading.
    pub fn unix_ms(self) -> u64 {
        self.hlc >> Self::LOGICAL_BITS
    }
}

/// The type of a key's value, as Redis's `TYPE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[repr(u8)]
pub enum DataType {
    /// A string (also a tombstone's type: it holds nothing).
    #[default]
    String = 0,
    /// A hash: field cells.
    Hash = 1,
    /// A set: member cells.
    Set = 2,
    /// A sorted set: member cells holding a score.
    ZSet = 3,
    /// A list: position cells holding an item.
    List = 4,
    /// A HyperLogLog: a string to every command (`TYPE` says `string`), whose writes by
    /// `PFADD`/`PFMERGE` merge register by register (see [`Record::merge`]).
    HyperLogLog = 5,
}

impl DataType {
    /// Every type, by its number.
    const ALL: [DataType; 6] = [
        DataType::String,
        DataType::Hash,
        DataType::Set,
        DataType::ZSet,
        DataType::List,
        DataType::HyperLogLog,
    ];

    /// Whether the value is a [`Collection`](crate::collection::Collection) of cells.
    pub fn is_collection(self) -> bool {
        !matches!(self, DataType::String | DataType::HyperLogLog)
    }

    /// Whether a value of this type merges without a newer version (a collection's cells, a
    /// HyperLogLog's registers), so that its Merkle digest covers the value, not only the
    /// versions: such a value is never reclaimed in place on expiry (that would change the
    /// digest); the expiry sweep rewrites it as a tombstone.
    pub fn digests_value(self) -> bool {
        self != DataType::String
    }

    /// Redis's name, as `TYPE` answers.
    pub fn name(self) -> &'static str {
        match self {
            DataType::String | DataType::HyperLogLog => "string",
            DataType::Hash => "hash",
            DataType::Set => "set",
            DataType::ZSet => "zset",
            DataType::List => "list",
        }
    }

    /// The number that codecs write.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The type a codec's number names; `None` for a number no type has.
    pub fn from_number(n: u8) -> Option<DataType> {
        DataType::ALL.get(usize::from(n)).copied()
    }
}

/// What a value cell holds: a string's bytes or a collection's cells.
///
/// Collections are held decoded (their cells a persistent map) rather than as encoded bytes,
/// so that reading one is a clone of a pointer and writing one element costs that element;
/// the codecs (log, hints, peer frames) encode them at their boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string's bytes.
    Bytes(Bytes),
    /// A collection (hash, set, sorted set, list); its type is [`Record::kind`]. Behind an
    /// `Arc` so that a record of a string stays as small as before (an entry is 144 bytes).
    Cells(Arc<Collection>),
    /// What repair's version lists carry in place of a collection's cells: enough to tell
    /// whether two replicas' cells differ, never stored.
    Summary(Box<Summary>),
}

impl Value {
    /// The value as the codecs write it: a string's bytes, a collection's encoding.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Value::Bytes(bytes) => bytes.clone(),
            Value::Cells(collection) => collection.encode(),
            Value::Summary(summary) => summary.encode(),
        }
    }

    /// An estimate of the memory the value takes held (see [`Collection::memory_bytes`]).
    pub fn memory_bytes(&self) -> usize {
        match self {
            Value::Bytes(bytes) => bytes.len(),
            Value::Cells(collection) => collection.memory_bytes(),
            Value::Summary(_) => Summary::BYTES,
        }
    }

    /// The length of [`Value::to_bytes`], without encoding.
    pub fn encoded_len(&self) -> usize {
        match self {
            Value::Bytes(bytes) => bytes.len(),
            Value::Cells(collection) => collection.encoded_len(),
            Value::Summary(_) => Summary::BYTES,
        }
    }

    /// The value of type `kind` whose codec bytes are `bytes`.
    ///
    /// # Errors
    /// A collection type whose bytes are not a canonical encoding.
    pub fn decode(kind: DataType, bytes: Bytes) -> Result<Value, CorruptCollection> {
        match kind.is_collection() {
            true => Collection::decode(&bytes).map(|mut c| {
                if kind == DataType::ZSet {
                    c.index_scores();
                }
                Value::Cells(Arc::new(c))
            }),
            false => Ok(Value::Bytes(bytes)),
        }
    }

    /// The string's bytes, `None` for a collection.
    pub fn bytes(&self) -> Option<&Bytes> {
        match self {
            Value::Bytes(bytes) => Some(bytes),
            Value::Cells(_) | Value::Summary(_) => None,
        }
    }

    /// The collection, `None` for a string.
    pub fn cells(&self) -> Option<&Collection> {
        match self {
            Value::Bytes(_) | Value::Summary(_) => None,
            Value::Cells(collection) => Some(collection.as_ref()),
        }
    }
}

/// The value of type `kind` read from a codec whose checksum passed: a collection whose bytes
/// still do not decode (a bug, never seen) reads as an empty collection, which shadows
/// nothing its version does not, rather than as a tombstone that could hide other
/// replicas' elements or a panic.
pub fn decoded(kind: DataType, bytes: Bytes) -> Value {
    Value::decode(kind, bytes).unwrap_or_else(|_| Value::Cells(Arc::default()))
}

/// One key's state. A cell never written has version [`Version::ZERO`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The value's type: a string's bytes, or a collection (see [`crate::collection`]).
    /// Part of the value cell: it changes only with it.
    pub kind: DataType,
    /// The value, or `None` for a tombstone (deleted, expired, or never written).
    pub value: Option<Value>,
    /// Version of the value cell.
    pub value_version: Version,
    /// Absolute expiry in unix milliseconds, `None` for none.
    pub expiry_ms: Option<u64>,
    /// Version of the expiry cell.
    pub expiry_version: Version,
}

impl Record {
    /// A record holding `value` with `expiry_ms`, both cells at `version`.
    pub fn new(value: Bytes, expiry_ms: Option<u64>, version: Version) -> Record {
        Record {
            kind: DataType::String,
            value: Some(Value::Bytes(value)),
            value_version: version,
            expiry_ms,
            expiry_version: version,
        }
    }

    /// A tombstone at `version` for both cells.
    pub fn tombstone(version: Version) -> Record {
        Record {
            kind: DataType::String,
            value: None,
            value_version: version,
            expiry_ms: None,
            expiry_version: version,
        }
    }

    /// A record holding `collection` of type `kind` with `expiry_ms`, both cells at
    /// `version`.
    pub fn collection(
        kind: DataType,
        mut collection: Collection,
        expiry_ms: Option<u64>,
        version: Version,
    ) -> Record {
        if kind == DataType::ZSet {
            collection.index_scores();
        }
        Record {
            kind,
            value: Some(Value::Cells(Arc::new(collection))),
            value_version: version,
            expiry_ms,
            expiry_version: version,
        }
    }

    /// What the codecs write for the value cell: a string's bytes, a collection's
    /// encoding, nothing for a tombstone.
    pub fn value_bytes(&self) -> Bytes {
        self.value.as_ref().map_or_else(Bytes::new, Value::to_bytes)
    }

    /// This record with its type set to `kind` (a string's bytes written as a HyperLogLog).
    pub fn with_kind(self, kind: DataType) -> Record {
        Record { kind, ..self }
    }

    /// The string's bytes, whether live or not; `None` for a tombstone or a collection.
    pub fn bytes(&self) -> Option<&Bytes> {
        self.value.as_ref()?.bytes()
    }

    /// The collection, whether live or not; `None` for a tombstone or a string.
    pub fn cells(&self) -> Option<&Collection> {
        self.value.as_ref()?.cells()
    }

    /// The value if the key exists at `now_ms`: not deleted, not expired, and not a
    /// collection whose every element was removed (Redis deletes a key with its last
    /// element).
    pub fn live_value(&self, now_ms: u64) -> Option<&Value> {
        match self.expiry_ms {
            Some(at) if at <= now_ms => None,
            _ => self.value.as_ref().filter(|_| self.holds_value()),
        }
    }

    /// The string's bytes if the key exists at `now_ms` and holds a string.
    pub fn live_bytes(&self, now_ms: u64) -> Option<&Bytes> {
        self.live_value(now_ms)?.bytes()
    }

    /// Whether the value cell holds something a key exists by, expiry aside: a string, or
    /// a collection with a live element. The engines count such records as keys and the
    /// rest as tombstones.
    pub fn holds_value(&self) -> bool {
        match &self.value {
            None => false,
            Some(Value::Bytes(_)) => true,
            Some(Value::Cells(collection)) => collection.live_count() > 0,
            Some(Value::Summary(summary)) => summary.live > 0,
        }
    }

    /// Whether the key exists at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.live_value(now_ms).is_some()
    }

    /// The newest version of either cell.
    pub fn version(&self) -> Version {
        self.value_version.max(self.expiry_version)
    }

    /// Merges `other` into `self` cell by cell, the higher version winning.
    /// Returns whether `self` changed.
    ///
    /// At equal value versions a value beats its absence: both cells come from the same write
    /// (a version is issued once), so the side without it dropped it because it had expired
    /// there, and a newer expiry cell (`PERSIST`, a longer `EXPIRE`) it missed may have made
    /// the key live again. Liveness stays the expiry cell's to decide.
    pub fn merge(&mut self, other: &Record) -> bool {
        let mut changed = false;
        if self.kind.is_collection() || other.kind.is_collection() {
            changed = crate::collection::merge_value(self, other);
        } else if let Some(merged) = self.merged_hyperloglog(other) {
            changed = merged;
        } else if other.value_version > self.value_version
            || (other.value_version == self.value_version
                && self.value.is_none()
                && other.value.is_some())
        {
            self.value = other.value.clone();
            self.kind = other.kind;
            self.value_version = other.value_version;
            changed = true;
        }
        if other.expiry_version > self.expiry_version {
            self.expiry_ms = other.expiry_ms;
            self.expiry_version = other.expiry_version;
            changed = true;
        }
        changed
    }
}

impl Record {
    /// Two writes of one HyperLogLog (both `PFADD`/`PFMERGE` values) merge register by
    /// register, the newer version kept: a CRDT, so concurrent adds through different nodes
    /// all count. `None` when the value cells are not both HyperLogLogs (or one does not
    /// decode): the caller merges last-writer-wins.
    fn merged_hyperloglog(&mut self, other: &Record) -> Option<bool> {
        if self.kind != DataType::HyperLogLog || other.kind != DataType::HyperLogLog {
            return None;
        }
        let merged = crate::hll::merge_values(self.bytes()?, other.bytes()?)?;
        let changed = self.bytes().is_none_or(|mine| mine[..] != merged[..])
            || other.value_version > self.value_version;
        self.value = Some(Value::Bytes(Bytes::from(merged)));
        self.value_version = self.value_version.max(other.value_version);
        Some(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hyperloglog(version: u64, elements: &[&str]) -> Record {
        let mut value = crate::hll::new_sparse();
        for element in elements {
            crate::hll::add(&mut value, element.as_bytes()).unwrap();
        }
        Record::new(Bytes::from(value), None, v(version)).with_kind(DataType::HyperLogLog)
    }

    fn count(record: &Record) -> u64 {
        crate::hll::count(record.bytes().unwrap()).unwrap()
    }

    fn arb_hyperloglog() -> impl proptest::strategy::Strategy<Value = Record> {
        use proptest::prelude::*;
        (
            1u64..30,
            proptest::collection::vec((0usize..200, 1u8..40), 0..6),
        )
            .prop_map(|(version, registers)| {
                // One version is one write: its registers follow from it and the draw.
                let mut max = crate::hll::empty_registers();
                for (index, value) in registers {
                    max[index] = max[index].max(value);
                }
                max[version as usize] = 1;
                let bytes = crate::hll::encode_canonical(&max);
                Record::new(Bytes::from(bytes), None, v(version)).with_kind(DataType::HyperLogLog)
            })
    }

    proptest::proptest! {
        #[test]
        fn hyperloglog_merge_is_commutative_associative_and_idempotent(
            a in arb_hyperloglog(), b in arb_hyperloglog(), c in arb_hyperloglog()
        ) {
            // (Writes of one version are one write: skip draws that give one version two
            // values.)
            proptest::prop_assume!(a.value_version != b.value_version || a == b);
            proptest::prop_assume!(b.value_version != c.value_version || b == c);
            proptest::prop_assume!(a.value_version != c.value_version || a == c);
            let merged = |x: &Record, y: &Record| { let mut m = x.clone(); m.merge(y); m };
            proptest::prop_assert_eq!(merged(&a, &b), merged(&b, &a));
            proptest::prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
            proptest::prop_assert_eq!(merged(&a, &a), a.clone());
        }
    }

    #[test]
    fn hyperloglog_writes_merge_register_by_register_in_any_order() {
        // PFADDs through three nodes at once: each replica sees them in its own order.
        let (a, b, c) = (
            hyperloglog(5, &["a", "b"]),
            hyperloglog(6, &["c"]),
            hyperloglog(7, &["d", "e", "a"]),
        );
        let all = hyperloglog(7, &["a", "b", "c", "d", "e"]);
        let orders = [[&a, &b, &c], [&c, &b, &a], [&b, &c, &a]];
        let merged: Vec<Record> = orders
            .iter()
            .map(|order| {
                let mut m = order[0].clone();
                m.merge(order[1]);
                m.merge(order[2]);
                m
            })
            .collect();
        assert!(
            merged.iter().all(|m| m == &merged[0]),
            "same bytes in every order"
        );
        assert_eq!(merged[0].value_version, v(7));
        assert_eq!(count(&merged[0]), count(&all));
        assert_eq!(count(&merged[0]), 5);
        // Merging again changes nothing.
        let mut again = merged[0].clone();
        assert!(!again.merge(&b));
        // A SET of another value (a string) still wins or loses by version.
        let mut overwritten = merged[0].clone();
        assert!(overwritten.merge(&Record::new(Bytes::from_static(b"x"), None, v(9))));
        assert_eq!(overwritten.kind, DataType::String);
    }

    fn v(hlc: u64) -> Version {
        Version { hlc, node: 1 }
    }

    #[test]
    fn merge_keeps_the_newer_cell_of_each_kind() {
        let mut mine = Record::new(Bytes::from_static(b"a"), Some(100), v(5));
        let theirs = Record {
            kind: Default::default(),
            value: Some(Value::Bytes(Bytes::from_static(b"b"))),
            value_version: v(4),
            expiry_ms: None,
            expiry_version: v(6),
        };
        assert!(mine.merge(&theirs));
        assert_eq!(mine.bytes().map(|b| &b[..]), Some(&b"a"[..]));
        assert_eq!(mine.expiry_ms, None);
        assert_eq!(mine.version(), v(6));
    }

    #[test]
    fn merge_in_either_order_gives_the_same_record() {
        let a = Record::new(Bytes::from_static(b"a"), Some(7), v(1));
        let b = Record::tombstone(v(2));
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
    }

    #[test]
    fn an_expired_value_is_not_live() {
        let record = Record::new(Bytes::from_static(b"a"), Some(100), v(1));
        assert!(record.is_live(99));
        assert!(!record.is_live(100));
    }

    #[test]
    fn a_value_dropped_on_expiry_comes_back_from_a_replica_that_kept_it() {
        // B expired the value (dropped its bytes, kept its versions); A got a PERSIST first.
        let set = Record::new(Bytes::from_static(b"a"), Some(100), v(1));
        let mut expired_on_b = set.clone();
        expired_on_b.value = None;
        let mut persisted_on_a = set.clone();
        persisted_on_a.merge(&Record {
            kind: Default::default(),
            value: None,
            value_version: Version::ZERO,
            expiry_ms: None,
            expiry_version: v(2),
        });
        assert!(expired_on_b.merge(&persisted_on_a));
        assert_eq!(expired_on_b, persisted_on_a);
        assert!(expired_on_b.is_live(1_000));
        // The other way round nothing changes: A keeps its value.
        let mut a = persisted_on_a.clone();
        assert!(!a.merge(&Record { value: None, ..set }));
        assert!(a.is_live(1_000));
    }

    #[test]
    fn node_breaks_ties_between_equal_clock_readings() {
        assert!(Version { hlc: 9, node: 2 } > Version { hlc: 9, node: 1 });
    }
}
