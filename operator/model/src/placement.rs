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

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::encapsulation::Encapsulation;
use crate::object::{NamespacedName, ObjectKey};
use crate::{HaMode, Snapshot};

/// Which nodes hold which VMI and network, and each node's underlay
/// address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
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

impl Placement {
    /// Placement of `snapshot` where `accepted` says which objects count.
    pub fn new(snapshot: &Snapshot, accepted: impl Fn(&ObjectKey) -> bool) -> Self {
        let mut vmi_nodes: BTreeMap<NamespacedName, BTreeSet<String>> = BTreeMap::new();
        for li in &snapshot.logical_interfaces {
            if accepted(&li.meta.key) {
                vmi_nodes
                    .entry(li.vmi.clone())
                    .or_default()
                    .insert(li.physical_router.clone());
            }
        }
        let mut network_nodes: BTreeMap<NamespacedName, BTreeSet<String>> = BTreeMap::new();
        for vmi in &snapshot.virtual_machine_interfaces {
            if accepted(&vmi.meta.key)
                && let Some(nodes) = vmi_nodes.get(&vmi.name())
            {
                network_nodes
                    .entry(vmi.network_name())
                    .or_default()
                    .extend(nodes.iter().cloned());
            }
        }
        // Mode STP: the BPDU network floods between every member.
        for group in &snapshot.gateway_ha_groups {
            if let (true, HaMode::Stp, Some(network)) =
                (accepted(&group.meta.key), group.mode, &group.bpdu_network)
            {
                network_nodes
                    .entry(network.clone())
                    .or_default()
                    .extend(group.members.iter().map(|m| m.physical_router.clone()));
            }
        }
        for gateway in &snapshot.virtual_gateways {
            if accepted(&gateway.meta.key) && !gateway.nodes.is_empty() {
                network_nodes
                    .entry(gateway.network.clone())
                    .or_default()
                    .extend(gateway.nodes.iter().cloned());
            }
        }
        // Two routers of one name cannot exist in a cluster; should a
        // snapshot hold them, the smaller address wins, whatever the order.
        let mut underlay: BTreeMap<String, IpAddr> = BTreeMap::new();
        for router in &snapshot.physical_routers {
            if let Some(address) = router.underlay_address() {
                underlay
                    .entry(router.meta.name().to_owned())
                    .and_modify(|a| *a = (*a).min(address))
                    .or_insert(address);
            }
        }
        let mut network_vteps: BTreeMap<NamespacedName, BTreeSet<ExternalPeer>> = BTreeMap::new();
        for vtep in &snapshot.external_vteps {
            let Some(address) = vtep.address.filter(|_| accepted(&vtep.meta.key)) else {
                continue;
            };
            for joined in &vtep.networks {
                network_vteps
                    .entry(joined.network.clone())
                    .or_default()
                    .insert(ExternalPeer {
                        name: vtep.meta.name().to_owned(),
                        address,
                        encapsulation: vtep.encapsulation,
                    });
            }
        }
        let mut network_dc_gateways: BTreeMap<NamespacedName, BTreeSet<DcGatewayPeer>> =
            BTreeMap::new();
        for gateway in &snapshot.dc_gateways {
            let Some(address) = gateway.address.filter(|_| accepted(&gateway.meta.key)) else {
                continue;
            };
            for served in &gateway.networks {
                network_dc_gateways
                    .entry(served.network.clone())
                    .or_default()
                    .insert(DcGatewayPeer {
                        name: gateway.meta.name().to_owned(),
                        address,
                    });
            }
        }
        Self {
            vmi_nodes,
            network_nodes,
            underlay,
            network_vteps,
            network_dc_gateways,
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
    /// current generation.
    pub fn from_status(snapshot: &Snapshot) -> Self {
        let accepted = snapshot.accepted_by_status();
        Self::new(snapshot, |key| accepted.contains(key))
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
        Endpoint, ExternalVtep, ExternalVtepNetwork, Fabric, InterfaceType, LogicalInterface,
        PhysicalInterface, PhysicalRouter, VirtualGateway, VirtualMachineInterface,
    };
    use proptest::prelude::*;
    use proptest::sample::Index;

    fn router(name: &str, underlay: Option<&str>) -> PhysicalRouter {
        PhysicalRouter {
            meta: Meta::cluster(Kind::PhysicalRouter, name, Some(1), 1),
            interfaces: vec![PhysicalInterface::named("eth1")],
            fabric: underlay.map(|a| Fabric {
                interface: "eth0".into(),
                underlay_address: Some(a.parse().unwrap()),
            }),
            interface_limit: 10,
            programmed: vec![],
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
                router("gw-1", Some("192.0.2.1")),
                router("gw-2", Some("192.0.2.2")),
                router("gw-3", None),
            ],
            logical_interfaces: vec![
                li("a", "gw-2", "v1", true),
                li("b", "gw-1", "v1", true),
                li("c", "gw-3", "v1", false),
                li("d", "gw-3", "v2", true),
                li("e", "gw-4", "v3", true),
            ],
            virtual_machine_interfaces: vec![
                vmi("v1", "n1", true),
                vmi("v2", "n1", false),
                vmi("v3", "n2", true),
            ],
            virtual_gateways: vec![
                vgw("g1", "n1", &["gw-5"], true),
                vgw("g2", "n2", &["gw-1"], false),
            ],
            external_vteps: vec![
                vtep("tor-2", "192.0.2.20", &["n1"], true),
                vtep("tor-1", "192.0.2.10", &["n1", "n2"], true),
                vtep("tor-3", "192.0.2.30", &["n1"], false),
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
            dc_gateways: vec![gateway("mx2", false), gateway("mx1", true)],
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
        assert_eq!(
            Placement::new(&s, |_| false),
            Placement {
                underlay: p.underlay.clone(),
                ..Placement::default()
            }
        );
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
                .collect(),
            logical_interfaces: lis
                .into_iter()
                .enumerate()
                .map(|(i, (r, v, ok))| {
                    li(&format!("li{i}"), &format!("gw-{r}"), &format!("v{v}"), ok)
                })
                .collect(),
            virtual_machine_interfaces: vmis
                .into_iter()
                .enumerate()
                .map(|(i, (n, ok))| vmi(&format!("v{i}"), &format!("n{n}"), ok))
                .collect(),
            virtual_gateways: vgws
                .into_iter()
                .enumerate()
                .map(|(i, (n, nodes, ok))| {
                    let nodes: Vec<String> = nodes.iter().map(|n| format!("gw-{n}")).collect();
                    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
                    vgw(&format!("g{i}"), &format!("n{n}"), &nodes, ok)
                })
                .collect(),
            external_vteps: vteps
                .into_iter()
                .enumerate()
                .map(|(i, (a, networks, ok))| {
                    let networks: Vec<String> = networks.iter().map(|n| format!("n{n}")).collect();
                    let networks: Vec<&str> = networks.iter().map(String::as_str).collect();
                    vtep(&format!("x{i}"), &format!("198.51.100.{a}"), &networks, ok)
                })
                .collect(),
            ..Snapshot::default()
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
            };
            prop_assert_eq!(Placement::from_status(&s), Placement::from_status(&shuffled));
            prop_assert_eq!(Placement::new(&s, |_| true), Placement::new(&shuffled, |_| true));
        }
    }
}
