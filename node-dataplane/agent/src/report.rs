//! The node's report on its PhysicalRouter's status: readiness, the version
//! of the tables in the fast path, the ports, the counts, and what its
//! tables hold as watermarks and exceptions (from which the operator
//! derives `Programmed` conditions):
//!
//! ```text
//!  programmedThrough: { LogicalInterface: "1234", VirtualNetwork: "1200", ... }
//!     per kind, the highest resourceVersion among the objects labelled
//!     for this node that the installed tables were built from
//!  exceptions: [{kind, namespace, name, reason}]   at most EXCEPTIONS_BUDGET
//!     bytes; beyond it exceptionsTruncated: true and the list is cut
//! ```
//!
//! The report's size does not grow with the number of objects the node
//! holds, only with those it could not hold.
//!
//! Written by server-side apply under the field manager
//! `trunkline-dataplane`, which owns only the fields below, and only when
//! something other than time changed: an idle node makes no writes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use trunkline_api::{PhysicalRouter, PhysicalRouterStatus};

use trunkline_api::physical_router::{
    HaGroupReport, PortStatus, ProgrammedCounts, ProgrammedException,
};
use trunkline_api::status::{Condition, condition};
use trunkline_model::{Kind, ObjectKey, ResourceVersion};

/// The field manager of every status write of the agent.
pub const FIELD_MANAGER: &str = "trunkline-dataplane";

/// What the agent knows about its node, to be reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeReport {
    /// `metadata.generation` of the PhysicalRouter acted on.
    pub router_generation: Option<i64>,
    /// Whether the watches have synced and tables were built from them.
    pub synced: bool,
    /// Version of the tables in the fast path.
    pub tables_version: i64,
    /// `AF_XDP` or `AF_PACKET` (of the first port), when ports are open.
    pub backend: Option<String>,
    /// Per port state.
    pub ports: Vec<PortStatus>,
    /// Table sizes.
    pub counts: ProgrammedCounts,
    /// The watermarks of the objects the installed tables were built from.
    pub through: BTreeMap<Kind, ResourceVersion>,
    /// The objects labelled for this node that its tables do not hold.
    pub exceptions: BTreeMap<ObjectKey, String>,
    /// Objects of the node the tables rejected or left out, with reasons.
    pub problems: Vec<String>,
    /// Ports whose declared MTU the fast path cannot carry, with why.
    pub mtu_problems: Vec<String>,
    /// Why the underlay waits for the fabric port's MAC and MTU, if it
    /// does: the node is not Ready meanwhile.
    pub fabric_waiting: Option<String>,
    /// The node's part in each HA group it is a member of.
    pub ha_groups: Vec<HaGroupReport>,
}

