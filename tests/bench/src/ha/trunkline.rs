//! The trunkline side of the HA benchmark: the e2e rig (tests/e2e/tests/
//! gateway_ha.rs) with release binaries, a control plane of its own, and the
//! failures injected and undone in a loop.
//!
//! ```text
//!  gw1 (prio 200) ─eth1─┐                  gw3 ─eth1─ switch ─ r3 (VLAN 100)
//!  gw2 (prio 100) ─eth1─┴ switch "rack" ─ r1 (VLAN 100), r2 (VLAN 200)
//!  (mode STP: kernel 802.1D on "rack", hello 1 s, max age 6 s, forward delay 4 s)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};
use trunkline_api::{GatewayHAGroup, LogicalInterface, PhysicalRouter};
use trunkline_test_support::lab::{
    InstanceSpec, Lab, LabSpec, NodeSpec, StpSpec, SwitchSpec, TrunkSpec,
};
use trunkline_test_support::{ControlPlane, ManagedProcess, free_local_addr};

use crate::Error;
use crate::modes::agent::Binaries;

const NAMESPACE: &str = "bench-ha";
const NODES: [&str; 3] = ["gw1", "gw2", "gw3"];
const GATEWAY: &str = "192.168.40.1";
const READY: Duration = Duration::from_secs(180);

/// An instance of the rig: name, node behind whose trunk, VLAN, address, MAC.
pub(super) struct Instance {
    pub name: &'static str,
    pub node: &'static str,
    pub vlan: u16,
    pub ip: &'static str,
    pub mac: &'static str,
}

pub(super) const R1: Instance = Instance {
    name: "r1",
    node: "gw1",
    vlan: 100,
    ip: "192.168.40.11",
    mac: "02:00:00:28:00:01",
};
pub(super) const R2: Instance = Instance {
    name: "r2",
    node: "gw1",
    vlan: 200,
    ip: "192.168.40.12",
    mac: "02:00:00:28:00:02",
};
pub(super) const R3: Instance = Instance {
    name: "r3",
    node: "gw3",
    vlan: 100,
    ip: "192.168.40.13",
    mac: "02:00:00:28:00:03",
};

/// A failure the benchmark injects (and then undoes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// SIGKILL of the active member's agent.
    AgentKilled,
    /// The active member's trunk link set down.
    TrunkDown,
    /// The active member's fabric link set down.
    FabricDown,
}

impl Failure {
    /// How the report names it.
    pub fn label(self) -> &'static str {
        match self {
            Failure::AgentKilled => "agent SIGKILLed",
            Failure::TrunkDown => "trunk link down",
            Failure::FabricDown => "fabric link down",
        }
    }
}

/// Mode Fast with these timers, or STP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Heartbeats.
    Fast {
        /// ms.
        hello: u64,
        /// ms.
        dead: u64,
    },
    /// The switch's 802.1D.
    Stp,
}

/// The running rig.
pub(super) struct Rig {
    pub lab: Lab,
    // Fields drop in order: processes before the control plane.
    agents: BTreeMap<&'static str, Option<ManagedProcess>>,
    _operator: ManagedProcess,
    client: kube::Client,
    routers: BTreeMap<&'static str, String>,
    kubeconfigs: BTreeMap<&'static str, PathBuf>,
    binaries: Binaries,
    group: String,
    _plane: ControlPlane,
}

fn params() -> PatchParams {
    PatchParams::apply("trunkline-bench").force()
}

fn underlay(node: &str) -> String {
    let n = NODES.iter().position(|n| *n == node).unwrap_or(0) + 1;
    format!("10.4.0.{n}")
}

fn timeout(what: &str, limit: Duration) -> Error {
    Error::Timeout {
        what: what.to_owned(),
        seconds: limit.as_secs(),
    }
}

