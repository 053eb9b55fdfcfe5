//! The DHCPv4 relay agent of the gateway (RFC 1542 section 4), for a
//! network whose addresses come from an external server (a provisioning
//! system's, say): the client's request leaves from the gateway address of
//! its subnet, routed in the network like any packet; the server's reply to
//! that address is handed back to the client. Stateless: the reply finds
//! its client by the hardware address it carries.
//!
//! ```text
//!  client --DISCOVER (0.0.0.0:68 -> 255.255.255.255:67)--> classified (VMI), port security ok
//!     giaddr = the client's subnet gateway (if unset), hops + 1
//!     --> gateway:67 -> server:67, routed in the VRF (to a VMI, a virtual
//!         gateway's tap, a peer)
//!  server --OFFER (server:67 -> giaddr:67)--> route: receive (a gateway address)
//!     chaddr -> the local VMI with that MAC in the VRF
//!     --> giaddr:67 -> 255.255.255.255:68 (or yiaddr without the broadcast
//!         flag), to the client's MAC, out of its logical interface
//! ```
//!
//! The address the server hands out must be the VMI's (or port security
//! off): the source checks do not change with the server. DHCPv6 is not
//! relayed.

use core::net::{IpAddr, Ipv4Addr};

use trunkline_wire::dhcpv4::{self, OpCode};
use trunkline_wire::{IpProtocol, ipv4, udp};

use super::dhcp::offer;
use super::{Ingress, L2Header, Pipeline, REPLY_HOP_LIMIT};
use crate::tables::{BridgeEntry, Vmi, mac_key};
use crate::verdict::{DropReason, Verdict};

/// The most relay agents a request may have crossed (RFC 1542 4.1.1).
const MAX_HOPS: u8 = 16;

/// What the relay needs from a message, read before it is rewritten.
struct Message {
    udp_at: usize,
    end: usize,
    opcode: OpCode,
    hops: u8,
    relay_agent: Ipv4Addr,
    your_ip: Ipv4Addr,
    broadcast: bool,
    client: trunkline_wire::EthernetAddress,
}

/// Reads the DHCP message of the IPv4 packet at `buf[l3..end]` (without IP
/// options: relayed messages never carry them).
fn read(buf: &[u8], l3: usize, end: usize) -> Result<Message, DropReason> {
    use DropReason::MalformedDhcp as Malformed;
    let ip = ipv4::Packet::new_checked(&buf[l3..end]).map_err(|_| Malformed)?;
    if usize::from(ip.header_len()) != ipv4::HEADER_LEN {
        return Err(Malformed);
    }
    let udp_at = l3 + ipv4::HEADER_LEN;
    let ip_end = l3 + usize::from(ip.total_len());
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let datagram = udp::Packet::new_checked(&buf[udp_at..ip_end]).map_err(|_| Malformed)?;
    if !datagram.verify_checksum_v4(&src, &dst) {
        return Err(Malformed);
    }
    let message = dhcpv4::Packet::new_checked(datagram.payload()).map_err(|_| Malformed)?;
    if message.hardware_type() != 1 || message.hardware_len() != 6 {
        return Err(Malformed);
    }
    Ok(Message {
        udp_at,
        end: udp_at + usize::from(datagram.len()),
        opcode: message.opcode(),
        hops: message.hops(),
        relay_agent: message.relay_agent_ip(),
        your_ip: message.your_ip(),
        broadcast: message.flags() & dhcpv4::FLAG_BROADCAST != 0,
        client: message.client_hardware_addr(),
    })
}

