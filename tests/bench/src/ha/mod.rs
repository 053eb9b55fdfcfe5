//! `make bench-ha`: the loss window of paced streams during each gateway
//! HA failure, repeated, in mode Fast, in mode STP (kernel 802.1D) and for
//! a keepalived VRRP baseline with the same advert interval, in one run on
//! this machine.
//!
//! ```text
//!  for mode in [Fast (hello, dead), STP, keepalived]:
//!    build its lab (and control plane, operator, agents)
//!    for failure in its failures, repetition in 1..=N:
//!      start paced one-way UDP streams (R per second) in both directions:
//!        r1 <-> r2  (a remote instance and one on the same member's other VLAN)
//!        r1 <-> r3  (and one on a third node, across the overlay)
//!        k1 <-> k2  (keepalived: across the two routers' LANs)
//!      wait 2 s, inject the failure, keep streaming for the window
//!      loss window per stream = longest gap after the failure, less one interval
//!      undo the failure, wait until the first member is active again and traffic flows
//!  report: min / median / max per mode, failure and stream (target/bench/ha.md)
//! ```

mod keepalived;
pub mod stream;
mod trunkline;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::Error;
use crate::modes::agent::Binaries;
use stream::{Stream, now_secs};
use trunkline::{Failure, Group, R1, R2, R3};

/// What to run.
#[derive(Clone, Debug)]
pub struct HaOptions {
    /// Repetitions of each failure.
    pub repetitions: usize,
    /// Datagrams per second of each stream.
    pub rate: u32,
    /// Mode Fast's (and keepalived's advert) interval, ms.
    pub hello: u64,
    /// Mode Fast's dead time, ms.
    pub dead: u64,
    /// Which modes: `fast`, `stp`, `keepalived`.
    pub modes: Vec<String>,
    /// The product's binaries.
    pub binaries: Binaries,
    /// This benchmark's own executable (pacers and sinks).
    pub bench: PathBuf,
    /// Where the report goes.
    pub out: PathBuf,
    /// The command line shown in the report.
    pub command: String,
}

/// The loss windows of one stream over the repetitions of one failure.
#[derive(Clone, Debug, Default)]
pub struct Series {
    /// Mode (`Fast`, `STP`, `keepalived`).
    pub mode: String,
    /// The failure.
    pub failure: String,
    /// The stream.
    pub stream: String,
    /// Seconds per repetition; `None`: no traffic after the failure.
    pub windows: Vec<Option<f64>>,
}

impl Series {
    fn stats(&self) -> Option<(f64, f64, f64)> {
        let mut w: Vec<f64> = self.windows.iter().copied().collect::<Option<Vec<_>>>()?;
        if w.is_empty() {
            return None;
        }
        w.sort_by(f64::total_cmp);
        let median = if w.len() % 2 == 1 {
            w[w.len() / 2]
        } else {
            (w[w.len() / 2 - 1] + w[w.len() / 2]) / 2.0
        };
        Some((w[0], median, w[w.len() - 1]))
    }
}

fn series<'a>(all: &'a mut Vec<Series>, mode: &str, failure: &str, stream: &str) -> &'a mut Series {
    if let Some(i) = all
        .iter()
        .position(|s| s.mode == mode && s.failure == failure && s.stream == stream)
    {
        return &mut all[i];
    }
    all.push(Series {
        mode: mode.to_owned(),
        failure: failure.to_owned(),
        stream: stream.to_owned(),
        windows: Vec::new(),
    });
    let last = all.len() - 1;
    &mut all[last]
}

