//! ClusterVirtualNetworkPolicy: the administrator's network policy,
//! connecting virtual networks of different namespaces (tenants) with the
//! ordered rules of a [`VirtualNetworkPolicy`](crate::VirtualNetworkPolicy)
//! (issue 18: "networks of one tenant and, by an administrator's object,
//! of different tenants").
//!
//! Cluster-scoped, so a tenant (whose role is bound in its own namespace)
//! can never create one: only a cluster-wide grant (an administrator)
//! can. It names its networks by namespace and name and needs no consent
//! from them: two networks are connected when a rule of the policy is
//! between them. A tenant's namespaced policy can name networks of its own
//! namespace only.
//!
//! ```text
//!   ClusterVirtualNetworkPolicy shared-dns (priority 10)
//!     rules: [{Allow UDP 53 tenant-a/app > tenant-b/dns, OneWay}]
//!
//!   tenant-a/app's VRF gets tenant-b/dns's routes and back; app -> dns: UDP 53 only
//! ```
//!
//! Order: the cluster policies with a rule between the two networks come
//! first (by `priority`, lower first, then by name), then the namespaced
//! policies the sending network names, in its order (the same shape as the
//! Kubernetes AdminNetworkPolicy before NetworkPolicy). `Pass` hands the
//! flow to the next policy; no decision at all: denied.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::fields::NamespacedRef;
use crate::security_group::{PortRange, RuleProtocol};
use crate::virtual_network_policy::{
    NetworkPolicyAction, RuleDirection, VirtualNetworkPolicyStatus,
};

/// Ordered rules on the traffic between virtual networks of any namespaces.
#[derive(CustomResource, KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "ClusterVirtualNetworkPolicy",
    doc = "The administrator's network policy: connects the VirtualNetworks its rules name (namespace and name, any namespaces): each gets the other's routes, and the ordered rules (first match; Pass: the next policy; no match: denied) say which traffic may cross between them, statefully. Evaluated before the namespaced VirtualNetworkPolicies, by priority.",
    plural = "clustervirtualnetworkpolicies",
    shortname = "cvnp",
    category = "trunkline",
    status = "VirtualNetworkPolicyStatus",
    printcolumn = r#"{"name":"Priority","type":"integer","jsonPath":".spec.priority"}"#,
    printcolumn = r#"{"name":"Networks","type":"integer","jsonPath":".status.networkCount","description":"existing VirtualNetworks its rules name"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterVirtualNetworkPolicySpec {
    /// Order among cluster policies, 0 to 1000: lower is evaluated first;
    /// equal priorities are taken by name. Every cluster policy comes
    /// before the namespaced policies.
    #[serde(default)]
    #[schemars(range(max = 1000))]
    pub priority: u16,
    /// The rules, in order, 1 to 128: the first rule matching a flow's
    /// first packet decides it.
    #[schemars(length(min = 1, max = 128))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub rules: Vec<ClusterVirtualNetworkPolicyRule>,
}

/// One rule: traffic of a protocol, to ports, from one network to another
/// (and back, with `direction: Both`), the networks named by namespace.
#[derive(Clone, Debug, PartialEq, Eq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "!has(self.ports) || (has(self.protocol) && (self.protocol == 'TCP' || self.protocol == 'UDP'))"
).message("ports only apply to protocol TCP or UDP").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    // `namespace` is a CEL reserved word: Kubernetes escapes the field as
    // `__namespace__`. Whole objects cannot be compared (`!=` has no
    // overload for two object types).
    "self.source.__namespace__ != self.destination.__namespace__ || self.source.name != self.destination.name"
).message(
    "source and destination must be two different networks: traffic inside a network is never subject to a network policy"
).reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterVirtualNetworkPolicyRule {
    /// `Allow` (the flow crosses; the instances' security groups still
    /// apply), `Deny` (dropped), or `Pass` (this policy does not decide:
    /// the next one does).
    pub action: NetworkPolicyAction,
    /// `Any` (default), `TCP`, `UDP` or `ICMP` (ICMPv6 for IPv6 traffic).
    #[serde(default)]
    pub protocol: RuleProtocol,
    /// Destination ports (TCP and UDP only); none: every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
    /// The network that opens the flow (with `direction: Both`, either
    /// end): a VirtualNetwork, by namespace and name.
    pub source: NamespacedRef,
    /// The network the flow is opened toward (with `direction: Both`,
    /// either end).
    pub destination: NamespacedRef,
    /// `Both` (default: flows opened from either network) or `OneWay`
    /// (only flows opened from `source`). Replies of a decided flow always
    /// follow its verdict.
    #[serde(default)]
    pub direction: RuleDirection,
}
