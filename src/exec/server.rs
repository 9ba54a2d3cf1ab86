//! Server commands: COMMAND, INFO, CONFIG, DBSIZE, FLUSHALL/FLUSHDB, TIME, SHUTDOWN.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ringcache_resp::cmd::{Command, CommandInfoCommand, Spec, TABLE, lookup};
use ringcache_resp::glob::glob_match;
use ringcache_resp::{CommandError, Level, Reply};

use super::connection::REDIS_COMPATIBLE_VERSION;
use super::{After, Outcome, Session};
use crate::config::{
    AppendFsync, BYTE_LIMIT_MAX, BYTE_LIMIT_MIN, Config, MAXMEMORY_SAMPLES_MAX, StorageEngine,
    parse_memory,
};
use crate::node::Node;
use crate::stats::ERROR_KINDS;

/// Executes a server command.
pub fn execute(node: &Node, session: &mut Session, command: Command, _now_ms: u64) -> Outcome {
    Ok(match command {
        Command::CommandInfo(info) => execute_command(info),
        Command::Info(sections) => Reply::Verbatim(Bytes::from(info(node, &sections))),
        Command::ConfigGet(patterns) => config_get(node, &patterns),
        Command::ConfigSet(pairs) => config_set(node, &pairs),
        Command::ConfigResetStat => {
            node.stats.reset();
            Reply::Ok
        }
        Command::DbSize => Reply::Integer(node.store.stats().keys as i64),
        Command::Flush(_) => {
            node.store.clear()?;
            Reply::Ok
        }
        Command::Time => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Reply::Array(vec![
                Reply::Bulk(Bytes::from(now.as_secs().to_string())),
                Reply::Bulk(Bytes::from(now.subsec_micros().to_string())),
            ])
        }
        Command::Ring(sub) => super::ring::execute_single(node, sub),
        Command::Shutdown { abort: true } => Reply::error(CommandError::NoShutdownInProgress),
        Command::Shutdown { abort: false } => {
            tracing::info!(client = session.client.id, "SHUTDOWN asked by a client");
            node.begin_shutdown();
            session.after = After::Shutdown;
            Reply::Ok
        }
        _ => super::misrouted("server"),
    })
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

