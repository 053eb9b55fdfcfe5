//! L3VPN (RFC 4364) in the domain's words: route targets, route
//! distinguishers, the VPN routes the cluster exports and the routes it
//! imports into networks' VRFs. Pure: no client, no clock, no gRPC.
//!
//! ```text
//!   VirtualNetwork t/net1 (l3vpn: rd 64512:1, export target:64512:100,
//!                          import target:64512:200)
//!   VMI t/vm1 10.0.0.5, label 17, Programmed on gw1 (underlay 10.3.0.1)
//!        |  exports()
//!        v
//!   VpnRoute {64512:1, 10.0.0.5/32, label 17, next hop 10.3.0.1,
//!             [target:64512:100], MPLSoUDP}        --> gobgpd --> peers
//!
//!   VirtualGateway vgw1 (t/net1, subnets 203.0.113.0/24, routes
//!   198.51.100.0/24), Programmed on gw1; t/net1's label 16
//!        |  exports()
//!        v
//!   VpnRoute {64512:1, 203.0.113.0/24 and 198.51.100.0/24,
//!             label 16 + 2^19 (the network's routed label), next hop
//!             10.3.0.1, [target:64512:100], MPLSoUDP}
//!   (a VXLAN-only network: label = its VNI, VXLAN)
//!
//!   peers --> gobgpd --> LearnedRoute {0.0.0.0/0, label 1000, next hop
//!             192.0.2.1, [target:64512:200]}
//!        |  imports()
//!        v
//!   192.0.2.1 serves t/net1: 0.0.0.0/0 label 1000   (a DCGateway's routes)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use trunkline_model::{Encapsulation, IpPrefix, LabelledPrefix, NamespacedName};

/// The most routes one network takes from one next hop (the DCGateway
/// kind's limit per network).
pub const MAX_ROUTES_PER_NETWORK: usize = 64;

/// Why a route target or distinguisher could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VpnValueError {
    /// `{0}` is not `ASN:NN` or `IPv4:NN`.
    #[error("{0:?} is not ASN:NN or IPv4:NN (e.g. 64512:100 or 192.0.2.1:7)")]
    Form(String),
    /// A number does not fit its field.
    #[error(
        "{0:?} is out of range: a 2-byte AS number takes NN up to 4294967295, a 4-byte AS number or an IPv4 address NN up to 65535"
    )]
    Range(String),
    /// A route target lacks its `target:` prefix.
    #[error("{0:?} is not a route target: it must start with 'target:' (e.g. target:64512:100)")]
    NotATarget(String),
}

/// The administrator and assigned number of a route target or route
/// distinguisher (the three types of RFC 4360 / RFC 4364).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AdminValue {
    /// Type 0: a 2-byte AS number and a 4-byte number.
    As2 {
        /// The AS number.
        asn: u16,
        /// The assigned number.
        number: u32,
    },
    /// Type 1: an IPv4 address and a 2-byte number.
    Ipv4 {
        /// The address.
        address: Ipv4Addr,
        /// The assigned number.
        number: u16,
    },
    /// Type 2: a 4-byte AS number and a 2-byte number.
    As4 {
        /// The AS number.
        asn: u32,
        /// The assigned number.
        number: u16,
    },
}

impl FromStr for AdminValue {
    type Err = VpnValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let form = || VpnValueError::Form(text.to_owned());
        let range = || VpnValueError::Range(text.to_owned());
        let (admin, number) = text.rsplit_once(':').ok_or_else(form)?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(form());
        }
        let number: u64 = number.parse().map_err(|_| range())?;
        if admin.contains('.') {
            let address: Ipv4Addr = admin.parse().map_err(|_| form())?;
            let number = u16::try_from(number).map_err(|_| range())?;
            return Ok(AdminValue::Ipv4 { address, number });
        }
        if admin.is_empty() || !admin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(form());
        }
        let asn: u64 = admin.parse().map_err(|_| range())?;
        match u16::try_from(asn) {
            Ok(asn) => Ok(AdminValue::As2 {
                asn,
                number: u32::try_from(number).map_err(|_| range())?,
            }),
            Err(_) => Ok(AdminValue::As4 {
                asn: u32::try_from(asn).map_err(|_| range())?,
                number: u16::try_from(number).map_err(|_| range())?,
            }),
        }
    }
}

