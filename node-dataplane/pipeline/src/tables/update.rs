//! Incremental updates: the next [`Tables`] built from the previous ones
//! and the change between their configurations, rebuilding only what the
//! change touches and sharing the rest (`Arc` clones), so that a change to
//! one VMI among 16K costs its VRF, not the node.
//!
//! ```text
//!  before, after (NodeConfig)   previous Tables (compiled from `before`,
//!      |                         nothing rejected)
//!      | every part but the VMIs equal? VMI lists of the same keys?
//!      v
//!  changed VMIs (same key, network and label, no allowed address pairs,
//!      |          not multi-homed, a unicast MAC)
//!      v
//!  their VRFs: cloned, their old host routes and bridge entry removed,
//!      |        the new ones inserted (any clash: give up)
//!      v
//!  new Tables: the changed VMIs and VRFs new, every other part shared
//! ```
//!
//! Anything else (a network, port, peer, route, logical interface, a VMI
//! added or removed, a clash that compilation would settle by sort order)
//! is left to a compilation from scratch ([`Tables::recompile`]): the
//! update gives up (`None`) rather than guess. What it builds equals what a
//! compilation of `after` builds (same [`Tables::dump`], no rejection): a
//! property test checks it over random sequences of changes.
//!
//! The runtime cells survive as in a recompilation, and more simply: the
//! parts that are shared carry their cells (next hops, HA roles, address
//! pair holders, neighbour cache, path cells of unchanged VMIs), and a
//! changed VMI keeps its counters and punt budget.

use core::sync::atomic::AtomicU64;
use std::sync::Arc;

use trunkline_wire::EthernetAddress;

use super::{BridgeEntry, NextHop, Tables, Vmi, VmiId, Vrf, mac_key};
use crate::config::{IpPrefix, NodeConfig, VmiConfig};
use crate::hash::FxHashMap;

/// How the next tables were built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuilt {
    /// Only these parts were built again; the rest is shared.
    Touched {
        /// VMIs rebuilt.
        vmis: usize,
        /// VRFs rebuilt.
        vrfs: usize,
    },
    /// Everything was compiled again.
    Everything,
}

/// Whether the two configurations differ in their VMIs only.
fn same_but_vmis(before: &NodeConfig, after: &NodeConfig) -> bool {
    // Exhaustive, so that a new part of the configuration cannot be
    // forgotten here.
    let NodeConfig {
        gateway_mac,
        ports,
        networks,
        vmis: _,
        logical_interfaces,
        routes,
        underlay,
        peers,
        remote_vmis,
        ha_groups,
        multihomed,
        north_south,
        punt_limit,
    } = after;
    *gateway_mac == before.gateway_mac
        && *ports == before.ports
        && *networks == before.networks
        && *logical_interfaces == before.logical_interfaces
        && *routes == before.routes
        && *underlay == before.underlay
        && *peers == before.peers
        && *remote_vmis == before.remote_vmis
        && *ha_groups == before.ha_groups
        && *multihomed == before.multihomed
        && *north_south == before.north_south
        && *punt_limit == before.punt_limit
}

