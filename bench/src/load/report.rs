//! The result of one run: the JSON that bench-report reads (its field names are a contract),
//! and the table printed on stdout.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::histogram::LatencySummary;
use super::options::{KeyPattern, Level};
use super::stats::OpTotal;

/// One run's result. It serializes to this JSON, whose names bench-report reads:
/// ```json
/// {"label": "", "servers": ["127.0.0.1:7001"], "clients": 50, "threads": 1, "pipeline": 1,
///  "ratio": [1, 10], "data_size": 100, "key_space": 100000, "key_pattern": "uniform",
///  "read_level": "QUORUM", "write_level": null, "duration_s": 10.0, "requests": 123456,
///  "throughput": 12345.6, "ops": {"set": {...}, "get": {...}, "all": {...}},
///  "errors": {"TIMEOUT": 3, "connection": 1}, "server_cpu_s": null,
///  "server_cpu_s_per_100k": null, "client_cpu_s": 3.1, "verify": null}
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `--label`, empty when absent.
    pub label: String,
    /// `--servers`.
    pub servers: Vec<String>,
    /// Connections.
    pub clients: u32,
    /// Generator threads.
    pub threads: usize,
    /// Requests in flight per connection.
    pub pipeline: u32,
    /// `[SET, GET]` shares.
    pub ratio: [u32; 2],
    /// Bytes per SET value as sent (with `--verify`, at least the stamp's 32).
    pub data_size: usize,
    /// Number of keys.
    pub key_space: u64,
    /// How keys were chosen.
    pub key_pattern: KeyPattern,
    /// The GET level, `null` when none was appended.
    pub read_level: Option<Level>,
    /// The SET level, `null` when none was appended.
    pub write_level: Option<Level>,
    /// The measured phase: from the end of the warmup to the last measured reply.
    pub duration_s: f64,
    /// Measured requests: successful and failed replies alike, and requests lost with a
    /// broken connection.
    pub requests: u64,
    /// `requests / duration_s`.
    pub throughput: f64,
    /// Per operation.
    pub ops: Ops,
    /// Measured errors by kind: the first word of an error reply (`TIMEOUT`, `UNAVAILABLE`,
    /// `ERR`), or `connection` / `timeout` / `protocol` for requests lost with their
    /// connection, `unexpected` for a reply of the wrong type. `{}` when none.
    pub errors: BTreeMap<String, u64>,
    /// CPU seconds the `--measure-pids` processes spent in the measured phase; `null` without.
    pub server_cpu_s: Option<f64>,
    /// `server_cpu_s` per 100,000 requests.
    pub server_cpu_s_per_100k: Option<f64>,
    /// CPU seconds the generator spent in the measured phase.
    pub client_cpu_s: f64,
    /// `--verify`'s counts; `null` without.
    pub verify: Option<VerifyReport>,
    /// Not in the JSON: `--preload`'s outcome.
    #[serde(skip)]
    pub preload: Option<PreloadReport>,
}

/// The three rows of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Ops {
    /// SETs.
    pub set: OpReport,
    /// GETs.
    pub get: OpReport,
    /// Both.
    pub all: OpReport,
}

/// One operation's figures. An operation with no requests has zeros throughout.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    /// Measured requests (see [`Report::requests`]).
    pub requests: u64,
    /// Requests per second of the measured phase.
    pub throughput: f64,
    /// Error replies and lost requests.
    pub errors: u64,
    /// Latency of the replies (error replies included), from just before the batch was
    /// written to the reply's parse.
    pub latency_ms: LatencySummary,
}

impl OpReport {
    /// The figures of `total` over `duration_s`.
    pub fn new(total: &OpTotal, duration_s: f64) -> OpReport {
        OpReport {
            requests: total.requests,
            throughput: per_second(total.requests, duration_s),
            errors: total.errors,
            latency_ms: total.latency.summary(),
        }
    }
}

/// `--verify`'s counts.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// GET replies checked (values and nils, in every phase).
    pub checked: u64,
    /// Values never written for their key, corrupt, or of the wrong type.
    pub wrong: u64,
    /// Nils for keys with an acknowledged SET before the GET (when R + W > N).
    pub missing: u64,
    /// Not in the JSON: the first offending GETs, as text (`key:12: nil after an
    /// acknowledged SET`).
    #[serde(skip)]
    pub offences: Vec<String>,
}

/// How the preload went.
#[derive(Debug, Clone, Copy)]
pub struct PreloadReport {
    /// Keys SET.
    pub keys: u64,
    /// How long it took.
    pub seconds: f64,
    /// SETs that failed.
    pub errors: u64,
}

/// `count / seconds`, 0 for an empty phase.
pub fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

impl Report {
    /// The JSON, pretty-printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// Whether `--verify` found anything wrong or missing.
    pub fn verify_failed(&self) -> bool {
        self.verify
            .as_ref()
            .is_some_and(|v| v.wrong > 0 || v.missing > 0)
    }

