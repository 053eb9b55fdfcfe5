//! Pipeline tests on hand-built frames: etherparse builds the input and the
//! expected output, the pipeline rewrites in place, and the bytes are
//! compared whole.

use core::net::{IpAddr, Ipv6Addr};

use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, IcmpEchoHeader, Icmpv4Type, Icmpv6Slice, Icmpv6Type,
    IpHeaders, PacketBuilder, PacketBuilderStep, PacketHeaders, VlanId, icmpv6,
};
use proptest::prelude::*;

use super::*;
use crate::config::*;
use crate::tables::Tables;
use trunkline_wire::EthernetAddress;

pub(crate) mod differential;

pub(crate) const GW: MacAddress = DEFAULT_GATEWAY_MAC;
pub(crate) const MAC_A: MacAddress = [2, 0, 0, 0, 0, 0x0a];
pub(crate) const MAC_B: MacAddress = [2, 0, 0, 0, 0, 0x0b];
pub(crate) const MAC_C: MacAddress = [2, 0, 0, 0, 0, 0x0c];
pub(crate) const MAC_D: MacAddress = [2, 0, 0, 0, 0, 0x0d];
pub(crate) const MAC_U: MacAddress = [2, 0, 0, 0, 0, 0x1e];
pub(crate) const PAIR_MAC: MacAddress = [2, 0, 0, 0, 0, 0xaa];
pub(crate) const PEER_MAC: MacAddress = [2, 0, 0, 0, 0, 0x99];
pub(crate) const BROADCAST: MacAddress = [0xff; 6];
pub(crate) const MAC_E: MacAddress = [2, 0, 0, 0, 0, 0x0e];
/// A VMI on peer node-b.
pub(crate) const MAC_R: MacAddress = [2, 0, 0, 0, 0, 0x2e];
/// A static endpoint behind the external VTEP.
pub(crate) const MAC_X: MacAddress = [2, 0, 0, 0, 0, 0x3e];
/// The fabric port's MAC, and the underlay next hop's.
pub(crate) const FABRIC_MAC: MacAddress = [2, 0xfa, 0, 0, 0, 1];
pub(crate) const NEXT_HOP_MAC: MacAddress = [2, 0xfa, 0, 0, 0, 2];
pub(crate) const UNDERLAY: [u8; 4] = [192, 168, 100, 1];
pub(crate) const NODE_B: [u8; 4] = [192, 168, 100, 2];
pub(crate) const XVTEP: [u8; 4] = [192, 168, 100, 50];
pub(crate) const NET1_LABEL: u32 = 100;
pub(crate) const NET1_VNI: u32 = 5001;
pub(crate) const NET2_LABEL: u32 = 300;
pub(crate) const LABEL_A: u32 = 101;
pub(crate) const LABEL_R: u32 = 200;
pub(crate) const P1: PortId = PortId(1);
pub(crate) const P2: PortId = PortId(2);
pub(crate) const FABRIC: PortId = PortId(3);
pub(crate) const VGW: PortId = PortId(9);

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

pub(crate) fn prefix(s: &str) -> IpPrefix {
    s.parse().unwrap()
}

