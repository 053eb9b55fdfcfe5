//! Incremental updates: the next [`Tables`] built from the previous ones
//! and the change between their configurations, rebuilding only what the
//! change touches and sharing the rest (`Arc` clones), so that a change to
//! one VMI among 16K costs its VRF, not the node.
//!
//! ```text
//!  before, after (NodeConfig)   previous Tables (compiled from `before`,
//!      |                         nothing rejected)
//!      | every part but the VMIs and logical interfaces equal?
//!      v
//!  VMIs by key: removed, changed (same network and label), or added (a
//!      |        free label); none with allowed address pairs or
//!      |        multi-homed; a unicast MAC
//!      v
//!  removed VMIs: host routes, bridge entry, label and key out
//!  changed VMIs: host routes and bridge entry out, then in again
//!  added VMIs:   appended (positions are not key order once VMIs were
//!      |         added), label and key in, host routes and bridge entry
//!      |         in (any clash: give up)
//!      v
//!  logical interfaces by key: removed or changed ones unbound (VLAN slot
//!      |        freed, flood list member out); changed ones bound again
//!      |        in their place in the list (same creation order), added
//!      |        ones (and changed ones with a new creation order) last,
//!      |        each newer than every one before; each on a free (port,
//!      |        VLAN) of a gateway port; the VMIs they concern get the
//!      |        egress compilation gives: their first logical interface
//!      v
//!  removed VMIs (left with no logical interface): each position taken by
//!      |        the last VMI (as `Vec::swap_remove`), whose host routes,
//!      |        bridge entry, flood list members, VLAN slots, label and
//!      |        key are renumbered (it must have no address pairs and
//!      |        not be multi-homed)
//!      v
//!  new Tables: the VMIs and VRFs touched, the ports' VLAN arrays, the
//!              label and key indexes and the list of logical interfaces
//!              new when touched; every other part shared
//! ```
//!
//! Positions (`VmiId`) are not part of what an update must reproduce:
//! [`Tables::dump`] names VMIs by key and lists them in key order, and the
//! XDP tier's slots are given by key (`kernel::Slots`), so an appended or
//! moved VMI keeps its slot and counters there. Labels are the
//! configuration's (compilation does not number them): a removed VMI's
//! label is free for a VMI added in the same change or later.
//!
//! Anything else (a network, port, peer, route, a VMI whose logical
//! interface stays or whose position would go to a VMI with address pairs
//! or a multi-homing path, a clash that compilation would settle by sort
//! order) is left to a compilation from scratch ([`Tables::recompile`]):
//! the update gives up (`None`) rather than guess. What it builds equals
//! what a compilation of `after` builds (same [`Tables::dump`], no
//! rejection): a property test checks it over random sequences of changes,
//! and that removals and logical interface changes take this path.
//!
//! The runtime cells survive as in a recompilation, and more simply: the
//! parts that are shared carry their cells (next hops, HA roles, address
//! pair holders, neighbour cache, path cells of unchanged VMIs), a changed
//! or moved VMI keeps its counters and punt budget, and a removed VMI's
//! cells go with it.

use core::sync::atomic::AtomicU64;
use std::sync::Arc;

use trunkline_wire::EthernetAddress;
use trunkline_wire::mpls::{FIRST_UNRESERVED_LABEL, MAX_LABEL};

use super::{
    BridgeEntry, Egress, FloodLocal, LabelTarget, LogicalInterface, MAX_VLAN, NO_VMI, NextHop,
    PortRole, Tables, Vmi, VmiId, Vrf, mac_key,
};
use crate::config::{IpPrefix, LogicalInterfaceConfig, NodeConfig, VmiConfig};
use crate::hash::{FxHashMap, FxHashSet};
use crate::limit::TokenBucket;

/// How the next tables were built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuilt {
    /// Only these parts were built again; the rest is shared.
    Touched {
        /// VMIs changed or added.
        vmis: usize,
        /// VMIs removed.
        vmis_removed: usize,
        /// Logical interfaces changed or added.
        logical_interfaces: usize,
        /// Logical interfaces removed.
        logical_interfaces_removed: usize,
        /// VRFs rebuilt.
        vrfs: usize,
    },
    /// Everything was compiled again.
    Everything,
}

