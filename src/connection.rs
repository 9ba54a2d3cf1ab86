//! One client connection: read bytes, decode every complete request, execute them in
//! order, write all replies with one write.
//!
//! The read buffer is only allocated once the socket is readable, so ten thousand idle
//! clients cost little memory. A protocol error or an oversized request answers an error
//! and closes this connection only.
//!
//! A blocking command that found nothing (`BLPOP`) leaves the connection waiting
//! ([`wait_blocked`]): the replies before it are written, the commands after it wait, and
//! a kill, the server's shutdown or the client closing ends the wait.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::BytesMut;
use ringcache_resp::{ParseLimits, Reply, RequestParser};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::clients::ClientHandle;
use crate::exec::blocking::Blocked;
use crate::exec::{self, After, Session};
use crate::node::Node;
use crate::socket;

/// Bytes reserved for each read; Redis reads 16 KiB at a time too.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Above this many bytes of pending replies the batch is written out before decoding more,
/// so a long pipeline of large values does not pile up replies in memory.
const REPLY_BUFFER_FLUSH_BYTES: usize = 1024 * 1024;
/// Replies up to this many bytes wait for the runtime's other ready connections before they
/// are written ([`run`]); larger ones go at once (their size already pays for the wakeup, and
/// fifty clients' large replies held together would leave the caches).
const CLUSTERED_REPLY_BYTES_MAX: usize = 16 * 1024;

/// Why a connection ended, for logs.
#[derive(Debug)]
enum End {
    ClientClosed,
    Quit,
    Shutdown,
    Killed,
    IdleTimeout,
    ProtocolError,
    QueryBufferFull,
    NotDurable,
    Io(std::io::Error),
}

fn parse_limits(node: &Node) -> ParseLimits {
    let config = node.config.read();
    ParseLimits {
        bulk_bytes_max: config.proto_max_bulk_len as usize,
        query_buffer_bytes_max: config.query_buffer_bytes_max as usize,
        ..ParseLimits::default()
    }
}

/// Serves one client until it leaves, errs, is killed or the server shuts down.
pub async fn serve(node: Arc<Node>, stream: TcpStream, client: Arc<ClientHandle>) {
    let id = client.id;
    let mut session = Session::new(&node, client.clone());
    let end = run(&node, stream, &mut session).await;
    exec::pubsub::unsubscribe_all(&node, &mut session);
    match &end {
        End::ProtocolError | End::QueryBufferFull => {
            node.stats.protocol_errors.fetch_add(1, Relaxed);
            tracing::debug!(client = id, reason = ?end, "closed a client");
        }
        End::Io(e) => tracing::debug!(client = id, error = %e, "client connection failed"),
        _ => tracing::trace!(client = id, reason = ?end, "client left"),
    }
    node.clients.unregister(id);
}

/// What woke a waiting connection.
enum Wake {
    Readable,
    Stopping,
    /// Pub/sub messages are queued for it.
    Messages,
}

