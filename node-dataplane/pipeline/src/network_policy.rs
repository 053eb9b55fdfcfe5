//! Network policies (issue 18's second kind): what may cross between two
//! virtual networks of this node that a `VirtualNetworkPolicy` connects.
//! The pure part: the compiled rules of one direction of a connection
//! (a [`Link`]), their evaluation on a flow's first packet, and counters.
//!
//! ```text
//!  VRF red: host routes of blue's VMIs --> NextHop::Leak { vmi, link red->blue }
//!                                                   |
//!  first packet red -> blue: link.evaluate(flow) -- policies in red's order,
//!     each policy's rules in order, first match: Allow | Deny | Pass (next policy)
//!     no match anywhere: Deny
//!                                                   |
//!  forward + reverse entries in the flow table, zone of the connection
//!  (the same for red->blue and blue->red): replies follow the verdict
//! ```
//!
//! Unlike security groups (a union of allows), a network policy's rules
//! are ordered and may deny: the verdict depends on the order.

use core::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::policy::{PortRange, RuleProtocol, proto};

/// What a rule does with the flows it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NetworkAction {
    /// The flow crosses.
    Allow,
    /// The flow is dropped.
    Deny,
    /// This policy does not decide: the next one does.
    Pass,
}

/// One rule of a policy, for one direction of a connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkRule {
    /// Its position in the policy's `spec.rules` (for counters).
    pub index: u16,
    /// What it does.
    pub action: NetworkAction,
    /// The protocol (ICMP: ICMPv6 for IPv6 flows).
    pub protocol: RuleProtocol,
    /// Destination ports (TCP and UDP); `None`: every port.
    pub ports: Option<PortRange>,
}

/// The rules of one policy that apply to flows opened from one network
/// toward the other, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyRules {
    /// The policy's key (`namespace/name`).
    pub policy: String,
    /// Its rules for this direction, in order.
    pub rules: Vec<NetworkRule>,
}

/// One direction of a connection between two networks, as the agent
/// configures it: flows opened from `from` toward `to`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkConfig {
    /// The key of the network opening the flows.
    pub from: String,
    /// The key of the network they go to; it gets `from`'s routes by the
    /// link of the other direction.
    pub to: String,
    /// The policies both networks name, in `from`'s order, each with its
    /// rules for this direction (possibly none).
    pub policies: Vec<PolicyRules>,
}

/// A verdict on a flow's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkVerdict {
    /// The rule at (policy position, rule position) allowed it.
    Allowed(usize, usize),
    /// The rule at (policy position, rule position) denied it.
    Denied(usize, usize),
    /// No rule decided (none matched, or every match passed).
    DefaultDenied,
}

impl NetworkRule {
    /// Whether the rule matches a flow of `proto` to `dport` (`ipv6`: of
    /// that family).
    pub fn matches(&self, ipv6: bool, flow_proto: u8, dport: u16) -> bool {
        let proto_ok = match self.protocol {
            RuleProtocol::Any => true,
            RuleProtocol::Tcp => flow_proto == proto::TCP,
            RuleProtocol::Udp => flow_proto == proto::UDP,
            RuleProtocol::Icmp => flow_proto == if ipv6 { proto::ICMPV6 } else { proto::ICMP },
        };
        proto_ok
            && match &self.ports {
                Some(ports) if matches!(flow_proto, proto::TCP | proto::UDP) => {
                    ports.contains(dport)
                }
                _ => true,
            }
    }
}

impl LinkConfig {
    /// The verdict on the first packet of a flow of `proto` to `dport`:
    /// the policies in order, each one's rules in order; the first `Allow`
    /// or `Deny` that matches decides, a matching `Pass` goes on with the
    /// next policy.
    pub fn evaluate(&self, ipv6: bool, flow_proto: u8, dport: u16) -> LinkVerdict {
        for (p, policy) in self.policies.iter().enumerate() {
            let found = policy
                .rules
                .iter()
                .enumerate()
                .find(|(_, r)| r.matches(ipv6, flow_proto, dport));
            match found {
                Some((r, rule)) => match rule.action {
                    NetworkAction::Allow => return LinkVerdict::Allowed(p, r),
                    NetworkAction::Deny => return LinkVerdict::Denied(p, r),
                    NetworkAction::Pass => continue,
                },
                None => continue,
            }
        }
        LinkVerdict::DefaultDenied
    }
}

