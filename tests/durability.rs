//! Durability of the log-structured engine under kill -9: every write the fsync policy
//! promised is there after a restart, and deleted keys stay deleted.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{RespConn, Ringcache, TempDir, Val, encode_command};

/// Writers hammering the server while it is killed.
const WRITERS: usize = 4;
/// Most writes one writer makes, whatever happens (a bound, not a target).
const WRITES_PER_WRITER_MAX: usize = 200_000;
/// Most time the writers run before the kill.
const WRITE_PHASE_MAX: Duration = Duration::from_secs(3);

fn start(data: &TempDir, extra: &[&str]) -> Ringcache {
    let dir = data.path().display().to_string();
    let mut args = vec!["--data-dir", dir.as_str(), "--storage", "log"];
    args.extend_from_slice(extra);
    Ringcache::start(&args)
}

fn value_of(writer: usize, i: usize) -> String {
    format!("value-{writer}-{i}-{}", "x".repeat(i % 50))
}

/// Writes until told to stop or the connection fails; returns the keys whose SET was
/// acknowledged with +OK, in order.
fn write_until_killed(port: u16, writer: usize, stop: &AtomicBool) -> Vec<(String, String)> {
    let mut acked = Vec::new();
    let Ok(mut conn) = RespConn::try_connect(port) else {
        return acked;
    };
    for i in 0..WRITES_PER_WRITER_MAX {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let key = format!("w{writer}:{i}");
        let value = value_of(writer, i);
        if conn
            .try_send(&encode_command(&["SET", key.as_str(), value.as_str()]))
            .is_err()
        {
            break;
        }
        match conn.try_read_frame() {
            Ok(frame) if frame == b"+OK\r\n" => acked.push((key, value)),
            _ => break,
        }
    }
    acked
}

/// Reads every key back in pipelined chunks and returns the ones that differ.
fn missing_or_wrong(conn: &mut RespConn, expected: &[(String, Option<String>)]) -> Vec<String> {
    let mut wrong = Vec::new();
    for chunk in expected.chunks(500) {
        let mut batch = Vec::new();
        for (key, _) in chunk {
            batch.extend(encode_command(&["GET", key.as_str()]));
        }
        conn.send(&batch);
        for (key, want) in chunk {
            let got = conn.read_reply();
            let ok = match (want, &got) {
                (Some(want), got) => got.text().as_deref() == Some(want.as_str()),
                (None, got) => matches!(got, Val::NullBulk),
            };
            if !ok {
                wrong.push(format!("{key}: want {want:?}, got {got}"));
            }
        }
    }
    wrong
}

#[test]
fn every_acknowledged_set_survives_kill_9_with_appendfsync_always() {
    let data = TempDir::new("ringcache-durability");
    let mut node = start(&data, &["--appendfsync", "always"]);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (port, stop) = (node.port(), stop.clone());
            thread::spawn(move || write_until_killed(port, w, &stop))
        })
        .collect();
    // Kill at a moment that differs from run to run, while the writers are busy.
    let kill_after = Duration::from_millis(300 + rand::random::<u64>() % 1200);
    thread::sleep(kill_after.min(WRITE_PHASE_MAX));
    node.process.kill();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(String, String)> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer"))
        .collect();
    eprintln!(
        "killed after {kill_after:?} with {} acknowledged SETs",
        acked.len()
    );
    assert!(
        acked.len() > 100,
        "too few writes acknowledged to mean anything: {}",
        acked.len()
    );

    let started = Instant::now();
    let node = start(&data, &["--appendfsync", "always"]);
    eprintln!("restarted in {:?}", started.elapsed());
    let expected: Vec<_> = acked.into_iter().map(|(k, v)| (k, Some(v))).collect();
    let wrong = missing_or_wrong(&mut node.conn(), &expected);
    assert!(
        wrong.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}

#[test]
fn deleted_and_overwritten_keys_keep_their_last_state_across_kill_9_and_compaction() {
    let data = TempDir::new("ringcache-durability-del");
    // Small segments so that the overwrites below fill and seal several, which compaction
    // then rewrites.
    let mut node = start(
        &data,
        &["--appendfsync", "always", "--segment-bytes", "1mb"],
    );
    let mut conn = node.conn();
    let keys = 2_000;
    let mut expected: Vec<(String, Option<String>)> = Vec::new();
    for i in 0..keys {
        let key = format!("k{i}");
        assert_eq!(
            conn.cmd(&["SET", key.as_str(), "first"]).text().as_deref(),
            Some("OK")
        );
    }
    for round in 0..5 {
        for i in (0..keys).step_by(2) {
            let value = format!("round-{round}-{}", "y".repeat(200));
            conn.cmd(&["SET", format!("k{i}").as_str(), value.as_str()]);
        }
    }
    for i in 0..keys {
        let key = format!("k{i}");
        if i % 4 == 1 {
            assert!(matches!(conn.cmd(&["DEL", key.as_str()]), Val::Int(1)));
            expected.push((key, None));
        } else if i % 2 == 0 {
            expected.push((key, Some(format!("round-4-{}", "y".repeat(200)))));
        } else {
            expected.push((key, Some("first".into())));
        }
    }
    // Wait (bounded) until background compaction has rewritten at least one segment, so the
    // restart below reads compacted segments.
    let deadline = Instant::now() + Duration::from_secs(10);
    let compactions = loop {
        let info = conn
            .cmd(&["INFO", "persistence"])
            .text()
            .unwrap_or_default();
        let count = info
            .lines()
            .find_map(|l| l.strip_prefix("log_compactions:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if count > 0 || Instant::now() > deadline {
            break count;
        }
        thread::sleep(Duration::from_millis(100));
    };
    assert!(
        compactions > 0,
        "no compaction ran; the test would not cover it"
    );
    node.process.kill();

    let node = start(
        &data,
        &["--appendfsync", "always", "--segment-bytes", "1mb"],
    );
    let wrong = missing_or_wrong(&mut node.conn(), &expected);
    assert!(
        wrong.is_empty(),
        "{} keys wrong after restart, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}