/// Whether the two configurations differ in their VMIs and logical
/// interfaces only.
fn same_but_vmis_and_lis(before: &NodeConfig, after: &NodeConfig) -> bool {
    // Exhaustive, so that a new part of the configuration cannot be
    // forgotten here.
    let NodeConfig {
        gateway_mac,
        ports,
        networks,
        vmis: _,
        logical_interfaces: _,
        routes,
        underlay,
        peers,
        remote_vmis,
        ha_groups,
        multihomed,
        north_south,
        punt_limit,
        policies,
        network_links,
        linked_vmis,
    } = after;
    *gateway_mac == before.gateway_mac
        && *ports == before.ports
        && *networks == before.networks
        && *routes == before.routes
        && *underlay == before.underlay
        && *peers == before.peers
        && *remote_vmis == before.remote_vmis
        && *ha_groups == before.ha_groups
        && *multihomed == before.multihomed
        && *north_south == before.north_south
        && *punt_limit == before.punt_limit
        // Security groups: any change compiles again (a VMI's rules, a
        // policed VMI added or gone).
        && *policies == before.policies
        // Network policies: a VMI's host routes are leaked into the VRFs
        // of connected networks, so with any link everything compiles
        // again.
        && network_links.is_empty()
        && before.network_links.is_empty()
        && linked_vmis.is_empty()
        && before.linked_vmis.is_empty()
}

/// One item's change between two lists keyed by `key`.
enum Diff<'a, T> {
    Added(&'a T),
    Removed(&'a T),
    Changed(&'a T, &'a T),
}

/// The changes from `before` to `after` (items matched by key), or `None`
/// when `after` has a key twice. Position by position over the common
/// prefix and suffix of keys (the agent builds its lists in a stable
/// order, so an insertion or removal leaves both), by key in between.
fn diff<'a, T: PartialEq>(
    before: &'a [T],
    after: &'a [T],
    key: impl Fn(&T) -> &str,
) -> Option<Vec<Diff<'a, T>>> {
    let mut out = Vec::new();
    let prefix = before
        .iter()
        .zip(after)
        .take_while(|(a, b)| key(a) == key(b))
        .count();
    let suffix = before[prefix..]
        .iter()
        .rev()
        .zip(after[prefix..].iter().rev())
        .take_while(|(a, b)| key(a) == key(b))
        .count();
    let (middle_before, middle_after) = (
        &before[prefix..before.len() - suffix],
        &after[prefix..after.len() - suffix],
    );
    let same = before[..prefix].iter().zip(&after[..prefix]).chain(
        before[before.len() - suffix..]
            .iter()
            .zip(&after[after.len() - suffix..]),
    );
    for (a, b) in same {
        if a != b {
            out.push(Diff::Changed(a, b));
        }
    }
    if middle_before.is_empty() && middle_after.is_empty() {
        return Some(out);
    }
    let mut old: FxHashMap<&str, &T> = middle_before.iter().map(|t| (key(t), t)).collect();
    let mut seen: FxHashSet<&str> = FxHashSet::default();
    for b in middle_after {
        if !seen.insert(key(b)) {
            return None;
        }
        match old.remove(key(b)) {
            Some(a) if a != b => out.push(Diff::Changed(a, b)),
            Some(_) => {}
            None => out.push(Diff::Added(b)),
        }
    }
    // A key of the middle of `after` may be in the prefix or suffix too.
    if !seen.is_empty() {
        let outside = before[..prefix]
            .iter()
            .chain(&before[before.len() - suffix..])
            .any(|t| seen.contains(key(t)));
        if outside {
            return None;
        }
    }
    out.extend(old.into_values().map(Diff::Removed));
    Some(out)
}

/// The compilation order of logical interfaces (oldest first).
fn li_order(li: &LogicalInterfaceConfig) -> impl Ord + '_ {
    (&li.order, &li.key, li.port, li.vlan, &li.vmi)
}

