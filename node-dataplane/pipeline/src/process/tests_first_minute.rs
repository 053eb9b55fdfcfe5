//! Tests of what a remote instance meets in its first minute: DHCPv4 and
//! DHCPv6 answered from its VMI's addresses (replies decoded with dhcproto),
//! router advertisements (decoded with etherparse), ICMP time exceeded and
//! "too big" for the egress MTU with their budget, and allowed address
//! pairs whose holder follows the traffic.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dhcproto::{Decodable, Decoder, Encodable, Encoder, v4, v6};
use etherparse::{
    Icmpv4Type, Icmpv6Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice, VlanId,
    icmpv4::TimeExceededCode as V4TimeExceeded, icmpv6::TimeExceededCode as V6TimeExceeded,
};

use super::tests::*;
use super::*;
use crate::config::*;
use crate::verdict::DropReason;

pub(crate) mod differential;

const DNS4: [u8; 4] = [192, 0, 2, 53];
/// A VMI of net1 with an IPv6 address only, on VLAN 500.
const MAC_6: MacAddress = [2, 0, 0, 0, 0, 0x66];
/// The second holder of the shared address 10.0.0.100.
const MAC_F: MacAddress = [2, 0, 0, 0, 0, 0x0f];

/// The fixture with DHCP options on net1, an IPv6-only VMI, and VMIs a and
/// f sharing the allowed address pair 10.0.0.100.
pub(crate) fn config() -> NodeConfig {
    let mut config = fixture();
    config.networks[0].dhcp = DhcpConfig {
        dns_servers: vec![IpAddr::from(DNS4), ip("fd00::53")],
        domain: Some("lab.example".into()),
        next_server: Some(Ipv4Addr::new(10, 0, 0, 5)),
        boot_file: Some("pxelinux.0".into()),
        ..DhcpConfig::default()
    };
    let six = crate::config::VmiConfig {
        key: "ns/vmi-6".into(),
        network: "ns/net1".into(),
        mac: MAC_6,
        ips: vec![ip("fd00::66")],
        allowed_address_pairs: Vec::new(),
        port_security: true,
        label: None,
    };
    config.vmis.push(six);
    let pair = AllowedAddressPair {
        prefix: "10.0.0.100/32".parse().unwrap(),
        mac: None,
    };
    config.vmis[0].allowed_address_pairs.push(pair.clone());
    let f = crate::config::VmiConfig {
        key: "ns/vmi-f".into(),
        network: "ns/net1".into(),
        mac: MAC_F,
        ips: vec![ip("10.0.0.15")],
        allowed_address_pairs: vec![pair],
        port_security: true,
        label: None,
    };
    config.vmis.push(f);
    for (key, vlan, vmi, created) in [
        ("ns/li-6", 500, "ns/vmi-6", 20),
        ("ns/li-f", 600, "ns/vmi-f", 21),
    ] {
        config.logical_interfaces.push(LogicalInterfaceConfig {
            key: key.into(),
            port: P1,
            vlan,
            vmi: vmi.into(),
            order: CreationOrder {
                created_secs: created,
                name: key.into(),
            },
        });
    }
    config
}

/// A UDP frame on VLAN `vlan` of port 1.
#[allow(clippy::too_many_arguments)]
fn udp_frame(
    src_mac: MacAddress,
    dst_mac: MacAddress,
    vlan: u16,
    src: IpAddr,
    dst: IpAddr,
    ports: (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let eth =
        PacketBuilder::ethernet2(src_mac, dst_mac).single_vlan(VlanId::try_new(vlan).unwrap());
    let mut out = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth
            .ipv4(s.octets(), d.octets(), 64)
            .udp(ports.0, ports.1)
            .write(&mut out, payload)
            .unwrap(),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth
            .ipv6(s.octets(), d.octets(), 1)
            .udp(ports.0, ports.1)
            .write(&mut out, payload)
            .unwrap(),
        _ => unreachable!(),
    }
    out
}

pub(super) fn dhcp4(
    mac: MacAddress,
    vlan: u16,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    dst_mac: MacAddress,
    msg: &v4::Message,
) -> Vec<u8> {
    let mut payload = Vec::new();
    msg.encode(&mut Encoder::new(&mut payload)).unwrap();
    payload.resize(payload.len().max(300), 0);
    udp_frame(
        mac,
        dst_mac,
        vlan,
        IpAddr::V4(src),
        IpAddr::V4(dst),
        (68, 67),
        &payload,
    )
}

pub(super) fn client_message(mac: MacAddress, kind: v4::MessageType) -> v4::Message {
    let mut msg = v4::Message::new(
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &mac,
    );
    msg.set_xid(0x0bad_cafe);
    msg.opts_mut().insert(v4::DhcpOption::MessageType(kind));
    msg.opts_mut().insert(v4::DhcpOption::ClientIdentifier(vec![
        1, 2, 0, 0, 0, 0, 0x0a,
    ]));
    msg
}

pub(super) fn discover(mac: MacAddress) -> Vec<u8> {
    dhcp4(
        mac,
        100,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        BROADCAST,
        &client_message(mac, v4::MessageType::Discover),
    )
}

