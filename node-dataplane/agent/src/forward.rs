//! The forwarding thread: it opens the plan's ports and moves frames
//! between them through the pipeline, and does nothing else (host set-up
//! lives on the host thread, status and metrics read the shared state).
//!
//! ```text
//!  per loop: load the plan (one atomic load), match the open ports to it, poll
//!  per port, per batch of up to 64 frames, each decided in place:
//!    Transmit, same port  -> queued from the same buffer (AF_XDP: the same UMEM frame)
//!    Transmit, other port -> written once into a transmit buffer of that port
//!    Flood                -> each member's copy written once into its port's buffer
//!    Pass                 -> the kernel has it (AF_PACKET) or it is lost (AF_XDP: counted)
//!    Drop                 -> counted by reason
//!  every frame sent: Pipeline::sent (and the VMI's tx); not sent: Pipeline::lost(reason)
//!  every LOSSES: what the ports lost before the pipeline saw it (kernel counts)
//!  every loop: frames the HA thread injected (takeover announcements), sent as they are
//!  every loop: a slice of the flow table swept for idle flows; the fabric
//!              port's steering (SNAT range, IP fabric subnets) kept in step
//!              with the tables
//! ```
//!
//! With the XDP tier (`--backend auto` or `xdp`), the thread loads the
//! tier's program once and opens every trunk and the fabric port on it:
//! the kernel decides the common case, and only the frames it hands off
//! reach this loop. It publishes which ports run on the tier, for the
//! mirror thread (`mirror.rs`) that keeps the kernel's maps equal to the
//! plan's tables.
//!
//! The flow table (SNAT) belongs to this thread: created when a network
//! first translates, passed to the pipeline of every batch with the time
//! read once per loop, its counts shared with the metrics.
//!
//! Nothing on the per-frame path locks or allocates: the plan is an
//! immutable snapshot, counters are relaxed atomics.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::cell::RefCell;
use trunkline_api::physical_router::PortStatus;

use trunkline_pipeline::config::PortId;
use trunkline_pipeline::flow::{FlowConfig, FlowTable};

use crate::flow_mirror::FlowMirror;
use trunkline_pipeline::sample::Pending;
use trunkline_pipeline::{DropReason, Pipeline, Tables, Verdict, VmiId};
use trunkline_xdp::{
    Action, AttachMode, Backend, BackendChoice, FabricSteering, Port, Sender, Tier, TierPortKind,
    TxError,
};

use crate::control::{Control, Injected, Plan};
use crate::desired::{PortRole, PortSpec};

/// Frames taken from one port per batch.
const BATCH: u32 = 64;
/// How long the thread sleeps in `poll` when idle (also the longest delay
/// before it sees new tables or a stop request).
const POLL_MS: i32 = 20;
/// How often ports that could not be opened are retried.
const RETRY: Duration = Duration::from_secs(2);
/// How often the ports' own losses are read (a syscall for AF_XDP).
const LOSSES: Duration = Duration::from_secs(1);
/// Flows looked at per loop by the idle sweep (a loop is at most POLL_MS).
const SWEEP_BUDGET: usize = 4096;
/// The most entries of the XDP tier's flow map (about 200 bytes each,
/// preallocated by the kernel): 131072 flows.
const MAX_KERNEL_FLOW_ENTRIES: usize = 262_144;

/// Starts the forwarding thread; it opens the ports in `netns` when given.
pub fn spawn(
    control: Arc<Control>,
    backend: BackendChoice,
    xdp_mode: AttachMode,
    netns: Option<PathBuf>,
    flows: FlowConfig,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("forwarding".to_owned())
        .spawn(move || {
            if let Some(netns) = &netns
                && let Err(e) = trunkline_xdp::enter_network_namespace(netns)
            {
                tracing::error!(netns = %netns.display(), error = %e, "cannot enter the ports' network namespace");
                return;
            }
            let (tier, tier_error) = load_tier(&control, backend, &flows);
            let injected = control.take_injected();
            Forwarder {
                control,
                backend,
                xdp_mode,
                tier,
                tier_error,
                ports: Vec::new(),
                own_taps: Vec::new(),
                last_retry: Instant::now(),
                last_losses: Instant::now(),
                injected,
                matched_version: 0,
                tables_read: None,
                flow_config: flows,
                flows: None,
                flow_mirror: None,
            }
            .run();
        })
}

