//! Network policies across nodes: this node holds red (net1, vmi-a
//! 10.0.0.10 on VLAN 100) and blue (vmi-f), not green; green's vmi-g
//! (10.8.0.30) lives behind node-b. red's VRF routes to vmi-g through a
//! tunnel (`NextHop::LeakRemote`) once the sender decided the flow; as the
//! receiver, a tunnel packet into red is decided by the link in the
//! direction its flow was opened, found from its source address's route
//! in red's VRF. Outer headers are read back by etherparse.

use core::net::IpAddr;

use etherparse::PacketBuilder;
use trunkline_wire::EthernetAddress;

use super::*;
use crate::process::tests_overlay::{mpls_entry, mpls_from, outer, vxlan_from};
use crate::tables::NextHop;

const GREEN: &str = "ns/green";
const G: [u8; 4] = [10, 8, 0, 30];
const MAC_G: MacAddress = [2, 0, 0, 0, 0, 0x16];
const LABEL_G: u32 = 400;
const GREEN_VNI: u32 = 6001;
/// A node hosting none of red's or green's VMIs.
const NODE_C: [u8; 4] = [192, 168, 100, 3];

/// red <-> blue by ns/ssh (on this node), red <-> green by ns/ssh with
/// `there` (red to green) and `back` (green to red), green's vmi-g behind
/// node-b reached by `encap`, and node-c a peer of neither.
pub(super) fn across(
    encap: Encapsulation,
    there: Vec<NetworkRule>,
    back: Vec<NetworkRule>,
) -> NodeConfig {
    let mut c = config(vec![
        link(RED, BLUE, &[("ns/ssh", ssh())]),
        link(BLUE, RED, &[("ns/ssh", ssh())]),
        link(RED, GREEN, &[("ns/ssh", there)]),
        link(GREEN, RED, &[("ns/ssh", back)]),
    ]);
    c.peers.push(PeerConfig {
        key: "node-c".into(),
        address: IpAddr::from(NODE_C),
        encapsulations: vec![Encapsulation::MplsOverUdp, Encapsulation::Vxlan],
    });
    c.linked_vmis.push(LinkedVmiConfig {
        key: "ns/vmi-g".into(),
        network: GREEN.into(),
        peer: "node-b".into(),
        mac: MAC_G,
        ips: vec![ip("10.8.0.30")],
        label: Some(LABEL_G),
        vni: Some(GREEN_VNI),
        encapsulations: vec![encap],
    });
    c
}

/// Every `#[test]` of this file (all process frames), for the XDP
/// tier's differential test (`super::differential`).
pub(crate) const ACROSS: &[(&str, fn())] = &[
    (
        "the_sender_decides_and_tunnels_to_a_connected_vmi_on_another_node",
        the_sender_decides_and_tunnels_to_a_connected_vmi_on_another_node,
    ),
    (
        "the_receiver_decides_by_the_link_the_flow_was_opened_on",
        the_receiver_decides_by_the_link_the_flow_was_opened_on,
    ),
    (
        "vxlan_carries_a_connected_vmis_packets_to_its_mac",
        vxlan_carries_a_connected_vmis_packets_to_its_mac,
    ),
    (
        "a_tunnel_packet_of_no_connected_source_is_a_counted_drop",
        a_tunnel_packet_of_no_connected_source_is_a_counted_drop,
    ),
    (
        "established_connections_to_another_node_cross_by_their_flows_alone",
        established_connections_to_another_node_cross_by_their_flows_alone,
    ),
];

#[test]
fn the_differential_test_runs_every_test_across_nodes() {
    crate::kernel::differential::check_list(
        include_str!("across.rs"),
        ACROSS,
        &["the_differential_test_runs_every_test_across_nodes"],
    );
}

fn lab(config: &NodeConfig) -> Lab {
    let lab = Lab::new(config);
    lab.tables
        .set_next_hop_mac(IpAddr::from(NODE_B), Some(EthernetAddress(NEXT_HOP_MAC)));
    lab
}

