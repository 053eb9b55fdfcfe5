//! Network policies: ordered rules connecting virtual networks of one
//! namespace (issue 18's second kind), and which networks they connect.
//!
//! ```text
//!   VirtualNetwork.spec.networkPolicies ──> policies of its namespace, in order
//!   VirtualNetworkPolicy { rules: [Rule { action, protocol, ports, source, destination, both_ways }] }
//!
//!   connections(networks, policies):
//!     red and blue are connected  <=>  some policy named by both has a rule between them
//!     link red -> blue: the policies both name, in red's order, each with its rules
//!                       for flows opened from red (source red, or both ways)
//! ```
//!
//! A rule naming a network that does not exist, or that does not name the
//! policy, connects nothing: [`VirtualNetworkPolicy::problems`] says so
//! (the operator's `Accepted` condition).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use trunkline_api::security_group::RuleProtocol;
use trunkline_api::virtual_network_policy::{NetworkPolicyAction, RuleDirection};

use crate::from_api;
use crate::object::{Kind, Meta, NamespacedName};
use crate::security_group::Protocol;
use crate::virtual_network::VirtualNetwork;

/// A network policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualNetworkPolicy {
    /// Identity (namespaced).
    pub meta: Meta,
    /// Its rules, in order.
    pub rules: Vec<NetworkRule>,
}

/// What a rule does with the flows it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// The flow crosses.
    Allow,
    /// The flow is dropped.
    Deny,
    /// The next policy the sending network names decides.
    Pass,
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NetworkRule {
    /// What it does.
    pub action: Action,
    /// The protocol.
    pub protocol: Protocol,
    /// Destination ports (TCP and UDP); `None`: every port.
    pub ports: Option<RangeInclusive<u16>>,
    /// The network opening the flows (a name in the policy's namespace).
    pub source: String,
    /// The network they go to.
    pub destination: String,
    /// Whether flows opened from `destination` toward `source` match too.
    pub both_ways: bool,
}

impl NetworkRule {
    /// Whether the rule is about flows opened from network `from` toward
    /// network `to` (names in the policy's namespace).
    pub fn applies(&self, from: &str, to: &str) -> bool {
        (self.source == from && self.destination == to)
            || (self.both_ways && self.source == to && self.destination == from)
    }

    /// Whether the rule is between `a` and `b`, either way.
    pub fn between(&self, a: &str, b: &str) -> bool {
        (self.source == a && self.destination == b) || (self.source == b && self.destination == a)
    }
}

/// Why a policy connects less than its rules say.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// Rule `rule` names network `network`, which does not exist in the
    /// policy's namespace.
    NetworkNotFound {
        /// The rule's index.
        rule: usize,
        /// The network's name.
        network: String,
    },
    /// Rule `rule` names network `network`, which does not name the
    /// policy in `spec.networkPolicies`.
    NotAttached {
        /// The rule's index.
        rule: usize,
        /// The network's name.
        network: String,
    },
}

impl Problem {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::NetworkNotFound { .. } => "NetworkNotFound",
            Problem::NotAttached { .. } => "NotAttached",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NetworkNotFound { rule, network } => write!(
                f,
                "spec.rules[{rule}] names VirtualNetwork {network}, which does not exist in this namespace: create it, or name an existing network"
            ),
            Problem::NotAttached { rule, network } => write!(
                f,
                "spec.rules[{rule}] names VirtualNetwork {network}, which does not name this policy: add the policy to the network's spec.networkPolicies"
            ),
        }
    }
}

impl VirtualNetworkPolicy {
    /// `namespace/name` of the policy.
    pub fn name(&self) -> NamespacedName {
        self.meta.namespaced_name()
    }

    /// Converts the API object (see [`crate::from_api`]).
    pub fn from_api(policy: &trunkline_api::VirtualNetworkPolicy) -> Self {
        let rules = policy
            .spec
            .rules
            .iter()
            .map(|r| NetworkRule {
                action: match r.action {
                    NetworkPolicyAction::Allow => Action::Allow,
                    NetworkPolicyAction::Deny => Action::Deny,
                    NetworkPolicyAction::Pass => Action::Pass,
                },
                protocol: match r.protocol {
                    RuleProtocol::Any => Protocol::Any,
                    RuleProtocol::Tcp => Protocol::Tcp,
                    RuleProtocol::Udp => Protocol::Udp,
                    RuleProtocol::Icmp => Protocol::Icmp,
                },
                ports: r.ports.map(|p| p.min..=p.max),
                source: r.source.as_str().to_owned(),
                destination: r.destination.as_str().to_owned(),
                both_ways: r.direction == RuleDirection::Both,
            })
            .collect();
        let conditions = policy.status.as_ref().map(|s| &s.conditions[..]);
        VirtualNetworkPolicy {
            meta: from_api::meta(
                Kind::VirtualNetworkPolicy,
                &policy.metadata,
                conditions.unwrap_or_default(),
            ),
            rules,
        }
    }

