//! The generated section of docs/benchmarks.md and where it goes in the document.
//!
//! The section lives between [`BEGIN`] and [`END`]; everything outside the markers belongs to
//! the people writing the document and is never changed. Without markers the section goes
//! right after the document's first paragraph (the first block of text that is not a heading).

use std::fmt::Write as _;

use anyhow::bail;

use super::results::{Outcome, Results, Run};
use super::tables::{self, Table, display_name};

/// The line that opens the generated section.
pub const BEGIN: &str = "<!-- compare.sh: begin -->";
/// The line that closes it.
pub const END: &str = "<!-- compare.sh: end -->";

/// Prose lines wrap at this many columns, as the rest of docs/ does.
const LINE_COLUMNS_MAX: usize = 100;
/// Error kinds listed per run before the rest are summed up.
const ERROR_KINDS_SHOWN_MAX: usize = 6;

/// Where the plots are, as the section links them (relative to the document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotLinks {
    /// Plot (a): throughput, redis-server against the single node.
    pub throughput: String,
    /// Plot (b): latency percentiles.
    pub latency: String,
    /// Plot (c): the cluster against the single node by level.
    pub cluster: String,
}

/// Replaces the section between the markers in `doc`, or inserts it after the first
/// paragraph when there are no markers. `section` is the text between the markers.
///
/// # Errors
/// Only one of the markers, a marker twice, or the end marker before the begin marker: the
/// document was edited by hand and a human should look.
pub fn splice(doc: &str, section: &str) -> anyhow::Result<String> {
    let lines: Vec<&str> = doc.lines().collect();
    let find = |marker: &str| -> anyhow::Result<Option<usize>> {
        let at: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].trim() == marker)
            .collect();
        match at.as_slice() {
            [] => Ok(None),
            [i] => Ok(Some(*i)),
            _ => bail!("{marker} appears {} times in the document", at.len()),
        }
    };
    let block = format!("{BEGIN}\n{}\n{END}", section.trim_end());
    let mut out = String::with_capacity(doc.len() + block.len() + 2);
    match (find(BEGIN)?, find(END)?) {
        (Some(begin), Some(end)) if begin < end => {
            for line in &lines[..begin] {
                writeln!(out, "{line}")?;
            }
            writeln!(out, "{block}")?;
            for line in &lines[end + 1..] {
                writeln!(out, "{line}")?;
            }
        }
        (None, None) => {
            let first_text = lines
                .iter()
                .position(|l| !l.trim().is_empty() && !l.starts_with('#'));
            let insert_at = match first_text {
                Some(start) => (start..lines.len())
                    .find(|&i| lines[i].trim().is_empty())
                    .unwrap_or(lines.len()),
                None => lines.len(),
            };
            for line in &lines[..insert_at] {
                writeln!(out, "{line}")?;
            }
            writeln!(out, "\n{block}")?;
            if insert_at < lines.len() {
                for line in &lines[insert_at..] {
                    writeln!(out, "{line}")?;
                }
            }
        }
        _ => bail!("the document has {BEGIN} and {END} out of order or only one of them"),
    }
    if !doc.ends_with('\n') && out.ends_with('\n') && !lines.is_empty() {
        // Keep the document's own choice about a final newline.
        out.pop();
    }
    Ok(out)
}

/// `text` wrapped at [`LINE_COLUMNS_MAX`] columns (a word longer than that keeps its own
/// line); continuation lines start with `indent`.
pub fn wrap(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut column = 0;
    for word in text.split_whitespace() {
        let width = word.chars().count();
        if column > 0 && column + 1 + width > LINE_COLUMNS_MAX {
            out.push('\n');
            out.push_str(indent);
            column = indent.chars().count();
        } else if column > 0 {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += width;
    }
    out
}

/// A shell command broken into lines of at most [`LINE_COLUMNS_MAX`] columns before its
/// options (`--name value` stays together), with `\` continuations.
pub fn wrap_command(command: &str) -> String {
    let mut groups: Vec<String> = Vec::new();
    for token in command.split(' ').filter(|t| !t.is_empty()) {
        match groups.last_mut() {
            Some(group) if !token.starts_with('-') => {
                group.push(' ');
                group.push_str(token);
            }
            _ => groups.push(token.to_string()),
        }
    }
    // Room for the " \\" that ends a continued line.
    let width = LINE_COLUMNS_MAX - 2;
    let mut lines: Vec<String> = Vec::new();
    for group in groups {
        let fits = lines
            .last()
            .is_some_and(|l| l.chars().count() + 1 + group.chars().count() <= width);
        match lines.last_mut() {
            Some(line) if fits => {
                line.push(' ');
                line.push_str(&group);
            }
            Some(_) => lines.push(format!("  {group}")),
            None => lines.push(group),
        }
    }
    lines.join(" \\\n")
}

fn paragraph(out: &mut String, text: &str) {
    out.push_str(&wrap(text, ""));
    out.push_str("\n\n");
}

/// The first command line compare.sh recorded for a run of this table and system.
fn representative_command<'a>(results: &'a Results, table: &str, system: &str) -> Option<&'a str> {
    results
        .runs
        .iter()
        .filter(|r| r.planned.table == table && r.planned.system == system)
        .find_map(|r| r.command.as_deref())
}

