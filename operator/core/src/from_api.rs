//! The boundary: CRD objects of `trunkline-api` into the domain model,
//! read once, so that the rules never see Kubernetes types.
//!
//! Values the schema should have refused (an unparsable address) do not
//! fail the conversion: they become `defects` on the object, reported as
//! `Accepted=False` with reason `Invalid`, and the rest of the object is
//! still decided.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use trunkline_api::{
    GatewayHAGroup, LogicalInterface as ApiLogicalInterface, PhysicalRouter as ApiPhysicalRouter,
    VirtualGateway as ApiVirtualGateway, VirtualMachineInterface as ApiVmi,
    VirtualNetwork as ApiVirtualNetwork,
};

use crate::model::{
    GatewayHaGroup, HaMember, Kind, LogicalInterface, Meta, NamespacedName, ObjectKey,
    PhysicalRouter, ProgrammedObject, Subnet, VirtualGateway, VirtualMachineInterface,
    VirtualNetwork,
};
use crate::net::{IpPrefix, normalise_mac, parse_ip};

fn meta(kind: Kind, m: &ObjectMeta) -> Meta {
    let name = m.name.clone().unwrap_or_default();
    let key = match (kind.is_namespaced(), &m.namespace) {
        (true, Some(ns)) => ObjectKey::namespaced(kind, ns.clone(), name),
        (true, None) => ObjectKey::namespaced(kind, String::new(), name),
        (false, _) => ObjectKey::cluster(kind, name),
    };
    Meta {
        key,
        created: m.creation_timestamp.as_ref().map(|t| t.0.as_second()),
        generation: m.generation.unwrap_or(0),
    }
}

/// A PhysicalRouter, with its dataplane's `status.programmed` report.
pub fn physical_router(router: &ApiPhysicalRouter) -> PhysicalRouter {
    let programmed = router
        .status
        .iter()
        .flat_map(|s| s.programmed.iter())
        .filter_map(|p| {
            let kind = Kind::from_name(&p.kind)?;
            let key = match (&p.namespace, kind.is_namespaced()) {
                (Some(ns), true) => ObjectKey::namespaced(kind, ns.clone(), p.name.clone()),
                (None, false) => ObjectKey::cluster(kind, p.name.clone()),
                // A report that does not match the kind's scope names nothing.
                _ => return None,
            };
            Some(ProgrammedObject {
                key,
                generation: p.generation,
            })
        })
        .collect();
    PhysicalRouter {
        meta: meta(Kind::PhysicalRouter, &router.metadata),
        interfaces: router
            .spec
            .physical_interfaces
            .iter()
            .map(|i| i.name.as_str().to_owned())
            .collect(),
        interface_limit: router.spec.interface_limit,
        programmed,
    }
}

/// A LogicalInterface.
pub fn logical_interface(li: &ApiLogicalInterface) -> LogicalInterface {
    LogicalInterface {
        meta: meta(Kind::LogicalInterface, &li.metadata),
        physical_router: li.spec.physical_router.as_str().to_owned(),
        physical_interface: li.spec.physical_interface.as_str().to_owned(),
        vlan: li.spec.vlan,
        vmi: NamespacedName::new(
            li.spec.virtual_machine_interface.namespace.as_str(),
            li.spec.virtual_machine_interface.name.as_str(),
        ),
    }
}

/// A VirtualMachineInterface; unreadable MAC or addresses become defects.
pub fn virtual_machine_interface(vmi: &ApiVmi) -> VirtualMachineInterface {
    let mut defects = Vec::new();
    let mac = match normalise_mac(vmi.spec.mac_address.as_str()) {
        Ok(mac) => Some(mac),
        Err(e) => {
            defects.push(format!("spec.macAddress: {e}"));
            None
        }
    };
    let mut ips = Vec::new();
    for ip in &vmi.spec.ips {
        match parse_ip(ip.address.as_str()) {
            Ok(ip) => ips.push(ip),
            Err(e) => defects.push(format!("spec.ips: {e}")),
        }
    }
    VirtualMachineInterface {
        meta: meta(Kind::VirtualMachineInterface, &vmi.metadata),
        network: vmi.spec.virtual_network.as_str().to_owned(),
        mac,
        ips,
        defects,
    }
}

/// A VirtualNetwork, with `status.vni` as the VNI it runs with.
pub fn virtual_network(network: &ApiVirtualNetwork) -> VirtualNetwork {
    let mut defects = Vec::new();
    let mut subnets = Vec::new();
    for subnet in &network.spec.subnets {
        let prefix = match subnet.cidr.as_str().parse::<IpPrefix>() {
            Ok(p) => p,
            Err(e) => {
                defects.push(format!("spec.subnets: {e}"));
                continue;
            }
        };
        let gateway = match &subnet.gateway {
            None => prefix.first_host(),
            Some(g) => match parse_ip(g.as_str()) {
                Ok(g) => g,
                Err(e) => {
                    defects.push(format!("spec.subnets[{prefix}].gateway: {e}"));
                    continue;
                }
            },
        };
        subnets.push(Subnet { prefix, gateway });
    }
    VirtualNetwork {
        meta: meta(Kind::VirtualNetwork, &network.metadata),
        subnets,
        vni: network.spec.vni,
        vni_in_use: network.status.as_ref().and_then(|s| s.vni),
        routing_instance: network.spec.routing_instance.clone(),
        defects,
    }
}

