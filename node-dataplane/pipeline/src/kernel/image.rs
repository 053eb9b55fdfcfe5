//! The image of compiled [`Tables`] in the XDP tier's maps: every entry the
//! program looks up, as (map, key without its generation, value bytes), and
//! the difference between two images, which is what a generation swap
//! writes.

use std::collections::BTreeMap;

use super::layout::*;
use super::slots::Slots;
use crate::config::{FabricExit, PortId};
use crate::tables::{BridgeEntry, Encap, LabelTarget, NO_GROUP, NextHop, PortRole, Tables};

/// The entries of the tier's maps for one set of tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    entries: BTreeMap<(TierMap, Key), Vec<u8>>,
    /// VMI slots given out by this build (their counters start at zero).
    new_vmi_slots: Vec<u32>,
}

/// One write of a generation swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// Write this value under the key.
    Put(TierMap, &'a Key, &'a [u8]),
    /// Remove the key (arrays: write zeroes, which the program reads as
    /// "no entry").
    Remove(TierMap, &'a Key),
}

fn encap(e: Encap) -> (u32, u32) {
    match e {
        Encap::Mpls(label) => (ENCAP_MPLS, label),
        Encap::Vxlan(vni) => (ENCAP_VXLAN, vni),
    }
}

/// The value of a `remotes` slot (tier.h `struct remote`): flags, peer
/// slot, MAC, and the routed and bridged encapsulations (none bridged:
/// zeroes, which the program never reads for it).
fn remote_value(
    flags: u32,
    peer: u32,
    mac: &[u8; 6],
    routed: Encap,
    bridged: Option<Encap>,
) -> Vec<u8> {
    let (rk, rv) = encap(routed);
    let (bk, bv) = bridged.map_or((0, 0), encap);
    Bytes::default()
        .u32(flags)
        .u32(peer)
        .raw(mac)
        .u16(0)
        .u32(rk)
        .u32(rv)
        .u32(bk)
        .u32(bv)
        .done()
}

/// The slot key of a connected network's VMI on another node
/// (`tables.linked`), apart from the keys of remote VMIs.
fn linked_key(key: &str) -> String {
    format!("linked:{key}")
}

