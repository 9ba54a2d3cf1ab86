//! Collections on a real three-node cluster (N = 3, so every node holds every key): element
//! writes through different nodes at the same time all survive, a deleted collection's
//! elements never come back, and a node killed with SIGKILL catches up element by element
//! from the survivors' hints.

mod common;

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use common::{Cluster, RespConn, Val, encode_command};

/// Fields each of the three writers adds to the shared hash (and members to the shared set).
const ELEMENTS_PER_WRITER: usize = 200;
/// Elements pipelined per request batch.
const BATCH: usize = 50;
/// A kill -9'd node is seen down at once (its connections close); bound with slack.
const DOWN_SEEN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a restarted node may take until everyone sees everyone up again.
const UP_AGAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the survivors may take to hand their hints to a restarted node.
const HINTS_REPLAYED_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends every command of `commands` pipelined in batches; returns the replies in order.
fn pipelined(conn: &mut RespConn, commands: &[Vec<String>]) -> Vec<Val> {
    let mut replies = Vec::with_capacity(commands.len());
    for batch in commands.chunks(BATCH) {
        let mut bytes = Vec::new();
        for command in batch {
            bytes.extend(encode_command(command));
        }
        conn.send(&bytes);
        replies.extend(batch.iter().map(|_| conn.read_reply()));
    }
    replies
}

