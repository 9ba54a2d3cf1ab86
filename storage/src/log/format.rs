//! The on-disk format of segments and records (format_version 1).
//!
//! A store is a directory of segment files named `NNNNNNNN.seg` (the segment id, 8 lowercase
//! hex digits) plus an optional keydir snapshot `keydir.snap` (format in `snapshot.rs`).
//! Every integer is little-endian.
//!
//! # Segment
//!
//! A segment file has a fixed size, allocated up front (`posix_fallocate`), so that a full disk
//! fails when the segment is created and the memory map never has to grow. It starts with a
//! 64-byte header:
//!
//! ```text
//! offset size field
//!      0    8 magic             b"RINGSEG\0"
//!      8    4 format_version    1
//!     12    4 reserved          0
//!     16    8 segment id        the number in the file name
//!     24    8 seq               age order of the data: id << 32 for a segment the writer
//!                               filled, the input's seq + 1 for a compaction output
//!     32    8 segment_bytes     the file size at creation
//!     40   20 reserved          0
//!     60    4 crc32c            of bytes 0..60
//! ```
//!
//! Records follow from offset 64, each starting at a multiple of 8. The bytes after the last
//! record are zero (the file was allocated zeroed, and recovery zeroes a torn tail).
//!
//! # Record
//!
//! ```text
//! offset size field
//!      0    4 crc32c            of bytes 4..48+key_len+value_len
//!      4    4 key_len
//!      8    4 value_len         0 for a tombstone
//!     12    2 flags             bit 0: tombstone (no value), bit 1: has expiry,
//!                               bit 2: evicted (with bit 0; see below), bit 3: an
//!                               emptied collection, bit 4: a collection delta (below),
//!                               bits 8..12: the value's type
//!     14    2 record magic      0x5243 ("RC"), to find the next record after corruption
//!     16    8 value version hlc
//!     24    4 value version node
//!     28    4 expiry version node
//!     32    8 expiry version hlc
//!     40    8 expiry_ms         absolute unix ms, 0 when bit 1 of flags is clear
//!     48    . key, then value, then zero padding to a multiple of 8
//! ```
//!
//! A record holds a key's whole state (both cells and their versions), so the newest record
//! of a key by version is the key's state (compaction moves old records into newer files).
//!
//! A **delta** record (flags bit 4) is the exception: a collection's header (versions,
//! expiry, type and emptiness as the whole collection has them) with only the cells one
//! write changed (a forgotten element as a removed cell) and the clear version. A key's
//! state is then a *chain*: the record before the first delta, merged with each delta in
//! log order. See `chain.rs` for how the store keeps, compacts and snapshots chains.
//!
//! An **evicted** record (flags bit 2, with bit 0) says "this node evicted (or discarded,
//! when the key's range moved away) the key's record with exactly these versions" (the
//! evicted record's header without its value). It is not a delete: it removes the key's
//! state if that state is no newer than its versions, and only records that came before it
//! in the log (by segment seq, then offset). A record written after it, of any version, is
//! not touched by it, and one with newer versions wins over it anyway. Recovery reads
//! segments in that order, so this needs no extra state.
//!
//! # What is assumed of the disk
//!
//! - A write that was not followed by a successful `fdatasync` may be lost, partly written,
//!   or torn at any byte (sectors of one write may land in any subset).
//! - Data that `fdatasync` reported as written survives power loss, and a directory entry
//!   survives after the directory was fsynced.
//! - The disk may corrupt data, but not undetectably: a flipped bit fails the crc32c of its
//!   record (or of the segment header). Recovery skips and counts such records.
//! - Unwritten parts of an allocated file read as zeros.

use bytes::Bytes;

use crate::collection::Collection;
use crate::record::{DataType, Record, Version, decoded};

/// Bytes of the segment header.
pub const HEADER_BYTES: usize = 64;
const _: () = assert!(HEADER_BYTES == 60 + 4);

/// Bytes of a record header, before the key.
pub const RECORD_HEADER_BYTES: usize = 48;
const _: () = assert!(RECORD_HEADER_BYTES == 4 + 4 + 4 + 2 + 2 + 8 + 4 + 4 + 8 + 8);

/// Records start at multiples of this.
pub const RECORD_ALIGN: usize = 8;
const _: () = assert!(HEADER_BYTES.is_multiple_of(RECORD_ALIGN));

/// The segment magic.
pub const SEGMENT_MAGIC: [u8; 8] = *b"RINGSEG\0";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The record magic at offset 14 of every record.
pub const RECORD_MAGIC: u16 = 0x5243;

