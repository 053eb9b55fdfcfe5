//! Placement: which gateway nodes hold which object, computed the same way
//! by the operator (to decide `Programmed`) and by every node dataplane (to
//! know its peers), so that they never disagree.
//!
//! ```text
//!  accepted LogicalInterface (router R, VMI V)   ──> V is on R
//!  accepted VMI V of network N, V on R            ──> N is on R
//!  accepted VirtualGateway of N, nodes {R1, R2}   ──> N is on R1, R2
//!  accepted GatewayHAGroup, mode STP, BPDU net N  ──> N is on every member
//!  PhysicalRouter R, spec.fabric.underlayAddress  ──> R's tunnel endpoint
//!  accepted ExternalVTEP X joining N              ──> X is a peer of N's nodes
//!  accepted DCGateway G serving N                 ──> G routes for N's nodes
//! ```
//!
//! What "accepted" means is the caller's: the operator passes its own
//! decisions of this pass, a node passes what the objects' status says
//! ([`Placement::from_status`]). Placement is a pure function of the set
//! of objects and that predicate: every collection is sorted, and the
//! order of the snapshot's lists does not matter.
//!
//! It is also kept up to date one object at a time (the `set_*` methods,
//! which the operator's incremental decisions use): each object's
//! contribution is remembered, so replacing or removing it touches only
//! the VMIs and networks it placed, and the answer says which ones moved.
//! [`Placement::new`] is those same methods applied to a whole snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;

use crate::encapsulation::Encapsulation;
use crate::object::{Meta, NamespacedName};
use crate::{HaMode, Snapshot};

/// Which nodes hold which VMI and network, and each node's underlay
/// address.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    // What each object contributes, by object.
    bindings: BTreeMap<String, (NamespacedName, String)>,
    vmi_network: BTreeMap<NamespacedName, NamespacedName>,
    gateways: BTreeMap<String, (NamespacedName, BTreeSet<String>)>,
    ha_groups: BTreeMap<String, (NamespacedName, BTreeSet<String>)>,
    vteps: BTreeMap<String, (ExternalPeer, BTreeSet<NamespacedName>)>,
    dc_gateways: BTreeMap<String, (DcGatewayPeer, BTreeSet<NamespacedName>)>,
    /// Accepted VMIs per network.
    network_vmis: BTreeMap<NamespacedName, BTreeSet<NamespacedName>>,
    // What follows from them: node sets with how many contributions hold
    // each node there.
    vmi_counts: BTreeMap<NamespacedName, BTreeMap<String, u32>>,
    network_counts: BTreeMap<NamespacedName, BTreeMap<String, u32>>,
    vmi_nodes: BTreeMap<NamespacedName, BTreeSet<String>>,
    network_nodes: BTreeMap<NamespacedName, BTreeSet<String>>,
    underlay: BTreeMap<String, IpAddr>,
    network_vteps: BTreeMap<NamespacedName, BTreeSet<ExternalPeer>>,
    network_dc_gateways: BTreeMap<NamespacedName, BTreeSet<DcGatewayPeer>>,
}

/// A DC gateway serving a network, as a routed peer of its nodes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DcGatewayPeer {
    /// The DCGateway's name.
    pub name: String,
    /// Its underlay address.
    pub address: IpAddr,
}

/// Two placements are equal when they place everything alike (what each
/// object contributed is bookkeeping).
impl PartialEq for Placement {
    fn eq(&self, other: &Self) -> bool {
        self.vmi_nodes == other.vmi_nodes
            && self.network_nodes == other.network_nodes
            && self.underlay == other.underlay
            && self.network_vteps == other.network_vteps
            && self.network_dc_gateways == other.network_dc_gateways
    }
}

impl Eq for Placement {}

/// What one change moved: the VMIs and networks whose nodes changed, the
/// networks whose external VTEPs changed, the routers whose underlay
/// address changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// VMIs whose set of nodes changed.
    pub vmis: BTreeSet<NamespacedName>,
    /// Networks whose set of nodes changed.
    pub networks: BTreeSet<NamespacedName>,
    /// Networks whose set of external VTEPs or DC gateways changed.
    pub vtep_networks: BTreeSet<NamespacedName>,
    /// Routers whose underlay address changed.
    pub routers: BTreeSet<String>,
}

impl Moved {
    /// Whether nothing moved.
    pub fn is_empty(&self) -> bool {
        self.vmis.is_empty()
            && self.networks.is_empty()
            && self.vtep_networks.is_empty()
            && self.routers.is_empty()
    }

    /// Adds what `other` moved.
    pub fn extend(&mut self, other: Moved) {
        self.vmis.extend(other.vmis);
        self.networks.extend(other.networks);
        self.vtep_networks.extend(other.vtep_networks);
        self.routers.extend(other.routers);
    }
}

/// An external VTEP joined to a network, as a tunnel peer of its nodes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExternalPeer {
    /// The ExternalVTEP's name.
    pub name: String,
    /// Its underlay address.
    pub address: IpAddr,
    /// What it speaks.
    pub encapsulation: Encapsulation,
}

/// Another node holding a network, as a tunnel peer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Peer {
    /// The node (PhysicalRouter) name.
    pub node: String,
    /// Its underlay address; `None` when its PhysicalRouter declares none
    /// (or does not exist): it cannot be reached over the overlay.
    pub underlay_address: Option<IpAddr>,
}

static NOWHERE: BTreeSet<String> = BTreeSet::new();
static NO_VTEP: BTreeSet<ExternalPeer> = BTreeSet::new();
static NO_DC_GATEWAY: BTreeSet<DcGatewayPeer> = BTreeSet::new();

/// Adds (`up`) or removes one contribution of `node` to `key`'s node set;
/// returns whether the set changed.
fn count<K: Ord + Clone>(
    counts: &mut BTreeMap<K, BTreeMap<String, u32>>,
    sets: &mut BTreeMap<K, BTreeSet<String>>,
    key: &K,
    node: &str,
    up: bool,
) -> bool {
    let nodes = counts.entry(key.clone()).or_default();
    if up {
        let n = nodes.entry(node.to_owned()).or_default();
        *n += 1;
        if *n > 1 {
            return false;
        }
        sets.entry(key.clone()).or_default().insert(node.to_owned());
        true
    } else {
        let Some(n) = nodes.get_mut(node) else {
            return false;
        };
        *n -= 1;
        if *n > 0 {
            return false;
        }
        nodes.remove(node);
        if nodes.is_empty() {
            counts.remove(key);
        }
        if let Some(set) = sets.get_mut(key) {
            set.remove(node);
            if set.is_empty() {
                sets.remove(key);
            }
        }
        true
    }
}

