//! The DHCPv4 server of the gateway, as the original's agent had for its
//! gateway VMIs: a remote instance that boots without an address asks by
//! DHCP and gets its VMI's configured address, with the subnet's gateway as
//! router, the network's DNS servers, domain and MTU, and the PXE next
//! server and boot file when the network declares them. Nothing is
//! allocated: the address is the VMI's, so the server keeps no lease state,
//! and the reply is written over the request.
//!
//! ```text
//!  instance --DISCOVER (0.0.0.0 -> 255.255.255.255, UDP 68 -> 67)--> classified (VMI)
//!     port security lets a VMI's own client message (source 0.0.0.0) through,
//!     to this stage only
//!  DISCOVER -> OFFER     REQUEST (for us, or no server id) -> ACK of the VMI's
//!  INFORM   -> ACK       address, or NAK for another       DECLINE, RELEASE -> dhcp_ignored
//!  reply: gateway address (of the offered address's subnet) -> 255.255.255.255
//!         (ciaddr when the client has one), to the client's MAC, same port and tag
//! ```
//!
//! A network whose DHCP is off, or that only bridges, has no server: the
//! client's broadcasts are bridged like any others (to a DHCP server among
//! the instances), and nothing else from an unspecified source passes.

use core::net::{IpAddr, Ipv4Addr};

use trunkline_wire::dhcpv4::{self, MessageType, OpCode, OptionWriter, option};
use trunkline_wire::ethernet::EtherType;
use trunkline_wire::{IpPrefix, IpProtocol, dhcpv6, ipv4, ipv6, udp};

use super::{Ingress, L2Header, Pipeline, REPLY_HOP_LIMIT};
use crate::tables::{DhcpServer, Vmi};
use crate::verdict::{DropReason, Verdict};

/// The largest IPv4 datagram every client accepts (RFC 2131 section 2):
/// replies stay within it.
const MAX_REPLY_DATAGRAM: usize = 576;

/// A DHCP client message's family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClientMessage {
    /// UDP 68 -> 67 over IPv4.
    V4,
    /// UDP 546 -> 547 over IPv6.
    V6,
}

/// Whether the IP packet `l3` (of `ethertype`) is a DHCP client message:
/// UDP from the client port to the server port, not fragmented. Cheap: the
/// ports are read without validating the rest.
#[inline]
pub(super) fn client_message(ethertype: EtherType, l3: &[u8]) -> Option<ClientMessage> {
    let ports = |l4: &[u8]| -> Option<(u16, u16)> {
        let p = l4.get(..4)?;
        Some((
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        ))
    };
    match ethertype {
        EtherType::Ipv4 => {
            let ip = ipv4::Packet::new_checked(l3).ok()?;
            if ip.protocol() != IpProtocol::Udp || ip.is_fragment() {
                return None;
            }
            let l4 = l3.get(usize::from(ip.header_len())..)?;
            (ports(l4)? == (dhcpv4::CLIENT_PORT, dhcpv4::SERVER_PORT)).then_some(ClientMessage::V4)
        }
        EtherType::Ipv6 => {
            let ip = ipv6::Packet::new_checked(l3).ok()?;
            if ip.next_header() != IpProtocol::Udp {
                return None;
            }
            (ports(ip.payload())? == (dhcpv6::CLIENT_PORT, dhcpv6::SERVER_PORT))
                .then_some(ClientMessage::V6)
        }
        _ => None,
    }
}

/// The address a VMI is offered in `family`: its first address of that
/// family inside one of the network's subnets, with the subnet and its
/// gateway.
pub(super) fn offer(
    vmi: &Vmi,
    gateways: &[(IpPrefix, IpAddr)],
    v4: bool,
) -> Option<(IpAddr, IpPrefix, IpAddr)> {
    vmi.ips
        .iter()
        .filter(|ip| ip.is_ipv4() == v4)
        .find_map(|ip| {
            gateways
                .iter()
                .find(|(prefix, _)| prefix.contains(*ip))
                .map(|(prefix, gateway)| (*ip, *prefix, *gateway))
        })
}

/// What the reply is.
enum Answer {
    /// OFFER or ACK of the VMI's address, with a lease.
    Lease(MessageType),
    /// ACK of an INFORM: configuration only.
    Inform,
    /// NAK: the client asked for another address.
    Nak,
}

