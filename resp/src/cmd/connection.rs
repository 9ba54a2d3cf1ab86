//! Connection commands: `PING`, `ECHO`, `HELLO`, `AUTH`, `SELECT`, `QUIT`, `RESET`, `CLIENT`,
//! `CONSISTENCY`.
//!
//! # Format
//! ```text
//! PING [message]     ECHO message     SELECT index     QUIT     RESET
//! HELLO [protover [AUTH username password] [SETNAME clientname]]
//! AUTH [username] password
//! CLIENT ID|GETNAME|INFO|HELP|SETNAME name|SETINFO LIB-NAME|LIB-VER value|LIST ...|KILL ...
//!        |NO-EVICT on|off|NO-TOUCH on|off
//! CONSISTENCY [[READ|WRITE] level]
//! ```

use bytes::Bytes;

use super::args::{
    ArgCursor, CommandError, error_text, error_text_max, is, is_valid_client_name, parse_i64,
};
use super::table::check_arity;
use super::{ClientCommand, ClientKill, Command, ConsistencyCommand, Hello};
use crate::level::{Level, LevelError};

/// # Format
/// `PING [message]`: `+PONG`, or the message as a bulk string.
pub(super) fn ping(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    if cur.remaining() > 1 {
        return Err(CommandError::WrongArity(cur.name()));
    }
    Ok(Command::Ping(cur.next()))
}

/// # Format
/// `ECHO message`
pub(super) fn echo(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Echo(cur.required()?))
}

/// # Format
/// `QUIT`: Redis 7.0 answers `QUIT anything` with +OK too.
pub(super) fn quit(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    cur.skip_rest();
    Ok(Command::Quit)
}

/// # Format
/// `RESET`
pub(super) fn reset(_: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::Reset)
}

/// # Format
/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
///
/// The version is checked first (`ERR Protocol version is not an integer or out of range`,
/// then `NOPROTO unsupported protocol version` for anything but 2 and 3), then the options
/// in order; an option without its arguments is `ERR Syntax error in HELLO option '...'`.
pub(super) fn hello(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let mut hello = Hello::default();
    if let Some(raw) = cur.next() {
        let version = parse_i64(&raw).map_err(|_| CommandError::ProtocolVersionNotInteger)?;
        if !(2..=3).contains(&version) {
            return Err(CommandError::NoProto);
        }
        hello.protover = Some(version);
    }
    while let Some(option) = cur.next() {
        if is(&option, "AUTH") && cur.remaining() >= 2 {
            let user = cur.required()?;
            let pass = cur.required()?;
            hello.auth = Some((user, pass));
        } else if is(&option, "SETNAME") && cur.remaining() >= 1 {
            let name = cur.required()?;
            if !is_valid_client_name(&name) {
                return Err(CommandError::InvalidClientName);
            }
            hello.setname = Some(name);
        } else {
            return Err(CommandError::HelloOption(error_text(&option)));
        }
    }
    Ok(Command::Hello(hello))
}

/// # Format
/// `AUTH password` or `AUTH username password`; more arguments are `ERR syntax error`.
pub(super) fn auth(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    match cur.remaining() {
        1 => Ok(Command::Auth {
            username: None,
            password: cur.required()?,
        }),
        2 => Ok(Command::Auth {
            username: Some(cur.required()?),
            password: cur.required()?,
        }),
        _ => Err(CommandError::Syntax),
    }
}

/// # Format
/// `SELECT index`: the index must fit a C `int` (`ERR value is not an integer or out of
/// range`); the executor refuses all but 0.
pub(super) fn select(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let index = cur.required_i64()?;
    if i32::try_from(index).is_err() {
        return Err(CommandError::NotInteger);
    }
    Ok(Command::Select(index))
}

