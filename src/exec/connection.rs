//! Connection commands: the handshake client libraries send, and `CONSISTENCY`.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use ringcache_resp::cmd::{ClientCommand, ClientKill, Command, ConsistencyCommand, Hello};
use ringcache_resp::{CommandError, Protocol, Reply};

use super::{After, Session};
use crate::node::Node;

/// The Redis version ringcache answers as: the one whose commands and replies it follows.
pub const REDIS_COMPATIBLE_VERSION: &str = "7.0.15";

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Executes a connection command.
pub fn execute(node: &Node, session: &mut Session, command: Command) -> Reply {
    match command {
        // A RESP2 connection with a subscription answers PING as Redis does there: an
        // array of "pong" and the message (empty without one).
        Command::Ping(message)
            if session.protocol == Protocol::Resp2 && session.subscriptions.count() > 0 =>
        {
            Reply::Array(vec![
                Reply::Bulk(Bytes::from_static(b"pong")),
                Reply::Bulk(message.unwrap_or_default()),
            ])
        }
        Command::Ping(None) => Reply::Simple("PONG"),
        Command::Ping(Some(message)) | Command::Echo(message) => Reply::Bulk(message),
        Command::Hello(hello) => execute_hello(node, session, hello),
        Command::Auth { username, password } => match check_password(node, username, &password) {
            Ok(()) => {
                session.authenticated = true;
                Reply::Ok
            }
            Err(reply) => reply,
        },
        Command::Select(0) => Reply::Ok,
        Command::Select(_) => Reply::error(CommandError::DbIndexOutOfRange),
        Command::Quit => {
            session.after = After::Close;
            Reply::Ok
        }
        Command::Reset => {
            session.protocol = Protocol::Resp2;
            session.client.resp.store(2, Relaxed);
            session.authenticated = node.config.read().requirepass.is_none();
            session.read_level = None;
            session.write_level = None;
            *session.client.names.lock() = Default::default();
            session.client.no_evict.store(false, Relaxed);
            session.client.no_touch.store(false, Relaxed);
            // As Redis's RESET: the transaction is discarded and the keys unwatched.
            session.transaction = None;
            session.watched.clear();
            super::pubsub::unsubscribe_all(node, session);
            Reply::Simple("RESET")
        }
        Command::Client(client) => execute_client(node, session, client),
        Command::Consistency(consistency) => execute_consistency(node, session, consistency),
        _ => super::misrouted("connection"),
    }
}

/// Checks a password against `requirepass`, with Redis's replies for each failure.
fn check_password(node: &Node, username: Option<Bytes>, password: &[u8]) -> Result<(), Reply> {
    let config = node.config.read();
    let user_is_default = username.as_deref().is_none_or(|u| u == b"default");
    match &config.requirepass {
        None if username.is_none() => Err(Reply::error(
            "ERR AUTH <password> called without any password configured for the default \
             user. Are you sure your configuration is correct?",
        )),
        None if user_is_default => Ok(()),
        Some(required) if user_is_default && required.as_bytes() == password => Ok(()),
        _ => Err(Reply::error(WRONGPASS)),
    }
}

