//! ICMP for IPv6 (RFC 4443): the header and its pseudo-header checksum, echo
//! request/reply, and the two neighbour discovery messages (RFC 4861) a
//! gateway answers: neighbour solicitation and neighbour advertisement, with
//! the source/target link-layer address options.
//!
//! ```text
//!  0       8       16              31
//!  +-------+-------+---------------+
//!  | type  | code  |   checksum    |
//!  +-------+-------+---------------+
//!  |  echo: identifier, sequence   |  NS: reserved  NA: R|S|O|reserved
//!  +-------------------------------+
//!  |  NS/NA: target address (16)   |
//!  +-------------------------------+
//!  |  NS/NA: options: type(1) length(1, in 8-byte units) data ...
//! ```
//!
//! The checksum covers a pseudo-header made of the IPv6 source and
//! destination, so the accessors that touch it take both addresses.

use core::net::Ipv6Addr;

use crate::{Error, EthernetAddress, IpProtocol, Result, checksum, read_ipv6, read_u16, write_u16};

enum_with_unknown! {
    /// The ICMPv6 message type.
    pub enum Message(u8) {
        /// Destination unreachable.
        DstUnreachable = 1,
        /// Packet too big.
        PktTooBig = 2,
        /// Time exceeded.
        TimeExceeded = 3,
        /// Parameter problem.
        ParamProblem = 4,
        /// Echo request.
        EchoRequest = 128,
        /// Echo reply.
        EchoReply = 129,
        /// Router solicitation.
        RouterSolicit = 133,
        /// Router advertisement.
        RouterAdvert = 134,
        /// Neighbour solicitation.
        NeighborSolicit = 135,
        /// Neighbour advertisement.
        NeighborAdvert = 136,
        /// Redirect.
        Redirect = 137,
    }
}

impl Message {
    /// Whether this message carries a target address and options (NS, NA).
    pub const fn is_neighbor_discovery(&self) -> bool {
        matches!(self, Message::NeighborSolicit | Message::NeighborAdvert)
    }
}

mod field {
    use core::ops::{Range, RangeFrom};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQNO: usize = 6;
    pub const HEADER_END: usize = 8;
    pub const NA_FLAGS: usize = 4;
    pub const NDP_TARGET: Range<usize> = 8..24;
    pub const NDP_OPTIONS: RangeFrom<usize> = 24..;
    pub const RA_CUR_HOP_LIMIT: usize = 4;
    pub const RA_FLAGS: usize = 5;
    pub const RA_ROUTER_LIFETIME: usize = 6;
    pub const RA_REACHABLE_TIME: Range<usize> = 8..12;
    pub const RA_RETRANS_TIMER: Range<usize> = 12..16;
}

/// The length of a router solicitation without options (RFC 4861 4.1).
pub const RS_HEADER_LEN: usize = field::HEADER_END;

/// The length of a router advertisement without options (RFC 4861 4.2).
pub const RA_HEADER_LEN: usize = field::RA_RETRANS_TIMER.end;

/// The "managed address configuration" flag of a router advertisement:
/// addresses come from DHCPv6.
pub const RA_MANAGED: u8 = 0x80;
/// The "other configuration" flag: other settings (DNS) come from DHCPv6.
pub const RA_OTHER: u8 = 0x40;

/// The length of the ICMPv6 header.
pub const HEADER_LEN: usize = field::HEADER_END;

/// The length of a neighbour solicitation or advertisement without options.
pub const NDP_HEADER_LEN: usize = field::NDP_OPTIONS.start;

/// The hop limit every neighbour discovery message must carry (RFC 4861):
/// anything else may have come from beyond the link.
pub const NDP_HOP_LIMIT: u8 = 255;

/// The flags of a neighbour advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct NeighborFlags(u8);

impl NeighborFlags {
    /// No flag.
    pub const EMPTY: NeighborFlags = NeighborFlags(0);
    /// R: the sender is a router.
    pub const ROUTER: NeighborFlags = NeighborFlags(0x80);
    /// S: sent in response to a solicitation.
    pub const SOLICITED: NeighborFlags = NeighborFlags(0x40);
    /// O: override an existing cache entry.
    pub const OVERRIDE: NeighborFlags = NeighborFlags(0x20);

