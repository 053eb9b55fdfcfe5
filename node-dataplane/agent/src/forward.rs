//! The forwarding thread, and the state it shares with the async side.
//!
//! ```text
//!  async side                                  forwarding thread (one, pinned to its loop)
//!  install(desired) --compile--> Plan ---ArcSwap---> load once per batch
//!                                                     ports: open/close to match plan.ports
//!                                                     receive batch -> pipeline::process
//!                                                       same port: transmit in place
//!                                                       other port: copy to staging, send after
//!  report() <-- Mutex<State> <-- port states (on change only, never per frame)
//!  metrics  <-- Counters (atomics) + per-VMI counters in the tables
//! ```
//!
//! Nothing on the per-frame path locks or allocates: the plan is an
//! immutable snapshot, counters are relaxed atomics, staging is a fixed
//! buffer.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use trunkline_api::physical_router::{PortStatus, ProgrammedCounts, ProgrammedObject};
use trunkline_pipeline::config::PortId;
use trunkline_pipeline::{Counters, Tables, Verdict};
use trunkline_xdp::{Action, BackendChoice, Port};

use crate::desired::{Desired, PortSpec};
use crate::hostnet::{HostNetwork, VgwSpec};
use crate::report::NodeReport;

/// Frames taken from one port per batch.
const BATCH: u32 = 64;
/// Largest frame forwarded between ports.
const MAX_FRAME: usize = 2048;
/// How long the thread sleeps in `poll` when idle (also the longest delay
/// before it sees new tables or a stop request).
const POLL_MS: i32 = 20;
/// How often ports that could not be opened are retried.
const RETRY: Duration = Duration::from_secs(2);

/// What the fast path runs: the tables and the ports they number.
pub struct Plan {
    /// Version, +1 at every install.
    pub version: i64,
    /// Ports; the index is the pipeline's `PortId`.
    pub ports: Vec<PortSpec>,
    /// Virtual gateways whose host side to set up.
    pub virtual_gateways: Vec<VgwSpec>,
    /// The compiled tables.
    pub tables: Tables,
}

#[derive(Default)]
struct State {
    synced: bool,
    router_generation: Option<i64>,
    programmed: Vec<ProgrammedObject>,
    counts: ProgrammedCounts,
    problems: Vec<String>,
    ports: Vec<PortStatus>,
    backend: Option<String>,
    /// Virtual gateways of the plan, by interface, with their objects.
    vgw_objects: Vec<(String, ProgrammedObject)>,
    /// Interfaces whose host side is in place; the others' problems.
    vgw_ready: Vec<String>,
    vgw_problems: Vec<String>,
}

/// State shared by the async side and the forwarding thread.
pub struct Shared {
    plan: ArcSwap<Plan>,
    counters: Counters,
    state: Mutex<State>,
    started: Instant,
    heartbeat_ms: AtomicU64,
    stop: AtomicBool,
}

