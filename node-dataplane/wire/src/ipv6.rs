//! IPv6 fixed headers (RFC 8200), and the address classes neighbour
//! discovery needs.
//!
//! ```text
//!  0       4               12                                      31
//!  +-------+---------------+---------------------------------------+
//!  |version| traffic class |              flow label               |
//!  +-------+---------------+-------+---------------+---------------+
//!  |         payload length        |  next header  |   hop limit   |
//!  +-------------------------------+---------------+---------------+
//!  |                   source address (16 bytes)                   |
//!  |                destination address (16 bytes)                 |
//!  +---------------------------------------------------------------+
//! ```
//!
//! Extension headers are not walked: the fast path routes on the fixed
//! header and only looks inside packets whose next header is ICMPv6.

use core::net::Ipv6Addr;

use crate::{Error, IpProtocol, Result, read_ipv6, read_u16, write_u16};

mod field {
    use core::ops::Range;

    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: usize = 4;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// The length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// The all-nodes link-local multicast address `ff02::1`.
pub const LINK_LOCAL_ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The solicited-node multicast address of `addr` (RFC 4291 2.7.1):
/// `ff02::1:ff00:0/104` with the low 24 bits of `addr`.
pub const fn solicited_node(addr: &Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        ((o[14] as u16) << 8) | o[15] as u16,
    )
}

/// Whether `addr` is a link-local unicast address (`fe80::/10`).
pub const fn is_link_local(addr: &Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// A read/write view over an IPv6 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check the version and that the buffer holds the header and the
    /// payload length it declares (it may be longer: Ethernet padding).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::Malformed);
        }
        if len < HEADER_LEN + usize::from(self.payload_len()) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field.
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW.start] >> 4
    }

    /// The traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let data = self.buffer.as_ref();
        (data[0] << 4) | (data[1] >> 4)
    }

    /// The flow label.
    #[inline]
    pub fn flow_label(&self) -> u32 {
        let data = self.buffer.as_ref();
        (u32::from(data[1] & 0x0f) << 16) | (u32::from(data[2]) << 8) | u32::from(data[3])
    }

    /// The payload length.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The next header.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// The hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        read_ipv6(self.buffer.as_ref(), field::SRC_ADDR.start)
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        read_ipv6(self.buffer.as_ref(), field::DST_ADDR.start)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload, up to the declared payload length.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &self.buffer.as_ref()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set version 6, the traffic class and the flow label.
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let word = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&word.to_be_bytes())
    }

    /// Set the payload length.
    pub fn set_payload_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value)
    }

    /// Set the next header.
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = value.into()
    }

    /// Set the hop limit.
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value
    }

    /// Decrement the hop limit (IPv6 has no header checksum). Returns the
    /// new value; zero is left as it is.
    pub fn decrement_hop_limit(&mut self) -> u8 {
        let hop_limit = self.hop_limit().saturating_sub(1);
        self.set_hop_limit(hop_limit);
        hop_limit
    }

    /// Set the source address.
    pub fn set_src_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets())
    }

    /// Set the destination address.
    pub fn set_dst_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets())
    }

    /// The payload, mutably, up to the declared payload length.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// A validated IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The source address.
    pub src_addr: Ipv6Addr,
    /// The destination address.
    pub dst_addr: Ipv6Addr,
    /// The next header.
    pub next_header: IpProtocol,
    /// The payload length.
    pub payload_len: usize,
    /// The hop limit.
    pub hop_limit: u8,
}

impl Repr {
    /// Parse a packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
        })
    }

    /// The length of the header this emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header (traffic class and flow label zero).
    ///
    /// # Panics
    /// Panics if the buffer is shorter than [`HEADER_LEN`] or the payload
    /// length does not fit the field.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_version_tc_flow(0, 0);
        packet.set_payload_len(u16::try_from(self.payload_len).expect("payload too long"));
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PACKET_BYTES: [u8; 44] = [
        0x60, 0x12, 0x34, 0x56, 0x00, 0x04, 0x3a, 0x40, //
        0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, //
        0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
        1, 2, 3, 4,
    ];

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.traffic_class(), 0x01);
        assert_eq!(packet.flow_label(), 0x23456);
        assert_eq!(packet.payload_len(), 4);
        assert_eq!(packet.next_header(), IpProtocol::Icmpv6);
        assert_eq!(packet.hop_limit(), 64);
        assert_eq!(packet.src_addr(), "fd00::5".parse::<Ipv6Addr>().unwrap());
        assert_eq!(packet.dst_addr(), "fd00::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(packet.payload(), &[1, 2, 3, 4]);
    }

    #[test]
    fn emit_and_parse() {
        let repr = Repr {
            src_addr: "fd00::5".parse().unwrap(),
            dst_addr: "fd00::1".parse().unwrap(),
            next_header: IpProtocol::Icmpv6,
            payload_len: 4,
            hop_limit: 64,
        };
        let mut bytes = [0u8; 44];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet);
        packet.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap(), repr);
        assert_eq!(&bytes[8..], &PACKET_BYTES[8..]);
    }

    #[test]
    fn checked_rejects_bad_lengths() {
        for len in 0..PACKET_BYTES.len() {
            assert_eq!(
                Packet::new_checked(&PACKET_BYTES[..len]).unwrap_err(),
                Error::Truncated
            );
        }
        let mut bytes = PACKET_BYTES;
        bytes[0] = 0x40;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn address_classes() {
        let addr: Ipv6Addr = "2001:db8::12:3456".parse().unwrap();
        assert_eq!(
            solicited_node(&addr),
            "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap()
        );
        assert!(is_link_local(&"fe80::1".parse().unwrap()));
        assert!(is_link_local(&"febf::1".parse().unwrap()));
        assert!(!is_link_local(&"fec0::1".parse().unwrap()));
    }

    #[test]
    fn hop_limit_decrement() {
        let mut bytes = PACKET_BYTES;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        assert_eq!(packet.decrement_hop_limit(), 63);
        packet.set_hop_limit(0);
        assert_eq!(packet.decrement_hop_limit(), 0);
    }

    #[test]
    fn cross_check_with_etherparse() {
        let src: [u8; 16] = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
        let dst: [u8; 16] = "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets();
        let mut bytes = Vec::new();
        etherparse::PacketBuilder::ipv6(src, dst, 33)
            .udp(1, 2)
            .write(&mut bytes, &[7; 10])
            .unwrap();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.hop_limit(), 33);
        assert_eq!(packet.next_header(), IpProtocol::Udp);
        assert_eq!(packet.payload().len(), 18);
        assert_eq!(packet.src_addr().octets(), src);

        let mut out = [0u8; HEADER_LEN];
        Repr {
            src_addr: Ipv6Addr::from(dst),
            dst_addr: Ipv6Addr::from(src),
            next_header: IpProtocol::Tcp,
            payload_len: 0,
            hop_limit: 9,
        }
        .emit(&mut Packet::new_unchecked(&mut out[..]));
        let (header, _) = etherparse::Ipv6Header::from_slice(&out).unwrap();
        assert_eq!(header.source, dst);
        assert_eq!(header.destination, src);
        assert_eq!(header.hop_limit, 9);
        assert_eq!(header.next_header, etherparse::IpNumber::TCP);
    }
}
