//! One target's hint log: its segments, its cursor, recovery at open, and the bookkeeping of
//! appends and acknowledgements.
//!
//! Counting pending hints exactly needs, at an acknowledgement, the number of hints of the
//! cursor's segment at or before the cursor. A segment's hint count is kept in memory; the
//! hints before a position inside a segment are counted by walking the segment's headers
//! from the previous cursor (at most one batch's worth, through the page cache), unless the
//! position ends the segment.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::format::{
    self, CURSOR_BYTES, FORMAT_VERSION, HINT_HEADER_BYTES, HeaderProblem, SEGMENT_HEADER_BYTES,
    SegmentReader, Step,
};
use super::{HintError, HintOptions, HintPosition, HintRecovery, TargetHintStats};

const CURSOR_NAME: &str = "cursor";
const CURSOR_TMP: &str = "cursor.tmp";
/// Buffer through which open streams each record to check its crc, whatever its size.
const SCAN_BUFFER_BYTES: usize = 64 * 1024;

/// One target's log: its state, and a lock that orders acknowledgements.
pub(super) struct Target {
    /// Serialises [`Target::acknowledge`] and [`Target::forget`], the only operations that
    /// move the cursor or delete files: they write the cursor and walk segments with
    /// `state` unlocked, so that appends go on meanwhile.
    ack: Mutex<()>,
    /// The bookkeeping; held for in-memory work and for the append itself.
    pub state: Mutex<TargetState>,
}

impl Target {
    pub fn new(state: TargetState) -> Target {
        Target {
            ack: Mutex::new(()),
            state: Mutex::new(state),
        }
    }

    /// See [`super::Hints::acknowledge`].
    pub fn acknowledge(&self, upto: HintPosition) -> Result<(), HintError> {
        let _ordered = self.ack.lock();
        let Some(plan) = self.state.lock().ack_plan(upto)? else {
            return Ok(());
        };
        let ordinal = plan.ordinal(upto)?;
        write_cursor(&plan.dir, upto).map_err(HintError::io(
            "writing the hint cursor, nothing was acknowledged",
        ))?;
        let delivered = self.state.lock().apply_ack(upto, ordinal)?;
        remove_delivered(&delivered)
    }

    /// fdatasyncs the open segment if it has unsynced hints; never retries a failed one.
    pub fn sync(&self) -> Result<(), HintError> {
        let writer = {
            let mut state = self.state.lock();
            if state.poisoned.is_some() || !state.dirty {
                return Ok(());
            }
            state.dirty = false;
            state.writer.clone()
        };
        let Some(writer) = writer else {
            return Ok(());
        };
        writer.sync_data().map_err(|source| {
            let mut state = self.state.lock();
            state.poison(format!("fsync of a hint segment failed: {source}"));
            HintError::Io {
                doing: format!(
                    "syncing the hints for node {:016x}; the last second of them may be lost",
                    state.target
                ),
                source,
            }
        })
    }

    /// See [`super::Hints::forget`].
    pub fn forget(&self) -> Result<(), HintError> {
        let _ordered = self.ack.lock();
        self.state.lock().forget()
    }
}

/// A segment of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    id: u64,
    /// Bytes written (header included); records end exactly here.
    len: u64,
    /// Hints in the segment, delivered ones included.
    hints: u64,
}

/// A segment to read for a batch, captured under the lock and read without it.
pub(super) struct PlannedSegment {
    pub id: u64,
    pub path: PathBuf,
    /// The record boundary to start at.
    pub start: u64,
    /// The end of the data written when the plan was made.
    pub len: u64,
}

/// What a batch reads, in order.
pub(super) struct ReadPlan {
    pub segments: Vec<PlannedSegment>,
}

/// What an acknowledgement needs from the state to count the hints it delivers.
struct AckPlan {
    dir: PathBuf,
    target: u64,
    ordinal: Ordinal,
}

/// The number of hints of the acknowledged position's segment at or before it.
enum Ordinal {
    /// Known without reading: the position ends the segment.
    Known(u64),
    /// Counted by walking from `start`, a boundary with `before` hints before it.
    Walk {
        path: PathBuf,
        start: u64,
        before: u64,
        len: u64,
    },
}

