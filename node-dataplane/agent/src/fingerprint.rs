//! What a build of the compile loop reads of one API object, as a hash:
//! the object converted to its domain type (all a build ever reads),
//! without its resource version, and for a PhysicalRouter without the
//! reports of its node (no build reads them). An event that leaves it
//! unchanged (the operator's status write of conditions no node reads, a
//! node's own report) moves the watermarks but needs no build.
//!
//! ```text
//!  watch event --> from_api --> clear changed_at (and a router's reports) --> hash
//!      same hash as the object's last one: watermarks only
//!      else (or a deletion, or a relist): build
//! ```

use std::collections::hash_map::DefaultHasher;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};

use trunkline_model::from_api;

fn hash(converted: &impl Debug) -> u64 {
    let mut hasher = DefaultHasher::new();
    format!("{converted:?}").hash(&mut hasher);
    hasher.finish()
}

/// Fingerprint of a kind whose domain object has a `meta`.
macro_rules! fingerprint {
    ($(#[$doc:meta] $name:ident: $api:ty => $convert:path;)*) => {
        $(
            #[$doc]
            pub fn $name(object: &$api) -> u64 {
                let mut converted = $convert(object);
                converted.meta.changed_at = None;
                hash(&converted)
            }
        )*
    };
}

fingerprint! {
    /// A LogicalInterface.
    logical_interface: trunkline_api::LogicalInterface => from_api::logical_interface;
    /// A VirtualMachineInterface.
    virtual_machine_interface: trunkline_api::VirtualMachineInterface => from_api::virtual_machine_interface;
    /// A VirtualNetwork.
    virtual_network: trunkline_api::VirtualNetwork => from_api::virtual_network;
    /// A VirtualGateway.
    virtual_gateway: trunkline_api::VirtualGateway => from_api::virtual_gateway;
    /// An ExternalVTEP.
    external_vtep: trunkline_api::ExternalVTEP => from_api::external_vtep;
    /// A GatewayHAGroup.
    gateway_ha_group: trunkline_api::GatewayHAGroup => from_api::gateway_ha_group;
    /// A DCGateway.
    dc_gateway: trunkline_api::DCGateway => from_api::dc_gateway;
    /// A SecurityGroup.
    security_group: trunkline_api::SecurityGroup => from_api::security_group;
    /// A VirtualNetworkPolicy.
    virtual_network_policy: trunkline_api::VirtualNetworkPolicy => from_api::virtual_network_policy;
    /// A ClusterVirtualNetworkPolicy.
    cluster_virtual_network_policy: trunkline_api::ClusterVirtualNetworkPolicy => from_api::cluster_virtual_network_policy;
}

/// A PhysicalRouter, without what its node reports (`status.report`-like
/// watermarks and exceptions, its HA groups' states): each node's report
/// would otherwise wake every node's build.
pub fn physical_router(object: &trunkline_api::PhysicalRouter) -> u64 {
    let mut converted = from_api::physical_router(object);
    converted.meta.changed_at = None;
    converted.report = Default::default();
    converted.ha_reports.clear();
    hash(&converted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vmi(status: serde_json::Value, rv: &str) -> trunkline_api::VirtualMachineInterface {
        vmi_at("10.0.0.2", status, rv)
    }

    fn vmi_at(
        ip: &str,
        status: serde_json::Value,
        rv: &str,
    ) -> trunkline_api::VirtualMachineInterface {
        serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": {"name": "a", "namespace": "t", "generation": 2, "resourceVersion": rv,
                         "labels": {"node.trunkline.io/gw1": "g2"}},
            "spec": {"virtualNetwork": "net1", "macAddress": "02:00:00:00:00:01",
                     "ips": [{"address": ip}]},
            "status": status
        }))
        .expect("a VMI")
    }

    fn condition(type_: &str, status: &str) -> serde_json::Value {
        json!({"type": type_, "status": status, "reason": "Ok", "message": "",
               "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 2})
    }

    /// The operator's Programmed and Ready conditions are not read by any
    /// build; acceptance, the label and the spec are.
    #[test]
    fn a_status_write_no_build_reads_keeps_the_fingerprint() {
        let accepted = json!({"conditions": [condition("Accepted", "True")], "mplsLabel": 20});
        let mut programmed = accepted.clone();
        programmed["conditions"]
            .as_array_mut()
            .unwrap()
            .extend([condition("Programmed", "True"), condition("Ready", "True")]);
        let before = virtual_machine_interface(&vmi(accepted.clone(), "10"));
        assert_eq!(
            before,
            virtual_machine_interface(&vmi(programmed, "11")),
            "a later resource version with conditions no build reads"
        );
        let refused = json!({"conditions": [condition("Accepted", "False")], "mplsLabel": 20});
        assert_ne!(before, virtual_machine_interface(&vmi(refused, "12")));
        let relabelled = json!({"conditions": [condition("Accepted", "True")], "mplsLabel": 21});
        assert_ne!(before, virtual_machine_interface(&vmi(relabelled, "13")));
        let moved = vmi_at("10.0.0.3", accepted, "14");
        assert_ne!(before, virtual_machine_interface(&moved));
    }

    /// A node's report (its watermarks) does not wake the builds; its
    /// fabric address, which peers tunnel to, does.
    #[test]
    fn a_routers_report_is_not_part_of_it() {
        let router = |underlay: &str, status: serde_json::Value| -> trunkline_api::PhysicalRouter {
            serde_json::from_value(json!({
                "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
                "metadata": {"name": "gw2", "generation": 1},
                "spec": {"physicalInterfaces": [{"name": "eth1"}],
                         "fabric": {"interface": "eth0", "underlayAddress": underlay}},
                "status": status
            }))
            .expect("a router")
        };
        let one = physical_router(&router("10.10.0.2", json!({"programmedGeneration": 3})));
        let other = physical_router(&router("10.10.0.2", json!({"programmedGeneration": 4})));
        assert_eq!(one, other);
        let moved = router("10.10.0.3", json!({"programmedGeneration": 4}));
        assert_ne!(one, physical_router(&moved));
    }
}
