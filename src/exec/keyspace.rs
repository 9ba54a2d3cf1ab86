//! Key commands: existence, deletion, expiry, iteration.

use bytes::Bytes;
use ringcache_resp::Reply;
use ringcache_resp::cmd::{Command, Expire, ExpireCondition, Scan, TimeUnit};
use ringcache_resp::glob::glob_match;
use ringcache_storage::{Record, StoreError, Update};

use super::strings::exists;
use super::{Outcome, Records, now_ms_signed};
use crate::node::Node;
use crate::notify::{self, Class};

/// Most keys one `SCAN` call visits, whatever COUNT says, so one call cannot stall a worker.
const SCAN_COUNT_MAX: usize = 100_000;

/// Executes a keyspace command.
pub fn execute(
    node: &Node,
    records: &dyn Records,
    command: Command,
    now_ms: u64,
    touch: bool,
) -> Outcome {
    Ok(match command {
        Command::Del(keys) | Command::Unlink(keys) => {
            let mut deleted = 0;
            for key in &keys {
                deleted += i64::from(delete(node, records, key, now_ms)?);
            }
            Reply::Integer(deleted)
        }
        Command::Object(object) => return super::introspect::object(node, records, object, now_ms),
        Command::Rename {
            source,
            destination,
            nx,
        } => return super::rename::rename(node, records, [&source, &destination], nx, now_ms),
        Command::Copy {
            source,
            destination,
            replace,
        } => {
            let keys = [&source[..], &destination[..]];
            return super::rename::copy(node, records, keys, replace, now_ms, touch);
        }
        Command::Exists(keys) => Reply::Integer(
            keys.iter()
                .filter(|key| exists(records, key, now_ms))
                .count() as i64,
        ),
        // TOUCH is a read that counts as an access, even in CLIENT NO-TOUCH mode (as Redis).
        Command::Touch(keys) => Reply::Integer(
            keys.iter()
                .filter(|key| records.get(key, now_ms).is_some_and(|r| r.is_live(now_ms)))
                .count() as i64,
        ),
        Command::Type(key) => Reply::Simple(
            records
                .peek(&key, now_ms)
                .filter(|r| r.is_live(now_ms))
                .map_or("none", |r| r.kind.name()),
        ),
        Command::Expire(expire) => execute_expire(node, records, expire, now_ms)?,
        Command::Ttl { key, unit } => {
            let record = records.peek(&key, now_ms).filter(|r| r.is_live(now_ms));
            Reply::Integer(match record.map(|r| r.expiry_ms) {
                None => -2,
                Some(None) => -1,
                Some(Some(at)) => {
                    let left_ms = at.saturating_sub(now_ms) as i64;
                    match unit {
                        TimeUnit::Millis => left_ms,
                        TimeUnit::Seconds => (left_ms + 500) / 1000,
                    }
                }
            })
        }
        Command::ExpireTime { key, unit } => {
            let record = records.peek(&key, now_ms).filter(|r| r.is_live(now_ms));
            Reply::Integer(match record.map(|r| r.expiry_ms) {
                None => -2,
                Some(None) => -1,
                // Rounded to the nearest second, as Redis's ttlGenericCommand does.
                Some(Some(at)) => match unit {
                    TimeUnit::Millis => at as i64,
                    TimeUnit::Seconds => (at as i64 + 500) / 1000,
                },
            })
        }
        Command::Persist(key) => {
            let mut changed = false;
            records.update(&key, now_ms, &mut |current| match current
                .filter(|r| r.is_live(now_ms) && r.expiry_ms.is_some())
            {
                Some(record) => {
                    changed = true;
                    let version = node.clock.next(now_ms);
                    Update::Put(Record {
                        expiry_ms: None,
                        expiry_version: version,
                        ..record.clone()
                    })
                }
                None => Update::Keep,
            })?;
            Reply::Integer(i64::from(changed))
        }
        Command::Keys(pattern) => {
            let mut keys = Vec::new();
            let mut cursor = 0;
            loop {
                cursor = node
                    .store
                    .scan(cursor, SCAN_COUNT_MAX, now_ms, &mut |key, record| {
                        if record.is_live(now_ms) && glob_match(&pattern, key, false) {
                            keys.push(Reply::Bulk(key.clone()));
                        }
                    });
                if cursor == 0 {
                    break;
                }
            }
            Reply::Array(keys)
        }
        Command::Scan(scan) => execute_scan(node, scan, now_ms),
        Command::RandomKey => {
            let key = node.store.random_key(rand::random(), now_ms);
            key.map_or(Reply::Nil, Reply::Bulk)
        }
        _ => super::misrouted("keyspace"),
    })
}

/// Deletes `key` if it holds a live value; returns whether it did.
pub(super) fn delete(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    now_ms: u64,
) -> Result<bool, StoreError> {
    let mut deleted = false;
    records.update(key, now_ms, &mut |current| {
        deleted = current.is_some_and(|r| r.is_live(now_ms));
        if deleted {
            Update::Put(Record::tombstone(node.clock.next(now_ms)))
        } else {
            Update::Keep
        }
    })?;
    Ok(deleted)
}