impl AckPlan {
    fn ordinal(&self, upto: HintPosition) -> Result<u64, HintError> {
        let (path, start, before, len) = match &self.ordinal {
            Ordinal::Known(ordinal) => return Ok(*ordinal),
            Ordinal::Walk {
                path,
                start,
                before,
                len,
            } => (path, *start, *before, *len),
        };
        let walked = walk_to(path, start, before, len, upto.offset).map_err(HintError::io(
            "counting acknowledged hints, nothing was acknowledged",
        ))?;
        walked.ok_or(HintError::Position {
            target: self.target,
            position: upto,
        })
    }
}

/// Counts the hints from boundary `start` (`before` hints before it) to `to`; `None` when
/// `to` is not a record boundary.
fn walk_to(path: &Path, start: u64, before: u64, len: u64, to: u64) -> io::Result<Option<u64>> {
    let mut reader = SegmentReader::open(path, start, len)?;
    let mut ordinal = before;
    while reader.offset() < to {
        let Step::Hint(header) = reader.next()? else {
            return Ok(None);
        };
        reader.skip_body(&header)?;
        ordinal += 1;
    }
    Ok((reader.offset() == to).then_some(ordinal))
}

/// One target's segments and cursor. Invariants: segments are in id order; no segment has
/// an id below the cursor's; only the last one is written to.
pub(super) struct TargetState {
    target: u64,
    dir: PathBuf,
    segments: VecDeque<Segment>,
    /// The last segment, open for writing; `None` until the next append creates a segment.
    writer: Option<Arc<File>>,
    /// The last acknowledged position (kept in memory after its file is deleted, so that a
    /// position from an earlier batch still reads as delivered).
    cursor: Option<HintPosition>,
    /// Hints of the first segment at or before the cursor, when the cursor is in it.
    acked_in_front: u64,
    /// Hints not yet acknowledged.
    pub pending_hints: u64,
    /// Their bytes.
    pending_bytes: u64,
    /// The id of the next segment: above every id seen, the cursor's included, so that a
    /// stale cursor can never cover a new segment.
    next_id: u64,
    /// Hints appended since the last fsync of the writer.
    dirty: bool,
    /// Why appends are refused.
    poisoned: Option<String>,
}

impl TargetState {
    /// The state of a target with nothing on disk.
    pub fn empty(target: u64, dir: PathBuf) -> TargetState {
        TargetState {
            target,
            dir,
            segments: VecDeque::new(),
            writer: None,
            cursor: None,
            acked_in_front: 0,
            pending_hints: 0,
            pending_bytes: 0,
            next_id: 1,
            dirty: false,
            poisoned: None,
        }
    }

