//! The command table: what `COMMAND`, `COMMAND INFO` and `COMMAND DOCS` report, and the
//! names that per-command statistics are kept under.
//!
//! Arity, flags and key positions are Redis 7.0's, so client libraries that route or
//! validate by them behave as with Redis.

/// One command's metadata.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis arity: positive = exact argument count including the name, negative = minimum.
    pub arity: i64,
    /// Redis command flags.
    pub flags: &'static [&'static str],
    /// Position of the first key, 0 for none.
    pub first_key: i64,
    /// Position of the last key, -1 for the last argument.
    pub last_key: i64,
    /// Step between keys.
    pub step: i64,
    /// Redis's command group, for `COMMAND DOCS`.
    pub group: &'static str,
    /// One line, for `COMMAND DOCS`.
    pub summary: &'static str,
    /// The Redis version that introduced it, for `COMMAND DOCS`.
    pub since: &'static str,
}

const fn spec(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
    group: &'static str,
    since: &'static str,
    summary: &'static str,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group,
        summary,
        since,
    }
}

const NONE: (i64, i64, i64) = (0, 0, 0);
const ONE_KEY: (i64, i64, i64) = (1, 1, 1);
const ALL_KEYS: (i64, i64, i64) = (1, -1, 1);
const PAIRS: (i64, i64, i64) = (1, -1, 2);

const W: &[&str] = &["write", "denyoom"];
const WF: &[&str] = &["write", "denyoom", "fast"];
const R: &[&str] = &["readonly"];
const RF: &[&str] = &["readonly", "fast"];
const WRF: &[&str] = &["write", "fast"];
const CONN: &[&str] = &["noscript", "loading", "stale", "fast"];

