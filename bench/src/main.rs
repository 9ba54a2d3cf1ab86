//! `ratio-table FILE`: prints the ringcache / redis-server ratio table for the CSV that
//! bench/redis-benchmark.sh collected.

use anyhow::Context;
use ringcache_bench::redis_benchmark::{parse, ratio_table};

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).context("usage: ratio-table FILE")?;
    let csv = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    print!(
        "{}",
        ratio_table(&parse(&csv)?, "redis-server", "ringcache")
    );
    Ok(())
}
