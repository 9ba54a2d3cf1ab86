//! One client: one connection at a time, driven by one task, sending batches of up to
//! `--pipeline` requests and reading their replies; it moves on to the next server when its
//! connection breaks.
//!
//! The per-request path allocates nothing: the batch, the value and the in-flight slots are
//! buffers reused from batch to batch, and replies are parsed in the read buffer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::connection::{Connection, ConnectionError};
use super::histogram::Latency;
use super::keys::KeyChooser;
use super::options::KeyPattern;
use super::progress::Progress;
use super::resp::Reply;
use super::stats::ClientStats;
use super::verify::{Verdict, VerifyState, Wrong};
use super::workload::{Encoder, Mix, Op};

/// The pause before each reconnect.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// Connects a client tries, over all servers in turn, before it gives up and ends the run
/// with an error: with [`RECONNECT_BACKOFF`] that is at least 3 s.
pub const RECONNECT_ATTEMPTS_MAX: u32 = 30;
/// Batches in a row that may fail (connection broken, no reply within `--timeout`) before a
/// client gives up and ends the run with an error: a server that accepts connections but
/// never answers (stopped, wedged) must not keep a `--requests` run going for ever.
pub const FAILED_BATCHES_IN_A_ROW_MAX: u32 = 10;
/// SETs per preload batch when `--pipeline` is smaller.
const PRELOAD_PIPELINE: usize = 64;
/// The most bytes of one preload batch (values included).
const PRELOAD_BATCH_BYTES_MAX: usize = 1 << 20;

/// What every client shares: the workload and the counters that span clients.
#[derive(Debug)]
pub struct Plan {
    /// Where to connect, in `--servers` order.
    pub servers: Vec<SocketAddr>,
    /// Connections in total.
    pub clients: u32,
    /// Requests per batch.
    pub pipeline: usize,
    /// The SET:GET draw.
    pub mix: Mix,
    /// Command encoding.
    pub encoder: Encoder,
    /// How keys are chosen.
    pub key_pattern: KeyPattern,
    /// Keys `0 .. key_space`.
    pub key_space: u64,
    /// For `KeyPattern::Zipf`.
    pub zipf_exponent: f64,
    /// The run's seed; client c seeds its generator from it and c.
    pub seed: u64,
    /// Bytes per SET value.
    pub value_bytes: usize,
    /// `--verify`'s shared state.
    pub verify: Option<VerifyState>,
    /// How long a batch may wait for its replies.
    pub reply_timeout: Duration,
    /// Measured requests not yet claimed (`--requests`), or `None` (`--duration`).
    pub tickets: Option<AtomicU64>,
    /// Set when a client gave up: the others stop at their next batch.
    pub abort: AtomicBool,
    /// Counters for the progress line and for callers that watch the run.
    pub progress: Arc<Progress>,
    /// The latencies since the last progress line (only when it is shown).
    pub progress_latency: Option<Mutex<Latency>>,
}

/// The phase a batch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `--preload`: not measured, errors counted apart.
    Preload,
    /// `--warmup`: not measured.
    Warmup,
    /// Recorded.
    Measured,
}

/// When the load phase switches from warmup to measuring, and when it ends.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// The start of the measured phase.
    pub warmup_end: Instant,
    /// Its end with `--duration`; `None` with `--requests`.
    pub end: Option<Instant>,
}

/// One request of the batch in flight.
#[derive(Debug, Clone, Copy)]
struct Slot {
    op: Op,
    key: u64,
    /// For a GET with `--verify`: whether the key had an acknowledged SET when it was sent.
    acked_before: bool,
    latency_us: u64,
}

/// What one batch ended with, for the progress counters.
#[derive(Debug, Default)]
struct BatchTally {
    errors: u64,
    gets_ok: u64,
}

