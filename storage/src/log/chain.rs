//! Collection chains: how the log keeps a collection written one element at a time.
//!
//! Writing a collection's whole encoding for every element write would cost the collection
//! per write, in time and in log bytes (a 10,000-field hash wrote 200 KB per `HSET`). So a
//! write of a collection whose current record is a collection of the same type appends a
//! **delta** (format docs): the new header and the changed cells. The key's state is a
//! **chain**: its links are the record the chain starts from (a full record, the *base*, or
//! a first delta over a record of another type) and the deltas after it, in log order;
//! replaying them (the first replaces, each delta merges) gives the state.
//!
//! The engine keeps, for the key's latest link when it is a delta, a [`Chain`] in that
//! link's segment ([`Segment::chains`]): the state, decoded, and every link's position.
//! `Inner::load` answers from it, so a read of a chained collection costs no decoding, and
//! an element write costs its cells (the persistent map shares the rest).
//!
//! What keeps a chain correct:
//! - **Liveness.** Every link is live (its bytes count in its segment's `live_bytes`) until
//!   the chain is replaced by a record that is not a delta; then all links are forgotten
//!   together ([`forget_links`]).
//! - **Re-basing.** A full record of the state, appended at the head of the log, replaces a
//!   chain: when its deltas outgrow its base ([`needs_base`]), when compaction meets one of
//!   its links (a link is never copied: a delta moved out of order would merge into the
//!   wrong state), and before a snapshot, for chains with links in sealed segments.
//! - **Recovery** replays records in log order: a delta merges into the key's current state
//!   and extends its chain; anything else replaces it as before.
//! - **Snapshots** cover only sealed segments older than every chain's first link, so a
//!   snapshot never names part of a chain (recovery scans the rest in order).

use std::sync::atomic::Ordering;

use crate::record::Record;

use super::format::RecordHeader;
use super::keydir::Entry;
use super::segment::{Segment, Segments};

/// Where a record is: segment id and offset.
pub(super) type Position = (u32, u32);

/// Deltas may add up to this many bytes, or the base's size if larger, before a write
/// re-bases the chain: a chain costs at most about twice its state in log bytes and in
/// recovery reading.
pub(super) const CHAIN_DELTA_BYTES_MIN: u64 = 64 * 1024;

/// Most links a chain has before a write re-bases it: bounds the positions kept per key
/// (8 bytes each; the byte bound above usually comes first, a delta being 60 bytes or more).
pub(super) const CHAIN_LINKS_MAX: usize = 1 << 20;

/// A key's chain, kept at its latest link.
#[derive(Debug, Clone)]
pub(super) struct Chain {
    /// The state the links replay to.
    pub record: Record,
    /// Every link, first to latest.
    pub links: Vec<Position>,
    /// Bytes of the first link when it is a full record (0 when it is a delta).
    pub base_bytes: u64,
    /// Bytes of the deltas.
    pub delta_bytes: u64,
    /// The segments the links are in, each once, oldest first (few: a chain is re-based
    /// before it spans much of the log).
    pub spans: Vec<u32>,
}

impl Chain {
    /// A chain of one full record at `at`.
    pub fn base(record: Record, at: Position, bytes: u64) -> Chain {
        Chain {
            record,
            links: vec![at],
            base_bytes: bytes,
            delta_bytes: 0,
            spans: vec![at.0],
        }
    }

    /// A chain that starts with the delta at `at` (recovery, when the record before it was
    /// of another type).
    pub fn from_delta(record: Record, at: Position, bytes: u64) -> Chain {
        Chain {
            delta_bytes: bytes,
            base_bytes: 0,
            ..Chain::base(record, at, 0)
        }
    }

    /// Extends the chain with the delta at `at`, whose state is `record`.
    pub fn push(&mut self, record: Record, at: Position, bytes: u64) {
        self.record = record;
        self.links.push(at);
        self.delta_bytes += bytes;
        if self.spans.last() != Some(&at.0) {
            self.spans.push(at.0);
        }
    }

    /// Whether the chain holds a delta: then no snapshot may cover any of its links, and
    /// compaction never moves one.
    pub fn has_deltas(&self) -> bool {
        self.delta_bytes > 0
    }

    /// Whether a link is in a segment being compacted: then a writer writes the state whole
    /// instead of extending the chain, so that compaction, which decided about the link
    /// earlier, never loses a link it did not see (see `compact.rs`).
    pub fn touches_compacting(&self, segments: &Segments) -> bool {
        self.spans.iter().any(|id| {
            segments
                .get(id)
                .is_some_and(|s| s.compacting.load(Ordering::Acquire))
        })
    }
}

/// The position of `entry`.
pub(super) fn position(entry: Entry) -> Position {
    (entry.segment, entry.offset() as u32)
}

/// The chain the key whose latest record `entry` is: its links, first to latest, with the
/// bytes of the first and of the rest. A full collection is a chain of one link; anything
/// else (a string, a tombstone, nothing readable) starts none (empty).
pub(super) fn links_of(segments: &Segments, entry: Entry) -> (Vec<Position>, u64, u64) {
    let Some(segment) = segments.get(&entry.segment) else {
        return (Vec::new(), 0, 0);
    };
    let Some(header) = segment.header_at(entry.offset()) else {
        return (Vec::new(), 0, 0);
    };
    if continues(&header)
        && let Some(chain) = segment.chains.lock().get(&(entry.offset() as u32))
    {
        return (chain.links.clone(), chain.base_bytes, chain.delta_bytes);
    }
    if header.kind().is_collection() && !header.is_tombstone() && !entry.reclaimed() {
        return (vec![position(entry)], header.bytes() as u64, 0);
    }
    (Vec::new(), 0, 0)
}