/// The tables of `after` built from `previous` (compiled from `before`),
/// or `None` when the change is not one this update handles.
pub(super) fn update(
    previous: &Tables,
    before: &NodeConfig,
    after: &NodeConfig,
) -> Option<(Tables, Rebuilt)> {
    if !previous.clean || !same_but_vmis_and_lis(before, after) {
        return None;
    }
    let vmi_changes = diff(&before.vmis, &after.vmis, |v| &v.key)?;
    let li_changes = diff(&before.logical_interfaces, &after.logical_interfaces, |l| {
        &l.key
    })?;
    let mut lis = LiChanges::default();
    for change in li_changes {
        match change {
            Diff::Added(li) => lis.added.push(li),
            Diff::Removed(li) => lis.removed.push(li),
            // Same creation order and key: the same place in the
            // compilation's order, so it is unbound and bound again there.
            Diff::Changed(old, new) if old.order == new.order => {
                lis.removed.push(old);
                lis.changed.push(new);
            }
            // A new place in the order: out, and in as an added one (the
            // newest, or the update gives up).
            Diff::Changed(old, new) => {
                lis.removed.push(old);
                lis.added.push(new);
            }
        }
    }
    let mut update = Update {
        previous,
        after,
        vmis: previous.vmis.clone(),
        vrfs: FxHashMap::default(),
        vmi_keys: None,
        labels: None,
        ports: None,
        lis: None,
    };
    // Every old entry out before any new one goes in, so that VMIs may
    // swap addresses or MACs, and a new VMI may take a removed one's
    // address, MAC or label.
    let mut removed: Vec<VmiId> = Vec::new();
    for change in &vmi_changes {
        if let Diff::Removed(old) = change {
            removed.push(update.drop_vmi(old)?);
        }
    }
    let mut inserts: Vec<(VmiId, &VmiConfig)> = Vec::with_capacity(vmi_changes.len());
    for change in vmi_changes {
        match change {
            Diff::Removed(_) => {}
            Diff::Changed(old, new) => inserts.push(update.remove_vmi(old, new)?),
            Diff::Added(new) => inserts.push(update.add_vmi(new)?),
        }
    }
    let vmis = inserts.len();
    for (id, new) in inserts {
        update.insert_vmi(id, new)?;
    }
    let logical_interfaces = lis.changed.len() + lis.added.len();
    let logical_interfaces_removed = lis.removed.len();
    if !lis.is_empty() {
        update.bind_lis(before, lis)?;
    }
    // A removed VMI keeps no logical interface (else compilation would
    // reject one), and its position goes to the last VMI.
    removed.sort_unstable_by(|a, b| b.cmp(a));
    for &id in &removed {
        let vrf = update.vmis[id.index()].vrf;
        if update.vrf(vrf)?.locals.iter().any(|l| l.vmi == id) {
            return None;
        }
    }
    for &id in &removed {
        update.compact(id)?;
    }
    let Update {
        vmis: all_vmis,
        vrfs,
        vmi_keys,
        labels,
        ports,
        lis,
        ..
    } = update;
    let rebuilt = Rebuilt::Touched {
        vmis,
        vmis_removed: removed.len(),
        logical_interfaces,
        logical_interfaces_removed,
        vrfs: vrfs.len(),
    };
    let mut all_vrfs = previous.vrfs.clone();
    for (index, mut vrf) in vrfs {
        vrf.locals.sort();
        all_vrfs[index] = Arc::new(vrf);
    }
    let tables = Tables {
        gateway_mac: previous.gateway_mac,
        gateway_link_local: previous.gateway_link_local,
        server_duid: previous.server_duid,
        port_slots: previous.port_slots.clone(),
        ports: ports.map_or_else(|| previous.ports.clone(), Arc::new),
        vmis: all_vmis,
        vrfs: all_vrfs,
        vmi_keys: vmi_keys.map_or_else(|| previous.vmi_keys.clone(), Arc::new),
        network_keys: previous.network_keys.clone(),
        logical_interfaces: lis.unwrap_or_else(|| previous.logical_interfaces.clone()),
        underlay: previous.underlay,
        peers: previous.peers.clone(),
        peer_addrs: previous.peer_addrs.clone(),
        remotes: previous.remotes.clone(),
        labels: labels.map_or_else(|| previous.labels.clone(), Arc::new),
        vnis: previous.vnis.clone(),
        cells_version: AtomicU64::new(0),
        remote_keys: previous.remote_keys.clone(),
        ha_groups: previous.ha_groups.clone(),
        ha_group_keys: previous.ha_group_keys.clone(),
        north_south: previous.north_south.clone(),
        vrf_ids: previous.vrf_ids.clone(),
        pairs: previous.pairs.clone(),
        links: previous.links.clone(),
        linked: previous.linked.clone(),
        clean: true,
    };
    Some((tables, rebuilt))
}

