//! The three comparison tables: ratios, goals and the verdict on each.
//!
//! Rows come from the plan, so a run that failed or never ran still has its row, with
//! "failed" in every cell it would have filled.

use super::results::{Measurement, Results, Run};

/// What a cell shows for a run that failed, or a figure computed from one.
pub const FAILED: &str = "failed";
/// What a cell shows for a figure the tool does not measure.
pub const ABSENT: &str = "—";

/// The goals table's systems (compare.sh's `system` column).
pub const REDIS: &str = "redis-server";
/// The single ringcache node.
pub const SINGLE: &str = "single";
/// The 3-node ringcache cluster.
pub const CLUSTER: &str = "cluster";
/// redis-benchmark, in the tool table.
pub const REDIS_BENCHMARK: &str = "redis-benchmark";
/// The load generator, in the tool table.
pub const GENERATOR: &str = "ringcache-bench";

/// The name a system goes by in tables and plots.
pub fn display_name(system: &str) -> &str {
    match system {
        SINGLE => "single node",
        CLUSTER => "3-node cluster",
        other => other,
    }
}

/// A bound a ratio should stay within.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// The ratio should be at least this.
    AtLeast(f64),
    /// The ratio should be at most this.
    AtMost(f64),
}

impl Goal {
    /// Whether `ratio` meets the goal.
    pub fn met_by(self, ratio: f64) -> bool {
        match self {
            Goal::AtLeast(bound) => ratio >= bound,
            Goal::AtMost(bound) => ratio <= bound,
        }
    }

    /// `≥ 1.0`, `≤ 3.0`.
    pub fn describe(self) -> String {
        match self {
            Goal::AtLeast(bound) => format!("≥ {bound:.1}"),
            Goal::AtMost(bound) => format!("≤ {bound:.1}"),
        }
    }
}

/// Single node against redis-server: throughput ratio (node / redis-server).
pub const THROUGHPUT_GOAL: Goal = Goal::AtLeast(1.0);
/// Single node against redis-server: p99 ratio (node / redis-server).
pub const P99_GOAL: Goal = Goal::AtMost(1.0);

/// The cluster's server CPU per request against the single node's, where there is a goal.
pub fn cluster_cpu_goal(op: &str, level: Option<&str>) -> Option<Goal> {
    match (op, level) {
        ("SET", Some("QUORUM")) => Some(Goal::AtMost(3.0)),
        ("GET", Some("QUORUM")) => Some(Goal::AtMost(2.0)),
        _ => None,
    }
}

/// How a row stands against its goals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every goal of the row is met.
    Met,
    /// These goals are not met.
    NotMet(Vec<String>),
    /// A run of the row failed, so it cannot be judged.
    Failed,
    /// The row has no goal.
    NoGoal,
}

impl Verdict {
    fn cell(&self) -> String {
        match self {
            Verdict::Met => "met".to_string(),
            Verdict::NotMet(which) => format!("**not met** ({})", which.join(", ")),
            Verdict::Failed => FAILED.to_string(),
            Verdict::NoGoal => ABSENT.to_string(),
        }
    }
}

/// Judges ratios against their goals; `None` ratios (a failed run) make the row failed.
///
/// A ratio is judged as the table shows it, rounded to two decimals: 0.997 shows as 1.00 and
/// meets "≥ 1.0". The runs are noisier than that anyway, and a verdict that contradicts the
/// number next to it would only confuse.
pub fn judge(checks: &[(&str, Option<f64>, Goal)]) -> Verdict {
    if checks.is_empty() {
        return Verdict::NoGoal;
    }
    let mut missed = Vec::new();
    for (name, ratio, goal) in checks {
        match ratio {
            None => return Verdict::Failed,
            Some(r) if !goal.met_by((r * 100.0).round() / 100.0) => missed.push(name.to_string()),
            Some(_) => {}
        }
    }
    if missed.is_empty() {
        Verdict::Met
    } else {
        Verdict::NotMet(missed)
    }
}

/// A markdown table with a verdict per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column titles.
    pub header: Vec<String>,
    /// Which columns hold numbers (right-aligned).
    pub numeric: Vec<bool>,
    /// Cells, one `Vec` per row.
    pub rows: Vec<Vec<String>>,
    /// Each row's standing against its goals.
    pub verdicts: Vec<Verdict>,
}

