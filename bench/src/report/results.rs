//! The results directory that bench/compare.sh fills, read back into runs.
//!
//! # Format
//!
//! Every file is written by compare.sh; the report only reads.
//!
//! ```text
//! plan.tsv      one line per planned run, written before the first run:
//!               table  system  op  pipeline  level  file
//!               (tab-separated; level is "-" when the run sends no CONSISTENCY)
//! runs.tsv      one line per finished run: file  exit-status  seconds  command
//! <file>.json   the generator's result (`ringcache-bench --json`)
//! <file>.csv    redis-benchmark's `--csv` output
//! <file>.cpu    for a redis-benchmark run: `client_cpu_s X`, `server_cpu_s Y`, `requests N`
//! <file>.err    the run's stderr (its last lines are quoted when the run failed)
//! machine.txt   `key: value` lines describing the machine and the settings
//! servers.txt   free-text lines: what the servers reported after the runs
//! ```
//!
//! A planned run that has no line in runs.tsv (the script stopped before it) or that exited
//! with a non-zero status or left no readable result is a [`Outcome::Failed`] run: the
//! tables show it as "failed", never leave it out.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

/// Lines of a failed run's stderr quoted in the report.
const STDERR_TAIL_LINES: usize = 3;
/// Characters of one quoted stderr line (a runaway line must not flood the document).
const STDERR_LINE_CHARS_MAX: usize = 200;

/// One run as compare.sh planned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRun {
    /// Which table the run belongs to: `goals`, `tool` or `cluster`.
    pub table: String,
    /// `redis-server`, `single`, `cluster`, `redis-benchmark` or `ringcache-bench`.
    pub system: String,
    /// The workload: a `SET:GET` ratio (`1:10`) or an operation (`SET`, `GET`).
    pub op: String,
    /// Requests in flight per connection.
    pub pipeline: u32,
    /// The consistency level sent with every request; `None` when none is sent.
    pub level: Option<String>,
    /// The result file's name inside the results directory, without extension.
    pub file: String,
}

/// Latency percentiles in milliseconds; `None` when the source does not give one
/// (redis-benchmark has no p90 or p99.9) or the run had no request of that kind.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// 99.9th percentile.
    pub p99_9: Option<f64>,
    /// Slowest request.
    pub max: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
}

/// What one successful run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measurement {
    /// Requests completed in the measured window.
    pub requests: u64,
    /// Requests per second over the measured window.
    pub throughput: f64,
    /// Latency of all requests of the run.
    pub latency: Latency,
    /// Failed requests by kind; `None` when the tool does not count them (redis-benchmark).
    pub errors: Option<BTreeMap<String, u64>>,
    /// CPU seconds (user + system) of the server processes during the measured window.
    pub server_cpu_s: Option<f64>,
    /// CPU seconds of the load-generating tool itself.
    pub client_cpu_s: Option<f64>,
}

impl Measurement {
    /// Failed requests of every kind, `None` when the tool does not count them.
    pub fn errors_total(&self) -> Option<u64> {
        self.errors.as_ref().map(|e| e.values().sum())
    }

    /// The servers' CPU seconds per 100,000 requests.
    pub fn server_cpu_per_100k(&self) -> Option<f64> {
        self.per_100k(self.server_cpu_s)
    }

    /// The client's CPU seconds per 100,000 requests.
    pub fn client_cpu_per_100k(&self) -> Option<f64> {
        self.per_100k(self.client_cpu_s)
    }

    /// CPU seconds of the servers and the client together per 100,000 requests.
    pub fn total_cpu_per_100k(&self) -> Option<f64> {
        self.per_100k(Some(self.server_cpu_s? + self.client_cpu_s?))
    }

    fn per_100k(&self, cpu_s: Option<f64>) -> Option<f64> {
        (self.requests > 0).then(|| cpu_s.map(|s| s * 100_000.0 / self.requests as f64))?
    }
}

/// How a planned run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The run finished and its result was read.
    Measured(Measurement),
    /// The run did not start, exited with an error, or left no readable result: why.
    Failed(String),
}

