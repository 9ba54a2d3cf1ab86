//! Anti-entropy, sans-IO: a [`Session`] brings one peer and this node to the same records for
//! some token ranges; a [`Round`] runs sessions with every other replica of those ranges, so
//! that afterwards each replica holds everything any of them held when the round started.
//!
//! A session compares Merkle leaves top-down (the XOR of runs of leaves, split [`FANOUT`] ways
//! where they differ, down to single leaves), then lists the keys and versions of the leaves
//! that differ on both sides, then pulls the records the peer has newer and pushes those this
//! node has newer. Only differing keys move; the cost of finding them is a few round trips and
//! about 16 bytes per leaf compared. Leaves at a range's edges also hold keys of the next
//! range, which other nodes may replicate: those are compared key by key, clipped to the range.
//!
//! The caller owns the IO: it sends what [`Session::next_request`] returns to the peer, gives
//! the answer to [`Session::on_reply`], and applies the pulled records through the closure it
//! passes (where it can refuse one, e.g. a value for a key it evicted while full).

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use ringcache_storage::aae::{
    MERKLE_LEAVES, leaf_first_token, leaf_last_token, leaf_of, record_digest,
};
use ringcache_storage::{DataType, Record, Store, Summary, TombstoneHorizon, Value, key_token};

use crate::protocol::Message;
use crate::protocol::message::{
    DIGEST_SPANS_MAX, FETCH_KEYS_MAX, VERSION_KEYS_MAX, VERSION_SPANS_MAX,
};
use crate::ring::{NodeId, Ring, TokenRange};
use crate::transfer::in_ranges;

mod history;
pub use history::{
    RangeId, RepairHistory, my_ranges, range_id, replicas_hash, tombstone_margin_ms,
};

/// How many parts a differing run of leaves is split into at the next level down.
pub const FANOUT: u32 = 16;
/// Bytes of records one [`Message::RepairWrite`] carries at most (beside its count bound),
/// so that a push of large values goes in several messages.
pub const PUSH_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of keys and values an answer to [`Message::Fetch`] or [`Message::Versions`] holds at
/// most, unless one record alone is larger (it then goes alone, within the frame limit).
pub const REPLY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Tokens in one Merkle leaf: a key list is never asked for less than this.
const LEAF_WIDTH: u64 = 1 << (64 - ringcache_storage::aae::MERKLE_LEAF_BITS);
/// Key lists a session asks again smaller before it gives up for this round.
const REASKS_MAX: u32 = 1_024;

/// A range's tokens as inclusive spans that do not wrap past `u64::MAX`.
pub fn range_spans(range: &TokenRange) -> Vec<(u64, u64)> {
    if range.start == range.end {
        return vec![(0, u64::MAX)]; // A ring of one token.
    }
    if range.start < range.end {
        return vec![(range.start + 1, range.end)];
    }
    // Wraps past u64::MAX.
    let mut spans = vec![(0, range.end)];
    if range.start < u64::MAX {
        spans.push((range.start + 1, u64::MAX));
    }
    spans
}

/// An answer to one of a session's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// To [`Message::Digests`].
    Digests(Vec<u64>),
    /// To [`Message::Versions`].
    Versions {
        /// The list stopped short of every key.
        truncated: bool,
        /// Keys and versions (values empty).
        headers: Vec<(Bytes, Record)>,
    },
    /// To [`Message::Fetch`]: the records the peer holds among the keys it looked at.
    Records {
        /// The records.
        records: Vec<(Bytes, Record)>,
        /// The index of the first key asked for that the peer did not look at (its answer
        /// was full), or 0 when it looked at them all.
        rest_from: u64,
    },
    /// To [`Message::RepairWrite`].
    Ack,
}

impl Reply {
    /// The reply a peer message carries, if it is one.
    pub fn from_message(message: Message) -> Option<Reply> {
        Some(match message {
            Message::DigestsReply { digests } => Reply::Digests(digests),
            Message::VersionsReply { truncated, headers } => Reply::Versions { truncated, headers },
            Message::StreamReply { cursor, records } => Reply::Records {
                records,
                rest_from: cursor,
            },
            Message::WriteAck => Reply::Ack,
            _ => return None,
        })
    }
}

