//! Lookups every stage shares: routers by name, and what each node reports
//! it holds.

use std::collections::BTreeMap;

use trunkline_model::{ObjectKey, PhysicalRouter, Snapshot};

use super::list_or_none;

/// Lookups shared by the stages.
pub(super) struct Index<'a> {
    pub(super) routers: BTreeMap<&'a str, &'a PhysicalRouter>,
    /// Object -> node -> generation the node holds.
    pub(super) held: BTreeMap<&'a ObjectKey, BTreeMap<&'a str, i64>>,
}

impl<'a> Index<'a> {
    pub(super) fn new(snapshot: &'a Snapshot) -> Self {
        let routers = snapshot
            .physical_routers
            .iter()
            .map(|r| (r.meta.name(), r))
            .collect();
        let mut held: BTreeMap<&ObjectKey, BTreeMap<&str, i64>> = BTreeMap::new();
        for router in &snapshot.physical_routers {
            for object in &router.programmed {
                let generation = held
                    .entry(&object.key)
                    .or_default()
                    .entry(router.meta.name())
                    .or_insert(object.generation);
                // A report listing an object twice: the newest counts.
                *generation = (*generation).max(object.generation);
            }
        }
        Self { routers, held }
    }

    /// Why `router` does not have port `interface`, if it does not.
    pub(super) fn port_problem(&self, router: &str, interface: &str, what: &str) -> Option<String> {
        match self.routers.get(router) {
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
}
