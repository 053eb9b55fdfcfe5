//! Answering PacketTraces: the questions addressed to this node, read from
//! the API server, answered in their status.
//!
//! ```text
//!  watch PacketTrace, fieldSelector spec.node=<this node>  (no port opened)
//!     | a question without an answer for its generation
//!     v
//!  answer(plan, spec): mode Trace -> trunkline_pipeline::trace on the plan
//!     the forwarding thread runs now (same tables, same code, no side
//!     effects); mode Observe -> arm the sampler (crate::observe), collect
//!     for durationSeconds, write the samples
//!     |
//!     v
//!  patch packettraces/status (merge): stages, verdict, tables version, Ready
//! ```
//!
//! Converting a question into a [`Probe`] and an answer into the API's
//! status is pure ([`answer_trace`]); only [`run`] talks to the API server.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use trunkline_api::packet_trace::{
    self, ObservedSample, PacketTrace, PacketTraceSpec, PacketTraceStatus, TraceMode, TraceStage,
    TraceVerdict, TracedPacket, TracedProtocol,
};
use trunkline_pipeline::{Payload, PortId, Probe, Trace, Verdict};
use trunkline_wire::EthernetAddress;

use crate::control::{Control, Plan};
use crate::observe::Sample;

/// A question this node cannot turn into a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuestionError {
    /// The port is not one of the node's ports in its current tables.
    #[error("spec.packet.port: {0} is not a port of this node (its ports: {1})")]
    UnknownPort(String, String),
    /// A field does not parse (the schema normally refuses it first).
    #[error("spec.packet.{field}: {value:?} is not valid: {why}")]
    Field {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What would be valid.
        why: String,
    },
    /// The pipeline refused to build the packet.
    #[error("spec.packet: {0}")]
    Probe(#[from] trunkline_pipeline::ProbeError),
    /// Mode Trace without a packet (the schema normally refuses it).
    #[error("spec.packet: mode Trace needs a packet")]
    NoPacket,
}

fn field<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, QuestionError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e: T::Err| QuestionError::Field {
        field: name,
        value: value.to_owned(),
        why: e.to_string(),
    })
}

/// The port id of the interface `name` in `plan`.
pub fn port_id(plan: &Plan, name: &str) -> Option<PortId> {
    plan.ports
        .iter()
        .position(|p| p.name == name)
        .map(|i| PortId(i as u16))
}

/// The probe a traced packet describes, on `plan`'s ports.
pub fn probe(plan: &Plan, packet: &TracedPacket) -> Result<Probe, QuestionError> {
    let port = port_id(plan, packet.port.as_str()).ok_or_else(|| {
        QuestionError::UnknownPort(
            packet.port.to_string(),
            plan.ports
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        )
    })?;
    let src_ip: IpAddr = field("srcIP", packet.src_ip.as_str())?;
    let dst_ip: IpAddr = field("dstIP", packet.dst_ip.as_str())?;
    let src_mac: EthernetAddress = field("srcMac", packet.src_mac.as_str())?;
    let dst_mac = match (&packet.dst_mac, packet.protocol) {
        (Some(mac), _) => field("dstMac", mac.as_str())?,
        (None, TracedProtocol::ARP) => EthernetAddress([0xff; 6]),
        (None, _) => plan.tables.gateway_mac(),
    };
    let payload = match packet.protocol {
        TracedProtocol::ARP => Payload::ArpRequest,
        TracedProtocol::ICMP => Payload::Icmp {
            icmp_type: packet
                .icmp_type
                .unwrap_or(if src_ip.is_ipv6() { 128 } else { 8 }),
            code: 0,
        },
        TracedProtocol::UDP => Payload::Udp {
            sport: packet.src_port.unwrap_or(40000),
            dport: packet.dst_port.unwrap_or(80),
        },
        TracedProtocol::TCP => Payload::Tcp {
            sport: packet.src_port.unwrap_or(40000),
            dport: packet.dst_port.unwrap_or(80),
        },
    };
    Ok(Probe {
        port,
        vlan: packet.vlan,
        src_mac,
        dst_mac,
        src_ip,
        dst_ip,
        ttl: packet.ttl.unwrap_or(64),
        payload,
    })
}

