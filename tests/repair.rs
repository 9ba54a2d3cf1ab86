//! Anti-entropy end to end: three real processes on loopback (N = 3, so every node replicates
//! every key), one of them stopped while keys are overwritten and deleted through the others
//! with `--hint-window-ms 0` (no hints: only repair can bring it back up to date), then
//! restarted on its own data dir.
//!
//! - `RING REPAIR ALL` on the restarted node pulls exactly the changed keys, after which that
//!   node alone, at `CONSISTENCY ONE`, serves every overwrite, no deleted key, and every other
//!   key as written.
//! - With a short `--repair-interval-s` and no command at all, the scheduler brings the
//!   restarted node back, tombstones stay while a replica is down, go once the range was
//!   repaired with every replica, and a deleted key never comes back.
//! - `RING REPAIR`'s bad input, and `RING REPAIR STATUS`.
//!
//! Each test holds [`serial`]'s lock: they load thousands of keys through debug builds on a
//! two-core machine with 1 s write timeouts, and print timings the lead quotes.

mod common;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::{Cluster, RespConn, Ringcache, Val, encode_command};

/// Keys of the long-outage test unless `REPAIR_E2E_KEYS` says otherwise. The issue asks for
/// 1,000,000; a debug build on two cores took 132 s for those (90 s to load them at ALL,
/// 4.5 s for `RING REPAIR ALL`, 26 s to read them back), so CI runs this many (about 25 s)
/// and the million is measured in a release run: `REPAIR_E2E_KEYS=1000000`.
const OUTAGE_KEYS_DEFAULT: usize = 200_000;
/// Keys of the scheduler test: enough for hundreds of changed keys spread over the ranges.
const ZOMBIE_KEYS: usize = 20_000;
/// One key in this many is overwritten while the node is down, and one in this many deleted:
/// 1% each.
const CHANGE_EVERY: usize = 100;
/// Commands pipelined in one write.
const BATCH: usize = 2_000;
/// Client threads (each on its own node) that load the keys.
const LOADERS: usize = 24;
/// Client threads that read every key back from the repaired node.
const READERS: usize = 2;
/// The `--repair-interval-s` of the scheduler test: short, so that rounds run every few
/// seconds.
const REPAIR_INTERVAL_S: &str = "3";
/// `--vnodes`, given explicitly so that the range count does not depend on a default.
const VNODES: usize = 512;
/// A node that exited or was killed is seen down by the others within this.
const DOWN_SEEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a restarted node may take until everyone sees everyone up again.
const UP_AGAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to exit after `SHUTDOWN`.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one `RING REPAIR` may take to answer (a debug build, every range).
const REPAIR_REPLY_TIMEOUT: Duration = Duration::from_secs(300);
/// The tombstone margin with `--hint-window-ms 0` and the harness's timeouts:
/// `--max-clock-offset-ms` (500) + max(`--write-timeout-ms` 1000, hint window 0).
const TOMBSTONE_MARGIN: Duration = Duration::from_millis(1_500);
/// How long the test watches the tombstones while a replica is down: past the margin, a full
/// expiry sweep of the store (2,000 records a step, ten steps a second: about 2 s for the
/// scheduler test's records) and a refresh of the horizon (every second), with slack; and
/// past one retry of the ranges a round could not repair (the server retries them after
/// min(10 s, interval), checking every 1 to 1.5 s), so at least one more incomplete round.
const TOMBSTONES_KEPT_WATCH: Duration = Duration::from_secs(8);
/// How long the scheduler may take, after a node came back, to repair every range and the
/// sweep to drop every tombstone: a few intervals plus a few sweeps.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the scheduler may take to repair every range once after the cluster formed.
const FIRST_ROUNDS_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the tests poll `INFO`.
const POLL: Duration = Duration::from_millis(200);

// ------------------------------------------------------------------------------------------
// Helpers

/// One test at a time (see the module doc); a test that failed does not block the others.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What happens to key `i` while the node is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Untouched,
    Overwritten,
    Deleted,
}

