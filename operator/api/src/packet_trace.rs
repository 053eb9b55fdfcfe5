//! PacketTrace: a question to one gateway node's dataplane, answered in the
//! object's status by that node's agent.
//!
//! ```text
//!  kubectl trunkline trace ...   (needs: create packettraces — the trace role)
//!     | create PacketTrace {node: gw1, mode: Trace, packet: {...}}
//!     v
//!  kube-apiserver (schema + CEL refuse bad questions; RBAC decides who may ask)
//!     | watch, fieldSelector spec.node=gw1 (a CRD selectable field)
//!     v
//!  agent on gw1: runs the forwarding pipeline on the described frame against
//!     its current tables with a recording observer, no side effects
//!     | patch packettraces/status: stages, verdict, tables version
//!     v
//!  kubectl trunkline reads the status (watch, with a deadline)
//! ```
//!
//! Requests and answers are objects: no port on the node is opened for
//! them, and the API server authenticates, authorises (RBAC), validates and
//! audits every question. Cluster-scoped, like the PhysicalRouters and
//! logical interfaces it is about: a trace reads one node's whole tables,
//! every tenant's VMIs and routes included, which is an administrator's
//! view, never a tenant's.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fields::{InterfaceName, IpAddress, MacAddress, ObjectName};
use crate::status::Condition;

/// The condition of a PacketTrace (`Ready`, as every kind, so Argo CD and
/// `kubectl wait --for=condition=Ready` work): `True` once answered,
/// `False` with a reason while it is not (no such node, expired unanswered,
/// observing).
pub const READY: &str = crate::status::condition::READY;

/// Reasons of the `Ready` condition.
pub mod reason {
    /// The node's agent answered.
    pub const ANSWERED: &str = "Answered";
    /// The named node has no PhysicalRouter.
    pub const UNKNOWN_NODE: &str = "UnknownNode";
    /// No agent answered before `spec.answerWithinSeconds`.
    pub const EXPIRED: &str = "Expired";
    /// The agent could not build the described packet (a port it does not
    /// have, say).
    pub const INVALID_PACKET: &str = "InvalidPacket";
    /// An observation is running; samples arrive in status.
    pub const OBSERVING: &str = "Observing";
}

/// A question to a gateway node's dataplane: trace a described packet, or
/// observe real verdicts for a while.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "PacketTrace",
    doc = "A question to one gateway node's dataplane, answered in status by that node's agent: Trace (what the node's current tables do with a described packet, stage by stage) or Observe (sampled verdicts of real packets matching a filter).",
    plural = "packettraces",
    shortname = "ptr",
    category = "trunkline",
    status = "PacketTraceStatus",
    selectable = ".spec.node",
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".spec.node"}"#,
    printcolumn = r#"{"name":"Mode","type":"string","jsonPath":".spec.mode"}"#,
    printcolumn = r#"{"name":"Verdict","type":"string","jsonPath":".status.verdict.action"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self == oldSelf").message("a PacketTrace is a question: create a new one instead of changing it").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "self.mode == 'Trace' ? has(self.packet) && !has(self.filter) : !has(self.packet)"
).message("mode Trace needs spec.packet (and no filter); mode Observe takes spec.filter, never spec.packet").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PacketTraceSpec {
    /// The gateway node (its PhysicalRouter's name) to ask.
    pub node: ObjectName,
    /// `Trace` (one described packet) or `Observe` (real packets).
    pub mode: TraceMode,
    /// Mode Trace: the packet to trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet: Option<TracedPacket>,
    /// Mode Observe: which real packets to sample (all when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<ObserveFilter>,
    /// Mode Observe: how long to sample, 1 to 300 seconds (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 300))]
    pub duration_seconds: Option<u32>,
    /// Mode Observe: the most samples kept, 1 to 256 (default 64); later
    /// ones are counted in `status.samplesDropped`, never queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 256))]
    pub max_samples: Option<u32>,
}

/// What a PacketTrace asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TraceMode {
    /// Trace one described packet through the node's current tables.
    Trace,
    /// Sample the verdicts of real packets.
    Observe,
}

/// The protocol of a traced packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TracedProtocol {
    /// An ICMP / ICMPv6 message (`icmpType`, default echo request).
    ICMP,
    /// UDP (`srcPort`, `dstPort`).
    UDP,
    /// A TCP SYN (`srcPort`, `dstPort`).
    TCP,
    /// An ARP request for `dstIP` (IPv4 only).
    ARP,
}

