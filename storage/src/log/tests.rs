//! Tests of the log store: behaviour, recovery from crashes and corrupt files, compaction.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::format::{HEADER_BYTES, RECORD_HEADER_BYTES};
use super::*;
use crate::collection::Collection;
use crate::record::{DataType, Record, Version};
use crate::{MerkleLeaves, Store, StoreError, TombstoneHorizon, Update};

fn v(hlc: u64) -> Version {
    Version { hlc, node: 1 }
}

fn options(policy: FsyncPolicy) -> LogOptions {
    LogOptions {
        segment_bytes_max: 4096,
        appendfsync: policy,
        background: false,
        ..LogOptions::default()
    }
}

fn open(dir: &Path, policy: FsyncPolicy) -> (LogStore, RecoveryReport) {
    LogStore::open(dir, options(policy)).expect("open")
}

fn put(store: &LogStore, key: &[u8], value: &[u8], version: u64) -> Result<(), StoreError> {
    let record = Record::new(Bytes::copy_from_slice(value), None, v(version));
    store.update(key, 0, &mut |_| Update::Put(record.clone()))?;
    Ok(())
}

fn delete(store: &LogStore, key: &[u8], version: u64) -> Result<(), StoreError> {
    store.update(key, 0, &mut |_| Update::Put(Record::tombstone(v(version))))?;
    Ok(())
}

fn value(store: &LogStore, key: &[u8]) -> Option<Vec<u8>> {
    store
        .get(key, 0)
        .and_then(|r| r.bytes().map(|b| b.to_vec()))
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_written_value_is_read_back_zero_copy_from_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let (store, report) = open(dir.path(), FsyncPolicy::Always);
    assert_eq!(report.keys, 0);
    put(&store, b"k", b"hello", 1).unwrap();
    let record = store.get(b"k", 0).unwrap();
    assert_eq!(record.bytes().map(|b| &b[..]), Some(&b"hello"[..]));
    assert_eq!(record.value_version, v(1));
    assert_eq!(store.stats().keys, 1);
}

#[test]
fn values_survive_a_restart_and_deletes_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), FsyncPolicy::No);
        for i in 0..200u64 {
            put(&store, format!("k{i}").as_bytes(), &[i as u8; 40], i + 1).unwrap();
        }
        for i in 0..50u64 {
            delete(&store, format!("k{i}").as_bytes(), 1000 + i).unwrap();
        }
        store.sync().unwrap();
    }
    let (store, report) = open(dir.path(), FsyncPolicy::No);
    assert!(report.segments > 1, "{report}");
    assert_eq!(report.keys, 200);
    for i in 0..200u64 {
        let expected = (i >= 50).then(|| vec![i as u8; 40]);
        assert_eq!(value(&store, format!("k{i}").as_bytes()), expected, "k{i}");
    }
    assert_eq!(store.stats().keys, 150);
    assert_eq!(store.stats().tombstones, 50);
}

#[test]
fn a_record_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), FsyncPolicy::Always);
        put(&store, b"big", &vec![7u8; 10_000], 1).unwrap();
        put(&store, b"small", b"x", 2).unwrap();
    }
    let (store, _) = open(dir.path(), FsyncPolicy::Always);
    assert_eq!(value(&store, b"big"), Some(vec![7u8; 10_000]));
    assert_eq!(value(&store, b"small"), Some(b"x".to_vec()));
}

#[test]
fn an_older_merge_loses_to_a_newer_tombstone_after_restart_too() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), FsyncPolicy::Always);
        store.merge(b"k", &Record::tombstone(v(10))).unwrap();
        let old = Record::new(Bytes::from("old"), None, v(5));
        assert!(!store.merge(b"k", &old).unwrap());
    }
    let (store, _) = open(dir.path(), FsyncPolicy::Always);
    assert_eq!(store.get(b"k", 0).unwrap().value, None);
}

#[test]
fn reading_an_expired_key_reclaims_it_and_the_sweep_drops_old_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FsyncPolicy::No);
    let version = Version {
        hlc: 1_000 << Version::LOGICAL_BITS,
        node: 1,
    };
    let gone = Record::new(Bytes::from("x"), Some(2_000), version);
    store.merge(b"gone", &gone).unwrap();
    store
        .merge(b"kept", &Record::new(Bytes::from("x"), None, version))
        .unwrap();
    let record = store.get(b"gone", 2_000).unwrap();
    assert_eq!((record.value, record.value_version), (None, version));
    assert_eq!((store.stats().keys, store.stats().expired), (1, 1));
    let (stats, _) = store.expire_step(0, 100, 3_000, &TombstoneHorizon::uniform(5_000));
    assert_eq!(stats.tombstones_dropped, 1);
    assert!(store.get(b"gone", 3_000).is_none());
    assert!(store.get(b"kept", 3_000).is_some());
}

#[test]
fn scan_visits_every_key_once_across_calls() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FsyncPolicy::No);
    for i in 0..500u64 {
        put(&store, format!("k{i}").as_bytes(), b"x", i + 1).unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = store.scan(cursor, 13, 0, &mut |key, _| seen.push(key.clone()));
        if cursor == 0 {
            break;
        }
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!((before, seen.len()), (500, 500));
    assert!(store.random_key(12345, 0).is_some());
}

