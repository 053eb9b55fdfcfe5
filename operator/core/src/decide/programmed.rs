//! `Programmed`: whether every node that should hold an object (by
//! placement) reports it at the object's current generation; and the
//! per-node state virtual gateways show.

use std::collections::BTreeSet;

use trunkline_api::status::{condition, reason};
use trunkline_model::Meta;

use super::index::Index;
use super::list_or_none;
use crate::decision::{ConditionDecision, NodeState, NodeStatus};

/// `Programmed` of an object that `nodes` should hold; `nobody` says why
/// no node holds it when `nodes` is empty.
pub(super) fn programmed_condition(
    index: &Index<'_>,
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
    let held = index.held.get(&meta.key);
    let lagging: Vec<String> = nodes
        .iter()
        .filter_map(|node| match held.and_then(|h| h.get(node.as_str())) {
            Some(g) if *g == meta.generation => None,
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
pub(super) fn node_status(index: &Index<'_>, meta: &Meta, node: &str) -> NodeStatus {
    if !index.routers.contains_key(node) {
        return NodeStatus {
            node: node.to_owned(),
            state: NodeState::Failed,
            message: Some(format!("no PhysicalRouter {node}")),
        };
    }
    match index.held.get(&meta.key).and_then(|h| h.get(node)) {
        Some(g) if *g == meta.generation => NodeStatus {
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
