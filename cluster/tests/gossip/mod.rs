//! A deterministic discrete-event simulator of the gossip membership.
//!
//! N [`Membership`] instances run in virtual time with every choice drawn from one seeded
//! generator, so a seed replays a run exactly. The model:
//! - **Network.** A datagram takes 1–4 ms and is lost with `loss_per_mille`. A push-pull is
//!   two TCP legs, each 2–10 ms and never lost; to a crashed node it fails (nothing merged).
//! - **Bootstrap.** Node 0 starts alone; node i starts at `i × join_spacing_ms` with only
//!   itself and push-pulls with one of the seeds (nodes `0..seeds` already started), as the
//!   runtime does at bootstrap; from then on it only gossips.
//! - **Slow node.** One node is `slow_factor`× slower at everything: each of its timers fires
//!   `slow_factor` times later than asked (its deadline is scheduled only after its previous
//!   tick, at `now + slow_factor × (deadline − now)`, so a 500 ms probe period becomes 2.5 s
//!   and every timeout and suspicion is stretched alike), and each inbound datagram waits
//!   `slow_factor` × its network latency before it is handled (5–20 ms instead of 1–4 ms),
//!   so its answers are late too.
//! - **Faults.** After formation, every `fault_spacing_ms` either a node crashes (it stops
//!   handling and sending anything, for good) or a new node joins through a random seed;
//!   crashes never hit the seeds or the slow node.
//!
//! Measured (ground truth from the simulator): for each crash, the time until every node
//! that was live then (and did not crash before seeing it) holds it Dead; for each late
//! join, the time until every such node holds it Alive; gossip bytes per node per second
//! (datagram plus 28 B of UDP/IP header) and push-pull bytes over the steady window; every
//! Dead verdict a node reaches itself about a node that never crashed (a false death).

#![allow(dead_code)]

// The same event queue and generator as the coordinator simulator's.
#[path = "../sim/queue.rs"]
pub mod queue;
#[path = "../sim/rng.rs"]
pub mod rng;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};

use ringcache_cluster::NodeId;
use ringcache_cluster::membership::{Config, Health, Member, Membership, Output, Status};

use queue::EventQueue;
use rng::Rng;

