//! North-south tests (seed 004): SNAT out and back (TCP, UDP, ICMP echo,
//! ICMP errors), port and table exhaustion, timeouts, generations; IP
//! fabric forwarding both ways; a DC gateway's labelled routes and its
//! MPLS over UDP (and VXLAN with a network's VNI) toward a VMI. Frames are built and checked by etherparse,
//! every checksum recomputed by it.

use core::cell::RefCell;
use core::net::IpAddr;

use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{
    Icmpv4Type, Icmpv6Type, IpNumber, NetHeaders, PacketBuilder, PacketHeaders, TransportHeader,
    VlanId,
};

use super::tests::*;
use super::*;
use crate::config::*;
use crate::flow::{FlowConfig, FlowKey, FlowTable, FlowValue, Timeouts};
use crate::tables::Tables;
use trunkline_wire::EthernetAddress;

pub(crate) mod differential;

const SEC: u64 = 1_000_000_000;
const REMOTE: [u8; 4] = [203, 0, 113, 7];
/// The fabric's router (the default route's next hop) and its MAC.
const ROUTER: [u8; 4] = [192, 168, 100, 254];
const ROUTER_MAC: MacAddress = [2, 0xfa, 0, 0, 0, 0xfe];
const DCGW: [u8; 4] = [192, 168, 100, 200];
const DCGW_LABEL: u32 = 5000;
const MAC_REMOTE_C: MacAddress = [2, 0, 0, 0, 0, 0x2c];

/// The shared fixture, with: net1 leaving by SNAT (its default route to
/// the virtual gateway removed), a DC gateway routing 198.51.100.0/24 for
/// it; net2 leaving by IP fabric forwarding, with a VMI on node-b; the
/// host's fabric routes (its subnet, a default route via a router).
fn config(ports: (u16, u16)) -> NodeConfig {
    let mut c = fixture();
    c.routes.retain(|r| r.prefix.prefix_len() != 0);
    for n in &mut c.networks {
        match n.key.as_str() {
            "ns/net1" => {
                n.fabric_exit = FabricExit::Snat;
                n.routed_peers = vec!["dcgw".into()];
            }
            "ns/net2" => n.fabric_exit = FabricExit::IpFabric,
            _ => {}
        }
    }
    c.peers.push(PeerConfig {
        key: "dcgw".into(),
        address: IpAddr::from(DCGW),
        encapsulations: vec![Encapsulation::MplsOverUdp],
    });
    c.routes.push(RouteConfig {
        network: "ns/net1".into(),
        prefix: "198.51.100.0/24".parse().unwrap(),
        next_hop: NextHopConfig::Tunnel {
            peer: "dcgw".into(),
            label: DCGW_LABEL,
        },
    });
    c.remote_vmis.push(RemoteVmiConfig {
        key: "ns/vmi-rc".into(),
        network: "ns/net2".into(),
        peer: "node-b".into(),
        mac: MAC_REMOTE_C,
        ips: vec![ip("10.0.0.77")],
        label: Some(777),
    });
    c.north_south = NorthSouthConfig {
        snat_ports: ports,
        fabric_routes: vec![
            FabricRouteConfig {
                prefix: "192.168.100.0/24".parse().unwrap(),
                via: None,
            },
            FabricRouteConfig {
                prefix: "0.0.0.0/0".parse().unwrap(),
                via: Some(IpAddr::from(ROUTER)),
            },
        ],
    };
    c
}

/// The IPv6 underlay of [`config_v6`]: this node, its router, a remote
/// host beyond it.
const UNDERLAY6: &str = "2001:db8:100::1";
const ROUTER6: &str = "2001:db8:100::fe";
const REMOTE6: &str = "2001:db8:7::7";

/// [`config`] on an IPv6 underlay: net1 leaves by SNAT to the node's IPv6
/// address (its IPv6 subnet fd00::/64 gets out; its IPv4 ones cannot:
/// no NAT46), the peers on the IPv6 underlay, no DC gateway, net2
/// without an exit; the host's routes: the underlay's /64, a default
/// route via a router.
fn config_v6(ports: (u16, u16)) -> NodeConfig {
    let mut c = config(ports);
    c.underlay.as_mut().unwrap().address = ip(UNDERLAY6);
    c.peers.retain(|p| p.key == "node-b");
    c.peers[0].address = ip("2001:db8:100::2");
    c.routes
        .retain(|r| !matches!(r.next_hop, NextHopConfig::Tunnel { .. }));
    c.remote_vmis
        .retain(|r| r.peer == "node-b" && r.network == "ns/net1");
    for n in &mut c.networks {
        n.peers.retain(|p| p == "node-b");
        n.routed_peers.clear();
        if n.key == "ns/net2" {
            n.fabric_exit = FabricExit::None;
        }
    }
    c.north_south.fabric_routes = vec![
        FabricRouteConfig {
            prefix: "2001:db8:100::/64".parse().unwrap(),
            via: None,
        },
        FabricRouteConfig {
            prefix: "::/0".parse().unwrap(),
            via: Some(ip(ROUTER6)),
        },
    ];
    c
}

struct Ns {
    tables: Tables,
    counters: Counters,
    flows: RefCell<FlowTable>,
}

impl Ns {
    fn new(config: &NodeConfig, flows: FlowConfig) -> Ns {
        let (tables, rejected) = Tables::compile(config);
        assert!(rejected.is_empty(), "unexpected rejections: {rejected:?}");
        tables.set_next_hop_mac(IpAddr::from(NODE_B), Some(EthernetAddress(NEXT_HOP_MAC)));
        tables.set_next_hop_mac(IpAddr::from(DCGW), Some(EthernetAddress(NEXT_HOP_MAC)));
        let ns = Ns {
            tables,
            counters: Counters::new(),
            flows: RefCell::new(FlowTable::new(flows)),
        };
        ns.resolve_router();
        ns
    }

    fn with_ports(ports: (u16, u16)) -> Ns {
        Ns::new(&config(ports), FlowConfig::default())
    }

    /// Play the host thread: the router's MAC is known (the IPv4 or the
    /// IPv6 one, by the underlay's family).
    fn resolve_router(&self) {
        let router = match self.tables.underlay() {
            Some((_, IpAddr::V6(_))) => ip(ROUTER6),
            _ => IpAddr::from(ROUTER),
        };
        let cache = self.tables.fabric_neighbours();
        cache.lookup(router);
        for pending in cache.wanted().collect::<Vec<_>>() {
            if pending.addr == router {
                cache.resolve(pending, Some(ROUTER_MAC));
            }
        }
    }

    fn run(&self, port: PortId, frame: &[u8], now: u64) -> (Verdict, Vec<u8>) {
        let mut buf = vec![0xee; HEADROOM + frame.len() + 64];
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        let before = self.flow_state();
        // What the agent's mirror holds in the kernel's flow map by now:
        // every entry of the table before this frame.
        let mirrored = self.flow_entries();
        let packets_before: u64 = mirrored.iter().map(|(_, v, _)| v.packets).sum();
        let pipeline = Pipeline::new(&self.tables, &self.counters).with_flows(&self.flows, now);
        let verdict = pipeline.process(port, &mut buf, HEADROOM, frame.len());
        let out = match verdict {
            Verdict::Transmit { offset, len, .. } => buf[offset..offset + len].to_vec(),
            _ => Vec::new(),
        };
        // A frame that changed the flow table (a new flow, a TCP state
        // move, a removal) must be handed off: the kernel only reads
        // entries (and their last-seen and counts).
        let moved_a_cell = self.flow_state() != before;
        let touched = self
            .flow_entries()
            .iter()
            .map(|(_, v, _)| v.packets)
            .sum::<u64>()
            != packets_before;
        let established = !moved_a_cell
            && touched
            && matches!(verdict, Verdict::Transmit { .. })
            && established_kind(frame);
        crate::kernel::differential::record_with_flows(
            &self.tables,
            port,
            frame,
            HEADROOM,
            verdict,
            &out,
            moved_a_cell,
            crate::kernel::differential::Flows {
                entries: &mirrored,
                now,
                established,
            },
        );
        (verdict, out)
    }

    /// The flow table's entries (both directions of every flow), with
    /// their flows' idle timeouts.
    fn flow_entries(&self) -> Vec<(FlowKey, FlowValue, core::time::Duration)> {
        let flows = self.flows.borrow();
        flows
            .flows()
            .flat_map(|(id, _, _)| [id, id.other()])
            .map(|id| (*flows.key(id), *flows.value(id), flows.idle_timeout(id)))
            .collect()
    }

