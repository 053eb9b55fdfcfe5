//! DHCPv6 messages (RFC 8415) between a client and a server on the same
//! link: the message type, the transaction id and the options, as the
//! gateway's stateful DHCPv6 server reads a request and writes its reply.
//!
//! ```text
//!  0       8                       31
//!  +-------+-----------------------+
//!  | type  |    transaction id     |
//!  +-------+-------+---------------+
//!  | option code   | option length |   options, each: code(2) len(2) data
//!  +---------------+---------------+
//!  | ... IA_NA: IAID(4) T1(4) T2(4) options (IAADDR: address(16)
//!  |            preferred(4) valid(4) options)
//! ```
//!
//! [`Options`] never reads past its buffer; [`Repr::parse`] keeps what a
//! server needs (the client's DUID, its first IA_NA's IAID, the server
//! DUID it addressed, whether it asked for rapid commit).
//! [`OptionWriter`] appends options and nests them (an IAADDR inside an
//! IA_NA) by patching the outer length once the inner options are written.

use core::net::Ipv6Addr;

use crate::{Error, Result};

/// The client's UDP port.
pub const CLIENT_PORT: u16 = 546;
/// The servers' and relay agents' UDP port.
pub const SERVER_PORT: u16 = 547;

/// `ff02::1:2`: All_DHCP_Relay_Agents_and_Servers.
pub const ALL_SERVERS_AND_RELAYS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// The fixed header: message type and transaction id.
pub const HEADER_LEN: usize = 4;

/// The most bytes of a DUID (RFC 8415 section 11.1).
pub const MAX_DUID_LEN: usize = 130;

enum_with_unknown! {
    /// The message type.
    pub enum MessageType(u8) {
        /// A client looks for servers.
        Solicit = 1,
        /// A server offers.
        Advertise = 2,
        /// A client asks a server for addresses.
        Request = 3,
        /// A client checks its addresses still fit the link.
        Confirm = 4,
        /// A client extends its lease with the server that gave it.
        Renew = 5,
        /// A client extends its lease with any server.
        Rebind = 6,
        /// A server answers.
        Reply = 7,
        /// A client gives addresses back.
        Release = 8,
        /// A client found an address in use.
        Decline = 9,
        /// A server asks a client to renew.
        Reconfigure = 10,
        /// A client asks for configuration only.
        InformationRequest = 11,
    }
}

/// Option codes the gateway reads or writes.
pub mod option {
    /// The client's DUID.
    pub const CLIENT_ID: u16 = 1;
    /// The server's DUID.
    pub const SERVER_ID: u16 = 2;
    /// An identity association for non-temporary addresses.
    pub const IA_NA: u16 = 3;
    /// An address inside an IA.
    pub const IAADDR: u16 = 5;
    /// The option request option.
    pub const ORO: u16 = 6;
    /// Server preference.
    pub const PREFERENCE: u16 = 7;
    /// Elapsed time.
    pub const ELAPSED_TIME: u16 = 8;
    /// A status code.
    pub const STATUS_CODE: u16 = 13;
    /// Rapid commit (two-message exchange).
    pub const RAPID_COMMIT: u16 = 14;
    /// DNS recursive name servers (RFC 3646).
    pub const DNS_SERVERS: u16 = 23;
    /// Domain search list (RFC 3646).
    pub const DOMAIN_LIST: u16 = 24;
}

/// Status codes (RFC 8415 section 21.13).
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0;
    /// No addresses available for the IA.
    pub const NO_ADDRS_AVAIL: u16 = 2;
    /// The addresses are not appropriate for the link.
    pub const NOT_ON_LINK: u16 = 4;
}