/// The logical interfaces a change unbinds and binds.
#[derive(Default)]
struct LiChanges<'a> {
    /// Removed, or changed (their old version).
    removed: Vec<&'a LogicalInterfaceConfig>,
    /// Changed in place (their new version, at the old one's place in the
    /// list).
    changed: Vec<&'a LogicalInterfaceConfig>,
    /// Added, or changed to a new creation order: each must be newer than
    /// every one before.
    added: Vec<&'a LogicalInterfaceConfig>,
}

impl LiChanges<'_> {
    fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.changed.is_empty() && self.added.is_empty()
    }
}

/// The parts an update builds again, each copied from the previous tables
/// when first touched.
struct Update<'a> {
    previous: &'a Tables,
    after: &'a NodeConfig,
    vmis: Vec<Arc<Vmi>>,
    vrfs: FxHashMap<usize, Vrf>,
    vmi_keys: Option<FxHashMap<Arc<str>, VmiId>>,
    labels: Option<FxHashMap<u32, LabelTarget>>,
    /// The ports (their VLAN arrays).
    ports: Option<Vec<super::Port>>,
    /// The list of logical interfaces, in the compilation's order.
    lis: Option<Vec<Arc<LogicalInterface>>>,
}

impl<'a> Update<'a> {
    /// Whether the update can take `config` (old or new) at all.
    fn handles(&self, config: &VmiConfig) -> bool {
        config.allowed_address_pairs.is_empty()
            && !self.after.multihomed.iter().any(|m| m.vmi == config.key)
            && !EthernetAddress(config.mac).is_multicast()
    }

    /// VRF `index`, cloned from the previous tables on first touch.
    fn vrf(&mut self, index: usize) -> Option<&mut Vrf> {
        if !self.vrfs.contains_key(&index) {
            let previous = self.previous;
            let vrf = &previous.vrfs[index];
            // Allowed address pairs of the VRF's VMIs take the addresses
            // nothing else routes: a moved address may free or take one.
            // (A VRF not touched yet names only VMIs whose position did
            // not change.)
            let pairs = vrf.bridge.values().any(|entry| match entry {
                BridgeEntry::Vmi(v) => self.vmis.get(v.index()).is_none_or(|v| !v.pairs.is_empty()),
                BridgeEntry::Remote(_) => false,
            });
            if pairs {
                return None;
            }
            self.vrfs.insert(index, Vrf::clone(vrf));
        }
        self.vrfs.get_mut(&index)
    }

    /// The label index, copied on first touch.
    fn labels(&mut self) -> &mut FxHashMap<u32, LabelTarget> {
        let previous = self.previous;
        self.labels
            .get_or_insert_with(|| FxHashMap::clone(&previous.labels))
    }

    /// The key index, copied on first touch.
    fn vmi_keys(&mut self) -> &mut FxHashMap<Arc<str>, VmiId> {
        let previous = self.previous;
        self.vmi_keys
            .get_or_insert_with(|| FxHashMap::clone(&previous.vmi_keys))
    }

    /// The ports, copied on first touch.
    fn ports(&mut self) -> &mut Vec<super::Port> {
        let previous = self.previous;
        self.ports
            .get_or_insert_with(|| previous.ports.iter().map(Clone::clone).collect())
    }

