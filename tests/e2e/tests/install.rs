//! The three install paths against a real API server: the Helm chart
//! (template accepted by the server, install, upgrade, uninstall), the
//! kustomize base (applied, then no drift once the operator has reconciled),
//! and the identities both give the processes: the operator, the node
//! dataplane and the BGP speaker run as local processes with tokens of the installed
//! ServiceAccounts, do their work, and are refused everything else; each
//! node's dataplane may write its own PhysicalRouter's status only (the
//! ValidatingAdmissionPolicy, keyed on the node a Pod-bound token names).
//!
//! Pods never run on this rig (no kubelet): the Deployment and DaemonSet
//! are stored and checked by the API server; their processes are started by
//! the test with the args the chart renders.
//!
//! ```text
//!  helm install rel ──> ServiceAccounts, roles, policy, Deployment, DaemonSet (stored)
//!  Pod "dp-<node>" (nodeName <node>, SA rel-trunkline-dataplane) ──TokenRequest(bound)──┐
//!  trunkline-dataplane --node <node> --kubeconfig <that token> ─────────────────────────┘
//!  trunkline-operator --leader-elect ... --kubeconfig <token of rel-trunkline-operator>
//! ```

mod deploy_support;

use std::path::Path;
use std::time::Duration;

use deploy_support::{
    BASE, CHART, args_of, container, k8s_version, object, render_chart, yaml_docs,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use trunkline_api::{LogicalInterface, PhysicalRouter, VirtualMachineInterface, VirtualNetwork};
use trunkline_test_support::{
    ControlPlane, ManagedProcess, child_named, client_from_kubeconfig, eventually, free_local_addr,
    http_get, unique_name, workspace_binary,
};

/// Bound for anything a process does after a change.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound for the API server's own work (deletions, caches).
const API_TIMEOUT: Duration = Duration::from_secs(30);

fn apply_params() -> PatchParams {
    PatchParams::apply("e2e-install").force()
}

/// A release name unique to one test: cluster-scoped names derive from it.
fn release(prefix: &str) -> String {
    unique_name(prefix)
}

/// `helm install <release> charts/trunkline -n <ns> <extra...>`, stdout.
fn helm_install(plane: &ControlPlane, release: &str, ns: &str, extra: &[&str]) -> String {
    let mut args = vec!["install", release, CHART, "--namespace", ns];
    args.extend_from_slice(extra);
    plane
        .helm_ok(&args)
        .unwrap_or_else(|e| panic!("helm install: {e}"))
}

fn helm_uninstall(plane: &ControlPlane, release: &str, ns: &str) {
    plane
        .helm_ok(&["uninstall", release, "--namespace", ns])
        .unwrap_or_else(|e| panic!("helm uninstall: {e}"));
}

/// The chart's rendering for `release` in `ns` (what `helm install` applied).
fn rendered(release: &str, ns: &str) -> Vec<Value> {
    yaml_docs(&render_chart(release, ns, &[]))
}

/// `args` with `--metrics-addr=...` pointed at `addr`, plus `extra`.
fn local_args(args: Vec<String>, addr: std::net::SocketAddr, extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = args
        .into_iter()
        .map(|a| {
            if a.starts_with("--metrics-addr=") {
                format!("--metrics-addr={addr}")
            } else {
                a
            }
        })
        .collect();
    args.extend_from_slice(extra);
    args
}

/// The operator binary with the args of `deployment` (a rendered
/// Deployment), as Pod `pod` of namespace `ns` would run it.
fn start_operator(deployment: &Value, kubeconfig: &Path, ns: &str, pod: &str) -> ManagedProcess {
    let addr = free_local_addr();
    let args = local_args(
        args_of(container(deployment)),
        addr,
        &["--kubeconfig".into(), kubeconfig.display().to_string()],
    );
    assert!(args.iter().any(|a| a == "--leader-elect"), "{args:?}");
    ManagedProcess::start(
        "operator",
        &workspace_binary("trunkline-operator", "trunkline-operator"),
        &args,
        &[
            ("RUST_LOG", "info,trunkline_operator=debug"),
            ("POD_NAME", pod),
            ("POD_NAMESPACE", ns),
        ],
        addr,
    )
}

/// The node dataplane with the args of `daemonset`, on node `node`, as
/// its pod in namespace `ns` would run it.
fn start_dataplane(daemonset: &Value, kubeconfig: &Path, node: &str, ns: &str) -> ManagedProcess {
    let addr = free_local_addr();
    let args = local_args(
        args_of(container(daemonset)),
        addr,
        &["--kubeconfig".into(), kubeconfig.display().to_string()],
    );
    ManagedProcess::start(
        "dataplane",
        &workspace_binary("trunkline-dataplane", "trunkline-dataplane"),
        &args,
        &[
            ("RUST_LOG", "info,trunkline_dataplane=debug"),
            ("NODE_NAME", node),
            ("POD_NAMESPACE", ns),
        ],
        addr,
    )
}

fn leases_of(client: &Client, ns: &str) -> Api<Lease> {
    Api::namespaced(client.clone(), ns)
}

/// gobgpd as `scripts/build-gobgp.sh` builds it (cached by version).
fn gobgpd() -> std::path::PathBuf {
    trunkline_test_support::gobgpd().expect("gobgpd from scripts/build-gobgp.sh")
}

/// The BGP speaker with the command and args of `deployment`, as Pod `pod`
/// of namespace `ns` would run it; the image's gobgpd and socket directory
/// replaced by this machine's (the router ID the pod's address would give).
fn start_bgp(deployment: &Value, kubeconfig: &Path, ns: &str, pod: &str) -> ManagedProcess {
    let c = container(deployment);
    assert_eq!(c["command"], json!(["/usr/local/bin/trunkline-bgp"]));
    let socket = std::env::temp_dir().join(format!("{}.sock", unique_name("gobgpd")));
    let addr = free_local_addr();
    let mut args: Vec<String> = args_of(c)
        .into_iter()
        .map(|a| {
            if a.starts_with("--gobgpd=") {
                format!("--gobgpd={}", gobgpd().display())
            } else if a.starts_with("--api-socket=") {
                format!("--api-socket={}", socket.display())
            } else if a.starts_with("--health-addr=") {
                // The probes' port on loopback (several tests at once).
                format!("--health-addr={addr}")
            } else {
                a
            }
        })
        .collect();
    assert!(
        args.iter().any(|a| a.starts_with("--health-addr=")),
        "{args:?}"
    );
    args.extend(["--kubeconfig".into(), kubeconfig.display().to_string()]);
    assert!(args.iter().any(|a| a == "--leader-elect"), "{args:?}");
    ManagedProcess::start(
        "bgp",
        &workspace_binary("trunkline-bgp", "trunkline-bgp"),
        &args,
        &[
            ("RUST_LOG", "info,trunkline_bgp=debug"),
            ("POD_NAME", pod),
            ("POD_NAMESPACE", ns),
            ("TRUNKLINE_BGP_ROUTER_ID", "192.0.2.1"),
        ],
        addr,
    )
}

/// The pid of the `gobgpd` child of process `pid`.
fn gobgpd_child(pid: u32) -> Option<u32> {
    child_named(pid, "gobgpd")
}

/// A DaemonSet pod as the controller and scheduler would leave it: bound
/// to `node`, running as `account`. Stored only; it never runs.
async fn dataplane_pod(client: &Client, ns: &str, account: &str, node: &str) -> String {
    let name = format!("dp-{node}");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": ns },
        "spec": {
            "nodeName": node,
            "serviceAccountName": account,
            "containers": [{ "name": "dataplane", "image": "trunkline-dataplane:test" }],
        },
    }))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("pod {name}: {e}"));
    name
}

