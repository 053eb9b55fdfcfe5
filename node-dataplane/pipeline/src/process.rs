//! The per-frame decision: bytes in, a [`Verdict`] out, the frame rewritten
//! in place. No I/O, no lock, no allocation.
//!
//! ```text
//!  frame from a port
//!   |
//!   +- fabric port ----------------------------------------------> Pass
//!   |
//!   +- gateway port: Ethernet [+ 802.1Q] -- untagged = VLAN 0
//!   |     (port, VLAN) -> VMI --------------- none --> no_logical_interface
//!   |     port security: source MAC, source IP / ARP sender -> *_spoofed
//!   |     the VMI's VRF -+
//!   |                    |
//!   +- host port (a VRF's tap), untagged -> that VRF -+
//!   |                                                 |
//!   |      +------------------------------------------+
//!   |      v destination MAC
//!   |   broadcast/multicast: ARP request -> proxy reply (same port, same VLAN)
//!   |                        IPv6 NS     -> NA (same port, same VLAN)
//!   |                        other       -> multicast (no flooding yet)
//!   |   gateway MAC:         ARP / NS    -> as above
//!   |                        IPv4 / IPv6 -> LPM in the VRF
//!   |                            receive  -> echo request? echo reply : receive_unsupported
//!   |                            VMI      -> TTL-1, MACs, re-tag -> Transmit (its egress)
//!   |                            port     -> TTL-1, MACs, untag  -> Transmit (host port)
//!   |                            discard / none -> discard_route / no_route
//!   |   a VMI's MAC (same network) -> bridge: re-tag, no TTL change -> Transmit
//!   |   anything else -> unknown_unicast
//! ```
//!
//! The caller keeps at least four bytes of headroom before every frame so
//! that a tag can be pushed by moving the 12 MAC bytes, and may keep
//! tailroom after it (a neighbour advertisement can be longer than the
//! solicitation it answers).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use trunkline_wire::ethernet::{self, EtherType};
use trunkline_wire::icmpv6::{self, NeighborFlags};
use trunkline_wire::{EthernetAddress, IpProtocol, arp, icmpv4, ipv4, ipv6, vlan};

use crate::config::PortId;
use crate::counters::Counters;
use crate::tables::{NextHop, PortRole, Tables, Vmi, VmiId, Vrf, mac_key};
use crate::verdict::{DropReason, Verdict};

/// The headroom the caller must keep before each frame.
pub const HEADROOM: usize = vlan::HEADER_LEN;

/// The TTL / hop limit of the replies the gateway originates.
const REPLY_HOP_LIMIT: u8 = 64;

/// The layer-2 header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Header {
    /// The destination MAC.
    pub dst: EthernetAddress,
    /// The source MAC.
    pub src: EthernetAddress,
    /// The tag control information, if the frame has an 802.1Q tag.
    pub tci: Option<u16>,
    /// The EtherType of the payload (after the tag).
    pub ethertype: EtherType,
    /// Where the payload starts: 14, or 18 with a tag.
    pub header_len: usize,
}

impl L2Header {
    /// The VLAN: the tag's VID, or 0 when untagged.
    #[inline]
    pub fn vlan(&self) -> u16 {
        self.tci.map_or(0, |tci| tci & 0x0fff)
    }
}

/// Parse the Ethernet header and the optional 802.1Q tag: the first step of
/// every frame, and the fuzz target's entry point.
#[inline]
pub fn parse_l2(frame: &[u8]) -> Result<L2Header, DropReason> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| DropReason::TruncatedFrame)?;
    let (tci, ethertype, header_len) = match eth.ethertype() {
        EtherType::Vlan => {
            let tag =
                vlan::Packet::new_checked(eth.payload()).map_err(|_| DropReason::TruncatedFrame)?;
            match tag.ethertype() {
                EtherType::Vlan | EtherType::QinQ => return Err(DropReason::DoubleTagged),
                inner => (
                    Some(tag.tci()),
                    inner,
                    ethernet::HEADER_LEN + vlan::HEADER_LEN,
                ),
            }
        }
        EtherType::QinQ => return Err(DropReason::DoubleTagged),
        other => (None, other, ethernet::HEADER_LEN),
    };
    Ok(L2Header {
        dst: eth.dst_addr(),
        src: eth.src_addr(),
        tci,
        ethertype,
        header_len,
    })
}