pub(crate) fn li(
    key: &str,
    port: PortId,
    vlan: u16,
    vmi: &str,
    created: i64,
) -> LogicalInterfaceConfig {
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

pub(crate) fn vmi(key: &str, network: &str, mac: MacAddress, ips: &[&str]) -> VmiConfig {
    VmiConfig {
        key: key.into(),
        network: network.into(),
        mac,
        ips: ips.iter().map(|s| ip(s)).collect(),
        allowed_address_pairs: Vec::new(),
        port_security: true,
        label: None,
    }
}

/// Two gateway ports, a fabric port and a virtual gateway tap; three
/// networks, two with overlapping IPv4 space: net1 (bridges and routes), net2
/// (routes only), net3 (bridges only); VMIs on VLANs 100, 200, 300, 400 of
/// port 1 and untagged on port 2; one VMI without a logical interface. The
/// overlay: this node's underlay 192.168.100.1 on the fabric port, peer
/// node-b (MPLS over UDP and VXLAN) hosting net1 and net2 with a VMI of net1,
/// and an external VTEP (VXLAN only) hosting net1 with a static endpoint.
pub(crate) fn fixture() -> NodeConfig {
    let mut a = vmi("ns/vmi-a", "ns/net1", MAC_A, &["10.0.0.10", "fd00::a"]);
    a.label = Some(LABEL_A);
    a.allowed_address_pairs.push(AllowedAddressPair {
        prefix: prefix("10.0.0.200/32"),
        mac: Some(PAIR_MAC),
    });
    let mut u = vmi("ns/vmi-u", "ns/net1", MAC_U, &["10.0.0.50"]);
    u.port_security = false;
    NodeConfig {
        gateway_mac: GW,
        ports: vec![
            PortConfig {
                id: P1,
                name: "eth1".into(),
                mtu: None,
                kind: PortKind::Gateway,
            },
            PortConfig {
                id: P2,
                name: "eth2".into(),
                mtu: None,
                kind: PortKind::Gateway,
            },
            PortConfig {
                id: FABRIC,
                name: "eth0".into(),
                mtu: None,
                kind: PortKind::Fabric,
            },
            PortConfig {
                id: VGW,
                name: "vgw0".into(),
                mtu: None,
                kind: PortKind::Host {
                    network: "ns/net1".into(),
                    peer_mac: PEER_MAC,
                },
            },
        ],
        networks: vec![
            NetworkConfig {
                key: "ns/net1".into(),
                vrf: 1,
                subnets: vec![
                    SubnetConfig {
                        prefix: prefix("10.0.0.0/24"),
                        gateway: ip("10.0.0.1"),
                    },
                    SubnetConfig {
                        prefix: prefix("10.0.1.0/24"),
                        gateway: ip("10.0.1.1"),
                    },
                    SubnetConfig {
                        prefix: prefix("fd00::/64"),
                        gateway: ip("fd00::1"),
                    },
                ],
                vni: Some(NET1_VNI),
                label: Some(NET1_LABEL),
                peers: vec!["node-b".into(), "xvtep".into()],
                ..Default::default()
            },
            NetworkConfig {
                key: "ns/net2".into(),
                vrf: 2,
                subnets: vec![
                    SubnetConfig {
                        prefix: prefix("10.0.0.0/24"),
                        gateway: ip("10.0.0.1"),
                    },
                    SubnetConfig {
                        prefix: prefix("fd02::/64"),
                        gateway: ip("fd02::1"),
                    },
                ],
                mode: ForwardingMode::L3,
                label: Some(NET2_LABEL),
                peers: vec!["node-b".into()],
                ..Default::default()
            },
            NetworkConfig {
                key: "ns/net3".into(),
                vrf: 3,
                subnets: vec![SubnetConfig {
                    prefix: prefix("10.3.0.0/24"),
                    gateway: ip("10.3.0.1"),
                }],
                mode: ForwardingMode::L2,
                ..Default::default()
            },
        ],
        underlay: Some(UnderlayConfig {
            port: FABRIC,
            address: IpAddr::from(UNDERLAY),
            mac: FABRIC_MAC,
            mtu: 1500,
        }),
        peers: vec![
            PeerConfig {
                key: "node-b".into(),
                address: IpAddr::from(NODE_B),
                encapsulations: vec![Encapsulation::MplsOverUdp, Encapsulation::Vxlan],
            },
            PeerConfig {
                key: "xvtep".into(),
                address: IpAddr::from(XVTEP),
                encapsulations: vec![Encapsulation::Vxlan],
            },
        ],
        remote_vmis: vec![
            RemoteVmiConfig {
                key: "ns/vmi-r".into(),
                network: "ns/net1".into(),
                peer: "node-b".into(),
                mac: MAC_R,
                ips: vec![ip("10.0.0.60"), ip("fd00::60")],
                label: Some(LABEL_R),
            },
            RemoteVmiConfig {
                key: "ns/ext-1".into(),
                network: "ns/net1".into(),
                peer: "xvtep".into(),
                mac: MAC_X,
                ips: vec![ip("10.0.0.70")],
                label: None,
            },
        ],
        vmis: vec![
            a,
            vmi("ns/vmi-b", "ns/net1", MAC_B, &["10.0.1.20", "fd00::b"]),
            vmi("ns/vmi-c", "ns/net2", MAC_C, &["10.0.0.10", "fd02::c"]),
            vmi("ns/vmi-d", "ns/net1", MAC_D, &["10.0.0.40"]),
            vmi("ns/vmi-e", "ns/net3", MAC_E, &["10.3.0.10"]),
            u,
        ],
        logical_interfaces: vec![
            li("ns/li-a", P1, 100, "ns/vmi-a", 10),
            li("ns/li-b", P1, 200, "ns/vmi-b", 11),
            li("ns/li-c", P1, 300, "ns/vmi-c", 12),
            li("ns/li-u", P2, 0, "ns/vmi-u", 13),
            li("ns/li-e", P1, 400, "ns/vmi-e", 14),
        ],
        routes: vec![
            RouteConfig {
                network: "ns/net1".into(),
                prefix: prefix("0.0.0.0/0"),
                next_hop: NextHopConfig::Port(VGW),
            },
            RouteConfig {
                network: "ns/net1".into(),
                prefix: prefix("192.0.2.0/24"),
                next_hop: NextHopConfig::Discard,
            },
        ],
        ..NodeConfig::default()
    }
}

/// Compiled tables, counters, and a way to run one frame.
pub(crate) struct Rig {
    pub(crate) tables: Tables,
    pub(crate) counters: Counters,
}

impl Rig {
    pub(crate) fn new(config: &NodeConfig) -> Rig {
        let (tables, rejected) = Tables::compile(config);
        assert!(rejected.is_empty(), "unexpected rejections: {rejected:?}");
        // The agent resolves the next hop toward node-b; the external VTEP's
        // stays unresolved.
        tables.set_next_hop_mac(IpAddr::from(NODE_B), Some(EthernetAddress(NEXT_HOP_MAC)));
        Rig {
            tables,
            counters: Counters::new(),
        }
    }

    /// Run a frame with the usual headroom and some tailroom; return the
    /// verdict and, for a transmit, the frame as it leaves.
    pub(crate) fn run(&self, port: PortId, frame: &[u8]) -> (Verdict, Vec<u8>) {
        self.run_with(port, frame, HEADROOM, 64)
    }

    pub(crate) fn run_with(
        &self,
        port: PortId,
        frame: &[u8],
        headroom: usize,
        tailroom: usize,
    ) -> (Verdict, Vec<u8>) {
        self.run_at(0, port, frame, headroom, tailroom)
    }

    /// [`Rig::run_with`] at time `now_ms` of the budgets' clock.
    pub(crate) fn run_at(
        &self,
        now_ms: u64,
        port: PortId,
        frame: &[u8],
        headroom: usize,
        tailroom: usize,
    ) -> (Verdict, Vec<u8>) {
        let mut buf = vec![0xee; headroom + frame.len() + tailroom];
        buf[headroom..headroom + frame.len()].copy_from_slice(frame);
        let cells = self.cells();
        let verdict = Pipeline::new(&self.tables, &self.counters)
            .at(now_ms)
            .process(port, &mut buf, headroom, frame.len());
        let out = match verdict {
            Verdict::Transmit {
                offset, len, vmi, ..
            } => {
                // The rig plays the I/O layer: the frame was sent.
                Pipeline::new(&self.tables, &self.counters).sent(vmi, len);
                buf[offset..offset + len].to_vec()
            }
            _ => Vec::new(),
        };
        let moved_a_cell = self.cells() != cells;
        crate::kernel::differential::record(
            &self.tables,
            port,
            frame,
            headroom,
            verdict,
            &out,
            moved_a_cell,
        );
        (verdict, out)
    }

    /// The runtime cells the pipeline writes from traffic: the holder of
    /// every allowed address pair's address, and the `seen` mark of every
    /// multi-homed VMI (gateway HA).
    fn cells(&self) -> (Vec<u32>, Vec<bool>) {
        use core::sync::atomic::Ordering::Relaxed;
        let holders = self.tables.pairs.iter().map(|p| p.holder.load(Relaxed));
        let seen = self
            .tables
            .vmis
            .iter()
            .filter_map(|v| v.path.as_deref().map(|p| p.seen.load(Relaxed)));
        (holders.collect(), seen.collect())
    }

    pub(crate) fn dropped(&self, port: PortId, frame: &[u8]) -> DropReason {
        match self.run(port, frame).0 {
            Verdict::Drop(reason) => reason,
            other => panic!("expected a drop, got {other:?}"),
        }
    }

    pub(crate) fn vmi(&self, key: &str) -> crate::counters::VmiCounterSnapshot {
        let id = self.tables.vmi_id(key).unwrap();
        self.tables.vmi(id).unwrap().counters().snapshot()
    }
}

pub(crate) fn ipv4_step(
    src_mac: MacAddress,
    dst_mac: MacAddress,
    vlan: Option<u16>,
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
) -> PacketBuilderStep<IpHeaders> {
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    match vlan {
        Some(v) => eth
            .single_vlan(VlanId::try_new(v).unwrap())
            .ipv4(src, dst, ttl),
        None => eth.ipv4(src, dst, ttl),
    }
}

pub(crate) fn ipv6_step(
    src_mac: MacAddress,
    dst_mac: MacAddress,
    vlan: Option<u16>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
) -> PacketBuilderStep<IpHeaders> {
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    match vlan {
        Some(v) => {
            eth.single_vlan(VlanId::try_new(v).unwrap())
                .ipv6(src.octets(), dst.octets(), hop_limit)
        }
        None => eth.ipv6(src.octets(), dst.octets(), hop_limit),
    }
}

pub(crate) fn udp4(
    src_mac: MacAddress,
    dst_mac: MacAddress,
    vlan: Option<u16>,
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
) -> Vec<u8> {
    let mut out = Vec::new();
    ipv4_step(src_mac, dst_mac, vlan, src, dst, ttl)
        .udp(40000, 53)
        .write(&mut out, b"some payload")
        .unwrap();
    out
}

pub(crate) fn udp6(
    src_mac: MacAddress,
    dst_mac: MacAddress,
    vlan: Option<u16>,
    src: &str,
    dst: &str,
    hop_limit: u8,
) -> Vec<u8> {
    let mut out = Vec::new();
    ipv6_step(src_mac, dst_mac, vlan, v6(src), v6(dst), hop_limit)
        .udp(40000, 53)
        .write(&mut out, b"some payload")
        .unwrap();
    out
}

pub(crate) fn ping4(src_mac: MacAddress, vlan: Option<u16>, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    ipv4_step(src_mac, GW, vlan, src, dst, 64)
        .icmpv4_echo_request(0x1234, 7)
        .write(&mut out, b"abcdefgh")
        .unwrap();
    out
}

pub(crate) fn ping6(src_mac: MacAddress, vlan: Option<u16>, src: &str, dst: &str) -> Vec<u8> {
    let mut out = Vec::new();
    ipv6_step(src_mac, GW, vlan, v6(src), v6(dst), 64)
        .icmpv6_echo_request(0x1234, 7)
        .write(&mut out, b"abcdefgh")
        .unwrap();
    out
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn arp(
    src_mac: MacAddress,
    dst_mac: MacAddress,
    vlan: Option<u16>,
    operation: ArpOperation,
    sha: MacAddress,
    spa: [u8; 4],
    tha: MacAddress,
    tpa: [u8; 4],
) -> Vec<u8> {
    let packet = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        etherparse::EtherType::IPV4,
        operation,
        &sha,
        &spa,
        &tha,
        &tpa,
    )
    .unwrap();
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    let mut out = Vec::new();
    match vlan {
        Some(v) => eth
            .single_vlan(VlanId::try_new(v).unwrap())
            .arp(packet)
            .write(&mut out),
        None => eth.arp(packet).write(&mut out),
    }
    .unwrap();
    out
}

pub(crate) fn arp_request(
    src_mac: MacAddress,
    vlan: Option<u16>,
    spa: [u8; 4],
    tpa: [u8; 4],
) -> Vec<u8> {
    arp(
        src_mac,
        BROADCAST,
        vlan,
        ArpOperation::REQUEST,
        src_mac,
        spa,
        [0; 6],
        tpa,
    )
}

/// A neighbour solicitation; multicast to the target's solicited-node
/// group unless `unicast_to_gateway`.
pub(crate) fn ns(
    src_mac: MacAddress,
    vlan: Option<u16>,
    src: Ipv6Addr,
    target: Ipv6Addr,
    slla: Option<MacAddress>,
    hop_limit: u8,
    unicast_to_gateway: bool,
) -> Vec<u8> {
    let (dst_ip, dst_mac) = if unicast_to_gateway {
        (target, GW)
    } else {
        let group = trunkline_wire::ipv6::solicited_node(&target);
        (group, EthernetAddress::from_ipv6_multicast(&group).0)
    };
    let mut payload = target.octets().to_vec();
    if let Some(mac) = slla {
        payload.extend_from_slice(&[1, 1]);
        payload.extend_from_slice(&mac);
    }
    let mut out = Vec::new();
    ipv6_step(src_mac, dst_mac, vlan, src, dst_ip, hop_limit)
        .icmpv6(Icmpv6Type::NeighborSolicitation)
        .write(&mut out, &payload)
        .unwrap();
    out
}

fn headers(frame: &[u8]) -> PacketHeaders<'_> {
    PacketHeaders::from_ethernet_slice(frame).unwrap()
}

