//! Gateway HA end to end: two gateway nodes on one switch serve the same
//! remote instances, a third node holds an instance of the same network
//! across the overlay (and witnesses the group).
//!
//! ```text
//!            fabric bridge (underlay 10.3.0.0/24)
//!       eth0 .1 |            eth0 .2 |             eth0 .3 |
//!        [gw1] agent          [gw2] agent           [gw3] agent       (one operator)
//!          eth1                 eth1                  eth1
//!            \                  /                       |
//!     t-gw1   switch "rack"   t-gw2                   switch
//!          (mode STP: kernel 802.1D,                  r3 (VLAN 100)
//!           hello 1 / max age 6 / forward delay 4)
//!        r1 (VLAN 100)   r2 (VLAN 200)
//! ```
//!
//! r1 and r2 are bound on both members (gw1 priority 200, gw2 100), r3 on
//! gw3; all three in net1. Mode Fast runs hello 100 ms / dead 300 ms. The
//! failures are injected as a user would meet them (SIGKILL of the active
//! member's agent, its trunk or fabric link set down), the traffic is paced
//! pings with timestamps (the loss window is the longest gap between two
//! replies), and what the switch sees is captured by tshark: the first
//! gratuitous ARP after the failure, and every ARP reply for the gateway
//! address toward r1, which must never come twice for one request.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use trunkline_api::{
    GatewayHAGroup, GatewayHAGroupStatus, LogicalInterface, PhysicalRouter,
    VirtualMachineInterface, VirtualNetwork,
};
use trunkline_test_support::lab::{Capture, Limit, StpSpec, SwitchSpec, TrunkSpec};
use trunkline_test_support::{
    ControlPlane, InstanceSpec, Lab, LabSpec, ManagedProcess, NodeSpec, TestNamespace, eventually,
    free_local_addr, unique_name, workspace_binary,
};

const READY: Duration = Duration::from_secs(120);
const NODES: [&str; 3] = ["gw1", "gw2", "gw3"];
const GATEWAY: &str = "192.168.20.1";
const GATEWAY_MAC: &str = "00:00:5e:00:01:00";
const HELLO_MS: u64 = 100;
const DEAD_MS: u64 = 300;
/// How long after the dead time the new active member's first gratuitous
/// ARP may come: it shows the takeover is the heartbeats' (not, say, a
/// status round trip through the API server), while leaving room for a
/// loaded machine. The windows themselves are measured by `make bench-ha`.
const GARP_SLACK: f64 = 1.0;

/// A remote instance: name, node (whose trunk it is behind), VLAN, address,
/// MAC; bound on both members when behind the shared switch.
struct Instance {
    name: &'static str,
    node: &'static str,
    vlan: u16,
    ip: &'static str,
    mac: &'static str,
}

const R1: Instance = Instance {
    name: "r1",
    node: "gw1",
    vlan: 100,
    ip: "192.168.20.11",
    mac: "02:00:00:14:00:01",
};
const R2: Instance = Instance {
    name: "r2",
    node: "gw1",
    vlan: 200,
    ip: "192.168.20.12",
    mac: "02:00:00:14:00:02",
};
const R3: Instance = Instance {
    name: "r3",
    node: "gw3",
    vlan: 100,
    ip: "192.168.20.13",
    mac: "02:00:00:14:00:03",
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Fast,
    Stp,
}

struct Rig {
    ns: TestNamespace<'static>,
    client: Client,
    lab: Lab,
    _operator: ManagedProcess,
    routers: BTreeMap<&'static str, String>,
    agents: BTreeMap<&'static str, Option<ManagedProcess>>,
    kubeconfigs: BTreeMap<&'static str, std::path::PathBuf>,
    group: String,
    mode: Mode,
}

fn apply_params() -> PatchParams {
    PatchParams::apply("e2e").force()
}

