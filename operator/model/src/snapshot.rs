//! Every object of every kind at one moment: the whole input of the
//! operator's decisions and of a node's desired state; and one object of
//! any kind ([`Object`]), what a change carries.

use std::collections::BTreeSet;

use crate::object::{Meta, ObjectKey};
use crate::{
    DcGateway, ExternalVtep, GatewayHaGroup, LogicalInterface, PhysicalRouter, SecurityGroup,
    VirtualGateway, VirtualMachineInterface, VirtualNetwork, VirtualNetworkPolicy,
};

/// Every object of every kind.
///
/// The order of each list does not matter: everything computed from a
/// snapshot depends on the set. Keys are unique within each list (as in a
/// cluster).
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
    /// ExternalVTEPs.
    pub external_vteps: Vec<ExternalVtep>,
    /// DCGateways.
    pub dc_gateways: Vec<DcGateway>,
    /// SecurityGroups.
    pub security_groups: Vec<SecurityGroup>,
    /// VirtualNetworkPolicies.
    pub virtual_network_policies: Vec<VirtualNetworkPolicy>,
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

    /// Every object, of every kind.
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
            .map(Object::PhysicalRouter)
            .chain(logical_interfaces.into_iter().map(Object::LogicalInterface))
            .chain(
                virtual_machine_interfaces
                    .into_iter()
                    .map(Object::VirtualMachineInterface),
            )
            .chain(virtual_networks.into_iter().map(Object::VirtualNetwork))
            .chain(gateway_ha_groups.into_iter().map(Object::GatewayHaGroup))
            .chain(virtual_gateways.into_iter().map(Object::VirtualGateway))
            .chain(external_vteps.into_iter().map(Object::ExternalVtep))
            .chain(dc_gateways.into_iter().map(Object::DcGateway))
            .chain(security_groups.into_iter().map(Object::SecurityGroup))
            .chain(
                virtual_network_policies
                    .into_iter()
                    .map(Object::VirtualNetworkPolicy),
            )
    }

    /// Adds `object` to its kind's list.
    pub fn push(&mut self, object: Object) {
        match object {
            Object::PhysicalRouter(o) => self.physical_routers.push(o),
            Object::LogicalInterface(o) => self.logical_interfaces.push(o),
            Object::VirtualMachineInterface(o) => self.virtual_machine_interfaces.push(o),
            Object::VirtualNetwork(o) => self.virtual_networks.push(o),
            Object::GatewayHaGroup(o) => self.gateway_ha_groups.push(o),
            Object::VirtualGateway(o) => self.virtual_gateways.push(o),
            Object::ExternalVtep(o) => self.external_vteps.push(o),
            Object::DcGateway(o) => self.dc_gateways.push(o),
            Object::SecurityGroup(o) => self.security_groups.push(o),
            Object::VirtualNetworkPolicy(o) => self.virtual_network_policies.push(o),
        }
    }
}
