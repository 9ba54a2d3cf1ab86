//! The cluster at run time: the sans-IO machines of [`ringcache_cluster`] (membership,
//! coordinator rounds, repair sessions, placement) driven over real sockets and this node's
//! store.
//!
//! The modules form layers; a module imports only from layers below it, and nothing here
//! imports this file or [`crate::node`] (the node, at the top, holds the handles):
//!
//! - Bottom, knowing nothing of the drivers above:
//!   - [`error`]: the errors, and the cluster's RESP error texts composed in one place.
//!   - [`stats`]: counters of rounds, hints, links and streaming.
//!   - [`persist`]: what a node keeps in its data dir (id, members, clock, flush time),
//!     and the task that keeps the clock.
//!   - [`throttle`]: the rate limit of streaming and repair.
//!   - [`replica`]: the replica path: every read and every record applied as a replica.
//!   - [`link`]: peer transport: dialing, handshake, framing, batching, pings, requests
//!     multiplexed by id ([`link::Links::request`]).
//!   - [`repair_state`]: each range's last complete repair, and repair's counters.
//! - Middle: [`state`]: the [`Cluster`] state: members, view, seeds, links, hints, replica.
//! - Top, each using the layers below:
//!   - [`flush`]: a cluster flush applied here, now or late.
//!   - [`driver`]: the coordinator: read and write rounds over the replicas.
//!   - [`server`]: the peer request server, answering from the replica side.
//!   - [`gossip`]: the gossip membership over UDP and TCP, and the bootstrap through seeds.
//!   - [`replay`]: hinted handoff, replaying stored hints to a replica that is back.
//!   - [`streaming`]: join and decommission: ranges streamed in or out, and dropped after.
//!   - [`repair`]: anti-entropy rounds, by a scheduler and by `RING REPAIR`.

pub mod driver;
pub mod error;
pub mod flush;
pub mod gossip;
pub mod link;
pub mod persist;
pub mod repair;
pub mod repair_state;
pub mod replay;
pub mod replica;
pub mod server;
pub mod state;
pub mod stats;
pub mod streaming;
pub mod throttle;

pub use driver::{read, write};
pub use error::{ClusterRefusal, RingError};
pub use flush::apply_flush;
pub use link::Response;
pub use state::Cluster;
pub use stats::{LEVEL_NAMES, OP_NAMES, OUTCOMES};
