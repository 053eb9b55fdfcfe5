//! The forwarding benchmark of a trunkline gateway node, with its baselines
//! measured in the same run on the same machine, and control-plane figures.
//!
//! ```text
//!  <p>-gen ──ga── in [(a) trunkline-dataplane, AF_XDP; real API server + operator] out ──sa── <p>-sink
//!          ──gb── in [(b) bare AF_XDP forwarder (trunkline-xdp)]                  out ──sb──
//!          ──gc── in [(c) Linux IP forwarding, tc BPF untag/tag]                  out ──sc──
//!          ──gd── in [(d) Open vSwitch userspace datapath, AF_XDP ports]          out ──sd──
//!   across two nodes, A and B, joined by a fabric veth (underlay 10.10.0.0/24):
//!          ──ge── in [(e) agent A] ══ VXLAN ══ [agent B] out                           ──se──
//!          ──gf── in [(f) Linux: route -> vxlan0] ══ VXLAN ══ [vxlan0 -> bridge] out   ──sf──
//!          ──gg── in [(g) agent A] ══ MPLSoUDP ══ [agent B] out                        ──sg──
//!   the kernel-decided modes (native XDP, devmap redirects):
//!          ──gh── in [(h) trunkline-dataplane, its XDP tier]                     out ──sh──
//!          ──gi── in [(i) bare XDP_REDIRECT forwarder]                           out ──si──
//!          ──gj── in [(j) tier A] ══ VXLAN ══ [tier B] out                            ──sj──
//!          ──gk── in [(k) tier A] ══ MPLSoUDP ══ [tier B] out                         ──sk──
//!   SNAT to the fabric (to a fabric host 10.10.0.253, from the node's address 10.10.0.1):
//!          ──gl── in [(l) trunkline-dataplane, XDP tier -> AF_XDP, SNAT]       eth0 ──sl──
//!          ──gm── in [(m) Linux: tc untag, forwarding, netfilter masquerade]   eth0 ──sm──
//!
//!  generator: BPF_PROG_RUN live frames (XDP_TX) on core 0, several Mpps
//!  devices:   on core 1 (processes pinned, receive processing steered there by RPS)
//!  sink:      native XDP, counts only correctly forwarded frames, per device
//!
//!  for round in 1..=R { for size in [64, 512] { for mode in [a..m] { warm up; measure D s } } }
//!    (l), (m): once with 64 established flows, once more with a new flow per frame
//!    from an empty flow table (warm-up <= 0.25 s, measured <= 1 s)
//!  then: 4096 LIs + 4096 VMIs applied for (a)'s node: time to programmed / Ready, agent RSS
//! ```
//!
//! The agents of (a), (e), (g), (h), (j), (k) and (l) share one control plane and operator
//! ([`modes::cluster`]). [`run`] does all of it and returns the [`Report`];
//! `scripts/bench.sh` (`make bench`) builds the release binaries and runs
//! `trunkline-bench run`.
//!
//! [`ha`] is the gateway HA benchmark (`make bench-ha`, `trunkline-bench
//! ha`): loss windows of paced streams while the active member of a group
//! fails, modes Fast and STP, beside a keepalived VRRP baseline.

pub mod bpf;
pub mod cpu;
mod error;
pub mod frame;
pub mod ha;
pub mod modes;
pub mod netns;
pub mod peering;
mod plot;
pub mod report;
pub mod scale;
pub mod scale_cost;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::Error;
pub use modes::cluster::Binaries;

use crate::bpf::{Expected, Sink, Traffic};
use crate::cpu::{ProcessMark, core_times, core_use};
use crate::frame::Flows;
use crate::modes::cluster::Cluster;
use crate::modes::{Device, Mode};
use crate::netns::Topology;
use crate::report::{Machine, Report, Sample};

