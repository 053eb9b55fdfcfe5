//! The fast path does not depend on the control plane: with the API server
//! stopped, remote instances keep talking through the gateway and the node
//! dataplane stays healthy on its last tables. Once the API server is back,
//! a new object is programmed: the watches come back by themselves (their
//! backoff is capped at 2 s; the time taken is printed, not asserted tightly,
//! since this machine is shared). Its own test binary, because it stops the
//! API server the binary shares.

mod common;

use std::time::{Duration, Instant};

use common::{BMS1, BMS2, Gateway, Instance, OTHER};
use trunkline_test_support::{ControlPlane, eventually, http_get};

/// An instance whose objects are created only after the API server returns.
const LATE: Instance = Instance {
    name: "late",
    vlan: 400,
    cidr: "192.168.1.40/24",
    mac: "02:00:00:00:04:01",
    gateway: "192.168.1.1",
};

/// How long after its objects are written a new object may take to be
/// programmed once the API server is back. A watch that never resumes fails
/// this; the wide margin is for a loaded machine (the restarted API server
/// re-lists every CRD while the agent's watches reconnect), and the time
/// actually taken is printed.
const BACK_WITHIN: Duration = Duration::from_secs(45);

#[tokio::test]
async fn stopping_the_api_server_does_not_stop_forwarding() {
    let gw = Gateway::start(&[BMS1, BMS2, OTHER, LATE], "auto").await;
    gw.apply_objects(&[BMS1, BMS2, OTHER]).await;
    for vlan in [100, 200, 300] {
        gw.wait_li(&gw.li_name(vlan), "True").await;
    }
    gw.ping_eventually("bms1", "192.168.1.20").await;

    let plane = ControlPlane::shared();
    let pid_file = plane.log_dir().join("kube-apiserver.pid");
    let pid = std::fs::read_to_string(&pid_file).expect("the API server's pid file");
    let command_line = std::fs::read(format!("/proc/{}/cmdline", pid.trim()))
        .expect("the API server's command line");
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

    // The API server comes back, exactly as it ran before.
    restart_api_server(plane, &command_line);
    eventually(
        "the API server is ready again",
        Duration::from_secs(90),
        || async {
            let out = plane.kubectl(&["get", "--raw", "/readyz"]);
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        },
    )
    .await
    .expect("API server back");
    let back = Instant::now();

    // A new instance's objects, created now, are programmed (its traffic
    // flows and its logical interface says so) within BACK_WITHIN.
    gw.apply_vmi(LATE.name, "net1", LATE.mac, "192.168.1.40")
        .await;
    let li = gw.apply_li(LATE.vlan, LATE.name).await;
    let written = Instant::now();
    let left = BACK_WITHIN.saturating_sub(written.elapsed());
    eventually("the new instance reaches bms1", left, || async {
        let (ok, out) = gw.lab.ping("late", "192.168.1.10", 1);
        if ok { Ok(()) } else { Err(out) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; agent log: {}", gw.agent().log().display()));
    let left = BACK_WITHIN.saturating_sub(written.elapsed());
    gw.wait_li_condition_within(&li, "Programmed", "True", None, left)
        .await;
    eprintln!(
        "a new object was programmed {:.1} s after it was written, {:.1} s after the API server returned",
        written.elapsed().as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
}

/// Starts the API server again with the command line it ran with, its
/// output appended to its log and its PID recorded where `scripts/cluster.sh
/// down` (and the control plane's watchdog) find it.
fn restart_api_server(plane: &ControlPlane, command_line: &[u8]) {
    let mut args = command_line
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let program = args.next().expect("a program");
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(plane.log_dir().join("kube-apiserver.log"))
        .expect("the API server's log");
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("the API server starts again");
    std::fs::write(
        plane.log_dir().join("kube-apiserver.pid"),
        child.id().to_string(),
    )
    .expect("pid file");
    // Reaped when it exits (the control plane's `down` stops it).
    std::thread::spawn(move || child.wait());
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
