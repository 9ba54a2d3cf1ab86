//! The registry of connections blocked in `BLPOP`, `BRPOP`, `BLMOVE` or `BLMPOP`: who waits
//! on which key, in the order they blocked, and the keys that writes filled since the last
//! command ended. `INFO clients` counts the waiters (`blocked_clients`).
//!
//! # Protocol
//! - A **waiter** is registered by its connection after its command found nothing
//!   (`src/exec/blocking.rs`), with one [`Deliver`]: on a single node a writer serves it
//!   (runs its command for the key it filled and sends the reply, Redis's
//!   `serveClientsBlockedOnListKey`); in a cluster it is only woken, and retries through the
//!   coordinator itself.
//! - A list write that can fill an empty list (a push, `LMOVE`'s destination) calls
//!   [`BlockedClients::signal`] for its key; whoever ends a command next drains the signalled
//!   keys ([`BlockedClients::take_ready`]) and serves or wakes their waiters, first blocked
//!   first, under the registry's lock.
//! - A write must not slip between a blocking command's attempt and its registration, or it
//!   would find nobody to serve and the connection would sleep next to a full list. So an
//!   attempt first raises [`BlockedClients::attempt`]'s interest (a write then signals its
//!   key), and the attempt that decides to block is made again under the registry's lock,
//!   which every serve takes: a write after that attempt serves after the registration. The
//!   store's key lock orders the attempt's read and the write, and so the interest count
//!   before the read and its load after the write.
//!
//! # Costs and bounds
//! With nobody blocked a list push costs one atomic load. The ready list holds the keys
//! signalled by commands that have not ended yet (each command drains it after itself), so
//! it is bounded by the commands in flight times their keys; waiters are bounded by the
//! connected clients (`maxclients`), one waiter per connection.
//!
//! # Locks
//! `waiters` may be held while the store's key locks are taken (a serve pops under it);
//! `ready` is a leaf: nothing is locked while it is held. A key lock is never held while
//! `waiters` is taken, so there is no cycle.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ahash::AHashMap;
use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use ringcache_resp::Reply;
use ringcache_resp::cmd::ListCommand;
use tokio::sync::{Notify, oneshot};

use crate::clients::ClientHandle;

/// How a blocked connection learns that it may go on.
#[derive(Debug)]
pub enum Deliver {
    /// Single node: a writer that fills a key runs the command for the waiter and sends the
    /// reply here.
    Reply(oneshot::Sender<Reply>),
    /// Cluster: a local write to one of the keys wakes the waiter, which retries through the
    /// coordinator (writes coordinated by other nodes are found by polling).
    Wake(Arc<Notify>),
}

/// One blocked connection.
#[derive(Debug)]
pub struct Waiter {
    client: Arc<ClientHandle>,
    /// The keys waited on, without repeats.
    keys: Vec<Bytes>,
    /// The blocking command, run again for a key that fills (single node).
    pub command: ListCommand,
    deliver: Deliver,
}

/// The waiters; behind [`BlockedClients::lock`].
#[derive(Debug, Default)]
pub struct Waiters {
    next_id: u64,
    /// By registration id, so in the order they blocked.
    by_id: BTreeMap<u64, Waiter>,
    /// Each key's waiters, first blocked first.
    by_key: AHashMap<Bytes, VecDeque<u64>>,
}

/// Every blocked connection of this node, and the keys to serve.
#[derive(Debug, Default)]
pub struct BlockedClients {
    /// Attempts in progress plus registered waiters: while 0, [`BlockedClients::signal`]
    /// records nothing.
    interest: AtomicUsize,
    /// Registered waiters (`INFO clients` `blocked_clients`).
    blocked: AtomicUsize,
    /// Whether `ready` may hold keys: lets a command with nothing to serve skip its lock.
    has_ready: AtomicBool,
    waiters: Mutex<Waiters>,
    /// Keys signalled since they were last taken, without repeats (a leaf lock).
    ready: Mutex<Vec<Bytes>>,
}

