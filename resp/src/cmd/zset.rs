//! Sorted set commands. A sorted set is a collection of member cells whose payload is the
//! member's score (`ringcache_storage::collection`); the executor (`src/exec/zset.rs`) reads
//! and edits it.
//!
//! # Format
//! ```text
//! ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
//! ZINCRBY key increment member          ZREM key member [member ...]
//! ZSCORE key member                     ZMSCORE key member [member ...]
//! ZCARD key                             ZCOUNT key min max        ZLEXCOUNT key min max
//! ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
//! ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
//! ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
//! ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
//! ZRANGEBYLEX key min max [LIMIT offset count]
//! ZREVRANGEBYLEX key max min [LIMIT offset count]
//! ZREVRANGE key start stop [WITHSCORES]
//! ZRANK key member                      ZREVRANK key member
//! ZPOPMIN key [count]                   ZPOPMAX key [count]
//! ZRANDMEMBER key [count [WITHSCORES]]
//! ZREMRANGEBYRANK key start stop        ZREMRANGEBYSCORE key min max
//! ZREMRANGEBYLEX key min max
//! ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
//! ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
//! ZDIFF numkeys key [key ...] [WITHSCORES]
//! ZUNIONSTORE dst numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
//! ZINTERSTORE dst numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
//! ZDIFFSTORE dst numkeys key [key ...]
//! ZINTERCARD numkeys key [key ...] [LIMIT limit]
//! ZSCAN key cursor [MATCH pattern] [COUNT count]
//! ```
//!
//! Scores are read as Redis 7.0 reads them ([`crate::float::parse_double`]); score ranges
//! (`1.5`, `(1.5`, `-inf`, `+inf`) by `zslParseRange`'s rules, lex ranges (`[a`, `(a`, `-`,
//! `+`) by `zslParseLexRangeItem`'s. The option loops are Redis's, word for word, so the
//! same request fails with the same error: an option is recognised only where Redis
//! recognises it (`REV` only in `ZRANGE`, `WEIGHTS` only when enough arguments follow), and
//! what Redis checks after looking the keys up (the options of `ZUNION` and friends, of
//! `ZSCAN`) is kept as a `Result` for the executor to answer after its type checks.

use std::cmp::Ordering;

use bytes::Bytes;

use super::Command;
use super::args::{ArgCursor, CommandError, is, parse_i64};
use super::keyspace::{ScanOptions, parse_cursor, scan_options};
use crate::float::{parse_double, parse_range_double};

/// `LONG_MAX / 2`: the largest `ZRANDMEMBER` count allowed with `WITHSCORES`.
const RANDMEMBER_WITHSCORES_COUNT_MAX: i64 = i64::MAX / 2;