/// A packet arriving on a port of the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[x_kube(validation = Rule::new(
    "isIP(self.srcIP) && isIP(self.dstIP) ? ip(self.srcIP).family() == ip(self.dstIP).family() : true"
).message("srcIP and dstIP must be of the same address family").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "self.protocol != 'ARP' || !self.srcIP.contains(':')"
).message("an ARP request carries IPv4 addresses").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "self.protocol in ['UDP', 'TCP'] || (!has(self.srcPort) && !has(self.dstPort))"
).message("srcPort and dstPort are for UDP and TCP").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracedPacket {
    /// The node's interface it arrives on (a trunk, or the fabric).
    pub port: InterfaceName,
    /// Its 802.1Q VLAN, 1 to 4094; untagged when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4094))]
    pub vlan: Option<u16>,
    /// Source MAC.
    pub src_mac: MacAddress,
    /// Destination MAC, unicast; default the gateway MAC (for ARP: the
    /// broadcast address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_mac: Option<MacAddress>,
    /// Source address.
    #[serde(rename = "srcIP")]
    pub src_ip: IpAddress,
    /// Destination address (the ARP target for ARP).
    #[serde(rename = "dstIP")]
    pub dst_ip: IpAddress,
    /// `ICMP` (default), `UDP`, `TCP` or `ARP`.
    #[serde(default = "default_protocol")]
    pub protocol: TracedProtocol,
    /// UDP/TCP source port (default 40000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub src_port: Option<u16>,
    /// UDP/TCP destination port (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub dst_port: Option<u16>,
    /// ICMP type (default echo request: 8, or 128 for ICMPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// IP TTL / hop limit, 1 to 255 (default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 255))]
    pub ttl: Option<u8>,
}

fn default_protocol() -> TracedProtocol {
    TracedProtocol::ICMP
}

/// Which real packets an observation samples: every field set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObserveFilter {
    /// Arriving on this interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<InterfaceName>,
    /// With this VLAN (0: untagged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4094))]
    pub vlan: Option<u16>,
    /// From or to this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddress>,
    /// Only drops.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drops_only: bool,
}

/// The answer, written by the node's agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PacketTraceStatus {
    /// `Ready`: `True` (reason `Answered`) once the agent answered;
    /// `False` with `UnknownNode`, `Expired`, `InvalidPacket` or `Observing`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The version of the tables that decided (as the node's PhysicalRouter
    /// status reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables_version: Option<i64>,
    /// Mode Trace: every stage's decision, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<TraceStage>,
    /// Mode Trace: the final verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<TraceVerdict>,
    /// Mode Observe: sampled verdicts, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<ObservedSample>,
    /// Mode Observe: matching packets not sampled (ring full or over rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_dropped: Option<u64>,
}

/// One stage's decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraceStage {
    /// The stage (`port`, `parse`, `classify`, `source_check`, `dispatch`,
    /// `neighbour_proxy`, `route`, `next_hop`, `bridge`, `tunnel`,
    /// `fabric_exit`, `dhcp`, `verdict`).
    pub stage: String,
    /// What it decided, a short word.
    pub decision: String,
    /// Details for people.
    pub detail: String,
}

/// The final verdict of a trace, or of a sampled packet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraceVerdict {
    /// `Transmit`, `Flood`, `Pass` (to the host) or `Drop`.
    pub action: String,
    /// For a drop: the named reason (the `reason` label of the drop metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_reason: Option<String>,
    /// For a transmit: the egress interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_port: Option<String>,
    /// For a transmit: the egress VLAN (absent: untagged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_vlan: Option<u16>,
    /// For a transmit: source MAC as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_mac: Option<String>,
    /// For a transmit: destination MAC as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_mac: Option<String>,
    /// What leaves (a rewritten packet, an ARP reply, a tunnel's outer
    /// header with its label or VNI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// One sampled real packet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedSample {
    /// Milliseconds since the observation started.
    pub at_millis: u64,
    /// The ingress interface.
    pub port: String,
    /// The VLAN it arrived with (0: untagged).
    pub vlan: u16,
    /// Source and destination, as seen arriving (`10.0.0.1 -> 10.0.0.2 ICMP`).
    pub packet: String,
    /// The verdict.
    pub verdict: TraceVerdict,
    /// Where the verdict was made: `xdp` (the XDP tier, in the kernel) or
    /// `pipeline` (the Rust pipeline: AF_XDP, AF_PACKET, or a frame the
    /// XDP tier handed off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_in: Option<String>,
}
