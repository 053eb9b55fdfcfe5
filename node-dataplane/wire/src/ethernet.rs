//! Ethernet II frames: destination, source, EtherType, payload.
//!
//! ```text
//!  0                   6                   12      14
//!  +-------------------+-------------------+-------+-----------
//!  |  destination MAC  |    source MAC     | type  | payload ...
//!  +-------------------+-------------------+-------+-----------
//! ```
//!
//! The frame check sequence is not part of the view: NICs strip it.

use crate::{Error, EthernetAddress, Result, read_u16, write_u16};

enum_with_unknown! {
    /// The EtherType field of an Ethernet II header (or of an 802.1Q tag).
    pub enum EtherType(u16) {
        /// IPv4.
        Ipv4 = 0x0800,
        /// ARP.
        Arp = 0x0806,
        /// An IEEE 802.1Q VLAN tag follows (the customer TPID).
        Vlan = 0x8100,
        /// IPv6.
        Ipv6 = 0x86dd,
        /// An IEEE 802.1ad service tag follows (Q-in-Q), not handled here.
        QinQ = 0x88a8,
    }
}

mod field {
    use core::ops::{Range, RangeFrom};

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// The length of an Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// The length of both MAC addresses: what moves when a tag is pushed or popped.
pub const ADDRESSES_LEN: usize = field::SOURCE.end;

/// A read/write view over an Ethernet II frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wrap a buffer without checking its length; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wrap a buffer after checking it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Check that the buffer holds a whole header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The length of a frame with a payload of `payload_len` bytes.
    pub const fn buffer_len(payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The EtherType.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// The payload, borrowed for the lifetime of the buffer.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Set the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&value.0)
    }

    /// Set the source address.
    #[inline]
    pub fn set_src_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&value.0)
    }

    /// Set the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, value.into())
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// The validated contents of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The source address.
    pub src_addr: EthernetAddress,
    /// The destination address.
    pub dst_addr: EthernetAddress,
    /// The EtherType.
    pub ethertype: EtherType,
}

impl Repr {
    /// Parse a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Repr> {
        frame.check_len()?;
        Ok(Repr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// The length of the header this emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header into a frame.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_src_addr(self.src_addr);
        frame.set_dst_addr(self.dst_addr);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FRAME_BYTES: [u8; 18] = [
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, //
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, //
        0x08, 0x00, //
        0xaa, 0x00, 0x00, 0xff,
    ];

    #[test]
    fn deconstruct() {
        let frame = Frame::new_checked(&FRAME_BYTES[..]).unwrap();
        assert_eq!(frame.dst_addr(), EthernetAddress([1, 2, 3, 4, 5, 6]));
        assert_eq!(
            frame.src_addr(),
            EthernetAddress([0x11, 0x12, 0x13, 0x14, 0x15, 0x16])
        );
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        assert_eq!(frame.payload(), &[0xaa, 0x00, 0x00, 0xff]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 18];
        let mut frame = Frame::new_unchecked(&mut bytes[..]);
        frame.set_dst_addr(EthernetAddress([1, 2, 3, 4, 5, 6]));
        frame.set_src_addr(EthernetAddress([0x11, 0x12, 0x13, 0x14, 0x15, 0x16]));
        frame.set_ethertype(EtherType::Ipv4);
        frame
            .payload_mut()
            .copy_from_slice(&[0xaa, 0x00, 0x00, 0xff]);
        assert_eq!(bytes, FRAME_BYTES);
    }

    #[test]
    fn repr_round_trip() {
        let frame = Frame::new_checked(&FRAME_BYTES[..]).unwrap();
        let repr = Repr::parse(&frame).unwrap();
        let mut bytes = FRAME_BYTES;
        bytes[..14].fill(0);
        repr.emit(&mut Frame::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, FRAME_BYTES);
    }

    #[test]
    fn truncated() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Frame::new_checked(&FRAME_BYTES[..len]).unwrap_err(),
                Error::Truncated
            );
        }
    }

    #[test]
    fn cross_check_with_etherparse() {
        let builder =
            etherparse::PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, 1], [0x02, 0, 0, 0, 0, 2])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .udp(1000, 2000);
        let payload = [1u8, 2, 3];
        let mut bytes = Vec::new();
        builder.write(&mut bytes, &payload).unwrap();
        let frame = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!(frame.src_addr(), EthernetAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(frame.dst_addr(), EthernetAddress([2, 0, 0, 0, 0, 2]));
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        assert_eq!(frame.payload().len(), 20 + 8 + 3);

        // And the other way: what we emit, etherparse reads.
        let mut out = [0u8; 14];
        Repr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 3]),
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EtherType::Arp,
        }
        .emit(&mut Frame::new_unchecked(&mut out[..]));
        let (header, _) = etherparse::Ethernet2Header::from_slice(&out).unwrap();
        assert_eq!(header.source, [2, 0, 0, 0, 0, 3]);
        assert_eq!(header.destination, [0xff; 6]);
        assert_eq!(header.ether_type, etherparse::EtherType::ARP);
    }
}
