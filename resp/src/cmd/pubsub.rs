//! Pub/sub commands: `SUBSCRIBE`, `UNSUBSCRIBE`, `PSUBSCRIBE`, `PUNSUBSCRIBE`, `PUBLISH`,
//! `PUBSUB`. What they do to a connection is `src/exec/pubsub.rs`'s; the hub that delivers
//! messages is `src/pubsub.rs`.
//!
//! # Format
//! ```text
//! SUBSCRIBE channel [channel ...]        UNSUBSCRIBE [channel ...]
//! PSUBSCRIBE pattern [pattern ...]       PUNSUBSCRIBE [pattern ...]
//! PUBLISH channel message
//! PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | HELP
//! PUBSUB SHARDCHANNELS [pattern] | SHARDNUMSUB [channel ...]   (no shard channels: empty)
//! ```

use bytes::Bytes;

use super::Command;
use super::args::{ArgCursor, CommandError};
use super::connection::subcommand;

/// A pub/sub command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PubSubCommand {
    /// `SUBSCRIBE channel...`
    Subscribe(Vec<Bytes>),
    /// `UNSUBSCRIBE [channel...]`: every channel when empty.
    Unsubscribe(Vec<Bytes>),
    /// `PSUBSCRIBE pattern...`
    PSubscribe(Vec<Bytes>),
    /// `PUNSUBSCRIBE [pattern...]`: every pattern when empty.
    PUnsubscribe(Vec<Bytes>),
    /// `PUBLISH channel message`
    Publish {
        /// Where it goes.
        channel: Bytes,
        /// What it carries.
        message: Bytes,
    },
    /// `PUBSUB CHANNELS [pattern]` (`SHARDCHANNELS` when `shard`).
    Channels {
        /// Only channels matching this glob.
        pattern: Option<Bytes>,
        /// Shard channels (none exist here).
        shard: bool,
    },
    /// `PUBSUB NUMSUB channel...` (`SHARDNUMSUB` when `shard`).
    NumSub {
        /// The channels to count.
        channels: Vec<Bytes>,
        /// Shard channels (none exist here).
        shard: bool,
    },
    /// `PUBSUB NUMPAT`
    NumPat,
    /// `PUBSUB HELP`
    Help,
}

/// `PUBSUB`'s subcommands: name, `name|sub` for arity errors, Redis's arity.
const PUBSUB_SUBCOMMANDS: &[(&str, &str, i32)] = &[
    ("channels", "pubsub|channels", -2),
    ("numsub", "pubsub|numsub", -2),
    ("numpat", "pubsub|numpat", 2),
    ("shardchannels", "pubsub|shardchannels", -2),
    ("shardnumsub", "pubsub|shardnumsub", -2),
    ("help", "pubsub|help", 2),
];

pub(super) fn subscribe(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::PubSub(PubSubCommand::Subscribe(cur.rest())))
}

pub(super) fn unsubscribe(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::PubSub(PubSubCommand::Unsubscribe(cur.rest())))
}

pub(super) fn psubscribe(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::PubSub(PubSubCommand::PSubscribe(cur.rest())))
}

pub(super) fn punsubscribe(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    Ok(Command::PubSub(PubSubCommand::PUnsubscribe(cur.rest())))
}

pub(super) fn publish(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let channel = cur.required()?;
    let message = cur.required()?;
    Ok(Command::PubSub(PubSubCommand::Publish { channel, message }))
}

pub(super) fn pubsub(cur: &mut ArgCursor) -> Result<Command, CommandError> {
    let sub = cur.required()?;
    let argc = cur.argc();
    let name = subcommand("PUBSUB", PUBSUB_SUBCOMMANDS, &sub, argc)?;
    let command = match name {
        "channels" | "shardchannels" => {
            // Redis's own check, past the table's arity: at most one pattern.
            if argc > 3 {
                return Err(CommandError::SubcommandArity {
                    sub: String::from_utf8_lossy(&sub).into_owned(),
                    container: "PUBSUB",
                });
            }
            PubSubCommand::Channels {
                pattern: cur.next(),
                shard: name == "shardchannels",
            }
        }
        "numsub" | "shardnumsub" => PubSubCommand::NumSub {
            channels: cur.rest(),
            shard: name == "shardnumsub",
        },
        "numpat" => PubSubCommand::NumPat,
        _ => PubSubCommand::Help,
    };
    Ok(Command::PubSub(command))
}
