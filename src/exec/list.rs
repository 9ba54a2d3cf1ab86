//! The list commands, with Redis 7.0's replies. A list is a collection
//! ([`super::collection`]) whose cells are keyed by a **position** and hold the item, so that
//! pushes through different nodes merge like any other cells.
//!
//! # Positions
//! List order is the byte order of positions; an index (`LINDEX`, `LRANGE`, `LSET`, `LREM`,
//! `LTRIM`, ...) is counted over the live cells in that order when the command runs, so
//! nothing is renumbered when an element comes or goes. A position is
//! ```text
//! coordinate (8) | extension (0 or more) | hlc (u64 BE) | node (u32 BE) | index (u16 BE) | 0x01
//! ```
//! - the **coordinate** is an `i64` made sortable: big-endian of `(c as u64) ^ 1 << 63`;
//! - the **suffix** (hlc, node, index, `0x01`) makes every position unique: the hlc and node
//!   are the writing command's version ([`Edit::version`], issued once), the index numbers
//!   the elements that one command writes at one prefix, and the final `0x01` means no
//!   position ends in `0x00`, which [`bisect`] relies on.
//!
//! Where a new position goes:
//! - `RPUSH`: coordinate = the last element's + 2^32 (0 in an empty list); every element of
//!   the command shares it, with indices 0, 1, 2 ... so the suffix keeps them in order.
//!   `LPUSH`: the first element's − 2^32, indices `u16::MAX − i` so that later elements sort
//!   first (`LPUSH k a b c` is `c b a`). A command with more than 2^16 elements starts a new
//!   run, with a new coordinate, every 2^16 elements ([`RUN_MAX`]).
//! - `LINSERT` between neighbours `p < q`: if their coordinates differ by 2 or more, the
//!   midpoint (no extension). Otherwise [`bisect`] finds a prefix `m` with `p < m‖x < q`
//!   for every suffix `x`, at the first byte `k` where `p` and `q` differ:
//!   - `q[k] − p[k] ≥ 2`: `p[..k]` then the byte half way between;
//!   - `q[k] = p[k] + 1` (the usual case, e.g. two elements of one push): `p` up to its
//!     first byte after `k` below `0xFF`, that byte raised half way to `0x100`; for a plain
//!     `p` that is `p` without its final `0x01`, then `0x80`;
//!   - `p` is a prefix of `q` (`q` was inserted right after `p` before): `q` up to its first
//!     non-zero byte after `p`, that byte halved (a 1 becomes `0x00 0x80`).
//!
//!   Appending to all of `p` (`p‖0x80‖suffix`) would not do: after `LINSERT AFTER p` twice,
//!   `q` is `p‖0x80‖…` and the new element must sort before it. Positions grow by about a
//!   byte per eight inserts at one spot, not by a whole suffix each time. After the last
//!   element or before the first, `LINSERT` is an `RPUSH`/`LPUSH` of one element relative to
//!   that neighbour.
//! - The coordinates saturate at the ends of `i64`: after about 2^31 pushes to one end with
//!   no pops the coordinate stays at `i64::MAX` (`MIN`) and new positions are bisected after
//!   (before) the end element instead, so order is kept; they are a byte or so longer.
//!
//! `LSET` writes a new payload at the same position (same cell, new version); pops, `LREM`
//! and `LTRIM` remove cells; `LMOVE`/`RPOPLPUSH` remove from the source and push onto the
//! destination (the same key rotates the list).
//!
//! # Concurrency
//! The commands have single-coordinator semantics: on one node a command runs under its
//! key's lock. Through two coordinators at once, two pushes both land (their suffixes
//! differ) and two pops can return the same element (docs/consistency.md). `LMOVE` between
//! two keys checks both types, then pops, then pushes, each under its key's lock: on one node
//! another client can see the element in neither list for that instant (a coordinator holds
//! both locks throughout), as with the other multi-key commands here. `LMPOP` checks its
//! keys in order, then pops from the first non-empty one.
//!
//! # Blocking commands
//! `BLPOP`/`BRPOP`, `BLMPOP` and `BLMOVE` run here as their non-blocking forms (`LMPOP` over
//! their keys, `LMOVE`) and answer the null array, what their timeout answers, when there
//! is nothing to pop; `super::blocking` then blocks the connection. A write that can fill an
//! empty list (a push, `LMOVE`'s destination) signals its key to the blocked clients
//! registry (`crate::blocked`); [`serve_blocked`] is what a writer runs for a connection
//! blocked on a key it filled. `LINSERT`, `LSET` and the removals never signal: they change
//! only a list that has elements, and nobody waits on such a list.
//!
//! # Costs
//! A command works on the collection's persistent map (`collection::live`/`update`): a push
//! or pop is O(log n), `LLEN` O(1); `LRANGE` and `LINDEX` are one pass over the cells from
//! the nearer end, allocating only the reply.

use bytes::Bytes;
use ringcache_resp::cmd::ListCommand;
use ringcache_resp::cmd::list::ListEnd;
use ringcache_resp::{CommandError, Reply};
use ringcache_storage::{Cell, Collection, DataType, Record, Version};
use smallvec::SmallVec;

use super::collection::{self, Edit};
use super::{ExecError, Outcome, Records, copied_bulk, copied_bulks};
use crate::node::Node;
use crate::notify::{self, Class};

/// The event of a push at `end` (Redis's names).
fn push_event(end: ListEnd) -> &'static str {
    match end {
        ListEnd::Left => "lpush",
        ListEnd::Right => "rpush",
    }
}

