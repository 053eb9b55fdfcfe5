//! Gateway HA tests on hand-built frames: what a standby member drops,
//! what an active one forwards, where traffic for a VMI several nodes
//! serve goes as its path cell flips, the cells across a rebuild, and the
//! takeover announcements (decoded by etherparse, an independent parser).

use core::net::IpAddr;

use etherparse::{
    ArpOperation, Icmpv6Type, LinkSlice, NetSlice, SlicedPacket, TransportSlice, VlanSlice,
};
use proptest::prelude::*;

use super::tests::*;
use super::tests_overlay::{copies, mpls_entry, mpls_from, outer};
use super::*;
use crate::config::*;
use crate::tables::{HaRole, Tables};
use crate::verdict::DropReason;
use trunkline_wire::EthernetAddress;

pub(crate) mod differential;

/// The member port of group `g`.
const P4: PortId = PortId(4);
const NODE_C: [u8; 4] = [192, 168, 100, 3];
const NET4_LABEL: u32 = 400;
const NET4_VNI: u32 = 5004;
/// vmi-h: behind the member port, also served by node-b.
const MAC_H: MacAddress = [2, 0, 0, 0, 0, 0x48];
const LABEL_H: u32 = 401;
/// vmi-k: the same network on a port outside the group.
const MAC_K: MacAddress = [2, 0, 0, 0, 0, 0x4b];
/// vmi-s: remote, served by node-b and node-c.
const MAC_S: MacAddress = [2, 0, 0, 0, 0, 0x53];
const LABEL_S: u32 = 403;

/// The overlay fixture, plus: port 4, the member port of Fast group `g`;
/// network net4 (also on node-b and node-c) with vmi-h on port 4 VLAN 100
/// (multi-homed with node-b), vmi-k on port 1 VLAN 500, and the remote
/// vmi-s served by node-b and node-c.
pub(super) fn ha_fixture() -> NodeConfig {
    let mut c = fixture();
    c.ports.push(PortConfig {
        id: P4,
        name: "eth4".into(),
        kind: PortKind::Gateway,
        mtu: None,
    });
    c.peers.push(PeerConfig {
        key: "node-c".into(),
        address: IpAddr::from(NODE_C),
        encapsulations: vec![Encapsulation::MplsOverUdp, Encapsulation::Vxlan],
    });
    c.networks.push(NetworkConfig {
        key: "ns/net4".into(),
        vrf: 4,
        subnets: vec![
            SubnetConfig {
                prefix: prefix("10.4.0.0/24"),
                gateway: ip("10.4.0.1"),
            },
            SubnetConfig {
                prefix: prefix("fd04::/64"),
                gateway: ip("fd04::1"),
            },
        ],
        vni: Some(NET4_VNI),
        label: Some(NET4_LABEL),
        peers: vec!["node-b".into(), "node-c".into()],
        ..Default::default()
    });
    let mut h = vmi("ns/vmi-h", "ns/net4", MAC_H, &["10.4.0.10", "fd04::10"]);
    h.label = Some(LABEL_H);
    let mut k = vmi("ns/vmi-k", "ns/net4", MAC_K, &["10.4.0.20"]);
    k.label = Some(402);
    c.vmis.extend([h, k]);
    c.logical_interfaces.extend([
        li("ns/li-h", P4, 100, "ns/vmi-h", 20),
        li("ns/li-k", P1, 500, "ns/vmi-k", 21),
    ]);
    c.remote_vmis.push(RemoteVmiConfig {
        key: "ns/vmi-s".into(),
        network: "ns/net4".into(),
        peer: "node-b".into(),
        mac: MAC_S,
        ips: vec![ip("10.4.0.30")],
        label: Some(LABEL_S),
    });
    c.ha_groups.push(HaGroupConfig {
        key: "g".into(),
        mode: HaMode::Fast,
        ports: vec![P4],
    });
    c.multihomed.extend([
        MultihomedVmiConfig {
            vmi: "ns/vmi-h".into(),
            peers: vec!["node-b".into()],
        },
        MultihomedVmiConfig {
            vmi: "ns/vmi-s".into(),
            peers: vec!["node-c".into()],
        },
    ]);
    c
}