#[test]
fn clear_removes_every_record_for_good() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), FsyncPolicy::Always);
        for i in 0..100u64 {
            put(&store, format!("k{i}").as_bytes(), &[1; 50], i + 1).unwrap();
        }
        let held = store.get(b"k1", 0).unwrap().bytes().unwrap().clone();
        store.clear().unwrap();
        assert_eq!(store.stats().keys, 0);
        // A value handed out before still reads: its file goes when the last Bytes does.
        assert_eq!(&held[..], &[1; 50]);
        put(&store, b"after", b"y", 500).unwrap();
    }
    let (store, report) = open(dir.path(), FsyncPolicy::Always);
    assert_eq!(report.keys, 1);
    assert_eq!(value(&store, b"after"), Some(b"y".to_vec()));
    let dead = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".dead")
        })
        .count();
    assert_eq!(dead, 0);
}

#[test]
fn concurrent_writers_share_fsyncs_under_always() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(FsyncPolicy::Always);
    options.segment_bytes_max = 1 << 20;
    let (store, _) = LogStore::open(dir.path(), options).unwrap();
    let store = Arc::new(store);
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    put(
                        &store,
                        format!("t{t}k{i}").as_bytes(),
                        b"v",
                        t * 100 + i + 1,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(store.stats().keys, 400);
    let fsyncs = store.log_stats().fsyncs;
    assert!(fsyncs <= 400, "{fsyncs} fsyncs for 400 writes");
}

#[test]
fn a_failed_write_is_reported_poisons_the_store_and_reads_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
    let (store, _) = LogStore::open_with(backend.clone(), options(FsyncPolicy::Always)).unwrap();
    put(&store, b"a", b"1", 1).unwrap();
    backend.fail_after(Some(0));
    assert!(matches!(
        put(&store, b"b", b"2", 2),
        Err(StoreError::Write(_))
    ));
    assert_eq!(
        value(&store, b"b"),
        None,
        "the keydir must not point at a failed write"
    );
    backend.fail_after(None);
    assert!(matches!(
        put(&store, b"c", b"3", 3),
        Err(StoreError::Poisoned(_))
    ));
    assert!(matches!(store.sync(), Err(StoreError::Poisoned(_))));
    assert_eq!(value(&store, b"a"), Some(b"1".to_vec()));
    assert!(store.log_stats().poisoned.is_some());
}

#[test]
fn a_failed_fsync_fails_the_write_that_waited_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
    let (store, _) = LogStore::open_with(backend.clone(), options(FsyncPolicy::Always)).unwrap();
    // The write succeeds, its fsync fails.
    backend.fail_after(Some(1));
    assert!(matches!(
        put(&store, b"b", b"2", 2),
        Err(StoreError::Write(_))
    ));
    assert_eq!(value(&store, b"b"), None);
    assert!(matches!(
        put(&store, b"c", b"3", 3),
        Err(StoreError::Poisoned(_))
    ));
}

fn corrupt_setup(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (store, _) = open(dir, FsyncPolicy::No);
    let mut written = Vec::new();
    for i in 0..20u64 {
        let key = format!("key{i:02}").into_bytes();
        let value = vec![b'a' + i as u8; 30];
        put(&store, &key, &value, i + 1).unwrap();
        written.push((key, value));
    }
    store.sync().unwrap();
    written
}

/// Offset of the record of `key` in `file`.
fn record_offset(file: &[u8], key: &[u8]) -> usize {
    file.windows(key.len()).position(|w| w == key).unwrap() - RECORD_HEADER_BYTES
}

fn recovered(dir: &Path, written: &[(Vec<u8>, Vec<u8>)]) -> (RecoveryReport, usize) {
    let (store, report) = open(dir, FsyncPolicy::No);
    let mut intact = 0;
    for (key, value) in written {
        if let Some(record) = store.get(key, 0) {
            assert_eq!(
                record.bytes().map(|b| &b[..]),
                Some(&value[..]),
                "invented value"
            );
            intact += 1;
        }
    }
    (report, intact)
}

#[test]
fn recovery_truncates_a_record_torn_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let written = corrupt_setup(dir.path());
    let last = segment_files(dir.path()).pop().unwrap();
    let mut file = std::fs::read(&last).unwrap();
    let (key, _) = written.last().unwrap();
    let at = record_offset(&file, key);
    for b in &mut file[at + 20..at + 200] {
        *b = 0;
    }
    std::fs::write(&last, &file).unwrap();
    let (report, intact) = recovered(dir.path(), &written);
    assert_eq!(intact, 19);
    assert!(report.torn_tail_bytes_truncated > 0, "{report}");
    // Appending after the truncated tail works and survives another restart.
    {
        let (store, _) = open(dir.path(), FsyncPolicy::No);
        put(&store, b"new", b"v", 100).unwrap();
        store.sync().unwrap();
    }
    let (store, report) = open(dir.path(), FsyncPolicy::No);
    assert_eq!(value(&store, b"new"), Some(b"v".to_vec()));
    assert_eq!(report.torn_tail_bytes_truncated, 0);
}

#[test]
fn recovery_skips_records_with_flipped_bytes_in_header_key_or_value() {
    for (field, delta) in [
        ("header", 9usize),
        ("key", RECORD_HEADER_BYTES + 1),
        ("value", 60),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let written = corrupt_setup(dir.path());
        let files = segment_files(dir.path());
        let first = &files[0];
        let mut file = std::fs::read(first).unwrap();
        let at = record_offset(&file, &written[1].0);
        file[at + delta] ^= 0x5a;
        std::fs::write(first, &file).unwrap();
        let (report, intact) = recovered(dir.path(), &written);
        assert_eq!(intact, 19, "{field}: {report}");
        assert_eq!(report.corrupt_records_skipped, 1, "{field}: {report}");
    }
}