/// Rewrites the IPv4 and UDP headers of the DHCP message whose UDP header
/// is at `udp_at` and which ends at `end`.
fn readdress(
    buf: &mut [u8],
    l3: usize,
    udp_at: usize,
    end: usize,
    (src, dst): (Ipv4Addr, Ipv4Addr),
    (src_port, dst_port): (u16, u16),
) {
    udp::Repr {
        src_port,
        dst_port,
        payload_len: end - udp_at - udp::HEADER_LEN,
    }
    .emit(&mut udp::Packet::new_unchecked(&mut buf[udp_at..end]));
    udp::Packet::new_unchecked(&mut buf[udp_at..end]).fill_checksum_v4(&src, &dst);
    ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Udp,
        payload_len: end - udp_at,
        ttl: REPLY_HOP_LIMIT,
    }
    .emit(&mut ipv4::Packet::new_unchecked(&mut buf[l3..udp_at]));
}

impl<'a> Pipeline<'a> {
    /// Relay a DHCPv4 client message from `vmi` to `server`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dhcp_relay_request(
        &self,
        ctx: Ingress<'a>,
        vmi: &Vmi,
        server: Ipv4Addr,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let l3 = offset + l2.header_len;
        let message = read(buf, l3, offset + len)?;
        if message.opcode != OpCode::Request || message.client != l2.src || message.hops >= MAX_HOPS
        {
            return Err(DropReason::DhcpIgnored);
        }
        // The gateway address of the instance's subnet: where the server
        // picks the address from, and where it answers.
        let gateway = match offer(vmi, &ctx.vrf.gateways, true) {
            Some((_, _, IpAddr::V4(gateway))) => Some(gateway),
            _ => ctx.vrf.gateways.iter().find_map(|(_, g)| match g {
                IpAddr::V4(g) => Some(*g),
                IpAddr::V6(_) => None,
            }),
        }
        .ok_or(DropReason::DhcpNoAddress)?;
        let next_hop = ctx
            .vrf
            .v4
            .lookup(u32::from(server))
            .ok_or(DropReason::NoRoute)?;
        let msg_at = message.udp_at + udp::HEADER_LEN;
        {
            let mut packet = dhcpv4::Packet::new_unchecked(&mut buf[msg_at..message.end]);
            packet.set_hops(message.hops + 1);
            if message.relay_agent.is_unspecified() {
                packet.set_relay_agent_ip(gateway);
            }
        }
        readdress(
            buf,
            l3,
            message.udp_at,
            message.end,
            (gateway, server),
            (dhcpv4::SERVER_PORT, dhcpv4::SERVER_PORT),
        );
        self.forward(ctx, next_hop, l2, buf, offset, message.end - offset)
    }

    /// A server's reply to a gateway address (an IPv4 UDP packet to port
    /// 67): to the client its hardware address names.
    pub(super) fn dhcp_relay_reply(
        &self,
        ctx: Ingress<'a>,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        let l3 = offset + l2.header_len;
        let message = read(buf, l3, offset + len)?;
        let ours = ctx
            .vrf
            .gateways
            .iter()
            .any(|(_, g)| *g == IpAddr::V4(message.relay_agent));
        if message.opcode != OpCode::Reply || !ours {
            return Err(DropReason::DhcpIgnored);
        }
        let Some(&BridgeEntry::Vmi(client)) = ctx.vrf.bridge.get(&mac_key(message.client)) else {
            // Not an instance of this node (or of this network).
            return Err(DropReason::DhcpIgnored);
        };
        let dst = if message.broadcast || message.your_ip.is_unspecified() {
            Ipv4Addr::BROADCAST
        } else {
            message.your_ip
        };
        readdress(
            buf,
            l3,
            message.udp_at,
            message.end,
            (message.relay_agent, dst),
            (dhcpv4::SERVER_PORT, dhcpv4::CLIENT_PORT),
        );
        // A standby member sends nothing out of the group's member port.
        self.ha_deliver(&self.tables.vmis[client.index()])?;
        let verdict = self.send_to_vmi(client, l2, buf, offset, message.end - offset, true)?;
        if let Verdict::Transmit { offset, len, .. } = verdict {
            // To the hardware address the server answered (the VMI's, or
            // one of its pairs').
            trunkline_wire::ethernet::Frame::new_unchecked(&mut buf[offset..offset + len])
                .set_dst_addr(message.client);
        }
        Ok(verdict)
    }
}
