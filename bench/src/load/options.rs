//! The command line of `ringcache-bench`, also built from code (`Options::parse_from`).
//!
//! Syntax errors (a ratio `0:0`, a pipeline of 0, an unknown level, `--duration` together
//! with `--requests`) are refused by clap while parsing, with a message that names the option;
//! what depends on several options is checked by [`Options::validate`], which [`super::run`]
//! calls first.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::{Parser, ValueEnum};
use serde::Serialize;

use super::verify::VALUE_BYTES_MIN;

/// The most connections one generator opens: each keeps two latency histograms of about
/// 70 KB and a read buffer of 64 KB, so this bounds the generator's memory near 210 MB.
pub const CLIENTS_MAX: u32 = 1_024;
/// The most tokio worker threads.
pub const THREADS_MAX: usize = 256;
/// The most requests in flight per connection.
pub const PIPELINE_MAX: u32 = 4_096;
/// The largest value a SET sends (a bulk reply of it must fit the reply buffer).
pub const DATA_SIZE_MAX: usize = 16 * 1024 * 1024;
/// The largest key space.
pub const KEY_SPACE_MAX: u64 = 1 << 40;
/// The largest key space with `--verify`, which keeps 9 bytes of state per key.
pub const VERIFY_KEY_SPACE_MAX: u64 = 50_000_000;
/// The longest key prefix.
pub const KEY_PREFIX_BYTES_MAX: usize = 1_024;
/// The largest share on either side of `--ratio`.
pub const RATIO_PART_MAX: u32 = 1_000_000;
/// The largest `--replication-factor` (the server's own bound).
pub const REPLICATION_FACTOR_MAX: u8 = 8;
/// The duration of a run that gives neither `--duration` nor `--requests`.
pub const DURATION_DEFAULT: Duration = Duration::from_secs(10);
/// The most bytes of one batch (`--pipeline` values of `--data-size`).
pub const BATCH_BYTES_MAX: usize = 256 * 1024 * 1024;
/// The longest `--duration`, `--warmup` or `--timeout`: a day.
pub const DURATION_MAX: Duration = Duration::from_secs(24 * 3600);

