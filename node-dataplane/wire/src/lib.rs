//! Zero-copy views over the wire formats the fast path sees: Ethernet II,
//! 802.1Q, ARP (Ethernet/IPv4), IPv4, IPv6, ICMPv4, ICMPv6 with neighbour
//! discovery and router advertisements, the overlay's UDP, MPLS label and
//! VXLAN headers, and the DHCPv4 and DHCPv6 messages the gateway answers.
//!
//! The shape follows smoltcp's `wire` module. Every protocol module offers:
//!
//! - a view (`Frame<T>`, `Packet<T>`) over any buffer `T: AsRef<[u8]>`:
//!   `new_unchecked` wraps without looking, `new_checked` first verifies that
//!   the buffer is long enough for every accessor *and* for the lengths the
//!   header declares, so that after it no accessor can panic on untrusted
//!   bytes; setters exist when `T: AsMut<[u8]>` and write in place;
//! - the field byte ranges in a private `mod field`;
//! - where useful, a `Repr`: the validated high-level value with `parse`,
//!   `buffer_len` and `emit`.
//!
//! ```text
//!  Ethernet II --+-- 802.1Q tag --+
//!                +----------------+--+-- ARP (Ethernet/IPv4)
//!                                    +-- IPv4 -+-- ICMPv4 (echo)
//!                                    +-- IPv6 -+-- ICMPv6 (echo, NS/NA + options)
//!                                              +-- TCP (ports, flags: translation)
//!                                              +-- UDP -+- 6635: MPLS label -- IP | Ethernet
//!                                                       +- 4789: VXLAN ------- Ethernet
//!                                                       +- 67/68: DHCPv4, 546/547: DHCPv6
//! ```
//!
//! Beside the views, [`IpPrefix`] (module [`prefix`]) and the text form of
//! [`EthernetAddress`] are the address types every trunkline crate shares.
//!
//! The views never allocate, and nothing panics on malformed input reached
//! through `new_checked` or `Repr::parse`: those return a typed [`Error`].
//! Setters documented with a `# Panics` section are the exception: they are
//! for callers writing into buffers they sized themselves.

#![forbid(unsafe_code)]

use core::fmt;

#[macro_use]
mod macros;

pub mod arp;
pub mod checksum;
pub mod dhcpv4;
pub mod dhcpv6;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod mpls;
pub mod prefix;
pub mod tcp;
pub mod udp;
pub mod vlan;
pub mod vxlan;

pub use prefix::{IpPrefix, PrefixError};

/// Why a buffer could not be viewed or parsed as a given format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the header, or than a length the header declares.
    #[error("truncated: the buffer is shorter than the header or than a length it declares")]
    Truncated,
    /// A version, length or option field holds a value the format forbids.
    #[error("malformed: a version, length or option field holds a value the format forbids")]
    Malformed,
    /// The checksum does not match the contents.
    #[error("checksum mismatch")]
    Checksum,
    /// The bytes are valid but describe a variant this crate does not model
    /// (for example ARP over a hardware type other than Ethernet).
    #[error("unrecognized: a valid variant this crate does not model")]
    Unrecognized,
    /// The buffer has no room (headroom or tailroom) for the bytes to add.
    #[error("no room in the buffer for the bytes to add")]
    NoRoom,
}

/// The result type of this crate.
pub type Result<T> = core::result::Result<T, Error>;

/// A 48-bit Ethernet (MAC) address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// Build an address from a slice.
    ///
    /// # Panics
    /// Panics if `data` is not six bytes long; the views only call it on
    /// ranges of that length.
    #[inline]
    pub fn from_bytes(data: &[u8]) -> EthernetAddress {
        let mut bytes = [0u8; 6];
        bytes.copy_from_slice(data);
        EthernetAddress(bytes)
    }

    /// The six bytes of the address.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit is set (multicast, broadcast included).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (unicast) address.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Whether the locally administered bit is set.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// The Ethernet multicast address an IPv6 multicast address maps to
    /// (RFC 2464 section 7: `33:33` followed by the last four bytes).
    pub const fn from_ipv6_multicast(addr: &core::net::Ipv6Addr) -> EthernetAddress {
        let o = addr.octets();
        EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(bytes: [u8; 6]) -> Self {
        EthernetAddress(bytes)
    }
}

