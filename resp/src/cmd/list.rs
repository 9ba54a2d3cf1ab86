//! List commands. A list is a collection whose cells are keyed by a position
//! (`ringcache_storage::collection`); the executor (`src/exec/list.rs`) reads and edits it and
//! documents how positions are made.
//!
//! # Format
//! ```text
//! LPUSH key element [element ...]        RPUSH key element [element ...]
//! LPUSHX key element [element ...]       RPUSHX key element [element ...]
//! LPOP key [count]                       RPOP key [count]
//! LLEN key                               LRANGE key start stop
//! LINDEX key index                       LSET key index element
//! LREM key count element                 LTRIM key start stop
//! LINSERT key BEFORE|AFTER pivot element
//! LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
//! LMOVE source destination LEFT|RIGHT LEFT|RIGHT
//! RPOPLPUSH source destination
//! LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
//! BLPOP key [key ...] timeout            BRPOP key [key ...] timeout
//! BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout
//! BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
//! ```
//!
//! A blocking command's `timeout` is in seconds, a float (`0`: wait forever), read as Redis
//! reads it ([`crate::float::parse_timeout_ms`]) into milliseconds. `BLPOP`/`BRPOP` read it
//! before their keys, `BLMOVE` after its two ends, `BLMPOP` after its count, keys, end and
//! `COUNT`: so when two arguments are wrong, the error is the one Redis answers.
//!
//! Errors come in Redis 7.0's order: what the parser finds (syntax, integers, `RANK 0`) before
//! the key is looked at, except `LINDEX` and `LSET`, whose index Redis reads only after the
//! key (so `LSET missing x v` is `no such key`): their index is kept as given here and
//! checked by the executor.

use bytes::Bytes;

use super::Command;
use super::args::{ArgCursor, CommandError, is, parse_i64};
use crate::float::parse_timeout_ms;

/// An end of a list: `LEFT` is the head (index 0), `RIGHT` the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListEnd {
    /// The head: `LPUSH`, `LPOP`, `LEFT`.
    Left,
    /// The tail: `RPUSH`, `RPOP`, `RIGHT`.
    Right,
}

/// A list command.
#[derive(Debug, Clone, PartialEq)]
pub enum ListCommand {
    /// `LPUSH`, `RPUSH`, `LPUSHX`, `RPUSHX`: answers the length after the push.
    Push {
        /// The key.
        key: Bytes,
        /// Where the elements go; `LPUSH a b c` leaves `c b a` at the head.
        end: ListEnd,
        /// `LPUSHX`/`RPUSHX`: push only onto an existing list (a missing key answers 0).
        only_if_exists: bool,
        /// The elements, at least one.
        elements: Vec<Bytes>,
    },
    /// `LPOP key [count]`, `RPOP key [count]`.
    Pop {
        /// The key.
        key: Bytes,
        /// Which end.
        end: ListEnd,
        /// `None`: one element, answered as a bulk; `Some(n)`: up to `n`, as an array.
        count: Option<u64>,
    },
    /// `LLEN key`
    Len(Bytes),
    /// `LRANGE key start stop`: indices count from 0, negative ones from the end.
    Range {
        /// The key.
        key: Bytes,
        /// First index.
        start: i64,
        /// Last index (inclusive).
        stop: i64,
    },
    /// `LINDEX key index`
    Index {
        /// The key.
        key: Bytes,
        /// The index; `None` when it is not an integer, an error only if the key is a list.
        index: Option<i64>,
    },
    /// `LSET key index element`
    Set {
        /// The key.
        key: Bytes,
        /// The index; `None` when it is not an integer, an error once the key is found.
        index: Option<i64>,
        /// The new element.
        element: Bytes,
    },
    /// `LREM key count element`: `count` > 0 removes from the head, < 0 from the tail, 0 all.
    Rem {
        /// The key.
        key: Bytes,
        /// How many, and from which end.
        count: i64,
        /// The element to remove.
        element: Bytes,
    },
    /// `LTRIM key start stop`: keeps the elements from `start` to `stop`.
    Trim {
        /// The key.
        key: Bytes,
        /// First index kept.
        start: i64,
        /// Last index kept (inclusive).
        stop: i64,
    },
    /// `LINSERT key BEFORE|AFTER pivot element`: answers the length, -1 without the pivot,
    /// 0 without the key.
    Insert {
        /// The key.
        key: Bytes,
        /// `AFTER` (true) or `BEFORE`.
        after: bool,
        /// The element to insert next to (its first occurrence from the head).
        pivot: Bytes,
        /// The element to insert.
        element: Bytes,
    },
    /// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`
    Pos {
        /// The key.
        key: Bytes,
        /// The element to look for.
        element: Bytes,
        /// Which match to start from (1 the first; negative counts from the tail); never 0.
        rank: i64,
        /// `COUNT`: answer an array of up to this many indices (0: all); `None` answers one
        /// index or nil.
        count: Option<u64>,
        /// Compare at most this many elements (0: all).
        maxlen: u64,
    },
    /// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT` and `RPOPLPUSH source destination`
    /// (`RIGHT LEFT`).
    Move {
        /// The list popped from.
        source: Bytes,
        /// The list pushed onto (may be `source`: the list rotates).
        destination: Bytes,
        /// The end of `source`.
        from: ListEnd,
        /// The end of `destination`.
        to: ListEnd,
    },
    /// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`: pops from the first
    /// non-empty list.
    MPop {
        /// The keys, in the order they are tried.
        keys: Vec<Bytes>,
        /// Which end.
        end: ListEnd,
        /// At most this many elements (at least 1).
        count: u64,
    },
    /// `BLPOP key [key ...] timeout`, `BRPOP ...`: pops one element from the first
    /// non-empty list and answers `[key, element]`; the null array when there is none (then
    /// the connection blocks, see `src/exec/blocking.rs`).
    BPop {
        /// The keys, in the order they are tried (repeats kept, as given).
        keys: Vec<Bytes>,
        /// Which end.
        end: ListEnd,
        /// How long to block, in milliseconds; 0 is forever.
        timeout_ms: u64,
    },
    /// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`: `LMPOP`, blocking.
    BMPop {
        /// The keys, in the order they are tried.
        keys: Vec<Bytes>,
        /// Which end.
        end: ListEnd,
        /// At most this many elements (at least 1).
        count: u64,
        /// How long to block, in milliseconds; 0 is forever.
        timeout_ms: u64,
    },
    /// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`: `LMOVE`, blocking while
    /// `source` is empty; its timeout answers the null array (not `LMOVE`'s null), as Redis.
    BMove {
        /// The list popped from, the only key waited on.
        source: Bytes,
        /// The list pushed onto.
        destination: Bytes,
        /// The end of `source`.
        from: ListEnd,
        /// The end of `destination`.
        to: ListEnd,
        /// How long to block, in milliseconds; 0 is forever.
        timeout_ms: u64,
    },
}

