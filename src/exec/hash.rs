//! The hash commands, with Redis 7.0's replies; a hash is a collection of field cells
//! ([`super::collection`]), so writes of different fields through different nodes merge.

use ringcache_resp::Reply;
use ringcache_resp::cmd::HashCommand;
use ringcache_storage::DataType;

use super::collection::{self, read};
use super::{Outcome, Records};
use crate::node::Node;

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
                    .filter(|(field, value)| edit.put(field.clone(), value.clone()))
                    .count())
            })?;
            Reply::Integer(added as i64)
        }
        HashCommand::Get { key, field } => {
            let hash = read(records, &key, HASH, now_ms, touch)?;
            let value = hash.as_ref().and_then(|h| h.get(&field));
            super::lookup_reply(node, value)
        }
        HashCommand::Del { key, fields } => {
            let removed = collection::update(node, records, &key, HASH, now_ms, |edit| {
                Ok(fields.iter().filter(|field| edit.remove(field)).count())
            })?;
            Reply::Integer(removed as i64)
        }
        HashCommand::Len(key) => {
            let hash = read(records, &key, HASH, now_ms, touch)?;
            Reply::Integer(hash.map_or(0, |h| h.live_count()) as i64)
        }
        HashCommand::GetAll(key) => {
            let hash = read(records, &key, HASH, now_ms, touch)?;
            Reply::Map(
                hash.iter()
                    .flat_map(|h| h.live())
                    .map(|(f, v)| (Reply::Bulk(f.clone()), Reply::Bulk(v.clone())))
                    .collect(),
            )
        }
    })
}
