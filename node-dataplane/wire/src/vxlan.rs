//! VXLAN headers (RFC 7348): UDP destination port 4789, an 8-byte header
//! with the I flag and a 24-bit network identifier, then an Ethernet frame.
//!
//! ```text
//!  0       8                               32
//!  +-------+-------------------------------+
//!  |R R R R I R R R|       reserved        |
//!  +---------------------------------------+
//!  |     VXLAN network identifier  |reserv.|
//!  +---------------------------------------+
//!  |  inner Ethernet frame ...
//! ```

use crate::{Error, Result};

mod field {
    use core::ops::{Range, RangeFrom};

    pub const FLAGS: usize = 0;
    pub const VNI: Range<usize> = 4..7;
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

/// The length of a VXLAN header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// The UDP destination port of VXLAN (RFC 7348).
pub const UDP_PORT: u16 = 4789;

/// The I flag: the VNI is valid.
pub const FLAG_VNI: u8 = 0x08;

/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// A read/write view over a VXLAN header and its inner frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer after checking it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(packet)
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The VXLAN network identifier.
    #[inline]
    pub fn vni(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VNI];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Write the header: the I flag, `vni`, every reserved bit zero.
    pub fn set_header(&mut self, vni: u32) {
        let data = self.buffer.as_mut();
        data[..HEADER_LEN].fill(0);
        data[field::FLAGS] = FLAG_VNI;
        data[field::VNI].copy_from_slice(&(vni & MAX_VNI).to_be_bytes()[1..]);
    }
}

/// A validated VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The VXLAN network identifier.
    pub vni: u32,
}

impl Repr {
    /// Parse a header: the I flag must be set (RFC 7348 section 5; the
    /// other bits are ignored on receive, as the RFC asks).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        if packet.flags() & FLAG_VNI == 0 {
            return Err(Error::Malformed);
        }
        Ok(Repr { vni: packet.vni() })
    }

    /// The length of what this emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the header.
    ///
    /// # Panics
    /// Panics if the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_header(self.vni);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let bytes = [0x08, 0, 0, 0, 0x00, 0x10, 0x04, 0x00, 0xee];
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.vni(), 4100);
        assert_eq!(packet.payload(), &[0xee]);
        assert_eq!(Repr::parse(&packet).unwrap(), Repr { vni: 4100 });
        let mut out = [0xffu8; 8];
        Repr { vni: 4100 }.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, bytes[..8]);
    }

    #[test]
    fn the_i_flag_is_required() {
        let bytes = [0x00, 0, 0, 0, 0, 0, 1, 0];
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap_err(), Error::Malformed);
        assert_eq!(
            Packet::new_checked(&bytes[..7]).unwrap_err(),
            Error::Truncated
        );
    }
}
