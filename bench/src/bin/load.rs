//! `load PORT COUNT VALUE_BYTES`: writes `key:0 .. key:COUNT-1` with `VALUE_BYTES`-byte values
//! over one pipelined connection, as fast as the server takes them, then prints the rate.
//! Used by bench/storage-benchmark.sh to fill redis-server and ringcache with the same data.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use anyhow::{Context, bail};

/// Requests written before their replies are read.
const PIPELINE_DEPTH: usize = 1_000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, count, value_bytes] = args.as_slice() else {
        bail!("usage: load PORT COUNT VALUE_BYTES");
    };
    let port: u16 = port.parse().context("PORT")?;
    let count: usize = count.parse().context("COUNT")?;
    let value = vec![b'v'; value_bytes.parse().context("VALUE_BYTES")?];
    let mut stream = TcpStream::connect(("127.0.0.1", port)).context("connect")?;
    stream.set_nodelay(true)?;
    let mut replies = BufReader::with_capacity(1 << 16, stream.try_clone()?);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(PIPELINE_DEPTH * (value.len() + 64));
    let mut reply = [0u8; 5];
    for start in (0..count).step_by(PIPELINE_DEPTH) {
        batch.clear();
        let end = (start + PIPELINE_DEPTH).min(count);
        for i in start..end {
            let key = format!("key:{i}");
            write!(
                batch,
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n",
                key.len(),
                value.len()
            )?;
            batch.extend_from_slice(&value);
            batch.extend_from_slice(b"\r\n");
        }
        stream.write_all(&batch)?;
        for _ in start..end {
            replies.read_exact(&mut reply)?;
            if &reply != b"+OK\r\n" {
                bail!("unexpected reply {:?}", String::from_utf8_lossy(&reply));
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "loaded {count} keys in {seconds:.1} s ({:.0} keys/s)",
        count as f64 / seconds
    );
    Ok(())
}