impl Image {
    /// The image of `tables`. `ifindex` names the interface of each port
    /// whose frames the program handles (a port without one is left to
    /// userspace: frames toward it are handed off). `slots` keeps slots
    /// stable from one build to the next.
    pub fn build(
        tables: &Tables,
        slots: &mut Slots,
        ifindex: impl Fn(PortId) -> Option<u32>,
    ) -> Image {
        // The VMIs on other nodes of networks a network policy connects
        // (`tables.linked`) take remote slots too, under keys no remote
        // VMI of this node's networks has.
        let linked_keys: Vec<String> = tables.linked.iter().map(|l| linked_key(&l.key)).collect();
        let assigned = slots.assign(
            tables.vmis.iter().map(|v| v.key()),
            tables.vrfs.iter().map(|v| v.network.as_str()),
            tables.peers.iter().map(|p| p.key()),
            tables
                .remotes
                .iter()
                .map(|r| r.key.as_str())
                .chain(linked_keys.iter().map(String::as_str)),
        );
        let mut image = Image {
            entries: BTreeMap::new(),
            new_vmi_slots: assigned.vmis,
        };
        let vmi_slot = |i: usize| slots.vmis.get(tables.vmis[i].key());
        let vrf_slot = |i: usize| slots.vrfs.get(&tables.vrfs[i].network);
        let peer_slot = |i: usize| slots.peers.get(tables.peers[i].key());
        let remote_slot = |i: usize| slots.remotes.get(&tables.remotes[i].key);
        let linked_slot = |i: usize| slots.remotes.get(&linked_keys[i]);
        let fits = |slot: u32, max: u32| slot < max;
        let nexthop = |nh: NextHop| -> Vec<u8> {
            let (kind, id) = match nh {
                NextHop::Receive => (NH_RECEIVE, 0),
                NextHop::Vmi(id) => (NH_VMI, vmi_slot(id.index())),
                NextHop::Remote(id) => (NH_REMOTE, remote_slot(id.0 as usize)),
                NextHop::Peer(id) => (NH_PEER, peer_slot(id.0 as usize)),
                NextHop::Port(_) => (NH_PORT, 0),
                NextHop::Discard => (NH_DISCARD, 0),
                // A runtime cell the image does not carry: handed off.
                NextHop::Pair(_) => (NH_PAIR, 0),
                // A DC gateway's route (north-south): handed off.
                NextHop::Tunnel { .. } => (NH_NORTH_SOUTH, 0),
                // Into another network of this node by a network policy:
                // by the link's established flows (`route` below).
                NextHop::Leak { vmi, .. } => (NH_LINK, vmi_slot(vmi.index())),
                // Into another network through a tunnel: by the link's
                // established flows too, then as `NH_REMOTE`.
                NextHop::LeakRemote { remote, .. } => {
                    (NH_LINK_REMOTE, linked_slot(remote.0 as usize))
                }
            };
            Bytes::default().u32(kind).u32(id).done()
        };
        // A route's value (`struct route`): the next hop and, for a
        // link, the zone and generation of its flows, as the pipeline's
        // flow table keys and stamps them.
        // A link across nodes also says whether it has its reverse (the
        // receiver decides a tunnel packet from that VMI by the reverse:
        // `link_of_source`).
        let route = |nh: NextHop| -> Vec<u8> {
            let (zone, generation, flags) = match nh {
                NextHop::Leak { link, .. } => {
                    let link = &tables.links[link.0 as usize];
                    (link.zone, link.generation, 0)
                }
                NextHop::LeakRemote { link, .. } => {
                    let link = &tables.links[link.0 as usize];
                    let reverse = match link.reverse {
                        Some(_) => ROUTE_REVERSE,
                        None => 0,
                    };
                    (link.zone, link.generation, reverse)
                }
                _ => (0, 0, 0),
            };
            Bytes(nexthop(nh))
                .u32(zone)
                .u32(generation)
                .u32(flags)
                .done()
        };
        let mut put = |map: TierMap, key: Key, value: Vec<u8>| {
            debug_assert_eq!(value.len(), map.sizes().1, "{map:?}");
            image.entries.insert((map, key), value);
        };

        // Globals and the underlay.
        let mut globals = Bytes::default().raw(&tables.gateway_mac.0);
        // North-south: the SNAT range (its returns are handed off).
        let ns = &tables.north_south;
        let (snat_flag, (snat_lo, snat_hi)) = if ns.snat_networks > 0 {
            (GLOBAL_SNAT, ns.snat_ports)
        } else {
            (0, (0, 0))
        };
        match tables.underlay {
            Some(u) => {
                let (family, addr) = addr16(u.addr);
                globals = globals
                    .raw(&u.mac.0)
                    .u32(GLOBAL_UNDERLAY | snat_flag)
                    .u32(family)
                    .raw(&addr)
                    .u32(ifindex(u.port).unwrap_or(0))
                    .u32(u32::from(u.mtu))
                    .u16(snat_lo)
                    .u16(snat_hi);
            }
            None => {
                globals = globals
                    .raw(&[0; 6])
                    .u32(0)
                    .u32(0)
                    .raw(&[0; 16])
                    .u32(0)
                    .u32(0)
                    .u16(0)
                    .u16(0)
            }
        }
        put(TierMap::Globals, Key::Slot(0), globals.done());
        // North-south: the subnets of networks with IP fabric forwarding,
        // under a pseudo VRF (the fabric port hands them off).
        for (addr, len, _) in ns.fabric_v4.entries() {
            let key = Key::Route {
                vrf: FABRIC_VRF,
                addr: addr.to_be_bytes().to_vec(),
                len,
            };
            put(
                TierMap::Routes4,
                key,
                Bytes::default()
                    .u32(NH_NORTH_SOUTH)
                    .u32(0)
                    .u32(0)
                    .u32(0)
                    .u32(0)
                    .done(),
            );
        }
        for (addr, len, _) in ns.fabric_v6.entries() {
            let key = Key::Route {
                vrf: FABRIC_VRF,
                addr: addr.to_be_bytes().to_vec(),
                len,
            };
            put(
                TierMap::Routes6,
                key,
                Bytes::default()
                    .u32(NH_NORTH_SOUTH)
                    .u32(0)
                    .u32(0)
                    .u32(0)
                    .u32(0)
                    .done(),
            );
        }

        // Ports and their VLANs.
        for port in tables.ports.iter() {
            let Some(ifx) = ifindex(port.id) else {
                continue;
            };
            let role = match &port.role {
                PortRole::Gateway { vlans } => {
                    for (vlan, &id) in vlans.iter().enumerate() {
                        if id != crate::tables::NO_VMI {
                            put(
                                TierMap::Vlans,
                                Key::Hash(Bytes::default().u32(ifx).u32(vlan as u32).done()),
                                Bytes::default().u32(vmi_slot(id as usize)).done(),
                            );
                        }
                    }
                    PORT_GATEWAY
                }
                PortRole::Fabric if tables.underlay.is_some_and(|u| u.port == port.id) => {
                    PORT_FABRIC
                }
                // Another fabric port passes everything; host ports are taps.
                _ => continue,
            };
            // Gateway HA: what a member port receives depends on the
            // group's role cell, which the image does not carry.
            let flags = if port.ha_group != NO_GROUP {
                PORT_HANDOFF
            } else {
                0
            };
            put(
                TierMap::Ports,
                Key::Hash(Bytes::default().u32(ifx).done()),
                Bytes::default().u32(role).u32(flags).done(),
            );
        }

        // VMIs and their addresses.
        for (i, vmi) in tables.vmis.iter().enumerate() {
            let slot = vmi_slot(i);
            if !fits(slot, MAX_VMIS) {
                continue;
            }
            let mut flags = VMI_VALID;
            if vmi.port_security {
                flags |= VMI_PORT_SECURITY;
            }
            if vmi.pairs.len() > MAX_PAIRS {
                flags |= VMI_HANDOFF;
            }
            if !vmi.pair_routes.is_empty() {
                flags |= VMI_LEARNS;
            }
            // Gateway HA: where a multi-homed VMI is served (its path cell)
            // and whether its member port may send (the role cell) are
            // runtime cells the image does not carry; its own traffic sets
            // its `seen` cell, which only the pipeline writes.
            if tables.ha_governs_vmi(vmi) {
                flags |= VMI_HANDOFF;
            }
            // Security groups: a policed VMI's frames pass in the kernel
            // by the established flows the agent mirrors from the flow
            // table, in its zone, decided under its rules' generation.
            let (zone, generation) = match vmi.policy.as_deref() {
                Some(policy) => {
                    flags |= VMI_POLICED;
                    (policy.zone, policy.generation)
                }
                None => (0, 0),
            };
            let (egress_ifindex, egress_vlan, egress_mtu) = match vmi.egress {
                Some(e) => {
                    flags |= VMI_EGRESS;
                    let mtu = tables.port(e.port).and_then(|p| p.mtu).unwrap_or(0);
                    (ifindex(e.port).unwrap_or(0), e.vlan, u32::from(mtu))
                }
                None => (0, 0, 0),
            };
            let npairs = vmi.pairs.len().min(MAX_PAIRS);
            let mut value = Bytes::default()
                .u32(flags)
                .u32(vrf_slot(vmi.vrf))
                .raw(&vmi.mac.0)
                .u16(egress_vlan)
                .u32(egress_ifindex)
                .u32(egress_mtu)
                .u32(npairs as u32);
            for p in 0..MAX_PAIRS {
                value = match vmi.pairs.get(p).filter(|_| p < npairs) {
                    Some((prefix, mac)) => {
                        let (family, addr) = addr16(prefix.addr());
                        let learns = vmi.pair_routes.iter().any(|(route, _)| route == prefix);
                        value
                            .u8(family as u8)
                            .u8(prefix.prefix_len())
                            .u8(u8::from(learns))
                            .u8(0)
                            .raw(&mac.0)
                            .u16(0)
                            .raw(&addr)
                    }
                    None => value.raw(&[0; 28]),
                };
            }
            put(
                TierMap::Vmis,
                Key::Slot(slot),
                value.u32(zone).u32(generation).done(),
            );
            for ip in vmi.ips.iter() {
                let (family, addr) = addr16(*ip);
                put(
                    TierMap::Sources,
                    Key::Hash(Bytes::default().u32(slot).u32(family).raw(&addr).done()),
                    Bytes::default().u32(1).done(),
                );
            }
        }

        // VRFs: flags, routes, bridge entries, peers.
        for (i, vrf) in tables.vrfs.iter().enumerate() {
            let slot = vrf_slot(i);
            if !fits(slot, MAX_VRFS) {
                continue;
            }
            let mut flags = VRF_VALID;
            if vrf.routes {
                flags |= VRF_ROUTES;
            }
            if vrf.bridges {
                flags |= VRF_BRIDGES;
            }
            if vrf.flood_unknown_unicast {
                flags |= VRF_FLOOD_UNKNOWN;
            }
            if vrf.exit != FabricExit::None {
                flags |= VRF_EXIT;
            }
            if vrf.exit == FabricExit::Snat {
                flags |= VRF_SNAT;
            }
            if !vrf.routed_peers.is_empty() {
                flags |= VRF_ROUTED_PEERS;
            }
            if vrf.linked {
                flags |= VRF_LINKED;
            }
            put(
                TierMap::Vrfs,
                Key::Slot(slot),
                Bytes::default()
                    .u32(flags)
                    .u32(u32::from(vrf.mtu.unwrap_or(0)))
                    .u32(vrf.id)
                    .u32(vrf.generation)
                    .done(),
            );
            for (addr, len, nh) in vrf.v4.entries() {
                let key = Key::Route {
                    vrf: slot,
                    addr: addr.to_be_bytes().to_vec(),
                    len,
                };
                put(TierMap::Routes4, key, route(nh));
            }
            for (addr, len, nh) in vrf.v6.entries() {
                let key = Key::Route {
                    vrf: slot,
                    addr: addr.to_be_bytes().to_vec(),
                    len,
                };
                put(TierMap::Routes6, key, route(nh));
            }
            for (mac, entry) in &vrf.bridge {
                let mac = &mac.to_be_bytes()[2..];
                let nh = match *entry {
                    BridgeEntry::Vmi(id) => NextHop::Vmi(id),
                    BridgeEntry::Remote(id) => NextHop::Remote(id),
                };
                put(
                    TierMap::Bridge,
                    Key::Hash(Bytes::default().u32(slot).raw(mac).u16(0).done()),
                    nexthop(nh),
                );
            }
            for (peer, e) in &vrf.peers {
                let (kind, value) = encap(*e);
                put(
                    TierMap::VrfPeers,
                    Key::Hash(
                        Bytes::default()
                            .u32(slot)
                            .u32(peer_slot(peer.0 as usize))
                            .done(),
                    ),
                    Bytes::default().u32(kind).u32(value).done(),
                );
            }
        }

        // Remote VMIs, peers.
        for (i, remote) in tables.remotes.iter().enumerate() {
            let slot = remote_slot(i);
            if !fits(slot, MAX_REMOTES) {
                continue;
            }
            // Gateway HA: a remote VMI several nodes serve is reached
            // through whichever serves it now (its path cell).
            let flags = if remote.path.is_some() {
                REMOTE_VALID | REMOTE_HANDOFF
            } else {
                REMOTE_VALID
            };
            put(
                TierMap::Remotes,
                Key::Slot(slot),
                remote_value(
                    flags,
                    peer_slot(remote.peer.0 as usize),
                    &remote.mac.0,
                    remote.routed,
                    Some(remote.bridged),
                ),
            );
        }
        // A connected network's VMI on another node: reached as the
        // pipeline's route_through does (its routed label or its
        // network's VNI, toward its peer); never bridged to.
        for (i, linked) in tables.linked.iter().enumerate() {
            let slot = linked_slot(i);
            if !fits(slot, MAX_REMOTES) {
                continue;
            }
            put(
                TierMap::Remotes,
                Key::Slot(slot),
                remote_value(
                    REMOTE_VALID,
                    peer_slot(linked.peer.0 as usize),
                    &linked.mac.0,
                    linked.routed,
                    None,
                ),
            );
        }
        for (i, peer) in tables.peers.iter().enumerate() {
            let slot = peer_slot(i);
            let (family, addr) = addr16(peer.addr);
            put(
                TierMap::PeerAddrs,
                Key::Hash(Bytes::default().u32(family).raw(&addr).done()),
                Bytes::default().u32(slot).done(),
            );
            if !fits(slot, MAX_PEERS) {
                continue;
            }
            let (flags, next_hop) = match peer.next_hop_mac() {
                Some(mac) => (PEER_VALID | PEER_RESOLVED, mac.0),
                None => (PEER_VALID, [0; 6]),
            };
            put(
                TierMap::Peers,
                Key::Slot(slot),
                Bytes::default()
                    .u32(flags)
                    .u32(family)
                    .raw(&addr)
                    .raw(&next_hop)
                    .u16(0)
                    .done(),
            );
        }

        // Labels and VNIs.
        for (label, target) in tables.labels.iter() {
            let (kind, id) = match *target {
                LabelTarget::Vmi(id) => (LABEL_VMI, vmi_slot(id.index())),
                LabelTarget::Vrf(vrf) => (LABEL_VRF, vrf_slot(vrf)),
                // The tier hands these to userspace: they come from DC
                // gateways only, and the pipeline routes them.
                LabelTarget::RoutedVrf(vrf) => (LABEL_ROUTED_VRF, vrf_slot(vrf)),
            };
            put(
                TierMap::Labels,
                Key::Hash(Bytes::default().u32(*label).done()),
                Bytes::default().u32(kind).u32(id).done(),
            );
        }
        for (vni, vrf) in tables.vnis.iter() {
            put(
                TierMap::Vnis,
                Key::Hash(Bytes::default().u32(*vni).done()),
                Bytes::default().u32(vrf_slot(*vrf)).done(),
            );
        }
        image
    }

