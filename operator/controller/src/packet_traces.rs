//! The PacketTraces nobody else finishes: a question for a node that does
//! not exist (`UnknownNode`), one no agent answered in time (`Expired`), and
//! every PacketTrace once its time to live is over (deleted).
//!
//! ```text
//!  every SWEEP (leader only): list PacketTraces, list PhysicalRouter names
//!    unanswered, spec.node has no PhysicalRouter -> Ready False UnknownNode
//!    unanswered after its deadline               -> Ready False Expired
//!    older than --packet-trace-ttl (10m)         -> delete
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
/// How long a PacketTrace is kept after its creation, unless
/// `--packet-trace-ttl` says otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// The shortest time to live: the longest Observe (300 s) and the time a
/// node has to answer, so that no question is deleted before it is
/// answered or marked `Expired`.
pub const MIN_TTL: Duration = Duration::from_secs(300 + ANSWER_WITHIN.as_secs());

/// `--packet-trace-ttl`: a duration (`15m`, `900s`) of at least [`MIN_TTL`].
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = crate::leader::parse_duration(text)?;
    if ttl < MIN_TTL {
        return Err(format!(
            "{text:?} is shorter than {} s (the longest Observe, 300 s, and the {} s a node has to answer): a PacketTrace would be deleted before its answer",
            MIN_TTL.as_secs(),
            ANSWER_WITHIN.as_secs()
        ));
    }
    Ok(ttl)
}

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
/// PhysicalRouters and the time to live. Pure.
pub fn decide(
    trace: &PacketTrace,
    age: Duration,
    routers: &HashSet<String>,
    ttl: Duration,
) -> Action {
    if age > ttl {
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

async fn sweep_once(client: &Client, ttl: Duration) -> Result<(), kube::Error> {
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
        match decide(&trace, age, &names, ttl) {
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

/// Sweep while leading, until `stop` turns true; PacketTraces older than
/// `ttl` are deleted.
pub async fn run(
    client: Client,
    leading: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    ttl: Duration,
) {
    loop {
        if *leading.borrow()
            && let Err(e) = sweep_once(&client, ttl).await
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
        assert_eq!(
            decide(&trace("gw1"), s(1), &routers, DEFAULT_TTL),
            Action::Keep
        );
        assert!(matches!(
            decide(&trace("gw9"), s(1), &routers, DEFAULT_TTL),
            Action::Mark("UnknownNode", _)
        ));
        assert!(matches!(
            decide(&trace("gw1"), s(31), &routers, DEFAULT_TTL),
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
        assert_eq!(
            decide(&answered, s(100), &routers, DEFAULT_TTL),
            Action::Keep
        );
        assert_eq!(
            decide(&answered, s(601), &routers, DEFAULT_TTL),
            Action::Delete
        );
        // A longer time to live keeps it.
        assert_eq!(decide(&answered, s(601), &routers, s(900)), Action::Keep);
        assert_eq!(decide(&answered, s(901), &routers, s(900)), Action::Delete);
    }

    #[test]
    fn the_time_to_live_outlasts_the_longest_question() {
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("330s"), Ok(MIN_TTL));
        let err = parse_ttl("5m").unwrap_err();
        assert!(err.contains("shorter than 330 s"), "{err}");
        assert!(parse_ttl("ten").is_err());
    }
}
