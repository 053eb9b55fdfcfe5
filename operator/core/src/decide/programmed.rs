//! `Programmed`: whether every node that should hold an object (by
//! placement) holds what the object is now; and the per-node state virtual
//! gateways show.
//!
//! A node reports watermarks and exceptions, not a list of everything it
//! holds:
//!
//! ```text
//!  object O (kind K), last changed in a way nodes read at resource version r
//!  (Meta::changed_at), labelled for node N (Meta::nodes)
//!  N reports: programmedThrough[K] = w, exceptions, exceptionsTruncated
//!
//!  O is programmed on N  <=>  O is labelled for N      (N was asked to hold it)
//!                             and w >= r               (N's tables were built
//!                                                       from O as it is, or later)
//!                             and O not in exceptions  (N could hold it)
//!  exceptions truncated    =>  Unknown, never True
//! ```
//!
//! A VMI bound on N is programmed there only once its logical interfaces
//! on N are too (what binds it to a port there).

use std::collections::{BTreeMap, BTreeSet};

use trunkline_api::status::{condition, reason};
use trunkline_model::{Kind, Meta, NodeReport, ObjectKey, PhysicalRouter, ResourceVersion};

use super::list_or_none;
use crate::decision::{ConditionDecision, NodeState, NodeStatus};

/// What every node reports, by node.
#[derive(Debug, Default)]
pub(super) struct Reports {
    nodes: BTreeMap<String, NodeReport>,
}

/// The objects whose standing on one node a new report may change.
#[derive(Debug, Default)]
pub(super) struct Affected {
    /// Every object held by the node (it appeared, went, or its report
    /// became (in)complete).
    pub(super) every: bool,
    /// Objects of a kind that changed at a resource version in
    /// `(low, high]` (`None`: from the start).
    pub(super) ranges: Vec<(Kind, Option<ResourceVersion>, ResourceVersion)>,
    /// Objects that entered or left the exceptions.
    pub(super) keys: BTreeSet<ObjectKey>,
}

impl Reports {
    /// Router `name` went from `old` to `new`: what its report changes.
    pub(super) fn replace(
        &mut self,
        name: &str,
        old: Option<&PhysicalRouter>,
        new: Option<&PhysicalRouter>,
    ) -> Affected {
        let mut affected = Affected::default();
        let (old, new) = (old.map(|r| &r.report), new.map(|r| &r.report));
        if old == new {
            return affected;
        }
        match new {
            Some(report) => self.nodes.insert(name.to_owned(), report.clone()),
            None => self.nodes.remove(name),
        };
        let (Some(old), Some(new)) = (old, new) else {
            affected.every = true;
            return affected;
        };
        if old.truncated != new.truncated {
            affected.every = true;
            return affected;
        }
        let kinds: BTreeSet<&Kind> = old
            .programmed_through
            .keys()
            .chain(new.programmed_through.keys())
            .collect();
        for kind in kinds {
            let (a, b) = (
                old.programmed_through.get(kind),
                new.programmed_through.get(kind),
            );
            if a != b {
                let (low, high) = if a < b { (a, b) } else { (b, a) };
                if let Some(high) = high {
                    affected.ranges.push((*kind, low.cloned(), high.clone()));
                }
            }
        }
        for (key, why) in &old.exceptions {
            if new.exceptions.get(key) != Some(why) {
                affected.keys.insert(key.clone());
            }
        }
        for (key, why) in &new.exceptions {
            if old.exceptions.get(key) != Some(why) {
                affected.keys.insert(key.clone());
            }
        }
        affected
    }

    /// How `node` stands with the object of `meta`.
    fn standing(&self, meta: &Meta, node: &str) -> Standing {
        let Some(report) = self.nodes.get(node) else {
            return Standing::Pending(format!("{node} (no PhysicalRouter {node})"));
        };
        // The message names no resource version, neither the node's nor the
        // object's: it must not change (and be written again) every time
        // the node's moves, nor when a restarted operator reads the object
        // at a newer one. Nor does it tell an object not labelled for the
        // node yet from one labelled and not programmed: the operator labels
        // an object right after writing its status, so that message would
        // change (one more status write per object of a burst) while the
        // node has done nothing (the label is on the object, `kubectl get
        // --show-labels`; a failing label write is logged and counted).
        let not_yet = || Standing::Pending(not_yet(node));
        if !meta.labelled_for(node) {
            return not_yet();
        }
        match (
            report.programmed_through.get(&meta.key.kind),
            &meta.changed_at,
        ) {
            (Some(through), Some(changed)) if through >= changed => {}
            _ => return not_yet(),
        }
        if let Some(why) = report.exceptions.get(&meta.key) {
            return Standing::Refused(format!("{node}: {why}"));
        }
        if report.truncated {
            return Standing::Unknown(format!(
                "{node} (its report lists too many exceptions to tell)"
            ));
        }
        Standing::Programmed
    }
}