/// A read/write view over a DHCPv6 message (the UDP payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer that holds at least the fixed header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Self::new_unchecked(buffer))
    }

    /// The message type.
    #[inline]
    pub fn msg_type(&self) -> MessageType {
        MessageType::from(self.buffer.as_ref()[0])
    }

    /// The transaction id (24 bits).
    #[inline]
    pub fn transaction_id(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([0, b[1], b[2], b[3]])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The options.
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the message type.
    #[inline]
    pub fn set_msg_type(&mut self, value: MessageType) {
        self.buffer.as_mut()[0] = value.into();
    }

    /// Set the transaction id (its low 24 bits).
    #[inline]
    pub fn set_transaction_id(&mut self, value: u32) {
        self.buffer.as_mut()[1..4].copy_from_slice(&value.to_be_bytes()[1..]);
    }

    /// The options area, to write into.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// One option: its code and its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dhcpv6Option<'a> {
    /// The code.
    pub code: u16,
    /// The data.
    pub data: &'a [u8],
}

/// An iterator over options (of a message, or nested in an option); one
/// running past the buffer yields [`Error::Truncated`] and stops it.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
}

impl<'a> Options<'a> {
    /// Iterate the options in `data`.
    pub const fn new(data: &'a [u8]) -> Options<'a> {
        Options { rest: data }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<Dhcpv6Option<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((head, rest)) = self.rest.split_at_checked(4) else {
            self.rest = &[];
            return Some(Err(Error::Truncated));
        };
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let Some((data, rest)) = rest.split_at_checked(len) else {
            self.rest = &[];
            return Some(Err(Error::Truncated));
        };
        self.rest = rest;
        Some(Ok(Dhcpv6Option { code, data }))
    }
}

/// Appends options to a buffer the caller sized, saying [`Error::NoRoom`]
/// instead of writing past it.
#[derive(Debug)]
pub struct OptionWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

/// An option opened with [`OptionWriter::open`] whose length is written by
/// [`OptionWriter::close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "an opened option must be closed"]
pub struct Open(usize);

impl<'a> OptionWriter<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> OptionWriter<'a> {
        OptionWriter { buf, pos: 0 }
    }

    fn room(&self, n: usize) -> Result<()> {
        if self.pos + n > self.buf.len() {
            Err(Error::NoRoom)
        } else {
            Ok(())
        }
    }

    /// Append raw bytes (inside an opened option).
    pub fn bytes(&mut self, data: &[u8]) -> Result<()> {
        self.room(data.len())?;
        self.buf[self.pos..self.pos + data.len()].copy_from_slice(data);
        self.pos += data.len();
        Ok(())
    }

    /// Append option `code` holding `data`.
    pub fn put(&mut self, code: u16, data: &[u8]) -> Result<()> {
        let len = u16::try_from(data.len()).map_err(|_| Error::Malformed)?;
        self.room(4 + data.len())?;
        self.bytes(&code.to_be_bytes())?;
        self.bytes(&len.to_be_bytes())?;
        self.bytes(data)
    }

    /// Start option `code`: its data follows (with [`bytes`](Self::bytes)
    /// or nested options) until [`close`](Self::close).
    pub fn open(&mut self, code: u16) -> Result<Open> {
        self.room(4)?;
        let at = self.pos;
        self.bytes(&code.to_be_bytes())?;
        self.bytes(&[0, 0])?;
        Ok(Open(at))
    }

