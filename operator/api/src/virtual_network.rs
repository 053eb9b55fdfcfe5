//! VirtualNetwork: an overlay network of a tenant, with its subnets, its
//! VXLAN network identifier and its routing instance (VRF).
//!
//! `encapsulation` picks, per network, how its traffic crosses the fabric
//! between gateway nodes (the original's encapsulation priority list); the
//! operator writes the list in effect to `status.encapsulation`, and the
//! network's bridged label (MPLSoUDP, inner Ethernet frame) to
//! `status.mplsLabel`.
//!
//! `northSouth` says how traffic to destinations the network does not route
//! leaves the overlay without a tunnel (seed 004): distributed SNAT or IP
//! fabric forwarding; DC gateways (their own kind) add labelled routes.
//!
//! The original kept subnets in IPAM objects linked to the network; here
//! they are part of the network, because every rule about them (the gateway
//! inside the subnet, no overlap) is then a rule on one object that the API
//! server enforces. Users coming from the original can keep their routing
//! instance names (`domain:project:network:network`).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fields::{IpAddress, IpPrefix, ObjectName, RouteDistinguisher, RouteTarget};
use crate::status::Condition;

/// An overlay virtual network.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "VirtualNetwork",
    doc = "An overlay virtual network of this namespace: its subnets with their gateway addresses, its VXLAN network identifier and its routing instance (VRF).",
    plural = "virtualnetworks",
    shortname = "vn",
    category = "trunkline",
    namespaced,
    status = "VirtualNetworkStatus",
    printcolumn = r#"{"name":"Subnets","type":"string","jsonPath":".status.subnetsSummary","description":"Every subnet, comma-separated"}"#,
    printcolumn = r#"{"name":"VNI","type":"integer","jsonPath":".status.vni","description":"VXLAN network identifier in use"}"#,
    printcolumn = r#"{"name":"Routing-Instance","type":"string","jsonPath":".status.routingInstance","priority":1}"#,
    printcolumn = r#"{"name":"Label","type":"integer","jsonPath":".status.mplsLabel","description":"MPLS label of bridged and flooded traffic","priority":1}"#,
    printcolumn = r#"{"name":"Encapsulation","type":"string","jsonPath":".status.encapsulation","description":"Encapsulations in effect, in priority order","priority":1}"#,
    printcolumn = r#"{"name":"Exit","type":"string","jsonPath":".status.fabricExit","description":"How traffic leaves the overlay untunneled: SNAT or IPFabricForwarding","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[kube(validation = Rule::new(
    "!has(oldSelf.status) || !has(oldSelf.status.vni) || !has(self.spec.vni) || (has(oldSelf.spec.vni) && self.spec.vni == oldSelf.spec.vni) || self.spec.vni == oldSelf.status.vni"
).message("spec.vni cannot be set to another VNI than the one the network runs with (status.vni): a running network keeps its VNI; set spec.vni to status.vni or leave it unset, or create a new network for another VNI").reason(Reason::FieldValueForbidden))]
#[x_kube(validation = Rule::new(
    "self.subnets.all(a, self.subnets.all(b, a.cidr == b.cidr || !isCIDR(a.cidr) || !isCIDR(b.cidr) || !cidr(a.cidr).containsCIDR(b.cidr)))"
).message("subnets must not overlap: no subnet may contain another").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "!has(self.northSouth) || !has(self.forwardingMode) || self.forwardingMode != 'L2' || !((has(self.northSouth.snat) && self.northSouth.snat) || (has(self.northSouth.ipFabricForwarding) && self.northSouth.ipFabricForwarding))"
).message("northSouth needs routing: a network with forwardingMode L2 only bridges, so nothing of it can leave by SNAT or IP fabric forwarding; use L2L3 or L3, or turn northSouth off").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "!has(self.mtu) || self.mtu >= 1280 || self.subnets.all(s, !isCIDR(s.cidr) || cidr(s.cidr).ip().family() == 4)"
).message("mtu must be at least 1280 in a network with an IPv6 subnet (the IPv6 minimum MTU)").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualNetworkSpec {
    /// IPv4 and IPv6 subnets of the network, each with its gateway address.
    /// At most 16; they must not overlap.
    #[serde(default)]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["cidr"]))]
    pub subnets: Vec<Subnet>,

    /// VXLAN network identifier, 1 to 16777215, unique in the cluster. When
    /// unset, the operator allocates one (shown in `status.vni`). Immutable
    /// once set, and a running network keeps its VNI: it can be set later
    /// only to the VNI in `status.vni`. Setting it needs the administrator's
    /// permission `update` on `virtualnetworks/vni` (an admission policy
    /// checks it); tenants leave it unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 16777215))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("vni is immutable once set: create a new network to change it").reason(Reason::FieldValueForbidden))]
    pub vni: Option<u32>,

    /// `L2L3` (default: bridge within the network, route across subnets),
    /// `L2` (bridge only) or `L3` (route only).
    #[serde(default)]
    pub forwarding_mode: ForwardingMode,

    /// Name of the routing instance (VRF) in the original's form
    /// `domain:project:network:network`, for users migrating from it; the
    /// project part must be the network's namespace (an admission policy
    /// and the operator check it), so no tenant can take another's name.
    /// Default: `default-domain:<namespace>:<name>:<name>`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new("self.matches('^[^:]+:[^:]+:[^:]+:[^:]+$') && self.split(':')[2] == self.split(':')[3]").message("routingInstance must be domain:project:network:network, four non-empty parts separated by ':' whose last two are equal (e.g. default-domain:admin:net1:net1)").reason(Reason::FieldValueInvalid))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("routingInstance is immutable").reason(Reason::FieldValueForbidden))]
    pub routing_instance: Option<String>,

    /// Flood frames to unknown unicast MACs in the network instead of
    /// dropping them. Off by default, as in the original.
    #[serde(default)]
    pub flood_unknown_unicast: bool,

    /// Encapsulations between gateway nodes (and external VTEPs), in
    /// priority order: toward each peer the first one the peer supports is
    /// used. `MPLSoUDP` (UDP 6635, MPLS labels) and/or `VXLAN` (UDP 4789,
    /// the network's VNI), each at most once. Default: the operator's
    /// `--encapsulation-priority` (`MPLSoUDP,VXLAN` unless changed); the
    /// list in effect is shown in `status.encapsulation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub encapsulation: Option<Vec<Encapsulation>>,

    /// How the network's traffic to destinations it does not route leaves
    /// the overlay without a tunnel (seed 004): `snat` (source NAT to the
    /// gateway node's underlay address) or `ipFabricForwarding` (sent on
    /// the fabric as it is; the fabric routes the network's subnets back to
    /// a gateway node). At most one of the two; neither by default (such
    /// destinations are dropped). Routes of a DCGateway or a VirtualGateway
    /// take precedence. The exit in effect is shown in `status.fabricExit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub north_south: Option<NorthSouth>,

    /// The MTU of the network's instances, 576 to 9216 (the original's
    /// upper bound): the largest IP packet the gateway routes to them
    /// (larger ones get fragmentation-needed / packet-too-big, never more
    /// than the egress port's `mtu`), announced by DHCP (option 26) and
    /// router advertisements. Default: the ports' MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 576, max = 9216))]
    pub mtu: Option<u32>,

    /// How the network's instances get their addresses: by default the
    /// gateway answers DHCPv4 and DHCPv6 with each instance's VMI address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<Dhcp>,

    /// L3VPN (RFC 4364, seed 003): the route targets and route
    /// distinguisher under which the BGP speaker (`trunkline-bgp`)
    /// advertises the network's VMI addresses to BGPPeers and imports their
    /// routes into the network's VRF. None by default: the network is
    /// neither exported nor imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l3vpn: Option<L3Vpn>,

    /// VirtualNetworkPolicies of this namespace the network is attached
    /// to, in order, at most 16, each once. A policy connects two networks
    /// when both name it and one of its rules is between them: each gets
    /// the other's routes, and the policies the sending network names,
    /// in this order, decide which flows cross. None: the network is
    /// connected to no other.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub network_policies: Vec<ObjectName>,
}

