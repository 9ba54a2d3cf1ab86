//! The wire, end to end: inline commands, pipelining, malformed input, limits (bulk length,
//! maxclients, idle timeout), AUTH, QUIT, SHUTDOWN and signals. Where Redis defines the
//! answer, the same bytes go to a real redis-server and the replies must be equal.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    Drained, IO_TIMEOUT, RedisServer, RespConn, Ringcache, Script, Val, encode_command, escape,
    nofile_soft_limit, print_mismatches,
};

/// How long a connection must stay silent before we decide the server is waiting for more.
const QUIET: Duration = Duration::from_millis(400);
/// The longest we wait for a server to react to one input.
const REACT: Duration = Duration::from_secs(5);

fn drain_after(port: u16, input: &[u8]) -> Drained {
    let mut conn = RespConn::connect(port);
    conn.send(input);
    conn.drain(QUIET, REACT)
}

fn assert_serving(conn: &mut RespConn, context: &str) {
    let reply = conn.cmd(&["PING"]);
    assert_eq!(
        reply,
        Val::Simple(b"PONG".to_vec()),
        "second client not served {context}"
    );
}

/// Sends each input on a fresh connection to both servers and compares everything received
/// until close (or silence). Returns a description of each difference.
fn differential_raw(
    redis: &RedisServer,
    ringcache: &Ringcache,
    inputs: &[(&str, Vec<u8>)],
) -> Vec<String> {
    let mut watcher = ringcache.conn();
    let mut differences = Vec::new();
    for (name, input) in inputs {
        let expected = drain_after(redis.port(), input);
        let actual = drain_after(ringcache.port(), input);
        if expected != actual {
            differences.push(format!(
                "{name}: input \"{}\"\n    redis-server: {expected}\n    ringcache:    {actual}",
                escape(&input[..input.len().min(80)])
            ));
        }
        assert_serving(&mut watcher, &format!("after {name}"));
    }
    differences
}

fn fail_on_differences(what: &str, differences: &[String]) {
    for d in differences {
        eprintln!("MISMATCH [{what}] {d}");
    }
    assert!(
        differences.is_empty(),
        "{} inputs answered differently from redis-server",
        differences.len()
    );
}

#[test]
fn inline_commands_are_answered_like_redis() {
    let redis = RedisServer::start();
    let ringcache = Ringcache::start(&[]);
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("inline PING", b"PING\r\n".to_vec()),
        ("inline PING with LF only", b"PING\n".to_vec()),
        (
            "inline lowercase ping with spaces",
            b"  ping   \r\n".to_vec(),
        ),
        (
            "inline SET with quotes, then GET",
            b"SET a \"hello world\"\r\nGET a\r\n".to_vec(),
        ),
        (
            "inline telnet style",
            b"SET b x\nGET b\nEXISTS b nope\n".to_vec(),
        ),
        ("inline single quotes", b"ECHO 'single quoted'\r\n".to_vec()),
        (
            "inline escapes in double quotes",
            b"ECHO \"a\\x41\\n\\t\"\r\n".to_vec(),
        ),
        (
            "inline empty lines are ignored",
            b"\r\n\n\r\nPING\r\n".to_vec(),
        ),
        ("inline unknown command", b"NOPE a b\r\n".to_vec()),
        ("inline wrong arity", b"GET\r\n".to_vec()),
        (
            "inline mixed with multibulk",
            b"PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING x\r\n".to_vec(),
        ),
        ("inline empty quoted argument", b"ECHO \"\"\r\n".to_vec()),
    ];
    let differences = differential_raw(&redis, &ringcache, &inputs);
    fail_on_differences("inline", &differences);

    // The brief's examples, spelled out.
    let mut conn = ringcache.conn();
    conn.send(b"PING\r\n");
    assert_eq!(conn.read_frame(), b"+PONG\r\n");
    conn.send(b"SET a \"hello world\"\r\n");
    assert_eq!(conn.read_frame(), b"+OK\r\n");
    conn.send(b"GET a\r\n");
    assert_eq!(conn.read_frame(), b"$11\r\nhello world\r\n");
    conn.send(b"GET a\n");
    assert_eq!(conn.read_frame(), b"$11\r\nhello world\r\n");
}

