//! (a) The node dataplane as deployed: `trunkline-dataplane` and
//! `trunkline-operator` as processes with their own ServiceAccounts and the
//! chart's roles (`deploy/rbac/`), against a real control plane (etcd +
//! kube-apiserver + kube-controller-manager from `tests/support`), and the
//! benchmark's objects applied through the API:
//!
//! ```text
//!  PhysicalRouter <node>: physicalInterfaces in, out
//!  VirtualNetwork bench/net1: 192.168.1.0/24, gateway 192.168.1.1
//!  VMI bench/vmi1 02:00:00:00:01:01 192.168.1.10   LI <node>-in-100  (in, VLAN 100)
//!  VMI bench/vmi2 02:00:00:00:02:01 192.168.1.20   LI <node>-out-200 (out, VLAN 200)
//! ```
//!
//! The agent opens its ports in mode (a)'s namespace (`--port-netns`) and is
//! pinned to the device's core.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};
use trunkline_api::{LogicalInterface, PhysicalRouter};
use trunkline_test_support::{ControlPlane, ManagedProcess, free_local_addr};

use crate::Error;
use crate::frame::{GATEWAY_IP, IN_VLAN, OUT_VLAN, SUBNET, VMI1_IP, VMI1_MAC, VMI2_IP, VMI2_MAC};
use crate::netns::Topology;

use super::Mode;

/// Kubernetes namespace of the benchmark's namespaced objects.
pub const NAMESPACE: &str = "bench";
/// How long the objects may take to become Ready.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// Paths of the product's binaries.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// `trunkline-dataplane`.
    pub agent: PathBuf,
    /// `trunkline-operator`.
    pub operator: PathBuf,
}

