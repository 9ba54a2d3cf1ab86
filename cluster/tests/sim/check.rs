//! The model the simulator checks the cluster against: every client operation, what each
//! acknowledged write and each repaired read promises later reads, and the records issued.

use std::collections::{BTreeMap, BTreeSet};

use ringcache_cluster::{Need, NodeId, QuorumError};
use ringcache_resp::Level;
use ringcache_storage::{Record, Version};

use super::node::Key;

/// The level named `level` resolved against `n` replicas, as the server resolves it
/// ([`Level::required`], [`Need::new`]); hints count at `ANY` (every simulated node keeps
/// them).
pub fn need(level: &'static str, n: usize) -> Need {
    need_on(level, n, false)
}

/// As [`need`], for a coordinator that is `leaving` the cluster or not (its hints do not
/// count then: [`Need::hints_count`]).
pub fn need_on(level: &'static str, n: usize, leaving: bool) -> Need {
    let parsed = Level::parse(level.as_bytes()).expect("a level name");
    let hints_count = Need::hints_count(parsed == Level::Any, true, leaving);
    Need::new(level, parsed.required(n), n, hints_count)
}

/// The cell versions of a record, `ZERO` for a cell never written or no record.
fn cells(record: Option<&Record>) -> (Version, Version) {
    record.map_or((Version::ZERO, Version::ZERO), |r| {
        (r.value_version, r.expiry_version)
    })
}

/// Whether `held` keeps every element cell of `written` (a hash write): the same cell or a
/// newer one, or a clear version at or above it, or a newer record of another type that
/// shadows the whole key. Anything but a collection write is kept by its versions alone.
fn holds_cells(held: Option<&Record>, written: Option<&Record>) -> bool {
    let Some(written_cells) = written.and_then(Record::cells) else {
        return true;
    };
    let kind = written.map(|w| w.kind);
    written_cells.cells().all(|cell| {
        let version = cell.version();
        match held {
            None => false,
            Some(held) => match held.cells().filter(|_| Some(held.kind) == kind) {
                Some(cells) => {
                    cells.clear() >= version
                        || cells
                            .cell(cell.element())
                            .is_some_and(|c| c.version() >= version)
                }
                None => held.value_version > version,
            },
        }
    })
}

/// A client operation.
#[derive(Debug)]
struct Op {
    key: Key,
    need: Need,
    /// The record, for a write.
    write: Option<Record>,
    /// The simulation step it started at: the order of events, finer than milliseconds.
    start_step: u64,
    replies: u32,
    /// Its coordinator crashed before it replied.
    lost: bool,
    succeeded: bool,
    /// For a write under a membership change: its coordinator and the nodes it went to
    /// (replicas and pending replicas), each of which gets the record or a hint of it.
    sent_to: Option<(usize, Vec<NodeId>)>,
}

/// What an acknowledged write, or a read that repaired its read set, promises: `replicas`
/// replicas hold these cell versions or newer from `step` on.
#[derive(Debug, Clone)]
struct Floor {
    op: usize,
    step: u64,
    /// 0 for a write acknowledged at ANY: it promises nothing to a read.
    replicas: usize,
    value_version: Version,
    expiry_version: Version,
    /// For a read that repaired its read set: the record it returned, whose hash fields it
    /// promises too (a write's are its own record's).
    returned: Option<Record>,
}

/// Counts of outcomes, for the summary.
#[derive(Debug, Default, Clone)]
pub struct Outcomes {
    /// Writes acknowledged.
    pub writes_ok: u64,
    /// Reads answered.
    pub reads_ok: u64,
    /// `UNAVAILABLE` replies.
    pub unavailable: u64,
    /// `TIMEOUT` replies.
    pub timeouts: u64,
    /// `FAILED` replies.
    pub failed: u64,
    /// Operations whose coordinator crashed before replying.
    pub lost: u64,
    /// Reads that had a promise to keep: something acknowledged before they started at a
    /// level overlapping theirs.
    pub reads_checked: u64,
}

/// The model and its invariants.
#[derive(Debug)]
pub struct Checker {
    seed: u64,
    /// Replicas per key.
    n: usize,
    ops: Vec<Op>,
    floors: Vec<Vec<Floor>>,
    /// Every record a client wrote, by its version.
    issued: BTreeMap<Version, Record>,
    /// Versions of writes refused as unavailable: they must never be seen anywhere.
    refused: BTreeSet<Version>,
    /// Writes whose round finished on its coordinator: each replica has the record or a
    /// hint of it.
    handed_off: Vec<usize>,
    /// Outcome counts.
    pub outcomes: Outcomes,
}

