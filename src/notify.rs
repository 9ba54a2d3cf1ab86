//! Keyspace notifications (`notify-keyspace-events`), as Redis sends them: for an event on a
//! key, a message on `__keyspace@0__:<key>` carrying the event's name (flag `K`) and one on
//! `__keyevent@0__:<event>` carrying the key (flag `E`), when the event's class is selected.
//!
//! The events sent: those of the string commands (`set`, `incrby`, `incrbyfloat`, `append`,
//! `setrange`), the generic ones (`del`, `expire`, `persist`), and `evicted` (class `e`), the
//! ones a cache that invalidates copies needs. The node that runs the command (in a cluster,
//! its coordinator) publishes them as a `PUBLISH` would, so the subscribers of every node get
//! them; an eviction is one node's own and is published there only. Expiry (`expired`, class
//! `x`) happens inside the store and is not sent yet.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use bytes::{BufMut, Bytes, BytesMut};

/// An event class (Redis's letters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class(u32);

impl Class {
    /// `K`: keyspace channels.
    pub const KEYSPACE: Class = Class(1 << 0);
    /// `E`: keyevent channels.
    pub const KEYEVENT: Class = Class(1 << 1);
    /// `g`: generic commands (`del`, `expire`, `rename`...).
    pub const GENERIC: Class = Class(1 << 2);
    /// `$`: string commands.
    pub const STRING: Class = Class(1 << 3);
    /// `l`: list commands.
    pub const LIST: Class = Class(1 << 4);
    /// `s`: set commands.
    pub const SET: Class = Class(1 << 5);
    /// `h`: hash commands.
    pub const HASH: Class = Class(1 << 6);
    /// `z`: sorted set commands.
    pub const ZSET: Class = Class(1 << 7);
    /// `x`: expired keys.
    pub const EXPIRED: Class = Class(1 << 8);
    /// `e`: evicted keys.
    pub const EVICTED: Class = Class(1 << 9);
    /// `t`: stream commands.
    pub const STREAM: Class = Class(1 << 10);
    /// `m`: key misses.
    pub const KEY_MISS: Class = Class(1 << 11);
    /// `d`: module events.
    pub const MODULE: Class = Class(1 << 12);
    /// `n`: new keys.
    pub const NEW: Class = Class(1 << 13);
}

/// Redis's letters in the order `CONFIG GET` prints them, each with its class; `A` is the
/// alias of every class but `m` and `n`.
const LETTERS: [(char, Class); 13] = [
    ('g', Class::GENERIC),
    ('$', Class::STRING),
    ('l', Class::LIST),
    ('s', Class::SET),
    ('h', Class::HASH),
    ('z', Class::ZSET),
    ('x', Class::EXPIRED),
    ('e', Class::EVICTED),
    ('t', Class::STREAM),
    ('m', Class::KEY_MISS),
    ('d', Class::MODULE),
    ('n', Class::NEW),
    ('K', Class::KEYSPACE),
];

/// The classes `A` stands for.
const ALL: u32 = Class::GENERIC.0
    | Class::STRING.0
    | Class::LIST.0
    | Class::SET.0
    | Class::HASH.0
    | Class::ZSET.0
    | Class::EXPIRED.0
    | Class::EVICTED.0
    | Class::STREAM.0
    | Class::MODULE.0;

/// The classes of a `notify-keyspace-events` value, or `None` for a letter Redis refuses.
pub fn parse_classes(text: &str) -> Option<u32> {
    text.chars().try_fold(0u32, |flags, c| {
        let class = match c {
            'A' => ALL,
            'E' => Class::KEYEVENT.0,
            other => LETTERS.iter().find(|(l, _)| *l == other)?.1.0,
        };
        Some(flags | class)
    })
}