    fn segment_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:08x}.hint"))
    }

    /// Where reading `segment` starts, and the hints before that point.
    fn start_of(&self, segment: &Segment) -> (u64, u64) {
        match self.cursor {
            Some(cursor) if cursor.segment == segment.id => (cursor.offset, self.acked_in_front),
            _ => (SEGMENT_HEADER_BYTES, 0),
        }
    }

    fn recount(&mut self) {
        let mut hints = 0;
        let mut bytes = 0;
        for segment in &self.segments {
            hints += segment.hints;
            bytes += segment.len - SEGMENT_HEADER_BYTES;
        }
        if let (Some(cursor), Some(front)) = (self.cursor, self.segments.front())
            && cursor.segment == front.id
        {
            debug_assert!(self.acked_in_front <= front.hints && cursor.offset <= front.len);
            hints -= self.acked_in_front.min(hints);
            bytes -= (cursor.offset - SEGMENT_HEADER_BYTES).min(bytes);
        }
        self.pending_hints = hints;
        self.pending_bytes = bytes;
    }

    fn poison(&mut self, reason: String) {
        self.poisoned.get_or_insert(reason);
    }

    /// Appends one encoded hint. See [`super::Hints::append`].
    pub fn append(
        &mut self,
        header: &[u8; HINT_HEADER_BYTES],
        key: &[u8],
        value: &[u8],
        options: &HintOptions,
    ) -> Result<(), HintError> {
        if let Some(reason) = &self.poisoned {
            return Err(HintError::Poisoned {
                target: self.target,
                reason: reason.clone(),
            });
        }
        let bytes = (HINT_HEADER_BYTES + key.len() + value.len()) as u64;
        if self.pending_bytes + bytes > options.target_bytes_max {
            return Err(HintError::Full {
                target: self.target,
                pending_bytes: self.pending_bytes,
                target_bytes_max: options.target_bytes_max,
            });
        }
        let writer = self.writer_with_room(bytes, options)?;
        let segment = self.segments.back_mut().expect("a writer has its segment");
        if let Err(source) = write_hint(&writer, segment.len, header, key, value) {
            self.poison(format!("a hint write failed: {source}"));
            return Err(HintError::Io {
                doing: "appending a hint, it was not kept and the log is poisoned".into(),
                source,
            });
        }
        segment.len += bytes;
        segment.hints += 1;
        self.pending_hints += 1;
        self.pending_bytes += bytes;
        self.dirty = true;
        Ok(())
    }

    /// The writer of a segment with room for `bytes` more, closing the current segment and
    /// starting a new one if needed (a record larger than a segment gets one of its own).
    fn writer_with_room(
        &mut self,
        bytes: u64,
        options: &HintOptions,
    ) -> Result<Arc<File>, HintError> {
        let full = self.segments.back().is_some_and(|segment| {
            segment.len > SEGMENT_HEADER_BYTES && segment.len + bytes > options.segment_bytes
        });
        if full || self.writer.is_none() {
            self.seal()?;
            self.create_segment()?;
        }
        Ok(Arc::clone(
            self.writer.as_ref().expect("a segment was just created"),
        ))
    }

    /// Stops writing to the current segment, after making its hints durable: `sync` only
    /// ever syncs the open segment.
    fn seal(&mut self) -> Result<(), HintError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        if !std::mem::take(&mut self.dirty) {
            return Ok(());
        }
        writer.sync_data().map_err(|source| {
            self.poison(format!("fsync of a full hint segment failed: {source}"));
            HintError::Io {
                doing: "syncing a full hint segment, the hint was not kept and the log is \
                        poisoned"
                    .into(),
                source,
            }
        })
    }

    /// Creates the next segment whole: header written to a temporary file, fsynced, renamed
    /// into place, directory fsynced. So a segment on disk always has its header.
    fn create_segment(&mut self) -> Result<(), HintError> {
        let failed = HintError::io("creating a hint segment, the hint was not kept");
        let id = self.next_id;
        self.next_id += 1;
        let file = self.create_segment_file(id).map_err(failed)?;
        self.segments.push_back(Segment {
            id,
            len: SEGMENT_HEADER_BYTES,
            hints: 0,
        });
        self.writer = Some(Arc::new(file));
        Ok(())
    }

    fn create_segment_file(&self, id: u64) -> io::Result<File> {
        if self.segments.is_empty() {
            fs::create_dir_all(&self.dir)?;
            if let Some(parent) = self.dir.parent() {
                sync_dir(parent)?;
            }
        }
        let path = self.segment_path(id);
        let tmp = self.dir.join(format!("{id:08x}.hint.tmp"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all_at(&format::encode_segment_header(id, self.target), 0)?;
        file.sync_data()?;
        fs::rename(&tmp, &path)?;
        sync_dir(&self.dir)?;
        Ok(file)
    }

    /// The segments a batch reads, at most `segments_max` of them.
    pub fn read_plan(&self, segments_max: usize) -> ReadPlan {
        let segments = self
            .segments
            .iter()
            .take(segments_max)
            .map(|segment| PlannedSegment {
                id: segment.id,
                path: self.segment_path(segment.id),
                start: self.start_of(segment).0,
                len: segment.len,
            })
            .collect();
        ReadPlan { segments }
    }

    /// A read found damage in `segment`: if it is the one written to, stop writing to it,
    /// so that its end stays where the batch saw it and acknowledging that end works.
    pub fn seal_damaged(&mut self, segment: u64) {
        if self.segments.back().is_some_and(|back| back.id == segment) {
            // A failed fsync poisons the log, which is where that failure is reported.
            let _ = self.seal();
        }
    }

    /// Checks `upto` and says how to count the hints it delivers; `None` when it is at or
    /// before the cursor (already delivered).
    fn ack_plan(&self, upto: HintPosition) -> Result<Option<AckPlan>, HintError> {
        if self.cursor.is_some_and(|cursor| upto <= cursor) {
            return Ok(None);
        }
        let not_a_hint = HintError::Position {
            target: self.target,
            position: upto,
        };
        let Some(segment) = self.segments.iter().find(|s| s.id == upto.segment) else {
            return Err(not_a_hint);
        };
        let (start, before) = self.start_of(segment);
        if upto.offset > segment.len || upto.offset <= start {
            return Err(not_a_hint);
        }
        let ordinal = if upto.offset == segment.len {
            Ordinal::Known(segment.hints)
        } else {
            Ordinal::Walk {
                path: self.segment_path(segment.id),
                start,
                before,
                len: segment.len,
            }
        };
        Ok(Some(AckPlan {
            dir: self.dir.clone(),
            target: self.target,
            ordinal,
        }))
    }

    /// Moves the cursor to `upto` (durable already), with `ordinal` hints of its segment at
    /// or before it. Returns the delivered segment files to delete. When nothing is left,
    /// deletes every file and the directory now, under the lock, so that no append creates
    /// a segment in a directory being removed.
    fn apply_ack(&mut self, upto: HintPosition, ordinal: u64) -> Result<Vec<PathBuf>, HintError> {
        self.cursor = Some(upto);
        self.acked_in_front = ordinal;
        let mut delivered = Vec::new();
        while let Some(front) = self.segments.front().copied()
            && (front.id < upto.segment || self.front_delivered_and_closed())
        {
            self.segments.pop_front();
            delivered.push(self.segment_path(front.id));
        }
        self.recount();
        if self.pending_hints > 0 {
            return Ok(delivered);
        }
        remove_delivered(&delivered)?;
        self.remove_drained()?;
        Ok(Vec::new())
    }

    /// Whether the first segment is delivered to its end and another follows it.
    fn front_delivered_and_closed(&self) -> bool {
        match (self.cursor, self.segments.front()) {
            (Some(cursor), Some(front)) => {
                cursor.segment == front.id && cursor.offset == front.len && self.segments.len() > 1
            }
            _ => false,
        }
    }

    /// Deletes every file of a log with nothing pending, then the directory if it is empty
    /// (segments set aside as corrupt stay, and keep it).
    fn remove_drained(&mut self) -> Result<(), HintError> {
        let failed = "deleting delivered hints; the acknowledgement stands";
        for segment in &self.segments {
            remove_if_exists(&self.segment_path(segment.id)).map_err(HintError::io(failed))?;
        }
        self.clear();
        remove_if_exists(&self.dir.join(CURSOR_NAME)).map_err(HintError::io(failed))?;
        match fs::remove_dir(&self.dir) {
            Err(error)
                if !matches!(
                    error.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty
                ) =>
            {
                Err(HintError::io(failed)(error))
            }
            _ => Ok(()),
        }
    }

    /// Forgets every segment in memory. Deleting their files is what clears the poison: a
    /// new segment is a new file that no failed write or fsync touched.
    fn clear(&mut self) {
        self.segments.clear();
        self.writer = None;
        self.dirty = false;
        self.poisoned = None;
        self.acked_in_front = 0;
        self.recount();
    }

    /// Drops every hint: deletes the directory, and counts every position handed out so far
    /// as delivered.
    fn forget(&mut self) -> Result<(), HintError> {
        self.cursor = Some(HintPosition {
            segment: self.next_id - 1,
            offset: u64::MAX,
        });
        self.clear();
        match fs::remove_dir_all(&self.dir) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(HintError::Io {
                doing: "deleting a forgotten node's hints; they are dropped from memory and \
                        what is left comes back at the next open"
                    .into(),
                source: error,
            }),
            _ => Ok(()),
        }
    }

    /// The target's figures.
    pub fn stats(&self) -> TargetHintStats {
        TargetHintStats {
            target: self.target,
            pending_hints: self.pending_hints,
            pending_bytes: self.pending_bytes,
            segments: self.segments.len(),
            poisoned: self.poisoned.clone(),
        }
    }
}

