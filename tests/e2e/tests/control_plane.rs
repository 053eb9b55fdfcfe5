//! The test rig itself, against the real API server: the version it reports,
//! the status subresource, RBAC, ownerReference garbage collection and
//! namespace deletion. The trunkline operator relies on each of these, so a
//! rig that got one wrong would make every later test meaningless.
//!
//! Only generic APIs (k8s-openapi types, `DynamicObject`) and kubectl: a small
//! CRD of our own (`widgets.test.trunkline.io`) stands in for the trunkline
//! kinds where a custom resource is needed.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ObjectMeta, Patch, PatchParams,
    PostParams, WatchParams,
};
use kube::{Api, Client};
use serde_json::json;
use trunkline_test_support::{ControlPlane, eventually, status_code, unique_name};

/// Bound for anything a controller does (GC, namespace deletion).
const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound for the API server's own caches (CRD established, RBAC informers).
const API_TIMEOUT: Duration = Duration::from_secs(20);

const WIDGET_GROUP: &str = "test.trunkline.io";

/// The namespaced test kind `Widget`: `spec.size`, a status subresource with
/// free-form status, like every trunkline kind.
fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(WIDGET_GROUP, "v1", "Widget"),
        "widgets",
    )
}

/// Installs (idempotently, by server-side apply) the Widget CRD and waits
/// until it is served. Tests in one binary share the control plane, so two
/// of them may apply it at once; apply with one field manager makes that safe.
async fn ensure_widget_crd(client: &Client) -> Result<()> {
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("widgets.{WIDGET_GROUP}") },
        "spec": {
            "group": WIDGET_GROUP,
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList" },
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "properties": { "size": { "type": "integer", "minimum": 0 } },
                        },
                        "status": {
                            "type": "object",
                            "properties": {
                                "phase": { "type": "string" },
                                "observedGeneration": { "type": "integer" },
                            },
                        },
                    },
                }},
            }],
        },
    }))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap_or_default();
    crds.patch(
        &name,
        &PatchParams::apply("trunkline-e2e").force(),
        &Patch::Apply(&crd),
    )
    .await
    .with_context(|| format!("applying CRD {name}"))?;
    eventually(
        "CRD widgets.test.trunkline.io Established",
        API_TIMEOUT,
        || async {
            let crd = crds.get(&name).await.map_err(|e| e.to_string())?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                Ok(())
            } else {
                Err("not Established yet".to_string())
            }
        },
    )
    .await?;
    // Established means the CRD is accepted; the first list proves it is served.
    let widgets: Api<DynamicObject> = Api::all_with(client.clone(), &widget_resource());
    eventually("widgets served", API_TIMEOUT, || async {
        widgets
            .list(&Default::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await?;
    Ok(())
}

fn widget(name: &str, size: i64) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": format!("{WIDGET_GROUP}/v1"),
        "kind": "Widget",
        "metadata": { "name": name },
        "spec": { "size": size },
    }))?)
}

fn configmap(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        data: Some([("key".to_string(), "value".to_string())].into()),
        ..ConfigMap::default()
    }
}

fn generation(obj: &DynamicObject) -> Option<i64> {
    obj.metadata.generation
}

/// Asserts that `result` is the API server's 403 Forbidden.
fn assert_forbidden<T: std::fmt::Debug>(what: &str, result: kube::Result<T>) -> Result<()> {
    match result {
        Err(e) if status_code(&e) == Some(403) => Ok(()),
        Err(e) => bail!("{what}: expected 403 Forbidden, got error {e}"),
        Ok(v) => bail!("{what}: expected 403 Forbidden, but it was allowed: {v:?}"),
    }
}

#[tokio::test]
async fn api_server_is_up_and_reports_the_pinned_version() -> Result<()> {
    let plane = ControlPlane::shared();
    ensure!(
        plane.server().starts_with("https://127.0.0.1:"),
        "API server must listen on loopback only, got {}",
        plane.server()
    );

    let expected = pinned_kubernetes_version(plane)?;
    let info = plane.client().await?.apiserver_version().await?;
    assert_eq!(info.git_version, expected, "GET /version: {info:?}");
    assert_eq!(
        expected, "v1.37.1",
        "scripts/versions.env and k8s-openapi's v1_37 feature must move together"
    );

    // The rig's kubectl speaks to the same server and agrees.
    let out = plane.kubectl_ok(&["get", "--raw", "/version"])?;
    let version: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(version["gitVersion"], json!(expected));
    Ok(())
}

