//! Set commands. A set is a collection of member cells with empty payloads
//! (`ringcache_storage::collection`); the executor (`src/exec/set.rs`) reads and edits it.
//!
//! # Format
//! ```text
//! SADD key member [member ...]           SREM key member [member ...]
//! SMEMBERS key                           SCARD key
//! SISMEMBER key member                   SMISMEMBER key member [member ...]
//! SPOP key [count]                       SRANDMEMBER key [count]
//! SMOVE source destination member        SSCAN key cursor [MATCH pattern] [COUNT count]
//! SINTER key [key ...]                   SINTERSTORE destination key [key ...]
//! SUNION key [key ...]                   SUNIONSTORE destination key [key ...]
//! SDIFF key [key ...]                    SDIFFSTORE destination key [key ...]
//! SINTERCARD numkeys key [key ...] [LIMIT limit]
//! ```
//!
//! Errors are checked in Redis 7.0's order: what Redis checks before it looks the key up
//! (counts, `numkeys`, `LIMIT`, the `SSCAN` cursor) is checked here; `SSCAN`'s options are
//! parsed here too but their error is kept for the executor, because Redis answers a
//! missing key (an empty scan) and `WRONGTYPE` before it reads the options.

use bytes::Bytes;

use super::Command;
use super::args::{ArgCursor, CommandError, is, parse_i64};
use super::keyspace::{ScanOptions, parse_cursor, scan_options};

/// A set command.
#[derive(Debug, Clone, PartialEq)]
pub enum SetCommand {
    /// `SADD key member [member ...]`: answers the members added.
    Add {
        /// The key.
        key: Bytes,
        /// The members, repeats allowed.
        members: Vec<Bytes>,
    },
    /// `SREM key member [member ...]`: answers the members removed.
    Rem {
        /// The key.
        key: Bytes,
        /// The members, repeats allowed.
        members: Vec<Bytes>,
    },
    /// `SMEMBERS key`: every member (a set in RESP3).
    Members(Bytes),
    /// `SCARD key`
    Card(Bytes),
    /// `SISMEMBER key member`
    IsMember {
        /// The key.
        key: Bytes,
        /// The member.
        member: Bytes,
    },
    /// `SMISMEMBER key member [member ...]`: 1 or 0 per member, in order.
    MIsMember {
        /// The key.
        key: Bytes,
        /// The members.
        members: Vec<Bytes>,
    },
    /// `SPOP key [count]`: without a count, one member or nil; with one, a set of at most
    /// `count` members.
    Pop {
        /// The key.
        key: Bytes,
        /// The count, when given.
        count: Option<u64>,
    },
    /// `SRANDMEMBER key [count]`: a positive count asks for distinct members, a negative one
    /// for `-count` picks that may repeat.
    RandMember {
        /// The key.
        key: Bytes,
        /// The count when given, in `-i64::MAX..=i64::MAX`.
        count: Option<i64>,
    },
    /// `SMOVE source destination member`
    Move {
        /// The set the member leaves.
        source: Bytes,
        /// The set it joins.
        destination: Bytes,
        /// The member.
        member: Bytes,
    },
    /// `SSCAN key cursor [MATCH pattern] [COUNT count]`
    Scan {
        /// The key.
        key: Bytes,
        /// Where to resume; 0 starts.
        cursor: u64,
        /// The options, or the error Redis answers for them once the key exists as a set.
        options: Result<ScanOptions, CommandError>,
    },
    /// `SINTER`, `SUNION`, `SDIFF` `key [key ...]`: the result (a set in RESP3).
    Combine {
        /// Which combination.
        op: SetOp,
        /// The sets, in order (the first is the one `SDIFF` subtracts from).
        keys: Vec<Bytes>,
    },
    /// `SINTERSTORE`, `SUNIONSTORE`, `SDIFFSTORE` `destination key [key ...]`: writes the
    /// result as a new set (an empty one deletes `destination`); answers its size.
    Store {
        /// Which combination.
        op: SetOp,
        /// Where the result goes, whatever it held before.
        destination: Bytes,
        /// The sets, in order.
        keys: Vec<Bytes>,
    },
    /// `SINTERCARD numkeys key [key ...] [LIMIT limit]`: the size of the intersection.
    InterCard {
        /// The sets.
        keys: Vec<Bytes>,
        /// Stop counting here; 0 counts everything.
        limit: u64,
    },
}

