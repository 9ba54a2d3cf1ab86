//! Pub/sub against real processes: the replies of every subscription command compared
//! byte for byte with redis-server's in RESP2 and RESP3, messages between clients (channels
//! and patterns, in order), a subscriber that stops reading disconnected at its bound, and
//! a `PUBLISH` on one node of a cluster reaching the subscribers of every node.

mod common;

use std::time::Duration;

use common::{Cluster, RedisServer, RespConn, Ringcache, Val, encode_command, escape, wait_for};

/// How long a connection must stay quiet before its replies are taken as complete.
const QUIET: Duration = Duration::from_millis(150);
/// The longest wait for replies to one command.
const REPLY_WAIT: Duration = Duration::from_secs(5);

/// Sends each line on one connection (after `HELLO 3` when `resp3`) and returns every
/// byte that came back for each, so two servers' transcripts can be compared.
fn transcript(port: u16, lines: &[&str], resp3: bool) -> Vec<(String, String)> {
    let mut conn = RespConn::connect(port);
    if resp3 {
        conn.hello3();
    }
    lines
        .iter()
        .map(|line| {
            let args: Vec<&str> = line.split(' ').collect();
            conn.send(&encode_command(&args));
            let got = conn.drain(QUIET, REPLY_WAIT);
            (line.to_string(), escape(&got.bytes))
        })
        .collect()
}

const RESP2_LINES: &[&str] = &[
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUBSCRIBE a b",
    "PING",
    "PING hi",
    "GET x",
    "PUBSUB HELP",
    "CONFIG GET maxmemory",
    "SUBSCRIBE a",
    "PSUBSCRIBE a*",
    "PUBLISH a 1",
    // A bare UNSUBSCRIBE names the channels left in Redis's hash order, which varies from
    // one redis-server process to the next: one channel left keeps the transcript stable.
    "UNSUBSCRIBE b",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "GET x",
    "SUBSCRIBE c",
    "RESET",
    "GET x",
];

const RESP3_LINES: &[&str] = &[
    "SUBSCRIBE a",
    "GET x",
    "PUBLISH a hello",
    "PSUBSCRIBE *",
    "PUBLISH a hi",
    "PING",
    "UNSUBSCRIBE c",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "PUBLISH a gone",
];

const PLAIN_LINES: &[&str] = &[
    "PUBSUB NUMSUB a b",
    "PUBSUB NUMPAT",
    "PUBSUB CHANNELS",
    "PUBSUB CHANNELS *",
    "PUBSUB CHANNELS a b",
    "PUBSUB SHARDCHANNELS",
    "PUBSUB SHARDNUMSUB a",
    "PUBSUB NUMPAT x",
    "PUBSUB foo",
    "PUBSUB",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "PUBLISH a",
    "PUBLISH a b c",
    "MULTI",
    "SUBSCRIBE x",
    "EXEC",
];

