//! Every object of every kind at one moment: the whole input of the
//! operator's decisions and of a node's desired state.

use std::collections::BTreeSet;

use crate::object::ObjectKey;
use crate::{
    DcGateway, ExternalVtep, GatewayHaGroup, LogicalInterface, PhysicalRouter, VirtualGateway,
    VirtualMachineInterface, VirtualNetwork,
};

/// Every object of every kind.
///
/// The order of each list does not matter: everything computed from a
/// snapshot depends on the set.
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
            .chain(self.dc_gateways.iter().map(|o| &o.meta));
        metas
            .filter(|m| m.accepted)
            .map(|m| m.key.clone())
            .collect()
    }
}
