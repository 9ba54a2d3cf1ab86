//! The coordinator's rounds, one scenario per test: each level against replicas that answer,
//! are down at the start, stay silent, fail, or (for reads) hold an older record. Replicas are
//! `A`, `B`, `C`, ... in preference order; `targets("+-+")` marks them alive or down.

use bytes::Bytes;
use proptest::prelude::*;
use ringcache_storage::Version;

use super::*;

const A: NodeId = NodeId::new(1);
const B: NodeId = NodeId::new(2);
const C: NodeId = NodeId::new(3);
const D: NodeId = NodeId::new(4);
const E: NodeId = NodeId::new(5);
/// Not a replica of the key.
const STRANGER: NodeId = NodeId::new(99);
const NODES: [NodeId; 5] = [A, B, C, D, E];

const START_MS: u64 = 10_000;
const TIMEOUT_MS: u64 = 1_000;
const SPECULATE_MS: u64 = 50;
const DEADLINE_MS: u64 = START_MS + TIMEOUT_MS;
const SPECULATE_AT_MS: u64 = START_MS + SPECULATE_MS;

fn need(level: &'static str, required: usize) -> Need {
    Need {
        level,
        required,
        hints_count: false,
        blocking_repair: false,
    }
}

fn one() -> Need {
    need("ONE", 1)
}

fn quorum() -> Need {
    Need {
        blocking_repair: true,
        ..need("QUORUM", 2)
    }
}

fn all() -> Need {
    Need {
        blocking_repair: true,
        ..need("ALL", 3)
    }
}

fn any() -> Need {
    Need {
        hints_count: true,
        ..need("ANY", 1)
    }
}

/// One target per character, in preference order from `A`: `+` alive, `-` down.
fn targets(pattern: &str) -> Vec<Target> {
    pattern
        .chars()
        .zip(NODES)
        .map(|(mark, node)| Target {
            node,
            alive: mark == '+',
        })
        .collect()
}

fn version(hlc: u64) -> Version {
    Version { hlc, node: 1 }
}

/// A value written by `SET` at version `hlc`.
fn rec(hlc: u64) -> Record {
    Record::new(Bytes::from(format!("v{hlc}")), None, version(hlc))
}

/// The record a write round writes.
fn written() -> Record {
    rec(7)
}

fn write(need: Need, pattern: &str) -> (WriteRound, Vec<Effect>) {
    WriteRound::start(need, written(), &targets(pattern), START_MS, TIMEOUT_MS)
        .expect("enough replicas alive")
}

fn read(need: Need, pattern: &str) -> (ReadRound, Vec<Effect>) {
    ReadRound::start(need, &targets(pattern), START_MS, TIMEOUT_MS, SPECULATE_MS)
        .expect("enough replicas alive")
}

fn writes(nodes: &[NodeId], record: &Record) -> Vec<Effect> {
    nodes
        .iter()
        .map(|&to| Effect::Write {
            to,
            record: record.clone(),
        })
        .collect()
}

fn hints(nodes: &[NodeId], record: &Record) -> Vec<Effect> {
    nodes
        .iter()
        .map(|&target| Effect::Hint {
            target,
            record: record.clone(),
        })
        .collect()
}

fn reads(nodes: &[NodeId]) -> Vec<Effect> {
    nodes.iter().map(|&to| Effect::Read { to }).collect()
}

fn ok() -> Effect {
    Effect::Reply(Ok(None))
}

fn found(record: &Record) -> Effect {
    Effect::Reply(Ok(Some(record.clone())))
}

fn concat(parts: impl IntoIterator<Item = Vec<Effect>>) -> Vec<Effect> {
    parts.into_iter().flatten().collect()
}

/// The text of the one reply among `effects`, which must be an error.
fn error_text(effects: &[Effect]) -> String {
    let errors: Vec<String> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Reply(Err(error)) => Some(error.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "one error reply expected in {effects:?}");
    errors.into_iter().next().unwrap()
}

fn start_write_error(need: Need, pattern: &str) -> String {
    WriteRound::start(need, written(), &targets(pattern), START_MS, TIMEOUT_MS)
        .expect_err("too few replicas alive")
        .to_string()
}

fn start_read_error(need: Need, pattern: &str) -> String {
    ReadRound::start(need, &targets(pattern), START_MS, TIMEOUT_MS, SPECULATE_MS)
        .expect_err("too few replicas alive")
        .to_string()
}

// ---- Writes: every replica acknowledges ----

#[test]
fn a_write_goes_to_every_alive_replica() {
    for level in [one(), quorum(), all(), any()] {
        let (round, effects) = write(level, "+++");
        assert_eq!(effects, writes(&[A, B, C], &written()), "{}", level.level);
        assert_eq!(round.record(), &written());
        assert_eq!(round.deadline_ms(), DEADLINE_MS);
        assert!(!round.is_finished());
    }
}