/// One command's `COMMAND INFO` entry, from its table row. ACL categories, tips, key
/// specifications and subcommands are left empty.
fn command_info(spec: &Spec) -> Reply {
    Reply::Array(vec![
        bulk(spec.name),
        Reply::Integer(i64::from(spec.arity)),
        Reply::Set(spec.flags.names().map(Reply::Simple).collect()),
        Reply::Integer(i64::from(spec.keys.first)),
        Reply::Integer(i64::from(spec.keys.last)),
        Reply::Integer(i64::from(spec.keys.step)),
        Reply::Set(vec![]),
        Reply::Set(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

/// One command's `COMMAND DOCS` entry, from its table row.
fn command_docs(spec: &Spec) -> Reply {
    Reply::Map(vec![
        (bulk("summary"), bulk(spec.summary)),
        (bulk("since"), bulk(spec.since)),
        (bulk("group"), bulk(spec.family.group())),
    ])
}

fn find_spec(name: &[u8]) -> Option<&'static Spec> {
    lookup(name).map(|entry| entry.spec)
}

fn execute_command(info: CommandInfoCommand) -> Reply {
    match info {
        CommandInfoCommand::All => Reply::Array(TABLE.iter().map(command_info).collect()),
        CommandInfoCommand::Count => Reply::Integer(TABLE.len() as i64),
        CommandInfoCommand::List => Reply::Array(TABLE.iter().map(|c| bulk(c.name)).collect()),
        CommandInfoCommand::Info(names) if names.is_empty() => {
            Reply::Array(TABLE.iter().map(command_info).collect())
        }
        CommandInfoCommand::Info(names) => Reply::Array(
            names
                .iter()
                .map(|n| find_spec(n).map_or(Reply::NilArray, command_info))
                .collect(),
        ),
        CommandInfoCommand::Docs(names) => {
            let specs: Vec<&Spec> = if names.is_empty() {
                TABLE.iter().collect()
            } else {
                names.iter().filter_map(|n| find_spec(n)).collect()
            };
            Reply::Map(
                specs
                    .into_iter()
                    .map(|s| (bulk(s.name), command_docs(s)))
                    .collect(),
            )
        }
        CommandInfoCommand::Help => Reply::Array(
            [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all commands.",
                "COUNT",
                "    Return the total number of commands in this server.",
                "LIST",
                "    Return a list of all commands in this server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple commands.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple commands.",
                "HELP",
                "    Print this help.",
            ]
            .into_iter()
            .map(Reply::Simple)
            .collect(),
        ),
    }
}

/// Sections `INFO` prints with no argument or `default`.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Writes one `INFO` section's lines.
type InfoSection = fn(&Node, &mut String);

/// The `INFO` text for the requested sections.
pub fn info(node: &Node, requested: &[Bytes]) -> String {
    let requested: Vec<String> = requested
        .iter()
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    let everything = requested.iter().any(|s| s == "all" || s == "everything");
    let wanted = |section: &str| {
        everything
            || requested.iter().any(|s| s == section)
            || ((requested.is_empty() || requested.iter().any(|s| s == "default"))
                && DEFAULT_SECTIONS.contains(&section))
    };
    let mut out = String::new();
    let sections: [(&str, InfoSection); 11] = [
        ("server", info_server),
        ("clients", info_clients),
        ("memory", info_memory),
        ("persistence", info_persistence),
        ("stats", info_stats),
        ("replication", info_replication),
        ("cpu", info_cpu),
        ("commandstats", info_commandstats),
        ("errorstats", info_errorstats),
        ("cluster", info_cluster),
        ("keyspace", info_keyspace),
    ];
    for (name, write) in sections {
        if wanted(name) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            let mut title = name.to_string();
            title[..1].make_ascii_uppercase();
            let title = match name {
                "cpu" => "CPU".to_string(),
                "commandstats" => "Commandstats".to_string(),
                _ => title,
            };
            let _ = write!(out, "# {title}\r\n");
            write(node, &mut out);
        }
    }
    out
}

macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
        $out.push_str("\r\n");
    }};
}

fn info_server(node: &Node, out: &mut String) {
    let config = node.config.read();
    let uptime = node.stats.started.elapsed().as_secs();
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    line!(out, "redis_version:{REDIS_COMPATIBLE_VERSION}");
    line!(out, "ringcache_version:{}", env!("CARGO_PKG_VERSION"));
    line!(out, "redis_mode:standalone");
    line!(
        out,
        "os:{} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    line!(out, "arch_bits:{}", usize::BITS);
    line!(out, "process_id:{}", std::process::id());
    line!(out, "run_id:{}", node.run_id);
    line!(out, "tcp_port:{}", config.port);
    line!(out, "server_time_usec:{now_us}");
    line!(out, "uptime_in_seconds:{uptime}");
    line!(out, "uptime_in_days:{}", uptime / 86_400);
    line!(
        out,
        "executable:{}",
        std::env::current_exe().unwrap_or_default().display()
    );
}

fn info_clients(node: &Node, out: &mut String) {
    line!(out, "connected_clients:{}", node.clients.connected());
    line!(out, "maxclients:{}", node.config.read().maxclients);
    line!(out, "blocked_clients:0");
}

/// Resident set size from /proc, 0 where it cannot be read.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2}G", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.2}M", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.2}K", b as f64 / 1024.0),
        b => format!("{b}B"),
    }
}

fn info_memory(node: &Node, out: &mut String) {
    let used = node.store.stats().used_bytes as u64;
    let rss = rss_bytes();
    line!(out, "used_memory:{used}");
    line!(out, "used_memory_human:{}", human_bytes(used));
    line!(out, "used_memory_rss:{rss}");
    line!(out, "used_memory_rss_human:{}", human_bytes(rss));
    let (maxmemory, policy) = {
        let config = node.config.read();
        (config.maxmemory_bytes, config.maxmemory_policy)
    };
    line!(out, "maxmemory:{maxmemory}");
    line!(out, "maxmemory_human:{}", human_bytes(maxmemory));
    line!(out, "maxmemory_policy:{policy}");
    line!(out, "mem_allocator:libc");
    line!(out, "storage_engine:{}", node.config.read().storage);
}