/// Writes a hint at `at`: header and key in one write, the value (which may be large) from
/// where it is, not copied.
fn write_hint(
    file: &File,
    at: u64,
    header: &[u8; HINT_HEADER_BYTES],
    key: &[u8],
    value: &[u8],
) -> io::Result<()> {
    let mut head = Vec::with_capacity(HINT_HEADER_BYTES + key.len());
    head.extend_from_slice(header);
    head.extend_from_slice(key);
    file.write_all_at(&head, at)?;
    if !value.is_empty() {
        file.write_all_at(value, at + head.len() as u64)?;
    }
    Ok(())
}

fn write_cursor(dir: &Path, position: HintPosition) -> io::Result<()> {
    let tmp = dir.join(CURSOR_TMP);
    let mut file = File::create(&tmp)?;
    file.write_all(&format::encode_cursor(position))?;
    file.sync_data()?;
    fs::rename(&tmp, dir.join(CURSOR_NAME))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Deletes delivered segments. Not fsynced: a segment that comes back after a crash is
/// below the cursor and deleted at the next open.
fn remove_delivered(paths: &[PathBuf]) -> Result<(), HintError> {
    for path in paths {
        remove_if_exists(path).map_err(HintError::io(
            "deleting a delivered hint segment; the acknowledgement stands",
        ))?;
    }
    Ok(())
}

/// The id of a segment file name: 8 to 16 lowercase hex digits, then `.hint`.
fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".hint")?;
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if !(8..=16).contains(&hex.len()) || !hex.bytes().all(lower_hex) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A segment as recovery found it.
struct Scanned {
    segment: Segment,
    /// Hints at or before the watched offset, when it is a record boundary.
    cursor_ordinal: Option<u64>,
}

