//! The overlay end to end: one virtual network across three gateway nodes.
//!
//! ```text
//!            fabric bridge (underlay 10.2.0.0/24)  -- pub 10.2.0.253 -- vtep1 10.2.0.100 (kernel VXLAN)
//!       eth0 .1 |             eth0 .2 |             eth0 .3 |
//!        [gw1] agent          [gw2] agent           [gw3] agent      (one operator; each agent its
//!          eth1                 eth1                  eth1            own ServiceAccount)
//!     a1 (net1, VLAN 100)  a2 (net1, VLAN 100)  a3 (net1, VLAN 100)
//!     b1 (net2, VLAN 200)  b2 (net2, VLAN 200)                       net2 overlaps net1's addresses
//! ```
//!
//! Every test builds its own rig (a lab under a unique prefix, objects in a
//! namespace of its own, node names unique in the cluster), so they run in
//! parallel and independently. The bytes on the fabric are decoded by
//! tshark; the interop peer is the kernel's own VXLAN device.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use trunkline_api::{LogicalInterface, PhysicalRouter, VirtualMachineInterface, VirtualNetwork};
use trunkline_test_support::lab::{Limit, MPLS_OVER_UDP};
use trunkline_test_support::{
    ControlPlane, FabricHostSpec, InstanceSpec, Lab, LabSpec, ManagedProcess, NodeSpec,
    TestNamespace, VtepSpec, eventually, free_local_addr, unique_name, workspace_binary,
};

const READY: Duration = Duration::from_secs(120);
const NODES: [&str; 3] = ["gw1", "gw2", "gw3"];
const SUBNET: &str = "192.168.10.0/24";
const GATEWAY: &str = "192.168.10.1";

fn underlay(node: &str) -> String {
    let n = NODES.iter().position(|n| *n == node).expect("a lab node") + 1;
    format!("10.2.0.{n}")
}

/// The gateway of an instance's /24: its address ending in .1.
fn gateway_of(ip: &str) -> String {
    let (net, _) = ip.rsplit_once('.').expect("an IPv4 address");
    format!("{net}.1")
}

/// A remote instance: lab name, node, VLAN, network, address, MAC.
#[derive(Clone, Copy)]
struct Instance {
    name: &'static str,
    node: &'static str,
    vlan: u16,
    network: &'static str,
    ip: &'static str,
    mac: &'static str,
}

const A1: Instance = Instance {
    name: "a1",
    node: "gw1",
    vlan: 100,
    network: "net1",
    ip: "192.168.10.11",
    mac: "02:00:00:0a:00:01",
};
const A2: Instance = Instance {
    name: "a2",
    node: "gw2",
    vlan: 100,
    network: "net1",
    ip: "192.168.10.12",
    mac: "02:00:00:0a:00:02",
};
const A3: Instance = Instance {
    name: "a3",
    node: "gw3",
    vlan: 100,
    network: "net1",
    ip: "192.168.10.13",
    mac: "02:00:00:0a:00:03",
};
/// net2 reuses net1's addresses, crossed over: b1 (on gw1) has a2's
/// address, b2 (on gw2) has a1's.
const B1: Instance = Instance {
    name: "b1",
    node: "gw1",
    vlan: 200,
    network: "net2",
    ip: "192.168.10.12",
    mac: "02:00:00:0b:00:01",
};
const B2: Instance = Instance {
    name: "b2",
    node: "gw2",
    vlan: 200,
    network: "net2",
    ip: "192.168.10.11",
    mac: "02:00:00:0b:00:02",
};

/// Network blue (192.168.20.0/24) on gw2, for network policies.
const C2: Instance = Instance {
    name: "c2",
    node: "gw2",
    vlan: 300,
    network: "blue",
    ip: "192.168.20.12",
    mac: "02:00:00:0c:00:02",
};

/// One overlay rig.
struct Rig {
    ns: TestNamespace<'static>,
    client: Client,
    lab: Lab,
    operator: ManagedProcess,
    /// Lab node -> its PhysicalRouter's name.
    routers: BTreeMap<&'static str, String>,
    /// Lab node -> its agent (None while stopped).
    agents: BTreeMap<&'static str, Option<ManagedProcess>>,
    kubeconfigs: BTreeMap<&'static str, std::path::PathBuf>,
    /// The agents' `--backend`.
    backend: &'static str,
}

fn apply_params() -> PatchParams {
    PatchParams::apply("e2e").force()
}

impl Rig {
    /// The three nodes on a fabric of `fabric_mtu`, these instances, and
    /// `extra` parts of the lab; the operator and one agent per node.
    /// The rig with the agents in the default backend (the XDP tier).
    async fn start(instances: &[Instance], fabric_mtu: u32, extra: fn(LabSpec) -> LabSpec) -> Rig {
        Self::start_on("auto", instances, fabric_mtu, extra).await
    }

