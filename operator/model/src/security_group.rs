//! Security groups: stateful rules on the traffic of the VMIs that use
//! them, in domain terms (families, protocols, port ranges, remote ends).
//!
//! ```text
//!   VMI.spec.securityGroups ──> groups of its namespace (none named: "default")
//!   SecurityGroup { ingress: [Rule], egress: [Rule] }
//!   Rule { family, protocol, ports, remote: any | prefix | members of a group }
//! ```
//!
//! The default group: a VMI naming no group uses the SecurityGroup
//! `default` of its namespace **if that object exists**; when it does not,
//! the VMI is not policed (every flow allowed, as without security groups),
//! so that a cluster without SecurityGroup objects forwards as before,
//! entirely in the XDP tier. `deploy/examples/` has a `default` group with
//! the original's default rules (every egress; ingress from the members of
//! `default`).

use std::ops::RangeInclusive;

use trunkline_api::security_group::{Ethertype, RuleProtocol};
use trunkline_wire::IpPrefix;

use crate::from_api::{self, read};
use crate::object::{Kind, Meta, NamespacedName};

/// The name of the group a VMI naming no group uses.
pub const DEFAULT_GROUP: &str = "default";

/// A security group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityGroup {
    /// Identity (namespaced).
    pub meta: Meta,
    /// What its VMIs may receive.
    pub ingress: Vec<Rule>,
    /// What its VMIs may send.
    pub egress: Vec<Rule>,
    /// Field values that could not be read, each a message for the user.
    pub defects: Vec<String>,
}

/// An IP family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// The protocols a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// Every protocol.
    Any,
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP (1), or ICMPv6 (58) in an IPv6 rule.
    Icmp,
}

/// The remote end of a rule: the source of ingress, the destination of
/// egress.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Remote {
    /// Anyone.
    Any,
    /// Addresses in a prefix.
    Prefix(IpPrefix),
    /// The addresses of the VMIs using a group of the same namespace.
    Group(String),
}

/// One rule: what it allows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The family.
    pub family: Family,
    /// The protocol.
    pub protocol: Protocol,
    /// Destination ports (TCP and UDP only); `None`: every port.
    pub ports: Option<RangeInclusive<u16>>,
    /// The remote end.
    pub remote: Remote,
}

impl Rule {
    /// A rule allowing everything of `family` with `remote`.
    pub fn any(family: Family, remote: Remote) -> Self {
        Rule {
            family,
            protocol: Protocol::Any,
            ports: None,
            remote,
        }
    }
}

impl SecurityGroup {
    /// `namespace/name` of the group.
    pub fn name(&self) -> NamespacedName {
        self.meta.namespaced_name()
    }

    /// The remote groups its rules name (sorted, each once).
    pub fn remote_groups(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .ingress
            .iter()
            .chain(&self.egress)
            .filter_map(|r| match &r.remote {
                Remote::Group(g) => Some(g.as_str()),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Converts the API object (see [`crate::from_api`]); an unreadable
    /// prefix becomes a defect and its rule is left out (it allows nothing).
    pub fn from_api(group: &trunkline_api::SecurityGroup) -> Self {
        let mut defects = Vec::new();
        let mut rules =
            |field: &str, rules: &[trunkline_api::security_group::SecurityGroupRule]| {
                rules
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| {
                        let family = match r.ethertype {
                            Ethertype::IPv4 => Family::V4,
                            Ethertype::IPv6 => Family::V6,
                        };
                        let protocol = match r.protocol {
                            RuleProtocol::Any => Protocol::Any,
                            RuleProtocol::Tcp => Protocol::Tcp,
                            RuleProtocol::Udp => Protocol::Udp,
                            RuleProtocol::Icmp => Protocol::Icmp,
                        };
                        let remote = match (&r.remote_prefix, &r.remote_group) {
                            (Some(p), _) => Remote::Prefix(read(
                                &format!("spec.{field}[{i}].remotePrefix"),
                                p.as_str().parse::<IpPrefix>(),
                                &mut defects,
                            )?),
                            (None, Some(g)) => Remote::Group(g.as_str().to_owned()),
                            (None, None) => Remote::Any,
                        };
                        Some(Rule {
                            family,
                            protocol,
                            ports: r.ports.map(|p| p.min..=p.max),
                            remote,
                        })
                    })
                    .collect::<Vec<_>>()
            };
        let ingress = rules("ingress", &group.spec.ingress);
        let egress = rules("egress", &group.spec.egress);
        let conditions = group.status.as_ref().map(|s| &s.conditions[..]);
        SecurityGroup {
            meta: from_api::meta(
                Kind::SecurityGroup,
                &group.metadata,
                conditions.unwrap_or_default(),
            ),
            ingress,
            egress,
            defects,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_reads_its_rules() {
        let api: trunkline_api::SecurityGroup = serde_json::from_value(serde_json::json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "SecurityGroup",
            "metadata": {"name": "web", "namespace": "t1", "generation": 2},
            "spec": {
                "ingress": [
                    {"protocol": "TCP", "ports": {"min": 22, "max": 22}, "remoteGroup": "admin"},
                    {"ethertype": "IPv6", "protocol": "ICMP", "remotePrefix": "fd00::/8"},
                    {"remotePrefix": "10.0.0.1/8"},
                ],
                "egress": [{}],
            },
        }))
        .unwrap();
        let g = SecurityGroup::from_api(&api);
        assert_eq!(g.name(), NamespacedName::new("t1", "web"));
        assert_eq!(
            g.ingress[0],
            Rule {
                family: Family::V4,
                protocol: Protocol::Tcp,
                ports: Some(22..=22),
                remote: Remote::Group("admin".into()),
            }
        );
        assert_eq!(g.ingress[1].family, Family::V6);
        assert_eq!(g.ingress[1].protocol, Protocol::Icmp);
        // Host bits are cleared by IpPrefix, as everywhere.
        assert_eq!(
            g.ingress[2].remote,
            Remote::Prefix("10.0.0.0/8".parse().unwrap())
        );
        assert_eq!(g.egress, [Rule::any(Family::V4, Remote::Any)]);
        assert_eq!(g.remote_groups(), ["admin"]);
        assert!(g.defects.is_empty());
    }
}
