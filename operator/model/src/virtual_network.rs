//! An overlay network: its subnets with their gateways, its VNI and its
//! routing instance (VRF).

use std::net::{IpAddr, Ipv4Addr};

use trunkline_api::virtual_network::{
    DhcpMode as ApiDhcpMode, FabricExit as ApiFabricExit, ForwardingMode as ApiForwardingMode,
};
use trunkline_wire::IpPrefix;

use crate::encapsulation::{DEFAULT_ENCAPSULATION_PRIORITY, Encapsulation};
use crate::from_api::{self, read};
use crate::object::{Kind, Meta, NamespacedName};

/// An overlay network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualNetwork {
    /// Identity (namespaced).
    pub meta: Meta,
    /// Subnets that could be read, with their gateway resolved.
    pub subnets: Vec<Subnet>,
    /// `spec.vni`: the VNI the user asks for.
    pub vni: Option<u32>,
    /// `status.vni`: the VNI in use before, kept when still free so that a
    /// running network never changes VNI.
    pub vni_in_use: Option<u32>,
    /// Bridged and routed, bridged only, or routed only.
    pub forwarding_mode: ForwardingMode,
    /// Whether frames to unknown unicast MACs are flooded.
    pub flood_unknown_unicast: bool,
    /// `spec.routingInstance`.
    pub routing_instance: Option<String>,
    /// `spec.encapsulation`: the priority list the user asks for; `None`:
    /// the operator's cluster default.
    pub encapsulation: Option<Vec<Encapsulation>>,
    /// `status.encapsulation`: the list in effect, as the operator decided.
    pub encapsulation_in_use: Vec<Encapsulation>,
    /// `status.mplsLabel`: the label of the network's bridged and flooded
    /// traffic, allocated by the operator (kept while still free).
    pub mpls_label: Option<u32>,
    /// `spec.northSouth`: how the user asks traffic to leave untunneled.
    pub north_south: NorthSouth,
    /// `status.fabricExit`: the exit the operator put in effect.
    pub fabric_exit_in_use: Option<FabricExit>,
    /// `spec.mtu`: the MTU of the network's instances, when declared.
    pub mtu: Option<u16>,
    /// `spec.dhcp`: how the instances get their addresses.
    pub dhcp: Dhcp,
    /// `spec.networkPolicies`: the VirtualNetworkPolicies of its namespace
    /// it is attached to, in order.
    pub network_policies: Vec<String>,
    /// Field values that could not be read.
    pub defects: Vec<String>,
}

/// `spec.northSouth` of a network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NorthSouth {
    /// Distributed SNAT to the nodes' underlay addresses.
    pub snat: bool,
    /// IP fabric forwarding.
    pub ip_fabric_forwarding: bool,
}

/// How a network's traffic leaves the overlay untunneled (seed 004).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FabricExit {
    /// Source NAT to each node's underlay address.
    Snat,
    /// Untranslated onto the fabric.
    IpFabricForwarding,
}

impl FabricExit {
    /// The API spelling (`SNAT`, `IPFabricForwarding`).
    pub fn as_str(self) -> &'static str {
        match self {
            FabricExit::Snat => "SNAT",
            FabricExit::IpFabricForwarding => "IPFabricForwarding",
        }
    }

    /// To the API type.
    pub fn to_api(self) -> ApiFabricExit {
        match self {
            FabricExit::Snat => ApiFabricExit::Snat,
            FabricExit::IpFabricForwarding => ApiFabricExit::IpFabricForwarding,
        }
    }
}

impl NorthSouth {
    /// The exit asked for: SNAT, IP fabric forwarding, or none. (The API
    /// server refuses both; should both come through, SNAT is the one that
    /// exposes nothing of the overlay.)
    pub fn requested(self) -> Option<FabricExit> {
        if self.snat {
            Some(FabricExit::Snat)
        } else if self.ip_fabric_forwarding {
            Some(FabricExit::IpFabricForwarding)
        } else {
            None
        }
    }
}

/// The lease the original gave gateway VMIs: one day.
pub const DEFAULT_LEASE_SECS: u32 = 86_400;

/// How a network's instances get their addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dhcp {
    /// Who answers.
    pub mode: DhcpMode,
    /// Lease time in seconds.
    pub lease_secs: u32,
    /// DNS servers to announce.
    pub dns_servers: Vec<IpAddr>,
    /// The DNS domain to announce.
    pub domain: Option<String>,
    /// PXE: the server to fetch the boot file from.
    pub next_server: Option<Ipv4Addr>,
    /// PXE: the boot file.
    pub boot_file: Option<String>,
}

impl Default for Dhcp {
    fn default() -> Self {
        Dhcp {
            mode: DhcpMode::Server,
            lease_secs: DEFAULT_LEASE_SECS,
            dns_servers: Vec::new(),
            domain: None,
            next_server: None,
            boot_file: None,
        }
    }
}

