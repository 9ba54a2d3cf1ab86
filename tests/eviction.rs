//! End-to-end `maxmemory`: the real binary with `--maxmemory 2mb` under each
//! `maxmemory-policy`, filled past the limit by a client. Used memory stays near the limit,
//! the policy's keys go first, volatile policies never take a key without an expiry, and
//! when nothing may be evicted writes answer Redis's exact `-OOM` text (checked against a
//! real redis-server) while reads and deletes keep working.

mod common;

use std::time::{Duration, Instant};

use common::{RedisServer, RespConn, Ringcache, Val, encode_command};

/// The limit every test runs under.
const MAXMEMORY_BYTES: u64 = 2 << 20;
/// Bytes of each value: large enough that about 1,700 keys fill the limit.
const VALUE_BYTES: usize = 1000;
/// Most writes any fill loop makes before the test gives up.
const WRITES_MAX: usize = 20_000;
/// Commands sent per pipelined batch.
const BATCH: usize = 200;
/// Redis's text, also compared with a real redis-server below.
const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

fn start(policy: &str) -> Ringcache {
    Ringcache::start(&[
        "--storage",
        "memory",
        "--maxmemory",
        "2mb",
        "--maxmemory-policy",
        policy,
    ])
}

fn value() -> String {
    "v".repeat(VALUE_BYTES)
}

/// Sends `commands` pipelined in batches and returns every reply in order.
fn pipeline(conn: &mut RespConn, commands: &[Vec<String>]) -> Vec<Val> {
    let mut replies = Vec::with_capacity(commands.len());
    for batch in commands.chunks(BATCH) {
        let bytes: Vec<u8> = batch.iter().flat_map(|c| encode_command(c)).collect();
        conn.send(&bytes);
        for _ in batch {
            replies.push(conn.read_reply());
        }
    }
    replies
}

fn cmd(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// `SET key value [EX ttl]` for each key; panics on any error reply.
fn set_all(conn: &mut RespConn, keys: &[String], ttl_s: Option<u64>) {
    let value = value();
    let commands: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            let mut c = cmd(&["SET", k, &value]);
            if let Some(ttl) = ttl_s {
                c.extend(cmd(&["EX", &ttl.to_string()]));
            }
            c
        })
        .collect();
    for (key, reply) in keys.iter().zip(pipeline(conn, &commands)) {
        assert!(!reply.is_error(), "SET {key}: {reply}");
    }
}

/// How many of `keys` still exist (one `EXISTS`, which does not touch them).
fn surviving(conn: &mut RespConn, keys: &[String]) -> usize {
    let mut count = 0;
    for chunk in keys.chunks(BATCH) {
        let mut c = vec!["EXISTS".to_string()];
        c.extend(chunk.iter().cloned());
        match conn.cmd(&c) {
            Val::Int(n) => count += n as usize,
            other => panic!("EXISTS: {other}"),
        }
    }
    count
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}:{i}")).collect()
}

/// A numeric field of `INFO section`.
fn info_field(conn: &mut RespConn, section: &str, field: &str) -> u64 {
    let text = conn.cmd(&["INFO", section]).text().expect("INFO text");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{field} is not a number in {text}"))
}

/// Keys of about this test's shape that fit under the limit, from the server's own
/// accounting after writing `probe` keys.
fn capacity(conn: &mut RespConn, probe: &[String]) -> usize {
    let used = info_field(conn, "memory", "used_memory");
    (MAXMEMORY_BYTES / (used / probe.len() as u64)) as usize
}

/// Checks that used memory ended near the limit: not above it by more than one key, and
/// not far below it (eviction stops once under).
fn assert_near_limit(conn: &mut RespConn) {
    let used = info_field(conn, "memory", "used_memory");
    let key_bytes = (VALUE_BYTES + 300) as u64;
    assert!(
        used <= MAXMEMORY_BYTES + key_bytes,
        "used_memory {used} is over the limit"
    );
    assert!(
        used >= MAXMEMORY_BYTES * 9 / 10,
        "used_memory {used} fell far below the limit"
    );
}

fn evicted(conn: &mut RespConn) -> u64 {
    info_field(conn, "stats", "evicted_keys")
}

#[test]
fn the_oom_text_is_redis_servers() {
    let redis = RedisServer::start();
    let mut conn = redis.conn();
    assert_eq!(
        conn.cmd(&["CONFIG", "SET", "maxmemory", "1"]).text(),
        Some("OK".into())
    );
    assert_eq!(conn.cmd(&["SET", "k", "v"]).text(), Some(OOM.into()));
    let server = start("noeviction");
    let mut ours = server.conn();
    for i in 0..WRITES_MAX {
        let reply = ours.cmd(&["SET", &format!("k:{i}"), &value()]);
        if reply.is_error() {
            assert_eq!(reply.text(), Some(OOM.into()));
            return;
        }
    }
    panic!("{WRITES_MAX} writes and no OOM");
}

