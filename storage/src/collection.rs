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

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use imbl::ordmap::DiffItem;
use triomphe::ThinArc;
use twox_hash::XxHash3_64;

use crate::ranked::{self, RankedSet};
use crate::record::{DataType, Record, Value, Version};

/// The first byte of every encoded collection.
const FORMAT: u8 = 1;
/// Bytes before the first cell.
const HEADER_BYTES: usize = 1 + 4 + 8 + 4 + 4;

/// One element's cell, in **one** allocation behind a thin pointer: the element, the write
/// that set it, and its payload (a field's value, a member's score, a list item; none when the
/// element was removed, kept so that an older add of it arriving later stays dead).
///
/// Why one allocation: a cell of an element `Bytes`, a version and a payload `Option<Bytes>`
/// took 80 bytes of B-tree leaf plus two heap blocks, 3.2× Redis's bytes per hash field. A
/// thin pointer takes 8 bytes of leaf; the block holds a 32-byte header and the bytes.
/// Cloning a cell shares the block (a reference count), as the persistent B-tree's path
/// copies do.
///
/// Cells order and compare **by element only** (what the B-tree keys on, and what
/// `Borrow<[u8]>` lookups need); [`Cell::same_write`] compares the whole cell.
///
/// imbl's B+ tree copies some keys into its branches as separators and does not refresh
/// them when the leaf's key is replaced or removed: such a separator keeps an old block
/// (its element and payload) alive until the branch is rebuilt, at most about one block
/// per leaf of 64 cells, not counted by [`Collection::encoded_len`].
#[derive(Clone)]
pub struct Cell(ThinArc<CellHeader, u8>);

/// What a cell's block holds before its bytes (element, then payload).
#[derive(Clone, Copy)]
struct CellHeader {
    hlc: u64,
    node: u32,
    /// The element's length, with [`REMOVED`] set when the cell holds no payload.
    element_len: u32,
}

/// Memory a cell takes besides its element and payload bytes, for [`Collection::memory_bytes`]:
/// its block's 32-byte header and the allocator's, rounded to 16, its 8-byte slot in a
/// B-tree leaf filled 50–70%, and the allocator's slack. Calibrated on resident memory:
/// bench/collection-memory.sh measured 82 bytes per field of a 1M-field hash of
/// `f<n>`/`v<n>` (about 14 data bytes each).
const CELL_MEMORY_BYTES: usize = 68;
/// Memory a sorted set's score index takes per member: a 16-byte slot in a leaf filled
/// 50–70% (the entry shares the cell's block) and the branches above. Calibrated the same
/// way: 117 bytes per member of a 1M-member sorted set.
const SCORE_ENTRY_MEMORY_BYTES: usize = 32;

/// The bit of [`CellHeader::element_len`] that marks a removed element. Elements are far
/// below 2 GiB (the protocol caps an argument at 512 MB).
const REMOVED: u32 = 1 << 31;

/// Payloads up to this many bytes are joined to their element on the stack; longer ones go
/// through one temporary buffer.
const STACK_JOIN_BYTES: usize = 256;

impl Cell {
    /// The cell of `element` written at `version` with `payload` (`None`: removed).
    ///
    /// # Panics
    /// When `element` is 2 GiB or longer (the protocol caps an argument far below, and
    /// [`Collection::decode`] refuses such an element).
    pub fn new(element: &[u8], version: Version, payload: Option<&[u8]>) -> Cell {
        let element_len = u32::try_from(element.len())
            .ok()
            .filter(|len| len & REMOVED == 0)
            .expect("an element under 2 GiB");
        let header = CellHeader {
            hlc: version.hlc,
            node: version.node,
            element_len: element_len | if payload.is_none() { REMOVED } else { 0 },
        };
        let Some(payload) = payload.filter(|p| !p.is_empty()) else {
            return Cell(ThinArc::from_header_and_slice(header, element));
        };
        let total = element.len() + payload.len();
        if total <= STACK_JOIN_BYTES {
            let mut joined = [0u8; STACK_JOIN_BYTES];
            joined[..element.len()].copy_from_slice(element);
            joined[element.len()..total].copy_from_slice(payload);
            return Cell(ThinArc::from_header_and_slice(header, &joined[..total]));
        }
        Cell(ThinArc::from_header_and_slice(
            header,
            &[element, payload].concat(),
        ))
    }

    /// The element.
    pub fn element(&self) -> &[u8] {
        &self.0.slice[..self.element_len()]
    }

    /// The write that set this cell.
    pub fn version(&self) -> Version {
        let header = &self.0.header.header;
        Version {
            hlc: header.hlc,
            node: header.node,
        }
    }

    /// The payload; `None` when the element was removed.
    pub fn payload(&self) -> Option<&[u8]> {
        match self.is_live() {
            true => Some(&self.0.slice[self.element_len()..]),
            false => None,
        }
    }

    /// Whether the element is present (not removed).
    pub fn is_live(&self) -> bool {
        self.0.header.header.element_len & REMOVED == 0
    }

    /// Whether `other` is the same write of the same element: the same block, or the same
    /// element, version and payload.
    pub fn same_write(&self, other: &Cell) -> bool {
        std::ptr::eq(&*self.0, &*other.0)
            || (self.version() == other.version()
                && self.element() == other.element()
                && self.payload() == other.payload())
    }

