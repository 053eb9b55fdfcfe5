//! Printing answers: text for people, or the status as JSON.

use std::fmt::Write as _;

use trunkline_api::PhysicalRouter;
use trunkline_api::packet_trace::{PacketTrace, TraceVerdict};

use crate::Error;
use crate::cli::Output;

fn verdict_line(v: &TraceVerdict) -> String {
    match v.action.as_str() {
        "Drop" => format!("DROP {}", v.drop_reason.as_deref().unwrap_or("?")),
        "Transmit" => {
            let mut s = format!(
                "TRANSMIT out of {}",
                v.egress_port.as_deref().unwrap_or("?")
            );
            match v.egress_vlan {
                Some(vlan) => write!(s, " VLAN {vlan}").ok(),
                None => write!(s, " untagged").ok(),
            };
            if let (Some(src), Some(dst)) = (&v.src_mac, &v.dst_mac) {
                let _ = write!(s, " {src} -> {dst}");
            }
            if let Some(summary) = &v.summary {
                let _ = write!(s, ": {summary}");
            }
            s
        }
        other => format!(
            "{} {}",
            other.to_uppercase(),
            v.summary.as_deref().unwrap_or_default()
        ),
    }
}

/// A trace's answer.
pub fn trace(name: &str, trace: &PacketTrace, output: Output) -> Result<String, Error> {
    let status = trace.status.clone().unwrap_or_default();
    if output == Output::Json {
        return Ok(serde_json::to_string_pretty(&status)? + "\n");
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "PacketTrace {name} on node {}, tables version {}",
        trace.spec.node,
        status.tables_version.unwrap_or_default()
    );
    for stage in &status.stages {
        let _ = writeln!(
            out,
            "  {:<16} {:<18} {}",
            stage.stage, stage.decision, stage.detail
        );
    }
    if let Some(v) = &status.verdict {
        let _ = writeln!(out, "verdict: {}", verdict_line(v));
    }
    Ok(out)
}

/// An observation's samples.
pub fn observe(name: &str, trace: &PacketTrace, output: Output) -> Result<String, Error> {
    let status = trace.status.clone().unwrap_or_default();
    if output == Output::Json {
        return Ok(serde_json::to_string_pretty(&status)? + "\n");
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "PacketTrace {name} on node {}: {} sample(s), {} matching packet(s) not sampled",
        trace.spec.node,
        status.samples.len(),
        status.samples_dropped.unwrap_or_default()
    );
    for s in &status.samples {
        let _ = writeln!(
            out,
            "  +{:>6} ms  {} VLAN {:<4} {}  =>  {}{}",
            s.at_millis,
            s.port,
            s.vlan,
            s.packet,
            verdict_line(&s.verdict),
            match s.decided_in.as_deref() {
                Some("xdp") => "  [xdp]",
                _ => "",
            }
        );
    }
    Ok(out)
}

/// A node's status.
pub fn status(router: &PhysicalRouter, output: Output) -> Result<String, Error> {
    let status = router.status.clone().unwrap_or_default();
    if output == Output::Json {
        return Ok(serde_json::to_string_pretty(&status)? + "\n");
    }
    let name = router.metadata.name.as_deref().unwrap_or("?");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {name}: tables version {}, backend {}",
        status
            .programmed_generation
            .map_or("none".to_string(), |v| v.to_string()),
        status.backend.as_deref().unwrap_or("none")
    );
    if let Some(c) = &status.counts {
        let _ = writeln!(
            out,
            "tables: {} logical interfaces, {} VMIs, {} routing instances, {} routes, {} virtual gateways",
            c.logical_interfaces,
            c.virtual_machine_interfaces,
            c.routing_instances,
            c.routes,
            c.virtual_gateways
        );
    }
    if !status.programmed_through.is_empty() {
        let through: Vec<String> = status
            .programmed_through
            .iter()
            .map(|(kind, rv)| format!("{kind} {rv}"))
            .collect();
        let _ = writeln!(
            out,
            "programmed through (resourceVersion per kind): {}",
            through.join(", ")
        );
    }
    let _ = writeln!(out, "ports:");
    for p in &status.ports {
        let _ = writeln!(
            out,
            "  {:<12} {}{}",
            p.name,
            p.state,
            p.message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "conditions:");
    for c in &status.conditions {
        let _ = writeln!(
            out,
            "  {:<11} {:<5} {:<14} {}",
            c.type_, c.status, c.reason, c.message
        );
    }
    // What the node was asked to hold and does not, with the reason.
    if status.exceptions.is_empty() {
        let _ = writeln!(out, "not programmed: nothing");
    } else {
        let _ = writeln!(out, "not programmed:");
        for e in &status.exceptions {
            let name = match &e.namespace {
                Some(ns) => format!("{ns}/{}", e.name),
                None => e.name.clone(),
            };
            let _ = writeln!(out, "  {} {name}: {}", e.kind, e.reason);
        }
    }
    if status.exceptions_truncated {
        let _ = writeln!(
            out,
            "  (more not listed: the report's list of exceptions is full)"
        );
    }
    for g in &status.ha_groups {
        let _ = writeln!(out, "HA group {}: {} ({})", g.group, g.state, g.reason);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_lines_name_what_matters() {
        let drop = TraceVerdict {
            action: "Drop".into(),
            drop_reason: Some("source_ip_spoofed".into()),
            ..Default::default()
        };
        assert_eq!(verdict_line(&drop), "DROP source_ip_spoofed");
        let out = TraceVerdict {
            action: "Transmit".into(),
            egress_port: Some("eth1".into()),
            egress_vlan: Some(200),
            src_mac: Some("02:00:00:00:00:01".into()),
            dst_mac: Some("02:00:00:00:00:0b".into()),
            summary: Some("IPv4 10.0.0.10 -> 10.0.1.20 ttl 63 proto 1".into()),
            ..Default::default()
        };
        assert_eq!(
            verdict_line(&out),
            "TRANSMIT out of eth1 VLAN 200 02:00:00:00:00:01 -> 02:00:00:00:00:0b: IPv4 10.0.0.10 -> 10.0.1.20 ttl 63 proto 1"
        );
    }
}
