//! The coordinator of one key operation, as a state machine without I/O.
//!
//! A node that takes a client's request becomes its coordinator. For each key it starts a
//! [`WriteRound`] or a [`ReadRound`] over the key's replicas (the preference list, each
//! marked alive or not by the caller's liveness view) and feeds it events: replies, failures
//! and ticks, each carrying `now`. The round answers with [`Effect`]s: messages to send,
//! hints to store, and exactly one [`Effect::Reply`]. A round may go on after its reply (to
//! hint a replica that never answered, or to finish a background read repair) until
//! [`WriteRound::is_finished`] / [`ReadRound::is_finished`].
//!
//! The rules, as Dynamo and Cassandra have them:
//! - A write goes to every alive replica; it succeeds when `needed` replicas acknowledged.
//!   A replica that is down, fails or does not answer by the deadline gets a hint. A hint
//!   counts toward `needed` only at level `ANY`.
//! - A read asks `needed` alive replicas (the caller orders them, the local one first); when
//!   one fails, or has not answered by the speculative delay, it asks another. The highest
//!   version of each cell wins.
//! - Read repair: replicas in the read set whose record is older than the merged one get
//!   the merged record. At `blocking_repair` (QUORUM and above) the reply waits for their
//!   acks, so a later quorum read cannot see an older value than this one returned. A
//!   blocking repair that fails or is not acknowledged by the deadline makes the read fail
//!   or time out (as Cassandra's blocking read repair does): the merged record may then be on
//!   too few replicas for that promise. The replica gets a hint either way.
//! - Too few alive replicas to try: [`QuorumError::Unavailable`], nothing sent. Tried but too
//!   few answered in time: [`QuorumError::Timeout`] (a write may have been applied). Too few
//!   can still answer because replicas failed: [`QuorumError::Failed`].

use std::fmt;

use ringcache_storage::Record;

use crate::ring::NodeId;

/// What a request asks of its replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The level as the client typed it, upper case (`QUORUM`, `ALL`, `2`), for error texts.
    pub level: &'static str,
    /// Replicas that must answer: the level resolved against the key's replica count.
    pub required: usize,
    /// Writes at `ANY`: a stored hint counts as an acknowledgement.
    pub hints_count: bool,
    /// Reads at QUORUM and above: stale replicas are repaired before the reply.
    pub blocking_repair: bool,
}

impl Need {
    /// The need of a level named `level` that requires `required` of `replicas` replicas:
    /// reads repair before replying when the level is a majority or more (monotonic quorum
    /// reads); `hints_count` is set for writes at `ANY` on a node that keeps hints.
    pub fn new(level: &'static str, required: usize, replicas: usize, hints_count: bool) -> Need {
        Need {
            level,
            required,
            hints_count,
            blocking_repair: required > replicas / 2,
        }
    }

    /// Whether a stored hint counts as an acknowledgement: for a write at `ANY` on a
    /// coordinator that keeps hints, unless that node is leaving the cluster. The hints a
    /// leaving node cannot deliver before it stops leave with it, so a write acknowledged by
    /// such a hint alone would be lost (the membership simulator found one); on a leaving
    /// node `ANY` needs a replica, as `ONE` does.
    pub fn hints_count(at_any: bool, keeps_hints: bool, leaving: bool) -> bool {
        at_any && keeps_hints && !leaving
    }
}

/// One replica of the key as the caller's liveness view sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The replica.
    pub node: NodeId,
    /// Whether the liveness view holds it reachable now.
    pub alive: bool,
}

/// What the round asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Ask `to` for its record of the key; answer with [`ReadRound::on_reply`].
    Read {
        /// The replica.
        to: NodeId,
    },
    /// Send `record` of the key to `to` (a write, or a read repair); answer with `on_ack`.
    Write {
        /// The replica.
        to: NodeId,
        /// What to merge there.
        record: Record,
    },
    /// Keep a durable hint of `record` for `target`; at `ANY` answer with
    /// [`WriteRound::on_hint_stored`].
    Hint {
        /// The replica that missed the record.
        target: NodeId,
        /// The record it missed.
        record: Record,
    },
    /// The client's answer: the merged record for a read (`None`: no replica has one), `None`
    /// for a write. Emitted exactly once per round.
    Reply(Result<Option<Record>, QuorumError>),
}

