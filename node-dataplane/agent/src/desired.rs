//! What one node must enforce, from the objects the operator accepted: pure
//! (no I/O), so it is tested on plain objects.
//!
//! ```text
//!  PhysicalRouter <node>  --> ports (spec.physicalInterfaces, in order)
//!  LogicalInterface (router = node, Accepted for its generation)
//!     --> VirtualMachineInterface (Accepted) --> VirtualNetwork (Accepted)
//!  ==> Desired { ports, config: pipeline NodeConfig, programmed }
//! ```
//!
//! The operator decides what is valid across objects; the agent only takes
//! objects whose `Accepted` condition is true for their current generation:
//! an invalid object is never programmed, and a changed one is left out
//! until the operator has accepted its new generation (a fraction of a
//! second when the operator runs).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use trunkline_api::physical_router::ProgrammedObject;
use trunkline_api::status::{Condition, condition};
use trunkline_api::{
    LogicalInterface, PhysicalRouter, VirtualGateway, VirtualMachineInterface, VirtualNetwork,
};
use trunkline_pipeline::config::{
    AllowedAddressPair, CreationOrder, IpPrefix, LogicalInterfaceConfig, NetworkConfig,
    NextHopConfig, NodeConfig, PortConfig, PortId, PortKind, RouteConfig, SubnetConfig, VmiConfig,
};

use crate::hostnet::{VgwSpec, interface_mac};

/// A port of the node: a trunk (physical interface) or a virtual gateway's
/// tap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// Linux interface name.
    pub name: String,
    /// A tap this agent creates (a virtual gateway), not a NIC.
    pub tap: bool,
}

/// The first address after the network address: the default gateway.
pub fn first_host(prefix: &IpPrefix) -> IpAddr {
    match prefix.addr() {
        IpAddr::V4(a) => IpAddr::V4(u32::from(a).wrapping_add(1).into()),
        IpAddr::V6(a) => IpAddr::V6(u128::from(a).wrapping_add(1).into()),
    }
}

/// Everything one node enforces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// The node's ports: trunks in the router's order, then virtual
    /// gateway taps; the index of a port is its [`PortId`].
    pub ports: Vec<PortSpec>,
    /// The node's virtual gateways, each with its object for the report
    /// (reported programmed only once its host side is in place).
    pub virtual_gateways: Vec<(VgwSpec, ProgrammedObject)>,
    /// The tables' input.
    pub config: NodeConfig,
    /// Every object in `config` with its generation, for the router's status.
    pub programmed: Vec<ProgrammedObject>,
    /// Objects of this node left out, and why (for logs).
    pub skipped: Vec<String>,
}

/// The objects one node's agent sees.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The node (and PhysicalRouter) name.
    pub node: &'a str,
    /// The node's PhysicalRouter, when it exists.
    pub router: Option<&'a PhysicalRouter>,
    /// Every logical interface.
    pub logical_interfaces: &'a [&'a LogicalInterface],
    /// Every VMI.
    pub vmis: &'a [&'a VirtualMachineInterface],
    /// Every virtual network.
    pub networks: &'a [&'a VirtualNetwork],
    /// Every virtual gateway.
    pub virtual_gateways: &'a [&'a VirtualGateway],
}

/// Whether the operator accepted this generation of an object.
pub fn accepted(conditions: &[Condition], generation: Option<i64>) -> bool {
    conditions.iter().any(|c| {
        c.type_ == condition::ACCEPTED
            && c.status == "True"
            && (c.observed_generation.is_none() || c.observed_generation == generation)
    })
}

/// Parses `aa:bb:cc:dd:ee:ff` (or `-` separated, any case).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split([':', '-']);
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn key(namespace: Option<&str>, name: Option<&str>) -> String {
    format!(
        "{}/{}",
        namespace.unwrap_or_default(),
        name.unwrap_or_default()
    )
}

