//! A whole run: connect every client, preload, warm up, measure, merge, report.

use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, anyhow};

use super::client::{Client, Plan, Window};
use super::cpu::{self, Process};
use super::histogram::Latency;
use super::options::{Options, Stop};
use super::progress::{Progress, print_progress};
use super::report::{OpReport, Ops, PreloadReport, Report, VerifyReport, per_second};
use super::stats::Totals;
use super::verify::{Offence, Verdict, VerifyState, Wrong};
use super::workload::{Encoder, Mix};

/// Runs the load that `options` describe and returns its result.
///
/// # Errors
/// Invalid options, a server name that does not resolve, a `--measure-pids` process that is
/// gone, or a client that could reach no server within its reconnect attempts (a dead
/// cluster ends the run with an error instead of hanging).
pub fn run(options: Options) -> anyhow::Result<Report> {
    run_with_progress(options, Arc::new(Progress::default()))
}

/// Like [`run`], updating `progress` as it goes, so that another thread can watch it.
///
/// # Errors
/// See [`run`].
pub fn run_with_progress(options: Options, progress: Arc<Progress>) -> anyhow::Result<Report> {
    options.validate()?;
    let mut builder = if options.threads == 1 {
        // One thread drives every connection, like redis-benchmark: no cross-thread wakeups.
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(options.threads);
        builder
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run_async(&options, progress))
}

async fn run_async(options: &Options, progress: Arc<Progress>) -> anyhow::Result<Report> {
    let servers = resolve(&options.servers).await?;
    let processes: Vec<Process> = std::iter::once(Process::Myself)
        .chain(options.measure_pids.iter().map(|&pid| Process::Pid(pid)))
        .collect();
    cpu::sample(&processes).context("--measure-pids")?;
    let show_progress = options.progress || (!options.quiet && std::io::stderr().is_terminal());
    let plan = Arc::new(plan(options, servers, progress, show_progress));
    let clients: Vec<Client> = (0..options.clients)
        .map(|id| Client::new(id, &plan))
        .collect();
    let clients = in_parallel(clients, &plan, |mut client, plan| async move {
        let result = client.ensure_connected(&plan, false).await;
        (client, result)
    })
    .await?;
    let (clients, preload) = if options.preload {
        let started = Instant::now();
        let clients = in_parallel(clients, &plan, |mut client, plan| async move {
            let result = client.preload(&plan).await;
            (client, result)
        })
        .await?;
        let seconds = started.elapsed().as_secs_f64();
        (clients, Some(seconds))
    } else {
        (clients, None)
    };

    let warmup_end = Instant::now() + options.warmup;
    let window = Window {
        warmup_end,
        end: match options.stop() {
            Stop::Duration(d) => Some(warmup_end + d),
            Stop::Requests(_) => None,
        },
    };
    let cpu_start = {
        let (plan, processes) = (Arc::clone(&plan), processes.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(warmup_end.into()).await;
            plan.progress.set_measuring();
            cpu::sample(&processes)
        })
    };
    let done = Arc::new(AtomicBool::new(false));
    let printer = show_progress.then(|| {
        tokio::spawn(print_progress(
            Arc::clone(&plan),
            warmup_end,
            Arc::clone(&done),
        ))
    });
    let clients = in_parallel(clients, &plan, move |mut client, plan| async move {
        let result = client.run(&plan, window).await;
        (client, result)
    })
    .await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(printer) = printer {
        printer.abort();
    }
    let clients = clients?;
    let cpu_start = cpu_start
        .await
        .context("the CPU sampling task failed")?
        .context("--measure-pids at the start of the measured phase")?;
    let cpu_end = cpu::sample(&processes).context("--measure-pids at the end of the run")?;

    let mut totals = Totals::default();
    for client in &clients {
        totals.add(&client.stats);
    }
    Ok(report(
        options, &plan, &totals, warmup_end, &cpu_start, &cpu_end, preload,
    ))
}

/// The shared plan of a run.
fn plan(
    options: &Options,
    servers: Vec<SocketAddr>,
    progress: Arc<Progress>,
    show_progress: bool,
) -> Plan {
    let value_bytes = options.value_bytes();
    Plan {
        servers,
        clients: options.clients,
        pipeline: options.pipeline as usize,
        mix: Mix::new(options.ratio),
        encoder: Encoder::new(&options.key_prefix, options.read_level, options.write_level),
        key_pattern: options.key_pattern,
        key_space: options.key_space,
        zipf_exponent: options.zipf_exponent,
        seed: options.seed.unwrap_or_else(rand::random),
        value_bytes,
        verify: options.verify.then(|| {
            VerifyState::new(
                options.key_space,
                value_bytes,
                options.clients,
                options.levels_overlap(),
            )
        }),
        reply_timeout: options.timeout,
        tickets: match options.stop() {
            Stop::Requests(n) => Some(AtomicU64::new(n)),
            Stop::Duration(_) => None,
        },
        abort: AtomicBool::new(false),
        progress,
        progress_latency: show_progress.then(|| Mutex::new(Latency::default())),
    }
}

