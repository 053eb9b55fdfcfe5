//! Compilation of what leaves the overlay untunneled (SNAT, IP fabric
//! forwarding) and of the peers that route for a network (DC gateways).

use core::hash::Hasher;
use core::net::IpAddr;

use trunkline_wire::mpls::{FIRST_UNRESERVED_LABEL, MAX_LABEL};

use super::Compiler;
use crate::config::{Encapsulation, FabricExit, IpPrefix};
use crate::hash::FxHasher;
use crate::lpm::Lpm;
use crate::tables::{NextHop, NorthSouth, ObjectRef, RejectReason, Via};

impl Compiler<'_> {
    /// Each network's routed peers (DC gateways): peers that accept MPLS
    /// over UDP.
    pub(super) fn routed_peers(&mut self) {
        let mut networks: Vec<_> = self.config.networks.iter().collect();
        networks.sort();
        for network in networks {
            let Some(&vrf) = self.network_keys.get(&network.key) else {
                continue;
            };
            let mut keys: Vec<&String> = network.routed_peers.iter().collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let object = || ObjectRef::Network(network.key.clone());
                let Some(&peer) = self.peer_keys.get(key) else {
                    self.reject(object(), RejectReason::UnknownPeer(key.clone()));
                    continue;
                };
                if !self.peer_encaps[peer.0 as usize].contains(&Encapsulation::MplsOverUdp) {
                    let reason = RejectReason::NoEncapsulation {
                        peer: key.clone(),
                        why: "a routed peer needs MPLS over UDP",
                    };
                    self.reject(object(), reason);
                    continue;
                }
                self.vrfs[vrf].routed_peers.push(peer);
            }
            self.vrfs[vrf].routed_peers.sort();
        }
    }

    /// The next hop of a labelled route toward routed peer `key`.
    pub(super) fn tunnel_next_hop(
        &self,
        vrf: usize,
        key: &str,
        label: u32,
    ) -> Result<NextHop, RejectReason> {
        let peer = self
            .peer_keys
            .get(key)
            .copied()
            .filter(|p| self.vrfs[vrf].routed_peers.contains(p))
            .ok_or_else(|| RejectReason::NotARoutedPeer(key.to_owned()))?;
        if !(FIRST_UNRESERVED_LABEL..=MAX_LABEL).contains(&label) {
            return Err(RejectReason::LabelUnusable {
                label,
                why: format!(
                    "outside {FIRST_UNRESERVED_LABEL}..={MAX_LABEL} (0 to 15 are reserved)"
                ),
            });
        }
        Ok(NextHop::Tunnel { peer, label })
    }

    /// The north-south tables; networks whose exit cannot work lose it
    /// (rejected with the reason).
    pub(super) fn north_south(&mut self) -> NorthSouth {
        let ports = self.config.north_south.snat_ports;
        let mut ns = NorthSouth {
            snat_ports: ports,
            snat_networks: 0,
            ip_fabric_prefixes: Vec::new(),
            fabric_v4: Lpm::default(),
            fabric_v6: Lpm::default(),
            routes_v4: Lpm::default(),
            routes_v6: Lpm::default(),
            neighbours: self
                .previous
                .map(|p| p.north_south.neighbours.clone())
                .unwrap_or_default(),
        };
        let underlay = self.underlay.map(|u| u.addr);
        for index in 0..self.vrfs.len() {
            let exit = self.vrfs[index].exit;
            let network = self.vrfs[index].network.clone();
            let object = || ObjectRef::Network(network.clone());
            let problem = match (exit, underlay) {
                (FabricExit::None, _) => continue,
                (_, None) => {
                    Some("the node has no underlay (fabric port and underlay address)".to_owned())
                }
                (FabricExit::Snat, Some(_)) if ports.0 > ports.1 => {
                    self.reject(
                        ObjectRef::NorthSouth,
                        RejectReason::SnatPortsEmpty(ports.0, ports.1),
                    );
                    Some(format!(
                        "the SNAT port range {}-{} is empty",
                        ports.0, ports.1
                    ))
                }
                (FabricExit::Snat, Some(_)) => None,
                (FabricExit::IpFabric, Some(_)) => {
                    let mine: Vec<IpPrefix> =
                        self.vrfs[index].gateways.iter().map(|(p, _)| *p).collect();
                    mine.iter().find_map(|p| {
                        ns.ip_fabric_prefixes
                            .iter()
                            .find(|q| q.overlaps(p))
                            .map(|q| {
                                let by = ns
                                    .ip_fabric_vrf(q.addr())
                                    .map(|v| self.vrfs[v].network.clone())
                                    .unwrap_or_default();
                                format!("subnet {p} overlaps {q} of network {by}, which also uses IP fabric forwarding")
                            })
                    })
                }
            };
            if let Some(why) = problem {
                self.reject(object(), RejectReason::FabricExitUnusable(why));
                self.vrfs[index].exit = FabricExit::None;
                continue;
            }
            let mut hasher = FxHasher::default();
            hasher.write(network.as_bytes());
            hasher.write_u8(exit as u8);
            if let Some(addr) = underlay {
                match addr {
                    IpAddr::V4(a) => hasher.write(&a.octets()),
                    IpAddr::V6(a) => hasher.write(&a.octets()),
                }
            }
            hasher.write_u16(ports.0);
            hasher.write_u16(ports.1);
            // The subnets decide what leaves at all (a destination inside
            // them never does): a flow decided under others is stale.
            for (prefix, _) in self.vrfs[index].gateways.iter() {
                hasher.write(prefix.to_string().as_bytes());
            }
            let hash = hasher.finish();
            self.vrfs[index].generation = (hash ^ (hash >> 32)) as u32;
            match exit {
                FabricExit::Snat => ns.snat_networks += 1,
                FabricExit::IpFabric => {
                    let subnets: Vec<IpPrefix> =
                        self.vrfs[index].gateways.iter().map(|(p, _)| *p).collect();
                    for prefix in subnets {
                        let _ = match prefix.addr() {
                            IpAddr::V4(a) => {
                                ns.fabric_v4
                                    .insert(u32::from(a), prefix.prefix_len(), index)
                            }
                            IpAddr::V6(a) => {
                                ns.fabric_v6
                                    .insert(u128::from(a), prefix.prefix_len(), index)
                            }
                        };
                        ns.ip_fabric_prefixes.push(prefix);
                    }
                }
                FabricExit::None => {}
            }
        }
        ns.ip_fabric_prefixes.sort();
        let mut routes: Vec<_> = self.config.north_south.fabric_routes.iter().collect();
        routes.sort();
        for route in routes {
            let via = match route.via {
                None => Via::Direct,
                Some(gateway) => Via::Gateway(gateway),
            };
            // The first route of a prefix (in sort order) is kept: the host
            // had one best route for it anyway.
            let _ = match route.prefix.addr() {
                IpAddr::V4(a) => ns
                    .routes_v4
                    .insert(u32::from(a), route.prefix.prefix_len(), via),
                IpAddr::V6(a) => ns
                    .routes_v6
                    .insert(u128::from(a), route.prefix.prefix_len(), via),
            };
        }
        ns
    }
}