fn programmed(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    generation: Option<i64>,
) -> ProgrammedObject {
    ProgrammedObject {
        kind: kind.to_owned(),
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
        generation: generation.unwrap_or_default(),
    }
}

/// Computes what the node must enforce.
pub fn desired(inputs: Inputs<'_>) -> Desired {
    let mut out = Desired::default();
    let Some(router) = inputs.router else {
        out.skipped.push(format!(
            "no PhysicalRouter named {}: nothing to enforce",
            inputs.node
        ));
        return out;
    };
    out.ports = router
        .spec
        .physical_interfaces
        .iter()
        .map(|p| PortSpec {
            name: p.name.to_string(),
            tap: false,
        })
        .collect();
    out.config.ports = out
        .ports
        .iter()
        .enumerate()
        .map(|(i, port)| PortConfig {
            id: PortId(i as u16),
            name: port.name.clone(),
            kind: PortKind::Gateway,
        })
        .collect();

    let vmis: BTreeMap<String, &VirtualMachineInterface> = inputs
        .vmis
        .iter()
        .map(|v| {
            (
                key(v.metadata.namespace.as_deref(), v.metadata.name.as_deref()),
                *v,
            )
        })
        .collect();
    let networks: BTreeMap<String, &VirtualNetwork> = inputs
        .networks
        .iter()
        .map(|n| {
            (
                key(n.metadata.namespace.as_deref(), n.metadata.name.as_deref()),
                *n,
            )
        })
        .collect();

    let mut used_vmis = BTreeSet::new();
    let mut lis: Vec<LogicalInterfaceConfig> = Vec::new();
    for li in inputs
        .logical_interfaces
        .iter()
        .filter(|li| li.spec.physical_router.as_str() == inputs.node)
    {
        let name = li.metadata.name.clone().unwrap_or_default();
        let status = li.status.as_ref();
        if !accepted(
            status.map(|s| &s.conditions[..]).unwrap_or_default(),
            li.metadata.generation,
        ) {
            out.skipped.push(format!(
                "LogicalInterface {name}: not accepted (yet) by the operator"
            ));
            continue;
        }
        let Some(port) = out
            .ports
            .iter()
            .position(|p| p.name == li.spec.physical_interface.as_str())
        else {
            out.skipped.push(format!(
                "LogicalInterface {name}: port {} is not on this node",
                li.spec.physical_interface
            ));
            continue;
        };
        let vmi_key = li.spec.virtual_machine_interface.to_string();
        let Some(vmi) = vmis.get(&vmi_key) else {
            out.skipped
                .push(format!("LogicalInterface {name}: VMI {vmi_key} not found"));
            continue;
        };
        if !accepted(
            vmi.status
                .as_ref()
                .map(|s| &s.conditions[..])
                .unwrap_or_default(),
            vmi.metadata.generation,
        ) {
            out.skipped.push(format!(
                "LogicalInterface {name}: VMI {vmi_key} not accepted"
            ));
            continue;
        }
        let network_key = key(
            vmi.metadata.namespace.as_deref(),
            Some(vmi.spec.virtual_network.as_str()),
        );
        let Some(network) = networks.get(&network_key) else {
            out.skipped.push(format!(
                "LogicalInterface {name}: network {network_key} not found"
            ));
            continue;
        };
        if !accepted(
            network
                .status
                .as_ref()
                .map(|s| &s.conditions[..])
                .unwrap_or_default(),
            network.metadata.generation,
        ) {
            out.skipped.push(format!(
                "LogicalInterface {name}: network {network_key} not accepted"
            ));
            continue;
        }
        used_vmis.insert(vmi_key.clone());
        let created = li
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
            .unwrap_or_default();
        lis.push(LogicalInterfaceConfig {
            key: name.clone(),
            port: PortId(port as u16),
            vlan: li.spec.vlan,
            vmi: vmi_key,
            order: CreationOrder {
                created_secs: created,
                name: name.clone(),
            },
        });
        out.programmed.push(programmed(
            "LogicalInterface",
            None,
            &name,
            li.metadata.generation,
        ));
    }
    lis.sort_by(|a, b| a.order.cmp(&b.order));
    out.config.logical_interfaces = lis;

    let mut used_networks = BTreeSet::new();
    for vmi_key in &used_vmis {
        let vmi = vmis[vmi_key];
        let network = key(
            vmi.metadata.namespace.as_deref(),
            Some(vmi.spec.virtual_network.as_str()),
        );
        let Some(mac) = parse_mac(vmi.spec.mac_address.as_str()) else {
            out.skipped.push(format!("VMI {vmi_key}: unparsable MAC"));
            continue;
        };
        out.config.vmis.push(VmiConfig {
            key: vmi_key.clone(),
            network: network.clone(),
            mac,
            ips: vmi
                .spec
                .ips
                .iter()
                .filter_map(|ip| ip.address.as_str().parse().ok())
                .collect(),
            allowed_address_pairs: vmi
                .spec
                .allowed_address_pairs
                .iter()
                .filter_map(|p| {
                    let prefix: IpPrefix = p.prefix.as_str().parse().ok()?;
                    Some(AllowedAddressPair {
                        prefix,
                        mac: p.mac_address.as_ref().and_then(|m| parse_mac(m.as_str())),
                    })
                })
                .collect(),
            port_security: vmi.spec.port_security,
            label: None,
        });
        out.programmed.push(programmed(
            "VirtualMachineInterface",
            vmi.metadata.namespace.as_deref(),
            vmi.metadata.name.as_deref().unwrap_or_default(),
            vmi.metadata.generation,
        ));
        used_networks.insert(network);
    }

    virtual_gateways(&inputs, &networks, &mut out, &mut used_networks);

    for (index, network_key) in used_networks.iter().enumerate() {
        let network = networks[network_key];
        let subnets = network
            .spec
            .subnets
            .iter()
            .filter_map(|s| {
                let prefix: IpPrefix = s.cidr.as_str().parse().ok()?;
                let gateway = match &s.gateway {
                    Some(g) => g.as_str().parse().ok()?,
                    None => first_host(&prefix),
                };
                Some(SubnetConfig { prefix, gateway })
            })
            .collect();
        out.config.networks.push(NetworkConfig {
            key: network_key.clone(),
            vrf: index as u32 + 1,
            subnets,
            ..Default::default()
        });
        out.programmed.push(programmed(
            "VirtualNetwork",
            network.metadata.namespace.as_deref(),
            network.metadata.name.as_deref().unwrap_or_default(),
            network.metadata.generation,
        ));
    }
    out.programmed.sort();
    out
}

