//! Security-group rules compiled for one VMI, and their evaluation on a
//! flow's first packet: the pure part of stateful enforcement (issue 18).
//!
//! ```text
//!  groups of the VMI (model) --compile--> Policy { ingress: [Rule], egress: [Rule] }
//!                                              |
//!  first packet of a flow (family, protocol, remote address, destination port)
//!        --Policy::evaluate(direction, flow)--> Allowed(rule) | Denied
//!                                              |
//!  forward + reverse entries in the flow table with the action and the
//!  policy generation (process/policy.rs); return traffic matches the reverse
//! ```
//!
//! Security-group semantics (the original's and every cloud's): rules only
//! allow, a VMI's groups are a union, and whatever no rule allows is
//! denied. So the verdict does not depend on the order of the rules; the
//! rule reported for an allowed flow is the first that matches (the one a
//! per-rule counter charges). A remote group is compiled into the prefixes
//! of its members' addresses, so evaluation never looks anything up.
//!
//! Rules are scanned linearly: a VMI has at most 16 groups of at most 128
//! rules per direction, and only a flow's first packet is evaluated.

use core::hash::{Hash, Hasher};
use core::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use trunkline_wire::IpPrefix;

/// IP protocol numbers a rule can name.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// Which way a flow crosses the VMI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Toward the VMI (its groups' ingress rules).
    Ingress,
    /// From the VMI (its groups' egress rules).
    Egress,
}

impl Direction {
    /// `ingress` or `egress`, for metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
}

/// The protocol a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleProtocol {
    /// Every protocol.
    Any,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP in an IPv4 rule, ICMPv6 in an IPv6 rule.
    Icmp,
}

/// An identifier of a rule for counters: the group and its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId {
    /// Index of the group in the node's list of groups.
    pub group: u16,
    /// Index of the rule in the group's list for its direction.
    pub index: u16,
}

/// A range of destination ports, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// The first port.
    pub min: u16,
    /// The last port.
    pub max: u16,
}

impl PortRange {
    /// Whether `port` is in the range.
    pub const fn contains(&self, port: u16) -> bool {
        self.min <= port && port <= self.max
    }
}

/// One compiled rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rule {
    /// Which rule it is, for counters.
    pub id: RuleId,
    /// `true` for IPv6, `false` for IPv4.
    pub ipv6: bool,
    /// The protocol.
    pub protocol: RuleProtocol,
    /// Destination ports (TCP and UDP); `None`: every port.
    pub ports: Option<PortRange>,
    /// The remote end: any of these prefixes; `None`: anyone. A remote
    /// group without members is an empty list, which matches no one.
    pub remote: Option<Vec<IpPrefix>>,
}

/// What a flow's first packet is checked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTuple {
    /// IP protocol number.
    pub proto: u8,
    /// The far end: the source of ingress, the destination of egress.
    pub remote: IpAddr,
    /// The destination port (TCP, UDP); ignored otherwise.
    pub dport: u16,
}

/// The verdict on a flow's first packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyVerdict {
    /// A rule allows it: the first that matches.
    Allowed(RuleId),
    /// No rule allows it.
    Denied,
}

/// The rules of one VMI: the union of its groups'.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Policy {
    /// The names of its groups, by [`RuleId::group`] (for counters).
    pub groups: Vec<String>,
    /// What it may receive.
    pub ingress: Vec<Rule>,
    /// What it may send.
    pub egress: Vec<Rule>,
}

impl Rule {
    /// Whether the rule allows `flow`.
    pub fn matches(&self, flow: &FlowTuple) -> bool {
        if self.ipv6 != flow.remote.is_ipv6() {
            return false;
        }
        let proto_ok = match self.protocol {
            RuleProtocol::Any => true,
            RuleProtocol::Tcp => flow.proto == proto::TCP,
            RuleProtocol::Udp => flow.proto == proto::UDP,
            RuleProtocol::Icmp => {
                flow.proto
                    == if self.ipv6 {
                        proto::ICMPV6
                    } else {
                        proto::ICMP
                    }
            }
        };
        if !proto_ok {
            return false;
        }
        if let Some(ports) = &self.ports
            && matches!(flow.proto, proto::TCP | proto::UDP)
            && !ports.contains(flow.dport)
        {
            return false;
        }
        match &self.remote {
            None => true,
            Some(prefixes) => prefixes.iter().any(|p| p.contains(flow.remote)),
        }
    }
}

impl Policy {
    /// The verdict on the first packet of `flow` crossing the VMI in
    /// `direction`.
    pub fn evaluate(&self, direction: Direction, flow: &FlowTuple) -> PolicyVerdict {
        let rules = match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        };
        rules
            .iter()
            .find(|r| r.matches(flow))
            .map_or(PolicyVerdict::Denied, |r| PolicyVerdict::Allowed(r.id))
    }
}

