//! String commands: `GET`, `SET` (and `SETEX`, `PSETEX`, `GETSET`), `SETNX`, `GETDEL`, `GETEX`,
//! `MGET`, `MSET`, `MSETNX`, `STRLEN`, `APPEND`, `GETRANGE`, `SUBSTR`, `SETRANGE`, `INCR`,
//! `DECR`, `INCRBY`, `DECRBY`, `INCRBYFLOAT`, `LCS`.
//!
//! # Format
//! ```text
//! GET key                      GETDEL key            STRLEN key
//! SET key value [NX|XX] [GET] [EX s|PX ms|EXAT unix-s|PXAT unix-ms|KEEPTTL]
//! SETNX key value              SETEX key s value     PSETEX key ms value     GETSET key value
//! GETEX key [EX s|PX ms|EXAT unix-s|PXAT unix-ms|PERSIST]
//! MGET key [key ...]           MSET key value [key value ...]   MSETNX key value [...]
//! APPEND key value             GETRANGE key start end           SUBSTR key start end
//! SETRANGE key offset value    INCR key   DECR key   INCRBY key n   DECRBY key n
//! INCRBYFLOAT key increment
//! LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
//! ```

use bytes::Bytes;

use super::args::{ArgCursor, CommandError, STRING_BYTES_MAX, is, parse_i64};
use super::{Command, ExpiryTime, GetExExpiry, Lcs, LcsMode, Set, SetCondition, SetExpiry};
use crate::float::check_float;

/// Relative expiries are refused when adding them to the clock could overflow. Redis checks
/// `now + ms` against `i64::MAX` with the real clock; parsing has no clock, so it assumes any
/// time before 2109 (2^42 ms after 1970), which differs only for expiries ~292 million years
/// away.
const UNIX_MS_HORIZON: i64 = 1 << 42;

/// # Format
/// `GET key`
pub(super) fn get(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Get(cur.required()?))
}

/// # Format
/// `SETNX key value`
pub(super) fn setnx(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::SetNx {
        key: cur.required()?,
        value: cur.required()?,
    })
}

/// # Format
/// `SETEX key seconds value`: a `SET` with `EX`.
pub(super) fn setex(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    set_with_expiry(cur, true)
}

/// # Format
/// `PSETEX key milliseconds value`: a `SET` with `PX`.
pub(super) fn psetex(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    set_with_expiry(cur, false)
}

fn set_with_expiry(cur: &mut ArgCursor, seconds: bool) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let raw = cur.required()?;
    let value = cur.required()?;
    let at = set_expiry(cur.name(), &raw, seconds, false)?;
    Ok(Command::Set(Set {
        key,
        value,
        condition: None,
        get: false,
        expiry: SetExpiry::At(at),
    }))
}

/// # Format
/// `GETSET key value`: a `SET ... GET`.
pub(super) fn getset(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Set(Set {
        key: cur.required()?,
        value: cur.required()?,
        condition: None,
        get: true,
        expiry: SetExpiry::Clear,
    }))
}

/// # Format
/// `GETDEL key`
pub(super) fn getdel(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::GetDel(cur.required()?))
}

/// # Format
/// `MGET key [key ...]`
pub(super) fn mget(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::MGet(cur.rest()))
}

/// # Format
/// `MSET key value [key value ...]`: an odd count is a wrong number of arguments.
pub(super) fn mset(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::MSet(pairs(cur)?))
}

/// # Format
/// `MSETNX key value [key value ...]`: an odd count is a wrong number of arguments.
pub(super) fn msetnx(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::MSetNx(pairs(cur)?))
}

fn pairs(cur: &mut ArgCursor) -> Result<Vec<(Bytes, Bytes)>, CommandError> {
    cur.pairs().ok_or(CommandError::WrongArity(cur.name()))
}

/// # Format
/// `STRLEN key`
pub(super) fn strlen(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::StrLen(cur.required()?))
}

/// # Format
/// `APPEND key value`
pub(super) fn append(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Append {
        key: cur.required()?,
        value: cur.required()?,
    })
}

/// # Format
/// `GETRANGE key start end`, and its old name `SUBSTR key start end`: integers, negative
/// from the end.
pub(super) fn getrange(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::GetRange {
        key: cur.required()?,
        start: cur.required_i64()?,
        end: cur.required_i64()?,
    })
}

/// # Format
/// `INCR key`
pub(super) fn incr(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::IncrBy {
        key: cur.required()?,
        delta: 1,
    })
}

