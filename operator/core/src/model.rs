//! The domain model the rules work on: every trunkline object reduced to
//! what cross-object decisions need, with parsed addresses, and nothing of
//! Kubernetes but identity, age and generation.
//!
//! `from_api` builds these from the CRD types; tests build them directly.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use crate::net::IpPrefix;

/// The kinds of the trunkline API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A gateway node.
    PhysicalRouter,
    /// A VLAN of a port of a gateway node, bound to a VMI.
    LogicalInterface,
    /// The port of a remote instance in a virtual network.
    VirtualMachineInterface,
    /// An overlay network.
    VirtualNetwork,
    /// Gateway nodes backing each other up.
    GatewayHAGroup,
    /// Public access for a network through a host interface.
    VirtualGateway,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 6] = [
        Kind::PhysicalRouter,
        Kind::LogicalInterface,
        Kind::VirtualMachineInterface,
        Kind::VirtualNetwork,
        Kind::GatewayHAGroup,
        Kind::VirtualGateway,
    ];

    /// The Kubernetes kind name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PhysicalRouter => "PhysicalRouter",
            Kind::LogicalInterface => "LogicalInterface",
            Kind::VirtualMachineInterface => "VirtualMachineInterface",
            Kind::VirtualNetwork => "VirtualNetwork",
            Kind::GatewayHAGroup => "GatewayHAGroup",
            Kind::VirtualGateway => "VirtualGateway",
        }
    }

    /// The kind named `name` (the Kubernetes kind name), if it is ours.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        matches!(self, Kind::VirtualMachineInterface | Kind::VirtualNetwork)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identity of one object: kind, namespace (namespaced kinds only) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The kind.
    pub kind: Kind,
    /// The namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// A cluster-scoped object.
    pub fn cluster(kind: Kind, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: None,
            name: name.into(),
        }
    }

    /// A namespaced object.
    pub fn namespaced(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    /// `LogicalInterface li-1`, `VirtualNetwork tenant-a/net1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A namespace and a name: how cluster-scoped objects name namespaced ones.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamespacedName {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl NamespacedName {
    /// `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for NamespacedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What every object carries: identity, age and generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Kind, namespace, name.
    pub key: ObjectKey,
    /// `metadata.creationTimestamp` in seconds since the Unix epoch (the
    /// API server's resolution); `None` for an object not yet stored, which
    /// counts as the newest.
    pub created: Option<i64>,
    /// `metadata.generation`: bumped by the API server on every spec change.
    pub generation: i64,
}

/// Sort key of "the older keeps it": creation time, then namespace, then
/// name, so that two objects created in the same second still have a
/// fixed order that does not depend on when the operator saw them.
pub type Age = (i64, String, String);

impl Meta {
    /// Meta of a cluster-scoped object.
    pub fn cluster(
        kind: Kind,
        name: impl Into<String>,
        created: Option<i64>,
        generation: i64,
    ) -> Self {
        Self {
            key: ObjectKey::cluster(kind, name),
            created,
            generation,
        }
    }

    /// Meta of a namespaced object.
    pub fn namespaced(
        kind: Kind,
        namespace: impl Into<String>,
        name: impl Into<String>,
        created: Option<i64>,
        generation: i64,
    ) -> Self {
        Self {
            key: ObjectKey::namespaced(kind, namespace, name),
            created,
            generation,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.key.name
    }

    /// The object's namespace, empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        self.key.namespace.as_deref().unwrap_or("")
    }

    /// The sort key of "the older keeps it" (smaller is older).
    pub fn age(&self) -> Age {
        (
            self.created.unwrap_or(i64::MAX),
            self.namespace().to_owned(),
            self.key.name.clone(),
        )
    }
}

/// A gateway node and what its dataplane reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalRouter {
    /// Identity (cluster-scoped; named after the node).
    pub meta: Meta,
    /// Names of the physical interfaces facing remote instances.
    pub interfaces: BTreeSet<String>,
    /// Most logical interfaces the node accepts.
    pub interface_limit: u32,
    /// What the node dataplane reports its fast path holds
    /// (`status.programmed`).
    pub programmed: Vec<ProgrammedObject>,
}