fn execute_expire(
    node: &Node,
    records: &dyn Records,
    expire: Expire,
    now_ms: u64,
) -> Result<Reply, StoreError> {
    let Expire { key, at, condition } = expire;
    let now = now_ms_signed(now_ms);
    let at_ms = at.absolute_ms(now);
    let mut applied = false;
    records.update(&key, now_ms, &mut |current| {
        let Some(record) = current.filter(|r| r.is_live(now_ms)) else {
            return Update::Keep;
        };
        // No expiry counts as an infinite one for GT and LT, as in Redis.
        let allowed = match (condition, record.expiry_ms) {
            (None, _) => true,
            (Some(ExpireCondition::Nx), current) => current.is_none(),
            (Some(ExpireCondition::Xx), current) => current.is_some(),
            (Some(ExpireCondition::Gt), None) => false,
            (Some(ExpireCondition::Gt), Some(current)) => at_ms > current as i64,
            (Some(ExpireCondition::Lt), None) => true,
            (Some(ExpireCondition::Lt), Some(current)) => at_ms < current as i64,
            (Some(ExpireCondition::XxLt), None) => false,
            (Some(ExpireCondition::XxLt), Some(current)) => at_ms < current as i64,
        };
        applied = allowed;
        if !allowed {
            return Update::Keep;
        }
        let version = node.clock.next(now_ms);
        if at_ms <= now {
            Update::Put(Record::tombstone(version))
        } else {
            Update::Put(Record {
                expiry_ms: Some(at_ms as u64),
                expiry_version: version,
                ..record.clone()
            })
        }
    })?;
    if applied {
        // A time in the past deletes the key: Redis sends `del`, not `expire`.
        let event = if at_ms <= now { "del" } else { "expire" };
        notify::emit(Class::GENERIC, event, &key);
    }
    Ok(Reply::Integer(i64::from(applied)))
}

fn execute_scan(node: &Node, scan: Scan, now_ms: u64) -> Reply {
    let Scan {
        cursor,
        pattern,
        count,
        type_filter,
    } = scan;
    let wants = |kind: ringcache_storage::DataType| {
        type_filter
            .as_deref()
            .is_none_or(|t| t.eq_ignore_ascii_case(kind.name().as_bytes()))
    };
    let mut keys = Vec::new();
    let next = node.store.scan(
        cursor,
        count.clamp(1, SCAN_COUNT_MAX),
        now_ms,
        &mut |key, record| {
            let matches = pattern.as_ref().is_none_or(|p| glob_match(p, key, false));
            if wants(record.kind) && matches && record.is_live(now_ms) {
                keys.push(Reply::Bulk(key.clone()));
            }
        },
    );
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(keys),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::{node, run, session};

    #[test]
    fn del_counts_only_keys_that_existed() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "MSET a 1 b 2");
        assert_eq!(run(&node, &mut s, "DEL a b c"), Reply::Integer(2));
        assert_eq!(run(&node, &mut s, "EXISTS a b"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "DBSIZE"), Reply::Integer(0));
    }

    #[test]
    fn exists_counts_repeated_keys_each_time() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET a 1");
        assert_eq!(run(&node, &mut s, "EXISTS a a b"), Reply::Integer(2));
    }

    #[test]
    fn expire_conditions_follow_redis() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET k v");
        assert_eq!(run(&node, &mut s, "EXPIRE k 100 XX"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "EXPIRE k 100 GT"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "EXPIRE k 100 NX"), Reply::Integer(1));
        assert_eq!(run(&node, &mut s, "EXPIRE k 50 GT"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "EXPIRE k 50 LT"), Reply::Integer(1));
        assert!(matches!(
            run(&node, &mut s, "TTL k"),
            Reply::Integer(49..=50)
        ));
        assert_eq!(run(&node, &mut s, "PERSIST k"), Reply::Integer(1));
        assert_eq!(run(&node, &mut s, "PERSIST k"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "TTL k"), Reply::Integer(-1));
        assert_eq!(run(&node, &mut s, "TTL nothing"), Reply::Integer(-2));
    }

    #[test]
    fn expire_in_the_past_deletes_the_key() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET k v");
        assert_eq!(run(&node, &mut s, "EXPIRE k -1"), Reply::Integer(1));
        assert_eq!(run(&node, &mut s, "EXISTS k"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "EXPIRE k 10"), Reply::Integer(0));
    }

    #[test]
    fn a_key_past_its_expiry_reads_as_absent() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET k v PX 1");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(run(&node, &mut s, "GET k"), Reply::Nil);
        assert_eq!(run(&node, &mut s, "TTL k"), Reply::Integer(-2));
    }

    #[test]
    fn keys_and_a_full_scan_return_every_matching_key_once() {
        let node = node();
        let mut s = session(&node);
        for i in 0..500 {
            run(&node, &mut s, &format!("SET user:{i} x"));
        }
        run(&node, &mut s, "SET other x");
        let Reply::Array(keys) = run(&node, &mut s, "KEYS user:*") else {
            panic!()
        };
        assert_eq!(keys.len(), 500);
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        for _ in 0..1000 {
            let reply = run(
                &node,
                &mut s,
                &format!("SCAN {cursor} MATCH user:* COUNT 7"),
            );
            let Reply::Array(parts) = reply else { panic!() };
            let (Reply::Bulk(next), Reply::Array(keys)) = (&parts[0], &parts[1]) else {
                panic!()
            };
            for key in keys {
                let Reply::Bulk(key) = key else { panic!() };
                seen.insert(key.clone());
            }
            cursor = String::from_utf8(next.to_vec()).unwrap();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(cursor, "0");
        assert_eq!(seen.len(), 500);
    }

    #[test]
    fn scan_with_another_type_finds_nothing() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET k v");
        let reply = run(&node, &mut s, "SCAN 0 TYPE list");
        assert_eq!(
            reply,
            Reply::Array(vec![
                Reply::Bulk(Bytes::from_static(b"0")),
                Reply::Array(vec![])
            ])
        );
    }

    #[test]
    fn randomkey_returns_a_live_key_or_nil() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(run(&node, &mut s, "RANDOMKEY"), Reply::Nil);
        run(&node, &mut s, "SET only v");
        assert_eq!(
            run(&node, &mut s, "RANDOMKEY"),
            Reply::Bulk(Bytes::from_static(b"only"))
        );
    }
}