    /// What the flow table decides with, to see whether a frame changed
    /// it (last-seen times and counts aside: the kernel updates those).
    fn flow_state(&self) -> String {
        let flows = self.flows.borrow();
        format!(
            "{:?} {:?}",
            self.flow_entries()
                .iter()
                .map(|(k, v, _)| (
                    k,
                    v.action,
                    v.tcp,
                    v.generation,
                    v.nat_vrf,
                    v.nat_addr,
                    v.nat_port
                ))
                .collect::<Vec<_>>(),
            flows.stats().snapshot()
        )
    }

    fn out_of(&self, port: PortId, frame: &[u8], now: u64, egress: PortId) -> Vec<u8> {
        match self.run(port, frame, now) {
            (Verdict::Transmit { port, .. }, out) if port == egress => out,
            (other, _) => panic!("expected a transmit on {egress}, got {other:?}"),
        }
    }

    fn dropped(&self, port: PortId, frame: &[u8], now: u64) -> DropReason {
        match self.run(port, frame, now).0 {
            Verdict::Drop(reason) => reason,
            other => panic!("expected a drop, got {other:?}"),
        }
    }
}

/// Whether the frame is of a kind the kernel's flow stage translates once
/// its flow is established: IPv4 or IPv6 (without extension headers) TCP
/// without SYN, FIN or RST, UDP, ICMP or ICMPv6 echo.
pub(super) fn established_kind(frame: &[u8]) -> bool {
    let Ok(h) = PacketHeaders::from_ethernet_slice(frame) else {
        return false;
    };
    match &h.net {
        Some(NetHeaders::Ipv4(..)) => {}
        Some(NetHeaders::Ipv6(_, ext)) if ext.is_empty() => {}
        _ => return false,
    }
    match h.transport {
        Some(TransportHeader::Tcp(t)) => !(t.syn || t.fin || t.rst),
        Some(TransportHeader::Udp(_)) => true,
        Some(TransportHeader::Icmpv4(i)) => matches!(
            i.icmp_type,
            Icmpv4Type::EchoRequest(_) | Icmpv4Type::EchoReply(_)
        ),
        Some(TransportHeader::Icmpv6(i)) => matches!(
            i.icmp_type,
            Icmpv6Type::EchoRequest(_) | Icmpv6Type::EchoReply(_)
        ),
        _ => false,
    }
}

fn tcp_syn(mac: MacAddress, vlan: u16, src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac, GW)
        .single_vlan(VlanId::try_new(vlan).unwrap())
        .ipv4(src, REMOTE, 64)
        .tcp(sport, 80, 1, 1000)
        .syn()
        .write(&mut out, b"")
        .unwrap();
    out
}

fn udp_from(mac: MacAddress, vlan: u16, src: [u8; 4], dst: [u8; 4], sport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac, GW)
        .single_vlan(VlanId::try_new(vlan).unwrap())
        .ipv4(src, dst, 64)
        .udp(sport, 53)
        .write(&mut out, b"query")
        .unwrap();
    out
}

/// A frame on the fabric from the remote host to the underlay address.
fn from_remote(dst: [u8; 4]) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(ROUTER_MAC, FABRIC_MAC).ipv4(REMOTE, dst, 60)
}

/// Every checksum of the frame, recomputed by etherparse.
fn assert_checksums(frame: &[u8]) {
    let h = PacketHeaders::from_ethernet_slice(frame).unwrap();
    let payload = h.payload.slice();
    match (h.net.as_ref(), h.transport.as_ref()) {
        (Some(NetHeaders::Ipv4(ip, _)), Some(t)) => {
            assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "IPv4 header");
            let mut fixed = t.clone();
            fixed.update_checksum_ipv4(ip, payload).unwrap();
            assert_eq!(&fixed, t, "transport checksum");
        }
        other => panic!("not IPv4 with a transport: {other:?}"),
    }
}

struct Seen {
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    sport: u16,
    dport: u16,
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    vlan: Option<u16>,
}

fn seen(frame: &[u8]) -> Seen {
    assert_checksums(frame);
    let h = PacketHeaders::from_ethernet_slice(frame).unwrap();
    let Some(etherparse::LinkHeader::Ethernet2(eth)) = h.link else {
        panic!("no Ethernet")
    };
    let vlan = h.link_exts.first().and_then(|e| match e {
        etherparse::LinkExtHeader::Vlan(v) => Some(v.vlan_id.value()),
        _ => None,
    });
    let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
        panic!("not IPv4")
    };
    let (sport, dport) = match h.transport {
        Some(TransportHeader::Tcp(t)) => (t.source_port, t.destination_port),
        Some(TransportHeader::Udp(u)) => (u.source_port, u.destination_port),
        Some(TransportHeader::Icmpv4(i)) => match i.icmp_type {
            Icmpv4Type::EchoRequest(e) | Icmpv4Type::EchoReply(e) => (e.id, 0),
            _ => (0, 0),
        },
        _ => (0, 0),
    };
    Seen {
        src: ip.source,
        dst: ip.destination,
        ttl: ip.time_to_live,
        sport,
        dport,
        eth_src: eth.source,
        eth_dst: eth.destination,
        vlan,
    }
}

#[test]
fn snat_translates_tcp_out_and_its_replies_back() {
    let ns = Ns::with_ports((61000, 65535));
    let syn = tcp_syn(MAC_A, 100, [10, 0, 0, 10], 40000);
    let out = seen(&ns.out_of(P1, &syn, 0, FABRIC));
    assert_eq!((out.src, out.dst, out.ttl), (UNDERLAY, REMOTE, 63));
    assert!((61000..=65535).contains(&out.sport), "port {}", out.sport);
    assert_eq!(out.dport, 80);
    assert_eq!((out.eth_src, out.eth_dst), (FABRIC_MAC, ROUTER_MAC));
    assert_eq!(out.vlan, None);
    // The same flow keeps its port.
    let again = seen(&ns.out_of(P1, &syn, SEC, FABRIC));
    assert_eq!(again.sport, out.sport);
    assert_eq!(ns.flows.borrow().len(), 1);

    let mut reply = Vec::new();
    from_remote(UNDERLAY)
        .tcp(80, out.sport, 9, 1000)
        .syn()
        .ack(2)
        .write(&mut reply, b"")
        .unwrap();
    let back = seen(&ns.out_of(FABRIC, &reply, 2 * SEC, P1));
    assert_eq!((back.src, back.dst, back.ttl), (REMOTE, [10, 0, 0, 10], 59));
    assert_eq!((back.sport, back.dport), (80, 40000));
    assert_eq!(
        (back.eth_src, back.eth_dst, back.vlan),
        (GW, MAC_A, Some(100))
    );
    let flows = ns.flows.borrow();
    let (_, _, value) = flows.flows().next().unwrap();
    assert_eq!(value.packets, 2);
}

#[test]
fn two_instances_with_the_same_source_port_get_different_ports() {
    let ns = Ns::with_ports((61000, 65535));
    let a = seen(&ns.out_of(P1, &tcp_syn(MAC_A, 100, [10, 0, 0, 10], 61500), 0, FABRIC));
    let b = seen(&ns.out_of(P1, &tcp_syn(MAC_B, 200, [10, 0, 1, 20], 61500), 0, FABRIC));
    assert_eq!(a.sport, 61500, "an in-range port is kept when free");
    assert_ne!(a.sport, b.sport);
    for (port, vlan, dst) in [
        (a.sport, 100, [10, 0, 0, 10]),
        (b.sport, 200, [10, 0, 1, 20]),
    ] {
        let mut reply = Vec::new();
        from_remote(UNDERLAY)
            .tcp(80, port, 9, 1000)
            .ack(2)
            .write(&mut reply, b"data")
            .unwrap();
        let back = seen(&ns.out_of(FABRIC, &reply, SEC, P1));
        assert_eq!((back.dst, back.dport, back.vlan), (dst, 61500, Some(vlan)));
    }
}