/// The reply's Ethernet destination, VLAN, IP source and destination, and
/// the decoded DHCP message.
fn dhcp4_reply(out: &[u8]) -> (MacAddress, u16, Ipv4Addr, Ipv4Addr, v4::Message) {
    let sliced = SlicedPacket::from_ethernet(out).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &sliced.link else {
        panic!("not Ethernet")
    };
    let Some(etherparse::VlanSlice::SingleVlan(tag)) = sliced.vlan() else {
        panic!("not tagged")
    };
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        panic!("not IPv4")
    };
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        panic!("not UDP")
    };
    assert_eq!((udp.source_port(), udp.destination_port()), (67, 68));
    let (src, dst) = (ip.header().source_addr(), ip.header().destination_addr());
    let expected =
        etherparse::UdpHeader::with_ipv4_checksum(67, 68, &ip.header().to_header(), udp.payload())
            .unwrap();
    assert_eq!(udp.checksum(), expected.checksum, "UDP checksum");
    let msg = v4::Message::decode(&mut Decoder::new(udp.payload())).expect("dhcproto decodes it");
    (
        eth.destination(),
        tag.vlan_identifier().value(),
        src,
        dst,
        msg,
    )
}

#[test]
fn a_discover_from_an_instance_without_an_address_gets_its_vmis_address() {
    let rig = Rig::new(&config());
    let (verdict, out) = rig.run_with(P1, &discover(MAC_A), HEADROOM, 512);
    let Verdict::Transmit { port, vmi, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!((port, vmi), (P1, rig.tables.vmi_id("ns/vmi-a")));
    let (eth_dst, vlan, src, dst, msg) = dhcp4_reply(&out);
    assert_eq!((eth_dst, vlan), (MAC_A, 100), "to the instance, same VLAN");
    assert_eq!(src, Ipv4Addr::new(10, 0, 0, 1), "from the subnet's gateway");
    assert_eq!(dst, Ipv4Addr::BROADCAST);
    assert_eq!(msg.opcode(), v4::Opcode::BootReply);
    assert_eq!(msg.xid(), 0x0bad_cafe);
    assert_eq!(msg.yiaddr(), Ipv4Addr::new(10, 0, 0, 10));
    assert_eq!(msg.siaddr(), Ipv4Addr::new(10, 0, 0, 5), "PXE next server");
    assert_eq!(
        msg.fname().map(<[u8]>::to_vec),
        Some(b"pxelinux.0\0".to_vec())
    );
    let opts = msg.opts();
    let get = |code| opts.get(code).cloned();
    assert_eq!(
        get(v4::OptionCode::MessageType),
        Some(v4::DhcpOption::MessageType(v4::MessageType::Offer))
    );
    assert_eq!(
        get(v4::OptionCode::ServerIdentifier),
        Some(v4::DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)))
    );
    assert_eq!(
        get(v4::OptionCode::AddressLeaseTime),
        Some(v4::DhcpOption::AddressLeaseTime(86_400))
    );
    assert_eq!(
        get(v4::OptionCode::Renewal),
        Some(v4::DhcpOption::Renewal(43_200))
    );
    assert_eq!(
        get(v4::OptionCode::SubnetMask),
        Some(v4::DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
    );
    assert_eq!(
        get(v4::OptionCode::Router),
        Some(v4::DhcpOption::Router(vec![Ipv4Addr::new(10, 0, 0, 1)]))
    );
    assert_eq!(
        get(v4::OptionCode::BroadcastAddr),
        Some(v4::DhcpOption::BroadcastAddr(Ipv4Addr::new(10, 0, 0, 255)))
    );
    assert_eq!(
        get(v4::OptionCode::DomainNameServer),
        Some(v4::DhcpOption::DomainNameServer(vec![Ipv4Addr::from(DNS4)])),
        "only the IPv4 DNS servers"
    );
    assert_eq!(
        get(v4::OptionCode::DomainName),
        Some(v4::DhcpOption::DomainName("lab.example".into()))
    );
    assert_eq!(
        get(v4::OptionCode::ClientIdentifier),
        Some(v4::DhcpOption::ClientIdentifier(vec![
            1, 2, 0, 0, 0, 0, 0x0a
        ])),
        "echoed (RFC 6842)"
    );
    assert_eq!(
        get(v4::OptionCode::TFTPServerName),
        Some(v4::DhcpOption::TFTPServerName(b"10.0.0.5".to_vec()))
    );
    assert_eq!(get(v4::OptionCode::InterfaceMtu), None, "no MTU declared");
    // Counted as forwarded by the VMI: received and answered.
    assert_eq!(rig.vmi("ns/vmi-a").rx_packets, 1);
}

