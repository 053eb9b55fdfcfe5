//! DHCPv4 messages (RFC 2131, options RFC 2132): the fixed BOOTP header,
//! the magic cookie and the options, as the gateway's DHCP server reads a
//! client's request and writes its reply in place.
//!
//! ```text
//!  0       8       16      24      31
//!  +-------+-------+-------+-------+
//!  |  op   | htype | hlen  | hops  |
//!  +-------+-------+-------+-------+
//!  |             xid               |
//!  +---------------+---------------+
//!  |     secs      |  flags (B...) |
//!  +---------------+---------------+
//!  | ciaddr | yiaddr | siaddr | giaddr   (4 bytes each)
//!  | chaddr (16) | sname (64) | file (128)
//!  +-------------------------------+
//!  | magic cookie 99.130.83.99     |  byte 236
//!  +-------------------------------+
//!  | options: code(1) len(1) data; 0 = pad, 255 = end
//! ```
//!
//! [`Packet::new_checked`] guarantees the fixed header and the cookie's
//! bytes are there; [`Options`] walks the options without ever reading past
//! the buffer; [`Repr::parse`] validates what a server needs from a client
//! message (Ethernet hardware, the cookie, exactly one message type).
//! [`OptionWriter`] appends options to a buffer the caller sized and says
//! when it is full instead of panicking.

use core::net::Ipv4Addr;

use crate::{Error, EthernetAddress, Result, read_ipv4, read_u16, write_u16};

mod field {
    use core::ops::{Range, RangeFrom};

    pub const OP: usize = 0;
    pub const HTYPE: usize = 1;
    pub const HLEN: usize = 2;
    pub const HOPS: usize = 3;
    pub const XID: Range<usize> = 4..8;
    pub const SECS: usize = 8;
    pub const FLAGS: usize = 10;
    pub const CIADDR: usize = 12;
    pub const YIADDR: usize = 16;
    pub const SIADDR: usize = 20;
    pub const GIADDR: usize = 24;
    pub const CHADDR: Range<usize> = 28..44;
    pub const SNAME: Range<usize> = 44..108;
    pub const FILE: Range<usize> = 108..236;
    pub const MAGIC: Range<usize> = 236..240;
    pub const OPTIONS: RangeFrom<usize> = 240..;
}

/// The length of the fixed header and the magic cookie: where options start.
pub const HEADER_LEN: usize = field::OPTIONS.start;

/// The smallest BOOTP message relay agents and old clients accept (RFC
/// 1542 section 2.1): replies are padded to it.
pub const MIN_MESSAGE_LEN: usize = 300;

/// The magic cookie that opens the options (RFC 2131 section 3).
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// The server's UDP port.
pub const SERVER_PORT: u16 = 67;
/// The client's UDP port.
pub const CLIENT_PORT: u16 = 68;

/// The broadcast bit of `flags`: the client cannot receive unicast before
/// it has an address.
pub const FLAG_BROADCAST: u16 = 0x8000;

/// The room `sname` has (with its terminating zero).
pub const SNAME_LEN: usize = 64;
/// The room `file` has (with its terminating zero).
pub const FILE_LEN: usize = 128;

/// Option codes (RFC 2132) the gateway reads or writes.
pub mod option {
    /// Padding (no length byte).
    pub const PAD: u8 = 0;
    /// Subnet mask.
    pub const SUBNET_MASK: u8 = 1;
    /// Routers (default gateway).
    pub const ROUTER: u8 = 3;
    /// DNS servers.
    pub const DNS_SERVERS: u8 = 6;
    /// Host name.
    pub const HOST_NAME: u8 = 12;
    /// Domain name.
    pub const DOMAIN_NAME: u8 = 15;
    /// Interface MTU.
    pub const INTERFACE_MTU: u8 = 26;
    /// Broadcast address.
    pub const BROADCAST_ADDRESS: u8 = 28;
    /// Requested IP address.
    pub const REQUESTED_IP: u8 = 50;
    /// Lease time (seconds).
    pub const LEASE_TIME: u8 = 51;
    /// Message type.
    pub const MESSAGE_TYPE: u8 = 53;
    /// Server identifier.
    pub const SERVER_ID: u8 = 54;
    /// Parameter request list.
    pub const PARAMETER_REQUEST_LIST: u8 = 55;
    /// Message (text for the client, e.g. in a NAK).
    pub const MESSAGE: u8 = 56;
    /// Maximum message size.
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    /// Renewal time (T1).
    pub const RENEWAL_TIME: u8 = 58;
    /// Rebinding time (T2).
    pub const REBINDING_TIME: u8 = 59;
    /// Client identifier.
    pub const CLIENT_ID: u8 = 61;
    /// TFTP server name (PXE).
    pub const TFTP_SERVER_NAME: u8 = 66;
    /// Boot file name (PXE).
    pub const BOOTFILE_NAME: u8 = 67;
    /// End of options (no length byte).
    pub const END: u8 = 255;
}

