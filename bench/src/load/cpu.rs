//! CPU time of processes from `/proc/<pid>/stat`: user + system time, in clock ticks.

use std::fs;

use anyhow::Context;

/// Which process to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// The generator itself (all its threads).
    Myself,
    /// Another process, by pid.
    Pid(u32),
}

/// utime + stime of a `/proc/<pid>/stat` line, in clock ticks.
///
/// The command name (field 2) is in parentheses and may hold spaces and parentheses itself,
/// so the fields are counted from the last `)`: then state is field 3, utime 14, stime 15.
///
/// # Errors
/// The line does not have that shape.
pub fn parse_stat_ticks(stat: &str) -> Result<u64, String> {
    let (_, rest) = stat
        .rsplit_once(')')
        .ok_or_else(|| "no ')' after the command name".to_string())?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // fields[0] is field 3 (state), so field k is fields[k - 3].
    let field = |k: usize| -> Result<u64, String> {
        let text = fields
            .get(k - 3)
            .ok_or_else(|| format!("only {} fields after the command name", fields.len()))?;
        text.parse()
            .map_err(|_| format!("field {k} is not a number: {text:?}"))
    };
    Ok(field(14)? + field(15)?)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), 100 if the call fails.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it takes no pointer and touches no
    // memory of ours. The workspace denies unsafe code; this one call has no safe wrapper in
    // std, and the alternative (running `getconf CLK_TCK`) spawns a process.
    #[allow(unsafe_code)]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// The CPU ticks `process` has used so far.
///
/// # Errors
/// The process is gone (or its stat cannot be read or parsed), said with its pid.
pub fn ticks(process: Process) -> anyhow::Result<u64> {
    let (path, what) = match process {
        Process::Myself => ("/proc/self/stat".to_string(), "the generator".to_string()),
        Process::Pid(pid) => (format!("/proc/{pid}/stat"), format!("process {pid}")),
    };
    let stat = fs::read_to_string(&path)
        .with_context(|| format!("{what} cannot be measured: is it gone? (reading {path})"))?;
    parse_stat_ticks(&stat).map_err(|why| anyhow::anyhow!("{path} of {what}: {why}"))
}

/// The ticks of each of `processes`, in order.
///
/// # Errors
/// See [`ticks`].
pub fn sample(processes: &[Process]) -> anyhow::Result<Vec<u64>> {
    processes.iter().map(|&p| ticks(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_fields_fourteen_and_fifteen() {
        let stat = "1234 (ringcache) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 \
                    100 200000000 3000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0";
        assert_eq!(parse_stat_ticks(stat), Ok(325));
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_is_skipped() {
        let stat = "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_stat_ticks(stat), Ok(7));
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse_stat_ticks("").is_err());
        assert!(
            parse_stat_ticks("1 (x) S 1 2 3")
                .unwrap_err()
                .contains("only 4 fields")
        );
        let bad = "1 (x) S 1 1 1 0 -1 0 0 0 0 0 ten 4 0";
        assert!(parse_stat_ticks(bad).unwrap_err().contains("field 14"));
    }

    #[test]
    fn the_generator_and_a_gone_process_are_told_apart() {
        assert!(ticks(Process::Myself).is_ok());
        assert!(ticks_per_second() > 0);
        // Pid 0 has no /proc entry.
        let error = ticks(Process::Pid(0)).unwrap_err();
        assert!(
            format!("{error:#}").contains("process 0 cannot be measured"),
            "{error:#}"
        );
    }
}
