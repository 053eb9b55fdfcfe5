//! The node dataplane agent: one per gateway node.
//!
//! ```text
//!  kube-apiserver
//!    | watch (reflectors): LogicalInterfaces, VMIs, VirtualNetworks, VirtualGateways, ExternalVTEPs,
//!    |   GatewayHAGroups, DCGateways, SecurityGroups, (Cluster)VirtualNetworkPolicies
//!    |   labelled node.trunkline.io/<node> (the API server filters),
//!    |   every PhysicalRouter (one per node); per kind, the highest resourceVersion received (watermark)
//!    v   each object converted once as its event arrives (model::from_api) and weighed
//!  stores of shared domain objects (store.rs)
//!        --(a change a build reads (relevance.rs); builds paced by a CPU budget with credit (pace.rs))-->
//!        Snapshot (pointers) --> last_accepted (an edit waiting for the operator: its last
//!        accepted version) --> desired::desired()  (pure: accepted objects of this node)
//!     (an event that changes nothing a build reads only moves the report's watermarks)
//!                                          |
//!                                          v
//!                 Control::install: compile -> Plan { tables, ports, vgws } --ArcSwap--+
//!                                                                                       |
//!  forwarding thread (forward.rs): ports (XDP tier + AF_XDP / AF_XDP / AF_PACKET / tap),|
//!     per batch: load the plan, pipeline::process each frame the kernel                 |
//!     handed off, send, count what was sent                              <-------------+
//!  mirror thread (mirror.rs): the plan's tables into the XDP tier's maps  <-------------+
//!     (a generation swap per change)                                                   |
//!  host thread (host.rs): netlink: virtual gateways, link states, fabric facts and      |
//!     routes, underlay next hops of tunnel peers and of the fabric        <-------------+
//!  HA thread (ha/): heartbeats and claims over the fabric, role and path cells,         |
//!     takeover announcements (injected into the forwarding thread)        <-------------+
//!
//!  reporter (report.rs): NodeReport (watermarks of the installed tables, exceptions)
//!     -> PhysicalRouter status (server-side apply, only on change)
//!  PacketTraces (trace.rs, observe.rs): the questions for this node (watched with
//!     fieldSelector spec.node=<node>), answered in their status from the current plan
//!  http (http.rs, metrics.rs): /healthz /readyz /metrics
//! ```
//!
//! When the API server is unreachable the watches retry with backoff and the
//! forwarding thread keeps the last tables: traffic never depends on the
//! control plane being up.

pub mod build;
pub mod control;
pub mod desired;
pub mod flow_mirror;
pub mod forward;
pub mod ha;
pub mod host;
pub mod hostnet;
pub mod http;
pub mod last_accepted;
pub mod metrics;
pub mod mirror;
pub mod network_policies;
pub mod observe;
pub mod pace;
pub mod relevance;
pub mod report;
pub mod security_groups;
pub mod store;
pub mod trace;
pub mod trim;
pub mod uninstall;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::Notify;
use trunkline_api::{
    ClusterVirtualNetworkPolicy, DCGateway, ExternalVTEP, GatewayHAGroup, LogicalInterface,
    PhysicalRouter, SecurityGroup, VirtualGateway, VirtualMachineInterface, VirtualNetwork,
    VirtualNetworkPolicy,
};
use trunkline_model::{Kind, ResourceVersion};
use trunkline_xdp::{AttachMode, BackendChoice};

use crate::control::{Control, WakeOutcome};
use crate::relevance::{Changes, Relevance, Relevant};
use crate::report::Reporter;

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The node's name (= its PhysicalRouter's name).
    pub node: String,
    /// Fast-path I/O backend.
    pub backend: BackendChoice,
    /// Where the XDP tier's program runs: native (the driver; generic when
    /// the driver refuses) or generic.
    pub xdp_mode: AttachMode,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub metrics_addr: std::net::SocketAddr,
    /// Network namespace of the ports (labs and tests only: a deployed agent
    /// runs in the node's namespace).
    pub port_netns: Option<PathBuf>,
    /// Quiet time after a change before tables are rebuilt.
    pub debounce: Duration,
    /// Longest time between two status checks.
    pub report_interval: Duration,
    /// UDP port of gateway HA heartbeats and claims on the fabric.
    pub ha_port: u16,
    /// SCHED_RR priority of the HA thread (0: normal scheduling).
    pub ha_realtime_priority: u8,
    /// The ports (and ICMP identifiers) SNAT translates to on the underlay
    /// address: a range the host's own sockets never use.
    pub snat_ports: (u16, u16),
    /// The flow table's size and timeouts (SNAT).
    pub flows: trunkline_pipeline::flow::FlowConfig,
    /// Each VMI's budget of frames answered by the gateway.
    pub punt_limit: trunkline_pipeline::PuntLimit,
    /// The DaemonSet running this agent, if any: when it is gone as the
    /// agent stops, the agent removes the host state it made
    /// ([`uninstall`]).
    pub owner: Option<uninstall::Owner>,
    /// Serve `/debug/tables` (keeps a copy of the installed configuration).
    pub debug_tables: bool,
}

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metrics endpoint could not be served.
    #[error("serving metrics on {addr}: {source}")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("starting the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
}