    /// The flags from the first byte of the field (reserved bits dropped).
    pub const fn from_bits(bits: u8) -> NeighborFlags {
        NeighborFlags(bits & 0xe0)
    }

    /// The first byte of the field.
    pub const fn bits(&self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(&self, other: NeighborFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of flags.
    pub const fn union(self, other: NeighborFlags) -> NeighborFlags {
        NeighborFlags(self.0 | other.0)
    }
}

impl core::ops::BitOr for NeighborFlags {
    type Output = NeighborFlags;

    fn bitor(self, rhs: NeighborFlags) -> NeighborFlags {
        self.union(rhs)
    }
}

/// A read/write view over an ICMPv6 message; the buffer is exactly the
/// message (the IPv6 payload), since the checksum covers all of it.
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

    /// Check that the buffer holds the header, and for NS/NA the target
    /// address too, so that the accessors of the message's type cannot panic.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || (self.msg_type().is_neighbor_discovery() && len < NDP_HEADER_LEN) {
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

    /// The flags of a neighbour advertisement.
    #[inline]
    pub fn neighbor_flags(&self) -> NeighborFlags {
        NeighborFlags::from_bits(self.buffer.as_ref()[field::NA_FLAGS])
    }

    /// The target address of an NS or NA.
    ///
    /// # Panics
    /// Panics on a buffer shorter than [`NDP_HEADER_LEN`], which
    /// `new_checked` rules out for NS and NA messages.
    #[inline]
    pub fn target_addr(&self) -> Ipv6Addr {
        read_ipv6(self.buffer.as_ref(), field::NDP_TARGET.start)
    }

    /// Whether the checksum over the pseudo-header and the whole message is
    /// correct.
    pub fn verify_checksum(&self, src_addr: &Ipv6Addr, dst_addr: &Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        let Ok(len) = u32::try_from(data.len()) else {
            return false;
        };
        let pseudo = checksum::pseudo_header_v6(src_addr, dst_addr, IpProtocol::Icmpv6.into(), len);
        checksum::combine(&[pseudo, checksum::data(data)]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// What follows the eight-byte header (echo data).
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::HEADER_END..]
    }

    /// The options of an NS or NA: iterate them with [`NdiscOptions`].
    ///
    /// # Panics
    /// As [`target_addr`](Packet::target_addr).
    #[inline]
    pub fn options(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::NDP_OPTIONS]
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

    /// Set the four bytes after the checksum to the NA flags and zeroes (for
    /// an NS, pass [`NeighborFlags::EMPTY`] to clear the reserved field).
    pub fn set_neighbor_flags(&mut self, flags: NeighborFlags) {
        let data = self.buffer.as_mut();
        data[field::NA_FLAGS..field::HEADER_END].copy_from_slice(&[flags.bits(), 0, 0, 0]);
    }

    /// Set the target address of an NS or NA.
    ///
    /// # Panics
    /// Panics on a buffer shorter than [`NDP_HEADER_LEN`].
    pub fn set_target_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::NDP_TARGET].copy_from_slice(&value.octets())
    }

    /// Set the four bytes after the checksum (echo identifier and sequence number, or the MTU of "packet too big", RFC 4443).
    pub fn set_rest_of_header(&mut self, value: u32) {
        self.buffer.as_mut()[field::ECHO_IDENT..field::HEADER_END]
            .copy_from_slice(&value.to_be_bytes());
    }

    /// Write the fixed part of a router advertisement after the checksum:
    /// current hop limit, flags ([`RA_MANAGED`], [`RA_OTHER`]), router
    /// lifetime (seconds), reachable time and retransmission timer
    /// (milliseconds; 0: unspecified).
    ///
    /// # Panics
    /// Panics on a buffer shorter than [`RA_HEADER_LEN`].
    pub fn set_router_advert(
        &mut self,
        cur_hop_limit: u8,
        flags: u8,
        router_lifetime: u16,
        reachable_time: u32,
        retrans_timer: u32,
    ) {
        let data = self.buffer.as_mut();
        data[field::RA_CUR_HOP_LIMIT] = cur_hop_limit;
        data[field::RA_FLAGS] = flags;
        write_u16(data, field::RA_ROUTER_LIFETIME, router_lifetime);
        data[field::RA_REACHABLE_TIME].copy_from_slice(&reachable_time.to_be_bytes());
        data[field::RA_RETRANS_TIMER].copy_from_slice(&retrans_timer.to_be_bytes());
    }

    /// What follows the header, mutably.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::HEADER_END..]
    }

    /// The options of an NS or NA, mutably.
    ///
    /// # Panics
    /// Panics on a buffer shorter than [`NDP_HEADER_LEN`].
    pub fn options_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::NDP_OPTIONS]
    }

    /// Compute the checksum over the pseudo-header and the message and
    /// write it.
    ///
    /// # Panics
    /// Panics if the message is longer than 4 GiB.
    pub fn fill_checksum(&mut self, src_addr: &Ipv6Addr, dst_addr: &Ipv6Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        let len = u32::try_from(data.len()).expect("ICMPv6 message longer than 4 GiB");
        let pseudo = checksum::pseudo_header_v6(src_addr, dst_addr, IpProtocol::Icmpv6.into(), len);
        let sum = checksum::combine(&[pseudo, checksum::data(data)]);
        self.set_checksum(!sum)
    }

    /// Turn an echo request into an echo reply in place, for a reply whose
    /// source and destination are the request's swapped: the pseudo-header
    /// sum does not change, so only the type word is updated (RFC 1624).
    pub fn echo_request_into_reply(&mut self) {
        let old = u16::from_be_bytes([self.buffer.as_ref()[field::TYPE], self.msg_code()]);
        self.set_msg_type(Message::EchoReply);
        let new = u16::from_be_bytes([self.buffer.as_ref()[field::TYPE], self.msg_code()]);
        let sum = checksum::update(self.checksum(), old, new);
        self.set_checksum(sum)
    }
}

