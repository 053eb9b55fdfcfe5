//! ICMP errors the gateway originates: "time exceeded" for a packet whose
//! TTL / hop limit runs out here (so traceroute sees the gateway), and
//! "fragmentation needed" (IPv4, with don't-fragment set) / "packet too
//! big" (IPv6) for a packet larger than the next link can carry, so that
//! path MTU discovery works (RFC 1191, RFC 8201).
//!
//! ```text
//!  before:          [L2][ original IP header | payload ...            ]
//!  after:   [L2][IP][ICMP][ original IP header | first bytes ]
//!           ^ written into the headroom; the quoted bytes do not move
//! ```
//!
//! The error comes from the gateway address of the sender's subnet and goes
//! back where the packet came from (same port and tag, or the same tunnel).
//! No error answers an ICMP error, a fragment other than the first, or a
//! source that is not a unicast address of the network's subnets (RFC 1812
//! 4.3.2.7, RFC 4443 2.4). Every error spends a token of the worker's
//! budget ([`crate::limit`]); without one the packet is dropped as
//! `icmp_rate_limited`. The fast path does not fragment: an IPv4 packet
//! without don't-fragment that does not fit is a counted drop
//! (`fragmentation_needed`).

use core::net::IpAddr;

use trunkline_wire::ethernet::EtherType;
use trunkline_wire::{IpProtocol, icmpv4, icmpv6, ipv4, ipv6};

use super::{Ingress, L2Header, Pipeline, REPLY_HOP_LIMIT};
use crate::verdict::{DropReason, Verdict};

/// The ICMP header before the quoted packet (type, code, checksum, and the
/// 4 bytes holding the MTU).
const ICMP_HEADER_LEN: usize = 8;

/// The largest ICMPv6 error: the IPv6 minimum MTU (RFC 4443 section 2.4).
const MAX_ICMPV6_ERROR: usize = 1280;

/// Which error to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IcmpError {
    /// The next link takes this many bytes of IP packet.
    TooBig(usize),
    /// The TTL / hop limit ran out here.
    TimeExceeded,
}

impl IcmpError {
    /// The drop when no error may answer the packet.
    fn unanswered(self) -> DropReason {
        match self {
            IcmpError::TooBig(_) => DropReason::FragmentationNeeded,
            IcmpError::TimeExceeded => DropReason::TtlExceeded,
        }
    }
}

/// Whether an IPv4 packet may be answered with an error: not an ICMP
/// error itself, not a later fragment, from a unicast source.
fn v4_answerable(ip: &ipv4::Packet<&[u8]>) -> bool {
    let src = ip.src_addr();
    if src.is_unspecified() || src.is_multicast() || src.is_broadcast() || src.is_loopback() {
        return false;
    }
    if ip.frag_offset() != 0 {
        return false;
    }
    let error_types = [3u8, 4, 5, 11, 12];
    !(ip.protocol() == IpProtocol::Icmp
        && ip
            .payload()
            .first()
            .is_some_and(|t| error_types.contains(t)))
}

/// Whether an IPv6 packet may be answered with an error: not an ICMPv6
/// error itself (types below 128), from a unicast source.
fn v6_answerable(ip: &ipv6::Packet<&[u8]>) -> bool {
    let src = ip.src_addr();
    if src.is_unspecified() || src.is_multicast() || src.is_loopback() {
        return false;
    }
    !(ip.next_header() == IpProtocol::Icmpv6 && ip.payload().first().is_some_and(|t| *t < 128))
}

impl<'a> Pipeline<'a> {
    /// Answer the packet at `buf[offset..offset + len]` (layer-2 header
    /// `l2`, not yet rewritten) with "too big, the next link takes `mtu`
    /// bytes".
    pub(super) fn too_big(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
        mtu: usize,
    ) -> Result<Verdict, DropReason> {
        self.icmp_error(ctx, l2, buf, offset, len, IcmpError::TooBig(mtu))
    }

    /// Answer the packet with "time exceeded in transit".
    pub(super) fn time_exceeded(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        self.icmp_error(ctx, l2, buf, offset, len, IcmpError::TimeExceeded)
    }