/// The event of a pop at `end`.
fn pop_event(end: ListEnd) -> &'static str {
    match end {
        ListEnd::Left => "lpop",
        ListEnd::Right => "rpop",
    }
}

const LIST: DataType = DataType::List;

/// The coordinate distance between the elements of two pushes at one end.
const STEP: i64 = 1 << 32;

/// Bytes of a position's coordinate.
const COORDINATE_BYTES: usize = 8;

/// A position's bytes, on the stack up to [`POSITION_INLINE`] bytes (a push's are 23): a
/// push made four heap blocks per element before (the boundary, the prefix, the position and
/// the list of positions).
type Position = SmallVec<[u8; POSITION_INLINE]>;

/// Bytes of a [`Position`] held without a heap block.
const POSITION_INLINE: usize = 32;

/// Bytes of a position's suffix: hlc, node, index, the final `0x01`.
const SUFFIX_BYTES: usize = 8 + 4 + 2 + 1;

/// The last byte of every position.
const POSITION_END: u8 = 0x01;

/// Elements that one prefix holds, numbered by the suffix's u16 index.
const RUN_MAX: usize = 1 << 16;

/// Executes a list command. `touch` says whether reads count as accesses for eviction.
pub fn execute(
    node: &Node,
    records: &dyn Records,
    command: ListCommand,
    now_ms: u64,
    touch: bool,
) -> Outcome {
    Ok(match command {
        ListCommand::Push {
            key,
            end,
            only_if_exists,
            elements,
        } => {
            let len = collection::update(node, records, &key, LIST, now_ms, |edit| {
                let before = edit.len();
                if only_if_exists && before == 0 {
                    return Ok(0);
                }
                push(edit, end, &elements);
                Ok(before + elements.len())
            })?;
            if len > 0 {
                notify::emit(Class::LIST, push_event(end), &key);
                node.clients.blocked.signal(&key);
            }
            Reply::Integer(len as i64)
        }
        ListCommand::Pop { key, end, count } => {
            let popped = collection::update(node, records, &key, LIST, now_ms, |edit| {
                if edit.is_empty() {
                    return Ok(None);
                }
                Ok(Some(pop(edit, end, count.unwrap_or(1))))
            })?;
            if popped.as_ref().is_some_and(|p| !p.is_empty()) {
                notify::emit(Class::LIST, pop_event(end), &key);
            }
            match (popped, count) {
                (None, None) => Reply::Nil,
                (None, Some(_)) => Reply::NilArray,
                (Some(popped), None) => popped.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
                (Some(popped), Some(_)) => {
                    Reply::Array(popped.into_iter().map(Reply::Bulk).collect())
                }
            }
        }
        ListCommand::Len(key) => {
            let record = lookup(node, records, &key, now_ms, touch);
            Reply::Integer(length(record.as_ref(), now_ms)? as i64)
        }
        ListCommand::Range { key, start, stop } => {
            let Some((list, len)) = read(node, records, &key, now_ms, touch)? else {
                return Ok(Reply::Array(Vec::new()));
            };
            let Some((first, last)) = span(start, stop, len) else {
                return Ok(Reply::Array(Vec::new()));
            };
            let count = last - first + 1;
            let mut items = Vec::with_capacity(count);
            // One pass from the nearer end.
            if first <= len - 1 - last {
                let live = live(&list).skip(first).take(count);
                items.extend(live.map(|(_, item)| item));
            } else {
                let live = live(&list).rev().skip(len - 1 - last).take(count);
                items.extend(live.map(|(_, item)| item));
                items.reverse();
            }
            Reply::Array(copied_bulks(items))
        }
        ListCommand::Index { key, index } => {
            let Some((list, len)) = read(node, records, &key, now_ms, touch)? else {
                return Ok(Reply::Nil);
            };
            let index = index.ok_or(CommandError::NotInteger)?;
            match nth(&list, index, len) {
                Some((_, item)) => copied_bulk(item),
                None => Reply::Nil,
            }
        }
        ListCommand::Set {
            key,
            index,
            element,
        } => {
            collection::update(node, records, &key, LIST, now_ms, |edit| {
                let len = edit.len();
                if len == 0 {
                    return Err(CommandError::NoSuchKey.into());
                }
                let index = index.ok_or(CommandError::NotInteger)?;
                let (position, _) =
                    nth(edit.collection, index, len).ok_or(CommandError::IndexOutOfRange)?;
                let position = Bytes::copy_from_slice(position);
                edit.put(position, &element);
                Ok(())
            })?;
            notify::emit(Class::LIST, "lset", &key);
            Reply::Ok
        }
        ListCommand::Rem {
            key,
            count,
            element,
        } => {
            let removed = collection::update(node, records, &key, LIST, now_ms, |edit| {
                let limit = match count {
                    0 => usize::MAX,
                    n => usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX),
                };
                let matching = |(_, item): &(&[u8], &[u8])| **item == element;
                let positions: Vec<Bytes> = if count >= 0 {
                    let found = live(edit.collection).filter(matching).take(limit);
                    found.map(|(p, _)| Bytes::copy_from_slice(p)).collect()
                } else {
                    let found = live(edit.collection).rev().filter(matching).take(limit);
                    found.map(|(p, _)| Bytes::copy_from_slice(p)).collect()
                };
                for position in &positions {
                    edit.remove(position);
                }
                Ok(positions.len())
            })?;
            if removed > 0 {
                notify::emit(Class::LIST, "lrem", &key);
            }
            Reply::Integer(removed as i64)
        }
        ListCommand::Trim { key, start, stop } => {
            let existed = collection::update(node, records, &key, LIST, now_ms, |edit| {
                let len = edit.len();
                let (first, last) = span(start, stop, len).unwrap_or((len, len));
                let outside: Vec<Bytes> = live(edit.collection)
                    .enumerate()
                    .filter(|(i, _)| *i < first || *i > last)
                    .map(|(_, (p, _))| Bytes::copy_from_slice(p))
                    .collect();
                for position in &outside {
                    edit.remove(position);
                }
                Ok(len > 0)
            })?;
            if existed {
                notify::emit(Class::LIST, "ltrim", &key);
            }
            Reply::Ok
        }
        ListCommand::Insert {
            key,
            after,
            pivot,
            element,
        } => {
            let len = collection::update(node, records, &key, LIST, now_ms, |edit| {
                let len = edit.len();
                if len == 0 {
                    return Ok(0);
                }
                let Some((lo, hi)) = neighbours(edit.collection, &pivot, after) else {
                    return Ok(-1);
                };
                let position = make(&between(lo.as_deref(), hi.as_deref()), edit.version(), 0);
                edit.put(position, &element);
                Ok(len as i64 + 1)
            })?;
            if len > 0 {
                notify::emit(Class::LIST, "linsert", &key);
            }
            Reply::Integer(len)
        }
        ListCommand::Pos {
            key,
            element,
            rank,
            count,
            maxlen,
        } => {
            let Some((list, len)) = read(node, records, &key, now_ms, touch)? else {
                return Ok(match count {
                    Some(_) => Reply::Array(Vec::new()),
                    None => Reply::Nil,
                });
            };
            let found = positions_of(&list, len, &element, rank, count, maxlen);
            match count {
                Some(_) => Reply::Array(found.into_iter().map(Reply::Integer).collect()),
                None => found.first().map_or(Reply::Nil, |&i| Reply::Integer(i)),
            }
        }
        ListCommand::Move {
            source,
            destination,
            from,
            to,
        } => match move_one(node, records, &source, &destination, from, to, now_ms)? {
            Some(item) => Reply::Bulk(item),
            None => Reply::Nil,
        },
        ListCommand::MPop { keys, end, count }
        | ListCommand::BMPop {
            keys, end, count, ..
        } => match first_pop(node, records, &keys, end, count, now_ms)? {
            Some((key, popped)) => Reply::Array(vec![
                Reply::Bulk(key),
                Reply::Array(popped.into_iter().map(Reply::Bulk).collect()),
            ]),
            None => Reply::NilArray,
        },
        ListCommand::BPop { keys, end, .. } => {
            match first_pop(node, records, &keys, end, 1, now_ms)? {
                Some((key, popped)) => match popped.into_iter().next() {
                    Some(item) => Reply::Array(vec![Reply::Bulk(key), Reply::Bulk(item)]),
                    None => Reply::NilArray,
                },
                None => Reply::NilArray,
            }
        }
        ListCommand::BMove {
            source,
            destination,
            from,
            to,
            ..
        } => match move_one(node, records, &source, &destination, from, to, now_ms)? {
            Some(item) => Reply::Bulk(item),
            // What Redis answers a blocked `BLMOVE` at its timeout (unlike `LMOVE`'s null).
            None => Reply::NilArray,
        },
    })
}

