//! The host side of virtual gateways: each VirtualGateway of this node is a
//! persistent tap interface in the node's network namespace, with a route
//! per subnet through it, and IP forwarding on.
//!
//! ```text
//!  host routing table:  192.168.1.0/24 dev vgw proto 200   (ours)
//!        |   ^
//!        v   |  tap "vgw" (alias trunkline:vgw:<VirtualGateway>)
//!  forwarding thread: host port of the network's VRF
//! ```
//!
//! It also reads what the overlay needs from the host: the fabric
//! interface's MAC and MTU, and the MAC of the underlay next hop toward each
//! tunnel peer (the host's route to the peer, then its neighbour table,
//! asking the kernel to resolve an entry it lacks).
//!
//! What is ours is marked on the host itself, so a restarted agent knows it
//! without any local state: links carry the alias `trunkline:vgw:<name>`,
//! routes the protocol number [`ROUTE_PROTOCOL`]. The agent adopts marked
//! links that are still declared, deletes marked links that are not, and
//! never touches a link or route without its mark.

use std::collections::BTreeSet;
use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use trunkline_pipeline::config::{FabricRouteConfig, IpPrefix};

/// Route protocol number of our routes (`ip route ... proto 200`); not one
/// of the numbers iproute2 assigns.
pub const ROUTE_PROTOCOL: u8 = 200;
/// Alias prefix of our links.
pub const ALIAS_PREFIX: &str = "trunkline:vgw:";

/// One virtual gateway on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VgwSpec {
    /// The VirtualGateway's name.
    pub name: String,
    /// The host interface.
    pub interface: String,
    /// The host interface's MAC (derived from its name, stable).
    pub mac: [u8; 6],
    /// Subnets routed from the host into it.
    pub subnets: Vec<IpPrefix>,
}

/// The MAC of a virtual gateway's host interface: locally administered,
/// derived from the interface name so that it is the same after a restart.
pub fn interface_mac(interface: &str) -> [u8; 6] {
    // FNV-1a: stable across builds and platforms.
    let hash = interface.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    let b = hash.to_be_bytes();
    [0x02, 0x5e, b[0], b[1], b[2], b[3]]
}

/// A link's state: up, or down with the reason.
pub type LinkState = Result<(), String>;

/// What the fast path needs to know about the fabric interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FabricFacts {
    /// Its MAC: the outer source MAC of tunnel packets.
    pub mac: [u8; 6],
    /// Its MTU: the largest outer IP packet.
    pub mtu: u32,
}

/// Netlink access to the node's network namespace.
pub struct HostNetwork {
    runtime: tokio::runtime::Runtime,
    handle: Handle,
}

fn alias(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfAlias(alias) => Some(alias.as_str()),
        _ => None,
    })
}

fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.as_str()),
        _ => None,
    })
}