impl TargetState {
    /// Recovers the log in `dir`. See the module docs of `hints` and docs/storage.md.
    pub fn recover(
        dir: PathBuf,
        target: u64,
        report: &mut HintRecovery,
    ) -> Result<TargetState, HintError> {
        let mut state = TargetState::empty(target, dir);
        let ids = state.list_segments()?;
        let cursor = state.read_cursor(report)?;
        let highest = ids.last().copied().max(cursor.map(|c| c.segment));
        state.next_id = highest.map_or(1, |id| id + 1);
        let mut cursor_ordinal = None;
        let mut scratch = vec![0u8; SCAN_BUFFER_BYTES];
        for id in ids {
            let path = state.segment_path(id);
            if cursor.is_some_and(|c| id < c.segment) {
                // Delivered; the crash came between the cursor write and the delete.
                remove_if_exists(&path).map_err(HintError::io("deleting a delivered segment"))?;
                continue;
            }
            let watch = cursor.filter(|c| c.segment == id).map(|c| c.offset);
            if let Some(scanned) = scan_segment(&path, id, target, watch, report, &mut scratch)? {
                cursor_ordinal = cursor_ordinal.or(scanned.cursor_ordinal);
                state.segments.push_back(scanned.segment);
            }
        }
        state.cursor = cursor;
        state.resolve_cursor(cursor_ordinal, report);
        state.open_after_recovery()?;
        Ok(state)
    }

