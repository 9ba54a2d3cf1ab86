//! Membership end to end: nodes join a loaded cluster and leave it (decommissioned, or
//! killed and forgotten) while a writer keeps writing at QUORUM, and no acknowledged write is
//! lost; thirty nodes form one cluster from one seed; gossip detects a killed node dead
//! within seconds, never declares an idle node dead, and takes a restarted node back; two
//! clusters with different names never merge, though their nodes knock at each other.
//!
//! Each test holds [`serial`]'s lock: they measure times (joins, detection, convergence) that
//! running them side by side on a two-core machine would distort.

mod common;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{Cluster, RespConn, RingMember, Val, encode_command};

/// Replicas of each key (the server's default, N).
const REPLICATION_FACTOR: usize = 3;
/// Arguments of every node: one worker thread, since up to thirty nodes share two cores.
const NODE_ARGS: &[&str] = &["--threads", "1"];

/// Keys written before the first join, so that each join has data to move.
const PRELOAD_KEYS: usize = 20_000;
/// Hashes written before the joins, [`HASH_FIELDS`] fields each: a join must stream them
/// element by element like any record (`stream_elements`).
const PRELOAD_HASHES: usize = 200;
/// Fields of each preloaded hash.
const HASH_FIELDS: usize = 25;
/// Commands pipelined in one batch when preloading or reading back.
const BATCH: usize = 500;
/// One write in this many creates a new key; the others overwrite an existing one.
const NEW_KEY_EVERY: u64 = 32;
/// Most writes the background writer makes, whatever the clock says.
const WRITES_MAX: u64 = 1_000_000;
/// Most time the background writer runs, whatever the test does.
const WRITER_TIME_MAX: Duration = Duration::from_secs(150);
/// Read and write timeout of the writer's connections: well above the write timeout (1 s),
/// so that a reply is always waited for, and a killed node is noticed by its closed socket.
const WRITER_IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Acknowledged writes the writer must have made before the first join.
const WRITER_WARMUP_ACKS: usize = 200;
/// How long the writer may take to make [`WRITER_WARMUP_ACKS`].
const WRITER_WARMUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node may take from its start to `status:normal`: the seed handshake, 3 s of
/// settling, streaming its share of the keys.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How far `stream_records` of a joined node may be from keys × N / nodes, as a fraction:
/// the ring's balance (a node's share of the ring with 512 tokens varies by a few percent)
/// plus the keys the writer creates while the join runs.
const STREAM_SHARE_TOLERANCE: f64 = 0.25;
/// How long every node may take to agree on a membership change (a join seen normal, a
/// leave or a forget seen gone).
const MEMBERS_AGREE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a decommissioned node may take to exit once it answered +OK (it stops 200 ms
/// after its reply).
const DECOMMISSION_EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the survivors may take to hold a SIGKILLed node dead: probe period (500 ms),
/// indirect probes, suspicion (1 s to 3 s), dissemination; with slack for a loaded machine.
const DEAD_DETECTED_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after a join the nodes that lost ranges may take to drop them: the ring must be
/// still for 10 s first.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(40);
/// How long the new replicas of a forgotten node's ranges may take to pull them.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(60);
/// Acknowledged writes the writer must have made over the whole test for it to mean
/// anything.
const WRITER_ACKS_MIN: usize = 2_000;

/// Nodes of the one-seed test.
const SWARM_NODES: usize = 30;
/// Arguments of each of them: small rings (30 × 16 tokens), one thread, no log on disk.
const SWARM_ARGS: &[&str] = &["--threads", "1", "--vnodes", "16", "--storage", "memory"];
/// How long, from the last node's start, until all thirty agree on thirty normal, alive
/// members: the last joiner's 3 s settle plus gossip over thirty nodes, with slack.
const SWARM_CONVERGED_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the five nodes of the detection test stay idle before anyone is killed.
const IDLE_WATCH: Duration = Duration::from_secs(20);
/// How long a restarted node may take until every node holds it alive again.
const BACK_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The second cluster's `--cluster-name` (the first keeps the default).
const OTHER_NAME: &str = "other";
/// How long the two clusters are watched for a merge once every node has knocked.
const APART_WATCH: Duration = Duration::from_secs(5);
/// A bound on the rounds of that watch, whatever the clock says.
const APART_ROUNDS_MAX: usize = 100;
/// How long until a node of one cluster has refused the other's datagrams or handshakes.
const REFUSED_TIMEOUT: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------------------------------
// Helpers

/// One test at a time (see the module doc); a test that failed does not block the others.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn ok() -> Val {
    Val::Simple(b"OK".to_vec())
}

fn key(index: usize) -> String {
    format!("k{index}")
}

/// The value of write `seq` (0: the preload) to key `index`: both are read back from it.
fn value(index: usize, seq: u64) -> String {
    format!("k{index}:{seq}:{}", "v".repeat(index % 32))
}

/// How long the writer pauses when its targets change: versions carry the coordinator's
/// wall clock in milliseconds, so after this every node issues versions above those issued
/// before (all run on this machine's clock).
const TARGETS_CHANGED_PAUSE: Duration = Duration::from_millis(3);

/// The key that write `seq` (from 1) of the writer goes to: every [`NEW_KEY_EVERY`]th a new
/// one after the preloaded keys, else one of those that exist by then.
fn key_of(seq: u64) -> usize {
    let created = (seq / NEW_KEY_EVERY) as usize;
    if seq.is_multiple_of(NEW_KEY_EVERY) {
        PRELOAD_KEYS + created - 1
    } else {
        (seq.wrapping_mul(7_919) % (PRELOAD_KEYS + created) as u64) as usize
    }
}

/// Sends one command and reads its reply, or says why not (the connection is then useless).
fn ask(conn: &mut RespConn, args: &[&str]) -> Result<Val, String> {
    conn.try_send(&encode_command(args))
        .map_err(|e| format!("send {args:?} to port {}: {e}", conn.port))?;
    conn.try_read_frame()
        .map(|frame| Val::parse(&frame))
        .map_err(|e| format!("{args:?} on port {}: {e}", conn.port))
}

/// Writes keys `0..PRELOAD_KEYS` at QUORUM through node 0, pipelined; each must answer +OK.
fn preload(cluster: &Cluster) {
    let mut conn = cluster.conn(0);
    for start in (0..PRELOAD_KEYS).step_by(BATCH) {
        let end = (start + BATCH).min(PRELOAD_KEYS);
        let mut out = Vec::new();
        for i in start..end {
            out.extend(encode_command(&[
                "SET",
                &key(i),
                &value(i, 0),
                "CONSISTENCY",
                "QUORUM",
            ]));
        }
        conn.send(&out);
        for i in start..end {
            let reply = conn.read_reply();
            assert_eq!(
                reply,
                ok(),
                "preloading {} at QUORUM answered {reply}",
                key(i)
            );
        }
    }
}

/// What the writer did.
struct WriterLog {
    /// Per key index, the sequence number of the last acknowledged write (0: the preload).
    acked: BTreeMap<usize, u64>,
    /// Per acknowledged write, the port it went through and when it was acknowledged: what a
    /// lost write's report needs (two writes of one key through different coordinators
    /// within the clock tolerance are ordered by their clocks, see docs/consistency.md).
    via: BTreeMap<u64, (u16, Duration)>,
    /// Writes sent.
    attempts: u64,
    /// Writes answered +OK.
    acks: usize,
    /// Writes not acknowledged: an error reply or a broken connection.
    failures: usize,
    /// The first few of those, for the report.
    failure_examples: Vec<String>,
    /// How long it ran.
    ran: Duration,
}

/// A thread writing `SET k<i> <value> CONSISTENCY QUORUM` one at a time, each key through
/// its own node of `targets` (by key), recording every acknowledgement.
///
/// Why by key: two writes of one key through different coordinators are ordered by their
/// clocks, not by real time (docs/consistency.md), so a second write made within the same
/// millisecond through another node may lose to the first, acknowledged or not. One client
/// writing one key through one node gets increasing versions. When the targets change (a
/// key then moves to another node), the writer waits until the clock has moved past every
/// version issued before, so the key's next write gets a higher one.
struct Writer {
    stop: Arc<AtomicBool>,
    targets: Arc<Mutex<Vec<u16>>>,
    /// Distinct keys written so far, the preload included.
    keys: Arc<AtomicUsize>,
    acks: Arc<AtomicUsize>,
    /// `None` once joined.
    handle: Option<JoinHandle<WriterLog>>,
}

impl Writer {
    /// Starts writing through `targets`; the preloaded keys count as acknowledged.
    fn start(targets: Vec<u16>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let targets = Arc::new(Mutex::new(targets));
        let keys = Arc::new(AtomicUsize::new(PRELOAD_KEYS));
        let acks = Arc::new(AtomicUsize::new(0));
        let handle = {
            let (stop, targets, keys, acks) =
                (stop.clone(), targets.clone(), keys.clone(), acks.clone());
            thread::spawn(move || Writer::run(&stop, &targets, &keys, &acks))
        };
        Writer {
            stop,
            targets,
            keys,
            acks,
            handle: Some(handle),
        }
    }

