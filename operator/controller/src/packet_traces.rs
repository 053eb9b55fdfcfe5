//! The PacketTraces nobody else finishes: a question for a node that does
//! not exist (`UnknownNode`), one no agent answered in time (`Expired`), and
//! every PacketTrace once its time to live is over (deleted).
//!
//! ```text
//!  every SWEEP (leader only): list PacketTraces, list PhysicalRouter names
//!    unanswered, spec.node has no PhysicalRouter -> Ready False UnknownNode
//!    unanswered after its deadline               -> Ready False Expired
//!    older than TTL                              -> delete
//! ```
//!
//! The node's agent answers (`node-dataplane/agent/src/trace.rs`); the
//! operator never decides anything about packets.

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use trunkline_api::PhysicalRouter;
use trunkline_api::packet_trace::{self, PacketTrace, TraceMode};

/// How often the sweep runs.
pub const SWEEP: Duration = Duration::from_secs(2);
/// How long a node has to answer a Trace (an Observe: its duration more).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);
/// How long a PacketTrace is kept after its creation.
pub const TTL: Duration = Duration::from_secs(600);

/// What the sweep does with one PacketTrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing (answered, or still in time).
    Keep,
    /// Mark it not answerable: (reason, message).
    Mark(&'static str, String),
    /// Delete it: its time to live is over.
    Delete,
}

/// Decide about `trace`, `age` after its creation, given the names of the
/// PhysicalRouters. Pure.
pub fn decide(trace: &PacketTrace, age: Duration, routers: &HashSet<String>) -> Action {
    if age > TTL {
        return Action::Delete;
    }
    let settled = trace.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| {
            c.type_ == packet_trace::READY && c.observed_generation == trace.metadata.generation
        })
    });
    if settled {
        return Action::Keep;
    }
    let node = trace.spec.node.as_str();
    if !routers.contains(node) {
        return Action::Mark(
            packet_trace::reason::UNKNOWN_NODE,
            format!("no PhysicalRouter named {node}: no gateway node to ask"),
        );
    }
    let deadline = match trace.spec.mode {
        TraceMode::Trace => ANSWER_WITHIN,
        TraceMode::Observe => {
            ANSWER_WITHIN
                + Duration::from_secs(u64::from(trace.spec.duration_seconds.unwrap_or(10)))
        }
    };
    if age > deadline {
        return Action::Mark(
            packet_trace::reason::EXPIRED,
            format!(
                "node {node} did not answer within {} s: is its dataplane running?",
                deadline.as_secs()
            ),
        );
    }
    Action::Keep
}

async fn sweep_once(client: &Client) -> Result<(), kube::Error> {
    let traces: Api<PacketTrace> = Api::all(client.clone());
    let routers: Api<PhysicalRouter> = Api::all(client.clone());
    let names: HashSet<String> = routers
        .list_metadata(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|r| r.name_any())
        .collect();
    let now = Timestamp::now();
    for trace in traces.list(&ListParams::default()).await?.items {
        let Some(created) = trace.metadata.creation_timestamp.as_ref() else {
            continue;
        };
        let age = now
            .duration_since(created.0)
            .try_into()
            .unwrap_or(Duration::ZERO);
        let name = trace.name_any();
        match decide(&trace, age, &names) {
            Action::Keep => {}
            Action::Delete => {
                tracing::debug!(trace = name, "PacketTrace past its time to live: deleted");
                traces.delete(&name, &DeleteParams::default()).await?;
            }
            Action::Mark(reason, message) => {
                let condition = Condition {
                    type_: packet_trace::READY.into(),
                    status: "False".into(),
                    reason: reason.into(),
                    message,
                    observed_generation: trace.metadata.generation,
                    last_transition_time: Time(now),
                };
                let patch = serde_json::json!({ "status": {
                    "conditions": [condition],
                    "observedGeneration": trace.metadata.generation,
                }});
                traces
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
        }
    }
    Ok(())
}

/// Sweep while leading, until `stop` turns true.
pub async fn run(client: Client, leading: watch::Receiver<bool>, mut stop: watch::Receiver<bool>) {
    loop {
        if *leading.borrow()
            && let Err(e) = sweep_once(&client).await
        {
            tracing::warn!(error = %e, "PacketTrace sweep failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trunkline_api::packet_trace::PacketTraceSpec;

    fn trace(node: &str) -> PacketTrace {
        let spec: PacketTraceSpec = serde_json::from_value(serde_json::json!({
            "node": node, "mode": "Trace",
            "packet": {"port": "eth1", "srcMac": "02:00:00:00:00:01",
                       "srcIP": "10.0.0.1", "dstIP": "10.0.0.2"}
        }))
        .unwrap();
        let mut t = PacketTrace::new("t", spec);
        t.metadata.generation = Some(1);
        t
    }

    #[test]
    fn unknown_nodes_expired_questions_and_old_answers() {
        let routers: HashSet<String> = ["gw1".to_string()].into();
        let s = Duration::from_secs;
        assert_eq!(decide(&trace("gw1"), s(1), &routers), Action::Keep);
        assert!(matches!(
            decide(&trace("gw9"), s(1), &routers),
            Action::Mark("UnknownNode", _)
        ));
        assert!(matches!(
            decide(&trace("gw1"), s(31), &routers),
            Action::Mark("Expired", _)
        ));
        let mut answered = trace("gw1");
        answered.status = Some(trunkline_api::PacketTraceStatus {
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "Answered".into(),
                message: String::new(),
                observed_generation: Some(1),
                last_transition_time: Time(Timestamp::now()),
            }],
            ..Default::default()
        });
        assert_eq!(decide(&answered, s(100), &routers), Action::Keep);
        assert_eq!(decide(&answered, s(601), &routers), Action::Delete);
    }
}
