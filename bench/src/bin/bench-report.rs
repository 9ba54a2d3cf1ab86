//! `bench-report`: turns the results directory of bench/compare.sh into the generated section
//! of docs/benchmarks.md and its SVG plots.
//!
//! ```text
//! bench-report --results bench/results/compare --doc docs/benchmarks.md \
//!   --plots docs/benchmarks
//! ```
//!
//! Writes `throughput.svg`, `latency.svg` and `cluster.svg` into the plots directory, replaces
//! the section between the `compare.sh` markers of the document (or inserts it after the first
//! paragraph) and prints the section. `--print-only` leaves every file alone.

use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use ringcache_bench::report::{plots, results::Results, section};

/// Writes the comparison section of docs/benchmarks.md from bench/compare.sh's results.
#[derive(Debug, Parser)]
struct Args {
    /// The results directory compare.sh filled.
    #[arg(long, default_value = "bench/results/compare")]
    results: PathBuf,
    /// The document whose generated section is replaced.
    #[arg(long, default_value = "docs/benchmarks.md")]
    doc: PathBuf,
    /// Where the SVG plots go; the section links them relative to the document.
    #[arg(long, default_value = "docs/benchmarks")]
    plots: PathBuf,
    /// Print the section; write neither the document nor the plots.
    #[arg(long)]
    print_only: bool,
}

/// `path` as a link from a document in `doc_dir`: relative when `path` lies below `doc_dir`.
fn link(doc_dir: &Path, path: &Path) -> String {
    let strip = |p: &Path| -> PathBuf {
        p.components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect()
    };
    let (doc_dir, path) = (strip(doc_dir), strip(path));
    path.strip_prefix(&doc_dir)
        .unwrap_or(&path)
        .to_string_lossy()
        .into_owned()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let results = Results::load(&args.results)?;
    let doc_dir = args.doc.parent().unwrap_or(Path::new(""));
    let files = [
        ("throughput.svg", plots::throughput_plot(&results)?),
        ("latency.svg", plots::latency_plot(&results)?),
        ("cluster.svg", plots::cluster_plot(&results)?),
    ];
    let links: Vec<String> = files
        .iter()
        .map(|(name, _)| link(doc_dir, &args.plots.join(name)))
        .collect();
    let [throughput, latency, cluster] = <[String; 3]>::try_from(links).expect("three plots");
    let text = section::render(
        &results,
        &section::PlotLinks {
            throughput,
            latency,
            cluster,
        },
    );
    print!("{text}");
    if args.print_only {
        return Ok(());
    }
    std::fs::create_dir_all(&args.plots)
        .with_context(|| format!("cannot create {}", args.plots.display()))?;
    for (name, svg) in &files {
        let path = args.plots.join(name);
        std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let doc = std::fs::read_to_string(&args.doc)
        .with_context(|| format!("cannot read {}", args.doc.display()))?;
    let updated = section::splice(&doc, &text)
        .with_context(|| format!("{}: the generated section", args.doc.display()))?;
    std::fs::write(&args.doc, updated)
        .with_context(|| format!("cannot write {}", args.doc.display()))?;
    eprintln!(
        "wrote {} and {} plots into {}",
        args.doc.display(),
        files.len(),
        args.plots.display()
    );
    Ok(())
}