impl Checker {
    /// A model of `keys` keys with `n` replicas each.
    pub fn new(seed: u64, n: usize, keys: usize) -> Checker {
        Checker {
            seed,
            n,
            ops: Vec::new(),
            floors: vec![Vec::new(); keys],
            issued: BTreeMap::new(),
            refused: BTreeSet::new(),
            handed_off: Vec::new(),
            outcomes: Outcomes::default(),
        }
    }

    /// A client starts writing `record` to `key`; the op's id.
    pub fn begin_write(&mut self, key: Key, need: Need, record: &Record, step: u64) -> usize {
        let previous = self.issued.insert(record.version(), record.clone());
        assert!(
            previous.is_none(),
            "seed {}: version issued twice",
            self.seed
        );
        self.begin(key, need, Some(record.clone()), step)
    }

    /// A client starts reading `key`; the op's id.
    pub fn begin_read(&mut self, key: Key, need: Need, step: u64) -> usize {
        self.begin(key, need, None, step)
    }

    fn begin(&mut self, key: Key, need: Need, write: Option<Record>, step: u64) -> usize {
        self.ops.push(Op {
            key,
            need,
            write,
            start_step: step,
            replies: 0,
            lost: false,
            succeeded: false,
            sent_to: None,
        });
        self.ops.len() - 1
    }

    /// What op `op` asks of its replicas.
    pub fn need_of(&self, op: usize) -> Need {
        self.ops[op].need
    }

    /// Whether op `op` is a write.
    pub fn is_write(&self, op: usize) -> bool {
        self.ops[op].write.is_some()
    }

    /// Whether op `op` replied with success.
    pub fn succeeded(&self, op: usize) -> bool {
        self.ops[op].succeeded
    }

    /// The coordinator of `op` crashed while the round was in flight.
    pub fn on_lost(&mut self, op: usize) {
        if self.ops[op].replies == 0 {
            self.ops[op].lost = true;
            self.outcomes.lost += 1;
        }
    }

    /// Op `op` replied at `step`.
    ///
    /// # Panics
    /// On a second reply, a read older than a promise made before it started, or a reply
    /// not of the shape its error says.
    pub fn on_reply(&mut self, op: usize, reply: Result<Option<Record>, QuorumError>, step: u64) {
        let seed = self.seed;
        let state = &mut self.ops[op];
        state.replies += 1;
        assert_eq!(
            state.replies, 1,
            "seed {seed}: op {op} replied twice: {reply:?}"
        );
        assert!(
            !state.lost,
            "seed {seed}: op {op} replied after its coordinator crashed"
        );
        match reply {
            Ok(record) => {
                state.succeeded = true;
                self.on_success(op, record.as_ref(), step);
            }
            Err(error) => self.on_error(op, &error),
        }
    }

    fn on_success(&mut self, op: usize, record: Option<&Record>, step: u64) {
        let (key, need) = (self.ops[op].key, self.ops[op].need);
        let promise = match &self.ops[op].write {
            Some(written) => {
                assert!(
                    record.is_none(),
                    "seed {}: a write replied a record",
                    self.seed
                );
                self.outcomes.writes_ok += 1;
                let replicas = if need.hints_count { 0 } else { need.required };
                Some((replicas, cells(Some(written)), None))
            }
            None => {
                self.outcomes.reads_ok += 1;
                self.check_read(op, record);
                // A repaired read set holds the merged record: a promise like a write's.
                need.blocking_repair
                    .then(|| (need.required, cells(record), record.cloned()))
            }
        };
        if let Some((replicas, (value_version, expiry_version), returned)) = promise {
            self.floors[key].push(Floor {
                op,
                step,
                replicas,
                value_version,
                expiry_version,
                returned,
            });
        }
    }

    fn on_error(&mut self, op: usize, error: &QuorumError) {
        let text = error.to_string();
        let write = self.ops[op].write.as_ref();
        let prefix = match error {
            QuorumError::Unavailable { .. } => {
                self.outcomes.unavailable += 1;
                if let Some(record) = write {
                    assert!(text.ends_with("(nothing was written)"), "{text}");
                    self.refused.insert(record.version());
                }
                "UNAVAILABLE "
            }
            QuorumError::Timeout { .. } => {
                self.outcomes.timeouts += 1;
                "TIMEOUT "
            }
            QuorumError::Failed { .. } => {
                self.outcomes.failed += 1;
                "FAILED "
            }
        };
        assert!(text.starts_with(prefix), "{text}");
        let level = self.ops[op].need.level;
        assert!(text[prefix.len()..].starts_with(level), "{text} at {level}");
    }

