//! DCGateway: a data-center gateway router (seed 004's "DC gateway", an MX
//! in the original's deployments) that decapsulates MPLS over UDP from the
//! gateway nodes and routes the inner packets on, and sends MPLS over UDP
//! back to the VMIs' routed labels.
//!
//! Per network it serves, it provides routes (a default route, public
//! prefixes), each with the MPLS label the gateway decapsulates it by:
//! every gateway node holding the network installs them in the network's
//! VRF, with the DC gateway as the tunnel's far end, and accepts MPLS over
//! UDP from the DC gateway's address toward the network's VMIs. Routes are
//! declared here; the BGP work (L3VPN, seed 003) will learn the same kind
//! of route (prefix, next hop, label) from the gateway instead.
//!
//! Cluster-scoped: it claims an underlay address and serves networks of any
//! namespace, which is infrastructure. Unlike an ExternalVTEP it joins no
//! network's layer 2: nothing is flooded or bridged to it.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fields::{IpAddress, IpPrefix, NamespaceName, ObjectName};
use crate::status::Condition;

/// A data-center gateway reached over MPLS over UDP.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "DCGateway",
    doc = "A data-center gateway router reached over MPLS over UDP: gateway nodes holding the networks it serves route its prefixes to it with the label of each route, and accept its MPLS over UDP toward the networks' VMIs.",
    plural = "dcgateways",
    shortname = "dcgw",
    category = "trunkline",
    status = "DCGatewayStatus",
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".spec.address","description":"Underlay address of the gateway (the tunnels' far end)"}"#,
    printcolumn = r#"{"name":"Networks","type":"string","jsonPath":".status.networksSummary","description":"Virtual networks it serves (namespace/name), comma-separated"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new(
    "!isIP(self.address) || ip(self.address).isGlobalUnicast()"
).message("address must be a unicast address of the underlay: not unspecified, loopback, link-local, multicast or broadcast (e.g. 192.0.2.1)").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DCGatewaySpec {
    /// The gateway's underlay address (outer IP of the tunnels), IPv4 or
    /// IPv6, in the family of the gateway nodes' underlay. Unique: not a
    /// PhysicalRouter's underlay address, an ExternalVTEP's or another
    /// DCGateway's (the operator enforces it across objects).
    pub address: IpAddress,

    /// How the nodes send to the gateway: `MPLSoUDP` (UDP 6635, RFC 7510),
    /// the only one for now (the original's MPLSoGRE is not supported),
    /// whatever the served networks' encapsulation. The nodes also take
    /// its VXLAN with a served network's VNI (routed in the network's VRF).
    #[serde(default)]
    pub encapsulation: DCGatewayEncapsulation,

    /// The networks it serves, 1 to 32, each at most once.
    #[schemars(length(min = 1, max = 32))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["namespace", "name"]))]
    pub networks: Vec<DCGatewayNetwork>,
}

/// The encapsulations a DC gateway may speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DCGatewayEncapsulation {
    /// MPLS over UDP (RFC 7510): UDP port 6635, one label.
    #[default]
    #[serde(rename = "MPLSoUDP")]
    MplsOverUdp,
}

/// One network a DC gateway serves, with the routes it provides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DCGatewayNetwork {
    /// Namespace of the VirtualNetwork.
    pub namespace: NamespaceName,
    /// Name of the VirtualNetwork.
    pub name: ObjectName,
    /// Destinations the network reaches through the gateway, at most 64,
    /// each prefix once: none for a gateway that only sends toward the
    /// network's instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["prefix"]))]
    pub routes: Vec<DCGatewayRoute>,
}

/// A route through a DC gateway: what a VPNv4/VPNv6 route from it would
/// carry (prefix and label; the next hop is the gateway's address).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DCGatewayRoute {
    /// The destination, e.g. `0.0.0.0/0` or `203.0.113.0/24`. It must not
    /// lie inside one of the network's subnets (those are the overlay's).
    pub prefix: IpPrefix,
    /// The MPLS label the gateway decapsulates this route's packets by
    /// (its own label space), 16 to 1048575.
    #[schemars(range(min = 16, max = 1048575))]
    pub label: u32,
}

/// What the operator reports about a DC gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DCGatewayStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `ResolvedRefs`, `Programmed` (every gateway node holding
    /// one of its networks reports it) and the summary `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The networks it serves as `namespace/name`, comma-separated (what
    /// `kubectl get dcgw` shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks_summary: Option<String>,
}