    fn element_len(&self) -> usize {
        (self.0.header.header.element_len & !REMOVED) as usize
    }
}

impl PartialEq for Cell {
    fn eq(&self, other: &Cell) -> bool {
        self.element() == other.element()
    }
}

impl Eq for Cell {}

impl PartialOrd for Cell {
    fn partial_cmp(&self, other: &Cell) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cell {
    fn cmp(&self, other: &Cell) -> Ordering {
        self.element().cmp(other.element())
    }
}

impl Borrow<[u8]> for Cell {
    fn borrow(&self) -> &[u8] {
        self.element()
    }
}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cell")
            .field("element", &Bytes::copy_from_slice(self.element()))
            .field("version", &self.version())
            .field("payload", &self.payload().map(Bytes::copy_from_slice))
            .finish()
    }
}

/// The B-tree's value slot: nothing, and never equal to another. imbl's `diff` skips the
/// subtrees two maps share and compares the values of same-key pairs it meets elsewhere;
/// as the key is the whole cell, an always-unequal value makes it report every such pair,
/// and [`Collection::changed_since`] compares the cells itself ([`Cell::same_write`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unshared;

impl PartialEq for Unshared {
    fn eq(&self, _: &Unshared) -> bool {
        false
    }
}

/// The cells of a collection, in element order. A persistent B-tree: a clone is O(1) and
/// shares every node, a change copies only its path. Why: a command reads the stored
/// collection, edits a copy and stores it back, and a replica merges a few cells into a
/// large one; with a plain map each of those copied (or re-encoded) the whole collection,
/// so `HSET` into a 100,000-field hash cost 100,000 fields.
type Cells = imbl::OrdMap<Cell, Unshared>;

/// A sorted set's live members in Redis's order (score, then member bytes): the index that
/// lets `ZPOPMIN`, `ZRANGE 0 9` and the like walk from an end instead of sorting every
/// member, and, as it keeps its subtrees' sizes, answers a member's rank, the member at a
/// rank and the count between two bounds in O(log n) (`ZRANK`, `ZRANGE z 50000 50010`,
/// `ZCOUNT`), as Redis's skiplist spans do. Its entries share the cells' blocks (16 bytes
/// of leaf each).
type ScoreIndex = RankedSet<ScoreEntry>;

/// One member in a [`ScoreIndex`].
#[derive(Debug, Clone)]
struct ScoreEntry {
    /// The score as a u64 whose order is the scores' ([`score_order`]).
    order: u64,
    cell: Cell,
}

impl ScoreEntry {
    /// The entry of a live cell whose payload is a score (8 bytes, big-endian bits, as the
    /// sorted-set commands write it); none for any other cell.
    fn of(cell: &Cell) -> Option<ScoreEntry> {
        let bits: [u8; 8] = cell.payload()?.try_into().ok()?;
        Some(ScoreEntry {
            order: score_order(f64::from_bits(u64::from_be_bytes(bits))),
            cell: cell.clone(),
        })
    }
}

impl PartialEq for ScoreEntry {
    fn eq(&self, other: &ScoreEntry) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ScoreEntry {}

impl PartialOrd for ScoreEntry {
    fn partial_cmp(&self, other: &ScoreEntry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ScoreEntry {
    fn cmp(&self, other: &ScoreEntry) -> Ordering {
        self.order
            .cmp(&other.order)
            .then_with(|| self.cell.element().cmp(other.cell.element()))
    }
}

/// The members of a sorted set's score index in a window of ranks, from either end
/// ([`Collection::by_rank`]).
pub struct ScoredCells<'a>(ranked::Iter<'a, ScoreEntry>);

impl<'a> Iterator for ScoredCells<'a> {
    type Item = &'a Cell;

    fn next(&mut self) -> Option<&'a Cell> {
        self.0.next().map(|entry| &entry.cell)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }

    /// A seek: `skip(n)` costs O(log n), not n steps.
    fn nth(&mut self, n: usize) -> Option<&'a Cell> {
        self.0.nth(n).map(|entry| &entry.cell)
    }
}

impl<'a> DoubleEndedIterator for ScoredCells<'a> {
    fn next_back(&mut self) -> Option<&'a Cell> {
        self.0.next_back().map(|entry| &entry.cell)
    }

    fn nth_back(&mut self, n: usize) -> Option<&'a Cell> {
        self.0.nth_back(n).map(|entry| &entry.cell)
    }
}

impl ExactSizeIterator for ScoredCells<'_> {}

/// A u64 that orders as `score` does among scores (no NaN: a sorted set never holds one;
/// `-0` is stored as `0`): the sign bit flipped for positives, every bit for negatives.
fn score_order(score: f64) -> u64 {
    // -0 + 0 is +0: the two zeros order as one.
    let bits = (score + 0.0).to_bits();
    match bits >> 63 {
        0 => bits | 1 << 63,
        _ => !bits,
    }
}

/// A decoded collection: the clear version and the cells above it, with the figures every
/// write needs (live count, encoded size, digest) kept up to date cell by cell so that none
/// of them walks the collection.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    /// Cells at or below this version are dead.
    clear: Version,
    /// Every cell above `clear`, removed elements included.
    cells: Cells,
    /// How many cells hold a payload.
    live: usize,
    /// Bytes the cells take in [`Collection::encode`]'s output.
    cell_bytes: usize,
    /// Wrapping sum of [`cell_digest`] over the cells: equal cells, equal digest.
    cells_digest: u64,
    /// A sorted set's members by score, once [`Collection::index_scores`] asked for it;
    /// kept by every change after.
    by_score: Option<ScoreIndex>,
    /// The changes since [`Collection::start_journal`], while one is kept.
    journal: Option<Box<Journal>>,
}