    /// What its rules name that connects nothing, given every network.
    pub fn problems(&self, networks: &[VirtualNetwork]) -> Vec<Problem> {
        let namespace = &self.meta.namespaced_name().namespace;
        let mut out = Vec::new();
        for (rule, r) in self.rules.iter().enumerate() {
            for network in [&r.source, &r.destination] {
                let found = networks.iter().find(|n| {
                    let name = n.meta.namespaced_name();
                    name.namespace == *namespace && name.name == *network
                });
                match found {
                    None => out.push(Problem::NetworkNotFound {
                        rule,
                        network: network.clone(),
                    }),
                    Some(n)
                        if !n
                            .network_policies
                            .contains(&self.meta.namespaced_name().name) =>
                    {
                        out.push(Problem::NotAttached {
                            rule,
                            network: network.clone(),
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The rules of one policy for one direction of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPolicy {
    /// The policy.
    pub policy: NamespacedName,
    /// Its rules for flows opened in this direction, with their index in
    /// `spec.rules`, in order.
    pub rules: Vec<(usize, NetworkRule)>,
}

/// One direction of a connection between two networks of a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The network opening the flows.
    pub from: NamespacedName,
    /// The network they go to (whose VMIs' routes `from` gets).
    pub to: NamespacedName,
    /// The policies both name, in `from`'s order, with their rules for
    /// this direction (possibly none: then no flow opens this way).
    pub policies: Vec<LinkPolicy>,
}

/// Every direction of every connection: for each ordered pair of distinct
/// networks of a namespace that both name a policy with a rule between
/// them. Sorted by (from, to). Cross-namespace connections do not exist.
pub fn links(networks: &[VirtualNetwork], policies: &[VirtualNetworkPolicy]) -> Vec<Link> {
    let by_name: BTreeMap<NamespacedName, &VirtualNetworkPolicy> =
        policies.iter().map(|p| (p.name(), p)).collect();
    let mut out = Vec::new();
    for from in networks {
        let from_name = from.meta.namespaced_name();
        for to in networks {
            let to_name = to.meta.namespaced_name();
            if from_name.namespace != to_name.namespace || from_name == to_name {
                continue;
            }
            let shared: Vec<&VirtualNetworkPolicy> = from
                .network_policies
                .iter()
                .filter(|p| to.network_policies.contains(p))
                .filter_map(|p| {
                    by_name
                        .get(&NamespacedName::new(&from_name.namespace, p))
                        .copied()
                })
                .collect();
            let connected = shared.iter().any(|p| {
                p.rules
                    .iter()
                    .any(|r| r.between(&from_name.name, &to_name.name))
            });
            if !connected {
                continue;
            }
            out.push(Link {
                from: from_name.clone(),
                to: to_name.clone(),
                policies: shared
                    .iter()
                    .map(|p| LinkPolicy {
                        policy: p.name(),
                        rules: p
                            .rules
                            .iter()
                            .enumerate()
                            .filter(|(_, r)| r.applies(&from_name.name, &to_name.name))
                            .map(|(i, r)| (i, r.clone()))
                            .collect(),
                    })
                    .collect(),
            });
        }
    }
    out.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn network(name: &str, policies: &[&str]) -> VirtualNetwork {
        let api: trunkline_api::VirtualNetwork = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": name, "namespace": "t1"},
            "spec": {"networkPolicies": policies},
        }))
        .unwrap();
        crate::from_api::virtual_network(&api)
    }

    fn policy(name: &str, rules: serde_json::Value) -> VirtualNetworkPolicy {
        let api: trunkline_api::VirtualNetworkPolicy = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetworkPolicy",
            "metadata": {"name": name, "namespace": "t1", "generation": 1},
            "spec": {"rules": rules},
        }))
        .unwrap();
        crate::from_api::virtual_network_policy(&api)
    }

    fn ssh() -> VirtualNetworkPolicy {
        policy(
            "ssh",
            json!([{"action": "Allow", "protocol": "TCP", "ports": {"min": 22, "max": 22},
                    "source": "red", "destination": "blue"}]),
        )
    }

    #[test]
    fn a_policy_reads_its_rules() {
        let p = policy(
            "p",
            json!([
                {"action": "Deny", "protocol": "UDP", "ports": {"min": 53, "max": 54},
                 "source": "red", "destination": "blue", "direction": "OneWay"},
                {"action": "Pass", "source": "blue", "destination": "red"},
            ]),
        );
        assert_eq!(p.name(), NamespacedName::new("t1", "p"));
        assert_eq!(
            p.rules[0],
            NetworkRule {
                action: Action::Deny,
                protocol: Protocol::Udp,
                ports: Some(53..=54),
                source: "red".into(),
                destination: "blue".into(),
                both_ways: false,
            }
        );
        assert_eq!(p.rules[1].action, Action::Pass);
        assert!(p.rules[1].both_ways);
        assert!(p.rules[1].applies("red", "blue"));
        assert!(!p.rules[0].applies("blue", "red"));
    }

    #[test]
    fn two_networks_naming_the_policy_are_linked_both_ways() {
        let networks = [network("red", &["ssh"]), network("blue", &["ssh"])];
        let links = links(&networks, &[ssh()]);
        assert_eq!(links.len(), 2);
        let (to_red, to_blue) = (&links[0], &links[1]);
        assert_eq!(to_blue.from, NamespacedName::new("t1", "red"));
        assert_eq!(to_blue.to, NamespacedName::new("t1", "blue"));
        assert_eq!(to_blue.policies[0].policy, NamespacedName::new("t1", "ssh"));
        assert_eq!(to_blue.policies[0].rules.len(), 1);
        // Both ways by default: blue -> red has the rule too.
        assert_eq!(to_red.from, NamespacedName::new("t1", "blue"));
        assert_eq!(to_red.policies[0].rules.len(), 1);
        assert!(ssh().problems(&networks).is_empty());
    }

    #[test]
    fn no_link_unless_both_networks_name_the_policy() {
        // blue does not name it: no routes leak, and the policy says why.
        let networks = [network("red", &["ssh"]), network("blue", &[])];
        assert!(links(&networks, &[ssh()]).is_empty());
        assert_eq!(
            ssh().problems(&networks),
            [Problem::NotAttached {
                rule: 0,
                network: "blue".into()
            }]
        );
        // A missing network.
        let alone = [network("red", &["ssh"])];
        assert!(links(&alone, &[ssh()]).is_empty());
        assert_eq!(ssh().problems(&alone)[0].reason(), "NetworkNotFound");
        // Both name a policy that does not exist: nothing.
        let networks = [network("red", &["ssh"]), network("blue", &["ssh"])];
        assert!(links(&networks, &[]).is_empty());
        // Both name a policy whose rules are about other networks: nothing.
        let other = policy(
            "ssh",
            json!([{"action": "Allow", "source": "red", "destination": "green"}]),
        );
        assert!(links(&networks, &[other]).is_empty());
    }

    #[test]
    fn a_one_way_rule_links_both_networks_but_rules_only_one_direction() {
        let one_way = policy(
            "ssh",
            json!([{"action": "Allow", "source": "red", "destination": "blue", "direction": "OneWay"}]),
        );
        let networks = [network("red", &["ssh"]), network("blue", &["ssh"])];
        let links = links(&networks, &[one_way]);
        assert_eq!(links.len(), 2, "routes both ways: replies must come back");
        assert!(
            links[0].policies[0].rules.is_empty(),
            "blue -> red opens nothing"
        );
        assert_eq!(links[1].policies[0].rules.len(), 1);
    }

    #[test]
    fn policies_come_in_the_sending_networks_order() {
        let a = policy(
            "a",
            json!([{"action": "Pass", "source": "red", "destination": "blue"}]),
        );
        let b = policy(
            "b",
            json!([{"action": "Allow", "source": "red", "destination": "blue"}]),
        );
        let networks = [network("red", &["b", "a"]), network("blue", &["a", "b"])];
        let links = links(&networks, &[a, b]);
        let names = |l: &Link| -> Vec<String> {
            l.policies.iter().map(|p| p.policy.name.clone()).collect()
        };
        assert_eq!(names(&links[1]), ["b", "a"], "red's order");
        assert_eq!(names(&links[0]), ["a", "b"], "blue's order");
    }
}