    /// Removes leftover temporary files and returns the segment ids, in order.
    fn list_segments(&self) -> Result<Vec<u64>, HintError> {
        let failed = || HintError::io("listing a target's hint directory");
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(failed())? {
            let entry = entry.map_err(failed())?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if name.ends_with(".tmp") {
                remove_if_exists(&entry.path()).map_err(failed())?;
            } else if let Some(id) = parse_segment_name(name) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// The cursor on disk; `None` (replay from the start) when missing or damaged.
    fn read_cursor(&self, report: &mut HintRecovery) -> Result<Option<HintPosition>, HintError> {
        let failed = || HintError::io("reading the hint cursor");
        let mut file = match File::open(self.dir.join(CURSOR_NAME)) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(failed()(error)),
        };
        let len = file.metadata().map_err(failed())?.len();
        let mut bytes = [0u8; CURSOR_BYTES];
        let cursor = if len == CURSOR_BYTES as u64 {
            file.read_exact(&mut bytes).map_err(failed())?;
            format::decode_cursor(&bytes)
        } else {
            None
        };
        if cursor.is_none() {
            report.corrupt_cursors += 1;
        }
        Ok(cursor)
    }

    /// Fits the cursor to the segments found: `ordinal` is the hints at or before it when
    /// it fell on a record boundary of its segment.
    fn resolve_cursor(&mut self, ordinal: Option<u64>, report: &mut HintRecovery) {
        let (Some(cursor), Some(front)) = (self.cursor, self.segments.front().copied()) else {
            return;
        };
        if front.id != cursor.segment {
            // Its segment was delivered whole, or set aside: every segment left is after it.
            return;
        }
        if let Some(ordinal) = ordinal {
            self.acked_in_front = ordinal;
        } else if cursor.offset >= front.len {
            // The segment was cut short below the cursor: what is left was delivered.
            self.cursor = Some(HintPosition {
                segment: front.id,
                offset: front.len,
            });
            self.acked_in_front = front.hints;
        } else {
            // Inside a record: not a position this log wrote. Replay everything.
            report.corrupt_cursors += 1;
            self.cursor = None;
        }
    }

    /// Deletes what is delivered and opens the last segment to append to.
    fn open_after_recovery(&mut self) -> Result<(), HintError> {
        let mut delivered = Vec::new();
        while let Some(front) = self.segments.front().copied()
            && self.front_delivered_and_closed()
        {
            self.segments.pop_front();
            delivered.push(self.segment_path(front.id));
        }
        remove_delivered(&delivered)?;
        self.recount();
        if self.pending_hints == 0 {
            return self.remove_drained();
        }
        let last = self
            .segments
            .back()
            .expect("pending hints are in a segment");
        let path = self.segment_path(last.id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(HintError::io("opening the last hint segment"))?;
        self.writer = Some(Arc::new(file));
        Ok(())
    }
}

/// Checks segment `id` record by record; cuts it at the first record that fails (a torn
/// tail, or damage: hints after it are lost). `None` when its header is bad: it is then
/// renamed `*.corrupt`.
fn scan_segment(
    path: &Path,
    id: u64,
    target: u64,
    watch: Option<u64>,
    report: &mut HintRecovery,
    scratch: &mut [u8],
) -> Result<Option<Scanned>, HintError> {
    let failed = || HintError::io(format!("recovering hint segment {}", path.display()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(failed())?;
    let file_len = file.metadata().map_err(failed())?.len();
    if !segment_header_sound(&file, file_len, path, (id, target), report)? {
        return Ok(None);
    }
    let mut reader = SegmentReader::open(path, SEGMENT_HEADER_BYTES, file_len).map_err(failed())?;
    let (end, hints, cursor_ordinal) =
        scan_records(&mut reader, watch, report, scratch).map_err(failed())?;
    if end < file_len {
        file.set_len(end).map_err(failed())?;
        file.sync_data().map_err(failed())?;
        report.bytes_truncated += file_len - end;
    }
    report.segments += 1;
    report.bytes_read += end;
    Ok(Some(Scanned {
        segment: Segment {
            id,
            len: end,
            hints,
        },
        cursor_ordinal,
    }))
}

/// Whether the header of the segment at `path` is that of segment `id` of `target`; a bad
/// one is set aside as `*.corrupt`.
fn segment_header_sound(
    file: &File,
    file_len: u64,
    path: &Path,
    (id, target): (u64, u64),
    report: &mut HintRecovery,
) -> Result<bool, HintError> {
    let failed = || HintError::io(format!("checking hint segment {}", path.display()));
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    if file_len >= SEGMENT_HEADER_BYTES {
        file.read_exact_at(&mut header, 0).map_err(failed())?;
    }
    match format::check_segment_header(&header, id, target) {
        Ok(()) => Ok(true),
        Err(HeaderProblem::Corrupt) => {
            let mut aside = path.as_os_str().to_owned();
            aside.push(".corrupt");
            fs::rename(path, &aside).map_err(failed())?;
            report.corrupt_segments += 1;
            Ok(false)
        }
        Err(HeaderProblem::FormatVersion(found)) => Err(HintError::FormatVersion {
            path: path.to_path_buf(),
            found,
            expected: FORMAT_VERSION,
        }),
    }
}

/// Reads records until the first that fails its checks. Returns where the good data ends
/// (that record's start), the good hints, and the hints at or before `watch` when `watch`
/// is a record boundary.
fn scan_records(
    reader: &mut SegmentReader,
    watch: Option<u64>,
    report: &mut HintRecovery,
    scratch: &mut [u8],
) -> io::Result<(u64, u64, Option<u64>)> {
    let mut hints = 0;
    let mut cursor_ordinal = (watch == Some(SEGMENT_HEADER_BYTES)).then_some(0);
    loop {
        let at = reader.offset();
        let header = match reader.next()? {
            Step::End => return Ok((at, hints, cursor_ordinal)),
            Step::Torn => {
                report.torn_tails += 1;
                return Ok((at, hints, cursor_ordinal));
            }
            Step::Damaged => {
                report.damaged_records += 1;
                return Ok((at, hints, cursor_ordinal));
            }
            Step::Hint(header) => header,
        };
        if !reader.check_body(&header, scratch)? {
            report.damaged_records += 1;
            return Ok((at, hints, cursor_ordinal));
        }
        hints += 1;
        if watch == Some(reader.offset()) {
            cursor_ordinal = Some(hints);
        }
    }
}