#[test]
fn subscription_replies_match_redis_in_both_protocols() {
    let redis = RedisServer::start();
    let ringcache = Ringcache::start(&[]);
    let mut mismatches = Vec::new();
    for (lines, resp3) in [
        (RESP2_LINES, false),
        (RESP3_LINES, true),
        (PLAIN_LINES, false),
    ] {
        let want = transcript(redis.port(), lines, resp3);
        let got = transcript(ringcache.port(), lines, resp3);
        for ((line, want), (_, got)) in want.iter().zip(&got) {
            if want != got {
                mismatches.push(format!("{line}\n  redis:     {want}\n  ringcache: {got}"));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Reads one push or array frame and returns its items as text.
fn message(conn: &mut RespConn) -> Vec<String> {
    match conn.read_reply() {
        Val::Array(items) | Val::Push(items) => items
            .iter()
            .map(|v| match v {
                Val::Int(n) => n.to_string(),
                other => other.text().unwrap_or_else(|| other.to_string()),
            })
            .collect(),
        other => panic!("want a message, got {other}"),
    }
}

#[test]
fn messages_reach_channel_and_pattern_subscribers_in_order() {
    const MESSAGES: usize = 500;
    let server = Ringcache::start(&[]);
    let mut resp2 = server.conn();
    resp2.send(&encode_command(&["SUBSCRIBE", "news"]));
    assert_eq!(message(&mut resp2), ["subscribe", "news", "1"]);
    resp2.send(&encode_command(&["PSUBSCRIBE", "ne*"]));
    assert_eq!(message(&mut resp2), ["psubscribe", "ne*", "2"]);
    let mut resp3 = server.conn();
    resp3.hello3();
    resp3.send(&encode_command(&["SUBSCRIBE", "news"]));
    assert_eq!(message(&mut resp3), ["subscribe", "news", "1"]);

    let mut publisher = server.conn();
    for i in 0..MESSAGES {
        let receivers = publisher.cmd(&["PUBLISH", "news", &format!("m{i}")]);
        assert_eq!(receivers, Val::Int(3), "message {i}");
    }
    assert_eq!(publisher.cmd(&["PUBLISH", "other", "x"]), Val::Int(0));
    for i in 0..MESSAGES {
        let text = format!("m{i}");
        assert_eq!(message(&mut resp2), ["message", "news", &text]);
        assert_eq!(message(&mut resp2), ["pmessage", "ne*", "news", &text]);
        let frame = resp3.read_frame();
        assert_eq!(
            frame[0],
            b'>',
            "RESP3 messages are push frames: {}",
            escape(&frame)
        );
        let Val::Push(items) = Val::parse(&frame) else {
            unreachable!("a push frame");
        };
        assert_eq!(items[2], Val::Bulk(text.into_bytes()), "RESP3 message {i}");
    }
    assert_eq!(
        publisher.cmd(&["PUBSUB", "NUMSUB", "news"]),
        Val::Array(vec![Val::Bulk(b"news".to_vec()), Val::Int(2)])
    );
    // A subscriber that leaves is forgotten.
    drop(resp3);
    let left = wait_for(Duration::from_secs(5), || {
        let n = publisher.cmd(&["PUBLISH", "news", "after"]);
        (n == Val::Int(2)).then_some(())
    });
    assert!(left.is_some(), "the closed subscriber still counts");
}

#[test]
fn a_subscriber_that_stops_reading_is_disconnected_at_its_bound() {
    // 1 MiB messages to a subscriber that never reads: past 32 MiB queued (plus what the
    // sockets hold) it is disconnected; 200 messages are far more than that.
    const MESSAGES: usize = 200;
    let server = Ringcache::start(&[]);
    let mut stalled = server.conn();
    stalled.send(&encode_command(&["SUBSCRIBE", "big"]));
    assert_eq!(message(&mut stalled), ["subscribe", "big", "1"]);
    let mut publisher = server.conn();
    let payload = "x".repeat(1024 * 1024);
    let mut delivered = 0;
    for _ in 0..MESSAGES {
        if publisher.cmd(&["PUBLISH", "big", &payload]) == Val::Int(0) {
            break;
        }
        delivered += 1;
    }
    // Dropped past its 32 MiB (plus the sockets' buffers), not before its 8 MiB soft limit.
    assert!(
        (8..MESSAGES).contains(&delivered),
        "the stalled subscriber took {delivered} messages of 1 MiB"
    );
    let counted = wait_for(Duration::from_secs(10), || {
        let metrics = server.metrics();
        metrics
            .lines()
            .any(|l| l == "ringcache_pubsub_slow_subscribers_disconnected_total 1")
            .then_some(())
    });
    assert!(counted.is_some(), "{}", server.metrics());
    // The server goes on serving, and the publisher's connection was never at risk.
    assert_eq!(publisher.cmd(&["PING"]), Val::Simple(b"PONG".to_vec()));
    assert_eq!(
        publisher.cmd(&["PUBSUB", "NUMSUB", "big"]),
        Val::Array(vec![Val::Bulk(b"big".to_vec()), Val::Int(0)])
    );
}

#[test]
fn a_publish_on_one_node_reaches_the_subscribers_of_every_node() {
    const MESSAGES: usize = 100;
    let cluster = Cluster::start(3, &[]);
    let mut subscribers: Vec<RespConn> = (0..3).map(|i| cluster.conn(i)).collect();
    for conn in &mut subscribers {
        conn.send(&encode_command(&["SUBSCRIBE", "invalidate"]));
        assert_eq!(message(conn), ["subscribe", "invalidate", "1"]);
    }
    let mut publisher = cluster.conn(0);
    for i in 0..MESSAGES {
        // The count is this node's subscribers, as Redis Cluster counts.
        let receivers = publisher.cmd(&["PUBLISH", "invalidate", &format!("key:{i}")]);
        assert_eq!(receivers, Val::Int(1), "message {i}");
    }
    for (node, conn) in subscribers.iter_mut().enumerate() {
        for i in 0..MESSAGES {
            let got = message(conn);
            assert_eq!(
                got,
                ["message", "invalidate", &format!("key:{i}")],
                "node {node}, message {i}"
            );
        }
    }
    let sent = cluster.info_number(0, "publish_sent");
    assert_eq!(
        sent,
        2 * MESSAGES as u64,
        "each message went to both other nodes"
    );
}

/// The next message frame's items as text, or `None` when nothing comes within a second.
fn next_message(conn: &mut RespConn) -> Option<Vec<String>> {
    let got = conn.drain(Duration::from_millis(1000), Duration::from_secs(5));
    if got.bytes.is_empty() {
        return None;
    }
    // One frame at a time: put back what follows the first.
    let len = common::frame_len(&got.bytes).ok()??;
    conn.unread(&got.bytes[len..]);
    let Val::Array(items) = Val::parse(&got.bytes[..len]) else {
        panic!("want a message: {}", escape(&got.bytes));
    };
    Some(
        items
            .iter()
            .map(|v| v.text().unwrap_or_else(|| v.to_string()))
            .collect(),
    )
}

#[test]
fn keyspace_notifications_tell_subscribers_what_changed() {
    let server = Ringcache::start(&["--storage", "memory"]);
    let mut admin = server.conn();
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]),
        Val::Simple(b"OK".to_vec())
    );
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "notify-keyspace-events"]),
        Val::Array(vec![
            Val::Bulk(b"notify-keyspace-events".to_vec()),
            Val::Bulk(b"AKE".to_vec())
        ])
    );
    let mut events = server.conn();
    events.send(&encode_command(&["PSUBSCRIBE", "__key*__:*"]));
    assert_eq!(message(&mut events), ["psubscribe", "__key*__:*", "1"]);
    for line in [
        "SET k v",
        "SET k v NX",
        "SET g v GET",
        "SET g w NX GET",
        "INCR n",
        "EXPIRE k 100",
        "EXPIRE missing 100",
        "DEL k missing",
        "DEL missing",
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        admin.cmd(&args);
    }
    let mut got = Vec::new();
    while let Some(m) = next_message(&mut events) {
        got.push(format!("{} {}", m[2], m[3]));
    }
    assert_eq!(
        got,
        [
            "__keyspace@0__:k set",
            "__keyevent@0__:set k",
            "__keyspace@0__:g set",
            "__keyevent@0__:set g",
            "__keyspace@0__:n incrby",
            "__keyevent@0__:incrby n",
            "__keyspace@0__:k expire",
            "__keyevent@0__:expire k",
            "__keyspace@0__:k del",
            "__keyevent@0__:del k",
        ]
    );
    // Off again: nothing more.
    admin.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]);
    admin.cmd(&["SET", "k", "v"]);
    assert_eq!(next_message(&mut events), None);
    // Evictions, with only `Ee` selected.
    admin.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Ee"]);
    admin.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"]);
    admin.cmd(&["CONFIG", "SET", "maxmemory", "2mb"]);
    let value = "x".repeat(10_000);
    for i in 0..400 {
        admin.cmd(&["SET", &format!("fill:{i}"), &value]);
    }
    let evicted = next_message(&mut events).expect("an eviction event");
    assert_eq!(evicted[2], "__keyevent@0__:evicted");
    assert!(evicted[3].starts_with("fill:"), "{evicted:?}");
}