fn mac(bytes: [u8; 6]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Server-side apply as the benchmark.
pub fn apply_params() -> PatchParams {
    PatchParams::apply("trunkline-bench").force()
}

/// The control plane, the operator and the agent of mode (a).
pub struct AgentDevice {
    // Fields drop in order: the processes before the control plane.
    agent: ManagedProcess,
    operator: ManagedProcess,
    client: kube::Client,
    node: String,
    plane: ControlPlane,
}

impl AgentDevice {
    /// Starts a control plane (state in `dir`), the operator and the agent
    /// (pinned to `core`), applies the objects and waits until both logical
    /// interfaces are Ready.
    pub async fn start(
        topology: &Topology,
        dir: &Path,
        binaries: &Binaries,
        core: Option<usize>,
    ) -> Result<Self, Error> {
        for binary in [&binaries.agent, &binaries.operator] {
            if !binary.exists() {
                return Err(Error::Mode {
                    mode: "a",
                    message: format!(
                        "{} does not exist: build it (scripts/bench.sh does) or pass --bin-dir",
                        binary.display()
                    ),
                });
            }
        }
        eprintln!("[bench] (a) starting a control plane");
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
        let agent_kubeconfig = plane
            .kubeconfig_with_role(NAMESPACE, "trunkline-dataplane", "dataplane")
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
                "--debounce-ms".into(),
                "100".into(),
            ],
            &[("RUST_LOG", "warn")],
            addr,
        );
        let node = format!("bench-{}", topology.prefix());
        let addr = free_local_addr();
        // setpriv: the agent dies with the benchmark; taskset: pinned. Both
        // exec, so the process id is the agent's.
        let mut args: Vec<String> = vec!["--pdeathsig".into(), "KILL".into(), "--".into()];
        if let Some(core) = core {
            args.extend(["taskset".into(), "-c".into(), core.to_string()]);
        }
        args.extend([
            binaries.agent.display().to_string(),
            "--node".into(),
            node.clone(),
            "--kubeconfig".into(),
            agent_kubeconfig.display().to_string(),
            "--metrics-addr".into(),
            addr.to_string(),
            "--port-netns".into(),
            topology.path(Mode::Agent.id()).display().to_string(),
            "--backend".into(),
            "af-xdp".into(),
        ]);
        let agent = ManagedProcess::start(
            "bench-dataplane",
            Path::new("setpriv"),
            &args,
            &[("RUST_LOG", "warn,trunkline_dataplane=info")],
            addr,
        );
        let device = Self {
            agent,
            operator,
            client,
            node,
            plane,
        };
        device.apply_objects().await?;
        for li in [
            device.li_name("in", IN_VLAN),
            device.li_name("out", OUT_VLAN),
        ] {
            device.wait_ready(&li).await?;
        }
        Ok(device)
    }

    /// The agent's process id.
    pub fn pid(&self) -> Option<u32> {
        self.agent.pid()
    }

    /// The operator's process id.
    pub fn operator_pid(&self) -> Option<u32> {
        self.operator.pid()
    }

    /// An admin client of the control plane.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The node (= PhysicalRouter) name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The agent's log file.
    pub fn agent_log(&self) -> &Path {
        self.agent.log()
    }

    /// The control plane's logs.
    pub fn control_plane_logs(&self) -> &Path {
        self.plane.log_dir()
    }

    /// What the report says about this mode.
    pub fn notes(&self) -> Vec<String> {
        vec!["(a) is the agent as deployed, with the objects applied to a real API server and accepted by the operator; it forwards between two ports, so every frame is copied once more through its staging buffer before `send_copy` (a frame leaving by its ingress port would be sent from the same UMEM frame).".to_owned()]
    }

    /// The name of the logical interface on `port`, VLAN `vlan`.
    pub fn li_name(&self, port: &str, vlan: u16) -> String {
        format!("{}-{port}-{vlan}", self.node)
    }

    /// Applies a namespaced trunkline object (JSON with kind and name).
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

    /// Applies a VMI of network `network`.
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

    /// Applies a network with one subnet.
    pub async fn apply_network(&self, name: &str, cidr: &str, gateway: &str) -> Result<i64, Error> {
        self.apply_namespaced(
            "virtualnetworks",
            &json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"subnets": [{"cidr": cidr, "gateway": gateway}]}}),
        )
        .await
    }

    /// Applies the logical interface (`port`, `vlan`) -> `vmi`, labelled `label`.
    pub async fn apply_li(
        &self,
        port: &str,
        vlan: u16,
        vmi: &str,
        label: &str,
    ) -> Result<i64, Error> {
        let name = self.li_name(port, vlan);
        let lis: Api<LogicalInterface> = Api::all(self.client.clone());
        let li = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
            "metadata": {"name": name, "labels": {"trunkline.io/bench": label}},
            "spec": {"physicalRouter": self.node, "physicalInterface": port, "vlan": vlan,
                     "virtualMachineInterface": {"namespace": NAMESPACE, "name": vmi}}});
        let applied = lis
            .patch(&name, &apply_params(), &Patch::Apply(&li))
            .await?;
        Ok(applied.metadata.generation.unwrap_or(0))
    }

    async fn apply_objects(&self) -> Result<(), Error> {
        let routers: Api<PhysicalRouter> = Api::all(self.client.clone());
        let router = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
            "metadata": {"name": self.node},
            "spec": {"physicalInterfaces": [{"name": "in"}, {"name": "out"}]}});
        routers
            .patch(&self.node, &apply_params(), &Patch::Apply(&router))
            .await?;
        self.apply_network("net1", SUBNET, &GATEWAY_IP.to_string())
            .await?;
        self.apply_vmi("vmi1", "net1", &mac(VMI1_MAC), &VMI1_IP.to_string())
            .await?;
        self.apply_vmi("vmi2", "net1", &mac(VMI2_MAC), &VMI2_IP.to_string())
            .await?;
        self.apply_li("in", IN_VLAN, "vmi1", "net1").await?;
        self.apply_li("out", OUT_VLAN, "vmi2", "net1").await?;
        Ok(())
    }

    async fn wait_ready(&self, li: &str) -> Result<(), Error> {
        let lis: Api<LogicalInterface> = Api::all(self.client.clone());
        let started = std::time::Instant::now();
        loop {
            let object = lis.get(li).await?;
            let ready = object.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            if ready {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(Error::Mode {
                    mode: "a",
                    message: format!(
                        "LogicalInterface {li} not Ready within {} s: {:?}; agent log {}, control plane logs {}",
                        READY_TIMEOUT.as_secs(),
                        object.status.map(|s| s.conditions),
                        self.agent.log().display(),
                        self.plane.log_dir().display()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
