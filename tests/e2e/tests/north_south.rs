//! North-south end to end (seed 004): the three ways out of the overlay
//! besides a virtual gateway, on two gateway nodes.
//!
//! ```text
//!      pub 10.3.0.253 (an underlay service)      dcgw 10.3.0.200 (DC gateway: MPLS over UDP,
//!            |                                        |     the lab's BPF decapsulator) -- ext 203.0.113.10
//!   =========+========= fabric bridge 10.3.0.0/24 ====+==========
//!       eth0 .1 |                          eth0 .2 |
//!        [gw1] agent                        [gw2] agent        (one operator)
//!          eth1 (VLANs)                       eth1 (VLANs)
//!   SNAT:       s1 (100), s2 (101)         s3 (100)           192.168.20.0/24
//!   no exit:    n1 (300)                                      192.168.50.0/24
//!   IP fabric:  f1 (100)                   f2 (100)           192.168.30.0/24, routed by pub via gw1
//!   DC gateway: d1 (100)                   d2 (100)           192.168.40.0/24 <-> 203.0.113.0/24
//! ```
//!
//! Each test builds its own rig. What leaves a node is checked where it
//! arrives, by other implementations: the kernel of the fabric host (its
//! sockets see the node's address), tshark decoding the bytes on the
//! fabric, and the lab's DC gateway (a BPF decapsulator in front of the
//! kernel's routing) answering the MPLS over UDP the nodes send.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use trunkline_api::{LogicalInterface, PhysicalRouter, VirtualMachineInterface, VirtualNetwork};
use trunkline_test_support::lab::{
    DcGatewayRoute, DcGatewaySpec, Limit, MPLS_OVER_UDP, poll_until,
};
use trunkline_test_support::{
    ControlPlane, FabricHostSpec, InstanceSpec, Lab, LabSpec, ManagedProcess, NodeSpec,
    TestNamespace, eventually, free_local_addr, unique_name, workspace_binary,
};

const READY: Duration = Duration::from_secs(120);
const NODES: [&str; 2] = ["gw1", "gw2"];
/// The fabric host: an underlay service outside the overlay.
const PUB: &str = "10.3.0.253";
/// The DC gateway's fabric address and the host behind it.
const DCGW: &str = "10.3.0.200";
const EXT: &str = "203.0.113.10";
/// The label the DC gateway gives its route to 203.0.113.0/24.
const DCGW_LABEL: u32 = 5000;
/// The agents' SNAT range (the default).
const SNAT_PORTS: core::ops::RangeInclusive<u32> = 61000..=65535;

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
    /// Its network's gateway: `.1` of its /24.
    fn gateway(&self) -> String {
        let (net, _) = self.ip.rsplit_once('.').expect("IPv4");
        format!("{net}.1")
    }

    fn subnet(&self) -> String {
        let (net, _) = self.ip.rsplit_once('.').expect("IPv4");
        format!("{net}.0/24")
    }
}

const S1: Instance = Instance {
    name: "s1",
    node: "gw1",
    vlan: 100,
    network: "snat",
    ip: "192.168.20.11",
    mac: "02:00:00:14:00:01",
};
const S2: Instance = Instance {
    name: "s2",
    node: "gw1",
    vlan: 101,
    network: "snat",
    ip: "192.168.20.12",
    mac: "02:00:00:14:00:02",
};
const S3: Instance = Instance {
    name: "s3",
    node: "gw2",
    vlan: 100,
    network: "snat",
    ip: "192.168.20.13",
    mac: "02:00:00:14:00:03",
};
/// In a network without any north-south setting.
const N1: Instance = Instance {
    name: "n1",
    node: "gw1",
    vlan: 300,
    network: "plain",
    ip: "192.168.50.11",
    mac: "02:00:00:32:00:01",
};
const F1: Instance = Instance {
    name: "f1",
    node: "gw1",
    vlan: 100,
    network: "fabric",
    ip: "192.168.30.11",
    mac: "02:00:00:1e:00:01",
};
const F2: Instance = Instance {
    name: "f2",
    node: "gw2",
    vlan: 100,
    network: "fabric",
    ip: "192.168.30.12",
    mac: "02:00:00:1e:00:02",
};
const D1: Instance = Instance {
    name: "d1",
    node: "gw1",
    vlan: 100,
    network: "dc",
    ip: "192.168.40.11",
    mac: "02:00:00:28:00:01",
};
const D2: Instance = Instance {
    name: "d2",
    node: "gw2",
    vlan: 100,
    network: "dc",
    ip: "192.168.40.12",
    mac: "02:00:00:28:00:02",
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
}