/// One client and its buffers.
#[derive(Debug)]
pub struct Client {
    id: u32,
    server: usize,
    connection: Option<Connection>,
    rng: SmallRng,
    keys: KeyChooser,
    batch: Vec<u8>,
    value: Vec<u8>,
    slots: Vec<Slot>,
    last_error: String,
    failed_batches_in_a_row: u32,
    /// What it counted.
    pub stats: ClientStats,
}

impl Client {
    /// Client `id`, which starts on server `id % servers` (round-robin, as a load balancer).
    pub fn new(id: u32, plan: &Plan) -> Client {
        let seed = plan.seed ^ u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Client {
            id,
            server: id as usize % plan.servers.len(),
            connection: None,
            rng: SmallRng::seed_from_u64(seed),
            keys: KeyChooser::new(
                plan.key_pattern,
                plan.key_space,
                plan.zipf_exponent,
                id,
                plan.clients,
            ),
            batch: Vec::new(),
            value: vec![b'x'; plan.value_bytes],
            slots: Vec::with_capacity(plan.pipeline),
            last_error: String::new(),
            failed_batches_in_a_row: 0,
            stats: ClientStats::default(),
        }
    }

    /// Connects if not connected: to its current server first, then to the next ones in turn,
    /// pausing [`RECONNECT_BACKOFF`] before each retry (and before a reconnect). Returns
    /// unconnected once another client aborted the run.
    ///
    /// # Errors
    /// No server took a connection in [`RECONNECT_ATTEMPTS_MAX`] tries, or the last
    /// [`FAILED_BATCHES_IN_A_ROW_MAX`] batches failed; either aborts the run.
    pub async fn ensure_connected(
        &mut self,
        plan: &Plan,
        reconnecting: bool,
    ) -> anyhow::Result<()> {
        if self.failed_batches_in_a_row >= FAILED_BATCHES_IN_A_ROW_MAX {
            plan.abort.store(true, Ordering::Relaxed);
            bail!(
                "client {} gave up after {FAILED_BATCHES_IN_A_ROW_MAX} failed batches in a row; \
                 last error: {}",
                self.id,
                self.last_error
            );
        }
        if self.connection.is_some() {
            return Ok(());
        }
        for attempt in 0..RECONNECT_ATTEMPTS_MAX {
            if plan.abort.load(Ordering::Relaxed) {
                // The client that aborted the run reports why; this one just stops.
                return Ok(());
            }
            if reconnecting || attempt > 0 {
                tokio::time::sleep(RECONNECT_BACKOFF).await;
            }
            let addr = plan.servers[self.server];
            match Connection::connect(addr).await {
                Ok(connection) => {
                    self.connection = Some(connection);
                    return Ok(());
                }
                Err(e) => {
                    self.last_error = format!("connect to {addr}: {e}");
                    self.server = (self.server + 1) % plan.servers.len();
                }
            }
        }
        plan.abort.store(true, Ordering::Relaxed);
        bail!(
            "client {} gave up after {RECONNECT_ATTEMPTS_MAX} connects to the servers in turn; \
             last error: {}",
            self.id,
            self.last_error
        )
    }

    /// SETs this client's share of the key space (keys id, id + clients, ...) once, in
    /// batches, before the load starts.
    ///
    /// # Errors
    /// See [`Client::ensure_connected`].
    pub async fn preload(&mut self, plan: &Plan) -> anyhow::Result<()> {
        let per_set = plan.value_bytes + 64;
        let batch = (PRELOAD_BATCH_BYTES_MAX / per_set)
            .clamp(1, PRELOAD_PIPELINE)
            .max(plan.pipeline);
        let stride = u64::from(plan.clients);
        let mut next = u64::from(self.id);
        while next < plan.key_space {
            self.ensure_connected(plan, true).await?;
            if plan.abort.load(Ordering::Relaxed) {
                return Ok(());
            }
            self.batch.clear();
            self.slots.clear();
            while self.slots.len() < batch && next < plan.key_space {
                self.push_request(plan, Op::Set, next);
                next += stride;
            }
            self.execute(plan, Phase::Preload).await;
        }
        Ok(())
    }

