//! Overlay tests on hand-built frames: encapsulation toward peers (bytes
//! decoded by etherparse, an independent parser), decapsulation into VMIs
//! and networks, flooding by ingress replication, split horizon, ICMP errors
//! for packets too big for the tunnel, and every tunnel drop.

use core::net::{IpAddr, Ipv6Addr};

use etherparse::{
    IcmpEchoHeader, Icmpv4Type, Icmpv6Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice,
};

use super::tests::*;
use super::*;
use crate::config::*;
use crate::verdict::DropReason;
use trunkline_wire::EthernetAddress;

pub(crate) mod differential;

/// A tunnel packet from `peer` to this node: outer Ethernet, IPv4, UDP to
/// `port`, then `payload` (an MPLS entry or a VXLAN header and what follows).
pub(super) fn from_peer(peer: [u8; 4], port: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(NEXT_HOP_MAC, FABRIC_MAC)
        .ipv4(peer, UNDERLAY, 64)
        .udp(50000, port)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// MPLS over UDP from `peer` with one label (bottom of stack) and `inner`.
pub(super) fn mpls_from(peer: [u8; 4], label: u32, inner: &[u8]) -> Vec<u8> {
    let mut payload = ((label << 12) | 0x100 | 64).to_be_bytes().to_vec();
    payload.extend_from_slice(inner);
    from_peer(peer, 6635, &payload)
}

/// VXLAN from `peer` with `vni` and the inner Ethernet frame.
pub(super) fn vxlan_from(peer: [u8; 4], vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut payload = vec![0x08, 0, 0, 0];
    payload.extend_from_slice(&(vni << 8).to_be_bytes());
    payload.extend_from_slice(inner);
    from_peer(peer, 4789, &payload)
}

/// The outer headers of a tunnel packet we sent, decoded by etherparse:
/// (outer source, outer destination, UDP source port, UDP destination port,
/// UDP payload).
pub(super) fn outer(frame: &[u8]) -> (IpAddr, IpAddr, u16, u16, Vec<u8>) {
    let sliced = SlicedPacket::from_ethernet(frame).expect("etherparse reads the tunnel packet");
    assert!(sliced.vlan().is_none(), "the fabric side is untagged");
    let link = sliced.link.expect("ethernet");
    let etherparse::LinkSlice::Ethernet2(eth) = link else {
        panic!("not Ethernet II")
    };
    assert_eq!(eth.destination(), NEXT_HOP_MAC, "outer destination MAC");
    assert_eq!(eth.source(), FABRIC_MAC, "outer source MAC");
    let (src, dst) = match sliced.net.expect("outer IP") {
        NetSlice::Ipv4(ip) => {
            let h = ip.header();
            assert_eq!(h.ttl(), 64);
            assert!(h.dont_fragment());
            let header = h.to_header();
            assert_eq!(header.header_checksum, header.calc_header_checksum());
            (
                IpAddr::from(h.source_addr()),
                IpAddr::from(h.destination_addr()),
            )
        }
        NetSlice::Ipv6(ip) => (
            IpAddr::from(ip.header().source_addr()),
            IpAddr::from(ip.header().destination_addr()),
        ),
        _ => panic!("not IP"),
    };
    let Some(TransportSlice::Udp(udp)) = sliced.transport else {
        panic!("not UDP")
    };
    (
        src,
        dst,
        udp.source_port(),
        udp.destination_port(),
        udp.payload().to_vec(),
    )
}

pub(super) fn mpls_entry(payload: &[u8]) -> (u32, bool, u8) {
    let word = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
    (word >> 12, word & 0x100 != 0, word as u8)
}

#[test]
fn routes_to_a_remote_vmi_with_its_label_over_mpls_over_udp() {
    let rig = Rig::new(&fixture());
    let frame = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 0, 60], 64);
    let (verdict, out) = rig.run(P1, &frame);
    let Verdict::Transmit { port, vmi, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!((port, vmi), (FABRIC, None));
    let (src, dst, sport, dport, payload) = outer(&out);
    assert_eq!(src, IpAddr::from(UNDERLAY));
    assert_eq!(dst, IpAddr::from(NODE_B));
    assert_eq!(dport, 6635);
    assert!(
        sport >= 49152,
        "source port {sport} from the flow hash range"
    );
    assert_eq!(mpls_entry(&payload), (LABEL_R, true, 64));
    // The inner IP packet, routed: TTL 63, its checksum right.
    let expected = udp4(GW, MAC_R, None, [10, 0, 0, 10], [10, 0, 0, 60], 63);
    assert_eq!(&payload[4..], &expected[14..]);
    // The same flow always hashes to the same source port.
    let (_, again) = rig.run(P1, &frame);
    assert_eq!(outer(&again).2, sport);
}

