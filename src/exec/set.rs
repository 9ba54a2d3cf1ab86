//! The set commands, with Redis 7.0's replies; a set is a collection of member cells whose
//! payload is empty ([`super::collection`]), so adds and removes of different members
//! through different nodes merge.
//!
//! Where this differs from Redis (docs/redis-compatibility.md, "Sets"):
//! - Members come back in byte order (`SMEMBERS`, `SINTER`, ...), where Redis uses an
//!   intset's numeric order or its hash table's; `SPOP` and `SRANDMEMBER` pick at random
//!   as Redis does, from a uniform distribution.
//! - `SSCAN` returns a set of up to [`SSCAN_WHOLE_MAX`] members (or
//!   [`SSCAN_WHOLE_INTEGERS_MAX`] integers, Redis 7.0's intset) whole in one call, cursor 0,
//!   whatever the cursor, as Redis does for its small encodings; a larger set is walked in
//!   the order of a fixed hash of each member, the cursor being the hash to resume at, so
//!   that members added or removed between calls never make it skip one present throughout.
//! - `SRANDMEMBER key -count` refuses more than [`SRANDMEMBER_PICKS_MAX`] picks.
//! - `SMOVE` and the `STORE` commands on one node read their keys and then write each under
//!   its own lock, not all under one: a command on another connection may run in between
//!   (a cluster coordinator locks every key of the command).

use std::collections::BTreeSet;

use bytes::Bytes;
use rand::Rng;
use rand::seq::SliceRandom;
use ringcache_resp::cmd::ScanOptions;
use ringcache_resp::cmd::SetCommand;
use ringcache_resp::cmd::set::SetOp;
use ringcache_resp::glob::glob_match;
use ringcache_resp::parser::string2ll;
use ringcache_resp::{CommandError, Reply};
use ringcache_storage::{Cell, Collection, DataType};

use super::collection::{self, read};
use super::{ExecError, Outcome, Records};
use crate::node::Node;
use crate::notify::{self, Class};

const SET: DataType = DataType::Set;

/// Sets of at most this many members are scanned whole in one call (Redis 7.2's
/// `set-max-listpack-entries` default; Redis 7.0 returns a hash table of up to `COUNT`
/// members whole too).
pub const SSCAN_WHOLE_MAX: usize = 128;

/// Sets of at most this many members that are all integers are scanned whole in one call,
/// as Redis 7.0 does for an intset (`set-max-intset-entries` default).
pub const SSCAN_WHOLE_INTEGERS_MAX: usize = 512;

/// Most members `SRANDMEMBER key -count` returns: a reply is built whole before it is sent,
/// and a count of `-i64::MAX` would otherwise try to allocate it.
pub const SRANDMEMBER_PICKS_MAX: u64 = 1_000_000;

