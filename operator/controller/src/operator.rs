//! The decision loop: whenever anything changes (debounced), feed what the
//! watches touched to the incremental decider and write the statuses that
//! differ.
//!
//! ```text
//!  watch events ──> touched keys + change counter ──(at most a pass per --debounce-ms)──┐
//!  resync timer (every object) / retry after errors (what failed) ─────────────┤
//!                                                                              v
//!   touched objects (from the stores) ─> core::Decider::apply ─> changed decisions
//!   per changed or touched object: desired status
//!        == current?  yes: nothing (no write, no event)
//!                     no:  server-side apply of /status (field manager
//!                          trunkline-operator), Events for transitions
//! ```
//!
//! One loop decides every kind at once, because every rule is across
//! kinds; the decider keeps its verdicts between passes, so a pass costs
//! what changed, not the number of objects. Writes are per object and only
//! when needed.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;
use trunkline_api::status::{condition, reason};
use trunkline_api::{
    ClusterVirtualNetworkPolicy, DCGateway, ExternalVTEP, GatewayHAGroup, LogicalInterface,
    PhysicalRouter, SecurityGroup, VirtualGateway, VirtualMachineInterface, VirtualNetwork,
    VirtualNetworkPolicy,
};
use trunkline_operator_core::{Change, DECIDED_KINDS, Decider, Kind, ObjectKey, Settings, summary};

use crate::cli::Args;
use crate::http::{self, Probes};
use crate::index::{Changes, Stores, Touch, key_of};
use crate::leader::Elector;
use crate::metrics::{EventLabels, HaTransitionLabels, KindLabels, ObjectLabels};
use crate::status::{self, FIELD_MANAGER, Note, Reported};
use crate::written::Written;
use crate::{Error, Metrics};

/// Status (and label) writes in flight at once: enough to keep the API
/// server busy when thousands of objects arrive, far below its 200
/// mutating requests in flight.
const CONCURRENT_WRITES: usize = 32;
/// Objects written per pass at most: when thousands of objects arrive, a
/// pass writes some of them and the next pass (at once) the rest, so the
/// nodes' reports are decided in between and the first objects become
/// Ready while the last are still being accepted.
const WRITES_PER_PASS: usize = 1024;
/// How long an accepted object's status may lag while it only moves from
/// one "waiting for its nodes" state to another (its logical interfaces
/// listed, `Programmed` on one node of two): such a write is held, and a
/// later one (the object Ready, or this much later) carries it. When
/// thousands of objects arrive at once their nodes usually report within
/// this time, so each is written Accepted and then Ready, not once per
/// intermediate step. Rejections, Ready and any loss of Programmed or
/// Ready are never held. Acceptance is held too when the object's node
/// labels carry it (their values name the accepted generation, written the
/// same pass): its nodes program it from the labels, and the status is
/// usually written once, Ready.
pub const PENDING_HOLD: Duration = Duration::from_secs(2);
/// How long such a write may be held, at most, while the operator is busy
/// (its last pass wrote [`BUSY_WRITES`] or more): in a burst of thousands
/// of objects the nodes take longer than [`PENDING_HOLD`] to report, and a
/// VMI decided before its logical interface arrived would otherwise be
/// written three times (no logical interface, waiting for its node,
/// Ready), each write slowing the burst down. While held, its `Programmed`
/// stays `False` (reason `Pending`) with the earlier message.
pub const PENDING_HOLD_BUSY: Duration = Duration::from_secs(60);
/// Writes in a pass from which the operator counts as busy.
const BUSY_WRITES: usize = CONCURRENT_WRITES;
/// Pause before retrying after a pass with errors.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// The longest an Event note may be (the API allows 1 kB).
const MAX_NOTE: usize = 1000;
/// Events published per second at most, on average: applying thousands of
/// objects at once must not double the writes with an Event each.
const EVENTS_PER_SECOND: f64 = 20.0;
/// Events published at once at most.
const EVENT_BURST: f64 = 200.0;

/// A token bucket of Events.
#[derive(Debug)]
struct EventBudget {
    tokens: f64,
    last: Instant,
}

impl EventBudget {
    fn new() -> Self {
        Self {
            tokens: EVENT_BURST,
            last: Instant::now(),
        }
    }

    /// Whether one more Event may be published now.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * EVENTS_PER_SECOND;
        self.tokens = (self.tokens + refill).min(EVENT_BURST);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The client for `--kubeconfig`, or the in-cluster / `KUBECONFIG` one.
pub async fn client(args: &Args) -> Result<Client, Error> {
    Ok(trunkline_client::client(args.kubeconfig.as_deref()).await?)
}

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(args: Args) -> Result<(), Error> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let signals = shutdown_signal()?;
    tokio::spawn(async move {
        let name = signals.await;
        tracing::info!(signal = name, "shutting down");
        let _ = stop_tx.send(true);
    });

