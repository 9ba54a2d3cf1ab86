//! The command table: one [`Spec`] per command, and everything derived from it.
//!
//! Each row says what Redis 7.0's `COMMAND INFO` and `COMMAND DOCS` say of the command (arity,
//! flags, key positions, group, version, summary) and names the function that parses it.
//! Parsing, the `COMMAND` replies, key extraction for the cluster coordinator, per-command
//! statistics (by row index), the `denyoom` and `no_auth` checks and the level a command takes
//! are all read from here; no other code lists command names.
//!
//! Arities are Redis's: a positive arity is an exact argument count (the name included), a
//! negative one a minimum. `tests/command_info.rs` checks every row against a real
//! redis-server.
//!
//! # Adding a command
//! 1. A variant of [`Command`] and a parse function in the family's file (`strings.rs`, ...),
//!    with its `# Format` block; it reads arguments from an [`ArgCursor`] and may leave none.
//! 2. One row in [`TABLE`], with Redis 7.0's arity, flags and key positions
//!    (`redis-cli COMMAND INFO name`) and its docs (`COMMAND DOCS name`).
//! 3. The executor's arm for the variant in `src/exec/<family>.rs`.
//!
//! Lookups never allocate: the name is lowercased into a stack buffer and found through an
//! open-addressing index computed at compile time from the table.

use bytes::Bytes;

use super::args::{ArgCursor, CommandError, is, parse_i64, unknown_command};
// `list`, `set`, `zset` and their short family names are used as their rows arrive.
#[allow(unused_imports)]
use super::{
    Command, bitmap, connection, hash, hyperloglog, keyspace, list, pubsub, scripting, server, set,
    strings, transaction, zset,
};
use crate::level::{Level, LevelError};

/// Whether a command reads keys, writes keys, or neither; chooses the default level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads keys only: uses the read level.
    Read,
    /// Writes keys (possibly after reading them): uses the write level.
    Write,
    /// Touches no key (connection and server commands, keyspace walks): takes no level.
    None,
}

/// The family a command belongs to: the file that parses it here, the part of the server
/// that executes it, and Redis's group in `COMMAND DOCS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Connection state and the handshake (cmd/connection.rs).
    Connection,
    /// Server-wide commands (cmd/server.rs).
    Server,
    /// String values (cmd/strings.rs).
    Strings,
    /// Bitmaps, which are string values (cmd/bitmap.rs).
    Bitmap,
    /// Keys whatever their value (cmd/keyspace.rs).
    Keyspace,
    /// HyperLogLogs, which are string values (cmd/hyperloglog.rs).
    HyperLogLog,
    /// Hashes (cmd/hash.rs).
    Hash,
    /// Sets (cmd/set.rs).
    Set,
    /// Sorted sets (cmd/zset.rs).
    SortedSet,
    /// Lists (cmd/list.rs).
    List,
    /// `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH` (cmd/transaction.rs).
    Transactions,
    /// `SUBSCRIBE`, `PUBLISH`, `PUBSUB`... (cmd/pubsub.rs).
    PubSub,
    /// `EVAL`, `EVALSHA`, `SCRIPT`... (cmd/scripting.rs).
    Scripting,
}

impl Family {
    /// Redis's name of the group, as `COMMAND DOCS` prints it.
    pub const fn group(self) -> &'static str {
        match self {
            Family::Connection => "connection",
            Family::Server => "server",
            Family::Strings => "string",
            Family::Bitmap => "bitmap",
            Family::Keyspace => "generic",
            Family::HyperLogLog => "hyperloglog",
            Family::Hash => "hash",
            Family::Set => "set",
            Family::SortedSet => "sorted_set",
            Family::List => "list",
            Family::Transactions => "transactions",
            Family::PubSub => "pubsub",
            Family::Scripting => "scripting",
        }
    }
}

