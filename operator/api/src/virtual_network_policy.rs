//! VirtualNetworkPolicy: connects virtual networks of a namespace and says,
//! by ordered rules, which traffic may cross between them (the original's
//! network policies; issue 18).
//!
//! Namespaced: a tenant's object, attached by the networks of its
//! namespace that name it (`VirtualNetwork.spec.networkPolicies`). Two
//! networks are connected when both name a policy that has a rule between
//! them: each network's VRF then gets the other's routes, and a flow's
//! first packet from one to the other is decided by the rules (first
//! match; `Pass` leaves the decision to the next policy the sending
//! network names; no match: denied). The flow's return traffic follows the
//! verdict (stateful). Traffic inside one network is never affected.
//!
//! ```text
//!   VirtualNetwork red  (networkPolicies: [red-blue]) --+
//!                                                        +--> VirtualNetworkPolicy red-blue
//!   VirtualNetwork blue (networkPolicies: [red-blue]) --+       rules: [{Allow TCP 22 red <> blue}]
//!
//!   red's VRF gets blue's routes and blue's red's; red <-> blue: TCP 22 only
//! ```

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fields::ObjectName;
use crate::security_group::{PortRange, RuleProtocol};
use crate::status::Condition;

/// Ordered rules on the traffic between virtual networks of this namespace.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "VirtualNetworkPolicy",
    doc = "Connects VirtualNetworks of this namespace that name it in spec.networkPolicies: each gets the other's routes, and the ordered rules (first match; no match: denied) say which traffic may cross between them, statefully.",
    plural = "virtualnetworkpolicies",
    shortname = "vnp",
    category = "trunkline",
    namespaced,
    status = "VirtualNetworkPolicyStatus",
    printcolumn = r#"{"name":"Networks","type":"integer","jsonPath":".status.networkCount","description":"VirtualNetworks naming the policy"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualNetworkPolicySpec {
    /// The rules, in order, 1 to 128: the first rule matching a flow's
    /// first packet decides it.
    #[schemars(length(min = 1, max = 128))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub rules: Vec<VirtualNetworkPolicyRule>,
}

/// One rule: traffic of a protocol, to ports, from one network to another
/// (and back, with `direction: Both`).
#[derive(Clone, Debug, PartialEq, Eq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "!has(self.ports) || (has(self.protocol) && (self.protocol == 'TCP' || self.protocol == 'UDP'))"
).message("ports only apply to protocol TCP or UDP").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new("self.source != self.destination").message(
    "source and destination must be two different networks: traffic inside a network is never subject to a VirtualNetworkPolicy"
).reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualNetworkPolicyRule {
    /// `Allow` (the flow crosses; the instances' security groups still
    /// apply), `Deny` (dropped), or `Pass` (this policy does not decide:
    /// the next policy the sending network names does).
    pub action: NetworkPolicyAction,
    /// `Any` (default), `TCP`, `UDP` or `ICMP` (ICMPv6 for IPv6 traffic).
    #[serde(default)]
    pub protocol: RuleProtocol,
    /// Destination ports (TCP and UDP only); none: every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
    /// The network that opens the flow (with `direction: Both`, either
    /// end): a VirtualNetwork of this namespace (networks of other
    /// namespaces are connected by an administrator's
    /// ClusterVirtualNetworkPolicy).
    pub source: ObjectName,
    /// The network the flow is opened toward (with `direction: Both`,
    /// either end): a VirtualNetwork of this namespace.
    pub destination: ObjectName,
    /// `Both` (default: flows opened from either network, the original's
    /// `<>`) or `OneWay` (only flows opened from `source`, the original's
    /// `>`). Replies of a decided flow always follow its verdict.
    #[serde(default)]
    pub direction: RuleDirection,
}

/// What a rule does with the flows it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum NetworkPolicyAction {
    /// The flow crosses.
    Allow,
    /// The flow is dropped (counted as `network_policy_denied`).
    Deny,
    /// This policy does not decide; the next one the sending network names
    /// does (none left: denied).
    Pass,
}

/// Which flows between its two networks a rule matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RuleDirection {
    /// Flows opened from either network.
    #[default]
    Both,
    /// Flows opened from `source` toward `destination` only.
    OneWay,
}

/// What the operator reports about a network policy (namespaced or
/// cluster-scoped).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNetworkPolicyStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (every network its rules name exists and names the
    /// policy), `Programmed` (every gateway node holding two networks it
    /// connects has tables built from it) and the summary `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// How many VirtualNetworks name the policy (a
    /// ClusterVirtualNetworkPolicy: how many of the networks its rules name
    /// exist).
    #[serde(default)]
    pub network_count: u32,
}
