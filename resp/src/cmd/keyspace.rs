//! Keyspace commands: `DEL`, `UNLINK`, `EXISTS`, `TYPE`, `TOUCH`, `EXPIRE`, `PEXPIRE`,
//! `EXPIREAT`, `PEXPIREAT`, `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`, `PERSIST`, `KEYS`,
//! `SCAN`, `RANDOMKEY`, `OBJECT`, `RENAME`, `RENAMENX`, `COPY`.
//!
//! # Format
//! ```text
//! DEL key [key ...]     UNLINK key [key ...]     EXISTS key [key ...]     TOUCH key [key ...]
//! TYPE key              PERSIST key              KEYS pattern             RANDOMKEY
//! EXPIRE key s [NX|XX|GT|LT]        PEXPIRE key ms [NX|XX|GT|LT]
//! EXPIREAT key unix-s [NX|XX|GT|LT] PEXPIREAT key unix-ms [NX|XX|GT|LT]
//! TTL key   PTTL key   EXPIRETIME key   PEXPIRETIME key
//! SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
//! OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key   OBJECT HELP
//! RENAME key newkey     RENAMENX key newkey      COPY source destination [DB db] [REPLACE]
//! ```

use bytes::Bytes;

use super::args::{ArgCursor, CommandError, error_text, is, parse_i64};
use super::connection::subcommand;
use super::{Command, Expire, ExpireCondition, ExpiryTime, Scan, TimeUnit};

/// Redis's default `SCAN` count.
pub(super) const SCAN_COUNT_DEFAULT: usize = 10;

/// See `strings::UNIX_MS_HORIZON`: the clock is assumed to be before 2^42 ms after 1970.
const UNIX_MS_HORIZON: i64 = 1 << 42;

/// # Format
/// `DEL key [key ...]`
pub(super) fn del(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Del(cur.rest()))
}

/// # Format
/// `UNLINK key [key ...]`
pub(super) fn unlink(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Unlink(cur.rest()))
}

/// # Format
/// `EXISTS key [key ...]`
pub(super) fn exists(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Exists(cur.rest()))
}

/// # Format
/// `TOUCH key [key ...]`
pub(super) fn touch(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Touch(cur.rest()))
}

/// # Format
/// `TYPE key`
pub(super) fn type_(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Type(cur.required()?))
}

/// # Format
/// `PERSIST key`
pub(super) fn persist(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Persist(cur.required()?))
}

/// # Format
/// `KEYS pattern`
pub(super) fn keys(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Keys(cur.required()?))
}

/// # Format
/// `RANDOMKEY`
pub(super) fn randomkey(_: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::RandomKey)
}

/// # Format
/// `RENAME key newkey`
pub(super) fn rename(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    rename_with(cur, false)
}

/// # Format
/// `RENAMENX key newkey`
pub(super) fn renamenx(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    rename_with(cur, true)
}

fn rename_with(cur: &mut ArgCursor, nx: bool) -> Result<Command, CommandError> {
    let source = cur.required()?;
    let destination = cur.required()?;
    Ok(Command::Rename {
        source,
        destination,
        nx,
    })
}

/// The only database: `COPY ... DB n` answers for any other `n` what Redis answers for one
/// past its `databases`.
const DATABASE: i64 = 0;

/// # Format
/// `COPY source destination [DB destination-db] [REPLACE]`
///
/// As Redis 7.0's `copyCommand`, the options are read in order, the first bad one answering:
/// an unknown word or `DB` without a value is `ERR syntax error`, a `DB` that is not an
/// integer is `ERR value is not an integer or out of range`, one past an `int`
/// `ERR value is out of range, value must between ...`, any database but 0
/// `ERR DB index is out of range` (Redis has 16; ringcache one). Then the same key twice
/// is `ERR source and destination objects are the same`, before either key is looked at.
pub(super) fn copy(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let source = cur.required()?;
    let destination = cur.required()?;
    let mut replace = false;
    while let Some(word) = cur.next() {
        if is(&word, "replace") {
            replace = true;
        } else if is(&word, "db") && cur.remaining() >= 1 {
            let db = parse_i64(&cur.required()?)?;
            if i32::try_from(db).is_err() {
                return Err(CommandError::OutOfRange {
                    min: i32::MIN.into(),
                    max: i32::MAX.into(),
                });
            }
            if db != DATABASE {
                return Err(CommandError::DbIndexOutOfRange);
            }
        } else {
            return Err(CommandError::Syntax);
        }
    }
    if source == destination {
        return Err(CommandError::SameObject);
    }
    Ok(Command::Copy {
        source,
        destination,
        replace,
    })
}