impl fmt::Display for AdminValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminValue::As2 { asn, number } => write!(f, "{asn}:{number}"),
            AdminValue::Ipv4 { address, number } => write!(f, "{address}:{number}"),
            AdminValue::As4 { asn, number } => write!(f, "{asn}:{number}"),
        }
    }
}

/// A route target (an extended community of sub-type 0x02).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteTarget(pub AdminValue);

impl FromStr for RouteTarget {
    type Err = VpnValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let rest = text
            .strip_prefix("target:")
            .ok_or_else(|| VpnValueError::NotATarget(text.to_owned()))?;
        Ok(RouteTarget(rest.parse()?))
    }
}

impl fmt::Display for RouteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "target:{}", self.0)
    }
}

/// A route distinguisher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteDistinguisher(pub AdminValue);

impl FromStr for RouteDistinguisher {
    type Err = VpnValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(RouteDistinguisher(text.parse()?))
    }
}

impl fmt::Display for RouteDistinguisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A network's L3VPN membership, read once from its VirtualNetwork.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpnNetwork {
    /// The network.
    pub name: NamespacedName,
    /// Its VNI in use (the default route distinguisher's number).
    pub vni: Option<u32>,
    /// Its route distinguisher, when set.
    pub route_distinguisher: Option<RouteDistinguisher>,
    /// Targets attached to its exported routes.
    pub export_targets: BTreeSet<RouteTarget>,
    /// Targets whose routes it installs.
    pub import_targets: BTreeSet<RouteTarget>,
    /// Its encapsulations in effect, in priority order.
    pub encapsulation: Vec<Encapsulation>,
    /// Its subnets: learned routes inside them are refused (the overlay's).
    pub subnets: Vec<IpPrefix>,
    /// Its routed label (`trunkline_model::routed_label` of its
    /// `status.mplsLabel`): what its virtual gateways' routes carry over
    /// MPLS over UDP (over VXLAN they carry its VNI).
    pub routed_label: Option<u32>,
}

impl VpnNetwork {
    /// The distinguisher of its routes: the declared one, else
    /// `<router ID>:<VNI>`; `None` without either.
    pub fn effective_rd(&self, router_id: Ipv4Addr) -> Option<RouteDistinguisher> {
        self.route_distinguisher.or_else(|| {
            let number = u16::try_from(self.vni?).ok()?;
            Some(RouteDistinguisher(AdminValue::Ipv4 {
                address: router_id,
                number,
            }))
        })
    }
}

/// A VMI as export sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpnVmi {
    /// The VMI.
    pub name: NamespacedName,
    /// Its network.
    pub network: NamespacedName,
    /// Its addresses.
    pub ips: Vec<IpAddr>,
    /// Its routed label (`status.mplsLabel`).
    pub label: Option<u32>,
    /// Whether its status says `Programmed=True` for its generation.
    pub programmed: bool,
    /// The underlay address of the node holding it.
    pub next_hop: Option<IpAddr>,
}

/// A virtual gateway as export sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpnGateway {
    /// Its network.
    pub network: NamespacedName,
    /// Its subnets (routed from the host into the VRF) and the routes the
    /// VRF sends toward its interface (`effective_routes`): what a DC
    /// gateway should send into the network for it.
    pub prefixes: BTreeSet<IpPrefix>,
    /// The underlay address of the node advertising it: the first node
    /// (by name) on which it is Programmed; `None` on none.
    pub next_hop: Option<IpAddr>,
}

