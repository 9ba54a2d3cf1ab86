//! Server commands: `COMMAND`, `INFO`, `CONFIG`, `DBSIZE`, `FLUSHALL`, `FLUSHDB`, `TIME`,
//! `SHUTDOWN`, `MEMORY`.
//!
//! # Format
//! ```text
//! COMMAND [COUNT | LIST | HELP | INFO [name ...] | DOCS [name ...]]
//! INFO [section ...]     DBSIZE     TIME
//! CONFIG GET pattern [pattern ...] | SET parameter value [parameter value ...] | RESETSTAT
//! FLUSHALL [ASYNC|SYNC]  FLUSHDB [ASYNC|SYNC]
//! SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]
//! MEMORY USAGE key [SAMPLES count] | DOCTOR | MALLOC-STATS | PURGE | HELP
//! RING NODES | INFO | REPLICAS key
//! ```

use bytes::Bytes;

use super::args::{ArgCursor, CommandError, is, parse_i64};
use super::connection::subcommand;
use super::{Command, CommandInfoCommand, FlushMode, RepairTarget, RingCommand};

/// # Format
/// `INFO [section ...]`: any sections, any case.
pub(super) fn info(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Info(cur.rest()))
}

/// # Format
/// `DBSIZE`
pub(super) fn dbsize(_: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::DbSize)
}

/// # Format
/// `TIME`
pub(super) fn time(_: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Time)
}

const RING_SUBCOMMANDS: &[(&str, &str, i32)] = &[
    ("nodes", "ring|nodes", 2),
    ("info", "ring|info", 2),
    ("replicas", "ring|replicas", 3),
    ("decommission", "ring|decommission", 2),
    ("forget", "ring|forget", 3),
    ("repair", "ring|repair", -2),
];

/// # Format
/// `RING NODES | INFO | REPLICAS key | DECOMMISSION | FORGET node-id | REPAIR [ALL | STATUS | key]`
pub(super) fn ring(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let sub = cur.required()?;
    let sub = match subcommand("RING", RING_SUBCOMMANDS, &sub, cur.argc())? {
        "nodes" => RingCommand::Nodes,
        "info" => RingCommand::Info,
        "decommission" => RingCommand::Decommission,
        "forget" => RingCommand::Forget(cur.next().expect("arity checked")),
        "repair" => RingCommand::Repair(match (cur.next(), cur.next()) {
            (None, _) => RepairTarget::All,
            (Some(arg), None) if is(&arg, "all") => RepairTarget::All,
            (Some(arg), None) if is(&arg, "status") => RepairTarget::Status,
            (Some(key), None) => RepairTarget::Key(key),
            (Some(_), Some(_)) => return Err(CommandError::Syntax),
        }),
        _ => RingCommand::Replicas(cur.next().expect("arity checked")),
    };
    Ok(Command::Ring(sub))
}

const COMMAND_SUBCOMMANDS: &[(&str, &str, i32)] = &[
    ("count", "command|count", 2),
    ("info", "command|info", -2),
    ("docs", "command|docs", -2),
    ("list", "command|list", -2),
    ("help", "command|help", 2),
];

/// # Format
/// ```text
/// COMMAND
/// COMMAND COUNT | LIST | HELP
/// COMMAND INFO [name ...]    (no names: every command)
/// COMMAND DOCS [name ...]
/// ```
/// `COMMAND LIST FILTERBY ...` is answered with `ERR syntax error` (no filters here).
pub(super) fn command(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let Some(sub) = cur.next() else {
        return Ok(Command::CommandInfo(CommandInfoCommand::All));
    };
    let sub = match subcommand("COMMAND", COMMAND_SUBCOMMANDS, &sub, cur.argc())? {
        "count" => CommandInfoCommand::Count,
        "help" => CommandInfoCommand::Help,
        "info" => CommandInfoCommand::Info(cur.rest()),
        "docs" => CommandInfoCommand::Docs(cur.rest()),
        "list" => CommandInfoCommand::List,
        other => unreachable!("command subcommand {other}"),
    };
    Ok(Command::CommandInfo(sub))
}

