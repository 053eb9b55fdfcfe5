//! The incremental driver: every verdict is kept between changes, and a
//! change decides again only what it can affect.
//!
//! ```text
//!  changes ──ingest──> objects, claims, refs (who refers to whom)
//!     │                   │ "these objects read what changed"
//!     v                   v
//!   dirty sets, per stage (pre = the object's own rules; final = after
//!   the pools hand out VNIs, labels and slots)
//!     │
//!     v   networks ─> VNI pool ─> label pool ─> networks' verdicts
//!         VMIs ─────────────────> label pool ─> VMIs' verdicts
//!         logical interfaces ──> slots per router ─> their verdicts
//!         virtual gateways, external VTEPs, HA groups
//!         placement (what moved) ─> decisions (Programmed, derived status)
//!     v
//!   the keys whose decision changed
//! ```
//!
//! A verdict that comes out unchanged stops the propagation: only a
//! changed verdict dirties the objects that read it (a network's VMIs,
//! gateways, VTEPs and groups; a VMI's logical interfaces). A claim
//! dirties its other claimants only when the resource changes hands. The
//! pools are ordered by their asks alone, so handing their values out again
//! walks the objects still waiting for one, not every object.
//!
//! [`super::decide`] is this driver given every object at once; the
//! property test `incremental_decisions_equal_decisions_from_scratch`
//! holds the two equal after any sequence of changes.

use std::collections::{BTreeMap, BTreeSet};
use std::mem::take;
use std::net::IpAddr;
use std::sync::Arc;

use trunkline_model::{
    DcGateway, DcGatewayPeer, ExternalPeer, ExternalVtep, GatewayHaGroup, Kind, LogicalInterface,
    Meta, Moved, NamespacedName, Object, ObjectKey, PhysicalRouter, Placement, ResourceVersion,
    SecurityGroup, Snapshot, VirtualGateway, VirtualMachineInterface, VirtualNetwork,
    VirtualNetworkPolicy,
};

use super::addresses::{self, NetworkAddresses};
use super::dc_gateway::{self, PrefixClaim, TakenEndpoints};
use super::gateway_ha_group::GroupInputs;
use super::index::Refs;
use super::labels::{NETWORKS_FIRST, Pool, THEN_VMIS};
use super::logical_interface::{self, LiPre, PortClaim, Slots, VlanClaim};
use super::programmed::{Affected, Reports};
use super::virtual_gateway::{self, InterfaceClaim};
use super::virtual_machine_interface::{self, VmiPre, Vmis};
use super::virtual_network::{self, FabricSubnets, NetworkPre, Networks, VniChoice};
use super::{Settings, external_vtep, gateway_ha_group, security_group, virtual_network_policy};
use crate::claims::Claims;
use crate::decision::{Decision, Decisions, Findings};

/// One change to the objects the decisions read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // changes are consumed as they come
pub enum Change {
    /// An object was created or changed (replaces the object of its key).
    Upsert(Object),
    /// The object of this key was deleted.
    Delete(ObjectKey),
}

/// Every object, by key.
#[derive(Debug, Default)]
struct Objects {
    routers: BTreeMap<String, PhysicalRouter>,
    lis: BTreeMap<String, LogicalInterface>,
    vmis: BTreeMap<NamespacedName, VirtualMachineInterface>,
    networks: BTreeMap<NamespacedName, VirtualNetwork>,
    groups: BTreeMap<String, GatewayHaGroup>,
    gateways: BTreeMap<String, VirtualGateway>,
    vteps: BTreeMap<String, ExternalVtep>,
    dc_gateways: BTreeMap<String, DcGateway>,
    security_groups: BTreeMap<NamespacedName, SecurityGroup>,
    network_policies: BTreeMap<NamespacedName, VirtualNetworkPolicy>,
}

/// Who claims what (VNIs and labels live in their pools).
#[derive(Debug, Default)]
struct ClaimIndex {
    instances: Claims<String>,
    addresses: NetworkAddresses,
    endpoints: Claims<IpAddr>,
    vlans: Claims<VlanClaim>,
    bindings: Claims<NamespacedName>,
    interfaces: Claims<InterfaceClaim>,
    dc_endpoints: Claims<IpAddr>,
    dc_prefixes: Claims<PrefixClaim>,
    /// GatewayHAGroups' member ports: the oldest group naming a port
    /// holds it.
    member_ports: Claims<PortClaim>,
}

/// What must be decided again, per stage.
#[derive(Debug, Default)]
struct Dirty {
    network_pre: BTreeSet<NamespacedName>,
    network_final: BTreeSet<NamespacedName>,
    vmi_pre: BTreeSet<NamespacedName>,
    vmi_final: BTreeSet<NamespacedName>,
    li_pre: BTreeSet<String>,
    li_final: BTreeSet<String>,
    slot_routers: BTreeSet<String>,
    gateways: BTreeSet<String>,
    vteps: BTreeSet<String>,
    dc_gateways: BTreeSet<String>,
    groups: BTreeSet<String>,
    decisions: BTreeSet<ObjectKey>,
    labels: BTreeSet<ObjectKey>,
}

impl Dirty {
    /// `key`'s own rules must be applied again.
    fn pre(&mut self, key: &ObjectKey) {
        match key.kind {
            Kind::PhysicalRouter => {}
            Kind::LogicalInterface => {
                self.li_pre.insert(key.name.clone());
            }
            Kind::VirtualMachineInterface => {
                self.vmi_pre.insert(namespaced(key));
            }
            Kind::VirtualNetwork => {
                self.network_pre.insert(namespaced(key));
            }
            Kind::GatewayHAGroup => {
                self.groups.insert(key.name.clone());
            }
            Kind::VirtualGateway => {
                self.gateways.insert(key.name.clone());
            }
            Kind::ExternalVTEP => {
                self.vteps.insert(key.name.clone());
            }
            Kind::DCGateway => {
                self.dc_gateways.insert(key.name.clone());
            }
            Kind::SecurityGroup => {
                self.decisions.insert(key.clone());
                self.labels.insert(key.clone());
            }
            Kind::VirtualNetworkPolicy | Kind::ClusterVirtualNetworkPolicy => {
                self.decisions.insert(key.clone());
                self.labels.insert(key.clone());
            }
        }
    }

    /// What the pools gave `key` may have changed.
    fn after_pools(&mut self, key: &ObjectKey) {
        match key.kind {
            Kind::VirtualNetwork => {
                self.network_final.insert(namespaced(key));
            }
            Kind::VirtualMachineInterface => {
                self.vmi_final.insert(namespaced(key));
            }
            _ => self.pre(key),
        }
    }
}

fn namespaced(key: &ObjectKey) -> NamespacedName {
    NamespacedName::new(key.namespace.clone().unwrap_or_default(), key.name.clone())
}

fn network_key(name: &NamespacedName) -> ObjectKey {
    ObjectKey::of(Kind::VirtualNetwork, name)
}

/// A network policy's key: a namespaced policy, or (empty namespace) the
/// administrator's cluster policy.
fn policy_key(name: &NamespacedName) -> ObjectKey {
    if name.namespace.is_empty() {
        ObjectKey::cluster(Kind::ClusterVirtualNetworkPolicy, name.name.clone())
    } else {
        ObjectKey::of(Kind::VirtualNetworkPolicy, name)
    }
}

fn vmi_key(name: &NamespacedName) -> ObjectKey {
    ObjectKey::of(Kind::VirtualMachineInterface, name)
}

/// Decides every object's conditions and derived status, and keeps them
/// up to date one batch of changes at a time.
#[derive(Debug)]
pub struct Decider {
    settings: Settings,
    objects: Objects,
    refs: Refs,
    claims: ClaimIndex,
    vnis: Pool,
    labels: Pool,
    fabric: FabricSubnets,
    slots: Slots,
    reports: Reports,
    placement: Placement,
    network_pre: BTreeMap<NamespacedName, NetworkPre>,
    networks: Networks,
    vmi_pre: BTreeMap<NamespacedName, VmiPre>,
    vmis: Vmis,
    li_pre: BTreeMap<String, LiPre>,
    lis: BTreeMap<String, Findings>,
    gateways: BTreeMap<String, Findings>,
    vteps: BTreeMap<String, Findings>,
    dc_gateways: BTreeMap<String, Findings>,
    groups: BTreeMap<String, Findings>,
    decisions: Decisions,
    decided_last: usize,
    /// Objects by kind and the resource version they last changed at: a
    /// node's watermark moving from `a` to `b` concerns those in `(a, b]`.
    /// A version is nearly always one object's (each write has its own):
    /// a vector of exactly that many keys, not a set (a B-tree set
    /// allocates a node for eleven keys, ~600 bytes for the one).
    changed_at: BTreeMap<Kind, BTreeMap<ResourceVersion, Vec<ObjectKey>>>,
    /// The nodes each object must be labelled for, sorted (nearly always
    /// one: a vector of exactly that many, not a set, for the same reason).
    node_labels: BTreeMap<ObjectKey, Vec<String>>,
    /// Objects whose labels changed since [`Decider::take_relabelled`].
    relabelled: BTreeSet<ObjectKey>,
    /// Networks connected by network policies, both ways (as of the last
    /// labelling): a network's VMIs and their logical interfaces are
    /// labelled for the nodes of the networks connected to it.
    connections: BTreeMap<NamespacedName, BTreeSet<NamespacedName>>,
}

