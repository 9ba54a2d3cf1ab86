//! The command table: names, arities, access, and the trailing `CONSISTENCY <level>`.
//!
//! Arities follow Redis 7.0's command table: a positive arity is an exact argument count
//! (the name included), a negative one a minimum.

use bytes::Bytes;

use super::args::{CommandError, is, unknown_command};
use super::{
    Access, ClientCommand, Command, CommandInfoCommand, ExpiryTime, Family, Request, RingCommand,
    TimeUnit, connection, keyspace, server, strings,
};
use crate::level::{Level, LevelError};

/// One row of the command table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// Redis's lowercase name.
    pub(crate) name: &'static str,
    /// Redis's arity.
    pub(crate) arity: i32,
    /// Which level the command takes, if any.
    pub(crate) access: Access,
    /// Which family parses it.
    pub(crate) family: Family,
}

/// The longest command name in the table, so lookups lowercase into a stack buffer.
const NAME_BYTES_MAX: usize = 16;

/// Every command, as `(name, arity, access, family)`.
const TABLE: &[(&str, i32, Access, Family)] = {
    use Access::{None as N, Read as R, Write as W};
    use Family::{Connection as C, Keyspace as K, Server as S, Strings as T};
    &[
        ("ping", -1, N, C),
        ("echo", 2, N, C),
        ("hello", -1, N, C),
        ("auth", -2, N, C),
        ("select", 2, N, C),
        ("quit", -1, N, C),
        ("reset", 1, N, C),
        ("client", -2, N, C),
        ("consistency", -1, N, C),
        ("command", -1, N, S),
        ("info", -1, N, S),
        ("config", -2, N, S),
        ("dbsize", 1, N, S),
        ("flushall", -1, N, S),
        ("flushdb", -1, N, S),
        ("time", 1, N, S),
        ("shutdown", -1, N, S),
        ("ring", -2, N, S),
        ("get", 2, R, T),
        ("set", -3, W, T),
        ("setnx", 3, W, T),
        ("setex", 4, W, T),
        ("psetex", 4, W, T),
        ("getset", 3, W, T),
        ("getdel", 2, W, T),
        ("getex", -2, W, T),
        ("mget", -2, R, T),
        ("mset", -3, W, T),
        ("msetnx", -3, W, T),
        ("strlen", 2, R, T),
        ("append", 3, W, T),
        ("getrange", 4, R, T),
        ("substr", 4, R, T),
        ("setrange", 4, W, T),
        ("incr", 2, W, T),
        ("decr", 2, W, T),
        ("incrby", 3, W, T),
        ("decrby", 3, W, T),
        ("incrbyfloat", 3, W, T),
        ("del", -2, W, K),
        ("unlink", -2, W, K),
        ("exists", -2, R, K),
        ("type", 2, R, K),
        ("touch", -2, R, K),
        ("expire", -3, W, K),
        ("pexpire", -3, W, K),
        ("expireat", -3, W, K),
        ("pexpireat", -3, W, K),
        ("ttl", 2, R, K),
        ("pttl", 2, R, K),
        ("expiretime", 2, R, K),
        ("pexpiretime", 2, R, K),
        ("persist", 2, W, K),
        // No single key and no preference list: these take no level.
        ("keys", 2, N, K),
        ("scan", -2, N, K),
        ("randomkey", 1, N, K),
    ]
};

/// Looks a command name up, ignoring case.
pub(crate) fn lookup(name: &[u8]) -> Option<Spec> {
    if name.len() > NAME_BYTES_MAX {
        return None;
    }
    let mut lower = [0u8; NAME_BYTES_MAX];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    TABLE
        .iter()
        .find(|row| row.0.as_bytes() == lower)
        .map(|&(name, arity, access, family)| Spec {
            name,
            arity,
            access,
            family,
        })
}

/// Redis's arity check.
pub(crate) fn check_arity(name: &'static str, arity: i32, argc: usize) -> Result<(), CommandError> {
    let ok = if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= arity.unsigned_abs() as usize
    };
    if ok {
        Ok(())
    } else {
        Err(CommandError::WrongArity(name))
    }
}

