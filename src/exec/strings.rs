//! The string commands, with Redis 7.0's semantics.
//!
//! Every write is a read-modify-write under the key's lock in the store (`Store::update`),
//! with the version taken from the node's clock inside the lock, so a single node's
//! `INCR`s, `APPEND`s and `SET NX`s on one key never interleave.

use bytes::{Bytes, BytesMut};
use ringcache_resp::cmd::{Command, GetExExpiry, Set, SetCondition, SetExpiry};
use ringcache_resp::float::incr_by_float_text;
use ringcache_resp::parser::string2ll;
use ringcache_resp::{CommandError, Reply};
use ringcache_storage::{DataType, Record, StoreError, Update, Value, Version};

use super::{ExecError, Outcome, Records, lookup_reply, now_ms_signed};
use crate::node::Node;

/// Executes a string command. `touch` says whether reads count as accesses for eviction
/// (false for a client in `CLIENT NO-TOUCH` mode); writes always do.
pub fn execute(
    node: &Node,
    records: &dyn Records,
    command: Command,
    now_ms: u64,
    touch: bool,
) -> Outcome {
    Ok(match command {
        Command::Get(key) => {
            let record = read(records, &key, now_ms, touch);
            lookup_reply(node, string(record.as_ref(), now_ms)?)
        }
        Command::Set(set) => execute_set(node, records, set, now_ms)?,
        Command::SetNx { key, value } => {
            let set = Set {
                key,
                value,
                condition: Some(SetCondition::IfAbsent),
                get: false,
                expiry: SetExpiry::Clear,
            };
            match execute_set(node, records, set, now_ms)? {
                Reply::Ok => Reply::Integer(1),
                _ => Reply::Integer(0),
            }
        }
        Command::GetDel(key) => {
            let mut old = Ok(None);
            records.update(&key, now_ms, &mut |current| {
                old = string(current, now_ms).map(|v| v.cloned());
                match old {
                    Ok(Some(_)) => Update::Put(Record::tombstone(node.clock.next(now_ms))),
                    _ => Update::Keep,
                }
            })?;
            lookup_reply(node, old?.as_ref())
        }
        Command::GetEx { key, expiry } => execute_getex(node, records, key, expiry, now_ms)?,
        Command::MGet(keys) => Reply::Array(
            keys.iter()
                .map(|key| {
                    // MGET answers nil for a key of another type, as Redis.
                    let record = read(records, key, now_ms, touch);
                    lookup_reply(node, string(record.as_ref(), now_ms).ok().flatten())
                })
                .collect(),
        ),
        Command::MSet(pairs) => {
            for (key, value) in pairs {
                put_value(node, records, &key, value, SetExpiry::Clear, now_ms)?;
            }
            Reply::Ok
        }
        Command::MSetNx(pairs) => {
            if pairs.iter().any(|(key, _)| exists(records, key, now_ms)) {
                return Ok(Reply::Integer(0));
            }
            for (key, value) in pairs {
                put_value(node, records, &key, value, SetExpiry::Clear, now_ms)?;
            }
            Reply::Integer(1)
        }
        Command::StrLen(key) => {
            let record = read(records, &key, now_ms, touch);
            let len = string(record.as_ref(), now_ms)?.map_or(0, Bytes::len);
            Reply::Integer(len as i64)
        }
        Command::Append { key, value } => {
            let max = node.config.read().proto_max_bulk_len;
            let stored = rewrite_value(node, records, &key, now_ms, |old| {
                let old = old.map_or(&[][..], |v| v.as_ref());
                if (old.len() + value.len()) as u64 > max {
                    return Err(CommandError::StringTooLong);
                }
                let mut new = BytesMut::with_capacity(old.len() + value.len());
                new.extend_from_slice(old);
                new.extend_from_slice(&value);
                Ok(Some(new.freeze()))
            })?;
            Reply::Integer(stored.map_or(0, |v| v.len()) as i64)
        }
        Command::GetRange { key, start, end } => {
            let record = read(records, &key, now_ms, touch);
            let value = string(record.as_ref(), now_ms)?;
            Reply::Bulk(value.map_or_else(Bytes::new, |v| substring(v, start, end)))
        }
        Command::SetRange { key, offset, value } => {
            let max = node.config.read().proto_max_bulk_len;
            let stored = rewrite_value(node, records, &key, now_ms, |old| {
                setrange(old, offset, &value, max)
            })?;
            Reply::Integer(stored.map_or(0, |v| v.len()) as i64)
        }
        Command::IncrBy { key, delta } => {
            let mut result = 0;
            rewrite_value(node, records, &key, now_ms, |old| {
                let current = match old {
                    None => 0,
                    Some(v) => string2ll(v).ok_or(CommandError::NotIntegerValue)?,
                };
                result = current
                    .checked_add(delta)
                    .ok_or(CommandError::IncrOverflow)?;
                Ok(Some(Bytes::from(result.to_string())))
            })?;
            Reply::Integer(result)
        }
        Command::IncrByFloat { key, delta } => {
            let mut text = Bytes::new();
            rewrite_value(node, records, &key, now_ms, |old| {
                text = incr_by_float_text(old.map(|v| &v[..]), &delta)?;
                Ok(Some(text.clone()))
            })?;
            Reply::Bulk(text)
        }
        Command::Lcs(lcs) => return super::lcs::execute(node, records, lcs, now_ms, touch),
        _ => super::misrouted("string"),
    })
}