async fn run(node: &Arc<Node>, mut stream: TcpStream, session: &mut Session) -> End {
    let client = session.client.clone();
    let mut parser = RequestParser::new(parse_limits(node));
    let mut shutdown = node.shutdown.subscribe();
    let mut input = BytesMut::new();
    let mut output = BytesMut::new();
    let mut stopping = false;
    loop {
        // As Redis, a subscriber is never idle: it waits for messages.
        let idle_s = match session.subscriptions.count() {
            0 => node.config.read().timeout_s,
            _ => 0,
        };
        let idle = async {
            match idle_s {
                0 => std::future::pending().await,
                s => tokio::time::sleep(Duration::from_secs(s)).await,
            }
        };
        let messages = async {
            match session.subscriptions.subscriber() {
                Some(subscriber) => subscriber.ready().await,
                None => std::future::pending().await,
            }
        };
        let wake = tokio::select! {
            ready = stream.readable() => match ready {
                Ok(()) => Wake::Readable,
                Err(e) => return End::Io(e),
            },
            _ = shutdown.wait_for(|stop| *stop) => Wake::Stopping,
            _ = client.killed() => return End::Killed,
            _ = idle => return End::IdleTimeout,
            () = messages => Wake::Messages,
        };
        if matches!(wake, Wake::Messages) {
            exec::pubsub::write_messages(session, &mut output);
            // A subscriber that stopped reading is killed when its queue passes its bound
            // (`crate::pubsub`), while this write waits for room in the socket.
            tokio::select! {
                written = write_out(node, &mut stream, &mut output) => {
                    if let Err(e) = written {
                        return End::Io(e);
                    }
                }
                _ = client.killed() => return End::Killed,
            }
            continue;
        }
        // Once the server stops, what the client had already sent is read and answered
        // without waiting, until nothing is left.
        stopping = stopping || matches!(wake, Wake::Stopping);
        input.reserve(READ_CHUNK_BYTES);
        let read = match stopping {
            // The runtime may hold this socket as not readable while bytes wait in it.
            true => socket::read_now(&stream, &mut input),
            false => socket::read_available(&stream, &mut input),
        };
        match read {
            // Answer what had already arrived when the server began to stop, then leave.
            Ok(0) | Err(_) if stopping => return End::Shutdown,
            Ok(0) => return End::ClientClosed,
            Ok(n) => node.stats.net_input_bytes.fetch_add(n as u64, Relaxed),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return End::Io(e),
        };
        parser.set_limits(parse_limits(node));
        client.mark_active();
        let end = execute_buffered(
            node,
            session,
            &mut parser,
            &mut input,
            &mut output,
            &mut stream,
        )
        .await;
        // Writes cluster as Redis's do (it writes every client's replies in one pass before
        // it sleeps): the client is woken once per burst instead of once per connection,
        // which halved the kernel time of pipelined small requests.
        if !output.is_empty() && output.len() <= CLUSTERED_REPLY_BYTES_MAX {
            tokio::task::yield_now().await;
        }
        if let Err(end) = flush(node, session, &mut stream, &mut output).await {
            return end;
        }
        if let Some(end) = end {
            return end;
        }
        if client.is_killed() {
            return End::Killed;
        }
        if input.is_empty() && input.capacity() > 4 * READ_CHUNK_BYTES {
            // A large request passed; give its memory back instead of keeping it per client.
            input = BytesMut::new();
        }
    }
}

/// Sends the replies in `output`, after waiting until the writes they acknowledge are as
/// durable as the fsync policy promises (appendfsync always: one wait per batch, off the
/// runtime; the store's group commit lets concurrent connections share each fsync).
async fn flush(
    node: &Arc<Node>,
    session: &mut Session,
    stream: &mut TcpStream,
    output: &mut BytesMut,
) -> Result<(), End> {
    if session.wrote && node.store.acknowledges_after_sync() {
        session.wrote = false;
        if let Err(e) = node.durability.wait().await {
            // The replies acknowledge writes that may not be durable: drop them and the
            // connection, so the client sees an unknown outcome rather than +OK.
            tracing::error!(client = session.client.id, error = %e, "writes not durable; closing");
            return Err(End::NotDurable);
        }
    }
    write_out(node, stream, output).await.map_err(End::Io)
}