    /// Write the length of an opened option.
    pub fn close(&mut self, open: Open) -> Result<()> {
        let len = u16::try_from(self.pos - open.0 - 4).map_err(|_| Error::Malformed)?;
        self.buf[open.0 + 2..open.0 + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Append a status code option.
    pub fn status(&mut self, code: u16, message: &[u8]) -> Result<()> {
        let open = self.open(option::STATUS_CODE)?;
        self.bytes(&code.to_be_bytes())?;
        self.bytes(message)?;
        self.close(open)
    }

    /// How many bytes are written.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing is written yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }
}

/// What a server needs from a client's message, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<'a> {
    /// The message type.
    pub msg_type: MessageType,
    /// The transaction id.
    pub transaction_id: u32,
    /// The client's DUID (option 1), as sent.
    pub client_id: Option<&'a [u8]>,
    /// The server DUID the client addressed (option 2), as sent.
    pub server_id: Option<&'a [u8]>,
    /// The IAID of the client's first IA_NA, when it sent one.
    pub ia_na: Option<u32>,
    /// Whether it asked for rapid commit.
    pub rapid_commit: bool,
}

impl<'a> Repr<'a> {
    /// Parse a message: well-formed options, DUIDs of 1 to
    /// [`MAX_DUID_LEN`] bytes, IA_NAs of at least 12 bytes.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Repr<'a>> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let duid = |data: &'a [u8]| -> Result<&'a [u8]> {
            if data.is_empty() || data.len() > MAX_DUID_LEN {
                Err(Error::Malformed)
            } else {
                Ok(data)
            }
        };
        let mut repr = Repr {
            msg_type: packet.msg_type(),
            transaction_id: packet.transaction_id(),
            client_id: None,
            server_id: None,
            ia_na: None,
            rapid_commit: false,
        };
        for opt in Options::new(packet.options()) {
            let opt = opt?;
            match opt.code {
                option::CLIENT_ID => repr.client_id = Some(duid(opt.data)?),
                option::SERVER_ID => repr.server_id = Some(duid(opt.data)?),
                option::IA_NA => {
                    let [a, b, c, d, ..] = *opt.data else {
                        return Err(Error::Malformed);
                    };
                    if opt.data.len() < 12 {
                        return Err(Error::Malformed);
                    }
                    for nested in Options::new(&opt.data[12..]) {
                        nested?;
                    }
                    repr.ia_na.get_or_insert(u32::from_be_bytes([a, b, c, d]));
                }
                option::RAPID_COMMIT => repr.rapid_commit = true,
                _ => {}
            }
        }
        Ok(repr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SOLICIT shaped like ISC dhclient's (`dhclient -6`): client DUID
    /// (DUID-LLT), elapsed time, an IA_NA with IAID 0x00010203, and an
    /// option request for DNS servers and the domain list.
    fn solicit() -> Vec<u8> {
        let mut b = vec![1, 0x12, 0x34, 0x56];
        b.extend_from_slice(&[0, 1, 0, 14, 0, 1, 0, 1, 0x2c, 0x6f, 0x9a, 0x01]);
        b.extend_from_slice(&[2, 0, 0, 0, 1, 1]);
        b.extend_from_slice(&[0, 8, 0, 2, 0, 0]);
        b.extend_from_slice(&[0, 3, 0, 12, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[0, 6, 0, 4, 0, 23, 0, 24]);
        b
    }

    #[test]
    fn a_solicit_parses() {
        let bytes = solicit();
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(repr.msg_type, MessageType::Solicit);
        assert_eq!(repr.transaction_id, 0x12_3456);
        assert_eq!(repr.client_id.map(<[u8]>::len), Some(14));
        assert_eq!(repr.ia_na, Some(0x0001_0203));
        assert_eq!(repr.server_id, None);
        assert!(!repr.rapid_commit);
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert_eq!(
            Packet::new_checked(&[1u8, 2][..]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = solicit();
        bad.extend_from_slice(&[0, 2, 0, 9, 1]);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bad[..])).unwrap_err(),
            Error::Truncated
        );
        let mut bad = solicit();
        bad.extend_from_slice(&[0, 3, 0, 4, 0, 0, 0, 1]);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bad[..])).unwrap_err(),
            Error::Malformed,
            "a short IA_NA"
        );
        let mut bad = solicit();
        bad.extend_from_slice(&[0, 2, 0, 0]);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bad[..])).unwrap_err(),
            Error::Malformed,
            "an empty server DUID"
        );
    }

    #[test]
    fn a_reply_written_here_decodes_with_dhcproto() {
        use dhcproto::{Decodable, Decoder, v6};
        let mut buf = [0u8; 200];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(MessageType::Reply);
        p.set_transaction_id(0x12_3456);
        let n = {
            let mut w = OptionWriter::new(p.options_mut());
            w.put(option::CLIENT_ID, &[0, 3, 0, 1, 2, 0, 0, 0, 1, 1])
                .unwrap();
            w.put(option::SERVER_ID, &[0, 3, 0, 1, 0, 0, 0x5e, 0, 1, 0])
                .unwrap();
            let ia = w.open(option::IA_NA).unwrap();
            w.bytes(&0x0001_0203u32.to_be_bytes()).unwrap();
            w.bytes(&43_200u32.to_be_bytes()).unwrap();
            w.bytes(&69_120u32.to_be_bytes()).unwrap();
            let addr = w.open(option::IAADDR).unwrap();
            w.bytes(&"fd00:1::10".parse::<Ipv6Addr>().unwrap().octets())
                .unwrap();
            w.bytes(&86_400u32.to_be_bytes()).unwrap();
            w.bytes(&86_400u32.to_be_bytes()).unwrap();
            w.close(addr).unwrap();
            w.close(ia).unwrap();
            w.put(
                option::DNS_SERVERS,
                &"fd00::53".parse::<Ipv6Addr>().unwrap().octets(),
            )
            .unwrap();
            w.status(status::SUCCESS, b"").unwrap();
            w.len()
        };
        let msg = v6::Message::decode(&mut Decoder::new(&buf[..HEADER_LEN + n]))
            .expect("dhcproto decodes it");
        assert_eq!(msg.msg_type(), v6::MessageType::Reply);
        assert_eq!(msg.xid(), [0x12, 0x34, 0x56]);
        let Some(v6::DhcpOption::IANA(ia)) = msg.opts().get(v6::OptionCode::IANA) else {
            panic!("no IA_NA: {msg:?}")
        };
        assert_eq!((ia.id, ia.t1, ia.t2), (0x0001_0203, 43_200, 69_120));
        let Some(v6::DhcpOption::IAAddr(addr)) = ia.opts.get(v6::OptionCode::IAAddr) else {
            panic!("no IAADDR: {ia:?}")
        };
        assert_eq!(addr.addr, "fd00:1::10".parse::<Ipv6Addr>().unwrap());
        assert_eq!((addr.preferred_life, addr.valid_life), (86_400, 86_400));
        assert_eq!(
            msg.opts().get(v6::OptionCode::DomainNameServers),
            Some(&v6::DhcpOption::DomainNameServers(vec![
                "fd00::53".parse().unwrap()
            ]))
        );
    }

    #[test]
    fn dhcproto_requests_parse_here() {
        use dhcproto::{Encodable, Encoder, v6};
        let mut msg = v6::Message::new_with_id(v6::MessageType::Request, [1, 2, 3]);
        msg.opts_mut()
            .insert(v6::DhcpOption::ClientId(vec![0, 3, 0, 1, 2, 0, 0, 0, 2, 1]));
        msg.opts_mut().insert(v6::DhcpOption::ServerId(vec![
            0, 3, 0, 1, 0, 0, 0x5e, 0, 1, 0,
        ]));
        msg.opts_mut().insert(v6::DhcpOption::IANA(v6::IANA {
            id: 9,
            t1: 0,
            t2: 0,
            opts: v6::DhcpOptions::new(),
        }));
        let mut bytes = Vec::new();
        msg.encode(&mut Encoder::new(&mut bytes)).unwrap();
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(repr.msg_type, MessageType::Request);
        assert_eq!(repr.transaction_id, 0x01_0203);
        assert_eq!(repr.ia_na, Some(9));
        assert_eq!(repr.server_id, Some(&[0, 3, 0, 1, 0, 0, 0x5e, 0, 1, 0][..]));
    }

    #[test]
    fn the_writer_never_overruns() {
        let mut buf = [0u8; 6];
        let mut w = OptionWriter::new(&mut buf);
        assert_eq!(w.put(1, &[1, 2, 3]).unwrap_err(), Error::NoRoom);
        w.put(1, &[1, 2]).unwrap();
        assert_eq!(w.open(2).unwrap_err(), Error::NoRoom);
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                let _ = Repr::parse(&packet);
            }
        }
    }
}
