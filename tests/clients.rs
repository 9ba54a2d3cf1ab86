//! Real clients against a single node: the `redis` crate (RESP2 and RESP3, sync and async),
//! `redis-cli` (commands, `--scan`, `--pipe` bulk load), `redis-benchmark`; then ringcache's own
//! surface: `CONSISTENCY` levels and the Prometheus endpoint.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use common::{
    RespConn, Ringcache, TOOL_TIMEOUT, TempDir, Val, redis_cli, redis_cli_ok, redis_cli_stdin,
    run_tool,
};
use redis::Value;

fn url(port: u16, resp3: bool) -> String {
    if resp3 {
        format!("redis://127.0.0.1:{port}/?protocol=resp3")
    } else {
        format!("redis://127.0.0.1:{port}/")
    }
}

fn sync_round_trip(port: u16, resp3: bool) {
    let client = redis::Client::open(url(port, resp3)).expect("client");
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect");
    con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let p = if resp3 { "s3" } else { "s2" };

    let ok: String = redis::cmd("SET")
        .arg(format!("{p}:k"))
        .arg("v")
        .query(&mut con)
        .unwrap();
    assert_eq!(ok, "OK");
    let v: String = redis::cmd("GET")
        .arg(format!("{p}:k"))
        .query(&mut con)
        .unwrap();
    assert_eq!(v, "v");
    let missing: Option<String> = redis::cmd("GET")
        .arg(format!("{p}:nope"))
        .query(&mut con)
        .unwrap();
    assert_eq!(missing, None);
    let raw_missing: Value = redis::cmd("GET")
        .arg(format!("{p}:nope"))
        .query(&mut con)
        .unwrap();
    assert_eq!(raw_missing, Value::Nil);

    let _: () = redis::cmd("MSET")
        .arg(format!("{p}:a"))
        .arg("1")
        .arg(format!("{p}:b"))
        .arg("2")
        .query(&mut con)
        .unwrap();
    let many: Vec<Option<String>> = redis::cmd("MGET")
        .arg(format!("{p}:a"))
        .arg(format!("{p}:b"))
        .arg(format!("{p}:c"))
        .query(&mut con)
        .unwrap();
    assert_eq!(many, vec![Some("1".into()), Some("2".into()), None]);

    let n: i64 = redis::cmd("INCR")
        .arg(format!("{p}:a"))
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 2);
    let n: i64 = redis::cmd("INCRBY")
        .arg(format!("{p}:a"))
        .arg(40)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 42);
    let err = redis::cmd("INCR")
        .arg(format!("{p}:k"))
        .query::<i64>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string().contains("not an integer"),
        "INCR of a string: {err}"
    );

    let set: i64 = redis::cmd("EXPIRE")
        .arg(format!("{p}:k"))
        .arg(100)
        .query(&mut con)
        .unwrap();
    assert_eq!(set, 1);
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{p}:k"))
        .query(&mut con)
        .unwrap();
    assert!((99..=100).contains(&ttl), "TTL {ttl}");
    let ok: String = redis::cmd("SET")
        .arg(format!("{p}:ex"))
        .arg("v")
        .arg("PX")
        .arg(100_000)
        .query(&mut con)
        .unwrap();
    assert_eq!(ok, "OK");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{p}:ex"))
        .query(&mut con)
        .unwrap();
    assert!((98_000..=100_000).contains(&pttl), "PTTL {pttl}");

    let (a, b, c, d): (String, i64, Option<String>, i64) = redis::pipe()
        .cmd("SET")
        .arg(format!("{p}:pipe"))
        .arg("x")
        .cmd("INCR")
        .arg(format!("{p}:pipe-n"))
        .cmd("GET")
        .arg(format!("{p}:pipe"))
        .cmd("DEL")
        .arg(format!("{p}:pipe"))
        .arg(format!("{p}:pipe-n"))
        .query(&mut con)
        .unwrap();
    assert_eq!((a.as_str(), b, c.as_deref(), d), ("OK", 1, Some("x"), 2));

    // A pipeline of 500 through the client library.
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("SET").arg(format!("{p}:many:{i}")).arg(i).ignore();
    }
    pipe.cmd("DBSIZE");
    let (size,): (i64,) = pipe.query(&mut con).unwrap();
    assert!(size >= 500, "DBSIZE {size}");

    if resp3 {
        let hello: Value = redis::cmd("HELLO").arg(3).query(&mut con).unwrap();
        assert!(
            matches!(hello, Value::Map(_)),
            "HELLO 3 over RESP3: {hello:?}"
        );
        let config: Value = redis::cmd("CONFIG")
            .arg("GET")
            .arg("timeout")
            .query(&mut con)
            .unwrap();
        assert!(
            matches!(config, Value::Map(_)),
            "CONFIG GET over RESP3: {config:?}"
        );
    }
}