#[test]
fn recovery_survives_a_garbage_length_field() {
    let dir = tempfile::tempdir().unwrap();
    let written = corrupt_setup(dir.path());
    let first = &segment_files(dir.path())[0];
    let mut file = std::fs::read(first).unwrap();
    let at = record_offset(&file, &written[2].0);
    file[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    file[at + 8..at + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    std::fs::write(first, &file).unwrap();
    let (report, intact) = recovered(dir.path(), &written);
    assert_eq!(intact, 19, "{report}");
}

#[test]
fn recovery_reports_garbage_appended_and_a_zero_length_segment() {
    let dir = tempfile::tempdir().unwrap();
    let written = corrupt_setup(dir.path());
    let last = segment_files(dir.path()).pop().unwrap();
    let mut file = std::fs::read(&last).unwrap();
    let end = file.iter().rposition(|&b| b != 0).unwrap() + 1;
    for (i, b) in file[end + 8..end + 108].iter_mut().enumerate() {
        *b = (i * 37 + 11) as u8;
    }
    std::fs::write(&last, &file).unwrap();
    std::fs::write(dir.path().join("7fffffff.seg"), b"").unwrap();
    let (report, intact) = recovered(dir.path(), &written);
    assert_eq!(intact, 20, "{report}");
    assert_eq!(report.segments_skipped, 1);
    assert!(report.torn_tail_bytes_truncated > 0);
}

#[test]
fn recovery_reads_records_of_a_segment_with_a_damaged_header() {
    let dir = tempfile::tempdir().unwrap();
    let written = corrupt_setup(dir.path());
    let first = &segment_files(dir.path())[0];
    let mut file = std::fs::read(first).unwrap();
    file[2] ^= 1;
    std::fs::write(first, &file).unwrap();
    let (report, intact) = recovered(dir.path(), &written);
    assert_eq!((intact, report.corrupt_headers), (20, 1), "{report}");
}

#[test]
fn a_segment_of_an_unknown_format_version_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    corrupt_setup(dir.path());
    let first = &segment_files(dir.path())[0];
    let mut file = std::fs::read(first).unwrap();
    file[8] = 9;
    let crc = crc32c::crc32c(&file[..60]);
    file[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(first, &file).unwrap();
    let error = LogStore::open(dir.path(), options(FsyncPolicy::No))
        .err()
        .unwrap();
    assert!(error.to_string().contains("format_version 9"), "{error}");
}

#[test]
fn arbitrary_file_content_never_panics_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 7u64;
    for round in 0..20u64 {
        let len = [0usize, 10, 64, 100, 4096][round as usize % 5];
        let mut bytes = vec![0u8; len];
        for b in &mut bytes {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (seed >> 56) as u8;
        }
        if len >= HEADER_BYTES && round % 2 == 0 {
            let header = format::encode_header(&format::SegmentHeader {
                id: round as u32,
                seq: round << 32,
                segment_bytes: len as u64,
            });
            bytes[..HEADER_BYTES].copy_from_slice(&header);
        }
        std::fs::write(dir.path().join(format!("{round:08x}.seg")), &bytes).unwrap();
        std::fs::write(dir.path().join("keydir.snap"), &bytes).unwrap();
        let (store, _) = LogStore::open(dir.path(), options(FsyncPolicy::No)).unwrap();
        drop(store);
    }
}

#[test]
fn a_snapshot_makes_restart_scan_only_newer_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path(), FsyncPolicy::No);
        for i in 0..300u64 {
            put(&store, format!("k{i}").as_bytes(), &[i as u8; 30], i + 1).unwrap();
        }
        delete(&store, b"k7", 1000).unwrap();
        store.snapshot().unwrap();
        put(&store, b"k8", b"newer", 1001).unwrap();
        store.sync().unwrap();
    }
    let (store, report) = open(dir.path(), FsyncPolicy::No);
    assert!(report.from_snapshot, "{report}");
    assert!(report.records < 50, "{report}");
    assert_eq!(value(&store, b"k7"), None);
    assert_eq!(value(&store, b"k8"), Some(b"newer".to_vec()));
    assert_eq!(value(&store, b"k9"), Some(vec![9; 30]));
    assert_eq!(store.stats().keys, 299);
    drop(store);
    // A corrupt snapshot falls back to a full scan with the same result.
    let snap = dir.path().join("keydir.snap");
    let mut bytes = std::fs::read(&snap).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&snap, &bytes).unwrap();
    let (store, report) = open(dir.path(), FsyncPolicy::No);
    assert!(!report.from_snapshot);
    assert_eq!(value(&store, b"k7"), None);
    assert_eq!(value(&store, b"k8"), Some(b"newer".to_vec()));
    assert_eq!(store.stats().keys, 299);
}

