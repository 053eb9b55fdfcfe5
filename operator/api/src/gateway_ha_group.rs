//! GatewayHAGroup: gateway nodes that back each other up for the same
//! remote instances.
//!
//! Two modes:
//! - `STP`, the seeds' design: the switches' (R)STP picks the active gateway
//!   port. Every member gets a VLAN-0 logical interface bound to a dummy VMI
//!   in a BPDU-flooding virtual network (`bpduNetwork`), so BPDUs cross the
//!   gateways and the switches see the loop they must block.
//! - `Fast`, our own: the members exchange heartbeats on the fabric and the
//!   highest-priority live member is active; `timers` set the pace.
//!
//! Cluster-scoped: it groups PhysicalRouters, which are infrastructure.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::fields::{InterfaceName, NamespacedRef, ObjectName};
use crate::status::Condition;

/// A group of gateway nodes backing each other up.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "GatewayHAGroup",
    doc = "Gateway nodes backing each other up for the same remote instances: mode STP (the switches' spanning tree picks the active port, BPDUs flooded through bpduNetwork) or Fast (heartbeats).",
    plural = "gatewayhagroups",
    shortname = "gwha",
    category = "trunkline",
    status = "GatewayHAGroupStatus",
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Members","type":"string","jsonPath":".status.membersSummary","description":"Member PhysicalRouters, comma-separated"}"#,
    printcolumn = r#"{"name":"Active","type":"string","jsonPath":".status.activeMember","description":"Member currently forwarding"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","description":"Why the group is (not) Ready: NoActiveMember, Pending, Invalid, ..."}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self.mode != 'STP' || has(self.bpduNetwork)").message("mode STP needs bpduNetwork: the virtual network that floods BPDUs between the members' VLAN-0 logical interfaces").reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new("self.mode == 'Fast' || !has(self.timers)").message("timers apply to mode Fast only: in mode STP the switches' spanning tree decides").reason(Reason::FieldValueForbidden))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayHAGroupSpec {
    /// `STP` (the switches' spanning tree picks the active port; needs
    /// `bpduNetwork`) or `Fast` (heartbeats between the members).
    pub mode: HaMode,

    /// The gateway nodes of the group, 2 to 16, each with the port its
    /// remote instances arrive on and a priority.
    #[schemars(length(min = 2, max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["physicalRouter"]))]
    pub members: Vec<HaMember>,

    /// Mode `STP`: the VirtualNetwork that floods BPDUs between the members
    /// (the seeds' "special virtual network"); the operator derives the
    /// VLAN-0 logical interfaces and the dummy VMI from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpdu_network: Option<NamespacedRef>,

    /// Mode `Fast`: heartbeat timers; when omitted, hello 100 ms and dead
    /// 500 ms. The node dataplane honours hellos of 50 ms and more (the
    /// operator refuses shorter ones, reason `Invalid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timers: Option<HaTimers>,

    /// Whether a recovered member with a higher priority takes the active
    /// role back (mode `Fast`). Default true.
    #[serde(default = "default_true")]
    pub preempt: bool,
}

fn default_true() -> bool {
    true
}

/// How the active member is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum HaMode {
    /// The switches' (R)STP decides, as in the seeds.
    #[serde(rename = "STP")]
    Stp,
    /// Heartbeats between the members decide.
    Fast,
}

/// One member of an HA group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HaMember {
    /// Name of the member's PhysicalRouter (its node).
    pub physical_router: ObjectName,
    /// The member's port toward the switches (a physical interface of that
    /// router).
    pub physical_interface: InterfaceName,
    /// 0 to 255; the highest live priority is active (ties: the name that
    /// sorts first). Default 100.
    #[serde(default = "default_priority")]
    #[schemars(range(min = 0, max = 255))]
    pub priority: u8,
}

fn default_priority() -> u8 {
    100
}

/// Heartbeat timers of mode `Fast`.
#[derive(Clone, Debug, PartialEq, Eq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("self.deadMillis >= 3 * self.helloMillis").message("deadMillis must be at least 3 times helloMillis, so that one lost heartbeat does not cause a failover").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HaTimers {
    /// Interval between heartbeats, 10 to 10000 ms. Default 100.
    #[serde(default = "default_hello")]
    #[schemars(range(min = 10, max = 10000))]
    pub hello_millis: u32,
    /// Silence after which a member is declared dead, 30 to 60000 ms, and at
    /// least 3 times `helloMillis`. Default 500.
    #[serde(default = "default_dead")]
    #[schemars(range(min = 30, max = 60000))]
    pub dead_millis: u32,
}

fn default_hello() -> u32 {
    100
}

fn default_dead() -> u32 {
    500
}

/// What the operator reports about an HA group, from what its members'
/// node dataplanes report (`PhysicalRouter.status.haGroups`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayHAGroupStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `ResolvedRefs`, `Programmed` (every member's node
    /// dataplane holds the group) and the summary `Ready`: True only while
    /// exactly one member is really active (reason `NoActiveMember` when
    /// none is, `SplitBrain` when two say they are).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The member PhysicalRouters, comma-separated (what `kubectl get gwha`
    /// shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members_summary: Option<String>,
    /// The member currently forwarding for the group's remote instances
    /// (mode Fast: the elected one; mode STP: the one whose port the
    /// switches' spanning tree lets forward), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_member: Option<String>,
    /// State of each member: `Active`, `Standby` or `Down`, since when and
    /// why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["physicalRouter"]))]
    pub members: Vec<HaMemberStatus>,
}

/// State of one member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HaMemberStatus {
    /// Name of the member's PhysicalRouter.
    pub physical_router: String,
    /// `Active` (forwards and answers for the group's instances),
    /// `Standby` (receives, never forwards nor answers) or `Down` (its node
    /// dataplane does not run, cannot serve, or its peers do not hear it).
    pub state: String,
    /// When the member entered this state (the member's clock, or the
    /// operator's when the operator decided `Down`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// Why, in one CamelCase word: `Elected`, `HigherPriorityActive`,
    /// `Preempted`, `TrunkDown`, `FabricDown`, `Fenced`, `Starting`,
    /// `NoHeartbeat`, `NotReporting`, `BpdusHeard`, `NoBpdus`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The same, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
