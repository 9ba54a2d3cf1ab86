//! Differential test of the command table: for every row of `ringcache_resp::cmd::TABLE`,
//! `COMMAND INFO <name>` on a fresh redis-server and a fresh ringcache must agree on arity,
//! flags (the same names in the same order), first key, last key and step, over RESP2 and
//! again over RESP3. Client libraries route and validate by these fields, so a wrong row
//! would mislead them where the parser itself is right.
//!
//! Not compared: `COMMAND COUNT` (Redis has about 240 commands, ringcache about 160), ACL
//! categories, tips, key specifications and subcommands (ringcache leaves them empty, see
//! docs/redis-compatibility.md). Every mismatch is listed before the test fails.

mod common;

use common::{RespConn, Val, side_by_side};
use ringcache_resp::cmd::TABLE;

/// Commands that exist only in ringcache, so Redis answers `COMMAND INFO` with a nil entry:
/// `CONSISTENCY` (the connection's default levels) and `RING` (the cluster's members, ring
/// and repair). They are skipped by name; the test checks that Redis indeed lacks them.
const RINGCACHE_ONLY: &[&str] = &["consistency", "ring"];

/// The fields compared, from one `COMMAND INFO` entry.
#[derive(Debug, PartialEq)]
struct Info {
    arity: i64,
    flags: Vec<String>,
    first_key: i64,
    last_key: i64,
    step: i64,
}

/// The single entry of `COMMAND INFO name`, or `None` when the server does not know it.
fn command_info(conn: &mut RespConn, name: &str) -> Option<Info> {
    let reply = conn.cmd(&["COMMAND", "INFO", name]);
    let entries = reply
        .items()
        .unwrap_or_else(|| panic!("COMMAND INFO {name}: not an array: {reply}"));
    assert_eq!(entries.len(), 1, "COMMAND INFO {name}: {reply}");
    let fields = match &entries[0] {
        Val::NullBulk | Val::NullArray | Val::Null => return None,
        entry => entry
            .items()
            .unwrap_or_else(|| panic!("COMMAND INFO {name}: entry {entry}")),
    };
    let int = |i: usize| match fields.get(i) {
        Some(Val::Int(n)) => *n,
        other => panic!("COMMAND INFO {name}: field {i} is {other:?}"),
    };
    assert_eq!(
        fields[0].text().as_deref(),
        Some(name),
        "COMMAND INFO {name}"
    );
    let flags = fields[2]
        .items()
        .unwrap_or_else(|| panic!("COMMAND INFO {name}: flags {}", fields[2]))
        .iter()
        .map(|flag| flag.text().expect("a flag is a string"))
        .collect();
    Some(Info {
        arity: int(1),
        flags,
        first_key: int(3),
        last_key: int(4),
        step: int(5),
    })
}

fn compare_every_row(proto: u8) {
    let (_redis, _ringcache, mut a, mut b) = side_by_side(proto, &[]);
    let mut mismatches = Vec::new();
    for spec in TABLE {
        let ours = command_info(&mut b, spec.name);
        let theirs = command_info(&mut a, spec.name);
        if RINGCACHE_ONLY.contains(&spec.name) {
            assert!(
                theirs.is_none(),
                "{} is in Redis now: compare it",
                spec.name
            );
            assert!(ours.is_some(), "{} has no COMMAND INFO entry", spec.name);
            continue;
        }
        if ours != theirs {
            mismatches.push(format!(
                "{}:\n    redis     {theirs:?}\n    ringcache {ours:?}",
                spec.name
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "RESP{proto}: COMMAND INFO differs from redis-server for {} of {} commands:\n{}",
        mismatches.len(),
        TABLE.len(),
        mismatches.join("\n")
    );
    // The table is what ringcache lists, in its order.
    let listed = b.cmd(&["COMMAND", "LIST"]);
    let names: Vec<String> = listed
        .items()
        .expect("COMMAND LIST is an array")
        .iter()
        .map(|name| name.text().expect("a name is a string"))
        .collect();
    let table: Vec<&str> = TABLE.iter().map(|spec| spec.name).collect();
    assert_eq!(names, table);
}

#[test]
fn command_info_agrees_with_redis_for_every_command_over_resp2() {
    compare_every_row(2);
}

#[test]
fn command_info_agrees_with_redis_for_every_command_over_resp3() {
    compare_every_row(3);
}