#[test]
fn the_redis_crate_works_over_resp2() {
    let ringcache = Ringcache::start(&[]);
    sync_round_trip(ringcache.port(), false);
}

#[test]
fn the_redis_crate_works_over_resp3() {
    let ringcache = Ringcache::start(&[]);
    sync_round_trip(ringcache.port(), true);
}

async fn async_round_trip(port: u16, resp3: bool) {
    let client = redis::Client::open(url(port, resp3)).expect("client");
    let mut con = tokio::time::timeout(
        Duration::from_secs(10),
        client.get_multiplexed_async_connection(),
    )
    .await
    .expect("connect timed out")
    .expect("connect");
    let p = if resp3 { "a3" } else { "a2" };
    let ok: String = redis::cmd("SET")
        .arg(format!("{p}:k"))
        .arg("v")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(ok, "OK");
    let v: String = redis::cmd("GET")
        .arg(format!("{p}:k"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(v, "v");
    // Concurrent requests on one multiplexed connection.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let mut con = con.clone();
        let key = format!("{p}:counter");
        tasks.push(tokio::spawn(async move {
            let _: i64 = redis::cmd("INCR")
                .arg(&key)
                .query_async(&mut con)
                .await
                .unwrap();
            i
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n: i64 = redis::cmd("GET")
        .arg(format!("{p}:counter"))
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 200);
    let (a, b): (Vec<Option<String>>, i64) = redis::pipe()
        .cmd("MGET")
        .arg(format!("{p}:k"))
        .arg(format!("{p}:missing"))
        .cmd("EXPIRE")
        .arg(format!("{p}:k"))
        .arg(60)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(a, vec![Some("v".to_string()), None]);
    assert_eq!(b, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_redis_crate_works_over_resp2_and_resp3() {
    let ringcache = Ringcache::start(&[]);
    async_round_trip(ringcache.port(), false).await;
    async_round_trip(ringcache.port(), true).await;
}

#[test]
fn redis_cli_commands_work() {
    let ringcache = Ringcache::start(&[]);
    let port = ringcache.port();
    assert_eq!(redis_cli_ok(port, &["PING"]), "PONG");
    assert_eq!(redis_cli_ok(port, &["SET", "cli:k", "hello world"]), "OK");
    assert_eq!(redis_cli_ok(port, &["GET", "cli:k"]), "hello world");
    assert_eq!(redis_cli_ok(port, &["INCR", "cli:n"]), "1");
    assert_eq!(redis_cli_ok(port, &["INCRBYFLOAT", "cli:n", "0.5"]), "1.5");
    assert_eq!(
        redis_cli_ok(port, &["MSET", "cli:a", "1", "cli:b", "2"]),
        "OK"
    );
    assert_eq!(
        redis_cli_ok(port, &["MGET", "cli:a", "cli:b", "cli:none"]),
        "1\n2\n"
    );
    assert_eq!(redis_cli_ok(port, &["EXPIRE", "cli:a", "100"]), "1");
    assert_eq!(redis_cli_ok(port, &["TTL", "cli:a"]), "100");
    assert_eq!(redis_cli_ok(port, &["TTL", "cli:none"]), "-2");
    assert_eq!(
        redis_cli_ok(port, &["EXISTS", "cli:a", "cli:b", "cli:none"]),
        "2"
    );
    assert_eq!(redis_cli_ok(port, &["DEL", "cli:b"]), "1");
    assert_eq!(redis_cli_ok(port, &["TYPE", "cli:a"]), "string");
    // Errors are printed, not fatal, and the exit status stays 0 (redis-cli's behaviour).
    let wrong = redis_cli(port, &["GET"]);
    let text = String::from_utf8_lossy(&wrong.stdout).to_string()
        + &String::from_utf8_lossy(&wrong.stderr);
    assert!(
        text.contains("ERR wrong number of arguments for 'get' command"),
        "redis-cli GET: {text}"
    );
    // RESP3 through redis-cli.
    assert_eq!(redis_cli_ok(port, &["-3", "GET", "cli:k"]), "hello world");
    let hello = redis_cli_ok(port, &["-3", "HELLO", "3"]);
    assert!(
        hello.contains("proto") && hello.contains('3'),
        "redis-cli -3 HELLO 3: {hello}"
    );
    // --scan drives SCAN with MATCH.
    let mut scanned: Vec<String> = redis_cli_ok(port, &["--scan", "--pattern", "cli:*"])
        .lines()
        .map(String::from)
        .collect();
    scanned.sort();
    assert_eq!(scanned, vec!["cli:a", "cli:k", "cli:n"]);
    // INFO is what redis-cli and monitoring tools read first.
    let info = redis_cli_ok(port, &["INFO"]);
    assert!(
        info.contains("# Server") && info.contains("redis_version:"),
        "INFO: {info}"
    );
    assert_eq!(redis_cli_ok(port, &["DBSIZE"]), "3");
}

#[test]
fn redis_cli_pipe_loads_a_hundred_thousand_keys() {
    const KEYS: usize = 100_000;
    let ringcache = Ringcache::start(&[]);
    let dir = TempDir::new("ringcache-pipe");
    let input = dir.path().join("load.resp");
    let mut data = Vec::with_capacity(KEYS * 48);
    for i in 0..KEYS {
        data.extend(common::encode_command(&[
            "SET",
            &format!("bulk:{i}"),
            &format!("value-{i}"),
        ]));
    }
    std::fs::write(&input, &data).expect("write pipe input");
    let out = redis_cli_stdin(ringcache.port(), &["--pipe"], &input);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("redis-cli --pipe: {stdout}{stderr}");
    assert!(
        out.status.success(),
        "redis-cli --pipe failed: {stdout}{stderr}"
    );
    assert!(
        stdout.contains(&format!("errors: 0, replies: {KEYS}")),
        "redis-cli --pipe summary: {stdout}{stderr}"
    );
    assert_eq!(
        redis_cli_ok(ringcache.port(), &["DBSIZE"]),
        KEYS.to_string()
    );
    let mut conn = ringcache.conn();
    for i in [0, 1, 4_242, 50_000, KEYS - 1] {
        assert_eq!(
            conn.cmd(&["GET", &format!("bulk:{i}")]),
            Val::Bulk(format!("value-{i}").into_bytes()),
            "bulk:{i}"
        );
    }
    assert_eq!(conn.cmd(&["GET", &format!("bulk:{KEYS}")]), Val::NullBulk);
}

#[test]
fn redis_benchmark_runs_without_errors() {
    let ringcache = Ringcache::start(&[]);
    let port = ringcache.port().to_string();
    let out = run_tool(
        "redis-benchmark",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "set,get,incr,mset,ping",
            "-n",
            "2000",
            "-c",
            "10",
            "-q",
        ],
        None,
        TOOL_TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("redis-benchmark stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        out.status.success(),
        "redis-benchmark exit status {}",
        out.status
    );
    // -q prints progress with \r; the final results are what follows the last \r of a line.
    let lines: Vec<&str> = stdout
        .split('\n')
        .map(|l| l.rsplit('\r').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    let bad: Vec<&str> = lines
        .iter()
        .copied()
        .chain(stderr.lines())
        .filter(|l| {
            let lower = l.to_lowercase();
            lower.contains("err") || lower.contains("warn") || lower.contains("could not")
        })
        .collect();
    assert!(bad.is_empty(), "redis-benchmark reported problems: {bad:?}");
    for test in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "MSET (10 keys)",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{test}: ")) && l.contains("requests per second")),
            "no result line for {test} in {lines:?}"
        );
    }
}

fn flat_text(v: &Val) -> String {
    v.to_string().to_uppercase()
}

#[test]
fn consistency_levels_are_accepted_per_request() {
    let ringcache = Ringcache::start(&[]);
    let mut conn = ringcache.conn();
    let mut problems = Vec::new();
    let mut check = |line: &str, ok: &dyn Fn(&Val) -> bool, want: &str| {
        let got = conn.cmd_line(line);
        if !ok(&got) {
            problems.push(format!("{line}: want {want}, got {got}"));
        }
    };
    let ok = |v: &Val| *v == Val::Simple(b"OK".to_vec());
    check("SET k v CONSISTENCY QUORUM", &ok, "+OK");
    check(
        "GET k CONSISTENCY one",
        &|v| *v == Val::Bulk(b"v".to_vec()),
        "\"v\"",
    );
    check(
        "GET k CONSISTENCY ONE",
        &|v| *v == Val::Bulk(b"v".to_vec()),
        "\"v\"",
    );
    check(
        "GET k CONSISTENCY ALL",
        &|v| *v == Val::Bulk(b"v".to_vec()),
        "\"v\"",
    );
    check(
        "GET k CONSISTENCY 1",
        &|v| *v == Val::Bulk(b"v".to_vec()),
        "\"v\"",
    );
    check(
        "GET k CONSISTENCY ANY",
        &|v| v.is_error() && v.text().unwrap_or_default().contains("writes only"),
        "an error containing \"writes only\"",
    );
    check(
        "GET k CONSISTENCY bogus",
        &|v| {
            let t = v.text().unwrap_or_default();
            v.is_error()
                && ["ONE", "TWO", "THREE", "QUORUM", "ALL"]
                    .iter()
                    .all(|l| t.contains(l))
        },
        "an error listing ONE, TWO, THREE, QUORUM, ALL",
    );
    check("GET k CONSISTENCY 0", &|v| v.is_error(), "an error");
    check("GET k CONSISTENCY", &|v| v.is_error(), "an error");
    check("GET k CONSISTENCY ONE extra", &|v| v.is_error(), "an error");
    check("SET k2 v2 EX 60 CONSISTENCY QUORUM", &ok, "+OK");
    check("SET k3 v3 CONSISTENCY ANY", &ok, "+OK");
    check(
        "SET k3 v3 CONSISTENCY TWO",
        &ok,
        "+OK (capped at N=1 on one node)",
    );
    check("INCR n CONSISTENCY ALL", &|v| *v == Val::Int(1), ":1");
    check("DEL k3 CONSISTENCY ONE", &|v| *v == Val::Int(1), ":1");
    check("GET k3 CONSISTENCY QUORUM", &|v| *v == Val::NullBulk, "$-1");
    check(
        "TTL k2 CONSISTENCY ONE",
        &|v| matches!(v, Val::Int(59..=60)),
        "about 60",
    );
    for p in &problems {
        eprintln!("CONSISTENCY MISMATCH {p}");
    }
    assert!(
        problems.is_empty(),
        "{} CONSISTENCY checks failed",
        problems.len()
    );
}

#[test]
fn the_consistency_command_shows_and_sets_per_connection_defaults() {
    let ringcache = Ringcache::start(&[]);
    let mut conn = ringcache.conn();
    let mut other = ringcache.conn();
    let mut problems = Vec::new();

    let shown = conn.cmd(&["CONSISTENCY"]);
    eprintln!("CONSISTENCY (defaults) -> {shown}");
    let t = flat_text(&shown);
    if !(t.contains("READ") && t.contains("WRITE") && t.contains("QUORUM")) {
        problems.push(format!(
            "CONSISTENCY defaults: want read/write QUORUM, got {shown}"
        ));
    }

    for (line, want_ok) in [
        ("CONSISTENCY ONE", true),
        ("CONSISTENCY READ TWO", true),
        ("CONSISTENCY WRITE ALL", true),
        ("CONSISTENCY READ ANY", false),
        ("CONSISTENCY bogus", false),
        ("CONSISTENCY READ", false),
        ("CONSISTENCY READ ONE extra", false),
    ] {
        let got = conn.cmd_line(line);
        if got.is_error() == want_ok {
            problems.push(format!(
                "{line}: want {}, got {got}",
                if want_ok { "+OK" } else { "an error" }
            ));
        }
        if line == "CONSISTENCY READ ANY" && !got.text().unwrap_or_default().contains("writes only")
        {
            problems.push(format!(
                "{line}: the error should say \"writes only\", got {got}"
            ));
        }
    }
    let shown = conn.cmd(&["CONSISTENCY"]);
    eprintln!("CONSISTENCY (after ONE, READ TWO, WRITE ALL) -> {shown}");
    let pairs: BTreeMap<String, String> = shown
        .pairs()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (flat_text(&k), flat_text(&v)))
        .collect();
    let read = pairs
        .iter()
        .find(|(k, _)| k.contains("READ"))
        .map(|(_, v)| v.clone());
    let write = pairs
        .iter()
        .find(|(k, _)| k.contains("WRITE"))
        .map(|(_, v)| v.clone());
    if !read.as_deref().is_some_and(|r| r.contains("TWO"))
        || !write.as_deref().is_some_and(|w| w.contains("ALL"))
    {
        problems.push(format!(
            "CONSISTENCY after changes: want read TWO, write ALL; got {shown}"
        ));
    }
    let got = conn.cmd(&["CONSISTENCY", "WRITE", "ANY"]);
    if got.is_error() {
        problems.push(format!("CONSISTENCY WRITE ANY: want +OK, got {got}"));
    }
    // The defaults apply to requests without a level.
    for (cmd, want) in [
        (vec!["SET", "d", "v"], Val::Simple(b"OK".to_vec())),
        (vec!["GET", "d"], Val::Bulk(b"v".to_vec())),
    ] {
        let got = conn.cmd(&cmd);
        if got != want {
            problems.push(format!(
                "{cmd:?} under per-connection defaults: want {want}, got {got}"
            ));
        }
    }
    // Another connection still has the server defaults.
    let shown_other = other.cmd(&["CONSISTENCY"]);
    let t = flat_text(&shown_other);
    if !(t.contains("QUORUM") && !t.contains("TWO") && !t.contains("ANY")) {
        problems.push(format!(
            "another connection's CONSISTENCY: want QUORUM/QUORUM, got {shown_other}"
        ));
    }
    // Over RESP3 the reply is still readable the same way.
    let mut r3 = RespConn::connect(ringcache.port());
    r3.hello3();
    let shown3 = r3.cmd(&["CONSISTENCY"]);
    eprintln!("CONSISTENCY over RESP3 -> {shown3}");
    let t = flat_text(&shown3);
    if !(t.contains("READ") && t.contains("WRITE") && t.contains("QUORUM")) {
        problems.push(format!("CONSISTENCY over RESP3: got {shown3}"));
    }
    for p in &problems {
        eprintln!("CONSISTENCY MISMATCH {p}");
    }
    assert!(
        problems.is_empty(),
        "{} CONSISTENCY command checks failed",
        problems.len()
    );
}

/// Every sample line (not `#`) whose name contains "command", as series → value.
fn command_series(metrics: &str) -> BTreeMap<String, f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && l.to_lowercase().contains("command"))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn the_metrics_endpoint_counts_commands() {
    let ringcache = Ringcache::start(&[]);
    let mut conn = ringcache.conn();
    conn.cmd(&["PING"]);
    let before_text = ringcache.metrics();
    assert!(
        before_text.starts_with("HTTP/1."),
        "not an HTTP response: {before_text:.200}"
    );
    assert!(
        before_text.lines().next().unwrap_or("").contains(" 200"),
        "status: {before_text:.200}"
    );
    let before = command_series(&before_text);
    for i in 0..50 {
        conn.cmd(&["SET", &format!("m:{i}"), "v"]);
        conn.cmd(&["GET", &format!("m:{i}")]);
    }
    // Counters are published to the exporter once a second: poll, bounded.
    let grew = |after: &BTreeMap<String, f64>| {
        after
            .iter()
            .any(|(s, v)| *v >= before.get(s).copied().unwrap_or(0.0) + 50.0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (after_text, after) = loop {
        let text = ringcache.metrics();
        let series = command_series(&text);
        if grew(&series) || std::time::Instant::now() > deadline {
            break (text, series);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut report = String::new();
    for (series, value) in &after {
        let old = before.get(series).copied().unwrap_or(0.0);
        writeln!(report, "  {series} {old} -> {value}").unwrap();
    }
    eprintln!("metric series containing \"command\":\n{report}");
    let names: Vec<&str> = after_text
        .lines()
        .filter(|l| l.starts_with("# TYPE"))
        .collect();
    eprintln!("all metric families:\n  {}", names.join("\n  "));
    assert!(
        grew(&after),
        "no series containing \"command\" grew by 50 after 50 SETs and 50 GETs:\n{report}"
    );
}

#[test]
fn metrics_port_zero_disables_the_endpoint_and_the_server_still_serves() {
    let ringcache = Ringcache::start(&["--metrics-port", "0"]);
    let mut conn = ringcache.conn();
    assert_eq!(conn.cmd(&["PING"]), Val::Simple(b"PONG".to_vec()));
    let log = ringcache.process.log();
    assert!(!log.to_lowercase().contains("panic"), "log: {log}");
}
