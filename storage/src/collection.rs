//! Collections (hashes, sets, sorted sets, lists): a key's value as **cells** merged one by
//! one, so that writes of different elements through different nodes all survive.
//!
//! A collection record is an ordinary [`Record`] whose [`Record::kind`] names the type and
//! whose value is a [`Collection`] encoded by [`Collection::encode`]:
//! - the **header** is the record's value cell: its version is the newest write to the key
//!   (every element write rewrites it, so the type itself is last-writer-wins), its expiry
//!   cell is the key's expiry, as for a string;
//! - the **clear version**: every cell at or below it is dead. `DEL`, an overwriting `SET` or
//!   a type change shadow the whole key; a collection that wins over such a record raises its
//!   clear version to that record's version, so an element written before the shadowing write
//!   never comes back whatever order replicas see the writes in;
//! - **cells**: element → (version, payload); a payload `None` is a removed element, kept so
//!   that an older add of the same element arriving later stays dead. The higher version wins.
//!
//! Merge is commutative, associative and idempotent (a property test checks it), which is all
//! that hints, read repair, anti-entropy and streaming need: they move records and merge them.
//!
//! A write sends only what it changed: [`Collection::delta`] keeps the cells at the write's
//! version, so `HSET` of one field in a large hash is a small frame to each replica.
//!
//! # Encoding (little-endian; canonical: equal states encode to equal bytes)
//! ```text
//! u8 format (1) | u32 live cells | u64 clear hlc | u32 clear node | u32 cells
//! per cell, in element order: u32 element length | element | u64 hlc | u32 node |
//!                             u8 present | (if present) u32 payload length | payload
//! ```

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};

use crate::record::{DataType, Record, Version};

/// The first byte of every encoded collection.
const FORMAT: u8 = 1;
/// Bytes before the first cell.
const HEADER_BYTES: usize = 1 + 4 + 8 + 4 + 4;

/// One element's cell: the newest write of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The write that set it.
    pub version: Version,
    /// The element's payload (a field's value, a member's score, a list item); `None` when
    /// the element was removed. A set member's payload is empty.
    pub value: Option<Bytes>,
}

/// A decoded collection: the clear version and the cells above it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collection {
    /// Cells at or below this version are dead.
    pub clear: Version,
    /// Every cell above `clear`, removed elements included.
    pub cells: BTreeMap<Bytes, Cell>,
}

/// What was wrong with bytes that should have been an encoded collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("corrupt collection encoding")]
pub struct CorruptCollection;

impl Collection {
    /// An empty collection whose elements at or below `clear` are dead.
    pub fn cleared_at(clear: Version) -> Collection {
        Collection {
            clear,
            cells: BTreeMap::new(),
        }
    }

    /// The live elements and their payloads, in element order.
    pub fn live(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.cells
            .iter()
            .filter_map(|(element, cell)| Some((element, cell.value.as_ref()?)))
    }

    /// How many elements are live.
    pub fn live_count(&self) -> usize {
        self.cells.values().filter(|c| c.value.is_some()).count()
    }

    /// The payload of `element` if it is live.
    pub fn get(&self, element: &[u8]) -> Option<&Bytes> {
        self.cells.get(element)?.value.as_ref()
    }

    /// Writes `element` (or removes it, `value` `None`) at `version`.
    pub fn put(&mut self, element: Bytes, value: Option<Bytes>, version: Version) {
        if version > self.clear {
            self.cells.insert(element, Cell { version, value });
        }
    }

    /// Raises the clear version to `clear` and drops the cells it kills.
    pub fn clear_to(&mut self, clear: Version) {
        if clear > self.clear {
            self.clear = clear;
            self.cells.retain(|_, cell| cell.version > clear);
        }
    }

    /// Merges `other` in cell by cell; whether anything changed.
    pub fn merge(&mut self, other: &Collection) -> bool {
        let mut changed = false;
        if other.clear > self.clear {
            self.clear_to(other.clear);
            changed = true;
        }
        for (element, cell) in &other.cells {
            if cell.version <= self.clear {
                continue;
            }
            match self.cells.get_mut(element) {
                Some(mine) if mine.version >= cell.version => {}
                Some(mine) => {
                    *mine = cell.clone();
                    changed = true;
                }
                None => {
                    self.cells.insert(element.clone(), cell.clone());
                    changed = true;
                }
            }
        }
        changed
    }

    /// What a write at `version` changed: the clear version and the cells it wrote.
    pub fn delta(&self, version: Version) -> Collection {
        Collection {
            clear: self.clear,
            cells: self
                .cells
                .iter()
                .filter(|(_, cell)| cell.version == version)
                .map(|(e, c)| (e.clone(), c.clone()))
                .collect(),
        }
    }

