//! PhysicalRouter: one gateway node, as the original system modelled it.
//!
//! As in the original (where a physical router's name equals the compute
//! host name), a PhysicalRouter is named after the Kubernetes node it
//! describes: the node dataplane running on node `N` enforces the objects of
//! PhysicalRouter `N` and reports on its status. The spec is the user's; the
//! status is written by that node's dataplane.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fields::{InterfaceName, IpAddress};
use crate::status::Condition;

/// Default of `spec.interfaceLimit`: the original vRouter's default of 4352
/// interfaces per node (256 + 4096 VLAN interfaces).
pub const DEFAULT_INTERFACE_LIMIT: u32 = 4352;

/// A gateway node: the NICs facing remote instances, and its fabric side.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "PhysicalRouter",
    doc = "A gateway node, named after its Kubernetes node: its physical interfaces facing remote instances (VLAN trunks) and its fabric side. Spec is the administrator's; status is written by that node's dataplane.",
    plural = "physicalrouters",
    shortname = "pr",
    category = "trunkline",
    status = "PhysicalRouterStatus",
    printcolumn = r#"{"name":"Ports","type":"string","jsonPath":".status.portsSummary","description":"Physical interfaces facing remote instances, comma-separated"}"#,
    printcolumn = r#"{"name":"Fabric","type":"string","jsonPath":".spec.fabric.interface","description":"Fabric (underlay) interface"}"#,
    printcolumn = r#"{"name":"Backend","type":"string","jsonPath":".status.backend","description":"Fast-path I/O backend the node dataplane runs"}"#,
    printcolumn = r#"{"name":"LIs","type":"integer","jsonPath":".status.counts.logicalInterfaces","description":"Logical interfaces programmed on the node"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new(
    "!has(self.fabric) || self.physicalInterfaces.all(i, i.name != self.fabric.interface)"
).message("the fabric interface cannot also be listed in physicalInterfaces: remote instances must arrive on a port other than the fabric (underlay) port").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhysicalRouterSpec {
    /// The node's physical interfaces that carry VLAN-tagged traffic from
    /// remote instances (trunk ports). Each name is a Linux interface on the
    /// node; it must not be the fabric interface.
    #[serde(default)]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub physical_interfaces: Vec<PhysicalInterface>,

    /// The node's fabric (underlay) side: the interface toward the IP fabric
    /// and the public network, and the node's underlay address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fabric: Option<Fabric>,

    /// The most logical interfaces this node accepts; the operator refuses
    /// logical interfaces beyond it (reason `Conflict`). Default 4352, the
    /// original's default; 1 to 65536.
    #[serde(default = "default_interface_limit")]
    #[schemars(range(min = 1, max = 65536))]
    pub interface_limit: u32,
}

fn default_interface_limit() -> u32 {
    DEFAULT_INTERFACE_LIMIT
}

/// A physical interface of a gateway node facing remote instances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhysicalInterface {
    /// Linux name of the interface on the node (e.g. `ens5f1`). Unique within
    /// the router.
    pub name: InterfaceName,
    /// MTU to expect on the port, 256 to 9216 (the original's range). When
    /// unset, the interface's current MTU is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 256, max = 9216))]
    pub mtu: Option<u32>,
    /// Free text for operators (switch and port it is cabled to, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub description: Option<String>,
}

/// The fabric (underlay) side of a gateway node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fabric {
    /// Linux name of the fabric interface (e.g. `eth0`).
    pub interface: InterfaceName,
    /// The node's underlay address (tunnel endpoint), IPv4 or IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underlay_address: Option<IpAddress>,
}