fn code_block(out: &mut String, commands: &[Option<&str>]) {
    let commands: Vec<&str> = commands.iter().flatten().copied().collect();
    if commands.is_empty() {
        out.push_str("(no run of this table started)\n\n");
        return;
    }
    out.push_str("```\n");
    for c in commands {
        out.push_str(&wrap_command(c));
        out.push('\n');
    }
    out.push_str("```\n\n");
}

fn goals_line(out: &mut String, table: &Table) {
    let (met, judged) = table.goals_met();
    let failed = table
        .verdicts
        .iter()
        .filter(|v| **v == tables::Verdict::Failed)
        .count();
    let _ = write!(out, "\n**Goals met: {met} of {judged} rows**");
    if failed > 0 {
        let _ = write!(out, " ({failed} not judged: a run failed)");
    }
    out.push_str(".\n\n");
}

fn run_name(run: &Run) -> String {
    let p = &run.planned;
    let mut name = format!("{} / {} / {}", p.table, display_name(&p.system), p.op);
    if p.level.is_none() || p.pipeline != 1 {
        let _ = write!(name, " P{}", p.pipeline);
    }
    if let Some(level) = &p.level {
        let _ = write!(name, " {level}");
    }
    name
}

/// The failures and errors section's bullet lines; empty when nothing went wrong.
pub fn problems(results: &Results) -> Vec<String> {
    let mut lines = Vec::new();
    for run in &results.runs {
        match &run.outcome {
            Outcome::Failed(why) => lines.push(format!("{}: **failed**: {why}", run_name(run))),
            Outcome::Measured(m) => {
                let Some(errors) = &m.errors else { continue };
                let total: u64 = errors.values().sum();
                if total == 0 {
                    continue;
                }
                let mut kinds: Vec<(&String, &u64)> =
                    errors.iter().filter(|(_, n)| **n > 0).collect();
                kinds.sort_by(|a, b| b.1.cmp(a.1));
                let mut shown: Vec<String> = kinds
                    .iter()
                    .take(ERROR_KINDS_SHOWN_MAX)
                    .map(|(kind, n)| format!("{kind} {n}"))
                    .collect();
                if kinds.len() > ERROR_KINDS_SHOWN_MAX {
                    shown.push(format!(
                        "{} more kinds",
                        kinds.len() - ERROR_KINDS_SHOWN_MAX
                    ));
                }
                lines.push(format!(
                    "{}: **{total} failed requests** ({}; {} requests measured)",
                    run_name(run),
                    shown.join(", "),
                    m.requests
                ));
            }
        }
    }
    lines
}

