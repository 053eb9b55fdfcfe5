//! VirtualNetworkPolicies and the administrator's
//! ClusterVirtualNetworkPolicies: whether the networks their rules name
//! exist (and name them), how many networks name each, and whether the
//! nodes holding two networks it connects run it as it is now.
//!
//! ```text
//!   VirtualNetwork.spec.networkPolicies ──names──> VirtualNetworkPolicy (same namespace)
//!   rule.source / rule.destination ──name──> VirtualNetwork (same namespace;
//!                                             a cluster policy: namespace/name, any namespace)
//!   missing, or not naming a namespaced policy: the rule connects nothing,
//!     Ready=False NetworkNotFound / NotAttached (still Accepted)
//!   Programmed: every node hosting either network of a connection it makes
//!     reports tables built from it (watermarks and exceptions)
//! ```

use std::collections::{BTreeMap, BTreeSet};

use trunkline_api::status::{condition, reason};
use trunkline_model::virtual_network_policy::{Problem, links};
use trunkline_model::{NamespacedName, Placement, VirtualNetwork, VirtualNetworkPolicy};

use super::decision;
use super::programmed::{Reports, programmed_condition};
use crate::decision::{ConditionDecision, Decision, DerivedStatus, Findings};

/// The networks and policies a decision about `policy` reads: the
/// networks of the namespaces it can reach (its own; a cluster policy's:
/// those its rules name) and those every cluster policy names, with every
/// policy of those namespaces and every cluster policy. Every link
/// `policy` takes part in is between two of these networks, and every
/// policy on such a link is among these.
fn scope(
    policy: &VirtualNetworkPolicy,
    networks: &BTreeMap<NamespacedName, VirtualNetwork>,
    policies: &BTreeMap<NamespacedName, VirtualNetworkPolicy>,
) -> (Vec<VirtualNetwork>, Vec<VirtualNetworkPolicy>) {
    let mut namespaces: BTreeSet<&str> = BTreeSet::new();
    let mut named: BTreeSet<&NamespacedName> = BTreeSet::new();
    if policy.is_cluster() {
        namespaces.extend(policy.networks().into_iter().map(|n| n.namespace.as_str()));
    } else {
        namespaces.insert(policy.meta.namespace());
    }
    for p in policies.values().filter(|p| p.is_cluster()) {
        named.extend(p.networks());
    }
    let networks = networks
        .iter()
        .filter(|(n, _)| namespaces.contains(n.namespace.as_str()) || named.contains(n))
        .map(|(_, v)| v.clone())
        .collect();
    let policies = policies
        .iter()
        .filter(|(n, _)| n.namespace.is_empty() || namespaces.contains(n.namespace.as_str()))
        .map(|(_, p)| p.clone())
        .collect();
    (networks, policies)
}

/// The nodes that hold either network of a connection `policy` takes
/// part in (the nodes that run its rules: the sender's decides a flow's
/// first packet, the receiver's again, across nodes).
pub(super) fn nodes_of(
    policy: &VirtualNetworkPolicy,
    networks: &BTreeMap<NamespacedName, VirtualNetwork>,
    policies: &BTreeMap<NamespacedName, VirtualNetworkPolicy>,
    placement: &Placement,
) -> BTreeSet<String> {
    let name = policy.name();
    let (networks, policies) = scope(policy, networks, policies);
    let mut nodes = BTreeSet::new();
    for link in links(&networks, &policies) {
        if !link.policies.iter().any(|p| p.policy == name) {
            continue;
        }
        let (from, to) = (
            placement.network_nodes(&link.from),
            placement.network_nodes(&link.to),
        );
        nodes.extend(from.union(to).cloned());
    }
    nodes
}

/// Every network a policy connects, with the networks it is connected to
/// (both ways): what the operator labels across nodes (a network's VMIs
/// go to the nodes of the networks connected to it).
pub(super) fn connections(
    networks: &BTreeMap<NamespacedName, VirtualNetwork>,
    policies: &BTreeMap<NamespacedName, VirtualNetworkPolicy>,
) -> BTreeMap<NamespacedName, BTreeSet<NamespacedName>> {
    let networks: Vec<VirtualNetwork> = networks.values().cloned().collect();
    let policies: Vec<VirtualNetworkPolicy> = policies.values().cloned().collect();
    let mut out: BTreeMap<NamespacedName, BTreeSet<NamespacedName>> = BTreeMap::new();
    for link in links(&networks, &policies) {
        out.entry(link.from.clone())
            .or_default()
            .insert(link.to.clone());
        out.entry(link.to).or_default().insert(link.from);
    }
    out
}

