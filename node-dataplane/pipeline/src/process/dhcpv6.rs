//! The stateful DHCPv6 server of the gateway (RFC 8415): an instance that
//! router advertisements sent to DHCPv6 (M flag, `router_advert.rs`) asks
//! for an address in an IA_NA and gets its VMI's configured IPv6 address,
//! with the network's DNS servers and domain. As for DHCPv4, the address is
//! the VMI's: no lease state, the reply written over the request.
//!
//! ```text
//!  instance fe80::x --SOLICIT (ff02::1:2, UDP 546 -> 547)--> classified (VMI)
//!     port security lets a VMI's own client message (link-local source)
//!     through, to this stage only
//!  SOLICIT -> ADVERTISE (preference 255), or REPLY with rapid commit
//!  REQUEST, RENEW (for us), REBIND -> REPLY with the VMI's address in the IA_NA
//!  CONFIRM -> REPLY Success / NotOnLink   INFORMATION-REQUEST -> REPLY (DNS)
//!  RELEASE, DECLINE (for us) -> REPLY Success (nothing to undo)
//!  reply: the gateway's link-local -> the client's link-local, same port and tag
//! ```

use core::net::{IpAddr, Ipv6Addr};

use trunkline_wire::dhcpv6::{self, MessageType, OptionWriter, option, status};
use trunkline_wire::{IpProtocol, ipv6, udp};

use super::dhcp::offer;
use super::{Ingress, L2Header, Pipeline, REPLY_HOP_LIMIT};
use crate::tables::{DhcpServer, Vmi};
use crate::verdict::{DropReason, Verdict};

/// Replies stay within the IPv6 minimum MTU.
const MAX_REPLY_PACKET: usize = 1280;

impl<'a> Pipeline<'a> {
    /// Answer a DHCPv6 client message from `vmi` with the network's server
    /// `server`, in place.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dhcp_v6(
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
        let our_duid = self.tables.server_duid;
        let mut client_id = [0u8; dhcpv6::MAX_DUID_LEN];
        let (request, client_id_len, client) = {
            let ip = ipv6::Packet::new_checked(&buf[l3..end]).map_err(|_| Malformed)?;
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            let datagram = udp::Packet::new_checked(ip.payload()).map_err(|_| Malformed)?;
            if datagram.checksum() == 0 || !datagram.verify_checksum_v6(&src, &dst) {
                return Err(Malformed);
            }
            let message = dhcpv6::Packet::new_checked(datagram.payload()).map_err(|_| Malformed)?;
            let repr = dhcpv6::Repr::parse(&message).map_err(|_| Malformed)?;
            let id = repr.client_id.unwrap_or_default();
            client_id[..id.len()].copy_from_slice(id);
            let server_id_matches = repr.server_id.map(|id| id == our_duid);
            let repr = dhcpv6::Repr {
                client_id: None,
                server_id: None,
                ..repr
            };
            ((repr, server_id_matches), id.len(), src)
        };
        let (request, server_id) = request;
        // A message naming another server is that server's; the ones that
        // must name one (RFC 8415 16) are ours only when they name us.
        let for_us = match request.msg_type {
            MessageType::Request
            | MessageType::Renew
            | MessageType::Release
            | MessageType::Decline => server_id == Some(true),
            MessageType::Solicit
            | MessageType::Rebind
            | MessageType::Confirm
            | MessageType::InformationRequest => server_id != Some(false),
            _ => false,
        };
        if !for_us {
            return Err(DropReason::DhcpIgnored);
        }
        if client_id_len == 0 && request.msg_type != MessageType::InformationRequest {
            return Err(Malformed);
        }
        let address = match offer(vmi, &ctx.vrf.gateways, false) {
            Some((IpAddr::V6(a), _, _)) => Some(a),
            _ => None,
        };
        let wants_address = matches!(
            request.msg_type,
            MessageType::Solicit | MessageType::Request | MessageType::Renew | MessageType::Rebind
        );
        if wants_address && address.is_none() {
            return Err(DropReason::DhcpNoAddress);
        }
        let reply_type = match request.msg_type {
            MessageType::Solicit if !request.rapid_commit => MessageType::Advertise,
            _ => MessageType::Reply,
        };

