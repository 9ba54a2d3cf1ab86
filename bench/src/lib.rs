//! Benchmark reports for ringcache.
//!
//! - [`redis_benchmark`]: reads the CSV that `bench/redis-benchmark.sh` collects from
//!   redis-benchmark runs against redis-server and ringcache, and writes the markdown table of
//!   ratios recorded in docs/benchmarks.md.

pub mod redis_benchmark;