#[test]
fn udp_and_icmp_echo_are_translated_both_ways() {
    let ns = Ns::with_ports((61000, 65535));
    let out = seen(&ns.out_of(
        P1,
        &udp_from(MAC_A, 100, [10, 0, 0, 10], REMOTE, 5353),
        0,
        FABRIC,
    ));
    assert_eq!(out.src, UNDERLAY);
    let mut reply = Vec::new();
    from_remote(UNDERLAY)
        .udp(53, out.sport)
        .write(&mut reply, b"answer")
        .unwrap();
    let back = seen(&ns.out_of(FABRIC, &reply, SEC, P1));
    assert_eq!((back.dst, back.dport), ([10, 0, 0, 10], 5353));

    let ping = ping4(MAC_A, Some(100), [10, 0, 0, 10], REMOTE);
    let out = seen(&ns.out_of(P1, &ping, 0, FABRIC));
    assert_eq!(out.src, UNDERLAY);
    assert!(
        (61000..=65535).contains(&out.sport),
        "identifier {}",
        out.sport
    );
    let mut pong = Vec::new();
    from_remote(UNDERLAY)
        .icmpv4_echo_reply(out.sport, 7)
        .write(&mut pong, b"abcdefgh")
        .unwrap();
    let back = seen(&ns.out_of(FABRIC, &pong, SEC, P1));
    assert_eq!((back.dst, back.sport), ([10, 0, 0, 10], 0x1234));
}

/// The frames after a flow's first packet, both ways: what the XDP tier's
/// flow stage translates itself once the agent mirrors the flow (the
/// differential test replays them against the kernel).
#[test]
fn established_flows_carry_data_both_ways_with_every_checksum_right() {
    let ns = Ns::with_ports((61000, 65535));
    // TCP: the handshake decides the flow and its state in userspace ...
    let syn = tcp_syn(MAC_B, 200, [10, 0, 1, 20], 40001);
    let port = seen(&ns.out_of(P1, &syn, 0, FABRIC)).sport;
    let mut syn_ack = Vec::new();
    from_remote(UNDERLAY)
        .tcp(80, port, 9, 1000)
        .syn()
        .ack(2)
        .write(&mut syn_ack, b"")
        .unwrap();
    ns.out_of(FABRIC, &syn_ack, SEC, P1);
    // ... then data both ways is the established flow's.
    for (i, payload) in [&b"GET / HTTP/1.1\r\n"[..], b"x", b""]
        .into_iter()
        .enumerate()
    {
        let t = (2 + i as u64) * SEC;
        let mut data = Vec::new();
        PacketBuilder::ethernet2(MAC_B, GW)
            .single_vlan(VlanId::try_new(200).unwrap())
            .ipv4([10, 0, 1, 20], REMOTE, 64)
            .tcp(40001, 80, 2 + i as u32, 1000)
            .ack(10)
            .write(&mut data, payload)
            .unwrap();
        let out = seen(&ns.out_of(P1, &data, t, FABRIC));
        assert_eq!((out.src, out.sport, out.ttl), (UNDERLAY, port, 63));
        let mut answer = Vec::new();
        from_remote(UNDERLAY)
            .tcp(80, port, 10, 1000)
            .ack(3 + i as u32)
            .write(&mut answer, payload)
            .unwrap();
        let back = seen(&ns.out_of(FABRIC, &answer, t, P1));
        assert_eq!(
            (back.dst, back.dport, back.vlan, back.ttl),
            ([10, 0, 1, 20], 40001, Some(200), 59)
        );
    }
    // UDP, with a checksum and without one (zero: none, over IPv4).
    let query = udp_from(MAC_A, 100, [10, 0, 0, 10], REMOTE, 5300);
    let port = seen(&ns.out_of(P1, &query, 0, FABRIC)).sport;
    for t in 1..3 {
        let out = seen(&ns.out_of(P1, &query, t * SEC, FABRIC));
        assert_eq!(out.sport, port);
        let mut reply = Vec::new();
        from_remote(UNDERLAY)
            .udp(53, port)
            .write(&mut reply, b"answer")
            .unwrap();
        let back = seen(&ns.out_of(FABRIC, &reply, t * SEC, P1));
        assert_eq!((back.dst, back.dport), ([10, 0, 0, 10], 5300));
    }
    let mut bare = query.clone();
    let udp_sum = 18 + 20 + 6;
    bare[udp_sum..udp_sum + 2].copy_from_slice(&[0, 0]);
    let out = ns.out_of(P1, &bare, 4 * SEC, FABRIC);
    assert_eq!(
        &out[14 + 20 + 6..14 + 20 + 8],
        &[0, 0],
        "no checksum stays none"
    );
    let mut reply = Vec::new();
    from_remote(UNDERLAY)
        .udp(53, port)
        .write(&mut reply, b"answer")
        .unwrap();
    reply[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
    let back = ns.out_of(FABRIC, &reply, 4 * SEC, P1);
    assert_eq!(&back[18 + 20 + 6..18 + 20 + 8], &[0, 0]);
    // ICMP echo: the identifier is the port.
    let ping = ping4(MAC_A, Some(100), [10, 0, 0, 10], REMOTE);
    let ident = seen(&ns.out_of(P1, &ping, 0, FABRIC)).sport;
    for t in 1..3 {
        assert_eq!(seen(&ns.out_of(P1, &ping, t * SEC, FABRIC)).sport, ident);
        let mut pong = Vec::new();
        from_remote(UNDERLAY)
            .icmpv4_echo_reply(ident, 7 + t as u16)
            .write(&mut pong, b"abcdefgh")
            .unwrap();
        let back = seen(&ns.out_of(FABRIC, &pong, t * SEC, P1));
        assert_eq!((back.dst, back.sport), ([10, 0, 0, 10], 0x1234));
    }
}

/// An IPv6 frame as seen, every checksum checked by etherparse.
struct Seen6 {
    src: IpAddr,
    dst: IpAddr,
    hop_limit: u8,
    /// Ports; ICMPv6 echo: the identifier in `sport`.
    sport: u16,
    dport: u16,
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    vlan: Option<u16>,
}

fn seen6(frame: &[u8]) -> Seen6 {
    let h = PacketHeaders::from_ethernet_slice(frame).unwrap();
    let Some(etherparse::LinkHeader::Ethernet2(eth)) = &h.link else {
        panic!("no Ethernet")
    };
    let vlan = h.link_exts.first().and_then(|e| match e {
        etherparse::LinkExtHeader::Vlan(v) => Some(v.vlan_id.value()),
        _ => None,
    });
    let Some(NetHeaders::Ipv6(ip, _)) = &h.net else {
        panic!("not IPv6")
    };
    let payload = h.payload.slice();
    let t = h.transport.clone().expect("a transport");
    let mut fixed = t.clone();
    fixed.update_checksum_ipv6(ip, payload).unwrap();
    assert_eq!(fixed, t, "transport checksum (with the pseudo-header)");
    let (sport, dport) = match t {
        TransportHeader::Tcp(t) => (t.source_port, t.destination_port),
        TransportHeader::Udp(u) => (u.source_port, u.destination_port),
        TransportHeader::Icmpv6(i) => match i.icmp_type {
            Icmpv6Type::EchoRequest(e) | Icmpv6Type::EchoReply(e) => (e.id, 0),
            _ => (0, 0),
        },
        _ => (0, 0),
    };
    Seen6 {
        src: IpAddr::from(ip.source),
        dst: IpAddr::from(ip.destination),
        hop_limit: ip.hop_limit,
        sport,
        dport,
        eth_src: eth.source,
        eth_dst: eth.destination,
        vlan,
    }
}

/// A frame on the fabric from the IPv6 remote host to `dst`.
fn from_remote6(dst: &str) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(ROUTER_MAC, FABRIC_MAC).ipv6(
        v6(REMOTE6).octets(),
        v6(dst).octets(),
        60,
    )
}

