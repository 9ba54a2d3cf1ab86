//! Command errors with Redis 7.0's texts, and the argument cursor every family parses with.

use bytes::Bytes;

use super::Spec;
use crate::level::LevelError;
use crate::parser::string2ll;

/// Redis's default `proto-max-bulk-len`, the longest string `SETRANGE` may build.
pub const STRING_BYTES_MAX: u64 = 512 * 1024 * 1024;

/// A command that cannot run as given. `Display` is the full Redis error text with its prefix,
/// as sent after the `-`. Nothing was read or written; the connection stays open.
///
/// Some variants are not produced by parsing but are here so that the executor answers with
/// the same texts from the same place (`IncrOverflow`, `NotIntegerValue`, `DbIndexOutOfRange`,
/// `UnknownConfig`, `ConfigSetFailed`, `NoShutdownInProgress`, `StringTooLong` for `APPEND`,
/// `NotHyperLogLog`, `CorruptHyperLogLog`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Arity: holds Redis's full name, `get` or `client|setname`.
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(&'static str),
    /// An option that is unknown, misplaced or conflicting.
    #[error("ERR syntax error")]
    Syntax,
    /// An integer argument that is not a valid `i64` in Redis's `string2ll` sense.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// A float argument that is not valid.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// An expiry that is ≤ 0 where not allowed, or overflows; holds the command name.
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpireTime(&'static str),
    /// No such command. The texts are already cut and cleaned as Redis does.
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand {
        /// The command name, at most 128 bytes.
        name: String,
        /// `'arg' ` for each argument while the text is under 128 bytes.
        args: String,
    },
    /// No such subcommand of a container command.
    #[error("ERR unknown subcommand '{sub}'. Try {command} HELP.")]
    UnknownSubcommand {
        /// The container, uppercased: `CLIENT`.
        command: &'static str,
        /// The subcommand as given, at most 128 bytes.
        sub: String,
    },
    /// `EVAL script -1`.
    #[error("ERR Number of keys can't be negative")]
    NegativeNumKeys,
    /// `EVAL script 2 k`.
    #[error("ERR Number of keys can't be greater than number of args")]
    TooManyNumKeys,
    /// `SCRIPT FLUSH x`.
    #[error("ERR SCRIPT FLUSH only support SYNC|ASYNC option")]
    ScriptFlushMode,
    /// A subcommand given more arguments than it takes, past the table's arity
    /// (`PUBSUB CHANNELS a b`).
    #[error(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {container} HELP."
    )]
    SubcommandArity {
        /// The subcommand as given.
        sub: String,
        /// The container, uppercased: `PUBSUB`.
        container: &'static str,
    },
    /// A string would exceed `proto-max-bulk-len` (`SETRANGE`, `APPEND`).
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    /// A negative `SETRANGE` offset.
    #[error("ERR offset is out of range")]
    OffsetOutOfRange,
    /// `DECRBY key -9223372036854775808`.
    #[error("ERR decrement would overflow")]
    DecrementOverflow,
    /// `INCRBY` and friends whose result overflows `i64` (executor).
    #[error("ERR increment or decrement would overflow")]
    IncrOverflow,
    /// `INCRBY` on a value that is not an integer (executor): the same text as `NotInteger`.
    #[error("ERR value is not an integer or out of range")]
    NotIntegerValue,
    /// `INCRBYFLOAT` whose result is not finite.
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    /// A `SCAN` cursor that is not an unsigned integer.
    #[error("ERR invalid cursor")]
    InvalidCursor,
    /// `EXPIRE ... NX` with `XX`, `GT` or `LT`.
    #[error("ERR NX and XX, GT or LT options at the same time are not compatible")]
    ExpireNxConflict,
    /// `EXPIRE ... GT LT`.
    #[error("ERR GT and LT options at the same time are not compatible")]
    ExpireGtLt,
    /// `EXPIRE` with an option it does not know.
    #[error("ERR Unsupported option {0}")]
    UnsupportedOption(String),
    /// `HELLO` with a protocol version that is not an integer.
    #[error("ERR Protocol version is not an integer or out of range")]
    ProtocolVersionNotInteger,
    /// `HELLO` with a protocol version other than 2 or 3.
    #[error("NOPROTO unsupported protocol version")]
    NoProto,
    /// `HELLO` with an unknown option or one missing its arguments.
    #[error("ERR Syntax error in HELLO option '{0}'")]
    HelloOption(String),
    /// A client name with a byte outside `!`..=`~`.
    #[error("ERR Client names cannot contain spaces, newlines or special characters.")]
    InvalidClientName,
    /// A `CLIENT SETINFO` value with a byte outside `!`..=`~`; holds the attribute as given.
    #[error("ERR {0} cannot contain spaces, newlines or special characters.")]
    InvalidClientAttr(String),
    /// `CLIENT SETINFO` with an attribute other than `LIB-NAME` or `LIB-VER`.
    #[error("ERR Unrecognized option '{0}'")]
    UnrecognizedOption(String),
    /// `CLIENT LIST|KILL TYPE` with an unknown type.
    #[error("ERR Unknown client type '{0}'")]
    UnknownClientType(String),
    /// `CLIENT LIST ID` with an id that is not an integer.
    #[error("ERR Invalid client ID")]
    InvalidClientId,
    /// `CLIENT KILL ID` with an id that is not a positive integer.
    #[error("ERR client-id should be greater than 0")]
    ClientIdNotPositive,
    /// `CLIENT KILL USER` naming a user other than `default`.
    #[error("ERR No such user '{0}'")]
    NoSuchUser(String),
    /// `SELECT` of a database other than 0 (executor).
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    /// `CONFIG SET` of an unknown parameter (executor).
    #[error("ERR Unknown option or number of arguments for CONFIG SET - '{0}'")]
    UnknownConfig(String),
    /// `CONFIG SET` that failed on a parameter (executor), e.g. reason `duplicate parameter`.
    #[error("ERR CONFIG SET failed (possibly related to argument '{arg}') - {reason}")]
    ConfigSetFailed {
        /// The parameter name as given.
        arg: String,
        /// Why.
        reason: String,
    },
    /// `SHUTDOWN ABORT` (executor: no shutdown is ever pending long enough).
    #[error("ERR No shutdown in progress.")]
    NoShutdownInProgress,
    /// `PFADD`, `PFCOUNT`, `PFMERGE` of a string that is not a HyperLogLog (executor):
    /// Redis's `isHLLObjectOrReply` checks the header and, when dense, the length.
    #[error("WRONGTYPE Key is not a valid HyperLogLog string value.")]
    NotHyperLogLog,
    /// A key of one type used by a command of another (executor).
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// `HINCRBYFLOAT` with an infinite increment.
    #[error("ERR value is NaN or Infinity")]
    NanOrInfinityArgument,
    /// A random-pick count of `i64::MIN` (`HRANDFIELD`, `SRANDMEMBER`, `ZRANDMEMBER`).
    #[error(
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    )]
    CountOutOfRange,
    /// A count that overflows when doubled (`HRANDFIELD ... WITHVALUES`).
    #[error("ERR value is out of range")]
    ValueOutOfRange,
    /// `HINCRBY` of a field that is not an integer (executor).
    #[error("ERR hash value is not an integer")]
    HashValueNotInteger,
    /// `HINCRBYFLOAT` of a field that is not a float (executor).
    #[error("ERR hash value is not a float")]
    HashValueNotFloat,
    /// A write that would make a collection larger than one record may be (executor).
    #[error("ERR the collection would exceed 512 MB (collection bytes max)")]
    CollectionTooLarge,
    /// A collection whose stored encoding does not decode (executor).
    #[error("ERR corrupt collection value")]
    CorruptCollection,
    /// A HyperLogLog whose sparse registers do not add up (executor).
    #[error("INVALIDOBJ Corrupted HLL object detected")]
    CorruptHyperLogLog,
    // ----- list
    /// A count that must be ≥ 0 (`LPOP key count`), not an integer or negative.
    #[error("ERR value is out of range, must be positive")]
    NotPositive,
    /// `LPOS ... RANK 0`.
    #[error(
        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
         or use negative to start from the end of the list"
    )]
    RankZero,
    /// `LPOS ... COUNT n` with `n` negative or not an integer.
    #[error("ERR COUNT can't be negative")]
    CountNegative,
    /// `LPOS ... MAXLEN n` with `n` negative or not an integer.
    #[error("ERR MAXLEN can't be negative")]
    MaxlenNegative,
    /// A `numkeys` (`LMPOP`) below 1 or not an integer.
    #[error("ERR numkeys should be greater than 0")]
    NumKeysNotPositive,
    /// An `LMPOP ... COUNT n` with `n` below 1 or not an integer.
    #[error("ERR count should be greater than 0")]
    CountNotPositive,
    /// `LSET` of a key that does not exist (executor).
    #[error("ERR no such key")]
    NoSuchKey,
    /// `COPY key key` (in the one database).
    #[error("ERR source and destination objects are the same")]
    SameObject,
    /// `LSET` of an index past either end (executor).
    #[error("ERR index out of range")]
    IndexOutOfRange,
    /// A blocking command's timeout (`BLPOP`) that is not a float Redis's `strtold` reads.
    #[error("ERR timeout is not a float or out of range")]
    TimeoutNotFloat,
    /// A blocking command's timeout that is negative (or too large for Redis's `long long`
    /// milliseconds: `inf`, `1e400`, which Redis reports as negative too).
    #[error("ERR timeout is negative")]
    TimeoutNegative,
    // ----- list end
    // ----- set
    /// An integer outside the range a command allows (`SRANDMEMBER key -9223372036854775808`).
    #[error("ERR value is out of range, value must between {min} and {max}")]
    OutOfRange {
        /// The smallest value allowed.
        min: i64,
        /// The largest value allowed.
        max: i64,
    },
    /// A `numkeys` argument larger than the arguments after it.
    #[error("ERR Number of keys can't be greater than number of args")]
    NumKeysOverArgs,
    /// A `LIMIT` (`SINTERCARD`) that is negative or not an integer.
    #[error("ERR LIMIT can't be negative")]
    LimitNegative,
    /// `SRANDMEMBER key -count` asking for more picks than one reply may hold (executor; a
    /// ringcache limit: Redis builds the reply however long, which can exhaust its memory).
    #[error("ERR count is out of range, at most {0} members may repeat in one reply")]
    TooManyPicks(u64),
    // ----- set end
    // ----- sorted set
    /// A score range bound that is not a float (`ZCOUNT`, `ZRANGE ... BYSCORE`).
    #[error("ERR min or max is not a float")]
    MinMaxNotFloat,
    /// A lex range bound that does not start with `[` or `(` and is not `-` or `+`.
    #[error("ERR min or max not valid string range item")]
    MinMaxNotLex,
    /// `ZADD ... NX XX`.
    #[error("ERR XX and NX options at the same time are not compatible")]
    ZAddNxXx,
    /// `ZADD` with two of `GT`, `LT`, `NX`.
    #[error("ERR GT, LT, and/or NX options at the same time are not compatible")]
    ZAddGtLtNx,
    /// `ZADD ... INCR` with more than one score-member pair.
    #[error("ERR INCR option supports a single increment-element pair")]
    ZAddIncrPairs,
    /// `ZINCRBY` or `ZADD INCR` adding `-inf` to `inf` (executor).
    #[error("ERR resulting score is not a number (NaN)")]
    ScoreNaN,
    /// `ZRANGE` (rank) with `LIMIT`.
    #[error(
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    )]
    LimitWithoutBy,
    /// `ZRANGE ... BYLEX WITHSCORES`.
    #[error("ERR syntax error, WITHSCORES not supported in combination with BYLEX")]
    WithScoresByLex,
    /// `ZUNION 0 ...`: holds the command's name.
    #[error("ERR at least 1 input key is needed for '{0}' command")]
    NoInputKey(&'static str),
    /// `ZUNION ... WEIGHTS x` with a weight that is not a float.
    #[error("ERR weight value is not a float")]
    WeightNotFloat,
    // ----- sorted set end
    // ----- bitmap
    /// A bit offset that is not an integer, negative, or past 512 MiB (`SETBIT`, `GETBIT`,
    /// `BITFIELD`).
    #[error("ERR bit offset is not an integer or out of range")]
    BitOffset,
    /// A `SETBIT` value other than 0 or 1.
    #[error("ERR bit is not an integer or out of range")]
    BitValue,
    /// A `BITPOS` bit other than 0 or 1.
    #[error("ERR The bit argument must be 1 or 0.")]
    BitArgument,
    /// `BITOP NOT` with more than one source.
    #[error("ERR BITOP NOT must be called with a single source key.")]
    BitopNotSingleSource,
    /// A `BITFIELD` type other than `i1`..`i64`, `u1`..`u63`.
    #[error(
        "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported \
         but i64 is."
    )]
    BitfieldType,
    /// `BITFIELD ... OVERFLOW x` with `x` not `WRAP`, `SAT` or `FAIL`.
    #[error("ERR Invalid OVERFLOW type specified")]
    BitfieldOverflowType,
    /// `BITFIELD_RO` with a `SET` or `INCRBY`.
    #[error("ERR BITFIELD_RO only supports the GET subcommand")]
    BitfieldReadOnly,
    /// `LCS` of a key that holds a collection (executor).
    #[error("ERR The specified keys must contain string values")]
    LcsNotString,
    /// `LCS ... IDX LEN`.
    #[error("ERR If you want both the length and indexes, please just use IDX.")]
    LcsIdxAndLen,
    /// `LCS` whose table would exceed `proto-max-bulk-len` bytes (executor).
    #[error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")]
    LcsTooLarge,
    // ----- bitmap end
    /// A bad `CONSISTENCY` level.
    #[error(transparent)]
    Level(#[from] LevelError),
}

