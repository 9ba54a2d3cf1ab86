//! Runs the gossip membership ([`ringcache_cluster::membership`]) over real sockets: SWIM
//! datagrams on UDP at the peer port (probes must fail on their own, not wait behind a TCP
//! connection's retransmissions), full-state push-pulls over TCP
//! ([`Cluster::push_pull`]), and the bootstrap through `--seeds`.
//!
//! The state machine lives in [`Cluster`] behind a mutex; this module feeds it datagrams and
//! ticks, carries out what it asks, and acts on a changed view ([`refresh_view`]): links to
//! new members, hints of departed ones, a flush this node missed.

use std::sync::Arc;
use std::time::Duration;

use ringcache_cluster::membership::{Output, Status};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::flush::apply_late_flush;
use super::link;
use super::state::Cluster;
use crate::clock::unix_now_ms;

/// Largest datagram read; larger ones are cut and fail their MAC.
const DATAGRAM_READ_BYTES: usize = 64 * 1024;
/// How often a node that knows no other member asks the seeds again.
const SEED_RETRY_MS: u64 = 1_000;
/// The member table is written to the data dir at most this often.
const PERSIST_INTERVAL: Duration = Duration::from_secs(1);

/// Feeds the membership machine until shutdown: datagrams in, ticks on time, outputs out.
pub async fn run(cluster: Arc<Cluster>, socket: UdpSocket, shutdown: watch::Receiver<bool>) {
    let socket = Arc::new(socket);
    let mut stop = shutdown.clone();
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
                let cluster = cluster.clone();
                tokio::task::spawn_blocking(move || cluster.persist_members());
            }
            _ = stop.wait_for(|stop| *stop) => {
                cluster.persist_members();
                return;
            }
        }
        carry_out(&cluster, &socket, &shutdown);
    }
}

/// Does what the machine asked for since the last call.
fn carry_out(cluster: &Arc<Cluster>, socket: &UdpSocket, shutdown: &watch::Receiver<bool>) {
    if cluster.membership.lock().take_forgotten() {
        tracing::warn!(
            "this node was forgotten (RING FORGET) while it was away: joining again, streaming \
             its ranges"
        );
        cluster.set_status(Status::Joining);
        // Its data is stale: a key deleted or expired elsewhere since would come back
        // from it. It starts empty, as a new node does.
        cluster.repair.forget_all();
        let store = cluster.replica.store.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.clear() {
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
                let cluster = cluster.clone();
                tokio::spawn(async move {
                    if let Err(e) = cluster.push_pull(&addr.to_string()).await {
                        tracing::debug!(%to, %addr, error = %e, "push-pull failed");
                    }
                });
            }
            Output::ViewChanged => refresh_view(cluster, shutdown),
        }
    }
}

/// Takes in a change of the gossip view: rings, links to new members (kept until
/// `shutdown`), a newer cluster flush time, and wakes what waits on the view.
pub fn refresh_view(cluster: &Arc<Cluster>, shutdown: &watch::Receiver<bool>) {
    let before = cluster.view();
    let view = cluster.rebuild_view();
    if !Arc::ptr_eq(&before.ring, &view.ring) {
        tracing::info!(owners = view.ring.members().len(), "ring rebuilt");
    }
    if before.members.len() != view.members.len() {
        // A member left or was forgotten (or one arrived): hint files, off the async
        // workers.
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.drop_hints_of_departed());
    }
    for member in view.members.values().filter(|m| m.id != cluster.local) {
        if cluster.start_dialing(member.addr) {
            let wants = cluster.clone();
            tokio::spawn(link::dial(
                cluster.links.clone(),
                member.addr,
                move |addr| wants.wants_link(addr),
                shutdown.clone(),
            ));
        }
    }
    let newest_flush = view
        .members
        .values()
        .map(|m| m.flush_hlc)
        .max()
        .unwrap_or(0);
    if newest_flush > cluster.replica.flushed_before() {
        let cluster = cluster.clone();
        let version = ringcache_storage::Version {
            hlc: newest_flush,
            node: 0,
        };
        tokio::task::spawn_blocking(move || {
            if let Err(e) = apply_late_flush(&cluster, version) {
                tracing::error!(error = %e, "cannot apply the cluster's flush time");
            }
        });
    }
    cluster.view_changed.notify_waiters();
}

/// Contacts the seeds until this node is in a cluster: a push-pull with any live seed gives
/// it the whole view, and the seed's gossip spreads its arrival. A founding seed (its own
/// address is in `--seeds`) goes on until every other seed has been reached once, so that a
/// cluster started all at once forms with every seed in it.
pub async fn bootstrap(cluster: Arc<Cluster>, mut shutdown: watch::Receiver<bool>) {
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
            match cluster.push_pull(&seed).await {
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