/// The IP packet of a TCP segment from `src` to `dst` (what an MPLS
/// routed label carries), TTL 63.
fn tcp_ip(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, syn: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let step = PacketBuilder::ipv4(src, dst, 63).tcp(sport, dport, 1, 1000);
    let step = if syn { step.syn() } else { step.ack(1) };
    step.write(&mut out, b"").unwrap();
    out
}

/// vmi-g's TCP segment to vmi-a, by node-b, with vmi-a's routed label.
fn from_g(sport: u16, dport: u16, syn: bool) -> Vec<u8> {
    mpls_from(NODE_B, LABEL_A, &tcp_ip(G, A, sport, dport, syn))
}

/// A packet claiming vmi-g's address from node-c, which does not host it.
pub(super) fn forged() -> Vec<u8> {
    mpls_from(NODE_C, LABEL_A, &tcp_ip(G, A, 40000, 22, true))
}

/// Flows decided by rule `index` of ns/ssh (`None`: the default) on the
/// link `from -> to`.
fn count(lab: &Lab, from: &str, to: &str, rule: Option<u16>) -> u64 {
    let link = lab
        .tables
        .network_links()
        .iter()
        .find(|l| l.config.from == from && l.config.to == to)
        .unwrap();
    link.counters
        .snapshot(&link.config)
        .into_iter()
        .find(|c| c.rule.as_ref().map(|(_, i)| *i) == rule)
        .map_or(0, |c| c.count)
}

/// The MPLS label and inner IPv4 packet (TTL, destination, TCP
/// destination port) of a tunnel packet toward node-b.
fn tunnelled(verdict: Verdict, out: &[u8]) -> (u32, u8, [u8; 4], u16) {
    assert!(
        matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
        "{verdict:?}"
    );
    let (src, dst, _, dport, payload) = outer(out);
    assert_eq!((src, dst), (IpAddr::from(UNDERLAY), IpAddr::from(NODE_B)));
    assert_eq!(dport, 6635);
    let inner = etherparse::SlicedPacket::from_ip(&payload[4..]).expect("inner IPv4");
    let Some(etherparse::NetSlice::Ipv4(ip)) = inner.net else {
        panic!("not IPv4")
    };
    let Some(etherparse::TransportSlice::Tcp(tcp)) = inner.transport else {
        panic!("not TCP")
    };
    (
        mpls_entry(&payload).0,
        ip.header().ttl(),
        ip.header().destination(),
        tcp.destination_port(),
    )
}

#[test]
fn the_sender_decides_and_tunnels_to_a_connected_vmi_on_another_node() {
    let lab = lab(&across(Encapsulation::MplsOverUdp, ssh(), Vec::new()));
    assert!(matches!(
        lab.tables.route(RED, ip("10.8.0.30")),
        Some(NextHop::LeakRemote { .. })
    ));
    // TCP 22 red -> green: decided here, then to node-b with vmi-g's label.
    let (verdict, out) = lab.run(&tcp(100, A, G, 40000, 22, true), 0);
    assert_eq!(tunnelled(verdict, &out), (LABEL_G, 63, G, 22));
    assert_eq!(count(&lab, RED, GREEN, Some(0)), 1);
    // vmi-g's reply through node-b hits the flow's reverse entry here.
    assert!(lab.delivered_from(FABRIC, &from_g(22, 40000, false), SEC, 100, MAC_A));
    // TCP 80: denied before any tunnel, counted as a flow and a drop.
    assert_eq!(
        lab.dropped(&tcp(100, A, G, 40001, 80, true), 0),
        DropReason::NetworkPolicyDenied
    );
    assert_eq!(count(&lab, RED, GREEN, None), 1);
    // The rule is one way: vmi-g opening toward vmi-a is refused here (the
    // receiver), by green's link to red, and counted there.
    assert_eq!(
        lab.dropped_from(FABRIC, &from_g(40100, 22, true), SEC),
        DropReason::NetworkPolicyDenied
    );
    assert_eq!(count(&lab, GREEN, RED, None), 1);
    assert_eq!(
        lab.counters
            .snapshot()
            .drops(DropReason::NetworkPolicyDenied),
        2
    );
}

