//! `OBJECT` and `MEMORY`: what a key's value looks like inside, in Redis's terms.
//!
//! ringcache does not store values as Redis does, so `OBJECT ENCODING` answers the encoding
//! Redis 7.0 would give the same value, worked out from the value with Redis's rules and
//! default thresholds: `int`, `embstr` or `raw` for a string, `listpack` or `hashtable` for a
//! hash, `intset` or `hashtable` for a set, `listpack` or `skiplist` for a sorted set,
//! `quicklist` for a list. Redis keeps the encoding a value got when it was written and never
//! converts back to a compact one, so after `APPEND`/`SETRANGE` (Redis: `raw`) or after a
//! large collection shrank (Redis: still `hashtable`) the answers can differ
//! (docs/redis-compatibility.md). `MEMORY USAGE` is this store's own estimate.

use ringcache_resp::Reply;
use ringcache_resp::cmd::{MemoryCommand, ObjectCommand};
use ringcache_resp::parser::string2ll;
use ringcache_storage::{Collection, DataType, EvictionPolicy, Record};

use super::{Outcome, Records};
use crate::node::Node;

/// Redis's `hash-max-listpack-entries` default.
pub const HASH_LISTPACK_ENTRIES_MAX: usize = 512;
/// Redis's `zset-max-listpack-entries` default.
pub const ZSET_LISTPACK_ENTRIES_MAX: usize = 128;
/// Redis's `hash-max-listpack-value` and `zset-max-listpack-value` defaults (bytes).
pub const LISTPACK_VALUE_BYTES_MAX: usize = 64;
/// Redis's `set-max-intset-entries` default.
pub const INTSET_ENTRIES_MAX: usize = 512;
/// The longest string Redis keeps `embstr` (`OBJ_ENCODING_EMBSTR_SIZE_LIMIT`).
const EMBSTR_BYTES_MAX: usize = 44;
/// Integers Redis shares between keys (`OBJ_SHARED_INTEGERS`): their refcount is
/// `OBJ_SHARED_REFCOUNT`.
const SHARED_INTEGERS: i64 = 10_000;
/// `OBJECT REFCOUNT` of a shared integer.
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// What `MEMORY USAGE` adds to a key's and value's bytes: the store's entry (the memory
/// engine's is 144 bytes) and the allocations' headers.
const ENTRY_BYTES: usize = 160;

/// Redis's `OBJECT FREQ` error when the policy is not an LFU one.
const FREQ_NOT_TRACKED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
/// Redis's `OBJECT IDLETIME` error under an LFU policy.
const IDLE_NOT_TRACKED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// Executes an `OBJECT` subcommand. A read that does not count as an access, as in Redis.
pub fn object(node: &Node, records: &dyn Records, command: ObjectCommand, now_ms: u64) -> Outcome {
    let live = |key: &[u8]| records.peek(key, now_ms).filter(|r| r.is_live(now_ms));
    let policy = node.config.read().maxmemory_policy;
    let lfu = matches!(
        policy,
        EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu
    );
    Ok(match command {
        ObjectCommand::Help => help(&[
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Prints this help.",
        ]),
        ObjectCommand::Encoding(key) => match live(&key) {
            Some(record) => Reply::Bulk(encoding(&record).into()),
            None => Reply::Nil,
        },
        ObjectCommand::RefCount(key) => match live(&key) {
            Some(record) => Reply::Integer(refcount(node, &record)),
            None => Reply::Nil,
        },
        ObjectCommand::Freq(key) => match live(&key) {
            Some(_) if !lfu => Reply::Error(FREQ_NOT_TRACKED.into()),
            Some(_) => Reply::Integer(key_use(node, records, &key, now_ms).1.into()),
            None => Reply::Nil,
        },
        ObjectCommand::IdleTime(key) => match live(&key) {
            Some(_) if lfu => Reply::Error(IDLE_NOT_TRACKED.into()),
            Some(_) => Reply::Integer((key_use(node, records, &key, now_ms).0 / 1000) as i64),
            None => Reply::Nil,
        },
    })
}

