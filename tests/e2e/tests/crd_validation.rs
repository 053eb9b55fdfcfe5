//! The trunkline CRDs on a real kube-apiserver: they install and are
//! documented (`kubectl explain`, the `trunkline` category), every
//! validation sample of `operator/api/testdata/validation` is accepted or
//! refused by the server itself with the expected message, status is a
//! separate subresource of our kinds, and every example set of
//! `deploy/examples` applies.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use trunkline_api::samples::{self, Case, KindCases};
use trunkline_test_support::{ControlPlane, eventually, unique_name};

struct Kind {
    resource: ApiResource,
    namespaced: bool,
}

fn kind(name: &str) -> Kind {
    let crd = trunkline_api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == name)
        .unwrap_or_else(|| panic!("no CRD for {name}"));
    let gvk = GroupVersionKind::gvk(&crd.spec.group, &crd.spec.versions[0].name, name);
    Kind {
        resource: ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural),
        namespaced: crd.spec.scope == "Namespaced",
    }
}

fn api(client: &Client, kind: &Kind, ns: &str) -> Api<DynamicObject> {
    if kind.namespaced {
        Api::namespaced_with(client.clone(), ns, &kind.resource)
    } else {
        Api::all_with(client.clone(), &kind.resource)
    }
}

/// The case's object with a name of its own (and the test's namespace).
fn prepare(object: &Value, case: &Case, kind: &Kind, ns: &str) -> DynamicObject {
    let mut object = object.clone();
    object["metadata"] = json!({ "name": unique_name(&case.name[..case.name.len().min(30)]) });
    if kind.namespaced {
        object["metadata"]["namespace"] = json!(ns);
    }
    serde_json::from_value(object).expect("a sample is a Kubernetes object")
}

