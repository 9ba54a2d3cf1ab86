//! Scripts against real processes: a script runs with no other client's command in between,
//! a runaway script makes the node answer `BUSY` until `SCRIPT KILL` stops it, the `redis`
//! crate's `Script` (EVALSHA, then EVAL on `NOSCRIPT`) works, and on a cluster a script
//! writes at its level through the coordinator and may touch only its declared keys. The
//! replies themselves are compared with redis-server by `tests/compat/scripting.redis`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Cluster, Ringcache, Val};

fn client(port: u16) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    con
}

#[test]
fn no_command_of_another_client_runs_inside_a_script() {
    const PER_SCRIPT: i64 = 2_000;
    const SCRIPTS: i64 = 20;
    let server = Ringcache::start(&[]);
    let port = server.port();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut con = client(port);
            let mut seen = Vec::new();
            while !done.load(Ordering::Relaxed) && seen.len() < 200_000 {
                let n: Option<i64> = redis::cmd("GET").arg("c").query(&mut con).unwrap();
                seen.push(n.unwrap_or(0));
            }
            seen
        })
    };
    let mut con = client(port);
    let script = redis::Script::new(
        "for i = 1, tonumber(ARGV[1]) do redis.call('incr', KEYS[1]) end \
         return redis.call('get', KEYS[1])",
    );
    for round in 1..=SCRIPTS {
        let n: i64 = script.key("c").arg(PER_SCRIPT).invoke(&mut con).unwrap();
        assert_eq!(n, round * PER_SCRIPT);
    }
    done.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    let torn: Vec<i64> = seen.into_iter().filter(|n| n % PER_SCRIPT != 0).collect();
    assert!(torn.is_empty(), "reads inside a script: {torn:?}");
}

#[test]
fn a_runaway_script_makes_the_node_busy_until_script_kill() {
    let server = Ringcache::start(&[]);
    let port = server.port();
    let mut other = server.conn();
    // Busy after one second rather than Redis's five; both names set it.
    assert!(
        !other
            .cmd(&["CONFIG", "SET", "lua-time-limit", "1000"])
            .is_error()
    );
    assert_eq!(
        other.cmd(&["CONFIG", "GET", "busy-reply-threshold"]),
        Val::Array(vec![
            Val::Bulk(b"busy-reply-threshold".to_vec()),
            Val::Bulk(b"1000".to_vec())
        ])
    );
    let runaway = std::thread::spawn(move || {
        let mut con = client(port);
        redis::cmd("EVAL")
            .arg("local i = 0 while true do i = i + 1 end")
            .arg(0)
            .query::<redis::Value>(&mut con)
    });
    // Past busy-reply-threshold the node answers BUSY to anything but SCRIPT KILL.
    let started = Instant::now();
    let busy = loop {
        let reply = other.cmd(&["GET", "x"]);
        if reply.is_error() {
            break reply;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never busy: {reply}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        busy.text()
            .is_some_and(|t| t.starts_with("BUSY Redis is busy running a script")),
        "{busy}"
    );
    assert_eq!(other.cmd(&["SCRIPT", "KILL"]), Val::Simple(b"OK".to_vec()));
    let killed = runaway.join().unwrap();
    let text = format!("{killed:?}");
    assert!(
        text.contains("Script killed by user with SCRIPT KILL"),
        "{text}"
    );
    assert_eq!(other.cmd(&["GET", "x"]), Val::NullBulk);
    assert!(
        other
            .cmd(&["SCRIPT", "KILL"])
            .text()
            .unwrap()
            .starts_with("NOTBUSY")
    );
}

#[test]
fn a_script_on_a_cluster_writes_its_declared_keys_through_the_coordinator() {
    let cluster = Cluster::start(3, &[]);
    let limiter = redis::Script::new(
        "local c = redis.call('incr', KEYS[1]) \
         if c == 1 then redis.call('expire', KEYS[1], ARGV[1]) end return c",
    );
    // Two clients of one coordinator: the script's read-modify-writes never interleave.
    let port = cluster.port(0);
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let limiter = limiter.clone();
            std::thread::spawn(move || {
                let mut con = client(port);
                for _ in 0..200 {
                    let _: i64 = limiter.key("rate:a").arg(600).invoke(&mut con).unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    // The count is on a quorum: every node reads it back.
    for node in 0..3 {
        let mut conn = cluster.conn(node);
        assert_eq!(
            conn.cmd(&["GET", "rate:a", "CONSISTENCY", "QUORUM"]),
            Val::Bulk(b"400".to_vec()),
            "node {node}"
        );
        let ttl = conn.cmd(&["TTL", "rate:a"]);
        assert!(matches!(ttl, Val::Int(t) if t > 500), "node {node}: {ttl}");
    }
    // A key the script did not declare is refused.
    let mut conn = cluster.conn(1);
    let reply = conn.cmd(&["EVAL", "return redis.call('get', 'other')", "0"]);
    let text = reply.text().unwrap_or_default();
    assert!(
        text.starts_with("ERR Script attempted to access a non local key in a cluster node script"),
        "{reply}"
    );
    // Functions are refused whole, keys or not.
    let fcall = conn.cmd(&["FCALL", "f", "1", "k"]);
    let text = fcall.text().unwrap_or_default();
    assert!(
        text.starts_with("ERR FUNCTION and FCALL are not offered"),
        "{fcall}"
    );
    // A script loaded on one node is unknown to another (the client loads it there).
    let sha = conn.cmd(&["SCRIPT", "LOAD", "return 1"]);
    let Val::Bulk(sha) = sha else {
        panic!("SCRIPT LOAD answered {sha}");
    };
    let sha = String::from_utf8(sha).unwrap();
    assert_eq!(conn.cmd(&["EVALSHA", &sha, "0"]), Val::Int(1));
    let other = cluster.conn(2).cmd(&["EVALSHA", &sha, "0"]);
    assert!(
        other.text().unwrap_or_default().starts_with("NOSCRIPT"),
        "{other}"
    );
}
