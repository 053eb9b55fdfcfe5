//! Fuzz the pipeline's parse path: every wire view on the raw bytes, then
//! the whole per-frame decision on every kind of port, as a gateway node
//! sees untrusted frames from remote instances.
//!
//! The first byte picks the ingress port and the headroom; the rest is the
//! frame.

#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use trunkline_pipeline::{
    AllowedAddressPair, Counters, CreationOrder, LogicalInterfaceConfig, NetworkConfig,
    NextHopConfig, NodeConfig, PortConfig, PortId, PortKind, RouteConfig, SubnetConfig, Tables,
    Verdict, VmiConfig,
};
use trunkline_wire::{arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, vlan};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A small node: gateway port 1 with VLANs 100 and 200 and untagged, a
/// fabric port 3, a host port 9 with the default route.
fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let vmi = |key: &str, mac: u8, ips: &[&str], port_security| VmiConfig {
            key: key.into(),
            network: "ns/net1".into(),
            mac: [2, 0, 0, 0, 0, mac],
            ips: ips.iter().map(|s| ip(s)).collect(),
            allowed_address_pairs: vec![AllowedAddressPair {
                prefix: "10.0.0.128/25".parse().unwrap(),
                mac: None,
            }],
            port_security,
        };
        let li = |key: &str, vlan, vmi: &str| LogicalInterfaceConfig {
            key: key.into(),
            port: PortId(1),
            vlan,
            vmi: vmi.into(),
            order: CreationOrder::default(),
        };
        let config = NodeConfig {
            ports: vec![
                PortConfig {
                    id: PortId(1),
                    name: "eth1".into(),
                    mtu: None,
                    kind: PortKind::Gateway,
                },
                PortConfig {
                    id: PortId(3),
                    name: "eth0".into(),
                    mtu: None,
                    kind: PortKind::Fabric,
                },
                PortConfig {
                    id: PortId(9),
                    name: "vgw0".into(),
                    mtu: None,
                    kind: PortKind::Host {
                        network: "ns/net1".into(),
                        peer_mac: [2, 0, 0, 0, 0, 0x99],
                    },
                },
            ],
            networks: vec![NetworkConfig {
                key: "ns/net1".into(),
                vrf: 1,
                subnets: vec![
                    SubnetConfig {
                        prefix: "10.0.0.0/24".parse().unwrap(),
                        gateway: ip("10.0.0.1"),
                    },
                    SubnetConfig {
                        prefix: "fd00::/64".parse().unwrap(),
                        gateway: ip("fd00::1"),
                    },
                ],
            }],
            vmis: vec![
                vmi("ns/a", 0x0a, &["10.0.0.10", "fd00::a"], true),
                vmi("ns/b", 0x0b, &["10.0.0.20", "fd00::b"], true),
                vmi("ns/u", 0x0c, &["10.0.0.30"], false),
            ],
            logical_interfaces: vec![
                li("ns/li-a", 100, "ns/a"),
                li("ns/li-b", 200, "ns/b"),
                li("ns/li-u", 0, "ns/u"),
            ],
            routes: vec![RouteConfig {
                network: "ns/net1".into(),
                prefix: "0.0.0.0/0".parse().unwrap(),
                next_hop: NextHopConfig::Port(PortId(9)),
            }],
            ..NodeConfig::default()
        };
        let (tables, rejected) = Tables::compile(&config);
        assert!(rejected.is_empty(), "{rejected:?}");
        tables
    })
}

/// Every view and `Repr::parse` on the bytes: none may panic.
fn parse_views(data: &[u8]) {
    if let Ok(frame) = ethernet::Frame::new_checked(data) {
        let _ = ethernet::Repr::parse(&frame);
        let _ = frame.payload();
    }
    if let Ok(tag) = vlan::Packet::new_checked(data) {
        let _ = vlan::Repr::parse(&tag);
    }
    if let Ok(packet) = arp::Packet::new_checked(data) {
        let _ = arp::Repr::parse(&packet);
    }
    if let Ok(packet) = ipv4::Packet::new_checked(data) {
        let _ = ipv4::Repr::parse(&packet);
        let _ = packet.payload();
    }
    if let Ok(packet) = ipv6::Packet::new_checked(data) {
        let _ = ipv6::Repr::parse(&packet);
        let _ = packet.payload();
    }
    if let Ok(packet) = icmpv4::Packet::new_checked(data) {
        let _ = icmpv4::Repr::parse(&packet);
    }
    if let Ok(packet) = icmpv6::Packet::new_checked(data) {
        let addr = "fd00::1".parse().unwrap();
        let _ = icmpv6::Repr::parse(&addr, &addr, &packet);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    parse_views(frame);
    let _ = trunkline_pipeline::parse_l2(frame);
    let port = PortId([1, 1, 1, 3, 9, 77][usize::from(selector & 0x07) % 6]);
    let headroom = usize::from(selector >> 5);
    let mut buf = vec![0u8; headroom + frame.len() + 16];
    buf[headroom..headroom + frame.len()].copy_from_slice(frame);
    let counters = Counters::new();
    let size = buf.len();
    let verdict =
        trunkline_pipeline::process(tables(), port, &mut buf, headroom, frame.len(), &counters);
    if let Verdict::Transmit { offset, len, .. } = verdict {
        assert!(offset + len <= size);
    }
});
