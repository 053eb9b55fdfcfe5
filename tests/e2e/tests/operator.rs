//! The operator against a real control plane, run as a developer would run
//! it: the `trunkline-operator` binary as a child process, with a kubeconfig
//! of its own ServiceAccount whose ClusterRole grants exactly what the
//! operator needs (so a missing permission fails these tests).
//!
//! Each test has its own namespace, unique names for cluster-scoped
//! objects, and its own operator process. Operators of tests running in
//! parallel watch the whole cluster, so they also maintain each other's
//! objects: they decide the same thing from the same objects, which is
//! itself a check that decisions depend on the objects only.
//!
//! How the binary is found: `workspace_binary` runs `cargo build -p
//! trunkline-operator --bin trunkline-operator --message-format=json` once
//! per test binary (a no-op when it is up to date) and takes the
//! `executable` path cargo reports for the artifact, so it works for any
//! target dir. (`CARGO_BIN_EXE_*` only exists for binaries of the tests'
//! own package.) `ManagedProcess` kills the process when the test ends,
//! also on panic, and prints the end of its log when the test fails.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use trunkline_api::{
    ExternalVTEP, GatewayHAGroup, LogicalInterface, PhysicalRouter, VirtualMachineInterface,
    VirtualNetwork,
};
use trunkline_test_support::{
    ControlPlane, ManagedProcess, TestNamespace, eventually, free_local_addr, http_get,
    unique_name, workspace_binary,
};

/// Bound for anything the operator does after a change.
const OPERATOR_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound for a graceful shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);
/// Bound for the API server's own caches (RBAC).
const API_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The operator process

/// Starts the operator binary as ServiceAccount `kubeconfig`, serving its
/// probes and metrics on a free loopback port, with `extra` flags; killed
/// when dropped.
fn start_operator(kubeconfig: &Path, extra: &[&str]) -> ManagedProcess {
    let binary = workspace_binary("trunkline-operator", "trunkline-operator");
    let addr = free_local_addr();
    let mut args = vec![
        "--kubeconfig".to_owned(),
        kubeconfig.display().to_string(),
        "--metrics-addr".to_owned(),
        addr.to_string(),
        "--debounce-ms".to_owned(),
        "100".to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    ManagedProcess::start(
        "operator",
        &binary,
        &args,
        &[("RUST_LOG", "info,trunkline_operator=debug")],
        addr,
    )
}

/// A ServiceAccount in `ns` bound to the operator's shipped ClusterRole
/// (`deploy/rbac/operator.yaml`); returns a kubeconfig for it.
async fn operator_identity(plane: &ControlPlane, ns: &str) -> PathBuf {
    // Tests start together: a concurrent first `kubectl apply` of the same
    // ClusterRole can lose the create race, so it is retried.
    eventually("the operator's identity", API_TIMEOUT, || {
        plane.kubeconfig_with_role(ns, "trunkline-operator", "operator")
    })
    .await
    .expect("kubeconfig of the operator's ServiceAccount")
}

/// The tests of this binary run one at a time. Every operator decides
/// every object it sees, the other tests' too, and these tests play the
/// node dataplane by hand: they report fixed watermarks, where a real node
/// advances its own with every event it sees. An operator started later
/// takes the objects' current resourceVersions as their change points
/// (docs/api.md, PhysicalRouter status) and, with nobody reporting past them, writes
/// them not Programmed while the test's own operator writes them
/// Programmed. One operator at a time keeps each test about its own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A namespace, an admin client and a running operator.
struct Rig<'a> {
    ns: TestNamespace<'a>,
    client: Client,
    kubeconfig: PathBuf,
    operator: Option<ManagedProcess>,
    /// Held while the rig lives (dropped last, after the operator).
    _one: tokio::sync::MutexGuard<'static, ()>,
}

async fn rig(prefix: &str) -> Rig<'static> {
    rig_with(prefix, &[]).await
}

/// Like [`rig`], the operator started with `extra` flags.
async fn rig_with(prefix: &str, extra: &[&str]) -> Rig<'static> {
    let one = ONE_AT_A_TIME.lock().await;
    let plane = ControlPlane::shared();
    let ns = plane.namespace(prefix).await.expect("namespace");
    let client = plane.client().await.expect("client");
    let kubeconfig = operator_identity(plane, ns.name()).await;
    let operator = start_operator(&kubeconfig, extra);
    operator.wait_ready(OPERATOR_TIMEOUT).await;
    Rig {
        ns,
        client,
        kubeconfig,
        operator: Some(operator),
        _one: one,
    }
}

// ---------------------------------------------------------------------------
// Objects

fn apply_params() -> PatchParams {
    PatchParams::apply("e2e-test").force()
}

async fn apply<K>(api: &Api<K>, name: &str, object: serde_json::Value) -> K
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    api.patch(name, &apply_params(), &Patch::Apply(&object))
        .await
        .unwrap_or_else(|e| panic!("apply {name}: {e}"))
}

