//! The state the agent's threads share: the plan the fast path runs (an
//! immutable snapshot swapped atomically), the packet counters, what the
//! forwarding and host threads learnt (port states, host side of virtual
//! gateways, underlay facts), from which the node's report is assembled,
//! and the XDP tier's handles (its maps, which ports it runs on, what the
//! mirror installed).
//!
//! ```text
//!  compile loop --install(desired)--> Plan { version, ports, tables, ... } --ArcSwap--> forwarding thread
//!                                          |                                      (loads once per batch)
//!                                          +-----------------------------------> host thread
//!  forwarding thread --set_ports/backend--> State <--vgw / fabric / neighbours-- host thread
//!                                             |    <--HA groups' state, stats------ HA thread
//!                    report() / metrics  <----+   (never taken per frame)
//!  HA thread --inject(frames)--> bounded channel --drained once per loop--> forwarding thread
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use trunkline_api::physical_router::{HaGroupReport, PortStatus, ProgrammedCounts};
use trunkline_model::{Kind, ObjectKey, ResourceVersion};
use trunkline_pipeline::config::{NextHopConfig, PortId};
use trunkline_pipeline::kernel::Slots;
use trunkline_pipeline::{Counters, ObjectRef, Rejected, Tables};
use trunkline_xdp::TierMaps;

use crate::desired::{Desired, PortSpec};
use crate::ha::HaPlan;
use crate::hostnet::VgwSpec;
use crate::report::NodeReport;

/// What the fast path runs: the tables and the ports they number.
pub struct Plan {
    /// Version, +1 at every install.
    pub version: i64,
    /// Built from a synced view of the objects. The empty plans before the
    /// first install (the default, and the one a restarted agent resumes
    /// its version count with) are not: what they leave out is unknown, not
    /// undeclared.
    pub synced: bool,
    /// Ports; the index is the pipeline's `PortId`.
    pub ports: Vec<PortSpec>,
    /// Virtual gateways whose host side to set up.
    pub virtual_gateways: Vec<VgwSpec>,
    /// The compiled tables.
    pub tables: Tables,
    /// What the HA thread works with.
    pub ha: HaPlan,
}

/// How many frames may wait for the forwarding thread to send them.
const INJECT_QUEUE: usize = 256;

/// A frame the control side asks the forwarding thread to send (a takeover
/// announcement): out of `port` of the plan of version `version` (a frame
/// for another plan's ports is dropped).
#[derive(Debug)]
pub struct Injected {
    /// The plan version whose port ids the frame uses.
    pub version: i64,
    /// The egress port.
    pub port: PortId,
    /// The whole frame.
    pub frame: Vec<u8>,
}

/// What the HA thread reports: each group's part for the router's status,
/// and counters for the metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HaStats {
    /// The node's part in each group it is a member of.
    pub groups: Vec<HaGroupReport>,
    /// Role changes: (group, new state) -> count.
    pub transitions: std::collections::BTreeMap<(String, String), u64>,
    /// Heartbeats sent and received.
    pub heartbeats_sent: u64,
    /// Heartbeats received from known nodes.
    pub heartbeats_received: u64,
    /// Claims sent (datagrams).
    pub claims_sent: u64,
    /// Claims received.
    pub claims_received: u64,
    /// Datagrams refused (unknown sender or group, wrong source address,
    /// malformed).
    pub refused: u64,
    /// Takeover announcements injected.
    pub announcements: u64,
    /// Injected frames the forwarding thread could not take (queue full).
    pub inject_dropped: u64,
}

/// How long after start the first report waits for the host thread to
/// finish setting up virtual gateways whose interfaces are not open yet.
const SETTLE_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// What the threads learnt, for the report.
#[derive(Default)]
struct State {
    synced: bool,
    /// The version of the first plan built from a synced view. Plans
    /// before it (version 0, or the empty one a restarted agent resumes
    /// its count with) hold no ports: opening theirs says nothing.
    first_synced: Option<i64>,
    /// The forwarding thread has opened the ports of a synced plan.
    ports_opened: bool,
    /// The host thread has set up a synced plan's virtual gateways, or has
    /// tried for [`SETTLE_WITHIN`]. Until both, a report would say "not
    /// programmed" of what an earlier run left working, so none is written.
    host_settled: bool,
    router_generation: Option<i64>,
    /// What they were asked to hold and do not, with why.
    exceptions: BTreeMap<ObjectKey, String>,
    /// The watermarks of the objects the installed tables were built from.
    through: BTreeMap<Kind, ResourceVersion>,
    counts: ProgrammedCounts,
    problems: Vec<String>,
    ports: Vec<PortStatus>,
    /// The ports the forwarding thread holds open.
    open: Vec<String>,
    backend: Option<String>,
    /// Virtual gateways of the plan, by interface, with their objects.
    vgw_objects: Vec<(String, ObjectKey)>,
    /// Interfaces whose host side is in place; the others' problems.
    vgw_ready: Vec<String>,
    vgw_problems: Vec<String>,
    /// Ports whose declared MTU the fast path cannot carry.
    mtu_problems: Vec<(String, String)>,
    /// Why the underlay waits for the fabric port's facts, if it does.
    fabric_waiting: Option<String>,
    /// Each programmed logical interface's port: it is reported programmed
    /// only while that port is open (its traffic can flow).
    li_ports: BTreeMap<String, String>,
    /// The networks of the plan that leave by the fabric untunneled (SNAT,
    /// IP fabric forwarding).
    exit_networks: Vec<ObjectKey>,
    /// The fabric port, when it is open over a backend that only sees
    /// copies (AF_PACKET): the host receives what the fast path owns too.
    fabric_copies: Option<String>,
}