#[test]
fn the_receiver_decides_by_the_link_the_flow_was_opened_on() {
    // Only green -> red on TCP 22.
    let lab = lab(&across(Encapsulation::MplsOverUdp, Vec::new(), ssh()));
    assert!(lab.delivered_from(FABRIC, &from_g(40000, 22, true), 0, 100, MAC_A));
    assert_eq!(count(&lab, GREEN, RED, Some(0)), 1);
    // vmi-a's reply: the entry the receiver installed, back to node-b.
    let (verdict, out) = lab.run(&tcp(100, A, G, 22, 40000, false), SEC);
    assert_eq!(tunnelled(verdict, &out), (LABEL_G, 63, G, 40000));
    assert_eq!(count(&lab, RED, GREEN, None), 0, "a reply is no new flow");
    // vmi-a opening toward vmi-g: red's link has no rule.
    assert_eq!(
        lab.dropped(&tcp(100, A, G, 40001, 22, true), SEC),
        DropReason::NetworkPolicyDenied
    );
    // vmi-g to vmi-a on TCP 80: refused by the receiver.
    assert_eq!(
        lab.dropped_from(FABRIC, &from_g(40002, 80, true), SEC),
        DropReason::NetworkPolicyDenied
    );
    assert_eq!(count(&lab, GREEN, RED, None), 1);
    assert_eq!(count(&lab, RED, GREEN, None), 1);
}

#[test]
fn vxlan_carries_a_connected_vmis_packets_to_its_mac() {
    let lab = lab(&across(Encapsulation::Vxlan, ssh(), ssh()));
    let (verdict, out) = lab.run(&tcp(100, A, G, 40000, 22, true), 0);
    assert!(
        matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
        "{verdict:?}"
    );
    let (_, dst, _, dport, payload) = outer(&out);
    assert_eq!((dst, dport), (IpAddr::from(NODE_B), 4789));
    assert_eq!(
        u32::from_be_bytes([0, payload[4], payload[5], payload[6]]),
        GREEN_VNI
    );
    // Inner Ethernet from the gateway to vmi-g's MAC, untagged.
    assert_eq!(&payload[8..14], &MAC_G);
    assert_eq!(&payload[14..20], &GW);
    // The reply comes back in net1's VNI to vmi-a's MAC.
    let mut inner = Vec::new();
    PacketBuilder::ethernet2(GW, MAC_A)
        .ipv4(G, A, 63)
        .tcp(22, 40000, 1, 1000)
        .ack(1)
        .write(&mut inner, b"")
        .unwrap();
    let reply = vxlan_from(NODE_B, NET1_VNI, &inner);
    assert!(lab.delivered_from(FABRIC, &reply, SEC, 100, MAC_A));
    // A new flow from vmi-g on TCP 80 in VXLAN: refused by the receiver.
    let mut inner = Vec::new();
    PacketBuilder::ethernet2(GW, MAC_A)
        .ipv4(G, A, 63)
        .tcp(40001, 80, 1, 1000)
        .syn()
        .write(&mut inner, b"")
        .unwrap();
    assert_eq!(
        lab.dropped_from(FABRIC, &vxlan_from(NODE_B, NET1_VNI, &inner), SEC),
        DropReason::NetworkPolicyDenied
    );
}