/// The generated section (without the markers).
pub fn render(results: &Results, plots: &PlotLinks) -> String {
    let m = |key: &str| results.machine(key).unwrap_or("?");
    let mut out = String::new();
    out.push_str("## redis-server, one node and a 3-node cluster, side by side\n\n");
    paragraph(
        &mut out,
        "Generated by `bench/compare.sh`: its next run replaces everything between the \
         `compare.sh` markers, so change the script or `bench/src/report/`, not this text.",
    );
    paragraph(
        &mut out,
        &format!(
            "Run of {}, ringcache at {}, on {} cores ({}), Linux {}; {}; {}:",
            m("date"),
            m("git"),
            m("cores"),
            m("cpu"),
            m("kernel"),
            m("redis"),
            m("rustc")
        ),
    );
    code_block(&mut out, &[Some(m("invocation"))]);
    paragraph(
        &mut out,
        &format!(
            "Every server runs on loopback, on the same cores as the load generator, and only \
             one system is loaded at a time while the others idle. Every server was preloaded \
             with all {} keys of {} bytes, so every GET hits. Each run: {} connections, {} s of \
             warmup, then {} s measured. ringcache runs with `--storage memory` and \
             redis-server with `--save '' --appendonly no`: neither persists. The single \
             node runs `--threads {}` (redis-server executes commands on one thread); each \
             cluster node `--threads {}`, its share of the cores, as `scripts/cluster.sh` \
             starts them. CPU is user + \
             system time from `/proc`, over the measured window only. These machines are \
             shared and noisy: compare ratios within one run, not absolute numbers across runs.",
            m("keys"),
            m("value_bytes"),
            m("clients"),
            m("warmup_s"),
            m("duration_s"),
            m("single_threads"),
            m("node_threads")
        ),
    );

    let goals = tables::goals_table(results);
    out.push_str("### Single node against redis-server\n\n");
    paragraph(
        &mut out,
        "The same `ringcache-bench` load against each, one after the other: SET:GET ratio, \
         pipeline depth P. Neither gets a `CONSISTENCY` suffix: the node uses its default \
         levels and, outside a cluster, is the only replica of every key (see \
         docs/consistency.md). Both ratios are single node / redis-server. For example:",
    );
    code_block(
        &mut out,
        &[representative_command(results, "goals", tables::SINGLE)],
    );
    out.push_str(&goals.to_markdown());
    goals_line(&mut out, &goals);
    let _ = writeln!(
        out,
        "![Throughput of redis-server and the single node]({})\n",
        plots.throughput
    );
    let _ = writeln!(
        out,
        "![Latency percentiles of redis-server and the single node]({})\n",
        plots.latency
    );

    let tool = tables::tool_table(results);
    out.push_str("### The load generator is not the bottleneck\n\n");
    paragraph(
        &mut out,
        "redis-benchmark and `ringcache-bench` against the same redis-server, SET only and GET \
         only, with the same connections, pipeline depth, key space and value size \
         (redis-benchmark's `-n` is what the generator did in the same time just before). \
         Client CPU is the tool's own user + system time (the `times` builtin for \
         redis-benchmark, `client_cpu_s` for the generator); redis-benchmark counts no failed \
         requests. The commands:",
    );
    code_block(
        &mut out,
        &[
            representative_command(results, "tool", tables::REDIS_BENCHMARK),
            representative_command(results, "tool", tables::GENERATOR),
        ],
    );
    out.push_str(&tool.to_markdown());
    out.push('\n');

    let cluster = tables::cluster_table(results);
    out.push_str("### What the cluster costs, by consistency level\n\n");
    paragraph(
        &mut out,
        "SET only and GET only at each level, pipeline 1, against the 3-node cluster (the \
         generator spreads its connections over all three nodes, as a load balancer would) and \
         against the single node with the same `CONSISTENCY` suffix. Server CPU is summed over \
         the system's server processes (three for the cluster); \"server + client\" adds the \
         generator's own CPU. The goals bound the cluster's server CPU per request against the \
         single node's: ≤ 3.0× for SET QUORUM, ≤ 2.0× for GET QUORUM. For example:",
    );
    code_block(
        &mut out,
        &[representative_command(results, "cluster", tables::CLUSTER)],
    );
    out.push_str(&cluster.to_markdown());
    goals_line(&mut out, &cluster);
    let _ = writeln!(
        out,
        "![Throughput and server CPU per request, cluster against single node]({})\n",
        plots.cluster
    );

    out.push_str("### Failures and errors\n\n");
    let problems = problems(results);
    if problems.is_empty() {
        out.push_str("No run failed and no request failed.\n");
    } else {
        for line in problems {
            let _ = writeln!(out, "{}", wrap(&format!("- {line}"), "  "));
        }
    }
    if !results.server_notes.is_empty() {
        out.push_str("\nWhat the servers reported after the runs:\n\n");
        for note in &results.server_notes {
            let _ = writeln!(out, "{}", wrap(&format!("- {note}"), "  "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::results::Outcome;
    use crate::report::tables::tests::goals_results;

    const DOC: &str = "# Benchmarks\n\nFirst paragraph,\nstill first.\n\n## Later\n\ntext\n";

    #[test]
    fn without_markers_the_section_goes_after_the_first_paragraph() {
        let out = splice(DOC, "NEW").unwrap();
        assert_eq!(
            out,
            "# Benchmarks\n\nFirst paragraph,\nstill first.\n\n\
             <!-- compare.sh: begin -->\nNEW\n<!-- compare.sh: end -->\n\n## Later\n\ntext\n"
        );
    }

    #[test]
    fn with_markers_only_the_text_between_them_changes() {
        let once = splice(DOC, "OLD\nlines").unwrap();
        let twice = splice(&once, "NEW").unwrap();
        assert_eq!(twice, splice(DOC, "NEW").unwrap());
        assert!(!twice.contains("OLD"));
        assert_eq!(
            splice(&twice, "NEW").unwrap(),
            twice,
            "splicing is idempotent"
        );
    }

    #[test]
    fn a_lone_or_repeated_marker_is_an_error() {
        assert!(splice(&format!("{DOC}{BEGIN}\n"), "x").is_err());
        assert!(splice(&format!("{END}\n{BEGIN}\n"), "x").is_err());
        let doubled = format!("{BEGIN}\n{END}\n{BEGIN}\n{END}\n");
        assert!(splice(&doubled, "x").is_err());
    }

    #[test]
    fn a_document_of_one_paragraph_gets_the_section_at_the_end() {
        assert_eq!(
            splice("# T\n\ntext", "S").unwrap(),
            "# T\n\ntext\n\n<!-- compare.sh: begin -->\nS\n<!-- compare.sh: end -->"
        );
    }

    fn links() -> PlotLinks {
        PlotLinks {
            throughput: "benchmarks/throughput.svg".into(),
            latency: "benchmarks/latency.svg".into(),
            cluster: "benchmarks/cluster.svg".into(),
        }
    }

    #[test]
    fn the_section_has_the_tables_the_plots_the_command_and_the_failures() {
        let mut results = goals_results();
        if let Outcome::Measured(m) = &mut results.runs[1].outcome {
            m.errors = Some([("TIMEOUT".to_string(), 7)].into());
        }
        results
            .server_notes
            .push("node 1: requests_timeout:7".into());
        let section = render(&results, &links());
        for text in [
            "### Single node against redis-server",
            "| 1:1 | 1 | 100000 | 110000 | 1.10 |",
            "**Goals met: 1 of 4 rows** (1 not judged: a run failed).",
            "![Throughput of redis-server and the single node](benchmarks/throughput.svg)",
            "](benchmarks/latency.svg)",
            "](benchmarks/cluster.svg)",
            "```\nringcache-bench ...\n```",
            "- goals / single node / 1:10 P16: **failed**: exit status 1",
            "- goals / single node / 1:1 P1: **7 failed requests** (TIMEOUT 7; 100000",
            "- node 1: requests_timeout:7",
        ] {
            assert!(section.contains(text), "no {text:?} in:\n{section}");
        }
    }

    #[test]
    fn prose_wraps_at_100_columns_and_a_long_word_keeps_its_own_line() {
        let text = "word ".repeat(50);
        let wrapped = wrap(&text, "  ");
        assert!(
            wrapped.lines().all(|l| l.chars().count() <= 100),
            "{wrapped}"
        );
        assert!(wrapped.lines().skip(1).all(|l| l.starts_with("  word")));
        let long = "x".repeat(120);
        assert_eq!(wrap(&format!("a {long} b"), ""), format!("a\n{long}\nb"));
    }

    #[test]
    fn a_long_command_breaks_before_options_with_continuations() {
        let command = format!(
            "ringcache-bench --servers {} --clients 50 --quiet",
            "a,".repeat(35)
        );
        let wrapped = wrap_command(&command);
        let lines: Vec<&str> = wrapped.lines().collect();
        assert_eq!(lines.len(), 2, "{wrapped}");
        assert!(lines[0].ends_with(" \\") && lines[0].chars().count() <= 100);
        assert_eq!(lines[1], "  --clients 50 --quiet");
        assert_eq!(wrapped.replace(" \\\n  ", " "), command);
        assert_eq!(wrap_command("redis-cli PING"), "redis-cli PING");
    }

    #[test]
    fn a_clean_run_says_so() {
        let mut results = goals_results();
        results.runs.pop();
        let section = render(&results, &links());
        assert!(
            section.contains("No run failed and no request failed."),
            "{section}"
        );
    }
}
