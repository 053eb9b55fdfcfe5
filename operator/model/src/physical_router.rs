//! A gateway node: its trunk ports, its fabric side and what its node
//! dataplane reports it holds (watermarks and exceptions, see
//! [`NodeReport`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::from_api::{self, read};
use crate::object::{Kind, Meta, ObjectKey};
use crate::resource_version::ResourceVersion;

/// A gateway node and what its dataplane reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalRouter {
    /// Identity (cluster-scoped; named after the node).
    pub meta: Meta,
    /// The physical interfaces facing remote instances, in the order of
    /// the spec (the node dataplane numbers its ports in that order).
    pub interfaces: Vec<PhysicalInterface>,
    /// The fabric (underlay) side, when declared.
    pub fabric: Option<Fabric>,
    /// Most logical interfaces the node accepts.
    pub interface_limit: u32,
    /// What the node dataplane reports its fast path holds.
    pub report: NodeReport,
    /// What the node dataplane reports of its HA groups
    /// (`status.haGroups`).
    pub ha_reports: Vec<HaReport>,
    /// Field values that could not be read, each a message for the user.
    pub defects: Vec<String>,
}

/// A port of a gateway node facing remote instances.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysicalInterface {
    /// The Linux interface name.
    pub name: String,
    /// The MTU to expect on it; `None`: the interface's own.
    pub mtu: Option<u32>,
}

impl PhysicalInterface {
    /// A port named `name` with the interface's own MTU.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mtu: None,
        }
    }
}

/// The fabric (underlay) side of a gateway node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fabric {
    /// The Linux interface toward the IP fabric.
    pub interface: String,
    /// The node's underlay address (its tunnel endpoint), when declared and
    /// readable.
    pub underlay_address: Option<IpAddr>,
}

/// What a node reports its tables hold: every object labelled for it up
/// to a resource version per kind, except the exceptions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeReport {
    /// Per kind, the highest resource version the installed tables were
    /// built from (`status.programmedThrough`); a kind absent, or a value
    /// not in the comparable form, holds nothing.
    pub programmed_through: BTreeMap<Kind, ResourceVersion>,
    /// The objects labelled for the node that its tables do not hold, with
    /// why (`status.exceptions`).
    pub exceptions: BTreeMap<ObjectKey, String>,
    /// The exceptions were cut (`status.exceptionsTruncated`): nothing can
    /// be said of this node's objects.
    pub truncated: bool,
    /// The version count of the node's installed tables
    /// (`status.programmedGeneration`): a restarted agent goes on from it.
    pub tables_version: Option<i64>,
}

impl NodeReport {
    /// Whether the node reported anything at all.
    pub fn is_empty(&self) -> bool {
        self.programmed_through.is_empty() && self.exceptions.is_empty() && !self.truncated
    }
}

/// A member's state in an HA group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HaState {
    /// It forwards and answers for the group's instances.
    Active,
    /// It receives but neither forwards nor answers.
    Standby,
    /// It cannot serve (or is not heard).
    Down,
}

impl HaState {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HaState::Active => "Active",
            HaState::Standby => "Standby",
            HaState::Down => "Down",
        }
    }

    /// The state spelled `text`; anything unknown counts as `Down`.
    pub fn parse(text: &str) -> Self {
        match text {
            "Active" => HaState::Active,
            "Standby" => HaState::Standby,
            _ => HaState::Down,
        }
    }
}

/// A node's report on one of its HA groups (`status.haGroups[]`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HaReport {
    /// The group.
    pub group: String,
    /// The group's generation the node acts on.
    pub generation: i64,
    /// The node's state in it.
    pub state: HaState,
    /// Since when, in seconds since the epoch.
    pub since: i64,
    /// Why (CamelCase).
    pub reason: String,
    /// Why, for a person.
    pub message: Option<String>,
    /// What it hears of the other members.
    pub peers: Vec<HaPeerView>,
}

/// What a node hears of another member.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HaPeerView {
    /// The other member.
    pub physical_router: String,
    /// Whether its heartbeats arrive.
    pub heard: bool,
    /// Since when, in seconds since the epoch.
    pub since: i64,
}

impl PhysicalRouter {
    /// Its report on group `group`, if it made one.
    pub fn ha_report(&self, group: &str) -> Option<&HaReport> {
        self.ha_reports.iter().find(|r| r.group == group)
    }

    /// Whether `name` is one of its physical interfaces.
    pub fn has_interface(&self, name: &str) -> bool {
        self.interfaces.iter().any(|i| i.name == name)
    }

