//! Blocking commands (`BLPOP`, `BRPOP`, `BLMOVE`, `BLMPOP`): when one finds nothing, its
//! connection waits for a key to fill or for the deadline, without holding a runtime thread
//! and without other clients noticing; commands pipelined after it wait too, as in Redis.
//!
//! The command first runs as its non-blocking form (`super::list`). If that finds nothing
//! (the null reply), the connection is registered as a waiter ([`crate::blocked`]) and the
//! executor leaves a [`Blocked`] in the [`Session`] instead of a reply; the connection
//! (`crate::connection`) then awaits [`Blocked::wait`], together with a `CLIENT KILL`, the
//! server's shutdown and the client closing, any of which ends the wait.
//!
//! # Single node: served as Redis serves
//! A write that fills a key signals it; at the end of that command ([`after_command`]) the
//! writer serves the key's waiters, first blocked first, before its own reply goes out: it
//! runs each waiter's command for that key (`list::serve_blocked`) and hands the reply to
//! the waiter's connection. So, as in Redis, the longest-waiting client gets the element,
//! and the writer's next command (`LLEN`, `LPOP`) already sees it gone.
//!
//! # Cluster: retried through the coordinator
//! Writes are coordinated on any node, so a waiter cannot be served by the writer. It
//! retries its whole command through the coordinator when a write through this node
//! signals one of its keys, and at least every [`BLOCKING_POLL_MS`] for writes coordinated
//! elsewhere, until the deadline. Two waiters on different nodes can both pop the same
//! element, as two `LPOP`s through two coordinators can (docs/consistency.md); waiters on
//! one node race for a filled key rather than go first blocked first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcache_resp::cmd::{Command, ListCommand};
use ringcache_resp::{Reply, Request};
use tokio::sync::{Notify, oneshot};

use super::{Outcome, Session, clustered, list};
use crate::blocked::{Deliver, Registration};
use crate::cluster::Cluster;
use crate::node::{Node, unix_now_ms};

/// In a cluster, how often a blocked connection retries its command through the
/// coordinator when no local write woke it: the longest a write coordinated by another
/// node waits to be seen. Each retry is a read (and, when it pops, a write) of every key of
/// the command at its level: 10 rounds a second per blocked connection.
pub const BLOCKING_POLL_MS: u64 = 100;

/// Most rounds of serving in one [`after_command`]: a round serves the keys signalled so
/// far, and a new round is needed only for keys that a served `BLMOVE` pushed to (each
/// waiter is served once) or that other commands signalled, which those commands serve
/// themselves when they end. The bound is never reached in practice.
const SERVE_ROUNDS_MAX: usize = 1024;

/// A connection blocked in a command that found nothing: what it waits for.
#[derive(Debug)]
pub struct Blocked {
    /// When the wait ends with the timeout reply; `None`: never (timeout 0).
    deadline: Option<Instant>,
    wait: Wait,
}

#[derive(Debug)]
enum Wait {
    /// Single node: a writer serves the connection and sends the reply.
    Served {
        registration: Registration,
        reply: oneshot::Receiver<Reply>,
    },
    /// Cluster: the connection retries its request through the coordinator (boxed: a
    /// request is large, and every session holds an `Option<Blocked>`).
    Retry(Box<Retry>),
}

#[derive(Debug)]
struct Retry {
    _registration: Registration,
    woken: Arc<Notify>,
    cluster: Arc<Cluster>,
    request: Request,
    keys: Vec<Bytes>,
    touch: bool,
}

/// The blocking list command of `request`, if it is one.
pub(super) fn blocking_command(request: &Request) -> Option<&ListCommand> {
    match &request.command {
        Command::List(command) if command.timeout_ms().is_some() => Some(command),
        _ => None,
    }
}

/// Whether a blocking command's outcome is "nothing to pop": the null array, which the
/// executor answers then and the timeout answers (Redis 7.0 answers every blocked list
/// command's timeout with the null array, `BLMOVE`'s too: `*-1` in RESP2, `_` in RESP3).
pub(super) fn found_nothing(outcome: &Outcome) -> bool {
    matches!(outcome, Ok(Reply::NilArray))
}

