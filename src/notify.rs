//! Keyspace notifications (`notify-keyspace-events`), as Redis 7.0 sends them: for an event
//! on a key, a message on `__keyspace@0__:<key>` carrying the event's name (flag `K`) and one
//! on `__keyevent@0__:<event>` carrying the key (flag `E`), when the event's class is selected.
//!
//! # Where events come from
//! - The executors, as Redis's `notifyKeyspaceEvent` calls sit in its commands: [`emit`]
//!   (`hset`, `srem`, `lpush`, `zincr`, `rename_from`...), in Redis's order for one command
//!   (`LMOVE`: `lpush` on the destination, then `lpop` on the source).
//! - [`Watching`], the records every key command reads and writes through while events are
//!   collected: `new` (class `n`) when a write makes a key exist, `keymiss` (class `m`) when a
//!   read finds none (reads of write commands excepted, as Redis's `lookupKeyWrite`).
//! - [`emptied`]: a collection command that removed the last element marks the key; the `del`
//!   Redis sends then follows the command's own event on that key.
//! - [`Pending`]: the string and generic commands, whose events follow from their name and
//!   reply (`set`, `incrby`, `del`, `expire`...).
//! - The store: `expired` (class `x`) for each key it reclaims on expiry, once, lazily or in
//!   the sweep ([`publish_expired`]); `evicted` (class `e`) for each eviction.
//!
//! A command's events are collected in a task-local list while it runs ([`collect`],
//! [`collect_async`]) and published once it answered, so nothing is sent for a command whose
//! events are off (the collector is not even set up) and a coordinator's events go out once.
//! The node that runs a command (in a cluster, its coordinator) publishes its events as a
//! `PUBLISH` would, so the subscribers of every node get them; an eviction or an expiry is one
//! node's own (each replica expires its own copy) and is published there only.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use bytes::{BufMut, Bytes, BytesMut};
use ringcache_storage::{Record, StoreError, Update};

use crate::exec::Records;
use crate::node::Node;

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

/// The events a successful string or generic write command sends for each of its keys, in
/// order, with their classes; empty for a command whose executor sends its own (or none).
pub fn command_events(name: &str, args: &[Bytes]) -> Vec<(Class, &'static str)> {
    let has_ttl = || {
        args.iter().skip(3).any(|a| {
            [&b"EX"[..], b"PX", b"EXAT", b"PXAT"]
                .iter()
                .any(|w| a.eq_ignore_ascii_case(w))
        })
    };
    let ttl_word = |word: &[u8]| args.get(2).is_some_and(|a| a.eq_ignore_ascii_case(word));
    match name {
        "set" if has_ttl() => vec![(Class::STRING, "set"), (Class::GENERIC, "expire")],
        "setex" | "psetex" => vec![(Class::STRING, "set"), (Class::GENERIC, "expire")],
        "set" | "setnx" | "getset" | "mset" | "msetnx" => vec![(Class::STRING, "set")],
        "incr" | "decr" | "incrby" | "decrby" => vec![(Class::STRING, "incrby")],
        "incrbyfloat" => vec![(Class::STRING, "incrbyfloat")],
        "append" => vec![(Class::STRING, "append")],
        "setrange" => vec![(Class::STRING, "setrange")],
        "del" | "unlink" | "getdel" => vec![(Class::GENERIC, "del")],
        "getex" if ttl_word(b"PERSIST") => vec![(Class::GENERIC, "persist")],
        "getex" if args.len() > 2 => vec![(Class::GENERIC, "expire")],
        "persist" => vec![(Class::GENERIC, "persist")],
        _ => Vec::new(),
    }
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
    /// The events each key gets, in order.
    events: Vec<(Class, &'static str)>,
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
        let flags = notifications.get();
        let mut events = command_events(name, args);
        let deletes = events.first().is_some_and(|(_, e)| *e == "del");
        events.retain(|(class, _)| flags & class.0 != 0);
        if events.is_empty() {
            return None;
        }
        let keys: Vec<Bytes> = match (deletes, exists) {
            (true, Some(exists)) => keys.filter(|k| exists(k)).collect(),
            _ => keys.collect(),
        };
        Some(Pending {
            events,
            unchanged: Unchanged::of(name, args),
            keys,
        })
    }

    /// The events to send once the command answered `reply`: none when it failed or
    /// changed nothing (`SET ... NX` not set, `PERSIST` of a missing key, `DEL` of none).
    pub fn events(self, reply: &ringcache_resp::Reply) -> Vec<(Class, &'static str, Bytes)> {
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
        let events = &self.events;
        self.keys
            .iter()
            .flat_map(|key| events.iter().map(|(c, e)| (*c, *e, key.clone())))
            .collect()
    }
}

/// `ZREMRANGEBY...`'s event.
pub fn zremrange_event(by: &ringcache_resp::cmd::zset::RangeBy) -> &'static str {
    use ringcache_resp::cmd::zset::RangeBy;
    match by {
        RangeBy::Rank { .. } => "zremrangebyrank",
        RangeBy::Score(_) => "zremrangebyscore",
        RangeBy::Lex(_) => "zremrangebylex",
    }
}