fn underlay(node: &str) -> String {
    let n = NODES.iter().position(|n| *n == node).expect("a lab node") + 1;
    format!("10.3.0.{n}")
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

impl Rig {
    async fn start(mode: Mode) -> Rig {
        let plane = ControlPlane::shared();
        let ns = plane.namespace("ha").await.expect("namespace");
        let client = plane.client().await.expect("client");
        let mut rack = SwitchSpec::new("rack");
        if mode == Mode::Stp {
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
        let lab = Lab::up(spec).expect("the lab");
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
            _operator: operator,
            routers: BTreeMap::new(),
            agents: BTreeMap::new(),
            kubeconfigs: BTreeMap::new(),
            group: unique_name("rack"),
            mode,
        };
        for node in NODES {
            let kubeconfig = plane
                .kubeconfig_with_role(rig.ns.name(), &format!("dataplane-{node}"), "dataplane")
                .await
                .expect("agent identity");
            rig.routers.insert(node, unique_name(node));
            rig.kubeconfigs.insert(node, kubeconfig);
            rig.start_agent(node);
            rig.apply_router(node).await;
        }
        rig.apply_objects().await;
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
                // The XDP tier, without fallback: it must hand the group's
                // frames (member ports, multi-homed VMIs) to the pipeline.
                "--backend".into(),
                "xdp".into(),
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
        let mut out = String::new();
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

    /// net1, (mode STP) the BPDU network, the group, the VMIs and their
    /// logical interfaces: r1 and r2 on both members, r3 on gw3.
    async fn apply_objects(&self) {
        let ns = self.ns.name();
        self.apply_namespaced(
            "virtualnetworks",
            "net1",
            json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
                   "metadata": {"name": "net1", "namespace": ns},
                   "spec": {"subnets": [{"cidr": "192.168.20.0/24", "gateway": GATEWAY}]}}),
        )
        .await;
        let mut spec = json!({"members": [
            {"physicalRouter": self.routers["gw1"], "physicalInterface": "eth1", "priority": 200},
            {"physicalRouter": self.routers["gw2"], "physicalInterface": "eth1", "priority": 100}]});
        match self.mode {
            Mode::Fast => {
                spec["mode"] = json!("Fast");
                spec["timers"] = json!({"helloMillis": HELLO_MS, "deadMillis": DEAD_MS});
            }
            Mode::Stp => {
                self.apply_namespaced(
                    "virtualnetworks",
                    "bpdu",
                    json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
                           "metadata": {"name": "bpdu", "namespace": ns},
                           "spec": {"forwardingMode": "L2"}}),
                )
                .await;
                spec["mode"] = json!("STP");
                spec["bpduNetwork"] = json!({"namespace": ns, "name": "bpdu"});
            }
        }
        let group = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "GatewayHAGroup",
            "metadata": {"name": self.group}, "spec": spec});
        Api::<GatewayHAGroup>::all(self.client.clone())
            .patch(&self.group, &apply_params(), &Patch::Apply(&group))
            .await
            .expect("group");
        for i in [R1, R2, R3] {
            self.apply_namespaced(
                "virtualmachineinterfaces",
                i.name,
                json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
                       "metadata": {"name": i.name, "namespace": ns},
                       "spec": {"virtualNetwork": "net1", "macAddress": i.mac, "ips": [{"address": i.ip}]}}),
            )
            .await;
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
                             "virtualMachineInterface": {"namespace": ns, "name": i.name}}});
                Api::<LogicalInterface>::all(self.client.clone())
                    .patch(&name, &apply_params(), &Patch::Apply(&li))
                    .await
                    .unwrap_or_else(|e| panic!("LogicalInterface {name}: {e}"));
            }
        }
    }

    async fn group_status(&self) -> GatewayHAGroupStatus {
        Api::<GatewayHAGroup>::all(self.client.clone())
            .get(&self.group)
            .await
            .expect("group")
            .status
            .unwrap_or_default()
    }

    /// Waits until the group is Ready with `node` active; returns the status.
    async fn wait_active(&self, node: &str, timeout: Duration) -> GatewayHAGroupStatus {
        let router = self.routers[node].clone();
        eventually(&format!("{node} active"), timeout, || async {
            let status = self.group_status().await;
            let ready = status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if ready && status.active_member.as_deref() == Some(router.as_str()) {
                Ok(status)
            } else {
                Err(format!("{status:?}"))
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}{}", self.logs()))
    }

    /// The state and reason of `node` in the group's status.
    async fn member(&self, node: &str) -> (String, String) {
        let status = self.group_status().await;
        status
            .members
            .iter()
            .find(|m| m.physical_router == self.routers[node])
            .map(|m| (m.state.clone(), m.reason.clone().unwrap_or_default()))
            .unwrap_or_default()
    }

    async fn wait_member(&self, node: &str, state: &str, reason: &str, timeout: Duration) {
        eventually(&format!("{node} {state} ({reason})"), timeout, || async {
            let got = self.member(node).await;
            if got.0 == state && got.1 == reason {
                Ok(())
            } else {
                Err(format!("{got:?}: {:?}", self.group_status().await))
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}{}", self.logs()));
    }

    /// Waits until every instance's objects are Ready.
    async fn wait_objects(&self) {
        let vmis: Api<VirtualMachineInterface> =
            Api::namespaced(self.client.clone(), self.ns.name());
        let networks: Api<VirtualNetwork> = Api::namespaced(self.client.clone(), self.ns.name());
        eventually("instances Ready", READY, || async {
            let mut not = Vec::new();
            for i in [R1, R2, R3] {
                let vmi = vmis.get(i.name).await.map_err(|e| e.to_string())?;
                if !ready(vmi.status.map(|s| s.conditions).unwrap_or_default()) {
                    not.push(i.name.to_owned());
                }
            }
            let net = networks.get("net1").await.map_err(|e| e.to_string())?;
            if !ready(net.status.map(|s| s.conditions).unwrap_or_default()) {
                not.push("net1".to_owned());
            }
            if not.is_empty() {
                Ok(())
            } else {
                Err(format!("not Ready: {not:?}"))
            }
        })
        .await
        .unwrap_or_else(|e| panic!("{e}{}", self.logs()));
    }

    async fn ping_eventually(&self, from: &str, to: &str) {
        eventually(
            &format!("{from} pings {to}"),
            Duration::from_secs(60),
            || async {
                let (ok, out) = self.lab.ping(from, to, 2);
                if ok { Ok(out) } else { Err(out) }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}{}", self.logs()));
    }

    fn set_link(&self, node: &str, port: &str, up: bool) {
        let out = self.lab.exec(
            node,
            &["ip", "link", "set", port, if up { "up" } else { "down" }],
        );
        assert!(out.status.success(), "{node} {port}");
    }

    /// Prints every node's drops, HA messages and paths (for a failure's
    /// diagnosis: the test output keeps them).
    fn print_counters(&self) {
        for (node, agent) in &self.agents {
            let Some(agent) = agent else { continue };
            let lines: Vec<String> = agent
                .metrics()
                .lines()
                .filter(|l| {
                    !l.starts_with('#')
                        && (l.contains("drops_total") || l.contains("_ha_"))
                        && !l.ends_with(" 0")
                })
                .map(str::to_owned)
                .collect();
            let glue = format!("\n[{node}] ");
            eprintln!("[{node}] {}", lines.join(&glue));
        }
    }

    fn metric(&self, node: &str, sample: &str) -> f64 {
        self.agent(node).metric(sample).unwrap_or(0.0)
    }
}

fn ready(conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// A paced ping (every `interval`) from `from` to `to` for `secs`, in the
/// background: the arrival time of every reply.
fn paced_ping(
    lab: &Lab,
    from: &str,
    to: &str,
    interval: Duration,
    secs: u64,
) -> std::thread::JoinHandle<Vec<f64>> {
    let ns = lab.namespace(from);
    let to = to.to_owned();
    let interval = format!("{:.3}", interval.as_secs_f64());
    std::thread::spawn(move || {
        // Not `ping -w`: with a deadline, ping stops at the first error the
        // network reports (an unresolved neighbour during the failover).
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "timeout",
                &secs.to_string(),
                "ping",
                "-D",
                "-n",
                "-i",
                &interval,
                &to,
            ])
            .output()
            .expect("ping runs");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("bytes from"))
            .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
            .collect()
    })
}

/// The longest gap between two replies after `after`, less one interval:
/// what the failure cost, in seconds.
fn loss_window(replies: &[f64], after: f64, interval: Duration) -> f64 {
    let mut last = None;
    let mut worst: f64 = 0.0;
    for t in replies.iter().copied() {
        if let Some(l) = last
            && t > after - 1.0
        {
            worst = worst.max(t - l);
        }
        last = Some(t);
    }
    (worst - interval.as_secs_f64()).max(0.0)
}

/// Asks for the gateway's MAC from `from` every 100 ms for `secs` (the
/// kernel's own ARP requests: the neighbour entry is flushed each time).
fn arp_prober(lab: &Lab, from: &str, secs: u64) -> std::thread::JoinHandle<()> {
    let ns = lab.namespace(from);
    let line = format!(
        "end=$(( $(date +%s) + {secs} )); while [ $(date +%s) -lt $end ]; do ip neigh flush dev eth0; ping -c 1 -W 0.2 {GATEWAY} >/dev/null 2>&1; sleep 0.1; done"
    );
    std::thread::spawn(move || {
        let _ = std::process::Command::new("ip")
            .args(["netns", "exec", &ns, "sh", "-c", &line])
            .output();
    })
}

/// Every ARP request r1 sent for the gateway and every reply it got, seen
/// at r1's access port of the switch: the most replies any one request got
/// (two means two members answered), how many requests were answered, and
/// how many got more than one answer.
fn replies_per_request(capture: Capture) -> (usize, usize, usize, usize) {
    let packets = capture
        .stop()
        .expect("capture")
        .fields(
            &["arp.opcode", "arp.src.proto_ipv4", "arp.dst.proto_ipv4"],
            &[],
        )
        .expect("decode");
    let mut most = 0;
    let mut requests = 0;
    let mut answered = 0;
    let mut doubled = 0;
    let mut current: Option<usize> = None;
    for p in &packets {
        match (
            p.first("arp.opcode"),
            p.first("arp.src.proto_ipv4"),
            p.first("arp.dst.proto_ipv4"),
        ) {
            (Some("1"), Some(src), Some(GATEWAY)) if src == R1.ip => {
                if let Some(n) = current.take() {
                    most = most.max(n);
                    answered += usize::from(n > 0);
                    doubled += usize::from(n > 1);
                }
                requests += 1;
                current = Some(0);
            }
            (Some("2"), Some(GATEWAY), _) => {
                if let Some(n) = current.as_mut() {
                    *n += 1;
                }
            }
            _ => {}
        }
    }
    if let Some(n) = current {
        most = most.max(n);
        answered += usize::from(n > 0);
        doubled += usize::from(n > 1);
    }
    (most, requests, answered, doubled)
}

/// The time of the first gratuitous ARP for the gateway the switch got
/// from member port `port`, after `after`.
fn first_garp(capture: Capture, after: f64) -> Option<f64> {
    let packets = capture
        .stop()
        .expect("capture")
        .fields(
            &[
                "frame.time_epoch",
                "arp.opcode",
                "arp.src.proto_ipv4",
                "arp.dst.proto_ipv4",
                "eth.src",
            ],
            &[],
        )
        .expect("decode");
    packets
        .iter()
        .filter(|p| {
            p.first("arp.opcode") == Some("1")
                && p.first("arp.src.proto_ipv4") == Some(GATEWAY)
                && p.first("arp.dst.proto_ipv4") == Some(GATEWAY)
                && p.first("eth.src") == Some(GATEWAY_MAC)
        })
        .filter_map(|p| p.first("frame.time_epoch")?.parse::<f64>().ok())
        .find(|t| *t >= after)
}

/// What each failure test measures and checks around one failure.
struct Window {
    garps: Capture,
    arps: Capture,
    streams: Vec<(&'static str, std::thread::JoinHandle<Vec<f64>>)>,
    prober: std::thread::JoinHandle<()>,
}

const INTERVAL: Duration = Duration::from_millis(10);

impl Rig {
    /// Starts the witnesses of a failure: captures on the switch (gateway
    /// MAC frames from `taking_over`'s port, ARP at r1's access port),
    /// paced pings r1 -> r3 (across the overlay), r3 -> r1, r1 -> r2 (the
    /// same member's other VLAN), and the ARP prober.
    fn watch(&self, taking_over: &str, secs: u64) -> Window {
        let garps = self
            .lab
            .capture(
                "rack",
                &format!("t-{taking_over}"),
                // Every frame from the gateway MAC (libpcap's `inbound` drops
                // broadcasts here): the member stepping down sends no
                // gratuitous ARP, so those seen are the new active one's.
                &format!("ether src {GATEWAY_MAC}"),
                Limit::duration(Duration::from_secs(secs + 5)),
            )
            .expect("capture on the member port");
        let arps = self
            .lab
            .capture(
                "rack",
                "a-r1",
                "arp",
                Limit::duration(Duration::from_secs(secs + 5)),
            )
            .expect("capture at r1's port");
        let streams = vec![
            (
                "r1 -> r3",
                paced_ping(&self.lab, "r1", R3.ip, INTERVAL, secs),
            ),
            (
                "r3 -> r1",
                paced_ping(&self.lab, "r3", R1.ip, INTERVAL, secs),
            ),
            (
                "r1 -> r2",
                paced_ping(&self.lab, "r1", R2.ip, INTERVAL, secs),
            ),
        ];
        let prober = arp_prober(&self.lab, "r1", secs);
        std::thread::sleep(Duration::from_millis(500));
        Window {
            garps,
            arps,
            streams,
            prober,
        }
    }
}

impl Window {
    /// Ends the window: prints the loss windows and the first GARP, checks
    /// that no ARP request got two answers and that traffic came back.
    ///
    /// `handover`: the window holds a planned handover (preemption) between
    /// two live members rather than a failure. The old active member stops
    /// answering when it hears the claim and the claimant starts once it
    /// hears that, so the two are never active together; but one broadcast
    /// request reaching both while the old one is still active can wait in
    /// the claimant's receive ring until after its role flipped (a busy
    /// forwarding thread). At most one such request is allowed then; a
    /// split brain answers every request twice and still fails.
    fn report(
        self,
        what: &str,
        failed_at: f64,
        garp_budget: Option<f64>,
        handover: bool,
    ) -> Vec<(String, f64)> {
        let _ = self.prober.join();
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for (name, stream) in self.streams {
            let replies = stream.join().expect("ping thread");
            let after = replies.iter().filter(|t| **t > failed_at + 0.5).count();
            let window = loss_window(&replies, failed_at, INTERVAL);
            eprintln!(
                "[{what}] {name}: loss window {:.0} ms, {} replies, {after} after the failure",
                window * 1000.0,
                replies.len()
            );
            if after == 0 {
                dead.push(name);
            }
            out.push((name.to_owned(), window));
        }
        let garp = first_garp(self.garps, failed_at);
        match garp {
            Some(t) => eprintln!(
                "[{what}] first gratuitous ARP {:.0} ms after the failure",
                (t - failed_at) * 1000.0
            ),
            None => eprintln!("[{what}] no gratuitous ARP seen"),
        }
        if let Some(budget) = garp_budget {
            let t = garp
                .unwrap_or_else(|| panic!("[{what}] no gratuitous ARP from the new active member"));
            assert!(
                t - failed_at <= budget,
                "[{what}] first gratuitous ARP {:.0} ms after the failure: more than {:.0} ms",
                (t - failed_at) * 1000.0,
                budget * 1000.0
            );
        }
        let (most, requests, answered, doubled) = replies_per_request(self.arps);
        eprintln!(
            "[{what}] {requests} ARP requests for the gateway, {answered} answered, at most {most} answer(s) each, {doubled} answered twice"
        );
        assert!(
            dead.is_empty(),
            "[{what}] traffic never came back: {dead:?}"
        );
        assert!(requests > 10, "[{what}] the prober ran");
        if handover {
            assert!(
                most <= 2 && doubled <= 1,
                "[{what}] two members answered {doubled} ARP request(s) (at most one in flight at the handover)"
            );
        } else {
            assert!(most <= 1, "[{what}] two members answered one ARP request");
        }
        out
    }
}

/// Mode Fast: the active member's agent is SIGKILLed; the standby takes
/// over within the dead time (its first gratuitous ARP on the switch within
/// deadMillis + GARP_SLACK), the group's status says so, traffic between the
/// VLANs and across the overlay resumes; the killed agent comes back and,
/// with the higher priority, takes the role back (preemption).
#[tokio::test]
async fn fast_mode_fails_over_when_the_active_agent_is_killed_and_preempts_back() {
    let mut rig = Rig::start(Mode::Fast).await;
    rig.wait_objects().await;
    let status = rig.wait_active("gw1", READY).await;
    assert_eq!(status.members.len(), 2, "{status:?}");
    rig.wait_member("gw2", "Standby", "HigherPriorityActive", READY)
        .await;
    rig.ping_eventually("r1", R3.ip).await;
    rig.ping_eventually("r3", R1.ip).await;
    rig.ping_eventually("r1", R2.ip).await;
    assert!(
        rig.metric(
            "gw2",
            "trunkline_dataplane_drops_total{reason=\"ha_standby\"}"
        ) > 0.0,
        "the standby drops what reaches its member port"
    );

    let transitions = |rig: &Rig| {
        rig.metric(
            "gw2",
            &format!(
                "trunkline_dataplane_ha_transitions_total{{group=\"{}\",state=\"Active\"}}",
                rig.group
            ),
        )
    };
    // Counted from here: on a loaded machine the members' start can take
    // the role back and forth before both are ready, which is not what
    // this test is about.
    let before = transitions(&rig);
    let window = rig.watch("gw2", 8);
    let failed_at = now_secs();
    if let Some(mut agent) = rig.agents.get_mut("gw1").and_then(Option::take) {
        agent.kill();
    }
    let dead = DEAD_MS as f64 / 1000.0;
    rig.wait_active("gw2", Duration::from_secs(30)).await;
    rig.wait_member("gw1", "Down", "NoHeartbeat", Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    rig.print_counters();

    window.report("SIGKILL", failed_at, Some(dead + GARP_SLACK), false);
    assert_eq!(
        transitions(&rig) - before,
        1.0,
        "one failure, one takeover by gw2"
    );

    // gw1 comes back: it listens, claims, and gw2 hands over.
    let window = rig.watch("gw1", 8);
    let restarted_at = now_secs();
    rig.start_agent("gw1");
    rig.agent("gw1").wait_ready(READY).await;
    rig.wait_active("gw1", Duration::from_secs(60)).await;
    rig.wait_member(
        "gw2",
        "Standby",
        "HigherPriorityActive",
        Duration::from_secs(30),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    rig.print_counters();
    window.report("preemption", restarted_at, None, true);
}

/// Mode Fast: the active member's trunk link goes down; it steps down at
/// once (reason TrunkDown, from its own report) and the standby takes over
/// without waiting for the dead time; when the link comes back, gw1 takes
/// the role back.
#[tokio::test]
async fn fast_mode_fails_over_when_the_active_trunk_goes_down() {
    let rig = Rig::start(Mode::Fast).await;
    rig.wait_objects().await;
    rig.wait_active("gw1", READY).await;
    rig.ping_eventually("r1", R3.ip).await;
    rig.ping_eventually("r3", R1.ip).await;

    let window = rig.watch("gw2", 6);
    let failed_at = now_secs();
    rig.set_link("gw1", "eth1", false);
    rig.wait_active("gw2", Duration::from_secs(30)).await;
    rig.wait_member("gw1", "Down", "TrunkDown", Duration::from_secs(30))
        .await;
    window.report(
        "trunk down",
        failed_at,
        Some(DEAD_MS as f64 / 1000.0 + GARP_SLACK),
        false,
    );

    let window = rig.watch("gw1", 6);
    let back_at = now_secs();
    rig.set_link("gw1", "eth1", true);
    rig.wait_active("gw1", Duration::from_secs(30)).await;
    window.report("trunk back", back_at, None, true);
}

/// Mode Fast: the active member's fabric link goes down; it fences itself
/// at once (FabricDown), the standby hears gw3 (the witness) and takes over
/// after the dead time; r3, across the overlay, reaches r1 through gw2.
#[tokio::test]
async fn fast_mode_fails_over_when_the_active_fabric_link_goes_down() {
    let rig = Rig::start(Mode::Fast).await;
    rig.wait_objects().await;
    rig.wait_active("gw1", READY).await;
    rig.ping_eventually("r1", R3.ip).await;
    rig.ping_eventually("r3", R1.ip).await;

    let window = rig.watch("gw2", 6);
    let failed_at = now_secs();
    rig.set_link("gw1", "eth0", false);
    rig.wait_active("gw2", Duration::from_secs(30)).await;
    let (state, reason) = rig.member("gw1").await;
    assert_eq!(state, "Down", "{reason}");
    assert!(
        ["FabricDown", "NoHeartbeat"].contains(&reason.as_str()),
        "{reason}"
    );
    window.report(
        "fabric down",
        failed_at,
        Some(DEAD_MS as f64 / 1000.0 + GARP_SLACK),
        false,
    );
    rig.set_link("gw1", "eth0", true);
    rig.wait_active("gw1", Duration::from_secs(60)).await;
}

/// The seeds' design, with the kernel's 802.1D on the switch (hello 1 s,
/// max age 6 s, forward delay 4 s, the fastest legal): BPDUs cross the
/// members through the BPDU network, the switch blocks one gateway port,
/// traffic goes through the other. When the forwarding member's trunk goes
/// down, and then when its agent is killed, the spanning tree reconverges
/// and traffic resumes through the other member; the outage is measured
/// (tens of seconds with the standard's defaults, about 14 s here).
#[tokio::test]
async fn stp_mode_blocks_one_gateway_port_and_reconverges() {
    let mut rig = Rig::start(Mode::Stp).await;
    rig.wait_objects().await;
    let states = eventually("one gateway port blocked", READY, || async {
        let states = rig.lab.stp_states("rack").map_err(|e| e.to_string())?;
        let of = |p: &str| {
            states
                .iter()
                .find(|(n, _)| n == p)
                .map(|(_, s)| s.clone())
                .unwrap_or_default()
        };
        match (of("t-gw1").as_str(), of("t-gw2").as_str()) {
            ("forwarding", "blocking") | ("blocking", "forwarding") => Ok(states.clone()),
            other => Err(format!("{other:?} in {states:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}{}", rig.logs()));
    eprintln!("[STP] port states {states:?}");
    let forwarding = if states
        .iter()
        .any(|(p, s)| p == "t-gw1" && s == "forwarding")
    {
        "gw1"
    } else {
        "gw2"
    };
    let other = if forwarding == "gw1" { "gw2" } else { "gw1" };
    rig.wait_active(forwarding, READY).await;
    rig.wait_member(other, "Standby", "NoBpdus", READY).await;
    rig.ping_eventually("r1", R3.ip).await;
    rig.ping_eventually("r3", R1.ip).await;
    rig.ping_eventually("r1", R2.ip).await;

    // Its trunk goes down: the blocked port ages out and forwards.
    let window = rig.watch(other, 40);
    let failed_at = now_secs();
    rig.set_link(forwarding, "eth1", false);
    let started = Instant::now();
    eventually(
        "the other port forwards",
        Duration::from_secs(60),
        || async {
            let states = rig.lab.stp_states("rack").map_err(|e| e.to_string())?;
            if states
                .iter()
                .any(|(p, s)| *p == format!("t-{other}") && s == "forwarding")
            {
                Ok(())
            } else {
                Err(format!("{states:?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}{}", rig.logs()));
    eprintln!(
        "[STP] trunk down: the other port forwards after {:?}",
        started.elapsed()
    );
    rig.wait_active(other, Duration::from_secs(60)).await;
    let windows = window.report("STP trunk down", failed_at, None, false);
    eprintln!("[STP] trunk down outage (hello 1 s, max age 6 s, forward delay 4 s): {windows:?}");

    // Back up: the spanning tree settles again (one port blocked).
    rig.set_link(forwarding, "eth1", true);
    let states = eventually(
        "one port blocked again",
        Duration::from_secs(60),
        || async {
            let states = rig.lab.stp_states("rack").map_err(|e| e.to_string())?;
            let blocking = states
                .iter()
                .filter(|(p, s)| p.starts_with("t-") && s == "blocking")
                .count();
            let forwarding = states
                .iter()
                .filter(|(p, s)| p.starts_with("t-") && s == "forwarding")
                .count();
            if blocking == 1 && forwarding == 1 {
                Ok(states)
            } else {
                Err(format!("{states:?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}{}", rig.logs()));
    let active = if states
        .iter()
        .any(|(p, s)| p == "t-gw1" && s == "forwarding")
    {
        "gw1"
    } else {
        "gw2"
    };
    let standby = if active == "gw1" { "gw2" } else { "gw1" };
    rig.wait_active(active, Duration::from_secs(60)).await;
    rig.ping_eventually("r3", R1.ip).await;

    // The forwarding member's agent dies: no more BPDUs relayed, the
    // blocked port ages out and forwards.
    let window = rig.watch(standby, 40);
    let failed_at = now_secs();
    if let Some(mut agent) = rig.agents.get_mut(active).and_then(Option::take) {
        agent.kill();
    }
    let started = Instant::now();
    eventually(
        "the other port forwards",
        Duration::from_secs(60),
        || async {
            let states = rig.lab.stp_states("rack").map_err(|e| e.to_string())?;
            if states
                .iter()
                .any(|(p, s)| *p == format!("t-{standby}") && s == "forwarding")
            {
                Ok(())
            } else {
                Err(format!("{states:?}"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}{}", rig.logs()));
    eprintln!(
        "[STP] agent killed: the other port forwards after {:?}",
        started.elapsed()
    );
    let windows = window.report("STP agent killed", failed_at, None, false);
    eprintln!("[STP] agent killed outage (hello 1 s, max age 6 s, forward delay 4 s): {windows:?}");
}