/// The API's verdict for a pipeline verdict (and, for a transmit, how the
/// frame leaves).
pub fn verdict(plan: &Plan, trace: &Trace) -> TraceVerdict {
    let port_name = |id: PortId| {
        plan.ports
            .get(usize::from(id.0))
            .map_or_else(|| format!("port {}", id.0), |p| p.name.clone())
    };
    match trace.verdict {
        Verdict::Transmit { port, .. } => {
            let egress = trace.egress.as_ref();
            TraceVerdict {
                action: "Transmit".into(),
                egress_port: Some(port_name(port)),
                egress_vlan: egress.and_then(|e| e.vlan),
                src_mac: egress.map(|e| e.src_mac.to_string()),
                dst_mac: egress.map(|e| e.dst_mac.to_string()),
                summary: egress.map(|e| e.summary.clone()),
                ..Default::default()
            }
        }
        Verdict::Flood(_) => TraceVerdict {
            action: "Flood".into(),
            summary: trace.steps.last().map(|s| s.detail.clone()),
            ..Default::default()
        },
        Verdict::Pass => TraceVerdict {
            action: "Pass".into(),
            summary: Some("handed to the host stack".into()),
            ..Default::default()
        },
        Verdict::Drop(reason) => TraceVerdict {
            action: "Drop".into(),
            drop_reason: Some(reason.as_str().into()),
            ..Default::default()
        },
    }
}

/// The answer to a mode-Trace question, from `plan` (the tables the
/// forwarding thread runs now).
pub fn answer_trace(
    plan: &Plan,
    spec: &PacketTraceSpec,
) -> Result<PacketTraceStatus, QuestionError> {
    let packet = spec.packet.as_ref().ok_or(QuestionError::NoPacket)?;
    let probe = probe(plan, packet)?;
    let trace = trunkline_pipeline::trace(&plan.tables, &probe)?;
    Ok(PacketTraceStatus {
        tables_version: Some(plan.version),
        stages: trace
            .steps
            .iter()
            .map(|s| TraceStage {
                stage: s.stage.as_str().into(),
                decision: s.decision.into(),
                detail: s.detail.clone(),
            })
            .collect(),
        verdict: Some(verdict(plan, &trace)),
        ..Default::default()
    })
}

fn ready(generation: Option<i64>, status: bool, reason: &str, message: String) -> Condition {
    Condition {
        type_: packet_trace::READY.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
    }
}

/// Whether `trace` already has an answer (or an observation running) for
/// its generation.
fn answered(trace: &PacketTrace) -> bool {
    trace.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| {
            c.type_ == packet_trace::READY && c.observed_generation == trace.metadata.generation
        })
    })
}

async fn write(api: &Api<PacketTrace>, name: &str, status: &PacketTraceStatus) {
    let patch = serde_json::json!({ "status": status });
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(trace = name, error = %e, "could not answer a PacketTrace");
    }
}