/// The deadline of a timeout in milliseconds from `start`; `None` for 0 (forever) or one
/// too far to represent (Redis's deadline would overflow there too).
fn deadline(start: Instant, timeout_ms: u64) -> Option<Instant> {
    match timeout_ms {
        0 => None,
        ms => start.checked_add(Duration::from_millis(ms)),
    }
}

/// Runs a blocking command on a single node: its outcome if it found something (or
/// failed); else `None`, with the connection registered and [`Session::blocked`] set.
pub(super) fn run_single(
    node: &Node,
    session: &mut Session,
    command: ListCommand,
    now_ms: u64,
    touch: bool,
) -> Option<Outcome> {
    let started = Instant::now();
    let registry = &node.clients.blocked;
    let _attempt = registry.attempt();
    let outcome = list::execute(node, &node.store, command.clone(), now_ms, touch);
    if !found_nothing(&outcome) {
        return Some(outcome);
    }
    let mut waiters = registry.lock();
    // Again under the lock that serving takes: a write since the first attempt found nobody
    // to serve, and one after this attempt serves after the registration below.
    let outcome = list::execute(node, &node.store, command.clone(), unix_now_ms(), touch);
    if !found_nothing(&outcome) {
        return Some(outcome);
    }
    let (sender, reply) = oneshot::channel();
    let keys = command.blocking_keys().to_vec();
    let timeout_ms = command.timeout_ms().unwrap_or(0);
    let registration = registry.register(
        &mut waiters,
        session.client.clone(),
        &keys,
        command,
        Deliver::Reply(sender),
    );
    session.blocked = Some(Blocked {
        deadline: deadline(started, timeout_ms),
        wait: Wait::Served {
            registration,
            reply,
        },
    });
    None
}

/// After a blocking command that found nothing through the coordinator: registers the
/// connection to be woken by local writes and sets [`Session::blocked`] to retry `request`.
pub(super) fn block_clustered(
    node: &Node,
    cluster: &Arc<Cluster>,
    session: &mut Session,
    request: Request,
    keys: Vec<Bytes>,
    started: Instant,
    touch: bool,
) {
    let Some(command) = blocking_command(&request) else {
        return;
    };
    let timeout_ms = command.timeout_ms().unwrap_or(0);
    let woken = Arc::new(Notify::new());
    let registry = &node.clients.blocked;
    let registration = registry.register(
        &mut registry.lock(),
        session.client.clone(),
        command.blocking_keys(),
        command.clone(),
        Deliver::Wake(woken.clone()),
    );
    session.blocked = Some(Blocked {
        deadline: deadline(started, timeout_ms),
        wait: Wait::Retry(Box::new(Retry {
            _registration: registration,
            woken,
            cluster: cluster.clone(),
            request,
            keys,
            touch,
        })),
    });
}

impl Blocked {
    /// Waits until the command has its reply: served by a writer (single node), found by a
    /// retry through the coordinator (cluster), or the null array at the deadline.
    ///
    /// Cancel-safe: dropped before it ends (the client was killed or left), the waiter is
    /// unregistered with `self`, and an element a writer popped for it meanwhile is lost with
    /// the connection, as Redis loses the reply of a client it frees.
    pub async fn wait(&mut self, node: &Arc<Node>, session: &mut Session) -> Reply {
        let deadline = self.deadline;
        let at_deadline = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(at_deadline);
        match &mut self.wait {
            Wait::Served {
                registration,
                reply,
            } => {
                tokio::select! {
                    served = &mut *reply => {
                        // A sender dropped unsent would mean the waiter was removed without
                        // a reply, which only `registration` does: answer as at the deadline.
                        return served.unwrap_or_else(|_| Reply::NilArray);
                    }
                    _ = &mut at_deadline => {}
                }
                if registration.cancel() {
                    return Reply::NilArray;
                }
                // Served at the deadline: the reply was sent before the waiter was removed.
                reply.try_recv().unwrap_or_else(|_| Reply::NilArray)
            }
            Wait::Retry(retry) => loop {
                let Retry {
                    woken,
                    cluster,
                    request,
                    keys,
                    touch,
                    ..
                } = &**retry;
                let poll = tokio::time::sleep(Duration::from_millis(BLOCKING_POLL_MS));
                tokio::select! {
                    // The deadline first: no retry (which might pop) once it has passed.
                    biased;
                    _ = &mut at_deadline => return Reply::NilArray,
                    _ = woken.notified() => {}
                    _ = poll => {}
                }
                let outcome = clustered::execute(
                    node,
                    cluster,
                    session,
                    request.clone(),
                    keys.clone(),
                    unix_now_ms(),
                    *touch,
                )
                .await;
                after_command(node);
                if !found_nothing(&outcome) {
                    let reply = outcome.unwrap_or_else(Reply::error);
                    if let Reply::Error(text) = &reply {
                        node.stats.record_error(text);
                    }
                    return reply;
                }
            },
        }
    }
}