/// Every command ringcache answers.
pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "ping",
        -1,
        &["fast"],
        NONE,
        "connection",
        "1.0.0",
        "Returns the server's liveliness response.",
    ),
    spec(
        "echo",
        2,
        &["fast"],
        NONE,
        "connection",
        "1.0.0",
        "Returns the given string.",
    ),
    spec(
        "hello",
        -1,
        &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        NONE,
        "connection",
        "6.0.0",
        "Handshakes with the server.",
    ),
    spec(
        "auth",
        -2,
        &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        NONE,
        "connection",
        "1.0.0",
        "Authenticates the connection.",
    ),
    spec(
        "select",
        2,
        CONN,
        NONE,
        "connection",
        "1.0.0",
        "Changes the selected database (only 0 exists).",
    ),
    spec(
        "quit",
        -1,
        &[
            "allow_busy",
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
        ],
        NONE,
        "connection",
        "1.0.0",
        "Closes the connection.",
    ),
    spec(
        "reset",
        1,
        &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy",
        ],
        NONE,
        "connection",
        "6.2.0",
        "Resets the connection.",
    ),
    spec(
        "client",
        -2,
        &[],
        NONE,
        "connection",
        "2.4.0",
        "A container for client connection commands.",
    ),
    spec(
        "consistency",
        -1,
        CONN,
        NONE,
        "connection",
        "ringcache",
        "Shows or sets the connection's default read and write consistency levels.",
    ),
    spec(
        "command",
        -1,
        &["loading", "stale"],
        NONE,
        "server",
        "2.8.13",
        "Returns detailed information about all commands.",
    ),
    spec(
        "info",
        -1,
        &["loading", "stale"],
        NONE,
        "server",
        "1.0.0",
        "Returns information and statistics about the server.",
    ),
    spec(
        "config",
        -2,
        &[],
        NONE,
        "server",
        "2.0.0",
        "A container for server configuration commands.",
    ),
    spec(
        "dbsize",
        1,
        &["readonly", "fast"],
        NONE,
        "server",
        "1.0.0",
        "Returns the number of keys in the database.",
    ),
    spec(
        "flushall",
        -1,
        &["write"],
        NONE,
        "server",
        "1.0.0",
        "Removes all keys from all databases.",
    ),
    spec(
        "flushdb",
        -1,
        &["write"],
        NONE,
        "server",
        "1.0.0",
        "Remove all keys from the current database.",
    ),
    spec(
        "time",
        1,
        &["loading", "stale", "fast"],
        NONE,
        "server",
        "2.6.0",
        "Returns the server time.",
    ),
    spec(
        "shutdown",
        -1,
        &[
            "admin",
            "noscript",
            "loading",
            "stale",
            "no_multi",
            "allow_busy",
        ],
        NONE,
        "server",
        "1.0.0",
        "Stops the server.",
    ),
    spec(
        "ring",
        -2,
        &["admin", "loading", "stale"],
        NONE,
        "server",
        "ringcache",
        "Shows the cluster's members (NODES), the ring (INFO) or a key's replicas (REPLICAS key).",
    ),
    spec(
        "get",
        2,
        RF,
        ONE_KEY,
        "string",
        "1.0.0",
        "Returns the string value of a key.",
    ),
    spec(
        "set",
        -3,
        W,
        ONE_KEY,
        "string",
        "1.0.0",
        "Sets the string value of a key, ignoring its type.",
    ),
    spec(
        "setnx",
        3,
        WF,
        ONE_KEY,
        "string",
        "1.0.0",
        "Set the string value of a key only when the key doesn't exist.",
    ),
    spec(
        "setex",
        4,
        W,
        ONE_KEY,
        "string",
        "2.0.0",
        "Sets the string value and expiration time of a key.",
    ),
    spec(
        "psetex",
        4,
        W,
        ONE_KEY,
        "string",
        "2.6.0",
        "Sets both string value and expiration time in milliseconds of a key.",
    ),
    spec(
        "getset",
        3,
        WF,
        ONE_KEY,
        "string",
        "1.0.0",
        "Returns the previous string value of a key after setting it to a new value.",
    ),
    spec(
        "getdel",
        2,
        WRF,
        ONE_KEY,
        "string",
        "6.2.0",
        "Returns the string value of a key after deleting the key.",
    ),
    spec(
        "getex",
        -2,
        WRF,
        ONE_KEY,
        "string",
        "6.2.0",
        "Returns the string value of a key after setting its expiration time.",
    ),
    spec(
        "mget",
        -2,
        RF,
        ALL_KEYS,
        "string",
        "1.0.0",
        "Atomically returns the string values of one or more keys.",
    ),
    spec(
        "mset",
        -3,
        W,
        PAIRS,
        "string",
        "1.0.1",
        "Atomically creates or modifies the string values of one or more keys.",
    ),
    spec(
        "msetnx",
        -3,
        W,
        PAIRS,
        "string",
        "1.0.1",
        "Atomically modifies the string values of one or more keys only when all keys don't exist.",
    ),
    spec(
        "strlen",
        2,
        RF,
        ONE_KEY,
        "string",
        "2.2.0",
        "Returns the length of a string value.",
    ),
    spec(
        "append",
        3,
        WF,
        ONE_KEY,
        "string",
        "2.0.0",
        "Appends a string to the value of a key. Creates the key if it doesn't exist.",
    ),
    spec(
        "getrange",
        4,
        R,
        ONE_KEY,
        "string",
        "2.4.0",
        "Returns a substring of the string stored at a key.",
    ),
    spec(
        "substr",
        4,
        R,
        ONE_KEY,
        "string",
        "1.0.0",
        "Returns a substring from a string value.",
    ),
    spec(
        "setrange",
        4,
        W,
        ONE_KEY,
        "string",
        "2.2.0",
        "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
    ),
    spec(
        "incr",
        2,
        WF,
        ONE_KEY,
        "string",
        "1.0.0",
        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "decr",
        2,
        WF,
        ONE_KEY,
        "string",
        "1.0.0",
        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "incrby",
        3,
        WF,
        ONE_KEY,
        "string",
        "1.0.0",
        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "decrby",
        3,
        WF,
        ONE_KEY,
        "string",
        "1.0.0",
        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "incrbyfloat",
        3,
        WF,
        ONE_KEY,
        "string",
        "2.6.0",
        "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    ),
    spec(
        "del",
        -2,
        &["write"],
        ALL_KEYS,
        "generic",
        "1.0.0",
        "Deletes one or more keys.",
    ),
    spec(
        "unlink",
        -2,
        WRF,
        ALL_KEYS,
        "generic",
        "4.0.0",
        "Asynchronously deletes one or more keys.",
    ),
    spec(
        "exists",
        -2,
        RF,
        ALL_KEYS,
        "generic",
        "1.0.0",
        "Determines whether one or more keys exist.",
    ),
    spec(
        "type",
        2,
        RF,
        ONE_KEY,
        "generic",
        "1.0.0",
        "Determines the type of value stored at a key.",
    ),
    spec(
        "touch",
        -2,
        RF,
        ALL_KEYS,
        "generic",
        "3.2.1",
        "Returns the number of existing keys out of those specified after updating the time they were last accessed.",
    ),
    spec(
        "expire",
        -3,
        WRF,
        ONE_KEY,
        "generic",
        "1.0.0",
        "Sets the expiration time of a key in seconds.",
    ),
    spec(
        "pexpire",
        -3,
        WRF,
        ONE_KEY,
        "generic",
        "2.6.0",
        "Sets the expiration time of a key in milliseconds.",
    ),
    spec(
        "expireat",
        -3,
        WRF,
        ONE_KEY,
        "generic",
        "1.2.0",
        "Sets the expiration time of a key to a Unix timestamp.",
    ),
    spec(
        "pexpireat",
        -3,
        WRF,
        ONE_KEY,
        "generic",
        "2.6.0",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
    ),
    spec(
        "ttl",
        2,
        RF,
        ONE_KEY,
        "generic",
        "1.0.0",
        "Returns the expiration time in seconds of a key.",
    ),
    spec(
        "pttl",
        2,
        RF,
        ONE_KEY,
        "generic",
        "2.6.0",
        "Returns the expiration time in milliseconds of a key.",
    ),
    spec(
        "expiretime",
        2,
        RF,
        ONE_KEY,
        "generic",
        "7.0.0",
        "Returns the expiration time of a key as a Unix timestamp.",
    ),
    spec(
        "pexpiretime",
        2,
        RF,
        ONE_KEY,
        "generic",
        "7.0.0",
        "Returns the expiration time of a key as a Unix milliseconds timestamp.",
    ),
    spec(
        "persist",
        2,
        WRF,
        ONE_KEY,
        "generic",
        "2.2.0",
        "Removes the expiration time of a key.",
    ),
    spec(
        "keys",
        2,
        R,
        NONE,
        "generic",
        "1.0.0",
        "Returns all key names that match a pattern.",
    ),
    spec(
        "scan",
        -2,
        R,
        NONE,
        "generic",
        "2.8.0",
        "Iterates over the key names in the database.",
    ),
    spec(
        "randomkey",
        1,
        R,
        NONE,
        "generic",
        "1.0.0",
        "Returns a random key name from the database.",
    ),
];

/// The spec of a command by lowercase name.
pub fn find(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|spec| spec.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_are_unique_and_lowercase() {
        let mut names: Vec<_> = COMMANDS.iter().map(|c| c.name).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| !c.is_ascii_uppercase()))
        );
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
