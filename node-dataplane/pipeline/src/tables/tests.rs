//! Table compilation: lookups, every rejection, and property tests (the
//! same configuration in any order compiles to the same tables; two logical
//! interfaces never both win a (port, VLAN), and the older one wins).

use core::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::config::*;
use crate::process::tests::{MAC_A, MAC_B, NET1_LABEL, P1, P2, VGW, fixture};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn prefix(s: &str) -> IpPrefix {
    s.parse().unwrap()
}

fn li(key: &str, port: PortId, vlan: u16, vmi: &str, created: i64) -> LogicalInterfaceConfig {
    LogicalInterfaceConfig {
        key: key.into(),
        port,
        vlan,
        vmi: vmi.into(),
        order: CreationOrder {
            created_secs: created,
            name: key.into(),
        },
    }
}

fn reasons_for(rejected: &[Rejected], object: &ObjectRef) -> Vec<RejectReason> {
    rejected
        .iter()
        .filter(|r| &r.object == object)
        .map(|r| r.reason.clone())
        .collect()
}

#[test]
fn fixture_lookups() {
    let (tables, rejected) = Tables::compile(&fixture());
    assert!(rejected.is_empty());
    let a = tables.vmi_id("ns/vmi-a").unwrap();
    let b = tables.vmi_id("ns/vmi-b").unwrap();
    assert_eq!(tables.vmi_at(P1, 100), Some(a));
    assert_eq!(tables.vmi_at(P1, 200), Some(b));
    assert_eq!(tables.vmi_at(P1, 101), None);
    assert_eq!(tables.vmi_at(P1, 4095), None);
    assert_eq!(tables.vmi_at(PortId(1000), 100), None);
    assert_eq!(tables.vmi_at(VGW, 0), None);
    assert_eq!(
        tables.route("ns/net1", ip("10.0.1.20")),
        Some(NextHop::Vmi(b))
    );
    assert_eq!(
        tables.route("ns/net1", ip("10.0.0.1")),
        Some(NextHop::Receive)
    );
    assert_eq!(
        tables.route("ns/net1", ip("fd00::1")),
        Some(NextHop::Receive)
    );
    assert_eq!(
        tables.route("ns/net1", ip("192.0.2.9")),
        Some(NextHop::Discard)
    );
    assert_eq!(
        tables.route("ns/net1", ip("1.1.1.1")),
        Some(NextHop::Port(VGW))
    );
    assert_eq!(tables.route("ns/net1", ip("fd01::1")), None);
    assert_eq!(tables.route("ns/net2", ip("1.1.1.1")), None);
    assert_eq!(tables.route("ns/nope", ip("1.1.1.1")), None);
    // The same address in two VRFs is two different VMIs.
    let c = tables.vmi_id("ns/vmi-c").unwrap();
    assert_eq!(
        tables.route("ns/net2", ip("10.0.0.10")),
        Some(NextHop::Vmi(c))
    );
    assert_eq!(
        tables.route("ns/net1", ip("10.0.0.10")),
        Some(NextHop::Vmi(a))
    );
    let vmi = tables.vmi(a).unwrap();
    assert_eq!(vmi.key(), "ns/vmi-a");
    assert_eq!(vmi.network(), "ns/net1");
    assert_eq!(vmi.mac(), EthernetAddress(MAC_A));
    assert!(vmi.port_security());
    assert_eq!(
        vmi.egress(),
        Some(Egress {
            port: P1,
            vlan: 100
        })
    );
    assert_eq!(
        tables
            .vmi(tables.vmi_id("ns/vmi-d").unwrap())
            .unwrap()
            .egress(),
        None
    );
    assert_eq!(tables.logical_interfaces().len(), 5);
    assert_eq!(tables.vmis().count(), 6);
    assert_eq!(tables.vmi_counters().count(), 6);
    assert_eq!(tables.remote_vmi_count(), 2);
    assert_eq!(tables.peers().len(), 2);
    assert_eq!(
        tables.underlay(),
        Some((PortId(3), "192.168.100.1".parse().unwrap()))
    );
    assert!(matches!(
        tables.route("ns/net1", ip("10.0.0.60")),
        Some(NextHop::Remote(_))
    ));
    let dump = tables.dump();
    for line in [
        "gateway_mac 00:00:5e:00:01:00",
        "port 1 eth1 gateway",
        "  vlan 100 -> ns/vmi-a",
        "port 9 vgw0 host vrf 1 peer 02:00:00:00:00:99",
        "vrf 1 network ns/net1 bridges true routes true flood_unknown false vni Some(5001) label Some(100)",
        "  route 0.0.0.0/0 port 9",
        "  route 10.0.0.60/32 remote ns/vmi-r",
        "  bridge 02000000002e -> remote ns/vmi-r",
        "  flood port 1 vlan 100 (ns/vmi-a)",
        "  flood peer node-b mpls label 100",
        "  flood peer xvtep vxlan vni 5001",
        "underlay port 3 address 192.168.100.1 mac 02:fa:00:00:00:01 mtu 1500",
        "peer node-b address 192.168.100.2",
        "label 101 -> vmi ns/vmi-a",
        "label 100 -> vrf 1",
        "remote ns/vmi-r vrf 1 peer node-b mac 02:00:00:00:00:2e ips [10.0.0.60, fd00::60] routed mpls label 200 bridged mpls label 100",
        "remote ns/ext-1 vrf 1 peer xvtep mac 02:00:00:00:00:3e ips [10.0.0.70] routed vxlan vni 5001 bridged vxlan vni 5001",
        "vrf 3 network ns/net3 bridges true routes false flood_unknown false vni None label None",
        "  route 10.0.0.1/32 receive",
        "  route 192.0.2.0/24 discard",
        "  route fd00::a/128 vmi ns/vmi-a",
        "  bridge 02000000000a -> ns/vmi-a",
        "  bridge 0200000000aa -> ns/vmi-a",
        "li ns/li-u port 2 vlan 0 vmi ns/vmi-u",
    ] {
        assert!(
            dump.lines().any(|l| l == line),
            "{line:?} missing from\n{dump}"
        );
    }
}