/// A network's L3VPN membership: what it exports and imports by BGP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct L3Vpn {
    /// The route distinguisher of the network's exported routes (`ASN:NN`
    /// or `IPv4:NN`). Default: `<speaker router ID>:<status.vni>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_distinguisher: Option<RouteDistinguisher>,
    /// Route targets attached to every route the network exports (its VMI
    /// addresses, once Programmed), at most 16, each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub export_route_targets: Vec<RouteTarget>,
    /// Routes learned from BGPPeers carrying any of these route targets
    /// are installed in the network's VRF (MPLS over UDP to the advertising
    /// router, with the route's label), at most 16, each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub import_route_targets: Vec<RouteTarget>,
}

/// How a network leaves the overlay without a tunnel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "!(has(self.snat) && self.snat && has(self.ipFabricForwarding) && self.ipFabricForwarding)"
).message("snat and ipFabricForwarding cannot both be on: they are two ways out for the same destinations (SNAT hides the instances behind the node's underlay address, IP fabric forwarding shows their own addresses and needs the fabric to route the subnets back); choose one").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NorthSouth {
    /// Distributed source NAT: every gateway node translates its own
    /// instances' TCP, UDP and ICMP echo to its underlay address, with
    /// ports from its SNAT range (`--snat-ports`), and translates the
    /// replies back. The outside world sees the node, never the instance.
    #[serde(default)]
    pub snat: bool,
    /// IP fabric forwarding: packets leave the fabric port untranslated and
    /// untunneled; the fabric must route the network's subnets to one of
    /// its gateway nodes (any: a node tunnels to the one holding the
    /// instance). The subnets must not overlap those of another network
    /// with IP fabric forwarding (the older keeps them).
    #[serde(default)]
    pub ip_fabric_forwarding: bool,
}