impl Rig {
    /// The two nodes, these instances, `extra` parts of the lab; the
    /// operator, and agents started with `agent_flags` besides the usual.
    async fn start(
        instances: &[Instance],
        extra: impl FnOnce(LabSpec) -> LabSpec,
        agent_flags: &[&str],
    ) -> Rig {
        let plane = ControlPlane::shared();
        let ns = plane.namespace("ns").await.expect("namespace");
        let client = plane.client().await.expect("client");
        let mut spec = LabSpec::new();
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
                // The XDP tier, without fallback: it hands first packets
                // to the pipeline and translates established SNAT flows
                // itself, from the flow map the agent mirrors.
                "--backend".into(),
                "xdp".into(),
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

    fn logs(&self) -> String {
        let mut out = format!("operator log: {}", self.operator.log().display());
        for (node, agent) in &self.agents {
            out.push_str(&format!("\n{node} agent log: {}", agent.log().display()));
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

    /// Network `name` of `subnet` (gateway `.1`) with extra spec fields.
    async fn apply_network(&self, name: &str, subnet: &str, extra: Value) {
        let gateway = format!("{}.1", subnet.rsplit_once('.').expect("IPv4").0);
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

    fn metric(&self, node: &str, sample: &str) -> f64 {
        self.agents[node].metric(sample).unwrap_or(0.0)
    }

    fn drops(&self, node: &str, reason: &str) -> f64 {
        self.metric(
            node,
            &format!("trunkline_dataplane_drops_total{{reason=\"{reason}\"}}"),
        )
    }

    /// Waits until `sample` of `node`'s metrics satisfies `ok`.
    async fn wait_metric(&self, node: &str, sample: &str, ok: impl Fn(f64) -> bool) -> f64 {
        eventually(
            &format!("{node}: {sample}"),
            Duration::from_secs(30),
            || async {
                let v = self.metric(node, sample);
                if ok(v) { Ok(v) } else { Err(format!("{v}")) }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// Starts `script` (Python) in `name`'s namespace; it listens on
    /// `port` (`udp` or `tcp`) before this returns.
    fn serve(&self, name: &str, proto: &str, port: u16, script: &str) -> std::process::Child {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.lab.namespace(name),
                "/usr/bin/python3",
                "-c",
                script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python runs");
        let flag = if proto == "udp" { "-Hlun" } else { "-Hltn" };
        let listening = poll_until(
            &format!("{name} listens on {proto} {port}"),
            Duration::from_secs(10),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("exited: {status}"));
                }
                let out = self
                    .lab
                    .exec(name, &["ss", flag, &format!("sport = :{port}")]);
                if String::from_utf8_lossy(&out.stdout).contains(&format!(":{port}")) {
                    Ok(())
                } else {
                    Err("not yet".to_owned())
                }
            },
        );
        if let Err(e) = listening {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
        }
        child
    }

    /// Runs `script` (Python) in each of `names`' namespaces at once; their
    /// outputs, in order.
    fn run_at_once(&self, names: &[&str], script: impl Fn(&str) -> String) -> Vec<String> {
        let children: Vec<_> = names
            .iter()
            .map(|name| {
                Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &self.lab.namespace(name),
                        "/usr/bin/python3",
                        "-c",
                        &script(name),
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("python runs")
            })
            .collect();
        children
            .into_iter()
            .zip(names)
            .map(|(child, name)| {
                let out = child.wait_with_output().expect("wait");
                assert!(
                    out.status.success(),
                    "{name}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            })
            .collect()
    }
}

/// A server's output: one line `<client name> <address> <port>` per client.
fn peers(out: std::process::Output) -> BTreeMap<String, (String, u32)> {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "server: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((
                w.next()?.to_owned(),
                (w.next()?.to_owned(), w.next()?.parse().ok()?),
            ))
        })
        .collect()
}

/// A UDP echo server on `port` that stops once each of `names` was heard:
/// it answers `echo:<what it got>` and prints who sent it from where.
fn udp_echo_server(port: u16, names: &[&str]) -> String {
    format!(
        r#"
import socket
want = set({names:?})
seen = {{}}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", {port}))
s.settimeout(30)
while want - set(seen):
    data, peer = s.recvfrom(100)
    s.sendto(b"echo:" + data, peer)
    seen[data.decode()] = peer
for name, (ip, port) in sorted(seen.items()):
    print(name, ip, port)
"#
    )
}

/// A TCP server on `port` that answers `count` connections with
/// `echo:<what it got>` and prints who sent it from where.
fn tcp_echo_server(port: u16, count: usize) -> String {
    format!(
        r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {port}))
s.listen(8)
s.settimeout(30)
for _ in range({count}):
    c, (ip, port) = s.accept()
    c.settimeout(10)
    data = c.recv(100)
    c.sendall(b"echo:" + data)
    c.close()
    print(data.decode(), ip, port)
"#
    )
}

/// A UDP client that sends its name from source port `sport` to `to`
/// until it hears the echo, and prints it.
fn udp_client(name: &str, sport: u16, to: &str, port: u16) -> String {
    format!(
        r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {sport}))
s.settimeout(1)
for _ in range(20):
    s.sendto(b"{name}", ("{to}", {port}))
    try:
        print(s.recv(100).decode())
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit("no echo")
"#
    )
}