/// Why a session ended early; its ranges are not repaired this round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The peer's answer does not fit what was asked.
    #[error("the peer's answer does not fit the repair request")]
    UnexpectedReply,
    /// This node's store could not take a record.
    #[error("the local store could not take a repaired record")]
    StoreFailed,
}

/// What became of a record repair brought, as the store's owner says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Merged, and it changed the store.
    Changed,
    /// Merged, nothing changed (already held, or dead since a flush).
    Unchanged,
    /// Not taken on purpose: a live value for a key this node evicted while full. Never a
    /// tombstone, so the range may still count as repaired.
    Refused,
    /// The store failed: the session fails.
    Failed,
}

/// What a session (or a round) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepairStats {
    /// Leaf runs compared by digest.
    pub spans_compared: u64,
    /// Single leaves found different.
    pub leaves_differing: u64,
    /// Keys whose versions were compared.
    pub keys_compared: u64,
    /// Records taken from the peer that changed this node's store.
    pub keys_pulled: u64,
    /// Live elements (hash fields, set and sorted-set members, list items) of the
    /// collections among them: a collection moves whole and merges cell by cell.
    pub elements_pulled: u64,
    /// Records sent to the peer because this node had them newer.
    pub keys_pushed: u64,
    /// Records pulled but refused by the store's owner (see [`Session::on_reply`]).
    pub keys_refused: u64,
    /// Bytes of requests and answers, payloads only.
    pub bytes: u64,
}

impl RepairStats {
    /// Adds another session's figures.
    pub fn add(&mut self, other: &RepairStats) {
        self.spans_compared += other.spans_compared;
        self.leaves_differing += other.leaves_differing;
        self.keys_compared += other.keys_compared;
        self.keys_pulled += other.keys_pulled;
        self.elements_pulled += other.elements_pulled;
        self.keys_pushed += other.keys_pushed;
        self.keys_refused += other.keys_refused;
        self.bytes += other.bytes;
    }
}

#[derive(Debug)]
enum Asked {
    Nothing,
    Digests(Vec<(u32, u32)>),
    EdgeDigests(Vec<(u64, u64)>),
    Versions(Vec<(u64, u64)>),
    Fetch(Vec<Bytes>),
    Push,
}

/// One peer, some ranges: see the module docs.
#[derive(Debug)]
pub struct Session {
    /// Leaf runs still to compare at this level, and those found different, to split next.
    digest_queue: Vec<(u32, u32)>,
    next_level: Vec<(u32, u32)>,
    /// Parts of leaves at the ranges' edges, to compare by a digest of their records first.
    edge_spans: Vec<(u64, u64)>,
    /// Token spans to compare key by key; sorted once the digests are done.
    key_spans: Vec<(u64, u64)>,
    keys_started: bool,
    pulls: Vec<Bytes>,
    pushes: Vec<Bytes>,
    asked: Asked,
    /// Token spans per key-list request: halved when a peer's list was cut short.
    versions_batch: usize,
    /// Key lists asked again smaller so far.
    reasks: u32,
    truncated: bool,
    horizon: TombstoneHorizon,
    stats: RepairStats,
}

impl Session {
    /// A session over `spans` (inclusive token spans, sorted, disjoint, as [`range_spans`]
    /// gives). `horizon` is this node's tombstone horizon: a tombstone it allows to drop,
    /// held on one side only, is not copied to the other (it is on its way out everywhere).
    pub fn new(spans: &[(u64, u64)], horizon: TombstoneHorizon) -> Session {
        let mut digest_queue = Vec::new();
        let mut edge_spans = Vec::new();
        for &(first, last) in spans {
            let (first_leaf, last_leaf) = (leaf_of(first), leaf_of(last));
            let starts_on_leaf = leaf_first_token(first_leaf) == first;
            let ends_on_leaf = leaf_last_token(last_leaf) == last;
            // Leaves wholly inside the span are compared by their kept digests; the parts of
            // the edge leaves inside it by a digest of their records, computed when asked.
            if first_leaf == last_leaf {
                if starts_on_leaf && ends_on_leaf {
                    digest_queue.push((first_leaf, last_leaf));
                } else {
                    edge_spans.push((first, last));
                }
                continue;
            }
            let whole_from = if starts_on_leaf {
                first_leaf
            } else {
                edge_spans.push((first, leaf_last_token(first_leaf)));
                first_leaf + 1
            };
            // last_leaf > first_leaf >= 0 here.
            let whole_to = if ends_on_leaf {
                last_leaf
            } else {
                edge_spans.push((leaf_first_token(last_leaf), last));
                last_leaf - 1
            };
            if whole_from <= whole_to {
                digest_queue.push((whole_from, whole_to));
            }
        }
        Session {
            digest_queue,
            next_level: Vec::new(),
            edge_spans,
            key_spans: Vec::new(),
            keys_started: false,
            pulls: Vec::new(),
            pushes: Vec::new(),
            asked: Asked::Nothing,
            versions_batch: VERSION_SPANS_MAX,
            reasks: 0,
            truncated: false,
            horizon,
            stats: RepairStats::default(),
        }
    }