#[test]
fn the_older_logical_interface_wins_whatever_the_order() {
    let mut config = fixture();
    config
        .logical_interfaces
        .push(li("ns/li-young", P1, 100, "ns/vmi-b", 99));
    config
        .logical_interfaces
        .insert(0, li("ns/li-old", P1, 200, "ns/vmi-a", 1));
    for reversed in [false, true] {
        if reversed {
            config.logical_interfaces.reverse();
        }
        let (tables, rejected) = Tables::compile(&config);
        let a = tables.vmi_id("ns/vmi-a").unwrap();
        assert_eq!(tables.vmi_at(P1, 100), Some(a));
        assert_eq!(tables.vmi_at(P1, 200), Some(a));
        assert_eq!(
            reasons_for(
                &rejected,
                &ObjectRef::LogicalInterface("ns/li-young".into())
            ),
            vec![RejectReason::VlanTaken {
                port: P1,
                vlan: 100,
                by: "ns/li-a".into()
            }]
        );
        assert_eq!(
            reasons_for(&rejected, &ObjectRef::LogicalInterface("ns/li-b".into())),
            vec![RejectReason::VlanTaken {
                port: P1,
                vlan: 200,
                by: "ns/li-old".into()
            }]
        );
        // A's egress is its oldest logical interface.
        assert_eq!(
            tables.vmi(a).unwrap().egress(),
            Some(Egress {
                port: P1,
                vlan: 200
            })
        );
        // Same creation second: the name decides.
        let mut tie = fixture();
        tie.logical_interfaces = vec![
            li("ns/li-z", P1, 7, "ns/vmi-b", 5),
            li("ns/li-m", P1, 7, "ns/vmi-a", 5),
        ];
        let (tables, _) = Tables::compile(&tie);
        assert_eq!(tables.vmi_at(P1, 7), tables.vmi_id("ns/vmi-a"));
    }
}

