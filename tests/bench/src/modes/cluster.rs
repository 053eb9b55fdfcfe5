//! The control plane shared by the modes that run the product's agents
//! ((a), (e), (g)): etcd + kube-apiserver + kube-controller-manager from
//! `tests/support`, one `trunkline-operator`, and the benchmark's objects
//! applied through the API. Each agent runs as a process of its own, with a
//! ServiceAccount of its own bound to the chart's role (`deploy/rbac/`).
//!
//! ```text
//!  ControlPlane ── operator (ServiceAccount trunkline-operator)
//!        │
//!        ├── agent of (a)'s node         (ServiceAccount trunkline-dataplane)
//!        ├── agents of (e)'s nodes A, B  (their own ServiceAccounts)
//!        └── agents of (g)'s nodes A, B
//! ```
//!
//! Started once per run when any of those modes is selected; the devices
//! hold it in an [`Arc`] and it stops (processes first, then the control
//! plane) when the last one lets go.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};
use trunkline_api::{LogicalInterface, PhysicalRouter};
use trunkline_test_support::{ControlPlane, ManagedProcess, free_local_addr};

use crate::Error;

/// Kubernetes namespace of the benchmark's namespaced objects.
pub const NAMESPACE: &str = "bench";
/// How long objects may take to become Ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// Paths of the product's binaries.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// `trunkline-dataplane`.
    pub agent: PathBuf,
    /// `trunkline-operator`.
    pub operator: PathBuf,
    /// `trunkline-bgp` (the route-propagation measurement).
    pub speaker: PathBuf,
}

/// Server-side apply as the benchmark.
pub fn apply_params() -> PatchParams {
    PatchParams::apply("trunkline-bench").force()
}

/// A MAC in the API's text form.
pub fn mac_text(bytes: [u8; 6]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A trunkline kind, for reading its conditions.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// Cluster-scoped.
    LogicalInterface,
    /// In [`NAMESPACE`].
    VirtualMachineInterface,
    /// In [`NAMESPACE`].
    VirtualNetwork,
    /// In [`NAMESPACE`].
    SecurityGroup,
}

impl Kind {
    fn resource(self) -> (ApiResource, bool) {
        let (kind, plural, namespaced) = match self {
            Kind::LogicalInterface => ("LogicalInterface", "logicalinterfaces", false),
            Kind::VirtualMachineInterface => {
                ("VirtualMachineInterface", "virtualmachineinterfaces", true)
            }
            Kind::VirtualNetwork => ("VirtualNetwork", "virtualnetworks", true),
            Kind::SecurityGroup => ("SecurityGroup", "securitygroups", true),
        };
        (
            ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("trunkline.io", "v1alpha1", kind),
                plural,
            ),
            namespaced,
        )
    }
}

/// The control plane, the operator and an admin client.
pub struct Cluster {
    // Fields drop in order: the operator before the control plane.
    operator: ManagedProcess,
    client: kube::Client,
    plane: ControlPlane,
    binaries: Binaries,
}

/// The `RUST_LOG` of the operator and agents: `default`, or
/// `TRUNKLINE_BENCH_LOG` when set (to follow one change through their
/// logs).
fn log_filter(default: &str) -> String {
    std::env::var("TRUNKLINE_BENCH_LOG").unwrap_or_else(|_| default.to_owned())
}