/// The longest warm-up of a new-flow run ((l), (m)).
pub const NEW_FLOW_WARMUP: Duration = Duration::from_millis(250);
/// The longest measured window of a new-flow run.
pub const NEW_FLOW_WINDOW: Duration = Duration::from_secs(1);

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Interleaved rounds (every mode and size once per round).
    pub rounds: usize,
    /// Measured time of each run.
    pub duration: Duration,
    /// Traffic before the measured window of each run.
    pub warmup: Duration,
    /// Frame sizes, bytes.
    pub sizes: Vec<usize>,
    /// Modes, in the order they run within a round.
    pub modes: Vec<Mode>,
    /// LIs (and VMIs) of the control-plane measurement; 0: none.
    pub scale: usize,
    /// How long the control-plane measurement may wait.
    pub scale_limit: Duration,
    /// gobgpd (`scripts/build-gobgp.sh`): with it, the control-plane
    /// measurement also times the VMIs' VPNv4 routes until FRR holds them
    /// (the speaker `binaries.speaker` peering with FRR's bgpd).
    pub gobgpd: Option<PathBuf>,
    /// Where the report and the plot go.
    pub out: PathBuf,
    /// Prefix of the run's namespaces (1-8 lower-case letters/digits).
    pub prefix: String,
    /// Pin the generator to core 0 and the devices to core 1.
    pub pin: bool,
    /// The product's binaries.
    pub binaries: Binaries,
    /// The command line to print in the report.
    pub command: String,
}

