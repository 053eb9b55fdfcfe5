//! A VLAN of a port of a gateway node, bound to the VMI of the remote
//! instance behind it.

use trunkline_api::logical_interface::LogicalInterfaceType;

use crate::from_api;
use crate::object::{Kind, Meta, NamespacedName};

/// A (router, interface, VLAN) bound to a VMI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogicalInterface {
    /// Identity (cluster-scoped); its age orders logical interfaces
    /// claiming the same VLAN.
    pub meta: Meta,
    /// The PhysicalRouter (node).
    pub physical_router: String,
    /// The port on that node.
    pub physical_interface: String,
    /// VLAN id, 0 for untagged.
    pub vlan: u16,
    /// Bridged and routed (`L2`) or routed only (`L3`).
    pub interface_type: InterfaceType,
    /// The bound VMI.
    pub vmi: NamespacedName,
}

/// How frames of a logical interface are handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InterfaceType {
    /// Bridged or routed in the VMI's network.
    #[default]
    L2,
    /// Routed only.
    L3,
}

impl LogicalInterface {
    /// Converts the API object (see [`crate::from_api`]).
    pub fn from_api(li: &trunkline_api::LogicalInterface) -> Self {
        let conditions = li.status.as_ref().map(|s| &s.conditions[..]);
        LogicalInterface {
            meta: from_api::meta(
                Kind::LogicalInterface,
                &li.metadata,
                conditions.unwrap_or_default(),
            ),
            physical_router: li.spec.physical_router.as_str().to_owned(),
            physical_interface: li.spec.physical_interface.as_str().to_owned(),
            vlan: li.spec.vlan,
            interface_type: match li.spec.interface_type {
                LogicalInterfaceType::L2 => InterfaceType::L2,
                LogicalInterfaceType::L3 => InterfaceType::L3,
            },
            vmi: NamespacedName::new(
                li.spec.virtual_machine_interface.namespace.as_str(),
                li.spec.virtual_machine_interface.name.as_str(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logical_interface_reads_its_binding_and_verdict() {
        let li: trunkline_api::LogicalInterface = serde_json::from_value(serde_json::json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
            "metadata": {"name": "li1", "generation": 2, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"physicalRouter": "gw-1", "physicalInterface": "eth1", "vlan": 100, "type": "L3",
                     "virtualMachineInterface": {"namespace": "t", "name": "vmi1"}},
            "status": {"conditions": [{"type": "Accepted", "status": "True", "reason": "Ok", "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 2}]}
        }))
        .unwrap();
        let l = LogicalInterface::from_api(&li);
        assert_eq!(
            (
                l.physical_router.as_str(),
                l.physical_interface.as_str(),
                l.vlan
            ),
            ("gw-1", "eth1", 100)
        );
        assert_eq!(l.interface_type, InterfaceType::L3);
        assert_eq!(l.vmi, NamespacedName::new("t", "vmi1"));
        assert!(l.meta.accepted);
        assert_eq!(l.meta.created, Some(1_767_225_600));
    }
}