/// `LMPOP`'s walk: checks `keys` in order (`WRONGTYPE` for another type met first) and pops
/// up to `count` elements from `end` of the first non-empty list; that key and its elements,
/// or `None` when every list is empty.
fn first_pop(
    node: &Node,
    records: &dyn Records,
    keys: &[Bytes],
    end: ListEnd,
    count: u64,
    now_ms: u64,
) -> Result<Option<(Bytes, Vec<Bytes>)>, ExecError> {
    for key in keys {
        if length(records.peek(key, now_ms).as_ref(), now_ms)? == 0 {
            continue;
        }
        let popped = collection::update(node, records, key, LIST, now_ms, |edit| {
            Ok(pop(edit, end, count))
        })?;
        if popped.is_empty() {
            // Emptied by another client since the check: try the next key.
            continue;
        }
        notify::emit(Class::LIST, pop_event(end), key);
        return Ok(Some((key.clone(), popped)));
    }
    Ok(None)
}

/// Serves a connection blocked in `command` from `key`, which a write has filled (single
/// node): Redis's `serveClientBlockedOnList`, which pops from that key whatever the
/// command's other keys hold. `BLPOP`/`BRPOP` answer `[key, element]`, `BLMPOP` `[key,
/// [elements]]`, `BLMOVE` the element moved (or `WRONGTYPE` for a destination of another
/// type, nothing popped: the connection is unblocked with the error, as in Redis).
///
/// `None` when `key` holds no list with elements now (emptied again, or another type): the
/// connection keeps waiting.
pub fn serve_blocked(
    node: &Node,
    records: &dyn Records,
    command: &ListCommand,
    key: &Bytes,
    now_ms: u64,
) -> Option<Outcome> {
    if !matches!(length(records.peek(key, now_ms).as_ref(), now_ms), Ok(1..)) {
        return None;
    }
    let keys = std::slice::from_ref(key);
    let outcome = match command {
        ListCommand::BPop { end, .. } => {
            first_pop(node, records, keys, *end, 1, now_ms).map(|popped| {
                let (key, popped) = popped?;
                let item = popped.into_iter().next()?;
                Some(Reply::Array(vec![Reply::Bulk(key), Reply::Bulk(item)]))
            })
        }
        ListCommand::BMPop { end, count, .. } => {
            first_pop(node, records, keys, *end, *count, now_ms).map(|popped| {
                let (key, popped) = popped?;
                let items = popped.into_iter().map(Reply::Bulk).collect();
                Some(Reply::Array(vec![Reply::Bulk(key), Reply::Array(items)]))
            })
        }
        ListCommand::BMove {
            destination,
            from,
            to,
            ..
        } => move_one(node, records, key, destination, *from, *to, now_ms)
            .map(|moved| moved.map(Reply::Bulk)),
        _ => return None,
    };
    outcome.transpose()
}

