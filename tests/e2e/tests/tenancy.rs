//! Tenancy on a real API server: two tenants (a ServiceAccount each, bound
//! to the chart's `tenant` role in its own namespace) and a network
//! administrator (the `vni-admin` role), with the chart's tenancy admission
//! policy installed, as `helm install` would. A tenant cannot name a
//! routing instance after another tenant's project, cannot choose a VNI (the
//! operator allocates one), cannot touch the other tenant's namespace; the
//! administrator can set a VNI, and a tenant may then edit that network
//! while leaving its VNI alone. Only an administrator (the
//! `network-policy-admin` role) connects networks of different tenants
//! (a ClusterVirtualNetworkPolicy); a tenant writes its own policies.
//!
//! Its own test binary, so its own control plane: the policy applies to
//! every namespace, and the other binaries' samples use fixed routing
//! instance names.

mod deploy_support;

use std::time::Duration;

use deploy_support::render_chart;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use trunkline_api::{ClusterVirtualNetworkPolicy, VirtualNetwork, VirtualNetworkPolicy};
use trunkline_test_support::{ControlPlane, eventually};

/// Bound for the API server's caches (RBAC bindings, policies) to catch up.
const API_TIMEOUT: Duration = Duration::from_secs(60);
/// The release the policy and roles are rendered for.
const RELEASE: &str = "trunkline";

fn network(name: &str, spec: serde_json::Value) -> VirtualNetwork {
    serde_json::from_value(json!({
        "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
        "metadata": { "name": name },
        "spec": spec,
    }))
    .expect("a VirtualNetwork")
}

/// Installs the chart's tenancy template (roles, policy, binding), once per
/// control plane: both tests need it, and two concurrent `kubectl apply`s of
/// objects that do not exist yet race (the loser's create is refused with
/// AlreadyExists).
fn install_tenancy(plane: &ControlPlane) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| apply_tenancy(plane));
}

fn apply_tenancy(plane: &ControlPlane) {
    let rendered = render_chart(
        RELEASE,
        "trunkline-system",
        &["--show-only", "templates/tenancy.yaml"],
    );
    let out = plane.kubectl_with_stdin(&["apply", "-f", "-"], rendered.as_bytes());
    assert!(
        out.status.success(),
        "kubectl apply of the tenancy template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Binds ClusterRole `role` to ServiceAccount `account` of `account_ns`:
/// in namespace `scope` (a RoleBinding), or cluster-wide.
fn bind(plane: &ControlPlane, role: &str, account_ns: &str, account: &str, scope: Option<&str>) {
    let subject = format!("[{{kind: ServiceAccount, name: {account}, namespace: {account_ns}}}]");
    let role_ref = format!(
        "{{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {RELEASE}-{role}}}"
    );
    let manifest = match scope {
        Some(ns) => format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
             metadata: {{name: {account}-{role}, namespace: {ns}}}\nroleRef: {role_ref}\nsubjects: {subject}\n"
        ),
        None => format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n\
             metadata: {{name: {account_ns}-{account}-{role}}}\nroleRef: {role_ref}\nsubjects: {subject}\n"
        ),
    };
    let out = plane.kubectl_with_stdin(&["apply", "-f", "-"], manifest.as_bytes());
    assert!(
        out.status.success(),
        "binding {role}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The refusal of `result`: (HTTP code, message).
fn refusal<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(s)) => (s.code, s.message),
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

/// Creates `object` as `client` in `ns` once RBAC lets it (bindings reach
/// the authorizer's cache shortly after they are written).
async fn create_eventually(client: &Client, ns: &str, object: &VirtualNetwork) -> VirtualNetwork {
    let api: Api<VirtualNetwork> = Api::namespaced(client.clone(), ns);
    eventually(
        &format!("create VirtualNetwork {ns}/{}", object.name_any()),
        API_TIMEOUT,
        || async {
            api.create(&PostParams::default(), object)
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn tenants_cannot_claim_each_others_routing_instances_or_choose_vnis() {
    let plane = ControlPlane::shared();
    install_tenancy(plane);
    let ns_a = plane.namespace("tenant-a").await.expect("namespace");
    let ns_b = plane.namespace("tenant-b").await.expect("namespace");
    let (a, b) = (ns_a.name(), ns_b.name());
    bind(plane, "tenant", a, "tenant", Some(a));
    bind(plane, "tenant", b, "tenant", Some(b));
    // The network administrator: a tenant of b who may also choose VNIs.
    bind(plane, "tenant", b, "netadmin", Some(b));
    bind(plane, "vni-admin", b, "netadmin", None);
    let tenant_a = plane
        .client_for_service_account(a, "tenant")
        .await
        .expect("tenant a");
    let tenant_b = plane
        .client_for_service_account(b, "tenant")
        .await
        .expect("tenant b");
    let netadmin = plane
        .client_for_service_account(b, "netadmin")
        .await
        .expect("netadmin");
    let in_a: Api<VirtualNetwork> = Api::namespaced(tenant_a.clone(), a);
    let b_from_a: Api<VirtualNetwork> = Api::namespaced(tenant_a.clone(), b);
    let in_b: Api<VirtualNetwork> = Api::namespaced(tenant_b.clone(), b);

    // A tenant's own network, without VNI or routing instance: fine (once
    // the binding and the policy are in the API server's caches, which the
    // refusals below need too: this create is their positive marker).
    create_eventually(
        &tenant_a,
        a,
        &network("net1", json!({ "subnets": [{ "cidr": "10.60.0.0/24" }] })),
    )
    .await;
    let policy = eventually("the tenancy policy refuses", API_TIMEOUT, || async {
        let probe = network(
            "probe",
            json!({ "routingInstance": format!("default-domain:{b}:probe:probe") }),
        );
        match in_a.create(&PostParams::default(), &probe).await {
            Err(kube::Error::Api(s)) if s.code == 403 => Ok(s.message),
            other => Err(format!("not refused yet: {other:?}")),
        }
    })
    .await
    .expect("the policy is in force");

    // Another tenant's routing instance name: refused by the policy.
    assert!(
        policy.contains(&format!(
            "spec.routingInstance default-domain:{b}:probe:probe names project {b}, but the project part of a routing instance is the network's namespace ({a})"
        )),
        "{policy}"
    );
    // Its own project is fine, in any domain.
    in_a.create(
        &PostParams::default(),
        &network(
            "net2",
            json!({ "routingInstance": format!("my-domain:{a}:net2:net2") }),
        ),
    )
    .await
    .expect("a routing instance in the tenant's own project");

    // A VNI: refused on create and on update, with the way out.
    let (code, message) = refusal(
        "a tenant choosing a VNI",
        in_a.create(
            &PostParams::default(),
            &network("net3", json!({ "vni": 5001 })),
        )
        .await,
    );
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("setting spec.vni needs the administrator's permission")
            && message.contains("leave spec.vni unset and the operator allocates a VNI"),
        "{message}"
    );
    let (code, message) = refusal(
        "a tenant adding a VNI",
        in_a.patch(
            "net1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "vni": 5002 } })),
        )
        .await,
    );
    assert_eq!(code, 403, "{message}");
    assert!(message.contains("setting spec.vni needs"), "{message}");

    // The other tenant's namespace: RBAC says no.
    let (code, message) = refusal(
        "tenant a in tenant b's namespace",
        b_from_a
            .create(&PostParams::default(), &network("intruder", json!({})))
            .await,
    );
    assert_eq!(code, 403, "{message}");

    // The administrator may choose a VNI; the tenant may then edit the
    // network as long as the VNI stays, and cannot change it.
    create_eventually(
        &netadmin,
        b,
        &network(
            "net1",
            json!({ "subnets": [{ "cidr": "10.61.0.0/24" }], "vni": 5001 }),
        ),
    )
    .await;
    eventually(
        "tenant b edits the administrator's network",
        API_TIMEOUT,
        || async {
            in_b.patch(
                "net1",
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "floodUnknownUnicast": true } })),
            )
            .await
            .map_err(|e| e.to_string())
        },
    )
    .await
    .expect("a tenant edits its network, VNI untouched");
    let (code, message) = refusal(
        "tenant b changing the VNI",
        in_b.patch(
            "net1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "vni": 5003 } })),
        )
        .await,
    );
    assert!(code == 403 || code == 422, "{code}: {message}");
    // Nor can tenant b create a network with a VNI of its own choosing.
    let (code, message) = refusal(
        "tenant b choosing a VNI",
        in_b.create(
            &PostParams::default(),
            &network("net2", json!({ "vni": 5004 })),
        )
        .await,
    );
    assert_eq!(code, 403, "{message}");
}

