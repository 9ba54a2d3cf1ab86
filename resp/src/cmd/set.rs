//! Set commands (to be filled: see cmd/hash.rs for the pattern).

/// A set command.
#[derive(Debug, Clone, PartialEq)]
pub enum SetCommand {}
