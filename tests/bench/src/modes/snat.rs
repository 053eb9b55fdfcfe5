//! (l) Distributed SNAT as deployed: `trunkline-dataplane` in its default
//! configuration (`--backend xdp`, the default flow table, port range and
//! timeouts) against the run's control plane, with a network that leaves
//! the overlay by SNAT (`spec.northSouth.snat`, as
//! `deploy/examples/north-south/keystone-auth-snat.yaml`) and a node whose
//! fabric port carries its underlay address:
//!
//! ```text
//!  PhysicalRouter <node>-l: physicalInterfaces in; fabric eth0, underlayAddress 10.10.0.1
//!  VirtualNetwork bench/net1-l: 192.168.1.0/24, gateway 192.168.1.1, northSouth.snat
//!  VMI bench/vmi1-l 02:00:00:00:01:01 192.168.1.10   LI <node>-l-in-100 (in, VLAN 100)
//!
//!  gen --VLAN 100--> in [tier: flow map hit | miss -> AF_XDP -> pipeline: SNAT to 10.10.0.1:61000-65535] eth0 --> sink (fabric host 10.10.0.253)
//! ```
//!
//! The XDP tier hands the first packet of a flow to AF_XDP, where the
//! pipeline decides it against the agent's flow table; the agent mirrors
//! the flow into the tier's flow map and the tier translates the later
//! frames itself (README, limitations). For a new-flow run the agent is restarted ([`SnatDevice::restart`]):
//! its flows live in its memory, so it starts with an empty table, as the
//! masquerade baseline starts with a flushed conntrack table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use trunkline_test_support::{ManagedProcess, http_get};

use crate::Error;
use crate::frame::{GATEWAY_IP, IN_VLAN, SUBNET, VMI1_IP, VMI1_MAC};
use crate::netns::{FABRIC_PORT, Topology, UNDERLAY_A};
use crate::report::FlowCounts;

use super::Mode;
use super::cluster::{Cluster, Kind, mac_text};

/// How long a restarted agent may take to be ready again.
const RESTART_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped agent may take to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The agent's counters read for the report: (what it counts, sample).
/// (Allocation failures are also drops, `flow_table_full` and
/// `snat_ports_exhausted`, in `trunkline_dataplane_drops_total`.)
const COUNTERS: [&str; 4] = [
    "trunkline_dataplane_flow_allocation_failures_total{reason=\"table_full\"}",
    "trunkline_dataplane_flow_allocation_failures_total{reason=\"ports_exhausted\"}",
    "trunkline_dataplane_flows_created_total",
    "trunkline_dataplane_flows",
];

/// The agent of mode (l) and the cluster it belongs to.
pub struct SnatDevice {
    // Fields drop in order: the agent before the cluster.
    agent: ManagedProcess,
    node: String,
    account: String,
    netns: std::path::PathBuf,
    core: Option<usize>,
    restarts: usize,
    cluster: Arc<Cluster>,
}

impl SnatDevice {
    /// Starts the agent of (l) (pinned to `core`) in `cluster`, applies the
    /// objects and waits until the logical interface and the network are
    /// Ready.
    pub async fn start(
        topology: &Topology,
        cluster: Arc<Cluster>,
        core: Option<usize>,
    ) -> Result<Self, Error> {
        let mode = Mode::Snat;
        let node = format!("bench-{}-{}", topology.prefix(), mode.id());
        let account = format!("trunkline-dataplane-{}", mode.id());
        let netns = topology.path(mode.id());
        let agent = cluster
            .start_agent(&account, &node, &netns, "xdp", core)
            .await?;
        let device = Self {
            agent,
            node,
            account,
            netns,
            core,
            restarts: 0,
            cluster,
        };
        let (net, vmi) = (format!("net1-{}", mode.id()), format!("vmi1-{}", mode.id()));
        let li = format!("{}-in-{IN_VLAN}", device.node);
        let c = &device.cluster;
        c.apply_router(
            &device.node,
            json!({"physicalInterfaces": [{"name": "in"}],
                   "fabric": {"interface": FABRIC_PORT, "underlayAddress": UNDERLAY_A.to_string()}}),
        )
        .await?;
        c.apply_network(
            &net,
            SUBNET,
            &GATEWAY_IP.to_string(),
            json!({"northSouth": {"snat": true}}),
        )
        .await?;
        c.apply_vmi(&vmi, &net, &mac_text(VMI1_MAC), &VMI1_IP.to_string())
            .await?;
        c.apply_li(&li, &device.node, "in", IN_VLAN, &vmi, &net)
            .await?;
        let logs = format!("agent log {}", device.agent.log().display());
        c.wait_ready(Kind::LogicalInterface, &li, mode.id(), &logs)
            .await?;
        c.wait_ready(Kind::VirtualNetwork, &net, mode.id(), &logs)
            .await?;
        Ok(device)
    }

