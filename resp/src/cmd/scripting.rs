//! Scripting commands: `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO`, `SCRIPT`. How a script runs
//! is `src/scripting.rs`'s (the Lua engine) and `src/exec/script.rs`'s (on a node and
//! through the cluster).
//!
//! # Format
//! ```text
//! EVAL script numkeys [key ...] [arg ...]        EVAL_RO script numkeys [key ...] [arg ...]
//! EVALSHA sha1 numkeys [key ...] [arg ...]       EVALSHA_RO sha1 numkeys [key ...] [arg ...]
//! SCRIPT LOAD script | EXISTS sha1 [sha1 ...] | FLUSH [ASYNC|SYNC] | KILL | HELP
//! FUNCTION ... | FCALL ... | FCALL_RO ...        (answered: not offered yet)
//! ```

use bytes::Bytes;

use super::Command;
use super::args::{ArgCursor, CommandError, is, parse_i64};
use super::connection::subcommand;

/// Which script a call runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptSource {
    /// The body itself (`EVAL`).
    Body(Bytes),
    /// The SHA1 of a body loaded before (`EVALSHA`).
    Sha(Bytes),
}

/// A scripting command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptCommand {
    /// `EVAL`, `EVALSHA` and their `_RO` forms.
    Eval {
        /// The script.
        source: ScriptSource,
        /// `KEYS`.
        keys: Vec<Bytes>,
        /// `ARGV`.
        args: Vec<Bytes>,
        /// `EVAL_RO`/`EVALSHA_RO`: the script may not write.
        read_only: bool,
    },
    /// `SCRIPT LOAD body`
    Load(Bytes),
    /// `SCRIPT EXISTS sha1...`
    Exists(Vec<Bytes>),
    /// `SCRIPT FLUSH [ASYNC|SYNC]`
    Flush,
    /// `SCRIPT KILL`
    Kill,
    /// `SCRIPT HELP`
    Help,
    /// `FUNCTION ...`, `FCALL`, `FCALL_RO`: Redis 7's functions, not offered yet.
    Functions,
}

/// `SCRIPT`'s subcommands: name, `name|sub` for arity errors, Redis's arity.
const SCRIPT_SUBCOMMANDS: &[(&str, &str, i32)] = &[
    ("load", "script|load", 3),
    ("exists", "script|exists", -3),
    ("flush", "script|flush", -2),
    ("kill", "script|kill", 2),
    ("help", "script|help", 2),
];

pub(super) fn eval(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let body = cur.required()?;
    eval_with(cur, ScriptSource::Body(body), false)
}

pub(super) fn eval_ro(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let body = cur.required()?;
    eval_with(cur, ScriptSource::Body(body), true)
}

pub(super) fn evalsha(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let sha = cur.required()?;
    eval_with(cur, ScriptSource::Sha(sha), false)
}

pub(super) fn evalsha_ro(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let sha = cur.required()?;
    eval_with(cur, ScriptSource::Sha(sha), true)
}

/// `numkeys key... arg...`, with Redis's errors for a bad count.
fn eval_with(
    cur: &mut ArgCursor,
    source: ScriptSource,
    read_only: bool,
) -> Result<Command, CommandError> {
    let numkeys = parse_i64(&cur.required()?)?;
    let mut rest = cur.rest();
    if numkeys < 0 {
        return Err(CommandError::NegativeNumKeys);
    }
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > rest.len() {
        return Err(CommandError::TooManyNumKeys);
    }
    let args = rest.split_off(numkeys);
    Ok(Command::Script(ScriptCommand::Eval {
        source,
        keys: rest,
        args,
        read_only,
    }))
}

/// `FUNCTION ...`, `FCALL ...`, `FCALL_RO ...`: read whole, answered as not offered.
pub(super) fn functions(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    cur.skip_rest();
    Ok(Command::Script(ScriptCommand::Functions))
}

pub(super) fn script(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let sub = cur.required()?;
    let command = match subcommand("SCRIPT", SCRIPT_SUBCOMMANDS, &sub, cur.argc())? {
        "load" => ScriptCommand::Load(cur.required()?),
        "exists" => ScriptCommand::Exists(cur.rest()),
        "flush" => {
            match cur.next() {
                Some(mode) if is(&mode, "async") || is(&mode, "sync") => {}
                None => {}
                Some(_) => return Err(CommandError::ScriptFlushMode),
            }
            if cur.remaining() > 0 {
                return Err(CommandError::ScriptFlushMode);
            }
            ScriptCommand::Flush
        }
        "kill" => ScriptCommand::Kill,
        _ => ScriptCommand::Help,
    };
    Ok(Command::Script(command))
}