/// Whether the record at `at` is a link of the chain (or lone collection record) whose
/// latest record is `entry`: `None` when it is not (a dead record), else whether it is the
/// only link. Copies nothing and looks at the links only when the chain spans `at`'s
/// segment: compaction asks it of every collection record of a segment, and a copy of a
/// chain's links per record cost O(links²) for a list popped and pushed while compacted.
pub(super) fn holds_link(segments: &Segments, entry: Entry, at: Position) -> Option<bool> {
    let segment = segments.get(&entry.segment)?;
    let header = segment.header_at(entry.offset())?;
    if continues(&header)
        && let Some(chain) = segment.chains.lock().get(&(entry.offset() as u32))
    {
        let linked = chain.spans.contains(&at.0) && chain.links.contains(&at);
        return linked.then_some(chain.links.len() == 1);
    }
    if header.kind().is_collection() && !header.is_tombstone() && !entry.reclaimed() {
        return (position(entry) == at).then_some(true);
    }
    None
}

/// Takes the chain of the key whose latest record `entry` is out of the segment keeping it,
/// for a writer that extends it and keeps it again at its new latest link; `true` with it
/// when it was kept (to be put back if the write fails). A full collection kept as no
/// chain gives a chain of one link whose `record` is a placeholder (the writer has the
/// state). `None` when the record starts no chain (see [`links_of`]).
pub(super) fn take(segments: &Segments, entry: Entry) -> Option<(Chain, bool)> {
    let segment = segments.get(&entry.segment)?;
    let header = segment.header_at(entry.offset())?;
    if !continues(&header) || entry.reclaimed() {
        return None;
    }
    if let Some(kept) = segment.chains.lock().remove(&(entry.offset() as u32)) {
        return Some((kept, true));
    }
    let made_up = Chain::base(Record::default(), position(entry), header.bytes() as u64);
    Some((made_up, false))
}

/// Whether a chain with these figures should be re-based rather than grow.
pub(super) fn needs_base(links: usize, base_bytes: u64, delta_bytes: u64) -> bool {
    links >= CHAIN_LINKS_MAX || delta_bytes > base_bytes.max(CHAIN_DELTA_BYTES_MIN)
}

/// The decoded state kept at the delta at `offset` of `segment`, if the segment keeps one.
pub(super) fn state_at(segment: &Segment, offset: usize) -> Option<Record> {
    let chains = segment.chains.lock();
    Some(chains.get(&(offset as u32))?.record.clone())
}

/// Takes the decoded state kept with the chain whose latest record is `entry`, leaving an
/// empty record in its place until [`set_record`] puts one back or the chain is extended or
/// replaced: so that a writer holds the state once and edits it where it is (see
/// `LogStore::update_in_place`). `None` when no state is kept there.
pub(super) fn take_record(segments: &Segments, entry: Entry) -> Option<Record> {
    let segment = segments.get(&entry.segment)?;
    let mut chains = segment.chains.lock();
    let chain = chains.get_mut(&(entry.offset() as u32))?;
    Some(std::mem::take(&mut chain.record))
}

/// Puts `record` back as the state kept with the chain whose latest record is `entry` (after
/// [`take_record`]).
pub(super) fn set_record(segments: &Segments, entry: Entry, record: Record) {
    if let Some(segment) = segments.get(&entry.segment)
        && let Some(chain) = segment.chains.lock().get_mut(&(entry.offset() as u32))
    {
        chain.record = record;
    }
}

/// Takes every link of the chain ending at `latest` but `latest` itself out of its segment's
/// live bytes, and drops the chain kept there: the key's state no longer needs them.
/// (`latest` is forgotten by the caller, as any replaced record is.)
pub(super) fn forget_links(segments: &Segments, latest: Entry) {
    let Some(segment) = segments.get(&latest.segment) else {
        return;
    };
    let Some(chain) = segment.chains.lock().remove(&(latest.offset() as u32)) else {
        return;
    };
    forget_positions(segments, &chain.links, position(latest));
}

/// Takes the records at `links`, but `except`, out of their segments' live bytes.
pub(super) fn forget_positions(segments: &Segments, links: &[Position], except: Position) {
    for &(id, offset) in links {
        if (id, offset) == except {
            continue;
        }
        if let Some(link) = segments.get(&id)
            && let Some(header) = link.header_at(offset as usize)
        {
            let _ = link
                .live_bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(header.bytes() as u64))
                });
        }
    }
}

/// Whether the header is a link a chain can continue from: a full collection or a delta.
pub(super) fn continues(header: &RecordHeader) -> bool {
    header.kind().is_collection() && !header.is_tombstone()
}

/// Keeps `chain` at its latest link, in that link's segment.
pub(super) fn keep(segments: &Segments, chain: Chain) {
    let &(id, offset) = chain.links.last().expect("a chain has a link");
    if let Some(segment) = segments.get(&id) {
        segment.chains.lock().insert(offset, chain);
    }
}