/// The node whose underlay address a VMI's routes name as next hop, of
/// the nodes holding it (`nodes`, sorted): the active member of the
/// gateway HA group serving it (`active_member`), when that member holds
/// it (the others hold it as standbys: they neither forward nor answer for
/// it); else the first, as for a VMI on one node. `None` when no node
/// holds it.
pub fn advertising_node<'a>(
    nodes: &'a BTreeSet<String>,
    active_member: Option<&str>,
) -> Option<&'a str> {
    active_member
        .and_then(|active| nodes.get(active))
        .or_else(|| nodes.first())
        .map(String::as_str)
}

/// The BGP tunnel-encapsulation types of RFC 9012 we advertise.
pub fn tunnel_type(encapsulation: Encapsulation) -> u32 {
    match encapsulation {
        Encapsulation::MplsOverUdp => 13,
        Encapsulation::Vxlan => 8,
    }
}

/// A VPNv4/VPNv6 route the speaker advertises.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VpnRoute {
    /// The route distinguisher.
    pub rd: RouteDistinguisher,
    /// The destination (a host route for a VMI address).
    pub prefix: IpPrefix,
    /// The label the next hop decapsulates by (or the VNI for VXLAN).
    pub label: u32,
    /// The node's underlay address.
    pub next_hop: IpAddr,
    /// The route targets.
    pub route_targets: BTreeSet<RouteTarget>,
    /// How to reach the next hop.
    pub encapsulation: Encapsulation,
}

/// The routes to advertise: every address of every Programmed VMI, with a
/// label and a node, of a network with export targets and a distinguisher;
/// and every prefix of every virtual gateway Programmed on a node, of such
/// a network: with its routed label (which names its VRF) over MPLS over
/// UDP when it runs that, else with its VNI over VXLAN (a DC gateway's
/// VXLAN with the network's VNI is routed in its VRF alike).
pub fn exports(
    networks: &[VpnNetwork],
    vmis: &[VpnVmi],
    gateways: &[VpnGateway],
    router_id: Ipv4Addr,
) -> BTreeSet<VpnRoute> {
    let networks: BTreeMap<&NamespacedName, &VpnNetwork> =
        networks.iter().map(|n| (&n.name, n)).collect();
    let mut routes = BTreeSet::new();
    for vmi in vmis.iter().filter(|v| v.programmed) {
        let Some(network) = networks.get(&vmi.network) else {
            continue;
        };
        if network.export_targets.is_empty() {
            continue;
        }
        let (Some(rd), Some(next_hop)) = (network.effective_rd(router_id), vmi.next_hop) else {
            continue;
        };
        let encapsulation = if runs_mpls_over_udp(network) {
            Encapsulation::MplsOverUdp
        } else {
            Encapsulation::Vxlan
        };
        let label = match encapsulation {
            Encapsulation::MplsOverUdp => vmi.label,
            Encapsulation::Vxlan => network.vni,
        };
        let Some(label) = label else { continue };
        for ip in &vmi.ips {
            let prefix = IpPrefix::host(*ip);
            routes.insert(VpnRoute {
                rd,
                prefix,
                label,
                next_hop,
                route_targets: network.export_targets.clone(),
                encapsulation,
            });
        }
    }
    for gateway in gateways {
        let Some(network) = networks.get(&gateway.network) else {
            continue;
        };
        if network.export_targets.is_empty() {
            continue;
        }
        let (encapsulation, label) = if runs_mpls_over_udp(network) {
            (Encapsulation::MplsOverUdp, network.routed_label)
        } else {
            (Encapsulation::Vxlan, network.vni)
        };
        let (Some(rd), Some(next_hop), Some(label)) =
            (network.effective_rd(router_id), gateway.next_hop, label)
        else {
            continue;
        };
        for prefix in &gateway.prefixes {
            routes.insert(VpnRoute {
                rd,
                prefix: *prefix,
                label,
                next_hop,
                route_targets: network.export_targets.clone(),
                encapsulation,
            });
        }
    }
    routes
}

/// Whether a network's traffic with other nodes may be MPLS over UDP (the
/// default, or in its list).
fn runs_mpls_over_udp(network: &VpnNetwork) -> bool {
    network.encapsulation.is_empty() || network.encapsulation.contains(&Encapsulation::MplsOverUdp)
}