/// UDP and IPv4 headers added to every datagram on the wire.
pub const UDP_IP_HEADER_BYTES: u64 = 28;
const CLUSTER: &str = "sim";
const SECRET: &[u8] = b"sim-secret";

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The world seed.
    pub seed: u64,
    /// Nodes that form the cluster at the start.
    pub nodes: usize,
    /// Nodes joining after formation.
    pub late_joins: usize,
    /// Nodes crashing after formation.
    pub crashes: usize,
    /// Bootstrap seeds (nodes `0..seeds`).
    pub seeds: usize,
    /// Time between two initial joins.
    pub join_spacing_ms: u64,
    /// Faults (crashes and late joins, alternating) start then...
    pub first_fault_ms: u64,
    /// ...and come this far apart.
    pub fault_spacing_ms: u64,
    /// Bandwidth is measured from then to the end.
    pub window_start_ms: u64,
    /// The end of the run.
    pub duration_ms: u64,
    /// Datagrams lost, per thousand.
    pub loss_per_mille: u64,
    /// The slow node, if any.
    pub slow_node: Option<usize>,
    /// How much slower it is.
    pub slow_factor: u64,
    /// The membership settings of every node.
    pub config: Config,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Crash → every live node holds it Dead, per crash; `None`: some node never did.
    pub detections_ms: Vec<Option<u64>>,
    /// Join start → every live node holds it Alive, per join.
    pub joins_ms: Vec<Option<u64>>,
    /// Gossip bytes per second per node over the window: mean and max.
    pub gossip_bytes_per_s_mean: f64,
    /// The busiest node.
    pub gossip_bytes_per_s_max: f64,
    /// Push-pull bytes per second per node (sent): mean and max.
    pub push_pull_bytes_per_s_mean: f64,
    /// The busiest node.
    pub push_pull_bytes_per_s_max: f64,
    /// Gossip bytes per second of the busiest node during formation.
    pub formation_bytes_per_s_max: f64,
    /// Dead verdicts about never-crashed nodes: (time, judge, victim).
    pub false_deaths: Vec<(u64, usize, usize)>,
    /// Sum of the nodes' `Stats::false_deaths` (nodes that heard themselves declared Dead).
    pub refuted_deaths: u64,
    /// Suspicions raised, refutations made.
    pub suspicions: u64,
    /// Refutations made.
    pub refutations: u64,
    /// Live nodes whose view at the end differs from the truth (a live node missing or
    /// Dead, or a crashed node not Dead).
    pub wrong_views: usize,
    /// Highest local-health multiplier seen at the end.
    pub local_health_max: u32,
    /// Datagrams delivered.
    pub datagrams: u64,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Report {
    /// p50, p99 and max of a list, `None` if one is missing.
    pub fn spread(xs: &[Option<u64>]) -> Option<(u64, u64, u64)> {
        let mut v: Vec<u64> = xs.iter().copied().collect::<Option<Vec<u64>>>()?;
        v.sort_unstable();
        Some((percentile(&v, 50.0), percentile(&v, 99.0), *v.last()?))
    }

    /// The figures as a table.
    pub fn table(&self, s: &Scenario) -> String {
        let mut out = String::new();
        let fmt = |x: Option<(u64, u64, u64)>| match x {
            Some((a, b, c)) => format!(
                "p50 {:.2} s  p99 {:.2} s  max {:.2} s",
                a as f64 / 1e3,
                b as f64 / 1e3,
                c as f64 / 1e3
            ),
            None => "NEVER (some node never saw it)".to_string(),
        };
        let _ = writeln!(
            out,
            "seed {} | {} nodes + {} late joins | {} crashes | {:.0} s | loss {}‰ | slow node {:?} ×{}",
            s.seed,
            s.nodes,
            s.late_joins,
            s.crashes,
            s.duration_ms as f64 / 1e3,
            s.loss_per_mille,
            s.slow_node,
            s.slow_factor
        );
        let _ = writeln!(
            out,
            "{:<44}{}",
            "(a) crash -> Dead at every live node",
            fmt(Report::spread(&self.detections_ms))
        );
        let _ = writeln!(
            out,
            "{:<44}{}",
            "(b) join -> Alive at every live node",
            fmt(Report::spread(&self.joins_ms))
        );
        let _ = writeln!(
            out,
            "{:<44}mean {:.0} B/s  max node {:.0} B/s  (formation max {:.0} B/s)",
            "(c) gossip bytes per node (UDP/IP incl.)",
            self.gossip_bytes_per_s_mean,
            self.gossip_bytes_per_s_max,
            self.formation_bytes_per_s_max
        );
        let _ = writeln!(
            out,
            "{:<44}mean {:.0} B/s  max node {:.0} B/s",
            "    push-pull bytes sent per node",
            self.push_pull_bytes_per_s_mean,
            self.push_pull_bytes_per_s_max
        );
        let _ = writeln!(
            out,
            "{:<44}{} (self-refuted deaths {}; suspicions {}, refutations {})",
            "(d) false Dead verdicts",
            self.false_deaths.len(),
            self.refuted_deaths,
            self.suspicions,
            self.refutations
        );
        let _ = writeln!(
            out,
            "{:<44}{} wrong views at the end; max local health {}; {} datagrams",
            "    convergence", self.wrong_views, self.local_health_max, self.datagrams
        );
        out
    }
}

#[derive(Debug)]
enum Event {
    Start(usize),
    Tick(usize),
    Datagram {
        to: usize,
        bytes: Vec<u8>,
    },
    State {
        to: usize,
        from: usize,
        bytes: Vec<u8>,
        reply: bool,
    },
    Crash(usize),
}

struct Node {
    m: Option<Membership>,
    started_ms: Option<u64>,
    crashed_ms: Option<u64>,
    tick_at: Option<u64>,
    gossip_bytes_window: u64,
    gossip_bytes_formation: u64,
    push_pull_bytes_window: u64,
    deaths_seen: u64,
}

fn id_of(i: usize) -> NodeId {
    NodeId::new(i as u64 + 1)
}

fn index_of(id: NodeId) -> usize {
    (id.get() - 1) as usize
}

fn addr_of(i: usize) -> SocketAddr {
    SocketAddr::from((
        Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8),
        7000,
    ))
}

/// One run.
pub struct World {
    s: Scenario,
    rng: Rng,
    queue: EventQueue<Event>,
    nodes: Vec<Node>,
    by_addr: HashMap<SocketAddr, usize>,
    /// (node, crash time) in crash order.
    victims: Vec<(usize, u64)>,
    /// seen_dead[k][i]: when node i first held victim k Dead.
    seen_dead: Vec<Vec<Option<u64>>>,
    /// (node, start time) of the late joins.
    joiners: Vec<(usize, u64)>,
    seen_alive: Vec<Vec<Option<u64>>>,
    false_deaths: Vec<(u64, usize, usize)>,
    datagrams: u64,
    formation_end_ms: u64,
}

