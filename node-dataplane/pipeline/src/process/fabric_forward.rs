//! Leaving the overlay without a tunnel, and coming back (seed 004): a
//! routed packet whose destination the VRF does not route, outside the
//! network's own subnets, leaves by the fabric port, source-translated
//! (`snat.rs`) or as it is (IP fabric forwarding, here).
//!
//! ```text
//!  VMI 192.168.1.10 -> 10.0.0.253 (no route in the VRF)
//!     exit SNAT:      src := underlay:port (flow) -+
//!     exit IP fabric: unchanged ------------------+-> TTL - 1, fabric MTU
//!                                                  -> next hop by the host's routes out of the
//!                                                     fabric port, its MAC from the neighbour cache
//!                                                  -> Ethernet {next hop, fabric MAC} -> fabric port
//!
//!  fabric port, not a tunnel packet:
//!     dst = underlay, a SNAT port (or an ICMP error quoting one) -> snat.rs
//!     dst in a subnet with IP fabric forwarding -> that VRF: LPM -> VMI (local, or
//!         through a tunnel to the node holding it), TTL - 1
//!     anything else -> the host's (Pass)
//! ```
//!
//! Only packets from a VMI leave this way: a packet that came from a
//! tunnel, a host port or the fabric itself never goes (back) out of the
//! fabric untunneled. IP fabric forwarding keeps no state: the fabric must
//! route the network's subnets to one of its gateway nodes (whichever; a
//! node that does not hold the destination VMI tunnels it on).

use core::net::IpAddr;

use trunkline_wire::ethernet::{self, EtherType};
use trunkline_wire::{EthernetAddress, IpProtocol, ipv4, ipv6, mpls, udp, vxlan};

use super::egress::write_l2_before;
use super::{Ingress, L2Header, Pipeline, Source};
use crate::config::{FabricExit, PortId};
use crate::tables::NextHop;
use crate::verdict::{DropReason, Verdict};

impl<'a> Pipeline<'a> {
    /// A routed packet (for the gateway MAC, not yet TTL-checked) whose
    /// destination `dst` the VRF does not route: out by the network's
    /// fabric exit, if it has one and `dst` is outside its subnets.
    pub(super) fn fabric_exit(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
        dst: IpAddr,
    ) -> Result<Verdict, DropReason> {
        if !matches!(ctx.source, Source::Vmi(_)) || ctx.vrf.in_subnets(dst) {
            return Err(DropReason::NoRoute);
        }
        match ctx.vrf.exit {
            FabricExit::None => Err(DropReason::NoRoute),
            FabricExit::Snat => self.snat_out(ctx, l2, buf, offset, len),
            FabricExit::IpFabric => self.ip_fabric_out(ctx, l2, buf, offset, len, dst),
        }
    }

    /// IP fabric forwarding: the packet as it is, onto the fabric.
    fn ip_fabric_out(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
        dst: IpAddr,
    ) -> Result<Verdict, DropReason> {
        let ip_at = offset + l2.header_len;
        let ip_len = ip_length(&buf[ip_at..offset + len])?;
        hop_limit_left(&buf[ip_at..ip_at + ip_len])?;
        let mtu = self.fabric_mtu()?;
        if ip_len > mtu {
            return self.too_big(ctx, l2, buf, offset, len, mtu);
        }
        let mac = self.fabric_next_hop(dst)?;
        decrement_hop_limit(&mut buf[ip_at..ip_at + ip_len]);
        self.onto_fabric(buf, ip_at, ip_len, l2.ethertype, mac)
    }

    /// The largest IP packet the fabric takes.
    pub(super) fn fabric_mtu(&self) -> Result<usize, DropReason> {
        self.tables
            .underlay
            .map(|u| usize::from(u.mtu))
            .ok_or(DropReason::NoRoute)
    }

    /// The MAC of the fabric next hop toward `dst`, by the host's routes
    /// out of the fabric port; an unknown one is asked for (and this
    /// packet dropped).
    pub(super) fn fabric_next_hop(&self, dst: IpAddr) -> Result<EthernetAddress, DropReason> {
        let ns = &self.tables.north_south;
        let next_hop = ns.next_hop(dst).ok_or(DropReason::FabricNoRoute)?;
        ns.neighbours
            .lookup(next_hop)
            .map(EthernetAddress)
            .ok_or(DropReason::FabricUnresolved)
    }

    /// The IP packet at `buf[ip_at..ip_at + ip_len]` out of the fabric port
    /// to `next_hop`, from the fabric port's MAC.
    pub(super) fn onto_fabric(
        &self,
        buf: &mut [u8],
        ip_at: usize,
        ip_len: usize,
        ethertype: EtherType,
        next_hop: EthernetAddress,
    ) -> Result<Verdict, DropReason> {
        let underlay = self.tables.underlay.ok_or(DropReason::NoRoute)?;
        let start = write_l2_before(buf, ip_at, next_hop, underlay.mac, 0, ethertype)?;
        Ok(Verdict::Transmit {
            port: underlay.port,
            offset: start,
            len: ip_at - start + ip_len,
            vmi: None,
        })
    }

