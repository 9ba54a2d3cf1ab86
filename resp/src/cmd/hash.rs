//! Hash commands. A hash is a collection of field cells (`ringcache_storage::collection`);
//! the executor (`src/exec/hash.rs`) reads and edits it.
//!
//! # Format
//! ```text
//! HSET key field value [field value ...]   HGET key field   HDEL key field [field ...]
//! HLEN key                                 HGETALL key
//! HSETNX key field value                   HMGET key field [field ...]
//! HMSET key field value [field value ...]  HEXISTS key field   HSTRLEN key field
//! HKEYS key   HVALS key                    HINCRBY key field increment
//! HINCRBYFLOAT key field increment         HSCAN key cursor [MATCH pattern] [COUNT count]
//! HRANDFIELD key [count [WITHVALUES]]
//! ```

use bytes::Bytes;

use super::Command;
use super::args::{ArgCursor, CommandError, is, parse_i64};
use super::keyspace::{ScanOptions, parse_cursor, scan_options};
use crate::float::check_float;

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
    /// `HSETNX key field value`
    SetNx {
        /// The key.
        key: Bytes,
        /// The field, written only if absent.
        field: Bytes,
        /// Its value.
        value: Bytes,
    },
    /// `HMGET key field [field ...]`
    MGet {
        /// The key.
        key: Bytes,
        /// The fields.
        fields: Vec<Bytes>,
    },
    /// `HMSET key field value [field value ...]`: `HSET` answering `OK`.
    MSet {
        /// The key.
        key: Bytes,
        /// Fields and values.
        pairs: Vec<(Bytes, Bytes)>,
    },
    /// `HEXISTS key field`
    Exists {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
    },
    /// `HSTRLEN key field`
    StrLen {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
    },
    /// `HKEYS key`
    Keys(Bytes),
    /// `HVALS key`
    Vals(Bytes),
    /// `HINCRBY key field increment`
    IncrBy {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
        /// Added to the field's integer value (0 when absent).
        delta: i64,
    },
    /// `HINCRBYFLOAT key field increment` (the increment checked as a finite float)
    IncrByFloat {
        /// The key.
        key: Bytes,
        /// The field.
        field: Bytes,
        /// The increment's text, added in `long double` as `INCRBYFLOAT` does.
        delta: Bytes,
    },
    /// `HSCAN key cursor [MATCH pattern] [COUNT count]`
    Scan {
        /// The key.
        key: Bytes,
        /// Where to resume: the number of fields already returned, in field order.
        cursor: u64,
        /// The options, or their error, which Redis answers only for an existing hash.
        options: Result<ScanOptions, CommandError>,
    },
    /// `HRANDFIELD key [count [WITHVALUES]]`
    RandField {
        /// The key.
        key: Bytes,
        /// `None`: one field as a bulk; negative: repeats allowed.
        count: Option<i64>,
        /// `WITHVALUES`
        with_values: bool,
    },
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

/// # Format
/// `HSETNX key field value`
pub(super) fn hsetnx(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let (key, field, value) = (cur.required()?, cur.required()?, cur.required()?);
    hash(HashCommand::SetNx { key, field, value })
}

/// # Format
/// `HMGET key field [field ...]`
pub(super) fn hmget(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    hash(HashCommand::MGet {
        key,
        fields: cur.rest(),
    })
}

/// # Format
/// `HMSET key field value [field value ...]`
pub(super) fn hmset(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let pairs = cur.pairs().ok_or(CommandError::WrongArity(cur.name()))?;
    hash(HashCommand::MSet { key, pairs })
}

/// # Format
/// `HEXISTS key field`
pub(super) fn hexists(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let (key, field) = (cur.required()?, cur.required()?);
    hash(HashCommand::Exists { key, field })
}

/// # Format
/// `HSTRLEN key field`
pub(super) fn hstrlen(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let (key, field) = (cur.required()?, cur.required()?);
    hash(HashCommand::StrLen { key, field })
}

/// # Format
/// `HKEYS key`
pub(super) fn hkeys(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    hash(HashCommand::Keys(cur.required()?))
}

/// # Format
/// `HVALS key`
pub(super) fn hvals(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    hash(HashCommand::Vals(cur.required()?))
}

/// # Format
/// `HINCRBY key field increment`: the increment is checked before the key is read, as Redis.
pub(super) fn hincrby(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let (key, field) = (cur.required()?, cur.required()?);
    let delta = cur.required_i64()?;
    hash(HashCommand::IncrBy { key, field, delta })
}

/// # Format
/// `HINCRBYFLOAT key field increment`: a float (`ERR value is not a valid float`) that is
/// finite (`ERR value is NaN or Infinity`), checked before the key is read.
pub(super) fn hincrbyfloat(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let (key, field, delta) = (cur.required()?, cur.required()?, cur.required()?);
    check_float(&delta)?;
    if is_infinite(&delta) {
        return Err(CommandError::NanOrInfinityArgument);
    }
    hash(HashCommand::IncrByFloat { key, field, delta })
}

/// Whether a valid float text is an infinity (`inf`, `-Infinity`, or a decimal beyond
/// `long double`, which `check_float` already refused).
fn is_infinite(text: &[u8]) -> bool {
    let unsigned = text
        .strip_prefix(b"-")
        .or_else(|| text.strip_prefix(b"+"))
        .unwrap_or(text);
    unsigned.eq_ignore_ascii_case(b"inf") || unsigned.eq_ignore_ascii_case(b"infinity")
}

/// # Format
/// `HSCAN key cursor [MATCH pattern] [COUNT count]`
pub(super) fn hscan(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let cursor = parse_cursor(&cur.required()?).ok_or(CommandError::InvalidCursor)?;
    let options = scan_options(cur);
    // An error leaves arguments unread; they belong to the deferred error.
    cur.skip_rest();
    hash(HashCommand::Scan {
        key,
        cursor,
        options,
    })
}

/// # Format
/// `HRANDFIELD key [count [WITHVALUES]]`: a count of `i64::MIN`, or one whose doubling for
/// `WITHVALUES` overflows, is out of range, with Redis's texts.
pub(super) fn hrandfield(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let count = cur.next().map(|c| parse_i64(&c)).transpose()?;
    let with_values = match cur.next() {
        None => false,
        Some(word) if is(&word, "withvalues") && count.is_some() => true,
        Some(_) => return Err(CommandError::Syntax),
    };
    cur.finish()?;
    if count == Some(i64::MIN) {
        return Err(CommandError::CountOutOfRange);
    }
    if with_values && count.is_some_and(|c| c.unsigned_abs() > (i64::MAX / 2) as u64) {
        return Err(CommandError::ValueOutOfRange);
    }
    hash(HashCommand::RandField {
        key,
        count,
        with_values,
    })
}