#[test]
fn requests_are_acked_for_the_vmis_address_and_naked_for_another() {
    let rig = Rig::new(&config());
    let request = |requested: Ipv4Addr, server: Option<Ipv4Addr>| {
        let mut msg = client_message(MAC_A, v4::MessageType::Request);
        msg.opts_mut()
            .insert(v4::DhcpOption::RequestedIpAddress(requested));
        if let Some(server) = server {
            msg.opts_mut()
                .insert(v4::DhcpOption::ServerIdentifier(server));
        }
        dhcp4(
            MAC_A,
            100,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            BROADCAST,
            &msg,
        )
    };
    let kind = |frame: &[u8]| {
        let (_, _, _, _, msg) = dhcp4_reply(frame);
        match msg.opts().get(v4::OptionCode::MessageType) {
            Some(v4::DhcpOption::MessageType(t)) => *t,
            other => panic!("{other:?}"),
        }
    };
    let gateway = Ipv4Addr::new(10, 0, 0, 1);
    let (_, out) = rig.run_with(
        P1,
        &request(Ipv4Addr::new(10, 0, 0, 10), Some(gateway)),
        HEADROOM,
        512,
    );
    assert_eq!(kind(&out), v4::MessageType::Ack);
    let (_, out) = rig.run_with(
        P1,
        &request(Ipv4Addr::new(10, 0, 0, 99), None),
        HEADROOM,
        512,
    );
    assert_eq!(kind(&out), v4::MessageType::Nak, "init-reboot elsewhere");
    let (verdict, _) = rig.run_with(
        P1,
        &request(
            Ipv4Addr::new(10, 0, 0, 10),
            Some(Ipv4Addr::new(10, 0, 0, 2)),
        ),
        HEADROOM,
        512,
    );
    assert_eq!(
        verdict,
        Verdict::Drop(DropReason::DhcpIgnored),
        "another server's"
    );

    // Renewing: unicast from its address to the gateway's, answered to it.
    let mut msg = client_message(MAC_A, v4::MessageType::Request);
    msg.set_ciaddr(Ipv4Addr::new(10, 0, 0, 10));
    let frame = dhcp4(MAC_A, 100, Ipv4Addr::new(10, 0, 0, 10), gateway, GW, &msg);
    let (verdict, out) = rig.run_with(P1, &frame, HEADROOM, 512);
    assert!(matches!(verdict, Verdict::Transmit { port: P1, .. }));
    let (_, _, _, dst, reply) = dhcp4_reply(&out);
    assert_eq!(dst, Ipv4Addr::new(10, 0, 0, 10));
    assert_eq!(reply.yiaddr(), Ipv4Addr::new(10, 0, 0, 10));
    // Releasing: nothing to undo.
    let msg = client_message(MAC_A, v4::MessageType::Release);
    let frame = dhcp4(MAC_A, 100, Ipv4Addr::new(10, 0, 0, 10), gateway, GW, &msg);
    assert_eq!(rig.dropped(P1, &frame), DropReason::DhcpIgnored);
}

#[test]
fn the_network_mtu_is_announced_and_the_lease_is_the_networks() {
    let mut config = config();
    config.networks[0].mtu = Some(1400);
    config.networks[0].dhcp.lease_secs = 600;
    let rig = Rig::new(&config);
    let (_, out) = rig.run_with(P1, &discover(MAC_A), HEADROOM, 512);
    let (.., msg) = dhcp4_reply(&out);
    assert_eq!(
        msg.opts().get(v4::OptionCode::InterfaceMtu),
        Some(&v4::DhcpOption::InterfaceMtu(1400))
    );
    assert_eq!(
        msg.opts().get(v4::OptionCode::AddressLeaseTime),
        Some(&v4::DhcpOption::AddressLeaseTime(600))
    );
}

#[test]
fn without_a_server_a_discover_is_bridged_and_nothing_else_passes_from_nowhere() {
    let mut config = config();
    config.networks[0].dhcp.mode = DhcpMode::Off;
    let rig = Rig::new(&config);
    let (verdict, _) = rig.run_with(P1, &discover(MAC_A), HEADROOM, 512);
    assert!(
        matches!(verdict, Verdict::Flood(_)),
        "to a server among the instances: {verdict:?}"
    );
    // From 0.0.0.0 but routed: not the client's to send.
    let msg = client_message(MAC_A, v4::MessageType::Discover);
    let frame = dhcp4(
        MAC_A,
        100,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(10, 0, 1, 20),
        GW,
        &msg,
    );
    assert_eq!(rig.dropped(P1, &frame), DropReason::SourceIpSpoofed);
    // And no other traffic from 0.0.0.0, with a server or without.
    let other = udp4(MAC_A, BROADCAST, Some(100), [0, 0, 0, 0], [255; 4], 64);
    assert_eq!(rig.dropped(P1, &other), DropReason::SourceIpSpoofed);
    let rig = Rig::new(&self::config());
    assert_eq!(rig.dropped(P1, &other), DropReason::SourceIpSpoofed);
}

#[test]
fn a_vmi_without_an_ipv4_address_gets_no_offer_and_a_foreign_chaddr_is_ignored() {
    let rig = Rig::new(&config());
    let msg = client_message(MAC_6, v4::MessageType::Discover);
    let frame = dhcp4(
        MAC_6,
        500,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        BROADCAST,
        &msg,
    );
    assert_eq!(rig.dropped(P1, &frame), DropReason::DhcpNoAddress);
    let msg = client_message(MAC_B, v4::MessageType::Discover);
    let frame = dhcp4(
        MAC_A,
        100,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        BROADCAST,
        &msg,
    );
    assert_eq!(rig.dropped(P1, &frame), DropReason::DhcpIgnored);
}