    let client = client(&args).await?;
    let lease = args.lease_config(client.default_namespace());
    if let Some(lease) = &lease {
        lease.validate()?;
    }
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let listener = http::bind(args.metrics_addr).await?;
    let probes = Probes {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let server = tokio::spawn(http::serve(listener, probes, stopped(stop_rx.clone())));

    // Whether this process may write: always without leader election.
    let (leading_tx, leading) = watch::channel(lease.is_none());
    let (writes_done, writes_done_rx) = tokio::sync::oneshot::channel::<()>();
    let (election, _always_leading) = match lease {
        Some(lease) => {
            tracing::info!(
                identity = lease.identity,
                lease = format!("{}/{}", lease.namespace, lease.name),
                "campaigning for leadership; status is written only while leading"
            );
            let elector = Elector::new(client.clone(), lease);
            let m = metrics.clone();
            let on_transition = move |leading: bool| {
                m.leader.set(i64::from(leading));
                if leading {
                    m.leader_transitions.inc();
                }
            };
            let done = async move {
                let _ = writes_done_rx.await;
            };
            let task = tokio::spawn(elector.run(leading_tx, done, on_transition));
            (Some(task), None)
        }
        None => {
            metrics.leader.set(1);
            (None, Some(leading_tx))
        }
    };

    let (stores, changes) = Stores::new(&client);
    let (changed_tx, changed_rx) = watch::channel(0u64);
    let pending = Arc::new(Mutex::new(Pending::default()));
    let watching = tokio::spawn(drive(changes, changed_tx, pending.clone(), metrics.clone()));
    let sweeper = tokio::spawn(crate::packet_traces::run(
        client.clone(),
        leading.clone(),
        stop_rx.clone(),
        args.packet_trace_ttl,
    ));
    let mut operator = Operator::new(client, stores, pending, metrics)
        .with_leadership(leading)
        .with_settings(args.settings());

    let mut stop = stop_rx.clone();
    tracing::info!("waiting for the first list of every kind");
    let synced = tokio::select! {
        synced = operator.stores.wait_until_ready() => Some(synced),
        _ = stop.wait_for(|s| *s) => None,
    };
    if let Some(Ok(())) = synced {
        ready.store(true, Ordering::Relaxed);
        tracing::info!("every store synced; deciding");
        operator.run(changed_rx, stop, &args).await;
        ready.store(false, Ordering::Relaxed);
    }

    // No status write happens after this point: the Lease may go.
    let _ = writes_done.send(());
    if let Some(election) = election
        && let Err(e) = election.await
    {
        tracing::warn!(error = %e, "the leader election task failed");
    }
    watching.abort();
    sweeper.abort();
    if let Some(Err(e)) = synced {
        return Err(e);
    }
    match server.await {
        Ok(result) => result?,
        Err(e) => tracing::warn!(error = %e, "the HTTP server task failed"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves with the signal's name on the first SIGTERM or SIGINT.
fn shutdown_signal() -> Result<impl Future<Output = &'static str>, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// What the watches touched since the last pass.
#[derive(Debug, Default)]
pub struct Pending {
    objects: BTreeSet<ObjectKey>,
    relisted: BTreeSet<Kind>,
}

impl Pending {
    fn add(&mut self, touch: Touch) {
        match touch {
            Touch::Object(key) => {
                self.objects.insert(key);
            }
            Touch::Relisted(kind) => {
                self.relisted.insert(kind);
            }
        }
    }
}

/// Polls the watches (which fills the stores), records what each event
/// touched, and bumps the change counter.
async fn drive(
    mut changes: Changes,
    changed: watch::Sender<u64>,
    pending: Arc<Mutex<Pending>>,
    metrics: Arc<Metrics>,
) {
    while let Some(change) = changes.next().await {
        match change {
            Ok((kind, touch)) => {
                metrics
                    .watch_events
                    .get_or_create(&KindLabels { kind })
                    .inc();
                if let Some(touch) = touch {
                    pending.lock().unwrap_or_else(|p| p.into_inner()).add(touch);
                    changed.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
            Err(e) => {
                metrics.error(&e);
                tracing::warn!(error = %e, "watch failed; retrying with back-off");
            }
        }
    }
}

/// The decision loop's state.
pub struct Operator {
    client: Client,
    stores: Stores,
    /// What the watches touched, filled by [`drive`].
    pending: Arc<Mutex<Pending>>,
    /// Every verdict, kept between passes.
    decider: Decider,
    /// Whether the next pass compares every object's status, not only what
    /// changed (first pass, resync timer, leadership regained).
    full: bool,
    /// Objects whose status write failed: written again next pass.
    retry: BTreeSet<ObjectKey>,
    /// Objects whose labels could not be written: written again next pass.
    relabel_retry: BTreeSet<ObjectKey>,
    /// Whether each decided object is Ready, for the objects metric.
    ready: HashMap<ObjectKey, bool>,
    /// What is left of the Events' rate.
    event_budget: EventBudget,
    /// Objects this pass may still write ([`WRITES_PER_PASS`]).
    write_budget: usize,
    /// Objects left for the next pass by the write budget.
    deferred: usize,
    /// Objects whose labels this pass wrote with their status.
    labelled: BTreeSet<ObjectKey>,
    /// Objects whose acceptance write is held because their labels carry
    /// it: their labels are written this pass.
    carry: BTreeSet<ObjectKey>,
    /// Objects whose pending-only status write is held ([`PENDING_HOLD`]),
    /// since when.
    held: HashMap<ObjectKey, Instant>,
    /// When the earliest held write falls due.
    hold_due: Option<Instant>,
    /// Whether the last pass wrote [`BUSY_WRITES`] or more.
    busy: bool,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    /// The statuses written that the stores do not show yet.
    applied: Written,
    /// `status.portsSummary` written per PhysicalRouter name, with the
    /// resourceVersion it was based on (as `applied`).
    ports_applied: HashMap<String, (Option<String>, Option<String>)>,
    /// Whether this process may write (see [`Operator::with_leadership`]).
    leading: watch::Receiver<bool>,
    /// What the decisions take from the flags.
    settings: Settings,
}

/// The result of one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassOutcome {
    /// Objects decided.
    pub objects: usize,
    /// Statuses written.
    pub writes: usize,
    /// Errors (failed writes or events).
    pub errors: usize,
    /// Objects left for the next pass by the write budget.
    pub deferred: usize,
    /// Pending-only writes held for a later pass ([`PENDING_HOLD`]).
    pub held: usize,
    /// When the earliest held write falls due.
    pub hold_due: Option<Instant>,
}

/// One status write to do.
struct Plan<K: Reported> {
    object: Arc<K>,
    key: ObjectKey,
    desired: K::Status,
    events: Vec<Condition>,
    /// The node labels to write after the status, when they differ: the
    /// nodes' name parts and the labels' value.
    labels: Option<(BTreeSet<String>, String)>,
    notes: Vec<Note>,
}

/// The node labels (name parts) an object carries.
fn node_labels_of(meta: &kube::api::ObjectMeta) -> BTreeSet<String> {
    meta.labels
        .iter()
        .flatten()
        .filter_map(|(key, _)| trunkline_api::node_label::name_in(key))
        .map(str::to_owned)
        .collect()
}

/// The value of an object's node labels under `decision`: the accepted
/// generation (`g<generation>`), or empty when the decision does not
/// accept it.
fn label_value(decision: &trunkline_operator_core::Decision) -> String {
    if decision.is_accepted() {
        trunkline_api::node_label::value_of(decision.generation)
    } else {
        String::new()
    }
}

/// Whether an object at `generation` labelled for `nodes`, whose labels
/// carry the acceptance of `labelled` (see
/// [`trunkline_model::from_api`]'s `labelled_generation`), needs its labels
/// written to be labelled for `wanted` under a decision that does or does
/// not (`accepted`) accept `generation`.
fn labels_differ<'a>(
    nodes: impl IntoIterator<Item = &'a String>,
    labelled: Option<i64>,
    generation: i64,
    wanted: &BTreeSet<String>,
    accepted: bool,
) -> bool {
    let carried = labelled == Some(generation);
    // Both sorted and without duplicates: equal sets are equal sequences.
    !nodes.into_iter().eq(wanted) || (!wanted.is_empty() && accepted != carried)
}

impl Operator {
    /// An operator over `stores` (whose watches fill `pending`), writing
    /// with `client`.
    pub fn new(
        client: Client,
        stores: Stores,
        pending: Arc<Mutex<Pending>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            stores,
            pending,
            decider: Decider::new(Settings::default()),
            full: true,
            retry: BTreeSet::new(),
            relabel_retry: BTreeSet::new(),
            ready: HashMap::new(),
            event_budget: EventBudget::new(),
            write_budget: WRITES_PER_PASS,
            deferred: 0,
            labelled: BTreeSet::new(),
            carry: BTreeSet::new(),
            held: HashMap::new(),
            hold_due: None,
            busy: false,
            metrics,
            applied: Written::default(),
            ports_applied: HashMap::new(),
            leading: watch::channel(true).1,
            settings: Settings::default(),
        }
    }

    /// Decides with `settings` (from the flags) instead of the defaults.
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.decider = Decider::new(settings.clone());
        self.settings = settings;
        self
    }

    /// Writes only while `leading` holds `true` (the leader election's
    /// view); without this the operator always writes.
    pub fn with_leadership(mut self, leading: watch::Receiver<bool>) -> Self {
        self.leading = leading;
        self
    }

    fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    async fn run(
        &mut self,
        mut changed: watch::Receiver<u64>,
        mut stop: watch::Receiver<bool>,
        args: &Args,
    ) {
        let mut leading = self.leading.clone();
        loop {
            // Stopping wins over more work: a stream of changes (or writes
            // still deferred) must not keep a stopping operator passing.
            if *stop.borrow() {
                return;
            }
            if !*leading.borrow_and_update() {
                tracing::info!("not the leader: watching, not writing");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    became = leading.wait_for(|l| *l) => {
                        if became.is_err() {
                            return;
                        }
                    }
                }
                // Another leader wrote meanwhile: trust only the stores.
                self.applied.clear();
                self.ports_applied.clear();
                self.full = true;
                tracing::info!("leading: deciding and writing status");
            }
            changed.borrow_and_update();
            let started = tokio::time::Instant::now();
            let outcome = self.pass().await;
            let idle = if outcome.deferred > 0 {
                // More to write: the next pass at once (after the debounce).
                args.debounce()
            } else if outcome.errors > 0 {
                RETRY_AFTER
            } else if let Some(due) = outcome.hold_due {
                // Held writes: a pass when the first falls due.
                due.saturating_duration_since(Instant::now())
                    .max(args.debounce())
            } else {
                args.resync()
            };
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(idle) => {
                    self.full = outcome.errors == 0 && outcome.deferred == 0 && outcome.held == 0;
                }
                change = changed.changed() => {
                    if change.is_err() {
                        return;
                    }
                    // At most one pass per --debounce-ms: a change after a
                    // quiet spell is decided at once, a stream of changes
                    // in batches.
                    tokio::time::sleep_until(started + args.debounce()).await;
                }
                // Lost (or regained) the lease: the loop's top decides.
                _ = lost_or_regained(&mut leading) => {}
            }
        }
    }

