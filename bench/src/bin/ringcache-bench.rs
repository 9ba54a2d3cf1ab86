//! `ringcache-bench`: a load generator for ringcache and redis-server, in the manner of
//! memtier_benchmark, that knows consistency levels and a cluster without redirects. See
//! `ringcache-bench --help` and [`ringcache_bench::load`].
//!
//! Exit status: 0 after a run, 1 when the run failed (or `--verify` found wrong or missing
//! values), 2 for bad options.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ringcache_bench::load::{Options, Report, run};

fn main() -> ExitCode {
    let options = Options::parse();
    if let Err(e) = options.validate() {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    match run(options.clone()).and_then(|report| output(&options, &report).map(|()| report)) {
        Ok(report) if report.verify_failed() => {
            eprintln!("verify failed; first offending GETs:");
            for offence in report.verify.iter().flat_map(|v| &v.offences) {
                eprintln!("  {offence}");
            }
            ExitCode::FAILURE
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the table (on stderr when the JSON goes to stdout) and writes the JSON.
fn output(options: &Options, report: &Report) -> anyhow::Result<()> {
    let json_to_stdout = options
        .json
        .as_deref()
        .is_some_and(|p| p.as_os_str() == "-");
    if !options.quiet {
        if json_to_stdout {
            eprint!("{}", report.table());
        } else {
            print!("{}", report.table());
        }
    }
    if let Some(path) = &options.json {
        let json = report.to_json() + "\n";
        if json_to_stdout {
            std::io::stdout()
                .write_all(json.as_bytes())
                .context("cannot write the JSON to stdout")?;
        } else {
            std::fs::write(path, json)
                .with_context(|| format!("cannot write --json {}", path.display()))?;
        }
    }
    Ok(())
}