    fn icmp_error(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
        kind: IcmpError,
    ) -> Result<Verdict, DropReason> {
        let ip_at = offset + l2.header_len;
        let end = offset + len;
        match l2.ethertype {
            EtherType::Ipv4 => {
                let (sender, quoted) = {
                    let ip = ipv4::Packet::new_checked(&buf[ip_at..end])
                        .map_err(|_| DropReason::MalformedIpv4)?;
                    if matches!(kind, IcmpError::TooBig(_)) && !ip.dont_frag() {
                        return Err(DropReason::FragmentationNeeded);
                    }
                    if !v4_answerable(&ip) {
                        return Err(kind.unanswered());
                    }
                    let quoted =
                        (usize::from(ip.header_len()) + 8).min(usize::from(ip.total_len()));
                    (ip.src_addr(), quoted)
                };
                let Some(IpAddr::V4(gateway)) = ctx.vrf.gateway_for(IpAddr::V4(sender)) else {
                    return Err(kind.unanswered());
                };
                let header = ipv4::HEADER_LEN + ICMP_HEADER_LEN;
                let ip_start = ip_at.checked_sub(header).ok_or(DropReason::NoHeadroom)?;
                let start = ip_start
                    .checked_sub(l2.header_len)
                    .ok_or(DropReason::NoHeadroom)?;
                if !self.counters.icmp_errors.take(self.now_ms) {
                    return Err(DropReason::IcmpRateLimited);
                }
                buf.copy_within(offset..offset + l2.header_len, start);
                let icmp_at = ip_start + ipv4::HEADER_LEN;
                let icmp_end = icmp_at + ICMP_HEADER_LEN + quoted;
                {
                    let mut icmp = icmpv4::Packet::new_unchecked(&mut buf[icmp_at..icmp_end]);
                    match kind {
                        IcmpError::TooBig(mtu) => {
                            icmp.set_msg_type(icmpv4::Message::DstUnreachable);
                            icmp.set_msg_code(4);
                            let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
                            icmp.set_rest_of_header(u32::from(mtu));
                        }
                        IcmpError::TimeExceeded => {
                            icmp.set_msg_type(icmpv4::Message::TimeExceeded);
                            icmp.set_msg_code(0);
                            icmp.set_rest_of_header(0);
                        }
                    }
                    icmp.fill_checksum();
                }
                ipv4::Repr {
                    src_addr: gateway,
                    dst_addr: sender,
                    protocol: IpProtocol::Icmp,
                    payload_len: ICMP_HEADER_LEN + quoted,
                    ttl: REPLY_HOP_LIMIT,
                }
                .emit(&mut ipv4::Packet::new_unchecked(
                    &mut buf[ip_start..icmp_at],
                ));
                self.reply(ctx, l2.src, buf, start, icmp_end - start)
            }
            EtherType::Ipv6 => {
                let sender = {
                    let ip = ipv6::Packet::new_checked(&buf[ip_at..end])
                        .map_err(|_| DropReason::MalformedIpv6)?;
                    if !v6_answerable(&ip) {
                        return Err(kind.unanswered());
                    }
                    ip.src_addr()
                };
                let Some(IpAddr::V6(gateway)) = ctx.vrf.gateway_for(IpAddr::V6(sender)) else {
                    return Err(kind.unanswered());
                };
                let header = ipv6::HEADER_LEN + ICMP_HEADER_LEN;
                let quoted = (end - ip_at).min(MAX_ICMPV6_ERROR - header);
                let ip_start = ip_at.checked_sub(header).ok_or(DropReason::NoHeadroom)?;
                let start = ip_start
                    .checked_sub(l2.header_len)
                    .ok_or(DropReason::NoHeadroom)?;
                if !self.counters.icmp_errors.take(self.now_ms) {
                    return Err(DropReason::IcmpRateLimited);
                }
                buf.copy_within(offset..offset + l2.header_len, start);
                let icmp_at = ip_start + ipv6::HEADER_LEN;
                let icmp_end = icmp_at + ICMP_HEADER_LEN + quoted;
                {
                    let mut icmp = icmpv6::Packet::new_unchecked(&mut buf[icmp_at..icmp_end]);
                    match kind {
                        IcmpError::TooBig(mtu) => {
                            icmp.set_msg_type(icmpv6::Message::PktTooBig);
                            icmp.set_msg_code(0);
                            icmp.set_rest_of_header(u32::try_from(mtu).unwrap_or(u32::MAX));
                        }
                        IcmpError::TimeExceeded => {
                            icmp.set_msg_type(icmpv6::Message::TimeExceeded);
                            icmp.set_msg_code(0);
                            icmp.set_rest_of_header(0);
                        }
                    }
                    icmp.fill_checksum(&gateway, &sender);
                }
                ipv6::Repr {
                    src_addr: gateway,
                    dst_addr: sender,
                    next_header: IpProtocol::Icmpv6,
                    payload_len: ICMP_HEADER_LEN + quoted,
                    hop_limit: REPLY_HOP_LIMIT,
                }
                .emit(&mut ipv6::Packet::new_unchecked(
                    &mut buf[ip_start..icmp_at],
                ));
                self.reply(ctx, l2.src, buf, start, icmp_end - start)
            }
            _ => Err(DropReason::UnsupportedEtherType),
        }
    }
}
