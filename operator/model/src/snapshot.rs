//! Every object of every kind at one moment: the whole input of the
//! operator's decisions and of a node's desired state; and one object of
//! any kind ([`Object`]), what a change carries.
//!
//! A snapshot's objects are shared ([`Arc`]): the node dataplane converts
//! each object once, as its watch event arrives, and every build after
//! that takes pointers to it (and its last-accepted cache keeps pointers
//! too), rather than a copy of every object per build.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::object::{Meta, ObjectKey};
use crate::{
    DcGateway, ExternalVtep, GatewayHaGroup, LogicalInterface, PhysicalRouter, SecurityGroup,
    VirtualGateway, VirtualMachineInterface, VirtualNetwork, VirtualNetworkPolicy,
};

/// Every object of every kind.
///
/// Each object is shared (see the module's doc); [`Arc::make_mut`] edits
/// one (a copy when it is shared). The order of each list does not matter: everything computed from a
/// snapshot depends on the set. Keys are unique within each list (as in a
/// cluster).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// PhysicalRouters.
    pub physical_routers: Vec<Arc<PhysicalRouter>>,
    /// LogicalInterfaces.
    pub logical_interfaces: Vec<Arc<LogicalInterface>>,
    /// VirtualMachineInterfaces.
    pub virtual_machine_interfaces: Vec<Arc<VirtualMachineInterface>>,
    /// VirtualNetworks.
    pub virtual_networks: Vec<Arc<VirtualNetwork>>,
    /// GatewayHAGroups.
    pub gateway_ha_groups: Vec<Arc<GatewayHaGroup>>,
    /// VirtualGateways.
    pub virtual_gateways: Vec<Arc<VirtualGateway>>,
    /// ExternalVTEPs.
    pub external_vteps: Vec<Arc<ExternalVtep>>,
    /// DCGateways.
    pub dc_gateways: Vec<Arc<DcGateway>>,
    /// SecurityGroups.
    pub security_groups: Vec<Arc<SecurityGroup>>,
    /// VirtualNetworkPolicies.
    pub virtual_network_policies: Vec<Arc<VirtualNetworkPolicy>>,
}

/// One object of any kind.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Object {
    /// A PhysicalRouter.
    PhysicalRouter(PhysicalRouter),
    /// A LogicalInterface.
    LogicalInterface(LogicalInterface),
    /// A VirtualMachineInterface.
    VirtualMachineInterface(VirtualMachineInterface),
    /// A VirtualNetwork.
    VirtualNetwork(VirtualNetwork),
    /// A GatewayHAGroup.
    GatewayHaGroup(GatewayHaGroup),
    /// A VirtualGateway.
    VirtualGateway(VirtualGateway),
    /// An ExternalVTEP.
    ExternalVtep(ExternalVtep),
    /// A DCGateway.
    DcGateway(DcGateway),
    /// A SecurityGroup.
    SecurityGroup(SecurityGroup),
    /// A VirtualNetworkPolicy.
    VirtualNetworkPolicy(VirtualNetworkPolicy),
}

impl Object {
    /// Its identity, age, generation and verdict.
    pub fn meta(&self) -> &Meta {
        match self {
            Object::PhysicalRouter(o) => &o.meta,
            Object::LogicalInterface(o) => &o.meta,
            Object::VirtualMachineInterface(o) => &o.meta,
            Object::VirtualNetwork(o) => &o.meta,
            Object::GatewayHaGroup(o) => &o.meta,
            Object::VirtualGateway(o) => &o.meta,
            Object::ExternalVtep(o) => &o.meta,
            Object::DcGateway(o) => &o.meta,
            Object::SecurityGroup(o) => &o.meta,
            Object::VirtualNetworkPolicy(o) => &o.meta,
        }
    }

    /// Its meta, to change.
    pub fn meta_mut(&mut self) -> &mut Meta {
        match self {
            Object::PhysicalRouter(o) => &mut o.meta,
            Object::LogicalInterface(o) => &mut o.meta,
            Object::VirtualMachineInterface(o) => &mut o.meta,
            Object::VirtualNetwork(o) => &mut o.meta,
            Object::GatewayHaGroup(o) => &mut o.meta,
            Object::VirtualGateway(o) => &mut o.meta,
            Object::ExternalVtep(o) => &mut o.meta,
            Object::DcGateway(o) => &mut o.meta,
            Object::SecurityGroup(o) => &mut o.meta,
            Object::VirtualNetworkPolicy(o) => &mut o.meta,
        }
    }