/// The key's record, counted as a keyspace hit or miss as Redis's read lookups are.
fn lookup(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    now_ms: u64,
    touch: bool,
) -> Option<Record> {
    let record = match touch {
        true => records.get(key, now_ms),
        false => records.peek(key, now_ms),
    };
    node.stats
        .record_lookup(record.as_ref().is_some_and(|r| r.is_live(now_ms)));
    record
}

/// The list at `key` and its length, `None` when the key does not exist.
///
/// # Errors
/// `WRONGTYPE`.
fn read(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    now_ms: u64,
    touch: bool,
) -> Result<Option<(Collection, usize)>, ExecError> {
    let record = lookup(node, records, key, now_ms, touch);
    let len = length(record.as_ref(), now_ms)?;
    Ok(collection::live(record.as_ref(), LIST, now_ms)?.map(|list| (list, len)))
}

/// How many elements the list in `record` holds (kept by the collection, O(1)); 0 when the
/// key does not exist.
///
/// # Errors
/// `WRONGTYPE` when the key holds another type.
fn length(record: Option<&Record>, now_ms: u64) -> Result<usize, ExecError> {
    let Some(record) = record.filter(|r| r.is_live(now_ms)) else {
        return Ok(0);
    };
    if record.kind != LIST {
        return Err(CommandError::WrongType.into());
    }
    Ok(record.cells().map_or(0, Collection::live_count))
}

/// The live cells, position and item, in list order (from either end: `.rev()`).
fn live(list: &Collection) -> impl DoubleEndedIterator<Item = (&[u8], &[u8])> {
    list.live()
}

/// Redis's `LRANGE`/`LTRIM` range over `len` elements: negative indices count from the end,
/// the range is clamped to the list; `None` when it holds no element.
fn span(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 { start + len } else { start }.max(0);
    let stop = if stop < 0 { stop + len } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop.min(len - 1) as usize))
}

/// The live cell at `index` (negative counts from the end) of a list of `len`, walked to
/// from the nearer end.
fn nth(list: &Collection, index: i64, len: usize) -> Option<(&[u8], &[u8])> {
    let len_i = i64::try_from(len).ok()?;
    let index = if index < 0 { index + len_i } else { index };
    if !(0..len_i).contains(&index) {
        return None;
    }
    let index = index as usize;
    if index < len / 2 {
        live(list).nth(index)
    } else {
        live(list).rev().nth(len - 1 - index)
    }
}

/// Removes up to `count` elements from `end`; they come in the order popped.
fn pop(edit: &mut Edit, end: ListEnd, count: u64) -> Vec<Bytes> {
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    // Cells are shared, not copied: taking them costs a reference count each.
    let taken: Vec<Cell> = match end {
        ListEnd::Left => edit.collection.live_cells().take(count).cloned().collect(),
        ListEnd::Right => edit
            .collection
            .live_cells()
            .rev()
            .take(count)
            .cloned()
            .collect(),
    };
    taken
        .into_iter()
        .map(|cell| {
            edit.remove(cell.element());
            Bytes::copy_from_slice(cell.payload().unwrap_or_default())
        })
        .collect()
}

/// Writes `elements` at `end`, as `LPUSH`/`RPUSH` do (module docs).
fn push(edit: &mut Edit, end: ListEnd, elements: &[Bytes]) {
    let positions = push_positions(edit.collection, end, elements.len(), edit.version());
    for (position, element) in positions.into_iter().zip(elements) {
        edit.put(position, element);
    }
}

/// The positions of `count` elements pushed at `end` of `list` by a command at `version`,
/// in the order the elements are given (module docs).
fn push_positions(
    list: &Collection,
    end: ListEnd,
    count: usize,
    version: Version,
) -> SmallVec<[Position; 1]> {
    let mut boundary = match end {
        ListEnd::Left => live(list).next(),
        ListEnd::Right => live(list).next_back(),
    }
    .map(|(position, _)| Position::from_slice(position));
    let mut positions = SmallVec::with_capacity(count);
    // Bounded by `count`: each run writes up to `RUN_MAX` positions.
    while positions.len() < count {
        let run = (count - positions.len()).min(RUN_MAX);
        let prefix = match end {
            ListEnd::Left => between(None, boundary.as_deref()),
            ListEnd::Right => between(boundary.as_deref(), None),
        };
        for i in 0..run {
            // `run` ≤ 2^16, so `i` fits a u16.
            let i = i as u16;
            let index = match end {
                ListEnd::Left => u16::MAX - i,
                ListEnd::Right => i,
            };
            positions.push(make(&prefix, version, index));
        }
        boundary = positions.last().cloned();
    }
    positions
}

/// The live neighbours a new element goes between for `LINSERT`: (before, after) the
/// pivot's first occurrence for `AFTER`, (before it, it) for `BEFORE`; `None` without the
/// pivot.
fn neighbours(
    list: &Collection,
    pivot: &[u8],
    after: bool,
) -> Option<(Option<Bytes>, Option<Bytes>)> {
    let mut cells = live(list);
    let mut previous = None;
    for (position, item) in cells.by_ref() {
        if item == pivot {
            return Some(match after {
                true => (
                    Some(Bytes::copy_from_slice(position)),
                    cells.next().map(|(p, _)| Bytes::copy_from_slice(p)),
                ),
                false => (previous, Some(Bytes::copy_from_slice(position))),
            });
        }
        previous = Some(Bytes::copy_from_slice(position));
    }
    None
}

