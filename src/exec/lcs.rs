//! `LCS`: the longest common subsequence of two strings, with Redis 7.0's answers.
//!
//! Redis fills the whole dynamic-programming table and walks it back from the end; which of
//! several equally long subsequences it answers, and how `IDX` splits it into ranges,
//! depend on that walk, so it is done the same way here. The table takes
//! `(len(a) + 1) * (len(b) + 1)` 4-byte cells and is refused, as in Redis, when that exceeds
//! `proto-max-bulk-len` bytes: the bound on the memory one `LCS` may take.

use bytes::Bytes;
use ringcache_resp::cmd::{Lcs, LcsMode};
use ringcache_resp::{CommandError, Reply};

use super::strings::{read, string};
use super::{ExecError, Outcome, Records, bulk};
use crate::node::Node;

/// Executes `LCS`. Both keys are checked to hold strings (or be missing, read as empty)
/// before the options are.
pub fn execute(node: &Node, records: &dyn Records, lcs: Lcs, now_ms: u64, touch: bool) -> Outcome {
    let read_string = |key: &[u8]| -> Result<Option<Bytes>, ExecError> {
        let record = read(records, key, now_ms, touch);
        string(record.as_ref(), now_ms)
            .map(|v| v.cloned())
            .map_err(|_| CommandError::LcsNotString.into())
    };
    let (a, b) = (read_string(&lcs.a)?, read_string(&lcs.b)?);
    let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
    let mode = lcs.mode?;
    let table_bytes_max = node.config.read().proto_max_bulk_len;
    let table = Table::build(&a, &b, table_bytes_max)?;
    Ok(match mode {
        LcsMode::Len => Reply::Integer(i64::from(table.len())),
        LcsMode::String => Reply::Bulk(table.walk(&a, &b, 0, false).0),
        LcsMode::Idx {
            min_match_len,
            with_match_len,
        } => {
            let (_, matches) = table.walk(&a, &b, min_match_len, with_match_len);
            Reply::Map(vec![
                (bulk("matches"), Reply::Array(matches)),
                (bulk("len"), Reply::Integer(i64::from(table.len()))),
            ])
        }
    })
}

/// `LCS(i, j)`: the length of the common subsequence of `a[..i]` and `b[..j]`.
struct Table {
    cells: Vec<u32>,
    a_len: usize,
    b_len: usize,
}

impl Table {
    /// Fills the table, after checking its size against `bytes_max`.
    fn build(a: &[u8], b: &[u8], bytes_max: u64) -> Result<Table, CommandError> {
        let cells = (a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1);
        if cells.saturating_mul(4) > bytes_max {
            return Err(CommandError::LcsTooLarge);
        }
        let width = b.len() + 1;
        let mut table = Table {
            cells: vec![0; cells as usize],
            a_len: a.len(),
            b_len: b.len(),
        };
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                table.cells[i * width + j] = if a[i - 1] == b[j - 1] {
                    table.at(i - 1, j - 1) + 1
                } else {
                    table.at(i - 1, j).max(table.at(i, j - 1))
                };
            }
        }
        Ok(table)
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * (self.b_len + 1) + j]
    }

    /// The length of the longest common subsequence.
    fn len(&self) -> u32 {
        self.at(self.a_len, self.b_len)
    }

    /// Redis's walk back from the end: the subsequence, and the `IDX` ranges (each
    /// `[[a_start, a_end], [b_start, b_end]]`, plus its length if `with_match_len`) of at
    /// least `min_match_len` bytes, last ones first.
    fn walk(
        &self,
        a: &[u8],
        b: &[u8],
        min_match_len: u64,
        with_match_len: bool,
    ) -> (Bytes, Vec<Reply>) {
        let mut found = vec![0u8; self.len() as usize];
        let mut matches = Vec::new();
        let mut range: Option<Range> = None;
        let (mut i, mut j, mut left) = (a.len(), b.len(), found.len());
        while i > 0 && j > 0 {
            let mut emit = false;
            if a[i - 1] == b[j - 1] {
                found[left - 1] = a[i - 1];
                match &mut range {
                    None => range = Some(Range::at(i - 1, j - 1)),
                    // Contiguous with the range: extend it backwards.
                    Some(r) if r.a_start == i && r.b_start == j => {
                        r.a_start -= 1;
                        r.b_start -= 1;
                    }
                    Some(_) => emit = true,
                }
                // A range that reached the start of either string is complete.
                emit |= range
                    .as_ref()
                    .is_some_and(|r| r.a_start == 0 || r.b_start == 0);
                (i, j, left) = (i - 1, j - 1, left - 1);
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                emit = range.is_some();
            }
            // An emitted range is dropped either way; only a long enough one is answered.
            if emit
                && let Some(r) = range.take()
                && r.len() >= min_match_len
            {
                matches.push(r.reply(with_match_len));
            }
        }
        (Bytes::from(found), matches)
    }
}

