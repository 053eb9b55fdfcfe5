//! ARP (RFC 826) packets; [`Repr`] models the Ethernet/IPv4 variant, the
//! only one a gateway port carries.
//!
//! ```text
//!  0      2      4    5    6      8
//!  +------+------+----+----+------+-----+-----+-----+-----+
//!  | htype| ptype|hlen|plen| oper | SHA | SPA | THA | TPA |
//!  +------+------+----+----+------+-----+-----+-----+-----+
//!                                  hlen  plen  hlen  plen bytes
//! ```

use core::net::Ipv4Addr;

use crate::ethernet::EtherType;
use crate::{Error, EthernetAddress, Result, read_u16, write_u16};

enum_with_unknown! {
    /// The ARP hardware type.
    pub enum Hardware(u16) {
        /// Ethernet.
        Ethernet = 1,
    }
}

enum_with_unknown! {
    /// The ARP operation.
    pub enum Operation(u16) {
        /// A request: who has the target protocol address?
        Request = 1,
        /// A reply: the sender has the sender protocol address.
        Reply = 2,
    }
}

mod field {
    #![allow(non_snake_case)]

    use core::ops::Range;

    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const HEADER_END: usize = 8;

    pub const fn SHA(hlen: u8, _plen: u8) -> Range<usize> {
        HEADER_END..HEADER_END + hlen as usize
    }

    pub const fn SPA(hlen: u8, plen: u8) -> Range<usize> {
        let start = SHA(hlen, plen).end;
        start..start + plen as usize
    }

    pub const fn THA(hlen: u8, plen: u8) -> Range<usize> {
        let start = SPA(hlen, plen).end;
        start..start + hlen as usize
    }

    pub const fn TPA(hlen: u8, plen: u8) -> Range<usize> {
        let start = THA(hlen, plen).end;
        start..start + plen as usize
    }
}

/// The length of an Ethernet/IPv4 ARP packet.
pub const ETHERNET_IPV4_LEN: usize = field::TPA(6, 4).end;

/// A read/write view over an ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer after checking it holds the fixed header and the four
    /// addresses whose lengths the header declares.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check that the buffer holds the header and the addresses it declares.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < field::HEADER_END || len < field::TPA(self.hardware_len(), self.protocol_len()).end
        {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The hardware type.
    #[inline]
    pub fn hardware_type(&self) -> Hardware {
        Hardware::from(read_u16(self.buffer.as_ref(), field::HTYPE))
    }

    /// The protocol type.
    #[inline]
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(read_u16(self.buffer.as_ref(), field::PTYPE))
    }

    /// The hardware address length.
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// The protocol address length.
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// The operation.
    #[inline]
    pub fn operation(&self) -> Operation {
        Operation::from(read_u16(self.buffer.as_ref(), field::OPER))
    }

    /// The sender hardware address.
    pub fn source_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SHA(self.hardware_len(), self.protocol_len())]
    }

    /// The sender protocol address.
    pub fn source_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SPA(self.hardware_len(), self.protocol_len())]
    }

    /// The target hardware address.
    pub fn target_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::THA(self.hardware_len(), self.protocol_len())]
    }

    /// The target protocol address.
    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::TPA(self.hardware_len(), self.protocol_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the hardware type.
    pub fn set_hardware_type(&mut self, value: Hardware) {
        write_u16(self.buffer.as_mut(), field::HTYPE, value.into())
    }

    /// Set the protocol type.
    pub fn set_protocol_type(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::PTYPE, value.into())
    }

    /// Set the hardware address length.
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value
    }

    /// Set the protocol address length.
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value
    }

    /// Set the operation.
    pub fn set_operation(&mut self, value: Operation) {
        write_u16(self.buffer.as_mut(), field::OPER, value.into())
    }

    /// Set the sender hardware address.
    ///
    /// # Panics
    /// Panics if `value` is not `hardware_len()` bytes long.
    pub fn set_source_hardware_addr(&mut self, value: &[u8]) {
        let range = field::SHA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[range].copy_from_slice(value)
    }

    /// Set the sender protocol address.
    ///
    /// # Panics
    /// Panics if `value` is not `protocol_len()` bytes long.
    pub fn set_source_protocol_addr(&mut self, value: &[u8]) {
        let range = field::SPA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[range].copy_from_slice(value)
    }

    /// Set the target hardware address.
    ///
    /// # Panics
    /// Panics if `value` is not `hardware_len()` bytes long.
    pub fn set_target_hardware_addr(&mut self, value: &[u8]) {
        let range = field::THA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[range].copy_from_slice(value)
    }

    /// Set the target protocol address.
    ///
    /// # Panics
    /// Panics if `value` is not `protocol_len()` bytes long.
    pub fn set_target_protocol_addr(&mut self, value: &[u8]) {
        let range = field::TPA(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[range].copy_from_slice(value)
    }
}

/// A validated Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The operation.
    pub operation: Operation,
    /// The sender hardware address.
    pub source_hardware_addr: EthernetAddress,
    /// The sender protocol address.
    pub source_protocol_addr: Ipv4Addr,
    /// The target hardware address.
    pub target_hardware_addr: EthernetAddress,
    /// The target protocol address.
    pub target_protocol_addr: Ipv4Addr,
}