async fn apply_router(client: &Client, name: &str) {
    let router = json!({
        "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
        "metadata": { "name": name }, "spec": {},
    });
    Api::<PhysicalRouter>::all(client.clone())
        .patch(name, &apply_params(), &Patch::Apply(&router))
        .await
        .unwrap_or_else(|e| panic!("PhysicalRouter {name}: {e}"));
}

/// A network and a VMI in `ns`: what the operator accepts on its own.
async fn apply_tenant_objects(client: &Client, ns: &str) {
    let networks: Api<VirtualNetwork> = Api::namespaced(client.clone(), ns);
    networks
        .patch(
            "net1",
            &apply_params(),
            &Patch::Apply(json!({
                "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
                "metadata": { "name": "net1" },
                "spec": { "subnets": [{ "cidr": "10.20.0.0/24" }] },
            })),
        )
        .await
        .expect("network");
    let vmis: Api<VirtualMachineInterface> = Api::namespaced(client.clone(), ns);
    vmis.patch(
        "vmi1",
        &apply_params(),
        &Patch::Apply(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": { "name": "vmi1" },
            "spec": { "virtualNetwork": "net1", "macAddress": "02:00:00:00:20:01",
                      "ips": [{ "address": "10.20.0.10" }] },
        })),
    )
    .await
    .expect("vmi");
}

