//! ICMP errors the gateway originates: "fragmentation needed" (IPv4, with
//! don't-fragment set) and "packet too big" (IPv6) for a packet larger than
//! the next link can carry, so that path MTU discovery works across the
//! overlay (RFC 1191, RFC 8201).
//!
//! ```text
//!  before:          [L2][ original IP header | payload ...            ]
//!  after:   [L2][IP][ICMP][ original IP header | first bytes ]
//!           ^ written into the headroom; the quoted bytes do not move
//! ```
//!
//! The error comes from the gateway address of the sender's subnet and goes
//! back where the packet came from (same port and tag, or the same tunnel).
//! The fast path does not fragment: an IPv4 packet without don't-fragment
//! that does not fit is a counted drop (`fragmentation_needed`).

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
        let ip_at = offset + l2.header_len;
        let end = offset + len;
        match l2.ethertype {
            EtherType::Ipv4 => {
                let (sender, quoted) = {
                    let ip = ipv4::Packet::new_checked(&buf[ip_at..end])
                        .map_err(|_| DropReason::MalformedIpv4)?;
                    if !ip.dont_frag() {
                        return Err(DropReason::FragmentationNeeded);
                    }
                    let quoted =
                        (usize::from(ip.header_len()) + 8).min(usize::from(ip.total_len()));
                    (ip.src_addr(), quoted)
                };
                let Some(IpAddr::V4(gateway)) = ctx.vrf.gateway_for(IpAddr::V4(sender)) else {
                    return Err(DropReason::FragmentationNeeded);
                };
                let header = ipv4::HEADER_LEN + ICMP_HEADER_LEN;
                let ip_start = ip_at.checked_sub(header).ok_or(DropReason::NoHeadroom)?;
                let start = self.move_l2(l2, buf, offset, ip_start)?;
                let icmp_at = ip_start + ipv4::HEADER_LEN;
                let icmp_end = icmp_at + ICMP_HEADER_LEN + quoted;
                {
                    let mut icmp = icmpv4::Packet::new_unchecked(&mut buf[icmp_at..icmp_end]);
                    icmp.set_msg_type(icmpv4::Message::DstUnreachable);
                    icmp.set_msg_code(4);
                    let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
                    icmp.set_rest_of_header(u32::from(mtu));
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
                    ip.src_addr()
                };
                let Some(IpAddr::V6(gateway)) = ctx.vrf.gateway_for(IpAddr::V6(sender)) else {
                    return Err(DropReason::NoRoute);
                };
                let header = ipv6::HEADER_LEN + ICMP_HEADER_LEN;
                let quoted = (end - ip_at).min(MAX_ICMPV6_ERROR - header);
                let ip_start = ip_at.checked_sub(header).ok_or(DropReason::NoHeadroom)?;
                let start = self.move_l2(l2, buf, offset, ip_start)?;
                let icmp_at = ip_start + ipv6::HEADER_LEN;
                let icmp_end = icmp_at + ICMP_HEADER_LEN + quoted;
                {
                    let mut icmp = icmpv6::Packet::new_unchecked(&mut buf[icmp_at..icmp_end]);
                    icmp.set_msg_type(icmpv6::Message::PktTooBig);
                    icmp.set_msg_code(0);
                    icmp.set_rest_of_header(u32::try_from(mtu).unwrap_or(u32::MAX));
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

    /// Copy the frame's layer-2 header (with its tag) so that it ends at
    /// `ip_start`; returns where it now starts.
    fn move_l2(
        &self,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        ip_start: usize,
    ) -> Result<usize, DropReason> {
        let start = ip_start
            .checked_sub(l2.header_len)
            .ok_or(DropReason::NoHeadroom)?;
        buf.copy_within(offset..offset + l2.header_len, start);
        Ok(start)
    }
}