/// A sorted set command.
#[derive(Debug, Clone, PartialEq)]
pub enum SortedSetCommand {
    /// `ZADD key [options] score member ...`, and `ZINCRBY key increment member` (an `INCR`).
    Add {
        /// The key.
        key: Bytes,
        /// The options.
        flags: AddFlags,
        /// Scores (already read as floats) and members, in order.
        pairs: Vec<(f64, Bytes)>,
    },
    /// `ZREM key member [member ...]`: answers the members removed.
    Rem {
        /// The key.
        key: Bytes,
        /// The members.
        members: Vec<Bytes>,
    },
    /// `ZSCORE key member`
    Score {
        /// The key.
        key: Bytes,
        /// The member.
        member: Bytes,
    },
    /// `ZMSCORE key member [member ...]`
    MScore {
        /// The key.
        key: Bytes,
        /// The members.
        members: Vec<Bytes>,
    },
    /// `ZCARD key`
    Card(Bytes),
    /// `ZCOUNT key min max`
    Count {
        /// The key.
        key: Bytes,
        /// The scores counted.
        range: ScoreRange,
    },
    /// `ZLEXCOUNT key min max`
    LexCount {
        /// The key.
        key: Bytes,
        /// The members counted.
        range: LexRange,
    },
    /// `ZRANGE`, `ZRANGESTORE`, `ZRANGEBYSCORE`, `ZREVRANGEBYSCORE`, `ZRANGEBYLEX`,
    /// `ZREVRANGEBYLEX`, `ZREVRANGE`.
    Range(RangeQuery),
    /// `ZRANK key member` (`reverse`: `ZREVRANK`).
    Rank {
        /// The key.
        key: Bytes,
        /// The member.
        member: Bytes,
        /// Ranks counted from the highest score.
        reverse: bool,
    },
    /// `ZPOPMIN key [count]` and `ZPOPMAX key [count]`.
    Pop {
        /// The key.
        key: Bytes,
        /// `ZPOPMAX`.
        max: bool,
        /// The count, when given (it changes the RESP3 reply's shape).
        count: Option<u64>,
    },
    /// `ZRANDMEMBER key [count [WITHSCORES]]`
    RandMember {
        /// The key.
        key: Bytes,
        /// The count, when given: negative allows repeats. Never `i64::MIN`; within
        /// ±`LONG_MAX / 2` with `WITHSCORES`.
        count: Option<i64>,
        /// `WITHSCORES`
        withscores: bool,
    },
    /// `ZREMRANGEBYRANK`, `ZREMRANGEBYSCORE`, `ZREMRANGEBYLEX`.
    RemRange {
        /// The key.
        key: Bytes,
        /// The members removed (a [`RangeBy`] never reversed).
        by: RangeBy,
    },
    /// `ZUNION`, `ZINTER`, `ZDIFF`, their `STORE` forms and `ZINTERCARD`.
    Combine(Combine),
    /// `ZSCAN key cursor [MATCH pattern] [COUNT count]`
    Scan {
        /// The key.
        key: Bytes,
        /// Where to resume; 0 starts.
        cursor: u64,
        /// The options, or their error, which Redis answers only for an existing sorted set.
        options: Result<ScanOptions, CommandError>,
    },
}

/// `ZADD` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddFlags {
    /// `NX`: only add new members.
    pub nx: bool,
    /// `XX`: only update existing members.
    pub xx: bool,
    /// `GT`: only update a member to a greater score.
    pub gt: bool,
    /// `LT`: only update a member to a lesser score.
    pub lt: bool,
    /// `CH`: count updated members too.
    pub ch: bool,
    /// `INCR` (and `ZINCRBY`): add to the score, answer the new score.
    pub incr: bool,
}

/// A score range: `min` and `max`, each inclusive unless given with `(`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRange {
    /// The lower bound.
    pub min: f64,
    /// `(min`: the lower bound is excluded.
    pub min_ex: bool,
    /// The upper bound.
    pub max: f64,
    /// `(max`: the upper bound is excluded.
    pub max_ex: bool,
}

impl ScoreRange {
    /// Whether `score` is at or above the lower bound (`zslValueGteMin`).
    pub fn gte_min(&self, score: f64) -> bool {
        if self.min_ex {
            score > self.min
        } else {
            score >= self.min
        }
    }

    /// Whether `score` is at or below the upper bound (`zslValueLteMax`).
    pub fn lte_max(&self, score: f64) -> bool {
        if self.max_ex {
            score < self.max
        } else {
            score <= self.max
        }
    }

    /// Whether `score` is in the range.
    pub fn contains(&self, score: f64) -> bool {
        self.gte_min(score) && self.lte_max(score)
    }
}

/// One end of a lex range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    /// `[member`
    Inclusive(Bytes),
    /// `(member`
    Exclusive(Bytes),
}

impl LexBound {
    /// Whether the bound itself is excluded (`-` and `+` are, as in Redis).
    fn excluded(&self) -> bool {
        !matches!(self, LexBound::Inclusive(_))
    }

    /// Redis's `sdscmplex` of two bounds (`-` and `+` are the shared min and max strings,
    /// equal only to themselves).
    fn cmp_bound(&self, other: &LexBound) -> Ordering {
        use LexBound::{Exclusive, Inclusive, Max, Min};
        match (self, other) {
            (Min, Min) | (Max, Max) => Ordering::Equal,
            (Min, _) | (_, Max) => Ordering::Less,
            (Max, _) | (_, Min) => Ordering::Greater,
            (Inclusive(a) | Exclusive(a), Inclusive(b) | Exclusive(b)) => a.cmp(b),
        }
    }