impl ListCommand {
    /// A blocking command's timeout in milliseconds (0: forever); `None` for a command that
    /// never blocks.
    pub fn timeout_ms(&self) -> Option<u64> {
        match self {
            ListCommand::BPop { timeout_ms, .. }
            | ListCommand::BMPop { timeout_ms, .. }
            | ListCommand::BMove { timeout_ms, .. } => Some(*timeout_ms),
            _ => None,
        }
    }

    /// The keys a blocking command waits on, in its order, repeats kept (`BLMOVE` waits on
    /// its source only); none for a command that never blocks.
    pub fn blocking_keys(&self) -> &[Bytes] {
        match self {
            ListCommand::BPop { keys, .. } | ListCommand::BMPop { keys, .. } => keys,
            ListCommand::BMove { source, .. } => std::slice::from_ref(source),
            _ => &[],
        }
    }
}

fn list(command: ListCommand) -> Result<Command, CommandError> {
    Ok(Command::List(command))
}

/// `LEFT` or `RIGHT`, else a syntax error.
fn end_of(raw: &[u8]) -> Result<ListEnd, CommandError> {
    if is(raw, "LEFT") {
        Ok(ListEnd::Left)
    } else if is(raw, "RIGHT") {
        Ok(ListEnd::Right)
    } else {
        Err(CommandError::Syntax)
    }
}

/// A count that must be an integer ≥ `min`; `error` otherwise (Redis's
/// `getRangeLongFromObjectOrReply` with a message: the same text for both failures).
fn at_least(raw: &[u8], min: i64, error: CommandError) -> Result<u64, CommandError> {
    match parse_i64(raw) {
        Ok(n) if n >= min => Ok(n as u64),
        _ => Err(error),
    }
}

fn push(cur: &mut ArgCursor, end: ListEnd, only_if_exists: bool) -> Result<Command, CommandError> {
    let key = cur.required()?;
    list(ListCommand::Push {
        key,
        end,
        only_if_exists,
        elements: cur.rest(),
    })
}

/// # Format
/// `LPUSH key element [element ...]`
pub(super) fn lpush(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    push(cur, ListEnd::Left, false)
}