/// A VPN route learned from a peer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LearnedRoute {
    /// Its distinguisher.
    pub rd: RouteDistinguisher,
    /// The destination.
    pub prefix: IpPrefix,
    /// The label the next hop decapsulates by.
    pub label: u32,
    /// The advertising router's tunnel address.
    pub next_hop: IpAddr,
    /// Its route targets.
    pub route_targets: BTreeSet<RouteTarget>,
}

/// Per next hop (a router reached over MPLS over UDP), the networks whose
/// import targets its routes carry, with those routes: what becomes one
/// DCGateway each. Routes whose next hop is one of `own` (our nodes: our
/// own exports reflected back) or that fall inside one of the network's
/// subnets are left out; a (network, prefix) learned from several next
/// hops goes to the lowest address, so that the choice is stable.
pub fn imports(
    learned: &[LearnedRoute],
    networks: &[VpnNetwork],
    own: &BTreeSet<IpAddr>,
) -> BTreeMap<IpAddr, BTreeMap<NamespacedName, BTreeSet<LabelledPrefix>>> {
    let mut chosen: BTreeMap<(&NamespacedName, IpPrefix), (IpAddr, u32)> = BTreeMap::new();
    for route in learned.iter().filter(|r| !own.contains(&r.next_hop)) {
        for network in networks {
            if network.import_targets.is_disjoint(&route.route_targets) {
                continue;
            }
            if network
                .subnets
                .iter()
                .any(|s| s.overlaps(&route.prefix) && route.prefix.prefix_len() >= s.prefix_len())
            {
                continue;
            }
            let candidate = (route.next_hop, route.label);
            chosen
                .entry((&network.name, route.prefix))
                .and_modify(|c| *c = (*c).min(candidate))
                .or_insert(candidate);
        }
    }
    let mut out: BTreeMap<IpAddr, BTreeMap<NamespacedName, BTreeSet<LabelledPrefix>>> =
        BTreeMap::new();
    for ((network, prefix), (next_hop, label)) in chosen {
        let routes = out
            .entry(next_hop)
            .or_default()
            .entry(network.clone())
            .or_default();
        if routes.len() < MAX_ROUTES_PER_NETWORK {
            routes.insert(LabelledPrefix { prefix, label });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> RouteTarget {
        s.parse().expect("a route target")
    }

    fn network(export: &[&str], import: &[&str]) -> VpnNetwork {
        VpnNetwork {
            name: NamespacedName::new("t", "net1"),
            vni: Some(7),
            route_distinguisher: None,
            export_targets: export.iter().map(|s| rt(s)).collect(),
            import_targets: import.iter().map(|s| rt(s)).collect(),
            encapsulation: vec![Encapsulation::MplsOverUdp, Encapsulation::Vxlan],
            subnets: vec!["10.0.0.0/24".parse().expect("prefix")],
            routed_label: Some(16 + (1 << 19)),
        }
    }

    #[test]
    fn route_targets_and_distinguishers_read_all_three_types() {
        assert_eq!(
            rt("target:64512:100").0,
            AdminValue::As2 {
                asn: 64512,
                number: 100
            }
        );
        assert_eq!(
            rt("target:4200000000:7").0,
            AdminValue::As4 {
                asn: 4_200_000_000,
                number: 7
            }
        );
        assert_eq!(
            rt("target:192.0.2.1:7").0,
            AdminValue::Ipv4 {
                address: Ipv4Addr::new(192, 0, 2, 1),
                number: 7
            }
        );
        assert_eq!(
            rt("target:65000:4294967295").to_string(),
            "target:65000:4294967295"
        );
        for bad in [
            "64512:1",
            "target:64512",
            "target:x:1",
            "target:1:-1",
            "target:1.2.3:4",
        ] {
            assert!(bad.parse::<RouteTarget>().is_err(), "{bad}");
        }
        for out_of_range in [
            "target:4200000000:65536",
            "target:192.0.2.1:65536",
            "target:4294967296:1",
        ] {
            assert!(
                matches!(
                    out_of_range.parse::<RouteTarget>(),
                    Err(VpnValueError::Range(_))
                ),
                "{out_of_range}"
            );
        }
        let rd: RouteDistinguisher = "10.3.0.1:7".parse().expect("rd");
        assert_eq!(rd.to_string(), "10.3.0.1:7");
    }

    #[test]
    fn exports_take_programmed_vmis_of_exporting_networks_with_their_label_and_node() {
        let router_id = Ipv4Addr::new(10, 3, 0, 100);
        let vmi = |name: &str, ip: &str, programmed| VpnVmi {
            name: NamespacedName::new("t", name),
            network: NamespacedName::new("t", "net1"),
            ips: vec![ip.parse().expect("ip")],
            label: Some(17),
            programmed,
            next_hop: Some("10.3.0.1".parse().expect("ip")),
        };
        let vmis = [vmi("a", "10.0.0.5", true), vmi("b", "10.0.0.6", false)];
        let routes = exports(
            &[network(&["target:64512:100"], &[])],
            &vmis,
            &[],
            router_id,
        );
        assert_eq!(routes.len(), 1, "only the Programmed VMI: {routes:?}");
        let route = routes.iter().next().expect("a route");
        assert_eq!(route.prefix.to_string(), "10.0.0.5/32");
        assert_eq!(route.rd.to_string(), "10.3.0.100:7", "router ID : VNI");
        assert_eq!(route.label, 17);
        assert_eq!(route.encapsulation, Encapsulation::MplsOverUdp);
        assert_eq!(tunnel_type(route.encapsulation), 13);
        assert!(
            exports(
                &[network(&[], &["target:64512:100"])],
                &vmis,
                &[],
                router_id
            )
            .is_empty()
        );
    }

    #[test]
    fn virtual_gateway_prefixes_are_exported_with_the_networks_routed_label_or_its_vni() {
        let router_id = Ipv4Addr::new(10, 3, 0, 100);
        let gateway = |next_hop: Option<&str>| VpnGateway {
            network: NamespacedName::new("t", "net1"),
            prefixes: ["10.0.0.0/24", "198.51.100.0/24"]
                .iter()
                .map(|p| p.parse().expect("prefix"))
                .collect(),
            next_hop: next_hop.map(|h| h.parse().expect("ip")),
        };
        let exporting = network(&["target:64512:100"], &[]);
        let routes = exports(
            std::slice::from_ref(&exporting),
            &[],
            &[gateway(Some("10.3.0.2"))],
            router_id,
        );
        assert_eq!(
            routes
                .iter()
                .map(|r| (r.prefix.to_string(), r.label, r.next_hop.to_string()))
                .collect::<Vec<_>>(),
            [
                (
                    "10.0.0.0/24".to_owned(),
                    16 + (1 << 19),
                    "10.3.0.2".to_owned()
                ),
                (
                    "198.51.100.0/24".to_owned(),
                    16 + (1 << 19),
                    "10.3.0.2".to_owned()
                ),
            ]
        );
        assert!(routes.iter().all(|r| r.rd.to_string() == "10.3.0.100:7"
            && r.route_targets == exporting.export_targets
            && r.encapsulation == Encapsulation::MplsOverUdp));
        assert!(
            exports(
                std::slice::from_ref(&exporting),
                &[],
                &[gateway(None)],
                router_id
            )
            .is_empty(),
            "Programmed on no node: nothing"
        );
        // A VXLAN-only network: its VNI over VXLAN (ET:8), the routed
        // label unused; nothing without a VNI.
        let mut vxlan_only = exporting.clone();
        vxlan_only.encapsulation = vec![Encapsulation::Vxlan];
        let routes = exports(
            std::slice::from_ref(&vxlan_only),
            &[],
            &[gateway(Some("10.3.0.2"))],
            router_id,
        );
        assert_eq!(
            routes
                .iter()
                .map(|r| (r.prefix.to_string(), r.label, r.encapsulation))
                .collect::<Vec<_>>(),
            [
                ("10.0.0.0/24".to_owned(), 7, Encapsulation::Vxlan),
                ("198.51.100.0/24".to_owned(), 7, Encapsulation::Vxlan),
            ],
            "a VXLAN-only network's virtual gateway: label = VNI"
        );
        assert!(routes.iter().all(|r| r.next_hop.to_string() == "10.3.0.2"
            && r.rd.to_string() == "10.3.0.100:7"
            && tunnel_type(r.encapsulation) == 8));
        vxlan_only.routed_label = None;
        assert_eq!(
            exports(
                std::slice::from_ref(&vxlan_only),
                &[],
                &[gateway(Some("10.3.0.2"))],
                router_id
            )
            .len(),
            2,
            "the routed label is not needed over VXLAN"
        );
        vxlan_only.vni = None;
        vxlan_only.route_distinguisher = Some("64512:1".parse().expect("rd"));
        assert!(
            exports(&[vxlan_only], &[], &[gateway(Some("10.3.0.2"))], router_id).is_empty(),
            "a VXLAN-only network without a VNI has no label to give"
        );
        let mut unlabelled = exporting;
        unlabelled.routed_label = None;
        assert!(exports(&[unlabelled], &[], &[gateway(Some("10.3.0.2"))], router_id).is_empty());
        assert!(
            exports(
                &[network(&[], &["target:64512:100"])],
                &[],
                &[gateway(Some("10.3.0.2"))],
                router_id
            )
            .is_empty(),
            "a network without export targets"
        );
    }

    #[test]
    fn a_vmi_held_by_several_nodes_is_advertised_from_the_active_member() {
        let nodes: BTreeSet<String> = ["gw1".to_owned(), "gw2".to_owned()].into();
        assert_eq!(advertising_node(&nodes, Some("gw2")), Some("gw2"));
        assert_eq!(
            advertising_node(&nodes, Some("gw1")),
            Some("gw1"),
            "moves with a failover"
        );
        assert_eq!(
            advertising_node(&nodes, None),
            Some("gw1"),
            "no active member known: the first node"
        );
        assert_eq!(
            advertising_node(&nodes, Some("gw3")),
            Some("gw1"),
            "an active member not holding the VMI is not its next hop"
        );
        assert_eq!(advertising_node(&BTreeSet::new(), Some("gw1")), None);
    }

    #[test]
    fn imports_group_matching_routes_by_next_hop_and_skip_our_own() {
        let learned = |prefix: &str, next_hop: &str, target: &str| LearnedRoute {
            rd: "64512:1".parse().expect("rd"),
            prefix: prefix.parse().expect("prefix"),
            label: 1000,
            next_hop: next_hop.parse().expect("ip"),
            route_targets: [rt(target)].into(),
        };
        let routes = [
            learned("0.0.0.0/0", "192.0.2.1", "target:64512:200"),
            learned("0.0.0.0/0", "192.0.2.9", "target:64512:200"),
            learned("198.51.100.0/24", "192.0.2.1", "target:64512:999"),
            learned("10.0.0.5/32", "10.3.0.1", "target:64512:200"),
            learned("10.0.0.0/25", "192.0.2.1", "target:64512:200"),
        ];
        let own = ["10.3.0.1".parse().expect("ip")].into();
        let out = imports(&routes, &[network(&[], &["target:64512:200"])], &own);
        assert_eq!(out.len(), 1, "{out:?}");
        let net =
            &out[&"192.0.2.1".parse::<IpAddr>().expect("ip")][&NamespacedName::new("t", "net1")];
        assert_eq!(
            net.iter().map(|r| r.prefix.to_string()).collect::<Vec<_>>(),
            ["0.0.0.0/0"],
            "the lowest next hop keeps the default; another target, our own route and one inside the subnet are left out"
        );
    }
}