impl World {
    /// A world for `s`, nothing run yet.
    pub fn new(s: Scenario) -> World {
        let total = s.nodes + s.late_joins;
        let mut rng = Rng::new(s.seed);
        let mut queue = EventQueue::new();
        for i in 0..s.nodes {
            queue.push(i as u64 * s.join_spacing_ms, Event::Start(i));
        }
        let formation_end_ms = s.nodes as u64 * s.join_spacing_ms;
        // Faults alternate crash, join, crash, ... until both lists are used.
        let protected = |i: usize| i < s.seeds || Some(i) == s.slow_node;
        let mut candidates: Vec<usize> = (0..s.nodes).filter(|i| !protected(*i)).collect();
        let mut crashes = Vec::new();
        for _ in 0..s.crashes.min(candidates.len()) {
            let k = rng.index(candidates.len());
            crashes.push(candidates.swap_remove(k));
        }
        let mut at = s.first_fault_ms;
        let (mut c, mut j) = (0, 0);
        while c < crashes.len() || j < s.late_joins {
            if c < crashes.len() {
                queue.push(at, Event::Crash(crashes[c]));
                c += 1;
                at += s.fault_spacing_ms;
            }
            if j < s.late_joins {
                queue.push(at, Event::Start(s.nodes + j));
                j += 1;
                at += s.fault_spacing_ms;
            }
        }
        let nodes = (0..total)
            .map(|_| Node {
                m: None,
                started_ms: None,
                crashed_ms: None,
                tick_at: None,
                gossip_bytes_window: 0,
                gossip_bytes_formation: 0,
                push_pull_bytes_window: 0,
                deaths_seen: 0,
            })
            .collect();
        let by_addr = (0..total).map(|i| (addr_of(i), i)).collect();
        World {
            s,
            rng,
            queue,
            nodes,
            by_addr,
            victims: Vec::new(),
            seen_dead: Vec::new(),
            joiners: Vec::new(),
            seen_alive: Vec::new(),
            false_deaths: Vec::new(),
            datagrams: 0,
            formation_end_ms,
        }
    }

    fn live(&self, i: usize) -> bool {
        self.nodes[i].m.is_some() && self.nodes[i].crashed_ms.is_none()
    }

    /// Runs to the end and measures.
    pub fn run(mut self) -> Report {
        while let Some(at) = self.queue.peek_ms() {
            if at > self.s.duration_ms {
                break;
            }
            let (now, event) = self.queue.pop().expect("peeked");
            self.handle(now, event);
        }
        self.report()
    }

    fn handle(&mut self, now: u64, event: Event) {
        match event {
            Event::Start(i) => {
                let local = Member {
                    id: id_of(i),
                    addr: addr_of(i),
                    incarnation: 0,
                    status: Status::Normal,
                    health: Health::Alive,
                    flush_hlc: 0,
                };
                let seed = self.s.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let m = Membership::new(local, CLUSTER, SECRET, self.s.config.clone(), seed);
                self.nodes[i].m = Some(m);
                self.nodes[i].started_ms = Some(now);
                if i >= self.s.nodes {
                    self.joiners.push((i, now));
                    self.seen_alive.push(vec![None; self.nodes.len()]);
                }
                // Bootstrap: push-pull with one seed that is up.
                let seeds: Vec<usize> = (0..self.s.seeds.min(self.nodes.len()))
                    .filter(|&k| k != i && self.live(k))
                    .collect();
                if !seeds.is_empty() {
                    let seed_node = seeds[self.rng.index(seeds.len())];
                    self.start_push_pull(now, i, seed_node);
                }
                self.after(now, i, true);
            }
            Event::Tick(i) => {
                if self.nodes[i].tick_at != Some(now) || !self.live(i) {
                    return;
                }
                self.nodes[i].tick_at = None;
                self.nodes[i].m.as_mut().expect("live").tick(now);
                self.after(now, i, true);
            }
            Event::Datagram { to, bytes } => {
                if !self.live(to) {
                    return;
                }
                self.datagrams += 1;
                let m = self.nodes[to].m.as_mut().expect("live");
                m.on_datagram(&bytes, now)
                    .expect("a datagram from the cluster decodes");
                self.after(now, to, false);
            }
            Event::State {
                to,
                from,
                bytes,
                reply,
            } => {
                if !self.live(to) {
                    return;
                }
                let members = Membership::decode_state(&bytes).expect("a state decodes");
                let m = self.nodes[to].m.as_mut().expect("live");
                m.merge_state(members, now);
                if reply {
                    let answer = m.encode_state();
                    self.count_push_pull(now, to, answer.len());
                    let at = now + self.rng.between(2, 10);
                    self.queue.push(
                        at,
                        Event::State {
                            to: from,
                            from: to,
                            bytes: answer,
                            reply: false,
                        },
                    );
                }
                self.after(now, to, false);
            }
            Event::Crash(i) => {
                if !self.live(i) {
                    return;
                }
                self.nodes[i].crashed_ms = Some(now);
                self.victims.push((i, now));
                self.seen_dead.push(vec![None; self.nodes.len()]);
            }
        }
    }

