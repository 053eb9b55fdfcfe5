//! The fast path does not depend on the control plane: with the API server
//! stopped, remote instances keep talking through the gateway and the node
//! dataplane stays healthy on its last tables. Its own test binary, because
//! it stops the control plane the binary shares.

mod common;

use std::time::Duration;

use common::ready_gateway;
use trunkline_test_support::{ControlPlane, http_get};

#[tokio::test]
async fn stopping_the_api_server_does_not_stop_forwarding() {
    let gw = ready_gateway("af-xdp").await;
    gw.ping_eventually("bms1", "192.168.1.20").await;

    let plane = ControlPlane::shared();
    let pid_file = plane.log_dir().join("kube-apiserver.pid");
    let pid = std::fs::read_to_string(&pid_file).expect("the API server's pid file");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    assert!(
        plane.kubectl(&["get", "--raw", "/readyz"]).status.code() != Some(0),
        "the API server is down"
    );

    // For well past the watches' first reconnect attempts: traffic flows,
    // the agent stays healthy and keeps its tables.
    let version = gw
        .agent()
        .metric("trunkline_dataplane_tables_version")
        .expect("tables version");
    for round in 0..5 {
        let (ok, out) = gw.lab.ping("bms1", "192.168.1.20", 3);
        assert!(
            ok,
            "round {round}: forwarding stopped without the API server: {out}"
        );
        let (code, body) = http_get(&gw.agent().url("/healthz")).expect("healthz answers");
        assert_eq!(code, 200, "{body}");
        let received = gw
            .lab
            .tcp("bms2", "bms1", "192.168.1.10", 5002 + round, "still-here")
            .expect("TCP");
        assert_eq!(received, "still-here");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        gw.agent().metric("trunkline_dataplane_tables_version"),
        Some(version),
        "the last tables stay in place"
    );
    let log = std::fs::read_to_string(gw.agent().log()).unwrap_or_default();
    assert!(
        log.contains("forwarding continues with the last tables"),
        "the agent says what happens"
    );
}
