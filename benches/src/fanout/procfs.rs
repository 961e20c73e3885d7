//! What the kernel says a process costs: CPU time from `/proc/PID/stat` (whole process,
//! in clock ticks) and `/proc/PID/task/*/schedstat` (per thread, in nanoseconds), memory
//! from `/proc/PID/status`.
//!
//! Why both clocks: `utime + stime` come in 10 ms ticks, so over a 10 s window the
//! process total is only known to ±0.2 % of a core — as large as the whole cost of one
//! extra client. `schedstat` gives each thread's run time to the nanosecond; the sum
//! over the threads misses only threads that exited during the window, which the tick
//! total (kept as a cross-check) includes.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

/// Clock ticks per second, the unit of `utime` and `stime` (almost always 100).
pub fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// `utime + stime` of a process (all its threads, live and exited), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(parse_stat(&stat)
        .with_context(|| format!("parsing {path}"))?
        .1)
}

/// CPU nanoseconds per thread name (threads with the same name are summed), so a
/// report can say whether the cost sits in the I/O loop, the capture thread or the
/// encoder.
pub fn thread_cpu_ns(pid: u32) -> Result<BTreeMap<String, u64>> {
    let dir = format!("/proc/{pid}/task");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {dir}"))? {
        // A thread can end between the listing and the read; it is simply not counted.
        let Ok(entry) = entry else { continue };
        let (Ok(name), Ok(schedstat)) = (
            std::fs::read_to_string(entry.path().join("comm")),
            std::fs::read_to_string(entry.path().join("schedstat")),
        ) else {
            continue;
        };
        if let Some(ns) = parse_schedstat(&schedstat) {
            *out.entry(name.trim().to_owned()).or_insert(0) += ns;
        }
    }
    Ok(out)
}

/// The first field of `schedstat`: time spent on a CPU, in nanoseconds.
pub fn parse_schedstat(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().next()?.parse().ok()
}

/// Splits a `stat` line into the command name and `utime + stime`. The name is in
/// parentheses and may itself contain spaces and parentheses, so fields are counted
/// from the last `)`.
pub fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    // After ")": field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let mut fields = stat[close + 1..].split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime + stime))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set now.
    pub rss_kib: u64,
    /// Peak resident set since the process started.
    pub hwm_kib: u64,
}

pub fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status(&status).with_context(|| format!("no VmRSS/VmHWM in {path}"))
}

pub fn parse_status(status: &str) -> Option<Memory> {
    let field = |key: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_names() {
        let line = "1234 (jpeg) (enc) S 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 3 0 99 0 0";
        assert_eq!(parse_stat(line), Some(("jpeg) (enc".into(), 281)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn schedstat_run_time() {
        assert_eq!(
            parse_schedstat("539910027 57008820 63\n"),
            Some(539_910_027)
        );
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn status_fields() {
        let s = "Name:\tmecam\nVmHWM:\t   9000 kB\nVmRSS:\t    8123 kB\n";
        assert_eq!(
            parse_status(s),
            Some(Memory {
                rss_kib: 8123,
                hwm_kib: 9000
            })
        );
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(memory(me).unwrap().rss_kib > 0);
        cpu_ticks(me).unwrap();
        assert!(!thread_cpu_ns(me).unwrap().is_empty());
    }
}