#[test]
fn a_thousand_pipelined_commands_in_one_write_are_all_answered_in_order() {
    const COMMANDS: usize = 1_000;
    let ringcache = Ringcache::start(&[]);
    let mut conn = ringcache.conn();
    let mut batch = Vec::new();
    let mut expected = Vec::with_capacity(COMMANDS);
    let mut counter = 0i64;
    for i in 0..COMMANDS {
        match i % 4 {
            0 => {
                batch.extend(encode_command(&[
                    "SET",
                    &format!("pipe:{i}"),
                    &format!("v{i}"),
                ]));
                expected.push(Val::Simple(b"OK".to_vec()));
            }
            1 => {
                batch.extend(encode_command(&["GET", &format!("pipe:{}", i - 1)]));
                expected.push(Val::Bulk(format!("v{}", i - 1).into_bytes()));
            }
            2 => {
                counter += 1;
                batch.extend(encode_command(&["INCR", "pipe:counter"]));
                expected.push(Val::Int(counter));
            }
            _ => {
                batch.extend(format!("ECHO inline{i}\r\n").into_bytes());
                expected.push(Val::Bulk(format!("inline{i}").into_bytes()));
            }
        }
    }
    conn.send(&batch);
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, want) in expected.iter().enumerate() {
        assert!(
            Instant::now() < deadline,
            "pipelined replies too slow (got {i})"
        );
        let got = conn.read_reply();
        assert_eq!(&got, want, "reply #{i} of the pipeline");
    }
    let rest = conn.drain(Duration::from_millis(200), Duration::from_secs(1));
    assert!(
        rest.bytes.is_empty(),
        "extra bytes after the pipeline: {rest}"
    );
}

/// Requests that arrive in pieces, with and without pauses between them, and one larger
/// than a read: the server reads a socket until a read comes back short and then waits for
/// the next readiness event, so every piece that arrives after must wake it.
#[test]
fn requests_arriving_in_pieces_and_larger_than_a_read_are_all_answered() {
    const PIECES_COMMANDS: usize = 2_000;
    const PAUSE: Duration = Duration::from_millis(2);
    const LARGE_VALUE_BYTES: usize = 300 * 1024;
    let ringcache = Ringcache::start(&[]);
    let mut conn = ringcache.conn();

    let paused = encode_command(&["SET", "piece:slow", "value"]);
    for byte in &paused {
        conn.send(std::slice::from_ref(byte));
        thread::sleep(PAUSE);
    }
    assert_eq!(conn.read_reply(), Val::Simple(b"OK".to_vec()));

    // Each command in three writes, back to back: a piece may land between the server's
    // short read and its wait for the next event.
    for i in 0..PIECES_COMMANDS {
        let command = encode_command(&["SET", &format!("piece:{i}"), &format!("v{i}")]);
        let (head, rest) = command.split_at(command.len() / 3);
        let (middle, tail) = rest.split_at(rest.len() / 2);
        for part in [head, middle, tail] {
            conn.send(part);
        }
    }
    for i in 0..PIECES_COMMANDS {
        assert_eq!(
            conn.read_reply(),
            Val::Simple(b"OK".to_vec()),
            "reply #{i} of the commands sent in pieces"
        );
    }

    let large = "x".repeat(LARGE_VALUE_BYTES);
    conn.send(&encode_command(&["SET", "piece:large", &large]));
    assert_eq!(conn.read_reply(), Val::Simple(b"OK".to_vec()));
    assert_eq!(
        conn.cmd(&["GET", "piece:large"]),
        Val::Bulk(large.into_bytes())
    );
    assert_eq!(
        conn.cmd(&["GET", &format!("piece:{}", PIECES_COMMANDS - 1)]),
        Val::Bulk(format!("v{}", PIECES_COMMANDS - 1).into_bytes())
    );
}

