//! The decision loop: whenever anything changes (debounced), decide every
//! object from the stores' snapshot and write the statuses that differ.
//!
//! ```text
//!  watch events ──> change counter ──(quiet for --debounce-ms)──┐
//!  resync timer / retry after errors ───────────────────────────┤
//!                                                               v
//!   Stores::snapshot ─> core::decide ─> per object: desired status
//!        == current?  yes: nothing (no write, no event)
//!                     no:  server-side apply of /status (field manager
//!                          trunkline-operator), Events for transitions
//! ```
//!
//! One loop decides every kind at once, because every rule is across
//! kinds: a per-kind controller would recompute the same cross-object
//! index anyway. Writes are still per object and only when needed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    DCGateway, ExternalVTEP, GatewayHAGroup, LogicalInterface, PhysicalRouter, VirtualGateway,
    VirtualMachineInterface, VirtualNetwork,
};
use trunkline_operator_core::{
    DECIDED_KINDS, Decisions, Kind, ObjectKey, Settings, decide_with, summary,
};

use crate::cli::Args;
use crate::http::{self, Probes};
use crate::index::{Changes, Stores};
use crate::leader::Elector;
use crate::metrics::{EventLabels, HaTransitionLabels, KindLabels, ObjectLabels};
use crate::status::{self, FIELD_MANAGER, Note, Reported};
use crate::{Error, Metrics};

/// Status writes in flight at once.
const CONCURRENT_WRITES: usize = 8;
/// Pause before retrying after a pass with errors.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// The longest an Event note may be (the API allows 1 kB).
const MAX_NOTE: usize = 1000;

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
    let watching = tokio::spawn(drive(changes, changed_tx, metrics.clone()));
    let mut operator = Operator::new(client, stores, metrics)
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

/// Polls the watches (which fills the stores) and bumps the change counter
/// on every event.
async fn drive(mut changes: Changes, changed: watch::Sender<u64>, metrics: Arc<Metrics>) {
    while let Some(change) = changes.next().await {
        match change {
            Ok(kind) => {
                metrics
                    .watch_events
                    .get_or_create(&KindLabels { kind })
                    .inc();
                changed.send_modify(|n| *n = n.wrapping_add(1));
            }
            Err(e) => {
                metrics.error(&e);
                tracing::warn!(error = %e, "watch failed; retrying with back-off");
            }
        }
    }
}

/// What the operator remembers of a status it wrote, until its store shows
/// the write: so that a pass running before the watch event arrives
/// neither writes the same status again nor re-stamps its conditions.
#[derive(Debug)]
struct Applied {
    uid: Option<String>,
    /// The resourceVersion the write was based on.
    based_on: Option<String>,
    status: serde_json::Value,
}

/// The decision loop's state.
pub struct Operator {
    client: Client,
    stores: Stores,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    applied: HashMap<ObjectKey, Applied>,
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
}

/// One status write to do.
struct Plan<K: Reported> {
    object: Arc<K>,
    key: ObjectKey,
    desired: K::Status,
    events: Vec<Condition>,
    notes: Vec<Note>,
}

