//! IEEE 802.1Q VLAN tags, and pushing or popping one in place.
//!
//! A tagged frame carries the TPID `0x8100` where an untagged frame has its
//! EtherType; the view here starts right after it, at the tag control
//! information (TCI):
//!
//! ```text
//!  Ethernet: dst(6) src(6) 0x8100 | TCI(2)            | EtherType(2) | payload
//!                                 | PCP:3 DEI:1 VID:12 |
//!                                 ^ this view starts here
//! ```
//!
//! [`push_tag`] and [`pop_tag`] add or remove a tag by moving only the 12
//! MAC address bytes into the headroom before the frame (or back), so the
//! payload is never copied: that is why the fast path keeps headroom in
//! front of every frame.

use crate::ethernet::{self, EtherType};
use crate::{Error, Result, read_u16, write_u16};

mod field {
    use core::ops::RangeFrom;

    pub const TCI: usize = 0;
    pub const ETHERTYPE: usize = 2;
    pub const PAYLOAD: RangeFrom<usize> = 4..;
}

/// The length of a tag (TCI and inner EtherType), which is also what a
/// tagged frame adds to an untagged one.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// The largest valid VLAN id; 4095 is reserved.
pub const MAX_VID: u16 = 4094;

/// A read/write view over an 802.1Q tag and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer after checking it holds a whole tag.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the buffer holds a whole tag.
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

    /// The whole tag control information.
    #[inline]
    pub fn tci(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TCI)
    }

    /// The priority code point (802.1p class of service).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// The drop eligible indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// The VLAN identifier (0 means a priority-only tag).
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The EtherType of what follows the tag.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// What follows the tag.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the whole tag control information.
    #[inline]
    pub fn set_tci(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::TCI, value)
    }

    /// Set the VLAN identifier, keeping the priority and DEI bits.
    #[inline]
    pub fn set_vid(&mut self, vid: u16) {
        let tci = (self.tci() & 0xf000) | (vid & 0x0fff);
        self.set_tci(tci)
    }

    /// Set the EtherType of what follows the tag.
    #[inline]
    pub fn set_ethertype(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, value.into())
    }

    /// What follows the tag, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// The validated contents of an 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095.
    pub vid: u16,
    /// The EtherType of what follows.
    pub ethertype: EtherType,
}

impl Repr {
    /// Parse a tag.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            pcp: packet.pcp(),
            dei: packet.dei(),
            vid: packet.vid(),
            ethertype: packet.ethertype(),
        })
    }

    /// The tag control information this represents.
    pub const fn tci(&self) -> u16 {
        ((self.pcp as u16 & 0x7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }

    /// The length of the tag this emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the tag.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_tci(self.tci());
        packet.set_ethertype(self.ethertype);
    }
}

/// Insert an 802.1Q tag with `tci` into the Ethernet frame at
/// `buf[offset..offset + len]`, moving its two MAC addresses four bytes into
/// the headroom. Returns the new offset; the frame is then `len + 4` long.
///
/// Fails with [`Error::NoRoom`] when fewer than four bytes of headroom
/// exist, and with [`Error::Truncated`] when the frame has no whole Ethernet
/// header or `offset + len` lies outside `buf`.
pub fn push_tag(buf: &mut [u8], offset: usize, len: usize, tci: u16) -> Result<usize> {
    let end = offset.checked_add(len).ok_or(Error::Truncated)?;
    if len < ethernet::HEADER_LEN || end > buf.len() {
        return Err(Error::Truncated);
    }
    let start = offset.checked_sub(HEADER_LEN).ok_or(Error::NoRoom)?;
    buf.copy_within(offset..offset + ethernet::ADDRESSES_LEN, start);
    let at = start + ethernet::ADDRESSES_LEN;
    write_u16(buf, at, EtherType::Vlan.into());
    write_u16(buf, at + 2, tci);
    Ok(start)
}