    /// Sends batches until the window ends (`--duration`) or no measured request is left
    /// (`--requests`).
    ///
    /// # Errors
    /// See [`Client::ensure_connected`].
    pub async fn run(&mut self, plan: &Plan, window: Window) -> anyhow::Result<()> {
        loop {
            self.ensure_connected(plan, true).await?;
            if plan.abort.load(Ordering::Relaxed) {
                return Ok(());
            }
            let now = Instant::now();
            let phase = if now < window.warmup_end {
                Phase::Warmup
            } else {
                Phase::Measured
            };
            let count = match phase {
                Phase::Measured if window.end.is_some_and(|end| now >= end) => 0,
                Phase::Measured => match &plan.tickets {
                    Some(tickets) => claim(tickets, plan.pipeline),
                    None => plan.pipeline,
                },
                _ => plan.pipeline,
            };
            if count == 0 {
                return Ok(());
            }
            self.batch.clear();
            self.slots.clear();
            for _ in 0..count {
                let op = plan.mix.draw(&mut self.rng);
                let key = self.keys.next_key(&mut self.rng);
                self.push_request(plan, op, key);
            }
            self.execute(plan, phase).await;
        }
    }

    /// Encodes one request into the batch; with `--verify` a SET takes its seq now and a GET
    /// notes whether its key was acknowledged: both before the batch is written.
    fn push_request(&mut self, plan: &Plan, op: Op, key: u64) {
        let mut acked_before = false;
        match op {
            Op::Set => {
                if let Some(verify) = &plan.verify {
                    verify.issue(key, self.id, &mut self.value);
                }
                plan.encoder.push_set(&mut self.batch, key, &self.value);
            }
            Op::Get => {
                acked_before = plan.verify.as_ref().is_some_and(|v| v.acked(key));
                plan.encoder.push_get(&mut self.batch, key);
            }
        }
        self.slots.push(Slot {
            op,
            key,
            acked_before,
            latency_us: 0,
        });
    }

    /// Writes the batch and reads its replies within `--timeout`; on a broken connection the
    /// unanswered requests count as errors of its kind and the client moves to the next
    /// server.
    async fn execute(&mut self, plan: &Plan, phase: Phase) {
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        let mut tally = BatchTally::default();
        let mut answered = 0;
        let started = Instant::now();
        let exchange = Exchange {
            plan,
            phase,
            started,
        };
        let outcome = tokio::time::timeout(
            plan.reply_timeout,
            exchange.run(
                connection,
                &self.batch,
                &mut self.slots,
                &mut answered,
                &mut self.stats,
                &mut tally,
            ),
        )
        .await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(ConnectionError::Timeout),
        };
        if failure.is_none() {
            self.failed_batches_in_a_row = 0;
        }
        if let Some(failure) = failure {
            self.failed_batches_in_a_row += 1;
            let lost = &self.slots[answered..];
            count_lost(&mut self.stats, lost, failure.kind(), phase, &mut tally);
            self.last_error = format!("{}: {failure}", plan.servers[self.server]);
            self.connection = None;
            self.server = (self.server + 1) % plan.servers.len();
        }
        self.report_progress(plan, phase, &tally);
    }

    fn report_progress(&self, plan: &Plan, phase: Phase, tally: &BatchTally) {
        let progress = &plan.progress;
        match phase {
            Phase::Preload => {}
            Phase::Warmup => progress.add_warmup(self.slots.len() as u64),
            Phase::Measured => {
                progress.add_measured(self.slots.len() as u64, tally.errors, tally.gets_ok);
                if let Some(latency) = &plan.progress_latency
                    && let Ok(mut latency) = latency.lock()
                {
                    for slot in self.slots.iter().filter(|s| s.latency_us > 0) {
                        latency.record(slot.latency_us);
                    }
                }
            }
        }
    }
}