/// Who answers a network's DHCP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DhcpMode {
    /// The gateway, from each VMI's addresses.
    #[default]
    Server,
    /// Nobody on the gateway.
    Off,
    /// An external server the gateway relays DHCPv4 to.
    Relay(IpAddr),
}

/// One subnet of a network, with its gateway resolved.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    /// The prefix.
    pub prefix: IpPrefix,
    /// The gateway address: given, or the first address of the subnet.
    pub gateway: IpAddr,
}

impl Subnet {
    /// A subnet whose gateway is `gateway`, or else its first address.
    pub fn new(prefix: IpPrefix, gateway: Option<IpAddr>) -> Self {
        Self {
            prefix,
            gateway: gateway.unwrap_or_else(|| prefix.first_host()),
        }
    }
}

/// How a network forwards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ForwardingMode {
    /// Bridge within the network, route across subnets.
    #[default]
    L2L3,
    /// Bridge only.
    L2,
    /// Route only.
    L3,
}

impl VirtualNetwork {
    /// `namespace/name`.
    pub fn name(&self) -> NamespacedName {
        self.meta.namespaced_name()
    }

    /// The routing instance name in use: given, or
    /// `default-domain:<namespace>:<name>:<name>` as in the original.
    pub fn effective_routing_instance(&self) -> String {
        self.routing_instance.clone().unwrap_or_else(|| {
            format!(
                "default-domain:{}:{}:{}",
                self.meta.namespace(),
                self.meta.name(),
                self.meta.name()
            )
        })
    }

    /// The priority list the operator puts in effect: `spec.encapsulation`,
    /// or else the cluster default `default`.
    pub fn effective_encapsulation(&self, default: &[Encapsulation]) -> Vec<Encapsulation> {
        self.encapsulation
            .clone()
            .unwrap_or_else(|| default.to_vec())
    }

    /// The priority list in effect as a node reads it: the operator's
    /// (`status.encapsulation`), or before the operator wrote one,
    /// `spec.encapsulation` or the default.
    pub fn encapsulation_in_effect(&self) -> Vec<Encapsulation> {
        if self.encapsulation_in_use.is_empty() {
            self.effective_encapsulation(&DEFAULT_ENCAPSULATION_PRIORITY)
        } else {
            self.encapsulation_in_use.clone()
        }
    }

    /// Converts the API object (see [`crate::from_api`]), with
    /// `status.vni` as the VNI it runs with; unreadable subnets and
    /// gateways become defects.
    pub fn from_api(network: &trunkline_api::VirtualNetwork) -> Self {
        let mut defects = Vec::new();
        let mut subnets = Vec::new();
        for subnet in &network.spec.subnets {
            let Some(prefix) = read(
                "spec.subnets",
                subnet.cidr.as_str().parse::<IpPrefix>(),
                &mut defects,
            ) else {
                continue;
            };
            let gateway = match &subnet.gateway {
                None => None,
                Some(g) => match read(
                    &format!("spec.subnets[{prefix}].gateway"),
                    from_api::ip(g.as_str()),
                    &mut defects,
                ) {
                    Some(g) => Some(g),
                    None => continue,
                },
            };
            subnets.push(Subnet::new(prefix, gateway));
        }
        let dhcp = read_dhcp(network.spec.dhcp.as_ref(), &mut defects);
        let status = network.status.as_ref();
        VirtualNetwork {
            meta: from_api::meta(
                Kind::VirtualNetwork,
                &network.metadata,
                status.map(|s| &s.conditions[..]).unwrap_or_default(),
            ),
            subnets,
            vni: network.spec.vni,
            vni_in_use: status.and_then(|s| s.vni),
            forwarding_mode: match network.spec.forwarding_mode {
                ApiForwardingMode::L2L3 => ForwardingMode::L2L3,
                ApiForwardingMode::L2 => ForwardingMode::L2,
                ApiForwardingMode::L3 => ForwardingMode::L3,
            },
            flood_unknown_unicast: network.spec.flood_unknown_unicast,
            routing_instance: network.spec.routing_instance.clone(),
            encapsulation: network
                .spec
                .encapsulation
                .as_ref()
                .map(|list| list.iter().copied().map(Encapsulation::from_api).collect()),
            encapsulation_in_use: status
                .iter()
                .flat_map(|s| s.encapsulation.iter().copied().map(Encapsulation::from_api))
                .collect(),
            mpls_label: status.and_then(|s| s.mpls_label),
            north_south: network
                .spec
                .north_south
                .map(|n| NorthSouth {
                    snat: n.snat,
                    ip_fabric_forwarding: n.ip_fabric_forwarding,
                })
                .unwrap_or_default(),
            fabric_exit_in_use: status.and_then(|s| s.fabric_exit).map(|e| match e {
                ApiFabricExit::Snat => FabricExit::Snat,
                ApiFabricExit::IpFabricForwarding => FabricExit::IpFabricForwarding,
            }),
            mtu: network
                .spec
                .mtu
                .and_then(|m| read("spec.mtu", u16::try_from(m), &mut defects)),
            dhcp,
            network_policies: network
                .spec
                .network_policies
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            defects,
        }
    }
}

