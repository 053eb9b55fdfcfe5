//! `/healthz`, `/readyz` and `/metrics` of the agent.
//!
//! - `/healthz`: the forwarding thread is alive (it bumps a heartbeat every
//!   loop, at least every 100 ms).
//! - `/readyz`: the tables were built from a complete view of the API and
//!   every port is up.
//! - `/metrics`: Prometheus text format: per-VMI packet and byte counters,
//!   drops by reason, table version and sizes, port state.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::forward::Shared;

/// Serves the endpoints on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(shared);
    tracing::info!(addr = ?listener.local_addr(), "serving /healthz, /readyz, /metrics");
    axum::serve(listener, app).await
}

async fn healthz(State(shared): State<Arc<Shared>>) -> (StatusCode, String) {
    let age = shared.heartbeat_age();
    if age < Duration::from_secs(5) {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("forwarding thread silent for {age:?}\n"),
        )
    }
}

async fn readyz(State(shared): State<Arc<Shared>>) -> (StatusCode, String) {
    let report = shared.report();
    let down: Vec<String> = report
        .ports
        .iter()
        .filter(|p| p.state != "Up")
        .map(|p| format!("{} {}", p.name, p.state))
        .collect();
    if !report.synced {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "tables not built from a synced view yet\n".to_owned(),
        )
    } else if !down.is_empty() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("ports not up: {}\n", down.join(", ")),
        )
    } else {
        (
            StatusCode::OK,
            format!("ready: tables version {}\n", report.tables_version),
        )
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> String {
    let started = Instant::now();
    let mut out = String::new();
    let report = shared.report();
    let _ = writeln!(
        out,
        "# HELP trunkline_dataplane_tables_version Version of the tables in the fast path."
    );
    let _ = writeln!(out, "# TYPE trunkline_dataplane_tables_version gauge");
    let _ = writeln!(
        out,
        "trunkline_dataplane_tables_version {}",
        report.tables_version
    );
    let _ = writeln!(
        out,
        "# HELP trunkline_dataplane_objects Objects in the node's tables, by kind."
    );
    let _ = writeln!(out, "# TYPE trunkline_dataplane_objects gauge");
    let c = &report.counts;
    for (kind, n) in [
        ("LogicalInterface", c.logical_interfaces),
        ("VirtualMachineInterface", c.virtual_machine_interfaces),
        ("RoutingInstance", c.routing_instances),
        ("Route", c.routes),
    ] {
        let _ = writeln!(out, "trunkline_dataplane_objects{{kind=\"{kind}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP trunkline_dataplane_port_up Whether a trunk port is open and forwarding."
    );
    let _ = writeln!(out, "# TYPE trunkline_dataplane_port_up gauge");
    for port in &report.ports {
        let backend = report.backend.as_deref().unwrap_or("none");
        let _ = writeln!(
            out,
            "trunkline_dataplane_port_up{{port=\"{}\",backend=\"{backend}\"}} {}",
            port.name,
            u8::from(port.state == "Up")
        );
    }
    shared.write_packet_metrics(&mut out);
    let _ = writeln!(
        out,
        "# HELP trunkline_dataplane_metrics_render_seconds Time to render this page."
    );
    let _ = writeln!(
        out,
        "# TYPE trunkline_dataplane_metrics_render_seconds gauge"
    );
    let _ = writeln!(
        out,
        "trunkline_dataplane_metrics_render_seconds {}",
        started.elapsed().as_secs_f64()
    );
    out
}
