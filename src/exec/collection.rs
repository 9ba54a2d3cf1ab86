//! What the collection families (hashes, sets, sorted sets, lists) share: reading a key as a
//! collection of one type, `WRONGTYPE` otherwise, and read-modify-writes that write the
//! changed cells at one new version.
//!
//! The cells and their merge are `ringcache_storage::collection`'s. Here a command sees a
//! [`Collection`] of live and removed cells and edits it through an [`Edit`], which stamps
//! every cell it writes with the command's version; on a cluster the coordinator sends only
//! those cells (see `clustered::Overlay`), so a write costs its elements, not the collection.

use bytes::Bytes;
use ringcache_resp::CommandError;
use ringcache_storage::{Collection, DataType, Record, Update, Version, key_token};

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
    let Some(record) = record.filter(|r| r.is_live(now_ms)) else {
        return Ok(None);
    };
    if record.kind != kind {
        return Err(CommandError::WrongType.into());
    }
    let body = record.value.as_ref().expect("a live record has a value");
    Collection::decode(body)
        .map(Some)
        .map_err(|_| CommandError::CorruptCollection.into())
}

/// A collection being changed by one command: every cell written carries its version.
#[derive(Debug)]
pub struct Edit {
    /// The collection as it is now (removed cells included).
    pub collection: Collection,
    version: Version,
    changed: bool,
}

impl Edit {
    /// The live payload of `element`.
    pub fn get(&self, element: &[u8]) -> Option<&Bytes> {
        self.collection.get(element)
    }

    /// Writes `element` with `value`; whether it was not live before.
    pub fn put(&mut self, element: Bytes, value: Bytes) -> bool {
        let added = self.get(&element).is_none();
        self.collection.put(element, Some(value), self.version);
        self.changed = true;
        added
    }

    /// Removes `element`; whether it was live.
    pub fn remove(&mut self, element: &[u8]) -> bool {
        if self.get(element).is_none() {
            return false;
        }
        let element = Bytes::copy_from_slice(element);
        self.collection.put(element, None, self.version);
        self.changed = true;
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
}

/// Runs `change` on the live collection of type `kind` at `key` (empty when the key does
/// not exist) under the key's lock, and writes it if `change` wrote a cell. A key that did
/// not exist starts with its clear version at the old record's (a deleted, expired or
/// emptied key's cells stay dead) and no expiry; an existing one keeps its expiry. When the
/// last element goes the record stays, its removed cells reading as no key, so that an add
/// of another element through another node is not lost with it.
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
    records.update(key, now_ms, &mut |current| {
        let (write, result) = edit(node, key, current, kind, now_ms, &mut change);
        outcome = Some(result);
        write.map_or(Update::Keep, Update::Put)
    })?;
    outcome.expect("update runs the closure")
}

/// Drops the cells of removed elements that no replica can still contradict, so that a
/// collection used as a queue does not grow by one removed cell per pop: on a single node
/// all of them (no other copy exists); in a cluster those older than the tombstone horizon
/// of the key's range (every replica was repaired since), as the sweep drops tombstones.
fn drop_old_removals(node: &Node, key: &[u8], collection: &mut Collection) {
    if node.cluster.is_none() {
        collection.drop_removed(|_| true);
        return;
    }
    let before_ms = node.horizon.read().before_ms(key_token(key));
    if before_ms > 0 {
        collection.drop_removed(|version| version.unix_ms() < before_ms);
    }
}

/// One attempt of [`update`]: the record to write, if any, and the command's result.
fn edit<T>(
    node: &Node,
    key: &[u8],
    current: Option<&Record>,
    kind: DataType,
    now_ms: u64,
    change: &mut impl FnMut(&mut Edit) -> Result<T, ExecError>,
) -> (Option<Record>, Result<T, ExecError>) {
    let existing = match live(current, kind, now_ms) {
        Ok(existing) => existing,
        Err(e) => return (None, Err(e)),
    };
    let version = node.clock.next(now_ms);
    let (collection, expiry) = match (existing, current) {
        (Some(collection), Some(record)) => (collection, (record.expiry_ms, record.expiry_version)),
        _ => {
            let clear = current.map_or(Version::ZERO, |r| r.value_version);
            (Collection::cleared_at(clear), (None, version))
        }
    };
    let mut edit = Edit {
        collection,
        version,
        changed: false,
    };
    let result = change(&mut edit);
    if result.is_err() || !edit.changed {
        return (None, result);
    }
    drop_old_removals(node, key, &mut edit.collection);
    let encoded = edit.collection.encode();
    if encoded.len() > COLLECTION_BYTES_MAX {
        return (None, Err(CommandError::CollectionTooLarge.into()));
    }
    let record = Record {
        kind,
        value: Some(encoded),
        value_version: version,
        expiry_ms: expiry.0,
        expiry_version: expiry.1,
    };
    (Some(record), result)
}

/// The record a coordinator sends for a collection written at the record's version: the
/// clear version and the cells this write changed, not the whole collection.
pub fn delta(record: &Record) -> Record {
    let Some(body) = record
        .value
        .as_ref()
        .filter(|_| record.kind.is_collection())
    else {
        return record.clone();
    };
    match Collection::decode(body) {
        Ok(collection) => Record {
            value: Some(collection.delta(record.value_version).encode()),
            ..record.clone()
        },
        Err(_) => record.clone(),
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
        let hash = Collection::decode(record.value.as_ref().unwrap()).unwrap();
        assert!(hash.cells.values().all(|cell| cell.version == version));
        // The delta of that write is all of it; a later write's delta is only its cells.
        assert_eq!(delta(&record), record);
        update(&node, records, b"h", DataType::Hash, 1_001, |edit| {
            Ok(edit.put(Bytes::from_static(b"c"), Bytes::from_static(b"3")))
        })
        .unwrap();
        let record = node.store.get(b"h", 1_001).unwrap();
        let sent = Collection::decode(delta(&record).value.as_ref().unwrap()).unwrap();
        assert_eq!(
            sent.cells.keys().collect::<Vec<_>>(),
            [&Bytes::from_static(b"c")]
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
