//! The security-group policy of each VMI this node holds, from the domain
//! model into the pipeline's rules: pure, tested on plain objects.
//!
//! ```text
//!  VMI.groups() (named, or "default"; none with portSecurity false)
//!    naming none and no SecurityGroup "default" in the namespace: not
//!    policed (None: every flow allowed, frames stay in the XDP tier)
//!    each group: the SecurityGroup of the VMI's namespace, or (missing)
//!    no rule at all (fail closed)
//!    each rule: family, protocol, ports, remote
//!       remote group g --> host prefixes of the addresses of the VMIs of the
//!                          namespace using g, of the rule's family
//!  ==> trunkline_pipeline::policy::Policy { ingress, egress }
//! ```
//!
//! Rule ids: `group` is the position of the group in the VMI's list
//! (`Policy::groups` holds the names, for the per-rule counters), `index`
//! the rule's position in the group's list for its direction. The agent
//! puts the result in `NodeConfig::policies` for every VMI of its node.

use std::net::IpAddr;

use trunkline_model::{
    DEFAULT_GROUP, Family, IpPrefix, Protocol, Remote, Rule, SecurityGroup, Snapshot,
    VirtualMachineInterface,
};
use trunkline_pipeline::policy::{self, Policy, PortRange, RuleId, RuleProtocol};

/// The policy of `vmi`; `None` when it is not policed: port security off,
/// or no group named and no SecurityGroup `default` in its namespace.
pub fn policy_of(vmi: &VirtualMachineInterface, snapshot: &Snapshot) -> Option<Policy> {
    if !vmi.port_security {
        return None;
    }
    let namespace = vmi.meta.namespace();
    let find = |name: &str| {
        snapshot
            .security_groups
            .iter()
            .find(|s| s.meta.namespace() == namespace && s.meta.name() == name)
            .map(|s| &**s)
    };
    if vmi.security_groups.is_empty() && find(DEFAULT_GROUP).is_none() {
        return None;
    }
    let mut out = Policy::default();
    for (g, name) in vmi.groups().into_iter().enumerate() {
        out.groups.push(name.to_owned());
        // A missing group allows nothing (the operator says so).
        let Some(SecurityGroup {
            ingress, egress, ..
        }) = find(name)
        else {
            continue;
        };
        let group = u16::try_from(g).unwrap_or(u16::MAX);
        for (rules, into) in [(ingress, &mut out.ingress), (egress, &mut out.egress)] {
            for (i, rule) in rules.iter().enumerate() {
                let id = RuleId {
                    group,
                    index: u16::try_from(i).unwrap_or(u16::MAX),
                };
                into.push(compile(rule, id, namespace, snapshot));
            }
        }
    }
    Some(out)
}

fn compile(rule: &Rule, id: RuleId, namespace: &str, snapshot: &Snapshot) -> policy::Rule {
    let ipv6 = rule.family == Family::V6;
    let remote = match &rule.remote {
        Remote::Any => None,
        Remote::Prefix(p) => Some(vec![*p]),
        Remote::Group(g) => Some(members(g, namespace, ipv6, snapshot)),
    };
    policy::Rule {
        id,
        ipv6,
        protocol: match rule.protocol {
            Protocol::Any => RuleProtocol::Any,
            Protocol::Tcp => RuleProtocol::Tcp,
            Protocol::Udp => RuleProtocol::Udp,
            Protocol::Icmp => RuleProtocol::Icmp,
        },
        ports: rule.ports.as_ref().map(|p| PortRange {
            min: *p.start(),
            max: *p.end(),
        }),
        remote,
    }
}