#[test]
fn a_write_replies_at_the_ack_that_meets_its_level() {
    for (level, replying_ack) in [(one(), 1), (quorum(), 2), (all(), 3), (any(), 1)] {
        let (mut round, _) = write(level, "+++");
        for (i, node) in [A, B, C].into_iter().enumerate() {
            let expected = if i + 1 == replying_ack {
                vec![ok()]
            } else {
                vec![]
            };
            assert_eq!(
                round.on_ack(node),
                expected,
                "{} ack {}",
                level.level,
                i + 1
            );
        }
        assert!(round.is_finished(), "{}", level.level);
        assert_eq!(round.on_tick(DEADLINE_MS), vec![], "{}", level.level);
    }
}

#[test]
fn a_write_that_replied_finishes_when_the_last_replica_acks() {
    let (mut round, _) = write(one(), "+++");
    assert_eq!(round.on_ack(B), vec![ok()]);
    assert!(!round.is_finished());
    round.on_ack(A);
    assert!(!round.is_finished());
    round.on_ack(C);
    assert!(round.is_finished());
}

// ---- Writes: replicas down at the start ----

#[test]
fn a_down_replica_gets_a_hint_at_once_and_the_others_the_write() {
    let (mut round, effects) = write(quorum(), "+-+");
    assert_eq!(
        effects,
        vec![
            Effect::Write {
                to: A,
                record: written()
            },
            Effect::Hint {
                target: B,
                record: written()
            },
            Effect::Write {
                to: C,
                record: written()
            },
        ]
    );
    assert_eq!(round.on_ack(A), vec![]);
    assert_eq!(round.on_ack(C), vec![ok()]);
    assert!(round.is_finished());
}

#[test]
fn a_write_at_one_needs_a_single_alive_replica() {
    let (mut round, effects) = write(one(), "-+-");
    assert_eq!(
        effects,
        concat([
            hints(&[A], &written()),
            writes(&[B], &written()),
            hints(&[C], &written())
        ])
    );
    assert_eq!(round.on_ack(B), vec![ok()]);
    assert!(round.is_finished());
}

#[test]
fn a_write_with_too_few_alive_replicas_is_refused_and_nothing_is_written() {
    assert_eq!(
        start_write_error(all(), "++-"),
        "UNAVAILABLE ALL needs 3 replicas, 2 alive (nothing was written)"
    );
    assert_eq!(
        start_write_error(all(), "---"),
        "UNAVAILABLE ALL needs 3 replicas, 0 alive (nothing was written)"
    );
    assert_eq!(
        start_write_error(quorum(), "-+-"),
        "UNAVAILABLE QUORUM needs 2 replicas, 1 alive (nothing was written)"
    );
    assert_eq!(
        start_write_error(one(), "---"),
        "UNAVAILABLE ONE needs 1 replicas, 0 alive (nothing was written)"
    );
    assert_eq!(
        WriteRound::start(quorum(), written(), &targets("+--"), START_MS, TIMEOUT_MS).unwrap_err(),
        QuorumError::Unavailable {
            level: "QUORUM",
            needed: 2,
            alive: 1,
            write: true
        }
    );
}

#[test]
fn a_write_at_any_with_every_replica_down_is_acknowledged_by_a_stored_hint() {
    let (mut round, effects) = write(any(), "---");
    assert_eq!(effects, hints(&[A, B, C], &written()));
    assert!(!round.is_finished());
    assert_eq!(round.on_hint_stored(), vec![ok()]);
    assert!(round.is_finished());
    assert_eq!(round.on_hint_stored(), vec![]);
    assert_eq!(round.on_hint_stored(), vec![]);
    assert_eq!(round.on_tick(DEADLINE_MS), vec![]);
}

#[test]
fn a_write_at_any_whose_hints_were_not_stored_times_out() {
    let (mut round, _) = write(any(), "---");
    let effects = round.on_tick(DEADLINE_MS);
    assert_eq!(
        error_text(&effects),
        "TIMEOUT ANY got 0 of 1 acks in 1000 ms (the write may be applied)"
    );
    assert_eq!(
        effects.len(),
        1,
        "the hints were given at the start: {effects:?}"
    );
    assert!(round.is_finished());
}

#[test]
fn a_stored_hint_counts_only_at_any() {
    let (mut round, _) = write(quorum(), "++-");
    assert_eq!(round.on_hint_stored(), vec![]);
    assert_eq!(round.on_ack(A), vec![]);
    assert_eq!(round.on_ack(B), vec![ok()]);
}

#[test]
fn at_any_a_stored_hint_replies_before_the_alive_replicas_ack() {
    let (mut round, effects) = write(any(), "-++");
    assert_eq!(
        effects,
        concat([hints(&[A], &written()), writes(&[B, C], &written())])
    );
    assert_eq!(round.on_hint_stored(), vec![ok()]);
    assert!(!round.is_finished(), "B and C were not heard from yet");
    assert_eq!(round.on_ack(B), vec![]);
    assert_eq!(round.on_ack(C), vec![]);
    assert!(round.is_finished());
}

// ---- Writes: slow replicas ----