/// Runs every repetition of every failure of every mode; writes `ha.md`.
pub async fn run(options: &HaOptions) -> Result<Vec<Series>, Error> {
    std::fs::create_dir_all(&options.out).map_err(Error::io("the output directory"))?;
    let dir = options.out.join("ha-state");
    let mut all: Vec<Series> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for mode in &options.modes {
        let result = match mode.as_str() {
            "fast" => {
                let group = Group::Fast {
                    hello: options.hello,
                    dead: options.dead,
                };
                trunkline_mode(options, &dir.join("fast"), group, &mut all).await
            }
            "stp" => trunkline_mode(options, &dir.join("stp"), Group::Stp, &mut all).await,
            "keepalived" => keepalived_mode(options, &dir, &mut all).await,
            other => Err(Error::Options(format!(
                "unknown HA mode {other}: fast, stp or keepalived"
            ))),
        };
        if let Err(e) = result {
            eprintln!("[bench-ha] {mode} could not run: {e}");
            notes.push(format!("{mode} could not run: {e}"));
        }
        write_report(options, &all, &notes)?;
    }
    Ok(all)
}

async fn trunkline_mode(
    options: &HaOptions,
    dir: &std::path::Path,
    group: Group,
    all: &mut Vec<Series>,
) -> Result<(), Error> {
    let (mode, window, failures) = match group {
        Group::Fast { .. } => (
            "Fast",
            4.0,
            vec![
                Failure::AgentKilled,
                Failure::TrunkDown,
                Failure::FabricDown,
            ],
        ),
        Group::Stp => (
            "STP",
            30.0,
            vec![
                Failure::AgentKilled,
                Failure::TrunkDown,
                Failure::FabricDown,
            ],
        ),
    };
    eprintln!("[bench-ha] mode {mode}: starting the rig");
    let mut rig = trunkline::Rig::start(dir, &options.binaries, group).await?;
    let pairs = [
        ("r1 -> r2 (other VLAN)", "r1", "r2", R2.ip),
        ("r2 -> r1 (other VLAN)", "r2", "r1", R1.ip),
        ("r1 -> r3 (overlay)", "r1", "r3", R3.ip),
        ("r3 -> r1 (overlay)", "r3", "r1", R1.ip),
    ];
    for failure in failures {
        for rep in 1..=options.repetitions {
            let seconds = 2.0 + window;
            let mut streams = Vec::new();
            for (i, (name, from, to, ip)) in pairs.iter().enumerate() {
                streams.push(Stream::start(
                    name,
                    &options.bench,
                    (&rig.lab.namespace(from), &rig.lab.namespace(to), ip),
                    i as u16,
                    options.rate,
                    seconds,
                )?);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let failed_at = now_secs();
            rig.fail(failure);
            let mut line = format!("[bench-ha] {mode} {} #{rep}:", failure.label());
            for (i, stream) in streams.into_iter().enumerate() {
                let keep = arrivals_file(dir, &format!("{mode}-{failure:?}-{rep}-{i}"))?;
                let (name, w) =
                    tokio::task::spawn_blocking(move || stream.finish(failed_at, &keep))
                        .await
                        .map_err(|e| Error::Options(e.to_string()))??;
                let _ = write!(
                    line,
                    " {name} {}",
                    w.map_or("none".to_owned(), |w| format!("{:.0} ms", w * 1000.0))
                );
                series(all, mode, failure.label(), &name).windows.push(w);
            }
            eprintln!("{line}");
            rig.restore(failure, Duration::from_secs(120)).await?;
        }
    }
    eprintln!("[bench-ha] mode {mode}: done (group {})", rig.group());
    Ok(())
}

async fn keepalived_mode(
    options: &HaOptions,
    dir: &std::path::Path,
    all: &mut Vec<Series>,
) -> Result<(), Error> {
    eprintln!("[bench-ha] keepalived: starting the baseline");
    let advert = Duration::from_millis(options.hello);
    let baseline = keepalived::Baseline::start(dir, advert).await?;
    let pairs = [
        ("k1 -> k2 (across the routers)", "k1", "k2", "192.168.51.10"),
        ("k2 -> k1 (across the routers)", "k2", "k1", "192.168.50.10"),
    ];
    for failure in [
        keepalived::Failure::RouterDown,
        keepalived::Failure::LinkDown,
    ] {
        for rep in 1..=options.repetitions {
            let seconds = 6.0;
            let mut streams = Vec::new();
            for (i, (name, from, to, ip)) in pairs.iter().enumerate() {
                streams.push(Stream::start(
                    name,
                    &options.bench,
                    (
                        &baseline.lab.namespace(from),
                        &baseline.lab.namespace(to),
                        ip,
                    ),
                    i as u16,
                    options.rate,
                    seconds,
                )?);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let failed_at = now_secs();
            baseline.fail(failure);
            let mut line = format!("[bench-ha] keepalived {} #{rep}:", failure.label());
            for (i, stream) in streams.into_iter().enumerate() {
                let keep = arrivals_file(dir, &format!("keepalived-{failure:?}-{rep}-{i}"))?;
                let (name, w) =
                    tokio::task::spawn_blocking(move || stream.finish(failed_at, &keep))
                        .await
                        .map_err(|e| Error::Options(e.to_string()))??;
                let _ = write!(
                    line,
                    " {name} {}",
                    w.map_or("none".to_owned(), |w| format!("{:.0} ms", w * 1000.0))
                );
                series(all, "keepalived", failure.label(), &name)
                    .windows
                    .push(w);
            }
            eprintln!("{line}");
            baseline.restore(Duration::from_secs(60)).await?;
        }
    }
    Ok(())
}

/// Where the arrival times of one stream of one run are kept.
fn arrivals_file(dir: &std::path::Path, name: &str) -> Result<PathBuf, Error> {
    let dir = dir.join("arrivals");
    std::fs::create_dir_all(&dir).map_err(Error::io("the arrivals directory"))?;
    Ok(dir.join(format!("{name}.txt")))
}

fn write_report(options: &HaOptions, all: &[Series], notes: &[String]) -> Result<(), Error> {
    let mut md = String::new();
    let _ = writeln!(md, "# Gateway HA: loss windows\n");
    let _ = writeln!(md, "Command: `{}`\n", options.command);
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".to_owned())
    };
    let _ = writeln!(
        md,
        "Machine: kernel {}, {} CPUs, load average at the end {}.\n",
        read("/proc/sys/kernel/osrelease"),
        std::thread::available_parallelism().map_or(0, usize::from),
        read("/proc/loadavg")
    );
    let _ = writeln!(
        md,
        "{} repetitions per failure; one-way UDP streams of {} datagrams/s; the loss window is the longest gap between two arrivals after the failure, less one interval. Mode Fast: hello {} ms, dead {} ms, preempt on. Mode STP: the switch is a Linux bridge with kernel 802.1D at the fastest legal timers (hello 1 s, max age 6 s, forward delay 4 s). keepalived: Debian's, VRRPv3, advert {} ms, two routers, untagged LANs, one sync group. Each failure is injected on the active member (the VRRP master) and undone before the next repetition (the first member takes the role back).\n",
        options.repetitions, options.rate, options.hello, options.dead, options.hello
    );
    let _ = writeln!(
        md,
        "| mode | failure | stream | min ms | median ms | max ms | runs |\n|---|---|---|---:|---:|---:|---:|"
    );
    for s in all {
        let (min, median, max) = match s.stats() {
            Some((a, b, c)) => (
                format!("{:.0}", a * 1000.0),
                format!("{:.0}", b * 1000.0),
                format!("{:.0}", c * 1000.0),
            ),
            None => ("-".into(), "not restored".into(), "-".into()),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {min} | {median} | {max} | {} |",
            s.mode,
            s.failure,
            s.stream,
            s.windows.len()
        );
    }
    for n in notes {
        let _ = writeln!(md, "\n- {n}");
    }
    let path = options.out.join("ha.md");
    std::fs::write(&path, md).map_err(Error::io("writing ha.md"))?;
    eprintln!("[bench-ha] report: {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_a_series() {
        let s = Series {
            windows: vec![Some(0.3), Some(0.1), Some(0.2), Some(0.4)],
            ..Series::default()
        };
        assert_eq!(s.stats(), Some((0.1, 0.25, 0.4)));
        let lost = Series {
            windows: vec![Some(0.3), None],
            ..Series::default()
        };
        assert_eq!(lost.stats(), None, "a run that never recovered");
    }
}