/// A command as owned words.
fn command(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// The members of an array reply, as strings.
fn strings(reply: &Val) -> BTreeSet<String> {
    reply
        .items()
        .unwrap_or_else(|| panic!("not an array: {reply}"))
        .iter()
        .map(|v| v.text().unwrap_or_else(|| panic!("not a string: {v}")))
        .collect()
}

/// Writer `w`'s commands: a push of its own items, `HSET` of its own fields and `SADD` of
/// its own members, one element per command so that the three writers' requests interleave on the shared keys.
fn writer_commands(w: usize) -> Vec<Vec<String>> {
    (0..ELEMENTS_PER_WRITER)
        .flat_map(|j| {
            // Writer 0 pushes on the left, the others on the right.
            let push = if w == 0 { "LPUSH" } else { "RPUSH" };
            [
                command(&[push, "shared:l", &format!("w{w}-i{j}")]),
                command(&["HSET", "shared:h", &format!("w{w}-f{j}"), &format!("v{j}")]),
                command(&[
                    "SADD",
                    "shared:s",
                    &format!("w{w}-m{j}"),
                    "CONSISTENCY",
                    "QUORUM",
                ]),
                command(&[
                    "PFADD",
                    "shared:hll",
                    &format!("w{w}-e{j}"),
                    "CONSISTENCY",
                    "ONE",
                ]),
            ]
        })
        .collect()
}

/// Every field and member the three writers wrote.
fn all_written() -> (BTreeSet<String>, BTreeSet<String>) {
    let fields = (0..3)
        .flat_map(|w| (0..ELEMENTS_PER_WRITER).map(move |j| format!("w{w}-f{j}")))
        .collect();
    let members = (0..3)
        .flat_map(|w| (0..ELEMENTS_PER_WRITER).map(move |j| format!("w{w}-m{j}")))
        .collect();
    (fields, members)
}

#[test]
fn element_writes_through_three_nodes_at_once_all_survive_on_every_replica() {
    let mut cluster = Cluster::start(3, &[]);
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let mut conn = cluster.conn(w);
            thread::spawn(move || pipelined(&mut conn, &writer_commands(w)))
        })
        .collect();
    for (w, writer) in writers.into_iter().enumerate() {
        let replies = writer.join().expect("writer thread");
        let failed: Vec<String> = replies
            .iter()
            .filter(|r| r.is_error())
            .map(|r| r.to_string())
            .collect();
        assert!(
            failed.is_empty(),
            "writer {w}: {} errors, e.g. {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
    }
    let (fields, members) = all_written();
    // PFADDs through three nodes at once all count: the registers merge (a CRDT), so the
    // HLL equals one built from every element in a single command.
    let everything: Vec<String> = (0..3)
        .flat_map(|w| (0..ELEMENTS_PER_WRITER).map(move |j| format!("w{w}-e{j}")))
        .collect();
    let mut reference = vec!["PFADD", "ref:hll"];
    reference.extend(everything.iter().map(String::as_str));
    let mut conn = cluster.conn(0);
    assert_eq!(conn.cmd(&reference), Val::Int(1));
    let expected = conn.cmd(&["PFCOUNT", "ref:hll", "CONSISTENCY", "ALL"]);
    for i in 0..3 {
        assert_eq!(
            cluster
                .conn(i)
                .cmd(&["PFCOUNT", "shared:hll", "CONSISTENCY", "ALL"]),
            expected,
            "PFCOUNT through node {i}"
        );
    }
    // Every node, alone: kill the other two one at a time and read at ONE, so each node's
    // own copy answers.
    for i in 0..3 {
        let mut conn = cluster.conn(i);
        let got = strings(&conn.cmd(&["HKEYS", "shared:h", "CONSISTENCY", "ALL"]));
        assert_eq!(got.len(), fields.len(), "HKEYS at ALL through node {i}");
        assert_eq!(got, fields);
        // The container commands route by their subcommand's key through any node.
        assert_eq!(
            conn.cmd(&["OBJECT", "ENCODING", "shared:h"]),
            Val::Bulk(b"hashtable".to_vec()),
            "OBJECT ENCODING through node {i} (600 fields)"
        );
        assert!(matches!(conn.cmd(&["MEMORY", "USAGE", "shared:h"]), Val::Int(n) if n > 0));
        assert_eq!(conn.cmd(&["OBJECT", "ENCODING", "nokey"]), Val::NullBulk);
        assert!(matches!(conn.cmd(&["OBJECT", "HELP"]), Val::Array(_)));
    }
    // A transaction runs through the coordinator command by command: what a client
    // library's transactional pipeline needs.
    let mut conn = cluster.conn(1);
    let queued = Val::Simple(b"QUEUED".to_vec());
    assert_eq!(conn.cmd(&["MULTI"]), Val::Simple(b"OK".to_vec()));
    assert_eq!(conn.cmd(&["SET", "tx:a", "1"]), queued);
    assert_eq!(conn.cmd(&["INCRBY", "tx:a", "41"]), queued);
    assert_eq!(conn.cmd(&["HSET", "tx:h", "f", "v"]), queued);
    assert_eq!(
        conn.cmd(&["EXEC"]),
        Val::Array(vec![Val::Simple(b"OK".to_vec()), Val::Int(42), Val::Int(1)])
    );
    assert_eq!(
        cluster.conn(2).cmd(&["GET", "tx:a", "CONSISTENCY", "ALL"]),
        Val::Bulk(b"42".to_vec())
    );
    // WATCH through one coordinator sees a write through another: EXEC reads the watched
    // keys again at the read level (QUORUM) and compares versions.
    let ok = Val::Simple(b"OK".to_vec());
    assert_eq!(conn.cmd(&["WATCH", "tx:a"]), ok);
    assert_eq!(
        cluster
            .conn(2)
            .cmd(&["SET", "tx:a", "other", "CONSISTENCY", "QUORUM"]),
        ok
    );
    assert_eq!(conn.cmd(&["MULTI"]), ok);
    assert_eq!(conn.cmd(&["SET", "tx:a", "mine"]), queued);
    assert_eq!(conn.cmd(&["EXEC"]), Val::NullArray);
    assert_eq!(
        conn.cmd(&["GET", "tx:a", "CONSISTENCY", "ALL"]),
        Val::Bulk(b"other".to_vec())
    );
    // Unchanged: EXEC runs.
    assert_eq!(conn.cmd(&["WATCH", "tx:a"]), ok);
    assert_eq!(conn.cmd(&["MULTI"]), ok);
    assert_eq!(conn.cmd(&["SET", "tx:a", "mine"]), queued);
    assert_eq!(conn.cmd(&["EXEC"]), Val::Array(vec![ok.clone()]));
    cluster.kill(1);
    cluster.kill(2);
    cluster.wait_field(0, "members_up", "1", DOWN_SEEN_TIMEOUT);
    let mut alone = cluster.conn(0);
    assert_eq!(
        strings(&alone.cmd(&["HKEYS", "shared:h", "CONSISTENCY", "ONE"])),
        fields,
        "node 0 alone lacks fields"
    );
    assert_eq!(
        strings(&alone.cmd(&["SMEMBERS", "shared:s", "CONSISTENCY", "ONE"])),
        members,
        "node 0 alone lacks members"
    );
    // Every pushed item is in the list once, and each writer's items in its push order
    // (reversed for the left pushes).
    let list: Vec<String> = alone
        .cmd(&["LRANGE", "shared:l", "0", "-1", "CONSISTENCY", "ONE"])
        .items()
        .expect("LRANGE answers an array")
        .iter()
        .map(|v| v.text().expect("an item"))
        .collect();
    assert_eq!(list.len(), 3 * ELEMENTS_PER_WRITER, "items lost or doubled");
    for w in 0..3 {
        let mine: Vec<&String> = list
            .iter()
            .filter(|i| i.starts_with(&format!("w{w}-")))
            .collect();
        let mut want: Vec<String> = (0..ELEMENTS_PER_WRITER)
            .map(|j| format!("w{w}-i{j}"))
            .collect();
        if w == 0 {
            want.reverse();
        }
        assert_eq!(
            mine,
            want.iter().collect::<Vec<_>>(),
            "writer {w}'s items out of order"
        );
    }
    // (Left and right pushes made while the list was empty, or seen empty by a stale read,
    // may interleave: each lands next to the end its coordinator saw.)
}