/// IPv6 out by SNAT over an IPv6 underlay: TCP (its handshake decided in
/// userspace, then data both ways), UDP (with a zero checksum too: never
/// optional over IPv6, so translated like any other) and ICMPv6 echo, the
/// source becoming the node's IPv6 address and a port of the range, the
/// hop limit one less, every checksum (pseudo-header included) right; the
/// replies back to the instance. The frames after each flow's first are
/// the established ones the XDP tier translates itself (the differential
/// test replays them, class `EstablishedSnat6`).
#[test]
fn ipv6_over_an_ipv6_underlay_is_translated_both_ways() {
    let ns = Ns::new(&config_v6((61000, 65535)), FlowConfig::default());
    let me = ip(UNDERLAY6);
    let (inst, remote) = (ip("fd00::b"), ip(REMOTE6));
    // TCP: the handshake ...
    let tcp = |flags: &str, seq: u32, payload: &[u8]| {
        let step = ipv6_step(MAC_B, GW, Some(200), v6("fd00::b"), v6(REMOTE6), 64)
            .tcp(40003, 443, seq, 1000);
        let step = if flags == "syn" {
            step.syn()
        } else {
            step.ack(10)
        };
        let mut out = Vec::new();
        step.write(&mut out, payload).unwrap();
        out
    };
    let out = seen6(&ns.out_of(P1, &tcp("syn", 1, b""), 0, FABRIC));
    assert_eq!((out.src, out.dst, out.hop_limit), (me, remote, 63));
    assert_eq!(
        (out.eth_src, out.eth_dst, out.vlan),
        (FABRIC_MAC, ROUTER_MAC, None)
    );
    assert!((61000..=65535).contains(&out.sport), "port {}", out.sport);
    let port = out.sport;
    let mut syn_ack = Vec::new();
    from_remote6(UNDERLAY6)
        .tcp(443, port, 9, 1000)
        .syn()
        .ack(2)
        .write(&mut syn_ack, b"")
        .unwrap();
    let back = seen6(&ns.out_of(FABRIC, &syn_ack, SEC, P1));
    assert_eq!((back.src, back.dst, back.hop_limit), (remote, inst, 59));
    // ... then data both ways.
    for (i, payload) in [&b"GET / HTTP/1.1\r\n"[..], b"x", b""]
        .into_iter()
        .enumerate()
    {
        let t = (2 + i as u64) * SEC;
        let out = seen6(&ns.out_of(P1, &tcp("ack", 2 + i as u32, payload), t, FABRIC));
        assert_eq!(
            (out.src, out.sport, out.dport, out.hop_limit),
            (me, port, 443, 63)
        );
        let mut answer = Vec::new();
        from_remote6(UNDERLAY6)
            .tcp(443, port, 10, 1000)
            .ack(3 + i as u32)
            .write(&mut answer, payload)
            .unwrap();
        let back = seen6(&ns.out_of(FABRIC, &answer, t, P1));
        assert_eq!(
            (back.dst, back.dport, back.vlan, back.hop_limit),
            (inst, 40003, Some(200), 59)
        );
        assert_eq!((back.eth_src, back.eth_dst), (GW, MAC_B));
    }
    // UDP, from vmi-a.
    let mut query = Vec::new();
    ipv6_step(MAC_A, GW, Some(100), v6("fd00::a"), v6(REMOTE6), 64)
        .udp(5300, 53)
        .write(&mut query, b"query")
        .unwrap();
    let port = seen6(&ns.out_of(P1, &query, 0, FABRIC)).sport;
    for t in 1..4 {
        let mut frame = query.clone();
        if t == 3 {
            // A zero checksum: not "none" over IPv6; translated as it is.
            let at = 18 + 40 + 6;
            frame[at..at + 2].copy_from_slice(&[0, 0]);
            let out = ns.out_of(P1, &frame, t * SEC, FABRIC);
            assert_ne!(&out[14 + 40 + 6..14 + 40 + 8], &[0, 0]);
        } else {
            let out = seen6(&ns.out_of(P1, &frame, t * SEC, FABRIC));
            assert_eq!((out.src, out.sport), (me, port));
        }
        let mut reply = Vec::new();
        from_remote6(UNDERLAY6)
            .udp(53, port)
            .write(&mut reply, b"answer")
            .unwrap();
        let back = seen6(&ns.out_of(FABRIC, &reply, t * SEC, P1));
        assert_eq!(
            (back.dst, back.dport, back.vlan),
            (ip("fd00::a"), 5300, Some(100))
        );
    }
    // ICMPv6 echo: the identifier is the port.
    let ping = ping6(MAC_A, Some(100), "fd00::a", REMOTE6);
    let ident = seen6(&ns.out_of(P1, &ping, 0, FABRIC)).sport;
    assert!((61000..=65535).contains(&ident), "identifier {ident}");
    for t in 1..3 {
        let out = seen6(&ns.out_of(P1, &ping, t * SEC, FABRIC));
        assert_eq!((out.src, out.sport), (me, ident));
        let mut pong = Vec::new();
        from_remote6(UNDERLAY6)
            .icmpv6_echo_reply(ident, 7 + t as u16)
            .write(&mut pong, b"abcdefgh")
            .unwrap();
        let back = seen6(&ns.out_of(FABRIC, &pong, t * SEC, P1));
        assert_eq!((back.dst, back.sport), (ip("fd00::a"), 0x1234));
    }
    // Odd frames of the established flows: hop limit 1 either way (time
    // exceeded, the gateway's answer), a fragment header (an extension
    // header: not translated). The pipeline decides them; the kernel
    // must hand them off.
    let mut last_hop = ping.clone();
    last_hop[18 + 7] = 1;
    assert!(!matches!(
        ns.run(P1, &last_hop, 3 * SEC).0,
        Verdict::Transmit { port: FABRIC, .. }
    ));
    let mut pong = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, FABRIC_MAC)
        .ipv6(v6(REMOTE6).octets(), v6(UNDERLAY6).octets(), 1)
        .icmpv6_echo_reply(ident, 9)
        .write(&mut pong, b"abcdefgh")
        .unwrap();
    assert!(!matches!(
        ns.run(FABRIC, &pong, 3 * SEC).0,
        Verdict::Transmit { port: P1, .. }
    ));
    let mut fragment = query.clone();
    // Next header 44 (fragment), then the 8-byte fragment header (first
    // fragment, no more) in front of the UDP datagram.
    let l3 = 18;
    fragment[l3 + 6] = 44;
    let plen = u16::from_be_bytes([fragment[l3 + 4], fragment[l3 + 5]]) + 8;
    fragment[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
    fragment.splice(l3 + 40..l3 + 40, [17, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(
        ns.dropped(P1, &fragment, 3 * SEC),
        DropReason::SnatUnsupported
    );
    // IPv4 from the same network has no way out (no NAT46).
    let v4 = udp_from(MAC_A, 100, [10, 0, 0, 10], REMOTE, 5301);
    assert_eq!(ns.dropped(P1, &v4, 0), DropReason::SnatOtherFamily);
    assert_eq!(ns.flows.borrow().len(), 3);
}

/// Recomputes the IPv4 header checksum of the header at `l3`.
fn fix_ip_checksum(frame: &mut [u8], l3: usize) {
    let ihl = usize::from(frame[l3] & 0x0f) * 4;
    frame[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
    let sum = !trunkline_wire::checksum::data(&frame[l3..l3 + ihl]);
    frame[l3 + 10..l3 + 12].copy_from_slice(&sum.to_be_bytes());
}

/// Odd frames of established flows, both ways: padded, TTL 1, fragments,
/// a bad header checksum, TCP FIN and RST, a wrong UDP length, another
/// port. The pipeline decides each (some change the flow table, some are
/// drops); the differential test replays them with the flow map mirrored,
/// where the kernel must decide alike or hand off.
#[test]
fn odd_frames_of_established_flows_are_decided_by_their_rules() {
    let ns = Ns::with_ports((61000, 65535));
    let syn = tcp_syn(MAC_A, 100, [10, 0, 0, 10], 40002);
    let port = seen(&ns.out_of(P1, &syn, 0, FABRIC)).sport;
    let mut syn_ack = Vec::new();
    from_remote(UNDERLAY)
        .tcp(80, port, 9, 1000)
        .syn()
        .ack(2)
        .write(&mut syn_ack, b"")
        .unwrap();
    ns.out_of(FABRIC, &syn_ack, SEC, P1);
    let mut out_data = Vec::new();
    PacketBuilder::ethernet2(MAC_A, GW)
        .single_vlan(VlanId::try_new(100).unwrap())
        .ipv4([10, 0, 0, 10], REMOTE, 64)
        .tcp(40002, 80, 2, 1000)
        .ack(10)
        .write(&mut out_data, b"data")
        .unwrap();
    let mut in_data = Vec::new();
    from_remote(UNDERLAY)
        .tcp(80, port, 10, 1000)
        .ack(6)
        .write(&mut in_data, b"answer")
        .unwrap();
    let udp_out = udp_from(MAC_A, 100, [10, 0, 0, 10], REMOTE, 5400);
    let udp_port = seen(&ns.out_of(P1, &udp_out, 0, FABRIC)).sport;
    let mut udp_in = Vec::new();
    from_remote(UNDERLAY)
        .udp(53, udp_port)
        .write(&mut udp_in, b"answer")
        .unwrap();
    type Odd = fn(&mut Vec<u8>, usize);
    let odd: [(&str, Odd); 8] = [
        ("padded", |f, _| f.extend_from_slice(&[0; 10])),
        ("TTL 1", |f, l3| {
            f[l3 + 8] = 1;
            fix_ip_checksum(f, l3);
        }),
        ("a first fragment", |f, l3| {
            f[l3 + 6] = 0x20;
            fix_ip_checksum(f, l3);
        }),
        ("a later fragment", |f, l3| {
            f[l3 + 7] = 0x10;
            fix_ip_checksum(f, l3);
        }),
        ("a bad header checksum", |f, l3| f[l3 + 10] ^= 0x5a),
        ("FIN or a wrong UDP length", |f, l3| {
            let l4 = l3 + 20;
            if f[l3 + 9] == 6 {
                f[l4 + 13] |= 0x01;
            } else {
                f[l4 + 5] = f[l4 + 5].wrapping_add(40);
            }
        }),
        ("RST or a UDP length under 8", |f, l3| {
            let l4 = l3 + 20;
            if f[l3 + 9] == 6 {
                f[l4 + 13] |= 0x04;
            } else {
                f[l4 + 4..l4 + 6].copy_from_slice(&[0, 4]);
            }
        }),
        ("another port", |f, l3| {
            // The destination port: out, to another service (a new flow);
            // back, to a port without a flow (a drop).
            let l4 = l3 + 20;
            f[l4 + 3] ^= 0x01;
        }),
    ];
    for (i, (_, alter)) in odd.into_iter().enumerate() {
        let t = (2 + i as u64) * SEC;
        for (frame, port, l3) in [
            (&out_data, P1, 18),
            (&in_data, FABRIC, 14),
            (&udp_out, P1, 18),
            (&udp_in, FABRIC, 14),
        ] {
            let mut f = frame.clone();
            alter(&mut f, l3);
            // Whatever the pipeline decides (a drop, an ICMP error, a new
            // flow, the host's), the kernel must decide alike or hand off.
            ns.run(port, &f, t);
        }
        // The flows are still established for the next oddity.
        ns.out_of(P1, &out_data, t, FABRIC);
        ns.out_of(FABRIC, &in_data, t, P1);
        ns.out_of(P1, &udp_out, t, FABRIC);
        ns.out_of(FABRIC, &udp_in, t, P1);
    }
}

#[test]
fn an_icmp_error_about_a_flow_is_translated_back_to_the_instance() {
    let ns = Ns::with_ports((61000, 65535));
    let out_frame = ns.out_of(
        P1,
        &udp_from(MAC_A, 100, [10, 0, 0, 10], REMOTE, 5353),
        0,
        FABRIC,
    );
    let out = seen(&out_frame);
    // The remote host quotes what it got: IP header + 8 bytes.
    let quoted = &out_frame[14..14 + 28];
    let mut error = Vec::new();
    from_remote(UNDERLAY)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::Port,
        ))
        .write(&mut error, quoted)
        .unwrap();
    let back = ns.out_of(FABRIC, &error, SEC, P1);
    let b = seen(&back);
    assert_eq!((b.src, b.dst, b.vlan), (REMOTE, [10, 0, 0, 10], Some(100)));
    // The quoted packet is the instance's own again, checksums and all.
    let inner = &back[18 + 20 + 8..];
    // Truncated (IP header + 8 bytes): read the headers alone.
    let ip = etherparse::Ipv4HeaderSlice::from_slice(inner)
        .unwrap()
        .to_header();
    assert_eq!((ip.source, ip.destination), ([10, 0, 0, 10], REMOTE));
    assert_eq!(ip.header_checksum, ip.calc_header_checksum());
    let udp = etherparse::UdpHeaderSlice::from_slice(&inner[20..28])
        .unwrap()
        .to_header();
    assert_eq!((udp.source_port, udp.destination_port), (5353, 53));
    let original = udp_from(MAC_A, 100, [10, 0, 0, 10], REMOTE, 5353);
    let original_udp = &original[18 + 20..18 + 28];
    assert_eq!(
        &inner[20..28],
        original_udp,
        "the quoted UDP header, checksum included"
    );
    assert_ne!(out.sport, 5353);
    // An error quoting a port of the range with no flow is dropped.
    let mut bogus = quoted.to_vec();
    bogus[20..22].copy_from_slice(&64000u16.to_be_bytes());
    let mut error = Vec::new();
    from_remote(UNDERLAY)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::Port,
        ))
        .write(&mut error, &bogus)
        .unwrap();
    assert_eq!(ns.dropped(FABRIC, &error, SEC), DropReason::SnatNoFlow);
}