impl NodeReport {
    fn ready(&self) -> (bool, &'static str, String) {
        if !self.synced {
            return (
                false,
                "NotSynced",
                "waiting for the first complete view of the API".to_owned(),
            );
        }
        let down: Vec<String> = self
            .ports
            .iter()
            .filter(|p| p.state != "Up")
            .map(|p| {
                format!(
                    "{} is {}{}",
                    p.name,
                    p.state,
                    p.message
                        .as_deref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        if !down.is_empty() {
            return (false, "PortNotUp", down.join("; "));
        }
        if !self.mtu_problems.is_empty() {
            return (false, "MtuUnsupported", self.mtu_problems.join("; "));
        }
        if let Some(why) = &self.fabric_waiting {
            return (false, "FabricNotRead", why.clone());
        }
        (
            true,
            "Ok",
            format!(
                "forwarding on {} port(s) with tables version {}",
                self.ports.len(),
                self.tables_version
            ),
        )
    }

    fn programmed_condition(&self) -> (bool, &'static str, String) {
        if !self.synced {
            return (false, "NotSynced", "no tables built yet".to_owned());
        }
        let c = &self.counts;
        let mut message = format!(
            "tables version {}: {} logical interfaces, {} VMIs, {} routing instances",
            self.tables_version,
            c.logical_interfaces,
            c.virtual_machine_interfaces,
            c.routing_instances
        );
        if !self.problems.is_empty() {
            let shown: Vec<&str> = self.problems.iter().take(5).map(String::as_str).collect();
            message.push_str(&format!("; left out: {}", shown.join("; ")));
        }
        (true, "Ok", message)
    }
}

/// The most bytes the exceptions may take in the report: with the rest of
/// the status, the PhysicalRouter stays far below etcd's request limit
/// (1.5 MiB) and the 256 KiB the project allows any object.
pub const EXCEPTIONS_BUDGET: usize = 64 * 1024;
/// The most exceptions listed (the schema's bound).
pub const MAX_EXCEPTIONS: usize = 1024;

/// The exceptions as the status lists them, sorted, within
/// [`EXCEPTIONS_BUDGET`] and [`MAX_EXCEPTIONS`]; and whether some were
/// cut.
pub fn bounded(exceptions: &BTreeMap<ObjectKey, String>) -> (Vec<ProgrammedException>, bool) {
    let mut listed = Vec::new();
    let mut bytes = 0;
    for (key, why) in exceptions {
        let mut reason = why.clone();
        if reason.len() > 256 {
            let mut end = 253;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push_str("...");
        }
        let exception = ProgrammedException {
            kind: key.kind.as_str().to_owned(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            reason,
        };
        // Each entry's JSON: its strings and some 60 bytes of keys.
        bytes += 60
            + exception.kind.len()
            + exception.namespace.as_ref().map_or(0, String::len)
            + exception.name.len()
            + exception.reason.len();
        if bytes > EXCEPTIONS_BUDGET || listed.len() == MAX_EXCEPTIONS {
            return (listed, true);
        }
        listed.push(exception);
    }
    (listed, false)
}

/// Writes the report when it changed, keeping each condition's
/// `lastTransitionTime` while its status does not change.
pub struct Reporter {
    api: Api<PhysicalRouter>,
    node: String,
    last_written: Option<Value>,
    conditions: Vec<Condition>,
    /// Whether the status an earlier run wrote was read back (once, before
    /// the first write): a restart then writes nothing when nothing
    /// changed, and keeps the conditions' transition times.
    resumed: bool,
}

/// The status fields the agent owns, as written.
fn owned_fields(status: &PhysicalRouterStatus) -> Value {
    json!({
        "observedGeneration": status.observed_generation,
        "conditions": status.conditions,
        "programmedGeneration": status.programmed_generation,
        "backend": status.backend,
        "ports": status.ports,
        "counts": status.counts,
        "programmedThrough": status.programmed_through,
        "exceptions": status.exceptions,
        "exceptionsTruncated": status.exceptions_truncated,
        "haGroups": status.ha_groups,
    })
}

/// `status` without its conditions' transition times: they only change
/// with a condition's status.
fn comparable(mut status: Value) -> Value {
    if let Some(cs) = status["conditions"].as_array_mut() {
        cs.iter_mut()
            .for_each(|c| c["lastTransitionTime"] = Value::Null);
    }
    status
}

impl Reporter {
    /// A reporter for PhysicalRouter `node`.
    pub fn new(api: Api<PhysicalRouter>, node: &str) -> Self {
        Self {
            api,
            node: node.to_owned(),
            last_written: None,
            conditions: Vec::new(),
            resumed: false,
        }
    }

    /// Reads back what an earlier run on this node wrote, once.
    async fn resume(&mut self) -> Result<(), kube::Error> {
        if self.resumed {
            return Ok(());
        }
        if let Some(status) = self
            .api
            .get_opt(&self.node)
            .await?
            .and_then(|router| router.status)
        {
            self.conditions = status.conditions.clone();
            self.last_written = Some(comparable(owned_fields(&status)));
        }
        self.resumed = true;
        Ok(())
    }

    fn condition(
        &mut self,
        type_: &str,
        (ok, reason, message): (bool, &'static str, String),
        generation: Option<i64>,
    ) -> Condition {
        let status = if ok { "True" } else { "False" };
        let since = self
            .conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message,
            last_transition_time: since,
            observed_generation: generation,
        }
    }

    /// Sends the report if it differs from the last one written.
    /// Returns whether a write happened.
    pub async fn report(&mut self, report: &NodeReport) -> Result<bool, kube::Error> {
        self.resume().await?;
        let generation = report.router_generation;
        let conditions = vec![
            self.condition(condition::READY, report.ready(), generation),
            self.condition(
                condition::PROGRAMMED,
                report.programmed_condition(),
                generation,
            ),
        ];
        let (exceptions, exceptions_truncated) = bounded(&report.exceptions);
        let status = owned_fields(&PhysicalRouterStatus {
            observed_generation: generation,
            conditions: conditions.clone(),
            programmed_generation: Some(report.tables_version),
            backend: report.backend.clone(),
            ports: report.ports.clone(),
            counts: Some(report.counts.clone()),
            programmed_through: report
                .through
                .iter()
                .map(|(kind, rv)| (kind.as_str().to_owned(), rv.as_str().to_owned()))
                .collect(),
            exceptions,
            exceptions_truncated,
            ha_groups: report.ha_groups.clone(),
            ..PhysicalRouterStatus::default()
        });
        let comparable = comparable(status.clone());
        if self.last_written.as_ref() == Some(&comparable) {
            return Ok(false);
        }
        let patch = json!({
            "apiVersion": "trunkline.io/v1alpha1",
            "kind": "PhysicalRouter",
            "metadata": { "name": self.node },
            "status": status,
        });
        self.api
            .patch_status(
                &self.node,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        self.last_written = Some(comparable);
        self.conditions = conditions;
        Ok(true)
    }

    /// Forgets what was written (after the router was recreated, say), so
    /// the next report is written whatever it holds.
    pub fn invalidate(&mut self) {
        self.last_written = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_model::Kind;

    #[test]
    fn exceptions_are_cut_at_their_budget_and_say_so() {
        let few: BTreeMap<ObjectKey, String> = (0..3)
            .map(|i| {
                (
                    ObjectKey::cluster(Kind::LogicalInterface, format!("li-{i}")),
                    "not accepted (yet) by the operator".to_owned(),
                )
            })
            .collect();
        let (listed, cut) = bounded(&few);
        assert_eq!((listed.len(), cut), (3, false));
        assert_eq!(listed[0].name, "li-0");

        // 16,000 exceptions: the report stays within its budget.
        let many: BTreeMap<ObjectKey, String> = (0..16_000)
            .map(|i| {
                (
                    ObjectKey::namespaced(
                        Kind::VirtualMachineInterface,
                        "tenant",
                        format!("vmi-{i:05}"),
                    ),
                    "x".repeat(300),
                )
            })
            .collect();
        let (listed, cut) = bounded(&many);
        assert!(cut);
        assert!(!listed.is_empty() && listed.len() < MAX_EXCEPTIONS);
        let bytes = serde_json::to_vec(&listed).unwrap().len();
        assert!(bytes <= EXCEPTIONS_BUDGET, "{bytes}");
        assert!(listed.iter().all(|e| e.reason.len() <= 256));
    }

    #[test]
    fn a_node_waiting_for_its_fabric_port_is_not_ready() {
        let mut report = NodeReport {
            synced: true,
            ..NodeReport::default()
        };
        assert!(report.ready().0);
        report.fabric_waiting = Some("fabric interface eth0: MAC and MTU not read yet".into());
        let (ready, reason, message) = report.ready();
        assert!(!ready);
        assert_eq!(reason, "FabricNotRead");
        assert!(message.contains("eth0"));
    }
}
