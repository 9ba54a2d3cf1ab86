//! The codec of the hint log format documented at the top of `hints.rs`: segment header, hint
//! record and cursor, and [`SegmentReader`], which walks a segment's records with a bounded
//! buffer and checks every length before allocating for it.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use bytes::Bytes;

use super::{HINT_KEY_BYTES_MAX, HINT_VALUE_BYTES_MAX, HintPosition};
use crate::log::format::{
    FLAG_EMPTY, FLAG_EXPIRY, FLAG_TOMBSTONE, KIND_MASK, RECORD_HEADER_BYTES, RECORD_MAGIC,
    RecordHeader, record_flags, u32_at, u64_at,
};
use crate::record::{Record, decoded};

/// The segment magic.
pub(super) const SEGMENT_MAGIC: [u8; 8] = *b"RINGHNT\0";
/// The cursor magic.
const CURSOR_MAGIC: [u8; 8] = *b"RINGHCUR";
/// The format version this code writes and reads.
pub(super) const FORMAT_VERSION: u32 = 1;

/// Bytes of the segment header; records start right after it.
pub(super) const SEGMENT_HEADER_BYTES: u64 = 48;
const _: () = assert!(SEGMENT_HEADER_BYTES == 8 + 4 + 4 + 8 + 8 + 12 + 4);

/// Bytes of a hint record before its key: a log record header, then `stored_ms`.
pub(super) const HINT_HEADER_BYTES: usize = 56;
const _: () = assert!(HINT_HEADER_BYTES == RECORD_HEADER_BYTES + 8);

/// Bytes of the cursor file.
pub(super) const CURSOR_BYTES: usize = 40;
const _: () = assert!(CURSOR_BYTES == 8 + 4 + 4 + 8 + 8 + 4 + 4);

/// Buffer of a [`SegmentReader`]: large enough that walking small hints' headers costs few
/// reads, small enough to keep one per reader.
const READ_BUFFER_BYTES: usize = 64 * 1024;

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    out[at..at + bytes.len()].copy_from_slice(bytes);
}

/// The header bytes of segment `id` of `target`.
pub(super) fn encode_segment_header(id: u64, target: u64) -> [u8; SEGMENT_HEADER_BYTES as usize] {
    let mut out = [0u8; SEGMENT_HEADER_BYTES as usize];
    put(&mut out, 0, &SEGMENT_MAGIC);
    put(&mut out, 8, &FORMAT_VERSION.to_le_bytes());
    put(&mut out, 16, &id.to_le_bytes());
    put(&mut out, 24, &target.to_le_bytes());
    let crc = crc32c::crc32c(&out[..44]);
    put(&mut out, 44, &crc.to_le_bytes());
    out
}

/// Why a segment header is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderProblem {
    /// Short, wrong magic or checksum, or an id or target that does not match the file's
    /// place. Segments are created whole (renamed into place), so this is damage.
    Corrupt,
    /// A valid header of a format version this code does not know.
    FormatVersion(u32),
}

/// Checks the header at the start of `file` for segment `id` of `target`.
///
/// # Errors
/// What is wrong with it.
pub(super) fn check_segment_header(file: &[u8], id: u64, target: u64) -> Result<(), HeaderProblem> {
    let Some(bytes) = file.get(..SEGMENT_HEADER_BYTES as usize) else {
        return Err(HeaderProblem::Corrupt);
    };
    if bytes[..8] != SEGMENT_MAGIC || crc32c::crc32c(&bytes[..44]) != u32_at(bytes, 44) {
        return Err(HeaderProblem::Corrupt);
    }
    let format_version = u32_at(bytes, 8);
    if format_version != FORMAT_VERSION {
        return Err(HeaderProblem::FormatVersion(format_version));
    }
    if u64_at(bytes, 16) != id || u64_at(bytes, 24) != target {
        return Err(HeaderProblem::Corrupt);
    }
    Ok(())
}

