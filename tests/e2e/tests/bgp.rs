//! L3VPN with a DC gateway (seed 003), end to end: the cluster's BGP
//! speaker (`trunkline-bgp`, running and supervising GoBGP's gobgpd) peers
//! with FRR's bgpd, an independent implementation, running in the lab's
//! DC-gateway namespace.
//!
//! ```text
//!   ctl 10.3.0.100 (trunkline-bgp's gobgpd, AS 64512)     dcgw 10.3.0.200 (FRR bgpd AS 65001 +
//!            |          eBGP VPNv4                  |      the lab's BPF MPLSoUDP decapsulator) -- ext 203.0.113.10
//!   =========+========= fabric bridge 10.3.0.0/24 ====+==========
//!       eth0 .1 |                          eth0 .2 |
//!        [gw1] agent                        [gw2] agent        (one operator)
//!   v1 (100) 192.168.40.11                 v2 (100) 192.168.40.12     network "vpn":
//!       export target:64512:100, import target:64512:200
//! ```
//!
//! A third test puts both nodes' trunks on one switch: v1 is bound on
//! both, members of a gateway HA group, and its route follows the active
//! member. A fourth exchanges VPNv6 routes (RFC 4659) over the same IPv4
//! session: an IPv6 VMI (`v6 fd00:40::11`, network "vpn6") exported with
//! an IPv4-mapped next hop, FRR's `2001:db8:ff::/48` (label 1001) installed
//! in the network's VRF, an IPv6 ping both ways to a host behind the DC
//! gateway. A fifth adds a VirtualGateway to "vpn" on gw1: its subnet and
//! route are exported with the network's routed label, and the DC
//! gateway's host reaches an address behind gw1's host through it. A
//! sixth checks the encapsulation community FRR reads: ET:13 for "vpn",
//! ET:8 (label = VNI) for a VXLAN-only network. A seventh gives a
//! VXLAN-only network ("vx", `vx1 192.168.41.13` on gw2) a virtual gateway
//! too: both are exported ET:8 with the VNI, and a kernel VXLAN device in
//! the DC gateway's namespace reaches the instance and the vgw that way.
//!
//! FRR shows our routes with their RD, RTs, labels and next hops; it
//! advertises a default route (target:64512:200, label 1000) that the
//! network's VRF installs (as its two halves 0.0.0.0/1 and 128.0.0.0/1:
//! FRR 8.4's static VPN `network` statement refuses 0.0.0.0/0 itself); an instance reaches the host behind the DC
//! gateway over MPLS over UDP and back; killing gobgpd brings the routes
//! back in FRR without help; a wrong AS number and an unreachable peer get
//! a clear status. This kernel has no VRF module: FRR's side is configured
//! under `address-family ipv4 vpn` (a static VPN route and a route-map).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use trunkline_api::{
    GatewayHAGroup, LogicalInterface, PhysicalRouter, VirtualMachineInterface, VirtualNetwork,
};
use trunkline_test_support::lab::{DcGatewayRoute, DcGatewaySpec, Frr, SwitchSpec, TrunkSpec};
use trunkline_test_support::{
    ControlPlane, FabricHostSpec, InstanceSpec, Lab, LabSpec, ManagedProcess, NodeSpec,
    TestNamespace, child_named, eventually, free_local_addr, http_get, unique_name,
    workspace_binary,
};

const READY: Duration = Duration::from_secs(120);
const NODES: [&str; 2] = ["gw1", "gw2"];
/// The speaker's namespace on the fabric (its router ID).
const CTL: &str = "10.3.0.100";
/// The DC gateway (FRR) and the host behind it.
const DCGW: &str = "10.3.0.200";
const EXT: &str = "203.0.113.10";
const OUR_AS: u32 = 64512;
const FRR_AS: u32 = 65001;
/// The label FRR gives its default route.
const FRR_LABEL: u32 = 1000;
/// The IPv6 prefix FRR advertises as a VPNv6 route, and its label.
const FRR_V6_PREFIX: &str = "2001:db8:ff::/48";
const FRR_V6_LABEL: u32 = 1001;
const EXPORT_RT: &str = "target:64512:100";
const IMPORT_RT: &str = "target:64512:200";

fn underlay(node: &str) -> String {
    let n = NODES.iter().position(|n| *n == node).expect("a lab node") + 1;
    format!("10.3.0.{n}")
}

/// A remote instance: lab name, node, VLAN, network, address, MAC.
#[derive(Clone, Copy, Debug)]
struct Instance {
    name: &'static str,
    node: &'static str,
    vlan: u16,
    network: &'static str,
    ip: &'static str,
    mac: &'static str,
}

impl Instance {
    fn ipv6(&self) -> bool {
        self.ip.contains(':')
    }

    /// Its address with the prefix length of its subnet (/24, /64).
    fn cidr(&self) -> String {
        format!("{}/{}", self.ip, if self.ipv6() { 64 } else { 24 })
    }

    /// The host route of its address, as VPN routes carry it.
    fn host_prefix(&self) -> String {
        format!("{}/{}", self.ip, if self.ipv6() { 128 } else { 32 })
    }

    fn gateway(&self) -> String {
        gateway_of(&self.subnet())
    }

    fn subnet(&self) -> String {
        if self.ipv6() {
            let (net, _) = self.ip.rsplit_once(':').expect("IPv6");
            format!("{net}:/64")
        } else {
            let (net, _) = self.ip.rsplit_once('.').expect("IPv4");
            format!("{net}.0/24")
        }
    }
}

/// The gateway (`.1`, `::1`) of a /24 or /64 `subnet` (`a.b.c.0/24`,
/// `x:y::/64`).
fn gateway_of(subnet: &str) -> String {
    let (network, _) = subnet.split_once('/').expect("a prefix");
    if network.contains(':') {
        format!("{network}1")
    } else {
        format!("{}.1", network.rsplit_once('.').expect("IPv4").0)
    }
}

const V1: Instance = Instance {
    name: "v1",
    node: "gw1",
    vlan: 100,
    network: "vpn",
    ip: "192.168.40.11",
    mac: "02:00:00:28:00:01",
};
const V2: Instance = Instance {
    name: "v2",
    node: "gw2",
    vlan: 100,
    network: "vpn",
    ip: "192.168.40.12",
    mac: "02:00:00:28:00:02",
};

/// An instance of the VXLAN-only network "vx", on gw2.
const VX: Instance = Instance {
    name: "vx1",
    node: "gw2",
    vlan: 200,
    network: "vx",
    ip: "192.168.41.13",
    mac: "02:00:00:29:00:03",
};

fn apply_params() -> PatchParams {
    PatchParams::apply("e2e").force()
}