#[test]
fn a_write_short_of_its_level_at_the_deadline_times_out_and_hints_the_silent() {
    let (mut round, _) = write(all(), "+++");
    round.on_ack(A);
    round.on_ack(C);
    assert_eq!(round.on_tick(DEADLINE_MS - 1), vec![]);
    let effects = round.on_tick(DEADLINE_MS);
    assert_eq!(
        effects,
        concat([
            hints(&[B], &written()),
            vec![Effect::Reply(Err(QuorumError::Timeout {
                level: "ALL",
                needed: 3,
                got: 2,
                timeout_ms: TIMEOUT_MS,
                write: true,
            }))]
        ])
    );
    assert_eq!(
        error_text(&effects),
        "TIMEOUT ALL got 2 of 3 acks in 1000 ms (the write may be applied)"
    );
    assert!(round.is_finished());
    // B answers late: already hinted, no second reply.
    assert_eq!(round.on_ack(B), vec![]);
    assert_eq!(round.on_failure(B), vec![]);
    assert_eq!(round.on_tick(DEADLINE_MS + 1), vec![]);
}

#[test]
fn a_quorum_write_with_one_ack_times_out() {
    let (mut round, _) = write(quorum(), "+++");
    round.on_ack(B);
    let effects = round.on_tick(DEADLINE_MS + 5);
    assert_eq!(
        effects[..2],
        hints(&[A, C], &written())[..],
        "the silent replicas get hints"
    );
    assert_eq!(
        error_text(&effects),
        "TIMEOUT QUORUM got 1 of 2 acks in 1000 ms (the write may be applied)"
    );
}

#[test]
fn a_write_with_no_ack_at_all_times_out_at_one() {
    let (mut round, _) = write(one(), "+-+");
    let effects = round.on_tick(DEADLINE_MS);
    assert_eq!(
        error_text(&effects),
        "TIMEOUT ONE got 0 of 1 acks in 1000 ms (the write may be applied)"
    );
    assert_eq!(
        effects.len(),
        3,
        "hints for A and C, and the reply: {effects:?}"
    );
}

#[test]
fn a_write_that_met_its_level_hints_the_silent_replicas_at_the_deadline_without_replying_again() {
    let (mut round, _) = write(quorum(), "+++");
    round.on_ack(A);
    assert_eq!(round.on_ack(B), vec![ok()]);
    assert!(!round.is_finished());
    assert_eq!(round.on_tick(DEADLINE_MS), hints(&[C], &written()));
    assert!(round.is_finished());
}

// ---- Writes: failing replicas ----

#[test]
fn a_failed_replica_gets_a_hint() {
    let (mut round, _) = write(quorum(), "+++");
    assert_eq!(round.on_failure(A), hints(&[A], &written()));
    assert_eq!(round.on_ack(B), vec![]);
    assert_eq!(round.on_ack(C), vec![ok()]);
    assert!(round.is_finished());
}

#[test]
fn a_write_fails_as_soon_as_its_level_can_no_longer_be_met() {
    let (mut round, _) = write(quorum(), "+++");
    round.on_failure(A);
    let effects = round.on_failure(C);
    assert_eq!(effects[0], hints(&[C], &written())[0]);
    assert_eq!(
        error_text(&effects),
        "FAILED QUORUM got 0 of 2 acks, 2 replicas failed (the write may be applied)"
    );
    // B acks afterwards: the round finishes without a second reply.
    assert!(!round.is_finished());
    assert_eq!(round.on_ack(B), vec![]);
    assert!(round.is_finished());

    let (mut round, _) = write(all(), "+++");
    round.on_ack(A);
    round.on_ack(B);
    assert_eq!(
        error_text(&round.on_failure(C)),
        "FAILED ALL got 2 of 3 acks, 1 replicas failed (the write may be applied)"
    );
}

#[test]
fn a_write_failure_counts_only_the_replicas_that_failed_not_those_down_at_the_start() {
    let (mut round, _) = write(quorum(), "++-");
    let effects = round.on_failure(A);
    assert_eq!(
        effects,
        vec![
            Effect::Hint {
                target: A,
                record: written()
            },
            Effect::Reply(Err(QuorumError::Failed {
                level: "QUORUM",
                needed: 2,
                got: 0,
                failed: 1,
                write: true,
            })),
        ]
    );
}

#[test]
fn a_write_at_one_survives_failures_while_a_replica_may_still_ack() {
    let (mut round, _) = write(one(), "+++");
    assert_eq!(round.on_failure(A), hints(&[A], &written()));
    assert_eq!(round.on_failure(B), hints(&[B], &written()));
    assert_eq!(round.on_ack(C), vec![ok()]);
    assert!(round.is_finished());
}

#[test]
fn a_write_at_any_whose_replicas_all_fail_waits_for_a_stored_hint() {
    let (mut round, _) = write(any(), "+++");
    for node in [A, B, C] {
        assert_eq!(round.on_failure(node), hints(&[node], &written()));
    }
    assert!(!round.is_finished());
    assert_eq!(round.on_hint_stored(), vec![ok()]);
    assert!(round.is_finished());
}

// ---- Writes: duplicate and unexpected messages ----