/// The cursor file's bytes for `position`.
pub(super) fn encode_cursor(position: HintPosition) -> [u8; CURSOR_BYTES] {
    let mut out = [0u8; CURSOR_BYTES];
    put(&mut out, 0, &CURSOR_MAGIC);
    put(&mut out, 8, &FORMAT_VERSION.to_le_bytes());
    put(&mut out, 16, &position.segment.to_le_bytes());
    put(&mut out, 24, &position.offset.to_le_bytes());
    let crc = crc32c::crc32c(&out[..36]);
    put(&mut out, 36, &crc.to_le_bytes());
    out
}

/// The position in a cursor file; `None` when it is not a whole, intact cursor of this
/// format version (a cursor is cheap to lose: replay starts over).
pub(super) fn decode_cursor(bytes: &[u8]) -> Option<HintPosition> {
    let ok = bytes.len() == CURSOR_BYTES
        && bytes[..8] == CURSOR_MAGIC
        && u32_at(bytes, 8) == FORMAT_VERSION
        && crc32c::crc32c(&bytes[..36]) == u32_at(bytes, 36);
    ok.then(|| HintPosition {
        segment: u64_at(bytes, 16),
        offset: u64_at(bytes, 24),
    })
}

/// The checked fields of a hint record's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HintHeader {
    /// Bytes 0..48, as a log record header.
    pub fields: RecordHeader,
    /// When the coordinator kept the hint.
    pub stored_ms: u64,
    /// The crc stored in the record.
    crc: u32,
    /// The crc of header bytes 4..56, to be extended over key and value.
    header_crc: u32,
}

impl HintHeader {
    /// The header of a hint for `key` and `record`, its crc computed over key and value too
    /// so that neither needs copying next to it.
    ///
    /// # Panics
    /// If the key or value is longer than the limits (the caller checks first).
    pub fn encode(key: &[u8], record: &Record, stored_ms: u64) -> [u8; HINT_HEADER_BYTES] {
        let value = record.value_bytes();
        assert!(key.len() <= HINT_KEY_BYTES_MAX && value.len() <= HINT_VALUE_BYTES_MAX);
        let key_len = u32::try_from(key.len()).expect("key length checked");
        let value_len = u32::try_from(value.len()).expect("value length checked");
        let flags = record_flags(record);
        let mut out = [0u8; HINT_HEADER_BYTES];
        put(&mut out, 4, &key_len.to_le_bytes());
        put(&mut out, 8, &value_len.to_le_bytes());
        put(&mut out, 12, &flags.to_le_bytes());
        put(&mut out, 14, &RECORD_MAGIC.to_le_bytes());
        put(&mut out, 16, &record.value_version.hlc.to_le_bytes());
        put(&mut out, 24, &record.value_version.node.to_le_bytes());
        put(&mut out, 28, &record.expiry_version.node.to_le_bytes());
        put(&mut out, 32, &record.expiry_version.hlc.to_le_bytes());
        put(&mut out, 40, &record.expiry_ms.unwrap_or(0).to_le_bytes());
        put(&mut out, 48, &stored_ms.to_le_bytes());
        let crc = crc32c::crc32c(&out[4..]);
        let crc = crc32c::crc32c_append(crc32c::crc32c_append(crc, key), &value);
        put(&mut out, 0, &crc.to_le_bytes());
        out
    }

    /// Parses a header, checking everything but the crc (which needs key and value):
    /// magic, flags, and lengths within the limits. `None` when any is wrong.
    pub fn parse(bytes: &[u8; HINT_HEADER_BYTES]) -> Option<HintHeader> {
        let fields = RecordHeader::parse(bytes)?;
        let known_flags = FLAG_TOMBSTONE | FLAG_EXPIRY | FLAG_EMPTY | KIND_MASK;
        let ok = fields.flags & !known_flags == 0
            && (!fields.is_tombstone() || fields.value_len == 0)
            && fields.key_len as usize <= HINT_KEY_BYTES_MAX
            && fields.value_len as usize <= HINT_VALUE_BYTES_MAX;
        ok.then(|| HintHeader {
            fields,
            stored_ms: u64_at(bytes, 48),
            crc: u32_at(bytes, 0),
            header_crc: crc32c::crc32c(&bytes[4..]),
        })
    }

