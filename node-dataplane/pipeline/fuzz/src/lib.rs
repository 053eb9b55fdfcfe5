//! The fuzz entry point of `trunkline-pipeline`: untrusted bytes through
//! every wire view, then through the whole per-frame decision of a gateway
//! node that has every kind of port and an overlay, as a node sees frames
//! from remote instances, from its virtual gateways and from the fabric.
//!
//! ```text
//!  input = selector byte + frame
//!    selector bits 0-2: ingress port   gateway P1 | gateway P2 | fabric | vgw tap | unknown
//!    selector bits 3-4: headroom       HEADROOM | 0 | 14 | 64 (small ones must fail cleanly)
//!    selector bit 5:    tailroom       0 | 64
//!  frame ──> wire views ──> Pipeline::process ──> Transmit: within the buffer
//!                                              └─> Flood: every member's copy
//! ```
//!
//! The node ([`node`]): two trunk ports with VLAN and untagged logical
//! interfaces in three networks (L2L3 with a VNI and labels, L3, L2 that
//! floods unknown unicast), a virtual gateway tap with a default route, the
//! fabric port with an underlay address, a peer gateway node holding a
//! remote VMI (MPLSoUDP and VXLAN) and an external VTEP with a static
//! endpoint (VXLAN, next hop unknown): so tunnel packets arriving on the
//! fabric port are decapsulated into VMIs and networks, and routed or
//! bridged frames are encapsulated toward peers. North-south: a network
//! leaving by SNAT with a DC gateway route (MPLS over UDP to a routed
//! peer), one by IP fabric forwarding, the fabric's routes with a resolved
//! router; every input runs with a flow table that already holds two SNAT
//! flows ([`warm_up`]), so replies and ICMP errors from the fabric find
//! state to translate back.
//!
//! Driven by libFuzzer (`fuzz_targets/pipeline.rs`, `make fuzz`) and, on the
//! corpus kept in the repository plus mutations of it, by `tests/corpus.rs`
//! in every `cargo test`. `make_seeds.py` writes the seed corpus.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::OnceLock;

use trunkline_pipeline::config::{FabricExit, FabricRouteConfig, NorthSouthConfig};
use trunkline_pipeline::flow::{FlowConfig, FlowTable};
use trunkline_pipeline::{
    AllowedAddressPair, Counters, CreationOrder, Encapsulation, ForwardingMode, HEADROOM,
    LogicalInterfaceConfig, NetworkConfig, NextHopConfig, NodeConfig, PeerConfig, Pipeline,
    PortConfig, PortId, PortKind, RemoteVmiConfig, RouteConfig, SubnetConfig, Tables,
    UnderlayConfig, Verdict, VmiConfig,
};
use trunkline_wire::EthernetAddress;

/// Trunk port 1: VLANs 100 (vmi-a), 200 (vmi-b), 300 (vmi-c), 400 (vmi-e).
pub const P1: PortId = PortId(1);
/// Trunk port 2: untagged (vmi-u, no port security).
pub const P2: PortId = PortId(2);
/// The fabric port.
pub const FABRIC: PortId = PortId(3);
/// The virtual gateway tap of net1.
pub const VGW: PortId = PortId(9);
/// A port the tables do not know.
pub const UNKNOWN: PortId = PortId(77);

/// The ingress port of each value of the selector's low 3 bits.
pub const PORTS: [PortId; 8] = [P1, P2, FABRIC, VGW, UNKNOWN, P1, P1, FABRIC];
/// The headroom of each value of the selector's bits 3-4.
pub const HEADROOMS: [usize; 4] = [HEADROOM, 0, 14, 64];

/// The node's underlay address.
pub const UNDERLAY: [u8; 4] = [192, 168, 100, 1];
/// The peer gateway node's underlay address.
pub const NODE_B: [u8; 4] = [192, 168, 100, 2];
/// The external VTEP's address.
pub const XVTEP: [u8; 4] = [192, 168, 100, 50];
/// net1's VNI.
pub const NET1_VNI: u32 = 5001;
/// net1's bridged label.
pub const NET1_LABEL: u32 = 100;
/// vmi-a's routed label.
pub const LABEL_A: u32 = 101;
/// The remote VMI's routed label (behind node-b).
pub const LABEL_R: u32 = 200;
/// The DC gateway's address.
pub const DCGW: [u8; 4] = [192, 168, 100, 200];
/// The fabric's router (the default route's next hop), resolved.
pub const ROUTER: [u8; 4] = [192, 168, 100, 254];
/// vmi-s (net4, SNAT, VLAN 500): its routed label.
pub const LABEL_S: u32 = 104;
/// The destination of the SNAT flows [`warm_up`] opens.
pub const OUTSIDE: [u8; 4] = [198, 51, 100, 7];
/// The translated port of the TCP flow [`warm_up`] opens (to port 80).
pub const SNAT_TCP_PORT: u16 = 61000;
/// The translated identifier of the echo flow [`warm_up`] opens.
pub const SNAT_ECHO_ID: u16 = 61001;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("a literal address")
}

