//! `kubectl trunkline` end to end: the plugin binary, with ServiceAccount
//! kubeconfigs of the product's roles, against a real API server, the
//! operator and the node dataplane of the gateway-mode rig, with real
//! traffic in the lab.
//!
//! ```text
//!  kubectl-trunkline (SA tracer: trunkline-trace) --create PacketTrace--> kube-apiserver
//!                                                                           | watch spec.node=<node>
//!  bms1 (VLAN 100) -- switch -- trunk eth1 -- trunkline-dataplane  <--------+
//!  bms2 (VLAN 200) -/   tshark on the switch side of the trunk: what the gateway really sends
//! ```
//! Needs root (namespaces, XDP); CI runs as root.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{BMS1, BMS2, Gateway, NODE, TRUNK, ready_gateway};
use serde_json::Value;
use trunkline_test_support::lab::{Limit, switch_name};
use trunkline_test_support::{ControlPlane, http_get, workspace_binary};

/// The plugin as a user runs it: `kubectl-trunkline --kubeconfig <file> ...`.
fn plugin(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(workspace_binary("kubectl-trunkline", "kubectl-trunkline"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl-trunkline runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The plugin as kubectl finds it: `kubectl trunkline <args>` with the
/// built `kubectl-trunkline` in a directory at the head of `PATH` (kubectl's
/// own plugin lookup, as after `make install-plugin`) and the identity in
/// `KUBECONFIG`.
fn kubectl_plugin(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let binary = workspace_binary("kubectl-trunkline", "kubectl-trunkline");
    let dir = std::env::temp_dir().join(format!("trunkline-plugin-path-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a PATH directory");
    let link = dir.join("kubectl-trunkline");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&binary, &link).expect("kubectl-trunkline on the PATH");
    let path = std::env::join_paths(
        std::iter::once(dir.clone()).chain(
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths),
        ),
    )
    .expect("a PATH");
    let kubectl = ControlPlane::shared().kubectl_command();
    let run = |args: &[&str]| {
        let out = Command::new(&kubectl)
            .args(args)
            .env("PATH", &path)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // kubectl lists the plugin where we put it.
    let (ok, list, err) = run(&["plugin", "list"]);
    assert!(
        ok && list.contains(&link.display().to_string()),
        "kubectl plugin list does not show {}:\n{list}\n{err}",
        link.display()
    );
    let mut full = vec!["trunkline"];
    full.extend_from_slice(args);
    let result = run(&full);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn plugin_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let (ok, out, err) = plugin(kubeconfig, args);
    assert!(ok, "kubectl-trunkline {args:?} failed:\n{out}\n{err}");
    eprintln!("$ kubectl trunkline {}\n{out}", args.join(" "));
    out
}

async fn tracer(gw: &Gateway<'_>) -> PathBuf {
    ControlPlane::shared()
        .kubeconfig_with_role(gw.ns.name(), "tracer", "trace")
        .await
        .expect("an identity with the trace role")
}

/// `trace -o json` of an ICMP echo from `src_ip` (with `src_mac`) on VLAN
/// `vlan` to `dst_ip`.
fn trace_json(kubeconfig: &Path, node: &str, vlan: &str, mac: &str, src: &str, dst: &str) -> Value {
    let out = plugin_ok(
        kubeconfig,
        &[
            "trace",
            "--node",
            node,
            "--port",
            TRUNK,
            "--vlan",
            vlan,
            "--src-mac",
            mac,
            "--src-ip",
            src,
            "--dst-ip",
            dst,
            "-o",
            "json",
        ],
    );
    serde_json::from_str(&out).expect("JSON")
}

fn ip_of(cidr: &str) -> &str {
    cidr.split('/').next().unwrap()
}

#[tokio::test]
async fn traces_match_the_real_forwarding_and_need_the_trace_role() {
    let gw = ready_gateway("af-xdp").await;
    gw.ping_eventually("bms1", ip_of(BMS2.cidr)).await;
    let tracer = tracer(&gw).await;
    let node = gw.node.as_str();

    // What the gateway really sends toward bms2 for bms1's ping: seen on
    // the switch side of the trunk, where the tags are in the bytes.
    let capture = gw
        .lab
        .capture(
            &switch_name(NODE, TRUNK),
            "trunk",
            "vlan and icmp",
            Limit::packets(4).within(Duration::from_secs(20)),
        )
        .expect("capture on the trunk");
    let (ok, out) = gw.lab.ping("bms1", ip_of(BMS2.cidr), 2);
    assert!(ok, "{out}");
    let pcap = capture.finish().expect("capture");
    let fields = ["vlan.id", "eth.src", "eth.dst"];
    let filter = format!(
        "icmp.type == 8 && ip.src == {} && ip.dst == {} && eth.src != {}",
        ip_of(BMS1.cidr),
        ip_of(BMS2.cidr),
        BMS1.mac
    );
    let sent = pcap.fields_where(&filter, &fields, &[]).expect("tshark");
    let real = sent.first().unwrap_or_else(|| {
        panic!(
            "no routed echo request on the trunk:\n{}",
            pcap.summary(&[]).unwrap_or_default()
        )
    });

    // 1. Forwarded: the trace's egress VLAN and MACs are the real frame's.
    let answer = trace_json(
        &tracer,
        node,
        "100",
        BMS1.mac,
        ip_of(BMS1.cidr),
        ip_of(BMS2.cidr),
    );
    let verdict = &answer["verdict"];
    assert_eq!(verdict["action"], "Transmit", "{answer:#}");
    assert_eq!(verdict["egressPort"], TRUNK);
    assert_eq!(
        verdict["egressVlan"]
            .as_u64()
            .map(|v| v.to_string())
            .as_deref(),
        real.first("vlan.id"),
        "{answer:#}"
    );
    assert_eq!(
        verdict["srcMac"].as_str(),
        real.first("eth.src"),
        "{answer:#}"
    );
    assert_eq!(
        verdict["dstMac"].as_str(),
        real.first("eth.dst"),
        "{answer:#}"
    );
    assert_eq!(verdict["dstMac"], BMS2.mac);
    let stages: Vec<&str> = answer["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert!(
        stages.starts_with(&[
            "port",
            "parse",
            "classify",
            "source_check",
            "dispatch",
            "route"
        ]),
        "{stages:?}"
    );
    assert!(
        answer["tablesVersion"].as_i64().unwrap_or(0) > 0,
        "{answer:#}"
    );

    // 2. Spoofed: bms1's VLAN and MAC, another address.
    let answer = trace_json(
        &tracer,
        node,
        "100",
        BMS1.mac,
        "192.168.1.99",
        ip_of(BMS2.cidr),
    );
    assert_eq!(answer["verdict"]["action"], "Drop", "{answer:#}");
    assert_eq!(answer["verdict"]["dropReason"], "source_ip_spoofed");

    // 3. No logical interface on that VLAN.
    let answer = trace_json(
        &tracer,
        node,
        "999",
        BMS1.mac,
        ip_of(BMS1.cidr),
        ip_of(BMS2.cidr),
    );
    assert_eq!(
        answer["verdict"]["dropReason"], "no_logical_interface",
        "{answer:#}"
    );

    // 4. The ARP proxy answers for the gateway address, in text.
    let text = plugin_ok(
        &tracer,
        &[
            "trace",
            "--node",
            node,
            "--port",
            TRUNK,
            "--vlan",
            "100",
            "--src-mac",
            BMS1.mac,
            "--src-ip",
            ip_of(BMS1.cidr),
            "--dst-ip",
            BMS1.gateway,
            "--protocol",
            "arp",
        ],
    );
    assert!(text.contains("neighbour_proxy  gateway_address"), "{text}");
    assert!(
        text.contains("verdict: TRANSMIT out of eth1 VLAN 100"),
        "{text}"
    );
    assert!(text.contains("ARP reply 192.168.1.1 is-at"), "{text}");

    // A node that does not exist: the operator says so.
    let (ok, out, err) = plugin(
        &tracer,
        &[
            "trace",
            "--node",
            "no-such-node",
            "--port",
            TRUNK,
            "--src-mac",
            BMS1.mac,
            "--src-ip",
            "10.0.0.1",
            "--dst-ip",
            "10.0.0.2",
            "--timeout",
            "30",
        ],
    );
    assert!(!ok && err.contains("UnknownNode"), "{out}\n{err}");

    // Status with the read-only role; the same role cannot trace.
    let viewer = ControlPlane::shared()
        .kubeconfig_with_role(gw.ns.name(), "viewer", "status-viewer")
        .await
        .expect("a status viewer");
    let status = plugin_ok(&viewer, &["status", "--node", node]);
    assert!(status.contains("tables: 3 logical interfaces"), "{status}");
    assert!(status.contains("eth1"), "{status}");
    // The same through kubectl's plugin lookup, as a user types it.
    let (ok, via_kubectl, err) = kubectl_plugin(&viewer, &["status", "--node", node]);
    assert!(ok, "kubectl trunkline status failed:\n{via_kubectl}\n{err}");
    eprintln!("$ kubectl trunkline status --node {node}\n{via_kubectl}");
    assert!(
        via_kubectl.contains("tables: 3 logical interfaces") && via_kubectl.contains("eth1"),
        "{via_kubectl}"
    );
    let (ok, out, err) = plugin(
        &viewer,
        &[
            "trace",
            "--node",
            node,
            "--port",
            TRUNK,
            "--src-mac",
            BMS1.mac,
            "--src-ip",
            ip_of(BMS1.cidr),
            "--dst-ip",
            ip_of(BMS2.cidr),
        ],
    );
    assert!(!ok, "a viewer traced: {out}");
    assert!(
        err.contains("forbidden") || err.contains("Forbidden"),
        "{err}"
    );
    // An identity without any trunkline role: refused too.
    let nobody = ControlPlane::shared()
        .kubeconfig_for_service_account(gw.ns.name(), "nobody")
        .await
        .expect("a bare ServiceAccount");
    let (ok, _, err) = plugin(
        &nobody,
        &[
            "trace",
            "--node",
            node,
            "--port",
            TRUNK,
            "--src-mac",
            BMS1.mac,
            "--src-ip",
            ip_of(BMS1.cidr),
            "--dst-ip",
            ip_of(BMS2.cidr),
        ],
    );
    assert!(!ok && err.to_lowercase().contains("forbidden"), "{err}");
    let (ok, _, err) = plugin(&nobody, &["status", "--node", node]);
    assert!(!ok && err.to_lowercase().contains("forbidden"), "{err}");

    // Nothing to reach on the agent directly: it listens on its metrics
    // address only, which serves nothing trace-like.
    let pid = gw.agent().pid().expect("agent pid").to_string();
    let listening = Command::new("ss").args(["-Htlnp"]).output().expect("ss");
    let mine: Vec<String> = String::from_utf8_lossy(&listening.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        mine.len(),
        1,
        "the agent listens on one TCP socket only: {mine:?}"
    );
    let udp = Command::new("ss").args(["-Hulnp"]).output().expect("ss");
    let udp: Vec<String> = String::from_utf8_lossy(&udp.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .map(str::to_owned)
        .collect();
    // The HA heartbeat socket (UDP 6638, in the node's namespace) is the
    // agent's only UDP socket, and is not in this namespace.
    assert!(
        udp.is_empty(),
        "no UDP socket in the host namespace: {udp:?}"
    );
    for path in [
        "/trace",
        "/packettrace",
        "/debug",
        "/observe",
        "/tables",
        "/api/trace",
    ] {
        let (code, _) = http_get(&gw.agent().url(path)).expect("the metrics endpoint answers");
        assert_eq!(code, 404, "GET {path} on the agent's metrics endpoint");
    }
}

/// Runs `run` (an observation) on a thread while bms1 pings bms2 every
/// half second (the observation starts once the agent sees the question).
fn pinging_while<T: Send + 'static>(
    gw: &Gateway<'static>,
    run: impl FnOnce() -> T + Send + 'static,
) -> T {
    let observing = std::thread::spawn(run);
    let mut pinged = 0;
    while !observing.is_finished() {
        let (ok, out) = gw.lab.ping("bms1", ip_of(BMS2.cidr), 1);
        assert!(ok, "{out}");
        pinged += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("{pinged} pings while observing");
    observing.join().expect("observe")
}

/// `kubectl trunkline observe --ip 192.168.1.10` while bms1 pings bms2:
/// the observation's status (JSON), with the samples of the echo request
/// (VLAN 100 -> 200) and of its reply (-> VLAN 100) checked; they are
/// returned for the caller to check who decided them.
fn observe_a_ping(gw: &Gateway<'static>, tracer: &Path) -> (Value, Value, Value) {
    let kubeconfig = tracer.to_path_buf();
    let node = gw.node.clone();
    let (ok, out, err) = pinging_while(gw, move || {
        plugin(
            &kubeconfig,
            &[
                "observe",
                "--node",
                &node,
                "--ip",
                "192.168.1.10",
                "--duration",
                "8",
                "-o",
                "json",
            ],
        )
    });
    assert!(ok, "observe failed:\n{out}\n{err}");
    eprintln!("$ kubectl trunkline observe -o json\n{out}");
    let status: Value = serde_json::from_str(&out).expect("JSON");
    let samples = status["samples"].as_array().expect("samples");
    let echo = samples
        .iter()
        .find(|s| {
            s["packet"]
                .as_str()
                .is_some_and(|p| p.starts_with("192.168.1.10 -> 192.168.1.20 ICMP"))
                && s["vlan"] == 100
        })
        .unwrap_or_else(|| panic!("no sample of bms1's echo request: {status:#}"))
        .clone();
    assert_eq!(echo["verdict"]["action"], "Transmit");
    assert_eq!(echo["verdict"]["egressVlan"], 200);
    let reply = samples
        .iter()
        .find(|s| {
            s["packet"]
                .as_str()
                .is_some_and(|p| p.starts_with("192.168.1.20 -> 192.168.1.10 ICMP"))
                && s["verdict"]["egressVlan"] == 100
        })
        .unwrap_or_else(|| panic!("the reply is sampled too: {status:#}"))
        .clone();
    (status, echo, reply)
}

/// With every frame through AF_XDP, the pipeline decides (and samples)
/// the ping.
#[tokio::test]
async fn observe_shows_the_verdicts_of_a_real_ping() {
    let gw = ready_gateway("af-xdp").await;
    gw.ping_eventually("bms1", ip_of(BMS2.cidr)).await;
    let tracer = tracer(&gw).await;
    let (_, echo, reply) = observe_a_ping(&gw, &tracer);
    assert_eq!(echo["decidedIn"], "pipeline");
    assert_eq!(reply["decidedIn"], "pipeline");
    // A text rendering of the same kind of answer, for the docs.
    let text = plugin_ok(
        &tracer,
        &[
            "observe",
            "--node",
            &gw.node,
            "--drops-only",
            "--duration",
            "2",
        ],
    );
    assert!(text.contains("sample(s)"), "{text}");
}

/// With the default backend the XDP tier routes the ping in the kernel:
/// observe shows those verdicts, marked as decided in the XDP tier, with
/// the egress VLAN the kernel wrote; and the node's counters say the tier
/// decided them (not the pipeline).
#[tokio::test]
async fn observe_shows_the_xdp_tiers_verdicts_of_a_real_ping() {
    let gw = ready_gateway("auto").await;
    gw.ping_eventually("bms1", ip_of(BMS2.cidr)).await;
    let tracer = tracer(&gw).await;
    let (status, echo, reply) = observe_a_ping(&gw, &tracer);
    assert_eq!(echo["decidedIn"], "xdp", "{status:#}");
    assert_eq!(reply["decidedIn"], "xdp", "{status:#}");
    assert_eq!(echo["verdict"]["egressPort"], TRUNK);
    let in_kernel = gw
        .agent()
        .metric("trunkline_dataplane_xdp_tier_frames_total{decision=\"kernel\"}")
        .unwrap_or(0.0);
    assert!(in_kernel > 0.0, "the XDP tier decided no frame");
    // As text: the kernel's verdicts carry the marker.
    let (kubeconfig, node) = (tracer.clone(), gw.node.clone());
    let text = pinging_while(&gw, move || {
        plugin_ok(
            &kubeconfig,
            &[
                "observe",
                "--node",
                &node,
                "--ip",
                "192.168.1.10",
                "--duration",
                "3",
            ],
        )
    });
    eprintln!("$ kubectl trunkline observe --node … --ip 192.168.1.10 --duration 3\n{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("192.168.1.10 -> 192.168.1.20 ICMP") && l.ends_with("[xdp]")),
        "{text}"
    );
}