#[test]
fn a_deleted_hash_stays_deleted_and_a_killed_node_catches_up_field_by_field() {
    let mut cluster = Cluster::start(3, &["--appendfsync", "always"]);
    let mut c0 = cluster.conn(0);
    let mut c1 = cluster.conn(1);
    let old: Vec<Vec<String>> = (0..100)
        .map(|j| command(&["HSET", "h", &format!("old{j}"), "x"]))
        .collect();
    assert!(pipelined(&mut c0, &old).iter().all(|r| !r.is_error()));
    assert_eq!(c1.cmd(&["DEL", "h", "CONSISTENCY", "QUORUM"]), Val::Int(1));

    // Node 2 goes down; fields written while it is away reach it only by hints.
    cluster.kill(2);
    cluster.wait_field(0, "members_up", "2", DOWN_SEEN_TIMEOUT);
    let new: Vec<Vec<String>> = (0..100)
        .map(|j| {
            command(&[
                "HSET",
                "h",
                &format!("new{j}"),
                &format!("{j}"),
                "CONSISTENCY",
                "QUORUM",
            ])
        })
        .collect();
    for (i, reply) in pipelined(&mut c1, &new).iter().enumerate() {
        assert_eq!(reply, &Val::Int(1), "HSET new{i} with node 2 down");
    }
    assert_eq!(
        c0.cmd(&["HDEL", "h", "new0", "new1", "CONSISTENCY", "QUORUM"]),
        Val::Int(2)
    );
    assert!(cluster.info_number(0, "hints_pending") + cluster.info_number(1, "hints_pending") > 0);
    cluster.restart(2);
    cluster.wait_all_up(UP_AGAIN_TIMEOUT);
    for i in [0, 1] {
        cluster.wait_field(i, "hints_pending", "0", HINTS_REPLAYED_TIMEOUT);
    }

    // Node 2 alone: every field written while it was down, none deleted before or after.
    cluster.kill(0);
    cluster.kill(1);
    cluster.wait_field(2, "members_up", "1", DOWN_SEEN_TIMEOUT);
    let mut alone = cluster.conn(2);
    let want: BTreeSet<String> = (2..100).map(|j| format!("new{j}")).collect();
    assert_eq!(
        strings(&alone.cmd(&["HKEYS", "h", "CONSISTENCY", "ONE"])),
        want
    );
    assert_eq!(
        alone.cmd(&["HGET", "h", "new7", "CONSISTENCY", "ONE"]),
        Val::Bulk(b"7".to_vec())
    );
}

/// How long `RING REPAIR ALL` may take on a few keys.
const REPAIR_REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// The `name=value` figures of a `RING REPAIR` reply.
fn repair_figures(reply: &Val) -> std::collections::BTreeMap<String, u64> {
    let Val::Bulk(text) = reply else {
        panic!("RING REPAIR answered {reply}, want a bulk string of figures");
    };
    String::from_utf8_lossy(text)
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
        .collect()
}

#[test]
fn repair_finds_a_replica_that_missed_a_field_under_the_same_header_version() {
    // No hints: only repair can bring node 2 what it missed.
    let mut cluster = Cluster::start(3, &["--hint-window-ms", "0"]);
    let mut c0 = cluster.conn(0);
    assert_eq!(
        c0.cmd(&["HSET", "h", "base", "1", "CONSISTENCY", "ALL"]),
        Val::Int(1)
    );

    cluster.kill(2);
    cluster.wait_field(0, "members_up", "2", DOWN_SEEN_TIMEOUT);
    assert_eq!(
        c0.cmd(&["HSET", "h", "missed", "2", "CONSISTENCY", "QUORUM"]),
        Val::Int(1)
    );
    cluster.restart(2);
    cluster.wait_all_up(UP_AGAIN_TIMEOUT);
    // A write at ONE reads one replica (no read repair of node 2) and sends node 2 only the
    // new cell: node 2 now has the newest header version and still lacks `missed`.
    assert_eq!(
        c0.cmd(&["HSET", "h", "later", "3", "CONSISTENCY", "ONE"]),
        Val::Int(1)
    );
    let mut c2 = cluster.conn(2);
    let holds_later = common::wait_for(HINTS_REPLAYED_TIMEOUT, || {
        let reply = c2.cmd(&["HEXISTS", "h", "later", "CONSISTENCY", "ONE"]);
        (reply == Val::Int(1)).then_some(())
    });
    assert!(holds_later.is_some(), "node 2 never got the write at ONE");

    c2.stream()
        .set_read_timeout(Some(REPAIR_REPLY_TIMEOUT))
        .unwrap();
    let reply = c2.cmd(&["RING", "REPAIR", "ALL"]);
    let figures = repair_figures(&reply);
    assert_eq!(
        figures.get("keys_pulled"),
        Some(&1),
        "RING REPAIR ALL: {reply}"
    );
    // The hash moves whole (three fields) and merges the one node 2 missed.
    assert_eq!(
        figures.get("elements_pulled"),
        Some(&3),
        "RING REPAIR ALL: {reply}"
    );

    cluster.kill(0);
    cluster.kill(1);
    cluster.wait_field(2, "members_up", "1", DOWN_SEEN_TIMEOUT);
    let mut alone = cluster.conn(2);
    let want: BTreeSet<String> = ["base", "later", "missed"].map(String::from).into();
    assert_eq!(
        strings(&alone.cmd(&["HKEYS", "h", "CONSISTENCY", "ONE"])),
        want
    );
}