/// Redis command flags, as bits. The bits are in the order Redis 7.0 prints the flags
/// (`addReplyCommandFlags`), so [`Flags::names`] lists them as `COMMAND INFO` does. Only the
/// flags that ringcache's commands have are defined.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u32);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);
    /// May change the data.
    pub const WRITE: Flags = Flags(1 << 0);
    /// Reads the data only.
    pub const READONLY: Flags = Flags(1 << 1);
    /// May add memory: refused (`-OOM`) when over `maxmemory` and nothing can be evicted.
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// An administrative command.
    pub const ADMIN: Flags = Flags(1 << 3);
    /// Not allowed in scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 4);
    /// May block the connection until a key changes or a timeout (`BLPOP`).
    pub const BLOCKING: Flags = Flags(1 << 5);
    /// Allowed while loading the data.
    pub const LOADING: Flags = Flags(1 << 6);
    /// Allowed on a replica with stale data.
    pub const STALE: Flags = Flags(1 << 7);
    /// Constant or logarithmic time.
    pub const FAST: Flags = Flags(1 << 8);
    /// Allowed before authentication.
    pub const NO_AUTH: Flags = Flags(1 << 9);
    /// Not allowed in `MULTI`.
    pub const NO_MULTI: Flags = Flags(1 << 10);
    /// Its keys are found by reading its arguments (a `numkeys` count): see
    /// [`KeyRange::numkeys_at`].
    pub const MOVABLE_KEYS: Flags = Flags(1 << 11);
    /// Allowed while a script is busy.
    pub const ALLOW_BUSY: Flags = Flags(1 << 12);
    /// Not logged in the slow log (`EXEC`: its commands are).
    pub const SKIP_SLOWLOG: Flags = Flags(1 << 13);
    /// A pub/sub command.
    pub const PUBSUB: Flags = Flags(1 << 14);
    /// Not shown to `MONITOR` (scripts).
    pub const SKIP_MONITOR: Flags = Flags(1 << 15);
    /// May run with no key at all though it takes keys (`EVAL script 0`).
    pub const NO_MANDATORY_KEYS: Flags = Flags(1 << 16);

    /// Each flag with its Redis name, in bit order (Redis's order).
    const NAMES: [(Flags, &'static str); 17] = [
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::ADMIN, "admin"),
        (Flags::PUBSUB, "pubsub"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::BLOCKING, "blocking"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::SKIP_MONITOR, "skip_monitor"),
        (Flags::SKIP_SLOWLOG, "skip_slowlog"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (Flags::NO_MULTI, "no_multi"),
        (Flags::MOVABLE_KEYS, "movablekeys"),
        (Flags::ALLOW_BUSY, "allow_busy"),
    ];

    /// The flags of `list` together (a `const` spelling of `a | b | c`).
    pub const fn of(list: &[Flags]) -> Flags {
        let mut bits = 0;
        let mut i = 0;
        while i < list.len() {
            bits |= list[i].0;
            i += 1;
        }
        Flags(bits)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The Redis names of the flags that are set, in Redis's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |(flag, _)| self.contains(*flag))
            .map(|(_, name)| name)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;

    fn bitor(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Where a command's keys are, as Redis's legacy `first_key`, `last_key` and `step`:
/// positions count the name as 0; a negative `last` counts from the end (-1: the last
/// argument); `first` 0 means no keys in the range.
///
/// Commands with "movable keys" (`SINTERCARD numkeys key ...`, `ZUNIONSTORE dest numkeys
/// key ...`, `LMPOP numkeys key ...`) also have keys after a count: `numkeys_at` is that
/// count's position (0 for none). `COMMAND INFO` shows only the legacy range, as Redis
/// does (`0 0 0` for `SINTERCARD`); [`KeyRange::keys`] yields both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    /// Position of the first key, 0 for none.
    pub first: i32,
    /// Position of the last key; negative counts from the end.
    pub last: i32,
    /// Distance between two keys.
    pub step: i32,
    /// Position of a `numkeys` argument followed by that many keys, 0 for none.
    pub numkeys_at: i32,
}

impl KeyRange {
    /// No keys (or keys found by walking the keyspace: `KEYS`, `SCAN`).
    pub const NONE: KeyRange = KeyRange::new(0, 0, 0);
    /// One key, the first argument.
    pub const ONE: KeyRange = KeyRange::new(1, 1, 1);
    /// Every argument is a key (`MGET`, `DEL`).
    pub const ALL: KeyRange = KeyRange::new(1, -1, 1);
    /// Key-value pairs (`MSET`).
    pub const PAIRS: KeyRange = KeyRange::new(1, -1, 2);
    /// The key after a container's subcommand (`OBJECT ENCODING key`); none when the
    /// subcommand takes none (`OBJECT HELP`: position 2 is past the arguments).
    pub const SUBCOMMAND_KEY: KeyRange = KeyRange::new(2, 2, 1);

    const fn new(first: i32, last: i32, step: i32) -> KeyRange {
        KeyRange {
            first,
            last,
            step,
            numkeys_at: 0,
        }
    }

    /// The keys `numkeys key ...` at position `at` and nowhere else (`SINTERCARD`).
    pub const fn counted(at: i32) -> KeyRange {
        KeyRange {
            numkeys_at: at,
            ..KeyRange::NONE
        }
    }

    /// Whether the command names any key (in its range or after a count).
    pub const fn has_keys(self) -> bool {
        self.first > 0 || self.numkeys_at > 0
    }

    /// Whether the command names no key at all.
    pub const fn is_none(self) -> bool {
        !self.has_keys()
    }

    /// These keys, and after the argument at `at` (a `numkeys` count) that many more
    /// (`ZUNIONSTORE dest numkeys key ...`: `Key::ONE.numkeys(2)`).
    pub const fn numkeys(self, at: i32) -> KeyRange {
        KeyRange {
            numkeys_at: at,
            ..self
        }
    }

    /// The keys among `args` (the whole request, name first), in order, repeats kept: the
    /// range's, then those after the count. Positions past the end are skipped and a count
    /// that is not a positive integer names no key, so a bad request yields fewer keys,
    /// never a panic (the parser then refuses it).
    pub fn keys(self, args: &[Bytes]) -> impl Iterator<Item = &Bytes> {
        self.range_keys(args).chain(self.counted_keys(args))
    }

    /// The keys after the `numkeys` count; none when the count is not an integer from 1 to
    /// the number of arguments after it (the parser refuses such a request).
    fn counted_keys(self, args: &[Bytes]) -> impl Iterator<Item = &Bytes> {
        let at = usize::try_from(self.numkeys_at).unwrap_or(0);
        let after = args.len().saturating_sub(at + 1);
        let count = match args.get(at).filter(|_| at > 0).map(|raw| parse_i64(raw)) {
            Some(Ok(n)) if n > 0 => usize::try_from(n).ok().filter(|&n| n <= after),
            _ => None,
        };
        args.iter().skip(at + 1).take(count.unwrap_or(0))
    }

    fn range_keys(self, args: &[Bytes]) -> impl Iterator<Item = &Bytes> {
        let argc = args.len() as i64;
        let first = i64::from(self.first);
        let last = match self.last {
            last if last < 0 => argc + i64::from(last),
            last => i64::from(last),
        };
        let (first, last) = if first == 0 { (1, 0) } else { (first, last) };
        let step = usize::try_from(self.step.max(1)).unwrap_or(1);
        (first..=last)
            .step_by(step)
            .filter_map(move |i| args.get(usize::try_from(i).ok()?))
    }
}

/// Parses the arguments after the name into a [`Command`]; the arity was checked. Whatever
/// it leaves unread is a syntax error.
pub(crate) type Parse = fn(&mut ArgCursor) -> Result<Command, CommandError>;

/// One row of the command table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Redis's lowercase name.
    pub name: &'static str,
    /// Redis's arity: positive = exact argument count including the name, negative = minimum.
    pub arity: i32,
    /// Redis's flags.
    pub flags: Flags,
    /// Where the keys are, as `COMMAND INFO` reports them.
    pub keys: KeyRange,
    /// Where the keys are for routing and the level: [`Spec::keys`], except for a container
    /// whose subcommands name a key (`OBJECT ENCODING key`, `MEMORY USAGE key`), which Redis
    /// reports only in the subcommands' rows.
    pub route: KeyRange,
    /// Who parses and executes it; its Redis group.
    pub family: Family,
    /// The Redis version that introduced it, for `COMMAND DOCS` (`ringcache` for ours).
    pub since: &'static str,
    /// One line, for `COMMAND DOCS`.
    pub summary: &'static str,
    /// Whether it changes several keys that must be seen changed together (`RENAME`,
    /// `COPY`): on a single node it runs with no other command at once, as a transaction's
    /// `EXEC` does; a cluster coordinator holds every key's lock for any write.
    pub alone: bool,
    pub(crate) parse: Parse,
}

impl PartialEq for Spec {
    /// Names are unique in the table (a unit test checks it).
    fn eq(&self, other: &Spec) -> bool {
        self.name == other.name
    }
}

impl Eq for Spec {}

impl Spec {
    /// This row with keys for routing at `route` (see [`Spec::route`]).
    const fn routed(self, route: KeyRange) -> Spec {
        Spec { route, ..self }
    }

    /// This row, run alone on a single node (see [`Spec::alone`]).
    const fn alone(self) -> Spec {
        Spec {
            alone: true,
            ..self
        }
    }

    /// The level the command takes: a command with keys writes them if it has the `write`
    /// flag and reads them otherwise; one without keys takes none.
    pub const fn access(&self) -> Access {
        if !self.route.has_keys() {
            Access::None
        } else if self.flags.contains(Flags::WRITE) {
            Access::Write
        } else {
            Access::Read
        }
    }

    /// Whether the arity allows `argc` arguments (the name included).
    pub fn arity_allows(&self, argc: usize) -> bool {
        arity_allows(self.arity, argc)
    }
}

/// Builds one row; a function so that each row fits a few lines.
#[allow(clippy::too_many_arguments)]
const fn row(
    name: &'static str,
    arity: i32,
    flags: Flags,
    keys: KeyRange,
    family: Family,
    since: &'static str,
    summary: &'static str,
    parse: Parse,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        keys,
        route: keys,
        family,
        since,
        summary,
        alone: false,
        parse,
    }
}