/// The live string value of a record at `now_ms`.
///
/// # Errors
/// `WRONGTYPE` when the key holds a collection.
pub(super) fn string(record: Option<&Record>, now_ms: u64) -> Result<Option<&Bytes>, ExecError> {
    match record.filter(|r| r.is_live(now_ms)) {
        Some(r) if r.kind.is_collection() => Err(CommandError::WrongType.into()),
        _ => Ok(live(record, now_ms)),
    }
}

/// The live string of a record at `now_ms` (`None` for a collection too).
pub(super) fn live(record: Option<&Record>, now_ms: u64) -> Option<&Bytes> {
    record.and_then(|r| r.live_bytes(now_ms))
}

/// The stored record of `key`, read as an access for eviction if `touch`.
pub(super) fn read(records: &dyn Records, key: &[u8], now_ms: u64, touch: bool) -> Option<Record> {
    if touch {
        records.get(key, now_ms)
    } else {
        records.peek(key, now_ms)
    }
}

/// Whether `key` holds a live value; not an access for eviction (Redis's `EXISTS` and
/// `TYPE` look keys up with `LOOKUP_NOTOUCH`).
pub(super) fn exists(records: &dyn Records, key: &[u8], now_ms: u64) -> bool {
    records.peek(key, now_ms).is_some_and(|r| r.is_live(now_ms))
}

/// The record after writing `value` at `version` over `current`, with the expiry `expiry`.
/// `KEEPTTL` keeps the expiry cell only when the key is live: an expired key's old expiry
/// must not carry over to the new value.
fn with_value(
    current: Option<&Record>,
    value: Bytes,
    expiry: SetExpiry,
    version: Version,
    now_ms: u64,
) -> Record {
    let new = |expiry_ms| Record::new(value.clone(), expiry_ms, version);
    match expiry {
        SetExpiry::Clear => new(None),
        SetExpiry::At(at) => new(Some(at.absolute_ms(now_ms_signed(now_ms)).max(0) as u64)),
        SetExpiry::Keep => match current.filter(|r| r.is_live(now_ms)) {
            Some(record) => Record {
                kind: Default::default(),
                value: Some(Value::Bytes(value)),
                value_version: version,
                expiry_ms: record.expiry_ms,
                expiry_version: record.expiry_version,
            },
            None => new(None),
        },
    }
}

/// Writes `value` to `key` unconditionally.
pub(super) fn put_value(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    value: Bytes,
    expiry: SetExpiry,
    now_ms: u64,
) -> Result<(), StoreError> {
    records.update(key, now_ms, &mut |current| {
        Update::Put(with_value(
            current,
            value.clone(),
            expiry,
            node.clock.next(now_ms),
            now_ms,
        ))
    })?;
    Ok(())
}

fn execute_set(node: &Node, records: &dyn Records, set: Set, now_ms: u64) -> Outcome {
    let Set {
        key,
        value,
        condition,
        get,
        expiry,
    } = set;
    let mut old = None;
    let mut written = false;
    let mut wrong_type = false;
    records.update(&key, now_ms, &mut |current| {
        // SET replaces a key of any type; only SET ... GET must read it as a string.
        wrong_type = get && string(current, now_ms).is_err();
        if wrong_type {
            return Update::Keep;
        }
        old = live(current, now_ms).cloned();
        let exists = current.is_some_and(|r| r.is_live(now_ms));
        let allowed = match condition {
            None => true,
            Some(SetCondition::IfAbsent) => !exists,
            Some(SetCondition::IfPresent) => exists,
        };
        written = allowed;
        if !allowed {
            return Update::Keep;
        }
        Update::Put(with_value(
            current,
            value.clone(),
            expiry,
            node.clock.next(now_ms),
            now_ms,
        ))
    })?;
    if wrong_type {
        return Err(CommandError::WrongType.into());
    }
    Ok(match (get, written) {
        (true, _) => lookup_reply(node, old.as_ref()),
        (false, true) => Reply::Ok,
        (false, false) => Reply::Nil,
    })
}

