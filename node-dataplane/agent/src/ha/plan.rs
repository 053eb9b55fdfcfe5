//! What gateway HA asks of one node, from the objects the operator
//! accepted (pure, part of the node's desired state):
//!
//! ```text
//!  HaLayout (model) ──> member of group G on port P ──> pipeline: HaGroupConfig { G, mode, [P] }
//!                   │                                  HA thread: elect (Fast) or watch BPDUs (STP)
//!                   ├─> mode STP, VLAN 0 of P free ───> a derived BPDU attachment: a VMI of the
//!                   │                                  BPDU network bound to VLAN 0 of P
//!                   ├─> a VMI G serves, held by several
//!                   │   nodes (local or remote here) ─> pipeline: MultihomedVmiConfig (its paths)
//!                   │                                  HA thread: its label, group and holders
//!                   └─> witness of G (a node of its networks, not a member): heartbeats only
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use trunkline_model::ha::bpdu_attachment_key;
use trunkline_model::{HaLayout, HaMode, NamespacedName, Placement, Snapshot, VirtualNetwork};
use trunkline_pipeline::config::{
    CreationOrder, HaGroupConfig, HaMode as PipelineHaMode, LogicalInterfaceConfig,
    MultihomedVmiConfig, PortId, VmiConfig,
};

use super::election::{Member, Timers};
use super::paths::VmiSpec;
use crate::desired::{Desired, PortRole};

/// What the HA thread of a node works with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HaPlan {
    /// The node.
    pub node: String,
    /// Its underlay address: heartbeats and claims come from it.
    pub address: Option<IpAddr>,
    /// Its fabric interface (whose link state counts).
    pub fabric_interface: Option<String>,
    /// The groups it is a member or a witness of, by name.
    pub groups: Vec<GroupPlan>,
    /// The multi-homed VMIs it sends to or serves, with their labels.
    pub vmis: Vec<VmiSpec>,
    /// The underlay address of every node it talks to.
    pub addresses: BTreeMap<String, IpAddr>,
}

/// One group, as the node takes part in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPlan {
    /// The group's name.
    pub name: String,
    /// Its generation.
    pub generation: i64,
    /// STP or Fast.
    pub mode: HaMode,
    /// Mode Fast's timers.
    pub timers: Option<Timers>,
    /// Whether a better member takes the role back.
    pub preempt: bool,
    /// This node as a member (its priority, its member port), or `None`
    /// for a witness.
    pub me: Option<(Member, String)>,
    /// Every member, sorted by name.
    pub members: Vec<Member>,
    /// Its witnesses (not members), sorted.
    pub witnesses: Vec<String>,
    /// Mode STP, a member: the VMI bound to VLAN 0 of its member port
    /// (whose received frames are the switch's BPDUs).
    pub bpdu_vmi: Option<String>,
}

impl GroupPlan {
    /// The other nodes of the group: members but this one, and witnesses.
    pub fn others<'a>(&'a self, me: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.members
            .iter()
            .map(|m| m.name.as_str())
            .chain(self.witnesses.iter().map(String::as_str))
            .filter(move |n| *n != me)
    }
}

/// A derived BPDU attachment's MAC: locally administered, from the group's
/// name (nothing is ever sent from it; it only names the VMI in the
/// bridge table).
fn attachment_mac(group: &str) -> [u8; 6] {
    let hash = group.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let b = hash.to_be_bytes();
    [0x02, 0xb9, b[0], b[1], b[2], b[3]]
}

fn timers(layout: &trunkline_model::GroupLayout) -> Option<Timers> {
    layout.timers.map(|t| Timers {
        hello: Duration::from_millis(u64::from(t.hello_millis)),
        dead: Duration::from_millis(u64::from(t.dead_millis)),
    })
}