/// Connecting networks of different tenants is the administrator's: a
/// tenant writes network policies in its own namespace (the tenant role)
/// but cannot create a ClusterVirtualNetworkPolicy, which an account
/// bound to the chart's `network-policy-admin` role (cluster-wide) can.
#[tokio::test]
async fn only_an_administrator_connects_networks_of_different_tenants() {
    let plane = ControlPlane::shared();
    install_tenancy(plane);
    let ns_a = plane.namespace("tenant-a").await.expect("namespace");
    let ns_b = plane.namespace("tenant-b").await.expect("namespace");
    let (a, b) = (ns_a.name(), ns_b.name());
    bind(plane, "tenant", a, "tenant", Some(a));
    bind(plane, "network-policy-admin", b, "netadmin", None);
    let tenant = plane
        .client_for_service_account(a, "tenant")
        .await
        .expect("tenant a");
    let netadmin = plane
        .client_for_service_account(b, "netadmin")
        .await
        .expect("netadmin");
    let own: VirtualNetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetworkPolicy",
        "metadata": { "name": "red-blue" },
        "spec": { "rules": [{ "action": "Allow", "source": "red", "destination": "blue" }] },
    }))
    .expect("a VirtualNetworkPolicy");
    let name = format!("{a}-to-{b}");
    let cross: ClusterVirtualNetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "trunkline.io/v1alpha1", "kind": "ClusterVirtualNetworkPolicy",
        "metadata": { "name": name },
        "spec": { "rules": [{ "action": "Allow",
                              "source": { "namespace": a, "name": "red" },
                              "destination": { "namespace": b, "name": "blue" } }] },
    }))
    .expect("a ClusterVirtualNetworkPolicy");

    // The tenant's own policy: fine, once its binding is in the
    // authorizer's cache (the positive marker for the refusal below).
    let policies: Api<VirtualNetworkPolicy> = Api::namespaced(tenant.clone(), a);
    eventually("tenant a creates its own policy", API_TIMEOUT, || async {
        policies
            .create(&PostParams::default(), &own)
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .expect("a tenant writes policies in its namespace");
    let (code, message) = refusal(
        "a tenant creating a cluster policy",
        Api::<ClusterVirtualNetworkPolicy>::all(tenant.clone())
            .create(&PostParams::default(), &cross)
            .await,
    );
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("clustervirtualnetworkpolicies"),
        "{message}"
    );

    // The administrator.
    let admin: Api<ClusterVirtualNetworkPolicy> = Api::all(netadmin.clone());
    eventually("the administrator creates it", API_TIMEOUT, || async {
        admin
            .create(&PostParams::default(), &cross)
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .expect("a network administrator connects two tenants");
    admin
        .delete(&name, &Default::default())
        .await
        .expect("and deletes it");
}