const W: Flags = Flags::WRITE;
const WD: Flags = Flags::of(&[Flags::WRITE, Flags::DENYOOM]);
const WDF: Flags = Flags::of(&[Flags::WRITE, Flags::DENYOOM, Flags::FAST]);
const WF: Flags = Flags::of(&[Flags::WRITE, Flags::FAST]);
const R: Flags = Flags::READONLY;
const RF: Flags = Flags::of(&[Flags::READONLY, Flags::FAST]);
const LSF: Flags = Flags::of(&[Flags::LOADING, Flags::STALE, Flags::FAST]);
const LS: Flags = Flags::of(&[Flags::LOADING, Flags::STALE]);
/// `EVAL`, `EVALSHA`: Redis's flags.
const EVAL_FLAGS: Flags = Flags::of(&[
    Flags::NOSCRIPT,
    Flags::STALE,
    Flags::SKIP_MONITOR,
    Flags::NO_MANDATORY_KEYS,
    Flags::MOVABLE_KEYS,
]);
/// `EVAL_RO`, `EVALSHA_RO`: Redis's flags.
const EVAL_RO_FLAGS: Flags = Flags::of(&[EVAL_FLAGS, Flags::READONLY]);
/// `SUBSCRIBE` and the other subscription commands: Redis's flags.
const PUBSUB_NOSCRIPT: Flags = Flags::of(&[Flags::PUBSUB, Flags::NOSCRIPT, LS]);
/// `MULTI`, `DISCARD`, `WATCH`, `UNWATCH`: Redis's flags.
const TX_FLAGS: Flags = Flags::of(&[Flags::NOSCRIPT, LSF, Flags::ALLOW_BUSY]);
/// Reads keys given after a `numkeys` count (`ZUNION`).
const RMK: Flags = Flags::of(&[Flags::READONLY, Flags::MOVABLE_KEYS]);
/// Writes keys given after a `numkeys` count (`ZUNIONSTORE`).
const WDMK: Flags = Flags::of(&[Flags::WRITE, Flags::DENYOOM, Flags::MOVABLE_KEYS]);
/// `BLPOP`, `BRPOP`: writes, and may block the connection.
const BLOCKING_WRITE: Flags = Flags::of(&[Flags::WRITE, Flags::NOSCRIPT, Flags::BLOCKING]);
/// `HELLO`, `AUTH`, `QUIT`, `RESET`: allowed before authentication.
const HANDSHAKE: Flags = Flags::of(&[
    Flags::NOSCRIPT,
    Flags::LOADING,
    Flags::STALE,
    Flags::FAST,
    Flags::NO_AUTH,
    Flags::ALLOW_BUSY,
]);