    /// `sdscmplex(member, bound)`.
    fn cmp_member(member: &[u8], bound: &LexBound) -> Ordering {
        match bound {
            LexBound::Min => Ordering::Greater,
            LexBound::Max => Ordering::Less,
            LexBound::Inclusive(b) | LexBound::Exclusive(b) => member.cmp(b),
        }
    }
}

/// A lex range of members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexRange {
    /// The lower end.
    pub min: LexBound,
    /// The upper end.
    pub max: LexBound,
}

impl LexRange {
    /// Whether no member can be in the range (`min` above `max`, or equal and one excluded).
    pub fn is_empty(&self) -> bool {
        match self.min.cmp_bound(&self.max) {
            Ordering::Greater => true,
            Ordering::Equal => self.min.excluded() || self.max.excluded(),
            Ordering::Less => false,
        }
    }

    /// Whether `member` is at or above the lower end (`zslLexValueGteMin`).
    pub fn gte_min(&self, member: &[u8]) -> bool {
        let cmp = LexBound::cmp_member(member, &self.min);
        if self.min.excluded() {
            cmp == Ordering::Greater
        } else {
            cmp != Ordering::Less
        }
    }

    /// Whether `member` is at or below the upper end (`zslLexValueLteMax`).
    pub fn lte_max(&self, member: &[u8]) -> bool {
        let cmp = LexBound::cmp_member(member, &self.max);
        if self.max.excluded() {
            cmp == Ordering::Less
        } else {
            cmp != Ordering::Greater
        }
    }
}

/// How a range selects members.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeBy {
    /// By rank (0 is the lowest score; negative counts from the end).
    Rank {
        /// The first rank.
        start: i64,
        /// The last rank, included.
        stop: i64,
    },
    /// `BYSCORE`
    Score(ScoreRange),
    /// `BYLEX`
    Lex(LexRange),
}

/// A `ZRANGE`-like query, every spelling of it parsed into one shape.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeQuery {
    /// The source key.
    pub key: Bytes,
    /// `ZRANGESTORE`'s destination.
    pub dest: Option<Bytes>,
    /// The selection; a reversed score or lex range is already given as (min, max).
    pub by: RangeBy,
    /// `REV` (and the `ZREV...` commands): from the highest score down.
    pub reverse: bool,
    /// `LIMIT offset count`'s offset (Redis's default 0; a negative one selects nothing).
    pub offset: i64,
    /// `LIMIT offset count`'s count (Redis's default -1; a negative one is no limit).
    pub limit: i64,
    /// `WITHSCORES`
    pub withscores: bool,
}

/// Which set operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    /// `ZUNION`, `ZUNIONSTORE`
    Union,
    /// `ZINTER`, `ZINTERSTORE`, `ZINTERCARD`
    Inter,
    /// `ZDIFF`, `ZDIFFSTORE`
    Diff,
}

/// `AGGREGATE SUM|MIN|MAX`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregate {
    /// Scores are added (Redis's default).
    #[default]
    Sum,
    /// The lowest score.
    Min,
    /// The highest score.
    Max,
}

/// `ZUNION`, `ZINTER`, `ZDIFF`, `ZUNIONSTORE`, `ZINTERSTORE`, `ZDIFFSTORE`, `ZINTERCARD`.
#[derive(Debug, Clone, PartialEq)]
pub struct Combine {
    /// Which operation.
    pub op: SetOp,
    /// The `STORE` forms' destination.
    pub dest: Option<Bytes>,
    /// `ZINTERCARD`: answer the cardinality only.
    pub cardinality: bool,
    /// The sources (at least one): sorted sets, or sets (every member scores 1).
    pub keys: Vec<Bytes>,
    /// The options, or their error, which Redis answers after checking the sources' types.
    pub options: Result<CombineOptions, CommandError>,
}

/// The options of [`Combine`].
#[derive(Debug, Clone, PartialEq)]
pub struct CombineOptions {
    /// One weight per source (1 unless `WEIGHTS`).
    pub weights: Vec<f64>,
    /// `AGGREGATE`
    pub aggregate: Aggregate,
    /// `WITHSCORES`
    pub withscores: bool,
    /// `ZINTERCARD ... LIMIT n`: stop counting at n; 0 is no limit.
    pub limit: u64,
}