    /// What the session did so far.
    pub fn stats(&self) -> &RepairStats {
        &self.stats
    }

    /// Whether every key of the ranges was compared: false when a peer's key list stopped
    /// short, so the ranges are not repaired yet (the next round goes on).
    pub fn is_complete(&self) -> bool {
        !self.truncated
    }

    /// The next request for the peer; `None` when the session is over. Call it again only
    /// after [`Session::on_reply`] took the answer to the last one.
    pub fn next_request(&mut self, store: &dyn Store, now_ms: u64) -> Option<Message> {
        debug_assert!(matches!(self.asked, Asked::Nothing));
        if self.digest_queue.is_empty() {
            self.digest_queue = std::mem::take(&mut self.next_level);
        }
        if !self.digest_queue.is_empty() {
            let take = self.digest_queue.len().min(DIGEST_SPANS_MAX);
            let spans: Vec<(u32, u32)> = self.digest_queue.drain(..take).collect();
            self.asked = Asked::Digests(spans.clone());
            return self.sent(Message::Digests { spans });
        }
        if !self.edge_spans.is_empty() {
            let take = self.edge_spans.len().min(VERSION_SPANS_MAX);
            let spans: Vec<(u64, u64)> = self.edge_spans.drain(..take).collect();
            self.asked = Asked::EdgeDigests(spans.clone());
            return self.sent(Message::SpanDigests { spans });
        }
        if !self.keys_started {
            self.keys_started = true;
            self.key_spans.sort_unstable();
            self.key_spans.reverse(); // Taken from the end, in token order.
        }
        if !self.key_spans.is_empty() {
            let take = self.key_spans.len().min(self.versions_batch);
            let mut spans = self.key_spans.split_off(self.key_spans.len() - take);
            spans.reverse();
            self.asked = Asked::Versions(spans.clone());
            return self.sent(Message::Versions { spans });
        }
        if !self.pulls.is_empty() {
            let take = self.pulls.len().min(FETCH_KEYS_MAX);
            let keys = self.pulls.split_off(self.pulls.len() - take);
            self.asked = Asked::Fetch(keys.clone());
            return self.sent(Message::Fetch { keys });
        }
        let mut records = Vec::new();
        let mut bytes = 0;
        while let Some(key) = self.pushes.pop() {
            let Some(record) = store.peek(&key, now_ms) else {
                continue;
            };
            let size = stored_bytes(&key, &record);
            // A large value goes alone: a message never passes the peer frame limit.
            if !records.is_empty() && bytes + size > PUSH_BATCH_BYTES {
                self.pushes.push(key);
                break;
            }
            bytes += size;
            records.push((key, record));
            if records.len() == FETCH_KEYS_MAX {
                break;
            }
        }
        if records.is_empty() {
            return None;
        }
        self.stats.keys_pushed += records.len() as u64;
        self.asked = Asked::Push;
        self.sent(Message::RepairWrite { records })
    }

    fn sent(&mut self, message: Message) -> Option<Message> {
        self.stats.bytes += payload_bytes(&message);
        Some(message)
    }

