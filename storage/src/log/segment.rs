//! A segment as the engine holds it: the file, its read-only map, how far it is written and
//! how much of it the keydir still references; and the segment files' names.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::record::Record;

use super::backend::SegmentFile;
use super::chain::Chain;
use super::format::{self, HEADER_BYTES, RecordHeader};

/// One segment file: its map, how far it is written, and how much of it is live.
pub(super) struct Segment {
    pub id: u32,
    pub seq: u64,
    pub file: Arc<dyn SegmentFile>,
    /// The whole file, mapped read-only.
    pub map: Bytes,
    /// End of the appended records, published with Release after the pwrite.
    pub end: AtomicUsize,
    /// Bytes of records the keydir references, plus tombstones kept on disk.
    pub live_bytes: AtomicU64,
    /// No more appends; only sealed segments are compacted or snapshotted.
    pub sealed: AtomicBool,
    /// Every byte appended is durable.
    pub synced: AtomicBool,
    /// Compaction is deciding about its records: writers write a chain whole rather than
    /// extend one with a link here (see `Chain::touches_compacting`).
    pub compacting: AtomicBool,
    /// The chains whose latest link is a delta in this segment, by that link's offset (see
    /// `chain.rs`).
    pub chains: Mutex<HashMap<u32, Chain>>,
}

impl Segment {
    pub fn new(id: u32, seq: u64, file: Arc<dyn SegmentFile>, map: Bytes, end: usize) -> Segment {
        Segment {
            id,
            seq,
            file,
            map,
            end: AtomicUsize::new(end),
            live_bytes: AtomicU64::new(0),
            sealed: AtomicBool::new(false),
            synced: AtomicBool::new(false),
            compacting: AtomicBool::new(false),
            chains: Mutex::default(),
        }
    }

    /// Bytes of records written in it.
    pub fn written_bytes(&self) -> u64 {
        (self
            .end
            .load(Ordering::Acquire)
            .saturating_sub(HEADER_BYTES)) as u64
    }

    /// The header of the record at `offset`, if one can be read there.
    pub fn header_at(&self, offset: usize) -> Option<RecordHeader> {
        RecordHeader::parse(self.map.get(offset..)?)
    }

    /// The record at `offset` as its Merkle digest reads it: the versions of a string (no
    /// copy), a collection's value too (its digest covers its cells). `None` if no record
    /// can be read there.
    pub fn merkle_record(&self, offset: usize) -> Option<Record> {
        let header = self.header_at(offset)?;
        if super::chain::continues(&header)
            && let Some(state) = super::chain::state_at(self, offset)
        {
            return Some(state);
        }
        if header.kind().digests_value() && !header.is_tombstone() {
            let end = offset + header.unpadded_bytes();
            if end <= self.map.len() {
                return Some(format::read_record(&self.map, offset, &header).1);
            }
        }
        Some(header.record_without_value())
    }

    /// The key of the record at `offset` (empty if none can be read there).
    pub fn key_at(&self, offset: usize) -> &[u8] {
        let Some(header) = self.header_at(offset) else {
            return &[];
        };
        let at = offset + format::RECORD_HEADER_BYTES;
        self.map
            .get(at..at + header.key_len as usize)
            .unwrap_or_default()
    }
}

/// The file name of segment `id`.
pub(super) fn segment_name(id: u32) -> String {
    format!("{id:08x}.seg")
}

/// The id of the segment a file name names ([`segment_name`]); `None` for other files.
pub(super) fn parse_segment_name(name: &str) -> Option<u32> {
    let hex = name.strip_suffix(".seg")?;
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// The segment table: every segment in use, by id.
pub(super) type Segments = HashMap<u32, Arc<Segment>>;
