//! Harness for the end-to-end tests: real processes on loopback, raw RESP, real clients.
//!
//! - [`free_port`]: a port the kernel just handed out (never 6379).
//! - [`Ringcache`] and [`RedisServer`]: a child process in its own temp dir, started on free
//!   ports, ready once a PING over TCP answers, killed and reaped on drop (its stderr/stdout
//!   log is printed when the test is panicking).
//! - [`RespConn`]: a raw RESP client over a blocking `TcpStream` with timeouts; redis-protocol
//!   finds where a reply frame ends, [`Val`] renders it without losing RESP2/RESP3 detail.
//! - [`Ringcache::start_in`]: a ringcache in a directory the caller keeps, on given ports, so
//!   that it can be killed and started again as the same node.
//! - [`Cluster`]: n ringcache nodes on loopback that know each other through `--seeds`, formed
//!   once every node reports `members_up:n`; kill -9, SIGSTOP/SIGCONT and restart node i.
//! - [`redis_cli`] and friends: run `redis-cli` with a time limit.
//! - [`Script`]: the differential runner shared by `redis_compat.rs` and `protocol.rs`: the
//!   same command lines to redis-server and ringcache, replies compared per line.
//!
//! Every wait here has a bound in count and time; every child is killed and waited for.

#![allow(dead_code)]

use std::fmt;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to answer its first PING.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Read and write timeout of a [`RespConn`] socket: long enough for a 512 MB value to be
/// written to the log engine by a debug build on a loaded machine (the corpus has one), short
/// enough to turn a hang into a failure.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long any helper process (redis-cli, redis-benchmark) may run.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);
/// The most bytes one reply may take before the reader gives up (protects the test itself).
pub const REPLY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// How many start attempts a server gets when a freshly probed port was taken meanwhile.
const START_ATTEMPTS_MAX: usize = 3;

/// Path of the binary under test.
pub const RINGCACHE_BIN: &str = env!("CARGO_BIN_EXE_ringcache");

/// Asks the kernel for a free TCP port on 127.0.0.1 (bind to port 0, read it back, release).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, uniquely named directory.
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A child server process, killed and reaped on drop.
pub struct ServerProcess {
    child: Option<Child>,
    /// The RESP port.
    pub port: u16,
    /// What it is, for messages ("ringcache" or "redis-server").
    pub name: &'static str,
    log_path: PathBuf,
    exit_status: Option<ExitStatus>,
    /// The working directory (the temp dir below, or one the caller keeps).
    work_dir: PathBuf,
    // Declared last so that it is dropped after the child is gone; `None` when the caller owns
    // the directory (a node that restarts in it).
    dir: Option<TempDir>,
}

impl ServerProcess {
    /// Spawns `program args` with stdout and stderr going to a log file in `dir`, then waits
    /// until a PING answers on `port`. Returns `Err` with the log if the child exits first or
    /// never answers.
    fn spawn(
        name: &'static str,
        program: &str,
        args: &[String],
        port: u16,
        dir: TempDir,
    ) -> Result<ServerProcess, String> {
        let work_dir = dir.path().to_path_buf();
        ServerProcess::spawn_in(name, program, args, port, work_dir, Some(dir))
    }

    /// Like [`ServerProcess::spawn`] in `work_dir`, which `dir` removes on drop if given. The
    /// log is appended to, so a process started again in the same directory keeps one log.
    fn spawn_in(
        name: &'static str,
        program: &str,
        args: &[String],
        port: u16,
        work_dir: PathBuf,
        dir: Option<TempDir>,
    ) -> Result<ServerProcess, String> {
        let log_path = work_dir.join(format!("{name}.log"));
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open log file");
        if dir.is_none() {
            // One log across restarts: mark where each run starts.
            let _ = writeln!(log, "=== harness: {program} {} ===", args.join(" "));
        }
        let log2 = log.try_clone().expect("clone log file");
        let child = Command::new(program)
            .args(args)
            .current_dir(&work_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let mut server = ServerProcess {
            child: Some(child),
            port,
            name,
            log_path,
            exit_status: None,
            work_dir,
            dir,
        };
        match server.wait_ready() {
            Ok(()) => Ok(server),
            Err(why) => {
                server.kill();
                Err(format!(
                    "{name} on port {port} did not start: {why}\n--- log ---\n{}",
                    server.log()
                ))
            }
        }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut last_error = String::from("no attempt");
        while Instant::now() < deadline {
            if let Some(status) = self.try_wait() {
                return Err(format!("exited early with {status}"));
            }
            match ping_once(self.port) {
                Ok(()) => return Ok(()),
                Err(e) => last_error = e,
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "no PING reply within {STARTUP_TIMEOUT:?}: {last_error}"
        ))
    }

    /// The data/work directory of this process.
    pub fn dir(&self) -> &Path {
        &self.work_dir
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(|c| c.id())
            .expect("child already reaped")
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The exit status if the process has exited (reaps it).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.exit_status.is_some() {
            return self.exit_status;
        }
        let child = self.child.as_mut()?;
        if let Ok(Some(status)) = child.try_wait() {
            self.exit_status = Some(status);
        }
        self.exit_status
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal by name (`TERM`, `INT`, `STOP`, `CONT`) with the `kill` utility.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Kills the process (SIGKILL) if it still runs, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take()
            && self.exit_status.is_none()
        {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.exit_status = Some(status);
            }
        }
    }

    /// A raw RESP connection to this server.
    pub fn conn(&self) -> RespConn {
        RespConn::connect(self.port)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if thread::panicking() {
            let log = self.log();
            let tail: String = {
                let lines: Vec<&str> = log.lines().collect();
                lines[lines.len().saturating_sub(40)..].join("\n")
            };
            eprintln!(
                "--- {} (port {}) log tail ---\n{tail}\n--- end ---",
                self.name, self.port
            );
        }
        self.kill();
    }
}

/// Sends one PING and waits for any complete reply (`-NOAUTH` counts: the server is up).
fn ping_once(port: u16) -> Result<(), String> {
    let addr = format!("127.0.0.1:{port}");
    let mut stream = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(500))
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"*1\r\n$4\r\nPING\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    for _ in 0..16 {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before a reply".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if frame_len(&buf).map_err(|e| e.to_string())?.is_some() {
            return Ok(());
        }
    }
    Err("reply too long".into())
}

/// A ringcache process for one test.
pub struct Ringcache {
    /// The process.
    pub process: ServerProcess,
    /// The Prometheus port, or 0 when metrics are disabled.
    pub metrics_port: u16,
}

impl Ringcache {
    /// Starts the binary on free ports with a fresh data dir, plus `extra` arguments
    /// (an `--port` or `--metrics-port` in `extra` replaces the harness's choice).
    pub fn start(extra: &[&str]) -> Ringcache {
        Ringcache::start_inner(extra, None)
    }

    /// Like [`Ringcache::start`], but through `bash -c 'ulimit -n NOFILE; exec ...'` so the
    /// server may hold more descriptors than the default soft limit.
    pub fn start_with_nofile(extra: &[&str], nofile: u64) -> Ringcache {
        Ringcache::start_inner(extra, Some(nofile))
    }

    /// Starts the binary in `dir`, a directory the caller keeps (nothing here removes it):
    /// data in `dir/data`, stdout and stderr appended to `dir/ringcache.log`, clients on
    /// `port`, metrics off unless `extra` has `--metrics-port`. Started again in the same `dir`
    /// with the same arguments after a kill, it is the same node: same data, same node id
    /// (kept in the data dir), same ports.
    ///
    /// # Panics
    /// If the server exits early or does not answer PING within [`STARTUP_TIMEOUT`].
    pub fn start_in(dir: &Path, port: u16, extra: &[&str]) -> Ringcache {
        Ringcache::try_start_in(dir, port, extra).unwrap_or_else(|why| panic!("{why}"))
    }

