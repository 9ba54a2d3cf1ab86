//! `ringcache-bench`'s load generator, as a library: [`run`] takes [`Options`] (the command
//! line, or built in code) and returns a [`Report`].
//!
//! - [`options`]: the command line and its checks.
//! - [`keys`]: uniform, Zipf (rejection-inversion) and sequential key choice.
//! - [`workload`]: the SET:GET draw and the RESP encoding of commands.
//! - [`resp`]: the strict RESP2 reply parser.
//! - [`connection`]: one TCP connection with its reused read buffer.
//! - [`client`]: one client's batches, reconnects and counting.
//! - [`verify`]: stamped values and the check of every GET with `--verify`.
//! - [`histogram`]: HDR latency histograms in microseconds.
//! - [`stats`]: per-client counters and the merged totals.
//! - [`cpu`]: CPU time of processes from /proc.
//! - [`progress`]: live counters and the once-a-second progress line.
//! - [`report`]: the result as JSON and as a table.
//! - [`run`](mod@run): the whole run.

pub mod client;
pub mod connection;
pub mod cpu;
pub mod histogram;
pub mod keys;
pub mod options;
pub mod progress;
pub mod report;
pub mod resp;
pub mod run;
pub mod stats;
pub mod verify;
pub mod workload;

pub use options::Options;
pub use progress::Progress;
pub use report::Report;
pub use run::{run, run_with_progress};
