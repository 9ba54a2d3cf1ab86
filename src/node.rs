//! The node: everything a connection needs, shared by all of them.

use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use ringcache_cluster::HybridClock;
use ringcache_storage::Store;
use tokio::sync::watch;

use crate::clients::Clients;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::durability::Durability;
use crate::stats::Stats;

pub use crate::clock::unix_now_ms;

/// Shared state of one ringcache process.
pub struct Node {
    /// The configuration; `CONFIG SET` changes the mutable fields.
    pub config: RwLock<Config>,
    /// Where records live.
    pub store: Arc<dyn Store>,
    /// Issues record versions.
    pub clock: HybridClock,
    /// Counters for `INFO` and metrics.
    pub stats: Stats,
    /// Connected clients.
    pub clients: Clients,
    /// Random hex id of this process run (`INFO server run_id`).
    pub run_id: String,
    /// Set to `true` to stop the server: listeners stop accepting, connections finish
    /// their current batch and close.
    pub shutdown: watch::Sender<bool>,
    /// Group commit for `appendfsync always` (see [`crate::durability`]).
    pub durability: Arc<Durability>,
    /// The cluster this node belongs to; unset for a single node (no `--seeds`).
    pub cluster: OnceLock<Cluster>,
}

impl Node {
    /// A node over `store` with `config`, in `cluster` if it belongs to one.
    pub fn new(config: Config, store: Box<dyn Store>, cluster: Option<Cluster>) -> Node {
        let run_id: String = (0..40)
            .map(|_| format!("{:x}", rand::random::<u8>() % 16))
            .collect();
        let store: Arc<dyn Store> = Arc::from(store);
        Node {
            config: RwLock::new(config),
            durability: Arc::new(Durability::new(store.clone())),
            store,
            clock: HybridClock::new(
                cluster
                    .as_ref()
                    .map_or_else(rand::random::<u32>, Cluster::version_node),
            ),
            stats: Stats::default(),
            clients: Clients::default(),
            run_id,
            shutdown: watch::Sender::new(false),
            cluster: cluster.map(OnceLock::from).unwrap_or_default(),
        }
    }

    /// Starts a graceful shutdown.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}