/// # Format
/// `RPUSH key element [element ...]`
pub(super) fn rpush(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    push(cur, ListEnd::Right, false)
}

/// # Format
/// `LPUSHX key element [element ...]`
pub(super) fn lpushx(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    push(cur, ListEnd::Left, true)
}

/// # Format
/// `RPUSHX key element [element ...]`
pub(super) fn rpushx(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    push(cur, ListEnd::Right, true)
}

/// `LPOP`/`RPOP key [count]`: more than one count is an arity error, as Redis's; a count
/// that is not an integer ≥ 0 is `value is out of range, must be positive`.
fn pop(cur: &mut ArgCursor, end: ListEnd) -> Result<Command, CommandError> {
    let key = cur.required()?;
    if cur.remaining() > 1 {
        return Err(CommandError::WrongArity(cur.name()));
    }
    let count = match cur.next() {
        None => None,
        Some(raw) => Some(at_least(&raw, 0, CommandError::NotPositive)?),
    };
    list(ListCommand::Pop { key, end, count })
}

/// # Format
/// `LPOP key [count]`
pub(super) fn lpop(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    pop(cur, ListEnd::Left)
}

/// # Format
/// `RPOP key [count]`
pub(super) fn rpop(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    pop(cur, ListEnd::Right)
}

/// # Format
/// `LLEN key`
pub(super) fn llen(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    list(ListCommand::Len(cur.required()?))
}

/// # Format
/// `LRANGE key start stop`
pub(super) fn lrange(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let start = cur.required_i64()?;
    let stop = cur.required_i64()?;
    list(ListCommand::Range { key, start, stop })
}

/// # Format
/// `LINDEX key index`
pub(super) fn lindex(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let index = parse_i64(&cur.required()?).ok();
    list(ListCommand::Index { key, index })
}

/// # Format
/// `LSET key index element`
pub(super) fn lset(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let index = parse_i64(&cur.required()?).ok();
    let element = cur.required()?;
    list(ListCommand::Set {
        key,
        index,
        element,
    })
}

/// # Format
/// `LREM key count element`
pub(super) fn lrem(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let count = cur.required_i64()?;
    let element = cur.required()?;
    list(ListCommand::Rem {
        key,
        count,
        element,
    })
}

/// # Format
/// `LTRIM key start stop`
pub(super) fn ltrim(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let start = cur.required_i64()?;
    let stop = cur.required_i64()?;
    list(ListCommand::Trim { key, start, stop })
}

/// # Format
/// `LINSERT key BEFORE|AFTER pivot element`
pub(super) fn linsert(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let place = cur.required()?;
    let after = if is(&place, "AFTER") {
        true
    } else if is(&place, "BEFORE") {
        false
    } else {
        return Err(CommandError::Syntax);
    };
    let pivot = cur.required()?;
    let element = cur.required()?;
    list(ListCommand::Insert {
        key,
        after,
        pivot,
        element,
    })
}

