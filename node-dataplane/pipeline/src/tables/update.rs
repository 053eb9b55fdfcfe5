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
//!  VMIs by key: changed (same network and label), or added (a free
//!      |        label); none removed; none with allowed address pairs
//!      |        or multi-homed; a unicast MAC
//!      v
//!  logical interfaces by key: only added, each newer than every one
//!      |        before, on a free (port, VLAN) of a gateway port, for a
//!      |        VMI that had none (it becomes the VMI's egress)
//!      v
//!  their VRFs cloned: old host routes and bridge entries out, new ones in,
//!      |        flood list members added (any clash: give up)
//!      v
//!  new Tables: the changed and added VMIs (appended: positions are not
//!              key order once VMIs were added), their VRFs, the ports'
//!              VLAN arrays, the label and key indexes and the list of
//!              logical interfaces new; every other part shared
//! ```
//!
//! Anything else (a network, port, peer, route, a VMI removed, a logical
//! interface changed or removed, a clash that compilation would settle by
//! sort order) is left to a compilation from scratch
//! ([`Tables::recompile`]): the update gives up (`None`) rather than guess.
//! What it builds equals what a compilation of `after` builds (same
//! [`Tables::dump`], no rejection): a property test checks it over random
//! sequences of changes.
//!
//! The runtime cells survive as in a recompilation, and more simply: the
//! parts that are shared carry their cells (next hops, HA roles, address
//! pair holders, neighbour cache, path cells of unchanged VMIs), and a
//! changed VMI keeps its counters and punt budget.

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
        /// Logical interfaces added.
        logical_interfaces: usize,
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
    Removed,
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
    out.extend(old.into_iter().map(|_| Diff::Removed));
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
    let mut new_lis: Vec<&LogicalInterfaceConfig> = Vec::with_capacity(li_changes.len());
    for change in li_changes {
        match change {
            Diff::Added(li) => new_lis.push(li),
            Diff::Removed | Diff::Changed(..) => return None,
        }
    }
    let mut update = Update {
        previous,
        after,
        vmis: previous.vmis.clone(),
        vrfs: FxHashMap::default(),
        vmi_keys: None,
        labels: None,
    };
    // Every old entry out before any new one goes in, so that VMIs may
    // swap addresses or MACs.
    let mut inserts: Vec<(VmiId, &VmiConfig)> = Vec::with_capacity(vmi_changes.len());
    for change in vmi_changes {
        match change {
            Diff::Removed => return None,
            Diff::Changed(old, new) => inserts.push(update.remove_vmi(old, new)?),
            Diff::Added(new) => inserts.push(update.add_vmi(new)?),
        }
    }
    let vmis = inserts.len();
    for (id, new) in inserts {
        update.insert_vmi(id, new)?;
    }
    let logical_interfaces = new_lis.len();
    let (ports, lis) = if new_lis.is_empty() {
        (previous.ports.clone(), previous.logical_interfaces.clone())
    } else {
        update.add_lis(before, new_lis)?
    };
    let Update {
        vmis: all_vmis,
        vrfs,
        vmi_keys,
        labels,
        ..
    } = update;
    let rebuilt = Rebuilt::Touched {
        vmis,
        logical_interfaces,
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
        ports,
        vmis: all_vmis,
        vrfs: all_vrfs,
        vmi_keys: vmi_keys.map_or_else(|| previous.vmi_keys.clone(), Arc::new),
        network_keys: previous.network_keys.clone(),
        logical_interfaces: lis,
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

/// The ports (VLAN arrays) and the list of logical interfaces after logical
/// interfaces were added.
type Bindings = (Arc<Vec<super::Port>>, Vec<Arc<LogicalInterface>>);

/// The parts an update builds again, each copied from the previous tables
/// when first touched.
struct Update<'a> {
    previous: &'a Tables,
    after: &'a NodeConfig,
    vmis: Vec<Arc<Vmi>>,
    vrfs: FxHashMap<usize, Vrf>,
    vmi_keys: Option<FxHashMap<Arc<str>, VmiId>>,
    labels: Option<FxHashMap<u32, LabelTarget>>,
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
            let pairs = vrf.bridge.values().any(|entry| match entry {
                BridgeEntry::Vmi(v) => !self.vmis[v.index()].pairs.is_empty(),
                BridgeEntry::Remote(_) => false,
            });
            if pairs {
                return None;
            }
            self.vrfs.insert(index, Vrf::clone(vrf));
        }
        self.vrfs.get_mut(&index)
    }

    /// Takes a changed VMI's host routes and bridge entry out of its VRF.
    fn remove_vmi(
        &mut self,
        old: &VmiConfig,
        new: &'a VmiConfig,
    ) -> Option<(VmiId, &'a VmiConfig)> {
        let id = self.previous.vmi_id(&new.key)?;
        let vmi = self.previous.vmis[id.index()].clone();
        if new.network != old.network
            || new.label != old.label
            || vmi.network != old.network
            || !self.handles(old)
            || !self.handles(new)
        {
            return None;
        }
        let vrf = self.vrf(vmi.vrf)?;
        for ip in vmi.ips() {
            if vrf.remove(&IpPrefix::host(*ip)) != Some(NextHop::Vmi(id)) {
                return None;
            }
        }
        if vrf.bridge.remove(&mac_key(vmi.mac)) != Some(BridgeEntry::Vmi(id)) {
            return None;
        }
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
        if let Some(label) = new.label {
            let labels = self
                .labels
                .get_or_insert_with(|| FxHashMap::clone(&previous.labels));
            if !(FIRST_UNRESERVED_LABEL..=MAX_LABEL).contains(&label)
                || labels.insert(label, LabelTarget::Vmi(id)).is_some()
            {
                return None;
            }
        }
        let keys = self
            .vmi_keys
            .get_or_insert_with(|| FxHashMap::clone(&previous.vmi_keys));
        keys.insert(new.key.as_str().into(), id);
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

    /// Binds new logical interfaces, each newer than every one before, to
    /// free VLAN slots; each becomes the egress of its VMI, which had none.
    /// Returns the new ports and list of logical interfaces.
    fn add_lis(
        &mut self,
        before: &NodeConfig,
        mut lis: Vec<&LogicalInterfaceConfig>,
    ) -> Option<Bindings> {
        let previous = self.previous;
        lis.sort_by(|a, b| li_order(a).cmp(&li_order(b)));
        // The newest logical interface before, by the compilation's order.
        let newest = before
            .logical_interfaces
            .iter()
            .max_by(|a, b| li_order(a).cmp(&li_order(b)));
        if let Some(newest) = newest
            && li_order(lis[0]) <= li_order(newest)
        {
            return None;
        }
        let mut ports: Vec<super::Port> = previous.ports.iter().map(Clone::clone).collect();
        let mut list = previous.logical_interfaces.clone();
        for li in lis {
            if li.vlan > MAX_VLAN {
                return None;
            }
            let id = *self
                .vmi_keys
                .as_ref()
                .unwrap_or(&previous.vmi_keys)
                .get(li.vmi.as_str())?;
            let port = ports.iter_mut().find(|p| p.id == li.port)?;
            let PortRole::Gateway { vlans } = &mut port.role else {
                return None;
            };
            let slot = &mut vlans[usize::from(li.vlan)];
            if *slot != NO_VMI || self.vmis[id.index()].egress.is_some() {
                return None;
            }
            *slot = id.0;
            let old = &self.vmis[id.index()];
            if old.path.is_some() {
                return None;
            }
            let vrf = old.vrf;
            self.vmis[id.index()] = Arc::new(Vmi {
                key: old.key.clone(),
                network: old.network.clone(),
                vrf,
                mac: old.mac,
                ips: old.ips.clone(),
                pairs: old.pairs.clone(),
                port_security: old.port_security,
                egress: Some(Egress {
                    port: li.port,
                    vlan: li.vlan,
                }),
                label: old.label,
                counters: old.counters.clone(),
                path: None,
                punt: old.punt.clone(),
                pair_routes: old.pair_routes.clone(),
                policy: old.policy.clone(),
            });
            self.vrf(vrf)?.locals.push(FloodLocal {
                port: li.port,
                vlan: li.vlan,
                vmi: id,
            });
            list.push(Arc::new(LogicalInterface {
                key: li.key.clone(),
                port: li.port,
                vlan: li.vlan,
                vmi: li.vmi.clone(),
            }));
        }
        Some((Arc::new(ports), list))
    }
}