fn info_persistence(node: &Node, out: &mut String) {
    let config = node.config.read();
    line!(out, "loading:0");
    line!(out, "rdb_changes_since_last_save:0");
    // The log engine is an append-only log, so it reports as Redis's AOF does.
    line!(
        out,
        "aof_enabled:{}",
        u8::from(config.storage == StorageEngine::Log)
    );
    line!(out, "appendfsync:{}", config.appendfsync);
    for (name, value) in node.store.engine_stats() {
        line!(out, "{}_{name}:{value}", config.storage);
    }
}

fn info_stats(node: &Node, out: &mut String) {
    let s = &node.stats;
    let errors: u64 = s.errors.iter().map(|e| e.load(Relaxed)).sum();
    line!(
        out,
        "total_connections_received:{}",
        s.connections_received.load(Relaxed)
    );
    line!(
        out,
        "total_commands_processed:{}",
        s.commands_processed.load(Relaxed)
    );
    line!(
        out,
        "total_net_input_bytes:{}",
        s.net_input_bytes.load(Relaxed)
    );
    line!(
        out,
        "total_net_output_bytes:{}",
        s.net_output_bytes.load(Relaxed)
    );
    line!(
        out,
        "rejected_connections:{}",
        s.connections_rejected.load(Relaxed)
    );
    line!(out, "expired_keys:{}", node.store.stats().expired);
    line!(out, "evicted_keys:{}", s.evicted_keys.load(Relaxed));
    line!(out, "keyspace_hits:{}", s.keyspace_hits.load(Relaxed));
    line!(out, "keyspace_misses:{}", s.keyspace_misses.load(Relaxed));
    line!(out, "total_error_replies:{errors}");
    line!(out, "protocol_errors:{}", s.protocol_errors.load(Relaxed));
}

fn info_replication(_node: &Node, out: &mut String) {
    line!(out, "role:master");
    line!(out, "connected_slaves:0");
}

/// CPU seconds (user, system) of this process from /proc.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    const TICKS_PER_SECOND: f64 = 100.0;
    (ticks(11) / TICKS_PER_SECOND, ticks(12) / TICKS_PER_SECOND)
}

fn info_cpu(_node: &Node, out: &mut String) {
    let (user, sys) = cpu_seconds();
    line!(out, "used_cpu_sys:{sys:.6}");
    line!(out, "used_cpu_user:{user:.6}");
}

fn info_commandstats(node: &Node, out: &mut String) {
    for (spec, stats) in TABLE.iter().zip(node.stats.commands.iter()) {
        let calls = stats.calls.load(Relaxed);
        if calls == 0 {
            continue;
        }
        let usec = stats.usec.load(Relaxed);
        line!(
            out,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={:.2},rejected_calls=0,\
             failed_calls={}",
            spec.name,
            usec as f64 / calls as f64,
            stats.failed.load(Relaxed)
        );
    }
}

fn info_errorstats(node: &Node, out: &mut String) {
    for (kind, count) in ERROR_KINDS.iter().zip(node.stats.errors.iter()) {
        let count = count.load(Relaxed);
        if count > 0 {
            line!(out, "errorstat_{kind}:count={count}");
        }
    }
}

fn info_cluster(node: &Node, out: &mut String) {
    out.push_str(&super::ring::info_lines(node));
}

fn info_keyspace(node: &Node, out: &mut String) {
    let stats = node.store.stats();
    if stats.keys > 0 {
        line!(
            out,
            "db0:keys={},expires={},avg_ttl=0",
            stats.keys,
            stats.keys_with_expiry
        );
    }
}

/// `appendonly` as Redis spells it: the log engine is an append-only log.
fn appendonly(config: &Config) -> &'static str {
    if config.storage == StorageEngine::Log {
        "yes"
    } else {
        "no"
    }
}

/// Changes one parameter on a copy of the config, or says why the value is refused.
type SetParameter = fn(&mut Config, &str) -> Result<(), String>;

/// A parameter that `CONFIG GET` shows and `CONFIG SET` may change.
struct Parameter {
    name: &'static str,
    get: fn(&Config) -> String,
    /// `None` when the parameter cannot be changed at run time.
    set: Option<SetParameter>,
}