    /// Drops removed-element cells that `droppable` allows (old enough that no replica can
    /// still hold an older add of the element; see the tombstone horizon); how many went.
    pub fn drop_removed(&mut self, droppable: impl Fn(Version) -> bool) -> usize {
        let before = self.cells.len();
        self.cells
            .retain(|_, cell| cell.value.is_some() || !droppable(cell.version));
        before - self.cells.len()
    }

    /// The canonical encoding (module docs).
    pub fn encode(&self) -> Bytes {
        let payload: usize = self
            .cells
            .iter()
            .map(|(e, c)| 4 + e.len() + 13 + c.value.as_ref().map_or(0, |v| 4 + v.len()))
            .sum();
        let mut out = BytesMut::with_capacity(HEADER_BYTES + payload);
        out.put_u8(FORMAT);
        out.put_u32_le(self.live_count() as u32);
        out.put_u64_le(self.clear.hlc);
        out.put_u32_le(self.clear.node);
        out.put_u32_le(self.cells.len() as u32);
        for (element, cell) in &self.cells {
            out.put_u32_le(element.len() as u32);
            out.put_slice(element);
            out.put_u64_le(cell.version.hlc);
            out.put_u32_le(cell.version.node);
            match &cell.value {
                Some(value) => {
                    out.put_u8(1);
                    out.put_u32_le(value.len() as u32);
                    out.put_slice(value);
                }
                None => out.put_u8(0),
            }
        }
        out.freeze()
    }

    /// Decodes [`Collection::encode`]'s bytes; elements and payloads share `bytes`.
    ///
    /// # Errors
    /// When the bytes are not a well-formed encoding (every length is checked against what
    /// is left, so garbage never reads out of bounds).
    pub fn decode(bytes: &Bytes) -> Result<Collection, CorruptCollection> {
        let mut at = Reader { bytes, at: 0 };
        if at.u8()? != FORMAT {
            return Err(CorruptCollection);
        }
        let live = at.u32()?;
        let clear = at.version()?;
        let count = at.u32()? as usize;
        let mut cells = BTreeMap::new();
        let mut previous: Option<Bytes> = None;
        for _ in 0..count {
            let element = at.bytes()?;
            let version = at.version()?;
            let value = match at.u8()? {
                0 => None,
                1 => Some(at.bytes()?),
                _ => return Err(CorruptCollection),
            };
            // Canonical only: elements in strictly increasing order, every cell above the
            // clear version. A peer's bytes are stored as they came, and digests compare
            // bytes, so anything else would keep replicas apart for ever.
            if previous.as_ref().is_some_and(|p| *p >= element) || version <= clear {
                return Err(CorruptCollection);
            }
            previous = Some(element.clone());
            cells.insert(element, Cell { version, value });
        }
        let collection = Collection { clear, cells };
        if at.at != bytes.len() || live as usize != collection.live_count() {
            return Err(CorruptCollection);
        }
        Ok(collection)
    }
}

/// Whether an encoded collection holds removed-element cells, read from its header.
pub fn has_removed(encoded: &[u8]) -> bool {
    let cells = encoded
        .get(17..21)
        .map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
    cells > live_count(encoded)
}

/// A collection's record without the removed-element cells older than `before_ms` (unix ms),
/// or `None` when it has none: what the expiry sweep writes once the tombstone horizon has
/// passed them, so that every replica eventually drops them and a queue does not grow by a
/// cell per pop.
pub fn without_old_removals(record: &Record, before_ms: u64) -> Option<Record> {
    let body = record
        .value
        .as_ref()
        .filter(|_| record.kind.is_collection())?;
    if !has_removed(body) {
        return None;
    }
    let mut collection = Collection::decode(body).ok()?;
    if collection.drop_removed(|version| version.unix_ms() < before_ms) == 0 {
        return None;
    }
    Some(Record {
        value: Some(collection.encode()),
        ..record.clone()
    })
}

/// How many live elements an encoded collection holds, read from its header without
/// decoding it (0 for bytes too short to be one).
pub fn live_count(encoded: &[u8]) -> u32 {
    encoded
        .get(1..5)
        .map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

/// A bounds-checked reader over an encoded collection.
struct Reader<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CorruptCollection> {
        let end = self.at.checked_add(n).ok_or(CorruptCollection)?;
        let slice = self.bytes.get(self.at..end).ok_or(CorruptCollection)?;
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, CorruptCollection> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, CorruptCollection> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }

    fn u64(&mut self) -> Result<u64, CorruptCollection> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn version(&mut self) -> Result<Version, CorruptCollection> {
        Ok(Version {
            hlc: self.u64()?,
            node: self.u32()?,
        })
    }

    fn bytes(&mut self) -> Result<Bytes, CorruptCollection> {
        let len = self.u32()? as usize;
        let start = self.at;
        self.take(len)?;
        Ok(self.bytes.slice(start..start + len))
    }
}