#[test]
fn malformed_input_gets_redis_protocol_errors_and_closes_only_that_connection() {
    let redis = RedisServer::start();
    let ringcache = Ringcache::start(&[]);
    let long_inline = vec![b'x'; 70 * 1024];
    let mut long_bulk_count = b"*1\r\n$".to_vec();
    long_bulk_count.extend(vec![b'9'; 70 * 1024]);
    let mut long_mbulk_count = b"*".to_vec();
    long_mbulk_count.extend(vec![b'9'; 70 * 1024]);
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("dollar line then garbage", b"$2\r\nxxYY".to_vec()),
        ("array count not a number", b"*abc\r\n".to_vec()),
        (
            "bulk length far too large",
            b"*1\r\n$999999999999\r\n".to_vec(),
        ),
        (
            "bulk length above proto-max-bulk-len",
            b"*1\r\n$536870913\r\n".to_vec(),
        ),
        ("array count far too large", b"*99999999999\r\n".to_vec()),
        ("negative bulk length", b"*1\r\n$-1\r\n".to_vec()),
        ("bulk length not a number", b"*1\r\n$abc\r\n".to_vec()),
        ("simple string inside a request", b"*1\r\n+foo\r\n".to_vec()),
        ("inline line without CRLF past 64 KiB", long_inline),
        ("bulk count line without CRLF past 64 KiB", long_bulk_count),
        (
            "array count line without CRLF past 64 KiB",
            long_mbulk_count,
        ),
        ("unbalanced quotes", b"SET a \"unbalanced\r\n".to_vec()),
        ("quote followed by text", b"ECHO \"a\"b\r\n".to_vec()),
        ("valid command then a bad one", b"PING\r\n*abc\r\n".to_vec()),
        (
            "valid commands around a bad one",
            b"*1\r\n$4\r\nPING\r\n*1\r\n$x\r\nPING\r\n".to_vec(),
        ),
        (
            "empty and negative arrays are skipped",
            b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
        ),
    ];
    let differences = differential_raw(&redis, &ringcache, &inputs);

    // The explicit expectations, in case both servers ever agree on something wrong.
    let expect_error = |input: &[u8], text: &str| {
        let got = drain_after(ringcache.port(), input);
        let want = Drained {
            bytes: format!("-ERR Protocol error: {text}\r\n").into_bytes(),
            closed: true,
        };
        if got != want {
            eprintln!(
                "MISMATCH [explicit] \"{}\": want {want}, got {got}",
                escape(&input[..input.len().min(40)])
            );
        }
        got == want
    };
    let explicit_ok = [
        expect_error(b"*abc\r\n", "invalid multibulk length"),
        expect_error(b"*1\r\n$999999999999\r\n", "invalid bulk length"),
        expect_error(b"*99999999999\r\n", "invalid multibulk length"),
        expect_error(&[b'x'; 70 * 1024], "too big inline request"),
        expect_error(b"*1\r\n+foo\r\n", "expected '$', got '+'"),
        // Stricter than Redis on purpose (docs/redis-compatibility.md): Redis never checks the
        // CRLF after a bulk and would run a command named "xx" here.
        expect_error(
            b"*1\r\n$2\r\nxxYY\r\n",
            "bulk string not terminated by CRLF",
        ),
    ];
    fail_on_differences("malformed", &differences);
    assert!(
        explicit_ok.iter().all(|ok| *ok),
        "explicit protocol error checks failed"
    );
}

