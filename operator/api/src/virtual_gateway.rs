//! VirtualGateway: the seeds' simple gateway (vgw), declared.
//!
//! A host interface per virtual network on each selected node carries
//! traffic between the network's VRF and the host's routing table: the VRF
//! gets a default route (or the given routes) toward the interface, the host
//! gets a route per subnet through it. Cluster-scoped because it creates
//! host interfaces and routes, which a tenant must not be able to do.
//!
//! Unlike the original, a virtual gateway is an object: it survives agent
//! restarts (the agent adopts what is still declared and removes the rest),
//! and its prefixes are validated by the API server.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::fields::{InterfaceName, IpPrefix, NamespacedRef, ObjectName};
use crate::status::Condition;

/// Public access for one virtual network through a host interface.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "VirtualGateway",
    doc = "Public access for a virtual network through a host interface on selected gateway nodes (the simple gateway, vgw): host routes for its subnets, VRF routes toward the interface.",
    plural = "virtualgateways",
    shortname = "vgw",
    category = "trunkline",
    status = "VirtualGatewayStatus",
    printcolumn = r#"{"name":"Interface","type":"string","jsonPath":".spec.interface"}"#,
    printcolumn = r#"{"name":"Network","type":"string","jsonPath":".spec.virtualNetwork.name"}"#,
    printcolumn = r#"{"name":"Subnets","type":"string","jsonPath":".spec.subnets"}"#,
    printcolumn = r#"{"name":"Nodes","type":"string","jsonPath":".spec.nodes","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new(
    "self.subnets.all(a, self.subnets.all(b, a == b || !isCIDR(a) || !isCIDR(b) || !cidr(a).containsCIDR(b)))"
).message("subnets must not overlap: no subnet may contain another").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualGatewaySpec {
    /// Name of the host interface to create on each node (e.g. `vgw1`).
    /// Unique per node across virtual gateways. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("interface is immutable: create another virtual gateway for another interface name").reason(Reason::FieldValueForbidden))]
    pub interface: InterfaceName,

    /// The virtual network (namespace and name) given public access; its VRF
    /// is the seeds' routing instance. Immutable, as in the original.
    #[x_kube(validation = Rule::new("self == oldSelf").message("virtualNetwork is immutable: create another virtual gateway for another network").reason(Reason::FieldValueForbidden))]
    pub virtual_network: NamespacedRef,

    /// Subnets of the network routed from the host through the interface
    /// (`<subnet> dev <interface>`), 1 to 16 of them, prefix length 1 to 31
    /// for IPv4 (1 to 127 for IPv6), not overlapping each other nor another
    /// virtual gateway's on the same node.
    #[schemars(length(min = 1, max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new(
        "self.all(s, !isCIDR(s) || (cidr(s).ip().family() == 4 ? (cidr(s).prefixLength() >= 1 && cidr(s).prefixLength() <= 31) : (cidr(s).prefixLength() >= 1 && cidr(s).prefixLength() <= 127)))"
    ).message("each subnet must have a prefix length from 1 to 31 (IPv4) or 1 to 127 (IPv6): a virtual gateway serves whole subnets, not single hosts").reason(Reason::FieldValueInvalid))]
    pub subnets: Vec<IpPrefix>,

    /// Destinations the VRF routes toward the interface, prefix length 0 to
    /// 32 (0 to 128 for IPv6). Empty: a default route (`0.0.0.0/0`, and
    /// `::/0` when a subnet is IPv6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub routes: Vec<IpPrefix>,

    /// Nodes (PhysicalRouter names) that run this virtual gateway, 1 to 256.
    #[schemars(length(min = 1, max = 256))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub nodes: Vec<ObjectName>,
}

/// What the operator and the node dataplanes report about a virtual gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualGatewayStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `ResolvedRefs`, `Programmed` and the summary `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Per node: whether the host interface and routes are in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["node"]))]
    pub nodes: Vec<VirtualGatewayNodeStatus>,
}

/// State of a virtual gateway on one node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualGatewayNodeStatus {
    /// Node (PhysicalRouter) name.
    pub node: String,
    /// `Programmed`, `Pending` or `Failed`.
    pub state: String,
    /// Detail when not programmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