impl<'a> Pipeline<'a> {
    /// Answer a DHCPv4 client message from `vmi` (arrived as `ctx`) with
    /// the network's server `server`, in place.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dhcp_v4(
        &self,
        ctx: Ingress<'a>,
        vmi: &Vmi,
        server: &DhcpServer,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        use DropReason::MalformedDhcp as Malformed;
        let l3 = offset + l2.header_len;
        let end = offset + len;
        let Some((IpAddr::V4(address), prefix, IpAddr::V4(gateway))) =
            offer(vmi, &ctx.vrf.gateways, true)
        else {
            return Err(DropReason::DhcpNoAddress);
        };
        // Everything the reply needs from the request, before it is
        // overwritten.
        let mut client_id = [0u8; 255];
        let (request, client_id_len) = {
            let ip = ipv4::Packet::new_checked(&buf[l3..end]).map_err(|_| Malformed)?;
            if !ip.verify_checksum() {
                return Err(DropReason::Ipv4BadChecksum);
            }
            let udp_at = l3 + usize::from(ip.header_len());
            let ip_end = l3 + usize::from(ip.total_len());
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let datagram = udp::Packet::new_checked(&buf[udp_at..ip_end]).map_err(|_| Malformed)?;
            if !datagram.verify_checksum_v4(&src, &dst) {
                return Err(Malformed);
            }
            let message = dhcpv4::Packet::new_checked(datagram.payload()).map_err(|_| Malformed)?;
            let repr = dhcpv4::Repr::parse(&message).map_err(|_| Malformed)?;
            let id = repr.client_id.unwrap_or_default();
            client_id[..id.len()].copy_from_slice(id);
            // The values only, not the borrowed options.
            let request = dhcpv4::Repr {
                client_id: None,
                parameter_request_list: None,
                ..repr
            };
            (request, id.len())
        };
        if request.opcode != OpCode::Request || request.client_hardware_addr != l2.src {
            return Err(DropReason::DhcpIgnored);
        }
        let answer = match request.message_type {
            MessageType::Discover => Answer::Lease(MessageType::Offer),
            MessageType::Request => match (request.server_id, request.requested_ip) {
                (Some(id), _) if id != gateway => return Err(DropReason::DhcpIgnored),
                (_, Some(wanted)) if wanted != address => Answer::Nak,
                (_, Some(_)) => Answer::Lease(MessageType::Ack),
                // Renewing or rebinding: the address it holds.
                (_, None) if request.client_ip == address => Answer::Lease(MessageType::Ack),
                (_, None) => Answer::Nak,
            },
            MessageType::Inform => Answer::Inform,
            _ => return Err(DropReason::DhcpIgnored),
        };
        let (your_ip, dst, msg_type) = match answer {
            Answer::Lease(t) if request.client_ip.is_unspecified() => {
                (address, Ipv4Addr::BROADCAST, t)
            }
            Answer::Lease(t) => (address, request.client_ip, t),
            Answer::Inform if request.client_ip.is_unspecified() => {
                (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, MessageType::Ack)
            }
            Answer::Inform => (Ipv4Addr::UNSPECIFIED, request.client_ip, MessageType::Ack),
            Answer::Nak => (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, MessageType::Nak),
        };

