//! Typed commands: the mini-redis shape, `args → Request` then the server applies it.
//!
//! - `table.rs`, [`TABLE`]: the command table, one [`Spec`] per command (name, arity, flags, key
//!   positions, docs, parse function). Parsing, `COMMAND`, key extraction, statistics and the
//!   `denyoom`/`no_auth` checks all read it; it is the only list of command names. Its module
//!   docs say how to add a command.
//! - [`connection`], [`server`], [`strings`], [`bitmap`], [`keyspace`], [`hyperloglog`],
//!   [`hash`], [`set`], [`zset`], [`list`], [`pubsub`], [`scripting`]: one file per
//!   family, with a parse function and a `# Format` block per command.
//! - `args`: the argument cursor every parse function reads from, and [`CommandError`].
//!
//! Parsing ends by checking that no argument is left over. Errors carry Redis 7.0's exact
//! texts, so a client sees the Redis it knows.

use bytes::Bytes;

use crate::level::Level;

pub mod bitmap;
pub mod connection;
pub mod hash;
pub mod hyperloglog;
pub mod keyspace;
pub mod list;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod set;
pub mod strings;
pub mod transaction;
pub mod zset;

mod args;
mod table;
pub use args::{CommandError, STRING_BYTES_MAX, parse_i64, unknown_command};
pub use bitmap::BitmapCommand;
pub use hash::HashCommand;
pub use keyspace::{ObjectCommand, ScanOptions};
pub use list::ListCommand;
pub use pubsub::PubSubCommand;
pub use scripting::{ScriptCommand, ScriptSource};
pub use server::MemoryCommand;
pub use set::SetCommand;
pub use table::{Access, Entry, Family, Flags, KeyRange, Request, Spec, TABLE, lookup};
pub use zset::SortedSetCommand;

