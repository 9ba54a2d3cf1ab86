//! The HyperLogLog commands, with Redis 7.0's semantics (`pfaddCommand`, `pfcountCommand`,
//! `pfmergeCommand`); the value's format and arithmetic are in [`ringcache_storage::hll`].
//!
//! An HLL is a string value, so every write is a read-modify-write of the key's string under
//! its lock in the store, like `APPEND` ([`super::strings`]): the key's expiry is kept.
//! `PFCOUNT` of one key stores the cardinality it computed in the value's header, as Redis
//! does; in a cluster the coordinator does not write a read command's changes back, so
//! there the cache is left as it was (docs/consistency.md).
//!
//! `PFADD` and `PFMERGE` write the value as [`DataType::HyperLogLog`]: a string to every
//! command, but two such writes merge register by register on a replica, so `PFADD`s
//! through different nodes at the same time all count (docs/consistency.md).

use bytes::Bytes;
use ringcache_resp::cmd::Command;
use ringcache_resp::{CommandError, Reply};

use ringcache_storage::DataType;
use ringcache_storage::hll::{self, Encoding, HllError, Registers};

use super::strings::{live, read, rewrite_typed_value};
use super::{Outcome, Records};
use crate::node::Node;
use crate::notify::{self, Class};

/// Redis's errors for a value that is not an HLL (`WRONGTYPE ... not a valid HyperLogLog`)
/// or a corrupt one (`INVALIDOBJ`).
fn hll_error(e: HllError) -> CommandError {
    match e {
        HllError::NotHll => CommandError::NotHyperLogLog,
        HllError::Corrupt => CommandError::CorruptHyperLogLog,
    }
}

/// `rewrite_value` for an HLL: a value written is a [`DataType::HyperLogLog`].
fn rewrite_value(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    now_ms: u64,
    change: impl FnMut(Option<&Bytes>) -> Result<Option<Bytes>, CommandError>,
) -> Result<Option<Bytes>, super::ExecError> {
    rewrite_typed_value(node, records, key, now_ms, DataType::HyperLogLog, change)
}

/// Executes a HyperLogLog command. `touch` says whether reads count as accesses for
/// eviction (false under `CLIENT NO-TOUCH`).
pub fn execute(
    node: &Node,
    records: &dyn Records,
    command: Command,
    now_ms: u64,
    touch: bool,
) -> Outcome {
    Ok(match command {
        Command::PfAdd { key, elements } => pfadd(node, records, &key, &elements, now_ms)?,
        Command::PfCount(keys) => match keys.as_slice() {
            [key] => pfcount_one(node, records, key, now_ms)?,
            keys => {
                let mut max = hll::empty_registers();
                merge_keys(records, keys, now_ms, touch, &mut max)?;
                Reply::Integer(hll::count_registers(&max) as i64)
            }
        },
        Command::PfMerge { dest, sources } => {
            pfmerge(node, records, &dest, &sources, now_ms, touch)?
        }
        _ => super::misrouted("hyperloglog"),
    })
}

/// `PFADD`: 1 when the key was created or a register changed. A corrupt sparse value
/// answers `INVALIDOBJ`, keeping what the elements before the bad one changed (Redis
/// changes the value in place as it goes).
fn pfadd(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    elements: &[Bytes],
    now_ms: u64,
) -> Outcome {
    let mut outcome = Ok(false);
    rewrite_value(node, records, key, now_ms, |old| {
        let (mut value, mut updated) = match old {
            None => (hll::new_sparse(), true),
            Some(old) => {
                hll::check(old).map_err(hll_error)?;
                if !elements.iter().any(|e| hll::dense_would_change(old, e)) {
                    outcome = Ok(false);
                    return Ok(None);
                }
                (old.to_vec(), false)
            }
        };
        for element in elements {
            match hll::add(&mut value, element) {
                Ok(changed) => updated |= changed,
                Err(e) => {
                    outcome = Err(e);
                    let changed = old.is_some_and(|old| old[..] != value[..]);
                    return Ok(changed.then(|| Bytes::from(value)));
                }
            }
        }
        outcome = Ok(updated);
        if !updated {
            return Ok(None);
        }
        hll::invalidate_cache(&mut value);
        Ok(Some(Bytes::from(value)))
    })?;
    let updated = outcome.map_err(hll_error)?;
    if updated {
        notify::emit(Class::STRING, "pfadd", key);
    }
    Ok(Reply::Integer(i64::from(updated)))
}

/// `PFCOUNT key`: the cached cardinality when valid, else computed and cached.
fn pfcount_one(node: &Node, records: &dyn Records, key: &[u8], now_ms: u64) -> Outcome {
    let mut card = 0;
    rewrite_value(node, records, key, now_ms, |old| {
        let Some(old) = old else {
            return Ok(None);
        };
        hll::check(old).map_err(hll_error)?;
        if let Some(cached) = hll::cached_count(old) {
            card = cached;
            return Ok(None);
        }
        card = hll::count(old).map_err(hll_error)?;
        let mut value = old.to_vec();
        hll::set_cached_count(&mut value, card);
        Ok(Some(Bytes::from(value)))
    })?;
    // Redis replies with the C `long long` of the unsigned count.
    Ok(Reply::Integer(card as i64))
}

