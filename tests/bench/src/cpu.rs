//! CPU accounting and placement: per-core busy time from `/proc/stat`, a
//! process's CPU time from `/proc/<pid>/stat`, its memory from
//! `/proc/<pid>/status`, and pinning threads to cores.

use std::time::Instant;

use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;

use crate::Error;

/// Kernel clock ticks per second in `/proc` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Per-core counters of `/proc/stat`, in ticks.
#[derive(Clone, Debug, Default)]
pub struct CoreTimes {
    /// user + nice
    pub user: u64,
    /// system
    pub system: u64,
    /// irq + softirq
    pub interrupts: u64,
    /// idle + iowait
    pub idle: u64,
    /// steal (time the hypervisor gave to someone else)
    pub steal: u64,
}

impl CoreTimes {
    fn total(&self) -> u64 {
        self.user + self.system + self.interrupts + self.idle + self.steal
    }
}

/// Reads the counters of every core.
pub fn core_times() -> Result<Vec<CoreTimes>, Error> {
    let text = std::fs::read_to_string("/proc/stat").map_err(Error::io("reading /proc/stat"))?;
    Ok(parse_core_times(&text))
}

fn parse_core_times(text: &str) -> Vec<CoreTimes> {
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap_or(0))
                .chain(std::iter::repeat(0))
                .take(8)
                .collect();
            CoreTimes {
                user: v[0] + v[1],
                system: v[2],
                idle: v[3] + v[4],
                interrupts: v[5] + v[6],
                steal: v[7],
            }
        })
        .collect()
}

/// How a core spent an interval, in percent of the interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CoreUse {
    /// user + system + irq + softirq
    pub busy: f64,
    /// of which irq + softirq (kernel packet processing)
    pub softirq: f64,
    /// stolen by the hypervisor
    pub steal: f64,
}

/// The use of core `core` between two readings.
pub fn core_use(before: &[CoreTimes], after: &[CoreTimes], core: usize) -> CoreUse {
    let (Some(a), Some(b)) = (before.get(core), after.get(core)) else {
        return CoreUse::default();
    };
    let total = b.total().saturating_sub(a.total()).max(1) as f64;
    let d = |x: u64, y: u64| y.saturating_sub(x) as f64 * 100.0 / total;
    CoreUse {
        busy: d(
            a.user + a.system + a.interrupts,
            b.user + b.system + b.interrupts,
        ),
        softirq: d(a.interrupts, b.interrupts),
        steal: d(a.steal, b.steal),
    }
}

/// CPU time (user + system, all threads) of process `pid`, in seconds.
pub fn process_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its end.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// The CPU time of a device's processes at an instant, to compute their
/// use over an interval.
#[derive(Clone, Copy, Debug)]
pub struct ProcessMark {
    at: Instant,
    seconds: Option<f64>,
}

impl ProcessMark {
    /// Reads the CPU time of `pids` now, summed (none when there is no
    /// process, or one of them is gone).
    pub fn now(pids: &[u32]) -> Self {
        let seconds = if pids.is_empty() {
            None
        } else {
            pids.iter()
                .map(|&pid| process_seconds(pid))
                .sum::<Option<f64>>()
        };
        Self {
            at: Instant::now(),
            seconds,
        }
    }

    /// Percent of one core used between `self` and `later`.
    pub fn percent_until(&self, later: &ProcessMark) -> Option<f64> {
        let elapsed = later.at.duration_since(self.at).as_secs_f64();
        Some((later.seconds? - self.seconds?) * 100.0 / elapsed.max(1e-9))
    }
}

/// Resident memory of `pid`: (current VmRSS, peak VmHWM), in KiB.
pub fn resident_kib(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Pins the calling thread to `core`.
pub fn pin_current_thread(core: usize) -> Result<(), Error> {
    let mut set = CpuSet::new();
    set.set(core)
        .map_err(|e| Error::Options(format!("core {core}: {e}")))?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|e| Error::Io {
        what: format!("pinning a thread to core {core}"),
        source: e.into(),
    })
}

/// Pins every thread of process `pid` to `core` (threads started later
/// inherit the mask from the thread that starts them).
pub fn pin_process(pid: u32, core: usize) -> Result<(), Error> {
    let mut set = CpuSet::new();
    set.set(core)
        .map_err(|e| Error::Options(format!("core {core}: {e}")))?;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(Error::io(format!("listing the threads of {pid}")))?;
    for task in tasks.flatten() {
        if let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) {
            // A thread may have exited meanwhile: not an error.
            let _ = sched_setaffinity(Pid::from_raw(tid), &set);
        }
    }
    Ok(())
}

/// Number of online cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_lines_give_per_core_times_and_use() {
        let before = parse_core_times(
            "cpu  9 9 9 9 9 9 9 9 0 0\ncpu0 10 0 20 100 0 0 5 0 0 0\ncpu1 0 0 0 100 0 0 0 0 0 0\nintr 1\n",
        );
        let after = parse_core_times(
            "cpu  9 9 9 9 9 9 9 9 0 0\ncpu0 40 0 40 120 0 0 25 10 0 0\ncpu1 0 0 0 200 0 0 0 0 0 0\n",
        );
        assert_eq!(before.len(), 2);
        let u = core_use(&before, &after, 0);
        assert!((u.busy - 70.0).abs() < 1e-9, "{u:?}");
        assert!((u.softirq - 20.0).abs() < 1e-9);
        assert!((u.steal - 10.0).abs() < 1e-9);
        assert_eq!(core_use(&before, &after, 1).busy, 0.0);
        assert_eq!(core_use(&before, &after, 7), CoreUse::default());
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(process_seconds(pid).is_some());
        let (rss, peak) = resident_kib(pid).expect("status");
        assert!(rss > 0 && peak >= rss);
    }
}