/// Every command ringcache understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    // ----- connection (cmd/connection.rs)
    /// `PING [message]`
    Ping(Option<Bytes>),
    /// `ECHO message`
    Echo(Bytes),
    /// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
    Hello(Hello),
    /// `AUTH [username] password`
    Auth {
        /// `None` means the `default` user.
        username: Option<Bytes>,
        /// The password to check against `requirepass`.
        password: Bytes,
    },
    /// `SELECT index`: only 0 exists.
    Select(i64),
    /// `QUIT`
    Quit,
    /// `RESET`
    Reset,
    /// `CLIENT <subcommand> ...`
    Client(ClientCommand),
    /// `CONSISTENCY [READ|WRITE] [level]`: the connection's default levels.
    Consistency(ConsistencyCommand),

    // ----- server (cmd/server.rs)
    /// `COMMAND [COUNT | INFO name... | DOCS name... | LIST]`
    CommandInfo(CommandInfoCommand),
    /// `INFO [section ...]`
    Info(Vec<Bytes>),
    /// `CONFIG GET pattern [pattern ...]`
    ConfigGet(Vec<Bytes>),
    /// `CONFIG SET parameter value [parameter value ...]`
    ConfigSet(Vec<(Bytes, Bytes)>),
    /// `CONFIG RESETSTAT`
    ConfigResetStat,
    /// `DBSIZE`
    DbSize,
    /// `FLUSHALL [ASYNC|SYNC]` and `FLUSHDB [ASYNC|SYNC]` (one database, so the same thing).
    Flush(FlushMode),
    /// `TIME`
    Time,
    /// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`
    Shutdown {
        /// `ABORT`: cancel a shutdown in progress (answered with an error: none is ever
        /// pending long enough to abort).
        abort: bool,
    },
    /// `RING NODES | INFO | REPLICAS key`: the cluster's members, ring and a key's replicas.
    Ring(RingCommand),

    // ----- strings (cmd/strings.rs)
    /// `GET key`
    Get(Bytes),
    /// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`, and `SETEX`,
    /// `PSETEX`, `GETSET`, which are spelled as a `SET`.
    Set(Set),
    /// `SETNX key value`: answers an integer, unlike `SET NX`.
    SetNx {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
    },
    /// `GETDEL key`
    GetDel(Bytes),
    /// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`
    GetEx {
        /// The key.
        key: Bytes,
        /// What to do with the expiry; `None` leaves it.
        expiry: Option<GetExExpiry>,
    },
    /// `MGET key [key ...]`
    MGet(Vec<Bytes>),
    /// `MSET key value [key value ...]`
    MSet(Vec<(Bytes, Bytes)>),
    /// `MSETNX key value [key value ...]`
    MSetNx(Vec<(Bytes, Bytes)>),
    /// `STRLEN key`
    StrLen(Bytes),
    /// `APPEND key value`
    Append {
        /// The key.
        key: Bytes,
        /// Bytes to add at the end.
        value: Bytes,
    },
    /// `GETRANGE key start end` (and the old name `SUBSTR`)
    GetRange {
        /// The key.
        key: Bytes,
        /// First byte, negative counts from the end.
        start: i64,
        /// Last byte (inclusive), negative counts from the end.
        end: i64,
    },
    /// `SETRANGE key offset value`
    SetRange {
        /// The key.
        key: Bytes,
        /// Byte offset, already checked to be `0..=proto-max-bulk-len`.
        offset: u64,
        /// Bytes written at the offset.
        value: Bytes,
    },
    /// `INCR`, `DECR`, `INCRBY`, `DECRBY`: add `delta` to an integer value.
    IncrBy {
        /// The key.
        key: Bytes,
        /// The amount added (negated for the DECR forms).
        delta: i64,
    },
    /// `INCRBYFLOAT key increment`
    IncrByFloat {
        /// The key.
        key: Bytes,
        /// The amount added: the argument as given, already checked to be a float Redis
        /// accepts ([`crate::float::check_float`]; possibly `inf`, or beyond `f64` like
        /// `1e400`). It is added in C `long double` by [`crate::float::incr_by_float_text`].
        delta: Bytes,
    },
    /// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`
    Lcs(Lcs),

    // ----- bitmap (cmd/bitmap.rs)
    /// `SETBIT`, `GETBIT`, `BITCOUNT`, `BITPOS`, `BITOP`, `BITFIELD`, `BITFIELD_RO`.
    Bitmap(bitmap::BitmapCommand),

    // ----- keyspace (cmd/keyspace.rs)
    /// `DEL key [key ...]`
    Del(Vec<Bytes>),
    /// `UNLINK key [key ...]`
    Unlink(Vec<Bytes>),
    /// `EXISTS key [key ...]`
    Exists(Vec<Bytes>),
    /// `TYPE key`
    Type(Bytes),

    // ----- transactions (cmd/transaction.rs)
    /// `MULTI`
    Multi,
    /// `EXEC`
    Exec,
    /// `DISCARD`
    Discard,
    /// `WATCH key [key ...]`
    Watch(Vec<Bytes>),
    /// `UNWATCH`
    Unwatch,

    // ----- pub/sub (cmd/pubsub.rs)
    /// `SUBSCRIBE`, `PUBLISH`, `PUBSUB` and the rest of the family.
    PubSub(PubSubCommand),

    // ----- scripting (cmd/scripting.rs)
    /// `EVAL`, `EVALSHA`, their `_RO` forms, `SCRIPT ...`.
    Script(ScriptCommand),

    /// `OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key`, `OBJECT HELP`.
    Object(ObjectCommand),
    /// `MEMORY USAGE key [SAMPLES count]`, `MEMORY DOCTOR|MALLOC-STATS|PURGE|HELP`.
    Memory(MemoryCommand),
    /// `TOUCH key [key ...]`
    Touch(Vec<Bytes>),
    /// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` with `NX|XX|GT|LT`.
    Expire(Expire),
    /// `TTL key` and `PTTL key`.
    Ttl {
        /// The key.
        key: Bytes,
        /// Seconds for `TTL`, milliseconds for `PTTL`.
        unit: TimeUnit,
    },
    /// `EXPIRETIME key` and `PEXPIRETIME key`.
    ExpireTime {
        /// The key.
        key: Bytes,
        /// Seconds for `EXPIRETIME`, milliseconds for `PEXPIRETIME`.
        unit: TimeUnit,
    },
    /// `PERSIST key`
    Persist(Bytes),
    /// `KEYS pattern`
    Keys(Bytes),
    /// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
    Scan(Scan),
    /// `RANDOMKEY`
    RandomKey,
    /// `RENAME key newkey` and `RENAMENX key newkey`.
    Rename {
        /// The key renamed.
        source: Bytes,
        /// Its new name.
        destination: Bytes,
        /// `RENAMENX`: only when `destination` does not exist.
        nx: bool,
    },
    /// `COPY source destination [DB 0] [REPLACE]`.
    Copy {
        /// The key copied.
        source: Bytes,
        /// Where the copy goes (never `source`: the parser refuses it).
        destination: Bytes,
        /// `REPLACE`: overwrite an existing `destination`.
        replace: bool,
    },

    // ----- hyperloglog (cmd/hyperloglog.rs)
    /// `PFADD key [element ...]`
    PfAdd {
        /// The HLL's key.
        key: Bytes,
        /// Elements to add; none only creates the key.
        elements: Vec<Bytes>,
    },
    /// `PFCOUNT key [key ...]`: one key's cardinality, or that of the union of several.
    PfCount(Vec<Bytes>),
    /// `PFMERGE destkey [sourcekey ...]`
    PfMerge {
        /// Where the union goes (itself part of the union).
        dest: Bytes,
        /// The other HLLs merged in.
        sources: Vec<Bytes>,
    },

    // ----- collections, one enum per family in its file
    /// A hash command (cmd/hash.rs).
    Hash(hash::HashCommand),
    /// A set command (cmd/set.rs).
    Sets(set::SetCommand),
    /// A sorted set command (cmd/zset.rs).
    SortedSet(zset::SortedSetCommand),
    /// A list command (cmd/list.rs).
    List(list::ListCommand),
}