#[test]
fn a_duplicate_ack_counts_once() {
    let (mut round, _) = write(quorum(), "+++");
    assert_eq!(round.on_ack(A), vec![]);
    assert_eq!(round.on_ack(A), vec![]);
    assert_eq!(round.on_ack(A), vec![]);
    assert_eq!(round.on_ack(B), vec![ok()]);
}

#[test]
fn acks_and_failures_from_other_nodes_or_hinted_replicas_are_ignored() {
    let (mut round, _) = write(quorum(), "+-+");
    assert_eq!(round.on_ack(STRANGER), vec![]);
    assert_eq!(round.on_failure(STRANGER), vec![]);
    // B was down and hinted; an ack from it was not asked for and does not count.
    assert_eq!(round.on_ack(B), vec![]);
    assert_eq!(round.on_failure(B), vec![]);
    assert_eq!(round.on_ack(A), vec![]);
    // A failure after an ack changes nothing.
    assert_eq!(round.on_failure(A), vec![]);
    assert_eq!(round.on_ack(C), vec![ok()]);
}

// ---- Writes: N = 1 and N = 5 ----

#[test]
fn a_single_replica_key_is_written_or_refused_or_hinted() {
    let (mut round, effects) = write(one(), "+");
    assert_eq!(effects, writes(&[A], &written()));
    assert_eq!(round.on_ack(A), vec![ok()]);
    assert!(round.is_finished());

    // QUORUM of one replica is one.
    assert_eq!(
        start_write_error(need("QUORUM", 1), "-"),
        "UNAVAILABLE QUORUM needs 1 replicas, 0 alive (nothing was written)"
    );

    let (mut round, effects) = write(any(), "-");
    assert_eq!(effects, hints(&[A], &written()));
    assert_eq!(round.on_hint_stored(), vec![ok()]);

    let (mut round, _) = write(one(), "+");
    assert_eq!(
        error_text(&round.on_failure(A)),
        "FAILED ONE got 0 of 1 acks, 1 replicas failed (the write may be applied)"
    );
}

#[test]
fn a_quorum_of_five_replicas_is_three() {
    let quorum5 = Need {
        blocking_repair: true,
        ..need("QUORUM", 3)
    };
    assert_eq!(
        start_write_error(quorum5, "+--+-"),
        "UNAVAILABLE QUORUM needs 3 replicas, 2 alive (nothing was written)"
    );
    let (mut round, effects) = write(quorum5, "+-+-+");
    assert_eq!(
        effects,
        concat([
            writes(&[A], &written()),
            hints(&[B], &written()),
            writes(&[C], &written()),
            hints(&[D], &written()),
            writes(&[E], &written()),
        ])
    );
    assert_eq!(round.on_ack(E), vec![]);
    assert_eq!(round.on_ack(A), vec![]);
    assert_eq!(round.on_ack(C), vec![ok()]);
    assert!(round.is_finished());

    let (mut round, _) = write(quorum5, "+++++");
    round.on_ack(A);
    round.on_ack(B);
    let effects = round.on_tick(DEADLINE_MS);
    assert_eq!(
        effects[..3],
        hints(&[C, D, E], &written())[..],
        "every silent replica is hinted"
    );
    assert_eq!(
        error_text(&effects),
        "TIMEOUT QUORUM got 2 of 3 acks in 1000 ms (the write may be applied)"
    );
}

// ---- Reads: every replica answers, up to date ----

#[test]
fn a_read_asks_as_many_alive_replicas_as_its_level_needs_in_the_given_order() {
    assert_eq!(read(one(), "+++").1, reads(&[A]));
    assert_eq!(read(one(), "-++").1, reads(&[B]));
    assert_eq!(read(quorum(), "+++").1, reads(&[A, B]));
    assert_eq!(read(quorum(), "+-+").1, reads(&[A, C]));
    assert_eq!(read(all(), "+++").1, reads(&[A, B, C]));
}

#[test]
fn a_read_replies_with_the_record_once_its_level_answered() {
    let record = rec(5);
    for (level, asked) in [
        (one(), vec![A]),
        (quorum(), vec![A, B]),
        (all(), vec![A, B, C]),
    ] {
        let (mut round, _) = read(level, "+++");
        let last = asked.len() - 1;
        for (i, &node) in asked.iter().enumerate() {
            let expected = if i == last {
                vec![found(&record)]
            } else {
                vec![]
            };
            assert_eq!(
                round.on_reply(node, Some(record.clone())),
                expected,
                "{} reply {}",
                level.level,
                i + 1
            );
        }
        assert!(round.is_finished(), "{}", level.level);
        assert_eq!(round.on_tick(DEADLINE_MS), vec![], "{}", level.level);
    }
}

#[test]
fn a_read_of_a_key_no_replica_holds_replies_none_without_repairs() {
    let (mut round, _) = read(all(), "+++");
    round.on_reply(A, None);
    round.on_reply(B, None);
    assert_eq!(round.on_reply(C, None), vec![Effect::Reply(Ok(None))]);
    assert!(round.is_finished());
}