#[test]
fn exhausted_ports_and_a_full_table_are_named_drops() {
    let ns = Ns::with_ports((61000, 61001));
    let to = |sport, dst| udp_from(MAC_A, 100, [10, 0, 0, 10], dst, sport);
    ns.out_of(P1, &to(1, REMOTE), 0, FABRIC);
    ns.out_of(P1, &to(2, REMOTE), 0, FABRIC);
    assert_eq!(
        ns.dropped(P1, &to(3, REMOTE), 0),
        DropReason::SnatPortsExhausted
    );
    // Ports are per destination: another one still has both.
    ns.out_of(P1, &to(3, [203, 0, 113, 8]), 0, FABRIC);
    let stats = ns.flows.borrow().stats().snapshot();
    assert_eq!((stats.ports_exhausted, stats.active), (1, 3));
    assert_eq!(ns.counters.drops(DropReason::SnatPortsExhausted), 1);

    let small = Ns::new(
        &config((61000, 65535)),
        FlowConfig {
            capacity: 1,
            ..Default::default()
        },
    );
    small.out_of(P1, &to(1, REMOTE), 0, FABRIC);
    assert_eq!(
        small.dropped(P1, &to(2, REMOTE), 0),
        DropReason::FlowTableFull
    );
}

#[test]
fn idle_flows_time_out_and_unsolicited_packets_are_dropped() {
    let ns = Ns::new(
        &config((61000, 65535)),
        FlowConfig {
            capacity: 16,
            timeouts: Timeouts {
                udp: core::time::Duration::from_secs(5),
                ..Default::default()
            },
        },
    );
    let out = seen(&ns.out_of(
        P1,
        &udp_from(MAC_A, 100, [10, 0, 0, 10], REMOTE, 5353),
        0,
        FABRIC,
    ));
    let mut reply = Vec::new();
    from_remote(UNDERLAY)
        .udp(53, out.sport)
        .write(&mut reply, b"late")
        .unwrap();
    ns.out_of(FABRIC, &reply, 4 * SEC, P1);
    assert_eq!(ns.dropped(FABRIC, &reply, 10 * SEC), DropReason::SnatNoFlow);
    assert!(ns.flows.borrow().is_empty(), "the stale flow is gone");
    // Unsolicited to another port of the range.
    let mut stranger = Vec::new();
    from_remote(UNDERLAY)
        .tcp(80, 62000, 1, 1000)
        .syn()
        .write(&mut stranger, b"")
        .unwrap();
    assert_eq!(ns.dropped(FABRIC, &stranger, 0), DropReason::SnatNoFlow);
    // The host's own traffic (SSH to the node) is the host's.
    let mut ssh = Vec::new();
    from_remote(UNDERLAY)
        .tcp(50000, 22, 1, 1000)
        .syn()
        .write(&mut ssh, b"")
        .unwrap();
    assert_eq!(ns.run(FABRIC, &ssh, 0).0, Verdict::Pass);
}

#[test]
fn a_changed_port_range_makes_existing_flows_stale() {
    let ns = Ns::with_ports((61000, 65535));
    let syn = tcp_syn(MAC_A, 100, [10, 0, 0, 10], 40000);
    let out = seen(&ns.out_of(P1, &syn, 0, FABRIC));
    let (tables, rejected) = Tables::recompile(&config((62000, 62999)), &ns.tables);
    assert!(rejected.is_empty());
    let ns = Ns {
        tables,
        counters: Counters::new(),
        flows: ns.flows,
    };
    let mut reply = Vec::new();
    from_remote(UNDERLAY)
        .tcp(80, out.sport, 9, 1000)
        .ack(2)
        .write(&mut reply, b"")
        .unwrap();
    if (62000..=62999).contains(&out.sport) {
        assert_eq!(ns.dropped(FABRIC, &reply, SEC), DropReason::SnatNoFlow);
    }
    // The instance's next packet is decided again, in the new range.
    let again = seen(&ns.out_of(P1, &syn, SEC, FABRIC));
    assert!((62000..=62999).contains(&again.sport));
    assert_eq!(ns.flows.borrow().len(), 1);
}

