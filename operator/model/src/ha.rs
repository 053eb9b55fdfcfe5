//! Gateway HA groups laid out on the nodes: which port of which node is a
//! member port of which group, which remote instances (VMIs) a group
//! serves, which other nodes witness it, and what mode STP derives. The
//! operator (to decide status) and every node dataplane (to elect, fence
//! and steer) compute it the same way.
//!
//! ```text
//!  accepted GatewayHAGroup G, member (R, P)        ──> (R, P) is a member port of G
//!  accepted LogicalInterface on (R, P), VMI V       ──> G serves V (V is multi-homed:
//!    (V not in G's BPDU network)                        every member holding V is a path)
//!  networks of G's VMIs, their other nodes          ──> G's witnesses (they confirm the
//!                                                        fabric to the members, mode Fast)
//!  mode STP: VLAN 0 of every member port            ──> G's BPDU attachment: a logical
//!                                                        interface of the BPDU network
//!                                                        (derived unless declared)
//! ```
//!
//! A port belongs to at most one group: should two accepted groups name
//! the same member port (the operator refuses the newer), the older keeps
//! it, so the layout never depends on the order of the snapshot's lists.

use std::collections::{BTreeMap, BTreeSet};

use crate::object::{Meta, NamespacedName};
use crate::{GatewayHaGroup, HaMember, HaMode, HaTimers, Placement, Snapshot};

/// The key the pipeline gives the BPDU attachment it derives for group
/// `group` in the BPDU network's namespace: `<namespace>/GatewayHAGroup:<group>`
/// (a `:` no object name has, so it never collides with a VMI).
pub fn bpdu_attachment_key(bpdu_network: &NamespacedName, group: &str) -> String {
    format!("{}/GatewayHAGroup:{group}", bpdu_network.namespace)
}

/// How the groups of a snapshot lie on its nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HaLayout {
    groups: BTreeMap<String, GroupLayout>,
    /// (router, port) -> group.
    member_ports: BTreeMap<(String, String), String>,
    /// VMI -> the group serving it.
    vmi_groups: BTreeMap<NamespacedName, String>,
}

/// One accepted group, laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupLayout {
    /// The group's name.
    pub name: String,
    /// Its generation.
    pub generation: i64,
    /// STP or Fast.
    pub mode: HaMode,
    /// Its members whose port it keeps, sorted by router.
    pub members: Vec<HaMember>,
    /// Mode Fast's timers in effect.
    pub timers: Option<HaTimers>,
    /// Whether a better member takes the active role back.
    pub preempt: bool,
    /// Mode STP: the network flooding BPDUs between the members.
    pub bpdu_network: Option<NamespacedName>,
    /// The VMIs it serves: bound by accepted logical interfaces on its
    /// member ports (its BPDU network's excepted).
    pub vmis: BTreeSet<NamespacedName>,
}

impl GroupLayout {
    /// Whether `router` is a member.
    pub fn is_member(&self, router: &str) -> bool {
        self.members.iter().any(|m| m.physical_router == router)
    }

    /// The member on `router`.
    pub fn member(&self, router: &str) -> Option<&HaMember> {
        self.members.iter().find(|m| m.physical_router == router)
    }

    /// The networks of the VMIs it serves, by `vmi_network`.
    pub fn networks(
        &self,
        vmi_network: impl Fn(&NamespacedName) -> Option<NamespacedName>,
    ) -> BTreeSet<NamespacedName> {
        self.vmis.iter().filter_map(vmi_network).collect()
    }

    /// Its witnesses: the nodes holding one of `networks` (its VMIs'
    /// networks) that are not members, sorted.
    pub fn witnesses(
        &self,
        placement: &Placement,
        networks: &BTreeSet<NamespacedName>,
    ) -> BTreeSet<String> {
        placement
            .nodes_of(networks)
            .into_iter()
            .filter(|n| !self.is_member(n))
            .collect()
    }
}