/// State shared by the async side, the forwarding thread and the host
/// thread.
pub struct Control {
    plan: ArcSwap<Plan>,
    counters: Arc<Counters>,
    state: Mutex<State>,
    /// Wakes the reporter when what it reports changed outside an install
    /// (ports opened, links, virtual gateways set up).
    report_now: Arc<tokio::sync::Notify>,
    started: Instant,
    heartbeat_ms: AtomicU64,
    stop: AtomicBool,
    /// Watch events received, by kind.
    watch_events: Mutex<BTreeMap<String, u64>>,
    /// What the compile loop did with its wake-ups.
    compile: Mutex<CompileStats>,
    /// The configuration the installed tables were compiled from, when
    /// kept (`--debug-tables`).
    config: Mutex<Option<Arc<trunkline_pipeline::NodeConfig>>>,
    keep_config: AtomicBool,
    tier: Mutex<TierState>,
    inject: SyncSender<Injected>,
    injected: Mutex<Option<Receiver<Injected>>>,
    ha: Mutex<HaStats>,
    /// The forwarding thread's flow table counts, once it keeps one.
    flow_stats: Mutex<Option<Arc<trunkline_pipeline::flow::FlowStats>>>,
    /// Samples real verdicts for Observe PacketTraces (crate::observe).
    sampler: trunkline_pipeline::sample::Sampler,
}

/// What the compile loop did with a wake-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WakeOutcome {
    /// Built, and installed new tables.
    BuildSwapped,
    /// Built, and the tables were the same (only the report changed, if
    /// anything).
    BuildUnchanged,
    /// Nothing a build reads changed: the new watermarks were reported
    /// without a build.
    WatermarksOnly,
    /// An edit waits for the operator's verdict: neither a build nor a
    /// report yet.
    Waiting,
}

impl WakeOutcome {
    /// Its label value in the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            WakeOutcome::BuildSwapped => "build_swapped",
            WakeOutcome::BuildUnchanged => "build_unchanged",
            WakeOutcome::WatermarksOnly => "watermarks_only",
            WakeOutcome::Waiting => "waiting",
        }
    }
}

/// What the compile loop and the reporter did so far.
#[derive(Clone, Debug, Default)]
pub struct CompileStats {
    /// Wake-ups by outcome.
    pub wakes: BTreeMap<WakeOutcome, u64>,
    /// Time spent in builds.
    pub build_seconds: f64,
    /// Status writes of the node's report.
    pub reports: u64,
}

/// The XDP tier as the threads see it.
#[derive(Default)]
struct TierState {
    /// Its maps, once the forwarding thread loaded it.
    maps: Option<Arc<TierMaps>>,
    /// The plan version the forwarding thread last matched its ports to,
    /// and each of its ports' interface index when the port runs on the
    /// tier (index: the pipeline's port id).
    ports: (i64, Vec<Option<u32>>),
    /// The plan version whose image the mirror installed, and the slots of
    /// that image (a VMI's kernel counters are in its slot).
    installed: Option<(i64, Arc<Slots>)>,
    /// Why the last install failed (frames are handed off meanwhile).
    problem: Option<String>,
}

impl Default for Control {
    fn default() -> Self {
        let (tables, _) = Tables::compile(&Default::default());
        let (inject, injected) = sync_channel(INJECT_QUEUE);
        Self {
            plan: ArcSwap::from_pointee(Plan {
                version: 0,
                synced: false,
                ports: Vec::new(),
                virtual_gateways: Vec::new(),
                tables,
                ha: HaPlan::default(),
            }),
            // The forwarding thread is the only writer: worker 0.
            counters: Arc::new(Counters::for_worker(0)),
            state: Mutex::default(),
            report_now: Arc::new(tokio::sync::Notify::new()),
            started: Instant::now(),
            heartbeat_ms: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            watch_events: Mutex::default(),
            compile: Mutex::default(),
            config: Mutex::default(),
            keep_config: AtomicBool::new(false),
            tier: Mutex::default(),
            inject,
            injected: Mutex::new(Some(injected)),
            ha: Mutex::default(),
            flow_stats: Mutex::default(),
            sampler: Default::default(),
        }
    }
}

impl Control {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The plan the fast path runs now.
    pub fn plan(&self) -> Arc<Plan> {
        self.plan.load_full()
    }

    /// Notified when the report should be written again soon.
    pub fn report_now(&self) -> Arc<tokio::sync::Notify> {
        self.report_now.clone()
    }

    /// The sampler of Observe PacketTraces.
    pub fn sampler(&self) -> &trunkline_pipeline::sample::Sampler {
        &self.sampler
    }