/// `spec.dhcp`, with unreadable addresses as defects (and left out).
fn read_dhcp(
    spec: Option<&trunkline_api::virtual_network::Dhcp>,
    defects: &mut Vec<String>,
) -> Dhcp {
    let Some(spec) = spec else {
        return Dhcp::default();
    };
    let mode = match spec.mode {
        ApiDhcpMode::Server => DhcpMode::Server,
        ApiDhcpMode::Off => DhcpMode::Off,
        ApiDhcpMode::Relay => match spec
            .relay_server
            .as_ref()
            .and_then(|a| read("spec.dhcp.relayServer", from_api::ip(a.as_str()), defects))
        {
            Some(server) => DhcpMode::Relay(server),
            None => {
                defects.push("spec.dhcp.relayServer: required with mode Relay".to_owned());
                DhcpMode::Off
            }
        },
    };
    let next_server = spec.next_server.as_ref().and_then(|a| {
        match read("spec.dhcp.nextServer", from_api::ip(a.as_str()), defects)? {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => {
                defects.push(format!(
                    "spec.dhcp.nextServer: {a} is not an IPv4 address (PXE fetches the boot file over IPv4)"
                ));
                None
            }
        }
    });
    Dhcp {
        mode,
        lease_secs: spec.lease_seconds.unwrap_or(DEFAULT_LEASE_SECS),
        dns_servers: spec
            .dns_servers
            .iter()
            .filter_map(|a| read("spec.dhcp.dnsServers", from_api::ip(a.as_str()), defects))
            .collect(),
        domain: spec.domain.clone(),
        next_server,
        boot_file: spec.boot_file.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectKey;

    #[test]
    fn a_network_reads_its_gateway_default_and_running_vni() {
        let vn: trunkline_api::VirtualNetwork = serde_json::from_value(serde_json::json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": "net1", "namespace": "t1", "generation": 3,
                         "creationTimestamp": "2026-01-01T00:00:10Z"},
            "spec": {"subnets": [{"cidr": "10.0.0.0/24"}, {"cidr": "fd00::/64", "gateway": "fd00::fe"},
                                 {"cidr": "10.9.0.0/24", "gateway": "x"}, {"cidr": "bad"}],
                     "forwardingMode": "L2", "floodUnknownUnicast": true,
                     "encapsulation": ["VXLAN"], "northSouth": {"snat": true}, "mtu": 1400,
                     "dhcp": {"leaseSeconds": 600, "dnsServers": ["192.0.2.53", "fd00::53"],
                              "domain": "lab.example", "nextServer": "10.0.0.5", "bootFile": "pxelinux.0"}},
            "status": {"vni": 4100, "mplsLabel": 17, "encapsulation": ["VXLAN", "MPLSoUDP"],
                       "fabricExit": "SNAT"}
        }))
        .unwrap();
        let n = VirtualNetwork::from_api(&vn);
        assert_eq!(
            n.meta.key,
            ObjectKey::namespaced(Kind::VirtualNetwork, "t1", "net1")
        );
        assert_eq!(n.meta.generation, 3);
        assert_eq!(n.meta.created, Some(1_767_225_610));
        assert_eq!(n.subnets.len(), 2);
        assert_eq!(n.subnets[0].gateway.to_string(), "10.0.0.1");
        assert_eq!(n.subnets[1].gateway.to_string(), "fd00::fe");
        assert_eq!(n.defects.len(), 2, "{:?}", n.defects);
        assert!(n.defects[0].starts_with("spec.subnets[10.9.0.0/24].gateway: "));
        assert_eq!(n.vni_in_use, Some(4100));
        assert_eq!(n.mpls_label, Some(17));
        assert_eq!(n.encapsulation, Some(vec![Encapsulation::Vxlan]));
        assert_eq!(
            n.encapsulation_in_effect(),
            [Encapsulation::Vxlan, Encapsulation::MplsOverUdp],
            "the operator's decision"
        );
        assert_eq!(
            n.effective_encapsulation(&DEFAULT_ENCAPSULATION_PRIORITY),
            [Encapsulation::Vxlan],
            "the user's list"
        );
        assert_eq!(n.forwarding_mode, ForwardingMode::L2);
        assert_eq!(n.north_south.requested(), Some(FabricExit::Snat));
        assert_eq!(n.fabric_exit_in_use, Some(FabricExit::Snat));
        assert_eq!(n.mtu, Some(1400));
        assert_eq!(
            n.dhcp,
            Dhcp {
                mode: DhcpMode::Server,
                lease_secs: 600,
                dns_servers: vec!["192.0.2.53".parse().unwrap(), "fd00::53".parse().unwrap()],
                domain: Some("lab.example".into()),
                next_server: Some(Ipv4Addr::new(10, 0, 0, 5)),
                boot_file: Some("pxelinux.0".into()),
            }
        );
        assert!(n.flood_unknown_unicast);
        assert_eq!(
            n.effective_routing_instance(),
            "default-domain:t1:net1:net1"
        );
    }
}