/// A GatewayHAGroup.
pub fn gateway_ha_group(group: &GatewayHAGroup) -> GatewayHaGroup {
    GatewayHaGroup {
        meta: meta(Kind::GatewayHAGroup, &group.metadata),
        members: group
            .spec
            .members
            .iter()
            .map(|m| HaMember {
                physical_router: m.physical_router.as_str().to_owned(),
                physical_interface: m.physical_interface.as_str().to_owned(),
            })
            .collect(),
        bpdu_network: group
            .spec
            .bpdu_network
            .as_ref()
            .map(|n| NamespacedName::new(n.namespace.as_str(), n.name.as_str())),
    }
}

/// A VirtualGateway; unreadable subnets become defects.
pub fn virtual_gateway(gateway: &ApiVirtualGateway) -> VirtualGateway {
    let mut defects = Vec::new();
    let mut subnets = Vec::new();
    for subnet in &gateway.spec.subnets {
        match subnet.as_str().parse::<IpPrefix>() {
            Ok(p) => subnets.push(p),
            Err(e) => defects.push(format!("spec.subnets: {e}")),
        }
    }
    VirtualGateway {
        meta: meta(Kind::VirtualGateway, &gateway.metadata),
        interface: gateway.spec.interface.as_str().to_owned(),
        network: NamespacedName::new(
            gateway.spec.virtual_network.namespace.as_str(),
            gateway.spec.virtual_network.name.as_str(),
        ),
        subnets,
        nodes: gateway
            .spec
            .nodes
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect::<BTreeSet<_>>(),
        defects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use trunkline_api::physical_router::ProgrammedObject as ApiProgrammed;
    use trunkline_api::{
        MacAddress, NamespacedRef, PhysicalRouterSpec, PhysicalRouterStatus,
        VirtualMachineInterfaceSpec, VirtualNetworkSpec,
    };

    #[test]
    fn a_network_reads_its_gateway_default_and_running_vni() {
        let mut vn = ApiVirtualNetwork::new(
            "net1",
            VirtualNetworkSpec {
                subnets: vec![trunkline_api::virtual_network::Subnet {
                    cidr: "10.0.0.0/24".into(),
                    gateway: None,
                }],
                vni: None,
                forwarding_mode: Default::default(),
                routing_instance: None,
                flood_unknown_unicast: false,
            },
        );
        vn.metadata.namespace = Some("t1".into());
        vn.metadata.generation = Some(3);
        vn.metadata.creation_timestamp = Some(Time("2026-01-01T00:00:10Z".parse().unwrap()));
        vn.status = Some(trunkline_api::VirtualNetworkStatus {
            vni: Some(4100),
            ..Default::default()
        });
        let n = virtual_network(&vn);
        assert_eq!(
            n.meta.key,
            ObjectKey::namespaced(Kind::VirtualNetwork, "t1", "net1")
        );
        assert_eq!(n.meta.generation, 3);
        assert_eq!(n.meta.created, Some(1_767_225_610));
        assert_eq!(n.subnets[0].gateway.to_string(), "10.0.0.1");
        assert_eq!(n.vni_in_use, Some(4100));
        assert_eq!(
            n.effective_routing_instance(),
            "default-domain:t1:net1:net1"
        );
    }

    #[test]
    fn a_vmi_normalises_its_mac_and_reports_unreadable_values() {
        let mut vmi = ApiVmi::new(
            "vmi1",
            VirtualMachineInterfaceSpec {
                virtual_network: "net1".into(),
                mac_address: MacAddress("02-AA-00-00-00-01".into()),
                ips: vec![trunkline_api::virtual_machine_interface::InstanceIp {
                    address: "not-an-ip".into(),
                    mode: Default::default(),
                }],
                allowed_address_pairs: vec![],
                port_security: true,
            },
        );
        vmi.metadata.namespace = Some("t1".into());
        let v = virtual_machine_interface(&vmi);
        assert_eq!(v.mac.as_deref(), Some("02:aa:00:00:00:01"));
        assert!(v.ips.is_empty());
        assert_eq!(v.defects.len(), 1, "{:?}", v.defects);
        let _ = NamespacedRef {
            namespace: "t1".into(),
            name: "vmi1".into(),
        };
    }

    #[test]
    fn a_router_report_is_read_by_kind_and_scope() {
        let mut pr = ApiPhysicalRouter::new(
            "gw-1",
            PhysicalRouterSpec {
                physical_interfaces: vec![],
                fabric: None,
                interface_limit: 10,
            },
        );
        let report = |kind: &str, namespace: Option<&str>| ApiProgrammed {
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: "x".into(),
            generation: 2,
        };
        pr.status = Some(PhysicalRouterStatus {
            programmed: vec![
                report("LogicalInterface", None),
                report("VirtualNetwork", Some("t1")),
                report("VirtualNetwork", None),
                report("Pod", Some("t1")),
            ],
            ..Default::default()
        });
        let r = physical_router(&pr);
        assert_eq!(r.programmed.len(), 2);
        assert_eq!(r.interface_limit, 10);
    }
}
