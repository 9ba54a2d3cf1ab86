//! Command execution: a parsed [`Request`] and the connection's [`Session`] in, a [`Reply`]
//! out. No sockets here, so every command is testable with a `Node` and a `Session`.
//!
//! - [`connection`]: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT, CONSISTENCY.
//! - [`server`]: COMMAND, INFO, CONFIG, DBSIZE, FLUSHALL/FLUSHDB, TIME, SHUTDOWN.
//! - [`strings`]: the string commands.
//! - [`keyspace`]: DEL, EXISTS, EXPIRE and the other key commands.
//! - [`table`]: command metadata for COMMAND and statistics.

pub mod connection;
pub mod keyspace;
pub mod server;
pub mod strings;
pub mod table;

use std::sync::{Arc, LazyLock};

use ahash::AHashMap;
use std::time::Instant;

use bytes::Bytes;
use ringcache_resp::cmd::{Access, Family};
use ringcache_resp::{CommandError, Level, Protocol, Reply, Request};
use ringcache_storage::StoreError;

use crate::clients::ClientHandle;
use crate::node::{Node, unix_now_ms};

/// Why a command failed; either way it becomes an error reply and the connection goes on.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The arguments or the stored value do not allow the command (nothing was written).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The store refused a write (nothing was written).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a command family's `execute` returns.
pub type Outcome = Result<Reply, ExecError>;

/// What the connection does after writing the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep reading.
    Continue,
    /// Close the connection (`QUIT`).
    Close,
    /// Close without a reply and stop the server (`SHUTDOWN`).
    Shutdown,
}

/// Per-connection state that commands read and change.
#[derive(Debug)]
pub struct Session {
    /// The registry entry of this client.
    pub client: Arc<ClientHandle>,
    /// RESP2 or RESP3.
    pub protocol: Protocol,
    /// Whether AUTH (or HELLO AUTH) succeeded, or no password is required.
    pub authenticated: bool,
    /// `CONSISTENCY READ` default for this connection; `None` uses the server's.
    pub read_level: Option<Level>,
    /// `CONSISTENCY WRITE` default for this connection; `None` uses the server's.
    pub write_level: Option<Level>,
    /// Set by a command that ends the connection.
    pub after: After,
}

impl Session {
    /// A new session for `client`.
    pub fn new(node: &Node, client: Arc<ClientHandle>) -> Session {
        Session {
            client,
            protocol: Protocol::Resp2,
            authenticated: node.config.read().requirepass.is_none(),
            read_level: None,
            write_level: None,
            after: After::Continue,
        }
    }
}

/// Where a command name sits in [`table::COMMANDS`], for statistics.
static COMMAND_INDEX: LazyLock<AHashMap<&'static str, usize>> = LazyLock::new(|| {
    table::COMMANDS
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name, i))
        .collect()
});

/// Index into [`table::COMMANDS`] of the command named `name` (any case), or the table's
/// length when unknown.
pub fn command_index(name: &[u8]) -> usize {
    let mut lower = [0u8; 16];
    if name.len() > lower.len() {
        return table::COMMANDS.len();
    }
    for (dst, src) in lower.iter_mut().zip(name) {
        *dst = src.to_ascii_lowercase();
    }
    std::str::from_utf8(&lower[..name.len()])
        .ok()
        .and_then(|n| COMMAND_INDEX.get(n).copied())
        .unwrap_or(table::COMMANDS.len())
}

/// The unix time in milliseconds as the signed integer that expiry arithmetic uses.
fn now_ms_signed(now_ms: u64) -> i64 {
    i64::try_from(now_ms).unwrap_or(i64::MAX)
}

/// Executes one request given as its raw arguments; `None` means no reply is sent.
pub fn execute(node: &Node, session: &mut Session, args: Vec<Bytes>) -> Option<Reply> {
    let started = Instant::now();
    let index = args
        .first()
        .map_or(table::COMMANDS.len(), |name| command_index(name));
    session
        .client
        .last_command
        .store(index, std::sync::atomic::Ordering::Relaxed);
    let reply = run(node, session, index, args);
    let error = match &reply {
        Some(Reply::Error(text)) => Some(text.as_str()),
        _ => None,
    };
    node.stats.record_command(index, started.elapsed(), error);
    reply
}

fn run(node: &Node, session: &mut Session, index: usize, args: Vec<Bytes>) -> Option<Reply> {
    if !session.authenticated {
        let allowed = table::COMMANDS
            .get(index)
            .is_none_or(|spec| matches!(spec.name, "auth" | "hello" | "quit" | "reset"));
        if !allowed {
            return Some(Reply::error("NOAUTH Authentication required."));
        }
    }
    let request = match Request::parse(args) {
        Ok(request) => request,
        Err(e) => return Some(Reply::error(e)),
    };
    if let Err(reply) = check_level(session, &request) {
        return Some(reply);
    }
    let now_ms = unix_now_ms();
    let command = request.command;
    let reply = match command.family() {
        Family::Connection => Ok(connection::execute(node, session, command)),
        Family::Server => server::execute(node, session, command, now_ms),
        Family::Strings => strings::execute(node, command, now_ms),
        Family::Keyspace => keyspace::execute(node, command, now_ms),
    };
    let reply = reply.unwrap_or_else(Reply::error);
    if session.after == After::Shutdown {
        return None;
    }
    Some(reply)
}

/// The level a request runs at, checked against the replicas a key has.
///
/// On a single node N is 1 and every level is met (a level naming more replicas than exist
/// is capped at N, see docs/consistency.md); the check stays so that a level never reaches
/// the store unvalidated.
fn check_level(session: &Session, request: &Request) -> Result<Option<Level>, Reply> {
    let level = match request.command.access() {
        Access::None => return Ok(None),
        Access::Read => request.level.or(session.read_level),
        Access::Write => request.level.or(session.write_level),
    };
    Ok(level)
}

/// The reply for a value read from the store, counting the hit or miss.
fn lookup_reply(node: &Node, value: Option<&Bytes>) -> Reply {
    node.stats.record_lookup(value.is_some());
    value.map_or(Reply::Nil, |v| Reply::Bulk(v.clone()))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A node and session for command tests without sockets.

    use super::*;
    use crate::config::{Config, Settings};
    use clap::Parser;
    use ringcache_storage::MemoryStore;

    /// A node with default settings over a memory store.
    pub fn node() -> Node {
        let config = Config::from_settings(Settings::parse_from(["ringcache"])).unwrap();
        Node::new(config, Box::new(MemoryStore::new()))
    }

    /// A session registered on `node`.
    pub fn session(node: &Node) -> Session {
        let addr = "127.0.0.1:1".parse().unwrap();
        let client = node.clients.register(addr, addr, 10).unwrap();
        Session::new(node, client)
    }

    /// Runs one command line given as words.
    pub fn run(node: &Node, session: &mut Session, line: &str) -> Reply {
        let args = line
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        execute(node, session, args).unwrap_or(Reply::Nil)
    }
}