impl BlockedClients {
    /// Connections blocked now.
    pub fn count(&self) -> usize {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Notes that `key` may have gone from empty to holding elements. Cheap when nobody is
    /// blocked or attempting: one atomic load.
    pub fn signal(&self, key: &[u8]) {
        if self.interest.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut ready = self.ready.lock();
        if !ready.iter().any(|k| k == key) {
            ready.push(Bytes::copy_from_slice(key));
        }
        self.has_ready.store(true, Ordering::SeqCst);
    }

    /// The keys signalled since the last call, to serve or wake their waiters; empty
    /// (without taking a lock) when there are none.
    pub fn take_ready(&self) -> Vec<Bytes> {
        if !self.has_ready.load(Ordering::SeqCst) {
            return Vec::new();
        }
        let mut ready = self.ready.lock();
        self.has_ready.store(false, Ordering::SeqCst);
        std::mem::take(&mut *ready)
    }

    /// Declares an attempt of a blocking command: until the guard is dropped, writes signal
    /// their keys (see the module's protocol).
    pub fn attempt(&self) -> Attempt<'_> {
        self.interest.fetch_add(1, Ordering::SeqCst);
        Attempt { registry: self }
    }

    /// The waiters, locked: to register one, or to serve a key's.
    pub fn lock(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock()
    }

    /// Registers a connection blocked on `keys` (repeats are dropped) in `waiters`, a lock of
    /// this registry; dropping the returned handle removes it, if no writer did first.
    pub fn register(
        self: &Arc<Self>,
        waiters: &mut Waiters,
        client: Arc<ClientHandle>,
        keys: &[Bytes],
        command: ListCommand,
        deliver: Deliver,
    ) -> Registration {
        let id = waiters.next_id;
        waiters.next_id += 1;
        let mut unique: Vec<Bytes> = Vec::with_capacity(keys.len());
        for key in keys {
            if !unique.contains(key) {
                unique.push(key.clone());
                waiters.by_key.entry(key.clone()).or_default().push_back(id);
            }
        }
        client.blocked.store(true, Ordering::Relaxed);
        waiters.by_id.insert(
            id,
            Waiter {
                client,
                keys: unique,
                command,
                deliver,
            },
        );
        self.interest.fetch_add(1, Ordering::SeqCst);
        self.blocked.fetch_add(1, Ordering::Relaxed);
        Registration {
            registry: self.clone(),
            id,
        }
    }

    /// Removes waiter `id` from `waiters` (a lock of this registry); `None` if it was gone.
    fn remove(&self, waiters: &mut Waiters, id: u64) -> Option<Waiter> {
        let waiter = waiters.by_id.remove(&id)?;
        for key in &waiter.keys {
            if let Some(queue) = waiters.by_key.get_mut(key) {
                queue.retain(|&other| other != id);
                if queue.is_empty() {
                    waiters.by_key.remove(key);
                }
            }
        }
        waiter.client.blocked.store(false, Ordering::Relaxed);
        self.interest.fetch_sub(1, Ordering::SeqCst);
        self.blocked.fetch_sub(1, Ordering::Relaxed);
        Some(waiter)
    }

    /// The first waiter on `key` still blocked, with its id.
    pub fn first<'w>(&self, waiters: &'w Waiters, key: &[u8]) -> Option<(u64, &'w Waiter)> {
        let id = *waiters.by_key.get(key)?.front()?;
        Some((id, waiters.by_id.get(&id)?))
    }

    /// Unblocks waiter `id` with `reply` (single node): removed, then the reply sent, both
    /// under the lock, so a connection that finds itself gone has its reply waiting.
    pub fn serve(&self, waiters: &mut Waiters, id: u64, reply: Reply) {
        if let Some(waiter) = self.remove(waiters, id)
            && let Deliver::Reply(sender) = waiter.deliver
        {
            // The connection may have just gone (killed, closed): its reply is dropped, as
            // Redis drops the output of a client it frees.
            let _ = sender.send(reply);
        }
    }

    /// Wakes every waiter on `key` that retries by itself (cluster); they stay registered.
    pub fn wake(&self, waiters: &Waiters, key: &[u8]) {
        let Some(queue) = waiters.by_key.get(key) else {
            return;
        };
        for id in queue {
            if let Some(Waiter {
                deliver: Deliver::Wake(woken),
                ..
            }) = waiters.by_id.get(id)
            {
                woken.notify_one();
            }
        }
    }
}