/// The tables of `after` built from `previous` (compiled from `before`),
/// or `None` when the change is not one this update handles.
pub(super) fn update(
    previous: &Tables,
    before: &NodeConfig,
    after: &NodeConfig,
) -> Option<(Tables, Rebuilt)> {
    if !previous.clean || before.vmis.len() != after.vmis.len() || !same_but_vmis(before, after) {
        return None;
    }
    let mut changed: Vec<(&VmiConfig, &VmiConfig)> = Vec::new();
    for (old, new) in before.vmis.iter().zip(&after.vmis) {
        if old.key != new.key {
            return None;
        }
        if old != new {
            changed.push((old, new));
        }
    }
    let mut vmis = previous.vmis.clone();
    let mut vrfs: FxHashMap<usize, Vrf> = FxHashMap::default();
    let mut touched: Vec<(VmiId, &VmiConfig)> = Vec::with_capacity(changed.len());
    for (old, new) in changed {
        let id = previous.vmi_id(&new.key)?;
        let vmi = &previous.vmis[id.index()];
        if new.network != old.network
            || new.label != old.label
            || *vmi.network() != old.network
            || !old.allowed_address_pairs.is_empty()
            || !new.allowed_address_pairs.is_empty()
            || after.multihomed.iter().any(|m| m.vmi == new.key)
            || EthernetAddress(new.mac).is_multicast()
        {
            return None;
        }
        if !vrfs.contains_key(&vmi.vrf) {
            let vrf = &previous.vrfs[vmi.vrf];
            // Allowed address pairs of other VMIs of the VRF take the
            // addresses nothing else routes: a moved address may free or
            // take one of theirs.
            let pairs = vrf.bridge.values().any(|entry| match entry {
                BridgeEntry::Vmi(v) => !previous.vmis[v.index()].pairs.is_empty(),
                BridgeEntry::Remote(_) => false,
            });
            if pairs {
                return None;
            }
            vrfs.insert(vmi.vrf, Vrf::clone(vrf));
        }
        let vrf = vrfs.get_mut(&vmi.vrf)?;
        for ip in vmi.ips() {
            if vrf.remove(&IpPrefix::host(*ip)) != Some(NextHop::Vmi(id)) {
                return None;
            }
        }
        if vrf.bridge.remove(&mac_key(vmi.mac)) != Some(BridgeEntry::Vmi(id)) {
            return None;
        }
        touched.push((id, new));
    }
    // Inserted once every old entry is gone, so that two VMIs may swap
    // addresses or MACs.
    for (id, new) in &touched {
        let vmi = &previous.vmis[id.index()];
        let vrf = vrfs.get_mut(&vmi.vrf)?;
        let mut ips = new.ips.clone();
        ips.sort();
        ips.dedup();
        for ip in &ips {
            vrf.insert(&IpPrefix::host(*ip), NextHop::Vmi(*id)).ok()?;
        }
        let mac = EthernetAddress(new.mac);
        if vrf
            .bridge
            .insert(mac_key(mac), BridgeEntry::Vmi(*id))
            .is_some()
        {
            return None;
        }
        vmis[id.index()] = Arc::new(Vmi {
            key: vmi.key.clone(),
            network: vmi.network.clone(),
            vrf: vmi.vrf,
            mac,
            ips: ips.into_boxed_slice(),
            pairs: Box::default(),
            port_security: new.port_security,
            egress: vmi.egress,
            label: vmi.label,
            counters: vmi.counters.clone(),
            path: None,
            punt: vmi.punt.clone(),
            pair_routes: Box::default(),
        });
    }
    let rebuilt = Rebuilt::Touched {
        vmis: touched.len(),
        vrfs: vrfs.len(),
    };
    let mut all_vrfs = previous.vrfs.clone();
    for (index, vrf) in vrfs {
        all_vrfs[index] = Arc::new(vrf);
    }
    let tables = Tables {
        gateway_mac: previous.gateway_mac,
        gateway_link_local: previous.gateway_link_local,
        server_duid: previous.server_duid,
        port_slots: previous.port_slots.clone(),
        ports: previous.ports.clone(),
        vmis,
        vrfs: all_vrfs,
        vmi_keys: previous.vmi_keys.clone(),
        network_keys: previous.network_keys.clone(),
        logical_interfaces: previous.logical_interfaces.clone(),
        underlay: previous.underlay,
        peers: previous.peers.clone(),
        peer_addrs: previous.peer_addrs.clone(),
        remotes: previous.remotes.clone(),
        labels: previous.labels.clone(),
        vnis: previous.vnis.clone(),
        cells_version: AtomicU64::new(0),
        remote_keys: previous.remote_keys.clone(),
        ha_groups: previous.ha_groups.clone(),
        ha_group_keys: previous.ha_group_keys.clone(),
        north_south: previous.north_south.clone(),
        vrf_ids: previous.vrf_ids.clone(),
        pairs: previous.pairs.clone(),
        clean: true,
    };
    Some((tables, rebuilt))
}
