//! Runs the gossip membership ([`ringcache_cluster::membership`]) over real sockets: SWIM
//! datagrams on UDP at the peer port (probes must fail on their own, not wait behind a TCP
//! connection's retransmissions), full-state push-pulls over TCP ([`super::link::push_pull`]),
//! and the bootstrap through `--seeds`.
//!
//! The state machine lives in [`Cluster`] behind a mutex; this module feeds it datagrams and
//! ticks, carries out what it asks, and rebuilds the ring when the view changes.

use std::sync::Arc;
use std::time::Duration;

use ringcache_cluster::membership::{Output, Status};
use tokio::net::UdpSocket;

use crate::node::{Node, unix_now_ms};

/// Largest datagram read; larger ones are cut and fail their MAC.
const DATAGRAM_READ_BYTES: usize = 64 * 1024;
/// How often a node that knows no other member asks the seeds again.
const SEED_RETRY_MS: u64 = 1_000;
/// The member table is written to the data dir at most this often.
const PERSIST_INTERVAL: Duration = Duration::from_secs(1);

/// Feeds the membership machine until shutdown: datagrams in, ticks on time, outputs out.
pub async fn run(node: Arc<Node>, socket: UdpSocket) {
    let cluster = node.cluster.get().expect("cluster");
    let socket = Arc::new(socket);
    let mut shutdown = node.shutdown.subscribe();
    let mut buf = vec![0u8; DATAGRAM_READ_BYTES];
    let mut persist = tokio::time::interval(PERSIST_INTERVAL);
    loop {
        let wait_ms = cluster
            .membership
            .lock()
            .next_deadline_ms()
            .saturating_sub(unix_now_ms())
            .max(1);
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((len, from)) = received {
                    let outcome = cluster.membership.lock().on_datagram(&buf[..len], unix_now_ms());
                    if let Err(e) = outcome {
                        tracing::debug!(%from, error = %e, "gossip datagram dropped");
                    }
                }
            }
            () = tokio::time::sleep(Duration::from_millis(wait_ms)) => {
                cluster.membership.lock().tick(unix_now_ms());
            }
            () = cluster.gossip_wake.notified() => {}
            _ = persist.tick() => {
                // An fsync must not hold up probes and acks.
                let node = node.clone();
                tokio::task::spawn_blocking(move || {
                    node.cluster.get().expect("cluster").persist_members();
                });
            }
            _ = shutdown.wait_for(|stop| *stop) => {
                cluster.persist_members();
                return;
            }
        }
        carry_out(&node, &socket);
    }
}

/// Does what the machine asked for since the last call.
pub fn carry_out(node: &Arc<Node>, socket: &UdpSocket) {
    let cluster = node.cluster.get().expect("cluster");
    if cluster.membership.lock().take_forgotten() {
        tracing::warn!(
            "this node was forgotten (RING FORGET) while it was away: joining again, streaming \
             its ranges"
        );
        cluster.set_status(Status::Joining);
        // Its data is stale: a key deleted or expired elsewhere since would come back
        // from it. It starts empty, as a new node does.
        cluster.repair.forget_all();
        let node = node.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = node.store.clear() {
                tracing::error!(error = %e, "cannot empty the store before joining again");
            }
        });
    }
    let outputs = cluster.membership.lock().drain_outputs();
    for output in outputs {
        match output {
            // A full socket buffer drops the datagram: to SWIM that is packet loss.
            Output::Datagram { to, bytes } => {
                let _ = socket.try_send_to(&bytes, to);
            }
            Output::PushPull { to, addr } => {
                let node = node.clone();
                tokio::spawn(async move {
                    if let Err(e) = super::link::push_pull(&node, &addr.to_string()).await {
                        tracing::debug!(%to, %addr, error = %e, "push-pull failed");
                    }
                });
            }
            Output::ViewChanged => cluster.refresh_view(node),
        }
    }
}

/// Contacts the seeds until this node is in a cluster: a push-pull with any live seed gives
/// it the whole view, and the seed's gossip spreads its arrival. A founding seed (its own
/// address is in `--seeds`) goes on until every other seed has been reached once, so that a
/// cluster started all at once forms with every seed in it.
pub async fn bootstrap(node: Arc<Node>) {
    let cluster = node.cluster.get().expect("cluster");
    let mut shutdown = node.shutdown.subscribe();
    // Nodes started together do not all knock at once.
    let jitter = rand::random::<u64>() % 200;
    tokio::time::sleep(Duration::from_millis(jitter)).await;
    loop {
        let unresolved = cluster.unresolved_seeds();
        if unresolved.is_empty() {
            tracing::info!(members = cluster.view().members.len(), "in the cluster");
            return;
        }
        for seed in unresolved {
            match super::link::push_pull(&node, &seed).await {
                Ok(()) if cluster.unresolved_seeds().is_empty() => break,
                Ok(()) => {}
                Err(e) => tracing::debug!(seed, error = %e, "seed not reached"),
            }
        }
        cluster.gossip_wake.notify_one();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(SEED_RETRY_MS)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// The status this node starts in: the one it kept (a restart), else Normal for a founder
/// and Joining for a newcomer. A node that had left, or was forgotten, joins again.
pub fn starting_status(kept: Option<Status>, founder: bool) -> Status {
    match kept {
        Some(Status::Normal) => Status::Normal,
        // A decommission cut short by a crash is not resumed: the operator runs it again.
        Some(Status::Leaving) => Status::Normal,
        Some(Status::Joining) => Status::Joining,
        // Done streaming: still ready (writes kept coming to it as a pending replica).
        Some(Status::Ready) => Status::Ready,
        // A node that left, or was forgotten, holds stale data: it joins again.
        Some(Status::Left) => Status::Joining,
        None if founder => Status::Normal,
        None => Status::Joining,
    }
}
