//! Hash commands. A hash is a collection of field cells (`ringcache_storage::collection`);
//! the executor (`src/exec/hash.rs`) reads and edits it.
//!
//! # Format
//! ```text
//! HSET key field value [field value ...]   HGET key field   HDEL key field [field ...]
//! HLEN key                                 HGETALL key
//! ```

use bytes::Bytes;

use super::Command;
use super::args::{ArgCursor, CommandError};

/// A hash command.
#[derive(Debug, Clone, PartialEq)]
pub enum HashCommand {
    /// `HSET key field value [field value ...]`: answers the fields added.
    Set {
        /// The key.
        key: Bytes,
        /// Fields and values, in order (a later repeat of a field wins).
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// `HGET key field`
    Get {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
    },
    /// `HDEL key field [field ...]`: answers the fields removed.
    Del {
        /// The key.
        key: Bytes,
        /// The fields.
        fields: Vec<Bytes>,
    },
    /// `HLEN key`
    Len(Bytes),
    /// `HGETALL key`: fields and values (a map in RESP3).
    GetAll(Bytes),
}

fn hash(command: HashCommand) -> Result<Command, CommandError> {
    Ok(Command::Hash(command))
}

/// # Format
/// `HSET key field value [field value ...]`: an odd count of field/value words is an arity
/// error, as Redis's.
pub(super) fn hset(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let pairs = cur.pairs().ok_or(CommandError::WrongArity(cur.name()))?;
    hash(HashCommand::Set { key, pairs })
}

/// # Format
/// `HGET key field`
pub(super) fn hget(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let field = cur.required()?;
    hash(HashCommand::Get { key, field })
}

/// # Format
/// `HDEL key field [field ...]`
pub(super) fn hdel(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    hash(HashCommand::Del {
        key,
        fields: cur.rest(),
    })
}

/// # Format
/// `HLEN key`
pub(super) fn hlen(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    hash(HashCommand::Len(cur.required()?))
}

/// # Format
/// `HGETALL key`
pub(super) fn hgetall(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    hash(HashCommand::GetAll(cur.required()?))
}