#[test]
fn a_huge_array_count_neither_crashes_nor_blocks_other_clients() {
    let mut ringcache = Ringcache::start(&[]);
    let mut watcher = ringcache.conn();
    for header in [
        &b"*2000000000\r\n"[..],
        b"*1048577\r\n",
        b"*2\r\n$536870912\r\n",
    ] {
        let mut conn = ringcache.conn();
        conn.send(header);
        // Redis 7.0 waits for the rest; an early error is acceptable too. Either way nothing is
        // allocated up front and other clients are served.
        let got = conn.drain(QUIET, REACT);
        eprintln!("huge header \"{}\" -> {got}", escape(header));
        assert_serving(&mut watcher, "while a huge header is pending");
        assert!(
            ringcache.process.try_wait().is_none(),
            "ringcache died after \"{}\"",
            escape(header)
        );
    }
}

#[test]
fn lowering_proto_max_bulk_len_with_config_set_rejects_longer_bulks() {
    const LIMIT: usize = 1024 * 1024;
    let redis = RedisServer::start();
    let ringcache = Ringcache::start(&[]);
    let script = Script::parse(
        r#"
        CONFIG SET proto-max-bulk-len 1048576
        CONFIG GET proto-max-bulk-len
        CONFIG SET proto-max-bulk-len 1000
        CONFIG SET proto-max-bulk-len abc
        CONFIG GET proto-max-bulk-len
        SETRANGE pmbl:a 1048576 x
        SETRANGE pmbl:a 1048575 x
        STRLEN pmbl:a
        APPEND pmbl:a x
        "#,
    );
    let mismatches = script.run(&mut redis.conn(), &mut ringcache.conn());
    let failing = print_mismatches("proto-max-bulk-len", script.len(), &mismatches);

    let mut header = b"*2\r\n$4\r\nECHO\r\n".to_vec();
    header.extend(format!("${}\r\n", LIMIT + 1).into_bytes());
    let differences = differential_raw(
        &redis,
        &ringcache,
        &[("bulk one byte over the lowered limit", header)],
    );

    // A bulk exactly at the limit still works.
    let value = vec![b'v'; LIMIT];
    let mut conn = ringcache.conn();
    let echoed = conn.cmd(&[&b"ECHO"[..], &value]);
    fail_on_differences("proto-max-bulk-len", &differences);
    assert_eq!(
        failing, 0,
        "{failing} CONFIG replies differ from redis-server"
    );
    assert!(
        echoed == Val::Bulk(value),
        "a bulk of exactly proto-max-bulk-len was not echoed"
    );
}

#[test]
fn the_proto_max_bulk_len_flag_sets_the_limit() {
    let ringcache = Ringcache::start(&["--proto-max-bulk-len", "2000000"]);
    let mut conn = ringcache.conn();
    let reply = conn.cmd(&["CONFIG", "GET", "proto-max-bulk-len"]);
    assert_eq!(
        reply,
        Val::Array(vec![
            Val::Bulk(b"proto-max-bulk-len".to_vec()),
            Val::Bulk(b"2000000".to_vec())
        ])
    );
    let got = drain_after(ringcache.port(), b"*2\r\n$4\r\nECHO\r\n$2000001\r\n");
    assert_eq!(
        got,
        Drained {
            bytes: b"-ERR Protocol error: invalid bulk length\r\n".to_vec(),
            closed: true
        }
    );
}

#[test]
fn the_client_beyond_maxclients_is_refused_like_redis() {
    const MAX: usize = 50;
    let redis = RedisServer::start_with(&["--maxclients", "50"]);
    let ringcache = Ringcache::start(&["--maxclients", "50"]);
    let mut results = Vec::new();
    for (name, port) in [
        ("redis-server", redis.port()),
        ("ringcache", ringcache.port()),
    ] {
        let mut idle: Vec<RespConn> = (0..MAX).map(|_| RespConn::connect(port)).collect();
        for c in &mut idle {
            assert_serving(c, &format!("{name}: one of the first {MAX} clients"));
        }
        let refused = drain_after(port, b"*1\r\n$4\r\nPING\r\n");
        // Freeing a slot lets a new client in (the server notices the close asynchronously).
        drop(idle.pop());
        let admitted = common::wait_for(Duration::from_secs(5), || {
            let mut c = RespConn::try_connect(port).ok()?;
            c.try_send(b"*1\r\n$4\r\nPING\r\n").ok()?;
            (c.try_read_frame().ok()? == b"+PONG\r\n").then_some(())
        });
        results.push((name, refused, admitted.is_some()));
    }
    for (name, refused, admitted) in &results {
        eprintln!(
            "{name}: 51st client got {refused}; a slot freed admits a new client: {admitted}"
        );
    }
    let want = Drained {
        bytes: b"-ERR max number of clients reached\r\n".to_vec(),
        closed: true,
    };
    assert_eq!(
        results[0].1, want,
        "redis-server itself behaves differently than expected"
    );
    assert_eq!(results[1].1, want, "ringcache's 51st client");
    assert!(
        results[1].2,
        "ringcache did not admit a client after one disconnected"
    );
}