    /// The names of its physical interfaces, sorted (for messages).
    pub fn interface_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.interfaces.iter().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        names
    }

    /// The node's underlay address, when declared and readable.
    pub fn underlay_address(&self) -> Option<IpAddr> {
        self.fabric.as_ref().and_then(|f| f.underlay_address)
    }

    /// Converts the API object (see [`crate::from_api`]).
    pub fn from_api(router: &trunkline_api::PhysicalRouter) -> Self {
        let mut defects = Vec::new();
        let report = router
            .status
            .as_ref()
            .map(|s| NodeReport {
                programmed_through: s
                    .programmed_through
                    .iter()
                    .filter_map(|(kind, rv)| {
                        Some((Kind::from_name(kind)?, ResourceVersion::parse(rv)?))
                    })
                    .collect(),
                exceptions: s
                    .exceptions
                    .iter()
                    .filter_map(|e| {
                        let kind = Kind::from_name(&e.kind)?;
                        let key = match (&e.namespace, kind.is_namespaced()) {
                            (Some(ns), true) => {
                                ObjectKey::namespaced(kind, ns.clone(), e.name.clone())
                            }
                            (None, false) => ObjectKey::cluster(kind, e.name.clone()),
                            // An exception that does not match the kind's
                            // scope names nothing.
                            _ => return None,
                        };
                        Some((key, e.reason.clone()))
                    })
                    .collect(),
                truncated: s.exceptions_truncated,
                tables_version: s.programmed_generation,
            })
            .unwrap_or_default();
        let fabric = router.spec.fabric.as_ref().map(|f| Fabric {
            interface: f.interface.as_str().to_owned(),
            underlay_address: f.underlay_address.as_ref().and_then(|a| {
                read(
                    "spec.fabric.underlayAddress",
                    from_api::ip(a.as_str()),
                    &mut defects,
                )
            }),
        });
        PhysicalRouter {
            // The node dataplane writes this status, never an Accepted condition.
            meta: from_api::meta(Kind::PhysicalRouter, &router.metadata, &[]),
            interfaces: router
                .spec
                .physical_interfaces
                .iter()
                .map(|i| PhysicalInterface {
                    name: i.name.as_str().to_owned(),
                    mtu: i.mtu,
                })
                .collect(),
            fabric,
            interface_limit: router.spec.interface_limit,
            report,
            ha_reports: router
                .status
                .iter()
                .flat_map(|s| s.ha_groups.iter())
                .map(|r| HaReport {
                    group: r.group.clone(),
                    generation: r.generation,
                    state: HaState::parse(&r.state),
                    since: r.since.0.as_second(),
                    reason: r.reason.clone(),
                    message: r.message.clone(),
                    peers: r
                        .peers
                        .iter()
                        .map(|p| HaPeerView {
                            physical_router: p.physical_router.clone(),
                            heard: p.heard,
                            since: p.since.0.as_second(),
                        })
                        .collect(),
                })
                .collect(),
            defects,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_api::physical_router::ProgrammedException;
    use trunkline_api::{PhysicalRouterSpec, PhysicalRouterStatus};

    #[test]
    fn a_router_reads_ports_fabric_and_report() {
        let mut pr = trunkline_api::PhysicalRouter::new(
            "gw-1",
            PhysicalRouterSpec {
                physical_interfaces: vec![
                    trunkline_api::physical_router::PhysicalInterface {
                        name: "eth2".into(),
                        mtu: Some(9000),
                        description: None,
                    },
                    trunkline_api::physical_router::PhysicalInterface {
                        name: "eth1".into(),
                        mtu: None,
                        description: None,
                    },
                ],
                fabric: Some(trunkline_api::physical_router::Fabric {
                    interface: "eth0".into(),
                    underlay_address: Some("192.0.2.1".into()),
                }),
                interface_limit: 10,
            },
        );
        let exception = |kind: &str, namespace: Option<&str>| ProgrammedException {
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: "x".into(),
            reason: "why".into(),
        };
        pr.status = Some(PhysicalRouterStatus {
            programmed_through: [
                ("LogicalInterface".to_owned(), "120".to_owned()),
                ("VirtualNetwork".to_owned(), "0120".to_owned()),
                ("Pod".to_owned(), "7".to_owned()),
            ]
            .into(),
            exceptions: vec![
                exception("LogicalInterface", None),
                exception("VirtualNetwork", Some("t1")),
                exception("VirtualNetwork", None),
                exception("Pod", Some("t1")),
            ],
            ..Default::default()
        });
        let r = PhysicalRouter::from_api(&pr);
        assert_eq!(
            r.report.programmed_through,
            [(
                Kind::LogicalInterface,
                ResourceVersion::parse("120").unwrap()
            )]
            .into(),
            "unknown kinds and incomparable versions say nothing"
        );
        assert_eq!(r.report.exceptions.len(), 2);
        assert!(!r.report.truncated && !r.report.is_empty());
        assert_eq!(r.interface_limit, 10);
        assert_eq!(
            r.interfaces[0],
            PhysicalInterface {
                name: "eth2".into(),
                mtu: Some(9000)
            }
        );
        assert_eq!(r.interface_names(), ["eth1", "eth2"]);
        assert!(r.has_interface("eth1") && !r.has_interface("eth0"));
        assert_eq!(r.underlay_address(), Some("192.0.2.1".parse().unwrap()));
        assert!(r.defects.is_empty());

        pr.spec.fabric.as_mut().unwrap().underlay_address = Some("nope".into());
        let r = PhysicalRouter::from_api(&pr);
        assert_eq!(r.underlay_address(), None);
        assert_eq!(
            r.defects,
            ["spec.fabric.underlayAddress: \"nope\" is not an IPv4 or IPv6 address"]
        );
    }
}
