//! ExternalVTEP: a tunnel endpoint that is not a trunkline node (a switch,
//! a Linux VXLAN device, another cluster's gateway), joined to virtual
//! networks.
//!
//! Every gateway node holding one of its networks exchanges that network's
//! traffic with it over the fabric: broadcast and unknown unicast are
//! replicated to it, and traffic to the static `endpoints` declared behind
//! it (hosts with a MAC and addresses in the network) is bridged or routed
//! to it. Declared as its own kind, not faked as a PhysicalRouter: it has
//! no ports, no node dataplane and no status of its own to report.
//!
//! Cluster-scoped: it names networks of any namespace and claims an
//! underlay address, which is infrastructure. VXLAN only: DC gateways
//! speaking MPLSoUDP are their own kind (`DCGateway`), since they route for
//! networks instead of joining their layer 2.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fields::{IpAddress, MacAddress, NamespaceName, ObjectName};
use crate::status::Condition;

/// A tunnel endpoint outside trunkline, joined to virtual networks.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "ExternalVTEP",
    doc = "A tunnel endpoint that is not a trunkline node (a switch or a Linux VXLAN device), joined to virtual networks: gateway nodes holding those networks flood to it and bridge or route to the static endpoints declared behind it.",
    plural = "externalvteps",
    shortname = "xvtep",
    category = "trunkline",
    status = "ExternalVTEPStatus",
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".spec.address","description":"Underlay address of the VTEP"}"#,
    printcolumn = r#"{"name":"Encapsulation","type":"string","jsonPath":".spec.encapsulation"}"#,
    printcolumn = r#"{"name":"Networks","type":"string","jsonPath":".status.networksSummary","description":"Virtual networks it joins (namespace/name), comma-separated"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new(
    "!isIP(self.address) || ip(self.address).isGlobalUnicast()"
).message("address must be a unicast address of the underlay: not unspecified, loopback, link-local, multicast or broadcast (e.g. 192.0.2.10)").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalVTEPSpec {
    /// The VTEP's underlay address (outer IP of the tunnels), IPv4 or IPv6.
    /// Unique: not a PhysicalRouter's underlay address, nor another
    /// ExternalVTEP's (the operator enforces it across objects).
    pub address: IpAddress,

    /// How the VTEP encapsulates: `VXLAN` (default; UDP 4789 with the
    /// network's VNI). The network's `encapsulation` list must include it.
    /// MPLSoUDP DC gateways are declared as DCGateways.
    #[serde(default)]
    pub encapsulation: ExternalVTEPEncapsulation,

    /// The virtual networks the VTEP joins, 1 to 32, each at most once.
    #[schemars(length(min = 1, max = 32))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["namespace", "name"]))]
    pub networks: Vec<ExternalVTEPNetwork>,
}

/// The encapsulations an external VTEP may speak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ExternalVTEPEncapsulation {
    /// VXLAN (RFC 7348), UDP port 4789, the network's VNI.
    #[default]
    #[serde(rename = "VXLAN")]
    Vxlan,
}

/// One network an external VTEP joins, with the hosts behind it.
#[derive(Clone, Debug, PartialEq, Eq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "!has(self.endpoints) || self.endpoints.all(a, self.endpoints.exists_one(b, b.macAddress.lowerAscii().replace('-', ':') == a.macAddress.lowerAscii().replace('-', ':')))"
).message("endpoints of one network must have distinct MAC addresses").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "!has(self.endpoints) || self.endpoints.all(a, !has(a.ips) || a.ips.all(i, self.endpoints.exists_one(b, has(b.ips) && i in b.ips)))"
).message("endpoints of one network must have distinct addresses: an address belongs to one endpoint").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalVTEPNetwork {
    /// Namespace of the VirtualNetwork.
    pub namespace: NamespaceName,
    /// Name of the VirtualNetwork.
    pub name: ObjectName,
    /// Static hosts behind the VTEP in this network, at most 32: frames and
    /// packets to them go to the VTEP. Their addresses must be inside the
    /// network's subnets, and their MACs and addresses not used by the
    /// network's VMIs (the operator enforces it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub endpoints: Vec<ExternalVTEPEndpoint>,
}

/// A host behind an external VTEP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalVTEPEndpoint {
    /// The host's MAC address (unicast; `:` or `-` separators): the inner
    /// destination of frames sent to it.
    pub mac_address: MacAddress,
    /// The host's addresses in the network, IPv4 and/or IPv6, at most 4;
    /// none for a host that is only bridged to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub ips: Vec<IpAddress>,
}

/// What the operator reports about an external VTEP.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalVTEPStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `ResolvedRefs`, `Programmed` (every gateway node holding
    /// one of its networks reports it) and the summary `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The networks it joins as `namespace/name`, comma-separated (what
    /// `kubectl get xvtep` shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks_summary: Option<String>,
}