fn zset(command: SortedSetCommand) -> Result<Command, CommandError> {
    Ok(Command::SortedSet(command))
}

/// # Format
/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]`
///
/// Options come before the first score, in any order; the first word that is not one starts
/// the pairs. Redis's checks, in its order: pairs missing or odd (`ERR syntax error`), `NX`
/// with `XX`, `GT`/`LT`/`NX` together, `INCR` with several pairs, then each score.
pub(super) fn zadd(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    add(cur, key, AddFlags::default())
}

/// # Format
/// `ZINCRBY key increment member`: Redis runs it as `ZADD key INCR increment member`, so an
/// option word in place of the increment (`ZINCRBY key NX member`) is a syntax error.
pub(super) fn zincrby(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let flags = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    add(cur, key, flags)
}

fn add(cur: &mut ArgCursor, key: Bytes, mut flags: AddFlags) -> Result<Command, CommandError> {
    let args = cur.rest();
    let mut at = 0;
    while let Some(word) = args.get(at) {
        let flag = if is(word, "nx") {
            &mut flags.nx
        } else if is(word, "xx") {
            &mut flags.xx
        } else if is(word, "ch") {
            &mut flags.ch
        } else if is(word, "incr") {
            &mut flags.incr
        } else if is(word, "gt") {
            &mut flags.gt
        } else if is(word, "lt") {
            &mut flags.lt
        } else {
            break;
        };
        *flag = true;
        at += 1;
    }
    let pairs = &args[at..];
    if pairs.is_empty() || pairs.len() % 2 == 1 {
        return Err(CommandError::Syntax);
    }
    if flags.nx && flags.xx {
        return Err(CommandError::ZAddNxXx);
    }
    if [flags.gt, flags.lt, flags.nx]
        .iter()
        .filter(|&&set| set)
        .count()
        > 1
    {
        return Err(CommandError::ZAddGtLtNx);
    }
    if flags.incr && pairs.len() > 2 {
        return Err(CommandError::ZAddIncrPairs);
    }
    let pairs = pairs
        .chunks_exact(2)
        .map(|pair| Ok((score(&pair[0])?, pair[1].clone())))
        .collect::<Result<_, CommandError>>()?;
    zset(SortedSetCommand::Add { key, flags, pairs })
}

/// A score or increment argument.
fn score(raw: &[u8]) -> Result<f64, CommandError> {
    parse_double(raw).ok_or(CommandError::NotFloat)
}

/// # Format
/// `ZREM key member [member ...]`
pub(super) fn zrem(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    zset(SortedSetCommand::Rem {
        key,
        members: cur.rest(),
    })
}

/// # Format
/// `ZSCORE key member`
pub(super) fn zscore(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let member = cur.required()?;
    zset(SortedSetCommand::Score { key, member })
}

/// # Format
/// `ZMSCORE key member [member ...]`
pub(super) fn zmscore(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    zset(SortedSetCommand::MScore {
        key,
        members: cur.rest(),
    })
}

/// # Format
/// `ZCARD key`
pub(super) fn zcard(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    zset(SortedSetCommand::Card(cur.required()?))
}

/// # Format
/// `ZCOUNT key min max`
pub(super) fn zcount(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let range = score_range(&cur.required()?, &cur.required()?)?;
    zset(SortedSetCommand::Count { key, range })
}

/// # Format
/// `ZLEXCOUNT key min max`
pub(super) fn zlexcount(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let range = lex_range(&cur.required()?, &cur.required()?)?;
    zset(SortedSetCommand::LexCount { key, range })
}

/// Redis's `zslParseRange`: each bound a float, after an optional `(` that excludes it.
///
/// # Errors
/// `ERR min or max is not a float`.
fn score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CommandError> {
    let bound = |raw: &[u8]| -> Result<(f64, bool), CommandError> {
        let (text, excluded) = match raw.strip_prefix(b"(") {
            Some(rest) => (rest, true),
            None => (raw, false),
        };
        let value = parse_range_double(text).ok_or(CommandError::MinMaxNotFloat)?;
        Ok((value, excluded))
    };
    let (min, min_ex) = bound(min)?;
    let (max, max_ex) = bound(max)?;
    Ok(ScoreRange {
        min,
        min_ex,
        max,
        max_ex,
    })
}

/// Redis's `zslParseLexRange`: each bound `-`, `+`, `[member` or `(member`. Redis reads
/// the bound as a C string for `-` and `+`, so `-` followed by a NUL byte is `-`.
///
/// # Errors
/// `ERR min or max not valid string range item`.
fn lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, CommandError> {
    let bound = |raw: &[u8]| -> Result<LexBound, CommandError> {
        let alone = raw.get(1).is_none_or(|&b| b == 0);
        match raw.first() {
            Some(b'-') if alone => Ok(LexBound::Min),
            Some(b'+') if alone => Ok(LexBound::Max),
            Some(b'[') => Ok(LexBound::Inclusive(Bytes::copy_from_slice(&raw[1..]))),
            Some(b'(') => Ok(LexBound::Exclusive(Bytes::copy_from_slice(&raw[1..]))),
            _ => Err(CommandError::MinMaxNotLex),
        }
    };
    Ok(LexRange {
        min: bound(min)?,
        max: bound(max)?,
    })
}

/// Which selection a range command takes, when the command fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// # Format
/// `ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
pub(super) fn zrange(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    range(cur, false, None, None)
}

/// # Format
/// `ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]`
pub(super) fn zrangestore(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    range(cur, true, None, None)
}

/// # Format
/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`
pub(super) fn zrangebyscore(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    range(cur, false, Some(By::Score), Some(false))
}

/// # Format
/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`
pub(super) fn zrevrangebyscore(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    range(cur, false, Some(By::Score), Some(true))
}

/// # Format
/// `ZRANGEBYLEX key min max [LIMIT offset count]`
pub(super) fn zrangebylex(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    range(cur, false, Some(By::Lex), Some(false))
}

/// # Format
/// `ZREVRANGEBYLEX key max min [LIMIT offset count]`
pub(super) fn zrevrangebylex(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    range(cur, false, Some(By::Lex), Some(true))
}

/// # Format
/// `ZREVRANGE key start stop [WITHSCORES]`
pub(super) fn zrevrange(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    range(cur, false, Some(By::Rank), Some(true))
}

/// Redis's `zrangeGenericCommand`: every range command is one with the selection and the
/// direction fixed or not. The options are read in order (a bad `LIMIT` number fails at
/// once); `WITHSCORES` is unknown to `ZRANGESTORE`, `REV` and `BYSCORE`/`BYLEX` are known
/// only where not fixed. Then the conflicts, then the range itself.
fn range(
    cur: &mut ArgCursor,
    store: bool,
    fixed_by: Option<By>,
    fixed_reverse: Option<bool>,
) -> Result<Command, CommandError> {
    let dest = if store { Some(cur.required()?) } else { None };
    let key = cur.required()?;
    let first = cur.required()?;
    let second = cur.required()?;
    let options = cur.rest();
    let (mut by, mut reverse) = (fixed_by, fixed_reverse);
    let (mut withscores, mut offset, mut limit) = (false, 0, -1);
    let mut at = 0;
    while let Some(word) = options.get(at) {
        let left = options.len() - at - 1;
        if !store && is(word, "withscores") {
            withscores = true;
        } else if is(word, "limit") && left >= 2 {
            offset = parse_i64(&options[at + 1])?;
            limit = parse_i64(&options[at + 2])?;
            at += 2;
        } else if fixed_reverse.is_none() && reverse.is_none() && is(word, "rev") {
            reverse = Some(true);
        } else if fixed_by.is_none() && by.is_none() && is(word, "bylex") {
            by = Some(By::Lex);
        } else if fixed_by.is_none() && by.is_none() && is(word, "byscore") {
            by = Some(By::Score);
        } else {
            return Err(CommandError::Syntax);
        }
        at += 1;
    }
    let by = by.unwrap_or(By::Rank);
    let reverse = reverse.unwrap_or(false);
    if limit != -1 && by == By::Rank {
        return Err(CommandError::LimitWithoutBy);
    }
    if withscores && by == By::Lex {
        return Err(CommandError::WithScoresByLex);
    }
    // A reversed score or lex range is given as max, min.
    let (min, max) = match (reverse, by) {
        (true, By::Score | By::Lex) => (second, first),
        _ => (first, second),
    };
    let by = match by {
        By::Rank => RangeBy::Rank {
            start: parse_i64(&min)?,
            stop: parse_i64(&max)?,
        },
        By::Score => RangeBy::Score(score_range(&min, &max)?),
        By::Lex => RangeBy::Lex(lex_range(&min, &max)?),
    };
    zset(SortedSetCommand::Range(RangeQuery {
        key,
        dest,
        by,
        reverse,
        offset,
        limit,
        withscores,
    }))
}

/// # Format
/// `ZRANK key member`
pub(super) fn zrank(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    rank(cur, false)
}

/// # Format
/// `ZREVRANK key member`
pub(super) fn zrevrank(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    rank(cur, true)
}

fn rank(cur: &mut ArgCursor, reverse: bool) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let member = cur.required()?;
    zset(SortedSetCommand::Rank {
        key,
        member,
        reverse,
    })
}

/// # Format
/// `ZPOPMIN key [count]`: more arguments are a syntax error before the count is read; a
/// count that is not a non-negative integer is `ERR value is out of range, must be positive`.
pub(super) fn zpopmin(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    pop(cur, false)
}

/// # Format
/// `ZPOPMAX key [count]`, as `ZPOPMIN`.
pub(super) fn zpopmax(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    pop(cur, true)
}

fn pop(cur: &mut ArgCursor, max: bool) -> Result<Command, CommandError> {
    if cur.argc() > 3 {
        return Err(CommandError::Syntax);
    }
    let key = cur.required()?;
    let count = match cur.next() {
        Some(raw) => Some(
            parse_i64(&raw)
                .ok()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or(CommandError::NotPositive)?,
        ),
        None => None,
    };
    zset(SortedSetCommand::Pop { key, max, count })
}

/// # Format
/// `ZRANDMEMBER key [count [WITHSCORES]]`: the count is an integer other than
/// `i64::MIN`, checked before the options; with `WITHSCORES` it must be within
/// ±`LONG_MAX / 2` (`ERR value is out of range`).
pub(super) fn zrandmember(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let argc = cur.argc();
    let key = cur.required()?;
    let Some(count) = cur.next() else {
        return zset(SortedSetCommand::RandMember {
            key,
            count: None,
            withscores: false,
        });
    };
    let count = parse_i64(&count)?;
    if count == i64::MIN {
        return Err(CommandError::CountOutOfRange);
    }
    let option = cur.next();
    let withscores = match option {
        Some(word) if argc == 4 && is(&word, "withscores") => true,
        Some(_) => return Err(CommandError::Syntax),
        None => false,
    };
    if withscores
        && !(-RANDMEMBER_WITHSCORES_COUNT_MAX..=RANDMEMBER_WITHSCORES_COUNT_MAX).contains(&count)
    {
        return Err(CommandError::ValueOutOfRange);
    }
    zset(SortedSetCommand::RandMember {
        key,
        count: Some(count),
        withscores,
    })
}

/// # Format
/// `ZREMRANGEBYRANK key start stop`
pub(super) fn zremrangebyrank(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let start = parse_i64(&cur.required()?)?;
    let stop = parse_i64(&cur.required()?)?;
    zset(SortedSetCommand::RemRange {
        key,
        by: RangeBy::Rank { start, stop },
    })
}

/// # Format
/// `ZREMRANGEBYSCORE key min max`
pub(super) fn zremrangebyscore(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let range = score_range(&cur.required()?, &cur.required()?)?;
    zset(SortedSetCommand::RemRange {
        key,
        by: RangeBy::Score(range),
    })
}

/// # Format
/// `ZREMRANGEBYLEX key min max`
pub(super) fn zremrangebylex(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let range = lex_range(&cur.required()?, &cur.required()?)?;
    zset(SortedSetCommand::RemRange {
        key,
        by: RangeBy::Lex(range),
    })
}

/// # Format
/// `ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
pub(super) fn zunion(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    combine(cur, SetOp::Union, false, false)
}

/// # Format
/// `ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
pub(super) fn zinter(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    combine(cur, SetOp::Inter, false, false)
}

/// # Format
/// `ZDIFF numkeys key [key ...] [WITHSCORES]`
pub(super) fn zdiff(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    combine(cur, SetOp::Diff, false, false)
}

/// # Format
/// `ZUNIONSTORE dst numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]`
pub(super) fn zunionstore(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    combine(cur, SetOp::Union, true, false)
}

/// # Format
/// `ZINTERSTORE dst numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]`
pub(super) fn zinterstore(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    combine(cur, SetOp::Inter, true, false)
}

/// # Format
/// `ZDIFFSTORE dst numkeys key [key ...]`
pub(super) fn zdiffstore(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    combine(cur, SetOp::Diff, true, false)
}

/// # Format
/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`
pub(super) fn zintercard(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    combine(cur, SetOp::Inter, false, true)
}

/// Redis's `zunionInterDiffGenericCommand` up to its key lookups: `numkeys` an integer of
/// at least 1 that the arguments hold. The options after the keys are read here too, but
/// their error is kept for the executor: Redis answers `WRONGTYPE` for a source first.
fn combine(
    cur: &mut ArgCursor,
    op: SetOp,
    store: bool,
    cardinality: bool,
) -> Result<Command, CommandError> {
    let dest = if store { Some(cur.required()?) } else { None };
    let numkeys = parse_i64(&cur.required()?)?;
    if numkeys < 1 {
        return Err(CommandError::NoInputKey(cur.name()));
    }
    let mut rest = cur.rest();
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > rest.len() {
        return Err(CommandError::Syntax);
    }
    let options = rest.split_off(numkeys);
    let options = combine_options(&options, numkeys, op, store, cardinality);
    zset(SortedSetCommand::Combine(Combine {
        op,
        dest,
        cardinality,
        keys: rest,
        options,
    }))
}

/// The option loop of `zunionInterDiffGenericCommand`: `WEIGHTS` only when a weight per
/// key follows, `AGGREGATE` with its word, `WITHSCORES` only without a destination,
/// `LIMIT` only for `ZINTERCARD`; `ZDIFF` and `ZINTERCARD` take neither weights nor an
/// aggregate.
fn combine_options(
    options: &[Bytes],
    numkeys: usize,
    op: SetOp,
    store: bool,
    cardinality: bool,
) -> Result<CombineOptions, CommandError> {
    let mut parsed = CombineOptions {
        weights: vec![1.0; numkeys],
        aggregate: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    let weighted = op != SetOp::Diff && !cardinality;
    let mut at = 0;
    while let Some(word) = options.get(at) {
        let remaining = options.len() - at;
        if weighted && remaining > numkeys && is(word, "weights") {
            for (weight, raw) in parsed.weights.iter_mut().zip(&options[at + 1..]) {
                *weight = parse_double(raw).ok_or(CommandError::WeightNotFloat)?;
            }
            at += 1 + numkeys;
        } else if weighted && remaining >= 2 && is(word, "aggregate") {
            let name = &options[at + 1];
            parsed.aggregate = if is(name, "sum") {
                Aggregate::Sum
            } else if is(name, "min") {
                Aggregate::Min
            } else if is(name, "max") {
                Aggregate::Max
            } else {
                return Err(CommandError::Syntax);
            };
            at += 2;
        } else if !store && !cardinality && is(word, "withscores") {
            parsed.withscores = true;
            at += 1;
        } else if cardinality && remaining >= 2 && is(word, "limit") {
            parsed.limit = parse_i64(&options[at + 1])
                .ok()
                .and_then(|n| u64::try_from(n).ok())
                .ok_or(CommandError::LimitNegative)?;
            at += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(parsed)
}

/// # Format
/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: the cursor as `SCAN`'s (`ERR invalid
/// cursor`), checked first; the options' errors (a `COUNT` that is not an integer, or
/// below 1, an unknown word, `TYPE`) only for an existing sorted set, as in Redis.
pub(super) fn zscan(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let key = cur.required()?;
    let cursor = parse_cursor(&cur.required()?).ok_or(CommandError::InvalidCursor)?;
    let options = scan_options(cur);
    // An error leaves arguments unread; they belong to the deferred error.
    cur.skip_rest();
    zset(SortedSetCommand::Scan {
        key,
        cursor,
        options,
    })
}
