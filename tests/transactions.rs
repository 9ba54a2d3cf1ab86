//! Transactions against a real ringcache process: the `redis` crate's atomic pipeline
//! (what redis-py's default pipeline and Django's `set_many` send), `EXEC` running with no
//! other client's command in between, and `WATCH` aborting on another client's write. The
//! replies themselves are compared with redis-server by `tests/compat/transaction.redis`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Ringcache, Val};

fn client(port: u16) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    con
}

#[test]
fn the_redis_crate_s_atomic_pipeline_runs_as_one_transaction() {
    let server = Ringcache::start(&[]);
    let mut con = client(server.port());
    let (set, n, got): (String, i64, Vec<String>) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("p:a")
        .arg("1")
        .cmd("INCRBY")
        .arg("p:a")
        .arg(41)
        .cmd("MGET")
        .arg("p:a")
        .arg("p:a")
        .query(&mut con)
        .expect("MULTI ... EXEC");
    assert_eq!((set.as_str(), n), ("OK", 42));
    assert_eq!(got, ["42", "42"]);
    // Many keys at once, as a cache backend's set_many does.
    let mut pipe = redis::pipe();
    pipe.atomic();
    for i in 0..200 {
        pipe.cmd("SET")
            .arg(format!("p:k{i}"))
            .arg(i)
            .arg("EX")
            .arg(300)
            .ignore();
    }
    let () = pipe.query(&mut con).expect("set_many");
    let got: Vec<i64> = redis::cmd("MGET")
        .arg((0..200).map(|i| format!("p:k{i}")).collect::<Vec<_>>())
        .query(&mut con)
        .unwrap();
    assert_eq!(got, (0..200).collect::<Vec<i64>>());
}

#[test]
fn no_command_of_another_client_runs_inside_exec() {
    // One client increments a counter 2,000 times in each transaction; another reads it
    // all the while. Every value the reader sees must be a whole number of transactions.
    const PER_TRANSACTION: i64 = 2_000;
    const TRANSACTIONS: i64 = 20;
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
    for _ in 0..TRANSACTIONS {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for _ in 0..PER_TRANSACTION {
            pipe.cmd("INCR").arg("c").ignore();
        }
        let () = pipe.query(&mut con).expect("EXEC");
    }
    done.store(true, Ordering::Relaxed);
    let seen = reader.join().unwrap();
    assert!(!seen.is_empty());
    let torn: Vec<i64> = seen
        .iter()
        .copied()
        .filter(|n| n % PER_TRANSACTION != 0)
        .collect();
    assert!(
        torn.is_empty(),
        "{} of {} reads saw a transaction half done, e.g. {:?}",
        torn.len(),
        seen.len(),
        &torn[..torn.len().min(5)]
    );
    let total: i64 = redis::cmd("GET").arg("c").query(&mut con).unwrap();
    assert_eq!(total, PER_TRANSACTION * TRANSACTIONS);
}

#[test]
fn watch_aborts_exec_when_another_client_writes_the_key() {
    let server = Ringcache::start(&[]);
    let mut a = server.conn();
    let mut b = server.conn();
    assert_eq!(a.cmd(&["SET", "w", "1"]), Val::Simple(b"OK".to_vec()));
    assert_eq!(a.cmd(&["WATCH", "w", "other"]), Val::Simple(b"OK".to_vec()));
    assert_eq!(b.cmd(&["INCR", "w"]), Val::Int(2));
    assert_eq!(a.cmd(&["MULTI"]), Val::Simple(b"OK".to_vec()));
    assert_eq!(
        a.cmd(&["SET", "w", "from-a"]),
        Val::Simple(b"QUEUED".to_vec())
    );
    assert_eq!(a.cmd(&["EXEC"]), Val::NullArray);
    assert_eq!(a.cmd(&["GET", "w"]), Val::Bulk(b"2".to_vec()));
    // Unchanged this time: EXEC runs.
    assert_eq!(a.cmd(&["WATCH", "w"]), Val::Simple(b"OK".to_vec()));
    assert_eq!(a.cmd(&["MULTI"]), Val::Simple(b"OK".to_vec()));
    assert_eq!(
        a.cmd(&["SET", "w", "from-a"]),
        Val::Simple(b"QUEUED".to_vec())
    );
    assert_eq!(
        a.cmd(&["EXEC"]),
        Val::Array(vec![Val::Simple(b"OK".to_vec())])
    );
    // An expiry meanwhile counts as a change, as in Redis 7.0. (Two seconds of life, so
    // that even a slow machine watches it alive; checked.)
    assert_eq!(
        a.cmd(&["SET", "e", "1", "PX", "2000"]),
        Val::Simple(b"OK".to_vec())
    );
    assert_eq!(a.cmd(&["WATCH", "e"]), Val::Simple(b"OK".to_vec()));
    assert!(
        matches!(a.cmd(&["PTTL", "e"]), Val::Int(ms) if ms > 0),
        "watched alive"
    );
    std::thread::sleep(Duration::from_millis(2_300));
    assert_eq!(a.cmd(&["MULTI"]), Val::Simple(b"OK".to_vec()));
    assert_eq!(a.cmd(&["SET", "e", "2"]), Val::Simple(b"QUEUED".to_vec()));
    assert_eq!(a.cmd(&["EXEC"]), Val::NullArray);
}

#[test]
fn a_write_refused_for_memory_dooms_the_transaction() {
    // Over maxmemory with nothing to evict: the write is refused when queued, as Redis
    // refuses it, and EXEC runs nothing.
    let server = Ringcache::start(&[
        "--maxmemory",
        "1mb",
        "--maxmemory-policy",
        "noeviction",
        "--storage",
        "memory",
    ]);
    let mut con = server.conn();
    let value = "x".repeat(10_000);
    let mut refused = false;
    for i in 0..1_000 {
        if let Val::Error(text) = con.cmd(&["SET", &format!("fill{i}"), &value]) {
            assert!(
                text.starts_with(b"OOM"),
                "{}",
                String::from_utf8_lossy(&text)
            );
            refused = true;
            break;
        }
    }
    assert!(refused, "1 MB never filled");
    assert_eq!(con.cmd(&["MULTI"]), Val::Simple(b"OK".to_vec()));
    assert!(matches!(con.cmd(&["SET", "more", "1"]), Val::Error(t) if t.starts_with(b"OOM")));
    assert_eq!(con.cmd(&["GET", "fill0"]), Val::Simple(b"QUEUED".to_vec()));
    assert!(matches!(con.cmd(&["EXEC"]), Val::Error(t) if t.starts_with(b"EXECABORT")));
    assert_eq!(con.cmd(&["EXISTS", "more"]), Val::Int(0));
}