/// Counts the requests of a batch that got no reply before its connection broke.
fn count_lost(
    stats: &mut ClientStats,
    lost: &[Slot],
    kind: &str,
    phase: Phase,
    tally: &mut BatchTally,
) {
    let n = lost.len() as u64;
    match phase {
        Phase::Preload => stats.preload_errors += n,
        Phase::Warmup => {}
        Phase::Measured => {
            for slot in lost {
                let op = match slot.op {
                    Op::Set => &mut stats.set,
                    Op::Get => &mut stats.get,
                };
                op.requests += 1;
                op.errors += 1;
            }
            stats.errors.add(kind.as_bytes(), n);
            tally.errors += n;
        }
    }
}

/// Takes up to `want` measured requests from `tickets`; 0 when none are left.
fn claim(tickets: &AtomicU64, want: usize) -> usize {
    let mut got = 0;
    let _ = tickets.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
        got = left.min(want as u64);
        (got > 0).then_some(left - got)
    });
    got as usize
}

/// The context of one batch's exchange.
struct Exchange<'a> {
    plan: &'a Plan,
    phase: Phase,
    started: Instant,
}

impl Exchange<'_> {
    /// Writes the batch, then handles replies until every slot has one; `answered` says how
    /// far it got when it fails or is cancelled by the timeout.
    async fn run(
        &self,
        connection: &mut Connection,
        batch: &[u8],
        slots: &mut [Slot],
        answered: &mut usize,
        stats: &mut ClientStats,
        tally: &mut BatchTally,
    ) -> Result<(), ConnectionError> {
        connection.send(batch).await?;
        while *answered < slots.len() {
            match connection.buffered_reply()? {
                Some((reply, len)) => {
                    let now = Instant::now();
                    let latency = now.saturating_duration_since(self.started);
                    let slot = &mut slots[*answered];
                    slot.latency_us = (latency.as_micros() as u64).max(1);
                    self.on_reply(slot, reply, now, stats, tally);
                    connection.consume(len);
                    *answered += 1;
                }
                None => connection.read_more().await?,
            }
        }
        Ok(())
    }

    /// Counts one reply and checks it with `--verify`.
    fn on_reply(
        &self,
        slot: &Slot,
        reply: Reply<'_>,
        now: Instant,
        stats: &mut ClientStats,
        tally: &mut BatchTally,
    ) {
        let verify = self.plan.verify.as_ref();
        let error: Option<&[u8]> = match (slot.op, reply) {
            (_, Reply::Error(line)) => Some(line),
            (Op::Set, Reply::Simple(_)) => {
                if let Some(verify) = verify {
                    verify.ack(slot.key);
                }
                None
            }
            (Op::Get, Reply::Bulk(value)) => {
                if let Some(verify) = verify {
                    stats
                        .verify
                        .count(slot.key, verify.check(slot.key, Some(value), false));
                }
                None
            }
            (Op::Get, Reply::Nil) => {
                if let Some(verify) = verify {
                    let verdict = verify.check(slot.key, None, slot.acked_before);
                    stats.verify.count(slot.key, verdict);
                }
                None
            }
            (Op::Get, _) => {
                if verify.is_some() {
                    stats
                        .verify
                        .count(slot.key, Verdict::Wrong(Wrong::NotAValue));
                }
                Some(b"unexpected".as_slice())
            }
            (Op::Set, _) => Some(b"unexpected".as_slice()),
        };
        match self.phase {
            Phase::Preload => stats.preload_errors += u64::from(error.is_some()),
            Phase::Warmup => {}
            Phase::Measured => {
                let op = match slot.op {
                    Op::Set => &mut stats.set,
                    Op::Get => &mut stats.get,
                };
                op.requests += 1;
                op.latency.record(slot.latency_us);
                stats.last_reply = Some(now);
                if let Some(line) = error {
                    op.errors += 1;
                    tally.errors += 1;
                    if matches!(reply, Reply::Error(_)) {
                        stats.errors.add_reply(line);
                    } else {
                        stats.errors.add(line, 1);
                    }
                } else if slot.op == Op::Get {
                    tally.gets_ok += 1;
                }
            }
        }
    }
}