#[test]
fn routes_ipv6_to_a_remote_vmi() {
    let rig = Rig::new(&fixture());
    let frame = udp6(MAC_A, GW, Some(100), "fd00::a", "fd00::60", 64);
    let (verdict, out) = rig.run(P1, &frame);
    assert!(
        matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
        "{verdict:?}"
    );
    let (_, _, _, dport, payload) = outer(&out);
    assert_eq!(dport, 6635);
    assert_eq!(mpls_entry(&payload).0, LABEL_R);
    let expected = udp6(GW, MAC_R, None, "fd00::a", "fd00::60", 63);
    assert_eq!(&payload[4..], &expected[14..]);
}

#[test]
fn routes_to_an_endpoint_behind_a_vxlan_vtep_with_the_vni() {
    let rig = Rig::new(&fixture());
    rig.tables
        .set_next_hop_mac(IpAddr::from(XVTEP), Some(EthernetAddress(NEXT_HOP_MAC)));
    let frame = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 0, 70], 64);
    let (verdict, out) = rig.run(P1, &frame);
    assert!(
        matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
        "{verdict:?}"
    );
    let (_, dst, _, dport, payload) = outer(&out);
    assert_eq!((dst, dport), (IpAddr::from(XVTEP), 4789));
    assert_eq!(payload[0], 0x08, "VXLAN I flag");
    assert_eq!(
        u32::from_be_bytes([0, payload[4], payload[5], payload[6]]),
        NET1_VNI
    );
    // Inner Ethernet to the endpoint's MAC from the gateway, untagged.
    let expected = udp4(GW, MAC_X, None, [10, 0, 0, 10], [10, 0, 0, 70], 63);
    assert_eq!(&payload[8..], &expected[..]);
}

#[test]
fn bridges_to_a_remote_mac_with_the_network_label() {
    let rig = Rig::new(&fixture());
    let frame = udp4(MAC_A, MAC_R, Some(100), [10, 0, 0, 10], [10, 0, 0, 60], 64);
    let (verdict, out) = rig.run(P1, &frame);
    assert!(
        matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
        "{verdict:?}"
    );
    let (_, dst, _, dport, payload) = outer(&out);
    assert_eq!((dst, dport), (IpAddr::from(NODE_B), 6635));
    assert_eq!(mpls_entry(&payload).0, NET1_LABEL);
    // The bridged frame itself, untagged, TTL untouched.
    let expected = udp4(MAC_A, MAC_R, None, [10, 0, 0, 10], [10, 0, 0, 60], 64);
    assert_eq!(&payload[4..], &expected[..]);
}

