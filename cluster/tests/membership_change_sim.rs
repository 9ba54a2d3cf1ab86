//! A deterministic simulation of membership changes under load: one node or two join a
//! cluster of three (or five), stream their ranges in and turn Normal, then a node is
//! decommissioned, pushes its ranges out and turns Left, while clients write and read at
//! random levels over a network that loses, duplicates and delays messages, with nodes
//! crashing and the network partitioning (the model of `simulator.rs`, extended in
//! `sim/world/membership.rs`).
//!
//! What is exercised, as `src/cluster/streaming.rs` and `src/cluster/mod.rs` do it:
//! - Each node learns a membership change by gossip, 0–300 ms late, and computes the future
//!   ring from its view as the runtime's `future_owners` does (the ring plus every member
//!   Joining, up or down; minus the member Leaving if there is one); its writes go to the
//!   pending replicas of its view too (one more ack for each one, up or not), its reads use
//!   the ring now. A node announcing a join or a leave waits longer than gossip takes before
//!   it streams (the runtime's 3 s `JOIN_SETTLE`, scaled).
//! - Each joining node waits for its turn (in the future ring, no node Leaving), plans its
//!   pulls with `moved_ranges` against the future ring and `Plan::for_join` (waiting while a
//!   source looks down, as the runtime), walks each source
//!   a few keys at a time, merges, keeps the plan (`Plan::encode`, with the future ring it
//!   was made for) after each batch, crashes after a few batches in every seed and resumes
//!   the kept plan if the future ring is the same; in some seeds a source crashes in the
//!   middle of its walk and the walk waits for it.
//! - In half the seeds two nodes join: at about the same time (both plan against the same
//!   future ring, and ranges where both gain have two losers), or staggered so that the
//!   second starts while the first streams: the first sees the future ring change, drops
//!   its plan and plans again. In some seeds the first joining node's crash lasts 1–3 s:
//!   held dead, it stays a pending replica, so the writes to its ranges need its extra ack
//!   from the others and keep hints for it.
//! - The leaving node pushes the ranges it loses to their gainers, then leaves the ring.
//! - Old owners drop what they no longer replicate a while after the ring settles.
//!
//! The invariants, on top of the simulator's (reads during the run never older than a
//! promise made before them at an overlapping level; no version backwards; every round
//! replies once; replicas converge):
//! - Once every fault healed and the hints drained, each write acknowledged at W (each read
//!   that repaired its read set at R') is held by at least W (R') of its key's final
//!   replicas, so every read at R with W + R > N through the final ring returns it; reads at
//!   ONE, QUORUM and ALL of every key through the final ring are checked so.
//! - Every final replica a finished write was sent to (as a replica or a pending replica)
//!   holds it; after the final reads at ALL, every final replica holds every acknowledged
//!   write and no other node holds the key.
//! - Each joining node that crashed mid-stream resumed its kept plan with progress in it (or
//!   planned again for another future ring), and finished; the node that left is out of the
//!   ring.
//!
//! `SIM_SEED=n` runs seed `n`; `SIM_SEEDS=n` runs `n` fresh seeds; `SIM_OPS=n` sets the
//! operations per seed. `SIM_BREAK` breaks one rule, to see the checker catch what it loses:
//! `no-pending` (writes skip pending replicas), `pending-up-only` (a pending replica down adds
//! no ack: the runtime's rule before), `no-settle` (stream at once after announcing),
//! `no-handover` (no writes to the previous ring's replicas after a change),
//! `no-repair-pending` (blocking read repair skips pending replicas), `single-loser-only`
//! (a range with two losers is pulled from one of them only), or `dead-joiner-not-pending`
//! (a joining node seen down is left out of the future ring), or `normal-apart` (a joining
//! node done while another still streams turns Normal alone instead of Ready: the ring then
//! holds one of them without the other and makes it a replica of ranges it never streamed;
//! seeds 31 and 37 of the CI list read older than a promise at ONE). `SIM_TRACE_KEY=k` prints the
//! story of key `k`. Run with `-- --nocapture` for a line per seed.

mod sim;

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Instant;

use sim::{Config, PendingRule, Rng, Scenario, SourceRule, World, env_number};