fn dhcp6(mac: MacAddress, vlan: u16, msg: &v6::Message) -> Vec<u8> {
    dhcp6_on(mac, Some(vlan), msg)
}

/// A SOLICIT from `mac` (on `vlan`, or untagged) with an IA_NA.
pub(super) fn solicit_from(mac: MacAddress, vlan: Option<u16>) -> Vec<u8> {
    let mut msg = v6::Message::new_with_id(v6::MessageType::Solicit, [1, 2, 3]);
    msg.opts_mut()
        .insert(v6::DhcpOption::ClientId(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]));
    msg.opts_mut().insert(v6::DhcpOption::IANA(v6::IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts: v6::DhcpOptions::new(),
    }));
    dhcp6_on(mac, vlan, &msg)
}

fn dhcp6_on(mac: MacAddress, vlan: Option<u16>, msg: &v6::Message) -> Vec<u8> {
    let mut payload = Vec::new();
    msg.encode(&mut Encoder::new(&mut payload)).unwrap();
    let Some(vlan) = vlan else {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(mac, [0x33, 0x33, 0, 1, 0, 2])
            .ipv6(v6("fe80::6").octets(), v6("ff02::1:2").octets(), 1)
            .udp(546, 547)
            .write(&mut out, &payload)
            .unwrap();
        return out;
    };
    udp_frame(
        mac,
        [0x33, 0x33, 0, 1, 0, 2],
        vlan,
        ip("fe80::6"),
        ip("ff02::1:2"),
        (546, 547),
        &payload,
    )
}

fn dhcp6_reply(out: &[u8]) -> (Ipv6Addr, Ipv6Addr, v6::Message) {
    let sliced = SlicedPacket::from_ethernet(out).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &sliced.net else {
        panic!("not IPv6")
    };
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        panic!("not UDP")
    };
    assert_eq!((udp.source_port(), udp.destination_port()), (547, 546));
    let expected = etherparse::UdpHeader::with_ipv6_checksum(
        547,
        546,
        &ip.header().to_header(),
        udp.payload(),
    )
    .unwrap();
    assert_eq!(udp.checksum(), expected.checksum, "UDP checksum");
    let msg = v6::Message::decode(&mut Decoder::new(udp.payload())).expect("dhcproto decodes it");
    (
        ip.header().source_addr(),
        ip.header().destination_addr(),
        msg,
    )
}

#[test]
fn dhcpv6_solicit_and_request_get_the_vmis_ipv6_address() {
    let rig = Rig::new(&config());
    let client_id = vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 0x66];
    let ia = || {
        v6::DhcpOption::IANA(v6::IANA {
            id: 7,
            t1: 0,
            t2: 0,
            opts: v6::DhcpOptions::new(),
        })
    };
    let mut solicit = v6::Message::new_with_id(v6::MessageType::Solicit, [1, 2, 3]);
    solicit
        .opts_mut()
        .insert(v6::DhcpOption::ClientId(client_id.clone()));
    solicit.opts_mut().insert(ia());
    let (verdict, out) = rig.run_with(P1, &dhcp6(MAC_6, 500, &solicit), HEADROOM, 512);
    assert!(
        matches!(verdict, Verdict::Transmit { port: P1, .. }),
        "{verdict:?}"
    );
    let (src, dst, advertise) = dhcp6_reply(&out);
    assert_eq!(src, rig.tables.gateway_link_local());
    assert_eq!(
        src,
        v6("fe80::200:5eff:fe00:100"),
        "EUI-64 of the gateway MAC"
    );
    assert_eq!(dst, v6("fe80::6"));
    assert_eq!(advertise.msg_type(), v6::MessageType::Advertise);
    assert_eq!(advertise.xid(), [1, 2, 3]);
    let Some(v6::DhcpOption::ServerId(server_id)) =
        advertise.opts().get(v6::OptionCode::ServerId).cloned()
    else {
        panic!("no server id")
    };
    assert_eq!(server_id, [0, 3, 0, 1, 0, 0, 0x5e, 0, 1, 0], "DUID-LL");
    let address = |msg: &v6::Message| {
        let Some(v6::DhcpOption::IANA(ia)) = msg.opts().get(v6::OptionCode::IANA) else {
            panic!("no IA_NA: {msg:?}")
        };
        assert_eq!(ia.id, 7);
        let Some(v6::DhcpOption::IAAddr(a)) = ia.opts.get(v6::OptionCode::IAAddr) else {
            panic!("no address")
        };
        (a.addr, a.valid_life)
    };
    assert_eq!(address(&advertise), (v6("fd00::66"), 86_400));
    assert_eq!(
        advertise.opts().get(v6::OptionCode::DomainNameServers),
        Some(&v6::DhcpOption::DomainNameServers(vec![v6("fd00::53")]))
    );

    let mut request = v6::Message::new_with_id(v6::MessageType::Request, [4, 5, 6]);
    request
        .opts_mut()
        .insert(v6::DhcpOption::ClientId(client_id.clone()));
    request
        .opts_mut()
        .insert(v6::DhcpOption::ServerId(server_id.clone()));
    request.opts_mut().insert(ia());
    let (_, out) = rig.run_with(P1, &dhcp6(MAC_6, 500, &request), HEADROOM, 512);
    let (_, _, reply) = dhcp6_reply(&out);
    assert_eq!(reply.msg_type(), v6::MessageType::Reply);
    assert_eq!(address(&reply), (v6("fd00::66"), 86_400));

    // Another server's request, and a VMI without IPv6.
    let mut other = v6::Message::new_with_id(v6::MessageType::Request, [4, 5, 7]);
    other
        .opts_mut()
        .insert(v6::DhcpOption::ClientId(client_id.clone()));
    other
        .opts_mut()
        .insert(v6::DhcpOption::ServerId(vec![0, 3, 0, 1, 9, 9, 9, 9, 9, 9]));
    other.opts_mut().insert(ia());
    assert_eq!(
        rig.run_with(P1, &dhcp6(MAC_6, 500, &other), HEADROOM, 512)
            .0,
        Verdict::Drop(DropReason::DhcpIgnored)
    );
    assert_eq!(
        rig.run_with(P1, &dhcp6(MAC_F, 600, &solicit), HEADROOM, 512)
            .0,
        Verdict::Drop(DropReason::DhcpNoAddress)
    );
    // A client identifier is required.
    let mut anonymous = solicit.clone();
    anonymous.opts_mut().remove(v6::OptionCode::ClientId);
    assert_eq!(
        rig.run_with(P1, &dhcp6(MAC_6, 500, &anonymous), HEADROOM, 512)
            .0,
        Verdict::Drop(DropReason::MalformedDhcp)
    );
}

