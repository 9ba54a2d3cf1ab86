//! End to end: `ringcache-bench --verify` (run in-process through the library) against real
//! ringcache processes. Every GET reply is checked against what the generator issued, so these
//! tests check the server's consistency promises under load, and the generator's own
//! bookkeeping: failover to the next server, connection errors counted, nothing wrong.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Cluster, Ringcache, wait_for};
use ringcache_bench::load::{Options, Progress, Report, run, run_with_progress};

/// How long the cluster run measures; the kill comes a third of the way in.
const CLUSTER_RUN: Duration = Duration::from_secs(6);
/// How long the measured phase may take to begin (connects only, no preload).
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// GET checks a run must make at least for its verdict to mean something.
const CHECKED_MIN: u64 = 2_000;

fn options(args: &[&str]) -> Options {
    Options::try_parse_checked(std::iter::once("ringcache-bench").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("options {args:?}: {e:#}"))
}

/// Runs the generator on its own thread, as a caller of the library would.
fn start(options: Options) -> (Arc<Progress>, thread::JoinHandle<anyhow::Result<Report>>) {
    let progress = Arc::new(Progress::default());
    let watched = Arc::clone(&progress);
    let handle = thread::spawn(move || run_with_progress(options, watched));
    (progress, handle)
}

fn assert_verified(report: &Report) {
    eprintln!("{}", report.table());
    let verify = report
        .verify
        .as_ref()
        .expect("a --verify run reports verify");
    assert!(
        verify.wrong == 0 && verify.missing == 0,
        "verify found {} wrong and {} missing; first: {:#?}\n{}",
        verify.wrong,
        verify.missing,
        verify.offences,
        report.table()
    );
    assert!(
        verify.checked >= CHECKED_MIN,
        "only {} GETs checked\n{}",
        verify.checked,
        report.table()
    );
}

#[test]
fn quorum_reads_see_every_acknowledged_write_while_a_node_is_killed() {
    let mut cluster = Cluster::start(3, &["--storage", "memory"]);
    let servers: Vec<String> = (0..3)
        .map(|i| format!("127.0.0.1:{}", cluster.port(i)))
        .collect();
    let servers = servers.join(",");
    let duration = format!("{}ms", CLUSTER_RUN.as_millis());
    let (progress, handle) = start(options(&[
        "--servers",
        &servers,
        "--clients",
        "12",
        "--pipeline",
        "4",
        "--ratio",
        "1:1",
        "--key-space",
        "2000",
        "--read-level",
        "QUORUM",
        "--write-level",
        "QUORUM",
        "--verify",
        "--duration",
        &duration,
        "--timeout",
        "5s",
        "--seed",
        "7",
        "--quiet",
    ]));

    let measuring = wait_for(START_TIMEOUT, || progress.measuring().then(Instant::now))
        .unwrap_or_else(|| panic!("the run did not start\n{}", cluster.describe()));
    thread::sleep(CLUSTER_RUN / 3);
    assert!(
        progress.requests() > 0,
        "no request in {:?}",
        measuring.elapsed()
    );
    cluster.kill(0);
    let gets_at_kill = progress.gets_ok();

    let report = handle
        .join()
        .expect("the generator thread panicked")
        .unwrap_or_else(|e| panic!("the run failed: {e:#}\n{}", cluster.describe()));
    assert_verified(&report);
    let gets_ok = report.ops.get.requests - report.ops.get.errors;
    assert!(
        progress.gets_ok() > gets_at_kill + 1_000,
        "{} successful GETs in all, {gets_at_kill} of them before the kill\n{}",
        progress.gets_ok(),
        report.table()
    );
    assert_eq!(gets_ok, progress.gets_ok());
    let lost = report.errors.get("connection").copied().unwrap_or(0);
    assert!(
        lost > 0,
        "the killed node's clients lost no request\n{}",
        report.table()
    );
    assert_eq!(
        report.requests,
        progress.requests(),
        "the report and the live counters disagree"
    );
}

#[test]
fn a_single_node_under_zipf_load_returns_only_values_it_was_given() {
    let node = Ringcache::start(&["--storage", "memory"]);
    let server = format!("127.0.0.1:{}", node.port());
    let pid = node.process.pid().to_string();
    let report = run(options(&[
        "--servers",
        &server,
        "--clients",
        "8",
        "--pipeline",
        "8",
        "--ratio",
        "1:3",
        "--key-space",
        "500",
        "--key-pattern",
        "zipf",
        "--verify",
        "--requests",
        "30000",
        "--measure-pids",
        &pid,
        "--quiet",
    ]))
    .unwrap_or_else(|e| panic!("the run failed: {e:#}\n{}", node.process.log()));
    assert_verified(&report);
    assert_eq!(report.requests, 30_000);
    assert!(report.errors.is_empty(), "errors: {:?}", report.errors);
    assert!(
        report.server_cpu_s.is_some_and(|s| s > 0.0),
        "no server CPU measured\n{}",
        report.table()
    );
}