/// The fabric exit a network has in effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum FabricExit {
    /// Source NAT to the gateway nodes' underlay addresses.
    #[serde(rename = "SNAT")]
    Snat,
    /// IP fabric forwarding.
    #[serde(rename = "IPFabricForwarding")]
    IpFabricForwarding,
}

/// DHCP for a network's remote instances (the original's agent answered
/// DHCP for its gateway VMIs).
#[derive(Clone, Debug, PartialEq, Eq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "self.mode == 'Relay' ? has(self.relayServer) : !has(self.relayServer)"
).message("relayServer is required with mode Relay and only allowed with it").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "!has(self.nextServer) || !isIP(self.nextServer) || ip(self.nextServer).family() == 4"
).message("nextServer must be an IPv4 address (PXE fetches the boot file over IPv4 TFTP)").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "!has(self.relayServer) || !isIP(self.relayServer) || ip(self.relayServer).family() == 4"
).message("relayServer must be an IPv4 address: the gateway relays DHCPv4 only").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dhcp {
    /// `Server` (default): the gateway answers from each VMI's configured
    /// addresses (lease, router = the subnet's gateway), and router
    /// advertisements send IPv6 hosts to DHCPv6. `Off`: the gateway does
    /// not answer; clients' broadcasts are bridged (to a DHCP server among
    /// the instances). `Relay`: the gateway relays DHCPv4 to `relayServer`
    /// (RFC 1542: from the client's subnet gateway address, routed in the
    /// network; the server must hand out each instance its VMI's address);
    /// DHCPv6 is not relayed.
    #[serde(default)]
    pub mode: DhcpMode,
    /// Lease time in seconds, 60 to 31536000. Default 86400 (one day, as
    /// the original). The address never changes: the lease only sets how
    /// often clients come back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 31_536_000))]
    pub lease_seconds: Option<u32>,
    /// DNS servers announced to the instances: IPv4 ones by DHCPv4, IPv6
    /// ones by DHCPv6. At most 4.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub dns_servers: Vec<IpAddress>,
    /// The DNS domain announced (DHCPv4 option 15, DHCPv6 domain list),
    /// e.g. `lab.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*[.]?$')").message("domain must be a DNS name: dot-separated labels of letters, digits and '-', each 1 to 63 characters (e.g. lab.example.com)").reason(Reason::FieldValueInvalid))]
    pub domain: Option<String>,
    /// PXE: the server the boot file is fetched from (`siaddr`, option
    /// 66), an IPv4 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_server: Option<IpAddress>,
    /// PXE: the boot file name (`file`, option 67), e.g. `pxelinux.0`.
    /// At most 127 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 127))]
    pub boot_file: Option<String>,
    /// With mode `Relay`: the DHCP server to relay to, an IPv4 address
    /// routed in the network (an instance, or beyond a virtual gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_server: Option<IpAddress>,
}