#[test]
fn compaction_then_restart_keeps_deletes_and_the_newest_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let mut version = 0;
    {
        let (store, _) = open(dir.path(), FsyncPolicy::No);
        for round in 0..4u64 {
            for i in 0..100u64 {
                version += 1;
                put(
                    &store,
                    format!("k{i}").as_bytes(),
                    &[round as u8; 30],
                    version,
                )
                .unwrap();
            }
        }
        for i in 0..30u64 {
            version += 1;
            delete(&store, format!("k{i}").as_bytes(), version).unwrap();
        }
        let before = store.log_stats();
        assert!(before.dead_bytes > 0);
        // Tombstones are old enough to drop, but only from the oldest segment.
        store.expire_step(0, 1 << 20, 0, &TombstoneHorizon::uniform(u64::MAX));
        let compacted = store.compact(0).unwrap();
        assert!(compacted > 0);
        let after = store.log_stats();
        assert!(
            after.bytes_reclaimed > 0 && after.compactions > 0,
            "{after:?}"
        );
        assert!(after.dead_bytes < before.dead_bytes, "{before:?} {after:?}");
        for i in 0..100u64 {
            let expected = (i >= 30).then(|| vec![3u8; 30]);
            assert_eq!(value(&store, format!("k{i}").as_bytes()), expected);
        }
        store.sync().unwrap();
    }
    let (store, _) = open(dir.path(), FsyncPolicy::No);
    for i in 0..100u64 {
        let expected = (i >= 30).then(|| vec![3u8; 30]);
        assert_eq!(value(&store, format!("k{i}").as_bytes()), expected, "k{i}");
    }
    assert_eq!(store.stats().keys, 70);
}

#[test]
fn compaction_rewrites_expired_values_as_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path(), FsyncPolicy::No);
    for i in 0..200u64 {
        let record = Record::new(Bytes::from(vec![1u8; 40]), Some(50), v(i + 1));
        store.merge(format!("k{i}").as_bytes(), &record).unwrap();
    }
    for i in 0..200u64 {
        put(&store, format!("fill{i}").as_bytes(), b"x", 1000 + i).unwrap();
    }
    let mut options = options(FsyncPolicy::No);
    options.compaction_dead_ratio = 0.01;
    drop(store);
    let (store, _) = LogStore::open(dir.path(), options).unwrap();
    // Not dead yet: live until read at an expired time; make some dead by overwriting.
    put(&store, b"k0", b"y", 5000).unwrap();
    store.compact(100).unwrap();
    assert_eq!(store.get(b"k1", 100).unwrap().value, None);
    assert_eq!(store.get(b"k1", 100).unwrap().value_version, v(2));
    assert!(store.stats().tombstones >= 1);
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Expire(u8),
    Sync,
    Crash(Option<usize>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..24, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (0u8..24).prop_map(Op::Delete),
        1 => (0u8..24).prop_map(Op::Expire),
        1 => Just(Op::Sync),
        1 => proptest::option::of(0usize..80).prop_map(Op::Crash),
    ]
}

/// The states a key may be in after a crash: the state promised durable, and every later
/// one (writes after it may or may not have reached the disk).
type Possible = BTreeMap<u8, Vec<Option<u8>>>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn after_any_crash_every_promised_write_is_present_and_nothing_is_invented(
        always in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let policy = if always { FsyncPolicy::Always } else { FsyncPolicy::No };
        let dir = tempfile::tempdir().unwrap();
        let open_store = || {
            let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
            let (store, _) = LogStore::open_with(backend.clone(), options(policy)).unwrap();
            (store, backend)
        };
        let (mut store, mut backend) = open_store();
        // The model: the current state, and per key the states possible after a crash.
        let mut model: BTreeMap<u8, Option<u8>> = BTreeMap::new();
        let mut possible: Possible = BTreeMap::new();
        let mut version = 0u64;
        for op in &ops {
            version += 1;
            let state = match *op {
                Op::Put(k, value) => Some((k, Some(value))),
                Op::Delete(k) | Op::Expire(k) => Some((k, None)),
                Op::Sync | Op::Crash(_) => None,
            };
            if let Some((k, state)) = state {
                let record = match (op, state) {
                    (Op::Expire(_), _) => Record::new(Bytes::from_static(b"e"), Some(1), v(version)),
                    (_, Some(value)) => Record::new(Bytes::from(vec![value]), None, v(version)),
                    (_, None) => Record::tombstone(v(version)),
                };
                store.update(&[k], 0, &mut |_| Update::Put(record.clone())).unwrap();
                model.insert(k, state);
                if always {
                    possible.insert(k, vec![state]);
                } else {
                    possible.entry(k).or_insert_with(|| vec![None]).push(state);
                }
            }
            match *op {
                Op::Sync => {
                    store.sync().unwrap();
                    possible = model.iter().map(|(k, s)| (*k, vec![*s])).collect();
                }
                Op::Crash(torn) => {
                    drop(store);
                    backend.crash(torn).unwrap();
                    (store, backend) = open_store();
                    for k in 0u8..24 {
                        let got = store.get(&[k], 2).and_then(|r| r.bytes().map(|b| b[0]));
                        let allowed = possible.get(&k).cloned().unwrap_or_else(|| vec![None]);
                        prop_assert!(allowed.contains(&got), "key {} is {:?}, allowed {:?}", k, got, allowed);
                        match got {
                            Some(value) => { model.insert(k, Some(value)); }
                            None => { model.insert(k, None); }
                        }
                    }
                    possible = model.iter().map(|(k, s)| (*k, vec![*s])).collect();
                }
                _ => {}
            }
        }
        for k in 0u8..24 {
            let got = store.get(&[k], 2).and_then(|r| r.bytes().map(|b| b[0]));
            prop_assert_eq!(got, model.get(&k).copied().flatten());
        }
    }
}

/// Keys of the leaves property test: few, so that operations meet on the same keys.
const LEAF_KEYS: u8 = 24;

/// A step of the leaves property test: a call any store takes, or one of the log's own.
#[derive(Debug, Clone)]
enum LeafOp {
    Store(crate::testing::StoreOp),
    Compact(u64),
    Snapshot,
    Sync,
    /// Close and open again, the files as they are.
    Reopen,
    /// Close, lose what was not synced (the last write torn maybe), open again.
    Crash(Option<usize>),
    /// Fail every file operation after this many: appends fail and poison the store.
    FailAfter(u64),
}