fn rig() -> Rig {
    let rig = Rig::new(&ha_fixture());
    rig.tables
        .set_next_hop_mac(IpAddr::from(NODE_C), Some(EthernetAddress(NEXT_HOP_MAC)));
    rig
}

/// From vmi-k (port 1, VLAN 500) to `dst` routed through the gateway.
fn from_k(dst: [u8; 4]) -> Vec<u8> {
    udp4(MAC_K, GW, Some(500), [10, 4, 0, 20], dst, 64)
}

#[test]
fn a_standby_member_neither_receives_answers_forwards_nor_floods_on_its_member_port() {
    let rig = rig();
    assert_eq!(
        rig.tables.ha_role("g"),
        Some(HaRole::Standby),
        "Fast starts standby"
    );
    // Nothing from the member port: not an ARP for the gateway, not
    // routed traffic, not a broadcast.
    let ask = arp_request(MAC_H, Some(100), [10, 4, 0, 10], [10, 4, 0, 1]);
    assert_eq!(rig.dropped(P4, &ask), DropReason::HaStandby);
    let routed = udp4(MAC_H, GW, Some(100), [10, 4, 0, 10], [10, 4, 0, 20], 64);
    assert_eq!(rig.dropped(P4, &routed), DropReason::HaStandby);
    // Nothing to it from elsewhere on this node or from a tunnel.
    assert_eq!(
        rig.dropped(P1, &from_k([10, 4, 0, 10])),
        DropReason::HaStandby
    );
    let inner = &udp4(GW, MAC_H, None, [10, 0, 0, 60], [10, 4, 0, 10], 64)[14..];
    let tunneled = mpls_from(NODE_B, LABEL_H, inner);
    assert_eq!(rig.dropped(FABRIC, &tunneled), DropReason::HaStandby);
    // A broadcast from vmi-k floods to the peers, never out of port 4.
    let broadcast = udp4(
        MAC_K,
        BROADCAST,
        Some(500),
        [10, 4, 0, 20],
        [10, 4, 0, 255],
        64,
    );
    let ports: Vec<PortId> = copies(&rig, P1, &broadcast)
        .iter()
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(ports, [FABRIC, FABRIC], "node-b and node-c only: {ports:?}");
    // Nothing was seen of vmi-h: the agent would claim nothing.
    let mut seen = Vec::new();
    rig.tables.take_seen(|v| seen.push(v.to_owned()));
    assert!(seen.is_empty());
}

#[test]
fn an_active_member_answers_forwards_and_notes_its_instances_traffic() {
    let rig = rig();
    assert!(rig.tables.set_ha_role("g", HaRole::Active));
    let ask = arp_request(MAC_H, Some(100), [10, 4, 0, 10], [10, 4, 0, 1]);
    let (verdict, reply) = rig.run(P4, &ask);
    assert!(
        matches!(verdict, Verdict::Transmit { port: P4, .. }),
        "{verdict:?}"
    );
    let sliced = SlicedPacket::from_ethernet(&reply).unwrap();
    let Some(NetSlice::Arp(arp)) = sliced.net else {
        panic!("not ARP")
    };
    assert_eq!(arp.operation(), ArpOperation::REPLY);
    assert_eq!(arp.sender_hw_addr(), GW);
    // vmi-k reaches vmi-h out of the member port, tagged 100.
    let (verdict, out) = rig.run(P1, &from_k([10, 4, 0, 10]));
    assert!(
        matches!(verdict, Verdict::Transmit { port: P4, .. }),
        "{verdict:?}"
    );
    assert_eq!(
        out,
        udp4(GW, MAC_H, Some(100), [10, 4, 0, 20], [10, 4, 0, 10], 63)
    );
    // vmi-h's own traffic is noted, once, for the agent.
    let routed = udp4(MAC_H, GW, Some(100), [10, 4, 0, 10], [10, 4, 0, 20], 64);
    for _ in 0..3 {
        assert!(matches!(
            rig.run(P4, &routed).0,
            Verdict::Transmit { port: P1, .. }
        ));
    }
    let mut seen = Vec::new();
    rig.tables.take_seen(|v| seen.push(v.to_owned()));
    assert_eq!(seen, ["ns/vmi-h"]);
    rig.tables.take_seen(|v| seen.push(v.to_owned()));
    assert_eq!(seen.len(), 1, "taken");
    // A broadcast from vmi-k now reaches port 4 too.
    let broadcast = udp4(
        MAC_K,
        BROADCAST,
        Some(500),
        [10, 4, 0, 20],
        [10, 4, 0, 255],
        64,
    );
    let ports: Vec<PortId> = copies(&rig, P1, &broadcast)
        .iter()
        .map(|(p, _)| *p)
        .collect();
    assert!(ports.contains(&P4), "{ports:?}");
}

