//! (to be filled: see hash.rs for the pattern)

use ringcache_resp::cmd::SortedSetCommand;

use super::{Outcome, Records};
use crate::node::Node;

/// Executes a command of this family.
pub fn execute(
    _node: &Node,
    _records: &dyn Records,
    command: SortedSetCommand,
    _now_ms: u64,
    _touch: bool,
) -> Outcome {
    match command {}
}
