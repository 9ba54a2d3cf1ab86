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

/// The `# Title` lines of an `INFO` reply, in order.
fn section_titles(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# "))
        .map(str::to_string)
        .collect()
}

/// The `INFO` text for `sections`.
fn info(conn: &mut RespConn, sections: &[&str]) -> String {
    let mut words = vec!["INFO"];
    words.extend(sections);
    let reply = conn.cmd(&words);
    reply
        .text()
        .unwrap_or_else(|| panic!("INFO {sections:?}: {reply}"))
}

/// The `name:value` lines of one section of an `INFO` text.
fn fields(text: &str, title: &str) -> Vec<(String, String)> {
    text.split("\r\n\r\n")
        .find(|section| section.starts_with(&format!("# {title}\r\n")))
        .unwrap_or_else(|| panic!("no # {title} in {text}"))
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// One `cmdstat_` line's figures by name.
fn figures(value: &str) -> BTreeMap<String, String> {
    value
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn info_prints_redis_s_sections_in_its_order_for_every_selection() {
    let (_redis, _ringcache, mut redis, mut ours) = side_by_side(2, &[]);
    let selections: [&[&str]; 10] = [
        &[],
        &["default"],
        &["all"],
        &["everything"],
        &["cpu", "all"],
        &["commandstats", "errorstats"],
        &["keyspace", "server"],
        &["latencystats"],
        &["REPLICATION", "Cpu", "modules"],
        &["default", "commandstats"],
    ];
    for selection in selections {
        assert_eq!(
            section_titles(&info(&mut ours, selection)),
            section_titles(&info(&mut redis, selection)),
            "INFO {selection:?}"
        );
    }
    for title in ["Replication", "CPU"] {
        let names = |text: &str| -> Vec<String> {
            fields(text, title).into_iter().map(|(n, _)| n).collect()
        };
        let section = title.to_ascii_lowercase();
        assert_eq!(
            names(&info(&mut ours, &[&section])),
            names(&info(&mut redis, &[&section])),
            "INFO {section}"
        );
    }
}

#[test]
fn commandstats_errorstats_and_latencystats_count_as_redis_does() {
    let (_redis, _ringcache, mut redis, mut ours) = side_by_side(2, &[]);
    let requests: &[&[&str]] = &[
        &["SET", "k", "v"],
        &["GET", "k"],
        &["GET", "k"],
        // Rejected before running: a wrong argument count.
        &["GET"],
        &["SET"],
        // Ran and failed: a syntax error, a wrong type.
        &["SET", "k", "v", "BAD"],
        &["LPUSH", "k", "x"],
        // Unknown: only the error is counted.
        &["OBJECT", "nosuchsubcommand"],
        &["NOSUCHCOMMAND"],
        // A refusal while a transaction is queued is a rejected call of the command.
        &["MULTI"],
        &["GET"],
        &["DISCARD"],
    ];
    for request in requests {
        redis.cmd(request);
        ours.cmd(request);
    }
    let theirs = info(&mut redis, &["commandstats", "errorstats", "latencystats"]);
    let mine = info(&mut ours, &["commandstats", "errorstats", "latencystats"]);
    let by_name = |text: &str, title: &str| -> BTreeMap<String, String> {
        fields(text, title).into_iter().collect()
    };
    let (their_stats, my_stats) = (
        by_name(&theirs, "Commandstats"),
        by_name(&mine, "Commandstats"),
    );
    for command in ["set", "get", "lpush", "multi", "discard"] {
        let name = format!("cmdstat_{command}");
        let (Some(theirs), Some(mine)) = (their_stats.get(&name), my_stats.get(&name)) else {
            panic!("{name}: redis-server {their_stats:?}, ringcache {my_stats:?}");
        };
        let (theirs, mine) = (figures(theirs), figures(mine));
        assert_eq!(
            mine.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{name}"
        );
        for figure in ["calls", "rejected_calls", "failed_calls"] {
            assert_eq!(mine[figure], theirs[figure], "{name} {figure}");
        }
    }
    assert!(!my_stats.contains_key("cmdstat_object"), "{my_stats:?}");
    assert_eq!(
        fields(&mine, "Errorstats"),
        fields(&theirs, "Errorstats"),
        "INFO errorstats"
    );
    let latency = by_name(&mine, "Latencystats");
    let their_latency = by_name(&theirs, "Latencystats");
    assert_eq!(
        latency.keys().collect::<Vec<_>>(),
        their_latency.keys().collect::<Vec<_>>(),
        "the commands with a latency line"
    );
    let percentiles = |value: &str| figures(value).into_keys().collect::<Vec<_>>();
    assert_eq!(
        percentiles(&latency["latency_percentiles_usec_get"]),
        percentiles(&their_latency["latency_percentiles_usec_get"])
    );
}
