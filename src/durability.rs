//! Group commit for `appendfsync always`, shared by every connection.
//!
//! A connection that ran writes registers one waiter per batch of requests and sends its
//! replies when the waiter completes. One thread takes all waiters registered so far, makes
//! everything appended until then durable with one call to the store, and completes them
//! all: as Redis fsyncs once per event-loop turn for every client, one fsync covers every
//! connection that wrote meanwhile, and no async worker ever blocks on a disk.

use std::sync::Arc;
use std::sync::mpsc;

use ringcache_storage::StoreError;
use tokio::sync::oneshot;

use crate::node::Node;

/// Completed with the outcome of the sync that covers the waiter's writes.
pub type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// Starts the sync thread; waiters go to the returned sender.
///
/// The channel is unbounded on purpose: each connection has at most one waiter in it (it
/// waits for that one before reading more requests), so it holds at most `maxclients`.
///
/// # Errors
/// When the thread cannot be started.
pub fn start(node: Arc<Node>) -> std::io::Result<mpsc::Sender<Waiter>> {
    let (sender, waiters) = mpsc::channel::<Waiter>();
    std::thread::Builder::new()
        .name("ringcache-sync".into())
        .spawn(move || {
            while let Ok(first) = waiters.recv() {
                // Everyone registered before this sync starts appended before registering,
                // so this one sync covers all of them.
                let batch: Vec<Waiter> = std::iter::once(first).chain(waiters.try_iter()).collect();
                let outcome = node.store.wait_durable();
                for waiter in batch {
                    // A connection that went away no longer waits; nothing to tell it.
                    let _ = waiter.send(outcome.clone());
                }
            }
        })?;
    Ok(sender)
}

/// Waits until every write this connection made so far is durable.
pub async fn wait(node: &Arc<Node>) -> Result<(), StoreError> {
    let (waiter, done) = oneshot::channel();
    let Some(queue) = node.sync_queue.get() else {
        // No sync thread (it is started with the server): wait on a blocking worker.
        let node = node.clone();
        return tokio::task::spawn_blocking(move || node.store.wait_durable())
            .await
            .unwrap_or_else(|e| Err(StoreError::Write(e.to_string())));
    };
    if queue.send(waiter).is_err() {
        return Err(StoreError::Write("the sync thread has stopped".into()));
    }
    done.await
        .unwrap_or_else(|_| Err(StoreError::Write("the sync thread has stopped".into())))
}