fn parse_integer<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())
}

fn parse_config_level(value: &str, allow_any: bool) -> Result<Level, String> {
    let level = Level::parse(value.as_bytes()).map_err(|e| e.to_string())?;
    if level == Level::Any && !allow_any {
        return Err("ANY is for writes only".into());
    }
    Ok(level)
}

const PARAMETERS: &[Parameter] = &[
    Parameter {
        name: "bind",
        get: |c| c.bind.to_string(),
        set: None,
    },
    Parameter {
        name: "port",
        get: |c| c.port.to_string(),
        set: None,
    },
    Parameter {
        name: "dir",
        get: |c| {
            std::fs::canonicalize(&c.data_dir)
                .unwrap_or(c.data_dir.clone())
                .display()
                .to_string()
        },
        set: None,
    },
    Parameter {
        name: "databases",
        get: |_| "1".into(),
        set: None,
    },
    Parameter {
        name: "requirepass",
        get: |c| c.requirepass.clone().unwrap_or_default(),
        set: Some(|c, v| {
            c.requirepass = Some(v.to_string()).filter(|p| !p.is_empty());
            Ok(())
        }),
    },
    Parameter {
        name: "maxclients",
        get: |c| c.maxclients.to_string(),
        set: Some(|c, v| {
            c.maxclients = parse_integer::<u32>(v)?.max(1);
            Ok(())
        }),
    },
    Parameter {
        name: "timeout",
        get: |c| c.timeout_s.to_string(),
        set: Some(|c, v| {
            let timeout = parse_integer::<u64>(v)?;
            if timeout > i32::MAX as u64 {
                return Err("argument must be between 0 and 2147483647 inclusive".into());
            }
            c.timeout_s = timeout;
            Ok(())
        }),
    },
    Parameter {
        name: "proto-max-bulk-len",
        get: |c| c.proto_max_bulk_len.to_string(),
        set: Some(|c, v| {
            let bytes = parse_memory(v)?;
            if !(BYTE_LIMIT_MIN..=BYTE_LIMIT_MAX).contains(&bytes) {
                return Err(
                    "argument must be between 1048576 and 9223372036854775807 inclusive".into(),
                );
            }
            c.proto_max_bulk_len = bytes;
            Ok(())
        }),
    },
    Parameter {
        name: "client-query-buffer-limit",
        get: |c| c.query_buffer_bytes_max.to_string(),
        set: Some(|c, v| {
            let bytes = parse_memory(v)?;
            if bytes < BYTE_LIMIT_MIN {
                return Err("argument must be at least 1048576".into());
            }
            c.query_buffer_bytes_max = bytes;
            Ok(())
        }),
    },
    Parameter {
        name: "maxmemory",
        get: |c| c.maxmemory_bytes.to_string(),
        set: Some(|c, v| {
            c.maxmemory_bytes = parse_memory(v)?;
            Ok(())
        }),
    },
    Parameter {
        name: "maxmemory-policy",
        get: |c| c.maxmemory_policy.to_string(),
        set: Some(|c, v| {
            c.maxmemory_policy = v.parse()?;
            Ok(())
        }),
    },
    Parameter {
        name: "maxmemory-samples",
        get: |c| c.maxmemory_samples.to_string(),
        set: Some(|c, v| {
            let samples = parse_integer::<i64>(v)?;
            match u32::try_from(samples) {
                Ok(n) if (1..=MAXMEMORY_SAMPLES_MAX).contains(&n) => {
                    c.maxmemory_samples = n;
                    Ok(())
                }
                _ => Err("argument must be between 1 and 2147483647 inclusive".into()),
            }
        }),
    },
    Parameter {
        name: "storage",
        get: |c| c.storage.to_string(),
        set: None,
    },
    Parameter {
        name: "segment-bytes",
        get: |c| c.segment_bytes.to_string(),
        set: None,
    },
    Parameter {
        name: "appendfsync",
        get: |c| c.appendfsync.to_string(),
        set: Some(|c, v| {
            c.appendfsync = AppendFsync::parse(v)?;
            Ok(())
        }),
    },
    Parameter {
        name: "save",
        get: |_| String::new(),
        set: Some(|_, v| match v.is_empty() {
            true => Ok(()),
            false => Err("ringcache takes no RDB snapshots".into()),
        }),
    },
    Parameter {
        name: "appendonly",
        get: |c| appendonly(c).into(),
        set: Some(|c, v| match v.eq_ignore_ascii_case(appendonly(c)) {
            true => Ok(()),
            false => Err("the engine is chosen at start with --storage (log or memory)".into()),
        }),
    },
    Parameter {
        name: "read-consistency",
        get: |c| c.read_level.to_string(),
        set: Some(|c, v| {
            c.read_level = parse_config_level(v, false)?;
            Ok(())
        }),
    },
    Parameter {
        name: "write-consistency",
        get: |c| c.write_level.to_string(),
        set: Some(|c, v| {
            c.write_level = parse_config_level(v, true)?;
            Ok(())
        }),
    },
];

