//! (a) and (h) The node dataplane as deployed: `trunkline-dataplane` and
//! `trunkline-operator` as processes with their own ServiceAccounts and the
//! chart's roles (`deploy/rbac/`), against a real control plane (the
//! run's [`Cluster`]), and the benchmark's objects applied through the API:
//!
//! ```text
//!  PhysicalRouter <node>: physicalInterfaces in, out
//!  VirtualNetwork bench/net1: 192.168.1.0/24, gateway 192.168.1.1
//!  VMI bench/vmi1 02:00:00:00:01:01 192.168.1.10   LI <node>-in-100  (in, VLAN 100)
//!  VMI bench/vmi2 02:00:00:00:02:01 192.168.1.20   LI <node>-out-200 (out, VLAN 200)
//! ```
//!
//! The agent opens its ports in its mode's namespace (`--port-netns`) and
//! is pinned to the device's core. (a) runs it with `--backend af-xdp`
//! (every frame through AF_XDP and the pipeline in userspace), (h) with
//! `--backend xdp` (the XDP tier decides the flow in the kernel); (h)'s
//! objects carry the suffix `-h` (node, network, VMIs), so both can run in
//! one control plane. (p) is (h) with both VMIs naming the SecurityGroup
//! `bench-100-p`: 100 rules each way (99 TCP rules on ports the flow does
//! not use, the last allows UDP), so the flow is decided by the rules at
//! its first packet and passes by the flow table's entries (in the XDP
//! tier's flow map) afterwards: issue 18's "100 rules on the VMI".

use std::path::Path;
use std::sync::Arc;

use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};
use trunkline_api::PacketTrace;
use trunkline_api::packet_trace::reason as trace_reason;
use trunkline_test_support::ManagedProcess;

use crate::Error;
use crate::frame::{GATEWAY_IP, IN_VLAN, OUT_VLAN, SUBNET, VMI1_IP, VMI1_MAC, VMI2_IP, VMI2_MAC};
use crate::netns::Topology;

use super::Mode;
pub use super::cluster::{Binaries, NAMESPACE, apply_params};
use super::cluster::{Cluster, Kind, mac_text};

/// How long the agent may take to start (or end) an observation.
const OBSERVATION_START: Duration = Duration::from_secs(30);

/// The agent of mode (a), (h) or (o), and the cluster it belongs to.
pub struct AgentDevice {
    mode: Mode,
    // Fields drop in order: the agent before the cluster.
    agent: ManagedProcess,
    node: String,
    netns: String,
    cluster: Arc<Cluster>,
}

impl AgentDevice {
    /// Starts the agent of `mode` ((a) or (h), pinned to `core`) in
    /// `cluster`, applies the objects and waits until both logical
    /// interfaces are Ready.
    pub async fn start(
        mode: Mode,
        topology: &Topology,
        cluster: Arc<Cluster>,
        core: Option<usize>,
    ) -> Result<Self, Error> {
        let backend = match mode {
            Mode::Agent | Mode::AgentTier | Mode::AgentTierObserved | Mode::AgentTierPoliced => {
                mode.agent_backend().unwrap_or("af-xdp")
            }
            other => {
                return Err(Error::Options(format!(
                    "{} is not a single-node agent mode",
                    other.label()
                )));
            }
        };
        let node = format!("bench-{}{}", topology.prefix(), suffix(mode));
        let account = format!("trunkline-dataplane{}", suffix(mode));
        let agent = cluster
            .start_agent(&account, &node, &topology.path(mode.id()), backend, core)
            .await?;
        let device = Self {
            mode,
            agent,
            node,
            netns: topology.namespace(Mode::Agent.id()),
            cluster,
        };
        device.apply_objects().await?;
        let logs = format!("agent log {}", device.agent.log().display());
        if mode == Mode::AgentTierPoliced {
            // Ready once every node holding its VMIs enforces it.
            device
                .cluster
                .wait_ready(Kind::SecurityGroup, &policed_group(mode), mode.id(), &logs)
                .await?;
        }
        for li in [
            device.li_name("in", IN_VLAN),
            device.li_name("out", OUT_VLAN),
        ] {
            device
                .cluster
                .wait_ready(Kind::LogicalInterface, &li, mode.id(), &logs)
                .await?;
        }
        Ok(device)
    }

    /// (a) or (h).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The agent's process id.
    pub fn pid(&self) -> Option<u32> {
        self.agent.pid()
    }

    /// The operator's process id.
    pub fn operator_pid(&self) -> Option<u32> {
        self.cluster.operator_pid()
    }

    /// The agent's and the operator's `/metrics` pages.
    pub fn metrics(&self) -> (String, String) {
        (self.agent.metrics(), self.cluster.operator_metrics())
    }

    /// The control plane's state directory (its logs and `.pid` files).
    pub fn control_plane_dir(&self) -> &std::path::Path {
        self.cluster.log_dir()
    }

