//! The neighbour proxy: ARP requests and IPv6 neighbour solicitations for a
//! gateway address or an address routed in the VRF are answered in place
//! with the gateway MAC (as the original vRouter's proxy does), so remote
//! instances send everything routed to the gateway.
//!
//! Questions that came through a tunnel are answered only for the gateway's
//! own addresses: an instance elsewhere in the network answers for itself
//! once the question is flooded to it.

use crate::observe::{Observer, Stage};
use core::net::IpAddr;

use trunkline_wire::icmpv6::{self, NeighborFlags};
use trunkline_wire::{EthernetAddress, IpProtocol, arp, ipv6};

use super::{Ingress, L2Header, Pipeline, Source};
use crate::tables::NextHop;
use crate::verdict::{DropReason, Verdict};

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

/// Whether a question the proxy did not answer for `reason` may be flooded
/// in a bridging network (it is well formed, just not ours to answer).
pub(super) fn floodable(reason: DropReason) -> bool {
    matches!(
        reason,
        DropReason::ArpUnknownTarget
            | DropReason::ArpNotRequest
            | DropReason::GratuitousArp
            | DropReason::NdUnknownTarget
            | DropReason::NdOwnAddress
    )
}

/// The neighbour discovery message type (133..=137) an IPv6 packet carries
/// directly after its fixed header, if any.
#[inline]
pub(super) fn nd_message(l3: &[u8]) -> Result<Option<icmpv6::Message>, DropReason> {
    let ip = ipv6::Packet::new_checked(l3).map_err(|_| DropReason::MalformedIpv6)?;
    if ip.next_header() != IpProtocol::Icmpv6 {
        return Ok(None);
    }
    Ok(match ip.payload().first() {
        Some(&t @ 133..=137) => Some(icmpv6::Message::from(t)),
        _ => None,
    })
}

impl<'a, O: Observer> Pipeline<'a, O> {
    /// Who `target` is, for an ARP/ND question asked from `ctx`.
    #[inline]
    fn target(&self, ctx: Ingress<'_>, target: IpAddr) -> Target {
        let from_tunnel = matches!(ctx.source, Source::Tunnel(_));
        if target == IpAddr::V6(self.tables.gateway_link_local) && ctx.vrf.routes {
            // The router its advertisements name.
            return Target::Gateway;
        }
        match ctx.vrf.lookup(target) {
            Some(NextHop::Receive) => Target::Gateway,
            _ if from_tunnel => Target::Unknown,
            Some(NextHop::Vmi(id)) if ctx.source == Source::Vmi(id) => Target::Own,
            Some(NextHop::Pair(pair))
                if Source::Vmi(self.tables.pairs[pair.0 as usize].holder().0) == ctx.source =>
            {
                Target::Own
            }
            Some(
                NextHop::Vmi(_)
                | NextHop::Remote(_)
                | NextHop::Peer(_)
                | NextHop::Pair(_)
                | NextHop::Tunnel { .. }
                | NextHop::Leak { .. }
                | NextHop::LeakRemote { .. },
            ) => Target::Routed,
            Some(NextHop::Port(port)) if port == ctx.port => Target::Unknown,
            Some(NextHop::Port(_)) => Target::Routed,
            Some(NextHop::Discard) | None => Target::Unknown,
        }
    }

    /// Answer an ARP request in place with the gateway MAC.
    #[inline]
    pub(super) fn arp(
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
        let target = self.target(ctx, IpAddr::V4(repr.target_protocol_addr));
        note!(
            self,
            Stage::NeighbourProxy,
            match target {
                Target::Gateway => "gateway_address",
                Target::Routed => "routed_address",
                Target::Own => "own_address",
                Target::Unknown => "unknown_target",
            },
            format_args!(
                "ARP who-has {} tell {} ({})",
                repr.target_protocol_addr, repr.source_protocol_addr, repr.source_hardware_addr
            ),
        );
        match target {
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
        self.reply(ctx, l2.src, buf, offset, len)
    }

    /// Answer a neighbour solicitation with an advertisement of the gateway
    /// MAC, written over the solicitation.
    pub(super) fn ns(
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
        if let (Source::Vmi(id), Some(lladdr)) = (ctx.source, lladdr)
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
        self.reply(ctx, eth_dst, buf, offset, reply_len)
    }
}