/// Merges the HLLs of `keys`, in order, into `max` (a missing key is an empty HLL); whether
/// any was dense. The first bad key's error, as Redis checks them one by one.
fn merge_keys(
    records: &dyn Records,
    keys: &[Bytes],
    now_ms: u64,
    touch: bool,
    max: &mut Registers,
) -> Result<bool, CommandError> {
    let mut dense = false;
    for key in keys {
        let record = read(records, key, now_ms, touch);
        // A collection is Redis's generic WRONGTYPE (`checkType`), not the HLL check's.
        if record
            .as_ref()
            .is_some_and(|r| r.kind.is_collection() && r.is_live(now_ms))
        {
            return Err(CommandError::WrongType);
        }
        if let Some(value) = live(record.as_ref(), now_ms) {
            dense |= merge_value(max, value).map_err(hll_error)?;
        }
    }
    Ok(dense)
}

/// Merges one value into `max`; whether it was dense.
fn merge_value(max: &mut Registers, value: &[u8]) -> Result<bool, HllError> {
    let encoding = hll::check(value)?;
    hll::merge_into(max, value)?;
    Ok(encoding == Encoding::Dense)
}

/// `PFMERGE dest source...`: the union of every named HLL, the destination's included, is
/// written to the destination (created sparse when missing, made dense when any input is
/// dense), with its cache invalidated.
fn pfmerge(
    node: &Node,
    records: &dyn Records,
    dest: &Bytes,
    sources: &[Bytes],
    now_ms: u64,
    touch: bool,
) -> Outcome {
    let mut merged_sources = hll::empty_registers();
    let sources_dense = merge_keys(records, sources, now_ms, touch, &mut merged_sources);
    rewrite_value(node, records, dest, now_ms, |old| {
        // The destination is read here, under its lock, so that a write to it between the
        // sources' reads and this one is merged too. Redis checks it first, as argument 1.
        let mut max = hll::empty_registers();
        let mut dense = match old {
            Some(old) => merge_value(&mut max, old).map_err(hll_error)?,
            None => {
                // Redis reads the destination with `lookupKeyRead`.
                notify::emit(Class::KEY_MISS, "keymiss", dest);
                false
            }
        };
        dense |= sources_dense.clone()?;
        for (m, s) in max.iter_mut().zip(merged_sources.iter()) {
            *m = (*m).max(*s);
        }
        let mut value = match old {
            Some(old) => old.to_vec(),
            None => hll::new_sparse(),
        };
        if dense {
            hll::to_dense(&mut value).map_err(hll_error)?;
        }
        for (index, &m) in max.iter().enumerate().filter(|(_, m)| **m != 0) {
            // Cannot fail: the destination's opcodes were just walked by the merge.
            let _ = hll::set_register(&mut value, index, m);
        }
        hll::invalidate_cache(&mut value);
        Ok(Some(Bytes::from(value)))
    })?;
    notify::emit(Class::STRING, "pfadd", dest);
    Ok(Reply::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::{node, run, session};

    fn get(node: &Node, s: &mut super::super::Session, key: &str) -> Vec<u8> {
        match run(node, s, &format!("GET {key}")) {
            Reply::Bulk(bytes) => bytes.to_vec(),
            other => panic!("GET {key}: {other:?}"),
        }
    }

    #[test]
    fn pfcount_of_one_key_caches_the_count_in_the_header_on_one_node() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(run(&node, &mut s, "PFADD h a b c"), Reply::Integer(1));
        assert_eq!(&get(&node, &mut s, "h")[8..16], b"\0\0\0\0\0\0\0\x80");
        assert_eq!(run(&node, &mut s, "PFCOUNT h"), Reply::Integer(3));
        assert_eq!(&get(&node, &mut s, "h")[8..16], b"\x03\0\0\0\0\0\0\0");
        assert_eq!(run(&node, &mut s, "PFADD h a"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "PFCOUNT h missing"), Reply::Integer(3));
    }

    #[test]
    fn a_plain_string_is_wrongtype_and_a_missing_key_counts_zero() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET plain hello");
        let wrongtype = Reply::error(CommandError::NotHyperLogLog);
        assert_eq!(run(&node, &mut s, "PFADD plain x"), wrongtype);
        assert_eq!(run(&node, &mut s, "PFCOUNT plain"), wrongtype);
        assert_eq!(run(&node, &mut s, "PFMERGE dest plain"), wrongtype);
        assert_eq!(run(&node, &mut s, "EXISTS dest"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "PFCOUNT missing"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "EXISTS missing"), Reply::Integer(0));
    }

    #[test]
    fn pfmerge_creates_the_destination_with_the_union_and_keeps_its_expiry() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "PFADD a 1 2 3");
        run(&node, &mut s, "PFADD b 3 4 5");
        assert_eq!(run(&node, &mut s, "PFMERGE u a b"), Reply::Ok);
        assert_eq!(run(&node, &mut s, "PFCOUNT u"), Reply::Integer(5));
        run(&node, &mut s, "EXPIRE u 100");
        assert_eq!(run(&node, &mut s, "PFMERGE u a"), Reply::Ok);
        assert!(matches!(
            run(&node, &mut s, "TTL u"),
            Reply::Integer(99..=100)
        ));
    }
}