/// `HELLO` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    /// 2 or 3; `None` keeps the current protocol.
    pub protover: Option<i64>,
    /// `AUTH username password`.
    pub auth: Option<(Bytes, Bytes)>,
    /// `SETNAME clientname`, already checked for spaces and newlines.
    pub setname: Option<Bytes>,
}

/// `CLIENT` subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    /// `CLIENT ID`
    Id,
    /// `CLIENT SETNAME name` (checked: no spaces or newlines); an empty name clears it.
    SetName(Bytes),
    /// `CLIENT GETNAME`
    GetName,
    /// `CLIENT SETINFO LIB-NAME|LIB-VER value`
    SetInfo {
        /// `true` for `LIB-NAME`, `false` for `LIB-VER`.
        lib_name: bool,
        /// The value, checked like a client name.
        value: Bytes,
    },
    /// `CLIENT INFO`
    Info,
    /// `CLIENT LIST [TYPE normal|...] [ID id ...]`
    List {
        /// Only these client ids, when given.
        ids: Vec<u64>,
    },
    /// `CLIENT KILL ip:port`, `CLIENT KILL [ID id] [ADDR ip:port] [LADDR ip:port] [SKIPME yes|no]`
    Kill(ClientKill),
    /// `CLIENT NO-EVICT on|off`
    NoEvict(bool),
    /// `CLIENT NO-TOUCH on|off`
    NoTouch(bool),
    /// `CLIENT HELP`
    Help,
}

/// Filters of `CLIENT KILL`; every given filter must match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientKill {
    /// The old form `CLIENT KILL addr`: answers `+OK` or an error instead of a count.
    pub legacy: bool,
    /// `ID id`
    pub id: Option<u64>,
    /// `ADDR ip:port` (peer address)
    pub addr: Option<Bytes>,
    /// `LADDR ip:port` (local address)
    pub laddr: Option<Bytes>,
    /// `SKIPME yes|no`; Redis's default is yes.
    pub skip_me: bool,
}

/// `CONSISTENCY` forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsistencyCommand {
    /// `CONSISTENCY`: show both defaults.
    Show,
    /// `CONSISTENCY <level>`: set both (a read cannot use `ANY`, so `ANY` is refused here).
    SetBoth(Level),
    /// `CONSISTENCY READ <level>`
    SetRead(Level),
    /// `CONSISTENCY WRITE <level>`
    SetWrite(Level),
}

/// `RING` forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingCommand {
    /// `RING NODES`: one line per member.
    Nodes,
    /// `RING INFO`: the ring's settings and state.
    Info,
    /// `RING REPLICAS key`: the key's preference list and each replica's record.
    Replicas(Bytes),
    /// `RING DECOMMISSION`: this node streams its ranges to their new owners and leaves.
    Decommission,
    /// `RING FORGET node-id`: a dead member is removed from the ring for good.
    Forget(Bytes),
    /// `RING REPAIR [ALL | STATUS | key]`: anti-entropy now, or its state per range.
    Repair(RepairTarget),
}

/// What `RING REPAIR` works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairTarget {
    /// `RING REPAIR` or `RING REPAIR ALL`: every range this node replicates.
    All,
    /// `RING REPAIR STATUS`: each range's last repair, no repair.
    Status,
    /// `RING REPAIR key`: the range holding the key.
    Key(Bytes),
}