/// One frame of a batch: `buf[offset..offset + len]` is the frame, with
/// headroom before it and possibly tailroom after it.
#[derive(Debug)]
pub struct FrameBuf<'b> {
    /// The buffer (a UMEM chunk, say).
    pub buf: &'b mut [u8],
    /// Where the frame starts.
    pub offset: usize,
    /// Its length.
    pub len: usize,
}

/// The pipeline for one batch: a snapshot of the tables and the worker's
/// counters. Cheap to build; build one per batch after loading the tables.
#[derive(Debug, Clone, Copy)]
pub struct Pipeline<'a> {
    tables: &'a Tables,
    counters: &'a Counters,
}

/// Where a frame came from, once classified.
#[derive(Clone, Copy)]
struct Ingress<'a> {
    port: PortId,
    /// The VMI it came from (none for a host port).
    vmi: Option<VmiId>,
    vrf: &'a Vrf,
}

/// Who a proxied ARP/ND target is.
enum Target {
    /// A gateway address.
    Gateway,
    /// Routed somewhere else in the VRF.
    Routed,
    /// The asker itself.
    Own,
    /// Not routed (or back where the question came from).
    Unknown,
}

/// Process one frame: see [`Pipeline::process`].
pub fn process(
    tables: &Tables,
    ingress: PortId,
    buf: &mut [u8],
    offset: usize,
    len: usize,
    counters: &Counters,
) -> Verdict {
    Pipeline::new(tables, counters).process(ingress, buf, offset, len)
}

