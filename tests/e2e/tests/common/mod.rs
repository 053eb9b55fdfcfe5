//! The gateway-mode rig shared by end-to-end tests: a lab, the operator and
//! the node dataplane as processes with their own ServiceAccounts (roles
//! from `deploy/rbac/`), and the objects of the gateway-mode example.
//!
//! ```text
//!  bms1 (VLAN 100) --\                         /-- operator (SA trunkline-operator)
//!  bms2 (VLAN 200) ---+- switch -- trunk eth1 -+   kube-apiserver
//!  other (VLAN 300) -/   (tc taggers)  [gw ns]  \-- trunkline-dataplane (SA trunkline-dataplane,
//!                                          |         ports in the gw namespace)
//!                                   eth0 10.1.1.1 -- fabric bridge -- [fabric host, if any]
//! ```
#![allow(dead_code)]

use std::time::Duration;

use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use trunkline_api::status::Condition;
use trunkline_api::{LogicalInterface, PhysicalRouter, PhysicalRouterStatus};
use trunkline_test_support::{
    ControlPlane, FabricHostSpec, InstanceSpec, Lab, LabSpec, ManagedProcess, NodeSpec,
    TestNamespace, eventually, free_local_addr, unique_name, workspace_binary,
};

pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The gateway node's name in the lab (namespace `<prefix>-gw`).
pub const NODE: &str = "gw";
/// Its trunk port.
pub const TRUNK: &str = "eth1";
/// Its underlay address on the fabric (`eth0`).
pub const UNDERLAY: &str = "10.1.1.1/24";

/// A remote instance of the gateway-mode example, behind the node's trunk.
#[derive(Clone, Copy, Debug)]
pub struct Instance {
    /// Short name (letters and digits), used in its namespace's name.
    pub name: &'static str,
    /// The VLAN its access port tags (0: untagged).
    pub vlan: u16,
    /// Address with prefix length, e.g. `192.168.1.10/24`.
    pub cidr: &'static str,
    /// Its MAC.
    pub mac: &'static str,
    /// Its default gateway.
    pub gateway: &'static str,
}

impl Instance {
    /// The lab's spec of this instance.
    pub fn spec(&self) -> InstanceSpec {
        InstanceSpec::new(self.name, NODE, TRUNK)
            .vlan(self.vlan)
            .ip(self.cidr)
            .mac(self.mac)
            .gateway(self.gateway)
    }
}

/// One gateway node with its trunk, these instances behind it, and
/// `host` on the fabric if given.
pub fn single_node_lab(instances: &[Instance], host: Option<FabricHostSpec>) -> LabSpec {
    let mut spec = LabSpec::new().node(NodeSpec::new(NODE).underlay(UNDERLAY).trunk(TRUNK));
    for i in instances {
        spec = spec.instance(i.spec());
    }
    if let Some(host) = host {
        spec = spec.host(host);
    }
    spec
}

pub const BMS1: Instance = Instance {
    name: "bms1",
    vlan: 100,
    cidr: "192.168.1.10/24",
    mac: "02:00:00:00:01:01",
    gateway: "192.168.1.1",
};
pub const BMS2: Instance = Instance {
    name: "bms2",
    vlan: 200,
    cidr: "192.168.1.20/24",
    mac: "02:00:00:00:02:01",
    gateway: "192.168.1.1",
};
/// Same addresses as net1, but in net2: VRFs must keep them apart.
pub const OTHER: Instance = Instance {
    name: "other",
    vlan: 300,
    cidr: "192.168.1.30/24",
    mac: "02:00:00:00:03:01",
    gateway: "192.168.1.1",
};

/// One gateway node with its lab, operator and dataplane, and the objects
/// of the gateway-mode example in a namespace of its own. The operator and
/// the dataplane are processes of the test, or run some other way (by a
/// kubelet: `pods.rs`), when [`Gateway::without_processes`] made it.
pub struct Gateway<'a> {
    pub ns: TestNamespace<'a>,
    pub client: Client,
    pub lab: Lab,
    pub node: String,
    pub operator: Option<ManagedProcess>,
    pub agent: Option<ManagedProcess>,
    pub agent_kubeconfig: std::path::PathBuf,
    pub backend: &'static str,
}

pub fn apply_params() -> PatchParams {
    PatchParams::apply("e2e").force()
}