impl HaLayout {
    /// The layout of `snapshot` where `accepted` says which objects count
    /// (the operator's own verdicts, or the objects' status on a node).
    pub fn new(snapshot: &Snapshot, accepted: impl Fn(&Meta) -> bool) -> Self {
        let mut groups: Vec<&GatewayHaGroup> = snapshot
            .gateway_ha_groups
            .iter()
            .map(|g| &**g)
            .filter(|g| accepted(&g.meta))
            .collect();
        groups.sort_by_key(|g| g.meta.age());
        let mut layout = HaLayout::default();
        for group in groups {
            let mut members: Vec<HaMember> = Vec::new();
            for member in &group.members {
                let port = (
                    member.physical_router.clone(),
                    member.physical_interface.clone(),
                );
                if layout.member_ports.contains_key(&port) {
                    continue;
                }
                layout
                    .member_ports
                    .insert(port, group.meta.name().to_owned());
                members.push(member.clone());
            }
            members.sort();
            layout.groups.insert(
                group.meta.name().to_owned(),
                GroupLayout {
                    name: group.meta.name().to_owned(),
                    generation: group.meta.generation,
                    mode: group.mode,
                    members,
                    timers: group.timers_in_effect(),
                    preempt: group.preempt,
                    bpdu_network: group.bpdu_network.clone(),
                    vmis: BTreeSet::new(),
                },
            );
        }
        if layout.member_ports.is_empty() {
            // No group: no logical interface to look at (at 16K of them on
            // a node without HA, most of a build's time went here).
            return layout;
        }
        let mut lis: Vec<_> = snapshot
            .logical_interfaces
            .iter()
            .filter(|li| accepted(&li.meta))
            .filter_map(|li| {
                let port = (li.physical_router.clone(), li.physical_interface.clone());
                Some((li, layout.member_ports.get(&port)?.clone()))
            })
            .collect();
        lis.sort_by_key(|(li, _)| li.meta.age());
        let served: BTreeSet<&NamespacedName> = lis.iter().map(|(li, _)| &li.vmi).collect();
        let network_of: BTreeMap<NamespacedName, NamespacedName> = snapshot
            .virtual_machine_interfaces
            .iter()
            .filter_map(|v| {
                let name = v.name();
                served.contains(&name).then(|| (name, v.network_name()))
            })
            .collect();
        for (li, name) in lis {
            let name = &name;
            let group = layout
                .groups
                .get_mut(name)
                .expect("member ports name groups");
            let network = network_of.get(&li.vmi);
            if network.is_some() && network == group.bpdu_network.as_ref() {
                continue;
            }
            // A VMI is served by one group: the group of its oldest binding.
            if layout.vmi_groups.contains_key(&li.vmi) {
                continue;
            }
            group.vmis.insert(li.vmi.clone());
            layout.vmi_groups.insert(li.vmi.clone(), name.clone());
        }
        layout
    }

    /// The layout by the objects' status (what a node dataplane acts on).
    pub fn from_status(snapshot: &Snapshot) -> Self {
        Self::new(snapshot, |meta| meta.accepted)
    }

    /// Every accepted group, by name.
    pub fn groups(&self) -> impl Iterator<Item = &GroupLayout> {
        self.groups.values()
    }

    /// The group named `name`, when accepted.
    pub fn group(&self, name: &str) -> Option<&GroupLayout> {
        self.groups.get(name)
    }

    /// The group whose member port is `port` of `router`.
    pub fn group_of_port(&self, router: &str, port: &str) -> Option<&GroupLayout> {
        self.member_ports
            .get(&(router.to_owned(), port.to_owned()))
            .and_then(|g| self.groups.get(g))
    }

    /// The group serving VMI `vmi`.
    pub fn group_of_vmi(&self, vmi: &NamespacedName) -> Option<&GroupLayout> {
        self.vmi_groups.get(vmi).and_then(|g| self.groups.get(g))
    }

    /// The groups `router` is a member of.
    pub fn groups_of_member<'a>(
        &'a self,
        router: &'a str,
    ) -> impl Iterator<Item = &'a GroupLayout> + 'a {
        self.groups.values().filter(move |g| g.is_member(router))
    }
}