/// Loads the XDP tier when the backend asks for it: the tier, or why not.
fn load_tier(
    control: &Control,
    backend: BackendChoice,
    flows: &FlowConfig,
) -> (Option<Arc<Tier>>, Option<String>) {
    if !matches!(backend, BackendChoice::Auto | BackendChoice::XdpTier) {
        tracing::info!(backend = ?backend, "XDP tier off: every frame goes to userspace");
        return (None, None);
    }
    // Both entries of every flow, up to a bound on the memory the kernel
    // preallocates for its LRU hash (beyond it, the LRU evicts: those
    // flows' frames are userspace's).
    let flow_entries = (2 * flows.capacity).min(MAX_KERNEL_FLOW_ENTRIES) as u32;
    match Tier::load_with_flows(false, flow_entries) {
        Ok(tier) => {
            control.set_tier_maps(tier.maps());
            tracing::info!("XDP tier loaded: the kernel decides the common case, AF_XDP the rest");
            (Some(Arc::new(tier)), None)
        }
        Err(e) if backend == BackendChoice::Auto => {
            tracing::warn!(error = %e, "the XDP tier cannot be loaded on this kernel; AF_XDP (or AF_PACKET) decides every frame");
            (None, Some(e.to_string()))
        }
        Err(e) => {
            tracing::error!(error = %e, "the XDP tier cannot be loaded; no port opens with --backend xdp");
            (None, Some(e.to_string()))
        }
    }
}

/// A port of the plan, open or not.
struct OpenPort {
    name: String,
    role: PortRole,
    port: Option<Port>,
    /// What the fabric port's program steers, as last applied.
    steering: Option<FabricSteering>,
}

struct Forwarder {
    control: Arc<Control>,
    backend: BackendChoice,
    xdp_mode: AttachMode,
    /// The XDP tier, when loaded; why it is not, when asked for.
    tier: Option<Arc<Tier>>,
    tier_error: Option<String>,
    ports: Vec<OpenPort>,
    /// Taps this process opened: ours even before the host thread marks
    /// them (a tap closed and opened again in that window is not foreign).
    own_taps: Vec<String>,
    last_retry: Instant,
    last_losses: Instant,
    /// Frames the control side asks to send (bounded; drained per loop).
    injected: Option<std::sync::mpsc::Receiver<Injected>>,
    /// The plan version whose ports were last matched.
    matched_version: i64,
    /// The plan version whose tables the per-plan work (fabric steering,
    /// tier ports, the flow table's creation) last read in full; `None`:
    /// read them again (ports reopened, a steering not applied).
    tables_read: Option<i64>,
    flow_config: FlowConfig,
    /// The flow table, once a network translates.
    flows: Option<RefCell<FlowTable>>,
    /// The flow table's mirror in the XDP tier's flow map, with the tier.
    flow_mirror: Option<FlowMirror>,
}

/// What the fabric port must steer to the fast path for `tables`.
fn fabric_steering(tables: &Tables) -> FabricSteering {
    FabricSteering {
        snat_ports: tables.uses_flows().then(|| tables.snat_ports()),
        ip_fabric: tables
            .ip_fabric_prefixes()
            .iter()
            .map(|p| (p.addr(), p.prefix_len()))
            .collect(),
    }
}

/// Why a frame could not be sent, as a counted drop reason.
fn tx_reason(e: TxError) -> DropReason {
    match e {
        TxError::RingFull => DropReason::TxRingFull,
        TxError::NoBuffer => DropReason::TxNoBuffer,
        TxError::TooLarge => DropReason::FrameTooLarge,
        TxError::Refused => DropReason::TxRefused,
    }
}

