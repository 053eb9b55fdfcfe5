//! UDP headers (RFC 768): the transport of both overlay encapsulations
//! (MPLS over UDP, RFC 7510; VXLAN, RFC 7348).
//!
//! ```text
//!  0               16              31
//!  +---------------+---------------+
//!  |  source port  |   dest port   |
//!  +---------------+---------------+
//!  |    length     |   checksum    |
//!  +---------------+---------------+
//!  |          payload ...          |
//! ```
//!
//! Over IPv4 a tunnel sends a zero checksum (RFC 7510 section 3, RFC 7348
//! section 5); over IPv6 a checksum is mandatory unless both ends agree to
//! zero (RFC 6935), and Linux VXLAN devices expect one by default, so the
//! IPv6 emitter computes it.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::{Error, IpProtocol, Result, checksum, read_u16, write_u16};

mod field {
    use core::ops::RangeFrom;

    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

/// The length of a UDP header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A read/write view over a UDP datagram.
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

    /// Check that the buffer holds the header, that the length field is at
    /// least the header, and that the buffer holds that many bytes (it may
    /// hold more: IP or Ethernet padding).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let declared = usize::from(self.len());
        if declared < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < declared {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// The destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field (header and payload).
    #[inline]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether the datagram has no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// The checksum field (zero: none, over IPv4).
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Whether the checksum is correct for an IPv4 pseudo-header (a zero
    /// checksum means "not computed" and is accepted).
    pub fn verify_checksum_v4(&self, src: &Ipv4Addr, dst: &Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        let pseudo = checksum::pseudo_header_v4(src, dst, IpProtocol::Udp.into(), self.len());
        checksum::combine(&[pseudo, checksum::data(datagram)]) == 0xffff
    }

    /// Whether the checksum is correct for an IPv6 pseudo-header (zero is
    /// accepted: RFC 6935 lets tunnels agree on it).
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        let pseudo =
            checksum::pseudo_header_v6(src, dst, IpProtocol::Udp.into(), u32::from(self.len()));
        checksum::combine(&[pseudo, checksum::data(datagram)]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload, up to the length field.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the source port.
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value)
    }

    /// Set the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value)
    }

    /// Set the length field.
    pub fn set_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value)
    }

    /// Set the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value)
    }

    /// Compute the checksum over an IPv6 pseudo-header and write it (the
    /// payload must be in place; a computed zero is sent as `0xffff`).
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let len = self.len();
        let datagram = &self.buffer.as_ref()[..usize::from(len)];
        let pseudo = checksum::pseudo_header_v6(src, dst, IpProtocol::Udp.into(), u32::from(len));
        let sum = !checksum::combine(&[pseudo, checksum::data(datagram)]);
        self.set_checksum(if sum == 0 { 0xffff } else { sum })
    }

    /// Compute the checksum over an IPv4 pseudo-header and write it.
    pub fn fill_checksum_v4(&mut self, src: &Ipv4Addr, dst: &Ipv4Addr) {
        self.set_checksum(0);
        let len = self.len();
        let datagram = &self.buffer.as_ref()[..usize::from(len)];
        let pseudo = checksum::pseudo_header_v4(src, dst, IpProtocol::Udp.into(), len);
        let sum = !checksum::combine(&[pseudo, checksum::data(datagram)]);
        self.set_checksum(if sum == 0 { 0xffff } else { sum })
    }

    /// The payload, mutably (up to the length field).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// A validated UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The source port.
    pub src_port: u16,
    /// The destination port.
    pub dst_port: u16,
    /// The payload length.
    pub payload_len: usize,
}

impl Repr {
    /// Parse a datagram (the checksum is the caller's to verify: it needs
    /// the IP addresses).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        })
    }

    /// The length of the header this emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header with a zero checksum (fill it afterwards with
    /// [`Packet::fill_checksum_v6`] when needed).
    ///
    /// # Panics
    /// Panics if the buffer is shorter than [`HEADER_LEN`] or the payload
    /// length does not fit the length field.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let len = u16::try_from(HEADER_LEN + self.payload_len).expect("payload too long for UDP");
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 49152 -> 4789, length 12, checksum 0, payload de ad be ef.
    static DATAGRAM: [u8; 12] = [
        0xc0, 0x00, 0x12, 0xb5, 0x00, 0x0c, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef,
    ];

    #[test]
    fn deconstruct_and_emit() {
        let packet = Packet::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(packet.src_port(), 49152);
        assert_eq!(packet.dst_port(), 4789);
        assert_eq!(packet.len(), 12);
        assert_eq!(packet.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.payload_len, 4);
        let mut out = [0u8; 12];
        let mut packet = Packet::new_unchecked(&mut out[..]);
        repr.emit(&mut packet);
        packet
            .payload_mut()
            .copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(out, DATAGRAM);
    }

    #[test]
    fn checked_rejects_bad_lengths() {
        for len in 0..DATAGRAM.len() {
            assert_eq!(
                Packet::new_checked(&DATAGRAM[..len]).unwrap_err(),
                Error::Truncated
            );
        }
        let mut bytes = DATAGRAM;
        bytes[5] = 7;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn checksums_cross_check_with_etherparse() {
        let payload = [1u8, 2, 3, 4, 5];
        let src4 = Ipv4Addr::new(10, 0, 0, 1);
        let dst4 = Ipv4Addr::new(10, 0, 0, 2);
        let mut bytes = Vec::new();
        etherparse::PacketBuilder::ipv4(src4.octets(), dst4.octets(), 64)
            .udp(1000, 6635)
            .write(&mut bytes, &payload)
            .unwrap();
        let udp = Packet::new_checked(&bytes[20..]).unwrap();
        assert!(udp.checksum() != 0);
        assert!(udp.verify_checksum_v4(&src4, &dst4));
        let mut copy = bytes[20..].to_vec();
        let mut ours = Packet::new_unchecked(&mut copy[..]);
        ours.fill_checksum_v4(&src4, &dst4);
        assert_eq!(ours.checksum(), udp.checksum());

        let src6: Ipv6Addr = "fd00::1".parse().unwrap();
        let dst6: Ipv6Addr = "fd00::2".parse().unwrap();
        let mut bytes = Vec::new();
        etherparse::PacketBuilder::ipv6(src6.octets(), dst6.octets(), 64)
            .udp(1000, 4789)
            .write(&mut bytes, &payload)
            .unwrap();
        let udp = Packet::new_checked(&bytes[40..]).unwrap();
        assert!(udp.verify_checksum_v6(&src6, &dst6));
        let mut copy = bytes[40..].to_vec();
        let mut ours = Packet::new_unchecked(&mut copy[..]);
        ours.fill_checksum_v6(&src6, &dst6);
        assert_eq!(ours.checksum(), udp.checksum());
        ours.set_checksum(ours.checksum() ^ 1);
        assert!(!Packet::new_unchecked(&copy[..]).verify_checksum_v6(&src6, &dst6));
    }
}