/// The other cluster policies of `policy`'s priority with rules on a
/// connection (either direction) on which `policy` has rules too: on such
/// a link their order is their names' (empty for a namespaced policy).
pub(super) fn ties_of(
    policy: &VirtualNetworkPolicy,
    networks: &BTreeMap<NamespacedName, VirtualNetwork>,
    policies: &BTreeMap<NamespacedName, VirtualNetworkPolicy>,
) -> BTreeSet<NamespacedName> {
    let mut ties = BTreeSet::new();
    if !policy.is_cluster() {
        return ties;
    }
    let name = policy.name();
    let (networks, scoped) = scope(policy, networks, policies);
    let has_rules = |link: &trunkline_model::virtual_network_policy::Link, p: &NamespacedName| {
        link.policies
            .iter()
            .any(|l| l.policy == *p && !l.rules.is_empty())
    };
    let links = links(&networks, &scoped);
    for (i, link) in links.iter().enumerate() {
        // Rules of this policy in either direction of the connection.
        let back = links
            .iter()
            .skip(i + 1)
            .chain(links.iter().take(i))
            .find(|l| l.from == link.to && l.to == link.from);
        let ours = has_rules(link, &name) || back.is_some_and(|b| has_rules(b, &name));
        if !ours {
            continue;
        }
        for other in link.policies.iter().filter(|l| {
            l.policy != name
                && l.policy.namespace.is_empty()
                && policies.get(&l.policy).map(|p| p.priority) == Some(policy.priority)
        }) {
            if has_rules(link, &other.policy) || back.is_some_and(|b| has_rules(b, &other.policy)) {
                ties.insert(other.policy.clone());
            }
        }
    }
    ties
}

/// A policy's decision: the networks its rules name exist (and, for a
/// namespaced policy, name it); how many networks name it (a cluster
/// policy: how many of those it names exist); whether `nodes` run it.
pub(super) fn decision_of(
    policy: &VirtualNetworkPolicy,
    networks: &BTreeMap<NamespacedName, VirtualNetwork>,
    nodes: &BTreeSet<String>,
    ties: &BTreeSet<NamespacedName>,
    reports: &Reports,
) -> Decision {
    let mut findings = Findings::default();
    let name = policy.name();
    let named: Vec<VirtualNetwork> = policy
        .networks()
        .into_iter()
        .filter_map(|n| networks.get(n).cloned())
        .collect();
    for problem in policy.problems(&named) {
        let reason = match problem {
            Problem::NetworkNotFound { .. } => reason::NETWORK_NOT_FOUND,
            Problem::NotAttached { .. } => reason::NOT_ATTACHED,
        };
        findings.not_applied_because(reason, problem.to_string());
    }
    let network_count = if policy.is_cluster() {
        named.len()
    } else {
        networks
            .iter()
            .filter(|(n, v)| {
                n.namespace == name.namespace && v.network_policies.contains(&name.name)
            })
            .count()
    };
    let derived = DerivedStatus::VirtualNetworkPolicy {
        network_count: u32::try_from(network_count).unwrap_or(u32::MAX),
    };
    let programmed = if findings.accepted() && nodes.is_empty() {
        ConditionDecision::new(
            condition::PROGRAMMED,
            true,
            reason::OK,
            "it connects no two networks held by gateway nodes: nothing to program".to_owned(),
        )
    } else {
        let mut c = programmed_condition(
            reports,
            &policy.meta,
            findings.accepted(),
            nodes,
            "it connects no two networks held by gateway nodes",
            &[],
        );
        if c.status {
            c.message = format!(
                "generation {} is programmed on gateway node(s) {}",
                policy.meta.generation,
                super::list_or_none(nodes.iter())
            );
        }
        c
    };
    let mut decided = decision(&policy.meta, &findings, Some(programmed), derived);
    if policy.is_cluster() {
        decided.conditions.push(conflicted(policy, ties));
    }
    decided
}

/// A cluster policy's `Conflicted`: True (`PriorityTie`) when another of
/// its priority shares a connection with it, naming them and the order.
fn conflicted(policy: &VirtualNetworkPolicy, ties: &BTreeSet<NamespacedName>) -> ConditionDecision {
    let priority = policy.priority.unwrap_or_default();
    if ties.is_empty() {
        return ConditionDecision::new(
            condition::CONFLICTED,
            false,
            reason::OK,
            format!(
                "no other ClusterVirtualNetworkPolicy of priority {priority} has rules on a connection it has rules on"
            ),
        );
    }
    let names: Vec<&str> = ties.iter().map(|n| n.name.as_str()).collect();
    let mut order: Vec<&str> = names.clone();
    order.push(policy.meta.name());
    order.sort_unstable();
    ConditionDecision::new(
        condition::CONFLICTED,
        true,
        reason::PRIORITY_TIE,
        format!(
            "ClusterVirtualNetworkPolicy {} has priority {priority} too and rules on a connection it has rules on: their rules are evaluated in name order ({}); give them different priorities to choose the order",
            names.join(", "),
            order.join(", then ")
        ),
    )
}