/// Decodes and executes every complete request in `input`, encoding replies into `output`.
/// Returns why the connection must end, if it must.
async fn execute_buffered(
    node: &Arc<Node>,
    session: &mut Session,
    parser: &mut RequestParser,
    input: &mut BytesMut,
    output: &mut BytesMut,
    stream: &mut TcpStream,
) -> Option<End> {
    loop {
        let args = match parser.parse(input) {
            Ok(Some(args)) => args,
            Ok(None) => return None,
            Err(e) => {
                let query_buffer_full =
                    matches!(e, ringcache_resp::ProtocolError::QueryBufferLimit { .. });
                if !query_buffer_full {
                    Reply::error(&e).encode(session.protocol, output);
                }
                node.stats.record_error(&e.to_string());
                return Some(if query_buffer_full {
                    End::QueryBufferFull
                } else {
                    End::ProtocolError
                });
            }
        };
        let mut reply = match &node.cluster {
            None => exec::execute(node, session, args),
            Some(cluster) => exec::execute_clustered(node, cluster, session, args).await,
        };
        if let Some(blocked) = session.blocked.take() {
            match wait_blocked(node, session, blocked, input, output, stream).await {
                Ok(served) => reply = Some(served),
                Err(end) => return Some(end),
            }
        }
        // Messages published meanwhile (to itself, too) go before the reply, as in Redis,
        // but after a subscription's confirmations: no message of a channel comes before the
        // confirmation that it is subscribed.
        let confirms = matches!(reply, Some(Reply::Several(_)));
        if !confirms {
            exec::pubsub::write_messages(session, output);
        }
        if let Some(reply) = reply {
            reply.encode(session.protocol, output);
        }
        if confirms {
            exec::pubsub::write_messages(session, output);
        }
        match session.after {
            After::Continue => {}
            After::Close => return Some(End::Quit),
            After::Shutdown => return Some(End::Shutdown),
        }
        if output.len() >= REPLY_BUFFER_FLUSH_BYTES
            && let Err(end) = flush(node, session, stream, output).await
        {
            return Some(end);
        }
    }
}

/// Waits while the connection is blocked in a command (`BLPOP`), after writing the replies
/// before it: the command's reply when it comes, or why the connection ends (killed, the
/// server stopping, the client closing or failing). Meanwhile what the client sends is read
/// into `input` (up to the query buffer limit; then reading pauses) to be executed after
/// the reply, and so that its closing is seen as Redis sees it. The idle timeout does not
/// apply: the command has its own.
async fn wait_blocked(
    node: &Arc<Node>,
    session: &mut Session,
    mut blocked: Blocked,
    input: &mut BytesMut,
    output: &mut BytesMut,
    stream: &mut TcpStream,
) -> Result<ringcache_resp::Reply, End> {
    flush(node, session, stream, output).await?;
    let client = session.client.clone();
    if client.is_killed() {
        return Err(End::Killed);
    }
    let mut shutdown = node.shutdown.subscribe();
    let query_buffer_bytes_max = node.config.read().query_buffer_bytes_max as usize;
    let served = {
        let wait = blocked.wait(node, session);
        tokio::pin!(wait);
        let stream = &*stream;
        loop {
            let reading = input.len() < query_buffer_bytes_max;
            tokio::select! {
                reply = &mut wait => break reply,
                _ = client.killed() => return Err(End::Killed),
                _ = shutdown.wait_for(|stop| *stop) => return Err(End::Shutdown),
                ready = stream.readable(), if reading => {
                    if let Err(e) = ready {
                        return Err(End::Io(e));
                    }
                    input.reserve(READ_CHUNK_BYTES);
                    match socket::read_available(stream, input) {
                        Ok(0) => return Err(End::ClientClosed),
                        Ok(n) => {
                            node.stats.net_input_bytes.fetch_add(n as u64, Relaxed);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(End::Io(e)),
                    }
                }
            }
        }
    };
    // The reply may acknowledge a pop made for this connection by a writer (or a retry)
    // since the flush above: it waits for durability like any write's.
    session.wrote = true;
    Ok(served)
}

async fn write_out(
    node: &Node,
    stream: &mut TcpStream,
    output: &mut BytesMut,
) -> std::io::Result<()> {
    if output.is_empty() {
        return Ok(());
    }
    stream.write_all(output).await?;
    node.stats
        .net_output_bytes
        .fetch_add(output.len() as u64, Relaxed);
    output.clear();
    if output.capacity() > REPLY_BUFFER_FLUSH_BYTES * 4 {
        *output = BytesMut::new();
    }
    Ok(())
}