fn nofile_hard_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let hard = line.split_whitespace().nth(4)?;
    if hard == "unlimited" {
        Some(1 << 20)
    } else {
        hard.parse().ok()
    }
}

#[test]
fn ten_thousand_idle_connections_do_not_stop_another_client_from_being_served() {
    // 9,999 idle + 1 active = 10,000 clients, Redis's default maxclients.
    const IDLE: usize = 9_999;
    const FD_HEADROOM: u64 = 200;
    let soft = nofile_soft_limit().unwrap_or(0);
    if soft < IDLE as u64 + FD_HEADROOM {
        eprintln!(
            "SKIPPED: this test process may open {soft} files; it needs {} \
             (raise `ulimit -n` before cargo test)",
            IDLE as u64 + FD_HEADROOM
        );
        return;
    }
    let server_nofile = nofile_hard_limit().unwrap_or(soft).min(65_536);
    if server_nofile < 10_100 {
        eprintln!("SKIPPED: hard nofile limit {server_nofile} is too low for the server");
        return;
    }
    let ringcache = Ringcache::start_with_nofile(&[], server_nofile);
    let mut active = ringcache.conn();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        assert!(
            Instant::now() < deadline,
            "opening idle connections too slow ({i} open)"
        );
        let stream = TcpStream::connect(("127.0.0.1", ringcache.port()))
            .unwrap_or_else(|e| panic!("idle connection #{i}: {e}"));
        idle.push(stream);
        if i % 1000 == 999 {
            assert_serving(&mut active, &format!("with {} idle connections", i + 1));
        }
    }
    assert_serving(&mut active, &format!("with {IDLE} idle connections"));
    assert_eq!(active.cmd(&["SET", "k", "v"]), Val::Simple(b"OK".to_vec()));
    assert_eq!(active.cmd(&["GET", "k"]), Val::Bulk(b"v".to_vec()));
    // A sample of the idle ones is still connected and answers.
    for (i, stream) in idle.iter().enumerate().step_by(1000) {
        let mut conn_stream = stream.try_clone().expect("clone stream");
        conn_stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        std::io::Write::write_all(&mut conn_stream, b"PING\r\n").expect("write to idle");
        let mut buf = [0u8; 7];
        conn_stream
            .read_exact(&mut buf)
            .unwrap_or_else(|e| panic!("idle #{i} reply: {e}"));
        assert_eq!(&buf, b"+PONG\r\n", "idle connection #{i}");
    }
    // The next client is the 10,001st: Redis's default maxclients (10000) refuses it.
    let maxclients = active.cmd(&["CONFIG", "GET", "maxclients"]);
    eprintln!("CONFIG GET maxclients -> {maxclients}");
    let over = drain_after(ringcache.port(), b"PING\r\n");
    eprintln!("the 10,001st client got {over}");
    assert_eq!(
        over,
        Drained {
            bytes: b"-ERR max number of clients reached\r\n".to_vec(),
            closed: true
        },
        "the client beyond the default maxclients of 10000"
    );
    drop(idle);
    assert_serving(&mut active, "after the idle connections closed");
}