/// A router solicitation from `src` on VLAN 500.
fn router_solicit(src: &str, slla: Option<MacAddress>) -> Vec<u8> {
    let mut options = Vec::new();
    if let Some(mac) = slla {
        options.extend_from_slice(&[1, 1]);
        options.extend_from_slice(&mac);
    }
    let mut out = Vec::new();
    ipv6_step(
        MAC_6,
        [0x33, 0x33, 0, 0, 0, 2],
        Some(500),
        v6(src),
        v6("ff02::2"),
        255,
    )
    .icmpv6(Icmpv6Type::RouterSolicitation)
    .write(&mut out, &options)
    .unwrap();
    out
}

#[test]
fn a_router_solicitation_gets_an_advertisement_sending_hosts_to_dhcpv6() {
    let mut config = config();
    config.networks[0].mtu = Some(1400);
    let rig = Rig::new(&config);
    let (verdict, out) = rig.run_with(P1, &router_solicit("fe80::6", Some(MAC_6)), HEADROOM, 256);
    assert!(
        matches!(verdict, Verdict::Transmit { port: P1, .. }),
        "{verdict:?}"
    );
    let sliced = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &sliced.net else {
        panic!("not IPv6")
    };
    assert_eq!(ip.header().source_addr(), v6("fe80::200:5eff:fe00:100"));
    assert_eq!(ip.header().destination_addr(), v6("fe80::6"));
    assert_eq!(ip.header().hop_limit(), 255);
    let Some(TransportSlice::Icmpv6(icmp)) = &sliced.transport else {
        panic!("not ICMPv6")
    };
    let Icmpv6Type::RouterAdvertisement(ra) = icmp.icmp_type() else {
        panic!("{:?}", icmp.icmp_type())
    };
    assert!(ra.managed_address_config && ra.other_config);
    assert_eq!(ra.router_lifetime, 9000);
    let (src, dst) = (ip.header().source_addr(), ip.header().destination_addr());
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type()
            .calc_checksum(src.octets(), dst.octets(), icmp.payload())
            .unwrap()
    );
    // Options after reachable time and retransmission timer.
    let options = &icmp.payload()[8..];
    let mut found = (false, None, Vec::new());
    for option in trunkline_wire::icmpv6::NdiscOptions::new(options) {
        let option = option.unwrap();
        let bytes: &[u8] = option.into_inner();
        match bytes[0] {
            1 => found.0 = &bytes[2..8] == GW.as_slice(),
            5 => found.1 = Some(u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]])),
            3 => found.2.push((
                Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[16..32]).unwrap()),
                bytes[2],
                bytes[3],
            )),
            t => panic!("option {t}"),
        }
    }
    assert!(found.0, "the gateway MAC as source link-layer address");
    assert_eq!(found.1, Some(1400));
    assert_eq!(
        found.2,
        [(v6("fd00::"), 64, 0x80)],
        "on-link, never autonomous (SLAAC would fail port security)"
    );

    // From "::": to all nodes. And a DHCP-less network drops the M flag.
    let (_, out) = rig.run_with(P1, &router_solicit("::", None), HEADROOM, 256);
    let sliced = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &sliced.net else {
        panic!()
    };
    assert_eq!(ip.header().destination_addr(), v6("ff02::1"));
    config.networks[0].dhcp.mode = DhcpMode::Off;
    let rig = Rig::new(&config);
    let (_, out) = rig.run_with(P1, &router_solicit("fe80::6", None), HEADROOM, 256);
    let sliced = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(TransportSlice::Icmpv6(icmp)) = &sliced.transport else {
        panic!()
    };
    let Icmpv6Type::RouterAdvertisement(ra) = icmp.icmp_type() else {
        panic!()
    };
    assert!(!ra.managed_address_config);
    // A solicitation from "::" with a link-layer address breaks RFC 4861.
    assert_eq!(
        rig.run_with(P1, &router_solicit("::", Some(MAC_6)), HEADROOM, 256)
            .0,
        Verdict::Drop(DropReason::MalformedNeighborDiscovery)
    );
}