#[test]
fn a_keyspace_event_on_one_node_reaches_the_subscribers_of_every_node() {
    let cluster = Cluster::start(3, &[]);
    let mut admin = cluster.conn(0);
    admin.cmd(&["CONFIG", "SET", "notify-keyspace-events", "E$g"]);
    let mut events = cluster.conn(2);
    events.send(&encode_command(&["SUBSCRIBE", "__keyevent@0__:del"]));
    assert_eq!(
        message(&mut events),
        ["subscribe", "__keyevent@0__:del", "1"]
    );
    admin.cmd(&["SET", "session:1", "x"]);
    admin.cmd(&["DEL", "session:1"]);
    assert_eq!(
        message(&mut events),
        ["message", "__keyevent@0__:del", "session:1"]
    );
}

#[test]
fn a_slow_subscriber_on_another_node_is_cut_off_without_growing_its_memory() {
    // 300 messages of 1 MiB published on node 0 for a subscriber of node 1 that never
    // reads: node 1 cuts it off near its 32 MiB bound, and its memory stays far below what
    // was published.
    const MESSAGES: usize = 300;
    const MIB: u64 = 1024 * 1024;
    let cluster = Cluster::start(3, &["--storage", "memory"]);
    let mut stalled = cluster.conn(1);
    stalled.send(&encode_command(&["SUBSCRIBE", "big"]));
    assert_eq!(message(&mut stalled), ["subscribe", "big", "1"]);
    let rss_before = cluster.rss_bytes(1);
    let mut publisher = cluster.conn(0);
    let payload = "x".repeat(MIB as usize);
    let mut watcher = cluster.conn(1);
    let mut cut_off = false;
    for _ in 0..MESSAGES {
        publisher.cmd(&["PUBLISH", "big", &payload]);
        let subscribers = watcher.cmd(&["PUBSUB", "NUMSUB", "big"]);
        if subscribers == Val::Array(vec![Val::Bulk(b"big".to_vec()), Val::Int(0)]) {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "the subscriber of node 1 was never cut off");
    let grown = cluster.rss_bytes(1).saturating_sub(rss_before);
    println!("node 1 grew {} MiB", grown / MIB);
    assert!(grown < 128 * MIB, "node 1 grew {} MiB", grown / MIB);
    assert!(cluster.info_number(0, "publish_sent") > 0);
}

/// Commands whose keyspace events are compared with redis-server's, in order on one
/// connection (`SLEEP s` waits, for expiry). Each line's events are those a subscriber to
/// every keyspace and keyevent channel received while the line ran.
const EVENT_LINES: &[&str] = &[
    "HSET h a 1 b 2",
    "HSET h a 1",
    "HSETNX h a 1",
    "HSETNX h c 1",
    "HDEL h zz",
    "HDEL h a",
    "HINCRBY h n 1",
    "HINCRBYFLOAT h f 1.5",
    "HMSET h x 1",
    "HDEL h b c n f x",
    "HGET h a",
    "SADD s a b",
    "SADD s a",
    "SREM s zz",
    "SREM s a",
    "SPOP s",
    "SADD s a b c",
    "SPOP s 2",
    "SPOP s 5",
    "SADD s a b c",
    "SMOVE s t a",
    "SMOVE s t b",
    "SMOVE s t c",
    "SMOVE t t a",
    "SINTERSTORE d t missing",
    "SUNIONSTORE d t",
    "SUNIONSTORE d t",
    "SDIFFSTORE d missing",
    "LPUSH l a b c",
    "RPUSH l d",
    "LPUSHX l e",
    "RPUSHX nol e",
    "LPOP l",
    "RPOP l",
    "LPOP l 2",
    "LPOP l 5",
    "RPUSH l a b c",
    "LINSERT l BEFORE b x",
    "LINSERT l BEFORE zz x",
    "LSET l 0 y",
    "LREM l 0 zz",
    "LREM l 0 y",
    "LTRIM l 0 0",
    "LTRIM nol 0 0",
    "LTRIM l 1 0",
    "RPUSH l a b",
    "LMOVE l m LEFT RIGHT",
    "LMOVE l m RIGHT LEFT",
    "RPOPLPUSH m m",
    "RPOPLPUSH m l",
    "BLPOP l 0.1",
    "BRPOP m 0.1",
    "RPUSH l a b",
    "LMPOP 1 l LEFT COUNT 5",
    "ZADD z 1 a 2 b",
    "ZADD z 1 a",
    "ZADD z 3 a",
    "ZADD z INCR 1 a",
    "ZINCRBY z 1 b",
    "ZREM z zz",
    "ZREM z a",
    "ZADD z 1 a 2 c 3 d",
    "ZREMRANGEBYSCORE z 100 200",
    "ZREMRANGEBYSCORE z 1 1",
    "ZREMRANGEBYRANK z 0 0",
    "ZREMRANGEBYLEX z - +",
    "ZADD z 1 a 2 b 3 c",
    "ZPOPMIN z",
    "ZPOPMAX z",
    "ZPOPMIN z 5",
    "ZPOPMIN z",
    "ZADD z 1 a 2 b",
    "ZUNIONSTORE zd 1 z",
    "ZINTERSTORE zd 2 z missing",
    "ZDIFFSTORE zd 1 z",
    "ZRANGESTORE zd z 0 -1",
    "ZRANGESTORE zd z 5 6",
    "SET str v",
    "SET str v NX",
    "SETBIT b 3 1",
    "SETBIT b 3 1",
    "BITOP AND bo b str",
    "BITOP AND bo missing",
    "BITFIELD bf SET u8 0 1",
    "BITFIELD bf GET u8 0",
    "BITFIELD bf INCRBY u8 0 1",
    "PFADD p a",
    "PFADD p a",
    "PFMERGE pm p",
    "SET src v",
    "RENAME src dst",
    "RENAME dst dst",
    "RENAMENX dst src",
    "SET dst2 x",
    "RENAME src dst2",
    "COPY dst2 dst3",
    "COPY dst2 dst3",
    "COPY dst2 dst3 REPLACE",
    "COPY nosrc dst4",
    "DEL dst3 missing",
    "UNLINK dst2",
    "SET e v EX 100",
    "EXPIRE e 100",
    "EXPIRE e 0",
    "SET e v",
    "PEXPIRE e -1",
    "SET e v PX 200",
    "SLEEP 0.5",
    "EXISTS e",
    "SADD se a",
    "PEXPIRE se 200",
    "SLEEP 0.5",
    "TYPE e2",
    "TTL e2",
    "GET nokey",
    "MGET nokey s",
    "INCR i",
    "INCRBY i 2",
    "DECR i",
    "INCRBYFLOAT i 1.5",
    "APPEND i x",
    "SETRANGE i 0 x",
    "GETSET i y",
    "GETDEL i",
    "GETEX e2 EX 10",
    "SET ge v",
    "GETEX ge EX 10",
    "GETEX ge PERSIST",
    "PERSIST ge",
    "MSET m1 1 m2 2",
    "MSETNX m1 1 m3 3",
    "SETEX sx 10 v",
    "SETNX sx v",
    "HGETALL nokey",
    "SMEMBERS nokey",
    "LRANGE nokey 0 -1",
    "ZRANGE nokey 0 -1",
    "SINTER nokey t",
    "ZUNIONSTORE zd 1 nokey",
];

/// Runs [`EVENT_LINES`] on `port` with every event class selected (`KEA` plus `n` and `m`)
/// and returns each line with the events a pattern subscriber received during it.
fn event_transcript(port: u16) -> Vec<String> {
    const EVENT_QUIET: Duration = Duration::from_millis(60);
    let mut admin = RespConn::connect(port);
    admin.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEAnm"]);
    let mut events = RespConn::connect(port);
    events.send(&encode_command(&["PSUBSCRIBE", "__key*__:*"]));
    assert_eq!(message(&mut events), ["psubscribe", "__key*__:*", "1"]);
    let mut transcript = Vec::new();
    for line in EVENT_LINES {
        let args: Vec<&str> = line.split(' ').collect();
        match args.as_slice() {
            ["SLEEP", seconds] => {
                std::thread::sleep(Duration::from_secs_f64(seconds.parse().unwrap()));
            }
            _ => {
                admin.send(&encode_command(&args));
                admin.drain(EVENT_QUIET, REPLY_WAIT);
            }
        }
        let mut got = events.drain(EVENT_QUIET, REPLY_WAIT).bytes;
        let mut seen = Vec::new();
        while let Ok(Some(len)) = common::frame_len(&got) {
            let Val::Array(items) = Val::parse(&got[..len]) else {
                panic!("want a message: {}", escape(&got));
            };
            let text: Vec<String> = items.iter().filter_map(Val::text).collect();
            seen.push(format!("{} {}", text[2], text[3]));
            got.drain(..len);
        }
        transcript.push(format!("{line} => {}", seen.join(", ")));
    }
    transcript
}

#[test]
fn keyspace_events_match_redis_command_by_command() {
    let redis = RedisServer::start();
    let ringcache = Ringcache::start(&["--storage", "memory"]);
    let want = event_transcript(redis.port());
    let got = event_transcript(ringcache.port());
    let mismatches: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(want, got)| want != got)
        .map(|(want, got)| format!("  redis:     {want}\n  ringcache: {got}"))
        .collect();
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}
