//! The overlay between gateway nodes (and external VTEPs): encapsulation
//! toward a peer and decapsulation on the fabric port, as the original's
//! vRouter does.
//!
//! ```text
//!  outer Ethernet | outer IPv4/IPv6 | UDP | MPLS label (6635) | inner IP packet   (routed to a VMI)
//!  (next-hop MAC, |  (this node ->  | src port = flow hash  | or the network's  | inner Ethernet   (bridged, flooded)
//!                 |                 |                       | or routed label   | inner IP packet  (routed in the VRF)
//!   fabric MAC)   |   the peer)     | in 49152..65535       | label             |
//!                                         | VXLAN (4789), VNI | inner Ethernet   (bridged, flooded;
//!                                                             |                   from a DC gateway of
//!                                                             |                   the network: its IP
//!                                                             |                   packet routed in the VRF)
//! ```
//!
//! The outer headers are written into the headroom in front of the payload,
//! so a packet is never copied to be encapsulated, and removed by starting
//! the decapsulated frame further into the buffer. An outer packet never
//! exceeds the fabric's MTU: a routed packet that would is answered with the
//! ICMP error path MTU discovery needs (`icmp_error.rs`), a bridged frame is
//! a counted drop. Over IPv4 the outer UDP checksum is zero (RFC 7510, RFC
//! 7348); over IPv6 it is computed.

use crate::observe::{Observer, Stage};
use core::net::IpAddr;

use trunkline_wire::ethernet::{self, EtherType};
use trunkline_wire::{IpProtocol, ipv4, ipv6, mpls, udp, vxlan};

use super::egress::{retag, write_l2_before};
use super::{Ingress, L2Header, Pipeline, Source, parse_l2};
use crate::config::PortId;
use crate::tables::{Encap, LabelTarget, PeerId, RemoteId, VmiId};
use crate::verdict::{DropReason, Verdict};

/// The most a tunnel adds in front of its payload: outer Ethernet, IPv6,
/// UDP and VXLAN headers.
pub const MAX_OVERHEAD: usize =
    ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;

/// The TTL of outer IP headers and MPLS label entries.
const TUNNEL_TTL: u8 = 64;

/// The length of an encapsulation header.
const fn encap_len(encap: Encap) -> usize {
    match encap {
        Encap::Mpls(_) => mpls::HEADER_LEN,
        Encap::Vxlan(_) => vxlan::HEADER_LEN,
    }
}

/// The length of an outer IP header of the family of `addr`.
const fn ip_header_len(addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(_) => ipv4::HEADER_LEN,
        IpAddr::V6(_) => ipv6::HEADER_LEN,
    }
}

/// A 16-bit hash of a flow, for the outer UDP source port (so that the
/// fabric's ECMP spreads flows, as RFC 7510 asks): the inner addresses, the
/// protocol and, for TCP and UDP, the ports of an IP packet at `l3`.
fn flow_hash(ethertype: EtherType, l3: &[u8]) -> u16 {
    const FNV_OFFSET: u32 = 0x811c_9dc5;
    const FNV_PRIME: u32 = 0x0100_0193;
    let mut hash = FNV_OFFSET;
    let mut mix = |bytes: &[u8]| {
        for b in bytes {
            hash = (hash ^ u32::from(*b)).wrapping_mul(FNV_PRIME);
        }
    };
    match ethertype {
        EtherType::Ipv4 if l3.len() >= ipv4::HEADER_LEN => {
            let ihl = usize::from(l3[0] & 0x0f) * 4;
            mix(&l3[9..10]);
            mix(&l3[12..20]);
            let fragment = (u16::from_be_bytes([l3[6], l3[7]]) & 0x3fff) != 0;
            if matches!(l3[9], 6 | 17) && !fragment && l3.len() >= ihl + 4 {
                mix(&l3[ihl..ihl + 4]);
            }
        }
        EtherType::Ipv6 if l3.len() >= ipv6::HEADER_LEN => {
            mix(&l3[6..7]);
            mix(&l3[8..40]);
            if matches!(l3[6], 6 | 17) && l3.len() >= ipv6::HEADER_LEN + 4 {
                mix(&l3[40..44]);
            }
        }
        _ => mix(l3.get(..l3.len().min(16)).unwrap_or_default()),
    }
    (hash ^ (hash >> 16)) as u16
}