    /// Like [`Ringcache::start_in`], but says why the server did not start (its log
    /// included) instead of panicking: the caller may retry, e.g. when a port was taken.
    pub fn try_start_in(dir: &Path, port: u16, extra: &[&str]) -> Result<Ringcache, String> {
        assert!(
            arg_value(extra, "--port").is_none(),
            "start_in takes the port as an argument, not in extra: {extra:?}"
        );
        let metrics_port = arg_value(extra, "--metrics-port").map_or(0, |p| p.parse().unwrap());
        let args = ringcache_args(extra, port, metrics_port, &dir.join("data"));
        let process = ServerProcess::spawn_in(
            "ringcache",
            RINGCACHE_BIN,
            &args,
            port,
            dir.to_path_buf(),
            None,
        )?;
        Ok(Ringcache {
            process,
            metrics_port,
        })
    }

    fn start_inner(extra: &[&str], nofile: Option<u64>) -> Ringcache {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS_MAX {
            let dir = TempDir::new("ringcache-e2e");
            let port = arg_value(extra, "--port").map_or_else(free_port, |p| p.parse().unwrap());
            let metrics_port =
                arg_value(extra, "--metrics-port").map_or_else(free_port, |p| p.parse().unwrap());
            let args = ringcache_args(extra, port, metrics_port, &dir.path().join("data"));
            let (program, args) = match nofile {
                None => (RINGCACHE_BIN.to_string(), args),
                Some(n) => {
                    let mut wrapped = vec![
                        "-c".to_string(),
                        format!("ulimit -n {n} && exec \"$0\" \"$@\""),
                        RINGCACHE_BIN.to_string(),
                    ];
                    wrapped.extend(args);
                    ("bash".to_string(), wrapped)
                }
            };
            match ServerProcess::spawn("ringcache", &program, &args, port, dir) {
                Ok(process) => {
                    return Ringcache {
                        process,
                        metrics_port,
                    };
                }
                Err(why) => last = why,
            }
        }
        panic!("{last}");
    }

    /// The RESP port.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// A raw RESP connection.
    pub fn conn(&self) -> RespConn {
        self.process.conn()
    }

    /// Fetches `/metrics` from the Prometheus endpoint with a raw HTTP/1.0 GET.
    pub fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics")
    }
}

/// The command line of a ringcache: the harness's choices (loopback, `port`, `metrics_port`,
/// small segments, `data_dir`, created here) for whatever `extra` does not set, then `extra`.
fn ringcache_args(extra: &[&str], port: u16, metrics_port: u16, data_dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    if arg_value(extra, "--bind").is_none() {
        args.extend(["--bind".into(), "127.0.0.1".into()]);
    }
    if arg_value(extra, "--port").is_none() {
        args.extend(["--port".into(), port.to_string()]);
    }
    if arg_value(extra, "--metrics-port").is_none() {
        args.extend(["--metrics-port".into(), metrics_port.to_string()]);
    }
    if arg_value(extra, "--segment-bytes").is_none() {
        // Small segments: many servers run at once and each allocates its first
        // segment up front; rolling over segments gets exercised too.
        args.extend(["--segment-bytes".into(), "8mb".into()]);
    }
    if arg_value(extra, "--data-dir").is_none() {
        fs::create_dir_all(data_dir).expect("create data dir");
        args.extend(["--data-dir".into(), data_dir.display().to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn arg_value<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| *a == name)
        .and_then(|i| args.get(i + 1).copied())
}

/// A redis-server process for one test, the reference implementation.
pub struct RedisServer {
    /// The process.
    pub process: ServerProcess,
}

impl RedisServer {
    /// Starts `redis-server` on a free port, without persistence, in a temp dir.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts `redis-server` with extra `--name value` arguments.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS_MAX {
            let dir = TempDir::new("redis-e2e");
            let port = free_port();
            let mut args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                &dir.path().display().to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(extra.iter().map(|s| s.to_string()));
            match ServerProcess::spawn("redis-server", "redis-server", &args, port, dir) {
                Ok(process) => return RedisServer { process },
                Err(why) => last = why,
            }
        }
        panic!("{last}");
    }

    /// The RESP port.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// A raw RESP connection.
    pub fn conn(&self) -> RespConn {
        self.process.conn()
    }
}

/// A fresh redis-server (with `redis_extra` arguments) and a fresh ringcache (defaults), and
/// a connection to each speaking RESP`proto` (2, or 3 after `HELLO 3`): the two sides of a
/// differential test.
pub fn side_by_side(
    proto: u8,
    redis_extra: &[&str],
) -> (RedisServer, Ringcache, RespConn, RespConn) {
    let redis = RedisServer::start_with(redis_extra);
    let ringcache = Ringcache::start(&[]);
    let mut a = redis.conn();
    let mut b = ringcache.conn();
    if proto == 3 {
        a.hello3();
        b.hello3();
    }
    (redis, ringcache, a, b)
}

/// A raw HTTP/1.0 GET over a `TcpStream`; returns the whole response (status line included).
pub fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to metrics port {port}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("write HTTP request");
    let mut body = Vec::new();
    let _ = stream.take(REPLY_BYTES_MAX as u64).read_to_end(&mut body);
    String::from_utf8_lossy(&body).into_owned()
}

// ------------------------------------------------------------------------------------------
// Replies

/// Length of the first complete RESP2/RESP3 frame in `buf`, or `None` if it is incomplete.
///
/// redis-protocol's RESP2 decoder knows `$-1`/`*-1`; its RESP3 decoder knows the RESP3 types
/// (and reads `-1` as a streaming length), so RESP2 goes first and RESP3 second. The RESP3
/// decoder rejects some valid replies (`COMMAND`'s sets of aggregates), so a plain scan of the
/// framing is the last resort.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    match redis_protocol::resp2::decode::decode_range(buf) {
        Ok(Some((_, len))) => return Ok(Some(len)),
        Ok(None) => return Ok(None),
        Err(_) => {}
    }
    match redis_protocol::resp3::decode::complete::decode_range(buf) {
        Ok(Some((_, len))) => Ok(Some(len)),
        Ok(None) => Ok(None),
        Err(e) => match scan_frame(buf, 0, 0) {
            Ok(found) => Ok(found),
            Err(why) => Err(format!(
                "undecodable reply \"{}\": {e:?}; {why}",
                escape(buf)
            )),
        },
    }
}

/// Finds the end of the frame starting at `pos` by its framing alone: `Ok(None)` when more
/// bytes are needed.
fn scan_frame(buf: &[u8], pos: usize, depth: usize) -> Result<Option<usize>, String> {
    const DEPTH_MAX: usize = 64;
    if depth > DEPTH_MAX {
        return Err("nested deeper than 64".into());
    }
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(eol) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = &buf[pos + 1..pos + eol];
    let mut next = pos + eol + 2;
    let number = || -> Result<i64, String> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad length line {:?}", escape(line)))
    };
    let children = match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => 0,
        b'$' | b'!' | b'=' => {
            let n = number()?;
            if n < 0 {
                return Ok(Some(next));
            }
            let end = next + n as usize + 2;
            return Ok(if buf.len() >= end { Some(end) } else { None });
        }
        b'*' | b'~' | b'>' => number()?.max(0),
        b'%' | b'|' => number()?.max(0) * 2,
        other => return Err(format!("unknown type byte {:?}", other as char)),
    };
    for _ in 0..children {
        match scan_frame(buf, next, depth + 1)? {
            Some(end) => next = end,
            None => return Ok(None),
        }
    }
    if kind == b'|' {
        // An attribute precedes the frame it annotates.
        return scan_frame(buf, next, depth + 1);
    }
    Ok(Some(next))
}

/// One reply, rendered with every RESP2/RESP3 distinction kept (a null bulk is not a null
/// array; a simple string is not a bulk string).
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// `+...`
    Simple(Vec<u8>),
    /// `-...`
    Error(Vec<u8>),
    /// `:n`
    Int(i64),
    /// `$n ...`
    Bulk(Vec<u8>),
    /// `$-1`
    NullBulk,
    /// `*-1`
    NullArray,
    /// `_` (RESP3)
    Null,
    /// `,x` (RESP3), kept as text.
    Double(String),
    /// `#t` / `#f` (RESP3)
    Bool(bool),
    /// `(n` (RESP3), kept as text.
    BigNumber(String),
    /// `!n ...` (RESP3)
    BlobError(Vec<u8>),
    /// `=n fmt:...` (RESP3)
    Verbatim(Vec<u8>),
    /// `*n ...`
    Array(Vec<Val>),
    /// `%n ...` (RESP3)
    Map(Vec<(Val, Val)>),
    /// `~n ...` (RESP3)
    Set(Vec<Val>),
    /// `>n ...` (RESP3)
    Push(Vec<Val>),
    /// `|n ...` followed by the frame it annotates.
    Attribute(Vec<(Val, Val)>, Box<Val>),
}