#[test]
fn decapsulates_a_routed_label_to_its_vmi() {
    let rig = Rig::new(&fixture());
    let inner = udp4(MAC_R, GW, None, [10, 0, 0, 60], [10, 0, 0, 10], 63);
    let packet = mpls_from(NODE_B, LABEL_A, &inner[14..]);
    let (verdict, out) = rig.run(FABRIC, &packet);
    let Verdict::Transmit { port, vmi, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!((port, vmi), (P1, rig.tables.vmi_id("ns/vmi-a")));
    assert_eq!(
        out,
        udp4(GW, MAC_A, Some(100), [10, 0, 0, 60], [10, 0, 0, 10], 63)
    );
    assert_eq!(rig.vmi("ns/vmi-a").tx_packets, 1);
}

#[test]
fn decapsulates_vxlan_into_the_network_and_bridges_or_routes() {
    let rig = Rig::new(&fixture());
    // Bridged to vmi-b's MAC: tagged with its VLAN, MACs kept.
    let inner = udp4(MAC_X, MAC_B, None, [10, 0, 0, 70], [10, 0, 1, 20], 64);
    let (verdict, out) = rig.run(FABRIC, &vxlan_from(XVTEP, NET1_VNI, &inner));
    assert!(
        matches!(verdict, Verdict::Transmit { port: P1, .. }),
        "{verdict:?}"
    );
    assert_eq!(
        out,
        udp4(MAC_X, MAC_B, Some(200), [10, 0, 0, 70], [10, 0, 1, 20], 64)
    );
    // To the gateway MAC: routed to the local VMI.
    let inner = udp4(MAC_X, GW, None, [10, 0, 0, 70], [10, 0, 0, 10], 64);
    let (verdict, out) = rig.run(FABRIC, &vxlan_from(XVTEP, NET1_VNI, &inner));
    assert!(
        matches!(verdict, Verdict::Transmit { port: P1, .. }),
        "{verdict:?}"
    );
    assert_eq!(
        out,
        udp4(GW, MAC_A, Some(100), [10, 0, 0, 70], [10, 0, 0, 10], 63)
    );
    // The network's MPLS label carries Ethernet the same way.
    let inner = udp4(MAC_R, MAC_B, None, [10, 0, 0, 60], [10, 0, 1, 20], 64);
    let (verdict, _) = rig.run(FABRIC, &mpls_from(NODE_B, NET1_LABEL, &inner));
    assert!(
        matches!(verdict, Verdict::Transmit { port: P1, .. }),
        "{verdict:?}"
    );
}

#[test]
fn answers_a_remote_hosts_arp_for_the_gateway_through_the_tunnel() {
    let rig = Rig::new(&fixture());
    rig.tables
        .set_next_hop_mac(IpAddr::from(XVTEP), Some(EthernetAddress(NEXT_HOP_MAC)));
    let request = arp_request(MAC_X, None, [10, 0, 0, 70], [10, 0, 0, 1]);
    let (verdict, out) = rig.run(FABRIC, &vxlan_from(XVTEP, NET1_VNI, &request));
    assert!(
        matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
        "{verdict:?}"
    );
    let (_, dst, _, dport, payload) = outer(&out);
    assert_eq!((dst, dport), (IpAddr::from(XVTEP), 4789));
    let reply = arp(
        GW,
        MAC_X,
        None,
        etherparse::ArpOperation::REPLY,
        GW,
        [10, 0, 0, 1],
        MAC_X,
        [10, 0, 0, 70],
    );
    assert_eq!(&payload[8..], &reply[..]);
    // A question for another instance's address is flooded to the local
    // logical interfaces, for the instance itself to answer.
    let request = arp_request(MAC_X, None, [10, 0, 0, 70], [10, 0, 0, 10]);
    let (verdict, _) = rig.run(FABRIC, &vxlan_from(XVTEP, NET1_VNI, &request));
    assert!(matches!(verdict, Verdict::Flood(_)), "{verdict:?}");
}

/// Every copy of a flood: (egress port, the copy's bytes or why it failed).
pub(super) fn copies(
    rig: &Rig,
    port: PortId,
    frame: &[u8],
) -> Vec<(PortId, Result<Vec<u8>, DropReason>)> {
    let mut buf = vec![0u8; HEADROOM + frame.len()];
    buf[HEADROOM..].copy_from_slice(frame);
    let pipeline = Pipeline::new(&rig.tables, &rig.counters);
    let Verdict::Flood(flood) = pipeline.process(port, &mut buf, HEADROOM, frame.len()) else {
        panic!("not flooded")
    };
    if port != FABRIC {
        assert_eq!(
            &buf[flood.offset..flood.offset + flood.len],
            frame,
            "left unchanged"
        );
    }
    (0..pipeline.flood_members(&flood))
        .filter_map(|member| {
            let egress = pipeline.flood_egress(&flood, member)?;
            let mut dst = vec![0u8; 2048];
            let copy = pipeline
                .flood_copy(&flood, member, &buf, &mut dst)
                .map(|(offset, len, _)| dst[offset..offset + len].to_vec());
            Some((egress, copy))
        })
        .collect()
}

#[test]
fn floods_a_broadcast_to_every_logical_interface_and_every_peer_but_the_source() {
    let rig = Rig::new(&fixture());
    // A broadcast the proxy does not answer (every IPv4 address is routed in
    // net1: it has a default route).
    let broadcast = |vlan| udp4(MAC_A, BROADCAST, vlan, [10, 0, 0, 10], [10, 0, 0, 255], 64);
    let copies = copies(&rig, P1, &broadcast(Some(100)));
    // li-b (VLAN 200), li-u (port 2, untagged), node-b, and the external
    // VTEP, whose next hop is not resolved: never back to li-a.
    assert_eq!(copies.len(), 4, "{copies:?}");
    let local_b = broadcast(Some(200));
    let local_u = broadcast(None);
    assert!(copies.contains(&(P1, Ok(local_b))), "{copies:?}");
    assert!(copies.contains(&(P2, Ok(local_u.clone()))), "{copies:?}");
    let tunneled: Vec<_> = copies.iter().filter(|(port, _)| *port == FABRIC).collect();
    assert_eq!(tunneled.len(), 2);
    assert!(tunneled.contains(&&(FABRIC, Err(DropReason::TunnelUnresolved))));
    let (_, sent) = tunneled
        .iter()
        .find(|(_, copy)| copy.is_ok())
        .expect("the copy to node-b");
    let (_, dst, _, dport, payload) = outer(sent.as_ref().unwrap());
    assert_eq!((dst, dport), (IpAddr::from(NODE_B), 6635));
    assert_eq!(mpls_entry(&payload).0, NET1_LABEL);
    assert_eq!(&payload[4..], &local_u[..], "untagged inside the tunnel");
}

#[test]
fn a_flood_from_a_tunnel_goes_to_local_members_only() {
    let rig = Rig::new(&fixture());
    let request = arp_request(MAC_R, None, [10, 0, 0, 60], [10, 0, 0, 99]);
    let copies = copies(&rig, FABRIC, &vxlan_from(NODE_B, NET1_VNI, &request));
    let ports: Vec<PortId> = copies.iter().map(|(p, _)| *p).collect();
    assert_eq!(ports.len(), 3, "li-a, li-b, li-u: {copies:?}");
    assert!(!ports.contains(&FABRIC), "never back into a tunnel");
    let tagged = arp_request(MAC_R, Some(100), [10, 0, 0, 60], [10, 0, 0, 99]);
    assert!(copies.contains(&(P1, Ok(tagged))));
}

#[test]
fn unknown_unicast_floods_only_where_the_network_asks_for_it() {
    let mut config = fixture();
    config.networks[0].flood_unknown_unicast = true;
    let rig = Rig::new(&config);
    let frame = udp4(
        MAC_A,
        [2, 0, 0, 0, 0, 0x77],
        Some(100),
        [10, 0, 0, 10],
        [10, 0, 0, 77],
        64,
    );
    let (verdict, _) = rig.run(P1, &frame);
    assert!(matches!(verdict, Verdict::Flood(_)), "{verdict:?}");
    let rig = Rig::new(&fixture());
    assert_eq!(rig.dropped(P1, &frame), DropReason::UnknownUnicast);
}

/// An IPv4 packet of `total` bytes, don't-fragment as given.
fn big_udp4(dst: [u8; 4], total: usize, dont_fragment: bool) -> Vec<u8> {
    let mut out = Vec::new();
    ipv4_step(MAC_A, GW, Some(100), [10, 0, 0, 10], dst, 64)
        .udp(40000, 9)
        .write(&mut out, &vec![0x5a; total - 28])
        .unwrap();
    let mut ip = trunkline_wire::ipv4::Packet::new_unchecked(&mut out[18..]);
    ip.set_flags_frag_offset(dont_fragment, false, 0);
    ip.fill_checksum();
    out
}

#[test]
fn a_packet_too_big_for_the_tunnel_gets_fragmentation_needed_with_the_mtu() {
    let rig = Rig::new(&fixture());
    // Fabric MTU 1500 - IPv4 20 - UDP 8 - MPLS 4.
    let mtu = 1468;
    let fits = big_udp4([10, 0, 0, 60], mtu, true);
    assert!(matches!(
        rig.run(P1, &fits).0,
        Verdict::Transmit { port: FABRIC, .. }
    ));
    let frame = big_udp4([10, 0, 0, 60], mtu + 1, true);
    let (verdict, out) = rig.run(P1, &frame);
    let Verdict::Transmit { port, vmi, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!((port, vmi), (P1, rig.tables.vmi_id("ns/vmi-a")));
    let sliced = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(etherparse::VlanSlice::SingleVlan(tag)) = sliced.vlan() else {
        panic!("not tagged")
    };
    assert_eq!(tag.vlan_identifier().value(), 100);
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        panic!("not IPv4")
    };
    assert_eq!(
        ip.header().source_addr().octets(),
        [10, 0, 0, 1],
        "the gateway"
    );
    assert_eq!(ip.header().destination_addr().octets(), [10, 0, 0, 10]);
    let Some(TransportSlice::Icmpv4(icmp)) = &sliced.transport else {
        panic!("not ICMP")
    };
    assert_eq!(
        icmp.icmp_type(),
        Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                next_hop_mtu: mtu as u16
            }
        )
    );
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type().calc_checksum(icmp.payload())
    );
    // It quotes the original header (TTL already decremented) and 8 bytes.
    assert_eq!(icmp.payload().len(), 28);
    assert_eq!(&icmp.payload()[12..20], &frame[18 + 12..18 + 20]);
    // Without don't-fragment: a counted drop (the fast path does not fragment).
    let frame = big_udp4([10, 0, 0, 60], mtu + 1, false);
    assert_eq!(rig.dropped(P1, &frame), DropReason::FragmentationNeeded);
    let _ = IcmpEchoHeader { id: 0, seq: 0 };
}

