//! The control plane at size, tested for what it must never do (issue 14):
//! a node's agent receives and keeps only what concerns its node, an
//! idle cluster writes nothing, neither settled nor after the operator or
//! an agent restarts, and the agent builds only for what a build reads.
//!
//! ```text
//!  node A (lab, real agent): bms1, bms2        node B (no agent): 1000 VMIs + 1000 LIs
//!     watches node.trunkline.io/A                  labelled node.trunkline.io/B
//!  the agent's watch events and RSS before and after B's objects: ~unchanged
//!
//!  settled (a marker made Ready after everything else) -> resourceVersions of every
//!  object, the router's included: unchanged over an idle window, across an operator
//!  restart (whole passes every second) and across an agent restart
//! ```

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{BMS1, BMS2, Gateway, apply_params};
use futures::{StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch};
use serde_json::json;
use trunkline_api::{LogicalInterface, PhysicalRouter, VirtualMachineInterface, VirtualNetwork};
use trunkline_test_support::{ManagedProcess, eventually};

/// Objects of each kind (VMIs, logical interfaces) for the other node.
const OTHER_OBJECTS: usize = 1000;
/// Requests in flight while applying them.
const IN_FLIGHT: usize = 16;
/// How long an idle cluster is watched for writes.
const IDLE_WINDOW: Duration = Duration::from_secs(6);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(180);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// The tests of this binary run one at a time: each loads the API server
/// they share with a thousand or more objects, and each test's operator
/// decides (and writes the status of) every object it sees, the other
/// tests' included; side by side on a loaded machine they measured each
/// other rather than themselves.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The agent's watch events so far, by kind.
fn watch_events(agent: &ManagedProcess) -> BTreeMap<String, f64> {
    agent
        .metrics()
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("trunkline_dataplane_watch_events_total{kind=\"")?;
            let (kind, value) = rest.split_once("\"} ")?;
            Some((kind.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The resident memory of process `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test]
async fn another_nodes_objects_never_reach_this_agent() {
    let _one = ONE_AT_A_TIME.lock().await;
    let gw = Gateway::start(&[BMS1, BMS2], "af-xdp").await;
    gw.apply_objects(&[BMS1, BMS2]).await;
    for vlan in [100, 200] {
        gw.wait_li(&gw.li_name(vlan), "True").await;
    }
    gw.ping_eventually("bms1", "192.168.1.20").await;
    let agent = gw.agent();
    let pid = agent.pid().expect("agent pid");
    // Settled: the agent's events stop moving.
    let before = eventually("the agent settled", SETTLE_TIMEOUT, || async {
        let a = watch_events(agent);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let b = watch_events(agent);
        if a == b && !a.is_empty() {
            Ok(b)
        } else {
            Err(format!("{a:?} -> {b:?}"))
        }
    })
    .await
    .unwrap();
    let rss_before = rss_kib(pid);

    // Another node, with a network and OTHER_OBJECTS VMIs bound there.
    let ns = gw.ns.name().to_owned();
    let other = format!("{}-other", gw.node);
    let routers: Api<PhysicalRouter> = Api::all(gw.client.clone());
    let router = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
        "metadata": {"name": other},
        "spec": {"physicalInterfaces": [{"name": "p0"}, {"name": "p1"}], "interfaceLimit": 8192}});
    routers
        .patch(&other, &apply_params(), &Patch::Apply(&router))
        .await
        .expect("other router");
    gw.apply_namespaced(
        "virtualnetworks",
        "far",
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": "far", "namespace": ns},
            "spec": {"subnets": [{"cidr": "10.64.0.0/16"}]}}),
    )
    .await;
    let vmis: Api<VirtualMachineInterface> = Api::namespaced(gw.client.clone(), &ns);
    let lis: Api<LogicalInterface> = Api::all(gw.client.clone());
    futures::stream::iter(0..OTHER_OBJECTS)
        .map(|i| {
            let (vmis, lis, ns, other) = (vmis.clone(), lis.clone(), ns.clone(), other.clone());
            async move {
                let name = format!("far-{i}");
                let vmi = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"virtualNetwork": "far",
                             "macAddress": format!("02:40:00:00:{:02x}:{:02x}", i >> 8, i & 0xff),
                             "ips": [{"address": format!("10.64.{}.{}", i / 200, i % 200 + 10)}]}});
                vmis.patch(&name, &apply_params(), &Patch::Apply(&vmi)).await?;
                let li_name = format!("{other}-{i}");
                let li = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
                    "metadata": {"name": li_name},
                    "spec": {"physicalRouter": other, "physicalInterface": format!("p{}", i % 2),
                             "vlan": i / 2 + 1,
                             "virtualMachineInterface": {"namespace": ns, "name": name}}});
                lis.patch(&li_name, &apply_params(), &Patch::Apply(&li)).await?;
                Ok::<_, kube::Error>(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await
        .expect("the other node's objects");

    // The operator labels every one of them for the other node.
    let label = format!("node.trunkline.io/{other}");
    eventually(
        "the other node's objects labelled for it",
        SETTLE_TIMEOUT,
        || async {
            let labelled = lis
                .list_metadata(&ListParams::default().labels(&label))
                .await
                .map_err(|e| e.to_string())?
                .items
                .len()
                + vmis
                    .list_metadata(&ListParams::default().labels(&label))
                    .await
                    .map_err(|e| e.to_string())?
                    .items
                    .len();
            if labelled == 2 * OTHER_OBJECTS {
                Ok(())
            } else {
                Err(format!("{labelled} of {} labelled", 2 * OTHER_OBJECTS))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; {}", gw.logs()));
    // None of them for this node.
    let mine = format!("node.trunkline.io/{}", gw.node);
    let far_for_me = vmis
        .list_metadata(&ListParams::default().labels(&mine))
        .await
        .expect("list")
        .items
        .iter()
        .filter(|v| v.name_any().starts_with("far-"))
        .count();
    assert_eq!(
        far_for_me, 0,
        "no VMI of the other node is labelled for this one"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    let after = watch_events(agent);
    for kind in [
        "LogicalInterface",
        "VirtualMachineInterface",
        "VirtualNetwork",
    ] {
        assert_eq!(
            before.get(kind),
            after.get(kind),
            "{kind}: the agent received events of the other node's objects"
        );
    }
    let total = |m: &BTreeMap<String, f64>| m.values().sum::<f64>();
    let grew = total(&after) - total(&before);
    assert!(
        grew < 0.05 * (2 * OTHER_OBJECTS) as f64,
        "the agent received {grew} events for {} objects of another node: {before:?} -> {after:?}",
        2 * OTHER_OBJECTS
    );
    let rss_after = rss_kib(pid);
    assert!(
        (rss_after as f64) < rss_before as f64 * 1.05,
        "the agent's RSS grew from {rss_before} KiB to {rss_after} KiB with another node's objects"
    );
    // Still forwarding, still reporting.
    gw.ping_eventually("bms1", "192.168.1.20").await;
}

/// Every object's resourceVersion: the router's, the logical interfaces',
/// VMIs' and networks' of the test.
async fn versions(gw: &Gateway<'_>) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    let ns = gw.ns.name();
    let router = Api::<PhysicalRouter>::all(gw.client.clone())
        .get(&gw.node)
        .await
        .expect("router");
    all.insert(
        format!("PhysicalRouter {}", gw.node),
        router.resource_version().unwrap_or_default(),
    );
    for li in Api::<LogicalInterface>::all(gw.client.clone())
        .list(&ListParams::default())
        .await
        .expect("lis")
        .items
        .into_iter()
        .filter(|li| li.spec.physical_router.as_str() == gw.node)
    {
        all.insert(
            format!("LogicalInterface {}", li.name_any()),
            li.resource_version().unwrap_or_default(),
        );
    }
    for v in Api::<VirtualMachineInterface>::namespaced(gw.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("vmis")
        .items
    {
        all.insert(
            format!("VirtualMachineInterface {}", v.name_any()),
            v.resource_version().unwrap_or_default(),
        );
    }
    for n in Api::<VirtualNetwork>::namespaced(gw.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("networks")
        .items
    {
        all.insert(
            format!("VirtualNetwork {}", n.name_any()),
            n.resource_version().unwrap_or_default(),
        );
    }
    all
}

/// The objects' versions once nothing moves for two seconds.
async fn settled(gw: &Gateway<'_>) -> BTreeMap<String, String> {
    eventually("nothing written for 2 s", SETTLE_TIMEOUT, || async {
        let a = versions(gw).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let b = versions(gw).await;
        if a == b { Ok(b) } else { Err(changed(&a, &b)) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; {}", gw.logs()))
}

fn changed(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> String {
    let moved: Vec<String> = b
        .iter()
        .filter(|(k, v)| a.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k} {} -> {v}", a.get(k).map_or("(none)", String::as_str)))
        .collect();
    format!("written: {}", moved.join(", "))
}

#[tokio::test]
async fn an_idle_cluster_writes_nothing_even_after_restarts() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut gw = Gateway::start(&[BMS1, BMS2], "af-xdp").await;
    gw.apply_objects(&[BMS1, BMS2]).await;
    for vlan in [100, 200] {
        gw.wait_li(&gw.li_name(vlan), "True").await;
    }
    // The marker: applied after everything else, Ready once the node has
    // programmed it and the operator has seen that; what follows (its
    // Ready write, the node's report of having seen that write) settles.
    gw.apply_vmi("marker", "net1", "02:00:00:00:09:01", "192.168.1.90")
        .await;
    let marker = gw.apply_li(900, "marker").await;
    gw.wait_li(&marker, "True").await;
    let settled = settled(&gw).await;
    assert!(settled.len() >= 6, "{settled:?}");
    let (client, node) = (gw.client.clone(), gw.node.clone());
    let router_status = || async {
        let r = Api::<PhysicalRouter>::all(client.clone())
            .get(&node)
            .await
            .expect("router");
        serde_json::to_string_pretty(&r.status).unwrap_or_default()
    };
    let status_settled = router_status().await;

    // Idle: not one write.
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle = versions(&gw).await;
    assert_eq!(
        idle,
        settled,
        "an idle cluster wrote: {}",
        changed(&settled, &idle)
    );

    // The operator restarts, and decides everything every second: no write.
    gw.operator.take().expect("operator").stop(SHUTDOWN_TIMEOUT);
    gw.start_operator(&["--resync-seconds", "1"]);
    let operator = gw.operator.as_ref().expect("operator");
    operator.wait_ready(SETTLE_TIMEOUT).await;
    eventually(
        "three passes of the new operator",
        SETTLE_TIMEOUT,
        || async {
            match operator.metric("trunkline_operator_reconcile_runs_total") {
                Some(n) if n >= 3.0 => Ok(()),
                other => Err(format!("{other:?} passes")),
            }
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_operator = versions(&gw).await;
    assert_eq!(
        after_operator,
        settled,
        "an operator restart wrote: {}; {}",
        changed(&settled, &after_operator),
        gw.logs()
    );

    // The agent restarts: same tables, same report, no write.
    gw.agent.take().expect("agent").stop(SHUTDOWN_TIMEOUT);
    gw.start_agent();
    gw.agent().wait_ready(SETTLE_TIMEOUT).await;
    eventually("the new agent's tables", SETTLE_TIMEOUT, || async {
        match gw.agent().metric("trunkline_dataplane_tables_version") {
            Some(v) if v > 0.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap();
    gw.ping_eventually("bms1", "192.168.1.20").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_agent = versions(&gw).await;
    assert_eq!(
        after_agent,
        settled,
        "an agent restart wrote: {}; {}\nrouter status before: {status_settled}\nafter: {}",
        changed(&settled, &after_agent),
        gw.logs(),
        router_status().await
    );

    // Still alive: a change is decided, programmed and reported.
    gw.apply_vmi("late", "net1", "02:00:00:00:09:02", "192.168.1.91")
        .await;
    let late = gw.apply_li(901, "late").await;
    gw.wait_li(&late, "True").await;
}

/// Objects of the CI smoke run at size.
const SMOKE_OBJECTS: usize = 1000;
/// The largest object the issue allows.
const SIZE_BOUND: usize = 256 * 1024;

/// The CI smoke run at size (not timed): 1000 VMIs and 1000 logical
/// interfaces on the node are all Ready, no object is over the size bound,
/// and the agent's tables are those a compilation from scratch of the same
/// configuration gives.
#[tokio::test]
async fn two_thousand_objects_are_ready_small_and_their_tables_as_from_scratch() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut gw = Gateway::start(&[BMS1, BMS2], "af-xdp").await;
    // Up before it is stopped (a process stopped while still starting
    // says nothing about a clean shutdown).
    let health = gw.agent().url("/metrics");
    eventually("the first agent serving", SETTLE_TIMEOUT, || async {
        trunkline_test_support::http_get(&health).map(|_| ())
    })
    .await
    .unwrap();
    gw.agent.take().expect("agent").stop(SHUTDOWN_TIMEOUT);
    gw.agent_args = vec!["--debug-tables".into()];
    gw.start_agent();
    gw.apply_objects(&[BMS1, BMS2]).await;
    let ns = gw.ns.name().to_owned();
    gw.apply_namespaced(
        "virtualnetworks",
        "smoke",
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": "smoke", "namespace": ns},
            "spec": {"subnets": [{"cidr": "10.70.0.0/16"}]}}),
    )
    .await;
    let vmis: Api<VirtualMachineInterface> = Api::namespaced(gw.client.clone(), &ns);
    let lis: Api<LogicalInterface> = Api::all(gw.client.clone());
    let node = gw.node.clone();
    futures::stream::iter(0..SMOKE_OBJECTS)
        .map(|i| {
            let (vmis, lis, ns, node) = (vmis.clone(), lis.clone(), ns.clone(), node.clone());
            async move {
                let name = format!("smoke-{i}");
                let vmi = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
                    "metadata": {"name": name, "namespace": ns, "labels": {"trunkline.io/smoke": "yes"}},
                    "spec": {"virtualNetwork": "smoke",
                             "macAddress": format!("02:70:00:00:{:02x}:{:02x}", i >> 8, i & 0xff),
                             "ips": [{"address": format!("10.70.{}.{}", i / 200, i % 200 + 10)}]}});
                vmis.patch(&name, &apply_params(), &Patch::Apply(&vmi)).await?;
                let li_name = format!("{node}-smoke-{i}");
                let li = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
                    "metadata": {"name": li_name, "labels": {"trunkline.io/smoke": "yes"}},
                    "spec": {"physicalRouter": node, "physicalInterface": "eth1", "vlan": 1000 + i,
                             "virtualMachineInterface": {"namespace": ns, "name": name}}});
                lis.patch(&li_name, &apply_params(), &Patch::Apply(&li)).await?;
                Ok::<_, kube::Error>(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await
        .expect("the smoke objects");

    let ready = |conditions: &[trunkline_api::status::Condition], generation: Option<i64>| {
        conditions.iter().any(|c| {
            c.type_ == "Ready" && c.status == "True" && c.observed_generation == generation
        })
    };
    let selector = ListParams::default().labels("trunkline.io/smoke=yes");
    eventually("every smoke object Ready", SETTLE_TIMEOUT, || async {
        let lis_ready = lis
            .list(&selector)
            .await
            .map_err(|e| e.to_string())?
            .items
            .iter()
            .filter(|o| {
                o.status
                    .as_ref()
                    .is_some_and(|s| ready(&s.conditions, o.metadata.generation))
            })
            .count();
        let vmis_ready = vmis
            .list(&selector)
            .await
            .map_err(|e| e.to_string())?
            .items
            .iter()
            .filter(|o| {
                o.status
                    .as_ref()
                    .is_some_and(|s| ready(&s.conditions, o.metadata.generation))
            })
            .count();
        if lis_ready + vmis_ready == 2 * SMOKE_OBJECTS {
            Ok(())
        } else {
            Err(format!(
                "{lis_ready} LIs and {vmis_ready} VMIs Ready of {SMOKE_OBJECTS} each"
            ))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; {}", gw.logs()));

    // No object over the bound: the router holds no per-object list.
    let mut router = Api::<PhysicalRouter>::all(gw.client.clone())
        .get(&gw.node)
        .await
        .expect("router");
    router.metadata.managed_fields = None;
    let router_bytes = serde_json::to_vec(&router).expect("json").len();
    assert!(
        router_bytes < SIZE_BOUND,
        "the router takes {router_bytes} bytes"
    );
    assert!(
        router_bytes < 8 * 1024,
        "the router's report does not grow with the objects it holds: {router_bytes} bytes"
    );
    let network = Api::<VirtualNetwork>::namespaced(gw.client.clone(), &ns)
        .get("smoke")
        .await
        .expect("network");
    let largest_vmi = vmis
        .list(&selector)
        .await
        .expect("vmis")
        .items
        .into_iter()
        .map(|mut v| {
            v.metadata.managed_fields = None;
            serde_json::to_vec(&v).expect("json").len()
        })
        .max()
        .unwrap_or(0);
    assert!(
        largest_vmi < SIZE_BOUND && serde_json::to_vec(&network).expect("json").len() < SIZE_BOUND
    );

    // The agent's tables are what a compilation from scratch gives.
    let (code, body) =
        trunkline_test_support::http_get(&gw.agent().url("/debug/tables")).expect("debug tables");
    assert_eq!(code, 200, "{body}");
    let tables: serde_json::Value = serde_json::from_str(&body).expect("json");
    let (installed, scratch) = (
        tables["installed"].as_str().expect("installed"),
        tables["scratch"].as_str().expect("scratch"),
    );
    assert!(
        installed.matches("smoke-").count() >= SMOKE_OBJECTS,
        "the smoke objects are in the tables"
    );
    assert!(
        installed == scratch,
        "the installed tables differ from a compilation from scratch"
    );
}

/// The agent's compile loop counts of wake-ups with outcome `outcome`.
fn wakes(agent: &ManagedProcess, outcome: &str) -> f64 {
    agent
        .metric(&format!(
            "trunkline_dataplane_compile_wakes_total{{outcome=\"{outcome}\"}}"
        ))
        .unwrap_or(0.0)
}

/// Builds (new tables or the same) so far.
fn builds(agent: &ManagedProcess) -> f64 {
    wakes(agent, "build_swapped") + wakes(agent, "build_unchanged")
}

/// The router's report: programmedThrough of VMIs, and its exceptions.
async fn vmi_report(gw: &Gateway<'_>) -> (u64, Vec<(String, String)>) {
    let router = Api::<PhysicalRouter>::all(gw.client.clone())
        .get(&gw.node)
        .await
        .expect("router");
    let status = router.status.unwrap_or_default();
    let through = status
        .programmed_through
        .get("VirtualMachineInterface")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let exceptions = status
        .exceptions
        .into_iter()
        .map(|e| (e.name, e.reason))
        .collect();
    (through, exceptions)
}

/// The agent builds only for what a build reads (issue 14): an event that
/// changes nothing of it (here an annotation, which its stores drop) moves
/// the node's report past it without a build; a spec edit the operator has
/// not decided on yet holds the report (a watermark past it would say it
/// is programmed) until its verdict, or for at most a second, after which
/// a build reports it as an exception while the node keeps enforcing the
/// generation accepted last.
#[tokio::test]
async fn the_agent_builds_only_for_what_a_build_reads() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut gw = Gateway::start(&[BMS1, BMS2], "af-xdp").await;
    gw.apply_objects(&[BMS1, BMS2]).await;
    for vlan in [100, 200] {
        gw.wait_li(&gw.li_name(vlan), "True").await;
    }
    settled(&gw).await;
    let vmis: Api<VirtualMachineInterface> = Api::namespaced(gw.client.clone(), gw.ns.name());

    // An annotation: reported, not built.
    let (built, only) = (builds(gw.agent()), wakes(gw.agent(), "watermarks_only"));
    let annotated = vmis
        .patch(
            "bms2",
            &kube::api::PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"example.com/note": "x"}}})),
        )
        .await
        .expect("annotate");
    let version: u64 = annotated
        .resource_version()
        .and_then(|v| v.parse().ok())
        .expect("a numeric resourceVersion");
    eventually(
        "the report's VMI watermark reaches the annotation",
        SETTLE_TIMEOUT,
        || async {
            let (through, _) = vmi_report(&gw).await;
            if through >= version {
                Ok(())
            } else {
                Err(format!("programmedThrough {through} < {version}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; {}", gw.logs()));
    assert_eq!(
        builds(gw.agent()),
        built,
        "an annotation made the agent build; {}",
        gw.agent().metrics()
    );
    assert!(wakes(gw.agent(), "watermarks_only") > only);

    // A spec edit without an operator: no verdict comes, so after the
    // waiting limit a build reports it, and the node keeps enforcing the
    // accepted generation (bms1 still reaches bms2 at its old address).
    gw.operator.take().expect("operator").stop(SHUTDOWN_TIMEOUT);
    gw.apply_vmi("bms2", "net1", BMS2.mac, "192.168.1.21").await;
    let edited = vmis.get("bms2").await.expect("bms2");
    let version: u64 = edited
        .resource_version()
        .and_then(|v| v.parse().ok())
        .expect("a numeric resourceVersion");
    eventually(
        "the edit reported as an exception",
        SETTLE_TIMEOUT,
        || async {
            let (through, exceptions) = vmi_report(&gw).await;
            let excepted = exceptions.iter().any(|(name, reason)| {
                name == "bms2" && reason.contains("until the operator accepts")
            });
            if through >= version && excepted {
                Ok(())
            } else {
                Err(format!(
                    "programmedThrough {through} (edit at {version}), exceptions {exceptions:?}"
                ))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; {}", gw.logs()));
    assert!(
        wakes(gw.agent(), "waiting") >= 1.0,
        "{}",
        gw.agent().metrics()
    );
    gw.ping_eventually("bms1", "192.168.1.20").await;

    // The operator's verdict is built: the edit is programmed.
    gw.start_operator(&[]);
    eventually(
        "the edit Programmed at its generation",
        SETTLE_TIMEOUT,
        || async {
            let vmi = vmis.get("bms2").await.map_err(|e| e.to_string())?;
            let conditions = vmi.status.unwrap_or_default().conditions;
            let programmed = conditions.iter().any(|c| {
                c.type_ == "Programmed"
                    && c.status == "True"
                    && c.observed_generation == vmi.metadata.generation
            });
            if programmed {
                Ok(())
            } else {
                Err(format!("{conditions:?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; {}", gw.logs()));
    let (_, exceptions) = vmi_report(&gw).await;
    assert!(
        !exceptions.iter().any(|(name, _)| name == "bms2"),
        "{exceptions:?}"
    );
}
