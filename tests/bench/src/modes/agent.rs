//! (a) The node dataplane as deployed: `trunkline-dataplane` and
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
//! The agent opens its ports in mode (a)'s namespace (`--port-netns`) and is
//! pinned to the device's core.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use trunkline_test_support::ManagedProcess;

use crate::Error;
use crate::frame::{GATEWAY_IP, IN_VLAN, OUT_VLAN, SUBNET, VMI1_IP, VMI1_MAC, VMI2_IP, VMI2_MAC};
use crate::netns::Topology;

use super::Mode;
pub use super::cluster::{Binaries, NAMESPACE, apply_params};
use super::cluster::{Cluster, Kind, mac_text};

/// The agent of mode (a), and the cluster it belongs to.
pub struct AgentDevice {
    // Fields drop in order: the agent before the cluster.
    agent: ManagedProcess,
    node: String,
    cluster: Arc<Cluster>,
}

impl AgentDevice {
    /// Starts the agent (pinned to `core`) in `cluster`, applies the
    /// objects and waits until both logical interfaces are Ready.
    pub async fn start(
        topology: &Topology,
        cluster: Arc<Cluster>,
        core: Option<usize>,
    ) -> Result<Self, Error> {
        let node = format!("bench-{}", topology.prefix());
        let agent = cluster
            .start_agent(
                "trunkline-dataplane",
                &node,
                &topology.path(Mode::Agent.id()),
                core,
            )
            .await?;
        let device = Self {
            agent,
            node,
            cluster,
        };
        device.apply_objects().await?;
        let logs = format!("agent log {}", device.agent.log().display());
        for li in [
            device.li_name("in", IN_VLAN),
            device.li_name("out", OUT_VLAN),
        ] {
            device
                .cluster
                .wait_ready(Kind::LogicalInterface, &li, "a", &logs)
                .await?;
        }
        Ok(device)
    }

    /// The agent's process id.
    pub fn pid(&self) -> Option<u32> {
        self.agent.pid()
    }

    /// The operator's process id.
    pub fn operator_pid(&self) -> Option<u32> {
        self.cluster.operator_pid()
    }

    /// An admin client of the control plane.
    pub fn client(&self) -> &kube::Client {
        self.cluster.client()
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
        self.cluster.log_dir()
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
        self.cluster
            .apply_router(
                &self.node,
                json!({"physicalInterfaces": [{"name": "in"}, {"name": "out"}]}),
            )
            .await?;
        self.apply_network("net1", SUBNET, &GATEWAY_IP.to_string())
            .await?;
        self.apply_vmi("vmi1", "net1", &mac_text(VMI1_MAC), &VMI1_IP.to_string())
            .await?;
        self.apply_vmi("vmi2", "net1", &mac_text(VMI2_MAC), &VMI2_IP.to_string())
            .await?;
        self.apply_li("in", IN_VLAN, "vmi1", "net1").await?;
        self.apply_li("out", OUT_VLAN, "vmi2", "net1").await?;
        Ok(())
    }
}