    /// An admin client of the control plane.
    pub fn client(&self) -> &kube::Client {
        self.cluster.client()
    }

    /// The node (= PhysicalRouter) name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The name of the agent's network namespace (its ports').
    pub fn netns_name(&self) -> &str {
        &self.netns
    }

    /// Applies the node's PhysicalRouter with `spec`.
    pub async fn apply_router_spec(&self, spec: Value) -> Result<(), Error> {
        self.cluster.apply_router(&self.node, spec).await
    }

    /// The agent's log file.
    pub fn agent_log(&self) -> &Path {
        self.agent.log()
    }

    /// The control plane's logs.
    pub fn control_plane_logs(&self) -> &Path {
        self.cluster.log_dir()
    }

    /// What the report says about this mode (read after the runs: (h)
    /// quotes the agent's counters).
    pub fn notes(&self) -> Vec<String> {
        match self.mode {
            Mode::AgentTier | Mode::AgentTierPoliced => {
                let metrics = self.agent.metrics();
                let sample = |name: &str| {
                    metrics
                        .lines()
                        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                        .unwrap_or(0.0)
                };
                let kernel =
                    sample("trunkline_dataplane_xdp_tier_frames_total{decision=\"kernel\"}");
                let handoff =
                    sample("trunkline_dataplane_xdp_tier_frames_total{decision=\"handoff\"}");
                if self.mode == Mode::AgentTierPoliced {
                    let hits = sample("trunkline_dataplane_xdp_tier_flow_hits_total");
                    return vec![format!(
                        "(p) is (h) with both VMIs policed by one SecurityGroup of 100 rules each way (99 TCP rules on ports the flow does not use, the last allows UDP): the generator's flows are decided by the rules at their first packet (in userspace) and their entries mirrored into the XDP tier's flow map, where the program looks up the sender's egress and the receiver's ingress entry for every frame. Frames decided in the kernel during the runs (warm-ups included): {kernel:.0}, of them by the flow stage: {hits:.0}; handed to AF_XDP: {handoff:.0}."
                    )];
                }
                vec![format!(
                    "(h) is the same agent and objects as (a), with `--backend xdp`: the XDP tier's program (native XDP on `in` and `out`) classifies, checks the source, looks up the route and rewrites each frame in the kernel, from maps the agent mirrors from its tables, and redirects it through a devmap to `out`; the agent process only keeps the maps and reads the counters. Its receive NAPI (threaded) is pinned to the device's core. Frames decided in the kernel during the runs (warm-ups included): {kernel:.0}, handed to AF_XDP: {handoff:.0}."
                )]
            }
            _ => vec!["(a) is the agent as deployed, with `--backend af-xdp` and the objects applied to a real API server and accepted by the operator; it forwards between two ports, so every frame is copied once more through its staging buffer before `send_copy` (a frame leaving by its ingress port would be sent from the same UMEM frame).".to_owned()],
        }
    }