/// Mode Observe: arm the sampler for the question's duration, then write
/// what it saw.
async fn observe(
    control: Arc<Control>,
    api: Api<PacketTrace>,
    trace: PacketTrace,
    mut cancelled: watch::Receiver<bool>,
) {
    let name = trace.name_any();
    let generation = trace.metadata.generation;
    let spec = &trace.spec;
    let plan = control.plan();
    let filter = match crate::observe::filter(&plan, spec.filter.as_ref()) {
        Ok(f) => f,
        Err(e) => {
            let status = PacketTraceStatus {
                conditions: vec![ready(
                    generation,
                    false,
                    packet_trace::reason::INVALID_PACKET,
                    e.to_string(),
                )],
                observed_generation: generation,
                ..Default::default()
            };
            return write(&api, &name, &status).await;
        }
    };
    let duration = Duration::from_secs(u64::from(spec.duration_seconds.unwrap_or(10)));
    let max = spec.max_samples.unwrap_or(64) as usize;
    let Some(session) = control.sampler().arm(filter, max, control.uptime_ms()) else {
        let status = PacketTraceStatus {
            conditions: vec![ready(
                generation,
                false,
                packet_trace::reason::INVALID_PACKET,
                "another observation is running on this node; try again when it ends".into(),
            )],
            observed_generation: generation,
            ..Default::default()
        };
        return write(&api, &name, &status).await;
    };
    write(
        &api,
        &name,
        &PacketTraceStatus {
            conditions: vec![ready(
                generation,
                false,
                packet_trace::reason::OBSERVING,
                format!("sampling for {} s", duration.as_secs()),
            )],
            observed_generation: generation,
            tables_version: Some(plan.version),
            ..Default::default()
        },
    )
    .await;
    // The XDP tier's share: its filter armed in the tier's maps, its ring
    // drained every 100 ms into the same session (off the forwarding path).
    let kernel = control.tier_maps().and_then(|maps| {
        crate::observe::KernelObservation::arm(maps, filter, control.tier_ports().1)
            .unwrap_or_else(|e| {
                tracing::warn!(trace = name, error = %e, "could not arm the XDP tier's observation: only the pipeline's verdicts are sampled");
                None
            })
    });
    let deadline = tokio::time::Instant::now() + duration;
    let mut gone = false;
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep((deadline - now).min(Duration::from_millis(100))) => {}
            // The PacketTrace was deleted (or the watch ended): stop
            // sampling now, so that the next observation may start.
            _ = cancelled.wait_for(|c| *c) => gone = true,
        }
        if let Some(kernel) = &kernel {
            kernel.drain(&session);
        }
        if gone {
            break;
        }
    }
    if let Some(kernel) = kernel {
        kernel.finish(&session);
    }
    let (samples, dropped) = session.finish();
    if gone {
        tracing::info!(trace = name, "PacketTrace deleted: observation ended early");
        return;
    }
    let plan = control.plan();
    let status = PacketTraceStatus {
        conditions: vec![ready(
            generation,
            true,
            packet_trace::reason::ANSWERED,
            format!("{} sample(s), {dropped} not sampled", samples.len()),
        )],
        observed_generation: generation,
        tables_version: Some(plan.version),
        samples: samples.iter().map(|s| sample(&plan, s)).collect(),
        samples_dropped: Some(dropped),
        ..Default::default()
    };
    write(&api, &name, &status).await;
}

fn sample(plan: &Plan, s: &Sample) -> ObservedSample {
    let port_name = |id: PortId| {
        plan.ports
            .get(usize::from(id.0))
            .map_or_else(|| format!("port {}", id.0), |p| p.name.clone())
    };
    let verdict = match s.verdict {
        Verdict::Transmit { port, .. } => TraceVerdict {
            action: "Transmit".into(),
            egress_port: Some(port_name(port)),
            egress_vlan: s.egress_vlan,
            ..Default::default()
        },
        Verdict::Flood(_) => TraceVerdict {
            action: "Flood".into(),
            ..Default::default()
        },
        Verdict::Pass => TraceVerdict {
            action: "Pass".into(),
            ..Default::default()
        },
        Verdict::Drop(reason) => TraceVerdict {
            action: "Drop".into(),
            drop_reason: Some(reason.as_str().into()),
            ..Default::default()
        },
    };
    ObservedSample {
        at_millis: s.at_millis,
        port: port_name(s.port),
        vlan: s.vlan,
        decided_in: Some(s.decided_in.as_str().into()),
        packet: s.summary(),
        verdict,
    }
}