fn vlan_of(frame: &[u8]) -> Option<u16> {
    headers(frame).link_exts.iter().find_map(|ext| match ext {
        etherparse::LinkExtHeader::Vlan(v) => Some(v.vlan_id.value()),
        _ => None,
    })
}

#[test]
fn routes_ipv4_from_vlan_100_to_vlan_200() {
    let rig = Rig::new(&fixture());
    let frame = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64);
    let (verdict, out) = rig.run(P1, &frame);
    assert_eq!(
        verdict,
        Verdict::Transmit {
            port: P1,
            offset: HEADROOM,
            len: frame.len(),
            vmi: rig.tables.vmi_id("ns/vmi-b"),
        }
    );
    // The same packet as etherparse would build it toward B: VLAN 200,
    // MACs rewritten, TTL 63 with its header checksum.
    let expected = udp4(GW, MAC_B, Some(200), [10, 0, 0, 10], [10, 0, 1, 20], 63);
    assert_eq!(out, expected);
    assert_eq!(rig.vmi("ns/vmi-a").rx_packets, 1);
    assert_eq!(rig.vmi("ns/vmi-a").rx_bytes, frame.len() as u64);
    assert_eq!(rig.vmi("ns/vmi-b").tx_packets, 1);
    assert_eq!(rig.counters.snapshot().forwarded, 1);
}

#[test]
fn routes_ipv6_between_vlans() {
    let rig = Rig::new(&fixture());
    let frame = udp6(MAC_A, GW, Some(100), "fd00::a", "fd00::b", 64);
    let (verdict, out) = rig.run(P1, &frame);
    assert!(matches!(verdict, Verdict::Transmit { port: P1, .. }));
    assert_eq!(out, udp6(GW, MAC_B, Some(200), "fd00::a", "fd00::b", 63));
}

#[test]
fn untags_toward_vlan_0_and_tags_back() {
    let rig = Rig::new(&fixture());
    // Tagged 100 -> untagged on port 2: the tag is popped.
    let frame = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 0, 50], 64);
    let (verdict, out) = rig.run(P1, &frame);
    assert_eq!(
        verdict,
        Verdict::Transmit {
            port: P2,
            offset: HEADROOM + 4,
            len: frame.len() - 4,
            vmi: rig.tables.vmi_id("ns/vmi-u"),
        }
    );
    assert_eq!(
        out,
        udp4(GW, MAC_U, None, [10, 0, 0, 10], [10, 0, 0, 50], 63)
    );
    // Untagged on port 2 -> VLAN 100: a tag is pushed into the headroom.
    let frame = udp4(MAC_U, GW, None, [10, 0, 0, 50], [10, 0, 0, 10], 64);
    let (verdict, out) = rig.run(P2, &frame);
    assert_eq!(
        verdict,
        Verdict::Transmit {
            port: P1,
            offset: HEADROOM - 4,
            len: frame.len() + 4,
            vmi: rig.tables.vmi_id("ns/vmi-a"),
        }
    );
    assert_eq!(
        out,
        udp4(GW, MAC_A, Some(100), [10, 0, 0, 50], [10, 0, 0, 10], 63)
    );
    assert_eq!(vlan_of(&out), Some(100));
}

#[test]
fn arp_proxy_reply_bytes() {
    let rig = Rig::new(&fixture());
    let request = arp_request(MAC_A, Some(100), [10, 0, 0, 10], [10, 0, 0, 1]);
    let (verdict, out) = rig.run(P1, &request);
    assert_eq!(
        verdict,
        Verdict::Transmit {
            port: P1,
            offset: HEADROOM,
            len: request.len(),
            vmi: rig.tables.vmi_id("ns/vmi-a"),
        }
    );
    let expected = arp(
        GW,
        MAC_A,
        Some(100),
        ArpOperation::REPLY,
        GW,
        [10, 0, 0, 1],
        MAC_A,
        [10, 0, 0, 10],
    );
    assert_eq!(out, expected);
    assert_eq!(rig.vmi("ns/vmi-a").tx_packets, 1);
}

