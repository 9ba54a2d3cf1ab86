//! Cluster logic for ringcache, as state machines without I/O.
//!
//! Nothing here reads a clock, opens a socket or draws a random number: time and randomness
//! come in as arguments, so a deterministic simulator can drive the same code as the tokio
//! runtime in `src/`.
//!
//! - [`hlc`]: the hybrid logical clock that issues record versions.
//! - [`protocol`]: the peer protocol without I/O: frames, messages, and the HMAC handshake.
//! - [`ring`]: the consistent-hash [`Ring`] of the member set: each key's preference list,
//!   the token ranges each node owns, and how evenly the ring spreads keys.

pub mod hlc;
pub mod protocol;
pub mod ring;

pub use hlc::HybridClock;
pub use ring::{NodeId, PreferenceList, REPLICAS_MAX, Ring, TokenRange, VNODES_DEFAULT};