#[test]
fn the_gateway_link_local_address_is_answered_by_the_neighbour_proxy() {
    let rig = Rig::new(&config());
    let frame = ns(
        MAC_6,
        Some(500),
        v6("fe80::6"),
        v6("fe80::200:5eff:fe00:100"),
        Some(MAC_6),
        255,
        false,
    );
    let (verdict, out) = rig.run(P1, &frame);
    assert!(
        matches!(verdict, Verdict::Transmit { port: P1, .. }),
        "{verdict:?}"
    );
    let sliced = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(TransportSlice::Icmpv6(icmp)) = &sliced.transport else {
        panic!()
    };
    assert!(matches!(
        icmp.icmp_type(),
        Icmpv6Type::NeighborAdvertisement(h) if h.router && h.solicited
    ));
}

/// The ICMP type of a v4 error in `out`, its source and destination, and
/// the VLAN it leaves on.
fn icmp4(out: &[u8]) -> (Icmpv4Type, [u8; 4], [u8; 4], u16, usize) {
    let sliced = SlicedPacket::from_ethernet(out).unwrap();
    let Some(etherparse::VlanSlice::SingleVlan(tag)) = sliced.vlan() else {
        panic!("not tagged")
    };
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        panic!("not IPv4")
    };
    let Some(TransportSlice::Icmpv4(icmp)) = &sliced.transport else {
        panic!("not ICMP")
    };
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type().calc_checksum(icmp.payload())
    );
    (
        icmp.icmp_type(),
        ip.header().source_addr().octets(),
        ip.header().destination_addr().octets(),
        tag.vlan_identifier().value(),
        icmp.payload().len(),
    )
}

#[test]
fn an_expiring_ttl_gets_time_exceeded_from_the_senders_gateway() {
    let rig = Rig::new(&config());
    let frame = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 1);
    let (verdict, out) = rig.run(P1, &frame);
    let Verdict::Transmit { port, vmi, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!((port, vmi), (P1, rig.tables.vmi_id("ns/vmi-a")));
    let (kind, src, dst, vlan, quoted) = icmp4(&out);
    assert_eq!(
        kind,
        Icmpv4Type::TimeExceeded(V4TimeExceeded::TtlExceededInTransit)
    );
    assert_eq!((src, dst, vlan), ([10, 0, 0, 1], [10, 0, 0, 10], 100));
    assert_eq!(quoted, 28, "the header and 8 bytes, as received");
    assert_eq!(&out[18 + 28..18 + 28 + 28], &frame[18..18 + 28]);

    let frame = udp6(MAC_A, GW, Some(100), "fd00::a", "fd00::b", 1);
    let (_, out) = rig.run(P1, &frame);
    let sliced = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &sliced.net else {
        panic!("not IPv6")
    };
    assert_eq!(ip.header().source_addr(), v6("fd00::1"));
    assert_eq!(ip.header().destination_addr(), v6("fd00::a"));
    let Some(TransportSlice::Icmpv6(icmp)) = &sliced.transport else {
        panic!("not ICMPv6")
    };
    assert_eq!(
        icmp.icmp_type(),
        Icmpv6Type::TimeExceeded(V6TimeExceeded::HopLimitExceeded)
    );
    assert_eq!(icmp.payload(), &frame[18..], "the whole packet fits");
}

#[test]
fn icmp_errors_spend_the_workers_budget_and_the_clock_refills_it() {
    let rig = Rig::new(&config());
    let frame = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 1);
    let run = |now_ms: u64| rig.run_at(now_ms, P1, &frame, HEADROOM, 0).0;
    let burst = crate::limit::ICMP_ERROR_BURST as usize;
    for i in 0..burst {
        assert!(matches!(run(1_000), Verdict::Transmit { .. }), "error {i}");
    }
    assert_eq!(run(1_000), Verdict::Drop(DropReason::IcmpRateLimited));
    assert_eq!(
        rig.counters.snapshot().drops(DropReason::IcmpRateLimited),
        1
    );
    // A millisecond later, one more (1000 per second).
    assert!(matches!(run(1_001), Verdict::Transmit { .. }));
    assert_eq!(run(1_001), Verdict::Drop(DropReason::IcmpRateLimited));
}

#[test]
fn no_error_answers_an_error_or_a_source_outside_the_subnets() {
    let rig = Rig::new(&config());
    let mut error = Vec::new();
    ipv4_step(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 1)
        .icmpv4(Icmpv4Type::TimeExceeded(
            V4TimeExceeded::TtlExceededInTransit,
        ))
        .write(&mut error, &[0x45; 28])
        .unwrap();
    assert_eq!(rig.dropped(P1, &error), DropReason::TtlExceeded);
    // vmi-u (no port security) sends from an address of no subnet.
    let stranger = udp4(MAC_U, GW, None, [172, 16, 0, 1], [10, 0, 0, 10], 1);
    let (verdict, _) = rig.run(P2, &stranger);
    // The first IPv4 gateway stands in for a sender outside the subnets.
    assert!(matches!(verdict, Verdict::Transmit { port: P2, .. }));
}