impl Rig {
    /// The lab, a control plane (state in `dir`), the operator, three
    /// agents and the objects; returns once the group is Ready with gw1
    /// active and traffic flows.
    pub async fn start(dir: &Path, binaries: &Binaries, group: Group) -> Result<Rig, Error> {
        let mut rack = SwitchSpec::new("rack");
        if group == Group::Stp {
            rack = rack.stp(StpSpec::fastest());
        }
        let mut spec = LabSpec::new().switch(rack);
        for node in NODES {
            let trunk = if node == "gw3" {
                TrunkSpec::new("eth1")
            } else {
                TrunkSpec::new("eth1").switch("rack")
            };
            spec = spec.node(
                NodeSpec::new(node)
                    .underlay(&format!("{}/24", underlay(node)))
                    .trunk_spec(trunk),
            );
        }
        for i in [R1, R2, R3] {
            spec = spec.instance(
                InstanceSpec::new(i.name, i.node, "eth1")
                    .vlan(i.vlan)
                    .ip(&format!("{}/24", i.ip))
                    .gateway(GATEWAY)
                    .mac(i.mac),
            );
        }
        let lab = Lab::up(spec).map_err(|e| Error::Mode {
            mode: "ha",
            message: e.to_string(),
        })?;
        eprintln!("[bench-ha] starting a control plane");
        let plane = ControlPlane::start(&dir.join("control-plane"), Some(std::process::id()))?;
        let client = plane.client().await?;
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(NAMESPACE.to_owned()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await?;
        let operator_kubeconfig = plane
            .kubeconfig_with_role(NAMESPACE, "trunkline-operator", "operator")
            .await?;
        let addr = free_local_addr();
        let operator = ManagedProcess::start(
            "bench-ha-operator",
            Path::new("setpriv"),
            &[
                "--pdeathsig".into(),
                "KILL".into(),
                "--".into(),
                binaries.operator.display().to_string(),
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
        let mut rig = Rig {
            lab,
            agents: BTreeMap::new(),
            _operator: operator,
            client,
            routers: BTreeMap::new(),
            kubeconfigs: BTreeMap::new(),
            binaries: binaries.clone(),
            group: format!("rack-{}", std::process::id()),
            _plane: plane,
        };
        for node in NODES {
            let kubeconfig = rig
                ._plane
                .kubeconfig_with_role(NAMESPACE, &format!("dataplane-{node}"), "dataplane")
                .await?;
            rig.routers
                .insert(node, format!("{node}-{}", rig.lab.prefix()));
            rig.kubeconfigs.insert(node, kubeconfig);
            rig.start_agent(node);
            rig.apply_router(node).await?;
        }
        rig.apply_objects(group).await?;
        rig.wait_active("gw1", READY).await?;
        rig.wait_traffic(READY).await?;
        Ok(rig)
    }

    /// Starts `node`'s agent (it dies with the benchmark).
    pub fn start_agent(&mut self, node: &'static str) {
        let addr = free_local_addr();
        let agent = ManagedProcess::start(
            &format!("bench-ha-{node}"),
            Path::new("setpriv"),
            &[
                "--pdeathsig".into(),
                "KILL".into(),
                "--".into(),
                self.binaries.agent.display().to_string(),
                "--node".into(),
                self.routers[node].clone(),
                "--kubeconfig".into(),
                self.kubeconfigs[node].display().to_string(),
                "--metrics-addr".into(),
                addr.to_string(),
                "--port-netns".into(),
                self.lab.netns_path(node).display().to_string(),
                "--backend".into(),
                "af-xdp".into(),
            ],
            &[("RUST_LOG", "warn,trunkline_dataplane::ha=info")],
            addr,
        );
        self.agents.insert(node, Some(agent));
    }

    async fn apply_router(&self, node: &str) -> Result<(), Error> {
        let name = &self.routers[node];
        let router = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
            "metadata": {"name": name},
            "spec": {"physicalInterfaces": [{"name": "eth1"}],
                     "fabric": {"interface": "eth0", "underlayAddress": underlay(node)}}});
        Api::<PhysicalRouter>::all(self.client.clone())
            .patch(name, &params(), &Patch::Apply(&router))
            .await?;
        Ok(())
    }

    async fn apply_namespaced(&self, plural: &str, object: Value) -> Result<(), Error> {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("trunkline.io", "v1alpha1", &kind),
            plural,
        );
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), NAMESPACE, &resource);
        api.patch(&name, &params(), &Patch::Apply(&object)).await?;
        Ok(())
    }

    async fn apply_objects(&self, group: Group) -> Result<(), Error> {
        self.apply_namespaced(
            "virtualnetworks",
            json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
                   "metadata": {"name": "net1", "namespace": NAMESPACE},
                   "spec": {"subnets": [{"cidr": "192.168.40.0/24", "gateway": GATEWAY}]}}),
        )
        .await?;
        let mut spec = json!({"members": [
            {"physicalRouter": self.routers["gw1"], "physicalInterface": "eth1", "priority": 200},
            {"physicalRouter": self.routers["gw2"], "physicalInterface": "eth1", "priority": 100}]});
        match group {
            Group::Fast { hello, dead } => {
                spec["mode"] = json!("Fast");
                spec["timers"] = json!({"helloMillis": hello, "deadMillis": dead});
            }
            Group::Stp => {
                self.apply_namespaced(
                    "virtualnetworks",
                    json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
                           "metadata": {"name": "bpdu", "namespace": NAMESPACE},
                           "spec": {"forwardingMode": "L2"}}),
                )
                .await?;
                spec["mode"] = json!("STP");
                spec["bpduNetwork"] = json!({"namespace": NAMESPACE, "name": "bpdu"});
            }
        }
        let object = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "GatewayHAGroup",
            "metadata": {"name": self.group}, "spec": spec});
        Api::<GatewayHAGroup>::all(self.client.clone())
            .patch(&self.group, &params(), &Patch::Apply(&object))
            .await?;
        for i in [R1, R2, R3] {
            self.apply_namespaced(
                "virtualmachineinterfaces",
                json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
                       "metadata": {"name": i.name, "namespace": NAMESPACE},
                       "spec": {"virtualNetwork": "net1", "macAddress": i.mac, "ips": [{"address": i.ip}]}}),
            )
            .await?;
            let nodes: &[&str] = if i.node == "gw3" {
                &["gw3"]
            } else {
                &["gw1", "gw2"]
            };
            for node in nodes {
                let name = format!("{}-{}", self.routers[node], i.name);
                let li = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
                    "metadata": {"name": name},
                    "spec": {"physicalRouter": self.routers[node], "physicalInterface": "eth1",
                             "vlan": i.vlan,
                             "virtualMachineInterface": {"namespace": NAMESPACE, "name": i.name}}});
                Api::<LogicalInterface>::all(self.client.clone())
                    .patch(&name, &params(), &Patch::Apply(&li))
                    .await?;
            }
        }
        Ok(())
    }

    /// Waits until the group is Ready with `node` active.
    pub async fn wait_active(&self, node: &str, limit: Duration) -> Result<(), Error> {
        let router = self.routers[node].clone();
        let api: Api<GatewayHAGroup> = Api::all(self.client.clone());
        let started = Instant::now();
        loop {
            let status = api.get(&self.group).await?.status.unwrap_or_default();
            let ready = status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if ready && status.active_member.as_deref() == Some(router.as_str()) {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(timeout(&format!("{node} active in {status:?}"), limit));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until every pair of instances pings.
    pub async fn wait_traffic(&self, limit: Duration) -> Result<(), Error> {
        let started = Instant::now();
        for (from, to) in [("r1", R2.ip), ("r1", R3.ip), ("r3", R1.ip), ("r2", R1.ip)] {
            loop {
                let (ok, _) = self.lab.ping(from, to, 1);
                if ok {
                    break;
                }
                if started.elapsed() > limit {
                    return Err(timeout(&format!("{from} pings {to}"), limit));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    /// Injects `failure` on gw1 (the active member).
    pub fn fail(&mut self, failure: Failure) {
        match failure {
            Failure::AgentKilled => {
                if let Some(mut agent) = self.agents.get_mut("gw1").and_then(Option::take) {
                    agent.kill();
                }
            }
            Failure::TrunkDown => self.set_link("eth1", false),
            Failure::FabricDown => self.set_link("eth0", false),
        }
    }

    /// Undoes `failure`, and waits until gw1 is active again and traffic
    /// flows.
    pub async fn restore(&mut self, failure: Failure, limit: Duration) -> Result<(), Error> {
        match failure {
            Failure::AgentKilled => self.start_agent("gw1"),
            Failure::TrunkDown => self.set_link("eth1", true),
            Failure::FabricDown => self.set_link("eth0", true),
        }
        self.wait_active("gw1", limit).await?;
        self.wait_traffic(limit).await
    }

    fn set_link(&self, port: &str, up: bool) {
        let _ = self.lab.exec(
            "gw1",
            &["ip", "link", "set", port, if up { "up" } else { "down" }],
        );
    }

    /// The group's name.
    pub fn group(&self) -> &str {
        &self.group
    }
}
