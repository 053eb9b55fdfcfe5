//! BGPPeer: a BGP router (a DC gateway such as an MX, seed 003) the
//! cluster's BGP speaker (`trunkline-bgp`, one active per cluster) peers
//! with to exchange L3VPN routes: it advertises the VMI addresses of
//! networks with export route targets and learns routes that networks with
//! matching import route targets install in their VRFs.
//!
//! Cluster-scoped, like DCGateway: a peering is infrastructure shared by
//! the networks of every namespace. The speaker (not the operator) owns the
//! status: session state, routes sent and received, and conditions whose
//! reasons say why a session is not up (peer unreachable, AS mismatch, ...).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fields::IpAddress;
use crate::status::Condition;

/// A BGP peer of the cluster's speaker.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "BGPPeer",
    doc = "A BGP router the cluster's BGP speaker peers with to exchange L3VPN (VPNv4/VPNv6) routes: networks' VMI addresses out, routes for networks' VRFs in.",
    plural = "bgppeers",
    shortname = "bgpp",
    category = "trunkline",
    status = "BGPPeerStatus",
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".spec.address"}"#,
    printcolumn = r#"{"name":"Peer-AS","type":"integer","jsonPath":".spec.peerASN"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.sessionState","description":"BGP session state (Established when up)"}"#,
    printcolumn = r#"{"name":"Sent","type":"integer","jsonPath":".status.routesSent"}"#,
    printcolumn = r#"{"name":"Received","type":"integer","jsonPath":".status.routesReceived"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new(
    "!isIP(self.address) || ip(self.address).isGlobalUnicast()"
).message("address must be a unicast address: not unspecified, loopback, link-local, multicast or broadcast (e.g. 192.0.2.1)").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "!has(self.timers) || !has(self.timers.keepaliveSeconds) || !has(self.timers.holdTimeSeconds) || self.timers.holdTimeSeconds == 0 || self.timers.keepaliveSeconds * 3 <= self.timers.holdTimeSeconds"
).message("timers.keepaliveSeconds must be at most a third of timers.holdTimeSeconds (e.g. 30 and 90)").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPPeerSpec {
    /// The peer's address (the speaker connects to it on TCP 179), IPv4
    /// or IPv6. One BGPPeer per address: a later one naming the address
    /// of an older one is not configured (Accepted=False, reason
    /// `AddressConflict`).
    pub address: IpAddress,
    /// The peer's AS number, 1 to 4294967295. A peer that announces
    /// another AS is refused (Ready=False, reason `PeerASMismatch`).
    #[serde(rename = "peerASN")]
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub peer_asn: u32,
    /// The speaker's AS number toward this peer. Default: the speaker's
    /// `--local-asn` (64512 unless changed).
    #[serde(rename = "localASN", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub local_asn: Option<u32>,
    /// Address families exchanged: `IPv4VPN` (VPNv4, RFC 4364) and/or
    /// `IPv6VPN` (VPNv6, RFC 4659), each at most once. Default: both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub address_families: Vec<AddressFamily>,
    /// Session timers. Default: hold time 90 s, keepalive 30 s, connect
    /// retry 5 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timers: Option<BGPTimers>,
    /// A TCP MD5 password (RFC 2385) read from a Secret in the speaker's
    /// namespace. None by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
}

/// A BGP address family.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum AddressFamily {
    /// VPNv4: IPv4 prefixes with a route distinguisher and a label.
    #[serde(rename = "IPv4VPN")]
    Ipv4Vpn,
    /// VPNv6: IPv6 prefixes with a route distinguisher and a label.
    #[serde(rename = "IPv6VPN")]
    Ipv6Vpn,
}

/// BGP session timers, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPTimers {
    /// Hold time proposed to the peer: 0 (no keepalives) or 3 to 65535.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 65535))]
    pub hold_time_seconds: Option<u32>,
    /// Interval between keepalives, 1 to 21845.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 21845))]
    pub keepalive_seconds: Option<u32>,
    /// Pause between two connection attempts, 1 to 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub connect_retry_seconds: Option<u32>,
}

/// A key of a Secret in the speaker's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyRef {
    /// The Secret's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key whose value is the password.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// What the speaker reports about a peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BGPPeerStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The BGP finite-state machine's state: `Idle`, `Connect`, `Active`,
    /// `OpenSent`, `OpenConfirm` or `Established`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_state: Option<String>,
    /// Routes advertised to the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes_sent: Option<u64>,
    /// Routes received from the peer (accepted or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes_received: Option<u64>,
    /// `Accepted` (the speaker configured the session) and `Ready` (the
    /// session is Established), with reasons such as `PeerUnreachable`,
    /// `PeerASMismatch`, `SessionDown`, `SecretNotFound`, `Invalid`,
    /// `AddressConflict`, `Pending` (not reported by the speaker yet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}