/// Flag: the record is a tombstone.
pub const FLAG_TOMBSTONE: u16 = 1;
/// Flag: the record has an expiry.
pub const FLAG_EXPIRY: u16 = 2;
/// Flag: the record marks an eviction of the record with its versions (always with
/// [`FLAG_TOMBSTONE`]: it carries no value).
pub const FLAG_EVICTED: u16 = 4;
/// Flag: the value is a collection with no live element, which counts as no key (see
/// [`Record::holds_value`]); kept in the header so that counting reads no value.
pub const FLAG_EMPTY: u16 = 8;
/// Flag: the value is a collection delta: merged into the key's state, not replacing it
/// (see the module docs).
pub const FLAG_DELTA: u16 = 16;
/// Where the value's [`DataType`] number sits in the flags (bits 8..12; 0 is a string, so
/// records written before collections existed read unchanged).
pub const KIND_SHIFT: u16 = 8;
/// The bits of the flags that hold the [`DataType`].
pub const KIND_MASK: u16 = 0x0f00;

/// The flags that say what a record holds: tombstone, expiry, empty, type.
pub fn record_flags(record: &Record) -> u16 {
    let mut flags = u16::from(record.kind.number()) << KIND_SHIFT;
    if record.value.is_none() {
        flags |= FLAG_TOMBSTONE;
    } else if !record.holds_value() {
        flags |= FLAG_EMPTY;
    }
    if record.expiry_ms.is_some() {
        flags |= FLAG_EXPIRY;
    }
    flags
}

/// A parsed segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment id.
    pub id: u32,
    /// The age order of the data in it.
    pub seq: u64,
    /// The file size at creation.
    pub segment_bytes: u64,
}

/// Why a segment header is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Shorter than [`HEADER_BYTES`].
    Short,
    /// Wrong magic, wrong checksum or an id that does not match the file name.
    Corrupt,
    /// A valid header of a format version this code does not know.
    FormatVersion(u32),
}