impl From<EthernetAddress> for [u8; 6] {
    fn from(addr: EthernetAddress) -> Self {
        addr.0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Why text is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error(
    "{0:?} is not a MAC address: use six two-digit hex octets separated by ':' or '-' (e.g. 02:00:00:00:01:01)"
)]
pub struct EthernetAddressError(pub String);

impl core::str::FromStr for EthernetAddress {
    type Err = EthernetAddressError;

    /// Reads six two-digit hex octets separated by `:` or `-` (one
    /// separator throughout), in any case: `02:AA:00:00:00:01` and
    /// `02-aa-00-00-00-01` are the same address.
    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        let error = || EthernetAddressError(s.to_owned());
        let bytes = s.as_bytes();
        if bytes.len() != 17 {
            return Err(error());
        }
        let separator = bytes[2];
        if separator != b':' && separator != b'-' {
            return Err(error());
        }
        let mut address = [0u8; 6];
        for (i, octet) in address.iter_mut().enumerate() {
            let at = i * 3;
            if i > 0 && bytes[at - 1] != separator {
                return Err(error());
            }
            let digit = |b: u8| (b as char).to_digit(16).ok_or_else(error);
            *octet = (digit(bytes[at])? * 16 + digit(bytes[at + 1])?) as u8;
        }
        Ok(EthernetAddress(address))
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

enum_with_unknown! {
    /// The IP protocol number (IPv4) or next header value (IPv6).
    pub enum IpProtocol(u8) {
        /// IPv6 hop-by-hop options.
        HopByHop = 0,
        /// ICMP for IPv4.
        Icmp = 1,
        /// TCP.
        Tcp = 6,
        /// UDP.
        Udp = 17,
        /// IPv6 routing header.
        Ipv6Route = 43,
        /// IPv6 fragment header.
        Ipv6Frag = 44,
        /// ICMP for IPv6.
        Icmpv6 = 58,
        /// No next header (IPv6).
        Ipv6NoNxt = 59,
        /// IPv6 destination options.
        Ipv6Opts = 60,
    }
}

/// Read a big-endian `u16` at `at`.
///
/// Callers pass offsets inside ranges `new_checked` verified.
#[inline(always)]
pub(crate) fn read_u16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

/// Write a big-endian `u16` at `at`.
#[inline(always)]
pub(crate) fn write_u16(data: &mut [u8], at: usize, value: u16) {
    data[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Read four bytes at `at` as an IPv4 address.
#[inline(always)]
pub(crate) fn read_ipv4(data: &[u8], at: usize) -> core::net::Ipv4Addr {
    core::net::Ipv4Addr::new(data[at], data[at + 1], data[at + 2], data[at + 3])
}

/// Read sixteen bytes at `at` as an IPv6 address.
#[inline(always)]
pub(crate) fn read_ipv6(data: &[u8], at: usize) -> core::net::Ipv6Addr {
    let mut octets = [0u8; 16];
    octets.copy_from_slice(&data[at..at + 16]);
    core::net::Ipv6Addr::from(octets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_address_classes() {
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        let a = EthernetAddress([0x02, 0, 0, 0, 0, 1]);
        assert!(a.is_unicast() && a.is_local() && !a.is_broadcast());
        assert_eq!(a.to_string(), "02:00:00:00:00:01");
        let m = EthernetAddress::from_ipv6_multicast(&"ff02::1:ff00:5".parse().unwrap());
        assert_eq!(m, EthernetAddress([0x33, 0x33, 0xff, 0, 0, 5]));
    }

    #[test]
    fn ethernet_address_text() {
        let a = EthernetAddress([0x02, 0xaa, 0xbb, 0x00, 0x01, 0x0f]);
        for text in [
            "02:aa:bb:00:01:0f",
            "02-AA-bb-00-01-0F",
            "02:AA:BB:00:01:0F",
        ] {
            assert_eq!(text.parse::<EthernetAddress>(), Ok(a), "{text}");
        }
        assert_eq!(a.to_string(), "02:aa:bb:00:01:0f");
        for bad in [
            "",
            "02:aa:bb:00:01",
            "02:aa:bb:00:01:0f:00",
            "02:aa:bb:00:01:zz",
            "02:aa-bb:00:01:0f",
            "2:aa:bb:00:01:0f0",
            "+2:aa:bb:00:01:0f",
            "02.aa.bb.00.01.0f",
        ] {
            assert_eq!(
                bad.parse::<EthernetAddress>(),
                Err(EthernetAddressError(bad.to_owned())),
                "{bad}"
            );
        }
        let message = EthernetAddressError("x".into()).to_string();
        assert!(message.contains("\"x\"") && message.contains("02:00:00:00:01:01"));
    }

    proptest::proptest! {
        /// Display and FromStr round-trip.
        #[test]
        fn ethernet_address_round_trip(bytes in proptest::array::uniform6(proptest::num::u8::ANY)) {
            let a = EthernetAddress(bytes);
            proptest::prop_assert_eq!(a.to_string().parse::<EthernetAddress>(), Ok(a));
            proptest::prop_assert_eq!(a.to_string().replace(':', "-").to_uppercase().parse::<EthernetAddress>(), Ok(a));
        }
    }

    proptest::proptest! {
        /// Every view accepted by `new_checked` can be read whole, and every
        /// `Repr::parse` returns instead of panicking, on arbitrary bytes.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let data = &bytes[..];
            if let Ok(frame) = ethernet::Frame::new_checked(data) {
                let _ = (frame.dst_addr(), frame.src_addr(), frame.ethertype(), frame.payload());
            }
            if let Ok(tag) = vlan::Packet::new_checked(data) {
                let _ = (tag.pcp(), tag.dei(), tag.vid(), tag.ethertype(), tag.payload());
                let _ = vlan::Repr::parse(&tag);
            }
            if let Ok(packet) = arp::Packet::new_checked(data) {
                let _ = (
                    packet.source_hardware_addr(),
                    packet.source_protocol_addr(),
                    packet.target_hardware_addr(),
                    packet.target_protocol_addr(),
                );
                let _ = arp::Repr::parse(&packet);
            }
            if let Ok(packet) = ipv4::Packet::new_checked(data) {
                let _ = (packet.payload(), packet.verify_checksum(), packet.frag_offset());
                let _ = ipv4::Repr::parse(&packet);
            }
            if let Ok(packet) = ipv6::Packet::new_checked(data) {
                let _ = (packet.payload(), packet.flow_label(), packet.traffic_class());
                let _ = ipv6::Repr::parse(&packet);
            }
            if let Ok(packet) = icmpv4::Packet::new_checked(data) {
                let _ = (packet.data(), packet.verify_checksum());
                let _ = icmpv4::Repr::parse(&packet);
            }
            if let Ok(packet) = icmpv6::Packet::new_checked(data) {
                let (src, dst) = (core::net::Ipv6Addr::LOCALHOST, core::net::Ipv6Addr::UNSPECIFIED);
                let _ = (packet.data(), packet.verify_checksum(&src, &dst));
                if packet.msg_type().is_neighbor_discovery() {
                    let _ = (packet.target_addr(), packet.options().len());
                    for option in icmpv6::NdiscOptions::new(packet.options()).flatten() {
                        let _ = option.link_layer_addr();
                    }
                }
                let _ = icmpv6::Repr::parse(&src, &dst, &packet);
            }
            if let Ok(packet) = udp::Packet::new_checked(data) {
                let _ = (packet.payload(), packet.src_port(), packet.dst_port());
                let _ = packet.verify_checksum_v4(&core::net::Ipv4Addr::LOCALHOST, &core::net::Ipv4Addr::UNSPECIFIED);
                let _ = udp::Repr::parse(&packet);
            }
            if let Ok(packet) = mpls::Packet::new_checked(data) {
                let _ = (packet.payload(), packet.label(), packet.ttl());
                let _ = mpls::Repr::parse(&packet);
            }
            if let Ok(packet) = vxlan::Packet::new_checked(data) {
                let _ = (packet.payload(), packet.vni());
                let _ = vxlan::Repr::parse(&packet);
            }
            let mut buf = bytes.clone();
            let len = buf.len();
            for offset in 0..len.min(8) {
                let _ = vlan::push_tag(&mut buf, offset, len - offset, 0x0064);
                let _ = vlan::pop_tag(&mut buf, offset, len - offset);
            }
        }
    }

    #[test]
    fn ip_protocol_round_trip() {
        assert_eq!(IpProtocol::from(58), IpProtocol::Icmpv6);
        assert_eq!(IpProtocol::from(200), IpProtocol::Unknown(200));
        assert_eq!(u8::from(IpProtocol::Unknown(200)), 200);
        assert_eq!(u8::from(IpProtocol::Udp), 17);
    }
}