/// The other open ports, by the pipeline's port id, while one is receiving.
struct Others<'p> {
    before: &'p mut [OpenPort],
    after: &'p mut [OpenPort],
    ingress: usize,
}

impl Others<'_> {
    fn get(&mut self, id: PortId) -> Option<&mut Port> {
        let i = usize::from(id.0);
        let slot = if i < self.ingress {
            self.before.get_mut(i)
        } else {
            self.after.get_mut(i.checked_sub(self.ingress + 1)?)
        };
        slot.and_then(|p| p.port.as_mut())
    }
}

impl Forwarder {
    fn run(&mut self) {
        while !self.control.stopping() {
            self.control.beat();
            let plan = self.control.plan();
            if self.match_ports(&plan.ports) {
                self.tables_read = None;
            }
            if plan.version != self.matched_version {
                self.matched_version = plan.version;
                self.control.ports_match(plan.version);
            }
            // Once per plan, not per batch: these read the whole tables
            // (at 16K VMIs, scanning them cost more than forwarding the
            // batch of 64 frames that followed).
            if self.tables_read != Some(plan.version) {
                self.read_tables(&plan);
            }
            let fds: Vec<i32> = self
                .ports
                .iter()
                .filter_map(|p| p.port.as_ref())
                .flat_map(Port::raw_fds)
                .collect();
            if fds.is_empty() {
                std::thread::sleep(Duration::from_millis(POLL_MS as u64));
                continue;
            }
            if let Err(e) = trunkline_xdp::wait_fds(&fds, POLL_MS) {
                tracing::warn!(error = %e, "poll failed");
            }
            self.send_injected(&plan);
            // CLOCK_MONOTONIC, the XDP tier's clock: the flows' last-seen
            // times written here and there compare.
            let now = trunkline_xdp::tier::monotonic_ns();
            for index in 0..self.ports.len() {
                self.receive(&plan, index, now);
            }
            if let Some(flows) = &self.flows {
                let mut table = flows.borrow_mut();
                match (&mut self.flow_mirror, self.control.tier_installed()) {
                    (Some(mirror), Some((_, slots))) => {
                        mirror.follow(&mut table, &plan.tables, &slots);
                        mirror.expire(&mut table, now, SWEEP_BUDGET);
                    }
                    (Some(mirror), None) => {
                        mirror.expire(&mut table, now, SWEEP_BUDGET);
                    }
                    (None, _) => {
                        table.expire(now, SWEEP_BUDGET);
                    }
                }
            }
            for port in self.ports.iter_mut().filter_map(|p| p.port.as_mut()) {
                port.flush();
            }
            if self.last_losses.elapsed() >= LOSSES {
                self.last_losses = Instant::now();
                self.count_losses(&plan);
            }
        }
        tracing::info!("forwarding stopped; closing ports");
        self.ports.clear();
    }

    /// What the forwarding needs from a new plan's whole tables (or from
    /// the same plan once its ports were reopened): the tier's ports, the
    /// fabric port's steering, the flow table once a network translates.
    /// Done again on the next loop while a steering cannot be applied.
    fn read_tables(&mut self, plan: &Plan) {
        self.tables_read = Some(plan.version);
        if self.tier.is_some() {
            let ifindexes = self
                .ports
                .iter()
                .map(|p| p.port.as_ref().and_then(Port::tier_ifindex))
                .collect();
            self.control.set_tier_ports(plan.version, ifindexes);
        }
        if !self.steer_fabric(&plan.tables) {
            self.tables_read = None;
        }
        if self.flows.is_none() && plan.tables.uses_flows() {
            let mut table = FlowTable::new(self.flow_config);
            if let Some(tier) = &self.tier {
                // Established flows in the kernel: the table's changes
                // go to the tier's flow map.
                table.set_mirrored(true);
                self.flow_mirror = Some(FlowMirror::new(tier.maps()));
            }
            self.control.set_flow_stats(table.stats());
            tracing::info!(
                capacity = self.flow_config.capacity,
                "flow table created (SNAT, security groups)"
            );
            self.flows = Some(RefCell::new(table));
        }
    }

