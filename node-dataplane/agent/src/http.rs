//! `/healthz`, `/readyz` and `/metrics` of the agent.
//!
//! - `/healthz`: the forwarding thread is alive (it bumps a heartbeat every
//!   loop, at least every 100 ms).
//! - `/readyz`: the tables were built from a complete view of the API,
//!   every port is up, and a declared fabric port's MAC and MTU are read
//!   (the underlay, and so tunnels and SNAT, work).
//! - `/metrics`: Prometheus text format (see [`crate::metrics`]).
//! - `/debug/tables` (with `--debug-tables` only): JSON with the installed
//!   tables' dump and the dump of a compilation from scratch of the same
//!   configuration (tests compare them).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::control::Control;
use crate::metrics::Metrics;

/// What the endpoints read.
#[derive(Clone)]
struct Endpoints {
    control: Arc<Control>,
    metrics: Arc<Metrics>,
}

/// Serves the endpoints on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    control: Arc<Control>,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .route("/debug/tables", get(debug_tables))
        .with_state(Endpoints { control, metrics });
    tracing::info!(addr = ?listener.local_addr(), "serving /healthz, /readyz, /metrics");
    axum::serve(listener, app).await
}

async fn debug_tables(State(e): State<Endpoints>) -> (StatusCode, String) {
    match e.control.tables_and_scratch() {
        Some((version, installed, scratch)) => (
            StatusCode::OK,
            serde_json::json!({"version": version, "installed": installed, "scratch": scratch})
                .to_string(),
        ),
        None => (
            StatusCode::NOT_FOUND,
            "not kept: run with --debug-tables\n".to_owned(),
        ),
    }
}

async fn healthz(State(e): State<Endpoints>) -> (StatusCode, String) {
    let age = e.control.heartbeat_age();
    if age < Duration::from_secs(5) {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("forwarding thread silent for {age:?}\n"),
        )
    }
}

async fn readyz(State(e): State<Endpoints>) -> (StatusCode, String) {
    let report = e.control.report();
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
    } else if let Some(why) = &report.fabric_waiting {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n"))
    } else {
        (
            StatusCode::OK,
            format!("ready: tables version {}\n", report.tables_version),
        )
    }
}

async fn render_metrics(State(e): State<Endpoints>) -> axum::response::Response {
    match e.metrics.render() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not render the metrics\n",
        )
            .into_response(),
    }
}