#[test]
fn a_read_with_too_few_alive_replicas_is_refused() {
    assert_eq!(
        start_read_error(all(), "+-+"),
        "UNAVAILABLE ALL needs 3 replicas, 2 alive"
    );
    assert_eq!(
        start_read_error(quorum(), "--+"),
        "UNAVAILABLE QUORUM needs 2 replicas, 1 alive"
    );
    assert_eq!(
        start_read_error(one(), "---"),
        "UNAVAILABLE ONE needs 1 replicas, 0 alive"
    );
}

// ---- Reads: stale replicas and read repair ----

#[test]
fn a_quorum_read_repairs_the_stale_replica_before_replying() {
    let (newer, older) = (rec(9), rec(4));
    let (mut round, _) = read(quorum(), "+++");
    assert_eq!(round.on_reply(A, Some(newer.clone())), vec![]);
    assert_eq!(
        round.on_reply(B, Some(older)),
        writes(&[B], &newer),
        "the reply waits for the repair"
    );
    assert!(!round.is_finished());
    assert_eq!(round.on_ack(B), vec![found(&newer)]);
    assert!(round.is_finished());
}

#[test]
fn a_replica_without_the_key_is_stale() {
    let newer = rec(9);
    let (mut round, _) = read(quorum(), "+++");
    round.on_reply(A, None);
    assert_eq!(round.on_reply(B, Some(newer.clone())), writes(&[A], &newer));
    assert_eq!(round.on_ack(A), vec![found(&newer)]);
}

#[test]
fn read_repair_writes_only_to_stale_replicas_of_the_read_set() {
    let (newer, older) = (rec(9), rec(4));
    let (mut round, _) = read(all(), "+++");
    round.on_reply(A, Some(newer.clone()));
    round.on_reply(B, None);
    assert_eq!(
        round.on_reply(C, Some(older)),
        writes(&[B, C], &newer),
        "A is up to date"
    );
    assert_eq!(round.on_ack(C), vec![]);
    assert_eq!(round.on_ack(C), vec![], "a duplicate ack");
    assert_eq!(round.on_ack(A), vec![], "A was not repaired");
    assert_eq!(round.on_ack(B), vec![found(&newer)]);

    // C is outside the read set of a quorum read: it is not written even if it is stale.
    let (mut round, _) = read(quorum(), "+++");
    round.on_reply(B, Some(newer.clone()));
    assert_eq!(round.on_reply(A, Some(newer.clone())), vec![found(&newer)]);
    assert!(round.is_finished());
}

#[test]
fn read_repair_sends_the_cell_wise_merge() {
    // A holds the newer value, B the newer expiry: both lack something.
    let held_by_a = Record {
        kind: Default::default(),
        value: Some(ringcache_storage::Value::Bytes(Bytes::from_static(b"new"))),
        value_version: version(9),
        expiry_ms: Some(1),
        expiry_version: version(2),
    };
    let held_by_b = Record {
        kind: Default::default(),
        value: Some(ringcache_storage::Value::Bytes(Bytes::from_static(b"old"))),
        value_version: version(3),
        expiry_ms: None,
        expiry_version: version(8),
    };
    let merged = Record {
        kind: Default::default(),
        value: Some(ringcache_storage::Value::Bytes(Bytes::from_static(b"new"))),
        value_version: version(9),
        expiry_ms: None,
        expiry_version: version(8),
    };
    assert_eq!(
        merge_all([Some(&held_by_a), None, Some(&held_by_b)]),
        Some(merged.clone())
    );
    assert_eq!(merge_all([None, None]), None);
    let (mut round, _) = read(quorum(), "+++");
    round.on_reply(A, Some(held_by_a));
    assert_eq!(round.on_reply(B, Some(held_by_b)), writes(&[A, B], &merged));
    round.on_ack(A);
    assert_eq!(round.on_ack(B), vec![found(&merged)]);
}

#[test]
fn below_quorum_read_repair_does_not_hold_the_reply() {
    // TWO of five replicas is below QUORUM (3): repair in the background.
    let (newer, older) = (rec(9), rec(4));
    let (mut round, _) = read(need("TWO", 2), "+++++");
    round.on_reply(A, Some(older));
    assert_eq!(
        round.on_reply(B, Some(newer.clone())),
        concat([writes(&[A], &newer), vec![found(&newer)]])
    );
    assert!(!round.is_finished(), "the repair is outstanding");
    assert_eq!(round.on_ack(A), vec![]);
    assert!(round.is_finished());
}

#[test]
fn a_background_repair_that_fails_or_times_out_becomes_a_hint() {
    let (newer, older) = (rec(9), rec(4));
    let (mut round, _) = read(need("TWO", 2), "+++++");
    round.on_reply(A, Some(older.clone()));
    round.on_reply(B, Some(newer.clone()));
    assert_eq!(round.on_failure(A), hints(&[A], &newer));
    assert!(round.is_finished());

    let (mut round, _) = read(need("TWO", 2), "+++++");
    round.on_reply(A, Some(older));
    round.on_reply(B, Some(newer.clone()));
    assert_eq!(round.on_tick(DEADLINE_MS - 1), vec![]);
    assert_eq!(round.on_tick(DEADLINE_MS), hints(&[A], &newer));
    assert!(round.is_finished());
}