/// The value as `CONFIG GET` shows it: `A` for all of its classes, then the others, `K`,
/// `E`, in Redis's order.
pub fn classes_text(flags: u32) -> String {
    let mut text = String::new();
    let all = flags & ALL == ALL;
    if all {
        text.push('A');
    }
    for (letter, class) in LETTERS {
        let shown_by_a = all && ALL & class.0 != 0;
        if flags & class.0 != 0 && !shown_by_a {
            text.push(letter);
        }
    }
    if flags & Class::KEYEVENT.0 != 0 {
        text.push('E');
    }
    text
}

/// The node's selected classes.
#[derive(Debug, Default)]
pub struct Notifications {
    flags: AtomicU32,
}

impl Notifications {
    /// Selects the classes of `flags` (from [`parse_classes`]).
    pub fn set(&self, flags: u32) {
        self.flags.store(flags, Relaxed);
    }

    /// The selected classes.
    pub fn get(&self) -> u32 {
        self.flags.load(Relaxed)
    }

    /// The messages `(channel, payload)` of `event` in `class` on `key`, none when the class
    /// or both channel kinds are off (the common case, checked first).
    pub fn messages(&self, class: Class, event: &str, key: &Bytes) -> Vec<(Bytes, Bytes)> {
        let flags = self.get();
        if flags & class.0 == 0 || flags & (Class::KEYSPACE.0 | Class::KEYEVENT.0) == 0 {
            return Vec::new();
        }
        let mut messages = Vec::with_capacity(2);
        if flags & Class::KEYSPACE.0 != 0 {
            let mut channel = BytesMut::with_capacity(15 + key.len());
            channel.put_slice(b"__keyspace@0__:");
            channel.put_slice(key);
            messages.push((channel.freeze(), Bytes::copy_from_slice(event.as_bytes())));
        }
        if flags & Class::KEYEVENT.0 != 0 {
            let channel = format!("__keyevent@0__:{event}");
            messages.push((Bytes::from(channel), key.clone()));
        }
        messages
    }

    /// Whether any event at all is selected.
    pub fn any(&self) -> bool {
        let flags = self.get();
        flags & (Class::KEYSPACE.0 | Class::KEYEVENT.0) != 0 && flags & !3 != 0
    }
}

/// Which replies of a write command mean it changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unchanged {
    /// Any reply but an error is a change (`INCR` to 0 included).
    Never,
    /// A nil (`SET ... NX` not set).
    OnNil,
    /// A value (`SET ... NX GET` of a key that was there, so not set).
    OnValue,
    /// A nil or 0 (`EXPIRE` of a missing key, `DEL` of none, `SETNX` of one there).
    OnNilOrZero,
}

impl Unchanged {
    fn of(name: &str, args: &[Bytes]) -> Unchanged {
        let has = |word: &str| {
            args.iter()
                .skip(3)
                .any(|a| a.eq_ignore_ascii_case(word.as_bytes()))
        };
        match name {
            "incr" | "decr" | "incrby" | "decrby" | "incrbyfloat" | "append" | "setrange"
            | "getset" | "mset" => Unchanged::Never,
            // `SET ... GET` answers the old value, nil for a key that was not there.
            "set" if has("GET") && has("NX") => Unchanged::OnValue,
            "set" if has("GET") && has("XX") => Unchanged::OnNil,
            "set" if has("GET") => Unchanged::Never,
            "set" | "getdel" => Unchanged::OnNil,
            _ => Unchanged::OnNilOrZero,
        }
    }
}