/// What the objects of a snapshot contribute to placement, borrowed from
/// it: what [`Placement::new`] and [`Placement::from_status`] build their
/// maps from in bulk. Names are unique within a kind (as in a cluster);
/// should a list repeat one, the later object wins, as one `set_*` call
/// after another would.
struct Contributions<'a> {
    /// Each router's underlay address (the smaller of two of one name).
    underlay: BTreeMap<&'a str, IpAddr>,
    /// Accepted logical interface -> (VMI, router).
    bindings: BTreeMap<&'a str, (&'a NamespacedName, &'a str)>,
    /// Accepted VMI (namespace, name) -> its network's name.
    vmi_network: BTreeMap<(&'a str, &'a str), &'a str>,
    /// Accepted virtual gateway -> (network, nodes).
    gateways: BTreeMap<&'a str, (&'a NamespacedName, &'a BTreeSet<String>)>,
    /// Accepted GatewayHAGroup placing its BPDU network (mode STP).
    groups: BTreeMap<&'a str, &'a crate::GatewayHaGroup>,
    /// (VMI, node) once per accepted logical interface binding them, sorted.
    vmi_pairs: Vec<((&'a str, &'a str), &'a str)>,
    /// (network, node) once per placed VMI of the network on the node,
    /// per virtual gateway and per STP group placing it there, sorted.
    network_pairs: Vec<((&'a str, &'a str), &'a str)>,
}

impl<'a> Contributions<'a> {
    fn of(snapshot: &'a Snapshot, accepted: &impl Fn(&Meta) -> bool) -> Self {
        let mut underlay: BTreeMap<&str, IpAddr> = BTreeMap::new();
        for router in &snapshot.physical_routers {
            if let Some(address) = router.underlay_address() {
                underlay
                    .entry(router.meta.name())
                    .and_modify(|a| *a = (*a).min(address))
                    .or_insert(address);
            }
        }
        let mut bindings = BTreeMap::new();
        for li in snapshot.logical_interfaces.iter() {
            if accepted(&li.meta) {
                bindings.insert(li.meta.name(), (&li.vmi, li.physical_router.as_str()));
            }
        }
        let mut vmi_network = BTreeMap::new();
        for vmi in &snapshot.virtual_machine_interfaces {
            if accepted(&vmi.meta) {
                vmi_network.insert(
                    (vmi.meta.namespace(), vmi.meta.name()),
                    vmi.network.as_str(),
                );
            }
        }
        let mut gateways = BTreeMap::new();
        for gateway in &snapshot.virtual_gateways {
            if accepted(&gateway.meta) {
                gateways.insert(gateway.meta.name(), (&gateway.network, &gateway.nodes));
            }
        }
        let mut groups = BTreeMap::new();
        for group in &snapshot.gateway_ha_groups {
            if accepted(&group.meta) {
                match (group.mode, &group.bpdu_network) {
                    (HaMode::Stp, Some(_)) => groups.insert(group.meta.name(), &**group),
                    _ => groups.remove(group.meta.name()),
                };
            }
        }
        let mut vmi_pairs: Vec<((&str, &str), &str)> = bindings
            .values()
            .map(|(vmi, router)| ((vmi.namespace.as_str(), vmi.name.as_str()), *router))
            .collect();
        vmi_pairs.sort_unstable();
        let mut network_pairs = Vec::new();
        for same_vmi in vmi_pairs.chunk_by(|a, b| a.0 == b.0) {
            let vmi = same_vmi[0].0;
            if let Some(network) = vmi_network.get(&vmi) {
                // Each node of the VMI once, however many bindings.
                for same_node in same_vmi.chunk_by(|a, b| a.1 == b.1) {
                    network_pairs.push(((vmi.0, *network), same_node[0].1));
                }
            }
        }
        for (network, nodes) in gateways.values() {
            let network = (network.namespace.as_str(), network.name.as_str());
            network_pairs.extend(nodes.iter().map(|node| (network, node.as_str())));
        }
        for group in groups.values() {
            let Some(network) = &group.bpdu_network else {
                continue;
            };
            let network = (network.namespace.as_str(), network.name.as_str());
            let mut members: Vec<&str> = group
                .members
                .iter()
                .map(|m| m.physical_router.as_str())
                .collect();
            // A set, as `bpdu_placed` makes it: a member named twice counts once.
            members.sort_unstable();
            members.dedup();
            network_pairs.extend(members.into_iter().map(|node| (network, node)));
        }
        network_pairs.sort_unstable();
        Contributions {
            underlay,
            bindings,
            vmi_network,
            gateways,
            groups,
            vmi_pairs,
            network_pairs,
        }
    }
}

/// Sorted `(key, node)` pairs as each key's nodes, each with how many
/// pairs name it.
fn by_key<'a, 'p>(
    pairs: &'p [((&'a str, &'a str), &'a str)],
) -> impl Iterator<Item = (NamespacedName, Vec<(&'a str, u32)>)> + 'p {
    pairs.chunk_by(|a, b| a.0 == b.0).map(|same_key| {
        let ((namespace, name), _) = same_key[0];
        let nodes = same_key
            .chunk_by(|a, b| a.1 == b.1)
            .map(|same| (same[0].1, same.len() as u32))
            .collect();
        (NamespacedName::new(namespace, name), nodes)
    })
}

/// [`by_key`] as node sets.
fn node_sets(pairs: &[((&str, &str), &str)]) -> BTreeMap<NamespacedName, BTreeSet<String>> {
    by_key(pairs)
        .map(|(key, nodes)| (key, nodes.into_iter().map(|(n, _)| n.to_owned()).collect()))
        .collect()
}

/// [`by_key`] as counts per node.
fn node_counts(pairs: &[((&str, &str), &str)]) -> BTreeMap<NamespacedName, BTreeMap<String, u32>> {
    by_key(pairs)
        .map(|(key, nodes)| {
            let counts = nodes.into_iter().map(|(n, c)| (n.to_owned(), c)).collect();
            (key, counts)
        })
        .collect()
}

impl Placement {
    /// Placement of `snapshot` where `accepted` says which objects count.
    ///
    /// Built in bulk (each map from a sorted list, without the record of
    /// what moved that each `set_*` call keeps). The result, bookkeeping
    /// included, is what the `set_*` methods give one object at a time (a
    /// test checks that), so the operator goes on updating it
    /// incrementally.
    pub fn new(snapshot: &Snapshot, accepted: impl Fn(&Meta) -> bool) -> Self {
        let c = Contributions::of(snapshot, &accepted);
        let mut p = Self::placed(snapshot, &c, &accepted);
        p.bindings = c
            .bindings
            .iter()
            .map(|(name, (vmi, router))| {
                ((*name).to_owned(), ((*vmi).clone(), (*router).to_owned()))
            })
            .collect();
        p.vmi_network = c
            .vmi_network
            .iter()
            .map(|((namespace, vmi), network)| {
                (
                    NamespacedName::new(*namespace, *vmi),
                    NamespacedName::new(*namespace, *network),
                )
            })
            .collect();
        let mut network_vmis: Vec<(&NamespacedName, &NamespacedName)> = p
            .vmi_network
            .iter()
            .map(|(vmi, network)| (network, vmi))
            .collect();
        network_vmis.sort_unstable();
        p.network_vmis = network_vmis
            .chunk_by(|a, b| a.0 == b.0)
            .map(|same| {
                let vmis = same.iter().map(|(_, vmi)| (*vmi).clone()).collect();
                (same[0].0.clone(), vmis)
            })
            .collect();
        p.vmi_counts = node_counts(&c.vmi_pairs);
        p.network_counts = node_counts(&c.network_pairs);
        p.gateways = c
            .gateways
            .iter()
            .map(|(name, (network, nodes))| {
                ((*name).to_owned(), ((*network).clone(), (*nodes).clone()))
            })
            .collect();
        p.ha_groups = c
            .groups
            .iter()
            .filter_map(|(name, group)| Some(((*name).to_owned(), Self::bpdu_placed(group)?)))
            .collect();
        p
    }

    /// What `c` places: the node sets, underlay addresses and peers,
    /// without the bookkeeping the `set_*` methods need (a node only
    /// reads its placement; at 16K remote instances, copying what each
    /// object contributed was most of the cost).
    fn placed(
        snapshot: &Snapshot,
        c: &Contributions<'_>,
        accepted: &impl Fn(&Meta) -> bool,
    ) -> Self {
        let mut p = Placement {
            underlay: c
                .underlay
                .iter()
                .map(|(name, address)| ((*name).to_owned(), *address))
                .collect(),
            vmi_nodes: node_sets(&c.vmi_pairs),
            network_nodes: node_sets(&c.network_pairs),
            ..Placement::default()
        };
        p.place_peers(snapshot, accepted);
        p
    }

    /// The accepted, addressed external VTEPs and DC gateways of
    /// `snapshot` (few: one at a time).
    fn place_peers(&mut self, snapshot: &Snapshot, accepted: &impl Fn(&Meta) -> bool) {
        for vtep in &snapshot.external_vteps {
            let Some(address) = vtep.address.filter(|_| accepted(&vtep.meta)) else {
                continue;
            };
            let peer = ExternalPeer {
                name: vtep.meta.name().to_owned(),
                address,
                encapsulation: vtep.encapsulation,
            };
            let networks = vtep.networks.iter().map(|n| n.network.clone()).collect();
            self.set_external_vtep(vtep.meta.name(), Some((peer, networks)));
        }
        for gateway in &snapshot.dc_gateways {
            let Some(address) = gateway.address.filter(|_| accepted(&gateway.meta)) else {
                continue;
            };
            let peer = DcGatewayPeer {
                name: gateway.meta.name().to_owned(),
                address,
            };
            let networks = gateway.networks.iter().map(|n| n.network.clone()).collect();
            self.set_dc_gateway(gateway.meta.name(), Some((peer, networks)));
        }
    }

    /// The accepted DC gateways serving `network`, sorted.
    pub fn dc_gateways(&self, network: &NamespacedName) -> &BTreeSet<DcGatewayPeer> {
        self.network_dc_gateways
            .get(network)
            .unwrap_or(&NO_DC_GATEWAY)
    }

    /// Placement by the objects' status (what a node dataplane acts on):
    /// an object counts when its `Accepted` condition is true for its
    /// current generation. For reading only: it places as
    /// [`Placement::new`] does (they are equal), but without what the
    /// `set_*` methods need to update it; start from `new` to do that.
    pub fn from_status(snapshot: &Snapshot) -> Self {
        let accepted = |meta: &Meta| meta.accepted;
        Self::placed(snapshot, &Contributions::of(snapshot, &accepted), &accepted)
    }

    /// A fingerprint of everything [`Placement::from_status`] reads of
    /// `snapshot`: equal fingerprints place alike, so a node can keep the
    /// placement of its last build while the fingerprint holds (at 16K
    /// pairs, computing it is about a fifth of a build; this is a hash
    /// per object, with no allocation). It reads what
    /// `Contributions::of` and `place_peers` read, and nothing else:
    /// change one, change this. An order-independent sum of one hash per
    /// object (names are unique within a kind).
    pub fn status_fingerprint(snapshot: &Snapshot) -> u64 {
        fn of(value: impl Hash) -> u64 {
            let mut hasher = DefaultHasher::new();
            value.hash(&mut hasher);
            hasher.finish()
        }
        let s = snapshot;
        let routers = s
            .physical_routers
            .iter()
            .map(|r| of((0u8, r.meta.name(), r.underlay_address())));
        let lis = s
            .logical_interfaces
            .iter()
            .filter(|li| li.meta.accepted)
            .map(|li| of((1u8, li.meta.name(), &li.vmi, &li.physical_router)));
        let vmis = s
            .virtual_machine_interfaces
            .iter()
            .filter(|v| v.meta.accepted)
            .map(|v| of((2u8, v.meta.namespace(), v.meta.name(), &v.network)));
        let gateways = s
            .virtual_gateways
            .iter()
            .filter(|g| g.meta.accepted)
            .map(|g| of((3u8, g.meta.name(), &g.network, &g.nodes)));
        let groups = s
            .gateway_ha_groups
            .iter()
            .filter(|g| g.meta.accepted)
            .map(|g| {
                let members: Vec<&str> = g
                    .members
                    .iter()
                    .map(|m| m.physical_router.as_str())
                    .collect();
                of((4u8, g.meta.name(), g.mode, &g.bpdu_network, members))
            });
        let vteps = s
            .external_vteps
            .iter()
            .filter(|x| x.meta.accepted)
            .map(|x| {
                let networks: Vec<&NamespacedName> =
                    x.networks.iter().map(|n| &n.network).collect();
                of((5u8, x.meta.name(), x.address, x.encapsulation, networks))
            });
        let dc_gateways = s.dc_gateways.iter().filter(|d| d.meta.accepted).map(|d| {
            let networks: Vec<&NamespacedName> = d.networks.iter().map(|n| &n.network).collect();
            of((6u8, d.meta.name(), d.address, networks))
        });
        routers
            .chain(lis)
            .chain(vmis)
            .chain(gateways)
            .chain(groups)
            .chain(vteps)
            .chain(dc_gateways)
            .fold(0u64, u64::wrapping_add)
    }

    /// Logical interface `name` binds `(vmi, router)` when accepted, or
    /// nothing (`None`: not accepted, or deleted).
    pub fn set_logical_interface(
        &mut self,
        name: &str,
        binding: Option<(NamespacedName, String)>,
    ) -> Moved {
        let mut moved = Moved::default();
        if self.bindings.get(name) == binding.as_ref() {
            return moved;
        }
        if let Some((vmi, router)) = self.bindings.remove(name) {
            self.count_vmi(&vmi, &router, false, &mut moved);
        }
        if let Some((vmi, router)) = binding {
            self.count_vmi(&vmi, &router, true, &mut moved);
            self.bindings.insert(name.to_owned(), (vmi, router));
        }
        moved
    }

    fn count_vmi(&mut self, vmi: &NamespacedName, router: &str, up: bool, moved: &mut Moved) {
        if !count(&mut self.vmi_counts, &mut self.vmi_nodes, vmi, router, up) {
            return;
        }
        moved.vmis.insert(vmi.clone());
        if let Some(network) = self.vmi_network.get(vmi).cloned()
            && count(
                &mut self.network_counts,
                &mut self.network_nodes,
                &network,
                router,
                up,
            )
        {
            moved.networks.insert(network);
        }
    }

    /// VMI `vmi` is in `network` when accepted, or places nothing (`None`).
    pub fn set_vmi(&mut self, vmi: &NamespacedName, network: Option<NamespacedName>) -> Moved {
        let mut moved = Moved::default();
        if self.vmi_network.get(vmi) == network.as_ref() {
            return moved;
        }
        let nodes: Vec<String> = self.vmi_nodes(vmi).iter().cloned().collect();
        if let Some(old) = self.vmi_network.remove(vmi) {
            if let Some(vmis) = self.network_vmis.get_mut(&old) {
                vmis.remove(vmi);
                if vmis.is_empty() {
                    self.network_vmis.remove(&old);
                }
            }
            for node in &nodes {
                if count(
                    &mut self.network_counts,
                    &mut self.network_nodes,
                    &old,
                    node,
                    false,
                ) {
                    moved.networks.insert(old.clone());
                }
            }
        }
        if let Some(new) = network {
            for node in &nodes {
                if count(
                    &mut self.network_counts,
                    &mut self.network_nodes,
                    &new,
                    node,
                    true,
                ) {
                    moved.networks.insert(new.clone());
                }
            }
            self.network_vmis
                .entry(new.clone())
                .or_default()
                .insert(vmi.clone());
            self.vmi_network.insert(vmi.clone(), new);
        }
        moved
    }

    /// Virtual gateway `name` puts `network` on `nodes` when accepted, or
    /// nothing (`None`).
    pub fn set_gateway(
        &mut self,
        name: &str,
        placed: Option<(NamespacedName, BTreeSet<String>)>,
    ) -> Moved {
        let mut gateways = std::mem::take(&mut self.gateways);
        let moved = self.place_network(&mut gateways, name, placed);
        self.gateways = gateways;
        moved
    }

    /// What an accepted GatewayHAGroup places: in mode STP, its BPDU
    /// network on every member (BPDUs flood between them); in mode Fast,
    /// nothing.
    pub fn bpdu_placed(
        group: &crate::GatewayHaGroup,
    ) -> Option<(NamespacedName, BTreeSet<String>)> {
        match (group.mode, &group.bpdu_network) {
            (HaMode::Stp, Some(network)) => Some((
                network.clone(),
                group
                    .members
                    .iter()
                    .map(|m| m.physical_router.clone())
                    .collect(),
            )),
            _ => None,
        }
    }

    /// GatewayHAGroup `name` puts its BPDU network on its members when
    /// accepted and in mode STP ([`Placement::bpdu_placed`]), or nothing
    /// (`None`).
    pub fn set_ha_group(
        &mut self,
        name: &str,
        placed: Option<(NamespacedName, BTreeSet<String>)>,
    ) -> Moved {
        let mut groups = std::mem::take(&mut self.ha_groups);
        let moved = self.place_network(&mut groups, name, placed);
        self.ha_groups = groups;
        moved
    }

    /// Object `name` of `placers` puts `network` on `nodes`, or nothing.
    fn place_network(
        &mut self,
        placers: &mut BTreeMap<String, (NamespacedName, BTreeSet<String>)>,
        name: &str,
        placed: Option<(NamespacedName, BTreeSet<String>)>,
    ) -> Moved {
        let mut moved = Moved::default();
        if placers.get(name) == placed.as_ref() {
            return moved;
        }
        if let Some((network, nodes)) = placers.remove(name) {
            for node in &nodes {
                if count(
                    &mut self.network_counts,
                    &mut self.network_nodes,
                    &network,
                    node,
                    false,
                ) {
                    moved.networks.insert(network.clone());
                }
            }
        }
        if let Some((network, nodes)) = placed {
            for node in &nodes {
                if count(
                    &mut self.network_counts,
                    &mut self.network_nodes,
                    &network,
                    node,
                    true,
                ) {
                    moved.networks.insert(network.clone());
                }
            }
            placers.insert(name.to_owned(), (network, nodes));
        }
        moved
    }

    /// External VTEP `name` is a peer of `networks` when accepted and
    /// addressed, or of none (`None`).
    pub fn set_external_vtep(
        &mut self,
        name: &str,
        joined: Option<(ExternalPeer, BTreeSet<NamespacedName>)>,
    ) -> Moved {
        let mut moved = Moved::default();
        if self.vteps.get(name) == joined.as_ref() {
            return moved;
        }
        if let Some((peer, networks)) = self.vteps.remove(name) {
            for network in networks {
                if let Some(peers) = self.network_vteps.get_mut(&network) {
                    peers.remove(&peer);
                    if peers.is_empty() {
                        self.network_vteps.remove(&network);
                    }
                }
                moved.vtep_networks.insert(network);
            }
        }
        if let Some((peer, networks)) = joined {
            for network in &networks {
                self.network_vteps
                    .entry(network.clone())
                    .or_default()
                    .insert(peer.clone());
                moved.vtep_networks.insert(network.clone());
            }
            self.vteps.insert(name.to_owned(), (peer, networks));
        }
        moved
    }

    /// DC gateway `name` routes for `networks` when accepted and addressed,
    /// or for none (`None`).
    pub fn set_dc_gateway(
        &mut self,
        name: &str,
        served: Option<(DcGatewayPeer, BTreeSet<NamespacedName>)>,
    ) -> Moved {
        let mut moved = Moved::default();
        if self.dc_gateways.get(name) == served.as_ref() {
            return moved;
        }
        if let Some((peer, networks)) = self.dc_gateways.remove(name) {
            for network in networks {
                if let Some(peers) = self.network_dc_gateways.get_mut(&network) {
                    peers.remove(&peer);
                    if peers.is_empty() {
                        self.network_dc_gateways.remove(&network);
                    }
                }
                moved.vtep_networks.insert(network);
            }
        }
        if let Some((peer, networks)) = served {
            for network in &networks {
                self.network_dc_gateways
                    .entry(network.clone())
                    .or_default()
                    .insert(peer.clone());
                moved.vtep_networks.insert(network.clone());
            }
            self.dc_gateways.insert(name.to_owned(), (peer, networks));
        }
        moved
    }

    /// Router `name`'s underlay address (`None`: none declared, or no such
    /// router).
    pub fn set_router(&mut self, name: &str, underlay: Option<IpAddr>) -> Moved {
        let mut moved = Moved::default();
        if self.underlay.get(name).copied() == underlay {
            return moved;
        }
        match underlay {
            Some(address) => self.underlay.insert(name.to_owned(), address),
            None => self.underlay.remove(name),
        };
        moved.routers.insert(name.to_owned());
        moved
    }

    /// The nodes holding VMI `vmi`: the routers of its accepted logical
    /// interfaces.
    pub fn vmi_nodes(&self, vmi: &NamespacedName) -> &BTreeSet<String> {
        self.vmi_nodes.get(vmi).unwrap_or(&NOWHERE)
    }

    /// The nodes holding network `network`: those of its accepted VMIs and
    /// of its accepted virtual gateways.
    pub fn network_nodes(&self, network: &NamespacedName) -> &BTreeSet<String> {
        self.network_nodes.get(network).unwrap_or(&NOWHERE)
    }

    /// The accepted VMIs of `network` (placed or not), sorted.
    pub fn network_vmis(&self, network: &NamespacedName) -> impl Iterator<Item = &NamespacedName> {
        self.network_vmis.get(network).into_iter().flatten()
    }

    /// The VMIs held by `node` (bound there by an accepted logical
    /// interface), sorted.
    pub fn vmis_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a NamespacedName> {
        self.vmi_nodes
            .iter()
            .filter(move |(_, nodes)| nodes.contains(node))
            .map(|(vmi, _)| vmi)
    }

    /// The nodes holding at least one of `networks`.
    pub fn nodes_of<'a>(
        &self,
        networks: impl IntoIterator<Item = &'a NamespacedName>,
    ) -> BTreeSet<String> {
        networks
            .into_iter()
            .flat_map(|n| self.network_nodes(n).iter().cloned())
            .collect()
    }

    /// The accepted external VTEPs joined to `network`, sorted.
    pub fn external_vteps(&self, network: &NamespacedName) -> &BTreeSet<ExternalPeer> {
        self.network_vteps.get(network).unwrap_or(&NO_VTEP)
    }

    /// The networks held by `node`, sorted.
    pub fn networks_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a NamespacedName> {
        self.network_nodes
            .iter()
            .filter(move |(_, nodes)| nodes.contains(node))
            .map(|(network, _)| network)
    }

    /// The underlay address of `node`, when its PhysicalRouter declares a
    /// readable one.
    pub fn underlay_address(&self, node: &str) -> Option<IpAddr> {
        self.underlay.get(node).copied()
    }

    /// The other nodes holding `network`, seen from `node`, sorted by name.
    pub fn peers(&self, network: &NamespacedName, node: &str) -> Vec<Peer> {
        self.network_nodes(network)
            .iter()
            .filter(|n| n.as_str() != node)
            .map(|n| Peer {
                node: n.clone(),
                underlay_address: self.underlay_address(n),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Kind, Meta};
    use crate::{
        Endpoint, ExternalVtep, ExternalVtepNetwork, Fabric, GatewayHaGroup, HaMember,
        InterfaceType, LogicalInterface, PhysicalInterface, PhysicalRouter, VirtualGateway,
        VirtualMachineInterface,
    };
    use proptest::prelude::*;
    use proptest::sample::Index;
    use std::sync::Arc;

    fn router(name: &str, underlay: Option<&str>) -> PhysicalRouter {
        PhysicalRouter {
            meta: Meta::cluster(Kind::PhysicalRouter, name, Some(1), 1),
            interfaces: vec![PhysicalInterface::named("eth1")],
            fabric: underlay.map(|a| Fabric {
                interface: "eth0".into(),
                underlay_address: Some(a.parse().unwrap()),
            }),
            interface_limit: 10,
            report: Default::default(),
            ha_reports: vec![],
            defects: vec![],
        }
    }

    fn li(name: &str, router: &str, vmi: &str, accepted: bool) -> LogicalInterface {
        LogicalInterface {
            meta: Meta::cluster(Kind::LogicalInterface, name, Some(1), 1).with_accepted(accepted),
            physical_router: router.into(),
            physical_interface: "eth1".into(),
            vlan: 1,
            interface_type: InterfaceType::L2,
            vmi: NamespacedName::new("t", vmi),
        }
    }

    fn vmi(name: &str, network: &str, accepted: bool) -> VirtualMachineInterface {
        VirtualMachineInterface {
            meta: Meta::namespaced(Kind::VirtualMachineInterface, "t", name, Some(1), 1)
                .with_accepted(accepted),
            network: network.into(),
            mac: None,
            ips: vec![],
            active_active: vec![],
            allowed_address_pairs: vec![],
            port_security: true,
            security_groups: Vec::new(),
            mpls_label: None,
            defects: vec![],
        }
    }

    fn vtep(name: &str, address: &str, networks: &[&str], accepted: bool) -> ExternalVtep {
        ExternalVtep {
            meta: Meta::cluster(Kind::ExternalVTEP, name, Some(1), 1).with_accepted(accepted),
            address: Some(address.parse().unwrap()),
            encapsulation: Encapsulation::Vxlan,
            networks: networks
                .iter()
                .map(|n| ExternalVtepNetwork {
                    network: net(n),
                    endpoints: vec![Endpoint {
                        mac: crate::EthernetAddress([2, 0, 0, 0, 0, 9]),
                        ips: vec![],
                    }],
                })
                .collect(),
            defects: vec![],
        }
    }

    fn vgw(name: &str, network: &str, nodes: &[&str], accepted: bool) -> VirtualGateway {
        VirtualGateway {
            meta: Meta::cluster(Kind::VirtualGateway, name, Some(1), 1).with_accepted(accepted),
            interface: "vgw".into(),
            network: NamespacedName::new("t", network),
            subnets: vec![],
            routes: vec![],
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            defects: vec![],
        }
    }

    fn group(
        name: &str,
        network: &str,
        members: &[&str],
        stp: bool,
        accepted: bool,
    ) -> GatewayHaGroup {
        GatewayHaGroup {
            meta: Meta::cluster(Kind::GatewayHAGroup, name, Some(1), 1).with_accepted(accepted),
            mode: if stp { HaMode::Stp } else { HaMode::Fast },
            members: members
                .iter()
                .map(|m| HaMember {
                    physical_router: m.to_string(),
                    physical_interface: "eth1".into(),
                    priority: 100,
                })
                .collect(),
            bpdu_network: Some(NamespacedName::new("t", network)),
            timers: None,
            preempt: false,
        }
    }

    fn nodes(set: &BTreeSet<String>) -> Vec<&str> {
        set.iter().map(String::as_str).collect()
    }

    fn net(name: &str) -> NamespacedName {
        NamespacedName::new("t", name)
    }

    #[test]
    fn vmis_and_networks_are_where_their_accepted_objects_are() {
        let s = Snapshot {
            physical_routers: vec![
                router("gw-1", Some("192.0.2.1")).into(),
                router("gw-2", Some("192.0.2.2")).into(),
                router("gw-3", None).into(),
            ],
            logical_interfaces: vec![
                li("a", "gw-2", "v1", true).into(),
                li("b", "gw-1", "v1", true).into(),
                li("c", "gw-3", "v1", false).into(),
                li("d", "gw-3", "v2", true).into(),
                li("e", "gw-4", "v3", true).into(),
            ],
            virtual_machine_interfaces: vec![
                vmi("v1", "n1", true).into(),
                vmi("v2", "n1", false).into(),
                vmi("v3", "n2", true).into(),
            ],
            virtual_gateways: vec![
                vgw("g1", "n1", &["gw-5"], true).into(),
                vgw("g2", "n2", &["gw-1"], false).into(),
            ],
            external_vteps: vec![
                vtep("tor-2", "192.0.2.20", &["n1"], true).into(),
                vtep("tor-1", "192.0.2.10", &["n1", "n2"], true).into(),
                vtep("tor-3", "192.0.2.30", &["n1"], false).into(),
            ],
            ..Snapshot::default()
        };
        let p = Placement::from_status(&s);
        assert_eq!(nodes(p.vmi_nodes(&net("v1"))), ["gw-1", "gw-2"]);
        // Placed by its accepted logical interface, even if the VMI is not
        // accepted itself; but then it does not place its network.
        assert_eq!(nodes(p.vmi_nodes(&net("v2"))), ["gw-3"]);
        assert!(p.vmi_nodes(&net("nope")).is_empty());
        assert_eq!(nodes(p.network_nodes(&net("n1"))), ["gw-1", "gw-2", "gw-5"]);
        assert_eq!(nodes(p.network_nodes(&net("n2"))), ["gw-4"]);
        assert_eq!(p.networks_on("gw-1").collect::<Vec<_>>(), [&net("n1")]);
        assert_eq!(
            p.underlay_address("gw-2"),
            Some("192.0.2.2".parse().unwrap())
        );
        assert_eq!(p.underlay_address("gw-3"), None);
        assert_eq!(
            p.peers(&net("n1"), "gw-1"),
            [
                Peer {
                    node: "gw-2".into(),
                    underlay_address: Some("192.0.2.2".parse().unwrap())
                },
                Peer {
                    node: "gw-5".into(),
                    underlay_address: None
                },
            ]
        );

        let vteps: Vec<(&str, String)> = p
            .external_vteps(&net("n1"))
            .iter()
            .map(|v| (v.name.as_str(), v.address.to_string()))
            .collect();
        assert_eq!(
            vteps,
            [
                ("tor-1", "192.0.2.10".into()),
                ("tor-2", "192.0.2.20".into())
            ]
        );
        assert_eq!(p.external_vteps(&net("n2")).len(), 1);
        let gateway = |name: &str, accepted: bool| crate::DcGateway {
            meta: Meta::cluster(Kind::DCGateway, name, Some(1), 1).with_accepted(accepted),
            address: Some("192.0.2.100".parse().unwrap()),
            encapsulation: Encapsulation::MplsOverUdp,
            networks: vec![crate::DcGatewayNetwork {
                network: net("n1"),
                routes: vec![],
            }],
            defects: vec![],
        };
        let with_gateways = Snapshot {
            dc_gateways: vec![gateway("mx2", false).into(), gateway("mx1", true).into()],
            ..s.clone()
        };
        let p2 = Placement::from_status(&with_gateways);
        let names: Vec<&str> = p2
            .dc_gateways(&net("n1"))
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        assert_eq!(names, ["mx1"], "accepted ones only");
        assert!(p2.dc_gateways(&net("n2")).is_empty());
        assert!(p.external_vteps(&net("n3")).is_empty());
        assert_eq!(
            nodes(&p.nodes_of([&net("n1"), &net("n2")])),
            ["gw-1", "gw-2", "gw-4", "gw-5"]
        );

        // The operator's own view may differ from the status.
        let everything = Placement::new(&s, |_| true);
        assert_eq!(
            nodes(everything.vmi_nodes(&net("v1"))),
            ["gw-1", "gw-2", "gw-3"]
        );
        assert_eq!(
            nodes(everything.network_nodes(&net("n2"))),
            ["gw-1", "gw-4"]
        );
        let mut only_routers = Placement::default();
        for (name, address) in &p.underlay {
            only_routers.set_router(name, Some(*address));
        }
        assert_eq!(Placement::new(&s, |_| false), only_routers);
    }

    /// Placement built as before [`Placement::new`] was built in bulk:
    /// every object through its `set_*` method, one at a time.
    fn one_at_a_time(snapshot: &Snapshot, accepted: impl Fn(&Meta) -> bool) -> Placement {
        let mut p = Placement::default();
        // Two routers of one name cannot exist in a cluster; should a
        // snapshot hold them, the smaller address wins, whatever the order.
        let mut underlay: BTreeMap<&str, IpAddr> = BTreeMap::new();
        for router in &snapshot.physical_routers {
            if let Some(address) = router.underlay_address() {
                underlay
                    .entry(router.meta.name())
                    .and_modify(|a| *a = (*a).min(address))
                    .or_insert(address);
            }
        }
        for (name, address) in underlay {
            p.set_router(name, Some(address));
        }
        for li in &snapshot.logical_interfaces {
            if accepted(&li.meta) {
                p.set_logical_interface(
                    li.meta.name(),
                    Some((li.vmi.clone(), li.physical_router.clone())),
                );
            }
        }
        for vmi in &snapshot.virtual_machine_interfaces {
            if accepted(&vmi.meta) {
                p.set_vmi(&vmi.name(), Some(vmi.network_name()));
            }
        }
        for gateway in &snapshot.virtual_gateways {
            if accepted(&gateway.meta) {
                p.set_gateway(
                    gateway.meta.name(),
                    Some((gateway.network.clone(), gateway.nodes.clone())),
                );
            }
        }
        // Mode STP: the BPDU network floods between every member.
        for group in &snapshot.gateway_ha_groups {
            if accepted(&group.meta) {
                p.set_ha_group(group.meta.name(), Placement::bpdu_placed(group));
            }
        }
        p.place_peers(snapshot, &accepted);
        p
    }

    /// Moves `p` from the objects of `old` to those of `new`, one object
    /// at a time in the order `order` picks, by status.
    fn apply(p: &mut Placement, old: &Snapshot, new: &Snapshot, seeds: &[Index]) -> Moved {
        let mut moved = Moved::default();
        let gone = |name: &str, in_new: bool| (!in_new).then(|| name.to_owned());
        type Step = Box<dyn Fn(&mut Placement) -> Moved>;
        let mut steps: Vec<Step> = Vec::new();
        for li in &old.logical_interfaces {
            if let Some(name) = gone(
                li.meta.name(),
                new.logical_interfaces
                    .iter()
                    .any(|l| l.meta.key == li.meta.key),
            ) {
                steps.push(Box::new(move |p: &mut Placement| {
                    p.set_logical_interface(&name, None)
                }));
            }
        }
        for li in new.logical_interfaces.clone() {
            steps.push(Box::new(move |p: &mut Placement| {
                p.set_logical_interface(
                    li.meta.name(),
                    li.meta
                        .accepted
                        .then(|| (li.vmi.clone(), li.physical_router.clone())),
                )
            }));
        }
        for vmi in &old.virtual_machine_interfaces {
            if !new
                .virtual_machine_interfaces
                .iter()
                .any(|v| v.meta.key == vmi.meta.key)
            {
                let name = vmi.name();
                steps.push(Box::new(move |p: &mut Placement| p.set_vmi(&name, None)));
            }
        }
        for vmi in new.virtual_machine_interfaces.clone() {
            steps.push(Box::new(move |p: &mut Placement| {
                p.set_vmi(&vmi.name(), vmi.meta.accepted.then(|| vmi.network_name()))
            }));
        }
        for g in &old.virtual_gateways {
            if let Some(name) = gone(
                g.meta.name(),
                new.virtual_gateways
                    .iter()
                    .any(|n| n.meta.key == g.meta.key),
            ) {
                steps.push(Box::new(move |p: &mut Placement| {
                    p.set_gateway(&name, None)
                }));
            }
        }
        for g in new.virtual_gateways.clone() {
            steps.push(Box::new(move |p: &mut Placement| {
                p.set_gateway(
                    g.meta.name(),
                    g.meta
                        .accepted
                        .then(|| (g.network.clone(), g.nodes.clone())),
                )
            }));
        }
        for x in &old.external_vteps {
            if let Some(name) = gone(
                x.meta.name(),
                new.external_vteps.iter().any(|n| n.meta.key == x.meta.key),
            ) {
                steps.push(Box::new(move |p: &mut Placement| {
                    p.set_external_vtep(&name, None)
                }));
            }
        }
        for x in new.external_vteps.clone() {
            steps.push(Box::new(move |p: &mut Placement| {
                let joined = x.address.filter(|_| x.meta.accepted).map(|address| {
                    let peer = ExternalPeer {
                        name: x.meta.name().to_owned(),
                        address,
                        encapsulation: x.encapsulation,
                    };
                    (peer, x.networks.iter().map(|n| n.network.clone()).collect())
                });
                p.set_external_vtep(x.meta.name(), joined)
            }));
        }
        let mut routers: BTreeMap<String, Option<IpAddr>> = old
            .physical_routers
            .iter()
            .map(|r| (r.meta.name().to_owned(), None))
            .collect();
        for r in &new.physical_routers {
            if let Some(a) = r.underlay_address() {
                let entry = routers.entry(r.meta.name().to_owned()).or_default();
                *entry = Some(entry.map_or(a, |e| e.min(a)));
            } else {
                routers.entry(r.meta.name().to_owned()).or_default();
            }
        }
        for (name, address) in routers {
            steps.push(Box::new(move |p: &mut Placement| {
                p.set_router(&name, address)
            }));
        }
        let steps = shuffle(&(0..steps.len()).collect::<Vec<_>>(), seeds)
            .into_iter()
            .map(|i| &steps[i])
            .collect::<Vec<_>>();
        for step in steps {
            moved.extend(step(p));
        }
        moved
    }

    fn snapshot() -> impl Strategy<Value = Snapshot> {
        let routers = prop::collection::vec((0usize..4, prop::option::of(0u8..3)), 0..5);
        let lis = prop::collection::vec((0usize..4, 0usize..4, any::<bool>()), 0..8);
        let vmis = prop::collection::vec((0usize..3, any::<bool>()), 0..5);
        let vgws = prop::collection::vec(
            (
                0usize..3,
                prop::collection::vec(0usize..5, 0..3),
                any::<bool>(),
            ),
            0..3,
        );
        let vteps = prop::collection::vec(
            (
                0u8..3,
                prop::collection::vec(0usize..3, 1..3),
                any::<bool>(),
            ),
            0..3,
        );
        (routers, lis, vmis, vgws, vteps).prop_map(|(routers, lis, vmis, vgws, vteps)| Snapshot {
            physical_routers: routers
                .into_iter()
                .map(|(r, a)| {
                    router(
                        &format!("gw-{r}"),
                        a.map(|a| format!("192.0.2.{a}")).as_deref(),
                    )
                })
                .map(Arc::new)
                .collect(),
            logical_interfaces: lis
                .into_iter()
                .enumerate()
                .map(|(i, (r, v, ok))| {
                    li(&format!("li{i}"), &format!("gw-{r}"), &format!("v{v}"), ok)
                })
                .map(Arc::new)
                .collect(),
            virtual_machine_interfaces: vmis
                .into_iter()
                .enumerate()
                .map(|(i, (n, ok))| vmi(&format!("v{i}"), &format!("n{n}"), ok))
                .map(Arc::new)
                .collect(),
            virtual_gateways: vgws
                .into_iter()
                .enumerate()
                .map(|(i, (n, nodes, ok))| {
                    let nodes: Vec<String> = nodes.iter().map(|n| format!("gw-{n}")).collect();
                    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
                    vgw(&format!("g{i}"), &format!("n{n}"), &nodes, ok)
                })
                .map(Arc::new)
                .collect(),
            external_vteps: vteps
                .into_iter()
                .enumerate()
                .map(|(i, (a, networks, ok))| {
                    let networks: Vec<String> = networks.iter().map(|n| format!("n{n}")).collect();
                    let networks: Vec<&str> = networks.iter().map(String::as_str).collect();
                    vtep(&format!("x{i}"), &format!("198.51.100.{a}"), &networks, ok)
                })
                .map(Arc::new)
                .collect(),
            ..Snapshot::default()
        })
    }

    /// [`snapshot`] with GatewayHAGroups too (STP groups place their
    /// BPDU network on their members).
    fn snapshot_with_groups() -> impl Strategy<Value = Snapshot> {
        let groups = prop::collection::vec(
            (
                0usize..3,
                prop::collection::vec(0usize..5, 0..3),
                any::<bool>(),
                any::<bool>(),
            ),
            0..3,
        );
        (snapshot(), groups).prop_map(|(s, groups)| Snapshot {
            gateway_ha_groups: groups
                .into_iter()
                .enumerate()
                .map(|(i, (n, members, stp, ok))| {
                    let members: Vec<String> = members.iter().map(|m| format!("gw-{m}")).collect();
                    let members: Vec<&str> = members.iter().map(String::as_str).collect();
                    group(&format!("h{i}"), &format!("n{n}"), &members, stp, ok)
                })
                .map(Arc::new)
                .collect(),
            ..s
        })
    }

    fn shuffle<T: Clone>(items: &[T], seeds: &[Index]) -> Vec<T> {
        let mut items = items.to_vec();
        for (i, seed) in seeds.iter().enumerate() {
            if items.len() > 1 {
                let j = seed.index(items.len());
                let len = items.len();
                items.swap(i % len, j);
            }
        }
        items
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Equal fingerprints place alike: a snapshot and the same with one
        /// object replaced by one of another snapshot (or added), which
        /// place differently, have different fingerprints. More cases than
        /// the others: a change of one field of one object is what it
        /// must catch.
        #[test]
        fn a_placement_that_differs_has_another_fingerprint(
            a in snapshot_with_groups(),
            b in snapshot_with_groups(),
            kind in 0usize..6,
            from in any::<Index>(),
            to in any::<Index>(),
            same_place in any::<bool>(),
        ) {
            fn put<T>(into: &mut Vec<Arc<T>>, from: &[Arc<T>], i: &Index, j: &Index) {
                let Some(object) = (!from.is_empty()).then(|| from[i.index(from.len())].clone()) else {
                    return;
                };
                if into.is_empty() {
                    into.push(object);
                } else {
                    let at = j.index(into.len());
                    into[at] = object;
                }
            }
            // At the same place, the object keeps its name (the
            // generators name objects by position) and changes the rest.
            let to = if same_place { from } else { to };
            let mut c = a.clone();
            match kind {
                0 => put(&mut c.physical_routers, &b.physical_routers, &from, &to),
                1 => put(&mut c.logical_interfaces, &b.logical_interfaces, &from, &to),
                2 => put(&mut c.virtual_machine_interfaces, &b.virtual_machine_interfaces, &from, &to),
                3 => put(&mut c.virtual_gateways, &b.virtual_gateways, &from, &to),
                4 => put(&mut c.external_vteps, &b.external_vteps, &from, &to),
                _ => put(&mut c.gateway_ha_groups, &b.gateway_ha_groups, &from, &to),
            }
            if Placement::from_status(&a) != Placement::from_status(&c) {
                prop_assert_ne!(Placement::status_fingerprint(&a), Placement::status_fingerprint(&c));
            }
        }
    }

    proptest! {
        /// Placement is a function of the set of objects: any order of the
        /// lists gives the same placement.
        #[test]
        fn placement_does_not_depend_on_list_order(s in snapshot(), seeds in prop::collection::vec(any::<Index>(), 0..16)) {
            let shuffled = Snapshot {
                physical_routers: shuffle(&s.physical_routers, &seeds),
                logical_interfaces: shuffle(&s.logical_interfaces, &seeds),
                virtual_machine_interfaces: shuffle(&s.virtual_machine_interfaces, &seeds),
                virtual_networks: shuffle(&s.virtual_networks, &seeds),
                gateway_ha_groups: shuffle(&s.gateway_ha_groups, &seeds),
                virtual_gateways: shuffle(&s.virtual_gateways, &seeds),
                external_vteps: shuffle(&s.external_vteps, &seeds),
                dc_gateways: shuffle(&s.dc_gateways, &seeds),
                security_groups: shuffle(&s.security_groups, &seeds),
                virtual_network_policies: shuffle(&s.virtual_network_policies, &seeds),
            };
            prop_assert_eq!(Placement::from_status(&s), Placement::from_status(&shuffled));
            prop_assert_eq!(Placement::new(&s, |_| true), Placement::new(&shuffled, |_| true));
            prop_assert_eq!(Placement::status_fingerprint(&s), Placement::status_fingerprint(&shuffled));
        }


        /// Built in bulk, placement is exactly (bookkeeping included) what
        /// the `set_*` methods build one object at a time, so that the
        /// operator can go on from either.
        #[test]
        fn placement_built_in_bulk_equals_placement_built_one_at_a_time(s in snapshot_with_groups()) {
            let by_status = |m: &Meta| m.accepted;
            prop_assert_eq!(
                format!("{:?}", Placement::new(&s, by_status)),
                format!("{:?}", one_at_a_time(&s, by_status))
            );
            prop_assert_eq!(
                format!("{:?}", Placement::new(&s, |_| true)),
                format!("{:?}", one_at_a_time(&s, |_| true))
            );
            // A node's read-only placement places alike.
            prop_assert_eq!(Placement::from_status(&s), one_at_a_time(&s, by_status));
        }

        /// Kept up to date one object at a time, in any order, placement
        /// ends where the whole new set puts it, and what moved covers
        /// every VMI and network whose nodes differ.
        #[test]
        fn placement_kept_one_change_at_a_time_equals_placement_at_once(
            old in snapshot(),
            new in snapshot(),
            seeds in prop::collection::vec(any::<Index>(), 0..32),
        ) {
            let mut p = Placement::new(&old, |m| m.accepted);
            let before = p.clone();
            let moved = apply(&mut p, &old, &new, &seeds);
            let expected = Placement::from_status(&new);
            prop_assert_eq!(&p, &expected);
            let vmis: BTreeSet<&NamespacedName> = before.vmi_nodes.keys().chain(expected.vmi_nodes.keys()).collect();
            for vmi in vmis {
                if before.vmi_nodes(vmi) != expected.vmi_nodes(vmi) {
                    prop_assert!(moved.vmis.contains(vmi), "{} moved unseen", vmi);
                }
            }
            let networks: BTreeSet<&NamespacedName> = before.network_nodes.keys().chain(expected.network_nodes.keys()).collect();
            for network in networks {
                if before.network_nodes(network) != expected.network_nodes(network) {
                    prop_assert!(moved.networks.contains(network), "{} moved unseen", network);
                }
                if before.external_vteps(network) != expected.external_vteps(network) {
                    prop_assert!(moved.vtep_networks.contains(network), "{} peers changed unseen", network);
                }
            }
        }
    }
}