/// The changes of an edit made where a collection is stored (the log engine's): each cell
/// change with the cell it replaced, and the clear version before, so that the edit can be
/// written as a delta without a copy of the state to diff against, and undone if writing
/// it fails.
#[derive(Debug, Clone)]
pub struct Journal {
    /// In order: a cell naming the element changed (the one written, or the one forgotten)
    /// and the element's cell before that change (`None`: it had none).
    changes: Vec<(Cell, Option<Cell>)>,
    /// The clear version before the first change.
    clear: Version,
}

impl Journal {
    /// What a log delta of `after` (the journaled collection now) holds, as
    /// [`Collection::delta_since`] of the state before the edit: the clear version, each
    /// touched element's cell if it differs from before, and a removed cell at `version` for
    /// each element that was live above the new clear version and is gone.
    pub fn delta(&self, after: &Collection, version: Version) -> Collection {
        let mut delta = Collection::cleared_at(after.clear);
        // Each element's cell before its first change.
        let mut firsts: std::collections::BTreeMap<&[u8], (&Cell, &Option<Cell>)> =
            std::collections::BTreeMap::new();
        for (named, before) in &self.changes {
            firsts.entry(named.element()).or_insert((named, before));
        }
        for (named, before) in firsts.into_values() {
            match after.cell(named.element()) {
                Some(now) if before.as_ref().is_some_and(|b| b.same_write(now)) => {}
                Some(now) => {
                    delta.insert(now.clone());
                }
                None => {
                    if before
                        .as_ref()
                        .is_some_and(|b| b.is_live() && b.version() > after.clear)
                    {
                        delta.put(named.element(), None, version);
                    }
                }
            }
        }
        delta
    }

    /// Puts `collection` back as it was when the journal started.
    pub fn undo(self, collection: &mut Collection) {
        for (named, before) in self.changes.into_iter().rev() {
            match before {
                Some(cell) => collection.put_back(cell),
                None => {
                    collection.forget(named.element());
                }
            }
        }
        collection.clear = self.clear;
    }
}

impl PartialEq for Collection {
    fn eq(&self, other: &Collection) -> bool {
        self.clear == other.clear
            && self.cells.len() == other.cells.len()
            && self
                .cells()
                .zip(other.cells())
                .all(|(mine, theirs)| mine.same_write(theirs))
    }
}

impl Eq for Collection {}

/// What was wrong with bytes that should have been an encoded collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("corrupt collection encoding")]
pub struct CorruptCollection;

/// Bytes one cell takes in the encoding.
fn cell_bytes(cell: &Cell) -> usize {
    4 + cell.element().len() + 13 + cell.payload().map_or(0, |v| 4 + v.len())
}

/// One cell's share of [`Collection::digest`]: its element, version and whether it is live
/// (one version is one write, so the payload follows from them).
fn cell_digest(cell: &Cell) -> u64 {
    let version = cell.version();
    let seed = version.hlc.rotate_left(17)
        ^ u64::from(version.node).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ u64::from(cell.is_live());
    XxHash3_64::oneshot_with_seed(seed, cell.element())
}

impl Collection {
    /// An empty collection whose elements at or below `clear` are dead.
    pub fn cleared_at(clear: Version) -> Collection {
        Collection {
            clear,
            ..Collection::default()
        }
    }

    /// Cells at or below this version are dead.
    pub fn clear(&self) -> Version {
        self.clear
    }

    /// Every cell above the clear version, removed elements included, in element order
    /// (from either end).
    pub fn cells(&self) -> impl DoubleEndedIterator<Item = &Cell> {
        self.cells.keys()
    }

    /// How many cells there are, removed elements included.
    pub fn cell_count(&self) -> usize {
        self.cells.len()
    }

    /// `element`'s cell, live or removed.
    pub fn cell(&self, element: &[u8]) -> Option<&Cell> {
        self.cells.get_key_value(element).map(|(cell, _)| cell)
    }

    /// The live elements and their payloads, in element order (from either end).
    pub fn live(&self) -> impl DoubleEndedIterator<Item = (&[u8], &[u8])> {
        self.live_cells()
            .map(|cell| (cell.element(), cell.payload().unwrap_or_default()))
    }

    /// The live elements' cells, in element order (from either end).
    pub fn live_cells(&self) -> impl DoubleEndedIterator<Item = &Cell> {
        self.cells.keys().filter(|cell| cell.is_live())
    }

    /// How many elements are live.
    pub fn live_count(&self) -> usize {
        self.live
    }

    /// Whether some cell is a removed element's.
    pub fn has_removed(&self) -> bool {
        self.cells.len() > self.live
    }

