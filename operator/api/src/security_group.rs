//! SecurityGroup: stateful rules on the traffic of the VirtualMachineInterfaces
//! that name it (the original's security groups).
//!
//! Namespaced: a tenant's object, named by VMIs of its namespace
//! (`spec.securityGroups`). Each rule allows one kind of traffic in one
//! direction; whatever no rule allows is dropped, and the return traffic of
//! an allowed flow is always allowed (stateful). A VMI naming no group uses
//! the SecurityGroup `default` of its namespace when it exists, and is not
//! policed otherwise (see `docs/api.md`; `deploy/examples/security-groups`
//! has the original's default group).
//!
//! ```text
//!   VMI a (groups: web) --- egress rules of web --->  ... ---> ingress rules of b's groups ---> VMI b
//!        ^                                                                                     |
//!        +------------------------- return traffic of the allowed flow ------------------------+
//! ```

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fields::{IpPrefix, ObjectName};
use crate::status::Condition;

/// Stateful rules on the traffic of the VMIs that name the group.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "SecurityGroup",
    doc = "Stateful rules on the traffic of the VirtualMachineInterfaces of this namespace that name the group: what they may send (egress) and receive (ingress); the return traffic of an allowed flow is allowed.",
    plural = "securitygroups",
    shortname = "tlsg",
    category = "trunkline",
    namespaced,
    status = "SecurityGroupStatus",
    printcolumn = r#"{"name":"Interfaces","type":"integer","jsonPath":".status.interfaceCount","description":"VirtualMachineInterfaces using the group"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityGroupSpec {
    /// What the group's VMIs may receive, at most 128 rules. None: nothing
    /// unsolicited comes in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub ingress: Vec<SecurityGroupRule>,

    /// What the group's VMIs may send, at most 128 rules. None: nothing
    /// goes out but the return traffic of allowed ingress flows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub egress: Vec<SecurityGroupRule>,
}

/// One rule: traffic of a family and protocol, to ports, with a remote end.
/// The remote end is the source of ingress and the destination of egress:
/// a prefix, the members of a group of this namespace, or (neither) anyone.
#[derive(Clone, Debug, Default, PartialEq, Eq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "!(has(self.remotePrefix) && has(self.remoteGroup))"
).message("a rule names remotePrefix or remoteGroup, not both (neither: any remote end)").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "!has(self.ports) || (has(self.protocol) && (self.protocol == 'TCP' || self.protocol == 'UDP'))"
).message("ports only apply to protocol TCP or UDP").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "!has(self.remotePrefix) || !isCIDR(self.remotePrefix) || ((has(self.ethertype) && self.ethertype == 'IPv6') == (cidr(self.remotePrefix).ip().family() == 6))"
).message("remotePrefix must be of the rule's ethertype (IPv4 by default; e.g. 10.0.0.0/8, or fd00::/8 with ethertype IPv6)").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityGroupRule {
    /// `IPv4` (default) or `IPv6`.
    #[serde(default)]
    pub ethertype: Ethertype,
    /// `Any` (default), `TCP`, `UDP` or `ICMP` (ICMPv6 with ethertype IPv6).
    #[serde(default)]
    pub protocol: RuleProtocol,
    /// Destination ports (TCP and UDP only); none: every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
    /// The remote end's addresses, in CIDR notation without host bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_prefix: Option<IpPrefix>,
    /// The remote end: the VMIs of a SecurityGroup of this namespace (its
    /// members' addresses, as they change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_group: Option<ObjectName>,
}

/// An IP family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Ethertype {
    /// IPv4.
    #[default]
    IPv4,
    /// IPv6.
    IPv6,
}

/// The protocols a rule can name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RuleProtocol {
    /// Every protocol.
    #[default]
    Any,
    /// TCP.
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
    /// ICMP (ICMPv6 in an IPv6 rule).
    #[serde(rename = "ICMP")]
    Icmp,
}

/// A range of ports, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("self.min <= self.max").message("ports.min must not exceed ports.max (e.g. min 22, max 22 for one port)").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortRange {
    /// First port, 1 to 65535.
    #[schemars(range(min = 1, max = 65535))]
    pub min: u16,
    /// Last port, 1 to 65535, not below `min`.
    #[schemars(range(min = 1, max = 65535))]
    pub max: u16,
}

/// What the operator reports about a security group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (its rules are usable: every remote group exists),
    /// `Enforced` (whether every gateway node holding one of its VMIs
    /// enforces it as it is now, and where not) and the summary `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// How many VirtualMachineInterfaces name the group.
    #[serde(default)]
    pub interface_count: u32,
}
