//! Server commands: DBSIZE, FLUSHALL/FLUSHDB, TIME, SHUTDOWN here; COMMAND, INFO and CONFIG
//! in their own files ([`super::command`], [`super::info`], [`super::config`]).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ringcache_resp::cmd::Command;
use ringcache_resp::{CommandError, Reply};

use super::{After, Outcome, Session};
use crate::node::Node;

/// Executes a server command.
pub fn execute(node: &Node, session: &mut Session, command: Command, _now_ms: u64) -> Outcome {
    Ok(match command {
        Command::CommandInfo(info) => super::command::execute(info),
        Command::Info(sections) => Reply::Verbatim(Bytes::from(super::info::info(node, &sections))),
        Command::ConfigGet(patterns) => super::config::get(node, &patterns),
        Command::ConfigSet(pairs) => super::config::set(node, &pairs),
        Command::ConfigResetStat => {
            node.stats.reset();
            Reply::Ok
        }
        Command::DbSize => Reply::Integer(node.store.stats().keys as i64),
        Command::Flush(_) => {
            node.store.clear()?;
            Reply::Ok
        }
        Command::Time => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Reply::Array(vec![
                Reply::Bulk(Bytes::from(now.as_secs().to_string())),
                Reply::Bulk(Bytes::from(now.subsec_micros().to_string())),
            ])
        }
        Command::Ring(sub) => super::ring::execute_single(node, sub),
        Command::Shutdown { abort: true } => Reply::error(CommandError::NoShutdownInProgress),
        Command::Shutdown { abort: false } => {
            tracing::info!(client = session.client.id, "SHUTDOWN asked by a client");
            node.begin_shutdown();
            session.after = After::Shutdown;
            Reply::Ok
        }
        _ => super::misrouted("server"),
    })
}