    /// Keeps the fabric port's steering in step with the tables (SNAT range
    /// on, IP fabric subnets), in place: the port is not reopened. Whether
    /// every fabric port steers as wanted.
    fn steer_fabric(&mut self, tables: &Tables) -> bool {
        let wanted = fabric_steering(tables);
        let mut applied = true;
        for open in &mut self.ports {
            let (PortRole::Fabric { .. }, Some(port)) = (&open.role, open.port.as_mut()) else {
                continue;
            };
            if open.steering.as_ref() == Some(&wanted) {
                continue;
            }
            match port.set_fabric_steering(&wanted) {
                Ok(()) => {
                    tracing::info!(port = open.name, steering = ?wanted, "fabric steering");
                    open.steering = Some(wanted.clone());
                }
                Err(e) => {
                    applied = false;
                    tracing::warn!(port = open.name, error = %e, "cannot update the fabric steering; retrying")
                }
            }
        }
        applied
    }

    /// One batch from port `index`.
    fn receive(&mut self, plan: &Plan, index: usize, now: u64) {
        let control = self.control.clone();
        // The clock of the ICMP error budget, read once per batch.
        let now_ms = control.uptime_ms();
        let pipeline = Pipeline::new(&plan.tables, control.counters()).at(now_ms);
        let pipeline = match &self.flows {
            Some(flows) => pipeline.with_flows(flows, now),
            None => pipeline,
        };
        let ingress = PortId(index as u16);
        let (before, rest) = self.ports.split_at_mut(index);
        let Some((this, after)) = rest.split_first_mut() else {
            return;
        };
        let name = &this.name;
        let Some(port) = this.port.as_mut() else {
            return;
        };
        // An AF_XDP port took the frame from the kernel: it cannot pass it.
        let consumes = port.backend() == Backend::AfXdp;
        let mut others = Others {
            before,
            after,
            ingress: index,
        };
        // Observe PacketTraces: one load per batch; sampling only when armed
        // for this port (the filter copied once per batch).
        let mut sampling = control.sampler().batch(ingress, now_ms);
        let handled = port.receive(
            BATCH,
            &mut |buf, offset, len, same: &mut dyn Sender| {
                // Armed: the filter compared in place before `process`
                // rewrites the frame; a sample built only within budget.
                let pending = match (sampling.as_mut(), buf.get(offset..offset + len)) {
                    (Some(sampling), Some(frame)) => sampling.before(frame),
                    _ => Pending::Skip,
                };
                let verdict = pipeline.process(ingress, buf, offset, len);
                if let Some(sampling) = sampling.as_mut() {
                    sampling.after(pending, &verdict, buf, now_ms);
                }
                match verdict {
                    Verdict::Transmit {
                        port,
                        offset,
                        len,
                        vmi,
                    } if port == ingress => Action::Transmit {
                        offset,
                        len,
                        tag: VmiId::to_tag(vmi),
                    },
                    Verdict::Transmit {
                        port,
                        offset,
                        len,
                        vmi,
                    } => {
                        match others.get(port) {
                            Some(out) => match out.send_copy(&buf[offset..offset + len]) {
                                Ok(()) => pipeline.sent(vmi, len),
                                Err(e) => pipeline.lost(tx_reason(e), 1),
                            },
                            None => pipeline.lost(DropReason::EgressDown, 1),
                        }
                        Action::Drop
                    }
                    Verdict::Flood(flood) => {
                        let source: &[u8] = buf;
                        for member in 0..pipeline.flood_members(&flood) {
                            let Some(egress) = pipeline.flood_egress(&flood, member) else {
                                continue;
                            };
                            let mut copied: Result<(usize, Option<VmiId>), DropReason> =
                                Err(DropReason::EgressDown);
                            let mut fill = |dst: &mut [u8]| match pipeline
                                .flood_copy(&flood, member, source, dst)
                            {
                                Ok((offset, len, vmi)) => {
                                    copied = Ok((len, vmi));
                                    Some((offset, len))
                                }
                                Err(reason) => {
                                    copied = Err(reason);
                                    None
                                }
                            };
                            let sent = if egress == ingress {
                                same.send_with(&mut fill)
                            } else {
                                match others.get(egress) {
                                    Some(out) => out.send_with(&mut fill),
                                    None => Ok(false),
                                }
                            };
                            match (sent, copied) {
                                (Ok(true), Ok((len, vmi))) => pipeline.sent(vmi, len),
                                (Err(e), _) => pipeline.lost(tx_reason(e), 1),
                                (_, Err(reason)) => pipeline.lost(reason, 1),
                                (Ok(false), Ok(_)) => {}
                            }
                        }
                        Action::Drop
                    }
                    Verdict::Pass => {
                        if consumes {
                            pipeline.lost(DropReason::PassLost, 1);
                        }
                        Action::Drop
                    }
                    Verdict::Drop(_) => Action::Drop,
                }
            },
            &mut |tag, len, sent| match sent {
                Ok(()) => pipeline.sent(VmiId::from_tag(tag), len),
                Err(e) => pipeline.lost(tx_reason(e), 1),
            },
        );
        if let Err(e) = handled {
            tracing::warn!(port = name, error = %e, "receive failed");
        }
    }