/// Which declared groups name each (router, port) as a member port, oldest
/// group first: the operator's view, whatever the groups' acceptance (the
/// oldest keeps a contended port, and the rules about logical interfaces
/// must not depend on a group's verdict, which depends on them).
pub fn member_port_claims(snapshot: &Snapshot) -> BTreeMap<(String, String), Vec<&GatewayHaGroup>> {
    let mut groups: Vec<&GatewayHaGroup> =
        snapshot.gateway_ha_groups.iter().map(|g| &**g).collect();
    groups.sort_by_key(|g| g.meta.age());
    let mut claims: BTreeMap<(String, String), Vec<&GatewayHaGroup>> = BTreeMap::new();
    for group in groups {
        for member in &group.members {
            let port = (
                member.physical_router.clone(),
                member.physical_interface.clone(),
            );
            let claimants = claims.entry(port).or_default();
            if !claimants.iter().any(|g| g.meta.key == group.meta.key) {
                claimants.push(group);
            }
        }
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Kind, Meta};
    use crate::{InterfaceType, LogicalInterface, VirtualMachineInterface};
    use std::sync::Arc;

    fn group(name: &str, created: i64, mode: HaMode, members: &[(&str, &str)]) -> GatewayHaGroup {
        GatewayHaGroup {
            meta: Meta::cluster(Kind::GatewayHAGroup, name, Some(created), 1).with_accepted(true),
            mode,
            members: members
                .iter()
                .map(|(r, p)| HaMember {
                    physical_router: r.to_string(),
                    physical_interface: p.to_string(),
                    priority: 100,
                })
                .collect(),
            bpdu_network: (mode == HaMode::Stp).then(|| NamespacedName::new("infra", "bpdu")),
            timers: None,
            preempt: true,
        }
    }

    fn li(name: &str, created: i64, router: &str, port: &str, vmi: &str) -> LogicalInterface {
        LogicalInterface {
            meta: Meta::cluster(Kind::LogicalInterface, name, Some(created), 1).with_accepted(true),
            physical_router: router.into(),
            physical_interface: port.into(),
            vlan: 100,
            interface_type: InterfaceType::L2,
            vmi: name_of(vmi),
        }
    }

    fn name_of(text: &str) -> NamespacedName {
        let (ns, name) = text.split_once('/').unwrap();
        NamespacedName::new(ns, name)
    }

    fn vmi(key: &str, network: &str) -> VirtualMachineInterface {
        let name = name_of(key);
        VirtualMachineInterface {
            meta: Meta::namespaced(
                Kind::VirtualMachineInterface,
                &name.namespace,
                &name.name,
                Some(1),
                1,
            )
            .with_accepted(true),
            network: network.into(),
            mac: None,
            ips: vec![],
            active_active: vec![],
            allowed_address_pairs: vec![],
            port_security: true,
            security_groups: Vec::new(),
            mpls_label: None,
            defects: vec![],
        }
    }

    #[test]
    fn member_ports_vmis_and_the_bpdu_network() {
        let snapshot = Snapshot {
            gateway_ha_groups: vec![
                group(
                    "newer",
                    20,
                    HaMode::Fast,
                    &[("gw1", "eth1"), ("gw3", "eth1")],
                )
                .into(),
                group("rack", 10, HaMode::Stp, &[("gw1", "eth1"), ("gw2", "eth1")]).into(),
            ],
            logical_interfaces: vec![
                li("a", 1, "gw1", "eth1", "t/v1").into(),
                li("b", 2, "gw2", "eth1", "t/v1").into(),
                li("c", 3, "gw3", "eth1", "t/v2").into(),
                li("d", 4, "gw1", "eth2", "t/v3").into(),
                li("e", 5, "gw2", "eth1", "infra/dummy").into(),
            ],
            virtual_machine_interfaces: vec![
                vmi("t/v1", "n1").into(),
                vmi("t/v2", "n1").into(),
                vmi("t/v3", "n1").into(),
                vmi("infra/dummy", "bpdu").into(),
            ],
            ..Snapshot::default()
        };
        let layout = HaLayout::from_status(&snapshot);
        let rack = layout.group("rack").unwrap();
        assert_eq!(
            rack.members
                .iter()
                .map(|m| m.physical_router.as_str())
                .collect::<Vec<_>>(),
            ["gw1", "gw2"]
        );
        assert_eq!(
            rack.vmis
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["t/v1"],
            "the BPDU network's VMI is not served by the group"
        );
        // The older group keeps gw1/eth1.
        let newer = layout.group("newer").unwrap();
        assert_eq!(newer.members.len(), 1);
        assert_eq!(layout.group_of_port("gw1", "eth1").unwrap().name, "rack");
        assert_eq!(layout.group_of_port("gw3", "eth1").unwrap().name, "newer");
        assert!(layout.group_of_port("gw1", "eth2").is_none());
        assert_eq!(layout.group_of_vmi(&name_of("t/v2")).unwrap().name, "newer");
        assert!(layout.group_of_vmi(&name_of("t/v3")).is_none());
        assert_eq!(layout.groups_of_member("gw1").count(), 1);

        let claims = member_port_claims(&snapshot);
        let names: Vec<&str> = claims[&("gw1".to_owned(), "eth1".to_owned())]
            .iter()
            .map(|g| g.meta.name())
            .collect();
        assert_eq!(names, ["rack", "newer"]);

        // Not accepted: not laid out.
        let mut refused = snapshot.clone();
        Arc::make_mut(&mut refused.gateway_ha_groups[1])
            .meta
            .accepted = false;
        let layout = HaLayout::from_status(&refused);
        assert!(layout.group("rack").is_none());
        assert_eq!(layout.group("newer").unwrap().members.len(), 2);
    }

    #[test]
    fn the_layout_does_not_depend_on_list_order() {
        let groups: Vec<Arc<GatewayHaGroup>> = vec![
            group("g1", 5, HaMode::Fast, &[("gw1", "eth1"), ("gw2", "eth1")]).into(),
            group("g2", 5, HaMode::Fast, &[("gw2", "eth1"), ("gw3", "eth1")]).into(),
        ];
        let lis: Vec<Arc<LogicalInterface>> = vec![
            li("a", 1, "gw2", "eth1", "t/v1").into(),
            li("b", 1, "gw3", "eth1", "t/v1").into(),
        ];
        let one = Snapshot {
            gateway_ha_groups: groups.clone(),
            logical_interfaces: lis.clone(),
            ..Snapshot::default()
        };
        let mut other = one.clone();
        other.gateway_ha_groups.reverse();
        other.logical_interfaces.reverse();
        assert_eq!(HaLayout::from_status(&one), HaLayout::from_status(&other));
        assert_eq!(
            bpdu_attachment_key(&NamespacedName::new("infra", "bpdu"), "rack"),
            "infra/GatewayHAGroup:rack"
        );
    }
}
