//! Tests of the hint log: order and exact records, paging and acknowledgement, rollover and
//! deletion, the window, the per-target bound, recovery from damage, and a model test.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use proptest::prelude::*;

use super::format::{HINT_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use super::*;
use crate::record::{Record, Version};

const A: u64 = 0xa;
const B: u64 = 0xbeef_0000_0000_0001;
const NOW: u64 = 10_000_000;
const WINDOW: u64 = 3_600_000;
/// Bytes of a hint made by `hint_record` for `key(i)` with i < 10.
const HINT_BYTES: u64 = (HINT_HEADER_BYTES + 5 + 100) as u64;

fn options() -> HintOptions {
    HintOptions {
        segment_bytes: 4096,
        target_bytes_max: 1 << 20,
    }
}

fn open(dir: &Path) -> Hints {
    Hints::open(dir, options()).expect("open")
}

fn v(hlc: u64) -> Version {
    Version { hlc, node: 2 }
}

fn key(i: u64) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

fn hint_record(i: u64) -> Record {
    Record::new(Bytes::from(vec![i as u8; 100]), None, v(i + 1))
}

/// Bytes of the hint made by `hint_record` for `key(i)`.
fn hint_bytes(i: u64) -> u64 {
    (HINT_HEADER_BYTES + key(i).len() + 100) as u64
}

fn append_range(hints: &Hints, target: u64, range: std::ops::Range<u64>) {
    for i in range {
        hints
            .append(target, &key(i), &hint_record(i), NOW)
            .expect("append");
    }
}

/// Every pending hint, read and acknowledged in batches of `batch`.
fn drain(hints: &Hints, target: u64, batch: usize) -> Vec<Hint> {
    let mut all = Vec::new();
    loop {
        let read = hints.read_batch(target, batch, NOW, WINDOW).expect("read");
        let Some(last) = read.last else {
            return all;
        };
        all.extend(read.hints);
        hints.acknowledge(target, last).expect("acknowledge");
    }
}

fn keys(hints: &[Hint]) -> Vec<Vec<u8>> {
    hints.iter().map(|h| h.key.to_vec()).collect()
}

fn keys_of(range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    range.map(key).collect()
}

fn target_dir(root: &Path, target: u64) -> PathBuf {
    root.join(format!("{target:016x}"))
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(suffix))
        .collect();
    files.sort();
    files
}

fn segment_path(root: &Path, target: u64, segment: u64) -> PathBuf {
    target_dir(root, target).join(format!("{segment:08x}.hint"))
}

fn flip_byte(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn hints_come_back_in_append_order_with_their_exact_records() {
    let dir = tempfile::tempdir().unwrap();
    let hints = open(dir.path());
    let records = [
        Record::new(Bytes::from_static(b"plain"), None, v(5)),
        Record {
            kind: Default::default(),
            value: Some(crate::record::Value::Bytes(Bytes::from_static(
                b"with expiry",
            ))),
            value_version: v(6),
            expiry_ms: Some(123_456),
            expiry_version: Version { hlc: 9, node: 7 },
        },
        Record::tombstone(Version { hlc: 11, node: 3 }),
        Record::new(Bytes::new(), None, v(12)),
        Record {
            kind: Default::default(),
            value: None,
            value_version: v(13),
            expiry_ms: Some(77),
            expiry_version: v(14),
        },
    ];
    for (i, record) in records.iter().enumerate() {
        hints
            .append(A, &key(i as u64), record, NOW + i as u64)
            .unwrap();
    }
    let batch = hints.read_batch(A, 100, NOW, WINDOW).unwrap();
    assert_eq!(batch.expired, 0);
    assert_eq!(batch.hints.len(), records.len());
    for (i, (hint, record)) in batch.hints.iter().zip(&records).enumerate() {
        assert_eq!(hint.key, Bytes::from(key(i as u64)));
        assert_eq!(&hint.record, record);
        assert_eq!(hint.stored_ms, NOW + i as u64);
    }
    assert!(
        batch
            .hints
            .windows(2)
            .all(|w| w[0].position < w[1].position)
    );
    assert_eq!(batch.last, Some(batch.hints[4].position));
    assert_eq!(hints.targets(), vec![A]);
}

#[test]
fn batches_page_in_order_and_a_batch_repeats_until_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let hints = open(dir.path());
    append_range(&hints, A, 0..60);
    let first = hints.read_batch(A, 7, NOW, WINDOW).unwrap();
    assert_eq!(keys(&first.hints), keys_of(0..7));
    assert_eq!(hints.read_batch(A, 7, NOW, WINDOW).unwrap(), first);
    assert_eq!(keys(&drain(&hints, A, 7)), keys_of(0..60));
    assert_eq!(hints.stats(), HintStats::default());
}