fn change(i: usize) -> Change {
    match i % CHANGE_EVERY {
        0 => Change::Overwritten,
        1 => Change::Deleted,
        _ => Change::Untouched,
    }
}

fn key(i: usize) -> String {
    format!("repair:{i:07}")
}

fn first_value(i: usize) -> String {
    format!("first-{i}")
}

fn second_value(i: usize) -> String {
    format!("second-{i}")
}

/// What key `i` must read after the outage and the repair.
fn expected(i: usize) -> Val {
    match change(i) {
        Change::Untouched => Val::Bulk(first_value(i).into_bytes()),
        Change::Overwritten => Val::Bulk(second_value(i).into_bytes()),
        Change::Deleted => Val::NullBulk,
    }
}

fn changed_keys(keys: usize) -> Vec<usize> {
    (0..keys)
        .filter(|&i| change(i) != Change::Untouched)
        .collect()
}

/// Sends `commands` in pipelined batches of [`BATCH`] and checks each reply with `check`
/// (given the command's index in `commands`); returns the first few failures and how many
/// there were.
fn pipelined(
    conn: &mut RespConn,
    commands: &[Vec<Vec<u8>>],
    check: impl Fn(usize, &Val) -> bool,
) -> (Vec<String>, usize) {
    const SHOWN_MAX: usize = 10;
    let mut shown = Vec::new();
    let mut failures = 0;
    for (b, batch) in commands.chunks(BATCH).enumerate() {
        let mut bytes = Vec::new();
        for command in batch {
            bytes.extend(encode_command(command));
        }
        conn.send(&bytes);
        for (j, command) in batch.iter().enumerate() {
            let index = b * BATCH + j;
            let reply = conn.read_reply();
            if !check(index, &reply) {
                failures += 1;
                if shown.len() < SHOWN_MAX {
                    let args: Vec<String> = command
                        .iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    shown.push(format!("{args:?} answered {reply}"));
                }
            }
        }
    }
    (shown, failures)
}