impl Cluster {
    /// Starts a control plane (state in `dir`) and the operator; creates
    /// [`NAMESPACE`].
    pub async fn start(dir: &Path, binaries: &Binaries) -> Result<Arc<Self>, Error> {
        for binary in [&binaries.agent, &binaries.operator] {
            if !binary.exists() {
                return Err(Error::Options(format!(
                    "{} does not exist: build it (scripts/bench.sh does) or pass --bin-dir",
                    binary.display()
                )));
            }
        }
        eprintln!("[bench] starting a control plane and the operator");
        let plane = ControlPlane::start(&dir.join("control-plane"), Some(std::process::id()))?;
        let client = plane.client().await?;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(NAMESPACE.to_owned()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces.create(&PostParams::default(), &ns).await?;
        let operator_kubeconfig = plane
            .kubeconfig_with_role(NAMESPACE, "trunkline-operator", "operator")
            .await?;
        let addr = free_local_addr();
        let operator = ManagedProcess::start(
            "bench-operator",
            &binaries.operator,
            &[
                "--kubeconfig".into(),
                operator_kubeconfig.display().to_string(),
                "--metrics-addr".into(),
                addr.to_string(),
                // Passes at most every 20 ms (one right after a quiet spell).
                "--debounce-ms".into(),
                "20".into(),
            ],
            &[("RUST_LOG", &log_filter("warn"))],
            addr,
        );
        Ok(Arc::new(Self {
            operator,
            client,
            plane,
            binaries: binaries.clone(),
        }))
    }

    /// An admin client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The operator's process id.
    pub fn operator_pid(&self) -> Option<u32> {
        self.operator.pid()
    }

    /// The operator's `/metrics` page.
    pub fn operator_metrics(&self) -> String {
        self.operator.metrics()
    }

    /// The control plane's logs.
    pub fn log_dir(&self) -> &Path {
        self.plane.log_dir()
    }

    /// Starts `trunkline-dataplane` for node `node` as ServiceAccount
    /// `account`, its ports in the network namespace `netns`, with
    /// `--backend backend`, pinned to `core`. `setpriv` makes it die with
    /// the benchmark and `taskset` pins it; both exec, so the process id is
    /// the agent's.
    pub async fn start_agent(
        &self,
        account: &str,
        node: &str,
        netns: &Path,
        backend: &str,
        core: Option<usize>,
    ) -> Result<ManagedProcess, Error> {
        let kubeconfig = self
            .plane
            .kubeconfig_with_role(NAMESPACE, account, "dataplane")
            .await?;
        let addr = free_local_addr();
        let mut args: Vec<String> = vec!["--pdeathsig".into(), "KILL".into(), "--".into()];
        if let Some(core) = core {
            args.extend(["taskset".into(), "-c".into(), core.to_string()]);
        }
        args.extend([
            self.binaries.agent.display().to_string(),
            "--node".into(),
            node.to_owned(),
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--metrics-addr".into(),
            addr.to_string(),
            "--port-netns".into(),
            netns.display().to_string(),
            "--backend".into(),
            backend.to_owned(),
            "--debounce-ms".into(),
            "20".into(),
        ]);
        Ok(ManagedProcess::start(
            &format!("bench-dataplane-{account}"),
            Path::new("setpriv"),
            &args,
            &[("RUST_LOG", &log_filter("warn,trunkline_dataplane=info"))],
            addr,
        ))
    }

    /// Starts the BGP speaker `trunkline-bgp` as ServiceAccount
    /// `trunkline-bgp` (the chart's role), running `gobgpd` in the network
    /// namespace `netns` with router ID `router_id` and AS `asn`.
    pub async fn start_speaker(
        &self,
        gobgpd: &Path,
        netns: &Path,
        router_id: std::net::Ipv4Addr,
        asn: u32,
    ) -> Result<ManagedProcess, Error> {
        if !self.binaries.speaker.exists() {
            return Err(Error::Options(format!(
                "{} does not exist: build it (scripts/bench.sh does) or pass --bin-dir",
                self.binaries.speaker.display()
            )));
        }
        let kubeconfig = self
            .plane
            .kubeconfig_with_role(NAMESPACE, "trunkline-bgp", "bgp")
            .await?;
        let addr = free_local_addr();
        let socket = self.log_dir().join("gobgpd.sock");
        let args: Vec<String> = vec![
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--gobgpd".into(),
            gobgpd.display().to_string(),
            "--api-socket".into(),
            socket.display().to_string(),
            "--router-id".into(),
            router_id.to_string(),
            "--local-asn".into(),
            asn.to_string(),
            "--namespace".into(),
            NAMESPACE.into(),
            "--health-addr".into(),
            addr.to_string(),
            "--speaker-netns".into(),
            netns.display().to_string(),
        ];
        Ok(ManagedProcess::start(
            "bench-bgp",
            &self.binaries.speaker,
            &args,
            &[("RUST_LOG", "warn,trunkline_bgp=info")],
            addr,
        ))
    }

    /// Applies a cluster-scoped trunkline object (JSON with kind and name).
    pub async fn apply_cluster_scoped(&self, plural: &str, object: &Value) -> Result<(), Error> {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("trunkline.io", "v1alpha1", kind),
            plural,
        );
        Api::<DynamicObject>::all_with(self.client.clone(), &resource)
            .patch(name, &apply_params(), &Patch::Apply(object))
            .await?;
        Ok(())
    }

