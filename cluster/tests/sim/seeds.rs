//! Which seeds a simulation runs: shared by the simulators (`SIM_SEED`, `SIM_SEEDS`).

use std::time::SystemTime;

use super::rng::Rng;

/// The seeds to run: `SIM_SEED` alone, or `SIM_SEEDS` fresh ones (a soak), or else the fixed
/// list `ci` plus `fresh_in_ci` fresh ones, so that every run explores a little more (each
/// seed is printed, and a failing one with the command that replays it).
pub fn seeds(ci: impl IntoIterator<Item = u64>, fresh_in_ci: u64) -> Vec<u64> {
    if let Some(seed) = env_number("SIM_SEED") {
        return vec![seed];
    }
    if let Some(count) = env_number("SIM_SEEDS") {
        return fresh_seeds(count);
    }
    ci.into_iter().chain(fresh_seeds(fresh_in_ci)).collect()
}

/// Fresh seeds drawn by the harness from the wall clock, not by the simulation; each run
/// prints its own, so a failing one can be replayed with `SIM_SEED`.
pub fn fresh_seeds(count: u64) -> Vec<u64> {
    #[allow(
        clippy::disallowed_methods,
        reason = "fresh seeds differ per run on purpose; each is printed and replays alone"
    )]
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("a clock after 1970");
    let mut fresh = Rng::new(now.as_nanos() as u64);
    (0..count).map(|_| fresh.next_u64()).collect()
}

/// The number in environment variable `name`, `None` when it is unset.
///
/// # Panics
/// When it is set to something else than a number.
pub fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {value:?}")),
    )
}
