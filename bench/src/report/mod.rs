//! The comparison report that bench/compare.sh writes into docs/benchmarks.md.
//!
//! - [`results`]: the results directory compare.sh fills (its plan, its run log, the
//!   generator's JSON, redis-benchmark's CSV) read back into runs that either measured
//!   something or failed.
//! - [`tables`]: the three markdown tables (single node against redis-server, the generator
//!   against redis-benchmark, the cluster against the single node) with ratios and goals.
//! - [`plots`]: the SVG plots (throughput, latency percentiles, cluster cost by level).
//! - [`section`]: the generated section of the document and where it goes.

pub mod plots;
pub mod results;
pub mod section;
pub mod tables;
