//! MPLS label stack entries (RFC 3032), as MPLS over UDP carries them
//! (RFC 7510: UDP destination port 6635).
//!
//! ```text
//!  0                   20    23 24       31
//!  +--------------------+-----+-+---------+
//!  |       label        | TC  |S|   TTL   |
//!  +--------------------+-----+-+---------+
//!  |  payload (no type field: the label says what it is) ...
//! ```
//!
//! The overlay uses a single entry (bottom of stack set): the label names a
//! VMI (payload: an IP packet) or a network (payload: an Ethernet frame).
//! A stack of several entries is reported as [`Error::Unrecognized`].

use crate::{Error, Result};

mod field {
    use core::ops::{Range, RangeFrom};

    pub const ENTRY: Range<usize> = 0..4;
    pub const PAYLOAD: RangeFrom<usize> = 4..;
}

/// The length of one label stack entry.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// The UDP destination port of MPLS over UDP (RFC 7510).
pub const UDP_PORT: u16 = 6635;

/// The largest label (20 bits).
pub const MAX_LABEL: u32 = (1 << 20) - 1;

/// Labels 0 to 15 are reserved (RFC 3032 section 2.1).
pub const FIRST_UNRESERVED_LABEL: u32 = 16;

/// A read/write view over a label stack entry and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer after checking it holds a whole entry.
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

    #[inline]
    fn entry(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::ENTRY];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The label.
    #[inline]
    pub fn label(&self) -> u32 {
        self.entry() >> 12
    }

    /// The traffic class (the former EXP bits).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        ((self.entry() >> 9) & 0x7) as u8
    }

    /// Whether this entry is the bottom of the stack.
    #[inline]
    pub fn bottom_of_stack(&self) -> bool {
        self.entry() & 0x100 != 0
    }

    /// The time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        (self.entry() & 0xff) as u8
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// What follows the entry.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Write a whole entry.
    pub fn set_entry(&mut self, label: u32, traffic_class: u8, bottom: bool, ttl: u8) {
        let word = ((label & MAX_LABEL) << 12)
            | (u32::from(traffic_class & 0x7) << 9)
            | (u32::from(bottom) << 8)
            | u32::from(ttl);
        self.buffer.as_mut()[field::ENTRY].copy_from_slice(&word.to_be_bytes());
    }
}

/// A validated single-entry label stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The label.
    pub label: u32,
    /// The traffic class.
    pub traffic_class: u8,
    /// The time to live.
    pub ttl: u8,
}

impl Repr {
    /// Parse an entry: it must be the bottom of the stack.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        if !packet.bottom_of_stack() {
            return Err(Error::Unrecognized);
        }
        Ok(Repr {
            label: packet.label(),
            traffic_class: packet.traffic_class(),
            ttl: packet.ttl(),
        })
    }

    /// The length of what this emits.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Write the entry, bottom of stack set.
    ///
    /// # Panics
    /// Panics if the buffer is shorter than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_entry(self.label, self.traffic_class, true, self.ttl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_fields_round_trip() {
        // Label 0x12345, TC 5, S, TTL 64: 0x12345 << 12 | 5 << 9 | 1 << 8 | 0x40.
        let bytes = [0x12, 0x34, 0x5b, 0x40, 0xaa];
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.label(), 0x12345);
        assert_eq!(packet.traffic_class(), 5);
        assert!(packet.bottom_of_stack());
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.payload(), &[0xaa]);
        let repr = Repr::parse(&packet).unwrap();
        let mut out = [0u8; 4];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, bytes[..4]);
    }

    #[test]
    fn stacks_and_short_buffers_are_refused() {
        assert_eq!(
            Packet::new_checked(&[0u8; 3][..]).unwrap_err(),
            Error::Truncated
        );
        let not_bottom = [0x00, 0x01, 0x00, 0x40];
        let packet = Packet::new_checked(&not_bottom[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap_err(), Error::Unrecognized);
    }

    #[test]
    fn labels_are_masked_to_twenty_bits() {
        let mut out = [0u8; 4];
        let mut packet = Packet::new_unchecked(&mut out[..]);
        packet.set_entry(MAX_LABEL + 1 + 16, 0, true, 1);
        assert_eq!(Packet::new_unchecked(&out[..]).label(), 16);
    }
}