#[test]
fn every_rejection() {
    let mut config = fixture();
    config.gateway_mac = [1, 0, 0, 0, 0, 1];
    // Ports: a duplicate id, a host port of an unknown network.
    config.ports.push(PortConfig {
        id: P1,
        name: "zzz".into(),
        mtu: None,
        kind: PortKind::Fabric,
    });
    config.ports.push(PortConfig {
        id: PortId(10),
        name: "vgw9".into(),
        mtu: None,
        kind: PortKind::Host {
            network: "ns/none".into(),
            peer_mac: [2, 0, 0, 0, 0, 1],
        },
    });
    // Networks: a duplicate key, a VRF in use, a gateway outside its subnet.
    config.networks.push(NetworkConfig {
        key: "ns/net1".into(),
        vrf: 7,
        subnets: vec![],
        ..Default::default()
    });
    config.networks.push(NetworkConfig {
        key: "ns/net3".into(),
        vrf: 2,
        subnets: vec![],
        ..Default::default()
    });
    config.networks[0].subnets.push(SubnetConfig {
        prefix: prefix("10.9.0.0/24"),
        gateway: ip("10.8.0.1"),
    });
    // VMIs.
    let base = config.vmis[1].clone();
    let vmi = |key: &str, f: &dyn Fn(&mut VmiConfig)| {
        let mut v = base.clone();
        v.key = key.into();
        v.mac = [2, 0, 0, 0, 9, key.len() as u8];
        v.ips = vec![ip("10.0.1.99")];
        f(&mut v);
        v
    };
    config.vmis.push(vmi("ns/vmi-b", &|_| {}));
    config
        .vmis
        .push(vmi("ns/x-net", &|v| v.network = "ns/none".into()));
    config
        .vmis
        .push(vmi("ns/x-mcast", &|v| v.mac = [3, 0, 0, 0, 0, 1]));
    config.vmis.push(vmi("ns/x-mac", &|v| v.mac = MAC_B));
    config
        .vmis
        .push(vmi("ns/x-gw", &|v| v.ips = vec![ip("10.0.0.1")]));
    config
        .vmis
        .push(vmi("ns/x-ip", &|v| v.ips = vec![ip("10.0.1.20")]));
    // Logical interfaces.
    config.logical_interfaces.extend([
        li("ns/li-a", P1, 5, "ns/vmi-a", 60),
        li("ns/l-range", P1, 4095, "ns/vmi-a", 50),
        li("ns/l-vmi", P1, 6, "ns/none", 50),
        li("ns/l-port", PortId(44), 6, "ns/vmi-a", 50),
        li("ns/l-kind", VGW, 6, "ns/vmi-a", 50),
        li("ns/l-taken", P1, 100, "ns/vmi-b", 50),
    ]);
    // Routes.
    let route = |network: &str, p: &str, next_hop| RouteConfig {
        network: network.into(),
        prefix: prefix(p),
        next_hop,
    };
    config.routes.extend([
        route("ns/none", "1.0.0.0/8", NextHopConfig::Discard),
        route("ns/net1", "2.0.0.0/8", NextHopConfig::Port(PortId(44))),
        route("ns/net1", "3.0.0.0/8", NextHopConfig::Port(P2)),
        route("ns/net2", "4.0.0.0/8", NextHopConfig::Port(VGW)),
        route("ns/net1", "10.0.1.20/32", NextHopConfig::Discard),
    ]);

    let (tables, rejected) = Tables::compile(&config);
    use RejectReason::*;
    let expect = [
        (
            ObjectRef::Node,
            MulticastMac(EthernetAddress([1, 0, 0, 0, 0, 1])),
        ),
        (ObjectRef::Port(P1), Duplicate),
        (
            ObjectRef::Port(PortId(10)),
            UnknownNetwork("ns/none".into()),
        ),
        (ObjectRef::Network("ns/net1".into()), Duplicate),
        (
            ObjectRef::Network("ns/net3".into()),
            VrfInUse {
                vrf: 2,
                by: "ns/net2".into(),
            },
        ),
        (
            ObjectRef::Subnet {
                network: "ns/net1".into(),
                prefix: prefix("10.9.0.0/24"),
            },
            GatewayOutsideSubnet {
                gateway: ip("10.8.0.1"),
                prefix: prefix("10.9.0.0/24"),
            },
        ),
        (ObjectRef::Vmi("ns/vmi-b".into()), Duplicate),
        (
            ObjectRef::Vmi("ns/x-net".into()),
            UnknownNetwork("ns/none".into()),
        ),
        (
            ObjectRef::Vmi("ns/x-mcast".into()),
            MulticastMac(EthernetAddress([3, 0, 0, 0, 0, 1])),
        ),
        (
            ObjectRef::Vmi("ns/x-mac".into()),
            MacInUse {
                mac: EthernetAddress(MAC_B),
                by: "ns/vmi-b".into(),
            },
        ),
        (
            ObjectRef::Vmi("ns/x-gw".into()),
            AddressInUse {
                ip: ip("10.0.0.1"),
                by: "the gateway of network ns/net1".into(),
            },
        ),
        (
            ObjectRef::Vmi("ns/x-ip".into()),
            AddressInUse {
                ip: ip("10.0.1.20"),
                by: "VMI ns/vmi-b".into(),
            },
        ),
        (ObjectRef::LogicalInterface("ns/li-a".into()), Duplicate),
        (
            ObjectRef::LogicalInterface("ns/l-range".into()),
            VlanOutOfRange(4095),
        ),
        (
            ObjectRef::LogicalInterface("ns/l-vmi".into()),
            UnknownVmi("ns/none".into()),
        ),
        (
            ObjectRef::LogicalInterface("ns/l-port".into()),
            UnknownPort(PortId(44)),
        ),
        (
            ObjectRef::LogicalInterface("ns/l-kind".into()),
            NotAGatewayPort(VGW),
        ),
        (
            ObjectRef::LogicalInterface("ns/l-taken".into()),
            VlanTaken {
                port: P1,
                vlan: 100,
                by: "ns/li-a".into(),
            },
        ),
        (
            ObjectRef::Route {
                network: "ns/none".into(),
                prefix: prefix("1.0.0.0/8"),
                next_hop: NextHopConfig::Discard,
            },
            UnknownNetwork("ns/none".into()),
        ),
        (
            ObjectRef::Route {
                network: "ns/net1".into(),
                prefix: prefix("2.0.0.0/8"),
                next_hop: NextHopConfig::Port(PortId(44)),
            },
            UnknownPort(PortId(44)),
        ),
        (
            ObjectRef::Route {
                network: "ns/net1".into(),
                prefix: prefix("3.0.0.0/8"),
                next_hop: NextHopConfig::Port(P2),
            },
            NotAHostPortOfNetwork {
                port: P2,
                network: "ns/net1".into(),
            },
        ),
        (
            ObjectRef::Route {
                network: "ns/net2".into(),
                prefix: prefix("4.0.0.0/8"),
                next_hop: NextHopConfig::Port(VGW),
            },
            NotAHostPortOfNetwork {
                port: VGW,
                network: "ns/net2".into(),
            },
        ),
        (
            ObjectRef::Route {
                network: "ns/net1".into(),
                prefix: prefix("10.0.1.20/32"),
                next_hop: NextHopConfig::Discard,
            },
            PrefixInUse(prefix("10.0.1.20/32")),
        ),
    ];
    for (object, reason) in &expect {
        assert_eq!(
            reasons_for(&rejected, object),
            vec![reason.clone()],
            "{object}"
        );
    }
    assert_eq!(rejected.len(), expect.len(), "{rejected:#?}");
    // The rest still compiled, with the default gateway MAC.
    assert_eq!(tables.gateway_mac(), EthernetAddress(DEFAULT_GATEWAY_MAC));
    assert_eq!(tables.vmi_at(P1, 200), tables.vmi_id("ns/vmi-b"));
    // Messages name the object and say what would be valid.
    let message = rejected
        .iter()
        .find(|r| r.object == ObjectRef::LogicalInterface("ns/l-range".into()))
        .unwrap()
        .to_string();
    assert_eq!(
        message,
        "logical interface ns/l-range: VLAN 4095 is out of range: valid VLANs are 0 (untagged) to 4094"
    );
}