/// Answer this node's PacketTraces until the agent stops.
pub async fn run(client: Client, node: String, control: Arc<Control>) {
    let api: Api<PacketTrace> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("spec.node={node}"));
    let stream = watcher(api.clone(), config).backoff(trunkline_client::WatchBackoff::default());
    futures::pin_mut!(stream);
    // Observations running (or done) by object (uid) and generation: a
    // watch restart must not start one twice, and a new object of the same
    // name is a new question.
    let mut started: HashSet<(String, Option<i64>)> = HashSet::new();
    // How to end each running observation early, by uid: deleting its
    // PacketTrace ends it.
    let mut cancels: HashMap<String, watch::Sender<bool>> = HashMap::new();
    while let Some(event) = stream.next().await {
        let trace = match event {
            Ok(watcher::Event::Apply(t) | watcher::Event::InitApply(t)) => t,
            Ok(watcher::Event::Delete(t)) => {
                let uid = t.uid().unwrap_or_default();
                if let Some(cancel) = cancels.remove(&uid) {
                    let _ = cancel.send(true);
                }
                started.retain(|(u, _)| *u != uid);
                continue;
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "PacketTrace watch interrupted");
                continue;
            }
        };
        if trace.spec.node.as_str() != node || answered(&trace) {
            continue;
        }
        let name = trace.name_any();
        let generation = trace.metadata.generation;
        match trace.spec.mode {
            TraceMode::Trace => {
                let plan = control.plan();
                let status = match answer_trace(&plan, &trace.spec) {
                    Ok(mut status) => {
                        let verdict = status.verdict.as_ref().map_or("", |v| v.action.as_str());
                        status.conditions = vec![ready(
                            generation,
                            true,
                            packet_trace::reason::ANSWERED,
                            format!("traced against tables version {}: {verdict}", plan.version),
                        )];
                        status
                    }
                    Err(e) => PacketTraceStatus {
                        conditions: vec![ready(
                            generation,
                            false,
                            packet_trace::reason::INVALID_PACKET,
                            e.to_string(),
                        )],
                        tables_version: Some(plan.version),
                        ..Default::default()
                    },
                };
                let status = PacketTraceStatus {
                    observed_generation: generation,
                    ..status
                };
                tracing::info!(trace = name, "PacketTrace answered");
                write(&api, &name, &status).await;
            }
            TraceMode::Observe => {
                let uid = trace.uid().unwrap_or(name);
                if started.insert((uid.clone(), generation)) {
                    let (cancel, cancelled) = watch::channel(false);
                    // A newer generation of the same object replaces the
                    // older observation's handle; the older runs its course.
                    cancels.insert(uid, cancel);
                    tokio::spawn(observe(control.clone(), api.clone(), trace, cancelled));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{PortRole, PortSpec};
    use trunkline_pipeline::Tables;

    fn plan() -> Plan {
        Plan {
            version: 7,
            synced: true,
            ports: vec![PortSpec {
                name: "eth1".into(),
                role: PortRole::Trunk,
            }],
            virtual_gateways: Vec::new(),
            tables: Tables::compile(&Default::default()).0,
            ha: Default::default(),
        }
    }

    fn packet(json: serde_json::Value) -> TracedPacket {
        serde_json::from_value(json).expect("a traced packet")
    }

    #[test]
    fn a_question_becomes_a_probe_on_the_plan_ports() {
        let plan = plan();
        let arp = probe(
            &plan,
            &packet(serde_json::json!({
                "port": "eth1", "vlan": 100, "srcMac": "02:00:00:00:01:01",
                "srcIP": "192.168.1.10", "dstIP": "192.168.1.1", "protocol": "ARP"
            })),
        )
        .unwrap();
        assert_eq!(arp.port, PortId(0));
        assert_eq!(arp.dst_mac, EthernetAddress([0xff; 6]));
        assert_eq!(arp.payload, Payload::ArpRequest);
        let ping6 = probe(
            &plan,
            &packet(serde_json::json!({
                "port": "eth1", "srcMac": "02:00:00:00:01:01",
                "srcIP": "fd00::a", "dstIP": "fd00::b"
            })),
        )
        .unwrap();
        assert_eq!(ping6.dst_mac, plan.tables.gateway_mac());
        assert_eq!(
            ping6.payload,
            Payload::Icmp {
                icmp_type: 128,
                code: 0
            }
        );
        let elsewhere = probe(
            &plan,
            &packet(serde_json::json!({
                "port": "eth9", "srcMac": "02:00:00:00:01:01",
                "srcIP": "10.0.0.1", "dstIP": "10.0.0.2"
            })),
        );
        assert_eq!(
            elsewhere.unwrap_err().to_string(),
            "spec.packet.port: eth9 is not a port of this node (its ports: eth1)"
        );
    }

    #[test]
    fn an_answer_names_the_tables_version_and_the_verdict() {
        let plan = plan();
        let spec: PacketTraceSpec = serde_json::from_value(serde_json::json!({
            "node": "gw", "mode": "Trace",
            "packet": {"port": "eth1", "vlan": 100, "srcMac": "02:00:00:00:01:01",
                       "srcIP": "10.0.0.1", "dstIP": "10.0.0.2"}
        }))
        .unwrap();
        let status = answer_trace(&plan, &spec).unwrap();
        assert_eq!(status.tables_version, Some(7));
        // Empty tables: the port is unknown to them.
        let verdict = status.verdict.unwrap();
        assert_eq!(verdict.action, "Drop");
        assert_eq!(verdict.drop_reason.as_deref(), Some("unknown_port"));
        assert_eq!(status.stages.last().unwrap().stage, "verdict");
    }
}
