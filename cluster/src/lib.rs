//! Cluster logic for ringcache, as state machines without I/O.
//!
//! Nothing here reads a clock, opens a socket or draws a random number: time and randomness
//! come in as arguments, so a deterministic simulator can drive the same code as the tokio
//! runtime in `src/`.
//!
//! - [`coordinator`]: one key's read or write over its replicas, with levels, read repair
//!   and hints.
//! - [`liveness`]: which peers are up and how far their clocks are, from the connections.
//! - [`hlc`]: the hybrid logical clock that issues record versions.
//! - [`protocol`]: the peer protocol without I/O: frames, messages, and the HMAC handshake.
//! - [`ring`]: the consistent-hash [`Ring`] of the member set: each key's preference list,
//!   the token ranges each node owns, and how evenly the ring spreads keys.
//! - [`transfer`]: which ranges change replicas between two rings (join, leave, forget).
//! - [`membership`]: SWIM gossip membership with push-pull.
//! - [`view`]: the placement policy: owners, the future ring, pending and handover
//!   replicas, a request's targets and need, writability, when a joining node streams.
//! - [`repair`]: anti-entropy sessions and rounds over Merkle leaves, and each range's
//!   repair history.

pub mod coordinator;
pub mod hlc;
pub mod liveness;
pub mod membership;
pub mod protocol;
pub mod repair;
pub mod ring;
pub mod transfer;
pub mod view;

pub use coordinator::{Effect, Need, QuorumError, ReadRound, Target, WriteRound};
pub use hlc::HybridClock;
pub use liveness::Liveness;
pub use ring::{NodeId, PreferenceList, REPLICAS_MAX, Ring, TokenRange, VNODES_DEFAULT};
pub use view::View;