/// The high bit of a policy zone: flow keys of security groups never
/// collide with a VRF's (VNIs are 24 bits, the fabric is 0).
pub const ZONE_BIT: u32 = 0x8000_0000;

/// A VMI's policy as the tables hold it: the rules, the flow-table zone
/// of the VMI, the generation its flows are decided under, and counters.
///
/// **Zones.** Each policed VMI keeps its own flows: the key's `vrf` field
/// is the VMI's zone ([`ZONE_BIT`] and 31 bits of a hash of its key),
/// so that a flow between two policed VMIs of this node is decided once
/// for the sender's egress and once for the receiver's ingress (as
/// conntrack zones per logical port in OVN). The zone depends on the
/// VMI's name only: its flows survive table rebuilds.
///
/// **Generations.** The generation is a hash of the VMI's name and its
/// compiled rules (remote groups already turned into their members'
/// addresses): any change of a rule, a group, the VMI's list of groups or
/// a remote group's members gives another generation, and an entry
/// decided under another generation is decided again at its next packet.
/// Deleting a group changes the rules of every VMI that used it, so no
/// entry decided under it is trusted again.
#[derive(Debug)]
pub struct VmiPolicy {
    /// The rules.
    pub policy: Policy,
    /// The VMI's flow-table zone (`FlowKey::vrf`).
    pub zone: u32,
    /// The generation of its flows; never 0.
    pub generation: u32,
    /// What it allowed and denied, carried over by recompilations while
    /// the rules stay the same.
    pub counters: std::sync::Arc<PolicyCounters>,
}

impl VmiPolicy {
    /// The policy of VMI `key`; `counters` are reused when given and of
    /// the same shape.
    pub fn new(key: &str, policy: Policy, previous: Option<&VmiPolicy>) -> VmiPolicy {
        let zone = ZONE_BIT | (stable_hash(&key) as u32 & !ZONE_BIT);
        let generation = (stable_hash(&(key, &policy)) as u32).max(1);
        let counters = previous
            .filter(|p| p.policy == policy)
            .map(|p| p.counters.clone())
            .unwrap_or_else(|| std::sync::Arc::new(PolicyCounters::new(&policy)));
        VmiPolicy {
            policy,
            zone,
            generation,
            counters,
        }
    }
}

/// A hash that is the same for every table of the process (the flow table
/// lives as long as the process), unlike a keyed `RandomState`.
fn stable_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The counts of one VMI's policy: flows each rule allowed (first
/// packets), and packets no rule allowed (the default deny), by
/// direction. Written with atomic adds: only first packets and denied
/// packets pay for them.
#[derive(Debug)]
pub struct PolicyCounters {
    ingress: Box<[AtomicU64]>,
    egress: Box<[AtomicU64]>,
    denied_ingress: AtomicU64,
    denied_egress: AtomicU64,
}

/// One line of a [`PolicyCounters`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCount {
    /// The direction.
    pub direction: Direction,
    /// The group's name and the rule's index in it for that direction;
    /// `None`: the default deny.
    pub rule: Option<(String, u16)>,
    /// Flows allowed by the rule, or packets denied by the default.
    pub count: u64,
}

impl PolicyCounters {
    /// Zeroed counters for `policy`.
    pub fn new(policy: &Policy) -> PolicyCounters {
        let cells = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect();
        PolicyCounters {
            ingress: cells(policy.ingress.len()),
            egress: cells(policy.egress.len()),
            denied_ingress: AtomicU64::new(0),
            denied_egress: AtomicU64::new(0),
        }
    }

