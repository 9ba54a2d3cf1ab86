//! `RENAME`, `RENAMENX` and `COPY`: a key's value and expiry written at another key, of any
//! type (strings and HLLs, hashes, sets, sorted sets, lists).
//!
//! The destination is written whole, as a `SET` or a `STORE` command writes it: one new
//! version for the value and the expiry, and for a collection a clear version at the old
//! destination record's, so that none of its old elements survives on any replica whatever
//! order they see the writes in ([`copied`]). `RENAME` then deletes the source with a
//! tombstone, as `DEL` does. The expiry goes with the value (`RENAME` keeps it, `COPY` copies
//! it); a destination's own expiry is lost with its value, as in Redis.
//!
//! On a single node the commands run alone ([`ringcache_resp::cmd::Spec::alone`]): no other
//! command sees one key changed and not the other. In a cluster the coordinator checks both
//! keys' replicas, holds both keys' locks, reads both at the read level and writes the
//! destination before it deletes the source (`clustered::is_ordered_write`); what another
//! coordinator can see meanwhile is in docs/consistency.md.

use ringcache_resp::{CommandError, Reply};
use ringcache_storage::{Collection, Record, Update, Version};

use super::keyspace::delete;
use super::{ExecError, Outcome, Records};
use crate::node::Node;
use crate::notify::{self, Class};

/// `RENAME source destination` (`nx` false) and `RENAMENX` (`nx` true), in Redis 7.0's order
/// (`renameGenericCommand`): a missing source is `ERR no such key` even when both names are
/// the same; the same name answers `OK` (`RENAME`) or 0 (`RENAMENX`) and changes nothing;
/// `RENAMENX` onto an existing key answers 0. The value's type never matters.
///
/// # Errors
/// `ERR no such key`, or the store's (nothing written when the destination's write fails).
pub fn rename(
    node: &Node,
    records: &dyn Records,
    [source, destination]: [&[u8]; 2],
    nx: bool,
    now_ms: u64,
) -> Outcome {
    let answer = |renamed: bool| match nx {
        true => Reply::Integer(i64::from(renamed)),
        false => Reply::Ok,
    };
    let Some(record) = live(records.peek(source, now_ms), now_ms) else {
        return Err(CommandError::NoSuchKey.into());
    };
    if source == destination {
        return Ok(answer(false));
    }
    if nx && live(records.peek(destination, now_ms), now_ms).is_some() {
        return Ok(answer(false));
    }
    let replaced = replaces(records, destination, now_ms);
    write_copy(node, records, &record, destination, now_ms)?;
    delete(node, records, source, now_ms)?;
    if replaced {
        notify::emit(Class::NEW, "new", destination);
    }
    notify::emit(Class::GENERIC, "rename_from", source);
    notify::emit(Class::GENERIC, "rename_to", destination);
    Ok(answer(true))
}

/// `COPY source destination [REPLACE]` (the parser refused the same key twice and any
/// database but 0): 0 when the source is missing, or when the destination exists without
/// `REPLACE`; else 1. The source is read as `GET` reads it (a hit or a miss, an access unless
/// `CLIENT NO-TOUCH`), as Redis's `lookupKeyRead`.
///
/// # Errors
/// The store's (nothing written).
pub fn copy(
    node: &Node,
    records: &dyn Records,
    [source, destination]: [&[u8]; 2],
    replace: bool,
    now_ms: u64,
    touch: bool,
) -> Outcome {
    let found = match touch {
        true => records.get(source, now_ms),
        false => records.peek(source, now_ms),
    };
    let found = live(found, now_ms);
    node.stats.record_lookup(found.is_some());
    let Some(record) = found else {
        return Ok(Reply::Integer(0));
    };
    if !replace && live(records.peek(destination, now_ms), now_ms).is_some() {
        return Ok(Reply::Integer(0));
    }
    let replaced = replaces(records, destination, now_ms);
    write_copy(node, records, &record, destination, now_ms)?;
    if replaced {
        notify::emit(Class::NEW, "new", destination);
    }
    notify::emit(Class::GENERIC, "copy_to", destination);
    Ok(Reply::Integer(1))
}