/// # Format
/// `DECR key`
pub(super) fn decr(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::IncrBy {
        key: cur.required()?,
        delta: -1,
    })
}

/// # Format
/// `INCRBY key increment`
pub(super) fn incrby(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::IncrBy {
        key: cur.required()?,
        delta: cur.required_i64()?,
    })
}

/// # Format
/// `DECRBY key decrement`: `ERR decrement would overflow` for `i64::MIN`.
pub(super) fn decrby(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let decrement = cur.required_i64()?;
    let delta = decrement
        .checked_neg()
        .ok_or(CommandError::DecrementOverflow)?;
    Ok(Command::IncrBy { key, delta })
}

/// # Format
/// `INCRBYFLOAT key increment`: a float as Redis's `strtold`-based `string2ld` reads it, kept
/// as text. An infinite increment is accepted here: Redis first checks the current value
/// (`ERR value is not a valid float`), then that the sum is finite.
pub(super) fn incrbyfloat(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let delta = cur.required()?;
    check_float(&delta)?;
    Ok(Command::IncrByFloat { key, delta })
}

/// Redis's `SET`/`GETEX` expiry check: the value must be a positive integer, and in
/// milliseconds must fit an `i64` (also once added to the clock, when relative).
fn set_expiry(
    name: &'static str,
    raw: &[u8],
    seconds: bool,
    absolute: bool,
) -> Result<ExpiryTime, CommandError> {
    let n = parse_i64(raw)?;
    let invalid = CommandError::InvalidExpireTime(name);
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(invalid);
    }
    let ms = if seconds { n * 1000 } else { n };
    if absolute {
        Ok(ExpiryTime::AbsoluteMs(ms))
    } else if ms > i64::MAX - UNIX_MS_HORIZON {
        Err(invalid)
    } else {
        Ok(ExpiryTime::RelativeMs(ms))
    }
}

/// The expiry options of `SET` and `GETEX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpiryOption {
    Ex,
    Px,
    ExAt,
    PxAt,
    KeepTtl,
    Persist,
}

/// `NX`/`XX`, `GET`, and the last expiry option with its (unchecked) value.
type StringOptions = (Option<SetCondition>, bool, Option<(ExpiryOption, Bytes)>);

/// Redis's `parseExtendedStringArgumentsOrReply`: options in any order and any case; a
/// repeated option is allowed (the last value counts), conflicting ones are a syntax error,
/// and only the last expiry value is checked, after all options were read.
fn string_options(cur: &mut ArgCursor, for_set: bool) -> Result<StringOptions, CommandError> {
    let mut condition = None;
    let mut get = false;
    let mut expiry: Option<(ExpiryOption, Bytes)> = None;
    while let Some(opt) = cur.next() {
        let current = expiry.as_ref().map(|(kind, _)| *kind);
        let timed = |kind: ExpiryOption| match current {
            None => true,
            Some(c) => c == kind,
        };
        if for_set && is(&opt, "NX") && condition != Some(SetCondition::IfPresent) {
            condition = Some(SetCondition::IfAbsent);
        } else if for_set && is(&opt, "XX") && condition != Some(SetCondition::IfAbsent) {
            condition = Some(SetCondition::IfPresent);
        } else if for_set && is(&opt, "GET") {
            get = true;
        } else if for_set && is(&opt, "KEEPTTL") && timed(ExpiryOption::KeepTtl) {
            expiry = Some((ExpiryOption::KeepTtl, Bytes::new()));
        } else if !for_set && is(&opt, "PERSIST") && timed(ExpiryOption::Persist) {
            expiry = Some((ExpiryOption::Persist, Bytes::new()));
        } else {
            let kind = if is(&opt, "EX") {
                ExpiryOption::Ex
            } else if is(&opt, "PX") {
                ExpiryOption::Px
            } else if is(&opt, "EXAT") {
                ExpiryOption::ExAt
            } else if is(&opt, "PXAT") {
                ExpiryOption::PxAt
            } else {
                return Err(CommandError::Syntax);
            };
            if !timed(kind) || cur.remaining() == 0 {
                return Err(CommandError::Syntax);
            }
            expiry = Some((kind, cur.required()?));
        }
    }
    Ok((condition, get, expiry))
}

