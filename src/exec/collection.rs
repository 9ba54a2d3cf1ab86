//! What the collection families (hashes, sets, sorted sets, lists) share: reading a key as a
//! collection of one type, `WRONGTYPE` otherwise, and read-modify-writes that write the
//! changed cells at one new version.
//!
//! The cells and their merge are `ringcache_storage::collection`'s. Here a command sees a
//! [`Collection`] of live and removed cells and edits it through an [`Edit`], which stamps
//! every cell it writes with the command's version; on a cluster the coordinator sends only
//! those cells (see `clustered::Overlay`), so a write costs its elements, not the collection.
//!
//! # Costs
//! A stored collection's cells are a persistent map: reading one is a pointer copy, an edit
//! copies only the paths to the cells it writes, the new record shares everything else with
//! the old, and [`delta`] finds the changed cells by skipping the shared parts. So a write of
//! one element into a collection of n costs O(log n) here and in the memory engine; the log
//! engine still writes and reads a collection's whole encoding (docs/storage.md).

use bytes::Bytes;
use ringcache_resp::CommandError;
use smallvec::SmallVec;
use std::sync::Arc;

use ringcache_storage::{Cell, Collection, DataType, Record, Update, Value, Version};

use super::{ExecError, Records};
use crate::node::Node;

/// Largest encoded collection a write may leave: one record must fit a peer frame's value
/// (hints, repair and streaming move it whole) and a hint's. Past it the write is refused
/// with [`CommandError::CollectionTooLarge`], nothing written.
pub const COLLECTION_BYTES_MAX: usize = ringcache_cluster::protocol::frame::PEER_VALUE_BYTES_MAX;

/// The live collection of type `kind` at `key`, `None` when the key does not exist.
///
/// # Errors
/// `WRONGTYPE` when the key holds another type.
pub fn read(
    records: &dyn Records,
    key: &[u8],
    kind: DataType,
    now_ms: u64,
    touch: bool,
) -> Result<Option<Collection>, ExecError> {
    let record = match touch {
        true => records.get(key, now_ms),
        false => records.peek(key, now_ms),
    };
    live(record.as_ref(), kind, now_ms)
}

/// The live collection of type `kind` in `record`, as [`read`].
///
/// # Errors
/// As [`read`].
pub fn live(
    record: Option<&Record>,
    kind: DataType,
    now_ms: u64,
) -> Result<Option<Collection>, ExecError> {
    Ok(live_ref(record, kind, now_ms)?.cloned())
}

/// As [`live`], without copying (a copy shares the cells, so an edit made while it lives
/// copies what it writes).
fn live_ref(
    record: Option<&Record>,
    kind: DataType,
    now_ms: u64,
) -> Result<Option<&Collection>, ExecError> {
    let Some(record) = record.filter(|r| r.is_live(now_ms)) else {
        return Ok(None);
    };
    if record.kind != kind {
        return Err(CommandError::WrongType.into());
    }
    record
        .cells()
        .map(Some)
        .ok_or_else(|| CommandError::CorruptCollection.into())
}

/// A collection being changed by one command: every cell written carries its version, and
/// the cell it replaced is kept until the command succeeds, so that a failed command (an
/// error after a write, or a collection grown past its cap) is undone in place.
#[derive(Debug)]
pub struct Edit<'a> {
    /// The collection as it is now (removed cells included).
    pub collection: &'a mut Collection,
    version: Version,
    /// What undoes each cell written, oldest first. Inline for the usual one or two cells:
    /// a heap block per write was 5% of `LPUSH -P 16`'s CPU.
    undo: SmallVec<[Undo; UNDO_INLINE]>,
    /// Whether a removed element's cell is forgotten rather than kept (a single node: see
    /// [`drop_old_removals`]).
    forget_removed: bool,
}

/// Cells an [`Edit`] records the undoing of without a heap block.
const UNDO_INLINE: usize = 2;

/// How to undo one cell written by an [`Edit`].
#[derive(Debug)]
enum Undo {
    /// Put this cell back (the one written over).
    Restore(Cell),
    /// Forget the element of this cell (the one written, where there was none).
    Forget(Cell),
}

