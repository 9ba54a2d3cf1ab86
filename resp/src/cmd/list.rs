//! List commands (to be filled: see cmd/hash.rs for the pattern).

/// A list command.
#[derive(Debug, Clone, PartialEq)]
pub enum ListCommand {}