#[test]
fn a_vmi_flooding_questions_is_limited_and_the_others_are_not() {
    let rig = Rig::new(&fixture());
    let burst = u64::from(crate::config::PuntLimit::default().burst);
    let flood = arp_request(MAC_A, Some(100), [10, 0, 0, 10], [10, 0, 0, 1]);
    let other = arp_request(MAC_B, Some(200), [10, 0, 1, 20], [10, 0, 1, 1]);
    let answered = |frame: &[u8]| matches!(rig.run(P1, frame).0, Verdict::Transmit { .. });
    // At one instant, vmi-a gets its burst answered, then nothing.
    let pipeline_at = |ms| {
        let rig = &rig;
        move |frame: &[u8]| {
            matches!(
                rig.run_at(ms, P1, frame, HEADROOM, 64).0,
                Verdict::Transmit { .. }
            )
        }
    };
    let at_1s = pipeline_at(1000);
    let sent = (0..burst * 3).filter(|_| at_1s(&flood)).count() as u64;
    assert_eq!(sent, burst, "the burst, and nothing more at one instant");
    assert_eq!(
        rig.counters.snapshot().drops(DropReason::PuntRateLimited),
        burst * 2
    );
    // Another instance is not affected.
    assert!(answered(&other));
    // A second later vmi-a has its rate's worth again (capped by the burst).
    let at_2s = pipeline_at(2000);
    assert!(at_2s(&flood));
}

#[test]
fn arp_proxy_for_routed_targets_and_unicast_requests() {
    let rig = Rig::new(&fixture());
    // Another VMI's address (a host route): answered with the gateway MAC.
    let request = arp_request(MAC_A, Some(100), [10, 0, 0, 10], [10, 0, 1, 20]);
    let (_, out) = rig.run(P1, &request);
    let expected = arp(
        GW,
        MAC_A,
        Some(100),
        ArpOperation::REPLY,
        GW,
        [10, 0, 1, 20],
        MAC_A,
        [10, 0, 0, 10],
    );
    assert_eq!(out, expected);
    // An address behind the default route (the virtual gateway).
    let request = arp_request(MAC_A, Some(100), [10, 0, 0, 10], [8, 8, 8, 8]);
    assert!(matches!(rig.run(P1, &request).0, Verdict::Transmit { .. }));
    // A unicast refresh to the gateway MAC.
    let request = arp(
        MAC_A,
        GW,
        Some(100),
        ArpOperation::REQUEST,
        MAC_A,
        [10, 0, 0, 10],
        GW,
        [10, 0, 0, 1],
    );
    assert!(matches!(rig.run(P1, &request).0, Verdict::Transmit { .. }));
    // An ARP probe (sender 0.0.0.0) for the gateway address: a conflict, so
    // answered (to 0.0.0.0).
    let request = arp_request(MAC_A, Some(100), [0, 0, 0, 0], [10, 0, 0, 1]);
    assert!(matches!(rig.run(P1, &request).0, Verdict::Transmit { .. }));
}

#[test]
fn neighbor_advertisement_for_the_gateway() {
    let rig = Rig::new(&fixture());
    let request = ns(
        MAC_A,
        Some(100),
        v6("fd00::a"),
        v6("fd00::1"),
        Some(MAC_A),
        255,
        false,
    );
    let (verdict, out) = rig.run(P1, &request);
    assert_eq!(
        verdict,
        Verdict::Transmit {
            port: P1,
            offset: HEADROOM,
            len: 18 + 40 + 32,
            vmi: rig.tables.vmi_id("ns/vmi-a"),
        }
    );
    // The expected NA, built by etherparse.
    let mut payload = v6("fd00::1").octets().to_vec();
    payload.extend_from_slice(&[2, 1]);
    payload.extend_from_slice(&GW);
    let mut expected = Vec::new();
    ipv6_step(GW, MAC_A, Some(100), v6("fd00::1"), v6("fd00::a"), 255)
        .icmpv6(Icmpv6Type::NeighborAdvertisement(
            icmpv6::NeighborAdvertisementHeader {
                router: true,
                solicited: true,
                r#override: true,
            },
        ))
        .write(&mut expected, &payload)
        .unwrap();
    assert_eq!(out, expected);
    // And etherparse agrees on the checksum and the option.
    let icmp = Icmpv6Slice::from_slice(&out[18 + 40..]).unwrap();
    assert!(icmp.is_checksum_valid(v6("fd00::1").octets(), v6("fd00::a").octets()));
    match icmp.payload_slice().unwrap() {
        icmpv6::Icmpv6PayloadSlice::NeighborAdvertisement(na) => {
            assert_eq!(na.target_address(), v6("fd00::1"));
            match na.options_iterator().next().unwrap().unwrap() {
                icmpv6::NdpOptionSlice::TargetLinkLayerAddress(tlla) => {
                    assert_eq!(tlla.link_layer_address(), &GW)
                }
                other => panic!("expected a TLLA option, got {other:?}"),
            }
        }
        other => panic!("expected an NA, got {other:?}"),
    }
}