/// Executes a set command. `touch` says whether reads count as accesses for eviction.
pub fn execute(
    node: &Node,
    records: &dyn Records,
    command: SetCommand,
    now_ms: u64,
    touch: bool,
) -> Outcome {
    Ok(match command {
        SetCommand::Add { key, members } => {
            let added = collection::update(node, records, &key, SET, now_ms, |edit| {
                // Only new members are written: re-adding one changes nothing in Redis.
                Ok(members
                    .iter()
                    .filter(|m| edit.get(m).is_none() && edit.put((*m).clone(), Bytes::new()))
                    .count())
            })?;
            if added > 0 {
                notify::emit(Class::SET, "sadd", &key);
            }
            Reply::Integer(added as i64)
        }
        SetCommand::Rem { key, members } => {
            let removed = collection::update(node, records, &key, SET, now_ms, |edit| {
                Ok(members.iter().filter(|m| edit.remove(m)).count())
            })?;
            if removed > 0 {
                notify::emit(Class::SET, "srem", &key);
            }
            Reply::Integer(removed as i64)
        }
        SetCommand::Members(key) => {
            let set = read(records, &key, SET, now_ms, touch)?;
            Reply::Set(super::copied_bulks(set.iter().flat_map(members)))
        }
        SetCommand::Card(key) => {
            let set = read(records, &key, SET, now_ms, touch)?;
            Reply::Integer(set.map_or(0, |s| s.live_count()) as i64)
        }
        SetCommand::IsMember { key, member } => {
            let set = read(records, &key, SET, now_ms, touch)?;
            Reply::Integer(is_member(set.as_ref(), &member))
        }
        SetCommand::MIsMember { key, members } => {
            let set = read(records, &key, SET, now_ms, touch)?;
            Reply::Array(
                members
                    .iter()
                    .map(|m| Reply::Integer(is_member(set.as_ref(), m)))
                    .collect(),
            )
        }
        SetCommand::Pop { key, count } => pop(node, records, &key, count, now_ms)?,
        SetCommand::RandMember { key, count } => {
            let set = read(records, &key, SET, now_ms, touch)?;
            rand_member(set.as_ref(), count)?
        }
        SetCommand::Move {
            source,
            destination,
            member,
        } => Reply::Integer(i64::from(smove(
            node,
            records,
            [&source, &destination],
            member,
            now_ms,
        )?)),
        SetCommand::Scan {
            key,
            cursor,
            options,
        } => {
            // Redis answers a missing key and WRONGTYPE before it reads the options.
            let Some(set) = read(records, &key, SET, now_ms, touch)? else {
                return Ok(scan_reply(0, Vec::new()));
            };
            let (next, found) = scan(&set, cursor, &options?);
            scan_reply(next, found)
        }
        SetCommand::Combine { op, keys } => {
            let sets = read_all(records, &keys, now_ms, touch)?;
            Reply::Set(combine(op, &sets).into_iter().map(Reply::Bulk).collect())
        }
        SetCommand::Store {
            op,
            destination,
            keys,
        } => {
            let sets = read_all(records, &keys, now_ms, touch)?;
            let result: Vec<(Bytes, Bytes)> = combine(op, &sets)
                .into_iter()
                .map(|m| (m, Bytes::new()))
                .collect();
            let size = result.len();
            collection::replace(node, records, &destination, SET, result, now_ms)?;
            if size > 0 {
                let event = match op {
                    SetOp::Union => "sunionstore",
                    SetOp::Inter => "sinterstore",
                    SetOp::Diff => "sdiffstore",
                };
                notify::emit(Class::SET, event, &destination);
            }
            Reply::Integer(size as i64)
        }
        SetCommand::InterCard { keys, limit } => {
            let sets = read_all(records, &keys, now_ms, touch)?;
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let found = intersection(&sets).count();
            Reply::Integer(match limit {
                0 => found,
                limit => found.min(limit),
            } as i64)
        }
    })
}

/// The live members of a set, in byte order.
fn members(set: &Collection) -> impl Iterator<Item = &[u8]> {
    set.live().map(|(member, _)| member)
}

fn is_member(set: Option<&Collection>, member: &[u8]) -> i64 {
    i64::from(set.is_some_and(|s| s.get(member).is_some()))
}

/// Every key as a set (`None` when missing); like Redis 7.0, every key's type is checked,
/// even after a missing key has made an intersection empty.
fn read_all(
    records: &dyn Records,
    keys: &[Bytes],
    now_ms: u64,
    touch: bool,
) -> Result<Vec<Option<Collection>>, ExecError> {
    keys.iter()
        .map(|key| read(records, key, SET, now_ms, touch))
        .collect()
}

/// The members of every set, in byte order: the smallest set's members that all the others
/// have; nothing when a set is missing.
fn intersection(sets: &[Option<Collection>]) -> impl Iterator<Item = &[u8]> {
    let present: Option<Vec<&Collection>> = sets.iter().map(Option::as_ref).collect();
    let present = present.unwrap_or_default();
    let smallest = present
        .iter()
        .enumerate()
        .min_by_key(|(_, s)| s.live_count())
        .map(|(at, _)| at);
    let others = present.clone();
    smallest
        .into_iter()
        .flat_map(move |at| members(present[at]))
        .filter(move |m| others.iter().all(|s| s.get(m).is_some()))
}

/// `SINTER`, `SUNION` or `SDIFF` of `sets`, in byte order.
fn combine(op: SetOp, sets: &[Option<Collection>]) -> Vec<Bytes> {
    match op {
        SetOp::Inter => intersection(sets).map(Bytes::copy_from_slice).collect(),
        SetOp::Union => sets
            .iter()
            .flatten()
            .flat_map(members)
            .collect::<BTreeSet<&[u8]>>()
            .into_iter()
            .map(Bytes::copy_from_slice)
            .collect(),
        SetOp::Diff => {
            let Some(Some(first)) = sets.first() else {
                return Vec::new();
            };
            members(first)
                .filter(|m| sets[1..].iter().flatten().all(|s| s.get(m).is_none()))
                .map(Bytes::copy_from_slice)
                .collect()
        }
    }
}