impl Table {
    fn new(columns: &[(&str, bool)]) -> Self {
        Self {
            header: columns.iter().map(|(c, _)| c.to_string()).collect(),
            numeric: columns.iter().map(|(_, n)| *n).collect(),
            rows: Vec::new(),
            verdicts: Vec::new(),
        }
    }

    /// The table in GitHub markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("| {} |\n", self.header.join(" | "));
        out.push('|');
        for numeric in &self.numeric {
            out.push_str(if *numeric { "---:|" } else { "---|" });
        }
        out.push('\n');
        for row in &self.rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out
    }

    /// How many rows meet their goals, out of the rows that have one.
    pub fn goals_met(&self) -> (usize, usize) {
        let judged = self
            .verdicts
            .iter()
            .filter(|v| **v != Verdict::NoGoal)
            .count();
        let met = self.verdicts.iter().filter(|v| **v == Verdict::Met).count();
        (met, judged)
    }
}

/// One workload of a table: the planned runs share it, one per system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// `1:10`, `SET`, `GET`.
    pub op: String,
    /// Pipeline depth.
    pub pipeline: u32,
    /// Consistency level sent, if any.
    pub level: Option<String>,
}

impl Workload {
    /// `1:10 P16`, `SET QUORUM`: how plots label it.
    pub fn short_name(&self) -> String {
        match &self.level {
            Some(level) => format!("{} {level}", self.op),
            None => format!("{} P{}", self.op, self.pipeline),
        }
    }
}

/// The table's workloads in plan order, each once.
pub fn workloads(results: &Results, table: &str) -> Vec<Workload> {
    let mut out: Vec<Workload> = Vec::new();
    for run in results.runs.iter().filter(|r| r.planned.table == table) {
        let w = Workload {
            op: run.planned.op.clone(),
            pipeline: run.planned.pipeline,
            level: run.planned.level.clone(),
        };
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

/// The run of `system` for a workload of `table`.
pub fn lookup<'a>(
    results: &'a Results,
    table: &str,
    system: &str,
    w: &Workload,
) -> Option<&'a Run> {
    results.find(table, system, &w.op, w.pipeline, w.level.as_deref())
}

fn measured(run: Option<&Run>) -> Option<&Measurement> {
    run.and_then(Run::measured)
}

/// `b / a`, when both are there and `a` is not zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    }
}

/// A cell for one run's figure: the number, "failed" for a failed run, "—" if not measured.
fn figure(
    run: Option<&Run>,
    value: impl Fn(&Measurement) -> Option<f64>,
    decimals: usize,
) -> String {
    match measured(run) {
        None => FAILED.to_string(),
        Some(m) => value(m).map_or(ABSENT.to_string(), |v| format!("{v:.decimals$}")),
    }
}

/// A cell for a figure of two runs: `a / b`.
fn pair(
    a: Option<&Run>,
    b: Option<&Run>,
    value: impl Fn(&Measurement) -> Option<f64> + Copy,
    decimals: usize,
) -> String {
    format!(
        "{} / {}",
        figure(a, value, decimals),
        figure(b, value, decimals)
    )
}

/// A ratio cell: "failed" if a run failed, "—" if a figure is not measured.
fn ratio_cell(
    a: Option<&Run>,
    b: Option<&Run>,
    value: impl Fn(&Measurement) -> Option<f64>,
) -> String {
    match (measured(a), measured(b)) {
        (Some(a), Some(b)) => {
            ratio(value(a), value(b)).map_or(ABSENT.to_string(), |r| format!("{r:.2}"))
        }
        _ => FAILED.to_string(),
    }
}

fn ratio_of(
    a: Option<&Run>,
    b: Option<&Run>,
    value: impl Fn(&Measurement) -> Option<f64>,
) -> Option<f64> {
    ratio(value(measured(a)?), value(measured(b)?))
}