    /// The length of [`Collection::encode`]'s output, without encoding.
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES + self.cell_bytes
    }

    /// An estimate of the memory the collection takes held decoded (what `maxmemory` and
    /// `MEMORY USAGE` count): each cell's bytes, its block and slot overhead, and the score
    /// index's entries. About twice [`Collection::encoded_len`] for short elements.
    pub fn memory_bytes(&self) -> usize {
        let cells = self.cells.len();
        // `cell_bytes` is the encoding: 17 bytes of lengths and version per cell, 4 more
        // for a payload's length, then the element and payload bytes.
        let data = self.cell_bytes - 17 * cells - 4 * self.live;
        let index = self.by_score.as_ref().map_or(0, |index| index.len());
        std::mem::size_of::<Collection>()
            + data
            + cells * CELL_MEMORY_BYTES
            + index * SCORE_ENTRY_MEMORY_BYTES
    }

    /// A digest of the whole state (clear version and every cell), kept up to date by every
    /// change: what anti-entropy and repair compare instead of the encoding.
    pub fn digest(&self) -> u64 {
        let clear = self
            .clear
            .hlc
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
            .wrapping_add(u64::from(self.clear.node));
        self.cells_digest ^ clear.rotate_left(29)
    }

    /// The payload of `element` if it is live.
    pub fn get(&self, element: &[u8]) -> Option<&[u8]> {
        self.cell(element)?.payload()
    }

    /// Writes `element` (or removes it, `value` `None`) at `version`, unless `version` is at
    /// or below the clear version; the cell it replaced.
    pub fn put(&mut self, element: &[u8], value: Option<&[u8]>, version: Version) -> Option<Cell> {
        if version > self.clear {
            return self.insert(Cell::new(element, version, value));
        }
        None
    }

    /// Stores `cell` unless its version is at or below the clear version; the cell it
    /// replaced.
    pub fn put_cell(&mut self, cell: Cell) -> Option<Cell> {
        match cell.version() > self.clear {
            true => self.insert(cell),
            false => None,
        }
    }

    /// Forgets `element`'s cell altogether (no removed cell is kept): on a single node,
    /// where no older copy of the element can arrive later. Returns the cell.
    pub fn forget(&mut self, element: &[u8]) -> Option<Cell> {
        let (old, _) = self.cells.remove_with_key(element)?;
        self.count(&old, false);
        if let Some((index, entry)) = self.by_score.as_mut().zip(ScoreEntry::of(&old)) {
            index.remove(&entry);
        }
        if let Some(journal) = &mut self.journal {
            journal.changes.push((old.clone(), Some(old.clone())));
        }
        Some(old)
    }

    /// Journals every change from now on ([`Journal`]), replacing a journal kept before.
    pub fn start_journal(&mut self) {
        self.journal = Some(Box::new(Journal {
            changes: Vec::new(),
            clear: self.clear,
        }));
    }

    /// The journal kept since [`Collection::start_journal`], which stops it.
    pub fn take_journal(&mut self) -> Option<Journal> {
        self.journal.take().map(|journal| *journal)
    }

    /// Puts `cell` back as it was before an edit wrote over it, whatever the clear version:
    /// how a failed edit is undone (with [`Collection::forget`] for an element it added).
    pub fn put_back(&mut self, cell: Cell) {
        self.insert(cell);
    }

    /// Stores `cell`, keeping the figures; the cell it replaced.
    fn insert(&mut self, cell: Cell) -> Option<Cell> {
        self.count(&cell, true);
        // imbl's insert overwrites an equal key but hands back only its value, so the old
        // cell is looked up first (a read, no path copy; cheaper than a remove), unless the
        // element lies past either end, as a list push's does (the spines are in cache).
        let past_an_end = |end: Option<&(Cell, Unshared)>, order| {
            end.is_none_or(|(end, _)| cell.element().cmp(end.element()) == order)
        };
        let old = match past_an_end(self.cells.get_max(), Ordering::Greater)
            || past_an_end(self.cells.get_min(), Ordering::Less)
        {
            true => None,
            false => self.cell(cell.element()).cloned(),
        };
        if let Some(index) = &mut self.by_score {
            if let Some(entry) = old.as_ref().and_then(ScoreEntry::of) {
                index.remove(&entry);
            }
            if let Some(entry) = ScoreEntry::of(&cell) {
                index.insert(entry);
            }
        }
        if let Some(journal) = &mut self.journal {
            journal.changes.push((cell.clone(), old.clone()));
        }
        self.cells.insert(cell, Unshared);
        if let Some(old) = &old {
            self.count(old, false);
        }
        old
    }

    /// Keeps a [`ScoreIndex`] of this collection from now on (a sorted set's; building it
    /// costs the collection once).
    pub fn index_scores(&mut self) {
        if self.by_score.is_none() {
            self.by_score = Some(self.live_cells().filter_map(ScoreEntry::of).collect());
        }
    }

    /// The live members whose payload is a score, in Redis's sorted-set order (score, then
    /// member bytes), from either end; `None` when no index is kept
    /// ([`Collection::index_scores`]).
    pub fn by_score(&self) -> Option<ScoredCells<'_>> {
        self.by_rank(0..usize::MAX)
    }

    /// As [`Collection::by_score`], the members whose ranks (places in that order, 0 the
    /// lowest) are in `ranks`, clamped to the index: a seek, O(log n), then O(1) a member.
    pub fn by_rank(&self, ranks: Range<usize>) -> Option<ScoredCells<'_>> {
        Some(ScoredCells(self.by_score.as_ref()?.range(ranks)))
    }

    /// As [`Collection::by_score`], from the first member whose score is at or above
    /// `score`: a seek, not a walk from the low end.
    pub fn by_score_from(&self, score: f64) -> Option<ScoredCells<'_>> {
        self.by_rank(self.scored_below(score)?..usize::MAX)
    }

    /// As [`Collection::by_score`], up to the last member whose score is at or below `score`
    /// (walk it from the high end with `.rev()`).
    pub fn by_score_to(&self, score: f64) -> Option<ScoredCells<'_>> {
        self.by_rank(0..self.scored_through(score)?)
    }

    /// How many indexed members score below `score`: the rank of the first at or above it.
    /// O(log n).
    pub fn scored_below(&self, score: f64) -> Option<usize> {
        let order = score_order(score);
        Some(self.by_score.as_ref()?.partition_point(|e| e.order < order))
    }

    /// How many indexed members score at or below `score`. O(log n).
    pub fn scored_through(&self, score: f64) -> Option<usize> {
        let order = score_order(score);
        Some(
            self.by_score
                .as_ref()?
                .partition_point(|e| e.order <= order),
        )
    }

    /// The rank of `element` in the index (see [`Collection::by_rank`]); `None` when no
    /// index is kept or it does not hold the element (not live, or not scored). O(log n).
    pub fn scored_rank(&self, element: &[u8]) -> Option<usize> {
        let index = self.by_score.as_ref()?;
        let order = ScoreEntry::of(self.cell(element)?)?.order;
        let rank = index.partition_point(|e| (e.order, e.cell.element()) < (order, element));
        let found = index.get(rank)?;
        (found.order == order && found.cell.element() == element).then_some(rank)
    }

    /// How many indexed members come before the first for which `pred` is false; `pred`
    /// must be true for a prefix of the index's order (as for `slice::partition_point`), as
    /// "member bytes below a bound" is when every score is equal. O(log n).
    pub fn scored_partition(&self, pred: impl Fn(&Cell) -> bool) -> Option<usize> {
        Some(self.by_score.as_ref()?.partition_point(|e| pred(&e.cell)))
    }

    /// How many members the index holds (fewer than the live count when a payload is not a
    /// score: a corrupt sorted set).
    pub fn scored_count(&self) -> Option<usize> {
        Some(self.by_score.as_ref()?.len())
    }

    /// Adds (or takes away) one cell's share of the kept figures.
    fn count(&mut self, cell: &Cell, add: bool) {
        let live = usize::from(cell.is_live());
        let bytes = cell_bytes(cell);
        let digest = cell_digest(cell);
        if add {
            self.live += live;
            self.cell_bytes += bytes;
            self.cells_digest = self.cells_digest.wrapping_add(digest);
        } else {
            self.live -= live;
            self.cell_bytes -= bytes;
            self.cells_digest = self.cells_digest.wrapping_sub(digest);
        }
    }

    /// Raises the clear version to `clear` and drops the cells it kills.
    pub fn clear_to(&mut self, clear: Version) {
        if clear > self.clear {
            self.clear = clear;
            self.retain(|cell| cell.version() > clear);
        }
    }

    /// Keeps only the cells `keep` accepts; how many went.
    fn retain(&mut self, keep: impl Fn(&Cell) -> bool) -> usize {
        let doomed: Vec<Cell> = self.cells().filter(|cell| !keep(cell)).cloned().collect();
        for cell in &doomed {
            self.forget(cell.element());
        }
        doomed.len()
    }

    /// Merges `other` in cell by cell; whether anything changed. Costs `other`'s cells, not
    /// this collection's (unless `other` raises the clear version).
    pub fn merge(&mut self, other: &Collection) -> bool {
        let mut changed = false;
        if other.clear > self.clear {
            self.clear_to(other.clear);
            changed = true;
        }
        for cell in other.cells() {
            if cell.version() <= self.clear {
                continue;
            }
            if self
                .cell(cell.element())
                .is_some_and(|mine| mine.version() >= cell.version())
            {
                continue;
            }
            self.insert(cell.clone());
            changed = true;
        }
        changed
    }

    /// The cells of this state that `before` lacks or holds from another write, with a
    /// pair of cells of the same element (`None` for the first: `before` lacks it) and, as
    /// `(cell, None)`, every cell `before` has and this state lacks. Made by editing a copy
    /// of `before`, the two share every untouched part of their maps, which the walk skips:
    /// it costs the changed leaves, not the collection.
    fn diff<'a>(&'a self, before: &'a Collection) -> impl Iterator<Item = CellChange<'a>> {
        before
            .cells
            .diff(&self.cells)
            .filter_map(|item| match item {
                DiffItem::Add(cell, _) => Some(CellChange::Written(cell)),
                DiffItem::Update {
                    old: (old, _),
                    new: (cell, _),
                } => (!old.same_write(cell)).then_some(CellChange::Written(cell)),
                DiffItem::Remove(cell, _) => Some(CellChange::Gone(cell)),
            })
    }

    /// The clear version and the cells that differ from `before`'s (added or rewritten;
    /// a cell `before` has and this lacks is not named): costs the changes, see
    /// [`Collection::diff`].
    pub fn changed_since(&self, before: &Collection) -> Collection {
        let mut changed = Collection::cleared_at(self.clear);
        for change in self.diff(before) {
            if let CellChange::Written(cell) = change {
                changed.insert(cell.clone());
            }
        }
        changed
    }

    /// What a log delta of this state over `before` holds: the clear version, the cells that
    /// differ from `before`'s, and, as a removed cell at `version` (the write's), every
    /// element `before` held live above this clear version that this state forgot (a
    /// single node drops a removed element's cell at once; the log must still say it went,
    /// or replaying the log would bring it back). Costs the changes, as
    /// [`Collection::changed_since`] does.
    pub fn delta_since(&self, before: &Collection, version: Version) -> Collection {
        let mut delta = Collection::cleared_at(self.clear);
        for change in self.diff(before) {
            match change {
                CellChange::Written(cell) => {
                    delta.insert(cell.clone());
                }
                CellChange::Gone(cell) => {
                    if cell.is_live() && cell.version() > self.clear {
                        delta.put(cell.element(), None, version);
                    }
                }
            }
        }
        delta
    }

    /// Drops removed-element cells that `droppable` allows (old enough that no replica can
    /// still hold an older add of the element; see the tombstone horizon); how many went.
    pub fn drop_removed(&mut self, droppable: impl Fn(Version) -> bool) -> usize {
        if !self.has_removed() {
            return 0;
        }
        self.retain(|cell| cell.is_live() || !droppable(cell.version()))
    }

    /// The canonical encoding (module docs).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        out.put_u8(FORMAT);
        out.put_u32_le(self.live as u32);
        out.put_u64_le(self.clear.hlc);
        out.put_u32_le(self.clear.node);
        out.put_u32_le(self.cells.len() as u32);
        for cell in self.cells() {
            let element = cell.element();
            let version = cell.version();
            out.put_u32_le(element.len() as u32);
            out.put_slice(element);
            out.put_u64_le(version.hlc);
            out.put_u32_le(version.node);
            match cell.payload() {
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

    /// Decodes [`Collection::encode`]'s bytes into cells of their own (`bytes` is often a
    /// slice of something larger, a peer frame or a mapped segment, that a stored
    /// collection must not keep alive).
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
        let mut collection = Collection::cleared_at(clear);
        let mut previous: Option<&[u8]> = None;
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
            if previous.is_some_and(|p| p >= element)
                || version <= clear
                || element.len() >= REMOVED as usize
            {
                return Err(CorruptCollection);
            }
            previous = Some(element);
            collection.insert(Cell::new(element, version, value));
        }
        if at.at != bytes.len() || live as usize != collection.live {
            return Err(CorruptCollection);
        }
        Ok(collection)
    }
}