/// Whether writing `destination` replaces a live key, when events are collected: Redis
/// deletes it and adds the new one, so `new` is sent as for a key that was not there (the
/// records' own `new` covers a destination that was not).
fn replaces(records: &dyn Records, destination: &[u8], now_ms: u64) -> bool {
    notify::collecting() && live(records.peek(destination, now_ms), now_ms).is_some()
}

/// `record` when it holds a live value.
fn live(record: Option<Record>, now_ms: u64) -> Option<Record> {
    record.filter(|r| r.is_live(now_ms))
}

/// Writes a copy of `record` (live) at `destination`, over whatever is there, and signals the
/// key to blocked clients (a list or sorted set may have arrived where one waits).
fn write_copy(
    node: &Node,
    records: &dyn Records,
    record: &Record,
    destination: &[u8],
    now_ms: u64,
) -> Result<(), ExecError> {
    let mut corrupt = false;
    records.update(destination, now_ms, &mut |current| match copied(
        record,
        current,
        node.clock.next(now_ms),
    ) {
        Some(copy) => Update::Put(copy),
        None => {
            corrupt = true;
            Update::Keep
        }
    })?;
    if corrupt {
        return Err(CommandError::CorruptCollection.into());
    }
    node.clients.blocked.signal(destination);
    Ok(())
}

