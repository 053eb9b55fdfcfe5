//! What every object carries: its kind and identity, its age (who wins a
//! contended resource), its generation, and whether the operator accepted
//! that generation.

use std::fmt;

use crate::resource_version::ResourceVersion;

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
    /// A tunnel endpoint outside trunkline, joined to networks.
    ExternalVTEP,
    /// A data-center gateway routing for networks over MPLS over UDP.
    DCGateway,
    /// Stateful rules on the traffic of the VMIs using it.
    SecurityGroup,
    /// Ordered rules connecting the virtual networks naming it.
    VirtualNetworkPolicy,
    /// The administrator's ordered rules connecting networks of any
    /// namespaces.
    ClusterVirtualNetworkPolicy,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 11] = [
        Kind::PhysicalRouter,
        Kind::LogicalInterface,
        Kind::VirtualMachineInterface,
        Kind::VirtualNetwork,
        Kind::GatewayHAGroup,
        Kind::VirtualGateway,
        Kind::ExternalVTEP,
        Kind::DCGateway,
        Kind::SecurityGroup,
        Kind::VirtualNetworkPolicy,
        Kind::ClusterVirtualNetworkPolicy,
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
            Kind::ExternalVTEP => "ExternalVTEP",
            Kind::DCGateway => "DCGateway",
            Kind::SecurityGroup => "SecurityGroup",
            Kind::VirtualNetworkPolicy => "VirtualNetworkPolicy",
            Kind::ClusterVirtualNetworkPolicy => "ClusterVirtualNetworkPolicy",
        }
    }

    /// The kind named `name` (the Kubernetes kind name), if it is ours.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        matches!(
            self,
            Kind::VirtualMachineInterface
                | Kind::VirtualNetwork
                | Kind::SecurityGroup
                | Kind::VirtualNetworkPolicy
        )
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

    /// The namespaced object of kind `kind` named by `name`.
    pub fn of(kind: Kind, name: &NamespacedName) -> Self {
        Self::namespaced(kind, name.namespace.clone(), name.name.clone())
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

/// What every object carries: identity, age, generation, and the
/// operator's verdict on that generation as read from its status.
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
    /// Whether the operator accepted the object's current generation: its
    /// status holds `Accepted=True` for it (see
    /// [`crate::from_api::accepted`]), or its node labels carry it and its
    /// status does not refuse it (see [`crate::from_api::labels_accept`]).
    /// The node dataplane programs only such objects; the operator, which
    /// decides acceptance, ignores it.
    pub accepted: bool,
    /// Whether the status holds `Accepted=False` for its current generation:
    /// the operator refused this very spec (as opposed to not having decided
    /// on it yet).
    pub refused: bool,
    /// The resource version at which what a node reads of the object last
    /// changed (its spec, its node labels, the values of its status the
    /// nodes use): `metadata.resourceVersion` as read; the operator keeps
    /// the older one while nothing a node reads changed. `None` when not in
    /// the comparable form (or not stored yet).
    pub changed_at: Option<ResourceVersion>,
    /// The name parts of its node labels (`node.trunkline.io/<name>`): the
    /// nodes the operator labelled it for.
    pub nodes: NodeNames,
    /// The generation whose acceptance its node labels carry (each one's
    /// value is `g<generation>`), when they all carry the same one.
    pub labelled_generation: Option<i64>,
}

/// A set of node names, sorted, without duplicates: the nodes an object
/// is labelled for. Nearly always one, so a vector of exactly that many,
/// not a `BTreeSet` (which allocates a node for eleven names, ~300 bytes
/// for the one): every object of the operator's and of a node's model
/// carries one, 32K of them at 16K remote instances.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeNames(Vec<String>);

impl NodeNames {
    /// Adds `name`; whether it was not there.
    pub fn insert(&mut self, name: String) -> bool {
        match self.0.binary_search(&name) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, name);
                true
            }
        }
    }

    /// Whether `name` is one of them.
    pub fn contains(&self, name: &str) -> bool {
        self.0.binary_search_by(|n| n.as_str().cmp(name)).is_ok()
    }

    /// The names, sorted.
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes them all.
    pub fn clear(&mut self) {
        self.0.clear()
    }
}

impl FromIterator<String> for NodeNames {
    fn from_iter<I: IntoIterator<Item = String>>(names: I) -> Self {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort_unstable();
        names.dedup();
        names.shrink_to_fit();
        Self(names)
    }
}

impl<'a> IntoIterator for &'a NodeNames {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Sort key of "the older keeps it": creation time, then namespace, then
/// name, so that two objects created in the same second still have a
/// fixed order that does not depend on when the operator saw them.
pub type Age = (i64, String, String);

impl Meta {
    /// Meta of a cluster-scoped object, not (yet) accepted.
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
            accepted: false,
            refused: false,
            changed_at: None,
            nodes: NodeNames::default(),
            labelled_generation: None,
        }
    }

    /// Meta of a namespaced object, not (yet) accepted.
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
            accepted: false,
            refused: false,
            changed_at: None,
            nodes: NodeNames::default(),
            labelled_generation: None,
        }
    }

    /// Whether the object is labelled for node `node`.
    pub fn labelled_for(&self, node: &str) -> bool {
        self.nodes
            .contains(&trunkline_api::node_label::name_of(node))
    }

    /// The same, with the status' verdict `accepted`.
    pub fn with_accepted(mut self, accepted: bool) -> Self {
        self.accepted = accepted;
        self
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        &self.key.name
    }

    /// The object's namespace, empty for cluster-scoped objects.
    pub fn namespace(&self) -> &str {
        self.key.namespace.as_deref().unwrap_or("")
    }

    /// `namespace/name` (the namespace is empty for cluster-scoped objects).
    pub fn namespaced_name(&self) -> NamespacedName {
        NamespacedName::new(self.namespace(), self.name())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_ages() {
        let key = ObjectKey::namespaced(Kind::VirtualNetwork, "t1", "net1");
        assert_eq!(key.to_string(), "VirtualNetwork t1/net1");
        assert_eq!(
            ObjectKey::of(Kind::VirtualNetwork, &NamespacedName::new("t1", "net1")),
            key
        );
        assert_eq!(
            Kind::from_name("VirtualGateway"),
            Some(Kind::VirtualGateway)
        );
        assert_eq!(Kind::from_name("ExternalVTEP"), Some(Kind::ExternalVTEP));
        assert!(!Kind::ExternalVTEP.is_namespaced());
        assert_eq!(Kind::from_name("Pod"), None);
        let unsaved = Meta::cluster(Kind::LogicalInterface, "a", None, 1);
        let saved = Meta::cluster(Kind::LogicalInterface, "b", Some(5), 1);
        assert!(
            saved.age() < unsaved.age(),
            "an unsaved object is the newest"
        );
        assert!(!saved.accepted && saved.clone().with_accepted(true).accepted);
    }
}