/// One north-south rig: the lab, the operator, an agent per node.
struct Rig {
    ns: TestNamespace<'static>,
    client: Client,
    lab: Lab,
    operator: ManagedProcess,
    /// Lab node -> its PhysicalRouter's name.
    routers: BTreeMap<&'static str, String>,
    agents: BTreeMap<&'static str, ManagedProcess>,
    /// The BGP speakers started (replicas, when several).
    speakers: Vec<ManagedProcess>,
    /// This file's tests one at a time; dropped last.
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

/// The tests of this file one at a time: BGPPeers and the speaker's
/// DCGateways are cluster-scoped, and every test's FRR has the same
/// address, so the speakers of two tests would peer with each other's.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Rig {
    /// The two nodes, these instances, `extra` parts of the lab; the
    /// operator, and agents started with `agent_flags` besides the usual.
    /// Holds [`SERIAL`] (until dropped, after everything else) and first deletes what an
    /// earlier test of this file left cluster-wide (BGPPeers, the
    /// speaker's DCGateways).
    async fn start(
        instances: &[Instance],
        extra: impl FnOnce(LabSpec) -> LabSpec,
        agent_flags: &[&str],
        rack: bool,
    ) -> Rig {
        let serial = SERIAL.lock().await;
        let plane = ControlPlane::shared();
        let client = plane.client().await.expect("client");
        clear_earlier_tests(&client).await;
        let ns = plane.namespace("ns").await.expect("namespace");
        let mut spec = LabSpec::new();
        if rack {
            spec = spec.switch(SwitchSpec::new("rack"));
        }
        for node in NODES {
            let trunk = if rack {
                TrunkSpec::new("eth1").switch("rack")
            } else {
                TrunkSpec::new("eth1")
            };
            spec = spec.node(
                NodeSpec::new(node)
                    .underlay(&format!("{}/24", underlay(node)))
                    .trunk_spec(trunk),
            );
        }
        for i in instances {
            spec = spec.instance(
                InstanceSpec::new(i.name, i.node, "eth1")
                    .vlan(i.vlan)
                    .ip(&i.cidr())
                    .gateway(&i.gateway())
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
            speakers: Vec::new(),
            _serial: serial,
        };
        for node in NODES {
            let kubeconfig = plane
                .kubeconfig_with_role(rig.ns.name(), &format!("dataplane-{node}"), "dataplane")
                .await
                .expect("agent identity");
            let router = unique_name(node);
            let addr = free_local_addr();
            let mut args: Vec<String> = vec![
                "--node".into(),
                router.clone(),
                "--kubeconfig".into(),
                kubeconfig.display().to_string(),
                "--metrics-addr".into(),
                addr.to_string(),
                "--port-netns".into(),
                rig.lab.netns_path(node).display().to_string(),
                "--backend".into(),
                "af-xdp".into(),
            ];
            args.extend(agent_flags.iter().map(|f| (*f).to_owned()));
            let agent = ManagedProcess::start(
                &format!("dataplane-{node}"),
                &workspace_binary("trunkline-dataplane", "trunkline-dataplane"),
                &args,
                &[("RUST_LOG", "info,trunkline_dataplane=debug")],
                addr,
            );
            rig.routers.insert(node, router);
            rig.agents.insert(node, agent);
            rig.apply_router(node).await;
        }
        rig
    }

    /// Waits up to `within` for FRR to hold `prefix` under `rd` in its
    /// IPv4 VPN table; returns the route's detail (JSON), also printed.
    async fn frr_vpn_route(&self, frr: &Frr, rd: &str, prefix: &str, within: Duration) -> String {
        eventually(&format!("FRR has {prefix}"), within, || async {
            frr.vpn_routes_of("ipv4")
                .get(&(rd.to_owned(), prefix.to_owned()))
                .cloned()
                .ok_or_else(|| frr.vtysh("show bgp ipv4 vpn"))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        let text = frr.vpn_route_detail(rd, prefix).to_string();
        eprintln!("FRR: {prefix}: {text}");
        text
    }

    fn logs(&self) -> String {
        let mut out = format!("operator log: {}", self.operator.log().display());
        for (node, agent) in &self.agents {
            out.push_str(&format!("\n{node} agent log: {}", agent.log().display()));
        }
        for (n, speaker) in self.speakers.iter().enumerate() {
            out.push_str(&format!("\nspeaker {n} log: {}", speaker.log().display()));
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

    fn dynamic_api(
        &self,
        kind: &str,
        plural: &str,
        namespaced: bool,
    ) -> Api<kube::core::DynamicObject> {
        let resource = kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("trunkline.io", "v1alpha1", kind),
            plural,
        );
        if namespaced {
            Api::namespaced_with(self.client.clone(), self.ns.name(), &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        }
    }

    async fn apply(&self, plural: &str, namespaced: bool, object: Value) {
        let kind = object["kind"].as_str().expect("kind").to_owned();
        let name = object["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_owned();
        self.dynamic_api(&kind, plural, namespaced)
            .patch(&name, &apply_params(), &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("{kind} {name}: {e}"));
    }

    /// Network `name` of `subnet` (gateway `.1`, `::1`) with extra spec
    /// fields.
    async fn apply_network(&self, name: &str, subnet: &str, extra: Value) {
        let gateway = gateway_of(subnet);
        let mut spec = json!({"subnets": [{"cidr": subnet, "gateway": gateway}]});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        self.apply(
            "virtualnetworks",
            true,
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
        self.apply(
            "virtualmachineinterfaces",
            true,
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

    /// Networks (name, subnet, extra spec) and instances, then waits until
    /// every instance's logical interface, VMI and network is Ready.
    async fn apply_all(&self, networks: &[(&str, &str, Value)], instances: &[Instance]) {
        for (name, subnet, extra) in networks {
            self.apply_network(name, subnet, extra.clone()).await;
        }
        for i in instances {
            self.apply_instance(i).await;
        }
        for i in instances {
            let li = self.li_name(i);
            let lis: Api<LogicalInterface> = Api::all(self.client.clone());
            let vmis: Api<VirtualMachineInterface> =
                Api::namespaced(self.client.clone(), self.ns.name());
            let nets: Api<VirtualNetwork> = Api::namespaced(self.client.clone(), self.ns.name());
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
                let network = nets.get(i.network).await.map_err(|e| e.to_string())?;
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
                        "li/vmi/network ready: {states:?}; network status {:?}",
                        network.status
                    ))
                }
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        }
    }

    async fn network_status(&self, name: &str) -> trunkline_api::VirtualNetworkStatus {
        Api::<VirtualNetwork>::namespaced(self.client.clone(), self.ns.name())
            .get(name)
            .await
            .expect("network")
            .status
            .expect("status")
    }

    async fn vmi_label(&self, name: &str) -> u32 {
        Api::<VirtualMachineInterface>::namespaced(self.client.clone(), self.ns.name())
            .get(name)
            .await
            .expect("vmi")
            .status
            .and_then(|s| s.mpls_label)
            .expect("a routed label")
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

    /// Starts the BGP speaker with its own role, gobgpd in the lab's `ctl`
    /// namespace.
    async fn start_speaker(&mut self) {
        self.start_speaker_replica(None).await;
    }

    /// Starts a BGP speaker; with `identity`, as a replica electing the
    /// active one by the Lease `trunkline-bgp` of the test namespace (its
    /// Role, `deploy/rbac/bgp-namespace.yaml`, bound there).
    async fn start_speaker_replica(&mut self, identity: Option<&str>) {
        self.start_speaker_with(identity, &[]).await;
    }

    /// [`Rig::start_speaker_replica`] with `extra` flags.
    async fn start_speaker_with(&mut self, identity: Option<&str>, extra: &[&str]) {
        let speaker = start_speaker_process(
            self.ns.name(),
            &gobgpd(),
            Some(&self.lab.netns_path("ctl")),
            identity,
            extra,
        )
        .await;
        self.speakers.push(speaker);
    }

    /// The pid of the gobgpd the first speaker runs.
    fn gobgpd_pid(&self) -> Option<u32> {
        self.gobgpd_pid_of(0)
    }

    /// The pid of the gobgpd speaker `n` runs.
    fn gobgpd_pid_of(&self, n: usize) -> Option<u32> {
        gobgpd_child(self.speakers.get(n)?.pid()?)
    }

    /// Who holds the speakers' Lease.
    async fn lease_holder(&self) -> Option<String> {
        Api::<Lease>::namespaced(self.client.clone(), self.ns.name())
            .get_opt("trunkline-bgp")
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
    }

    /// Waits until BGPPeer `name`'s Ready condition has `status` and
    /// `reason`; returns the status.
    async fn wait_peer(&self, name: &str, status: &str, reason: &str, within: Duration) -> Value {
        wait_peer_condition(&self.client, name, "Ready", status, reason, within)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }
}

/// BGPPeer `name`'s status (null when it has none or is gone).
async fn peer_status(client: &Client, name: &str) -> Value {
    let resource = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("trunkline.io", "v1alpha1", "BGPPeer"),
        "bgppeers",
    );
    Api::<kube::core::DynamicObject>::all_with(client.clone(), &resource)
        .get(name)
        .await
        .map(|o| o.data["status"].clone())
        .unwrap_or(Value::Null)
}

/// The condition `type_` of a BGPPeer status.
fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .unwrap_or(&Value::Null)
}

/// Waits until BGPPeer `name`'s condition `type_` has `status` and
/// `reason`; returns the peer's status.
async fn wait_peer_condition(
    client: &Client,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
    within: Duration,
) -> Result<Value, trunkline_test_support::Error> {
    eventually(
        &format!("BGPPeer {name} {type_}={status} ({reason})"),
        within,
        || async {
            let s = peer_status(client, name).await;
            let c = condition(&s, type_);
            if c["status"] == status && c["reason"] == reason {
                Ok(s)
            } else {
                Err(format!("{s}"))
            }
        },
    )
    .await
}

impl Drop for Rig {
    /// The speakers and their gobgpd: a speaker killed by SIGKILL (its
    /// `ManagedProcess`'s drop) takes its gobgpd along (the parent-death
    /// signal); killed here too all the same, in case that ever broke, so
    /// that none outlives the lab.
    fn drop(&mut self) {
        // Their pids first, then the speakers (which would restart a
        // gobgpd killed under them), then the gobgpd.
        let gobgpd: Vec<u32> = (0..self.speakers.len())
            .filter_map(|n| self.gobgpd_pid_of(n))
            .collect();
        for speaker in &mut self.speakers {
            speaker.kill();
        }
        for pid in gobgpd {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Starts a BGP speaker of namespace `ns` with its own role (and its
/// probes on a free loopback port) running `gobgpd`, in `netns` (else
/// here, connecting out only), with `extra` flags; with `identity`, as a replica electing the
/// active one by the Lease `trunkline-bgp` of `ns` (its Role,
/// `deploy/rbac/bgp-namespace.yaml`, bound there).
async fn start_speaker_process(
    ns: &str,
    gobgpd: &std::path::Path,
    netns: Option<&std::path::Path>,
    identity: Option<&str>,
    extra: &[&str],
) -> ManagedProcess {
    let plane = ControlPlane::shared();
    let kubeconfig = plane
        .kubeconfig_with_role(ns, "trunkline-bgp", "bgp")
        .await
        .expect("speaker identity");
    let socket = std::env::temp_dir().join(format!("{}.sock", unique_name("gobgpd")));
    let addr = free_local_addr();
    let mut args: Vec<String> = vec![
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--gobgpd".into(),
        gobgpd.display().to_string(),
        "--api-socket".into(),
        socket.display().to_string(),
        "--router-id".into(),
        CTL.into(),
        "--local-asn".into(),
        OUR_AS.to_string(),
        "--namespace".into(),
        ns.into(),
        "--health-addr".into(),
        addr.to_string(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    match netns {
        Some(netns) => args.extend(["--speaker-netns".into(), netns.display().to_string()]),
        None => args.push("--listen-port=-1".into()),
    }
    if let Some(identity) = identity {
        bind_namespace_role(plane, ns, "trunkline-bgp");
        args.extend([
            "--leader-elect".into(),
            "--leader-election-identity".into(),
            identity.into(),
        ]);
    }
    ManagedProcess::start(
        &format!("bgp-{}", identity.unwrap_or("single")),
        &workspace_binary("trunkline-bgp", "trunkline-bgp"),
        &args,
        &[("RUST_LOG", "info,trunkline_bgp=debug")],
        addr,
    )
}

/// The pid of the `gobgpd` child of process `pid`.
fn gobgpd_child(pid: u32) -> Option<u32> {
    child_named(pid, "gobgpd")
}

/// Whether process `pid` is gone: no such process, or a zombie (killed,
/// waiting for a reaper).
fn process_gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'))
    })
}

/// Deletes what an earlier test of this file left cluster-wide: BGPPeers
/// and the speaker's DCGateways.
async fn clear_earlier_tests(client: &Client) {
    for (kind, plural, selector) in [
        ("BGPPeer", "bgppeers", None),
        (
            "DCGateway",
            "dcgateways",
            Some("trunkline.io/managed-by=trunkline-bgp"),
        ),
    ] {
        let resource = kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("trunkline.io", "v1alpha1", kind),
            plural,
        );
        let api: Api<kube::core::DynamicObject> = Api::all_with(client.clone(), &resource);
        let mut params = kube::api::ListParams::default();
        if let Some(selector) = selector {
            params = params.labels(selector);
        }
        api.delete_collection(&kube::api::DeleteParams::default(), &params)
            .await
            .unwrap_or_else(|e| panic!("deleting the {kind}s of earlier tests: {e}"));
    }
}

/// gobgpd as `scripts/build-gobgp.sh` builds it (cached by version).
fn gobgpd() -> std::path::PathBuf {
    trunkline_test_support::gobgpd().expect("gobgpd from scripts/build-gobgp.sh")
}

/// Binds the speaker's namespace Role (`deploy/rbac/bgp-namespace.yaml`:
/// its Lease, password Secrets) to ServiceAccount `account` of `ns`, as the
/// chart's RoleBinding does.
fn bind_namespace_role(plane: &ControlPlane, ns: &str, account: &str) {
    let role = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/rbac/bgp-namespace.yaml"
    ))
    .expect("deploy/rbac/bgp-namespace.yaml");
    let manifest = format!(
        "{role}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
         metadata: {{name: trunkline-bgp-namespace}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: trunkline-bgp-namespace}}\n\
         subjects: [{{kind: ServiceAccount, name: {account}, namespace: {ns}}}]\n"
    );
    let out = plane.kubectl_with_stdin(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-n",
            ns,
            "-f",
            "-",
        ],
        manifest.as_bytes(),
    );
    assert!(
        out.status.success(),
        "the speaker's namespace Role: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// FRR (zebra + bgpd) in lab namespace `at`, in a path space of its own,
/// so that several can run at once; stopped on drop.
fn start_frr(lab: &Lab, at: &str, config: &str) -> Frr {
    Frr::start(lab, at, &unique_name("frr"), config).expect("FRR starts")
}

/// FRR's configuration, VPNv4 only. The route-map comes first: a static VPN route
/// naming a route-map not defined yet is refused and not re-evaluated.
fn frr_config() -> String {
    frr_config_with_ipv6(false)
}

/// FRR's configuration; with `ipv6`, also a VPNv6 session and a static
/// VPNv6 route ([`FRR_V6_PREFIX`], label [`FRR_V6_LABEL`], the import
/// target).
fn frr_config_with_ipv6(ipv6: bool) -> String {
    let vpnv6 = if ipv6 {
        format!(
            " address-family ipv6 vpn\n  \
              neighbor {CTL} activate\n  \
              network {FRR_V6_PREFIX} rd {FRR_AS}:1 label {FRR_V6_LABEL} route-map RT-DEFAULT\n \
             exit-address-family\n"
        )
    } else {
        String::new()
    };
    format!(
        "frr defaults traditional\n\
         hostname dcgw\n\
         log stdout informational\n\
         !\n\
         route-map RT-DEFAULT permit 10\n \
          set extcommunity rt {}\n\
         !\n\
         router bgp {FRR_AS}\n \
          bgp router-id {DCGW}\n \
          no bgp ebgp-requires-policy\n \
          no bgp network import-check\n \
          neighbor {CTL} remote-as {OUR_AS}\n \
          neighbor {CTL} timers connect 2\n \
          address-family ipv4 unicast\n  \
           no neighbor {CTL} activate\n \
          exit-address-family\n \
          address-family ipv4 vpn\n  \
           neighbor {CTL} activate\n  \
           network 0.0.0.0/1 rd {FRR_AS}:1 label {FRR_LABEL} route-map RT-DEFAULT\n  \
           network 128.0.0.0/1 rd {FRR_AS}:1 label {FRR_LABEL} route-map RT-DEFAULT\n \
          exit-address-family\n\
         {vpnv6}\
         !\n",
        IMPORT_RT.trim_start_matches("target:")
    )
}

/// A network's `l3vpn`: our export target, FRR's import target.
fn l3vpn_targets() -> Value {
    json!({"exportRouteTargets": [EXPORT_RT], "importRouteTargets": [IMPORT_RT]})
}

/// The set-up most tests of this file share: the two nodes with
/// `instances`, the DC gateway (FRR with `frr_config`, the host `ext`
/// behind it) and the speaker's namespace; `networks` (name, subnet, extra
/// spec) and the instances Ready; one speaker, and a BGPPeer for FRR
/// (VPNv4) Established. Returns the rig, FRR and the BGPPeer's name.
async fn l3vpn_with_frr(
    instances: &[Instance],
    networks: &[(&str, &str, Value)],
    frr_config: &str,
) -> (Rig, Frr, String) {
    let mut rig = Rig::start(
        instances,
        |s| {
            s.dc_gateway(
                DcGatewaySpec::new("dcgw", &format!("{DCGW}/24")).host("ext", &format!("{EXT}/24")),
            )
            .host(FabricHostSpec::new("ctl").ip(&format!("{CTL}/24")))
        },
        &[],
        false,
    )
    .await;
    let frr = start_frr(&rig.lab, "dcgw", frr_config);
    rig.apply_all(networks, instances).await;
    rig.start_speaker().await;
    let peer = unique_name("frr");
    rig.apply(
        "bgppeers",
        false,
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "BGPPeer",
               "metadata": {"name": peer},
               "spec": {"address": DCGW, "peerASN": FRR_AS,
                        "timers": {"holdTimeSeconds": 9, "keepaliveSeconds": 3, "connectRetrySeconds": 1}}}),
    )
    .await;
    let status = rig.wait_peer(&peer, "True", "Established", READY).await;
    eprintln!("peer status: {status}");
    (rig, frr, peer)
}

/// The whole story on one rig: export, import, traffic, a killed speaker,
/// bad peers.
#[tokio::test]
async fn l3vpn_with_frr_exports_imports_carries_traffic_and_survives_a_killed_speaker() {
    let instances = [V1, V2];
    let (mut rig, frr, peer) = l3vpn_with_frr(
        &instances,
        &[("vpn", &V1.subnet(), json!({"l3vpn": l3vpn_targets()}))],
        &frr_config(),
    )
    .await;

    // Export: FRR holds each instance's route with our RD, RT, label, next
    // hop and the MPLSoUDP encapsulation community.
    let vni = rig.network_status("vpn").await.vni.expect("a VNI");
    let rd = format!("{CTL}:{vni}");
    let mut labels = BTreeMap::new();
    for i in instances {
        let label = rig.vmi_label(i.name).await;
        let prefix = format!("{}/32", i.ip);
        let text = rig
            .frr_vpn_route(&frr, &rd, &prefix, Duration::from_secs(30))
            .await;
        assert!(
            text.contains(&underlay(i.node)),
            "next hop {}: {text}",
            underlay(i.node)
        );
        assert!(text.contains("RT:64512:100"), "route target: {text}");
        assert!(
            text.contains("ET:13"),
            "MPLSoUDP encapsulation community: {text}"
        );
        assert!(
            text.contains(&format!("\"remoteLabel\":{label}")),
            "label {label}: {text}"
        );
        labels.insert(i.name, label);
    }

    // Import: FRR's default route (its two halves) becomes a DCGateway the
    // nodes install.
    let gateway = format!("bgp-{}", DCGW.replace('.', "-"));
    let api = rig.dynamic_api("DCGateway", "dcgateways", false);
    eventually("the learned DCGateway is Ready", READY, || async {
        let object = api.get(&gateway).await.map_err(|e| e.to_string())?;
        let ready = object.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        let routes = object.data["spec"]["networks"][0]["routes"].clone();
        if ready
            && routes
                == json!([{"prefix": "0.0.0.0/1", "label": FRR_LABEL},
                          {"prefix": "128.0.0.0/1", "label": FRR_LABEL}])
        {
            Ok(())
        } else {
            Err(format!("{}", object.data))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));

    // Traffic: the DC gateway sends to each instance with the label and
    // next hop FRR learned from us; the instances reach the host behind it.
    for i in instances {
        rig.lab
            .add_dc_gateway_route(
                "dcgw",
                DcGatewayRoute {
                    to: format!("{}/32", i.ip).parse().expect("prefix"),
                    node: underlay(i.node).parse().expect("address"),
                    label: labels[i.name],
                },
            )
            .expect("a DC gateway route");
    }
    rig.ping_eventually("v1", EXT).await;
    rig.ping_eventually("v2", EXT).await;
    rig.ping_eventually("ext", V1.ip).await;
    let payload = "l3vpn-ext-to-v2";
    let received = rig
        .lab
        .tcp("ext", "v2", V2.ip, 7301, payload)
        .unwrap_or_else(|e| panic!("TCP ext -> v2: {e}\n{}", rig.logs()));
    assert_eq!(received, payload);

    // A killed gobgpd is restarted and given every route again.
    let old = rig.gobgpd_pid().expect("gobgpd runs under the speaker");
    let killed = Command::new("kill")
        .args(["-9", &old.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let v1_route = (rd.clone(), format!("{}/32", V1.ip));
    eventually(
        "FRR withdraws our routes",
        Duration::from_secs(15),
        || async {
            if frr.vpn_routes_of("ipv4").contains_key(&v1_route) {
                Err("still there".to_owned())
            } else {
                Ok(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    eventually(
        "FRR has our routes again",
        Duration::from_secs(60),
        || async {
            let routes = frr.vpn_routes_of("ipv4");
            let new = rig.gobgpd_pid();
            if routes.contains_key(&v1_route)
                && routes.contains_key(&(rd.clone(), format!("{}/32", V2.ip)))
                && new.is_some_and(|p| p != old)
            {
                Ok(())
            } else {
                Err(format!(
                    "gobgpd {new:?}: {}",
                    frr.vtysh("show bgp ipv4 vpn")
                ))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    rig.ping_eventually("v1", EXT).await;

    // Bad peers: an unreachable one and a wrong AS number get a clear
    // status; the good session is not disturbed by the unreachable one.
    let nobody = unique_name("nobody");
    rig.apply(
        "bgppeers",
        false,
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "BGPPeer",
               "metadata": {"name": nobody},
               "spec": {"address": "10.3.0.222", "peerASN": 65002,
                        "timers": {"connectRetrySeconds": 1}}}),
    )
    .await;
    rig.wait_peer(&nobody, "False", "PeerUnreachable", Duration::from_secs(60))
        .await;
    rig.wait_peer(&peer, "True", "Established", Duration::from_secs(5))
        .await;
    assert!(frr.vpn_routes_of("ipv4").contains_key(&v1_route));

    // A second BGPPeer for FRR's address is refused, saying whose it is;
    // the first keeps its session and FRR our routes.
    let twin = unique_name("twin");
    rig.apply(
        "bgppeers",
        false,
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "BGPPeer",
               "metadata": {"name": twin},
               "spec": {"address": DCGW, "peerASN": 65099}}),
    )
    .await;
    let refused = wait_peer_condition(
        &rig.client,
        &twin,
        "Accepted",
        "False",
        "AddressConflict",
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    assert!(
        condition(&refused, "Accepted")["message"]
            .as_str()
            .is_some_and(|m| m.contains(&peer)),
        "names the BGPPeer holding the address: {refused}"
    );
    assert!(
        refused["sessionState"].is_null(),
        "not the first's session: {refused}"
    );
    rig.wait_peer(&peer, "True", "Established", Duration::from_secs(5))
        .await;
    assert!(frr.vpn_routes_of("ipv4").contains_key(&v1_route));
    rig.dynamic_api("BGPPeer", "bgppeers", false)
        .delete(&twin, &Default::default())
        .await
        .expect("delete the twin");
    rig.apply(
        "bgppeers",
        false,
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "BGPPeer",
               "metadata": {"name": peer},
               "spec": {"address": DCGW, "peerASN": 65099,
                        "timers": {"holdTimeSeconds": 9, "keepaliveSeconds": 3, "connectRetrySeconds": 1}}}),
    )
    .await;
    let status = rig
        .wait_peer(&peer, "False", "PeerASMismatch", Duration::from_secs(60))
        .await;
    eprintln!("wrong AS: {status}");
    rig.wait_peer(&nobody, "False", "PeerUnreachable", Duration::from_secs(5))
        .await;
    drop(frr);
}

/// A virtual gateway's subnets and routes (seed 003: the software
/// gateway exports its vgw's routes to the DC gateway) are exported from
/// the node running it, with the network's routed label: FRR holds them
/// with our RD, RT, that label and the node as next hop; traffic the DC
/// gateway sends with that label is routed in the network's VRF: to a
/// public address behind the node's host through the virtual gateway's
/// interface, and to an instance inside its subnet. Deleting the virtual
/// gateway withdraws its routes.
#[tokio::test]
async fn a_virtual_gateways_prefixes_are_exported_with_the_networks_routed_label() {
    /// Behind gw1's host (on its loopback): the public side of the
    /// virtual gateway, reached through its interface.
    const PUBLIC: &str = "198.51.100.1";
    const PUBLIC_ROUTE: &str = "198.51.100.0/24";
    let instances = [V1];
    let (mut rig, frr, _peer) = l3vpn_with_frr(
        &instances,
        &[("vpn", &V1.subnet(), json!({"l3vpn": l3vpn_targets()}))],
        &frr_config(),
    )
    .await;
    let status = rig.network_status("vpn").await;
    let rd = format!("{CTL}:{}", status.vni.expect("a VNI"));
    // The README's rule: the network's label plus 2^19.
    let routed_label = status.mpls_label.expect("a label") + (1 << 19);

    // The public side: an address on gw1's host, which answers the DC
    // gateway's host over the fabric.
    for line in [
        format!("ip addr add {PUBLIC}/32 dev lo"),
        format!("ip route add {EXT}/32 via {DCGW}"),
    ] {
        let out = rig.lab.sh("gw1", &line);
        assert!(out.status.success(), "{line}: {out:?}");
    }
    // The DC gateway sends what FRR learns from us by its label (the lab's
    // data path is static: routes are added as FRR should have them).
    for prefix in [PUBLIC_ROUTE, &V1.subnet()] {
        rig.lab
            .add_dc_gateway_route(
                "dcgw",
                DcGatewayRoute {
                    to: prefix.parse().expect("prefix"),
                    node: underlay("gw1").parse().expect("address"),
                    label: routed_label,
                },
            )
            .expect("a DC gateway route");
    }
    // FRR's default route is in the VRF (its DCGateway is a routed peer of
    // the network) before the virtual gateway exists: the routed label is
    // installed, but the VRF sends 198.51.100.1 back to FRR, which the
    // node refuses (no hairpin into a tunnel).
    rig.ping_eventually("ext", V1.ip).await;
    let (ok, out) = rig.lab.ping("ext", PUBLIC, 2);
    assert!(
        !ok,
        "no way to the public side before the virtual gateway: {out}"
    );

    let vgw = unique_name("vpn-public");
    rig.apply(
        "virtualgateways",
        false,
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualGateway",
               "metadata": {"name": vgw},
               "spec": {"interface": "vgwpub",
                        "virtualNetwork": {"namespace": rig.ns.name(), "name": "vpn"},
                        "subnets": [V1.subnet()], "routes": [PUBLIC_ROUTE],
                        "nodes": [rig.routers["gw1"]]}}),
    )
    .await;
    let exported = [V1.subnet(), PUBLIC_ROUTE.to_owned()];
    for prefix in &exported {
        let text = rig
            .frr_vpn_route(&frr, &rd, prefix, Duration::from_secs(60))
            .await;
        assert!(text.contains(&underlay("gw1")), "next hop gw1: {text}");
        assert!(text.contains("RT:64512:100"), "route target: {text}");
        assert!(text.contains("ET:13"), "MPLSoUDP: {text}");
        assert!(
            text.contains(&format!("\"remoteLabel\":{routed_label}")),
            "the routed label {routed_label}: {text}"
        );
    }

    // The DC gateway's host reaches the public side through the virtual
    // gateway's interface (its replies come back over the fabric), and an
    // instance through the subnet's route (its replies by FRR's route).
    rig.ping_eventually("ext", PUBLIC).await;
    let into_host = || {
        let out = rig
            .lab
            .sh("gw1", "cat /sys/class/net/vgwpub/statistics/rx_packets");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("vgwpub's counter: {out:?}"))
    };
    let before = into_host();
    let (ok, out) = rig.lab.ping("ext", PUBLIC, 3);
    assert!(ok, "ext -> {PUBLIC}: {out}");
    let entered = into_host() - before;
    assert!(
        entered >= 3,
        "the echo requests entered gw1's host through the virtual gateway's interface: {entered}"
    );
    rig.ping_eventually("ext", V1.ip).await;
    let payload = "routed-label-to-v1";
    let received = rig
        .lab
        .tcp("ext", "v1", V1.ip, 7302, payload)
        .unwrap_or_else(|e| panic!("TCP ext -> v1: {e}\n{}", rig.logs()));
    assert_eq!(received, payload);

    // Gone with the virtual gateway.
    rig.dynamic_api("VirtualGateway", "virtualgateways", false)
        .delete(&vgw, &Default::default())
        .await
        .expect("delete the virtual gateway");
    eventually(
        "FRR withdraws the virtual gateway's routes",
        Duration::from_secs(60),
        || async {
            let routes = frr.vpn_routes_of("ipv4");
            let left: Vec<_> = exported
                .iter()
                .filter(|p| routes.contains_key(&(rd.clone(), (*p).clone())))
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("still there: {left:?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    assert!(
        frr.vpn_routes_of("ipv4")
            .contains_key(&(rd.clone(), V1.host_prefix())),
        "the instance's own route stays"
    );
    drop(frr);
}

/// The encapsulation extended community (RFC 9012's tunnel type) as FRR
/// reads it: MPLS over UDP (13) for a network that runs it (the default),
/// with the VMI's label; VXLAN (8) for a network that runs only VXLAN,
/// with its VNI as the label.
#[tokio::test]
async fn the_encapsulation_community_says_vxlan_or_mpls_over_udp() {
    let instances = [V1, VX];
    let l3vpn = l3vpn_targets();
    let (rig, frr, _peer) = l3vpn_with_frr(
        &instances,
        &[
            ("vpn", &V1.subnet(), json!({"l3vpn": l3vpn})),
            (
                "vx",
                &VX.subnet(),
                json!({"l3vpn": l3vpn, "encapsulation": ["VXLAN"]}),
            ),
        ],
        &frr_config(),
    )
    .await;

    let vx_status = rig.network_status("vx").await;
    assert_eq!(
        serde_json::to_value(&vx_status.encapsulation).expect("json"),
        json!(["VXLAN"]),
        "VXLAN only, in effect"
    );
    let vx_vni = vx_status.vni.expect("a VNI");
    let vpn_vni = rig.network_status("vpn").await.vni.expect("a VNI");
    let expected = [
        (V1, vpn_vni, rig.vmi_label(V1.name).await, "ET:13"),
        (VX, vx_vni, vx_vni, "ET:8"),
    ];
    for (i, vni, label, community) in expected {
        let rd = format!("{CTL}:{vni}");
        let prefix = i.host_prefix();
        let text = rig
            .frr_vpn_route(&frr, &rd, &prefix, Duration::from_secs(60))
            .await;
        assert!(
            text.contains(&format!("{community}\"")) || text.contains(&format!("{community} ")),
            "{prefix}: the encapsulation community {community}: {text}"
        );
        let other = if community == "ET:8" { "ET:13" } else { "ET:8" };
        assert!(
            !text.contains(&format!("{other}\"")) && !text.contains(&format!("{other} ")),
            "{prefix}: not {other}: {text}"
        );
        assert!(
            text.contains(&format!("\"remoteLabel\":{label}")),
            "{prefix}: label {label}: {text}"
        );
        assert!(text.contains(&underlay(i.node)), "next hop: {text}");
    }
    drop(frr);
}

/// A VXLAN-only network with a DC gateway (issue 17): its instance's and
/// its virtual gateway's routes reach FRR with the VXLAN encapsulation
/// community (ET:8) and label = the network's VNI; then a kernel VXLAN
/// device in the DC gateway's namespace (an independent data path) sends
/// what FRR learned that way: the node routes it in the network's VRF, to
/// the instance behind its VLAN port (ping and TCP, the instance's
/// counters) and through the virtual gateway's interface to an address
/// behind its host; the replies come back by the imported routes, MPLS
/// over UDP. The same VXLAN from another fabric address is a counted drop.
#[tokio::test]
async fn a_dc_gateways_vxlan_reaches_a_vxlan_only_networks_instance_and_virtual_gateway() {
    /// Behind gw2's host (on its loopback): the public side of the
    /// virtual gateway.
    const PUBLIC: &str = "198.51.100.1";
    const PUBLIC_ROUTE: &str = "198.51.100.0/24";
    /// An address of the DC gateway's namespace that is no peer of the
    /// nodes (not a DC gateway of the network, not a node).
    const STRANGER: &str = "10.3.0.201";
    /// The inner destination MAC the DC gateway's kernel puts (a static
    /// neighbour): the node routes whatever MAC a DC gateway sends to.
    const INNER_MAC: &str = "02:dc:00:00:00:99";
    let instances = [VX];
    let (rig, frr, _peer) = l3vpn_with_frr(
        &instances,
        &[(
            "vx",
            &VX.subnet(),
            json!({"l3vpn": l3vpn_targets(), "encapsulation": ["VXLAN"]}),
        )],
        &frr_config(),
    )
    .await;
    let status = rig.network_status("vx").await;
    assert_eq!(
        serde_json::to_value(&status.encapsulation).expect("json"),
        json!(["VXLAN"]),
        "VXLAN only, in effect"
    );
    let vni = status.vni.expect("a VNI");
    let rd = format!("{CTL}:{vni}");
    let node = underlay(VX.node);
    let sh = |at: &str, line: &str| {
        let out = rig.lab.sh(at, line);
        assert!(out.status.success(), "{at}: {line}: {out:?}");
    };

    // The public side: an address on gw2's host, which answers the DC
    // gateway's host over the fabric; the virtual gateway on gw2.
    sh(VX.node, &format!("ip addr add {PUBLIC}/32 dev lo"));
    sh(VX.node, &format!("ip route add {EXT}/32 via {DCGW}"));
    let vgw = unique_name("vx-public");
    rig.apply(
        "virtualgateways",
        false,
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualGateway",
               "metadata": {"name": vgw},
               "spec": {"interface": "vgwvx",
                        "virtualNetwork": {"namespace": rig.ns.name(), "name": "vx"},
                        "subnets": [VX.subnet()], "routes": [PUBLIC_ROUTE],
                        "nodes": [rig.routers[VX.node]]}}),
    )
    .await;

    // Export: the instance's host route and the virtual gateway's subnet
    // and route, each ET:8 with the VNI as label, from gw2.
    for prefix in [VX.host_prefix(), VX.subnet(), PUBLIC_ROUTE.to_owned()] {
        let text = rig
            .frr_vpn_route(&frr, &rd, &prefix, Duration::from_secs(60))
            .await;
        assert!(
            text.contains("ET:8\"") || text.contains("ET:8 "),
            "{prefix}: VXLAN (ET:8): {text}"
        );
        assert!(
            !text.contains("ET:13\"") && !text.contains("ET:13 "),
            "{prefix}: not MPLSoUDP: {text}"
        );
        assert!(
            text.contains(&format!("\"remoteLabel\":{vni}")),
            "{prefix}: label = VNI {vni}: {text}"
        );
        assert!(text.contains(&node), "{prefix}: next hop {node}: {text}");
        assert!(text.contains("RT:64512:100"), "route target: {text}");
    }

    // Import: FRR's default route halves make its address a DC gateway of
    // the network (the peer whose VXLAN the node routes).
    let gateway = format!("bgp-{}", DCGW.replace('.', "-"));
    let api = rig.dynamic_api("DCGateway", "dcgateways", false);
    eventually("the learned DCGateway is Ready", READY, || async {
        let object = api.get(&gateway).await.map_err(|e| e.to_string())?;
        let ready = object.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        let networks = object.data["spec"]["networks"].to_string();
        if ready && networks.contains("\"vx\"") {
            Ok(())
        } else {
            Err(format!("{}", object.data))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));

    // The DC gateway's data path, as FRR learned it: the kernel's VXLAN
    // device (VNI, to gw2's underlay address, from the DC gateway's),
    // routes to the instance's subnet and the public route through it.
    let vxlan_device = |name: &str, local: &str| {
        sh(
            "dcgw",
            &format!(
                "ip link add {name} type vxlan id {vni} local {local} remote {node} \
                 dstport 4789 dev eth0 nolearning && ip link set {name} up && \
                 sysctl -qw net.ipv4.conf.{name}.rp_filter=0 && \
                 ip neigh replace {gw} lladdr {INNER_MAC} dev {name} nud permanent && \
                 ip route replace {subnet} via {gw} dev {name} onlink && \
                 ip route replace {PUBLIC_ROUTE} via {gw} dev {name} onlink",
                gw = VX.gateway(),
                subnet = VX.subnet(),
            ),
        )
    };
    // The replies come back decapsulated on eth0 while the route to their
    // source is the VXLAN device: no reverse-path filter.
    sh(
        "dcgw",
        "sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0",
    );
    vxlan_device("vxdc", DCGW);
    let metric = |sample: &str| rig.agents[VX.node].metric(sample).unwrap_or(0.0);
    let to_vx = format!(
        "trunkline_dataplane_vmi_packets_total{{vmi=\"{}/{}\",direction=\"tx\"}}",
        rig.ns.name(),
        VX.name
    );
    let unknown_peer = "trunkline_dataplane_drops_total{reason=\"tunnel_unknown_peer\"}";
    let into_host = || {
        let out = rig
            .lab
            .sh(VX.node, "cat /sys/class/net/vgwvx/statistics/rx_packets");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("vgwvx's counter: {out:?}"))
    };
    rig.ping_eventually("ext", VX.ip).await;
    let before = metric(&to_vx);
    let (ok, out) = rig.lab.ping("ext", VX.ip, 3);
    assert!(ok, "ext -> {}: {out}", VX.ip);
    let sent = eventually(
        "the node counts the echo requests sent to the instance",
        Duration::from_secs(30),
        || async {
            let sent = metric(&to_vx) - before;
            if sent >= 3.0 {
                Ok(sent)
            } else {
                Err(format!("{sent}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    eprintln!("sent to {}: {sent}", VX.name);
    let payload = "dc-gateway-vxlan-to-vx1";
    let received = rig
        .lab
        .tcp("ext", VX.name, VX.ip, 7304, payload)
        .unwrap_or_else(|e| panic!("TCP ext -> vx1 over VXLAN: {e}\n{}", rig.logs()));
    assert_eq!(received, payload);
    rig.ping_eventually("ext", PUBLIC).await;
    let before = into_host();
    let (ok, out) = rig.lab.ping("ext", PUBLIC, 3);
    assert!(ok, "ext -> {PUBLIC}: {out}");
    let entered = into_host() - before;
    assert!(
        entered >= 3,
        "the echo requests entered gw2's host through the virtual gateway's interface: {entered}"
    );

    // The same VXLAN from an address that is neither a node nor a DC
    // gateway of the network: dropped and counted, nothing delivered.
    sh("dcgw", &format!("ip addr add {STRANGER}/24 dev eth0"));
    sh("dcgw", "ip link del vxdc");
    vxlan_device("vxst", STRANGER);
    let (drops_before, sent_before) = (metric(unknown_peer), metric(&to_vx));
    let (ok, out) = rig.lab.ping("ext", VX.ip, 3);
    assert!(!ok, "a stranger's VXLAN is not delivered: {out}");
    let dropped = eventually(
        "gw2 counts the stranger's VXLAN as tunnel_unknown_peer",
        Duration::from_secs(30),
        || async {
            let dropped = metric(unknown_peer) - drops_before;
            if dropped >= 3.0 {
                Ok(dropped)
            } else {
                Err(format!("{dropped}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    eprintln!("tunnel_unknown_peer: +{dropped}");
    assert_eq!(metric(&to_vx), sent_before, "nothing reached the instance");
    drop(frr);
}

/// Two speaker replicas electing the active one by their Lease: only the
/// active one runs gobgpd; when its process is SIGKILLed (its gobgpd dies
/// with it) FRR withdraws our routes, the standby takes the Lease over, starts its own gobgpd and FRR
/// holds the routes again (same RD, label, next hop), without anyone's help.
#[tokio::test]
async fn the_standby_speaker_takes_over_when_the_active_one_dies() {
    let instances = [V1];
    let mut rig = Rig::start(
        &instances,
        |s| {
            s.dc_gateway(DcGatewaySpec::new("dcgw", &format!("{DCGW}/24")))
                .host(FabricHostSpec::new("ctl").ip(&format!("{CTL}/24")))
        },
        &[],
        false,
    )
    .await;
    let frr = start_frr(&rig.lab, "dcgw", &frr_config());
    rig.apply_all(
        &[(
            "vpn",
            &V1.subnet(),
            json!({"l3vpn": {"exportRouteTargets": [EXPORT_RT], "importRouteTargets": [IMPORT_RT]}}),
        )],
        &instances,
    )
    .await;
    let identities = ["bgp-a", "bgp-b"];
    for identity in identities {
        rig.start_speaker_replica(Some(identity)).await;
    }
    let peer = unique_name("frr");
    rig.apply(
        "bgppeers",
        false,
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "BGPPeer",
               "metadata": {"name": peer},
               "spec": {"address": DCGW, "peerASN": FRR_AS,
                        "timers": {"holdTimeSeconds": 9, "keepaliveSeconds": 3, "connectRetrySeconds": 1}}}),
    )
    .await;
    rig.wait_peer(&peer, "True", "Established", READY).await;
    let vni = rig.network_status("vpn").await.vni.expect("a VNI");
    let rd = format!("{CTL}:{vni}");
    let prefix = format!("{}/32", V1.ip);
    let route = (rd.clone(), prefix.clone());
    let label = rig.vmi_label(V1.name).await;
    // The route as FRR holds it: next hop and label.
    let route_ok = |detail: &Value| {
        let text = detail.to_string();
        text.contains(&underlay(V1.node)) && text.contains(&format!("\"remoteLabel\":{label}"))
    };
    eventually("FRR has our route", Duration::from_secs(30), || async {
        if frr.vpn_routes_of("ipv4").contains_key(&route)
            && route_ok(&frr.vpn_route_detail(&rd, &prefix))
        {
            Ok(())
        } else {
            Err(frr.vtysh("show bgp ipv4 vpn"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));

    // One active replica: it holds the Lease and is the only one running
    // gobgpd.
    let (active, standby) = eventually("one replica active", Duration::from_secs(30), || async {
        let holder = rig.lease_holder().await;
        let running: Vec<bool> = (0..2).map(|n| rig.gobgpd_pid_of(n).is_some()).collect();
        match holder
            .as_deref()
            .and_then(|h| identities.iter().position(|i| *i == h))
        {
            Some(a) if running[a] && !running[1 - a] => Ok((a, 1 - a)),
            _ => Err(format!("holder {holder:?}, gobgpd running {running:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    eprintln!(
        "active: {}, standby: {}",
        identities[active], identities[standby]
    );

    // The active replica is SIGKILLed: its gobgpd (run through nsenter
    // here) dies with it, by the kernel's parent-death signal.
    let gobgpd = rig
        .gobgpd_pid_of(active)
        .expect("the active replica's gobgpd");
    rig.speakers[active].kill();
    eventually(
        "the killed replica's gobgpd is gone",
        Duration::from_secs(10),
        || async {
            if process_gone(gobgpd) {
                Ok(())
            } else {
                Err(format!("gobgpd {gobgpd} still runs"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    eventually(
        "FRR withdraws our route",
        Duration::from_secs(15),
        || async {
            if frr.vpn_routes_of("ipv4").contains_key(&route) {
                Err("still there".to_owned())
            } else {
                Ok(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));

    // The standby takes the Lease over (after the Lease's 15 s), starts its
    // gobgpd and advertises the same route again.
    eventually(
        "the standby took over and FRR has our route again",
        Duration::from_secs(60),
        || async {
            let holder = rig.lease_holder().await;
            let running = rig.gobgpd_pid_of(standby);
            let has = frr.vpn_routes_of("ipv4").contains_key(&route);
            if holder.as_deref() == Some(identities[standby])
                && running.is_some()
                && has
                && route_ok(&frr.vpn_route_detail(&rd, &prefix))
            {
                Ok(())
            } else {
                Err(format!(
                    "holder {holder:?}, standby's gobgpd {running:?}, FRR has the route: {has}"
                ))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    rig.wait_peer(&peer, "True", "Established", Duration::from_secs(30))
        .await;
    drop(frr);
}

/// Gateway HA: v1 behind a switch both nodes' trunks reach, bound on both,
/// members of a group (mode Fast, gw1 preferred). Its route names the
/// active member's underlay address as next hop; when gw1's trunk goes
/// down the group's active member becomes gw2 and the route's next hop
/// follows.
#[tokio::test]
async fn a_multi_homed_vmi_is_advertised_from_the_active_member_and_follows_a_failover() {
    let instances = [V1];
    let mut rig = Rig::start(
        &instances,
        |s| {
            s.dc_gateway(DcGatewaySpec::new("dcgw", &format!("{DCGW}/24")))
                .host(FabricHostSpec::new("ctl").ip(&format!("{CTL}/24")))
        },
        &[],
        true,
    )
    .await;
    let frr = start_frr(&rig.lab, "dcgw", &frr_config());
    rig.apply_all(
        &[(
            "vpn",
            &V1.subnet(),
            json!({"l3vpn": {"exportRouteTargets": [EXPORT_RT], "importRouteTargets": [IMPORT_RT]}}),
        )],
        &instances,
    )
    .await;
    // The group, then v1's second binding, on gw2.
    let group = unique_name("ha");
    let groups: Api<GatewayHAGroup> = Api::all(rig.client.clone());
    let spec = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "GatewayHAGroup",
        "metadata": {"name": group},
        "spec": {"mode": "Fast", "members": [
            {"physicalRouter": rig.routers["gw1"], "physicalInterface": "eth1", "priority": 200},
            {"physicalRouter": rig.routers["gw2"], "physicalInterface": "eth1", "priority": 100}]}});
    groups
        .patch(&group, &apply_params(), &Patch::Apply(&spec))
        .await
        .expect("group");
    let second = V1_ON_GW2;
    let li = rig.li_name(&second);
    let binding = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
        "metadata": {"name": li},
        "spec": {"physicalRouter": rig.routers["gw2"], "physicalInterface": "eth1", "vlan": V1.vlan,
                 "virtualMachineInterface": {"namespace": rig.ns.name(), "name": V1.name}}});
    Api::<LogicalInterface>::all(rig.client.clone())
        .patch(&li, &apply_params(), &Patch::Apply(&binding))
        .await
        .expect("the second binding");
    let routers = rig.routers.clone();
    let wait_active = |node: &'static str| {
        let router = routers[node].clone();
        let groups = groups.clone();
        let group = group.clone();
        async move {
            eventually(&format!("{node} active"), READY, || async {
                let status = groups
                    .get(&group)
                    .await
                    .map_err(|e| e.to_string())?
                    .status
                    .unwrap_or_default();
                if status.active_member.as_deref() == Some(router.as_str()) {
                    Ok(())
                } else {
                    Err(format!("{status:?}"))
                }
            })
            .await
        }
    };
    wait_active("gw1")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));

    rig.start_speaker().await;
    let peer = unique_name("frr");
    rig.apply(
        "bgppeers",
        false,
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "BGPPeer",
               "metadata": {"name": peer},
               "spec": {"address": DCGW, "peerASN": FRR_AS,
                        "timers": {"holdTimeSeconds": 9, "keepaliveSeconds": 3, "connectRetrySeconds": 1}}}),
    )
    .await;
    rig.wait_peer(&peer, "True", "Established", READY).await;
    let vni = rig.network_status("vpn").await.vni.expect("a VNI");
    let rd = format!("{CTL}:{vni}");
    let prefix = format!("{}/32", V1.ip);
    let label = rig.vmi_label(V1.name).await;
    let next_hop_is = |node: &'static str| {
        let (rd, prefix, frr) = (&rd, &prefix, &frr);
        async move {
            eventually(
                &format!("FRR's route to {prefix} via {node}"),
                Duration::from_secs(60),
                || async {
                    let route = frr
                        .vpn_routes_of("ipv4")
                        .get(&(rd.clone(), prefix.clone()))
                        .cloned();
                    let hop = route
                        .as_ref()
                        .and_then(|r| r["nexthops"][0]["ip"].as_str().map(str::to_owned));
                    let text = frr.vpn_route_detail(rd, prefix).to_string();
                    if hop.as_deref() == Some(underlay(node).as_str())
                        && text.contains(&format!("\"remoteLabel\":{label}"))
                    {
                        Ok(())
                    } else {
                        Err(format!("next hop {hop:?}: {text}"))
                    }
                },
            )
            .await
        }
    };
    next_hop_is("gw1")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));

    // gw1's trunk goes down: gw2 becomes active, and the route follows.
    // (Not a dead agent: with two members and no witness, the survivor
    // cannot tell the other's death from its own cut, and fences itself.)
    let out = rig.lab.exec("gw1", &["ip", "link", "set", "eth1", "down"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_active("gw2")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    next_hop_is("gw2")
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    drop(frr);
}

/// v1's second binding: on gw2's trunk, which reaches the same switch.
const V1_ON_GW2: Instance = Instance { node: "gw2", ..V1 };

/// An IPv6 instance, on gw1, in network "vpn6".
const V6: Instance = Instance {
    name: "v6",
    node: "gw1",
    vlan: 200,
    network: "vpn6",
    ip: "fd00:40::11",
    mac: "02:00:00:28:00:06",
};

/// VPNv6 (RFC 4659) over the IPv4 fabric: an IPv6 VMI's address is
/// exported (FRR holds it with our RD, RT, the VMI's label, the encapsulation
/// community and its node as next hop, IPv4-mapped), and FRR's VPNv6 route
/// with the import target becomes a route of the network's VRF: the
/// speaker's DCGateway names FRR's IPv4 address (not the IPv4-mapped next
/// hop the route carries), the operator reports it Ready, and the node's
/// installed tables hold the IPv6 prefix through the tunnel with FRR's
/// label; an IPv6 ping crosses MPLS over UDP both ways between the
/// instance and a host behind the DC gateway.
#[tokio::test]
async fn vpnv6_routes_are_exported_to_and_imported_from_frr() {
    let instances = [V6];
    let mut rig = Rig::start(
        &instances,
        |s| {
            s.dc_gateway(
                DcGatewaySpec::new("dcgw", &format!("{DCGW}/24")).host("ext", &format!("{EXT}/24")),
            )
            .host(FabricHostSpec::new("ctl").ip(&format!("{CTL}/24")))
        },
        &["--debug-tables"],
        false,
    )
    .await;
    let frr = start_frr(&rig.lab, "dcgw", &frr_config_with_ipv6(true));
    rig.apply_all(
        &[(
            V6.network,
            &V6.subnet(),
            json!({"l3vpn": {"exportRouteTargets": [EXPORT_RT], "importRouteTargets": [IMPORT_RT]}}),
        )],
        &instances,
    )
    .await;
    rig.start_speaker().await;
    let peer = unique_name("frr");
    rig.apply(
        "bgppeers",
        false,
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "BGPPeer",
               "metadata": {"name": peer},
               "spec": {"address": DCGW, "peerASN": FRR_AS,
                        "addressFamilies": ["IPv4VPN", "IPv6VPN"],
                        "timers": {"holdTimeSeconds": 9, "keepaliveSeconds": 3, "connectRetrySeconds": 1}}}),
    )
    .await;
    rig.wait_peer(&peer, "True", "Established", READY).await;

    // Export.
    let vni = rig.network_status(V6.network).await.vni.expect("a VNI");
    let rd = format!("{CTL}:{vni}");
    let label = rig.vmi_label(V6.name).await;
    let prefix = V6.host_prefix();
    let route = eventually(
        &format!("FRR has {prefix} (VPNv6)"),
        Duration::from_secs(30),
        || async {
            frr.vpn_routes_of("ipv6")
                .get(&(rd.clone(), prefix.clone()))
                .cloned()
                .ok_or_else(|| frr.vtysh("show bgp ipv6 vpn"))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    let detail = frr.vpn_route_detail(&rd, &prefix);
    let text = detail.to_string();
    eprintln!("FRR: {prefix}: {route}\n detail {text}");
    // FRR prints the IPv4-mapped next hop as `::ffff:a03:1`.
    let hop = route["nexthops"][0]["ip"]
        .as_str()
        .and_then(|h| h.parse::<std::net::IpAddr>().ok())
        .map(|h| h.to_canonical());
    assert_eq!(
        hop,
        underlay(V6.node).parse().ok(),
        "next hop: the node's IPv4 underlay address, IPv4-mapped: {route}"
    );
    assert!(
        route["nexthops"][0]["ip"]
            .as_str()
            .is_some_and(|h| h.starts_with("::ffff:")),
        "a VPNv6 next hop is an IPv6 address: {route}"
    );
    assert!(text.contains("RT:64512:100"), "route target: {text}");
    assert!(
        text.contains("ET:13"),
        "MPLSoUDP encapsulation community: {text}"
    );
    assert!(
        text.contains(&format!("\"remoteLabel\":{label}")),
        "label {label}: {text}"
    );
    assert!(
        !frr.vpn_routes_of("ipv4")
            .contains_key(&(rd.clone(), prefix.clone())),
        "an IPv6 route is not a VPNv4 one"
    );

    // Import: FRR's VPNv6 route reaches the network's VRF through a
    // DCGateway named by FRR's IPv4 address.
    let gateway = format!("bgp-{}", DCGW.replace('.', "-"));
    let api = rig.dynamic_api("DCGateway", "dcgateways", false);
    eventually(
        "the learned VPNv6 route's DCGateway is Ready",
        READY,
        || async {
            let object = api.get(&gateway).await.map_err(|e| e.to_string())?;
            let ready = object.data["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let spec = &object.data["spec"];
            // FRR's VPNv4 routes carry the same target: they come along.
            let routes = spec["networks"][0]["routes"].as_array().cloned();
            if ready
                && spec["address"] == DCGW
                && spec["networks"][0]["name"] == V6.network
                && routes.is_some_and(|r| {
                    r.contains(&json!({"prefix": FRR_V6_PREFIX, "label": FRR_V6_LABEL}))
                })
            {
                Ok(())
            } else {
                Err(format!("{}", object.data))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    let expected = format!("route {FRR_V6_PREFIX} peer DCGateway/{gateway} label {FRR_V6_LABEL}");
    let agent = &rig.agents[V6.node];
    eventually("the node's VRF holds FRR's IPv6 route", READY, || async {
        let (code, body) = trunkline_test_support::http_get(&agent.url("/debug/tables"))?;
        let tables: Value = serde_json::from_str(&body).map_err(|e| format!("{code}: {e}"))?;
        let installed = tables["installed"].as_str().unwrap_or_default();
        if installed.contains(&expected) {
            Ok(())
        } else {
            Err(format!("no {expected:?} in:\n{installed}"))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));

    // Traffic both ways: the host behind the DC gateway gets an address of
    // FRR's prefix; the DC gateway sends to the instance with the label and
    // next hop FRR learned from us (the lab's BPF encapsulation under an
    // IPv6 route; its decapsulation reads the inner version).
    for (at, command) in [
        ("dcgw", "ip -6 addr add 2001:db8:ff::1/64 dev eth1 nodad"),
        ("dcgw", "sysctl -qw net.ipv6.conf.all.forwarding=1"),
        ("ext", "ip -6 addr add 2001:db8:ff::10/64 dev eth0 nodad"),
        ("ext", "ip -6 route add default via 2001:db8:ff::1"),
    ] {
        let out = rig.lab.sh(at, command);
        assert!(
            out.status.success(),
            "{at}: {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    rig.lab
        .add_dc_gateway_route(
            "dcgw",
            DcGatewayRoute {
                to: prefix.parse().expect("prefix"),
                node: underlay(V6.node).parse().expect("address"),
                label,
            },
        )
        .expect("a DC gateway route");
    rig.ping_eventually(V6.name, "2001:db8:ff::10").await;
    rig.ping_eventually("ext", V6.ip).await;
    drop(frr);
}

/// The speaker's probes, against the real API server (no peer, no lab:
/// gobgpd runs here and only connects out): `/readyz` says the active
/// speaker is ready once gobgpd answers and holds what it should; when
/// gobgpd is gone and cannot be started again (its binary replaced by one
/// that exits at once) `/readyz` turns 503 and says why while `/healthz`
/// stays 200 (the process is fine); with the binary back, gobgpd is
/// started again and the speaker is ready again.
#[tokio::test]
async fn the_speakers_readiness_follows_its_gobgpd() {
    let _serial = SERIAL.lock().await;
    let plane = ControlPlane::shared();
    let client = plane.client().await.expect("client");
    clear_earlier_tests(&client).await;
    let ns = plane.namespace("ns").await.expect("namespace");
    let dir = std::env::temp_dir().join(unique_name("gobgpd-bin"));
    std::fs::create_dir_all(&dir).expect("a directory");
    let binary = dir.join("gobgpd");
    std::fs::copy(gobgpd(), &binary).expect("a copy of gobgpd");
    let speaker = start_speaker_process(ns.name(), &binary, None, None, &[]).await;
    let get = |path: &str| http_get(&speaker.url(path)).unwrap_or((0, String::new()));
    speaker.wait_ready(READY).await;
    let (code, body) = get("/readyz");
    assert!(code == 200 && body.starts_with("active"), "{code}: {body}");
    let first = speaker.pid().and_then(gobgpd_child).expect("gobgpd runs");

    // gobgpd dies and cannot come back.
    std::fs::remove_file(&binary).expect("remove");
    std::fs::write(&binary, "#!/bin/sh\nexit 1\n").expect("a failing gobgpd");
    std::fs::set_permissions(&binary, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let killed = Command::new("kill")
        .args(["-9", &first.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    eventually("/readyz turns 503", Duration::from_secs(10), || async {
        match get("/readyz") {
            (503, body) if body.contains("gobgpd") => Ok(body),
            (code, body) => Err(format!("{code}: {body}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; log: {}", speaker.log().display()));
    // Once a start has failed, it says how (the new one never answers).
    let why = eventually("/readyz says why", Duration::from_secs(60), || async {
        match get("/readyz") {
            (503, body) if body.contains("did not answer") => Ok(body),
            (code, body) => Err(format!("{code}: {body}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; log: {}", speaker.log().display()));
    eprintln!("/readyz without gobgpd: {why}");
    assert_eq!(get("/healthz").0, 200, "the speaker itself is alive");

    // gobgpd can start again: ready again, with a new gobgpd.
    std::fs::remove_file(&binary).expect("remove");
    std::fs::copy(gobgpd(), &binary).expect("gobgpd back");
    eventually("ready again", Duration::from_secs(60), || async {
        let child = speaker.pid().and_then(gobgpd_child);
        match get("/readyz") {
            (200, body) if child.is_some_and(|c| c != first) => Ok(body),
            (code, body) => Err(format!("{code}: {body}; gobgpd {child:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; log: {}", speaker.log().display()));
    let last = speaker.pid().and_then(gobgpd_child);
    drop(speaker);
    if let Some(pid) = last {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A SIGKILLed speaker leaves no gobgpd behind (nothing can clean up
/// after a SIGKILL: the kernel's parent-death signal, set by the shim gobgpd
/// is started through, kills it), and a speaker that ends normally
/// (SIGTERM) stops its gobgpd too.
#[tokio::test]
async fn gobgpd_dies_with_its_speaker() {
    let _serial = SERIAL.lock().await;
    let plane = ControlPlane::shared();
    let client = plane.client().await.expect("client");
    clear_earlier_tests(&client).await;
    let ns = plane.namespace("ns").await.expect("namespace");
    let binary = gobgpd();
    let wait_gone = |pid: u32, what: &'static str| async move {
        eventually(what, Duration::from_secs(10), || async {
            if process_gone(pid) {
                Ok(())
            } else {
                Err(format!("gobgpd {pid} still runs"))
            }
        })
        .await
    };
    for sigkill in [true, false] {
        let mut speaker = start_speaker_process(ns.name(), &binary, None, None, &[]).await;
        speaker.wait_ready(READY).await;
        let gobgpd = speaker.pid().and_then(gobgpd_child).expect("gobgpd runs");
        let status = std::fs::read_to_string(format!("/proc/{gobgpd}/status")).unwrap_or_default();
        assert!(
            status.lines().any(|l| l == "Name:\tgobgpd"),
            "the shim became gobgpd (same pid): {status}"
        );
        let log = speaker.log().display().to_string();
        if sigkill {
            speaker.kill();
        } else {
            speaker.stop(Duration::from_secs(10));
        }
        if let Err(e) = wait_gone(
            gobgpd,
            if sigkill {
                "gobgpd gone after its speaker's SIGKILL"
            } else {
                "gobgpd gone after its speaker's SIGTERM"
            },
        )
        .await
        {
            let _ = Command::new("kill")
                .args(["-9", &gobgpd.to_string()])
                .status();
            panic!("{e}; speaker log: {log}");
        }
    }
}

/// Two BGPPeers naming one address, against the real API server and a
/// real gobgpd (here, connecting out to an address nobody answers): the
/// later object gets `Accepted=False`, reason `AddressConflict`, naming
/// the first, and no session state of its own; the first is configured
/// and reported as before; once the first is deleted, the other takes the
/// address over.
#[tokio::test]
async fn a_second_bgppeer_with_the_same_address_is_refused() {
    let _serial = SERIAL.lock().await;
    let plane = ControlPlane::shared();
    let client = plane.client().await.expect("client");
    clear_earlier_tests(&client).await;
    let ns = plane.namespace("ns").await.expect("namespace");
    let speaker = start_speaker_process(ns.name(), &gobgpd(), None, None, &[]).await;
    speaker.wait_ready(READY).await;
    let log = speaker.log().display().to_string();
    let api = {
        let resource = kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("trunkline.io", "v1alpha1", "BGPPeer"),
            "bgppeers",
        );
        Api::<kube::core::DynamicObject>::all_with(client.clone(), &resource)
    };
    let apply = |name: String, asn: u32| {
        let api = api.clone();
        async move {
            let peer = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "BGPPeer",
                "metadata": {"name": name},
                "spec": {"address": "192.0.2.77", "peerASN": asn,
                         "timers": {"connectRetrySeconds": 1}}});
            api.patch(&name, &apply_params(), &Patch::Apply(&peer))
                .await
                .unwrap_or_else(|e| panic!("BGPPeer {name}: {e}"));
        }
    };
    // Names ordered as the creations, should both fall in one second.
    let first = unique_name("first");
    let second = unique_name("second");
    apply(first.clone(), 65010).await;
    let wait = |name: String, type_: &'static str, status: &'static str, reason: &'static str| {
        let client = client.clone();
        let log = log.clone();
        async move {
            wait_peer_condition(
                &client,
                &name,
                type_,
                status,
                reason,
                Duration::from_secs(60),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}; speaker log: {log}"))
        }
    };
    wait(first.clone(), "Ready", "False", "PeerUnreachable").await;
    apply(second.clone(), 65011).await;
    let refused = wait(second.clone(), "Accepted", "False", "AddressConflict").await;
    eprintln!("the second: {refused}");
    let message = condition(&refused, "Accepted")["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains(&first) && message.contains("192.0.2.77"),
        "names the first and the address: {message}"
    );
    assert_eq!(condition(&refused, "Ready")["reason"], "AddressConflict");
    assert!(refused["sessionState"].is_null(), "{refused}");
    let kept = peer_status(&client, &first).await;
    assert_eq!(condition(&kept, "Accepted")["status"], "True", "{kept}");
    assert_eq!(
        condition(&kept, "Ready")["reason"],
        "PeerUnreachable",
        "{kept}"
    );
    assert!(kept["sessionState"].is_string(), "{kept}");

    // The first goes: the second takes the address.
    api.delete(&first, &Default::default())
        .await
        .expect("delete the first");
    let took = wait(second.clone(), "Accepted", "True", "Ok").await;
    wait(second.clone(), "Ready", "False", "PeerUnreachable").await;
    eprintln!("the second, alone: {took}");
    api.delete(&second, &Default::default())
        .await
        .expect("delete the second");
    drop(speaker);
}

/// Graceful restart (RFC 4724), with FRR as helper (its default): the
/// speaker advertises a restart time; gobgpd is SIGKILLed (no
/// NOTIFICATION) and restarted by its speaker, which tells the new gobgpd
/// it restarted (Restart State and Forwarding State bits): FRR keeps our
/// route all along, marked stale while the session is down, and holds it
/// fresh again (same label and next hop) once the new gobgpd has sent it.
#[tokio::test]
async fn graceful_restart_keeps_frrs_routes_while_gobgpd_restarts() {
    let instances = [V1];
    let mut rig = Rig::start(
        &instances,
        |s| {
            s.dc_gateway(DcGatewaySpec::new("dcgw", &format!("{DCGW}/24")))
                .host(FabricHostSpec::new("ctl").ip(&format!("{CTL}/24")))
        },
        &[],
        false,
    )
    .await;
    let frr = start_frr(&rig.lab, "dcgw", &frr_config());
    rig.apply_all(
        &[(
            "vpn",
            &V1.subnet(),
            json!({"l3vpn": {"exportRouteTargets": [EXPORT_RT], "importRouteTargets": [IMPORT_RT]}}),
        )],
        &instances,
    )
    .await;
    rig.start_speaker_with(None, &["--graceful-restart-seconds", "60"])
        .await;
    let peer = unique_name("frr");
    rig.apply(
        "bgppeers",
        false,
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "BGPPeer",
               "metadata": {"name": peer},
               "spec": {"address": DCGW, "peerASN": FRR_AS,
                        "timers": {"holdTimeSeconds": 9, "keepaliveSeconds": 3, "connectRetrySeconds": 1}}}),
    )
    .await;
    rig.wait_peer(&peer, "True", "Established", READY).await;
    let vni = rig.network_status("vpn").await.vni.expect("a VNI");
    let rd = format!("{CTL}:{vni}");
    let prefix = V1.host_prefix();
    let route = (rd.clone(), prefix.clone());
    let label = rig.vmi_label(V1.name).await;
    let fresh = |r: &Value| r["stale"] != true && r["nexthops"][0]["ip"] == underlay(V1.node);
    eventually("FRR has our route", Duration::from_secs(30), || async {
        match frr.vpn_routes_of("ipv4").get(&route) {
            Some(r) if fresh(r) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    let neighbor: Value =
        serde_json::from_str(&frr.vtysh(&format!("show bgp neighbors {CTL} json")))
            .unwrap_or_default();
    eprintln!(
        "FRR's view of our graceful restart: {}",
        neighbor[CTL]["gracefulRestartInfo"]
    );

    // gobgpd dies; FRR never loses the route: stale while the session is
    // down, fresh once the new gobgpd has sent it again.
    let old = rig.gobgpd_pid().expect("gobgpd runs under the speaker");
    let killed = Command::new("kill")
        .args(["-9", &old.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (mut samples, mut stale_seen) = (0, 0);
    loop {
        let routes = frr.vpn_routes_of("ipv4");
        let Some(r) = routes.get(&route) else {
            panic!(
                "FRR dropped our route after {samples} samples ({stale_seen} stale): {}\n{}",
                frr.vtysh("show bgp ipv4 vpn"),
                rig.logs()
            );
        };
        samples += 1;
        if r["stale"] == true {
            stale_seen += 1;
        } else if stale_seen > 0 && fresh(r) && rig.gobgpd_pid().is_some_and(|p| p != old) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no fresh route again within 60 s ({samples} samples, {stale_seen} stale): {r}\n{}",
            rig.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("{samples} samples, {stale_seen} of them stale, the route never gone");
    let detail = frr.vpn_route_detail(&rd, &prefix).to_string();
    assert!(
        detail.contains(&format!("\"remoteLabel\":{label}")),
        "label {label}: {detail}"
    );
    rig.wait_peer(&peer, "True", "Established", Duration::from_secs(30))
        .await;
    drop(frr);
}