#[test]
fn a_vmi_served_by_a_peer_now_is_sent_through_it_but_never_back_into_a_tunnel() {
    let rig = rig();
    rig.tables.set_ha_role("g", HaRole::Standby);
    assert_eq!(rig.tables.vmi_path("ns/vmi-h"), Some(None), "here at first");
    assert!(rig.tables.set_vmi_path("ns/vmi-h", Some("node-b")));
    assert_eq!(rig.tables.vmi_path("ns/vmi-h"), Some(Some("node-b")));
    // Routed from vmi-k: to node-b with vmi-h's label, inner TTL 63.
    let (verdict, out) = rig.run(P1, &from_k([10, 4, 0, 10]));
    assert!(
        matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
        "{verdict:?}"
    );
    let (_, dst, _, dport, payload) = outer(&out);
    assert_eq!((dst, dport), (IpAddr::from(NODE_B), 6635));
    assert_eq!(mpls_entry(&payload).0, LABEL_H);
    let expected = udp4(GW, MAC_H, None, [10, 4, 0, 20], [10, 4, 0, 10], 63);
    assert_eq!(&payload[4..], &expected[14..]);
    // Bridged from vmi-k to vmi-h's MAC: the network's label, untagged.
    let bridged = udp4(MAC_K, MAC_H, Some(500), [10, 4, 0, 20], [10, 4, 0, 10], 64);
    let (verdict, out) = rig.run(P1, &bridged);
    assert!(
        matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
        "{verdict:?}"
    );
    let (_, dst, _, _, payload) = outer(&out);
    assert_eq!(dst, IpAddr::from(NODE_B));
    assert_eq!(mpls_entry(&payload).0, NET4_LABEL);
    assert_eq!(
        &payload[4..],
        &udp4(MAC_K, MAC_H, None, [10, 4, 0, 20], [10, 4, 0, 10], 64)[..]
    );
    // From a tunnel: never into another; dropped while standby, delivered
    // once active (the sender's information was older than ours).
    let inner = &udp4(GW, MAC_H, None, [10, 0, 0, 60], [10, 4, 0, 10], 64)[14..];
    let tunneled = mpls_from(NODE_C, LABEL_H, inner);
    assert_eq!(rig.dropped(FABRIC, &tunneled), DropReason::HaStandby);
    rig.tables.set_ha_role("g", HaRole::Active);
    let (verdict, _) = rig.run(FABRIC, &tunneled);
    assert!(
        matches!(verdict, Verdict::Transmit { port: P4, .. }),
        "{verdict:?}"
    );
    // Back here.
    assert!(rig.tables.set_vmi_path("ns/vmi-h", None));
    assert!(matches!(
        rig.run(P1, &from_k([10, 4, 0, 10])).0,
        Verdict::Transmit { port: P4, .. }
    ));
    // What cannot be chosen is refused.
    assert!(
        !rig.tables.set_vmi_path("ns/vmi-h", Some("node-c")),
        "node-c does not serve it"
    );
    assert!(
        !rig.tables.set_vmi_path("ns/vmi-k", None),
        "not multi-homed"
    );
    assert!(!rig.tables.set_ha_role("nope", HaRole::Active));
}

