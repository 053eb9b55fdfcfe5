//! The compiled north-south tables: how packets leave the overlay without
//! a tunnel, and which packets of the fabric come back into it.
//!
//! ```text
//!  out (a VRF misses, destination outside the network's subnets):
//!     SNAT / IP fabric  -> routes (the host's, out of the fabric port) -> next hop
//!                          -> neighbours (its MAC, resolved by the host thread)
//!  in (the fabric port, not a tunnel packet):
//!     to the underlay address, a port in snat_ports -> the flow table (SNAT's return)
//!     to an IP fabric prefix                         -> that network's VRF
//! ```

use core::fmt::Write as _;
use core::net::IpAddr;
use std::sync::Arc;

use crate::config::IpPrefix;
use crate::lpm::Lpm;
use crate::neighbours::NeighbourCache;

/// Where a route of the fabric sends a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Via {
    /// The destination is on the fabric's link: it is its own next hop.
    Direct,
    /// Through this router.
    Gateway(IpAddr),
}

/// The north-south part of the tables.
#[derive(Debug)]
pub(crate) struct NorthSouth {
    /// The ports (and ICMP identifiers) SNAT translates to.
    pub(crate) snat_ports: (u16, u16),
    /// How many VRFs leave by SNAT.
    pub(crate) snat_networks: usize,
    /// The subnets of networks with IP fabric forwarding, sorted.
    pub(crate) ip_fabric_prefixes: Vec<IpPrefix>,
    /// Those subnets to their VRF (position).
    pub(crate) fabric_v4: Lpm<u32, usize>,
    pub(crate) fabric_v6: Lpm<u128, usize>,
    /// The host's routes out of the fabric port.
    pub(crate) routes_v4: Lpm<u32, Via>,
    pub(crate) routes_v6: Lpm<u128, Via>,
    /// The next hops' MACs (a runtime cell carried across compilations).
    pub(crate) neighbours: Arc<NeighbourCache>,
}

impl NorthSouth {
    /// The VRF (position) whose IP fabric subnets hold `ip`.
    #[inline]
    pub(crate) fn ip_fabric_vrf(&self, ip: IpAddr) -> Option<usize> {
        match ip {
            IpAddr::V4(a) => self.fabric_v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.fabric_v6.lookup(u128::from(a)),
        }
    }

    /// The next hop on the fabric toward `dst`, by the host's routes.
    #[inline]
    pub(crate) fn next_hop(&self, dst: IpAddr) -> Option<IpAddr> {
        let via = match dst {
            IpAddr::V4(a) => self.routes_v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.routes_v6.lookup(u128::from(a)),
        }?;
        Some(match via {
            Via::Direct => dst,
            Via::Gateway(gateway) => gateway,
        })
    }

    /// Whether `port` is one SNAT translates to.
    #[inline]
    pub(crate) fn in_snat_range(&self, port: u16) -> bool {
        (self.snat_ports.0..=self.snat_ports.1).contains(&port)
    }

    /// Lines for the tables' dump (nothing when north-south is unused).
    pub(crate) fn dump(&self, out: &mut String) {
        if self.snat_networks > 0 {
            let (lo, hi) = self.snat_ports;
            let _ = writeln!(out, "snat ports {lo}-{hi}");
        }
        for prefix in &self.ip_fabric_prefixes {
            let _ = writeln!(out, "ip fabric {prefix}");
        }
        let mut routes: Vec<String> =
            self.routes_v4
                .entries()
                .into_iter()
                .map(|(a, len, via)| (IpAddr::from(core::net::Ipv4Addr::from(a)), len, via))
                .chain(
                    self.routes_v6.entries().into_iter().map(|(a, len, via)| {
                        (IpAddr::from(core::net::Ipv6Addr::from(a)), len, via)
                    }),
                )
                .map(|(addr, len, via)| match via {
                    Via::Direct => format!("fabric route {addr}/{len} direct"),
                    Via::Gateway(g) => format!("fabric route {addr}/{len} via {g}"),
                })
                .collect();
        routes.sort();
        for route in routes {
            let _ = writeln!(out, "{route}");
        }
    }
}