/// One direction of a connection as the tables hold it.
///
/// **Zone.** Both directions of a connection share one flow-table zone (a
/// hash of the two network keys, sorted, with [`crate::policy::ZONE_BIT`]
/// and [`LINK_ZONE_BIT`] set): the reply of a flow red -> blue, looked up
/// in blue's link to red, finds the reverse entry the first packet
/// installed. It never meets a VRF's zone (VNIs are 24 bits); a VMI's
/// security-group zone only by a 30-bit hash collision, as VMI zones among
/// themselves.
///
/// **Generation.** A hash of both directions' rules: any change of a
/// policy, of the order the networks name them, or of a network's list
/// gives another generation, and flows decided under another are decided
/// again at their next packet.
#[derive(Debug)]
pub struct Link {
    /// What the agent asked for.
    pub config: LinkConfig,
    /// The flow-table zone of the connection.
    pub zone: u32,
    /// The generation of its flows; never 0.
    pub generation: u32,
    /// Flows each rule allowed or denied, and the default's denials.
    pub counters: std::sync::Arc<LinkCounters>,
    /// The other direction of the connection, when this node has it.
    pub(crate) reverse: Option<crate::tables::LinkId>,
}

/// Bit 30 of a connection's zone (with [`crate::policy::ZONE_BIT`]).
pub const LINK_ZONE_BIT: u32 = 0x4000_0000;

impl Link {
    /// The zone of the connection between networks `a` and `b`.
    pub fn zone_of(a: &str, b: &str) -> u32 {
        let (x, y) = if a <= b { (a, b) } else { (b, a) };
        crate::policy::ZONE_BIT | LINK_ZONE_BIT | (stable_hash(&(x, y)) as u32 & !0xc000_0000)
    }

    /// The generation of a connection whose directions are `one` and
    /// `other` (the same whichever is given first).
    pub fn generation_of(one: &LinkConfig, other: Option<&LinkConfig>) -> u32 {
        let (x, y) = match other {
            Some(o) if o < one => (Some(o), Some(one)),
            Some(o) => (Some(one), Some(o)),
            None => (Some(one), None),
        };
        (stable_hash(&(x, y)) as u32).max(1)
    }
}

/// A hash that is the same for every table of the process (the flow table
/// outlives them).
fn stable_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The counts of one link: flows each rule decided (their first packets),
/// by policy and rule position, and flows no rule decided (the default
/// deny). Atomic adds, paid only by first packets.
#[derive(Debug)]
pub struct LinkCounters {
    rules: Box<[Box<[AtomicU64]>]>,
    default_denied: AtomicU64,
}

/// One line of a [`LinkCounters`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRuleCount {
    /// The policy's key and the rule's index in its `spec.rules`; `None`:
    /// the default deny.
    pub rule: Option<(String, u16)>,
    /// The rule's action (`None`: the default deny).
    pub action: Option<NetworkAction>,
    /// Flows the rule (or the default deny) decided.
    pub count: u64,
}

impl LinkCounters {
    /// Zeroed counters for `config`.
    pub fn new(config: &LinkConfig) -> LinkCounters {
        LinkCounters {
            rules: config
                .policies
                .iter()
                .map(|p| p.rules.iter().map(|_| AtomicU64::new(0)).collect())
                .collect(),
            default_denied: AtomicU64::new(0),
        }
    }