#[test]
fn a_blocking_repair_that_times_out_makes_the_read_time_out() {
    // Replying the merged record would let a later quorum read (B and C) see the older one.
    let (newer, older) = (rec(9), rec(4));
    let (mut round, _) = read(quorum(), "+++");
    round.on_reply(A, Some(newer.clone()));
    round.on_reply(B, Some(older));
    assert_eq!(round.deadline_ms(), DEADLINE_MS);
    let effects = round.on_tick(DEADLINE_MS);
    assert_eq!(effects[0], hints(&[B], &newer)[0]);
    assert_eq!(
        error_text(&effects),
        "TIMEOUT QUORUM got 1 of 2 replies in 1000 ms"
    );
    assert!(round.is_finished());
    assert_eq!(round.on_ack(B), vec![], "a late ack changes nothing");
}

#[test]
fn a_blocking_repair_that_fails_makes_the_read_fail() {
    let (newer, older) = (rec(9), rec(4));
    let (mut round, _) = read(all(), "+++");
    round.on_reply(A, Some(older.clone()));
    round.on_reply(B, Some(newer.clone()));
    assert_eq!(round.on_reply(C, Some(older)), writes(&[A, C], &newer));
    let effects = round.on_failure(A);
    assert_eq!(effects[0], hints(&[A], &newer)[0]);
    assert_eq!(
        error_text(&effects),
        "FAILED ALL got 1 of 3 replies, 1 replicas failed"
    );
    assert!(!round.is_finished(), "C's repair is outstanding");
    assert_eq!(round.on_ack(C), vec![]);
    assert!(round.is_finished());
}

// ---- Reads: slow replicas and speculation ----

#[test]
fn a_slow_replica_makes_the_read_ask_the_next_alive_one_after_the_speculative_delay() {
    let record = rec(5);
    let (mut round, _) = read(quorum(), "++-+");
    assert_eq!(round.deadline_ms(), SPECULATE_AT_MS);
    round.on_reply(A, Some(record.clone()));
    assert_eq!(round.on_tick(SPECULATE_AT_MS - 1), vec![]);
    // C is down: D is the next alive replica.
    assert_eq!(round.on_tick(SPECULATE_AT_MS), reads(&[D]));
    assert_eq!(round.deadline_ms(), DEADLINE_MS);
    assert_eq!(round.on_tick(SPECULATE_AT_MS + 10), vec![], "only once");
    assert_eq!(
        round.on_reply(D, Some(record.clone())),
        vec![found(&record)]
    );
    assert!(round.is_finished());
}

#[test]
fn a_slow_replica_that_answers_late_and_stale_is_repaired_in_the_background() {
    let (newer, older) = (rec(9), rec(4));
    // The driver may have dropped the finished round by then; if not, it repairs B anyway.
    let (mut round, _) = read(quorum(), "+++");
    round.on_reply(A, Some(newer.clone()));
    round.on_tick(SPECULATE_AT_MS);
    assert_eq!(round.on_reply(C, Some(newer.clone())), vec![found(&newer)]);
    assert_eq!(round.on_reply(B, Some(older)), writes(&[B], &newer));
    assert_eq!(round.on_reply(B, Some(rec(1))), vec![], "a duplicate reply");

    let (mut round, _) = read(quorum(), "+++");
    round.on_reply(A, Some(newer.clone()));
    round.on_tick(SPECULATE_AT_MS);
    round.on_reply(C, Some(newer.clone()));
    assert_eq!(round.on_reply(B, Some(newer.clone())), vec![], "up to date");
}

#[test]
fn the_first_replies_to_come_make_the_read_set() {
    let (newer, older) = (rec(9), rec(4));
    let (mut round, _) = read(quorum(), "+++");
    round.on_tick(SPECULATE_AT_MS);
    round.on_reply(C, Some(older.clone()));
    assert_eq!(round.on_reply(B, Some(newer.clone())), writes(&[C], &newer));
    // A answers while the repair is outstanding: a background repair, no reply yet.
    assert_eq!(round.on_reply(A, Some(older)), writes(&[A], &newer));
    assert_eq!(round.on_ack(A), vec![], "A's repair is not awaited");
    assert_eq!(round.on_ack(C), vec![found(&newer)]);
}

#[test]
fn without_a_spare_replica_speculation_asks_nobody() {
    let (mut round, _) = read(all(), "+++");
    assert_eq!(round.on_tick(SPECULATE_AT_MS), vec![]);
    assert_eq!(round.deadline_ms(), DEADLINE_MS);
}

#[test]
fn a_speculative_delay_past_the_timeout_never_speculates() {
    let (mut round, _) =
        ReadRound::start(one(), &targets("+++"), START_MS, TIMEOUT_MS, TIMEOUT_MS).expect("alive");
    assert_eq!(round.deadline_ms(), DEADLINE_MS);
    assert_eq!(round.on_tick(DEADLINE_MS - 1), vec![]);
    assert_eq!(
        error_text(&round.on_tick(DEADLINE_MS)),
        "TIMEOUT ONE got 0 of 1 replies in 1000 ms"
    );
}