    /// A read returned `record`: its cells were written by clients, and it is no older than
    /// any promise made (at a level overlapping the read's) before the read started.
    fn check_read(&mut self, op: usize, record: Option<&Record>) {
        let read = &self.ops[op];
        if let Some(record) = record {
            self.check_issued(record);
        }
        let mut promised = false;
        for floor in &self.floors[read.key] {
            let overlaps = floor.replicas + read.need.required > self.n;
            if floor.step < read.start_step && overlaps {
                promised = true;
                assert!(
                    self.keeps(floor, record),
                    "seed {}: read op {op} of key {} at {} returned {record:?}, older than \
                     op {} ({}) promised to {} replicas before the read started: {floor:?}",
                    self.seed,
                    read.key,
                    read.need.level,
                    floor.op,
                    self.describe(floor.op),
                    floor.replicas,
                );
            }
        }
        self.outcomes.reads_checked += u64::from(promised);
    }

    /// Whether `held` keeps what `floor` promises: its cell versions or newer, and, for a
    /// hash write, each element it wrote ([`holds_cells`]).
    fn keeps(&self, floor: &Floor, held: Option<&Record>) -> bool {
        let (value_version, expiry_version) = cells(held);
        value_version >= floor.value_version
            && expiry_version >= floor.expiry_version
            && holds_cells(held, self.ops[floor.op].write.as_ref())
            && holds_cells(held, floor.returned.as_ref())
    }

    /// What op `op` was, for a failure message.
    fn describe(&self, op: usize) -> String {
        let op = &self.ops[op];
        match &op.write {
            Some(record) => format!("a write at {} of {record:?}", op.need.level),
            None => format!("a read at {} that repaired its read set", op.need.level),
        }
    }

    /// Every cell of `record` holds what the client wrote with that version.
    pub fn check_issued(&self, record: &Record) {
        if record.value_version != Version::ZERO {
            let written = self.issued.get(&record.value_version);
            // A collection's header is the newest write of that type; its cells are
            // checked one by one below.
            let same = |w: &Record| match (w.cells(), record.cells()) {
                (Some(_), Some(_)) => w.kind == record.kind,
                _ => w.value == record.value,
            };
            assert!(
                written.is_some_and(|w| w.value_version == record.value_version && same(w)),
                "seed {}: value cell {record:?} was never written as such: {written:?}",
                self.seed
            );
        }
        if record.expiry_version != Version::ZERO {
            let written = self.issued.get(&record.expiry_version);
            assert!(
                written.is_some_and(|w| w.expiry_version == record.expiry_version
                    && w.expiry_ms == record.expiry_ms),
                "seed {}: expiry cell {record:?} was never written as such: {written:?}",
                self.seed
            );
        }
        for version in [record.value_version, record.expiry_version] {
            assert!(
                !self.refused.contains(&version),
                "seed {}: {record:?} holds a write refused as unavailable",
                self.seed
            );
        }
        for cell in record.cells().into_iter().flat_map(|c| c.cells()) {
            let written = self
                .issued
                .get(&cell.version())
                .and_then(|w| w.cells()?.cell(cell.element()));
            assert!(
                written.is_some_and(|w| w.same_write(cell))
                    && !self.refused.contains(&cell.version()),
                "seed {}: element cell {cell:?} of {record:?} was never written as such \
                 (or was refused): {written:?}",
                self.seed
            );
        }
    }

    /// The converged record of `key` holds every write acknowledged at any level.
    pub fn check_final(&self, key: Key, record: Option<&Record>) {
        if let Some(record) = record {
            self.check_issued(record);
        }
        for floor in &self.floors[key] {
            assert!(
                self.keeps(floor, record),
                "seed {}: key {key} converged to {record:?}, which lost op {} ({})",
                self.seed,
                floor.op,
                self.describe(floor.op),
            );
            // A deleted (or overwritten) hash never comes back: an acknowledged DEL or SET
            // kills every element written before it, whatever arrives later.
            let shadowing = self.ops[floor.op]
                .write
                .as_ref()
                .filter(|w| w.cells().is_none() && w.value_version != Version::ZERO);
            if let (Some(shadowing), Some(cells)) = (shadowing, record.and_then(Record::cells)) {
                assert!(
                    cells.clear() >= shadowing.value_version,
                    "seed {}: key {key} converged to {record:?}: elements older than op {} \
                     ({}) came back",
                    self.seed,
                    floor.op,
                    self.describe(floor.op),
                );
            }
        }
    }