/// `COMMAND` forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandInfoCommand {
    /// `COMMAND`: every command's info.
    All,
    /// `COMMAND COUNT`
    Count,
    /// `COMMAND INFO [name ...]`
    Info(Vec<Bytes>),
    /// `COMMAND DOCS [name ...]`
    Docs(Vec<Bytes>),
    /// `COMMAND LIST`
    List,
    /// `COMMAND HELP`
    Help,
}

/// `FLUSHALL`/`FLUSHDB` mode; both are done at once on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// `SYNC` or no argument.
    Sync,
    /// `ASYNC`
    Async,
}

/// `SET` and the commands spelled as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    /// The key.
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
    /// `NX` or `XX`.
    pub condition: Option<SetCondition>,
    /// `GET`: reply with the old value instead of `OK`.
    pub get: bool,
    /// What happens to the expiry.
    pub expiry: SetExpiry,
}

/// `LCS` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lcs {
    /// The first string's key.
    pub a: Bytes,
    /// The second string's key.
    pub b: Bytes,
    /// What to answer, or the option error Redis answers once both keys hold strings (or
    /// are missing).
    pub mode: Result<LcsMode, CommandError>,
}

/// What `LCS` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LcsMode {
    /// The common subsequence itself.
    String,
    /// `LEN`: its length.
    Len,
    /// `IDX`: the matching ranges, longest-index first, and the length.
    Idx {
        /// `MINMATCHLEN`: ranges shorter than this are left out (0: none).
        min_match_len: u64,
        /// `WITHMATCHLEN`: each range also carries its length.
        with_match_len: bool,
    },
}

/// `SET ... NX|XX`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCondition {
    /// Only if the key does not exist.
    IfAbsent,
    /// Only if the key exists.
    IfPresent,
}

/// The expiry a `SET` leaves on the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetExpiry {
    /// No option: the key has no expiry afterwards.
    Clear,
    /// `KEEPTTL`: the expiry is left as it was.
    Keep,
    /// `EX`, `PX`, `EXAT`, `PXAT`, `SETEX`, `PSETEX`.
    At(ExpiryTime),
}

/// An expiry as given, relative or absolute, already checked for overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryTime {
    /// Milliseconds from now (`EX` is converted), may be ≤ 0 for `EXPIRE`.
    RelativeMs(i64),
    /// Unix time in milliseconds (`EXAT` is converted), may be in the past for `EXPIREAT`.
    AbsoluteMs(i64),
}

impl ExpiryTime {
    /// The absolute unix time in milliseconds, given the current unix time in milliseconds.
    /// Saturates instead of overflowing.
    pub fn absolute_ms(self, now_ms: i64) -> i64 {
        match self {
            ExpiryTime::RelativeMs(ms) => now_ms.saturating_add(ms),
            ExpiryTime::AbsoluteMs(ms) => ms,
        }
    }
}

/// `GETEX` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetExExpiry {
    /// `EX`, `PX`, `EXAT`, `PXAT`.
    At(ExpiryTime),
    /// `PERSIST`
    Persist,
}

/// `EXPIRE` family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expire {
    /// The key.
    pub key: Bytes,
    /// When, relative or absolute.
    pub at: ExpiryTime,
    /// `NX`, `XX`, `GT`, `LT`.
    pub condition: Option<ExpireCondition>,
}

/// `EXPIRE ... NX|XX|GT|LT`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireCondition {
    /// Only if the key has no expiry.
    Nx,
    /// Only if the key has an expiry.
    Xx,
    /// Only if the new expiry is later (no expiry counts as infinite).
    Gt,
    /// Only if the new expiry is earlier (no expiry counts as infinite).
    Lt,
    /// `XX LT`: only if the key has an expiry and the new one is earlier. (`XX GT` is parsed
    /// as `Gt`, which never sets a key without expiry either.)
    XxLt,
}

/// Seconds or milliseconds, for `TTL`/`PTTL` and `EXPIRETIME`/`PEXPIRETIME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Millis,
}

/// `SCAN` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Where to resume; 0 starts a new scan.
    pub cursor: u64,
    /// `MATCH pattern`
    pub pattern: Option<Bytes>,
    /// `COUNT count` (≥ 1); Redis's default is 10.
    pub count: usize,
    /// `TYPE type`, lowercased.
    pub type_filter: Option<Bytes>,
}
