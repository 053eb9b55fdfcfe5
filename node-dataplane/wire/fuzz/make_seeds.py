#!/usr/bin/env python3
"""Write the seed corpus of the frame_parser fuzz target: one valid frame
of each kind the pipeline handles, prefixed by the selector byte (ingress
port in the low 3 bits, headroom in the top 3)."""
import ipaddress
import os
import struct

GW = bytes([0, 0, 0x5E, 0, 1, 0])
A = bytes([2, 0, 0, 0, 0, 0x0A])
PEER = bytes([2, 0, 0, 0, 0, 0x99])


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(dst, src, vlan, ethertype):
    if vlan is None:
        return dst + src + struct.pack("!H", ethertype)
    return dst + src + struct.pack("!HHH", 0x8100, vlan, ethertype)


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


def udp(payload=b"seed"):
    return struct.pack("!HHHH", 40000, 53, 8 + len(payload), 0) + payload


def ping4():
    msg = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + b"abcdefgh"
    return msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]


def arp(sha, spa, tpa):
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + sha + ipaddress.IPv4Address(spa).packed \
        + bytes(6) + ipaddress.IPv4Address(tpa).packed


seeds = {
    "routed-v4": (0x80, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "10.0.0.20", 17, udp())),
    "to-vgw": (0x80, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "8.8.8.8", 17, udp())),
    "from-vgw": (0x84, eth(GW, PEER, None, 0x0800) + ipv4("8.8.8.8", "10.0.0.20", 17, udp())),
    "untagged": (0x80, eth(GW, bytes([2, 0, 0, 0, 0, 0x0C]), None, 0x0800)
                 + ipv4("10.0.0.30", "10.0.0.10", 17, udp())),
    "arp": (0x80, eth(b"\xff" * 6, A, 100, 0x0806) + arp(A, "10.0.0.10", "10.0.0.1")),
    "ping4": (0x80, eth(GW, A, 100, 0x0800) + ipv4("10.0.0.10", "10.0.0.1", 1, ping4())),
    "ping6": (0x80, eth(GW, A, 100, 0x86DD) + ipv6("fd00::a", "fd00::1", 58, icmp6(
        "fd00::a", "fd00::1", struct.pack("!BBHHH", 128, 0, 0, 1, 1) + b"abcd"))),
    "ns": (0x80, eth(bytes([0x33, 0x33, 0xFF, 0, 0, 1]), A, 100, 0x86DD) + ipv6(
        "fd00::a", "ff02::1:ff00:1", 58, icmp6("fd00::a", "ff02::1:ff00:1", struct.pack(
            "!BBHI", 135, 0, 0, 0) + ipaddress.IPv6Address("fd00::1").packed + b"\x01\x01" + A),
        hop=255)),
    "bridged": (0x80, eth(bytes([2, 0, 0, 0, 0, 0x0B]), A, 100, 0x0800)
                + ipv4("10.0.0.10", "10.0.0.20", 17, udp())),
    "fabric": (0x83, eth(GW, A, None, 0x0800) + ipv4("10.0.0.10", "10.0.0.20", 17, udp())),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "frame_parser")
os.makedirs(out, exist_ok=True)
for name, (selector, frame) in seeds.items():
    with open(os.path.join(out, f"seed-{name}"), "wb") as f:
        f.write(bytes([selector]) + frame)
print(f"{len(seeds)} seeds in {out}")