/// `TTL key` through node `i` at QUORUM.
fn ttl_at_quorum(conn: &mut RespConn, key: &str) -> i64 {
    match conn.cmd(&["TTL", key, "CONSISTENCY", "QUORUM"]) {
        Val::Int(n) => n,
        other => panic!("TTL {key} answered {other}"),
    }
}

#[test]
fn rename_and_copy_through_one_node_read_back_at_quorum_through_the_others() {
    let mut cluster = Cluster::start(3, &[]);
    let mut c0 = cluster.conn(0);
    let quorum = |c: &mut RespConn, words: &[&str]| {
        let mut words = words.to_vec();
        words.extend(["CONSISTENCY", "QUORUM"]);
        c.cmd(&words)
    };
    // An old destination hash whose fields must not survive the rename.
    assert_eq!(
        quorum(&mut c0, &["HSET", "rn:dst", "old", "x"]),
        Val::Int(1)
    );
    assert_eq!(
        quorum(&mut c0, &["HSET", "rn:h", "a", "1", "b", "2"]),
        Val::Int(2)
    );
    assert_eq!(quorum(&mut c0, &["EXPIRE", "rn:h", "1000"]), Val::Int(1));
    assert_eq!(
        quorum(&mut c0, &["SET", "rn:s", "v", "EX", "1000"]),
        Val::Simple(b"OK".to_vec())
    );
    assert_eq!(
        quorum(&mut c0, &["RENAME", "rn:h", "rn:dst"]),
        Val::Simple(b"OK".to_vec())
    );
    assert_eq!(quorum(&mut c0, &["COPY", "rn:s", "rn:s2"]), Val::Int(1));
    assert_eq!(quorum(&mut c0, &["RENAMENX", "rn:s", "rn:s3"]), Val::Int(1));
    for i in [1, 2] {
        let mut c = cluster.conn(i);
        assert_eq!(
            strings(&quorum(&mut c, &["HKEYS", "rn:dst"])),
            BTreeSet::from(["a".to_string(), "b".to_string()]),
            "node {i}: the renamed hash, without the old destination's fields"
        );
        assert_eq!(quorum(&mut c, &["EXISTS", "rn:h", "rn:s"]), Val::Int(0));
        assert_eq!(
            quorum(&mut c, &["MGET", "rn:s2", "rn:s3"]),
            Val::Array(vec![Val::Bulk(b"v".to_vec()), Val::Bulk(b"v".to_vec())])
        );
        for key in ["rn:dst", "rn:s2", "rn:s3"] {
            let ttl = ttl_at_quorum(&mut c, key);
            assert!((990..=1000).contains(&ttl), "node {i}: TTL {key} is {ttl}");
        }
    }
    // With two of three replicas down, a rename at QUORUM is refused before anything is
    // written: the source is still there and the destination was not made.
    cluster.kill(1);
    cluster.kill(2);
    cluster.wait_field(0, "members_up", "1", DOWN_SEEN_TIMEOUT);
    let refused = quorum(&mut c0, &["RENAME", "rn:s2", "rn:s4"]);
    assert!(
        refused
            .text()
            .unwrap_or_default()
            .starts_with("UNAVAILABLE"),
        "RENAME with one replica of three: {refused}"
    );
    assert_eq!(
        c0.cmd(&["EXISTS", "rn:s2", "rn:s4", "CONSISTENCY", "ONE"]),
        Val::Int(1)
    );
}
