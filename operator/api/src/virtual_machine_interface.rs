//! VirtualMachineInterface: the port of a remote instance (a bare-metal
//! server, a VMware VM) in a virtual network.
//!
//! Namespaced: the namespace is the tenant (the original's project). The
//! VMI names its network in the same namespace, carries the instance's MAC
//! and addresses (the original's instance-ips folded in: an address cannot
//! be shared across VMIs anyway), and the allowed address pairs the instance
//! may also send from.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fields::{IpAddress, IpAddressPrefix, MacAddress, ObjectName};
use crate::status::Condition;

/// The interface of a remote instance in a virtual network.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "trunkline.io",
    version = "v1alpha1",
    kind = "VirtualMachineInterface",
    doc = "The port of a remote instance (bare-metal server, VMware VM) in a virtual network of this namespace: its MAC, its addresses and the address pairs it may also send from.",
    plural = "virtualmachineinterfaces",
    shortname = "tlvmi",
    category = "trunkline",
    namespaced,
    status = "VirtualMachineInterfaceStatus",
    printcolumn = r#"{"name":"Network","type":"string","jsonPath":".spec.virtualNetwork","description":"VirtualNetwork in the same namespace"}"#,
    printcolumn = r#"{"name":"MAC","type":"string","jsonPath":".status.macAddress","description":"The MAC address, normalised (lower case, ':')"}"#,
    printcolumn = r#"{"name":"IPs","type":"string","jsonPath":".status.addressesSummary","description":"Every address, comma-separated"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Label","type":"integer","jsonPath":".status.mplsLabel","description":"MPLS label of traffic routed to the interface","priority":1}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualMachineInterfaceSpec {
    /// Name of the VirtualNetwork (in this namespace) the interface belongs
    /// to. Immutable: moving an instance to another network is a new VMI.
    #[x_kube(validation = Rule::new("self == oldSelf").message("virtualNetwork is immutable: create a new VirtualMachineInterface in the other network").reason(Reason::FieldValueForbidden))]
    pub virtual_network: ObjectName,

    /// MAC address of the remote instance's NIC (unicast; `:` or `-`
    /// separators, any case; normalised to lower-case `:` in
    /// `status.macAddress`, the form the gateway uses). Frames from the instance
    /// must carry it (or an allowed address pair's MAC) as source.
    pub mac_address: MacAddress,

    /// The instance's addresses in the network (the original's instance
    /// IPs): IPv4 and/or IPv6, each inside one of the network's subnets,
    /// not its gateway address nor (IPv4) the subnet's network or broadcast
    /// address, and unique in the network.
    #[serde(default)]
    #[schemars(length(max = 8))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["address"]))]
    pub ips: Vec<InstanceIp>,

    /// Other prefixes (and MACs) the instance may send from, e.g. a VIP
    /// shared by two instances. At most 8.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub allowed_address_pairs: Vec<AllowedAddressPair>,

    /// Source MAC and IP checks on frames from the instance (anti-spoofing)
    /// and security groups. On by default, as in the original; `false`
    /// skips both (the original's port security off, which also disables
    /// its policies): every flow to and from the instance is allowed.
    #[serde(default = "default_true")]
    pub port_security: bool,

    /// SecurityGroups of this namespace whose rules apply to the
    /// interface's traffic (stateful), at most 16, each once. None: the
    /// SecurityGroup named `default` of the namespace if it exists,
    /// otherwise no policy at all (every flow allowed). Ignored with
    /// `portSecurity: false`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub security_groups: Vec<ObjectName>,
}

fn default_true() -> bool {
    true
}

/// One address of a remote instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceIp {
    /// The address, IPv4 or IPv6, without a prefix length.
    pub address: IpAddress,
    /// `ActiveStandby` (default: with gateway HA, one path is preferred) or
    /// `ActiveActive` (ECMP over every path).
    #[serde(default)]
    pub mode: AddressMode,
}

/// How an address reachable over several gateway nodes is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AddressMode {
    /// One preferred path, the others standby (the original's default).
    #[default]
    ActiveStandby,
    /// Equal-cost multipath over every path.
    ActiveActive,
}

/// An extra source prefix (and optionally MAC) an instance may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedAddressPair {
    /// Address with prefix length, e.g. `10.0.0.100/32`.
    pub prefix: IpAddressPrefix,
    /// MAC the instance may send this prefix from; default: the VMI's MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<MacAddress>,
    /// `ActiveStandby` (default) or `ActiveActive`.
    #[serde(default)]
    pub mode: AddressMode,
}

/// What the operator reports about a VMI.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineInterfaceStatus {
    /// The `metadata.generation` these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted`, `ResolvedRefs`, `Programmed` and the summary `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The routing instance (VRF) the interface is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_instance: Option<String>,
    /// Logical interfaces bound to this VMI (names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logical_interfaces: Vec<String>,
    /// The MPLS label of traffic routed to this interface (payload: an IP
    /// packet; what VPNv4 routes advertise), allocated by the operator from
    /// 16 up, unique in the cluster, and kept while the VMI stays accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpls_label: Option<u32>,
    /// `spec.macAddress` normalised: lower case, `:` separators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Every address of `spec.ips`, normalised and comma-separated (what
    /// `kubectl get tlvmi` shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses_summary: Option<String>,
}
