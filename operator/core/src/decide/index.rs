//! The dependency index: who refers to whom, kept as objects come and go,
//! so that a change finds the objects it can affect without a scan; and
//! the lookups every stage shares (routers and their ports).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use trunkline_model::{NamespacedName, PhysicalRouter};

use super::list_or_none;

/// `K -> {V}`: which objects (`V`) refer to `K`.
#[derive(Debug)]
pub(super) struct RefIndex<K: Ord, V: Ord> {
    map: BTreeMap<K, BTreeSet<V>>,
}

impl<K: Ord, V: Ord> Default for RefIndex<K, V> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone, V: Ord + Clone> RefIndex<K, V> {
    /// `v` no longer refers to the `old` keys but to the `new` ones.
    pub(super) fn replace<'a>(
        &mut self,
        v: &V,
        old: impl IntoIterator<Item = &'a K>,
        new: impl IntoIterator<Item = &'a K>,
    ) where
        K: 'a,
    {
        for k in old {
            if let Some(set) = self.map.get_mut(k) {
                set.remove(v);
                if set.is_empty() {
                    self.map.remove(k);
                }
            }
        }
        for k in new {
            self.map.entry(k.clone()).or_default().insert(v.clone());
        }
    }

    /// Who refers to `k`, sorted.
    pub(super) fn get(&self, k: &K) -> impl Iterator<Item = &V> {
        self.map.get(k).into_iter().flatten()
    }
}

/// Who refers to whom.
#[derive(Debug, Default)]
pub(super) struct Refs {
    /// Network -> its VMIs.
    pub(super) vmis_of_network: RefIndex<NamespacedName, NamespacedName>,
    /// VMI -> the logical interfaces binding it.
    pub(super) lis_of_vmi: RefIndex<NamespacedName, String>,
    /// Router -> the logical interfaces on it.
    pub(super) lis_of_router: RefIndex<String, String>,
    /// Network -> its virtual gateways.
    pub(super) gateways_of_network: RefIndex<NamespacedName, String>,
    /// Node -> the virtual gateways naming it.
    pub(super) gateways_of_node: RefIndex<String, String>,
    /// Network -> the external VTEPs joining it.
    pub(super) vteps_of_network: RefIndex<NamespacedName, String>,
    /// Network -> the HA groups flooding BPDUs through it.
    pub(super) groups_of_network: RefIndex<NamespacedName, String>,
    /// Router -> the HA groups it is a member of.
    pub(super) groups_of_router: RefIndex<String, String>,
    /// Underlay address -> the routers declaring it.
    pub(super) routers_of_underlay: RefIndex<IpAddr, String>,
    /// Address -> the external VTEPs declaring it.
    pub(super) vteps_of_address: RefIndex<IpAddr, String>,
    /// Network -> the DC gateways serving it.
    pub(super) dc_gateways_of_network: RefIndex<NamespacedName, String>,
}

/// Why `router` does not have port `interface`, if it does not.
pub(super) fn port_problem(
    routers: &BTreeMap<String, PhysicalRouter>,
    router: &str,
    interface: &str,
    what: &str,
) -> Option<String> {
    match routers.get(router) {
        None => Some(format!(
            "{what}PhysicalRouter {router} does not exist: create it (named after its node)"
        )),
        Some(r) if !r.has_interface(interface) => Some(format!(
            "{what}PhysicalRouter {router} has no physical interface {interface} (it lists: {}): add {interface} to its spec.physicalInterfaces",
            list_or_none(r.interface_names().into_iter())
        )),
        Some(_) => None,
    }
}