    /// Takes VMI `id`'s host routes and bridge entry out of its VRF;
    /// `None` when they are not what the VMI installed.
    fn unroute_vmi(&mut self, vmi: &Vmi, id: VmiId) -> Option<()> {
        let vrf = self.vrf(vmi.vrf)?;
        for ip in vmi.ips() {
            if vrf.remove(&IpPrefix::host(*ip)) != Some(NextHop::Vmi(id)) {
                return None;
            }
        }
        if vrf.bridge.remove(&mac_key(vmi.mac)) != Some(BridgeEntry::Vmi(id)) {
            return None;
        }
        Some(())
    }

    /// Takes a removed VMI's host routes, bridge entry, label and key out;
    /// its position is given up last ([`Update::compact`]).
    fn drop_vmi(&mut self, old: &VmiConfig) -> Option<VmiId> {
        let id = self.previous.vmi_id(&old.key)?;
        let vmi = self.vmis[id.index()].clone();
        if vmi.network != old.network || vmi.path.is_some() || !self.handles(old) {
            return None;
        }
        self.unroute_vmi(&vmi, id)?;
        if let Some(label) = vmi.label
            && self.labels().remove(&label) != Some(LabelTarget::Vmi(id))
        {
            return None;
        }
        self.vmi_keys().remove(old.key.as_str())?;
        Some(id)
    }

    /// Gives removed VMI `id`'s position to the last VMI, renumbering the
    /// entries that name it (host routes, bridge entry, flood list, VLAN
    /// slots, label, key), as `Vec::swap_remove`: the positions of the
    /// others stay. Removed positions go from the highest down, so the
    /// last VMI is never one still to remove.
    fn compact(&mut self, id: VmiId) -> Option<()> {
        let last = VmiId(u32::try_from(self.vmis.len().checked_sub(1)?).ok()?);
        if id != last {
            let moved = self.vmis[last.index()].clone();
            // Address pairs name their owners by position, and the
            // multi-homed VMIs are listed in position order.
            if !moved.pairs.is_empty() || !moved.pair_routes.is_empty() || moved.path.is_some() {
                return None;
            }
            let vrf = self.vrf(moved.vrf)?;
            for ip in moved.ips() {
                let host = IpPrefix::host(*ip);
                if vrf.remove(&host) != Some(NextHop::Vmi(last)) {
                    return None;
                }
                vrf.insert(&host, NextHop::Vmi(id)).ok()?;
            }
            let entry = vrf.bridge.get_mut(&mac_key(moved.mac))?;
            if *entry != BridgeEntry::Vmi(last) {
                return None;
            }
            *entry = BridgeEntry::Vmi(id);
            let mut slots = Vec::new();
            for local in vrf.locals.iter_mut().filter(|l| l.vmi == last) {
                local.vmi = id;
                slots.push((local.port, local.vlan));
            }
            for (port, vlan) in slots {
                let port = self.ports().iter_mut().find(|p| p.id == port)?;
                let PortRole::Gateway { vlans } = &mut port.role else {
                    return None;
                };
                let slot = vlans.get_mut(usize::from(vlan))?;
                if *slot != last.0 {
                    return None;
                }
                *slot = id.0;
            }
            if let Some(label) = moved.label {
                let target = self.labels().get_mut(&label)?;
                if *target != LabelTarget::Vmi(last) {
                    return None;
                }
                *target = LabelTarget::Vmi(id);
            }
            *self.vmi_keys().get_mut(moved.key())? = id;
        }
        self.vmis.swap_remove(id.index());
        Some(())
    }

    /// Takes a changed VMI's host routes and bridge entry out of its VRF.
    fn remove_vmi(
        &mut self,
        old: &VmiConfig,
        new: &'a VmiConfig,
    ) -> Option<(VmiId, &'a VmiConfig)> {
        let id = self.previous.vmi_id(&new.key)?;
        let vmi = self.vmis[id.index()].clone();
        if new.network != old.network
            || new.label != old.label
            || vmi.network != old.network
            || !self.handles(old)
            || !self.handles(new)
        {
            return None;
        }
        self.unroute_vmi(&vmi, id)?;
        Some((id, new))
    }