#[test]
fn a_tunnel_packet_of_no_connected_source_is_a_counted_drop() {
    let lab = lab(&across(Encapsulation::MplsOverUdp, ssh(), ssh()));
    // vmi-g's address from node-c, which is not where vmi-g lives.
    assert_eq!(
        lab.dropped_from(FABRIC, &forged(), 0),
        DropReason::NetworkPolicyUnknownSource
    );
    // net1's own address from node-c, which does not host net1.
    let own = mpls_from(NODE_C, LABEL_A, &tcp_ip([10, 0, 0, 60], A, 40000, 22, true));
    assert_eq!(
        lab.dropped_from(FABRIC, &own, 0),
        DropReason::NetworkPolicyUnknownSource
    );
    // blue's vmi-f lives on this node: never behind a tunnel.
    let local = mpls_from(NODE_B, LABEL_A, &tcp_ip(F, A, 40000, 22, true));
    assert_eq!(
        lab.dropped_from(FABRIC, &local, 0),
        DropReason::NetworkPolicyUnknownSource
    );
    assert_eq!(
        lab.counters
            .snapshot()
            .drops(DropReason::NetworkPolicyUnknownSource),
        3
    );
    // No flow was decided for any of them.
    assert_eq!(count(&lab, GREEN, RED, Some(0)), 0);
    assert!(lab.flows.borrow().is_empty());
    // The network's own traffic from a peer hosting it is untouched:
    // vmi-r (node-b) to vmi-a on TCP 80.
    let r = mpls_from(NODE_B, LABEL_A, &tcp_ip([10, 0, 0, 60], A, 40000, 80, true));
    assert!(lab.delivered_from(FABRIC, &r, 0, 100, MAC_A));
}

/// vmi-g's IPv6 address (a host route in red's VRF as well).
const G6: &str = "fd08::30";

/// The IP packet (no layer 2) of `segment` from `src` to `dst`, TTL or
/// hop limit `ttl`.
fn segment_ip(src: IpAddr, dst: IpAddr, ttl: u8, segment: Segment) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2([0; 6], [0; 6]);
    let step = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), ttl),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), ttl),
        _ => unreachable!("one family"),
    };
    let v6 = src.is_ipv6();
    let mut out = segment.frame(step, v6);
    out.split_off(14)
}