enum_with_unknown! {
    /// The BOOTP operation.
    pub enum OpCode(u8) {
        /// From a client.
        Request = 1,
        /// From a server.
        Reply = 2,
    }
}

enum_with_unknown! {
    /// The DHCP message type (option 53).
    pub enum MessageType(u8) {
        /// A client looks for servers.
        Discover = 1,
        /// A server offers an address.
        Offer = 2,
        /// A client asks for (or renews) an address.
        Request = 3,
        /// A client found the address in use.
        Decline = 4,
        /// A server confirms the lease.
        Ack = 5,
        /// A server refuses the request.
        Nak = 6,
        /// A client gives the address back.
        Release = 7,
        /// A client with an address asks for configuration only.
        Inform = 8,
    }
}

/// A read/write view over a DHCPv4 message (the UDP payload).
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

    /// Check that the buffer holds the fixed header and the magic cookie.
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

    /// The operation.
    #[inline]
    pub fn opcode(&self) -> OpCode {
        OpCode::from(self.buffer.as_ref()[field::OP])
    }

    /// The hardware type (1: Ethernet).
    #[inline]
    pub fn hardware_type(&self) -> u8 {
        self.buffer.as_ref()[field::HTYPE]
    }

    /// The hardware address length (6 for Ethernet).
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Relay hops.
    #[inline]
    pub fn hops(&self) -> u8 {
        self.buffer.as_ref()[field::HOPS]
    }

    /// The transaction identifier.
    #[inline]
    pub fn transaction_id(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::XID];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Seconds since the client began.
    #[inline]
    pub fn secs(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SECS)
    }

    /// The flags (only [`FLAG_BROADCAST`] is defined).
    #[inline]
    pub fn flags(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLAGS)
    }

    /// The client's current address (renewing, rebinding, inform).
    #[inline]
    pub fn client_ip(&self) -> Ipv4Addr {
        read_ipv4(self.buffer.as_ref(), field::CIADDR)
    }

    /// "Your" address: what the server gives.
    #[inline]
    pub fn your_ip(&self) -> Ipv4Addr {
        read_ipv4(self.buffer.as_ref(), field::YIADDR)
    }

    /// The next server (PXE: where to fetch the boot file).
    #[inline]
    pub fn server_ip(&self) -> Ipv4Addr {
        read_ipv4(self.buffer.as_ref(), field::SIADDR)
    }

    /// The relay agent's address.
    #[inline]
    pub fn relay_agent_ip(&self) -> Ipv4Addr {
        read_ipv4(self.buffer.as_ref(), field::GIADDR)
    }

    /// The client's hardware address, as Ethernet (the first six bytes of
    /// `chaddr`).
    #[inline]
    pub fn client_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::CHADDR][..6])
    }

    /// The four bytes where the magic cookie belongs.
    #[inline]
    pub fn magic_cookie(&self) -> [u8; 4] {
        let b = &self.buffer.as_ref()[field::MAGIC];
        [b[0], b[1], b[2], b[3]]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The options area (everything after the cookie).
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::OPTIONS]
    }

    /// The `sname` field.
    #[inline]
    pub fn server_name(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::SNAME]
    }

    /// The `file` field.
    #[inline]
    pub fn boot_file(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::FILE]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the operation.
    #[inline]
    pub fn set_opcode(&mut self, value: OpCode) {
        self.buffer.as_mut()[field::OP] = value.into();
    }

    /// Set the hardware type and length: Ethernet.
    #[inline]
    pub fn set_ethernet(&mut self) {
        let data = self.buffer.as_mut();
        data[field::HTYPE] = 1;
        data[field::HLEN] = 6;
    }

    /// Set the relay hops.
    #[inline]
    pub fn set_hops(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOPS] = value;
    }

    /// Set the transaction identifier.
    #[inline]
    pub fn set_transaction_id(&mut self, value: u32) {
        self.buffer.as_mut()[field::XID].copy_from_slice(&value.to_be_bytes());
    }

    /// Set the seconds field.
    #[inline]
    pub fn set_secs(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SECS, value)
    }

    /// Set the flags.
    #[inline]
    pub fn set_flags(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::FLAGS, value)
    }

    /// Set `ciaddr`.
    #[inline]
    pub fn set_client_ip(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::CIADDR..field::CIADDR + 4].copy_from_slice(&value.octets());
    }

    /// Set `yiaddr`.
    #[inline]
    pub fn set_your_ip(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::YIADDR..field::YIADDR + 4].copy_from_slice(&value.octets());
    }

    /// Set `siaddr`.
    #[inline]
    pub fn set_server_ip(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SIADDR..field::SIADDR + 4].copy_from_slice(&value.octets());
    }

    /// Set `giaddr`.
    #[inline]
    pub fn set_relay_agent_ip(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::GIADDR..field::GIADDR + 4].copy_from_slice(&value.octets());
    }

    /// Set `chaddr` to an Ethernet address (the rest of the field zeroed).
    #[inline]
    pub fn set_client_hardware_addr(&mut self, value: EthernetAddress) {
        let chaddr = &mut self.buffer.as_mut()[field::CHADDR];
        chaddr.fill(0);
        chaddr[..6].copy_from_slice(&value.0);
    }

    /// Set `sname` to `name` (zero-filled; at most [`SNAME_LEN`] - 1 bytes
    /// are kept so that it stays terminated).
    pub fn set_server_name(&mut self, name: &[u8]) {
        fill_text(&mut self.buffer.as_mut()[field::SNAME], name);
    }

    /// Set `file` to `name` (zero-filled; at most [`FILE_LEN`] - 1 bytes).
    pub fn set_boot_file(&mut self, name: &[u8]) {
        fill_text(&mut self.buffer.as_mut()[field::FILE], name);
    }

    /// Write the magic cookie.
    #[inline]
    pub fn set_magic_cookie(&mut self) {
        self.buffer.as_mut()[field::MAGIC].copy_from_slice(&MAGIC_COOKIE);
    }

    /// The options area, to write into (with an [`OptionWriter`]).
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::OPTIONS]
    }
}