    /// Takes the peer's answer to the last request. Pulled records go to `apply`, which merges
    /// one into the local store and says what became of it.
    ///
    /// # Errors
    /// The answer does not fit the request, or the store failed to take a record: the session
    /// is over, and its ranges are not repaired.
    pub fn on_reply(
        &mut self,
        reply: Reply,
        store: &dyn Store,
        now_ms: u64,
        apply: &mut dyn FnMut(&Bytes, &Record) -> Taken,
    ) -> Result<(), SessionError> {
        let asked = std::mem::replace(&mut self.asked, Asked::Nothing);
        match (asked, reply) {
            (Asked::Digests(spans), Reply::Digests(digests)) if digests.len() == spans.len() => {
                self.stats.bytes += 4 + 8 * digests.len() as u64;
                self.compare_digests(store, &spans, &digests);
            }
            (Asked::EdgeDigests(spans), Reply::Digests(digests))
                if digests.len() == spans.len() =>
            {
                self.stats.bytes += 4 + 8 * digests.len() as u64;
                let mine = span_digests(store, &spans, now_ms);
                for ((span, theirs), mine) in spans.into_iter().zip(digests).zip(mine) {
                    self.stats.spans_compared += 1;
                    if theirs != mine {
                        self.key_spans.push(span);
                    }
                }
            }
            (Asked::Versions(spans), Reply::Versions { truncated, headers }) => {
                self.stats.bytes += 5 + headers
                    .iter()
                    .map(|(k, _)| 4 + k.len() as u64 + 25)
                    .sum::<u64>();
                if truncated {
                    self.ask_again_smaller(spans);
                } else {
                    self.compare_keys(store, now_ms, &spans, headers);
                }
            }
            (Asked::Fetch(keys), Reply::Records { records, rest_from }) => {
                let asked: HashSet<&Bytes> = keys.iter().collect();
                for (key, record) in &records {
                    if !asked.contains(key) {
                        return Err(SessionError::UnexpectedReply);
                    }
                    self.stats.bytes += record_bytes(key, record);
                    match apply(key, record) {
                        Taken::Changed => {
                            self.stats.keys_pulled += 1;
                            self.stats.elements_pulled +=
                                record.cells().map_or(0, |c| c.live_count() as u64);
                        }
                        Taken::Unchanged => {}
                        Taken::Refused => self.stats.keys_refused += 1,
                        Taken::Failed => return Err(SessionError::StoreFailed),
                    }
                }
                // A full answer: the keys it did not look at are asked again.
                match usize::try_from(rest_from).ok().filter(|&i| i > 0) {
                    None => {}
                    Some(i) if i < keys.len() => self.pulls.extend_from_slice(&keys[i..]),
                    Some(_) => return Err(SessionError::UnexpectedReply),
                }
            }
            (Asked::Push, Reply::Ack) => {}
            _ => return Err(SessionError::UnexpectedReply),
        }
        Ok(())
    }

    /// A peer's key list for `spans` was cut short: ask for fewer spans at a time, or for
    /// each half of a lone span; a span of one token that is still too much is given up
    /// (the session is then incomplete, and the next round goes on).
    fn ask_again_smaller(&mut self, spans: Vec<(u64, u64)>) {
        self.reasks += 1;
        let mut again = spans;
        if again.len() == 1 {
            let (first, last) = again[0];
            // Splitting further than a leaf, or again and again, means a peer that lists
            // far more than a leaf can hold (or answers wrongly): give up for this round.
            if last - first < LEAF_WIDTH || self.reasks > REASKS_MAX {
                self.truncated = true;
                return;
            }
            let middle = first + (last - first) / 2;
            again = vec![(first, middle), (middle + 1, last)];
        }
        self.versions_batch = (again.len() / 2).max(1);
        // Taken from the end, in token order.
        self.key_spans.extend(again.into_iter().rev());
    }

    fn compare_digests(&mut self, store: &dyn Store, spans: &[(u32, u32)], remote: &[u64]) {
        let leaves = store.merkle();
        for (&(first, last), &theirs) in spans.iter().zip(remote) {
            self.stats.spans_compared += 1;
            if leaves.span_digest(first, last) == theirs {
                continue;
            }
            if first == last {
                self.stats.leaves_differing += 1;
                self.key_spans
                    .push((leaf_first_token(first), leaf_last_token(last)));
                continue;
            }
            let width = u64::from(last - first) + 1;
            let step = width.div_ceil(u64::from(FANOUT));
            let mut from = u64::from(first);
            while from <= u64::from(last) {
                let to = (from + step - 1).min(u64::from(last));
                self.next_level.push((from as u32, to as u32));
                from = to + 1;
            }
        }
    }

