//! Routing in a VRF: packets for the gateway MAC are looked up by
//! destination (longest prefix), their TTL decremented, and sent to a local
//! VMI, a host port, a VMI behind a peer, a peer or a DC gateway; packets
//! for a gateway address are answered when they are echo requests (or DHCP,
//! `dhcp.rs`); packets the VRF does not route may leave by the fabric
//! (`fabric_forward.rs`).
//! A packet whose TTL runs out gets "time exceeded", one larger than the
//! egress MTU (the network's or the egress port's) "too big"
//! (`icmp_error.rs`).

use crate::observe::{Observer, Stage};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use trunkline_wire::{IpProtocol, ethernet, icmpv4, icmpv6, ipv4, ipv6};

use super::egress::retag;
use super::{Ingress, L2Header, Pipeline, REPLY_HOP_LIMIT, Source};
use crate::tables::{NextHop, PortRole};
use crate::verdict::{DropReason, Verdict};

/// Whether the IPv4 packet `l3` is UDP to the DHCP server port (a server's
/// reply to a relay agent, addressed to the gateway).
fn is_dhcp_to_server(l3: &[u8]) -> bool {
    let Ok(ip) = ipv4::Packet::new_checked(l3) else {
        return false;
    };
    if ip.protocol() != IpProtocol::Udp || ip.is_fragment() {
        return false;
    }
    let payload = ip.payload();
    payload.len() >= 4
        && u16::from_be_bytes([payload[2], payload[3]]) == trunkline_wire::dhcpv4::SERVER_PORT
}

impl<'a, O: Observer> Pipeline<'a, O> {
    /// Route an IPv4 packet for the gateway MAC.
    #[inline]
    pub(super) fn route_v4(
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
        let found = ctx.vrf.v4.lookup(u32::from(dst));
        note!(
            self,
            Stage::Route,
            if found.is_some() { "match" } else { "no_route" },
            format_args!(
                "VRF of network {} (id {}): {} -> {}",
                ctx.vrf.network,
                ctx.vrf.id,
                dst,
                self.describe(found)
            ),
        );
        let Some(next_hop) = found else {
            return self.fabric_exit(ctx, l2, buf, offset, len, IpAddr::V4(dst));
        };
        match next_hop {
            NextHop::Receive => {
                if ctx.vrf.dhcp_relay.is_some() && is_dhcp_to_server(&buf[l3..offset + len]) {
                    return self.dhcp_relay_reply(ctx, l2, buf, offset, len);
                }
                return self.echo_v4(ctx, l2, buf, offset, len);
            }
            NextHop::Discard => return Err(DropReason::DiscardRoute),
            _ => {}
        }
        if ip.ttl() <= 1 {
            return self.time_exceeded(ctx, l2, buf, offset, len);
        }
        ip.decrement_ttl();
        self.forward(ctx, next_hop, l2, buf, offset, len)
    }

    /// Route an IPv6 packet for the gateway MAC.
    #[inline]
    pub(super) fn route_v6(
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
        let found = ctx.vrf.v6.lookup(u128::from(dst));
        note!(
            self,
            Stage::Route,
            if found.is_some() { "match" } else { "no_route" },
            format_args!(
                "VRF of network {} (id {}): {} -> {}",
                ctx.vrf.network,
                ctx.vrf.id,
                dst,
                self.describe(found)
            ),
        );
        let Some(next_hop) = found else {
            return self.fabric_exit(ctx, l2, buf, offset, len, IpAddr::V6(dst));
        };
        match next_hop {
            NextHop::Receive => return self.echo_v6(ctx, l2, buf, offset, len),
            NextHop::Discard => return Err(DropReason::DiscardRoute),
            _ => {}
        }
        if ip.hop_limit() <= 1 {
            return self.time_exceeded(ctx, l2, buf, offset, len);
        }
        ip.decrement_hop_limit();
        self.forward(ctx, next_hop, l2, buf, offset, len)
    }

    /// A next hop in the domain's words, for an observer (only reached when
    /// one is active: `note` never evaluates its arguments otherwise).
    fn describe(&self, next_hop: Option<NextHop>) -> String {
        match next_hop {
            None => "no route".into(),
            Some(NextHop::Receive) => "the gateway itself".into(),
            Some(NextHop::Vmi(id)) => match self.tables.vmi(id) {
                Some(vmi) => format!("local VMI {}", vmi.key()),
                None => format!("{id:?}"),
            },
            Some(NextHop::Leak { vmi, link }) => {
                let link = &self.tables.links[link.0 as usize];
                match self.tables.vmi(vmi) {
                    Some(v) => format!(
                        "local VMI {} of network {}, by network policy",
                        v.key(),
                        link.config.to
                    ),
                    None => format!("{vmi:?}"),
                }
            }
            Some(NextHop::LeakRemote { remote, link }) => {
                let link = &self.tables.links[link.0 as usize];
                let remote = &self.tables.linked[remote.0 as usize];
                format!(
                    "VMI {} of network {} behind peer {}, by network policy, through a tunnel",
                    remote.key,
                    link.config.to,
                    self.tables.peers[remote.peer.0 as usize].key()
                )
            }
            Some(NextHop::Remote(id)) => match self.tables.remote_key(id) {
                Some(key) => format!("remote VMI {key}, through a tunnel"),
                None => format!("{id:?}"),
            },
            Some(other) => format!("{other:?}"),
        }
    }