/// Every command ringcache answers; the index of a row is the command's statistics slot.
// One row per command reads better as a table than as rustfmt would spread it.
#[rustfmt::skip]
pub const TABLE: &[Spec] = {
    use Family::{Connection as C, HyperLogLog as H, Keyspace as K, Server as S, Strings as T};
    use Family::Bitmap as BM;
    #[allow(unused_imports)]
    use Family::{Hash as HA, List as LI, Set as SE, SortedSet as ZS, Transactions as TX};
    use Family::PubSub as PS;
    use Family::Scripting as SC;
    use KeyRange as Key;
    &[
        // ----- connection
        row("ping", -1, Flags::FAST, Key::NONE, C, "1.0.0",
            "Returns the server's liveliness response.", connection::ping),
        row("echo", 2, LSF, Key::NONE, C, "1.0.0", "Returns the given string.", connection::echo),
        row("hello", -1, HANDSHAKE, Key::NONE, C, "6.0.0", "Handshakes with the server.",
            connection::hello),
        row("auth", -2, HANDSHAKE, Key::NONE, C, "1.0.0", "Authenticates the connection.",
            connection::auth),
        row("select", 2, LSF, Key::NONE, C, "1.0.0",
            "Changes the selected database (only 0 exists).", connection::select),
        row("quit", -1, HANDSHAKE, Key::NONE, C, "1.0.0", "Closes the connection.",
            connection::quit),
        row("reset", 1, HANDSHAKE, Key::NONE, C, "6.2.0", "Resets the connection.",
            connection::reset),
        row("client", -2, Flags::NONE, Key::NONE, C, "2.4.0",
            "A container for client connection commands.", connection::client),
        row("consistency", -1, Flags::of(&[Flags::NOSCRIPT, LSF]), Key::NONE, C, "ringcache",
            "Shows or sets the connection's default read and write consistency levels.",
            connection::consistency),
        // ----- transactions
        row("multi", 1, TX_FLAGS, Key::NONE, TX, "1.2.0", "Starts a transaction.",
            transaction::multi),
        row("exec", 1, Flags::of(&[Flags::NOSCRIPT, LS, Flags::SKIP_SLOWLOG]), Key::NONE, TX,
            "1.2.0", "Executes all commands in a transaction.", transaction::exec),
        row("discard", 1, TX_FLAGS, Key::NONE, TX, "2.0.0", "Discards a transaction.",
            transaction::discard),
        row("watch", -2, TX_FLAGS, Key::ALL, TX, "2.2.0",
            "Monitors changes to keys to determine the execution of a transaction.",
            transaction::watch),
        row("unwatch", 1, TX_FLAGS, Key::NONE, TX, "2.2.0",
            "Forgets about watched keys of a transaction.", transaction::unwatch),
        // ----- pub/sub
        row("subscribe", -2, PUBSUB_NOSCRIPT, Key::NONE, PS, "2.0.0",
            "Listen for messages published to the given channels", pubsub::subscribe),
        row("unsubscribe", -1, PUBSUB_NOSCRIPT, Key::NONE, PS, "2.0.0",
            "Stop listening for messages posted to the given channels", pubsub::unsubscribe),
        row("psubscribe", -2, PUBSUB_NOSCRIPT, Key::NONE, PS, "2.0.0",
            "Listen for messages published to channels matching the given patterns",
            pubsub::psubscribe),
        row("punsubscribe", -1, PUBSUB_NOSCRIPT, Key::NONE, PS, "2.0.0",
            "Stop listening for messages posted to channels matching the given patterns",
            pubsub::punsubscribe),
        row("publish", 3, Flags::of(&[Flags::PUBSUB, LSF]), Key::NONE, PS, "2.0.0",
            "Post a message to a channel", pubsub::publish),
        row("pubsub", -2, Flags::NONE, Key::NONE, PS, "2.8.0",
            "A container for Pub/Sub commands", pubsub::pubsub),
        // ----- scripting
        row("eval", -3, EVAL_FLAGS, Key::counted(2), SC, "2.6.0",
            "Execute a Lua script server side", scripting::eval),
        row("evalsha", -3, EVAL_FLAGS, Key::counted(2), SC, "2.6.0",
            "Execute a Lua script server side", scripting::evalsha),
        row("eval_ro", -3, EVAL_RO_FLAGS, Key::counted(2), SC, "7.0.0",
            "Execute a read-only Lua script server side", scripting::eval_ro),
        row("evalsha_ro", -3, EVAL_RO_FLAGS, Key::counted(2), SC, "7.0.0",
            "Execute a read-only Lua script server side", scripting::evalsha_ro),
        row("script", -2, Flags::NONE, Key::NONE, SC, "2.6.0",
            "A container for Lua scripts management commands", scripting::script),
        row("function", -2, Flags::NONE, Key::NONE, SC, "7.0.0",
            "A container for function commands", scripting::functions),
        row("fcall", -3, EVAL_FLAGS, Key::counted(2), SC, "7.0.0", "Invoke a function",
            scripting::functions),
        row("fcall_ro", -3, EVAL_RO_FLAGS, Key::counted(2), SC, "7.0.0",
            "Invoke a read-only function", scripting::functions),
        // ----- server
        row("command", -1, LS, Key::NONE, S, "2.8.13",
            "Returns detailed information about all commands.", server::command),
        row("info", -1, LS, Key::NONE, S, "1.0.0",
            "Returns information and statistics about the server.", server::info),
        row("config", -2, Flags::NONE, Key::NONE, S, "2.0.0",
            "A container for server configuration commands.", server::config),
        row("dbsize", 1, RF, Key::NONE, S, "1.0.0", "Returns the number of keys in the database.",
            server::dbsize),
        row("flushall", -1, W, Key::NONE, S, "1.0.0", "Removes all keys from all databases.",
            server::flush),
        row("flushdb", -1, W, Key::NONE, S, "1.0.0", "Remove all keys from the current database.",
            server::flush),
        row("time", 1, LSF, Key::NONE, S, "2.6.0", "Returns the server time.", server::time),
        row("shutdown", -1,
            Flags::of(&[Flags::ADMIN, Flags::NOSCRIPT, LS, Flags::NO_MULTI, Flags::ALLOW_BUSY]),
            Key::NONE, S, "1.0.0", "Stops the server.", server::shutdown),
        row("ring", -2, Flags::of(&[Flags::ADMIN, LS]), Key::NONE, S, "ringcache",
            "Shows the cluster's members (NODES), the ring (INFO) or a key's replicas \
             (REPLICAS key).", server::ring),
        // ----- strings
        row("get", 2, RF, Key::ONE, T, "1.0.0", "Returns the string value of a key.",
            strings::get),
        row("set", -3, WD, Key::ONE, T, "1.0.0",
            "Sets the string value of a key, ignoring its type.", strings::set),
        row("setnx", 3, WDF, Key::ONE, T, "1.0.0",
            "Set the string value of a key only when the key doesn't exist.", strings::setnx),
        row("setex", 4, WD, Key::ONE, T, "2.0.0",
            "Sets the string value and expiration time of a key.", strings::setex),
        row("psetex", 4, WD, Key::ONE, T, "2.6.0",
            "Sets both string value and expiration time in milliseconds of a key.",
            strings::psetex),
        row("getset", 3, WDF, Key::ONE, T, "1.0.0",
            "Returns the previous string value of a key after setting it to a new value.",
            strings::getset),
        row("getdel", 2, WF, Key::ONE, T, "6.2.0",
            "Returns the string value of a key after deleting the key.", strings::getdel),
        row("getex", -2, WF, Key::ONE, T, "6.2.0",
            "Returns the string value of a key after setting its expiration time.",
            strings::getex),
        row("mget", -2, RF, Key::ALL, T, "1.0.0",
            "Atomically returns the string values of one or more keys.", strings::mget),
        row("mset", -3, WD, Key::PAIRS, T, "1.0.1",
            "Atomically creates or modifies the string values of one or more keys.",
            strings::mset),
        row("msetnx", -3, WD, Key::PAIRS, T, "1.0.1",
            "Atomically modifies the string values of one or more keys only when all keys \
             don't exist.", strings::msetnx),
        row("strlen", 2, RF, Key::ONE, T, "2.2.0", "Returns the length of a string value.",
            strings::strlen),
        row("append", 3, WDF, Key::ONE, T, "2.0.0",
            "Appends a string to the value of a key. Creates the key if it doesn't exist.",
            strings::append),
        row("getrange", 4, R, Key::ONE, T, "2.4.0",
            "Returns a substring of the string stored at a key.", strings::getrange),
        row("substr", 4, R, Key::ONE, T, "1.0.0", "Returns a substring from a string value.",
            strings::getrange),
        row("setrange", 4, WD, Key::ONE, T, "2.2.0",
            "Overwrites a part of a string value with another by an offset. Creates the key \
             if it doesn't exist.", strings::setrange),
        row("incr", 2, WDF, Key::ONE, T, "1.0.0",
            "Increments the integer value of a key by one. Uses 0 as initial value if the key \
             doesn't exist.", strings::incr),
        row("decr", 2, WDF, Key::ONE, T, "1.0.0",
            "Decrements the integer value of a key by one. Uses 0 as initial value if the key \
             doesn't exist.", strings::decr),
        row("incrby", 3, WDF, Key::ONE, T, "1.0.0",
            "Increments the integer value of a key by a number. Uses 0 as initial value if the \
             key doesn't exist.", strings::incrby),
        row("decrby", 3, WDF, Key::ONE, T, "1.0.0",
            "Decrements a number from the integer value of a key. Uses 0 as initial value if \
             the key doesn't exist.", strings::decrby),
        row("incrbyfloat", 3, WDF, Key::ONE, T, "2.6.0",
            "Increment the floating point value of a key by a number. Uses 0 as initial value \
             if the key doesn't exist.", strings::incrbyfloat),
        row("lcs", -3, R, Key::new(1, 2, 1), T, "7.0.0", "Find longest common substring",
            strings::lcs),
        // ----- bitmap
        row("setbit", 4, WD, Key::ONE, BM, "2.2.0",
            "Sets or clears the bit at offset in the string value stored at key",
            bitmap::setbit),
        row("getbit", 3, RF, Key::ONE, BM, "2.2.0",
            "Returns the bit value at offset in the string value stored at key", bitmap::getbit),
        row("bitcount", -2, R, Key::ONE, BM, "2.6.0", "Count set bits in a string",
            bitmap::bitcount),
        row("bitpos", -3, R, Key::ONE, BM, "2.8.7", "Find first bit set or clear in a string",
            bitmap::bitpos),
        row("bitop", -4, WD, Key::new(2, -1, 1), BM, "2.6.0",
            "Perform bitwise operations between strings", bitmap::bitop),
        row("bitfield", -2, WD, Key::ONE, BM, "3.2.0",
            "Perform arbitrary bitfield integer operations on strings", bitmap::bitfield),
        row("bitfield_ro", -2, RF, Key::ONE, BM, "6.0.0",
            "Perform arbitrary bitfield integer operations on strings. Read-only variant of \
             BITFIELD", bitmap::bitfield_ro),
        // ----- bitmap end
        // ----- keyspace
        row("del", -2, W, Key::ALL, K, "1.0.0", "Deletes one or more keys.", keyspace::del),
        row("unlink", -2, WF, Key::ALL, K, "4.0.0", "Asynchronously deletes one or more keys.",
            keyspace::unlink),
        row("exists", -2, RF, Key::ALL, K, "1.0.0", "Determines whether one or more keys exist.",
            keyspace::exists),
        row("type", 2, RF, Key::ONE, K, "1.0.0",
            "Determines the type of value stored at a key.", keyspace::type_),
        row("object", -2, Flags::NONE, Key::NONE, K, "2.2.3",
            "A container for object introspection commands.", keyspace::object)
        .routed(Key::SUBCOMMAND_KEY),
        row("memory", -2, Flags::NONE, Key::NONE, S, "4.0.0",
            "A container for memory diagnostics commands.", server::memory)
        .routed(Key::SUBCOMMAND_KEY),
        row("touch", -2, RF, Key::ALL, K, "3.2.1",
            "Returns the number of existing keys out of those specified after updating the \
             time they were last accessed.", keyspace::touch),
        row("rename", 3, W, Key::new(1, 2, 1), K, "1.0.0", "Rename a key", keyspace::rename)
        .alone(),
        row("renamenx", 3, WF, Key::new(1, 2, 1), K, "1.0.0",
            "Rename a key, only if the new key does not exist", keyspace::renamenx)
        .alone(),
        row("copy", -3, WD, Key::new(1, 2, 1), K, "6.2.0", "Copy a key", keyspace::copy)
        .alone(),
        row("expire", -3, WF, Key::ONE, K, "1.0.0",
            "Sets the expiration time of a key in seconds.", keyspace::expire),
        row("pexpire", -3, WF, Key::ONE, K, "2.6.0",
            "Sets the expiration time of a key in milliseconds.", keyspace::pexpire),
        row("expireat", -3, WF, Key::ONE, K, "1.2.0",
            "Sets the expiration time of a key to a Unix timestamp.", keyspace::expireat),
        row("pexpireat", -3, WF, Key::ONE, K, "2.6.0",
            "Sets the expiration time of a key to a Unix milliseconds timestamp.",
            keyspace::pexpireat),
        row("ttl", 2, RF, Key::ONE, K, "1.0.0",
            "Returns the expiration time in seconds of a key.", keyspace::ttl),
        row("pttl", 2, RF, Key::ONE, K, "2.6.0",
            "Returns the expiration time in milliseconds of a key.", keyspace::pttl),
        row("expiretime", 2, RF, Key::ONE, K, "7.0.0",
            "Returns the expiration time of a key as a Unix timestamp.", keyspace::expiretime),
        row("pexpiretime", 2, RF, Key::ONE, K, "7.0.0",
            "Returns the expiration time of a key as a Unix milliseconds timestamp.",
            keyspace::pexpiretime),
        row("persist", 2, WF, Key::ONE, K, "2.2.0", "Removes the expiration time of a key.",
            keyspace::persist),
        // No single key and no preference list: these take no level.
        row("keys", 2, R, Key::NONE, K, "1.0.0", "Returns all key names that match a pattern.",
            keyspace::keys),
        row("scan", -2, R, Key::NONE, K, "2.8.0", "Iterates over the key names in the database.",
            keyspace::scan),
        row("randomkey", 1, R, Key::NONE, K, "1.0.0",
            "Returns a random key name from the database.", keyspace::randomkey),
        // ----- hyperloglog
        row("pfadd", -2, WDF, Key::ONE, H, "2.8.9",
            "Adds the specified elements to the specified HyperLogLog.",
            hyperloglog::pfadd),
        // Flagged readonly as in Redis, though a single key's cached cardinality may be
        // written back (on one node; not in a cluster, docs/consistency.md).
        row("pfcount", -2, R, Key::ALL, H, "2.8.9",
            "Return the approximated cardinality of the set(s) observed by the HyperLogLog at \
             key(s).", hyperloglog::pfcount),
        row("pfmerge", -2, WD, Key::ALL, H, "2.8.9",
            "Merge N different HyperLogLogs into a single one.", hyperloglog::pfmerge),
        // ----- hash
        row("hset", -4, WDF, Key::ONE, HA, "2.0.0",
            "Creates or modifies the value of a field in a hash.", hash::hset),
        row("hget", 3, RF, Key::ONE, HA, "2.0.0", "Returns the value of a field in a hash.",
            hash::hget),
        row("hdel", -3, WF, Key::ONE, HA, "2.0.0", "Deletes one or more fields and their values \
             from a hash. Deletes the hash if no fields remain.", hash::hdel),
        row("hlen", 2, RF, Key::ONE, HA, "2.0.0", "Returns the number of fields in a hash.",
            hash::hlen),
        row("hgetall", 2, R, Key::ONE, HA, "2.0.0",
            "Returns all fields and values in a hash.", hash::hgetall),
        row("hsetnx", 4, WDF, Key::ONE, HA, "2.0.0",
            "Sets the value of a field in a hash only when the field doesn't exist.",
            hash::hsetnx),
        row("hmget", -3, RF, Key::ONE, HA, "2.0.0", "Returns the values of all fields in a hash.",
            hash::hmget),
        row("hmset", -4, WDF, Key::ONE, HA, "2.0.0", "Sets the values of multiple fields.",
            hash::hmset),
        row("hexists", 3, RF, Key::ONE, HA, "2.0.0",
            "Determines whether a field exists in a hash.", hash::hexists),
        row("hstrlen", 3, RF, Key::ONE, HA, "3.2.0",
            "Returns the length of the value of a field.", hash::hstrlen),
        row("hkeys", 2, R, Key::ONE, HA, "2.0.0", "Returns all fields in a hash.", hash::hkeys),
        row("hvals", 2, R, Key::ONE, HA, "2.0.0", "Returns all values in a hash.", hash::hvals),
        row("hincrby", 4, WDF, Key::ONE, HA, "2.0.0",
            "Increments the integer value of a field in a hash by a number. Uses 0 as initial \
             value if the field doesn't exist.", hash::hincrby),
        row("hincrbyfloat", 4, WDF, Key::ONE, HA, "2.6.0",
            "Increments the floating point value of a field by a number. Uses 0 as initial \
             value if the field doesn't exist.", hash::hincrbyfloat),
        row("hscan", -3, R, Key::ONE, HA, "2.8.0",
            "Iterates over fields and values of a hash.", hash::hscan),
        row("hrandfield", -2, R, Key::ONE, HA, "6.2.0",
            "Returns one or more random fields from a hash.", hash::hrandfield),
        // ----- hash end
        // ----- set
        row("sadd", -3, WDF, Key::ONE, SE, "1.0.0",
            "Adds one or more members to a set. Creates the key if it doesn't exist.", set::sadd),
        row("srem", -3, WF, Key::ONE, SE, "1.0.0", "Removes one or more members from a set. \
             Deletes the set if the last member was removed.", set::srem),
        row("smembers", 2, R, Key::ONE, SE, "1.0.0", "Returns all members of a set.",
            set::smembers),
        row("sismember", 3, RF, Key::ONE, SE, "1.0.0",
            "Determines whether a member belongs to a set.", set::sismember),
        row("smismember", -3, RF, Key::ONE, SE, "6.2.0",
            "Determines whether multiple members belong to a set.", set::smismember),
        row("scard", 2, RF, Key::ONE, SE, "1.0.0", "Returns the number of members in a set.",
            set::scard),
        row("spop", -2, WF, Key::ONE, SE, "1.0.0", "Returns one or more random members from a \
             set after removing them. Deletes the set if the last member was popped.",
            set::spop),
        row("srandmember", -2, R, Key::ONE, SE, "1.0.0",
            "Get one or multiple random members from a set", set::srandmember),
        row("smove", 4, WF, Key::new(1, 2, 1), SE, "1.0.0",
            "Moves a member from one set to another.", set::smove),
        row("sscan", -3, R, Key::ONE, SE, "2.8.0", "Iterates over members of a set.",
            set::sscan),
        row("sinter", -2, R, Key::ALL, SE, "1.0.0", "Returns the intersect of multiple sets.",
            set::sinter),
        // Redis's legacy range is 0 0 0: the keys follow numkeys.
        row("sintercard", -3, Flags::of(&[R, Flags::MOVABLE_KEYS]), Key::counted(1), SE,
            "7.0.0", "Returns the number of members of the intersect of multiple sets.",
            set::sintercard),
        row("sinterstore", -3, WD, Key::ALL, SE, "1.0.0",
            "Stores the intersect of multiple sets in a key.", set::sinterstore),
        row("sunion", -2, R, Key::ALL, SE, "1.0.0", "Returns the union of multiple sets.",
            set::sunion),
        row("sunionstore", -3, WD, Key::ALL, SE, "1.0.0",
            "Stores the union of multiple sets in a key.", set::sunionstore),
        row("sdiff", -2, R, Key::ALL, SE, "1.0.0", "Returns the difference of multiple sets.",
            set::sdiff),
        row("sdiffstore", -3, WD, Key::ALL, SE, "1.0.0",
            "Stores the difference of multiple sets in a key.", set::sdiffstore),
        // ----- set end
        // ----- sorted set
        row("zadd", -4, WDF, Key::ONE, ZS, "1.2.0",
            "Add one or more members to a sorted set, or update its score if it already \
             exists", zset::zadd),
        row("zrem", -3, WF, Key::ONE, ZS, "1.2.0",
            "Remove one or more members from a sorted set", zset::zrem),
        row("zscore", 3, RF, Key::ONE, ZS, "1.2.0",
            "Get the score associated with the given member in a sorted set", zset::zscore),
        row("zmscore", -3, RF, Key::ONE, ZS, "6.2.0",
            "Get the score associated with the given members in a sorted set", zset::zmscore),
        row("zincrby", 4, WDF, Key::ONE, ZS, "1.2.0",
            "Increment the score of a member in a sorted set", zset::zincrby),
        row("zcard", 2, RF, Key::ONE, ZS, "1.2.0", "Get the number of members in a sorted set",
            zset::zcard),
        row("zcount", 4, RF, Key::ONE, ZS, "2.0.0",
            "Count the members in a sorted set with scores within the given values",
            zset::zcount),
        row("zlexcount", 4, RF, Key::ONE, ZS, "2.8.9",
            "Count the number of members in a sorted set between a given lexicographical \
             range", zset::zlexcount),
        row("zrange", -4, R, Key::ONE, ZS, "1.2.0", "Return a range of members in a sorted set",
            zset::zrange),
        row("zrangestore", -5, WD, Key::new(1, 2, 1), ZS, "6.2.0",
            "Store a range of members from sorted set into another key", zset::zrangestore),
        row("zrangebyscore", -4, R, Key::ONE, ZS, "1.0.5",
            "Return a range of members in a sorted set, by score", zset::zrangebyscore),
        row("zrevrangebyscore", -4, R, Key::ONE, ZS, "2.2.0",
            "Return a range of members in a sorted set, by score, with scores ordered from \
             high to low", zset::zrevrangebyscore),
        row("zrangebylex", -4, R, Key::ONE, ZS, "2.8.9",
            "Return a range of members in a sorted set, by lexicographical range",
            zset::zrangebylex),
        row("zrevrangebylex", -4, R, Key::ONE, ZS, "2.8.9",
            "Return a range of members in a sorted set, by lexicographical range, ordered \
             from higher to lower strings.", zset::zrevrangebylex),
        row("zrevrange", -4, R, Key::ONE, ZS, "1.2.0",
            "Return a range of members in a sorted set, by index, with scores ordered from \
             high to low", zset::zrevrange),
        row("zrank", 3, RF, Key::ONE, ZS, "2.0.0",
            "Determine the index of a member in a sorted set", zset::zrank),
        row("zrevrank", 3, RF, Key::ONE, ZS, "2.0.0",
            "Determine the index of a member in a sorted set, with scores ordered from high \
             to low", zset::zrevrank),
        row("zpopmin", -2, WF, Key::ONE, ZS, "5.0.0",
            "Remove and return members with the lowest scores in a sorted set", zset::zpopmin),
        row("zpopmax", -2, WF, Key::ONE, ZS, "5.0.0",
            "Remove and return members with the highest scores in a sorted set",
            zset::zpopmax),
        row("zrandmember", -2, R, Key::ONE, ZS, "6.2.0",
            "Get one or multiple random elements from a sorted set", zset::zrandmember),
        row("zremrangebyrank", 4, W, Key::ONE, ZS, "2.0.0",
            "Remove all members in a sorted set within the given indexes",
            zset::zremrangebyrank),
        row("zremrangebyscore", 4, W, Key::ONE, ZS, "1.2.0",
            "Remove all members in a sorted set within the given scores",
            zset::zremrangebyscore),
        row("zremrangebylex", 4, W, Key::ONE, ZS, "2.8.9",
            "Remove all members in a sorted set between the given lexicographical range",
            zset::zremrangebylex),
        // Movable keys: the sources follow `numkeys` (legacy range as Redis's, see KeyRange).
        row("zunion", -3, RMK, Key::NONE.numkeys(1), ZS, "6.2.0", "Add multiple sorted sets",
            zset::zunion),
        row("zunionstore", -4, WDMK, Key::ONE.numkeys(2), ZS, "2.0.0",
            "Add multiple sorted sets and store the resulting sorted set in a new key",
            zset::zunionstore),
        row("zinter", -3, RMK, Key::NONE.numkeys(1), ZS, "6.2.0",
            "Intersect multiple sorted sets", zset::zinter),
        row("zinterstore", -4, WDMK, Key::ONE.numkeys(2), ZS, "2.0.0",
            "Intersect multiple sorted sets and store the resulting sorted set in a new key",
            zset::zinterstore),
        row("zintercard", -3, RMK, Key::NONE.numkeys(1), ZS, "7.0.0",
            "Intersect multiple sorted sets and return the cardinality of the result",
            zset::zintercard),
        row("zdiff", -3, RMK, Key::NONE.numkeys(1), ZS, "6.2.0", "Subtract multiple sorted sets",
            zset::zdiff),
        row("zdiffstore", -4, WDMK, Key::ONE.numkeys(2), ZS, "6.2.0",
            "Subtract multiple sorted sets and store the resulting sorted set in a new key",
            zset::zdiffstore),
        row("zscan", -3, R, Key::ONE, ZS, "2.8.0",
            "Incrementally iterate sorted sets elements and associated scores", zset::zscan),
        // ----- sorted set end
        // ----- list
        row("lpush", -3, WDF, Key::ONE, LI, "1.0.0",
            "Prepend one or multiple elements to a list", list::lpush),
        row("rpush", -3, WDF, Key::ONE, LI, "1.0.0",
            "Append one or multiple elements to a list", list::rpush),
        row("lpushx", -3, WDF, Key::ONE, LI, "2.2.0",
            "Prepend an element to a list, only if the list exists", list::lpushx),
        row("rpushx", -3, WDF, Key::ONE, LI, "2.2.0",
            "Append an element to a list, only if the list exists", list::rpushx),
        row("lpop", -2, WF, Key::ONE, LI, "1.0.0",
            "Remove and get the first elements in a list", list::lpop),
        row("rpop", -2, WF, Key::ONE, LI, "1.0.0",
            "Remove and get the last elements in a list", list::rpop),
        row("llen", 2, RF, Key::ONE, LI, "1.0.0", "Get the length of a list", list::llen),
        row("lrange", 4, R, Key::ONE, LI, "1.0.0", "Get a range of elements from a list",
            list::lrange),
        row("lindex", 3, R, Key::ONE, LI, "1.0.0", "Get an element from a list by its index",
            list::lindex),
        row("lset", 4, WD, Key::ONE, LI, "1.0.0",
            "Set the value of an element in a list by its index", list::lset),
        row("lrem", 4, W, Key::ONE, LI, "1.0.0", "Remove elements from a list", list::lrem),
        row("ltrim", 4, W, Key::ONE, LI, "1.0.0", "Trim a list to the specified range",
            list::ltrim),
        row("linsert", 5, WD, Key::ONE, LI, "2.2.0",
            "Insert an element before or after another element in a list", list::linsert),
        row("lpos", -3, R, Key::ONE, LI, "6.0.6",
            "Return the index of matching elements on a list", list::lpos),
        row("lmove", 5, WD, Key::new(1, 2, 1), LI, "6.2.0",
            "Pop an element from a list, push it to another list and return it", list::lmove),
        row("rpoplpush", 3, WD, Key::new(1, 2, 1), LI, "1.2.0",
            "Remove the last element in a list, prepend it to another list and return it",
            list::rpoplpush),
        row("lmpop", -4, Flags::of(&[Flags::WRITE, Flags::MOVABLE_KEYS]), Key::counted(1), LI,
            "7.0.0", "Pop elements from a list", list::lmpop),
        // Blocking forms: a connection that finds nothing waits (src/exec/blocking.rs).
        row("blpop", -3, BLOCKING_WRITE, Key::new(1, -2, 1), LI, "2.0.0",
            "Remove and get the first element in a list, or block until one is available",
            list::blpop),
        row("brpop", -3, BLOCKING_WRITE, Key::new(1, -2, 1), LI, "2.0.0",
            "Remove and get the last element in a list, or block until one is available",
            list::brpop),
        row("blmove", 6, Flags::of(&[WD, Flags::NOSCRIPT, Flags::BLOCKING]), Key::new(1, 2, 1),
            LI, "6.2.0",
            "Pop an element from a list, push it to another list and return it; or block \
             until one is available", list::blmove),
        row("blmpop", -5, Flags::of(&[Flags::WRITE, Flags::BLOCKING, Flags::MOVABLE_KEYS]),
            Key::counted(2), LI, "7.0.0",
            "Pop elements from a list, or block until one is available", list::blmpop),
        // ----- list end
    ]
};