fn leaf_op() -> impl Strategy<Value = LeafOp> {
    prop_oneof![
        14 => crate::testing::store_op(LEAF_KEYS).prop_map(LeafOp::Store),
        2 => (0..250u64).prop_map(LeafOp::Compact),
        1 => Just(LeafOp::Snapshot),
        1 => Just(LeafOp::Sync),
        1 => Just(LeafOp::Reopen),
        1 => proptest::option::of(0usize..200).prop_map(LeafOp::Crash),
        1 => (0..4u64).prop_map(LeafOp::FailAfter),
    ]
}

proptest! {
    // Few cases: every open allocates 8 MiB of leaves, 40 ms in a debug build.
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn the_merkle_leaves_always_equal_leaves_rebuilt_from_a_scan(
        ops in proptest::collection::vec(leaf_op(), 1..80),
    ) {
        use crate::testing::{StoreOp, apply, key_leaves_are_exact, leaves_are_exact};
        let dir = tempfile::tempdir().unwrap();
        let mut options = options(FsyncPolicy::No);
        options.compaction_dead_ratio = 0.3;
        let open_store = || {
            let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
            let (store, _) = LogStore::open_with(backend.clone(), options.clone()).unwrap();
            (store, backend)
        };
        let (mut store, mut backend) = open_store();
        for (step, op) in ops.iter().enumerate() {
            match op {
                LeafOp::Store(op) => {
                    if matches!(op, StoreOp::Clear) {
                        // A clear would hide a change made with a wrong token: check all first.
                        prop_assert!(leaves_are_exact(&store), "before step {}", step);
                    }
                    apply(&store, op, step as u64);
                }
                &LeafOp::Compact(now_ms) => {
                    let _ = store.compact(now_ms);
                }
                LeafOp::Snapshot => {
                    let _ = store.snapshot();
                }
                LeafOp::Sync => {
                    let _ = store.sync();
                }
                LeafOp::Reopen => {
                    drop(store);
                    (store, backend) = open_store();
                }
                &LeafOp::Crash(torn) => {
                    drop(store);
                    backend.crash(torn).unwrap();
                    (store, backend) = open_store();
                }
                &LeafOp::FailAfter(ops) => backend.fail_after(Some(ops)),
            }
            prop_assert!(
                key_leaves_are_exact(&store, LEAF_KEYS),
                "after step {} ({:?})", step, op
            );
        }
        prop_assert!(leaves_are_exact(&store));
    }
}

#[test]
fn leaves_recovered_from_a_snapshot_and_newer_segments_equal_the_recovered_keydir() {
    let dir = tempfile::tempdir().unwrap();
    let before = MerkleLeaves::new();
    {
        let (store, _) = open(dir.path(), FsyncPolicy::No);
        for i in 0..200u64 {
            put(&store, format!("k{i}").as_bytes(), &[i as u8; 30], i + 1).unwrap();
        }
        delete(&store, b"k7", 1000).unwrap();
        store.snapshot().unwrap();
        // After the snapshot: a replaced key, a deleted one, a discarded one, a new one.
        put(&store, b"k8", b"newer", 1001).unwrap();
        delete(&store, b"k9", 1002).unwrap();
        assert!(store.discard(b"k10").unwrap());
        put(&store, b"new", b"x", 1003).unwrap();
        store.sync().unwrap();
        assert!(crate::testing::leaves_are_exact(&store));
        crate::testing::leaves_from_scan(&store, &before);
    }
    let (store, report) = open(dir.path(), FsyncPolicy::No);
    assert!(report.from_snapshot, "{report}");
    assert!(crate::testing::leaves_are_exact(&store));
    assert!(store.merkle().same_as(&before));
}

#[test]
fn compaction_drops_tombstones_by_the_horizon_of_their_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(FsyncPolicy::No);
    options.compaction_dead_ratio = 0.01;
    let (store, _) = LogStore::open(dir.path(), options).unwrap();
    let keys: Vec<Vec<u8>> = (0..40u64).map(|i| format!("k{i}").into_bytes()).collect();
    let old = Version {
        hlc: 1_000 << Version::LOGICAL_BITS,
        node: 1,
    };
    // Dead bytes in the first segment, so that compaction takes it.
    for i in 0..5u64 {
        put(&store, b"overwritten", &[1; 60], (2_000 << 16) + i).unwrap();
    }
    for key in &keys {
        store.merge(key, &Record::tombstone(old)).unwrap();
    }
    // Fill past the first segment, so that the tombstones' segment is sealed and oldest.
    for i in 0..100u64 {
        put(&store, format!("fill{i}").as_bytes(), &[1; 60], 2_000 << 16).unwrap();
    }
    let half = u64::MAX / 2;
    let horizon = TombstoneHorizon::by_span(vec![(0, half, 5_000), (half + 1, u64::MAX, 900)]);
    // A step that looks at nothing: compaction is to drop the tombstones, by this horizon.
    store.expire_step(0, 1, 0, &horizon);
    assert!(store.compact(0).unwrap() > 0);
    let low = keys.iter().filter(|k| crate::key_token(k) <= half).count();
    assert!(low > 0 && low < keys.len());
    let mut kept = 0;
    for key in &keys {
        let present = store.peek(key, 0).is_some();
        if crate::key_token(key) <= half {
            // The expire step itself may have dropped one it looked at.
            assert!(!present, "{key:?}");
        } else {
            assert!(present, "{key:?}");
            kept += 1;
        }
    }
    assert_eq!(kept, keys.len() - low);
    assert!(crate::testing::leaves_are_exact(&store));
}

