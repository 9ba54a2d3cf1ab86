//! Cluster logic for ringcache, as state machines without I/O.
//!
//! Nothing here reads a clock, opens a socket or draws a random number: time and randomness
//! come in as arguments, so a deterministic simulator can drive the same code as the tokio
//! runtime in `src/`.
//!
//! - [`hlc`]: the hybrid logical clock that issues record versions.

pub mod hlc;

pub use hlc::HybridClock;