#[test]
fn reading_resumes_after_the_cursor_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let hints = open(dir.path());
        append_range(&hints, A, 0..30);
        let batch = hints.read_batch(A, 10, NOW, WINDOW).unwrap();
        // Inside the batch: counted by walking the segment.
        hints.acknowledge(A, batch.hints[4].position).unwrap();
        assert_eq!(hints.stats().pending_hints, 25);
        let pending_bytes: u64 = (5..30).map(hint_bytes).sum();
        assert_eq!(hints.stats().pending_bytes, pending_bytes);
        hints.sync().unwrap();
    }
    let hints = open(dir.path());
    assert_eq!(hints.recovery().hints, 25);
    assert_eq!(hints.stats().pending_hints, 25);
    let batch = hints.read_batch(A, 3, NOW, WINDOW).unwrap();
    assert_eq!(keys(&batch.hints), keys_of(5..8));
    hints.acknowledge(A, batch.last.unwrap()).unwrap();
    assert_eq!(keys(&drain(&hints, A, 100)), keys_of(8..30));
}

#[test]
fn a_log_rolls_over_at_segment_bytes_and_delivered_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let hints = open(dir.path());
    append_range(&hints, A, 0..60);
    let segments = files_ending(&target_dir(dir.path(), A), ".hint");
    let per_segment = (4096 - SEGMENT_HEADER_BYTES) / HINT_BYTES;
    assert_eq!(segments.len() as u64, 60_u64.div_ceil(per_segment));
    for path in &segments {
        assert!(std::fs::metadata(path).unwrap().len() <= 4096);
    }
    let all = hints.read_batch(A, 100, NOW, WINDOW).unwrap().hints;
    let first_segment = all[0].position.segment;
    let second = all.iter().position(|h| h.position.segment != first_segment);
    assert_eq!(second, Some(per_segment as usize));

    // Into the second segment: the first is delivered whole and deleted.
    hints
        .acknowledge(A, all[per_segment as usize + 1].position)
        .unwrap();
    assert!(!segment_path(dir.path(), A, first_segment).exists());
    assert_eq!(hints.stats().targets[0].segments, segments.len() - 1);

    // Everything: the directory goes, and positions handed out before stay delivered.
    hints.acknowledge(A, all[59].position).unwrap();
    assert!(!target_dir(dir.path(), A).exists());
    assert!(hints.targets().is_empty());
    append_range(&hints, A, 60..61);
    hints.acknowledge(A, all[10].position).unwrap();
    let after = hints.read_batch(A, 100, NOW, WINDOW).unwrap().hints;
    assert_eq!(keys(&after), keys_of(60..61));
    assert!(after[0].position > all[59].position);
}

#[test]
fn a_hint_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let hints = open(dir.path());
    append_range(&hints, A, 0..2);
    let big = Record::new(Bytes::from(vec![7u8; 10_000]), Some(5), v(9));
    hints.append(A, b"big", &big, NOW).unwrap();
    append_range(&hints, A, 2..3);
    let batch = hints.read_batch(A, 100, NOW, WINDOW).unwrap();
    assert_eq!(batch.hints[2].record, big);
    let segments: Vec<u64> = batch.hints.iter().map(|h| h.position.segment).collect();
    assert_eq!(segments, vec![1, 1, 2, 3]);
}