#[test]
fn noeviction_answers_oom_to_writes_while_reads_and_deletes_work() {
    let server = start("noeviction");
    let mut conn = server.conn();
    assert_eq!(
        conn.cmd(&["CONFIG", "GET", "maxmemory-policy"])
            .pairs()
            .unwrap()[0]
            .1
            .text(),
        Some("noeviction".into())
    );
    let value = value();
    let mut written = Vec::new();
    let refused = (0..WRITES_MAX).find_map(|i| {
        let key = format!("k:{i}");
        let reply = conn.cmd(&["SET", &key, &value]);
        if reply.is_error() {
            Some(reply)
        } else {
            written.push(key);
            None
        }
    });
    let refused = refused.expect("a write refused past maxmemory");
    assert_eq!(refused.text(), Some(OOM.into()), "{refused}");
    assert!(
        written.len() > 1000,
        "only {} keys fit in 2 MiB",
        written.len()
    );
    // Other writes that may add memory are refused too; reads and deletes are not.
    assert_eq!(
        conn.cmd(&["APPEND", &written[0], "x"]).text(),
        Some(OOM.into())
    );
    assert_eq!(conn.cmd(&["GET", &written[0]]).text(), Some(value.clone()));
    assert_eq!(
        conn.cmd(&["DEL", &written[0], &written[1], &written[2]]),
        Val::Int(3)
    );
    assert_eq!(conn.cmd(&["SET", "small", "1"]).text(), Some("OK".into()));
    assert_eq!(surviving(&mut conn, &written[3..]), written.len() - 3);
    assert_eq!(evicted(&mut conn), 0);
    let memory = conn.cmd(&["INFO", "memory"]).text().unwrap();
    assert!(memory.contains("maxmemory:2097152\r\n"), "{memory}");
    assert!(memory.contains("maxmemory_human:2.00M\r\n"), "{memory}");
    assert!(
        memory.contains("maxmemory_policy:noeviction\r\n"),
        "{memory}"
    );
}

#[test]
fn allkeys_lru_keeps_keys_read_recently() {
    let server = start("allkeys-lru");
    let mut conn = server.conn();
    let hot = names("hot", 600);
    let cold = names("cold", 600);
    set_all(&mut conn, &hot, None);
    set_all(&mut conn, &cold, None);
    let room = capacity(&mut conn, &[hot.clone(), cold.clone()].concat());
    // The LRU clock ticks in seconds, as Redis's: let the first keys age before reading.
    std::thread::sleep(Duration::from_millis(2_100));
    let reads: Vec<Vec<String>> = hot.iter().map(|k| cmd(&["GET", k])).collect();
    pipeline(&mut conn, &reads);
    // Enough new keys to push out about half of the cold ones.
    let new = names("new", room - hot.len() - cold.len() + cold.len() / 2);
    set_all(&mut conn, &new, None);
    assert!(evicted(&mut conn) >= 200, "evicted {}", evicted(&mut conn));
    assert_near_limit(&mut conn);
    let hot_left = surviving(&mut conn, &hot) as f64 / hot.len() as f64;
    let cold_left = surviving(&mut conn, &cold) as f64 / cold.len() as f64;
    assert!(
        hot_left >= 0.9 && hot_left > cold_left + 0.3,
        "hot {hot_left:.2} vs cold {cold_left:.2} survived"
    );
}

#[test]
fn allkeys_lfu_keeps_keys_read_often() {
    let server = start("allkeys-lfu");
    let mut conn = server.conn();
    let hot = names("hot", 600);
    let cold = names("cold", 600);
    set_all(&mut conn, &hot, None);
    set_all(&mut conn, &cold, None);
    let room = capacity(&mut conn, &[hot.clone(), cold.clone()].concat());
    let reads: Vec<Vec<String>> = (0..10)
        .flat_map(|_| hot.iter().map(|k| cmd(&["GET", k])))
        .collect();
    pipeline(&mut conn, &reads);
    // New keys start with the same count as never-read ones (Redis's LFU_INIT_VAL), so
    // they and the cold keys share the evictions; write enough to take most of both.
    let new = names("new", 2 * room);
    set_all(&mut conn, &new, None);
    assert_near_limit(&mut conn);
    let hot_left = surviving(&mut conn, &hot) as f64 / hot.len() as f64;
    let cold_left = surviving(&mut conn, &cold) as f64 / cold.len() as f64;
    assert!(
        hot_left >= 0.9 && hot_left > cold_left + 0.3,
        "hot {hot_left:.2} vs cold {cold_left:.2} survived"
    );
}