    /// The writes that turn a generation holding `old` (`None`: nothing)
    /// into one holding `self`: new and changed entries, then removals.
    pub fn diff<'a>(&'a self, old: Option<&'a Image>) -> Vec<Change<'a>> {
        let mut changes: Vec<Change<'a>> = self
            .entries
            .iter()
            .filter(|((map, key), value)| {
                old.and_then(|o| o.entries.get(&(*map, key.clone())))
                    .is_none_or(|v| v != *value)
            })
            .map(|((map, key), value)| Change::Put(*map, key, value))
            .collect();
        if let Some(old) = old {
            changes.extend(
                old.entries
                    .keys()
                    .filter(|k| !self.entries.contains_key(k))
                    .map(|(map, key)| Change::Remove(*map, key)),
            );
        }
        changes
    }

    /// An image that holds everything `self` holds and everything `tried`
    /// holds too, with `tried`'s values marked unknown (so that the next
    /// diff against it writes them again): what a generation may contain
    /// after writing `tried` into it failed half way.
    pub fn merge_unknown(&self, tried: &Image) -> Image {
        let mut merged = self.clone();
        for key in tried.entries.keys() {
            merged.entries.insert(key.clone(), Vec::new());
        }
        merged
    }

    /// Every entry, by map: (map, key, value).
    pub fn entries(&self) -> impl Iterator<Item = (TierMap, &Key, &[u8])> {
        self.entries
            .iter()
            .map(|((map, key), value)| (*map, key, value.as_slice()))
    }

