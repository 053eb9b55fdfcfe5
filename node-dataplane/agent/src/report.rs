//! The node's report on its PhysicalRouter's status: readiness, the version
//! of the tables in the fast path, the ports, the counts, and every object
//! programmed (from which the operator derives `Programmed` conditions).
//!
//! Written by server-side apply under the field manager
//! `trunkline-dataplane`, which owns only the fields below, and only when
//! something other than time changed: an idle node makes no writes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use trunkline_api::PhysicalRouter;
use trunkline_api::physical_router::{
    HaGroupReport, PortStatus, ProgrammedCounts, ProgrammedObject,
};
use trunkline_api::status::{Condition, condition};

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
    /// Objects programmed.
    pub programmed: Vec<ProgrammedObject>,
    /// Objects of the node the tables rejected or left out, with reasons.
    pub problems: Vec<String>,
    /// Ports whose declared MTU the fast path cannot carry, with why.
    pub mtu_problems: Vec<String>,
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

/// Writes the report when it changed, keeping each condition's
/// `lastTransitionTime` while its status does not change.
pub struct Reporter {
    api: Api<PhysicalRouter>,
    node: String,
    last_written: Option<Value>,
    conditions: Vec<Condition>,
}

impl Reporter {
    /// A reporter for PhysicalRouter `node`.
    pub fn new(api: Api<PhysicalRouter>, node: &str) -> Self {
        Self {
            api,
            node: node.to_owned(),
            last_written: None,
            conditions: Vec::new(),
        }
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
        let generation = report.router_generation;
        let conditions = vec![
            self.condition(condition::READY, report.ready(), generation),
            self.condition(
                condition::PROGRAMMED,
                report.programmed_condition(),
                generation,
            ),
        ];
        let status = json!({
            "observedGeneration": generation,
            "conditions": conditions,
            "programmedGeneration": report.tables_version,
            "backend": report.backend,
            "ports": report.ports,
            "counts": report.counts,
            "programmed": report.programmed,
            "haGroups": report.ha_groups,
        });
        // Compare without transition times: they only change with a status.
        let comparable = {
            let mut s = status.clone();
            if let Some(cs) = s["conditions"].as_array_mut() {
                cs.iter_mut()
                    .for_each(|c| c["lastTransitionTime"] = Value::Null);
            }
            s
        };
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