fn prefix(s: &str) -> trunkline_pipeline::IpPrefix {
    s.parse().expect("a literal prefix")
}

fn mac(last: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, last]
}

fn vmi(key: &str, network: &str, last: u8, ips: &[&str], label: Option<u32>) -> VmiConfig {
    VmiConfig {
        key: key.into(),
        network: network.into(),
        mac: mac(last),
        ips: ips.iter().map(|s| ip(s)).collect(),
        allowed_address_pairs: Vec::new(),
        port_security: true,
        label,
    }
}

fn li(key: &str, port: PortId, vlan: u16, vmi: &str, created_secs: i64) -> LogicalInterfaceConfig {
    LogicalInterfaceConfig {
        key: key.into(),
        port,
        vlan,
        vmi: vmi.into(),
        order: CreationOrder {
            created_secs,
            name: key.into(),
        },
    }
}

/// The node every input runs on (see the module documentation).
pub fn node() -> NodeConfig {
    let mut a = vmi(
        "ns/vmi-a",
        "ns/net1",
        0x0a,
        &["10.0.0.10", "fd00::a"],
        Some(LABEL_A),
    );
    a.allowed_address_pairs.push(AllowedAddressPair {
        prefix: prefix("10.0.0.128/25"),
        mac: None,
    });
    // A single address: routed to whoever sends from it.
    a.allowed_address_pairs.push(AllowedAddressPair {
        prefix: prefix("10.0.0.100/32"),
        mac: None,
    });
    let mut u = vmi("ns/vmi-u", "ns/net1", 0x1e, &["10.0.0.50"], None);
    u.port_security = false;
    let port = |id, name: &str, kind| PortConfig {
        id,
        name: name.into(),
        // A declared MTU on one trunk: routed packets toward it can be too big.
        mtu: (id == P2).then_some(1400),
        kind,
    };
    let subnet = |p: &str, g: &str| SubnetConfig {
        prefix: prefix(p),
        gateway: ip(g),
    };
    NodeConfig {
        ports: vec![
            port(P1, "eth1", PortKind::Gateway),
            port(P2, "eth2", PortKind::Gateway),
            port(FABRIC, "eth0", PortKind::Fabric),
            port(
                VGW,
                "vgw0",
                PortKind::Host {
                    network: "ns/net1".into(),
                    peer_mac: mac(0x99),
                },
            ),
        ],
        networks: vec![
            NetworkConfig {
                key: "ns/net1".into(),
                vrf: 1,
                subnets: vec![
                    subnet("10.0.0.0/24", "10.0.0.1"),
                    subnet("10.0.1.0/24", "10.0.1.1"),
                    subnet("fd00::/64", "fd00::1"),
                ],
                vni: Some(NET1_VNI),
                label: Some(NET1_LABEL),
                encapsulations: vec![Encapsulation::MplsOverUdp, Encapsulation::Vxlan],
                peers: vec!["node-b".into(), "xvtep".into()],
                ..Default::default()
            },
            NetworkConfig {
                key: "ns/net2".into(),
                vrf: 2,
                subnets: vec![subnet("10.2.0.0/24", "10.2.0.1")],
                mode: ForwardingMode::L3,
                vni: Some(5002),
                label: Some(300),
                encapsulations: vec![Encapsulation::Vxlan],
                peers: vec!["node-b".into()],
                ..Default::default()
            },
            NetworkConfig {
                key: "ns/net3".into(),
                vrf: 3,
                subnets: vec![subnet("10.3.0.0/24", "10.3.0.1")],
                mode: ForwardingMode::L2,
                flood_unknown_unicast: true,
                ..Default::default()
            },
            NetworkConfig {
                key: "ns/net4".into(),
                vrf: 4,
                subnets: vec![subnet("10.4.0.0/24", "10.4.0.1")],
                mode: ForwardingMode::L3,
                encapsulations: vec![Encapsulation::MplsOverUdp],
                fabric_exit: FabricExit::Snat,
                routed_peers: vec!["dcgw".into()],
                ..Default::default()
            },
            NetworkConfig {
                key: "ns/net5".into(),
                vrf: 5,
                subnets: vec![subnet("10.5.0.0/24", "10.5.0.1")],
                mode: ForwardingMode::L3,
                fabric_exit: FabricExit::IpFabric,
                ..Default::default()
            },
        ],
        vmis: vec![
            a,
            vmi(
                "ns/vmi-b",
                "ns/net1",
                0x0b,
                &["10.0.1.20", "fd00::b"],
                Some(102),
            ),
            vmi("ns/vmi-c", "ns/net2", 0x0c, &["10.2.0.10"], Some(103)),
            vmi("ns/vmi-e", "ns/net3", 0x0e, &["10.3.0.10"], None),
            u,
            vmi("ns/vmi-s", "ns/net4", 0x0f, &["10.4.0.10"], Some(LABEL_S)),
            vmi("ns/vmi-f", "ns/net5", 0x1f, &["10.5.0.10"], Some(105)),
        ],
        logical_interfaces: vec![
            li("li-a", P1, 100, "ns/vmi-a", 10),
            li("li-b", P1, 200, "ns/vmi-b", 11),
            li("li-c", P1, 300, "ns/vmi-c", 12),
            li("li-e", P1, 400, "ns/vmi-e", 13),
            li("li-u", P2, 0, "ns/vmi-u", 14),
            li("li-s", P1, 500, "ns/vmi-s", 15),
            li("li-f", P1, 600, "ns/vmi-f", 16),
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
            RouteConfig {
                network: "ns/net2".into(),
                prefix: prefix("0.0.0.0/0"),
                next_hop: NextHopConfig::Peer("node-b".into()),
            },
            RouteConfig {
                network: "ns/net4".into(),
                prefix: prefix("203.0.113.0/24"),
                next_hop: NextHopConfig::Tunnel {
                    peer: "dcgw".into(),
                    label: 5000,
                },
            },
        ],
        underlay: Some(UnderlayConfig {
            port: FABRIC,
            address: IpAddr::from(UNDERLAY),
            mac: [2, 0xfa, 0, 0, 0, 1],
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
            PeerConfig {
                key: "dcgw".into(),
                address: IpAddr::from(DCGW),
                encapsulations: vec![Encapsulation::MplsOverUdp],
            },
        ],
        remote_vmis: vec![
            RemoteVmiConfig {
                key: "ns/vmi-r".into(),
                network: "ns/net1".into(),
                peer: "node-b".into(),
                mac: mac(0x2e),
                ips: vec![ip("10.0.0.60"), ip("fd00::60")],
                label: Some(LABEL_R),
            },
            RemoteVmiConfig {
                key: "ns/ext-1".into(),
                network: "ns/net1".into(),
                peer: "xvtep".into(),
                mac: mac(0x3e),
                ips: vec![ip("10.0.0.70")],
                label: None,
            },
        ],
        north_south: NorthSouthConfig {
            snat_ports: (61000, 65535),
            fabric_routes: vec![
                FabricRouteConfig {
                    prefix: prefix("192.168.100.0/24"),
                    via: None,
                },
                FabricRouteConfig {
                    prefix: prefix("0.0.0.0/0"),
                    via: Some(IpAddr::from(ROUTER)),
                },
            ],
        },
        ..NodeConfig::default()
    }
}

/// The tables of [`node`], compiled once. The peer node's next hop MAC is
/// known, the external VTEP's is not (its packets are a named drop).
pub fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let (tables, rejected) = Tables::compile(&node());
        assert!(rejected.is_empty(), "the fuzz node compiles: {rejected:?}");
        assert!(
            tables.set_next_hop_mac(
                IpAddr::from(NODE_B),
                Some(EthernetAddress([2, 0xfa, 0, 0, 0, 2]))
            ),
            "node-b is a peer"
        );
        assert!(
            tables.set_next_hop_mac(
                IpAddr::from(DCGW),
                Some(EthernetAddress([2, 0xfa, 0, 0, 0, 2]))
            ),
            "the DC gateway is a peer"
        );
        // Play the host thread: the fabric's router is resolved.
        let cache = tables.fabric_neighbours();
        cache.lookup(IpAddr::from(ROUTER));
        for pending in cache.wanted().collect::<Vec<_>>() {
            cache.resolve(pending, Some([2, 0xfa, 0, 0, 0, 0xfe]));
        }
        tables
    })
}

