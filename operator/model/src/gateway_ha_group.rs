//! Gateway nodes backing each other up for the same remote instances.

use trunkline_api::gateway_ha_group::HaMode as ApiHaMode;

use crate::from_api;
use crate::object::{Kind, Meta, NamespacedName};

/// Gateway nodes backing each other up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayHaGroup {
    /// Identity (cluster-scoped).
    pub meta: Meta,
    /// How the active member is chosen.
    pub mode: HaMode,
    /// Members.
    pub members: Vec<HaMember>,
    /// The network flooding BPDUs (mode STP).
    pub bpdu_network: Option<NamespacedName>,
    /// Heartbeat interval and dead time in milliseconds (mode Fast).
    pub timers: Option<HaTimers>,
    /// Whether a recovered member of higher priority takes over again.
    pub preempt: bool,
}

/// How the active member of a group is chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HaMode {
    /// The switches' spanning tree decides (BPDUs flooded through the
    /// BPDU network).
    #[default]
    Stp,
    /// Heartbeats between the members decide.
    Fast,
}

/// One member of an HA group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HaMember {
    /// The member's PhysicalRouter.
    pub physical_router: String,
    /// Its port toward the switches.
    pub physical_interface: String,
    /// Its priority: the highest live one is active.
    pub priority: u8,
}

/// Heartbeat timers of mode Fast.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HaTimers {
    /// Interval between heartbeats, in milliseconds.
    pub hello_millis: u32,
    /// Silence after which a member is dead, in milliseconds.
    pub dead_millis: u32,
}

/// Heartbeat interval of mode Fast when `spec.timers` is omitted.
pub const DEFAULT_HELLO_MILLIS: u32 = 100;
/// Dead time of mode Fast when `spec.timers` is omitted.
pub const DEFAULT_DEAD_MILLIS: u32 = 500;
/// The shortest heartbeat interval a node dataplane honours: its heartbeat
/// thread sleeps until the next deadline, and a shared, loaded node wakes
/// it late by a few milliseconds (measured up to ~10 ms on the 2-core lab
/// machine under load); below 50 ms that jitter would be a fifth of the
/// interval and dead times of 3 intervals would fire falsely.
pub const MIN_HELLO_MILLIS: u32 = 50;

impl GatewayHaGroup {
    /// The heartbeat timers in effect: mode Fast's (or their defaults);
    /// `None` in mode STP, where the switches' spanning tree decides.
    pub fn timers_in_effect(&self) -> Option<HaTimers> {
        match self.mode {
            HaMode::Stp => None,
            HaMode::Fast => Some(self.timers.unwrap_or(HaTimers {
                hello_millis: DEFAULT_HELLO_MILLIS,
                dead_millis: DEFAULT_DEAD_MILLIS,
            })),
        }
    }

    /// The member on router `router`, if it is one.
    pub fn member(&self, router: &str) -> Option<&HaMember> {
        self.members.iter().find(|m| m.physical_router == router)
    }

    /// Converts the API object (see [`crate::from_api`]).
    pub fn from_api(group: &trunkline_api::GatewayHAGroup) -> Self {
        let conditions = group.status.as_ref().map(|s| &s.conditions[..]);
        GatewayHaGroup {
            meta: from_api::meta(
                Kind::GatewayHAGroup,
                &group.metadata,
                conditions.unwrap_or_default(),
            ),
            mode: match group.spec.mode {
                ApiHaMode::Stp => HaMode::Stp,
                ApiHaMode::Fast => HaMode::Fast,
            },
            members: group
                .spec
                .members
                .iter()
                .map(|m| HaMember {
                    physical_router: m.physical_router.as_str().to_owned(),
                    physical_interface: m.physical_interface.as_str().to_owned(),
                    priority: m.priority,
                })
                .collect(),
            bpdu_network: group
                .spec
                .bpdu_network
                .as_ref()
                .map(|n| NamespacedName::new(n.namespace.as_str(), n.name.as_str())),
            timers: group.spec.timers.as_ref().map(|t| HaTimers {
                hello_millis: t.hello_millis,
                dead_millis: t.dead_millis,
            }),
            preempt: group.spec.preempt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_reads_members_and_mode() {
        let g: trunkline_api::GatewayHAGroup = serde_json::from_value(serde_json::json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "GatewayHAGroup",
            "metadata": {"name": "g"},
            "spec": {"mode": "Fast", "members": [{"physicalRouter": "gw-1", "physicalInterface": "eth1"},
                                                 {"physicalRouter": "gw-2", "physicalInterface": "eth1", "priority": 7}],
                     "timers": {"helloMillis": 50, "deadMillis": 200}}
        }))
        .unwrap();
        let g = GatewayHaGroup::from_api(&g);
        assert_eq!(g.mode, HaMode::Fast);
        assert_eq!(
            g.members.iter().map(|m| m.priority).collect::<Vec<_>>(),
            [100, 7]
        );
        assert_eq!(
            g.timers,
            Some(HaTimers {
                hello_millis: 50,
                dead_millis: 200
            })
        );
        assert!(g.preempt && g.bpdu_network.is_none());
    }
}