/// Failed requests of each run, `a / b`: a count, "n/a" where the tool does not count them.
fn errors_cell(runs: &[Option<&Run>]) -> String {
    runs.iter()
        .map(|run| match measured(*run) {
            None => FAILED.to_string(),
            Some(m) => m
                .errors_total()
                .map_or("n/a".to_string(), |n| n.to_string()),
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

fn throughput(m: &Measurement) -> Option<f64> {
    Some(m.throughput)
}
fn p50(m: &Measurement) -> Option<f64> {
    m.latency.p50
}
fn p99(m: &Measurement) -> Option<f64> {
    m.latency.p99
}

/// Table 1: the single node against redis-server, the same generator load on each.
pub fn goals_table(results: &Results) -> Table {
    let mut table = Table::new(&[
        ("SET:GET", false),
        ("P", true),
        ("redis-server req/s", true),
        ("single node req/s", true),
        (
            &format!("throughput ratio ({})", THROUGHPUT_GOAL.describe()),
            true,
        ),
        ("p50 ms (redis-server / node)", true),
        ("p99 ms (redis-server / node)", true),
        (&format!("p99 ratio ({})", P99_GOAL.describe()), true),
        ("goals", false),
        ("errors (redis-server / node)", true),
    ]);
    for w in workloads(results, "goals") {
        let redis = lookup(results, "goals", REDIS, &w);
        let node = lookup(results, "goals", SINGLE, &w);
        let verdict = judge(&[
            (
                "throughput",
                ratio_of(redis, node, throughput),
                THROUGHPUT_GOAL,
            ),
            ("p99", ratio_of(redis, node, p99), P99_GOAL),
        ]);
        table.rows.push(vec![
            w.op.clone(),
            w.pipeline.to_string(),
            figure(redis, throughput, 0),
            figure(node, throughput, 0),
            ratio_cell(redis, node, throughput),
            pair(redis, node, p50, 3),
            pair(redis, node, p99, 3),
            ratio_cell(redis, node, p99),
            verdict.cell(),
            errors_cell(&[redis, node]),
        ]);
        table.verdicts.push(verdict);
    }
    table
}

/// Table 2: redis-benchmark and the generator against redis-server, SET only and GET only.
pub fn tool_table(results: &Results) -> Table {
    let mut table = Table::new(&[
        ("op", false),
        ("P", true),
        ("redis-benchmark req/s", true),
        ("ringcache-bench req/s", true),
        ("ringcache-bench / redis-benchmark", true),
        ("p50 ms (redis-benchmark / ringcache-bench)", true),
        ("p99 ms (redis-benchmark / ringcache-bench)", true),
        (
            "client CPU s / 100k req (redis-benchmark / ringcache-bench)",
            true,
        ),
        (
            "redis-server CPU s / 100k req (redis-benchmark / ringcache-bench)",
            true,
        ),
        ("errors (ringcache-bench)", true),
    ]);
    for w in workloads(results, "tool") {
        let rb = lookup(results, "tool", REDIS_BENCHMARK, &w);
        let generator = lookup(results, "tool", GENERATOR, &w);
        table.rows.push(vec![
            w.op.clone(),
            w.pipeline.to_string(),
            figure(rb, throughput, 0),
            figure(generator, throughput, 0),
            ratio_cell(rb, generator, throughput),
            pair(rb, generator, p50, 3),
            pair(rb, generator, p99, 3),
            pair(rb, generator, Measurement::client_cpu_per_100k, 2),
            pair(rb, generator, Measurement::server_cpu_per_100k, 2),
            errors_cell(&[generator]),
        ]);
        table.verdicts.push(Verdict::NoGoal);
    }
    table
}

/// Table 3: the 3-node cluster against the single node at each consistency level.
pub fn cluster_table(results: &Results) -> Table {
    let mut table = Table::new(&[
        ("op", false),
        ("level", false),
        ("single node req/s", true),
        ("cluster req/s", true),
        ("p50 ms (node / cluster)", true),
        ("p99 ms (node / cluster)", true),
        ("server CPU s / 100k req (node / cluster)", true),
        ("server CPU cluster / node", true),
        ("goal", false),
        ("server + client CPU s / 100k req (node / cluster)", true),
        ("server + client CPU cluster / node", true),
        ("errors (node / cluster)", true),
    ]);
    for w in workloads(results, "cluster") {
        let node = lookup(results, "cluster", SINGLE, &w);
        let cluster = lookup(results, "cluster", CLUSTER, &w);
        let server_cpu = Measurement::server_cpu_per_100k;
        let total_cpu = Measurement::total_cpu_per_100k;
        let goal = cluster_cpu_goal(&w.op, w.level.as_deref());
        let verdict = match goal {
            Some(goal) => judge(&[("CPU", ratio_of(node, cluster, server_cpu), goal)]),
            None => Verdict::NoGoal,
        };
        let goal_cell = match (goal, &verdict) {
            (Some(goal), Verdict::Failed) => format!("{}: {FAILED}", goal.describe()),
            (Some(goal), Verdict::Met) => format!("{}: met", goal.describe()),
            (Some(goal), _) => format!("{}: **not met**", goal.describe()),
            (None, _) => ABSENT.to_string(),
        };
        table.rows.push(vec![
            w.op.clone(),
            w.level.clone().unwrap_or_else(|| ABSENT.to_string()),
            figure(node, throughput, 0),
            figure(cluster, throughput, 0),
            pair(node, cluster, p50, 3),
            pair(node, cluster, p99, 3),
            pair(node, cluster, server_cpu, 2),
            ratio_cell(node, cluster, server_cpu),
            goal_cell,
            pair(node, cluster, total_cpu, 2),
            ratio_cell(node, cluster, total_cpu),
            errors_cell(&[node, cluster]),
        ]);
        table.verdicts.push(verdict);
    }
    table
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::results::{Latency, Outcome, PlannedRun};
    use std::collections::BTreeMap;

    pub(crate) fn planned(
        table: &str,
        system: &str,
        op: &str,
        pipeline: u32,
        level: Option<&str>,
    ) -> PlannedRun {
        PlannedRun {
            table: table.into(),
            system: system.into(),
            op: op.into(),
            pipeline,
            level: level.map(Into::into),
            file: format!("{table}-{system}-{op}-{pipeline}"),
        }
    }

    pub(crate) fn measured_run(
        planned: PlannedRun,
        throughput: f64,
        p99: f64,
        server_cpu_s: f64,
    ) -> Run {
        Run {
            planned,
            outcome: Outcome::Measured(Measurement {
                requests: 100_000,
                throughput,
                latency: Latency {
                    p50: Some(p99 / 4.0),
                    p90: Some(p99 / 2.0),
                    p99: Some(p99),
                    p99_9: Some(p99 * 2.0),
                    max: Some(p99 * 4.0),
                    mean: Some(p99 / 3.0),
                },
                errors: Some(BTreeMap::new()),
                server_cpu_s: Some(server_cpu_s),
                client_cpu_s: Some(1.0),
            }),
            command: Some("ringcache-bench ...".into()),
        }
    }

    pub(crate) fn failed_run(planned: PlannedRun) -> Run {
        Run {
            planned,
            outcome: Outcome::Failed("exit status 1".into()),
            command: Some("ringcache-bench ...".into()),
        }
    }

    /// Goals: 1:1 P1 met, 1:10 P1 throughput missed, 1:1 P16 p99 missed, 1:10 P16 node failed.
    pub(crate) fn goals_results() -> Results {
        let g = |s, op, p| planned("goals", s, op, p, None);
        Results {
            runs: vec![
                measured_run(g(REDIS, "1:1", 1), 100_000.0, 1.0, 1.0),
                measured_run(g(SINGLE, "1:1", 1), 110_000.0, 0.9, 1.0),
                measured_run(g(REDIS, "1:10", 1), 100_000.0, 1.0, 1.0),
                measured_run(g(SINGLE, "1:10", 1), 90_000.0, 1.0, 1.0),
                measured_run(g(REDIS, "1:1", 16), 500_000.0, 2.0, 1.0),
                measured_run(g(SINGLE, "1:1", 16), 500_000.0, 3.0, 1.0),
                measured_run(g(REDIS, "1:10", 16), 500_000.0, 2.0, 1.0),
                failed_run(g(SINGLE, "1:10", 16)),
            ],
            ..Results::default()
        }
    }

    #[test]
    fn goals_rows_give_ratios_and_say_which_goal_is_missed() {
        let table = goals_table(&goals_results());
        assert_eq!(table.rows.len(), 4);
        assert_eq!(
            table.rows[0],
            [
                "1:1",
                "1",
                "100000",
                "110000",
                "1.10",
                "0.250 / 0.225",
                "1.000 / 0.900",
                "0.90",
                "met",
                "0 / 0"
            ]
        );
        assert_eq!(
            table.verdicts[1],
            Verdict::NotMet(vec!["throughput".into()])
        );
        assert_eq!(table.rows[1][8], "**not met** (throughput)");
        assert_eq!(table.verdicts[2], Verdict::NotMet(vec!["p99".into()]));
        assert_eq!(table.rows[2][7], "1.50");
        assert_eq!(table.goals_met(), (1, 4));
    }

    #[test]
    fn a_failed_run_shows_failed_in_its_cells_ratios_and_verdict() {
        let table = goals_table(&goals_results());
        let row = &table.rows[3];
        assert_eq!(row[2], "500000");
        assert_eq!(row[3], FAILED);
        assert_eq!(row[4], FAILED);
        assert_eq!(row[6], "2.000 / failed");
        assert_eq!(row[8], FAILED);
        assert_eq!(row[9], "0 / failed");
        assert_eq!(table.verdicts[3], Verdict::Failed);
    }

    #[test]
    fn a_run_missing_from_the_results_is_failed_too() {
        let mut results = goals_results();
        results.runs.remove(0);
        let table = goals_table(&results);
        assert_eq!(table.rows[0][2], FAILED);
        assert_eq!(table.verdicts[0], Verdict::Failed);
    }

    #[test]
    fn cluster_cpu_goals_apply_to_quorum_only_and_use_server_cpu() {
        let c = |s, op, level| planned("cluster", s, op, 1, Some(level));
        let results = Results {
            runs: vec![
                measured_run(c(SINGLE, "SET", "ONE"), 80_000.0, 1.0, 1.0),
                measured_run(c(CLUSTER, "SET", "ONE"), 50_000.0, 2.0, 5.0),
                measured_run(c(SINGLE, "SET", "QUORUM"), 80_000.0, 1.0, 1.0),
                measured_run(c(CLUSTER, "SET", "QUORUM"), 50_000.0, 2.0, 2.9),
                measured_run(c(SINGLE, "GET", "QUORUM"), 80_000.0, 1.0, 1.0),
                measured_run(c(CLUSTER, "GET", "QUORUM"), 50_000.0, 2.0, 2.5),
            ],
            ..Results::default()
        };
        let table = cluster_table(&results);
        assert_eq!(
            table.verdicts,
            [
                Verdict::NoGoal,
                Verdict::Met,
                Verdict::NotMet(vec!["CPU".into()])
            ]
        );
        assert_eq!(table.rows[0][7], "5.00");
        assert_eq!(table.rows[0][8], ABSENT);
        assert_eq!(table.rows[1][6], "1.00 / 2.90");
        assert_eq!(table.rows[1][8], "≤ 3.0: met");
        // Server + client: the client's 1.0 s joins both sides.
        assert_eq!(table.rows[1][9], "2.00 / 3.90");
        assert_eq!(table.rows[1][10], "1.95");
        assert_eq!(table.rows[2][8], "≤ 2.0: **not met**");
        assert_eq!(table.goals_met(), (1, 2));
    }

    #[test]
    fn tool_rows_put_redis_benchmark_first_and_count_only_the_generators_errors() {
        let t = |s, op, p| planned("tool", s, op, p, None);
        let mut rb = measured_run(t(REDIS_BENCHMARK, "GET", 16), 400_000.0, 2.0, 1.0);
        if let Outcome::Measured(m) = &mut rb.outcome {
            m.errors = None;
            m.latency.p90 = None;
        }
        let results = Results {
            runs: vec![
                rb,
                measured_run(t(GENERATOR, "GET", 16), 440_000.0, 2.0, 1.0),
            ],
            ..Results::default()
        };
        let table = tool_table(&results);
        assert_eq!(table.rows[0][4], "1.10");
        assert_eq!(table.rows[0][9], "0");
        assert_eq!(table.verdicts, [Verdict::NoGoal]);
        assert!(
            table
                .to_markdown()
                .starts_with("| op | P | redis-benchmark req/s |")
        );
        assert!(table.to_markdown().contains("\n|---|---:|---:|"));
    }

    #[test]
    fn goal_bounds_are_inclusive() {
        assert!(Goal::AtLeast(1.0).met_by(1.0));
        assert!(Goal::AtMost(3.0).met_by(3.0));
        assert!(!Goal::AtMost(3.0).met_by(3.01));
        assert_eq!(judge(&[]), Verdict::NoGoal);
        // Judged as shown: 0.996 is 1.00 in the table, 0.994 is 0.99.
        assert_eq!(judge(&[("t", Some(0.996), THROUGHPUT_GOAL)]), Verdict::Met);
        assert_eq!(
            judge(&[("t", Some(0.994), THROUGHPUT_GOAL)]),
            Verdict::NotMet(vec!["t".into()])
        );
    }
}