impl Val {
    /// Parses one complete frame (as delimited by [`frame_len`]).
    pub fn parse(frame: &[u8]) -> Val {
        let mut pos = 0;
        let val = parse_val(frame, &mut pos);
        assert_eq!(
            pos,
            frame.len(),
            "frame not fully consumed: {}",
            escape(frame)
        );
        val
    }

    /// The same value with map entries and set members in a canonical order.
    pub fn normalized(&self) -> Val {
        match self {
            Val::Array(v) => Val::Array(v.iter().map(Val::normalized).collect()),
            Val::Push(v) => Val::Push(v.iter().map(Val::normalized).collect()),
            Val::Set(v) => Val::Set(sorted_vals(v.iter().map(Val::normalized).collect())),
            Val::Map(kv) => Val::Map(sorted_pairs(kv)),
            Val::Attribute(kv, v) => Val::Attribute(sorted_pairs(kv), Box::new(v.normalized())),
            other => other.clone(),
        }
    }

    /// A one-letter name of the RESP type, for shape comparisons.
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Simple(_) => "simple",
            Val::Error(_) => "error",
            Val::Int(_) => "integer",
            Val::Bulk(_) => "bulk",
            Val::NullBulk => "null-bulk",
            Val::NullArray => "null-array",
            Val::Null => "null",
            Val::Double(_) => "double",
            Val::Bool(_) => "bool",
            Val::BigNumber(_) => "big-number",
            Val::BlobError(_) => "blob-error",
            Val::Verbatim(_) => "verbatim",
            Val::Array(_) => "array",
            Val::Map(_) => "map",
            Val::Set(_) => "set",
            Val::Push(_) => "push",
            Val::Attribute(_, _) => "attribute",
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Val::Error(_) | Val::BlobError(_))
    }

    /// The text of a simple string, error, bulk or verbatim string.
    pub fn text(&self) -> Option<String> {
        match self {
            Val::Simple(b)
            | Val::Error(b)
            | Val::Bulk(b)
            | Val::BlobError(b)
            | Val::Verbatim(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Val::Double(s) | Val::BigNumber(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// Key/value pairs of a map, or of a flat array of even length (RESP2's map spelling).
    pub fn pairs(&self) -> Option<Vec<(Val, Val)>> {
        match self {
            Val::Map(kv) => Some(kv.clone()),
            Val::Array(v) if v.len() % 2 == 0 => {
                Some(v.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect())
            }
            _ => None,
        }
    }

    /// Elements of an array, set or push.
    pub fn items(&self) -> Option<&[Val]> {
        match self {
            Val::Array(v) | Val::Set(v) | Val::Push(v) => Some(v),
            _ => None,
        }
    }
}

fn sorted_vals(mut v: Vec<Val>) -> Vec<Val> {
    v.sort_by_cached_key(|x| x.to_string());
    v
}

fn sorted_pairs(kv: &[(Val, Val)]) -> Vec<(Val, Val)> {
    let mut kv: Vec<(Val, Val)> = kv
        .iter()
        .map(|(k, v)| (k.normalized(), v.normalized()))
        .collect();
    kv.sort_by_cached_key(|(k, _)| k.to_string());
    kv
}

fn read_line<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let start = *pos;
    let end = start
        + buf[start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a CRLF-terminated line");
    *pos = end + 2;
    &buf[start..end]
}

fn line_int(line: &[u8]) -> i64 {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("an integer line")
}

fn read_blob(buf: &[u8], pos: &mut usize, len: i64) -> Vec<u8> {
    let len = usize::try_from(len).expect("a non-negative length");
    let data = buf[*pos..*pos + len].to_vec();
    *pos += len + 2;
    data
}

fn parse_val(buf: &[u8], pos: &mut usize) -> Val {
    let kind = buf[*pos];
    *pos += 1;
    let line = read_line(buf, pos);
    let many = |buf: &[u8], pos: &mut usize, n: i64| -> Vec<Val> {
        (0..n).map(|_| parse_val(buf, pos)).collect()
    };
    let pairs = |buf: &[u8], pos: &mut usize, n: i64| -> Vec<(Val, Val)> {
        (0..n)
            .map(|_| (parse_val(buf, pos), parse_val(buf, pos)))
            .collect()
    };
    match kind {
        b'+' => Val::Simple(line.to_vec()),
        b'-' => Val::Error(line.to_vec()),
        b':' => Val::Int(line_int(line)),
        b'$' => match line_int(line) {
            -1 => Val::NullBulk,
            n => Val::Bulk(read_blob(buf, pos, n)),
        },
        b'*' => match line_int(line) {
            -1 => Val::NullArray,
            n => Val::Array(many(buf, pos, n)),
        },
        b'_' => Val::Null,
        b',' => Val::Double(String::from_utf8_lossy(line).into_owned()),
        b'#' => Val::Bool(line == b"t"),
        b'(' => Val::BigNumber(String::from_utf8_lossy(line).into_owned()),
        b'!' => Val::BlobError(read_blob(buf, pos, line_int(line))),
        b'=' => Val::Verbatim(read_blob(buf, pos, line_int(line))),
        b'%' => Val::Map(pairs(buf, pos, line_int(line))),
        b'~' => Val::Set(many(buf, pos, line_int(line))),
        b'>' => Val::Push(many(buf, pos, line_int(line))),
        b'|' => {
            let attrs = pairs(buf, pos, line_int(line));
            Val::Attribute(attrs, Box::new(parse_val(buf, pos)))
        }
        other => panic!("unknown RESP type byte {:?}", other as char),
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, open: &str, v: &[Val], close: &str) -> fmt::Result {
            write!(f, "{open}")?;
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{x}")?;
            }
            write!(f, "{close}")
        }
        fn map(f: &mut fmt::Formatter<'_>, kv: &[(Val, Val)]) -> fmt::Result {
            write!(f, "%{{")?;
            for (i, (k, v)) in kv.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{k}: {v}")?;
            }
            write!(f, "}}")
        }
        match self {
            Val::Simple(b) => write!(f, "+{}", escape(b)),
            Val::Error(b) => write!(f, "-{}", escape(b)),
            Val::Int(n) => write!(f, ":{n}"),
            Val::Bulk(b) => write!(f, "\"{}\"", escape(b)),
            Val::NullBulk => write!(f, "$-1"),
            Val::NullArray => write!(f, "*-1"),
            Val::Null => write!(f, "_"),
            Val::Double(s) => write!(f, ",{s}"),
            Val::Bool(b) => write!(f, "#{}", if *b { 't' } else { 'f' }),
            Val::BigNumber(s) => write!(f, "({s}"),
            Val::BlobError(b) => write!(f, "!\"{}\"", escape(b)),
            Val::Verbatim(b) => write!(f, "=\"{}\"", escape(b)),
            Val::Array(v) => list(f, "*[", v, "]"),
            Val::Set(v) => list(f, "~[", v, "]"),
            Val::Push(v) => list(f, ">[", v, "]"),
            Val::Map(kv) => map(f, kv),
            Val::Attribute(kv, v) => {
                write!(f, "|")?;
                map(f, kv)?;
                write!(f, " {v}")
            }
        }
    }
}

/// Bytes as printable ASCII with `\r`, `\n`, `\"`, `\\` and `\xNN` escapes.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Encodes a command as a RESP multibulk array.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// What came back from a connection until it closed or went quiet.
#[derive(Debug, Clone, PartialEq)]
pub struct Drained {
    /// Every byte received.
    pub bytes: Vec<u8>,
    /// True if the peer closed (EOF or reset); false if it went quiet for the whole wait.
    pub closed: bool,
}

impl fmt::Display for Drained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.closed {
            "<closed>"
        } else {
            "<still open>"
        };
        write!(f, "\"{}\" {state}", escape(&self.bytes))
    }
}