#[test]
#[ignore = "slow: measures the keydir's bytes per key for 1,000,000 keys"]
fn keydir_overhead_per_key_for_a_million_small_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(FsyncPolicy::No);
    options.segment_bytes_max = 64 << 20;
    let (store, _) = LogStore::open(dir.path(), options).unwrap();
    let keys = 1_000_000u64;
    for i in 0..keys {
        put(&store, format!("key:{i:010}").as_bytes(), b"v", i + 1).unwrap();
    }
    let (capacity, len) = store.keydir_capacity();
    let entry = std::mem::size_of::<keydir::Entry>();
    // hashbrown: one entry and one control byte per bucket, buckets = capacity * 8 / 7.
    let buckets = capacity * 8 / 7;
    let bytes = buckets * (entry + 1);
    println!(
        "keydir: {len} keys, {buckets} buckets, {bytes} bytes, {:.1} bytes per key",
        bytes as f64 / len as f64
    );
}

#[test]
fn everysec_makes_a_write_durable_within_about_a_second_and_snapshots_after_a_seal() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
    let mut options = options(FsyncPolicy::EverySec);
    options.background = true;
    let (store, _) = LogStore::open_with(backend.clone(), options.clone()).unwrap();
    for i in 0..100u64 {
        put(&store, format!("k{i}").as_bytes(), &[5; 40], i + 1).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(store.log_stats().snapshots >= 1, "{:?}", store.log_stats());
    drop(store);
    backend.crash(Some(10)).unwrap();
    let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
    let (store, report) = LogStore::open_with(backend, options).unwrap();
    assert!(report.from_snapshot, "{report}");
    for i in 0..100u64 {
        assert_eq!(value(&store, format!("k{i}").as_bytes()), Some(vec![5; 40]));
    }
}

#[test]
fn a_collection_merged_under_an_unchanged_header_version_keeps_every_cell_across_restarts() {
    use crate::collection::Collection;
    use crate::record::DataType;
    let dir = tempfile::tempdir().unwrap();
    let version = |hlc| Version { hlc, node: 1 };
    let delta = |element: &'static [u8], at: u64| {
        let mut cells = Collection::default();
        cells.put(element, Some(b"v"), version(at));
        Record::collection(DataType::Hash, cells, None, version(at))
    };
    {
        let (store, _) = LogStore::open(dir.path(), options(FsyncPolicy::Always)).unwrap();
        assert!(store.merge(b"h", &delta(b"new", 20)).unwrap());
        // An older element write arrives later: the header version stays 20, a cell is added.
        assert!(store.merge(b"h", &delta(b"old", 10)).unwrap());
        store.sync().unwrap();
    }
    for round in 0..2 {
        let (store, _) = LogStore::open(dir.path(), options(FsyncPolicy::Always)).unwrap();
        let record = store.get(b"h", 0).unwrap();
        assert_eq!(record.value_version, version(20));
        let cells = record.cells().unwrap().clone();
        assert_eq!(cells.live_count(), 2, "after restart {round}");
        assert!(crate::testing::leaves_are_exact(&store));
        if round == 0 {
            store.snapshot().unwrap();
        }
    }
}

/// A step of the collection-chain property test.
#[derive(Debug, Clone)]
enum CellOp {
    /// An element write through `update_in_place`, as a command on one node: set (`Some`)
    /// or forget (`None`, a single node's removal) element `e` of hash `k`.
    Edit(u8, u8, Option<u8>),
    /// A replica's merge of one cell (set or removed) of hash `k`.
    Merge(u8, u8, Option<u8>),
    /// `DEL k`.
    Delete(u8),
    Compact,
    Snapshot,
    Reopen,
    /// Close, lose what was not synced (nothing: every write is acknowledged after fsync),
    /// open again.
    Crash(Option<usize>),
}

fn cell_op() -> impl Strategy<Value = CellOp> {
    let value = proptest::option::weighted(0.8, any::<u8>());
    prop_oneof![
        10 => (0u8..4, 0u8..12, value.clone()).prop_map(|(k, e, x)| CellOp::Edit(k, e, x)),
        6 => (0u8..4, 0u8..12, value).prop_map(|(k, e, x)| CellOp::Merge(k, e, x)),
        1 => (0u8..4).prop_map(CellOp::Delete),
        2 => Just(CellOp::Compact),
        1 => Just(CellOp::Snapshot),
        1 => Just(CellOp::Reopen),
        1 => proptest::option::of(0usize..80).prop_map(CellOp::Crash),
    ]
}