/// The longest command name in the table, so lookups lowercase into a stack buffer.
const NAME_BYTES_MAX: usize = 16;

/// Slots of the lookup index: a power of two, at least twice the rows so probes stay short.
const INDEX_SLOTS: usize = 512;

const _: () = assert!(TABLE.len() * 2 <= INDEX_SLOTS && INDEX_SLOTS.is_power_of_two());
// Slots hold `row + 1` in a u16.
const _: () = assert!(TABLE.len() < u16::MAX as usize);

/// FNV-1a of a lowercase name, folded to a slot.
const fn slot_of(name: &[u8]) -> usize {
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < name.len() {
        hash ^= name[i] as u32;
        hash = hash.wrapping_mul(0x0100_0193);
        i += 1;
    }
    hash as usize & (INDEX_SLOTS - 1)
}

/// Open addressing with linear probing: slot → row + 1, 0 for empty. Built at compile time,
/// which also checks that names are lowercase, short enough and unique.
const INDEX: [u16; INDEX_SLOTS] = {
    let mut index = [0u16; INDEX_SLOTS];
    let mut row = 0;
    while row < TABLE.len() {
        let name = TABLE[row].name.as_bytes();
        assert!(name.len() <= NAME_BYTES_MAX, "command name too long");
        let mut i = 0;
        while i < name.len() {
            assert!(!name[i].is_ascii_uppercase(), "command names are lowercase");
            i += 1;
        }
        let mut slot = slot_of(name);
        while index[slot] != 0 {
            let other = TABLE[index[slot] as usize - 1].name.as_bytes();
            let mut same = other.len() == name.len();
            let mut j = 0;
            while same && j < name.len() {
                same = other[j] == name[j];
                j += 1;
            }
            assert!(!same, "a command name is listed twice");
            slot = (slot + 1) & (INDEX_SLOTS - 1);
        }
        index[slot] = (row + 1) as u16;
        row += 1;
    }
    index
};