/// Zero `field` and copy as much of `text` as leaves a terminating zero.
fn fill_text(field: &mut [u8], text: &[u8]) {
    field.fill(0);
    let n = text.len().min(field.len() - 1);
    field[..n].copy_from_slice(&text[..n]);
}

/// One option: its code and its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhcpOption<'a> {
    /// The code.
    pub code: u8,
    /// The data (without code and length).
    pub data: &'a [u8],
}

/// An iterator over the options of a message: pads are skipped, the end
/// option stops it; an option running past the buffer yields
/// [`Error::Truncated`] and stops it.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
}

impl<'a> Options<'a> {
    /// Iterate the options in `data` (an options area).
    pub const fn new(data: &'a [u8]) -> Options<'a> {
        Options { rest: data }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<DhcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&code, rest) = self.rest.split_first()?;
            match code {
                option::PAD => self.rest = rest,
                option::END => {
                    self.rest = &[];
                    return None;
                }
                _ => {
                    let Some((&len, rest)) = rest.split_first() else {
                        self.rest = &[];
                        return Some(Err(Error::Truncated));
                    };
                    let len = usize::from(len);
                    if rest.len() < len {
                        self.rest = &[];
                        return Some(Err(Error::Truncated));
                    }
                    let (data, rest) = rest.split_at(len);
                    self.rest = rest;
                    return Some(Ok(DhcpOption { code, data }));
                }
            }
        }
    }
}