/// A load generator for ringcache and redis-server, in the manner of memtier_benchmark, that
/// knows consistency levels and a cluster without redirects.
#[derive(Parser, Debug, Clone)]
#[command(name = "ringcache-bench", version)]
pub struct Options {
    /// Servers, as host:port,...: connections are spread over them round-robin, as a load
    /// balancer would; a client whose connection breaks moves on to the next one.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:6379", value_parser = parse_server)]
    pub servers: Vec<String>,
    /// Connections, in total over all servers.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=CLIENTS_MAX as i64))]
    pub clients: u32,
    /// Tokio worker threads of the generator; 1 (the default) runs every connection on one
    /// thread, like redis-benchmark.
    #[arg(long, default_value_t = 1, value_parser = parse_threads)]
    pub threads: usize,
    /// Requests in flight per connection: each batch is written at once, then its replies read.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=PIPELINE_MAX as i64))]
    pub pipeline: u32,
    /// SET:GET mix, drawn at random per request; 1:0 only SETs, 0:1 only GETs.
    #[arg(long, default_value = "1:10", value_parser = parse_ratio)]
    pub ratio: Ratio,
    /// Bytes per SET value (with --verify at least 32, the stamp that a GET checks).
    #[arg(long, default_value = "100", value_parser = parse_data_size)]
    pub data_size: usize,
    /// Number of distinct keys: key indices are 0 .. key-space - 1.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=KEY_SPACE_MAX))]
    pub key_space: u64,
    /// Prefix of every key name; the key index follows in decimal.
    #[arg(long, default_value = "key:", value_parser = parse_key_prefix)]
    pub key_prefix: String,
    /// How keys are chosen: uniform at random, zipf (rank 1 is key 0, the hottest; an exact
    /// rejection-inversion sampler), or sequential (client c of C walks c, c+C, c+2C, ...).
    #[arg(long, value_enum, default_value_t = KeyPattern::Uniform, hide_possible_values = true)]
    pub key_pattern: KeyPattern,
    /// Exponent s of --key-pattern zipf: key rank k is drawn with weight 1/k^s.
    #[arg(long, default_value_t = 0.99, value_parser = parse_zipf_exponent)]
    pub zipf_exponent: f64,
    /// Seed of the key and operation choice, for reproducible runs (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Appends `CONSISTENCY <LEVEL>` to every GET (ONE, QUORUM or ALL); absent: nothing (works
    /// with redis-server).
    #[arg(long, value_parser = parse_read_level)]
    pub read_level: Option<Level>,
    /// Appends `CONSISTENCY <LEVEL>` to every SET (ONE, QUORUM, ALL or ANY); absent: nothing.
    #[arg(long, value_enum, ignore_case = true, hide_possible_values = true)]
    pub write_level: Option<Level>,
    /// Replicas per key (N) on the servers, for --verify's overlap rule R + W > N.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=REPLICATION_FACTOR_MAX as i64))]
    pub replication_factor: u8,
    /// How long to measure (10s, 500ms, 2m or plain seconds); the default when --requests is
    /// absent is 10s.
    #[arg(long, value_parser = parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Measured requests to send, in total over all clients (instead of --duration).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// Load sent before measuring starts, not recorded (and not counted in CPU time).
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub warmup: Duration,
    /// SETs every key of the key space once, pipelined, at --write-level, before the warmup,
    /// so that GETs hit.
    #[arg(long)]
    pub preload: bool,
    /// How long a batch may wait for its replies before its connection counts as broken.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Writes the run's result as JSON to this file, or to stdout with `-` (the table then goes
    /// to stderr).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Free text copied into the JSON result.
    #[arg(long)]
    pub label: Option<String>,
    /// Prints no table.
    #[arg(long)]
    pub quiet: bool,
    /// Prints a progress line once a second on stderr even when stderr is not a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Processes (the servers) whose CPU time during the measured phase is reported.
    #[arg(long, value_delimiter = ',')]
    pub measure_pids: Vec<u32>,
    /// Stamps every SET value and checks every GET reply: counts values that were never
    /// written for that key by this run (wrong) and nils for keys with an acknowledged SET
    /// (missing, only when R + W > N); the run fails if there is any. Start from empty servers
    /// or give a fresh --key-prefix: values left by an earlier run count as wrong.
    #[arg(long)]
    pub verify: bool,
}

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this long.
    Duration(Duration),
    /// After this many measured requests were sent, over all clients.
    Requests(u64),
}

impl Options {
    /// Parses `args` (the program name first) and validates the result: what the binary does.
    ///
    /// # Errors
    /// clap's message for a syntax error, or [`Options::validate`]'s.
    pub fn try_parse_checked<I, T>(args: I) -> anyhow::Result<Options>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let options = Options::try_parse_from(args)?;
        options.validate()?;
        Ok(options)
    }

    /// Checks what clap cannot see option by option.
    ///
    /// # Errors
    /// A message naming the options that do not go together.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.servers.is_empty() {
            bail!("--servers: give at least one host:port");
        }
        if self.verify && self.key_space > VERIFY_KEY_SPACE_MAX {
            bail!(
                "--key-space {} is too large for --verify (at most {VERIFY_KEY_SPACE_MAX})",
                self.key_space
            );
        }
        if (self.pipeline as usize).saturating_mul(self.value_bytes()) > BATCH_BYTES_MAX {
            bail!(
                "--pipeline {} with --data-size {} makes batches above {BATCH_BYTES_MAX} bytes",
                self.pipeline,
                self.data_size
            );
        }
        if self.duration.is_some() && self.requests.is_some() {
            bail!("--duration and --requests cannot be used together");
        }
        Ok(())
    }

    /// When the measured phase ends.
    pub fn stop(&self) -> Stop {
        match (self.requests, self.duration) {
            (Some(n), _) => Stop::Requests(n),
            (None, Some(d)) => Stop::Duration(d),
            (None, None) => Stop::Duration(DURATION_DEFAULT),
        }
    }

    /// The size of every SET value: `--data-size`, raised to the stamp's size with --verify.
    pub fn value_bytes(&self) -> usize {
        if self.verify {
            self.data_size.max(VALUE_BYTES_MIN)
        } else {
            self.data_size
        }
    }

    /// Whether a read at `--read-level` is sure to see a write acknowledged at
    /// `--write-level`: R + W > N. Without any level the servers are taken to be single
    /// nodes (always true); when only one level is given, the other is the server's default,
    /// QUORUM.
    pub fn levels_overlap(&self) -> bool {
        if self.read_level.is_none() && self.write_level.is_none() {
            return true;
        }
        let n = u32::from(self.replication_factor);
        let r = self.read_level.unwrap_or(Level::Quorum).replicas(n);
        let w = self.write_level.unwrap_or(Level::Quorum).replicas(n);
        r + w > n
    }
}

