//! Blocking list commands end to end, on real processes: a client blocked in `BLPOP` is
//! woken by a push on another connection (first blocked first), `BLMOVE` moves the element
//! when it comes, a timeout answers the null reply once it has passed, commands pipelined
//! after a blocking one wait for it, `CLIENT KILL` and the server's shutdown end the wait,
//! `INFO` counts the blocked clients, and on a three-node cluster a push through one node
//! wakes a client blocked through another.
//!
//! Every wait is bounded: a client that should stay blocked is watched for [`QUIET`]; one
//! that should be woken must answer within [`WOKEN_WITHIN`].

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, RespConn, Ringcache, Val, encode_command, info_value, wait_for};

/// How long a blocked client is watched to see that it stays blocked.
const QUIET: Duration = Duration::from_millis(300);
/// How long a woken client may take to answer: a debug build on a loaded two-core machine.
const WOKEN_WITHIN: Duration = Duration::from_secs(3);
/// How long `INFO` may take to show a client blocked or unblocked.
const INFO_WITHIN: Duration = Duration::from_secs(3);
/// On the cluster: the poll (100 ms) plus a coordinated round, with a debug build's slack.
const CLUSTER_WOKEN_WITHIN: Duration = Duration::from_secs(5);

fn bulk(s: &str) -> Val {
    Val::Bulk(s.as_bytes().to_vec())
}

fn pair(key: &str, item: &str) -> Val {
    Val::Array(vec![bulk(key), bulk(item)])
}

/// Sends a command without reading its reply (it blocks).
fn send(conn: &mut RespConn, line: &str) {
    let args: Vec<&str> = line.split(' ').collect();
    conn.send(&encode_command(&args));
}

/// `blocked_clients` of `INFO clients` on `port`.
fn blocked_clients(port: u16) -> u64 {
    let info = RespConn::connect(port).cmd(&["INFO", "clients"]);
    let text = info.text().expect("INFO is a string");
    info_value(&text, "blocked_clients")
        .expect("blocked_clients in INFO")
        .parse()
        .expect("a number")
}

/// Waits until `port` reports `want` blocked clients.
fn wait_blocked(port: u16, want: u64) {
    let seen = wait_for(INFO_WITHIN, || {
        (blocked_clients(port) == want).then_some(())
    });
    assert!(
        seen.is_some(),
        "blocked_clients stayed {} on port {port}, not {want}",
        blocked_clients(port)
    );
}

/// Reads one reply and checks it came within `within` of `since`.
fn reply_within(conn: &mut RespConn, since: Instant, within: Duration) -> Val {
    let reply = conn.read_reply();
    let took = since.elapsed();
    assert!(took <= within, "the reply took {took:?}");
    reply
}

/// Asserts that nothing arrives on `conn` for [`QUIET`] and that it stays open.
fn stays_blocked(conn: &mut RespConn) {
    let drained = conn.drain(QUIET, QUIET);
    assert!(
        drained.bytes.is_empty() && !drained.closed,
        "a blocked client got {drained}"
    );
}

#[test]
fn a_push_wakes_the_longest_waiting_client_and_the_next_keeps_waiting() {
    let server = Ringcache::start(&[]);
    let mut first = server.conn();
    let mut second = server.conn();
    let mut writer = server.conn();
    send(&mut first, "BLPOP q 0");
    wait_blocked(server.port(), 1);
    send(&mut second, "BRPOP other q 0");
    wait_blocked(server.port(), 2);
    let pushed = Instant::now();
    assert_eq!(writer.cmd(&["RPUSH", "q", "a"]), Val::Int(1));
    assert_eq!(
        reply_within(&mut first, pushed, WOKEN_WITHIN),
        pair("q", "a")
    );
    // Popped for the first client before the writer's reply went out.
    assert_eq!(writer.cmd(&["LLEN", "q"]), Val::Int(0));
    stays_blocked(&mut second);
    assert_eq!(blocked_clients(server.port()), 1);
    let pushed = Instant::now();
    assert_eq!(writer.cmd(&["LPUSH", "q", "b"]), Val::Int(1));
    assert_eq!(
        reply_within(&mut second, pushed, WOKEN_WITHIN),
        pair("q", "b")
    );
    wait_blocked(server.port(), 0);
    // Both connections go on as usual.
    assert_eq!(first.cmd(&["PING"]), Val::Simple(b"PONG".to_vec()));
    assert_eq!(second.cmd(&["PING"]), Val::Simple(b"PONG".to_vec()));
}

#[test]
fn blmove_moves_the_element_when_it_arrives() {
    let server = Ringcache::start(&[]);
    let mut mover = server.conn();
    let mut writer = server.conn();
    send(&mut mover, "BLMOVE src dst LEFT RIGHT 0");
    wait_blocked(server.port(), 1);
    let pushed = Instant::now();
    assert_eq!(writer.cmd(&["RPUSH", "src", "x", "y"]), Val::Int(2));
    assert_eq!(reply_within(&mut mover, pushed, WOKEN_WITHIN), bulk("x"));
    assert_eq!(
        writer.cmd(&["LRANGE", "dst", "0", "-1"]),
        Val::Array(vec![bulk("x")])
    );
    assert_eq!(
        writer.cmd(&["LRANGE", "src", "0", "-1"]),
        Val::Array(vec![bulk("y")])
    );
}