/// Takes a trailing `CONSISTENCY <level>` off a key command, when what is left still has the
/// command's minimum arity (so `SET CONSISTENCY ONE` sets the key `CONSISTENCY`).
fn strip_level(args: &mut Vec<Bytes>, spec: &Spec) -> Result<Option<Level>, CommandError> {
    let n = args.len();
    if n < 3 || !is(&args[n - 2], "CONSISTENCY") || n - 2 < spec.arity.unsigned_abs() as usize {
        return Ok(None);
    }
    let level = Level::parse(&args[n - 1])?;
    if level == Level::Any && spec.access == Access::Read {
        return Err(LevelError::AnyForRead.into());
    }
    args.truncate(n - 2);
    Ok(Some(level))
}

impl Request {
    /// Parses one request's arguments (as the [`crate::parser`] returns them) into a
    /// command and its optional `CONSISTENCY` level. The command name is case-insensitive.
    ///
    /// # Errors
    /// A [`CommandError`] with Redis's text: unknown command, wrong arity, syntax, a bad
    /// value or a bad level. Nothing has run.
    pub fn parse(mut args: Vec<Bytes>) -> Result<Request, CommandError> {
        let Some(spec) = args.first().and_then(|name| lookup(name)) else {
            return Err(unknown_command(&args));
        };
        let level = if spec.access == Access::None {
            None
        } else {
            strip_level(&mut args, &spec)?
        };
        check_arity(spec.name, spec.arity, args.len())?;
        let command = match spec.family {
            Family::Connection => connection::parse(spec.name, args)?,
            Family::Server => server::parse(spec.name, args)?,
            Family::Strings => strings::parse(spec.name, args)?,
            Family::Keyspace => keyspace::parse(spec.name, args)?,
        };
        debug_assert_eq!(command.access(), spec.access, "{}", spec.name);
        Ok(Request { command, level })
    }
}