    /// (o): starts an observation of the flow's frames on the node (a
    /// `PacketTrace` in mode Observe, filter: port `in`, VLAN 100) and
    /// waits until the agent says it runs; nothing for the other modes.
    pub async fn arm_observation(&self) -> Result<(), Error> {
        if self.mode != Mode::AgentTierObserved {
            return Ok(());
        }
        let api = self.traces();
        let trace: PacketTrace = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1",
            "kind": "PacketTrace",
            "metadata": {"name": self.observation_name()},
            "spec": {
                "node": self.node,
                "mode": "Observe",
                "filter": {"port": "in", "vlan": IN_VLAN},
                "durationSeconds": 300,
                "maxSamples": 256,
            }
        }))
        .map_err(|e| Error::Options(format!("PacketTrace: {e}")))?;
        api.create(&PostParams::default(), &trace).await?;
        let deadline = Instant::now() + OBSERVATION_START;
        loop {
            let observing = api
                .get(&self.observation_name())
                .await?
                .status
                .iter()
                .flat_map(|s| &s.conditions)
                .any(|c| c.reason == trace_reason::OBSERVING);
            if observing {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Mode {
                    mode: self.mode.id(),
                    message: format!(
                        "the agent did not start observing within {} s (agent log {})",
                        OBSERVATION_START.as_secs(),
                        self.agent.log().display()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// (o): ends the observation (deletes its `PacketTrace`) and waits
    /// until it is gone.
    pub async fn disarm_observation(&self) -> Result<(), Error> {
        if self.mode != Mode::AgentTierObserved {
            return Ok(());
        }
        let api = self.traces();
        let name = self.observation_name();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let deadline = Instant::now() + OBSERVATION_START;
        while api.get_opt(&name).await?.is_some() {
            if Instant::now() > deadline {
                return Err(Error::Options(format!("PacketTrace {name} not deleted")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    fn traces(&self) -> Api<PacketTrace> {
        Api::all(self.cluster.client().clone())
    }

    fn observation_name(&self) -> String {
        format!("{}-observe", self.node)
    }

    /// The name of the logical interface on `port`, VLAN `vlan`.
    pub fn li_name(&self, port: &str, vlan: u16) -> String {
        format!("{}-{port}-{vlan}", self.node)
    }

    /// Applies a namespaced trunkline object (JSON with kind and name).
    pub async fn apply_namespaced(&self, plural: &str, object: &Value) -> Result<i64, Error> {
        self.cluster.apply_namespaced(plural, object).await
    }

    /// Applies a VMI of network `network`.
    pub async fn apply_vmi(
        &self,
        name: &str,
        network: &str,
        mac: &str,
        ip: &str,
    ) -> Result<i64, Error> {
        self.cluster.apply_vmi(name, network, mac, ip).await
    }

    /// Applies a network with one subnet.
    pub async fn apply_network(&self, name: &str, cidr: &str, gateway: &str) -> Result<i64, Error> {
        self.cluster
            .apply_network(name, cidr, gateway, json!({}))
            .await
    }

    /// Applies a network with one subnet and `extra` spec fields (e.g.
    /// `l3vpn`).
    pub async fn apply_network_with(
        &self,
        name: &str,
        cidr: &str,
        gateway: &str,
        extra: Value,
    ) -> Result<i64, Error> {
        self.cluster.apply_network(name, cidr, gateway, extra).await
    }

    /// The cluster it belongs to.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Applies the logical interface (`port`, `vlan`) -> `vmi`, labelled `label`.
    pub async fn apply_li(
        &self,
        port: &str,
        vlan: u16,
        vmi: &str,
        label: &str,
    ) -> Result<i64, Error> {
        self.cluster
            .apply_li(
                &self.li_name(port, vlan),
                &self.node,
                port,
                vlan,
                vmi,
                label,
            )
            .await
    }

    async fn apply_objects(&self) -> Result<(), Error> {
        let s = suffix(self.mode);
        let (net, vmi1, vmi2) = (format!("net1{s}"), format!("vmi1{s}"), format!("vmi2{s}"));
        self.cluster
            .apply_router(
                &self.node,
                json!({"physicalInterfaces": [{"name": "in"}, {"name": "out"}]}),
            )
            .await?;
        self.apply_network(&net, SUBNET, &GATEWAY_IP.to_string())
            .await?;
        if self.mode == Mode::AgentTierPoliced {
            let group = policed_group(self.mode);
            self.apply_namespaced("securitygroups", &hundred_rules(&group))
                .await?;
            for (vmi, mac, ip) in [
                (&vmi1, mac_text(VMI1_MAC), VMI1_IP.to_string()),
                (&vmi2, mac_text(VMI2_MAC), VMI2_IP.to_string()),
            ] {
                self.apply_namespaced(
                    "virtualmachineinterfaces",
                    &json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
                        "metadata": {"name": vmi, "namespace": NAMESPACE,
                                     "labels": {"trunkline.io/bench": &net}},
                        "spec": {"virtualNetwork": &net, "macAddress": mac,
                                 "ips": [{"address": ip}], "securityGroups": [&group]}}),
                )
                .await?;
            }
        } else {
            self.apply_vmi(&vmi1, &net, &mac_text(VMI1_MAC), &VMI1_IP.to_string())
                .await?;
            self.apply_vmi(&vmi2, &net, &mac_text(VMI2_MAC), &VMI2_IP.to_string())
                .await?;
        }
        self.apply_li("in", IN_VLAN, &vmi1, &net).await?;
        self.apply_li("out", OUT_VLAN, &vmi2, &net).await?;
        Ok(())
    }
}

/// The SecurityGroup of (p).
fn policed_group(mode: Mode) -> String {
    format!("bench-100{}", suffix(mode))
}

/// A SecurityGroup `name` of 100 rules each way: 99 TCP rules on ports
/// 1000 to 1098 (the benchmark's flows are UDP), the last allows UDP.
fn hundred_rules(name: &str) -> Value {
    let rules: Vec<Value> = (0..100u16)
        .map(|i| {
            if i < 99 {
                json!({"protocol": "TCP", "ports": {"min": 1000 + i, "max": 1000 + i}})
            } else {
                json!({"protocol": "UDP"})
            }
        })
        .collect();
    json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "SecurityGroup",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"ingress": rules, "egress": rules}})
}

/// What (h)'s and (o)'s object names carry after (a)'s.
fn suffix(mode: Mode) -> &'static str {
    match mode {
        Mode::AgentTierObserved => "-o",
        Mode::AgentTierPoliced => "-p",
        Mode::AgentTier => "-h",
        _ => "",
    }
}