    async fn start_on(
        backend: &'static str,
        instances: &[Instance],
        fabric_mtu: u32,
        extra: fn(LabSpec) -> LabSpec,
    ) -> Rig {
        let plane = ControlPlane::shared();
        let ns = plane.namespace("ovl").await.expect("namespace");
        let client = plane.client().await.expect("client");
        let mut spec = LabSpec::new().fabric_mtu(fabric_mtu);
        for node in NODES {
            spec = spec.node(
                NodeSpec::new(node)
                    .underlay(&format!("{}/24", underlay(node)))
                    .trunk("eth1"),
            );
        }
        for i in instances {
            spec = spec.instance(
                InstanceSpec::new(i.name, i.node, "eth1")
                    .vlan(i.vlan)
                    .ip(&format!("{}/24", i.ip))
                    .gateway(&gateway_of(i.ip))
                    .mac(i.mac),
            );
        }
        let lab = Lab::up(extra(spec)).expect("the lab");
        let operator_kubeconfig = plane
            .kubeconfig_with_role(ns.name(), "trunkline-operator", "operator")
            .await
            .expect("operator identity");
        let addr = free_local_addr();
        let operator = ManagedProcess::start(
            "operator",
            &workspace_binary("trunkline-operator", "trunkline-operator"),
            &[
                "--kubeconfig".into(),
                operator_kubeconfig.display().to_string(),
                "--metrics-addr".into(),
                addr.to_string(),
                "--debounce-ms".into(),
                "100".into(),
            ],
            &[("RUST_LOG", "info")],
            addr,
        );
        let mut rig = Rig {
            ns,
            client,
            lab,
            operator,
            routers: BTreeMap::new(),
            agents: BTreeMap::new(),
            kubeconfigs: BTreeMap::new(),
            backend,
        };
        for node in NODES {
            // Each node's dataplane has an identity of its own.
            let kubeconfig = plane
                .kubeconfig_with_role(rig.ns.name(), &format!("dataplane-{node}"), "dataplane")
                .await
                .expect("agent identity");
            rig.routers.insert(node, unique_name(node));
            rig.kubeconfigs.insert(node, kubeconfig);
            rig.start_agent(node);
            rig.apply_router(node).await;
        }
        rig
    }

    fn start_agent(&mut self, node: &'static str) {
        let addr = free_local_addr();
        let agent = ManagedProcess::start(
            &format!("dataplane-{node}"),
            &workspace_binary("trunkline-dataplane", "trunkline-dataplane"),
            &[
                "--node".into(),
                self.routers[node].clone(),
                "--kubeconfig".into(),
                self.kubeconfigs[node].display().to_string(),
                "--metrics-addr".into(),
                addr.to_string(),
                "--port-netns".into(),
                self.lab.netns_path(node).display().to_string(),
                "--backend".into(),
                self.backend.into(),
            ],
            &[("RUST_LOG", "info,trunkline_dataplane=debug")],
            addr,
        );
        self.agents.insert(node, Some(agent));
    }

    fn agent(&self, node: &str) -> &ManagedProcess {
        self.agents[node].as_ref().expect("agent running")
    }

    fn logs(&self) -> String {
        let mut out = format!("operator log: {}", self.operator.log().display());
        for (node, agent) in &self.agents {
            if let Some(agent) = agent {
                out.push_str(&format!("\n{node} agent log: {}", agent.log().display()));
            }
        }
        out
    }