fn router(name: &str, ports: &[&str]) -> serde_json::Value {
    let ports: Vec<_> = ports.iter().map(|p| json!({ "name": p })).collect();
    json!({
        "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
        "metadata": { "name": name },
        "spec": { "physicalInterfaces": ports },
    })
}

fn network(name: &str, cidr: &str) -> serde_json::Value {
    json!({
        "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
        "metadata": { "name": name },
        "spec": { "subnets": [{ "cidr": cidr }] },
    })
}

fn vmi(name: &str, network: &str, mac: &str, ips: &[&str]) -> serde_json::Value {
    let ips: Vec<_> = ips.iter().map(|a| json!({ "address": a })).collect();
    json!({
        "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
        "metadata": { "name": name },
        "spec": { "virtualNetwork": network, "macAddress": mac, "ips": ips },
    })
}

fn logical_interface(
    name: &str,
    router: &str,
    port: &str,
    vlan: u16,
    vmi: (&str, &str),
) -> serde_json::Value {
    json!({
        "apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
        "metadata": { "name": name },
        "spec": {
            "physicalRouter": router, "physicalInterface": port, "vlan": vlan,
            "virtualMachineInterface": { "namespace": vmi.0, "name": vmi.1 },
        },
    })
}

/// The node dataplane's report: its tables were built from the objects
/// labelled for it up to `through` (kind, resourceVersion).
async fn report_through(client: &Client, router: &str, through: &[(&str, String)]) {
    let through: serde_json::Map<String, serde_json::Value> = through
        .iter()
        .map(|(kind, rv)| (kind.to_string(), json!(rv)))
        .collect();
    Api::<PhysicalRouter>::all(client.clone())
        .patch_status(
            router,
            &PatchParams::apply("e2e-node-dataplane").force(),
            &Patch::Apply(json!({
                "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
                "status": { "programmedThrough": through },
            })),
        )
        .await
        .expect("report watermarks");
}

/// Waits until the operator has labelled `name` for node `node` with its
/// acceptance of generation `generation` (the label's value `g<generation>`,
/// which lets the node program it before its status says so); returns the
/// object's resourceVersion then.
async fn labelled_for<K>(api: &Api<K>, name: &str, node: &str, generation: i64) -> String
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let label = format!("node.trunkline.io/{node}");
    let value = format!("g{generation}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let o = api.get(name).await.expect("get");
        if o.meta()
            .labels
            .as_ref()
            .is_some_and(|l| l.get(&label) == Some(&value))
        {
            return o.meta().resource_version.clone().expect("resourceVersion");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} not labelled {label}: {:?}",
            o.meta().labels
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// What the tests read from any kind's status.
trait Conditions {
    fn conditions(&self) -> &[Condition];
    fn observed_generation(&self) -> Option<i64>;
}

macro_rules! conditions {
    ($($kind:ty),*) => {$(
        impl Conditions for $kind {
            fn conditions(&self) -> &[Condition] {
                self.status.as_ref().map_or(&[], |s| &s.conditions)
            }
            fn observed_generation(&self) -> Option<i64> {
                self.status.as_ref().and_then(|s| s.observed_generation)
            }
        }
    )*};
}
conditions!(
    LogicalInterface,
    VirtualMachineInterface,
    VirtualNetwork,
    ExternalVTEP,
    GatewayHAGroup
);

fn condition<'a>(object: &'a impl Conditions, type_: &str) -> Option<&'a Condition> {
    object.conditions().iter().find(|c| c.type_ == type_)
}

