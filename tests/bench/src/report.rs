//! The benchmark's results: per-run samples, their summary (min / median /
//! max over the interleaved rounds), the Markdown report and the plot.

use std::fmt::Write as _;
use std::path::Path;

use crate::Error;
use crate::cpu::CoreUse;
use crate::frame::Flows;
use crate::modes::Mode;
use crate::scale::ScaleResult;

/// A translating device's flow counters ((l), (m)); none: not available.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounts {
    /// Flows created.
    pub created: Option<u64>,
    /// First packets of new flows refused: (l) its allocation failures
    /// (table full, no free port); (m) conntrack's `drop` and
    /// `insert_failed`.
    pub refused: Option<u64>,
    /// Flows removed early to make room ((m): conntrack's `early_drop`;
    /// (l) never evicts).
    pub evicted: Option<u64>,
    /// Flows in the table.
    pub active: Option<u64>,
}

impl FlowCounts {
    /// The counters' growth from `earlier` to `self`; `active` is
    /// `self`'s.
    pub fn since(&self, earlier: &FlowCounts) -> FlowCounts {
        let d = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?));
        FlowCounts {
            created: d(self.created, earlier.created),
            refused: d(self.refused, earlier.refused),
            evicted: d(self.evicted, earlier.evicted),
            active: self.active,
        }
    }
}

/// One measurement: one mode, one frame size, one round.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Round, from 1.
    pub round: usize,
    /// Frame size, bytes.
    pub size: usize,
    /// The device under test.
    pub mode: Mode,
    /// The flows the generator sent: [`Flows::New`] for a new-flow run,
    /// which the forwarding tables leave out (see [`Report::markdown`]).
    pub flows: Flows,
    /// The device's flow counters over the measured window ((l), (m)).
    pub flow_counts: Option<FlowCounts>,
    /// Length of the measured window, s.
    pub seconds: f64,
    /// Valid forwarded frames counted by the sink.
    pub forwarded: u64,
    /// Of those, with the TTL decremented.
    pub ttl_done: u64,
    /// Other frames at the sink.
    pub other: u64,
    /// Frames the generator sent, warm-up included.
    pub offered: u64,
    /// How long the generator ran, warm-up included, s.
    pub offered_seconds: f64,
    /// Use of the device's core.
    pub dut_core: CoreUse,
    /// Use of the generator's core.
    pub generator_core: CoreUse,
    /// CPU of the device's process, % of one core (none: kernel only).
    pub process_cpu: Option<f64>,
}

impl Sample {
    /// Forwarded Mpps.
    pub fn mpps(&self) -> f64 {
        self.forwarded as f64 / self.seconds / 1e6
    }

    /// Offered Mpps.
    pub fn offered_mpps(&self) -> f64 {
        self.offered as f64 / self.offered_seconds.max(1e-9) / 1e6
    }

    /// Whether it is a new-flow run (every frame a new flow).
    pub fn new_flows(&self) -> bool {
        self.flows == Flows::New
    }
}

/// Min, median and max of some values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spread {
    /// Smallest.
    pub min: f64,
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; all zero when empty.
    pub fn of(values: &[f64]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            min: v[0],
            median,
            max: v[n - 1],
        }
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = values.collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The runs of one mode at one frame size, summarised.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The mode.
    pub mode: Mode,
    /// Frame size, bytes.
    pub size: usize,
    /// Runs.
    pub runs: usize,
    /// Forwarded Mpps.
    pub mpps: Spread,
    /// Offered Mpps, mean.
    pub offered_mpps: f64,
    /// Device core busy %, mean.
    pub dut_busy: f64,
    /// Of which softirq %, mean.
    pub dut_softirq: f64,
    /// Steal on the device's core %, mean.
    pub dut_steal: f64,
    /// Device process CPU % of one core, mean.
    pub process_cpu: Option<f64>,
    /// Share of valid frames with the TTL decremented.
    pub ttl_share: f64,
    /// Other (invalid) frames at the sink, total.
    pub other: u64,
}

/// Summarises `samples` per (mode, size), leaving out new-flow runs.
pub fn summarise(samples: &[Sample], modes: &[Mode], sizes: &[usize]) -> Vec<Summary> {
    let mut out = Vec::new();
    for &size in sizes {
        for &mode in modes {
            let runs: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.mode == mode && s.size == size && !s.new_flows())
                .collect();
            if runs.is_empty() {
                continue;
            }
            let mpps: Vec<f64> = runs.iter().map(|s| s.mpps()).collect();
            let forwarded: u64 = runs.iter().map(|s| s.forwarded).sum();
            let ttl: u64 = runs.iter().map(|s| s.ttl_done).sum();
            out.push(Summary {
                mode,
                size,
                runs: runs.len(),
                mpps: Spread::of(&mpps),
                offered_mpps: mean(runs.iter().map(|s| s.offered_mpps())).unwrap_or(0.0),
                dut_busy: mean(runs.iter().map(|s| s.dut_core.busy)).unwrap_or(0.0),
                dut_softirq: mean(runs.iter().map(|s| s.dut_core.softirq)).unwrap_or(0.0),
                dut_steal: mean(runs.iter().map(|s| s.dut_core.steal)).unwrap_or(0.0),
                process_cpu: mean(runs.iter().filter_map(|s| s.process_cpu)),
                ttl_share: if forwarded == 0 {
                    0.0
                } else {
                    ttl as f64 / forwarded as f64
                },
                other: runs.iter().map(|s| s.other).sum(),
            });
        }
    }
    out
}