#[test]
fn an_idle_connection_is_closed_after_the_timeout() {
    let ringcache = Ringcache::start(&["--timeout", "1"]);
    let mut idle = ringcache.conn();
    assert_serving(&mut idle, "before idling");
    let mut busy = ringcache.conn();
    let start = Instant::now();
    let busy_thread = thread::spawn(move || {
        // Active for 3 s, one command every 250 ms: never idle for a whole second.
        for _ in 0..12 {
            thread::sleep(Duration::from_millis(250));
            assert_serving(&mut busy, "while another connection idles out");
        }
    });
    let (closed_after, bytes) = idle.wait_closed(Duration::from_secs(6));
    let closed_after = closed_after.expect("the idle connection was still open after 6 s");
    eprintln!(
        "idle connection closed after {closed_after:?}; bytes: \"{}\"",
        escape(&bytes)
    );
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after <= Duration::from_millis(3500),
        "closed after {closed_after:?}, expected about 1-2 s"
    );
    assert!(
        bytes.is_empty(),
        "an idle timeout sends nothing: \"{}\"",
        escape(&bytes)
    );
    busy_thread
        .join()
        .expect("the busy client was disconnected");
    assert!(start.elapsed() >= Duration::from_secs(3));
}

#[test]
fn requirepass_demands_auth_like_redis() {
    let redis = RedisServer::start_with(&["--requirepass", "secret"]);
    let ringcache = Ringcache::start(&["--requirepass", "secret"]);
    let script = Script::parse(
        r#"
        PING
        GET k
        GET
        GET k extra
        SET k v
        SET k
        SET k v BADOPTION
        MSET a b c
        MSET a
        CLIENT ID
        CLIENT SETNAME
        CLIENT NOSUCH
        CONFIG
        CONFIG GET
        CONFIG SET maxclients
        NOSUCHCOMMAND x
        HELLO 3
        HELLO 2
        AUTH wrong
        AUTH default wrong
        AUTH nobody secret
        AUTH
        GET k
        AUTH secret
        PING
        SET k v
        GET k
        AUTH wrong
        GET k
        AUTH default secret
        @hello HELLO 2
        "#,
    );
    let mismatches = script.run(&mut redis.conn(), &mut ringcache.conn());
    let hello_script = Script::parse(
        r#"
        @hello HELLO 3 AUTH default secret
        PING
        GET k
        "#,
    );
    let hello_mismatches = hello_script.run(&mut redis.conn(), &mut ringcache.conn());
    let wrong_hello = Script::parse(
        r#"
        HELLO 3 AUTH default wrong
        HELLO 3 AUTH nobody secret
        PING
        @hello HELLO 2 AUTH default secret SETNAME authed
        CLIENT GETNAME
        "#,
    );
    let wrong_mismatches = wrong_hello.run(&mut redis.conn(), &mut ringcache.conn());

    // The brief's texts, checked directly.
    let mut conn = ringcache.conn();
    let noauth = conn.cmd(&["GET", "k"]);
    let wrongpass = conn.cmd(&["AUTH", "nope"]);
    let mut hello_conn = ringcache.conn();
    let hello = hello_conn.cmd(&["HELLO", "3", "AUTH", "default", "secret"]);
    let after_hello = hello_conn.cmd(&["PING"]);

    let failing = print_mismatches("requirepass", script.len(), &mismatches)
        + print_mismatches(
            "requirepass HELLO AUTH",
            hello_script.len(),
            &hello_mismatches,
        )
        + print_mismatches(
            "requirepass wrong HELLO AUTH",
            wrong_hello.len(),
            &wrong_mismatches,
        );
    assert_eq!(
        noauth,
        Val::Error(b"NOAUTH Authentication required.".to_vec())
    );
    assert_eq!(
        wrongpass,
        Val::Error(b"WRONGPASS invalid username-password pair or user is disabled.".to_vec())
    );
    assert!(
        matches!(hello, Val::Map(_)),
        "HELLO 3 AUTH default secret gave {hello}"
    );
    assert_eq!(after_hello, Val::Simple(b"PONG".to_vec()));
    assert_eq!(
        failing, 0,
        "{failing} AUTH replies differ from redis-server"
    );
}

