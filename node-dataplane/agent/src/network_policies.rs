//! The network-policy links of this node's networks, from the domain
//! model into the pipeline's configuration: pure, tested on plain objects.
//!
//! ```text
//!  networks and (Cluster)VirtualNetworkPolicies labelled for this node (the
//!  operator labels a policy for the nodes holding either network of a connection)
//!     --trunkline_model::virtual_network_policy::links-->  Link { from, to, policies }
//!     keep the links with a network this node holds (NodeConfig.networks)
//!  ==> trunkline_pipeline::network_policy::LinkConfig, in NodeConfig.network_links
//! ```
//!
//! The pipeline gives each link's `from` network the host routes of the
//! `to` network's VMIs, on this node and on others, and decides what
//! crosses by the link's rules, as the sender and as the receiver.

use std::borrow::Borrow;

use trunkline_model::virtual_network_policy::{Action, links};
use trunkline_model::{Protocol, VirtualNetwork, VirtualNetworkPolicy};
use trunkline_pipeline::NodeConfig;
use trunkline_pipeline::network_policy::{LinkConfig, NetworkAction, NetworkRule, PolicyRules};
use trunkline_pipeline::policy::{PortRange, RuleProtocol};

/// The links with a network `config` holds, as the pipeline takes them:
/// a held `from` gets routes into `to` (on this node or through a tunnel,
/// `desired::linked_vmis`), a held `to` decides what comes from `from`.
pub fn links_of(
    config: &NodeConfig,
    networks: &[impl Borrow<VirtualNetwork>],
    policies: &[impl Borrow<VirtualNetworkPolicy>],
) -> Vec<LinkConfig> {
    let held = |key: &str| config.networks.iter().any(|n| n.key == key);
    links(networks, policies)
        .into_iter()
        .map(|link| LinkConfig {
            from: link.from.to_string(),
            to: link.to.to_string(),
            policies: link
                .policies
                .iter()
                .map(|p| PolicyRules {
                    policy: p.label(),
                    rules: p
                        .rules
                        .iter()
                        .map(|(index, r)| NetworkRule {
                            index: u16::try_from(*index).unwrap_or(u16::MAX),
                            action: match r.action {
                                Action::Allow => NetworkAction::Allow,
                                Action::Deny => NetworkAction::Deny,
                                Action::Pass => NetworkAction::Pass,
                            },
                            protocol: match r.protocol {
                                Protocol::Any => RuleProtocol::Any,
                                Protocol::Tcp => RuleProtocol::Tcp,
                                Protocol::Udp => RuleProtocol::Udp,
                                Protocol::Icmp => RuleProtocol::Icmp,
                            },
                            ports: r.ports.as_ref().map(|p| PortRange {
                                min: *p.start(),
                                max: *p.end(),
                            }),
                        })
                        .collect(),
                })
                .collect(),
        })
        .filter(|l| held(&l.from) || held(&l.to))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trunkline_pipeline::config::NetworkConfig;

    fn network(name: &str, policies: &[&str]) -> VirtualNetwork {
        let api: trunkline_api::VirtualNetwork = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": name, "namespace": "t1"},
            "spec": {"networkPolicies": policies},
        }))
        .unwrap();
        trunkline_model::from_api::virtual_network(&api)
    }

    fn ssh() -> VirtualNetworkPolicy {
        let api: trunkline_api::VirtualNetworkPolicy = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetworkPolicy",
            "metadata": {"name": "ssh", "namespace": "t1"},
            "spec": {"rules": [
                {"action": "Deny", "protocol": "TCP", "ports": {"min": 23, "max": 23},
                 "source": "red", "destination": "blue"},
                {"action": "Allow", "protocol": "TCP", "ports": {"min": 22, "max": 22},
                 "source": "red", "destination": "blue"},
            ]},
        }))
        .unwrap();
        trunkline_model::from_api::virtual_network_policy(&api)
    }

    fn holding(keys: &[&str]) -> NodeConfig {
        NodeConfig {
            networks: keys
                .iter()
                .map(|k| NetworkConfig {
                    key: (*k).into(),
                    ..Default::default()
                })
                .collect(),
            ..NodeConfig::default()
        }
    }

    #[test]
    fn links_between_held_networks_with_the_rules_in_order() {
        let networks = [network("red", &["ssh"]), network("blue", &["ssh"])];
        let links = links_of(&holding(&["t1/red", "t1/blue"]), &networks, &[ssh()]);
        assert_eq!(links.len(), 2);
        let to_blue = links.iter().find(|l| l.from == "t1/red").unwrap();
        assert_eq!(to_blue.to, "t1/blue");
        assert_eq!(to_blue.policies[0].policy, "t1/ssh");
        let rules = &to_blue.policies[0].rules;
        assert_eq!(rules[0].index, 0);
        assert_eq!(rules[0].action, NetworkAction::Deny);
        assert_eq!(rules[1].index, 1);
        assert_eq!(rules[1].ports, Some(PortRange { min: 22, max: 22 }));
        assert_eq!(
            to_blue.evaluate(false, 6, 22),
            trunkline_pipeline::network_policy::LinkVerdict::Allowed(0, 1)
        );
    }

    #[test]
    fn links_with_one_network_held_are_kept_both_ways() {
        let networks = [network("red", &["ssh"]), network("blue", &["ssh"])];
        let links = links_of(&holding(&["t1/red"]), &networks, &[ssh()]);
        let mut ends: Vec<_> = links.iter().map(|l| (&*l.from, &*l.to)).collect();
        ends.sort();
        assert_eq!(ends, [("t1/blue", "t1/red"), ("t1/red", "t1/blue")]);
        assert!(links_of(&holding(&["t1/green"]), &networks, &[ssh()]).is_empty());
    }

    #[test]
    fn an_administrators_policy_links_networks_of_two_namespaces() {
        let red = network("red", &[]);
        let api: trunkline_api::VirtualNetwork = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": "blue", "namespace": "t2"},
            "spec": {},
        }))
        .unwrap();
        let blue = trunkline_model::from_api::virtual_network(&api);
        let api: trunkline_api::ClusterVirtualNetworkPolicy = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "ClusterVirtualNetworkPolicy",
            "metadata": {"name": "cross"},
            "spec": {"rules": [
                {"action": "Allow", "protocol": "TCP", "ports": {"min": 22, "max": 22},
                 "source": {"namespace": "t1", "name": "red"},
                 "destination": {"namespace": "t2", "name": "blue"}},
            ]},
        }))
        .unwrap();
        let cross = trunkline_model::from_api::cluster_virtual_network_policy(&api);
        let links = links_of(&holding(&["t1/red", "t2/blue"]), &[red, blue], &[cross]);
        assert_eq!(links.len(), 2);
        let to_blue = links.iter().find(|l| l.from == "t1/red").unwrap();
        assert_eq!(to_blue.to, "t2/blue");
        assert_eq!(
            to_blue.policies[0].policy, "cross",
            "a cluster policy's bare name"
        );
        assert_eq!(
            to_blue.evaluate(false, 6, 22),
            trunkline_pipeline::network_policy::LinkVerdict::Allowed(0, 0)
        );
    }
}