/// Executes a `MEMORY` subcommand.
pub fn memory(node: &Node, records: &dyn Records, command: MemoryCommand, now_ms: u64) -> Outcome {
    Ok(match command {
        MemoryCommand::Usage(key) => match records.peek(&key, now_ms) {
            Some(record) if record.is_live(now_ms) => {
                let value = record.value.as_ref().map_or(0, |v| v.memory_bytes());
                Reply::Integer((key.len() + value + ENTRY_BYTES) as i64)
            }
            _ => Reply::Nil,
        },
        MemoryCommand::Doctor => Reply::Bulk(doctor(node).into()),
        // What Redis answers when it is not built with jemalloc; neither is ringcache.
        MemoryCommand::MallocStats => {
            Reply::Bulk("Stats not supported for the current allocator".into())
        }
        MemoryCommand::Purge => Reply::Ok,
        MemoryCommand::Help => help(&[
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
            "HELP",
            "    Prints this help.",
        ]),
    })
}

/// A `HELP` reply: one status line each.
fn help(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::Simple(l)).collect())
}

/// `MEMORY DOCTOR`: Redis's answer for an instance too small to judge (under 5 MB), and
/// otherwise a pointer to what ringcache does report, since it runs no detector.
fn doctor(node: &Node) -> String {
    const SMALL_BYTES: usize = 5 * 1024 * 1024;
    if node.store.stats().used_bytes < SMALL_BYTES {
        return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.".into();
    }
    "Sam, ringcache runs no memory issues detector: see INFO memory (used_memory, maxmemory, evicted_keys) and the ringcache_store_* metrics.".into()
}

/// Idle milliseconds and LFU counter of `key`: the reading store's statistics, or (on a
/// cluster coordinator, whose reads come from replicas) this node's own replica's; 0 and 0
/// when neither keeps any.
fn key_use(node: &Node, records: &dyn Records, key: &[u8], now_ms: u64) -> (u64, u8) {
    records
        .key_use(key, now_ms)
        .or_else(|| node.store.key_use(key, now_ms))
        .map_or((0, 0), |used| (used.idle_ms, used.frequency))
}

/// The encoding Redis 7.0 gives this value when it is written (module docs).
fn encoding(record: &Record) -> &'static str {
    let Some(cells) = record.cells() else {
        return string_encoding(record.bytes().map_or(&[][..], |b| &b[..]));
    };
    match record.kind {
        DataType::Hash if listpack(cells, HASH_LISTPACK_ENTRIES_MAX, true) => "listpack",
        DataType::Hash => "hashtable",
        DataType::Set if intset(cells) => "intset",
        DataType::Set => "hashtable",
        DataType::ZSet if listpack(cells, ZSET_LISTPACK_ENTRIES_MAX, false) => "listpack",
        DataType::ZSet => "skiplist",
        DataType::List => "quicklist",
        DataType::String | DataType::HyperLogLog => "raw",
    }
}

/// `int` for an integer Redis would keep as one (canonical, at most 20 characters),
/// `embstr` up to 44 bytes, `raw` beyond, and for a HyperLogLog (Redis grows it in place).
fn string_encoding(value: &[u8]) -> &'static str {
    if value.starts_with(b"HYLL") {
        "raw"
    } else if value.len() <= 20 && string2ll(value).is_some() {
        "int"
    } else if value.len() <= EMBSTR_BYTES_MAX {
        "embstr"
    } else {
        "raw"
    }
}

/// Whether Redis keeps the hash (`with_values`) or sorted set as a listpack: few entries,
/// every field (and a hash's every value) short.
fn listpack(cells: &Collection, entries_max: usize, with_values: bool) -> bool {
    cells.live_count() <= entries_max
        && cells.live().all(|(element, value)| {
            element.len() <= LISTPACK_VALUE_BYTES_MAX
                && (!with_values || value.len() <= LISTPACK_VALUE_BYTES_MAX)
        })
}

/// Whether Redis keeps the set as an intset: few members, every one an integer.
fn intset(cells: &Collection) -> bool {
    cells.live_count() <= INTSET_ENTRIES_MAX
        && cells.live().all(|(member, _)| string2ll(member).is_some())
}

/// `OBJECT REFCOUNT`: Redis shares the integers below 10,000 between keys unless an LRU or
/// LFU policy needs each key's own access clock.
fn refcount(node: &Node, record: &Record) -> i64 {
    let config = node.config.read();
    let per_key_clock = config.maxmemory_bytes > 0
        && !matches!(
            config.maxmemory_policy,
            EvictionPolicy::NoEviction
                | EvictionPolicy::AllKeysRandom
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        );
    let shared = record.kind == DataType::String
        && record
            .bytes()
            .filter(|b| b.len() <= 20)
            .and_then(|b| string2ll(b))
            .is_some_and(|n| (0..SHARED_INTEGERS).contains(&n));
    match shared && !per_key_clock {
        true => SHARED_REFCOUNT,
        false => 1,
    }
}