/// Ratio of `mode` to `other` at `size`: of the medians, and the range of
/// the per-round ratios (the two runs of a round are minutes apart at most).
/// New-flow runs are left out ([`new_flow_ratio`] compares those).
pub fn ratio(samples: &[Sample], size: usize, mode: Mode, other: Mode) -> Option<(f64, Spread)> {
    ratio_of(samples, size, mode, other, false)
}

/// As [`ratio`], of the new-flow runs only.
pub fn new_flow_ratio(
    samples: &[Sample],
    size: usize,
    mode: Mode,
    other: Mode,
) -> Option<(f64, Spread)> {
    ratio_of(samples, size, mode, other, true)
}

fn ratio_of(
    samples: &[Sample],
    size: usize,
    mode: Mode,
    other: Mode,
    new_flows: bool,
) -> Option<(f64, Spread)> {
    let of = |mode: Mode| -> Vec<&Sample> {
        samples
            .iter()
            .filter(|s| s.mode == mode && s.size == size && s.new_flows() == new_flows)
            .collect()
    };
    let (a, o) = (of(mode), of(other));
    let median = |v: &[&Sample]| Spread::of(&v.iter().map(|s| s.mpps()).collect::<Vec<_>>()).median;
    let (ma, mo) = (median(&a), median(&o));
    if a.is_empty() || o.is_empty() || mo == 0.0 {
        return None;
    }
    let paired: Vec<f64> = a
        .iter()
        .filter_map(|sa| {
            let so = o.iter().find(|so| so.round == sa.round)?;
            (so.mpps() > 0.0).then(|| sa.mpps() / so.mpps())
        })
        .collect();
    Some((ma / mo, Spread::of(&paired)))
}

/// Facts about the machine and the run.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    /// `uname -r`.
    pub kernel: String,
    /// CPU model.
    pub cpu: String,
    /// Online cores.
    pub cores: usize,
    /// /proc/loadavg before the runs.
    pub load_before: String,
    /// /proc/loadavg after the runs.
    pub load_after: String,
}

impl Machine {
    /// Reads the machine's facts now (load_after is filled in later).
    pub fn now() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Machine {
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            cpu: read("/proc/cpuinfo")
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
                .unwrap_or_default(),
            cores: crate::cpu::cores(),
            load_before: load(),
            load_after: String::new(),
        }
    }
}

/// The first three fields of /proc/loadavg.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything the report shows.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The command that produced it.
    pub command: String,
    /// UTC start time.
    pub started: String,
    /// Total wall time, s.
    pub wall_s: f64,
    /// Machine facts.
    pub machine: Machine,
    /// Rounds, duration, warm-up, pinning.
    pub method: Vec<String>,
    /// Modes in their order.
    pub modes: Vec<Mode>,
    /// Frame sizes.
    pub sizes: Vec<usize>,
    /// Every run, in the order it ran.
    pub samples: Vec<Sample>,
    /// Per-mode notes (how the modes differ).
    pub notes: Vec<String>,
    /// Modes that could not run, and why.
    pub failures: Vec<(Mode, String)>,
    /// Control-plane figures, or why there are none.
    pub scale: Option<Result<ScaleResult, String>>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".to_owned(), |v| format!("{v:.digits$}"))
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("–".to_owned(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    })
}