enum_with_unknown! {
    /// The type of a neighbour discovery option.
    pub enum NdiscOptionType(u8) {
        /// The link-layer address of the sender (in NS, RS, RA).
        SourceLinkLayerAddr = 1,
        /// The link-layer address of the target (in NA, redirect).
        TargetLinkLayerAddr = 2,
        /// Prefix information (RA).
        PrefixInformation = 3,
        /// Redirected header (redirect).
        RedirectedHeader = 4,
        /// MTU (RA).
        Mtu = 5,
    }
}

mod option_field {
    use core::ops::Range;

    pub const TYPE: usize = 0;
    pub const LENGTH: usize = 1;
    pub const LLADDR: Range<usize> = 2..8;
}

/// The length of a link-layer address option carrying an Ethernet address.
pub const LLADDR_OPTION_LEN: usize = 8;

/// The length of a prefix information option (RFC 4861 4.6.2).
pub const PREFIX_INFO_OPTION_LEN: usize = 32;

/// The length of an MTU option (RFC 4861 4.6.4).
pub const MTU_OPTION_LEN: usize = 8;

/// The on-link flag of a prefix information option.
pub const PREFIX_ON_LINK: u8 = 0x80;
/// The autonomous address-configuration (SLAAC) flag of a prefix
/// information option.
pub const PREFIX_AUTONOMOUS: u8 = 0x40;