/// The pipeline's HA groups of `node` and, in mode STP, the BPDU
/// attachments the operator derives (unless VLAN 0 of the member port is
/// bound already): their networks are added to `used_networks`. Runs once
/// the logical interfaces and VMIs are in `out.config`.
pub fn attachments(
    node: &str,
    snapshot: &Snapshot,
    layout: &HaLayout,
    networks: &BTreeMap<NamespacedName, &VirtualNetwork>,
    out: &mut Desired,
    used_networks: &mut BTreeSet<NamespacedName>,
) {
    for group in layout.groups_of_member(node) {
        let Some(member) = group.member(node) else {
            continue;
        };
        let Some(port) = out
            .ports
            .iter()
            .position(|p| p.name == member.physical_interface && p.role == PortRole::Trunk)
        else {
            out.skipped.push(format!(
                "GatewayHAGroup {}: member port {} is not a trunk of this node",
                group.name, member.physical_interface
            ));
            continue;
        };
        let port = PortId(port as u16);
        out.config.ha_groups.push(HaGroupConfig {
            key: group.name.clone(),
            mode: match group.mode {
                HaMode::Stp => PipelineHaMode::Stp,
                HaMode::Fast => PipelineHaMode::Fast,
            },
            ports: vec![port],
        });
        if let Some(object) = snapshot
            .gateway_ha_groups
            .iter()
            .find(|g| g.meta.name() == group.name)
        {
            out.held.insert(object.meta.key.clone());
        }
        let (HaMode::Stp, Some(bpdu)) = (group.mode, &group.bpdu_network) else {
            continue;
        };
        let declared = out
            .config
            .logical_interfaces
            .iter()
            .any(|li| li.port == port && li.vlan == 0);
        if declared {
            continue;
        }
        if !networks.get(bpdu).is_some_and(|n| n.meta.accepted) {
            out.skipped.push(format!(
                "GatewayHAGroup {}: BPDU network {bpdu} not accepted: no BPDU attachment",
                group.name
            ));
            continue;
        }
        let key = bpdu_attachment_key(bpdu, &group.name);
        out.config.vmis.push(VmiConfig {
            key: key.clone(),
            network: bpdu.to_string(),
            mac: attachment_mac(&group.name),
            ips: Vec::new(),
            allowed_address_pairs: Vec::new(),
            port_security: false,
            label: None,
        });
        let created = snapshot
            .gateway_ha_groups
            .iter()
            .find(|g| g.meta.name() == group.name)
            .and_then(|g| g.meta.created)
            .unwrap_or_default();
        let name = format!("GatewayHAGroup:{}", group.name);
        out.config.logical_interfaces.push(LogicalInterfaceConfig {
            key: name.clone(),
            port,
            vlan: 0,
            vmi: key,
            order: CreationOrder {
                created_secs: created,
                name,
            },
        });
        used_networks.insert(bpdu.clone());
    }
}