/// A raw RESP connection over a blocking `TcpStream` with read/write timeouts.
pub struct RespConn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The port it is connected to.
    pub port: u16,
}

impl RespConn {
    /// Connects to 127.0.0.1:`port` (panics on failure).
    pub fn connect(port: u16) -> RespConn {
        RespConn::try_connect(port).unwrap_or_else(|e| panic!("connect to port {port}: {e}"))
    }

    /// Connects to 127.0.0.1:`port`.
    pub fn try_connect(port: u16) -> std::io::Result<RespConn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(RespConn {
            stream,
            buf: Vec::new(),
            port,
        })
    }

    /// The underlying stream.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to server");
    }

    /// Writes raw bytes, reporting failure instead of panicking.
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one complete reply frame and returns its raw bytes.
    ///
    /// # Panics
    /// On timeout, close, an undecodable reply or one above [`REPLY_BYTES_MAX`].
    pub fn read_frame(&mut self) -> Vec<u8> {
        self.try_read_frame()
            .unwrap_or_else(|e| panic!("port {}: {e}", self.port))
    }

    /// Reads one complete reply frame, or says why it could not.
    pub fn try_read_frame(&mut self) -> Result<Vec<u8>, String> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some(len) = frame_len(&self.buf)? {
                let rest = self.buf.split_off(len);
                return Ok(std::mem::replace(&mut self.buf, rest));
            }
            if self.buf.len() > REPLY_BYTES_MAX {
                return Err(format!("reply larger than {REPLY_BYTES_MAX} bytes"));
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(format!(
                        "connection closed; partial reply \"{}\"",
                        escape(&self.buf)
                    ));
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    return Err(format!(
                        "read failed ({e}); partial reply \"{}\"",
                        escape(&self.buf)
                    ));
                }
            }
        }
    }

    /// Reads one reply and parses it.
    pub fn read_reply(&mut self) -> Val {
        Val::parse(&self.read_frame())
    }

    /// Sends a command as a multibulk array and reads its reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Val {
        self.send(&encode_command(args));
        self.read_reply()
    }

    /// Splits `line` like redis-cli (quotes, `\xNN`), sends it as a multibulk, reads a reply.
    pub fn cmd_line(&mut self, line: &str) -> Val {
        let args = split_args(line).unwrap_or_else(|| panic!("bad command line {line:?}"));
        self.cmd(&args)
    }

    /// Puts `bytes` back in front of what is buffered: read again before anything else.
    pub fn unread(&mut self, bytes: &[u8]) {
        let mut buf = bytes.to_vec();
        buf.extend_from_slice(&self.buf);
        self.buf = buf;
    }

    /// Sends `HELLO 3` and checks that a map came back.
    pub fn hello3(&mut self) -> Val {
        let reply = self.cmd(&["HELLO", "3"]);
        assert!(
            matches!(reply, Val::Map(_)),
            "HELLO 3 on port {} gave {reply}",
            self.port
        );
        reply
    }

    /// Reads whatever arrives until the peer closes or nothing arrives for `quiet`, bounded by
    /// `total` overall. Bytes already buffered come first.
    pub fn drain(&mut self, quiet: Duration, total: Duration) -> Drained {
        let mut bytes = std::mem::take(&mut self.buf);
        let deadline = Instant::now() + total;
        let mut chunk = vec![0u8; 64 * 1024];
        self.stream.set_read_timeout(Some(quiet)).unwrap();
        let closed = loop {
            if Instant::now() >= deadline || bytes.len() > REPLY_BYTES_MAX {
                break false;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break false;
                }
                Err(_) => break true,
            }
        };
        let _ = self.stream.set_read_timeout(Some(IO_TIMEOUT));
        Drained { bytes, closed }
    }

    /// Waits up to `timeout` for the server to close the connection; returns how long it took,
    /// or `None` if it stayed open. Any bytes received meanwhile are returned too.
    pub fn wait_closed(&mut self, timeout: Duration) -> (Option<Duration>, Vec<u8>) {
        let start = Instant::now();
        let mut bytes = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 4096];
        self.stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        while start.elapsed() < timeout {
            match self.stream.read(&mut chunk) {
                Ok(0) => return (Some(start.elapsed()), bytes),
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return (Some(start.elapsed()), bytes),
            }
        }
        let _ = self.stream.set_read_timeout(Some(IO_TIMEOUT));
        (None, bytes)
    }

    /// Closes the write half.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Splits a command line like redis-cli does: whitespace separates, `"..."` allows `\n`,
/// `\r`, `\t`, `\"`, `\\` and `\xNN`, `'...'` is literal. `None` on unbalanced quotes.
pub fn split_args(line: &str) -> Option<Vec<Vec<u8>>> {
    let bytes = line.as_bytes();
    let mut args = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let mut arg = Vec::new();
        match bytes[i] {
            b'"' => {
                i += 1;
                loop {
                    let c = *bytes.get(i)?;
                    i += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            let e = *bytes.get(i)?;
                            i += 1;
                            match e {
                                b'n' => arg.push(b'\n'),
                                b'r' => arg.push(b'\r'),
                                b't' => arg.push(b'\t'),
                                b'x' => {
                                    let hex = std::str::from_utf8(bytes.get(i..i + 2)?).ok()?;
                                    arg.push(u8::from_str_radix(hex, 16).ok()?);
                                    i += 2;
                                }
                                other => arg.push(other),
                            }
                        }
                        other => arg.push(other),
                    }
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    let c = *bytes.get(i)?;
                    i += 1;
                    if c == b'\'' {
                        break;
                    }
                    arg.push(c);
                }
            }
            _ => {
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    arg.push(bytes[i]);
                    i += 1;
                }
            }
        }
        args.push(arg);
    }
    Some(args)
}

// ------------------------------------------------------------------------------------------
// Differential runner

/// How two replies to the same command line are compared.
#[derive(Clone, Debug, PartialEq)]
pub enum Compare {
    /// Equal after putting map entries and set members in canonical order.
    Exact,
    /// Equal after also sorting the elements of the top-level array (`KEYS`).
    Sorted,
    /// Same RESP type at the top level; for errors, the same first word.
    Shape,
    /// A map, or a flat array of pairs, compared as a set of pairs (`CONFIG GET a b`).
    Pairs,
    /// Integers may differ by up to this much; anything else must be exact (`TTL`).
    Approx(i64),
    /// A `HELLO` reply: same field names; `proto`, `mode`, `role`, `modules` equal; the rest
    /// (server, version, id) only of the same type.
    Hello,
    /// `SCAN cursor ...`: iterate to cursor 0 on each server (the cursor argument is replaced)
    /// and compare the sorted set of keys.
    Scan,
    /// A documented, deliberate difference: printed, never a failure.
    Known(&'static str),
}

/// One line of a differential script.
#[derive(Clone, Debug)]
pub enum Step {
    /// A command and how to compare its replies.
    Cmd {
        /// The line as written (for messages).
        line: String,
        /// Arguments.
        args: Vec<Vec<u8>>,
        /// Comparison.
        compare: Compare,
    },
    /// Sleep this long on both sides (for expiries).
    SleepMs(u64),
}

/// A parsed differential script.
pub struct Script {
    /// The steps in order.
    pub steps: Vec<Step>,
}

/// A reply pair that did not compare equal.
pub struct Mismatch {
    /// The command line.
    pub line: String,
    /// redis-server's reply.
    pub redis: String,
    /// ringcache's reply.
    pub ringcache: String,
    /// Known differences are reported but do not fail.
    pub known: Option<&'static str>,
}

impl Script {
    /// Parses a script: one command per line, `#` comments, blank lines ignored. A line may
    /// start with a directive: `@sorted`, `@shape`, `@pairs`, `@approx=N`, `@hello`, `@scan`,
    /// `@known=<reason>` (reason up to end of directive token, `_` for spaces), or be
    /// `@sleep N` (milliseconds).
    pub fn parse(text: &'static str) -> Script {
        let mut steps = Vec::new();
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (compare, rest) = if let Some(rest) = line.strip_prefix('@') {
                let (directive, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                let rest = rest.trim();
                let compare = match directive {
                    "sleep" => {
                        steps.push(Step::SleepMs(rest.parse().expect("@sleep N")));
                        continue;
                    }
                    "sorted" => Compare::Sorted,
                    "shape" => Compare::Shape,
                    "pairs" => Compare::Pairs,
                    "hello" => Compare::Hello,
                    "scan" => Compare::Scan,
                    d if d.starts_with("approx=") => {
                        Compare::Approx(d["approx=".len()..].parse().expect("@approx=N"))
                    }
                    d if d.starts_with("known=") => Compare::Known(&d["known=".len()..]),
                    other => panic!("unknown directive @{other} in {line:?}"),
                };
                (compare, rest)
            } else {
                (Compare::Exact, line)
            };
            let args = split_args(rest).unwrap_or_else(|| panic!("bad script line {line:?}"));
            assert!(!args.is_empty(), "empty command in {line:?}");
            steps.push(Step::Cmd {
                line: rest.to_string(),
                args,
                compare,
            });
        }
        Script { steps }
    }