impl Default for Shared {
    fn default() -> Self {
        let (tables, _) = Tables::compile(&Default::default());
        Self {
            plan: ArcSwap::from_pointee(Plan {
                version: 0,
                ports: Vec::new(),
                virtual_gateways: Vec::new(),
                tables,
            }),
            // The forwarding thread is the only writer: worker 0.
            counters: Counters::for_worker(0),
            state: Mutex::default(),
            started: Instant::now(),
            heartbeat_ms: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Compiles `desired` and swaps it into the fast path; returns the new
    /// tables version.
    pub fn install(&self, desired: &Desired, router_generation: Option<i64>) -> i64 {
        let current = self.plan.load();
        let (tables, rejected) = Tables::recompile(&desired.config, &current.tables);
        let version = current.version + 1;
        let rejected: Vec<String> = rejected.iter().map(ToString::to_string).collect();
        for r in &rejected {
            tracing::warn!(version, "left out of the tables: {r}");
        }
        let config = &desired.config;
        let counts = ProgrammedCounts {
            logical_interfaces: (config
                .logical_interfaces
                .len()
                .saturating_sub(rejected.len())) as u32,
            virtual_machine_interfaces: config.vmis.len() as u32,
            routing_instances: config.networks.len() as u32,
            routes: (config.vmis.iter().map(|v| v.ips.len()).sum::<usize>()
                + config
                    .networks
                    .iter()
                    .map(|n| n.subnets.len())
                    .sum::<usize>()
                + config.routes.len()) as u32,
            virtual_gateways: 0,
        };
        self.plan.store(Arc::new(Plan {
            version,
            ports: desired.ports.clone(),
            virtual_gateways: desired
                .virtual_gateways
                .iter()
                .map(|(spec, _)| spec.clone())
                .collect(),
            tables,
        }));
        let mut state = self.state();
        state.synced = true;
        state.router_generation = router_generation;
        state.programmed = desired.programmed.clone();
        state.counts = counts;
        state.problems = desired.skipped.iter().cloned().chain(rejected).collect();
        state.vgw_objects = desired
            .virtual_gateways
            .iter()
            .map(|(spec, object)| (spec.interface.clone(), object.clone()))
            .collect();
        version
    }

    /// What to report on the PhysicalRouter.
    pub fn report(&self) -> NodeReport {
        let version = self.plan.load().version;
        let state = self.state();
        let ready_vgws: Vec<&ProgrammedObject> = state
            .vgw_objects
            .iter()
            .filter(|(interface, _)| state.vgw_ready.contains(interface))
            .map(|(_, o)| o)
            .collect();
        let mut programmed = state.programmed.clone();
        programmed.extend(ready_vgws.iter().map(|o| (*o).clone()));
        programmed.sort();
        let mut counts = state.counts.clone();
        counts.virtual_gateways = ready_vgws.len() as u32;
        NodeReport {
            router_generation: state.router_generation,
            synced: state.synced,
            tables_version: version,
            backend: state.backend.clone(),
            ports: state.ports.clone(),
            counts,
            programmed,
            problems: state
                .problems
                .iter()
                .chain(&state.vgw_problems)
                .cloned()
                .collect(),
        }
    }

    /// Time since the forwarding thread last went round its loop.
    pub fn heartbeat_age(&self) -> Duration {
        let beat = Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(beat)
    }

    /// Asks the forwarding thread to stop (it closes its ports).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Appends the packet counters in Prometheus text format.
    pub fn write_packet_metrics(&self, out: &mut String) {
        let snapshot = self.counters.snapshot();
        let _ = writeln!(
            out,
            "# HELP trunkline_dataplane_frames_total Frames seen by the fast path, by verdict."
        );
        let _ = writeln!(out, "# TYPE trunkline_dataplane_frames_total counter");
        let _ = writeln!(
            out,
            "trunkline_dataplane_frames_total{{verdict=\"transmit\"}} {}",
            snapshot.transmitted
        );
        let _ = writeln!(
            out,
            "trunkline_dataplane_frames_total{{verdict=\"pass\"}} {}",
            snapshot.passed
        );
        let _ = writeln!(
            out,
            "trunkline_dataplane_frames_total{{verdict=\"drop\"}} {}",
            snapshot.dropped()
        );
        let _ = writeln!(
            out,
            "# HELP trunkline_dataplane_drops_total Frames dropped, by reason."
        );
        let _ = writeln!(out, "# TYPE trunkline_dataplane_drops_total counter");
        for (reason, n) in snapshot.drops_by_reason() {
            let _ = writeln!(
                out,
                "trunkline_dataplane_drops_total{{reason=\"{}\"}} {n}",
                reason.as_str()
            );
        }
        let plan = self.plan.load();
        let _ = writeln!(
            out,
            "# HELP trunkline_dataplane_vmi_packets_total Packets per VMI and direction (rx: from the instance)."
        );
        let _ = writeln!(out, "# TYPE trunkline_dataplane_vmi_packets_total counter");
        let _ = writeln!(
            out,
            "# HELP trunkline_dataplane_vmi_bytes_total Bytes per VMI and direction."
        );
        let _ = writeln!(out, "# TYPE trunkline_dataplane_vmi_bytes_total counter");
        for (vmi, c) in plan.tables.vmi_counters() {
            let _ = writeln!(
                out,
                "trunkline_dataplane_vmi_packets_total{{vmi=\"{vmi}\",direction=\"rx\"}} {}",
                c.rx_packets
            );
            let _ = writeln!(
                out,
                "trunkline_dataplane_vmi_packets_total{{vmi=\"{vmi}\",direction=\"tx\"}} {}",
                c.tx_packets
            );
            let _ = writeln!(
                out,
                "trunkline_dataplane_vmi_bytes_total{{vmi=\"{vmi}\",direction=\"rx\"}} {}",
                c.rx_bytes
            );
            let _ = writeln!(
                out,
                "trunkline_dataplane_vmi_bytes_total{{vmi=\"{vmi}\",direction=\"tx\"}} {}",
                c.tx_bytes
            );
        }
    }
}

/// Starts the forwarding thread; it opens the ports in `netns` when given.
pub fn spawn(
    shared: Arc<Shared>,
    backend: BackendChoice,
    netns: Option<PathBuf>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("forwarding".to_owned()).spawn(move || {
        if let Some(netns) = &netns
            && let Err(e) = trunkline_xdp::enter_network_namespace(netns)
        {
            tracing::error!(netns = %netns.display(), error = %e, "cannot enter the ports' network namespace");
            return;
        }
        let host = match HostNetwork::new() {
            Ok(host) => Some(host),
            Err(e) => {
                tracing::error!(error = %e, "no netlink access: virtual gateways cannot be set up");
                None
            }
        };
        Forwarder { shared, backend, ports: Vec::new(), last_retry: Instant::now(), host, host_version: 0, host_retry: false, last_link_check: Instant::now() }
            .run();
    })
}

struct OpenPort {
    name: String,
    port: Option<Port>,
}

struct Forwarder {
    shared: Arc<Shared>,
    backend: BackendChoice,
    ports: Vec<OpenPort>,
    last_retry: Instant,
    host: Option<HostNetwork>,
    /// The plan version whose host side was last set up.
    host_version: i64,
    /// Whether that set-up had failures to retry.
    host_retry: bool,
    /// When link states were last read.
    last_link_check: Instant,
}

impl Forwarder {
    fn run(&mut self) {
        let mut staging = vec![0u8; BATCH as usize * MAX_FRAME].into_boxed_slice();
        let mut staged: Vec<(usize, usize)> = Vec::with_capacity(BATCH as usize);
        while !self.shared.stop.load(Ordering::Relaxed) {
            let beat = self.shared.started.elapsed().as_millis() as u64;
            self.shared.heartbeat_ms.store(beat, Ordering::Relaxed);
            let plan = self.shared.plan.load_full();
            self.match_ports(&plan.ports);
            self.match_host(&plan);
            self.watch_links();
            let fds: Vec<i32> = self
                .ports
                .iter()
                .filter_map(|p| p.port.as_ref().map(Port::raw_fd))
                .collect();
            if fds.is_empty() {
                std::thread::sleep(Duration::from_millis(POLL_MS as u64));
                continue;
            }
            if let Err(e) = trunkline_xdp::wait_fds(&fds, POLL_MS) {
                tracing::warn!(error = %e, "poll failed");
            }
            for index in 0..self.ports.len() {
                let Some(port) = self.ports[index].port.as_mut() else {
                    continue;
                };
                let ingress = PortId(index as u16);
                let counters = &self.shared.counters;
                let tables = &plan.tables;
                let staging = &mut staging;
                let staged = &mut staged;
                let received = port.receive(BATCH, &mut |buf, offset, len| {
                    let verdict =
                        trunkline_pipeline::process(tables, ingress, buf, offset, len, counters);
                    match verdict {
                        Verdict::Transmit { port, offset, len } if port == ingress => {
                            Action::Transmit { offset, len }
                        }
                        Verdict::Transmit { port, offset, len }
                            if len <= MAX_FRAME && staged.len() < BATCH as usize =>
                        {
                            let slot = staged.len() * MAX_FRAME;
                            staging[slot..slot + len].copy_from_slice(&buf[offset..offset + len]);
                            staged.push((port.0 as usize, len));
                            Action::Drop
                        }
                        _ => Action::Drop,
                    }
                });
                if let Err(e) = received {
                    tracing::warn!(port = self.ports[index].name, error = %e, "receive failed");
                }
                for (slot, &(egress, len)) in staged.iter().enumerate() {
                    if let Some(out) = self.ports.get_mut(egress).and_then(|p| p.port.as_mut()) {
                        out.send_copy(&staging[slot * MAX_FRAME..slot * MAX_FRAME + len]);
                    }
                }
                staged.clear();
            }
            for port in self.ports.iter_mut().filter_map(|p| p.port.as_mut()) {
                port.flush();
            }
        }
        tracing::info!("forwarding stopped; closing ports");
        self.ports.clear();
    }

    /// Every few seconds, reports trunk ports whose link is not up (the
    /// port stays open: frames flow again as soon as the link does).
    fn watch_links(&mut self) {
        if self.last_link_check.elapsed() < RETRY {
            return;
        }
        self.last_link_check = Instant::now();
        let Some(host) = self.host.as_ref() else {
            return;
        };
        let open: Vec<&str> = self
            .ports
            .iter()
            .filter(|p| p.port.is_some())
            .map(|p| p.name.as_str())
            .collect();
        let Ok(states) = host.link_states(&open) else {
            return;
        };
        let mut state = self.shared.state();
        for (name, link) in states {
            if let Some(status) = state.ports.iter_mut().find(|p| p.name == name) {
                let (wanted, message) = match link {
                    Ok(()) => ("Up", None),
                    Err(why) => ("Down", Some(why)),
                };
                if status.state != wanted || status.message != message {
                    tracing::info!(port = name, state = wanted, "link state changed");
                    status.state = wanted.to_owned();
                    status.message = message;
                }
            }
        }
    }

    /// Sets up the host side of the plan's virtual gateways (once per plan,
    /// and again every few seconds while something failed): removes our
    /// links no longer declared, configures the taps, turns forwarding on.
    fn match_host(&mut self, plan: &Plan) {
        // Before the first plan built from a synced view, the declared set is
        // unknown: deleting "undeclared" links then would remove live ones.
        if plan.version == 0
            || (plan.version == self.host_version
                && !(self.host_retry && self.last_retry.elapsed() >= RETRY))
        {
            return;
        }
        let Some(host) = self.host.as_ref() else {
            return;
        };
        self.host_version = plan.version;
        let mut problems = Vec::new();
        match host.remove_undeclared(&plan.virtual_gateways) {
            Ok(removed) => {
                for name in removed {
                    tracing::info!(
                        interface = name,
                        "removed a virtual gateway interface no longer declared"
                    );
                }
            }
            Err(e) => problems.push(format!("cleaning up virtual gateway interfaces: {e}")),
        }
        let mut ready = Vec::new();
        for spec in &plan.virtual_gateways {
            let open = self
                .ports
                .iter()
                .any(|p| p.name == spec.interface && p.port.is_some());
            if !open {
                problems.push(format!(
                    "VirtualGateway {}: interface {} could not be opened",
                    spec.name, spec.interface
                ));
                continue;
            }
            match host.configure(spec) {
                Ok(()) => ready.push(spec.interface.clone()),
                Err(e) => problems.push(format!("VirtualGateway {}: {e}", spec.name)),
            }
        }
        let v4 = plan
            .virtual_gateways
            .iter()
            .flat_map(|v| &v.subnets)
            .any(|s| s.addr().is_ipv4());
        let v6 = plan
            .virtual_gateways
            .iter()
            .flat_map(|v| &v.subnets)
            .any(|s| s.addr().is_ipv6());
        if let Err(e) = crate::hostnet::enable_forwarding(v4, v6) {
            problems.push(format!("enabling IP forwarding: {e}"));
        }
        for problem in &problems {
            tracing::warn!("{problem}");
        }
        self.host_retry = !problems.is_empty();
        let mut state = self.shared.state();
        state.vgw_ready = ready;
        state.vgw_problems = problems;
    }

    /// Opens and closes ports so that they match `specs` (index = PortId),
    /// retrying ports that failed every few seconds.
    fn match_ports(&mut self, specs: &[PortSpec]) {
        let same = self.ports.len() == specs.len()
            && self.ports.iter().zip(specs).all(|(p, s)| p.name == s.name);
        let retry =
            self.ports.iter().any(|p| p.port.is_none()) && self.last_retry.elapsed() >= RETRY;
        if same && !retry {
            return;
        }
        self.last_retry = Instant::now();
        let mut old: Vec<OpenPort> = std::mem::take(&mut self.ports);
        let mut statuses = Vec::with_capacity(specs.len());
        let mut backend = None;
        for spec in specs {
            let name = &spec.name;
            let existing = old
                .iter()
                .position(|p| &p.name == name && p.port.is_some())
                .map(|i| old.swap_remove(i));
            let port = match existing {
                Some(open) => Ok(open.port.expect("open")),
                None if spec.tap => self.open_tap(name),
                None => Port::open(name, self.backend),
            };
            let (port, state, message) = match port {
                Ok(port) => (Some(port), "Up", None),
                Err(e @ trunkline_xdp::Error::NoSuchInterface { .. }) => {
                    (None, "Missing", Some(e.to_string()))
                }
                Err(e) => {
                    tracing::warn!(port = name, error = %e, "cannot open port");
                    (None, "Down", Some(e.to_string()))
                }
            };
            if let Some(p) = port.as_ref().filter(|_| !spec.tap) {
                backend.get_or_insert(p.backend().as_str().to_owned());
            }
            statuses.push(PortStatus {
                name: name.clone(),
                state: state.to_owned(),
                message,
            });
            self.ports.push(OpenPort {
                name: name.clone(),
                port,
            });
        }
        drop(old);
        let mut state = self.shared.state();
        state.ports = statuses;
        if backend.is_some() {
            state.backend = backend;
        }
    }

    /// Opens a virtual gateway's tap, unless an interface of that name
    /// exists that trunkline did not create: that one is left alone.
    fn open_tap(&self, name: &str) -> Result<Port, trunkline_xdp::Error> {
        let refuse = |what: &'static str, source: std::io::Error| trunkline_xdp::Error::Socket {
            what,
            source,
        };
        match self.host.as_ref().map(|h| h.foreign(name)) {
            Some(Ok(false)) => Port::open_tap(name),
            Some(Ok(true)) => Err(refuse(
                "an interface of that name exists and was not created by trunkline; it is left alone",
                std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            )),
            Some(Err(e)) => Err(refuse("listing interfaces", std::io::Error::other(e))),
            None => Err(refuse(
                "no netlink access",
                std::io::Error::from(std::io::ErrorKind::Unsupported),
            )),
        }
    }
}