/// `v<K8S_VERSION>` from scripts/versions.env: the version build-k8s.sh built.
fn pinned_kubernetes_version(plane: &ControlPlane) -> Result<String> {
    let path = plane.repo_root().join("scripts/versions.env");
    let env =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    env.lines()
        .find_map(|l| l.trim().strip_prefix("K8S_VERSION="))
        .map(|v| format!("v{}", v.trim()))
        .with_context(|| format!("{} sets no K8S_VERSION", path.display()))
}

#[tokio::test]
async fn status_is_a_separate_subresource() -> Result<()> {
    let plane = ControlPlane::shared();
    plane
        .in_namespace("status-sub", async |ns| {
            let client = plane.client().await?;
            ensure_widget_crd(&client).await?;
            let widgets: Api<DynamicObject> =
                Api::namespaced_with(client, ns.name(), &widget_resource());

            // Status sent with a create is dropped: only the status subresource writes it.
            let mut new = widget("w", 1)?;
            new.data["status"] = json!({ "phase": "Forged" });
            let created = widgets.create(&PostParams::default(), &new).await?;
            assert_eq!(
                created.data.get("status"),
                None,
                "status must be ignored on create"
            );
            assert_eq!(generation(&created), Some(1));

            // A status update changes status only: spec and generation stay.
            let mut with_status = created.clone();
            with_status.data["status"] = json!({ "phase": "Ready", "observedGeneration": 1 });
            with_status.data["spec"] = json!({ "size": 99 });
            let after_status = widgets
                .replace_status("w", &PostParams::default(), &with_status)
                .await?;
            assert_eq!(after_status.data["status"]["phase"], json!("Ready"));
            assert_eq!(
                after_status.data["spec"],
                json!({ "size": 1 }),
                "a status update must not change spec"
            );
            assert_eq!(
                generation(&after_status),
                Some(1),
                "a status update must not bump generation"
            );

            // A spec update changes spec only: status stays, generation goes up.
            let mut with_spec = after_status.clone();
            with_spec.data["spec"] = json!({ "size": 2 });
            with_spec.data["status"] = json!({ "phase": "Overwritten" });
            let after_spec = widgets
                .replace("w", &PostParams::default(), &with_spec)
                .await?;
            assert_eq!(after_spec.data["spec"], json!({ "size": 2 }));
            assert_eq!(
                after_spec.data["status"],
                json!({ "phase": "Ready", "observedGeneration": 1 }),
                "a spec update must not change status"
            );
            assert_eq!(
                generation(&after_spec),
                Some(2),
                "a spec update must bump generation"
            );

            // The same through merge patches on each endpoint.
            let patched = widgets
                .patch_status(
                    "w",
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({ "spec": { "size": 7 }, "status": { "phase": "Patched" } }),
                    ),
                )
                .await?;
            assert_eq!(patched.data["spec"], json!({ "size": 2 }));
            assert_eq!(patched.data["status"]["phase"], json!("Patched"));
            let patched = widgets
                .patch(
                    "w",
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "spec": { "size": 3 }, "status": { "phase": "Nope" } })),
                )
                .await?;
            assert_eq!(patched.data["spec"], json!({ "size": 3 }));
            assert_eq!(patched.data["status"]["phase"], json!("Patched"));
            assert_eq!(generation(&patched), Some(3));
            Ok(())
        })
        .await
}