/// `LPOS`: the indices of `element`'s matches, in the order found (module docs of the
/// command): from the `rank`-th match on, at most `count` of them (0 all, `None` one),
/// comparing at most `maxlen` elements (0 all) from the end `rank`'s sign chooses.
fn positions_of(
    list: &Collection,
    len: usize,
    element: &[u8],
    rank: i64,
    count: Option<u64>,
    maxlen: u64,
) -> Vec<i64> {
    // Redis negates the rank in a C `long`: `i64::MIN` stays negative there, so every match
    // counts from the first one on and `COUNT` never stops the walk.
    let (skip, limit) = match rank {
        i64::MIN => (0, if count.is_none() { 1 } else { usize::MAX }),
        _ => {
            let limit = match count {
                None => 1,
                Some(0) => usize::MAX,
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            };
            (
                usize::try_from(rank.unsigned_abs().saturating_sub(1)).unwrap_or(usize::MAX),
                limit,
            )
        }
    };
    let scan = match maxlen {
        0 => usize::MAX,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let matches = |(_, (_, item)): &(usize, (&[u8], &[u8]))| *item == element;
    if rank > 0 {
        live(list)
            .enumerate()
            .take(scan)
            .filter(matches)
            .skip(skip)
            .take(limit)
            .map(|(i, _)| i as i64)
            .collect()
    } else {
        live(list)
            .rev()
            .enumerate()
            .take(scan)
            .filter(matches)
            .skip(skip)
            .take(limit)
            .map(|(i, _)| len.saturating_sub(1 + i) as i64)
            .collect()
    }
}

/// `LMOVE`: pops from `from` of `source` and pushes onto `to` of `destination`; the item,
/// `None` when `source` is empty. As Redis: a missing source answers nil whatever the
/// destination is; then the source's type, then the destination's, is checked.
fn move_one(
    node: &Node,
    records: &dyn Records,
    source: &Bytes,
    destination: &Bytes,
    from: ListEnd,
    to: ListEnd,
    now_ms: u64,
) -> Result<Option<Bytes>, ExecError> {
    if source == destination {
        return collection::update(node, records, source, LIST, now_ms, |edit| {
            let Some(item) = pop(edit, from, 1).pop() else {
                return Ok(None);
            };
            push(edit, to, std::slice::from_ref(&item));
            Ok(Some(item))
        })
        .inspect(|moved| {
            if moved.is_some() {
                notify::emit(Class::LIST, push_event(to), source);
                notify::emit(Class::LIST, pop_event(from), source);
            }
        });
    }
    let blocked = &node.clients.blocked;
    if length(records.peek(source, now_ms).as_ref(), now_ms)? == 0 {
        return Ok(None);
    }
    length(records.peek(destination, now_ms).as_ref(), now_ms)?;
    let popped = collection::update(node, records, source, LIST, now_ms, |edit| {
        Ok(pop(edit, from, 1).pop())
    })?;
    let Some(item) = popped else {
        return Ok(None);
    };
    let pushed = collection::update(node, records, destination, LIST, now_ms, |edit| {
        push(edit, to, std::slice::from_ref(&item));
        Ok(())
    });
    if let Err(e) = pushed {
        // The destination changed type (or the store failed) after the checks: put the item
        // back where it was rather than lose it.
        collection::update(node, records, source, LIST, now_ms, |edit| {
            push(edit, from, std::slice::from_ref(&item));
            Ok(())
        })?;
        // A connection may have blocked on the source while it was empty.
        blocked.signal(source);
        return Err(e);
    }
    // Redis's order: the push on the destination, then the pop on the source.
    notify::emit(Class::LIST, push_event(to), destination);
    notify::emit(Class::LIST, pop_event(from), source);
    blocked.signal(destination);
    Ok(Some(item))
}

/// The sortable bytes of a coordinate.
fn coordinate_bytes(coordinate: i64) -> [u8; COORDINATE_BYTES] {
    ((coordinate as u64) ^ (1 << 63)).to_be_bytes()
}

/// The coordinate a position starts with; `None` for bytes too short to be a position.
fn coordinate(position: &[u8]) -> Option<i64> {
    let bytes = position.get(..COORDINATE_BYTES)?.try_into().ok()?;
    Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

/// A position: `prefix` then the suffix of the element `index` of the command at `version`.
fn make(prefix: &[u8], version: Version, index: u16) -> Position {
    let mut position = Position::with_capacity(prefix.len() + SUFFIX_BYTES);
    position.extend_from_slice(prefix);
    position.extend_from_slice(&version.hlc.to_be_bytes());
    position.extend_from_slice(&version.node.to_be_bytes());
    position.extend_from_slice(&index.to_be_bytes());
    position.push(POSITION_END);
    position
}

/// A prefix `m` such that `lo < m‖x < hi` for every suffix `x` (`None`: no bound on that
/// side), given `lo < hi`: a coordinate when there is room between the neighbours'
/// coordinates (module docs), else [`bisect`]. Never panics, whatever the bytes.
fn between(lo: Option<&[u8]>, hi: Option<&[u8]>) -> Position {
    let (low, high) = (lo.map(coordinate), hi.map(coordinate));
    let room = match (low, high) {
        (None, None) => Some(0),
        (Some(Some(p)), None) if p < i64::MAX => Some(p.saturating_add(STEP)),
        (None, Some(Some(q))) if q > i64::MIN => Some(q.saturating_sub(STEP)),
        (Some(Some(p)), Some(Some(q))) if i128::from(q) - i128::from(p) >= 2 => {
            Some((i128::from(p) + (i128::from(q) - i128::from(p)) / 2) as i64)
        }
        _ => None,
    };
    if let Some(coordinate) = room {
        return Position::from_slice(&coordinate_bytes(coordinate));
    }
    Position::from_vec(match lo {
        Some(lo) => bisect(lo, hi),
        // Before a first element at `i64::MIN`: the bare coordinate is a lower bound, and a
        // prefix of it.
        None => {
            let floor = match high {
                Some(Some(_)) => &coordinate_bytes(i64::MIN)[..],
                _ => &[],
            };
            bisect(floor, hi)
        }
    })
}

/// A prefix `m` with `lo < m‖x < hi` for every `x`, given `lo < hi` and that `hi` does not
/// end in `0x00` (positions end in `0x01`). Let `k` be where `lo` and `hi` first differ:
/// - `lo` is a prefix of `hi`: `hi` up to its first non-zero byte after `lo`, that byte
///   halved (smaller than `hi` there, longer than `lo`); a byte 1 becomes `0x00 0x80`, so
///   that the next insert at that spot halves the `0x80` rather than the suffix's bytes;
/// - `hi[k] − lo[k] ≥ 2` (or no `hi`: 256): `lo[..k]` then the byte half way between;
/// - otherwise `lo` up to its first byte after `k` below `0xFF`, that byte raised half way
///   to `0x100` (above `lo` there, still below `hi` at `k`), or all of `lo` then `0x80`.
///
/// Corrupt input (`hi ≤ lo`, `hi` ending in zeros) gets some prefix, never a panic.
fn bisect(lo: &[u8], hi: Option<&[u8]>) -> Vec<u8> {
    let k = hi.map_or(0, |hi| {
        lo.iter().zip(hi).take_while(|(a, b)| a == b).count()
    });
    let Some(&low) = lo.get(k) else {
        // `lo` is a prefix of `hi` (or empty with no `hi`).
        let rest = hi.and_then(|hi| hi.get(k..)).unwrap_or_default();
        return match rest.iter().position(|&b| b != 0) {
            Some(m) => {
                let mut prefix = [lo, &rest[..m]].concat();
                match rest[m] {
                    1 => prefix.extend_from_slice(&[0x00, 0x80]),
                    b => prefix.push(b / 2),
                }
                prefix
            }
            None => [lo, &[0x80]].concat(),
        };
    };
    let high = hi.and_then(|hi| hi.get(k)).map_or(256, |&b| u16::from(b));
    let low = u16::from(low);
    if high > low + 1 {
        let mut prefix = lo[..k].to_vec();
        prefix.push((low + (high - low) / 2) as u8);
        return prefix;
    }
    match lo.iter().skip(k + 1).position(|&b| b < 0xFF) {
        Some(m) => {
            let m = k + 1 + m;
            let mut prefix = lo[..m].to_vec();
            prefix.push((u16::from(lo[m]) + (256 - u16::from(lo[m])) / 2) as u8);
            prefix
        }
        None => [lo, &[0x80]].concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::{node, run, session};
    use proptest::prelude::*;

    /// A version as a clock issues them: milliseconds since 1970 above a 16-bit counter.
    fn v(hlc: u64) -> Version {
        Version {
            hlc: (1_700_000_000_000 << 16) + hlc,
            node: 7,
        }
    }

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn bulks(items: &[&str]) -> Reply {
        Reply::Array(items.iter().map(|s| bulk(s)).collect())
    }

    /// The live items of `list` as numbers, in list order.
    fn items(list: &Collection) -> Vec<u32> {
        live(list)
            .map(|(_, item)| u32::from_be_bytes(item[..].try_into().unwrap()))
            .collect()
    }

    fn item(n: u32) -> Bytes {
        Bytes::copy_from_slice(&n.to_be_bytes())
    }

    #[test]
    fn coordinates_sort_as_their_integers() {
        let values = [
            i64::MIN,
            i64::MIN + 1,
            -STEP,
            -1,
            0,
            1,
            STEP,
            i64::MAX - 1,
            i64::MAX,
        ];
        for pair in values.windows(2) {
            assert!(
                coordinate_bytes(pair[0]) < coordinate_bytes(pair[1]),
                "{pair:?}"
            );
        }
        for c in values {
            assert_eq!(coordinate(&coordinate_bytes(c)), Some(c));
        }
    }

    #[test]
    fn pushes_share_a_coordinate_and_order_by_their_suffix() {
        let mut list = Collection::default();
        let right = push_positions(&list, ListEnd::Right, 3, v(1));
        assert!(right.iter().all(|p| coordinate(p) == Some(0)));
        for (p, n) in right.iter().zip(1..) {
            list.put(p, Some(&item(n)), v(1));
        }
        let left = push_positions(&list, ListEnd::Left, 2, v(2));
        assert!(left.iter().all(|p| coordinate(p) == Some(-STEP)));
        for (p, n) in left.iter().zip(4..) {
            list.put(p, Some(&item(n)), v(2));
        }
        assert_eq!(items(&list), [5, 4, 1, 2, 3]);
        assert!(
            list.cells()
                .all(|c| c.element().last() == Some(&POSITION_END))
        );
    }

    #[test]
    fn a_push_longer_than_a_run_starts_new_coordinates_and_keeps_order() {
        for end in [ListEnd::Left, ListEnd::Right] {
            let count = RUN_MAX * 2 + 5;
            let positions = push_positions(&Collection::default(), end, count, v(1));
            let ordered = match end {
                ListEnd::Right => positions.windows(2).all(|w| w[0] < w[1]),
                ListEnd::Left => positions.windows(2).all(|w| w[0] > w[1]),
            };
            assert!(ordered, "{end:?}");
            let coordinates: std::collections::BTreeSet<_> =
                positions.iter().map(|p| coordinate(p)).collect();
            assert_eq!(coordinates.len(), 3, "{end:?}");
        }
    }

    #[test]
    fn pushes_at_a_saturated_coordinate_still_go_past_the_end() {
        let mut list = Collection::default();
        list.put(
            &make(&coordinate_bytes(i64::MAX), v(1), 0),
            Some(&item(1)),
            v(1),
        );
        list.put(
            &make(&coordinate_bytes(i64::MIN), v(1), 0),
            Some(&item(0)),
            v(1),
        );
        for (hlc, n) in (2..6).zip(2..) {
            let p = &push_positions(&list, ListEnd::Right, 1, v(hlc))[0];
            assert_eq!(coordinate(p), Some(i64::MAX));
            list.put(p, Some(&item(n)), v(hlc));
            let p = &push_positions(&list, ListEnd::Left, 1, v(hlc))[0];
            assert_eq!(coordinate(p), Some(i64::MIN));
            list.put(p, Some(&item(100 + n)), v(hlc));
        }
        assert_eq!(items(&list), [105, 104, 103, 102, 0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn inserting_at_one_spot_again_and_again_grows_positions_slowly() {
        // Three plain neighbours, then 500 inserts right after the first and 500 right
        // before the last: each time between two positions whose coordinates are adjacent
        // once the midpoints run out.
        let mut list = Collection::default();
        let base = push_positions(&list, ListEnd::Right, 2, v(1));
        for (p, n) in base.iter().zip([0, 1_000_000]) {
            list.put(p, Some(&item(n)), v(1));
        }
        let (mut after_first, mut before_last) = (Vec::new(), Vec::new());
        for hlc in 2..502u64 {
            let first = Bytes::copy_from_slice(live(&list).next().unwrap().0);
            let (lo, hi) = neighbours(&list, &item(0), true).unwrap();
            assert_eq!(lo.as_ref(), Some(&first));
            let p = make(&between(lo.as_deref(), hi.as_deref()), v(hlc), 0);
            list.put(&p, Some(&item(hlc as u32)), v(hlc));
            after_first.insert(0, hlc as u32);
            let (lo, hi) = neighbours(&list, &item(1_000_000), false).unwrap();
            let p = make(&between(lo.as_deref(), hi.as_deref()), v(hlc), 1);
            list.put(&p, Some(&item(10_000 + hlc as u32)), v(hlc));
            before_last.push(10_000 + hlc as u32);
        }
        let mut expected = vec![0];
        expected.extend(&after_first);
        expected.extend(&before_last);
        expected.push(1_000_000);
        assert_eq!(items(&list), expected);
        let longest = list.cells().map(|c| c.element().len()).max().unwrap();
        assert!(longest <= 140, "positions grew to {longest} bytes");
    }

    #[test]
    fn bisect_handles_any_bytes_without_panicking() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"", None),
            (b"", Some(b"\x01")),
            (b"\x00", Some(b"\x00\x00\x01")),
            (b"\xff\xff", None),
            (b"a", Some(b"a")),
            (b"b", Some(b"a")),
            (b"a", Some(b"a\x00")),
        ];
        for (lo, hi) in cases {
            let m = bisect(lo, *hi);
            let valid = hi.is_none_or(|hi| *lo < hi && !hi.ends_with(&[0]));
            if valid {
                assert!(*lo < &m[..], "{lo:?} {hi:?} {m:?}");
                if let Some(hi) = hi {
                    assert!(
                        [&m[..], b"\xff\xff"].concat() < hi.to_vec(),
                        "{lo:?} {hi:?}"
                    );
                }
            }
        }
        assert_eq!(
            between(Some(b"ab"), Some(b"xy")).to_vec(),
            bisect(b"ab", Some(b"xy"))
        );
    }

    /// One step of the position property test.
    #[derive(Debug, Clone)]
    enum Op {
        Push(bool, usize),
        Insert(bool, usize),
        Remove(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<bool>(), 1usize..4).prop_map(|(left, n)| Op::Push(left, n)),
            (any::<bool>(), any::<usize>()).prop_map(|(after, at)| Op::Insert(after, at)),
            any::<usize>().prop_map(Op::Remove),
        ]
    }

    fn seed() -> impl Strategy<Value = Option<i64>> {
        prop_oneof![
            Just(None),
            Just(Some(i64::MIN)),
            Just(Some(i64::MIN + 1)),
            Just(Some(-1)),
            Just(Some(0)),
            Just(Some(1)),
            Just(Some(i64::MAX - 1)),
            Just(Some(i64::MAX)),
            any::<i64>().prop_map(Some),
        ]
    }

    proptest! {
        /// Random LPUSH/RPUSH/LINSERT (and removals, which leave removed cells behind) keep
        /// the list in the order of a `Vec` doing the same; every position stays unique and
        /// ends in 0x01.
        #[test]
        fn pushes_and_inserts_keep_the_order_of_a_vec(
            seed in seed(),
            ops in proptest::collection::vec(op(), 1..60),
        ) {
            let mut list = Collection::default();
            let mut model: Vec<u32> = Vec::new();
            let mut next = 0u32;
            if let Some(c) = seed {
                list.put(&make(&coordinate_bytes(c), v(1), 0), Some(&item(next)), v(1));
                model.push(next);
                next += 1;
            }
            for (hlc, op) in (2u64..).zip(ops) {
                let version = v(hlc);
                match op {
                    Op::Push(left, n) => {
                        let end = if left { ListEnd::Left } else { ListEnd::Right };
                        for p in push_positions(&list, end, n, version) {
                            prop_assert!(list.cell(&p).is_none());
                            list.put(&p, Some(&item(next)), version);
                            match end {
                                ListEnd::Left => model.insert(0, next),
                                ListEnd::Right => model.push(next),
                            }
                            next += 1;
                        }
                    }
                    Op::Insert(after, at) if !model.is_empty() => {
                        let at = at % model.len();
                        let (lo, hi) = neighbours(&list, &item(model[at]), after).unwrap();
                        let p = make(&between(lo.as_deref(), hi.as_deref()), version, 0);
                        prop_assert!(list.cell(&p).is_none());
                        list.put(&p, Some(&item(next)), version);
                        model.insert(if after { at + 1 } else { at }, next);
                        next += 1;
                    }
                    Op::Remove(at) if !model.is_empty() => {
                        let gone = model.remove(at % model.len());
                        let (p, _) = live(&list).find(|(_, i)| *i == item(gone)).unwrap();
                        let p = p.to_vec();
                        list.put(&p, None, version);
                    }
                    Op::Insert(..) | Op::Remove(_) => {}
                }
                prop_assert_eq!(items(&list), model.clone());
            }
            prop_assert!(list.cells().all(|c| c.element().last() == Some(&POSITION_END)));
        }
    }

    #[test]
    fn lists_answer_as_redis_through_the_executor() {
        let node = node();
        let mut s = session(&node);
        let mut r = |line: &str| run(&node, &mut s, line);
        assert_eq!(r("RPUSH l a b c"), Reply::Integer(3));
        assert_eq!(r("LPUSH l y z"), Reply::Integer(5));
        assert_eq!(r("LRANGE l 0 -1"), bulks(&["z", "y", "a", "b", "c"]));
        assert_eq!(r("LINSERT l AFTER a x"), Reply::Integer(6));
        assert_eq!(r("LINSERT l BEFORE z w"), Reply::Integer(7));
        assert_eq!(r("LRANGE l -3 -1"), bulks(&["x", "b", "c"]));
        assert_eq!(r("LINDEX l -1"), bulk("c"));
        assert_eq!(r("LSET l 1 Z"), Reply::Ok);
        assert_eq!(r("LPOP l 2"), bulks(&["w", "Z"]));
        assert_eq!(r("RPOP l"), bulk("c"));
        assert_eq!(r("LLEN l"), Reply::Integer(4));
        assert_eq!(r("LMOVE l l LEFT RIGHT"), bulk("y"));
        assert_eq!(r("LRANGE l 0 -1"), bulks(&["a", "x", "b", "y"]));
        assert_eq!(r("RPOPLPUSH l m"), bulk("y"));
        assert_eq!(r("LMPOP 2 missing l RIGHT COUNT 5"), {
            Reply::Array(vec![bulk("l"), bulks(&["b", "x", "a"])])
        });
        assert_eq!(r("EXISTS l"), Reply::Integer(0));
        assert_eq!(r("LPUSHX l a"), Reply::Integer(0));
        assert_eq!(r("EXISTS l"), Reply::Integer(0));
    }

    #[test]
    fn lset_keeps_the_position_and_a_single_node_keeps_no_removed_cells() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "RPUSH l a b c");
        let cells = |node: &Node| {
            let record = Records::peek(&node.store, b"l", crate::node::unix_now_ms()).unwrap();
            collection::live(Some(&record), LIST, 0)
                .unwrap()
                .unwrap()
                .cells()
                .map(|c| (c.element().to_vec(), c.is_live()))
                .collect::<Vec<_>>()
        };
        let before = cells(&node);
        let positions = |cells: &[(Vec<u8>, bool)]| -> Vec<Vec<u8>> {
            cells.iter().map(|c| c.0.clone()).collect()
        };
        assert_eq!(run(&node, &mut s, "LSET l 1 B"), Reply::Ok);
        let after = cells(&node);
        assert_eq!(positions(&before), positions(&after));
        assert_eq!(run(&node, &mut s, "LPOP l"), bulk("a"));
        // No other replica can hold the popped item: its removed cell goes at once.
        let popped = cells(&node);
        assert_eq!(popped.len(), 2);
        assert!(popped.iter().all(|(_, live)| *live));
        assert_eq!(run(&node, &mut s, "LRANGE l 0 -1"), bulks(&["B", "c"]));
    }

    #[test]
    fn lmove_checks_the_destination_type_before_popping() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "RPUSH l a");
        run(&node, &mut s, "SET str x");
        assert_eq!(
            run(&node, &mut s, "LMOVE l str LEFT LEFT"),
            Reply::error(CommandError::WrongType)
        );
        assert_eq!(run(&node, &mut s, "LLEN l"), Reply::Integer(1));
        assert_eq!(
            run(&node, &mut s, "LMOVE nothing str LEFT LEFT"),
            Reply::Nil
        );
    }

    #[test]
    fn ranges_are_clamped_as_redis_does() {
        assert_eq!(span(0, -1, 5), Some((0, 4)));
        assert_eq!(span(-100, 100, 5), Some((0, 4)));
        assert_eq!(span(3, 1, 5), None);
        assert_eq!(span(5, 9, 5), None);
        assert_eq!(span(0, -6, 5), None);
        assert_eq!(span(i64::MIN, i64::MAX, 5), Some((0, 4)));
        assert_eq!(span(0, 0, 0), None);
    }
}
