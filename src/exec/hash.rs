//! The hash commands, with Redis 7.0's replies; a hash is a collection of field cells
//! ([`super::collection`]), so writes of different fields through different nodes merge.

use bytes::Bytes;
use rand::Rng;
use ringcache_resp::cmd::{HashCommand, ScanOptions};
use ringcache_resp::float::incr_by_float_text;
use ringcache_resp::glob::glob_match;
use ringcache_resp::parser::string2ll;
use ringcache_resp::{CommandError, Reply};
use ringcache_storage::{Collection, DataType};

use super::collection::{self, read};
use super::{Outcome, Records, copied_bulk, copied_bulks};
use crate::node::Node;
use crate::notify::{self, Class};

const HASH: DataType = DataType::Hash;

/// Executes a hash command. `touch` says whether reads count as accesses for eviction.
pub fn execute(
    node: &Node,
    records: &dyn Records,
    command: HashCommand,
    now_ms: u64,
    touch: bool,
) -> Outcome {
    Ok(match command {
        HashCommand::Set { key, pairs } => {
            let added = collection::update(node, records, &key, HASH, now_ms, |edit| {
                Ok(pairs
                    .iter()
                    .filter(|(field, value)| edit.put(field, value))
                    .count())
            })?;
            notify::emit(Class::HASH, "hset", &key);
            Reply::Integer(added as i64)
        }
        HashCommand::Get { key, field } => {
            let hash = read(records, &key, HASH, now_ms, touch)?;
            let value = hash.as_ref().and_then(|h| h.get(&field));
            super::lookup_reply(node, value.map(Bytes::copy_from_slice).as_ref())
        }
        HashCommand::Del { key, fields } => {
            let removed = collection::update(node, records, &key, HASH, now_ms, |edit| {
                Ok(fields.iter().filter(|field| edit.remove(field)).count())
            })?;
            if removed > 0 {
                notify::emit(Class::HASH, "hdel", &key);
            }
            Reply::Integer(removed as i64)
        }
        HashCommand::Len(key) => {
            let hash = read(records, &key, HASH, now_ms, touch)?;
            Reply::Integer(hash.map_or(0, |h| h.live_count()) as i64)
        }
        HashCommand::GetAll(key) => {
            let hash = read(records, &key, HASH, now_ms, touch)?;
            let flat = hash.iter().flat_map(|h| h.live()).flat_map(|(f, v)| [f, v]);
            let mut flat = copied_bulks(flat).into_iter();
            Reply::Map(std::iter::from_fn(|| Some((flat.next()?, flat.next()?))).collect())
        }
        HashCommand::SetNx { key, field, value } => {
            let added = collection::update(node, records, &key, HASH, now_ms, |edit| {
                Ok(edit.get(&field).is_none() && edit.put(&field, &value))
            })?;
            if added {
                notify::emit(Class::HASH, "hset", &key);
            }
            Reply::Integer(i64::from(added))
        }
        HashCommand::MGet { key, fields } => {
            let hash = read(records, &key, HASH, now_ms, touch)?;
            let value = |f: &Bytes| hash.as_ref().and_then(|h| h.get(f));
            Reply::Array(
                fields
                    .iter()
                    .map(|f| value(f).map_or(Reply::Nil, copied_bulk))
                    .collect(),
            )
        }
        HashCommand::MSet { key, pairs } => {
            collection::update(node, records, &key, HASH, now_ms, |edit| {
                for (field, value) in &pairs {
                    edit.put(field, value);
                }
                Ok(())
            })?;
            notify::emit(Class::HASH, "hset", &key);
            Reply::Ok
        }
        HashCommand::Exists { key, field } => {
            let hash = read(records, &key, HASH, now_ms, touch)?;
            Reply::Integer(i64::from(hash.is_some_and(|h| h.get(&field).is_some())))
        }
        HashCommand::StrLen { key, field } => {
            let hash = read(records, &key, HASH, now_ms, touch)?;
            let len = hash
                .as_ref()
                .and_then(|h| h.get(&field))
                .map_or(0, <[u8]>::len);
            Reply::Integer(len as i64)
        }
        HashCommand::Keys(key) => {
            let hash = read(records, &key, HASH, now_ms, touch)?;
            let keys = hash.iter().flat_map(|h| h.live()).map(|(f, _)| f);
            Reply::Array(copied_bulks(keys))
        }
        HashCommand::Vals(key) => {
            let hash = read(records, &key, HASH, now_ms, touch)?;
            let values = hash.iter().flat_map(|h| h.live()).map(|(_, v)| v);
            Reply::Array(copied_bulks(values))
        }
        HashCommand::IncrBy { key, field, delta } => {
            let sum = collection::update(node, records, &key, HASH, now_ms, |edit| {
                let current = match edit.get(&field) {
                    None => 0,
                    Some(v) => string2ll(v).ok_or(CommandError::HashValueNotInteger)?,
                };
                let sum = current
                    .checked_add(delta)
                    .ok_or(CommandError::IncrOverflow)?;
                edit.put(field.clone(), Bytes::from(sum.to_string()));
                Ok(sum)
            })?;
            notify::emit(Class::HASH, "hincrby", &key);
            Reply::Integer(sum)
        }
        HashCommand::IncrByFloat { key, field, delta } => {
            let text = collection::update(node, records, &key, HASH, now_ms, |edit| {
                // The increment was checked when parsed: a float error is the field's.
                let text = incr_by_float_text(edit.get(&field), &delta).map_err(|e| match e {
                    CommandError::NotFloat => CommandError::HashValueNotFloat,
                    e => e,
                })?;
                edit.put(&field, &text);
                Ok(text)
            })?;
            notify::emit(Class::HASH, "hincrbyfloat", &key);
            Reply::Bulk(text)
        }
        HashCommand::Scan {
            key,
            cursor,
            options,
        } => {
            // Redis answers a missing key and WRONGTYPE before it reads the options.
            let hash = read(records, &key, HASH, now_ms, touch)?;
            scan_reply(hash.as_ref(), cursor, options)?
        }
        HashCommand::RandField {
            key,
            count,
            with_values,
        } => {
            let hash = read(records, &key, HASH, now_ms, touch)?;
            random_fields(hash.as_ref(), count, with_values)
        }
    })
}

