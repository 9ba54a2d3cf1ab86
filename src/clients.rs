//! The registry of connected clients, for `CLIENT LIST`, `CLIENT KILL`, `maxclients` and
//! `INFO clients`; the blocked ones are also in [`Clients::blocked`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use ahash::AHashMap;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use ringcache_resp::cmd::TABLE;

use crate::blocked::BlockedClients;

/// What a client told about itself; changed rarely, so behind a mutex.
#[derive(Debug, Default, Clone)]
pub struct ClientNames {
    /// `CLIENT SETNAME` / `HELLO ... SETNAME`.
    pub name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: Option<Bytes>,
}

/// One connected client, shared between its connection task and the registry.
#[derive(Debug)]
pub struct ClientHandle {
    /// Unique, increasing id (`CLIENT ID`).
    pub id: u64,
    /// The client's address.
    pub addr: SocketAddr,
    /// Our end of the connection.
    pub laddr: SocketAddr,
    /// When it connected.
    pub created: Instant,
    /// Names it gave.
    pub names: Mutex<ClientNames>,
    /// Milliseconds since `created` of the last command.
    pub last_active_ms: AtomicU64,
    /// Index into [`TABLE`] of the last command.
    pub last_command: AtomicUsize,
    /// RESP version in use (2 or 3).
    pub resp: AtomicUsize,
    /// `CLIENT NO-EVICT`.
    pub no_evict: AtomicBool,
    /// `CLIENT NO-TOUCH`.
    pub no_touch: AtomicBool,
    /// Blocked in `BLPOP` and the like (flag `b`); kept by [`BlockedClients`].
    pub blocked: AtomicBool,
    /// Channels and patterns it is subscribed to (`sub=`, `psub=`; flag `P`).
    pub subscriptions: Mutex<(usize, usize)>,
    killed: AtomicBool,
    kill_signal: Notify,
}

impl ClientHandle {
    /// Asks the connection to close after its current batch.
    pub fn kill(&self) {
        self.killed.store(true, Relaxed);
        self.kill_signal.notify_one();
    }

    /// Whether [`ClientHandle::kill`] was called.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Relaxed)
    }

    /// Completes when the client is killed.
    pub async fn killed(&self) {
        self.kill_signal.notified().await;
    }

    /// Marks activity now; called once per batch of requests, not per command.
    pub fn mark_active(&self) {
        let ms = self.created.elapsed().as_millis() as u64;
        self.last_active_ms.store(ms, Relaxed);
    }

    /// The `CLIENT LIST` / `CLIENT INFO` line, without the newline.
    pub fn describe(&self) -> String {
        let names = self.names.lock().clone();
        let text = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let age = self.created.elapsed().as_secs();
        let idle_ms = (self.created.elapsed().as_millis() as u64)
            .saturating_sub(self.last_active_ms.load(Relaxed));
        let cmd = TABLE
            .get(self.last_command.load(Relaxed))
            .map_or("NULL", |c| c.name);
        // Redis's letters in its order; `N` only when there is none.
        let mut flags = String::new();
        let (sub, psub) = *self.subscriptions.lock();
        if sub + psub > 0 {
            flags.push('P');
        }
        if self.blocked.load(Relaxed) {
            flags.push('b');
        }
        if self.no_evict.load(Relaxed) {
            flags.push('e');
        }
        if self.no_touch.load(Relaxed) {
            flags.push('T');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        format!(
            "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db=0 sub={} psub={} \
             ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 \
             oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} \
             lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            text(&names.name),
            age,
            idle_ms / 1000,
            flags,
            sub,
            psub,
            cmd,
            self.resp.load(Relaxed),
            text(&names.lib_name),
            text(&names.lib_ver),
        )
    }
}

/// All connected clients.
#[derive(Debug, Default)]
pub struct Clients {
    next_id: AtomicU64,
    connected: AtomicUsize,
    map: Mutex<AHashMap<u64, Arc<ClientHandle>>>,
    /// The clients blocked in `BLPOP` and the like, and the keys to serve them from.
    pub blocked: Arc<BlockedClients>,
}

impl Clients {
    /// Registers a new client unless `max` are connected already.
    pub fn register(
        &self,
        addr: SocketAddr,
        laddr: SocketAddr,
        max: usize,
    ) -> Option<Arc<ClientHandle>> {
        let mut map = self.map.lock();
        if map.len() >= max {
            return None;
        }
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let handle = Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            created: Instant::now(),
            names: Mutex::new(ClientNames::default()),
            last_active_ms: AtomicU64::new(0),
            last_command: AtomicUsize::new(usize::MAX),
            resp: AtomicUsize::new(2),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            subscriptions: Mutex::new((0, 0)),
            killed: AtomicBool::new(false),
            kill_signal: Notify::new(),
        });
        map.insert(id, handle.clone());
        self.connected.store(map.len(), Relaxed);
        Some(handle)
    }

    /// Removes a client that disconnected.
    pub fn unregister(&self, id: u64) {
        let mut map = self.map.lock();
        map.remove(&id);
        self.connected.store(map.len(), Relaxed);
    }

    /// Clients connected now.
    pub fn connected(&self) -> usize {
        self.connected.load(Relaxed)
    }

    /// Every client, in id order.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        let mut all: Vec<_> = self.map.lock().values().cloned().collect();
        all.sort_by_key(|c| c.id);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(client: &ClientHandle) -> String {
        let line = client.describe();
        let flags = line.split(' ').find_map(|f| f.strip_prefix("flags="));
        flags.unwrap().to_string()
    }

    #[test]
    fn client_flags_are_redis_s_letters_and_n_only_when_there_is_none() {
        let clients = Clients::default();
        let addr = "127.0.0.1:1".parse().unwrap();
        let client = clients.register(addr, addr, 10).unwrap();
        assert_eq!(flags(&client), "N");
        client.no_touch.store(true, Relaxed);
        assert_eq!(flags(&client), "T");
        client.blocked.store(true, Relaxed);
        client.no_evict.store(true, Relaxed);
        assert_eq!(flags(&client), "beT");
    }
}