    /// Feeds what the watches touched to the decider and writes the
    /// statuses that differ (of every object on a full pass).
    pub async fn pass(&mut self) -> PassOutcome {
        let started = Instant::now();
        self.metrics.reconcile_runs.inc();
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let mut touched = pending.objects;
        // A first pass, or a watch that listed everything again: what it
        // no longer lists was deleted meanwhile.
        let relisted: Vec<Kind> = if self.full {
            Kind::ALL.to_vec()
        } else {
            pending.relisted.into_iter().collect()
        };
        for kind in relisted {
            touched.extend(self.stores.keys(kind));
            touched.extend(self.decider.keys(kind));
        }
        let changes: Vec<Change> = touched
            .iter()
            .map(|key| match self.stores.object(key) {
                Some(mut object) => {
                    // Changed for the nodes only if what they read changed.
                    self.decider.keep_changed_at(&mut object);
                    Change::Upsert(object)
                }
                None => Change::Delete(key.clone()),
            })
            .collect();
        let changed = self.decider.apply(changes);
        let decided = self.decider.decided_last();
        self.metrics.decided.inc_by(decided as u64);
        self.count_objects(&changed);
        let full = std::mem::take(&mut self.full);
        let mut relabel = self.decider.take_relabelled();
        relabel.append(&mut self.relabel_retry);
        let to_sync: BTreeSet<ObjectKey> = if full {
            DECIDED_KINDS
                .iter()
                .flat_map(|kind| self.decider.keys(*kind))
                .collect()
        } else {
            let mut keys = std::mem::take(&mut self.retry);
            keys.extend(changed);
            keys.extend(
                touched
                    .into_iter()
                    .filter(|k| DECIDED_KINDS.contains(&k.kind)),
            );
            keys
        };
        for key in &to_sync {
            if self.decider.decisions().get(key).is_none() {
                self.applied.remove(key);
            }
        }
        let now = status::now();
        let mut outcome = PassOutcome {
            objects: decided,
            ..PassOutcome::default()
        };
        let stores = self.stores.clone();
        self.write_budget = WRITES_PER_PASS;
        self.deferred = 0;
        self.labelled.clear();
        self.carry.clear();
        self.hold_due = None;
        // What a node needs first, first: networks, their VMIs, then the
        // logical interfaces binding them.
        self.sync::<VirtualNetwork>(&stores.virtual_networks, &to_sync, &now, &mut outcome)
            .await;
        self.sync::<VirtualMachineInterface>(
            &stores.virtual_machine_interfaces,
            &to_sync,
            &now,
            &mut outcome,
        )
        .await;
        self.sync::<LogicalInterface>(&stores.logical_interfaces, &to_sync, &now, &mut outcome)
            .await;
        self.sync::<GatewayHAGroup>(&stores.gateway_ha_groups, &to_sync, &now, &mut outcome)
            .await;
        self.sync::<VirtualGateway>(&stores.virtual_gateways, &to_sync, &now, &mut outcome)
            .await;
        self.sync::<ExternalVTEP>(&stores.external_vteps, &to_sync, &now, &mut outcome)
            .await;
        self.sync::<DCGateway>(&stores.dc_gateways, &to_sync, &now, &mut outcome)
            .await;
        self.sync::<SecurityGroup>(&stores.security_groups, &to_sync, &now, &mut outcome)
            .await;
        self.sync::<VirtualNetworkPolicy>(&stores.network_policies, &to_sync, &now, &mut outcome)
            .await;
        self.sync::<ClusterVirtualNetworkPolicy>(
            &stores.cluster_network_policies,
            &to_sync,
            &now,
            &mut outcome,
        )
        .await;
        self.sync_router_ports(&stores.physical_routers, &mut outcome)
            .await;
        // Labels after status (those of the objects written above went
        // with their status): a node sees an object once it is labelled
        // for it, and by then its status says it is accepted.
        if full {
            relabel.extend(to_sync.iter().cloned());
        }
        relabel.append(&mut self.carry);
        let labelled = std::mem::take(&mut self.labelled);
        relabel.retain(|k| !labelled.contains(k));
        self.sync_labels(&relabel, &mut outcome).await;
        outcome.deferred = self.deferred;
        self.busy = outcome.writes >= BUSY_WRITES;
        self.held.retain(|key, _| self.retry.contains(key));
        outcome.held = self.held.len();
        outcome.hold_due = self.hold_due;
        let took = started.elapsed();
        self.metrics.reconcile_duration.observe(took.as_secs_f64());
        tracing::debug!(
            decided = outcome.objects,
            checked = to_sync.len(),
            writes = outcome.writes,
            errors = outcome.errors,
            millis = took.as_millis() as u64,
            "pass done"
        );
        outcome
    }