impl<'a> Pipeline<'a> {
    /// A pipeline over these tables, counting into these counters.
    pub fn new(tables: &'a Tables, counters: &'a Counters) -> Pipeline<'a> {
        Pipeline { tables, counters }
    }

    /// Decide what to do with the frame at `buf[offset..offset + len]` that
    /// arrived on `ingress`, rewriting it in place, and count the verdict.
    /// Never panics, whatever the bytes, offset and length.
    pub fn process(&self, ingress: PortId, buf: &mut [u8], offset: usize, len: usize) -> Verdict {
        let verdict = self
            .decide(ingress, buf, offset, len)
            .unwrap_or_else(Verdict::Drop);
        self.counters.record(&verdict);
        verdict
    }

    /// Process a batch of frames that arrived on `ingress`, writing one
    /// verdict per frame; stops at the shorter of the two slices and
    /// returns how many frames it processed.
    pub fn process_batch(
        &self,
        ingress: PortId,
        frames: &mut [FrameBuf<'_>],
        verdicts: &mut [Verdict],
    ) -> usize {
        let n = frames.len().min(verdicts.len());
        for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
            *verdict = self.process(ingress, frame.buf, frame.offset, frame.len);
        }
        n
    }

    #[inline]
    fn decide(
        &self,
        ingress: PortId,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        match offset.checked_add(len) {
            Some(end) if end <= buf.len() => {}
            _ => return Err(DropReason::TruncatedFrame),
        }
        let port = self.tables.port(ingress).ok_or(DropReason::UnknownPort)?;
        match &port.role {
            PortRole::Fabric => Ok(Verdict::Pass),
            PortRole::Gateway { .. } => {
                let l2 = parse_l2(&buf[offset..offset + len])?;
                if l2.src.is_multicast() {
                    return Err(DropReason::InvalidSourceMac);
                }
                let id = port
                    .vmi_at(l2.vlan())
                    .ok_or(DropReason::NoLogicalInterface)?;
                let vmi = &self.tables.vmis[id.index()];
                self.counters.vmi_rx(&vmi.counters, len);
                let result = self.classified(ingress, id, vmi, l2, buf, offset, len);
                if result.is_err() {
                    self.counters.vmi_rx_dropped(&vmi.counters);
                }
                result
            }
            PortRole::Host { vrf, .. } => {
                let l2 = parse_l2(&buf[offset..offset + len])?;
                if l2.tci.is_some() {
                    return Err(DropReason::TaggedOnHostPort);
                }
                if l2.src.is_multicast() {
                    return Err(DropReason::InvalidSourceMac);
                }
                let ctx = Ingress {
                    port: ingress,
                    vmi: None,
                    vrf: &self.tables.vrfs[*vrf],
                };
                self.dispatch(ctx, &l2, buf, offset, len)
            }
        }
    }

    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn classified(
        &self,
        port: PortId,
        id: VmiId,
        vmi: &Vmi,
        l2: L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        if vmi.port_security {
            check_source(vmi, &l2, &buf[offset + l2.header_len..offset + len])?;
        }
        let ctx = Ingress {
            port,
            vmi: Some(id),
            vrf: &self.tables.vrfs[vmi.vrf],
        };
        self.dispatch(ctx, &l2, buf, offset, len)
    }

    #[inline]
    fn dispatch(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let l3 = &buf[offset + l2.header_len..offset + len];
        if l2.dst.is_multicast() {
            return match l2.ethertype {
                EtherType::Arp => self.arp(ctx, l2, buf, offset, len),
                EtherType::Ipv6 => match nd_message(l3)? {
                    Some(icmpv6::Message::NeighborSolicit) => self.ns(ctx, l2, buf, offset, len),
                    Some(_) => Err(DropReason::NdUnsupported),
                    None => Err(DropReason::Multicast),
                },
                _ => Err(DropReason::Multicast),
            };
        }
        if l2.dst == self.tables.gateway_mac {
            return match l2.ethertype {
                EtherType::Arp => self.arp(ctx, l2, buf, offset, len),
                EtherType::Ipv4 => self.route_v4(ctx, l2, buf, offset, len),
                EtherType::Ipv6 => match nd_message(l3)? {
                    Some(icmpv6::Message::NeighborSolicit) => self.ns(ctx, l2, buf, offset, len),
                    Some(_) => Err(DropReason::NdUnsupported),
                    None => self.route_v6(ctx, l2, buf, offset, len),
                },
                _ => Err(DropReason::UnsupportedEtherType),
            };
        }
        // Layer-2 unicast to another MAC: bridge within the network.
        let from = ctx.vmi.ok_or(DropReason::UnknownUnicast)?;
        let to = *ctx
            .vrf
            .bridge
            .get(&mac_key(l2.dst))
            .ok_or(DropReason::UnknownUnicast)?;
        if to == from {
            return Err(DropReason::Hairpin);
        }
        self.send_to_vmi(to, l2, buf, offset, len, false)
    }

    /// Who `target` is, for an ARP/ND question asked from `ctx`.
    #[inline]
    fn target(&self, ctx: Ingress<'_>, target: IpAddr) -> Target {
        match ctx.vrf.lookup(target) {
            Some(NextHop::Receive) => Target::Gateway,
            Some(NextHop::Vmi(id)) if Some(id) == ctx.vmi => Target::Own,
            Some(NextHop::Vmi(_)) => Target::Routed,
            Some(NextHop::Port(port)) if port == ctx.port => Target::Unknown,
            Some(NextHop::Port(_)) => Target::Routed,
            Some(NextHop::Discard) | None => Target::Unknown,
        }
    }

    /// Answer an ARP request in place with the gateway MAC.
    #[inline]
    fn arp(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let l3 = offset + l2.header_len;
        let end = offset + len;
        let repr = {
            let packet =
                arp::Packet::new_checked(&buf[l3..end]).map_err(|_| DropReason::MalformedArp)?;
            arp::Repr::parse(&packet).map_err(|_| DropReason::MalformedArp)?
        };
        if repr.operation != arp::Operation::Request {
            return Err(DropReason::ArpNotRequest);
        }
        if repr.is_gratuitous() {
            return Err(DropReason::GratuitousArp);
        }
        match self.target(ctx, IpAddr::V4(repr.target_protocol_addr)) {
            Target::Gateway | Target::Routed => {}
            Target::Own => return Err(DropReason::GratuitousArp),
            Target::Unknown => return Err(DropReason::ArpUnknownTarget),
        }
        let gateway_mac = self.tables.gateway_mac;
        let mut packet = arp::Packet::new_unchecked(&mut buf[l3..end]);
        packet.set_operation(arp::Operation::Reply);
        packet.set_source_hardware_addr(&gateway_mac.0);
        packet.set_source_protocol_addr(&repr.target_protocol_addr.octets());
        packet.set_target_hardware_addr(&repr.source_hardware_addr.0);
        packet.set_target_protocol_addr(&repr.source_protocol_addr.octets());
        Ok(self.reply(ctx, l2.src, buf, offset, len))
    }

    /// Answer a neighbour solicitation with an advertisement of the gateway
    /// MAC, written over the solicitation.
    fn ns(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        use DropReason::MalformedNeighborDiscovery as Malformed;
        let l3 = offset + l2.header_len;
        let (src, dst, target, lladdr) = {
            let ip = ipv6::Packet::new_checked(&buf[l3..offset + len])
                .map_err(|_| DropReason::MalformedIpv6)?;
            if ip.hop_limit() != icmpv6::NDP_HOP_LIMIT {
                return Err(Malformed);
            }
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let icmp = icmpv6::Packet::new_checked(ip.payload()).map_err(|_| Malformed)?;
            match icmpv6::Repr::parse(&src, &dst, &icmp) {
                Ok(icmpv6::Repr::NeighborSolicit {
                    target_addr,
                    lladdr,
                }) => (src, dst, target_addr, lladdr),
                _ => return Err(Malformed),
            }
        };
        if target.is_multicast()
            || target.is_unspecified()
            || (dst != target && dst != ipv6::solicited_node(&target))
        {
            return Err(Malformed);
        }
        // Duplicate address detection: no source, and so no source
        // link-layer address (RFC 4861 7.1.1); the answer goes to all nodes.
        let dad = src.is_unspecified();
        if dad && lladdr.is_some() {
            return Err(Malformed);
        }
        if let (Some(id), Some(lladdr)) = (ctx.vmi, lladdr)
            && self.tables.vmis[id.index()].port_security
            && lladdr != l2.src
        {
            return Err(DropReason::SourceMacSpoofed);
        }
        let router = match self.target(ctx, IpAddr::V6(target)) {
            Target::Gateway => true,
            Target::Routed => false,
            Target::Own => return Err(DropReason::NdOwnAddress),
            Target::Unknown => return Err(DropReason::NdUnknownTarget),
        };
        let reply_len =
            l2.header_len + ipv6::HEADER_LEN + icmpv6::NDP_HEADER_LEN + icmpv6::LLADDR_OPTION_LEN;
        if offset + reply_len > buf.len() {
            return Err(DropReason::NoTailroom);
        }
        let (ip_dst, eth_dst) = if dad {
            let all_nodes = ipv6::LINK_LOCAL_ALL_NODES;
            (all_nodes, EthernetAddress::from_ipv6_multicast(&all_nodes))
        } else {
            (src, l2.src)
        };
        let mut flags = NeighborFlags::OVERRIDE;
        if router {
            flags = flags | NeighborFlags::ROUTER;
        }
        if !dad {
            flags = flags | NeighborFlags::SOLICITED;
        }
        let icmp = icmpv6::Repr::NeighborAdvert {
            flags,
            target_addr: target,
            lladdr: Some(self.tables.gateway_mac),
        };
        let ip_repr = ipv6::Repr {
            src_addr: target,
            dst_addr: ip_dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.buffer_len(),
            hop_limit: icmpv6::NDP_HOP_LIMIT,
        };
        let mut ip = ipv6::Packet::new_unchecked(&mut buf[l3..offset + reply_len]);
        ip_repr.emit(&mut ip);
        icmp.emit(
            &target,
            &ip_dst,
            &mut icmpv6::Packet::new_unchecked(ip.payload_mut()),
        );
        Ok(self.reply(ctx, eth_dst, buf, offset, reply_len))
    }

    /// Route an IPv4 packet for the gateway MAC.
    #[inline]
    fn route_v4(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let l3 = offset + l2.header_len;
        let mut ip = ipv4::Packet::new_checked(&mut buf[l3..offset + len])
            .map_err(|_| DropReason::MalformedIpv4)?;
        if !ip.verify_checksum() {
            return Err(DropReason::Ipv4BadChecksum);
        }
        let dst = ip.dst_addr();
        if dst.is_multicast() || dst.is_broadcast() {
            return Err(DropReason::Multicast);
        }
        let next_hop = ctx
            .vrf
            .v4
            .lookup(u32::from(dst))
            .ok_or(DropReason::NoRoute)?;
        match next_hop {
            NextHop::Receive => return self.echo_v4(ctx, l2, buf, offset, len),
            NextHop::Discard => return Err(DropReason::DiscardRoute),
            NextHop::Vmi(_) | NextHop::Port(_) => {}
        }
        if ip.ttl() <= 1 {
            return Err(DropReason::TtlExceeded);
        }
        ip.decrement_ttl();
        self.forward(ctx, next_hop, l2, buf, offset, len)
    }

    /// Route an IPv6 packet for the gateway MAC.
    #[inline]
    fn route_v6(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let l3 = offset + l2.header_len;
        let mut ip = ipv6::Packet::new_checked(&mut buf[l3..offset + len])
            .map_err(|_| DropReason::MalformedIpv6)?;
        let dst = ip.dst_addr();
        if dst.is_multicast() {
            return Err(DropReason::Multicast);
        }
        let next_hop = ctx
            .vrf
            .v6
            .lookup(u128::from(dst))
            .ok_or(DropReason::NoRoute)?;
        match next_hop {
            NextHop::Receive => return self.echo_v6(ctx, l2, buf, offset, len),
            NextHop::Discard => return Err(DropReason::DiscardRoute),
            NextHop::Vmi(_) | NextHop::Port(_) => {}
        }
        if ip.hop_limit() <= 1 {
            return Err(DropReason::TtlExceeded);
        }
        ip.decrement_hop_limit();
        self.forward(ctx, next_hop, l2, buf, offset, len)
    }

    /// Send a routed packet (TTL already decremented) to its next hop.
    #[inline]
    fn forward(
        &self,
        ctx: Ingress<'a>,
        next_hop: NextHop,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        match next_hop {
            NextHop::Vmi(id) => self.send_to_vmi(id, l2, buf, offset, len, true),
            NextHop::Port(port) => {
                if port == ctx.port {
                    return Err(DropReason::Hairpin);
                }
                let Some(PortRole::Host { peer_mac, .. }) = self.tables.port(port).map(|p| &p.role)
                else {
                    // The compiler only lets routes point to host ports.
                    return Err(DropReason::NoRoute);
                };
                let mut eth = ethernet::Frame::new_unchecked(&mut buf[offset..offset + len]);
                eth.set_dst_addr(*peer_mac);
                eth.set_src_addr(self.tables.gateway_mac);
                let (offset, len) = retag(buf, offset, len, l2.tci, 0)?;
                Ok(Verdict::Transmit { port, offset, len })
            }
            NextHop::Receive | NextHop::Discard => Err(DropReason::NoRoute),
        }
    }

    /// Send a frame to a VMI out of its egress logical interface; a routed
    /// frame also gets the VMI's MAC as destination and the gateway's as
    /// source, a bridged one keeps its MACs.
    #[inline]
    fn send_to_vmi(
        &self,
        id: VmiId,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
        routed: bool,
    ) -> Result<Verdict, DropReason> {
        let vmi = &self.tables.vmis[id.index()];
        let egress = vmi.egress.ok_or(DropReason::VmiUnreachable)?;
        if routed {
            let mut eth = ethernet::Frame::new_unchecked(&mut buf[offset..offset + len]);
            eth.set_dst_addr(vmi.mac);
            eth.set_src_addr(self.tables.gateway_mac);
        }
        let (offset, len) = retag(buf, offset, len, l2.tci, egress.vlan)?;
        self.counters.vmi_tx(&vmi.counters, len);
        Ok(Verdict::Transmit {
            port: egress.port,
            offset,
            len,
        })
    }

    /// Answer an echo request to a gateway address, in place.
    fn echo_v4(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let l3 = offset + l2.header_len;
        let mut ip = ipv4::Packet::new_unchecked(&mut buf[l3..offset + len]);
        if ip.protocol() != IpProtocol::Icmp || ip.is_fragment() {
            return Err(DropReason::ReceiveUnsupported);
        }
        {
            let mut icmp = icmpv4::Packet::new_checked(ip.payload_mut())
                .map_err(|_| DropReason::MalformedIcmp)?;
            if !icmp.verify_checksum() {
                return Err(DropReason::MalformedIcmp);
            }
            if icmp.msg_type() != icmpv4::Message::EchoRequest || icmp.msg_code() != 0 {
                return Err(DropReason::ReceiveUnsupported);
            }
            icmp.echo_request_into_reply();
        }
        let (src, dst): (Ipv4Addr, Ipv4Addr) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        ip.set_ttl(REPLY_HOP_LIMIT);
        ip.fill_checksum();
        Ok(self.reply(ctx, l2.src, buf, offset, len))
    }

    /// Answer an ICMPv6 echo request to a gateway address, in place.
    fn echo_v6(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let l3 = offset + l2.header_len;
        let mut ip = ipv6::Packet::new_unchecked(&mut buf[l3..offset + len]);
        if ip.next_header() != IpProtocol::Icmpv6 {
            return Err(DropReason::ReceiveUnsupported);
        }
        let (src, dst): (Ipv6Addr, Ipv6Addr) = (ip.src_addr(), ip.dst_addr());
        {
            let mut icmp = icmpv6::Packet::new_checked(ip.payload_mut())
                .map_err(|_| DropReason::MalformedIcmp)?;
            if !icmp.verify_checksum(&src, &dst) {
                return Err(DropReason::MalformedIcmp);
            }
            if icmp.msg_type() != icmpv6::Message::EchoRequest || icmp.msg_code() != 0 {
                return Err(DropReason::ReceiveUnsupported);
            }
            icmp.echo_request_into_reply();
        }
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        ip.set_hop_limit(REPLY_HOP_LIMIT);
        Ok(self.reply(ctx, l2.src, buf, offset, len))
    }

    /// Send a reply back where the request came from (same port, same tag):
    /// destination `dst`, source the gateway MAC.
    #[inline]
    fn reply(
        &self,
        ctx: Ingress<'a>,
        dst: EthernetAddress,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Verdict {
        let mut eth = ethernet::Frame::new_unchecked(&mut buf[offset..offset + len]);
        eth.set_dst_addr(dst);
        eth.set_src_addr(self.tables.gateway_mac);
        if let Some(id) = ctx.vmi {
            self.counters
                .vmi_tx(&self.tables.vmis[id.index()].counters, len);
        }
        Verdict::Transmit {
            port: ctx.port,
            offset,
            len,
        }
    }
}

