//! Router advertisements in answer to router solicitations (RFC 4861 6.2.6):
//! how a remote instance learns its IPv6 default router (the gateway's
//! link-local address) and how it must get its address.
//!
//! ```text
//!  instance --RS (ff02::2)--> classified (VMI) --> RA from fe80::<gateway MAC EUI-64>
//!    flags: M and O when the network's DHCP server is on (the VMI's address
//!           and DNS come from DHCPv6, dhcpv6.rs)
//!    options: source link-layer address, MTU (if the network declares one),
//!             one prefix information per IPv6 subnet: on-link, never
//!             autonomous (an address picked by SLAAC would fail port security)
//! ```
//!
//! Only solicitations are answered: the gateway sends no unsolicited
//! advertisements, so the router lifetime is the longest allowed (9000 s)
//! and a host that outlives it solicits again when it next configures
//! (see the README's limitations).

use core::net::IpAddr;

use trunkline_wire::icmpv6::{
    self, NdiscOption, NdiscOptionType, NdiscOptions, PREFIX_ON_LINK, RA_MANAGED, RA_OTHER,
};
use trunkline_wire::{EthernetAddress, IpProtocol, ipv6};

use super::{Ingress, L2Header, Pipeline, Source};
use crate::verdict::{DropReason, Verdict};

/// The router lifetime advertised: the maximum (RFC 4861 6.2.1).
const ROUTER_LIFETIME: u16 = 9000;
/// The current hop limit advertised.
const CUR_HOP_LIMIT: u8 = 64;
/// Prefix lifetimes (radvd's defaults).
const VALID_LIFETIME: u32 = 86_400;
const PREFERRED_LIFETIME: u32 = 14_400;

impl<'a> Pipeline<'a> {
    /// Answer a router solicitation from a VMI with an advertisement,
    /// written over it.
    pub(super) fn router_solicit(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        use DropReason::MalformedNeighborDiscovery as Malformed;
        let has_v6 = ctx.vrf.gateways.iter().any(|(p, _)| p.addr().is_ipv6());
        if !matches!(ctx.source, Source::Vmi(_)) || !ctx.vrf.routes || !has_v6 {
            return Err(DropReason::NdUnsupported);
        }
        let l3 = offset + l2.header_len;
        let src = {
            let ip = ipv6::Packet::new_checked(&buf[l3..offset + len])
                .map_err(|_| DropReason::MalformedIpv6)?;
            if ip.hop_limit() != icmpv6::NDP_HOP_LIMIT {
                return Err(Malformed);
            }
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let icmp = icmpv6::Packet::new_checked(ip.payload()).map_err(|_| Malformed)?;
            if icmp.msg_code() != 0
                || ip.payload().len() < icmpv6::RS_HEADER_LEN
                || !icmp.verify_checksum(&src, &dst)
            {
                return Err(Malformed);
            }
            for option in NdiscOptions::new(&ip.payload()[icmpv6::RS_HEADER_LEN..]) {
                let option = option.map_err(|_| Malformed)?;
                // RFC 4861 6.1.1: no source link-layer address from "::".
                if src.is_unspecified()
                    && option.option_type() == NdiscOptionType::SourceLinkLayerAddr
                {
                    return Err(Malformed);
                }
            }
            src
        };
        let prefixes = ctx.vrf.gateways.iter().filter_map(|(p, _)| match p.addr() {
            IpAddr::V6(a) => Some((a, p.prefix_len())),
            IpAddr::V4(_) => None,
        });
        let options_len = icmpv6::LLADDR_OPTION_LEN
            + ctx.vrf.mtu.map_or(0, |_| icmpv6::MTU_OPTION_LEN)
            + prefixes.clone().count() * icmpv6::PREFIX_INFO_OPTION_LEN;
        let icmp_len = icmpv6::RA_HEADER_LEN + options_len;
        let icmp_at = l3 + ipv6::HEADER_LEN;
        let reply_end = icmp_at + icmp_len;
        if reply_end > buf.len() {
            return Err(DropReason::NoTailroom);
        }
        let (ip_dst, eth_dst) = if src.is_unspecified() {
            let all_nodes = ipv6::LINK_LOCAL_ALL_NODES;
            (all_nodes, EthernetAddress::from_ipv6_multicast(&all_nodes))
        } else {
            (src, l2.src)
        };
        let gateway = self.tables.gateway_link_local;
        {
            let mut icmp = icmpv6::Packet::new_unchecked(&mut buf[icmp_at..reply_end]);
            icmp.set_msg_type(icmpv6::Message::RouterAdvert);
            icmp.set_msg_code(0);
            let flags = if ctx.vrf.dhcp.is_some() {
                RA_MANAGED | RA_OTHER
            } else {
                0
            };
            icmp.set_router_advert(CUR_HOP_LIMIT, flags, ROUTER_LIFETIME, 0, 0);
        }
        let mut at = icmp_at + icmpv6::RA_HEADER_LEN;
        NdiscOption::new_unchecked(&mut buf[at..at + icmpv6::LLADDR_OPTION_LEN])
            .emit_link_layer_addr(
                NdiscOptionType::SourceLinkLayerAddr,
                self.tables.gateway_mac,
            );
        at += icmpv6::LLADDR_OPTION_LEN;
        if let Some(mtu) = ctx.vrf.mtu {
            NdiscOption::new_unchecked(&mut buf[at..at + icmpv6::MTU_OPTION_LEN])
                .emit_mtu(u32::from(mtu));
            at += icmpv6::MTU_OPTION_LEN;
        }
        for (prefix, prefix_len) in prefixes {
            NdiscOption::new_unchecked(&mut buf[at..at + icmpv6::PREFIX_INFO_OPTION_LEN])
                .emit_prefix_info(
                    prefix,
                    prefix_len,
                    PREFIX_ON_LINK,
                    VALID_LIFETIME,
                    PREFERRED_LIFETIME,
                );
            at += icmpv6::PREFIX_INFO_OPTION_LEN;
        }
        icmpv6::Packet::new_unchecked(&mut buf[icmp_at..reply_end])
            .fill_checksum(&gateway, &ip_dst);
        ipv6::Repr {
            src_addr: gateway,
            dst_addr: ip_dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp_len,
            hop_limit: icmpv6::NDP_HOP_LIMIT,
        }
        .emit(&mut ipv6::Packet::new_unchecked(&mut buf[l3..icmp_at]));
        self.reply(ctx, eth_dst, buf, offset, reply_end - offset)
    }
}