    /// The number of command steps.
    pub fn len(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Cmd { .. }))
            .count()
    }

    /// Runs the script step by step on both connections and returns every mismatch.
    pub fn run(&self, redis: &mut RespConn, ringcache: &mut RespConn) -> Vec<Mismatch> {
        self.run_with_proto(redis, ringcache, 2)
    }

    /// Like [`Script::run`], with every `$PROTO` argument replaced by `proto`.
    pub fn run_with_proto(
        &self,
        redis: &mut RespConn,
        ringcache: &mut RespConn,
        proto: u8,
    ) -> Vec<Mismatch> {
        let mut mismatches = Vec::new();
        for step in &self.steps {
            match step {
                Step::SleepMs(ms) => thread::sleep(Duration::from_millis(*ms)),
                Step::Cmd {
                    line,
                    args,
                    compare,
                } => {
                    let args: Vec<Vec<u8>> = args
                        .iter()
                        .map(|a| {
                            if a == b"$PROTO" {
                                proto.to_string().into_bytes()
                            } else {
                                a.clone()
                            }
                        })
                        .collect();
                    let args = &args;
                    let (a, b) = if *compare == Compare::Scan {
                        (scan_all(redis, args), scan_all(ringcache, args))
                    } else {
                        (run_one(redis, args), run_one(ringcache, args))
                    };
                    let ok = match (&a, &b) {
                        (Ok(a), Ok(b)) => replies_match(compare, a, b),
                        _ => false,
                    };
                    if !ok {
                        let show = |r: &Result<Val, String>| match r {
                            Ok(v) => v.to_string(),
                            Err(e) => format!("<no reply: {e}>"),
                        };
                        mismatches.push(Mismatch {
                            line: line.clone(),
                            redis: show(&a),
                            ringcache: show(&b),
                            known: match compare {
                                Compare::Known(why) => Some(why),
                                _ => None,
                            },
                        });
                    }
                    // A connection that failed is useless for the rest of the script.
                    if let Err(e) = &a {
                        panic!("redis-server stopped answering at {line:?}: {e}");
                    }
                    if b.is_err() {
                        eprintln!("ringcache stopped answering at {line:?}; stopping the script");
                        break;
                    }
                }
            }
        }
        mismatches
    }
}

fn run_one(conn: &mut RespConn, args: &[Vec<u8>]) -> Result<Val, String> {
    conn.try_send(&encode_command(args))
        .map_err(|e| e.to_string())?;
    conn.try_read_frame().map(|f| Val::parse(&f))
}

/// Iterates `SCAN` to the end (at most 100,000 calls) and returns the sorted keys as an array,
/// or the first error reply.
fn scan_all(conn: &mut RespConn, args: &[Vec<u8>]) -> Result<Val, String> {
    const SCAN_CALLS_MAX: usize = 100_000;
    let mut args = args.to_vec();
    // SCAN's cursor is its first argument; HSCAN's, SSCAN's and ZSCAN's follow the key.
    let at = if args[0].eq_ignore_ascii_case(b"scan") {
        1
    } else {
        2
    };
    args[at] = b"0".to_vec();
    let mut keys = Vec::new();
    for _ in 0..SCAN_CALLS_MAX {
        let reply = run_one(conn, &args)?;
        let Some([cursor, batch]) = reply
            .items()
            .map(|v| v.to_vec())
            .as_deref()
            .and_then(|v| <&[Val; 2]>::try_from(v).ok().cloned())
        else {
            return Ok(reply);
        };
        let Some(batch) = batch.items() else {
            return Err(format!("SCAN batch is not an array: {reply}"));
        };
        keys.extend(batch.iter().cloned());
        let Some(cursor) = cursor.text() else {
            return Err(format!("SCAN cursor is not a string: {reply}"));
        };
        if cursor == "0" {
            keys.sort_by_cached_key(|k| k.to_string());
            keys.dedup();
            return Ok(Val::Array(keys));
        }
        args[at] = cursor.into_bytes();
    }
    Err(format!("SCAN did not finish within {SCAN_CALLS_MAX} calls"))
}

/// Whether two replies match under `compare`.
pub fn replies_match(compare: &Compare, a: &Val, b: &Val) -> bool {
    let (a, b) = (a.normalized(), b.normalized());
    match compare {
        Compare::Exact | Compare::Scan | Compare::Known(_) => a == b,
        Compare::Sorted => match (&a, &b) {
            (Val::Array(x), Val::Array(y)) => sorted_vals(x.clone()) == sorted_vals(y.clone()),
            _ => a == b,
        },
        Compare::Shape => {
            a.kind() == b.kind()
                && (!a.is_error()
                    || a.text().unwrap_or_default().split(' ').next()
                        == b.text().unwrap_or_default().split(' ').next())
        }
        Compare::Approx(tolerance) => match (&a, &b) {
            (Val::Int(x), Val::Int(y)) if *x >= 0 && *y >= 0 => (x - y).abs() <= *tolerance,
            _ => a == b,
        },
        Compare::Hello => hello_match(&a, &b),
        Compare::Pairs => match (a.pairs(), b.pairs()) {
            (Some(x), Some(y)) => a.kind() == b.kind() && sorted_pairs(&x) == sorted_pairs(&y),
            _ => a == b,
        },
    }
}

fn hello_match(a: &Val, b: &Val) -> bool {
    if a.kind() != b.kind() {
        return false;
    }
    let (Some(pa), Some(pb)) = (a.pairs(), b.pairs()) else {
        return a == b;
    };
    if pa.len() != pb.len() {
        return false;
    }
    pa.iter().zip(pb.iter()).all(|((ka, va), (kb, vb))| {
        ka == kb
            && match ka.text().as_deref() {
                Some("proto" | "mode" | "role" | "modules") => va == vb,
                _ => va.kind() == vb.kind(),
            }
    })
}

/// Prints every mismatch and returns how many are not known differences.
pub fn print_mismatches(what: &str, total: usize, mismatches: &[Mismatch]) -> usize {
    let known = mismatches.iter().filter(|m| m.known.is_some()).count();
    let failing = mismatches.len() - known;
    for m in mismatches {
        let tag = match m.known {
            Some(why) => format!("KNOWN ({why})"),
            None => "MISMATCH".to_string(),
        };
        eprintln!(
            "{tag} [{what}] {}\n    redis-server: {}\n    ringcache:    {}",
            m.line, m.redis, m.ringcache
        );
    }
    eprintln!("[{what}] {total} commands, {failing} mismatches, {known} known differences");
    failing
}

/// Runs `script` on a fresh redis-server (started with `redis_extra`) and a fresh ringcache
/// over RESP`proto`, and fails with every mismatch listed, the report named `what`.
pub fn run_side_by_side(what: &str, script: &Script, proto: u8, redis_extra: &[&str]) {
    let (_redis, _ringcache, mut a, mut b) = side_by_side(proto, redis_extra);
    let mismatches = script.run_with_proto(&mut a, &mut b, proto);
    report_mismatches(&format!("{what}RESP{proto}"), script.len(), &mismatches);
}

/// Prints every mismatch and panics if any is not a known difference.
pub fn report_mismatches(what: &str, total: usize, mismatches: &[Mismatch]) {
    let failing = print_mismatches(what, total, mismatches);
    assert_eq!(
        failing, 0,
        "[{what}] {failing} of {total} replies differ from redis-server"
    );
}

