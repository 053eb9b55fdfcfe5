//! (e) and (g), and with the XDP tier (j) and (k): the overlay as deployed,
//! across two gateway nodes. Two
//! `trunkline-dataplane` processes (one per node namespace, each its own
//! ServiceAccount), the run's operator and API server ([`Cluster`]), and
//! the objects of one virtual network spanning both nodes:
//!
//! ```text
//!  PhysicalRouter <node A>: physicalInterfaces in;  fabric eth0, underlay 10.10.0.1
//!  PhysicalRouter <node B>: physicalInterfaces out; fabric eth0, underlay 10.10.0.2
//!  VirtualNetwork bench/ovl-<mode>: 192.168.1.0/24, gateway .1, encapsulation [VXLAN] (e, j) | [MPLSoUDP] (g, k)
//!  VMI bench/ovl-<mode>-vmi1 02:00:00:00:01:01 192.168.1.10   LI <node A>-in-100
//!  VMI bench/ovl-<mode>-vmi2 02:00:00:00:02:01 192.168.1.20   LI <node B>-out-200
//!
//!  gen -> in [A: classify, source check, LPM: VMI 2 is on B -> encapsulate] eth0
//!      ==== fabric ==== eth0 [B: XDP steers UDP 4789/6635 to AF_XDP -> decapsulate -> VMI 2, tag 200] out -> sink
//!  (j), (k): the same steps in each node's XDP tier (native XDP, devmap
//!  redirects in -> eth0 on A, eth0 -> out on B); the agents keep the maps
//! ```
//!
//! Both agents are pinned to the device's core: the pair gets one core, as
//! every other device, and as (f), the kernel's own overlay, does. Each
//! node reads the other's fabric MAC from its neighbour table (a permanent
//! entry, see [`crate::netns`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use trunkline_test_support::ManagedProcess;

use crate::Error;
use crate::frame::{GATEWAY_IP, IN_VLAN, OUT_VLAN, SUBNET, VMI1_IP, VMI1_MAC, VMI2_IP, VMI2_MAC};
use crate::netns::{FABRIC_PORT, Topology, UNDERLAY_A, UNDERLAY_B};

use super::Mode;
use super::cluster::{Cluster, Kind, mac_text};

/// How long the agents may take to resolve each other's fabric MAC once
/// the objects are Ready.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(30);

/// One node of the pair.
struct Node {
    name: String,
    agent: ManagedProcess,
}

/// The two agents of mode (e) or (g), and the cluster they belong to.
pub struct OverlayDevice {
    mode: Mode,
    network: String,
    // Fields drop in order: the agents before the cluster.
    nodes: [Node; 2],
    cluster: Arc<Cluster>,
}

impl OverlayDevice {
    /// Starts both agents (pinned to `core`) in `cluster`, applies the
    /// objects, and waits until they are Ready and each node has resolved
    /// its tunnel peer.
    pub async fn start(
        mode: Mode,
        topology: &Topology,
        cluster: Arc<Cluster>,
        core: Option<usize>,
    ) -> Result<Self, Error> {
        let encapsulation = match mode {
            Mode::OverlayVxlan | Mode::OverlayVxlanTier => "VXLAN",
            Mode::OverlayMpls | Mode::OverlayMplsTier => "MPLSoUDP",
            other => {
                return Err(Error::Options(format!(
                    "{} is not a trunkline overlay mode",
                    other.label()
                )));
            }
        };
        let mut nodes = Vec::with_capacity(2);
        for role in [Topology::ingress_role(mode), Topology::egress_role(mode)] {
            let name = format!("bench-{}-{role}", topology.prefix());
            let agent = cluster
                .start_agent(
                    &format!("dataplane-{role}"),
                    &name,
                    &topology.path(&role),
                    mode.agent_backend().unwrap_or("af-xdp"),
                    core,
                )
                .await?;
            nodes.push(Node { name, agent });
        }
        let (Some(b), Some(a)) = (nodes.pop(), nodes.pop()) else {
            return Err(Error::Options("two nodes".to_owned()));
        };
        let device = Self {
            mode,
            network: format!("ovl-{}", mode.id()),
            nodes: [a, b],
            cluster,
        };
        device.apply_objects(encapsulation).await?;
        let logs = device.logs();
        let c = &device.cluster;
        for (kind, name) in [
            (Kind::VirtualNetwork, device.network.clone()),
            (Kind::VirtualMachineInterface, device.vmi_name(1)),
            (Kind::VirtualMachineInterface, device.vmi_name(2)),
            (Kind::LogicalInterface, device.li_name(0, "in", IN_VLAN)),
            (Kind::LogicalInterface, device.li_name(1, "out", OUT_VLAN)),
        ] {
            c.wait_ready(kind, &name, mode.id(), &logs).await?;
        }
        device.wait_resolved().await?;
        Ok(device)
    }