/// The message part of an object `node` has not programmed yet. It is the
/// same for an object whose parts (a VMI's logical interfaces) lag behind
/// it on the node: which of them the node installs first in a burst is its
/// own business, and a message telling them apart would change (one more
/// status write per VMI of a burst) while the object stays Pending.
fn not_yet(node: &str) -> String {
    format!("{node} (has not programmed it yet)")
}

/// How one node stands with one object.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Standing {
    Programmed,
    /// Not yet: what it waits for.
    Pending(String),
    /// The node could not hold it: why.
    Refused(String),
    /// The node's report cannot tell.
    Unknown(String),
}

impl Standing {
    fn rank(&self) -> u8 {
        match self {
            Standing::Programmed => 0,
            Standing::Unknown(_) => 1,
            Standing::Pending(_) => 2,
            Standing::Refused(_) => 3,
        }
    }

    /// The worse of the two.
    fn and(self, other: Standing) -> Standing {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// `Programmed` of an object that `nodes` should hold; `nobody` says why
/// no node holds it when `nodes` is empty; `parts` are objects that must
/// be programmed on a node too for this one to count there (a VMI's
/// logical interfaces, with their node).
pub(super) fn programmed_condition(
    reports: &Reports,
    meta: &Meta,
    accepted: bool,
    nodes: &BTreeSet<String>,
    nobody: &str,
    parts: &[(&str, &Meta)],
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
    let mut lagging = Vec::new();
    let mut worst = Standing::Programmed;
    for node in nodes {
        let mut standing = reports.standing(meta, node);
        for (_, part) in parts.iter().filter(|(n, _)| n == node) {
            standing = standing.and(match reports.standing(part, node) {
                Standing::Programmed => Standing::Programmed,
                Standing::Pending(_) => Standing::Pending(not_yet(node)),
                Standing::Refused(why) => Standing::Refused(format!("{} on {why}", part.key)),
                Standing::Unknown(why) => Standing::Unknown(format!("{} on {why}", part.key)),
            });
        }
        match &standing {
            Standing::Programmed => {}
            Standing::Pending(why) | Standing::Refused(why) | Standing::Unknown(why) => {
                lagging.push(why.clone())
            }
        }
        worst = worst.and(standing);
    }
    let lagging = lagging.join("; ");
    match worst {
        Standing::Programmed => ConditionDecision::new(
            condition::PROGRAMMED,
            true,
            reason::OK,
            format!(
                "generation {} is programmed on gateway node(s) {}",
                meta.generation,
                list_or_none(nodes.iter())
            ),
        ),
        Standing::Pending(_) => pending(format!(
            "waiting for gateway node(s) to program generation {}: {lagging}",
            meta.generation
        )),
        Standing::Refused(_) => ConditionDecision::new(
            condition::PROGRAMMED,
            false,
            reason::NOT_PROGRAMMED,
            format!(
                "gateway node(s) could not program generation {}: {lagging}",
                meta.generation
            ),
        ),
        Standing::Unknown(_) => ConditionDecision::unknown(
            condition::PROGRAMMED,
            reason::REPORT_INCOMPLETE,
            format!(
                "cannot tell whether generation {} is programmed: {lagging}",
                meta.generation
            ),
        ),
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
    let (state, message) = match reports.standing(meta, node) {
        Standing::Programmed => (NodeState::Programmed, None),
        Standing::Pending(why) | Standing::Unknown(why) => (NodeState::Pending, Some(why)),
        Standing::Refused(why) => (NodeState::Failed, Some(why)),
    };
    NodeStatus {
        node: node.to_owned(),
        state,
        message,
    }
}