/// The collection a record holds, if it holds one of type `kind` (a record of another type,
/// a tombstone or a corrupt encoding reads as none).
pub fn of_record(record: &Record, kind: DataType) -> Option<Collection> {
    if record.kind != kind {
        return None;
    }
    Collection::decode(record.value.as_ref()?).ok()
}

/// Merges the value cells of two records of which at least one is a collection (see the
/// module docs): the newer header decides the type; cells of the same type merge one by one;
/// whatever the winner shadows raises its clear version. Returns whether `mine` changed.
pub(crate) fn merge_value(mine: &mut Record, other: &Record) -> bool {
    let both_bodies = mine.kind == other.kind && mine.value.is_some() && other.value.is_some();
    if both_bodies {
        let (Ok(mut merged), Ok(theirs)) = (
            Collection::decode(mine.value.as_ref().expect("checked")),
            Collection::decode(other.value.as_ref().expect("checked")),
        ) else {
            return merge_whole(mine, other);
        };
        let mut changed = merged.merge(&theirs);
        if other.value_version > mine.value_version {
            mine.value_version = other.value_version;
            changed = true;
        }
        if changed {
            mine.value = Some(merged.encode());
        }
        return changed;
    }
    merge_whole(mine, other)
}

/// The merge of two value cells that do not both hold a collection of one type: the newer
/// (at equal versions, the one with a value) wins; a winning collection clears what the
/// loser's version shadows.
fn merge_whole(mine: &mut Record, other: &Record) -> bool {
    let other_wins = other.value_version > mine.value_version
        || (other.value_version == mine.value_version
            && mine.value.is_none()
            && other.value.is_some());
    let (winner, loser_version) = if other_wins {
        (other.clone(), mine.value_version)
    } else {
        (mine.clone(), other.value_version)
    };
    let mut value = winner.value.clone();
    // A loser at the winner's own version is the same write without its value (reclaimed
    // on expiry): it shadows nothing.
    if winner.kind.is_collection()
        && let Some(body) = &value
        && let Ok(mut collection) = Collection::decode(body)
        && loser_version > collection.clear
        && loser_version < winner.value_version
    {
        collection.clear_to(loser_version);
        value = Some(collection.encode());
    }
    let changed = value != mine.value || winner.kind != mine.kind || other_wins;
    mine.value_version = winner.value_version;
    mine.kind = winner.kind;
    mine.value = value;
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(hlc: u64) -> Version {
        Version { hlc, node: 1 }
    }

    fn hash_record(version: u64, clear: u64, cells: &[(&str, Option<&str>, u64)]) -> Record {
        let mut c = Collection::cleared_at(v(clear));
        for (e, val, ver) in cells {
            c.put(
                Bytes::copy_from_slice(e.as_bytes()),
                val.map(|x| Bytes::copy_from_slice(x.as_bytes())),
                v(*ver),
            );
        }
        Record {
            kind: DataType::Hash,
            ..Record::new(c.encode(), None, v(version))
        }
    }

    fn fields(record: &Record) -> Vec<(String, String)> {
        of_record(record, DataType::Hash)
            .map(|c| {
                c.live()
                    .map(|(e, v)| {
                        (
                            String::from_utf8_lossy(e).into(),
                            String::from_utf8_lossy(v).into(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn concurrent_writes_of_different_fields_both_survive() {
        let mut a = hash_record(5, 0, &[("a", Some("1"), 5)]);
        let b = hash_record(6, 0, &[("b", Some("2"), 6)]);
        assert!(a.merge(&b));
        assert_eq!(
            fields(&a),
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(a.value_version, v(6));
    }

    #[test]
    fn a_delete_kills_older_fields_but_not_newer_ones_in_any_order() {
        let old = hash_record(5, 0, &[("a", Some("1"), 5)]);
        let del = Record::tombstone(v(7));
        let new = hash_record(8, 0, &[("c", Some("3"), 8)]);
        for order in [[&old, &del, &new], [&new, &del, &old], [&del, &new, &old]] {
            let mut merged = order[0].clone();
            merged.merge(order[1]);
            merged.merge(order[2]);
            assert_eq!(fields(&merged), [("c".into(), "3".into())], "{order:?}");
        }
    }

    #[test]
    fn a_removed_field_stays_removed_when_an_older_add_arrives_later() {
        let mut removed = hash_record(9, 0, &[("a", None, 9)]);
        assert!(!removed.merge(&hash_record(4, 0, &[("a", Some("x"), 4)])));
        assert!(fields(&removed).is_empty());
        assert_eq!(live_count(removed.value.as_ref().unwrap()), 0);
    }

    #[test]
    fn the_same_write_reclaimed_on_expiry_shadows_none_of_its_cells() {
        // An expired collection some sweep emptied of its value, at the header's version.
        let full = hash_record(5, 0, &[("a", Some("1"), 3), ("b", Some("2"), 5)]);
        let reclaimed = Record {
            value: None,
            ..full.clone()
        };
        let mut merged = full.clone();
        assert!(!merged.merge(&reclaimed));
        assert_eq!(merged, full);
        let mut other_way = reclaimed;
        assert!(other_way.merge(&full));
        assert_eq!(other_way, full);
    }

    #[test]
    fn removed_cells_past_the_horizon_go_and_newer_ones_stay() {
        let at_ms = |ms: u64| v(ms << Version::LOGICAL_BITS);
        let mut cells = Collection::default();
        cells.put(Bytes::from_static(b"a"), None, at_ms(3));
        cells.put(Bytes::from_static(b"b"), None, at_ms(8));
        cells.put(
            Bytes::from_static(b"c"),
            Some(Bytes::from_static(b"x")),
            at_ms(9),
        );
        let record = Record::new(cells.encode(), None, at_ms(9)).with_kind(DataType::Hash);
        assert!(has_removed(record.value.as_ref().unwrap()));
        let smaller = without_old_removals(&record, 5).unwrap();
        let kept = of_record(&smaller, DataType::Hash).unwrap();
        assert_eq!(
            kept.cells.keys().collect::<Vec<_>>(),
            [&Bytes::from_static(b"b"), &Bytes::from_static(b"c")]
        );
        assert_eq!(smaller.value_version, record.value_version);
        let all_gone = without_old_removals(&smaller, 100).unwrap();
        assert!(!has_removed(all_gone.value.as_ref().unwrap()));
        assert!(without_old_removals(&all_gone, 100).is_none());
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        let mut out = BytesMut::new();
        // Two cells out of order.
        out.put_u8(FORMAT);
        out.put_u32_le(2);
        out.put_u64_le(0);
        out.put_u32_le(0);
        out.put_u32_le(2);
        for element in [b"b", b"a"] {
            out.put_u32_le(1);
            out.put_slice(element);
            out.put_u64_le(5);
            out.put_u32_le(1);
            out.put_u8(1);
            out.put_u32_le(0);
        }
        assert!(Collection::decode(&out.freeze()).is_err());
        // A live count that lies.
        let good = hash_record(1, 0, &[("a", Some("1"), 1)]).value.unwrap();
        let mut lying = good.to_vec();
        lying[1] = 7;
        assert!(Collection::decode(&Bytes::from(lying)).is_err());
    }

    #[test]
    fn corrupt_bytes_decode_to_an_error_not_a_panic() {
        let good = hash_record(1, 0, &[("a", Some("1"), 1)]).value.unwrap();
        for cut in 0..good.len() {
            assert!(Collection::decode(&good.slice(..cut)).is_err());
        }
        assert!(Collection::decode(&Bytes::from_static(&[1, 0, 0, 0, 0, 0xff])).is_err());
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        let cell = (0u8..4, 1u64..20);
        (
            0u8..4,
            1u64..20,
            0u64..10,
            proptest::collection::vec(cell, 0..5),
        )
            .prop_map(|(kind, version, clear, cells)| {
                if kind == 0 {
                    return match version % 3 {
                        0 => Record::tombstone(v(version)),
                        _ => Record::new(Bytes::from(version.to_string()), None, v(version)),
                    };
                }
                // The clear version is always below the header's: the write that set it came later.
                let mut c = Collection::cleared_at(v(clear.min(version - 1)));
                for (e, ver) in cells {
                    // A cell is never newer than its header, and one write (one version)
                    // writes one thing to an element.
                    let ver = ver.min(version);
                    let value =
                        ((ver + u64::from(e)) % 3 != 0).then(|| Bytes::from(vec![e, ver as u8]));
                    c.put(Bytes::from(vec![b'a' + e]), value, v(ver));
                }
                // One version is one write: its header's type is fixed by the version.
                let kind = if version % 2 == 0 {
                    DataType::Hash
                } else {
                    DataType::Set
                };
                Record {
                    kind,
                    ..Record::new(
                        c.encode(),
                        None,
                        Version {
                            hlc: version,
                            node: 2,
                        },
                    )
                }
            })
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_and_idempotent(
            a in arb_record(), b in arb_record(), c in arb_record()
        ) {
            let merged = |x: &Record, y: &Record| { let mut m = x.clone(); m.merge(y); m };
            prop_assert_eq!(merged(&a, &b), merged(&b, &a));
            prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
            prop_assert_eq!(merged(&a, &a), a.clone());
            let ab = merged(&a, &b);
            let mut again = ab.clone();
            prop_assert!(!again.merge(&b));
        }
    }
}