    /// Applies the PhysicalRouter `node` with `spec`.
    pub async fn apply_router(&self, node: &str, spec: Value) -> Result<(), Error> {
        let routers: Api<PhysicalRouter> = Api::all(self.client.clone());
        let router = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
            "metadata": {"name": node}, "spec": spec});
        routers
            .patch(node, &apply_params(), &Patch::Apply(&router))
            .await?;
        Ok(())
    }

    /// Applies a namespaced trunkline object (JSON with kind and name);
    /// returns its generation.
    pub async fn apply_namespaced(&self, plural: &str, object: &Value) -> Result<i64, Error> {
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("trunkline.io", "v1alpha1", kind),
            plural,
        );
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), NAMESPACE, &resource);
        let applied = api
            .patch(name, &apply_params(), &Patch::Apply(object))
            .await?;
        Ok(applied.metadata.generation.unwrap_or(0))
    }

    /// Applies a VMI of network `network` (labelled with it).
    pub async fn apply_vmi(
        &self,
        name: &str,
        network: &str,
        mac: &str,
        ip: &str,
    ) -> Result<i64, Error> {
        self.apply_namespaced(
            "virtualmachineinterfaces",
            &json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
                "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"trunkline.io/bench": network}},
                "spec": {"virtualNetwork": network, "macAddress": mac, "ips": [{"address": ip}]}}),
        )
        .await
    }

    /// Applies a network with one subnet and the `extra` spec fields (an
    /// object, e.g. `{"encapsulation": ["VXLAN"]}`).
    pub async fn apply_network(
        &self,
        name: &str,
        cidr: &str,
        gateway: &str,
        extra: Value,
    ) -> Result<i64, Error> {
        let mut spec = json!({"subnets": [{"cidr": cidr, "gateway": gateway}]});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        self.apply_namespaced(
            "virtualnetworks",
            &json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
                "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}),
        )
        .await
    }

    /// Applies the logical interface `name`: (`node`, `port`, `vlan`) ->
    /// `vmi`, labelled `label`; returns its generation.
    pub async fn apply_li(
        &self,
        name: &str,
        node: &str,
        port: &str,
        vlan: u16,
        vmi: &str,
        label: &str,
    ) -> Result<i64, Error> {
        let lis: Api<LogicalInterface> = Api::all(self.client.clone());
        let li = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
            "metadata": {"name": name, "labels": {"trunkline.io/bench": label}},
            "spec": {"physicalRouter": node, "physicalInterface": port, "vlan": vlan,
                     "virtualMachineInterface": {"namespace": NAMESPACE, "name": vmi}}});
        let applied = lis.patch(name, &apply_params(), &Patch::Apply(&li)).await?;
        Ok(applied.metadata.generation.unwrap_or(0))
    }

    /// Waits until object `name` of `kind` is Ready for its current
    /// generation; `mode` and `logs` go into the error.
    pub async fn wait_ready(
        &self,
        kind: Kind,
        name: &str,
        mode: &'static str,
        logs: &str,
    ) -> Result<(), Error> {
        let (resource, namespaced) = kind.resource();
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(self.client.clone(), NAMESPACE, &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        };
        let started = Instant::now();
        loop {
            let object = api.get(name).await?;
            let generation = object.metadata.generation;
            let conditions = object.data["status"]["conditions"].clone();
            let ready = conditions.as_array().is_some_and(|all| {
                all.iter().any(|c| {
                    c["type"] == "Ready"
                        && c["status"] == "True"
                        && c["observedGeneration"].as_i64() == generation
                })
            });
            if ready {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(Error::Mode {
                    mode,
                    message: format!(
                        "{kind:?} {name} not Ready within {} s: {conditions}; {logs}, control plane logs {}",
                        READY_TIMEOUT.as_secs(),
                        self.plane.log_dir().display()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