const CONFIG_SUBCOMMANDS: &[(&str, &str, i32)] = &[
    ("get", "config|get", -3),
    ("set", "config|set", -4),
    ("resetstat", "config|resetstat", 2),
];

/// # Format
/// ```text
/// CONFIG GET pattern [pattern ...]
/// CONFIG SET parameter value [parameter value ...]   (an odd count: ERR syntax error)
/// CONFIG RESETSTAT
/// ```
/// Other subcommands (`REWRITE`, `HELP`) get Redis's unknown-subcommand error.
pub(super) fn config(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let sub = cur.required()?;
    match subcommand("CONFIG", CONFIG_SUBCOMMANDS, &sub, cur.argc())? {
        "get" => Ok(Command::ConfigGet(cur.rest())),
        "set" => Ok(Command::ConfigSet(cur.pairs().ok_or(CommandError::Syntax)?)),
        "resetstat" => Ok(Command::ConfigResetStat),
        other => unreachable!("config subcommand {other}"),
    }
}

/// # Format
/// `FLUSHALL [ASYNC|SYNC]`, `FLUSHDB [ASYNC|SYNC]`; anything else is `ERR syntax error`.
pub(super) fn flush(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let mode = match cur.next() {
        None => FlushMode::Sync,
        Some(raw) if is(&raw, "sync") => FlushMode::Sync,
        Some(raw) if is(&raw, "async") => FlushMode::Async,
        Some(_) => return Err(CommandError::Syntax),
    };
    Ok(Command::Flush(mode))
}

/// # Format
/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: `ABORT` stands alone, `NOSAVE` and `SAVE`
/// exclude each other, anything else is `ERR syntax error`.
pub(super) fn shutdown(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let (mut abort, mut save, mut nosave, mut other_flags) = (false, false, false, false);
    while let Some(raw) = cur.next() {
        if is(&raw, "nosave") {
            nosave = true;
        } else if is(&raw, "save") {
            save = true;
        } else if is(&raw, "now") || is(&raw, "force") {
            other_flags = true;
        } else if is(&raw, "abort") {
            abort = true;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    if (abort && (save || nosave || other_flags)) || (save && nosave) {
        return Err(CommandError::Syntax);
    }
    Ok(Command::Shutdown { abort })
}

/// A `MEMORY` subcommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryCommand {
    /// `MEMORY USAGE key [SAMPLES count]`; the sample count is accepted and not used (the
    /// size is computed, not sampled).
    Usage(Bytes),
    /// `MEMORY DOCTOR`
    Doctor,
    /// `MEMORY MALLOC-STATS`
    MallocStats,
    /// `MEMORY PURGE`
    Purge,
    /// `MEMORY HELP`
    Help,
}

const MEMORY_SUBCOMMANDS: &[(&str, &str, i32)] = &[
    ("usage", "memory|usage", -3),
    ("doctor", "memory|doctor", 2),
    ("malloc-stats", "memory|malloc-stats", 2),
    ("purge", "memory|purge", 2),
    ("help", "memory|help", 2),
];

/// # Format
/// ```text
/// MEMORY USAGE key [SAMPLES count]     (count a non-negative integer; anything else is
///                                       `ERR syntax error`, a non-integer count Redis's
///                                       integer error)
/// MEMORY DOCTOR | MALLOC-STATS | PURGE | HELP
/// ```
pub(super) fn memory(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let sub = cur.required()?;
    Ok(Command::Memory(
        match subcommand("MEMORY", MEMORY_SUBCOMMANDS, &sub, cur.argc())? {
            "usage" => {
                let key = cur.required()?;
                while let Some(option) = cur.next() {
                    if !is(&option, "samples") {
                        return Err(CommandError::Syntax);
                    }
                    let count = cur.next().ok_or(CommandError::Syntax)?;
                    if parse_i64(&count)? < 0 {
                        return Err(CommandError::Syntax);
                    }
                }
                MemoryCommand::Usage(key)
            }
            "doctor" => MemoryCommand::Doctor,
            "malloc-stats" => MemoryCommand::MallocStats,
            "purge" => MemoryCommand::Purge,
            "help" => MemoryCommand::Help,
            other => unreachable!("memory subcommand {other}"),
        },
    ))
}
