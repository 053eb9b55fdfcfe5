//! TCP headers (RFC 9293), as far as a translating gateway reads and writes
//! them: the ports, the flags that move a connection between states, and
//! the checksum. Options and payload are never interpreted.
//!
//! ```text
//!  0               16              31
//!  +---------------+---------------+
//!  |  source port  |   dest port   |
//!  +---------------+---------------+
//!  |        sequence number        |
//!  +-------------------------------+
//!  |     acknowledgment number     |
//!  +----+------+---+---------------+
//!  |doff| rsvd |flg|    window     |
//!  +----+------+---+---------------+
//!  |   checksum    |    urgent     |
//!  +---------------+---------------+
//!  |   options ... | payload ...   |
//! ```

use crate::{Error, Result, read_u16, write_u16};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const CHECKSUM: usize = 16;
    pub const HEADER_END: usize = 20;
}

/// The length of a TCP header without options.
pub const HEADER_LEN: usize = field::HEADER_END;

/// Where the checksum lies in the header (callers quoting a truncated
/// segment, as ICMP errors do, check whether it is there).
pub const CHECKSUM_AT: usize = field::CHECKSUM;

/// The FIN flag.
pub const FIN: u8 = 0x01;
/// The SYN flag.
pub const SYN: u8 = 0x02;
/// The RST flag.
pub const RST: u8 = 0x04;
/// The ACK flag.
pub const ACK: u8 = 0x10;

/// A read/write view over a TCP segment.
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

    /// Check that the buffer holds the fixed header and the options its
    /// data offset declares, and that the offset is at least 5 words.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header = self.header_len();
        if header < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < header {
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

    /// The header length in bytes (data offset times four).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The flag bits (CWR ECE URG ACK PSH RST SYN FIN).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the source port (the checksum is the caller's).
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value)
    }

    /// Set the destination port (the checksum is the caller's).
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value)
    }

    /// Set the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    fn segment() -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 443, 7, 1024)
            .syn()
            .write(&mut out, b"hello")
            .unwrap();
        out[20..].to_vec()
    }

    #[test]
    fn reads_what_etherparse_wrote() {
        let bytes = segment();
        let tcp = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port()), (40000, 443));
        assert_eq!(tcp.header_len(), 20);
        assert_eq!(tcp.flags() & (SYN | ACK | FIN | RST), SYN);
        let mut ip = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 443, 7, 1024)
            .syn()
            .write(&mut ip, b"hello")
            .unwrap();
        match SlicedPacket::from_ip(&ip).unwrap().transport {
            Some(TransportSlice::Tcp(t)) => assert_eq!(t.checksum(), tcp.checksum()),
            other => panic!("not tcp: {other:?}"),
        }
    }

    #[test]
    fn writes_ports_and_checksum_in_place() {
        let mut bytes = segment();
        let mut tcp = Packet::new_checked(&mut bytes[..]).unwrap();
        tcp.set_src_port(61000);
        tcp.set_dst_port(80);
        tcp.set_checksum(0xbeef);
        assert_eq!(
            (tcp.src_port(), tcp.dst_port(), tcp.checksum()),
            (61000, 80, 0xbeef)
        );
        assert_eq!(&bytes[..4], &[0xee, 0x48, 0x00, 0x50]);
    }

    #[test]
    fn refuses_short_buffers_and_bad_offsets() {
        let bytes = segment();
        for n in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&bytes[..n]), Err(Error::Truncated));
        }
        let mut bad = bytes.clone();
        bad[12] = 0x40; // 4 words: shorter than the fixed header
        assert_eq!(Packet::new_checked(&bad[..]), Err(Error::Malformed));
        let mut long = bytes;
        long[12] = 0xf0; // 60 bytes of header, 25 present
        assert_eq!(Packet::new_checked(&long[..]), Err(Error::Truncated));
    }
}