#[test]
fn sparse_and_extreme_port_ids() {
    let mut config = fixture();
    for port in &mut config.ports {
        if port.id == P2 {
            port.id = PortId(u16::MAX);
        }
    }
    for li in &mut config.logical_interfaces {
        if li.port == P2 {
            li.port = PortId(u16::MAX);
        }
    }
    let (tables, rejected) = Tables::compile(&config);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(
        tables.vmi_at(PortId(u16::MAX), 0),
        tables.vmi_id("ns/vmi-u")
    );
    assert_eq!(tables.vmi_at(P2, 0), None);
    assert_eq!(tables.vmi_at(PortId(0), 0), None);
}

#[test]
fn empty_config_compiles() {
    let (tables, rejected) = Tables::compile(&NodeConfig::default());
    assert!(rejected.is_empty());
    assert_eq!(tables.gateway_mac(), EthernetAddress(DEFAULT_GATEWAY_MAC));
    assert_eq!(Tables::default().dump(), tables.dump());
}

#[test]
fn recompile_keeps_counters_of_surviving_vmis() {
    let (old, _) = Tables::compile(&fixture());
    let a = old.vmi_id("ns/vmi-a").unwrap();
    crate::Counters::for_worker(3).vmi_rx(old.vmi(a).unwrap().counters(), 100);
    let mut config = fixture();
    config.vmis.retain(|v| v.key != "ns/vmi-b");
    let (new, _) = Tables::recompile(&config, &old);
    let a = new.vmi_id("ns/vmi-a").unwrap();
    assert_eq!(new.vmi(a).unwrap().counters().snapshot().rx_bytes, 100);
    let (fresh, _) = Tables::compile(&config);
    let a = fresh.vmi_id("ns/vmi-a").unwrap();
    assert_eq!(fresh.vmi(a).unwrap().counters().snapshot().rx_bytes, 0);
}

/// Configurations over small universes of keys, ids, VLANs, MACs and
/// addresses, so that conflicts of every kind are frequent.
/// Keys of the peers `arb_config` draws.
const PEERS: [&str; 3] = ["pa", "pb", "pc"];