/// A matching range of both strings, built from its end backwards.
struct Range {
    a_start: usize,
    a_end: usize,
    b_start: usize,
    b_end: usize,
}

impl Range {
    fn at(a: usize, b: usize) -> Range {
        Range {
            a_start: a,
            a_end: a,
            b_start: b,
            b_end: b,
        }
    }

    fn len(&self) -> u64 {
        (self.a_end - self.a_start + 1) as u64
    }

    fn reply(&self, with_match_len: bool) -> Reply {
        let pair = |start: usize, end: usize| {
            Reply::Array(vec![
                Reply::Integer(start as i64),
                Reply::Integer(end as i64),
            ])
        };
        let mut items = vec![
            pair(self.a_start, self.a_end),
            pair(self.b_start, self.b_end),
        ];
        if with_match_len {
            items.push(Reply::Integer(self.len() as i64));
        }
        Reply::Array(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(a: &str, b: &str, min: u64) -> Vec<(usize, usize, usize, usize)> {
        let table = Table::build(a.as_bytes(), b.as_bytes(), 1 << 20).unwrap();
        let (_, matches) = table.walk(a.as_bytes(), b.as_bytes(), min, false);
        matches
            .iter()
            .map(|m| {
                let Reply::Array(items) = m else { panic!() };
                let ints: Vec<usize> = items
                    .iter()
                    .flat_map(|pair| match pair {
                        Reply::Array(p) => p.clone(),
                        _ => panic!(),
                    })
                    .map(|r| match r {
                        Reply::Integer(n) => n as usize,
                        _ => panic!(),
                    })
                    .collect();
                (ints[0], ints[1], ints[2], ints[3])
            })
            .collect()
    }

    #[test]
    fn idx_lists_the_ranges_from_the_end_as_redis_documents() {
        // The example of Redis's LCS page.
        assert_eq!(
            ranges("ohmytext", "mynewtext", 0),
            [(4, 7, 5, 8), (2, 3, 0, 1)]
        );
        assert_eq!(ranges("ohmytext", "mynewtext", 4), [(4, 7, 5, 8)]);
    }

    #[test]
    fn the_subsequence_is_the_one_redis_walks_to() {
        let (a, b) = (b"ohmytext", b"mynewtext");
        let table = Table::build(a, b, 1 << 20).unwrap();
        assert_eq!(table.len(), 6);
        assert_eq!(table.walk(a, b, 0, false).0, &b"mytext"[..]);
        let (x, y) = (b"abcd", b"badc");
        let table = Table::build(x, y, 1 << 20).unwrap();
        assert_eq!(table.walk(x, y, 0, false).0, &b"bd"[..]);
    }

    #[test]
    fn a_table_over_the_bound_is_refused_before_it_is_allocated() {
        assert!(matches!(
            Table::build(&[0; 99], &[0; 99], 4 * 100 * 100 - 1),
            Err(CommandError::LcsTooLarge)
        ));
        assert!(Table::build(&[0; 99], &[0; 99], 4 * 100 * 100).is_ok());
    }
}