/// The highest resource version received by one watch: every object of
/// its selection changed at or before it is in its store (events come in
/// resource version order; a relist counts once complete).
#[derive(Clone, Debug, Default)]
struct Watermark(Arc<std::sync::Mutex<Option<ResourceVersion>>>);

impl Watermark {
    fn raise(&self, version: Option<ResourceVersion>) {
        let mut mark = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if version > *mark {
            *mark = version;
        }
    }

    fn get(&self) -> Option<ResourceVersion> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn version_of<K: kube::Resource>(object: &K) -> Option<ResourceVersion> {
    object
        .meta()
        .resource_version
        .as_deref()
        .and_then(ResourceVersion::parse)
}

/// Starts a watch of `api` whose objects are converted once into a
/// [`store::Store`] and weighed: each event is counted in `changes` (then
/// wakes the compile loop), raises `mark` and is counted in `control`.
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    changes: Arc<Changes>,
    mark: Watermark,
    control: Arc<Control>,
) -> store::Store<K::Domain>
where
    K: Relevant + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = store::store();
    let kind = K::kind(&Default::default()).to_string();
    let stream = watcher(api, config)
        // Only what a build reads (see `trim`); the object is converted
        // and then dropped.
        .modify(|o: &mut K| o.trim())
        .backoff(trunkline_client::WatchBackoff::default());
    // The domain object of `o` and its fingerprint.
    let convert = |o: &K| {
        let mut object = o.convert();
        let weight = K::weight(&mut object);
        (object, weight)
    };
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        // The highest version of a relist in progress: counted once the
        // store holds the whole list.
        let mut listing: Option<ResourceVersion> = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    control.count_watch_event(&kind);
                    // Counted in `changes` before the watermark moves.
                    match &event {
                        watcher::Event::Apply(o) => {
                            let (object, weight) = convert(o);
                            let before =
                                writer.applied(store::key_of(o), object, weight.fingerprint);
                            changes.note(weight.relevance(before));
                            mark.raise(version_of(o))
                        }
                        watcher::Event::Delete(o) => {
                            writer.deleted(&store::key_of(o));
                            changes.note(Relevance::Changed);
                            mark.raise(version_of(o))
                        }
                        watcher::Event::Init => {
                            listing = None;
                            writer.relist_started()
                        }
                        watcher::Event::InitApply(o) => {
                            let (object, weight) = convert(o);
                            writer.listed(store::key_of(o), object, weight.fingerprint);
                            listing = listing.max(version_of(o))
                        }
                        watcher::Event::InitDone => {
                            if writer.relist_done() {
                                changes.note(Relevance::Changed)
                            }
                            mark.raise(listing.take())
                        }
                    }
                    changes.wake()
                }
                Err(e) => {
                    tracing::warn!(kind, error = %e, "watch interrupted; forwarding continues with the last tables")
                }
            }
        }
    });
    reader
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Runs the agent until `shutdown` completes.
pub async fn run(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let shared = Arc::new(Control::default());
    shared.keep_config(options.debug_tables);
    let forwarding = forward::spawn(
        shared.clone(),
        options.backend,
        options.xdp_mode,
        options.port_netns.clone(),
        options.flows,
    )
    .map_err(|e| Error::Thread("forwarding", e))?;
    let mirror_thread =
        mirror::spawn(shared.clone()).map_err(|e| Error::Thread("xdp-mirror", e))?;
    let fabric = Arc::new(std::sync::Mutex::new(host::Fabric::default()));
    let fabric_changed = Arc::new(Notify::new());
    let host_thread = host::spawn(
        shared.clone(),
        fabric.clone(),
        fabric_changed.clone(),
        options.port_netns.clone(),
        options.snat_ports,
    )
    .map_err(|e| Error::Thread("host", e))?;

    let report_now = shared.report_now();
    let ha_thread = ha::thread::spawn(
        shared.clone(),
        options.port_netns.clone(),
        options.ha_port,
        options.ha_realtime_priority,
        report_now.clone(),
    )
    .map_err(|e| Error::Thread("HA", e))?;

    let http = {
        let shared = shared.clone();
        let metrics = Arc::new(metrics::Metrics::new(shared.clone()));
        let addr = options.metrics_addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Http { addr, source })?;
        tokio::spawn(async move {
            if let Err(e) = http::serve(listener, shared, metrics).await {
                tracing::error!(error = %e, "metrics endpoint stopped");
            }
        })
    };

    let changes = Arc::new(Changes::default());
    // Only the objects labelled for this node: the operator labels what
    // each node must hold (and what it needs of its peers).
    let mine = watcher::Config::default().labels(&trunkline_api::node_label::key_of(&options.node));
    let marks: BTreeMap<Kind, Watermark> = [
        Kind::LogicalInterface,
        Kind::VirtualMachineInterface,
        Kind::VirtualNetwork,
        Kind::VirtualGateway,
        Kind::ExternalVTEP,
        Kind::GatewayHAGroup,
        Kind::DCGateway,
        Kind::SecurityGroup,
        Kind::VirtualNetworkPolicy,
        Kind::ClusterVirtualNetworkPolicy,
    ]
    .into_iter()
    .map(|kind| (kind, Watermark::default()))
    .collect();
    let lis = reflect(
        Api::<LogicalInterface>::all(client.clone()),
        mine.clone(),
        changes.clone(),
        marks[&Kind::LogicalInterface].clone(),
        shared.clone(),
    );
    let vmis = reflect(
        Api::<VirtualMachineInterface>::all(client.clone()),
        mine.clone(),
        changes.clone(),
        marks[&Kind::VirtualMachineInterface].clone(),
        shared.clone(),
    );
    let networks = reflect(
        Api::<VirtualNetwork>::all(client.clone()),
        mine.clone(),
        changes.clone(),
        marks[&Kind::VirtualNetwork].clone(),
        shared.clone(),
    );
    let gateways = reflect(
        Api::<VirtualGateway>::all(client.clone()),
        mine.clone(),
        changes.clone(),
        marks[&Kind::VirtualGateway].clone(),
        shared.clone(),
    );
    // Every router (one per node, so few): the peers' underlay addresses
    // come from theirs. Routers are not in the report's watermarks: this
    // agent's own status writes would move them.
    let routers = reflect(
        Api::<PhysicalRouter>::all(client.clone()),
        watcher::Config::default(),
        changes.clone(),
        Watermark::default(),
        shared.clone(),
    );
    let vteps = reflect(
        Api::<ExternalVTEP>::all(client.clone()),
        mine.clone(),
        changes.clone(),
        marks[&Kind::ExternalVTEP].clone(),
        shared.clone(),
    );
    let groups = reflect(
        Api::<GatewayHAGroup>::all(client.clone()),
        mine.clone(),
        changes.clone(),
        marks[&Kind::GatewayHAGroup].clone(),
        shared.clone(),
    );
    let dc_gateways = reflect(
        Api::<DCGateway>::all(client.clone()),
        mine.clone(),
        changes.clone(),
        marks[&Kind::DCGateway].clone(),
        shared.clone(),
    );
    let security_groups = reflect(
        Api::<SecurityGroup>::all(client.clone()),
        mine.clone(),
        changes.clone(),
        marks[&Kind::SecurityGroup].clone(),
        shared.clone(),
    );
    // The network policies connecting two networks of this node (the
    // operator labels them so): the links between its networks.
    let policy_store = reflect(
        Api::<VirtualNetworkPolicy>::all(client.clone()),
        mine.clone(),
        changes.clone(),
        marks[&Kind::VirtualNetworkPolicy].clone(),
        shared.clone(),
    );
    // The administrator's policies connecting networks of different
    // namespaces, labelled the same way.
    let cluster_policy_store = reflect(
        Api::<ClusterVirtualNetworkPolicy>::all(client.clone()),
        mine,
        changes.clone(),
        marks[&Kind::ClusterVirtualNetworkPolicy].clone(),
        shared.clone(),
    );

    let reporter = {
        let shared = shared.clone();
        let report_now = report_now.clone();
        let mut reporter = Reporter::new(Api::all(client.clone()), &options.node);
        let interval = options.report_interval;
        tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(interval, report_now.notified()).await;
                let report = shared.report();
                // No PhysicalRouter (yet): nothing to report on.
                if !report.synced || report.router_generation.is_none() {
                    continue;
                }
                match reporter.report(&report).await {
                    Ok(true) => {
                        shared.count_report();
                        tracing::debug!(version = report.tables_version, "status reported")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "could not report status; will retry");
                        reporter.invalidate();
                    }
                }
            }
        })
    };

    let tracer = tokio::spawn(trace::run(
        client.clone(),
        options.node.clone(),
        shared.clone(),
    ));

    let node = options.node.clone();
    let punt_limit = options.punt_limit;
    let installer = shared.clone();
    let compile_loop = async move {
        for (kind, ready) in [
            ("LogicalInterface", lis.wait_until_ready().await),
            ("VirtualMachineInterface", vmis.wait_until_ready().await),
            ("VirtualNetwork", networks.wait_until_ready().await),
            ("PhysicalRouter", routers.wait_until_ready().await),
            ("VirtualGateway", gateways.wait_until_ready().await),
            ("ExternalVTEP", vteps.wait_until_ready().await),
            ("GatewayHAGroup", groups.wait_until_ready().await),
            ("DCGateway", dc_gateways.wait_until_ready().await),
            ("SecurityGroup", security_groups.wait_until_ready().await),
            (
                "VirtualNetworkPolicy",
                policy_store.wait_until_ready().await,
            ),
            (
                "ClusterVirtualNetworkPolicy",
                cluster_policy_store.wait_until_ready().await,
            ),
        ] {
            if !ready {
                tracing::error!(kind, "watch ended before syncing");
            }
        }
        tracing::info!(node, "watches synced");
        // What an earlier agent on this node reported: everything it had
        // received is in the lists this one just received, so its
        // watermarks still hold (an agent restart then moves nothing).
        // Its tables' version count goes on, too.
        let own = routers.get(&(None, node.clone()));
        let floor: BTreeMap<Kind, ResourceVersion> = own
            .as_ref()
            .map(|r| r.report.programmed_through.clone())
            .unwrap_or_default();
        installer.resume_version(own.as_ref().and_then(|r| r.report.tables_version));
        // The tables installed, and the build they came from (whose
        // exceptions the report holds until the next build).
        let mut installed: Option<(desired::Desired, Option<i64>)> = None;
        // What a build keeps for the next: a spec edit is enforced once
        // accepted, until then the version accepted last; the placement.
        let mut kept = build::Kept::default();
        let mut pacer = pace::Pacer::for_debounce(options.debounce);
        // The counts of `changes` the installed build saw.
        let mut built: Option<relevance::Seen> = None;
        // Since when an edit waiting for the operator holds the report.
        let mut waiting_since: Option<tokio::time::Instant> = None;
        // Since when watermarks moved by events no build reads wait.
        let mut marks_since: Option<tokio::time::Instant> = None;
        let mut fabric_dirty = true;
        loop {
            // The watermarks first: the stores hold at least that much,
            // and `changes` counts every event below them.
            let through: BTreeMap<Kind, ResourceVersion> = marks
                .iter()
                .filter_map(|(kind, mark)| {
                    let version = mark.get().max(floor.get(kind).cloned())?;
                    Some((*kind, version))
                })
                .collect();
            let seen = changes.seen();
            let now = tokio::time::Instant::now();
            let waiting = built.is_some_and(|b| b.waiting != seen.waiting);
            if waiting {
                waiting_since.get_or_insert(now);
            }
            let must_build = fabric_dirty
                || built.is_none_or(|b| b.changed != seen.changed)
                || waiting_since.is_some_and(|t| now >= t + relevance::WAITING_LIMIT);
            if !must_build {
                if waiting {
                    // Its acceptance or refusal comes next, and is built;
                    // the report stays where it is meanwhile (a watermark
                    // past the edit would say it is programmed).
                    installer.count_wake(WakeOutcome::Waiting, None);
                } else if let Some((desired, _)) = &installed {
                    // Reported a little later, or by a build before then.
                    let since = *marks_since.get_or_insert(now);
                    if now >= since + relevance::WATERMARK_DELAY {
                        installer.observe(desired, through);
                        installer.count_wake(WakeOutcome::WatermarksOnly, None);
                        marks_since = None;
                    }
                }
                let limit = [
                    waiting_since.map(|t| t + relevance::WAITING_LIMIT),
                    marks_since.map(|t| t + relevance::WATERMARK_DELAY),
                ]
                .into_iter()
                .flatten()
                .min();
                tokio::select! {
                    _ = changes.woken() => {}
                    _ = fabric_changed.notified() => fabric_dirty = true,
                    _ = sleep_until_some(limit) => {}
                }
                continue;
            }
            // A build, when the budget allows (see `pace`): the events
            // meanwhile are built with it.
            let start = pacer.next_start(now.into_std());
            if start > now.into_std() {
                tokio::time::sleep_until(start.into()).await;
                continue;
            }
            let started = now;
            fabric_dirty = false;
            // Pointers to the objects the watches converted (no copy).
            let router = routers.get(&(None, node.clone()));
            let snapshot = trunkline_model::Snapshot {
                physical_routers: routers.list(),
                logical_interfaces: lis.list(),
                virtual_machine_interfaces: vmis.list(),
                virtual_networks: networks.list(),
                gateway_ha_groups: groups.list(),
                virtual_gateways: gateways.list(),
                external_vteps: vteps.list(),
                dc_gateways: dc_gateways.list(),
                security_groups: security_groups.list(),
                // Read apart (`network_policies`), below.
                virtual_network_policies: Vec::new(),
            };
            let facts = {
                let fabric = fabric.lock().unwrap_or_else(|p| p.into_inner());
                desired::HostFacts {
                    fabric: fabric.facts,
                    fabric_routes: fabric.routes.clone(),
                    snat_ports: options.snat_ports,
                    ..Default::default()
                }
            };
            let mut policies = policy_store.list();
            policies.extend(cluster_policy_store.list());
            let inputs = build::BuildInputs {
                node: &node,
                facts: &facts,
                policies: &policies,
                punt_limit,
            };
            let desired = build::build(snapshot, &inputs, &mut kept);
            fabric
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .interface
                .clone_from(&desired.fabric_interface);
            let generation = router.as_ref().map(|r| r.meta.generation);
            built = Some(seen);
            waiting_since = None;
            marks_since = None;
            if installed
                .as_ref()
                .is_some_and(|(d, g)| d.same_tables(&desired) && *g == generation)
            {
                installer.observe(&desired, through);
                let took = started.elapsed();
                pacer.built(started.into_std(), took);
                installer.count_wake(WakeOutcome::BuildUnchanged, Some(took));
                // Its exceptions are the report's now.
                installed = Some((desired, generation));
            } else {
                for skipped in &desired.skipped {
                    tracing::debug!(node, "{skipped}");
                }
                let previous = installed.as_ref().map(|(d, _)| d);
                let version = installer.install(&desired, previous, generation, through);
                let took = started.elapsed();
                tracing::info!(
                    node,
                    version,
                    logical_interfaces = desired.config.logical_interfaces.len(),
                    vmis = desired.config.vmis.len(),
                    networks = desired.config.networks.len(),
                    millis = took.as_millis() as u64,
                    "tables swapped"
                );
                pacer.built(started.into_std(), took);
                installer.count_wake(WakeOutcome::BuildSwapped, Some(took));
                installed = Some((desired, generation));
                report_now.notify_one();
            }
            tokio::select! {
                _ = changes.woken() => {}
                _ = fabric_changed.notified() => fabric_dirty = true,
            }
        }
    };

    tokio::select! {
        _ = compile_loop => {}
        _ = shutdown => tracing::info!("shutting down"),
    }
    reporter.abort();
    tracer.abort();
    http.abort();
    shared.stop();
    let _ = tokio::task::spawn_blocking(move || {
        let _ = forwarding.join();
        let _ = host_thread.join();
        let _ = mirror_thread.join();
        let _ = ha_thread.join();
    })
    .await;
    if let Some(owner) = &options.owner {
        leave_host(&client, owner, options.port_netns.clone()).await;
    }
    Ok(())
}