/// One difference [`Collection::diff`] finds.
enum CellChange<'a> {
    /// A cell this state has from a write `before` lacks.
    Written(&'a Cell),
    /// A cell `before` has for an element this state lacks.
    Gone(&'a Cell),
}

/// A collection reduced to what tells two replicas' cells apart: its live count, its
/// digest and its clear version. Repair's version lists carry it in place of the cells.
///
/// Encoding: `u8 0xff | u32 live | u64 digest | u64 clear hlc | u32 clear node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Live elements.
    pub live: u32,
    /// [`Collection::digest`].
    pub digest: u64,
    /// [`Collection::clear`].
    pub clear: Version,
}

impl Summary {
    /// Bytes of the encoding.
    pub const BYTES: usize = 1 + 4 + 8 + 8 + 4;

    /// The summary of `collection`.
    pub fn of(collection: &Collection) -> Summary {
        Summary {
            live: u32::try_from(collection.live_count()).unwrap_or(u32::MAX),
            digest: collection.digest(),
            clear: collection.clear(),
        }
    }

    /// The encoding (type docs).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(Summary::BYTES);
        out.put_u8(0xff);
        out.put_u32_le(self.live);
        out.put_u64_le(self.digest);
        out.put_u64_le(self.clear.hlc);
        out.put_u32_le(self.clear.node);
        out.freeze()
    }

    /// Decodes [`Summary::encode`]'s bytes.
    ///
    /// # Errors
    /// Bytes of another length or first byte.
    pub fn decode(bytes: &Bytes) -> Result<Summary, CorruptCollection> {
        let mut at = Reader { bytes, at: 0 };
        if bytes.len() != Summary::BYTES || at.u8()? != 0xff {
            return Err(CorruptCollection);
        }
        Ok(Summary {
            live: at.u32()?,
            digest: at.u64()?,
            clear: at.version()?,
        })
    }
}