/// Seeds run by `cargo test`, in CI.
const CI_SEEDS: std::ops::Range<u64> = 1..49;
/// Seeds that caught a broken rule in a soak, kept in the CI list: without the settle
/// (`SIM_BREAK=no-settle`) the first loses a write acknowledged at ALL; without the handover
/// (`SIM_BREAK=no-handover`) the second reads older than a promise. (Found again after the
/// model learned several joins at once: the seeds found before no longer catch them.)
/// The next two failed once hash writes joined the model: the first while the simulator
/// planned a join without the runtime's wait, the second while a join pulled a range from
/// the other replicas when its loser was down (losing a write acknowledged at `ONE` by it).
const REGRESSION_SEEDS: [u64; 4] = [126, 120, 14032341109278534460, 2468741665397121649];
/// Fresh seeds added to the CI list on every run.
const FRESH_SEEDS_IN_CI: u64 = 4;
/// Client operations per seed, unless `SIM_OPS` says otherwise: enough that the clients
/// outlast the join and the leave (about 3 s of the 6 s they run).
const OPS_DEFAULT: usize = 4_000;
/// Keys the clients use: few, so operations on one key overlap.
const KEYS: usize = 20;

#[test]
fn acknowledged_writes_survive_joins_and_a_decommission_under_faults() {
    #[allow(
        clippy::disallowed_methods,
        reason = "times the run for its report, nothing more"
    )]
    let started = Instant::now();
    let seeds = seeds();
    let mut covered = Coverage::default();
    for &seed in &seeds {
        covered.add(&run_seed(seed));
    }
    println!(
        "simulated {} seeds in {:.2} s: {covered:?}",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    if seeds.len() >= 16 {
        assert!(
            covered.source_crashed > 0,
            "no seed crashed a source in the middle of its walk"
        );
        assert!(covered.two_joins > 0, "no seed had two nodes join");
        assert!(
            covered.replanned > 0,
            "no joining node dropped its plan for a changed future ring"
        );
        assert!(
            covered.long_joiner_crash > 0,
            "no joining node stayed down for long"
        );
    }
}

/// How many seeds went through each of the cases the test must see.
#[derive(Debug, Default)]
struct Coverage {
    source_crashed: u64,
    two_joins: u64,
    replanned: u64,
    long_joiner_crash: u64,
}

impl Coverage {
    fn add(&mut self, m: &sim::MembershipStats) {
        self.source_crashed += u64::from(m.sources_crashed > 0);
        self.two_joins += u64::from(m.joiners > 1);
        self.replanned += u64::from(m.replans > 0);
        self.long_joiner_crash += u64::from(m.joiner_down_ms_max >= 1_000);
    }
}

#[test]
fn a_seed_with_membership_changes_replays_exactly() {
    let outcome = |seed| {
        let mut world = World::with_membership(config(seed), scenario(seed));
        world.run();
        format!(
            "{:?} {:?} {:?}",
            world.stats,
            world.check.outcomes,
            world.membership_stats()
        )
    };
    assert_eq!(outcome(3), outcome(3));
}

/// `SIM_SEED`, or `SIM_SEEDS` fresh ones, or the CI list plus a few fresh ones.
fn seeds() -> Vec<u64> {
    sim::seeds(CI_SEEDS.chain(REGRESSION_SEEDS), FRESH_SEEDS_IN_CI)
}

/// The cluster for `seed`: 3 nodes (a 4th joins) or 5 (a 6th joins), 3 replicas per key (5
/// now and then on 5 nodes), a network losing 0.5% to 10% of messages.
fn config(seed: u64) -> Config {
    let mut shape = Rng::new(seed ^ 0x6a01_6a01_6a01_6a01);
    let nodes = if shape.chance(500) { 3 } else { 5 };
    let replicas = if nodes == 5 && shape.chance(300) {
        5
    } else {
        3
    };
    let loss_per_mille = [5, 20, 50, 100][shape.index(4)];
    let duplicate_per_mille = [5, 20, 50][shape.index(3)];
    let ops = env_number("SIM_OPS").map_or(OPS_DEFAULT, |ops| ops as usize);
    Config {
        seed,
        nodes,
        replicas,
        keys: KEYS,
        ops,
        loss_per_mille,
        duplicate_per_mille,
    }
}