        // The reply, over the request.
        let udp_at = l3 + ipv6::HEADER_LEN;
        let msg_at = udp_at + udp::HEADER_LEN;
        let limit = buf.len().min(l3 + MAX_REPLY_PACKET);
        if msg_at + dhcpv6::HEADER_LEN > limit {
            return Err(DropReason::NoTailroom);
        }
        let message_len = {
            let mut message = dhcpv6::Packet::new_unchecked(&mut buf[msg_at..limit]);
            message.set_msg_type(reply_type);
            message.set_transaction_id(request.transaction_id);
            let mut w = OptionWriter::new(message.options_mut());
            let written = (|| -> trunkline_wire::Result<()> {
                if client_id_len > 0 {
                    w.put(option::CLIENT_ID, &client_id[..client_id_len])?;
                }
                w.put(option::SERVER_ID, &our_duid)?;
                if reply_type == MessageType::Advertise {
                    // The highest preference: the client need not wait
                    // for other servers.
                    w.put(option::PREFERENCE, &[255])?;
                }
                if request.msg_type == MessageType::Solicit && request.rapid_commit {
                    w.put(option::RAPID_COMMIT, &[])?;
                }
                match (request.msg_type, address, request.ia_na) {
                    (_, Some(address), Some(iaid)) if wants_address => {
                        ia_na(&mut w, server, iaid, address)?;
                    }
                    (MessageType::Confirm, Some(_), _) => {
                        w.status(status::SUCCESS, b"")?;
                    }
                    (MessageType::Confirm, None, _) => {
                        w.status(status::NOT_ON_LINK, b"no IPv6 address for this instance")?;
                    }
                    (MessageType::Release | MessageType::Decline, _, _) => {
                        w.status(status::SUCCESS, b"")?;
                    }
                    _ => {}
                }
                if !server.dns6.is_empty() {
                    let open = w.open(option::DNS_SERVERS)?;
                    for dns in server.dns6.iter() {
                        w.bytes(&dns.octets())?;
                    }
                    w.close(open)?;
                }
                if !server.domain_wire.is_empty() {
                    w.put(option::DOMAIN_LIST, &server.domain_wire)?;
                }
                Ok(())
            })();
            written.map_err(|_| DropReason::NoTailroom)?;
            dhcpv6::HEADER_LEN + w.len()
        };
        let udp_end = msg_at + message_len;
        let gateway = self.tables.gateway_link_local;
        udp::Repr {
            src_port: dhcpv6::SERVER_PORT,
            dst_port: dhcpv6::CLIENT_PORT,
            payload_len: message_len,
        }
        .emit(&mut udp::Packet::new_unchecked(&mut buf[udp_at..udp_end]));
        udp::Packet::new_unchecked(&mut buf[udp_at..udp_end]).fill_checksum_v6(&gateway, &client);
        ipv6::Repr {
            src_addr: gateway,
            dst_addr: client,
            next_header: IpProtocol::Udp,
            payload_len: udp::HEADER_LEN + message_len,
            hop_limit: REPLY_HOP_LIMIT,
        }
        .emit(&mut ipv6::Packet::new_unchecked(&mut buf[l3..udp_at]));
        self.reply(ctx, l2.src, buf, offset, udp_end - offset)
    }
}

/// An IA_NA holding `address` for the lease.
fn ia_na(
    w: &mut OptionWriter<'_>,
    server: &DhcpServer,
    iaid: u32,
    address: Ipv6Addr,
) -> trunkline_wire::Result<()> {
    let ia = w.open(option::IA_NA)?;
    w.bytes(&iaid.to_be_bytes())?;
    w.bytes(&server.renewal_secs().to_be_bytes())?;
    w.bytes(&server.rebinding_secs().to_be_bytes())?;
    let addr = w.open(option::IAADDR)?;
    w.bytes(&address.octets())?;
    w.bytes(&server.lease_secs.to_be_bytes())?;
    w.bytes(&server.lease_secs.to_be_bytes())?;
    w.close(addr)?;
    w.close(ia)
}