impl Operator {
    /// An operator over `stores`, writing with `client`.
    pub fn new(client: Client, stores: Stores, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            stores,
            metrics,
            applied: HashMap::new(),
            ports_applied: HashMap::new(),
            leading: watch::channel(true).1,
            settings: Settings::default(),
        }
    }

    /// Decides with `settings` (from the flags) instead of the defaults.
    pub fn with_settings(mut self, settings: Settings) -> Self {
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
                tracing::info!("leading: deciding and writing status");
            }
            changed.borrow_and_update();
            let outcome = self.pass().await;
            let idle = if outcome.errors > 0 {
                RETRY_AFTER
            } else {
                args.resync()
            };
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(idle) => {}
                change = changed.changed() => {
                    if change.is_err() {
                        return;
                    }
                    quiet(&mut changed, args.debounce()).await;
                }
                // Lost (or regained) the lease: the loop's top decides.
                _ = lost_or_regained(&mut leading) => {}
            }
        }
    }

    /// Decides every object and writes the statuses that differ.
    pub async fn pass(&mut self) -> PassOutcome {
        let started = Instant::now();
        self.metrics.reconcile_runs.inc();
        let snapshot = self.stores.snapshot();
        let decisions = decide_with(&snapshot, &self.settings);
        let now = status::now();
        let mut outcome = PassOutcome {
            objects: decisions.len(),
            ..PassOutcome::default()
        };
        let stores = self.stores.clone();
        self.sync::<LogicalInterface>(&stores.logical_interfaces, &decisions, &now, &mut outcome)
            .await;
        self.sync::<VirtualMachineInterface>(
            &stores.virtual_machine_interfaces,
            &decisions,
            &now,
            &mut outcome,
        )
        .await;
        self.sync::<VirtualNetwork>(&stores.virtual_networks, &decisions, &now, &mut outcome)
            .await;
        self.sync::<GatewayHAGroup>(&stores.gateway_ha_groups, &decisions, &now, &mut outcome)
            .await;
        self.sync::<VirtualGateway>(&stores.virtual_gateways, &decisions, &now, &mut outcome)
            .await;
        self.sync::<ExternalVTEP>(&stores.external_vteps, &decisions, &now, &mut outcome)
            .await;
        self.sync::<DCGateway>(&stores.dc_gateways, &decisions, &now, &mut outcome)
            .await;
        self.sync_router_ports(&stores.physical_routers, &mut outcome)
            .await;
        self.applied.retain(|key, _| decisions.get(key).is_some());
        self.count_objects(&decisions);
        let took = started.elapsed();
        self.metrics.reconcile_duration.observe(took.as_secs_f64());
        tracing::debug!(
            objects = outcome.objects,
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

    fn count_objects(&self, decisions: &Decisions) {
        for kind in DECIDED_KINDS {
            let (ready, not_ready) =
                decisions
                    .iter()
                    .filter(|d| d.key.kind == kind)
                    .fold((0i64, 0i64), |(r, n), d| {
                        if d.is_ready() { (r + 1, n) } else { (r, n + 1) }
                    });
            for (label, count) in [("true", ready), ("false", not_ready)] {
                self.metrics
                    .objects
                    .get_or_create(&ObjectLabels {
                        kind: kind.as_str(),
                        ready: label,
                    })
                    .set(count);
            }
        }
    }

    async fn sync<K: Reported>(
        &mut self,
        store: &Store<K>,
        decisions: &Decisions,
        now: &Time,
        outcome: &mut PassOutcome,
    ) {
        let mut plans: Vec<Plan<K>> = Vec::new();
        for object in store.state() {
            let key = key_of(&*object);
            let Some(decision) = decisions.get(&key) else {
                continue;
            };
            let remembered = self
                .applied
                .get(&key)
                .filter(|a| {
                    a.uid == object.meta().uid && a.based_on == object.meta().resource_version
                })
                .and_then(|a| serde_json::from_value::<K::Status>(a.status.clone()).ok());
            let current = remembered.or_else(|| object.current().cloned());
            let previous = current.as_ref().map(K::conditions_of).unwrap_or(&[]);
            let conditions = status::conditions(decision, previous, now);
            let events = status::transitions(previous, &conditions)
                .into_iter()
                .cloned()
                .collect();
            let mut desired = K::desired(decision, conditions);
            K::settle(&mut desired, current.as_ref(), now);
            if current.as_ref() == Some(&desired) {
                continue;
            }
            let notes = K::notes(current.as_ref(), &desired);
            plans.push(Plan {
                object,
                key,
                desired,
                events,
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
                    (plan, written)
                }
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;

        for (plan, written) in results {
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
                        Applied {
                            uid: plan.object.meta().uid.clone(),
                            based_on: plan.object.meta().resource_version.clone(),
                            status: value,
                        },
                    );
                }
                // Deleted meanwhile: its watch event brings the next pass.
                Ok(None) => {}
                Err(e) => {
                    outcome.errors += 1;
                    self.metrics.error(&e);
                    tracing::warn!(error = %e, "status not written; retrying soon");
                }
            }
        }
    }
}

/// Resolves when leadership changes; never when the election is gone
/// (leader election off: the sender lives as long as the process).
async fn lost_or_regained(leading: &mut watch::Receiver<bool>) {
    if leading.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Waits until no change has come for `debounce` (at most ten times as
/// long, so a steady stream of changes still gets decided).
async fn quiet(changed: &mut watch::Receiver<u64>, debounce: Duration) {
    let deadline = tokio::time::Instant::now() + debounce * 10;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(debounce) => return,
            _ = tokio::time::sleep_until(deadline) => return,
            change = changed.changed() => if change.is_err() { return },
        }
    }
}

fn key_of<K: Reported>(object: &K) -> ObjectKey {
    match object.meta().namespace.as_deref() {
        Some(ns) if K::KIND.is_namespaced() => {
            ObjectKey::namespaced(K::KIND, ns, object.name_any())
        }
        _ => ObjectKey::cluster(K::KIND, object.name_any()),
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
            object: key_of(object).to_string(),
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
            object: key_of(object).to_string(),
            source,
        })
}