/// A consistency level as the server spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// One replica.
    #[value(name = "ONE")]
    One,
    /// A majority of the N replicas.
    #[value(name = "QUORUM")]
    Quorum,
    /// All N replicas.
    #[value(name = "ALL")]
    All,
    /// Writes only: one replica or a hint.
    #[value(name = "ANY")]
    Any,
}

impl Level {
    /// The name sent after `CONSISTENCY`.
    pub fn name(self) -> &'static str {
        match self {
            Level::One => "ONE",
            Level::Quorum => "QUORUM",
            Level::All => "ALL",
            Level::Any => "ANY",
        }
    }

    /// How many of `n` replicas must answer; ANY promises none to a reader.
    pub fn replicas(self, n: u32) -> u32 {
        match self {
            Level::One => 1,
            Level::Quorum => n / 2 + 1,
            Level::All => n,
            Level::Any => 0,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How keys are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyPattern {
    /// Every key equally likely.
    Uniform,
    /// Zipf-distributed ranks: key 0 the most frequent.
    Zipf,
    /// Each client walks its own stride of the key space in order.
    Sequential,
}

impl KeyPattern {
    /// The name used on the command line and in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            KeyPattern::Uniform => "uniform",
            KeyPattern::Zipf => "zipf",
            KeyPattern::Sequential => "sequential",
        }
    }
}

/// The SET:GET mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    /// Share of SETs.
    pub set: u32,
    /// Share of GETs.
    pub get: u32,
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.set, self.get)
    }
}

fn parse_server(text: &str) -> Result<String, String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("'{text}' is not host:port"))?;
    if host.is_empty() {
        return Err(format!("'{text}' has no host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(text.to_string()),
        _ => Err(format!("'{text}': the port must be 1..65535")),
    }
}

fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=THREADS_MAX).contains(&n) => Ok(n),
        _ => Err(format!("must be a number from 1 to {THREADS_MAX}")),
    }
}

fn parse_ratio(text: &str) -> Result<Ratio, String> {
    let (set, get) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not SET:GET, e.g. 1:10"))?;
    let part = |s: &str| -> Result<u32, String> {
        match s.parse::<u32>() {
            Ok(n) if n <= RATIO_PART_MAX => Ok(n),
            _ => Err(format!(
                "'{text}': each side must be a number from 0 to {RATIO_PART_MAX}"
            )),
        }
    };
    let ratio = Ratio {
        set: part(set)?,
        get: part(get)?,
    };
    if ratio.set == 0 && ratio.get == 0 {
        return Err("0:0 sends nothing; give at least one SET or GET share".into());
    }
    Ok(ratio)
}

fn parse_data_size(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= DATA_SIZE_MAX => Ok(n),
        Ok(_) => Err(format!("at most {DATA_SIZE_MAX} bytes")),
        Err(_) => Err(format!("'{text}' is not a number of bytes")),
    }
}