#[test]
fn leaving_the_overlay_needs_an_unknown_next_hop_resolved_and_a_flow_table() {
    let ns = Ns::with_ports((61000, 65535));
    // A host of the fabric's own subnet: its own next hop, not resolved yet.
    let near = udp_from(MAC_A, 100, [10, 0, 0, 10], [192, 168, 100, 9], 1);
    assert_eq!(ns.dropped(P1, &near, 0), DropReason::FabricUnresolved);
    assert!(
        ns.flows.borrow().is_empty(),
        "no state for a packet that did not leave"
    );
    let cache = ns.tables.fabric_neighbours();
    let pending = cache
        .wanted()
        .find(|p| p.addr == ip("192.168.100.9"))
        .unwrap();
    cache.resolve(pending, Some([2, 0, 0, 0, 0, 9]));
    let out = seen(&ns.out_of(P1, &near, 0, FABRIC));
    assert_eq!(out.eth_dst, [2, 0, 0, 0, 0, 9]);
    // Inside the network's subnets nothing leaves.
    let inside = udp_from(MAC_A, 100, [10, 0, 0, 10], [10, 0, 0, 99], 1);
    assert_eq!(ns.dropped(P1, &inside, 0), DropReason::NoRoute);
    // Without a flow table (a caller that keeps none), a named drop.
    let plain = process(
        &ns.tables,
        P1,
        &mut [vec![0; HEADROOM], tcp_syn(MAC_A, 100, [10, 0, 0, 10], 1)].concat(),
        HEADROOM,
        tcp_syn(MAC_A, 100, [10, 0, 0, 10], 1).len(),
        &ns.counters,
    );
    assert_eq!(plain, Verdict::Drop(DropReason::NoFlowTable));
}

#[test]
fn ip_fabric_forwarding_sends_as_is_and_routes_the_return_to_the_vmi() {
    let ns = Ns::with_ports((61000, 65535));
    // vmi-c of net2 (VLAN 300), 10.0.0.10 as well: net2 is another VRF.
    let frame = udp_from(MAC_C, 300, [10, 0, 0, 10], REMOTE, 4000);
    let out = seen(&ns.out_of(P1, &frame, 0, FABRIC));
    assert_eq!(
        (out.src, out.dst, out.ttl, out.sport),
        ([10, 0, 0, 10], REMOTE, 63, 4000)
    );
    assert_eq!((out.eth_src, out.eth_dst), (FABRIC_MAC, ROUTER_MAC));
    assert!(ns.flows.borrow().is_empty(), "stateless");

    let mut back = Vec::new();
    from_remote([10, 0, 0, 10])
        .udp(53, 4000)
        .write(&mut back, b"answer")
        .unwrap();
    let b = seen(&ns.out_of(FABRIC, &back, 0, P1));
    assert_eq!(
        (b.dst, b.vlan, b.eth_dst, b.ttl),
        ([10, 0, 0, 10], Some(300), MAC_C, 59)
    );
    // To net2's VMI on node-b: through the tunnel (from the fabric, not
    // from a tunnel: no split horizon applies).
    let mut to_remote = Vec::new();
    from_remote([10, 0, 0, 77])
        .udp(53, 4000)
        .write(&mut to_remote, b"answer")
        .unwrap();
    let tunnelled = ns.out_of(FABRIC, &to_remote, 0, FABRIC);
    let h = PacketHeaders::from_ethernet_slice(&tunnelled).unwrap();
    let Some(NetHeaders::Ipv4(outer, _)) = h.net else {
        panic!("no outer IPv4")
    };
    assert_eq!((outer.source, outer.destination), (UNDERLAY, NODE_B));
    // The gateway's own address is not answered from the fabric, and the
    // network's subnet outside any VMI is no route.
    let mut to_gw = Vec::new();
    from_remote([10, 0, 0, 1])
        .udp(53, 4000)
        .write(&mut to_gw, b"x")
        .unwrap();
    assert_eq!(
        ns.dropped(FABRIC, &to_gw, 0),
        DropReason::ReceiveUnsupported
    );
    let mut nobody = Vec::new();
    from_remote([10, 0, 0, 99])
        .udp(53, 4000)
        .write(&mut nobody, b"x")
        .unwrap();
    assert_eq!(ns.dropped(FABRIC, &nobody, 0), DropReason::NoRoute);
}

#[test]
fn a_dc_gateway_gets_mpls_over_udp_with_its_label_and_sends_to_vmi_labels() {
    let ns = Ns::with_ports((61000, 65535));
    let frame = udp_from(MAC_A, 100, [10, 0, 0, 10], [198, 51, 100, 9], 4000);
    let out = ns.out_of(P1, &frame, 0, FABRIC);
    let h = PacketHeaders::from_ethernet_slice(&out).unwrap();
    let Some(NetHeaders::Ipv4(outer, _)) = h.net else {
        panic!("no outer IPv4")
    };
    assert_eq!((outer.source, outer.destination), (UNDERLAY, DCGW));
    assert_eq!(outer.protocol, IpNumber::UDP);
    let Some(TransportHeader::Udp(udp)) = h.transport else {
        panic!("no UDP")
    };
    assert_eq!(udp.destination_port, 6635);
    let label = u32::from_be_bytes([out[42], out[43], out[44], out[45]]);
    assert_eq!(label >> 12, DCGW_LABEL);
    assert_eq!(label & 0x100, 0x100, "bottom of stack");
    let inner = PacketHeaders::from_ip_slice(&out[46..]).unwrap();
    let Some(NetHeaders::Ipv4(ip, _)) = inner.net else {
        panic!("no inner IPv4")
    };
    assert_eq!(
        (ip.source, ip.destination, ip.time_to_live),
        ([10, 0, 0, 10], [198, 51, 100, 9], 63)
    );
    assert!(
        ns.flows.borrow().is_empty(),
        "a DC gateway route is not SNAT"
    );

    // From the DC gateway: a VMI's routed label is delivered to it.
    let mut inner = Vec::new();
    PacketBuilder::ipv4([198, 51, 100, 9], [10, 0, 0, 10], 50)
        .udp(53, 4000)
        .write(&mut inner, b"answer")
        .unwrap();
    let mut mpls = Vec::new();
    mpls.extend_from_slice(&((LABEL_A << 12) | 0x100 | 64).to_be_bytes());
    mpls.extend_from_slice(&inner);
    let mut tunnel = Vec::new();
    PacketBuilder::ethernet2(NEXT_HOP_MAC, FABRIC_MAC)
        .ipv4(DCGW, UNDERLAY, 64)
        .udp(49200, 6635)
        .write(&mut tunnel, &mpls)
        .unwrap();
    let b = seen(&ns.out_of(FABRIC, &tunnel, 0, P1));
    assert_eq!(
        (b.src, b.dst, b.vlan),
        ([198, 51, 100, 9], [10, 0, 0, 10], Some(100))
    );
    // The network's bridged label is not the DC gateway's to use: it is
    // not part of the network's layer 2.
    let mut frame = Vec::new();
    frame.extend_from_slice(&((NET1_LABEL << 12) | 0x100 | 64).to_be_bytes());
    frame.extend_from_slice(&udp4(
        MAC_X,
        MAC_A,
        None,
        [198, 51, 100, 9],
        [10, 0, 0, 10],
        64,
    ));
    let mut bridged = Vec::new();
    PacketBuilder::ethernet2(NEXT_HOP_MAC, FABRIC_MAC)
        .ipv4(DCGW, UNDERLAY, 64)
        .udp(49200, 6635)
        .write(&mut bridged, &frame)
        .unwrap();
    assert_eq!(
        ns.dropped(FABRIC, &bridged, 0),
        DropReason::TunnelPeerNotInNetwork
    );
}

/// An IPv4 packet to `dst` from behind the DC gateway, MPLS over UDP
/// with `label`, from `from`.
fn labelled_from(from: [u8; 4], label: u32, dst: [u8; 4]) -> Vec<u8> {
    let mut inner = Vec::new();
    PacketBuilder::ipv4([198, 51, 100, 9], dst, 50)
        .udp(53, 4000)
        .write(&mut inner, b"routed")
        .unwrap();
    let mut mpls = Vec::new();
    mpls.extend_from_slice(&((label << 12) | 0x100 | 64).to_be_bytes());
    mpls.extend_from_slice(&inner);
    let mut tunnel = Vec::new();
    PacketBuilder::ethernet2(NEXT_HOP_MAC, FABRIC_MAC)
        .ipv4(from, UNDERLAY, 64)
        .udp(49200, 6635)
        .write(&mut tunnel, &mpls)
        .unwrap();
    tunnel
}