fn args(words: &[&str]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// Writes `first_value` to every key in `0..keys` at `CONSISTENCY ALL`, [`LOADERS`] clients
/// side by side, each on its own node; panics unless every write was acknowledged.
fn load(cluster: &Cluster, keys: usize) {
    let ports: Vec<u16> = (0..LOADERS).map(|t| cluster.port(t % 3)).collect();
    let results: Vec<(Vec<String>, usize)> = thread::scope(|s| {
        let handles: Vec<_> = ports
            .iter()
            .enumerate()
            .map(|(t, &port)| {
                s.spawn(move || {
                    let commands: Vec<Vec<Vec<u8>>> = (t..keys)
                        .step_by(LOADERS)
                        .map(|i| args(&["SET", &key(i), &first_value(i), "CONSISTENCY", "ALL"]))
                        .collect();
                    let mut conn = RespConn::connect(port);
                    pipelined(&mut conn, &commands, |_, reply| {
                        *reply == Val::Simple(b"OK".to_vec())
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failures: usize = results.iter().map(|(_, n)| n).sum();
    let shown: Vec<&String> = results.iter().flat_map(|(s, _)| s).collect();
    assert_eq!(
        failures, 0,
        "{failures} of {keys} writes at ALL were not acknowledged, e.g. {shown:#?}"
    );
}

/// Overwrites or deletes every changed key of `0..keys` at `CONSISTENCY QUORUM`, through the
/// nodes `through` in turn; panics unless each was acknowledged (`DEL` of a key that every
/// live replica holds answers 1).
fn apply_changes(cluster: &Cluster, keys: usize, through: &[usize]) {
    for (t, &node) in through.iter().enumerate() {
        let mine: Vec<usize> = changed_keys(keys)
            .into_iter()
            .skip(t)
            .step_by(through.len())
            .collect();
        let commands: Vec<Vec<Vec<u8>>> = mine
            .iter()
            .map(|&i| match change(i) {
                Change::Overwritten => {
                    args(&["SET", &key(i), &second_value(i), "CONSISTENCY", "QUORUM"])
                }
                _ => args(&["DEL", &key(i), "CONSISTENCY", "QUORUM"]),
            })
            .collect();
        let mut conn = cluster.conn(node);
        let (shown, failures) = pipelined(&mut conn, &commands, |index, reply| {
            match change(mine[index]) {
                Change::Overwritten => *reply == Val::Simple(b"OK".to_vec()),
                _ => *reply == Val::Int(1),
            }
        });
        assert_eq!(
            failures,
            0,
            "{failures} of {} changes through node {node} failed, e.g. {shown:#?}",
            mine.len()
        );
    }
}

/// Reads every key of `indexes` through `port` at `level` ([`READERS`] clients side by side)
/// and returns the first few that differ from [`expected`] and how many did.
fn wrong_reads(port: u16, level: &str, indexes: &[usize]) -> (Vec<String>, usize) {
    let results: Vec<(Vec<String>, usize)> = thread::scope(|s| {
        let handles: Vec<_> = (0..READERS)
            .map(|t| {
                s.spawn(move || {
                    let mine: Vec<usize> =
                        indexes.iter().copied().skip(t).step_by(READERS).collect();
                    let commands: Vec<Vec<Vec<u8>>> = mine
                        .iter()
                        .map(|&i| args(&["GET", &key(i), "CONSISTENCY", level]))
                        .collect();
                    let mut conn = RespConn::connect(port);
                    pipelined(&mut conn, &commands, |index, reply| {
                        *reply == expected(mine[index])
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failures = results.iter().map(|(_, n)| n).sum();
    let shown = results.into_iter().flat_map(|(s, _)| s).collect();
    (shown, failures)
}

/// Sends `RING REPAIR <target...>` to `port`, waiting up to [`REPAIR_REPLY_TIMEOUT`].
fn ring_repair(port: u16, target: &[&str]) -> Val {
    let mut conn = RespConn::connect(port);
    conn.stream()
        .set_read_timeout(Some(REPAIR_REPLY_TIMEOUT))
        .unwrap();
    let mut command = vec!["RING", "REPAIR"];
    command.extend_from_slice(target);
    conn.cmd(&command)
}

/// The `name=value` figures of a `RING REPAIR` reply.
fn repair_figures(reply: &Val) -> BTreeMap<String, u64> {
    let text = match reply {
        Val::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("RING REPAIR answered {other}, want a bulk string of figures"),
    };
    let figures: BTreeMap<String, u64> = text
        .split_whitespace()
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or_else(|| {
                panic!("RING REPAIR reply {text:?}: {pair:?} is not name=value")
            });
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("RING REPAIR reply {text:?}: {name} is not a number"));
            (name.to_string(), value)
        })
        .collect();
    for name in [
        "ranges",
        "repaired",
        "leaves_differing",
        "keys_compared",
        "keys_pulled",
        "keys_pushed",
        "keys_refused",
        "bytes",
        "ms",
    ] {
        assert!(
            figures.contains_key(name),
            "RING REPAIR reply {text:?} has no {name}="
        );
    }
    figures
}

/// The `repair_*` and `tombstones` lines of node `i`'s `INFO cluster`, on one line.
fn repair_info(cluster: &Cluster, i: usize) -> String {
    let info = cluster.try_info(i, "cluster").unwrap_or_else(|why| why);
    info.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.starts_with("repair_") || l.starts_with("tombstones:"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Node `i`'s records that repair brought in: pulled by its own rounds, or pushed by others'.
fn repair_taken(cluster: &Cluster, i: usize) -> u64 {
    cluster.info_number(i, "repair_keys_pulled") + cluster.info_number(i, "repair_keys_received")
}

/// `RING REPLICAS key` through node `via`: each replica's `(record kind, version)`, read
/// from its store without read repair.
fn replica_records(cluster: &Cluster, via: usize, key: &str) -> Vec<(String, String)> {
    let reply = cluster.conn(via).cmd(&["RING", "REPLICAS", key]);
    let entries = reply
        .items()
        .unwrap_or_else(|| panic!("RING REPLICAS {key} answered {reply}"));
    entries
        .iter()
        .map(|entry| {
            let pairs = entry
                .pairs()
                .unwrap_or_else(|| panic!("RING REPLICAS {key}: entry {entry} is not pairs"));
            let field = |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k.text().as_deref() == Some(name))
                    .map(|(_, v)| v.text().unwrap_or_else(|| v.to_string()))
                    .unwrap_or_else(|| panic!("RING REPLICAS {key}: no {name} in {entry}"))
            };
            (field("record"), field("version"))
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Tests

/// The case. The stopped node is stopped cleanly (`SHUTDOWN`), after every key was
/// acknowledged at `ALL` (so it held every key), and every change is made after it exited
/// (so it got none): it must pull exactly the changed keys, no more, no fewer.
#[test]
fn repair_after_a_long_outage_restores_every_overwrite_and_delete() {
    let _serial = serial();
    let keys: usize = std::env::var("REPAIR_E2E_KEYS")
        .ok()
        .map(|v| v.parse().expect("REPAIR_E2E_KEYS is a number of keys"))
        .unwrap_or(OUTAGE_KEYS_DEFAULT);
    let changed = changed_keys(keys).len();
    let started = Instant::now();
    let vnodes = VNODES.to_string();
    let mut cluster = Cluster::start(3, &["--hint-window-ms", "0", "--vnodes", &vnodes]);
    let down = 2;

    let phase = Instant::now();
    load(&cluster, keys);
    let load_time = phase.elapsed();
    eprintln!("[outage] loaded {keys} keys at ALL in {load_time:?}");

    let mut conn = cluster.conn(down);
    conn.send(&encode_command(&["SHUTDOWN"]));
    let status = cluster.wait_exited(down, SHUTDOWN_TIMEOUT);
    assert!(
        status.is_some_and(|s| s.success()),
        "node {down} after SHUTDOWN: {status:?}\n{}",
        cluster.describe()
    );
    cluster.wait_all_up(DOWN_SEEN_TIMEOUT);

    let phase = Instant::now();
    apply_changes(&cluster, keys, &[0, 1]);
    eprintln!(
        "[outage] overwrote and deleted {changed} keys at QUORUM in {:?}",
        phase.elapsed()
    );

    cluster.restart(down);
    cluster.wait_all_up(UP_AGAIN_TIMEOUT);
    // Nothing but repair can have brought it the changes: no hints (window 0), no reads.
    assert_eq!(
        cluster.info_number(down, "repair_keys_received"),
        0,
        "node {down} took repair writes before RING REPAIR\n{}",
        cluster.describe()
    );

    let phase = Instant::now();
    let reply = ring_repair(cluster.port(down), &["ALL"]);
    let repair_time = phase.elapsed();
    eprintln!(
        "[outage] RING REPAIR ALL on node {down} ({keys} keys) answered {reply} in {repair_time:?}"
    );
    eprintln!("[outage] node {down} INFO: {}", repair_info(&cluster, down));
    let figures = repair_figures(&reply);
    let ranges = (3 * VNODES) as u64;
    assert_eq!(
        (figures["ranges"], figures["repaired"]),
        (ranges, ranges),
        "RING REPAIR ALL: every range replicated here, every one repaired: {reply}"
    );
    assert_eq!(
        figures["keys_pulled"], changed as u64,
        "RING REPAIR ALL pulled other than the {changed} keys changed while node {down} \
         was down: {reply}"
    );
    assert_eq!(figures["keys_pushed"], 0, "it had nothing newer: {reply}");
    assert_eq!(figures["keys_refused"], 0, "{reply}");
    assert!(
        figures["keys_compared"] >= changed as u64
            && figures["leaves_differing"] <= figures["keys_compared"],
        "{reply}"
    );
    assert_eq!(
        cluster.info_number(down, "repair_ranges_never_repaired"),
        0,
        "after RING REPAIR ALL"
    );

    cluster.kill(0);
    cluster.kill(1);
    cluster.wait_all_up(DOWN_SEEN_TIMEOUT);
    let phase = Instant::now();
    let all: Vec<usize> = (0..keys).collect();
    let (shown, wrong) = wrong_reads(cluster.port(down), "ONE", &all);
    eprintln!(
        "[outage] read {keys} keys at ONE from node {down} alone in {:?}; total {:?}",
        phase.elapsed(),
        started.elapsed()
    );
    assert_eq!(
        wrong, 0,
        "{wrong} of {keys} keys read wrong from the repaired node alone, e.g. {shown:#?}"
    );
}

/// The zombie case, healed by the scheduler alone (no `RING REPAIR`): while a replica is
/// down, the others keep their tombstones (every round is incomplete); once it is back, the
/// scheduled rounds bring it every change, the tombstones go on all three, and no deleted
/// key comes back, from any node at any level.
#[test]
fn deleted_keys_never_come_back_after_tombstones_are_collected() {
    let _serial = serial();
    let keys = ZOMBIE_KEYS;
    let changed = changed_keys(keys);
    let deletes = changed
        .iter()
        .filter(|&&i| change(i) == Change::Deleted)
        .count() as u64;
    let vnodes = VNODES.to_string();
    let mut cluster = Cluster::start(
        3,
        &[
            "--hint-window-ms",
            "0",
            "--repair-interval-s",
            REPAIR_INTERVAL_S,
            "--vnodes",
            &vnodes,
        ],
    );
    let down = 2;
    let up = [0, 1];
    load(&cluster, keys);

    // The scheduler repairs every range once with all three: a complete round is on record
    // everywhere before the outage, so what keeps the tombstones below is the replica down.
    let phase = Instant::now();
    cluster.wait_until("every range repaired once", FIRST_ROUNDS_TIMEOUT, |c| {
        c.check_all_fields("repair_ranges_never_repaired", "0")
    });
    eprintln!(
        "[zombie] first scheduled rounds done in {:?}",
        phase.elapsed()
    );

    cluster.kill(down);
    cluster.wait_all_up(DOWN_SEEN_TIMEOUT);
    apply_changes(&cluster, keys, &up);
    let deleted_at = Instant::now();
    for i in up {
        assert_eq!(
            cluster.info_number(i, "tombstones"),
            deletes,
            "node {i} right after the deletes\n{}",
            cluster.describe()
        );
    }
    let incomplete_before: Vec<u64> = up
        .iter()
        .map(|&i| cluster.info_number(i, "repair_rounds_incomplete"))
        .collect();

    // Past the margin, sweeps and horizon refreshes: every tombstone is still there.
    let mut kept = true;
    while deleted_at.elapsed() < TOMBSTONES_KEPT_WATCH {
        for i in up {
            let held = cluster.info_number(i, "tombstones");
            if held < deletes {
                kept = false;
                eprintln!("[zombie] node {i} holds {held} of {deletes} tombstones");
            }
        }
        thread::sleep(POLL);
    }
    assert!(
        deleted_at.elapsed() > TOMBSTONE_MARGIN && kept,
        "a node dropped tombstones while node {down} was down\n{}",
        cluster.describe()
    );
    for (k, &i) in up.iter().enumerate() {
        let incomplete = cluster.info_number(i, "repair_rounds_incomplete");
        eprintln!(
            "[zombie] node {i} with node {down} down: {}",
            repair_info(&cluster, i)
        );
        assert!(
            incomplete > incomplete_before[k],
            "node {i}: repair_rounds_incomplete went from {} to {incomplete} in \
             {TOMBSTONES_KEPT_WATCH:?} with a replica down and a {REPAIR_INTERVAL_S} s \
             interval\n{}",
            incomplete_before[k],
            cluster.describe()
        );
        // Every range has node `down` as a replica (N = 3 on 3 nodes): none could be repaired
        // for 8 s, longer than the interval.
        assert_eq!(
            cluster.info_number(i, "repair_ranges_overdue"),
            cluster.info_number(i, "repair_ranges"),
            "node {i}: every range is overdue with a replica down\n{}",
            cluster.describe()
        );
    }
    // Everything A and B exchange is settled now: from here, what changes their stores can
    // only come from node `down`, which holds nothing newer.
    let taken_before: Vec<u64> = up.iter().map(|&i| repair_taken(&cluster, i)).collect();

    cluster.restart(down);
    let restarted = Instant::now();
    cluster.wait_all_up(UP_AGAIN_TIMEOUT);
    cluster.wait_until(
        "the scheduler to repair node 2 and every tombstone to go",
        CONVERGE_TIMEOUT,
        |c| {
            c.check_all_fields("tombstones", "0")?;
            c.check_all_fields("repair_ranges_never_repaired", "0")?;
            let taken = repair_taken(c, down);
            if taken < changed.len() as u64 {
                return Err(format!(
                    "node {down} took {taken} of {} changes",
                    changed.len()
                ));
            }
            Ok(())
        },
    );
    eprintln!(
        "[zombie] converged {:?} after the restart (interval {REPAIR_INTERVAL_S} s)",
        restarted.elapsed()
    );
    for i in 0..3 {
        eprintln!("[zombie] node {i} converged: {}", repair_info(&cluster, i));
    }
    for (k, &i) in up.iter().enumerate() {
        assert_eq!(
            repair_taken(&cluster, i),
            taken_before[k],
            "repair changed node {i}'s store after node {down} came back: it took something \
             of node {down}'s (an old value of a deleted key, or a tombstone pushed back)\n{}",
            cluster.describe()
        );
    }

    // Every replica, as its own store holds it (no read repair): deleted keys gone
    // everywhere, overwrites at one version everywhere.
    let mut wrong = Vec::new();
    for &i in &changed {
        let records = replica_records(&cluster, 0, &key(i));
        let ok = records.len() == 3
            && match change(i) {
                Change::Deleted => records.iter().all(|(kind, _)| kind == "none"),
                _ => records
                    .iter()
                    .all(|(kind, version)| kind == "value" && *version == records[0].1),
            };
        if !ok {
            wrong.push(format!("{} {:?}: {records:?}", key(i), change(i)));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} changed keys differ between replicas after the scheduled repairs: {:#?}",
        wrong.len(),
        changed.len(),
        &wrong[..wrong.len().min(10)]
    );

    for node in 0..3 {
        for level in ["ALL", "ONE"] {
            let (shown, wrong) = wrong_reads(cluster.port(node), level, &changed);
            assert_eq!(
                wrong,
                0,
                "{wrong} of {} changed keys read wrong through node {node} at {level}, \
                 e.g. {shown:#?}",
                changed.len()
            );
        }
    }
}

/// `RING REPAIR` with too many arguments is a syntax error; on a single node every form says
/// it is not in a cluster.
#[test]
fn ring_repair_refuses_bad_input_and_single_nodes() {
    let _serial = serial();
    let single = Ringcache::start(&[]);
    let mut conn = single.conn();
    for command in [
        &["RING", "REPAIR", "a", "b", "c"][..],
        &["RING", "REPAIR", "ALL", "extra"][..],
    ] {
        let reply = conn.cmd(command);
        assert_eq!(
            reply,
            Val::Error(b"ERR syntax error".to_vec()),
            "{command:?} on a single node"
        );
    }
    for command in [
        &["RING", "REPAIR"][..],
        &["RING", "REPAIR", "ALL"][..],
        &["RING", "REPAIR", "STATUS"][..],
        &["RING", "REPAIR", "somekey"][..],
    ] {
        let reply = conn.cmd(command);
        assert!(
            reply.is_error()
                && reply
                    .text()
                    .is_some_and(|t| t.starts_with("ERR this node is not in a cluster")),
            "{command:?} on a single node answered {reply}"
        );
    }
}

/// `RING REPAIR STATUS` lists one line per range the node replicates (all 3 × vnodes on
/// three nodes with N = 3), never repaired at first, all repaired after `RING REPAIR`;
/// `RING REPAIR key` repairs one range.
#[test]
fn ring_repair_status_lists_every_range_the_node_replicates() {
    let _serial = serial();
    let vnodes = VNODES.to_string();
    // The default interval: no scheduled round runs during the test.
    let cluster = Cluster::start(3, &["--vnodes", &vnodes]);
    let ranges = 3 * VNODES;
    let status = |i: usize| -> Vec<Vec<String>> {
        let reply = cluster.conn(i).cmd(&["RING", "REPAIR", "STATUS"]);
        let text = match &reply {
            Val::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("RING REPAIR STATUS on node {i} answered {other}"),
        };
        text.lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    let ids: Vec<String> = (0..3).map(|i| cluster.node_id(i)).collect();
    for i in 0..3 {
        let lines = status(i);
        assert_eq!(
            cluster.info_number(i, "repair_ranges"),
            ranges as u64,
            "node {i}"
        );
        assert_eq!(lines.len(), ranges, "RING REPAIR STATUS lines on node {i}");
        for line in &lines {
            let [first, last, age, replicas] = line.as_slice() else {
                panic!("RING REPAIR STATUS line {line:?}: want first last age_s replicas");
            };
            assert!(
                first.len() == 16
                    && last.len() == 16
                    && u64::from_str_radix(first, 16).is_ok()
                    && u64::from_str_radix(last, 16).is_ok(),
                "tokens of {line:?}"
            );
            assert_eq!(age, "-", "a range never repaired: {line:?}");
            let mut listed: Vec<&str> = replicas.split(',').collect();
            listed.sort_unstable();
            let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
            want.sort_unstable();
            assert_eq!(listed, want, "replicas of {line:?}");
        }
        // Ranges tile the ring: each starts one after the previous one's last token.
        let mut bounds: Vec<(u64, u64)> = lines
            .iter()
            .map(|l| {
                (
                    u64::from_str_radix(&l[0], 16).unwrap(),
                    u64::from_str_radix(&l[1], 16).unwrap(),
                )
            })
            .collect();
        bounds.sort_unstable_by_key(|&(_, last)| last);
        for pair in bounds.windows(2) {
            assert_eq!(
                pair[1].0,
                pair[0].1.wrapping_add(1),
                "node {i}: ranges {pair:?} do not follow each other"
            );
        }
        assert_eq!(
            cluster.info_number(i, "repair_ranges_never_repaired"),
            ranges as u64,
            "node {i}"
        );
    }

    let one = repair_figures(&ring_repair(cluster.port(0), &["some-key"]));
    assert_eq!((one["ranges"], one["repaired"]), (1, 1), "RING REPAIR key");
    assert_eq!(
        cluster.info_number(0, "repair_ranges_never_repaired"),
        ranges as u64 - 1,
        "after RING REPAIR key on node 0"
    );

    let reply = ring_repair(cluster.port(1), &[]);
    let all = repair_figures(&reply);
    eprintln!("[status] RING REPAIR on an empty cluster: {reply}");
    assert_eq!(
        (
            all["ranges"],
            all["repaired"],
            all["keys_pulled"],
            all["keys_pushed"]
        ),
        (ranges as u64, ranges as u64, 0, 0),
        "RING REPAIR on an empty cluster: {reply}"
    );
    for i in 0..3 {
        // Node 1 ran the round; the others learned of it from its announcements.
        let lines = status(i);
        let never: Vec<&Vec<String>> = lines.iter().filter(|l| l[2] == "-").collect();
        assert!(
            never.is_empty(),
            "node {i} after RING REPAIR on node 1: {} ranges still never repaired, e.g. {:?}",
            never.len(),
            never.first()
        );
        assert_eq!(
            cluster.info_number(i, "repair_ranges_never_repaired"),
            0,
            "node {i}"
        );
    }
}

/// `INFO <section>` field `field` of node `i`, as a number.
fn info_section_number(cluster: &Cluster, i: usize, section: &str, field: &str) -> u64 {
    let info = cluster
        .try_info(i, section)
        .unwrap_or_else(|why| panic!("{why}"));
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| {
            l.trim_end_matches('\r')
                .strip_prefix(&prefix)
                .map(str::to_owned)
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {field} in node {i}'s INFO {section}: {info}"))
}

/// Keys in node `i`'s own store (`INFO keyspace`, `db0:keys=N,...`; 0 when empty).
fn local_keys(cluster: &Cluster, i: usize) -> u64 {
    let info = cluster
        .try_info(i, "keyspace")
        .unwrap_or_else(|why| panic!("{why}"));
    info.lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("db0:keys="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a key count"))
}

/// The eviction rule: a node that evicted keys under `maxmemory` and stays above 95% of it does
/// not take them back from repair, round after round; under no limit it takes them all back.
#[test]
fn a_full_node_does_not_take_back_what_it_evicted() {
    const KEYS: usize = 20_000;
    let _serial = serial();
    let cluster = Cluster::start(3, &["--hint-window-ms", "0"]);
    let full = 2;
    // Written through the other two: node 2 merges them as a replica, evicting nothing.
    let commands: Vec<Vec<Vec<u8>>> = (0..KEYS)
        .map(|i| args(&["SET", &key(i), &"v".repeat(200), "CONSISTENCY", "ALL"]))
        .collect();
    let (shown, failures) = pipelined(&mut cluster.conn(0), &commands, |_, reply| {
        *reply == Val::Simple(b"OK".to_vec())
    });
    assert_eq!(failures, 0, "{shown:#?}");
    let used = info_section_number(&cluster, full, "memory", "used_memory");
    let limit = used / 2;
    let mut conn = cluster.conn(full);
    let limit_text = limit.to_string();
    for (name, value) in [
        ("maxmemory", limit_text.as_str()),
        ("maxmemory-policy", "allkeys-random"),
    ] {
        assert_eq!(
            conn.cmd(&["CONFIG", "SET", name, value]),
            Val::Simple(b"OK".to_vec())
        );
    }
    // Eviction runs before a command that may add memory on the node itself: one key,
    // written again and again.
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_section_number(&cluster, full, "memory", "used_memory") > limit {
        assert!(
            Instant::now() < deadline,
            "node {full} did not evict under {limit}"
        );
        conn.cmd(&["SET", "filler", "x", "CONSISTENCY", "ONE"]);
    }
    // The test's keys node 2 kept (the filler is one more key, unless evicted too).
    let kept = local_keys(&cluster, full) - 1;
    let lacking = KEYS as u64 - kept;
    assert!(
        lacking > KEYS as u64 / 4,
        "node {full} kept {kept} of {KEYS} keys"
    );

    for round in 0..2u64 {
        let reply = ring_repair(cluster.port(0), &["ALL"]);
        let figures = repair_figures(&reply);
        let refused = cluster.info_number(full, "repair_keys_refused_evicted");
        let now_kept = local_keys(&cluster, full) - 1;
        let now_used = info_section_number(&cluster, full, "memory", "used_memory");
        eprintln!(
            "[evicted] round {round}: node 0 {reply}; node {full}: {now_kept} keys, \
             {now_used} bytes (limit {limit}), refused {refused}"
        );
        assert!(
            figures["keys_pushed"] >= lacking,
            "node 0 pushes what node {full} lacks each round: {reply}"
        );
        assert_eq!(
            refused,
            (round + 1) * lacking,
            "node {full} refuses every evicted key, every round"
        );
        assert_eq!(now_kept, kept, "node {full} took evicted keys back");
        assert!(
            now_used <= limit,
            "node {full} grew past its limit: {now_used} > {limit}"
        );
    }

    // Without a limit it takes everything back.
    assert_eq!(
        conn.cmd(&["CONFIG", "SET", "maxmemory", "0"]),
        Val::Simple(b"OK".to_vec())
    );
    let reply = ring_repair(cluster.port(0), &["ALL"]);
    eprintln!("[evicted] no limit: node 0 {reply}");
    assert_eq!(
        local_keys(&cluster, full) - 1,
        KEYS as u64,
        "node {full} took the evicted keys back: {reply}"
    );
    assert_eq!(
        cluster.info_number(full, "repair_keys_refused_evicted"),
        2 * lacking,
        "no refusal once under no limit"
    );
}