impl Report {
    /// The Markdown text.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let summaries = summarise(&self.samples, &self.modes, &self.sizes);
        let _ = writeln!(md, "# trunkline forwarding benchmark\n");
        let _ = writeln!(md, "Command: `{}`  ", self.command);
        let _ = writeln!(
            md,
            "Started {} UTC, took {:.0} s.\n",
            self.started, self.wall_s
        );
        let _ = writeln!(md, "## Machine\n");
        let m = &self.machine;
        let _ = writeln!(md, "- kernel {}, {} cores ({})", m.kernel, m.cores, m.cpu);
        let _ = writeln!(
            md,
            "- load average before {}, after {} (the machine is shared: other builds may run)",
            m.load_before, m.load_after
        );
        let steal = mean(self.samples.iter().map(|s| s.dut_core.steal)).unwrap_or(0.0);
        let _ = writeln!(
            md,
            "- steal on the device's core during the runs: {steal:.1} % on average\n"
        );
        let _ = writeln!(md, "## Method\n");
        for line in &self.method {
            let _ = writeln!(md, "- {line}");
        }
        let _ = writeln!(md);
        if !self.failures.is_empty() {
            let _ = writeln!(md, "## Modes that could not run\n");
            for (mode, why) in &self.failures {
                let _ = writeln!(md, "- **{}**: {why}", mode.label());
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(md, "## Forwarding\n");
        let _ = writeln!(md, "![forwarding](forwarding.png)\n");
        let _ = writeln!(
            md,
            "| frame | mode | Mpps median | min | max | runs | offered Mpps | DUT core busy % (softirq) | DUT process CPU % | TTL decremented | bad frames |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for s in &summaries {
            let _ = writeln!(
                md,
                "| {} B | {} | **{:.3}** | {:.3} | {:.3} | {} | {:.2} | {:.0} ({:.0}) | {} | {:.0} % | {} |",
                s.size,
                s.mode.label(),
                s.mpps.median,
                s.mpps.min,
                s.mpps.max,
                s.runs,
                s.offered_mpps,
                s.dut_busy,
                s.dut_softirq,
                opt(s.process_cpu, 0),
                s.ttl_share * 100.0,
                s.other
            );
        }
        let cell =
            |size: usize, mode: Mode, other: Mode| match ratio(&self.samples, size, mode, other) {
                Some((r, range)) => format!("{r:.2} [{:.2}–{:.2}]", range.min, range.max),
                None => "–".to_owned(),
            };
        let _ = writeln!(md, "\n### Ratios of (a) to the baselines, same run\n");
        let _ = writeln!(
            md,
            "Ratio of the medians; in brackets the range of the per-round ratios (runs of one round are consecutive).\n"
        );
        let _ = writeln!(
            md,
            "| frame | a / b (I/O ceiling) | a / c (Linux) | a / d (OVS) |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|");
        for &size in &self.sizes {
            let _ = writeln!(
                md,
                "| {size} B | {} | {} | {} |",
                cell(size, Mode::Agent, Mode::Bare),
                cell(size, Mode::Agent, Mode::Linux),
                cell(size, Mode::Agent, Mode::Ovs)
            );
        }
        if self.modes.contains(&Mode::AgentTier) {
            let _ = writeln!(
                md,
                "\n### The XDP tier against Linux and the kernel's ceiling, same run\n"
            );
            let _ = writeln!(
                md,
                "h / c and h / i are issue 15's goals on one core (at least 2 and at least 0.6); h / a is what the tier gains over AF_XDP alone; i / c is the kernel's own ceiling against its own forwarding. Same form as above.\n"
            );
            let _ = writeln!(
                md,
                "| frame | h / c (tier / Linux) | h / i (tier / bare XDP_REDIRECT) | h / a (tier / AF_XDP only) | i / c (XDP_REDIRECT / Linux) |"
            );
            let _ = writeln!(md, "|---|---:|---:|---:|---:|");
            for &size in &self.sizes {
                let _ = writeln!(
                    md,
                    "| {size} B | {} | {} | {} | {} |",
                    cell(size, Mode::AgentTier, Mode::Linux),
                    cell(size, Mode::AgentTier, Mode::Redirect),
                    cell(size, Mode::AgentTier, Mode::Agent),
                    cell(size, Mode::Redirect, Mode::Linux)
                );
            }
        }
        if self.modes.contains(&Mode::AgentTierObserved) {
            let _ = writeln!(md, "\n### Forwarding while observed, same run\n");
            let _ = writeln!(
                md,
                "o / h: the XDP tier's forwarding while `kubectl trunkline observe` samples the flow (every frame matches the filter) against the same without an observation. Same form as above. On a shared machine the rounds differ by more than the effect; the program's own cost, which issue 19's goal (at least 0.95) is checked against, is the kernel's measure at the end of this report (XDP tier: the cost of an armed observation), followed by the forwarding-level bound derived from that cost and (h)'s time per frame in this run.\n"
            );
            let _ = writeln!(md, "| frame | o / h (observed / not) |");
            let _ = writeln!(md, "|---|---:|");
            for &size in &self.sizes {
                let _ = writeln!(
                    md,
                    "| {size} B | {} |",
                    cell(size, Mode::AgentTierObserved, Mode::AgentTier)
                );
            }
        }
        if self.modes.contains(&Mode::AgentTierPoliced) {
            let _ = writeln!(md, "\n### Security groups in the XDP tier, same run\n");
            let _ = writeln!(
                md,
                "p / h: the XDP tier's forwarding with both VMIs policed by a SecurityGroup of 100 rules each way (established flows: the sender's egress and the receiver's ingress entries looked up per frame) against the same without groups. Issue 18's goal: at least 0.8. Same form as above.\n"
            );
            let _ = writeln!(md, "| frame | p / h (policed / not) |");
            let _ = writeln!(md, "|---|---:|");
            for &size in &self.sizes {
                let _ = writeln!(
                    md,
                    "| {size} B | {} |",
                    cell(size, Mode::AgentTierPoliced, Mode::AgentTier)
                );
            }
        }
        if self.modes.iter().any(|m| m.across_nodes()) {
            let _ = writeln!(
                md,
                "\n### Across nodes: the overlay against Linux VXLAN, same run\n"
            );
            let _ = writeln!(
                md,
                "e / f, and with the XDP tier j / f, is the overlay's goal (issue 15: at least 1); e / a and f / c are what crossing a second node over a tunnel costs each, against its own single-node path. Same form as above.\n"
            );
            let _ = writeln!(
                md,
                "| frame | e / f (VXLAN, ours / Linux) | g / f (our MPLSoUDP / Linux VXLAN) | j / f (VXLAN, XDP tier / Linux) | k / f (MPLSoUDP, XDP tier / Linux VXLAN) | e / a (ours, two nodes / one) | f / c (Linux, two nodes / one) |"
            );
            let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
            for &size in &self.sizes {
                let _ = writeln!(
                    md,
                    "| {size} B | {} | {} | {} | {} | {} | {} |",
                    cell(size, Mode::OverlayVxlan, Mode::LinuxVxlan),
                    cell(size, Mode::OverlayMpls, Mode::LinuxVxlan),
                    cell(size, Mode::OverlayVxlanTier, Mode::LinuxVxlan),
                    cell(size, Mode::OverlayMplsTier, Mode::LinuxVxlan),
                    cell(size, Mode::OverlayVxlan, Mode::Agent),
                    cell(size, Mode::LinuxVxlan, Mode::Linux)
                );
            }
        }
        if self.modes.contains(&Mode::Snat) || self.modes.contains(&Mode::Masquerade) {
            self.snat_section(&mut md);
        }
        let _ = writeln!(md, "\n### How the modes differ\n");
        for note in &self.notes {
            let _ = writeln!(md, "- {note}");
        }
        let _ = writeln!(md, "\n## Control plane\n");
        match &self.scale {
            None => {
                let _ = writeln!(md, "Not measured (mode (a) did not run, or `--scale 0`).");
            }
            Some(Err(e)) => {
                let _ = writeln!(md, "Failed: {e}");
            }
            Some(Ok(s)) => {
                let secs = |v: Option<f64>| {
                    v.map_or(format!("not within {} s", s.limit_s), |v| {
                        format!("{v:.1} s")
                    })
                };
                let _ = writeln!(
                    md,
                    "{n} LogicalInterfaces and {n} VMIs (one VirtualNetwork) applied at once for the agent's node, over {p} trunk ports, by server-side apply with 64 requests in flight, against the real kube-apiserver, operator and agent of mode (a) (the agent also forwarding mode (a)'s two VLANs); then {c} single changes in a row (a VMI's address), each timed from its apply to `Programmed=True` at its generation; then a {w:.0} s idle window.\n",
                    n = s.objects,
                    p = s.ports,
                    c = s.change_ms.len(),
                    w = s.idle_window_s,
                );
                let _ = writeln!(md, "| figure | value |");
                let _ = writeln!(md, "|---|---:|");
                let _ = writeln!(
                    md,
                    "| all applied (the API server answered; apply time apart) | {:.1} s |",
                    s.applied_s
                );
                let _ = writeln!(
                    md,
                    "| all Programmed (from the first apply) | {} |",
                    secs(s.programmed_s)
                );
                let _ = writeln!(
                    md,
                    "| all Ready (operator's conditions on every LI and VMI) | {} |",
                    secs(s.ready_s)
                );
                let _ = writeln!(
                    md,
                    "| after the last apply returned: all Programmed / all Ready | {} / {} |",
                    secs(s.programmed_s.map(|v| v - s.applied_s)),
                    secs(s.ready_s.map(|v| v - s.applied_s))
                );
                let _ = writeln!(
                    md,
                    "| counted at the end: programmed / Ready (of {}) | {} / {} |",
                    2 * s.objects,
                    s.programmed_count,
                    s.ready_count
                );
                if let Some(count) = s.routes_count {
                    let _ = writeln!(
                        md,
                        "| every VMI Programmed (from the first apply) | {} |",
                        secs(s.vmis_programmed_s)
                    );
                    let _ = writeln!(
                        md,
                        "| route propagation: FRR holds every VMI's VPNv4 route (from the first apply) | {} |",
                        secs(s.routes_s)
                    );
                    let _ = writeln!(
                        md,
                        "| **route propagation: every VMI Programmed -> all routes in FRR** (issue 17, goal <= 10 s at 16K; negative: FRR was first) | {} |",
                        secs(s.propagation_s())
                    );
                    let _ = writeln!(
                        md,
                        "| routes FRR held from the speaker at the end of the burst (of {}) | {count} |",
                        s.objects
                    );
                    let again = match &s.readvertise_s {
                        None => "not measured".to_owned(),
                        Some(Ok(v)) => format!("{v:.1} s"),
                        Some(Err(e)) => format!("failed: {e}"),
                    };
                    let _ = writeln!(
                        md,
                        "| every route again after gobgpd is killed (the speaker restarts it and adds all {} paths at once; includes the session's setup) | {again} |",
                        s.objects
                    );
                }
                let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0} ms"));
                let _ = writeln!(
                    md,
                    "| one change (apply -> Programmed): p50 / p99 / max | {} / {} / {} |",
                    ms(s.change_quantile(0.5)),
                    ms(s.change_quantile(0.99)),
                    ms(s.change_quantile(1.0))
                );
                let _ = writeln!(
                    md,
                    "| writes in the idle window | {} |",
                    s.idle_writes.map_or("-".to_owned(), |w| format!(
                        "{w} in {:.0} s ({:.2}/s)",
                        s.idle_window_s,
                        w as f64 / s.idle_window_s
                    ))
                );
                let _ = writeln!(
                    md,
                    "| agent resident memory (VmRSS) before / at scale | {} / {} |",
                    mib(s.agent_rss_before_kib),
                    mib(s.agent_rss_after_kib)
                );
                let _ = writeln!(md, "| agent peak (VmHWM) | {} |", mib(s.agent_peak_kib));
                if let Some(at_scale) = &s.forwarding_at_scale {
                    let _ = writeln!(md, "{}", self.forwarding_at_scale_row(at_scale));
                }
                let _ = writeln!(
                    md,
                    "| operator VmRSS / peak | {} / {} |",
                    mib(s.operator_rss_kib),
                    mib(s.operator_peak_kib)
                );
                let _ = writeln!(
                    md,
                    "| PhysicalRouter object size at the end | {:.1} KiB |",
                    s.router_bytes as f64 / 1024.0
                );
                if let Some((name, bytes)) = &s.largest {
                    let _ = writeln!(
                        md,
                        "| largest object (without managedFields) | {name}, {:.1} KiB (bound {} KiB) |",
                        *bytes as f64 / 1024.0,
                        crate::scale::SIZE_BOUND / 1024
                    );
                }
                if !s.burst_cpu.is_empty() {
                    let total: f64 = s.burst_cpu.iter().map(|(_, v)| v).sum();
                    let _ = writeln!(
                        md,
                        "\nWhere the burst's time went (first apply to all Ready): CPU seconds per process, {total:.1} s in all, {:.1} s of wall time at least on this machine's {} cores.\n",
                        total / crate::cpu::cores().max(1) as f64,
                        crate::cpu::cores()
                    );
                    let _ = writeln!(md, "| process | CPU s | share |");
                    let _ = writeln!(md, "|---|---:|---:|");
                    for (role, v) in &s.burst_cpu {
                        let _ = writeln!(
                            md,
                            "| {role} | {v:.1} | {:.0} % |",
                            v * 100.0 / total.max(1e-9)
                        );
                    }
                }
                if !s.burst_requests.is_empty() {
                    let _ = writeln!(
                        md,
                        "\nMutating API requests to trunkline's kinds in the same interval (the API server's `apiserver_request_total`; the benchmark's own applies included), per LI + VMI pair:\n"
                    );
                    let _ = writeln!(
                        md,
                        "| resource | subresource | verb | requests | per pair |"
                    );
                    let _ = writeln!(md, "|---|---|---|---:|---:|");
                    for ((resource, sub, verb), n) in &s.burst_requests {
                        let _ = writeln!(
                            md,
                            "| {resource} | {} | {verb} | {n} | {:.2} |",
                            if sub.is_empty() { "-" } else { sub },
                            *n as f64 / s.objects.max(1) as f64
                        );
                    }
                }
            }
        }
        if let Some(Ok(s)) = self
            .scale
            .as_ref()
            .filter(|s| s.as_ref().is_ok_and(|s| !s.change_ms.is_empty()))
        {
            let per = s.change_ms.len() as f64;
            let _ = writeln!(
                md,
                "\nWhere the {} single changes' time went (at {} pairs), per change: what the agent and the operator did (their `/metrics`), the mutating API requests (the benchmark's apply included) and CPU seconds.\n",
                s.change_ms.len(),
                s.objects
            );
            let _ = writeln!(md, "| what | per change |");
            let _ = writeln!(md, "|---|---:|");
            for (what, n) in &s.changes_counters {
                let _ = writeln!(md, "| {what} | {:.3} |", n / per);
            }
            for ((resource, sub, verb), n) in &s.changes_requests {
                let _ = writeln!(
                    md,
                    "| {verb} {resource}{}{sub} | {:.2} |",
                    if sub.is_empty() { "" } else { "/" },
                    *n as f64 / per
                );
            }
            for (role, v) in &s.changes_cpu {
                let _ = writeln!(md, "| CPU s, {role} | {:.3} |", v / per);
            }
        }
        let _ = writeln!(md, "\n## Every run, in order\n");
        let _ = writeln!(
            md,
            "| # | round | frame | mode | s | forwarded | Mpps | offered Mpps | DUT core busy % | softirq % | steal % | generator core busy % | DUT process CPU % |"
        );
        let _ = writeln!(
            md,
            "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for (i, s) in self.samples.iter().enumerate() {
            let mode = match s.flows {
                Flows::One => s.mode.id().to_owned(),
                Flows::Established(n) => format!("{}, {n} flows", s.mode.id()),
                Flows::New => format!("{}, new flows", s.mode.id()),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} B | {} | {:.2} | {} | {:.3} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
                i + 1,
                s.round,
                s.size,
                mode,
                s.seconds,
                s.forwarded,
                s.mpps(),
                s.offered_mpps(),
                s.dut_core.busy,
                s.dut_core.softirq,
                s.dut_core.steal,
                s.generator_core.busy,
                opt(s.process_cpu, 0)
            );
        }
        md
    }

    /// The scale table's row comparing mode (a)'s forwarding with few
    /// objects and with the scale set installed: the medians of their
    /// runs at that size.
    fn forwarding_at_scale_row(&self, at_scale: &Result<Vec<Sample>, String>) -> String {
        let samples = match at_scale {
            Ok(samples) if !samples.is_empty() => samples,
            Ok(_) => return "| (a) forwarding with the scale set installed | not run |".to_owned(),
            Err(e) => {
                return format!("| (a) forwarding with the scale set installed | failed: {e} |");
            }
        };
        let size = samples[0].size;
        let at: Vec<f64> = samples.iter().map(Sample::mpps).collect();
        let at = Spread::of(&at);
        let few: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.mode == Mode::Agent && s.size == size && !s.new_flows())
            .map(Sample::mpps)
            .collect();
        let range = |s: Spread| format!("{:.3} [{:.3}–{:.3}]", s.median, s.min, s.max);
        if few.is_empty() {
            return format!(
                "| (a) forwarding, {size} B, with the scale set installed (median [range]) | {} Mpps |",
                range(at)
            );
        }
        let few = Spread::of(&few);
        format!(
            "| (a) forwarding, {size} B, median [range]: the runs above / with the scale set installed | {} / {} Mpps ({:.2}) |",
            range(few),
            range(at),
            at.median / few.median.max(1e-9)
        )
    }

    /// The SNAT section: (l) against (m), established and new flows.
    fn snat_section(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "\n### SNAT: trunkline (l) against Linux masquerade (m), same run\n"
        );
        let _ = writeln!(
            md,
            "Established flows: {} UDP flows (source ports 1024-{}), the frames cycling through them; a frame counts when it reaches the fabric host translated (untagged, from {} to {}, TTL decremented, IPv4 checksum, length and payload as sent, any UDP ports); Mpps as above (these runs are also in the table above). New flows: every frame a new flow (destination port stepping with every frame, source port when those wrap), from an empty flow table (the agent restarted, conntrack flushed; then one flow, 1024 -> 9, sent until it arrives translated, so that the device is known to translate: it stays in the table), a shorter window (see Method); **new flows/s = translated frames counted at the fabric host per measured second**, every one the first frame of its flow. 'refused' is how many first packets the device would not translate in the measured window ((l): its allocation failures, `table_full` + `ports_exhausted`, also counted as drops; (m): conntrack's `drop` + `insert_failed`), 'evicted' how many flows it removed early to make room ((m): conntrack's `early_drop`; (l) never evicts), 'flows after' the entries in its table at the end of the window. Ratios as above.\n",
            crate::frame::ESTABLISHED_FLOWS,
            1023 + crate::frame::ESTABLISHED_FLOWS,
            crate::netns::UNDERLAY_A,
            crate::frame::FABRIC_HOST_IP,
        );
        let established = summarise(&self.samples, &[Mode::Snat, Mode::Masquerade], &self.sizes);
        let median = |mode: Mode, size: usize| {
            established
                .iter()
                .find(|s| s.mode == mode && s.size == size)
                .map_or("–".to_owned(), |s| {
                    format!("{:.3} [{:.3}–{:.3}]", s.mpps.median, s.mpps.min, s.mpps.max)
                })
        };
        let cell = |r: Option<(f64, Spread)>| match r {
            Some((r, range)) => format!("{r:.2} [{:.2}–{:.2}]", range.min, range.max),
            None => "–".to_owned(),
        };
        let _ = writeln!(
            md,
            "| frame | (l) trunkline SNAT, Mpps | (m) Linux masquerade, Mpps | l / m |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|");
        for &size in &self.sizes {
            let _ = writeln!(
                md,
                "| {size} B, established | {} | {} | {} |",
                median(Mode::Snat, size),
                median(Mode::Masquerade, size),
                cell(ratio(&self.samples, size, Mode::Snat, Mode::Masquerade))
            );
        }
        let _ = writeln!(
            md,
            "\n| frame | mode | new flows/s median | min | max | runs | offered Mpps | refused (all runs) | evicted (all runs) | flows after (last run) |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        let total = |runs: &[&Sample], f: fn(&FlowCounts) -> Option<u64>| {
            runs.iter()
                .map(|s| s.flow_counts.as_ref().and_then(f))
                .sum::<Option<u64>>()
                .map_or("–".to_owned(), |n| n.to_string())
        };
        for &size in &self.sizes {
            for mode in [Mode::Snat, Mode::Masquerade] {
                let runs: Vec<&Sample> = self
                    .samples
                    .iter()
                    .filter(|s| s.mode == mode && s.size == size && s.new_flows())
                    .collect();
                if runs.is_empty() {
                    continue;
                }
                let rates: Vec<f64> = runs
                    .iter()
                    .map(|s| s.forwarded as f64 / s.seconds)
                    .collect();
                let spread = Spread::of(&rates);
                let _ = writeln!(
                    md,
                    "| {size} B | {} | **{:.0}** | {:.0} | {:.0} | {} | {:.2} | {} | {} | {} |",
                    mode.label(),
                    spread.median,
                    spread.min,
                    spread.max,
                    runs.len(),
                    mean(runs.iter().map(|s| s.offered_mpps())).unwrap_or(0.0),
                    total(&runs, |c| c.refused),
                    total(&runs, |c| c.evicted),
                    runs.last()
                        .and_then(|s| s.flow_counts.and_then(|c| c.active))
                        .map_or("–".to_owned(), |n| n.to_string()),
                );
            }
        }
        let _ = writeln!(md, "\n| frame | l / m, new flows/s |");
        let _ = writeln!(md, "|---|---:|");
        for &size in &self.sizes {
            let _ = writeln!(
                md,
                "| {size} B | {} |",
                cell(new_flow_ratio(
                    &self.samples,
                    size,
                    Mode::Snat,
                    Mode::Masquerade
                ))
            );
        }
    }

    /// The forwarding figures as tab-separated lines, for the steps of
    /// `make bench` after this one (the XDP tier's observe cost derives a
    /// forwarding-level bound from mode (h)'s time per frame): `mode size
    /// runs median min max busy`, Mpps and the device core's busy % (mean),
    /// one line per mode and frame size that ran (new-flow runs left out),
    /// after one `#` line naming the columns.
    pub fn tsv(&self) -> String {
        let mut out =
            String::from("# mode\tsize\truns\tmpps_median\tmpps_min\tmpps_max\tdut_busy_percent\n");
        for s in summarise(&self.samples, &self.modes, &self.sizes) {
            let _ = writeln!(
                out,
                "{}\t{}\t{}\t{:.6}\t{:.6}\t{:.6}\t{:.1}",
                s.mode.id(),
                s.size,
                s.runs,
                s.mpps.median,
                s.mpps.min,
                s.mpps.max,
                s.dut_busy
            );
        }
        out
    }

    /// Writes `report.md`, `forwarding.tsv` ([`Report::tsv`]) and
    /// `forwarding.png` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let md = dir.join("report.md");
        std::fs::write(&md, self.markdown())
            .map_err(Error::io(format!("writing {}", md.display())))?;
        let tsv = dir.join("forwarding.tsv");
        std::fs::write(&tsv, self.tsv())
            .map_err(Error::io(format!("writing {}", tsv.display())))?;
        crate::plot::forwarding(
            &dir.join("forwarding.png"),
            &summarise(&self.samples, &self.modes, &self.sizes),
            &self.sizes,
            &self.modes,
            &format!(
                "{} cores, kernel {}",
                self.machine.cores, self.machine.kernel
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(round: usize, mode: Mode, forwarded: u64) -> Sample {
        Sample {
            round,
            size: 64,
            mode,
            flows: Flows::One,
            flow_counts: None,
            seconds: 1.0,
            forwarded,
            ttl_done: forwarded,
            other: 0,
            offered: 4_000_000,
            offered_seconds: 1.0,
            dut_core: CoreUse::default(),
            generator_core: CoreUse::default(),
            process_cpu: Some(100.0),
        }
    }

    #[test]
    fn spreads_take_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(
            Spread::of(&[3.0, 1.0, 2.0]),
            Spread {
                min: 1.0,
                median: 2.0,
                max: 3.0
            }
        );
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
        assert_eq!(Spread::of(&[]), Spread::default());
    }

    #[test]
    fn ratios_pair_runs_of_the_same_round() {
        let samples = vec![
            sample(1, Mode::Agent, 500_000),
            sample(1, Mode::Bare, 1_000_000),
            sample(2, Mode::Agent, 600_000),
            sample(2, Mode::Bare, 600_000),
            sample(3, Mode::Agent, 700_000),
            sample(3, Mode::Bare, 700_000),
        ];
        let (r, range) = ratio(&samples, 64, Mode::Agent, Mode::Bare).expect("both ran");
        assert!((r - 600_000.0 / 700_000.0).abs() < 1e-9);
        assert!((range.min - 0.5).abs() < 1e-9 && (range.max - 1.0).abs() < 1e-9);
        assert!(ratio(&samples, 64, Mode::Agent, Mode::Ovs).is_none());
        let report = Report {
            modes: vec![Mode::Agent, Mode::Bare],
            sizes: vec![64],
            samples,
            ..Report::default()
        };
        let md = report.markdown();
        assert!(
            md.contains("| 64 B | (a) trunkline AF_XDP | **0.600** | 0.500 | 0.700 | 3 |"),
            "{md}"
        );
        assert!(md.contains("| 64 B | 0.86 [0.50–1.00] | – | – |"), "{md}");
        assert!(!md.contains("Across nodes"), "no overlay mode ran:\n{md}");
        assert!(!md.contains("The XDP tier"), "no tier mode ran:\n{md}");
        // The medians of the same runs for the steps after.
        assert_eq!(
            report.tsv(),
            "# mode\tsize\truns\tmpps_median\tmpps_min\tmpps_max\tdut_busy_percent\n\
             a\t64\t3\t0.600000\t0.500000\t0.700000\t0.0\n\
             b\t64\t3\t0.700000\t0.600000\t1.000000\t0.0\n"
        );
    }

    #[test]
    fn forwarding_at_scale_is_compared_with_the_few_object_runs_by_medians() {
        let report = Report {
            modes: vec![Mode::Agent],
            sizes: vec![64],
            samples: vec![
                sample(1, Mode::Agent, 400_000),
                sample(2, Mode::Agent, 500_000),
                sample(3, Mode::Agent, 900_000),
            ],
            ..Report::default()
        };
        let at_scale = vec![
            sample(1, Mode::Agent, 100_000),
            sample(2, Mode::Agent, 250_000),
            sample(3, Mode::Agent, 300_000),
        ];
        assert_eq!(
            report.forwarding_at_scale_row(&Ok(at_scale)),
            "| (a) forwarding, 64 B, median [range]: the runs above / with the scale set installed | 0.500 [0.400–0.900] / 0.250 [0.100–0.300] Mpps (0.50) |"
        );
        assert_eq!(
            report.forwarding_at_scale_row(&Err("sink down".to_owned())),
            "| (a) forwarding with the scale set installed | failed: sink down |"
        );
        let none = Report::default();
        assert_eq!(
            none.forwarding_at_scale_row(&Ok(vec![sample(1, Mode::Agent, 200_000)])),
            "| (a) forwarding, 64 B, with the scale set installed (median [range]) | 0.200 [0.200–0.200] Mpps |"
        );
    }

    #[test]
    fn the_tier_is_compared_with_linux_its_ceiling_and_af_xdp() {
        let samples = vec![
            sample(1, Mode::Agent, 100_000),
            sample(1, Mode::Linux, 500_000),
            sample(1, Mode::AgentTier, 1_000_000),
            sample(1, Mode::Redirect, 2_000_000),
        ];
        let report = Report {
            modes: vec![Mode::Agent, Mode::Linux, Mode::AgentTier, Mode::Redirect],
            sizes: vec![64],
            samples,
            ..Report::default()
        };
        let md = report.markdown();
        // h / c, h / i, h / a, i / c.
        assert!(
            md.contains(
                "| 64 B | 2.00 [2.00–2.00] | 0.50 [0.50–0.50] | 10.00 [10.00–10.00] | 4.00 [4.00–4.00] |"
            ),
            "{md}"
        );
    }

    #[test]
    fn the_overlay_is_compared_with_linux_vxlan_and_with_one_node() {
        let samples = vec![
            sample(1, Mode::Agent, 400_000),
            sample(1, Mode::OverlayVxlan, 100_000),
            sample(1, Mode::LinuxVxlan, 400_000),
            sample(2, Mode::Agent, 400_000),
            sample(2, Mode::OverlayVxlan, 300_000),
            sample(2, Mode::LinuxVxlan, 300_000),
        ];
        let report = Report {
            modes: vec![Mode::Agent, Mode::OverlayVxlan, Mode::LinuxVxlan],
            sizes: vec![64],
            samples,
            ..Report::default()
        };
        let md = report.markdown();
        // e / f: medians 0.2 / 0.35; per round 0.25 and 1.0. e / a: 0.2 / 0.4.
        assert!(
            md.contains("| 64 B | 0.57 [0.25–1.00] | – | – | – | 0.50 [0.25–0.75] | – |"),
            "{md}"
        );
        assert!(
            md.contains("| 64 B | (e) trunkline overlay, VXLAN | **0.200** | 0.100 | 0.300 | 2 |"),
            "{md}"
        );
    }

    #[test]
    fn snat_is_compared_with_masquerade_for_established_and_new_flows_apart() {
        let run = |round, mode, flows, forwarded, refused| Sample {
            flows,
            flow_counts: Some(FlowCounts {
                created: None,
                refused: Some(refused),
                evicted: Some(0),
                active: Some(forwarded),
            }),
            ..sample(round, mode, forwarded)
        };
        let samples = vec![
            run(1, Mode::Snat, Flows::Established(64), 100_000, 0),
            run(1, Mode::Snat, Flows::New, 50_000, 7),
            run(1, Mode::Masquerade, Flows::Established(64), 400_000, 0),
            run(1, Mode::Masquerade, Flows::New, 200_000, 0),
        ];
        assert_eq!(
            ratio(&samples, 64, Mode::Snat, Mode::Masquerade).map(|r| r.0),
            Some(0.25),
            "established runs only"
        );
        assert_eq!(
            new_flow_ratio(&samples, 64, Mode::Snat, Mode::Masquerade).map(|r| r.0),
            Some(0.25),
            "new-flow runs only"
        );
        let report = Report {
            modes: vec![Mode::Snat, Mode::Masquerade],
            sizes: vec![64],
            samples,
            ..Report::default()
        };
        let md = report.markdown();
        assert!(
            md.contains("| 64 B | (l) trunkline SNAT | **0.100** | 0.100 | 0.100 | 1 |"),
            "the forwarding table has the established runs:\n{md}"
        );
        assert!(
            md.contains("| 64 B, established | 0.100 [0.100–0.100] | 0.400 [0.400–0.400] | 0.25 [0.25–0.25] |"),
            "{md}"
        );
        assert!(
            md.contains("| 64 B | (l) trunkline SNAT | **50000** | 50000 | 50000 | 1 | 4.00 | 7 | 0 | 50000 |"),
            "refusals are shown:\n{md}"
        );
        assert!(md.contains("| 64 B | 0.25 [0.25–0.25] |"), "{md}");
    }
}