#[test]
fn a_networks_routed_label_from_its_dc_gateway_is_routed_in_its_vrf() {
    const ROUTED: u32 = NET1_LABEL + (1 << 19);
    let mut c = config((61000, 65535));
    for n in &mut c.networks {
        if n.key == "ns/net1" {
            n.routed_label = Some(ROUTED);
        }
    }
    // A virtual gateway's route: toward its interface.
    c.routes.push(RouteConfig {
        network: "ns/net1".into(),
        prefix: "203.0.113.0/24".parse().unwrap(),
        next_hop: NextHopConfig::Port(VGW),
    });
    let ns = Ns::new(&c, FlowConfig::default());
    assert!(
        ns.tables.dump().contains(&format!("{ROUTED}")),
        "the dump shows the routed label"
    );

    // To the virtual gateway's interface: routed (TTL decremented), the
    // host side's MAC.
    let out = ns.out_of(
        FABRIC,
        &labelled_from(DCGW, ROUTED, [203, 0, 113, 9]),
        0,
        VGW,
    );
    let h = PacketHeaders::from_ethernet_slice(&out).unwrap();
    assert!(h.vlan().is_none());
    let eth = h
        .link
        .clone()
        .and_then(|l| l.ethernet2())
        .expect("Ethernet");
    assert_eq!((eth.source, eth.destination), (GW, PEER_MAC));
    let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
        panic!("no IPv4")
    };
    assert_eq!(
        (ip.source, ip.destination, ip.time_to_live),
        ([198, 51, 100, 9], [203, 0, 113, 9], 49)
    );
    // To a local instance of the network: on its logical interface.
    let b = seen(&ns.out_of(FABRIC, &labelled_from(DCGW, ROUTED, [10, 0, 0, 10]), 0, P1));
    assert_eq!(
        (b.src, b.dst, b.vlan),
        ([198, 51, 100, 9], [10, 0, 0, 10], Some(100))
    );
    // Never back into a tunnel: an instance of another node, the DC
    // gateway's own routes.
    for dst in [[10, 0, 0, 60], [198, 51, 100, 20]] {
        assert_eq!(
            ns.dropped(FABRIC, &labelled_from(DCGW, ROUTED, dst), 0),
            DropReason::TunnelHairpin,
            "{dst:?}"
        );
    }
    // Only a DC gateway of the network sends with it, not a node.
    assert_eq!(
        ns.dropped(FABRIC, &labelled_from(NODE_B, ROUTED, [203, 0, 113, 9]), 0),
        DropReason::TunnelPeerNotInNetwork
    );

    // A routed label that is already another's is refused, naming it.
    for n in &mut c.networks {
        if n.key == "ns/net1" {
            n.routed_label = Some(LABEL_A);
        }
    }
    let (_, rejected) = Tables::compile(&c);
    assert!(
        rejected
            .iter()
            .any(|r| format!("{r:?}").contains("LabelUnusable")),
        "{rejected:?}"
    );
}

/// `inner` (an Ethernet frame) in VXLAN with `vni`, from `from`.
fn vxlan_from(from: [u8; 4], vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut vxlan = Vec::new();
    vxlan.extend_from_slice(&[0x08, 0, 0, 0]);
    vxlan.extend_from_slice(&(vni << 8).to_be_bytes());
    vxlan.extend_from_slice(inner);
    let mut tunnel = Vec::new();
    PacketBuilder::ethernet2(NEXT_HOP_MAC, FABRIC_MAC)
        .ipv4(from, UNDERLAY, 64)
        .udp(49200, 4789)
        .write(&mut tunnel, &vxlan)
        .unwrap();
    tunnel
}

/// An IPv4 packet to `dst` from behind the DC gateway, in an Ethernet
/// frame to `mac`.
fn routed_frame(mac: MacAddress, dst: [u8; 4]) -> Vec<u8> {
    let mut inner = Vec::new();
    PacketBuilder::ethernet2(DCGW_INNER_MAC, mac)
        .ipv4([198, 51, 100, 9], dst, 50)
        .udp(53, 4000)
        .write(&mut inner, b"routed")
        .unwrap();
    inner
}

/// The inner source MAC a DC gateway's VXLAN carries (its own).
const DCGW_INNER_MAC: MacAddress = [2, 0xdc, 0, 0, 0, 1];

#[test]
fn a_dc_gateways_vxlan_with_the_networks_vni_is_routed_in_its_vrf() {
    let mut c = config((61000, 65535));
    // A virtual gateway's route: toward its interface.
    c.routes.push(RouteConfig {
        network: "ns/net1".into(),
        prefix: "203.0.113.0/24".parse().unwrap(),
        next_hop: NextHopConfig::Port(VGW),
    });
    let ns = Ns::new(&c, FlowConfig::default());

    // To the virtual gateway's interface: routed (TTL decremented), the
    // host side's MAC, whatever inner MAC the DC gateway put.
    for mac in [GW, [2, 0x77, 0, 0, 0, 7], BROADCAST] {
        let frame = vxlan_from(DCGW, NET1_VNI, &routed_frame(mac, [203, 0, 113, 9]));
        let out = ns.out_of(FABRIC, &frame, 0, VGW);
        let h = PacketHeaders::from_ethernet_slice(&out).unwrap();
        assert!(h.vlan().is_none());
        let eth = h
            .link
            .clone()
            .and_then(|l| l.ethernet2())
            .expect("Ethernet");
        assert_eq!((eth.source, eth.destination), (GW, PEER_MAC), "{mac:?}");
        let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
            panic!("no IPv4")
        };
        assert_eq!(
            (ip.source, ip.destination, ip.time_to_live),
            ([198, 51, 100, 9], [203, 0, 113, 9], 49)
        );
    }
    // To a local instance of the network: on its logical interface, to its
    // MAC, from the gateway's.
    let frame = vxlan_from(
        DCGW,
        NET1_VNI,
        &routed_frame([2, 0x77, 0, 0, 0, 7], [10, 0, 0, 10]),
    );
    let b = seen(&ns.out_of(FABRIC, &frame, 0, P1));
    assert_eq!(
        (b.src, b.dst, b.ttl, b.vlan, b.eth_src, b.eth_dst),
        ([198, 51, 100, 9], [10, 0, 0, 10], 49, Some(100), GW, MAC_A)
    );
    // IPv6 inside, over the IPv4 underlay.
    let mut inner6 = Vec::new();
    PacketBuilder::ethernet2(DCGW_INNER_MAC, GW)
        .ipv6(v6("2001:db8::9").octets(), v6("fd00::a").octets(), 50)
        .udp(53, 4000)
        .write(&mut inner6, b"routed")
        .unwrap();
    let out = ns.out_of(FABRIC, &vxlan_from(DCGW, NET1_VNI, &inner6), 0, P1);
    let h = PacketHeaders::from_ethernet_slice(&out).unwrap();
    let Some(NetHeaders::Ipv6(ip, _)) = h.net else {
        panic!("no IPv6")
    };
    assert_eq!(ip.hop_limit, 49);
    // Never back into a tunnel: an instance of another node, the DC
    // gateway's own routes.
    for dst in [[10, 0, 0, 60], [198, 51, 100, 20]] {
        let frame = vxlan_from(DCGW, NET1_VNI, &routed_frame(GW, dst));
        assert_eq!(
            ns.dropped(FABRIC, &frame, 0),
            DropReason::TunnelHairpin,
            "{dst:?}"
        );
    }

    // A node hosting the network still bridges by the inner MAC: the
    // frame reaches the instance as sent (TTL untouched).
    let bridged = udp4(MAC_R, MAC_A, None, [10, 0, 0, 60], [10, 0, 0, 10], 64);
    let b = seen(&ns.out_of(FABRIC, &vxlan_from(NODE_B, NET1_VNI, &bridged), 0, P1));
    assert_eq!(
        (b.ttl, b.eth_src, b.eth_dst, b.vlan),
        (64, MAC_R, MAC_A, Some(100))
    );

    let drops = |cases: &[(&str, Vec<u8>, DropReason)]| {
        let before = ns.counters.snapshot();
        for (name, frame, reason) in cases {
            assert_eq!(ns.dropped(FABRIC, frame, 0), *reason, "{name}");
        }
        let after = ns.counters.snapshot();
        for (name, _, reason) in cases {
            let expected = cases.iter().filter(|c| c.2 == *reason).count() as u64;
            assert_eq!(
                after.drops(*reason) - before.drops(*reason),
                expected,
                "counter of {reason} ({name})"
            );
        }
    };
    let to_a = routed_frame(GW, [10, 0, 0, 10]);
    // Truncated: the IPv4 header says more than the frame holds.
    let mut short = to_a.clone();
    short.truncate(short.len() - 4);
    let mut tagged = Vec::new();
    PacketBuilder::ethernet2(DCGW_INNER_MAC, GW)
        .single_vlan(VlanId::try_new(100).unwrap())
        .ipv4([198, 51, 100, 9], [10, 0, 0, 10], 50)
        .udp(53, 4000)
        .write(&mut tagged, b"routed")
        .unwrap();
    let mut arp = to_a.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let mut multicast_source = to_a.clone();
    multicast_source[6] |= 1;
    drops(&[
        (
            "a stranger (neither a node nor a DC gateway)",
            vxlan_from([192, 168, 100, 201], NET1_VNI, &to_a),
            DropReason::TunnelUnknownPeer,
        ),
        (
            "a VNI nobody has",
            vxlan_from(DCGW, NET1_VNI + 1, &to_a),
            DropReason::TunnelUnknownVni,
        ),
        (
            "an inner IPv4 packet longer than the frame",
            vxlan_from(DCGW, NET1_VNI, &short),
            DropReason::TunnelMalformed,
        ),
        (
            "a tagged inner frame",
            vxlan_from(DCGW, NET1_VNI, &tagged),
            DropReason::TunnelMalformed,
        ),
        (
            "not IP inside",
            vxlan_from(DCGW, NET1_VNI, &arp),
            DropReason::TunnelMalformed,
        ),
        (
            "a multicast inner source MAC",
            vxlan_from(DCGW, NET1_VNI, &multicast_source),
            DropReason::InvalidSourceMac,
        ),
    ]);

    // Another network's VNI from the DC gateway: it routes for net1 only.
    for n in &mut c.networks {
        if n.key == "ns/net2" {
            n.vni = Some(NET1_VNI + 2);
        }
    }
    let ns = Ns::new(&c, FlowConfig::default());
    let frame = vxlan_from(DCGW, NET1_VNI + 2, &routed_frame(GW, [10, 0, 0, 10]));
    assert_eq!(
        ns.dropped(FABRIC, &frame, 0),
        DropReason::TunnelPeerNotInNetwork
    );
    // Without the DC gateway among the network's routed peers, its VXLAN
    // is refused alike.
    for n in &mut c.networks {
        if n.key == "ns/net1" {
            n.routed_peers.clear();
        }
    }
    c.routes
        .retain(|r| !matches!(r.next_hop, NextHopConfig::Tunnel { .. }));
    let ns = Ns::new(&c, FlowConfig::default());
    let frame = vxlan_from(DCGW, NET1_VNI, &routed_frame(GW, [10, 0, 0, 10]));
    assert_eq!(
        ns.dropped(FABRIC, &frame, 0),
        DropReason::TunnelPeerNotInNetwork
    );
}