    /// Its key.
    pub fn key(&self) -> &ObjectKey {
        &self.meta().key
    }
}

impl Snapshot {
    /// The keys of the objects whose status says the operator accepted
    /// their current generation (PhysicalRouters have no `Accepted`
    /// condition and are never among them).
    pub fn accepted_by_status(&self) -> BTreeSet<ObjectKey> {
        let metas = self
            .logical_interfaces
            .iter()
            .map(|o| &o.meta)
            .chain(self.virtual_machine_interfaces.iter().map(|o| &o.meta))
            .chain(self.virtual_networks.iter().map(|o| &o.meta))
            .chain(self.gateway_ha_groups.iter().map(|o| &o.meta))
            .chain(self.virtual_gateways.iter().map(|o| &o.meta))
            .chain(self.external_vteps.iter().map(|o| &o.meta))
            .chain(self.dc_gateways.iter().map(|o| &o.meta))
            .chain(self.security_groups.iter().map(|o| &o.meta))
            .chain(self.virtual_network_policies.iter().map(|o| &o.meta));
        metas
            .filter(|m| m.accepted)
            .map(|m| m.key.clone())
            .collect()
    }

    /// Every object, of every kind (each one copied where it is shared).
    pub fn into_objects(self) -> impl Iterator<Item = Object> {
        let Snapshot {
            physical_routers,
            logical_interfaces,
            virtual_machine_interfaces,
            virtual_networks,
            gateway_ha_groups,
            virtual_gateways,
            external_vteps,
            dc_gateways,
            security_groups,
            virtual_network_policies,
        } = self;
        physical_routers
            .into_iter()
            .map(|o| Object::PhysicalRouter(Arc::unwrap_or_clone(o)))
            .chain(owned(logical_interfaces).map(Object::LogicalInterface))
            .chain(owned(virtual_machine_interfaces).map(Object::VirtualMachineInterface))
            .chain(owned(virtual_networks).map(Object::VirtualNetwork))
            .chain(owned(gateway_ha_groups).map(Object::GatewayHaGroup))
            .chain(owned(virtual_gateways).map(Object::VirtualGateway))
            .chain(owned(external_vteps).map(Object::ExternalVtep))
            .chain(owned(dc_gateways).map(Object::DcGateway))
            .chain(owned(security_groups).map(Object::SecurityGroup))
            .chain(owned(virtual_network_policies).map(Object::VirtualNetworkPolicy))
    }

    /// Adds `object` to its kind's list.
    pub fn push(&mut self, object: Object) {
        match object {
            Object::PhysicalRouter(o) => self.physical_routers.push(Arc::new(o)),
            Object::LogicalInterface(o) => self.logical_interfaces.push(Arc::new(o)),
            Object::VirtualMachineInterface(o) => self.virtual_machine_interfaces.push(Arc::new(o)),
            Object::VirtualNetwork(o) => self.virtual_networks.push(Arc::new(o)),
            Object::GatewayHaGroup(o) => self.gateway_ha_groups.push(Arc::new(o)),
            Object::VirtualGateway(o) => self.virtual_gateways.push(Arc::new(o)),
            Object::ExternalVtep(o) => self.external_vteps.push(Arc::new(o)),
            Object::DcGateway(o) => self.dc_gateways.push(Arc::new(o)),
            Object::SecurityGroup(o) => self.security_groups.push(Arc::new(o)),
            Object::VirtualNetworkPolicy(o) => self.virtual_network_policies.push(Arc::new(o)),
        }
    }
}

/// The objects of `list`, each copied where it is shared.
fn owned<T: Clone>(list: Vec<Arc<T>>) -> impl Iterator<Item = T> {
    list.into_iter().map(Arc::unwrap_or_clone)
}

/// An object of any kind's identity, age, generation and verdict: what
/// code generic over the kinds reads.
pub trait HasMeta {
    /// Its meta.
    fn meta(&self) -> &Meta;
}

macro_rules! has_meta {
    ($($kind:ty),* $(,)?) => {$(
        impl HasMeta for $kind {
            fn meta(&self) -> &Meta {
                &self.meta
            }
        }
    )*};
}

has_meta!(
    PhysicalRouter,
    LogicalInterface,
    VirtualMachineInterface,
    VirtualNetwork,
    GatewayHaGroup,
    VirtualGateway,
    ExternalVtep,
    DcGateway,
    SecurityGroup,
    VirtualNetworkPolicy,
);