impl HostNetwork {
    /// Opens a netlink connection in the calling thread's network namespace.
    pub fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(connection);
            Ok::<_, std::io::Error>(handle)
        })?;
        Ok(Self { runtime, handle })
    }

    async fn links(&self) -> Result<Vec<LinkMessage>, rtnetlink::Error> {
        self.handle.link().get().execute().try_collect().await
    }

    /// Deletes our links whose interface is not in `wanted`; returns their
    /// names.
    pub fn remove_undeclared(&self, wanted: &[VgwSpec]) -> Result<Vec<String>, String> {
        let keep: BTreeSet<&str> = wanted.iter().map(|v| v.interface.as_str()).collect();
        self.runtime.block_on(async {
            let mut removed = Vec::new();
            for link in self.links().await.map_err(|e| e.to_string())? {
                let ours = alias(&link).is_some_and(|a| a.starts_with(ALIAS_PREFIX));
                let name = link_name(&link).unwrap_or_default().to_owned();
                if ours && !keep.contains(name.as_str()) {
                    self.handle
                        .link()
                        .del(link.header.index)
                        .execute()
                        .await
                        .map_err(|e| format!("deleting {name}: {e}"))?;
                    removed.push(name);
                }
            }
            Ok(removed)
        })
    }

    /// The link state of each of `interfaces` that exists: `Up`, or `Down`
    /// with the kernel's operational state (a veth whose peer is down, a
    /// NIC without carrier).
    pub fn link_states(&self, interfaces: &[&str]) -> Result<Vec<(String, LinkState)>, String> {
        use rtnetlink::packet_route::link::State;
        self.runtime.block_on(async {
            let links = self.links().await.map_err(|e| e.to_string())?;
            Ok(links
                .iter()
                .filter_map(|l| {
                    let name = link_name(l)?;
                    if !interfaces.contains(&name) {
                        return None;
                    }
                    let state = l.attributes.iter().find_map(|a| match a {
                        LinkAttribute::OperState(s) => Some(*s),
                        _ => None,
                    });
                    let result = match state {
                        // Unknown: drivers that do not report carrier (tap, dummy) are usable.
                        Some(State::Up) | Some(State::Unknown) | None => Ok(()),
                        Some(other) => Err(format!("link is {other:?}")),
                    };
                    Some((name.to_owned(), result))
                })
                .collect())
        })
    }

    /// Whether an interface named `interface` exists without our mark (then
    /// it is not ours to take).
    pub fn foreign(&self, interface: &str) -> Result<bool, String> {
        self.runtime.block_on(async {
            let links = self.links().await.map_err(|e| e.to_string())?;
            Ok(links.iter().any(|l| {
                link_name(l) == Some(interface)
                    && !alias(l).is_some_and(|a| a.starts_with(ALIAS_PREFIX))
            }))
        })
    }

    /// Marks, addresses and raises the (open) tap of `spec`, and makes its
    /// routes exactly the subnets: missing ones added, ours that are no
    /// longer wanted removed.
    pub fn configure(&self, spec: &VgwSpec) -> Result<(), String> {
        self.runtime.block_on(async {
            let links = self.links().await.map_err(|e| e.to_string())?;
            let link = links
                .iter()
                .find(|l| link_name(l) == Some(spec.interface.as_str()))
                .ok_or_else(|| {
                    format!("interface {} not found after opening it", spec.interface)
                })?;
            let index = link.header.index;
            let message = LinkUnspec::new_with_index(index)
                .address(spec.mac.to_vec())
                .append_extra_attribute(LinkAttribute::IfAlias(format!(
                    "{ALIAS_PREFIX}{}",
                    spec.name
                )))
                .up()
                .build();
            self.handle
                .link()
                .set(message)
                .execute()
                .await
                .map_err(|e| format!("setting up {}: {e}", spec.interface))?;

            let present = self.our_routes(index).await.map_err(|e| e.to_string())?;
            let wanted: BTreeSet<IpPrefix> = spec.subnets.iter().copied().collect();
            for prefix in wanted.iter().filter(|p| !present.contains(p)) {
                let route = route_message(prefix, index);
                self.handle
                    .route()
                    .add(route)
                    .execute()
                    .await
                    .map_err(|e| format!("route {prefix} dev {}: {e}", spec.interface))?;
            }
            for prefix in present.iter().filter(|p| !wanted.contains(p)) {
                let route = route_message(prefix, index);
                self.handle
                    .route()
                    .del(route)
                    .execute()
                    .await
                    .map_err(|e| format!("removing route {prefix}: {e}"))?;
            }
            Ok(())
        })
    }

    /// The MAC and MTU of `interface`, if it exists.
    pub fn fabric_facts(&self, interface: &str) -> Result<Option<FabricFacts>, String> {
        self.runtime.block_on(async {
            let links = self.links().await.map_err(|e| e.to_string())?;
            Ok(links
                .iter()
                .find(|l| link_name(l) == Some(interface))
                .and_then(|l| {
                    let mac = l.attributes.iter().find_map(|a| match a {
                        LinkAttribute::Address(a) if a.len() == 6 => {
                            let mut mac = [0u8; 6];
                            mac.copy_from_slice(a);
                            Some(mac)
                        }
                        _ => None,
                    })?;
                    let mtu = l.attributes.iter().find_map(|a| match a {
                        LinkAttribute::Mtu(m) => Some(*m),
                        _ => None,
                    })?;
                    Some(FabricFacts { mac, mtu })
                }))
        })
    }

    /// The MAC of the underlay next hop toward `peer`: the host's route to
    /// it gives the gateway (or the peer itself, on-link) and the interface;
    /// the neighbour table gives the MAC. When the table has no usable entry
    /// the kernel is asked to resolve one (`NTF_USE`, as Cilium does) and
    /// `None` is returned: a later call finds it.
    pub fn next_hop_mac(&self, peer: IpAddr) -> Result<Option<[u8; 6]>, String> {
        use rtnetlink::packet_route::neighbour::{
            NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourState,
        };
        use rtnetlink::packet_route::route::RouteAddress;
        self.runtime.block_on(async {
            let query = match peer {
                IpAddr::V4(a) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                    .destination_prefix(a, 32)
                    .build(),
                IpAddr::V6(a) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                    .destination_prefix(a, 128)
                    .build(),
            };
            let routes: Vec<RouteMessage> = self
                .handle
                .route()
                .get(query)
                .execute()
                .try_collect()
                .await
                .map_err(|e| format!("no route to {peer}: {e}"))?;
            let route = routes
                .first()
                .ok_or_else(|| format!("no route to {peer}"))?;
            let oif = route
                .attributes
                .iter()
                .find_map(|a| match a {
                    RouteAttribute::Oif(i) => Some(*i),
                    _ => None,
                })
                .ok_or_else(|| format!("the route to {peer} has no interface"))?;
            let gateway = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(IpAddr::V4(*g)),
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => Some(IpAddr::V6(*g)),
                _ => None,
            });
            let next_hop = gateway.unwrap_or(peer);
            let neighbours: Vec<_> = self
                .handle
                .neighbours()
                .get()
                .set_address_family(if next_hop.is_ipv4() {
                    rtnetlink::packet_route::AddressFamily::Inet
                } else {
                    rtnetlink::packet_route::AddressFamily::Inet6
                })
                .execute()
                .try_collect()
                .await
                .map_err(|e| format!("reading the neighbour table: {e}"))?;
            let usable = |state: NeighbourState| {
                matches!(
                    state,
                    NeighbourState::Reachable
                        | NeighbourState::Stale
                        | NeighbourState::Delay
                        | NeighbourState::Probe
                        | NeighbourState::Permanent
                        | NeighbourState::Noarp
                )
            };
            let found = neighbours.iter().find_map(|n| {
                if n.header.ifindex != oif || !usable(n.header.state) {
                    return None;
                }
                let destination = n.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                        Some(IpAddr::V4(*a))
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                        Some(IpAddr::V6(*a))
                    }
                    _ => None,
                })?;
                if destination != next_hop {
                    return None;
                }
                n.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                        let mut mac = [0u8; 6];
                        mac.copy_from_slice(l);
                        Some(mac)
                    }
                    _ => None,
                })
            });
            if found.is_none() {
                // Ask the kernel to resolve it (ARP or ND on the fabric).
                let _ = self
                    .handle
                    .neighbours()
                    .add(oif, next_hop)
                    .state(NeighbourState::None)
                    .flags(NeighbourFlags::Use)
                    .replace()
                    .execute()
                    .await;
            }
            Ok(found)
        })
    }

    /// The host's routes out of `interface` in the main table (both
    /// families): where packets leaving the overlay untunneled go next.
    /// Multipath routes are left out (the first hop is not knowable here).
    pub fn fabric_routes(&self, interface: &str) -> Result<Vec<FabricRouteConfig>, String> {
        use rtnetlink::packet_route::route::{RouteAddress, RouteType};
        /// The kernel's main routing table.
        const MAIN_TABLE: u8 = 254;
        self.runtime.block_on(async {
            let links = self.links().await.map_err(|e| e.to_string())?;
            let Some(index) = links
                .iter()
                .find(|l| link_name(l) == Some(interface))
                .map(|l| l.header.index)
            else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for v6 in [false, true] {
                let query = if v6 {
                    RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
                } else {
                    RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
                };
                let routes: Vec<RouteMessage> = self
                    .handle
                    .route()
                    .get(query)
                    .execute()
                    .try_collect()
                    .await
                    .map_err(|e| format!("listing routes: {e}"))?;
                for route in routes {
                    let table = route.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Table(t) => Some(*t),
                        _ => None,
                    });
                    let table = table.unwrap_or(u32::from(route.header.table));
                    if table != u32::from(MAIN_TABLE) || route.header.kind != RouteType::Unicast {
                        continue;
                    }
                    let oif = route.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Oif(i) => Some(*i),
                        _ => None,
                    });
                    if oif != Some(index) {
                        continue;
                    }
                    let address = |a: &RouteAddress| match a {
                        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
                        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
                        _ => None,
                    };
                    let destination = route.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Destination(d) => address(d),
                        _ => None,
                    });
                    let via = route.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Gateway(g) => address(g),
                        _ => None,
                    });
                    let unspecified = if v6 {
                        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                    } else {
                        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
                    };
                    if let Ok(prefix) = IpPrefix::new(
                        destination.unwrap_or(unspecified),
                        route.header.destination_prefix_length,
                    ) {
                        out.push(FabricRouteConfig { prefix, via });
                    }
                }
            }
            out.sort();
            out.dedup_by(|a, b| a.prefix == b.prefix);
            Ok(out)
        })
    }

    async fn our_routes(&self, index: u32) -> Result<BTreeSet<IpPrefix>, rtnetlink::Error> {
        let mut out = BTreeSet::new();
        for family in [false, true] {
            let query = if family {
                RouteMessageBuilder::<std::net::Ipv6Addr>::new().build()
            } else {
                RouteMessageBuilder::<std::net::Ipv4Addr>::new().build()
            };
            let routes: Vec<RouteMessage> = self
                .handle
                .route()
                .get(query)
                .execute()
                .try_collect()
                .await?;
            for route in routes {
                if route.header.protocol != RouteProtocol::Other(ROUTE_PROTOCOL) {
                    continue;
                }
                let oif = route.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(i) => Some(*i),
                    _ => None,
                });
                if oif != Some(index) {
                    continue;
                }
                let destination = route.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Destination(d) => match d {
                        rtnetlink::packet_route::route::RouteAddress::Inet(a) => {
                            Some(IpAddr::V4(*a))
                        }
                        rtnetlink::packet_route::route::RouteAddress::Inet6(a) => {
                            Some(IpAddr::V6(*a))
                        }
                        _ => None,
                    },
                    _ => None,
                });
                let unspecified = if family {
                    IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
                };
                if let Ok(prefix) = IpPrefix::new(
                    destination.unwrap_or(unspecified),
                    route.header.destination_prefix_length,
                ) {
                    out.insert(prefix);
                }
            }
        }
        Ok(out)
    }
}