    async fn apply_router(&self, node: &str) {
        let name = &self.routers[node];
        let router = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
            "metadata": {"name": name},
            "spec": {"physicalInterfaces": [{"name": "eth1"}],
                     "fabric": {"interface": "eth0", "underlayAddress": underlay(node)}}});
        Api::<PhysicalRouter>::all(self.client.clone())
            .patch(name, &apply_params(), &Patch::Apply(&router))
            .await
            .expect("router");
    }

    async fn apply_namespaced(&self, plural: &str, name: &str, object: Value) {
        let kind = object["kind"].as_str().expect("kind").to_owned();
        let resource = kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("trunkline.io", "v1alpha1", &kind),
            plural,
        );
        let api: Api<kube::core::DynamicObject> =
            Api::namespaced_with(self.client.clone(), self.ns.name(), &resource);
        api.patch(name, &apply_params(), &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("{kind} {name}: {e}"));
    }

    /// A network of `SUBNET` with extra spec fields.
    async fn apply_network(&self, name: &str, extra: Value) {
        let mut spec = json!({"subnets": [{"cidr": SUBNET, "gateway": GATEWAY}]});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        self.apply_namespaced(
            "virtualnetworks",
            name,
            json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
                   "metadata": {"name": name, "namespace": self.ns.name()}, "spec": spec}),
        )
        .await;
    }

    fn li_name(&self, i: &Instance) -> String {
        format!("{}-eth1-{}", self.routers[i.node], i.vlan)
    }

    /// The instance's VMI and logical interface.
    async fn apply_instance(&self, i: &Instance) {
        self.apply_namespaced(
            "virtualmachineinterfaces",
            i.name,
            json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
                   "metadata": {"name": i.name, "namespace": self.ns.name()},
                   "spec": {"virtualNetwork": i.network, "macAddress": i.mac, "ips": [{"address": i.ip}]}}),
        )
        .await;
        let name = self.li_name(i);
        let li = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
            "metadata": {"name": name},
            "spec": {"physicalRouter": self.routers[i.node], "physicalInterface": "eth1", "vlan": i.vlan,
                     "virtualMachineInterface": {"namespace": self.ns.name(), "name": i.name}}});
        Api::<LogicalInterface>::all(self.client.clone())
            .patch(&name, &apply_params(), &Patch::Apply(&li))
            .await
            .unwrap_or_else(|e| panic!("LogicalInterface {name}: {e}"));
    }

    /// Waits until every instance's logical interface, VMI and network is
    /// Ready (accepted and programmed on every node holding it).
    async fn wait_ready(&self, instances: &[Instance]) {
        for i in instances {
            let li = self.li_name(i);
            let lis: Api<LogicalInterface> = Api::all(self.client.clone());
            let vmis: Api<VirtualMachineInterface> =
                Api::namespaced(self.client.clone(), self.ns.name());
            let networks: Api<VirtualNetwork> =
                Api::namespaced(self.client.clone(), self.ns.name());
            eventually(&format!("{} Ready", i.name), READY, || async {
                let ready = |conditions: &[trunkline_api::status::Condition], generation| {
                    conditions.iter().any(|c| {
                        c.type_ == "Ready"
                            && c.status == "True"
                            && c.observed_generation == generation
                    })
                };
                let li = lis.get(&li).await.map_err(|e| e.to_string())?;
                let vmi = vmis.get(i.name).await.map_err(|e| e.to_string())?;
                let network = networks.get(i.network).await.map_err(|e| e.to_string())?;
                let states = [
                    ready(
                        &li.status.clone().unwrap_or_default().conditions,
                        li.metadata.generation,
                    ),
                    ready(
                        &vmi.status.clone().unwrap_or_default().conditions,
                        vmi.metadata.generation,
                    ),
                    ready(
                        &network.status.clone().unwrap_or_default().conditions,
                        network.metadata.generation,
                    ),
                ];
                if states.iter().all(|s| *s) {
                    Ok(())
                } else {
                    Err(format!(
                        "li/vmi/network ready: {states:?}; vmi status {:?}",
                        vmi.status
                    ))
                }
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        }
    }

    async fn ping_eventually(&self, from: &str, to: &str) {
        eventually(
            &format!("{from} pings {to}"),
            Duration::from_secs(45),
            || async {
                let (ok, out) = self.lab.ping(from, to, 2);
                if ok { Ok(out) } else { Err(out) }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
    }

    async fn vmi_label(&self, name: &str) -> u32 {
        let vmi = Api::<VirtualMachineInterface>::namespaced(self.client.clone(), self.ns.name())
            .get(name)
            .await
            .expect("vmi");
        vmi.status
            .and_then(|s| s.mpls_label)
            .expect("a routed label")
    }

    async fn network_status(&self, name: &str) -> trunkline_api::VirtualNetworkStatus {
        Api::<VirtualNetwork>::namespaced(self.client.clone(), self.ns.name())
            .get(name)
            .await
            .expect("network")
            .status
            .expect("status")
    }

    fn metric(&self, node: &str, sample: &str) -> f64 {
        self.agent(node).metric(sample).unwrap_or(0.0)
    }

    fn remote_vmis(&self, node: &str) -> f64 {
        self.metric(
            node,
            "trunkline_dataplane_objects{kind=\"RemoteVirtualMachineInterface\"}",
        )
    }
}

/// TCP from `from` to `to` (where instance `server` listens): the payload
/// arrives whole.
fn tcp_ok(rig: &Rig, from: &str, server: &str, to: &str, port: u16) {
    let payload = format!("over-the-overlay-{from}-{server}");
    let received = rig
        .lab
        .tcp(from, server, to, port, &payload)
        .unwrap_or_else(|e| panic!("TCP {from} -> {to}: {e}\n{}", rig.logs()));
    assert_eq!(received, payload, "TCP {from} -> {server} ({to})");
}

/// Instances of one network on three nodes ping and talk TCP with each
/// other; a second network with the same addresses stays apart; the
/// nodes' own traffic on the fabric keeps working; the bytes on the fabric
/// are what the encapsulation promises, as tshark decodes them.
async fn three_nodes(encapsulation: &str, backend: &'static str) {
    let instances = [A1, A2, A3, B1, B2];
    let rig = Rig::start_on(backend, &instances, 1500, |s| s).await;
    let extra = match encapsulation {
        "VXLAN" => json!({"encapsulation": ["VXLAN"]}),
        _ => json!({}),
    };
    rig.apply_network("net1", extra.clone()).await;
    rig.apply_network("net2", extra).await;
    for i in &instances {
        rig.apply_instance(i).await;
    }
    rig.wait_ready(&instances).await;
    let status = rig.network_status("net1").await;
    assert_eq!(
        status.encapsulation.first().map(|e| format!("{e:?}")),
        Some(match encapsulation {
            "VXLAN" => "Vxlan".to_owned(),
            _ => "MplsOverUdp".to_owned(),
        }),
        "{status:?}"
    );

    for (from, to) in [("a1", A2.ip), ("a2", A3.ip), ("a3", A1.ip)] {
        rig.ping_eventually(from, to).await;
    }
    tcp_ok(&rig, "a1", "a3", A3.ip, 5101);
    tcp_ok(&rig, "a3", "a2", A2.ip, 5102);

    // The bytes on the fabric: a2 -> a1 pings cross from gw2 to gw1.
    let (filter, decode): (&str, Vec<String>) = match encapsulation {
        "VXLAN" => ("udp dst port 4789 and src host 10.2.0.2", vec![]),
        _ => (
            "udp dst port 6635 and src host 10.2.0.2",
            vec![MPLS_OVER_UDP.to_owned()],
        ),
    };
    let capture = rig
        .lab
        .capture(
            rig.lab.fabric(),
            "br0",
            filter,
            Limit::packets(2).within(Duration::from_secs(20)),
        )
        .expect("tshark capture");
    let (ok, out) = rig.lab.ping("a2", A1.ip, 3);
    assert!(ok, "{out}");
    let pcap = capture.finish().expect("capture");
    let decode: Vec<&str> = decode.iter().map(String::as_str).collect();
    let packets = pcap
        .fields(
            &[
                "ip.src",
                "ip.dst",
                "udp.srcport",
                "udp.dstport",
                "mpls.label",
                "vxlan.vni",
                "icmp.type",
            ],
            &decode,
        )
        .expect("tshark decodes our packets");
    assert!(
        !packets.is_empty(),
        "{}",
        pcap.summary(&decode).unwrap_or_default()
    );
    let packet = &packets[0];
    assert_eq!(
        packet.first("ip.src"),
        Some("10.2.0.2"),
        "outer source: gw2's underlay"
    );
    assert_eq!(
        packet.first("ip.dst"),
        Some("10.2.0.1"),
        "outer destination: gw1's underlay"
    );
    assert_eq!(packet.last("ip.src"), Some(A2.ip), "inner source");
    assert_eq!(packet.last("ip.dst"), Some(A1.ip), "inner destination");
    let sport: u32 = packet
        .first("udp.srcport")
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    assert!(
        (49152..=65535).contains(&sport),
        "flow-hash source port {sport}"
    );
    assert_eq!(
        packet.first("icmp.type"),
        Some("8"),
        "the inner echo request"
    );
    match encapsulation {
        "VXLAN" => {
            let vni = status.vni.expect("a VNI");
            assert_eq!(packet.first("udp.dstport"), Some("4789"));
            assert_eq!(packet.first("vxlan.vni"), Some(vni.to_string().as_str()));
        }
        _ => {
            let label = rig.vmi_label("a1").await;
            assert_eq!(packet.first("udp.dstport"), Some("6635"));
            assert_eq!(
                packet.first("mpls.label"),
                Some(label.to_string().as_str()),
                "a1's routed label"
            );
        }
    }

    // net2 reuses the addresses: b1 (on gw1) reaches b2 (on gw2) at a1's
    // address, and nothing of it reaches a1 (net1, on gw1 too).
    let a1_tx = format!(
        "trunkline_dataplane_vmi_packets_total{{vmi=\"{}/a1\",direction=\"tx\"}}",
        rig.ns.name()
    );
    let before = rig.metric("gw1", &a1_tx);
    rig.ping_eventually("b1", B2.ip).await;
    tcp_ok(&rig, "b1", "b2", B2.ip, 5202);
    assert_eq!(
        rig.metric("gw1", &a1_tx),
        before,
        "net2's traffic to a1's address never reached a1"
    );

    // The nodes' own traffic on the fabric is untouched.
    let (ok, out) = rig.lab.ping("gw1", &underlay("gw2"), 2);
    assert!(ok, "gw1's host reaches gw2's over the fabric: {out}");
    tcp_ok(&rig, "gw3", "gw1", &underlay("gw1"), 5203);

    // Nothing was dropped for the overlay's sake.
    for node in NODES {
        for reason in [
            "tunnel_unknown_peer",
            "tunnel_unknown_label",
            "tunnel_unknown_vni",
            "tunnel_malformed",
            "tunnel_peer_not_in_network",
        ] {
            assert_eq!(
                rig.metric(
                    node,
                    &format!("trunkline_dataplane_drops_total{{reason=\"{reason}\"}}")
                ),
                0.0,
                "{node} dropped {reason}"
            );
        }
    }

    // With the XDP tier, the kernel carried the traffic: it encapsulated on
    // one node and decapsulated on the other.
    let in_kernel = "trunkline_dataplane_xdp_tier_frames_total{decision=\"kernel\"}";
    for node in NODES {
        let decided = rig.metric(node, in_kernel);
        if backend == "af-xdp" {
            assert_eq!(decided, 0.0, "{node}: no XDP tier with --backend af-xdp");
        } else {
            assert!(decided > 0.0, "{node}: the XDP tier decided no frame");
        }
    }
}

#[tokio::test]
async fn instances_on_three_nodes_talk_over_mpls_over_udp() {
    three_nodes("MPLSoUDP", "auto").await;
}

#[tokio::test]
async fn instances_on_three_nodes_talk_over_vxlan() {
    three_nodes("VXLAN", "auto").await;
}

/// The same traffic with every frame decided in userspace (no XDP tier):
/// the AF_XDP-only mode keeps its run.
#[tokio::test]
async fn instances_on_three_nodes_talk_over_mpls_over_udp_through_af_xdp_only() {
    three_nodes("MPLSoUDP", "af-xdp").await;
}

/// In a network that only bridges, a broadcast from an instance on gw1
/// reaches the network's instance on gw2 (flooded over the tunnel) and no
/// instance of another network; and the instances find each other by ARP
/// alone (no proxy), so they ping.
#[tokio::test]
async fn a_broadcast_in_an_l2_network_reaches_its_instances_on_other_nodes_and_nowhere_else() {
    let c1 = Instance {
        name: "c1",
        node: "gw1",
        vlan: 300,
        network: "net3",
        ip: "192.168.10.31",
        mac: "02:00:00:0c:00:01",
    };
    let c2 = Instance {
        name: "c2",
        node: "gw2",
        vlan: 300,
        network: "net3",
        ip: "192.168.10.32",
        mac: "02:00:00:0c:00:02",
    };
    let instances = [c1, c2, A2];
    let rig = Rig::start(&instances, 1500, |s| s).await;
    rig.apply_network("net3", json!({"forwardingMode": "L2"}))
        .await;
    rig.apply_network("net1", json!({})).await;
    for i in &instances {
        rig.apply_instance(i).await;
    }
    rig.wait_ready(&instances).await;
    rig.ping_eventually("c1", c2.ip).await;

    // A broadcast to UDP 9999 from c1: c2 (net3, on gw2) receives it, a2
    // (net1, on gw2 too) does not.
    let in_c2 = rig
        .lab
        .capture(
            "c2",
            "eth0",
            "udp dst port 9999",
            Limit::packets(1).within(Duration::from_secs(20)),
        )
        .expect("capture on c2");
    let in_a2 = rig
        .lab
        .capture(
            "a2",
            "eth0",
            "udp dst port 9999",
            Limit::duration(Duration::from_secs(6)),
        )
        .expect("capture on a2");
    let sent = rig.lab.sh(
        "c1",
        "for i in 1 2 3; do echo hello | socat - UDP-DATAGRAM:255.255.255.255:9999,broadcast 2>/dev/null || printf hello | nc -u -b -w0 255.255.255.255 9999; sleep 0.2; done",
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let c2_packets = in_c2
        .finish()
        .expect("capture")
        .fields(&["ip.src", "eth.dst"], &[])
        .expect("decode");
    assert!(
        !c2_packets.is_empty(),
        "the broadcast reached c2 on another node"
    );
    assert_eq!(c2_packets[0].first("ip.src"), Some(c1.ip));
    assert_eq!(c2_packets[0].first("eth.dst"), Some("ff:ff:ff:ff:ff:ff"));
    // a2 saw nothing during the whole window (the c2 capture proves the
    // broadcast crossed the fabric before it closed).
    let a2_packets = in_a2
        .stop()
        .expect("capture")
        .fields(&["ip.src"], &[])
        .expect("decode");
    assert!(
        a2_packets.is_empty(),
        "net1's a2 saw net3's broadcast: {a2_packets:?}"
    );
    assert!(
        rig.metric("gw1", "trunkline_dataplane_frames_total{verdict=\"flood\"}") >= 1.0,
        "gw1 flooded"
    );
}

/// Deleting a remote instance's logical interface withdraws its routes on
/// every node, and restoring it brings them back; restarting one node's
/// agent does not disturb traffic between the other two.
#[tokio::test]
async fn routes_follow_the_logical_interface_and_one_agent_restart_disturbs_no_other_node() {
    let instances = [A1, A2, A3];
    let mut rig = Rig::start(&instances, 1500, |s| s).await;
    rig.apply_network("net1", json!({})).await;
    for i in &instances {
        rig.apply_instance(i).await;
    }
    rig.wait_ready(&instances).await;
    rig.ping_eventually("a1", A2.ip).await;
    // a2 (egress open) reaches a3 (not policed) over the overlay.
    rig.ping_eventually("a2", A3.ip).await;
    assert_eq!(rig.remote_vmis("gw1"), 2.0);

    // Withdraw a2: gone from gw1's and gw3's tables, and unreachable.
    Api::<LogicalInterface>::all(rig.client.clone())
        .delete(&rig.li_name(&A2), &DeleteParams::default())
        .await
        .expect("delete");
    for node in ["gw1", "gw3"] {
        eventually(
            &format!("{node} withdraws a2"),
            Duration::from_secs(30),
            || async {
                let n = rig.remote_vmis(node);
                if n == 1.0 {
                    Ok(())
                } else {
                    Err(format!("{n} remote VMIs"))
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    }
    // gw2, where a2 was local, drops it too (until then a frame flooded
    // to it still reaches a2); then a2 is unreachable. Each node's
    // withdrawal is its own, so this waits for all of them, then for the
    // pings to fail.
    eventually("gw2 drops a2", Duration::from_secs(30), || async {
        let n = rig.metric(
            "gw2",
            "trunkline_dataplane_objects{kind=\"VirtualMachineInterface\"}",
        );
        if n == 0.0 {
            Ok(())
        } else {
            Err(format!("{n} VMIs"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    eventually("a2 unreachable", Duration::from_secs(30), || async {
        match rig.lab.ping("a1", A2.ip, 2) {
            (false, _) => Ok(()),
            (true, out) => Err(format!("a2 withdrawn, yet reachable: {out}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    rig.apply_instance(&A2).await;
    rig.wait_ready(&[A2]).await;
    rig.ping_eventually("a1", A2.ip).await;

    // Restart gw2's agent (SIGTERM, then start again) while a1 pings a3
    // every 100 ms: not one reply is lost.
    let started = Instant::now();
    let lab_ns = rig.lab.namespace("a1");
    let ping = std::thread::spawn(move || {
        std::process::Command::new("ip")
            .args([
                "netns", "exec", &lab_ns, "ping", "-c", "60", "-i", "0.1", "-W", "1", A3.ip,
            ])
            .output()
            .expect("ping runs")
    });
    std::thread::sleep(Duration::from_millis(500));
    if let Some(mut agent) = rig.agents.get_mut("gw2").and_then(Option::take) {
        agent.stop(Duration::from_secs(10));
    }
    rig.start_agent("gw2");
    rig.agent("gw2").wait_ready(READY).await;
    let out = ping.join().expect("ping thread");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("60 received") && started.elapsed() < Duration::from_secs(60),
        "a1 -> a3 lost packets while gw2's agent restarted:\n{text}"
    );
    rig.ping_eventually("a1", A2.ip).await;
}

/// A Linux VXLAN device (this kernel's own VTEP, an independent
/// implementation) declared as an ExternalVTEP of net1 exchanges traffic
/// with instances behind two trunkline nodes.
#[tokio::test]
async fn a_kernel_vxlan_vtep_is_a_peer_of_the_network() {
    const VNI: u32 = 7001;
    const VTEP_MAC: &str = "02:00:00:77:00:01";
    let instances = [A1, A3];
    let rig = Rig::start(&instances, 1500, |s| {
        s.vtep(
            VtepSpec::new("vtep1", "10.2.0.100/24", VNI)
                .remote("10.2.0.1")
                .remote("10.2.0.2")
                .remote("10.2.0.3")
                .ip("192.168.10.50/24")
                .mac(VTEP_MAC),
        )
    })
    .await;
    rig.apply_network("net1", json!({"vni": VNI})).await;
    for i in &instances {
        rig.apply_instance(i).await;
    }
    let vtep = unique_name("vtep1");
    let object = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "ExternalVTEP",
        "metadata": {"name": vtep},
        "spec": {"address": "10.2.0.100", "encapsulation": "VXLAN",
                 "networks": [{"namespace": rig.ns.name(), "name": "net1",
                               "endpoints": [{"macAddress": VTEP_MAC, "ips": ["192.168.10.50"]}]}]}});
    let api: Api<kube::core::DynamicObject> = Api::all_with(
        rig.client.clone(),
        &kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("trunkline.io", "v1alpha1", "ExternalVTEP"),
            "externalvteps",
        ),
    );
    api.patch(&vtep, &apply_params(), &Patch::Apply(&object))
        .await
        .expect("ExternalVTEP");
    rig.wait_ready(&instances).await;
    eventually("the ExternalVTEP is Ready", READY, || async {
        let object = api.get(&vtep).await.map_err(|e| e.to_string())?;
        let ready = object.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        if ready {
            Ok(())
        } else {
            Err(format!("{:?}", object.data["status"]))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));

    let capture = rig
        .lab
        .capture(
            rig.lab.fabric(),
            "br0",
            "udp dst port 4789 and src host 10.2.0.100",
            Limit::packets(1).within(Duration::from_secs(30)),
        )
        .expect("capture");
    for from in ["a1", "a3"] {
        rig.ping_eventually(from, "192.168.10.50").await;
    }
    rig.ping_eventually("vtep1", A1.ip).await;
    rig.ping_eventually("vtep1", A3.ip).await;
    tcp_ok(&rig, "vtep1", "a3", A3.ip, 5301);
    let packets = capture
        .finish()
        .expect("capture")
        .fields(&["vxlan.vni"], &[])
        .expect("decode");
    assert_eq!(
        packets.first().and_then(|p| p.first("vxlan.vni")),
        Some(VNI.to_string().as_str()),
        "the kernel sends the network's VNI"
    );
}

/// A packet too big for the tunnel gets the ICMP error path MTU discovery
/// needs: a TCP transfer with the instances' full MSS completes across a
/// fabric whose MTU is smaller than theirs.
#[tokio::test]
async fn path_mtu_discovery_works_across_a_smaller_fabric_mtu() {
    let instances = [A1, A2];
    let rig = Rig::start(&instances, 1400, |s| s).await;
    rig.apply_network("net1", json!({})).await;
    for i in &instances {
        rig.apply_instance(i).await;
    }
    rig.wait_ready(&instances).await;
    rig.ping_eventually("a1", A2.ip).await;
    // 200 KB from a1 to a2: full-size segments (1500-byte packets) do not
    // fit 1400 - 20 - 8 - 4, the gateway says so, the sender adapts.
    let listener = rig.lab.namespace("a2");
    let server = std::thread::spawn(move || {
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &listener,
                "sh",
                "-c",
                "timeout 30 nc -l -N 5401 | wc -c",
            ])
            .output()
            .expect("nc")
    });
    eventually("a2 listens", Duration::from_secs(10), || async {
        let out = rig.lab.sh("a2", "ss -ltn | grep -q ':5401 '");
        if out.status.success() {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    })
    .await
    .expect("listener");
    let sent = rig.lab.sh(
        "a1",
        &format!(
            "head -c 200000 /dev/zero | timeout 30 nc -N -w 5 {} 5401",
            A2.ip
        ),
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let received = server.join().expect("server");
    assert_eq!(
        String::from_utf8_lossy(&received.stdout).trim(),
        "200000",
        "the whole transfer arrived\n{}",
        rig.logs()
    );
    let route = rig.lab.sh("a1", &format!("ip route get {}", A2.ip));
    let route = String::from_utf8_lossy(&route.stdout).into_owned();
    assert!(
        route.contains("mtu 1368"),
        "a1 learnt the path MTU: {route}"
    );
}

/// A virtual gateway on gw1 gives net1 public access on every node: a3,
/// on gw3, reaches the public host through gw1, and back. Tunnel packets
/// from a non-peer or with an unknown label are counted drops.
#[tokio::test]
async fn a_virtual_gateway_on_one_node_serves_the_network_on_every_node() {
    let instances = [A1, A3];
    let rig = Rig::start(&instances, 1500, |s| {
        s.host(
            FabricHostSpec::new("pub")
                .ip("10.2.0.253/24")
                .route(SUBNET, "10.2.0.1"),
        )
    })
    .await;
    rig.apply_network("net1", json!({})).await;
    for i in &instances {
        rig.apply_instance(i).await;
    }
    let vgw = unique_name("net1-public");
    let object = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualGateway", "metadata": {"name": vgw},
        "spec": {"interface": "vgw", "virtualNetwork": {"namespace": rig.ns.name(), "name": "net1"},
                 "subnets": [SUBNET], "nodes": [rig.routers["gw1"]]}});
    Api::<trunkline_api::VirtualGateway>::all(rig.client.clone())
        .patch(&vgw, &apply_params(), &Patch::Apply(&object))
        .await
        .expect("VirtualGateway");
    rig.wait_ready(&instances).await;
    rig.ping_eventually("a1", "10.2.0.253").await;
    rig.ping_eventually("a3", "10.2.0.253").await;
    let (ok, out) = rig.lab.ping("pub", A3.ip, 2);
    assert!(ok, "the public host reaches a3 on gw3 through gw1: {out}");
    tcp_ok(&rig, "pub", "a3", A3.ip, 5501);

    // Isolation: tunnel packets from an address that is not a peer (the
    // public host), and from a peer with a label that names nothing, are
    // dropped and counted, never delivered. Crafted by scapy.
    let label = rig.vmi_label("a1").await;
    let before = (
        rig.metric(
            "gw1",
            "trunkline_dataplane_drops_total{reason=\"tunnel_unknown_peer\"}",
        ),
        rig.metric(
            "gw1",
            "trunkline_dataplane_drops_total{reason=\"tunnel_unknown_label\"}",
        ),
    );
    let craft = |from: &str, src: &str, label: u32| {
        let script = format!(
            "from scapy.all import *\n\
             load_contrib('mpls')\n\
             inner = IP(src='{}', dst='{}')/ICMP()\n\
             send(IP(src='{src}', dst='10.2.0.1')/UDP(sport=50000, dport=6635)/MPLS(label={label}, s=1, ttl=64)/inner, count=3, verbose=0)\n",
            A3.ip, A1.ip
        );
        let out = rig.lab.exec(from, &["/usr/bin/python3", "-c", &script]);
        assert!(
            out.status.success(),
            "scapy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    craft("pub", "10.2.0.253", label);
    craft("gw3", "10.2.0.3", 999_999);
    eventually("gw1 counts both", Duration::from_secs(20), || async {
        let now = (
            rig.metric(
                "gw1",
                "trunkline_dataplane_drops_total{reason=\"tunnel_unknown_peer\"}",
            ),
            rig.metric(
                "gw1",
                "trunkline_dataplane_drops_total{reason=\"tunnel_unknown_label\"}",
            ),
        );
        if now.0 >= before.0 + 3.0 && now.1 >= before.1 + 3.0 {
            Ok(())
        } else {
            Err(format!("{before:?} -> {now:?}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
}

/// Security groups across nodes: a1's group `db` (on gw1) allows TCP 5432
/// only from the members of group `app`. a2 (on gw2, in `app`) connects;
/// a3 (on gw3, in no group) is dropped on gw1 and counted, and so is a2 on
/// another port; once a3 joins `app`, gw1 lets it in too (it learns the
/// membership from the remote VMI's spec, labelled for every node holding
/// the network).
#[tokio::test]
async fn a_rule_naming_a_remote_group_matches_its_members_on_other_nodes() {
    let instances = [A1, A2, A3];
    let rig = Rig::start(&instances, 1500, |s| s).await;
    rig.apply_network("net1", json!({})).await;
    let group = |name: &str, spec: Value| {
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "SecurityGroup",
               "metadata": {"name": name, "namespace": rig.ns.name()}, "spec": spec})
    };
    rig.apply_namespaced(
        "securitygroups",
        "db",
        group(
            "db",
            json!({"ingress": [{"protocol": "TCP", "ports": {"min": 5432, "max": 5432},
                                "remoteGroup": "app"}],
                   "egress": [{}]}),
        ),
    )
    .await;
    rig.apply_namespaced(
        "securitygroups",
        "app",
        group("app", json!({"egress": [{}]})),
    )
    .await;
    let with_groups = |i: &Instance, groups: &[&str]| {
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
               "metadata": {"name": i.name, "namespace": rig.ns.name()},
               "spec": {"virtualNetwork": i.network, "macAddress": i.mac,
                        "ips": [{"address": i.ip}], "securityGroups": groups}})
    };
    for i in &instances {
        rig.apply_instance(i).await;
    }
    rig.apply_namespaced("virtualmachineinterfaces", "a1", with_groups(&A1, &["db"]))
        .await;
    rig.apply_namespaced("virtualmachineinterfaces", "a2", with_groups(&A2, &["app"]))
        .await;
    rig.wait_ready(&instances).await;
    // a2 (egress open) reaches a3 (not policed) over the overlay.
    rig.ping_eventually("a2", A3.ip).await;

    let tcp = |from: &str, port: u16| matches!(rig.lab.tcp(from, "a1", A1.ip, port, "grouped"), Ok(got) if got == "grouped");
    let denied = || {
        rig.metric(
            "gw1",
            "trunkline_dataplane_drops_total{reason=\"policy_ingress_denied\"}",
        )
    };
    // a3 is no member of `app`: refused on gw1, counted there.
    let before = denied();
    eventually(
        "gw1 refuses a3 on TCP 5432 and counts it",
        Duration::from_secs(60),
        || async {
            if !tcp("a3", 5432) && denied() > before {
                Ok(())
            } else {
                Err(format!("denied {before} -> {}", denied()))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    // a2 is: its connection passes, replies included, over the overlay.
    eventually(
        "a2 reaches a1 on TCP 5432",
        Duration::from_secs(30),
        || async {
            if tcp("a2", 5432) {
                Ok(())
            } else {
                Err("refused".to_owned())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    // Only on the rule's port.
    let before = denied();
    assert!(!tcp("a2", 5433), "a2 on another port");
    assert!(denied() > before, "counted on gw1");
    // a3 joins `app`: gw1 lets it in.
    rig.apply_namespaced("virtualmachineinterfaces", "a3", with_groups(&A3, &["app"]))
        .await;
    eventually(
        "a3, now in app, reaches a1 on TCP 5432",
        Duration::from_secs(60),
        || async {
            if tcp("a3", 5432) {
                Ok(())
            } else {
                Err("refused".to_owned())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
}

/// A condition of a namespaced trunkline object at its current
/// generation: (status, reason, message).
async fn condition(
    rig: &Rig,
    kind: &str,
    plural: &str,
    name: &str,
    type_: &str,
) -> Option<(String, String, String)> {
    let resource = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("trunkline.io", "v1alpha1", kind),
        plural,
    );
    let api: Api<kube::core::DynamicObject> =
        Api::namespaced_with(rig.client.clone(), rig.ns.name(), &resource);
    let object = api.get(name).await.ok()?;
    let status = object.data.get("status")?;
    if status.get("observedGeneration").and_then(|g| g.as_i64()) != object.metadata.generation {
        return None;
    }
    let c = status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    Some((text("status"), text("reason"), text("message")))
}

/// Network policies across nodes: net1's a1 on gw1 and blue's c2 on gw2,
/// connected by a policy allowing TCP 22 one way (net1 to blue). gw1
/// decides a flow's first packet and tunnels it to gw2, which decides it
/// again by the link it was opened on; the replies pass both; TCP 80 and
/// ICMP are dropped and counted on gw1; c2 opening toward a1 is refused by
/// gw2 (the rule is one way) and counted there. A connection's established
/// packets are decided by the XDP tier at both ends (flow stage hits on
/// gw1 and gw2: a1's packets sent by gw1 and received by gw2, c2's replies
/// the other way).
#[tokio::test]
async fn two_networks_on_different_nodes_connected_by_a_policy_talk_on_one_port_only() {
    let instances = [A1, C2];
    let rig = Rig::start(&instances, 1500, |s| s).await;
    let ns = rig.ns.name().to_owned();
    rig.apply_network("net1", json!({"networkPolicies": ["ssh"]}))
        .await;
    rig.apply_network(
        "blue",
        json!({"subnets": [{"cidr": "192.168.20.0/24", "gateway": "192.168.20.1"}],
               "networkPolicies": ["ssh"]}),
    )
    .await;
    for i in &instances {
        rig.apply_instance(i).await;
    }
    rig.wait_ready(&instances).await;
    rig.ping_eventually("a1", "192.168.10.1").await;
    rig.ping_eventually("c2", "192.168.20.1").await;
    // No policy object yet: nothing connects them.
    let tcp = |from: &str, server: &str, to: &str, port: u16| matches!(rig.lab.tcp(from, server, to, port, "linked"), Ok(got) if got == "linked");
    assert!(!tcp("a1", "c2", C2.ip, 22), "no policy, no route");

    rig.apply_namespaced(
        "virtualnetworkpolicies",
        "ssh",
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetworkPolicy",
               "metadata": {"name": "ssh", "namespace": ns},
               "spec": {"rules": [{"action": "Allow", "protocol": "TCP",
                                   "ports": {"min": 22, "max": 22},
                                   "source": "net1", "destination": "blue",
                                   "direction": "OneWay"}]}}),
    )
    .await;
    // Programmed on both nodes (each holds one of the networks).
    eventually(
        "VirtualNetworkPolicy ssh Programmed on gw1 and gw2, and Ready",
        READY,
        || async {
            let programmed = condition(
                &rig,
                "VirtualNetworkPolicy",
                "virtualnetworkpolicies",
                "ssh",
                "Programmed",
            )
            .await;
            let ready = condition(
                &rig,
                "VirtualNetworkPolicy",
                "virtualnetworkpolicies",
                "ssh",
                "Ready",
            )
            .await;
            match (&programmed, &ready) {
                (Some(p), Some(r))
                    if p.0 == "True"
                        && r.0 == "True"
                        && p.2.contains(&rig.routers["gw1"])
                        && p.2.contains(&rig.routers["gw2"]) =>
                {
                    Ok(())
                }
                _ => Err(format!("Programmed {programmed:?}, Ready {ready:?}")),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));

    // TCP 22 net1 -> blue across the overlay, replies included.
    eventually(
        "a1 (gw1) reaches c2 (gw2) on TCP 22",
        Duration::from_secs(60),
        || async {
            if tcp("a1", "c2", C2.ip, 22) {
                Ok(())
            } else {
                Err("refused".to_owned())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    // Established connections stay in the XDP tier at both ends (the
    // default backend): past a connection's first packets (userspace's,
    // which decide its flow and have it mirrored), a1's packets cross the
    // link by the flow map's entries on gw1 and go into the tunnel there,
    // and gw2 delivers them by its own entry (found by the link of their
    // source's route); c2's replies the other way. Each is counted as a
    // flow stage hit (nothing else here has a flow stage: no SNAT, no
    // security group).
    let hits = "trunkline_dataplane_xdp_tier_flow_hits_total";
    let hits_before = [rig.metric("gw1", hits), rig.metric("gw2", hits)];
    eventually(
        "established TCP 22 between a1 (gw1) and c2 (gw2) decided in the XDP tier of both nodes",
        Duration::from_secs(60),
        || async {
            let ok = tcp("a1", "c2", C2.ip, 22);
            let now = [rig.metric("gw1", hits), rig.metric("gw2", hits)];
            if ok && now[0] >= hits_before[0] + 2.0 && now[1] >= hits_before[1] + 2.0 {
                Ok(())
            } else {
                Err(format!(
                    "TCP passed: {ok}, flow stage hits gw1 {} -> {}, gw2 {} -> {}",
                    hits_before[0], now[0], hits_before[1], now[1]
                ))
            }
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}\n{}",
            rig.agent("gw1").metrics(),
            rig.agent("gw2").metrics()
        )
    });
    eprintln!(
        "flow stage hits: gw1 {} -> {}, gw2 {} -> {}",
        hits_before[0],
        rig.metric("gw1", hits),
        hits_before[1],
        rig.metric("gw2", hits)
    );
    let flows = |node: &str, from: &str, to: &str, rule: &str, action: &str| {
        let policy = if rule == "default-deny" {
            String::new()
        } else {
            format!("{ns}/ssh")
        };
        rig.metric(
            node,
            &format!(
                "trunkline_dataplane_network_policy_flows_total{{from=\"{ns}/{from}\",to=\"{ns}/{to}\",policy=\"{policy}\",rule=\"{rule}\",action=\"{action}\"}}"
            ),
        )
    };
    // Decided on both nodes: the sender by its link, the receiver again.
    assert!(
        flows("gw1", "net1", "blue", "0", "Allow") >= 1.0,
        "{}",
        rig.agent("gw1").metrics()
    );
    assert!(
        flows("gw2", "net1", "blue", "0", "Allow") >= 1.0,
        "{}",
        rig.agent("gw2").metrics()
    );
    let denied = |node: &str| {
        rig.metric(
            node,
            "trunkline_dataplane_drops_total{reason=\"network_policy_denied\"}",
        )
    };
    // TCP 80 and ICMP: no rule, dropped on gw1 (the sender) and counted.
    let before = denied("gw1");
    assert!(!tcp("a1", "c2", C2.ip, 80), "TCP 80 has no rule");
    let (ok, out) = rig.lab.ping("a1", C2.ip, 1);
    assert!(!ok, "ICMP has no rule: {out}");
    assert!(
        denied("gw1") >= before + 2.0,
        "{}",
        rig.agent("gw1").metrics()
    );
    assert!(flows("gw1", "net1", "blue", "default-deny", "Deny") >= 2.0);
    // The rule is one way: c2 opening toward a1 is refused by gw2, which
    // sends nothing over the overlay for it.
    let before = denied("gw2");
    assert!(!tcp("c2", "a1", A1.ip, 22), "blue -> net1 is not allowed");
    assert!(denied("gw2") > before, "{}", rig.agent("gw2").metrics());
    assert!(flows("gw2", "blue", "net1", "default-deny", "Deny") >= 1.0);
    // The allowed direction still works after the refusals.
    assert!(tcp("a1", "c2", C2.ip, 22), "a1 -> c2 on 22 again");
    // Nothing arrived at either node from an unknown source.
    for node in ["gw1", "gw2"] {
        assert_eq!(
            rig.metric(
                node,
                "trunkline_dataplane_drops_total{reason=\"network_policy_unknown_source\"}"
            ),
            0.0
        );
    }
}