/// How `SINTER`/`SUNION`/`SDIFF` and their `STORE` forms combine sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    /// Members of every set; a missing key makes it empty.
    Inter,
    /// Members of any set.
    Union,
    /// Members of the first set that no other set has.
    Diff,
}

fn set(command: SetCommand) -> Result<Command, CommandError> {
    Ok(Command::Sets(command))
}

/// # Format
/// `SADD key member [member ...]`
pub(super) fn sadd(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    set(SetCommand::Add {
        key,
        members: cur.rest(),
    })
}

/// # Format
/// `SREM key member [member ...]`
pub(super) fn srem(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    set(SetCommand::Rem {
        key,
        members: cur.rest(),
    })
}

/// # Format
/// `SMEMBERS key`
pub(super) fn smembers(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    set(SetCommand::Members(cur.required()?))
}

/// # Format
/// `SCARD key`
pub(super) fn scard(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    set(SetCommand::Card(cur.required()?))
}

/// # Format
/// `SISMEMBER key member`
pub(super) fn sismember(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let member = cur.required()?;
    set(SetCommand::IsMember { key, member })
}

/// # Format
/// `SMISMEMBER key member [member ...]`
pub(super) fn smismember(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    set(SetCommand::MIsMember {
        key,
        members: cur.rest(),
    })
}

/// # Format
/// `SPOP key [count]`: a count that is not a non-negative integer is
/// `ERR value is out of range, must be positive` (Redis's text for both); more arguments
/// are a syntax error.
pub(super) fn spop(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let count = match cur.next() {
        None => None,
        Some(raw) => {
            if cur.remaining() > 0 {
                return Err(CommandError::Syntax);
            }
            let count = parse_i64(&raw).map_err(|_| CommandError::NotPositive)?;
            Some(u64::try_from(count).map_err(|_| CommandError::NotPositive)?)
        }
    };
    set(SetCommand::Pop { key, count })
}

/// # Format
/// `SRANDMEMBER key [count]`: the count must be an integer in `-i64::MAX..=i64::MAX`, as
/// Redis's `-LONG_MAX..LONG_MAX`; more arguments are a syntax error.
pub(super) fn srandmember(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let count = match cur.next() {
        None => None,
        Some(raw) => {
            if cur.remaining() > 0 {
                return Err(CommandError::Syntax);
            }
            let count = parse_i64(&raw)?;
            if count == i64::MIN {
                return Err(CommandError::OutOfRange {
                    min: -i64::MAX,
                    max: i64::MAX,
                });
            }
            Some(count)
        }
    };
    set(SetCommand::RandMember { key, count })
}

/// # Format
/// `SMOVE source destination member`
pub(super) fn smove(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let source = cur.required()?;
    let destination = cur.required()?;
    let member = cur.required()?;
    set(SetCommand::Move {
        source,
        destination,
        member,
    })
}

/// # Format
/// `SSCAN key cursor [MATCH pattern] [COUNT count]`: the cursor is read as `SCAN`'s
/// (`ERR invalid cursor`); options may repeat (the last counts); `COUNT` below 1 and any
/// other word (`TYPE` included) are `ERR syntax error`, answered after the key is found.
pub(super) fn sscan(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let cursor = parse_cursor(&cur.required()?).ok_or(CommandError::InvalidCursor)?;
    let options = scan_options(cur);
    // An error leaves arguments unread; they belong to the deferred error.
    cur.skip_rest();
    set(SetCommand::Scan {
        key,
        cursor,
        options,
    })
}