/// Checks the value of a timed expiry option.
fn timed_expiry(
    name: &'static str,
    kind: ExpiryOption,
    raw: &[u8],
) -> Result<Option<ExpiryTime>, CommandError> {
    Ok(Some(match kind {
        ExpiryOption::Ex => set_expiry(name, raw, true, false)?,
        ExpiryOption::Px => set_expiry(name, raw, false, false)?,
        ExpiryOption::ExAt => set_expiry(name, raw, true, true)?,
        ExpiryOption::PxAt => set_expiry(name, raw, false, true)?,
        ExpiryOption::KeepTtl | ExpiryOption::Persist => return Ok(None),
    }))
}

/// # Format
/// `SET key value [NX|XX] [GET] [EX seconds|PX ms|EXAT unix-s|PXAT unix-ms|KEEPTTL]`
///
/// `ERR syntax error` for `NX` with `XX`, two different expiry options, or an expiry option
/// without its value; `ERR invalid expire time in 'set' command` for a value ≤ 0 or one that
/// overflows in milliseconds.
pub(super) fn set(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let value = cur.required()?;
    let (condition, get, expiry) = string_options(cur, true)?;
    let expiry = match expiry {
        None => SetExpiry::Clear,
        Some((ExpiryOption::KeepTtl, _)) => SetExpiry::Keep,
        Some((kind, raw)) => match timed_expiry(cur.name(), kind, &raw)? {
            Some(at) => SetExpiry::At(at),
            None => SetExpiry::Clear,
        },
    };
    Ok(Command::Set(Set {
        key,
        value,
        condition,
        get,
        expiry,
    }))
}

/// # Format
/// `GETEX key [EX seconds|PX ms|EXAT unix-s|PXAT unix-ms|PERSIST]`
///
/// Errors as `SET`'s, naming `getex`. (Redis 7.0 checks the expiry value only when the key
/// exists, answering nil otherwise; here it is checked first, for every key.)
pub(super) fn getex(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let (_, _, expiry) = string_options(cur, false)?;
    let expiry = match expiry {
        None => None,
        Some((ExpiryOption::Persist, _)) => Some(GetExExpiry::Persist),
        Some((kind, raw)) => timed_expiry(cur.name(), kind, &raw)?.map(GetExExpiry::At),
    };
    Ok(Command::GetEx { key, expiry })
}

/// # Format
/// `SETRANGE key offset value`: `ERR offset is out of range` when negative, `ERR string
/// exceeds maximum allowed size (proto-max-bulk-len)` when a non-empty value would end past
/// 512 MiB (the default `proto-max-bulk-len`; the executor checks a configured lower one).
pub(super) fn setrange(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let offset = cur.required_i64()?;
    let value = cur.required()?;
    let offset = u64::try_from(offset).map_err(|_| CommandError::OffsetOutOfRange)?;
    if !value.is_empty() && offset.saturating_add(value.len() as u64) > STRING_BYTES_MAX {
        return Err(CommandError::StringTooLong);
    }
    Ok(Command::SetRange { key, offset, value })
}

/// # Format
/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`: options in any order and
/// case, repeats allowed, a negative `MINMATCHLEN` read as 0. Redis checks the keys' types
/// first (`ERR The specified keys must contain string values`), so an option error waits
/// for the executor in [`Lcs::mode`].
pub(super) fn lcs(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let a = cur.required()?;
    let b = cur.required()?;
    let mode = lcs_mode(&cur.rest());
    Ok(Command::Lcs(Lcs { a, b, mode }))
}

/// `LCS`'s options, then `ERR If you want both the length and indexes, please just use IDX.`
fn lcs_mode(args: &[Bytes]) -> Result<LcsMode, CommandError> {
    let (mut idx, mut len, mut with_match_len, mut min_match_len) = (false, false, false, 0);
    let mut at = 0;
    while at < args.len() {
        let option = &args[at];
        if is(option, "IDX") {
            idx = true;
        } else if is(option, "LEN") {
            len = true;
        } else if is(option, "WITHMATCHLEN") {
            with_match_len = true;
        } else if is(option, "MINMATCHLEN") && at + 1 < args.len() {
            min_match_len = parse_i64(&args[at + 1])?.max(0) as u64;
            at += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        at += 1;
    }
    match (idx, len) {
        (true, true) => Err(CommandError::LcsIdxAndLen),
        (true, false) => Ok(LcsMode::Idx {
            min_match_len,
            with_match_len,
        }),
        (false, true) => Ok(LcsMode::Len),
        (false, false) => Ok(LcsMode::String),
    }
}