#[test]
fn a_read_short_of_its_level_at_the_deadline_times_out() {
    let (mut round, _) = read(quorum(), "+++");
    round.on_reply(B, Some(rec(3)));
    round.on_tick(SPECULATE_AT_MS);
    let effects = round.on_tick(DEADLINE_MS);
    assert_eq!(
        effects,
        vec![Effect::Reply(Err(QuorumError::Timeout {
            level: "QUORUM",
            needed: 2,
            got: 1,
            timeout_ms: TIMEOUT_MS,
            write: false,
        }))]
    );
    assert_eq!(
        error_text(&effects),
        "TIMEOUT QUORUM got 1 of 2 replies in 1000 ms"
    );
    assert!(round.is_finished());
    assert_eq!(round.on_reply(A, Some(rec(3))), vec![], "too late");
    assert_eq!(round.on_failure(C), vec![]);
    assert_eq!(round.on_tick(DEADLINE_MS + 1), vec![]);

    let (mut round, _) = read(all(), "+++");
    round.on_reply(A, None);
    round.on_reply(C, None);
    assert_eq!(
        error_text(&round.on_tick(DEADLINE_MS)),
        "TIMEOUT ALL got 2 of 3 replies in 1000 ms"
    );
}

// ---- Reads: failing replicas ----

#[test]
fn a_failing_read_replica_makes_the_read_ask_another() {
    let record = rec(5);
    let (mut round, _) = read(quorum(), "+++");
    assert_eq!(round.on_failure(A), reads(&[C]));
    assert_eq!(round.on_failure(A), vec![], "a duplicate failure");
    round.on_reply(C, Some(record.clone()));
    assert_eq!(
        round.on_reply(B, Some(record.clone())),
        vec![found(&record)]
    );
    assert_eq!(round.on_reply(A, Some(record)), vec![], "A failed");
}

#[test]
fn a_read_fails_when_too_few_replicas_can_still_answer() {
    let (mut round, _) = read(quorum(), "++-");
    let effects = round.on_failure(B);
    assert_eq!(
        effects,
        vec![Effect::Reply(Err(QuorumError::Failed {
            level: "QUORUM",
            needed: 2,
            got: 0,
            failed: 1,
            write: false,
        }))]
    );
    assert_eq!(
        error_text(&effects),
        "FAILED QUORUM got 0 of 2 replies, 1 replicas failed"
    );
    assert!(round.is_finished());
    assert_eq!(round.on_reply(A, Some(rec(1))), vec![]);
    assert_eq!(round.on_tick(DEADLINE_MS), vec![]);

    let (mut round, _) = read(one(), "+++");
    assert_eq!(round.on_failure(A), reads(&[B]));
    assert_eq!(round.on_failure(B), reads(&[C]));
    assert_eq!(
        error_text(&round.on_failure(C)),
        "FAILED ONE got 0 of 1 replies, 3 replicas failed"
    );
}

#[test]
fn a_read_waits_while_enough_asked_replicas_may_still_answer() {
    // A speculative read to C is out; B fails; A and C can still make the quorum.
    let record = rec(5);
    let (mut round, _) = read(quorum(), "+++");
    round.on_tick(SPECULATE_AT_MS);
    assert_eq!(round.on_failure(B), vec![]);
    round.on_reply(C, Some(record.clone()));
    assert_eq!(
        round.on_reply(A, Some(record.clone())),
        vec![found(&record)]
    );
}

// ---- Reads: unexpected messages, N = 1 and N = 5 ----

#[test]
fn replies_from_replicas_not_asked_are_ignored() {
    let (mut round, _) = read(quorum(), "+++");
    assert_eq!(round.on_reply(C, Some(rec(9))), vec![], "C was not asked");
    assert_eq!(round.on_reply(STRANGER, Some(rec(9))), vec![]);
    assert_eq!(round.on_ack(STRANGER), vec![]);
    assert_eq!(round.on_failure(STRANGER), vec![]);
    round.on_reply(A, Some(rec(2)));
    assert_eq!(round.on_reply(A, Some(rec(9))), vec![], "a duplicate");
    assert_eq!(round.on_reply(B, Some(rec(2))), vec![found(&rec(2))]);
}

#[test]
fn a_single_replica_read() {
    let (mut round, effects) = read(one(), "+");
    assert_eq!(effects, reads(&[A]));
    assert_eq!(round.on_tick(SPECULATE_AT_MS), vec![], "nobody else to ask");
    assert_eq!(round.on_reply(A, Some(rec(1))), vec![found(&rec(1))]);
    assert_eq!(
        start_read_error(one(), "-"),
        "UNAVAILABLE ONE needs 1 replicas, 0 alive"
    );
}