    /// Send a routed packet (TTL already decremented) to its next hop.
    #[inline]
    pub(super) fn forward(
        &self,
        ctx: Ingress<'a>,
        next_hop: NextHop,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let from_tunnel = matches!(ctx.source, Source::Tunnel(_));
        note!(
            self,
            Stage::NextHop,
            match next_hop {
                NextHop::Vmi(_) => "local_vmi",
                NextHop::Pair(_) => "address_pair",
                NextHop::Tunnel { .. } => "routed_peer",
                NextHop::Leak { .. } => "network_policy",
                NextHop::LeakRemote { .. } => "network_policy_tunnel",
                NextHop::Remote(_) | NextHop::Peer(_) => "tunnel",
                _ => "other",
            },
            format_args!("{}", self.describe(Some(next_hop))),
        );
        if let Some(mtu) = self.egress_mtu(ctx, next_hop)
            && len - l2.header_len > mtu
        {
            return self.too_big(ctx, l2, buf, offset, len, mtu);
        }
        match next_hop {
            NextHop::Vmi(id) => self.send_to_local_vmi(ctx, id, l2, buf, offset, len, true),
            NextHop::Leak { vmi, link } => {
                let (l3, end) = (offset + l2.header_len, offset + len);
                self.police_link(link, l2.ethertype, buf, l3, end)?;
                self.send_to_local_vmi(ctx, vmi, l2, buf, offset, len, true)
            }
            NextHop::Remote(_)
            | NextHop::Peer(_)
            | NextHop::Tunnel { .. }
            | NextHop::LeakRemote { .. }
                if from_tunnel =>
            {
                Err(DropReason::TunnelHairpin)
            }
            NextHop::LeakRemote { remote, link } => {
                // Decided here as toward a local VMI of the other network,
                // then decided again by the receiving node (its own flow
                // table), which finds the link by the source address.
                let (l3, end) = (offset + l2.header_len, offset + len);
                self.police_link(link, l2.ethertype, buf, l3, end)?;
                let remote = &self.tables.linked[remote.0 as usize];
                let (peer, routed, mac) = (remote.peer, remote.routed, remote.mac);
                self.route_through(ctx, peer, routed, mac, l2, buf, offset, len)
            }
            NextHop::Tunnel { peer, label } => {
                self.route_to_routed_peer(ctx, peer, label, l2, buf, offset, len)
            }
            NextHop::Pair(pair) => {
                let (id, mac) = self.tables.pairs[pair.0 as usize].holder();
                let verdict = self.send_to_local_vmi(ctx, id, l2, buf, offset, len, true)?;
                // The pair's own MAC (a VRRP virtual MAC), when it leaves by
                // the holder's logical interface here (not when another
                // member serves the holder now: that one routes by label).
                if let Verdict::Transmit {
                    offset,
                    len,
                    vmi: Some(_),
                    ..
                } = verdict
                {
                    ethernet::Frame::new_unchecked(&mut buf[offset..offset + len])
                        .set_dst_addr(mac);
                }
                Ok(verdict)
            }
            NextHop::Remote(id) => self.route_to_remote(ctx, id, l2, buf, offset, len),
            NextHop::Peer(peer) => self.route_to_peer(ctx, peer, l2, buf, offset, len),
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
                Ok(Verdict::Transmit {
                    port,
                    offset,
                    len,
                    vmi: None,
                })
            }
            NextHop::Receive | NextHop::Discard => Err(DropReason::NoRoute),
        }
    }

    /// The largest IP packet the next hop takes, when the network or the
    /// egress port declares one (the smaller of the two); a tunnel's own
    /// limit is checked when encapsulating.
    #[inline]
    fn egress_mtu(&self, ctx: Ingress<'a>, next_hop: NextHop) -> Option<usize> {
        let port = match next_hop {
            NextHop::Vmi(id) | NextHop::Leak { vmi: id, .. } => {
                self.tables.vmis[id.index()].egress.map(|e| e.port)
            }
            NextHop::Pair(pair) => {
                let (id, _) = self.tables.pairs[pair.0 as usize].holder();
                self.tables.vmis[id.index()].egress.map(|e| e.port)
            }
            NextHop::Port(port) => Some(port),
            _ => None,
        };
        let port_mtu = port.and_then(|p| self.tables.port(p)).and_then(|p| p.mtu);
        match (port_mtu, ctx.vrf.mtu) {
            (Some(a), Some(b)) => Some(usize::from(a.min(b))),
            (a, b) => a.or(b).map(usize::from),
        }
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
        self.reply(ctx, l2.src, buf, offset, len)
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
        self.reply(ctx, l2.src, buf, offset, len)
    }
}
