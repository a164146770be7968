//! What `/proc` says about a process (memory in `status`, CPU time in `stat`),
//! about every process of one command (PostgreSQL's backends) and about the
//! whole machine (busy CPU time in `/proc/stat`). Linux only; callers treat
//! failures as "not available".

use anyhow::Context;
use std::collections::HashMap;
use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on every
/// mainstream Linux ABI).
const USER_HZ: u64 = 100;

/// A `kB` line of `/proc/<pid>/status`, e.g. `VmRSS:   10240 kB`, in KiB.
pub fn status_kib(pid: u32, key: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no {key} in {path}"))
}

/// User plus system CPU time of all of a process's threads so far (not its children).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name may hold spaces: fields are counted after its closing parenthesis,
    // where field 3 (state) comes first, so utime (14) and stime (15) are at 11 and 12.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("unexpected {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("unexpected {path}"))
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(total * 1000 / USER_HZ))
}

/// Bytes a process has caused to be written to storage so far (`write_bytes` of
/// `/proc/<pid>/io`: files, not sockets), as far as the kernel accounts them when
/// pages are dirtied.
pub fn storage_writes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/io");
    let io = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no write_bytes in {path}"))
}

/// Busy CPU time of the whole machine so far, all cores together: user, nice,
/// system, irq, softirq and steal from the `cpu` line of `/proc/stat`.
pub fn machine_busy() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .context("no cpu line in /proc/stat")?
        .split_whitespace()
        .map(|v| v.parse().context("unexpected /proc/stat"))
        .collect::<anyhow::Result<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|&i| fields.get(i).copied().unwrap_or(0))
        .sum();
    Ok(Duration::from_millis(busy * 1000 / USER_HZ))
}

/// The machine's load averages over 1, 5 and 15 minutes, as `/proc/loadavg`
/// gives them (`3.58 2.63 2.46`).
pub fn load_average() -> anyhow::Result<String> {
    let text = std::fs::read_to_string("/proc/loadavg").context("reading /proc/loadavg")?;
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    if fields.len() < 3 {
        anyhow::bail!("unexpected /proc/loadavg: {text:?}");
    }
    Ok(fields.join(" "))
}

/// The command name (`comm`) of every PostgreSQL process, the postmaster and each
/// backend alike (their titles change, their `comm` does not).
pub const POSTGRES_COMMAND: &str = "postgres";

/// CPU time so far of every process whose command name is `comm`, by process id.
/// Processes that vanish while `/proc` is read are skipped.
pub fn cpu_by_command(comm: &str) -> anyhow::Result<HashMap<u32, Duration>> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir("/proc").context("listing /proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let name = stat
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map(|(name, _)| name);
        if name == Some(comm)
            && let Ok(cpu) = cpu_time(pid)
        {
            out.insert(pid, cpu);
        }
    }
    Ok(out)
}

/// CPU time used between two [`cpu_by_command`] readings: by the processes in
/// `after`, less what each had used at `before` (nothing, for one started since).
/// What a process that ended in between used after `before` is not counted.
pub fn cpu_delta(before: &HashMap<u32, Duration>, after: &HashMap<u32, Duration>) -> Duration {
    after
        .iter()
        .map(|(pid, cpu)| cpu.saturating_sub(before.get(pid).copied().unwrap_or_default()))
        .sum()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn this_process_is_found_by_its_command_name() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let (_, rest) = stat.split_once('(').unwrap();
        let (comm, _) = rest.rsplit_once(')').unwrap();
        let found = cpu_by_command(comm).unwrap();
        assert!(found.contains_key(&std::process::id()));
    }

    #[test]
    fn cpu_deltas_count_new_processes_whole() {
        let s = Duration::from_secs;
        let before = HashMap::from([(1, s(5)), (2, s(7))]);
        let after = HashMap::from([(1, s(6)), (3, s(2))]);
        assert_eq!(cpu_delta(&before, &after), s(3));
    }
}
