//! The node: everything a connection needs, shared by all of them.
//!
//! The node sits at the top: it holds the handles (store, clock, configuration, durability,
//! cluster) that the components below it take one by one; none of them imports it.

use std::sync::Arc;

use parking_lot::RwLock;
use ringcache_cluster::HybridClock;
use ringcache_storage::Store;
use tokio::sync::watch;

use crate::clients::Clients;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::durability::Durability;
use crate::notify::Notifications;
use crate::pubsub::PubSub;
use crate::scripting::{ScriptCache, ScriptState};
use crate::stats::Stats;

pub use crate::clock::unix_now_ms;

/// Shared state of one ringcache process.
pub struct Node {
    /// The configuration; `CONFIG SET` changes the mutable fields. Shared with the cluster
    /// tasks that read a mutable field (repair reads `maxmemory`).
    pub config: Arc<RwLock<Config>>,
    /// Where records live.
    pub store: Arc<dyn Store>,
    /// Issues record versions (in a cluster, the one its replica path observes with).
    pub clock: Arc<HybridClock>,
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
    /// The cluster this node belongs to; `None` for a single node (no `--seeds` nor
    /// `--peer-port`). Fixed when the node is opened: a node never joins or leaves a
    /// cluster while it runs.
    pub cluster: Option<Arc<Cluster>>,
    /// The transaction gate: every command on a single node holds it shared while it runs,
    /// `EXEC` alone while it runs its queue, so nothing interleaves with a transaction
    /// (`exec::transaction`).
    pub transactions: parking_lot::RwLock<()>,
    /// Who listens to which channels; shared with the peer server, which delivers the
    /// messages published on other nodes.
    pub pubsub: Arc<PubSub>,
    /// Script bodies for `EVALSHA`.
    pub scripts: ScriptCache,
    /// Whether a script runs, is busy, is asked to stop.
    pub script_state: Arc<ScriptState>,
    /// The keyspace events sent (`notify-keyspace-events`).
    pub notifications: Notifications,
}

impl Node {
    /// A node over `store` with `config`, in `cluster` if it belongs to one (for tests; the
    /// server opens its store before the cluster, which shares it: [`Node::open`]).
    #[cfg(test)]
    pub fn new(config: Config, store: Box<dyn Store>, cluster: Option<Cluster>) -> Node {
        Node::open(config, Arc::from(store), cluster)
    }

    /// A node over `store` with `config`, in `cluster` if it belongs to one; the cluster
    /// opened first, over the same store.
    pub fn open(config: Config, store: Arc<dyn Store>, cluster: Option<Cluster>) -> Node {
        let run_id: String = (0..40)
            .map(|_| format!("{:x}", rand::random::<u8>() % 16))
            .collect();
        let clock = match &cluster {
            Some(cluster) => cluster.replica.clock.clone(),
            None => Arc::new(HybridClock::new(rand::random::<u32>())),
        };
        Node {
            config: Arc::new(RwLock::new(config)),
            durability: Arc::new(Durability::new(store.clone())),
            store,
            clock,
            stats: Stats::default(),
            clients: Clients::default(),
            run_id,
            shutdown: watch::Sender::new(false),
            cluster: cluster.map(Arc::new),
            transactions: parking_lot::RwLock::new(()),
            pubsub: Arc::new(PubSub::default()),
            scripts: ScriptCache::default(),
            script_state: Arc::default(),
            notifications: Notifications::default(),
        }
    }

    /// Starts a graceful shutdown.
    pub fn begin_shutdown(&self) {
        // A script past its time stops too (a connection finishes its batch before it
        // closes, and a runaway script would never finish it).
        // After the signal: a script that ends in between reads the signal when it clears
        // the flag, and keeps it set.
        self.shutdown.send_replace(true);
        self.script_state
            .kill
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