    /// The table printed after a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let level = |l: Option<Level>| l.map_or("-", Level::name);
        let _ = writeln!(
            out,
            "ringcache-bench  servers={}  clients={} threads={} pipeline={} ratio={}:{} \
             data={}B keys={} {}  read={} write={}",
            self.servers.join(","),
            self.clients,
            self.threads,
            self.pipeline,
            self.ratio[0],
            self.ratio[1],
            self.data_size,
            self.key_space,
            self.key_pattern.name(),
            level(self.read_level),
            level(self.write_level),
        );
        let _ = writeln!(
            out,
            "{:<6} {:>10} {:>10} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8}",
            "op", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors"
        );
        for (name, op) in [
            ("SET", &self.ops.set),
            ("GET", &self.ops.get),
            ("ALL", &self.ops.all),
        ] {
            let l = &op.latency_ms;
            let _ = writeln!(
                out,
                "{name:<6} {:>10} {:>10.0} {:>8.3} {:>8.3} {:>8.3} {:>9.3} {:>8.3} {:>8}",
                op.requests, op.throughput, l.p50, l.p90, l.p99, l.p99_9, l.max, op.errors
            );
        }
        if !self.errors.is_empty() {
            let kinds: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(out, "errors: {}", kinds.join(", "));
        }
        if let Some(p) = &self.preload {
            let _ = writeln!(
                out,
                "preload {} keys in {:.2} s ({:.0} keys/s), errors {}",
                p.keys,
                p.seconds,
                per_second(p.keys, p.seconds),
                p.errors
            );
        }
        if let Some(v) = &self.verify {
            let _ = writeln!(
                out,
                "verify: checked {}, wrong {}, missing {}",
                v.checked, v.wrong, v.missing
            );
        }
        let _ = write!(
            out,
            "duration {:.2} s, client CPU {:.2} s",
            self.duration_s, self.client_cpu_s
        );
        if let (Some(cpu), Some(per)) = (self.server_cpu_s, self.server_cpu_s_per_100k) {
            let _ = write!(out, ", server CPU {cpu:.2} s ({per:.2} s / 100k)");
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(requests: u64) -> OpReport {
        OpReport {
            requests,
            throughput: requests as f64 / 2.0,
            errors: 0,
            latency_ms: LatencySummary::default(),
        }
    }

    fn report() -> Report {
        Report {
            label: "x".into(),
            servers: vec!["127.0.0.1:7001".into()],
            clients: 50,
            threads: 1,
            pipeline: 1,
            ratio: [1, 10],
            data_size: 100,
            key_space: 100_000,
            key_pattern: KeyPattern::Uniform,
            read_level: Some(Level::Quorum),
            write_level: None,
            duration_s: 2.0,
            requests: 11,
            throughput: 5.5,
            ops: Ops {
                set: op(1),
                get: op(10),
                all: op(11),
            },
            errors: BTreeMap::new(),
            server_cpu_s: None,
            server_cpu_s_per_100k: None,
            client_cpu_s: 0.5,
            verify: None,
            preload: None,
        }
    }

    #[test]
    fn the_json_has_the_names_bench_report_reads() {
        let json: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        for field in [
            "label",
            "servers",
            "clients",
            "threads",
            "pipeline",
            "ratio",
            "data_size",
            "key_space",
            "key_pattern",
            "read_level",
            "write_level",
            "duration_s",
            "requests",
            "throughput",
            "ops",
            "errors",
            "server_cpu_s",
            "server_cpu_s_per_100k",
            "client_cpu_s",
            "verify",
        ] {
            assert!(json.get(field).is_some(), "no {field} in {json}");
        }
        assert_eq!(json["read_level"], "QUORUM");
        assert!(json["write_level"].is_null() && json["verify"].is_null());
        assert_eq!(json["key_pattern"], "uniform");
        assert_eq!(json["ratio"], serde_json::json!([1, 10]));
        assert_eq!(json["errors"], serde_json::json!({}));
        let latency = &json["ops"]["get"]["latency_ms"];
        for field in ["p50", "p90", "p99", "p99_9", "max", "mean"] {
            assert_eq!(latency[field], 0.0, "{field}");
        }
        assert_eq!(json["ops"]["all"]["requests"], 11);
    }

    #[test]
    fn the_table_has_a_row_per_op_and_the_cpu_line() {
        let mut r = report();
        r.server_cpu_s = Some(7.2);
        r.server_cpu_s_per_100k = Some(5.8);
        r.errors.insert("TIMEOUT".into(), 3);
        let table = r.table();
        assert!(table.starts_with("ringcache-bench  servers=127.0.0.1:7001  clients=50"));
        assert!(table.contains("read=QUORUM write=-"));
        for row in ["\nSET ", "\nGET ", "\nALL ", "errors: TIMEOUT 3"] {
            assert!(table.contains(row), "{row:?} in\n{table}");
        }
        assert!(
            table.ends_with("server CPU 7.20 s (5.80 s / 100k)\n"),
            "{table}"
        );
    }
}