fn combine(cur: &mut ArgCursor, op: SetOp) -> Result<Command, CommandError> {
    set(SetCommand::Combine {
        op,
        keys: cur.rest(),
    })
}

fn store(cur: &mut ArgCursor, op: SetOp) -> Result<Command, CommandError> {
    let destination = cur.required()?;
    set(SetCommand::Store {
        op,
        destination,
        keys: cur.rest(),
    })
}

/// # Format
/// `SINTER key [key ...]`
pub(super) fn sinter(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    combine(cur, SetOp::Inter)
}

/// # Format
/// `SUNION key [key ...]`
pub(super) fn sunion(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    combine(cur, SetOp::Union)
}

/// # Format
/// `SDIFF key [key ...]`
pub(super) fn sdiff(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    combine(cur, SetOp::Diff)
}

/// # Format
/// `SINTERSTORE destination key [key ...]`
pub(super) fn sinterstore(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    store(cur, SetOp::Inter)
}

/// # Format
/// `SUNIONSTORE destination key [key ...]`
pub(super) fn sunionstore(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    store(cur, SetOp::Union)
}

/// # Format
/// `SDIFFSTORE destination key [key ...]`
pub(super) fn sdiffstore(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    store(cur, SetOp::Diff)
}

/// # Format
/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`: `numkeys` must be a positive integer
/// (`ERR numkeys should be greater than 0`) no larger than the arguments after it; `LIMIT`
/// a non-negative integer (`ERR LIMIT can't be negative`), 0 meaning none; `LIMIT` may
/// repeat (the last counts); anything else after the keys is a syntax error.
pub(super) fn sintercard(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let numkeys = numkeys(&cur.required()?)?;
    if numkeys > cur.remaining() {
        return Err(CommandError::NumKeysOverArgs);
    }
    let keys = (0..numkeys).filter_map(|_| cur.next()).collect();
    let mut limit = 0;
    while let Some(word) = cur.next() {
        if !is(&word, "limit") || cur.remaining() == 0 {
            return Err(CommandError::Syntax);
        }
        let raw = cur.required()?;
        let value = parse_i64(&raw).map_err(|_| CommandError::LimitNegative)?;
        limit = u64::try_from(value).map_err(|_| CommandError::LimitNegative)?;
    }
    set(SetCommand::InterCard { keys, limit })
}

