//! Transaction commands: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`. What they do to a
//! connection is `src/exec/transaction.rs`'s.
//!
//! # Format
//! ```text
//! MULTI     EXEC     DISCARD     UNWATCH     WATCH key [key ...]
//! ```

use super::Command;
use super::args::{ArgCursor, CommandError};

pub(super) fn multi(_: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Multi)
}

pub(super) fn exec(_: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Exec)
}

pub(super) fn discard(_: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Discard)
}

pub(super) fn unwatch(_: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Unwatch)
}

pub(super) fn watch(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Watch(cur.rest()))
}