/// `CLIENT` subcommands and their Redis arities.
const CLIENT_SUBCOMMANDS: &[(&str, &str, i32)] = &[
    ("id", "client|id", 2),
    ("setname", "client|setname", 3),
    ("getname", "client|getname", 2),
    ("setinfo", "client|setinfo", 4),
    ("info", "client|info", 2),
    ("list", "client|list", -2),
    ("kill", "client|kill", -3),
    ("no-evict", "client|no-evict", 3),
    ("no-touch", "client|no-touch", 3),
    ("help", "client|help", 2),
];

/// Finds a subcommand in `table` and checks its arity (`argc` counts the container and the
/// subcommand).
pub(crate) fn subcommand(
    container: &'static str,
    table: &[(&'static str, &'static str, i32)],
    sub: &[u8],
    argc: usize,
) -> Result<&'static str, CommandError> {
    let Some(&(name, full, arity)) = table.iter().find(|row| is(sub, row.0)) else {
        return Err(CommandError::UnknownSubcommand {
            command: container,
            sub: error_text_max(sub, 128),
        });
    };
    check_arity(full, arity, argc)?;
    Ok(name)
}

/// # Format
/// ```text
/// CLIENT ID | GETNAME | INFO | HELP
/// CLIENT SETNAME name                  (bytes ! to ~ only; empty clears)
/// CLIENT SETINFO LIB-NAME|LIB-VER value
/// CLIENT LIST [TYPE normal|master|replica|pubsub] | [ID id [id ...]]
/// CLIENT KILL ip:port
/// CLIENT KILL [ID id] [TYPE type] [USER name] [ADDR ip:port] [LADDR ip:port] [SKIPME yes|no]
/// CLIENT NO-EVICT on|off
/// CLIENT NO-TOUCH on|off
/// ```
pub(super) fn client(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let sub = cur.required()?;
    let sub = match subcommand("CLIENT", CLIENT_SUBCOMMANDS, &sub, cur.argc())? {
        "id" => ClientCommand::Id,
        "getname" => ClientCommand::GetName,
        "info" => ClientCommand::Info,
        "help" => ClientCommand::Help,
        "setname" => {
            let name = cur.required()?;
            if !is_valid_client_name(&name) {
                return Err(CommandError::InvalidClientName);
            }
            ClientCommand::SetName(name)
        }
        "setinfo" => {
            let attr = cur.required()?;
            let value = cur.required()?;
            let lib_name = if is(&attr, "lib-name") {
                true
            } else if is(&attr, "lib-ver") {
                false
            } else {
                return Err(CommandError::UnrecognizedOption(error_text(&attr)));
            };
            if !is_valid_client_name(&value) {
                return Err(CommandError::InvalidClientAttr(error_text(&attr)));
            }
            ClientCommand::SetInfo { lib_name, value }
        }
        "list" => client_list(cur.rest())?,
        "kill" => ClientCommand::Kill(client_kill(cur.rest())?),
        "no-evict" => ClientCommand::NoEvict(on_off(&cur.required()?)?),
        "no-touch" => ClientCommand::NoTouch(on_off(&cur.required()?)?),
        other => unreachable!("client subcommand {other}"),
    };
    Ok(Command::Client(sub))
}

/// `on` or `off`, any case; anything else is a syntax error.
fn on_off(raw: &[u8]) -> Result<bool, CommandError> {
    if is(raw, "on") {
        Ok(true)
    } else if is(raw, "off") {
        Ok(false)
    } else {
        Err(CommandError::Syntax)
    }
}

/// The id that no client has, standing for a filter that matches no ringcache client (a
/// `TYPE` of master, replica or pubsub connections, which ringcache does not have).
const NO_CLIENT_ID: u64 = u64::MAX;

/// Redis's `getClientTypeByName`: whether the type is `normal` (the only kind ringcache has).
fn client_type_is_normal(raw: &[u8]) -> Result<bool, CommandError> {
    if is(raw, "normal") {
        Ok(true)
    } else if is(raw, "slave") || is(raw, "replica") || is(raw, "pubsub") || is(raw, "master") {
        Ok(false)
    } else {
        Err(CommandError::UnknownClientType(error_text(raw)))
    }
}