/// Waits until `object` has condition `type_` with `status` and `reason`
/// (and, when given, a message containing `text`), at the object's current
/// generation; returns the object.
async fn wait_condition<K>(
    api: &Api<K>,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
    text: Option<&str>,
) -> K
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Conditions,
{
    let what = format!("{} {name}: {type_}={status} ({reason})", K::kind(&()));
    eventually(&what, OPERATOR_TIMEOUT, || async {
        let object = api.get(name).await.map_err(|e| e.to_string())?;
        let generation = object.meta().generation;
        match condition(&object, type_) {
            Some(c)
                if c.status == status
                    && c.reason == reason
                    && text.is_none_or(|t| c.message.contains(t))
                    && c.observed_generation == generation
                    && object.observed_generation() == generation =>
            {
                Ok(object)
            }
            other => Err(format!("{other:?} at generation {generation:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits until the clock is past the second of `object`'s creationTimestamp,
/// so that the next object created gets a later one (the API server records
/// whole seconds, and runs on this machine's clock).
async fn after_created_second<K: Resource>(object: &K) {
    let created = object
        .meta()
        .creation_timestamp
        .as_ref()
        .expect("creationTimestamp")
        .0
        .as_second();
    eventually(
        &format!("the clock past second {created}"),
        Duration::from_secs(5),
        || async {
            let now = Timestamp::now().as_second();
            if now > created {
                Ok(())
            } else {
                Err(format!("now {now}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Whole passes the operator has completed (a pass's duration is observed
/// when it ends, after its status writes).
fn completed_passes(operator: &ManagedProcess) -> f64 {
    operator
        .metric("trunkline_operator_reconcile_duration_seconds_count")
        .unwrap_or(0.0)
}

/// Waits until `operator` has completed `count` whole passes.
async fn wait_passes(operator: &ManagedProcess, count: f64) {
    eventually(
        &format!("{count} whole passes of the operator"),
        OPERATOR_TIMEOUT,
        || async {
            match completed_passes(operator) {
                n if n >= count => Ok(()),
                n => Err(format!("{n} completed")),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------
// Tests

/// A router, a network, a VMI and a logical interface: all accepted with
/// their references resolved, at their generation; the VNI and routing
/// instances filled in; Programmed and Ready follow the node dataplane's
/// report, also across a spec change; Events tell the story.
#[tokio::test]
async fn a_valid_set_is_accepted_then_ready_when_the_node_reports_it() {
    // A full pass every second: every object decided again and again, so a
    // status that changes without cause is written (and seen) at once.
    let rig = rig_with("op-valid", &["--resync-seconds", "1"]).await;
    let ns = rig.ns.name();
    let gw = unique_name("gw");
    let li_name = unique_name("li");
    let routers: Api<PhysicalRouter> = Api::all(rig.client.clone());
    let networks: Api<VirtualNetwork> = Api::namespaced(rig.client.clone(), ns);
    let vmis: Api<VirtualMachineInterface> = Api::namespaced(rig.client.clone(), ns);
    let lis: Api<LogicalInterface> = Api::all(rig.client.clone());

    apply(&routers, &gw, router(&gw, &["eth1"])).await;
    apply(&networks, "net1", network("net1", "10.10.0.0/24")).await;
    apply(
        &vmis,
        "vmi1",
        vmi("vmi1", "net1", "02:00:00:00:10:01", &["10.10.0.10"]),
    )
    .await;
    apply(
        &lis,
        &li_name,
        logical_interface(&li_name, &gw, "eth1", 100, (ns, "vmi1")),
    )
    .await;

    let li = wait_condition(&lis, &li_name, "Accepted", "True", "Ok", None).await;
    assert_eq!(
        condition(&li, "ResolvedRefs").map(|c| c.status.as_str()),
        Some("True")
    );
    assert_eq!(li.status.as_ref().unwrap().observed_generation, Some(1));
    let v = wait_condition(&vmis, "vmi1", "Accepted", "True", "Ok", None).await;
    let s = v.status.clone().unwrap();
    assert_eq!(
        s.routing_instance.as_deref(),
        Some(format!("default-domain:{ns}:net1:net1").as_str())
    );
    assert_eq!(s.logical_interfaces, vec![li_name.clone()]);
    let n = wait_condition(&networks, "net1", "Accepted", "True", "Ok", None).await;
    let vni = n.status.as_ref().unwrap().vni.expect("a VNI is allocated");
    assert!(vni >= 4096, "allocated VNIs start at 4096: {vni}");

    // Nothing reported yet: accepted, not ready.
    let li = wait_condition(&lis, &li_name, "Ready", "False", "Pending", Some(&gw)).await;
    assert_eq!(
        condition(&li, "Programmed").map(|c| c.status.as_str()),
        Some("False")
    );

    // The operator labels each object for the node that holds it; the
    // node dataplane reports its tables were built from them.
    let li_rv = labelled_for(&lis, &li_name, &gw, 1).await;
    let vmi_rv = labelled_for(&vmis, "vmi1", &gw, 1).await;
    let net_rv = labelled_for(&networks, "net1", &gw, 1).await;
    // Being labelled changes nothing the status says (the node has still
    // not programmed them): no status write until the node reports, so a
    // burst costs one status write per object before it is programmed.
    let operator = rig.operator.as_ref().expect("operator");
    wait_passes(operator, completed_passes(operator) + 2.0).await;
    let unchanged = |what: &str, before: &str, now: Option<String>| {
        assert_eq!(
            now.as_deref(),
            Some(before),
            "{what} was written again after being labelled, before any report"
        )
    };
    unchanged(
        "the logical interface",
        &li_rv,
        lis.get(&li_name).await.unwrap().metadata.resource_version,
    );
    unchanged(
        "the VMI",
        &vmi_rv,
        vmis.get("vmi1").await.unwrap().metadata.resource_version,
    );
    report_through(
        &rig.client,
        &gw,
        &[
            ("LogicalInterface", li_rv.clone()),
            ("VirtualMachineInterface", vmi_rv),
            ("VirtualNetwork", net_rv.clone()),
        ],
    )
    .await;
    wait_condition(&lis, &li_name, "Ready", "True", "Ok", None).await;
    wait_condition(&vmis, "vmi1", "Ready", "True", "Ok", None).await;
    wait_condition(&networks, "net1", "Ready", "True", "Ok", None).await;
    let li = lis.get(&li_name).await.unwrap();
    assert_eq!(
        condition(&li, "Programmed").map(|c| c.status.as_str()),
        Some("True")
    );

    // A spec change: generation 2 is not programmed until the node says so.
    apply(
        &vmis,
        "vmi1",
        vmi(
            "vmi1",
            "net1",
            "02:00:00:00:10:01",
            &["10.10.0.10", "10.10.0.11"],
        ),
    )
    .await;
    let v = wait_condition(
        &vmis,
        "vmi1",
        "Ready",
        "False",
        "Pending",
        Some("has not programmed it yet"),
    )
    .await;
    assert_eq!(v.meta().generation, Some(2));
    let vmi_rv = labelled_for(&vmis, "vmi1", &gw, 2).await;
    report_through(
        &rig.client,
        &gw,
        &[
            ("LogicalInterface", li_rv),
            ("VirtualMachineInterface", vmi_rv),
            ("VirtualNetwork", net_rv),
        ],
    )
    .await;
    wait_condition(&vmis, "vmi1", "Ready", "True", "Ok", None).await;

    // Events: the VMI's in its namespace, the logical interface's (cluster
    // scoped) in `default`.
    let events_of = |namespace: String, name: String| {
        let client = rig.client.clone();
        async move {
            let events: Api<Event> = Api::namespaced(client, &namespace);
            let list = events
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            let reasons: Vec<String> = list
                .items
                .into_iter()
                .filter(|e| {
                    e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str())
                })
                .filter(|e| e.reporting_controller.as_deref() == Some("trunkline-operator"))
                .filter_map(|e| e.reason)
                .collect();
            if reasons.iter().any(|r| r == "Accepted") && reasons.iter().any(|r| r == "Ready") {
                Ok(reasons)
            } else {
                Err(format!("events so far: {reasons:?}"))
            }
        }
    };
    eventually(
        "Accepted and Ready events for the VMI",
        OPERATOR_TIMEOUT,
        || events_of(ns.to_owned(), "vmi1".to_owned()),
    )
    .await
    .unwrap();
    eventually(
        "Accepted and Ready events for the logical interface",
        OPERATOR_TIMEOUT,
        || events_of("default".to_owned(), li_name.clone()),
    )
    .await
    .unwrap();

    let text = http_get(&rig.operator.as_ref().unwrap().url("/metrics"))
        .unwrap()
        .1;
    for metric in [
        "trunkline_operator_reconcile_runs_total",
        "trunkline_operator_reconcile_duration_seconds_bucket",
        "trunkline_operator_status_writes_total{kind=\"LogicalInterface\"}",
        "trunkline_operator_objects{kind=\"LogicalInterface\",ready=\"true\"}",
        "trunkline_operator_events_total",
    ] {
        assert!(
            text.contains(metric),
            "{metric} missing from /metrics:\n{text}"
        );
    }
    assert_eq!(
        http_get(&rig.operator.as_ref().unwrap().url("/healthz"))
            .unwrap()
            .0,
        200
    );
}

/// The original's order bug: a logical interface created before its VMI and
/// router waits with RefNotFound naming what is missing, and is accepted as
/// soon as the missing pieces appear.
#[tokio::test]
async fn a_logical_interface_created_first_is_accepted_once_its_references_appear() {
    let rig = rig("op-order").await;
    let ns = rig.ns.name();
    let gw = unique_name("gw");
    let li_name = unique_name("li");
    let routers: Api<PhysicalRouter> = Api::all(rig.client.clone());
    let networks: Api<VirtualNetwork> = Api::namespaced(rig.client.clone(), ns);
    let vmis: Api<VirtualMachineInterface> = Api::namespaced(rig.client.clone(), ns);
    let lis: Api<LogicalInterface> = Api::all(rig.client.clone());

    apply(
        &lis,
        &li_name,
        logical_interface(&li_name, &gw, "eth2", 7, (ns, "vmi1")),
    )
    .await;
    let li = wait_condition(
        &lis,
        &li_name,
        "ResolvedRefs",
        "False",
        "RefNotFound",
        Some(&format!("PhysicalRouter {gw} does not exist")),
    )
    .await;
    let message = &condition(&li, "ResolvedRefs").unwrap().message;
    assert!(
        message.contains(&format!("VirtualMachineInterface {ns}/vmi1 does not exist")),
        "{message}"
    );
    assert_eq!(
        condition(&li, "Accepted").map(|c| (c.status.as_str(), c.reason.as_str())),
        Some(("False", "RefNotFound"))
    );

    apply(
        &vmis,
        "vmi1",
        vmi("vmi1", "net1", "02:00:00:00:20:01", &["10.20.0.10"]),
    )
    .await;
    // The VMI waits for its network; the logical interface for both.
    wait_condition(
        &vmis,
        "vmi1",
        "ResolvedRefs",
        "False",
        "RefNotFound",
        Some(&format!("VirtualNetwork {ns}/net1 does not exist")),
    )
    .await;
    wait_condition(
        &lis,
        &li_name,
        "ResolvedRefs",
        "False",
        "RefNotFound",
        Some(&format!(
            "VirtualMachineInterface {ns}/vmi1 is not accepted"
        )),
    )
    .await;
    apply(&networks, "net1", network("net1", "10.20.0.0/24")).await;
    wait_condition(&vmis, "vmi1", "Accepted", "True", "Ok", None).await;

    // A router without the port: the message names the port.
    apply(&routers, &gw, router(&gw, &["eth1"])).await;
    wait_condition(
        &lis,
        &li_name,
        "ResolvedRefs",
        "False",
        "RefNotFound",
        Some("has no physical interface eth2 (it lists: eth1)"),
    )
    .await;
    apply(&routers, &gw, router(&gw, &["eth1", "eth2"])).await;
    wait_condition(&lis, &li_name, "Accepted", "True", "Ok", None).await;
    wait_condition(&lis, &li_name, "ResolvedRefs", "True", "Ok", None).await;
}

/// Three logical interfaces on one VLAN, created one second apart with
/// names that sort in another order: the oldest keeps the VLAN, the others
/// name it; deleting it promotes the next oldest.
#[tokio::test]
async fn the_oldest_logical_interface_keeps_a_vlan_and_its_removal_promotes_the_next() {
    let rig = rig("op-vlan").await;
    let ns = rig.ns.name();
    let gw = unique_name("gw");
    let routers: Api<PhysicalRouter> = Api::all(rig.client.clone());
    let networks: Api<VirtualNetwork> = Api::namespaced(rig.client.clone(), ns);
    let vmis: Api<VirtualMachineInterface> = Api::namespaced(rig.client.clone(), ns);
    let lis: Api<LogicalInterface> = Api::all(rig.client.clone());
    apply(&routers, &gw, router(&gw, &["eth1"])).await;
    apply(&networks, "net1", network("net1", "10.30.0.0/24")).await;
    apply(
        &vmis,
        "vmi1",
        vmi("vmi1", "net1", "02:00:00:00:30:01", &["10.30.0.10"]),
    )
    .await;

    // Created in the order first, second, third; names sort the other way.
    let first = unique_name("zz-first");
    let second = unique_name("mm-second");
    let third = unique_name("aa-third");
    for name in [&first, &second, &third] {
        let created = apply(
            &lis,
            name,
            logical_interface(name, &gw, "eth1", 42, (ns, "vmi1")),
        )
        .await;
        after_created_second(&created).await;
    }
    wait_condition(&lis, &first, "Accepted", "True", "Ok", None).await;
    let winner = format!("already used by LogicalInterface {first} (older)");
    for loser in [&second, &third] {
        wait_condition(&lis, loser, "Accepted", "False", "Conflict", Some(&winner)).await;
    }

    lis.delete(&first, &DeleteParams::default())
        .await
        .expect("delete the winner");
    wait_condition(&lis, &second, "Accepted", "True", "Ok", None).await;
    wait_condition(
        &lis,
        &third,
        "Accepted",
        "False",
        "Conflict",
        Some(&format!(
            "already used by LogicalInterface {second} (older)"
        )),
    )
    .await;
}

/// Addresses outside the network's subnets, equal to its gateway or used by
/// an older VMI are refused in status; fixing the address is enough.
#[tokio::test]
async fn vmi_addresses_are_checked_against_the_network() {
    let rig = rig("op-ips").await;
    let ns = rig.ns.name();
    let networks: Api<VirtualNetwork> = Api::namespaced(rig.client.clone(), ns);
    let vmis: Api<VirtualMachineInterface> = Api::namespaced(rig.client.clone(), ns);
    apply(&networks, "net1", network("net1", "10.40.0.0/24")).await;
    apply(
        &vmis,
        "outside",
        vmi("outside", "net1", "02:00:00:00:40:01", &["10.41.0.5"]),
    )
    .await;
    apply(
        &vmis,
        "gateway",
        vmi("gateway", "net1", "02:00:00:00:40:02", &["10.40.0.1"]),
    )
    .await;
    let owner = apply(
        &vmis,
        "broadcast",
        vmi("broadcast", "net1", "02:00:00:00:40:05", &["10.40.0.255"]),
    )
    .await;
    apply(
        &vmis,
        "owner",
        vmi("owner", "net1", "02:00:00:00:40:03", &["10.40.0.10"]),
    )
    .await;
    after_created_second(&owner).await;
    apply(
        &vmis,
        "copy",
        vmi("copy", "net1", "02:00:00:00:40:04", &["10.40.0.10"]),
    )
    .await;
    apply(
        &vmis,
        "same-mac",
        vmi("same-mac", "net1", "02-00-00-00-40-03", &["10.40.0.11"]),
    )
    .await;

    wait_condition(
        &vmis,
        "outside",
        "Accepted",
        "False",
        "Invalid",
        Some(&format!(
            "address 10.41.0.5 is outside every subnet of VirtualNetwork {ns}/net1 (10.40.0.0/24)"
        )),
    )
    .await;
    wait_condition(
        &vmis,
        "gateway",
        "Accepted",
        "False",
        "Invalid",
        Some("10.40.0.1 is the gateway address of subnet 10.40.0.0/24"),
    )
    .await;
    wait_condition(
        &vmis,
        "broadcast",
        "Accepted",
        "False",
        "Invalid",
        Some("10.40.0.255 is the broadcast address of subnet 10.40.0.0/24"),
    )
    .await;
    wait_condition(&vmis, "owner", "Accepted", "True", "Ok", None).await;
    wait_condition(
        &vmis,
        "copy",
        "Accepted",
        "False",
        "Conflict",
        Some(&format!(
            "address 10.40.0.10 is already used by VirtualMachineInterface {ns}/owner"
        )),
    )
    .await;
    wait_condition(
        &vmis,
        "same-mac",
        "Accepted",
        "False",
        "Conflict",
        Some(&format!(
            "MAC address 02:00:00:00:40:03 is already used by VirtualMachineInterface {ns}/owner"
        )),
    )
    .await;

    apply(
        &vmis,
        "outside",
        vmi("outside", "net1", "02:00:00:00:40:01", &["10.40.0.5"]),
    )
    .await;
    let v = wait_condition(&vmis, "outside", "Accepted", "True", "Ok", None).await;
    assert_eq!(v.meta().generation, Some(2));
}

/// The VNI is allocated once and kept when the operator restarts; a
/// restarted operator writes nothing when nothing changed (every
/// resourceVersion stays the same), and it shuts down cleanly on SIGTERM.
///
/// The operators here run a full pass every second even without changes
/// (`--resync-seconds 1`), so "nothing was written" is checked after whole
/// passes that provably ran, not after a pause.
#[tokio::test]
async fn a_restart_keeps_the_vni_and_writes_nothing() {
    const RESYNC_EVERY_SECOND: &[&str] = &["--resync-seconds", "1"];
    let mut rig = rig_with("op-restart", RESYNC_EVERY_SECOND).await;
    let ns = rig.ns.name().to_owned();
    let gw = unique_name("gw");
    let li_name = unique_name("li");
    let routers: Api<PhysicalRouter> = Api::all(rig.client.clone());
    let networks: Api<VirtualNetwork> = Api::namespaced(rig.client.clone(), &ns);
    let vmis: Api<VirtualMachineInterface> = Api::namespaced(rig.client.clone(), &ns);
    let lis: Api<LogicalInterface> = Api::all(rig.client.clone());
    apply(&routers, &gw, router(&gw, &["eth1"])).await;
    apply(&networks, "net1", network("net1", "10.50.0.0/24")).await;
    apply(&networks, "net2", network("net2", "10.51.0.0/24")).await;
    apply(
        &vmis,
        "vmi1",
        vmi("vmi1", "net1", "02:00:00:00:50:01", &["10.50.0.10"]),
    )
    .await;
    apply(
        &lis,
        &li_name,
        logical_interface(&li_name, &gw, "eth1", 5, (&ns, "vmi1")),
    )
    .await;
    wait_condition(&lis, &li_name, "Accepted", "True", "Ok", None).await;
    wait_condition(&networks, "net2", "Accepted", "True", "Ok", None).await;

    wait_condition(&vmis, "vmi1", "Accepted", "True", "Ok", None).await;
    wait_condition(&networks, "net1", "Accepted", "True", "Ok", None).await;

    // Settled: the same resourceVersions before and after a whole pass that
    // started after the first read.
    let versions = || async {
        let mut v = vec![
            lis.get(&li_name)
                .await
                .map_err(|e| e.to_string())?
                .resource_version(),
            vmis.get("vmi1")
                .await
                .map_err(|e| e.to_string())?
                .resource_version(),
        ];
        for n in ["net1", "net2"] {
            v.push(
                networks
                    .get(n)
                    .await
                    .map_err(|e| e.to_string())?
                    .resource_version(),
            );
        }
        Ok::<_, String>(v)
    };
    let vnis = || async {
        let mut v = Vec::new();
        for n in ["net1", "net2"] {
            v.push(networks.get(n).await.unwrap().status.and_then(|s| s.vni));
        }
        v
    };
    let old_operator = rig.operator.as_ref().expect("operator");
    let settled = eventually("statuses settled", OPERATOR_TIMEOUT, || async {
        let before = versions().await?;
        // A pass under way now may still write; the one after it starts
        // after this read.
        wait_passes(old_operator, completed_passes(old_operator) + 2.0).await;
        let after = versions().await?;
        if before == after {
            Ok(after)
        } else {
            Err(format!("{before:?} -> {after:?}"))
        }
    })
    .await
    .unwrap();
    let vni_before = vnis().await;
    assert!(vni_before.iter().all(|v| v.is_some()), "{vni_before:?}");
    assert_ne!(vni_before[0], vni_before[1]);
    // MPLS labels: one per accepted network and VMI, all distinct.
    let labels = || async {
        let mut v = Vec::new();
        for n in ["net1", "net2"] {
            v.push(
                networks
                    .get(n)
                    .await
                    .unwrap()
                    .status
                    .and_then(|s| s.mpls_label),
            );
        }
        v.push(
            vmis.get("vmi1")
                .await
                .unwrap()
                .status
                .and_then(|s| s.mpls_label),
        );
        v
    };
    let labels_before = labels().await;
    assert!(
        labels_before.iter().all(|l| l.is_some_and(|l| l >= 16)),
        "{labels_before:?}"
    );
    let mut distinct = labels_before.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{labels_before:?}");

    rig.operator.take().unwrap().stop(SHUTDOWN_TIMEOUT);
    let operator = start_operator(&rig.kubeconfig, RESYNC_EVERY_SECOND);
    operator.wait_ready(OPERATOR_TIMEOUT).await;
    // Two whole passes of the new operator (the first runs once its stores
    // have synced): whatever it would rewrite, it has written by then.
    wait_passes(&operator, 2.0).await;
    assert_eq!(
        versions().await.unwrap(),
        settled,
        "a restart must not write unchanged statuses"
    );
    assert_eq!(vnis().await, vni_before, "a restart must not change a VNI");
    assert_eq!(
        labels().await,
        labels_before,
        "a restart must not change a label"
    );
    rig.operator = Some(operator);

    // Still alive and deciding: a change is picked up.
    apply(
        &vmis,
        "vmi1",
        vmi("vmi1", "net1", "02:00:00:00:50:01", &["10.99.0.1"]),
    )
    .await;
    wait_condition(
        &vmis,
        "vmi1",
        "Accepted",
        "False",
        "Invalid",
        Some("outside every subnet"),
    )
    .await;
}

/// A network shows its label and encapsulations; an external VTEP joining
/// it is accepted (and waits for a node holding the network); a second one
/// at the same address loses to the first; the network dropping VXLAN
/// refuses the VTEP.
#[tokio::test]
async fn external_vteps_labels_and_encapsulations() {
    let rig = rig("op-overlay").await;
    let ns = rig.ns.name().to_owned();
    let networks: Api<VirtualNetwork> = Api::namespaced(rig.client.clone(), &ns);
    let vteps: Api<ExternalVTEP> = Api::all(rig.client.clone());
    let mut net = network("net1", "10.60.0.0/24");
    net["spec"]["encapsulation"] = json!(["VXLAN", "MPLSoUDP"]);
    apply(&networks, "net1", net.clone()).await;
    let n = wait_condition(&networks, "net1", "Accepted", "True", "Ok", None).await;
    let status = n.status.expect("status");
    assert!(status.mpls_label.is_some_and(|l| l >= 16), "{status:?}");
    let written = serde_json::to_value(&status.encapsulation).unwrap();
    assert_eq!(written, json!(["VXLAN", "MPLSoUDP"]));

    let vtep = |name: &str| {
        json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "ExternalVTEP",
            "metadata": { "name": name },
            "spec": {
                "address": "198.51.100.77",
                "networks": [{ "namespace": ns, "name": "net1", "endpoints": [
                    { "macAddress": "02:00:00:00:60:01", "ips": ["10.60.0.50"] }
                ]}],
            },
        })
    };
    let first = unique_name("xvtep");
    apply(&vteps, &first, vtep(&first)).await;
    wait_condition(&vteps, &first, "Accepted", "True", "Ok", None).await;
    wait_condition(
        &vteps,
        &first,
        "Programmed",
        "False",
        "Pending",
        Some("no gateway node holds any of its networks"),
    )
    .await;

    after_created_second(&vteps.get(&first).await.expect("the first VTEP")).await;
    let second = unique_name("xvtep");
    apply(&vteps, &second, vtep(&second)).await;
    wait_condition(
        &vteps,
        &second,
        "Accepted",
        "False",
        "Conflict",
        Some(&format!("is already used by ExternalVTEP {first} (older)")),
    )
    .await;
    vteps
        .delete(&second, &DeleteParams::default())
        .await
        .expect("delete the second VTEP");

    net["spec"]["encapsulation"] = json!(["MPLSoUDP"]);
    apply(&networks, "net1", net).await;
    wait_condition(
        &vteps,
        &first,
        "Accepted",
        "False",
        "Invalid",
        Some("does not use VXLAN (its encapsulation: MPLSoUDP)"),
    )
    .await;
    vteps
        .delete(&first, &DeleteParams::default())
        .await
        .expect("delete the VTEP");
}

/// What a new user checks first, against the real API server: an HA group
/// in mode Fast whose members declare no underlay address says why it is
/// refused (heartbeats travel over the fabric); one VMI bound on two
/// nodes outside an HA group is a conflict that names the older binding,
/// and members of one group may share it; `kubectl get` shows every port,
/// subnet, address and member, and the normalised MAC; a running network's
/// VNI cannot be changed.
#[tokio::test]
async fn status_tells_the_truth_and_kubectl_get_shows_every_item() {
    let rig = rig("op-truth").await;
    let plane = ControlPlane::shared();
    let ns = rig.ns.name();
    let (gw_a, gw_b) = (unique_name("gw-a"), unique_name("gw-b"));
    let (li_a, li_b) = (unique_name("li-a"), unique_name("li-b"));
    let group_name = unique_name("ha");
    let routers: Api<PhysicalRouter> = Api::all(rig.client.clone());
    let networks: Api<VirtualNetwork> = Api::namespaced(rig.client.clone(), ns);
    let vmis: Api<VirtualMachineInterface> = Api::namespaced(rig.client.clone(), ns);
    let lis: Api<LogicalInterface> = Api::all(rig.client.clone());
    let groups: Api<GatewayHAGroup> = Api::all(rig.client.clone());

    apply(&routers, &gw_a, router(&gw_a, &["eth1", "eth2", "eth3"])).await;
    apply(&routers, &gw_b, router(&gw_b, &["eth1"])).await;
    apply(
        &networks,
        "net1",
        json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": { "name": "net1" },
            "spec": { "subnets": [{ "cidr": "10.50.0.0/24" }, { "cidr": "fd50::/64" }] },
        }),
    )
    .await;
    apply(
        &vmis,
        "vmi1",
        vmi(
            "vmi1",
            "net1",
            "02-AB-00-00-50-01",
            &["10.50.0.10", "fd50:0::0:10"],
        ),
    )
    .await;
    let first = apply(
        &lis,
        &li_a,
        logical_interface(&li_a, &gw_a, "eth1", 100, (ns, "vmi1")),
    )
    .await;
    after_created_second(&first).await;
    apply(
        &lis,
        &li_b,
        logical_interface(&li_b, &gw_b, "eth1", 100, (ns, "vmi1")),
    )
    .await;

    // Two nodes, no HA group: the newer binding is the conflict.
    wait_condition(&lis, &li_a, "Accepted", "True", "Ok", None).await;
    wait_condition(
        &lis,
        &li_b,
        "Accepted",
        "False",
        "Conflict",
        Some(&format!(
            "VirtualMachineInterface {ns}/vmi1 is already bound on PhysicalRouter {gw_a} by LogicalInterface {li_a} (older), and PhysicalRouter {gw_b} is not in a GatewayHAGroup with {gw_a}"
        )),
    )
    .await;

    // Member ports of one group may share the VMI; the group itself is
    // refused: mode Fast needs the members' underlay addresses.
    apply(
        &groups,
        &group_name,
        json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "GatewayHAGroup",
            "metadata": { "name": group_name },
            "spec": { "mode": "Fast", "members": [
                { "physicalRouter": gw_a, "physicalInterface": "eth1" },
                { "physicalRouter": gw_b, "physicalInterface": "eth1" },
            ]},
        }),
    )
    .await;
    let group = wait_condition(
        &groups,
        &group_name,
        "Ready",
        "False",
        "Invalid",
        Some(&format!(
            "member {gw_a}: PhysicalRouter {gw_a} declares no spec.fabric.underlayAddress: mode Fast sends heartbeats over the fabric"
        )),
    )
    .await;
    for (type_, status) in [
        ("Accepted", "False"),
        ("ResolvedRefs", "True"),
        ("Programmed", "False"),
    ] {
        assert_eq!(
            condition(&group, type_).map(|c| c.status.as_str()),
            Some(status),
            "{type_}"
        );
    }
    wait_condition(&lis, &li_b, "Accepted", "True", "Ok", None).await;

    // kubectl get shows every item of a list, not its first one.
    let network = wait_condition(&networks, "net1", "Accepted", "True", "Ok", None).await;
    let vni = network.status.as_ref().and_then(|s| s.vni).expect("a VNI");
    let expectations = [
        (vec!["get", "pr", gw_a.as_str()], vec!["eth1,eth2,eth3"]),
        (
            vec!["get", "vn", "-n", ns, "net1"],
            vec!["10.50.0.0/24,fd50::/64"],
        ),
        (
            vec!["get", "tlvmi", "-n", ns, "vmi1"],
            vec!["02:ab:00:00:50:01", "10.50.0.10,fd50::10"],
        ),
        (
            vec!["get", "gwha", group_name.as_str()],
            vec![gw_a.as_str(), gw_b.as_str(), "Invalid"],
        ),
    ];
    for (args, texts) in &expectations {
        let shown = eventually(
            &format!("kubectl {}", args.join(" ")),
            OPERATOR_TIMEOUT,
            || async {
                let out = plane.kubectl_ok(args).map_err(|e| e.to_string())?;
                match texts.iter().find(|t| !out.contains(**t)) {
                    None => Ok(out),
                    Some(missing) => Err(format!("{missing:?} not shown in:\n{out}")),
                }
            },
        )
        .await;
        shown.unwrap_or_else(|e| panic!("{e}"));
    }

    // A running network keeps its VNI: the API server refuses another.
    let refused = networks
        .patch(
            "net1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "vni": vni + 1000 } })),
        )
        .await;
    match refused {
        Err(kube::Error::Api(status)) if status.code == 422 => assert!(
            status.message.contains(
                "spec.vni cannot be set to another VNI than the one the network runs with"
            ),
            "{}",
            status.message
        ),
        other => panic!("setting another VNI on a running network: {other:?}"),
    }
    // Pinning it to the running one is fine, and changes nothing.
    networks
        .patch(
            "net1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "vni": vni } })),
        )
        .await
        .expect("spec.vni set to status.vni");
    let network = wait_condition(&networks, "net1", "Accepted", "True", "Ok", None).await;
    assert_eq!(network.status.as_ref().and_then(|s| s.vni), Some(vni));
}