#[tokio::test]
async fn rbac_grants_exactly_the_rules_of_a_narrow_role() -> Result<()> {
    let plane = ControlPlane::shared();
    plane
        .in_namespace("rbac", async |ns| {
            let admin = plane.client().await?;
            ensure_widget_crd(&admin).await?;

            // Fixtures, made as admin: a ConfigMap to read, a Widget whose status to write.
            let admin_cms: Api<ConfigMap> = Api::namespaced(admin.clone(), ns.name());
            admin_cms
                .create(&PostParams::default(), &configmap("readable"))
                .await?;
            let admin_widgets: Api<DynamicObject> =
                Api::namespaced_with(admin.clone(), ns.name(), &widget_resource());
            admin_widgets
                .create(&PostParams::default(), &widget("w", 1)?)
                .await?;

            // The narrow role: read ConfigMaps; update (not patch) the status of Widgets.
            let role_name = unique_name("e2e-narrow");
            let role = ClusterRole {
                metadata: ObjectMeta {
                    name: Some(role_name.clone()),
                    ..ObjectMeta::default()
                },
                rules: Some(vec![
                    PolicyRule {
                        api_groups: Some(vec![String::new()]),
                        resources: Some(vec!["configmaps".into()]),
                        verbs: vec!["get".into(), "list".into(), "watch".into()],
                        ..PolicyRule::default()
                    },
                    PolicyRule {
                        api_groups: Some(vec![WIDGET_GROUP.into()]),
                        resources: Some(vec!["widgets/status".into()]),
                        verbs: vec!["update".into()],
                        ..PolicyRule::default()
                    },
                ]),
                ..ClusterRole::default()
            };
            let roles: Api<ClusterRole> = Api::all(admin.clone());
            roles.create(&PostParams::default(), &role).await?;

            // Bound in the test namespace only, for a ServiceAccount and for a certificate user.
            let user = unique_name("e2e-user");
            let binding = RoleBinding {
                metadata: ObjectMeta {
                    name: Some("narrow".into()),
                    ..ObjectMeta::default()
                },
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "ClusterRole".into(),
                    name: role_name.clone(),
                },
                subjects: Some(vec![
                    Subject {
                        kind: "ServiceAccount".into(),
                        name: "narrow".into(),
                        namespace: Some(ns.name().into()),
                        ..Subject::default()
                    },
                    Subject {
                        kind: "User".into(),
                        name: user.clone(),
                        api_group: Some("rbac.authorization.k8s.io".into()),
                        ..Subject::default()
                    },
                ]),
            };
            Api::<RoleBinding>::namespaced(admin.clone(), ns.name())
                .create(&PostParams::default(), &binding)
                .await?;

            let identities = [
                (
                    "ServiceAccount token",
                    plane
                        .client_for_service_account(ns.name(), "narrow")
                        .await?,
                ),
                (
                    "client certificate",
                    plane.client_for_user(&user, &["e2e-testers"]).await?,
                ),
            ];
            for (identity, client) in identities {
                check_narrow_role(identity, client, ns.name(), &admin_widgets)
                    .await
                    .with_context(|| format!("identity: {identity}"))?;
            }

            roles.delete(&role_name, &DeleteParams::default()).await?;
            Ok(())
        })
        .await
}

/// What the narrow role allows, and that everything next to it is refused.
async fn check_narrow_role(
    identity: &str,
    client: Client,
    ns: &str,
    admin_widgets: &Api<DynamicObject>,
) -> Result<()> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    // RBAC decisions come from the API server's informers: allow for the
    // binding to reach them before expecting the first grant.
    eventually(
        &format!("{identity}: list ConfigMaps allowed"),
        API_TIMEOUT,
        || async {
            cms.list(&Default::default())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
    )
    .await?;

    // Allowed: get, list, watch ConfigMaps in the namespace.
    cms.get("readable").await.context("get ConfigMap")?;
    {
        use futures::StreamExt;
        let stream = cms
            .watch(&WatchParams::default().timeout(1), "0")
            .await
            .context("watch ConfigMaps")?;
        let mut stream = std::pin::pin!(stream);
        if let Some(event) = stream.next().await {
            event.context("watch ConfigMaps: first event")?;
        }
    }

    // Refused: every other verb on ConfigMaps.
    assert_forbidden(
        "create ConfigMap",
        cms.create(&PostParams::default(), &configmap("nope")).await,
    )?;
    assert_forbidden(
        "delete ConfigMap",
        cms.delete("readable", &DeleteParams::default()).await,
    )?;
    let mut changed = cms.get("readable").await?;
    changed.data = Some([("key".to_string(), "changed".to_string())].into());
    assert_forbidden(
        "update ConfigMap",
        cms.replace("readable", &PostParams::default(), &changed)
            .await,
    )?;
    assert_forbidden(
        "patch ConfigMap",
        cms.patch(
            "readable",
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": { "key": "x" } })),
        )
        .await,
    )?;

    // Refused: other resources, and the same resource in another namespace.
    assert_forbidden(
        "list Secrets",
        Api::<Secret>::namespaced(client.clone(), ns)
            .list(&Default::default())
            .await,
    )?;
    assert_forbidden(
        "list Namespaces",
        Api::<Namespace>::all(client.clone())
            .list(&Default::default())
            .await,
    )?;
    assert_forbidden(
        "list ConfigMaps in namespace default",
        Api::<ConfigMap>::namespaced(client.clone(), "default")
            .list(&Default::default())
            .await,
    )?;

    // Widgets: only an update of the status subresource.
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &widget_resource());
    assert_forbidden("get Widget", widgets.get("w").await)?;
    assert_forbidden("list Widgets", widgets.list(&Default::default()).await)?;
    assert_forbidden("get Widget status", widgets.get_status("w").await)?;
    assert_forbidden(
        "create Widget",
        widgets
            .create(&PostParams::default(), &widget("new", 1)?)
            .await,
    )?;
    assert_forbidden(
        "delete Widget",
        widgets.delete("w", &DeleteParams::default()).await,
    )?;
    // Custom resources need a resourceVersion in an update; the role cannot
    // read, so admin hands over the current object.
    let mut spec_update = admin_widgets.get("w").await?;
    spec_update.data["spec"] = json!({ "size": 50 });
    spec_update.data["status"] = json!({ "phase": format!("set by {identity}") });
    assert_forbidden(
        "update Widget spec",
        widgets
            .replace("w", &PostParams::default(), &spec_update)
            .await,
    )?;
    assert_forbidden(
        "patch Widget status",
        widgets
            .patch_status(
                "w",
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": { "phase": "x" } })),
            )
            .await,
    )?;
    let updated = widgets
        .replace_status("w", &PostParams::default(), &spec_update)
        .await
        .context("update Widget status")?;
    assert_eq!(
        updated.data["status"]["phase"],
        json!(format!("set by {identity}"))
    );
    assert_eq!(
        updated.data["spec"],
        json!({ "size": 1 }),
        "the status update must leave spec alone"
    );
    Ok(())
}