/// `count` distinct members picked uniformly at random (all of them when there are no
/// more), in the order picked.
fn pick_distinct(all: &[Bytes], count: usize) -> Vec<Bytes> {
    if count >= all.len() {
        return all.to_vec();
    }
    rand::seq::index::sample(&mut rand::rng(), all.len(), count)
        .into_iter()
        .map(|at| all[at].clone())
        .collect()
}

/// `count` distinct live cells of `set` picked uniformly at random (all of them when there
/// are no more), in random order: one walk that shares the picked cells and copies nothing
/// else (`SPOP` of one member from a large set used to copy every member).
fn pick_cells(set: &Collection, count: usize) -> Vec<Cell> {
    let len = set.live_count();
    let mut rng = rand::rng();
    let mut picked: Vec<Cell> = match count >= len {
        true => set.live_cells().cloned().collect(),
        false => {
            let mut at = rand::seq::index::sample(&mut rng, len, count).into_vec();
            at.sort_unstable();
            let mut wanted = at.into_iter().peekable();
            set.live_cells()
                .enumerate()
                .filter(|(i, _)| wanted.next_if_eq(i).is_some())
                .map(|(_, cell)| cell.clone())
                .take(count)
                .collect()
        }
    };
    picked.shuffle(&mut rng);
    picked
}

/// `SPOP key [count]`: removes the members it answers with.
fn pop(
    node: &Node,
    records: &dyn Records,
    key: &[u8],
    count: Option<u64>,
    now_ms: u64,
) -> Result<Reply, ExecError> {
    let wanted = count.map_or(1, |c| usize::try_from(c).unwrap_or(usize::MAX));
    let popped = collection::update(node, records, key, SET, now_ms, |edit| {
        if wanted == 0 || edit.is_empty() {
            return Ok(Vec::new());
        }
        let picked = pick_cells(edit.collection, wanted);
        for cell in &picked {
            edit.remove(cell.element());
        }
        Ok(picked
            .iter()
            .map(|cell| Bytes::copy_from_slice(cell.element()))
            .collect())
    })?;
    if !popped.is_empty() {
        notify::emit(Class::SET, "spop", key);
    }
    Ok(match count {
        None => popped.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
        Some(_) => Reply::Set(popped.into_iter().map(Reply::Bulk).collect()),
    })
}

/// `SRANDMEMBER key [count]`.
///
/// # Errors
/// [`CommandError::TooManyPicks`] for a negative count beyond [`SRANDMEMBER_PICKS_MAX`].
fn rand_member(set: Option<&Collection>, count: Option<i64>) -> Result<Reply, ExecError> {
    let all: Vec<Bytes> = set
        .iter()
        .flat_map(|s| members(s))
        .map(Bytes::copy_from_slice)
        .collect();
    let Some(count) = count else {
        return Ok(pick_distinct(&all, 1)
            .into_iter()
            .next()
            .map_or(Reply::Nil, Reply::Bulk));
    };
    if all.is_empty() {
        return Ok(Reply::Array(Vec::new()));
    }
    if count >= 0 {
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        return Ok(Reply::Array(
            pick_distinct(&all, count)
                .into_iter()
                .map(Reply::Bulk)
                .collect(),
        ));
    }
    let picks = count.unsigned_abs();
    if picks > SRANDMEMBER_PICKS_MAX {
        return Err(CommandError::TooManyPicks(SRANDMEMBER_PICKS_MAX).into());
    }
    let mut rng = rand::rng();
    Ok(Reply::Array(
        (0..picks)
            .map(|_| Reply::Bulk(all[rng.random_range(0..all.len())].clone()))
            .collect(),
    ))
}

/// `SMOVE source destination member`, in Redis 7.0's order: a missing source answers 0
/// before any type is checked; then both types; a move to the same set answers whether the
/// member is there. Whether the member moved.
fn smove(
    node: &Node,
    records: &dyn Records,
    [source, destination]: [&Bytes; 2],
    member: Bytes,
    now_ms: u64,
) -> Result<bool, ExecError> {
    let Some(from) = read(records, source, SET, now_ms, false)? else {
        return Ok(false);
    };
    read(records, destination, SET, now_ms, false)?;
    if source == destination {
        return Ok(from.get(&member).is_some());
    }
    let moved = collection::update(node, records, source, SET, now_ms, |edit| {
        Ok(edit.remove(&member))
    })?;
    if moved {
        notify::emit(Class::SET, "srem", source);
        let added = collection::update(node, records, destination, SET, now_ms, |edit| {
            Ok(edit.get(&member).is_none() && edit.put(member.clone(), Bytes::new()))
        })?;
        if added {
            notify::emit(Class::SET, "sadd", destination);
        }
    }
    Ok(moved)
}