    fn start_push_pull(&mut self, now: u64, from: usize, to: usize) {
        let bytes = self.nodes[from].m.as_ref().expect("live").encode_state();
        self.count_push_pull(now, from, bytes.len());
        let at = now + self.rng.between(2, 10);
        self.queue.push(
            at,
            Event::State {
                to,
                from,
                bytes,
                reply: true,
            },
        );
    }

    fn count_push_pull(&mut self, now: u64, i: usize, len: usize) {
        if now >= self.s.window_start_ms {
            self.nodes[i].push_pull_bytes_window += len as u64;
        }
    }

    /// After node `i` handled an event: route its outputs, observe its view, schedule its
    /// next tick.
    fn after(&mut self, now: u64, i: usize, ticked: bool) {
        let outputs = self.nodes[i].m.as_mut().expect("live").drain_outputs();
        let mut changed = false;
        for output in outputs {
            match output {
                Output::Datagram { to, bytes } => {
                    let len = bytes.len() as u64 + UDP_IP_HEADER_BYTES;
                    if now >= self.s.window_start_ms {
                        self.nodes[i].gossip_bytes_window += len;
                    } else if now < self.formation_end_ms {
                        self.nodes[i].gossip_bytes_formation += len;
                    }
                    let Some(&j) = self.by_addr.get(&to) else {
                        continue;
                    };
                    if self.rng.chance(self.s.loss_per_mille) {
                        continue;
                    }
                    let mut latency = self.rng.between(1, 4);
                    if Some(j) == self.s.slow_node {
                        latency *= self.s.slow_factor;
                    }
                    self.queue
                        .push(now + latency, Event::Datagram { to: j, bytes });
                }
                Output::PushPull { to, .. } => {
                    let j = index_of(to);
                    self.start_push_pull(now, i, j);
                }
                Output::ViewChanged => changed = true,
            }
        }
        if changed {
            self.observe(now, i);
        }
        let m = self.nodes[i].m.as_ref().expect("live");
        let deadline = m.next_deadline_ms().max(now);
        let at = match self.s.slow_node {
            Some(slow) if slow == i => {
                // The slow node's timers are stretched and re-armed only by its ticks.
                if !ticked && self.nodes[i].tick_at.is_some() {
                    return;
                }
                now + (deadline - now) * self.s.slow_factor
            }
            _ => deadline,
        };
        if self.nodes[i].tick_at.is_none_or(|t| at < t) {
            self.nodes[i].tick_at = Some(at);
            self.queue.push(at, Event::Tick(i));
        }
    }

    fn observe(&mut self, now: u64, i: usize) {
        let m = self.nodes[i].m.as_ref().expect("live");
        for (k, &(v, _)) in self.victims.iter().enumerate() {
            if self.seen_dead[k][i].is_none()
                && m.member(id_of(v)).is_some_and(|x| x.health == Health::Dead)
            {
                self.seen_dead[k][i] = Some(now);
            }
        }
        for (k, &(j, _)) in self.joiners.iter().enumerate() {
            if self.seen_alive[k][i].is_none()
                && m.member(id_of(j))
                    .is_some_and(|x| x.health == Health::Alive && x.status != Status::Left)
            {
                self.seen_alive[k][i] = Some(now);
            }
        }
        let deaths = m.stats().deaths;
        if deaths != self.nodes[i].deaths_seen {
            // A Dead verdict of this node's own: check it against the truth. (A verdict
            // learned from gossip was counted at the node that reached it.)
            let wrong: Vec<usize> = m
                .members()
                .filter(|x| x.health == Health::Dead && x.status != Status::Left)
                .map(|x| index_of(x.id))
                .filter(|&v| self.nodes[v].crashed_ms.is_none())
                .collect();
            self.nodes[i].deaths_seen = deaths;
            for v in wrong {
                if !self.false_deaths.iter().any(|&(_, a, b)| a == i && b == v) {
                    self.false_deaths.push((now, i, v));
                }
            }
        }
    }