#[test]
fn hints_older_than_the_window_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let hints = open(dir.path());
    for i in 0..10 {
        // Exactly at the window's edge is not older than it.
        let stored_ms = if i % 2 == 0 {
            NOW - WINDOW - 1
        } else {
            NOW - WINDOW
        };
        hints
            .append(A, &key(i), &hint_record(i), stored_ms)
            .unwrap();
    }
    let batch = hints.read_batch(A, 100, NOW, WINDOW).unwrap();
    assert_eq!(
        keys(&batch.hints),
        vec![key(1), key(3), key(5), key(7), key(9)]
    );
    assert_eq!(batch.expired, 5);

    // Later, all of them are old: a batch with no hints still moves on.
    let later = hints.read_batch(A, 100, NOW + 10, WINDOW).unwrap();
    assert_eq!((later.hints.len(), later.expired), (0, 10));
    hints.acknowledge(A, later.last.unwrap()).unwrap();
    assert_eq!(hints.stats().pending_hints, 0);
    assert_eq!(
        hints.read_batch(A, 100, NOW, WINDOW).unwrap(),
        HintBatch::default()
    );
}

#[test]
fn a_full_target_refuses_hints_until_some_are_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let options = HintOptions {
        target_bytes_max: 3 * HINT_BYTES,
        ..options()
    };
    let hints = Hints::open(dir.path(), options).unwrap();
    append_range(&hints, A, 0..3);
    let refused = hints.append(A, &key(3), &hint_record(3), NOW);
    assert!(
        matches!(refused, Err(HintError::Full { target: A, .. })),
        "{refused:?}"
    );
    assert_eq!(hints.stats().pending_hints, 3);
    append_range(&hints, B, 0..3);

    let batch = hints.read_batch(A, 1, NOW, WINDOW).unwrap();
    hints.acknowledge(A, batch.last.unwrap()).unwrap();
    hints.append(A, &key(3), &hint_record(3), NOW).unwrap();
    assert_eq!(keys(&drain(&hints, A, 10)), keys_of(1..4));
}

#[test]
fn a_torn_tail_is_cut_and_the_hints_before_it_survive() {
    let dir = tempfile::tempdir().unwrap();
    {
        let hints = open(dir.path());
        append_range(&hints, A, 0..5);
        hints.sync().unwrap();
    }
    let path = segment_path(dir.path(), A, 1);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 30)
        .unwrap();

    let hints = open(dir.path());
    let recovery = hints.recovery();
    assert_eq!((recovery.torn_tails, recovery.damaged_records), (1, 0));
    assert_eq!(recovery.bytes_truncated, HINT_BYTES - 30);
    assert_eq!(recovery.hints, 4);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len - HINT_BYTES);
    append_range(&hints, A, 5..6);
    let expected = [keys_of(0..4), keys_of(5..6)].concat();
    assert_eq!(keys(&drain(&hints, A, 100)), expected);
}

#[test]
fn a_flipped_byte_cuts_the_segment_at_the_damaged_hint() {
    let dir = tempfile::tempdir().unwrap();
    {
        let hints = open(dir.path());
        append_range(&hints, A, 0..10);
    }
    let third_value = SEGMENT_HEADER_BYTES + 3 * HINT_BYTES + HINT_HEADER_BYTES as u64 + 5 + 50;
    flip_byte(&segment_path(dir.path(), A, 1), third_value);

    let hints = open(dir.path());
    let recovery = hints.recovery();
    assert_eq!((recovery.damaged_records, recovery.torn_tails), (1, 0));
    assert_eq!(recovery.bytes_truncated, 7 * HINT_BYTES);
    assert_eq!(keys(&drain(&hints, A, 100)), keys_of(0..3));
}