/// Appends options to an options area the caller sized: each `put` says
/// [`Error::NoRoom`] rather than writing past it, always leaving room for
/// the end option.
#[derive(Debug)]
pub struct OptionWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> OptionWriter<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> OptionWriter<'a> {
        OptionWriter { buf, pos: 0 }
    }

    /// Append option `code` with `data` (at most 255 bytes).
    pub fn put(&mut self, code: u8, data: &[u8]) -> Result<()> {
        let len = u8::try_from(data.len()).map_err(|_| Error::Malformed)?;
        let end = self.pos + 2 + data.len();
        // One byte stays free for the end option.
        if end + 1 > self.buf.len() {
            return Err(Error::NoRoom);
        }
        self.buf[self.pos] = code;
        self.buf[self.pos + 1] = len;
        self.buf[self.pos + 2..end].copy_from_slice(data);
        self.pos = end;
        Ok(())
    }

    /// Append an option holding one byte.
    pub fn put_u8(&mut self, code: u8, value: u8) -> Result<()> {
        self.put(code, &[value])
    }

    /// Append an option holding a big-endian `u16`.
    pub fn put_u16(&mut self, code: u8, value: u16) -> Result<()> {
        self.put(code, &value.to_be_bytes())
    }

    /// Append an option holding a big-endian `u32`.
    pub fn put_u32(&mut self, code: u8, value: u32) -> Result<()> {
        self.put(code, &value.to_be_bytes())
    }

    /// Append an option holding addresses (at most 63).
    pub fn put_addrs(&mut self, code: u8, addrs: &[Ipv4Addr]) -> Result<()> {
        let mut data = [0u8; 252];
        let n = addrs.len().min(data.len() / 4);
        for (i, a) in addrs.iter().take(n).enumerate() {
            data[i * 4..i * 4 + 4].copy_from_slice(&a.octets());
        }
        self.put(code, &data[..n * 4])
    }

    /// Write the end option; returns the length of the options written.
    pub fn end(self) -> Result<usize> {
        if self.pos >= self.buf.len() {
            return Err(Error::NoRoom);
        }
        self.buf[self.pos] = option::END;
        Ok(self.pos + 1)
    }
}

/// What a server needs from a client's message, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// Request (from a client) or reply.
    pub opcode: OpCode,
    /// The message type (option 53).
    pub message_type: MessageType,
    /// The transaction identifier.
    pub transaction_id: u32,
    /// Seconds since the client began.
    pub secs: u16,
    /// The flags.
    pub flags: u16,
    /// Relay hops.
    pub hops: u8,
    /// `ciaddr`.
    pub client_ip: Ipv4Addr,
    /// `yiaddr`.
    pub your_ip: Ipv4Addr,
    /// `giaddr`.
    pub relay_agent_ip: Ipv4Addr,
    /// `chaddr` (Ethernet).
    pub client_hardware_addr: EthernetAddress,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 61, as sent.
    pub client_id: Option<&'a [u8]>,
    /// Option 55, as sent.
    pub parameter_request_list: Option<&'a [u8]>,
    /// Option 57.
    pub max_message_size: Option<u16>,
}