/// The multi-homed VMIs of the node's tables and the HA thread's plan.
/// Runs once the networks, peers and remote VMIs are in `out.config`.
pub fn plan(
    node: &str,
    snapshot: &Snapshot,
    placement: &Placement,
    layout: &HaLayout,
    out: &mut Desired,
) {
    let mut plan = HaPlan {
        node: node.to_owned(),
        address: placement.underlay_address(node),
        fabric_interface: out.fabric_interface.clone(),
        ..HaPlan::default()
    };
    // No group: nothing below applies (and its maps of every VMI cost a
    // twentieth of a build at 16K remote instances).
    if layout.groups().next().is_none() {
        out.ha = plan;
        return;
    }
    let peers: BTreeSet<&str> = out.config.peers.iter().map(|p| p.key.as_str()).collect();
    let labels: BTreeMap<NamespacedName, u32> = snapshot
        .virtual_machine_interfaces
        .iter()
        .filter_map(|v| Some((v.name(), v.mpls_label?)))
        .collect();
    let network_of: BTreeMap<NamespacedName, NamespacedName> = snapshot
        .virtual_machine_interfaces
        .iter()
        .map(|v| (v.name(), v.network_name()))
        .collect();
    let known: BTreeSet<String> = out
        .config
        .vmis
        .iter()
        .map(|v| v.key.clone())
        .chain(out.config.remote_vmis.iter().map(|r| r.key.clone()))
        .collect();
    for group in layout.groups() {
        let member = group.member(node);
        let networks = group.networks(|v| network_of.get(v).cloned());
        let witnesses = group.witnesses(placement, &networks);
        if member.is_none() && !witnesses.contains(node) {
            continue;
        }
        // The VMIs of the group this node sends to or serves.
        for vmi in &group.vmis {
            let key = vmi.to_string();
            let holders = placement.vmi_nodes(vmi);
            if holders.len() < 2 || !known.contains(&key) {
                continue;
            }
            let others: Vec<String> = holders
                .iter()
                .filter(|h| h.as_str() != node && peers.contains(h.as_str()))
                .cloned()
                .collect();
            out.config.multihomed.push(MultihomedVmiConfig {
                vmi: key.clone(),
                peers: others,
            });
            if let Some(label) = labels.get(vmi) {
                plan.vmis.push(VmiSpec {
                    label: *label,
                    key,
                    group: group.name.clone(),
                    holders: holders.clone(),
                });
            }
        }
        let bpdu_vmi = match (member, group.mode) {
            (Some(m), HaMode::Stp) => out
                .ports
                .iter()
                .position(|p| p.name == m.physical_interface)
                .and_then(|port| {
                    out.config
                        .logical_interfaces
                        .iter()
                        .find(|li| usize::from(li.port.0) == port && li.vlan == 0)
                })
                .map(|li| li.vmi.clone()),
            _ => None,
        };
        let all: Vec<Member> = group
            .members
            .iter()
            .map(|m| Member {
                name: m.physical_router.clone(),
                priority: m.priority,
            })
            .collect();
        let mut names: BTreeSet<String> = all.iter().map(|m| m.name.clone()).collect();
        names.extend(witnesses.iter().cloned());
        for name in names {
            if let Some(address) = placement.underlay_address(&name) {
                plan.addresses.insert(name, address);
            }
        }
        plan.groups.push(GroupPlan {
            name: group.name.clone(),
            generation: group.generation,
            mode: group.mode,
            timers: timers(group),
            preempt: group.preempt,
            me: member.map(|m| {
                (
                    Member {
                        name: node.to_owned(),
                        priority: m.priority,
                    },
                    m.physical_interface.clone(),
                )
            }),
            members: all,
            witnesses: witnesses.into_iter().collect(),
            bpdu_vmi,
        });
    }
    plan.vmis.sort();
    out.config.multihomed.sort();
    out.ha = plan;
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use trunkline_api::{
        GatewayHAGroup, LogicalInterface, PhysicalRouter, VirtualMachineInterface, VirtualNetwork,
    };
    use trunkline_model::from_api::OwnedObjects;

    use crate::desired::{Desired, HostFacts, desired};
    use crate::hostnet::FabricFacts;

    fn accepted(generation: i64) -> Value {
        json!({"conditions": [{"type": "Accepted", "status": "True", "reason": "Ok", "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation}]})
    }

    fn object<T: serde::de::DeserializeOwned>(mut value: Value) -> T {
        value["metadata"]["generation"] = json!(1);
        value["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        if value["kind"] != "PhysicalRouter" {
            value["status"] = accepted(1);
        }
        serde_json::from_value(value).unwrap()
    }

    /// gw1 and gw2 share VMI `v1` through the member ports `eth1` of group
    /// `g`; gw3 holds `v3` of the same network (a witness).
    fn run(node: &str, mode: &str) -> Desired {
        let routers: Vec<PhysicalRouter> = (1..=3)
            .map(|i| {
                object(json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
                "metadata": {"name": format!("gw{i}")},
                "spec": {"physicalInterfaces": [{"name": "eth1"}],
                         "fabric": {"interface": "eth0", "underlayAddress": format!("10.0.0.{i}")}}}))
            })
            .collect();
        let network = |ns: &str, name: &str, mode: &str, label: u32| -> VirtualNetwork {
            let mut n: VirtualNetwork = object(
                json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"subnets": [{"cidr": "192.168.1.0/24"}], "forwardingMode": mode}}),
            );
            let status = n.status.as_mut().unwrap();
            status.mpls_label = Some(label);
            status.vni = Some(4000 + label);
            n
        };
        let networks = vec![
            network("t", "net1", "L2L3", 16),
            network("infra", "bpdu", "L2", 17),
        ];
        let vmi = |name: &str, mac: &str, ip: &str, label: u32| -> VirtualMachineInterface {
            let mut v: VirtualMachineInterface = object(
                json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
                "metadata": {"name": name, "namespace": "t"},
                "spec": {"virtualNetwork": "net1", "macAddress": mac, "ips": [{"address": ip}]}}),
            );
            v.status.as_mut().unwrap().mpls_label = Some(label);
            v
        };
        let vmis = vec![
            vmi("v1", "02:00:00:00:00:01", "192.168.1.10", 20),
            vmi("v3", "02:00:00:00:00:03", "192.168.1.30", 21),
        ];
        let li = |node: &str, vmi: &str| -> LogicalInterface {
            object(
                json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
                "metadata": {"name": format!("{node}-{vmi}")},
                "spec": {"physicalRouter": node, "physicalInterface": "eth1", "vlan": 100,
                         "virtualMachineInterface": {"namespace": "t", "name": vmi}}}),
            )
        };
        let lis = vec![li("gw1", "v1"), li("gw2", "v1"), li("gw3", "v3")];
        let mut spec = json!({"mode": mode, "members": [
            {"physicalRouter": "gw1", "physicalInterface": "eth1", "priority": 200},
            {"physicalRouter": "gw2", "physicalInterface": "eth1"}]});
        if mode == "STP" {
            spec["bpduNetwork"] = json!({"namespace": "infra", "name": "bpdu"});
        }
        let groups: Vec<GatewayHAGroup> =
            vec![object(json!({"apiVersion": "trunkline.io/v1alpha1",
            "kind": "GatewayHAGroup", "metadata": {"name": "g"}, "spec": spec}))];
        let snapshot = OwnedObjects {
            physical_routers: routers,
            virtual_networks: networks,
            virtual_machine_interfaces: vmis,
            logical_interfaces: lis,
            gateway_ha_groups: groups,
            ..OwnedObjects::default()
        }
        .snapshot();
        let host = HostFacts {
            fabric: Some(FabricFacts {
                mac: [2, 0, 0, 0, 0xfa, 1],
                mtu: 1500,
            }),
            ..HostFacts::default()
        };
        desired(node, &snapshot, &host)
    }

    #[test]
    fn a_fast_member_gets_its_group_its_paths_and_its_plan() {
        let d = run("gw1", "Fast");
        let groups: Vec<_> = d
            .config
            .ha_groups
            .iter()
            .map(|g| (g.key.as_str(), g.mode, g.ports.clone()))
            .collect();
        use trunkline_pipeline::config::{HaMode, PortId};
        assert_eq!(groups, [("g", HaMode::Fast, vec![PortId(0)])]);
        let multihomed: Vec<_> = d
            .config
            .multihomed
            .iter()
            .map(|m| (m.vmi.as_str(), m.peers.clone()))
            .collect();
        assert_eq!(multihomed, [("t/v1", vec!["gw2".to_owned()])]);
        assert!(
            d.held
                .iter()
                .any(|k| k.kind == trunkline_model::Kind::GatewayHAGroup),
            "{:?}",
            d.held
        );
        let g = &d.ha.groups[0];
        assert_eq!(
            g.me.as_ref().map(|(m, p)| (m.priority, p.as_str())),
            Some((200, "eth1"))
        );
        assert_eq!(g.witnesses, ["gw3"]);
        assert_eq!(g.timers.map(|t| t.dead.as_millis()), Some(500), "defaults");
        assert_eq!(d.ha.vmis.len(), 1);
        assert_eq!(d.ha.vmis[0].label, 20);
        assert_eq!(d.ha.address, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(d.ha.addresses.len(), 3);
        // The tables compile it all.
        let (tables, rejected) = trunkline_pipeline::Tables::compile(&d.config);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(tables.vmi_path("t/v1"), Some(None));
    }

    #[test]
    fn a_witness_routes_to_the_group_through_its_paths() {
        let d = run("gw3", "Fast");
        assert!(d.config.ha_groups.is_empty(), "not a member");
        let multihomed: Vec<_> = d
            .config
            .multihomed
            .iter()
            .map(|m| (m.vmi.as_str(), m.peers.clone()))
            .collect();
        assert_eq!(
            multihomed,
            [("t/v1", vec!["gw1".to_owned(), "gw2".to_owned()])]
        );
        assert!(d.ha.groups[0].me.is_none());
        let (tables, rejected) = trunkline_pipeline::Tables::compile(&d.config);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(
            tables.vmi_path("t/v1"),
            Some(Some("gw1")),
            "the first holder"
        );
    }

    #[test]
    fn stp_mode_derives_the_bpdu_attachment() {
        let d = run("gw2", "STP");
        let key = "infra/GatewayHAGroup:g";
        let vmi = d
            .config
            .vmis
            .iter()
            .find(|v| v.key == key)
            .expect("derived");
        assert!(!vmi.port_security);
        assert_eq!(vmi.network, "infra/bpdu");
        let li = d
            .config
            .logical_interfaces
            .iter()
            .find(|l| l.vmi == key)
            .unwrap();
        assert_eq!((li.port.0, li.vlan), (0, 0));
        let bpdu = d
            .config
            .networks
            .iter()
            .find(|n| n.key == "infra/bpdu")
            .expect("the BPDU network is here");
        assert_eq!(bpdu.peers, ["gw1"], "flooded to the other member");
        assert_eq!(d.ha.groups[0].bpdu_vmi.as_deref(), Some(key));
        let (_, rejected) = trunkline_pipeline::Tables::compile(&d.config);
        assert!(rejected.is_empty(), "{rejected:?}");
        // gw3 is no member: no BPDU network there.
        let d = run("gw3", "STP");
        assert!(d.config.networks.iter().all(|n| n.key != "infra/bpdu"));
    }
}