#[test]
fn an_ipv6_packet_too_big_for_the_tunnel_gets_packet_too_big() {
    let rig = Rig::new(&fixture());
    let mut frame = Vec::new();
    ipv6_step(MAC_A, GW, Some(100), v6("fd00::a"), v6("fd00::60"), 64)
        .udp(40000, 9)
        .write(&mut frame, &vec![0x5a; 1469 - 48])
        .unwrap();
    let (verdict, out) = rig.run(P1, &frame);
    assert!(
        matches!(verdict, Verdict::Transmit { port: P1, .. }),
        "{verdict:?}"
    );
    let sliced = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &sliced.net else {
        panic!("not IPv6")
    };
    assert_eq!(ip.header().source_addr(), v6("fd00::1"));
    let Some(TransportSlice::Icmpv6(icmp)) = &sliced.transport else {
        panic!("not ICMPv6")
    };
    assert_eq!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1468 });
    let (src, dst): (Ipv6Addr, Ipv6Addr) = (v6("fd00::1"), v6("fd00::a"));
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type()
            .calc_checksum(src.octets(), dst.octets(), icmp.payload())
            .unwrap()
    );
    assert!(
        out.len() - 18 <= 1280,
        "an ICMPv6 error fits the minimum MTU"
    );
}

#[test]
fn an_ipv6_underlay_computes_the_udp_checksum_and_decapsulates() {
    let mut config = fixture();
    let me: IpAddr = "fd00:100::1".parse().unwrap();
    let peer: IpAddr = "fd00:100::2".parse().unwrap();
    config.underlay.as_mut().unwrap().address = me;
    config.peers.retain(|p| p.key == "node-b");
    config.peers[0].address = peer;
    config.networks[0].peers = vec!["node-b".into()];
    config.remote_vmis.retain(|r| r.peer == "node-b");
    let rig = Rig::new(&config);
    rig.tables
        .set_next_hop_mac(peer, Some(EthernetAddress(NEXT_HOP_MAC)));
    let frame = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 0, 60], 64);
    let (verdict, out) = rig.run(P1, &frame);
    assert!(
        matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
        "{verdict:?}"
    );
    let sliced = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &sliced.net else {
        panic!("not IPv6")
    };
    assert_eq!(IpAddr::from(ip.header().destination_addr()), peer);
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        panic!("not UDP")
    };
    let header = udp.to_header();
    assert_ne!(header.checksum, 0);
    assert_eq!(
        header.checksum,
        header
            .calc_checksum_ipv6(&ip.header().to_header(), udp.payload())
            .unwrap()
    );
    // And back: the same bytes with source and destination swapped reach
    // the VMI a label names.
    let inner = udp4(MAC_R, GW, None, [10, 0, 0, 60], [10, 0, 0, 10], 63);
    let mut payload = ((LABEL_A << 12) | 0x100 | 64).to_be_bytes().to_vec();
    payload.extend_from_slice(&inner[14..]);
    let mut packet = Vec::new();
    let (IpAddr::V6(p), IpAddr::V6(m)) = (peer, me) else {
        unreachable!()
    };
    PacketBuilder::ethernet2(NEXT_HOP_MAC, FABRIC_MAC)
        .ipv6(p.octets(), m.octets(), 64)
        .udp(50000, 6635)
        .write(&mut packet, &payload)
        .unwrap();
    let (verdict, _) = rig.run(FABRIC, &packet);
    assert!(
        matches!(verdict, Verdict::Transmit { port: P1, .. }),
        "{verdict:?}"
    );
    // A corrupted checksum is a counted drop, not a delivery.
    let last = packet.len() - 1;
    packet[last] ^= 0xff;
    assert_eq!(rig.dropped(FABRIC, &packet), DropReason::TunnelMalformed);
}

