//! The simulator's parts: a seeded generator, an event queue, the nodes, the model with its
//! invariants, and the world that drives them.
//!
//! Two test crates include this module (`simulator.rs`, `membership_change_sim.rs`), each
//! using a part of it: what one of them leaves unused is not dead.
#![allow(dead_code, unused_imports)]

mod check;
mod node;
mod queue;
mod rng;
mod seeds;
mod world;

pub use rng::Rng;
pub use seeds::{env_number, fresh_seeds, seeds};
pub use world::{Config, MembershipStats, PendingRule, Scenario, SourceRule, World};