/// Port security: the source MAC must be the VMI's or an allowed pair's,
/// and the source IP (or ARP sender address) must go with it. ARP probes
/// (sender 0.0.0.0) and IPv6 neighbour discovery from link-local or
/// unspecified sources are let through to the ARP/ND handling.
#[inline]
fn check_source(vmi: &Vmi, l2: &L2Header, l3: &[u8]) -> Result<(), DropReason> {
    if !vmi.mac_allowed(l2.src) {
        return Err(DropReason::SourceMacSpoofed);
    }
    let source = match l2.ethertype {
        EtherType::Arp => {
            let packet = arp::Packet::new_checked(l3).map_err(|_| DropReason::MalformedArp)?;
            let repr = arp::Repr::parse(&packet).map_err(|_| DropReason::MalformedArp)?;
            if repr.source_hardware_addr != l2.src {
                return Err(DropReason::SourceMacSpoofed);
            }
            let sender = repr.source_protocol_addr;
            (!sender.is_unspecified()).then_some(IpAddr::V4(sender))
        }
        EtherType::Ipv4 => {
            let packet = ipv4::Packet::new_checked(l3).map_err(|_| DropReason::MalformedIpv4)?;
            Some(IpAddr::V4(packet.src_addr()))
        }
        EtherType::Ipv6 => {
            let packet = ipv6::Packet::new_checked(l3).map_err(|_| DropReason::MalformedIpv6)?;
            let src = packet.src_addr();
            let local = src.is_unspecified() || ipv6::is_link_local(&src);
            if local && nd_message(l3)?.is_some() {
                None
            } else {
                Some(IpAddr::V6(src))
            }
        }
        _ => None,
    };
    match source {
        Some(ip) if !vmi.source_allowed(l2.src, ip) => Err(DropReason::SourceIpSpoofed),
        _ => Ok(()),
    }
}

