//! RESP for ringcache: everything between client bytes and typed values.
//!
//! - [`parser`]: a bounded, non-recursive request decoder (multibulk and inline commands).
//!   redis-protocol recurses and has no limits, so client input never goes through it.
//! - [`cmd`]: the command table ([`cmd::TABLE`], one [`cmd::Spec`] per command: arity, Redis
//!   flags, key positions, docs, parse function), from which everything about a command is
//!   derived; and one [`Command`] value per request, with typed arguments and Redis 7.0's
//!   error texts, parsed in one file per command family.
//! - [`level`]: consistency levels and the trailing `CONSISTENCY <level>` argument.
//! - [`reply`]: the [`Reply`] value that commands produce, encoded as RESP2 or RESP3 with
//!   redis-protocol (small scalar replies by a hand-written fast path).
//! - [`float`]: floats as Redis prints and reads them (`INCRBYFLOAT`, double replies).
//! - [`glob`]: Redis's glob matching, for `KEYS`, `SCAN MATCH` and `CONFIG GET`.

pub mod cmd;
pub mod float;
pub mod glob;
pub mod level;
pub mod parser;
pub mod reply;

pub use cmd::{Access, Command, CommandError, Family, Request};
pub use level::{Level, LevelError};
pub use parser::{ParseLimits, ProtocolError, RequestParser};
pub use reply::{Protocol, Reply};
