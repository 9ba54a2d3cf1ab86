//! The bitmap commands, with Redis 7.0's semantics, over string values ([`super::bits`]
//! holds the arithmetic).
//!
//! Writes (`SETBIT`, `BITOP`'s destination, `BITFIELD`'s `SET`/`INCRBY`) are read-modify-writes
//! of the whole string under the key's lock in the store, as `APPEND` and `SETRANGE` are; a
//! coordinator serializes them per key the same way (see [`super::clustered`]). A write that
//! changes no byte of an existing string writes nothing.
//!
//! Unlike Redis, a `BITFIELD` write that would grow the string past `proto-max-bulk-len` is
//! refused (Redis lets a field that starts at the last allowed bit end up to 63 bits past
//! it), so that no value exceeds what a peer frame or a hint may carry.

use bytes::{Bytes, BytesMut};
use ringcache_resp::cmd::SetExpiry;
use ringcache_resp::cmd::bitmap::{BitFieldOp, BitOp, BitmapCommand};
use ringcache_resp::{CommandError, Reply};

use super::strings::{put_value, read, rewrite_value, string};
use super::{ExecError, Outcome, Records, bits, keyspace};
use crate::node::Node;
use crate::notify::{self, Class};

/// Executes a bitmap command. `touch` says whether reads count as accesses for eviction.
pub fn execute(
    node: &Node,
    records: &dyn Records,
    command: BitmapCommand,
    now_ms: u64,
    touch: bool,
) -> Outcome {
    let read_string = |key: &[u8]| -> Result<Option<Bytes>, ExecError> {
        let record = read(records, key, now_ms, touch);
        Ok(string(record.as_ref(), now_ms)?.cloned())
    };
    Ok(match command {
        BitmapCommand::SetBit { key, offset, bit } => {
            Reply::Integer(i64::from(setbit(node, records, &key, offset, bit, now_ms)?))
        }
        BitmapCommand::GetBit { key, offset } => {
            let value = read_string(&key)?;
            Reply::Integer(i64::from(value.is_some_and(|v| bits::get_bit(&v, offset))))
        }
        BitmapCommand::BitCount { key, range } => match read_string(&key)? {
            None => Reply::Integer(0),
            Some(value) => Reply::Integer(bits::count_ones(&value, range?)),
        },
        BitmapCommand::BitPos { key, bit, range } => match read_string(&key)? {
            // A missing key is all zeros.
            None => Reply::Integer(if bit { -1 } else { 0 }),
            Some(value) => Reply::Integer(bits::first_bit(&value, bit, range?)),
        },
        BitmapCommand::BitOp { op, dest, sources } => {
            let values = sources
                .iter()
                .map(|key| read_string(key))
                .collect::<Result<Vec<_>, _>>()?;
            Reply::Integer(bitop(node, records, op, &dest, &values, now_ms)? as i64)
        }
        BitmapCommand::BitField { key, ops } if ops.iter().any(BitFieldOp::writes) => {
            Reply::Array(bitfield_write(node, records, &key, &ops, now_ms)?)
        }
        BitmapCommand::BitField { key, ops } => {
            let value = read_string(&key)?.unwrap_or_default();
            let get = |op: &BitFieldOp| Reply::Integer(bits::bitfield_get(&value, op));
            Reply::Array(ops.iter().map(get).collect())
        }
    })
}

/// The longest string a write may build: `proto-max-bulk-len` as configured.
fn string_bytes_max(node: &Node) -> u64 {
    node.config.read().proto_max_bulk_len
}

/// `SETBIT`: the bit's old value. A missing key is created even when the bit written is 0.
/// The offset was checked against the default 512 MiB; a lower configured
/// `proto-max-bulk-len` is checked here.
fn setbit(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    offset: u64,
    bit: bool,
    now_ms: u64,
) -> Result<bool, ExecError> {
    if offset / 8 >= string_bytes_max(node) {
        return Err(CommandError::BitOffset.into());
    }
    let byte = (offset / 8) as usize;
    let mut old = false;
    let mut written = false;
    rewrite_value(node, records, key, now_ms, |current| {
        let current = current.map_or(&[][..], |v| &v[..]);
        old = bits::get_bit(current, offset);
        if old == bit && byte < current.len() {
            return Ok(None);
        }
        let mut new = grown(current, byte + 1);
        bits::set_bit(&mut new, offset, bit);
        written = true;
        Ok(Some(new.freeze()))
    })?;
    if written {
        notify::emit(Class::STRING, "setbit", key);
    }
    Ok(old)
}

/// A copy of `current`, padded with zeros to at least `len` bytes.
fn grown(current: &[u8], len: usize) -> BytesMut {
    let mut new = BytesMut::with_capacity(current.len().max(len));
    new.extend_from_slice(current);
    if new.len() < len {
        new.resize(len, 0);
    }
    new
}