/// The record `source` becomes when written over `current` at `version`: its value and expiry,
/// both cells at `version`. A collection's live elements are written again at `version` over
/// a clear version at `current`'s value version (at least that of every cell `current`
/// holds), so every old element of the destination is dead and the source's removed cells
/// do not travel. `None` when `source` claims to be a collection and holds no cells.
fn copied(source: &Record, current: Option<&Record>, version: Version) -> Option<Record> {
    if !source.kind.is_collection() {
        return Some(Record {
            kind: source.kind,
            value: source.value.clone(),
            value_version: version,
            expiry_ms: source.expiry_ms,
            expiry_version: version,
        });
    }
    let clear = current.map_or(Version::ZERO, |r| r.value_version);
    let mut collection = Collection::cleared_at(clear);
    for cell in source.cells()?.live_cells() {
        collection.put(cell.element(), cell.payload(), version);
    }
    Some(Record::collection(
        source.kind,
        collection,
        source.expiry_ms,
        version,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::{node, run, session};
    use bytes::Bytes;

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn rename_moves_every_type_with_its_expiry() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "HSET h f v");
        run(&node, &mut s, "EXPIRE h 100");
        run(&node, &mut s, "RPUSH l a b c");
        run(&node, &mut s, "ZADD z 1 a 2 b");
        run(&node, &mut s, "SADD s x");
        run(&node, &mut s, "PFADD p a b c");
        for (from, to) in [
            ("h", "h2"),
            ("l", "l2"),
            ("z", "z2"),
            ("s", "s2"),
            ("p", "p2"),
        ] {
            assert_eq!(
                run(&node, &mut s, &format!("RENAME {from} {to}")),
                Reply::Ok
            );
            assert_eq!(
                run(&node, &mut s, &format!("EXISTS {from}")),
                Reply::Integer(0)
            );
        }
        assert_eq!(run(&node, &mut s, "HGET h2 f"), bulk("v"));
        assert!(matches!(
            run(&node, &mut s, "TTL h2"),
            Reply::Integer(99..=100)
        ));
        assert_eq!(
            run(&node, &mut s, "LRANGE l2 0 -1"),
            Reply::Array(vec![bulk("a"), bulk("b"), bulk("c")])
        );
        assert_eq!(run(&node, &mut s, "ZSCORE z2 b"), Reply::Double(2.0));
        assert_eq!(run(&node, &mut s, "SISMEMBER s2 x"), Reply::Integer(1));
        assert_eq!(run(&node, &mut s, "PFCOUNT p2"), Reply::Integer(3));
    }

    #[test]
    fn rename_over_a_collection_leaves_none_of_its_elements() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "HSET src a 1");
        run(&node, &mut s, "HSET dst b 2 c 3");
        run(&node, &mut s, "EXPIRE dst 100");
        assert_eq!(run(&node, &mut s, "RENAME src dst"), Reply::Ok);
        assert_eq!(
            run(&node, &mut s, "HGETALL dst"),
            Reply::Map(vec![(bulk("a"), bulk("1"))])
        );
        assert_eq!(run(&node, &mut s, "TTL dst"), Reply::Integer(-1));
    }

    #[test]
    fn same_key_and_missing_key_answer_as_redis() {
        let node = node();
        let mut s = session(&node);
        let no_such_key = Reply::error(CommandError::NoSuchKey);
        assert_eq!(run(&node, &mut s, "RENAME a a"), no_such_key);
        assert_eq!(run(&node, &mut s, "RENAMENX a b"), no_such_key);
        assert_eq!(run(&node, &mut s, "COPY a b"), Reply::Integer(0));
        run(&node, &mut s, "SET a 1");
        assert_eq!(run(&node, &mut s, "RENAME a a"), Reply::Ok);
        assert_eq!(run(&node, &mut s, "RENAMENX a a"), Reply::Integer(0));
        assert_eq!(
            run(&node, &mut s, "COPY a a"),
            Reply::error(CommandError::SameObject)
        );
        assert_eq!(run(&node, &mut s, "GET a"), bulk("1"));
    }

    #[test]
    fn renamenx_and_copy_leave_an_existing_destination_unless_replace() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET a 1");
        run(&node, &mut s, "SADD b x");
        assert_eq!(run(&node, &mut s, "RENAMENX a b"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "COPY a b"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "TYPE b"), Reply::Simple("set"));
        run(&node, &mut s, "PEXPIRE a 100000");
        assert_eq!(run(&node, &mut s, "COPY a b REPLACE"), Reply::Integer(1));
        assert_eq!(run(&node, &mut s, "GET b"), bulk("1"));
        assert!(matches!(
            run(&node, &mut s, "PTTL b"),
            Reply::Integer(99_000..=100_000)
        ));
        assert_eq!(run(&node, &mut s, "GET a"), bulk("1"));
        assert_eq!(run(&node, &mut s, "RENAMENX a c"), Reply::Integer(1));
        assert_eq!(run(&node, &mut s, "EXISTS a c"), Reply::Integer(1));
    }

    /// Renames a key back and forth on one connection while another counts the two names:
    /// on a single node a rename runs alone, so the count is never 0 nor 2.
    #[test]
    fn no_command_sees_a_rename_half_done() {
        const RENAMES: usize = 2_000;
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET a v");
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut s = session(&node);
                for i in 0..RENAMES {
                    let line = if i % 2 == 0 {
                        "RENAME a b"
                    } else {
                        "RENAME b a"
                    };
                    assert_eq!(run(&node, &mut s, line), Reply::Ok);
                }
                done.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(run(&node, &mut s, "EXISTS a b"), Reply::Integer(1));
            }
        });
    }

    #[test]
    fn a_copy_is_independent_of_its_source() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "RPUSH a x y");
        assert_eq!(run(&node, &mut s, "COPY a b"), Reply::Integer(1));
        run(&node, &mut s, "RPUSH a z");
        run(&node, &mut s, "LPOP b");
        assert_eq!(run(&node, &mut s, "LLEN a"), Reply::Integer(3));
        assert_eq!(
            run(&node, &mut s, "LRANGE b 0 -1"),
            Reply::Array(vec![bulk("y")])
        );
    }
}
