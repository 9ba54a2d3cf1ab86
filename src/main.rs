//! ringcache: a Redis-protocol cache-store that runs as a leaderless Dynamo-style cluster.
//!
//! This binary wires the parts together:
//! - [`config`]: flags and TOML, validated at start.
//! - [`server`] and [`connection`]: the listener and one task per client (decode, execute,
//!   reply, pipelined).
//! - [`exec`]: command execution against the node's store.
//! - [`node`], [`clients`], [`stats`]: shared state, the client registry and counters;
//!   [`blocked`]: the clients blocked in `BLPOP` and the like, and who serves them.
//! - [`durability`]: group commit under `appendfsync always`.
//! - [`cluster`]: the cluster at run time, in layers (its module map): links, the replica
//!   path, gossip, the coordinator's driver, hinted handoff, streaming, repair.
//! - [`metrics`]: the Prometheus exporter; [`expiry`]: the active expiry sweep.
//! - [`clock`]: the wall clock; [`socket`]: socket reads of one `recv` per batch.

mod blocked;
mod clients;
mod clock;
mod cluster;
mod config;
mod connection;
mod durability;
mod exec;
mod expiry;
mod metrics;
mod node;
mod notify;
mod pubsub;
mod scripting;
mod server;
mod socket;
mod stats;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use ringcache_storage::{LogOptions, LogStore, MemoryStore, Store};

use crate::config::{Config, Settings, StorageEngine};
use crate::node::Node;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match Config::from_settings(Settings::parse()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ringcache: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ringcache: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringcache: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data-dir {}", config.data_dir.display()))?;
    let client_addr = SocketAddr::new(config.bind, config.port);
    let metrics_addr = config
        .metrics_port
        .map(|port| SocketAddr::new(config.bind, port));
    let listener = server::bind(client_addr)
        .with_context(|| format!("cannot listen on {client_addr} (port)"))?;
    let store: Arc<dyn Store> = Arc::from(open_store(&config)?);
    let peer_listener = match config.cluster.enabled {
        true => {
            let addr = SocketAddr::new(config.bind, config.cluster.peer_port);
            Some(
                server::bind(addr)
                    .with_context(|| format!("cannot listen on {addr} (peer-port)"))?,
            )
        }
        false => None,
    };
    let peer_addr = SocketAddr::new(config.bind, config.cluster.peer_port);
    let gossip_socket = match config.cluster.enabled {
        true => Some(
            bind_udp(peer_addr)
                .with_context(|| format!("cannot open UDP {peer_addr} for gossip (peer-port)"))?,
        ),
        false => None,
    };
    let cluster = match config.cluster.enabled {
        true => Some(
            cluster::Cluster::open(&config.cluster, &config.data_dir, peer_addr, store.clone())
                .context("cannot open the cluster state in data-dir")?,
        ),
        false => None,
    };
    let node = Arc::new(Node::open(config, store, cluster));
    if let Some(addr) = metrics_addr {
        metrics::start(node.clone(), addr)
            .with_context(|| format!("cannot serve metrics on {addr} (metrics-port)"))?;
    }
    node.durability
        .start()
        .context("cannot start the sync thread")?;
    tokio::spawn(expiry::run(node.clone()));
    tokio::spawn(stop_on_signals(node.clone()));
    if let (Some(listener), Some(socket), Some(cluster)) =
        (peer_listener, gossip_socket, node.cluster.as_ref())
    {
        let kept = cluster::persist::read_clock(&cluster.data_dir);
        node.clock
            .observe(ringcache_storage::Version { hlc: kept, node: 0 });
        let shutdown = node.shutdown.subscribe();
        tokio::spawn(cluster::persist::keep_clock(
            node.clock.clone(),
            cluster.data_dir.clone(),
            shutdown.clone(),
        ));
        tracing::info!(node_id = %cluster.local, peer_addr = ?listener.local_addr().ok(), "cluster mode");
        let server = cluster::server::Server {
            cluster: cluster.clone(),
            durability: node.durability.clone(),
            config: node.config.clone(),
            pubsub: node.pubsub.clone(),
        };
        tokio::spawn(cluster::server::listen(server, listener, shutdown.clone()));
        let socket = tokio::net::UdpSocket::from_std(socket).context("gossip socket")?;
        cluster::gossip::refresh_view(cluster, &shutdown);
        tokio::spawn(cluster::gossip::run(
            cluster.clone(),
            socket,
            shutdown.clone(),
        ));
        tokio::spawn(cluster::gossip::bootstrap(
            cluster.clone(),
            shutdown.clone(),
        ));
        tokio::spawn(cluster::streaming::run(cluster.clone(), shutdown.clone()));
        tokio::spawn(cluster::replay::run(cluster.clone(), shutdown));
        tokio::spawn(cluster::repair::run(cluster.clone(), node.config.clone()));
    }
    tracing::info!(%client_addr, metrics = ?metrics_addr, "ringcache ready to accept connections");
    server::run(node.clone(), listener).await;
    node.store
        .sync()
        .context("cannot sync the store at shutdown")?;
    tracing::info!("ringcache stopped");
    Ok(())
}

/// Binds the gossip socket (non-blocking, for tokio).
fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Opens the configured storage engine; the log engine recovers what is on disk first.
fn open_store(config: &Config) -> anyhow::Result<Box<dyn Store>> {
    match config.storage {
        StorageEngine::Memory => Ok(Box::new(MemoryStore::new())),
        StorageEngine::Log => {
            let dir = config.data_dir.join("log");
            let options = LogOptions {
                segment_bytes_max: config.segment_bytes,
                appendfsync: config.appendfsync.into(),
                // Connections wait once per batch (see connection.rs), not once per write.
                deferred_acknowledgement: true,
                ..LogOptions::default()
            };
            let (store, report) = LogStore::open(&dir, options)
                .with_context(|| format!("cannot open the log store in {}", dir.display()))?;
            tracing::info!(%report, "recovered the log store");
            Ok(Box::new(store))
        }
    }
}

/// Begins a graceful shutdown on SIGINT or SIGTERM.
async fn stop_on_signals(node: Arc<Node>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SHUTDOWN");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    node.begin_shutdown();
}