/// What the node dataplane reports about its node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalRouterStatus {
    /// The `metadata.generation` of the PhysicalRouter the dataplane last
    /// acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions: `Ready` (the dataplane runs and forwards with
    /// the current tables), `Programmed` (the latest desired state is in the
    /// fast path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Version of the tables the fast path runs; it grows by one at every
    /// swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programmed_generation: Option<i64>,
    /// The fast-path I/O backend: `XDP` (the XDP tier decides the common
    /// case in the kernel, AF_XDP the rest), `AF_XDP` (every frame through
    /// AF_XDP) or `AF_PACKET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Per physical interface state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub ports: Vec<PortStatus>,
    /// How many objects the node's tables hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<ProgrammedCounts>,
    /// The names of `spec.physicalInterfaces`, comma-separated (what
    /// `kubectl get pr` shows). Written by the operator: the one field of
    /// this status that is not the node dataplane's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports_summary: Option<String>,
    /// What the node's installed tables were built from: per kind, the
    /// highest `resourceVersion` of the objects labelled for this node that
    /// the node dataplane had received (`LogicalInterface: "1234"`, ...).
    /// Every object of that kind labelled for the node at or below it is in
    /// the tables, unless listed in `exceptions`: the operator derives each
    /// object's `Programmed` condition from it, without a list of every
    /// object (which would grow past etcd's object size limit).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub programmed_through: BTreeMap<String, String>,
    /// The objects labelled for this node that its tables do not hold
    /// (not accepted yet, a reference missing from its view, a port not
    /// open, a virtual gateway's host side not set up), with why. Bounded:
    /// beyond its byte budget the list is cut and `exceptionsTruncated` set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub exceptions: Vec<ProgrammedException>,
    /// The exceptions did not fit their budget and were cut: the operator
    /// then reports `Programmed=Unknown` for this node's objects, never
    /// `True`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exceptions_truncated: bool,
    /// The node's part in each GatewayHAGroup it is a member of: its state
    /// and what it hears of the other members (the operator turns these
    /// into each group's status).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["group"]))]
    pub ha_groups: Vec<HaGroupReport>,
}

/// A node's part in one GatewayHAGroup, as its node dataplane sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HaGroupReport {
    /// The GatewayHAGroup's name.
    pub group: String,
    /// The group's `metadata.generation` the node acts on.
    pub generation: i64,
    /// `Active`, `Standby` or `Down` (the node cannot serve: its trunk or
    /// fabric link is down, or it fenced itself).
    pub state: String,
    /// When the node entered this state.
    pub since: Time,
    /// Why, in one CamelCase word (`Elected`, `TrunkDown`, ...).
    pub reason: String,
    /// The same, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Mode Fast: whether the node hears each other member's heartbeats,
    /// and since when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["physicalRouter"]))]
    pub peers: Vec<HaPeerReport>,
}

/// Whether a node hears another member of its group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HaPeerReport {
    /// The other member's PhysicalRouter.
    pub physical_router: String,
    /// Whether its heartbeats arrive (within the group's `deadMillis`).
    pub heard: bool,
    /// Since when that is so.
    pub since: Time,
}

/// An object a node was asked to hold (it is labelled for the node) but
/// whose tables do not hold it.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct ProgrammedException {
    /// Kind: `LogicalInterface`, `VirtualMachineInterface`, `VirtualNetwork`,
    /// `VirtualGateway` or `ExternalVTEP`.
    #[schemars(length(max = 64))]
    pub kind: String,
    /// Namespace, for namespaced kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
    /// Name.
    #[schemars(length(max = 253))]
    pub name: String,
    /// Why the node does not hold it.
    #[schemars(length(max = 256))]
    pub reason: String,
}

/// State of one physical interface on the node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortStatus {
    /// Linux interface name.
    pub name: String,
    /// `Up`, `Down` (link down), or `Missing` (no such interface on the node).
    pub state: String,
    /// Human-readable detail when the port is not up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Receive queues the fast path serves on this port (an AF_XDP socket
    /// each): every queue its driver runs, up to 64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<u32>,
    /// How the port's AF_XDP sockets move frames: `ZeroCopy` (the driver
    /// receives into and sends from the sockets' memory) or `Copy` (what
    /// veth and generic XDP do). Absent for AF_PACKET and taps, and when the
    /// kernel does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub af_xdp_mode: Option<String>,
}

/// Sizes of the node's programmed tables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgrammedCounts {
    /// Logical interfaces (port, VLAN) mapped to a VMI.
    pub logical_interfaces: u32,
    /// Virtual machine interfaces.
    pub virtual_machine_interfaces: u32,
    /// Routing instances (VRFs).
    pub routing_instances: u32,
    /// Routes across all VRFs.
    pub routes: u32,
    /// Virtual gateways with their host interface present.
    pub virtual_gateways: u32,
}