/// # Format
/// `LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]`: options in any order, a
/// repeated one counts its last value; `RANK 0` is refused as soon as it is read, as Redis.
pub(super) fn lpos(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let element = cur.required()?;
    let (mut rank, mut count, mut maxlen) = (1, None, 0);
    while let Some(option) = cur.next() {
        let value = cur.next_or_syntax()?;
        if is(&option, "RANK") {
            rank = parse_i64(&value)?;
            if rank == 0 {
                return Err(CommandError::RankZero);
            }
        } else if is(&option, "COUNT") {
            count = Some(at_least(&value, 0, CommandError::CountNegative)?);
        } else if is(&option, "MAXLEN") {
            maxlen = at_least(&value, 0, CommandError::MaxlenNegative)?;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    list(ListCommand::Pos {
        key,
        element,
        rank,
        count,
        maxlen,
    })
}

/// # Format
/// `LMOVE source destination LEFT|RIGHT LEFT|RIGHT`
pub(super) fn lmove(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let source = cur.required()?;
    let destination = cur.required()?;
    let from = end_of(&cur.required()?)?;
    let to = end_of(&cur.required()?)?;
    list(ListCommand::Move {
        source,
        destination,
        from,
        to,
    })
}

/// # Format
/// `RPOPLPUSH source destination`: `LMOVE source destination RIGHT LEFT`.
pub(super) fn rpoplpush(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let source = cur.required()?;
    let destination = cur.required()?;
    list(ListCommand::Move {
        source,
        destination,
        from: ListEnd::Right,
        to: ListEnd::Left,
    })
}

/// # Format
/// `LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]`: `numkeys` must be ≥ 1 and leave
/// room for the keys and the end (else a syntax error, as Redis); `COUNT` at most once.
pub(super) fn lmpop(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let (keys, end, count) = mpop_arguments(cur)?;
    list(ListCommand::MPop { keys, end, count })
}

/// `numkeys key [key ...] LEFT|RIGHT [COUNT count]` of `LMPOP` and `BLMPOP`: the keys, the
/// end and the count (1 when not given).
fn mpop_arguments(cur: &mut ArgCursor) -> Result<(Vec<Bytes>, ListEnd, u64), CommandError> {
    let numkeys = at_least(&cur.required()?, 1, CommandError::NumKeysNotPositive)?;
    // The keys and then the end must follow.
    if numkeys >= cur.remaining() as u64 {
        return Err(CommandError::Syntax);
    }
    let keys: Vec<Bytes> = (0..numkeys).filter_map(|_| cur.next()).collect();
    let end = end_of(&cur.required()?)?;
    let mut count = None;
    while let Some(option) = cur.next() {
        if count.is_none() && is(&option, "COUNT") && cur.remaining() > 0 {
            let raw = cur.required()?;
            count = Some(at_least(&raw, 1, CommandError::CountNotPositive)?);
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok((keys, end, count.unwrap_or(1)))
}

/// `BLPOP`/`BRPOP key [key ...] timeout`: the timeout, the last argument, is read first.
fn blocking_pop(cur: &mut ArgCursor, end: ListEnd) -> Result<Command, CommandError> {
    let mut keys = cur.rest();
    // Arity: at least one key and the timeout.
    let timeout = keys.pop().ok_or(CommandError::WrongArity(cur.name()))?;
    let timeout_ms = parse_timeout_ms(&timeout)?;
    list(ListCommand::BPop {
        keys,
        end,
        timeout_ms,
    })
}

/// # Format
/// `BLPOP key [key ...] timeout`
pub(super) fn blpop(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    blocking_pop(cur, ListEnd::Left)
}

/// # Format
/// `BRPOP key [key ...] timeout`
pub(super) fn brpop(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    blocking_pop(cur, ListEnd::Right)
}

/// # Format
/// `BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout`: the ends are read before the
/// timeout.
pub(super) fn blmove(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let source = cur.required()?;
    let destination = cur.required()?;
    let from = end_of(&cur.required()?)?;
    let to = end_of(&cur.required()?)?;
    let timeout_ms = parse_timeout_ms(&cur.required()?)?;
    list(ListCommand::BMove {
        source,
        destination,
        from,
        to,
        timeout_ms,
    })
}

/// # Format
/// `BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]`: what follows the timeout
/// is `LMPOP`'s, read before the timeout.
pub(super) fn blmpop(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let timeout = cur.required()?;
    let (keys, end, count) = mpop_arguments(cur)?;
    let timeout_ms = parse_timeout_ms(&timeout)?;
    list(ListCommand::BMPop {
        keys,
        end,
        count,
        timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{Access, Request, lookup};

    fn words(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    /// The command and the keys a coordinator would read for it.
    fn parse(line: &str) -> Result<(ListCommand, Vec<Bytes>), String> {
        let args = words(line);
        let entry = lookup(&args[0]).expect("a list command");
        let mut keys = Vec::new();
        match Request::parse_with_keys(entry, args, &mut keys) {
            Ok(Request {
                command: Command::List(command),
                ..
            }) => Ok((command, keys)),
            Ok(other) => panic!("{line}: {other:?}"),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn lmpop_keys_follow_their_count_and_take_a_level() {
        let (command, keys) = parse("LMPOP 2 a b LEFT COUNT 3 CONSISTENCY one").unwrap();
        assert_eq!(keys, words("a b"));
        assert_eq!(
            command,
            ListCommand::MPop {
                keys: words("a b"),
                end: ListEnd::Left,
                count: 3
            }
        );
        assert_eq!(lookup(b"lmpop").unwrap().spec.access(), Access::Write);
        // A count that does not fit what follows names no keys, and is refused.
        assert_eq!(parse("LMPOP 3 a b LEFT"), Err("ERR syntax error".into()));
        assert_eq!(
            parse("LMPOP 0 a LEFT"),
            Err("ERR numkeys should be greater than 0".into())
        );
        let args = words("LMPOP 9 a LEFT");
        let spec = lookup(&args[0]).unwrap().spec;
        assert_eq!(spec.keys.keys(&args).count(), 0);
    }

    #[test]
    fn lmove_names_both_keys() {
        let (_, keys) = parse("LMOVE a b LEFT RIGHT").unwrap();
        assert_eq!(keys, words("a b"));
        let (command, keys) = parse("RPOPLPUSH a a").unwrap();
        assert_eq!(keys, words("a a"));
        assert!(matches!(
            command,
            ListCommand::Move {
                from: ListEnd::Right,
                to: ListEnd::Left,
                ..
            }
        ));
    }

    #[test]
    fn blocking_commands_name_their_keys_and_read_the_timeout_in_redis_s_order() {
        let (command, keys) = parse("BLPOP a b 0.25 CONSISTENCY one").unwrap();
        assert_eq!(keys, words("a b"));
        assert_eq!(
            command,
            ListCommand::BPop {
                keys: words("a b"),
                end: ListEnd::Left,
                timeout_ms: 250
            }
        );
        assert_eq!(command.timeout_ms(), Some(250));
        assert_eq!(command.blocking_keys(), &words("a b")[..]);
        let (command, keys) = parse("BLMPOP 0 2 a b RIGHT COUNT 3").unwrap();
        assert_eq!(keys, words("a b"));
        assert_eq!(command.timeout_ms(), Some(0));
        let (command, keys) = parse("BLMOVE s d LEFT RIGHT 1").unwrap();
        assert_eq!(keys, words("s d"));
        assert_eq!(command.blocking_keys(), &words("s")[..]);
        assert_eq!(parse("LMOVE s d LEFT RIGHT").unwrap().0.timeout_ms(), None);
        for name in ["blpop", "brpop", "blmove", "blmpop"] {
            let spec = lookup(name.as_bytes()).unwrap().spec;
            assert_eq!(spec.access(), Access::Write, "{name}");
            assert!(spec.flags.contains(crate::cmd::Flags::BLOCKING), "{name}");
        }
        let not_float = Err("ERR timeout is not a float or out of range".to_string());
        let negative = Err("ERR timeout is negative".to_string());
        assert_eq!(parse("BRPOP a abc"), not_float);
        assert_eq!(parse("BLPOP a inf"), negative);
        assert_eq!(
            parse("BLMOVE s d UP LEFT abc"),
            Err("ERR syntax error".into())
        );
        assert_eq!(parse("BLMOVE s d LEFT LEFT -1"), negative);
        // BLMPOP reads what follows its timeout first.
        assert_eq!(
            parse("BLMPOP abc 0 k LEFT"),
            Err("ERR numkeys should be greater than 0".into())
        );
        assert_eq!(parse("BLMPOP abc 1 k UP"), Err("ERR syntax error".into()));
        assert_eq!(
            parse("BLMPOP -1 1 k LEFT COUNT 0"),
            Err("ERR count should be greater than 0".into())
        );
        assert_eq!(parse("BLMPOP abc 1 k LEFT"), not_float);
        assert_eq!(
            parse("BLPOP k"),
            Err("ERR wrong number of arguments for 'blpop' command".into())
        );
    }

    #[test]
    fn options_and_errors_parse_as_redis() {
        let rank_zero = "ERR RANK can't be zero: use 1 to start from the first match, 2 from \
                         the second ... or use negative to start from the end of the list";
        assert_eq!(parse("LPOS k e RANK 0 COUNT -1"), Err(rank_zero.into()));
        assert_eq!(
            parse("LPOS k e COUNT -1 RANK 0"),
            Err("ERR COUNT can't be negative".into())
        );
        assert_eq!(parse("LPOS k e FOO RANK 0"), Err("ERR syntax error".into()));
        assert_eq!(
            parse("LPOS k e rank -2 count 0 maxlen 9").unwrap().0,
            ListCommand::Pos {
                key: Bytes::from_static(b"k"),
                element: Bytes::from_static(b"e"),
                rank: -2,
                count: Some(0),
                maxlen: 9
            }
        );
        assert_eq!(
            parse("LPOP k -1"),
            Err("ERR value is out of range, must be positive".into())
        );
        assert_eq!(
            parse("LPOP k 1 2"),
            Err("ERR wrong number of arguments for 'lpop' command".into())
        );
        assert_eq!(
            parse("LINSERT k MIDDLE a b"),
            Err("ERR syntax error".into())
        );
        assert_eq!(
            parse("LMPOP 1 k LEFT COUNT 1 COUNT 2"),
            Err("ERR syntax error".into())
        );
        // The index is checked after the key, by the executor.
        assert!(matches!(
            parse("LSET k x v").unwrap().0,
            ListCommand::Set { index: None, .. }
        ));
    }
}