#[test]
fn damage_found_while_reading_skips_the_rest_of_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let hints = open(dir.path());
    append_range(&hints, A, 0..10);
    let path = segment_path(dir.path(), A, 1);
    flip_byte(&path, SEGMENT_HEADER_BYTES + 3 * HINT_BYTES + 70);

    let batch = hints.read_batch(A, 100, NOW, WINDOW).unwrap();
    assert_eq!(keys(&batch.hints), keys_of(0..3));
    let end = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        batch.last,
        Some(HintPosition {
            segment: 1,
            offset: end
        })
    );
    assert_eq!(hints.stats().damaged_reads, 1);
    // The damaged segment takes no more hints, so its end stays where the batch saw it.
    append_range(&hints, A, 10..11);
    hints.acknowledge(A, batch.last.unwrap()).unwrap();
    assert_eq!(hints.stats().pending_hints, 1);
    assert!(!path.exists());
    assert_eq!(keys(&drain(&hints, A, 100)), keys_of(10..11));
}

#[test]
fn a_corrupt_segment_header_sets_the_segment_aside() {
    let dir = tempfile::tempdir().unwrap();
    let per_segment = (4096 - SEGMENT_HEADER_BYTES) / HINT_BYTES;
    {
        let hints = open(dir.path());
        append_range(&hints, A, 0..60);
    }
    flip_byte(&segment_path(dir.path(), A, 1), 20);

    let hints = open(dir.path());
    assert_eq!(hints.recovery().corrupt_segments, 1);
    let aside = files_ending(&target_dir(dir.path(), A), ".hint.corrupt");
    assert_eq!(aside.len(), 1);
    assert_eq!(keys(&drain(&hints, A, 100)), keys_of(per_segment..60));
    // Set aside, not deleted: the directory stays for whoever looks into it.
    assert!(aside[0].exists());
}

#[test]
fn a_corrupt_cursor_replays_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let hints = open(dir.path());
        append_range(&hints, A, 0..10);
        let batch = hints.read_batch(A, 5, NOW, WINDOW).unwrap();
        hints.acknowledge(A, batch.last.unwrap()).unwrap();
    }
    let cursor = target_dir(dir.path(), A).join("cursor");
    flip_byte(&cursor, 17);
    let hints = open(dir.path());
    assert_eq!(hints.recovery().corrupt_cursors, 1);
    assert_eq!(keys(&drain(&hints, A, 3)), keys_of(0..10));

    // A cursor cut short counts the same.
    append_range(&hints, A, 10..12);
    let batch = hints.read_batch(A, 1, NOW, WINDOW).unwrap();
    hints.acknowledge(A, batch.last.unwrap()).unwrap();
    drop(hints);
    std::fs::write(&cursor, b"abc").unwrap();
    let hints = open(dir.path());
    assert_eq!(hints.recovery().corrupt_cursors, 1);
    assert_eq!(keys(&drain(&hints, A, 3)), keys_of(10..12));
}

#[test]
fn a_cursor_inside_a_record_replays_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let hints = open(dir.path());
        append_range(&hints, A, 0..4);
        let batch = hints.read_batch(A, 2, NOW, WINDOW).unwrap();
        hints.acknowledge(A, batch.last.unwrap()).unwrap();
    }
    let inside = HintPosition {
        segment: 1,
        offset: SEGMENT_HEADER_BYTES + HINT_BYTES + 1,
    };
    let cursor = target_dir(dir.path(), A).join("cursor");
    std::fs::write(&cursor, format::encode_cursor(inside)).unwrap();
    let hints = open(dir.path());
    assert_eq!(hints.recovery().corrupt_cursors, 1);
    assert_eq!(keys(&drain(&hints, A, 3)), keys_of(0..4));
}