/// A read/write view over one neighbour discovery option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NdiscOption<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NdiscOption<T> {
    /// Wrap a buffer without checking it; accessors may panic.
    pub const fn new_unchecked(buffer: T) -> NdiscOption<T> {
        NdiscOption { buffer }
    }

    /// Wrap a buffer after checking that the length field is not zero (RFC
    /// 4861 4.6: such an option must make the whole message be discarded)
    /// and that the buffer holds the whole option.
    pub fn new_checked(buffer: T) -> Result<NdiscOption<T>> {
        let option = Self::new_unchecked(buffer);
        option.check_len()?;
        Ok(option)
    }

    /// See [`new_checked`](Self::new_checked).
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < 2 {
            return Err(Error::Truncated);
        }
        if data[option_field::LENGTH] == 0 {
            return Err(Error::Malformed);
        }
        if data.len() < self.option_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The option type.
    #[inline]
    pub fn option_type(&self) -> NdiscOptionType {
        NdiscOptionType::from(self.buffer.as_ref()[option_field::TYPE])
    }

    /// The whole option's length in bytes (the length field times eight).
    #[inline]
    pub fn option_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[option_field::LENGTH]) * 8
    }

    /// The Ethernet address of a source or target link-layer address option
    /// of length one; `None` for other options.
    pub fn link_layer_addr(&self) -> Option<EthernetAddress> {
        match self.option_type() {
            NdiscOptionType::SourceLinkLayerAddr | NdiscOptionType::TargetLinkLayerAddr
                if self.option_len() == LLADDR_OPTION_LEN =>
            {
                Some(EthernetAddress::from_bytes(
                    &self.buffer.as_ref()[option_field::LLADDR],
                ))
            }
            _ => None,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NdiscOption<T> {
    /// Write a link-layer address option (type, length one, address).
    ///
    /// # Panics
    /// Panics if the buffer is shorter than [`LLADDR_OPTION_LEN`].
    pub fn emit_link_layer_addr(&mut self, option_type: NdiscOptionType, addr: EthernetAddress) {
        let data = self.buffer.as_mut();
        data[option_field::TYPE] = option_type.into();
        data[option_field::LENGTH] = 1;
        data[option_field::LLADDR].copy_from_slice(&addr.0);
    }

    /// Write a prefix information option: `prefix`/`prefix_len` with
    /// `flags` ([`PREFIX_ON_LINK`], [`PREFIX_AUTONOMOUS`]) and lifetimes
    /// in seconds.
    ///
    /// # Panics
    /// Panics if the buffer is shorter than [`PREFIX_INFO_OPTION_LEN`].
    pub fn emit_prefix_info(
        &mut self,
        prefix: Ipv6Addr,
        prefix_len: u8,
        flags: u8,
        valid_lifetime: u32,
        preferred_lifetime: u32,
    ) {
        let data = &mut self.buffer.as_mut()[..PREFIX_INFO_OPTION_LEN];
        data[option_field::TYPE] = NdiscOptionType::PrefixInformation.into();
        data[option_field::LENGTH] = 4;
        data[2] = prefix_len;
        data[3] = flags;
        data[4..8].copy_from_slice(&valid_lifetime.to_be_bytes());
        data[8..12].copy_from_slice(&preferred_lifetime.to_be_bytes());
        data[12..16].fill(0);
        data[16..32].copy_from_slice(&prefix.octets());
    }

    /// Write an MTU option.
    ///
    /// # Panics
    /// Panics if the buffer is shorter than [`MTU_OPTION_LEN`].
    pub fn emit_mtu(&mut self, mtu: u32) {
        let data = &mut self.buffer.as_mut()[..MTU_OPTION_LEN];
        data[option_field::TYPE] = NdiscOptionType::Mtu.into();
        data[option_field::LENGTH] = 1;
        data[2..4].fill(0);
        data[4..8].copy_from_slice(&mtu.to_be_bytes());
    }
}

/// An iterator over the options of a neighbour discovery message. After a
/// malformed option it yields that error and stops.
#[derive(Debug, Clone)]
pub struct NdiscOptions<'a> {
    rest: &'a [u8],
}

impl<'a> NdiscOptions<'a> {
    /// Iterate the options in `data`.
    pub const fn new(data: &'a [u8]) -> NdiscOptions<'a> {
        NdiscOptions { rest: data }
    }
}

impl<'a> Iterator for NdiscOptions<'a> {
    type Item = Result<NdiscOption<&'a [u8]>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match NdiscOption::new_checked(self.rest) {
            Ok(option) => {
                let (this, rest) = self.rest.split_at(option.option_len());
                self.rest = rest;
                Some(Ok(NdiscOption::new_unchecked(this)))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

/// A validated ICMPv6 message of the kinds the gateway handles.
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
    /// A neighbour solicitation.
    NeighborSolicit {
        /// The address whose link-layer address is asked for.
        target_addr: Ipv6Addr,
        /// The sender's link-layer address, if the source link-layer address
        /// option is present.
        lladdr: Option<EthernetAddress>,
    },
    /// A neighbour advertisement.
    NeighborAdvert {
        /// The R, S and O flags.
        flags: NeighborFlags,
        /// The address advertised.
        target_addr: Ipv6Addr,
        /// Its link-layer address, if the target link-layer address option
        /// is present.
        lladdr: Option<EthernetAddress>,
    },
}

impl<'a> Repr<'a> {
    /// Parse a message carried from `src_addr` to `dst_addr`, verifying the
    /// checksum and, for NS/NA, the code and every option. Other message
    /// types are [`Error::Unrecognized`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        src_addr: &Ipv6Addr,
        dst_addr: &Ipv6Addr,
        packet: &Packet<&'a T>,
    ) -> Result<Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src_addr, dst_addr) {
            return Err(Error::Checksum);
        }
        let lladdr = |wanted: NdiscOptionType| -> Result<Option<EthernetAddress>> {
            let mut found = None;
            for option in NdiscOptions::new(packet.options()) {
                let option = option?;
                if option.option_type() == wanted {
                    found = option.link_layer_addr();
                }
            }
            Ok(found)
        };
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
            (Message::NeighborSolicit, 0) => Ok(Repr::NeighborSolicit {
                target_addr: packet.target_addr(),
                lladdr: lladdr(NdiscOptionType::SourceLinkLayerAddr)?,
            }),
            (Message::NeighborAdvert, 0) => Ok(Repr::NeighborAdvert {
                flags: packet.neighbor_flags(),
                target_addr: packet.target_addr(),
                lladdr: lladdr(NdiscOptionType::TargetLinkLayerAddr)?,
            }),
            (Message::NeighborSolicit | Message::NeighborAdvert, _) => Err(Error::Malformed),
            _ => Err(Error::Unrecognized),
        }
    }

    /// The length of the message this emits.
    pub const fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => {
                HEADER_LEN + data.len()
            }
            Repr::NeighborSolicit { lladdr, .. } | Repr::NeighborAdvert { lladdr, .. } => {
                NDP_HEADER_LEN
                    + if lladdr.is_some() {
                        LLADDR_OPTION_LEN
                    } else {
                        0
                    }
            }
        }
    }

    /// Write the message and its checksum for a packet from `src_addr` to
    /// `dst_addr`.
    ///
    /// # Panics
    /// Panics if the buffer is not [`buffer_len`](Self::buffer_len) long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src_addr: &Ipv6Addr,
        dst_addr: &Ipv6Addr,
        packet: &mut Packet<T>,
    ) {
        match *self {
            Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let msg_type = if matches!(self, Repr::EchoRequest { .. }) {
                    Message::EchoRequest
                } else {
                    Message::EchoReply
                };
                packet.set_msg_type(msg_type);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                packet.data_mut().copy_from_slice(data);
            }
            Repr::NeighborSolicit {
                target_addr,
                lladdr,
            } => {
                packet.set_msg_type(Message::NeighborSolicit);
                packet.set_msg_code(0);
                packet.set_neighbor_flags(NeighborFlags::EMPTY);
                packet.set_target_addr(target_addr);
                if let Some(addr) = lladdr {
                    NdiscOption::new_unchecked(packet.options_mut())
                        .emit_link_layer_addr(NdiscOptionType::SourceLinkLayerAddr, addr);
                }
            }
            Repr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            } => {
                packet.set_msg_type(Message::NeighborAdvert);
                packet.set_msg_code(0);
                packet.set_neighbor_flags(flags);
                packet.set_target_addr(target_addr);
                if let Some(addr) = lladdr {
                    NdiscOption::new_unchecked(packet.options_mut())
                        .emit_link_layer_addr(NdiscOptionType::TargetLinkLayerAddr, addr);
                }
            }
        }
        packet.fill_checksum(src_addr, dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    // NS from fd00::5 (02:00:00:00:00:05) for fd00::1, to ff02::1:ff00:1.
    static NS_BYTES: [u8; 32] = [
        0x87, 0x00, 0x00, 0x00, 0, 0, 0, 0, //
        0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
        0x01, 0x01, 0x02, 0, 0, 0, 0, 0x05,
    ];

    fn ns_bytes() -> [u8; 32] {
        let mut bytes = NS_BYTES;
        Packet::new_unchecked(&mut bytes[..])
            .fill_checksum(&addr("fd00::5"), &addr("ff02::1:ff00:1"));
        bytes
    }

    #[test]
    fn neighbor_solicit_deconstruct() {
        let bytes = ns_bytes();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::NeighborSolicit);
        assert_eq!(packet.target_addr(), addr("fd00::1"));
        assert!(packet.verify_checksum(&addr("fd00::5"), &addr("ff02::1:ff00:1")));
        assert!(!packet.verify_checksum(&addr("fd00::6"), &addr("ff02::1:ff00:1")));
        let mut options = NdiscOptions::new(packet.options());
        let option = options.next().unwrap().unwrap();
        assert_eq!(option.option_type(), NdiscOptionType::SourceLinkLayerAddr);
        assert_eq!(
            option.link_layer_addr(),
            Some(EthernetAddress([2, 0, 0, 0, 0, 5]))
        );
        assert!(options.next().is_none());
        assert_eq!(
            Repr::parse(&addr("fd00::5"), &addr("ff02::1:ff00:1"), &packet).unwrap(),
            Repr::NeighborSolicit {
                target_addr: addr("fd00::1"),
                lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 5])),
            }
        );
    }

    #[test]
    fn neighbor_solicit_emit() {
        let repr = Repr::NeighborSolicit {
            target_addr: addr("fd00::1"),
            lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 5])),
        };
        let mut bytes = [0xffu8; 32];
        assert_eq!(repr.buffer_len(), 32);
        repr.emit(
            &addr("fd00::5"),
            &addr("ff02::1:ff00:1"),
            &mut Packet::new_unchecked(&mut bytes[..]),
        );
        assert_eq!(bytes, ns_bytes());
    }

    #[test]
    fn neighbor_advert_round_trip() {
        let repr = Repr::NeighborAdvert {
            flags: NeighborFlags::ROUTER | NeighborFlags::SOLICITED | NeighborFlags::OVERRIDE,
            target_addr: addr("fd00::1"),
            lladdr: Some(EthernetAddress([0, 0, 0x5e, 0, 1, 0])),
        };
        let mut bytes = [0u8; 32];
        let (src, dst) = (addr("fd00::1"), addr("fd00::5"));
        repr.emit(&src, &dst, &mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes[0], 136);
        assert_eq!(bytes[4], 0xe0);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.neighbor_flags().contains(NeighborFlags::SOLICITED));
        assert_eq!(Repr::parse(&src, &dst, &packet).unwrap(), repr);
    }

    #[test]
    fn malformed_options_and_codes() {
        let (src, dst) = (addr("fd00::5"), addr("ff02::1:ff00:1"));
        // Option length zero.
        let mut bytes = NS_BYTES;
        bytes[25] = 0;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum(&src, &dst);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Repr::parse(&src, &dst, &packet).unwrap_err(),
            Error::Malformed
        );
        // Option longer than the message.
        let mut bytes = NS_BYTES;
        bytes[25] = 2;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum(&src, &dst);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Repr::parse(&src, &dst, &packet).unwrap_err(),
            Error::Truncated
        );
        // Non-zero code.
        let mut bytes = NS_BYTES;
        bytes[1] = 1;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum(&src, &dst);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Repr::parse(&src, &dst, &packet).unwrap_err(),
            Error::Malformed
        );
        // Bad checksum.
        let mut bytes = ns_bytes();
        bytes[31] ^= 0xff;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Repr::parse(&src, &dst, &packet).unwrap_err(),
            Error::Checksum
        );
        // An NS without room for its target.
        assert_eq!(
            Packet::new_checked(&NS_BYTES[..23]).unwrap_err(),
            Error::Truncated
        );
        // A short echo is fine.
        let mut echo = [128u8, 0, 0, 0, 0, 1, 0, 2];
        Packet::new_unchecked(&mut echo[..]).fill_checksum(&src, &dst);
        let packet = Packet::new_checked(&echo[..]).unwrap();
        assert_eq!(
            Repr::parse(&src, &dst, &packet).unwrap(),
            Repr::EchoRequest {
                ident: 1,
                seq_no: 2,
                data: &[]
            }
        );
    }

    #[test]
    fn echo_reply_in_place_keeps_checksum_valid() {
        let (src, dst) = (addr("fd00::5"), addr("fd00::1"));
        let repr = Repr::EchoRequest {
            ident: 0xbeef,
            seq_no: 3,
            data: b"hello",
        };
        let mut bytes = [0u8; 13];
        repr.emit(&src, &dst, &mut Packet::new_unchecked(&mut bytes[..]));
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.echo_request_into_reply();
        assert!(packet.verify_checksum(&dst, &src));
        assert_eq!(packet.msg_type(), Message::EchoReply);
    }

    #[test]
    fn cross_check_with_etherparse() {
        use etherparse::{Icmpv6Slice, Icmpv6Type, PacketBuilder, icmpv6};
        let (src, dst) = (addr("fd00::5"), addr("ff02::1:ff00:1"));
        // etherparse builds an NS; we parse it.
        let mut payload = Vec::new();
        payload.extend_from_slice(&addr("fd00::1").octets());
        payload.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 5]);
        let mut bytes = Vec::new();
        PacketBuilder::ipv6(src.octets(), dst.octets(), 255)
            .icmpv6(Icmpv6Type::NeighborSolicitation)
            .write(&mut bytes, &payload)
            .unwrap();
        let ip = crate::ipv6::Packet::new_checked(&bytes[..]).unwrap();
        let packet = Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(
            Repr::parse(&src, &dst, &packet).unwrap(),
            Repr::NeighborSolicit {
                target_addr: addr("fd00::1"),
                lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 5])),
            }
        );

        // We emit an NA; etherparse parses it and agrees on the checksum.
        let (na_src, na_dst) = (addr("fd00::1"), addr("fd00::5"));
        let mut out = [0u8; 32];
        Repr::NeighborAdvert {
            flags: NeighborFlags::SOLICITED | NeighborFlags::OVERRIDE,
            target_addr: na_src,
            lladdr: Some(EthernetAddress([0, 0, 0x5e, 0, 1, 0])),
        }
        .emit(&na_src, &na_dst, &mut Packet::new_unchecked(&mut out[..]));
        let slice = Icmpv6Slice::from_slice(&out).unwrap();
        assert!(slice.is_checksum_valid(na_src.octets(), na_dst.octets()));
        match slice.icmp_type() {
            Icmpv6Type::NeighborAdvertisement(header) => {
                assert!(header.solicited && header.r#override && !header.router);
            }
            other => panic!("expected an NA, got {other:?}"),
        }
        match slice.payload_slice().unwrap() {
            icmpv6::Icmpv6PayloadSlice::NeighborAdvertisement(na) => {
                assert_eq!(na.target_address(), na_src);
                let option = na.options_iterator().next().unwrap().unwrap();
                match option {
                    icmpv6::NdpOptionSlice::TargetLinkLayerAddress(tlla) => {
                        assert_eq!(tlla.link_layer_address(), &[0, 0, 0x5e, 0, 1, 0]);
                    }
                    other => panic!("expected a TLLA option, got {other:?}"),
                }
            }
            other => panic!("expected an NA payload, got {other:?}"),
        }
    }
}
