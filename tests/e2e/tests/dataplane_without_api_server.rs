//! The fast path does not depend on the control plane: with the API server
//! stopped, remote instances keep talking through the gateway and the node
//! dataplane stays healthy on its last tables. Its own test binary, because
//! it stops the control plane the binary shares.

mod common;

use std::time::Duration;

use common::ready_gateway;
use trunkline_test_support::{ControlPlane, eventually, http_get};

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

    // The agent has noticed, and at least one reconnect attempt of a watch
    // has failed too: from here on it runs on its last tables. Traffic flows
    // throughout, the agent stays healthy and keeps its tables.
    eventually(
        "a watch of the agent failed to reconnect",
        Duration::from_secs(60),
        || async {
            let log = std::fs::read_to_string(gw.agent().log()).unwrap_or_default();
            let most = most_interruptions_of_one_kind(&log);
            if most >= 2 {
                Ok(())
            } else {
                Err(format!("{most} interruption(s) logged for any one kind"))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; agent log: {}", gw.agent().log().display()));
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
    }
    assert_eq!(
        gw.agent().metric("trunkline_dataplane_tables_version"),
        Some(version),
        "the last tables stay in place"
    );
}

/// How often the agent logged "watch interrupted; forwarding continues
/// with the last tables" for the kind it logged it most for (a kind's
/// second line is a failed reconnect attempt). The log may carry ANSI
/// colours.
fn most_interruptions_of_one_kind(log: &str) -> usize {
    let mut per_kind = std::collections::HashMap::<String, usize>::new();
    for line in log.lines() {
        let plain = strip_ansi(line);
        if !plain.contains("forwarding continues with the last tables") {
            continue;
        }
        let kind = plain
            .split_once("kind=")
            .map(|(_, rest)| rest.split_whitespace().next().unwrap_or("").to_owned())
            .unwrap_or_default();
        *per_kind.entry(kind).or_default() += 1;
    }
    per_kind.values().copied().max().unwrap_or(0)
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