#[test]
fn a_remote_vmi_follows_its_current_peer() {
    let rig = rig();
    let to_s = from_k([10, 4, 0, 30]);
    let dst = |out: &[u8]| outer(out).1;
    let (_, out) = rig.run(P1, &to_s);
    assert_eq!(dst(&out), IpAddr::from(NODE_B), "its own peer at first");
    assert!(rig.tables.set_vmi_path("ns/vmi-s", Some("node-c")));
    let (verdict, out) = rig.run(P1, &to_s);
    assert!(
        matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
        "{verdict:?}"
    );
    let (_, dst_c, _, _, payload) = outer(&out);
    assert_eq!(dst_c, IpAddr::from(NODE_C));
    assert_eq!(mpls_entry(&payload).0, LABEL_S, "its routed label");
    // Bridged too.
    let bridged = udp4(MAC_K, MAC_S, Some(500), [10, 4, 0, 20], [10, 4, 0, 30], 64);
    let (_, out) = rig.run(P1, &bridged);
    assert_eq!(dst(&out), IpAddr::from(NODE_C));
    assert!(
        !rig.tables.set_vmi_path("ns/vmi-s", None),
        "a remote VMI is not served here"
    );
    let all: Vec<(String, bool, Vec<String>)> = rig
        .tables
        .multihomed_vmis()
        .map(|(k, local, peers)| {
            (
                k.to_owned(),
                local,
                peers.iter().map(|p| p.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(
        all,
        [
            ("ns/vmi-h".to_owned(), true, vec!["node-b".to_owned()]),
            (
                "ns/vmi-s".to_owned(),
                false,
                vec!["node-b".to_owned(), "node-c".to_owned()]
            ),
        ]
    );
}

#[test]
fn roles_and_paths_survive_a_rebuild() {
    let rig = rig();
    rig.tables.set_ha_role("g", HaRole::Active);
    rig.tables.set_vmi_path("ns/vmi-h", Some("node-b"));
    rig.tables.set_vmi_path("ns/vmi-s", Some("node-c"));
    let (again, rejected) = Tables::recompile(&ha_fixture(), &rig.tables);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(again.ha_role("g"), Some(HaRole::Active));
    assert_eq!(again.vmi_path("ns/vmi-h"), Some(Some("node-b")));
    assert_eq!(again.vmi_path("ns/vmi-s"), Some(Some("node-c")));
    // The role cell is shared: a flip on the old tables reaches the new.
    rig.tables.set_ha_role("g", HaRole::Standby);
    assert_eq!(again.ha_role("g"), Some(HaRole::Standby));
    // node-c no longer serves vmi-s: back to its own peer.
    let mut config = ha_fixture();
    config.multihomed.retain(|m| m.vmi != "ns/vmi-s");
    let (after, _) = Tables::recompile(&config, &again);
    assert_eq!(after.vmi_path("ns/vmi-s"), None, "no longer multi-homed");
    // A group whose mode changed starts over.
    let mut config = ha_fixture();
    config.ha_groups[0].mode = HaMode::Stp;
    let (stp, _) = Tables::recompile(&config, &again);
    assert_eq!(stp.ha_role("g"), Some(HaRole::Active), "STP starts active");
    assert!(
        stp.dump()
            .contains("ha group g mode Stp ports [4] role Some(Active)")
    );
}

#[test]
fn bad_ha_configuration_is_rejected_item_by_item() {
    let mut config = ha_fixture();
    config.ha_groups.push(HaGroupConfig {
        key: "h".into(),
        mode: HaMode::Fast,
        ports: vec![P4, FABRIC, PortId(77)],
    });
    config.multihomed.push(MultihomedVmiConfig {
        vmi: "ns/nobody".into(),
        peers: vec![],
    });
    config.multihomed[0].peers.push("node-z".into());
    let (tables, rejected) = Tables::compile(&config);
    let reasons: Vec<String> = rejected.iter().map(ToString::to_string).collect();
    for text in [
        "HA group h: port 4 is already a member port of HA group \"g\"",
        "HA group h: port 3 is not a gateway port",
        "HA group h: port 77 is not declared",
        "VMI ns/nobody: VMI \"ns/nobody\" is not declared",
        "VMI ns/vmi-h: peer \"node-z\" is not declared",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(text)),
            "{text}: {reasons:#?}"
        );
    }
    // The rest is built.
    assert_eq!(tables.vmi_path("ns/vmi-h"), Some(None));
    assert_eq!(tables.ha_groups().collect::<Vec<_>>(), ["g", "h"]);
}

/// The frames of one announcement, decoded: (VLAN, destination MAC, what).
fn decode(frame: &[u8]) -> (Option<u16>, [u8; 6], String) {
    let sliced = SlicedPacket::from_ethernet(frame).expect("etherparse reads it");
    let Some(LinkSlice::Ethernet2(ref eth)) = sliced.link else {
        panic!("not Ethernet II")
    };
    assert_eq!(eth.source(), GW, "from the gateway MAC");
    let vlan = match sliced.vlan() {
        Some(VlanSlice::SingleVlan(v)) => Some(v.vlan_identifier().value()),
        None => None,
        other => panic!("{other:?}"),
    };
    let what = match (sliced.net, sliced.transport) {
        (Some(NetSlice::Arp(arp)), _) => {
            assert_eq!(arp.operation(), ArpOperation::REQUEST);
            assert_eq!(arp.sender_hw_addr(), GW);
            assert_eq!(arp.target_hw_addr(), [0; 6]);
            assert_eq!(
                arp.sender_protocol_addr(),
                arp.target_protocol_addr(),
                "gratuitous"
            );
            format!("garp {:?}", arp.sender_protocol_addr())
        }
        (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Icmpv6(icmp))) => {
            let h = ip.header();
            assert_eq!(h.hop_limit(), 255);
            assert_eq!(
                h.destination_addr(),
                "ff02::1".parse::<core::net::Ipv6Addr>().unwrap()
            );
            let Icmpv6Type::NeighborAdvertisement(na) = icmp.icmp_type() else {
                panic!("not a neighbour advertisement")
            };
            assert!(na.router && na.r#override && !na.solicited);
            let computed = icmp
                .icmp_type()
                .calc_checksum(h.source(), h.destination(), icmp.payload())
                .unwrap();
            assert_eq!(icmp.checksum(), computed, "ICMPv6 checksum");
            let payload = icmp.payload();
            assert_eq!(
                &payload[16..18],
                &[2, 1],
                "target link-layer address option"
            );
            assert_eq!(&payload[18..24], &GW);
            let target = core::net::Ipv6Addr::from(<[u8; 16]>::try_from(&payload[..16]).unwrap());
            assert_eq!(h.source_addr(), target);
            format!("na {target}")
        }
        other => panic!("{other:?}"),
    };
    (vlan, eth.destination(), what)
}

#[test]
fn takeover_announcements_are_gratuitous_arp_and_unsolicited_na_on_every_vlan() {
    let mut config = ha_fixture();
    // A second VLAN on the member port, in net1 (three gateway addresses).
    config.vmis.push(vmi(
        "ns/vmi-j",
        "ns/net1",
        [2, 0, 0, 0, 0, 0x4a],
        &["10.0.0.90"],
    ));
    config
        .logical_interfaces
        .push(li("ns/li-j", P4, 0, "ns/vmi-j", 30));
    let (tables, rejected) = Tables::compile(&config);
    assert!(rejected.is_empty(), "{rejected:?}");
    type Seen = (PortId, u16, Option<u16>, [u8; 6], String);
    let got: Vec<Seen> = tables
        .announcements("g")
        .into_iter()
        .map(|a| {
            assert!(a.frame.len() >= 60, "padded to the shortest frame");
            let (vlan, dst, what) = decode(&a.frame);
            (a.port, a.vlan, vlan, dst, what)
        })
        .collect();
    let b = [0xff; 6];
    let all_nodes = [0x33, 0x33, 0, 0, 0, 1];
    assert_eq!(
        got,
        [
            (P4, 0, None, b, "garp [10, 0, 0, 1]".to_owned()),
            (P4, 0, None, b, "garp [10, 0, 1, 1]".to_owned()),
            (P4, 0, None, all_nodes, "na fd00::1".to_owned()),
            (P4, 100, Some(100), b, "garp [10, 4, 0, 1]".to_owned()),
            (P4, 100, Some(100), all_nodes, "na fd04::1".to_owned()),
        ]
    );
    assert!(tables.announcements("nope").is_empty());
}

pub(super) fn drop_cases() -> Vec<DropCase> {
    vec![(
        "a frame on a member port of a group this node is standby in",
        P4,
        arp_request(MAC_H, Some(100), [10, 4, 0, 10], [10, 4, 0, 1]),
        HEADROOM,
        0,
        DropReason::HaStandby,
    )]
}

proptest! {
    /// Whatever the roles and paths, no frame makes the pipeline panic,
    /// and a standby member never sends a frame out of its member port.
    #[test]
    fn roles_and_paths_never_panic_and_standby_never_sends_on_the_member_port(
        active in any::<bool>(),
        h_path in 0u8..3,
        s_path in 0u8..3,
        from in prop::sample::select(vec![P1, P2, P4, FABRIC, VGW]),
        frame in prop::collection::vec(any::<u8>(), 0..200),
        which in 0usize..6,
    ) {
        let rig = rig();
        rig.tables.set_ha_role("g", if active { HaRole::Active } else { HaRole::Standby });
        rig.tables.set_vmi_path("ns/vmi-h", [None, Some("node-b"), Some("node-c")][usize::from(h_path)]);
        rig.tables.set_vmi_path("ns/vmi-s", [None, Some("node-b"), Some("node-c")][usize::from(s_path)]);
        // Random bytes, or a valid frame toward the group's instances.
        let frame = match which {
            0 => from_k([10, 4, 0, 10]),
            1 => from_k([10, 4, 0, 30]),
            2 => udp4(MAC_K, BROADCAST, Some(500), [10, 4, 0, 20], [10, 4, 0, 255], 64),
            3 => udp4(MAC_K, MAC_H, Some(500), [10, 4, 0, 20], [10, 4, 0, 10], 64),
            4 => mpls_from(NODE_B, LABEL_H, &udp4(GW, MAC_H, None, [10, 0, 0, 60], [10, 4, 0, 10], 64)[14..]),
            _ => frame,
        };
        let mut buf = vec![0u8; HEADROOM + frame.len() + 64];
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(&frame);
        let pipeline = Pipeline::new(&rig.tables, &rig.counters);
        let verdict = pipeline.process(from, &mut buf, HEADROOM, frame.len());
        if !active {
            match verdict {
                Verdict::Transmit { port, .. } => prop_assert_ne!(port, P4),
                Verdict::Flood(flood) => {
                    for member in 0..pipeline.flood_members(&flood) {
                        prop_assert_ne!(pipeline.flood_egress(&flood, member), Some(P4));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Where north-south meets HA: a DC gateway (a routed peer of net4, not a
/// node) that sends to a member not serving vmi-h now has it go on to the
/// member that does; what a node sends is never tunnelled on (split
/// horizon).
#[test]
fn north_south_traffic_to_a_multihomed_vmi_goes_where_it_is_served() {
    const DCGW: [u8; 4] = [192, 168, 100, 200];
    let mut config = ha_fixture();
    config.peers.push(PeerConfig {
        key: "dcgw".into(),
        address: IpAddr::from(DCGW),
        encapsulations: vec![Encapsulation::MplsOverUdp],
    });
    for n in &mut config.networks {
        if n.key == "ns/net4" {
            n.routed_peers = vec!["dcgw".into()];
        }
    }
    let rig = Rig::new(&config);
    let inner = &udp4(GW, MAC_H, None, [198, 51, 100, 9], [10, 4, 0, 10], 64)[14..];
    let from_dcgw = mpls_from(DCGW, LABEL_H, inner);
    // Active, served here: out of the member port.
    rig.tables.set_ha_role("g", HaRole::Active);
    let (verdict, _) = rig.run(FABRIC, &from_dcgw);
    assert!(
        matches!(verdict, Verdict::Transmit { port: P4, .. }),
        "{verdict:?}"
    );
    // Standby, node-b serves it now: on to node-b with its label, TTL 63.
    rig.tables.set_ha_role("g", HaRole::Standby);
    assert!(rig.tables.set_vmi_path("ns/vmi-h", Some("node-b")));
    let (verdict, out) = rig.run(FABRIC, &from_dcgw);
    assert!(
        matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
        "{verdict:?}"
    );
    let (_, dst, _, dport, payload) = outer(&out);
    assert_eq!((dst, dport), (IpAddr::from(NODE_B), 6635));
    assert_eq!(mpls_entry(&payload).0, LABEL_H);
    // The same from node-c (a node): not into another tunnel.
    let from_node = mpls_from(NODE_C, LABEL_H, inner);
    assert_eq!(rig.dropped(FABRIC, &from_node), DropReason::HaStandby);
    // Standby and served here (stale path on the DC gateway's side is not
    // a reason to leave by a standby port): dropped.
    assert!(rig.tables.set_vmi_path("ns/vmi-h", None));
    assert_eq!(rig.dropped(FABRIC, &from_dcgw), DropReason::HaStandby);
}