fn execute_getex(
    node: &Node,
    records: &dyn Records,
    key: Bytes,
    expiry: Option<GetExExpiry>,
    now_ms: u64,
) -> Outcome {
    let mut value = None;
    let mut wrong_type = false;
    records.update(&key, now_ms, &mut |current| {
        wrong_type = string(current, now_ms).is_err();
        if wrong_type {
            return Update::Keep;
        }
        value = live(current, now_ms).cloned();
        let (Some(record), Some(expiry)) = (current.filter(|_| value.is_some()), expiry) else {
            return Update::Keep;
        };
        let version = node.clock.next(now_ms);
        match expiry {
            GetExExpiry::Persist if record.expiry_ms.is_none() => Update::Keep,
            GetExExpiry::Persist => Update::Put(Record {
                expiry_ms: None,
                expiry_version: version,
                ..record.clone()
            }),
            GetExExpiry::At(at) => {
                let at_ms = at.absolute_ms(now_ms_signed(now_ms));
                if at_ms <= now_ms_signed(now_ms) {
                    Update::Put(Record::tombstone(version))
                } else {
                    let expiry_ms = Some(at_ms as u64);
                    Update::Put(Record {
                        expiry_ms,
                        expiry_version: version,
                        ..record.clone()
                    })
                }
            }
        }
    })?;
    if wrong_type {
        return Err(CommandError::WrongType.into());
    }
    if value.is_none() {
        // Redis reads the key with `lookupKeyRead` before it writes the expiry.
        crate::notify::emit(crate::notify::Class::KEY_MISS, "keymiss", &key);
    }
    Ok(lookup_reply(node, value.as_ref()))
}

/// Replaces the live value of `key` with what `change` computes from it (`None` when the key
/// does not exist), keeping the key's expiry. `change` returning `Ok(None)` leaves the key
/// untouched. Returns the value stored afterwards, or `change`'s error (nothing written).
pub(super) fn rewrite_value(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    now_ms: u64,
    change: impl FnMut(Option<&Bytes>) -> Result<Option<Bytes>, CommandError>,
) -> Result<Option<Bytes>, ExecError> {
    rewrite_typed_value(node, records, key, now_ms, DataType::String, change)
}

/// As [`rewrite_value`], the value written as `kind` (a string or a HyperLogLog).
pub(super) fn rewrite_typed_value(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    now_ms: u64,
    kind: DataType,
    mut change: impl FnMut(Option<&Bytes>) -> Result<Option<Bytes>, CommandError>,
) -> Result<Option<Bytes>, ExecError> {
    let mut outcome = Ok(None);
    records.update(key, now_ms, &mut |current| {
        let old = match string(current, now_ms) {
            Ok(old) => old,
            Err(e) => {
                outcome = Err(e);
                return Update::Keep;
            }
        };
        match change(old) {
            Err(e) => {
                outcome = Err(ExecError::from(e));
                Update::Keep
            }
            Ok(None) => {
                outcome = Ok(old.cloned());
                Update::Keep
            }
            Ok(Some(new)) => {
                outcome = Ok(Some(new.clone()));
                let version = node.clock.next(now_ms);
                Update::Put(
                    with_value(current, new, SetExpiry::Keep, version, now_ms).with_kind(kind),
                )
            }
        }
    })?;
    outcome
}

/// `SETRANGE`'s new value, or `None` when nothing changes (an empty `value`).
fn setrange(
    old: Option<&Bytes>,
    offset: u64,
    value: &[u8],
    max: u64,
) -> Result<Option<Bytes>, CommandError> {
    if value.is_empty() {
        return Ok(None);
    }
    if offset + value.len() as u64 > max {
        return Err(CommandError::StringTooLong);
    }
    let offset = offset as usize;
    let old = old.map_or(&[][..], |v| v.as_ref());
    let mut new = BytesMut::from(old);
    if new.len() < offset + value.len() {
        new.resize(offset + value.len(), 0);
    }
    new[offset..offset + value.len()].copy_from_slice(value);
    Ok(Some(new.freeze()))
}