fn route_message(prefix: &IpPrefix, index: u32) -> RouteMessage {
    let protocol = RouteProtocol::Other(ROUTE_PROTOCOL);
    match prefix.addr() {
        IpAddr::V4(a) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
            .destination_prefix(a, prefix.prefix_len())
            .output_interface(index)
            .protocol(protocol)
            .build(),
        IpAddr::V6(a) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
            .destination_prefix(a, prefix.prefix_len())
            .output_interface(index)
            .protocol(protocol)
            .build(),
    }
}

/// Turns IP forwarding on in the node's namespace for the families in use
/// (never off: other things on the host may rely on it). A setting already
/// on is left untouched: in a container `/proc/sys` may be read-only, and a
/// node whose forwarding is on already needs no write.
pub fn enable_forwarding(v4: bool, v6: bool) -> std::io::Result<()> {
    let ensure = |path: &str| -> std::io::Result<()> {
        if std::fs::read_to_string(path)?.trim() == "1" {
            return Ok(());
        }
        std::fs::write(path, "1").map_err(|e| std::io::Error::new(e.kind(), format!("{path}: {e}")))
    };
    if v4 {
        ensure("/proc/sys/net/ipv4/ip_forward")?;
    }
    if v6 {
        ensure("/proc/sys/net/ipv6/conf/all/forwarding")?;
    }
    Ok(())
}

