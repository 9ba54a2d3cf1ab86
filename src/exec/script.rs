//! `EVAL`, `EVALSHA`, their `_RO` forms and `SCRIPT`: which script runs, what its
//! `redis.call` may do, and how it runs on a single node and through the cluster. The Lua
//! side is [`crate::scripting`].
//!
//! - Single node: the script runs holding the transaction gate alone (as `EXEC`), so no
//!   other client's command runs in between; each `redis.call` runs as a command of the
//!   connection at the time the script started (a key does not expire mid-script), and a
//!   blocking command answers as its non-blocking form, as in Redis.
//! - Cluster: the script may touch only the keys it declares in `KEYS`; before it runs,
//!   every key's replicas are checked against the write level (unless `_RO`: fail whole,
//!   nothing written), the coordinator's locks of all its keys are held in one global order,
//!   and each `redis.call` goes through the coordinator at the connection's levels. Clients
//!   of other coordinators are not held off (docs/consistency.md).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use ringcache_resp::cmd::{Command, Flags, ScriptCommand, ScriptSource, lookup};
use ringcache_resp::{Reply, Request};

use super::Session;
use crate::cluster::Cluster;
use crate::node::{Node, unix_now_ms};
use crate::scripting::{Engine, Limits};

/// Redis's `SCRIPT HELP`.
const HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

/// Whether the command named `name` runs a script.
pub fn is_eval_name(name: &str) -> bool {
    matches!(name, "eval" | "evalsha" | "eval_ro" | "evalsha_ro")
}

/// Whether the request runs a script (as opposed to `SCRIPT ...`).
pub fn runs_script(request: &Request) -> bool {
    matches!(
        &request.command,
        Command::Script(ScriptCommand::Eval { .. })
    )
}

/// A script to run, found: its SHA1 and body.
struct Found {
    sha: String,
    body: Bytes,
}

/// The script of an `EVAL`/`EVALSHA`, or `NOSCRIPT`.
fn find(node: &Node, source: &ScriptSource) -> Result<Found, Reply> {
    match source {
        ScriptSource::Body(body) => Ok(Found {
            sha: node.scripts.add(body, false),
            body: body.clone(),
        }),
        ScriptSource::Sha(sha) => match node.scripts.get(sha) {
            Some((sha, body)) => Ok(Found { sha, body }),
            None => Err(Reply::error(
                "NOSCRIPT No matching script. Please use EVAL.",
            )),
        },
    }
}

/// Runs a `SCRIPT` subcommand, or (single node) a script: `call` runs each `redis.call`.
pub fn execute(
    node: &Node,
    session: &mut Session,
    command: ScriptCommand,
    call: &mut dyn FnMut(&mut Session, Vec<Bytes>) -> Reply,
) -> Reply {
    match command {
        ScriptCommand::Eval {
            source,
            keys,
            args,
            read_only,
        } => {
            let found = match find(node, &source) {
                Ok(found) => found,
                Err(reply) => return reply,
            };
            run(
                node,
                session,
                &found,
                &keys,
                &args,
                |session, args| match refused(&args, read_only, None) {
                    Some(reply) => reply,
                    None => call(session, args),
                },
            )
        }
        ScriptCommand::Load(body) => Reply::Bulk(Bytes::from(node.scripts.add(&body, true))),
        ScriptCommand::Exists(shas) => Reply::Array(
            shas.iter()
                .map(|sha| Reply::Integer(i64::from(node.scripts.get(sha).is_some())))
                .collect(),
        ),
        ScriptCommand::Flush => {
            node.scripts.flush();
            Reply::Ok
        }
        ScriptCommand::Kill => kill(node),
        ScriptCommand::Functions => Reply::error(
            "ERR FUNCTION and FCALL are not offered by ringcache yet; scripts run with EVAL",
        ),
        ScriptCommand::Help => Reply::Array(HELP.iter().map(|line| Reply::Simple(line)).collect()),
    }
}

/// `SCRIPT KILL`: asks a busy script to stop (one that wrote cannot be).
fn kill(node: &Node) -> Reply {
    let state = &node.script_state;
    if state.running.load(Relaxed) == 0 || !state.busy.load(Relaxed) {
        return Reply::error("NOTBUSY No scripts in execution right now.");
    }
    if state.wrote.load(Relaxed) {
        return Reply::error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. \
             You can either wait the script termination or kill the server in a hard way \
             using the SHUTDOWN NOSAVE command.",
        );
    }
    state.kill.store(true, Relaxed);
    Reply::Ok
}