/// Adds the accepted virtual gateways of the node: a host port attached to
/// the network's VRF, the VRF's routes toward it, and the host side to set
/// up.
fn virtual_gateways(
    inputs: &Inputs<'_>,
    networks: &BTreeMap<String, &VirtualNetwork>,
    out: &mut Desired,
    used_networks: &mut BTreeSet<String>,
) {
    let mut gateways: Vec<&&VirtualGateway> = inputs.virtual_gateways.iter().collect();
    gateways.sort_by_key(|g| {
        (
            g.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
            g.metadata.name.clone(),
        )
    });
    for vgw in gateways {
        let name = vgw.metadata.name.clone().unwrap_or_default();
        if !vgw.spec.nodes.iter().any(|n| n.as_str() == inputs.node) {
            continue;
        }
        if !accepted(
            vgw.status
                .as_ref()
                .map(|s| &s.conditions[..])
                .unwrap_or_default(),
            vgw.metadata.generation,
        ) {
            out.skipped.push(format!(
                "VirtualGateway {name}: not accepted (yet) by the operator"
            ));
            continue;
        }
        let interface = vgw.spec.interface.to_string();
        if out.ports.iter().any(|p| p.name == interface) {
            out.skipped.push(format!(
                "VirtualGateway {name}: interface {interface} is already a port of this node"
            ));
            continue;
        }
        let network = vgw.spec.virtual_network.to_string();
        let network_ok = networks.get(&network).is_some_and(|n| {
            accepted(
                n.status
                    .as_ref()
                    .map(|s| &s.conditions[..])
                    .unwrap_or_default(),
                n.metadata.generation,
            )
        });
        if !network_ok {
            out.skipped.push(format!(
                "VirtualGateway {name}: network {network} not found or not accepted"
            ));
            continue;
        }
        let subnets: Vec<IpPrefix> = vgw
            .spec
            .subnets
            .iter()
            .filter_map(|s| s.as_str().parse().ok())
            .collect();
        let id = PortId(out.ports.len() as u16);
        let mac = interface_mac(&interface);
        out.ports.push(PortSpec {
            name: interface.clone(),
            tap: true,
        });
        out.config.ports.push(PortConfig {
            id,
            name: interface.clone(),
            kind: PortKind::Host {
                network: network.clone(),
                peer_mac: mac,
            },
        });
        let routes: Vec<IpPrefix> = if vgw.spec.routes.is_empty() {
            // The seed's default: a default route per family in use.
            let mut defaults = Vec::new();
            if subnets.iter().any(|s| s.addr().is_ipv4()) {
                defaults.push(
                    IpPrefix::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0).expect("valid"),
                );
            }
            if subnets.iter().any(|s| s.addr().is_ipv6()) {
                defaults.push(
                    IpPrefix::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0).expect("valid"),
                );
            }
            defaults
        } else {
            vgw.spec
                .routes
                .iter()
                .filter_map(|r| r.as_str().parse().ok())
                .collect()
        };
        for prefix in routes {
            out.config.routes.push(RouteConfig {
                network: network.clone(),
                prefix,
                next_hop: NextHopConfig::Port(id),
            });
        }
        used_networks.insert(network);
        out.virtual_gateways.push((
            VgwSpec {
                name: name.clone(),
                interface,
                mac,
                subnets,
            },
            programmed("VirtualGateway", None, &name, vgw.metadata.generation),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn accepted_status(generation: i64) -> serde_json::Value {
        json!({"conditions": [{"type": "Accepted", "status": "True", "reason": "Ok", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation}]})
    }

    fn objects() -> (
        PhysicalRouter,
        Vec<LogicalInterface>,
        Vec<VirtualMachineInterface>,
        Vec<VirtualNetwork>,
    ) {
        let router = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
            "metadata": {"name": "gw1", "generation": 1},
            "spec": {"physicalInterfaces": [{"name": "eth1"}, {"name": "eth2"}]}
        }))
        .expect("router");
        let li = |name: &str,
                  node: &str,
                  port: &str,
                  vlan: u16,
                  vmi: &str,
                  accepted: bool|
         -> LogicalInterface {
            let mut li = json!({
                "apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
                "metadata": {"name": name, "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"physicalRouter": node, "physicalInterface": port, "vlan": vlan,
                         "virtualMachineInterface": {"namespace": "t", "name": vmi}}
            });
            if accepted {
                li["status"] = accepted_status(1);
            }
            serde_json::from_value(li).expect("li")
        };
        let lis = vec![
            li("a", "gw1", "eth1", 100, "bms-1", true),
            li("b", "gw1", "eth2", 200, "bms-2", true),
            li("c", "gw2", "eth1", 300, "bms-1", true),
            li("d", "gw1", "eth1", 400, "bms-1", false),
            li("e", "gw1", "eth9", 500, "bms-1", true),
        ];
        let vmi = |name: &str, mac: &str, ip: &str| -> VirtualMachineInterface {
            serde_json::from_value(json!({
                "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
                "metadata": {"name": name, "namespace": "t", "generation": 3},
                "spec": {"virtualNetwork": "net1", "macAddress": mac, "ips": [{"address": ip}]},
                "status": accepted_status(3)
            }))
            .expect("vmi")
        };
        let vmis = vec![
            vmi("bms-1", "02-00-00-00-01-01", "192.168.1.10"),
            vmi("bms-2", "02:00:00:00:02:01", "192.168.1.20"),
        ];
        let network = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": "net1", "namespace": "t", "generation": 2},
            "spec": {"subnets": [{"cidr": "192.168.1.0/24"}]},
            "status": accepted_status(2)
        }))
        .expect("network");
        (router, lis, vmis, vec![network])
    }

    #[test]
    fn takes_the_accepted_objects_of_this_node_only() {
        let (router, lis, vmis, networks) = objects();
        let lis: Vec<&LogicalInterface> = lis.iter().collect();
        let vmis: Vec<&VirtualMachineInterface> = vmis.iter().collect();
        let networks: Vec<&VirtualNetwork> = networks.iter().collect();
        let d = desired(Inputs {
            node: "gw1",
            router: Some(&router),
            logical_interfaces: &lis,
            vmis: &vmis,
            networks: &networks,
            virtual_gateways: &[],
        });
        let ports: Vec<&str> = d.ports.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(ports, ["eth1", "eth2"]);
        let names: Vec<&str> = d
            .config
            .logical_interfaces
            .iter()
            .map(|l| l.key.as_str())
            .collect();
        assert_eq!(
            names,
            ["a", "b"],
            "c is another node's, d not accepted, e on a port the node lacks"
        );
        assert_eq!(d.config.logical_interfaces[1].port, PortId(1));
        assert_eq!(d.config.vmis.len(), 2);
        assert_eq!(d.config.vmis[0].mac, [2, 0, 0, 0, 1, 1]);
        assert_eq!(d.config.networks.len(), 1);
        assert_eq!(
            d.config.networks[0].subnets[0].gateway,
            "192.168.1.1".parse::<IpAddr>().unwrap(),
            "default gateway"
        );
        assert_eq!(d.programmed.len(), 5);
        assert!(
            d.programmed
                .iter()
                .any(|p| p.kind == "VirtualMachineInterface" && p.generation == 3)
        );
        assert_eq!(d.skipped.len(), 2);
    }

    #[test]
    fn a_stale_acceptance_does_not_count() {
        let (router, mut lis, vmis, networks) = objects();
        lis[0].metadata.generation = Some(2);
        let lis: Vec<&LogicalInterface> = lis.iter().collect();
        let vmis: Vec<&VirtualMachineInterface> = vmis.iter().collect();
        let networks: Vec<&VirtualNetwork> = networks.iter().collect();
        let d = desired(Inputs {
            node: "gw1",
            router: Some(&router),
            logical_interfaces: &lis,
            vmis: &vmis,
            networks: &networks,
            virtual_gateways: &[],
        });
        assert!(d.config.logical_interfaces.iter().all(|l| l.key != "a"));
    }

    #[test]
    fn no_router_no_state() {
        let d = desired(Inputs {
            node: "gw1",
            router: None,
            logical_interfaces: &[],
            vmis: &[],
            networks: &[],
            virtual_gateways: &[],
        });
        assert!(d.ports.is_empty() && d.config.logical_interfaces.is_empty());
    }

    #[test]
    fn parses_macs_and_prefixes() {
        assert_eq!(
            parse_mac("0A:bb:cc:dd:ee:FF"),
            Some([10, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
        );
        assert_eq!(parse_mac("0a:bb:cc:dd:ee"), None);
        assert_eq!(parse_mac("0a:bb:cc:dd:ee:ff:00"), None);
        let p: IpPrefix = "10.0.0.0/8".parse().unwrap();
        assert_eq!(first_host(&p), "10.0.0.1".parse::<IpAddr>().unwrap());
        let p: IpPrefix = "fd00::/64".parse().unwrap();
        assert_eq!(first_host(&p), "fd00::1".parse::<IpAddr>().unwrap());
    }
}
