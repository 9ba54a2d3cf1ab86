//! `MULTI`/`EXEC`/`DISCARD` and `WATCH`/`UNWATCH`, as Redis 7.0 runs them.
//!
//! - After `MULTI` every command but `EXEC`, `DISCARD`, `MULTI`, `WATCH`, `QUIT` and `RESET` is
//!   queued (`+QUEUED`) once Redis's queue-time checks pass: authentication, a known command,
//!   its arity (and a container's subcommand), the `no_multi` flag, the queue's bounds. A
//!   failed check answers its error and dooms the transaction: `EXEC` then answers
//!   `EXECABORT` and runs nothing. Other errors (syntax, `WRONGTYPE`) are found when `EXEC`
//!   runs the command and fill its slot of the reply, as in Redis.
//! - `WATCH` notes each key's versions (value and expiry cells) and whether it is live; `EXEC`
//!   answers the null array and runs nothing if any watched key has other versions now (it was
//!   written, deleted, flushed) or went from live to expired. `EXEC`, `DISCARD` and `UNWATCH`
//!   forget the watched keys.
//! - **Single node:** `EXEC` runs the queue holding the node's transaction gate exclusively;
//!   every other command holds it shared while it runs (`super::execute`), so no other
//!   client's command interleaves with a transaction, and a watch check and the queue it
//!   guards see the same data.
//! - **Cluster:** `EXEC` first checks that every queued write can meet its level (fail whole,
//!   nothing run), takes this coordinator's locks of every key the queue names (in one global
//!   order: no deadlock), reads the watched keys again at the read level and compares their
//!   versions with those `WATCH` read, then runs the queue in order, each command through the
//!   coordinator at its level. Clients of this coordinator that write those keys wait; clients
//!   of other coordinators do not (docs/consistency.md says exactly what that gives).

use bytes::Bytes;
use ringcache_resp::Reply;
use ringcache_resp::cmd::{Command, Entry, Flags, Request, unknown_command};
use ringcache_storage::{Record, Version};

use super::{Outcome, Session};
use crate::node::{Node, unix_now_ms};

/// Most commands one transaction queues; past it the command is refused and the transaction
/// doomed (Redis bounds a queue only by the client's query and output buffers).
pub const TRANSACTION_COMMANDS_MAX: usize = 100_000;

/// Most argument bytes one transaction queues, for the same reason: the queue is memory a
/// client holds on the server until `EXEC`.
pub const TRANSACTION_BYTES_MAX: usize = 512 * 1024 * 1024;

/// A transaction being queued (between `MULTI` and `EXEC`/`DISCARD`).
#[derive(Debug, Default)]
pub struct Transaction {
    /// The queued commands' arguments, in order.
    queued: Vec<Vec<Bytes>>,
    /// Bytes of every queued argument.
    bytes: usize,
    /// A command was refused while queuing: `EXEC` answers `EXECABORT`.
    doomed: bool,
    /// A queued command may add memory (`denyoom`): `EXEC` makes room first.
    may_add_memory: bool,
}

/// A key under `WATCH`: what it was when watched.
#[derive(Debug, Clone)]
pub struct Watched {
    key: Bytes,
    /// The value and expiry cells' versions, `None` when there was no record.
    versions: Option<(Version, Version)>,
    /// Whether the key existed (not deleted, not expired).
    live: bool,
}

/// What the connection does with a command while a transaction is open: `None` runs it
/// (the commands that act on the transaction itself), `Some(reply)` is the reply to queuing
/// it (`+QUEUED`, or the error that refused and doomed the transaction).
pub fn queue(
    node: &Node,
    session: &mut Session,
    entry: Option<Entry>,
    args: &[Bytes],
) -> Option<Reply> {
    let transaction = session.transaction.as_mut()?;
    if let Some(entry) = entry
        && matches!(
            entry.spec.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        )
    {
        // Run, not queued; but their own arity errors doom the transaction, as any other
        // command's (EXEC's answer to its own is `refused_exec`'s).
        if entry.spec.name != "exec"
            && let Some(error) = Request::lookup_error(entry, args)
        {
            transaction.doomed = true;
            return Some(Reply::error(error));
        }
        return None;
    }
    let refused = match entry {
        None => Some(Reply::error(unknown_command(args))),
        Some(_) if !session.authenticated => Some(Reply::error("NOAUTH Authentication required.")),
        Some(entry) => match Request::lookup_error(entry, args) {
            Some(error) => Some(Reply::error(error)),
            None if entry.spec.flags.contains(Flags::NO_MULTI) => {
                Some(Reply::error("ERR Command not allowed inside a transaction"))
            }
            // Over maxmemory with nothing to evict, as Redis refuses it before queuing.
            None if entry.spec.flags.contains(Flags::DENYOOM) => {
                super::make_room(node, unix_now_ms()).err()
            }
            None => None,
        },
    };
    let bytes: usize = args.iter().map(Bytes::len).sum();
    let refused = refused.or_else(|| {
        let full = transaction.queued.len() >= TRANSACTION_COMMANDS_MAX
            || transaction.bytes + bytes > TRANSACTION_BYTES_MAX;
        full.then(|| {
            Reply::error(format!(
                "ERR transaction too large: at most {TRANSACTION_COMMANDS_MAX} commands and \
                 {TRANSACTION_BYTES_MAX} bytes of arguments are queued"
            ))
        })
    });
    if let Some(error) = refused {
        transaction.doomed = true;
        return Some(error);
    }
    transaction.bytes += bytes;
    transaction.may_add_memory |= entry.is_some_and(|e| e.spec.flags.contains(Flags::DENYOOM));
    // Copied: the arguments are slices of the connection's read buffer, which queued slices
    // would keep whole (16 KiB a command sent alone), past the bound counted here.
    let owned = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
    transaction.queued.push(owned);
    Some(Reply::Simple("QUEUED"))
}

