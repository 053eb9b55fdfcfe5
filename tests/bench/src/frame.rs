//! The benchmark's traffic: one UDP flow from VMI 1 (VLAN 100 on port `in`)
//! to VMI 2 (VLAN 200 on port `out`) of one virtual network, and the frame
//! every device under test must turn it into.
//!
//! ```text
//!  generated:  dst 00:00:5e:00:01:00 (gateway)  src VMI 1  802.1Q 100  IPv4 192.168.1.10 -> .20 TTL 64  UDP
//!  forwarded:  dst VMI 2  src 00:00:5e:00:01:00 (gateway)  802.1Q 200  IPv4 192.168.1.10 -> .20 TTL 63  UDP
//! ```
//!
//! A frame's size is its length on the veth: Ethernet header, 802.1Q tag,
//! IPv4, UDP and payload (veth carries no FCS).
//!
//! The SNAT modes ((l), (m)) send the same frame to a host on the fabric
//! instead of VMI 2; what leaves the node's fabric port is untagged and
//! carries the node's underlay address as source (its source port is the
//! device's choice):
//!
//! ```text
//!  generated:   dst 00:00:5e:00:01:00  src VMI 1  802.1Q 100  IPv4 192.168.1.10 -> 10.10.0.253 TTL 64  UDP 1024+ -> 9+
//!  translated:  dst fabric host  src node A's fabric MAC  IPv4 10.10.0.1 -> 10.10.0.253 TTL 63  UDP any -> as sent
//! ```

use std::net::Ipv4Addr;

/// The gateway MAC of every virtual network (the original's VRRP MAC).
pub const GATEWAY_MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x00];
/// VMI 1, the sender.
pub const VMI1_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];
/// VMI 2, the receiver.
pub const VMI2_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x02, 0x01];
/// VMI 1's address.
pub const VMI1_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
/// VMI 2's address.
pub const VMI2_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 20);
/// The network's gateway address.
pub const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
/// The network's subnet, with its prefix length.
pub const SUBNET: &str = "192.168.1.0/24";
/// VLAN of VMI 1's logical interface on port `in`.
pub const IN_VLAN: u16 = 100;
/// VLAN of VMI 2's logical interface on port `out`.
pub const OUT_VLAN: u16 = 200;
/// TTL of generated frames; forwarded ones carry one less.
pub const TTL: u8 = 64;
/// Headers: Ethernet 14 + 802.1Q 4 + IPv4 20 + UDP 8.
pub const HEADERS: usize = 46;
/// The generator rewrites this many leading bytes of every frame.
pub const GENERATOR_HEAD: usize = 64;
/// The largest frame the benchmark sends.
pub const MAX_FRAME: usize = 1518;
/// The host on the fabric that the SNAT modes' instance sends to.
pub const FABRIC_HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 253);
/// The fabric host's MAC.
pub const FABRIC_HOST_MAC: [u8; 6] = [0x02, 0xfa, 0xb0, 0x00, 0x00, 0xfd];
/// Flows of the SNAT modes' established-flow runs: source ports 1024 to
/// 1024 + this - 1, one after the other.
pub const ESTABLISHED_FLOWS: u32 = 64;

/// How the generator varies the UDP ports of the frames it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flows {
    /// Every frame as built: one flow, 1024 -> 9.
    One,
    /// Source ports 1024, 1025, ... 1024 + n - 1 in turn, destination port
    /// 9: `n` flows, each seen again every `n` frames.
    Established(u32),
    /// Every frame a new flow: the destination port steps through
    /// 1024..61024 with every frame, the source port through 1024..61024
    /// each time the destination ports wrap (3.6 billion pairs, more than
    /// any run sends).
    New,
}

impl Flows {
    /// The generator's `flows` setting: 0 one flow, n > 0 that many
    /// established flows, `u32::MAX` a new flow per frame.
    pub fn generator_setting(self) -> u32 {
        match self {
            Flows::One => 0,
            Flows::Established(n) => n.clamp(1, u32::MAX - 1),
            Flows::New => u32::MAX,
        }
    }
}

/// A frame as the generator sends it, `len` bytes (64 to 1518).
pub fn ingress_frame(len: usize) -> Vec<u8> {
    build(
        len,
        GATEWAY_MAC,
        VMI1_MAC,
        Some(IN_VLAN),
        TTL,
        VMI1_IP,
        VMI2_IP,
    )
}

/// The frame a device under test must deliver for [`ingress_frame`]`(len)`.
pub fn egress_frame(len: usize) -> Vec<u8> {
    build(
        len,
        VMI2_MAC,
        GATEWAY_MAC,
        Some(OUT_VLAN),
        TTL - 1,
        VMI1_IP,
        VMI2_IP,
    )
}

/// A frame of the SNAT modes as the generator sends it: VMI 1 to the
/// fabric host, `len` bytes (64 to 1518).
pub fn snat_ingress_frame(len: usize) -> Vec<u8> {
    build(
        len,
        GATEWAY_MAC,
        VMI1_MAC,
        Some(IN_VLAN),
        TTL,
        VMI1_IP,
        FABRIC_HOST_IP,
    )
}