/// Resolves each `host:port` to its first address.
async fn resolve(servers: &[String]) -> anyhow::Result<Vec<SocketAddr>> {
    let mut addrs = Vec::with_capacity(servers.len());
    for server in servers {
        let addr = tokio::net::lookup_host(server.as_str())
            .await
            .with_context(|| format!("--servers: cannot resolve {server}"))?
            .next()
            .ok_or_else(|| anyhow!("--servers: {server} resolves to no address"))?;
        addrs.push(addr);
    }
    Ok(addrs)
}

/// Runs `task` for every client, each on its own tokio task, and gives the clients back; the
/// first error once all are done.
async fn in_parallel<F, Fut>(
    clients: Vec<Client>,
    plan: &Arc<Plan>,
    task: F,
) -> anyhow::Result<Vec<Client>>
where
    F: Fn(Client, Arc<Plan>) -> Fut,
    Fut: Future<Output = (Client, anyhow::Result<()>)> + Send + 'static,
{
    let handles: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(task(client, Arc::clone(plan))))
        .collect();
    let mut clients = Vec::with_capacity(handles.len());
    let mut first_error = None;
    for handle in handles {
        match handle.await {
            Ok((client, result)) => {
                if let Err(e) = result {
                    first_error.get_or_insert(e);
                }
                clients.push(client);
            }
            Err(e) => {
                first_error.get_or_insert(anyhow!("a client task failed: {e}"));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(clients),
    }
}

/// Builds the report from the merged counts.
fn report(
    options: &Options,
    plan: &Plan,
    totals: &Totals,
    warmup_end: Instant,
    cpu_start: &[u64],
    cpu_end: &[u64],
    preload_seconds: Option<f64>,
) -> Report {
    let duration_s = totals.last_reply.map_or(0.0, |last| {
        last.saturating_duration_since(warmup_end).as_secs_f64()
    });
    let all = totals.all();
    let ticks = cpu::ticks_per_second() as f64;
    let used = |i: usize| cpu_end[i].saturating_sub(cpu_start[i]) as f64 / ticks;
    let server_cpu_s =
        (!options.measure_pids.is_empty()).then(|| (1..cpu_end.len()).map(used).sum::<f64>());
    let verify = plan.verify.as_ref().map(|_| VerifyReport {
        checked: totals.verify.checked,
        wrong: totals.verify.wrong,
        missing: totals.verify.missing,
        offences: totals
            .verify
            .offences
            .iter()
            .map(|o| describe(&plan.encoder, o))
            .collect(),
    });
    Report {
        label: options.label.clone().unwrap_or_default(),
        servers: options.servers.clone(),
        clients: options.clients,
        threads: options.threads,
        pipeline: options.pipeline,
        ratio: [options.ratio.set, options.ratio.get],
        data_size: plan.value_bytes,
        key_space: options.key_space,
        key_pattern: options.key_pattern,
        read_level: options.read_level,
        write_level: options.write_level,
        duration_s,
        requests: all.requests,
        throughput: per_second(all.requests, duration_s),
        ops: Ops {
            set: OpReport::new(&totals.set, duration_s),
            get: OpReport::new(&totals.get, duration_s),
            all: OpReport::new(&all, duration_s),
        },
        errors: totals.errors.clone(),
        server_cpu_s,
        server_cpu_s_per_100k: server_cpu_s
            .filter(|_| all.requests > 0)
            .map(|cpu| cpu / all.requests as f64 * 100_000.0),
        client_cpu_s: used(0),
        verify,
        preload: preload_seconds.map(|seconds| PreloadReport {
            keys: options.key_space,
            seconds,
            errors: totals.preload_errors,
        }),
    }
}

/// One offence as a line for people.
fn describe(encoder: &Encoder, offence: &Offence) -> String {
    let key = encoder.key_name(offence.key);
    match offence.verdict {
        Verdict::Good => format!("{key}: good"),
        Verdict::Missing => format!("{key}: nil after an acknowledged SET"),
        Verdict::Wrong(Wrong::Corrupt) => {
            format!("{key}: corrupt value (length, magic or checksum)")
        }
        Verdict::Wrong(Wrong::ForeignKey(s)) => format!(
            "{key}: the value of {} (writer {}, seq {})",
            encoder.key_name(s.key),
            s.writer,
            s.seq
        ),
        Verdict::Wrong(Wrong::NeverIssued(s)) => format!(
            "{key}: a value never written (writer {}, seq {})",
            s.writer, s.seq
        ),
        Verdict::Wrong(Wrong::NotAValue) => {
            format!("{key}: a reply that is not a bulk string or nil")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::resp::{Reply, parse_reply};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::Ordering;

    /// What the fake server answers to request number `n` (counted over all its connections);
    /// `None` closes the connection instead.
    type Answer = fn(n: u64, is_set: bool) -> Option<&'static [u8]>;

    /// A RESP server on a thread per connection that answers with `answer`; it lives until the
    /// test process ends.
    fn fake_server(answer: Answer) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let served = Arc::new(AtomicU64::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let served = Arc::clone(&served);
                std::thread::spawn(move || serve(stream, &served, answer));
            }
        });
        addr
    }

    fn serve(mut stream: TcpStream, served: &AtomicU64, answer: Answer) {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let Ok(n) = stream.read(&mut chunk) else {
                return;
            };
            if n == 0 {
                return;
            }
            buffer.extend_from_slice(&chunk[..n]);
            let mut out = Vec::new();
            let mut pos = 0;
            while let Ok(Some((Reply::Array(_), len))) = parse_reply(&buffer[pos..]) {
                // "*3\r\n$3\r\nSET..." or "*2\r\n$3\r\nGET...": the name is at 8..11.
                let is_set = &buffer[pos + 8..pos + 11] == b"SET";
                match answer(served.fetch_add(1, Ordering::SeqCst), is_set) {
                    Some(reply) => out.extend_from_slice(reply),
                    None => return,
                }
                pos += len;
            }
            buffer.drain(..pos);
            if stream.write_all(&out).is_err() {
                return;
            }
        }
    }

    fn options(args: &[&str]) -> Options {
        Options::try_parse_checked(std::iter::once("ringcache-bench").chain(args.iter().copied()))
            .unwrap()
    }

    fn ok_or_nil(_: u64, is_set: bool) -> Option<&'static [u8]> {
        Some(if is_set { b"+OK\r\n" } else { b"$-1\r\n" })
    }

    #[test]
    fn exactly_the_requested_number_is_sent_and_errors_are_counted_by_kind() {
        fn every_tenth_times_out(n: u64, is_set: bool) -> Option<&'static [u8]> {
            if n % 10 == 9 {
                Some(b"-TIMEOUT QUORUM got 1 of 2 acks in 1000 ms\r\n")
            } else {
                ok_or_nil(n, is_set)
            }
        }
        let server = fake_server(every_tenth_times_out);
        let report = run(options(&[
            "--servers",
            &server,
            "--clients",
            "3",
            "--pipeline",
            "4",
            "--ratio",
            "1:1",
            "--requests",
            "1000",
            "--quiet",
        ]))
        .unwrap();
        assert_eq!(report.requests, 1000);
        assert_eq!(report.ops.set.requests + report.ops.get.requests, 1000);
        assert_eq!(
            report.errors.get("TIMEOUT"),
            Some(&100),
            "{:?}",
            report.errors
        );
        assert_eq!(report.ops.all.errors, 100);
        assert!(report.duration_s > 0.0 && report.throughput > 0.0);
        assert!(report.server_cpu_s.is_none() && report.verify.is_none());
    }

    #[test]
    fn a_broken_connection_counts_its_requests_and_the_client_moves_on() {
        fn first_connection_dies(n: u64, is_set: bool) -> Option<&'static [u8]> {
            if n == 20 { None } else { ok_or_nil(n, is_set) }
        }
        let flaky = fake_server(first_connection_dies);
        let healthy = fake_server(ok_or_nil);
        let servers = format!("{flaky},{healthy}");
        let report = run(options(&[
            "--servers",
            &servers,
            "--clients",
            "1",
            "--pipeline",
            "4",
            "--requests",
            "400",
            "--quiet",
        ]))
        .unwrap();
        assert_eq!(report.requests, 400);
        // The batch of request 20 was lost: its 4 requests.
        assert_eq!(
            report.errors.get("connection"),
            Some(&4),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn verify_counts_a_nil_after_an_acknowledged_set_as_missing() {
        let server = fake_server(ok_or_nil);
        let report = run(options(&[
            "--servers",
            &server,
            "--clients",
            "1",
            "--ratio",
            "1:1",
            "--key-space",
            "1",
            "--requests",
            "200",
            "--verify",
            "--quiet",
        ]))
        .unwrap();
        let verify = report.verify.as_ref().unwrap();
        assert!(verify.checked > 50 && verify.missing > 0, "{verify:?}");
        assert_eq!(verify.wrong, 0);
        assert!(report.verify_failed());
        assert!(
            verify.offences[0].starts_with("key:0: nil after"),
            "{:?}",
            verify.offences
        );
    }

    #[test]
    fn a_dead_server_ends_the_run_with_an_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = Instant::now();
        let error = run(options(&[
            "--servers",
            &format!("127.0.0.1:{port}"),
            "--clients",
            "2",
            "--duration",
            "60s",
            "--quiet",
        ]))
        .unwrap_err();
        assert!(format!("{error:#}").contains("gave up after"), "{error:#}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn a_server_that_answers_garbage_fails_the_run_instead_of_spinning() {
        fn garbage(_: u64, _: bool) -> Option<&'static [u8]> {
            Some(b"?garbage\r\n")
        }
        let server = fake_server(garbage);
        let error = run(options(&[
            "--servers",
            &server,
            "--clients",
            "1",
            "--requests",
            "1000",
            "--quiet",
        ]))
        .unwrap_err();
        assert!(format!("{error:#}").contains("protocol error"), "{error:#}");
    }
}