impl Edit<'_> {
    /// The live payload of `element`.
    pub fn get(&self, element: &[u8]) -> Option<&[u8]> {
        self.collection.get(element)
    }

    /// Writes `element` with `value` (both copied into the cell); whether it was not live
    /// before.
    pub fn put(&mut self, element: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> bool {
        let cell = Cell::new(element.as_ref(), self.version, Some(value.as_ref()));
        let old = self.collection.put_cell(cell.clone());
        let added = old.as_ref().is_none_or(|cell| !cell.is_live());
        self.undo.push(match old {
            Some(old) => Undo::Restore(old),
            None => Undo::Forget(cell),
        });
        added
    }

    /// Removes `element`; whether it was live.
    pub fn remove(&mut self, element: &[u8]) -> bool {
        if self.get(element).is_none() {
            return false;
        }
        let old = match self.forget_removed {
            true => self.collection.forget(element),
            false => self.collection.put(element, None, self.version),
        };
        // A live element has a cell, and the command's version is above the clear version
        // (the clock observes every record); without one there is nothing to undo.
        if let Some(old) = old {
            self.undo.push(Undo::Restore(old));
        }
        true
    }

    /// Live elements.
    pub fn len(&self) -> usize {
        self.collection.live_count()
    }

    /// Whether no element is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The version this command writes with (list positions are made from it).
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether a cell was written.
    fn changed(&self) -> bool {
        !self.undo.is_empty()
    }

    /// Puts back every cell written, newest first.
    fn undo(self) {
        for undo in self.undo.into_iter().rev() {
            match undo {
                Undo::Restore(cell) => self.collection.put_back(cell),
                Undo::Forget(cell) => {
                    self.collection.forget(cell.element());
                }
            }
        }
    }
}

/// Runs `change` on the live collection of type `kind` at `key` (empty when the key does
/// not exist) under the key's lock, and writes it if `change` wrote a cell. A key that did
/// not exist starts with its clear version at the old record's (a deleted, expired or
/// emptied key's cells stay dead) and no expiry; an existing one keeps its expiry. When the
/// last element goes the record stays, its removed cells reading as no key, so that an add
/// of another element through another node is not lost with it.
///
/// The store lends the record to the edit ([`Records::update_in_place`]): on a single node
/// the cells are changed where they are stored, in O(log n) per element.
///
/// # Errors
/// `WRONGTYPE`, `change`'s error (nothing written), or the store's.
pub fn update<T>(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    kind: DataType,
    now_ms: u64,
    mut change: impl FnMut(&mut Edit) -> Result<T, ExecError>,
) -> Result<T, ExecError> {
    let mut outcome = None;
    let watched = crate::notify::collecting();
    records.update_in_place(key, now_ms, &mut |record| {
        let was_live = watched && record.is_live(now_ms);
        let (changed, result) = edit(node, record, kind, now_ms, &mut change);
        if was_live && changed && !record.is_live(now_ms) {
            // Redis deletes the key with its last element: `del` after the command's event.
            crate::notify::emptied(key);
        }
        outcome = Some(result);
        changed
    })?;
    outcome.expect("update runs the closure")
}

/// On a single node, drops the cells of removed elements: no other copy exists that an older
/// add could come from, so a collection used as a queue does not grow by one removed cell per
/// pop. [`Edit::remove`] forgets the cells it removes; this drops any a store kept from
/// before (it held a cluster's data), once. In a cluster each replica drops them itself in
/// the expiry sweep, once the tombstone horizon passed them (`Store::expire_step`).
fn drop_old_removals(node: &Node, collection: &mut Collection) {
    if node.cluster.is_none() {
        collection.drop_removed(|_| true);
    }
}