/// Remove the outer 802.1Q tag of the Ethernet frame at
/// `buf[offset..offset + len]`, moving its two MAC addresses four bytes
/// forward. Returns the new offset; the frame is then `len - 4` long.
///
/// Fails with [`Error::Truncated`] when the frame is shorter than a tagged
/// header, and with [`Error::Unrecognized`] when it carries no 802.1Q tag.
pub fn pop_tag(buf: &mut [u8], offset: usize, len: usize) -> Result<usize> {
    let end = offset.checked_add(len).ok_or(Error::Truncated)?;
    if len < ethernet::HEADER_LEN + HEADER_LEN || end > buf.len() {
        return Err(Error::Truncated);
    }
    if read_u16(buf, offset + ethernet::ADDRESSES_LEN) != u16::from(EtherType::Vlan) {
        return Err(Error::Unrecognized);
    }
    let start = offset + HEADER_LEN;
    buf.copy_within(offset..offset + ethernet::ADDRESSES_LEN, start);
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EthernetAddress;

    // dst, src, 0x8100, PCP 5 DEI 1 VID 100, IPv4, 2 payload bytes.
    static TAGGED: [u8; 20] = [
        0x02, 0, 0, 0, 0, 2, //
        0x02, 0, 0, 0, 0, 1, //
        0x81, 0x00, //
        0xb0, 0x64, //
        0x08, 0x00, //
        0xde, 0xad,
    ];

    #[test]
    fn deconstruct() {
        let frame = ethernet::Frame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(frame.ethertype(), EtherType::Vlan);
        let tag = Packet::new_checked(frame.payload()).unwrap();
        assert_eq!(tag.pcp(), 5);
        assert!(tag.dei());
        assert_eq!(tag.vid(), 100);
        assert_eq!(tag.ethertype(), EtherType::Ipv4);
        assert_eq!(tag.payload(), &[0xde, 0xad]);
        let repr = Repr::parse(&tag).unwrap();
        assert_eq!(repr.tci(), 0xb064);
    }

    #[test]
    fn construct() {
        let mut bytes = [0u8; 6];
        let mut tag = Packet::new_unchecked(&mut bytes[..]);
        Repr {
            pcp: 5,
            dei: true,
            vid: 100,
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut tag);
        tag.payload_mut().copy_from_slice(&[0xde, 0xad]);
        assert_eq!(&bytes[..], &TAGGED[14..]);
        let mut tag = Packet::new_unchecked(&mut bytes[..]);
        tag.set_vid(200);
        assert_eq!(tag.pcp(), 5);
        assert_eq!(tag.vid(), 200);
    }

    #[test]
    fn truncated() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&TAGGED[14..14 + len]).unwrap_err(),
                Error::Truncated
            );
        }
    }

    #[test]
    fn push_then_pop_moves_only_addresses() {
        let untagged: [u8; 16] = [
            0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0xde, 0xad,
        ];
        let mut buf = [0xeeu8; 4 + 16];
        buf[4..].copy_from_slice(&untagged);
        let offset = push_tag(&mut buf, 4, 16, 0xb064).unwrap();
        assert_eq!(offset, 0);
        assert_eq!(&buf[..], &TAGGED[..]);
        let offset = pop_tag(&mut buf, 0, 20).unwrap();
        assert_eq!(offset, 4);
        assert_eq!(&buf[4..], &untagged[..]);
    }

    #[test]
    fn push_needs_headroom_and_pop_needs_a_tag() {
        let mut buf = TAGGED;
        assert_eq!(push_tag(&mut buf, 0, 20, 1).unwrap_err(), Error::NoRoom);
        assert_eq!(push_tag(&mut buf, 4, 17, 1).unwrap_err(), Error::Truncated);
        assert_eq!(push_tag(&mut buf, 10, 10, 1).unwrap_err(), Error::Truncated);
        assert_eq!(
            push_tag(&mut buf, usize::MAX, 2, 1).unwrap_err(),
            Error::Truncated
        );
        let mut untagged = [0u8; 20];
        untagged[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(
            pop_tag(&mut untagged, 0, 20).unwrap_err(),
            Error::Unrecognized
        );
        assert_eq!(pop_tag(&mut buf, 0, 17).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn cross_check_with_etherparse() {
        let builder = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .single_vlan(etherparse::VlanId::try_new(100).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2);
        let mut bytes = Vec::new();
        builder.write(&mut bytes, &[]).unwrap();
        let frame = ethernet::Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!(frame.ethertype(), EtherType::Vlan);
        let tag = Packet::new_checked(frame.payload()).unwrap();
        assert_eq!(tag.vid(), 100);
        assert_eq!(tag.pcp(), 0);
        assert_eq!(tag.ethertype(), EtherType::Ipv4);

        // A tag we push is read back by etherparse.
        let mut untagged = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2)
            .write(&mut untagged, &[9, 9])
            .unwrap();
        let mut buf = vec![0u8; 4];
        buf.extend_from_slice(&untagged);
        let len = untagged.len();
        let offset = push_tag(&mut buf, 4, len, 200).unwrap();
        let parsed = etherparse::SlicedPacket::from_ethernet(&buf[offset..]).unwrap();
        match parsed.link_exts.first() {
            Some(etherparse::LinkExtSlice::Vlan(vlan)) => {
                assert_eq!(vlan.vlan_identifier().value(), 200);
            }
            other => panic!("expected a VLAN tag, got {other:?}"),
        }
        let frame = ethernet::Frame::new_checked(&buf[offset..]).unwrap();
        assert_eq!(frame.src_addr(), EthernetAddress([2, 0, 0, 0, 0, 1]));
    }
}
