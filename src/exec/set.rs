//! (to be filled: see hash.rs for the pattern)

use ringcache_resp::cmd::SetCommand;

use super::{Outcome, Records};
use crate::node::Node;

/// Executes a command of this family.
pub fn execute(
    _node: &Node,
    _records: &dyn Records,
    command: SetCommand,
    _now_ms: u64,
    _touch: bool,
) -> Outcome {
    match command {}
}