/// The collection a write starts from when the key holds no live `kind` collection:
/// - an emptied collection of that type (not expired): its cells and clear version, so
///   that an add of another element a replica holds and this read missed is not killed;
/// - an expired record: cleared up to its expiry time as well as its version, so that an
///   element written before it expired (which this read may have missed) stays dead;
/// - anything else (a tombstone, a dead value of another type): cleared to its version;
/// - no record: empty.
fn recreated(current: Option<&Record>, kind: DataType, now_ms: u64) -> Collection {
    let Some(record) = current else {
        return Collection::default();
    };
    let expired_at = record.expiry_ms.filter(|&at| at <= now_ms);
    if expired_at.is_none()
        && record.kind == kind
        && let Some(emptied) = record.cells()
    {
        return emptied.clone();
    }
    let mut clear = record.value_version;
    if let Some(at) = expired_at {
        let before_expiry = Version {
            hlc: (at << Version::LOGICAL_BITS).saturating_sub(1),
            node: u32::MAX,
        };
        clear = clear.max(before_expiry);
    }
    Collection::cleared_at(clear)
}

/// One attempt of [`update`] on the key's record, in place: whether it changed the record,
/// and the command's result.
fn edit<T>(
    node: &Node,
    record: &mut Record,
    kind: DataType,
    now_ms: u64,
    change: &mut impl FnMut(&mut Edit) -> Result<T, ExecError>,
) -> (bool, Result<T, ExecError>) {
    let existing = match live_ref(Some(record), kind, now_ms) {
        Ok(existing) => existing.is_some(),
        Err(e) => return (false, Err(e)),
    };
    let version = node.clock.next(now_ms);
    if !existing {
        // A new collection, written over whatever was there only if the command wrote.
        let mut fresh =
            Record::collection(kind, recreated(Some(record), kind, now_ms), None, version);
        let (changed, result) = edit_cells(node, &mut fresh, version, change);
        if changed {
            *record = fresh;
        }
        return (changed, result);
    }
    let (changed, result) = edit_cells(node, record, version, change);
    if changed {
        record.value_version = version;
    }
    (changed, result)
}

/// Runs `change` on the cells of `record` (a collection), stamping what it writes with
/// `version`; whether a cell changed. Undoes everything when `change` fails or the
/// collection would pass its cap.
fn edit_cells<T>(
    node: &Node,
    record: &mut Record,
    version: Version,
    change: &mut impl FnMut(&mut Edit) -> Result<T, ExecError>,
) -> (bool, Result<T, ExecError>) {
    let kind = record.kind;
    let Some(Value::Cells(cells)) = &mut record.value else {
        return (false, Err(CommandError::CorruptCollection.into()));
    };
    let collection = Arc::make_mut(cells);
    if kind == DataType::ZSet {
        collection.index_scores();
    }
    let mut edit = Edit {
        collection,
        version,
        undo: SmallVec::new(),
        forget_removed: node.cluster.is_none(),
    };
    let result = change(&mut edit);
    if result.is_err() || !edit.changed() {
        edit.undo();
        return (false, result);
    }
    if edit.collection.encoded_len() > COLLECTION_BYTES_MAX {
        edit.undo();
        return (false, Err(CommandError::CollectionTooLarge.into()));
    }
    drop_old_removals(node, edit.collection);
    (true, result)
}