/// A command found in the table: its row and the row's index (its statistics slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Where the row sits in [`TABLE`].
    pub index: usize,
    /// The row.
    pub spec: &'static Spec,
}

/// Looks a command name up, ignoring case. Never allocates; at most a few probes.
pub fn lookup(name: &[u8]) -> Option<Entry> {
    if name.len() > NAME_BYTES_MAX {
        return None;
    }
    let mut lower = [0u8; NAME_BYTES_MAX];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let mut slot = slot_of(lower);
    // Bounded: the index is at most half full, so an empty slot comes within its length.
    for _ in 0..INDEX_SLOTS {
        let row = usize::from(INDEX[slot]);
        if row == 0 {
            return None;
        }
        let spec = &TABLE[row - 1];
        if spec.name.as_bytes() == lower {
            return Some(Entry {
                index: row - 1,
                spec,
            });
        }
        slot = (slot + 1) & (INDEX_SLOTS - 1);
    }
    None
}

/// Redis's arity rule.
fn arity_allows(arity: i32, argc: usize) -> bool {
    if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= arity.unsigned_abs() as usize
    }
}

/// Redis's arity check, naming the command (or `container|subcommand`) on failure.
pub(crate) fn check_arity(name: &'static str, arity: i32, argc: usize) -> Result<(), CommandError> {
    if arity_allows(arity, argc) {
        Ok(())
    } else {
        Err(CommandError::WrongArity(name))
    }
}