/// Runs one script in a Lua state of the node's pool (made when none is idle), the connection's
/// commands frozen at the script's start time and non-blocking while it runs.
fn run(
    node: &Node,
    session: &mut Session,
    found: &Found,
    keys: &[Bytes],
    args: &[Bytes],
    mut call: impl FnMut(&mut Session, Vec<Bytes>) -> Reply,
) -> Reply {
    let mut engine = match node.scripts.take_engine() {
        Some(engine) => engine,
        None => match Engine::new() {
            Ok(engine) => engine,
            Err(e) => return Reply::Error(format!("ERR cannot start Lua: {e}")),
        },
    };
    let state = node.script_state.clone();
    let busy_after_ms = node.config.read().busy_reply_threshold_ms;
    let limits = Limits {
        state: state.clone(),
        busy_after: Duration::from_millis(busy_after_ms),
    };
    let saved = (session.in_exec, session.exec_now_ms);
    session.in_exec = true;
    session.exec_now_ms = Some(saved.1.unwrap_or_else(unix_now_ms));
    state.running.fetch_add(1, Relaxed);
    let reply = engine.run(&found.sha, &found.body, keys, args, &limits, &mut |args| {
        let writes = writes(&args);
        let reply = call(session, args);
        if writes && !reply.is_error() {
            state.wrote.store(true, Relaxed);
        }
        reply
    });
    if state.running.fetch_sub(1, Relaxed) == 1 {
        state.busy.store(false, Relaxed);
        // Once the server stops, every later script past its time is stopped too.
        let stopping = *node.shutdown.borrow();
        state.kill.store(stopping, Relaxed);
        state.wrote.store(false, Relaxed);
    }
    (session.in_exec, session.exec_now_ms) = saved;
    node.scripts.give_back(engine);
    reply
}

/// Whether `args` name a command that writes.
fn writes(args: &[Bytes]) -> bool {
    args.first()
        .and_then(|name| lookup(name))
        .is_some_and(|entry| entry.spec.flags.contains(Flags::WRITE))
}

/// Redis's refusals of a `redis.call` before it runs: an unknown command, a wrong argument
/// count, a command scripts may not run, a write from a read-only script, and (in a
/// cluster, `declared` being `KEYS`) a key the script did not declare.
fn refused(args: &[Bytes], read_only: bool, declared: Option<&[Bytes]>) -> Option<Reply> {
    let Some(entry) = lookup(&args[0]) else {
        return Some(Reply::error("ERR Unknown Redis command called from script"));
    };
    let spec = entry.spec;
    let argc = args.len() as i64;
    let arity = i64::from(spec.arity);
    if (arity > 0 && argc != arity) || (arity < 0 && argc < -arity) {
        return Some(Reply::error(
            "ERR Wrong number of args calling Redis command from script",
        ));
    }
    if spec.flags.contains(Flags::NOSCRIPT) {
        return Some(Reply::error(
            "ERR This Redis command is not allowed from script",
        ));
    }
    if read_only && spec.flags.contains(Flags::WRITE) {
        return Some(Reply::error(
            "ERR Write commands are not allowed from read-only scripts.",
        ));
    }
    if let Some(declared) = declared
        && spec.routed_keys(args).any(|key| !declared.contains(key))
    {
        return Some(Reply::error(
            "ERR Script attempted to access a non local key in a cluster node script",
        ));
    }
    None
}

/// A script on a cluster: checks the declared keys' replicas against the write level (not
/// for `_RO`), holds this coordinator's locks of the keys, then runs the script with each
/// `redis.call` going through the coordinator. The Lua state runs on this worker thread
/// (`block_in_place`), each command waited for there.
pub async fn execute_clustered(
    node: &Arc<Node>,
    cluster: &Arc<Cluster>,
    session: &mut Session,
    command: ScriptCommand,
) -> Reply {
    let ScriptCommand::Eval {
        source,
        keys,
        args,
        read_only,
    } = command
    else {
        return execute(node, session, command, &mut |_, _| Reply::Nil);
    };
    let found = match find(node, &source) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    if !read_only && let Err(e) = super::clustered::check_script(node, cluster, session, &keys) {
        return Reply::error(e);
    }
    let key_refs: Vec<&Bytes> = keys.iter().collect();
    let _serialized = match session.in_exec {
        true => Vec::new(),
        false => cluster.lock_keys(&key_refs).await,
    };
    let runtime = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        run(node, session, &found, &keys, &args, |session, args| {
            if let Some(reply) = refused(&args, read_only, Some(&keys)) {
                return reply;
            }
            let command = super::execute_clustered(node, cluster, session, args);
            runtime.block_on(Box::pin(command)).unwrap_or(Reply::Nil)
        })
    })
}