/// After any command: serves (single node) or wakes (cluster) the connections blocked on the
/// keys that writes filled. Costs one atomic load when no key was signalled.
pub(super) fn after_command(node: &Node) {
    let registry = &node.clients.blocked;
    for _ in 0..SERVE_ROUNDS_MAX {
        let keys = registry.take_ready();
        if keys.is_empty() {
            return;
        }
        let mut waiters = registry.lock();
        for key in &keys {
            if node.cluster.is_some() {
                registry.wake(&waiters, key);
                continue;
            }
            // Bounded: each turn unblocks a waiter or stops.
            while let Some((id, waiter)) = registry.first(&waiters, key) {
                let now_ms = unix_now_ms();
                let served = list::serve_blocked(node, &node.store, &waiter.command, key, now_ms);
                let Some(outcome) = served else {
                    break;
                };
                let reply = outcome.unwrap_or_else(Reply::error);
                if let Reply::Error(text) = &reply {
                    node.stats.record_error(text);
                }
                registry.serve(&mut waiters, id, reply);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::{node, run, session};
    use ringcache_resp::CommandError;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn pair(key: &str, item: &str) -> Reply {
        Reply::Array(vec![bulk(key), bulk(item)])
    }

    /// Runs a blocking command expected to find nothing; its session is left blocked.
    fn block(node: &Node, line: &str) -> Session {
        let mut s = session(node);
        assert_eq!(run(node, &mut s, line), Reply::Nil, "{line} answered");
        assert!(s.blocked.is_some(), "{line} did not block");
        s
    }

    /// The reply a blocked session has been served, without waiting.
    fn served(s: &mut Session) -> Option<Reply> {
        match &mut s.blocked.as_mut()?.wait {
            Wait::Served { reply, .. } => reply.try_recv().ok(),
            Wait::Retry(_) => None,
        }
    }

    #[test]
    fn a_list_with_elements_answers_at_once_as_the_non_blocking_forms() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "RPUSH l a b c");
        assert_eq!(run(&node, &mut s, "BLPOP none l 0"), pair("l", "a"));
        assert_eq!(run(&node, &mut s, "BRPOP l 0"), pair("l", "c"));
        assert_eq!(run(&node, &mut s, "BLMOVE l m RIGHT LEFT 0"), bulk("b"));
        assert_eq!(
            run(&node, &mut s, "BLMPOP 0 2 l m LEFT COUNT 5"),
            Reply::Array(vec![bulk("m"), Reply::Array(vec![bulk("b")])])
        );
        run(&node, &mut s, "SET str x");
        assert_eq!(
            run(&node, &mut s, "BLPOP none str 0"),
            Reply::error(CommandError::WrongType)
        );
        assert!(s.blocked.is_none());
        assert_eq!(node.clients.blocked.count(), 0);
    }

    #[test]
    fn a_push_serves_the_longest_waiting_client_before_its_own_reply() {
        let node = node();
        let mut first = block(&node, "BLPOP k 0");
        let mut second = block(&node, "BRPOP other k 0");
        assert_eq!(node.clients.blocked.count(), 2);
        let mut writer = session(&node);
        assert_eq!(run(&node, &mut writer, "RPUSH k a"), Reply::Integer(1));
        // Already popped for the first waiter: the writer's next command sees it gone.
        assert_eq!(run(&node, &mut writer, "LLEN k"), Reply::Integer(0));
        assert_eq!(served(&mut first), Some(pair("k", "a")));
        assert_eq!(served(&mut second), None);
        assert_eq!(node.clients.blocked.count(), 1);
        assert_eq!(run(&node, &mut writer, "LPUSH k b c"), Reply::Integer(2));
        assert_eq!(served(&mut second), Some(pair("k", "b")));
        assert_eq!(run(&node, &mut writer, "LRANGE k 0 -1"), {
            Reply::Array(vec![bulk("c")])
        });
        assert_eq!(node.clients.blocked.count(), 0);
    }

    #[test]
    fn the_filled_key_serves_whatever_the_other_keys_hold() {
        let node = node();
        let mut waiter = block(&node, "BLMPOP 0 2 a b RIGHT COUNT 2");
        let mut writer = session(&node);
        run(&node, &mut writer, "SET a string");
        assert_eq!(served(&mut waiter), None);
        run(&node, &mut writer, "RPUSH b x y z");
        assert_eq!(
            served(&mut waiter),
            Some(Reply::Array(vec![
                bulk("b"),
                Reply::Array(vec![bulk("z"), bulk("y")])
            ]))
        );
    }

    #[test]
    fn blmove_is_served_by_a_push_and_its_move_serves_the_next_waiter() {
        let node = node();
        let mut mover = block(&node, "BLMOVE src dst LEFT RIGHT 0");
        let mut popper = block(&node, "BLPOP dst 0");
        let mut bad = block(&node, "BLMOVE src2 str LEFT LEFT 0");
        let mut writer = session(&node);
        run(&node, &mut writer, "RPUSH src a");
        assert_eq!(served(&mut mover), Some(bulk("a")));
        assert_eq!(served(&mut popper), Some(pair("dst", "a")));
        run(&node, &mut writer, "SET str x");
        run(&node, &mut writer, "LPUSH src2 b");
        assert_eq!(
            served(&mut bad),
            Some(Reply::error(CommandError::WrongType))
        );
        assert_eq!(run(&node, &mut writer, "LLEN src2"), Reply::Integer(1));
        assert_eq!(node.clients.blocked.count(), 0);
    }

    #[tokio::test]
    async fn the_deadline_answers_the_null_reply_and_unblocks() {
        let node = Arc::new(node());
        for (line, expected) in [
            ("BLPOP k 0.05", Reply::NilArray),
            ("BLMPOP 0.05 1 k LEFT", Reply::NilArray),
            ("BLMOVE k d LEFT LEFT 0.05", Reply::NilArray),
        ] {
            let mut s = block(&node, line);
            let mut blocked = s.blocked.take().unwrap();
            let started = Instant::now();
            assert_eq!(blocked.wait(&node, &mut s).await, expected, "{line}");
            assert!(started.elapsed() >= Duration::from_millis(40), "{line}");
            drop(blocked);
            assert_eq!(node.clients.blocked.count(), 0);
        }
        // A dropped wait (the client killed or gone) unregisters it: a push then stays.
        let s = block(&node, "BLPOP k 0");
        drop(s);
        let mut writer = session(&node);
        run(&node, &mut writer, "RPUSH k a");
        assert_eq!(run(&node, &mut writer, "LLEN k"), Reply::Integer(1));
    }

    #[tokio::test]
    async fn a_waiter_served_from_another_thread_gets_its_reply() {
        let node = Arc::new(node());
        let mut s = block(&node, "BLPOP k 5");
        let mut blocked = s.blocked.take().unwrap();
        let pusher = {
            let node = node.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                let mut writer = session(&node);
                run(&node, &mut writer, "RPUSH k a")
            })
        };
        assert_eq!(blocked.wait(&node, &mut s).await, pair("k", "a"));
        assert_eq!(pusher.join().unwrap(), Reply::Integer(1));
    }
}