    /// Writes `status.portsSummary` of every PhysicalRouter whose summary
    /// differs: the one field of a router's status that is the operator's
    /// (the rest is its node dataplane's; server-side apply keeps the two
    /// apart). It lets `kubectl get pr` show every port.
    async fn sync_router_ports(
        &mut self,
        store: &Store<PhysicalRouter>,
        outcome: &mut PassOutcome,
    ) {
        let routers = store.state();
        self.ports_applied
            .retain(|name, _| routers.iter().any(|r| r.name_any() == *name));
        for router in routers {
            let name = router.name_any();
            let desired = summary(router.spec.physical_interfaces.iter().map(|i| &i.name));
            let version = router.meta().resource_version.clone();
            let current = match self.ports_applied.get(&name) {
                Some((based_on, written)) if *based_on == version => written.clone(),
                _ => router.status.as_ref().and_then(|s| s.ports_summary.clone()),
            };
            if current == desired || !self.is_leading() {
                continue;
            }
            let key = ObjectKey::cluster(Kind::PhysicalRouter, name.clone());
            match write_ports_summary(&self.client, &name, desired.as_deref()).await {
                Ok(written) => {
                    if written {
                        outcome.writes += 1;
                        self.metrics
                            .status_writes
                            .get_or_create(&KindLabels {
                                kind: Kind::PhysicalRouter.as_str(),
                            })
                            .inc();
                        tracing::info!(object = %key, ports = desired.as_deref().unwrap_or(""), "ports summary written");
                    }
                    self.ports_applied.insert(name, (version, desired));
                }
                Err(e) => {
                    outcome.errors += 1;
                    self.metrics.error(&e);
                    tracing::warn!(error = %e, "ports summary not written; retrying soon");
                }
            }
        }
    }