    /// Sends what the HA thread injected for this plan's ports (frames for
    /// an older plan are dropped: port ids may have changed).
    fn send_injected(&mut self, plan: &Plan) {
        let Some(injected) = &self.injected else {
            return;
        };
        let pipeline = Pipeline::new(&plan.tables, self.control.counters());
        while let Ok(frame) = injected.try_recv() {
            if frame.version != plan.version {
                continue;
            }
            match self
                .ports
                .get_mut(usize::from(frame.port.0))
                .and_then(|p| p.port.as_mut())
            {
                Some(port) => match port.send_copy(&frame.frame) {
                    Ok(()) => pipeline.sent(None, frame.frame.len()),
                    Err(e) => pipeline.lost(tx_reason(e), 1),
                },
                None => pipeline.lost(DropReason::EgressDown, 1),
            }
        }
    }

    /// Counts what the ports lost before any frame handler saw it.
    fn count_losses(&mut self, plan: &Plan) {
        let pipeline = Pipeline::new(&plan.tables, self.control.counters());
        for port in self.ports.iter_mut().filter_map(|p| p.port.as_mut()) {
            let losses = port.take_losses();
            pipeline.lost(DropReason::FrameTooLarge, losses.too_large);
            pipeline.lost(DropReason::RxKernelDropped, losses.kernel_dropped);
            pipeline.lost(DropReason::RxRingFull, losses.ring_full);
        }
    }

    /// Opens a trunk or the fabric port: on the XDP tier when loaded (with
    /// `--backend auto`, falling back to `open` with AF_XDP or AF_PACKET
    /// when the tier refuses the port), else with `open`.
    fn open_port(
        &self,
        name: &str,
        kind: TierPortKind,
        open: impl FnOnce(BackendChoice) -> Result<Port, trunkline_xdp::Error>,
    ) -> Result<Port, trunkline_xdp::Error> {
        let fallback = match self.backend {
            BackendChoice::XdpTier => None,
            BackendChoice::Auto => Some(BackendChoice::Auto),
            other => Some(other),
        };
        let Some(tier) = &self.tier else {
            return match fallback {
                Some(choice) => open(choice),
                None => Err(trunkline_xdp::Error::Bpf {
                    what: "XDP tier",
                    interface: name.to_owned(),
                    message: self
                        .tier_error
                        .clone()
                        .unwrap_or_else(|| "not loaded".to_owned()),
                }),
            };
        };
        match Port::open_tier(name, tier, kind, self.xdp_mode) {
            Ok(port) => Ok(port),
            Err(e) => match fallback {
                Some(choice) => {
                    tracing::warn!(port = name, error = %e, "the XDP tier refused the port; it opens without it");
                    open(choice)
                }
                None => Err(e),
            },
        }
    }

