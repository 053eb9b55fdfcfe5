//! Prometheus metrics of the operator (text exposition on `/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label of the errors counter: the error's [`crate::Error::metric_label`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Error label.
    pub error: &'static str,
}

/// Labels of the objects gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// Kind.
    pub kind: &'static str,
    /// `true` or `false`: the object's Ready condition.
    pub ready: &'static str,
}

/// Label of per-kind counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Kind.
    pub kind: &'static str,
}

/// Labels of the events counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// Kind of the regarding object.
    pub kind: &'static str,
    /// `Normal` or `Warning`.
    pub r#type: &'static str,
}

/// Labels of the HA transitions counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HaTransitionLabels {
    /// The GatewayHAGroup.
    pub group: String,
    /// The member (PhysicalRouter).
    pub member: String,
    /// The state it entered: `Active`, `Standby` or `Down`.
    pub state: String,
}

/// Every metric, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Passes of the decision loop.
    pub reconcile_runs: Counter,
    /// Duration of a pass, seconds.
    pub reconcile_duration: Histogram,
    /// Errors, by error label.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// Objects by kind and Ready status, after the last pass.
    pub objects: Family<ObjectLabels, Gauge>,
    /// Status writes (server-side applies), by kind.
    pub status_writes: Family<KindLabels, Counter>,
    /// Events published, by kind and type.
    pub events: Family<EventLabels, Counter>,
    /// Watch events received, by kind.
    pub watch_events: Family<KindLabels, Counter>,
    /// 1 while this process may write status (it holds the leader Lease,
    /// or leader election is off), else 0.
    pub leader: Gauge,
    /// Times this process became the leader.
    pub leader_transitions: Counter,
    /// HA member state changes written to GatewayHAGroup status.
    pub ha_transitions: Family<HaTransitionLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric (prefix `trunkline_operator_`).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("trunkline_operator");
        let reconcile_runs = Counter::default();
        registry.register(
            "reconcile_runs",
            "Passes of the decision loop (every object decided)",
            reconcile_runs.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "reconcile_duration_seconds",
            "Duration of a pass of the decision loop, status writes included",
            reconcile_duration.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Errors by kind of error",
            reconcile_errors.clone(),
        );
        let objects = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "objects",
            "Objects by kind and Ready status after the last pass",
            objects.clone(),
        );
        let status_writes = Family::<KindLabels, Counter>::default();
        registry.register(
            "status_writes",
            "Status writes (server-side apply of /status) by kind",
            status_writes.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Kubernetes Events published by kind of regarding object and type",
            events.clone(),
        );
        let watch_events = Family::<KindLabels, Counter>::default();
        registry.register(
            "watch_events",
            "Watch events received by kind",
            watch_events.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica writes status (it holds the leader Lease, or leader election is off), else 0",
            leader.clone(),
        );
        let leader_transitions = Counter::default();
        registry.register(
            "leader_transitions",
            "Times this replica became the leader",
            leader_transitions.clone(),
        );
        let ha_transitions = Family::<HaTransitionLabels, Counter>::default();
        registry.register(
            "ha_transitions",
            "GatewayHAGroup member state changes (as written to the group's status), by group, member and new state",
            ha_transitions.clone(),
        );
        Self {
            registry,
            ha_transitions,
            reconcile_runs,
            reconcile_duration,
            reconcile_errors,
            objects,
            status_writes,
            events,
            watch_events,
            leader,
            leader_transitions,
        }
    }

    /// Counts `error`.
    pub fn error(&self, error: &crate::Error) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                error: error.metric_label(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_with_labels() {
        let m = Metrics::new();
        m.reconcile_runs.inc();
        m.objects
            .get_or_create(&ObjectLabels {
                kind: "LogicalInterface",
                ready: "true",
            })
            .set(3);
        m.error(&crate::Error::StoreDropped { kind: "X" });
        let text = m.encode();
        assert!(
            text.contains("trunkline_operator_reconcile_runs_total 1"),
            "{text}"
        );
        assert!(
            text.contains(r#"trunkline_operator_objects{kind="LogicalInterface",ready="true"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"trunkline_operator_reconcile_errors_total{error="store"} 1"#),
            "{text}"
        );
    }
}