/// # Format
/// `EXPIRE key seconds [NX|XX|GT|LT]`, see [`expire_in`].
pub(super) fn expire(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    expire_in(cur, TimeUnit::Seconds, false)
}

/// # Format
/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`, see [`expire_in`].
pub(super) fn pexpire(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    expire_in(cur, TimeUnit::Millis, false)
}

/// # Format
/// `EXPIREAT key unix-seconds [NX|XX|GT|LT]`, see [`expire_in`].
pub(super) fn expireat(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    expire_in(cur, TimeUnit::Seconds, true)
}

/// # Format
/// `PEXPIREAT key unix-milliseconds [NX|XX|GT|LT]`, see [`expire_in`].
pub(super) fn pexpireat(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    expire_in(cur, TimeUnit::Millis, true)
}

/// # Format
/// `TTL key`
pub(super) fn ttl(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    Ok(Command::Ttl {
        key,
        unit: TimeUnit::Seconds,
    })
}

/// # Format
/// `PTTL key`
pub(super) fn pttl(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    Ok(Command::Ttl {
        key,
        unit: TimeUnit::Millis,
    })
}

/// # Format
/// `EXPIRETIME key`
pub(super) fn expiretime(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    Ok(Command::ExpireTime {
        key,
        unit: TimeUnit::Seconds,
    })
}

/// # Format
/// `PEXPIRETIME key`
pub(super) fn pexpiretime(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    Ok(Command::ExpireTime {
        key,
        unit: TimeUnit::Millis,
    })
}

/// # Format
/// `EXPIRE key seconds [NX|XX|GT|LT]`, and `PEXPIRE` (milliseconds), `EXPIREAT` (unix
/// seconds), `PEXPIREAT` (unix milliseconds).
///
/// As Redis 7.0: the options are read first (`ERR Unsupported option x`,
/// `ERR NX and XX, GT or LT options at the same time are not compatible`,
/// `ERR GT and LT options at the same time are not compatible`), then the time, which may be
/// negative but must not overflow in milliseconds, nor once added to the clock
/// (`ERR invalid expire time in 'expire' command`). `XX GT` is the same as `GT` (a key without
/// expiry counts as infinite); `XX LT` is [`ExpireCondition::XxLt`].
fn expire_in(cur: &mut ArgCursor, unit: TimeUnit, absolute: bool) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let raw = cur.required()?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    while let Some(opt) = cur.next() {
        if is(&opt, "nx") {
            nx = true;
        } else if is(&opt, "xx") {
            xx = true;
        } else if is(&opt, "gt") {
            gt = true;
        } else if is(&opt, "lt") {
            lt = true;
        } else {
            return Err(CommandError::UnsupportedOption(error_text(&opt)));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CommandError::ExpireNxConflict);
    }
    if gt && lt {
        return Err(CommandError::ExpireGtLt);
    }
    let condition = match (nx, xx, gt, lt) {
        (true, ..) => Some(ExpireCondition::Nx),
        (_, _, true, _) => Some(ExpireCondition::Gt),
        (_, true, _, true) => Some(ExpireCondition::XxLt),
        (_, _, _, true) => Some(ExpireCondition::Lt),
        (_, true, ..) => Some(ExpireCondition::Xx),
        _ => None,
    };
    let when = parse_i64(&raw)?;
    let invalid = CommandError::InvalidExpireTime(cur.name());
    let ms = match unit {
        TimeUnit::Seconds => when.checked_mul(1000).ok_or(invalid.clone())?,
        TimeUnit::Millis => when,
    };
    let at = if absolute {
        ExpiryTime::AbsoluteMs(ms)
    } else if ms > i64::MAX - UNIX_MS_HORIZON {
        return Err(invalid);
    } else {
        ExpiryTime::RelativeMs(ms)
    };
    Ok(Command::Expire(Expire { key, at, condition }))
}

/// # Format
/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
///
/// The cursor is read like C's `strtoul` (`+5`, `007` and `-1` are accepted, `""` is 0, a
/// leading blank or trailing junk is `ERR invalid cursor`); options may repeat (the last
/// counts); `COUNT` below 1 is `ERR syntax error`.
pub(super) fn scan(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let cursor = parse_cursor(&cur.required()?).ok_or(CommandError::InvalidCursor)?;
    let mut scan = Scan {
        cursor,
        pattern: None,
        count: SCAN_COUNT_DEFAULT,
        type_filter: None,
    };
    while let Some(opt) = cur.next() {
        if cur.remaining() == 0 {
            return Err(CommandError::Syntax);
        }
        let value = cur.required()?;
        if is(&opt, "count") {
            let count = parse_i64(&value)?;
            if count < 1 {
                return Err(CommandError::Syntax);
            }
            scan.count = usize::try_from(count).unwrap_or(usize::MAX);
        } else if is(&opt, "match") {
            scan.pattern = Some(value);
        } else if is(&opt, "type") {
            scan.type_filter = Some(Bytes::from(value.to_ascii_lowercase()));
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(Command::Scan(scan))
}

/// C's `strtoul(s, &end, 10)` as Redis checks it: no leading blank, the whole (NUL-ended)
/// string used, no overflow; an optional sign, `-n` wrapping around as in C; no digits at
/// all is 0 only for the empty string.
pub(super) fn parse_cursor(raw: &[u8]) -> Option<u64> {
    let raw = match memchr::memchr(0, raw) {
        Some(nul) => &raw[..nul],
        None => raw,
    };
    if raw.is_empty() {
        return Some(0);
    }
    let (negative, digits) = match raw[0] {
        b'-' => (true, &raw[1..]),
        b'+' => (false, &raw[1..]),
        _ => (false, raw),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for &d in digits {
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// The options of an element scan: `HSCAN`, `SSCAN`, `ZSCAN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// `MATCH pattern`; `None` matches everything.
    pub pattern: Option<Bytes>,
    /// `COUNT count`: about how many elements one call visits (default 10).
    pub count: usize,
}