#[test]
fn neighbor_advertisement_for_a_routed_target_and_for_dad() {
    let rig = Rig::new(&fixture());
    // B's address, proxied: not a router, solicited, override.
    let request = ns(
        MAC_A,
        Some(100),
        v6("fd00::a"),
        v6("fd00::b"),
        Some(MAC_A),
        255,
        false,
    );
    let (_, out) = rig.run(P1, &request);
    let icmp = Icmpv6Slice::from_slice(&out[18 + 40..]).unwrap();
    match icmp.icmp_type() {
        Icmpv6Type::NeighborAdvertisement(h) => {
            assert!(!h.router && h.solicited && h.r#override)
        }
        other => panic!("expected an NA, got {other:?}"),
    }
    // DAD for the gateway address: defended, to all nodes, not solicited.
    let request = ns(
        MAC_A,
        Some(100),
        Ipv6Addr::UNSPECIFIED,
        v6("fd00::1"),
        None,
        255,
        false,
    );
    let (verdict, out) = rig.run(P1, &request);
    assert!(matches!(verdict, Verdict::Transmit { .. }), "{verdict:?}");
    let h = headers(&out);
    match h.link {
        Some(etherparse::LinkHeader::Ethernet2(eth)) => {
            assert_eq!(eth.destination, [0x33, 0x33, 0, 0, 0, 1])
        }
        other => panic!("{other:?}"),
    }
    let icmp = Icmpv6Slice::from_slice(&out[18 + 40..]).unwrap();
    assert!(icmp.is_checksum_valid(v6("fd00::1").octets(), v6("ff02::1").octets()));
    match icmp.icmp_type() {
        Icmpv6Type::NeighborAdvertisement(h) => assert!(h.router && !h.solicited),
        other => panic!("expected an NA, got {other:?}"),
    }
    // A unicast NS (no option) to the gateway MAC, with room to grow.
    let request = ns(
        MAC_A,
        Some(100),
        v6("fd00::a"),
        v6("fd00::1"),
        None,
        255,
        true,
    );
    let (verdict, _) = rig.run(P1, &request);
    assert_eq!(
        verdict,
        Verdict::Transmit {
            port: P1,
            offset: HEADROOM,
            len: request.len() + 8,
            vmi: rig.tables.vmi_id("ns/vmi-a"),
        }
    );
}

#[test]
fn echo_replies() {
    let rig = Rig::new(&fixture());
    let (verdict, out) = rig.run(P1, &ping4(MAC_A, Some(100), [10, 0, 0, 10], [10, 0, 0, 1]));
    assert!(matches!(verdict, Verdict::Transmit { port: P1, .. }));
    let mut expected = Vec::new();
    ipv4_step(GW, MAC_A, Some(100), [10, 0, 0, 1], [10, 0, 0, 10], 64)
        .icmpv4(Icmpv4Type::EchoReply(IcmpEchoHeader { id: 0x1234, seq: 7 }))
        .write(&mut expected, b"abcdefgh")
        .unwrap();
    assert_eq!(out, expected);

    let (verdict, out) = rig.run(P1, &ping6(MAC_A, Some(100), "fd00::a", "fd00::1"));
    assert!(matches!(verdict, Verdict::Transmit { port: P1, .. }));
    let mut expected = Vec::new();
    ipv6_step(GW, MAC_A, Some(100), v6("fd00::1"), v6("fd00::a"), 64)
        .icmpv6(Icmpv6Type::EchoReply(IcmpEchoHeader { id: 0x1234, seq: 7 }))
        .write(&mut expected, b"abcdefgh")
        .unwrap();
    assert_eq!(out, expected);
}

#[test]
fn bridges_to_another_vmi_of_the_network() {
    let rig = Rig::new(&fixture());
    let frame = udp4(MAC_A, MAC_B, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64);
    let (verdict, out) = rig.run(P1, &frame);
    assert!(matches!(verdict, Verdict::Transmit { port: P1, .. }));
    // Only the VLAN changes: no TTL decrement, MACs kept.
    assert_eq!(
        out,
        udp4(MAC_A, MAC_B, Some(200), [10, 0, 0, 10], [10, 0, 1, 20], 64)
    );
    // A VMI of another network is unknown here.
    let frame = udp4(MAC_A, MAC_C, Some(100), [10, 0, 0, 10], [10, 0, 0, 10], 64);
    assert_eq!(rig.dropped(P1, &frame), DropReason::UnknownUnicast);
}

#[test]
fn port_security() {
    let rig = Rig::new(&fixture());
    let to_b = |mac, src| udp4(mac, GW, Some(100), src, [10, 0, 1, 20], 64);
    assert_eq!(
        rig.dropped(P1, &to_b([2, 0, 0, 0, 0, 0xff], [10, 0, 0, 10])),
        DropReason::SourceMacSpoofed
    );
    assert_eq!(
        rig.dropped(P1, &to_b(MAC_A, [10, 0, 0, 11])),
        DropReason::SourceIpSpoofed
    );
    // The allowed pair: its MAC with its prefix passes...
    assert!(matches!(
        rig.run(P1, &to_b(PAIR_MAC, [10, 0, 0, 200])).0,
        Verdict::Transmit { .. }
    ));
    // ...but not the pair's prefix with the VMI's own MAC, nor the VMI's
    // address with the pair's MAC.
    assert_eq!(
        rig.dropped(P1, &to_b(MAC_A, [10, 0, 0, 200])),
        DropReason::SourceIpSpoofed
    );
    assert_eq!(
        rig.dropped(P1, &to_b(PAIR_MAC, [10, 0, 0, 10])),
        DropReason::SourceIpSpoofed
    );
    // ARP: a sender address not the VMI's, or a sender MAC not the frame's.
    let request = arp_request(MAC_A, Some(100), [10, 0, 0, 99], [10, 0, 0, 1]);
    assert_eq!(rig.dropped(P1, &request), DropReason::SourceIpSpoofed);
    let request = arp(
        MAC_A,
        BROADCAST,
        Some(100),
        ArpOperation::REQUEST,
        MAC_B,
        [10, 0, 0, 10],
        [0; 6],
        [10, 0, 0, 1],
    );
    assert_eq!(rig.dropped(P1, &request), DropReason::SourceMacSpoofed);
    // IPv6 from another address; link-local is for ND only.
    let frame = udp6(MAC_A, GW, Some(100), "fd00::99", "fd00::b", 64);
    assert_eq!(rig.dropped(P1, &frame), DropReason::SourceIpSpoofed);
    let frame = udp6(MAC_A, GW, Some(100), "fe80::a", "fd00::b", 64);
    assert_eq!(rig.dropped(P1, &frame), DropReason::SourceIpSpoofed);
    let request = ns(
        MAC_A,
        Some(100),
        v6("fe80::a"),
        v6("fd00::1"),
        Some(MAC_A),
        255,
        false,
    );
    assert!(matches!(rig.run(P1, &request).0, Verdict::Transmit { .. }));
    // An NS whose source link-layer option is not the frame's source.
    let request = ns(
        MAC_A,
        Some(100),
        v6("fd00::a"),
        v6("fd00::1"),
        Some(MAC_B),
        255,
        false,
    );
    assert_eq!(rig.dropped(P1, &request), DropReason::SourceMacSpoofed);
    // Without port security anything goes.
    let frame = udp4(
        [2, 0, 0, 0, 0, 0x77],
        GW,
        None,
        [192, 168, 7, 7],
        [10, 0, 1, 20],
        64,
    );
    assert!(matches!(rig.run(P2, &frame).0, Verdict::Transmit { .. }));
    assert_eq!(rig.vmi("ns/vmi-a").rx_dropped, 9);
}

#[test]
fn deleted_logical_interface_stops_traffic() {
    let mut config = fixture();
    let rig = Rig::new(&config);
    let a_to_b = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64);
    let from_b = udp4(MAC_B, GW, Some(200), [10, 0, 1, 20], [10, 0, 0, 10], 64);
    assert!(matches!(rig.run(P1, &a_to_b).0, Verdict::Transmit { .. }));
    assert!(matches!(rig.run(P1, &from_b).0, Verdict::Transmit { .. }));

    config.logical_interfaces.retain(|li| li.key != "ns/li-b");
    let (tables, rejected) = Tables::recompile(&config, &rig.tables);
    assert!(rejected.is_empty());
    let rig2 = Rig {
        tables,
        counters: Counters::new(),
    };
    assert_eq!(rig2.dropped(P1, &a_to_b), DropReason::VmiUnreachable);
    assert_eq!(rig2.dropped(P1, &from_b), DropReason::NoLogicalInterface);
    // The counters of the VMIs carried over.
    assert_eq!(rig2.vmi("ns/vmi-a").rx_packets, 2);
    assert_eq!(rig2.vmi("ns/vmi-b").tx_packets, 1);
    assert_eq!(rig2.vmi("ns/vmi-b").rx_packets, 1);
}

#[test]
fn ha_vmi_leaves_by_its_oldest_logical_interface() {
    let mut config = fixture();
    // B is also reached over port 2 VLAN 201, by an older logical interface.
    config
        .logical_interfaces
        .push(li("ns/li-b-ha", P2, 201, "ns/vmi-b", 5));
    let rig = Rig::new(&config);
    let frame = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64);
    let (verdict, out) = rig.run(P1, &frame);
    assert!(matches!(verdict, Verdict::Transmit { port: P2, .. }));
    assert_eq!(vlan_of(&out), Some(201));
    // B's frames are accepted on both.
    for (port, vlan) in [(P1, 200), (P2, 201)] {
        let from_b = udp4(MAC_B, GW, Some(vlan), [10, 0, 1, 20], [10, 0, 0, 10], 64);
        assert!(matches!(
            rig.run(port, &from_b).0,
            Verdict::Transmit { port: P1, .. }
        ));
    }
}