impl Command {
    /// The lowercase command name, for metrics and logs. Commands spelled as another give
    /// that one's name (`SETEX` → `set`, `DECR` → `incrby`, `FLUSHDB` → `flushall`,
    /// `SUBSTR` → `getrange`, `PEXPIRE` → `expire`, `PEXPIREAT` → `expireat`); subcommands
    /// are named as in Redis's `INFO commandstats` (`client|setname`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ping(_) => "ping",
            Command::Echo(_) => "echo",
            Command::Hello(_) => "hello",
            Command::Auth { .. } => "auth",
            Command::Select(_) => "select",
            Command::Quit => "quit",
            Command::Reset => "reset",
            Command::Client(sub) => match sub {
                ClientCommand::Id => "client|id",
                ClientCommand::SetName(_) => "client|setname",
                ClientCommand::GetName => "client|getname",
                ClientCommand::SetInfo { .. } => "client|setinfo",
                ClientCommand::Info => "client|info",
                ClientCommand::List { .. } => "client|list",
                ClientCommand::Kill(_) => "client|kill",
                ClientCommand::NoEvict(_) => "client|no-evict",
                ClientCommand::NoTouch(_) => "client|no-touch",
                ClientCommand::Help => "client|help",
            },
            Command::Consistency(_) => "consistency",
            Command::CommandInfo(sub) => match sub {
                CommandInfoCommand::All => "command",
                CommandInfoCommand::Count => "command|count",
                CommandInfoCommand::Info(_) => "command|info",
                CommandInfoCommand::Docs(_) => "command|docs",
                CommandInfoCommand::List => "command|list",
                CommandInfoCommand::Help => "command|help",
            },
            Command::Info(_) => "info",
            Command::ConfigGet(_) => "config|get",
            Command::ConfigSet(_) => "config|set",
            Command::ConfigResetStat => "config|resetstat",
            Command::DbSize => "dbsize",
            Command::Flush(_) => "flushall",
            Command::Time => "time",
            Command::Shutdown { .. } => "shutdown",
            Command::Ring(sub) => match sub {
                RingCommand::Nodes => "ring|nodes",
                RingCommand::Info => "ring|info",
                RingCommand::Replicas(_) => "ring|replicas",
                RingCommand::Decommission => "ring|decommission",
                RingCommand::Forget(_) => "ring|forget",
                RingCommand::Repair(_) => "ring|repair",
            },
            Command::Get(_) => "get",
            Command::Set(_) => "set",
            Command::SetNx { .. } => "setnx",
            Command::GetDel(_) => "getdel",
            Command::GetEx { .. } => "getex",
            Command::MGet(_) => "mget",
            Command::MSet(_) => "mset",
            Command::MSetNx(_) => "msetnx",
            Command::StrLen(_) => "strlen",
            Command::Append { .. } => "append",
            Command::GetRange { .. } => "getrange",
            Command::SetRange { .. } => "setrange",
            Command::IncrBy { .. } => "incrby",
            Command::IncrByFloat { .. } => "incrbyfloat",
            Command::Del(_) => "del",
            Command::Unlink(_) => "unlink",
            Command::Exists(_) => "exists",
            Command::Type(_) => "type",
            Command::Touch(_) => "touch",
            Command::Expire(e) => match e.at {
                ExpiryTime::RelativeMs(_) => "expire",
                ExpiryTime::AbsoluteMs(_) => "expireat",
            },
            Command::Ttl {
                unit: TimeUnit::Seconds,
                ..
            } => "ttl",
            Command::Ttl {
                unit: TimeUnit::Millis,
                ..
            } => "pttl",
            Command::ExpireTime {
                unit: TimeUnit::Seconds,
                ..
            } => "expiretime",
            Command::ExpireTime {
                unit: TimeUnit::Millis,
                ..
            } => "pexpiretime",
            Command::Persist(_) => "persist",
            Command::Keys(_) => "keys",
            Command::Scan(_) => "scan",
            Command::RandomKey => "randomkey",
        }
    }

    /// The family of the command, which chooses who executes it.
    pub fn family(&self) -> Family {
        match self {
            Command::Ping(_)
            | Command::Echo(_)
            | Command::Hello(_)
            | Command::Auth { .. }
            | Command::Select(_)
            | Command::Quit
            | Command::Reset
            | Command::Client(_)
            | Command::Consistency(_) => Family::Connection,
            Command::CommandInfo(_)
            | Command::Info(_)
            | Command::ConfigGet(_)
            | Command::ConfigSet(_)
            | Command::ConfigResetStat
            | Command::DbSize
            | Command::Flush(_)
            | Command::Time
            | Command::Shutdown { .. }
            | Command::Ring(_) => Family::Server,
            Command::Get(_)
            | Command::Set(_)
            | Command::SetNx { .. }
            | Command::GetDel(_)
            | Command::GetEx { .. }
            | Command::MGet(_)
            | Command::MSet(_)
            | Command::MSetNx(_)
            | Command::StrLen(_)
            | Command::Append { .. }
            | Command::GetRange { .. }
            | Command::SetRange { .. }
            | Command::IncrBy { .. }
            | Command::IncrByFloat { .. } => Family::Strings,
            Command::Del(_)
            | Command::Unlink(_)
            | Command::Exists(_)
            | Command::Type(_)
            | Command::Touch(_)
            | Command::Expire(_)
            | Command::Ttl { .. }
            | Command::ExpireTime { .. }
            | Command::Persist(_)
            | Command::Keys(_)
            | Command::Scan(_)
            | Command::RandomKey => Family::Keyspace,
        }
    }

    /// The keys the command names, in order (repeats kept): what a cluster coordinator
    /// reads and writes for it. Empty for commands without keys and for those that walk the
    /// keyspace (`KEYS`, `SCAN`, `RANDOMKEY`). Without allocating: every key command of a
    /// cluster asks.
    pub fn keys(&self) -> KeyRefs<'_> {
        match self {
            Command::Get(key)
            | Command::GetDel(key)
            | Command::StrLen(key)
            | Command::Type(key)
            | Command::Persist(key)
            | Command::SetNx { key, .. }
            | Command::GetEx { key, .. }
            | Command::Append { key, .. }
            | Command::GetRange { key, .. }
            | Command::SetRange { key, .. }
            | Command::IncrBy { key, .. }
            | Command::IncrByFloat { key, .. }
            | Command::Ttl { key, .. }
            | Command::ExpireTime { key, .. } => KeyRefs::One(key),
            Command::Set(set) => KeyRefs::One(&set.key),
            Command::Expire(expire) => KeyRefs::One(&expire.key),
            Command::MGet(keys)
            | Command::Del(keys)
            | Command::Unlink(keys)
            | Command::Exists(keys)
            | Command::Touch(keys) => KeyRefs::Many(keys),
            Command::MSet(pairs) | Command::MSetNx(pairs) => KeyRefs::Pairs(pairs),
            _ => KeyRefs::None,
        }
    }

    /// Whether the command reads keys, writes keys, or neither, which chooses the level it
    /// uses. `KEYS`, `SCAN` and `RANDOMKEY` name no single key, so they take no level.
    pub fn access(&self) -> Access {
        match self {
            Command::Get(_)
            | Command::MGet(_)
            | Command::StrLen(_)
            | Command::GetRange { .. }
            | Command::Exists(_)
            | Command::Type(_)
            | Command::Touch(_)
            | Command::Ttl { .. }
            | Command::ExpireTime { .. } => Access::Read,
            Command::Set(_)
            | Command::SetNx { .. }
            | Command::GetDel(_)
            | Command::GetEx { .. }
            | Command::MSet(_)
            | Command::MSetNx(_)
            | Command::Append { .. }
            | Command::SetRange { .. }
            | Command::IncrBy { .. }
            | Command::IncrByFloat { .. }
            | Command::Del(_)
            | Command::Unlink(_)
            | Command::Expire(_)
            | Command::Persist(_) => Access::Write,
            Command::Ping(_)
            | Command::Echo(_)
            | Command::Hello(_)
            | Command::Auth { .. }
            | Command::Select(_)
            | Command::Quit
            | Command::Reset
            | Command::Client(_)
            | Command::Consistency(_)
            | Command::CommandInfo(_)
            | Command::Info(_)
            | Command::ConfigGet(_)
            | Command::ConfigSet(_)
            | Command::ConfigResetStat
            | Command::DbSize
            | Command::Flush(_)
            | Command::Time
            | Command::Shutdown { .. }
            | Command::Ring(_)
            | Command::Keys(_)
            | Command::Scan(_)
            | Command::RandomKey => Access::None,
        }
    }
}

