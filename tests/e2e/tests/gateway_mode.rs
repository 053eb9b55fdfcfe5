//! Gateway mode end to end: objects applied to a real API server, the
//! operator and the node dataplane running as processes with their own
//! ServiceAccounts (roles from `deploy/rbac/`), and real traffic between
//! remote instances in network namespaces, through the fast path in its
//! default backend (the XDP tier with AF_XDP), AF_XDP alone and AF_PACKET.
//!
//! ```text
//!  bms1 (VLAN 100) --\                         /-- operator (SA trunkline-operator)
//!  bms2 (VLAN 200) ---+- switch -- trunk eth1 -+   kube-apiserver
//!  other (VLAN 300) -/   (tc taggers)  [gw ns]  \-- trunkline-dataplane (SA trunkline-dataplane,
//!                                                    ports in the gw namespace)
//! ```
//! Needs root (namespaces, XDP); CI runs as root.

mod common;

use std::time::Duration;

use common::{READY_TIMEOUT, ready_gateway};
use kube::api::{Api, DeleteParams};
use trunkline_api::{LogicalInterface, PhysicalRouter, VirtualMachineInterface};
use trunkline_test_support::{eventually, unique_name};

async fn instances_talk(backend: &'static str) {
    let gw = ready_gateway(backend).await;
    let out = gw.ping_eventually("bms1", "192.168.1.20").await;
    eprintln!("bms1 -> bms2 through the gateway ({backend}):\n{out}");
    let (ok, out) = gw.lab.ping("bms2", "192.168.1.10", 3);
    assert!(ok, "bms2 -> bms1: {out}");
    let (ok, out) = gw.lab.ping("bms1", "192.168.1.1", 2);
    assert!(ok, "the gateway address answers: {out}");
    let received = gw
        .lab
        .tcp("bms1", "bms2", "192.168.1.20", 5001, "hello-over-tcp")
        .expect("TCP");
    assert_eq!(received, "hello-over-tcp");
    let metrics = gw.agent().metrics();
    let vmi = format!("{}/bms1", gw.ns.name());
    let rx = gw
        .agent()
        .metric(&format!(
            "trunkline_dataplane_vmi_packets_total{{vmi=\"{vmi}\",direction=\"rx\"}}"
        ))
        .unwrap_or(0.0);
    assert!(
        rx >= 5.0,
        "per-VMI counters count bms1's packets ({rx}):\n{metrics}"
    );
    // The node reports asynchronously (its first report may precede the
    // ports' opening): wait for the report that describes what forwards.
    let backend_name = match backend {
        "af-xdp" => "AF_XDP",
        "af-packet" => "AF_PACKET",
        _ => "XDP",
    };
    // The XDP tier decided frames in the kernel, and only with it.
    let in_kernel = gw
        .agent()
        .metric("trunkline_dataplane_xdp_tier_frames_total{decision=\"kernel\"}")
        .unwrap_or(0.0);
    if backend_name == "XDP" {
        assert!(in_kernel > 0.0, "the XDP tier decided no frame:\n{metrics}");
    } else {
        assert_eq!(in_kernel, 0.0, "an XDP tier with --backend {backend}");
    }
    eventually(
        "the node reports its backend, Ready and its tables",
        Duration::from_secs(30),
        || async {
            let status = gw.router_status().await;
            let ready = status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let lis = status.counts.as_ref().map(|c| c.logical_interfaces);
            if status.backend.as_deref() == Some(backend_name) && ready && lis == Some(3) {
                Ok(())
            } else {
                Err(format!(
                    "backend {:?}, logical interfaces {lis:?}, conditions {:?}",
                    status.backend, status.conditions
                ))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // Each open port says how many receive queues it serves and how its
    // AF_XDP sockets move frames (the lab's veths: one queue, copy mode).
    let status = gw.router_status().await;
    let up: Vec<_> = status.ports.iter().filter(|p| p.state == "Up").collect();
    assert!(!up.is_empty(), "no port up: {:?}", status.ports);
    for port in up {
        let expect = match backend_name {
            "AF_PACKET" => (None, None),
            _ => (Some(1), Some("Copy")),
        };
        assert_eq!(
            (port.queues, port.af_xdp_mode.as_deref()),
            expect,
            "port {} with {backend_name}",
            port.name
        );
    }
}

#[tokio::test]
async fn remote_instances_on_two_vlans_ping_and_talk_tcp_through_the_xdp_tier() {
    instances_talk("auto").await;
}

/// Every frame through userspace: the AF_XDP-only mode keeps its run.
#[tokio::test]
async fn the_af_xdp_only_backend_forwards_the_same_traffic() {
    instances_talk("af-xdp").await;
}

#[tokio::test]
async fn the_af_packet_backend_forwards_the_same_traffic() {
    instances_talk("af-packet").await;
}

#[tokio::test]
async fn an_instance_of_another_network_cannot_reach_them() {
    let gw = ready_gateway("auto").await;
    gw.ping_eventually("bms1", "192.168.1.20").await;
    let to_bms1 = format!(
        "trunkline_dataplane_vmi_packets_total{{vmi=\"{}/bms1\",direction=\"tx\"}}",
        gw.ns.name()
    );
    let flooded = "trunkline_dataplane_frames_total{verdict=\"flood\"}";
    let (tx_before, floods_before) = (
        gw.agent().metric(&to_bms1).unwrap_or(0.0),
        gw.agent().metric(flooded).unwrap_or(0.0),
    );
    // "other" has an address of the same subnet, but in net2's VRF: nothing
    // of net1 is routed there, so its ARP for net1's instance is flooded in
    // net2 only, where nobody answers.
    let (ok, out) = gw.lab.ping("other", "192.168.1.10", 3);
    assert!(!ok, "net2 reached net1: {out}");
    let (ok, out) = gw.lab.ping("other", "192.168.1.1", 2);
    assert!(
        ok,
        "net2's own gateway answers, so the instance itself is fine: {out}"
    );
    assert!(
        gw.agent().metric(flooded).unwrap_or(0.0) > floods_before,
        "the unanswered ARP was flooded in net2:\n{}",
        gw.agent().metrics()
    );
    assert_eq!(
        gw.agent().metric(&to_bms1).unwrap_or(0.0),
        tx_before,
        "nothing of net2 reached bms1 (net1)"
    );
}

#[tokio::test]
async fn spoofed_source_mac_or_ip_is_dropped_and_counted() {
    let gw = ready_gateway("auto").await;
    gw.ping_eventually("bms1", "192.168.1.20").await;
    // bms1 claims an address that is not its own.
    let out = gw.lab.sh("bms1", "ip addr flush dev eth0 && ip addr add 192.168.1.99/24 dev eth0 && ip route add default via 192.168.1.1");
    assert!(out.status.success());
    let before = gw.drops("source_ip_spoofed");
    let (ok, out) = gw.lab.ping("bms1", "192.168.1.20", 3);
    assert!(!ok, "a spoofed source IP got through: {out}");
    assert!(
        gw.drops("source_ip_spoofed") > before,
        "{}",
        gw.agent().metrics()
    );
    // Back to its address, but with another MAC.
    let out = gw.lab.sh("bms1", "ip addr flush dev eth0 && ip link set eth0 address 02:00:00:00:01:99 && ip addr add 192.168.1.10/24 dev eth0 && ip route add default via 192.168.1.1 && ip neigh flush all");
    assert!(out.status.success());
    let before = gw.drops("source_mac_spoofed");
    let (ok, out) = gw.lab.ping("bms1", "192.168.1.20", 3);
    assert!(!ok, "a spoofed source MAC got through: {out}");
    assert!(
        gw.drops("source_mac_spoofed") > before,
        "{}",
        gw.agent().metrics()
    );
    // Its own MAC again: traffic flows.
    let out = gw.lab.sh(
        "bms1",
        "ip link set eth0 address 02:00:00:00:01:01 && ip neigh flush all",
    );
    assert!(out.status.success());
    gw.ping_eventually("bms1", "192.168.1.20").await;
}

#[tokio::test]
async fn deleting_the_logical_interface_stops_traffic_and_recreating_it_restores_it() {
    let gw = ready_gateway("auto").await;
    gw.ping_eventually("bms1", "192.168.1.20").await;
    let lis: Api<LogicalInterface> = Api::all(gw.client.clone());
    lis.delete(&gw.li_name(200), &DeleteParams::default())
        .await
        .expect("delete");
    eventually("traffic to bms2 stops", Duration::from_secs(30), || async {
        let (ok, out) = gw.lab.ping("bms1", "192.168.1.20", 2);
        if ok { Err(out) } else { Ok(()) }
    })
    .await
    .expect("deleting the logical interface stops the traffic");
    gw.apply_li(200, "bms2").await;
    gw.wait_li(&gw.li_name(200), "True").await;
    gw.ping_eventually("bms1", "192.168.1.20").await;
}

/// A spec edit of an instance's VMI (an allowed address pair added, then
/// removed, three times) is enforced once the operator accepts it, and
/// meanwhile the node keeps enforcing the version accepted last: a ping
/// every 5 ms across all six edits loses nothing (but the request in flight
/// when it is interrupted). (Before, the node left a
/// VMI out of its tables from the edit until the operator's acceptance.)
#[tokio::test]
async fn editing_an_instances_spec_never_interrupts_its_traffic() {
    let gw = ready_gateway("auto").await;
    gw.ping_eventually("bms1", "192.168.1.20").await;
    let pinger = std::process::Command::new("ip")
        .args(["netns", "exec", &gw.lab.namespace("bms1")])
        .args(["ping", "-q", "-i", "0.005", "-W", "2", "-c", "20000"])
        .arg("192.168.1.20")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ping starts");
    let vmis: Api<VirtualMachineInterface> = Api::namespaced(gw.client.clone(), gw.ns.name());
    for round in 0..6 {
        let pairs = if round % 2 == 0 {
            serde_json::json!([{"prefix": "192.168.1.200/32"}])
        } else {
            serde_json::json!([])
        };
        gw.apply_namespaced(
            "virtualmachineinterfaces",
            "bms2",
            serde_json::json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
                "metadata": {"name": "bms2", "namespace": gw.ns.name()},
                "spec": {"virtualNetwork": "net1", "macAddress": "02:00:00:00:02:01",
                         "ips": [{"address": "192.168.1.20"}], "allowedAddressPairs": pairs}}),
        )
        .await;
        eventually(
            "the edit is Programmed at its generation",
            READY_TIMEOUT,
            || async {
                let vmi = vmis.get("bms2").await.map_err(|e| e.to_string())?;
                let generation = vmi.metadata.generation;
                let status = vmi.status.unwrap_or_default();
                let pairs = vmi.spec.allowed_address_pairs.len();
                let programmed = status.conditions.iter().any(|c| {
                    c.type_ == "Programmed"
                        && c.status == "True"
                        && c.observed_generation == generation
                });
                if programmed && pairs == (round + 1) % 2 {
                    Ok(())
                } else {
                    Err(format!(
                        "generation {generation:?}: {:?}",
                        status.conditions
                    ))
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    // ping prints its summary when interrupted.
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &pinger.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let out = pinger.wait_with_output().expect("ping ends");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{text}");
    let summary = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary: {text}"));
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (sent, received) = (numbers[0], numbers[1]);
    assert!(sent >= 200, "the ping ran across the edits: {summary}");
    // The one request in flight when ping was interrupted may go
    // unanswered; a VMI out of the tables for even 10 ms loses two.
    assert!(
        sent - received <= 1,
        "no reply lost across six spec edits: {summary}"
    );
}

/// A newer logical interface on a VLAN already bound loses (Accepted=False,
/// Conflict, naming the winner), and the node never programs it: the traffic
/// of the winner's instance is untouched. "Never" is checked after the node
/// has provably processed the loser: a later change (a marker logical
/// interface) is programmed, so the node's tables were rebuilt from a view
/// that includes the loser.
#[tokio::test]
async fn a_conflicting_logical_interface_never_steals_traffic() {
    let gw = ready_gateway("auto").await;
    gw.ping_eventually("bms1", "192.168.1.20").await;
    let before = gw.router_status().await.programmed_generation.unwrap_or(0);
    // A newer logical interface on bms2's VLAN, bound to an impostor VMI.
    gw.apply_vmi("impostor", "net1", "02:00:00:00:09:01", "192.168.1.90")
        .await;
    let thief = gw
        .apply_li_named(&unique_name("thief"), 200, "impostor")
        .await;
    let li = gw
        .wait_li_condition(&thief, "Accepted", "False", Some("Conflict"))
        .await;
    let accepted = li
        .status
        .expect("status")
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Accepted")
        .expect("Accepted");
    assert!(
        accepted.message.contains(&gw.li_name(200)),
        "the loser names the winner: {}",
        accepted.message
    );
    gw.wait_li(&thief, "False").await;

    // The marker: applied after the loser was decided, programmed by the node.
    gw.apply_vmi("marker", "net1", "02:00:00:00:04:01", "192.168.1.40")
        .await;
    let marker = gw.apply_li(400, "marker").await;
    gw.wait_li(&marker, "True").await;
    let status = gw.router_status().await;
    let after = status.programmed_generation.unwrap_or(0);
    assert!(
        after > before,
        "the node's tables version advanced ({before} -> {after})"
    );
    assert!(
        !status.exceptions.iter().any(|o| o.name == thief),
        "the loser was never asked of the node (not labelled for it): {:?}",
        status.exceptions
    );
    assert!(status.exceptions.is_empty(), "{:?}", status.exceptions);
    assert_eq!(
        status.counts.expect("counts").logical_interfaces,
        4,
        "the three winners and the marker"
    );
    for _ in 0..3 {
        let (ok, out) = gw.lab.ping("bms1", "192.168.1.20", 2);
        assert!(ok, "traffic to bms2 kept flowing: {out}");
    }
}

#[tokio::test]
async fn restarting_the_agent_restores_forwarding_and_leaves_nothing_stale() {
    let mut gw = ready_gateway("auto").await;
    gw.ping_eventually("bms1", "192.168.1.20").await;
    assert_eq!(gw.xdp_attachments(), 1, "one XDP program on the trunk port");
    // A crash: SIGKILL. The program goes with the process (a BPF link).
    gw.agent.as_mut().expect("agent").kill();
    eventually(
        "XDP program gone after the crash",
        Duration::from_secs(10),
        || async {
            match gw.xdp_attachments() {
                0 => Ok(()),
                n => Err(format!("{n} attached")),
            }
        },
    )
    .await
    .expect("no stale XDP program");
    let (ok, _) = gw.lab.ping("bms1", "192.168.1.20", 2);
    assert!(!ok, "nothing forwards without the agent");
    gw.start_agent();
    gw.agent().wait_ready(READY_TIMEOUT).await;
    gw.ping_eventually("bms1", "192.168.1.20").await;
    assert_eq!(
        gw.xdp_attachments(),
        1,
        "still exactly one XDP program after the restart"
    );
    // A clean stop (SIGTERM) also detaches, well within a pod's grace
    // period (30 s by default): the agent must not linger.
    let stopping = std::time::Instant::now();
    gw.agent
        .as_mut()
        .expect("agent")
        .stop(Duration::from_secs(15));
    let took = stopping.elapsed();
    eprintln!("the agent stopped {took:?} after SIGTERM");
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} to stop the agent"
    );
    assert_eq!(
        gw.xdp_attachments(),
        0,
        "a stopped agent leaves no program behind"
    );
}

/// A trunk whose link goes down is reported on the PhysicalRouter (port
/// `Down`, node not Ready, with the reason) and recovers by itself.
#[tokio::test]
async fn a_trunk_link_going_down_is_reported_and_recovers() {
    let gw = ready_gateway("auto").await;
    gw.ping_eventually("bms1", "192.168.1.20").await;
    let routers: Api<PhysicalRouter> = Api::all(gw.client.clone());
    let router_state = |want_ready: &'static str, want_port: &'static str| {
        let routers = routers.clone();
        let node = gw.node.clone();
        move || {
            let routers = routers.clone();
            let node = node.clone();
            async move {
                let status = routers
                    .get(&node)
                    .await
                    .map_err(|e| e.to_string())?
                    .status
                    .unwrap_or_default();
                let ready = status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .cloned();
                let port = status.ports.iter().find(|p| p.name == "eth1").cloned();
                match (&ready, &port) {
                    (Some(r), Some(p)) if r.status == want_ready && p.state == want_port => {
                        Ok((r.clone(), p.clone()))
                    }
                    _ => Err(format!("Ready {ready:?}, port {port:?}")),
                }
            }
        }
    };
    // The switch side of the trunk goes down: eth1 loses its carrier.
    let switch = gw.lab.switch(common::NODE, common::TRUNK);
    let out = gw
        .lab
        .exec(&switch, &["ip", "link", "set", "trunk", "down"]);
    assert!(out.status.success());
    let (ready, port) = eventually(
        "the port reported Down",
        Duration::from_secs(30),
        router_state("False", "Down"),
    )
    .await
    .expect("link down reported");
    assert_eq!(ready.reason, "PortNotUp");
    assert!(ready.message.contains("eth1"), "{}", ready.message);
    assert!(
        port.message.unwrap_or_default().contains("link is"),
        "the port says why"
    );
    let out = gw.lab.exec(&switch, &["ip", "link", "set", "trunk", "up"]);
    assert!(out.status.success());
    eventually(
        "the port reported Up again",
        Duration::from_secs(30),
        router_state("True", "Up"),
    )
    .await
    .expect("link up reported");
    gw.ping_eventually("bms1", "192.168.1.20").await;
}

/// A declared MTU the fast path cannot carry (jumbo frames beyond its
/// buffers) is refused in the router's status, with what would be valid;
/// declaring one it carries makes the node Ready again.
#[tokio::test]
async fn a_jumbo_mtu_the_fast_path_cannot_carry_is_refused_in_status() {
    let gw = ready_gateway("auto").await;
    let routers: Api<PhysicalRouter> = Api::all(gw.client.clone());
    let set_mtu = |mtu: u32| {
        let router = serde_json::json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "PhysicalRouter",
            "metadata": {"name": gw.node},
            "spec": {"physicalInterfaces": [{"name": "eth1", "mtu": mtu}]}});
        let routers = routers.clone();
        let name = gw.node.clone();
        async move {
            routers
                .patch(
                    &name,
                    &common::apply_params(),
                    &kube::api::Patch::Apply(&router),
                )
                .await
                .expect("router");
        }
    };
    let ready = |status: &'static str, reason: &'static str| {
        let routers = routers.clone();
        let name = gw.node.clone();
        async move {
            trunkline_test_support::eventually(
                &format!("router Ready={status} ({reason})"),
                READY_TIMEOUT,
                || async {
                    let router = routers.get(&name).await.map_err(|e| e.to_string())?;
                    let generation = router.metadata.generation;
                    let status_now = router.status.unwrap_or_default();
                    match status_now.conditions.iter().find(|c| c.type_ == "Ready") {
                        Some(c)
                            if c.status == status
                                && c.reason == reason
                                && status_now.observed_generation == generation =>
                        {
                            Ok(c.message.clone())
                        }
                        other => Err(format!("{other:?}")),
                    }
                },
            )
            .await
            .expect("router condition")
        }
    };
    set_mtu(9000).await;
    let message = ready("False", "MtuUnsupported").await;
    assert!(
        message.contains("declared MTU 9000 exceeds the largest the fast path carries"),
        "{message}"
    );
    set_mtu(1500).await;
    ready("True", "Ok").await;
    gw.ping_eventually("bms1", "192.168.1.20").await;
}

/// One instance floods the gateway with ARP requests; its answers are
/// limited to its budget (the drops counted as `punt_rate_limited`), and
/// another instance's questions to the gateway are still all answered.
#[tokio::test]
async fn an_instance_flooding_arp_is_limited_and_the_others_keep_their_answers() {
    let gw = ready_gateway("af-xdp").await;
    gw.ping_eventually("bms1", "192.168.1.20").await;
    let before = gw.drops("punt_rate_limited");
    // ARP requests for the gateway from bms2 for 6 s, paced at about
    // 20,000/s: ten times the default budget of 2,000/s, yet below what the
    // receive ring takes on this shared machine (an unpaced flood overruns
    // the ring itself, before any per-VMI budget can choose, and is counted
    // as `rx_kernel_dropped`: a limit of the single queue, in the README).
    let flood = r#"
import socket, struct
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
mac = bytes.fromhex(open("/sys/class/net/eth0/address").read().strip().replace(":", ""))
arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, socket.inet_aton("192.168.1.20"),
                  b"\0" * 6, socket.inet_aton("192.168.1.1"))
frame = b"\xff" * 6 + mac + b"\x08\x06" + arp
import time
end = time.monotonic() + 6
sent = 0
start = time.monotonic()
while time.monotonic() < end:
    for _ in range(100):
        s.send(frame)
    sent += 100
    ahead = sent / 20000 - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
"#;
    let namespace = gw.lab.namespace("bms2");
    let mut flooder = std::process::Command::new("ip")
        .args(["netns", "exec", &namespace, "python3", "-c", flood])
        .spawn()
        .expect("python3 runs");
    // Once the flood bites, bms1 asks the gateway 50 times (fresh ARP each
    // time: no cached neighbour) and pings it: every question is answered.
    eventually(
        "the flood is being limited",
        Duration::from_secs(30),
        || async {
            let limited = gw.drops("punt_rate_limited") - before;
            if limited > 0.0 {
                Ok(())
            } else {
                Err("no punt_rate_limited yet")
            }
        },
    )
    .await
    .expect("flood limited");
    let asks = gw.lab.sh(
        "bms1",
        "ok=0; for i in $(seq 50); do ip neigh flush dev eth0; ping -c 1 -W 1 192.168.1.1 >/dev/null && ok=$((ok+1)); done; echo $ok",
    );
    assert!(
        flooder.try_wait().expect("flooder").is_none(),
        "the questions were asked while the flood ran"
    );
    let status = flooder.wait().expect("flooder ends");
    assert!(status.success(), "the flood ran");
    let answered = String::from_utf8_lossy(&asks.stdout).trim().to_owned();
    assert_eq!(answered, "50", "bms1's questions answered during the flood");
    let limited = gw.drops("punt_rate_limited") - before;
    assert!(
        limited > 1_000.0,
        "the flood was limited: {limited} punt_rate_limited\n{}",
        gw.agent().metrics()
    );
}