/// Host prefixes of the addresses (of one family) of the VMIs of
/// `namespace` using group `group`, sorted.
fn members(group: &str, namespace: &str, ipv6: bool, snapshot: &Snapshot) -> Vec<IpPrefix> {
    let mut out: Vec<IpPrefix> = snapshot
        .virtual_machine_interfaces
        .iter()
        .filter(|v| v.meta.namespace() == namespace && v.groups().contains(&group))
        .flat_map(|v| v.ips.iter())
        .filter(|ip| matches!(ip, IpAddr::V6(_)) == ipv6)
        .map(|ip| IpPrefix::host(*ip))
        .collect();
    out.sort_unstable_by_key(|p| p.to_string());
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trunkline_pipeline::policy::{Direction, FlowTuple, PolicyVerdict, proto};

    fn vmi(name: &str, ip: &str, groups: &[&str], port_security: bool) -> VirtualMachineInterface {
        let api: trunkline_api::VirtualMachineInterface = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": {"name": name, "namespace": "t1"},
            "spec": {"virtualNetwork": "net1", "macAddress": "02:00:00:00:00:01",
                     "ips": [{"address": ip}], "securityGroups": groups,
                     "portSecurity": port_security},
        }))
        .unwrap();
        trunkline_model::from_api::virtual_machine_interface(&api)
    }

    fn group(name: &str, ingress: serde_json::Value) -> SecurityGroup {
        let api: trunkline_api::SecurityGroup = serde_json::from_value(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "SecurityGroup",
            "metadata": {"name": name, "namespace": "t1"},
            "spec": {"ingress": ingress, "egress": [{}]},
        }))
        .unwrap();
        trunkline_model::from_api::security_group(&api)
    }

    fn tcp(remote: &str, dport: u16) -> FlowTuple {
        FlowTuple {
            proto: proto::TCP,
            remote: remote.parse().unwrap(),
            dport,
        }
    }

    fn allowed(p: &Policy, direction: Direction, flow: &FlowTuple) -> bool {
        matches!(p.evaluate(direction, flow), PolicyVerdict::Allowed(_))
    }

    #[test]
    fn a_remote_group_becomes_its_members_addresses() {
        let web = vmi("web-1", "10.0.0.10", &["web"], true);
        let admin = vmi("admin-1", "10.0.0.12", &["admin"], true);
        let other = vmi("other", "10.0.0.13", &[], true);
        let s = Snapshot {
            virtual_machine_interfaces: vec![web.clone().into(), admin.into(), other.into()],
            security_groups: vec![
                group(
                    "web",
                    json!([{"protocol": "TCP", "ports": {"min": 22, "max": 22}, "remoteGroup": "admin"}]),
                )
                .into(),
            ],
            ..Snapshot::default()
        };
        let p = policy_of(&web, &s).unwrap();
        assert!(allowed(&p, Direction::Ingress, &tcp("10.0.0.12", 22)));
        assert!(!allowed(&p, Direction::Ingress, &tcp("10.0.0.12", 80)));
        assert!(!allowed(&p, Direction::Ingress, &tcp("10.0.0.13", 22)));
        assert!(allowed(&p, Direction::Egress, &tcp("10.0.0.13", 80)));
    }

    #[test]
    fn without_a_default_object_a_vmi_naming_no_group_is_not_policed() {
        let a = vmi("a", "10.0.0.10", &[], true);
        let c = vmi("c", "10.0.0.12", &["web"], true);
        let s = Snapshot {
            virtual_machine_interfaces: vec![a.clone().into(), c.clone().into()],
            ..Snapshot::default()
        };
        assert_eq!(policy_of(&a, &s), None);
        // A named group that is missing: policed, nothing allowed.
        let p = policy_of(&c, &s).unwrap();
        assert!(p.ingress.is_empty() && p.egress.is_empty());
        assert_eq!(p.groups, ["web"]);
    }

    #[test]
    fn the_default_object_admits_its_members_only_and_port_security_off_has_no_policy() {
        let a = vmi("a", "10.0.0.10", &[], true);
        let b = vmi("b", "10.0.0.11", &[], true);
        let c = vmi("c", "10.0.0.12", &["web"], true);
        // deploy/examples' default: every egress, ingress from its members.
        let default = group(
            DEFAULT_GROUP,
            json!([{"remoteGroup": "default"}, {"ethertype": "IPv6", "remoteGroup": "default"}]),
        );
        let s = Snapshot {
            virtual_machine_interfaces: vec![a.clone().into(), b.into(), c.into()],
            security_groups: vec![default.into()],
            ..Snapshot::default()
        };
        let p = policy_of(&a, &s).unwrap();
        assert!(allowed(&p, Direction::Ingress, &tcp("10.0.0.11", 80)));
        assert!(!allowed(&p, Direction::Ingress, &tcp("10.0.0.12", 80)));
        assert!(allowed(&p, Direction::Egress, &tcp("198.51.100.1", 443)));
        // web does not exist: nothing is allowed for c.
        let c = &s.virtual_machine_interfaces[2];
        let p = policy_of(c, &s).unwrap();
        assert!(p.ingress.is_empty() && p.egress.is_empty());
        let open = vmi("open", "10.0.0.14", &["web"], false);
        assert_eq!(policy_of(&open, &s), None);
    }
}