/// Creates `object`, then writes its `status` (if the case has one) through
/// the status subresource, which a create ignores: a transition rule that
/// reads `oldSelf.status` needs it stored.
async fn create(
    api: &Api<DynamicObject>,
    object: &DynamicObject,
) -> Result<DynamicObject, kube::Error> {
    let created = api.create(&PostParams::default(), object).await?;
    match object.data.get("status") {
        Some(status) => {
            let name = object.metadata.name.clone().unwrap_or_default();
            let patch = json!({ "status": status });
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
        None => Ok(created),
    }
}

fn refusal(result: Result<DynamicObject, kube::Error>) -> Result<String, String> {
    match result {
        Ok(_) => Err("accepted".to_owned()),
        Err(kube::Error::Api(status)) if status.code == 422 => Ok(status.message.clone()),
        Err(other) => Err(format!("refused, but not as invalid (422): {other}")),
    }
}

async fn run_cases(kind_name: &str) {
    let plane = ControlPlane::shared();
    let ns = plane
        .namespace("crd-validation")
        .await
        .expect("test namespace");
    let client = plane.client().await.expect("client");
    let cases: KindCases = samples::all()
        .into_iter()
        .find(|k| k.kind == kind_name)
        .expect("sample file of the kind");
    let kind = kind(kind_name);
    let api = api(&client, &kind, ns.name());
    let mut failures = Vec::new();
    let mut created = Vec::new();

    for case in &cases.valid {
        let object = prepare(&case.object(&cases.base), case, &kind, ns.name());
        let name = object.metadata.name.clone().expect("named");
        if let Err(e) = create(&api, &object).await {
            failures.push(format!(
                "{}: valid sample refused on create: {e}",
                case.name
            ));
            continue;
        }
        created.push(name.clone());
        if let Some(update) = &case.update {
            let patched = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(update))
                .await;
            if let Err(e) = patched {
                failures.push(format!("{}: valid update refused: {e}", case.name));
            }
        }
    }

    for case in &cases.invalid {
        let object = prepare(&case.object(&cases.base), case, &kind, ns.name());
        let name = object.metadata.name.clone().expect("named");
        let created_result = create(&api, &object).await;
        let outcome = match &case.update {
            None => refusal(created_result),
            Some(update) => match created_result {
                Err(e) => Err(format!("the object before the update was refused: {e}")),
                Ok(_) => {
                    created.push(name.clone());
                    let patched = api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(update))
                        .await;
                    refusal(patched)
                }
            },
        };
        match outcome {
            Err(what) => {
                if what == "accepted" && case.update.is_none() {
                    created.push(name);
                }
                failures.push(format!("{}: invalid sample {what}", case.name));
            }
            Ok(message) => {
                for expected in &case.expect {
                    if !message.contains(expected.as_str()) {
                        failures.push(format!(
                            "{}: the refusal does not contain {expected:?}: {message}",
                            case.name
                        ));
                    }
                }
            }
        }
    }

    if !kind.namespaced {
        for name in created {
            let _ = api.delete(&name, &DeleteParams::default()).await;
        }
    }
    assert!(
        failures.is_empty(),
        "{kind_name}: {} of {} samples behave differently on the API server:\n{}",
        failures.len(),
        cases.valid.len() + cases.invalid.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn physical_router_samples_on_the_api_server() {
    run_cases("PhysicalRouter").await;
}

#[tokio::test]
async fn logical_interface_samples_on_the_api_server() {
    run_cases("LogicalInterface").await;
}

#[tokio::test]
async fn virtual_machine_interface_samples_on_the_api_server() {
    run_cases("VirtualMachineInterface").await;
}

#[tokio::test]
async fn virtual_network_samples_on_the_api_server() {
    run_cases("VirtualNetwork").await;
}

#[tokio::test]
async fn gateway_ha_group_samples_on_the_api_server() {
    run_cases("GatewayHAGroup").await;
}

#[tokio::test]
async fn virtual_gateway_samples_on_the_api_server() {
    run_cases("VirtualGateway").await;
}

#[tokio::test]
async fn external_vtep_samples_on_the_api_server() {
    run_cases("ExternalVTEP").await;
}

#[tokio::test]
async fn dc_gateway_samples_on_the_api_server() {
    run_cases("DCGateway").await;
}

#[tokio::test]
async fn bgp_peer_samples_on_the_api_server() {
    run_cases("BGPPeer").await;
}

#[tokio::test]
async fn packet_trace_samples_on_the_api_server() {
    run_cases("PacketTrace").await;
}

#[tokio::test]
async fn security_group_samples_on_the_api_server() {
    run_cases("SecurityGroup").await;
}

#[tokio::test]
async fn virtual_network_policy_samples_on_the_api_server() {
    run_cases("VirtualNetworkPolicy").await;
}

#[tokio::test]
async fn cluster_virtual_network_policy_samples_on_the_api_server() {
    run_cases("ClusterVirtualNetworkPolicy").await;
}

/// `kubectl explain` shows the descriptions of our fields, the category
/// lists every kind, and short names resolve.
#[tokio::test]
async fn crds_are_installed_and_documented() {
    let plane = ControlPlane::shared();
    // The API server publishes a new CRD's OpenAPI schema (what `kubectl
    // explain` reads) shortly after the CRD is Established.
    let explained = eventually(
        "OpenAPI of the CRDs published",
        Duration::from_secs(60),
        || async { plane.kubectl_ok(&["explain", "logicalinterfaces.spec.vlan"]) },
    )
    .await
    .expect("kubectl explain");
    assert!(
        explained.contains("802.1Q VLAN id, 0 to 4094"),
        "{explained}"
    );
    for (resource, text) in [
        (
            "physicalrouters.spec.physicalInterfaces",
            "carry VLAN-tagged traffic",
        ),
        (
            "virtualmachineinterfaces.spec.macAddress",
            "MAC address of the remote instance",
        ),
        (
            "virtualnetworks.spec.routingInstance",
            "domain:project:network:network",
        ),
        ("gatewayhagroups.spec.bpduNetwork", "floods BPDUs"),
        ("virtualgateways.spec.subnets", "prefix length 1 to 31"),
        ("externalvteps.spec.networks", "each at most once"),
        ("dcgateways.spec.networks.routes.label", "16 to 1048575"),
        ("bgppeers.spec.peerASN", "PeerASMismatch"),
        (
            "virtualnetworks.spec.l3vpn.exportRouteTargets",
            "once Programmed",
        ),
        (
            "virtualnetworks.spec.northSouth.snat",
            "Distributed source NAT",
        ),
        ("logicalinterface", "bound to the VirtualMachineInterface"),
        ("packettraces.spec.mode", "one described packet"),
    ] {
        let out = plane
            .kubectl_ok(&["explain", resource])
            .expect("kubectl explain");
        // kubectl wraps descriptions: compare with whitespace folded.
        let folded = out.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(folded.contains(text), "kubectl explain {resource}: {out}");
    }
    let resources = plane
        .kubectl_ok(&["api-resources", "--categories=trunkline", "-o", "name"])
        .expect("api-resources");
    let mut listed: Vec<&str> = resources.lines().collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            "bgppeers.trunkline.io",
            "clustervirtualnetworkpolicies.trunkline.io",
            "dcgateways.trunkline.io",
            "externalvteps.trunkline.io",
            "gatewayhagroups.trunkline.io",
            "logicalinterfaces.trunkline.io",
            "packettraces.trunkline.io",
            "physicalrouters.trunkline.io",
            "securitygroups.trunkline.io",
            "virtualgateways.trunkline.io",
            "virtualmachineinterfaces.trunkline.io",
            "virtualnetworkpolicies.trunkline.io",
            "virtualnetworks.trunkline.io",
        ]
    );
    for short in [
        "pr", "li", "tlvmi", "vn", "gwha", "vgw", "xvtep", "dcgw", "bgpp", "ptr", "tlsg", "vnp",
        "cvnp",
    ] {
        plane
            .kubectl_ok(&["get", short, "-A"])
            .expect("short name resolves");
    }
}