impl<'a> Repr<'a> {
    /// Parse a message: Ethernet hardware addresses, the magic cookie,
    /// well-formed options with exactly one message type; the address
    /// options must be four bytes long.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>> {
        packet.check_len()?;
        if packet.hardware_type() != 1 || packet.hardware_len() != 6 {
            return Err(Error::Unrecognized);
        }
        if packet.magic_cookie() != MAGIC_COOKIE {
            return Err(Error::Malformed);
        }
        let addr = |data: &[u8]| -> Result<Ipv4Addr> {
            match data {
                [a, b, c, d] => Ok(Ipv4Addr::new(*a, *b, *c, *d)),
                _ => Err(Error::Malformed),
            }
        };
        let mut message_type = None;
        let mut requested_ip = None;
        let mut server_id = None;
        let mut client_id = None;
        let mut parameter_request_list = None;
        let mut max_message_size = None;
        for opt in Options::new(packet.options()) {
            let opt = opt?;
            match opt.code {
                option::MESSAGE_TYPE => match (opt.data, message_type) {
                    ([t], None) => message_type = Some(MessageType::from(*t)),
                    _ => return Err(Error::Malformed),
                },
                option::REQUESTED_IP => requested_ip = Some(addr(opt.data)?),
                option::SERVER_ID => server_id = Some(addr(opt.data)?),
                option::CLIENT_ID => client_id = Some(opt.data),
                option::PARAMETER_REQUEST_LIST => parameter_request_list = Some(opt.data),
                option::MAX_MESSAGE_SIZE => match opt.data {
                    [a, b] => max_message_size = Some(u16::from_be_bytes([*a, *b])),
                    _ => return Err(Error::Malformed),
                },
                _ => {}
            }
        }
        Ok(Repr {
            opcode: packet.opcode(),
            message_type: message_type.ok_or(Error::Malformed)?,
            transaction_id: packet.transaction_id(),
            secs: packet.secs(),
            flags: packet.flags(),
            hops: packet.hops(),
            client_ip: packet.client_ip(),
            your_ip: packet.your_ip(),
            relay_agent_ip: packet.relay_agent_ip(),
            client_hardware_addr: packet.client_hardware_addr(),
            requested_ip,
            server_id,
            client_id,
            parameter_request_list,
            max_message_size,
        })
    }

    /// Whether the client asked for a broadcast reply.
    pub const fn broadcast(&self) -> bool {
        self.flags & FLAG_BROADCAST != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DHCPDISCOVER shaped like busybox udhcpc's: xid 0x3903f326, chaddr
    /// 02:00:00:00:01:01, a client identifier, requested parameters, maximum
    /// size 576, padded to the BOOTP minimum.
    fn discover() -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0] = 1;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&0x3903_f326u32.to_be_bytes());
        b[28..34].copy_from_slice(&[2, 0, 0, 0, 1, 1]);
        b[236..240].copy_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[53, 1, 1]);
        b.extend_from_slice(&[61, 7, 1, 2, 0, 0, 0, 1, 1]);
        b.extend_from_slice(&[57, 2, 2, 64]);
        b.extend_from_slice(&[55, 7, 1, 3, 6, 12, 15, 28, 42]);
        b.extend_from_slice(&[0, 0, 255]);
        b.resize(MIN_MESSAGE_LEN, 0);
        b
    }

    #[test]
    fn a_discover_parses() {
        let bytes = discover();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.opcode, OpCode::Request);
        assert_eq!(repr.message_type, MessageType::Discover);
        assert_eq!(repr.transaction_id, 0x3903_f326);
        assert_eq!(
            repr.client_hardware_addr,
            EthernetAddress([2, 0, 0, 0, 1, 1])
        );
        assert_eq!(repr.client_id, Some(&[1, 2, 0, 0, 0, 1, 1][..]));
        assert_eq!(repr.max_message_size, Some(576));
        assert_eq!(
            repr.parameter_request_list,
            Some(&[1, 3, 6, 12, 15, 28, 42][..])
        );
        assert!(!repr.broadcast());
        assert_eq!(repr.requested_ip, None);
    }

    #[test]
    fn malformed_messages_are_refused() {
        let good = discover();
        assert_eq!(
            Packet::new_checked(&good[..HEADER_LEN - 1]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = good.clone();
        bad[236] = 0;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bad[..])).unwrap_err(),
            Error::Malformed,
            "no cookie"
        );
        let mut bad = good.clone();
        bad[1] = 6;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bad[..])).unwrap_err(),
            Error::Unrecognized,
            "not Ethernet"
        );
        // An option running past the end.
        let mut bad = good[..HEADER_LEN].to_vec();
        bad.extend_from_slice(&[53, 1, 1, 61, 9, 1, 2]);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bad[..])).unwrap_err(),
            Error::Truncated
        );
        // Two message types, or none.
        let mut bad = good[..HEADER_LEN].to_vec();
        bad.extend_from_slice(&[53, 1, 1, 53, 1, 3, 255]);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bad[..])).unwrap_err(),
            Error::Malformed
        );
        let mut bad = good[..HEADER_LEN].to_vec();
        bad.extend_from_slice(&[255]);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bad[..])).unwrap_err(),
            Error::Malformed
        );
        // A server identifier that is not four bytes.
        let mut bad = good[..HEADER_LEN].to_vec();
        bad.extend_from_slice(&[53, 1, 3, 54, 3, 1, 2, 3, 255]);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bad[..])).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn a_reply_written_with_the_writer_decodes_with_dhcproto() {
        use dhcproto::{Decodable, Decoder, v4};
        let mut buf = vec![0u8; MIN_MESSAGE_LEN];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_opcode(OpCode::Reply);
        p.set_ethernet();
        p.set_transaction_id(0xdead_beef);
        p.set_flags(FLAG_BROADCAST);
        p.set_your_ip(Ipv4Addr::new(192, 168, 1, 10));
        p.set_server_ip(Ipv4Addr::new(192, 168, 1, 5));
        p.set_client_hardware_addr(EthernetAddress([2, 0, 0, 0, 1, 1]));
        p.set_boot_file(b"pxelinux.0");
        p.set_magic_cookie();
        let n = {
            let mut w = OptionWriter::new(p.options_mut());
            w.put_u8(option::MESSAGE_TYPE, MessageType::Offer.into())
                .unwrap();
            w.put_addrs(option::SERVER_ID, &[Ipv4Addr::new(192, 168, 1, 1)])
                .unwrap();
            w.put_u32(option::LEASE_TIME, 86_400).unwrap();
            w.put_addrs(option::SUBNET_MASK, &[Ipv4Addr::new(255, 255, 255, 0)])
                .unwrap();
            w.put_addrs(option::ROUTER, &[Ipv4Addr::new(192, 168, 1, 1)])
                .unwrap();
            w.put_addrs(
                option::DNS_SERVERS,
                &[Ipv4Addr::new(192, 0, 2, 53), Ipv4Addr::new(192, 0, 2, 54)],
            )
            .unwrap();
            w.put(option::DOMAIN_NAME, b"lab.example").unwrap();
            w.put_u16(option::INTERFACE_MTU, 1400).unwrap();
            w.end().unwrap()
        };
        assert!(HEADER_LEN + n <= MIN_MESSAGE_LEN);
        let msg = v4::Message::decode(&mut Decoder::new(&buf)).expect("dhcproto decodes it");
        assert_eq!(msg.opcode(), v4::Opcode::BootReply);
        assert_eq!(msg.xid(), 0xdead_beef);
        assert!(msg.flags().broadcast());
        assert_eq!(msg.yiaddr(), Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(msg.siaddr(), Ipv4Addr::new(192, 168, 1, 5));
        assert_eq!(&msg.chaddr()[..6], &[2, 0, 0, 0, 1, 1]);
        assert_eq!(
            msg.fname().map(|f| f.to_vec()),
            Some(b"pxelinux.0\0".to_vec()),
            "terminated, as RFC 2131 asks"
        );
        let opts = msg.opts();
        assert_eq!(
            opts.get(v4::OptionCode::MessageType),
            Some(&v4::DhcpOption::MessageType(v4::MessageType::Offer))
        );
        assert_eq!(
            opts.get(v4::OptionCode::AddressLeaseTime),
            Some(&v4::DhcpOption::AddressLeaseTime(86_400))
        );
        assert_eq!(
            opts.get(v4::OptionCode::Router),
            Some(&v4::DhcpOption::Router(vec![Ipv4Addr::new(192, 168, 1, 1)]))
        );
        assert_eq!(
            opts.get(v4::OptionCode::DomainNameServer),
            Some(&v4::DhcpOption::DomainNameServer(vec![
                Ipv4Addr::new(192, 0, 2, 53),
                Ipv4Addr::new(192, 0, 2, 54)
            ]))
        );
        assert_eq!(
            opts.get(v4::OptionCode::DomainName),
            Some(&v4::DhcpOption::DomainName("lab.example".into()))
        );
        assert_eq!(
            opts.get(v4::OptionCode::InterfaceMtu),
            Some(&v4::DhcpOption::InterfaceMtu(1400))
        );
    }

    #[test]
    fn dhcproto_requests_parse_here() {
        use dhcproto::{Encodable, Encoder, v4};
        let mut msg = v4::Message::new(
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &[2, 0, 0, 0, 2, 1],
        );
        msg.set_xid(77);
        msg.set_flags(v4::Flags::default().set_broadcast());
        msg.opts_mut()
            .insert(v4::DhcpOption::MessageType(v4::MessageType::Request));
        msg.opts_mut()
            .insert(v4::DhcpOption::RequestedIpAddress(Ipv4Addr::new(
                192, 168, 1, 20,
            )));
        msg.opts_mut()
            .insert(v4::DhcpOption::ServerIdentifier(Ipv4Addr::new(
                192, 168, 1, 1,
            )));
        let mut bytes = Vec::new();
        msg.encode(&mut Encoder::new(&mut bytes)).unwrap();
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(repr.message_type, MessageType::Request);
        assert_eq!(repr.transaction_id, 77);
        assert!(repr.broadcast());
        assert_eq!(repr.requested_ip, Some(Ipv4Addr::new(192, 168, 1, 20)));
        assert_eq!(repr.server_id, Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(
            repr.client_hardware_addr,
            EthernetAddress([2, 0, 0, 0, 2, 1])
        );
    }

    #[test]
    fn the_writer_never_overruns() {
        let mut buf = [0u8; 8];
        let mut w = OptionWriter::new(&mut buf);
        w.put_u32(option::LEASE_TIME, 1).unwrap();
        assert_eq!(
            w.put_u8(option::MESSAGE_TYPE, 1).unwrap_err(),
            Error::NoRoom
        );
        assert_eq!(w.end().unwrap(), 7);
        let mut empty = [0u8; 0];
        assert_eq!(
            OptionWriter::new(&mut empty).end().unwrap_err(),
            Error::NoRoom
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = Repr::parse(&packet);
                for opt in Options::new(packet.options()) {
                    let _ = opt;
                }
            }
        }

        #[test]
        fn options_after_a_valid_header_never_panic(options in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut bytes = discover()[..HEADER_LEN].to_vec();
            bytes.extend_from_slice(&options);
            let _ = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap());
        }
    }
}