/// Who answers a network's DHCP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DhcpMode {
    /// The gateway answers.
    #[default]
    Server,
    /// Nobody on the gateway: clients' broadcasts are bridged.
    Off,
    /// The gateway relays DHCPv4 to an external server.
    Relay,
}

/// How overlay traffic crosses the fabric.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Encapsulation {
    /// MPLS over UDP (RFC 7510), UDP port 6635: a label per VMI for routed
    /// traffic, a label per network for bridged and flooded traffic.
    #[serde(rename = "MPLSoUDP")]
    MplsOverUdp,
    /// VXLAN (RFC 7348), UDP port 4789: the network's VNI.
    #[serde(rename = "VXLAN")]
    Vxlan,
}

/// One subnet of a virtual network.
#[derive(Clone, Debug, PartialEq, Eq, KubeSchema, Serialize, Deserialize)]
#[x_kube(validation = Rule::new(
    "!isCIDR(self.cidr) || (cidr(self.cidr).ip().family() == 4 ? (cidr(self.cidr).prefixLength() >= 1 && cidr(self.cidr).prefixLength() <= 30) : (cidr(self.cidr).prefixLength() >= 1 && cidr(self.cidr).prefixLength() <= 126))"
).message("subnet prefix length must be 1 to 30 for IPv4 and 1 to 126 for IPv6, to leave room for a gateway and an instance").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "!isCIDR(self.cidr) || (cidr(self.cidr).ip().family() == 4 ? ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/3'] : ['::/128', '::1/128', 'fe80::/10', 'ff00::/8']).all(r, !cidr(r).containsCIDR(self.cidr) && !cidr(self.cidr).containsCIDR(r))"
).message("subnet must be a range of unicast addresses instances can use: not unspecified (0.0.0.0/8, ::), loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16, fe80::/10), multicast or reserved (224.0.0.0/3, ff00::/8), nor contain one of those (e.g. 192.168.1.0/24 or fd00:1::/64)").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "!has(self.gateway) || !isCIDR(self.cidr) || !isIP(self.gateway) || cidr(self.cidr).containsIP(self.gateway)"
).message("gateway must be an address inside the subnet (e.g. 192.168.1.1 for 192.168.1.0/24)").reason(Reason::FieldValueInvalid))]
#[x_kube(validation = Rule::new(
    "!has(self.gateway) || !isCIDR(self.cidr) || !isIP(self.gateway) || !cidr(self.cidr).containsIP(self.gateway) || !(ip(self.gateway) == cidr(self.cidr).ip())"
).message("gateway must not be the subnet's network address (e.g. 192.168.1.1, not 192.168.1.0, for 192.168.1.0/24)").reason(Reason::FieldValueInvalid))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subnet {
    /// The prefix, e.g. `192.168.1.0/24` or `fd00:1::/64`.
    pub cidr: IpPrefix,
    /// The gateway address instances use (answered by the gateway node's
    /// ARP/ND proxy): not the subnet's network address nor, for IPv4, its
    /// broadcast address. Default: the first address of the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddress>,
}

/// Forwarding mode of a virtual network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ForwardingMode {
    /// Bridge within the network, route across subnets.
    #[default]
    L2L3,
    /// Bridge only.
    L2,
    /// Route only.
    L3,
}

/// What the operator reports about a virtual network.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNetworkStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (for instance, the VNI is not used by another network)
    /// and the summary `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The VXLAN network identifier in use (given or allocated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// The routing instance name in use (given or defaulted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_instance: Option<String>,
    /// Every subnet, comma-separated (what `kubectl get vn` shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnets_summary: Option<String>,
    /// The MPLS label of the network's bridged and flooded traffic (payload:
    /// an Ethernet frame), allocated by the operator from 16 up, unique in
    /// the cluster with the VMIs' labels, and kept while the network stays
    /// accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpls_label: Option<u32>,
    /// The encapsulations in effect, in priority order: `spec.encapsulation`
    /// or the operator's default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encapsulation: Vec<Encapsulation>,
    /// The fabric exit in effect (`spec.northSouth`, once the operator
    /// accepted it): `SNAT` or `IPFabricForwarding`; absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fabric_exit: Option<FabricExit>,
}
