//! The client listener: accepts connections, enforces `maxclients`, and stops accepting on
//! shutdown, then waits (bounded) for connections to finish their current batch.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::connection;
use crate::node::Node;

/// Pending connections the kernel queues before `accept`; Redis's `tcp-backlog` default.
const LISTEN_BACKLOG: i32 = 511;
/// How long shutdown waits for connections to finish their current batch.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);
/// Pause after an accept error (such as running out of file descriptors) before retrying,
/// so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Binds the client port with address reuse and Redis's backlog.
///
/// # Errors
/// When the address cannot be bound.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Accepts clients until shutdown, then drains.
pub async fn run(node: Arc<Node>, listener: TcpListener) {
    let mut shutdown = node.shutdown.subscribe();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => accept(&node, &mut connections, stream, addr),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    drop(listener);
    tracing::info!(
        clients = connections.len(),
        "stopped accepting; draining connections"
    );
    let drained = tokio::time::timeout(SHUTDOWN_DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            clients = connections.len(),
            "connections still open after the drain period"
        );
        connections.abort_all();
    }
}

fn accept(node: &Arc<Node>, connections: &mut JoinSet<()>, stream: TcpStream, addr: SocketAddr) {
    node.stats.connections_received.fetch_add(1, Relaxed);
    let _ = stream.set_nodelay(true);
    let laddr = stream.local_addr().unwrap_or(addr);
    let max = node.config.read().maxclients as usize;
    let Some(client) = node.clients.register(addr, laddr, max) else {
        node.stats.connections_rejected.fetch_add(1, Relaxed);
        // Best effort and without waiting, as Redis does: the client may already be gone,
        // and a flood of refused clients must not slow the accept loop.
        let _ = stream.try_write(b"-ERR max number of clients reached\r\n");
        return;
    };
    connections.spawn(connection::serve(node.clone(), stream, client));
}