#[test]
fn a_packet_larger_than_the_egress_port_mtu_gets_fragmentation_needed() {
    let mut config = config();
    config.ports[1].mtu = Some(1400);
    let rig = Rig::new(&config);
    let big = |total: usize, df: bool| {
        let mut out = Vec::new();
        ipv4_step(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 0, 50], 64)
            .udp(40000, 9)
            .write(&mut out, &vec![0x5a; total - 28])
            .unwrap();
        let mut ip = trunkline_wire::ipv4::Packet::new_unchecked(&mut out[18..]);
        ip.set_flags_frag_offset(df, false, 0);
        ip.fill_checksum();
        out
    };
    assert!(matches!(
        rig.run_with(P1, &big(1400, true), HEADROOM, 0).0,
        Verdict::Transmit { port: P2, .. }
    ));
    let (verdict, out) = rig.run_with(P1, &big(1401, true), HEADROOM, 0);
    assert!(
        matches!(verdict, Verdict::Transmit { port: P1, .. }),
        "{verdict:?}"
    );
    let (kind, src, dst, vlan, _) = icmp4(&out);
    assert_eq!(
        kind,
        Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 }
        )
    );
    assert_eq!((src, dst, vlan), ([10, 0, 0, 1], [10, 0, 0, 10], 100));
    assert_eq!(
        rig.dropped(P1, &big(1401, false)),
        DropReason::FragmentationNeeded
    );
    // The network's MTU, when smaller, wins; it also holds toward VLANs
    // of a port without one.
    config.networks[0].mtu = Some(1300);
    let rig = Rig::new(&config);
    let (_, out) = rig.run_with(P1, &big(1301, true), HEADROOM, 0);
    let (kind, ..) = icmp4(&out);
    assert_eq!(
        kind,
        Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1300 }
        )
    );
}

fn garp(mac: MacAddress, vlan: u16, addr: [u8; 4]) -> Vec<u8> {
    arp(
        mac,
        BROADCAST,
        Some(vlan),
        etherparse::ArpOperation::REQUEST,
        mac,
        addr,
        [0; 6],
        addr,
    )
}