fn arb_config(unique_li_keys: bool) -> impl Strategy<Value = NodeConfig> {
    const IPS: [&str; 6] = [
        "10.0.0.1", "10.0.0.5", "10.0.0.6", "fd00::5", "fd00::1", "10.0.1.7",
    ];
    const PREFIXES: [&str; 4] = ["0.0.0.0/0", "10.0.0.0/24", "10.0.0.5/32", "fd00::/64"];
    let ports = prop::collection::vec((0u16..4, 0u8..3, 0usize..4), 0..5).prop_map(|v| {
        v.into_iter()
            .map(|(id, kind, net)| PortConfig {
                id: PortId(id),
                name: format!("p{id}"),
                mtu: None,
                kind: match kind {
                    0 => PortKind::Gateway,
                    1 => PortKind::Fabric,
                    _ => PortKind::Host {
                        network: format!("n{net}"),
                        peer_mac: [2, 0, 0, 0, 1, id as u8],
                    },
                },
            })
            .collect::<Vec<_>>()
    });
    // Overlay settings of a network: label, VNI (each from a small set with
    // a reserved or invalid value and duplicates), mode, peers, encapsulations.
    let overlay = (
        prop::option::of(prop::sample::select(vec![5u32, 16, 17, 100])),
        prop::option::of(prop::sample::select(vec![0u32, 1, 2, 5001])),
        0u8..3,
        0u8..8,
        0u8..4,
    );
    let networks =
        prop::collection::vec((0usize..3, 0u32..3, 0u8..8, overlay), 0..4).prop_map(|v| {
            v.into_iter()
                .map(
                    |(k, vrf, subnets, (label, vni, mode, peers, encaps))| NetworkConfig {
                        key: format!("n{k}"),
                        vrf,
                        subnets: [
                            ("10.0.0.0/24", "10.0.0.1"),
                            ("10.0.1.0/24", "10.0.0.1"),
                            ("fd00::/64", "fd00::1"),
                        ]
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| subnets & (1 << i) != 0)
                        .map(|(_, (p, g))| SubnetConfig {
                            prefix: prefix(p),
                            gateway: ip(g),
                        })
                        .collect(),
                        mode: [ForwardingMode::L2L3, ForwardingMode::L2, ForwardingMode::L3]
                            [usize::from(mode)],
                        flood_unknown_unicast: mode == 1,
                        label,
                        routed_label: None,
                        vni,
                        peers: PEERS
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| peers & (1 << i) != 0)
                            .map(|(_, p)| (*p).to_owned())
                            .collect(),
                        encapsulations: match encaps {
                            0 => vec![],
                            1 => vec![Encapsulation::Vxlan],
                            2 => vec![Encapsulation::MplsOverUdp],
                            _ => vec![Encapsulation::Vxlan, Encapsulation::MplsOverUdp],
                        },
                        fabric_exit: [FabricExit::None, FabricExit::Snat, FabricExit::IpFabric]
                            [(k + vrf as usize) % 3],
                        routed_peers: Vec::new(),
                        mtu: (mode == 2).then_some(1400),
                        dhcp: DhcpConfig::default(),
                    },
                )
                .collect::<Vec<_>>()
        });
    let vmis = prop::collection::vec(
        (
            0usize..6,
            0usize..4,
            0u8..5,
            prop::collection::vec(0usize..IPS.len(), 0..3),
            any::<Option<u8>>(),
            any::<bool>(),
        ),
        0..8,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(k, net, mac, ips, pair, port_security)| VmiConfig {
                key: format!("v{k}"),
                network: format!("n{net}"),
                mac: if mac == 4 {
                    [3, 0, 0, 0, 0, 4]
                } else {
                    [2, 0, 0, 0, 0, mac]
                },
                ips: ips.into_iter().map(|i| ip(IPS[i])).collect(),
                allowed_address_pairs: pair
                    .map(|m| AllowedAddressPair {
                        prefix: prefix("10.0.0.128/25"),
                        mac: (m % 3 != 0).then_some([2, 0, 0, 0, 2, m % 3]),
                    })
                    .into_iter()
                    .collect(),
                port_security,
                label: (k % 3 != 0).then_some(16 + k as u32),
            })
            .collect::<Vec<_>>()
    });
    let underlay = prop::option::of((0u16..4, any::<bool>())).prop_map(|u| {
        u.map(|(port, v6)| UnderlayConfig {
            port: PortId(port),
            address: if v6 {
                ip("fd00:100::1")
            } else {
                ip("192.168.100.1")
            },
            mac: [2, 0xfa, 0, 0, 0, 1],
            mtu: 1500,
        })
    });
    const PEER_ADDRS: [&str; 4] = [
        "192.168.100.1",
        "192.168.100.2",
        "192.168.100.3",
        "fd00:100::2",
    ];
    let peers = prop::collection::vec((0usize..3, 0usize..4, 0u8..4), 0..4).prop_map(|v| {
        v.into_iter()
            .map(|(k, addr, encaps)| PeerConfig {
                key: PEERS[k].to_owned(),
                address: ip(PEER_ADDRS[addr]),
                encapsulations: match encaps {
                    0 => vec![],
                    1 => vec![Encapsulation::Vxlan],
                    2 => vec![Encapsulation::MplsOverUdp],
                    _ => vec![Encapsulation::MplsOverUdp, Encapsulation::Vxlan],
                },
            })
            .collect::<Vec<_>>()
    });
    let remotes = prop::collection::vec(
        (
            0usize..4,
            0usize..4,
            0usize..3,
            0u8..6,
            prop::collection::vec(0usize..IPS.len(), 0..2),
            prop::option::of(prop::sample::select(vec![3u32, 17, 200])),
        ),
        0..4,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(k, net, peer, mac, ips, label)| RemoteVmiConfig {
                key: format!("r{k}"),
                network: format!("n{net}"),
                peer: PEERS[peer].to_owned(),
                mac: [2, 0, 0, 0, 0, mac],
                ips: ips.into_iter().map(|i| ip(IPS[i])).collect(),
                label,
            })
            .collect::<Vec<_>>()
    });
    let lis = prop::collection::vec(
        (
            0usize..10,
            0u16..4,
            prop_oneof![0u16..3, Just(4095u16)],
            0usize..7,
            0i64..3,
        ),
        0..12,
    )
    .prop_map(move |v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (k, port, vlan, vmi, created))| {
                let key = if unique_li_keys {
                    format!("l{i}")
                } else {
                    format!("l{k}")
                };
                LogicalInterfaceConfig {
                    order: CreationOrder {
                        created_secs: created,
                        name: key.clone(),
                    },
                    key,
                    port: PortId(port),
                    vlan,
                    vmi: format!("v{vmi}"),
                }
            })
            .collect::<Vec<_>>()
    });
    let routes = prop::collection::vec((0usize..4, 0usize..PREFIXES.len(), 0u16..7), 0..5)
        .prop_map(|v| {
            v.into_iter()
                .map(|(net, p, hop)| RouteConfig {
                    network: format!("n{net}"),
                    prefix: prefix(PREFIXES[p]),
                    next_hop: match hop {
                        4 => NextHopConfig::Discard,
                        5 | 6 => NextHopConfig::Peer(PEERS[usize::from(hop) - 5].to_owned()),
                        _ => NextHopConfig::Port(PortId(hop)),
                    },
                })
                .collect::<Vec<_>>()
        });
    // HA groups over the same ports (contended), multi-homed local and
    // remote VMIs over the same peers.
    let groups = prop::collection::vec(
        (
            0usize..3,
            any::<bool>(),
            prop::collection::vec(0u16..5, 0..3),
        ),
        0..3,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(k, fast, ports)| HaGroupConfig {
                key: format!("g{k}"),
                mode: if fast { HaMode::Fast } else { HaMode::Stp },
                ports: ports.into_iter().map(PortId).collect(),
            })
            .collect::<Vec<_>>()
    });
    let multihomed = prop::collection::vec(
        (
            prop_oneof![
                (0usize..7).prop_map(|v| format!("v{v}")),
                (0usize..4).prop_map(|r| format!("r{r}"))
            ],
            prop::collection::vec(0usize..4, 0..3),
        ),
        0..4,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(vmi, peers)| MultihomedVmiConfig {
                vmi,
                peers: peers
                    .into_iter()
                    .map(|p| PEERS.get(p).copied().unwrap_or("nobody").to_owned())
                    .collect(),
            })
            .collect::<Vec<_>>()
    });
    (
        (ports, networks, vmis, lis, routes),
        (underlay, peers, remotes, groups, multihomed),
    )
        .prop_map(
            |(
                (ports, networks, vmis, lis, routes),
                (underlay, peers, remote_vmis, ha_groups, multihomed),
            )| NodeConfig {
                gateway_mac: DEFAULT_GATEWAY_MAC,
                ports,
                networks,
                vmis,
                logical_interfaces: lis,
                routes,
                underlay,
                peers,
                remote_vmis,
                ha_groups,
                multihomed,
                north_south: NorthSouthConfig::default(),
                punt_limit: Default::default(),
                policies: Default::default(),
                network_links: Vec::new(),
                linked_vmis: Vec::new(),
            },
        )
}