    /// When every observer of an event at `since` saw it, from `seen`.
    fn all_saw(&self, seen: &[Option<u64>], subject: usize, since: u64) -> Option<u64> {
        let mut last = since;
        for (i, node) in self.nodes.iter().enumerate() {
            if i == subject || node.started_ms.is_none_or(|t| t > since) {
                continue;
            }
            match (seen[i], node.crashed_ms) {
                (Some(t), _) => last = last.max(t),
                (None, Some(_)) => {}
                (None, None) => return None,
            }
        }
        Some(last - since)
    }

    fn report(&self) -> Report {
        let mut r = Report {
            detections_ms: self
                .victims
                .iter()
                .enumerate()
                .map(|(k, &(v, at))| self.all_saw(&self.seen_dead[k], v, at))
                .collect(),
            joins_ms: self
                .joiners
                .iter()
                .enumerate()
                .map(|(k, &(j, at))| self.all_saw(&self.seen_alive[k], j, at))
                .collect(),
            false_deaths: self.false_deaths.clone(),
            datagrams: self.datagrams,
            ..Report::default()
        };
        let end = self.s.duration_ms;
        let (mut g_sum, mut p_sum, mut n) = (0.0, 0.0, 0usize);
        for node in &self.nodes {
            if let (Some(m), Some(start)) = (&node.m, node.started_ms) {
                let st = m.stats();
                if std::env::var("GOSSIP_DEBUG").is_ok()
                    && (st.suspicions > 0 || m.local_health() > 1 || st.refutations > 0)
                {
                    eprintln!(
                        "node {} susp {} refut {} lhm {} deaths {} crashed {:?}",
                        index_of(m.local().id),
                        st.suspicions,
                        st.refutations,
                        m.local_health(),
                        st.deaths,
                        node.crashed_ms
                    );
                }
                r.refuted_deaths += st.false_deaths;
                r.suspicions += st.suspicions;
                r.refutations += st.refutations;
                if node.crashed_ms.is_none() {
                    r.local_health_max = r.local_health_max.max(m.local_health());
                }
                let from = start.max(self.s.window_start_ms);
                let to = node.crashed_ms.unwrap_or(end);
                // Nodes up for the whole window only: partial ones skew the rate.
                if start <= self.s.window_start_ms && node.crashed_ms.is_none() && to > from {
                    let secs = (to - from) as f64 / 1e3;
                    let g = node.gossip_bytes_window as f64 / secs;
                    let p = node.push_pull_bytes_window as f64 / secs;
                    g_sum += g;
                    p_sum += p;
                    n += 1;
                    r.gossip_bytes_per_s_max = r.gossip_bytes_per_s_max.max(g);
                    r.push_pull_bytes_per_s_max = r.push_pull_bytes_per_s_max.max(p);
                }
                let formation_secs = self.formation_end_ms.saturating_sub(start) as f64 / 1e3;
                if formation_secs >= 1.0 {
                    r.formation_bytes_per_s_max = r
                        .formation_bytes_per_s_max
                        .max(node.gossip_bytes_formation as f64 / formation_secs);
                }
            }
        }
        if n > 0 {
            r.gossip_bytes_per_s_mean = g_sum / n as f64;
            r.push_pull_bytes_per_s_mean = p_sum / n as f64;
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if !self.live(i) {
                continue;
            }
            let m = node.m.as_ref().expect("live");
            let wrong = self.nodes.iter().enumerate().any(|(j, other)| {
                if j == i || other.m.is_none() {
                    return false;
                }
                let seen = m.member(id_of(j));
                if other.crashed_ms.is_some() {
                    seen.is_none_or(|x| x.health != Health::Dead)
                } else {
                    // Suspect counts as known: a suspicion being refuted is not divergence.
                    seen.is_none_or(|x| x.health == Health::Dead)
                }
            });
            if wrong {
                r.wrong_views += 1;
                if std::env::var("GOSSIP_DEBUG").is_ok() {
                    for (j, other) in self.nodes.iter().enumerate() {
                        if j == i || other.m.is_none() {
                            continue;
                        }
                        let seen = m.member(id_of(j)).map(|x| (x.health, x.incarnation));
                        let truth_dead = other.crashed_ms.is_some();
                        let ok = match seen {
                            Some((h, _)) => (h == Health::Dead) == truth_dead,
                            None => false,
                        };
                        if !ok {
                            eprintln!(
                                "view of {i}: {j} seen {seen:?} crashed {:?} truth inc {:?}",
                                other.crashed_ms,
                                other.m.as_ref().map(|x| x.local().incarnation)
                            );
                        }
                    }
                }
            }
        }
        r
    }
}