#[test]
fn host_port_routes_in_its_vrf() {
    let rig = Rig::new(&fixture());
    // From the virtual gateway to B.
    let frame = udp4(PEER_MAC, GW, None, [8, 8, 8, 8], [10, 0, 1, 20], 64);
    let (verdict, out) = rig.run(VGW, &frame);
    assert!(matches!(verdict, Verdict::Transmit { port: P1, .. }));
    assert_eq!(
        out,
        udp4(GW, MAC_B, Some(200), [8, 8, 8, 8], [10, 0, 1, 20], 63)
    );
    // From A to the outside, through the default route: untagged, to the peer.
    let frame = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [8, 8, 8, 8], 64);
    let (verdict, out) = rig.run(P1, &frame);
    assert_eq!(
        verdict,
        Verdict::Transmit {
            port: VGW,
            offset: HEADROOM + 4,
            len: frame.len() - 4,
            vmi: None,
        }
    );
    assert_eq!(
        out,
        udp4(GW, PEER_MAC, None, [10, 0, 0, 10], [8, 8, 8, 8], 63)
    );
    // The host ARPs for B: proxied. For an address routed back to itself: no.
    let request = arp_request(PEER_MAC, None, [10, 0, 0, 254], [10, 0, 1, 20]);
    assert!(matches!(
        rig.run(VGW, &request).0,
        Verdict::Transmit { port: VGW, .. }
    ));
    let request = arp_request(PEER_MAC, None, [10, 0, 0, 254], [8, 8, 4, 4]);
    assert_eq!(rig.dropped(VGW, &request), DropReason::ArpUnknownTarget);
    // Routed back out of the port it came from.
    let frame = udp4(PEER_MAC, GW, None, [10, 0, 0, 254], [8, 8, 4, 4], 64);
    assert_eq!(rig.dropped(VGW, &frame), DropReason::Hairpin);
}

#[test]
fn fabric_port_passes_to_the_host() {
    let rig = Rig::new(&fixture());
    let frame = udp4(MAC_A, GW, None, [10, 0, 0, 10], [10, 0, 1, 20], 64);
    assert_eq!(rig.run(FABRIC, &frame).0, Verdict::Pass);
    assert_eq!(rig.counters.snapshot().passed, 1);
}

#[test]
fn batch_shape() {
    let rig = Rig::new(&fixture());
    let frames: Vec<Vec<u8>> = vec![
        udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64),
        arp_request(MAC_A, Some(100), [10, 0, 0, 10], [10, 0, 0, 1]),
        udp4(MAC_A, GW, Some(999), [10, 0, 0, 10], [10, 0, 1, 20], 64),
    ];
    let mut storage: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let mut buf = vec![0u8; HEADROOM + f.len()];
            buf[HEADROOM..].copy_from_slice(f);
            buf
        })
        .collect();
    let mut batch: Vec<FrameBuf<'_>> = storage
        .iter_mut()
        .zip(&frames)
        .map(|(buf, f)| FrameBuf {
            buf,
            offset: HEADROOM,
            len: f.len(),
        })
        .collect();
    let mut verdicts = [Verdict::Pass; 3];
    let pipeline = Pipeline::new(&rig.tables, &rig.counters);
    assert_eq!(pipeline.process_batch(P1, &mut batch, &mut verdicts), 3);
    assert!(matches!(verdicts[0], Verdict::Transmit { .. }));
    assert!(matches!(verdicts[1], Verdict::Transmit { .. }));
    assert_eq!(verdicts[2], Verdict::Drop(DropReason::NoLogicalInterface));
}

#[test]
fn tables_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Tables>();
    check::<Counters>();
}