/// Why a level could not be met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumError {
    /// Too few replicas alive to try; nothing was sent.
    Unavailable {
        /// The level as typed.
        level: &'static str,
        /// Replicas the level needs.
        needed: usize,
        /// Replicas alive.
        alive: usize,
        /// A write (the text says nothing was written).
        write: bool,
    },
    /// Tried, but too few replicas answered before the deadline.
    Timeout {
        /// The level as typed.
        level: &'static str,
        /// Replicas the level needs.
        needed: usize,
        /// Replicas that answered.
        got: usize,
        /// The timeout that passed.
        timeout_ms: u64,
        /// A write (the text says it may be applied).
        write: bool,
    },
    /// Tried, but so many replicas failed (connection lost, store error) that the level can
    /// no longer be met.
    Failed {
        /// The level as typed.
        level: &'static str,
        /// Replicas the level needs.
        needed: usize,
        /// Replicas that answered.
        got: usize,
        /// Replicas that failed.
        failed: usize,
        /// A write (the text says it may be applied).
        write: bool,
    },
}

impl fmt::Display for QuorumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (answers, applied) = if self.is_write() {
            ("acks", " (the write may be applied)")
        } else {
            ("replies", "")
        };
        match *self {
            QuorumError::Unavailable {
                level,
                needed,
                alive,
                write,
            } => {
                let nothing = if write { " (nothing was written)" } else { "" };
                write!(
                    f,
                    "UNAVAILABLE {level} needs {needed} replicas, {alive} alive{nothing}"
                )
            }
            QuorumError::Timeout {
                level,
                needed,
                got,
                timeout_ms,
                ..
            } => write!(
                f,
                "TIMEOUT {level} got {got} of {needed} {answers} in {timeout_ms} ms{applied}"
            ),
            QuorumError::Failed {
                level,
                needed,
                got,
                failed,
                ..
            } => write!(
                f,
                "FAILED {level} got {got} of {needed} {answers}, {failed} replicas failed{applied}"
            ),
        }
    }
}

impl std::error::Error for QuorumError {}

impl QuorumError {
    fn is_write(&self) -> bool {
        match *self {
            QuorumError::Unavailable { write, .. }
            | QuorumError::Timeout { write, .. }
            | QuorumError::Failed { write, .. } => write,
        }
    }
}

/// Where one replica stands in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Not contacted (down at the start of a read, or not needed yet by a read).
    Idle,
    /// Down at the start of a write, and left to a hint: not counted as failed.
    Down,
    /// Asked; no answer yet.
    Asked,
    /// Answered (a read reply, or an ack).
    Answered,
    /// Failed, or left to a hint.
    Failed,
}

/// The replicas of a round and where each stands.
#[derive(Debug, Clone)]
struct Replicas {
    nodes: Vec<(Target, Standing)>,
}

impl Replicas {
    fn new(targets: &[Target]) -> Replicas {
        Replicas {
            nodes: targets.iter().map(|&t| (t, Standing::Idle)).collect(),
        }
    }

    fn alive(&self) -> usize {
        self.nodes.iter().filter(|(t, _)| t.alive).count()
    }

    fn count(&self, standing: Standing) -> usize {
        self.nodes.iter().filter(|(_, s)| *s == standing).count()
    }

    /// Moves `node` from `from` to `to`; false when it was not in `from` (a duplicate or
    /// unexpected message, which the round ignores).
    fn shift(&mut self, node: NodeId, from: Standing, to: Standing) -> bool {
        match self
            .nodes
            .iter_mut()
            .find(|(t, s)| t.node == node && *s == from)
        {
            Some((_, s)) => {
                *s = to;
                true
            }
            None => false,
        }
    }

    /// The next alive replica not contacted yet, marked asked.
    fn ask_next(&mut self) -> Option<NodeId> {
        let (target, standing) = self
            .nodes
            .iter_mut()
            .find(|(t, s)| t.alive && *s == Standing::Idle)?;
        *standing = Standing::Asked;
        Some(target.node)
    }
}

/// A write of one key's record to its replicas.
#[derive(Debug, Clone)]
pub struct WriteRound {
    need: Need,
    record: Record,
    replicas: Replicas,
    hints_stored: usize,
    timeout_ms: u64,
    deadline_ms: u64,
    replied: bool,
}

