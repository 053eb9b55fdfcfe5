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
    map: BTreeMap<K, Referrers<V>>,
}

/// The objects referring to one key. Most keys have one (a VMI has its
/// one logical interface): held inline, not in a B-tree set, which
/// allocates a node for eleven values (~300 bytes for one name); at 16K
/// VMIs that was megabytes.
#[derive(Debug)]
enum Referrers<V: Ord> {
    One(V),
    Many(BTreeSet<V>),
}

impl<V: Ord> Referrers<V> {
    /// Adds `v`.
    fn insert(&mut self, v: V) {
        match self {
            Referrers::One(one) if *one == v => {}
            Referrers::One(_) => {
                let Referrers::One(one) = std::mem::replace(self, Referrers::Many(BTreeSet::new()))
                else {
                    unreachable!("matched One above")
                };
                *self = Referrers::Many(BTreeSet::from([one, v]));
            }
            Referrers::Many(set) => {
                set.insert(v);
            }
        }
    }

    /// Removes `v`; whether none is left.
    fn remove(&mut self, v: &V) -> bool {
        match self {
            Referrers::One(one) => one == v,
            Referrers::Many(set) => {
                set.remove(v);
                set.is_empty()
            }
        }
    }

    /// Sorted.
    fn iter(&self) -> impl Iterator<Item = &V> {
        let (one, many) = match self {
            Referrers::One(one) => (Some(one), None),
            Referrers::Many(set) => (None, Some(set.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
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
            if let Some(referrers) = self.map.get_mut(k)
                && referrers.remove(v)
            {
                self.map.remove(k);
            }
        }
        for k in new {
            match self.map.get_mut(k) {
                Some(referrers) => referrers.insert(v.clone()),
                None => {
                    self.map.insert(k.clone(), Referrers::One(v.clone()));
                }
            }
        }
    }

    /// Who refers to `k`, sorted.
    pub(super) fn get(&self, k: &K) -> impl Iterator<Item = &V> {
        self.map.get(k).into_iter().flat_map(Referrers::iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referrers(index: &RefIndex<&'static str, u32>, k: &'static str) -> Vec<u32> {
        index.get(&k).copied().collect()
    }

    #[test]
    fn referrers_come_and_go_sorted_whether_one_or_many() {
        let mut index = RefIndex::<&str, u32>::default();
        index.replace(&3, [], [&"a"]);
        assert_eq!(referrers(&index, "a"), [3]);
        index.replace(&3, [], [&"a"]);
        assert_eq!(referrers(&index, "a"), [3], "no duplicate");
        index.replace(&1, [], [&"a"]);
        index.replace(&2, [], [&"a", &"b"]);
        assert_eq!(referrers(&index, "a"), [1, 2, 3]);
        assert_eq!(referrers(&index, "b"), [2]);
        index.replace(&2, [&"a", &"b"], [&"c"]);
        assert_eq!(referrers(&index, "a"), [1, 3]);
        assert!(referrers(&index, "b").is_empty());
        assert!(!index.map.contains_key("b"), "an empty key is dropped");
        index.replace(&1, [&"a"], []);
        index.replace(&3, [&"a"], []);
        assert!(!index.map.contains_key("a"));
        // Removing what is not there changes nothing.
        index.replace(&9, [&"c"], []);
        assert_eq!(referrers(&index, "c"), [2]);
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