    /// Bytes of key and value.
    pub fn body_bytes(&self) -> u64 {
        u64::from(self.fields.key_len) + u64::from(self.fields.value_len)
    }

    /// Bytes of the whole record.
    pub fn bytes(&self) -> u64 {
        HINT_HEADER_BYTES as u64 + self.body_bytes()
    }

    /// The record, given its key and value as read.
    fn record(&self, value: Bytes) -> Record {
        Record {
            kind: self.fields.kind(),
            value: (!self.fields.is_tombstone()).then(|| decoded(self.fields.kind(), value)),
            value_version: self.fields.value_version,
            expiry_ms: self.fields.expiry_ms,
            expiry_version: self.fields.expiry_version,
        }
    }
}

/// What [`SegmentReader::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// The end of the data: every record before it was whole.
    End,
    /// A record that does not fit before the end: a write torn by a crash.
    Torn,
    /// A header that fails its checks.
    Damaged,
    /// A record whose header is sound; read or skip its body next.
    Hint(HintHeader),
}

/// Walks the records of a segment from a record boundary up to `len` (the end of the data
/// known to be written), through a bounded buffer. Every length is checked against `len`
/// and the limits before anything is read or allocated for it.
pub(super) struct SegmentReader {
    file: BufReader<File>,
    offset: u64,
    len: u64,
}

impl SegmentReader {
    /// A reader of the segment at `path`, at record boundary `offset`.
    ///
    /// # Errors
    /// An I/O error (`NotFound` when the segment was deleted).
    pub fn open(path: &Path, offset: u64, len: u64) -> io::Result<SegmentReader> {
        let mut file = BufReader::with_capacity(READ_BUFFER_BYTES, File::open(path)?);
        file.seek(SeekFrom::Start(offset))?;
        Ok(SegmentReader { file, offset, len })
    }

    /// Where the reader is: a record boundary after [`SegmentReader::skip_body`] or
    /// [`SegmentReader::read_body`] (the position of the hint just passed).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next record's header. On anything but [`Step::Hint`] the reader stays at
    /// the start of that record.
    ///
    /// # Errors
    /// An I/O error.
    pub fn next(&mut self) -> io::Result<Step> {
        let left = self.len.saturating_sub(self.offset);
        if left == 0 {
            return Ok(Step::End);
        }
        if left < HINT_HEADER_BYTES as u64 {
            return Ok(Step::Torn);
        }
        let mut bytes = [0u8; HINT_HEADER_BYTES];
        self.file.read_exact(&mut bytes)?;
        let step = match HintHeader::parse(&bytes) {
            None => Step::Damaged,
            Some(header) if header.bytes() > left => Step::Torn,
            Some(header) => Step::Hint(header),
        };
        if let Step::Hint(_) = step {
            self.offset += HINT_HEADER_BYTES as u64;
        } else {
            self.file.seek_relative(-(HINT_HEADER_BYTES as i64))?;
        }
        Ok(step)
    }

    /// Moves past the key and value of `header` without reading them.
    ///
    /// # Errors
    /// An I/O error.
    pub fn skip_body(&mut self, header: &HintHeader) -> io::Result<()> {
        let body = header.body_bytes();
        let body_i64 = i64::try_from(body).map_err(io::Error::other)?;
        self.file.seek_relative(body_i64)?;
        self.offset += body;
        Ok(())
    }

    /// Reads the key and value of `header` and checks the record's crc; `None` when it
    /// fails. Allocates exactly the lengths, which [`HintHeader::parse`] bounded.
    ///
    /// # Errors
    /// An I/O error.
    pub fn read_body(&mut self, header: &HintHeader) -> io::Result<Option<(Bytes, Record)>> {
        let mut key = vec![0u8; header.fields.key_len as usize];
        let mut value = vec![0u8; header.fields.value_len as usize];
        self.file.read_exact(&mut key)?;
        self.file.read_exact(&mut value)?;
        self.offset += header.body_bytes();
        let crc = crc32c::crc32c_append(crc32c::crc32c_append(header.header_crc, &key), &value);
        Ok((crc == header.crc).then(|| (Bytes::from(key), header.record(Bytes::from(value)))))
    }