/// One object a node holds, at one generation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProgrammedObject {
    /// The object.
    pub key: ObjectKey,
    /// The generation the node programmed.
    pub generation: i64,
}

/// A (router, interface, VLAN) bound to a VMI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogicalInterface {
    /// Identity (cluster-scoped).
    pub meta: Meta,
    /// The PhysicalRouter (node).
    pub physical_router: String,
    /// The port on that node.
    pub physical_interface: String,
    /// VLAN id, 0 for untagged.
    pub vlan: u16,
    /// The bound VMI.
    pub vmi: NamespacedName,
}

/// The port of a remote instance in a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualMachineInterface {
    /// Identity (namespaced).
    pub meta: Meta,
    /// The network, in the VMI's namespace.
    pub network: String,
    /// The MAC, normalised (lower-case, `:`); `None` when unreadable (then
    /// `defects` says why).
    pub mac: Option<String>,
    /// The instance's addresses that could be read.
    pub ips: Vec<IpAddr>,
    /// Field values that could not be read, each a message for the user.
    pub defects: Vec<String>,
}

/// One subnet of a network, with its gateway resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subnet {
    /// The prefix.
    pub prefix: IpPrefix,
    /// The gateway address: given, or the first address of the subnet.
    pub gateway: IpAddr,
}

/// An overlay network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualNetwork {
    /// Identity (namespaced).
    pub meta: Meta,
    /// Subnets that could be read.
    pub subnets: Vec<Subnet>,
    /// `spec.vni`: the VNI the user asks for.
    pub vni: Option<u32>,
    /// `status.vni`: the VNI in use before, kept when still free so that a
    /// running network never changes VNI.
    pub vni_in_use: Option<u32>,
    /// `spec.routingInstance`.
    pub routing_instance: Option<String>,
    /// Field values that could not be read.
    pub defects: Vec<String>,
}

impl VirtualNetwork {
    /// The routing instance name in use: given, or
    /// `default-domain:<namespace>:<name>:<name>` as in the original.
    pub fn effective_routing_instance(&self) -> String {
        self.routing_instance.clone().unwrap_or_else(|| {
            format!(
                "default-domain:{}:{}:{}",
                self.meta.namespace(),
                self.meta.name(),
                self.meta.name()
            )
        })
    }
}

/// One member of an HA group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaMember {
    /// The member's PhysicalRouter.
    pub physical_router: String,
    /// Its port toward the switches.
    pub physical_interface: String,
}

/// Gateway nodes backing each other up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayHaGroup {
    /// Identity (cluster-scoped).
    pub meta: Meta,
    /// Members.
    pub members: Vec<HaMember>,
    /// The network flooding BPDUs (mode STP).
    pub bpdu_network: Option<NamespacedName>,
}

/// Public access for a network through a host interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualGateway {
    /// Identity (cluster-scoped).
    pub meta: Meta,
    /// Host interface name created on each node.
    pub interface: String,
    /// The network given access.
    pub network: NamespacedName,
    /// Subnets routed from the host through the interface.
    pub subnets: Vec<IpPrefix>,
    /// Nodes (PhysicalRouter names) running it.
    pub nodes: BTreeSet<String>,
    /// Field values that could not be read.
    pub defects: Vec<String>,
}

/// Every object of every kind: the whole input of [`crate::decide`].
///
/// The order of each list does not matter: decisions depend on the set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// PhysicalRouters.
    pub physical_routers: Vec<PhysicalRouter>,
    /// LogicalInterfaces.
    pub logical_interfaces: Vec<LogicalInterface>,
    /// VirtualMachineInterfaces.
    pub virtual_machine_interfaces: Vec<VirtualMachineInterface>,
    /// VirtualNetworks.
    pub virtual_networks: Vec<VirtualNetwork>,
    /// GatewayHAGroups.
    pub gateway_ha_groups: Vec<GatewayHaGroup>,
    /// VirtualGateways.
    pub virtual_gateways: Vec<VirtualGateway>,
}