    /// Opens and closes ports so that they match `specs` (index = PortId),
    /// retrying ports that failed every few seconds; whether it opened or
    /// closed any.
    fn match_ports(&mut self, specs: &[PortSpec]) -> bool {
        let same = self.ports.len() == specs.len()
            && self.ports.iter().zip(specs).all(|(p, s)| p.name == s.name);
        let retry =
            self.ports.iter().any(|p| p.port.is_none()) && self.last_retry.elapsed() >= RETRY;
        if same && !retry {
            return false;
        }
        self.last_retry = Instant::now();
        let mut old: Vec<OpenPort> = std::mem::take(&mut self.ports);
        let mut statuses = Vec::with_capacity(specs.len());
        let mut backend = None;
        for spec in specs {
            let name = &spec.name;
            // A port keeps its socket unless its role changed (a fabric
            // port whose underlay address changed is opened again).
            let existing = old
                .iter()
                .position(|p| &p.name == name && p.role == spec.role && p.port.is_some())
                .map(|i| old.swap_remove(i));
            let port = match (existing, &spec.role) {
                (Some(open), _) => Ok(open.port.expect("open")),
                (None, PortRole::Tap) if self.own_taps.contains(name) => Port::open_tap(name),
                (None, PortRole::Tap) => {
                    let opened = open_tap(name);
                    if opened.is_ok() {
                        self.own_taps.push(name.clone());
                    }
                    opened
                }
                (None, PortRole::Fabric { underlay }) => {
                    let underlay = *underlay;
                    self.open_port(name, TierPortKind::Fabric(underlay), |choice| {
                        Port::open_fabric(name, choice, underlay)
                    })
                }
                (None, PortRole::Trunk) => {
                    self.open_port(name, TierPortKind::Trunk, |choice| Port::open(name, choice))
                }
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
            if let Some(p) = port.as_ref().filter(|_| spec.role == PortRole::Trunk) {
                backend.get_or_insert(p.backend().as_str().to_owned());
            }
            let af_xdp = port
                .as_ref()
                .filter(|p| matches!(p.backend(), Backend::XdpTier | Backend::AfXdp));
            statuses.push(PortStatus {
                name: name.clone(),
                state: state.to_owned(),
                message,
                queues: af_xdp.map(|p| p.queues() as u32),
                // Absent when the kernel does not say, never guessed.
                af_xdp_mode: af_xdp
                    .and_then(Port::zero_copy)
                    .map(|zc| if zc { "ZeroCopy" } else { "Copy" }.to_owned()),
            });
            self.ports.push(OpenPort {
                name: name.clone(),
                role: spec.role.clone(),
                port,
                steering: None,
            });
        }
        drop(old);
        let fabric_copies = self.ports.iter().find_map(|p| match (&p.role, &p.port) {
            (PortRole::Fabric { .. }, Some(port)) if port.backend() == Backend::AfPacket => {
                Some(p.name.clone())
            }
            _ => None,
        });
        self.control.set_fabric_copies(fabric_copies);
        let open = self
            .ports
            .iter()
            .filter(|p| p.port.is_some())
            .map(|p| p.name.clone())
            .collect();
        self.control.set_ports(statuses, open, backend);
        true
    }
}

/// Opens a virtual gateway's tap, unless an interface of that name exists
/// that trunkline did not create: that one is left alone.
fn open_tap(name: &str) -> Result<Port, trunkline_xdp::Error> {
    let refuse =
        |what: &'static str, source: std::io::Error| trunkline_xdp::Error::Socket { what, source };
    match crate::hostnet::HostNetwork::new().map(|h| h.foreign(name)) {
        Ok(Ok(false)) => Port::open_tap(name),
        Ok(Ok(true)) => Err(refuse(
            "an interface of that name exists and was not created by trunkline; it is left alone",
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        )),
        Ok(Err(e)) => Err(refuse("listing interfaces", std::io::Error::other(e))),
        Err(e) => Err(refuse("no netlink access", e)),
    }
}
