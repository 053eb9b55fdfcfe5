#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets, one valid input per path the
pipeline takes (see src/lib.rs for the node they run on):

  corpus/pipeline/seed-*                  selector byte + frame (pipeline target)
  ../../wire/fuzz/corpus/wire_views/seed-*  the frame alone, plus tunnel payloads

Selector: ingress port in bits 0-2 (0 P1, 1 P2, 2 fabric, 3 vgw tap,
4 unknown), headroom in bits 3-4 (0: the full headroom).
Run it after changing the node or adding a path; commit what it writes."""
import ipaddress
import os
import struct

P1, P2, FABRIC, VGW, UNKNOWN = 0, 1, 2, 3, 4
GW = bytes([0, 0, 0x5E, 0, 1, 0])
BCAST = b"\xff" * 6


def mac(last):
    return bytes([2, 0, 0, 0, 0, last])


A, B, C, E, U, R, X, PEER, S, F = (mac(v) for v in (0x0A, 0x0B, 0x0C, 0x0E, 0x1E, 0x2E, 0x3E, 0x99,
                                                     0x0F, 0x1F))
FABRIC_MAC = bytes([2, 0xFA, 0, 0, 0, 1])
NEXT_HOP = bytes([2, 0xFA, 0, 0, 0, 2])
UNDERLAY, NODE_B, XVTEP = "192.168.100.1", "192.168.100.2", "192.168.100.50"
NET1_VNI, NET1_LABEL, LABEL_A = 5001, 100, 101
# North-south (see warm_up in src/lib.rs: the flows every input finds).
DCGW, OUTSIDE, LABEL_S = "192.168.100.200", "198.51.100.7", 104
SNAT_TCP_PORT, SNAT_ECHO_ID = 61000, 61001


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(dst, src, vlan, ethertype, outer_tpid=0x8100):
    if vlan is None:
        return dst + src + struct.pack("!H", ethertype)
    return dst + src + struct.pack("!HHH", outer_tpid, vlan, ethertype)


def ipv4(src, dst, proto, payload, ttl=64):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, ttl, proto, 0,
                      ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def ipv6(src, dst, nh, payload, hop=64):
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, hop) + s + d + payload


def icmp6(src, dst, msg):
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    pseudo = s + d + struct.pack("!IxxxB", len(msg), 58)
    c = csum(pseudo + msg)
    return msg[:2] + struct.pack("!H", c) + msg[4:]


def udp(payload=b"seed", sport=40000, dport=53):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def udp6(src, dst, payload, sport, dport):
    """UDP over IPv6, with its (mandatory) checksum."""
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    pseudo = ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed \
        + struct.pack("!IxxxB", len(seg), 17)
    return seg[:6] + struct.pack("!H", csum(pseudo + seg)) + seg[8:]


def dhcp_discover(chaddr):
    """A DHCPDISCOVER padded to the BOOTP minimum."""
    msg = struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 0, 0x3903F326, 0, 0, bytes(4), bytes(4),
                      bytes(4), bytes(4)) + chaddr + bytes(10) + bytes(192) \
        + bytes([99, 130, 83, 99, 53, 1, 1, 255])
    return msg + bytes(300 - len(msg))


def dhcpv6_solicit(duid_mac):
    """A SOLICIT with a client DUID-LL and an IA_NA."""
    duid = struct.pack("!HH", 3, 1) + duid_mac
    return bytes([1, 0x12, 0x34, 0x56]) + struct.pack("!HH", 1, len(duid)) + duid \
        + struct.pack("!HHIII", 3, 12, 1, 0, 0)


def tcp(src, dst, sport, dport, flags=0x02):
    """A TCP segment without options, with its checksum."""
    seg = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 64240, 0, 0)
    pseudo = ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed \
        + struct.pack("!xBH", 6, len(seg))
    return seg[:16] + struct.pack("!H", csum(pseudo + seg)) + seg[18:]


def icmp4(msg_type, code, rest, body):
    msg = struct.pack("!BBH", msg_type, code, 0) + rest + body
    return msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]


def ping4():
    msg = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + b"abcdefgh"
    return msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]


def arp(sha, spa, tpa):
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + sha + ipaddress.IPv4Address(spa).packed \
        + bytes(6) + ipaddress.IPv4Address(tpa).packed


def tunnel(peer, dport, payload):
    """A tunnel packet from `peer` to this node's underlay address."""
    return eth(FABRIC_MAC, NEXT_HOP, None, 0x0800) + ipv4(peer, UNDERLAY, 17, udp(payload, 50000, dport))


def mpls(label, inner):
    return struct.pack("!I", (label << 12) | 0x100 | 64) + inner


def vxlan(vni, inner):
    return struct.pack("!II", 0x08000000, vni << 8) + inner