/// The Internet checksum of `data` (RFC 1071), starting from `sum`.
fn checksum(data: &[u8], mut sum: u32) -> u16 {
    for word in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([word[0], *word.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A frame of vmi-s (VLAN 500) to [`OUTSIDE`]: IPv4 `proto` with `l4`,
/// whose checksum (at `sum_at`, 0 when `pseudo` covers nothing) is filled.
fn from_vmi_s(proto: u8, mut l4: Vec<u8>, sum_at: usize, pseudo: bool) -> Vec<u8> {
    let (src, dst) = ([10, 4, 0, 10], OUTSIDE);
    let start = if pseudo {
        let mut p = Vec::with_capacity(12);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[0, proto]);
        p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        p.chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum()
    } else {
        0
    };
    let sum = checksum(&l4, start);
    l4[sum_at..sum_at + 2].copy_from_slice(&sum.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let sum = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut frame = vec![0, 0, 0x5e, 0, 1, 0];
    frame.extend_from_slice(&mac(0x0f));
    frame.extend_from_slice(&[0x81, 0, 0x01, 0xf4, 0x08, 0]);
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&l4);
    frame
}

/// Opens the SNAT flows every input finds: vmi-s's TCP SYN from port
/// [`SNAT_TCP_PORT`] to [`OUTSIDE`]:80 and its echo request with
/// identifier [`SNAT_ECHO_ID`] (both in the range, so kept as they are).
pub fn warm_up(pipeline: &Pipeline<'_>) {
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&SNAT_TCP_PORT.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[7] = 1; // sequence number
    tcp[12] = 5 << 4;
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let mut echo = vec![8, 0, 0, 0, 0, 0, 0, 1];
    echo[4..6].copy_from_slice(&SNAT_ECHO_ID.to_be_bytes());
    echo.extend_from_slice(b"warm-up!");
    for frame in [from_vmi_s(6, tcp, 16, true), from_vmi_s(1, echo, 2, false)] {
        let mut buf = vec![0u8; HEADROOM + frame.len()];
        buf[HEADROOM..].copy_from_slice(&frame);
        let verdict = pipeline.process(P1, &mut buf, HEADROOM, frame.len());
        assert!(
            matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
            "the warm-up flow leaves by SNAT: {verdict:?}"
        );
    }
}

/// The verdict for one input (`None` for an empty one), after checking
/// that it lies within the buffer, and that every member of a flood gets a
/// copy within its own buffer.
pub fn run(data: &[u8]) -> Option<Verdict> {
    let (&selector, frame) = data.split_first()?;
    trunkline_wire_fuzz::views(frame);
    let _ = trunkline_pipeline::parse_l2(frame);
    let port = PORTS[usize::from(selector & 0x07)];
    let headroom = HEADROOMS[usize::from((selector >> 3) & 0x03)];
    let tailroom = if selector & 0x20 != 0 { 64 } else { 0 };
    let mut buf = vec![0u8; headroom + frame.len() + tailroom];
    buf[headroom..headroom + frame.len()].copy_from_slice(frame);
    let counters = Counters::new();
    let flows = RefCell::new(FlowTable::new(FlowConfig {
        capacity: 16,
        ..FlowConfig::default()
    }));
    let pipeline = Pipeline::new(tables(), &counters).with_flows(&flows, 0);
    warm_up(&pipeline);
    let pipeline = Pipeline::new(tables(), &counters).with_flows(&flows, 1_000_000_000);
    let size = buf.len();
    let verdict = pipeline.process(port, &mut buf, headroom, frame.len());
    match verdict {
        Verdict::Transmit { offset, len, .. } => {
            assert!(
                offset + len <= size,
                "{verdict:?} beyond a {size}-byte buffer"
            );
        }
        Verdict::Flood(flood) => {
            let mut copy = vec![0u8; HEADROOM + 2048 + 64];
            for member in 0..pipeline.flood_members(&flood) {
                if pipeline.flood_egress(&flood, member).is_none() {
                    continue;
                }
                if let Ok((offset, len, _)) = pipeline.flood_copy(&flood, member, &buf, &mut copy) {
                    assert!(
                        offset + len <= copy.len(),
                        "flood copy {member} beyond its buffer"
                    );
                }
            }
        }
        Verdict::Pass | Verdict::Drop(_) => {}
    }
    Some(verdict)
}

/// The fuzz target's body: [`run`], verdict ignored.
pub fn frame(data: &[u8]) {
    let _ = run(data);
}