    fn compare_keys(
        &mut self,
        store: &dyn Store,
        now_ms: u64,
        spans: &[(u64, u64)],
        remote: Vec<(Bytes, Record)>,
    ) {
        // Ordered, so the keys to push come out in the same order in every run of a seed.
        let mut local: BTreeMap<Bytes, Record> = BTreeMap::new();
        store.visit_spans(spans, now_ms, &mut |key, record| {
            local.insert(key.clone(), versions_header(record));
        });
        let mut seen = HashSet::with_capacity(remote.len());
        for (key, theirs) in remote {
            let token = key_token(&key);
            if !in_ranges(spans, token) || !seen.insert(key.clone()) {
                continue; // Not asked for, or listed twice: a confused peer.
            }
            self.stats.keys_compared += 1;
            let (pull, push) =
                directions(local.get(&key), Some(&theirs), token, &self.horizon, now_ms);
            if pull {
                self.pulls.push(key.clone());
            }
            if push {
                self.pushes.push(key);
            }
        }
        for (key, mine) in local {
            if seen.contains(&key) {
                continue;
            }
            self.stats.keys_compared += 1;
            if directions(Some(&mine), None, key_token(&key), &self.horizon, now_ms).1 {
                self.pushes.push(key);
            }
        }
    }
}

/// Whether a key moves from the peer to this node (pull) and from this node to the peer
/// (push): each way where that side has a newer cell, or the other side has no record. A
/// tombstone the horizon lets go, held on one side only, stays where it is. At equal
/// versions a live value goes to the side that dropped it on expiry (see [`Record::merge`]).
pub fn directions(
    mine: Option<&Record>,
    theirs: Option<&Record>,
    token: u64,
    horizon: &TombstoneHorizon,
    now_ms: u64,
) -> (bool, bool) {
    match (mine, theirs) {
        (None, None) => (false, false),
        (Some(mine), None) => (false, !horizon.allows_drop(token, mine)),
        (None, Some(theirs)) => (!horizon.allows_drop(token, theirs), false),
        (Some(mine), Some(theirs)) => (newer(theirs, mine, now_ms), newer(mine, theirs, now_ms)),
    }
}

/// What a [`Message::VersionsReply`] says of a record: its versions, and for a collection a
/// [`Summary`] of its cells, since replicas can hold different cells under one header
/// version (one missed an older element write) and a shadowed write (an older `DEL`) still
/// raises a collection's clear version; other values go empty. The summary keeps the live
/// count, so [`Record::holds_value`] reads it the same.
pub fn versions_header(record: &Record) -> Record {
    let value = record.value.as_ref().map(|value| match value {
        Value::Cells(collection) => Value::Summary(Box::new(Summary::of(collection))),
        Value::Summary(summary) => Value::Summary(summary.clone()),
        // A HyperLogLog's registers merge under one version too: its digest says whether
        // two replicas' registers differ.
        Value::Bytes(bytes) if record.kind == DataType::HyperLogLog => {
            let digest = twox_hash::XxHash3_64::oneshot(bytes);
            Value::Bytes(Bytes::copy_from_slice(&digest.to_le_bytes()))
        }
        Value::Bytes(_) => Value::Bytes(Bytes::new()),
    });
    Record {
        value,
        ..record.clone()
    }
}

/// The summary of a collection's [`versions_header`].
fn summary(header: &Record) -> Option<&Summary> {
    match header.value.as_ref()? {
        Value::Summary(summary) => Some(summary),
        _ => None,
    }
}