/// A blocking command's attempt in progress: see [`BlockedClients::attempt`].
#[derive(Debug)]
pub struct Attempt<'a> {
    registry: &'a BlockedClients,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.registry.interest.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A registered waiter, owned by its connection; dropping it unblocks the connection's entry
/// (timeout, kill, close) unless a writer already served it.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<BlockedClients>,
    id: u64,
}

impl Registration {
    /// Removes the waiter; whether it was still registered (`false`: a writer served it,
    /// and its reply is waiting).
    pub fn cancel(&self) -> bool {
        let mut waiters = self.registry.lock();
        self.registry.remove(&mut waiters, self.id).is_some()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Arc<ClientHandle> {
        let clients = crate::clients::Clients::default();
        let addr = "127.0.0.1:1".parse().unwrap();
        clients.register(addr, addr, 10).unwrap()
    }

    fn key(k: &str) -> Bytes {
        Bytes::copy_from_slice(k.as_bytes())
    }

    fn pop(keys: &[&str]) -> ListCommand {
        ListCommand::BPop {
            keys: keys.iter().map(|k| key(k)).collect(),
            end: ringcache_resp::cmd::list::ListEnd::Left,
            timeout_ms: 0,
        }
    }

    #[test]
    fn signals_are_recorded_only_while_someone_attempts_or_waits() {
        let registry = Arc::new(BlockedClients::default());
        registry.signal(b"k");
        assert!(registry.take_ready().is_empty());
        let attempt = registry.attempt();
        registry.signal(b"k");
        registry.signal(b"k");
        assert_eq!(registry.take_ready(), vec![key("k")]);
        drop(attempt);
        registry.signal(b"k");
        assert!(registry.take_ready().is_empty());
    }

    #[test]
    fn waiters_are_served_first_blocked_first_and_leave_every_key() {
        let registry = Arc::new(BlockedClients::default());
        let (first, second) = (client(), client());
        let mut waiters = registry.lock();
        let (tx, mut rx) = oneshot::channel();
        let a = registry.register(
            &mut waiters,
            first.clone(),
            &[key("x"), key("k"), key("x")],
            pop(&["x", "k", "x"]),
            Deliver::Reply(tx),
        );
        let (tx, _rx2) = oneshot::channel();
        let _b = registry.register(
            &mut waiters,
            second,
            &[key("k")],
            pop(&["k"]),
            Deliver::Reply(tx),
        );
        assert_eq!(registry.count(), 2);
        assert!(first.blocked.load(Ordering::Relaxed));
        let (id, waiter) = registry.first(&waiters, b"k").unwrap();
        assert_eq!(waiter.command, pop(&["x", "k", "x"]));
        registry.serve(&mut waiters, id, Reply::Integer(1));
        assert!(registry.first(&waiters, b"x").is_none());
        assert_eq!(registry.count(), 1);
        assert!(!first.blocked.load(Ordering::Relaxed));
        drop(waiters);
        // Served: cancelling finds it gone, and its reply is waiting.
        assert!(!a.cancel());
        assert_eq!(rx.try_recv().unwrap(), Reply::Integer(1));
    }

    #[test]
    fn a_dropped_registration_leaves_the_registry() {
        let registry = Arc::new(BlockedClients::default());
        let woken = Arc::new(Notify::new());
        let registration = {
            let mut waiters = registry.lock();
            registry.register(
                &mut waiters,
                client(),
                &[key("k")],
                pop(&["k"]),
                Deliver::Wake(woken.clone()),
            )
        };
        registry.wake(&registry.lock(), b"k");
        assert_eq!(registry.count(), 1);
        drop(registration);
        assert_eq!(registry.count(), 0);
        assert!(registry.first(&registry.lock(), b"k").is_none());
        registry.signal(b"k");
        assert!(registry.take_ready().is_empty());
    }
}
