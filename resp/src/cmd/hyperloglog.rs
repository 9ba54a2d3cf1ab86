//! HyperLogLog commands: `PFADD`, `PFCOUNT`, `PFMERGE`. An HLL is a string value in Redis's
//! own representation; the executor (`src/exec/hyperloglog.rs`) reads and writes it.
//!
//! # Format
//! ```text
//! PFADD key [element ...]      PFCOUNT key [key ...]      PFMERGE destkey [sourcekey ...]
//! ```

use super::Command;
use super::args::{ArgCursor, CommandError};

/// # Format
/// `PFADD key [element ...]`: no element still creates the key.
pub(super) fn pfadd(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::PfAdd {
        key: cur.required()?,
        elements: cur.rest(),
    })
}

/// # Format
/// `PFCOUNT key [key ...]`
pub(super) fn pfcount(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::PfCount(cur.rest()))
}

/// # Format
/// `PFMERGE destkey [sourcekey ...]`: the destination is merged too (Redis 7.0 allows no
/// source).
pub(super) fn pfmerge(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::PfMerge {
        dest: cur.required()?,
        sources: cur.rest(),
    })
}