/// What leaves the node's fabric port for [`snat_ingress_frame`]`(len)`,
/// with the source port left as sent (the device picks its own): untagged,
/// so 4 bytes shorter, from node A's fabric MAC and underlay address.
pub fn snat_egress_frame(len: usize) -> Vec<u8> {
    build(
        len,
        FABRIC_HOST_MAC,
        crate::netns::FABRIC_MAC_A,
        None,
        TTL - 1,
        crate::netns::UNDERLAY_A,
        FABRIC_HOST_IP,
    )
}

fn build(
    len: usize,
    dst: [u8; 6],
    src: [u8; 6],
    vlan: Option<u16>,
    ttl: u8,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
) -> Vec<u8> {
    assert!(
        (GENERATOR_HEAD..=MAX_FRAME).contains(&len),
        "frame size {len} outside {GENERATOR_HEAD}..={MAX_FRAME}"
    );
    // The IP packet is the same tagged or not: an untagged frame is the
    // tagged one without its 4 tag bytes.
    let ip_len = (len - 18) as u16;
    let l2 = if vlan.is_some() { 18 } else { 14 };
    let mut f = vec![0u8; l2 + usize::from(ip_len)];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    if let Some(vlan) = vlan {
        f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        f[14..16].copy_from_slice(&vlan.to_be_bytes());
    }
    f[l2 - 2..l2].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[l2..l2 + 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = ttl;
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&src_ip.octets());
    ip[16..20].copy_from_slice(&dst_ip.octets());
    let checksum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    let udp = &mut f[l2 + 20..l2 + 28];
    udp[0..2].copy_from_slice(&1024u16.to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes()); // discard
    udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    // UDP checksum 0: none (IPv4). The payload is a counting pattern.
    for (i, b) in f[l2 + 28..].iter_mut().enumerate() {
        *b = i as u8;
    }
    f
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice, VlanSlice};

    fn check(frame: &[u8], len: usize, dst: [u8; 6], src: [u8; 6], vlan: u16, ttl: u8) {
        assert_eq!(frame.len(), len);
        let p = SlicedPacket::from_ethernet(frame).expect("parses");
        let eth = p
            .link
            .clone()
            .and_then(|l| l.to_header())
            .and_then(|h| h.ethernet2())
            .expect("ethernet II");
        assert_eq!(eth.destination, dst);
        assert_eq!(eth.source, src);
        match p.vlan().expect("tagged") {
            VlanSlice::SingleVlan(v) => assert_eq!(v.vlan_identifier().value(), vlan),
            other => panic!("{other:?}"),
        }
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!("not IPv4")
        };
        let header = ip.header().to_header();
        assert_eq!(header.time_to_live, ttl);
        assert_eq!(header.source, VMI1_IP.octets());
        assert_eq!(header.destination, VMI2_IP.octets());
        assert_eq!(header.header_checksum, header.calc_header_checksum());
        assert_eq!(usize::from(header.total_len), len - 18);
        let Some(TransportSlice::Udp(udp)) = p.transport else {
            panic!("not UDP")
        };
        assert_eq!(usize::from(udp.length()), len - 38);
        assert_eq!(udp.destination_port(), 9);
    }

    #[test]
    fn generated_frames_are_tagged_udp_from_vmi1_to_the_gateway() {
        for len in [64, 512, MAX_FRAME] {
            check(
                &ingress_frame(len),
                len,
                GATEWAY_MAC,
                VMI1_MAC,
                IN_VLAN,
                TTL,
            );
        }
    }

    #[test]
    fn forwarded_frames_are_retagged_rewritten_and_one_hop_older() {
        for len in [64, 512] {
            let out = egress_frame(len);
            check(&out, len, VMI2_MAC, GATEWAY_MAC, OUT_VLAN, TTL - 1);
            assert_eq!(
                out[HEADERS..],
                ingress_frame(len)[HEADERS..],
                "payload kept"
            );
        }
    }

    #[test]
    fn translated_frames_are_untagged_from_the_nodes_address_to_the_fabric_host() {
        for len in [64, 512] {
            let sent = snat_ingress_frame(len);
            let p = SlicedPacket::from_ethernet(&sent).expect("parses");
            let Some(NetSlice::Ipv4(ip)) = p.net else {
                panic!("not IPv4")
            };
            assert_eq!(ip.header().destination(), FABRIC_HOST_IP.octets());
            let out = snat_egress_frame(len);
            assert_eq!(out.len(), len - 4, "the tag is gone");
            let p = SlicedPacket::from_ethernet(&out).expect("parses");
            assert!(p.vlan().is_none());
            let Some(NetSlice::Ipv4(ip)) = p.net else {
                panic!("not IPv4")
            };
            let header = ip.header().to_header();
            assert_eq!(header.source, crate::netns::UNDERLAY_A.octets());
            assert_eq!(header.destination, FABRIC_HOST_IP.octets());
            assert_eq!(header.time_to_live, TTL - 1);
            assert_eq!(header.header_checksum, header.calc_header_checksum());
            assert_eq!(out[42..], sent[46..], "UDP and payload kept");
        }
    }

    #[test]
    fn flow_settings_of_the_generator() {
        assert_eq!(Flows::One.generator_setting(), 0);
        assert_eq!(Flows::Established(64).generator_setting(), 64);
        assert_eq!(Flows::New.generator_setting(), u32::MAX);
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn frames_shorter_than_the_generator_head_are_refused() {
        ingress_frame(60);
    }
}