/// A configuration and the same one with every list shuffled.
fn config_and_shuffled() -> impl Strategy<Value = (NodeConfig, NodeConfig)> {
    arb_config(false).prop_flat_map(|c| {
        let base = c.clone();
        let shuffled = (
            (
                Just(c.ports.clone()).prop_shuffle(),
                Just(c.networks.clone()).prop_shuffle(),
                Just(c.vmis.clone()).prop_shuffle(),
                Just(c.logical_interfaces.clone()).prop_shuffle(),
                Just(c.routes.clone()).prop_shuffle(),
            ),
            (
                Just(c.peers.clone()).prop_shuffle(),
                Just(c.remote_vmis.clone()).prop_shuffle(),
                Just(c.ha_groups.clone()).prop_shuffle(),
                Just(c.multihomed.clone()).prop_shuffle(),
            ),
        )
            .prop_map(
                move |(
                    (ports, networks, vmis, logical_interfaces, routes),
                    (peers, remote_vmis, ha_groups, multihomed),
                )| {
                    NodeConfig {
                        gateway_mac: DEFAULT_GATEWAY_MAC,
                        ports,
                        networks,
                        vmis,
                        logical_interfaces,
                        routes,
                        peers,
                        remote_vmis,
                        ha_groups,
                        multihomed,
                        ..base.clone()
                    }
                },
            );
        (Just(c), shuffled)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The same configuration in any order compiles to the same tables and
    /// the same rejections.
    #[test]
    fn compilation_is_independent_of_input_order((config, shuffled) in config_and_shuffled()) {
        let (a, rejected_a) = Tables::compile(&config);
        let (b, rejected_b) = Tables::compile(&shuffled);
        prop_assert_eq!(a.dump(), b.dump());
        prop_assert_eq!(rejected_a, rejected_b);
    }

    /// Every logical interface is either in the tables or rejected, never
    /// both; no two hold a (port, VLAN); the slot holds the winner's VMI;
    /// and one that lost its (port, VLAN) lost to an older one.
    #[test]
    fn logical_interfaces_never_both_win(config in arb_config(true)) {
        let (tables, rejected) = Tables::compile(&config);
        let accepted: Vec<&LogicalInterface> = tables.logical_interfaces().collect();
        let mut slots: Vec<(PortId, u16)> = accepted.iter().map(|l| (l.port, l.vlan)).collect();
        slots.sort();
        let n = slots.len();
        slots.dedup();
        prop_assert_eq!(slots.len(), n, "two logical interfaces hold one (port, VLAN)");
        for li in &config.logical_interfaces {
            let object = ObjectRef::LogicalInterface(li.key.clone());
            let is_accepted = accepted.iter().any(|a| a.key == li.key);
            let reasons: Vec<_> = rejected.iter().filter(|r| r.object == object).collect();
            prop_assert_eq!(usize::from(is_accepted) + reasons.len(), 1, "{}", li.key);
            if is_accepted {
                prop_assert_eq!(tables.vmi_at(li.port, li.vlan), tables.vmi_id(&li.vmi));
            }
            for r in reasons {
                if let RejectReason::VlanTaken { port, vlan, by } = &r.reason {
                    prop_assert_eq!((*port, *vlan), (li.port, li.vlan));
                    let winner = config.logical_interfaces.iter().find(|w| &w.key == by).unwrap();
                    prop_assert!(accepted.iter().any(|a| &a.key == by));
                    prop_assert!((&winner.order, &winner.key) < (&li.order, &li.key));
                }
            }
        }
    }
}

#[test]
fn every_overlay_rejection() {
    use RejectReason::*;
    let mut config = fixture();
    // Peers: a duplicate key, the node's own address, another family, an
    // address in use.
    let peer = |key: &str, address: &str| PeerConfig {
        key: key.into(),
        address: ip(address),
        encapsulations: vec![Encapsulation::Vxlan],
    };
    config.peers.extend([
        peer("node-b", "192.168.100.9"),
        peer("self", "192.168.100.1"),
        peer("v6", "fd00::2"),
        peer("twin", "192.168.100.2"),
        peer("vxlan-only", "192.168.100.60"),
    ]);
    // Networks: a reserved label, a label in use, a VNI out of range, a VNI
    // in use, an unknown peer, and a peer whose only encapsulation the
    // network lacks (VXLAN without a VNI).
    let network = |key: &str, vrf: u32, f: &dyn Fn(&mut NetworkConfig)| {
        let mut n = NetworkConfig {
            key: key.into(),
            vrf,
            ..Default::default()
        };
        f(&mut n);
        n
    };
    config.networks.extend([
        network("ns/x-reserved", 11, &|n| n.label = Some(3)),
        network("ns/x-label", 12, &|n| n.label = Some(NET1_LABEL)),
        network("ns/x-vni0", 13, &|n| n.vni = Some(0)),
        network("ns/x-vni", 14, &|n| n.vni = Some(5001)),
        network("ns/x-peers", 15, &|n| {
            n.label = Some(900);
            n.peers = vec!["nobody".into(), "vxlan-only".into()];
        }),
    ]);
    // Remote VMIs: behind a peer that does not host the network, without a
    // label where MPLS is used, and with a MAC a local VMI has.
    let remote = |key: &str, f: &dyn Fn(&mut RemoteVmiConfig)| {
        let mut r = RemoteVmiConfig {
            key: key.into(),
            network: "ns/net1".into(),
            peer: "node-b".into(),
            mac: [2, 0, 0, 0, 7, key.len() as u8],
            ips: vec![ip("10.0.0.199")],
            label: Some(700),
        };
        f(&mut r);
        r
    };
    config.remote_vmis.extend([
        remote("ns/r-not-hosting", &|r| r.peer = "vxlan-only".into()),
        remote("ns/r-no-label", &|r| r.label = None),
        remote("ns/r-mac", &|r| r.mac = MAC_A),
        remote("ns/vmi-a", &|_| {}),
    ]);
    let (_, rejected) = Tables::compile(&config);
    let expected: Vec<(ObjectRef, RejectReason)> = vec![
        (ObjectRef::Peer("node-b".into()), Duplicate),
        (
            ObjectRef::Peer("self".into()),
            PeerAddressUnusable(ip("192.168.100.1")),
        ),
        (
            ObjectRef::Peer("v6".into()),
            PeerAddressUnusable(ip("fd00::2")),
        ),
        (
            ObjectRef::Peer("twin".into()),
            PeerAddressInUse {
                addr: ip("192.168.100.2"),
                by: "node-b".into(),
            },
        ),
        (
            ObjectRef::Network("ns/x-reserved".into()),
            LabelUnusable {
                label: 3,
                why: "outside 16..=1048575 (0 to 15 are reserved)".into(),
            },
        ),
        (
            ObjectRef::Network("ns/x-label".into()),
            LabelUnusable {
                label: NET1_LABEL,
                why: "already the label of network ns/net1".into(),
            },
        ),
        (
            ObjectRef::Network("ns/x-vni0".into()),
            VniUnusable {
                vni: 0,
                why: "outside 1..=16777215".into(),
            },
        ),
        (
            ObjectRef::Network("ns/x-vni".into()),
            VniUnusable {
                vni: 5001,
                why: "already the VNI of network ns/net1".into(),
            },
        ),
        (
            ObjectRef::Network("ns/x-peers".into()),
            UnknownPeer("nobody".into()),
        ),
        (
            ObjectRef::Network("ns/x-peers".into()),
            NoEncapsulation {
                peer: "vxlan-only".into(),
                why: "VXLAN needs the network's VNI",
            },
        ),
        (
            ObjectRef::RemoteVmi("ns/r-not-hosting".into()),
            UnknownPeer("vxlan-only".into()),
        ),
        (
            ObjectRef::RemoteVmi("ns/r-no-label".into()),
            NoEncapsulation {
                peer: "node-b".into(),
                why: "MPLS over UDP needs the remote VMI's label",
            },
        ),
        (
            ObjectRef::RemoteVmi("ns/r-mac".into()),
            MacInUse {
                mac: EthernetAddress(MAC_A),
                by: "ns/vmi-a".into(),
            },
        ),
        (ObjectRef::RemoteVmi("ns/vmi-a".into()), Duplicate),
    ];
    for (object, reason) in &expected {
        assert!(
            reasons_for(&rejected, object).contains(reason),
            "{object}: {reason:?} missing from {rejected:#?}"
        );
    }
    assert_eq!(rejected.len(), expected.len(), "{rejected:#?}");

    // Without an underlay, no peer is built; an underlay on a port that is
    // not the fabric, or with a tiny MTU, is refused.
    let mut config = fixture();
    config.underlay = None;
    config.remote_vmis.clear();
    let (tables, rejected) = Tables::compile(&config);
    assert!(tables.peers().is_empty());
    assert!(
        rejected
            .iter()
            .any(|r| r.object == ObjectRef::Peer("node-b".into()) && r.reason == NoUnderlay)
    );
    let mut config = fixture();
    config.underlay.as_mut().unwrap().port = P1;
    let (_, rejected) = Tables::compile(&config);
    assert!(reasons_for(&rejected, &ObjectRef::Underlay).contains(&NotAFabricPort(P1)));
    let mut config = fixture();
    config.underlay.as_mut().unwrap().mtu = 500;
    let (_, rejected) = Tables::compile(&config);
    assert!(reasons_for(&rejected, &ObjectRef::Underlay).contains(&MtuTooSmall(500)));
}