    /// The round of `op` finished on its coordinator.
    pub fn on_finished(&mut self, op: usize) {
        if self.ops[op].write.is_some() {
            self.handed_off.push(op);
        }
    }

    /// Once the hints drained: every replica of a key holds every write whose round
    /// finished, acknowledged or not (the replicas that missed it got hints).
    pub fn check_handed_off(&self, replicas_of: impl Fn(Key) -> Vec<Option<Record>>) {
        for &op in &self.handed_off {
            let (key, written) = (self.ops[op].key, self.ops[op].write.as_ref());
            let (value_version, expiry_version) = cells(written);
            for (i, held) in replicas_of(key).iter().enumerate() {
                let (value_held, expiry_held) = cells(held.as_ref());
                assert!(
                    value_held >= value_version
                        && expiry_held >= expiry_version
                        && holds_cells(held.as_ref(), written),
                    "seed {}: replica {i} of key {key} holds {held:?} after the hints drained, \
                     without op {op} ({written:?}) whose round finished",
                    self.seed
                );
            }
        }
    }

    /// Write `op`, coordinated by node `coordinator`, went to `targets`.
    pub fn set_write_targets(&mut self, op: usize, coordinator: usize, targets: Vec<NodeId>) {
        self.ops[op].sent_to = Some((coordinator, targets));
    }

    /// Node `coordinator` left the cluster with hints kept: the writes it coordinated are
    /// no longer sure to reach every replica they were sent to. How many finished writes
    /// that concerns.
    pub fn forget_hints_of(&mut self, coordinator: usize) -> usize {
        let before = self.handed_off.len();
        let ops = &self.ops;
        self.handed_off.retain(|&op| {
            ops[op]
                .sent_to
                .as_ref()
                .is_none_or(|(c, _)| *c != coordinator)
        });
        before - self.handed_off.len()
    }

    /// Under a membership change, once the hints drained: every node of a key's final
    /// replicas that a finished write was sent to (as a replica or a pending replica) holds
    /// it. A final replica the write was not sent to got it by streaming, or not at all: the
    /// floors say what must be there.
    pub fn check_handed_off_to(&self, replicas_of: impl Fn(Key) -> Vec<(NodeId, Option<Record>)>) {
        for &op in &self.handed_off {
            let (key, written) = (self.ops[op].key, self.ops[op].write.as_ref());
            let Some((_, targets)) = &self.ops[op].sent_to else {
                continue;
            };
            let (value_version, expiry_version) = cells(written);
            for (node, held) in replicas_of(key) {
                if !targets.contains(&node) {
                    continue;
                }
                let (value_held, expiry_held) = cells(held.as_ref());
                assert!(
                    value_held >= value_version
                        && expiry_held >= expiry_version
                        && holds_cells(held.as_ref(), written),
                    "seed {}: final replica {node} of key {key} holds {held:?} after the hints \
                     drained, without op {op} ({written:?}) which was sent to it",
                    self.seed
                );
            }
        }
    }

    /// What each of `key`'s final replicas holds keeps every promise: a write acknowledged at
    /// W (or a read that repaired its read set at R') is held by at least W (R') of them, so
    /// that every read at R with W + R > N finds it. Called before the final reads repair.
    pub fn check_held(&self, key: Key, held: &[Option<Record>]) {
        for floor in &self.floors[key] {
            let holding = held
                .iter()
                .filter(|record| self.keeps(floor, record.as_ref()))
                .count();
            assert!(
                holding >= floor.replicas,
                "seed {}: op {} ({}) promised {} replicas of key {key}, but only {holding} of \
                 the final ones hold it: {held:?}",
                self.seed,
                floor.op,
                self.describe(floor.op),
                floor.replicas,
            );
        }
    }

    /// Every op replied exactly once, but those whose coordinator crashed first.
    pub fn check_all_replied(&self) {
        for (id, op) in self.ops.iter().enumerate() {
            let expected = u32::from(!op.lost);
            assert_eq!(op.replies, expected, "seed {}: op {id} {op:?}", self.seed);
        }
    }
}