    /// Keep a copy of each installed configuration (for
    /// [`Control::tables_and_scratch`]).
    pub fn keep_config(&self, keep: bool) {
        self.keep_config.store(keep, Ordering::Relaxed);
    }

    /// The installed tables' dump and the dump of a compilation from
    /// scratch of the configuration they came from (both `None` unless
    /// configurations are kept): equal, whatever way the tables were
    /// built.
    pub fn tables_and_scratch(&self) -> Option<(i64, String, String)> {
        let config = self
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let plan = self.plan.load_full();
        let (scratch, _) = Tables::compile(&config);
        Some((plan.version, plan.tables.dump(), scratch.dump()))
    }

    /// Counts one watch event of `kind`.
    pub fn count_watch_event(&self, kind: &str) {
        let mut events = self.watch_events.lock().unwrap_or_else(|p| p.into_inner());
        match events.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                events.insert(kind.to_owned(), 1);
            }
        }
    }

    /// The compile loop woke up and did `outcome` (see [`CompileStats`]);
    /// a build took `build` (none when it did not build).
    pub fn count_wake(&self, outcome: WakeOutcome, build: Option<Duration>) {
        let mut stats = self.compile.lock().unwrap_or_else(|p| p.into_inner());
        *stats.wakes.entry(outcome).or_default() += 1;
        if let Some(took) = build {
            stats.build_seconds += took.as_secs_f64();
        }
    }

    /// The reporter wrote the node's status.
    pub fn count_report(&self) {
        self.compile
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reports += 1;
    }

    /// What the compile loop and the reporter did so far.
    pub fn compile_stats(&self) -> CompileStats {
        self.compile
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Watch events received so far, by kind.
    pub fn watch_events(&self) -> BTreeMap<String, u64> {
        self.watch_events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Continues the tables' version count of an earlier run on this node
    /// (its report's `programmedGeneration`): the first tables installed
    /// take that number, so a restart that installs the same tables
    /// reports nothing new. Only before the first install.
    pub fn resume_version(&self, reported: Option<i64>) {
        let current = self.plan.load();
        if let Some(reported) = reported.filter(|v| *v > 0 && current.version == 0) {
            let (tables, _) = Tables::compile(&Default::default());
            self.plan.store(Arc::new(Plan {
                version: reported - 1,
                synced: false,
                ports: Vec::new(),
                virtual_gateways: Vec::new(),
                tables,
                ha: HaPlan::default(),
            }));
        }
    }

    /// The forwarding thread's counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The forwarding thread's flow table counts (it keeps one once a
    /// network uses SNAT).
    pub fn set_flow_stats(&self, stats: Arc<trunkline_pipeline::flow::FlowStats>) {
        *self.flow_stats.lock().unwrap_or_else(|p| p.into_inner()) = Some(stats);
    }

    /// The flow table's counts now, if there is one.
    pub fn flow_stats(&self) -> Option<trunkline_pipeline::flow::FlowStatsSnapshot> {
        self.flow_stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|s| s.snapshot())
    }

    /// Compiles `desired`, built from objects received up to the
    /// watermarks `through`, and swaps it into the fast path; returns the
    /// new tables version. `previous` is the desired state of the last
    /// install, when there was one: the tables are then updated from the
    /// installed ones (only what the change touches is built again, see
    /// `Tables::update`), else compiled. Readers keep the installed tables
    /// until the swap. Objects whose items the tables rejected are not
    /// held: they are exceptions.
    pub fn install(
        &self,
        desired: &Desired,
        previous: Option<&Desired>,
        router_generation: Option<i64>,
        through: BTreeMap<Kind, ResourceVersion>,
    ) -> i64 {
        let current = self.plan.load();
        let (tables, rejected) = match previous {
            Some(previous) => {
                let (tables, rejected, rebuilt) =
                    Tables::update(&current.tables, &previous.config, &desired.config);
                tracing::debug!(?rebuilt, "tables built");
                (tables, rejected)
            }
            None => Tables::recompile(&desired.config, &current.tables),
        };
        let version = current.version + 1;
        // Before the swap: the forwarding thread may match the new plan's
        // ports as soon as it is stored.
        self.state().first_synced.get_or_insert(version);
        for r in &rejected {
            tracing::warn!(version, "left out of the tables: {r}");
        }
        let refused = refused_objects(desired, &rejected);
        // What the installed tables hold: `desired.held` but the refused
        // (not copied: at 16K pairs that is 32K keys per install).
        let held = |key: &ObjectKey| desired.held.contains(key) && !refused.contains_key(key);
        let mut exceptions = desired.exceptions.clone();
        exceptions.extend(refused.iter().map(|(k, why)| (k.clone(), why.clone())));
        if self.keep_config.load(Ordering::Relaxed) {
            *self.config.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(Arc::new(desired.config.clone()));
        }
        let counts = ProgrammedCounts {
            logical_interfaces: tables.logical_interfaces().len() as u32,
            virtual_machine_interfaces: tables.vmis().count() as u32,
            routing_instances: tables.routing_instance_count() as u32,
            routes: tables.route_count() as u32,
            virtual_gateways: 0,
        };
        self.plan.store(Arc::new(Plan {
            version,
            synced: true,
            ports: desired.ports.clone(),
            virtual_gateways: desired
                .virtual_gateways
                .iter()
                .map(|(spec, _)| spec.clone())
                .collect(),
            tables,
            ha: desired.ha.clone(),
        }));
        let mut state = self.state();
        state.synced = true;
        state.router_generation = router_generation;
        state.mtu_problems = desired.mtu_problems.clone();
        state.fabric_waiting = desired.fabric_waiting.clone();
        state.li_ports = desired
            .config
            .logical_interfaces
            .iter()
            .filter_map(|li| {
                let port = desired.ports.get(usize::from(li.port.0))?;
                Some((li.key.clone(), port.name.clone()))
            })
            .collect();
        state.exit_networks = desired
            .config
            .networks
            .iter()
            .filter(|n| n.fabric_exit.leaves())
            .filter_map(|n| {
                let (ns, name) = n.key.split_once('/')?;
                let key = ObjectKey::namespaced(Kind::VirtualNetwork, ns, name);
                held(&key).then_some(key)
            })
            .collect();
        state.exceptions = exceptions;
        state.through = through;
        state.counts = counts;
        state.problems = desired
            .skipped
            .iter()
            .cloned()
            .chain(rejected.iter().map(ToString::to_string))
            .collect();
        state.vgw_objects = desired
            .virtual_gateways
            .iter()
            .filter(|(_, object)| !state.exceptions.contains_key(object))
            .map(|(spec, object)| (spec.interface.clone(), object.clone()))
            .collect();
        version
    }

    /// The objects received moved up to the watermarks `through` without
    /// changing the tables (what the node enforces is the same): the
    /// installed tables are those of the new objects too, with the
    /// exceptions `desired` notes.
    pub fn observe(&self, desired: &Desired, through: BTreeMap<Kind, ResourceVersion>) {
        let mut state = self.state();
        let refused: Vec<(ObjectKey, String)> = state
            .exceptions
            .iter()
            .filter(|(key, _)| desired.held.contains(*key))
            .map(|(k, why)| (k.clone(), why.clone()))
            .collect();
        let mut exceptions = desired.exceptions.clone();
        exceptions.extend(refused);
        let changed = state.exceptions != exceptions || state.through != through;
        state.exceptions = exceptions;
        state.through = through;
        drop(state);
        if changed {
            self.report_now.notify_one();
        }
    }

    /// Asks the forwarding thread to send `frame` out of `port` (of the
    /// plan of version `version`); `false` when its queue is full.
    pub fn inject(&self, version: i64, port: PortId, frame: Vec<u8>) -> bool {
        match self.inject.try_send(Injected {
            version,
            port,
            frame,
        }) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.ha_stats(|s| s.inject_dropped += 1);
                false
            }
        }
    }

    /// The receiving end of [`Control::inject`], for the forwarding thread
    /// (once).
    pub fn take_injected(&self) -> Option<Receiver<Injected>> {
        self.injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Updates the HA thread's state and counters.
    pub fn ha_stats<T>(&self, f: impl FnOnce(&mut HaStats) -> T) -> T {
        f(&mut self.ha.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// What to report on the PhysicalRouter.
    pub fn report(&self) -> NodeReport {
        let version = self.plan.load().version;
        let state = self.state();
        let mut exceptions = state.exceptions.clone();
        // A logical interface on a port that is not open carries nothing
        // (one the tables refused keeps its own reason).
        for (name, port) in &state.li_ports {
            if !state.open.contains(port) {
                exceptions
                    .entry(ObjectKey::cluster(Kind::LogicalInterface, name.as_str()))
                    .or_insert_with(|| format!("port {port} is not open"));
            }
        }
        let mut ready_vgws = 0;
        for (interface, key) in &state.vgw_objects {
            if state.vgw_ready.contains(interface) {
                ready_vgws += 1;
            } else {
                let why = state
                    .vgw_problems
                    .iter()
                    .find(|p| p.contains(interface.as_str()))
                    .cloned()
                    .unwrap_or_else(|| format!("host interface {interface} not set up yet"));
                exceptions.insert(key.clone(), why);
            }
        }
        let mut problems: Vec<String> = state
            .problems
            .iter()
            .chain(&state.vgw_problems)
            .cloned()
            .chain(self.tier_problem().map(|why| {
                format!("XDP tier: {why}; every frame goes through AF_XDP until it is fixed")
            }))
            .collect();
        if let Some(fabric) = &state.fabric_copies {
            let leaving: Vec<&ObjectKey> = state
                .exit_networks
                .iter()
                .filter(|k| !exceptions.contains_key(*k))
                .collect();
            if !leaving.is_empty() {
                let names: Vec<String> = leaving
                    .iter()
                    .map(|k| format!("{}/{}", k.namespace.as_deref().unwrap_or_default(), k.name))
                    .collect();
                problems.push(format!(
                    "VirtualNetwork(s) {} leave by the fabric untunneled (SNAT, IP fabric forwarding), but fabric port {fabric} runs over AF_PACKET, which only sees copies: the host receives their return traffic too and its kernel answers it (TCP resets, ICMP port unreachable), so they are not programmed here; run the fabric port over AF_XDP (--backend af-xdp, or auto where the XDP program loads)",
                    names.join(", ")
                ));
                for key in leaving.into_iter().cloned().collect::<Vec<_>>() {
                    exceptions.insert(
                        key,
                        format!("leaves by the fabric, but fabric port {fabric} runs over AF_PACKET (copies only): run it over AF_XDP"),
                    );
                }
            }
        }
        let mut counts = state.counts.clone();
        counts.virtual_gateways = ready_vgws;
        let mut ports = state.ports.clone();
        for (name, why) in &state.mtu_problems {
            if let Some(port) = ports.iter_mut().find(|p| &p.name == name) {
                port.message.get_or_insert_with(|| why.clone());
            }
        }
        let ha_groups = self.ha_stats(|s| s.groups.clone());
        NodeReport {
            ha_groups,
            router_generation: state.router_generation,
            synced: state.synced && state.ports_opened && state.host_settled,
            tables_version: version,
            backend: state.backend.clone(),
            ports,
            mtu_problems: state
                .mtu_problems
                .iter()
                .map(|(port, why)| format!("{port}: {why}"))
                .collect(),
            fabric_waiting: state.fabric_waiting.clone(),
            counts,
            through: state.through.clone(),
            exceptions,
            problems,
        }
    }

    /// The forwarding thread opened the fabric port `name` over a backend
    /// that only sees copies of its traffic (AF_PACKET), or over one that
    /// takes what it owns away from the host (`None`).
    pub fn set_fabric_copies(&self, name: Option<String>) {
        let mut state = self.state();
        if state.fabric_copies != name {
            state.fabric_copies = name;
            drop(state);
            self.report_now.notify_one();
        }
    }

    /// The forwarding thread opened (or failed to open) the plan's ports:
    /// their states, the names of those open, and the backend in use.
    pub fn set_ports(&self, ports: Vec<PortStatus>, open: Vec<String>, backend: Option<String>) {
        let mut state = self.state();
        state.ports = ports;
        state.open = open;
        if backend.is_some() {
            state.backend = backend;
        }
        drop(state);
        self.report_now.notify_one();
    }

    /// The forwarding thread has opened (or tried to open) the ports of
    /// plan `version`.
    pub fn ports_match(&self, version: i64) {
        let mut state = self.state();
        if state.first_synced.is_some_and(|first| version >= first) && !state.ports_opened {
            state.ports_opened = true;
            drop(state);
            self.report_now.notify_one();
        }
    }

    /// The ports the forwarding thread holds open.
    pub fn open_ports(&self) -> Vec<String> {
        self.state().open.clone()
    }

    /// The host thread read an open port's link state: `Up`, or `Down`
    /// with why (a port that could not be opened keeps its own state).
    pub fn set_link(&self, name: &str, link: Result<(), String>) {
        let mut state = self.state();
        if !state.open.iter().any(|o| o == name) {
            return;
        }
        if let Some(status) = state.ports.iter_mut().find(|p| p.name == name) {
            let (wanted, message) = match link {
                Ok(()) => ("Up", None),
                Err(why) => ("Down", Some(why)),
            };
            if status.state != wanted || status.message != message {
                tracing::info!(port = name, state = wanted, "link state changed");
                status.state = wanted.to_owned();
                status.message = message;
                self.report_now.notify_one();
            }
        }
    }

    /// The host thread set up the plan's virtual gateways: the interfaces
    /// in place, and the problems of the others; `waiting` when some wait
    /// for the forwarding thread to open their interface.
    pub fn set_virtual_gateways(&self, ready: Vec<String>, problems: Vec<String>, waiting: bool) {
        let mut state = self.state();
        let settled = !waiting || self.started.elapsed() >= SETTLE_WITHIN;
        let changed = state.vgw_ready != ready
            || state.vgw_problems != problems
            || (settled && !state.host_settled);
        state.host_settled |= settled;
        state.vgw_ready = ready;
        state.vgw_problems = problems;
        drop(state);
        if changed {
            self.report_now.notify_one();
        }
    }

    /// Milliseconds since the agent started: the fast path's clock.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Records that the forwarding thread is alive.
    pub fn beat(&self) {
        let beat = self.started.elapsed().as_millis() as u64;
        self.heartbeat_ms.store(beat, Ordering::Relaxed);
    }

    /// Time since the forwarding thread last went round its loop.
    pub fn heartbeat_age(&self) -> Duration {
        let beat = Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(beat)
    }

    /// Asks the threads to stop (the forwarding thread closes its ports).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the threads were asked to stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn tier(&self) -> MutexGuard<'_, TierState> {
        self.tier.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The forwarding thread loaded the XDP tier: its maps.
    pub fn set_tier_maps(&self, maps: Arc<TierMaps>) {
        self.tier().maps = Some(maps);
    }

    /// The XDP tier's maps, when the tier is loaded.
    pub fn tier_maps(&self) -> Option<Arc<TierMaps>> {
        self.tier().maps.clone()
    }

    /// The forwarding thread matched its ports to plan `version`: the
    /// interface index of each port on the tier (index: port id).
    pub fn set_tier_ports(&self, version: i64, ifindexes: Vec<Option<u32>>) {
        let mut tier = self.tier();
        if tier.ports.0 != version || tier.ports.1 != ifindexes {
            tier.ports = (version, ifindexes);
        }
    }

    /// See [`Control::set_tier_ports`].
    pub fn tier_ports(&self) -> (i64, Vec<Option<u32>>) {
        self.tier().ports.clone()
    }

    /// The mirror installed the image of plan `version` (`Ok`, with its
    /// slots) or could not (`Err`, why).
    pub fn set_tier_installed(&self, version: i64, result: Result<Arc<Slots>, String>) {
        let mut tier = self.tier();
        match result {
            Ok(slots) => {
                tier.installed = Some((version, slots));
                tier.problem = None;
            }
            Err(why) => tier.problem = Some(why),
        }
    }

    /// The plan version the kernel decides with, and the slots of its
    /// image; `None` until an image is installed.
    pub fn tier_installed(&self) -> Option<(i64, Arc<Slots>)> {
        self.tier().installed.clone()
    }

    /// Why the XDP tier hands everything off, if an install failed.
    pub fn tier_problem(&self) -> Option<String> {
        self.tier().problem.clone()
    }
}

/// The API objects behind the items the tables rejected: they are not
/// programmed, whatever the desired state says.
fn refused_objects(desired: &Desired, rejected: &[Rejected]) -> BTreeMap<ObjectKey, String> {
    let by_name = |kind: Kind, key: &str| -> Vec<ObjectKey> {
        let key = match key.split_once('/') {
            Some((ns, name)) if kind.is_namespaced() => ObjectKey::namespaced(kind, ns, name),
            _ => ObjectKey::cluster(kind, key),
        };
        desired.held.get(&key).cloned().into_iter().collect()
    };
    let gateway_of_port = |port: trunkline_pipeline::PortId| -> Vec<ObjectKey> {
        let Some(spec) = desired.ports.get(usize::from(port.0)) else {
            return Vec::new();
        };
        desired
            .virtual_gateways
            .iter()
            .filter(|(vgw, _)| vgw.interface == spec.name)
            .map(|(_, object)| object.clone())
            .collect()
    };
    let mut refused = BTreeMap::new();
    for r in rejected {
        let objects = match &r.object {
            ObjectRef::LogicalInterface(key) => by_name(Kind::LogicalInterface, key),
            ObjectRef::Vmi(key) => by_name(Kind::VirtualMachineInterface, key),
            ObjectRef::Network(key) | ObjectRef::Subnet { network: key, .. } => {
                by_name(Kind::VirtualNetwork, key)
            }
            ObjectRef::Port(port) => gateway_of_port(*port),
            // A route toward a virtual gateway's port is part of it.
            ObjectRef::Route {
                next_hop: NextHopConfig::Port(port),
                ..
            } => gateway_of_port(*port),
            // A DC gateway's route is part of it.
            ObjectRef::Route {
                next_hop: NextHopConfig::Tunnel { peer, .. },
                ..
            } => peer
                .strip_prefix("DCGateway/")
                .map(|name| by_name(Kind::DCGateway, name))
                .unwrap_or_default(),
            ObjectRef::HaGroup(key) => by_name(Kind::GatewayHAGroup, key),
            ObjectRef::Route { .. } => Vec::new(),
            // A DC gateway is programmed when its peer is.
            ObjectRef::Peer(key) if key.starts_with("DCGateway/") => {
                by_name(Kind::DCGateway, &key["DCGateway/".len()..])
            }
            // An external VTEP is programmed when its peer and endpoints are.
            ObjectRef::Peer(key) | ObjectRef::RemoteVmi(key)
                if key.starts_with("ExternalVTEP/") =>
            {
                let rest = &key["ExternalVTEP/".len()..];
                by_name(Kind::ExternalVTEP, rest.split('/').next().unwrap_or(rest))
            }
            ObjectRef::RemoteVmi(key) => by_name(Kind::VirtualMachineInterface, key),
            ObjectRef::Peer(_) | ObjectRef::Node | ObjectRef::Underlay | ObjectRef::NorthSouth => {
                Vec::new()
            }
        };
        for object in objects {
            refused
                .entry(object)
                .or_insert_with(|| format!("left out of the tables: {r}"));
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_pipeline::config::{
        CreationOrder, LogicalInterfaceConfig, NetworkConfig, NodeConfig, PortConfig, PortId,
        PortKind, RouteConfig, VmiConfig,
    };

    fn object(kind: &str, namespace: Option<&str>, name: &str) -> ObjectKey {
        let kind = Kind::from_name(kind).unwrap();
        match namespace {
            Some(ns) => ObjectKey::namespaced(kind, ns, name),
            None => ObjectKey::cluster(kind, name),
        }
    }

    /// Two logical interfaces on one (port, VLAN) (the tables keep the
    /// older), and two virtual gateways with the same default route in one
    /// network (the tables keep the first): what the tables refused is not
    /// reported as programmed, and the counts are the tables'.
    #[test]
    fn what_the_tables_refuse_is_not_reported_programmed() {
        let li = |key: &str, created| LogicalInterfaceConfig {
            key: key.into(),
            port: PortId(0),
            vlan: 100,
            vmi: "t/vmi".into(),
            order: CreationOrder {
                created_secs: created,
                name: key.into(),
            },
        };
        let tap = |id: u16, name: &str| PortConfig {
            id: PortId(id),
            name: name.into(),
            mtu: None,
            kind: PortKind::Host {
                network: "t/net".into(),
                peer_mac: [2, 0, 0, 0, 0, id as u8],
            },
        };
        let default_route = |port: u16| RouteConfig {
            network: "t/net".into(),
            prefix: "0.0.0.0/0".parse().unwrap(),
            next_hop: NextHopConfig::Port(PortId(port)),
        };
        let desired = Desired {
            ports: vec![
                PortSpec {
                    name: "eth1".into(),
                    role: crate::desired::PortRole::Trunk,
                },
                PortSpec {
                    name: "vgw1".into(),
                    role: crate::desired::PortRole::Tap,
                },
                PortSpec {
                    name: "vgw2".into(),
                    role: crate::desired::PortRole::Tap,
                },
            ],
            virtual_gateways: vec![
                (
                    VgwSpec {
                        name: "g1".into(),
                        interface: "vgw1".into(),
                        mac: [2, 0, 0, 0, 0, 1],
                        subnets: vec![],
                    },
                    object("VirtualGateway", None, "g1"),
                ),
                (
                    VgwSpec {
                        name: "g2".into(),
                        interface: "vgw2".into(),
                        mac: [2, 0, 0, 0, 0, 2],
                        subnets: vec![],
                    },
                    object("VirtualGateway", None, "g2"),
                ),
            ],
            config: trunkline_pipeline::NodeConfig {
                ports: vec![
                    PortConfig {
                        id: PortId(0),
                        name: "eth1".into(),
                        mtu: None,
                        kind: PortKind::Gateway,
                    },
                    tap(1, "vgw1"),
                    tap(2, "vgw2"),
                ],
                networks: vec![NetworkConfig {
                    key: "t/net".into(),
                    vrf: 1,
                    ..Default::default()
                }],
                vmis: vec![VmiConfig {
                    key: "t/vmi".into(),
                    network: "t/net".into(),
                    mac: [2, 0, 0, 0, 1, 1],
                    ips: vec!["10.0.0.10".parse().unwrap()],
                    allowed_address_pairs: vec![],
                    port_security: true,
                    label: None,
                }],
                logical_interfaces: vec![li("older", 1), li("newer", 2)],
                routes: vec![default_route(1), default_route(2)],
                ..Default::default()
            },
            held: [
                object("LogicalInterface", None, "older"),
                object("LogicalInterface", None, "newer"),
                object("VirtualMachineInterface", Some("t"), "vmi"),
                object("VirtualNetwork", Some("t"), "net"),
            ]
            .into(),
            ..Default::default()
        };
        let control = Control::default();
        let through = BTreeMap::from([(
            Kind::LogicalInterface,
            ResourceVersion::parse("42").unwrap(),
        )]);
        control.install(&desired, None, Some(1), through.clone());
        // Before its port is open, a logical interface carries nothing;
        // and until the threads caught up, nothing is reported at all.
        let early = control.report();
        assert_eq!(
            early
                .exceptions
                .get(&object("LogicalInterface", None, "older")),
            Some(&"port eth1 is not open".to_owned())
        );
        assert!(!early.synced, "no report before the ports are open");
        control.set_ports(
            vec![],
            vec!["eth1".into(), "vgw1".into(), "vgw2".into()],
            None,
        );
        control.ports_match(1);
        control.set_virtual_gateways(vec![], vec!["vgw1 not open yet".into()], true);
        assert!(
            !control.report().synced,
            "no report while virtual gateways wait for their interface"
        );
        control.set_virtual_gateways(vec!["vgw1".into(), "vgw2".into()], vec![], false);
        let report = control.report();
        assert!(report.synced);
        let refused: Vec<&str> = report.exceptions.keys().map(|o| o.name.as_str()).collect();
        assert_eq!(refused, ["newer", "g2"], "{:?}", report.exceptions);
        assert!(
            report
                .exceptions
                .values()
                .all(|why| why.starts_with("left out of the tables"))
        );
        assert_eq!(report.through, through);
        assert_eq!(report.counts.logical_interfaces, 1);
        assert_eq!(report.counts.virtual_gateways, 1);
        assert!(report.problems.iter().any(|p| p.contains("newer")));
    }

    /// A restarted agent goes on with the version count its predecessor
    /// reported, so the same tables report the same version.
    #[test]
    fn a_restart_goes_on_with_the_reported_version() {
        let control = Control::default();
        control.resume_version(Some(7));
        assert_eq!(
            control.install(&Desired::default(), None, Some(1), BTreeMap::new()),
            7
        );
        assert_eq!(
            control.install(&Desired::default(), None, Some(1), BTreeMap::new()),
            8
        );
        // Only before the first install.
        control.resume_version(Some(3));
        assert_eq!(control.plan().version, 8);
        let fresh = Control::default();
        fresh.resume_version(None);
        assert_eq!(
            fresh.install(&Desired::default(), None, None, BTreeMap::new()),
            1
        );
    }

    /// The empty plan a restarted agent resumes its count with holds no
    /// port: the forwarding thread matching it must not count as opening
    /// the ports of a synced plan, or the first report would call every
    /// logical interface's port not open (and the operator would flip
    /// their conditions) until the real ports open.
    #[test]
    fn the_resumed_plan_does_not_count_as_the_ports_opened() {
        let control = Control::default();
        assert!(!control.plan().synced);
        control.resume_version(Some(7));
        let resumed = control.plan().version;
        assert!(
            !control.plan().synced,
            "the resumed plan declares nothing: the host thread must not \
             remove virtual gateway interfaces it leaves out"
        );
        control.set_ports(vec![], vec![], None);
        control.ports_match(resumed);
        control.set_virtual_gateways(vec![], vec![], false);
        let version = control.install(&Desired::default(), None, Some(1), BTreeMap::new());
        assert!(control.plan().synced);
        assert!(
            !control.report().synced,
            "no report before the synced plan's ports are open"
        );
        control.ports_match(version);
        assert!(control.report().synced);
    }

    /// A network leaving by the fabric is not reported programmed while the
    /// fabric port only sees copies (AF_PACKET): the host's kernel would
    /// answer its return traffic. The other network is unaffected.
    #[test]
    fn a_fabric_exit_over_af_packet_is_not_reported_programmed() {
        use trunkline_pipeline::config::FabricExit;
        let network = |key: &str, vrf, fabric_exit| NetworkConfig {
            key: key.into(),
            vrf,
            fabric_exit,
            ..Default::default()
        };
        let desired = Desired {
            config: trunkline_pipeline::NodeConfig {
                ports: vec![PortConfig {
                    id: PortId(0),
                    name: "eth0".into(),
                    mtu: None,
                    kind: PortKind::Fabric,
                }],
                underlay: Some(trunkline_pipeline::config::UnderlayConfig {
                    port: PortId(0),
                    address: "10.0.0.1".parse().unwrap(),
                    mac: [2, 0, 0, 0, 0, 1],
                    mtu: 1500,
                }),
                networks: vec![
                    network("t/out", 1, FabricExit::Snat),
                    network("t/in", 2, FabricExit::None),
                ],
                ..Default::default()
            },
            held: [
                object("VirtualNetwork", Some("t"), "out"),
                object("VirtualNetwork", Some("t"), "in"),
            ]
            .into(),
            ..Default::default()
        };
        let control = Control::default();
        control.install(&desired, None, Some(1), BTreeMap::new());
        // The networks the report does not hold (its exceptions).
        let names = |report: &NodeReport| -> Vec<String> {
            report.exceptions.keys().map(|o| o.name.clone()).collect()
        };
        assert!(names(&control.report()).is_empty());
        control.set_fabric_copies(Some("eth0".into()));
        let report = control.report();
        assert_eq!(names(&report), ["out"]);
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("t/out") && p.contains("AF_PACKET") && p.contains("eth0")),
            "{:?}",
            report.problems
        );
        control.set_fabric_copies(None);
        assert!(names(&control.report()).is_empty());
    }

    #[test]
    fn an_install_after_another_updates_the_tables_as_a_compilation_would() {
        let vmi = |name: &str, ip: &str| VmiConfig {
            key: format!("t/{name}"),
            network: "t/net".into(),
            mac: [2, 0, 0, 0, 1, name.len() as u8],
            ips: vec![ip.parse().unwrap()],
            allowed_address_pairs: vec![],
            port_security: true,
            label: None,
        };
        let first = Desired {
            config: NodeConfig {
                networks: vec![NetworkConfig {
                    key: "t/net".into(),
                    vrf: 1,
                    ..Default::default()
                }],
                vmis: vec![vmi("a", "10.0.0.10"), vmi("bb", "10.0.0.11")],
                ..Default::default()
            },
            ..Default::default()
        };
        let mut second = first.clone();
        second.config.vmis[1].ips = vec!["10.0.0.12".parse().unwrap()];
        let control = Control::default();
        control.keep_config(true);
        control.install(&first, None, Some(1), BTreeMap::new());
        let plan = control.plan();
        let bb = plan.tables.vmi_id("t/bb").unwrap();
        let counters: *const _ = plan.tables.vmi(bb).unwrap().counters();
        control.install(&second, Some(&first), Some(1), BTreeMap::new());
        let (version, installed, scratch) = control.tables_and_scratch().unwrap();
        assert_eq!(version, 2);
        assert_eq!(installed, scratch);
        let plan = control.plan();
        let vmi = plan
            .tables
            .vmi(plan.tables.vmi_id("t/bb").unwrap())
            .unwrap();
        assert_eq!(
            vmi.ips(),
            ["10.0.0.12".parse::<std::net::IpAddr>().unwrap()]
        );
        // Its counters carried over.
        assert!(std::ptr::eq(vmi.counters(), counters));
    }
}