/// The live fields of hash `k` as the store holds it.
fn fields_of(store: &LogStore, k: u8) -> BTreeMap<u8, u8> {
    let Some(record) = store.get(&[b'h', k], 2) else {
        return BTreeMap::new();
    };
    if !record.is_live(2) {
        return BTreeMap::new();
    }
    record
        .cells()
        .map(|c| c.live().map(|(e, v)| (e[0], v[0])).collect())
        .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Collections written element by element (deltas chained onto a base) read back exactly
    /// through restarts, crashes, compaction (which re-bases chains) and snapshots (which
    /// cover no chain): no element lost, none back from the dead.
    #[test]
    fn chained_collections_survive_crashes_compaction_and_snapshots(
        ops in proptest::collection::vec(cell_op(), 1..150),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut options = options(FsyncPolicy::Always);
        options.compaction_dead_ratio = 0.2;
        let open_store = || {
            let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
            let (store, _) = LogStore::open_with(backend.clone(), options.clone()).unwrap();
            (store, backend)
        };
        let (mut store, mut backend) = open_store();
        let mut model: BTreeMap<u8, BTreeMap<u8, u8>> = BTreeMap::new();
        let mut version = 1u64 << 20;
        for op in &ops {
            version += 1;
            match *op {
                CellOp::Edit(k, e, x) => {
                    store.update_in_place(&[b'h', k], 2, &mut |record| {
                        let mut cells = match record.cells() {
                            Some(c) if record.kind == DataType::Hash => c.clone(),
                            _ => Collection::cleared_at(record.value_version),
                        };
                        let element = [e];
                        match x {
                            Some(x) => {
                                cells.put(&element, Some(&[x]), v(version));
                            }
                            None => {
                                cells.forget(&element);
                            }
                        }
                        *record = Record::collection(
                            DataType::Hash,
                            cells,
                            None,
                            v(version),
                        );
                        true
                    }).unwrap();
                    let fields = model.entry(k).or_default();
                    match x {
                        Some(x) => { fields.insert(e, x); }
                        None => { fields.remove(&e); }
                    }
                }
                CellOp::Merge(k, e, x) => {
                    let mut cells = Collection::default();
                    let payload = x.map(|x| [x]);
                    cells.put(&[e], payload.as_ref().map(|x| &x[..]), v(version));
                    let record = Record::collection(DataType::Hash, cells, None, v(version));
                    store.merge(&[b'h', k], &record).unwrap();
                    let fields = model.entry(k).or_default();
                    match x {
                        Some(x) => { fields.insert(e, x); }
                        None => { fields.remove(&e); }
                    }
                }
                CellOp::Delete(k) => {
                    store.update(&[b'h', k], 2, &mut |_| Update::Put(Record::tombstone(v(version)))).unwrap();
                    model.remove(&k);
                }
                CellOp::Compact => {
                    store.compact(3).unwrap();
                }
                CellOp::Snapshot => {
                    store.snapshot().unwrap();
                }
                CellOp::Reopen => {
                    drop(store);
                    (store, backend) = open_store();
                }
                CellOp::Crash(torn) => {
                    drop(store);
                    backend.crash(torn).unwrap();
                    (store, backend) = open_store();
                }
            }
            for k in 0u8..4 {
                prop_assert_eq!(
                    fields_of(&store, k),
                    model.get(&k).cloned().unwrap_or_default(),
                    "hash {} after {:?}", k, op
                );
            }
        }
        prop_assert!(crate::testing::leaves_are_exact(&store));
    }
}

#[test]
fn an_element_write_into_a_large_hash_appends_a_small_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(FsyncPolicy::No);
    options.segment_bytes_max = 1 << 24;
    let (store, _) = LogStore::open(dir.path(), options).unwrap();
    let mut cells = Collection::default();
    for i in 0..10_000u32 {
        cells.put(format!("field{i}").as_bytes(), Some(b"value"), v(1));
    }
    let hash = Record::collection(DataType::Hash, cells, None, v(1));
    store
        .update(b"h", 0, &mut |_| Update::Put(hash.clone()))
        .unwrap();
    let written = |store: &LogStore| store.log_stats().live_bytes + store.log_stats().dead_bytes;
    let before = written(&store);
    for round in 0..100u64 {
        store
            .update_in_place(b"h", 0, &mut |record| {
                let mut cells = record.cells().unwrap().clone();
                cells.put(b"field7", Some(round.to_string().as_bytes()), v(2 + round));
                record.value = Some(crate::record::Value::Cells(Arc::new(cells)));
                record.value_version = v(2 + round);
                true
            })
            .unwrap();
    }
    // 100 writes of one field: about 100 small records, not 100 copies of 10,000 fields
    // (each ~200 KB).
    let per_write = (written(&store) - before) / 100;
    assert!(per_write < 512, "{per_write} bytes per element write");
    assert_eq!(
        store.get(b"h", 0).unwrap().cells().unwrap().get(b"field7"),
        Some(&b"99"[..])
    );
}

#[test]
fn chains_survive_compaction_and_snapshots_running_beside_the_writers() {
    // Compaction and snapshots on their own threads while hashes are written element by
    // element: the decisions they make about a chain's links race with writers extending
    // the chain. After a crash every acknowledged field must be there, and no other.
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(FsyncPolicy::Always);
    options.compaction_dead_ratio = 0.1;
    let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
    let (store, _) = LogStore::open_with(backend.clone(), options.clone()).unwrap();
    let store = Arc::new(store);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let maintenance: Vec<_> = (0..2)
        .map(|which| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match which {
                        0 => drop(store.compact(3)),
                        _ => drop(store.snapshot()),
                    }
                }
            })
        })
        .collect();
    let mut model: BTreeMap<u8, BTreeMap<u8, u8>> = BTreeMap::new();
    // Many keys, most written rarely: a key's full record then sits alone in a sealed
    // segment when compaction or a snapshot looks at it, and a write may come right after.
    for step in 0..8_000u64 {
        let mixed = step.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
        let k = if mixed % 4 == 0 {
            (mixed % 48) as u8
        } else {
            (mixed % 3) as u8
        };
        let e = (step.wrapping_mul(7919) % 40) as u8;
        let value = (step % 3 != 0).then_some(step as u8);
        let version = v((1 << 20) + step);
        store
            .update_in_place(&[b'h', k], 2, &mut |record| {
                let mut cells = match record.cells() {
                    Some(c) => c.clone(),
                    None => Collection::cleared_at(record.value_version),
                };
                let element = [e];
                match value {
                    Some(x) => {
                        cells.put(&element, Some(&[x]), version);
                    }
                    None => {
                        cells.forget(&element);
                    }
                }
                *record = Record::collection(DataType::Hash, cells, None, version);
                true
            })
            .unwrap();
        match value {
            Some(x) => model.entry(k).or_default().insert(e, x),
            None => model.entry(k).or_default().remove(&e),
        };
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for thread in maintenance {
        thread.join().unwrap();
    }
    let store = Arc::into_inner(store).expect("the threads are done");
    drop(store);
    backend.crash(None).unwrap();
    let (store, _) = LogStore::open_with(backend, options).unwrap();
    for k in 0u8..48 {
        assert_eq!(
            fields_of(&store, k),
            model.get(&k).cloned().unwrap_or_default(),
            "hash {k}"
        );
    }
    assert!(crate::testing::leaves_are_exact(&store));
}