impl WriteRound {
    /// Starts writing `record` to `targets` (the key's preference list) at `now_ms`.
    ///
    /// # Errors
    /// [`QuorumError::Unavailable`] when fewer than `need.required` targets are alive (and
    /// hints do not count): nothing is sent, and no hint is kept.
    pub fn start(
        need: Need,
        record: Record,
        targets: &[Target],
        now_ms: u64,
        timeout_ms: u64,
    ) -> Result<(WriteRound, Vec<Effect>), QuorumError> {
        check_writable(targets, &need)?;
        let mut replicas = Replicas::new(targets);
        let mut effects = Vec::with_capacity(targets.len());
        for (target, standing) in &mut replicas.nodes {
            if target.alive {
                *standing = Standing::Asked;
                effects.push(Effect::Write {
                    to: target.node,
                    record: record.clone(),
                });
            } else {
                *standing = Standing::Down;
                effects.push(Effect::Hint {
                    target: target.node,
                    record: record.clone(),
                });
            }
        }
        let round = WriteRound {
            need,
            record,
            replicas,
            hints_stored: 0,
            timeout_ms,
            deadline_ms: now_ms.saturating_add(timeout_ms),
            replied: false,
        };
        Ok((round, effects))
    }

    /// What the write asks of its replicas.
    pub fn need(&self) -> Need {
        self.need
    }

    /// The record being written.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// When [`WriteRound::on_tick`] must be called next, unless the round finished.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// Whether every replica acknowledged or was left to a hint, and the reply was given.
    pub fn is_finished(&self) -> bool {
        self.replied && self.replicas.count(Standing::Asked) == 0
    }

    /// `from` acknowledged the write.
    pub fn on_ack(&mut self, from: NodeId) -> Vec<Effect> {
        self.replicas
            .shift(from, Standing::Asked, Standing::Answered);
        self.settle()
    }

    /// `from` failed the write (connection lost, refused); it gets a hint.
    pub fn on_failure(&mut self, from: NodeId) -> Vec<Effect> {
        if !self.replicas.shift(from, Standing::Asked, Standing::Failed) {
            return Vec::new();
        }
        let mut effects = vec![Effect::Hint {
            target: from,
            record: self.record.clone(),
        }];
        effects.extend(self.settle());
        effects
    }

    /// A hint for a replica was stored durably (counts only at `ANY`).
    pub fn on_hint_stored(&mut self) -> Vec<Effect> {
        self.hints_stored += 1;
        self.settle()
    }

    /// Time passed; at the deadline every replica still silent gets a hint and, if the level
    /// was not met, the reply is a timeout.
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<Effect> {
        if now_ms < self.deadline_ms || self.is_finished() {
            return Vec::new();
        }
        let mut effects = Vec::new();
        for (target, standing) in &mut self.replicas.nodes {
            if *standing == Standing::Asked {
                *standing = Standing::Failed;
                effects.push(Effect::Hint {
                    target: target.node,
                    record: self.record.clone(),
                });
            }
        }
        if !self.replied {
            self.replied = true;
            effects.push(Effect::Reply(Err(QuorumError::Timeout {
                level: self.need.level,
                needed: self.need.required,
                got: self.acks(),
                timeout_ms: self.timeout_ms,
                write: true,
            })));
        }
        effects
    }

    fn acks(&self) -> usize {
        let answered = self.replicas.count(Standing::Answered);
        if self.need.hints_count {
            answered + self.hints_stored
        } else {
            answered
        }
    }

    /// Replies once the level is met, or once it no longer can be.
    fn settle(&mut self) -> Vec<Effect> {
        if self.replied {
            return Vec::new();
        }
        let acks = self.acks();
        if acks >= self.need.required {
            self.replied = true;
            return vec![Effect::Reply(Ok(None))];
        }
        let outstanding = self.replicas.count(Standing::Asked);
        // At ANY a hinted replica's hint may still count, so only its absence decides.
        let hinted = self.replicas.count(Standing::Failed) + self.replicas.count(Standing::Down);
        let hint_may_count = self.need.hints_count && hinted > 0;
        if acks + outstanding < self.need.required && !hint_may_count {
            self.replied = true;
            return vec![Effect::Reply(Err(QuorumError::Failed {
                level: self.need.level,
                needed: self.need.required,
                got: acks,
                failed: self.replicas.count(Standing::Failed),
                write: true,
            }))];
        }
        Vec::new()
    }
}

