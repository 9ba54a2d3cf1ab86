//! Transactions per second of `MULTI`, five `SET`s of random keys, `EXEC` (what redis-py's
//! default pipeline sends), each sent in one write and its eight replies awaited, from
//! `--clients` connections: the load redis-benchmark cannot send. Prints one line,
//! `<transactions per second>`, for bench/scripts.sh to compare against redis-server.
//!
//!   tx-bench --port 6379 --clients 50 --transactions 100000

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::Rng;

/// `+OK` for MULTI, `+QUEUED` five times, then EXEC's array of five `+OK`.
const REPLY: &[u8] = b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*5\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n";
/// SETs per transaction.
const SETS: usize = 5;
/// How long one read may wait before the run gives up.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Parser)]
struct Args {
    /// The server's port on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// Connections, each on its own thread.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    clients: u32,
    /// Transactions in all.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    transactions: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    key_space: u64,
}

fn bulk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// One transaction's request bytes.
fn transaction(rng: &mut impl Rng, key_space: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n");
    for _ in 0..SETS {
        out.extend_from_slice(b"*3\r\n");
        bulk(out, b"SET");
        bulk(
            out,
            format!("tx:{:012}", rng.random_range(0..key_space)).as_bytes(),
        );
        bulk(out, &[b'x'; 100]);
    }
    out.extend_from_slice(b"*1\r\n$4\r\nEXEC\r\n");
}

/// Runs transactions until `left` is used up; errors on any reply but the expected one.
fn client(port: u16, key_space: u64, left: &AtomicU64) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut rng = rand::rng();
    let (mut request, mut reply) = (Vec::new(), vec![0u8; REPLY.len()]);
    while left
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
    {
        transaction(&mut rng, key_space, &mut request);
        stream.write_all(&request)?;
        stream.read_exact(&mut reply)?;
        if reply != REPLY {
            return Err(std::io::Error::other(format!(
                "unexpected reply {:?}",
                String::from_utf8_lossy(&reply)
            )));
        }
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let left = Arc::new(AtomicU64::new(args.transactions));
    #[allow(clippy::disallowed_methods, reason = "a benchmark times its own run")]
    let started = Instant::now();
    let workers: Vec<_> = (0..args.clients)
        .map(|_| {
            let left = left.clone();
            std::thread::spawn(move || client(args.port, args.key_space, &left))
        })
        .collect();
    for worker in workers {
        if let Err(e) = worker.join().expect("a client thread") {
            eprintln!("tx-bench: {e}");
            std::process::exit(1);
        }
    }
    let rate = args.transactions as f64 / started.elapsed().as_secs_f64();
    println!("{rate:.0}");
}