#[test]
fn the_hosts_own_traffic_on_the_fabric_passes() {
    let rig = Rig::new(&fixture());
    let mut cases = Vec::new();
    // ARP for the node's address, TCP and other UDP to it, tunnel ports to
    // another address, and an IPv6 packet on an IPv4 underlay.
    cases.push(arp(
        NEXT_HOP_MAC,
        BROADCAST,
        None,
        etherparse::ArpOperation::REQUEST,
        NEXT_HOP_MAC,
        NODE_B,
        [0; 6],
        UNDERLAY,
    ));
    let mut tcp = Vec::new();
    PacketBuilder::ethernet2(NEXT_HOP_MAC, FABRIC_MAC)
        .ipv4(NODE_B, UNDERLAY, 64)
        .tcp(40000, 22, 1, 1000)
        .write(&mut tcp, b"ssh")
        .unwrap();
    cases.push(tcp);
    let mut dns = Vec::new();
    PacketBuilder::ethernet2(NEXT_HOP_MAC, FABRIC_MAC)
        .ipv4(NODE_B, UNDERLAY, 64)
        .udp(40000, 53)
        .write(&mut dns, b"query")
        .unwrap();
    cases.push(dns);
    let mut elsewhere = Vec::new();
    PacketBuilder::ethernet2(NEXT_HOP_MAC, FABRIC_MAC)
        .ipv4(NODE_B, [192, 168, 100, 77], 64)
        .udp(40000, 4789)
        .write(&mut elsewhere, &[0x08, 0, 0, 0, 0, 0x13, 0x89, 0])
        .unwrap();
    cases.push(elsewhere);
    cases.push(udp6(
        NEXT_HOP_MAC,
        FABRIC_MAC,
        None,
        "fd00::1",
        "fd00::2",
        64,
    ));
    for frame in cases {
        assert_eq!(rig.run(FABRIC, &frame).0, Verdict::Pass);
    }
}