    /// Count a flow decided by the rule at (policy, rule) positions.
    pub fn decided(&self, policy: usize, rule: usize) {
        if let Some(cell) = self.rules.get(policy).and_then(|p| p.get(rule)) {
            cell.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Count a flow no rule decided.
    pub fn default_denied(&self) {
        self.default_denied.fetch_add(1, Ordering::Relaxed);
    }

    /// Every count, with the names of `config` (the one they count).
    pub fn snapshot(&self, config: &LinkConfig) -> Vec<LinkRuleCount> {
        let mut out = Vec::new();
        for (policy, cells) in config.policies.iter().zip(self.rules.iter()) {
            for (rule, cell) in policy.rules.iter().zip(cells.iter()) {
                out.push(LinkRuleCount {
                    rule: Some((policy.policy.clone(), rule.index)),
                    action: Some(rule.action),
                    count: cell.load(Ordering::Relaxed),
                });
            }
        }
        out.push(LinkRuleCount {
            rule: None,
            action: None,
            count: self.default_denied.load(Ordering::Relaxed),
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(
        index: u16,
        action: NetworkAction,
        protocol: RuleProtocol,
        ports: Option<(u16, u16)>,
    ) -> NetworkRule {
        NetworkRule {
            index,
            action,
            protocol,
            ports: ports.map(|(min, max)| PortRange { min, max }),
        }
    }

    fn link(policies: Vec<Vec<NetworkRule>>) -> LinkConfig {
        LinkConfig {
            from: "t/red".into(),
            to: "t/blue".into(),
            policies: policies
                .into_iter()
                .enumerate()
                .map(|(i, rules)| PolicyRules {
                    policy: format!("t/p{i}"),
                    rules,
                })
                .collect(),
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        use NetworkAction::*;
        let l = link(vec![vec![
            rule(0, Deny, RuleProtocol::Tcp, Some((22, 22))),
            rule(1, Allow, RuleProtocol::Tcp, Some((1, 1000))),
        ]]);
        assert_eq!(l.evaluate(false, proto::TCP, 22), LinkVerdict::Denied(0, 0));
        assert_eq!(
            l.evaluate(false, proto::TCP, 80),
            LinkVerdict::Allowed(0, 1)
        );
        assert_eq!(
            l.evaluate(false, proto::TCP, 2000),
            LinkVerdict::DefaultDenied
        );
        assert_eq!(
            l.evaluate(false, proto::UDP, 80),
            LinkVerdict::DefaultDenied
        );
        assert_eq!(
            l.evaluate(false, proto::ICMP, 0),
            LinkVerdict::DefaultDenied
        );
        // The same rules the other way round: the allow comes first.
        let l = link(vec![vec![
            rule(0, Allow, RuleProtocol::Tcp, Some((1, 1000))),
            rule(1, Deny, RuleProtocol::Tcp, Some((22, 22))),
        ]]);
        assert_eq!(
            l.evaluate(false, proto::TCP, 22),
            LinkVerdict::Allowed(0, 0)
        );
    }

    #[test]
    fn pass_leaves_the_decision_to_the_next_policy() {
        use NetworkAction::*;
        let l = link(vec![
            vec![
                rule(0, Pass, RuleProtocol::Udp, None),
                rule(1, Deny, RuleProtocol::Any, None),
            ],
            vec![rule(0, Allow, RuleProtocol::Udp, Some((53, 53)))],
        ]);
        assert_eq!(
            l.evaluate(false, proto::UDP, 53),
            LinkVerdict::Allowed(1, 0)
        );
        assert_eq!(
            l.evaluate(false, proto::UDP, 54),
            LinkVerdict::DefaultDenied
        );
        assert_eq!(l.evaluate(false, proto::TCP, 53), LinkVerdict::Denied(0, 1));
        // No policy at all: nothing crosses.
        assert_eq!(
            link(vec![]).evaluate(false, proto::TCP, 1),
            LinkVerdict::DefaultDenied
        );
    }

    #[test]
    fn icmp_rules_match_the_flow_family() {
        let l = link(vec![vec![rule(
            0,
            NetworkAction::Allow,
            RuleProtocol::Icmp,
            None,
        )]]);
        assert!(matches!(
            l.evaluate(false, proto::ICMP, 0),
            LinkVerdict::Allowed(..)
        ));
        assert!(matches!(
            l.evaluate(true, proto::ICMPV6, 0),
            LinkVerdict::Allowed(..)
        ));
        assert_eq!(l.evaluate(true, proto::ICMP, 0), LinkVerdict::DefaultDenied);
    }

    #[test]
    fn both_directions_share_a_zone_and_a_generation() {
        let there = link(vec![vec![rule(
            0,
            NetworkAction::Allow,
            RuleProtocol::Any,
            None,
        )]]);
        let back = LinkConfig {
            from: there.to.clone(),
            to: there.from.clone(),
            ..there.clone()
        };
        assert_eq!(
            Link::zone_of("t/red", "t/blue"),
            Link::zone_of("t/blue", "t/red")
        );
        assert_ne!(
            Link::zone_of("t/red", "t/blue"),
            Link::zone_of("t/red", "t/green")
        );
        assert_eq!(Link::zone_of("a", "b") & 0xc000_0000, 0xc000_0000);
        assert_eq!(
            Link::generation_of(&there, Some(&back)),
            Link::generation_of(&back, Some(&there))
        );
        let mut changed = back.clone();
        changed.policies[0].rules[0].action = NetworkAction::Deny;
        assert_ne!(
            Link::generation_of(&there, Some(&back)),
            Link::generation_of(&there, Some(&changed))
        );
    }

    fn arb_rule() -> impl Strategy<Value = NetworkRule> {
        (
            prop::sample::select(vec![
                NetworkAction::Allow,
                NetworkAction::Deny,
                NetworkAction::Pass,
            ]),
            prop::sample::select(vec![
                RuleProtocol::Any,
                RuleProtocol::Tcp,
                RuleProtocol::Udp,
                RuleProtocol::Icmp,
            ]),
            prop::option::of((0u16..50, 0u16..50).prop_map(|(a, b)| (a.min(b), a.max(b)))),
        )
            .prop_map(|(action, protocol, ports)| {
                let ports =
                    ports.filter(|_| matches!(protocol, RuleProtocol::Tcp | RuleProtocol::Udp));
                rule(0, action, protocol, ports)
            })
    }

    proptest! {
        /// Evaluation is the plain definition: walk the policies in order;
        /// in each, the first matching rule; Pass moves on, Allow and Deny
        /// stop; the end denies.
        #[test]
        fn evaluation_is_the_definition(
            policies in prop::collection::vec(prop::collection::vec(arb_rule(), 0..5), 0..4),
            flow_proto in prop::sample::select(vec![proto::TCP, proto::UDP, proto::ICMP, 47u8]),
            dport in 0u16..60,
        ) {
            let l = link(policies.clone());
            let mut expected = LinkVerdict::DefaultDenied;
            'policies: for (p, rules) in policies.iter().enumerate() {
                for (r, rule) in rules.iter().enumerate() {
                    let proto_ok = match rule.protocol {
                        RuleProtocol::Any => true,
                        RuleProtocol::Tcp => flow_proto == 6,
                        RuleProtocol::Udp => flow_proto == 17,
                        RuleProtocol::Icmp => flow_proto == 1,
                    };
                    let port_ok = match (&rule.ports, flow_proto) {
                        (Some(range), 6 | 17) => range.min <= dport && dport <= range.max,
                        _ => true,
                    };
                    if proto_ok && port_ok {
                        match rule.action {
                            NetworkAction::Allow => { expected = LinkVerdict::Allowed(p, r); break 'policies; }
                            NetworkAction::Deny => { expected = LinkVerdict::Denied(p, r); break 'policies; }
                            NetworkAction::Pass => continue 'policies,
                        }
                    }
                }
            }
            prop_assert_eq!(l.evaluate(false, flow_proto, dport), expected);
        }
    }
}