// ------------------------------------------------------------------------------------------
// Tools

/// Runs `program args` with stdin from `stdin` (or empty), killed after `timeout`.
pub fn run_tool(program: &str, args: &[&str], stdin: Option<&Path>, timeout: Duration) -> Output {
    let stdin = match stdin {
        Some(p) => Stdio::from(fs::File::open(p).expect("open stdin file")),
        None => Stdio::null(),
    };
    let dir = TempDir::new("ringcache-tool");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = Command::new(program)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::from(fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(fs::File::create(&err_path).unwrap()))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{program} {args:?} did not finish within {timeout:?}; stdout so far: {}",
                String::from_utf8_lossy(&fs::read(&out_path).unwrap_or_default())
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: fs::read(&out_path).unwrap_or_default(),
        stderr: fs::read(&err_path).unwrap_or_default(),
    }
}

/// Runs `redis-cli -p PORT args...` and returns its output.
pub fn redis_cli(port: u16, args: &[&str]) -> Output {
    let port = port.to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port];
    all.extend_from_slice(args);
    run_tool("redis-cli", &all, None, TOOL_TIMEOUT)
}

/// Runs `redis-cli -p PORT args...` and returns stdout without its final newline, panicking on
/// a non-zero exit.
pub fn redis_cli_ok(port: u16, args: &[&str]) -> String {
    let out = redis_cli(port, args);
    assert!(
        out.status.success(),
        "redis-cli {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.strip_suffix('\n').map(str::to_string).unwrap_or(text)
}

/// Runs `redis-cli -p PORT args...` with stdin from a file (for `--pipe`).
pub fn redis_cli_stdin(port: u16, args: &[&str], stdin: &Path) -> Output {
    let port = port.to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port];
    all.extend_from_slice(args);
    run_tool("redis-cli", &all, Some(stdin), TOOL_TIMEOUT)
}

/// The soft `RLIMIT_NOFILE` of this process, from /proc/self/limits.
pub fn nofile_soft_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------------------------------
// Cluster

/// The `--cluster-secret` every [`Cluster`] node gets unless its `extra` gives another.
pub const CLUSTER_SECRET: &str = "ringcache-e2e-cluster-secret";
/// How long a [`Cluster`] may take to form: every node started and seeing every other up.
pub const CLUSTER_FORM_TIMEOUT: Duration = Duration::from_secs(20);
/// `--write-timeout-ms` and `--read-timeout-ms` of a [`Cluster`] node unless `extra` sets
/// them: the server's default, given explicitly so that no test depends on a default, and
/// long enough that a debug build on a loaded two-core machine does not time out spuriously.
pub const CLUSTER_REQUEST_TIMEOUT_MS: &str = "1000";
/// Read timeout of the connections the harness opens for `INFO` and `RING`: a node that does
/// not answer (stopped, overloaded) becomes an error quickly instead of stalling a wait loop
/// for [`IO_TIMEOUT`].
pub const ADMIN_IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Lines of each node's log that a failure message shows.
const LOG_TAIL_LINES: usize = 40;
/// Start attempts of a restarted node on its own ports: a port that a killed process held may
/// stay busy for a moment.
const RESTART_ATTEMPTS_MAX: usize = 5;
/// Pause between two restart attempts.
const RESTART_RETRY_PAUSE: Duration = Duration::from_millis(300);
/// How often a wait loop polls a node.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long every thread of a process may take to stop after SIGSTOP.
const STOPPED_TIMEOUT: Duration = Duration::from_secs(1);

/// `k` distinct free ports: all bound at once, so that none is handed out twice, then
/// released.
pub fn free_ports(k: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..k)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The value of `field` in an `INFO` reply (`field:value` lines).
pub fn info_value(info: &str, field: &str) -> Option<String> {
    info.lines().find_map(|line| {
        line.trim_end_matches('\r')
            .strip_prefix(field)?
            .strip_prefix(':')
            .map(str::to_string)
    })
}

