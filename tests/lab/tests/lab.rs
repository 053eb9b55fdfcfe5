//! The lab on its own, without trunkline: the fabric carries the nodes'
//! own traffic in both families, instances get what their spec says and the
//! switches' taggers keep VLANs apart with tags in the frame bytes, kernel
//! VXLAN VTEPs talk over the fabric, a running lab grows and shrinks,
//! captures decode VXLAN and MPLS over UDP, and nothing is left behind,
//! also after a panic or a dead owner. Needs root (CI runs as root).

use std::time::Duration;

use trunkline_lab::{
    DcGatewayRoute, DcGatewaySpec, FabricHostSpec, InstanceSpec, Lab, LabError, LabSpec, Limit,
    MPLS_OVER_UDP, NodeSpec, SpecError, StpSpec, SwitchSpec, TrunkSpec, VtepSpec, bridged_label,
    output_text, poll_until, state_root,
};

fn two_nodes() -> LabSpec {
    LabSpec::new()
        .node(
            NodeSpec::new("gw1")
                .underlay("10.0.0.1/24")
                .underlay("fd00:f::1/64")
                .trunk("eth1"),
        )
        .node(
            NodeSpec::new("gw2")
                .underlay("10.0.0.2/24")
                .underlay("fd00:f::2/64")
                .trunk("eth1"),
        )
}