/// A spec update leaves status alone and a status update leaves spec alone,
/// on our own kind.
#[tokio::test]
async fn status_is_a_subresource_of_our_kinds() {
    let plane = ControlPlane::shared();
    let client = plane.client().await.expect("client");
    let kind = kind("LogicalInterface");
    let api = api(&client, &kind, "");
    let cases = samples::all()
        .into_iter()
        .find(|k| k.kind == "LogicalInterface")
        .expect("samples");
    let name = unique_name("li-status");
    let mut object = cases.base.clone();
    object["metadata"] = json!({ "name": name });
    object["status"] = json!({ "observedGeneration": 42 });
    let object: DynamicObject = serde_json::from_value(object).expect("object");
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .expect("create");
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create: {:?}",
        created.data
    );

    let condition = json!({
        "type": "Ready", "status": "False", "reason": "Pending",
        "message": "waiting for the node dataplane", "lastTransitionTime": "2026-01-01T00:00:00Z"
    });
    let status = json!({ "status": { "observedGeneration": 1, "conditions": [condition] } });
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status patch");
    let spec_change = json!({ "spec": { "type": "L3" }, "status": { "observedGeneration": 7 } });
    let after_spec = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&spec_change))
        .await
        .expect("spec patch");
    assert_eq!(after_spec.data["spec"]["type"], "L3");
    assert_eq!(
        after_spec.data["status"]["observedGeneration"], 1,
        "spec update left status alone"
    );
    assert_eq!(after_spec.metadata.generation, Some(2));

    let status_change = json!({ "spec": { "type": "L2" }, "status": { "observedGeneration": 2 } });
    let after_status = api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&status_change),
        )
        .await
        .expect("status patch");
    assert_eq!(
        after_status.data["spec"]["type"], "L3",
        "status update left spec alone"
    );
    assert_eq!(after_status.data["status"]["observedGeneration"], 2);
    assert_eq!(
        after_status.metadata.generation,
        Some(2),
        "a status write does not bump generation"
    );
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
}

/// Every example set applies to a real API server with `kubectl apply -k`,
/// and is listed by `kubectl get trunkline`.
#[tokio::test]
async fn every_example_set_applies() {
    let plane = ControlPlane::shared();
    let client = plane.client().await.expect("client");
    let dir = plane.repo_root().join("deploy/examples");
    // The example sets share fixed names (gw-node-1, namespace admin): apply
    // them one at a time, removing each before the next.
    for set in [
        "gateway-mode",
        "gateway-ha",
        "gateway-ha-fast",
        "virtual-gateway",
        "overlay",
        "north-south",
        "l3vpn",
        "network-policies",
        "cross-tenant-policy",
        "security-groups",
    ] {
        let path = dir.join(set);
        let path = path.to_str().expect("utf-8 path");
        let applied = plane
            .kubectl_ok(&["apply", "-k", path])
            .expect("kubectl apply -k");
        assert!(
            applied.contains("created") || applied.contains("configured"),
            "{applied}"
        );
        let listed = plane
            .kubectl_ok(&["get", "trunkline", "-A", "-o", "name"])
            .expect("get trunkline");
        for line in applied.lines().filter(|l| l.contains(".trunkline.io/")) {
            let object = line
                .split_whitespace()
                .next()
                .expect("kubectl names the object");
            assert!(
                listed.lines().any(|l| l == object),
                "{set}: {object} not listed in {listed}"
            );
        }
        plane
            .kubectl_ok(&["delete", "-k", path, "--wait=false"])
            .expect("kubectl delete -k");
        // Wait until the namespaces are really gone before the next set
        // declares them again (the namespace controller finalizes them).
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        eventually(
            &format!("{set}: namespaces deleted"),
            Duration::from_secs(60),
            || {
                let namespaces = namespaces.clone();
                async move {
                    for ns in ["admin", "infra"] {
                        if namespaces
                            .get_opt(ns)
                            .await
                            .map_err(|e| e.to_string())?
                            .is_some()
                        {
                            return Err(format!("namespace {ns} still exists"));
                        }
                    }
                    Ok::<(), String>(())
                }
            },
        )
        .await
        .expect("namespaces of the example removed");
    }
}

