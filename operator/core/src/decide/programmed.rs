//! `Programmed`: whether every node that should hold an object (by
//! placement) reports it at the object's current generation; and the
//! per-node state virtual gateways show.

use std::collections::{BTreeMap, BTreeSet};

use trunkline_api::status::{condition, reason};
use trunkline_model::{Meta, ObjectKey, PhysicalRouter};

use super::list_or_none;
use crate::decision::{ConditionDecision, NodeState, NodeStatus};

/// What the nodes report they hold: object -> node -> generation.
#[derive(Debug, Default)]
pub(super) struct Reports {
    held: BTreeMap<ObjectKey, BTreeMap<String, i64>>,
}

/// What one router's report says: object -> generation (a report listing
/// an object twice: the newest counts).
fn report_of(router: Option<&PhysicalRouter>) -> BTreeMap<&ObjectKey, i64> {
    let mut held: BTreeMap<&ObjectKey, i64> = BTreeMap::new();
    for object in router.into_iter().flat_map(|r| &r.programmed) {
        let generation = held.entry(&object.key).or_insert(object.generation);
        *generation = (*generation).max(object.generation);
    }
    held
}

impl Reports {
    /// Router `name`'s report went from `old` to `new`; returns the
    /// objects whose standing on that node changed.
    pub(super) fn replace(
        &mut self,
        name: &str,
        old: Option<&PhysicalRouter>,
        new: Option<&PhysicalRouter>,
    ) -> BTreeSet<ObjectKey> {
        let (old, new) = (report_of(old), report_of(new));
        let mut changed = BTreeSet::new();
        for (key, generation) in &old {
            if new.get(key) != Some(generation) {
                changed.insert((*key).clone());
                if let Some(nodes) = self.held.get_mut(*key) {
                    nodes.remove(name);
                    if nodes.is_empty() {
                        self.held.remove(*key);
                    }
                }
            }
        }
        for (key, generation) in &new {
            if old.get(key) != Some(generation) {
                changed.insert((*key).clone());
                self.held
                    .entry((*key).clone())
                    .or_default()
                    .insert(name.to_owned(), *generation);
            }
        }
        changed
    }

    fn held(&self, key: &ObjectKey, node: &str) -> Option<i64> {
        self.held.get(key).and_then(|h| h.get(node)).copied()
    }
}

/// `Programmed` of an object that `nodes` should hold; `nobody` says why
/// no node holds it when `nodes` is empty.
pub(super) fn programmed_condition(
    reports: &Reports,
    meta: &Meta,
    accepted: bool,
    nodes: &BTreeSet<String>,
    nobody: &str,
) -> ConditionDecision {
    let pending = |message: String| {
        ConditionDecision::new(condition::PROGRAMMED, false, reason::PENDING, message)
    };
    if !accepted {
        return pending(
            "not programmed: a gateway node programs only accepted objects (see Accepted)"
                .to_owned(),
        );
    }
    if nodes.is_empty() {
        return pending(format!("not programmed: {nobody}"));
    }
    let lagging: Vec<String> = nodes
        .iter()
        .filter_map(|node| match reports.held(&meta.key, node) {
            Some(g) if g == meta.generation => None,
            Some(g) => Some(format!("{node} (holds generation {g})")),
            None => Some(format!("{node} (does not hold it)")),
        })
        .collect();
    if lagging.is_empty() {
        ConditionDecision::new(
            condition::PROGRAMMED,
            true,
            reason::OK,
            format!(
                "generation {} is programmed on gateway node(s) {}",
                meta.generation,
                list_or_none(nodes.iter())
            ),
        )
    } else {
        pending(format!(
            "waiting for gateway node(s) {} to program generation {}: their node dataplane reports it in its PhysicalRouter's status.programmed",
            lagging.join(", "),
            meta.generation
        ))
    }
}

/// How `node` stands with the object of `meta`.
pub(super) fn node_status(
    reports: &Reports,
    routers: &BTreeMap<String, PhysicalRouter>,
    meta: &Meta,
    node: &str,
) -> NodeStatus {
    if !routers.contains_key(node) {
        return NodeStatus {
            node: node.to_owned(),
            state: NodeState::Failed,
            message: Some(format!("no PhysicalRouter {node}")),
        };
    }
    match reports.held(&meta.key, node) {
        Some(g) if g == meta.generation => NodeStatus {
            node: node.to_owned(),
            state: NodeState::Programmed,
            message: None,
        },
        Some(g) => NodeStatus {
            node: node.to_owned(),
            state: NodeState::Pending,
            message: Some(format!("holds generation {g}, not {}", meta.generation)),
        },
        None => NodeStatus {
            node: node.to_owned(),
            state: NodeState::Pending,
            message: Some("not reported by the node dataplane yet".to_owned()),
        },
    }
}
