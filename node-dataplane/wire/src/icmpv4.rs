//! ICMP for IPv4 (RFC 792): the header, its checksum, and echo
//! request/reply, which is what a gateway answers.
//!
//! ```text
//!  0       8       16              31
//!  +-------+-------+---------------+
//!  | type  | code  |   checksum    |
//!  +-------+-------+---------------+
//!  |  identifier   |   sequence    |   (echo; other types: rest of header)
//!  +---------------+---------------+
//!  |  data ...
//! ```

use crate::{Error, Result, checksum, read_u16, write_u16};

enum_with_unknown! {
    /// The ICMPv4 message type.
    pub enum Message(u8) {
        /// Echo reply.
        EchoReply = 0,
        /// Destination unreachable.
        DstUnreachable = 3,
        /// Echo request.
        EchoRequest = 8,
        /// Time exceeded.
        TimeExceeded = 11,
    }
}

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQNO: usize = 6;
    pub const HEADER_END: usize = 8;
}

/// The length of the ICMPv4 header (type, code, checksum, four more bytes).
pub const HEADER_LEN: usize = field::HEADER_END;

/// A read/write view over an ICMPv4 message; the buffer is exactly the
/// message (the IPv4 payload), since the checksum covers all of it.
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
        packet.check_len()?;
        Ok(packet)
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

    /// The message type.
    #[inline]
    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// The message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The echo identifier.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// The echo sequence number.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// Whether the checksum over the whole message is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// What follows the eight-byte header (echo data).
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::HEADER_END..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the message type (the checksum is not updated).
    pub fn set_msg_type(&mut self, value: Message) {
        self.buffer.as_mut()[field::TYPE] = value.into()
    }

    /// Set the message code (the checksum is not updated).
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value
    }

    /// Set the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value)
    }

    /// Set the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, value)
    }

    /// Set the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQNO, value)
    }

    /// Set the four bytes after the checksum (echo identifier and sequence number, or for "fragmentation needed" two unused bytes and the next-hop MTU, RFC 1191).
    pub fn set_rest_of_header(&mut self, value: u32) {
        self.buffer.as_mut()[field::ECHO_IDENT..field::HEADER_END]
            .copy_from_slice(&value.to_be_bytes());
    }

    /// What follows the header, mutably.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::HEADER_END..]
    }

    /// Compute the checksum over the whole message and write it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::data(self.buffer.as_ref());
        self.set_checksum(!sum)
    }

    /// Turn an echo request into an echo reply in place: the type changes
    /// and the checksum is updated incrementally; identifier, sequence and
    /// data stay as they are, as RFC 792 asks.
    pub fn echo_request_into_reply(&mut self) {
        let old = u16::from_be_bytes([self.buffer.as_ref()[field::TYPE], self.msg_code()]);
        self.set_msg_type(Message::EchoReply);
        let new = u16::from_be_bytes([self.buffer.as_ref()[field::TYPE], self.msg_code()]);
        let sum = checksum::update(self.checksum(), old, new);
        self.set_checksum(sum)
    }
}

/// A validated ICMPv4 echo message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// An echo request.
    EchoRequest {
        /// The identifier.
        ident: u16,
        /// The sequence number.
        seq_no: u16,
        /// The data to echo.
        data: &'a [u8],
    },
    /// An echo reply.
    EchoReply {
        /// The identifier.
        ident: u16,
        /// The sequence number.
        seq_no: u16,
        /// The echoed data.
        data: &'a [u8],
    },
}

impl<'a> Repr<'a> {
    /// Parse an echo message, verifying the checksum; other types are
    /// [`Error::Unrecognized`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        match (packet.msg_type(), packet.msg_code()) {
            (Message::EchoRequest, 0) => Ok(Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: packet.data(),
            }),
            (Message::EchoReply, 0) => Ok(Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data: packet.data(),
            }),
            _ => Err(Error::Unrecognized),
        }
    }

    /// The length of the message this emits.
    pub const fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
        }
    }

    /// Write the message with its checksum.
    ///
    /// # Panics
    /// Panics if the buffer is not [`buffer_len`](Self::buffer_len) long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let (msg_type, ident, seq_no, data) = match *self {
            Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => (Message::EchoRequest, ident, seq_no, data),
            Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (Message::EchoReply, ident, seq_no, data),
        };
        packet.set_msg_type(msg_type);
        packet.set_msg_code(0);
        packet.set_echo_ident(ident);
        packet.set_echo_seq_no(seq_no);
        packet.data_mut().copy_from_slice(data);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Echo request, id 0x1234, seq 1, data "abcd"; checksum computed by hand.
    static ECHO_BYTES: [u8; 12] = [
        0x08, 0x00, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&ECHO_BYTES[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::EchoRequest);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.echo_ident(), 0x1234);
        assert_eq!(packet.echo_seq_no(), 1);
        assert!(packet.verify_checksum());
        assert_eq!(
            Repr::parse(&packet).unwrap(),
            Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"abcd"
            }
        );
    }

    #[test]
    fn emit() {
        let repr = Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 1,
            data: b"abcd",
        };
        let mut bytes = [0u8; 12];
        assert_eq!(repr.buffer_len(), 12);
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, ECHO_BYTES);
    }

    #[test]
    fn reply_in_place() {
        let mut bytes = ECHO_BYTES;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.echo_request_into_reply();
        assert!(packet.verify_checksum());
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Repr::parse(&packet).unwrap(),
            Repr::EchoReply {
                ident: 0x1234,
                seq_no: 1,
                data: b"abcd"
            }
        );
    }

    #[test]
    fn errors() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&ECHO_BYTES[..len]).unwrap_err(),
                Error::Truncated
            );
        }
        let mut bytes = ECHO_BYTES;
        bytes[11] ^= 1;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap_err(), Error::Checksum);
        let mut bytes = [0u8; 8];
        bytes[0] = 13; // timestamp
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet).unwrap_err(), Error::Unrecognized);
    }

    #[test]
    fn cross_check_with_etherparse() {
        let mut bytes = Vec::new();
        etherparse::PacketBuilder::ipv4([10, 0, 0, 5], [10, 0, 0, 1], 64)
            .icmpv4_echo_request(7, 9)
            .write(&mut bytes, b"ping")
            .unwrap();
        let ip = crate::ipv4::Packet::new_checked(&bytes[..]).unwrap();
        let packet = Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(
            Repr::parse(&packet).unwrap(),
            Repr::EchoRequest {
                ident: 7,
                seq_no: 9,
                data: b"ping"
            }
        );

        let mut out = [0u8; 12];
        Repr::EchoReply {
            ident: 7,
            seq_no: 9,
            data: b"pong",
        }
        .emit(&mut Packet::new_unchecked(&mut out[..]));
        let slice = etherparse::Icmpv4Slice::from_slice(&out).unwrap();
        match slice.icmp_type() {
            etherparse::Icmpv4Type::EchoReply(echo) => {
                assert_eq!((echo.id, echo.seq), (7, 9));
            }
            other => panic!("expected an echo reply, got {other:?}"),
        }
        assert_eq!(
            slice.checksum(),
            slice.header().icmp_type.calc_checksum(b"pong")
        );
    }
}
