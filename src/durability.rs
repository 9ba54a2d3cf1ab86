//! Group commit for `appendfsync always`, shared by every connection.
//!
//! A connection that ran writes registers one waiter per batch of requests and sends its
//! replies when the waiter completes. One thread takes all waiters registered so far, makes
//! everything appended until then durable with one call to the store, and completes them
//! all: as Redis fsyncs once per event-loop turn for every client, one fsync covers every
//! connection that wrote meanwhile, and no async worker ever blocks on a disk.
//!
//! [`Durability`] is the handle: the store and the sync thread's queue, nothing of the node,
//! so the peer server waits on it as a client connection does.

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use ringcache_storage::{Store, StoreError};
use tokio::sync::oneshot;

/// Completed with the outcome of the sync that covers the waiter's writes.
pub type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// Waits for writes to be durable: through the sync thread once [`Durability::start`] ran,
/// else on a blocking worker.
pub struct Durability {
    store: Arc<dyn Store>,
    queue: OnceLock<mpsc::Sender<Waiter>>,
}

impl std::fmt::Debug for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durability")
            .field("started", &self.queue.get().is_some())
            .finish()
    }
}

impl Durability {
    /// A handle over `store`, its sync thread not started.
    pub fn new(store: Arc<dyn Store>) -> Durability {
        Durability {
            store,
            queue: OnceLock::new(),
        }
    }

    /// Starts the sync thread; later waits go through it.
    ///
    /// The channel is unbounded on purpose: each connection has at most one waiter in it (it
    /// waits for that one before reading more requests), so it holds at most `maxclients`.
    ///
    /// # Errors
    /// When the thread cannot be started (waits go on blocking workers then).
    pub fn start(&self) -> std::io::Result<()> {
        let (sender, waiters) = mpsc::channel::<Waiter>();
        let store = self.store.clone();
        std::thread::Builder::new()
            .name("ringcache-sync".into())
            .spawn(move || {
                while let Ok(first) = waiters.recv() {
                    // Everyone registered before this sync starts appended before
                    // registering, so this one sync covers all of them.
                    let batch: Vec<Waiter> =
                        std::iter::once(first).chain(waiters.try_iter()).collect();
                    let outcome = store.wait_durable();
                    for waiter in batch {
                        // A connection that went away no longer waits; nothing to tell it.
                        let _ = waiter.send(outcome.clone());
                    }
                }
            })?;
        let _ = self.queue.set(sender);
        Ok(())
    }

    /// Waits until every write this caller made so far is durable.
    ///
    /// # Errors
    /// The store could not make them durable (or the sync thread stopped): the writes may be
    /// lost, so nothing that acknowledges them may be sent.
    pub async fn wait(&self) -> Result<(), StoreError> {
        let (waiter, done) = oneshot::channel();
        let Some(queue) = self.queue.get() else {
            // No sync thread (it is started with the server): wait on a blocking worker.
            let store = self.store.clone();
            return tokio::task::spawn_blocking(move || store.wait_durable())
                .await
                .unwrap_or_else(|e| Err(StoreError::Write(e.to_string())));
        };
        if queue.send(waiter).is_err() {
            return Err(StoreError::Write("the sync thread has stopped".into()));
        }
        done.await
            .unwrap_or_else(|_| Err(StoreError::Write("the sync thread has stopped".into())))
    }
}
