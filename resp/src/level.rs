//! Consistency levels, as a client names them.
//!
//! `ONE`, `TWO`, `THREE`, `QUORUM`, `ALL`, an integer `1..=255`, and `ANY` (writes only).
//! How many replicas a level needs depends on N (the smaller of the replication factor and the
//! number of nodes), which the coordinator knows and this crate does not.

use std::fmt;
use std::sync::LazyLock;

/// A consistency level for one request or one connection's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// One replica.
    One,
    /// Two replicas.
    Two,
    /// Three replicas.
    Three,
    /// A majority of the N replicas: ⌊N/2⌋ + 1.
    Quorum,
    /// Every one of the N replicas.
    All,
    /// Writes only: one replica, or a stored hint when no replica answered.
    Any,
    /// An explicit count of replicas, `1..=255`.
    Count(u8),
}

impl Level {
    /// Parses a level name case-insensitively, or an integer count.
    ///
    /// # Errors
    /// Returns [`LevelError`] whose text lists the valid levels.
    pub fn parse(raw: &[u8]) -> Result<Level, LevelError> {
        // Every request that names a level comes through here: compare without allocating.
        let named = [
            (&b"ONE"[..], Level::One),
            (b"TWO", Level::Two),
            (b"THREE", Level::Three),
            (b"QUORUM", Level::Quorum),
            (b"ALL", Level::All),
            (b"ANY", Level::Any),
        ];
        if let Some(&(_, level)) = named
            .iter()
            .find(|(name, _)| raw.eq_ignore_ascii_case(name))
        {
            return Ok(level);
        }
        std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.parse::<u8>().ok())
            .filter(|&n| n >= 1)
            .map(Level::Count)
            .ok_or_else(|| LevelError::Invalid(String::from_utf8_lossy(raw).into_owned()))
    }

    /// The number of replica replies this level needs when a key has `n` replicas
    /// (`n` is the smaller of the replication factor and the number of nodes).
    ///
    /// A level that names more replicas than exist is capped at `n`, so that every level is
    /// met on a single node; `ANY` needs one (a stored hint may stand in for it; the
    /// coordinator decides).
    pub fn required(self, n: usize) -> usize {
        let needed = match self {
            Level::One | Level::Any => 1,
            Level::Two => 2,
            Level::Three => 3,
            Level::Quorum => n / 2 + 1,
            Level::All => n,
            Level::Count(count) => usize::from(count),
        };
        needed.min(n.max(1))
    }
}

impl Level {
    /// The level's name as error texts and statistics show it (`QUORUM`, `2`), without
    /// allocating: every error text that names a level takes it from here.
    pub fn name(self) -> &'static str {
        /// The names of the integer levels `0..=255`, indexed by the count.
        static COUNTS: LazyLock<Vec<String>> =
            LazyLock::new(|| (0..=255).map(|n: u8| n.to_string()).collect());
        match self {
            Level::One => "ONE",
            Level::Two => "TWO",
            Level::Three => "THREE",
            Level::Quorum => "QUORUM",
            Level::All => "ALL",
            Level::Any => "ANY",
            Level::Count(n) => &COUNTS[usize::from(n)],
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A level that could not be parsed or does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    /// Not a level name nor an integer in `1..=255`.
    #[error(
        "ERR invalid consistency level '{0}': valid levels are ONE, TWO, THREE, QUORUM, ALL, \
         ANY (writes only) or an integer from 1 to 255"
    )]
    Invalid(String),
    /// `ANY` given for a read.
    #[error(
        "ERR consistency level ANY is for writes only: valid read levels are ONE, TWO, THREE, \
         QUORUM, ALL or an integer from 1 to 255"
    )]
    AnyForRead,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_any_case_and_counts_as_numbers() {
        assert_eq!(Level::parse(b"quorum"), Ok(Level::Quorum));
        assert_eq!(Level::parse(b"One"), Ok(Level::One));
        assert_eq!(Level::parse(b"ALL"), Ok(Level::All));
        assert_eq!(Level::parse(b"any"), Ok(Level::Any));
        assert_eq!(Level::parse(b"tWo"), Ok(Level::Two));
        assert_eq!(Level::parse(b"three"), Ok(Level::Three));
        assert_eq!(Level::parse(b"7"), Ok(Level::Count(7)));
        assert!(Level::parse(b"0").is_err());
        assert!(Level::parse(b"256").is_err());
        assert!(Level::parse(b"QUORUMS").is_err());
        assert!(Level::parse(b"").is_err());
    }

    #[test]
    fn every_level_names_itself_as_it_parses() {
        for n in 1..=255u8 {
            let level = Level::Count(n);
            assert_eq!(level.name(), n.to_string());
            assert_eq!(Level::parse(level.name().as_bytes()), Ok(level));
        }
        assert_eq!(Level::Count(0).name(), "0");
        assert_eq!(Level::Quorum.name(), "QUORUM");
        assert_eq!(Level::Quorum.to_string(), "QUORUM");
    }
}