fn utc_now() -> String {
    netns::run("date", &["-u", "+%Y-%m-%d %H:%M:%S"])
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Runs the benchmark; writes `report.md`, `forwarding.tsv` and `forwarding.png` into
/// `options.out` and returns the report. Modes that could not run are in
/// [`Report::failures`]; everything started is stopped and removed before
/// this returns (or when the future is dropped).
pub async fn run(options: &Options) -> Result<Report, Error> {
    if options.rounds == 0 || options.sizes.is_empty() || options.modes.is_empty() {
        return Err(Error::Options(
            "at least one round, one frame size and one mode".to_owned(),
        ));
    }
    for &size in &options.sizes {
        if !(frame::GENERATOR_HEAD..=frame::MAX_FRAME).contains(&size) {
            return Err(Error::Options(format!(
                "frame size {size}: {} to {} bytes",
                frame::GENERATOR_HEAD,
                frame::MAX_FRAME
            )));
        }
    }
    let wall = Instant::now();
    let (generator_core, dut_core) = if options.pin && cpu::cores() >= 2 {
        (Some(0), Some(1))
    } else {
        (None, None)
    };
    let mut report = Report {
        command: options.command.clone(),
        started: utc_now(),
        machine: Machine::now(),
        modes: options.modes.clone(),
        sizes: options.sizes.clone(),
        ..Report::default()
    };
    report.method = method(options, generator_core, dut_core);
    let dir = std::env::temp_dir().join(format!("trunkline-bench-{}", options.prefix));
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let result = run_in(options, &dir, generator_core, dut_core, &mut report).await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    report.machine.load_after = report::load();
    report.wall_s = wall.elapsed().as_secs_f64();
    report.write(&options.out)?;
    Ok(report)
}

fn method(
    options: &Options,
    generator_core: Option<usize>,
    dut_core: Option<usize>,
) -> Vec<String> {
    let pinning = match (generator_core, dut_core) {
        (Some(g), Some(d)) => format!(
            "generator thread pinned to core {g}; each device's process pinned to core {d} (both agents of (e), (g), (j) and (k)), and RPS on its port `in` (and on node B's fabric port across nodes) steers its receive processing (generic XDP, the AF_XDP copy, IP forwarding, VXLAN decapsulation) to core {d}; the native-XDP modes ((h)-(k)) run in their ports' receive NAPI, made threaded with the thread pinned to core {d} at real-time priority (SCHED_FIFO 50, node B's fabric port 51 so that the upstream thread cannot starve it: a softirq also goes before any task): a device gets one core for everything; the sink's XDP runs where the device transmits"
        ),
        _ => "no pinning (fewer than 2 cores, or --no-pin)".to_owned(),
    };
    vec![
        format!(
            "{} interleaved round(s): in each, every frame size and every mode once, in the order {}; {:.1} s warm-up then {:.1} s measured per run",
            options.rounds,
            options
                .modes
                .iter()
                .map(|m| m.id())
                .collect::<Vec<_>>()
                .join(" "),
            options.warmup.as_secs_f64(),
            options.duration.as_secs_f64()
        ),
        "traffic: one UDP flow, 802.1Q VLAN 100, from VMI 1 (02:00:00:00:01:01, 192.168.1.10) to the gateway MAC 00:00:5e:00:01:00 and VMI 2's address 192.168.1.20, TTL 64; a frame's size counts Ethernet header, tag, IPv4, UDP and payload (no FCS on veth)".to_owned(),
        format!(
            "across nodes ((e), (f), (g), (j), (k)): node A holds port `in`, node B port `out`, joined by a veth fabric link (node A {}, node B {}, /{}, MTU {}, a permanent neighbour entry on each side); the frame crosses it encapsulated, its IP packet behind 64 bytes with VXLAN (outer Ethernet, IPv4, UDP, VXLAN, inner Ethernet) or 46 with MPLSoUDP (outer Ethernet, IPv4, UDP, label): a 64-byte frame is 110 or 92 bytes on the fabric, a 512-byte one 558 or 540; the sink checks exactly what it checks for a single node: the two nodes together must deliver what one does",
            netns::UNDERLAY_A,
            netns::UNDERLAY_B,
            netns::UNDERLAY_PREFIX_LEN,
            netns::FABRIC_MTU
        ),
        format!(
            "SNAT ((l), (m)): the same frame to a host on the fabric ({}) instead of VMI 2, leaving the node's fabric port `eth0` ({}/{}) untagged; each size is measured twice per round: with {} established flows (the generator cycles the UDP source port through 1024-{}; the 64 flows are made again in each such run's warm-up: the new-flow run before it emptied the tables), and with a new flow per frame (destination port 1024-61023 stepping with every frame, the source port when it wraps: no pair repeats within a run) from an empty flow table (the agent restarted, conntrack flushed; then one flow sent until the sink sees it translated), warm-up at most {:.2} s and measured window at most {:.1} s, so that a run makes fewer flows than either table holds at these rates (262,144: trunkline's default `--flow-table-size`, and nf_conntrack_max here); what still was refused or evicted is in the report",
            frame::FABRIC_HOST_IP,
            netns::UNDERLAY_A,
            netns::UNDERLAY_PREFIX_LEN,
            frame::ESTABLISHED_FLOWS,
            1023 + frame::ESTABLISHED_FLOWS,
            NEW_FLOW_WARMUP.as_secs_f64().min(options.warmup.as_secs_f64()),
            NEW_FLOW_WINDOW.as_secs_f64().min(options.duration.as_secs_f64()),
        ),
        "generator: an XDP program run by BPF_PROG_RUN in live-frames mode (batches of 64, XDP_TX out of the generator's veth); it restores the first 64 bytes from a template for every frame, since the kernel recycles pages unreset. Offered load is what it handed to the kernel; beyond what a device takes, frames are dropped at the device's receive queue (this is a maximum-throughput-under-overload test, not RFC 2544 zero-loss)".to_owned(),
        "sink: native XDP on the far end of each device's `out` veth; counts only valid forwarded frames (VLAN 200, destination MAC VMI 2, source MAC the gateway's, IPv4 from 192.168.1.10 to 192.168.1.20 with a correct header checksum, the frame exactly as long as the IPv4 header says, UDP 1024 -> 9 with the generator's length, the first 16 payload bytes as generated), and separately those with TTL 63; Mpps = valid frames / measured seconds".to_owned(),
        pinning,
        "reading the CPU columns: under overload, an AF_XDP device's receive path (generic XDP, the copy into the UMEM, and dropping what a full ring cannot take) runs in softirq on the same core as its process and takes most of it, leaving the process the rest (receive livelock); the kernel's own forwarding has no such split. A rate-limited generator, or receive processing on another core, gives the AF_XDP modes more (the workplace notes measured 0.6-0.8 Mpps for a bare AF_XDP forwarder with receive processing on the generator's core)".to_owned(),
        "CPU: 'DUT core busy' is user + system + irq + softirq of the device's core from /proc/stat (softirq in brackets; steal excluded), whoever used it: on this shared machine other processes may run there too; 'DUT process CPU' is utime + stime of the device's process from /proc/<pid>/stat (for (e), (g), (j) and (k) both agents together; for (h)-(k) the forwarding itself is in the kernel, in the NAPI threads, so it shows in 'DUT core busy', not here), in % of one core (the kernel's share done in softirq on behalf of the process is not in it)".to_owned(),
    ]
}

async fn run_in(
    options: &Options,
    dir: &std::path::Path,
    generator_core: Option<usize>,
    dut_core: Option<usize>,
    report: &mut Report,
) -> Result<(), Error> {
    eprintln!(
        "[bench] building the namespaces (prefix {})",
        options.prefix
    );
    let topology = Topology::build(&options.prefix, &options.modes, dut_core)?;
    // One sink for forwarded frames, one for translated ones.
    let ports = |to_fabric: bool| -> Vec<String> {
        options
            .modes
            .iter()
            .filter(|m| m.to_fabric() == to_fabric)
            .map(|&m| Topology::sink_port(m))
            .collect()
    };
    let sink = Sink::attach(&topology.path("sink"), &ports(false), Expected::forwarded())?;
    let snat_sink = Sink::attach(&topology.path("sink"), &ports(true), Expected::translated())?;
    // Declared before the devices, so that it outlives them: the agents
    // stop before the control plane.
    let mut cluster: Option<Result<Arc<Cluster>, String>> = None;
    let mut devices: Vec<Device> = Vec::new();
    for &mode in &options.modes {
        if mode.needs_control_plane() && cluster.is_none() {
            cluster = Some(
                Cluster::start(dir, &options.binaries)
                    .await
                    .map_err(|e| e.to_string()),
            );
        }
        let shared = || -> Result<Arc<Cluster>, Error> {
            match &cluster {
                Some(Ok(c)) => Ok(c.clone()),
                Some(Err(e)) => Err(Error::Mode {
                    mode: mode.id(),
                    message: format!("the control plane could not start: {e}"),
                }),
                None => Err(Error::Options("no control plane".to_owned())),
            }
        };
        eprintln!("[bench] starting {}", mode.label());
        let started = match mode {
            Mode::Agent | Mode::AgentTier | Mode::AgentTierObserved | Mode::AgentTierPoliced => {
                match shared() {
                    Ok(c) => modes::agent::AgentDevice::start(mode, &topology, c, dut_core)
                        .await
                        .map(|d| Device::Agent(Box::new(d))),
                    Err(e) => Err(e),
                }
            }
            Mode::Redirect => {
                modes::redirect::RedirectDevice::start(&topology).map(Device::Redirect)
            }
            Mode::Bare => modes::bare::BareDevice::start(&topology, dut_core).map(Device::Bare),
            Mode::Linux => modes::linux::LinuxDevice::start(&topology, dir).map(Device::Linux),
            Mode::Ovs => modes::ovs::OvsDevice::start(&topology, dir, dut_core).map(Device::Ovs),
            Mode::OverlayVxlan
            | Mode::OverlayMpls
            | Mode::OverlayVxlanTier
            | Mode::OverlayMplsTier => match shared() {
                Ok(c) => modes::overlay::OverlayDevice::start(mode, &topology, c, dut_core)
                    .await
                    .map(|d| Device::Overlay(Box::new(d))),
                Err(e) => Err(e),
            },
            Mode::LinuxVxlan => {
                modes::linux_vxlan::LinuxVxlanDevice::start(&topology, dir).map(Device::LinuxVxlan)
            }
            Mode::Snat => match shared() {
                Ok(c) => modes::snat::SnatDevice::start(&topology, c, dut_core)
                    .await
                    .map(|d| Device::Snat(Box::new(d))),
                Err(e) => Err(e),
            },
            Mode::Masquerade => {
                modes::masquerade::MasqueradeDevice::start(&topology, dir).map(Device::Masquerade)
            }
        };
        match started {
            Ok(device) => devices.push(device),
            Err(e) => {
                eprintln!("[bench] {} cannot run: {e}", mode.label());
                report.failures.push((mode, e.to_string()));
            }
        }
    }
    for round in 1..=options.rounds {
        for &size in &options.sizes {
            let mut index = 0;
            while index < devices.len() {
                let device = &mut devices[index];
                let mode = device.mode();
                let (sink, runs) = if mode.to_fabric() {
                    (
                        &snat_sink,
                        &[Flows::Established(frame::ESTABLISHED_FLOWS), Flows::New][..],
                    )
                } else {
                    (&sink, &[Flows::One][..])
                };
                let mut failed = None;
                for &flows in runs {
                    let run = Run { size, round, flows };
                    match measure(
                        device,
                        &topology,
                        sink,
                        run,
                        options,
                        generator_core,
                        dut_core,
                    )
                    .await
                    {
                        Ok(sample) => {
                            let what = match flows {
                                Flows::New => format!(
                                    "{:.0} new flows/s (refused {})",
                                    sample.forwarded as f64 / sample.seconds,
                                    sample
                                        .flow_counts
                                        .and_then(|c| c.refused)
                                        .map_or("?".to_owned(), |n| n.to_string())
                                ),
                                _ => format!("{:.3} Mpps", sample.mpps()),
                            };
                            eprintln!(
                                "[bench] round {round}/{}, {size} B, {}: {what} (offered {:.2} Mpps, DUT core {:.0} %)",
                                options.rounds,
                                mode.label(),
                                sample.offered_mpps(),
                                sample.dut_core.busy
                            );
                            report.samples.push(sample);
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    None => index += 1,
                    Some(e) => {
                        eprintln!("[bench] {} failed: {e}", mode.label());
                        report.failures.push((mode, e.to_string()));
                        devices.remove(index);
                    }
                }
            }
        }
    }
    // Notes after the runs: the overlay's quote the agents' counters.
    for device in &devices {
        report.notes.extend(device.notes());
    }
    // Only (a)'s agent watches the control plane while it is measured: the
    // overlay's agents stop first.
    devices.retain(|d| !matches!(d, Device::Overlay(_)));
    let agent_index = devices
        .iter()
        .position(|d| matches!(d, Device::Agent(agent) if agent.mode() == Mode::Agent));
    if let Some(index) = agent_index.filter(|_| options.scale > 0) {
        let Device::Agent(agent) = &devices[index] else {
            unreachable!("found above");
        };
        let mut scaled = async {
            let peering = match &options.gobgpd {
                Some(gobgpd) => {
                    Some(peering::Peering::start(agent, &options.prefix, gobgpd).await?)
                }
                None => None,
            };
            scale::measure(agent, options.scale, options.scale_limit, peering.as_ref()).await
        }
        .await
        .map_err(|e| e.to_string());
        // The same forwarding run again, the scale set installed: what a
        // node's size costs its fast path (same frame size, same flow).
        if let (Ok(result), Some(&size)) = (&mut scaled, options.sizes.first()) {
            // As many runs as rounds above, so that the medians compare.
            let mut samples = Vec::new();
            for round in 1..=options.rounds {
                let run = Run {
                    size,
                    round,
                    flows: Flows::One,
                };
                let at_scale = measure(
                    &mut devices[index],
                    &topology,
                    &sink,
                    run,
                    options,
                    generator_core,
                    dut_core,
                )
                .await;
                eprintln!(
                    "[bench] control plane: forwarding with the scale set installed, round {round}, {size} B: {}",
                    match &at_scale {
                        Ok(sample) => format!("{:.3} Mpps", sample.mpps()),
                        Err(e) => format!("failed: {e}"),
                    }
                );
                match at_scale {
                    Ok(sample) => samples.push(sample),
                    Err(e) => {
                        result.forwarding_at_scale = Some(Err(e.to_string()));
                        break;
                    }
                }
            }
            if result.forwarding_at_scale.is_none() {
                result.forwarding_at_scale = Some(Ok(samples));
            }
        }
        report.scale = Some(scaled);
    }
    // Stop the devices (then the control plane) before the namespaces go.
    drop(devices);
    drop(cluster);
    drop(snat_sink);
    drop(sink);
    drop(topology);
    Ok(())
}

/// How long a device with a fresh flow table may take to translate again.
const TRANSLATING_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until `mode`'s device translates again after its flow table was
/// emptied, by sending it one flow (`frame`, unchanged) until the sink
/// counts it: a restarted agent answers `/readyz` before it knows its
/// fabric port's address and MAC (the host thread reads them within about
/// 2 s), and until then it leaves the network out of its tables. That one
/// flow stays in the table during the new-flow run.
async fn translating(
    topology: &Topology,
    sink: &Sink,
    mode: Mode,
    frame: Vec<u8>,
    generator_core: Option<usize>,
) -> Result<(), Error> {
    let port = Topology::sink_port(mode);
    let before = sink.counts(&port)?;
    let traffic = Traffic::start(
        &topology.path("gen"),
        &Topology::generator_port(mode),
        frame,
        Flows::One,
        generator_core,
    )?;
    let started = Instant::now();
    while sink.counts(&port)?.since(&before).valid == 0 {
        if started.elapsed() > TRANSLATING_TIMEOUT {
            return Err(Error::Timeout {
                what: format!("{} to translate after emptying its flows", mode.label()),
                seconds: TRANSLATING_TIMEOUT.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    traffic.stop()?;
    Ok(())
}

/// One measurement's parameters.
#[derive(Clone, Copy, Debug)]
struct Run {
    size: usize,
    round: usize,
    flows: Flows,
}

async fn measure(
    device: &mut Device,
    topology: &Topology,
    sink: &Sink,
    run: Run,
    options: &Options,
    generator_core: Option<usize>,
    dut_core: Option<usize>,
) -> Result<Sample, Error> {
    let Run { size, round, flows } = run;
    let mode = device.mode();
    let frame = if mode.to_fabric() {
        frame::snat_ingress_frame(size)
    } else {
        frame::ingress_frame(size)
    };
    let (warmup, duration) = if flows == Flows::New {
        device.fresh_flows().await?;
        translating(topology, sink, mode, frame.clone(), generator_core).await?;
        (
            options.warmup.min(NEW_FLOW_WARMUP),
            options.duration.min(NEW_FLOW_WINDOW),
        )
    } else {
        (options.warmup, options.duration)
    };
    device.before_run()?;
    if let Device::Agent(agent) = device {
        agent.arm_observation().await?;
    }
    // After a restart: the agent's process id is new.
    let pids = device.pids();
    let sampled = async {
        let traffic = Traffic::start(
            &topology.path("gen"),
            &Topology::generator_port(mode),
            frame,
            flows,
            generator_core,
        )?;
        tokio::time::sleep(warmup).await;
        let port = Topology::sink_port(mode);
        let (cores0, sink0, proc0, flows0, t0) = (
            core_times()?,
            sink.counts(&port)?,
            ProcessMark::now(&pids),
            device.flow_counts(),
            Instant::now(),
        );
        tokio::time::sleep(duration).await;
        let (cores1, sink1, proc1, t1) = (
            core_times()?,
            sink.counts(&port)?,
            ProcessMark::now(&pids),
            Instant::now(),
        );
        // Read after the clock: reading the agent's metrics takes a while.
        let flows1 = device.flow_counts();
        let (offered, offered_seconds) = traffic.stop()?;
        let counted = sink1.since(&sink0);
        Ok::<_, Error>(Sample {
            round,
            size,
            mode,
            flows,
            flow_counts: flows1
                .zip(flows0)
                .map(|(after, before)| after.since(&before)),
            seconds: t1.duration_since(t0).as_secs_f64(),
            forwarded: counted.valid,
            ttl_done: counted.ttl_done,
            other: counted.other,
            offered,
            offered_seconds,
            dut_core: core_use(&cores0, &cores1, dut_core.unwrap_or(0)),
            generator_core: core_use(&cores0, &cores1, generator_core.unwrap_or(0)),
            process_cpu: proc0.percent_until(&proc1),
        })
    }
    .await;
    let mut after = device.after_run();
    if let Device::Agent(agent) = device {
        let disarmed = agent.disarm_observation().await;
        after = after.and(disarmed);
    }
    let sample = sampled?;
    after?;
    Ok(sample)
}