/// `CONFIG GET`: like Redis 7.0, a pattern without glob characters is looked up by name and
/// answered under the name as the client spelled it; a glob answers canonical names.
fn config_get(node: &Node, patterns: &[Bytes]) -> Reply {
    let config = node.config.read();
    let mut pairs: Vec<(Reply, Reply)> = Vec::new();
    let mut add = |name: Reply, parameter: &Parameter| {
        if !pairs.iter().any(|(n, _)| *n == name) {
            pairs.push((name, Reply::Bulk(Bytes::from((parameter.get)(&config)))));
        }
    };
    for pattern in patterns {
        if pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            let matching = PARAMETERS
                .iter()
                .filter(|p| glob_match(pattern, p.name.as_bytes(), true));
            for parameter in matching {
                add(bulk(parameter.name), parameter);
            }
        } else if let Some(parameter) = PARAMETERS
            .iter()
            .find(|p| p.name.as_bytes().eq_ignore_ascii_case(pattern))
        {
            add(Reply::Bulk(pattern.clone()), parameter);
        }
    }
    Reply::Map(pairs)
}

fn config_set(node: &Node, pairs: &[(Bytes, Bytes)]) -> Reply {
    let fail = |name: &str, reason: &str| {
        Reply::error(CommandError::ConfigSetFailed {
            arg: name.into(),
            reason: reason.into(),
        })
    };
    // Validate everything on a copy first: CONFIG SET applies all parameters or none.
    let mut config = node.config.read().clone();
    let mut seen = Vec::new();
    for (name, value) in pairs {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let Some(parameter) = PARAMETERS.iter().find(|p| p.name == name) else {
            return Reply::error(CommandError::UnknownConfig(name));
        };
        if seen.contains(&parameter.name) {
            return fail(&name, "duplicate parameter");
        }
        seen.push(parameter.name);
        let Some(set) = parameter.set else {
            return fail(&name, "can't set immutable config");
        };
        if let Err(reason) = set(&mut config, &String::from_utf8_lossy(value)) {
            return fail(&name, &reason);
        }
    }
    if let Err(e) = node.store.set_fsync_policy(config.appendfsync.into()) {
        return Reply::error(e);
    }
    *node.config.write() = config;
    Reply::Ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::{node, run, session};

    #[test]
    fn config_get_matches_patterns_and_set_changes_values() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(
            run(&node, &mut s, "CONFIG GET maxclients"),
            Reply::Map(vec![(bulk("maxclients"), bulk("10000"))])
        );
        assert_eq!(
            run(&node, &mut s, "CONFIG SET timeout 30 maxclients 20"),
            Reply::Ok
        );
        assert_eq!(node.config.read().timeout_s, 30);
        assert_eq!(
            run(&node, &mut s, "CONFIG GET nothing-like-this"),
            Reply::Map(vec![])
        );
        let Reply::Map(all) = run(&node, &mut s, "CONFIG GET *") else {
            panic!()
        };
        assert_eq!(all.len(), PARAMETERS.len());
    }

    #[test]
    fn config_get_of_an_exact_name_answers_it_as_spelled() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(
            run(&node, &mut s, "CONFIG GET MAXMEMORY"),
            Reply::Map(vec![(bulk("MAXMEMORY"), bulk("0"))])
        );
        assert_eq!(
            run(&node, &mut s, "CONFIG GET MAXMEM*"),
            Reply::Map(vec![
                (bulk("maxmemory"), bulk("0")),
                (bulk("maxmemory-policy"), bulk("noeviction")),
                (bulk("maxmemory-samples"), bulk("5")),
            ])
        );
    }

    #[test]
    fn config_set_applies_all_or_nothing() {
        let node = node();
        let mut s = session(&node);
        let reply = run(&node, &mut s, "CONFIG SET timeout 5 maxclients many");
        assert_eq!(
            reply,
            Reply::error(
                "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument \
                 couldn't be parsed into an integer"
            )
        );
        assert_eq!(node.config.read().timeout_s, 0);
    }

    #[test]
    fn info_has_the_default_sections_and_keyspace() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET k v EX 100");
        let text = info(&node, &[]);
        for section in [
            "# Server",
            "# Clients",
            "# Memory",
            "# Stats",
            "# Cluster",
            "# Keyspace",
        ] {
            assert!(text.contains(section), "{section} missing");
        }
        assert!(text.contains("db0:keys=1,expires=1"));
        assert!(!text.contains("# Commandstats"));
        assert!(
            info(&node, &[Bytes::from_static(b"commandstats")]).contains("cmdstat_set:calls=1")
        );
    }

    #[test]
    fn maxmemory_parameters_are_real_and_refuse_bad_values_with_redis_texts() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(
            run(
                &node,
                &mut s,
                "CONFIG SET maxmemory 2mb maxmemory-policy ALLKEYS-LFU maxmemory-samples 10"
            ),
            Reply::Ok
        );
        assert_eq!(
            run(&node, &mut s, "CONFIG GET maxmemory*"),
            Reply::Map(vec![
                (bulk("maxmemory"), bulk("2097152")),
                (bulk("maxmemory-policy"), bulk("allkeys-lfu")),
                (bulk("maxmemory-samples"), bulk("10")),
            ])
        );
        let text = info(&node, &[Bytes::from_static(b"memory")]);
        assert!(text.contains("maxmemory:2097152\r\n"), "{text}");
        assert!(text.contains("maxmemory_human:2.00M\r\n"), "{text}");
        assert!(text.contains("maxmemory_policy:allkeys-lfu\r\n"), "{text}");
        let refused = [
            (
                "CONFIG SET maxmemory-policy foo",
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - \
                 argument(s) must be one of the following: volatile-lru, volatile-lfu, \
                 volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, \
                 noeviction",
            ),
            (
                "CONFIG SET maxmemory lots",
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument \
                 must be a memory value",
            ),
            (
                "CONFIG SET maxmemory -1",
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument \
                 must be a memory value",
            ),
            (
                "CONFIG SET maxmemory-samples 0",
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory-samples') - \
                 argument must be between 1 and 2147483647 inclusive",
            ),
            (
                "CONFIG SET maxmemory-samples x",
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory-samples') - \
                 argument couldn't be parsed into an integer",
            ),
            (
                "CONFIG SET appendfsync sometimes",
                "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - \
                 argument(s) must be one of the following: everysec, always, no",
            ),
            (
                "CONFIG SET storage log",
                "ERR CONFIG SET failed (possibly related to argument 'storage') - can't set \
                 immutable config",
            ),
        ];
        for (line, error) in refused {
            assert_eq!(run(&node, &mut s, line), Reply::error(error), "{line}");
        }
        assert_eq!(node.config.read().maxmemory_bytes, 2 << 20);
        assert_eq!(
            run(&node, &mut s, "CONFIG SET appendfsync ALWAYS"),
            Reply::Ok
        );
        assert_eq!(
            run(&node, &mut s, "CONFIG GET appendfsync storage"),
            Reply::Map(vec![
                (bulk("appendfsync"), bulk("always")),
                (bulk("storage"), bulk("log")),
            ])
        );
    }

    #[test]
    fn memory_values_take_redis_units() {
        assert_eq!(parse_memory("512mb"), Ok(512 << 20));
        assert_eq!(parse_memory("1k"), Ok(1000));
        assert_eq!(parse_memory("1GB"), Ok(1 << 30));
        assert!(parse_memory("lots").is_err());
    }
}