#[test]
fn a_resolved_next_hop_survives_a_recompile() {
    let rig = Rig::new(&fixture());
    let (tables, rejected) = Tables::recompile(&fixture(), &rig.tables);
    assert!(rejected.is_empty());
    let node_b = tables.peers().iter().find(|p| p.key() == "node-b").unwrap();
    assert_eq!(node_b.next_hop_mac(), Some(EthernetAddress(NEXT_HOP_MAC)));
    let xvtep = tables.peers().iter().find(|p| p.key() == "xvtep").unwrap();
    assert_eq!(xvtep.next_hop_mac(), None);
    assert!(!tables.set_next_hop_mac("192.168.100.99".parse().unwrap(), None));
}

/// One frame per tunnel drop reason, for `every_drop_reason_has_a_frame`.
pub(super) fn drop_cases() -> Vec<DropCase> {
    use DropReason::*;
    let to_a = udp4(MAC_R, GW, None, [10, 0, 0, 60], [10, 0, 0, 10], 63);
    let to_b = udp4(MAC_R, GW, None, [10, 0, 0, 60], [10, 0, 1, 20], 63);
    let mut not_bottom = mpls_from(NODE_B, LABEL_A, &to_a[14..]);
    // The entry starts after Ethernet 14, IPv4 20, UDP 8; clear its S bit.
    not_bottom[14 + 20 + 8 + 2] &= !0x01;
    let to_remote_mac = udp4(MAC_R, MAC_X, None, [10, 0, 0, 60], [10, 0, 0, 70], 64);
    let h = HEADROOM;
    vec![
        (
            "tunnel from an unknown address",
            FABRIC,
            mpls_from([192, 168, 100, 9], LABEL_A, &to_a[14..]),
            h,
            0,
            TunnelUnknownPeer,
        ),
        (
            "unknown label",
            FABRIC,
            mpls_from(NODE_B, 999, &to_a[14..]),
            h,
            0,
            TunnelUnknownLabel,
        ),
        (
            "unknown vni",
            FABRIC,
            vxlan_from(NODE_B, 777, &to_a),
            h,
            0,
            TunnelUnknownVni,
        ),
        (
            "a peer sending into a network it does not host",
            FABRIC,
            mpls_from(XVTEP, NET2_LABEL, &to_a),
            h,
            0,
            TunnelPeerNotInNetwork,
        ),
        ("a label stack", FABRIC, not_bottom, h, 0, TunnelMalformed),
        (
            "a vmi's label on a packet for another address",
            FABRIC,
            mpls_from(NODE_B, LABEL_A, &to_b[14..]),
            h,
            0,
            TunnelWrongDestination,
        ),
        (
            "from a tunnel back into one",
            FABRIC,
            vxlan_from(NODE_B, NET1_VNI, &to_remote_mac),
            h,
            0,
            TunnelHairpin,
        ),
        (
            "next hop toward the vtep not resolved",
            P1,
            udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 0, 70], 64),
            h,
            0,
            TunnelUnresolved,
        ),
        (
            "a bridged frame too big for the tunnel",
            P1,
            {
                let mut f = big_udp4([10, 0, 0, 60], 1480, true);
                f[..6].copy_from_slice(&MAC_R);
                f
            },
            h,
            0,
            TunnelMtuExceeded,
        ),
        (
            "too big without don't-fragment",
            P1,
            big_udp4([10, 0, 0, 60], 1480, false),
            h,
            0,
            FragmentationNeeded,
        ),
    ]
}