    /// How many entries the image has.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the image is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The VMI counter slots this build gave out: zero them before the flip.
    pub fn new_vmi_slots(&self) -> &[u32] {
        &self.new_vmi_slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::tests::fixture;

    fn ifindex(port: PortId) -> Option<u32> {
        Some(100 + u32::from(port.0))
    }

    #[test]
    fn every_value_has_the_size_of_its_map() {
        let (tables, _) = Tables::compile(&fixture());
        let image = Image::build(&tables, &mut Slots::default(), ifindex);
        assert!(image.len() > 20);
        for (map, key, value) in image.entries() {
            let (key_size, value_size) = map.sizes();
            assert_eq!(value.len(), value_size, "{map:?}");
            assert_eq!(key.encode(map, 1).len(), key_size, "{map:?} {key:?}");
        }
    }

    #[test]
    fn an_unchanged_config_writes_nothing_and_a_change_writes_little() {
        let config = fixture();
        let (tables, _) = Tables::compile(&config);
        let mut slots = Slots::default();
        let first = Image::build(&tables, &mut slots, ifindex);
        assert_eq!(first.diff(Some(&first)), vec![]);
        let (again, _) = Tables::recompile(&config, &tables);
        let second = Image::build(&again, &mut slots, ifindex);
        assert!(second.new_vmi_slots().is_empty());
        assert_eq!(second.diff(Some(&first)), vec![]);
        // One VMI fewer: its entries go, nobody else's slot moves.
        let mut smaller = config.clone();
        smaller.vmis.retain(|v| v.key != "ns/vmi-d");
        let (third, _) = Tables::recompile(&smaller, &again);
        let image = Image::build(&third, &mut slots, ifindex);
        let changes = second.diff(Some(&image));
        assert!(!changes.is_empty());
        assert!(changes.len() < 10, "{changes:?}");
        assert_eq!(
            image
                .diff(Some(&second))
                .iter()
                .filter(|c| matches!(c, Change::Put(..)))
                .count(),
            0
        );
    }

    /// A route into another network of this node by a network policy is
    /// `NH_LINK` to the VMI's slot with the connection's zone and
    /// generation (the flow table's key and stamp of its flows); the same
    /// in both directions (across nodes, `NH_LINK_REMOTE`: see the next
    /// test).
    #[test]
    fn a_route_into_a_connected_network_carries_its_links_zone_and_generation() {
        use crate::network_policy::{Link, LinkConfig};
        let mut config = fixture();
        for (from, to) in [("ns/net1", "ns/net2"), ("ns/net2", "ns/net1")] {
            config.network_links.push(LinkConfig {
                from: from.into(),
                to: to.into(),
                policies: Vec::new(),
            });
        }
        let (tables, rejected) = Tables::compile(&config);
        assert!(rejected.is_empty(), "{rejected:?}");
        let mut slots = Slots::default();
        let image = Image::build(&tables, &mut slots, ifindex);
        let vmi_b = "10.0.1.20".parse().unwrap();
        let Some(NextHop::Leak { link, .. }) = tables.route("ns/net2", vmi_b) else {
            panic!("net2 routes to vmi-b by the link");
        };
        let link = &tables.links[link.0 as usize];
        assert_eq!(link.zone, Link::zone_of("ns/net1", "ns/net2"));
        let key = Key::Route {
            vrf: slots.vrfs.get("ns/net2"),
            addr: vec![10, 0, 1, 20],
            len: 32,
        };
        let value = image
            .entries()
            .find(|(map, k, _)| *map == TierMap::Routes4 && **k == key)
            .map(|(_, _, v)| v.to_vec())
            .expect("the leaked host route");
        let want = Bytes::default()
            .u32(NH_LINK)
            .u32(slots.vmi("ns/vmi-b").unwrap())
            .u32(link.zone)
            .u32(link.generation)
            .u32(0)
            .done();
        assert_eq!(value, want);
        // Every other route carries no zone.
        for (map, _, value) in image.entries() {
            if matches!(map, TierMap::Routes4 | TierMap::Routes6)
                && value[..4] != NH_LINK.to_ne_bytes()
            {
                assert_eq!(&value[8..], &[0; 12]);
            }
        }
    }

    /// A route to a connected network's VMI on another node is
    /// `NH_LINK_REMOTE` to a remote slot holding the VMI as the pipeline
    /// reaches it (its peer, MAC, routed label; never bridged), with the
    /// link's zone and generation, and `ROUTE_REVERSE` only when the link
    /// has its reverse (the receiver decides by it).
    #[test]
    fn a_route_to_a_connected_vmi_on_another_node_names_its_remote_slot() {
        use crate::config::{Encapsulation, LinkedVmiConfig};
        use crate::network_policy::LinkConfig;
        let g: core::net::IpAddr = "10.8.0.30".parse().unwrap();
        for both in [false, true] {
            let mut config = fixture();
            let mut links = vec![("ns/net1", "ns/green")];
            if both {
                links.push(("ns/green", "ns/net1"));
            }
            for (from, to) in links {
                config.network_links.push(LinkConfig {
                    from: from.into(),
                    to: to.into(),
                    policies: Vec::new(),
                });
            }
            config.linked_vmis.push(LinkedVmiConfig {
                key: "ns/vmi-g".into(),
                network: "ns/green".into(),
                peer: "node-b".into(),
                mac: [2, 0, 0, 0, 0, 0x16],
                ips: vec![g],
                label: Some(400),
                vni: None,
                encapsulations: vec![Encapsulation::MplsOverUdp],
            });
            let (tables, rejected) = Tables::compile(&config);
            assert!(rejected.is_empty(), "{rejected:?}");
            let mut slots = Slots::default();
            let image = Image::build(&tables, &mut slots, ifindex);
            let Some(NextHop::LeakRemote { link, .. }) = tables.route("ns/net1", g) else {
                panic!("net1 routes to vmi-g through a tunnel by the link");
            };
            let link = &tables.links[link.0 as usize];
            assert_eq!(link.reverse.is_some(), both);
            let slot = slots.remotes.get("linked:ns/vmi-g");
            assert!(slot < MAX_REMOTES);
            let find = |map: TierMap, key: &Key| {
                image
                    .entries()
                    .find(|(m, k, _)| *m == map && *k == key)
                    .map(|(_, _, v)| v.to_vec())
            };
            let key = Key::Route {
                vrf: slots.vrfs.get("ns/net1"),
                addr: vec![10, 8, 0, 30],
                len: 32,
            };
            let want = Bytes::default()
                .u32(NH_LINK_REMOTE)
                .u32(slot)
                .u32(link.zone)
                .u32(link.generation)
                .u32(if both { ROUTE_REVERSE } else { 0 })
                .done();
            assert_eq!(find(TierMap::Routes4, &key), Some(want), "both ways {both}");
            let want = Bytes::default()
                .u32(REMOTE_VALID)
                .u32(slots.peers.get("node-b"))
                .raw(&[2, 0, 0, 0, 0, 0x16])
                .u16(0)
                .u32(ENCAP_MPLS)
                .u32(400)
                .u32(0)
                .u32(0)
                .done();
            assert_eq!(find(TierMap::Remotes, &Key::Slot(slot)), Some(want));
        }
    }

    #[test]
    fn a_resolved_next_hop_is_one_write() {
        let (tables, _) = Tables::compile(&fixture());
        let mut slots = Slots::default();
        let before = Image::build(&tables, &mut slots, ifindex);
        tables.set_next_hop_mac(
            "192.168.100.50".parse().unwrap(),
            Some(trunkline_wire::EthernetAddress([2, 0, 0, 0, 0, 7])),
        );
        let after = Image::build(&tables, &mut slots, ifindex);
        let changes = after.diff(Some(&before));
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(matches!(changes[0], Change::Put(TierMap::Peers, ..)));
    }

    /// An update that removes a VMI gives its position to the last VMI
    /// (`Tables::update`); the tier's slots are by key, so the image is
    /// the one a compilation gives, and the swap only removes the removed
    /// VMI's entries: the moved VMI keeps its slot (and kernel counters).
    #[test]
    fn a_vmi_removed_in_place_writes_what_a_compilation_writes() {
        use crate::config::*;
        let mut config = NodeConfig {
            gateway_mac: crate::DEFAULT_GATEWAY_MAC,
            ..Default::default()
        };
        for n in 0..2u32 {
            config.networks.push(NetworkConfig {
                key: format!("ns/net{n}"),
                vrf: n + 1,
                subnets: vec![SubnetConfig {
                    prefix: "10.0.0.0/24".parse().unwrap(),
                    gateway: "10.0.0.1".parse().unwrap(),
                }],
                ..Default::default()
            });
        }
        config.ports.push(PortConfig {
            id: PortId(1),
            name: "p1".into(),
            mtu: None,
            kind: PortKind::Gateway,
        });
        for i in 0..5u8 {
            config.vmis.push(VmiConfig {
                key: format!("ns/vmi-{i}"),
                network: format!("ns/net{}", i % 2),
                mac: [2, 0, 0, 0, 0, i],
                ips: vec![format!("10.0.0.{}", 10 + i).parse().unwrap()],
                allowed_address_pairs: Vec::new(),
                port_security: true,
                label: Some(1000 + u32::from(i)),
            });
            config.logical_interfaces.push(LogicalInterfaceConfig {
                key: format!("ns/li-{i}"),
                port: PortId(1),
                vlan: 10 + u16::from(i),
                vmi: format!("ns/vmi-{i}"),
                order: CreationOrder {
                    created_secs: i64::from(i),
                    name: format!("li-{i}"),
                },
            });
        }
        let (tables, rejected) = Tables::compile(&config);
        assert!(rejected.is_empty(), "{rejected:?}");
        let mut slots = Slots::default();
        let first = Image::build(&tables, &mut slots, ifindex);
        let moved_slot = slots.vmi("ns/vmi-4");
        let mut after = config.clone();
        after.vmis.remove(1);
        after.logical_interfaces.remove(1);
        let (updated, _, rebuilt) = Tables::update(&tables, &config, &after);
        assert!(
            matches!(
                rebuilt,
                crate::Rebuilt::Touched {
                    vmis_removed: 1,
                    ..
                }
            ),
            "{rebuilt:?}"
        );
        // vmi-4, the last, took vmi-1's position.
        assert_eq!(updated.vmi_id("ns/vmi-4"), tables.vmi_id("ns/vmi-1"));
        let mut compiled_slots = slots.clone();
        let image = Image::build(&updated, &mut slots, ifindex);
        let (compiled, _) = Tables::compile(&after);
        assert_eq!(image, Image::build(&compiled, &mut compiled_slots, ifindex));
        assert_eq!(slots.vmi("ns/vmi-4"), moved_slot);
        assert!(image.new_vmi_slots().is_empty());
        let changes = image.diff(Some(&first));
        assert!(!changes.is_empty());
        assert!(
            changes.iter().all(|c| matches!(c, Change::Remove(..))),
            "{changes:?}"
        );
    }
}
