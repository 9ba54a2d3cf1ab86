//! What a client counts, and the run's totals merged from every client.

use std::collections::BTreeMap;
use std::time::Instant;

use super::histogram::{Latency, LatencyTotal};
use super::verify::VerifyCounts;

/// The most distinct error kinds kept; later new kinds are counted as [`OTHER_KIND`].
pub const ERROR_KINDS_MAX: usize = 32;
/// The longest error kind kept (the first word of an error reply).
pub const ERROR_KIND_BYTES_MAX: usize = 32;
/// The kind of errors beyond [`ERROR_KINDS_MAX`] kinds.
pub const OTHER_KIND: &str = "OTHER";

/// Counts per error kind: the first word of an error reply (`TIMEOUT`, `UNAVAILABLE`, `ERR`),
/// or the generator's own lowercase kinds (`connection`, `timeout`, `protocol`,
/// `unexpected`). A list, not a map: it holds a handful of kinds, and a lookup by the reply's
/// bytes must not allocate.
#[derive(Debug, Clone, Default)]
pub struct ErrorKinds {
    counts: Vec<(String, u64)>,
}

impl ErrorKinds {
    /// Counts `n` errors of the kind named by `word` (bytes as the server sent them).
    pub fn add(&mut self, word: &[u8], n: u64) {
        let word = &word[..word.len().min(ERROR_KIND_BYTES_MAX)];
        if let Some((_, count)) = self.counts.iter_mut().find(|(k, _)| k.as_bytes() == word) {
            *count += n;
            return;
        }
        let kind = if self.counts.len() < ERROR_KINDS_MAX {
            word.iter()
                .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
                .collect()
        } else {
            OTHER_KIND.to_string()
        };
        if let Some((_, count)) = self.counts.iter_mut().find(|(k, _)| *k == kind) {
            *count += n;
        } else {
            self.counts.push((kind, n));
        }
    }

    /// Counts the error reply `line` (without its `-`) under its first word.
    pub fn add_reply(&mut self, line: &[u8]) {
        let word = line.split(|&b| b == b' ').next().unwrap_or(line);
        self.add(if word.is_empty() { b"?" } else { word }, 1);
    }

    /// Every kind with its count, sorted by kind.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        let mut map = BTreeMap::new();
        for (kind, count) in &self.counts {
            *map.entry(kind.clone()).or_insert(0) += count;
        }
        map
    }
}

/// Requests of one operation in the measured phase.
#[derive(Debug, Clone, Default)]
pub struct OpStats {
    /// Latencies of the replies (error replies included).
    pub latency: Latency,
    /// Requests sent: answered, or lost with their connection.
    pub requests: u64,
    /// Error replies and lost requests.
    pub errors: u64,
}

/// Everything one client counted.
#[derive(Debug, Clone, Default)]
pub struct ClientStats {
    /// Measured SETs.
    pub set: OpStats,
    /// Measured GETs.
    pub get: OpStats,
    /// Measured errors by kind.
    pub errors: ErrorKinds,
    /// GET checks of every phase (with `--verify`).
    pub verify: VerifyCounts,
    /// When the last measured reply arrived.
    pub last_reply: Option<Instant>,
    /// Preload SETs that failed (error reply or lost).
    pub preload_errors: u64,
}

/// The merged counts of one operation.
#[derive(Debug, Clone, Default)]
pub struct OpTotal {
    /// Merged latencies.
    pub latency: LatencyTotal,
    /// See [`OpStats::requests`].
    pub requests: u64,
    /// See [`OpStats::errors`].
    pub errors: u64,
}

impl OpTotal {
    /// Adds one client's counts.
    pub fn add(&mut self, part: &OpStats) {
        self.latency.add(&part.latency);
        self.requests += part.requests;
        self.errors += part.errors;
    }

    /// Adds another total.
    pub fn merge(&mut self, other: &OpTotal) {
        self.latency.merge(&other.latency);
        self.requests += other.requests;
        self.errors += other.errors;
    }
}

/// The run's counts, merged from every client.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// SETs.
    pub set: OpTotal,
    /// GETs.
    pub get: OpTotal,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Checks.
    pub verify: VerifyCounts,
    /// When the last measured reply arrived.
    pub last_reply: Option<Instant>,
    /// Failed preload SETs.
    pub preload_errors: u64,
}

impl Totals {
    /// Adds one client's counts.
    pub fn add(&mut self, part: &ClientStats) {
        self.set.add(&part.set);
        self.get.add(&part.get);
        for (kind, count) in part.errors.to_map() {
            *self.errors.entry(kind).or_insert(0) += count;
        }
        self.verify.merge(&part.verify);
        self.last_reply = self.last_reply.max(part.last_reply);
        self.preload_errors += part.preload_errors;
    }

    /// SETs and GETs together.
    pub fn all(&self) -> OpTotal {
        let mut all = self.set.clone();
        all.merge(&self.get);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_are_counted_by_their_first_word() {
        let mut kinds = ErrorKinds::default();
        kinds.add_reply(b"TIMEOUT QUORUM got 1 of 2 acks in 1000 ms");
        kinds.add_reply(b"TIMEOUT QUORUM got 0 of 2 replies");
        kinds.add_reply(b"ERR unknown command");
        kinds.add_reply(b"");
        kinds.add(b"connection", 3);
        let map = kinds.to_map();
        let want: BTreeMap<String, u64> = [("TIMEOUT", 2), ("ERR", 1), ("?", 1), ("connection", 3)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert_eq!(map, want);
    }

    #[test]
    fn kinds_beyond_the_bound_are_other_and_odd_bytes_are_replaced() {
        let mut kinds = ErrorKinds::default();
        for i in 0..ERROR_KINDS_MAX + 5 {
            kinds.add_reply(format!("E{i} x").as_bytes());
        }
        kinds.add_reply(b"\x01\xff\tX");
        let map = kinds.to_map();
        assert_eq!(map.len(), ERROR_KINDS_MAX + 1);
        assert_eq!(map[OTHER_KIND], 6);
        kinds.add_reply(&[b'L'; 100]);
        assert!(
            kinds
                .to_map()
                .keys()
                .all(|k| k.len() <= ERROR_KIND_BYTES_MAX)
        );
    }
}