/// Keeps the host state for the next agent, or removes it when this agent
/// is being uninstalled ([`uninstall`]).
async fn leave_host(client: &Client, owner: &uninstall::Owner, netns: Option<PathBuf>) {
    let daemonset = format!("{}/{}", owner.namespace, owner.name);
    match uninstall::stopping(client, owner).await {
        uninstall::Stopping::Restart => {
            tracing::info!(
                daemonset,
                "a restart: virtual gateway interfaces kept for the next agent"
            )
        }
        uninstall::Stopping::Unknown(error) => tracing::warn!(
            daemonset,
            error,
            "cannot tell an uninstall from a restart: virtual gateway interfaces kept"
        ),
        uninstall::Stopping::Uninstall(why) => {
            match tokio::task::spawn_blocking(move || uninstall::remove_host_state(netns)).await {
                Ok(Ok(removed)) => tracing::info!(
                    daemonset,
                    why,
                    ?removed,
                    "uninstalled: removed the virtual gateway interfaces (and their routes)"
                ),
                Ok(Err(error)) => tracing::error!(
                    daemonset,
                    error,
                    "uninstalled, but removing the virtual gateway interfaces failed"
                ),
                Err(error) => {
                    tracing::error!(daemonset, %error, "removing the virtual gateway interfaces")
                }
            }
        }
    }
}
