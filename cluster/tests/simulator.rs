//! A deterministic simulator of the cluster's coordinator rounds.
//!
//! Three to seven nodes run [`WriteRound`]s and [`ReadRound`]s for random clients over a
//! simulated network, in virtual time, with every choice drawn from one seeded generator: no
//! threads, no clock, no real randomness, so a seed replays a run exactly.
//!
//! The model:
//! - A node has a replica store (key → [`Record`], writes merged cell by cell), a
//!   [`HybridClock`] (skewed by up to ±30 ms), rounds in flight, durable hints per target
//!   and a liveness view that learns of crashes, restarts and partitions up to 30 ms late,
//!   so a round may send to a node that is gone.
//! - Messages take 1–20 ms; 0.5% to 10% are lost and 0.5% to 5% duplicated (by seed);
//!   0.5% of replica operations fail (a store error); a request to a crashed node is
//!   refused (the round sees a failure), one across a partition vanishes. Crashes lose a
//!   node's rounds, never its store or hints. Partitions split the nodes in two for a while.
//! - Clients write (`SET`, `DEL`, `EXPIRE`, and `HSET`/`HDEL` of one or two of four fields,
//!   sent as the cells they write) and read 20 keys at random levels through random nodes.
//!   Hints are replayed every 100 ms to targets seen up.
//!
//! The invariants:
//! - A read returns no cell older than one promised before it started by a write
//!   acknowledged at W, or by a read that repaired its read set at R', when W + R > N (or
//!   R' + R > N): quorum reads never miss quorum writes, even across partitions.
//! - No cell version goes backwards on a replica; every cell a read returns was written by
//!   a client; a write refused as `UNAVAILABLE` is never seen anywhere.
//! - Every round replies exactly once (unless its own coordinator crashed first) and is
//!   finished by its deadline; errors are `UNAVAILABLE`, `TIMEOUT` or `FAILED` at the
//!   requested level.
//! - Once every fault heals, the hints drain in bounded virtual time, and then every replica
//!   holds every write whose round finished (acknowledged or not: the replicas that missed
//!   it got hints). After a read of every key at `ALL`, every replica of a key holds the
//!   same record, which holds every write acknowledged at any level; no other node holds it.
//! - "Holds a write" of a hash write means each field it wrote, element by element: the same
//!   cell or a newer one, or a clear version above it (a later `DEL` or `SET`). A hash never
//!   comes back: the converged record kills every field older than an acknowledged `DEL` or
//!   `SET`, and every field cell a read returns was written as such by a client.
//!
//! Hints of one key for one target merge into one record (the newest cells), so a node's
//! hints are bounded by keys × nodes. The HLC survives a crash, as if recovered from disk.
//!
//! `SIM_SEED=n` runs seed `n`; `SIM_SEEDS=n` runs `n` fresh seeds (a soak); `SIM_OPS=n` sets
//! the operations per seed. Run with `-- --nocapture` to see each seed's summary line.
//!
//! [`WriteRound`]: ringcache_cluster::WriteRound
//! [`ReadRound`]: ringcache_cluster::ReadRound
//! [`Record`]: ringcache_storage::Record
//! [`HybridClock`]: ringcache_cluster::HybridClock

mod sim;

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Instant;

use sim::{Config, Rng, World, env_number};

/// Seeds run by `cargo test`, in CI.
const CI_SEEDS: std::ops::Range<u64> = 1..33;
/// Fresh seeds added to the CI list on every run.
const FRESH_SEEDS_IN_CI: u64 = 4;
/// Client operations per seed, unless `SIM_OPS` says otherwise.
const OPS_DEFAULT: usize = 4_000;
/// Keys the clients use: few, so operations on one key overlap.
const KEYS: usize = 20;

#[test]
fn the_cluster_keeps_its_invariants_under_loss_crashes_and_partitions() {
    #[allow(
        clippy::disallowed_methods,
        reason = "times the run for its report, nothing more"
    )]
    let started = Instant::now();
    let seeds = seeds();
    for &seed in &seeds {
        run_seed(seed);
    }
    println!(
        "simulated {} seeds in {:.2} s",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_seed_replays_exactly() {
    let outcome = |seed| {
        let mut world = World::new(config(seed));
        world.run();
        format!("{:?} {:?}", world.stats, world.check.outcomes)
    };
    assert_eq!(outcome(7), outcome(7));
    assert_ne!(outcome(7), outcome(8));
}

/// `SIM_SEED`, or `SIM_SEEDS` fresh ones, or the CI list plus a few fresh ones.
fn seeds() -> Vec<u64> {
    sim::seeds(CI_SEEDS, FRESH_SEEDS_IN_CI)
}

/// The cluster's shape for `seed`: 3 to 7 nodes, 3 replicas per key (5 on a larger cluster
/// now and then), and a network losing 0.5% to 10% of messages.
fn config(seed: u64) -> Config {
    let mut shape = Rng::new(seed ^ 0x5eed_5eed_5eed_5eed);
    let nodes = 3 + shape.index(5);
    let replicas = if nodes >= 5 && shape.chance(300) {
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

/// Runs one seed and prints its summary; on a failure, how to replay it.
fn run_seed(seed: u64) {
    let config = config(seed);
    let mut world = World::new(config);
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| world.run())) {
        eprintln!(
            "simulator: seed {seed} failed ({config:?}); replay it with\n  \
             SIM_SEED={seed} cargo test -p ringcache-cluster --test simulator"
        );
        resume_unwind(panic);
    }
    let (o, s) = (&world.check.outcomes, &world.stats);
    println!(
        "seed {seed}: {} nodes N={}, loss {}‰, {} ops: {} writes acked, {} reads ok ({} checked), \
         {} unavailable, \
         {} timeouts, {} failed, {} lost in crashes | {} repairs | hints {} stored, {} replayed, \
         drained {} ms after healing | {} messages, {} lost, {} duplicated, {} dropped, \
         {} store errors | {} crashes, {} partitions | {:.1} s virtual",
        config.nodes,
        config.replicas,
        config.loss_per_mille,
        config.ops,
        o.writes_ok,
        o.reads_ok,
        o.reads_checked,
        o.unavailable,
        o.timeouts,
        o.failed,
        o.lost,
        s.repairs,
        s.hints_stored,
        s.hints_replayed,
        s.drain_ms,
        s.messages,
        s.lost,
        s.duplicated,
        s.dropped,
        s.store_errors,
        s.crashes,
        s.partitions,
        s.end_ms as f64 / 1e3,
    );
}