/// Writes `elements` (element, payload) at `key` as a new collection of type `kind` in one
/// write, whatever the key held before, as Redis's `setKey` for the `STORE` commands: no
/// expiry; an empty `elements` deletes the key (a tombstone when it was live, as `DEL`).
///
/// The new collection's clear version is the old record's version, which is at least every
/// cell's it holds (a cell is written with its record's version), so every old element is
/// dead on every replica whatever order they see the writes in, and only the new cells and
/// the clear version travel ([`delta`]). One write replaces a string, a collection of
/// another type or one of this type alike, so it needs no tombstone first. Used by every
/// `STORE` command (`SINTERSTORE`, `ZUNIONSTORE`, `ZRANGESTORE`, ...).
///
/// # Errors
/// [`CommandError::CollectionTooLarge`], or the store refused the write (nothing written).
pub fn replace(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    kind: DataType,
    elements: Vec<(Bytes, Bytes)>,
    now_ms: u64,
) -> Result<(), ExecError> {
    let mut too_large = false;
    let mut deleted = false;
    records.update(key, now_ms, &mut |current| {
        if elements.is_empty() {
            deleted = current.is_some_and(|r| r.is_live(now_ms));
            return match deleted {
                true => Update::Put(Record::tombstone(node.clock.next(now_ms))),
                false => Update::Keep,
            };
        }
        let version = node.clock.next(now_ms);
        let clear = current.map_or(Version::ZERO, |r| r.value_version);
        let mut collection = Collection::cleared_at(clear);
        for (element, payload) in &elements {
            collection.put(element, Some(payload), version);
        }
        too_large = collection.encoded_len() > COLLECTION_BYTES_MAX;
        if too_large {
            return Update::Keep;
        }
        Update::Put(Record::collection(kind, collection, None, version))
    })?;
    if deleted {
        // An empty result deletes the destination: Redis's `del` instead of the store event.
        crate::notify::emit(crate::notify::Class::GENERIC, "del", key);
    }
    match too_large {
        true => Err(CommandError::CollectionTooLarge.into()),
        false => Ok(()),
    }
}

/// Most elements one call of an element scan (`HSCAN`, `SSCAN`, `ZSCAN`) returns, whatever
/// its `COUNT`: a reply is built whole.
pub const SCAN_COUNT_MAX: usize = 100_000;

/// One page of an element scan of a large collection: its elements in the order of
/// [`scan_position`] from `cursor`, about `count` at a time (never splitting elements of one
/// position, so none is skipped), and the cursor to resume at (0 at the end). An element
/// present from the first call to the last is returned at least once whatever is added or
/// removed in between, as Redis promises; an index into the element order would skip one
/// when an earlier element goes.
pub fn scan_page<T>(
    elements: impl Iterator<Item = (Bytes, T)>,
    cursor: u64,
    count: usize,
) -> (u64, Vec<(Bytes, T)>) {
    let mut ahead: Vec<(u64, Bytes, T)> = elements
        .map(|(element, item)| (scan_position(&element), element, item))
        .filter(|(at, _, _)| *at >= cursor)
        .collect();
    ahead.sort_unstable_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut end = count.clamp(1, SCAN_COUNT_MAX).min(ahead.len());
    while end < ahead.len() && end > 0 && ahead[end].0 == ahead[end - 1].0 {
        end += 1;
    }
    let next = ahead.get(end).map_or(0, |(at, _, _)| *at);
    ahead.truncate(end);
    (
        next,
        ahead.into_iter().map(|(_, e, item)| (e, item)).collect(),
    )
}

/// Where an element sits in a scan of a large collection: FNV-1a 64 of its bytes, halved and
/// plus one so that it is never 0 (the cursor that ends a scan). Fixed, so that every node of
/// a cluster and every restart agree on it.
pub fn scan_position(element: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in element {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash >> 1) + 1
}