/// The flow hash of an Ethernet frame (its MACs and, for IP, its flow).
fn frame_hash(frame: &[u8]) -> u16 {
    match parse_l2(frame) {
        Ok(l2) => {
            let l3 = &frame[l2.header_len..];
            flow_hash(l2.ethertype, l3) ^ flow_hash(EtherType::Unknown(0), &frame[..12])
        }
        Err(_) => 0,
    }
}

impl<'a, O: Observer> Pipeline<'a, O> {
    /// The largest payload (inner IP packet, or inner Ethernet frame) a
    /// tunnel carrying `encap` takes within the fabric's MTU.
    pub(super) fn payload_mtu(&self, encap: Encap) -> Result<usize, DropReason> {
        // The compiler admits no peer, remote VMI or peer route without an
        // underlay, so only a route nothing reaches lacks one.
        let underlay = self.tables.underlay.as_ref().ok_or(DropReason::NoRoute)?;
        Ok(usize::from(underlay.mtu)
            .saturating_sub(ip_header_len(underlay.addr) + udp::HEADER_LEN + encap_len(encap)))
    }

    /// Write the outer headers toward `peer` in front of the payload at
    /// `buf[payload..payload + payload_len]`; returns where the tunnel
    /// packet starts and its length. The caller checked the MTU.
    pub(super) fn encapsulate(
        &self,
        peer: PeerId,
        encap: Encap,
        buf: &mut [u8],
        payload: usize,
        payload_len: usize,
        entropy: u16,
    ) -> Result<(usize, usize), DropReason> {
        let underlay = self.tables.underlay.as_ref().ok_or(DropReason::NoRoute)?;
        let peer = &self.tables.peers[peer.0 as usize];
        let next_hop = peer.next_hop_mac().ok_or(DropReason::TunnelUnresolved)?;
        let ip_len = ip_header_len(underlay.addr);
        let header = ethernet::HEADER_LEN + ip_len + udp::HEADER_LEN + encap_len(encap);
        let start = payload.checked_sub(header).ok_or(DropReason::NoHeadroom)?;
        let end = payload
            .checked_add(payload_len)
            .filter(|end| *end <= buf.len())
            .ok_or(DropReason::TruncatedFrame)?;
        let ip_at = start + ethernet::HEADER_LEN;
        let udp_at = ip_at + ip_len;
        let encap_at = udp_at + udp::HEADER_LEN;
        let udp_len = end - udp_at;
        let (ethertype, dst_port) = match (underlay.addr, encap) {
            (IpAddr::V4(_), Encap::Mpls(_)) => (EtherType::Ipv4, mpls::UDP_PORT),
            (IpAddr::V4(_), Encap::Vxlan(_)) => (EtherType::Ipv4, vxlan::UDP_PORT),
            (IpAddr::V6(_), Encap::Mpls(_)) => (EtherType::Ipv6, mpls::UDP_PORT),
            (IpAddr::V6(_), Encap::Vxlan(_)) => (EtherType::Ipv6, vxlan::UDP_PORT),
        };
        {
            let mut eth = ethernet::Frame::new_unchecked(&mut buf[start..ip_at]);
            eth.set_dst_addr(next_hop);
            eth.set_src_addr(underlay.mac);
            eth.set_ethertype(ethertype);
        }
        match encap {
            Encap::Mpls(label) => mpls::Packet::new_unchecked(&mut buf[encap_at..payload])
                .set_entry(label, 0, true, TUNNEL_TTL),
            Encap::Vxlan(vni) => {
                vxlan::Packet::new_unchecked(&mut buf[encap_at..payload]).set_header(vni)
            }
        }
        udp::Repr {
            src_port: 0xc000 | (entropy & 0x3fff),
            dst_port,
            payload_len: udp_len - udp::HEADER_LEN,
        }
        .emit(&mut udp::Packet::new_unchecked(&mut buf[udp_at..end]));
        match (underlay.addr, peer.addr) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => ipv4::Repr {
                src_addr: src,
                dst_addr: dst,
                protocol: IpProtocol::Udp,
                payload_len: udp_len,
                ttl: TUNNEL_TTL,
            }
            .emit(&mut ipv4::Packet::new_unchecked(&mut buf[ip_at..udp_at])),
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                ipv6::Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: IpProtocol::Udp,
                    payload_len: udp_len,
                    hop_limit: TUNNEL_TTL,
                }
                .emit(&mut ipv6::Packet::new_unchecked(&mut buf[ip_at..udp_at]));
                udp::Packet::new_unchecked(&mut buf[udp_at..end]).fill_checksum_v6(&src, &dst);
            }
            // The compiler only admits peers of the underlay's family.
            _ => return Err(DropReason::NoRoute),
        }
        Ok((start, end - start))
    }

    /// The frame back through the tunnel it came from (a proxy answer or an
    /// echo reply to a peer's host).
    pub(super) fn reply_through_tunnel(
        &self,
        ctx: Ingress<'a>,
        peer: PeerId,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let encap = ctx
            .vrf
            .peer_encap(peer)
            .ok_or(DropReason::TunnelPeerNotInNetwork)?;
        if len > self.payload_mtu(encap)? {
            return Err(DropReason::TunnelMtuExceeded);
        }
        let hash = frame_hash(&buf[offset..offset + len]);
        let (start, total) = self.encapsulate(peer, encap, buf, offset, len, hash)?;
        Ok(Verdict::Transmit {
            port: self.fabric_port()?,
            offset: start,
            len: total,
            vmi: None,
        })
    }

    /// The fabric port.
    pub(super) fn fabric_port(&self) -> Result<PortId, DropReason> {
        self.tables
            .underlay
            .as_ref()
            .map(|u| u.port)
            .ok_or(DropReason::NoRoute)
    }

    /// Route a packet (TTL decremented) to a VMI behind a peer (its current
    /// one, when several serve it): its label and the inner IP packet (MPLS
    /// over UDP), or the network's VNI and an inner Ethernet frame to its
    /// MAC (VXLAN).
    pub(super) fn route_to_remote(
        &self,
        ctx: Ingress<'a>,
        id: RemoteId,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let remote = &self.tables.remotes[id.0 as usize];
        let via = self.remote_via(remote);
        self.route_through(ctx, via.peer, via.routed, remote.mac, l2, buf, offset, len)
    }

    /// Route a packet (TTL decremented) to a peer that routes it further in
    /// the network (another node's virtual gateway): an inner Ethernet frame
    /// to the gateway MAC, with the network's label or VNI.
    pub(super) fn route_to_peer(
        &self,
        ctx: Ingress<'a>,
        peer: PeerId,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let encap = ctx
            .vrf
            .peer_encap(peer)
            .ok_or(DropReason::TunnelPeerNotInNetwork)?;
        let gateway = self.tables.gateway_mac;
        // A network's label carries Ethernet, like its VNI.
        self.route_inner(
            ctx,
            peer,
            InnerEncap::Ethernet(encap),
            gateway,
            l2,
            buf,
            offset,
            len,
        )
    }

    /// Route a packet (TTL decremented) to a peer routing for the network
    /// (a DC gateway): the inner IP packet with the route's label.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn route_to_routed_peer(
        &self,
        ctx: Ingress<'a>,
        peer: PeerId,
        label: u32,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let gateway = self.tables.gateway_mac;
        self.route_through(ctx, peer, Encap::Mpls(label), gateway, l2, buf, offset, len)
    }

    /// Route a packet toward `peer` for the VMI of MAC `mac`, with `routed`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn route_through(
        &self,
        ctx: Ingress<'a>,
        peer: PeerId,
        routed: Encap,
        mac: trunkline_wire::EthernetAddress,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let inner = match routed {
            Encap::Mpls(_) => InnerEncap::Ip(routed),
            Encap::Vxlan(_) => InnerEncap::Ethernet(routed),
        };
        self.route_inner(ctx, peer, inner, mac, l2, buf, offset, len)
    }

    /// Encapsulate the routed packet at `buf[offset + l2.header_len..]`
    /// toward `peer`: as is (an MPLS label of a VMI), or behind an inner
    /// Ethernet header to `mac`.
    #[allow(clippy::too_many_arguments)]
    fn route_inner(
        &self,
        ctx: Ingress<'a>,
        peer: PeerId,
        inner: InnerEncap,
        mac: trunkline_wire::EthernetAddress,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let ip_at = offset + l2.header_len;
        let ip_len = len - l2.header_len;
        let (encap, inner_l2) = match inner {
            InnerEncap::Ip(encap) => (encap, 0),
            InnerEncap::Ethernet(encap) => (encap, ethernet::HEADER_LEN),
        };
        let mtu = self.payload_mtu(encap)?;
        if ip_len + inner_l2 > mtu {
            // Before anything is rewritten: the error quotes the packet and
            // goes back by the frame's own layer-2 header.
            return self.too_big(ctx, l2, buf, offset, len, mtu - inner_l2);
        }
        let hash = flow_hash(l2.ethertype, &buf[ip_at..offset + len]);
        let payload = if inner_l2 == 0 {
            ip_at
        } else {
            let gateway = self.tables.gateway_mac;
            write_l2_before(buf, ip_at, mac, gateway, 0, l2.ethertype)?
        };
        let (start, total) =
            self.encapsulate(peer, encap, buf, payload, ip_len + inner_l2, hash)?;
        Ok(Verdict::Transmit {
            port: self.fabric_port()?,
            offset: start,
            len: total,
            vmi: None,
        })
    }

    /// Bridge a frame to a VMI behind a peer (its current one, when several
    /// serve it): untagged, with the network's label or VNI.
    pub(super) fn bridge_to_remote(
        &self,
        id: RemoteId,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let via = self.remote_via(&self.tables.remotes[id.0 as usize]);
        self.bridge_through(via.peer, via.bridged, l2, buf, offset, len)
    }

    /// Bridge a frame toward `peer`, untagged, with `bridged`.
    pub(super) fn bridge_through(
        &self,
        peer: PeerId,
        bridged: Encap,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let (offset, len) = retag(buf, offset, len, l2.tci, 0)?;
        if len > self.payload_mtu(bridged)? {
            return Err(DropReason::TunnelMtuExceeded);
        }
        let hash = frame_hash(&buf[offset..offset + len]);
        let (start, total) = self.encapsulate(peer, bridged, buf, offset, len, hash)?;
        Ok(Verdict::Transmit {
            port: self.fabric_port()?,
            offset: start,
            len: total,
            vmi: None,
        })
    }

    /// A copy of the Ethernet frame `frame` (possibly tagged), untagged and
    /// encapsulated toward `peer`, written into `dst`: (offset, len).
    pub(super) fn encapsulate_copy(
        &self,
        peer: PeerId,
        encap: Encap,
        frame: &[u8],
        l2: &L2Header,
        dst: &mut [u8],
    ) -> Result<(usize, usize), DropReason> {
        let untagged = frame.len() - (l2.header_len - ethernet::HEADER_LEN);
        if untagged > self.payload_mtu(encap)? {
            return Err(DropReason::TunnelMtuExceeded);
        }
        let payload = MAX_OVERHEAD;
        let end = payload + untagged;
        if end > dst.len() {
            return Err(DropReason::FrameTooLarge);
        }
        dst[payload..payload + 12].copy_from_slice(&frame[..12]);
        dst[payload + 12..payload + 14].copy_from_slice(&u16::from(l2.ethertype).to_be_bytes());
        dst[payload + ethernet::HEADER_LEN..end].copy_from_slice(&frame[l2.header_len..]);
        let hash = frame_hash(&dst[payload..end]);
        self.encapsulate(peer, encap, dst, payload, untagged, hash)
    }

    /// A frame from the fabric port: a tunnel packet for this node is
    /// decapsulated; the return of a SNAT flow or a packet for a subnet
    /// with IP fabric forwarding enters its VRF; anything else belongs to
    /// the host.
    pub(super) fn fabric(
        &self,
        ingress: PortId,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let Some(underlay) = self.tables.underlay.filter(|u| u.port == ingress) else {
            note!(
                self,
                Stage::Tunnel,
                "not_underlay",
                format_args!("no underlay address on port {}", ingress.0),
            );
            return Ok(Verdict::Pass);
        };
        if let Some(verdict) = self.fabric_inbound(ingress, buf, offset, len) {
            return verdict;
        }
        let end = offset + len;
        let Ok(eth) = ethernet::Frame::new_checked(&buf[offset..end]) else {
            return Ok(Verdict::Pass);
        };
        let l3 = offset + ethernet::HEADER_LEN;
        // (peer address, where UDP starts, where the IP packet ends)
        let (src, udp_at, ip_end) = match (eth.ethertype(), underlay.addr) {
            (EtherType::Ipv4, IpAddr::V4(me)) => {
                let Ok(ip) = ipv4::Packet::new_checked(&buf[l3..end]) else {
                    return Ok(Verdict::Pass);
                };
                if ip.dst_addr() != me || ip.protocol() != IpProtocol::Udp || ip.is_fragment() {
                    return Ok(Verdict::Pass);
                }
                if !tunnel_port(&buf[l3 + usize::from(ip.header_len())..end]) {
                    return Ok(Verdict::Pass);
                }
                if !ip.verify_checksum() {
                    return Err(DropReason::Ipv4BadChecksum);
                }
                (
                    IpAddr::V4(ip.src_addr()),
                    l3 + usize::from(ip.header_len()),
                    l3 + usize::from(ip.total_len()),
                )
            }
            (EtherType::Ipv6, IpAddr::V6(me)) => {
                let Ok(ip) = ipv6::Packet::new_checked(&buf[l3..end]) else {
                    return Ok(Verdict::Pass);
                };
                if ip.dst_addr() != me || ip.next_header() != IpProtocol::Udp {
                    return Ok(Verdict::Pass);
                }
                if !tunnel_port(&buf[l3 + ipv6::HEADER_LEN..end]) {
                    return Ok(Verdict::Pass);
                }
                (
                    IpAddr::V6(ip.src_addr()),
                    l3 + ipv6::HEADER_LEN,
                    l3 + ipv6::HEADER_LEN + usize::from(ip.payload_len()),
                )
            }
            _ => return Ok(Verdict::Pass),
        };
        let peer = *self
            .tables
            .peer_addrs
            .get(&src)
            .ok_or(DropReason::TunnelUnknownPeer)?;
        let udp = udp::Packet::new_checked(&buf[udp_at..ip_end])
            .map_err(|_| DropReason::TunnelMalformed)?;
        if let (IpAddr::V6(src), IpAddr::V6(dst)) = (src, underlay.addr)
            && !udp.verify_checksum_v6(&src, &dst)
        {
            return Err(DropReason::TunnelMalformed);
        }
        let payload = udp_at + udp::HEADER_LEN;
        let payload_end = udp_at + usize::from(udp.len());
        match udp.dst_port() {
            mpls::UDP_PORT => {
                let entry = mpls::Packet::new_checked(&buf[payload..payload_end])
                    .map_err(|_| DropReason::TunnelMalformed)?;
                let repr = mpls::Repr::parse(&entry).map_err(|_| DropReason::TunnelMalformed)?;
                let inner = payload + mpls::HEADER_LEN;
                match self.tables.labels.get(&repr.label) {
                    Some(&LabelTarget::Vmi(id)) => {
                        self.deliver_routed(ingress, id, peer, buf, inner, payload_end)
                    }
                    Some(&LabelTarget::Vrf(vrf)) => {
                        self.decapsulated_frame(ingress, vrf, peer, buf, inner, payload_end - inner)
                    }
                    Some(&LabelTarget::RoutedVrf(vrf)) => {
                        self.routed_in_vrf(ingress, vrf, peer, buf, inner, payload_end)
                    }
                    None => Err(DropReason::TunnelUnknownLabel),
                }
            }
            _ => {
                let header = vxlan::Packet::new_checked(&buf[payload..payload_end])
                    .map_err(|_| DropReason::TunnelMalformed)?;
                let repr = vxlan::Repr::parse(&header).map_err(|_| DropReason::TunnelMalformed)?;
                let vrf = *self
                    .tables
                    .vnis
                    .get(&repr.vni)
                    .ok_or(DropReason::TunnelUnknownVni)?;
                let inner = payload + vxlan::HEADER_LEN;
                if self.tables.vrfs[vrf].peer_encap(peer).is_none()
                    && self.tables.vrfs[vrf].routed_peers.contains(&peer)
                {
                    return self.routed_frame_in_vrf(ingress, vrf, peer, buf, inner, payload_end);
                }
                self.decapsulated_frame(ingress, vrf, peer, buf, inner, payload_end - inner)
            }
        }
    }

    /// An inner Ethernet frame with a network's VNI from a DC gateway
    /// routing for the network (an L3VPN peer told ET:8, label = VNI, by
    /// our exports): its IP packet is routed in the VRF exactly as a
    /// routed-label packet from that gateway. The packet is routed, not
    /// bridged, so any inner destination MAC is taken (an RFC 9136 peer
    /// sends to the router's MAC of the route, which we do not advertise;
    /// a DC gateway without one puts what it has configured); the frame
    /// must be untagged, with a unicast source MAC, and carry IPv4 or IPv6.
    fn routed_frame_in_vrf(
        &self,
        ingress: PortId,
        vrf_index: usize,
        peer: PeerId,
        buf: &mut [u8],
        offset: usize,
        end: usize,
    ) -> Result<Verdict, DropReason> {
        let l2 = parse_l2(&buf[offset..end]).map_err(|_| DropReason::TunnelMalformed)?;
        if l2.tci.is_some() || !matches!(l2.ethertype, EtherType::Ipv4 | EtherType::Ipv6) {
            return Err(DropReason::TunnelMalformed);
        }
        if l2.src.is_multicast() {
            return Err(DropReason::InvalidSourceMac);
        }
        self.routed_in_vrf(ingress, vrf_index, peer, buf, offset + l2.header_len, end)
    }

    /// An inner IP packet for a local VMI (its label): to it, if the packet
    /// is really for one of its addresses and the peer hosts its network.
    /// From a DC gateway (a routed peer, not a node) to a multi-homed VMI
    /// another member serves now: on to that member (see `ha.rs`).
    fn deliver_routed(
        &self,
        ingress: PortId,
        id: VmiId,
        peer: PeerId,
        buf: &mut [u8],
        ip_at: usize,
        end: usize,
    ) -> Result<Verdict, DropReason> {
        let vmi = &self.tables.vmis[id.index()];
        let vrf = &self.tables.vrfs[vmi.vrf];
        // A peer hosting the network, or one routing for it (DC gateway);
        // into a network a policy connects, also a host of the source's
        // network (network_policy.rs).
        let hosts = vrf.accepts_routed_from(peer);
        if !hosts && !vrf.linked {
            return Err(DropReason::TunnelPeerNotInNetwork);
        }
        let inner = &buf[ip_at..end];
        let (src, dst, ip_len, ethertype) = match inner.first().map(|b| b >> 4) {
            Some(4) => {
                let ip =
                    ipv4::Packet::new_checked(inner).map_err(|_| DropReason::TunnelMalformed)?;
                (
                    IpAddr::V4(ip.src_addr()),
                    IpAddr::V4(ip.dst_addr()),
                    usize::from(ip.total_len()),
                    EtherType::Ipv4,
                )
            }
            Some(6) => {
                let ip =
                    ipv6::Packet::new_checked(inner).map_err(|_| DropReason::TunnelMalformed)?;
                (
                    IpAddr::V6(ip.src_addr()),
                    IpAddr::V6(ip.dst_addr()),
                    ipv6::HEADER_LEN + usize::from(ip.payload_len()),
                    EtherType::Ipv6,
                )
            }
            _ => return Err(DropReason::TunnelMalformed),
        };
        let crossing = match vrf.linked {
            true => self.link_of_source(vrf, peer, src, hosts)?,
            false => None,
        };
        if vrf.lookup(dst) != Some(crate::tables::NextHop::Vmi(id)) {
            return Err(DropReason::TunnelWrongDestination);
        }
        if let Some(link) = crossing {
            self.police_link(link, ethertype, buf, ip_at, ip_at + ip_len)?;
        }
        let gateway = self.tables.gateway_mac;
        if let Some(via) = vmi.path.as_deref().and_then(|p| p.current())
            && vrf.routed_peers.contains(&peer)
        {
            let start = write_l2_before(buf, ip_at, vmi.mac, gateway, 0, ethertype)?;
            let frame_end = ip_at + ip_len;
            let l2 = parse_l2(&buf[start..frame_end]).map_err(|_| DropReason::TunnelMalformed)?;
            let ctx = Ingress {
                port: ingress,
                source: Source::Tunnel(peer),
                vrf,
                vrf_index: vmi.vrf,
                vlan: 0,
            };
            let (peer, routed, mac) = (via.peer, via.routed, vmi.mac);
            return self.route_through(ctx, peer, routed, mac, &l2, buf, start, frame_end - start);
        }
        self.ha_deliver(vmi)?;
        let egress = vmi.egress.ok_or(DropReason::VmiUnreachable)?;
        if vmi.policy.is_some() {
            let ingress = crate::policy::Direction::Ingress;
            self.police(vmi, ingress, ethertype, buf, ip_at, ip_at + ip_len)?;
        }
        let start = write_l2_before(buf, ip_at, vmi.mac, gateway, egress.vlan, ethertype)?;
        Ok(Verdict::Transmit {
            port: egress.port,
            offset: start,
            len: ip_at - start + ip_len,
            vmi: Some(id),
        })
    }

    /// An inner IP packet with a network's routed label (or, VXLAN, the
    /// network's VNI: `routed_frame_in_vrf`), from a DC gateway routing
    /// for the network (never from a node: nodes send by a VMI's label):
    /// routed in the VRF as from the tunnel, so to a local VMI or a
    /// virtual gateway's interface (never back into a tunnel).
    fn routed_in_vrf(
        &self,
        ingress: PortId,
        vrf_index: usize,
        peer: PeerId,
        buf: &mut [u8],
        ip_at: usize,
        end: usize,
    ) -> Result<Verdict, DropReason> {
        let vrf = &self.tables.vrfs[vrf_index];
        if !vrf.routed_peers.contains(&peer) {
            return Err(DropReason::TunnelPeerNotInNetwork);
        }
        if !vrf.routes {
            return Err(DropReason::RoutingDisabled);
        }
        let inner = &buf[ip_at..end];
        let (ip_len, ethertype) = match inner.first().map(|b| b >> 4) {
            Some(4) => {
                let ip =
                    ipv4::Packet::new_checked(inner).map_err(|_| DropReason::TunnelMalformed)?;
                (usize::from(ip.total_len()), EtherType::Ipv4)
            }
            Some(6) => {
                let ip =
                    ipv6::Packet::new_checked(inner).map_err(|_| DropReason::TunnelMalformed)?;
                (
                    ipv6::HEADER_LEN + usize::from(ip.payload_len()),
                    EtherType::Ipv6,
                )
            }
            _ => return Err(DropReason::TunnelMalformed),
        };
        let gateway = self.tables.gateway_mac;
        let start = write_l2_before(buf, ip_at, gateway, gateway, 0, ethertype)?;
        let frame_end = ip_at + ip_len;
        let l2 = parse_l2(&buf[start..frame_end]).map_err(|_| DropReason::TunnelMalformed)?;
        let ctx = Ingress {
            port: ingress,
            source: Source::Tunnel(peer),
            vrf,
            vrf_index,
            vlan: 0,
        };
        match ethertype {
            EtherType::Ipv4 => self.route_v4(ctx, &l2, buf, start, frame_end - start),
            _ => self.route_v6(ctx, &l2, buf, start, frame_end - start),
        }
    }

    /// An inner Ethernet frame of a network, from a peer: into the VRF, as
    /// from the tunnel (never back into one).
    fn decapsulated_frame(
        &self,
        ingress: PortId,
        vrf_index: usize,
        peer: PeerId,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let vrf = &self.tables.vrfs[vrf_index];
        let hosts = vrf.peer_encap(peer).is_some();
        if !hosts && !vrf.linked {
            return Err(DropReason::TunnelPeerNotInNetwork);
        }
        let l2 = parse_l2(&buf[offset..offset + len]).map_err(|_| DropReason::TunnelMalformed)?;
        if l2.tci.is_some() {
            return Err(DropReason::TunnelMalformed);
        }
        if l2.src.is_multicast() {
            return Err(DropReason::InvalidSourceMac);
        }
        // Into a network a policy connects: a routed packet from a VMI of
        // a connected network (VXLAN: to its destination's MAC) is decided
        // here too; anything else only from the network's own peers.
        let (l3, end) = (offset + l2.header_len, offset + len);
        let crossing = match (vrf.linked, l2.ethertype) {
            (true, EtherType::Ipv4 | EtherType::Ipv6) => {
                let src = inner_source(&buf[l3..end]).ok_or(DropReason::TunnelMalformed)?;
                self.link_of_source(vrf, peer, src, hosts)?
            }
            _ if hosts => None,
            _ => return Err(DropReason::TunnelPeerNotInNetwork),
        };
        if let Some(link) = crossing {
            self.police_link(link, l2.ethertype, buf, l3, end)?;
        }
        let ctx = Ingress {
            port: ingress,
            source: Source::Tunnel(peer),
            vrf,
            vrf_index,
            vlan: 0,
        };
        self.dispatch(ctx, &l2, buf, offset, len)
    }
}

