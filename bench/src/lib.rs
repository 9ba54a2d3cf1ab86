//! Benchmark reports for ringcache.
//!
//! - [`load`]: the `ringcache-bench` load generator (memtier_benchmark-like, with consistency
//!   levels, a cluster without redirects, CPU accounting and `--verify`), as a library.
//! - [`redis_benchmark`]: reads the CSV that `bench/redis-benchmark.sh` collects from
//!   redis-benchmark runs against redis-server and ringcache, and writes the markdown table of
//!   ratios recorded in docs/benchmarks.md.
//! - [`report`]: reads the results of bench/compare.sh and writes the comparison section of
//!   docs/benchmarks.md: tables, ratios against the goals, SVG plots.

pub mod load;
pub mod redis_benchmark;
pub mod report;