/// The `[MATCH pattern] [COUNT count]` options of an element scan, as Redis 7.0's
/// `scanGenericCommand` reads them.
///
/// # Errors
/// `ERR syntax error` for an unknown word, a word without its value or a count below 1;
/// `ERR value is not an integer or out of range` for a count that is not one.
pub(super) fn scan_options(cur: &mut ArgCursor) -> Result<ScanOptions, CommandError> {
    let mut options = ScanOptions {
        pattern: None,
        count: SCAN_COUNT_DEFAULT,
    };
    while let Some(word) = cur.next() {
        if cur.remaining() == 0 {
            return Err(CommandError::Syntax);
        }
        let value = cur.required()?;
        if is(&word, "count") {
            let count = parse_i64(&value)?;
            if count < 1 {
                return Err(CommandError::Syntax);
            }
            options.count = usize::try_from(count).unwrap_or(usize::MAX);
        } else if is(&word, "match") {
            options.pattern = Some(value);
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(options)
}

/// An `OBJECT` subcommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectCommand {
    /// `OBJECT ENCODING key`
    Encoding(Bytes),
    /// `OBJECT FREQ key`
    Freq(Bytes),
    /// `OBJECT IDLETIME key`
    IdleTime(Bytes),
    /// `OBJECT REFCOUNT key`
    RefCount(Bytes),
    /// `OBJECT HELP`
    Help,
}

const OBJECT_SUBCOMMANDS: &[(&str, &str, i32)] = &[
    ("encoding", "object|encoding", 3),
    ("freq", "object|freq", 3),
    ("idletime", "object|idletime", 3),
    ("refcount", "object|refcount", 3),
    ("help", "object|help", 2),
];

/// # Format
/// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key`, `OBJECT HELP`.
pub(super) fn object(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let sub = cur.required()?;
    let name = subcommand("OBJECT", OBJECT_SUBCOMMANDS, &sub, cur.argc())?;
    if name == "help" {
        return Ok(Command::Object(ObjectCommand::Help));
    }
    let key = cur.required()?;
    Ok(Command::Object(match name {
        "encoding" => ObjectCommand::Encoding(key),
        "freq" => ObjectCommand::Freq(key),
        "idletime" => ObjectCommand::IdleTime(key),
        "refcount" => ObjectCommand::RefCount(key),
        other => unreachable!("object subcommand {other}"),
    }))
}