impl Repr {
    /// Parse a packet; anything but Ethernet/IPv4 is [`Error::Unrecognized`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        match (
            packet.hardware_type(),
            packet.protocol_type(),
            packet.hardware_len(),
            packet.protocol_len(),
        ) {
            (Hardware::Ethernet, EtherType::Ipv4, 6, 4) => {
                let ip = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
                Ok(Repr {
                    operation: packet.operation(),
                    source_hardware_addr: EthernetAddress::from_bytes(
                        packet.source_hardware_addr(),
                    ),
                    source_protocol_addr: ip(packet.source_protocol_addr()),
                    target_hardware_addr: EthernetAddress::from_bytes(
                        packet.target_hardware_addr(),
                    ),
                    target_protocol_addr: ip(packet.target_protocol_addr()),
                })
            }
            _ => Err(Error::Unrecognized),
        }
    }

    /// Whether this is a gratuitous announcement: the sender asks for (or
    /// announces) its own address.
    pub fn is_gratuitous(&self) -> bool {
        self.source_protocol_addr == self.target_protocol_addr
    }

    /// The length of the packet this emits.
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    /// Write the packet.
    ///
    /// # Panics
    /// Panics if the buffer is shorter than [`ETHERNET_IPV4_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_hardware_type(Hardware::Ethernet);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(&self.source_hardware_addr.0);
        packet.set_source_protocol_addr(&self.source_protocol_addr.octets());
        packet.set_target_hardware_addr(&self.target_hardware_addr.0);
        packet.set_target_protocol_addr(&self.target_protocol_addr.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static PACKET_BYTES: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, //
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, //
        0x21, 0x22, 0x23, 0x24, //
        0x31, 0x32, 0x33, 0x34, 0x35, 0x36, //
        0x41, 0x42, 0x43, 0x44,
    ];

    fn packet_repr() -> Repr {
        Repr {
            operation: Operation::Request,
            source_hardware_addr: EthernetAddress([0x11, 0x12, 0x13, 0x14, 0x15, 0x16]),
            source_protocol_addr: Ipv4Addr::new(0x21, 0x22, 0x23, 0x24),
            target_hardware_addr: EthernetAddress([0x31, 0x32, 0x33, 0x34, 0x35, 0x36]),
            target_protocol_addr: Ipv4Addr::new(0x41, 0x42, 0x43, 0x44),
        }
    }

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(packet.hardware_type(), Hardware::Ethernet);
        assert_eq!(packet.protocol_type(), EtherType::Ipv4);
        assert_eq!(packet.hardware_len(), 6);
        assert_eq!(packet.protocol_len(), 4);
        assert_eq!(packet.operation(), Operation::Request);
        assert_eq!(
            packet.source_hardware_addr(),
            &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16]
        );
        assert_eq!(packet.source_protocol_addr(), &[0x21, 0x22, 0x23, 0x24]);
        assert_eq!(
            packet.target_hardware_addr(),
            &[0x31, 0x32, 0x33, 0x34, 0x35, 0x36]
        );
        assert_eq!(packet.target_protocol_addr(), &[0x41, 0x42, 0x43, 0x44]);
    }

    #[test]
    fn parse_and_emit() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap(), packet_repr());
        let mut bytes = [0u8; 28];
        packet_repr().emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn truncated_and_unrecognized() {
        for len in 0..PACKET_BYTES.len() {
            assert_eq!(
                Packet::new_checked(&PACKET_BYTES[..len]).unwrap_err(),
                Error::Truncated,
                "length {len}"
            );
        }
        // Declared address lengths larger than the buffer.
        let mut bytes = PACKET_BYTES;
        bytes[4] = 255;
        assert_eq!(
            Packet::new_checked(&bytes[..]).unwrap_err(),
            Error::Truncated
        );
        // Well-formed but not Ethernet/IPv4.
        let mut bytes = PACKET_BYTES;
        bytes[1] = 6;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap_err(), Error::Unrecognized);
    }

    #[test]
    fn gratuitous() {
        let mut repr = packet_repr();
        assert!(!repr.is_gratuitous());
        repr.target_protocol_addr = repr.source_protocol_addr;
        assert!(repr.is_gratuitous());
    }

    #[test]
    fn cross_check_with_etherparse() {
        use etherparse::{ArpHardwareId, ArpOperation, ArpPacket, EtherType as EpEtherType};
        let arp = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EpEtherType::IPV4,
            ArpOperation::REQUEST,
            &[2, 0, 0, 0, 0, 1],
            &[10, 0, 0, 5],
            &[0; 6],
            &[10, 0, 0, 1],
        )
        .unwrap();
        let mut bytes = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [0xff; 6])
            .arp(arp)
            .write(&mut bytes)
            .unwrap();
        let frame = crate::ethernet::Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!(frame.ethertype(), EtherType::Arp);
        let packet = Packet::new_checked(frame.payload()).unwrap();
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.operation, Operation::Request);
        assert_eq!(
            repr.source_hardware_addr,
            EthernetAddress([2, 0, 0, 0, 0, 1])
        );
        assert_eq!(repr.source_protocol_addr, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(repr.target_protocol_addr, Ipv4Addr::new(10, 0, 0, 1));

        // What we emit, etherparse reads.
        let reply = Repr {
            operation: Operation::Reply,
            source_hardware_addr: EthernetAddress([0, 0, 0x5e, 0, 1, 0]),
            source_protocol_addr: Ipv4Addr::new(10, 0, 0, 1),
            target_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            target_protocol_addr: Ipv4Addr::new(10, 0, 0, 5),
        };
        let mut out = [0u8; ETHERNET_IPV4_LEN];
        reply.emit(&mut Packet::new_unchecked(&mut out[..]));
        let parsed = ArpPacket::from_slice(&out).unwrap().try_eth_ipv4().unwrap();
        assert_eq!(parsed.operation, ArpOperation::REPLY);
        assert_eq!(parsed.sender_mac, [0, 0, 0x5e, 0, 1, 0]);
        assert_eq!(parsed.sender_ipv4, [10, 0, 0, 1]);
        assert_eq!(parsed.target_mac, [2, 0, 0, 0, 0, 1]);
        assert_eq!(parsed.target_ipv4, [10, 0, 0, 5]);
    }
}