/// A read of one key from its replicas, with read repair.
#[derive(Debug, Clone)]
pub struct ReadRound {
    need: Need,
    replicas: Replicas,
    replies: Vec<(NodeId, Option<Record>)>,
    timeout_ms: u64,
    deadline_ms: u64,
    speculate_at_ms: Option<u64>,
    /// The merged record, once `needed` replies came.
    merged: Option<Option<Record>>,
    /// Replicas sent a repair and not acknowledged yet.
    repairing: Vec<NodeId>,
    /// Replicas of the read set whose repair failed.
    repairs_failed: usize,
    replied: bool,
}

impl ReadRound {
    /// Starts reading from `targets` in the given order (the caller puts the local replica
    /// first among the alive ones). `speculate_after_ms`: when a replica has not answered by
    /// then, another is asked.
    ///
    /// # Errors
    /// [`QuorumError::Unavailable`] when fewer than `need.required` targets are alive.
    pub fn start(
        need: Need,
        targets: &[Target],
        now_ms: u64,
        timeout_ms: u64,
        speculate_after_ms: u64,
    ) -> Result<(ReadRound, Vec<Effect>), QuorumError> {
        let mut replicas = Replicas::new(targets);
        let alive = replicas.alive();
        if alive < need.required {
            return Err(QuorumError::Unavailable {
                level: need.level,
                needed: need.required,
                alive,
                write: false,
            });
        }
        let effects = (0..need.required)
            .filter_map(|_| replicas.ask_next())
            .map(|to| Effect::Read { to })
            .collect();
        let round = ReadRound {
            need,
            replicas,
            replies: Vec::with_capacity(need.required),
            timeout_ms,
            deadline_ms: now_ms.saturating_add(timeout_ms),
            speculate_at_ms: Some(now_ms.saturating_add(speculate_after_ms))
                .filter(|_| speculate_after_ms < timeout_ms),
            merged: None,
            repairing: Vec::new(),
            repairs_failed: 0,
            replied: false,
        };
        Ok((round, effects))
    }

    /// When [`ReadRound::on_tick`] must be called next, unless the round finished.
    pub fn deadline_ms(&self) -> u64 {
        match self.speculate_at_ms {
            Some(at) if self.merged.is_none() => at.min(self.deadline_ms),
            _ => self.deadline_ms,
        }
    }

    /// Whether the reply was given and no repair is outstanding.
    pub fn is_finished(&self) -> bool {
        self.replied && self.repairing.is_empty()
    }

    /// `from` answered with its record (`None`: it has none).
    pub fn on_reply(&mut self, from: NodeId, record: Option<Record>) -> Vec<Effect> {
        if !self
            .replicas
            .shift(from, Standing::Asked, Standing::Answered)
        {
            return Vec::new();
        }
        if self.merged.is_some() {
            // A slow replica answered after the level was met: repair it in the background
            // if it is behind.
            return self.repair_late(from, record);
        }
        self.replies.push((from, record));
        if self.replies.len() < self.need.required {
            return Vec::new();
        }
        self.resolve()
    }

    /// `from` acknowledged a repair.
    pub fn on_ack(&mut self, from: NodeId) -> Vec<Effect> {
        self.repairing.retain(|&n| n != from);
        self.reply_if_repaired()
    }

    /// `from` failed: a read goes to another replica; a repair becomes a hint (and, at
    /// `blocking_repair`, the reply a [`QuorumError::Failed`] if not given yet).
    pub fn on_failure(&mut self, from: NodeId) -> Vec<Effect> {
        if let Some(at) = self.repairing.iter().position(|&n| n == from) {
            self.repairing.swap_remove(at);
            self.repairs_failed += 1;
            let mut effects = self.hint_merged(from);
            effects.extend(self.reply_if_repaired());
            return effects;
        }
        if !self.replicas.shift(from, Standing::Asked, Standing::Failed) || self.merged.is_some() {
            return Vec::new();
        }
        if let Some(to) = self.replicas.ask_next() {
            return vec![Effect::Read { to }];
        }
        let got = self.replies.len();
        if got + self.replicas.count(Standing::Asked) >= self.need.required || self.replied {
            return Vec::new();
        }
        self.replied = true;
        vec![Effect::Reply(Err(QuorumError::Failed {
            level: self.need.level,
            needed: self.need.required,
            got,
            failed: self.replicas.count(Standing::Failed),
            write: false,
        }))]
    }