#[test]
fn an_allowed_address_pair_is_routed_to_whoever_last_sent_from_it() {
    let config = config();
    let rig = Rig::new(&config);
    let vip = ip("10.0.0.100");
    assert_eq!(
        rig.tables.address_pair_holder("ns/net1", vip),
        Some("ns/vmi-a"),
        "before anyone sent from it: the first in key order"
    );
    let to_vip = udp4(MAC_B, GW, Some(200), [10, 0, 1, 20], [10, 0, 0, 100], 64);
    let (verdict, out) = rig.run(P1, &to_vip);
    assert_eq!(
        verdict,
        Verdict::Transmit {
            port: P1,
            offset: HEADROOM,
            len: to_vip.len(),
            vmi: rig.tables.vmi_id("ns/vmi-a")
        }
    );
    assert_eq!(&out[0..6], &MAC_A);
    // vmi-f becomes VRRP master: its gratuitous ARP moves the address.
    let (verdict, _) = rig.run(P1, &garp(MAC_F, 600, [10, 0, 0, 100]));
    assert!(matches!(verdict, Verdict::Flood(_)), "{verdict:?}");
    assert_eq!(
        rig.tables.address_pair_holder("ns/net1", vip),
        Some("ns/vmi-f")
    );
    let (verdict, out) = rig.run(P1, &to_vip);
    let Verdict::Transmit { vmi, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(vmi, rig.tables.vmi_id("ns/vmi-f"));
    assert_eq!(&out[0..6], &MAC_F);
    assert_eq!(&out[14..16], &600u16.to_be_bytes(), "vmi-f's VLAN");
    // Traffic from the address moves it back; a spoofer moves nothing.
    let from_vip = udp4(MAC_A, GW, Some(100), [10, 0, 0, 100], [10, 0, 1, 20], 64);
    assert!(matches!(rig.run(P1, &from_vip).0, Verdict::Transmit { .. }));
    assert_eq!(
        rig.tables.address_pair_holder("ns/net1", vip),
        Some("ns/vmi-a")
    );
    let spoofed = garp(MAC_B, 200, [10, 0, 0, 100]);
    assert_eq!(rig.dropped(P1, &spoofed), DropReason::SourceIpSpoofed);
    assert_eq!(
        rig.tables.address_pair_holder("ns/net1", vip),
        Some("ns/vmi-a")
    );
    // An ARP for the address from elsewhere is proxied like any route.
    let who_has = arp_request(MAC_B, Some(200), [10, 0, 1, 20], [10, 0, 0, 100]);
    assert!(matches!(rig.run(P1, &who_has).0, Verdict::Transmit { .. }));
    // A recompilation keeps what was learnt.
    rig.run(P1, &garp(MAC_F, 600, [10, 0, 0, 100]));
    let (again, _) = Tables::recompile(&config, &rig.tables);
    assert_eq!(again.address_pair_holder("ns/net1", vip), Some("ns/vmi-f"));
    assert!(
        again
            .dump()
            .contains("  route 10.0.0.100/32 address pair ns/vmi-a ns/vmi-f"),
        "{}",
        again.dump()
    );
}

#[test]
fn a_relay_network_sends_requests_to_its_server_and_replies_back_to_the_client() {
    let mut config = config();
    // vmi-b (10.0.1.20, VLAN 200) runs the network's DHCP server.
    config.networks[0].dhcp.mode = DhcpMode::Relay(Ipv4Addr::new(10, 0, 1, 20));
    let rig = Rig::new(&config);
    let (verdict, out) = rig.run_with(P1, &discover(MAC_A), HEADROOM, 512);
    assert_eq!(
        verdict,
        Verdict::Transmit {
            port: P1,
            offset: HEADROOM,
            len: out.len(),
            vmi: rig.tables.vmi_id("ns/vmi-b")
        }
    );
    let sliced = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &sliced.link else {
        panic!()
    };
    assert_eq!((eth.destination(), eth.source()), (MAC_B, GW));
    let Some(etherparse::VlanSlice::SingleVlan(tag)) = sliced.vlan() else {
        panic!()
    };
    assert_eq!(tag.vlan_identifier().value(), 200);
    let Some(NetSlice::Ipv4(ipv4)) = &sliced.net else {
        panic!()
    };
    assert_eq!(
        (
            ipv4.header().source_addr(),
            ipv4.header().destination_addr()
        ),
        (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 1, 20)),
        "from the client's subnet gateway to the server"
    );
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        panic!()
    };
    assert_eq!((udp.source_port(), udp.destination_port()), (67, 67));
    let expected = etherparse::UdpHeader::with_ipv4_checksum(
        67,
        67,
        &ipv4.header().to_header(),
        udp.payload(),
    )
    .unwrap();
    assert_eq!(udp.checksum(), expected.checksum);
    let relayed = v4::Message::decode(&mut Decoder::new(udp.payload())).unwrap();
    assert_eq!(relayed.giaddr(), Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(relayed.hops(), 1);
    assert_eq!(relayed.xid(), 0x0bad_cafe);

    // The server's offer, to the gateway address.
    let mut offer = v4::Message::new(
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(10, 0, 0, 10),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::new(10, 0, 0, 1),
        &MAC_A,
    );
    offer.set_opcode(v4::Opcode::BootReply);
    offer.set_xid(0x0bad_cafe);
    offer.set_hops(1);
    offer
        .opts_mut()
        .insert(v4::DhcpOption::MessageType(v4::MessageType::Offer));
    let mut payload = Vec::new();
    offer.encode(&mut Encoder::new(&mut payload)).unwrap();
    let reply = udp_frame(
        MAC_B,
        GW,
        200,
        ip("10.0.1.20"),
        ip("10.0.0.1"),
        (67, 67),
        &payload,
    );
    let (verdict, out) = rig.run_with(P1, &reply, HEADROOM, 0);
    let Verdict::Transmit { port, vmi, .. } = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!((port, vmi), (P1, rig.tables.vmi_id("ns/vmi-a")));
    let (eth_dst, vlan, src, dst, msg) = dhcp4_reply(&out);
    assert_eq!((eth_dst, vlan), (MAC_A, 100));
    assert_eq!(
        (src, dst),
        (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 10)),
        "unicast to the offered address (no broadcast flag)"
    );
    assert_eq!(msg.yiaddr(), Ipv4Addr::new(10, 0, 0, 10));

    // A reply for a client this node does not have, or a request that
    // crossed too many relays: nothing to do.
    let mut stranger = offer.clone();
    stranger.set_chaddr(&[2, 9, 9, 9, 9, 9]);
    let mut payload = Vec::new();
    stranger.encode(&mut Encoder::new(&mut payload)).unwrap();
    let frame = udp_frame(
        MAC_B,
        GW,
        200,
        ip("10.0.1.20"),
        ip("10.0.0.1"),
        (67, 67),
        &payload,
    );
    assert_eq!(rig.dropped(P1, &frame), DropReason::DhcpIgnored);
    let mut looping = client_message(MAC_A, v4::MessageType::Discover);
    looping.set_hops(16);
    let frame = dhcp4(
        MAC_A,
        100,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        BROADCAST,
        &looping,
    );
    assert_eq!(rig.dropped(P1, &frame), DropReason::DhcpIgnored);
    // DHCPv6 is not relayed: bridged, as without a server; and router
    // advertisements do not send hosts to DHCPv6.
    let (verdict, _) = rig.run_with(
        P1,
        &dhcp6(MAC_6, 500, &{
            let mut m = v6::Message::new_with_id(v6::MessageType::Solicit, [1, 2, 3]);
            m.opts_mut().insert(v6::DhcpOption::ClientId(vec![
                0, 3, 0, 1, 2, 0, 0, 0, 0, 0x66,
            ]));
            m
        }),
        HEADROOM,
        512,
    );
    assert!(matches!(verdict, Verdict::Flood(_)), "{verdict:?}");
}