/// The event a successful write command sends for each of its keys, and its class; `None`
/// for a command that sends none here.
pub fn command_event(name: &str) -> Option<(Class, &'static str)> {
    Some(match name {
        "set" | "setex" | "psetex" | "setnx" | "getset" | "mset" | "msetnx" => {
            (Class::STRING, "set")
        }
        "incr" | "decr" | "incrby" | "decrby" => (Class::STRING, "incrby"),
        "incrbyfloat" => (Class::STRING, "incrbyfloat"),
        "append" => (Class::STRING, "append"),
        "setrange" => (Class::STRING, "setrange"),
        "del" | "unlink" | "getdel" => (Class::GENERIC, "del"),
        "expire" | "pexpire" | "expireat" | "pexpireat" => (Class::GENERIC, "expire"),
        "persist" => (Class::GENERIC, "persist"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_read_and_print_as_redis_does() {
        for (given, shown) in [
            ("KEA", "AKE"),
            ("Ex", "xE"),
            ("", ""),
            ("K$g", "g$K"),
            ("Am", "AmE"),
        ] {
            let flags = parse_classes(given).expect(given);
            let shown = if given == "Am" { "Am" } else { shown };
            assert_eq!(classes_text(flags), shown, "{given}");
        }
        assert_eq!(parse_classes("KQ"), None);
    }

    #[test]
    fn an_event_goes_to_the_channels_selected() {
        let n = Notifications::default();
        let key = Bytes::from_static(b"k");
        assert!(n.messages(Class::STRING, "set", &key).is_empty());
        n.set(parse_classes("KE$").unwrap());
        let got = n.messages(Class::STRING, "set", &key);
        assert_eq!(
            got,
            vec![
                (
                    Bytes::from_static(b"__keyspace@0__:k"),
                    Bytes::from_static(b"set")
                ),
                (Bytes::from_static(b"__keyevent@0__:set"), key.clone()),
            ]
        );
        assert!(n.messages(Class::GENERIC, "del", &key).is_empty());
    }
}

/// Whether a key is there now.
pub type Exists<'a> = dyn Fn(&[u8]) -> bool + 'a;

/// A write command about to run, whose events are sent if it succeeds.
#[derive(Debug)]
pub struct Pending {
    class: Class,
    event: &'static str,
    /// Which replies mean the command changed nothing.
    unchanged: Unchanged,
    /// The keys it writes; for a delete, only those that were there.
    keys: Vec<Bytes>,
}

impl Pending {
    /// The events `name` would send for `keys`, or `None` when it sends none or none are
    /// selected. `exists` answers whether a key is there now, asked only for deletes
    /// (`DEL a b` sends `del` for the keys it removed): `None` when it cannot be known
    /// here (a coordinator), and every key is taken.
    pub fn new(
        notifications: &Notifications,
        args: &[Bytes],
        name: &str,
        keys: impl Iterator<Item = Bytes>,
        exists: Option<&Exists<'_>>,
    ) -> Option<Pending> {
        if !notifications.any() {
            return None;
        }
        let (class, event) = command_event(name)?;
        if notifications.get() & class.0 == 0 {
            return None;
        }
        let keys: Vec<Bytes> = match (event, exists) {
            ("del", Some(exists)) => keys.filter(|k| exists(k)).collect(),
            _ => keys.collect(),
        };
        Some(Pending {
            class,
            event,
            unchanged: Unchanged::of(name, args),
            keys,
        })
    }

    /// The messages to publish once the command answered `reply`: none when it failed or
    /// changed nothing (`SET ... NX` not set, `EXPIRE` of a missing key, `DEL` of none).
    pub fn messages(
        self,
        notifications: &Notifications,
        reply: &ringcache_resp::Reply,
    ) -> Vec<(Bytes, Bytes)> {
        use ringcache_resp::Reply;
        let nil = matches!(reply, Reply::Nil | Reply::NilArray);
        let changed = match (reply, self.unchanged) {
            (Reply::Error(_), _) => false,
            (_, Unchanged::Never) => true,
            (_, Unchanged::OnNil) => !nil,
            (_, Unchanged::OnValue) => nil,
            (Reply::Integer(0), Unchanged::OnNilOrZero) => false,
            (_, Unchanged::OnNilOrZero) => !nil,
        };
        if !changed {
            return Vec::new();
        }
        self.keys
            .iter()
            .flat_map(|key| notifications.messages(self.class, self.event, key))
            .collect()
    }
}