#[test]
fn a_quorum_read_of_five_replicas_reads_three_and_repairs_them() {
    let quorum5 = Need {
        blocking_repair: true,
        ..need("QUORUM", 3)
    };
    let (newer, older) = (rec(9), rec(4));
    let (mut round, effects) = read(quorum5, "-++++");
    assert_eq!(effects, reads(&[B, C, D]));
    round.on_reply(B, Some(older.clone()));
    assert_eq!(round.on_failure(C), reads(&[E]));
    round.on_reply(D, Some(newer.clone()));
    assert_eq!(round.on_reply(E, Some(older)), writes(&[B, E], &newer));
    round.on_ack(E);
    assert_eq!(round.on_ack(B), vec![found(&newer)]);
    assert_eq!(
        start_read_error(quorum5, "--+-+"),
        "UNAVAILABLE QUORUM needs 3 replicas, 2 alive"
    );
}

#[test]
fn the_deadline_counts_from_the_start() {
    let (round, _) = WriteRound::start(one(), written(), &targets("+"), 123, 456).expect("alive");
    assert_eq!(round.deadline_ms(), 579);
    let (round, _) = ReadRound::start(one(), &targets("+"), 123, 456, 7).expect("alive");
    assert_eq!(round.deadline_ms(), 130);
}

// ---- Any sequence of events: one reply, and done by the deadline ----

/// An event a round may receive, from replica `node % n`, or from a stranger.
#[derive(Debug, Clone)]
enum Event {
    Ack(usize),
    Failure(usize),
    Reply(usize, Option<u64>),
    HintStored,
    Tick(u64),
}

fn event() -> impl Strategy<Value = Event> {
    let node = 0usize..6;
    prop_oneof![
        node.clone().prop_map(Event::Ack),
        node.clone().prop_map(Event::Failure),
        (node, prop::option::of(1u64..5)).prop_map(|(n, v)| Event::Reply(n, v)),
        Just(Event::HintStored),
        (0..TIMEOUT_MS + 10).prop_map(|t| Event::Tick(START_MS + t)),
    ]
}

fn level() -> impl Strategy<Value = Need> {
    prop_oneof![Just(one()), Just(quorum()), Just(all()), Just(any())]
}

fn node_of(index: usize, n: usize) -> NodeId {
    if index < n { NODES[index] } else { STRANGER }
}

fn replies_in(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Reply(_)))
        .count()
}

proptest! {
    #[test]
    fn a_write_round_replies_exactly_once_and_is_done_at_its_deadline(
        level in level(),
        alive in prop::collection::vec(prop::bool::ANY, 3),
        events in prop::collection::vec(event(), 0..24),
    ) {
        let targets: Vec<Target> =
            alive.iter().zip(NODES).map(|(&alive, node)| Target { node, alive }).collect();
        let Ok((mut round, effects)) =
            WriteRound::start(level, written(), &targets, START_MS, TIMEOUT_MS)
        else {
            return Ok(());
        };
        let mut replies = replies_in(&effects);
        let mut now = START_MS;
        for event in events {
            let effects = match event {
                Event::Ack(i) | Event::Reply(i, _) => round.on_ack(node_of(i, 3)),
                Event::Failure(i) => round.on_failure(node_of(i, 3)),
                Event::HintStored => round.on_hint_stored(),
                Event::Tick(at) => {
                    now = now.max(at);
                    round.on_tick(now)
                }
            };
            replies += replies_in(&effects);
            prop_assert!(replies <= 1, "a second reply: {effects:?}");
            if round.is_finished() {
                prop_assert_eq!(replies, 1);
            }
        }
        replies += replies_in(&round.on_tick(round.deadline_ms().max(now)));
        prop_assert_eq!(replies, 1);
        prop_assert!(round.is_finished());
    }

    #[test]
    fn a_read_round_replies_exactly_once_and_is_done_at_its_deadline(
        level in prop_oneof![Just(one()), Just(quorum()), Just(all())],
        alive in prop::collection::vec(prop::bool::ANY, 3),
        events in prop::collection::vec(event(), 0..24),
    ) {
        let targets: Vec<Target> =
            alive.iter().zip(NODES).map(|(&alive, node)| Target { node, alive }).collect();
        let Ok((mut round, effects)) =
            ReadRound::start(level, &targets, START_MS, TIMEOUT_MS, SPECULATE_MS)
        else {
            return Ok(());
        };
        let mut replies = replies_in(&effects);
        let mut now = START_MS;
        for event in events {
            let effects = match event {
                Event::Ack(i) => round.on_ack(node_of(i, 3)),
                Event::Failure(i) => round.on_failure(node_of(i, 3)),
                Event::Reply(i, v) => round.on_reply(node_of(i, 3), v.map(rec)),
                Event::HintStored => Vec::new(),
                Event::Tick(at) => {
                    now = now.max(at);
                    round.on_tick(now)
                }
            };
            replies += replies_in(&effects);
            prop_assert!(replies <= 1, "a second reply: {effects:?}");
            if round.is_finished() {
                prop_assert_eq!(replies, 1);
            }
        }
        let mut deadline = round.deadline_ms().max(now);
        // At most a speculative tick before the real deadline.
        for _ in 0..2 {
            replies += replies_in(&round.on_tick(deadline));
            deadline = round.deadline_ms().max(deadline);
        }
        prop_assert_eq!(replies, 1);
        prop_assert!(round.is_finished());
    }
}