/// A frame that must be dropped: name, ingress port, bytes, headroom,
/// tailroom, and the reason.
pub(crate) type DropCase = (&'static str, PortId, Vec<u8>, usize, usize, DropReason);

/// One frame per drop reason, each checked, and together covering them all.
pub(crate) fn drop_cases() -> Vec<DropCase> {
    use DropReason::*;
    let a = |dst, src: [u8; 4], to: [u8; 4], ttl| udp4(MAC_A, dst, Some(100), src, to, ttl);
    let mut double = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64);
    double[16..18].copy_from_slice(&[0x81, 0x00]);
    let mut service_tagged = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64);
    service_tagged[12..14].copy_from_slice(&[0x88, 0xa8]);
    let mut bad_checksum = a(GW, [10, 0, 0, 10], [10, 0, 1, 20], 64);
    bad_checksum[18 + 10] ^= 0xff;
    let mut malformed_v4 = udp4(MAC_U, GW, None, [10, 0, 0, 50], [10, 0, 1, 20], 64);
    malformed_v4[14] = 0x43;
    let mut malformed_v6 = udp6(MAC_U, GW, None, "fd00::50", "fd00::b", 64);
    malformed_v6.truncate(14 + 30);
    let mut malformed_arp = arp_request(MAC_U, None, [10, 0, 0, 50], [10, 0, 0, 1]);
    malformed_arp.truncate(14 + 20);
    let mut bad_icmp = ping4(MAC_A, Some(100), [10, 0, 0, 10], [10, 0, 0, 1]);
    let last = bad_icmp.len() - 1;
    bad_icmp[last] ^= 0xff;
    let mut lldp = a(GW, [10, 0, 0, 10], [10, 0, 1, 20], 64);
    lldp[16..18].copy_from_slice(&[0x88, 0xcc]);
    let mut router_solicit = Vec::new();
    ipv6_step(
        MAC_A,
        [0x33, 0x33, 0, 0, 0, 2],
        Some(100),
        v6("fe80::a"),
        v6("ff02::2"),
        255,
    )
    .icmpv6(Icmpv6Type::RouterAdvertisement(
        etherparse::icmpv6::RouterAdvertisementHeader {
            cur_hop_limit: 64,
            managed_address_config: false,
            other_config: false,
            router_lifetime: 1800,
        },
    ))
    .write(&mut router_solicit, &[0; 8])
    .unwrap();
    let mut expiring_error = Vec::new();
    ipv4_step(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 1)
        .icmpv4(Icmpv4Type::TimeExceeded(
            etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
        ))
        .write(&mut expiring_error, &[0x45; 28])
        .unwrap();
    let mut expiring_error6 = Vec::new();
    ipv6_step(MAC_A, GW, Some(100), v6("fd00::a"), v6("fd00::b"), 1)
        .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
        .write(&mut expiring_error6, &[0x60; 40])
        .unwrap();
    let mut truncated_dhcp = super::tests_first_minute::discover(MAC_A);
    truncated_dhcp.truncate(18 + 20 + 8 + 100);
    let len = (truncated_dhcp.len() - 18) as u16;
    truncated_dhcp[18 + 2..18 + 4].copy_from_slice(&len.to_be_bytes());
    truncated_dhcp[18 + 24..18 + 26].copy_from_slice(&(len - 20).to_be_bytes());
    truncated_dhcp[18 + 26..18 + 28].copy_from_slice(&[0, 0]);
    {
        let mut ip = trunkline_wire::ipv4::Packet::new_unchecked(&mut truncated_dhcp[18..]);
        ip.fill_checksum();
    }
    let release = super::tests_first_minute::dhcp4(
        MAC_A,
        100,
        core::net::Ipv4Addr::new(10, 0, 0, 10),
        core::net::Ipv4Addr::new(10, 0, 0, 1),
        GW,
        &super::tests_first_minute::client_message(MAC_A, dhcproto::v4::MessageType::Release),
    );
    let solicit_without_ipv6 = super::tests_first_minute::solicit_from(MAC_U, None);
    let reply = arp(
        MAC_A,
        GW,
        Some(100),
        ArpOperation::REPLY,
        MAC_A,
        [10, 0, 0, 10],
        GW,
        [10, 0, 0, 1],
    );
    let ns_from = |mac, vlan, src: &str, target: &str, slla, hop, unicast| {
        ns(mac, vlan, v6(src), v6(target), slla, hop, unicast)
    };
    let h = HEADROOM;
    vec![
        (
            "unknown port",
            PortId(77),
            a(GW, [10, 0, 0, 10], [10, 0, 1, 20], 64),
            h,
            0,
            UnknownPort,
        ),
        ("truncated", P1, vec![0; 10], h, 0, TruncatedFrame),
        (
            "multicast source",
            P1,
            udp4(
                [1, 0, 0x5e, 0, 0, 1],
                GW,
                Some(100),
                [10, 0, 0, 10],
                [10, 0, 1, 20],
                64,
            ),
            h,
            0,
            InvalidSourceMac,
        ),
        ("q-in-q", P1, double, h, 0, DoubleTagged),
        (
            "tagged on host port",
            VGW,
            udp4(PEER_MAC, GW, Some(5), [8, 8, 8, 8], [10, 0, 1, 20], 64),
            h,
            0,
            TaggedOnHostPort,
        ),
        (
            "no logical interface",
            P1,
            udp4(MAC_A, GW, Some(999), [10, 0, 0, 10], [10, 0, 1, 20], 64),
            h,
            0,
            NoLogicalInterface,
        ),
        (
            "spoofed mac",
            P1,
            udp4(
                [2, 0, 0, 0, 0, 0xff],
                GW,
                Some(100),
                [10, 0, 0, 10],
                [10, 0, 1, 20],
                64,
            ),
            h,
            0,
            SourceMacSpoofed,
        ),
        (
            "spoofed ip",
            P1,
            a(GW, [10, 0, 0, 11], [10, 0, 1, 20], 64),
            h,
            0,
            SourceIpSpoofed,
        ),
        ("malformed arp", P2, malformed_arp, h, 0, MalformedArp),
        ("arp reply", P1, reply, h, 0, ArpNotRequest),
        (
            "gratuitous arp in a routed-only network",
            P1,
            arp_request(MAC_C, Some(300), [10, 0, 0, 10], [10, 0, 0, 10]),
            h,
            0,
            GratuitousArp,
        ),
        (
            "arp probe for own address in a routed-only network",
            P1,
            arp_request(MAC_C, Some(300), [0, 0, 0, 0], [10, 0, 0, 10]),
            h,
            0,
            GratuitousArp,
        ),
        (
            "arp unknown target",
            P1,
            arp_request(MAC_C, Some(300), [10, 0, 0, 10], [10, 0, 0, 99]),
            h,
            0,
            ArpUnknownTarget,
        ),
        ("malformed ipv4", P2, malformed_v4, h, 0, MalformedIpv4),
        ("ipv4 checksum", P1, bad_checksum, h, 0, Ipv4BadChecksum),
        ("malformed ipv6", P2, malformed_v6, h, 0, MalformedIpv6),
        ("malformed icmp", P1, bad_icmp, h, 0, MalformedIcmp),
        (
            "ns hop limit",
            P1,
            ns_from(
                MAC_A,
                Some(100),
                "fd00::a",
                "fd00::1",
                Some(MAC_A),
                64,
                false,
            ),
            h,
            0,
            MalformedNeighborDiscovery,
        ),
        (
            "router advertisement from an instance",
            P1,
            router_solicit,
            h,
            0,
            NdUnsupported,
        ),
        ("truncated dhcp", P1, truncated_dhcp, h, 512, MalformedDhcp),
        ("dhcp release", P1, release, h, 512, DhcpIgnored),
        (
            "dhcpv6 from a vmi without ipv6",
            P2,
            solicit_without_ipv6,
            h,
            512,
            DhcpNoAddress,
        ),
        (
            "ns unknown target",
            P1,
            ns_from(
                MAC_C,
                Some(300),
                "fe80::c",
                "fd00::99",
                Some(MAC_C),
                255,
                false,
            ),
            h,
            0,
            NdUnknownTarget,
        ),
        (
            "dad for own address in a routed-only network",
            P1,
            ns_from(MAC_C, Some(300), "::", "fd02::c", None, 255, false),
            h,
            0,
            NdOwnAddress,
        ),
        (
            "broadcast udp in a routed-only network",
            P1,
            udp4(
                MAC_C,
                BROADCAST,
                Some(300),
                [10, 0, 0, 10],
                [10, 0, 0, 255],
                64,
            ),
            h,
            0,
            Multicast,
        ),
        (
            "802.1ad service tag",
            P1,
            service_tagged,
            h,
            0,
            UnsupportedTag,
        ),
        (
            "gateway mac in a bridging-only network",
            P1,
            udp4(MAC_E, GW, Some(400), [10, 3, 0, 10], [10, 3, 0, 1], 64),
            h,
            0,
            RoutingDisabled,
        ),
        (
            "another mac in a routed-only network",
            P1,
            udp4(MAC_C, MAC_A, Some(300), [10, 0, 0, 10], [10, 0, 0, 20], 64),
            h,
            0,
            BridgingDisabled,
        ),
        (
            "unknown unicast",
            P1,
            a([2, 0, 0, 0, 0, 0x77], [10, 0, 0, 10], [10, 0, 1, 20], 64),
            h,
            0,
            UnknownUnicast,
        ),
        (
            "hairpin",
            P1,
            a(MAC_A, [10, 0, 0, 10], [10, 0, 0, 10], 64),
            h,
            0,
            Hairpin,
        ),
        ("lldp to the gateway", P1, lldp, h, 0, UnsupportedEtherType),
        (
            "no route",
            P1,
            udp4(MAC_C, GW, Some(300), [10, 0, 0, 10], [10, 9, 9, 9], 64),
            h,
            0,
            NoRoute,
        ),
        (
            "discard route",
            P1,
            a(GW, [10, 0, 0, 10], [192, 0, 2, 5], 64),
            h,
            0,
            DiscardRoute,
        ),
        (
            "ttl 1 on an icmp error",
            P1,
            expiring_error,
            h,
            0,
            TtlExceeded,
        ),
        (
            "hop limit 1 on an icmpv6 error",
            P1,
            expiring_error6,
            h,
            0,
            TtlExceeded,
        ),
        (
            "ttl 1 once the error budget is spent",
            P1,
            a(GW, [10, 0, 0, 10], [10, 0, 1, 20], 1),
            h,
            0,
            IcmpRateLimited,
        ),
        (
            "vmi without logical interface",
            P1,
            a(GW, [10, 0, 0, 10], [10, 0, 0, 40], 64),
            h,
            0,
            VmiUnreachable,
        ),
        (
            "udp to the gateway",
            P1,
            a(GW, [10, 0, 0, 10], [10, 0, 0, 1], 64),
            h,
            0,
            ReceiveUnsupported,
        ),
        (
            "push without headroom",
            P2,
            udp4(MAC_U, GW, None, [10, 0, 0, 50], [10, 0, 0, 10], 64),
            0,
            0,
            NoHeadroom,
        ),
        (
            "arp from a vmi over its budget of answers",
            P1,
            arp_request(MAC_B, Some(200), [10, 0, 1, 20], [10, 0, 1, 1]),
            h,
            0,
            PuntRateLimited,
        ),
        (
            "na longer than ns, no tailroom",
            P1,
            ns_from(MAC_A, Some(100), "fd00::a", "fd00::1", None, 255, true),
            h,
            0,
            NoTailroom,
        ),
    ]
}