/// The header bytes of a segment.
pub fn encode_header(header: &SegmentHeader) -> [u8; HEADER_BYTES] {
    let mut out = [0u8; HEADER_BYTES];
    out[0..8].copy_from_slice(&SEGMENT_MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&u64::from(header.id).to_le_bytes());
    out[24..32].copy_from_slice(&header.seq.to_le_bytes());
    out[32..40].copy_from_slice(&header.segment_bytes.to_le_bytes());
    let crc = crc32c::crc32c(&out[..60]);
    out[60..64].copy_from_slice(&crc.to_le_bytes());
    out
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Parses the header at the start of `file`, expecting segment `id`.
///
/// # Errors
/// What is wrong with it.
pub fn decode_header(file: &[u8], id: u32) -> Result<SegmentHeader, HeaderProblem> {
    if file.len() < HEADER_BYTES {
        return Err(HeaderProblem::Short);
    }
    let bytes = &file[..HEADER_BYTES];
    if bytes[0..8] != SEGMENT_MAGIC || crc32c::crc32c(&bytes[..60]) != u32_at(bytes, 60) {
        return Err(HeaderProblem::Corrupt);
    }
    let format_version = u32_at(bytes, 8);
    if format_version != FORMAT_VERSION {
        return Err(HeaderProblem::FormatVersion(format_version));
    }
    if u64_at(bytes, 16) != u64::from(id) {
        return Err(HeaderProblem::Corrupt);
    }
    Ok(SegmentHeader {
        id,
        seq: u64_at(bytes, 24),
        segment_bytes: u64_at(bytes, 32),
    })
}

/// Rounds `n` up to a multiple of [`RECORD_ALIGN`].
pub fn align_up(n: usize) -> usize {
    n.div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// The aligned size of a record with these lengths.
pub fn record_bytes(key_len: usize, value_len: usize) -> usize {
    align_up(RECORD_HEADER_BYTES + key_len + value_len)
}

/// Encodes `key` and `record` into `out` (cleared first), padded to [`RECORD_ALIGN`].
///
/// # Panics
/// If the key or value is 4 GiB or larger (the store checks before).
pub fn encode_record(key: &[u8], record: &Record, out: &mut Vec<u8>) {
    encode_with(key, record, record.value_bytes(), 0, out);
}

/// Encodes the delta record of `key` (see the module docs): the header of `state`, the
/// collection the key holds after the write, with the cells of `delta` as its value.
///
/// # Panics
/// As [`encode_record`].
pub fn encode_delta(key: &[u8], state: &Record, delta: &Collection, out: &mut Vec<u8>) {
    encode_with(key, state, delta.encode(), FLAG_DELTA, out);
}

/// Encodes `key` and `record`'s header with `value` as the value and `extra` flags.
fn encode_with(key: &[u8], record: &Record, value: Bytes, extra: u16, out: &mut Vec<u8>) {
    let key_len = u32::try_from(key.len()).expect("key length checked by the store");
    let value_len = u32::try_from(value.len()).expect("value length checked by the store");
    let flags = record_flags(record) | extra;
    out.clear();
    out.reserve(record_bytes(key.len(), value.len()));
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(&value_len.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    out.extend_from_slice(&record.value_version.hlc.to_le_bytes());
    out.extend_from_slice(&record.value_version.node.to_le_bytes());
    out.extend_from_slice(&record.expiry_version.node.to_le_bytes());
    out.extend_from_slice(&record.expiry_version.hlc.to_le_bytes());
    out.extend_from_slice(&record.expiry_ms.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&value);
    let crc = crc32c::crc32c(&out[4..]);
    out[0..4].copy_from_slice(&crc.to_le_bytes());
    out.resize(align_up(out.len()), 0);
}

/// Encodes the evicted record of `key` whose state `evicted` was (its value is not kept)
/// into `out` (cleared first).
///
/// # Panics
/// If the key is 4 GiB or larger (the store checks before).
pub fn encode_evicted(key: &[u8], evicted: &Record, out: &mut Vec<u8>) {
    let marker = Record {
        value: None,
        ..evicted.clone()
    };
    encode_record(key, &marker, out);
    let flags = u16_at(out, 12) | FLAG_EVICTED;
    out[12..14].copy_from_slice(&flags.to_le_bytes());
    let end = RECORD_HEADER_BYTES + key.len();
    let crc = crc32c::crc32c(&out[4..end]);
    out[0..4].copy_from_slice(&crc.to_le_bytes());
}

/// The fields of a record header, read from a map without copying the key or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Bytes of key.
    pub key_len: u32,
    /// Bytes of value.
    pub value_len: u32,
    /// Flags.
    pub flags: u16,
    /// Version of the value cell.
    pub value_version: Version,
    /// Version of the expiry cell.
    pub expiry_version: Version,
    /// Expiry, when [`FLAG_EXPIRY`] is set.
    pub expiry_ms: Option<u64>,
}

impl RecordHeader {
    /// Parses the header at the start of `bytes`, without checking the crc; `None` when
    /// `bytes` is too short or the magic is wrong.
    pub fn parse(bytes: &[u8]) -> Option<RecordHeader> {
        if bytes.len() < RECORD_HEADER_BYTES || u16_at(bytes, 14) != RECORD_MAGIC {
            return None;
        }
        let flags = u16_at(bytes, 12);
        Some(RecordHeader {
            key_len: u32_at(bytes, 4),
            value_len: u32_at(bytes, 8),
            flags,
            value_version: Version {
                hlc: u64_at(bytes, 16),
                node: u32_at(bytes, 24),
            },
            expiry_version: Version {
                hlc: u64_at(bytes, 32),
                node: u32_at(bytes, 28),
            },
            expiry_ms: (flags & FLAG_EXPIRY != 0).then(|| u64_at(bytes, 40)),
        })
    }

    /// Whether the record is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.flags & FLAG_TOMBSTONE != 0
    }

    /// Whether the record counts as no key: a tombstone or an empty collection.
    pub fn is_keyless(&self) -> bool {
        self.flags & (FLAG_TOMBSTONE | FLAG_EMPTY) != 0
    }

    /// The value's type (a string for a number no type has: the crc passed, so it is a
    /// newer format's, read as the bytes it is).
    pub fn kind(&self) -> DataType {
        DataType::from_number(((self.flags & KIND_MASK) >> KIND_SHIFT) as u8).unwrap_or_default()
    }

    /// The record without its value: all that a string's Merkle digest reads.
    pub fn record_without_value(&self) -> Record {
        Record {
            kind: self.kind(),
            value: None,
            value_version: self.value_version,
            expiry_ms: self.expiry_ms,
            expiry_version: self.expiry_version,
        }
    }

    /// Whether the record is a collection delta (see the module docs).
    pub fn is_delta(&self) -> bool {
        self.flags & FLAG_DELTA != 0
    }

    /// Whether the record marks an eviction (see the module docs).
    pub fn is_evicted(&self) -> bool {
        self.flags & FLAG_EVICTED != 0
    }

    /// Bytes of header, key and value, unpadded.
    pub fn unpadded_bytes(&self) -> usize {
        RECORD_HEADER_BYTES + self.key_len as usize + self.value_len as usize
    }

    /// Bytes the record takes in the segment, padding included.
    pub fn bytes(&self) -> usize {
        align_up(self.unpadded_bytes())
    }

    /// The versions as one ordering key: the newer of two records of one key is the one
    /// with the greater pair (cells only ever move forward together in this store).
    pub fn versions(&self) -> (Version, Version) {
        (self.value_version, self.expiry_version)
    }
}

/// Parses and checks the record at `at` in `segment`, where valid data ends at `end`.
/// Returns its header when the magic, the lengths (bounded by `end`, so a garbage length
/// never reads out of bounds) and the crc are all right.
pub fn check_record(segment: &[u8], at: usize, end: usize) -> Option<RecordHeader> {
    let end = end.min(segment.len());
    let header = RecordHeader::parse(segment.get(at..end)?)?;
    let stop = at.checked_add(header.unpadded_bytes())?;
    if stop > end
        || (header.is_tombstone() && header.value_len != 0)
        || (header.is_evicted() && !header.is_tombstone())
        || (header.is_delta() && (header.is_tombstone() || !header.kind().is_collection()))
    {
        return None;
    }
    let crc = u32_at(segment, at);
    (crc32c::crc32c(&segment[at + 4..stop]) == crc).then_some(header)
}

/// The record at `at` of a mapped segment whose header was already checked: zero-copy
/// slices of the map for key and value.
pub fn read_record(map: &Bytes, at: usize, header: &RecordHeader) -> (Bytes, Record) {
    let key_at = at + RECORD_HEADER_BYTES;
    let value_at = key_at + header.key_len as usize;
    let key = map.slice(key_at..value_at);
    let value = (!header.is_tombstone()).then(|| {
        decoded(
            header.kind(),
            map.slice(value_at..value_at + header.value_len as usize),
        )
    });
    (
        key,
        Record {
            kind: header.kind(),
            value,
            value_version: header.value_version,
            expiry_ms: header.expiry_ms,
            expiry_version: header.expiry_version,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_its_check_value() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn a_record_round_trips_through_its_encoding() {
        let record = Record {
            kind: Default::default(),
            value: Some(crate::record::Value::Bytes(Bytes::from_static(b"value"))),
            value_version: Version { hlc: 7, node: 3 },
            expiry_ms: Some(99),
            expiry_version: Version { hlc: 8, node: 4 },
        };
        let mut out = Vec::new();
        encode_record(b"key", &record, &mut out);
        assert_eq!(out.len() % RECORD_ALIGN, 0);
        let map = Bytes::from(out);
        let header = check_record(&map, 0, map.len()).unwrap();
        let (key, decoded) = read_record(&map, 0, &header);
        assert_eq!((&key[..], decoded), (&b"key"[..], record));
    }

    #[test]
    fn an_evicted_record_keeps_the_versions_and_drops_the_value() {
        let record = Record {
            kind: Default::default(),
            value: Some(crate::record::Value::Bytes(Bytes::from_static(b"value"))),
            value_version: Version { hlc: 7, node: 3 },
            expiry_ms: Some(99),
            expiry_version: Version { hlc: 8, node: 4 },
        };
        let mut out = Vec::new();
        encode_evicted(b"key", &record, &mut out);
        let map = Bytes::from(out);
        let header = check_record(&map, 0, map.len()).unwrap();
        assert!(header.is_evicted() && header.is_tombstone());
        assert_eq!(
            header.versions(),
            (record.value_version, record.expiry_version)
        );
        assert_eq!(header.expiry_ms, Some(99));
        assert_eq!(header.value_len, 0);
    }

    #[test]
    fn a_flipped_bit_anywhere_fails_the_record_check() {
        let mut out = Vec::new();
        encode_record(
            b"k",
            &Record::tombstone(Version { hlc: 1, node: 1 }),
            &mut out,
        );
        let len = RECORD_HEADER_BYTES + 1;
        for byte in 0..len {
            let mut copy = out.clone();
            copy[byte] ^= 0x10;
            assert!(check_record(&copy, 0, copy.len()).is_none(), "byte {byte}");
        }
    }

    #[test]
    fn a_garbage_length_is_bounded_by_the_end_of_data() {
        let mut out = Vec::new();
        encode_record(b"k", &Record::tombstone(Version::ZERO), &mut out);
        out[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(check_record(&out, 0, out.len()).is_none());
        assert!(check_record(&out, out.len() - 1, usize::MAX).is_none());
    }

    #[test]
    fn a_header_round_trips_and_rejects_a_wrong_id_or_version() {
        let header = SegmentHeader {
            id: 5,
            seq: 5 << 32,
            segment_bytes: 4096,
        };
        let mut bytes = encode_header(&header).to_vec();
        assert_eq!(decode_header(&bytes, 5), Ok(header));
        assert_eq!(decode_header(&bytes, 6), Err(HeaderProblem::Corrupt));
        assert_eq!(decode_header(&bytes[..10], 5), Err(HeaderProblem::Short));
        bytes[8] = 2;
        let crc = crc32c::crc32c(&bytes[..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_header(&bytes, 5),
            Err(HeaderProblem::FormatVersion(2))
        );
    }
}