/// The neighbour discovery message type (133..=137) an IPv6 packet carries
/// directly after its fixed header, if any.
#[inline]
fn nd_message(l3: &[u8]) -> Result<Option<icmpv6::Message>, DropReason> {
    let ip = ipv6::Packet::new_checked(l3).map_err(|_| DropReason::MalformedIpv6)?;
    if ip.next_header() != IpProtocol::Icmpv6 {
        return Ok(None);
    }
    Ok(match ip.payload().first() {
        Some(&t @ 133..=137) => Some(icmpv6::Message::from(t)),
        _ => None,
    })
}

/// Give the frame at `buf[offset..offset + len]`, which has tag `tci` (or
/// none), the tag of `vlan` (none for VLAN 0): rewrite the VID in place,
/// pop the tag, or push one into the headroom. The priority bits of an
/// existing tag are kept. Returns the frame's new offset and length.
#[inline]
fn retag(
    buf: &mut [u8],
    offset: usize,
    len: usize,
    tci: Option<u16>,
    vlan: u16,
) -> Result<(usize, usize), DropReason> {
    match (tci, vlan) {
        (None, 0) => Ok((offset, len)),
        (Some(_), 0) => {
            let offset = vlan::pop_tag(buf, offset, len).map_err(|_| DropReason::TruncatedFrame)?;
            Ok((offset, len - vlan::HEADER_LEN))
        }
        (Some(_), vid) => {
            let start = offset + ethernet::HEADER_LEN;
            let mut tag = vlan::Packet::new_unchecked(&mut buf[start..offset + len]);
            tag.set_vid(vid);
            Ok((offset, len))
        }
        (None, vid) => {
            let offset = vlan::push_tag(buf, offset, len, vid & 0x0fff).map_err(|e| match e {
                trunkline_wire::Error::NoRoom => DropReason::NoHeadroom,
                _ => DropReason::TruncatedFrame,
            })?;
            Ok((offset, len + vlan::HEADER_LEN))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