/// The `SSCAN` reply: the next cursor as a bulk string and the members found.
fn scan_reply(next: u64, found: Vec<Bytes>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(next.to_string())),
        Reply::Array(found.into_iter().map(Reply::Bulk).collect()),
    ])
}

/// One `SSCAN` call: the next cursor (0 at the end) and the matching members visited.
///
/// A small set (see the module docs) is returned whole; a larger one a page at a time
/// ([`collection::scan_page`]).
fn scan(set: &Collection, cursor: u64, options: &ScanOptions) -> (u64, Vec<Bytes>) {
    let matches = |m: &[u8]| {
        options
            .pattern
            .as_ref()
            .is_none_or(|p| glob_match(p, m, false))
    };
    let len = set.live_count();
    let integers = || members(set).all(|m| string2ll(m).is_some());
    if len <= SSCAN_WHOLE_MAX || (len <= SSCAN_WHOLE_INTEGERS_MAX && integers()) {
        return (
            0,
            members(set)
                .filter(|m| matches(m))
                .map(Bytes::copy_from_slice)
                .collect(),
        );
    }
    let visited = members(set).map(|m| (Bytes::copy_from_slice(m), ()));
    let (next, page) = collection::scan_page(visited, cursor, options.count);
    let found = page
        .into_iter()
        .map(|(m, ())| m)
        .filter(|m| matches(m))
        .collect();
    (next, found)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::exec::testing::{node, run, session};

    fn b(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn set_of(words: &[&str]) -> Reply {
        Reply::Set(words.iter().map(|w| b(w)).collect())
    }

    fn sorted(reply: Reply) -> Vec<Reply> {
        let (Reply::Array(mut items) | Reply::Set(mut items)) = reply else {
            panic!("{reply:?}");
        };
        items.sort_by_key(|r| format!("{r:?}"));
        items
    }

    #[test]
    fn a_store_replaces_a_string_and_drops_its_expiry() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SADD a x y");
        run(&node, &mut s, "SET dest str EX 100");
        assert_eq!(run(&node, &mut s, "SUNIONSTORE dest a"), Reply::Integer(2));
        assert_eq!(run(&node, &mut s, "TYPE dest"), Reply::Simple("set"));
        assert_eq!(run(&node, &mut s, "TTL dest"), Reply::Integer(-1));
        assert_eq!(run(&node, &mut s, "SMEMBERS dest"), set_of(&["x", "y"]));
    }

    #[test]
    fn a_store_over_a_set_leaves_only_the_new_members() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SADD a x y");
        run(&node, &mut s, "SADD b y z");
        run(&node, &mut s, "SADD dest old y");
        run(&node, &mut s, "EXPIRE dest 100");
        assert_eq!(
            run(&node, &mut s, "SINTERSTORE dest a b"),
            Reply::Integer(1)
        );
        assert_eq!(run(&node, &mut s, "SMEMBERS dest"), set_of(&["y"]));
        assert_eq!(run(&node, &mut s, "TTL dest"), Reply::Integer(-1));
        // A later add does not bring an old member back.
        run(&node, &mut s, "SADD dest w");
        assert_eq!(run(&node, &mut s, "SMEMBERS dest"), set_of(&["w", "y"]));
    }

    #[test]
    fn an_empty_store_result_deletes_the_destination_of_any_type() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SADD a x");
        run(&node, &mut s, "SET dest str");
        assert_eq!(run(&node, &mut s, "SDIFFSTORE dest a a"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "EXISTS dest"), Reply::Integer(0));
        run(&node, &mut s, "SADD dest old");
        assert_eq!(
            run(&node, &mut s, "SINTERSTORE dest a missing"),
            Reply::Integer(0)
        );
        assert_eq!(run(&node, &mut s, "EXISTS dest"), Reply::Integer(0));
    }

    #[test]
    fn a_replaced_set_merges_as_a_newer_write_that_clears_every_older_cell() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SADD dest old1 old2");
        let before = node.store.peek(b"dest", 0).unwrap();
        run(&node, &mut s, "SADD src new");
        run(&node, &mut s, "SUNIONSTORE dest src");
        let after = node.store.peek(b"dest", 0).unwrap();
        // A replica that has only the old set ends with only the new one, in either order.
        for (mut mine, theirs) in [(before.clone(), after.clone()), (after, before)] {
            mine.merge(&theirs);
            let set = ringcache_storage::collection::of_record(&mine, SET).unwrap();
            let live: Vec<_> = members(set).map(Bytes::copy_from_slice).collect();
            assert_eq!(live, [Bytes::from_static(b"new")]);
        }
    }

    #[test]
    fn spop_with_a_count_over_the_size_empties_the_set() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SADD k a b c");
        assert_eq!(sorted(run(&node, &mut s, "SPOP k 2")).len(), 2);
        assert_eq!(run(&node, &mut s, "SCARD k"), Reply::Integer(1));
        assert_eq!(sorted(run(&node, &mut s, "SPOP k 10")).len(), 1);
        assert_eq!(run(&node, &mut s, "EXISTS k"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "SPOP k"), Reply::Nil);
        assert_eq!(run(&node, &mut s, "SPOP k 3"), Reply::Set(Vec::new()));
    }

    #[test]
    fn spop_takes_distinct_members_and_reaches_every_member() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SADD k a b c d e f g h i j");
        let popped = sorted(run(&node, &mut s, "SPOP k 3"));
        assert_eq!(popped.len(), 3);
        assert!(popped.windows(2).all(|w| w[0] != w[1]));
        assert_eq!(run(&node, &mut s, "SCARD k"), Reply::Integer(7));
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            run(&node, &mut s, "SADD f a b c d");
            if let Reply::Bulk(member) = run(&node, &mut s, "SPOP f") {
                seen.insert(member);
            }
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
    }

    #[test]
    fn srandmember_counts_distinct_or_repeated_picks_and_bounds_repeats() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SADD k a b c");
        let distinct = sorted(run(&node, &mut s, "SRANDMEMBER k 2"));
        assert_eq!(distinct.len(), 2);
        assert_ne!(distinct[0], distinct[1]);
        assert_eq!(
            sorted(run(&node, &mut s, "SRANDMEMBER k 5")),
            [b("a"), b("b"), b("c")]
        );
        let repeated = sorted(run(&node, &mut s, "SRANDMEMBER k -50"));
        assert_eq!(repeated.len(), 50);
        assert!(
            repeated
                .iter()
                .all(|r| [b("a"), b("b"), b("c")].contains(r))
        );
        assert_eq!(
            run(&node, &mut s, "SRANDMEMBER k -1000001"),
            Reply::error(CommandError::TooManyPicks(SRANDMEMBER_PICKS_MAX))
        );
        assert_eq!(
            run(&node, &mut s, "SRANDMEMBER missing -1000001"),
            Reply::Array(Vec::new())
        );
        assert_eq!(run(&node, &mut s, "SCARD k"), Reply::Integer(3));
    }

    #[test]
    fn smove_moves_once_and_refuses_a_destination_of_another_type_before_removing() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SADD src a b");
        run(&node, &mut s, "SET str x");
        let wrongtype = Reply::error(CommandError::WrongType);
        assert_eq!(run(&node, &mut s, "SMOVE src str a"), wrongtype);
        assert_eq!(run(&node, &mut s, "SCARD src"), Reply::Integer(2));
        assert_eq!(run(&node, &mut s, "SMOVE missing str a"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "SMOVE src dst a"), Reply::Integer(1));
        assert_eq!(run(&node, &mut s, "SMOVE src dst a"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "SMOVE src dst b"), Reply::Integer(1));
        assert_eq!(run(&node, &mut s, "EXISTS src"), Reply::Integer(0));
        assert_eq!(run(&node, &mut s, "SMEMBERS dst"), set_of(&["a", "b"]));
    }

    #[test]
    fn sadd_of_members_already_there_writes_nothing() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SADD k a b");
        let before = node.store.peek(b"k", 0).unwrap();
        assert_eq!(run(&node, &mut s, "SADD k b a b"), Reply::Integer(0));
        assert_eq!(node.store.peek(b"k", 0).unwrap(), before);
    }

    /// Scans `key` to the end with `count`, running `between` after each call; every member
    /// returned.
    fn scan_all(
        node: &Node,
        s: &mut super::super::Session,
        key: &str,
        count: usize,
        mut between: impl FnMut(&Node, &mut super::super::Session, usize),
    ) -> BTreeSet<Vec<u8>> {
        let mut cursor = "0".to_string();
        let mut seen = BTreeSet::new();
        for call in 0..10_000 {
            let reply = run(node, s, &format!("SSCAN {key} {cursor} COUNT {count}"));
            let Reply::Array(parts) = reply else {
                panic!("{reply:?}")
            };
            let [Reply::Bulk(next), Reply::Array(found)] = &parts[..] else {
                panic!("{parts:?}")
            };
            for m in found {
                let Reply::Bulk(m) = m else { panic!("{m:?}") };
                seen.insert(m.to_vec());
            }
            cursor = String::from_utf8(next.to_vec()).unwrap();
            if cursor == "0" {
                return seen;
            }
            between(node, s, call);
        }
        panic!("the scan did not end");
    }

    #[test]
    fn sscan_of_a_small_set_answers_everything_in_one_call() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SADD k b a c");
        assert_eq!(
            run(&node, &mut s, "SSCAN k 0 COUNT 1"),
            Reply::Array(vec![b("0"), Reply::Array(vec![b("a"), b("b"), b("c")])])
        );
        assert_eq!(
            run(&node, &mut s, "SSCAN k 12345 MATCH [ab]"),
            Reply::Array(vec![b("0"), Reply::Array(vec![b("a"), b("b")])])
        );
    }

    #[test]
    fn sscan_of_a_large_set_pages_and_never_skips_a_member_present_throughout() {
        let node = node();
        let mut s = session(&node);
        let stable: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
        run(&node, &mut s, &format!("SADD k {}", stable.join(" ")));
        let seen = scan_all(&node, &mut s, "k", 7, |_, _, _| {});
        assert_eq!(seen.len(), 300);
        // Adds and removes of other members between calls.
        run(&node, &mut s, "SADD k x0 x1 x2 x3 x4 x5 x6 x7 x8 x9");
        let seen = scan_all(&node, &mut s, "k", 5, |node, s, call| {
            run(node, s, &format!("SREM k x{}", call % 10));
            run(node, s, &format!("SADD k y{call}"));
        });
        for m in &stable {
            assert!(seen.contains(m.as_bytes()), "{m} was skipped");
        }
    }

    #[test]
    fn sscan_checks_the_key_before_its_options() {
        let node = node();
        let mut s = session(&node);
        let empty = Reply::Array(vec![b("0"), Reply::Array(Vec::new())]);
        assert_eq!(run(&node, &mut s, "SSCAN missing 0 COUNT 0"), empty);
        run(&node, &mut s, "SET str x");
        assert_eq!(
            run(&node, &mut s, "SSCAN str 0 FOO"),
            Reply::error(CommandError::WrongType)
        );
        run(&node, &mut s, "SADD k a");
        assert_eq!(
            run(&node, &mut s, "SSCAN k 0 COUNT 0"),
            Reply::error(CommandError::Syntax)
        );
        assert_eq!(
            run(&node, &mut s, "SSCAN k x"),
            Reply::error(CommandError::InvalidCursor)
        );
    }

    #[test]
    fn set_algebra_follows_redis_including_type_checks_after_a_missing_key() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SADD a 1 2 3 4");
        run(&node, &mut s, "SADD b 3 4 5");
        run(&node, &mut s, "SET str x");
        assert_eq!(run(&node, &mut s, "SINTER a b"), set_of(&["3", "4"]));
        assert_eq!(
            run(&node, &mut s, "SUNION a b"),
            set_of(&["1", "2", "3", "4", "5"])
        );
        assert_eq!(run(&node, &mut s, "SDIFF a b"), set_of(&["1", "2"]));
        assert_eq!(run(&node, &mut s, "SDIFF missing a"), set_of(&[]));
        assert_eq!(
            run(&node, &mut s, "SINTERCARD 2 a b LIMIT 1"),
            Reply::Integer(1)
        );
        assert_eq!(run(&node, &mut s, "SINTERCARD 2 a b"), Reply::Integer(2));
        let wrongtype = Reply::error(CommandError::WrongType);
        for line in [
            "SINTER missing str",
            "SINTERCARD 2 missing str",
            "SUNION missing str",
            "SDIFF missing str",
            "SINTERSTORE dest missing str",
        ] {
            assert_eq!(run(&node, &mut s, line), wrongtype, "{line}");
        }
    }
}
