//! `CONFIG GET` and `INFO` against a real redis-server: the names a client may ask for and
//! the sections and fields tools parse. Values differ (a process id, a counter), so these
//! compare names, order and, where Redis's default is all ringcache can show, values.

mod common;

use std::collections::BTreeMap;

use common::{RespConn, Val, side_by_side};

/// Parameters whose value is ringcache's own rather than Redis's default, each with why.
/// Everything else `CONFIG GET *` lists must answer exactly what a fresh redis-server does.
const REAL_VALUES: &[(&str, &str)] = &[
    ("port", "each server has its own"),
    ("dir", "each server has its own"),
    ("databases", "ringcache has one"),
    ("bind", "ringcache listens on one address"),
    ("client-query-buffer-limit", "ringcache's default is 64 MiB"),
    ("appendonly", "ringcache's log engine is on by default"),
];

/// Every `name value` pair of `CONFIG GET *`.
fn config_all(conn: &mut RespConn) -> BTreeMap<String, String> {
    let reply = conn.cmd(&["CONFIG", "GET", "*"]);
    let pairs = reply
        .pairs()
        .unwrap_or_else(|| panic!("CONFIG GET *: {reply}"));
    pairs
        .into_iter()
        .map(|(name, value)| {
            let text = |v: &Val| v.text().unwrap_or_else(|| panic!("not a string: {v}"));
            (text(&name), text(&value))
        })
        .collect()
}

#[test]
fn config_get_knows_every_redis_parameter_with_its_default() {
    let (_redis, _ringcache, mut redis, mut ours) = side_by_side(2, &[]);
    let theirs = config_all(&mut redis);
    let ours = config_all(&mut ours);
    assert!(theirs.len() > 150, "redis-server listed {}", theirs.len());
    let mut wrong = Vec::new();
    for (name, value) in &theirs {
        match ours.get(name) {
            None => wrong.push(format!("{name}: missing (redis-server: {value:?})")),
            Some(mine) if mine != value && !REAL_VALUES.iter().any(|(n, _)| n == name) => {
                wrong.push(format!("{name}: {mine:?}, redis-server {value:?}"))
            }
            Some(_) => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "{} differences:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