        // The reply, over the request: IPv4 (without options) and UDP
        // headers, then the message.
        let udp_at = l3 + ipv4::HEADER_LEN;
        let msg_at = udp_at + udp::HEADER_LEN;
        let limit = buf.len().min(l3 + MAX_REPLY_DATAGRAM);
        if msg_at + dhcpv4::MIN_MESSAGE_LEN > limit {
            return Err(DropReason::NoTailroom);
        }
        buf[msg_at..msg_at + dhcpv4::HEADER_LEN].fill(0);
        let options_len = {
            let mut message = dhcpv4::Packet::new_unchecked(&mut buf[msg_at..limit]);
            message.set_opcode(OpCode::Reply);
            message.set_ethernet();
            message.set_transaction_id(request.transaction_id);
            message.set_flags(request.flags);
            message.set_client_ip(request.client_ip);
            message.set_your_ip(your_ip);
            message.set_relay_agent_ip(request.relay_agent_ip);
            message.set_client_hardware_addr(request.client_hardware_addr);
            let lease = matches!(answer, Answer::Lease(_));
            if lease {
                if let Some(next) = server.next_server {
                    message.set_server_ip(next);
                }
                message.set_boot_file(&server.boot_file);
            }
            message.set_magic_cookie();
            let mut w = OptionWriter::new(message.options_mut());
            write_options(
                &mut w,
                msg_type,
                gateway,
                server,
                ctx.vrf.mtu,
                lease,
                &prefix,
                &client_id[..client_id_len],
            )
            .map_err(|_| DropReason::NoTailroom)?;
            w.end().map_err(|_| DropReason::NoTailroom)?
        };
        let message_len = (dhcpv4::HEADER_LEN + options_len).max(dhcpv4::MIN_MESSAGE_LEN);
        buf[msg_at + dhcpv4::HEADER_LEN + options_len..msg_at + message_len].fill(0);
        let udp_end = msg_at + message_len;
        udp::Repr {
            src_port: dhcpv4::SERVER_PORT,
            dst_port: dhcpv4::CLIENT_PORT,
            payload_len: message_len,
        }
        .emit(&mut udp::Packet::new_unchecked(&mut buf[udp_at..udp_end]));
        udp::Packet::new_unchecked(&mut buf[udp_at..udp_end]).fill_checksum_v4(&gateway, &dst);
        ipv4::Repr {
            src_addr: gateway,
            dst_addr: dst,
            protocol: IpProtocol::Udp,
            payload_len: udp::HEADER_LEN + message_len,
            ttl: REPLY_HOP_LIMIT,
        }
        .emit(&mut ipv4::Packet::new_unchecked(&mut buf[l3..udp_at]));
        self.reply(
            ctx,
            request.client_hardware_addr,
            buf,
            offset,
            udp_end - offset,
        )
    }
}

/// The options of a reply, in the order clients expect them (type and
/// server first).
#[allow(clippy::too_many_arguments)]
fn write_options(
    w: &mut OptionWriter<'_>,
    msg_type: MessageType,
    gateway: Ipv4Addr,
    server: &DhcpServer,
    mtu: Option<u16>,
    lease: bool,
    prefix: &IpPrefix,
    client_id: &[u8],
) -> trunkline_wire::Result<()> {
    w.put_u8(option::MESSAGE_TYPE, msg_type.into())?;
    w.put_addrs(option::SERVER_ID, &[gateway])?;
    if !client_id.is_empty() {
        // RFC 6842: a server echoes the client identifier.
        w.put(option::CLIENT_ID, client_id)?;
    }
    if msg_type == MessageType::Nak {
        return w.put(option::MESSAGE, b"that address is not this instance's");
    }
    if lease {
        w.put_u32(option::LEASE_TIME, server.lease_secs)?;
        w.put_u32(option::RENEWAL_TIME, server.renewal_secs())?;
        w.put_u32(option::REBINDING_TIME, server.rebinding_secs())?;
    }
    let (IpAddr::V4(network), len) = (prefix.addr(), prefix.prefix_len()) else {
        return Ok(());
    };
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    w.put_u32(option::SUBNET_MASK, mask)?;
    w.put_addrs(option::ROUTER, &[gateway])?;
    w.put_addrs(
        option::BROADCAST_ADDRESS,
        &[Ipv4Addr::from(u32::from(network) | !mask)],
    )?;
    if !server.dns4.is_empty() {
        w.put_addrs(option::DNS_SERVERS, &server.dns4)?;
    }
    if !server.domain.is_empty() {
        w.put(option::DOMAIN_NAME, &server.domain)?;
    }
    if let Some(mtu) = mtu {
        w.put_u16(option::INTERFACE_MTU, mtu)?;
    }
    if lease {
        if let Some(next) = server.next_server {
            let mut text = [0u8; 15];
            let n = write_dotted(next, &mut text);
            w.put(option::TFTP_SERVER_NAME, &text[..n])?;
        }
        if !server.boot_file.is_empty() {
            w.put(option::BOOTFILE_NAME, &server.boot_file)?;
        }
    }
    Ok(())
}

/// `addr` in dotted-quad text, without allocating; returns its length.
fn write_dotted(addr: Ipv4Addr, out: &mut [u8; 15]) -> usize {
    let mut n = 0;
    for (i, octet) in addr.octets().into_iter().enumerate() {
        if i > 0 {
            out[n] = b'.';
            n += 1;
        }
        let digits = [octet / 100, (octet / 10) % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for d in &digits[skip..] {
            out[n] = b'0' + d;
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_quads() {
        let mut out = [0u8; 15];
        for text in ["0.0.0.0", "192.168.1.5", "10.20.100.255", "255.255.255.255"] {
            let n = write_dotted(text.parse().unwrap(), &mut out);
            assert_eq!(&out[..n], text.as_bytes());
        }
    }
}