/// A TCP client that connects from source port `sport`, sends its name
/// and prints the answer.
fn tcp_client(name: &str, sport: u16, to: &str, port: u16) -> String {
    format!(
        r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {sport}))
s.settimeout(10)
s.connect(("{to}", {port}))
s.sendall(b"{name}")
print(s.recv(100).decode())
s.close()
"#
    )
}

/// Distributed SNAT: instances on two nodes reach a host of the fabric,
/// which sees each node's own address; two instances of one node using
/// the same source port (TCP, UDP) or echo identifier get distinct
/// translations and their own answers; an ICMP error about a flow reaches
/// the instance; flows are counted and expire; a full flow table is a
/// counted drop the node recovers from; a network without a north-south
/// setting reaches nothing beyond its VRF and is unreachable from the
/// fabric.
#[tokio::test]
async fn distributed_snat_translates_to_each_nodes_address_and_back() {
    let instances = [S1, S2, S3, N1];
    // Short timeouts and a small table, to see expiry and exhaustion.
    let rig = Rig::start(
        &instances,
        |s| {
            // The fabric even routes the plain network to gw1: it must
            // still not be reachable.
            s.host(
                FabricHostSpec::new("pub")
                    .ip(&format!("{PUB}/24"))
                    .route(&N1.subnet(), &underlay("gw1")),
            )
        },
        &[
            "--flow-table-size",
            "24",
            "--flow-timeout-udp",
            "3",
            "--flow-timeout-icmp",
            "3",
            "--flow-timeout-tcp-transitory",
            "3",
        ],
    )
    .await;
    rig.apply_all(
        &[
            ("snat", &S1.subnet(), json!({"northSouth": {"snat": true}})),
            ("plain", &N1.subnet(), json!({})),
        ],
        &instances,
    )
    .await;
    let status = rig.network_status("snat").await;
    assert_eq!(
        status.fabric_exit.map(|e| format!("{e:?}")).as_deref(),
        Some("Snat"),
        "{status:?}"
    );
    assert_eq!(rig.network_status("plain").await.fabric_exit, None);

    rig.ping_eventually("s1", PUB).await;
    rig.ping_eventually("s3", PUB).await;

    // UDP from the same source port on s1 and s2 (gw1) and on s3 (gw2),
    // at once: the fabric host sees gw1's address twice, with two ports of
    // the range, and gw2's; each instance hears its own echo.
    let server = rig.serve(
        "pub",
        "udp",
        7000,
        &udp_echo_server(7000, &["s1", "s2", "s3"]),
    );
    let echoes = rig.run_at_once(&["s1", "s2", "s3"], |name| {
        udp_client(name, 5555, PUB, 7000)
    });
    assert_eq!(echoes, ["echo:s1", "echo:s2", "echo:s3"]);
    let udp = peers(server.wait_with_output().expect("server"));
    check_translations(&udp, "UDP");

    // TCP the same way, all from source port 40000.
    let server = rig.serve("pub", "tcp", 7001, &tcp_echo_server(7001, 3));
    let answers = rig.run_at_once(&["s1", "s2", "s3"], |name| {
        tcp_client(name, 40000, PUB, 7001)
    });
    assert_eq!(answers, ["echo:s1", "echo:s2", "echo:s3"]);
    let tcp = peers(server.wait_with_output().expect("server"));
    check_translations(&tcp, "TCP");

    // ICMP echo with one identifier from s1 and s2 at once, each with its
    // own payload pattern: the fabric host sees gw1's address with two
    // identifiers of the range; each ping gets its own replies back.
    let capture = rig
        .lab
        .capture(
            "pub",
            "eth0",
            "icmp[icmptype] == icmp-echo",
            Limit::packets(6).within(Duration::from_secs(20)),
        )
        .expect("capture on pub");
    let pings: Vec<_> = [("s1", "a1a1"), ("s2", "b2b2")]
        .iter()
        .map(|(name, pattern)| {
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &rig.lab.namespace(name),
                    "ping",
                    "-c",
                    "3",
                    "-i",
                    "0.2",
                    "-W",
                    "2",
                    "-e",
                    "4242",
                    "-p",
                    pattern,
                    PUB,
                ])
                .output()
                .expect("ping")
        })
        .collect();
    for (out, name) in pings.iter().zip(["s1", "s2"]) {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !text.contains("wrong data"),
            "{name} pings with identifier 4242 and gets its own replies:\n{text}"
        );
    }
    let packets = capture
        .finish()
        .expect("capture")
        .fields(&["ip.src", "icmp.ident"], &[])
        .expect("decode");
    let idents: BTreeSet<u32> = packets
        .iter()
        .map(|p| {
            assert_eq!(
                p.first("ip.src"),
                Some(underlay("gw1").as_str()),
                "{packets:?}"
            );
            p.first("icmp.ident")
                .and_then(|i| i.parse().ok())
                .expect("an identifier")
        })
        .collect();
    assert_eq!(idents.len(), 2, "two translated identifiers: {packets:?}");
    // The echoes after each ping's first, and replies, were translated by
    // the XDP tier's flow stage from the entries the agent mirrored: at
    // least the second and third requests of both pings (the replies may
    // come before the mirror's write).
    rig.wait_metric("gw1", "trunkline_dataplane_xdp_tier_flow_hits_total", |v| {
        v >= 4.0
    })
    .await;
    assert!(
        idents.iter().all(|i| SNAT_PORTS.contains(i)),
        "identifiers from the SNAT range: {idents:?}"
    );

    // An ICMP error about a flow (port unreachable from the host's kernel)
    // is translated back: s1's socket hears "connection refused".
    let out = rig.lab.exec(
        "s1",
        &[
            "/usr/bin/python3",
            "-c",
            &format!(
                r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("{PUB}", 9))
s.settimeout(1)
for _ in range(5):
    s.send(b"x")
    try:
        s.recv(10)
    except ConnectionRefusedError:
        print("refused")
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit("no ICMP error came back")
"#
            ),
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Flows are counted on the node that made them, and nowhere else.
    let created = |node| rig.metric(node, "trunkline_dataplane_flows_created_total");
    assert!(created("gw1") >= 7.0, "gw1 made flows: {}", created("gw1"));
    assert!(created("gw2") >= 3.0, "gw2 made flows: {}", created("gw2"));
    assert!(rig.metric("gw1", "trunkline_dataplane_flows") >= 1.0);

    // They expire (3 s here; TCP after its FINs): the table empties, and a
    // late answer to an expired translation is dropped, counted.
    for node in NODES {
        rig.wait_metric(node, "trunkline_dataplane_flows", |v| v == 0.0)
            .await;
        assert!(rig.metric(node, "trunkline_dataplane_flows_expired_total") >= 1.0);
    }
    let (_, s1_port) = &udp["s1"];
    let late = rig.drops("gw1", "snat_no_flow");
    let out = rig.lab.sh(
        "pub",
        &format!(
            "printf late | nc -u -w1 -p 7000 {} {s1_port}",
            underlay("gw1")
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rig.wait_metric(
        "gw1",
        "trunkline_dataplane_drops_total{reason=\"snat_no_flow\"}",
        |v| v > late,
    )
    .await;

    // Exhaustion: 40 new UDP flows from s1 into a table of 24: the rest
    // are counted drops, the node keeps forwarding, and once the flows
    // expire new ones are made again.
    let out = rig.lab.exec(
        "s1",
        &[
            "/usr/bin/python3",
            "-c",
            &format!(
                r#"
import socket
for port in range(20000, 20040):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.sendto(b"x", ("{PUB}", 7002))
    s.close()
"#
            ),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rig.wait_metric(
        "gw1",
        "trunkline_dataplane_flow_allocation_failures_total{reason=\"table_full\"}",
        |v| v >= 16.0,
    )
    .await;
    assert!(rig.drops("gw1", "flow_table_full") >= 16.0);
    let flows = rig.metric("gw1", "trunkline_dataplane_flows");
    assert!(flows <= 24.0, "the table is bounded: {flows} flows");
    rig.wait_metric("gw1", "trunkline_dataplane_flows", |v| v == 0.0)
        .await;
    rig.ping_eventually("s2", PUB).await;

    // The plain network has no way out: n1 reaches nothing beyond its
    // VRF (counted as no_route), and the fabric host, though it routes
    // n1's subnet to gw1, cannot reach n1.
    let no_route = rig.drops("gw1", "no_route");
    let (ok, out) = rig.lab.ping("n1", PUB, 2);
    assert!(!ok, "n1 has no north-south exit, yet reaches {PUB}: {out}");
    rig.wait_metric(
        "gw1",
        "trunkline_dataplane_drops_total{reason=\"no_route\"}",
        |v| v >= no_route + 2.0,
    )
    .await;
    let n1_tx = format!(
        "trunkline_dataplane_vmi_packets_total{{vmi=\"{}/n1\",direction=\"tx\"}}",
        rig.ns.name()
    );
    let before = rig.metric("gw1", &n1_tx);
    let (ok, out) = rig.lab.ping("pub", N1.ip, 2);
    assert!(
        !ok,
        "the fabric reaches n1 without a north-south exit: {out}"
    );
    assert_eq!(rig.metric("gw1", &n1_tx), before, "nothing was sent to n1");

    // The node's own sockets are untouched: gw1's host talks to pub.
    let (ok, out) = rig.lab.ping("gw1", PUB, 2);
    assert!(ok, "{out}");
    let received = rig
        .lab
        .tcp("gw1", "pub", PUB, 7003, "host-traffic")
        .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));
    assert_eq!(received, "host-traffic");
}

/// What a server on the fabric host saw of s1, s2 (on gw1) and s3 (on
/// gw2), all from one source port: each node's address, ports of the SNAT
/// range, distinct for the two instances of gw1.
fn check_translations(seen: &BTreeMap<String, (String, u32)>, what: &str) {
    let gw1 = underlay("gw1");
    let gw2 = underlay("gw2");
    assert_eq!(seen["s1"].0, gw1, "{what}: {seen:?}");
    assert_eq!(seen["s2"].0, gw1, "{what}: {seen:?}");
    assert_eq!(seen["s3"].0, gw2, "{what}: {seen:?}");
    assert_ne!(seen["s1"].1, seen["s2"].1, "{what}: {seen:?}");
    assert!(
        seen.values().all(|(_, port)| SNAT_PORTS.contains(port)),
        "{what}: ports from the SNAT range: {seen:?}"
    );
}

/// IP fabric forwarding with the network on two nodes and the fabric
/// routing its whole subnet to gw1: instances on both nodes reach the
/// fabric host with their own addresses, untunneled, and it reaches them,
/// gw1 tunnelling on what is for gw2.
#[tokio::test]
async fn ip_fabric_forwarding_both_ways_with_the_subnet_routed_to_one_node() {
    let instances = [F1, F2];
    let rig = Rig::start(
        &instances,
        |s| {
            s.host(
                FabricHostSpec::new("pub")
                    .ip(&format!("{PUB}/24"))
                    .route(&F1.subnet(), &underlay("gw1")),
            )
        },
        &[],
    )
    .await;
    rig.apply_all(
        &[(
            "fabric",
            &F1.subnet(),
            json!({"northSouth": {"ipFabricForwarding": true}}),
        )],
        &instances,
    )
    .await;
    let status = rig.network_status("fabric").await;
    assert_eq!(
        status.fabric_exit.map(|e| format!("{e:?}")).as_deref(),
        Some("IpFabricForwarding"),
        "{status:?}"
    );

    // f2 (gw2) -> pub leaves gw2 as it is: pub sees f2's own address, one
    // hop less, no tunnel; the answer goes to gw1, which tunnels it to gw2.
    let on_pub = rig
        .lab
        .capture(
            "pub",
            "eth0",
            "icmp[icmptype] == icmp-echo",
            Limit::packets(1).within(Duration::from_secs(45)),
        )
        .expect("capture on pub");
    rig.ping_eventually("f2", PUB).await;
    let packets = on_pub
        .finish()
        .expect("capture")
        .fields(&["ip.src", "ip.ttl", "udp.dstport"], &[])
        .expect("decode");
    assert_eq!(packets[0].first("ip.src"), Some(F2.ip), "{packets:?}");
    assert_eq!(packets[0].first("ip.ttl"), Some("63"), "{packets:?}");
    assert_eq!(packets[0].first("udp.dstport"), None, "untunneled");
    rig.ping_eventually("f1", PUB).await;

    // pub -> f1 (on gw1) and f2 (behind gw1, on gw2).
    let tunnel = rig
        .lab
        .capture(
            rig.lab.fabric(),
            "br0",
            &format!(
                "udp dst port 6635 and src host {} and dst host {}",
                underlay("gw1"),
                underlay("gw2")
            ),
            Limit::packets(1).within(Duration::from_secs(30)),
        )
        .expect("capture on the fabric");
    rig.ping_eventually("pub", F1.ip).await;
    rig.ping_eventually("pub", F2.ip).await;
    let packets = tunnel
        .finish()
        .expect("capture")
        .fields(&["ip.src", "ip.dst", "mpls.label"], &[MPLS_OVER_UDP])
        .expect("decode");
    assert_eq!(packets[0].last("ip.src"), Some(PUB), "{packets:?}");
    assert_eq!(packets[0].last("ip.dst"), Some(F2.ip), "{packets:?}");
    let label = rig.vmi_label("f2").await;
    assert_eq!(
        packets[0].first("mpls.label"),
        Some(label.to_string().as_str()),
        "gw1 tunnels to f2's routed label"
    );

    for (from, server, to, port) in [
        ("pub", "f2", F2.ip, 7101),
        ("f2", "pub", PUB, 7102),
        ("f1", "pub", PUB, 7103),
    ] {
        let payload = format!("ip-fabric-{from}-{server}");
        let received = rig
            .lab
            .tcp(from, server, to, port, &payload)
            .unwrap_or_else(|e| panic!("TCP {from} -> {to}: {e}\n{}", rig.logs()));
        assert_eq!(received, payload);
    }
    for node in NODES {
        assert_eq!(
            rig.metric(node, "trunkline_dataplane_flows_created_total"),
            0.0
        );
    }
}

/// A DC gateway (the lab's: BPF decapsulation in front of the kernel's
/// routing) serves a network on two nodes: the instances reach the host
/// behind it by MPLS over UDP with the gateway's label, the host reaches
/// them with theirs; tshark decodes what the nodes send.
#[tokio::test]
async fn a_dc_gateway_carries_the_network_both_ways_over_mpls_over_udp() {
    let instances = [D1, D2];
    let mut rig = Rig::start(
        &instances,
        |s| {
            s.dc_gateway(
                DcGatewaySpec::new("dcgw", &format!("{DCGW}/24")).host("ext", &format!("{EXT}/24")),
            )
        },
        &[],
    )
    .await;
    rig.apply_all(&[("dc", &D1.subnet(), json!({}))], &instances)
        .await;
    let name = unique_name("dcgw");
    rig.apply(
        "dcgateways",
        false,
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "DCGateway",
               "metadata": {"name": name},
               "spec": {"address": DCGW,
                        "networks": [{"namespace": rig.ns.name(), "name": "dc",
                                      "routes": [{"prefix": "203.0.113.0/24", "label": DCGW_LABEL}]}]}}),
    )
    .await;
    let api = rig.dynamic_api("DCGateway", "dcgateways", false);
    eventually("the DCGateway is Ready", READY, || async {
        let object = api.get(&name).await.map_err(|e| e.to_string())?;
        let ready = object.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        if ready {
            Ok(())
        } else {
            Err(format!("{}", object.data["status"]))
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", rig.logs()));

    // The DC gateway routes each instance to its node with its label.
    for i in [D1, D2] {
        let label = rig.vmi_label(i.name).await;
        rig.lab
            .add_dc_gateway_route(
                "dcgw",
                DcGatewayRoute {
                    to: format!("{}/32", i.ip).parse().expect("prefix"),
                    node: underlay(i.node).parse().expect("address"),
                    label,
                },
            )
            .expect("a DC gateway route");
    }

    let out_bound = rig
        .lab
        .capture(
            rig.lab.fabric(),
            "br0",
            &format!("udp dst port 6635 and dst host {DCGW}"),
            Limit::packets(1).within(Duration::from_secs(60)),
        )
        .expect("capture on the fabric");
    let on_ext = rig
        .lab
        .capture(
            "ext",
            "eth0",
            "icmp[icmptype] == icmp-echo",
            Limit::packets(1).within(Duration::from_secs(60)),
        )
        .expect("capture on ext");
    rig.ping_eventually("d1", EXT).await;
    let decode = [MPLS_OVER_UDP];
    let pcap = out_bound.finish().expect("capture");
    let packets = pcap
        .fields(
            &[
                "ip.src",
                "ip.dst",
                "udp.srcport",
                "mpls.label",
                "mpls.bottom",
                "icmp.type",
            ],
            &decode,
        )
        .expect("tshark decodes our MPLS over UDP");
    let summary = pcap.summary(&decode).unwrap_or_default();
    let p = &packets[0];
    assert_eq!(
        p.first("ip.src"),
        Some(underlay("gw1").as_str()),
        "{summary}"
    );
    assert_eq!(p.first("ip.dst"), Some(DCGW), "{summary}");
    assert_eq!(
        p.first("mpls.label"),
        Some(DCGW_LABEL.to_string().as_str()),
        "the route's label: {summary}"
    );
    assert_eq!(p.first("mpls.bottom"), Some("1"), "{summary}");
    assert_eq!(p.last("ip.src"), Some(D1.ip), "{summary}");
    assert_eq!(p.last("ip.dst"), Some(EXT), "{summary}");
    assert_eq!(p.first("icmp.type"), Some("8"), "{summary}");
    let sport: u32 = p
        .first("udp.srcport")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(
        (49152..=65535).contains(&sport),
        "flow-hash source port {sport}"
    );
    let packets = on_ext
        .finish()
        .expect("capture")
        .fields(&["ip.src"], &[])
        .expect("decode");
    assert_eq!(
        packets[0].first("ip.src"),
        Some(D1.ip),
        "the host behind the gateway sees the instance's own address"
    );

    rig.ping_eventually("d2", EXT).await;
    rig.ping_eventually("ext", D1.ip).await;
    rig.ping_eventually("ext", D2.ip).await;
    for (from, server, to, port) in [("ext", "d2", D2.ip, 7201), ("d1", "ext", EXT, 7202)] {
        let payload = format!("dc-gateway-{from}-{server}");
        let received = rig
            .lab
            .tcp(from, server, to, port, &payload)
            .unwrap_or_else(|e| panic!("TCP {from} -> {to}: {e}\n{}", rig.logs()));
        assert_eq!(received, payload);
    }
    for node in NODES {
        for reason in [
            "tunnel_unknown_peer",
            "tunnel_unknown_label",
            "tunnel_malformed",
        ] {
            assert_eq!(rig.drops(node, reason), 0.0, "{node} dropped {reason}");
        }
    }
}