    /// Labels every object of `keys` with the nodes that must hold it
    /// (`node.trunkline.io/<node>: ""`), when its labels differ: a
    /// metadata patch (server-side apply of the labels alone, under the
    /// operator's field manager), so each node dataplane can watch only its
    /// own objects.
    async fn sync_labels(&mut self, keys: &BTreeSet<ObjectKey>, outcome: &mut PassOutcome) {
        if !self.is_leading() {
            return;
        }
        let mut writes = Vec::new();
        for key in keys {
            let Some(object) = self.stores.object(key) else {
                continue;
            };
            let wanted: BTreeSet<String> = self
                .decider
                .node_labels(key)
                .iter()
                .map(|n| trunkline_api::node_label::name_of(n))
                .collect();
            // A node is asked to hold an object only once it is accepted:
            // by this decision (the labels then carry it) or by its
            // status. Until then only labels going away are written. The
            // key is kept for the next pass in case this store is only
            // behind the status written last pass.
            let meta = object.meta();
            let decided = self
                .decider
                .decisions()
                .get(key)
                .filter(|d| d.generation == meta.generation);
            let accepted = decided.is_some_and(|d| d.is_accepted());
            let early =
                !accepted && !meta.accepted && !wanted.iter().all(|n| meta.nodes.contains(n));
            if early {
                self.relabel_retry.insert(key.clone());
            } else if labels_differ(
                &meta.nodes,
                meta.labelled_generation,
                meta.generation,
                &wanted,
                accepted,
            ) {
                let value = decided.map(label_value).unwrap_or_default();
                writes.push((key.clone(), wanted, value));
            }
        }
        let client = self.client.clone();
        let results: Vec<_> = stream::iter(writes)
            .map(|(key, wanted, value)| {
                let client = client.clone();
                async move {
                    let written = write_labels(&client, &key, &wanted, &value).await;
                    (key, written)
                }
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        for (key, written) in results {
            match written {
                Ok(true) => {
                    outcome.writes += 1;
                    self.metrics
                        .label_writes
                        .get_or_create(&KindLabels {
                            kind: key.kind.as_str(),
                        })
                        .inc();
                    tracing::debug!(object = %key, "node labels written");
                }
                Ok(false) => {}
                Err(e) => {
                    outcome.errors += 1;
                    self.metrics.error(&e);
                    tracing::warn!(error = %e, "node labels not written; retrying soon");
                    self.relabel_retry.insert(key);
                }
            }
        }
    }

    /// Updates the objects metric with the decisions that `changed`.
    fn count_objects(&mut self, changed: &BTreeSet<ObjectKey>) {
        for key in changed {
            let now = self.decider.decisions().get(key).map(|d| d.is_ready());
            let before = match now {
                Some(ready) => self.ready.insert(key.clone(), ready),
                None => self.ready.remove(key),
            };
            if before == now {
                continue;
            }
            let gauge = |ready: bool| {
                self.metrics.objects.get_or_create(&ObjectLabels {
                    kind: key.kind.as_str(),
                    ready: if ready { "true" } else { "false" },
                })
            };
            if let Some(ready) = before {
                gauge(ready).dec();
            }
            if let Some(ready) = now {
                gauge(ready).inc();
            }
        }
    }

    /// Writes the statuses of kind `K` among `keys` that differ from their
    /// decision.
    async fn sync<K: Reported>(
        &mut self,
        store: &Store<K>,
        keys: &BTreeSet<ObjectKey>,
        now: &Time,
        outcome: &mut PassOutcome,
    ) {
        let mut plans: Vec<Plan<K>> = Vec::new();
        let first = ObjectKey {
            kind: K::KIND,
            namespace: None,
            name: String::new(),
        };
        for key in keys.range(first..).take_while(|k| k.kind == K::KIND) {
            let Some(object) = Stores::api_object(store, key) else {
                continue;
            };
            let key = key.clone();
            let Some(decision) = self.decider.decisions().get(&key) else {
                continue;
            };
            let remembered = self
                .applied
                .take_current(
                    &key,
                    object.meta().uid.as_deref(),
                    object.meta().resource_version.as_deref(),
                )
                .and_then(|status| serde_json::from_value::<K::Status>(status.clone()).ok());
            let current = remembered.or_else(|| object.current().cloned());
            let previous = current.as_ref().map(K::conditions_of).unwrap_or(&[]);
            let conditions = status::conditions(decision, previous, now);
            let mut events: Vec<Condition> = status::transitions(previous, &conditions)
                .into_iter()
                .cloned()
                .collect();
            if self.is_leading() {
                let budget = &mut self.event_budget;
                let before = events.len();
                events.retain(|_| budget.take());
                self.metrics
                    .events_skipped
                    .inc_by((before - events.len()) as u64);
            }
            let mut desired = K::desired(decision, conditions);
            K::settle(&mut desired, current.as_ref(), now);
            if current.as_ref() == Some(&desired) {
                self.held.remove(&key);
                continue;
            }
            if let Some(current) = &current
                && only_pending_moves(
                    K::conditions_of(current),
                    K::conditions_of(&desired),
                    decision.generation,
                )
            {
                let since = *self.held.entry(key.clone()).or_insert_with(Instant::now);
                if let Some(due) = held_until(since, Instant::now(), self.busy) {
                    self.hold_due = Some(self.hold_due.map_or(due, |d| d.min(due)));
                    self.retry.insert(key);
                    continue;
                }
            }
            let wanted: BTreeSet<String> = self
                .decider
                .node_labels(&key)
                .iter()
                .map(|n| trunkline_api::node_label::name_of(n))
                .collect();
            // Acceptance the labels carry waits (as pending moves do):
            // the labels go this pass, the status usually once, Ready.
            if decision.is_accepted()
                && !wanted.is_empty()
                && only_acceptance(
                    current.as_ref().map(K::conditions_of).unwrap_or(&[]),
                    K::conditions_of(&desired),
                    decision.generation,
                )
            {
                let since = *self.held.entry(key.clone()).or_insert_with(Instant::now);
                if let Some(due) = held_until(since, Instant::now(), self.busy) {
                    self.hold_due = Some(self.hold_due.map_or(due, |d| d.min(due)));
                    self.carry.insert(key.clone());
                    self.retry.insert(key);
                    continue;
                }
            }
            self.held.remove(&key);
            if self.write_budget == 0 {
                self.retry.insert(key);
                self.deferred += 1;
                continue;
            }
            self.write_budget -= 1;
            let meta = object.meta();
            let labels = labels_differ(
                &node_labels_of(meta),
                trunkline_model::from_api::labelled_generation(meta.labels.as_ref()),
                meta.generation.unwrap_or(0),
                &wanted,
                decision.is_accepted() && Some(decision.generation) == meta.generation,
            )
            .then(|| (wanted, label_value(decision)));
            if labels.is_some() {
                self.labelled.insert(key.clone());
            }
            let notes = K::notes(current.as_ref(), &desired);
            plans.push(Plan {
                object,
                key,
                desired,
                events,
                labels,
                notes,
            });
        }
        if plans.is_empty() {
            return;
        }

        if !self.is_leading() {
            return;
        }
        let client = self.client.clone();
        let recorder = self.recorder.clone();
        let metrics = self.metrics.clone();
        let leading = self.leading.clone();
        let results: Vec<_> = stream::iter(plans)
            .map(|plan| {
                let client = client.clone();
                let recorder = recorder.clone();
                let metrics = metrics.clone();
                let leading = leading.clone();
                async move {
                    // Checked per write: the lease can be lost mid-pass.
                    let written = if *leading.borrow() {
                        write(&client, &plan).await
                    } else {
                        Ok(None)
                    };
                    // Then its labels, at once: a node holds it sooner.
                    let labelled = match (&written, &plan.labels, *leading.borrow()) {
                        (Ok(Some(_)), Some((labels, value)), true) => {
                            Some(write_labels(&client, &plan.key, labels, value).await)
                        }
                        _ => None,
                    };
                    if written.is_ok() {
                        for c in &plan.events {
                            if let Err(e) = publish(&recorder, &*plan.object, c).await {
                                metrics.error(&e);
                                tracing::warn!(error = %e, "event not published");
                            } else {
                                metrics
                                    .events
                                    .get_or_create(&EventLabels {
                                        kind: K::KIND.as_str(),
                                        r#type: event_type_name(c),
                                    })
                                    .inc();
                            }
                        }
                        for note in &plan.notes {
                            if let Err(e) = publish_note(&recorder, &*plan.object, note).await {
                                metrics.error(&e);
                                tracing::warn!(error = %e, "event not published");
                            } else {
                                metrics
                                    .events
                                    .get_or_create(&EventLabels {
                                        kind: K::KIND.as_str(),
                                        r#type: if note.normal { "Normal" } else { "Warning" },
                                    })
                                    .inc();
                            }
                            if let Some((member, state)) = &note.transition {
                                tracing::info!(object = %plan.key, member, state, "HA member state changed");
                                metrics
                                    .ha_transitions
                                    .get_or_create(&HaTransitionLabels {
                                        group: plan.object.name_any(),
                                        member: member.clone(),
                                        state: state.clone(),
                                    })
                                    .inc();
                            }
                        }
                    }
                    (plan, written, labelled)
                }
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;

        for (plan, written, labelled) in results {
            match labelled {
                Some(Ok(true)) => {
                    outcome.writes += 1;
                    self.metrics
                        .label_writes
                        .get_or_create(&KindLabels {
                            kind: K::KIND.as_str(),
                        })
                        .inc();
                }
                Some(Ok(false)) | None => {}
                Some(Err(e)) => {
                    outcome.errors += 1;
                    self.metrics.error(&e);
                    tracing::warn!(error = %e, "node labels not written; retrying soon");
                    self.relabel_retry.insert(plan.key.clone());
                }
            }
            match written {
                Ok(Some(value)) => {
                    outcome.writes += 1;
                    self.metrics
                        .status_writes
                        .get_or_create(&KindLabels {
                            kind: K::KIND.as_str(),
                        })
                        .inc();
                    tracing::info!(
                        object = %plan.key,
                        ready = ready_of::<K>(&plan.desired),
                        "status written"
                    );
                    self.applied.insert(
                        plan.key,
                        plan.object.meta().uid.clone(),
                        plan.object.meta().resource_version.clone(),
                        value,
                    );
                }
                // Deleted meanwhile: its watch event brings the next pass.
                Ok(None) => {}
                Err(e) => {
                    outcome.errors += 1;
                    self.metrics.error(&e);
                    tracing::warn!(error = %e, "status not written; retrying soon");
                    self.retry.insert(plan.key);
                }
            }
        }
    }
}

/// Whether going from `current` to `desired` conditions only moves an
/// accepted object from one "waiting for its nodes" state to another: it is
/// accepted at `generation` in both, Ready in neither, and `Programmed` was
/// not true before (a loss of Programmed is never held).
fn only_pending_moves(current: &[Condition], desired: &[Condition], generation: i64) -> bool {
    let find = |set: &[Condition], type_: &str| set.iter().find(|c| c.type_ == type_).cloned();
    let is_true = |c: &Option<Condition>| c.as_ref().is_some_and(|c| c.status == "True");
    let accepted_now = find(current, condition::ACCEPTED)
        .is_some_and(|c| c.status == "True" && c.observed_generation == Some(generation));
    accepted_now
        && is_true(&find(desired, condition::ACCEPTED))
        && !is_true(&find(current, condition::READY))
        && !is_true(&find(desired, condition::READY))
        && !is_true(&find(current, condition::PROGRAMMED))
}

/// Whether going from `current` to `desired` conditions is the first
/// acceptance of `generation`: accepted in `desired`, not Ready there, and
/// `current` has no verdict on `generation` (a refusal of it is lifted at
/// once: the nodes read the status' refusal over the labels).
fn only_acceptance(current: &[Condition], desired: &[Condition], generation: i64) -> bool {
    let find = |set: &[Condition], type_: &str| set.iter().find(|c| c.type_ == type_).cloned();
    let decided_before = find(current, condition::ACCEPTED)
        .is_some_and(|c| c.observed_generation == Some(generation));
    !decided_before
        && find(desired, condition::ACCEPTED)
            .is_some_and(|c| c.status == "True" && c.observed_generation == Some(generation))
        && find(desired, condition::READY).is_none_or(|c| c.status != "True")
}

/// Until when a pending-only write that arose at `since` is held, seen at
/// `now`; `None` once it is due. Held [`PENDING_HOLD`]; while the operator
/// is `busy`, re-checked every [`PENDING_HOLD`] up to [`PENDING_HOLD_BUSY`]
/// (the next pass is due then, so a quiet one releases it).
fn held_until(since: Instant, now: Instant, busy: bool) -> Option<Instant> {
    let due = since + PENDING_HOLD;
    if now < due {
        return Some(due);
    }
    let latest = since + PENDING_HOLD_BUSY;
    (busy && now < latest).then(|| (now + PENDING_HOLD).min(latest))
}

/// Resolves when leadership changes; never when the election is gone
/// (leader election off: the sender lives as long as the process).
async fn lost_or_regained(leading: &mut watch::Receiver<bool>) {
    if leading.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn ready_of<K: Reported>(status: &K::Status) -> &str {
    K::conditions_of(status)
        .iter()
        .find(|c| c.type_ == condition::READY)
        .map_or("Unknown", |c| c.status.as_str())
}

/// Server-side apply of the whole status; `Ok(None)` when the object is gone.
async fn write<K: Reported>(
    client: &Client,
    plan: &Plan<K>,
) -> Result<Option<serde_json::Value>, Error> {
    let object = plan.key.to_string();
    let status = serde_json::to_value(&plan.desired).map_err(|source| Error::Encode {
        object: object.clone(),
        source,
    })?;
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let api = K::api(client.clone(), plan.object.meta().namespace.as_deref());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api
        .patch_status(&plan.object.name_any(), &params, &Patch::Apply(&body))
        .await
    {
        Ok(_) => Ok(Some(status)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(source) => Err(Error::StatusWrite { object, source }),
    }
}

/// Server-side apply of an object's node labels alone
/// (`node.trunkline.io/<name>: <value>` for each of `names`, `value` the
/// accepted generation or empty; the operator's other node labels go);
/// `Ok(false)` when the object is gone.
async fn write_labels(
    client: &Client,
    key: &ObjectKey,
    names: &BTreeSet<String>,
    value: &str,
) -> Result<bool, Error> {
    let labels: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .map(|n| {
            (
                format!("{}{n}", trunkline_api::node_label::PREFIX),
                json!(value),
            )
        })
        .collect();
    let mut metadata = json!({ "name": key.name, "labels": labels });
    if let Some(ns) = &key.namespace {
        metadata["namespace"] = json!(ns);
    }
    let body = json!({
        "apiVersion": format!("{}/{}", trunkline_api::GROUP, trunkline_api::VERSION),
        "kind": key.kind.as_str(),
        "metadata": metadata,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(&body);
    let ns = key.namespace.as_deref();
    let result = match key.kind {
        Kind::LogicalInterface => LogicalInterface::api(client.clone(), ns)
            .patch_metadata(&key.name, &params, &patch)
            .await
            .map(|_| ()),
        Kind::VirtualMachineInterface => VirtualMachineInterface::api(client.clone(), ns)
            .patch_metadata(&key.name, &params, &patch)
            .await
            .map(|_| ()),
        Kind::VirtualNetwork => VirtualNetwork::api(client.clone(), ns)
            .patch_metadata(&key.name, &params, &patch)
            .await
            .map(|_| ()),
        Kind::VirtualGateway => VirtualGateway::api(client.clone(), ns)
            .patch_metadata(&key.name, &params, &patch)
            .await
            .map(|_| ()),
        Kind::ExternalVTEP => ExternalVTEP::api(client.clone(), ns)
            .patch_metadata(&key.name, &params, &patch)
            .await
            .map(|_| ()),
        Kind::GatewayHAGroup => GatewayHAGroup::api(client.clone(), ns)
            .patch_metadata(&key.name, &params, &patch)
            .await
            .map(|_| ()),
        Kind::DCGateway => DCGateway::api(client.clone(), ns)
            .patch_metadata(&key.name, &params, &patch)
            .await
            .map(|_| ()),
        Kind::SecurityGroup => SecurityGroup::api(client.clone(), ns)
            .patch_metadata(&key.name, &params, &patch)
            .await
            .map(|_| ()),
        Kind::VirtualNetworkPolicy => VirtualNetworkPolicy::api(client.clone(), ns)
            .patch_metadata(&key.name, &params, &patch)
            .await
            .map(|_| ()),
        Kind::ClusterVirtualNetworkPolicy => ClusterVirtualNetworkPolicy::api(client.clone(), ns)
            .patch_metadata(&key.name, &params, &patch)
            .await
            .map(|_| ()),
        Kind::PhysicalRouter => return Ok(false),
    };
    match result {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(source) => Err(Error::LabelWrite {
            object: key.to_string(),
            source,
        }),
    }
}

/// Server-side apply of a PhysicalRouter's `status.portsSummary` alone
/// (`None` gives the field up); `Ok(false)` when the router is gone.
async fn write_ports_summary(
    client: &Client,
    name: &str,
    ports: Option<&str>,
) -> Result<bool, Error> {
    let mut status = serde_json::Map::new();
    if let Some(ports) = ports {
        status.insert("portsSummary".to_owned(), json!(ports));
    }
    let body = json!({
        "apiVersion": PhysicalRouter::api_version(&()),
        "kind": PhysicalRouter::kind(&()),
        "status": status,
    });
    let api: kube::Api<PhysicalRouter> = kube::Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api.patch_status(name, &params, &Patch::Apply(&body)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(source) => Err(Error::StatusWrite {
            object: format!("PhysicalRouter {name}"),
            source,
        }),
    }
}

fn event_type(c: &Condition) -> EventType {
    if c.status == "True" || c.reason == reason::PENDING {
        EventType::Normal
    } else {
        EventType::Warning
    }
}

fn event_type_name(c: &Condition) -> &'static str {
    match event_type(c) {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// An Event about `object` that is not a condition's transition.
async fn publish_note<K: Reported>(
    recorder: &Recorder,
    object: &K,
    note: &Note,
) -> Result<(), Error> {
    let mut text = note.text.clone();
    if text.len() > MAX_NOTE {
        let mut end = MAX_NOTE - 3;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    let event = Event {
        type_: if note.normal {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: note.reason.clone(),
        note: Some(text),
        action: note.action.to_owned(),
        secondary: None,
    };
    recorder
        .publish(&event, &object.object_ref(&()))
        .await
        .map_err(|source| Error::Event {
            object: key_of(K::KIND, object).to_string(),
            source,
        })
}

/// An Event about `object`: reason `Accepted`/`Ready` when the condition
/// became True, else the condition's reason (`Conflict`, `RefNotFound`, ...).
async fn publish<K: Reported>(recorder: &Recorder, object: &K, c: &Condition) -> Result<(), Error> {
    let reason = if c.status == "True" {
        c.type_.clone()
    } else {
        c.reason.clone()
    };
    let mut note = format!("{} is {}: {}", c.type_, c.status, c.message);
    if note.len() > MAX_NOTE {
        let mut end = MAX_NOTE - 3;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    let action = if c.type_ == condition::ACCEPTED {
        "Validate"
    } else {
        "Program"
    };
    let event = Event {
        type_: event_type(c),
        reason,
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
    recorder
        .publish(&event, &object.object_ref(&()))
        .await
        .map_err(|source| Error::Event {
            object: key_of(K::KIND, object).to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(type_: &str, status: &str, generation: i64) -> Condition {
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            observed_generation: Some(generation),
            reason: "R".to_owned(),
            message: String::new(),
            last_transition_time: status::now(),
        }
    }

    fn set(accepted: &str, programmed: &str, ready: &str, generation: i64) -> Vec<Condition> {
        vec![
            c(condition::ACCEPTED, accepted, generation),
            c(condition::PROGRAMMED, programmed, generation),
            c(condition::READY, ready, generation),
        ]
    }

    #[test]
    fn a_move_between_waiting_states_is_held() {
        let waiting = set("True", "False", "False", 3);
        assert!(only_pending_moves(&waiting, &waiting, 3));
        assert!(only_pending_moves(
            &waiting,
            &set("True", "True", "False", 3),
            3
        ));
    }

    #[test]
    fn only_a_first_acceptance_is_carried_by_the_labels() {
        let waiting = set("True", "False", "False", 3);
        assert!(only_acceptance(&[], &waiting, 3), "no status yet");
        assert!(
            only_acceptance(&set("True", "True", "True", 2), &waiting, 3),
            "a new generation"
        );
        assert!(
            !only_acceptance(&set("False", "False", "False", 3), &waiting, 3),
            "a refusal of this generation is lifted at once"
        );
        assert!(!only_acceptance(&waiting, &waiting, 3), "already accepted");
        assert!(
            !only_acceptance(&[], &set("True", "True", "True", 3), 3),
            "Ready is written"
        );
        assert!(
            !only_acceptance(&[], &set("False", "False", "False", 3), 3),
            "a refusal is written"
        );
    }

    #[test]
    fn labels_are_written_when_their_nodes_or_their_acceptance_differ() {
        let nodes = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let gw1 = nodes(&["gw-1"]);
        assert!(!labels_differ(&gw1, Some(3), 3, &gw1, true));
        assert!(
            labels_differ(&gw1, Some(2), 3, &gw1, true),
            "an older generation"
        );
        assert!(labels_differ(&gw1, None, 3, &gw1, true), "no value yet");
        assert!(
            labels_differ(&gw1, Some(3), 3, &gw1, false),
            "no longer accepted"
        );
        assert!(
            !labels_differ(&gw1, Some(2), 3, &gw1, false),
            "stale, harmless"
        );
        assert!(labels_differ(
            &gw1,
            Some(3),
            3,
            &nodes(&["gw-1", "gw-2"]),
            true
        ));
        assert!(
            labels_differ(&gw1, Some(3), 3, &nodes(&[]), true),
            "labels go"
        );
        assert!(!labels_differ(&nodes(&[]), None, 3, &nodes(&[]), true));
    }

    #[test]
    fn a_held_write_waits_longer_while_the_operator_is_busy() {
        let since = Instant::now();
        let early = since + PENDING_HOLD / 2;
        assert_eq!(held_until(since, early, false), Some(since + PENDING_HOLD));
        assert_eq!(held_until(since, early, true), Some(since + PENDING_HOLD));
        let late = since + PENDING_HOLD * 3;
        assert_eq!(held_until(since, late, false), None, "quiet: due");
        assert_eq!(
            held_until(since, late, true),
            Some(late + PENDING_HOLD),
            "busy: looked at again one hold later"
        );
        let near_the_end = since + PENDING_HOLD_BUSY - PENDING_HOLD / 2;
        assert_eq!(
            held_until(since, near_the_end, true),
            Some(since + PENDING_HOLD_BUSY),
            "never past the busy limit"
        );
        assert_eq!(held_until(since, since + PENDING_HOLD_BUSY, true), None);
    }

    #[test]
    fn acceptance_rejection_ready_and_losses_are_never_held() {
        // Not yet accepted at this generation: the node waits for it.
        assert!(!only_pending_moves(
            &set("True", "False", "False", 2),
            &set("True", "False", "False", 3),
            3
        ));
        assert!(!only_pending_moves(
            &[],
            &set("True", "False", "False", 3),
            3
        ));
        // Rejected.
        assert!(!only_pending_moves(
            &set("True", "False", "False", 3),
            &set("False", "False", "False", 3),
            3
        ));
        // Ready.
        assert!(!only_pending_moves(
            &set("True", "False", "False", 3),
            &set("True", "True", "True", 3),
            3
        ));
        // Programmed lost, or Ready lost.
        assert!(!only_pending_moves(
            &set("True", "True", "False", 3),
            &set("True", "False", "False", 3),
            3
        ));
        assert!(!only_pending_moves(
            &set("True", "True", "True", 3),
            &set("True", "True", "False", 3),
            3
        ));
    }
}