/// The source address of the IP packet at the start of `l3`.
fn inner_source(l3: &[u8]) -> Option<IpAddr> {
    match l3.first().map(|b| b >> 4) {
        Some(4) => ipv4::Packet::new_checked(l3)
            .ok()
            .map(|ip| IpAddr::V4(ip.src_addr())),
        Some(6) => ipv6::Packet::new_checked(l3)
            .ok()
            .map(|ip| IpAddr::V6(ip.src_addr())),
        _ => None,
    }
}

/// What a routed packet is wrapped in before the tunnel headers.
#[derive(Clone, Copy)]
enum InnerEncap {
    /// Nothing: the label names the VMI, the payload is the IP packet.
    Ip(Encap),
    /// An Ethernet header to a MAC.
    Ethernet(Encap),
}

/// Whether the UDP datagram at the start of `l4` goes to a tunnel port.
fn tunnel_port(l4: &[u8]) -> bool {
    matches!(
        l4.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]])),
        Some(mpls::UDP_PORT | vxlan::UDP_PORT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_hashes_differ_by_ports_and_stay_stable() {
        let mut a = vec![0u8; 40];
        a[0] = 0x45;
        a[9] = 17;
        a[12..16].copy_from_slice(&[10, 0, 0, 1]);
        a[16..20].copy_from_slice(&[10, 0, 0, 2]);
        a[20..24].copy_from_slice(&[0x30, 0x39, 0x00, 0x35]);
        let mut b = a.clone();
        b[21] = 0x3a;
        assert_eq!(
            flow_hash(EtherType::Ipv4, &a),
            flow_hash(EtherType::Ipv4, &a)
        );
        assert_ne!(
            flow_hash(EtherType::Ipv4, &a),
            flow_hash(EtherType::Ipv4, &b)
        );
        // Truncated input never panics.
        for n in 0..a.len() {
            let _ = flow_hash(EtherType::Ipv4, &a[..n]);
            let _ = flow_hash(EtherType::Ipv6, &a[..n]);
        }
    }
}