/// Whether `a` (a [`versions_header`]) has a cell newer than `b`'s, or the live value `b`
/// dropped on expiry, or something a collection `b` lacks: collections of one type whose
/// cells differ go both ways whatever their header versions (an older header can still hold
/// an element write the newer missed), and a record of another type (a `DEL`, a `SET`)
/// newer than `b`'s clear version raises it when merged, even if it lost to `b`'s header.
fn newer(a: &Record, b: &Record, now_ms: u64) -> bool {
    let collections_differ = a.kind == b.kind
        && summary(a)
            .zip(summary(b))
            .is_some_and(|(a, b)| a.digest != b.digest || a.clear != b.clear);
    let registers_differ = a.kind == DataType::HyperLogLog
        && b.kind == DataType::HyperLogLog
        && a.bytes().zip(b.bytes()).is_some_and(|(a, b)| a != b);
    // (At `b`'s own version, `a` is the same write reclaimed on expiry: nothing to shadow.)
    let shadows = (a.kind != b.kind || a.value.is_none())
        && a.value_version != b.value_version
        && summary(b).is_some_and(|b| a.value_version > b.clear);
    a.value_version > b.value_version
        || a.expiry_version > b.expiry_version
        || (a.value_version == b.value_version
            && a.value.is_some()
            && b.value.is_none()
            && a.is_live(now_ms))
        || collections_differ
        || registers_differ
        || shadows
}

/// Bytes of a key and its value, as the answers' byte bounds count them.
fn stored_bytes(key: &Bytes, record: &Record) -> usize {
    key.len() + record.value.as_ref().map_or(0, Value::encoded_len)
}

fn record_bytes(key: &Bytes, record: &Record) -> u64 {
    (4 + key.len() + 25 + 8 + record.value.as_ref().map_or(0, |v| 4 + v.encoded_len())) as u64
}

fn payload_bytes(message: &Message) -> u64 {
    match message {
        Message::Digests { spans } => 4 + 8 * spans.len() as u64,
        Message::Versions { spans } | Message::SpanDigests { spans } => 4 + 16 * spans.len() as u64,
        Message::Fetch { keys } => 4 + keys.iter().map(|k| 4 + k.len() as u64).sum::<u64>(),
        Message::RepairWrite { records } => {
            4 + records.iter().map(|(k, r)| record_bytes(k, r)).sum::<u64>()
        }
        _ => 0,
    }
}

/// Answers a session's read request from the local store: [`Message::Digests`],
/// [`Message::SpanDigests`], [`Message::Versions`] and [`Message::Fetch`]; `None` for any
/// other message, and a [`Message::Error`] for a digest request over more leaves than the
/// ring has or span digests over overlapping spans. A key list or a fetch stops after
/// [`REPLY_BYTES_MAX`]: the key list says it was cut short, the fetch where to go on.
pub fn answer(store: &dyn Store, request: &Message, now_ms: u64) -> Option<Message> {
    Some(match request {
        Message::Digests { spans } => {
            // A session's spans at one level are disjoint: together at most every leaf once.
            // More is a confused or hostile peer making this node XOR without end.
            let leaves_asked: u64 = spans
                .iter()
                .map(|&(first, last)| u64::from(last.saturating_sub(first)) + 1)
                .sum();
            if leaves_asked > MERKLE_LEAVES as u64 {
                return Some(Message::Error {
                    text: format!(
                        "ERR a digest request over {leaves_asked} leaves (at most {MERKLE_LEAVES})"
                    ),
                });
            }
            let leaves = store.merkle();
            Message::DigestsReply {
                digests: spans
                    .iter()
                    .map(|&(first, last)| leaves.span_digest(first, last))
                    .collect(),
            }
        }
        Message::Versions { spans } => {
            let spans = normalized(spans);
            let mut headers = Vec::new();
            let mut truncated = false;
            let mut bytes = 0;
            store.visit_spans(&spans, now_ms, &mut |key, record| {
                if headers.len() == VERSION_KEYS_MAX || bytes >= REPLY_BYTES_MAX {
                    truncated = true;
                    return;
                }
                bytes += key.len();
                headers.push((key.clone(), versions_header(record)));
            });
            Message::VersionsReply { truncated, headers }
        }
        Message::SpanDigests { spans } => {
            if normalized(spans).len() != spans.len() {
                return Some(Message::Error {
                    text: "ERR span digests asked for overlapping spans".into(),
                });
            }
            Message::DigestsReply {
                digests: span_digests(store, spans, now_ms),
            }
        }
        Message::Fetch { keys } => {
            let mut records = Vec::new();
            let mut bytes = 0;
            let mut rest_from = 0;
            for (i, key) in keys.iter().enumerate() {
                let Some(record) = store.peek(key, now_ms) else {
                    continue;
                };
                let size = stored_bytes(key, &record);
                // A large value goes alone: an answer never passes the peer frame limit.
                if !records.is_empty() && bytes + size > REPLY_BYTES_MAX {
                    rest_from = i as u64;
                    break;
                }
                bytes += size;
                records.push((key.clone(), record));
            }
            Message::StreamReply {
                cursor: rest_from,
                records,
            }
        }
        _ => return None,
    })
}