fn stdout(lab: &Lab, name: &str, args: &[&str]) -> String {
    let out = lab.exec(name, args);
    assert!(
        out.status.success(),
        "{args:?} in {name}: {}",
        output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip -j addr show dev eth0` in `name`: its global addresses as `a/len`.
fn addresses(lab: &Lab, name: &str) -> Vec<String> {
    let json = stdout(lab, name, &["ip", "-j", "addr", "show", "dev", "eth0"]);
    let value: serde_json::Value = serde_json::from_str(&json).expect("ip -j");
    value[0]["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .filter(|a| a["scope"] == "global")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

#[test]
fn two_nodes_reach_each_other_over_the_fabric_in_both_families() {
    let lab = Lab::up(two_nodes()).expect("lab");
    for to in ["10.0.0.2", "fd00:f::2"] {
        let (ok, out) = lab.ping("gw1", to, 2);
        assert!(ok, "gw1 -> {to}: {out}");
    }
    for (to, port) in [("10.0.0.1", 7001), ("fd00:f::1", 7002)] {
        let received = lab.tcp("gw2", "gw1", to, port, "underlay").expect("TCP");
        assert_eq!(received, "underlay", "TCP to {to}");
    }
    // Checksums are complete on the wire (offload off on the host ports).
    let features = stdout(&lab, "gw1", &["ethtool", "-k", "eth0"]);
    assert!(features.contains("tx-checksumming: off"), "{features}");
    assert!(lab.netns_path("gw1").exists());
    assert_eq!(lab.namespace("fab"), format!("{}-fab", lab.prefix()));
}

#[test]
fn instances_get_their_addresses_routes_and_vlans_with_tags_in_the_bytes() {
    let spec = two_nodes()
        .instance(
            InstanceSpec::new("bms1", "gw1", "eth1")
                .vlan(100)
                .ip("192.168.1.10/24")
                .ip("fd00:1::10/64")
                .gateway("192.168.1.1")
                .gateway("fd00:1::1")
                .mac("02:00:00:00:01:01"),
        )
        .instance(
            InstanceSpec::new("bms2", "gw1", "eth1")
                .vlan(100)
                .ip("fd00:1::20/64")
                .gateway("fd00:1::1"),
        )
        .instance(InstanceSpec::new("dhcp1", "gw1", "eth1").vlan(200));
    let lab = Lab::up(spec).expect("lab");

    assert_eq!(
        addresses(&lab, "bms1"),
        ["192.168.1.10/24", "fd00:1::10/64"]
    );
    let link = stdout(&lab, "bms1", &["ip", "link", "show", "eth0"]);
    assert!(link.contains("02:00:00:00:01:01"), "{link}");
    let v4 = stdout(&lab, "bms1", &["ip", "-4", "route", "show", "default"]);
    assert!(v4.contains("via 192.168.1.1"), "{v4}");
    let v6 = stdout(&lab, "bms1", &["ip", "-6", "route", "show", "default"]);
    assert!(v6.contains("via fd00:1::1"), "{v6}");
    assert_eq!(addresses(&lab, "bms2"), ["fd00:1::20/64"]);
    // A DHCP client-to-be: no address, no route.
    assert!(addresses(&lab, "dhcp1").is_empty());
    for family in ["-4", "-6"] {
        let routes = stdout(&lab, "dhcp1", &["ip", family, "route", "show", "default"]);
        assert!(routes.trim().is_empty(), "{family}: {routes}");
    }

    // Same VLAN: the switch tags on the way in and untags on the way out.
    let (ok, out) = lab.ping("bms1", "fd00:1::20", 2);
    assert!(ok, "bms1 -> bms2 on VLAN 100: {out}");
    // What leaves through the trunk (a broadcast ARP for the gateway) carries
    // the tag in the frame bytes, as the node's fast path reads them.
    let capture = lab
        .capture(
            "gw1",
            "eth1",
            "vlan and ether src 02:00:00:00:01:01",
            Limit::packets(1),
        )
        .expect("capture");
    let _ = lab.ping("bms1", "192.168.1.1", 1);
    let packets = capture
        .finish()
        .expect("pcap")
        .fields(&["vlan.id", "eth.src"], &[])
        .expect("decode");
    assert_eq!(packets.len(), 1);
    assert_eq!(packets[0].first("vlan.id"), Some("100"), "{packets:?}");

    // Another VLAN: the taggers keep it apart, even on one subnet.
    let out = lab.sh("dhcp1", "ip addr add fd00:1::30/64 dev eth0 nodad");
    assert!(out.status.success(), "{}", output_text(&out));
    let (ok, out) = lab.ping("bms1", "fd00:1::30", 2);
    assert!(!ok, "VLAN 100 reached VLAN 200: {out}");
}

#[test]
fn a_kernel_vxlan_vtep_pair_pings_over_the_fabric() {
    let spec = two_nodes()
        .vtep(
            VtepSpec::new("vtep1", "10.0.0.101/24", 5001)
                .remote("10.0.0.102")
                .ip("192.168.50.1/24")
                .mac("02:00:00:00:50:01"),
        )
        .vtep(
            VtepSpec::new("vtep2", "10.0.0.102/24", 5001)
                .fdb("02:00:00:00:50:01", "10.0.0.101")
                .remote("10.0.0.101")
                .ip("192.168.50.2/24"),
        )
        .vtep(
            VtepSpec::new("vtep6a", "fd00:f::101/64", 77)
                .remote("fd00:f::102")
                .ip("192.168.60.1/24"),
        )
        .vtep(
            VtepSpec::new("vtep6b", "fd00:f::102/64", 77)
                .remote("fd00:f::101")
                .ip("192.168.60.2/24"),
        );
    let lab = Lab::up(spec).expect("lab");
    let (ok, out) = lab.ping("vtep1", "192.168.50.2", 3);
    assert!(ok, "over an IPv4 underlay: {out}");
    let (ok, out) = lab.ping("vtep6a", "192.168.60.2", 3);
    assert!(ok, "over an IPv6 underlay: {out}");
    let details = stdout(&lab, "vtep1", &["ip", "-d", "link", "show", "vxlan0"]);
    assert!(
        details.contains("vxlan id 5001") && details.contains("dstport 4789"),
        "{details}"
    );
    assert!(details.contains("mtu 1450"), "fabric MTU - 50: {details}");
    let fdb = stdout(&lab, "vtep2", &["bridge", "fdb", "show", "dev", "vxlan0"]);
    assert!(fdb.contains("02:00:00:00:50:01 dst 10.0.0.101"), "{fdb}");
}

#[test]
fn a_capture_decodes_the_vni_of_a_kernel_vtep_packet() {
    let spec = LabSpec::new()
        .vtep(
            VtepSpec::new("vtep1", "10.0.0.101/24", 4242)
                .remote("10.0.0.102")
                .ip("192.168.50.1/24"),
        )
        .vtep(
            VtepSpec::new("vtep2", "10.0.0.102/24", 4242)
                .remote("10.0.0.101")
                .ip("192.168.50.2/24"),
        );
    let lab = Lab::up(spec).expect("lab");
    let capture = lab
        .capture(
            lab.fabric(),
            "br0",
            // Inner IPv4 (EtherType at UDP offset 8 + 8 + 12) carrying ICMP
            // (protocol at 8 + 8 + 14 + 9): the echo and its reply only.
            "udp port 4789 and udp[28:2] = 0x0800 and udp[39] = 1",
            Limit::packets(2).within(Duration::from_secs(10)),
        )
        .expect("capture");
    let (ok, out) = lab.ping("vtep1", "192.168.50.2", 1);
    assert!(ok, "{out}");
    let pcap = capture.finish().expect("pcap");
    let packets = pcap
        .fields(
            &["vxlan.vni", "ip.src", "ip.dst", "udp.dstport", "icmp.type"],
            &[],
        )
        .expect("decode");
    let summary = pcap.summary(&[]).unwrap_or_default();
    assert_eq!(packets.len(), 2, "{summary}");
    let request = &packets[0];
    assert_eq!(request.first("vxlan.vni"), Some("4242"), "{summary}");
    assert_eq!(request.first("udp.dstport"), Some("4789"));
    assert_eq!(request.first("ip.src"), Some("10.0.0.101"), "outer source");
    assert_eq!(
        request.first("ip.dst"),
        Some("10.0.0.102"),
        "outer destination"
    );
    assert_eq!(request.last("ip.src"), Some("192.168.50.1"), "inner source");
    assert_eq!(request.last("icmp.type"), Some("8"));
    assert_eq!(packets[1].last("icmp.type"), Some("0"));
}

/// The decode-as rules the capture helper documents read MPLS over UDP:
/// a routed label (inner IPv4) and a bridged label (inner Ethernet whose
/// destination MAC starts with 0, which tshark's guess would misread),
/// written by scapy, a decoder independent of tshark.
#[test]
fn a_capture_decodes_mpls_over_udp_with_the_documented_rules() {
    let lab = Lab::up(two_nodes()).expect("lab");
    // Resolve gw2's MAC first, so scapy's frames go straight to it.
    let (ok, out) = lab.ping("gw1", "10.0.0.2", 1);
    assert!(ok, "{out}");
    let capture = lab
        .capture(
            lab.fabric(),
            "br0",
            "udp port 6635",
            // scapy sends: its start can take seconds on a busy machine.
            Limit::packets(2).within(Duration::from_secs(60)),
        )
        .expect("capture");
    let script = r#"
import logging; logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import Ether, IP, UDP, ICMP, ARP, sendp, getmacbyip
from scapy.contrib.mpls import MPLS
outer = Ether(dst=getmacbyip("10.0.0.2")) / IP(src="10.0.0.1", dst="10.0.0.2")
routed = outer / UDP(sport=49152, dport=6635) / MPLS(label=16, s=1, ttl=64) / IP(src="192.168.1.10", dst="192.168.1.20") / ICMP()
bridged = outer / UDP(sport=49153, dport=6635) / MPLS(label=17, s=1, ttl=64) / Ether(src="02:00:00:00:01:01", dst="02:00:00:00:02:01") / IP(src="192.168.1.10", dst="192.168.1.20") / ICMP()
sendp([routed, bridged], iface="eth0", verbose=False)
"#;
    let out = lab.exec("gw1", &["/usr/bin/python3", "-c", script]);
    assert!(out.status.success(), "scapy: {}", output_text(&out));
    let pcap = capture.finish().expect("pcap");
    let bridged = bridged_label(17);
    let rules = [MPLS_OVER_UDP, bridged.as_str()];
    let packets = pcap
        .fields(&["mpls.label", "mpls.bottom", "eth.dst", "ip.src"], &rules)
        .expect("decode");
    let summary = pcap.summary(&rules).unwrap_or_default();
    assert_eq!(packets.len(), 2, "{summary}");
    assert_eq!(packets[0].first("mpls.label"), Some("16"), "{summary}");
    assert_eq!(
        packets[0].last("ip.src"),
        Some("192.168.1.10"),
        "routed payload: {summary}"
    );
    assert_eq!(packets[1].first("mpls.label"), Some("17"));
    assert_eq!(
        packets[1].last("eth.dst"),
        Some("02:00:00:00:02:01"),
        "bridged payload: {summary}"
    );
    assert_eq!(packets[1].last("ip.src"), Some("192.168.1.10"));
}

/// The DC gateway decapsulates MPLS over UDP from a node and routes the
/// inner packet to the host behind it; the host's answer goes back as MPLS
/// over UDP to the node with the route's label. scapy plays the node.
#[test]
fn a_dc_gateway_speaks_mpls_over_udp_to_the_host_behind_it() {
    let mut lab = Lab::up(
        two_nodes()
            .dc_gateway(DcGatewaySpec::new("dcgw", "10.0.0.200/24").host("ext", "203.0.113.10/24")),
    )
    .expect("lab");
    lab.add_dc_gateway_route(
        "dcgw",
        DcGatewayRoute {
            to: "192.168.1.10/32".parse().unwrap(),
            node: "10.0.0.1".parse().unwrap(),
            label: 77,
        },
    )
    .expect("route");
    let (ok, out) = lab.ping("gw1", "10.0.0.200", 1);
    assert!(ok, "{out}");
    let inbound = lab
        .capture(
            "ext",
            "eth0",
            "icmp",
            Limit::packets(2).within(Duration::from_secs(60)),
        )
        .expect("capture ext");
    let outbound = lab
        .capture(
            lab.fabric(),
            "br0",
            "udp port 6635 and dst host 10.0.0.1",
            Limit::packets(1),
        )
        .expect("capture fabric");
    let script = r#"
import logging; logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import Ether, IP, UDP, ICMP, sendp, getmacbyip
from scapy.contrib.mpls import MPLS
frame = Ether(dst=getmacbyip("10.0.0.200")) / IP(src="10.0.0.1", dst="10.0.0.200") / UDP(sport=49152, dport=6635) / MPLS(label=5000, s=1, ttl=64) / IP(src="192.168.1.10", dst="203.0.113.10") / ICMP(id=7, seq=1)
sendp(frame, iface="eth0", verbose=False)
"#;
    let out = lab.exec("gw1", &["/usr/bin/python3", "-c", script]);
    assert!(out.status.success(), "scapy: {}", output_text(&out));
    let pcap = inbound.finish().expect("ext pcap");
    let packets = pcap
        .fields(&["ip.src", "ip.dst", "icmp.type"], &[])
        .expect("decode");
    assert_eq!(
        packets[0].first("ip.src"),
        Some("192.168.1.10"),
        "{}",
        pcap.summary(&[]).unwrap_or_default()
    );
    assert_eq!(packets[0].first("icmp.type"), Some("8"));
    // The host answered; the gateway sent the reply to the node, labelled.
    assert_eq!(packets[1].first("icmp.type"), Some("0"));
    let pcap = outbound.finish().expect("fabric pcap");
    let packets = pcap
        .fields(
            &["ip.src", "ip.dst", "mpls.label", "mpls.bottom", "icmp.type"],
            &[MPLS_OVER_UDP],
        )
        .expect("decode");
    let summary = pcap.summary(&[MPLS_OVER_UDP]).unwrap_or_default();
    assert_eq!(packets[0].first("ip.src"), Some("10.0.0.200"), "{summary}");
    assert_eq!(packets[0].first("mpls.label"), Some("77"), "{summary}");
    assert_eq!(packets[0].last("ip.src"), Some("203.0.113.10"), "{summary}");
    assert_eq!(packets[0].last("ip.dst"), Some("192.168.1.10"), "{summary}");
    assert_eq!(packets[0].first("icmp.type"), Some("0"), "{summary}");
}

#[test]
fn a_running_lab_grows_and_shrinks() {
    let mut lab = Lab::up(
        LabSpec::new()
            .node(NodeSpec::new("gw1").underlay("10.0.0.1/24").trunk("eth1"))
            .host(
                FabricHostSpec::new("pub")
                    .ip("10.0.0.253/24")
                    .route("192.168.9.0/24", "10.0.0.1"),
            ),
    )
    .expect("lab");
    lab.add_node(NodeSpec::new("gw2").underlay("10.0.0.2/24").trunk("eth1"))
        .expect("add a node");
    let (ok, out) = lab.ping("gw2", "10.0.0.1", 2);
    assert!(ok, "the new node is on the fabric: {out}");

    lab.add_trunk("gw1", TrunkSpec::new("eth2").mtu(9000))
        .expect("add a port");
    let link = stdout(&lab, "gw1", &["ip", "link", "show", "eth2"]);
    assert!(link.contains("mtu 9000"), "{link}");
    lab.add_instance(
        InstanceSpec::new("bms1", "gw1", "eth2")
            .ip("192.168.9.10/24")
            .gateway("192.168.9.1"),
    )
    .expect("add an instance");
    lab.add_instance(InstanceSpec::new("bms2", "gw1", "eth2").ip("192.168.9.20/24"))
        .expect("add another");
    let (ok, out) = lab.ping("bms1", "192.168.9.20", 2);
    assert!(ok, "untagged on one switch: {out}");

    // A change the spec refuses changes nothing.
    let err = lab
        .add_instance(InstanceSpec::new("bms1", "gw2", "eth1"))
        .unwrap_err();
    assert!(
        matches!(err, LabError::Spec(SpecError::Duplicate { .. })),
        "{err}"
    );
    let err = lab
        .add_instance(InstanceSpec::new("bms3", "gw2", "eth9"))
        .unwrap_err();
    assert!(err.to_string().contains("no trunk port"), "{err}");

    lab.remove_instance("bms2").expect("remove");
    assert!(!lab.netns_path("bms2").exists());
    let (ok, _) = lab.ping("bms1", "192.168.9.20", 1);
    assert!(!ok, "bms2 is gone");
    assert_eq!(lab.spec().instances.len(), 1);

    // The fabric host's route goes through gw1's underlay address.
    let out = lab.sh("gw1", "ip addr add 192.168.9.1/32 dev lo");
    assert!(out.status.success());
    let (ok, out) = lab.ping("pub", "192.168.9.1", 2);
    assert!(ok, "pub -> 192.168.9.1 via gw1: {out}");

    // The saved state follows the changes (the command line reads it).
    let reopened = Lab::open(lab.prefix()).expect("open");
    assert_eq!(reopened.spec(), lab.spec());
}

#[test]
fn the_command_line_builds_grows_and_removes_a_lab() {
    let bin = env!("CARGO_BIN_EXE_trunkline-lab");
    let prefix = format!("c{}", std::process::id());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .output()
            .expect("trunkline-lab runs");
        assert!(out.status.success(), "{args:?}: {}", output_text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&[
        "up",
        "--prefix",
        &prefix,
        "--node",
        "name=gw,underlay=10.1.1.1/24,trunk=eth1",
        "--instance",
        "name=bms1,node=gw,port=eth1,vlan=100,ip=192.168.1.10/24,ip=fd00:1::10/64,mac=02:00:00:00:01:01,gw=192.168.1.1,gw6=fd00:1::1",
        "--host",
        "name=pub,ip=10.1.1.253/24,route=192.168.1.0/24@10.1.1.1",
    ]);
    let cleanup = Cleanup(prefix.clone());
    let out = run(&[
        "exec", "--prefix", &prefix, "bms1", "ip", "-6", "addr", "show", "dev", "eth0",
    ]);
    assert!(out.contains("fd00:1::10/64"), "{out}");
    run(&[
        "exec", "--prefix", &prefix, "pub", "ping", "-c", "1", "-W", "1", "10.1.1.1",
    ]);
    run(&["add-port", "--prefix", &prefix, "gw", "eth2"]);
    run(&[
        "add-instance",
        "--prefix",
        &prefix,
        "name=bms2,node=gw,port=eth2",
    ]);
    let shown = run(&["show", "--prefix", &prefix]);
    assert!(
        shown.contains("\"bms2\"") && shown.contains("\"eth2\""),
        "{shown}"
    );
    run(&["remove-instance", "--prefix", &prefix, "bms2"]);
    run(&["down", "--prefix", &prefix]);
    assert!(
        !std::path::Path::new(&format!("/run/netns/{prefix}-gw")).exists(),
        "down removes the namespaces"
    );
    drop(cleanup);
}

/// Runs `trunkline-lab down` for a lab of the command line, also when the
/// test fails half-way.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Lab::down(&self.0);
    }
}

#[test]
fn a_lab_is_removed_when_its_owner_panics() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let lab = Lab::up(two_nodes()).expect("lab");
        tx.send((lab.prefix().to_owned(), lab.state_dir())).unwrap();
        panic!("a failing test");
    })
    .join();
    assert!(result.is_err());
    let (prefix, state) = rx.recv().unwrap();
    let left: Vec<_> = std::fs::read_dir("/run/netns")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{prefix}-"))
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!state.exists());
}

#[test]
fn a_lab_whose_owner_died_is_swept_by_the_next_one() {
    // A dead owner: a child that has exited (and been reaped).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    let prefix = format!("d{}", std::process::id());
    let ns = format!("{prefix}-fab");
    let out = std::process::Command::new("ip")
        .args(["netns", "add", &ns])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let dir = state_root().join(&prefix);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("lab.json"),
        format!(
            r#"{{"prefix": "{prefix}", "owner": {{"pid": {}, "start": 1}}, "spec": {{}}}}"#,
            child.id()
        ),
    )
    .unwrap();
    let _lab = Lab::up(LabSpec::new()).expect("lab");
    assert!(
        !std::path::Path::new("/run/netns").join(&ns).exists(),
        "the abandoned lab's namespace was removed"
    );
    assert!(!dir.exists());
}

/// Two nodes' trunks on one shared switch running the kernel's 802.1D with
/// the fastest legal timers; the nodes close a loop between their trunks
/// (a bridge in each and a link between them, no spanning tree of their
/// own: they pass BPDUs on, as the gateways' BPDU network does): the switch
/// blocks one of its two trunk ports, and instances behind it still talk.
#[test]
fn a_shared_switch_with_stp_blocks_the_loop_through_two_nodes() {
    let spec = LabSpec::new()
        .switch(SwitchSpec::new("rack").stp(StpSpec::fastest()))
        .node(NodeSpec::new("gw1").trunk_spec(TrunkSpec::new("eth1").switch("rack")))
        .node(NodeSpec::new("gw2").trunk_spec(TrunkSpec::new("eth1").switch("rack")))
        .instance(InstanceSpec::new("a", "gw1", "eth1").ip("192.168.5.1/24"))
        .instance(InstanceSpec::new("b", "gw2", "eth1").ip("192.168.5.2/24"));
    let lab = Lab::up(spec).expect("lab");
    assert_eq!(lab.switch("gw1", "eth1"), "rack");
    // New ports listen and learn (2 x forward delay) before they forward.
    poll_until("every port forwarding", Duration::from_secs(20), || {
        let states = lab.stp_states("rack").map_err(|e| e.to_string())?;
        if states.len() == 4 && states.iter().all(|(_, s)| s == "forwarding") {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    })
    .expect("forwarding");
    let (ok, out) = lab.ping("a", "192.168.5.2", 2);
    assert!(ok, "instances on one switch: {out}");
    // The loop: gw1 br-loop (eth1, l1) == l2 br-loop (eth1) of gw2.
    let (gw1, gw2) = (lab.namespace("gw1"), lab.namespace("gw2"));
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "ip {args:?}: {}", output_text(&out));
    };
    ip(&[
        "link", "add", "l1", "netns", &gw1, "type", "veth", "peer", "name", "l2", "netns", &gw2,
    ]);
    for (ns, link) in [(&gw1, "l1"), (&gw2, "l2")] {
        ip(&[
            "-n",
            ns,
            "link",
            "add",
            "brloop",
            "type",
            "bridge",
            "stp_state",
            "0",
        ]);
        for port in [link, "eth1"] {
            ip(&["-n", ns, "link", "set", port, "master", "brloop", "up"]);
        }
        ip(&["-n", ns, "link", "set", "brloop", "up"]);
    }
    let states = poll_until("one trunk port blocked", Duration::from_secs(30), || {
        let states = lab.stp_states("rack").map_err(|e| e.to_string())?;
        let trunks: Vec<&(String, String)> =
            states.iter().filter(|(p, _)| p.starts_with("t-")).collect();
        let blocking = trunks.iter().filter(|(_, s)| s == "blocking").count();
        let forwarding = trunks.iter().filter(|(_, s)| s == "forwarding").count();
        if blocking == 1 && forwarding == 1 {
            Ok(states.clone())
        } else {
            Err(format!("{states:?}"))
        }
    })
    .expect("STP blocks the loop");
    assert!(states.iter().any(|(p, _)| p == "t-gw1"), "{states:?}");
    let (ok, out) = lab.ping("a", "192.168.5.2", 2);
    assert!(ok, "no storm, instances still talk: {out}");
}