    /// A frame of the fabric port that is not a tunnel packet: the return
    /// of a SNAT flow, or a packet to a subnet with IP fabric forwarding.
    /// `None`: not ours, the tunnel code or the host decides.
    pub(super) fn fabric_inbound(
        &self,
        ingress: PortId,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Option<Result<Verdict, DropReason>> {
        let underlay = self.tables.underlay?;
        let frame = &buf[offset..offset + len];
        let eth = ethernet::Frame::new_checked(frame).ok()?;
        let ethertype = eth.ethertype();
        let l3 = &frame[ethernet::HEADER_LEN..];
        let (dst, proto, l4) = match ethertype {
            EtherType::Ipv4 => {
                let ip = ipv4::Packet::new_checked(l3).ok()?;
                let l4 = l3.get(usize::from(ip.header_len())..usize::from(ip.total_len()))?;
                (IpAddr::V4(ip.dst_addr()), ip.protocol(), l4)
            }
            EtherType::Ipv6 => {
                let ip = ipv6::Packet::new_checked(l3).ok()?;
                (IpAddr::V6(ip.dst_addr()), ip.next_header(), ip.payload())
            }
            _ => return None,
        };
        if dst == underlay.addr {
            if proto == IpProtocol::Udp && is_tunnel_port(l4) {
                return None;
            }
            return self.snat_in(ingress, buf, offset, len);
        }
        let vrf = self.tables.north_south.ip_fabric_vrf(dst)?;
        Some(self.ip_fabric_in(ingress, vrf, buf, offset, len))
    }

    /// A packet from the fabric to a subnet with IP fabric forwarding:
    /// routed in the network's VRF (to the VMI, here or behind a peer).
    fn ip_fabric_in(
        &self,
        ingress: PortId,
        vrf_index: usize,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let l2 = super::parse_l2(&buf[offset..offset + len])?;
        let ctx = Ingress {
            port: ingress,
            // Routed, never bridged, and never back out of the fabric: as
            // from a host port.
            source: Source::Host,
            vrf: &self.tables.vrfs[vrf_index],
            vrf_index,
            vlan: 0,
        };
        let ip_at = offset + l2.header_len;
        let dst = match l2.ethertype {
            EtherType::Ipv4 => {
                let ip = ipv4::Packet::new_checked(&buf[ip_at..offset + len])
                    .map_err(|_| DropReason::MalformedIpv4)?;
                if !ip.verify_checksum() {
                    return Err(DropReason::Ipv4BadChecksum);
                }
                IpAddr::V4(ip.dst_addr())
            }
            _ => IpAddr::V6(
                ipv6::Packet::new_checked(&buf[ip_at..offset + len])
                    .map_err(|_| DropReason::MalformedIpv6)?
                    .dst_addr(),
            ),
        };
        self.route_from_fabric(ctx, &l2, buf, offset, len, dst)
    }

    /// Route a packet that entered a VRF from the fabric (IP fabric
    /// forwarding, or a SNAT flow's return, already translated) to `dst`.
    pub(super) fn route_from_fabric(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
        dst: IpAddr,
    ) -> Result<Verdict, DropReason> {
        let next_hop = ctx.vrf.lookup(dst).ok_or(DropReason::NoRoute)?;
        match next_hop {
            NextHop::Receive => return Err(DropReason::ReceiveUnsupported),
            NextHop::Discard => return Err(DropReason::DiscardRoute),
            _ => {}
        }
        let ip_at = offset + l2.header_len;
        let ip_len = ip_length(&buf[ip_at..offset + len])?;
        hop_limit_left(&buf[ip_at..ip_at + ip_len])?;
        decrement_hop_limit(&mut buf[ip_at..ip_at + ip_len]);
        self.forward(ctx, next_hop, l2, buf, offset, len)
    }
}

/// Whether the UDP datagram at the start of `l4` goes to a tunnel port.
fn is_tunnel_port(l4: &[u8]) -> bool {
    matches!(
        l4.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]])),
        Some(mpls::UDP_PORT | vxlan::UDP_PORT)
    ) && l4.len() >= udp::HEADER_LEN
}

/// The length of the IP packet at the start of `l3` (by its header; the
/// frame may carry padding after it).
pub(super) fn ip_length(l3: &[u8]) -> Result<usize, DropReason> {
    match l3.first().map(|b| b >> 4) {
        Some(4) => ipv4::Packet::new_checked(l3)
            .map(|ip| usize::from(ip.total_len()))
            .map_err(|_| DropReason::MalformedIpv4),
        Some(6) => ipv6::Packet::new_checked(l3)
            .map(|ip| ipv6::HEADER_LEN + usize::from(ip.payload_len()))
            .map_err(|_| DropReason::MalformedIpv6),
        _ => Err(DropReason::MalformedIpv4),
    }
}

/// Whether the packet may be forwarded once more (TTL / hop limit > 1).
pub(super) fn hop_limit_left(ip: &[u8]) -> Result<(), DropReason> {
    let left = match ip.first().map(|b| b >> 4) {
        Some(4) => ip.get(8).copied(),
        _ => ip.get(7).copied(),
    };
    match left {
        Some(n) if n > 1 => Ok(()),
        _ => Err(DropReason::TtlExceeded),
    }
}

/// Decrement the TTL (and fix the IPv4 checksum) or the hop limit of a
/// checked packet.
pub(super) fn decrement_hop_limit(ip: &mut [u8]) {
    if ip.first().map(|b| b >> 4) == Some(4) {
        ipv4::Packet::new_unchecked(ip).decrement_ttl();
    } else {
        ipv6::Packet::new_unchecked(ip).decrement_hop_limit();
    }
}