#[test]
fn allkeys_random_evicts_any_keys_and_counts_them() {
    let server = start("allkeys-random");
    let mut conn = server.conn();
    let keys = names("k", 4_000);
    set_all(&mut conn, &keys, None);
    assert_near_limit(&mut conn);
    let left = surviving(&mut conn, &keys);
    let evicted_keys = evicted(&mut conn);
    assert_eq!(left as u64 + evicted_keys, keys.len() as u64);
    let first_half = surviving(&mut conn, &keys[..2_000]);
    assert!(
        first_half > 100 && left - first_half > 100,
        "survivors {first_half} and {} by half",
        left - first_half
    );
    // The metric follows INFO within the publisher's interval.
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = format!("ringcache_evicted_keys_total {evicted_keys}");
    loop {
        let metrics = server.metrics();
        if metrics.contains(&line) {
            break;
        }
        assert!(Instant::now() < deadline, "no `{line}` in:\n{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Under a `volatile-*` policy: keys with an expiry are evicted, never those without; once
/// none with an expiry is left, writes answer OOM.
fn volatile_policy_spares_keys_without_expiry(policy: &str) {
    let server = start(policy);
    let mut conn = server.conn();
    let plain = names("plain", 600);
    set_all(&mut conn, &plain, None);
    let volatile = names("volatile", 3_000);
    set_all(&mut conn, &volatile, Some(3_600));
    assert!(evicted(&mut conn) > 1_000);
    assert_near_limit(&mut conn);
    assert_eq!(surviving(&mut conn, &plain), plain.len(), "{policy}");
    // Writes of keys without expiry take the room of the volatile ones until none is left.
    let value = value();
    let refused = (0..WRITES_MAX).find_map(|i| {
        let reply = conn.cmd(&["SET", &format!("more:{i}"), &value]);
        reply.is_error().then_some(reply)
    });
    assert_eq!(
        refused.expect("OOM once no volatile key is left").text(),
        Some(OOM.into()),
        "{policy}"
    );
    assert_eq!(surviving(&mut conn, &volatile), 0, "{policy}");
    assert_eq!(surviving(&mut conn, &plain), plain.len(), "{policy}");
}

#[test]
fn volatile_lru_spares_keys_without_expiry() {
    volatile_policy_spares_keys_without_expiry("volatile-lru");
}

#[test]
fn volatile_lfu_spares_keys_without_expiry() {
    volatile_policy_spares_keys_without_expiry("volatile-lfu");
}

#[test]
fn volatile_random_spares_keys_without_expiry() {
    volatile_policy_spares_keys_without_expiry("volatile-random");
}

#[test]
fn volatile_ttl_evicts_the_shortest_ttls_first() {
    let server = start("volatile-ttl");
    let mut conn = server.conn();
    let plain = names("plain", 400);
    let short = names("short", 400);
    let long = names("long", 400);
    set_all(&mut conn, &plain, None);
    set_all(&mut conn, &short, Some(600));
    set_all(&mut conn, &long, Some(100_000));
    let room = capacity(
        &mut conn,
        &[plain.clone(), short.clone(), long.clone()].concat(),
    );
    // Enough keys with the longest TTL to push out as many keys as the short ones and half
    // the long ones.
    let filler = names("filler", room - 1_200 + 600);
    set_all(&mut conn, &filler, Some(200_000));
    assert_near_limit(&mut conn);
    let short_left = surviving(&mut conn, &short) as f64 / short.len() as f64;
    let long_left = surviving(&mut conn, &long) as f64 / long.len() as f64;
    let filler_left = surviving(&mut conn, &filler) as f64 / filler.len() as f64;
    // Sampling 5 keys per eviction is approximate, as in Redis: once few short-TTL keys are
    // left, samples often miss them, so some outlive longer ones. The order holds by far.
    assert!(
        short_left + 0.1 < long_left && long_left + 0.3 < filler_left,
        "short {short_left:.2}, long {long_left:.2}, filler {filler_left:.2} survived"
    );
    assert_eq!(surviving(&mut conn, &plain), plain.len());
}

#[test]
fn config_set_changes_the_policy_and_limit_at_run_time() {
    let server = Ringcache::start(&["--storage", "memory"]);
    let mut conn = server.conn();
    let keys = names("k", 3_000);
    set_all(&mut conn, &keys, None);
    assert_eq!(
        conn.cmd(&[
            "CONFIG",
            "SET",
            "maxmemory",
            "2mb",
            "maxmemory-policy",
            "allkeys-lru"
        ])
        .text(),
        Some("OK".into())
    );
    // The next write makes room; a few more bring memory down to the limit.
    set_all(&mut conn, &names("after", 100), None);
    assert_near_limit(&mut conn);
    let redis = RedisServer::start();
    let mut reference = redis.conn();
    for (name, value) in [
        ("maxmemory-policy", "lru"),
        ("maxmemory", "lots"),
        ("maxmemory-samples", "0"),
        ("appendfsync", "sometimes"),
    ] {
        let theirs = reference.cmd(&["CONFIG", "SET", name, value]);
        let ours = conn.cmd(&["CONFIG", "SET", name, value]);
        assert_eq!(ours, theirs, "CONFIG SET {name} {value}");
    }
}