impl<'a> Gateway<'a> {
    pub async fn start(instances: &[Instance], backend: &'static str) -> Gateway<'static> {
        Self::start_with_lab(single_node_lab(instances, None), backend).await
    }

    /// Like [`Gateway::start`], on the lab `spec` (one node, [`NODE`]).
    pub async fn start_with_lab(spec: LabSpec, backend: &'static str) -> Gateway<'static> {
        let plane = ControlPlane::shared();
        let ns = plane.namespace("gw").await.expect("namespace");
        let client = plane.client().await.expect("client");
        let lab = Lab::up(spec).expect("the lab");
        let operator_kubeconfig = plane
            .kubeconfig_with_role(ns.name(), "trunkline-operator", "operator")
            .await
            .expect("operator identity");
        let agent_kubeconfig = plane
            .kubeconfig_with_role(ns.name(), "trunkline-dataplane", "dataplane")
            .await
            .expect("agent identity");
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
        let node = unique_name("gw-node");
        let mut gateway = Gateway {
            ns,
            client,
            lab,
            node,
            operator: Some(operator),
            agent: None,
            agent_kubeconfig,
            backend,
        };
        gateway.start_agent();
        gateway
    }

    /// The objects of `node` and this `lab`, with no operator or dataplane
    /// process of the test's own.
    pub fn without_processes(
        ns: TestNamespace<'a>,
        client: Client,
        lab: Lab,
        node: String,
    ) -> Gateway<'a> {
        Gateway {
            ns,
            client,
            lab,
            node,
            operator: None,
            agent: None,
            agent_kubeconfig: std::path::PathBuf::new(),
            backend: "auto",
        }
    }

    /// Where the operator's and the dataplane's logs are, for a failure's
    /// message.
    pub fn logs(&self) -> String {
        let log = |p: &Option<ManagedProcess>| {
            p.as_ref()
                .map_or("(not a process of this test)".to_owned(), |p| {
                    p.log().display().to_string()
                })
        };
        format!(
            "operator log: {}\nagent log: {}",
            log(&self.operator),
            log(&self.agent)
        )
    }

    pub fn start_agent(&mut self) {
        let addr = free_local_addr();
        let agent = ManagedProcess::start(
            "dataplane",
            &workspace_binary("trunkline-dataplane", "trunkline-dataplane"),
            &[
                "--node".into(),
                self.node.clone(),
                "--kubeconfig".into(),
                self.agent_kubeconfig.display().to_string(),
                "--metrics-addr".into(),
                addr.to_string(),
                "--port-netns".into(),
                self.lab.netns_path(NODE).display().to_string(),
                "--backend".into(),
                self.backend.into(),
            ],
            &[("RUST_LOG", "info,trunkline_dataplane=debug")],
            addr,
        );
        self.agent = Some(agent);
    }

    pub fn agent(&self) -> &ManagedProcess {
        self.agent.as_ref().expect("agent running")
    }

    pub fn li_name(&self, vlan: u16) -> String {
        format!("{}-{TRUNK}-{vlan}", self.node)
    }

    /// The router, net1 (and net2) with their VMIs, and one logical
    /// interface per instance.
    pub async fn apply_objects(&self, instances: &[Instance]) {
        let ns = self.ns.name();
        let routers: Api<PhysicalRouter> = Api::all(self.client.clone());
        let router = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
            "metadata": {"name": self.node}, "spec": {"physicalInterfaces": [{"name": "eth1"}]}});
        routers
            .patch(&self.node, &apply_params(), &Patch::Apply(&router))
            .await
            .expect("router");
        for network in ["net1", "net2"] {
            self.apply_namespaced(
                "virtualnetworks",
                network,
                json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
                "metadata": {"name": network, "namespace": ns},
                "spec": {"subnets": [{"cidr": "192.168.1.0/24", "gateway": "192.168.1.1"}]}}),
            )
            .await;
        }
        for instance in instances {
            let network = if instance.name == "other" {
                "net2"
            } else {
                "net1"
            };
            let ip = instance.cidr.split('/').next().expect("cidr");
            self.apply_vmi(instance.name, network, instance.mac, ip)
                .await;
            self.apply_li(instance.vlan, instance.name).await;
        }
    }

    pub async fn apply_namespaced(&self, plural: &str, name: &str, object: serde_json::Value) {
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

    pub async fn apply_vmi(&self, name: &str, network: &str, mac: &str, ip: &str) {
        self.apply_namespaced(
            "virtualmachineinterfaces",
            name,
            json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": {"name": name, "namespace": self.ns.name()},
            "spec": {"virtualNetwork": network, "macAddress": mac, "ips": [{"address": ip}]}}),
        )
        .await;
    }

    pub async fn apply_li(&self, vlan: u16, vmi: &str) -> String {
        self.apply_li_named(&self.li_name(vlan), vlan, vmi).await
    }

    pub async fn apply_li_named(&self, name: &str, vlan: u16, vmi: &str) -> String {
        let lis: Api<LogicalInterface> = Api::all(self.client.clone());
        let li = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface", "metadata": {"name": name},
            "spec": {"physicalRouter": self.node, "physicalInterface": "eth1", "vlan": vlan,
                     "virtualMachineInterface": {"namespace": self.ns.name(), "name": vmi}}});
        lis.patch(name, &apply_params(), &Patch::Apply(&li))
            .await
            .unwrap_or_else(|e| panic!("LogicalInterface {name}: {e}"));
        name.to_owned()
    }

    /// Waits until the logical interface reports `Ready` = `status`.
    pub async fn wait_li(&self, name: &str, status: &str) -> LogicalInterface {
        self.wait_li_condition(name, "Ready", status, None).await
    }

    /// Waits until the logical interface's condition `type_` is `status`
    /// (with `reason`, when given) at its current generation.
    pub async fn wait_li_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
    ) -> LogicalInterface {
        self.wait_li_condition_within(name, type_, status, reason, READY_TIMEOUT)
            .await
    }

    /// [`Gateway::wait_li_condition`], waiting at most `timeout`.
    pub async fn wait_li_condition_within(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
        timeout: Duration,
    ) -> LogicalInterface {
        self.wait_condition(
            name,
            type_,
            status,
            reason,
            timeout,
            |li: &LogicalInterface| {
                li.status
                    .as_ref()
                    .map(|s| s.conditions.clone())
                    .unwrap_or_default()
            },
        )
        .await
    }

    /// Waits until the cluster-scoped object `name` of kind `K` reports
    /// condition `type_` = `status` (and `reason`, when given) for its
    /// current generation; `conditions` reads its conditions.
    async fn wait_condition<K>(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
        timeout: Duration,
        conditions: fn(&K) -> Vec<Condition>,
    ) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        let api: Api<K> = Api::all(self.client.clone());
        let kind = K::kind(&());
        let reason_text = reason.map(|r| format!(" ({r})")).unwrap_or_default();
        eventually(
            &format!("{kind} {name} {type_}={status}{reason_text}"),
            timeout,
            || async {
                let object = api.get(name).await.map_err(|e| e.to_string())?;
                let generation = object.meta().generation;
                let all = conditions(&object);
                match all.iter().find(|c| c.type_ == type_) {
                    Some(c)
                        if c.status == status
                            && reason.is_none_or(|r| c.reason == r)
                            && c.observed_generation == generation =>
                    {
                        Ok(object)
                    }
                    other => Err(format!(
                        "{type_} is {other:?} at generation {generation:?}; all conditions: {all:?}"
                    )),
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// The node's PhysicalRouter status as its dataplane last reported it
    /// (empty before the first report).
    pub async fn router_status(&self) -> PhysicalRouterStatus {
        Api::<PhysicalRouter>::all(self.client.clone())
            .get(&self.node)
            .await
            .expect("the node's PhysicalRouter")
            .status
            .unwrap_or_default()
    }

    /// Pings until it succeeds (the path may take a moment to be programmed).
    pub async fn ping_eventually(&self, from: &str, to: &str) -> String {
        eventually(
            &format!("{from} pings {to}"),
            Duration::from_secs(30),
            || async {
                let (ok, out) = self.lab.ping(from, to, 2);
                if ok { Ok(out) } else { Err(out) }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    /// Applies a VirtualGateway of this node.
    pub async fn apply_vgw(
        &self,
        name: &str,
        interface: &str,
        network: &str,
        subnets: &[&str],
        routes: &[&str],
    ) {
        let gateways: Api<trunkline_api::VirtualGateway> = Api::all(self.client.clone());
        let vgw = json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualGateway", "metadata": {"name": name},
            "spec": {"interface": interface, "virtualNetwork": {"namespace": self.ns.name(), "name": network},
                     "subnets": subnets, "routes": routes, "nodes": [self.node]}});
        gateways
            .patch(name, &apply_params(), &Patch::Apply(&vgw))
            .await
            .unwrap_or_else(|e| panic!("VirtualGateway {name}: {e}"));
    }

    /// Waits until the virtual gateway reports `Ready` = `status`.
    pub async fn wait_vgw(&self, name: &str, status: &str) -> trunkline_api::VirtualGateway {
        self.wait_condition(
            name,
            "Ready",
            status,
            None,
            READY_TIMEOUT,
            |vgw: &trunkline_api::VirtualGateway| {
                vgw.status
                    .as_ref()
                    .map(|s| s.conditions.clone())
                    .unwrap_or_default()
            },
        )
        .await
    }

    /// `ip <args>` in the gateway node's namespace: its stdout.
    pub fn gw_ip(&self, args: &[&str]) -> String {
        let mut all = vec!["ip"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&self.lab.exec(NODE, &all).stdout).into_owned()
    }

    /// The ifindex of `interface` in the gateway node's namespace.
    pub fn ifindex(&self, interface: &str) -> Option<u32> {
        let out = self.gw_ip(&["-o", "link", "show", "dev", interface]);
        out.split(':').next()?.trim().parse().ok()
    }

    pub fn drops(&self, reason: &str) -> f64 {
        self.agent()
            .metric(&format!(
                "trunkline_dataplane_drops_total{{reason=\"{reason}\"}}"
            ))
            .unwrap_or(0.0)
    }

    /// The XDP programs attached to the gateway port, as `ip link` shows them.
    pub fn xdp_attachments(&self) -> usize {
        let out = self
            .lab
            .exec(NODE, &["ip", "-details", "link", "show", TRUNK]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.matches("prog/xdp").count()
    }
}

pub async fn ready_gateway(backend: &'static str) -> Gateway<'static> {
    let instances = [BMS1, BMS2, OTHER];
    let gateway = Gateway::start(&instances, backend).await;
    gateway.apply_objects(&instances).await;
    for vlan in [100, 200, 300] {
        gateway.wait_li(&gateway.li_name(vlan), "True").await;
    }
    gateway
}