/// A `numkeys` argument, as Redis's `getRangeLongFromObjectOrReply(1, LONG_MAX)` with the
/// message `numkeys should be greater than 0` (for a word that is not an integer too).
fn numkeys(raw: &[u8]) -> Result<usize, CommandError> {
    match parse_i64(raw) {
        Ok(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => Err(CommandError::NumKeysNotPositive),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{Access, Request, lookup};
    use crate::parser::split_inline;

    fn args(line: &str) -> Vec<Bytes> {
        split_inline(line.as_bytes()).expect("test line splits")
    }

    fn parse(line: &str) -> Result<SetCommand, String> {
        match Request::parse(args(line)) {
            Ok(Request {
                command: Command::Sets(c),
                ..
            }) => Ok(c),
            Ok(other) => panic!("{line}: {other:?}"),
            Err(e) => Err(e.to_string()),
        }
    }

    fn keys(line: &str) -> Vec<Bytes> {
        let args = args(line);
        let entry = lookup(&args[0]).expect("a known command");
        let mut keys = Vec::new();
        let _ = Request::parse_with_keys(entry, args, &mut keys);
        keys
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn sintercard_keys_follow_numkeys_and_make_it_a_read_of_those_keys() {
        assert_eq!(keys("SINTERCARD 2 a b LIMIT 1"), [b("a"), b("b")]);
        assert_eq!(keys("SINTERCARD 1 a b"), [b("a")]);
        assert_eq!(keys("SINTERCARD 2 a b CONSISTENCY ONE"), [b("a"), b("b")]);
        // A bad count (or one past the arguments) names no key; the parser refuses it.
        assert!(keys("SINTERCARD x a").is_empty());
        assert!(keys("SINTERCARD -1 a").is_empty());
        assert!(keys("SINTERCARD 9 a").is_empty());
        let spec = lookup(b"sintercard").unwrap().spec;
        assert_eq!(spec.access(), Access::Read);
        assert_eq!((spec.keys.first, spec.keys.last, spec.keys.step), (0, 0, 0));
        assert_eq!(keys("SMOVE a b m"), [b("a"), b("b")]);
        assert_eq!(keys("SUNIONSTORE d a b"), [b("d"), b("a"), b("b")]);
    }

    #[test]
    fn sintercard_checks_numkeys_then_limit_as_redis() {
        assert_eq!(
            parse("SINTERCARD 2 a b LIMIT 3 LIMIT 0"),
            Ok(SetCommand::InterCard {
                keys: vec![b("a"), b("b")],
                limit: 0
            })
        );
        for (line, text) in [
            ("SINTERCARD 0 a", "ERR numkeys should be greater than 0"),
            ("SINTERCARD x a", "ERR numkeys should be greater than 0"),
            (
                "SINTERCARD 3 a b",
                "ERR Number of keys can't be greater than number of args",
            ),
            ("SINTERCARD 1 a LIMIT -1", "ERR LIMIT can't be negative"),
            ("SINTERCARD 1 a LIMIT x", "ERR LIMIT can't be negative"),
            ("SINTERCARD 1 a LIMIT", "ERR syntax error"),
            ("SINTERCARD 1 a b", "ERR syntax error"),
            (
                "SINTERCARD 1",
                "ERR wrong number of arguments for 'sintercard' command",
            ),
        ] {
            assert_eq!(parse(line), Err(text.to_string()), "{line}");
        }
    }

    #[test]
    fn counts_of_spop_and_srandmember_have_their_own_ranges_and_texts() {
        assert_eq!(
            parse("SPOP k 3"),
            Ok(SetCommand::Pop {
                key: b("k"),
                count: Some(3)
            })
        );
        assert_eq!(
            parse("SRANDMEMBER k -3"),
            Ok(SetCommand::RandMember {
                key: b("k"),
                count: Some(-3)
            })
        );
        for (line, text) in [
            ("SPOP k -1", "ERR value is out of range, must be positive"),
            ("SPOP k x", "ERR value is out of range, must be positive"),
            ("SPOP k 1 2", "ERR syntax error"),
            (
                "SRANDMEMBER k x",
                "ERR value is not an integer or out of range",
            ),
            (
                "SRANDMEMBER k -9223372036854775808",
                "ERR value is out of range, value must between -9223372036854775807 and \
                 9223372036854775807",
            ),
            ("SRANDMEMBER k 1 2", "ERR syntax error"),
        ] {
            assert_eq!(parse(line), Err(text.to_string()), "{line}");
        }
    }

    #[test]
    fn sscan_refuses_a_bad_cursor_at_once_but_keeps_an_option_error_for_later() {
        assert_eq!(parse("SSCAN k x COUNT 0"), Err("ERR invalid cursor".into()));
        assert_eq!(
            parse("SSCAN k 0 COUNT 0 MATCH a"),
            Ok(SetCommand::Scan {
                key: b("k"),
                cursor: 0,
                options: Err(CommandError::Syntax)
            })
        );
        assert_eq!(
            parse("SSCAN k 5 match a* COUNT 2 count 3"),
            Ok(SetCommand::Scan {
                key: b("k"),
                cursor: 5,
                options: Ok(ScanOptions {
                    pattern: Some(b("a*")),
                    count: 3
                })
            })
        );
        for line in ["SSCAN k 0 TYPE set", "SSCAN k 0 MATCH", "SSCAN k 0 FOO bar"] {
            assert!(
                matches!(
                    parse(line),
                    Ok(SetCommand::Scan {
                        options: Err(CommandError::Syntax),
                        ..
                    })
                ),
                "{line}"
            );
        }
    }
}