/// The runtime's rules, unless `SIM_BREAK` breaks one; a source crashes mid-stream in
/// half the seeds; two nodes join in half (staggered in half of those); the first joining
/// node stays down for long in a third.
fn scenario(seed: u64) -> Scenario {
    let broken = std::env::var("SIM_BREAK").unwrap_or_default();
    let rules = [
        "",
        "no-pending",
        "pending-up-only",
        "no-settle",
        "no-handover",
        "no-repair-pending",
        "single-loser-only",
        "dead-joiner-not-pending",
        "normal-apart",
    ];
    assert!(
        rules.contains(&broken.as_str()),
        "SIM_BREAK must be one of {rules:?}, got {broken:?}"
    );
    let mut joins = Rng::new(seed ^ 0x701e_701e_701e_701e);
    Scenario {
        settle: broken != "no-settle",
        handover: broken != "no-handover",
        repair_pending: broken != "no-repair-pending",
        pending: match broken.as_str() {
            "no-pending" => PendingRule::Ignored,
            "pending-up-only" => PendingRule::UpOnesCount,
            _ => PendingRule::EachCounts,
        },
        crash_source: Rng::new(seed ^ 0x50c4_50c4_50c4_50c4).chance(500),
        joiners: if joins.chance(500) { 2 } else { 1 },
        staggered: joins.chance(500),
        long_joiner_crash: joins.chance(333),
        sources: match broken.as_str() {
            "single-loser-only" => SourceRule::SingleLoserOnly,
            _ => SourceRule::Gains,
        },
        dead_joiner_pending: broken != "dead-joiner-not-pending",
        normal_together: broken != "normal-apart",
    }
}

/// Runs one seed and prints its summary; on a failure, how to replay it. Its membership
/// counts.
fn run_seed(seed: u64) -> sim::MembershipStats {
    let (config, scenario) = (config(seed), scenario(seed));
    let mut world = World::with_membership(config, scenario);
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| world.run())) {
        eprintln!(
            "membership simulation: seed {seed} failed ({config:?}, {scenario:?}); replay it \
             with\n  SIM_SEED={seed} cargo test -p ringcache-cluster --test membership_change_sim"
        );
        resume_unwind(panic);
    }
    let (o, s) = (&world.check.outcomes, &world.stats);
    let m = world.membership_stats().expect("membership stats");
    let joins = match (m.joiners, scenario.staggered) {
        (1, _) => "",
        (_, true) => " staggered",
        (_, false) => " together",
    };
    println!(
        "seed {seed}: {}+{}{joins} nodes N={}, loss {}‰: {} writes acked, {} reads ok \
         ({} checked), {} unavailable, {} timeouts, {} failed | join: {} plans ({} pulls, {} ranges with two losers, {} waits), \
         {} dropped for a new future ring, {} kept plans dropped, {} batches, {} records, \
         {} crashes streaming (longest down {} ms), {} resumes ({} with progress), \
         {} writes with a pending replica down, {} sources crashed, {} pull failures, normal at {} ms | leave: {} pushes, {} records, \
         {} aborts, {} hints lost, left at {} ms | {} hints dropped, {} discarded, \
         {} foreign at end | {} crashes, {} partitions | {:.1} s virtual",
        config.nodes,
        m.joiners,
        config.replicas,
        config.loss_per_mille,
        o.writes_ok,
        o.reads_ok,
        o.reads_checked,
        o.unavailable,
        o.timeouts,
        o.failed,
        m.plans,
        m.pulls_planned,
        m.ranges_two_losers,
        m.plan_waits,
        m.replans,
        m.kept_plans_dropped,
        m.batches,
        m.records_streamed,
        m.joiner_crashes_streaming,
        m.joiner_down_ms_max,
        m.resumes,
        m.resumes_with_progress,
        m.writes_pending_down,
        m.sources_crashed,
        m.pull_failures,
        m.joined_at_ms.unwrap_or(0),
        m.pushes,
        m.records_pushed,
        m.leave_aborts,
        m.hints_lost_on_leave,
        m.left_at_ms.unwrap_or(0),
        m.hints_dropped,
        m.discarded,
        m.foreign_at_end,
        s.crashes,
        s.partitions,
        s.end_ms as f64 / 1e3,
    );
    m.clone()
}