/// vmi-a's frame (VLAN 100) to the gateway carrying `ip`.
fn from_a(ip: &[u8]) -> Vec<u8> {
    let ethertype: u16 = if ip[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
    let mut frame = GW.to_vec();
    frame.extend_from_slice(&MAC_A);
    frame.extend_from_slice(&[0x81, 0x00, 0, 100]);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(ip);
    frame
}

/// vmi-g's packet `ip` to vmi-a through node-b: with vmi-a's routed label
/// (MPLS), or in net1's VNI to vmi-a's MAC (VXLAN).
fn from_g_in(encap: Encapsulation, ip: &[u8]) -> Vec<u8> {
    match encap {
        Encapsulation::MplsOverUdp => mpls_from(NODE_B, LABEL_A, ip),
        Encapsulation::Vxlan => {
            let ethertype: u16 = if ip[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
            let mut inner = MAC_A.to_vec();
            inner.extend_from_slice(&GW);
            inner.extend_from_slice(&ethertype.to_be_bytes());
            inner.extend_from_slice(ip);
            vxlan_from(NODE_B, NET1_VNI, &inner)
        }
    }
}

/// Once a connection to vmi-g (on node-b) is open, vmi-a's further
/// packets cross by the connection's flow entries alone and go into the
/// tunnel: TCP, UDP and ICMP echo, IPv4 and IPv6, opened from either side,
/// with vmi-g's label or green's VNI. These are the frames the XDP tier
/// decides itself at the sending node (`EstablishedLinkedRemote`), and so
/// are vmi-g's later packets, tunnel packets into red, at the receiving
/// node (`EstablishedLinkedReceived`).
#[test]
fn established_connections_to_another_node_cross_by_their_flows_alone() {
    for encap in [Encapsulation::MplsOverUdp, Encapsulation::Vxlan] {
        let mut config = across(encap, open(), open());
        config.linked_vmis[0].ips.push(ip(G6));
        let lab = lab(&config);
        let mut now = 0;
        let mut at = || {
            now += SEC;
            now
        };
        for (i, v6) in [false, true].into_iter().enumerate() {
            let (a, g) = if v6 {
                (ip("fd00::a"), ip(G6))
            } else {
                (IpAddr::from(A), IpAddr::from(G))
            };
            assert!(matches!(
                lab.tables.route(RED, g),
                Some(NextHop::LeakRemote { .. })
            ));
            let what = format!("{encap:?}, IPv6 {v6}");
            // Opened by vmi-a (the sender decides) and by vmi-g (this
            // node decided as the receiver).
            for (by_a, i) in [(true, i as u16), (false, i as u16 + 10)] {
                let (port, udp, id) = (40000 + i, 5000 + i, 0x100 + i);
                let to_g = |s| from_a(&segment_ip(a, g, 64, s));
                let to_a = |s| from_g_in(encap, &segment_ip(g, a, 63, s));
                let mut steps: Vec<(bool, Vec<u8>, &str)> = if by_a {
                    vec![
                        (true, to_g(Segment::Syn(port, 22)), "SYN"),
                        (false, to_a(Segment::SynAck(22, port)), "SYN-ACK"),
                        (true, to_g(Segment::Ack(port, 22)), "established"),
                        (false, to_a(Segment::Ack(22, port)), "established back"),
                        (true, to_g(Segment::Ack(port, 22)), "established again"),
                        (
                            false,
                            to_a(Segment::Ack(22, port)),
                            "established back again",
                        ),
                    ]
                } else {
                    vec![
                        (false, to_a(Segment::Syn(port, 22)), "SYN"),
                        (true, to_g(Segment::SynAck(22, port)), "SYN-ACK"),
                        (false, to_a(Segment::Ack(port, 22)), "established"),
                        (true, to_g(Segment::Ack(22, port)), "established back"),
                        (false, to_a(Segment::Ack(port, 22)), "established again"),
                        (true, to_g(Segment::Ack(22, port)), "established back again"),
                    ]
                };
                if by_a {
                    steps.extend([
                        (true, to_g(Segment::Udp(udp, 53)), "UDP"),
                        (false, to_a(Segment::Udp(53, udp)), "UDP answer"),
                        (true, to_g(Segment::Udp(udp, 53)), "UDP again"),
                        (true, to_g(Segment::EchoRequest(id)), "ping"),
                        (false, to_a(Segment::EchoReply(id)), "pong"),
                        (true, to_g(Segment::EchoRequest(id)), "ping again"),
                        (false, to_a(Segment::EchoReply(id)), "pong again"),
                        (false, to_a(Segment::Udp(53, udp)), "UDP answer again"),
                    ]);
                }
                for (sent, frame, step) in steps {
                    if sent {
                        let (verdict, out) = lab.run(&frame, at());
                        assert!(
                            matches!(verdict, Verdict::Transmit { port: FABRIC, .. }),
                            "{what}, opened by vmi-a {by_a}: {step}: {verdict:?}"
                        );
                        let (_, dst, _, dport, _) = outer(&out);
                        assert_eq!(dst, IpAddr::from(NODE_B));
                        let want = match encap {
                            Encapsulation::MplsOverUdp => 6635,
                            Encapsulation::Vxlan => 4789,
                        };
                        assert_eq!(dport, want, "{what}: {step}");
                    } else {
                        assert!(
                            lab.delivered_from(FABRIC, &frame, at(), 100, MAC_A),
                            "{what}, opened by vmi-a {by_a}: {step}"
                        );
                    }
                }
            }
            // TCP 80 has no rule: dropped before any tunnel, later too.
            for (segment, step) in [
                (Segment::Syn(41000 + i as u16, 80), "SYN"),
                (Segment::Ack(41000 + i as u16, 80), "later"),
            ] {
                assert_eq!(
                    lab.dropped(&from_a(&segment_ip(a, g, 64, segment)), at()),
                    DropReason::NetworkPolicyDenied,
                    "{what}: TCP 80 {step}"
                );
            }
        }
    }
}