/// Waits until the operator has accepted the tenant objects of `ns`.
async fn wait_accepted(client: &Client, ns: &str) {
    let networks: Api<VirtualNetwork> = Api::namespaced(client.clone(), ns);
    let vmis: Api<VirtualMachineInterface> = Api::namespaced(client.clone(), ns);
    eventually(
        "net1 and vmi1 accepted by the operator",
        PROCESS_TIMEOUT,
        || async {
            let n = networks.get("net1").await.map_err(|e| e.to_string())?;
            let v = vmis.get("vmi1").await.map_err(|e| e.to_string())?;
            let accepted =
                |conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
                    conditions
                        .iter()
                        .any(|c| c.type_ == "Accepted" && c.status == "True")
                };
            let n_ok = n.status.as_ref().is_some_and(|s| accepted(&s.conditions));
            let v_ok = v.status.as_ref().is_some_and(|s| accepted(&s.conditions));
            if n_ok && v_ok {
                Ok(())
            } else {
                Err(format!("network: {:?}; vmi: {:?}", n.status, v.status))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Waits until the dataplane of `node` has written its router's status
/// (Ready=True at generation 1, under its field manager).
async fn wait_router_reported(client: &Client, node: &str) {
    let routers: Api<PhysicalRouter> = Api::all(client.clone());
    eventually(
        &format!("PhysicalRouter {node} reported by its dataplane"),
        PROCESS_TIMEOUT,
        || async {
            let router = routers.get(node).await.map_err(|e| e.to_string())?;
            let ready = router.status.as_ref().and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == "Ready" && c.status == "True")
            });
            let by_dataplane = router.metadata.managed_fields.iter().flatten().any(|f| {
                f.manager.as_deref() == Some("trunkline-dataplane")
                    && f.subresource.as_deref() == Some("status")
            });
            match ready {
                Some(c) if by_dataplane && c.observed_generation == Some(1) => Ok(()),
                _ => Err(format!("{:?}", router.status)),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// A status write of PhysicalRouter `name` (server-side apply, as the agent
/// writes it).
async fn write_router_status(client: &Client, name: &str) -> Result<PhysicalRouter, kube::Error> {
    Api::<PhysicalRouter>::all(client.clone())
        .patch_status(
            name,
            &PatchParams::apply("trunkline-dataplane").force(),
            &Patch::Apply(json!({
                "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
                "status": { "backend": "AF_PACKET" },
            })),
        )
        .await
}

/// Asserts that `result` is a 403 whose message contains `text`.
fn assert_forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>, text: &str) {
    match result {
        Err(kube::Error::Api(s)) if s.code == 403 => assert!(
            s.message.contains(text),
            "{what}: refused, but the message lacks {text:?}: {}",
            s.message
        ),
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Tests

/// `helm template`, with the default values and with the options a user
/// may turn on, is accepted by the API server (server-side dry run: schema,
/// defaulting, admission), CRDs included.
#[tokio::test]
async fn the_chart_renders_what_the_api_server_accepts() {
    let plane = ControlPlane::shared();
    let ns = plane.namespace("tpl").await.expect("namespace");
    let rel = release("tpl");
    let version = k8s_version();
    for values in [
        vec![],
        vec![
            "--set",
            "dataplane.privileged=true",
            "--set",
            "operator.replicas=1",
            "--set",
            "dataplane.extraCapabilities={SYS_ADMIN}",
            "--set",
            "dataplane.seccompProfile=Unconfined",
            "--set",
            "image.registry=registry.example.com/trunkline",
        ],
        vec![
            "--set",
            "dataplane.enabled=false",
            "--set",
            "operator.leaderElection.enabled=false",
            "--set",
            "operator.replicas=1",
            "--set",
            "bgp.enabled=false",
        ],
        // The BGP speaker on the node's network, and in its pod's with the
        // BGP port (the sysctl letting a non-root gobgpd bind it).
        vec![
            "--set",
            "bgp.hostNetwork=true",
            "--set",
            "bgp.listenPort=1179",
            "--set",
            "bgp.routerID=192.0.2.1",
        ],
        vec!["--set", "bgp.listenPort=179", "--set", "bgp.replicas=3"],
    ] {
        let mut args = vec![
            "template",
            &rel,
            CHART,
            "--namespace",
            ns.name(),
            "--include-crds",
            "--kube-version",
            &version,
        ];
        args.extend_from_slice(&values);
        let manifests = plane.helm_ok(&args).expect("helm template");
        let out = plane.kubectl_with_stdin(
            &["apply", "--dry-run=server", "-f", "-"],
            manifests.as_bytes(),
        );
        assert!(
            out.status.success(),
            "the API server refused `helm template {}`:\n{}",
            values.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        let applied = String::from_utf8_lossy(&out.stdout);
        for kind in [
            "customresourcedefinition",
            "deployment.apps",
            "serviceaccount",
        ] {
            assert!(applied.contains(kind), "{kind} missing:\n{applied}");
        }
        let speaker = format!("deployment.apps/{rel}-trunkline-bgp");
        assert_eq!(
            applied.contains(&speaker),
            !values.contains(&"bgp.enabled=false"),
            "{speaker} with `{}`:\n{applied}",
            values.join(" ")
        );
    }
}

/// `helm install`, `helm upgrade` with a changed value (it lands in the
/// Deployment), `helm uninstall` (everything goes but the CRDs, which Helm
/// never deletes).
#[tokio::test]
async fn helm_install_upgrade_and_uninstall() {
    let plane = ControlPlane::shared();
    let ns = plane.namespace("helm").await.expect("namespace");
    let client = plane.client().await.expect("client");
    let rel = release("helm");
    let fullname = format!("{rel}-trunkline");

    let notes = helm_install(plane, &rel, ns.name(), &[]);
    assert!(notes.contains("STATUS: deployed"), "{notes}");
    assert!(notes.contains("kubectl label node"), "NOTES.txt: {notes}");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    let operator = format!("{fullname}-operator");
    let deployment = deployments
        .get(&operator)
        .await
        .expect("operator Deployment");
    let spec = &deployment.spec;
    assert_eq!(spec.replicas, Some(2));
    let args = spec.template.spec.as_ref().unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    assert!(args.contains(&"--leader-elect".to_owned()), "{args:?}");
    assert!(args.contains(&"--log-format=json".to_owned()), "{args:?}");
    Api::<DaemonSet>::namespaced(client.clone(), ns.name())
        .get(&format!("{fullname}-dataplane"))
        .await
        .expect("dataplane DaemonSet");

    let out = plane
        .helm_ok(&[
            "upgrade",
            &rel,
            CHART,
            "--namespace",
            ns.name(),
            "--reuse-values",
            "--set",
            "operator.replicas=3",
            "--set",
            "operator.logFormat=text",
        ])
        .expect("helm upgrade");
    assert!(out.contains("REVISION: 2"), "{out}");
    let deployment = deployments.get(&operator).await.unwrap();
    let spec = &deployment.spec;
    assert_eq!(spec.replicas, Some(3), "the upgrade's replica count landed");
    let args = spec.template.spec.as_ref().unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    assert!(args.contains(&"--log-format=text".to_owned()), "{args:?}");
    assert!(!args.contains(&"--log-format=json".to_owned()), "{args:?}");

    helm_uninstall(plane, &rel, ns.name());
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let policies: Api<kube::core::DynamicObject> = Api::all_with(
        client.clone(),
        &kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk(
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingAdmissionPolicy",
            ),
            "validatingadmissionpolicies",
        ),
    );
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), ns.name());
    eventually("the release's objects deleted", API_TIMEOUT, || async {
        let mut left = Vec::new();
        if deployments
            .get_opt(&operator)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            left.push("Deployment");
        }
        if daemonsets
            .get_opt(&format!("{fullname}-dataplane"))
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            left.push("DaemonSet");
        }
        for role in [&operator, &format!("{fullname}-dataplane")] {
            if roles
                .get_opt(role)
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                left.push("ClusterRole");
            }
        }
        if policies
            .get_opt(&format!("{fullname}-dataplane-own-node"))
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            left.push("ValidatingAdmissionPolicy");
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("still there: {left:?}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [
        "physicalrouters.trunkline.io",
        "logicalinterfaces.trunkline.io",
        "virtualmachineinterfaces.trunkline.io",
        "virtualnetworks.trunkline.io",
        "gatewayhagroups.trunkline.io",
        "virtualgateways.trunkline.io",
        "externalvteps.trunkline.io",
    ] {
        crds.get(crd)
            .await
            .unwrap_or_else(|e| panic!("{crd} is gone after helm uninstall: {e}"));
    }
    ns.finish(Ok::<(), String>(())).unwrap();
}

/// The chart's ServiceAccounts and roles, used by the real processes: the
/// operator (leader-elected, as the Deployment runs it) accepts objects and
/// holds its Lease; the dataplane of a node reports its PhysicalRouter; the
/// BGP speaker holds its Lease and runs gobgpd, and gives the Lease up on
/// SIGTERM. Everything outside their roles is refused.
#[tokio::test]
async fn the_chart_identities_run_the_processes_and_nothing_more() {
    let plane = ControlPlane::shared();
    let ns = plane.namespace("ids").await.expect("namespace");
    let client = plane.client().await.expect("client");
    let rel = release("ids");
    let fullname = format!("{rel}-trunkline");
    helm_install(plane, &rel, ns.name(), &[]);
    let docs = rendered(&rel, ns.name());

    // The operator, as a replica of the chart's Deployment.
    let operator_account = format!("{fullname}-operator");
    let operator_kubeconfig = plane
        .kubeconfig_for_service_account(ns.name(), &operator_account)
        .await
        .expect("operator token");
    let mut operator = start_operator(
        object(&docs, "Deployment", &operator_account),
        &operator_kubeconfig,
        ns.name(),
        "operator-0",
    );
    operator.wait_ready(PROCESS_TIMEOUT).await;
    apply_tenant_objects(&client, ns.name()).await;
    wait_accepted(&client, ns.name()).await;
    let lease = Api::<Lease>::namespaced(client.clone(), ns.name())
        .get("trunkline-operator")
        .await
        .expect("the operator's Lease");
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("operator-0")
    );

    // The dataplane of one node, with a token bound to its (never running) pod.
    let dataplane_account = format!("{fullname}-dataplane");
    let node = unique_name("node");
    let other = unique_name("node");
    apply_router(&client, &node).await;
    apply_router(&client, &other).await;
    let pod = dataplane_pod(&client, ns.name(), &dataplane_account, &node).await;
    let dataplane_kubeconfig = plane
        .kubeconfig_for_pod(ns.name(), &pod)
        .await
        .expect("pod-bound token");
    let mut dataplane = start_dataplane(
        object(&docs, "DaemonSet", &dataplane_account),
        &dataplane_kubeconfig,
        &node,
        ns.name(),
    );
    dataplane.wait_ready(PROCESS_TIMEOUT).await;
    wait_router_reported(&client, &node).await;

    // What the dataplane's identity may not do.
    let agent = client_from_kubeconfig(&dataplane_kubeconfig)
        .await
        .expect("dataplane client");
    let refusal = format!(
        "may write the status of PhysicalRouter {node} only, not of PhysicalRouter {other}"
    );
    eventually(
        "the policy refuses another node's status",
        API_TIMEOUT,
        || async {
            match write_router_status(&agent, &other).await {
                Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains(&refusal) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_forbidden(
        "the dataplane writes a LogicalInterface's status",
        Api::<LogicalInterface>::all(agent.clone())
            .patch_status(
                "any",
                &apply_params(),
                &Patch::Apply(json!({
                    "apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
                    "status": { "observedGeneration": 1 },
                })),
            )
            .await,
        "cannot patch resource \"logicalinterfaces/status\"",
    );
    assert_forbidden(
        "the dataplane changes its PhysicalRouter's spec",
        Api::<PhysicalRouter>::all(agent.clone())
            .patch(
                &node,
                &apply_params(),
                &Patch::Apply(json!({
                    "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
                    "spec": { "interfaceLimit": 1 },
                })),
            )
            .await,
        "cannot patch resource \"physicalrouters\"",
    );
    assert_forbidden(
        "the dataplane reads Secrets",
        Api::<Secret>::namespaced(agent.clone(), ns.name())
            .list(&ListParams::default())
            .await,
        "cannot list resource \"secrets\"",
    );

    // What the operator's identity may not do.
    let op = client_from_kubeconfig(&operator_kubeconfig)
        .await
        .expect("operator client");
    // Of a PhysicalRouter's status, only portsSummary: the admission
    // policy refuses the dataplanes' part.
    assert_forbidden(
        "the operator writes PhysicalRouter status (the dataplanes' part)",
        write_router_status(&op, &node).await,
        "the operator may write status.portsSummary of a PhysicalRouter only, not status.",
    );
    Api::<PhysicalRouter>::all(op.clone())
        .patch_status(
            &node,
            &PatchParams::apply("trunkline-operator").force(),
            &Patch::Apply(json!({
                "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
                "status": { "portsSummary": "eth9" },
            })),
        )
        .await
        .expect("the operator writes status.portsSummary");
    assert_forbidden(
        "the operator deletes a network",
        Api::<VirtualNetwork>::namespaced(op.clone(), ns.name())
            .delete("net1", &DeleteParams::default())
            .await,
        "cannot delete resource \"virtualnetworks\"",
    );
    assert_forbidden(
        "the operator reads another Lease",
        Api::<Lease>::namespaced(op.clone(), ns.name())
            .get("someone-else")
            .await,
        "cannot get resource \"leases\"",
    );
    assert_forbidden(
        "the operator creates a Lease outside its namespace",
        Api::<Lease>::namespaced(op.clone(), "default")
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": { "name": "trunkline-operator" }, "spec": {},
                }))
                .unwrap(),
            )
            .await,
        "cannot create resource \"leases\"",
    );
    assert_forbidden(
        "the operator reads Secrets",
        Api::<Secret>::namespaced(op.clone(), ns.name())
            .list(&ListParams::default())
            .await,
        "cannot list resource \"secrets\"",
    );

    // The BGP speaker, as a replica of the chart's Deployment: it takes
    // its Lease and runs gobgpd; it may not touch what it does not own.
    let bgp_account = format!("{fullname}-bgp");
    let bgp_kubeconfig = plane
        .kubeconfig_for_service_account(ns.name(), &bgp_account)
        .await
        .expect("speaker token");
    let mut bgp = start_bgp(
        object(&docs, "Deployment", &bgp_account),
        &bgp_kubeconfig,
        ns.name(),
        "bgp-0",
    );
    let leases = Api::<Lease>::namespaced(client.clone(), ns.name());
    eventually(
        "the speaker holds its Lease and runs gobgpd",
        PROCESS_TIMEOUT,
        || async {
            let holder = leases
                .get("trunkline-bgp")
                .await
                .map_err(|e| e.to_string())?
                .spec
                .and_then(|s| s.holder_identity);
            let child = bgp.pid().and_then(gobgpd_child);
            if holder.as_deref() == Some("bgp-0") && child.is_some() {
                Ok(())
            } else {
                Err(format!("holder {holder:?}, gobgpd {child:?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; log: {}", bgp.log().display()));
    // Its probes, where the chart's point them: the active replica is
    // ready once its pass applied everything to gobgpd.
    bgp.wait_ready(PROCESS_TIMEOUT).await;
    let (code, body) = http_get(&bgp.url("/readyz")).expect("/readyz");
    assert!(code == 200 && body.starts_with("active"), "{code}: {body}");
    assert_eq!(http_get(&bgp.url("/healthz")).map(|(c, _)| c), Ok(200));
    let speaker = client_from_kubeconfig(&bgp_kubeconfig)
        .await
        .expect("speaker client");
    assert_forbidden(
        "the speaker deletes a network",
        Api::<VirtualNetwork>::namespaced(speaker.clone(), ns.name())
            .delete("net1", &DeleteParams::default())
            .await,
        "cannot delete resource \"virtualnetworks\"",
    );
    assert_forbidden(
        "the speaker reads Secrets outside its namespace",
        Api::<Secret>::namespaced(speaker.clone(), "default")
            .get("any")
            .await,
        "cannot get resource \"secrets\"",
    );
    assert_forbidden(
        "the speaker reads the operator's Lease",
        leases_of(&speaker, ns.name())
            .get("trunkline-operator")
            .await,
        "cannot get resource \"leases\"",
    );
    let gobgpd = bgp.pid().and_then(gobgpd_child).expect("gobgpd runs");
    bgp.stop(Duration::from_secs(15));
    // On SIGTERM it stopped its gobgpd (gone, or a zombie nobody reaps).
    let stat = std::fs::read_to_string(format!("/proc/{gobgpd}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "gobgpd {gobgpd} outlived its speaker: {stat}"
    );
    let lease = leases.get("trunkline-bgp").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity,
        None,
        "the speaker released its Lease on stop"
    );

    dataplane.stop(Duration::from_secs(15));
    // Stopping, it read its DaemonSet with its own identity (the Role of
    // deploy/rbac/dataplane-daemonset.yaml): still there, so a restart.
    let log = std::fs::read_to_string(dataplane.log()).unwrap_or_default();
    assert!(
        log.contains("a restart: virtual gateway interfaces kept"),
        "the dataplane told a restart from an uninstall; log: {}",
        dataplane.log().display()
    );
    operator.stop(Duration::from_secs(15));
    // The operator gave its Lease up on SIGTERM.
    let lease = Api::<Lease>::namespaced(client.clone(), ns.name())
        .get("trunkline-operator")
        .await
        .unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity,
        None,
        "released on stop"
    );
    for name in [&node, &other] {
        let _ = Api::<PhysicalRouter>::all(client.clone())
            .delete(name, &DeleteParams::default())
            .await;
    }
    helm_uninstall(plane, &rel, ns.name());
    ns.finish(Ok::<(), String>(())).unwrap();
}

/// The admission policy on its own: a Pod-bound token of the chart's
/// dataplane account may write the status of its node's PhysicalRouter,
/// not another's (with the policy's message); a token naming no node may
/// write none; other identities are not concerned.
#[tokio::test]
async fn a_node_dataplane_may_write_only_its_own_physical_router_status() {
    let plane = ControlPlane::shared();
    let ns = plane.namespace("vap").await.expect("namespace");
    let client = plane.client().await.expect("client");
    let rel = release("vap");
    let account = format!("{rel}-trunkline-dataplane");
    helm_install(plane, &rel, ns.name(), &[]);
    let node_a = unique_name("node-a");
    let node_b = unique_name("node-b");
    apply_router(&client, &node_a).await;
    apply_router(&client, &node_b).await;
    let pod_a = dataplane_pod(&client, ns.name(), &account, &node_a).await;
    let on_a = client_from_kubeconfig(
        &plane
            .kubeconfig_for_pod(ns.name(), &pod_a)
            .await
            .expect("token bound to the pod on node A"),
    )
    .await
    .expect("client");

    // The API server may take a moment to see a new policy: wait for the
    // refusal first, then check that the own node's write passes.
    let policy = format!("ValidatingAdmissionPolicy '{rel}-trunkline-dataplane-own-node'");
    eventually("the policy refuses node A writing node B", API_TIMEOUT, || async {
        match write_router_status(&on_a, &node_b).await {
            Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains(&policy) => {
                assert!(
                    s.message.contains(&format!(
                        "the node dataplane of node {node_a} may write the status of PhysicalRouter {node_a} only, not of PhysicalRouter {node_b}"
                    )),
                    "{}",
                    s.message
                );
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let written = write_router_status(&on_a, &node_a)
        .await
        .expect("node A's dataplane writes node A's status");
    assert_eq!(
        written.status.unwrap().backend.as_deref(),
        Some("AF_PACKET")
    );

    // PacketTraces: node A's dataplane answers node A's questions only.
    let traces: Api<trunkline_api::PacketTrace> = Api::all(client.clone());
    let question = |node: &str| {
        serde_json::from_value::<trunkline_api::PacketTrace>(serde_json::json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "PacketTrace",
            "metadata": {"name": unique_name("ptr")},
            "spec": {"node": node, "mode": "Trace", "packet": {
                "port": "eth1", "srcMac": "02:00:00:00:01:01",
                "srcIP": "10.0.0.1", "dstIP": "10.0.0.2"}}
        }))
        .expect("a PacketTrace")
    };
    let for_a = traces
        .create(&PostParams::default(), &question(&node_a))
        .await
        .expect("a question for node A");
    let for_b = traces
        .create(&PostParams::default(), &question(&node_b))
        .await
        .expect("a question for node B");
    let answer = serde_json::json!({ "status": { "tablesVersion": 1 } });
    let answers: Api<trunkline_api::PacketTrace> = Api::all(on_a.clone());
    match answers
        .patch_status(&for_b.name_any(), &PatchParams::default(), &Patch::Merge(&answer))
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 403 => assert!(
            s.message.contains(&format!(
                "the node dataplane of node {node_a} may answer the PacketTraces of node {node_a} only, not one for node {node_b}"
            )),
            "{}",
            s.message
        ),
        other => panic!("node A answered node B's PacketTrace: {other:?}"),
    }
    answers
        .patch_status(
            &for_a.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&answer),
        )
        .await
        .expect("node A answers its own PacketTrace");
    for t in [&for_a, &for_b] {
        let _ = traces.delete(&t.name_any(), &DeleteParams::default()).await;
    }

    // The same account without a node in its token (not bound to a pod).
    let unbound = client_from_kubeconfig(
        &plane
            .kubeconfig_for_service_account(ns.name(), &account)
            .await
            .expect("unbound token"),
    )
    .await
    .expect("client");
    assert_forbidden(
        "a token naming no node",
        write_router_status(&unbound, &node_a).await,
        "credentials name no node",
    );

    // Others are not concerned: the admin writes any status.
    write_router_status(&client, &node_b)
        .await
        .expect("the admin is not restricted by the policy");

    for name in [&node_a, &node_b] {
        let _ = Api::<PhysicalRouter>::all(client.clone())
            .delete(name, &DeleteParams::default())
            .await;
    }
    helm_uninstall(plane, &rel, ns.name());
    ns.finish(Ok::<(), String>(())).unwrap();
}

/// `kubectl apply -k` of the base; the operator runs with the base's own
/// ServiceAccount and Lease Role and reconciles objects; `kubectl diff -k`
/// then shows no drift (exit 0), while a hand edit does show (exit 1).
#[tokio::test]
async fn the_kustomize_base_applies_and_does_not_drift() {
    let plane = ControlPlane::shared();
    let ns = plane.namespace("kust").await.expect("namespace");
    let client = plane.client().await.expect("client");
    let base = plane.repo_root().join(BASE);
    let base = base.to_string_lossy();
    plane
        .kubectl_ok(&["apply", "-k", &base])
        .unwrap_or_else(|e| panic!("kubectl apply -k {BASE}: {e}"));

    let docs = yaml_docs(
        &plane
            .kubectl_ok(&["kustomize", &base])
            .expect("kubectl kustomize"),
    );
    let kubeconfig = plane
        .kubeconfig_for_service_account("trunkline-system", "trunkline-operator")
        .await
        .expect("token of the base's operator account");
    let mut operator = start_operator(
        object(&docs, "Deployment", "trunkline-operator"),
        &kubeconfig,
        "trunkline-system",
        "trunkline-operator-0",
    );
    operator.wait_ready(PROCESS_TIMEOUT).await;
    apply_tenant_objects(&client, ns.name()).await;
    wait_accepted(&client, ns.name()).await;
    assert_eq!(
        operator.metric("trunkline_operator_leader"),
        Some(1.0),
        "the only replica leads"
    );

    let diff = plane.kubectl(&["diff", "-k", &base]);
    assert_eq!(
        diff.status.code(),
        Some(0),
        "kubectl diff -k {BASE} after reconciling:\n{}\n{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );

    // The check can fail: a hand edit is drift.
    plane
        .kubectl_ok(&[
            "-n",
            "trunkline-system",
            "scale",
            "deployment/trunkline-operator",
            "--replicas=5",
        ])
        .expect("scale");
    let diff = plane.kubectl(&["diff", "-k", &base]);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "a changed replica count is drift"
    );
    assert!(String::from_utf8_lossy(&diff.stdout).contains("replicas: 5"));
    plane.kubectl_ok(&["apply", "-k", &base]).expect("re-apply");
    let diff = plane.kubectl(&["diff", "-k", &base]);
    assert_eq!(diff.status.code(), Some(0), "re-applied: no drift");

    operator.stop(Duration::from_secs(15));
    ns.finish(Ok::<(), String>(())).unwrap();
}