/// Runs a whole session of `local` with `peer`, both stores in this process, each merging
/// what the other sends as a node's link would: for tests and simulations, which check the
/// session without a network.
///
/// # Errors
/// As [`Session::on_reply`] (never, unless a store answers wrongly).
pub fn run_in_process(
    local: &dyn Store,
    peer: &dyn Store,
    spans: &[(u64, u64)],
    horizon: TombstoneHorizon,
    now_ms: u64,
) -> Result<(RepairStats, bool), SessionError> {
    let mut session = Session::new(spans, horizon);
    while let Some(request) = session.next_request(local, now_ms) {
        let reply = match &request {
            Message::RepairWrite { records } => {
                for (key, record) in records {
                    peer.merge(key, record)
                        .map_err(|_| SessionError::StoreFailed)?;
                }
                Reply::Ack
            }
            other => answer(peer, other, now_ms)
                .and_then(Reply::from_message)
                .ok_or(SessionError::UnexpectedReply)?,
        };
        session.on_reply(
            reply,
            local,
            now_ms,
            &mut |key, record| match local.merge(key, record) {
                Ok(true) => Taken::Changed,
                Ok(false) => Taken::Unchanged,
                Err(_) => Taken::Failed,
            },
        )?;
    }
    Ok((*session.stats(), session.is_complete()))
}

/// The XOR of the digests of the records in each of `spans` (disjoint, in any order), the
/// same as [`ringcache_storage::MerkleLeaves`] counts them: one walk of the store's part that
/// holds them.
pub fn span_digests(store: &dyn Store, spans: &[(u64, u64)], now_ms: u64) -> Vec<u64> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_unstable_by_key(|&i| spans[i]);
    let sorted: Vec<(u64, u64)> = order.iter().map(|&i| spans[i]).collect();
    let mut digests = vec![0u64; spans.len()];
    store.visit_spans(&sorted, now_ms, &mut |key, record| {
        let token = key_token(key);
        let at = sorted.partition_point(|&(first, _)| first <= token);
        if let Some(i) = at.checked_sub(1)
            && token <= sorted[i].1
        {
            digests[order[i]] ^= record_digest(token, record);
        }
    });
    digests
}

/// Spans sorted, overlapping ones joined (a peer's request is not trusted to be tidy).
fn normalized(spans: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut sorted: Vec<(u64, u64)> = spans.iter().copied().filter(|(f, l)| f <= l).collect();
    sorted.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(sorted.len());
    for (first, last) in sorted {
        match out.last_mut() {
            Some(prev) if first <= prev.1 => prev.1 = prev.1.max(last),
            _ => out.push((first, last)),
        }
    }
    out
}

/// One round of anti-entropy run by one replica for some ranges: a session with each other
/// replica in turn, then again with the earlier ones if a later one gave anything (so they
/// get it too). A range is repaired when every session with each of its other replicas went
/// through and compared every key.
#[derive(Debug)]
pub struct Round {
    /// When the round started (unix ms): the time [`Message::RepairDone`] announces.
    pub started_ms: u64,
    ranges: Vec<TokenRange>,
    /// Each range's identity in the round's ring, by range index.
    ids: Vec<RangeId>,
    /// Each range's other replicas, by range index.
    replicas: Vec<Vec<NodeId>>,
    /// The peers in session order, with the ranges (indexes) each shares.
    peers: Vec<(NodeId, Vec<usize>)>,
    /// Sessions to run: peer indexes.
    queue: Vec<usize>,
    first_pass: bool,
    /// The last peer of the first pass that gave this node anything.
    last_giver: Option<usize>,
    failed: HashSet<NodeId>,
    stats: RepairStats,
}