#[test]
fn a_timeout_answers_the_null_reply_once_it_has_passed() {
    let server = Ringcache::start(&[]);
    let mut conn = server.conn();
    for (line, expected) in [
        ("BLPOP empty 0.2", Val::NullArray),
        ("BLMPOP 0.2 2 empty other RIGHT", Val::NullArray),
        // Redis 7.0 answers every list block's timeout with the null array, BLMOVE's too.
        ("BLMOVE empty dst LEFT LEFT 0.2", Val::NullArray),
    ] {
        let started = Instant::now();
        send(&mut conn, line);
        let reply = reply_within(&mut conn, started, WOKEN_WITHIN);
        assert_eq!(reply, expected, "{line}");
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{line} answered after {:?}",
            started.elapsed()
        );
    }
    conn.hello3();
    let started = Instant::now();
    send(&mut conn, "BRPOP empty 0.2");
    assert_eq!(reply_within(&mut conn, started, WOKEN_WITHIN), Val::Null);
    assert_eq!(blocked_clients(server.port()), 0);
}

#[test]
fn commands_pipelined_after_a_blocking_one_are_answered_after_it() {
    let server = Ringcache::start(&[]);
    let mut conn = server.conn();
    let mut writer = server.conn();
    let mut pipeline = encode_command(&["PING", "before"]);
    pipeline.extend(encode_command(&["BLPOP", "q", "0"]));
    pipeline.extend(encode_command(&["PING"]));
    conn.send(&pipeline);
    // The reply before the blocking command is written while it waits.
    assert_eq!(conn.read_reply(), bulk("before"));
    stays_blocked(&mut conn);
    let pushed = Instant::now();
    assert_eq!(writer.cmd(&["RPUSH", "q", "a"]), Val::Int(1));
    assert_eq!(
        reply_within(&mut conn, pushed, WOKEN_WITHIN),
        pair("q", "a")
    );
    assert_eq!(conn.read_reply(), Val::Simple(b"PONG".to_vec()));
    // A command sent while blocked is read and answered after the blocking one too.
    send(&mut conn, "BLPOP q 0");
    wait_blocked(server.port(), 1);
    send(&mut conn, "ECHO later");
    stays_blocked(&mut conn);
    writer.cmd(&["RPUSH", "q", "b"]);
    assert_eq!(conn.read_reply(), pair("q", "b"));
    assert_eq!(conn.read_reply(), bulk("later"));
}

#[test]
fn client_kill_and_a_closed_client_end_the_wait() {
    let server = Ringcache::start(&[]);
    let mut blocked = server.conn();
    let mut admin = server.conn();
    let Val::Int(id) = blocked.cmd(&["CLIENT", "ID"]) else {
        panic!("CLIENT ID is an integer");
    };
    send(&mut blocked, "BLPOP q 0");
    wait_blocked(server.port(), 1);
    let list = admin.cmd(&["CLIENT", "LIST"]).text().expect("CLIENT LIST");
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .expect("the blocked client is listed");
    assert!(line.contains(" flags=b "), "{line}");
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "ID", &id.to_string()]),
        Val::Int(1)
    );
    let (closed, bytes) = blocked.wait_closed(WOKEN_WITHIN);
    assert!(closed.is_some(), "the killed client stayed open");
    assert!(bytes.is_empty(), "the killed client got {bytes:?}");
    wait_blocked(server.port(), 0);
    // A client that leaves while blocked is unblocked too: a push afterwards stays.
    let mut leaving = server.conn();
    send(&mut leaving, "BLPOP q2 0");
    wait_blocked(server.port(), 1);
    drop(leaving);
    wait_blocked(server.port(), 0);
    assert_eq!(admin.cmd(&["RPUSH", "q2", "a"]), Val::Int(1));
    assert_eq!(admin.cmd(&["LLEN", "q2"]), Val::Int(1));
}

#[test]
fn a_shutdown_ends_the_wait() {
    let mut server = Ringcache::start(&[]);
    let mut blocked = server.conn();
    send(&mut blocked, "BLPOP q 0");
    wait_blocked(server.port(), 1);
    server.process.signal("TERM");
    let (closed, _) = blocked.wait_closed(WOKEN_WITHIN);
    assert!(closed.is_some(), "the blocked client stayed open");
    assert!(
        server.process.wait_exit(WOKEN_WITHIN).is_some(),
        "the server did not exit"
    );
}

#[test]
fn on_a_cluster_a_push_through_one_node_wakes_a_client_blocked_through_another() {
    let cluster = Cluster::start(3, &[]);
    let mut blocked = cluster.conn(0);
    let mut writer = cluster.conn(2);
    // A timeout bounds the wait should the wake-up never come.
    send(&mut blocked, "BLPOP cq 30");
    wait_blocked(cluster.port(0), 1);
    let pushed = Instant::now();
    assert_eq!(writer.cmd(&["RPUSH", "cq", "a", "b"]), Val::Int(2));
    assert_eq!(
        reply_within(&mut blocked, pushed, CLUSTER_WOKEN_WITHIN),
        pair("cq", "a")
    );
    wait_blocked(cluster.port(0), 0);
    assert_eq!(
        writer.cmd(&["LRANGE", "cq", "0", "-1"]),
        Val::Array(vec![bulk("b")])
    );
    // A push through the blocked client's own node wakes it at once, and BLMOVE moves.
    send(&mut blocked, "BLMOVE src dst RIGHT LEFT 30");
    wait_blocked(cluster.port(0), 1);
    let mut local = cluster.conn(0);
    let pushed = Instant::now();
    assert_eq!(local.cmd(&["RPUSH", "src", "x"]), Val::Int(1));
    assert_eq!(
        reply_within(&mut blocked, pushed, CLUSTER_WOKEN_WITHIN),
        bulk("x")
    );
    assert_eq!(
        writer.cmd(&["LRANGE", "dst", "0", "-1"]),
        Val::Array(vec![bulk("x")])
    );
    // The timeout still answers the null array.
    let started = Instant::now();
    send(&mut blocked, "BLPOP nothing 0.3");
    assert_eq!(
        reply_within(&mut blocked, started, CLUSTER_WOKEN_WITHIN),
        Val::NullArray
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}