#[test]
fn compilation_refuses_what_cannot_leave_and_dumps_the_rest() {
    let mut c = config((61000, 65535));
    // A second IP fabric network overlapping net2's subnet.
    c.networks.push(NetworkConfig {
        key: "ns/net4".into(),
        vrf: 4,
        subnets: vec![SubnetConfig {
            prefix: "10.0.0.128/25".parse().unwrap(),
            gateway: ip("10.0.0.129"),
        }],
        fabric_exit: FabricExit::IpFabric,
        ..Default::default()
    });
    c.routes.push(RouteConfig {
        network: "ns/net2".into(),
        prefix: "198.51.100.0/24".parse().unwrap(),
        next_hop: NextHopConfig::Tunnel {
            peer: "dcgw".into(),
            label: 5,
        },
    });
    let (tables, rejected) = Tables::compile(&c);
    let text: Vec<String> = rejected.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(
        text.iter()
            .any(|t| t.contains("network ns/net4") && t.contains("overlaps 10.0.0.0/24")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("does not route for this network")),
        "{text:#?}"
    );
    let dump = tables.dump();
    assert!(dump.contains("snat ports 61000-65535"), "{dump}");
    assert!(dump.contains("ip fabric 10.0.0.0/24"), "{dump}");
    assert!(
        dump.contains("fabric route 0.0.0.0/0 via 192.168.100.254"),
        "{dump}"
    );
    assert!(dump.contains("peer dcgw label 5000"), "{dump}");
    assert_eq!(tables.ip_fabric_prefixes().len(), 2, "net2's subnets only");
    assert!(tables.uses_flows());
    // No underlay: nothing leaves.
    let mut bare = config((61000, 65535));
    bare.underlay = None;
    bare.peers.clear();
    bare.remote_vmis.clear();
    bare.routes.clear();
    for n in &mut bare.networks {
        n.peers.clear();
        n.routed_peers.clear();
    }
    let (tables, rejected) = Tables::compile(&bare);
    assert_eq!(rejected.len(), 2, "{rejected:#?}");
    assert!(!tables.uses_flows());
    // An empty port range.
    let (_, rejected) = Tables::compile(&config((62000, 61000)));
    assert!(
        rejected
            .iter()
            .any(|r| r.reason == crate::tables::RejectReason::SnatPortsEmpty(62000, 61000))
    );
}

/// The drop reasons of north-south, each with a frame below.
pub(super) const REASONS: &[DropReason] = &[
    DropReason::SnatUnsupported,
    DropReason::SnatOtherFamily,
    DropReason::SnatPortsExhausted,
    DropReason::SnatNoFlow,
    DropReason::FlowTableFull,
    DropReason::NoFlowTable,
    DropReason::FabricNoRoute,
    DropReason::FabricUnresolved,
];

#[test]
fn every_north_south_drop_reason_has_a_frame() {
    use DropReason::*;
    let ns = Ns::new(
        &config((61000, 61001)),
        FlowConfig {
            capacity: 3,
            ..Default::default()
        },
    );
    let to = |sport, dst| udp_from(MAC_A, 100, [10, 0, 0, 10], dst, sport);
    // Set-up: both ports toward REMOTE:53, and a third flow: the table is full.
    for frame in [to(1, REMOTE), to(2, REMOTE), to(3, [203, 0, 113, 8])] {
        ns.out_of(P1, &frame, 0, FABRIC);
    }
    let mut gre = Vec::new();
    PacketBuilder::ethernet2(MAC_A, GW)
        .single_vlan(VlanId::try_new(100).unwrap())
        .ipv4([10, 0, 0, 10], REMOTE, 64)
        .write(&mut gre, IpNumber::GRE, b"gre payload")
        .unwrap();
    let mut stranger = Vec::new();
    from_remote(UNDERLAY)
        .tcp(80, 61000, 1, 1000)
        .syn()
        .write(&mut stranger, b"")
        .unwrap();
    let cases: Vec<(&str, Vec<u8>, PortId, DropReason)> = vec![
        ("GRE out by SNAT", gre, P1, SnatUnsupported),
        (
            "IPv6 out by SNAT over an IPv4 underlay",
            udp6(MAC_A, GW, Some(100), "fd00::a", "2001:db8::1", 64),
            P1,
            SnatOtherFamily,
        ),
        (
            "a third flow toward REMOTE:53",
            to(4, REMOTE),
            P1,
            SnatPortsExhausted,
        ),
        ("unsolicited to a SNAT port", stranger, FABRIC, SnatNoFlow),
        (
            "a new flow, table full",
            to(5, [203, 0, 113, 9]),
            P1,
            FlowTableFull,
        ),
        (
            "IP fabric forwarding, no IPv6 route on the fabric",
            udp6(MAC_C, GW, Some(300), "fd02::c", "2001:db8::1", 64),
            P1,
            FabricNoRoute,
        ),
        (
            "a host of the fabric's subnet not resolved yet",
            udp_from(MAC_C, 300, [10, 0, 0, 10], [192, 168, 100, 9], 4000),
            P1,
            FabricUnresolved,
        ),
    ];
    let before = ns.counters.snapshot();
    for (name, frame, port, expected) in &cases {
        assert_eq!(
            ns.run(*port, frame, 0).0,
            Verdict::Drop(*expected),
            "case {name:?}"
        );
    }
    let after = ns.counters.snapshot();
    for (_, _, _, reason) in &cases {
        assert_eq!(
            after.drops(*reason) - before.drops(*reason),
            1,
            "counter of {reason}"
        );
    }
    let plain = Rig::new(&config((61000, 65535)));
    let cache = plain.tables.fabric_neighbours();
    cache.lookup(IpAddr::from(ROUTER));
    let pending = cache.wanted().next().unwrap();
    cache.resolve(pending, Some(ROUTER_MAC));
    assert_eq!(plain.dropped(P1, &to(1, REMOTE)), NoFlowTable);
    let covered: Vec<DropReason> = cases.iter().map(|c| c.3).chain([NoFlowTable]).collect();
    for reason in REASONS {
        assert!(covered.contains(reason), "no frame for {reason}");
    }
}