/// Sends one command on a fresh connection whose reads give up after [`ADMIN_IO_TIMEOUT`].
pub fn admin_query(port: u16, args: &[&str]) -> Result<Val, String> {
    let mut conn = RespConn::try_connect(port).map_err(|e| format!("connect: {e}"))?;
    conn.stream()
        .set_read_timeout(Some(ADMIN_IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    conn.try_send(&encode_command(args))
        .map_err(|e| format!("send: {e}"))?;
    conn.try_read_frame().map(|frame| Val::parse(&frame))
}

/// What the test did to a [`Cluster`] node last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Started (or restarted, or continued) and not touched since.
    Running,
    /// Sent SIGSTOP: alive but frozen.
    Stopped,
    /// Killed with SIGKILL and reaped.
    Killed,
}

/// One node of a [`Cluster`].
struct ClusterNode {
    /// Client port.
    port: u16,
    /// Peer port (`--peer-port`).
    peer_port: u16,
    /// The arguments given to [`Ringcache::start_in`], kept to restart it identically.
    args: Vec<String>,
    state: NodeState,
    process: Ringcache,
    // Declared last so that it is removed after the process is gone.
    dir: TempDir,
}

/// Ringcache nodes on loopback forming one cluster: each on its own free client and peer
/// ports, in its own directory, with the full `--seeds` list (every member's peer port on
/// 127.0.0.1, its own included) and [`CLUSTER_SECRET`].
///
/// Nodes are numbered from 0 in start order. The first `members()` nodes are the cluster;
/// [`Cluster::add_node`] starts more with the same seeds, which are not in anyone's seed list.
/// On drop, stopped nodes get SIGCONT and every node gets SIGKILL and is reaped.
pub struct Cluster {
    nodes: Vec<ClusterNode>,
    members: usize,
    seeds: String,
}

impl Cluster {
    /// Starts `n` nodes with `extra` arguments each and waits up to [`CLUSTER_FORM_TIMEOUT`]
    /// until every one reports `members_up:n` in `INFO cluster`.
    ///
    /// The harness gives `--peer-port`, `--seeds`, `--cluster-secret`,
    /// `--write-timeout-ms` and `--read-timeout-ms` ([`CLUSTER_REQUEST_TIMEOUT_MS`]) unless
    /// `extra` sets them, and `--metrics-port 0`, plus [`Ringcache::start_in`]'s own.
    ///
    /// # Panics
    /// If a node does not start (after [`START_ATTEMPTS_MAX`] tries with fresh ports) or the
    /// cluster does not form in time; the message has every node's `INFO cluster`, `RING
    /// NODES` and log tail.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        assert!(n >= 1, "a cluster has at least one node");
        let mut last = String::new();
        for attempt in 1..=START_ATTEMPTS_MAX {
            let ports = free_ports(2 * n);
            let (client_ports, peer_ports) = ports.split_at(n);
            let seeds = peer_ports
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect::<Vec<_>>()
                .join(",");
            let mut cluster = Cluster {
                nodes: Vec::new(),
                members: n,
                seeds,
            };
            let started = client_ports
                .iter()
                .zip(peer_ports)
                .try_for_each(|(&port, &peer_port)| cluster.try_add(port, peer_port, extra));
            match started {
                Ok(()) => {
                    cluster.wait_all_up(CLUSTER_FORM_TIMEOUT);
                    return cluster;
                }
                // Dropping `cluster` kills what did start; the next attempt has fresh ports.
                Err(why) => last = format!("attempt {attempt} of {START_ATTEMPTS_MAX}: {why}"),
            }
        }
        panic!("a cluster of {n} nodes did not start: {last}");
    }

    /// Starts one more node on fresh ports with the cluster's `--seeds` (which do not list it)
    /// and `extra` (e.g. another `--cluster-secret`); returns its index. Does not wait for it
    /// to join: it may be meant not to.
    ///
    /// # Panics
    /// If it does not start after [`START_ATTEMPTS_MAX`] tries.
    pub fn add_node(&mut self, extra: &[&str]) -> usize {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS_MAX {
            let ports = free_ports(2);
            match self.try_add(ports[0], ports[1], extra) {
                Ok(()) => return self.nodes.len() - 1,
                Err(why) => last = why,
            }
        }
        panic!("node {} did not start: {last}", self.nodes.len());
    }

    fn try_add(&mut self, port: u16, peer_port: u16, extra: &[&str]) -> Result<(), String> {
        let index = self.nodes.len();
        let mut args: Vec<String> = Vec::new();
        let defaults = [
            ("--peer-port", peer_port.to_string()),
            ("--seeds", self.seeds.clone()),
            ("--cluster-secret", CLUSTER_SECRET.to_string()),
            ("--write-timeout-ms", CLUSTER_REQUEST_TIMEOUT_MS.to_string()),
            ("--read-timeout-ms", CLUSTER_REQUEST_TIMEOUT_MS.to_string()),
            ("--metrics-port", "0".to_string()),
        ];
        for (flag, value) in defaults {
            if arg_value(extra, flag).is_none() {
                args.extend([flag.to_string(), value]);
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let peer_port = arg_value(extra, "--peer-port").map_or(peer_port, |p| p.parse().unwrap());
        let dir = TempDir::new(&format!("ringcache-cluster-node{index}"));
        let process = Ringcache::try_start_in(dir.path(), port, &strs(&args)).map_err(|why| {
            format!("node {index} (client port {port}, peer port {peer_port}): {why}")
        })?;
        self.nodes.push(ClusterNode {
            port,
            peer_port,
            args,
            state: NodeState::Running,
            process,
            dir,
        });
        Ok(())
    }

    /// How many nodes the cluster was started with (those in `--seeds`).
    pub fn members(&self) -> usize {
        self.members
    }

    /// How many nodes were started, members and [`Cluster::add_node`]'s.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The `--seeds` list every node got.
    pub fn seeds(&self) -> &str {
        &self.seeds
    }

    /// Node `i`'s client port.
    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].port
    }

    /// Node `i`'s peer port.
    pub fn peer_port(&self, i: usize) -> u16 {
        self.nodes[i].peer_port
    }

    /// Node `i`'s directory (data in `data/`, log in `ringcache.log`).
    pub fn dir(&self, i: usize) -> &Path {
        self.nodes[i].dir.path()
    }

    /// What the test did to node `i` last.
    pub fn state(&self, i: usize) -> NodeState {
        self.nodes[i].state
    }

    /// A raw RESP connection to node `i` (panics if it cannot connect).
    pub fn conn(&self, i: usize) -> RespConn {
        RespConn::connect(self.nodes[i].port)
    }

    /// Everything node `i` wrote to stdout and stderr, over all its runs (each run starts
    /// with a `=== harness: ... ===` line).
    pub fn log(&self, i: usize) -> String {
        self.nodes[i].process.process.log()
    }

    /// Kills node `i` with SIGKILL (a stopped node too) and reaps it.
    /// Resident memory of node `i`'s process, in bytes (`VmRSS`).
    pub fn rss_bytes(&self, i: usize) -> u64 {
        let pid = self.nodes[i].process.process.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    pub fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.process.process.kill();
        node.state = NodeState::Killed;
    }

    /// Freezes node `i` with SIGSTOP: its sockets stay open, it answers nothing. Returns once
    /// every thread of the process is stopped: the signal takes effect asynchronously, and a
    /// test that times what happens next must not race a thread still running.
    ///
    /// # Panics
    /// If the process is not seen stopped within [`STOPPED_TIMEOUT`].
    pub fn stop(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert_eq!(node.state, NodeState::Running, "SIGSTOP node {i}");
        node.process.process.signal("STOP");
        node.state = NodeState::Stopped;
        let pid = node.process.process.pid();
        if wait_for(STOPPED_TIMEOUT, || all_threads_stopped(pid).then_some(())).is_none() {
            panic!(
                "node {i} (pid {pid}) not stopped {STOPPED_TIMEOUT:?} after SIGSTOP\n{}",
                self.describe()
            );
        }
    }

    /// Resumes node `i` with SIGCONT after [`Cluster::stop`].
    pub fn cont(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert_eq!(node.state, NodeState::Stopped, "SIGCONT node {i}");
        node.process.process.signal("CONT");
        node.state = NodeState::Running;
    }

    /// Starts node `i` again in its own directory with its own ports and arguments (so as the
    /// same node), after killing it with SIGKILL if it still runs. Waits for PING, not for the
    /// cluster: see [`Cluster::wait_all_up`].
    ///
    /// # Panics
    /// If it does not start within [`RESTART_ATTEMPTS_MAX`] tries.
    pub fn restart(&mut self, i: usize) {
        if self.nodes[i].state != NodeState::Killed {
            self.kill(i);
        }
        let mut last = String::new();
        for attempt in 1..=RESTART_ATTEMPTS_MAX {
            let node = &self.nodes[i];
            match Ringcache::try_start_in(node.dir.path(), node.port, &strs(&node.args)) {
                Ok(process) => {
                    let node = &mut self.nodes[i];
                    node.process = process;
                    node.state = NodeState::Running;
                    return;
                }
                Err(why) => last = format!("attempt {attempt} of {RESTART_ATTEMPTS_MAX}: {why}"),
            }
            thread::sleep(RESTART_RETRY_PAUSE);
        }
        panic!(
            "node {i} (client port {}, peer port {}) did not restart: {last}\n{}",
            self.nodes[i].port,
            self.nodes[i].peer_port,
            self.describe()
        );
    }

    /// The nodes the test has not killed or stopped.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].state == NodeState::Running)
            .collect()
    }

    /// `INFO <section>` of node `i`, or why it could not be had within [`ADMIN_IO_TIMEOUT`].
    pub fn try_info(&self, i: usize, section: &str) -> Result<String, String> {
        match admin_query(self.nodes[i].port, &["INFO", section])? {
            Val::Bulk(b) | Val::Verbatim(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => Err(format!("INFO {section} answered {other}")),
        }
    }

    /// Field `field` of node `i`'s `INFO cluster`, or why it could not be had.
    pub fn try_info_field(&self, i: usize, field: &str) -> Result<String, String> {
        let info = self.try_info(i, "cluster")?;
        info_value(&info, field)
            .ok_or_else(|| format!("no {field} in INFO cluster: {}", info.replace("\r\n", "; ")))
    }

    /// Field `field` of node `i`'s `INFO cluster`.
    ///
    /// # Panics
    /// If the node does not answer or has no such field.
    pub fn info_field(&self, i: usize, field: &str) -> String {
        self.try_info_field(i, field).unwrap_or_else(|why| {
            panic!(
                "INFO cluster field {field} of node {i}: {why}\n{}",
                self.describe()
            )
        })
    }

    /// Field `field` of node `i`'s `INFO cluster` as a number.
    pub fn info_number(&self, i: usize, field: &str) -> u64 {
        let text = self.info_field(i, field);
        text.parse().unwrap_or_else(|_| {
            panic!("INFO cluster field {field} of node {i} is not a number: {text:?}")
        })
    }

    /// Waits up to `timeout` until node `i` reports `field:want` in `INFO cluster`.
    ///
    /// # Panics
    /// When time is up, with the last value seen and [`Cluster::describe`].
    pub fn wait_field(&self, i: usize, field: &str, want: &str, timeout: Duration) {
        self.wait_field_until(i, field, want, Instant::now() + timeout, timeout);
    }

    fn wait_field_until(
        &self,
        i: usize,
        field: &str,
        want: &str,
        deadline: Instant,
        timeout: Duration,
    ) {
        let mut last;
        loop {
            last = self.try_info_field(i, field);
            if last.as_deref() == Ok(want) {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            thread::sleep(POLL_INTERVAL);
        }
        let last = match last {
            Ok(v) => format!("{field}:{v}"),
            Err(why) => why,
        };
        panic!(
            "waited {timeout:?} for node {i} (client port {}, peer port {}) to report \
             {field}:{want} in INFO cluster; last seen: {last}\n{}",
            self.nodes[i].port,
            self.nodes[i].peer_port,
            self.describe()
        );
    }

    /// Waits up to `timeout` (for all of them together) until every running member reports
    /// `members_up:<number of running members>`: the killed and stopped ones are down, every
    /// other is up, on every side.
    pub fn wait_all_up(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let running: Vec<usize> = self
            .running()
            .into_iter()
            .filter(|&i| i < self.members)
            .collect();
        let up = running.len().to_string();
        for &i in &running {
            self.wait_field_until(i, "members_up", &up, deadline, timeout);
        }
    }

    /// Waits up to `timeout` until a line of node `i`'s log after its first `since` bytes
    /// (a length of [`Cluster::log`] taken earlier) satisfies `matches`; returns that line.
    ///
    /// # Panics
    /// When time is up, naming `what` was waited for, with [`Cluster::describe`].
    pub fn wait_log_line(
        &self,
        i: usize,
        since: usize,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> String {
        let found = wait_for(timeout, || {
            let log = self.log(i);
            // `since` counted bytes of the lossily decoded log; start at a char boundary.
            let start = (since..log.len())
                .find(|&b| log.is_char_boundary(b))
                .unwrap_or(log.len());
            log[start..]
                .lines()
                .find(|l| matches(l))
                .map(str::to_string)
        });
        found.unwrap_or_else(|| {
            panic!(
                "waited {timeout:?} for node {i} (client port {}, peer port {}) to log {what}\n{}",
                self.nodes[i].port,
                self.nodes[i].peer_port,
                self.describe()
            )
        })
    }

    /// Everything a failure message needs: the seeds, and per node its ports, state,
    /// `INFO cluster` and `RING NODES` (running nodes only) and log tail.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "=== cluster of {} members (+{} other nodes), seeds {} ===\n",
            self.members,
            self.nodes.len() - self.members,
            self.seeds
        );
        for (i, node) in self.nodes.iter().enumerate() {
            let _ = writeln!(
                out,
                "--- node {i}: client port {}, peer port {}, {:?}, dir {} ---",
                node.port,
                node.peer_port,
                node.state,
                node.dir.path().display()
            );
            if node.state == NodeState::Running {
                let info = self
                    .try_info(i, "cluster")
                    .map(|s| s.trim_end().replace("\r\n", "; "))
                    .unwrap_or_else(|why| format!("<no answer: {why}>"));
                let _ = writeln!(out, "INFO cluster: {info}");
                let ring = match admin_query(node.port, &["RING", "NODES"]) {
                    Ok(v) => v.text().unwrap_or_else(|| v.to_string()),
                    Err(why) => format!("<no answer: {why}>"),
                };
                let _ = writeln!(out, "RING NODES:\n{}", ring.trim_end());
            }
            let _ = writeln!(
                out,
                "log tail ({LOG_TAIL_LINES} lines):\n{}",
                tail(&node.process.process.log(), LOG_TAIL_LINES)
            );
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A frozen process still dies of SIGKILL, but resume it first so that nothing of it
        // (a child, a lock) stays stopped.
        for node in &mut self.nodes {
            if node.state == NodeState::Stopped
                && let Some(pid) = node.process.process.child.as_ref().map(Child::id)
            {
                let _ = Command::new("kill")
                    .arg("-CONT")
                    .arg(pid.to_string())
                    .status();
                node.state = NodeState::Running;
            }
        }
        for node in &mut self.nodes {
            node.process.process.kill();
        }
        // Each node's ServerProcess prints its log tail when the test is panicking.
    }
}

/// Whether every thread of process `pid` is stopped (state `T` in /proc), or /proc cannot
/// tell (then the caller cannot do better than trust the signal).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        // The state follows the command name, which is in parentheses and may hold spaces.
        fs::read_to_string(task.path().join("stat")).map_or(true, |stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
        })
    })
}