#[test]
fn every_drop_reason_has_a_frame() {
    let rig = Rig::new(&fixture());
    // The budget of ICMP errors is spent (and never refills: time stands
    // at 0), so an expiring packet that would get one is a counted drop.
    while rig.counters.icmp_errors.take(0) {}
    // So is vmi-b's budget of answers.
    let b = rig.tables.vmi_id("ns/vmi-b").expect("vmi-b");
    while rig.tables.vmis[b.index()].punt.take(0) {}
    let mut seen = Vec::new();
    let cases = drop_cases()
        .into_iter()
        .chain(super::tests_overlay::drop_cases());
    for (name, port, frame, headroom, tailroom, expected) in cases {
        let (verdict, _) = rig.run_with(port, &frame, headroom, tailroom);
        assert_eq!(verdict, Verdict::Drop(expected), "case {name:?}");
        seen.push(expected);
    }
    // Gateway HA's cases run on tables with an HA group.
    let ha = Rig::new(&super::tests_ha::ha_fixture());
    for (name, port, frame, headroom, tailroom, expected) in super::tests_ha::drop_cases() {
        let (verdict, _) = ha.run_with(port, &frame, headroom, tailroom);
        assert_eq!(verdict, Verdict::Drop(expected), "case {name:?}");
        seen.push(expected);
    }
    let snapshot = rig.counters.snapshot() + ha.counters.snapshot();
    // The I/O layer's reasons are counted by the agent's own tests.
    // North-south reasons need flows and their own rig: see
    // `tests_north_south::every_north_south_drop_reason_has_a_frame`.
    for reason in DropReason::ALL.iter().filter(|r| {
        !r.is_io()
            && !super::tests_north_south::REASONS.contains(r)
            && !super::tests_policy::REASONS.contains(r)
            && !super::tests_network_policy::REASONS.contains(r)
    }) {
        let cases = seen.iter().filter(|r| *r == reason).count() as u64;
        assert!(cases > 0, "no frame for {reason}");
        assert_eq!(snapshot.drops(*reason), cases, "counter of {reason}");
    }
    assert_eq!(snapshot.dropped(), seen.len() as u64);
}

/// Valid frames of every kind the pipeline handles, for mutation.
pub(crate) fn valid_frames() -> Vec<(PortId, Vec<u8>)> {
    vec![
        (
            P1,
            udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64),
        ),
        (
            P2,
            udp4(MAC_U, GW, None, [10, 0, 0, 50], [10, 0, 0, 10], 64),
        ),
        (P1, udp6(MAC_A, GW, Some(100), "fd00::a", "fd00::b", 64)),
        (
            P1,
            arp_request(MAC_A, Some(100), [10, 0, 0, 10], [10, 0, 0, 1]),
        ),
        (
            P1,
            ns(
                MAC_A,
                Some(100),
                v6("fd00::a"),
                v6("fd00::1"),
                Some(MAC_A),
                255,
                false,
            ),
        ),
        (
            P1,
            ns(
                MAC_A,
                Some(100),
                v6("fd00::a"),
                v6("fd00::1"),
                None,
                255,
                true,
            ),
        ),
        (P1, ping4(MAC_A, Some(100), [10, 0, 0, 10], [10, 0, 0, 1])),
        (P1, ping6(MAC_A, Some(100), "fd00::a", "fd00::1")),
        (
            VGW,
            udp4(PEER_MAC, GW, None, [8, 8, 8, 8], [10, 0, 1, 20], 64),
        ),
        (
            P1,
            udp4(MAC_A, MAC_B, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64),
        ),
        (P1, super::tests_first_minute::discover(MAC_A)),
        (
            P1,
            super::tests_first_minute::solicit_from(MAC_A, Some(100)),
        ),
        (
            P1,
            udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 1),
        ),
    ]
}

fn check_no_panic(rig: &Rig, port: PortId, frame: &[u8], headroom: usize, tailroom: usize) {
    let mut buf = vec![0u8; headroom + frame.len() + tailroom];
    buf[headroom..headroom + frame.len()].copy_from_slice(frame);
    let len = buf.len();
    match process(
        &rig.tables,
        port,
        &mut buf,
        headroom,
        frame.len(),
        &rig.counters,
    ) {
        Verdict::Transmit {
            offset, len: out, ..
        } => {
            assert!(offset + out <= len, "transmit outside the buffer");
            assert!(out >= 14, "transmit shorter than an Ethernet header");
        }
        Verdict::Flood(flood) => {
            assert!(flood.offset + flood.len <= len, "flood outside the buffer");
            let pipeline = Pipeline::new(&rig.tables, &rig.counters);
            let mut out = vec![0u8; 2048];
            for member in 0..pipeline.flood_members(&flood) {
                if pipeline.flood_egress(&flood, member).is_some()
                    && let Ok((offset, len, _)) =
                        pipeline.flood_copy(&flood, member, &buf, &mut out)
                {
                    assert!(offset + len <= out.len(), "copy outside the buffer");
                }
            }
        }
        Verdict::Pass | Verdict::Drop(_) => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Arbitrary bytes on every kind of port, any headroom and tailroom,
    /// even offsets and lengths outside the buffer: never a panic.
    #[test]
    fn process_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..160),
        port in prop::sample::select(vec![P1, P2, FABRIC, VGW, PortId(77)]),
        headroom in 0usize..6,
        tailroom in 0usize..10,
        wild in any::<Option<(usize, usize)>>(),
    ) {
        let rig = Rig::new(&fixture());
        check_no_panic(&rig, port, &bytes, headroom, tailroom);
        if let Some((offset, len)) = wild {
            let mut buf = bytes.clone();
            let _ = process(&rig.tables, port, &mut buf, offset, len, &rig.counters);
        }
    }

    /// Valid frames with bytes flipped and cut short: never a panic.
    #[test]
    fn process_never_panics_on_mutated_frames(
        which in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..8),
        cut in any::<Option<prop::sample::Index>>(),
        headroom in 0usize..6,
        tailroom in 0usize..10,
    ) {
        let rig = Rig::new(&fixture());
        let frames = valid_frames();
        let (port, mut frame) = frames[which.index(frames.len())].clone();
        for (at, xor) in flips {
            let i = at.index(frame.len());
            frame[i] ^= xor;
        }
        if let Some(cut) = cut {
            let keep = cut.index(frame.len() + 1);
            frame.truncate(keep);
        }
        check_no_panic(&rig, port, &frame, headroom, tailroom);
    }
}
