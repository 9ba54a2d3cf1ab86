//! `COMMAND`, `COMMAND COUNT|LIST|INFO|DOCS|HELP`: every reply is read from the command table
//! ([`TABLE`]), so what a client learns of a command is what the parser enforces.

use ringcache_resp::Reply;
use ringcache_resp::cmd::{CommandInfoCommand, Spec, TABLE, lookup};

use super::bulk;

/// One command's `COMMAND INFO` entry, from its table row. ACL categories, tips, key
/// specifications and subcommands are left empty.
fn command_info(spec: &Spec) -> Reply {
    Reply::Array(vec![
        bulk(spec.name),
        Reply::Integer(i64::from(spec.arity)),
        Reply::Set(spec.flags.names().map(Reply::Simple).collect()),
        Reply::Integer(i64::from(spec.keys.first)),
        Reply::Integer(i64::from(spec.keys.last)),
        Reply::Integer(i64::from(spec.keys.step)),
        Reply::Set(vec![]),
        Reply::Set(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

/// One command's `COMMAND DOCS` entry, from its table row.
fn command_docs(spec: &Spec) -> Reply {
    Reply::Map(vec![
        (bulk("summary"), bulk(spec.summary)),
        (bulk("since"), bulk(spec.since)),
        (bulk("group"), bulk(spec.family.group())),
    ])
}

fn find_spec(name: &[u8]) -> Option<&'static Spec> {
    lookup(name).map(|entry| entry.spec)
}

/// Answers one `COMMAND` form.
pub fn execute(info: CommandInfoCommand) -> Reply {
    match info {
        CommandInfoCommand::All => Reply::Array(TABLE.iter().map(command_info).collect()),
        CommandInfoCommand::Count => Reply::Integer(TABLE.len() as i64),
        CommandInfoCommand::List => Reply::Array(TABLE.iter().map(|c| bulk(c.name)).collect()),
        CommandInfoCommand::Info(names) if names.is_empty() => {
            Reply::Array(TABLE.iter().map(command_info).collect())
        }
        CommandInfoCommand::Info(names) => Reply::Array(
            names
                .iter()
                .map(|n| find_spec(n).map_or(Reply::NilArray, command_info))
                .collect(),
        ),
        CommandInfoCommand::Docs(names) => {
            let specs: Vec<&Spec> = if names.is_empty() {
                TABLE.iter().collect()
            } else {
                names.iter().filter_map(|n| find_spec(n)).collect()
            };
            Reply::Map(
                specs
                    .into_iter()
                    .map(|s| (bulk(s.name), command_docs(s)))
                    .collect(),
            )
        }
        CommandInfoCommand::Help => Reply::Array(
            [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all commands.",
                "COUNT",
                "    Return the total number of commands in this server.",
                "LIST",
                "    Return a list of all commands in this server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple commands.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple commands.",
                "HELP",
                "    Print this help.",
            ]
            .into_iter()
            .map(Reply::Simple)
            .collect(),
        ),
    }
}