/// Keeps the host's own sockets off the SNAT ports: when the range
/// overlaps `net.ipv4.ip_local_port_range` (the kernel's ephemeral ports,
/// shared by IPv6), it is added to `net.ipv4.ip_local_reserved_ports`.
/// Returns what was done, for the log; a range outside the ephemeral one
/// (the default, 61000-65535) needs nothing.
pub fn reserve_snat_ports(lo: u16, hi: u16) -> std::io::Result<Option<String>> {
    const RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";
    const RESERVED: &str = "/proc/sys/net/ipv4/ip_local_reserved_ports";
    let range = std::fs::read_to_string(RANGE)?;
    let mut bounds = range
        .split_whitespace()
        .filter_map(|n| n.parse::<u16>().ok());
    let (Some(first), Some(last)) = (bounds.next(), bounds.next()) else {
        return Ok(None);
    };
    if hi < first || lo > last {
        return Ok(None);
    }
    let reserved = std::fs::read_to_string(RESERVED)?;
    let wanted = if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    };
    if reserved.trim().split(',').any(|r| r.trim() == wanted) {
        return Ok(None);
    }
    let value = match reserved.trim() {
        "" => wanted.clone(),
        current => format!("{current},{wanted}"),
    };
    std::fs::write(RESERVED, &value)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{RESERVED}: {e}")))?;
    Ok(Some(format!(
        "SNAT ports {wanted} overlap the ephemeral range {first}-{last}: reserved them ({RESERVED} = {value})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_macs_are_stable_unicast_and_local() {
        let mac = interface_mac("vgw");
        assert_eq!(mac, interface_mac("vgw"));
        assert_ne!(mac, interface_mac("vgw1"));
        assert_eq!(mac[0] & 0x01, 0, "unicast");
        assert_eq!(mac[0] & 0x02, 0x02, "locally administered");
    }
}