#[test]
fn two_targets_are_independent_and_forget_drops_one() {
    let dir = tempfile::tempdir().unwrap();
    {
        let hints = open(dir.path());
        for i in 0..20 {
            append_range(&hints, if i % 3 == 0 { B } else { A }, i..i + 1);
        }
        assert_eq!(hints.targets(), vec![A, B]);
        let batch_a = hints.read_batch(A, 4, NOW, WINDOW).unwrap();
        hints.acknowledge(A, batch_a.last.unwrap()).unwrap();
        let batch_b = hints.read_batch(B, 100, NOW, WINDOW).unwrap();
        assert_eq!(keys(&batch_b.hints), [0, 3, 6, 9, 12, 15, 18].map(key));

        hints.forget(B).unwrap();
        assert!(!target_dir(dir.path(), B).exists());
        assert_eq!(hints.targets(), vec![A]);
        assert_eq!(
            hints.read_batch(B, 100, NOW, WINDOW).unwrap(),
            HintBatch::default()
        );
        // A replay that was under way acknowledges into the void.
        hints.acknowledge(B, batch_b.last.unwrap()).unwrap();
        let stats = hints.stats();
        assert_eq!(stats.targets.len(), 1);
        assert_eq!(stats.pending_hints, 13 - 4);
        assert_eq!(stats.pending_bytes, stats.targets[0].pending_bytes);
    }
    let hints = open(dir.path());
    assert_eq!(hints.targets(), vec![A]);
    let left: Vec<u64> = (0..20).filter(|i| i % 3 != 0).skip(4).collect();
    assert_eq!(
        keys(&drain(&hints, A, 5)),
        left.into_iter().map(key).collect::<Vec<_>>()
    );
}

#[test]
fn an_acknowledgement_of_a_position_that_is_not_a_hint_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hints = open(dir.path());
    append_range(&hints, A, 0..3);
    let first = hints.read_batch(A, 1, NOW, WINDOW).unwrap().hints[0].position;
    let bogus = [
        HintPosition {
            offset: first.offset + 1,
            ..first
        },
        HintPosition {
            offset: first.offset + 100_000,
            ..first
        },
        HintPosition {
            segment: 99,
            ..first
        },
    ];
    for position in bogus {
        let result = hints.acknowledge(A, position);
        assert!(
            matches!(result, Err(HintError::Position { .. })),
            "{result:?}"
        );
    }
    assert!(matches!(
        hints.acknowledge(B, first),
        Err(HintError::Position { .. })
    ));
    assert_eq!(hints.stats().pending_hints, 3);
    assert!(!target_dir(dir.path(), A).join("cursor").exists());
}

#[test]
fn a_hint_past_the_limits_is_refused_and_bad_options_do_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let hints = open(dir.path());
    let long_key = vec![b'k'; HINT_KEY_BYTES_MAX + 1];
    let refused = hints.append(A, &long_key, &hint_record(1), NOW);
    assert!(
        matches!(refused, Err(HintError::TooLarge { .. })),
        "{refused:?}"
    );
    assert!(hints.targets().is_empty());

    for options in [
        HintOptions {
            segment_bytes: 100,
            ..options()
        },
        HintOptions {
            target_bytes_max: 0,
            ..options()
        },
    ] {
        let opened = Hints::open(dir.path(), options);
        assert!(
            matches!(opened, Err(HintError::Options { .. })),
            "{opened:?}"
        );
    }
}