    /// The agent's process id.
    pub fn pid(&self) -> Option<u32> {
        self.agent.pid()
    }

    /// Fails when the agent died during a run.
    pub fn check(&self) -> Result<(), Error> {
        match self.agent.pid() {
            Some(pid) if !exited(pid) => Ok(()),
            _ => Err(Error::Mode {
                mode: Mode::Snat.id(),
                message: format!("the agent exited; log {}", self.agent.log().display()),
            }),
        }
    }

    /// Stops the agent (SIGTERM: it detaches its programs) and starts it
    /// again with the same flags, then waits until it is ready: an empty
    /// flow table for a new-flow run. The objects stay as they are.
    pub async fn restart(&mut self) -> Result<(), Error> {
        if let Some(pid) = self.agent.pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let asked = Instant::now();
            while !exited(pid) && asked.elapsed() < STOP_TIMEOUT {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Reaps it (and kills it, had it not stopped).
        self.agent = self
            .cluster
            .start_agent(&self.account, &self.node, &self.netns, "xdp", self.core)
            .await?;
        self.restarts += 1;
        let url = self.agent.url("/readyz");
        let started = Instant::now();
        loop {
            if let Ok((200, _)) = http_get(&url) {
                break;
            }
            if started.elapsed() > RESTART_TIMEOUT || self.check().is_err() {
                return Err(Error::Timeout {
                    what: format!(
                        "(l)'s restarted agent to be ready (log {})",
                        self.agent.log().display()
                    ),
                    seconds: RESTART_TIMEOUT.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Ready is not yet translating (it learns its fabric port's facts
        // a moment later): the benchmark waits for a translated frame.
        Ok(())
    }

    /// The agent's flow counters now (read from its `/metrics`).
    pub fn flow_counts(&self) -> FlowCounts {
        let metrics = self.agent.metrics();
        let sample = |name: &str| {
            metrics.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
        };
        let [table_full, ports, created, active] =
            COUNTERS.map(|name| sample(name).map(|v| v as u64));
        FlowCounts {
            created,
            refused: table_full.zip(ports).map(|(a, b)| a + b),
            // Never: a full table refuses new flows, it evicts none.
            evicted: Some(0),
            active,
        }
    }

    /// What the report says about this mode.
    pub fn notes(&self) -> Vec<String> {
        vec![format!(
            "(l) is the agent with `--backend xdp` (the default) and its default flow table (262,144 flows), SNAT range (61000-65535, endpoint-dependent: unique per destination address, port and protocol) and UDP timeout (300 s); the network declares `northSouth.snat` and the node's PhysicalRouter its fabric port `eth0` with underlay address {UNDERLAY_A}. Its XDP tier (native XDP on `in`, the NAPI thread pinned to the device's core at normal priority, sharing it with the agent) hands each flow's first packet to AF_XDP, where the pipeline's flow table decides it, and translates the flow's later frames itself from the flow map the agent mirrors (its flow stage). Before each new-flow run the agent was restarted (SIGTERM, same flags; it keeps flows in memory only) so that every such run starts from an empty table ({} restarts in this run)",
            self.restarts
        )]
    }
}

/// Whether process `pid` is gone or a zombie.
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
        Err(_) => true,
    }
}