routed_to_a = ipv4("10.0.0.60", "10.0.0.10", 17, udp(), ttl=63)
bridged_to_b = eth(B, R, None, 0x0800) + ipv4("10.0.0.60", "10.0.1.20", 17, udp())
from_xvtep = eth(B, X, None, 0x0800) + ipv4("10.0.0.70", "10.0.1.20", 17, udp())

seeds = {
    "routed-v4": (P1, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "10.0.1.20", 17, udp())),
    "to-vgw": (P1, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "8.8.8.8", 17, udp())),
    "discarded": (P1, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "192.0.2.9", 17, udp())),
    "from-vgw": (VGW, eth(GW, PEER, None, 0x0800) + ipv4("8.8.8.8", "10.0.1.20", 17, udp())),
    "untagged": (P2, eth(GW, U, None, 0x0800) + ipv4("10.0.0.50", "10.0.0.10", 17, udp())),
    "arp": (P1, eth(BCAST, A, 100, 0x0806) + arp(A, "10.0.0.10", "10.0.0.1")),
    "arp-flooded": (P1, eth(BCAST, E, 400, 0x0806) + arp(E, "10.3.0.10", "10.3.0.99")),
    "l2-unknown-unicast": (P1, eth(mac(0x77), E, 400, 0x0800) + ipv4("10.3.0.10", "10.3.0.77", 17, udp())),
    "ping4": (P1, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "10.0.0.1", 1, ping4())),
    "ttl-expired": (P1, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "10.0.1.20", 17, udp(), ttl=1)),
    "ping6": (P1, eth(GW, A, 100, 0x86DD) + ipv6("fd00::a", "fd00::1", 58, icmp6(
        "fd00::a", "fd00::1", struct.pack("!BBHHH", 128, 0, 0, 1, 1) + b"abcd"))),
    "ns": (P1, eth(bytes([0x33, 0x33, 0xFF, 0, 0, 1]), A, 100, 0x86DD) + ipv6(
        "fd00::a", "ff02::1:ff00:1", 58, icmp6("fd00::a", "ff02::1:ff00:1", struct.pack(
            "!BBHI", 135, 0, 0, 0) + ipaddress.IPv6Address("fd00::1").packed + b"\x01\x01" + A),
        hop=255)),
    "bridged": (P1, eth(B, A, 100, 0x0800) + ipv4("10.0.0.10", "10.0.1.20", 17, udp())),
    "to-remote-vmi": (P1, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "10.0.0.60", 17, udp())),
    "to-remote-vmi-v6": (P1, eth(GW, A, 100, 0x86DD) + ipv6("fd00::a", "fd00::60", 17, udp())),
    "bridged-to-remote": (P1, eth(R, A, 100, 0x0800) + ipv4("10.0.0.10", "10.0.0.60", 17, udp())),
    "to-xvtep-endpoint": (P1, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "10.0.0.70", 17, udp())),
    "l3-to-peer": (P1, eth(GW, C, 300, 0x0800) + ipv4("10.2.0.10", "8.8.4.4", 17, udp())),
    "too-big-for-the-tunnel": (P1, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "10.0.0.60", 17, udp(b"x" * 1460))),
    "qinq": (P1, eth(GW, A, 100, 0x0800, outer_tpid=0x88A8) + ipv4("10.0.0.10", "10.0.1.20", 17, udp())),
    "double-tagged": (P1, eth(GW, A, 100, 0x8100) + struct.pack("!HH", 200, 0x0800)
                      + ipv4("10.0.0.10", "10.0.1.20", 17, udp())),
    "fabric-not-a-tunnel": (FABRIC, eth(FABRIC_MAC, NEXT_HOP, None, 0x0800)
                            + ipv4("192.168.100.9", UNDERLAY, 6, b"\0" * 20)),
    "mpls-routed": (FABRIC, tunnel(NODE_B, 6635, mpls(LABEL_A, routed_to_a))),
    "mpls-bridged": (FABRIC, tunnel(NODE_B, 6635, mpls(NET1_LABEL, bridged_to_b))),
    "mpls-unknown-label": (FABRIC, tunnel(NODE_B, 6635, mpls(999, routed_to_a))),
    "vxlan": (FABRIC, tunnel(XVTEP, 4789, vxlan(NET1_VNI, from_xvtep))),
    "vxlan-flooded": (FABRIC, tunnel(NODE_B, 4789, vxlan(NET1_VNI, eth(BCAST, R, None, 0x0806)
                                                           + arp(R, "10.0.0.60", "10.0.0.99")))),
    "vxlan-unknown-peer": (FABRIC, tunnel("192.168.100.77", 4789, vxlan(NET1_VNI, from_xvtep))),
    # What an instance does in its first minute (selector 0x20: 64 bytes of
    # tailroom, for answers longer than the question).
    "dhcp-discover": (P1 | 0x20, eth(BCAST, A, 100, 0x0800) + ipv4(
        "0.0.0.0", "255.255.255.255", 17, udp(dhcp_discover(A), 68, 67))),
    "dhcpv6-solicit": (P1 | 0x20, eth(bytes([0x33, 0x33, 0, 1, 0, 2]), A, 100, 0x86DD) + ipv6(
        "fe80::a", "ff02::1:2", 17, udp6("fe80::a", "ff02::1:2", dhcpv6_solicit(A), 546, 547), hop=1)),
    "router-solicit": (P1 | 0x20, eth(bytes([0x33, 0x33, 0, 0, 0, 2]), A, 100, 0x86DD) + ipv6(
        "fe80::a", "ff02::2", 58, icmp6("fe80::a", "ff02::2", struct.pack("!BBHI", 133, 0, 0, 0)
                                        + b"\x01\x01" + A), hop=255)),
    "too-big-for-the-port": (P1, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "10.0.0.50", 17, udp(b"x" * 1380))),
    "to-address-pair": (P1, eth(GW, B, 200, 0x0800) + ipv4("10.0.1.20", "10.0.0.100", 17, udp())),
    "unknown-port": (UNKNOWN, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "10.0.1.20", 17, udp())),
}
# North-south: out by SNAT, the return of a warm-up flow and an ICMP error
# about it, IP fabric forwarding both ways, a DC gateway both ways, and a
# stranger on a SNAT port.
to_outside = tcp("10.4.0.10", OUTSIDE, 40000, 443)
quoted = ipv4(UNDERLAY, OUTSIDE, 6, tcp(UNDERLAY, OUTSIDE, SNAT_TCP_PORT, 80))[:28]
seeds.update({
    "snat-out": (P1, eth(GW, S, 500, 0x0800) + ipv4("10.4.0.10", OUTSIDE, 6, to_outside)),
    "snat-return": (FABRIC, eth(FABRIC_MAC, NEXT_HOP, None, 0x0800) + ipv4(
        OUTSIDE, UNDERLAY, 6, tcp(OUTSIDE, UNDERLAY, 80, SNAT_TCP_PORT, flags=0x12))),
    "snat-echo-reply": (FABRIC, eth(FABRIC_MAC, NEXT_HOP, None, 0x0800) + ipv4(
        OUTSIDE, UNDERLAY, 1, icmp4(0, 0, struct.pack("!HH", SNAT_ECHO_ID, 1), b"warm-up!"))),
    "snat-icmp-error": (FABRIC, eth(FABRIC_MAC, NEXT_HOP, None, 0x0800) + ipv4(
        OUTSIDE, UNDERLAY, 1, icmp4(3, 3, bytes(4), quoted))),
    "snat-no-flow": (FABRIC, eth(FABRIC_MAC, NEXT_HOP, None, 0x0800) + ipv4(
        OUTSIDE, UNDERLAY, 6, tcp(OUTSIDE, UNDERLAY, 80, 65000, flags=0x12))),
    "ip-fabric-out": (P1, eth(GW, F, 600, 0x0800) + ipv4("10.5.0.10", OUTSIDE, 17, udp())),
    "ip-fabric-in": (FABRIC, eth(FABRIC_MAC, NEXT_HOP, None, 0x0800)
                     + ipv4(OUTSIDE, "10.5.0.10", 17, udp())),
    "to-dc-gateway": (P1, eth(GW, S, 500, 0x0800) + ipv4("10.4.0.10", "203.0.113.5", 17, udp())),
    "from-dc-gateway": (FABRIC, tunnel(DCGW, 6635, mpls(LABEL_S, ipv4(
        "203.0.113.5", "10.4.0.10", 17, udp(), ttl=63)))),
})
# The wire views also get the tunnels' inner layers on their own.
wire_only = {
    "udp": udp(),
    "mpls-entry": mpls(LABEL_A, routed_to_a),
    "vxlan-header": vxlan(NET1_VNI, from_xvtep),
    "ipv4-in-tunnel": routed_to_a,
}

here = os.path.dirname(os.path.abspath(__file__))
pipeline_dir = os.path.join(here, "corpus", "pipeline")
wire_dir = os.path.join(here, "..", "..", "wire", "fuzz", "corpus", "wire_views")
for d in (pipeline_dir, wire_dir):
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        if name.startswith("seed-"):
            os.remove(os.path.join(d, name))
for name, (selector, frame) in seeds.items():
    with open(os.path.join(pipeline_dir, f"seed-{name}"), "wb") as f:
        f.write(bytes([selector]) + frame)
    with open(os.path.join(wire_dir, f"seed-{name}"), "wb") as f:
        f.write(frame)
for name, data in wire_only.items():
    with open(os.path.join(wire_dir, f"seed-{name}"), "wb") as f:
        f.write(data)
print(f"{len(seeds)} pipeline seeds, {len(seeds) + len(wire_only)} wire seeds")
