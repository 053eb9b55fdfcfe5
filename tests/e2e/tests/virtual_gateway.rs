//! The virtual gateway (the seeds' simple gateway) end to end: a
//! VirtualGateway gives net1 public access through a host interface on the
//! gateway node, both ways, live changes, and restarts that adopt what is
//! still declared, remove what is not and leave everything else alone.
//!
//! ```text
//!  bms1 192.168.1.10 (VLAN 100) -- trunk -- [fast path: net1 VRF, 0/0 -> vgw]
//!                                                 | tap vgw (host side: 192.168.1.0/24 dev vgw)
//!                                            gateway node routing -- eth0 10.1.1.1
//!                                                                        |  fabric bridge
//!                                            public host 10.1.1.253 (route 192.168.1.0/24 via 10.1.1.1)
//! ```

mod common;

use std::time::Duration;

use common::{BMS1, BMS2, Gateway, OTHER, single_node_lab};
use kube::api::{Api, DeleteParams};
use trunkline_api::VirtualGateway;
use trunkline_test_support::{FabricHostSpec, eventually, unique_name};

/// The public host on the fabric: it reaches the virtual gateways' subnets
/// through the gateway node's underlay address.
fn public_host() -> FabricHostSpec {
    FabricHostSpec::new("pub")
        .ip("10.1.1.253/24")
        .route("192.168.1.0/24", "10.1.1.1")
        .route("10.50.0.0/24", "10.1.1.1")
}

async fn gateway_with_public() -> Gateway<'static> {
    let instances = [BMS1, BMS2, OTHER];
    let gw =
        Gateway::start_with_lab(single_node_lab(&instances, Some(public_host())), "auto").await;
    gw.apply_objects(&instances).await;
    for vlan in [100, 200] {
        gw.wait_li(&gw.li_name(vlan), "True").await;
    }
    gw.ping_eventually("bms1", "192.168.1.20").await;
    gw
}