/// RBAC on our kinds: an identity that may read logical interfaces and
/// update only PhysicalRouter status (what a node dataplane needs) can do
/// exactly that and is denied everything else.
#[tokio::test]
async fn a_narrow_role_on_our_kinds_is_enforced() {
    use trunkline_test_support::status_code;
    let plane = ControlPlane::shared();
    let ns = plane.namespace("narrow-role").await.expect("namespace");
    let admin = plane.client().await.expect("admin client");
    let role = unique_name("narrow");
    let manifest = format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {role}}}
rules:
- apiGroups: [trunkline.io]
  resources: [logicalinterfaces]
  verbs: [get, list, watch]
- apiGroups: [trunkline.io]
  resources: [physicalrouters/status]
  verbs: [get, update, patch]
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: agent, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {role}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}
subjects:
- {{kind: ServiceAccount, name: agent, namespace: {ns}}}
"#,
        ns = ns.name()
    );
    let out = plane.kubectl_with_stdin(&["apply", "-f", "-"], manifest.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Objects to act on, created by the administrator.
    let li_kind = kind("LogicalInterface");
    let pr_kind = kind("PhysicalRouter");
    let samples = samples::all();
    let base = |k: &str| {
        samples
            .iter()
            .find(|c| c.kind == k)
            .expect("samples")
            .base
            .clone()
    };
    let li_name = unique_name("li-rbac");
    let pr_name = unique_name("pr-rbac");
    let mut li = base("LogicalInterface");
    li["metadata"] = json!({ "name": li_name });
    let mut pr = base("PhysicalRouter");
    pr["metadata"] = json!({ "name": pr_name });
    let li: DynamicObject = serde_json::from_value(li).expect("li");
    let pr: DynamicObject = serde_json::from_value(pr).expect("pr");
    api(&admin, &li_kind, "")
        .create(&PostParams::default(), &li)
        .await
        .expect("create li");
    api(&admin, &pr_kind, "")
        .create(&PostParams::default(), &pr)
        .await
        .expect("create pr");

    let agent = plane
        .client_for_service_account(ns.name(), "agent")
        .await
        .expect("token client");
    let lis = api(&agent, &li_kind, "");
    let prs = api(&agent, &pr_kind, "");
    lis.list(&Default::default())
        .await
        .expect("may list logical interfaces");
    lis.get(&li_name)
        .await
        .expect("may get a logical interface");
    let status = json!({ "status": { "backend": "AF_XDP" } });
    prs.patch_status(&pr_name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("may patch PhysicalRouter status");

    let denied = |what: &str, result: Result<DynamicObject, kube::Error>| match result {
        Err(ref e) if status_code(e) == Some(403) => None,
        other => Some(format!(
            "{what}: expected 403, got {:?}",
            other.map(|o| o.metadata.name)
        )),
    };
    let spec = json!({ "spec": { "type": "L3" } });
    let failures: Vec<String> = [
        denied(
            "create a logical interface",
            lis.create(&PostParams::default(), &li).await,
        ),
        denied(
            "patch a logical interface",
            lis.patch(&li_name, &PatchParams::default(), &Patch::Merge(&spec))
                .await,
        ),
        denied(
            "patch logical interface status",
            lis.patch_status(&li_name, &PatchParams::default(), &Patch::Merge(&status))
                .await,
        ),
        denied("get a physical router", prs.get(&pr_name).await),
        denied(
            "patch a physical router's spec",
            prs.patch(
                &pr_name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"interfaceLimit": 10}})),
            )
            .await,
        ),
        denied(
            "create a physical router",
            prs.create(&PostParams::default(), &pr).await,
        ),
        denied(
            "read a virtual network",
            api(&agent, &kind("VirtualNetwork"), ns.name())
                .get("net1")
                .await,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    let deleted = lis.delete(&li_name, &DeleteParams::default()).await;
    let delete_denied = matches!(deleted, Err(ref e) if status_code(e) == Some(403));

    api(&admin, &li_kind, "")
        .delete(&li_name, &DeleteParams::default())
        .await
        .expect("cleanup li");
    api(&admin, &pr_kind, "")
        .delete(&pr_name, &DeleteParams::default())
        .await
        .expect("cleanup pr");
    let _ = plane.kubectl(&["delete", "clusterrole,clusterrolebinding", &role]);
    assert!(
        delete_denied,
        "deleting a logical interface must be denied: {:?}",
        deleted.err()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}