#[test]
fn quit_answers_ok_and_closes_the_connection() {
    let redis = RedisServer::start();
    let ringcache = Ringcache::start(&[]);
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("QUIT", encode_command(&["QUIT"])),
        (
            "QUIT after a command, with commands after it",
            b"PING\r\nQUIT\r\nPING\r\n".to_vec(),
        ),
        ("inline quit", b"quit\r\n".to_vec()),
    ];
    let differences = differential_raw(&redis, &ringcache, &inputs);
    let got = drain_after(ringcache.port(), &encode_command(&["QUIT"]));
    fail_on_differences("quit", &differences);
    assert_eq!(
        got,
        Drained {
            bytes: b"+OK\r\n".to_vec(),
            closed: true
        }
    );
}

#[test]
fn shutdown_stops_the_process_with_status_zero() {
    let mut ringcache = Ringcache::start(&[]);
    let mut conn = ringcache.conn();
    conn.cmd(&["SET", "k", "v"]);
    conn.send(&encode_command(&["SHUTDOWN"]));
    let reply = conn.drain(QUIET, REACT);
    eprintln!("SHUTDOWN reply: {reply}");
    let status = ringcache
        .process
        .wait_exit(Duration::from_secs(10))
        .expect("still running 10 s after SHUTDOWN");
    assert!(status.success(), "exit status after SHUTDOWN: {status}");
}

#[test]
fn sigterm_stops_the_process_with_status_zero() {
    let mut ringcache = Ringcache::start(&[]);
    ringcache.process.signal("TERM");
    let status = ringcache
        .process
        .wait_exit(Duration::from_secs(10))
        .expect("still running 10 s after SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn sigint_stops_the_process_with_status_zero() {
    let mut ringcache = Ringcache::start(&[]);
    ringcache.process.signal("INT");
    let status = ringcache
        .process
        .wait_exit(Duration::from_secs(10))
        .expect("still running 10 s after SIGINT");
    assert!(status.success(), "exit status after SIGINT: {status}");
}

#[test]
fn sigterm_during_a_pipelined_batch_still_answers_the_whole_batch() {
    // Big enough (about 1.2 MB) that the server is still working through it when the signal
    // arrives: the whole batch is on the wire (written and acknowledged by the kernel) before
    // SIGTERM, so all of it is in flight.
    const COMMANDS: usize = 20_000;
    let mut ringcache = Ringcache::start(&[]);
    let mut conn = ringcache.conn();
    let mut batch = Vec::new();
    for i in 0..COMMANDS {
        batch.extend(encode_command(&[
            "SET",
            &format!("term:{i}"),
            &"x".repeat(32),
        ]));
    }
    let mut writer = conn.stream().try_clone().expect("clone stream");
    let writer = thread::spawn(move || std::io::Write::write_all(&mut writer, &batch));
    let first = conn.read_frame();
    assert_eq!(first, b"+OK\r\n");
    writer
        .join()
        .expect("writer thread")
        .expect("write the batch");
    ringcache.process.signal("TERM");
    let mut answered = 1;
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered < COMMANDS && Instant::now() < deadline {
        match conn.try_read_frame() {
            Ok(frame) => {
                assert_eq!(frame, b"+OK\r\n", "reply #{answered}");
                answered += 1;
            }
            Err(e) => {
                eprintln!("after {answered} of {COMMANDS} replies: {e}");
                break;
            }
        }
    }
    let status = ringcache
        .process
        .wait_exit(Duration::from_secs(10))
        .expect("still running 10 s after SIGTERM");
    assert_eq!(
        answered, COMMANDS,
        "replies to the in-flight batch after SIGTERM"
    );
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