fn client_list(rest: Vec<Bytes>) -> Result<ClientCommand, CommandError> {
    match rest.as_slice() {
        [] => Ok(ClientCommand::List { ids: Vec::new() }),
        [kw, ty] if is(kw, "type") => {
            let ids = if client_type_is_normal(ty)? {
                Vec::new()
            } else {
                vec![NO_CLIENT_ID]
            };
            Ok(ClientCommand::List { ids })
        }
        [kw, ids @ ..] if is(kw, "id") && !ids.is_empty() => {
            // Redis accepts any integer; 0 and negative ids match no client.
            let ids = ids
                .iter()
                .map(|raw| {
                    let id = parse_i64(raw).map_err(|_| CommandError::InvalidClientId)?;
                    Ok(u64::try_from(id)
                        .ok()
                        .filter(|&id| id > 0)
                        .unwrap_or(NO_CLIENT_ID))
                })
                .collect::<Result<Vec<u64>, CommandError>>()?;
            Ok(ClientCommand::List { ids })
        }
        _ => Err(CommandError::Syntax),
    }
}

fn client_kill(rest: Vec<Bytes>) -> Result<ClientKill, CommandError> {
    if let [addr] = rest.as_slice() {
        // The old form kills by address, and may kill the caller.
        return Ok(ClientKill {
            legacy: true,
            addr: Some(addr.clone()),
            ..ClientKill::default()
        });
    }
    let mut kill = ClientKill {
        skip_me: true,
        ..ClientKill::default()
    };
    let mut rest = rest.into_iter();
    while let Some(option) = rest.next() {
        let Some(value) = rest.next() else {
            return Err(CommandError::Syntax);
        };
        if is(&option, "id") {
            let id = parse_i64(&value)
                .ok()
                .filter(|&id| id >= 1)
                .ok_or(CommandError::ClientIdNotPositive)?;
            kill.id = Some(id as u64);
        } else if is(&option, "type") {
            if !client_type_is_normal(&value)? {
                kill.id = Some(NO_CLIENT_ID);
            }
        } else if is(&option, "addr") {
            kill.addr = Some(value);
        } else if is(&option, "laddr") {
            kill.laddr = Some(value);
        } else if is(&option, "user") {
            // ringcache has the `default` user only.
            if !is(&value, "default") {
                return Err(CommandError::NoSuchUser(error_text(&value)));
            }
        } else if is(&option, "skipme") {
            kill.skip_me = if is(&value, "yes") {
                true
            } else if is(&value, "no") {
                false
            } else {
                return Err(CommandError::Syntax);
            };
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(kill)
}

/// # Format
/// ```text
/// CONSISTENCY                  show the connection's read and write levels
/// CONSISTENCY <level>          set both (ANY is refused: reads cannot use it)
/// CONSISTENCY READ <level>     set the read level (ANY is refused)
/// CONSISTENCY WRITE <level>    set the write level
/// ```
pub(super) fn consistency(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let read_level = |raw: &[u8]| -> Result<Level, CommandError> {
        match Level::parse(raw)? {
            Level::Any => Err(LevelError::AnyForRead.into()),
            level => Ok(level),
        }
    };
    let command = match cur.remaining() {
        0 => ConsistencyCommand::Show,
        1 => ConsistencyCommand::SetBoth(read_level(&cur.required()?)?),
        2 => {
            let which = cur.required()?;
            let level = cur.required()?;
            if is(&which, "READ") {
                ConsistencyCommand::SetRead(read_level(&level)?)
            } else if is(&which, "WRITE") {
                ConsistencyCommand::SetWrite(Level::parse(&level)?)
            } else {
                return Err(CommandError::Syntax);
            }
        }
        _ => return Err(CommandError::WrongArity(cur.name())),
    };
    Ok(Command::Consistency(command))
}