fn execute_hello(node: &Node, session: &mut Session, hello: Hello) -> Reply {
    let Hello {
        protover,
        auth,
        setname,
    } = hello;
    let protocol = match protover {
        None => session.protocol,
        Some(2) => Protocol::Resp2,
        Some(3) => Protocol::Resp3,
        Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
    };
    if let Some((username, password)) = auth {
        if let Err(reply) = check_password(node, Some(username), &password) {
            return reply;
        }
        session.authenticated = true;
    }
    if !session.authenticated {
        return Reply::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time",
        );
    }
    if let Some(name) = setname {
        session.client.names.lock().name = Some(name).filter(|n| !n.is_empty());
    }
    session.protocol = protocol;
    session
        .client
        .resp
        .store(if protocol == Protocol::Resp3 { 3 } else { 2 }, Relaxed);
    let text = |s: &'static str| Reply::Bulk(Bytes::from_static(s.as_bytes()));
    Reply::Map(vec![
        (text("server"), text("redis")),
        (text("version"), text(REDIS_COMPATIBLE_VERSION)),
        (
            text("proto"),
            Reply::Integer(if protocol == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (text("id"), Reply::Integer(session.client.id as i64)),
        (text("mode"), text("standalone")),
        (text("role"), text("master")),
        (text("modules"), Reply::Array(vec![])),
    ])
}

fn execute_client(node: &Node, session: &mut Session, command: ClientCommand) -> Reply {
    let client = &session.client;
    match command {
        ClientCommand::Id => Reply::Integer(client.id as i64),
        ClientCommand::SetName(name) => {
            client.names.lock().name = Some(name).filter(|n| !n.is_empty());
            Reply::Ok
        }
        ClientCommand::GetName => client
            .names
            .lock()
            .name
            .clone()
            .map_or(Reply::Nil, Reply::Bulk),
        ClientCommand::SetInfo { lib_name, value } => {
            let mut names = client.names.lock();
            let slot = if lib_name {
                &mut names.lib_name
            } else {
                &mut names.lib_ver
            };
            *slot = Some(value).filter(|v| !v.is_empty());
            Reply::Ok
        }
        ClientCommand::Info => Reply::Verbatim(Bytes::from(client.describe() + "\n")),
        ClientCommand::List { ids } => {
            let lines: String = node
                .clients
                .all()
                .iter()
                .filter(|c| ids.is_empty() || ids.contains(&c.id))
                .map(|c| c.describe() + "\n")
                .collect();
            Reply::Verbatim(Bytes::from(lines))
        }
        ClientCommand::Kill(filter) => execute_client_kill(node, session, filter),
        ClientCommand::NoEvict(on) => {
            client.no_evict.store(on, Relaxed);
            Reply::Ok
        }
        ClientCommand::NoTouch(on) => {
            client.no_touch.store(on, Relaxed);
            Reply::Ok
        }
        ClientCommand::Help => Reply::Array(
            [
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>,",
                "    LADDR <ip:port>, SKIPME (YES|NO).",
                "LIST [ID <client-id> [<client-id> ...]]",
                "    Return information about client connections.",
                "NO-EVICT (ON|OFF)",
                "    Protect current client connection from eviction.",
                "NO-TOUCH (ON|OFF)",
                "    Will not touch LRU/LFU stats when this mode is on.",
                "SETINFO <LIB-NAME|LIB-VER> <value>",
                "    Set client library name or version.",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "HELP",
                "    Print this help.",
            ]
            .into_iter()
            .map(Reply::Simple)
            .collect(),
        ),
    }
}

fn execute_client_kill(node: &Node, session: &Session, filter: ClientKill) -> Reply {
    let me = session.client.id;
    let addr_matches = |wanted: &Option<Bytes>, actual: std::net::SocketAddr| {
        wanted
            .as_deref()
            .is_none_or(|w| w == actual.to_string().as_bytes())
    };
    let victims: Vec<_> = node
        .clients
        .all()
        .into_iter()
        .filter(|c| filter.id.is_none_or(|id| id == c.id))
        .filter(|c| addr_matches(&filter.addr, c.addr) && addr_matches(&filter.laddr, c.laddr))
        .filter(|c| filter.legacy || !filter.skip_me || c.id != me)
        .collect();
    victims.iter().for_each(|c| c.kill());
    match (filter.legacy, victims.len()) {
        (true, 0) => Reply::error("ERR No such client"),
        (true, _) => Reply::Ok,
        (false, killed) => Reply::Integer(killed as i64),
    }
}

fn execute_consistency(node: &Node, session: &mut Session, command: ConsistencyCommand) -> Reply {
    match command {
        ConsistencyCommand::Show => {
            let config = node.config.read();
            let read = session.read_level.unwrap_or(config.read_level);
            let write = session.write_level.unwrap_or(config.write_level);
            let text = |s: String| Reply::Bulk(Bytes::from(s));
            Reply::Map(vec![
                (text("read".into()), text(read.to_string())),
                (text("write".into()), text(write.to_string())),
            ])
        }
        ConsistencyCommand::SetBoth(level) => {
            session.read_level = Some(level);
            session.write_level = Some(level);
            Reply::Ok
        }
        ConsistencyCommand::SetRead(level) => {
            session.read_level = Some(level);
            Reply::Ok
        }
        ConsistencyCommand::SetWrite(level) => {
            session.write_level = Some(level);
            Reply::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::{node, run, session};

    #[test]
    fn hello_3_switches_the_protocol_and_reports_it() {
        let node = node();
        let mut s = session(&node);
        let Reply::Map(fields) = run(&node, &mut s, "HELLO 3") else {
            panic!()
        };
        assert!(fields.contains(&(Reply::Bulk(Bytes::from_static(b"proto")), Reply::Integer(3))));
        assert_eq!(s.protocol, Protocol::Resp3);
        assert_eq!(
            run(&node, &mut s, "HELLO 4"),
            Reply::error("NOPROTO unsupported protocol version")
        );
    }

    #[test]
    fn requirepass_blocks_commands_until_auth() {
        let node = node();
        node.config.write().requirepass = Some("secret".into());
        let mut s = session(&node);
        assert_eq!(
            run(&node, &mut s, "GET k"),
            Reply::error("NOAUTH Authentication required.")
        );
        assert_eq!(run(&node, &mut s, "AUTH wrong"), Reply::error(WRONGPASS));
        assert_eq!(run(&node, &mut s, "AUTH secret"), Reply::Ok);
        assert_eq!(run(&node, &mut s, "GET k"), Reply::Nil);
    }

    #[test]
    fn consistency_sets_and_shows_the_connection_defaults() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(run(&node, &mut s, "CONSISTENCY WRITE all"), Reply::Ok);
        let shown = run(&node, &mut s, "CONSISTENCY");
        let text = |t: &'static str| Reply::Bulk(Bytes::from_static(t.as_bytes()));
        assert_eq!(
            shown,
            Reply::Map(vec![
                (text("read"), text("QUORUM")),
                (text("write"), text("ALL"))
            ])
        );
    }

    #[test]
    fn client_setname_and_getname_round_trip() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(run(&node, &mut s, "CLIENT GETNAME"), Reply::Nil);
        assert_eq!(run(&node, &mut s, "CLIENT SETNAME worker-1"), Reply::Ok);
        assert_eq!(
            run(&node, &mut s, "CLIENT GETNAME"),
            Reply::Bulk(Bytes::from_static(b"worker-1"))
        );
    }

    #[test]
    fn select_accepts_only_database_zero() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(run(&node, &mut s, "SELECT 0"), Reply::Ok);
        assert_eq!(
            run(&node, &mut s, "SELECT 1"),
            Reply::error("ERR DB index is out of range")
        );
    }
}