fn parse_key_prefix(text: &str) -> Result<String, String> {
    if text.len() > KEY_PREFIX_BYTES_MAX {
        return Err(format!("at most {KEY_PREFIX_BYTES_MAX} bytes"));
    }
    Ok(text.to_string())
}

fn parse_zipf_exponent(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 10.0 => Ok(s),
        _ => Err(format!(
            "'{text}': the exponent must be a number in (0, 10]"
        )),
    }
}

fn parse_read_level(text: &str) -> Result<Level, String> {
    let level = Level::from_str(text, true)
        .map_err(|_| format!("unknown level '{text}': valid read levels are ONE, QUORUM, ALL"))?;
    if level == Level::Any {
        return Err("ANY is for writes only: valid read levels are ONE, QUORUM, ALL".into());
    }
    Ok(level)
}

/// Parses `10s`, `500ms`, `2m`, `1.5s` or plain seconds (`10`, `0.5`).
///
/// # Errors
/// Not a non-negative number with one of those units, or longer than [`DURATION_MAX`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit_seconds) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let bad = || format!("'{text}' is not a duration such as 10s, 500ms, 2m or 10");
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = value * unit_seconds;
    if !seconds.is_finite() || seconds > DURATION_MAX.as_secs_f64() {
        return Err(format!(
            "'{text}' is longer than {}s",
            DURATION_MAX.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Options> {
        Options::try_parse_checked(std::iter::once("ringcache-bench").chain(args.iter().copied()))
    }

    fn error(args: &[&str]) -> String {
        parse(args).expect_err("should be refused").to_string()
    }

    #[test]
    fn defaults_are_those_of_the_help() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.servers, ["127.0.0.1:6379"]);
        assert_eq!((o.clients, o.threads, o.pipeline), (50, 1, 1));
        assert_eq!(o.ratio, Ratio { set: 1, get: 10 });
        assert_eq!((o.data_size, o.key_space), (100, 100_000));
        assert_eq!(o.key_prefix, "key:");
        assert_eq!(o.key_pattern, KeyPattern::Uniform);
        assert_eq!(o.zipf_exponent, 0.99);
        assert_eq!((o.read_level, o.write_level), (None, None));
        assert_eq!(o.replication_factor, 3);
        assert_eq!(o.stop(), Stop::Duration(DURATION_DEFAULT));
        assert_eq!(o.warmup, Duration::ZERO);
        assert!(!o.preload && !o.verify && !o.quiet && !o.progress);
        assert!(o.measure_pids.is_empty() && o.json.is_none() && o.label.is_none());
        assert_eq!(o.seed, None);
    }

    #[test]
    fn every_option_is_taken() {
        let o = parse(&[
            "--servers",
            "127.0.0.1:7001,localhost:7002",
            "--clients",
            "12",
            "--threads",
            "2",
            "--pipeline",
            "4",
            "--ratio",
            "1:0",
            "--data-size",
            "10",
            "--key-space",
            "2000",
            "--key-prefix",
            "k",
            "--key-pattern",
            "zipf",
            "--zipf-exponent",
            "1.2",
            "--seed",
            "7",
            "--read-level",
            "quorum",
            "--write-level",
            "ALL",
            "--replication-factor",
            "5",
            "--requests",
            "1000",
            "--warmup",
            "500ms",
            "--preload",
            "--timeout",
            "2",
            "--json",
            "-",
            "--label",
            "x",
            "--quiet",
            "--progress",
            "--measure-pids",
            "1,2",
            "--verify",
        ])
        .unwrap();
        assert_eq!(o.servers, ["127.0.0.1:7001", "localhost:7002"]);
        assert_eq!((o.clients, o.threads, o.pipeline), (12, 2, 4));
        assert_eq!(o.ratio, Ratio { set: 1, get: 0 });
        assert_eq!((o.data_size, o.value_bytes()), (10, VALUE_BYTES_MIN));
        assert_eq!((o.key_space, o.key_prefix.as_str()), (2000, "k"));
        assert_eq!((o.key_pattern, o.zipf_exponent), (KeyPattern::Zipf, 1.2));
        assert_eq!(o.seed, Some(7));
        assert_eq!(
            (o.read_level, o.write_level),
            (Some(Level::Quorum), Some(Level::All))
        );
        assert_eq!(o.replication_factor, 5);
        assert_eq!(o.stop(), Stop::Requests(1000));
        assert_eq!(o.warmup, Duration::from_millis(500));
        assert_eq!(o.timeout, Duration::from_secs(2));
        assert_eq!(o.json.as_deref(), Some(std::path::Path::new("-")));
        assert_eq!(o.label.as_deref(), Some("x"));
        assert!(o.preload && o.quiet && o.progress && o.verify);
        assert_eq!(o.measure_pids, [1, 2]);
    }

    #[test]
    fn durations_take_units_and_plain_seconds() {
        let d = |t| parse_duration(t).unwrap();
        assert_eq!(d("10s"), Duration::from_secs(10));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("2m"), Duration::from_secs(120));
        assert_eq!(d("3"), Duration::from_secs(3));
        assert_eq!(d("0.5"), Duration::from_millis(500));
        for bad in ["", "s", "-1s", "10h", "1e3", "abc", "nan", "100000m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse(&["--duration", "2m"]).unwrap().stop(),
            Stop::Duration(Duration::from_secs(120))
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_option_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["--ratio", "0:0"], "0:0 sends nothing"),
            (&["--ratio", "a:b"], "each side must be a number"),
            (&["--ratio", "1"], "is not SET:GET"),
            (&["--pipeline", "0"], "--pipeline"),
            (&["--clients", "0"], "--clients"),
            (&["--threads", "0"], "--threads"),
            (&["--key-space", "0"], "--key-space"),
            (
                &["--duration", "5s", "--requests", "10"],
                "cannot be used with",
            ),
            (&["--read-level", "MOST"], "unknown level 'MOST'"),
            (&["--read-level", "ANY"], "ANY is for writes only"),
            (&["--write-level", "MOST"], "--write-level"),
            (&["--zipf-exponent", "0"], "the exponent must be"),
            (&["--servers", "localhost"], "is not host:port"),
            (&["--servers", "h:0"], "the port must be"),
            (&["--data-size", "1k"], "is not a number of bytes"),
            (&["--requests", "0"], "--requests"),
            (
                &["--verify", "--key-space", "100000000"],
                "too large for --verify",
            ),
            (
                &["--pipeline", "4096", "--data-size", "1000000"],
                "makes batches above",
            ),
        ];
        for (args, want) in cases {
            let message = error(args);
            assert!(message.contains(want), "{args:?}: {message}");
        }
    }

    #[test]
    fn levels_overlap_when_r_plus_w_exceeds_n() {
        let overlap = |args: &[&str]| parse(args).unwrap().levels_overlap();
        assert!(overlap(&[]));
        assert!(overlap(&[
            "--read-level",
            "QUORUM",
            "--write-level",
            "QUORUM"
        ]));
        assert!(overlap(&["--read-level", "ONE", "--write-level", "ALL"]));
        assert!(overlap(&["--read-level", "ALL", "--write-level", "ONE"]));
        // An absent level is the server's default, QUORUM.
        assert!(overlap(&["--read-level", "QUORUM"]));
        assert!(!overlap(&["--read-level", "ONE"]));
        assert!(!overlap(&["--read-level", "ONE", "--write-level", "ONE"]));
        assert!(!overlap(&["--read-level", "ALL", "--write-level", "ANY"]));
        assert!(!overlap(&[
            "--read-level",
            "QUORUM",
            "--write-level",
            "ONE"
        ]));
        let n1 = [
            "--read-level",
            "ONE",
            "--write-level",
            "ONE",
            "--replication-factor",
            "1",
        ];
        assert!(overlap(&n1));
    }
}
