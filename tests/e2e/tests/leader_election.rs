//! Two (then three) operator processes with `--leader-elect` against a real
//! API server, with the shipped roles (`deploy/rbac/operator.yaml` and the
//! Lease Role `deploy/rbac/operator-leader-election.yaml`): one leads and
//! writes status, the other only watches; when the leader stops (SIGTERM,
//! Lease released) the standby takes over at once; when the leader dies
//! (SIGKILL, Lease kept) a standby takes over within the lease duration.
//!
//! One test, in phases, because operators watch the whole cluster: a second
//! test's leader would write this test's objects and blur who wrote what.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use trunkline_api::VirtualNetwork;
use trunkline_test_support::{
    ControlPlane, ManagedProcess, eventually, free_local_addr, workspace_binary,
};

const LEASE_DURATION: Duration = Duration::from_secs(4);
const RENEW_DEADLINE: &str = "3s";
const RETRY_PERIOD: Duration = Duration::from_millis(500);
/// Bound for starting, syncing and deciding.
const OPERATOR_TIMEOUT: Duration = Duration::from_secs(60);

fn start(kubeconfig: &Path, ns: &str, identity: &str) -> ManagedProcess {
    let addr = free_local_addr();
    let args: Vec<String> = [
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "--metrics-addr",
        &addr.to_string(),
        "--debounce-ms",
        "100",
        "--leader-elect",
        "--leader-election-namespace",
        ns,
        "--leader-election-identity",
        identity,
        "--leader-election-lease-duration",
        &format!("{}s", LEASE_DURATION.as_secs()),
        "--leader-election-renew-deadline",
        RENEW_DEADLINE,
        "--leader-election-retry-period",
        &format!("{}ms", RETRY_PERIOD.as_millis()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ManagedProcess::start(
        identity,
        &workspace_binary("trunkline-operator", "trunkline-operator"),
        &args,
        &[("RUST_LOG", "info,trunkline_operator=debug")],
        addr,
    )
}

fn leads(operator: &ManagedProcess) -> bool {
    operator.metric("trunkline_operator_leader") == Some(1.0)
}

fn writes(operator: &ManagedProcess) -> f64 {
    operator
        .metric("trunkline_operator_status_writes_total{kind=\"VirtualNetwork\"}")
        .unwrap_or(0.0)
}

/// Waits until `operator` has counted a status write (the counter moves
/// just after the write lands).
async fn wait_writes(operator: &ManagedProcess, what: &str) {
    eventually(what, Duration::from_secs(10), || async {
        if writes(operator) >= 1.0 {
            Ok(())
        } else {
            Err("no status write counted".to_owned())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

async fn holder(client: &Client, ns: &str) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt("trunkline-operator")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Applies network `name` and waits until its status says Accepted at its
/// current generation.
async fn network_accepted(client: &Client, ns: &str, name: &str, cidr: &str) {
    let api: Api<VirtualNetwork> = Api::namespaced(client.clone(), ns);
    api.patch(
        name,
        &PatchParams::apply("e2e-leader").force(),
        &Patch::Apply(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": { "name": name }, "spec": { "subnets": [{ "cidr": cidr }] },
        })),
    )
    .await
    .unwrap_or_else(|e| panic!("network {name}: {e}"));
    eventually(
        &format!("network {name} accepted"),
        OPERATOR_TIMEOUT,
        || async {
            let n = api.get(name).await.map_err(|e| e.to_string())?;
            let ok = n.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Accepted"
                        && c.status == "True"
                        && c.observed_generation == n.metadata.generation
                })
            });
            if ok {
                Ok(())
            } else {
                Err(format!("{:?}", n.status))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Waits until exactly `leader` leads among `all`, and returns how long it took.
async fn wait_leader(
    client: &Client,
    ns: &str,
    leader: (&str, &ManagedProcess),
    all: &[&ManagedProcess],
    timeout: Duration,
) -> Duration {
    let started = Instant::now();
    eventually(&format!("{} leading alone", leader.0), timeout, || async {
        let count = all.iter().filter(|o| leads(o)).count();
        let holder = holder(client, ns).await;
        if leads(leader.1) && count == 1 && holder.as_deref() == Some(leader.0) {
            Ok(())
        } else {
            Err(format!("{count} leader(s); Lease held by {holder:?}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    started.elapsed()
}

#[tokio::test]
async fn one_leader_writes_and_a_standby_takes_over() {
    let plane = ControlPlane::shared();
    let ns = plane.namespace("leader").await.expect("namespace");
    let ns_name = ns.name().to_owned();
    let client = plane.client().await.expect("client");

    // The operator's roles, as shipped: the ClusterRole (bound by the
    // helper) and the Lease Role in this namespace.
    let kubeconfig = plane
        .kubeconfig_with_role(&ns_name, "trunkline-operator", "operator")
        .await
        .expect("operator identity");
    let role = plane
        .repo_root()
        .join("deploy/rbac/operator-leader-election.yaml");
    plane
        .kubectl_ok(&["apply", "-n", &ns_name, "-f", &role.to_string_lossy()])
        .expect("Lease Role");
    plane
        .kubectl_ok(&[
            "create",
            "rolebinding",
            "-n",
            &ns_name,
            "trunkline-operator-leader-election",
            "--role=trunkline-operator-leader-election",
            &format!("--serviceaccount={ns_name}:trunkline-operator"),
        ])
        .expect("Lease RoleBinding");

    // Two replicas: one leads.
    let a = start(&kubeconfig, &ns_name, "op-a");
    let b = start(&kubeconfig, &ns_name, "op-b");
    a.wait_ready(OPERATOR_TIMEOUT).await;
    b.wait_ready(OPERATOR_TIMEOUT).await;
    eventually("a leader", OPERATOR_TIMEOUT, || async {
        match (leads(&a), leads(&b)) {
            (true, false) | (false, true) => Ok(()),
            other => Err(format!("leading (a, b): {other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let (mut leader, mut standby, leader_id, standby_id) = if leads(&a) {
        (a, b, "op-a", "op-b")
    } else {
        (b, a, "op-b", "op-a")
    };
    assert_eq!(holder(&client, &ns_name).await.as_deref(), Some(leader_id));

    // Only the leader writes.
    network_accepted(&client, &ns_name, "net1", "10.30.1.0/24").await;
    wait_writes(&leader, "the leader wrote net1's status").await;
    assert_eq!(writes(&standby), 0.0, "the standby wrote nothing");
    assert!(leads(&leader) && !leads(&standby));

    // SIGTERM: the leader releases the Lease; the standby takes over within
    // a retry period or two, far less than the lease duration.
    leader.stop(Duration::from_secs(15));
    let took = wait_leader(
        &client,
        &ns_name,
        (standby_id, &standby),
        &[&standby],
        LEASE_DURATION,
    )
    .await;
    eprintln!("takeover after SIGTERM (Lease released): {took:?}");
    network_accepted(&client, &ns_name, "net2", "10.30.2.0/24").await;
    wait_writes(&standby, "the new leader writes").await;

    // A third replica joins as standby; SIGKILL the leader (no release):
    // the newcomer takes over once the Lease has gone unrenewed for the
    // lease duration (plus a retry period, and slack for a loaded machine).
    let mut c = start(&kubeconfig, &ns_name, "op-c");
    c.wait_ready(OPERATOR_TIMEOUT).await;
    // Standing by is the newcomer's decision, not its not having tried yet:
    // it has found the Lease held (its log says so) ...
    eventually("op-c found the Lease held", OPERATOR_TIMEOUT, || async {
        let log = std::fs::read_to_string(c.log()).unwrap_or_default();
        if log.contains("the lease is held by another candidate") {
            Ok(())
        } else {
            Err("no attempt logged yet".to_owned())
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; log: {}", c.log().display()));
    assert!(!leads(&c), "the newcomer stands by");
    // ... and a change made while it stands by is written by the leader
    // alone.
    let leader_writes = writes(&standby);
    network_accepted(&client, &ns_name, "net2b", "10.30.4.0/24").await;
    eventually(
        "the leader wrote net2b's status",
        OPERATOR_TIMEOUT,
        || async {
            if writes(&standby) > leader_writes {
                Ok(())
            } else {
                Err("not counted yet".to_owned())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!leads(&c), "the newcomer still stands by");
    assert_eq!(writes(&c), 0.0, "the newcomer wrote nothing");
    standby.kill();
    let took = wait_leader(
        &client,
        &ns_name,
        ("op-c", &c),
        &[&c],
        LEASE_DURATION + RETRY_PERIOD * 2 + Duration::from_secs(5),
    )
    .await;
    eprintln!("takeover after SIGKILL (Lease expired): {took:?}");
    assert!(
        took >= LEASE_DURATION - RETRY_PERIOD * 2,
        "a Lease renewed {took:?} ago was taken before it expired"
    );
    network_accepted(&client, &ns_name, "net3", "10.30.3.0/24").await;
    wait_writes(&c, "the third leader writes").await;
    let lease = Api::<Lease>::namespaced(client.clone(), &ns_name)
        .get("trunkline-operator")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(lease.lease_transitions, Some(2), "a→b→c (or b→a→c)");
    assert_eq!(lease.lease_duration_seconds, Some(4));

    c.stop(Duration::from_secs(15));
    ns.finish(Ok::<(), String>(())).unwrap();
}