/// The commands with subcommands, whose parse checks the subcommand's name and arity.
const CONTAINERS: &[&str] = &[
    "client", "command", "config", "memory", "object", "pubsub", "ring", "script",
];

impl Spec {
    /// Whether this command has subcommands (`CLIENT SETNAME`): Redis's command lookup
    /// refuses an unknown one, or one with the wrong arity, before anything else.
    pub fn is_container(&self) -> bool {
        CONTAINERS.contains(&self.name)
    }

    /// The keys `args` (the whole request) routes by: [`Spec::route`]'s, without a trailing
    /// `CONSISTENCY <level>` that [`strip_level`] takes off.
    pub fn routed_keys<'a>(&self, args: &'a [Bytes]) -> impl Iterator<Item = &'a Bytes> {
        let end = match self.access() {
            Access::Read | Access::Write if ends_with_level(args, self) => args.len() - 2,
            _ => args.len(),
        };
        self.route.keys(&args[..end])
    }
}

/// Whether `args` end with `CONSISTENCY <level>` that [`strip_level`] takes off.
fn ends_with_level(args: &[Bytes], spec: &Spec) -> bool {
    let n = args.len();
    n >= 3 && is(&args[n - 2], "CONSISTENCY") && n - 2 >= spec.arity.unsigned_abs() as usize
}