#[test]
fn a_write_never_extends_a_chain_into_a_segment_being_compacted() {
    // Compaction decides about a collection record under the key's lock and acts later; a
    // writer that extended the chain in between would leave a link compaction has already
    // judged. So while a segment holding a link is being compacted, the write is whole.
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = LogStore::open(dir.path(), options(FsyncPolicy::No)).unwrap();
    let hash = |version: u64, field: u8| {
        let mut cells = Collection::default();
        cells.put(&[field], Some(b"x"), v(version));
        Record::collection(DataType::Hash, cells, None, v(version))
    };
    let latest_is_delta = |store: &LogStore| {
        let inner = &store.inner;
        let token = crate::token::key_token(b"h");
        let mut shard = inner.lock_shard(crate::shard::shard_of(token));
        let segments = inner.segments.read();
        let entry = *super::inner::Inner::find(&segments, &mut shard.table, token, b"h").unwrap();
        let segment = segments.get(&entry.segment).unwrap().clone();
        (
            segment.header_at(entry.offset()).unwrap().is_delta(),
            segment,
        )
    };
    store.merge(b"h", &hash(1, 0)).unwrap();
    store.merge(b"h", &hash(2, 1)).unwrap();
    let (delta, segment) = latest_is_delta(&store);
    assert!(delta, "a second field extends the chain");
    segment
        .compacting
        .store(true, std::sync::atomic::Ordering::SeqCst);
    store.merge(b"h", &hash(3, 2)).unwrap();
    assert!(
        !latest_is_delta(&store).0,
        "written whole while a link is being compacted"
    );
    segment
        .compacting
        .store(false, std::sync::atomic::Ordering::SeqCst);
    store.merge(b"h", &hash(4, 3)).unwrap();
    assert!(latest_is_delta(&store).0);
    assert_eq!(fields_of_key(&store, b"h").len(), 4);
}

/// How many live fields the hash at `key` holds.
fn fields_of_key(store: &LogStore, key: &[u8]) -> Vec<Bytes> {
    store
        .get(key, 2)
        .and_then(|r| {
            r.cells()
                .map(|c| c.live().map(|(e, _)| Bytes::copy_from_slice(e)).collect())
        })
        .unwrap_or_default()
}

/// An element write edits the chain's state where it is kept: when appending its delta
/// fails, the edit is undone, and reads see the collection as it was, not a write that was
/// never acknowledged.
#[test]
fn a_failed_element_write_leaves_the_collection_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
    let (store, _) = LogStore::open_with(backend.clone(), options(FsyncPolicy::No)).unwrap();
    let mut hash = Collection::default();
    for field in [&b"a"[..], b"b"] {
        hash.put(field, Some(b"1"), v(1));
    }
    let record = Record::collection(DataType::Hash, hash, None, v(1));
    store
        .update(b"h", 0, &mut |_| Update::Put(record.clone()))
        .unwrap();
    // As a command does: edit the stored cells in place, stamp the header.
    let write = |store: &LogStore, field: &'static [u8], version: u64| {
        store.update_in_place(b"h", 0, &mut |record| {
            let Some(crate::record::Value::Cells(cells)) = &mut record.value else {
                panic!("a hash");
            };
            let cells = Arc::make_mut(cells);
            cells.put(field, Some(b"2"), v(version));
            cells.forget(b"a");
            record.value_version = v(version);
            true
        })
    };
    write(&store, b"c", 2).unwrap();
    let fields = |store: &LogStore| -> Vec<Vec<u8>> {
        let record = store.get(b"h", 0).unwrap();
        record
            .cells()
            .unwrap()
            .live()
            .map(|(f, _)| f.to_vec())
            .collect()
    };
    assert_eq!(fields(&store), [b"b".to_vec(), b"c".to_vec()]);
    // Held as bytes, not as the record: a held record shares the state, and the write
    // would edit a copy instead.
    let encoded = |store: &LogStore| {
        let record = store.get(b"h", 0).unwrap();
        (
            record.value.as_ref().unwrap().to_bytes(),
            record.value_version,
        )
    };
    let before = encoded(&store);
    backend.fail_after(Some(0));
    assert!(matches!(write(&store, b"d", 3), Err(StoreError::Write(_))));
    assert_eq!(
        encoded(&store),
        before,
        "the failed write's cells or header stayed"
    );
    assert_eq!(fields(&store), [b"b".to_vec(), b"c".to_vec()]);
}
