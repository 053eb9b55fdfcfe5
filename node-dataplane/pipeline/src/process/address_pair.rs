//! Allowed address pairs that move: an address two instances share (a VRRP
//! virtual IP kept by keepalived, say) is routed to whichever of them last
//! sent from it. The pipeline learns that from the frames themselves (a
//! gratuitous ARP of the new master, or any packet with the address as
//! source) into the pair's holder cell in the tables: no rebuild, effective
//! for the very next packet.
//!
//! ```text
//!  VMI b (pair 10.0.0.100) --GARP / IP from 10.0.0.100--> classified: port security ok
//!      -> tables.pairs[10.0.0.100].holder = b      (relaxed atomic store, if it changed)
//!  anyone --> 10.0.0.100: route NextHop::Pair -> holder b -> out of b's logical interface
//! ```
//!
//! Only local VMIs hold pair addresses this way: a pair declared by a VMI
//! on another node is not routed here (see the README's limitations).

use core::net::IpAddr;

use trunkline_wire::ethernet::EtherType;
use trunkline_wire::{arp, ipv4, ipv6};

use super::Pipeline;
use crate::tables::{Vmi, VmiId};

/// The address a frame says it comes from: an ARP sender, an IPv4 or IPv6
/// source (not link-local).
fn sender(ethertype: EtherType, l3: &[u8]) -> Option<IpAddr> {
    match ethertype {
        EtherType::Arp => {
            let packet = arp::Packet::new_checked(l3).ok()?;
            let repr = arp::Repr::parse(&packet).ok()?;
            Some(IpAddr::V4(repr.source_protocol_addr))
        }
        EtherType::Ipv4 => Some(IpAddr::V4(ipv4::Packet::new_checked(l3).ok()?.src_addr())),
        EtherType::Ipv6 => {
            let src = ipv6::Packet::new_checked(l3).ok()?.src_addr();
            (!ipv6::is_link_local(&src)).then_some(IpAddr::V6(src))
        }
        _ => None,
    }
}

impl Pipeline<'_> {
    /// When the frame from `vmi` (which passed port security) comes from
    /// one of its pair addresses, make it that address's holder.
    #[inline]
    pub(super) fn learn_address_pair(&self, id: VmiId, vmi: &Vmi, ethertype: EtherType, l3: &[u8]) {
        if vmi.pair_routes.is_empty() {
            return;
        }
        let Some(ip) = sender(ethertype, l3) else {
            return;
        };
        if let Some((_, pair)) = vmi.pair_routes.iter().find(|(p, _)| p.addr() == ip) {
            self.tables.pairs[pair.0 as usize].learn(id);
        }
    }
}