/// `&str` views of owned arguments.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

// ------------------------------------------------------------------------------------------
// Membership: `RING NODES`, nodes that exit by themselves, waits over the whole cluster

/// One line of `RING NODES`: `<id> <addr> <self|up|down> status=.. health=.. incarnation=N
/// tokens=N offset_ms=N ownership=X%`.
#[derive(Clone, Debug, PartialEq)]
pub struct RingMember {
    /// The node id, 16 hex digits.
    pub id: String,
    /// The peer address, `host:port`.
    pub addr: String,
    /// `self`, `up` or `down`: the link as the node asked sees it.
    pub state: String,
    /// `joining`, `normal` or `leaving`, as gossiped by the member itself.
    pub status: String,
    /// `alive`, `suspect` or `dead`, as gossip holds it.
    pub health: String,
    /// The member's incarnation.
    pub incarnation: u64,
    /// Tokens it owns on the ring (0 while joining).
    pub tokens: u64,
    /// Its share of the keys as a replica, in percent.
    pub ownership_pct: f64,
}

/// Parses a `RING NODES` reply, or says which line does not parse.
pub fn parse_ring_nodes(text: &str) -> Result<Vec<RingMember>, String> {
    let mut members = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = |why: &str| format!("RING NODES line {line:?}: {why}");
        let words: Vec<&str> = line.split_whitespace().collect();
        let [id, addr, state, fields @ ..] = words.as_slice() else {
            return Err(bad("fewer than 3 words"));
        };
        let field = |name: &str| -> Result<&str, String> {
            fields
                .iter()
                .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                .ok_or_else(|| bad(&format!("no {name}=")))
        };
        let number = |name: &str| -> Result<u64, String> {
            field(name)?
                .parse()
                .map_err(|_| bad(&format!("{name} is not a number")))
        };
        members.push(RingMember {
            id: id.to_string(),
            addr: addr.to_string(),
            state: state.to_string(),
            status: field("status")?.to_string(),
            health: field("health")?.to_string(),
            incarnation: number("incarnation")?,
            tokens: number("tokens")?,
            ownership_pct: field("ownership")?
                .trim_end_matches('%')
                .parse()
                .map_err(|_| bad("ownership is not a percentage"))?,
        });
    }
    Ok(members)
}

impl Cluster {
    /// Node `i`'s `RING NODES`, parsed, or why it could not be had within
    /// [`ADMIN_IO_TIMEOUT`].
    pub fn try_ring_nodes(&self, i: usize) -> Result<Vec<RingMember>, String> {
        let reply = admin_query(self.nodes[i].port, &["RING", "NODES"])?;
        let text = match &reply {
            Val::Bulk(b) | Val::Verbatim(b) => String::from_utf8_lossy(b).into_owned(),
            other => return Err(format!("RING NODES answered {other}")),
        };
        parse_ring_nodes(&text)
    }

    /// Node `i`'s id (`node_id` of its `INFO cluster`).
    ///
    /// # Panics
    /// If the node does not answer.
    pub fn node_id(&self, i: usize) -> String {
        self.info_field(i, "node_id")
    }

    /// Waits up to `timeout` for node `i` to exit by itself (after `RING DECOMMISSION`, say)
    /// and returns its exit status; the node then counts as killed (not running: left out of
    /// [`Cluster::running`], [`Cluster::describe`]'s queries, and restartable). `None` if it
    /// still runs.
    pub fn wait_exited(&mut self, i: usize, timeout: Duration) -> Option<ExitStatus> {
        let node = &mut self.nodes[i];
        assert_eq!(node.state, NodeState::Running, "wait for node {i} to exit");
        let status = node.process.process.wait_exit(timeout)?;
        node.state = NodeState::Killed;
        Some(status)
    }

    /// Polls `check` every [`POLL_INTERVAL`] until it returns `Ok`, for at most `timeout`;
    /// returns its value.
    ///
    /// # Panics
    /// When time is up, naming `what` was waited for, with the last error and
    /// [`Cluster::describe`].
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Cluster) -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match check(self) {
                Ok(v) => return v,
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                panic!(
                    "waited {timeout:?} for {what}; last seen: {last}\n{}",
                    self.describe()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// `Ok` once every running node (members and added nodes alike) reports `field:want` in
    /// `INFO cluster`, else the first that does not: a check for [`Cluster::wait_until`].
    pub fn check_all_fields(&self, field: &str, want: &str) -> Result<(), String> {
        for i in self.running() {
            let got = self
                .try_info_field(i, field)
                .map_err(|why| format!("node {i}: {why}"))?;
            if got != want {
                return Err(format!("node {i} reports {field}:{got}, want {want}"));
            }
        }
        Ok(())
    }
}