/// Collections up to this many elements are scanned in one call with cursor 0, as Redis
/// scans a small (listpack) hash, set or sorted set whole whatever the `COUNT`.
pub const SCAN_WHOLE_MAX: usize = 128;

/// An `HSCAN` reply: a small hash whole with cursor 0 (as Redis answers a listpack hash), a
/// larger one a page at a time ([`collection::scan_page`]).
fn scan_reply(
    hash: Option<&Collection>,
    cursor: u64,
    options: Result<ScanOptions, CommandError>,
) -> Result<Reply, CommandError> {
    let Some(hash) = hash else {
        return Ok(Reply::Array(vec![bulk("0"), Reply::Array(Vec::new())]));
    };
    let scan = options?;
    let fields = hash
        .live()
        .map(|(f, v)| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)));
    let (next, page) = match hash.live_count() <= SCAN_WHOLE_MAX {
        true => (0, fields.collect()),
        false => collection::scan_page(fields, cursor, scan.count),
    };
    let items = page
        .into_iter()
        .filter(|(field, _)| {
            scan.pattern
                .as_ref()
                .is_none_or(|p| glob_match(p, field, false))
        })
        .flat_map(|(field, value)| [Reply::Bulk(field), Reply::Bulk(value)])
        .collect();
    Ok(Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(items),
    ]))
}

/// `HRANDFIELD`: one field (nil when none), `count` distinct fields (at most all), or with
/// a negative count that many picks with repeats; `WITHVALUES` pairs each with its value
/// (a pair array each in RESP3, as Redis).
fn random_fields(hash: Option<&Collection>, count: Option<i64>, with_values: bool) -> Reply {
    let fields: Vec<(&[u8], &[u8])> = hash.iter().flat_map(|h| h.live()).collect();
    let mut rng = rand::rng();
    let Some(count) = count else {
        return match fields.is_empty() {
            true => Reply::Nil,
            false => copied_bulk(fields[rng.random_range(0..fields.len())].0),
        };
    };
    let picks: Vec<(&[u8], &[u8])> = if count < 0 {
        if fields.is_empty() {
            Vec::new()
        } else {
            (0..count.unsigned_abs())
                .map(|_| fields[rng.random_range(0..fields.len())])
                .collect()
        }
    } else {
        let n = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(fields.len());
        rand::seq::index::sample(&mut rng, fields.len(), n)
            .into_iter()
            .map(|i| fields[i])
            .collect()
    };
    match with_values {
        true => Reply::Pairs(
            picks
                .into_iter()
                .map(|(f, v)| (copied_bulk(f), copied_bulk(v)))
                .collect(),
        ),
        false => Reply::Array(picks.into_iter().map(|(f, _)| copied_bulk(f)).collect()),
    }
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}