    fn run(
        stop: &AtomicBool,
        targets: &Mutex<Vec<u16>>,
        keys: &AtomicUsize,
        acks: &AtomicUsize,
    ) -> WriterLog {
        const FAILURE_EXAMPLES_MAX: usize = 10;
        let started = Instant::now();
        let mut log = WriterLog {
            acked: (0..PRELOAD_KEYS).map(|i| (i, 0)).collect(),
            via: BTreeMap::new(),
            attempts: 0,
            acks: 0,
            failures: 0,
            failure_examples: Vec::new(),
            ran: Duration::ZERO,
        };
        let mut conns: BTreeMap<u16, RespConn> = BTreeMap::new();
        let mut last_targets: Vec<u16> = targets.lock().unwrap().clone();
        let fail = |log: &mut WriterLog, why: String| {
            log.failures += 1;
            if log.failure_examples.len() < FAILURE_EXAMPLES_MAX {
                log.failure_examples
                    .push(format!("{:.1}s: {why}", started.elapsed().as_secs_f64()));
            }
        };
        for seq in 1..=WRITES_MAX {
            if stop.load(Ordering::Relaxed) || started.elapsed() >= WRITER_TIME_MAX {
                break;
            }
            let index = key_of(seq);
            keys.fetch_max(index + 1, Ordering::Relaxed);
            let port = {
                let targets = targets.lock().unwrap();
                if *targets != last_targets {
                    thread::sleep(TARGETS_CHANGED_PAUSE);
                    last_targets.clone_from(&targets);
                }
                targets[index % targets.len()]
            };
            let conn = match conns.entry(port) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => match RespConn::try_connect(port) {
                    Ok(conn) => {
                        let _ = conn.stream().set_read_timeout(Some(WRITER_IO_TIMEOUT));
                        let _ = conn.stream().set_write_timeout(Some(WRITER_IO_TIMEOUT));
                        entry.insert(conn)
                    }
                    Err(e) => {
                        fail(&mut log, format!("connect to port {port}: {e}"));
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                },
            };
            log.attempts += 1;
            let args = [
                "SET",
                &key(index),
                &value(index, seq),
                "CONSISTENCY",
                "QUORUM",
            ];
            match ask(conn, &args) {
                Ok(reply) if reply == ok() => {
                    log.acked.insert(index, seq);
                    log.via.insert(seq, (port, started.elapsed()));
                    log.acks += 1;
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                Ok(reply) => fail(
                    &mut log,
                    format!("SET {} on port {port} answered {reply}", key(index)),
                ),
                Err(why) => {
                    conns.remove(&port);
                    fail(&mut log, why);
                }
            }
        }
        log.ran = started.elapsed();
        log
    }

    /// Distinct keys written so far, the preload included.
    fn keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// Writes acknowledged so far.
    fn acks(&self) -> usize {
        self.acks.load(Ordering::Relaxed)
    }

    fn add_target(&self, port: u16) {
        self.targets.lock().unwrap().push(port);
    }

    fn remove_target(&self, port: u16) {
        let mut targets = self.targets.lock().unwrap();
        targets.retain(|&p| p != port);
        assert!(
            !targets.is_empty(),
            "the writer needs a node to write through"
        );
    }

    fn finish(mut self) -> WriterLog {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take().expect("joined once");
        handle.join().expect("the writer thread panicked")
    }
}

impl Drop for Writer {
    /// A test that fails midway stops its writer too (within one request's timeout).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// `Ok` once every running node lists exactly `n` members, all up, `normal` and `alive`,
/// `none_of` not among them: a check for [`Cluster::wait_until`].
fn hash_key(index: usize) -> String {
    format!("join-hash:{index}")
}

/// Writes [`PRELOAD_HASHES`] hashes of [`HASH_FIELDS`] fields at QUORUM through node 0.
fn preload_hashes(cluster: &Cluster) {
    let mut conn = cluster.conn(0);
    let mut out = Vec::new();
    for h in 0..PRELOAD_HASHES {
        let key = hash_key(h);
        let mut args = vec!["HSET".to_string(), key];
        for f in 0..HASH_FIELDS {
            args.extend([format!("f{f}"), format!("v{h}.{f}")]);
        }
        args.extend(["CONSISTENCY".to_string(), "QUORUM".to_string()]);
        out.extend(encode_command(&args));
    }
    conn.send(&out);
    for h in 0..PRELOAD_HASHES {
        let reply = conn.read_reply();
        assert_eq!(
            reply,
            Val::Int(HASH_FIELDS as i64),
            "preloading {} at QUORUM answered {reply}",
            hash_key(h)
        );
    }
}

/// The fields of the preloaded hashes that node `id` replicates, as `RING REPLICAS` (asked
/// of node `asked`) places them.
fn hash_fields_replicated_by(cluster: &Cluster, asked: usize, id: &str) -> u64 {
    let mut conn = cluster.conn(asked);
    let mut fields = 0;
    for h in 0..PRELOAD_HASHES {
        let reply = conn.cmd(&["RING", "REPLICAS", &hash_key(h)]);
        let entries = reply
            .items()
            .unwrap_or_else(|| panic!("RING REPLICAS: {reply}"));
        let holds = entries.iter().any(|entry| {
            entry.pairs().is_some_and(|p| {
                p.iter().any(|(k, v)| {
                    k.text().as_deref() == Some("node") && v.text().as_deref() == Some(id)
                })
            })
        });
        if holds {
            fields += HASH_FIELDS as u64;
        }
    }
    fields
}

/// Reads every preloaded hash back at QUORUM through `port`: the hashes whose field count
/// or a field is not what was written.
fn hashes_not_read_back(port: u16) -> Vec<String> {
    let mut conn = RespConn::connect(port);
    (0..PRELOAD_HASHES)
        .filter(|&h| {
            let key = hash_key(h);
            let len = conn.cmd(&["HLEN", &key, "CONSISTENCY", "QUORUM"]);
            let last = format!("f{}", HASH_FIELDS - 1);
            let value = conn.cmd(&["HGET", &key, &last, "CONSISTENCY", "QUORUM"]);
            len != Val::Int(HASH_FIELDS as i64)
                || value.text() != Some(format!("v{h}.{}", HASH_FIELDS - 1))
        })
        .map(hash_key)
        .collect()
}

fn members_settled(c: &Cluster, n: usize, none_of: Option<&str>) -> Result<(), String> {
    let n = n.to_string();
    for field in ["members", "members_up", "members_normal"] {
        c.check_all_fields(field, &n)?;
    }
    for field in [
        "members_joining",
        "members_leaving",
        "members_suspect",
        "members_dead",
    ] {
        c.check_all_fields(field, "0")?;
    }
    if let Some(gone) = none_of {
        for i in c.running() {
            if c.try_ring_nodes(i)?.iter().any(|m| m.id == gone) {
                return Err(format!("node {i} still lists {gone}"));
            }
        }
    }
    Ok(())
}

/// Node `i`'s line about member `id` in its `RING NODES`.
fn member_seen_by(c: &Cluster, i: usize, id: &str) -> Result<RingMember, String> {
    c.try_ring_nodes(i)?
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| format!("node {i} does not list {id}"))
}

/// Adds a node while `writer` writes, waits until it is normal and every node sees
/// `nodes_after` normal members, and checks that it streamed in about its share of the keys.
/// Returns its index.
fn join_one(cluster: &mut Cluster, writer: &Writer, nodes_after: usize) -> usize {
    let started = Instant::now();
    let i = cluster.add_node(NODE_ARGS);
    let status = cluster.info_field(i, "status");
    assert_eq!(
        status,
        "joining",
        "node {i}, not a seed, must start joining\n{}",
        cluster.describe()
    );
    let keys_at_start = writer.keys();
    cluster.wait_until(
        &format!("node {i} to turn normal"),
        JOIN_TIMEOUT,
        |c| match c.try_info_field(i, "status")? {
            s if s == "normal" => Ok(()),
            s => Err(format!("node {i} is {s}")),
        },
    );
    let joined = started.elapsed();
    let keys = writer.keys();
    cluster.wait_until(
        &format!("every node to see {nodes_after} normal members"),
        MEMBERS_AGREE_TIMEOUT,
        |c| members_settled(c, nodes_after, None),
    );
    let agreed = started.elapsed();
    writer.add_target(cluster.port(i));

    let streamed = cluster.info_number(i, "stream_records");
    let id = cluster.node_id(i);
    let ownership = member_seen_by(cluster, i, &id)
        .unwrap_or_else(|why| panic!("{why}\n{}", cluster.describe()))
        .ownership_pct;
    let expected = (keys * REPLICATION_FACTOR) as f64 / nodes_after as f64;
    let ratio = streamed as f64 / expected;
    println!(
        "join of node {i} (to {nodes_after} nodes): normal after {:.1}s, all agree after \
         {:.1}s; stream_records {streamed} vs keys x N / nodes = {keys} x {REPLICATION_FACTOR} \
         / {nodes_after} = {expected:.0} (ratio {ratio:.3}; keys when it started: \
         {keys_at_start}); its ownership {ownership:.1}% x keys = {:.0}; \
         stream_records_new {}, stream_bytes {}, writer acks so far {}",
        joined.as_secs_f64(),
        agreed.as_secs_f64(),
        keys as f64 * ownership / 100.0,
        cluster.info_number(i, "stream_records_new"),
        cluster.info_number(i, "stream_bytes"),
        writer.acks(),
    );
    assert!(
        (ratio - 1.0).abs() <= STREAM_SHARE_TOLERANCE,
        "node {i} streamed {streamed} records joining {nodes_after} nodes; its share of \
         {keys} keys x {REPLICATION_FACTOR} replicas is {expected:.0} (ratio {ratio:.3}, \
         allowed 1 +/- {STREAM_SHARE_TOLERANCE})"
    );
    // Collections come element by element: every field of every hash it now replicates
    // (nothing writes the hashes during the joins), and no more than a retried batch adds.
    let elements = cluster.info_number(i, "stream_elements");
    let share = hash_fields_replicated_by(cluster, i, &id);
    println!(
        "join of node {i}: stream_elements {elements}, its share of the {PRELOAD_HASHES} \
         hashes x {HASH_FIELDS} fields {share}"
    );
    assert!(
        share > 0 && elements >= share && elements as f64 <= share as f64 * 1.25,
        "node {i} streamed {elements} hash fields; it replicates {share}"
    );
    i
}

/// Reads every key of `acked` back at QUORUM through `ports` in turn, pipelined; returns
/// the keys whose value is missing, not a write of that key, or older than the last
/// acknowledged write.
fn lost_writes(ports: &[u16], log: &WriterLog) -> Vec<String> {
    let acked = &log.acked;
    let via = |seq: u64| match log.via.get(&seq) {
        Some((port, at)) => format!("through port {port}, acked at {:.3}s", at.as_secs_f64()),
        None => "preloaded".to_string(),
    };
    let mut conns: Vec<RespConn> = ports.iter().map(|&p| RespConn::connect(p)).collect();
    let entries: Vec<(usize, u64)> = acked.iter().map(|(&k, &s)| (k, s)).collect();
    let mut lost = Vec::new();
    for (batch_no, batch) in entries.chunks(BATCH).enumerate() {
        let conn = &mut conns[batch_no % ports.len()];
        let mut out = Vec::new();
        for &(index, _) in batch {
            out.extend(encode_command(&[
                "GET",
                &key(index),
                "CONSISTENCY",
                "QUORUM",
            ]));
        }
        conn.send(&out);
        for &(index, acked_seq) in batch {
            let reply = conn.read_reply();
            let seen = match &reply {
                Val::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => {
                    lost.push(format!(
                        "{} (last acked write {acked_seq}) read {other} on port {}",
                        key(index),
                        conn.port
                    ));
                    continue;
                }
            };
            let seq = seen
                .split(':')
                .nth(1)
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|&seq| seen == value(index, seq) && (seq == 0 || key_of(seq) == index));
            match seq {
                Some(seq) if seq >= acked_seq => {}
                Some(seq) => lost.push(format!(
                    "{} (last acked write {acked_seq} {}) read {seen:?} (write {seq} {}) on \
                     port {}",
                    key(index),
                    via(acked_seq),
                    via(seq),
                    conn.port
                )),
                None => lost.push(format!(
                    "{} (last acked write {acked_seq} {}) read {seen:?} on port {}",
                    key(index),
                    via(acked_seq),
                    conn.port
                )),
            }
        }
    }
    lost
}