/// Redis builds error texts with `%s`, which stops at a NUL byte, and then replaces CR and LF
/// with spaces (`addReplyErrorFormat`); bytes that are not UTF-8 are replaced here.
pub(crate) fn error_text(raw: &[u8]) -> String {
    let raw = match memchr::memchr(0, raw) {
        Some(nul) => &raw[..nul],
        None => raw,
    };
    String::from_utf8_lossy(raw).replace(['\r', '\n'], " ")
}

/// [`error_text`] cut to at most `max` bytes, like `%.128s`.
pub(crate) fn error_text_max(raw: &[u8], max: usize) -> String {
    let raw = match memchr::memchr(0, raw) {
        Some(nul) => &raw[..nul],
        None => raw,
    };
    error_text(&raw[..raw.len().min(max)])
}

/// Redis 7.0's text for an unknown command: the name cut to 128 bytes, then `'arg' ` for each
/// argument while the list is shorter than 128 bytes, each cut to what is left of the 128.
pub fn unknown_command(args: &[Bytes]) -> CommandError {
    let name = args
        .first()
        .map(|n| error_text_max(n, 128))
        .unwrap_or_default();
    let mut list: Vec<u8> = Vec::new();
    for arg in args.iter().skip(1) {
        if list.len() >= 128 {
            break;
        }
        let arg = match memchr::memchr(0, arg) {
            Some(nul) => &arg[..nul],
            None => &arg[..],
        };
        let room = 128 - list.len();
        list.push(b'\'');
        list.extend_from_slice(&arg[..arg.len().min(room)]);
        list.extend_from_slice(b"' ");
    }
    CommandError::UnknownCommand {
        name,
        args: error_text(&list),
    }
}