/// `MULTI`, `DISCARD`, `WATCH`, `UNWATCH` (`EXEC` is [`exec`], which needs the runner).
pub fn execute(node: &Node, session: &mut Session, command: Command) -> Outcome {
    Ok(match command {
        Command::Multi if session.transaction.is_some() => {
            Reply::error("ERR MULTI calls can not be nested")
        }
        Command::Multi => {
            session.transaction = Some(Transaction::default());
            Reply::Ok
        }
        Command::Discard => match session.transaction.take() {
            Some(_) => {
                session.watched.clear();
                Reply::Ok
            }
            None => Reply::error("ERR DISCARD without MULTI"),
        },
        Command::Watch(_) if session.transaction.is_some() => {
            Reply::error("ERR WATCH inside MULTI is not allowed")
        }
        Command::Watch(keys) => {
            // (On a cluster `super::execute_clustered` reads the keys through the
            // coordinator instead.)
            let now_ms = unix_now_ms();
            for key in keys {
                let record = node.store.peek(&key, now_ms);
                session
                    .watched
                    .push(Watched::new(key, record.as_ref(), now_ms));
            }
            Reply::Ok
        }
        Command::Unwatch => {
            session.watched.clear();
            Reply::Ok
        }
        _ => super::misrouted("transaction"),
    })
}

impl Watched {
    /// `key` as `record` (what a read found, `None` for nothing) shows it at `now_ms`.
    pub fn new(key: Bytes, record: Option<&Record>, now_ms: u64) -> Watched {
        Watched {
            versions: record.map(|r| (r.value_version, r.expiry_version)),
            live: record.is_some_and(|r| r.is_live(now_ms)),
            key,
        }
    }

    /// The watched key.
    pub fn key(&self) -> &Bytes {
        &self.key
    }

    /// Whether the key, as `record` shows it now, changed since `WATCH`: other versions, or
    /// expired meanwhile.
    pub fn changed(&self, record: Option<&Record>, now_ms: u64) -> bool {
        let now = Watched::new(self.key.clone(), record, now_ms);
        now.versions != self.versions || (self.live && !now.live)
    }
}

/// `EXEC`'s queue and watched keys, taken off the session; the reply instead when there is
/// no transaction (`EXEC without MULTI`) or it is doomed (`EXECABORT`). Either way the
/// session leaves the transaction and forgets its watched keys.
pub fn take(session: &mut Session) -> Result<(Vec<Vec<Bytes>>, Vec<Watched>), Reply> {
    let Some(transaction) = session.transaction.take() else {
        return Err(Reply::error("ERR EXEC without MULTI"));
    };
    let watched = std::mem::take(&mut session.watched);
    if transaction.doomed {
        return Err(Reply::error(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    Ok((transaction.queued, watched))
}

/// `EXEC` on a single node: unless a watched key changed, runs each queued command with
/// `run` and answers their replies in order. The caller holds the node's gate alone.
pub fn exec(
    node: &Node,
    session: &mut Session,
    mut run: impl FnMut(&mut Session, Vec<Bytes>) -> Reply,
) -> Reply {
    let (queued, watched) = match take(session) {
        Ok(taken) => taken,
        Err(reply) => return reply,
    };
    let now_ms = unix_now_ms();
    let changed = |w: &Watched| w.changed(node.store.peek(w.key(), now_ms).as_ref(), now_ms);
    if watched.iter().any(changed) {
        return Reply::NilArray;
    }
    Reply::Array(queued.into_iter().map(|args| run(session, args)).collect())
}

/// The reply to an `EXEC` refused before it ran (wrong arity, not authenticated): Redis
/// discards the transaction, if any, and answers `EXECABORT` with the reason, in or out of
/// `MULTI`.
pub fn refused_exec(session: &mut Session, refusal: Reply) -> Reply {
    session.transaction = None;
    session.watched.clear();
    match refusal {
        Reply::Error(text) => {
            let reason = text.strip_prefix("ERR ").unwrap_or(&text);
            Reply::error(format!(
                "EXECABORT Transaction discarded because of: {reason}"
            ))
        }
        other => other,
    }
}

/// Whether the open transaction queued a command that may add memory.
pub fn may_add_memory(session: &Session) -> bool {
    session
        .transaction
        .as_ref()
        .is_some_and(|t| t.may_add_memory)
}

/// Whether `entry` is `EXEC`.
pub fn is_exec(entry: Option<Entry>) -> bool {
    entry.is_some_and(|e| e.spec.name == "exec")
}