/// A planned run with its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// What was planned.
    pub planned: PlannedRun,
    /// What happened.
    pub outcome: Outcome,
    /// The command line as compare.sh ran it, if it ran.
    pub command: Option<String>,
}

impl Run {
    /// The measurement, if the run succeeded.
    pub fn measured(&self) -> Option<&Measurement> {
        match &self.outcome {
            Outcome::Measured(m) => Some(m),
            Outcome::Failed(_) => None,
        }
    }
}

/// Everything in a results directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Results {
    /// `machine.txt` in file order: what ran where, and with which settings.
    pub machine: Vec<(String, String)>,
    /// Every planned run in plan order.
    pub runs: Vec<Run>,
    /// `servers.txt`: what the servers reported after the runs.
    pub server_notes: Vec<String>,
}

impl Results {
    /// Reads a results directory.
    ///
    /// # Errors
    /// A missing or malformed plan.tsv or runs.tsv. A missing or unreadable result file is
    /// not an error: that run is [`Outcome::Failed`].
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .with_context(|| format!("cannot read {}", dir.join(name).display()))
        };
        let plan = parse_plan(&read("plan.tsv")?)?;
        let finished = parse_runs(&read("runs.tsv").unwrap_or_default())?;
        let machine = parse_machine(&read("machine.txt").unwrap_or_default());
        let server_notes = read("servers.txt")
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        let runs = plan
            .into_iter()
            .map(|planned| {
                let finished = finished.get(&planned.file);
                let outcome = match finished {
                    None => Outcome::Failed("not run".to_string()),
                    Some(f) => outcome(dir, &planned, f.exit_status),
                };
                Run {
                    command: finished.map(|f| f.command.clone()),
                    planned,
                    outcome,
                }
            })
            .collect();
        Ok(Self {
            machine,
            runs,
            server_notes,
        })
    }

    /// The run planned for this table, system and workload.
    pub fn find(
        &self,
        table: &str,
        system: &str,
        op: &str,
        pipeline: u32,
        level: Option<&str>,
    ) -> Option<&Run> {
        self.runs.iter().find(|r| {
            let p = &r.planned;
            p.table == table
                && p.system == system
                && p.op == op
                && p.pipeline == pipeline
                && p.level.as_deref() == level
        })
    }

    /// The value of a `machine.txt` key.
    pub fn machine(&self, key: &str) -> Option<&str> {
        self.machine
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses plan.tsv.
///
/// # Errors
/// A line without six fields or with a pipeline that is not a number.
pub fn parse_plan(text: &str) -> anyhow::Result<Vec<PlannedRun>> {
    let mut plan = Vec::new();
    for (number, line) in numbered_lines(text) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [table, system, op, pipeline, level, file] = fields.as_slice() else {
            bail!("plan.tsv line {number}: expected 6 tab-separated fields: {line}");
        };
        plan.push(PlannedRun {
            table: table.to_string(),
            system: system.to_string(),
            op: op.to_string(),
            pipeline: pipeline
                .parse()
                .with_context(|| format!("plan.tsv line {number}: pipeline {pipeline:?}"))?,
            level: (*level != "-").then(|| level.to_string()),
            file: file.to_string(),
        });
    }
    Ok(plan)
}

/// One line of runs.tsv.
#[derive(Debug, Clone, PartialEq)]
struct Finished {
    exit_status: i32,
    command: String,
}

/// Parses runs.tsv into the finished runs by file name (a repeated file: the last line wins).
fn parse_runs(text: &str) -> anyhow::Result<BTreeMap<String, Finished>> {
    let mut runs = BTreeMap::new();
    for (number, line) in numbered_lines(text) {
        let mut fields = line.splitn(4, '\t');
        let (Some(file), Some(exit_status), Some(_seconds), Some(command)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            bail!("runs.tsv line {number}: expected 4 tab-separated fields: {line}");
        };
        let exit_status = exit_status
            .parse()
            .with_context(|| format!("runs.tsv line {number}: exit status {exit_status:?}"))?;
        runs.insert(
            file.to_string(),
            Finished {
                exit_status,
                command: command.to_string(),
            },
        );
    }
    Ok(runs)
}