async fn reachable(gw: &Gateway<'_>, from: &str, to: &str) {
    eventually(
        &format!("{from} reaches {to}"),
        Duration::from_secs(30),
        || async {
            let (ok, out) = gw.lab.ping(from, to, 2);
            if ok { Ok(()) } else { Err(out) }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\nagent log: {}", gw.agent().log().display()));
}

async fn unreachable(gw: &Gateway<'_>, from: &str, to: &str) {
    eventually(
        &format!("{from} no longer reaches {to}"),
        Duration::from_secs(30),
        || async {
            let (ok, out) = gw.lab.ping(from, to, 2);
            if ok { Err(out) } else { Ok(()) }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn remote_instance_and_public_host_reach_each_other_through_the_virtual_gateway() {
    let gw = gateway_with_public().await;
    let (ok, _) = gw.lab.ping("bms1", "10.1.1.253", 2);
    assert!(!ok, "no public access before a virtual gateway exists");

    let name = unique_name("net1-public");
    gw.apply_vgw(&name, "vgw", "net1", &["192.168.1.0/24"], &[])
        .await;
    gw.wait_vgw(&name, "True").await;
    // Remote instance -> VRF default route -> vgw -> host routing -> public host.
    let (ok, out) = gw.lab.ping("bms1", "10.1.1.253", 3);
    assert!(ok, "bms1 -> public host: {out}");
    eprintln!("bms1 -> public host through the virtual gateway:\n{out}");
    // Public host -> host routing -> vgw -> VRF -> remote instance.
    let (ok, out) = gw.lab.ping("pub", "192.168.1.20", 3);
    assert!(ok, "public host -> bms2: {out}");
    let received = gw
        .lab
        .tcp("bms1", "pub", "10.1.1.253", 6001, "to-the-public")
        .expect("TCP out");
    assert_eq!(received, "to-the-public");
    let received = gw
        .lab
        .tcp("pub", "bms2", "192.168.1.20", 6002, "from-the-public")
        .expect("TCP in");
    assert_eq!(received, "from-the-public");
    // The host side is what the seed describes.
    let routes = gw.gw_ip(&["route", "show", "dev", "vgw"]);
    assert!(
        routes.contains("192.168.1.0/24") && routes.contains("proto 200"),
        "{routes}"
    );
    let forwarding = gw.lab.exec("gw", &["cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(String::from_utf8_lossy(&forwarding.stdout).trim(), "1");
    // net2 has no virtual gateway: its instance stays private.
    let (ok, _) = gw.lab.ping("other", "10.1.1.253", 2);
    assert!(
        !ok,
        "net2 reached the public network without a virtual gateway"
    );
}

#[tokio::test]
async fn creating_changing_and_deleting_a_virtual_gateway_take_effect_live() {
    let gw = gateway_with_public().await;
    let name = unique_name("net1-public");
    let pid = gw.agent().pid();
    gw.apply_vgw(&name, "vgw", "net1", &["192.168.1.0/24"], &[])
        .await;
    gw.wait_vgw(&name, "True").await;
    reachable(&gw, "bms1", "10.1.1.253").await;

    // Routes: only the fabric subnet goes out; still reachable.
    gw.apply_vgw(&name, "vgw", "net1", &["192.168.1.0/24"], &["10.1.1.0/24"])
        .await;
    gw.wait_vgw(&name, "True").await;
    reachable(&gw, "bms1", "10.1.1.253").await;
    // Routes elsewhere: the public host is no longer routed in the VRF.
    gw.apply_vgw(
        &name,
        "vgw",
        "net1",
        &["192.168.1.0/24"],
        &["203.0.113.0/24"],
    )
    .await;
    unreachable(&gw, "bms1", "10.1.1.253").await;
    // Subnets: the host routes follow.
    gw.apply_vgw(
        &name,
        "vgw",
        "net1",
        &["192.168.1.0/25", "192.168.1.128/25"],
        &[],
    )
    .await;
    gw.wait_vgw(&name, "True").await;
    eventually(
        "host routes follow the subnets",
        Duration::from_secs(30),
        || async {
            let routes = gw.gw_ip(&["route", "show", "dev", "vgw", "proto", "200"]);
            if routes.contains("192.168.1.0/25")
                && routes.contains("192.168.1.128/25")
                && !routes.contains("192.168.1.0/24")
            {
                Ok(())
            } else {
                Err(routes)
            }
        },
    )
    .await
    .expect("host routes");
    reachable(&gw, "bms1", "10.1.1.253").await;

    // Delete: interface and routes go, traffic stops.
    Api::<VirtualGateway>::all(gw.client.clone())
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the tap is removed", Duration::from_secs(30), || async {
        match gw.ifindex("vgw") {
            None => Ok(()),
            Some(i) => Err(format!("vgw still there (ifindex {i})")),
        }
    })
    .await
    .expect("tap removed");
    unreachable(&gw, "bms1", "10.1.1.253").await;
    assert_eq!(gw.agent().pid(), pid, "nothing was restarted");
}

#[tokio::test]
async fn a_restarted_agent_adopts_declared_virtual_gateways_removes_the_others_and_leaves_foreign_state_alone()
 {
    let mut gw = gateway_with_public().await;
    let kept = unique_name("kept");
    let dropped = unique_name("dropped");
    gw.apply_vgw(&kept, "vgw1", "net1", &["192.168.1.0/24"], &[])
        .await;
    gw.apply_vgw(&dropped, "vgw2", "net2", &["10.50.0.0/24"], &[])
        .await;
    gw.wait_vgw(&kept, "True").await;
    gw.wait_vgw(&dropped, "True").await;
    reachable(&gw, "bms1", "10.1.1.253").await;
    let vgw1_index = gw.ifindex("vgw1").expect("vgw1");
    // Host state that is not ours: a tap and a route of someone else.
    for cmd in [
        "ip tuntap add dev vgw9 mode tap",
        "ip link set vgw9 up",
        "ip route add 10.99.0.0/24 dev vgw9",
    ] {
        let out = gw.lab.sh("gw", cmd);
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // From here to the end, every Ready condition `kept` is given is
    // recorded: across the restart, a gateway whose traffic never stopped
    // must never read anything but Ready.
    let (watch, readiness) = record_ready(&gw, &kept);

    // The agent crashes; meanwhile one virtual gateway is deleted.
    gw.agent.as_mut().expect("agent").kill();
    Api::<VirtualGateway>::all(gw.client.clone())
        .delete(&dropped, &DeleteParams::default())
        .await
        .expect("delete");
    assert!(
        gw.ifindex("vgw1").is_some() && gw.ifindex("vgw2").is_some(),
        "taps outlive the agent"
    );
    assert!(
        gw.gw_ip(&["route", "show", "dev", "vgw1"])
            .contains("192.168.1.0/24"),
        "and so do their routes"
    );

    gw.start_agent();
    gw.agent().wait_ready(common::READY_TIMEOUT).await;
    eventually(
        "vgw2, no longer declared, is removed",
        Duration::from_secs(30),
        || async {
            match gw.ifindex("vgw2") {
                None => Ok(()),
                Some(_) => Err("vgw2 still there"),
            }
        },
    )
    .await
    .expect("undeclared tap removed");
    assert_eq!(
        gw.ifindex("vgw1"),
        Some(vgw1_index),
        "vgw1 adopted, not recreated"
    );
    reachable(&gw, "bms1", "10.1.1.253").await;
    assert!(gw.ifindex("vgw9").is_some(), "a foreign tap is left alone");
    assert!(
        gw.gw_ip(&["route", "show", "dev", "vgw9"])
            .contains("10.99.0.0/24"),
        "with its route"
    );

    // A virtual gateway naming the foreign interface is refused, not taken.
    let before = gw.router_status().await.programmed_generation.unwrap_or(0);
    let squatter = unique_name("squatter");
    gw.apply_vgw(&squatter, "vgw9", "net2", &["10.60.0.0/24"], &[])
        .await;
    let vgw = gw.wait_vgw(&squatter, "False").await;
    let ready = vgw
        .status
        .expect("status")
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert!(ready.reason != "Ok", "{ready:?}");
    // "Not taken" is checked once the node has provably set up the host side
    // of a plan holding the squatter: a later virtual gateway is reported
    // programmed only after its tap is configured, in a host pass that also
    // met the squatter's interface (and left it alone).
    // Its own route: a second default route in net2 would be refused by the
    // node (the squatter's is older), and the marker never programmed.
    let marker = unique_name("marker");
    gw.apply_vgw(
        &marker,
        "vgw3",
        "net2",
        &["10.70.0.0/24"],
        &["198.51.100.0/24"],
    )
    .await;
    gw.wait_vgw(&marker, "True").await;
    assert!(gw.ifindex("vgw3").is_some(), "the marker's tap exists");
    let after = gw.router_status().await.programmed_generation.unwrap_or(0);
    assert!(
        after > before,
        "the node's tables version advanced ({before} -> {after})"
    );
    let alias = gw.gw_ip(&["-d", "link", "show", "dev", "vgw9"]);
    assert!(
        !alias.contains("trunkline:vgw"),
        "the foreign tap was not marked as ours: {alias}"
    );
    assert!(
        gw.gw_ip(&["route", "show", "dev", "vgw9"])
            .contains("10.99.0.0/24")
    );
    // The operator has handled the restarted agent's reports up to the
    // marker's: `kept` was Ready in every state it went through.
    watch.abort();
    let seen = readiness.lock().unwrap().clone();
    assert!(
        !seen.is_empty() && seen.iter().all(|(status, _)| status == "True"),
        "{kept} read other than Ready across the agent's restart: {seen:?}"
    );
}

/// Each (status, reason) of a Ready condition in turn.
type ReadyHistory = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// Watches the virtual gateway `name` and records each change of its Ready
/// condition, until the returned task is aborted.
fn record_ready(gw: &Gateway<'_>, name: &str) -> (tokio::task::JoinHandle<()>, ReadyHistory) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let seen = ReadyHistory::default();
    let api: Api<VirtualGateway> = Api::all(gw.client.clone());
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let into = seen.clone();
    let task = tokio::spawn(async move {
        let mut objects = std::pin::pin!(watcher(api, config).applied_objects());
        while let Some(event) = objects.next().await {
            let Ok(vgw) = event else { continue };
            let ready = vgw
                .status
                .iter()
                .flat_map(|s| &s.conditions)
                .find(|c| c.type_ == "Ready")
                .map(|c| (c.status.clone(), c.reason.clone()));
            let mut seen = into.lock().unwrap();
            if let Some(ready) = ready.filter(|r| seen.last() != Some(r)) {
                seen.push(ready);
            }
        }
    });
    (task, seen)
}