    /// Gives a new VMI the next position, its label and its key.
    fn add_vmi(&mut self, new: &'a VmiConfig) -> Option<(VmiId, &'a VmiConfig)> {
        let previous = self.previous;
        let &vrf = previous.network_keys.get(&new.network)?;
        if !self.handles(new)
            || previous.remote_keys.contains_key(&new.key)
            || self.after.policies.contains_key(&new.key)
        {
            return None;
        }
        self.vrf(vrf)?;
        let id = VmiId(u32::try_from(self.vmis.len()).ok()?);
        if let Some(label) = new.label
            && (!(FIRST_UNRESERVED_LABEL..=MAX_LABEL).contains(&label)
                || self.labels().insert(label, LabelTarget::Vmi(id)).is_some())
        {
            return None;
        }
        self.vmi_keys().insert(new.key.as_str().into(), id);
        let limit = self.after.punt_limit;
        self.vmis.push(Arc::new(Vmi {
            key: new.key.clone(),
            network: new.network.clone(),
            vrf,
            mac: EthernetAddress(new.mac),
            ips: Box::default(),
            pairs: Box::default(),
            port_security: new.port_security,
            egress: None,
            label: new.label,
            counters: Arc::default(),
            path: None,
            punt: Arc::new(TokenBucket::new(
                u64::from(limit.per_second),
                u64::from(limit.burst),
            )),
            pair_routes: Box::default(),
            policy: None,
        }));
        Some((id, new))
    }

    /// Puts a changed or new VMI's host routes and bridge entry into its
    /// VRF, and the VMI into the tables.
    fn insert_vmi(&mut self, id: VmiId, new: &VmiConfig) -> Option<()> {
        let vmi = self.vmis[id.index()].clone();
        let vrf = self.vrfs.get_mut(&vmi.vrf)?;
        let mut ips = new.ips.clone();
        ips.sort();
        ips.dedup();
        for ip in &ips {
            vrf.insert(&IpPrefix::host(*ip), NextHop::Vmi(id)).ok()?;
        }
        let mac = EthernetAddress(new.mac);
        if vrf
            .bridge
            .insert(mac_key(mac), BridgeEntry::Vmi(id))
            .is_some()
        {
            return None;
        }
        self.vmis[id.index()] = Arc::new(Vmi {
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
            policy: vmi.policy.clone(),
        });
        Some(())
    }

    /// The VMI with this key in the tables being built.
    fn vmi_id(&self, key: &str) -> Option<VmiId> {
        self.vmi_keys
            .as_ref()
            .unwrap_or(&self.previous.vmi_keys)
            .get(key)
            .copied()
    }