fn parse_machine(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
}

/// Reads a finished run's result, or says why there is none.
fn outcome(dir: &Path, planned: &PlannedRun, exit_status: i32) -> Outcome {
    if exit_status != 0 {
        let why = match exit_status {
            124 => "timed out (exit status 124)".to_string(),
            s => format!("exit status {s}"),
        };
        return Outcome::Failed(with_stderr_tail(dir, &planned.file, why));
    }
    let read = if planned.system == "redis-benchmark" {
        read_redis_benchmark(dir, &planned.file)
    } else {
        read_generator(dir, &planned.file)
    };
    match read {
        Ok(m) => Outcome::Measured(m),
        Err(e) => Outcome::Failed(with_stderr_tail(dir, &planned.file, format!("{e:#}"))),
    }
}

fn with_stderr_tail(dir: &Path, file: &str, why: String) -> String {
    let stderr = std::fs::read_to_string(dir.join(format!("{file}.err"))).unwrap_or_default();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail: Vec<String> = lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..]
        .iter()
        .map(|l| l.chars().take(STDERR_LINE_CHARS_MAX).collect())
        .collect();
    if tail.is_empty() {
        why
    } else {
        format!("{why}; stderr: {}", tail.join(" / "))
    }
}

/// The generator's JSON, the fields the report uses.
#[derive(Debug, Deserialize)]
struct GeneratorJson {
    requests: u64,
    throughput: f64,
    ops: BTreeMap<String, OpJson>,
    #[serde(default)]
    errors: Option<BTreeMap<String, u64>>,
    server_cpu_s: Option<f64>,
    client_cpu_s: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct OpJson {
    #[serde(default)]
    errors: Option<u64>,
    latency_ms: Option<Latency>,
}

/// Parses the generator's `--json` output.
///
/// # Errors
/// Not JSON, or a field the report needs is missing.
pub fn parse_generator(json: &str) -> anyhow::Result<Measurement> {
    let run: GeneratorJson = serde_json::from_str(json).context("not a ringcache-bench result")?;
    let all = run.ops.get("all");
    let mut errors = run.errors.unwrap_or_default();
    // The per-op counters are the authority for how many requests failed; the top-level map
    // says why. Should they disagree, the larger count shows.
    let op_errors: u64 = all.and_then(|a| a.errors).unwrap_or_else(|| {
        ["set", "get"]
            .iter()
            .filter_map(|op| run.ops.get(*op).and_then(|o| o.errors))
            .sum()
    });
    let by_kind: u64 = errors.values().sum();
    if op_errors > by_kind {
        errors.insert("unclassified".to_string(), op_errors - by_kind);
    }
    Ok(Measurement {
        requests: run.requests,
        throughput: run.throughput,
        latency: all.and_then(|a| a.latency_ms.clone()).unwrap_or_default(),
        errors: Some(errors),
        server_cpu_s: run.server_cpu_s,
        client_cpu_s: run.client_cpu_s,
    })
}

fn read_generator(dir: &Path, file: &str) -> anyhow::Result<Measurement> {
    let path = dir.join(format!("{file}.json"));
    let json = std::fs::read_to_string(&path)
        .with_context(|| format!("no result: cannot read {}", path.display()))?;
    parse_generator(&json).with_context(|| path.display().to_string())
}

fn read_redis_benchmark(dir: &Path, file: &str) -> anyhow::Result<Measurement> {
    let path = dir.join(format!("{file}.csv"));
    let csv = std::fs::read_to_string(&path)
        .with_context(|| format!("no result: cannot read {}", path.display()))?;
    let cpu = std::fs::read_to_string(dir.join(format!("{file}.cpu"))).unwrap_or_default();
    parse_redis_benchmark(&csv, &cpu).with_context(|| path.display().to_string())
}

/// Parses redis-benchmark's `--csv` output for one test, with the `.cpu` file compare.sh
/// writes next to it (`client_cpu_s X`, `server_cpu_s Y`, `requests N`; each optional).
///
/// # Errors
/// No header with `rps`, no data line, or a field that is not a number.
pub fn parse_redis_benchmark(csv: &str, cpu: &str) -> anyhow::Result<Measurement> {
    let mut lines = csv
        .lines()
        .map(|l| {
            l.split(',')
                .map(|f| f.trim().trim_matches('"').to_string())
                .collect::<Vec<_>>()
        })
        .filter(|f| f.len() > 1);
    let header = lines.next().context("empty redis-benchmark output")?;
    let data = lines
        .next()
        .context("redis-benchmark output has no result line")?;
    let column = |name: &str| -> anyhow::Result<Option<f64>> {
        let Some(i) = header.iter().position(|h| h == name) else {
            return Ok(None);
        };
        let value = data.get(i).with_context(|| format!("no {name} field"))?;
        Ok(Some(value.parse().with_context(|| {
            format!("{name} {value:?} is not a number")
        })?))
    };
    let throughput = column("rps")?.context("no rps column in redis-benchmark output")?;
    let cpu: BTreeMap<&str, f64> = cpu
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| Some((k.trim(), v.trim().parse().ok()?)))
        .collect();
    Ok(Measurement {
        requests: cpu.get("requests").map_or(0, |&n| n as u64),
        throughput,
        latency: Latency {
            p50: column("p50_latency_ms")?,
            p90: None,
            p99: column("p99_latency_ms")?,
            p99_9: None,
            max: column("max_latency_ms")?,
            mean: column("avg_latency_ms")?,
        },
        errors: None,
        server_cpu_s: cpu.get("server_cpu_s").copied(),
        client_cpu_s: cpu.get("client_cpu_s").copied(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A generator result as the brief specifies it, with the numbers to vary.
    pub(crate) fn generator_json(throughput: f64, p99: f64, errors: u64) -> String {
        let requests = (throughput * 10.0) as u64;
        format!(
            r#"{{"label": "x", "servers": ["127.0.0.1:7001"], "clients": 50, "threads": 1,
            "pipeline": 1, "ratio": [1, 10], "data_size": 100, "key_space": 100000,
            "key_pattern": "uniform", "read_level": null, "write_level": null,
            "duration_s": 10.0, "requests": {requests}, "throughput": {throughput},
            "ops": {{
              "set": {{"requests": 0, "throughput": 0.0, "errors": 0,
                      "latency_ms": {{"p50": null, "p90": null, "p99": null, "p99_9": null,
                                      "max": null, "mean": null}}}},
              "get": {{"requests": {requests}, "throughput": {throughput}, "errors": {errors},
                      "latency_ms": {{"p50": 0.1, "p90": 0.2, "p99": {p99}, "p99_9": 2.0,
                                      "max": 5.0, "mean": 0.15}}}},
              "all": {{"requests": {requests}, "throughput": {throughput}, "errors": {errors},
                      "latency_ms": {{"p50": 0.1, "p90": 0.2, "p99": {p99}, "p99_9": 2.0,
                                      "max": 5.0, "mean": 0.15}}}}}},
            "errors": {{{}}},
            "server_cpu_s": 0.5, "server_cpu_s_per_100k": 0.5, "client_cpu_s": 0.25,
            "verify": null}}"#,
            if errors > 0 {
                format!(r#""TIMEOUT": {errors}"#)
            } else {
                String::new()
            }
        )
    }

    #[test]
    fn a_generator_result_gives_throughput_latency_errors_and_cpu_per_100k() {
        let m = parse_generator(&generator_json(10_000.0, 1.5, 3)).unwrap();
        assert_eq!(m.requests, 100_000);
        assert_eq!(m.throughput, 10_000.0);
        assert_eq!(m.latency.p99, Some(1.5));
        assert_eq!(m.latency.p99_9, Some(2.0));
        assert_eq!(m.errors_total(), Some(3));
        assert_eq!(m.server_cpu_per_100k(), Some(0.5));
        assert_eq!(m.total_cpu_per_100k(), Some(0.75));
    }

    #[test]
    fn op_errors_the_kind_map_does_not_explain_are_shown_as_unclassified() {
        let json = generator_json(1000.0, 1.0, 5).replace(r#""TIMEOUT": 5"#, r#""TIMEOUT": 2"#);
        let m = parse_generator(&json).unwrap();
        assert_eq!(m.errors_total(), Some(5));
        assert_eq!(m.errors.unwrap()["unclassified"], 3);
    }

    #[test]
    fn null_latencies_and_cpu_parse_as_absent() {
        let json = r#"{"requests": 0, "throughput": 0.0, "errors": {},
            "ops": {"all": {"requests": 0, "throughput": 0.0, "errors": 0, "latency_ms": null}},
            "server_cpu_s": null, "server_cpu_s_per_100k": null, "client_cpu_s": 0.1}"#;
        let m = parse_generator(json).unwrap();
        assert_eq!(m.latency, Latency::default());
        assert_eq!(m.server_cpu_per_100k(), None);
        assert_eq!(m.client_cpu_per_100k(), None, "no requests: no rate");
    }

    #[test]
    fn redis_benchmark_csv_and_cpu_file_parse() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\
                   \"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                   \"SET\",\"80000.00\",\"0.350\",\"0.100\",\"0.300\",\"0.500\",\"0.700\",\"3.000\"\n";
        let m = parse_redis_benchmark(csv, "client_cpu_s 1.0\nserver_cpu_s 2.0\nrequests 200000\n")
            .unwrap();
        assert_eq!(m.throughput, 80_000.0);
        assert_eq!(m.latency.p50, Some(0.3));
        assert_eq!(m.latency.p99, Some(0.7));
        assert_eq!(m.latency.p90, None);
        assert_eq!(m.errors_total(), None);
        assert_eq!(m.client_cpu_per_100k(), Some(0.5));
        assert_eq!(m.server_cpu_per_100k(), Some(1.0));
    }

    #[test]
    fn plan_lines_need_six_fields_and_a_dash_means_no_level() {
        let plan = parse_plan("goals\tsingle\t1:10\t16\t-\tgoals-single-1_10-p16\n").unwrap();
        assert_eq!(plan[0].level, None);
        assert_eq!(plan[0].pipeline, 16);
        let err = parse_plan("goals\tsingle\n").unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn runs_not_run_failed_or_without_a_result_are_failed_with_the_reason() {
        let dir = std::env::temp_dir().join(format!("bench-report-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("plan.tsv"),
            "goals\tredis-server\t1:1\t1\t-\ta\n\
             goals\tsingle\t1:1\t1\t-\tb\n\
             goals\tredis-server\t1:1\t16\t-\tc\n\
             goals\tsingle\t1:1\t16\t-\td\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("runs.tsv"),
            "a\t0\t12\tringcache-bench --servers x\n\
             b\t124\t40\tringcache-bench --servers y\n\
             c\t0\t12\tringcache-bench --servers z\n",
        )
        .unwrap();
        std::fs::write(dir.join("a.json"), generator_json(1000.0, 1.0, 0)).unwrap();
        std::fs::write(dir.join("b.err"), "connecting\nerror: connection refused\n").unwrap();
        let results = Results::load(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        assert!(results.runs[0].measured().is_some());
        assert_eq!(
            results.runs[0].command.as_deref(),
            Some("ringcache-bench --servers x")
        );
        let Outcome::Failed(why) = &results.runs[1].outcome else {
            panic!("b timed out");
        };
        assert!(why.contains("timed out"), "{why}");
        assert!(why.contains("connection refused"), "{why}");
        let Outcome::Failed(why) = &results.runs[2].outcome else {
            panic!("c has no JSON");
        };
        assert!(why.contains("no result"), "{why}");
        assert_eq!(results.runs[3].outcome, Outcome::Failed("not run".into()));
    }
}