/// `BITOP`: stores the result at `dest` as a new string without expiry (whatever `dest`
/// held), or deletes `dest` when every source is empty or missing; the length stored.
fn bitop(
    node: &Node,
    records: &dyn Records,
    op: BitOp,
    dest: &[u8],
    values: &[Option<Bytes>],
    now_ms: u64,
) -> Result<usize, ExecError> {
    let sources: Vec<&[u8]> = values.iter().map(|v| v.as_deref().unwrap_or(&[])).collect();
    let result = bits::bit_op(op, &sources);
    let len = result.len();
    if result.is_empty() {
        if keyspace::delete(node, records, dest, now_ms)? {
            notify::emit(Class::GENERIC, "del", dest);
        }
    } else {
        put_value(
            node,
            records,
            dest,
            Bytes::from(result),
            SetExpiry::Clear,
            now_ms,
        )?;
        notify::emit(Class::STRING, "set", dest);
    }
    Ok(len)
}

/// `BITFIELD` with at least one `SET` or `INCRBY`: the string grows to hold the farthest
/// field written (a missing key is created even if every write fails under `FAIL`, as in
/// Redis), then the operations run in order; one reply each.
fn bitfield_write(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    ops: &[BitFieldOp],
    now_ms: u64,
) -> Result<Vec<Reply>, ExecError> {
    let last_bit = ops
        .iter()
        .filter(|op| op.writes())
        .map(BitFieldOp::last_bit)
        .max()
        .unwrap_or(0);
    let len = last_bit / 8 + 1;
    if len > string_bytes_max(node) {
        return Err(CommandError::StringTooLong.into());
    }
    let mut replies = Vec::with_capacity(ops.len());
    rewrite_value(node, records, key, now_ms, |current| {
        replies.clear();
        let old = current.map_or(&[][..], |v| &v[..]);
        let mut new = grown(old, len as usize);
        for op in ops {
            replies.push(match op.writes() {
                true => bits::bitfield_write(&mut new, op).map_or(Reply::Nil, Reply::Integer),
                false => Reply::Integer(bits::bitfield_get(&new, op)),
            });
        }
        match current.is_some() && new[..] == old[..] {
            true => Ok(None),
            false => Ok(Some(new.freeze())),
        }
    })?;
    // Redis counts a write that did not fail under `OVERFLOW FAIL` as a change.
    let changed = ops
        .iter()
        .zip(&replies)
        .any(|(op, reply)| op.writes() && *reply != Reply::Nil);
    if changed {
        notify::emit(Class::STRING, "setbit", key);
    }
    Ok(replies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::{node, run, session};

    #[test]
    fn setbit_grows_the_string_and_answers_the_old_bit() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(run(&node, &mut s, "SETBIT k 7 1"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "SETBIT k 7 0"), Reply::Integer(1));
        assert_eq!(run(&node, &mut s, "SETBIT k 17 0"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "STRLEN k"), Reply::Integer(3));
        assert_eq!(run(&node, &mut s, "SETBIT new 0 0"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "EXISTS new"), Reply::Integer(1));
    }

    #[test]
    fn setbit_keeps_the_expiry_and_refuses_collections() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET k a EX 100");
        run(&node, &mut s, "SETBIT k 100 1");
        assert!(matches!(
            run(&node, &mut s, "TTL k"),
            Reply::Integer(99..=100)
        ));
        run(&node, &mut s, "LPUSH l x");
        assert_eq!(
            run(&node, &mut s, "SETBIT l 0 1"),
            Reply::error(CommandError::WrongType)
        );
    }

    #[test]
    fn setbit_obeys_a_lower_proto_max_bulk_len() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "CONFIG SET proto-max-bulk-len 1mb");
        assert_eq!(
            run(&node, &mut s, "SETBIT k 8388608 1"),
            Reply::error(CommandError::BitOffset)
        );
        assert_eq!(run(&node, &mut s, "SETBIT k 8388607 1"), Reply::Integer(0));
        assert_eq!(
            run(&node, &mut s, "BITFIELD k SET u8 8388607 1"),
            Reply::error(CommandError::StringTooLong)
        );
    }

    #[test]
    fn writes_are_refused_over_maxmemory_as_other_string_writes_and_reads_are_not() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SETBIT k 0 1");
        run(&node, &mut s, "CONFIG SET maxmemory 1");
        let oom = Reply::error(crate::exec::OOM_ERROR);
        for write in ["SETBIT k 1 1", "BITOP NOT d k", "BITFIELD k SET u8 0 1"] {
            assert_eq!(run(&node, &mut s, write), oom, "{write}");
        }
        assert_eq!(run(&node, &mut s, "GETBIT k 0"), Reply::Integer(1));
        let read = run(&node, &mut s, "BITFIELD_RO k GET u8 0");
        assert_eq!(read, Reply::Array(vec![Reply::Integer(128)]));
    }

    #[test]
    fn bitop_replaces_the_destination_or_deletes_it_when_empty() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET a abc");
        run(&node, &mut s, "SET d x EX 100");
        assert_eq!(
            run(&node, &mut s, "BITOP OR d a missing"),
            Reply::Integer(3)
        );
        assert_eq!(run(&node, &mut s, "TTL d"), Reply::Integer(-1));
        assert_eq!(run(&node, &mut s, "BITOP AND d missing"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "EXISTS d"), Reply::Integer(0));
    }

    #[test]
    fn bitfield_fail_answers_nil_but_still_creates_the_key() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(
            run(&node, &mut s, "BITFIELD k OVERFLOW FAIL SET u2 8 7"),
            Reply::Array(vec![Reply::Nil])
        );
        assert_eq!(run(&node, &mut s, "STRLEN k"), Reply::Integer(2));
    }
}