/// The record a coordinator sends for a collection it wrote over `before`: the clear
/// version and the cells the write changed, not the whole collection. A write starts from a
/// copy of `before`'s cells, so the unchanged parts are shared and skipped:
/// O(changed × log n).
pub fn delta(before: Option<&Record>, after: &Record) -> Record {
    let Some(cells) = after.cells() else {
        return after.clone();
    };
    let mut changed = match before
        .filter(|b| b.kind == after.kind)
        .and_then(Record::cells)
    {
        Some(old) => cells.changed_since(old),
        None => cells.clone(),
    };
    if after.kind == DataType::ZSet {
        // A replica may store this record as it is (a new key): with its index, so that
        // reads there need not sort (it holds the changed cells only: cheap).
        changed.index_scores();
    }
    Record {
        value: Some(Value::Cells(Arc::new(changed))),
        ..after.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::{node, run, session};
    use ringcache_resp::Reply;

    #[test]
    fn an_edit_stamps_every_cell_it_writes_with_the_command_s_version() {
        let node = node();
        let records: &dyn Records = &node.store;
        let version = update(&node, records, b"h", DataType::Hash, 1_000, |edit| {
            edit.put(Bytes::from_static(b"a"), Bytes::from_static(b"1"));
            edit.put(Bytes::from_static(b"b"), Bytes::from_static(b"2"));
            assert!(edit.remove(b"a"));
            assert!(!edit.remove(b"zz"));
            assert_eq!(edit.len(), 1);
            assert!(!edit.is_empty());
            Ok(edit.version())
        })
        .unwrap();
        let record = node.store.get(b"h", 1_000).unwrap();
        assert_eq!(record.value_version, version);
        let hash = record.cells().unwrap().clone();
        assert!(hash.cells().all(|cell| cell.version() == version));
        // The delta of that write is all of it; a later write's delta is only its cells.
        assert_eq!(delta(None, &record), record);
        let before = record;
        update(&node, records, b"h", DataType::Hash, 1_001, |edit| {
            Ok(edit.put(Bytes::from_static(b"c"), Bytes::from_static(b"3")))
        })
        .unwrap();
        let record = node.store.get(b"h", 1_001).unwrap();
        let sent = delta(Some(&before), &record);
        assert_eq!(
            sent.cells()
                .unwrap()
                .cells()
                .map(Cell::element)
                .collect::<Vec<_>>(),
            [b"c"]
        );
    }

    #[test]
    fn a_recreated_key_never_shows_the_elements_of_the_one_deleted_before() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "HSET h a 1 b 2");
        run(&node, &mut s, "DEL h");
        run(&node, &mut s, "HSET h c 3");
        assert_eq!(run(&node, &mut s, "HLEN h"), Reply::Integer(1));
        run(&node, &mut s, "SET h string");
        run(&node, &mut s, "DEL h");
        run(&node, &mut s, "HSET h d 4");
        assert_eq!(run(&node, &mut s, "HGET h c"), Reply::Nil);
        assert_eq!(run(&node, &mut s, "HLEN h"), Reply::Integer(1));
    }

    fn version_at(ms: u64) -> Version {
        Version {
            hlc: ms << Version::LOGICAL_BITS,
            node: 1,
        }
    }

    #[test]
    fn a_write_to_an_emptied_collection_keeps_its_cells_and_clear_version() {
        // Emptied by a removal at 20 ms: a replica may still send an add of another element
        // from 15 ms that this read missed; the write must not kill it.
        let mut cells = Collection::cleared_at(version_at(5));
        cells.put(b"a", None, version_at(20));
        let emptied = Record::collection(DataType::Hash, cells, None, version_at(20));
        let start = recreated(Some(&emptied), DataType::Hash, 1_000);
        assert_eq!(start.clear(), version_at(5));
        assert_eq!(start.cell_count(), 1);
        // Of another type, it shadows up to its version.
        assert_eq!(
            recreated(Some(&emptied), DataType::Set, 1_000).clear(),
            version_at(20)
        );
    }

    #[test]
    fn a_write_to_an_expired_collection_clears_everything_written_before_it_expired() {
        let mut cells = Collection::default();
        cells.put(b"a", Some(b"1"), version_at(10));
        let expired = Record::collection(DataType::Hash, cells, Some(50), version_at(10));
        let start = recreated(Some(&expired), DataType::Hash, 60);
        assert_eq!(start.cell_count(), 0);
        // A cell at 40 ms (before the expiry) that this read missed stays dead; one at 50 ms
        // (written after it) lives.
        assert!(start.clear() >= version_at(40));
        assert!(start.clear() < version_at(50));
    }

    #[test]
    fn a_changeless_or_failed_edit_writes_nothing() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "HSET h n x");
        let before = node.store.get(b"h", u64::MAX / 2);
        assert_eq!(run(&node, &mut s, "HDEL h missing"), Reply::Integer(0));
        assert!(run(&node, &mut s, "HINCRBY h n 1").is_error());
        assert_eq!(node.store.get(b"h", u64::MAX / 2), before);
        assert_eq!(run(&node, &mut s, "HDEL nokey f"), Reply::Integer(0));
        assert_eq!(node.store.get(b"nokey", u64::MAX / 2), None);
    }
}
