//! Sorted set commands (to be filled: see cmd/hash.rs for the pattern).

/// A sorted set command.
#[derive(Debug, Clone, PartialEq)]
pub enum SortedSetCommand {}