impl Decider {
    /// A decider with no object yet.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            objects: Objects::default(),
            refs: Refs::default(),
            claims: ClaimIndex::default(),
            vnis: virtual_network::vni_pool(),
            labels: Pool::labels(),
            fabric: FabricSubnets::default(),
            slots: Slots::default(),
            reports: Reports::default(),
            placement: Placement::default(),
            network_pre: BTreeMap::new(),
            networks: Networks::new(),
            vmi_pre: BTreeMap::new(),
            vmis: Vmis::new(),
            li_pre: BTreeMap::new(),
            lis: BTreeMap::new(),
            gateways: BTreeMap::new(),
            vteps: BTreeMap::new(),
            dc_gateways: BTreeMap::new(),
            groups: BTreeMap::new(),
            decisions: Decisions::default(),
            decided_last: 0,
            changed_at: BTreeMap::new(),
            node_labels: BTreeMap::new(),
            relabelled: BTreeSet::new(),
            connections: BTreeMap::new(),
        }
    }

    /// Applies a batch of changes and decides again what they can affect;
    /// returns the keys whose decision changed (or went with its object).
    pub fn apply(&mut self, changes: impl IntoIterator<Item = Change>) -> BTreeSet<ObjectKey> {
        let mut dirty = Dirty::default();
        for change in changes {
            self.ingest(change, &mut dirty);
        }
        self.run_networks(&mut dirty);
        self.run_vmis(&mut dirty);
        self.run_logical_interfaces(&mut dirty);
        self.run_gateways(&mut dirty);
        self.run_vteps(&mut dirty);
        self.run_dc_gateways(&mut dirty);
        self.run_groups(&mut dirty);
        self.run_labels(&mut dirty);
        self.run_decisions(&mut dirty)
    }

    /// The nodes the object of `key` must be labelled for
    /// (`node.trunkline.io/<node>`): those that hold it, and for what a
    /// node needs of its peers (the VMIs and logical interfaces of every
    /// network it holds, the virtual gateways of those networks), every
    /// node holding its network.
    /// Sorted.
    pub fn node_labels(&self, key: &ObjectKey) -> &[String] {
        self.node_labels.get(key).map_or(&[], Vec::as_slice)
    }

    /// Every object's node labels, each sorted (objects labelled for no
    /// node are left out).
    pub fn all_node_labels(&self) -> &BTreeMap<ObjectKey, Vec<String>> {
        &self.node_labels
    }

    /// The objects whose node labels changed since the last call.
    pub fn take_relabelled(&mut self) -> BTreeSet<ObjectKey> {
        take(&mut self.relabelled)
    }

    /// How many objects the last [`Decider::apply`] decided again (what a
    /// change cost, whatever came out of it).
    pub fn decided_last(&self) -> usize {
        self.decided_last
    }

    /// Every decision.
    pub fn decisions(&self) -> &Decisions {
        &self.decisions
    }

    /// Every decision, taken.
    pub fn into_decisions(self) -> Decisions {
        self.decisions
    }

    /// Which nodes hold what, by these decisions' acceptance verdicts.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Gives `object` the resource version its stored version changed at
    /// when nothing else differs: what the nodes read of it did not change
    /// (the operator's own `Programmed` and `Ready` writes, say), so it
    /// still counts as changed at that older version. Otherwise `object`
    /// keeps its own.
    pub fn keep_changed_at(&self, object: &mut Object) {
        let o = &self.objects;
        let stored = match &*object {
            Object::PhysicalRouter(x) => o.routers.get(x.meta.name()).map(|s| &s.meta),
            Object::LogicalInterface(x) => o.lis.get(x.meta.name()).map(|s| &s.meta),
            Object::VirtualMachineInterface(x) => o.vmis.get(&x.name()).map(|s| &s.meta),
            Object::VirtualNetwork(x) => o.networks.get(&x.name()).map(|s| &s.meta),
            Object::GatewayHaGroup(x) => o.groups.get(x.meta.name()).map(|s| &s.meta),
            Object::VirtualGateway(x) => o.gateways.get(x.meta.name()).map(|s| &s.meta),
            Object::ExternalVtep(x) => o.vteps.get(x.meta.name()).map(|s| &s.meta),
            Object::DcGateway(x) => o.dc_gateways.get(x.meta.name()).map(|s| &s.meta),
            Object::SecurityGroup(x) => o.security_groups.get(&x.name()).map(|s| &s.meta),
            Object::VirtualNetworkPolicy(x) => o.network_policies.get(&x.name()).map(|s| &s.meta),
        };
        let Some(stored) = stored.map(|m| m.changed_at.clone()) else {
            return;
        };
        let own = std::mem::replace(&mut object.meta_mut().changed_at, stored);
        let same = match &*object {
            Object::PhysicalRouter(x) => o.routers.get(x.meta.name()) == Some(x),
            Object::LogicalInterface(x) => o.lis.get(x.meta.name()) == Some(x),
            Object::VirtualMachineInterface(x) => o.vmis.get(&x.name()) == Some(x),
            Object::VirtualNetwork(x) => o.networks.get(&x.name()) == Some(x),
            Object::GatewayHaGroup(x) => o.groups.get(x.meta.name()) == Some(x),
            Object::VirtualGateway(x) => o.gateways.get(x.meta.name()) == Some(x),
            Object::ExternalVtep(x) => o.vteps.get(x.meta.name()) == Some(x),
            Object::DcGateway(x) => o.dc_gateways.get(x.meta.name()) == Some(x),
            Object::SecurityGroup(x) => o.security_groups.get(&x.name()) == Some(x),
            Object::VirtualNetworkPolicy(x) => o.network_policies.get(&x.name()) == Some(x),
        };
        if !same {
            object.meta_mut().changed_at = own;
        }
    }

    /// The keys of every object of `kind` the decider holds.
    pub fn keys(&self, kind: Kind) -> Vec<ObjectKey> {
        let o = &self.objects;
        let cluster = |names: Vec<&String>| {
            names
                .into_iter()
                .map(|n| ObjectKey::cluster(kind, n.clone()))
                .collect()
        };
        match kind {
            Kind::PhysicalRouter => cluster(o.routers.keys().collect()),
            Kind::LogicalInterface => cluster(o.lis.keys().collect()),
            Kind::VirtualMachineInterface => o.vmis.keys().map(vmi_key).collect(),
            Kind::VirtualNetwork => o.networks.keys().map(network_key).collect(),
            Kind::GatewayHAGroup => cluster(o.groups.keys().collect()),
            Kind::VirtualGateway => cluster(o.gateways.keys().collect()),
            Kind::ExternalVTEP => cluster(o.vteps.keys().collect()),
            Kind::DCGateway => cluster(o.dc_gateways.keys().collect()),
            Kind::SecurityGroup => o
                .security_groups
                .keys()
                .map(|n| ObjectKey::of(Kind::SecurityGroup, n))
                .collect(),
            Kind::VirtualNetworkPolicy => o
                .network_policies
                .keys()
                .filter(|n| !n.namespace.is_empty())
                .map(policy_key)
                .collect(),
            Kind::ClusterVirtualNetworkPolicy => o
                .network_policies
                .keys()
                .filter(|n| n.namespace.is_empty())
                .map(policy_key)
                .collect(),
        }
    }

    /// Every object the decider holds.
    pub fn snapshot(&self) -> Snapshot {
        let o = &self.objects;
        Snapshot {
            physical_routers: o.routers.values().cloned().map(Arc::new).collect(),
            logical_interfaces: o.lis.values().cloned().map(Arc::new).collect(),
            virtual_machine_interfaces: o.vmis.values().cloned().map(Arc::new).collect(),
            virtual_networks: o.networks.values().cloned().map(Arc::new).collect(),
            gateway_ha_groups: o.groups.values().cloned().map(Arc::new).collect(),
            virtual_gateways: o.gateways.values().cloned().map(Arc::new).collect(),
            external_vteps: o.vteps.values().cloned().map(Arc::new).collect(),
            dc_gateways: o.dc_gateways.values().cloned().map(Arc::new).collect(),
            security_groups: o.security_groups.values().cloned().map(Arc::new).collect(),
            virtual_network_policies: o.network_policies.values().cloned().map(Arc::new).collect(),
        }
    }

    /// Moves `key` in the index of resource versions.
    fn index_changed_at(&mut self, old: Option<&Meta>, new: Option<&Meta>) {
        if old.map(|m| &m.changed_at) == new.map(|m| &m.changed_at) {
            return;
        }
        for (meta, add) in [(old, false), (new, true)] {
            let Some(meta) = meta else { continue };
            let Some(rv) = &meta.changed_at else { continue };
            let by_rv = self.changed_at.entry(meta.key.kind).or_default();
            if add {
                let keys = by_rv
                    .entry(rv.clone())
                    .or_insert_with(|| Vec::with_capacity(1));
                if !keys.contains(&meta.key) {
                    keys.push(meta.key.clone());
                }
            } else if let Some(keys) = by_rv.get_mut(rv) {
                keys.retain(|k| *k != meta.key);
                if keys.is_empty() {
                    by_rv.remove(rv);
                }
            }
        }
    }

    fn ingest(&mut self, change: Change, dirty: &mut Dirty) {
        match change {
            Change::Upsert(object) => match object {
                Object::PhysicalRouter(r) => {
                    let name = r.meta.name().to_owned();
                    let old = self.objects.routers.insert(name.clone(), r);
                    self.router_changed(&name, old, dirty);
                }
                Object::LogicalInterface(li) => {
                    let name = li.meta.name().to_owned();
                    let old = self.objects.lis.insert(name.clone(), li);
                    self.li_changed(&name, old, dirty);
                }
                Object::VirtualMachineInterface(v) => {
                    let name = v.name();
                    let old = self.objects.vmis.insert(name.clone(), v);
                    self.vmi_changed(&name, old, dirty);
                }
                Object::VirtualNetwork(n) => {
                    let name = n.name();
                    let old = self.objects.networks.insert(name.clone(), n);
                    self.network_changed(&name, old, dirty);
                }
                Object::GatewayHaGroup(g) => {
                    let name = g.meta.name().to_owned();
                    let old = self.objects.groups.insert(name.clone(), g);
                    self.group_changed(&name, old, dirty);
                }
                Object::VirtualGateway(g) => {
                    let name = g.meta.name().to_owned();
                    let old = self.objects.gateways.insert(name.clone(), g);
                    self.gateway_changed(&name, old, dirty);
                }
                Object::ExternalVtep(x) => {
                    let name = x.meta.name().to_owned();
                    let old = self.objects.vteps.insert(name.clone(), x);
                    self.vtep_changed(&name, old, dirty);
                }
                Object::DcGateway(g) => {
                    let name = g.meta.name().to_owned();
                    let old = self.objects.dc_gateways.insert(name.clone(), g);
                    self.dc_gateway_changed(&name, old, dirty);
                }
                Object::SecurityGroup(g) => {
                    let name = g.name();
                    let old = self.objects.security_groups.insert(name.clone(), g);
                    self.security_group_changed(&name, old, dirty);
                }
                Object::VirtualNetworkPolicy(p) => {
                    let name = p.name();
                    let old = self.objects.network_policies.insert(name.clone(), p);
                    self.network_policy_changed(&name, old, dirty);
                }
            },
            Change::Delete(key) => match key.kind {
                Kind::PhysicalRouter => {
                    let old = self.objects.routers.remove(&key.name);
                    self.router_changed(&key.name, old, dirty);
                }
                Kind::LogicalInterface => {
                    let old = self.objects.lis.remove(&key.name);
                    self.li_changed(&key.name, old, dirty);
                }
                Kind::VirtualMachineInterface => {
                    let name = namespaced(&key);
                    let old = self.objects.vmis.remove(&name);
                    self.vmi_changed(&name, old, dirty);
                }
                Kind::VirtualNetwork => {
                    let name = namespaced(&key);
                    let old = self.objects.networks.remove(&name);
                    self.network_changed(&name, old, dirty);
                }
                Kind::GatewayHAGroup => {
                    let old = self.objects.groups.remove(&key.name);
                    self.group_changed(&key.name, old, dirty);
                }
                Kind::VirtualGateway => {
                    let old = self.objects.gateways.remove(&key.name);
                    self.gateway_changed(&key.name, old, dirty);
                }
                Kind::ExternalVTEP => {
                    let old = self.objects.vteps.remove(&key.name);
                    self.vtep_changed(&key.name, old, dirty);
                }
                Kind::DCGateway => {
                    let old = self.objects.dc_gateways.remove(&key.name);
                    self.dc_gateway_changed(&key.name, old, dirty);
                }
                Kind::SecurityGroup => {
                    let name = namespaced(&key);
                    let old = self.objects.security_groups.remove(&name);
                    self.security_group_changed(&name, old, dirty);
                }
                Kind::VirtualNetworkPolicy | Kind::ClusterVirtualNetworkPolicy => {
                    let name = namespaced(&key);
                    let old = self.objects.network_policies.remove(&name);
                    self.network_policy_changed(&name, old, dirty);
                }
            },
        }
    }

    /// Label claims of an object (networks and VMIs): its status label.
    fn label_claims(&self, label: Option<u32>) -> BTreeSet<u32> {
        label
            .filter(|l| self.labels.allocatable(l))
            .into_iter()
            .collect()
    }

    fn replace_label_claims(
        &mut self,
        old: Option<(&trunkline_model::Meta, Option<u32>)>,
        new: Option<(&trunkline_model::Meta, Option<u32>)>,
        dirty: &mut Dirty,
    ) {
        let old_claims = self.label_claims(old.and_then(|(_, l)| l));
        let new_claims = self.label_claims(new.and_then(|(_, l)| l));
        let changed = self.labels.claims.replace(
            old.map(|(m, _)| m),
            &old_claims,
            new.map(|(m, _)| m),
            &new_claims,
        );
        if !changed.is_empty() {
            self.labels.claims_changed();
        }
        for label in changed {
            for key in self.labels.claims.claimants(&label) {
                dirty.after_pools(key);
            }
        }
    }

    fn network_changed(
        &mut self,
        name: &NamespacedName,
        old: Option<VirtualNetwork>,
        dirty: &mut Dirty,
    ) {
        let new = self.objects.networks.get(name).cloned();
        if old == new {
            return;
        }
        self.index_changed_at(old.as_ref().map(|o| &o.meta), new.as_ref().map(|o| &o.meta));
        let (old_instances, old_vnis) = old
            .as_ref()
            .map(virtual_network::claims)
            .unwrap_or_default();
        let (new_instances, new_vnis) = new
            .as_ref()
            .map(virtual_network::claims)
            .unwrap_or_default();
        let (old_meta, new_meta) = (old.as_ref().map(|n| &n.meta), new.as_ref().map(|n| &n.meta));
        for r in self
            .claims
            .instances
            .replace(old_meta, &old_instances, new_meta, &new_instances)
        {
            for key in self.claims.instances.claimants(&r) {
                dirty.pre(key);
            }
        }
        let changed = self
            .vnis
            .claims
            .replace(old_meta, &old_vnis, new_meta, &new_vnis);
        if !changed.is_empty() {
            self.vnis.claims_changed();
        }
        for vni in changed {
            for key in self.vnis.claims.claimants(&vni) {
                dirty.pre(key);
            }
        }
        self.replace_label_claims(
            old.as_ref().map(|n| (&n.meta, n.mpls_label)),
            new.as_ref().map(|n| (&n.meta, n.mpls_label)),
            dirty,
        );
        // DC gateways and HA groups read the network's forwarding mode
        // (and DC gateways its subnets), VMIs and VTEPs its subnets; the
        // rest of it through its verdict.
        dirty
            .dc_gateways
            .extend(self.refs.dc_gateways_of_network.get(name).cloned());
        dirty
            .groups
            .extend(self.refs.groups_of_network.get(name).cloned());
        if old.as_ref().map(|n| &n.subnets) != new.as_ref().map(|n| &n.subnets) {
            dirty
                .vmi_pre
                .extend(self.refs.vmis_of_network.get(name).cloned());
            dirty
                .vteps
                .extend(self.refs.vteps_of_network.get(name).cloned());
        }
        dirty.network_pre.insert(name.clone());
        // Its policies list (and its existence) is what connects it.
        self.dirty_network_policies(&name.namespace, dirty);
    }

    fn vmi_changed(
        &mut self,
        name: &NamespacedName,
        old: Option<VirtualMachineInterface>,
        dirty: &mut Dirty,
    ) {
        let new = self.objects.vmis.get(name).cloned();
        if old == new {
            return;
        }
        self.index_changed_at(old.as_ref().map(|o| &o.meta), new.as_ref().map(|o| &o.meta));
        let affected = self.claims.addresses.replace(
            old.as_ref().map(|v| (&v.meta, addresses::vmi_claims(v))),
            new.as_ref().map(|v| (&v.meta, addresses::vmi_claims(v))),
        );
        for key in &affected {
            dirty.pre(key);
        }
        self.replace_label_claims(
            old.as_ref().map(|v| (&v.meta, v.mpls_label)),
            new.as_ref().map(|v| (&v.meta, v.mpls_label)),
            dirty,
        );
        let old_network = old.as_ref().map(|v| v.network_name());
        let new_network = new.as_ref().map(|v| v.network_name());
        self.refs
            .vmis_of_network
            .replace(name, old_network.iter(), new_network.iter());
        if old_network != new_network {
            // Mode STP reads the network of what VLAN 0 of a member port
            // binds.
            for li in self.refs.lis_of_vmi.get(name) {
                if let Some(li) = self.objects.lis.get(li) {
                    self.dirty_groups_of_port(li, dirty);
                }
            }
        }
        dirty.vmi_pre.insert(name.clone());
        // Its groups count it, and are labelled for its nodes.
        self.dirty_security_groups(&name.namespace, dirty);
    }

    /// A group's existence is read by the VMIs naming it and by the
    /// groups whose rules name it; its rules by its labels (the groups
    /// they name go where it goes). Groups are few per namespace: each is
    /// decided and labelled again.
    fn security_group_changed(
        &mut self,
        name: &NamespacedName,
        old: Option<SecurityGroup>,
        dirty: &mut Dirty,
    ) {
        let new = self.objects.security_groups.get(name).cloned();
        if old == new {
            return;
        }
        self.index_changed_at(old.as_ref().map(|o| &o.meta), new.as_ref().map(|o| &o.meta));
        if old.is_none() || new.is_none() {
            for (vmi_name, vmi) in &self.objects.vmis {
                if vmi_name.namespace == name.namespace && vmi.groups().contains(&&*name.name) {
                    dirty.vmi_pre.insert(vmi_name.clone());
                }
            }
        }
        // Itself too: a deleted group's decision and labels go with it.
        let key = ObjectKey::of(Kind::SecurityGroup, name);
        dirty.decisions.insert(key.clone());
        dirty.labels.insert(key);
        self.dirty_security_groups(&name.namespace, dirty);
    }

    /// A policy's decision reads every network of its namespace and the
    /// other policies they name (connections): every policy of the
    /// namespace is decided again (they are few).
    fn network_policy_changed(
        &mut self,
        name: &NamespacedName,
        old: Option<VirtualNetworkPolicy>,
        dirty: &mut Dirty,
    ) {
        let new = self.objects.network_policies.get(name).cloned();
        if old == new {
            return;
        }
        self.index_changed_at(old.as_ref().map(|o| &o.meta), new.as_ref().map(|o| &o.meta));
        // Itself too: a deleted policy's decision and labels go with it.
        let key = policy_key(name);
        dirty.decisions.insert(key.clone());
        dirty.labels.insert(key);
        if name.namespace.is_empty() {
            // A cluster policy reaches networks of any namespace, and
            // comes first in every link it makes: every policy again
            // (cluster policies are the administrator's, few).
            for name in self.objects.network_policies.keys() {
                let key = policy_key(name);
                dirty.decisions.insert(key.clone());
                dirty.labels.insert(key);
            }
        } else {
            self.dirty_network_policies(&name.namespace, dirty);
        }
    }

    /// Every network policy of `namespace` is decided and labelled again,
    /// and every cluster policy (which may name the namespace's networks).
    fn dirty_network_policies(&self, namespace: &str, dirty: &mut Dirty) {
        for name in self.objects.network_policies.keys() {
            if name.namespace == namespace || name.namespace.is_empty() {
                let key = policy_key(name);
                dirty.decisions.insert(key.clone());
                dirty.labels.insert(key);
            }
        }
    }

    /// Every group of `namespace` is decided and labelled again.
    fn dirty_security_groups(&self, namespace: &str, dirty: &mut Dirty) {
        for name in self.objects.security_groups.keys() {
            if name.namespace == namespace {
                let key = ObjectKey::of(Kind::SecurityGroup, name);
                dirty.decisions.insert(key.clone());
                dirty.labels.insert(key);
            }
        }
    }

    fn li_changed(&mut self, name: &str, old: Option<LogicalInterface>, dirty: &mut Dirty) {
        let new = self.objects.lis.get(name).cloned();
        if old == new {
            return;
        }
        self.index_changed_at(old.as_ref().map(|o| &o.meta), new.as_ref().map(|o| &o.meta));
        let (old_meta, new_meta) = (old.as_ref().map(|l| &l.meta), new.as_ref().map(|l| &l.meta));
        let (old_vlans, old_vmis) = old
            .as_ref()
            .map(logical_interface::claims)
            .unwrap_or_default();
        let (new_vlans, new_vmis) = new
            .as_ref()
            .map(logical_interface::claims)
            .unwrap_or_default();
        for r in self
            .claims
            .vlans
            .replace(old_meta, &old_vlans, new_meta, &new_vlans)
        {
            for key in self.claims.vlans.claimants(&r) {
                dirty.pre(key);
            }
        }
        // The oldest binding of a VMI names the node serving it: when it
        // changes hands, or the holder itself changed, every binding of
        // that VMI reads it again.
        let me = old_meta.or(new_meta).map(|m| m.key.clone());
        let vmis: BTreeSet<&NamespacedName> = old_vmis.iter().chain(&new_vmis).collect();
        let before: Vec<Option<ObjectKey>> = vmis
            .iter()
            .map(|v| self.claims.bindings.holder(v).cloned())
            .collect();
        self.claims
            .bindings
            .replace(old_meta, &old_vmis, new_meta, &new_vmis);
        for (vmi, before) in vmis.iter().zip(before) {
            let after = self.claims.bindings.holder(vmi);
            if before.as_ref() != after || before == me || after == me.as_ref() {
                for key in self.claims.bindings.claimants(vmi) {
                    dirty.pre(key);
                }
            }
        }
        let name = name.to_owned();
        self.refs.lis_of_vmi.replace(&name, &old_vmis, &new_vmis);
        self.refs.lis_of_router.replace(
            &name,
            old.as_ref().map(|l| &l.physical_router),
            new.as_ref().map(|l| &l.physical_router),
        );
        // The VMIs list their bound logical interfaces.
        for vmi in old_vmis.iter().chain(&new_vmis) {
            dirty.decisions.insert(vmi_key(vmi));
        }
        // Mode STP reads what VLAN 0 of a member port binds.
        for li in old.iter().chain(new.iter()) {
            if li.vlan == 0 {
                self.dirty_groups_of_port(li, dirty);
            }
        }
        dirty.li_pre.insert(name);
    }

    /// The HA groups naming `li`'s port as a member port are decided again.
    fn dirty_groups_of_port(&self, li: &LogicalInterface, dirty: &mut Dirty) {
        let port = (li.physical_router.clone(), li.physical_interface.clone());
        for key in self.claims.member_ports.claimants(&port) {
            dirty.groups.insert(key.name.clone());
        }
    }

    fn router_changed(&mut self, name: &str, old: Option<PhysicalRouter>, dirty: &mut Dirty) {
        let new = self.objects.routers.get(name).cloned();
        if old == new {
            return;
        }
        let spec = |r: &PhysicalRouter| {
            (
                r.interfaces.clone(),
                r.fabric.clone(),
                r.interface_limit,
                r.defects.clone(),
            )
        };
        let name = name.to_owned();
        if old.as_ref().map(spec) != new.as_ref().map(spec) {
            dirty
                .li_pre
                .extend(self.refs.lis_of_router.get(&name).cloned());
            dirty
                .gateways
                .extend(self.refs.gateways_of_node.get(&name).cloned());
            dirty
                .groups
                .extend(self.refs.groups_of_router.get(&name).cloned());
            dirty.slot_routers.insert(name.clone());
            let old_underlay = old.as_ref().and_then(|r| r.underlay_address());
            let new_underlay = new.as_ref().and_then(|r| r.underlay_address());
            if old_underlay != new_underlay {
                self.refs.routers_of_underlay.replace(
                    &name,
                    old_underlay.as_ref(),
                    new_underlay.as_ref(),
                );
                self.placement.set_router(&name, new_underlay);
                dirty.vteps.extend(self.objects.vteps.keys().cloned());
                dirty
                    .dc_gateways
                    .extend(self.objects.dc_gateways.keys().cloned());
                // SNAT translates to the node's underlay address: its
                // networks' decisions say which subnets it cannot serve.
                for network in self.placement.networks_on(&name) {
                    dirty.decisions.insert(network_key(network));
                }
            }
        }
        // A group's members' states come from their HA reports.
        if old.as_ref().map(|r| &r.ha_reports) != new.as_ref().map(|r| &r.ha_reports)
            || old.is_none() != new.is_none()
        {
            for group in self.refs.groups_of_router.get(&name) {
                dirty
                    .decisions
                    .insert(ObjectKey::cluster(Kind::GatewayHAGroup, group.clone()));
            }
        }
        let affected = self.reports.replace(&name, old.as_ref(), new.as_ref());
        self.report_changed(&name, affected, dirty);
    }

    /// Router `node`'s report changed: the objects whose standing there
    /// may have changed are decided again (a VMI with its logical
    /// interfaces).
    fn report_changed(&self, node: &str, affected: Affected, dirty: &mut Dirty) {
        let mut keys = affected.keys;
        if affected.every {
            let node = node.to_owned();
            keys.extend(
                self.refs
                    .lis_of_router
                    .get(&node)
                    .map(|n| ObjectKey::cluster(Kind::LogicalInterface, n.clone())),
            );
            keys.extend(self.placement.vmis_on(&node).map(vmi_key));
            keys.extend(self.placement.networks_on(&node).map(network_key));
            keys.extend(
                self.refs
                    .gateways_of_node
                    .get(&node)
                    .map(|n| ObjectKey::cluster(Kind::VirtualGateway, n.clone())),
            );
            keys.extend(
                self.refs
                    .groups_of_router
                    .get(&node)
                    .map(|n| ObjectKey::cluster(Kind::GatewayHAGroup, n.clone())),
            );
            keys.extend(
                self.objects
                    .vteps
                    .keys()
                    .map(|n| ObjectKey::cluster(Kind::ExternalVTEP, n.clone())),
            );
            keys.extend(
                self.objects
                    .dc_gateways
                    .keys()
                    .map(|n| ObjectKey::cluster(Kind::DCGateway, n.clone())),
            );
            keys.extend(
                self.objects
                    .security_groups
                    .keys()
                    .map(|n| ObjectKey::of(Kind::SecurityGroup, n)),
            );
            // Network policies of either kind, like the groups: few, and
            // their nodes are their networks' (a report that became
            // incomplete makes theirs unknown too).
            keys.extend(self.objects.network_policies.keys().map(policy_key));
        }
        for (kind, low, high) in affected.ranges {
            let Some(by_rv) = self.changed_at.get(&kind) else {
                continue;
            };
            let range = match &low {
                Some(low) => by_rv.range((
                    std::ops::Bound::Excluded(low),
                    std::ops::Bound::Included(&high),
                )),
                None => by_rv.range(..=&high),
            };
            keys.extend(range.flat_map(|(_, keys)| keys.iter().cloned()));
        }
        for key in keys {
            if key.kind == Kind::LogicalInterface
                && let Some(li) = self.objects.lis.get(&key.name)
            {
                dirty.decisions.insert(vmi_key(&li.vmi));
            }
            dirty.decisions.insert(key);
        }
    }

    fn gateway_changed(&mut self, name: &str, old: Option<VirtualGateway>, dirty: &mut Dirty) {
        let new = self.objects.gateways.get(name).cloned();
        if old == new {
            return;
        }
        self.index_changed_at(old.as_ref().map(|o| &o.meta), new.as_ref().map(|o| &o.meta));
        let old_claims = old
            .as_ref()
            .map(virtual_gateway::claims)
            .unwrap_or_default();
        let new_claims = new
            .as_ref()
            .map(virtual_gateway::claims)
            .unwrap_or_default();
        for r in self.claims.interfaces.replace(
            old.as_ref().map(|g| &g.meta),
            &old_claims,
            new.as_ref().map(|g| &g.meta),
            &new_claims,
        ) {
            for key in self.claims.interfaces.claimants(&r) {
                dirty.pre(key);
            }
        }
        let name = name.to_owned();
        // The gateways on its nodes read its age and subnets.
        let nodes: BTreeSet<&String> = old
            .iter()
            .chain(new.iter())
            .flat_map(|g| g.nodes.iter())
            .collect();
        for node in &nodes {
            dirty
                .gateways
                .extend(self.refs.gateways_of_node.get(node).cloned());
        }
        self.refs.gateways_of_node.replace(
            &name,
            old.iter().flat_map(|g| g.nodes.iter()),
            new.iter().flat_map(|g| g.nodes.iter()),
        );
        self.refs.gateways_of_network.replace(
            &name,
            old.as_ref().map(|g| &g.network),
            new.as_ref().map(|g| &g.network),
        );
        dirty.gateways.insert(name);
    }

    fn vtep_changed(&mut self, name: &str, old: Option<ExternalVtep>, dirty: &mut Dirty) {
        let new = self.objects.vteps.get(name).cloned();
        if old == new {
            return;
        }
        self.index_changed_at(old.as_ref().map(|o| &o.meta), new.as_ref().map(|o| &o.meta));
        let old_claims = old.as_ref().map(external_vtep::claims).unwrap_or_default();
        let new_claims = new.as_ref().map(external_vtep::claims).unwrap_or_default();
        for r in self.claims.endpoints.replace(
            old.as_ref().map(|x| &x.meta),
            &old_claims,
            new.as_ref().map(|x| &x.meta),
            &new_claims,
        ) {
            for key in self.claims.endpoints.claimants(&r) {
                dirty.pre(key);
            }
        }
        let affected = self.claims.addresses.replace(
            old.as_ref().map(|x| (&x.meta, addresses::vtep_claims(x))),
            new.as_ref().map(|x| (&x.meta, addresses::vtep_claims(x))),
        );
        for key in &affected {
            dirty.pre(key);
        }
        let name = name.to_owned();
        let (old_address, new_address) = (
            old.as_ref().and_then(|x| x.address),
            new.as_ref().and_then(|x| x.address),
        );
        if old_address != new_address {
            self.refs
                .vteps_of_address
                .replace(&name, old_address.as_ref(), new_address.as_ref());
            dirty
                .dc_gateways
                .extend(self.objects.dc_gateways.keys().cloned());
        }
        self.refs.vteps_of_network.replace(
            &name,
            old.iter()
                .flat_map(|x| x.networks.iter().map(|n| &n.network)),
            new.iter()
                .flat_map(|x| x.networks.iter().map(|n| &n.network)),
        );
        dirty.vteps.insert(name);
    }

    fn dc_gateway_changed(&mut self, name: &str, old: Option<DcGateway>, dirty: &mut Dirty) {
        let new = self.objects.dc_gateways.get(name).cloned();
        if old == new {
            return;
        }
        self.index_changed_at(old.as_ref().map(|o| &o.meta), new.as_ref().map(|o| &o.meta));
        let (old_endpoints, old_prefixes) =
            old.as_ref().map(dc_gateway::claims).unwrap_or_default();
        let (new_endpoints, new_prefixes) =
            new.as_ref().map(dc_gateway::claims).unwrap_or_default();
        let (old_meta, new_meta) = (old.as_ref().map(|g| &g.meta), new.as_ref().map(|g| &g.meta));
        for r in
            self.claims
                .dc_endpoints
                .replace(old_meta, &old_endpoints, new_meta, &new_endpoints)
        {
            for key in self.claims.dc_endpoints.claimants(&r) {
                dirty.pre(key);
            }
        }
        for r in self
            .claims
            .dc_prefixes
            .replace(old_meta, &old_prefixes, new_meta, &new_prefixes)
        {
            for key in self.claims.dc_prefixes.claimants(&r) {
                dirty.pre(key);
            }
        }
        let name = name.to_owned();
        self.refs.dc_gateways_of_network.replace(
            &name,
            old.iter()
                .flat_map(|g| g.networks.iter().map(|n| &n.network)),
            new.iter()
                .flat_map(|g| g.networks.iter().map(|n| &n.network)),
        );
        dirty.dc_gateways.insert(name);
    }

    fn group_changed(&mut self, name: &str, old: Option<GatewayHaGroup>, dirty: &mut Dirty) {
        let new = self.objects.groups.get(name).cloned();
        if old == new {
            return;
        }
        self.index_changed_at(old.as_ref().map(|o| &o.meta), new.as_ref().map(|o| &o.meta));
        let name = name.to_owned();
        let routers = |g: &Option<GatewayHaGroup>| -> BTreeSet<String> {
            g.iter()
                .flat_map(|g| g.members.iter().map(|m| m.physical_router.clone()))
                .collect()
        };
        let ports = |g: &Option<GatewayHaGroup>| -> BTreeSet<PortClaim> {
            g.iter()
                .flat_map(|g| {
                    g.members
                        .iter()
                        .map(|m| (m.physical_router.clone(), m.physical_interface.clone()))
                })
                .collect()
        };
        let (old_routers, new_routers) = (routers(&old), routers(&new));
        for port in self.claims.member_ports.replace(
            old.as_ref().map(|g| &g.meta),
            &ports(&old),
            new.as_ref().map(|g| &g.meta),
            &ports(&new),
        ) {
            for key in self.claims.member_ports.claimants(&port) {
                dirty.groups.insert(key.name.clone());
            }
        }
        // Logical interfaces on its members' routers may now share (or no
        // longer share) a VMI across them, and so may the other bindings
        // of their VMIs (which read the group of the oldest binding's
        // port).
        for router in old_routers.iter().chain(&new_routers) {
            for li in self.refs.lis_of_router.get(router) {
                dirty.li_pre.insert(li.clone());
                if let Some(li) = self.objects.lis.get(li) {
                    for other in self.claims.bindings.claimants(&li.vmi) {
                        dirty.li_pre.insert(other.name.clone());
                    }
                }
            }
        }
        self.refs
            .groups_of_router
            .replace(&name, &old_routers, &new_routers);
        self.refs.groups_of_network.replace(
            &name,
            old.as_ref().and_then(|g| g.bpdu_network.as_ref()),
            new.as_ref().and_then(|g| g.bpdu_network.as_ref()),
        );
        dirty.groups.insert(name);
    }

    /// Records what moved in placement as decisions to make, and labels
    /// to set, again.
    fn moved(&self, moved: Moved, dirty: &mut Dirty) {
        let mut namespaces = BTreeSet::new();
        for vmi in &moved.vmis {
            namespaces.insert(vmi.namespace.as_str());
        }
        for namespace in namespaces {
            self.dirty_security_groups(namespace, dirty);
        }
        // The nodes of a policy's connections follow its networks' nodes.
        let namespaces: BTreeSet<&str> = moved
            .networks
            .iter()
            .map(|n| n.namespace.as_str())
            .collect();
        for namespace in namespaces {
            self.dirty_network_policies(namespace, dirty);
        }
        for vmi in &moved.vmis {
            dirty.decisions.insert(vmi_key(vmi));
            dirty.labels.insert(vmi_key(vmi));
        }
        // A network's VMIs go to the nodes of the networks connected to it.
        for network in &moved.networks {
            for connected in self.connections.get(network).into_iter().flatten() {
                self.dirty_network_members(connected, dirty);
            }
        }
        for network in &moved.networks {
            dirty.decisions.insert(network_key(network));
            dirty.labels.insert(network_key(network));
            for vtep in self.refs.vteps_of_network.get(network) {
                let key = ObjectKey::cluster(Kind::ExternalVTEP, vtep.clone());
                dirty.decisions.insert(key.clone());
                dirty.labels.insert(key);
            }
            for gateway in self.refs.gateways_of_network.get(network) {
                dirty
                    .labels
                    .insert(ObjectKey::cluster(Kind::VirtualGateway, gateway.clone()));
            }
            for gateway in self.refs.dc_gateways_of_network.get(network) {
                let key = ObjectKey::cluster(Kind::DCGateway, gateway.clone());
                dirty.decisions.insert(key.clone());
                dirty.labels.insert(key);
            }
            for vmi in self.refs.vmis_of_network.get(network) {
                dirty.labels.insert(vmi_key(vmi));
                for li in self.refs.lis_of_vmi.get(vmi) {
                    dirty
                        .labels
                        .insert(ObjectKey::cluster(Kind::LogicalInterface, li.clone()));
                }
            }
        }
    }

    fn run_labels(&mut self, dirty: &mut Dirty) {
        // A group's labels follow its member routers' logical interfaces
        // (their acceptance, the member-port claims, their VMIs' networks)
        // and those networks' nodes: more than a change names. Groups are
        // few: each is labelled again at every change.
        for group in self.objects.groups.keys() {
            dirty
                .labels
                .insert(ObjectKey::cluster(Kind::GatewayHAGroup, group.clone()));
        }
        // Connections change only with what dirties a policy's labels
        // (a policy, a network of its namespace, a cluster policy).
        if dirty.labels.iter().any(|k| {
            matches!(
                k.kind,
                Kind::VirtualNetworkPolicy | Kind::ClusterVirtualNetworkPolicy
            )
        }) {
            let connections = virtual_network_policy::connections(
                &self.objects.networks,
                &self.objects.network_policies,
            );
            let old = take(&mut self.connections);
            let changed: BTreeSet<&NamespacedName> = old
                .keys()
                .chain(connections.keys())
                .filter(|n| old.get(*n) != connections.get(*n))
                .collect();
            let changed: Vec<NamespacedName> = changed.into_iter().cloned().collect();
            self.connections = connections;
            for network in &changed {
                self.dirty_network_members(network, dirty);
            }
        }
        for key in take(&mut dirty.labels) {
            let nodes: Vec<String> = self.desired_labels(&key).into_iter().collect();
            let before = match nodes.is_empty() {
                true => self.node_labels.remove(&key),
                false => self.node_labels.insert(key.clone(), nodes.clone()),
            };
            if before.unwrap_or_default() != nodes {
                self.relabelled.insert(key);
            }
        }
    }

    /// A network's labels and those of its VMIs and their logical
    /// interfaces are set again.
    fn dirty_network_members(&self, network: &NamespacedName, dirty: &mut Dirty) {
        dirty.labels.insert(network_key(network));
        for vmi in self.refs.vmis_of_network.get(network) {
            dirty.labels.insert(vmi_key(vmi));
            for li in self.refs.lis_of_vmi.get(vmi) {
                dirty
                    .labels
                    .insert(ObjectKey::cluster(Kind::LogicalInterface, li.clone()));
            }
        }
    }

    /// The nodes holding a network connected to `network` by a network
    /// policy.
    fn connected_nodes(&self, network: &NamespacedName) -> BTreeSet<String> {
        self.placement
            .nodes_of(self.connections.get(network).into_iter().flatten())
    }

    /// See [`Decider::node_labels`].
    fn desired_labels(&self, key: &ObjectKey) -> BTreeSet<String> {
        let p = &self.placement;
        let accepted = |f: Option<&Findings>| f.is_some_and(Findings::accepted);
        match key.kind {
            Kind::LogicalInterface => {
                let Some(li) = self.objects.lis.get(&key.name) else {
                    return BTreeSet::new();
                };
                if !accepted(self.lis.get(&key.name)) {
                    return BTreeSet::new();
                }
                let mut nodes = BTreeSet::from([li.physical_router.clone()]);
                if let Some(vmi) = self.objects.vmis.get(&li.vmi) {
                    nodes.extend(p.network_nodes(&vmi.network_name()).iter().cloned());
                    nodes.extend(self.connected_nodes(&vmi.network_name()));
                }
                nodes
            }
            Kind::VirtualMachineInterface => {
                let name = namespaced(key);
                let held = p.vmi_nodes(&name);
                match self.objects.vmis.get(&name) {
                    Some(vmi) if !held.is_empty() => held
                        .iter()
                        .chain(p.network_nodes(&vmi.network_name()))
                        .cloned()
                        .chain(self.connected_nodes(&vmi.network_name()))
                        .collect(),
                    _ => BTreeSet::new(),
                }
            }
            Kind::VirtualNetwork => {
                let name = namespaced(key);
                let mut nodes = p.network_nodes(&name).clone();
                if !nodes.is_empty() {
                    nodes.extend(self.connected_nodes(&name));
                }
                nodes
            }
            Kind::VirtualGateway => match self.objects.gateways.get(&key.name) {
                Some(g) if accepted(self.gateways.get(&key.name)) => g
                    .nodes
                    .iter()
                    .chain(p.network_nodes(&g.network))
                    .cloned()
                    .collect(),
                _ => BTreeSet::new(),
            },
            Kind::ExternalVTEP => match self.objects.vteps.get(&key.name) {
                Some(x) if accepted(self.vteps.get(&key.name)) => {
                    p.nodes_of(x.networks.iter().map(|n| &n.network))
                }
                _ => BTreeSet::new(),
            },
            Kind::DCGateway => match self.objects.dc_gateways.get(&key.name) {
                Some(g) if accepted(self.dc_gateways.get(&key.name)) => {
                    p.nodes_of(g.networks.iter().map(|n| &n.network))
                }
                _ => BTreeSet::new(),
            },
            // A group goes to its members and to every node holding a
            // network of the VMIs it serves (its witnesses, and the nodes
            // sending to those VMIs over several paths).
            Kind::GatewayHAGroup => match self.objects.groups.get(&key.name) {
                Some(g) if accepted(self.groups.get(&key.name)) => {
                    let routers: BTreeSet<&String> =
                        g.members.iter().map(|m| &m.physical_router).collect();
                    let mut networks = BTreeSet::new();
                    for li in routers
                        .iter()
                        .flat_map(|r| self.refs.lis_of_router.get(r))
                        .filter(|li| accepted(self.lis.get(*li)))
                        .filter_map(|li| self.objects.lis.get(li))
                    {
                        let port = (li.physical_router.clone(), li.physical_interface.clone());
                        if self.claims.member_ports.holder(&port) == Some(&g.meta.key)
                            && let Some(vmi) = self.objects.vmis.get(&li.vmi)
                        {
                            networks.insert(vmi.network_name());
                        }
                    }
                    let mut nodes = p.nodes_of(networks.iter());
                    nodes.extend(routers.into_iter().cloned());
                    nodes
                }
                _ => BTreeSet::new(),
            },
            // A group goes to every node holding a VMI that uses it, or
            // uses a group whose rules name it.
            Kind::SecurityGroup => {
                let name = namespaced(key);
                if !self.objects.security_groups.contains_key(&name) {
                    return BTreeSet::new();
                }
                let names_it = |group: &str| {
                    group == name.name
                        || self
                            .objects
                            .security_groups
                            .get(&NamespacedName::new(name.namespace.clone(), group))
                            .is_some_and(|g| g.remote_groups().contains(&&*name.name))
                };
                self.objects
                    .vmis
                    .iter()
                    .filter(|(n, v)| {
                        n.namespace == name.namespace && v.groups().into_iter().any(names_it)
                    })
                    .flat_map(|(n, _)| p.vmi_nodes(n).iter().cloned())
                    .collect()
            }
            // A policy goes to every node holding both networks of a
            // connection it makes (the nodes that run its rules).
            Kind::VirtualNetworkPolicy | Kind::ClusterVirtualNetworkPolicy => {
                match self.objects.network_policies.get(&namespaced(key)) {
                    Some(policy) => virtual_network_policy::nodes_of(
                        policy,
                        &self.objects.networks,
                        &self.objects.network_policies,
                        p,
                    ),
                    None => BTreeSet::new(),
                }
            }
            Kind::PhysicalRouter => BTreeSet::new(),
        }
    }

    fn run_networks(&mut self, dirty: &mut Dirty) {
        for name in take(&mut dirty.network_pre) {
            let key = network_key(&name);
            match self.objects.networks.get(&name) {
                Some(network) => {
                    let pre = virtual_network::pre(network, &self.claims.instances, &self.vnis);
                    self.vnis
                        .ask(0, &network.meta, pre.vni == VniChoice::Allocate);
                    self.network_pre.insert(name.clone(), pre);
                }
                None => {
                    self.network_pre.remove(&name);
                    self.vnis.forget(&key);
                }
            }
            dirty.network_final.insert(name);
        }
        for key in self.vnis.run() {
            dirty.network_final.insert(namespaced(&key));
        }
        let mut bases = BTreeMap::new();
        for name in &dirty.network_final {
            match (self.objects.networks.get(name), self.network_pre.get(name)) {
                (Some(network), Some(pre)) => {
                    let base = virtual_network::with_vni(network, pre, &self.vnis);
                    let asks = base.0.accepted()
                        && self
                            .labels
                            .kept(&network.meta, network.mpls_label)
                            .is_none();
                    self.labels.ask(NETWORKS_FIRST, &network.meta, asks);
                    bases.insert(name.clone(), base);
                }
                _ => self.labels.forget(&network_key(name)),
            }
        }
        for key in self.labels.run() {
            let name = namespaced(&key);
            match key.kind {
                Kind::VirtualNetwork => {
                    if let (false, Some(network), Some(pre)) = (
                        bases.contains_key(&name),
                        self.objects.networks.get(&name),
                        self.network_pre.get(&name),
                    ) {
                        bases.insert(
                            name.clone(),
                            virtual_network::with_vni(network, pre, &self.vnis),
                        );
                    }
                    dirty.network_final.insert(name);
                }
                _ => {
                    dirty.vmi_final.insert(name);
                }
            }
        }
        // Verdicts before the fabric exit; then IP fabric forwarding's
        // subnets handed out among the accepted networks asking.
        let mut verdicts = BTreeMap::new();
        for name in take(&mut dirty.network_final) {
            let verdict = match (self.objects.networks.get(&name), bases.remove(&name)) {
                (Some(network), Some(base)) => {
                    let v = virtual_network::verdict(network, base, &self.labels, &self.settings);
                    self.fabric
                        .ask(network, virtual_network::wants_fabric(network, &v));
                    Some(v)
                }
                _ => {
                    self.fabric.forget(&name);
                    None
                }
            };
            verdicts.insert(name, verdict);
        }
        for name in self.fabric.run() {
            if verdicts.contains_key(&name) {
                continue;
            }
            let verdict = match (
                self.objects.networks.get(&name),
                self.network_pre.get(&name),
            ) {
                (Some(network), Some(pre)) => Some(virtual_network::verdict(
                    network,
                    virtual_network::with_vni(network, pre, &self.vnis),
                    &self.labels,
                    &self.settings,
                )),
                _ => None,
            };
            verdicts.insert(name, verdict);
        }
        for (name, verdict) in verdicts {
            let verdict = match (verdict, self.objects.networks.get(&name)) {
                (Some(v), Some(network)) => Some(virtual_network::with_fabric_exit(
                    network,
                    v,
                    self.fabric.refused(&name),
                )),
                _ => None,
            };
            if self.networks.get(&name) != verdict.as_ref() {
                match verdict {
                    Some(v) => self.networks.insert(name.clone(), v),
                    None => self.networks.remove(&name),
                };
                dirty
                    .vmi_pre
                    .extend(self.refs.vmis_of_network.get(&name).cloned());
                dirty
                    .gateways
                    .extend(self.refs.gateways_of_network.get(&name).cloned());
                dirty
                    .vteps
                    .extend(self.refs.vteps_of_network.get(&name).cloned());
                dirty
                    .groups
                    .extend(self.refs.groups_of_network.get(&name).cloned());
                dirty
                    .dc_gateways
                    .extend(self.refs.dc_gateways_of_network.get(&name).cloned());
            }
            dirty.decisions.insert(network_key(&name));
            dirty.labels.insert(network_key(&name));
        }
    }

    fn run_vmis(&mut self, dirty: &mut Dirty) {
        for name in take(&mut dirty.vmi_pre) {
            match self.objects.vmis.get(&name) {
                Some(vmi) => {
                    let mut pre = virtual_machine_interface::pre(
                        vmi,
                        self.objects.networks.get(&vmi.network_name()),
                        &self.networks,
                        &self.claims.addresses,
                    );
                    security_group::vmi_findings(
                        vmi,
                        &self.objects.security_groups,
                        &mut pre.findings,
                    );
                    self.vmi_pre.insert(name.clone(), pre);
                }
                None => {
                    self.vmi_pre.remove(&name);
                }
            }
            dirty.vmi_final.insert(name);
        }
        for name in &dirty.vmi_final {
            match (self.objects.vmis.get(name), self.vmi_pre.get(name)) {
                (Some(vmi), Some(pre)) => {
                    let asks = pre.findings.accepted()
                        && self.labels.kept(&vmi.meta, vmi.mpls_label).is_none();
                    self.labels.ask(THEN_VMIS, &vmi.meta, asks);
                }
                _ => self.labels.forget(&vmi_key(name)),
            }
        }
        for key in self.labels.run() {
            // Networks ask first: what they got cannot change here.
            if key.kind == Kind::VirtualMachineInterface {
                dirty.vmi_final.insert(namespaced(&key));
            }
        }
        for name in take(&mut dirty.vmi_final) {
            let vmi = self.objects.vmis.get(&name);
            let verdict = match (vmi, self.vmi_pre.get(&name)) {
                (Some(vmi), Some(pre)) => {
                    Some(virtual_machine_interface::verdict(vmi, pre, &self.labels))
                }
                _ => None,
            };
            let placed = match (vmi, &verdict) {
                (Some(vmi), Some(v)) if v.findings.accepted() => Some(vmi.network_name()),
                _ => None,
            };
            if self.vmis.get(&name) != verdict.as_ref() {
                match verdict {
                    Some(v) => self.vmis.insert(name.clone(), v),
                    None => self.vmis.remove(&name),
                };
                dirty
                    .li_pre
                    .extend(self.refs.lis_of_vmi.get(&name).cloned());
            }
            let moved = self.placement.set_vmi(&name, placed);
            self.moved(moved, dirty);
            dirty.decisions.insert(vmi_key(&name));
            // Its logical interfaces are labelled for its network's nodes.
            dirty.labels.insert(vmi_key(&name));
            for li in self.refs.lis_of_vmi.get(&name) {
                dirty
                    .labels
                    .insert(ObjectKey::cluster(Kind::LogicalInterface, li.clone()));
            }
        }
    }

    fn run_logical_interfaces(&mut self, dirty: &mut Dirty) {
        let mut routers = take(&mut dirty.slot_routers);
        for name in take(&mut dirty.li_pre) {
            let li = self.objects.lis.get(&name);
            let pre = li.map(|li| {
                let first = self
                    .claims
                    .bindings
                    .holder(&li.vmi)
                    .and_then(|k| self.objects.lis.get(&k.name));
                logical_interface::pre(
                    li,
                    &self.objects.routers,
                    &self.vmis,
                    &self.claims.vlans,
                    first,
                    &self.claims.member_ports,
                )
            });
            let at = match (li, &pre) {
                (Some(li), Some(pre)) if pre.eligible => {
                    Some((li.physical_router.as_str(), li.meta.age()))
                }
                _ => None,
            };
            routers.extend(self.slots.set(&name, at));
            match pre {
                Some(pre) => self.li_pre.insert(name.clone(), pre),
                None => self.li_pre.remove(&name),
            };
            dirty.li_final.insert(name);
        }
        for router in routers {
            let limit = self
                .objects
                .routers
                .get(&router)
                .map_or(0, |r| r.interface_limit);
            dirty.li_final.extend(self.slots.hand_out(&router, limit));
        }
        for name in take(&mut dirty.li_final) {
            let li = self.objects.lis.get(&name);
            let findings = match (li, self.li_pre.get(&name)) {
                (Some(li), Some(pre)) => Some(logical_interface::verdict(
                    li,
                    pre,
                    &self.slots,
                    &self.objects.routers,
                )),
                _ => None,
            };
            let binding = match (li, &findings) {
                (Some(li), Some(f)) if f.accepted() => {
                    Some((li.vmi.clone(), li.physical_router.clone()))
                }
                _ => None,
            };
            if let Some(li) = li {
                dirty.decisions.insert(vmi_key(&li.vmi));
            }
            match findings {
                Some(f) => self.lis.insert(name.clone(), f),
                None => self.lis.remove(&name),
            };
            let moved = self.placement.set_logical_interface(&name, binding);
            self.moved(moved, dirty);
            if let Some(li) = li
                && let Some(group) = self
                    .claims
                    .member_ports
                    .holder(&(li.physical_router.clone(), li.physical_interface.clone()))
            {
                dirty.labels.insert(group.clone());
            }
            let key = ObjectKey::cluster(Kind::LogicalInterface, name);
            dirty.labels.insert(key.clone());
            dirty.decisions.insert(key);
        }
    }

    fn run_gateways(&mut self, dirty: &mut Dirty) {
        for name in take(&mut dirty.gateways) {
            let gateway = self.objects.gateways.get(&name);
            let findings = gateway.map(|g| {
                virtual_gateway::verdict(
                    g,
                    &self.networks,
                    &self.objects.routers,
                    &self.claims.interfaces,
                    &self.objects.gateways,
                    &self.refs.gateways_of_node,
                )
            });
            let placed = match (gateway, &findings) {
                (Some(g), Some(f)) if f.accepted() => Some((g.network.clone(), g.nodes.clone())),
                _ => None,
            };
            match findings {
                Some(f) => self.gateways.insert(name.clone(), f),
                None => self.gateways.remove(&name),
            };
            let moved = self.placement.set_gateway(&name, placed);
            self.moved(moved, dirty);
            let key = ObjectKey::cluster(Kind::VirtualGateway, name);
            dirty.labels.insert(key.clone());
            dirty.decisions.insert(key);
        }
    }

    fn run_vteps(&mut self, dirty: &mut Dirty) {
        for name in take(&mut dirty.vteps) {
            let vtep = self.objects.vteps.get(&name);
            let findings = vtep.map(|x| {
                external_vtep::verdict(
                    x,
                    &self.refs.routers_of_underlay,
                    &self.claims.endpoints,
                    &self.networks,
                    &self.objects.networks,
                    &self.claims.addresses,
                )
            });
            let joined = match (vtep, &findings) {
                (Some(x), Some(f)) if f.accepted() => x.address.map(|address| {
                    let peer = ExternalPeer {
                        name: name.clone(),
                        address,
                        encapsulation: x.encapsulation,
                    };
                    (peer, x.networks.iter().map(|n| n.network.clone()).collect())
                }),
                _ => None,
            };
            match findings {
                Some(f) => self.vteps.insert(name.clone(), f),
                None => self.vteps.remove(&name),
            };
            let moved = self.placement.set_external_vtep(&name, joined);
            self.moved(moved, dirty);
            let key = ObjectKey::cluster(Kind::ExternalVTEP, name);
            dirty.labels.insert(key.clone());
            dirty.decisions.insert(key);
        }
    }

    fn run_dc_gateways(&mut self, dirty: &mut Dirty) {
        for name in take(&mut dirty.dc_gateways) {
            let gateway = self.objects.dc_gateways.get(&name);
            let findings = gateway.map(|g| {
                dc_gateway::verdict(
                    g,
                    &TakenEndpoints {
                        routers: &self.refs.routers_of_underlay,
                        vteps: &self.refs.vteps_of_address,
                    },
                    &self.claims.dc_endpoints,
                    &self.claims.dc_prefixes,
                    &self.networks,
                    &self.objects.networks,
                )
            });
            let served = match (gateway, &findings) {
                (Some(g), Some(f)) if f.accepted() => g.address.map(|address| {
                    let peer = DcGatewayPeer {
                        name: name.clone(),
                        address,
                    };
                    (peer, g.networks.iter().map(|n| n.network.clone()).collect())
                }),
                _ => None,
            };
            match findings {
                Some(f) => self.dc_gateways.insert(name.clone(), f),
                None => self.dc_gateways.remove(&name),
            };
            let moved = self.placement.set_dc_gateway(&name, served);
            self.moved(moved, dirty);
            let key = ObjectKey::cluster(Kind::DCGateway, name);
            dirty.labels.insert(key.clone());
            dirty.decisions.insert(key);
        }
    }

    fn run_groups(&mut self, dirty: &mut Dirty) {
        for name in take(&mut dirty.groups) {
            let group = self.objects.groups.get(&name);
            let findings = group.map(|g| {
                gateway_ha_group::verdict(
                    g,
                    &GroupInputs {
                        routers: &self.objects.routers,
                        networks: &self.networks,
                        network_objects: &self.objects.networks,
                        member_ports: &self.claims.member_ports,
                        lis: &self.objects.lis,
                        lis_of_router: &self.refs.lis_of_router,
                        vmis: &self.objects.vmis,
                    },
                )
            });
            let placed = match (group, &findings) {
                (Some(g), Some(f)) if f.accepted() => Placement::bpdu_placed(g),
                _ => None,
            };
            match findings {
                Some(f) => self.groups.insert(name.clone(), f),
                None => self.groups.remove(&name),
            };
            let moved = self.placement.set_ha_group(&name, placed);
            self.moved(moved, dirty);
            let key = ObjectKey::cluster(Kind::GatewayHAGroup, name);
            dirty.labels.insert(key.clone());
            dirty.decisions.insert(key);
        }
    }

    fn run_decisions(&mut self, dirty: &mut Dirty) -> BTreeSet<ObjectKey> {
        let mut changed = BTreeSet::new();
        self.decided_last = dirty.decisions.len();
        for key in take(&mut dirty.decisions) {
            match self.decision_of(&key) {
                Some(decision) => {
                    if self.decisions.get(&key) != Some(&decision) {
                        self.decisions.insert(decision);
                        changed.insert(key);
                    }
                }
                None => {
                    if self.decisions.remove(&key).is_some() {
                        changed.insert(key);
                    }
                }
            }
        }
        changed
    }

    /// The decision about `key`, from its verdict and what it reads.
    fn decision_of(&self, key: &ObjectKey) -> Option<Decision> {
        match key.kind {
            Kind::PhysicalRouter => None,
            Kind::LogicalInterface => {
                let li = self.objects.lis.get(&key.name)?;
                let findings = self.lis.get(&key.name)?;
                Some(logical_interface::decision_of(li, findings, &self.reports))
            }
            Kind::VirtualMachineInterface => {
                let name = namespaced(key);
                let vmi = self.objects.vmis.get(&name)?;
                let verdict = self.vmis.get(&name)?;
                let bound: Vec<&LogicalInterface> = self
                    .refs
                    .lis_of_vmi
                    .get(&name)
                    .filter(|li| self.lis.get(*li).is_some_and(Findings::accepted))
                    .filter_map(|li| self.objects.lis.get(li))
                    .collect();
                // The group whose member port a binding is on (all of
                // them are on one group's ports, or none is accepted).
                let group = bound.iter().find_map(|li| {
                    self.claims
                        .member_ports
                        .holder(&(li.physical_router.clone(), li.physical_interface.clone()))
                        .map(|k| k.name.as_str())
                });
                Some(virtual_machine_interface::decision_of(
                    vmi,
                    verdict,
                    &bound,
                    group,
                    &self.placement,
                    &self.reports,
                ))
            }
            Kind::VirtualNetwork => {
                let name = namespaced(key);
                let network = self.objects.networks.get(&name)?;
                let verdict = self.networks.get(&name)?;
                Some(virtual_network::decision_of(
                    network,
                    verdict,
                    &self.placement,
                    &self.reports,
                ))
            }
            Kind::GatewayHAGroup => {
                let group = self.objects.groups.get(&key.name)?;
                let findings = self.groups.get(&key.name)?;
                Some(gateway_ha_group::decision_of(
                    group,
                    findings,
                    &self.objects.routers,
                    &self.reports,
                ))
            }
            Kind::VirtualGateway => {
                let gateway = self.objects.gateways.get(&key.name)?;
                let findings = self.gateways.get(&key.name)?;
                Some(virtual_gateway::decision_of(
                    gateway,
                    findings,
                    &self.objects.routers,
                    &self.reports,
                ))
            }
            Kind::ExternalVTEP => {
                let vtep = self.objects.vteps.get(&key.name)?;
                let findings = self.vteps.get(&key.name)?;
                Some(external_vtep::decision_of(
                    vtep,
                    findings,
                    &self.placement,
                    &self.reports,
                ))
            }
            Kind::DCGateway => {
                let gateway = self.objects.dc_gateways.get(&key.name)?;
                let findings = self.dc_gateways.get(&key.name)?;
                Some(dc_gateway::decision_of(
                    gateway,
                    findings,
                    &self.placement,
                    &self.reports,
                ))
            }
            Kind::SecurityGroup => {
                let name = namespaced(key);
                let group = self.objects.security_groups.get(&name)?;
                let p = &self.placement;
                let nodes: BTreeSet<String> = self
                    .objects
                    .vmis
                    .iter()
                    .filter(|(n, v)| {
                        n.namespace == name.namespace && v.groups().contains(&&*name.name)
                    })
                    .flat_map(|(n, _)| p.vmi_nodes(n).iter().cloned())
                    .collect();
                Some(security_group::decision_of(
                    group,
                    &self.objects.security_groups,
                    &self.objects.vmis,
                    &nodes,
                    &self.reports,
                ))
            }
            Kind::VirtualNetworkPolicy | Kind::ClusterVirtualNetworkPolicy => {
                let policy = self.objects.network_policies.get(&namespaced(key))?;
                let nodes = virtual_network_policy::nodes_of(
                    policy,
                    &self.objects.networks,
                    &self.objects.network_policies,
                    &self.placement,
                );
                let ties = virtual_network_policy::ties_of(
                    policy,
                    &self.objects.networks,
                    &self.objects.network_policies,
                );
                Some(virtual_network_policy::decision_of(
                    policy,
                    &self.objects.networks,
                    &nodes,
                    &ties,
                    &self.reports,
                ))
            }
        }
    }
}