/// Every command name in the table, lowercase (for `COMMAND LIST` and `COMMAND COUNT`).
pub fn command_names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|row| row.0)
}

/// The keys a command names ([`Command::keys`]), borrowed from it.
#[derive(Debug, Clone, Copy)]
pub enum KeyRefs<'a> {
    /// A command without keys.
    None,
    /// A single-key command.
    One(&'a Bytes),
    /// `MGET`, `DEL`, `EXISTS` and the like.
    Many(&'a [Bytes]),
    /// `MSET` and `MSETNX`: the keys of the pairs.
    Pairs(&'a [(Bytes, Bytes)]),
}

impl<'a> KeyRefs<'a> {
    /// How many keys, repeats counted.
    pub fn len(self) -> usize {
        match self {
            KeyRefs::None => 0,
            KeyRefs::One(_) => 1,
            KeyRefs::Many(keys) => keys.len(),
            KeyRefs::Pairs(pairs) => pairs.len(),
        }
    }

    /// Whether the command names no key.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The keys in order.
    pub fn iter(self) -> impl Iterator<Item = &'a Bytes> {
        let (one, many, pairs): (Option<&'a Bytes>, &'a [Bytes], &'a [(Bytes, Bytes)]) = match self
        {
            KeyRefs::None => (None, &[], &[]),
            KeyRefs::One(key) => (Some(key), &[], &[]),
            KeyRefs::Many(keys) => (None, keys, &[]),
            KeyRefs::Pairs(pairs) => (None, &[], pairs),
        };
        one.into_iter()
            .chain(many)
            .chain(pairs.iter().map(|(key, _)| key))
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