    /// Count a flow allowed by the rule at `position` of `direction`'s list.
    pub fn allowed(&self, direction: Direction, position: usize) {
        let cells = match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        };
        if let Some(cell) = cells.get(position) {
            cell.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Count a packet no rule allowed.
    pub fn denied(&self, direction: Direction) {
        match direction {
            Direction::Ingress => &self.denied_ingress,
            Direction::Egress => &self.denied_egress,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Every count, with the names of `policy` (the one they count).
    pub fn snapshot(&self, policy: &Policy) -> Vec<RuleCount> {
        let mut out = Vec::new();
        for (direction, rules, cells, denied) in [
            (
                Direction::Ingress,
                &policy.ingress,
                &self.ingress,
                &self.denied_ingress,
            ),
            (
                Direction::Egress,
                &policy.egress,
                &self.egress,
                &self.denied_egress,
            ),
        ] {
            for (rule, cell) in rules.iter().zip(cells.iter()) {
                let group = policy
                    .groups
                    .get(usize::from(rule.id.group))
                    .cloned()
                    .unwrap_or_default();
                out.push(RuleCount {
                    direction,
                    rule: Some((group, rule.id.index)),
                    count: cell.load(Ordering::Relaxed),
                });
            }
            out.push(RuleCount {
                direction,
                rule: None,
                count: denied.load(Ordering::Relaxed),
            });
        }
        out
    }
}

impl Policy {
    /// The verdict on `flow` and, when allowed, the position in the
    /// direction's list of the rule that allowed it.
    pub fn evaluate_at(&self, direction: Direction, flow: &FlowTuple) -> Option<usize> {
        let rules = match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        };
        rules.iter().position(|r| r.matches(flow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(
        index: u16,
        protocol: RuleProtocol,
        ports: Option<(u16, u16)>,
        remote: Option<&[&str]>,
    ) -> Rule {
        Rule {
            id: RuleId { group: 0, index },
            ipv6: false,
            protocol,
            ports: ports.map(|(min, max)| PortRange { min, max }),
            remote: remote.map(|r| r.iter().map(|p| p.parse().unwrap()).collect()),
        }
    }

    fn tcp(remote: &str, dport: u16) -> FlowTuple {
        FlowTuple {
            proto: proto::TCP,
            remote: remote.parse().unwrap(),
            dport,
        }
    }

    #[test]
    fn ssh_from_the_admin_group_but_not_http() {
        let policy = Policy {
            ingress: vec![rule(
                0,
                RuleProtocol::Tcp,
                Some((22, 22)),
                Some(&["10.0.0.12/32"]),
            )],
            egress: vec![rule(0, RuleProtocol::Any, None, None)],
            ..Policy::default()
        };
        let allowed = PolicyVerdict::Allowed(RuleId { group: 0, index: 0 });
        assert_eq!(
            policy.evaluate(Direction::Ingress, &tcp("10.0.0.12", 22)),
            allowed
        );
        assert_eq!(
            policy.evaluate(Direction::Ingress, &tcp("10.0.0.12", 80)),
            PolicyVerdict::Denied
        );
        assert_eq!(
            policy.evaluate(Direction::Ingress, &tcp("10.0.0.13", 22)),
            PolicyVerdict::Denied
        );
        // UDP 22 is not TCP 22.
        let udp = FlowTuple {
            proto: proto::UDP,
            ..tcp("10.0.0.12", 22)
        };
        assert_eq!(
            policy.evaluate(Direction::Ingress, &udp),
            PolicyVerdict::Denied
        );
        assert_eq!(
            policy.evaluate(Direction::Egress, &tcp("198.51.100.1", 443)),
            allowed
        );
    }

    #[test]
    fn families_and_icmp_versions_do_not_mix() {
        let mut v6 = rule(0, RuleProtocol::Icmp, None, None);
        v6.ipv6 = true;
        let policy = Policy {
            ingress: vec![v6],
            ..Policy::default()
        };
        let echo6 = FlowTuple {
            proto: proto::ICMPV6,
            remote: "fd00::1".parse().unwrap(),
            dport: 0,
        };
        let echo4 = FlowTuple {
            proto: proto::ICMP,
            remote: "10.0.0.1".parse().unwrap(),
            dport: 0,
        };
        let icmp_over_v6 = FlowTuple {
            proto: proto::ICMP,
            ..echo6
        };
        assert!(matches!(
            policy.evaluate(Direction::Ingress, &echo6),
            PolicyVerdict::Allowed(_)
        ));
        assert_eq!(
            policy.evaluate(Direction::Ingress, &echo4),
            PolicyVerdict::Denied
        );
        assert_eq!(
            policy.evaluate(Direction::Ingress, &icmp_over_v6),
            PolicyVerdict::Denied
        );
        // No rule at all: nothing in.
        assert_eq!(
            Policy::default().evaluate(Direction::Egress, &echo4),
            PolicyVerdict::Denied
        );
    }

    #[test]
    fn a_remote_group_without_members_matches_no_one() {
        let policy = Policy {
            ingress: vec![rule(0, RuleProtocol::Any, None, Some(&[]))],
            ..Policy::default()
        };
        assert_eq!(
            policy.evaluate(Direction::Ingress, &tcp("10.0.0.1", 22)),
            PolicyVerdict::Denied
        );
    }

    const PREFIXES: [&str; 6] = [
        "10.0.0.0/8",
        "10.0.0.0/24",
        "10.0.0.12/32",
        "10.1.0.0/16",
        "0.0.0.0/0",
        "192.168.0.0/16",
    ];
    const REMOTES: [&str; 5] = [
        "10.0.0.12",
        "10.0.0.200",
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
    ];

    fn arb_rule() -> impl Strategy<Value = Rule> {
        (
            prop::sample::select(vec![
                RuleProtocol::Any,
                RuleProtocol::Tcp,
                RuleProtocol::Udp,
                RuleProtocol::Icmp,
            ]),
            prop::option::of((0u16..100, 0u16..100).prop_map(|(a, b)| (a.min(b), a.max(b)))),
            prop::option::of(prop::sample::subsequence(PREFIXES.to_vec(), 0..=3)),
        )
            .prop_map(|(protocol, ports, remote)| {
                let ports =
                    ports.filter(|_| matches!(protocol, RuleProtocol::Tcp | RuleProtocol::Udp));
                rule(0, protocol, ports, remote.as_deref())
            })
    }

    fn arb_flow() -> impl Strategy<Value = FlowTuple> {
        (
            prop::sample::select(vec![proto::TCP, proto::UDP, proto::ICMP, 47u8]),
            prop::sample::select(REMOTES.to_vec()),
            0u16..100,
        )
            .prop_map(|(proto, remote, dport)| FlowTuple {
                proto,
                remote: remote.parse().unwrap(),
                dport,
            })
    }

    /// The definition, written plainly: some rule of the family and
    /// protocol covers the port (TCP/UDP with ports) and the remote address.
    fn reference(rules: &[Rule], flow: &FlowTuple) -> bool {
        rules.iter().any(|r| {
            let proto = match r.protocol {
                RuleProtocol::Any => true,
                RuleProtocol::Tcp => flow.proto == 6,
                RuleProtocol::Udp => flow.proto == 17,
                RuleProtocol::Icmp => flow.proto == 1,
            };
            let port = match (&r.ports, flow.proto) {
                (Some(p), 6 | 17) => p.min <= flow.dport && flow.dport <= p.max,
                _ => true,
            };
            let remote = r
                .remote
                .as_ref()
                .is_none_or(|ps| ps.iter().any(|p| p.contains(flow.remote)));
            proto && port && remote
        })
    }

    fn numbered(mut rules: Vec<Rule>) -> Vec<Rule> {
        for (i, r) in rules.iter_mut().enumerate() {
            r.id.index = i as u16;
        }
        rules
    }

    proptest! {
        /// Evaluation agrees with the plain definition, on overlapping
        /// prefixes and port ranges (boundaries included), and reports
        /// the first rule that matches.
        #[test]
        fn evaluation_is_the_definition(rules in prop::collection::vec(arb_rule(), 0..8), flow in arb_flow()) {
            let rules = numbered(rules);
            let policy = Policy { ingress: rules.clone(), ..Policy::default() };
            let verdict = policy.evaluate(Direction::Ingress, &flow);
            prop_assert_eq!(matches!(verdict, PolicyVerdict::Allowed(_)), reference(&rules, &flow));
            if let PolicyVerdict::Allowed(id) = verdict {
                let first = rules.iter().position(|r| r.matches(&flow)).unwrap();
                prop_assert_eq!(id.index as usize, first);
            }
        }

        /// Rule order never changes whether a flow is allowed; adding a
        /// rule never denies what was allowed.
        #[test]
        fn order_does_not_matter_and_rules_only_allow(
            rules in prop::collection::vec(arb_rule(), 0..8),
            extra in arb_rule(),
            flow in arb_flow(),
            rotate in 0usize..8,
        ) {
            let allowed = |rules: &[Rule]| matches!(
                Policy { ingress: rules.to_vec(), ..Policy::default() }.evaluate(Direction::Ingress, &flow),
                PolicyVerdict::Allowed(_)
            );
            let mut reordered = rules.clone();
            reordered.reverse();
            if !reordered.is_empty() {
                let n = rotate % reordered.len();
                reordered.rotate_left(n);
            }
            prop_assert_eq!(allowed(&rules), allowed(&reordered));
            let mut more = rules.clone();
            more.push(extra);
            prop_assert!(!allowed(&rules) || allowed(&more));
        }

        /// A port range allows exactly its ports, ends included.
        #[test]
        fn a_port_range_allows_exactly_its_ports(a in 1u16..200, b in 1u16..200, port in 0u16..220) {
            let (min, max) = (a.min(b), a.max(b));
            let policy = Policy { ingress: vec![rule(0, RuleProtocol::Tcp, Some((min, max)), None)], ..Policy::default() };
            let allowed = matches!(policy.evaluate(Direction::Ingress, &tcp("10.0.0.1", port)), PolicyVerdict::Allowed(_));
            prop_assert_eq!(allowed, (min..=max).contains(&port));
        }
    }
}