    /// Checks the crc of the record of `header` by streaming its key and value through
    /// `scratch`, so that checking a large value allocates nothing.
    ///
    /// # Errors
    /// An I/O error.
    pub fn check_body(&mut self, header: &HintHeader, scratch: &mut [u8]) -> io::Result<bool> {
        assert!(!scratch.is_empty(), "a scratch buffer to stream through");
        let mut crc = header.header_crc;
        let mut left = header.body_bytes();
        while left > 0 {
            let chunk = usize::try_from(left).map_or(scratch.len(), |l| l.min(scratch.len()));
            self.file.read_exact(&mut scratch[..chunk])?;
            crc = crc32c::crc32c_append(crc, &scratch[..chunk]);
            left -= chunk as u64;
        }
        self.offset += header.body_bytes();
        Ok(crc == header.crc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Version;

    #[test]
    fn a_hint_header_round_trips_and_carries_stored_ms() {
        let record = Record {
            kind: Default::default(),
            value: Some(crate::record::Value::Bytes(Bytes::from_static(b"value"))),
            value_version: Version { hlc: 7, node: 3 },
            expiry_ms: Some(99),
            expiry_version: Version { hlc: 8, node: 4 },
        };
        let bytes = HintHeader::encode(b"key", &record, 1234);
        let header = HintHeader::parse(&bytes).expect("parses");
        assert_eq!(header.stored_ms, 1234);
        assert_eq!((header.fields.key_len, header.fields.value_len), (3, 5));
        assert_eq!(header.fields.expiry_ms, Some(99));
        assert_eq!(header.record(Bytes::from_static(b"value")), record);
    }

    #[test]
    fn a_header_with_a_length_past_the_limits_is_damaged() {
        let mut bytes = HintHeader::encode(b"k", &Record::tombstone(Version::ZERO), 0);
        put(&mut bytes, 4, &u32::MAX.to_le_bytes());
        assert_eq!(HintHeader::parse(&bytes), None);
    }

    #[test]
    fn a_tombstone_with_a_value_length_or_an_evicted_flag_is_damaged() {
        let bytes = HintHeader::encode(b"k", &Record::tombstone(Version::ZERO), 0);
        let mut with_value = bytes;
        put(&mut with_value, 8, &1u32.to_le_bytes());
        assert_eq!(HintHeader::parse(&with_value), None);
        let mut evicted = bytes;
        put(&mut evicted, 12, &(FLAG_TOMBSTONE | 4).to_le_bytes());
        assert_eq!(HintHeader::parse(&evicted), None);
    }

    #[test]
    fn a_segment_header_checks_id_target_and_format_version() {
        let mut bytes = encode_segment_header(5, 9).to_vec();
        assert_eq!(check_segment_header(&bytes, 5, 9), Ok(()));
        assert_eq!(
            check_segment_header(&bytes, 6, 9),
            Err(HeaderProblem::Corrupt)
        );
        assert_eq!(
            check_segment_header(&bytes, 5, 8),
            Err(HeaderProblem::Corrupt)
        );
        assert_eq!(
            check_segment_header(&bytes[..47], 5, 9),
            Err(HeaderProblem::Corrupt)
        );
        bytes[8] = 2;
        let crc = crc32c::crc32c(&bytes[..44]);
        bytes[44..48].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            check_segment_header(&bytes, 5, 9),
            Err(HeaderProblem::FormatVersion(2))
        );
    }

    #[test]
    fn a_cursor_round_trips_and_a_flipped_bit_loses_it() {
        let position = HintPosition {
            segment: 3,
            offset: 4096,
        };
        let bytes = encode_cursor(position);
        assert_eq!(decode_cursor(&bytes), Some(position));
        for byte in 0..CURSOR_BYTES {
            let mut copy = bytes;
            copy[byte] ^= 0x01;
            assert_eq!(decode_cursor(&copy), None, "byte {byte}");
        }
        assert_eq!(decode_cursor(&bytes[..39]), None);
    }
}