/// Takes a trailing `CONSISTENCY <level>` off a key command, when what is left still has the
/// command's minimum arity (so `SET CONSISTENCY ONE` sets the key `CONSISTENCY`).
fn strip_level(args: &mut Vec<Bytes>, spec: &Spec) -> Result<Option<Level>, CommandError> {
    let n = args.len();
    if !ends_with_level(args, spec) {
        return Ok(None);
    }
    let level = Level::parse(&args[n - 1])?;
    if level == Level::Any && spec.access() == Access::Read {
        return Err(LevelError::AnyForRead.into());
    }
    args.truncate(n - 2);
    Ok(Some(level))
}

/// A parsed request: the command, its table row and the level given by a trailing
/// `CONSISTENCY <level>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The command's row: its name, flags, keys and level.
    pub spec: &'static Spec,
    /// The row's index in [`TABLE`], for per-command statistics.
    pub index: usize,
    /// What to do.
    pub command: Command,
    /// The level named in the request itself; `None` means the connection's default.
    pub level: Option<Level>,
}

impl Request {
    /// Parses one request's arguments (as the [`crate::parser`] returns them) into a
    /// command and its optional `CONSISTENCY` level. The command name is case-insensitive.
    ///
    /// # Errors
    /// A [`CommandError`] with Redis's text: unknown command, wrong arity, syntax, a bad
    /// value or a bad level. Nothing has run.
    pub fn parse(args: Vec<Bytes>) -> Result<Request, CommandError> {
        match args.first().and_then(|name| lookup(name)) {
            Some(entry) => Request::parse_as(entry, args),
            None => Err(unknown_command(&args)),
        }
    }

    /// As [`Request::parse`], for a request whose name was already looked up (`entry` is
    /// [`lookup`] of `args[0]`): the name is not looked up again.
    ///
    /// # Errors
    /// As [`Request::parse`], but for an unknown command.
    pub fn parse_as(entry: Entry, args: Vec<Bytes>) -> Result<Request, CommandError> {
        Request::parse_inner(entry, args, None)
    }

    /// As [`Request::parse_as`], also pushing the command's keys onto `keys` (in order,
    /// repeats kept; none for commands without keys): what a cluster coordinator reads and
    /// writes for it.
    ///
    /// # Errors
    /// As [`Request::parse`], but for an unknown command; `keys` may then hold some keys.
    pub fn parse_with_keys(
        entry: Entry,
        args: Vec<Bytes>,
        keys: &mut Vec<Bytes>,
    ) -> Result<Request, CommandError> {
        Request::parse_inner(entry, args, Some(keys))
    }

    /// The errors Redis answers before it checks authentication, from its command lookup:
    /// the command's own arity (after a trailing `CONSISTENCY <level>`), a container's
    /// unknown subcommand, or the subcommand's arity (`client|setname`). Other errors wait
    /// until the client has authenticated.
    pub fn lookup_error(entry: Entry, args: &[Bytes]) -> Option<CommandError> {
        let spec = entry.spec;
        let level_args = match spec.access() {
            Access::None => 0,
            Access::Read | Access::Write => 2 * usize::from(ends_with_level(args, spec)),
        };
        if let Err(e) = check_arity(spec.name, spec.arity, args.len() - level_args) {
            return Some(e);
        }
        // Only a container's parse can find a lookup error past the arity: the others are
        // not parsed here (a queued `SET` in `MULTI` is then parsed once, when it runs).
        if !spec.is_container() {
            return None;
        }
        match Request::parse_inner(entry, args.to_vec(), None) {
            Err(CommandError::WrongArity(name)) if name.contains('|') => {
                Some(CommandError::WrongArity(name))
            }
            Err(e @ CommandError::UnknownSubcommand { .. }) => Some(e),
            _ => None,
        }
    }

    fn parse_inner(
        entry: Entry,
        mut args: Vec<Bytes>,
        keys: Option<&mut Vec<Bytes>>,
    ) -> Result<Request, CommandError> {
        let spec = entry.spec;
        debug_assert!(args.first().is_some_and(|n| is(n, spec.name)));
        let level = match spec.access() {
            Access::None => None,
            Access::Read | Access::Write => strip_level(&mut args, spec)?,
        };
        check_arity(spec.name, spec.arity, args.len())?;
        if let Some(keys) = keys {
            keys.extend(spec.route.keys(&args).cloned());
        }
        let mut cur = ArgCursor::new(args, spec);
        let command = (spec.parse)(&mut cur)?;
        cur.finish()?;
        Ok(Request {
            spec,
            index: entry.index,
            command,
            level,
        })
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
