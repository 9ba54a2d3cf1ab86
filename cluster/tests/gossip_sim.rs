//! The gossip membership in a deterministic simulator (model in `gossip/mod.rs`).
//!
//! - `a_hundred_nodes_meet_the_goals`: CI-sized, debug build, a fixed list of seeds plus one
//!   from `GOSSIP_SIM_SEED` if set; asserts the goals.
//! - `twelve_hundred_nodes_for_ten_minutes` (ignored): the tuning run of `Config::lan()`:
//!   `cargo test --release -p ringcache-cluster --test gossip_sim -- --ignored --nocapture`.
//!
//! Goals: crash → Dead everywhere p99 ≤ 5 s; a join known everywhere ≤ 10 s; ≤ 10 KB/s of
//! gossip per node; no false Dead verdict with 1% loss and one 5× slow node.

mod gossip;

use gossip::{Report, Scenario, World};
use ringcache_cluster::membership::Config;

const DETECTION_P99_MS: u64 = 5_000;
const JOIN_MS: u64 = 10_000;
const GOSSIP_BYTES_PER_S_MAX: f64 = 10_000.0;

fn ci(seed: u64) -> Scenario {
    Scenario {
        seed,
        nodes: 100,
        late_joins: 4,
        crashes: 6,
        seeds: 3,
        join_spacing_ms: 50,
        first_fault_ms: 30_000,
        fault_spacing_ms: 12_000,
        window_start_ms: 20_000,
        duration_ms: 180_000,
        loss_per_mille: 10,
        slow_node: Some(7),
        slow_factor: 5,
        config: Config::lan(),
    }
}

fn check(s: &Scenario, r: &Report) {
    let table = r.table(s);
    println!("{table}");
    let (_, p99, _) = Report::spread(&r.detections_ms)
        .unwrap_or_else(|| panic!("a crash was never seen by every node\n{table}"));
    assert!(p99 <= DETECTION_P99_MS, "detection p99 {p99} ms\n{table}");
    let (_, _, join_max) = Report::spread(&r.joins_ms)
        .unwrap_or_else(|| panic!("a join was never seen by every node\n{table}"));
    assert!(
        join_max <= JOIN_MS,
        "join known by all after {join_max} ms\n{table}"
    );
    assert!(
        r.gossip_bytes_per_s_max <= GOSSIP_BYTES_PER_S_MAX,
        "gossip bandwidth {:.0} B/s\n{table}",
        r.gossip_bytes_per_s_max
    );
    assert!(
        r.false_deaths.is_empty(),
        "false deaths {:?}\n{table}",
        r.false_deaths
    );
    assert_eq!(
        r.refuted_deaths, 0,
        "a node heard itself declared Dead\n{table}"
    );
    assert_eq!(r.wrong_views, 0, "views did not converge\n{table}");
}

#[test]
fn a_hundred_nodes_meet_the_goals() {
    let mut seeds = vec![1, 2];
    if let Some(seed) = std::env::var("GOSSIP_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        seeds.push(seed);
    }
    for seed in seeds {
        println!("gossip_sim seed {seed}");
        let s = ci(seed);
        let r = World::new(s.clone()).run();
        check(&s, &r);
    }
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let mut s = ci(7);
    s.nodes = 30;
    s.duration_ms = 60_000;
    s.first_fault_ms = 10_000;
    s.window_start_ms = 5_000;
    let a = World::new(s.clone()).run();
    let b = World::new(s).run();
    assert_eq!(a.datagrams, b.datagrams);
    assert_eq!(a.detections_ms, b.detections_ms);
    assert_eq!(a.joins_ms, b.joins_ms);
}

#[test]
#[ignore = "the 1,200-node tuning run; release build, about a minute"]
fn twelve_hundred_nodes_for_ten_minutes() {
    let seed = std::env::var("GOSSIP_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let s = Scenario {
        seed,
        nodes: 1_200,
        late_joins: 10,
        crashes: 20,
        seeds: 3,
        join_spacing_ms: 20,
        first_fault_ms: 60_000,
        fault_spacing_ms: 15_000,
        window_start_ms: 45_000,
        duration_ms: std::env::var("GOSSIP_SIM_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(600_000),
        loss_per_mille: 10,
        slow_node: Some(7),
        slow_factor: 5,
        config: Config::lan(),
    };
    #[allow(
        clippy::disallowed_methods,
        reason = "times the run for its report, nothing more"
    )]
    let started = std::time::Instant::now();
    let r = World::new(s.clone()).run();
    println!("wall time {:.1} s", started.elapsed().as_secs_f64());
    check(&s, &r);
}