impl Round {
    /// A round over `ranges` of `ring`, run by `me`, with `n` replicas per range.
    pub fn new(
        ring: &Ring,
        me: NodeId,
        n: usize,
        ranges: Vec<TokenRange>,
        started_ms: u64,
    ) -> Round {
        let replicas: Vec<Vec<NodeId>> = ranges
            .iter()
            .map(|range| {
                ring.preference_list(range.end, n)
                    .iter()
                    .copied()
                    .filter(|&node| node != me)
                    .collect()
            })
            .collect();
        let mut by_peer: std::collections::BTreeMap<NodeId, Vec<usize>> = Default::default();
        for (index, others) in replicas.iter().enumerate() {
            for &peer in others {
                by_peer.entry(peer).or_default().push(index);
            }
        }
        let peers: Vec<(NodeId, Vec<usize>)> = by_peer.into_iter().collect();
        let queue = (0..peers.len()).rev().collect();
        let ids = ranges.iter().map(|r| range_id(ring, r, n)).collect();
        Round {
            started_ms,
            ids,
            ranges,
            replicas,
            peers,
            queue,
            first_pass: true,
            last_giver: None,
            failed: HashSet::new(),
            stats: RepairStats::default(),
        }
    }

    /// The next peer to run a session with, and the token spans to compare (sorted); `None`
    /// when the round is over.
    pub fn next_session(&mut self) -> Option<(NodeId, Vec<(u64, u64)>)> {
        if self.queue.is_empty() && self.first_pass {
            self.first_pass = false;
            // Peers before the last giver missed what it gave: they go again.
            if let Some(giver) = self.last_giver {
                self.queue = (0..giver).rev().collect();
            }
        }
        let index = self.queue.pop()?;
        let (peer, ranges) = &self.peers[index];
        let mut spans: Vec<(u64, u64)> = ranges
            .iter()
            .flat_map(|&i| range_spans(&self.ranges[i]))
            .collect();
        spans.sort_unstable();
        Some((*peer, spans))
    }

    /// A session with `peer` ended: with its figures and whether it compared every key, or
    /// failed (`None`).
    pub fn session_done(&mut self, peer: NodeId, outcome: Option<(RepairStats, bool)>) {
        match outcome {
            Some((stats, complete)) => {
                self.stats.add(&stats);
                if !complete {
                    self.failed.insert(peer);
                }
                if self.first_pass
                    && stats.keys_pulled > 0
                    && let Some(index) = self.peers.iter().position(|(p, _)| *p == peer)
                {
                    self.last_giver = Some(index);
                }
            }
            None => {
                self.failed.insert(peer);
            }
        }
    }

    /// What the round's sessions did.
    pub fn stats(&self) -> &RepairStats {
        &self.stats
    }

    /// The ranges repaired with every replica, once the round is over.
    pub fn repaired(&self) -> Vec<TokenRange> {
        (0..self.ranges.len())
            .filter(|&i| self.is_repaired(i))
            .map(|i| self.ranges[i])
            .collect()
    }

    /// How many ranges the round covers.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// The identities of the ranges repaired with every replica, once the round is over.
    pub fn repaired_ids(&self) -> Vec<RangeId> {
        (0..self.ranges.len())
            .filter(|&i| self.is_repaired(i))
            .map(|i| self.ids[i])
            .collect()
    }

    fn is_repaired(&self, index: usize) -> bool {
        self.replicas[index]
            .iter()
            .all(|p| !self.failed.contains(p))
    }

    /// Who to tell which ranges are done, once the round is over: each other replica, with
    /// the repaired ranges it holds.
    pub fn announcements(&self) -> Vec<(NodeId, Vec<RangeId>)> {
        self.peers
            .iter()
            .map(|(peer, ranges)| {
                let ids: Vec<RangeId> = ranges
                    .iter()
                    .filter(|&&i| self.is_repaired(i))
                    .map(|&i| self.ids[i])
                    .collect();
                (*peer, ids)
            })
            .filter(|(_, ids)| !ids.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests;