    /// Time passed: past the speculative delay another replica is asked; at the deadline
    /// the replicas not repaired get hints and, if not given yet, the reply is a timeout
    /// (too few replies, or blocking repairs not acknowledged).
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.merged.is_none()
            && let Some(at) = self.speculate_at_ms
            && now_ms >= at
        {
            self.speculate_at_ms = None;
            if let Some(to) = self.replicas.ask_next() {
                effects.push(Effect::Read { to });
            }
        }
        if now_ms < self.deadline_ms {
            return effects;
        }
        // Not replied yet means too few replies, or blocking repairs still outstanding: the
        // replicas holding the merged record are fewer than the level needs either way.
        let got = self.up_to_date();
        for node in std::mem::take(&mut self.repairing) {
            effects.extend(self.hint_merged(node));
        }
        for (_, standing) in &mut self.replicas.nodes {
            if *standing == Standing::Asked {
                *standing = Standing::Failed;
            }
        }
        if !self.replied {
            self.replied = true;
            effects.push(Effect::Reply(Err(QuorumError::Timeout {
                level: self.need.level,
                needed: self.need.required,
                got,
                timeout_ms: self.timeout_ms,
                write: false,
            })));
        }
        effects
    }

    /// Merges the replies and repairs the stale ones.
    fn resolve(&mut self) -> Vec<Effect> {
        let merged = merge_all(self.replies.iter().map(|(_, r)| r.as_ref()));
        let mut effects = Vec::new();
        if let Some(record) = &merged {
            for (node, reply) in &self.replies {
                if is_behind(reply.as_ref(), record) {
                    self.repairing.push(*node);
                    effects.push(Effect::Write {
                        to: *node,
                        record: record.clone(),
                    });
                }
            }
        }
        self.merged = Some(merged);
        if !self.need.blocking_repair || self.repairing.is_empty() {
            self.replied = true;
            effects.push(Effect::Reply(Ok(self.merged.clone().flatten())));
        }
        effects
    }

    fn repair_late(&mut self, from: NodeId, record: Option<Record>) -> Vec<Effect> {
        // Not awaited: the reply waits only for the read set it resolved.
        match self.merged.clone().flatten() {
            Some(merged) if is_behind(record.as_ref(), &merged) => vec![Effect::Write {
                to: from,
                record: merged,
            }],
            _ => Vec::new(),
        }
    }

    fn hint_merged(&self, target: NodeId) -> Vec<Effect> {
        match self.merged.clone().flatten() {
            Some(record) => vec![Effect::Hint { target, record }],
            None => Vec::new(),
        }
    }

    /// Replies of the read set from replicas that hold the merged record now: up to date,
    /// or repaired.
    fn up_to_date(&self) -> usize {
        self.replies.len() - self.repairing.len() - self.repairs_failed
    }

    /// The reply of a blocking repair, once every repair was acknowledged or one failed.
    fn reply_if_repaired(&mut self) -> Vec<Effect> {
        if self.replied {
            return Vec::new();
        }
        let Some(merged) = &self.merged else {
            return Vec::new();
        };
        if self.repairs_failed > 0 {
            self.replied = true;
            return vec![Effect::Reply(Err(QuorumError::Failed {
                level: self.need.level,
                needed: self.need.required,
                got: self.up_to_date(),
                failed: self.replicas.count(Standing::Failed) + self.repairs_failed,
                write: false,
            }))];
        }
        if !self.repairing.is_empty() {
            return Vec::new();
        }
        self.replied = true;
        vec![Effect::Reply(Ok(merged.clone()))]
    }
}

/// The cell-wise merge of every record given; `None` when none is.
pub fn merge_all<'a>(records: impl IntoIterator<Item = Option<&'a Record>>) -> Option<Record> {
    let mut merged: Option<Record> = None;
    for record in records.into_iter().flatten() {
        match &mut merged {
            Some(m) => {
                m.merge(record);
            }
            None => merged = Some(record.clone()),
        }
    }
    merged
}

/// Whether a replica holding `held` lacks something of `merged`.
fn is_behind(held: Option<&Record>, merged: &Record) -> bool {
    match held {
        None => true,
        Some(held) => held.clone().merge(merged),
    }
}

/// Whether a write to `targets` can meet `need` before anything is written: enough of them
/// are reachable, or a stored hint counts (`ANY`).
///
/// # Errors
/// [`QuorumError::Unavailable`]: too few replicas are up; nothing was written.
pub fn check_writable(targets: &[Target], need: &Need) -> Result<(), QuorumError> {
    let alive = targets.iter().filter(|t| t.alive).count();
    if alive < need.required && !need.hints_count {
        return Err(QuorumError::Unavailable {
            level: need.level,
            needed: need.required,
            alive,
            write: true,
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