    /// Which mode it is.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Both agents' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(|n| n.agent.pid()).collect()
    }

    /// Nothing to prepare; fails when an agent died.
    pub fn before_run(&mut self) -> Result<(), Error> {
        self.check()
    }

    /// Fails when an agent died.
    pub fn after_run(&mut self) -> Result<(), Error> {
        self.check()
    }

    fn check(&self) -> Result<(), Error> {
        for node in &self.nodes {
            let alive = node.agent.pid().is_some_and(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| {
                        let state = s.get(s.rfind(')')? + 2..)?.chars().next()?;
                        Some(state != 'Z' && state != 'X')
                    })
                    .unwrap_or(false)
            });
            if !alive {
                return Err(Error::Mode {
                    mode: self.mode.id(),
                    message: format!(
                        "the agent of node {} exited; log {}",
                        node.name,
                        node.agent.log().display()
                    ),
                });
            }
        }
        Ok(())
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("agent of {}: {}", n.name, n.agent.log().display()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn vmi_name(&self, n: u8) -> String {
        format!("{}-vmi{n}", self.network)
    }

    fn li_name(&self, node: usize, port: &str, vlan: u16) -> String {
        format!("{}-{port}-{vlan}", self.nodes[node].name)
    }

    async fn apply_objects(&self, encapsulation: &str) -> Result<(), Error> {
        let c = &self.cluster;
        for (node, port, underlay) in [(0, "in", UNDERLAY_A), (1, "out", UNDERLAY_B)] {
            c.apply_router(
                &self.nodes[node].name,
                json!({"physicalInterfaces": [{"name": port}],
                       "fabric": {"interface": FABRIC_PORT, "underlayAddress": underlay.to_string()}}),
            )
            .await?;
        }
        c.apply_network(
            &self.network,
            SUBNET,
            &GATEWAY_IP.to_string(),
            json!({"encapsulation": [encapsulation]}),
        )
        .await?;
        for (n, mac, ip) in [(1, VMI1_MAC, VMI1_IP), (2, VMI2_MAC, VMI2_IP)] {
            c.apply_vmi(
                &self.vmi_name(n),
                &self.network,
                &mac_text(mac),
                &ip.to_string(),
            )
            .await?;
        }
        for (node, port, vlan, vmi) in [(0, "in", IN_VLAN, 1), (1, "out", OUT_VLAN, 2)] {
            c.apply_li(
                &self.li_name(node, port, vlan),
                &self.nodes[node].name,
                port,
                vlan,
                &self.vmi_name(vmi),
                &self.network,
            )
            .await?;
        }
        Ok(())
    }

    /// Waits until each agent reports its tunnel peer's underlay next hop
    /// resolved (`trunkline_dataplane_tunnel_peers{state="resolved"}`).
    async fn wait_resolved(&self) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            let resolved: Vec<f64> = self
                .nodes
                .iter()
                .map(|n| {
                    n.agent
                        .metric("trunkline_dataplane_tunnel_peers{state=\"resolved\"}")
                        .unwrap_or(0.0)
                })
                .collect();
            if resolved.iter().all(|r| *r >= 1.0) {
                return Ok(());
            }
            if started.elapsed() > RESOLVE_TIMEOUT {
                return Err(Error::Mode {
                    mode: self.mode.id(),
                    message: format!(
                        "the nodes did not resolve their tunnel peer within {} s (resolved peers A, B: {resolved:?}); {}",
                        RESOLVE_TIMEOUT.as_secs(),
                        self.logs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The agents' counters that say what happened to frames: sent frames,
    /// verdicts and every drop reason seen, per node.
    fn counters(&self) -> Vec<String> {
        let names = ["node A", "node B"];
        self.nodes
            .iter()
            .zip(names)
            .map(|(node, which)| {
                let metrics = node.agent.metrics();
                let interesting: Vec<String> = metrics
                    .lines()
                    .filter(|l| {
                        l.starts_with("trunkline_dataplane_sent_frames_total")
                            || l.starts_with("trunkline_dataplane_frames_total")
                            || l.starts_with("trunkline_dataplane_drops_total")
                            || l.starts_with("trunkline_dataplane_xdp_tier_frames_total")
                    })
                    .filter(|l| {
                        l.rsplit(' ')
                            .next()
                            .and_then(|v| v.parse::<f64>().ok())
                            .is_some_and(|v| v > 0.0)
                    })
                    .map(|l| format!("`{}`", l.trim_start_matches("trunkline_dataplane_").trim()))
                    .collect();
                format!(
                    "{which}: {}",
                    if interesting.is_empty() {
                        "(metrics not readable)".to_owned()
                    } else {
                        interesting.join(", ")
                    }
                )
            })
            .collect()
    }

    /// What the report says about this mode (read after the runs: it
    /// quotes the agents' counters).
    pub fn notes(&self) -> Vec<String> {
        let per_frame = match self.mode {
            Mode::OverlayVxlanTier | Mode::OverlayMplsTier => {
                "as (e) or (g), but decided in each node's XDP tier in the kernel (native XDP): node A's program on `in` classifies, checks the source, routes, writes the outer headers into the headroom and redirects through a devmap to the fabric port; node B's program on the fabric port checks the outer headers and the peer, decapsulates, delivers to VMI 2 (re-tag) and redirects to `out`. The agents keep the maps; both ports' receive NAPIs (threaded) are pinned to the device's core."
            }
            Mode::OverlayMpls => {
                "node A classifies (port, VLAN) -> LI -> VMI 1, checks source MAC and IP, looks up 192.168.1.20 in the VRF (a VMI on node B), decrements the TTL, writes VMI 2's routed MPLS label (the inner IP packet, no inner Ethernet header), UDP 6635 with a flow-hash source port, IPv4 and Ethernet into the headroom (no copy of the payload) and sends to the fabric port; node B's fabric XDP program steers UDP 6635 to its address into AF_XDP, the pipeline checks the outer IPv4 checksum and that the source is a peer, maps the label to VMI 2, checks the inner destination by an LPM in its VRF, writes Ethernet + VLAN 200 in front of the inner packet and sends it out. There is no kernel baseline (no MPLS in this kernel)."
            }
            _ => {
                "node A classifies (port, VLAN) -> LI -> VMI 1, checks source MAC and IP, looks up 192.168.1.20 in the VRF (a VMI on node B), decrements the TTL, writes an inner Ethernet header to VMI 2's MAC and VXLAN (the network's VNI), UDP 4789 with a flow-hash source port, IPv4 and Ethernet into the headroom (no copy of the payload) and sends to the fabric port; node B's fabric XDP program steers UDP 4789 to its address into AF_XDP, the pipeline checks the outer IPv4 checksum and that the source is a peer, maps the VNI to the network's VRF, bridges by the inner destination MAC to VMI 2 and re-tags it VLAN 200."
            }
        };
        vec![
            format!(
                "{} runs two agents (node A, node B), both pinned to the device's core, each with its own AF_XDP sockets (copy mode, generic XDP; with the XDP tier, for what it hands off) on its trunk and fabric ports; without the tier every frame crosses AF_XDP four times (in, A's fabric out, B's fabric in, out). Per frame: {per_frame}",
                self.mode.label()
            ),
            format!(
                "{} agents' counters at the end of the runs, warm-ups included (`rx_ring_full`, `rx_kernel_dropped`: frames the kernel dropped on receive before the agent saw them, the overload; pipeline drops by their reason): {}",
                self.mode.label(),
                self.counters().join("; ")
            ),
        ]
    }
}