// ------------------------------------------------------------------------------------------
// Tests

#[test]
fn nodes_join_and_leave_under_writes_and_every_quorum_write_survives() {
    let _serial = serial();
    let test_started = Instant::now();
    let mut cluster = Cluster::start(3, NODE_ARGS);
    let started = Instant::now();
    preload(&cluster);
    preload_hashes(&cluster);
    println!(
        "preloaded {PRELOAD_KEYS} keys and {PRELOAD_HASHES} hashes at QUORUM in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let writer = Writer::start((0..3).map(|i| cluster.port(i)).collect());
    if common::wait_for(WRITER_WARMUP_TIMEOUT, || {
        (writer.acks() >= WRITER_WARMUP_ACKS).then_some(())
    })
    .is_none()
    {
        let log = writer.finish();
        panic!(
            "the writer made {} acknowledged writes in {WRITER_WARMUP_TIMEOUT:?}, \
             {} failures, e.g. {:?}",
            log.acks, log.failures, log.failure_examples
        );
    }

    let fourth = join_one(&mut cluster, &writer, 4);
    let fifth = join_one(&mut cluster, &writer, 5);

    // The nodes that lost ranges to the joiners drop them once the ring has been still for
    // 10 s: from here on, a node that gains ranges must really get them streamed.
    let started = Instant::now();
    let discarded = cluster.wait_until(
        "the old owners to drop the keys they no longer replicate",
        CLEANUP_TIMEOUT,
        |c| {
            let counts = (0..=fourth)
                .map(|i| {
                    let n = c.try_info_field(i, "stream_records_discarded")?;
                    n.parse::<u64>().map_err(|_| format!("node {i}: {n:?}"))
                })
                .collect::<Result<Vec<u64>, String>>()?;
            match counts.iter().all(|&n| n > 0) {
                true => Ok(counts),
                false => Err(format!(
                    "stream_records_discarded of nodes 0..={fourth}: {counts:?}"
                )),
            }
        },
    );
    println!(
        "old owners dropped what they no longer replicate {:.1}s after the second join: \
         stream_records_discarded of nodes 0..={fourth} {discarded:?} ({} keys)",
        started.elapsed().as_secs_f64(),
        writer.keys()
    );

    // Decommission an original node: it streams its ranges out and exits by itself.
    let leaver = 0;
    let leaver_id = cluster.node_id(leaver);
    writer.remove_target(cluster.port(leaver));
    let started = Instant::now();
    let reply = cluster.conn(leaver).cmd(&["RING", "DECOMMISSION"]);
    let answered = started.elapsed();
    assert_eq!(
        reply,
        ok(),
        "RING DECOMMISSION on node {leaver} answered {reply}\n{}",
        cluster.describe()
    );
    let status = cluster
        .wait_exited(leaver, DECOMMISSION_EXIT_TIMEOUT)
        .unwrap_or_else(|| {
            panic!(
                "node {leaver} still runs {DECOMMISSION_EXIT_TIMEOUT:?} after RING \
                 DECOMMISSION answered +OK\n{}",
                cluster.describe()
            )
        });
    assert!(
        status.success(),
        "decommissioned node {leaver} exited with {status}\n{}",
        cluster.describe()
    );
    cluster.wait_until(
        "every node to see 4 members after the decommission",
        MEMBERS_AGREE_TIMEOUT,
        |c| members_settled(c, 4, Some(&leaver_id)),
    );
    println!(
        "decommission of node {leaver}: +OK after {:.1}s, all 4 others agree after {:.1}s",
        answered.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // RING FORGET refuses a live member and the node itself.
    let (victim, survivor) = (1, 2);
    let victim_id = cluster.node_id(victim);
    let survivor_id = cluster.node_id(survivor);
    for (asked, id, what) in [
        (survivor, &victim_id, "a live member"),
        (survivor, &survivor_id, "itself"),
    ] {
        let reply = cluster.conn(asked).cmd(&["RING", "FORGET", id]);
        assert!(
            reply.is_error(),
            "RING FORGET of {what} ({id}) on node {asked} answered {reply}, want an error"
        );
    }

    // Kill another original node, wait until gossip holds it dead, forget it.
    writer.remove_target(cluster.port(victim));
    cluster.kill(victim);
    let killed = Instant::now();
    cluster.wait_until(
        &format!("every survivor to hold node {victim} ({victim_id}) dead"),
        DEAD_DETECTED_TIMEOUT,
        |c| {
            for i in c.running() {
                let m = member_seen_by(c, i, &victim_id)?;
                if m.health != "dead" {
                    return Err(format!("node {i} holds it {}", m.health));
                }
            }
            Ok(())
        },
    );
    let detected = killed.elapsed();
    let reply = cluster.conn(survivor).cmd(&["RING", "FORGET", &victim_id]);
    assert_eq!(
        reply,
        ok(),
        "RING FORGET {victim_id} on node {survivor} answered {reply}\n{}",
        cluster.describe()
    );
    cluster.wait_until(
        "every node to see 3 members after the forget",
        MEMBERS_AGREE_TIMEOUT,
        |c| members_settled(c, 3, Some(&victim_id)),
    );
    let forgotten = killed.elapsed();
    cluster.wait_until(
        "the new replicas to pull the forgotten node's ranges",
        TAKEOVER_TIMEOUT,
        |c| c.check_all_fields("stream_ranges_pending", "0"),
    );
    println!(
        "kill -9 of node {victim}: dead everywhere after {:.1}s; forgotten everywhere after \
         {:.1}s; its ranges taken over after {:.1}s",
        detected.as_secs_f64(),
        forgotten.as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );

    let log = writer.finish();
    println!(
        "writer: {} writes, {} acknowledged, {} not ({:?}), {} keys, in {:.1}s",
        log.attempts,
        log.acks,
        log.failures,
        log.failure_examples,
        log.acked.len(),
        log.ran.as_secs_f64()
    );
    assert!(
        log.acks >= WRITER_ACKS_MIN,
        "the writer made only {} acknowledged writes; the test means little",
        log.acks
    );

    let remaining = cluster.running();
    assert_eq!(remaining, vec![survivor, fourth, fifth]);
    let ports: Vec<u16> = remaining.iter().map(|&i| cluster.port(i)).collect();
    let started = Instant::now();
    let lost = lost_writes(&ports, &log);
    println!(
        "read back {} keys at QUORUM in {:.1}s; stream_records_discarded on the survivors: \
         {:?}",
        log.acked.len(),
        started.elapsed().as_secs_f64(),
        remaining
            .iter()
            .map(|&i| cluster.info_number(i, "stream_records_discarded"))
            .collect::<Vec<_>>()
    );
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged keys do not read back their last acknowledged value (or a \
         newer one), e.g.:\n  {}\n{}",
        lost.len(),
        log.acked.len(),
        lost[..lost.len().min(10)].join("\n  "),
        cluster.describe()
    );
    // The hashes went through two joins, a decommission and a forget with the strings.
    let hashes_lost = hashes_not_read_back(ports[0]);
    assert!(
        hashes_lost.is_empty(),
        "hashes that do not read back whole at QUORUM after the joins and leaves: {:?}\n{}",
        &hashes_lost[..hashes_lost.len().min(10)],
        cluster.describe()
    );
    println!(
        "nodes_join_and_leave_under_writes: {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}

#[test]
fn thirty_nodes_form_one_cluster_from_one_seed() {
    let _serial = serial();
    let test_started = Instant::now();
    let mut cluster = Cluster::start(1, SWARM_ARGS);
    for _ in 1..SWARM_NODES {
        // Its seeds: the first node only.
        cluster.add_node(SWARM_ARGS);
    }
    let last_started = Instant::now();
    println!(
        "started {SWARM_NODES} nodes in {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
    let ids: BTreeSet<String> = (0..SWARM_NODES).map(|i| cluster.node_id(i)).collect();
    assert_eq!(ids.len(), SWARM_NODES, "node ids are not distinct: {ids:?}");
    cluster.wait_until(
        &format!("every node to list {SWARM_NODES} normal, alive members"),
        SWARM_CONVERGED_TIMEOUT,
        |c| {
            for i in 0..SWARM_NODES {
                let members = c.try_ring_nodes(i)?;
                let listed: BTreeSet<String> = members.iter().map(|m| m.id.clone()).collect();
                if listed != ids {
                    return Err(format!("node {i} lists {} members", members.len()));
                }
                if let Some(m) = members
                    .iter()
                    .find(|m| m.status != "normal" || m.health != "alive")
                {
                    return Err(format!(
                        "node {i} lists {} as status={} health={}",
                        m.id, m.status, m.health
                    ));
                }
            }
            Ok(())
        },
    );
    println!(
        "{SWARM_NODES} nodes from one seed: all list {SWARM_NODES} normal, alive members \
         {:.1}s after the last start ({:.1}s after the first)",
        last_started.elapsed().as_secs_f64(),
        test_started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_killed_node_is_detected_dead_within_seconds_and_nodes_never_flap() {
    let _serial = serial();
    let test_started = Instant::now();
    const NODES: usize = 5;
    let mut cluster = Cluster::start(NODES, NODE_ARGS);
    thread::sleep(IDLE_WATCH);
    for i in 0..NODES {
        for field in [
            "gossip_false_deaths",
            "gossip_deaths",
            "members_dead",
            "members_suspect",
        ] {
            assert_eq!(
                cluster.info_number(i, field),
                0,
                "node {i}: {field} after {IDLE_WATCH:?} idle\n{}",
                cluster.describe()
            );
        }
    }
    println!(
        "idle {IDLE_WATCH:?}: gossip_probes {:?}, gossip_suspicions {:?}, gossip_bytes_out {:?}",
        (0..NODES)
            .map(|i| cluster.info_number(i, "gossip_probes"))
            .collect::<Vec<_>>(),
        (0..NODES)
            .map(|i| cluster.info_number(i, "gossip_suspicions"))
            .collect::<Vec<_>>(),
        (0..NODES)
            .map(|i| cluster.info_number(i, "gossip_bytes_out"))
            .collect::<Vec<_>>(),
    );

    let victim = NODES - 1;
    let victim_id = cluster.node_id(victim);
    let incarnation_before = member_seen_by(&cluster, 0, &victim_id)
        .unwrap_or_else(|why| panic!("{why}"))
        .incarnation;
    cluster.kill(victim);
    let killed = Instant::now();
    let mut seen_dead: BTreeMap<usize, Duration> = BTreeMap::new();
    let dead_incarnation = cluster.wait_until(
        &format!("every other node to hold node {victim} dead"),
        DEAD_DETECTED_TIMEOUT,
        |c| {
            // Every node every round, so that each one's own detection time is seen.
            let mut incarnation = 0;
            let mut not_yet = Vec::new();
            for i in c.running() {
                let m = member_seen_by(c, i, &victim_id)?;
                if m.health == "dead" {
                    seen_dead.entry(i).or_insert_with(|| killed.elapsed());
                    incarnation = incarnation.max(m.incarnation);
                } else {
                    not_yet.push(format!("node {i} holds it {}", m.health));
                }
            }
            match not_yet.is_empty() {
                true => Ok(incarnation),
                false => Err(not_yet.join(", ")),
            }
        },
    );
    let detected = killed.elapsed();
    println!(
        "kill -9 of node {victim}: dead on every other node after {:.2}s (per node: {:?})",
        detected.as_secs_f64(),
        seen_dead
            .iter()
            .map(|(i, d)| format!("{i}: {:.2}s", d.as_secs_f64()))
            .collect::<Vec<_>>()
    );

    cluster.restart(victim);
    let restarted = Instant::now();
    cluster.wait_until(
        &format!("every node to hold the restarted node {victim} alive again"),
        BACK_ALIVE_TIMEOUT,
        |c| {
            for i in 0..NODES {
                let m = member_seen_by(c, i, &victim_id)?;
                if m.health != "alive" || m.incarnation <= dead_incarnation {
                    return Err(format!(
                        "node {i} holds it {} at incarnation {} (dead at {dead_incarnation})",
                        m.health, m.incarnation
                    ));
                }
            }
            members_settled(c, NODES, None)
        },
    );
    let seen = member_seen_by(&cluster, 0, &victim_id).unwrap();
    println!(
        "restart of node {victim}: alive everywhere after {:.2}s, incarnation {} -> {} \
         (dead at {dead_incarnation})",
        restarted.elapsed().as_secs_f64(),
        incarnation_before,
        seen.incarnation
    );
    for i in 0..NODES {
        assert_eq!(
            cluster.info_number(i, "gossip_false_deaths"),
            0,
            "node {i}: a node killed and restarted is no false death\n{}",
            cluster.describe()
        );
    }
    println!(
        "detection test: {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}

#[test]
fn two_clusters_with_different_names_never_merge() {
    let _serial = serial();
    let test_started = Instant::now();
    let mut a = Cluster::start(2, NODE_ARGS);
    let b_args = [NODE_ARGS, &["--cluster-name", OTHER_NAME]].concat();
    let mut b = Cluster::start(2, &b_args);

    // A newcomer of each that has the other cluster's seeds first in its list: it
    // push-pulls every seed in its first round, so both sides refuse a handshake.
    let a_seeds = format!("{},{}", b.seeds(), a.seeds());
    let a_args = [NODE_ARGS, &["--seeds", &a_seeds]].concat();
    let a_new = a.add_node(&a_args);
    let b_seeds = format!("{},{}", a.seeds(), b.seeds());
    let b_new_args = [b_args.as_slice(), &["--seeds", &b_seeds]].concat();
    let b_new = b.add_node(&b_new_args);
    a.wait_until("cluster A to have 3 members", MEMBERS_AGREE_TIMEOUT, |c| {
        members_settled(c, 3, None)
    });
    b.wait_until("cluster B to have 3 members", MEMBERS_AGREE_TIMEOUT, |c| {
        members_settled(c, 3, None)
    });

    // Gossip: A's newcomer is killed and a node of B takes its peer port. A still probes
    // that address over UDP (and redials it over TCP) until it holds its member dead.
    let a_ids: BTreeSet<String> = (0..=a_new).map(|i| a.node_id(i)).collect();
    let b_own_seeds = b.seeds().to_string();
    let port = a.peer_port(a_new).to_string();
    a.kill(a_new);
    let b_taker_args = [
        b_args.as_slice(),
        &["--peer-port", &port, "--seeds", &b_own_seeds],
    ]
    .concat();
    let b_taker = b.add_node(&b_taker_args);
    b.wait_until(
        &format!("node {b_taker} of B to refuse A's datagrams"),
        REFUSED_TIMEOUT,
        |c| match c.try_info_field(b_taker, "gossip_datagrams_rejected")? {
            n if n != "0" => Ok(()),
            n => Err(format!("gossip_datagrams_rejected:{n}")),
        },
    );
    b.wait_until("cluster B to have 4 members", MEMBERS_AGREE_TIMEOUT, |c| {
        members_settled(c, 4, None)
    });

    let b_ids: BTreeSet<String> = b.running().into_iter().map(|i| b.node_id(i)).collect();
    let watch_started = Instant::now();
    let mut rounds = 0;
    while watch_started.elapsed() < APART_WATCH && rounds < APART_ROUNDS_MAX {
        rounds += 1;
        for (cluster, name, own, other) in [(&a, "A", &a_ids, &b_ids), (&b, "B", &b_ids, &a_ids)] {
            for i in cluster.running() {
                let members = cluster
                    .try_ring_nodes(i)
                    .unwrap_or_else(|why| panic!("{why}\n{}", cluster.describe()));
                for m in &members {
                    assert!(
                        own.contains(&m.id) && !other.contains(&m.id),
                        "node {i} of cluster {name} lists {} ({}) of the other cluster\n\
                         A:\n{}\nB:\n{}",
                        m.id,
                        m.addr,
                        a.describe(),
                        b.describe()
                    );
                }
            }
        }
        thread::sleep(Duration::from_millis(250));
    }
    // A lists its killed newcomer too (dead or on its way); B exactly its four.
    for i in a.running() {
        let members = a.try_ring_nodes(i).unwrap();
        assert_eq!(members.len(), 3, "node {i} of A: {members:?}");
    }
    let refused = |c: &Cluster, field: &str| -> u64 {
        c.running().iter().map(|&i| c.info_number(i, field)).sum()
    };
    let (a_handshakes, b_handshakes) = (
        refused(&a, "handshakes_refused"),
        refused(&b, "handshakes_refused"),
    );
    println!(
        "apart for {APART_WATCH:?} ({rounds} rounds): handshakes_refused A {a_handshakes}, \
         B {b_handshakes}; gossip_datagrams_rejected A {}, B {} (node {b_taker} {}); \
         node {b_new} of B and node {a_new} of A knocked at the other",
        refused(&a, "gossip_datagrams_rejected"),
        refused(&b, "gossip_datagrams_rejected"),
        b.info_number(b_taker, "gossip_datagrams_rejected"),
    );
    assert!(
        a_handshakes > 0 && b_handshakes > 0,
        "each cluster must have refused the other's handshake (A {a_handshakes}, B \
         {b_handshakes})"
    );
    println!(
        "different names test: {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}

// ------------------------------------------------------------------------------------------
// A join cut short, and the streaming rate

/// Keys preloaded before the join that is killed midway.
const RESUME_KEYS: usize = 20_000;
/// Bytes of each of their values: with the key and the ~32 bytes a record costs, the
/// joiner's share (keys x N / nodes = 15,000 records) is ~15.6 MB to stream.
const BIG_VALUE_BYTES: usize = 1_000;
/// `--stream-throughput-mb` of the joiner: its share then takes ~8 s, long enough to kill it
/// midway with time to spare, short enough for the test to stay under half a minute.
const RESUME_THROUGHPUT_MB: u64 = 2;
/// The joiner is killed once it has streamed this fraction of its expected share.
const KILL_AT_SHARE: f64 = 0.4;
/// Records a source walks per stream request (the server's `STREAM_BATCH_KEYS`). The batch
/// in flight when the joiner is killed was counted but its cursor maybe not kept yet: the
/// second run may stream it again.
const STREAM_BATCH_RECORDS: u64 = 1_000;
/// How far the records streamed over both runs may be from the joiner's share (its
/// ownership x keys), as a fraction of it, beyond that one batch: keys hash onto the ring
/// unevenly (a few tenths of a percent at this count), ownership is printed to 0.1 %.
const RESUME_SHARE_TOLERANCE: f64 = 0.02;

/// Keys preloaded before the join whose rate is measured.
const THROUGHPUT_KEYS: usize = 10_000;
/// `--stream-throughput-mb` of that joiner: its share (~7.8 MB) takes ~4 s.
const THROUGHPUT_LIMIT_MB: u64 = 2;
/// How far above the limit the measured rate may be, as a fraction: the first batch lands
/// right after the throttle starts and the polls see each moment up to ~100 ms late.
const THROUGHPUT_OVER_MAX: f64 = 0.10;
/// How far below the limit the measured rate may be before the limit looks like a
/// slowdown of its own, as a fraction of it.
const THROUGHPUT_UNDER_MAX: f64 = 0.5;

fn big_key(index: usize) -> String {
    format!("big{index}")
}

/// The value of [`big_key`] `index`: its index, then filler, [`BIG_VALUE_BYTES`] in all.
fn big_value(index: usize) -> String {
    let head = format!("{index}:");
    let filler = char::from(b'a' + (index % 26) as u8);
    let mut value = head.clone();
    value.extend(std::iter::repeat_n(filler, BIG_VALUE_BYTES - head.len()));
    value
}

/// Writes [`big_key`] `0..keys` at QUORUM through node 0, pipelined; each must answer +OK.
fn preload_big(cluster: &Cluster, keys: usize) {
    let mut conn = cluster.conn(0);
    for start in (0..keys).step_by(BATCH) {
        let end = (start + BATCH).min(keys);
        let mut out = Vec::new();
        for i in start..end {
            out.extend(encode_command(&[
                "SET",
                &big_key(i),
                &big_value(i),
                "CONSISTENCY",
                "QUORUM",
            ]));
        }
        conn.send(&out);
        for i in start..end {
            let reply = conn.read_reply();
            assert_eq!(
                reply,
                ok(),
                "preloading {} at QUORUM answered {reply}",
                big_key(i)
            );
        }
    }
}

/// Reads [`big_key`] `0..keys` at QUORUM through `port`, pipelined; returns those that do not
/// read back their [`big_value`].
fn big_keys_not_read_back(port: u16, keys: usize) -> Vec<String> {
    let mut conn = RespConn::connect(port);
    let mut wrong = Vec::new();
    for start in (0..keys).step_by(BATCH) {
        let end = (start + BATCH).min(keys);
        let mut out = Vec::new();
        for i in start..end {
            out.extend(encode_command(&[
                "GET",
                &big_key(i),
                "CONSISTENCY",
                "QUORUM",
            ]));
        }
        conn.send(&out);
        for i in start..end {
            let reply = conn.read_reply();
            if reply != Val::Bulk(big_value(i).into_bytes()) {
                let shown = match &reply {
                    Val::Bulk(b) => format!("{} bytes {:?}...", b.len(), &b[..b.len().min(16)]),
                    other => other.to_string(),
                };
                wrong.push(format!("{} read {shown}", big_key(i)));
            }
        }
    }
    wrong
}

/// Node `i`'s `stream_records`, `stream_bytes` and `status` from one `INFO cluster`.
fn stream_progress(c: &Cluster, i: usize) -> Result<(u64, u64, String), String> {
    let info = c.try_info(i, "cluster")?;
    let field = |name: &str| {
        common::info_value(&info, name).ok_or_else(|| format!("node {i}: no {name} in INFO"))
    };
    let number = |name: &str| -> Result<u64, String> {
        let text = field(name)?;
        text.parse()
            .map_err(|_| format!("node {i}: {name} is {text:?}"))
    };
    Ok((
        number("stream_records")?,
        number("stream_bytes")?,
        field("status")?,
    ))
}

/// What a join's streaming looked like from outside: when the first records were seen,
/// when the node turned normal, and the counters then.
struct StreamRun {
    /// From the caller's start to the first `stream_records > 0`.
    first_records_after: Duration,
    /// From the first `stream_records > 0` to `status:normal`.
    streaming: Duration,
    /// `stream_records` once normal.
    records: u64,
    /// `stream_bytes` once normal.
    bytes: u64,
}

impl StreamRun {
    /// Bytes per second over [`StreamRun::streaming`].
    fn rate(&self) -> f64 {
        self.bytes as f64 / self.streaming.as_secs_f64()
    }
}

/// Waits (up to [`JOIN_TIMEOUT`] from `started`) for node `i` to stream its first records,
/// then to turn normal, and says when.
fn watch_stream_to_normal(cluster: &Cluster, i: usize, started: Instant) -> StreamRun {
    cluster.wait_until(
        &format!("node {i} to stream its first records"),
        JOIN_TIMEOUT,
        |c| match stream_progress(c, i)? {
            (records, ..) if records > 0 => Ok(()),
            (_, _, status) if status != "joining" => {
                Err(format!("node {i} is {status} with no record streamed"))
            }
            (records, _, status) => Err(format!("node {i}: {status}, {records} records")),
        },
    );
    let first_seen = Instant::now();
    let (records, bytes) = cluster.wait_until(
        &format!("node {i} to turn normal"),
        JOIN_TIMEOUT.saturating_sub(started.elapsed()),
        |c| match stream_progress(c, i)? {
            (records, bytes, status) if status == "normal" => Ok((records, bytes)),
            (records, _, status) => Err(format!("node {i}: {status}, {records} records")),
        },
    );
    StreamRun {
        first_records_after: first_seen - started,
        streaming: first_seen.elapsed(),
        records,
        bytes,
    }
}

/// Node `i`'s share of `keys` as a replica, from its ownership in its own `RING NODES`.
fn replica_share(cluster: &Cluster, i: usize, keys: usize) -> (f64, f64) {
    let id = cluster.node_id(i);
    let ownership = member_seen_by(cluster, i, &id)
        .unwrap_or_else(|why| panic!("{why}\n{}", cluster.describe()))
        .ownership_pct;
    (ownership, keys as f64 * ownership / 100.0)
}

#[test]
fn a_join_killed_in_the_middle_resumes_where_it_stopped() {
    let _serial = serial();
    let test_started = Instant::now();
    let mut cluster = Cluster::start(3, NODE_ARGS);
    let started = Instant::now();
    preload_big(&cluster, RESUME_KEYS);
    println!(
        "preloaded {RESUME_KEYS} keys of {BIG_VALUE_BYTES} bytes at QUORUM in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // The joiner streams at a crawl; it is killed once well into its share.
    let limit = RESUME_THROUGHPUT_MB.to_string();
    let joiner_args = [NODE_ARGS, &["--stream-throughput-mb", &limit]].concat();
    let joiner = cluster.add_node(&joiner_args);
    let join_started = Instant::now();
    assert_eq!(
        cluster.info_field(joiner, "status"),
        "joining",
        "node {joiner}, not a seed, must start joining\n{}",
        cluster.describe()
    );
    let stream_file = cluster.dir(joiner).join("data").join("stream");
    let expected_share = (RESUME_KEYS * REPLICATION_FACTOR) as f64 / 4.0;
    let kill_at = (expected_share * KILL_AT_SHARE) as u64;
    let (first_run_records, first_run_bytes) = cluster.wait_until(
        &format!("node {joiner} to stream {kill_at} records while joining"),
        JOIN_TIMEOUT,
        |c| {
            let (records, bytes, status) = stream_progress(c, joiner)?;
            // Turning normal this early would not wait quietly for the timeout.
            assert_eq!(
                status,
                "joining",
                "node {joiner} is {status} after streaming {records} records of ~{:.0}\n{}",
                expected_share,
                c.describe()
            );
            match records >= kill_at && stream_file.exists() {
                true => Ok((records, bytes)),
                false => Err(format!(
                    "{records} records, stream file there: {}",
                    stream_file.exists()
                )),
            }
        },
    );
    cluster.kill(joiner);
    let killed_after = join_started.elapsed();
    let kept = std::fs::read_to_string(&stream_file).unwrap_or_else(|e| {
        panic!(
            "the stream file {} of node {joiner}, killed while joining, is gone: {e}\n{}",
            stream_file.display(),
            cluster.describe()
        )
    });
    // `pull <source> <cursor> <done> <ranges>` per source.
    let cursors: Vec<String> = kept
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            format!(
                "{} cursor {} done {}",
                f.get(1).unwrap_or(&"?"),
                f.get(2).unwrap_or(&"?"),
                f.get(3).unwrap_or(&"?")
            )
        })
        .collect();
    println!(
        "kill -9 of joining node {joiner} {:.1}s after its start, having streamed \
         {first_run_records} records, {first_run_bytes} bytes; its stream file keeps: {cursors:?}",
        killed_after.as_secs_f64()
    );

    let log_before = cluster.log(joiner).len();
    let restarted = Instant::now();
    cluster.restart(joiner);
    let second = watch_stream_to_normal(&cluster, joiner, restarted);
    cluster.wait_until(
        "every node to see 4 normal members",
        MEMBERS_AGREE_TIMEOUT,
        |c| members_settled(c, 4, None),
    );
    let second_run_log = cluster.log(joiner)[log_before..].to_string();
    let (ownership, share) = replica_share(&cluster, joiner, RESUME_KEYS);
    let total = first_run_records + second.records;
    println!(
        "restart of node {joiner}: first records {:.1}s after it, normal {:.1}s after them; \
         second run streamed {} records, {} bytes ({:.2} MB/s, limit {RESUME_THROUGHPUT_MB}), \
         stream_records_new {}, stream_ranges_done {}, stream_ranges_pending {}; its share: \
         ownership {ownership:.1}% x {RESUME_KEYS} keys = {share:.0} records; first run \
         {first_run_records} + second run {} = {total} ({:.3} of the share)",
        second.first_records_after.as_secs_f64(),
        second.streaming.as_secs_f64(),
        second.records,
        second.bytes,
        second.rate() / 1e6,
        cluster.info_number(joiner, "stream_records_new"),
        cluster.info_number(joiner, "stream_ranges_done"),
        cluster.info_number(joiner, "stream_ranges_pending"),
        second.records,
        total as f64 / share,
    );

    // The idle time before the resumed run's first batch must not become a burst.
    let limit = RESUME_THROUGHPUT_MB as f64 * 1e6;
    assert!(
        second.rate() <= limit * 1.10,
        "node {joiner} resumed its streaming at {:.2} MB/s, over its limit of \
         {RESUME_THROUGHPUT_MB} MB/s by more than 10%",
        second.rate() / 1e6
    );
    // Started over, the second run would stream the whole share again.
    assert!(
        (second.records as f64) <= share * (1.0 - KILL_AT_SHARE / 2.0),
        "node {joiner} streamed {} records after its restart, of a share of {share:.0}: it \
         had streamed {first_run_records} before the kill and should have resumed from there",
        second.records
    );
    let slack = share * RESUME_SHARE_TOLERANCE;
    let (low, high) = (share - slack, share + slack + STREAM_BATCH_RECORDS as f64);
    assert!(
        (low..=high).contains(&(total as f64)),
        "node {joiner} streamed {first_run_records} + {} = {total} records over its two runs; \
         its share is {share:.0}, allowed {low:.0} to {high:.0}",
        second.records
    );
    assert!(
        second_run_log.contains("resuming the join's streaming")
            && !second_run_log.contains("joining: streaming ranges in"),
        "the log of node {joiner}'s second run does not say it resumed its join (or says it \
         planned it afresh):\n{}",
        common::tail(&second_run_log, 40)
    );
    assert!(
        !stream_file.exists(),
        "node {joiner} is normal but its stream file is still there"
    );

    let started = Instant::now();
    let wrong = big_keys_not_read_back(cluster.port(joiner), RESUME_KEYS);
    println!(
        "read back {RESUME_KEYS} keys at QUORUM through node {joiner} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        wrong.is_empty(),
        "{} of {RESUME_KEYS} keys do not read back at QUORUM through node {joiner}, e.g.:\n  \
         {}\n{}",
        wrong.len(),
        wrong[..wrong.len().min(10)].join("\n  "),
        cluster.describe()
    );
    println!(
        "a_join_killed_in_the_middle_resumes_where_it_stopped: {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}

#[test]
fn stream_throughput_is_held_to_its_limit() {
    let _serial = serial();
    let test_started = Instant::now();
    let mut cluster = Cluster::start(3, NODE_ARGS);
    let started = Instant::now();
    preload_big(&cluster, THROUGHPUT_KEYS);
    println!(
        "preloaded {THROUGHPUT_KEYS} keys of {BIG_VALUE_BYTES} bytes at QUORUM in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let limit = THROUGHPUT_LIMIT_MB.to_string();
    let joiner_args = [NODE_ARGS, &["--stream-throughput-mb", &limit]].concat();
    let joiner = cluster.add_node(&joiner_args);
    let run = watch_stream_to_normal(&cluster, joiner, Instant::now());
    let (ownership, share) = replica_share(&cluster, joiner, THROUGHPUT_KEYS);
    let limit_bytes_per_s = THROUGHPUT_LIMIT_MB as f64 * 1e6;
    let rate = run.rate();
    println!(
        "join of node {joiner} at --stream-throughput-mb {THROUGHPUT_LIMIT_MB}: first records \
         {:.1}s after its start, normal {:.2}s after them; {} records (share: ownership \
         {ownership:.1}% x {THROUGHPUT_KEYS} keys = {share:.0}), {} bytes: {:.3} MB/s, {:.3} of \
         the limit",
        run.first_records_after.as_secs_f64(),
        run.streaming.as_secs_f64(),
        run.records,
        run.bytes,
        rate / 1e6,
        rate / limit_bytes_per_s,
    );
    // Too few bytes and the first batch alone would sway the measure.
    assert!(
        run.bytes as f64 >= 3.0 * limit_bytes_per_s,
        "node {joiner} streamed {} bytes: too few to measure a rate against \
         {THROUGHPUT_LIMIT_MB} MB/s",
        run.bytes
    );
    assert!(
        rate <= limit_bytes_per_s * (1.0 + THROUGHPUT_OVER_MAX),
        "node {joiner} streamed {} bytes in {:.2}s: {:.3} MB/s, over its limit of \
         {THROUGHPUT_LIMIT_MB} MB/s by more than {:.0}%",
        run.bytes,
        run.streaming.as_secs_f64(),
        rate / 1e6,
        THROUGHPUT_OVER_MAX * 100.0
    );
    assert!(
        rate >= limit_bytes_per_s * (1.0 - THROUGHPUT_UNDER_MAX),
        "node {joiner} streamed {} bytes in {:.2}s: {:.3} MB/s, under half its limit of \
         {THROUGHPUT_LIMIT_MB} MB/s",
        run.bytes,
        run.streaming.as_secs_f64(),
        rate / 1e6
    );
    println!(
        "stream_throughput_is_held_to_its_limit: {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}

// ------------------------------------------------------------------------------------------
// A forgotten node that comes back

/// Keys written before the node to be forgotten is killed; overwritten after the forget.
const FORGET_KEYS: usize = 4_000;
/// One key in this many is deleted after the forget (400 of them).
const DELETE_EVERY: usize = 10;

fn old_value(index: usize) -> String {
    format!("old{index}")
}

fn new_value(index: usize) -> String {
    format!("new{index}")
}

/// What the forgotten node must answer for key `index` in the end: `None` once deleted.
fn expected_after_forget(index: usize) -> Option<String> {
    (!index.is_multiple_of(DELETE_EVERY)).then(|| new_value(index))
}

/// Sends `commands` through `port` pipelined in batches of [`BATCH`]; returns the replies in
/// order.
fn pipelined(port: u16, commands: &[Vec<String>]) -> Vec<Val> {
    let mut conn = RespConn::connect(port);
    let mut replies = Vec::with_capacity(commands.len());
    for batch in commands.chunks(BATCH) {
        let mut out = Vec::new();
        for command in batch {
            out.extend(encode_command(command));
        }
        conn.send(&out);
        replies.extend(batch.iter().map(|_| conn.read_reply()));
    }
    replies
}

/// A record's version as `RING REPLICAS` prints it, `<unix ms>.<logical>@<node>`, in an
/// order that compares like the server's: by time, then the logical counter, then the node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RecordVersion {
    unix_ms: u64,
    logical: u64,
    node: String,
}

impl RecordVersion {
    fn parse(text: &str) -> Result<RecordVersion, String> {
        let bad = || format!("version {text:?} is not <unix ms>.<logical>@<node>");
        let (time, node) = text.split_once('@').ok_or_else(bad)?;
        let (ms, logical) = time.split_once('.').ok_or_else(bad)?;
        Ok(RecordVersion {
            unix_ms: ms.parse().map_err(|_| bad())?,
            logical: logical.parse().map_err(|_| bad())?,
            node: node.to_string(),
        })
    }
}

/// One replica's entry of a `RING REPLICAS` reply.
#[derive(Clone, Debug)]
struct ReplicaRecord {
    /// `self`, `up` or `down`.
    state: String,
    /// `value`, `tombstone`, `none` or `unreachable`.
    record: String,
    /// `None` for `none` and `unreachable`.
    version: Option<RecordVersion>,
}

/// Parses a `RING REPLICAS` reply: one 12-element array (name, value, ...) per replica.
fn parse_replicas(reply: &Val) -> Result<Vec<ReplicaRecord>, String> {
    let entries = reply
        .items()
        .ok_or_else(|| format!("RING REPLICAS answered {reply}"))?;
    entries
        .iter()
        .map(|entry| {
            let pairs = entry
                .pairs()
                .ok_or_else(|| format!("RING REPLICAS entry {entry} is not name/value pairs"))?;
            let field = |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k.text().as_deref() == Some(name))
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| format!("RING REPLICAS entry {entry} has no {name}"))
            };
            let text = |name: &str| {
                field(name)?
                    .text()
                    .ok_or_else(|| format!("RING REPLICAS entry {entry}: {name} is not text"))
            };
            let version = match field("version")? {
                Val::NullBulk | Val::Null => None,
                v => Some(RecordVersion::parse(&v.text().unwrap_or_default())?),
            };
            Ok(ReplicaRecord {
                state: text("state")?,
                record: text("record")?,
                version,
            })
        })
        .collect()
}

/// `RING REPLICAS k<i>` for keys `0..keys` through `port`, parsed.
fn replicas_of_keys(port: u16, keys: usize) -> Vec<Vec<ReplicaRecord>> {
    let commands: Vec<Vec<String>> = (0..keys)
        .map(|i| vec!["RING".into(), "REPLICAS".into(), key(i)])
        .collect();
    pipelined(port, &commands)
        .iter()
        .enumerate()
        .map(|(i, reply)| parse_replicas(reply).unwrap_or_else(|why| panic!("{}: {why}", key(i))))
        .collect()
}

/// Keys `0..keys` at `level` through `port`, pipelined; returns the keys that do not read
/// [`expected_after_forget`], with what they read.
fn keys_not_read_after_forget(port: u16, keys: usize, level: &str) -> Vec<String> {
    let commands: Vec<Vec<String>> = (0..keys)
        .map(|i| vec!["GET".into(), key(i), "CONSISTENCY".into(), level.into()])
        .collect();
    pipelined(port, &commands)
        .into_iter()
        .enumerate()
        .filter_map(|(i, reply)| {
            let want = match expected_after_forget(i) {
                Some(v) => Val::Bulk(v.into_bytes()),
                None => Val::NullBulk,
            };
            (reply != want).then(|| {
                let stale = reply == Val::Bulk(old_value(i).into_bytes());
                format!(
                    "{} read {reply} at {level} on port {port}, want {want}{}",
                    key(i),
                    if stale { " (the old, stale value)" } else { "" }
                )
            })
        })
        .collect()
}

#[test]
fn a_forgotten_node_that_comes_back_joins_again_without_stale_values() {
    let _serial = serial();
    let test_started = Instant::now();
    let mut cluster = Cluster::start(4, NODE_ARGS);
    let victim = 3;
    let victim_id = cluster.node_id(victim);

    let started = Instant::now();
    let sets: Vec<Vec<String>> = (0..FORGET_KEYS)
        .map(|i| {
            vec![
                "SET".into(),
                key(i),
                old_value(i),
                "CONSISTENCY".into(),
                "QUORUM".into(),
            ]
        })
        .collect();
    for (i, reply) in pipelined(cluster.port(0), &sets).iter().enumerate() {
        assert_eq!(
            *reply,
            ok(),
            "SET {} old at QUORUM answered {reply}",
            key(i)
        );
    }
    let preloaded = started.elapsed();
    // What the victim holds before it dies, and the old version of every key: the victim's
    // own records, read back later, must be newer than these.
    let before = replicas_of_keys(cluster.port(victim), FORGET_KEYS);
    let old_versions: Vec<Option<RecordVersion>> = before
        .iter()
        .map(|rs| rs.iter().filter_map(|r| r.version.clone()).max())
        .collect();
    let victim_held = before
        .iter()
        .filter(|rs| rs.iter().any(|r| r.state == "self" && r.record == "value"))
        .count();
    println!(
        "wrote {FORGET_KEYS} keys old<i> at QUORUM in {:.1}s; node {victim} ({victim_id}) \
         holds {victim_held} of them",
        preloaded.as_secs_f64()
    );
    // With 4 nodes and 3 replicas it holds about three quarters: the stale data that the
    // test is about.
    assert!(
        victim_held > FORGET_KEYS / 2,
        "node {victim} holds only {victim_held} of {FORGET_KEYS} keys before the kill\n{}",
        cluster.describe()
    );

    cluster.kill(victim);
    let killed = Instant::now();
    cluster.wait_until(
        &format!("every survivor to hold node {victim} ({victim_id}) dead"),
        DEAD_DETECTED_TIMEOUT,
        |c| {
            for i in c.running() {
                let m = member_seen_by(c, i, &victim_id)?;
                if m.health != "dead" {
                    return Err(format!("node {i} holds it {}", m.health));
                }
            }
            Ok(())
        },
    );
    let detected = killed.elapsed();
    let reply = cluster.conn(0).cmd(&["RING", "FORGET", &victim_id]);
    assert_eq!(
        reply,
        ok(),
        "RING FORGET {victim_id} on node 0 answered {reply}\n{}",
        cluster.describe()
    );
    cluster.wait_until(
        "every survivor to list 3 members after the forget",
        MEMBERS_AGREE_TIMEOUT,
        |c| members_settled(c, 3, Some(&victim_id)),
    );
    let forgotten = killed.elapsed();
    cluster.wait_until(
        "the survivors to pull the forgotten node's ranges",
        TAKEOVER_TIMEOUT,
        |c| c.check_all_fields("stream_ranges_pending", "0"),
    );
    let taken_over = killed.elapsed();
    let takeover_records: Vec<u64> = cluster
        .running()
        .iter()
        .map(|&i| cluster.info_number(i, "stream_records"))
        .collect();
    println!(
        "kill -9 of node {victim}: dead everywhere after {:.1}s, forgotten everywhere after \
         {:.1}s, its ranges taken over after {:.1}s (stream_records of nodes 0..3: \
         {takeover_records:?})",
        detected.as_secs_f64(),
        forgotten.as_secs_f64(),
        taken_over.as_secs_f64()
    );

    // While it is away and forgotten, every key changes: no hint is kept for a forgotten
    // node, so it can only learn these by streaming them.
    let started = Instant::now();
    let sets: Vec<Vec<String>> = (0..FORGET_KEYS)
        .map(|i| {
            vec![
                "SET".into(),
                key(i),
                new_value(i),
                "CONSISTENCY".into(),
                "QUORUM".into(),
            ]
        })
        .collect();
    let ports: Vec<u16> = cluster.running().iter().map(|&i| cluster.port(i)).collect();
    for (i, reply) in pipelined(ports[0], &sets).iter().enumerate() {
        assert_eq!(
            *reply,
            ok(),
            "SET {} new at QUORUM answered {reply}",
            key(i)
        );
    }
    let dels: Vec<Vec<String>> = (0..FORGET_KEYS)
        .step_by(DELETE_EVERY)
        .map(|i| vec!["DEL".into(), key(i), "CONSISTENCY".into(), "QUORUM".into()])
        .collect();
    let deleted = dels.len();
    for (n, reply) in pipelined(ports[1], &dels).iter().enumerate() {
        assert_eq!(
            *reply,
            Val::Int(1),
            "DEL {} at QUORUM answered {reply}",
            key(n * DELETE_EVERY)
        );
    }
    println!(
        "overwrote {FORGET_KEYS} keys with new<i> and deleted {deleted} at QUORUM in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // Back on its old data directory: it must find out it was forgotten and join again.
    let log_before = cluster.log(victim).len();
    let restarted = Instant::now();
    cluster.restart(victim);
    let line = cluster.wait_log_line(
        victim,
        log_before,
        "that it was forgotten",
        JOIN_TIMEOUT,
        |l| l.contains("this node was forgotten (RING FORGET) while it was away: joining again"),
    );
    let told = restarted.elapsed();
    let mut statuses: Vec<String> = Vec::new();
    let (records, records_new, bytes) = cluster.wait_until(
        &format!("node {victim} to turn joining, then normal"),
        JOIN_TIMEOUT,
        |c| {
            let (records, bytes, status) = stream_progress(c, victim)?;
            if statuses.last() != Some(&status) {
                statuses.push(status.clone());
            }
            let joined = statuses.iter().any(|s| s == "joining");
            match status.as_str() {
                "normal" if joined => {
                    let new = c.try_info_field(victim, "stream_records_new")?;
                    let new: u64 = new.parse().map_err(|_| format!("records_new {new:?}"))?;
                    Ok((records, new, bytes))
                }
                _ => Err(format!(
                    "node {victim}: statuses seen {statuses:?}, {records} records streamed"
                )),
            }
        },
    );
    let normal = restarted.elapsed();
    cluster.wait_until(
        "every node to list 4 normal, alive members",
        MEMBERS_AGREE_TIMEOUT,
        |c| {
            members_settled(c, 4, None)?;
            for i in c.running() {
                let m = member_seen_by(c, i, &victim_id)?;
                if m.status != "normal" || m.health != "alive" {
                    return Err(format!(
                        "node {i} lists {victim_id} status={} health={}",
                        m.status, m.health
                    ));
                }
            }
            Ok(())
        },
    );
    let agreed = restarted.elapsed();
    assert_eq!(
        cluster.node_id(victim),
        victim_id,
        "node {victim} came back under another id"
    );
    println!(
        "restart of node {victim}: told it was forgotten after {:.1}s ({:?}), statuses seen \
         {statuses:?}, normal after {:.1}s, all 4 agree after {:.1}s; stream_records \
         {records}, stream_records_new {records_new}, stream_bytes {bytes}",
        told.as_secs_f64(),
        line.trim(),
        normal.as_secs_f64(),
        agreed.as_secs_f64()
    );
    assert!(
        records > 0,
        "node {victim} rejoined without streaming a record\n{}",
        cluster.describe()
    );

    // Reads at ONE through it ask it first for the keys it replicates: its old values
    // would show here.
    let started = Instant::now();
    let wrong_one = keys_not_read_after_forget(cluster.port(victim), FORGET_KEYS, "ONE");
    println!(
        "read {FORGET_KEYS} keys at ONE through node {victim} in {:.1}s: {} wrong",
        started.elapsed().as_secs_f64(),
        wrong_one.len()
    );

    // What it holds itself, record by record. RING REPLICAS shows a record's kind and
    // version, not its value: its record must be the newest among the replicas (so the new
    // write or the delete), and newer than the old write.
    let started = Instant::now();
    let after = replicas_of_keys(cluster.port(victim), FORGET_KEYS);
    let (mut replicated, mut values, mut tombstones, mut nones) = (0, 0, 0, 0);
    let mut stale_records = Vec::new();
    for (i, rs) in after.iter().enumerate() {
        let Some(own) = rs.iter().find(|r| r.state == "self") else {
            continue;
        };
        replicated += 1;
        let newest = rs.iter().filter_map(|r| r.version.clone()).max();
        let fresh = own.version.as_ref().is_some_and(|v| {
            Some(v) == newest.as_ref() && old_versions[i].as_ref().is_none_or(|old| v > old)
        });
        let ok = match (expected_after_forget(i), own.record.as_str()) {
            (Some(_), "value") => fresh,
            (None, "tombstone") => fresh,
            (None, "none") => true,
            _ => false,
        };
        match own.record.as_str() {
            "value" => values += 1,
            "tombstone" => tombstones += 1,
            "none" => nones += 1,
            _ => {}
        }
        if !ok {
            stale_records.push(format!(
                "{} ({}): node {victim} holds {} at {:?}; replicas {:?}; old version {:?}",
                key(i),
                if expected_after_forget(i).is_some() {
                    "overwritten"
                } else {
                    "deleted"
                },
                own.record,
                own.version,
                rs.iter()
                    .map(|r| format!("{}:{}@{:?}", r.state, r.record, r.version))
                    .collect::<Vec<_>>(),
                old_versions[i]
            ));
        }
    }
    println!(
        "RING REPLICAS of {FORGET_KEYS} keys through node {victim} in {:.1}s: it replicates \
         {replicated}, holding {values} values, {tombstones} tombstones, {nones} none; {} \
         not the newest record",
        started.elapsed().as_secs_f64(),
        stale_records.len()
    );

    let started = Instant::now();
    let mut wrong_quorum = Vec::new();
    for i in cluster.running() {
        wrong_quorum.extend(keys_not_read_after_forget(
            cluster.port(i),
            FORGET_KEYS,
            "QUORUM",
        ));
    }
    println!(
        "read {FORGET_KEYS} keys at QUORUM through each of the 4 nodes in {:.1}s: {} wrong",
        started.elapsed().as_secs_f64(),
        wrong_quorum.len()
    );

    assert!(
        replicated > FORGET_KEYS / 2,
        "node {victim} replicates only {replicated} of {FORGET_KEYS} keys after rejoining"
    );
    for (what, wrong) in [
        (format!("read at ONE through node {victim}"), &wrong_one),
        (format!("held by node {victim} itself"), &stale_records),
        ("read at QUORUM".to_string(), &wrong_quorum),
    ] {
        assert!(
            wrong.is_empty(),
            "{} keys {what} are not their new value (or deleted), e.g.:\n  {}\n{}",
            wrong.len(),
            wrong[..wrong.len().min(10)].join("\n  "),
            cluster.describe()
        );
    }
    println!(
        "a_forgotten_node_that_comes_back_joins_again_without_stale_values: {:.1}s",
        test_started.elapsed().as_secs_f64()
    );
}