#[tokio::test]
async fn garbage_collector_deletes_dependents_of_a_deleted_owner() -> Result<()> {
    let plane = ControlPlane::shared();
    plane
        .in_namespace("gc", async |ns| {
            let cms: Api<ConfigMap> = Api::namespaced(plane.client().await?, ns.name());

            let owner = cms
                .create(&PostParams::default(), &configmap("owner"))
                .await?;
            let mut dependent = configmap("dependent");
            dependent.metadata.owner_references = Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "owner".into(),
                uid: owner.metadata.uid.clone().context("owner has no uid")?,
                ..OwnerReference::default()
            }]);
            cms.create(&PostParams::default(), &dependent).await?;
            // A bystander without owner stays: GC deletes by ownerReference, not by namespace.
            cms.create(&PostParams::default(), &configmap("bystander"))
                .await?;

            cms.delete("owner", &DeleteParams::background()).await?;
            eventually(
                "dependent ConfigMap garbage-collected",
                CONTROLLER_TIMEOUT,
                || async {
                    match cms.get_opt("dependent").await {
                        Ok(None) => Ok(()),
                        Ok(Some(_)) => Err("still present".to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                },
            )
            .await?;
            ensure!(
                cms.get_opt("bystander").await?.is_some(),
                "GC deleted a ConfigMap without owner"
            );
            Ok(())
        })
        .await
}

#[tokio::test]
async fn namespace_deletion_completes() -> Result<()> {
    let plane = ControlPlane::shared();
    let client = plane.client().await?;
    ensure_widget_crd(&client).await?;

    // Not a TestNamespace: this test deletes it itself, and waits for the end.
    let name = unique_name("ns-delete");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await?;
    // Content of both a built-in and a custom kind: the namespace controller
    // must find and delete both before it removes its finalizer.
    Api::<ConfigMap>::namespaced(client.clone(), &name)
        .create(&PostParams::default(), &configmap("content"))
        .await?;
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &name, &widget_resource());
    widgets
        .create(&PostParams::default(), &widget("content", 1)?)
        .await?;

    namespaces.delete(&name, &DeleteParams::default()).await?;
    eventually(
        &format!("namespace {name} gone"),
        CONTROLLER_TIMEOUT,
        || async {
            match namespaces.get_opt(&name).await {
                Ok(None) => Ok(()),
                Ok(Some(ns)) => Err(format!("phase {:?}", ns.status.and_then(|s| s.phase))),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn kubectl_applies_manifests_from_stdin() -> Result<()> {
    let plane = ControlPlane::shared();
    plane
        .in_namespace("kubectl", async |ns| {
            let manifest = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": { "name": "from-stdin", "namespace": ns.name() },
                "data": { "source": "kubectl" },
            })
            .to_string();
            let out = plane
                .kubectl_with_stdin(&["apply", "--server-side", "-f", "-"], manifest.as_bytes());
            ensure!(
                out.status.success(),
                "kubectl apply: {}",
                String::from_utf8_lossy(&out.stderr)
            );

            let cm = Api::<ConfigMap>::namespaced(plane.client().await?, ns.name())
                .get("from-stdin")
                .await?;
            assert_eq!(
                cm.data
                    .unwrap_or_default()
                    .get("source")
                    .map(String::as_str),
                Some("kubectl")
            );
            Ok(())
        })
        .await
}