/// A collection's record without the removed-element cells older than `before_ms` (unix ms),
/// or `None` when it has none: what the expiry sweep writes once the tombstone horizon has
/// passed them, so that every replica eventually drops them and a queue does not grow by a
/// cell per pop.
pub fn without_old_removals(record: &Record, before_ms: u64) -> Option<Record> {
    let mut collection = record.cells().filter(|c| c.has_removed())?.clone();
    if collection.drop_removed(|version| version.unix_ms() < before_ms) == 0 {
        return None;
    }
    Some(Record {
        value: Some(Value::Cells(Arc::new(collection))),
        ..record.clone()
    })
}

/// A bounds-checked reader over an encoded collection.
struct Reader<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CorruptCollection> {
        let end = self.at.checked_add(n).ok_or(CorruptCollection)?;
        let bytes: &'a [u8] = self.bytes;
        let slice = bytes.get(self.at..end).ok_or(CorruptCollection)?;
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

    fn bytes(&mut self) -> Result<&'a [u8], CorruptCollection> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

/// The collection a record holds, if it holds one of type `kind` (a record of another type
/// or a tombstone reads as none).
pub fn of_record(record: &Record, kind: DataType) -> Option<&Collection> {
    record.cells().filter(|_| record.kind == kind)
}

/// Merges the value cells of two records of which at least one is a collection (see the
/// module docs): the newer header decides the type; cells of the same type merge one by one;
/// whatever the winner shadows raises its clear version. Returns whether `mine` changed.
pub(crate) fn merge_value(mine: &mut Record, other: &Record) -> bool {
    if mine.kind == other.kind
        && let Some(theirs) = other.cells()
        && let Some(Value::Cells(merged)) = &mut mine.value
    {
        let mut changed = Arc::make_mut(merged).merge(theirs);
        if other.value_version > mine.value_version {
            mine.value_version = other.value_version;
            changed = true;
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
    let mut cleared = false;
    // A loser at the winner's own version is the same write without its value (reclaimed
    // on expiry): it shadows nothing.
    if let Some(Value::Cells(collection)) = &mut value
        && loser_version > collection.clear
        && loser_version < winner.value_version
    {
        Arc::make_mut(collection).clear_to(loser_version);
        cleared = true;
    }
    // A sorted set stored from another record keeps its score index (no-op when it has one).
    if winner.kind == DataType::ZSet
        && let Some(Value::Cells(collection)) = &mut value
        && collection.scored_count().is_none()
    {
        Arc::make_mut(collection).index_scores();
    }
    let changed = other_wins || cleared;
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
            c.put(e.as_bytes(), val.map(str::as_bytes), v(*ver));
        }
        Record::collection(DataType::Hash, c, None, v(version))
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
        assert_eq!(removed.cells().unwrap().live_count(), 0);
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
    fn a_change_names_each_rewritten_added_and_forgotten_cell_and_nothing_else() {
        let mut before = Collection::default();
        for i in 0..1_000u32 {
            before.put(format!("f{i:04}").as_bytes(), Some(b"x"), v(1));
        }
        let mut after = before.clone();
        after.put(b"f0500", Some(b"y"), v(2));
        after.put(b"f0500a", Some(b"z"), v(2));
        after.forget(b"f0007");
        let changed = after.changed_since(&before);
        let named = |c: &Collection| -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
            c.cells()
                .map(|c| (c.element().to_vec(), c.payload().map(<[u8]>::to_vec)))
                .collect()
        };
        assert_eq!(
            named(&changed),
            [
                (b"f0500".to_vec(), Some(b"y".to_vec())),
                (b"f0500a".to_vec(), Some(b"z".to_vec())),
            ]
        );
        let delta = after.delta_since(&before, v(3));
        assert_eq!(
            named(&delta),
            [
                (b"f0007".to_vec(), None),
                (b"f0500".to_vec(), Some(b"y".to_vec())),
                (b"f0500a".to_vec(), Some(b"z".to_vec())),
            ]
        );
        // An element's cell is one block whatever its payload's size.
        let big = Cell::new(b"e", v(4), Some(&[7u8; 1_000]));
        assert_eq!(
            (big.element(), big.payload().unwrap().len()),
            (&b"e"[..], 1_000)
        );
        assert!(Cell::new(b"e", v(4), None).payload().is_none());
        assert_eq!(Cell::new(b"e", v(4), Some(b"")).payload(), Some(&b""[..]));
    }

    /// `maxmemory` counts a collection at what it takes held, not at its encoding (about
    /// half as much): bench/collection-memory.sh measured 82 bytes per field of this shape.
    #[test]
    fn a_collections_memory_estimate_follows_what_it_takes_held() {
        let mut hash = Collection::default();
        for i in 0..1_000 {
            let (field, value) = (format!("f{i}"), format!("v{i}"));
            hash.put(field.as_bytes(), Some(value.as_bytes()), v(1));
        }
        let per_field = hash.memory_bytes() / 1_000;
        assert!(
            (70..=95).contains(&per_field),
            "{per_field} bytes per field"
        );
        assert!(hash.memory_bytes() > 2 * hash.encoded_len());
        let mut zset = hash.clone();
        zset.index_scores();
        assert_eq!(
            zset.memory_bytes(),
            hash.memory_bytes(),
            "no member holds a score"
        );
    }

    #[test]
    fn removed_cells_past_the_horizon_go_and_newer_ones_stay() {
        let at_ms = |ms: u64| v(ms << Version::LOGICAL_BITS);
        let mut cells = Collection::default();
        cells.put(b"a", None, at_ms(3));
        cells.put(b"b", None, at_ms(8));
        cells.put(b"c", Some(b"x"), at_ms(9));
        let record = Record::collection(DataType::Hash, cells, None, at_ms(9));
        assert!(record.cells().unwrap().has_removed());
        let smaller = without_old_removals(&record, 5).unwrap();
        let kept = of_record(&smaller, DataType::Hash).unwrap();
        assert_eq!(
            kept.cells().map(Cell::element).collect::<Vec<_>>(),
            [b"b", b"c"]
        );
        assert_eq!(smaller.value_version, record.value_version);
        let all_gone = without_old_removals(&smaller, 100).unwrap();
        assert!(!all_gone.cells().unwrap().has_removed());
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
        let good = hash_record(1, 0, &[("a", Some("1"), 1)]).value_bytes();
        let mut lying = good.to_vec();
        lying[1] = 7;
        assert!(Collection::decode(&Bytes::from(lying)).is_err());
    }

    #[test]
    fn corrupt_bytes_decode_to_an_error_not_a_panic() {
        let good = hash_record(1, 0, &[("a", Some("1"), 1)]).value_bytes();
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
                    let value = ((ver + u64::from(e)) % 3 != 0).then_some([e, ver as u8]);
                    c.put(&[b'a' + e], value.as_ref().map(|x| &x[..]), v(ver));
                }
                // One version is one write: its header's type is fixed by the version.
                let kind = if version % 2 == 0 {
                    DataType::Hash
                } else {
                    DataType::Set
                };
                Record::collection(
                    kind,
                    c,
                    None,
                    Version {
                        hlc: version,
                        node: 2,
                    },
                )
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

        /// An edit journaled in place gives the delta a diff against a copy gives, and its
        /// undo puts back the state before it, figures included.
        #[test]
        fn a_journal_gives_the_diffs_delta_and_undoes_the_edit(
            start in proptest::collection::vec((0u8..10, proptest::option::of(0u8..3), 1u64..20), 0..12),
            edits in proptest::collection::vec((0u8..4, 0u8..10, 0u8..3), 1..12),
            clear in 0u64..25,
        ) {
            let mut state = Collection::cleared_at(v(clear / 2));
            for (e, payload, version) in start {
                state.put(&[e], payload.map(|p| [p]).as_ref().map(|p| &p[..]), v(version));
            }
            let before = state.clone();
            state.start_journal();
            let version = v(30);
            for (op, e, p) in edits {
                match op {
                    0 | 1 => { state.put(&[e], Some(&[p]), version); }
                    2 => { state.forget(&[e]); }
                    _ => state.clear_to(v(clear)),
                }
            }
            let journal = state.take_journal().unwrap();
            let named = |c: &Collection| -> Vec<(Vec<u8>, Version, Option<Vec<u8>>)> {
                c.cells()
                    .map(|c| (c.element().to_vec(), c.version(), c.payload().map(<[u8]>::to_vec)))
                    .collect()
            };
            let delta = journal.delta(&state, version);
            let diffed = state.delta_since(&before, version);
            prop_assert_eq!(named(&delta), named(&diffed));
            prop_assert_eq!(delta.clear(), diffed.clear());
            journal.undo(&mut state);
            prop_assert_eq!(&state, &before);
            prop_assert_eq!(
                (state.live_count(), state.encoded_len(), state.digest()),
                (before.live_count(), before.encoded_len(), before.digest())
            );
        }

        /// The score index walks exactly the live scored members, in (score, member) order,
        /// whatever mix of writes, removals, merges and clears made the collection.
        #[test]
        fn the_score_index_follows_every_change(
            ops in proptest::collection::vec((0u8..4, 0u8..12, -3i8..4, 1u64..40), 1..80)
        ) {
            let mut zset = Collection::default();
            zset.index_scores();
            for (op, member, score, version) in ops {
                let member = [b'm', member];
                let payload = (f64::from(score) * 0.5 + 0.0).to_bits().to_be_bytes();
                match op {
                    0 => { zset.put(&member, Some(&payload), v(version)); }
                    1 => { zset.forget(&member); }
                    2 => {
                        let mut other = Collection::default();
                        other.put(&member, (score > 0).then_some(&payload[..]), v(version));
                        zset.merge(&other);
                    }
                    _ => zset.clear_to(v(version / 4)),
                }
                let score_of = |c: &Cell| {
                    f64::from_bits(u64::from_be_bytes(c.payload().unwrap().try_into().unwrap()))
                };
                let mut expected: Vec<(f64, Vec<u8>)> =
                    zset.live_cells().map(|c| (score_of(c), c.element().to_vec())).collect();
                expected.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
                let walked: Vec<(f64, Vec<u8>)> = zset
                    .by_score()
                    .unwrap()
                    .map(|c| (score_of(c), c.element().to_vec()))
                    .collect();
                prop_assert_eq!(&walked, &expected);
                // Ranks, counts and windows agree with the sorted copy.
                for (rank, (score, member)) in expected.iter().enumerate() {
                    prop_assert_eq!(zset.scored_rank(member), Some(rank));
                    let below = expected.iter().filter(|(s, _)| s < score).count();
                    let through = expected.iter().filter(|(s, _)| s <= score).count();
                    prop_assert_eq!(zset.scored_below(*score), Some(below));
                    prop_assert_eq!(zset.scored_through(*score), Some(through));
                    let window: Vec<Vec<u8>> = zset
                        .by_rank(rank..rank + 2)
                        .unwrap()
                        .rev()
                        .map(|c| c.element().to_vec())
                        .collect();
                    let expected_window: Vec<Vec<u8>> =
                        expected[rank..(rank + 2).min(expected.len())]
                            .iter()
                            .rev()
                            .map(|(_, m)| m.clone())
                            .collect();
                    prop_assert_eq!(window, expected_window);
                }
                prop_assert_eq!(zset.scored_rank(b"absent"), None);
            }
        }
    }
}