/// `GETRANGE`'s slice, with Redis's clamping of negative and out-of-range offsets.
fn substring(value: &Bytes, start: i64, end: i64) -> Bytes {
    let len = value.len() as i64;
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return Bytes::new();
    }
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 {
        (len + end).max(0)
    } else {
        end.min(len - 1)
    };
    if start > end {
        return Bytes::new();
    }
    value.slice(start as usize..=end as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::{node, run, session};

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn set_then_get_returns_the_value() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(run(&node, &mut s, "SET k v"), Reply::Ok);
        assert_eq!(run(&node, &mut s, "GET k"), bulk("v"));
        assert_eq!(run(&node, &mut s, "GET missing"), Reply::Nil);
    }

    #[test]
    fn set_nx_and_xx_respect_existence() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(run(&node, &mut s, "SET k a XX"), Reply::Nil);
        assert_eq!(run(&node, &mut s, "SET k a NX"), Reply::Ok);
        assert_eq!(run(&node, &mut s, "SET k b NX"), Reply::Nil);
        assert_eq!(run(&node, &mut s, "SET k c XX GET"), bulk("a"));
        assert_eq!(run(&node, &mut s, "SETNX k d"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "GET k"), bulk("c"));
    }

    #[test]
    fn keepttl_keeps_a_live_expiry_and_plain_set_clears_it() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET k a EX 100");
        run(&node, &mut s, "SET k b KEEPTTL");
        assert!(matches!(
            run(&node, &mut s, "TTL k"),
            Reply::Integer(99..=100)
        ));
        run(&node, &mut s, "SET k c");
        assert_eq!(run(&node, &mut s, "TTL k"), Reply::Integer(-1));
    }

    #[test]
    fn incr_family_counts_and_refuses_non_integers_and_overflow() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(run(&node, &mut s, "INCR n"), Reply::Integer(1));
        assert_eq!(run(&node, &mut s, "INCRBY n 41"), Reply::Integer(42));
        assert_eq!(run(&node, &mut s, "DECRBY n 50"), Reply::Integer(-8));
        run(&node, &mut s, "SET big 9223372036854775807");
        assert_eq!(
            run(&node, &mut s, "INCR big"),
            Reply::error(CommandError::IncrOverflow)
        );
        run(&node, &mut s, "SET s 012");
        assert_eq!(
            run(&node, &mut s, "INCR s"),
            Reply::error(CommandError::NotIntegerValue)
        );
    }

    #[test]
    fn incr_keeps_the_expiry() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET n 1 EX 100");
        run(&node, &mut s, "INCR n");
        assert!(matches!(
            run(&node, &mut s, "TTL n"),
            Reply::Integer(99..=100)
        ));
    }

    #[test]
    fn incrbyfloat_formats_like_redis() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET f 10.5");
        assert_eq!(run(&node, &mut s, "INCRBYFLOAT f 0.1"), bulk("10.6"));
        assert_eq!(run(&node, &mut s, "INCRBYFLOAT g 5.0e3"), bulk("5000"));
    }

    #[test]
    fn append_and_strlen_grow_the_value() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(run(&node, &mut s, "APPEND k hello"), Reply::Integer(5));
        assert_eq!(run(&node, &mut s, "APPEND k !"), Reply::Integer(6));
        assert_eq!(run(&node, &mut s, "STRLEN k"), Reply::Integer(6));
    }

    #[test]
    fn getrange_clamps_like_redis() {
        let value = Bytes::from_static(b"This is a string");
        assert_eq!(substring(&value, 0, 3), &b"This"[..]);
        assert_eq!(substring(&value, -3, -1), &b"ing"[..]);
        assert_eq!(substring(&value, 0, -1), value);
        assert_eq!(substring(&value, 10, 100), &b"string"[..]);
        assert_eq!(substring(&value, 5, 3), &b""[..]);
        assert_eq!(substring(&value, -1, -5), &b""[..]);
    }

    #[test]
    fn setrange_pads_with_zero_bytes() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(run(&node, &mut s, "SETRANGE k 3 ab"), Reply::Integer(5));
        assert_eq!(
            run(&node, &mut s, "GET k"),
            Reply::Bulk(Bytes::from_static(b"\0\0\0ab"))
        );
        assert_eq!(run(&node, &mut s, "SETRANGE empty 3 "), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "EXISTS empty"), Reply::Integer(0));
    }

    #[test]
    fn getdel_removes_and_getex_persist_clears_the_expiry() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET k v EX 100");
        assert_eq!(run(&node, &mut s, "GETEX k PERSIST"), bulk("v"));
        assert_eq!(run(&node, &mut s, "TTL k"), Reply::Integer(-1));
        assert_eq!(run(&node, &mut s, "GETDEL k"), bulk("v"));
        assert_eq!(run(&node, &mut s, "GET k"), Reply::Nil);
    }

    #[test]
    fn msetnx_sets_nothing_when_one_key_exists() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET b 1");
        assert_eq!(run(&node, &mut s, "MSETNX a 1 b 2"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "EXISTS a"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "MSETNX a 1 c 2"), Reply::Integer(1));
    }
}