#[test]
fn a_segment_of_another_format_version_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    {
        let hints = open(dir.path());
        append_range(&hints, A, 0..2);
    }
    let path = segment_path(dir.path(), A, 1);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8] = 2;
    let crc = crc32c::crc32c(&bytes[..44]);
    bytes[44..48].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let opened = Hints::open(dir.path(), options());
    assert!(
        matches!(opened, Err(HintError::FormatVersion { found: 2, .. })),
        "{opened:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_delivered_segment_left_by_a_crash_is_deleted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let kept = {
        let hints = open(dir.path());
        append_range(&hints, A, 0..60);
        let all = hints.read_batch(A, 100, NOW, WINDOW).unwrap().hints;
        let first_of_second = all.iter().find(|h| h.position.segment == 2).unwrap();
        std::fs::copy(segment_path(dir.path(), A, 1), dir.path().join("kept")).unwrap();
        hints.acknowledge(A, first_of_second.position).unwrap();
        first_of_second.key.clone()
    };
    // As if the crash came between the cursor write and the delete.
    std::fs::rename(dir.path().join("kept"), segment_path(dir.path(), A, 1)).unwrap();
    let hints = open(dir.path());
    assert!(!segment_path(dir.path(), A, 1).exists());
    let rest = drain(&hints, A, 100);
    assert_ne!(rest[0].key, kept);
    assert_eq!(rest.last().unwrap().key, Bytes::from(key(59)));
}

#[test]
fn garbage_in_the_hint_directory_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README"), b"x").unwrap();
    std::fs::create_dir(dir.path().join("not-a-target")).unwrap();
    let target = target_dir(dir.path(), A);
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("notes.txt"), b"x").unwrap();
    std::fs::write(target.join("00000003.hint.tmp"), b"partial").unwrap();
    let hints = open(dir.path());
    assert!(hints.targets().is_empty());
    assert!(dir.path().join("README").exists());
    assert!(target.join("notes.txt").exists());
    assert!(!target.join("00000003.hint.tmp").exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_after_a_segment_header_never_panic(
        garbage in proptest::collection::vec(any::<u8>(), 0..600),
        keep in 0usize..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        {
            let hints = open(dir.path());
            append_range(&hints, A, 0..4);
        }
        let path = segment_path(dir.path(), A, 1);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate((SEGMENT_HEADER_BYTES + keep as u64 * HINT_BYTES) as usize);
        bytes.extend_from_slice(&garbage);
        std::fs::write(&path, &bytes).unwrap();
        let hints = open(dir.path());
        let read = drain(&hints, A, 3);
        prop_assert!(read.len() >= keep);
        prop_assert_eq!(keys(&read[..keep]), keys_of(0..keep as u64));
    }

    #[test]
    fn the_log_behaves_as_a_queue_per_target(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut hints = open(dir.path());
        let mut model: [VecDeque<u64>; 2] = [VecDeque::new(), VecDeque::new()];
        let targets = [A, B];
        let mut next = 0u64;
        for op in ops {
            match op {
                Op::Append(t, n) => {
                    append_range(&hints, targets[t], next..next + n);
                    model[t].extend(next..next + n);
                    next += n;
                }
                Op::Deliver(t, batch, take) => {
                    let read = hints.read_batch(targets[t], batch, NOW, WINDOW).unwrap();
                    let expected: Vec<u64> = model[t].iter().take(batch).copied().collect();
                    prop_assert_eq!(keys(&read.hints), expected.into_iter().map(key).collect::<Vec<_>>());
                    if let Some(hint) = read.hints.get(take.min(read.hints.len().saturating_sub(1))) {
                        hints.acknowledge(targets[t], hint.position).unwrap();
                        let delivered = take.min(read.hints.len() - 1) + 1;
                        model[t].drain(..delivered);
                    }
                }
                Op::Reopen => {
                    drop(hints);
                    hints = open(dir.path());
                }
            }
            let stats = hints.stats();
            prop_assert_eq!(stats.pending_hints, (model[0].len() + model[1].len()) as u64);
            let expected_bytes: u64 = model.iter().flatten().copied().map(hint_bytes).sum();
            prop_assert_eq!(stats.pending_bytes, expected_bytes);
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(usize, u64),
    Deliver(usize, usize, usize),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..2, 1u64..30).prop_map(|(t, n)| Op::Append(t, n)),
        4 => (0usize..2, 1usize..40, 0usize..40).prop_map(|(t, b, k)| Op::Deliver(t, b, k)),
        1 => Just(Op::Reopen),
    ]
}
