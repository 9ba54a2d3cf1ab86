//! The simulator's parts: a seeded generator, an event queue, the nodes, the model with its
//! invariants, and the world that drives them.

mod check;
mod node;
mod queue;
mod rng;
mod world;

pub use rng::Rng;
pub use world::{Config, World};