/// Emits a store command's `event` (`zunionstore`...) on `destination` when it stored
/// `count > 0` elements (an empty result deleted it instead: `del`, or nothing); returns
/// `count`.
pub fn stored(event: &'static str, destination: &[u8], count: usize) -> usize {
    if count > 0 {
        let class = match event.as_bytes()[0] {
            b'z' => Class::ZSET,
            _ => Class::SET,
        };
        emit(class, event, destination);
    }
    count
}

/// What one command emitted so far.
#[derive(Debug, Default)]
struct Collected {
    /// The classes selected when the command started.
    flags: u32,
    /// `(class, event, key)` in the order emitted.
    events: Vec<(Class, &'static str, Bytes)>,
    /// Keys whose collection the command emptied, whose `del` follows its next event.
    emptied: Vec<Bytes>,
    /// Which of its reads report `keymiss`.
    misses: Misses,
    /// The command's first key: the destination [`Misses::Sources`] does not report, the
    /// source [`Misses::First`] does.
    destination: Option<Bytes>,
}

tokio::task_local! {
    /// The events of the command this task runs (set only while events are selected).
    static COLLECTED: RefCell<Collected>;
}

/// Most events one command collects: a multi-key command sends a few per key, and its keys
/// are bounded by the query buffer; past this (a runaway script's single command cannot get
/// here) events are dropped rather than grown without bound.
pub const EVENTS_PER_COMMAND_MAX: usize = 1 << 16;

/// Emits `event` of `class` on `key` for the command running on this task; nothing when no
/// command collects or the class is off.
pub fn emit(class: Class, event: &'static str, key: &[u8]) {
    let _ = COLLECTED.try_with(|collected| {
        let mut collected = collected.borrow_mut();
        let c = &mut *collected;
        if c.events.len() >= EVENTS_PER_COMMAND_MAX {
            return;
        }
        if c.flags & class.0 != 0 {
            c.events.push((class, event, Bytes::copy_from_slice(key)));
        }
        if event != "del"
            && let Some(at) = c.emptied.iter().position(|k| k.as_ref() == key)
        {
            let key = c.emptied.swap_remove(at);
            if c.flags & Class::GENERIC.0 != 0 {
                c.events.push((Class::GENERIC, "del", key));
            }
        }
    });
}

/// Marks `key` as a collection the running command emptied: Redis deletes it and sends
/// `del` right after the command's own event on it.
pub fn emptied(key: &[u8]) {
    let _ = COLLECTED.try_with(|collected| {
        let mut collected = collected.borrow_mut();
        if !collected.emptied.iter().any(|k| k.as_ref() == key) {
            collected.emptied.push(Bytes::copy_from_slice(key));
        }
    });
}

/// Whether the running command collects events.
pub fn collecting() -> bool {
    COLLECTED.try_with(|_| ()).is_ok()
}

/// Runs `command` collecting its events when any are selected; returns its result and them.
pub fn collect<T>(
    notifications: &Notifications,
    (misses, destination): (Misses, Option<Bytes>),
    command: impl FnOnce() -> T,
) -> (T, Vec<(Class, &'static str, Bytes)>) {
    if !notifications.any() {
        return (command(), Vec::new());
    }
    let cell = RefCell::new(Collected {
        flags: notifications.get(),
        misses,
        destination,
        ..Collected::default()
    });
    // `sync_scope` hands the cell back only through the closure: take it out there.
    COLLECTED.sync_scope(cell, || {
        let out = command();
        let events = COLLECTED.with(|c| std::mem::take(&mut c.borrow_mut().events));
        (out, events)
    })
}

/// As [`collect`], for a command that awaits (a coordinator's).
pub async fn collect_async<T>(
    notifications: &Notifications,
    (misses, destination): (Misses, Option<Bytes>),
    command: impl std::future::Future<Output = T>,
) -> (T, Vec<(Class, &'static str, Bytes)>) {
    if !notifications.any() {
        return (command.await, Vec::new());
    }
    let cell = RefCell::new(Collected {
        flags: notifications.get(),
        misses,
        destination,
        ..Collected::default()
    });
    COLLECTED
        .scope(cell, async {
            let out = command.await;
            let events = COLLECTED.with(|c| std::mem::take(&mut c.borrow_mut().events));
            (out, events)
        })
        .await
}

/// The messages of `events`, merged with a command's `pending` ones (from its name and reply):
/// each pending event goes right after the last collected one on its key (`new k`, then
/// `set k`), the rest at the end, in order.
pub fn messages(
    notifications: &Notifications,
    mut events: Vec<(Class, &'static str, Bytes)>,
    pending: Vec<(Class, &'static str, Bytes)>,
) -> Vec<(Bytes, Bytes)> {
    for event in pending {
        match events.iter().rposition(|(_, _, k)| *k == event.2) {
            Some(at) => events.insert(at + 1, event),
            None => events.push(event),
        }
    }
    events
        .iter()
        .flat_map(|(class, event, key)| notifications.messages(*class, event, key))
        .collect()
}

/// Selects the classes of `flags` (from [`parse_classes`]) on `node`; the store notes the
/// keys it reclaims on expiry only while `expired` events are selected.
pub fn select(node: &Node, flags: u32) {
    node.notifications.set(flags);
    let expired = flags & Class::EXPIRED.0 != 0 && node.notifications.any();
    if let Some(queue) = node.store.expired_keys() {
        queue.set_noting(expired);
    }
}

/// Publishes the `expired` events of the keys the store reclaimed since the last call, to
/// this node's subscribers only (each replica expires its own copy). Called after each
/// command, before its own events (a command that found its key expired sends `expired`
/// first, as Redis), and after each step of the sweep.
pub fn publish_expired(node: &Node) {
    let Some(queue) = node.store.expired_keys() else {
        return;
    };
    for key in queue.take() {
        for (channel, payload) in node.notifications.messages(Class::EXPIRED, "expired", &key) {
            node.pubsub.deliver(&channel, &payload);
        }
    }
}

/// Which reads of a command report `keymiss`, as Redis's lookups do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Misses {
    /// A read command (`lookupKeyRead`): every miss (`EXISTS`, `TTL`, `TYPE` included).
    All,
    /// A command storing into its first key from the others (`SINTERSTORE`, `BITOP`...):
    /// misses of the sources only.
    Sources,
    /// `COPY`: its source only (the destination is looked up for writing).
    First,
    /// A write command (`lookupKeyWrite`): none.
    #[default]
    None,
}

impl Misses {
    /// The rule of the command `name`, which reads only (`read_only`) or writes. (`PFMERGE`
    /// reads its destination as Redis's `lookupKeyRead` too.)
    pub fn of(name: &str, read_only: bool) -> Misses {
        match name {
            "pfmerge" => Misses::All,
            "copy" => Misses::First,
            "sinterstore" | "sunionstore" | "sdiffstore" | "zunionstore" | "zinterstore"
            | "zdiffstore" | "zrangestore" | "bitop" | "sort" | "georadius" => Misses::Sources,
            _ if read_only => Misses::All,
            _ => Misses::None,
        }
    }
}

/// The records of a command that collects events, which adds those a read or write itself
/// tells: `new` when a write makes a key exist, `keymiss` when a read finds no key (by the
/// command's [`Misses`]).
pub struct Watching<'a> {
    inner: &'a dyn Records,
}

impl<'a> Watching<'a> {
    /// `inner`, watched.
    pub fn new(inner: &'a dyn Records) -> Self {
        Watching { inner }
    }

    fn read(&self, key: &[u8], now_ms: u64, record: Option<Record>) -> Option<Record> {
        if !record.as_ref().is_some_and(|r| r.is_live(now_ms)) {
            let _ = COLLECTED.try_with(|collected| {
                let c = collected.borrow();
                let reported = match c.misses {
                    Misses::All => true,
                    Misses::Sources => c.destination.as_deref() != Some(key),
                    Misses::First => c.destination.as_deref() == Some(key),
                    Misses::None => false,
                };
                drop(c);
                if reported {
                    emit(Class::KEY_MISS, "keymiss", key);
                }
            });
        }
        record
    }
    fn written(key: &[u8], now_ms: u64, was_live: bool, after: &Option<Record>) {
        if !was_live && after.as_ref().is_some_and(|r| r.is_live(now_ms)) {
            emit(Class::NEW, "new", key);
        }
    }
}

impl Records for Watching<'_> {
    fn get(&self, key: &[u8], now_ms: u64) -> Option<Record> {
        self.read(key, now_ms, self.inner.get(key, now_ms))
    }

    fn peek(&self, key: &[u8], now_ms: u64) -> Option<Record> {
        self.read(key, now_ms, self.inner.peek(key, now_ms))
    }

    fn update(
        &self,
        key: &[u8],
        now_ms: u64,
        decide: &mut dyn FnMut(Option<&Record>) -> Update,
    ) -> Result<Option<Record>, StoreError> {
        let mut was_live = false;
        let after = self.inner.update(key, now_ms, &mut |current| {
            was_live = current.is_some_and(|r| r.is_live(now_ms));
            decide(current)
        })?;
        Self::written(key, now_ms, was_live, &after);
        Ok(after)
    }

    fn update_in_place(
        &self,
        key: &[u8],
        now_ms: u64,
        edit: &mut dyn FnMut(&mut Record) -> bool,
    ) -> Result<Option<Record>, StoreError> {
        let mut was_live = false;
        let after = self.inner.update_in_place(key, now_ms, &mut |record| {
            was_live = record.is_live(now_ms);
            edit(record)
        })?;
        Self::written(key, now_ms, was_live, &after);
        Ok(after)
    }

    fn key_use(&self, key: &[u8], now_ms: u64) -> Option<ringcache_storage::KeyUse> {
        self.inner.key_use(key, now_ms)
    }
}
