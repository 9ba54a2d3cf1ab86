//! redis-benchmark results side by side: ringcache / redis-server ratios.
//!
//! Input lines are `system,pipeline,test,rps,avg,min,p50,p95,p99,max` — redis-benchmark's
//! `--csv` columns (latencies in ms) prefixed by the system and pipeline depth of the run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, bail};

/// One redis-benchmark result line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `redis-server` or `ringcache`.
    pub system: String,
    /// Pipeline depth (`-P`).
    pub pipeline: u32,
    /// The test name as redis-benchmark prints it (`SET`, `MSET (10 keys)`).
    pub test: String,
    /// Requests per second.
    pub rps: f64,
    /// Median latency in ms.
    pub p50_ms: f64,
    /// 99th percentile latency in ms.
    pub p99_ms: f64,
}

/// Parses the collected CSV.
///
/// # Errors
/// A line with too few fields or a field that is not a number.
pub fn parse(csv: &str) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for (number, line) in csv
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fields: Vec<&str> = line
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .collect();
        if fields.len() < 10 {
            bail!(
                "line {}: expected 10 fields, got {}: {line}",
                number + 1,
                fields.len()
            );
        }
        let number_at = |i: usize| -> anyhow::Result<f64> {
            fields[i]
                .parse()
                .with_context(|| format!("line {}: field {}", number + 1, i + 1))
        };
        samples.push(Sample {
            system: fields[0].to_string(),
            pipeline: fields[1]
                .parse()
                .with_context(|| format!("line {}: pipeline", number + 1))?,
            test: fields[2].to_string(),
            rps: number_at(3)?,
            p50_ms: number_at(6)?,
            p99_ms: number_at(8)?,
        });
    }
    Ok(samples)
}

/// The baseline's and the candidate's sample for one row.
type Pair<'a> = (Option<&'a Sample>, Option<&'a Sample>);

/// The markdown table: one row per (pipeline, test) measured on both systems.
pub fn ratio_table(samples: &[Sample], baseline: &str, candidate: &str) -> String {
    let mut rows: BTreeMap<(u32, &str), Pair> = BTreeMap::new();
    for sample in samples {
        let row = rows
            .entry((sample.pipeline, sample.test.as_str()))
            .or_default();
        if sample.system == baseline {
            row.0 = Some(sample);
        } else if sample.system == candidate {
            row.1 = Some(sample);
        }
    }
    let mut out = format!(
        "| test | P | {baseline} req/s | {candidate} req/s | throughput ratio | \
         p50 ms ({baseline} / {candidate}) | p99 ms ({baseline} / {candidate}) | p99 ratio |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for ((pipeline, test), pair) in rows {
        let (Some(base), Some(cand)) = pair else {
            continue;
        };
        let _ = writeln!(
            out,
            "| {test} | {pipeline} | {:.0} | {:.0} | {:.2} | {:.3} / {:.3} | {:.3} / {:.3} | {:.2} |",
            base.rps,
            cand.rps,
            cand.rps / base.rps,
            base.p50_ms,
            cand.p50_ms,
            base.p99_ms,
            cand.p99_ms,
            cand.p99_ms / base.p99_ms,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "redis-server,1,SET,100000.00,0.5,0.1,0.4,0.8,1.0,3.0\n\
                       ringcache,1,SET,110000.00,0.5,0.1,0.5,0.8,0.9,3.0\n\
                       redis-server,16,MSET (10 keys),50000.00,1,1,2.0,3,4.0,9\n\
                       ringcache,1,GET,1.0,1,1,1,1,1,1\n";

    #[test]
    fn rows_pair_the_same_test_and_pipeline_and_give_ratios() {
        let table = ratio_table(&parse(CSV).unwrap(), "redis-server", "ringcache");
        assert!(table.contains(
            "| SET | 1 | 100000 | 110000 | 1.10 | 0.400 / 0.500 | 1.000 / 0.900 | 0.90 |"
        ));
        // A test measured on one system only has no row.
        assert!(!table.contains("MSET"));
        assert!(!table.contains("| GET"));
    }

    #[test]
    fn a_short_line_is_an_error_naming_it() {
        let err = parse("ringcache,1,SET,1\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn quoted_fields_as_redis_benchmark_writes_them_parse() {
        let samples =
            parse("ringcache,16,\"GET\",\"5.00\",\"1\",\"1\",\"2\",\"3\",\"4\",\"5\"").unwrap();
        assert_eq!(samples[0].test, "GET");
        assert_eq!(samples[0].p99_ms, 4.0);
    }
}