    /// Unbinds the removed and changed logical interfaces (their VLAN slot
    /// freed, out of their VRF's flood list and of the list), then binds
    /// the changed ones in their place and the added ones, each newer than
    /// every one before, last; both take free VLAN slots only. Then each
    /// VMI whose logical interfaces changed gets the egress compilation
    /// gives it: its first logical interface in the compilation's order.
    fn bind_lis(&mut self, before: &NodeConfig, mut lis: LiChanges<'_>) -> Option<()> {
        let previous = self.previous;
        lis.added.sort_by(|a, b| li_order(a).cmp(&li_order(b)));
        if let Some(first) = lis.added.first() {
            // The newest logical interface before, by the compilation's
            // order.
            let newest = before
                .logical_interfaces
                .iter()
                .max_by(|a, b| li_order(a).cmp(&li_order(b)));
            if let Some(newest) = newest
                && li_order(first) <= li_order(newest)
            {
                return None;
            }
        }
        let mut list = self
            .lis
            .take()
            .unwrap_or_else(|| previous.logical_interfaces.clone());
        // VMIs whose egress may change: (position, whether the list must
        // be read for it).
        let mut affected: FxHashMap<VmiId, bool> = FxHashMap::default();
        // Removed and changed (old versions): the VMI is the previous
        // tables' (a removed VMI's position is given up only later).
        let mut places: FxHashMap<&str, usize> = FxHashMap::default();
        for li in &lis.removed {
            let id = previous.vmi_id(&li.vmi)?;
            let place = list.iter().position(|l| l.key == li.key)?;
            places.insert(li.key.as_str(), place);
            let port = self.ports().iter_mut().find(|p| p.id == li.port)?;
            let PortRole::Gateway { vlans } = &mut port.role else {
                return None;
            };
            let slot = vlans.get_mut(usize::from(li.vlan))?;
            if *slot != id.0 {
                return None;
            }
            *slot = NO_VMI;
            let vrf = self.vmis[id.index()].vrf;
            let locals = &mut self.vrf(vrf)?.locals;
            let local = FloodLocal {
                port: li.port,
                vlan: li.vlan,
                vmi: id,
            };
            let at = locals.iter().position(|l| *l == local)?;
            locals.swap_remove(at);
            let egress = self.vmis[id.index()].egress;
            let lost = egress
                == Some(Egress {
                    port: li.port,
                    vlan: li.vlan,
                });
            *affected.entry(id).or_default() |= lost;
        }
        for li in &lis.changed {
            let id = self.bind(li)?;
            let &place = places.get(li.key.as_str())?;
            list[place] = Arc::new(LogicalInterface {
                key: li.key.clone(),
                port: li.port,
                vlan: li.vlan,
                vmi: li.vmi.clone(),
            });
            // It may be older than the VMI's egress.
            affected.insert(id, true);
        }
        // Out of the list: the removed ones not changed in place.
        let mut gone: Vec<usize> = lis
            .removed
            .iter()
            .filter(|li| !lis.changed.iter().any(|c| c.key == li.key))
            .map(|li| places[li.key.as_str()])
            .collect();
        gone.sort_unstable_by(|a, b| b.cmp(a));
        for place in gone {
            list.remove(place);
        }
        for li in &lis.added {
            let id = self.bind(li)?;
            affected.entry(id).or_default();
            list.push(Arc::new(LogicalInterface {
                key: li.key.clone(),
                port: li.port,
                vlan: li.vlan,
                vmi: li.vmi.clone(),
            }));
        }
        for (id, read) in affected {
            let vmi = self.vmis.get(id.index()).cloned()?;
            // A removed VMI: its position goes, its egress does not matter.
            if self.vmi_id(vmi.key()) != Some(id) {
                continue;
            }
            let egress = if read || vmi.egress.is_none() {
                list.iter().find(|l| l.vmi == vmi.key).map(|l| Egress {
                    port: l.port,
                    vlan: l.vlan,
                })
            } else {
                vmi.egress
            };
            // A multi-homed VMI's logical interfaces are left to a
            // compilation, as its other changes are.
            if vmi.path.is_some() {
                return None;
            }
            if egress == vmi.egress {
                continue;
            }
            self.vmis[id.index()] = Arc::new(Vmi {
                key: vmi.key.clone(),
                network: vmi.network.clone(),
                vrf: vmi.vrf,
                mac: vmi.mac,
                ips: vmi.ips.clone(),
                pairs: vmi.pairs.clone(),
                port_security: vmi.port_security,
                egress,
                label: vmi.label,
                counters: vmi.counters.clone(),
                path: None,
                punt: vmi.punt.clone(),
                pair_routes: vmi.pair_routes.clone(),
                policy: vmi.policy.clone(),
            });
        }
        self.lis = Some(list);
        Some(())
    }

    /// Binds a logical interface to its free VLAN slot and puts it into its
    /// VMI's flood list; returns the VMI.
    fn bind(&mut self, li: &LogicalInterfaceConfig) -> Option<VmiId> {
        if li.vlan > MAX_VLAN {
            return None;
        }
        let id = self.vmi_id(&li.vmi)?;
        let port = self.ports().iter_mut().find(|p| p.id == li.port)?;
        let PortRole::Gateway { vlans } = &mut port.role else {
            return None;
        };
        let slot = &mut vlans[usize::from(li.vlan)];
        if *slot != NO_VMI {
            return None;
        }
        *slot = id.0;
        let vrf = self.vmis[id.index()].vrf;
        self.vrf(vrf)?.locals.push(FloodLocal {
            port: li.port,
            vlan: li.vlan,
            vmi: id,
        });
        Some(id)
    }
}