/// A cursor over one request's arguments; a parse function takes what it expects, and
/// [`Request::parse`](super::Request::parse) then checks with [`ArgCursor::finish`] that
/// nothing is left.
#[derive(Debug)]
pub(crate) struct ArgCursor {
    args: std::vec::IntoIter<Bytes>,
    spec: &'static Spec,
    argc: usize,
}

impl ArgCursor {
    /// A cursor after the command name of `args`, a request for `spec`.
    pub(crate) fn new(args: Vec<Bytes>, spec: &'static Spec) -> Self {
        let argc = args.len();
        let mut args = args.into_iter();
        args.next();
        ArgCursor { args, spec, argc }
    }

    /// The command's lowercase name, for error texts.
    pub(crate) fn name(&self) -> &'static str {
        self.spec.name
    }

    /// How many arguments the request had, the name included.
    pub(crate) fn argc(&self) -> usize {
        self.argc
    }

    /// Drops every argument left (commands that ignore extra arguments, like `QUIT`).
    pub(crate) fn skip_rest(&mut self) {
        self.args.by_ref().for_each(drop);
    }

    /// Arguments left.
    pub(crate) fn remaining(&self) -> usize {
        self.args.len()
    }

    /// The next argument, if any.
    pub(crate) fn next(&mut self) -> Option<Bytes> {
        self.args.next()
    }

    /// The next argument, or a syntax error (an option missing its value).
    pub(crate) fn next_or_syntax(&mut self) -> Result<Bytes, CommandError> {
        self.args.next().ok_or(CommandError::Syntax)
    }

    /// The next argument, which arity checking guarantees; a syntax error otherwise.
    pub(crate) fn required(&mut self) -> Result<Bytes, CommandError> {
        self.next_or_syntax()
    }

    /// The next argument as an `i64`.
    pub(crate) fn required_i64(&mut self) -> Result<i64, CommandError> {
        parse_i64(&self.required()?)
    }

    /// Every argument left.
    pub(crate) fn rest(&mut self) -> Vec<Bytes> {
        self.args.by_ref().collect()
    }

    /// Every argument left, in pairs; `None` for an odd count.
    pub(crate) fn pairs(&mut self) -> Option<Vec<(Bytes, Bytes)>> {
        if !self.args.len().is_multiple_of(2) {
            return None;
        }
        let mut pairs = Vec::with_capacity(self.args.len() / 2);
        while let (Some(a), Some(b)) = (self.args.next(), self.args.next()) {
            pairs.push((a, b));
        }
        Some(pairs)
    }

    /// Checks that nothing is left over.
    pub(crate) fn finish(&self) -> Result<(), CommandError> {
        if self.args.len() == 0 {
            Ok(())
        } else {
            Err(CommandError::Syntax)
        }
    }
}

/// An integer argument, as Redis's `getLongLongFromObject` (`string2ll`).
///
/// # Errors
/// [`CommandError::NotInteger`].
pub fn parse_i64(raw: &[u8]) -> Result<i64, CommandError> {
    string2ll(raw).ok_or(CommandError::NotInteger)
}

/// Whether `raw` equals the ASCII keyword `word`, ignoring case.
pub(crate) fn is(raw: &[u8], word: &str) -> bool {
    raw.eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's `validateClientName`/`validateClientAttr`: bytes `!`..=`~` only.
pub(crate) fn is_valid_client_name(raw: &[u8]) -> bool {
    raw.iter().all(|&b| (b'!'..=b'~').contains(&b))
}
