//! Port security: a frame from a remote instance must come from the VMI's
//! MAC (or an allowed address pair's) and carry one of its addresses (or an
//! address inside an allowed pair's prefix), as the original's anti-spoofing
//! checks do. An instance without an address yet may still ask for one:
//! its DHCP client messages are let through, to the DHCP stage only.

use core::net::IpAddr;

use trunkline_wire::ethernet::EtherType;
use trunkline_wire::{arp, ipv4, ipv6};

use super::L2Header;
use super::dhcp::client_message;
use super::neighbour::nd_message;
use crate::tables::Vmi;
use crate::verdict::DropReason;

/// What port security let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Checked {
    /// The frame's sources are the VMI's.
    Owned,
    /// A DHCP client message from an address the instance does not hold
    /// yet (0.0.0.0, or its IPv6 link-local address): only the DHCP stage
    /// (or, without a server, bridging) may take it.
    DhcpClient,
}

/// Checks the source of a frame from `vmi`. ARP probes (sender 0.0.0.0) and
/// IPv6 neighbour discovery from link-local or unspecified sources are let
/// through to the ARP/ND handling, DHCP client messages from 0.0.0.0 (or an
/// IPv6 link-local address) to the DHCP stage.
#[inline]
pub(super) fn check(vmi: &Vmi, l2: &L2Header, l3: &[u8]) -> Result<Checked, DropReason> {
    if !vmi.mac_allowed(l2.src) {
        return Err(DropReason::SourceMacSpoofed);
    }
    let source = match l2.ethertype {
        EtherType::Arp => {
            let packet = arp::Packet::new_checked(l3).map_err(|_| DropReason::MalformedArp)?;
            let repr = arp::Repr::parse(&packet).map_err(|_| DropReason::MalformedArp)?;
            if repr.source_hardware_addr != l2.src {
                return Err(DropReason::SourceMacSpoofed);
            }
            let sender = repr.source_protocol_addr;
            (!sender.is_unspecified()).then_some(IpAddr::V4(sender))
        }
        EtherType::Ipv4 => {
            let packet = ipv4::Packet::new_checked(l3).map_err(|_| DropReason::MalformedIpv4)?;
            let src = packet.src_addr();
            if src.is_unspecified() && client_message(l2.ethertype, l3).is_some() {
                return Ok(Checked::DhcpClient);
            }
            Some(IpAddr::V4(src))
        }
        EtherType::Ipv6 => {
            let packet = ipv6::Packet::new_checked(l3).map_err(|_| DropReason::MalformedIpv6)?;
            let src = packet.src_addr();
            let local = src.is_unspecified() || ipv6::is_link_local(&src);
            if local && nd_message(l3)?.is_some() {
                None
            } else if ipv6::is_link_local(&src) && client_message(l2.ethertype, l3).is_some() {
                return Ok(Checked::DhcpClient);
            } else {
                Some(IpAddr::V6(src))
            }
        }
        _ => None,
    };
    match source {
        Some(ip) if !vmi.source_allowed(l2.src, ip) => Err(DropReason::SourceIpSpoofed),
        _ => Ok(Checked::Owned),
    }
}
