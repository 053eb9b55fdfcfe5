//! Security groups end to end (issue 18): SecurityGroups applied to a real
//! API server, the operator and the node dataplane as processes, real
//! traffic between remote instances in the namespace lab through the
//! default backend (the XDP tier: a policed VMI's first packets go to
//! AF_XDP, its established flows stay in the kernel).
//!
//! ```text
//!  bms1 (VLAN 100, no group, no "default" object: not policed)
//!     |  ping, TCP 80 / 81 / 82
//!     v
//!  gateway node --- bms2 (VLAN 200, group "web": ICMP + TCP 80 in from
//!                        192.168.1.0/24, everything out)
//! ```
//!
//! One scenario, in order (each step polls with a deadline): without
//! groups nothing is policed; with "web" on bms2, ping and TCP 80 pass
//! (replies included), the ping's established packets counted as the XDP
//! tier's flow stage hits, TCP 81 is dropped and counted under its reason and
//! the default deny; bms1 (no group) is unaffected; allowing 81 lets a new
//! connection through; removing the group restores the default (no
//! policy); naming a missing group is `Ready=False GroupNotFound` and
//! allows nothing. A second lab runs the agent with a flow table of two
//! flows: a third is the counted drop `flow_table_full`, not a crash, and
//! passes once the others expired. Network policies: two networks of a
//! namespace connected by a VirtualNetworkPolicy, and two networks of two
//! namespaces connected by the administrator's ClusterVirtualNetworkPolicy
//! (a tenant's own policy cannot reach the other namespace). Needs root
//! (namespaces, XDP); CI runs as root.

mod common;

use std::time::Duration;

use common::{BMS1, BMS2, Gateway, READY_TIMEOUT, ready_gateway};
use kube::api::Api;
use serde_json::json;
use trunkline_test_support::eventually;

/// How long a rule change may take to reach new connections: the
/// operator's decision, the agent's rebuild, the tables' swap.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A condition of a namespaced trunkline object: (status, reason, message).
async fn condition(
    gw: &common::Gateway<'_>,
    kind: &str,
    plural: &str,
    name: &str,
    type_: &str,
) -> Option<(String, String, String)> {
    let resource = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("trunkline.io", "v1alpha1", kind),
        plural,
    );
    let api: Api<kube::core::DynamicObject> =
        Api::namespaced_with(gw.client.clone(), gw.ns.name(), &resource);
    let object = api.get(name).await.ok()?;
    let generation = object.metadata.generation;
    let status = object.data.get("status")?;
    if status.get("observedGeneration").and_then(|g| g.as_i64()) != generation {
        return None;
    }
    let c = status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    Some((text("status"), text("reason"), text("message")))
}

/// Wait until group "web" is enforced on the node (a group no bound VMI
/// uses yet is Enforced too, with nothing to enforce: the node is named).
async fn web_enforced(gw: &common::Gateway<'_>) {
    eventually(
        "SecurityGroup web Enforced=True on the node, and Ready",
        READY_TIMEOUT,
        || async {
            let enforced =
                condition(gw, "SecurityGroup", "securitygroups", "web", "Enforced").await;
            let ready = condition(gw, "SecurityGroup", "securitygroups", "web", "Ready").await;
            match (&enforced, &ready) {
                (Some(e), Some(r)) if e.0 == "True" && r.0 == "True" && e.2.contains(&gw.node) => {
                    Ok(())
                }
                _ => Err(format!("Enforced {enforced:?}, Ready {ready:?}")),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// bms2's VMI, naming `groups`.
async fn bms2_groups(gw: &common::Gateway<'_>, groups: &[&str]) {
    gw.apply_namespaced(
        "virtualmachineinterfaces",
        "bms2",
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": {"name": "bms2", "namespace": gw.ns.name()},
            "spec": {"virtualNetwork": "net1", "macAddress": common::BMS2.mac,
                     "ips": [{"address": "192.168.1.20"}], "securityGroups": groups}}),
    )
    .await;
}

/// The group "web": ICMP and TCP `ports` in from the instances' subnet,
/// everything out.
async fn web(gw: &common::Gateway<'_>, ports: (u16, u16)) {
    gw.apply_namespaced(
        "securitygroups",
        "web",
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "SecurityGroup",
        "metadata": {"name": "web", "namespace": gw.ns.name()},
        "spec": {
            "ingress": [
                {"protocol": "ICMP", "remotePrefix": "192.168.1.0/24"},
                {"protocol": "TCP", "ports": {"min": ports.0, "max": ports.1},
                 "remotePrefix": "192.168.1.0/24"},
            ],
            "egress": [{}],
        }}),
    )
    .await;
}

/// A TCP exchange from `from` to `server` (at `to`) on `port`: whether the
/// payload arrived.
fn tcp_passes(gw: &common::Gateway<'_>, from: &str, server: &str, to: &str, port: u16) -> bool {
    matches!(gw.lab.tcp(from, server, to, port, "policed"), Ok(got) if got == "policed")
}

/// Wait until a new TCP connection to bms2 on `port` passes (`true`) or is
/// refused (`false`).
async fn tcp_to_bms2_becomes(gw: &common::Gateway<'_>, port: u16, passes: bool) {
    eventually(
        &format!("TCP bms1 -> bms2:{port} passes: {passes}"),
        CHANGE_TIMEOUT,
        || async {
            if tcp_passes(gw, "bms1", "bms2", "192.168.1.20", port) == passes {
                Ok(())
            } else {
                Err(format!("still {}", !passes))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.agent().metrics()));
}

#[tokio::test]
async fn a_security_group_allows_its_rules_counts_its_drops_and_follows_changes() {
    let gw = ready_gateway("auto").await;
    gw.ping_eventually("bms1", "192.168.1.20").await;
    let ns = gw.ns.name().to_owned();

    // No SecurityGroup at all: nobody is policed, every port passes.
    assert!(
        tcp_passes(&gw, "bms1", "bms2", "192.168.1.20", 81),
        "TCP 81 before any group"
    );
    assert_eq!(gw.drops("policy_ingress_denied"), 0.0);

    // "web" on bms2.
    web(&gw, (80, 80)).await;
    bms2_groups(&gw, &["web"]).await;
    web_enforced(&gw).await;
    // Port 81 is refused once the node runs the rules (polled: the node
    // may report before the forwarding thread swapped its tables).
    tcp_to_bms2_becomes(&gw, 81, false).await;

    // Ping and TCP 80 pass, their replies included.
    let (ok, out) = gw.lab.ping("bms1", "192.168.1.20", 3);
    assert!(ok, "ICMP is allowed: {out}");
    assert!(
        tcp_passes(&gw, "bms1", "bms2", "192.168.1.20", 80),
        "TCP 80 is allowed"
    );
    // Established flows of a policed VMI stay in the XDP tier (the
    // default backend): after a ping's first request (userspace's, which
    // opens the flow and has it mirrored), its requests and replies pass
    // by the flow map's entries, counted as flow stage hits.
    let hits = "trunkline_dataplane_xdp_tier_flow_hits_total";
    let hits_before = gw.agent().metric(hits).unwrap_or(0.0);
    eventually(
        "a policed VMI's established pings decided in the XDP tier",
        CHANGE_TIMEOUT,
        || async {
            let (ok, out) = gw.lab.ping("bms1", "192.168.1.20", 3);
            let now = gw.agent().metric(hits).unwrap_or(0.0);
            if ok && now >= hits_before + 2.0 {
                Ok(())
            } else {
                Err(format!(
                    "ping passed: {ok}, flow stage hits {hits_before} -> {now}\n{out}"
                ))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.agent().metrics()));
    // TCP 81: dropped, counted under its reason and the default deny.
    let denied_before = gw.drops("policy_ingress_denied");
    assert!(denied_before > 0.0, "the refused attempts were counted");
    assert!(!tcp_passes(&gw, "bms1", "bms2", "192.168.1.20", 81));
    assert!(
        gw.drops("policy_ingress_denied") > denied_before,
        "{}",
        gw.agent().metrics()
    );
    let metric = |name: &str| gw.agent().metric(name).unwrap_or(0.0);
    let default_deny = format!(
        "trunkline_dataplane_security_group_denied_total{{vmi=\"{ns}/bms2\",direction=\"ingress\",rule=\"default-deny\"}}"
    );
    assert!(metric(&default_deny) > 0.0, "{}", gw.agent().metrics());
    let http_rule = format!(
        "trunkline_dataplane_security_group_flows_total{{vmi=\"{ns}/bms2\",direction=\"ingress\",group=\"web\",rule=\"1\"}}"
    );
    assert!(metric(&http_rule) >= 1.0, "{}", gw.agent().metrics());
    let icmp_rule = format!(
        "trunkline_dataplane_security_group_flows_total{{vmi=\"{ns}/bms2\",direction=\"ingress\",group=\"web\",rule=\"0\"}}"
    );
    assert!(metric(&icmp_rule) >= 1.0, "{}", gw.agent().metrics());

    // bms1 names no group and there is no "default": not policed. bms2
    // (all egress allowed) reaches it on any port, and it has no series.
    // bms1's answers enter bms2 as the return of bms2's flow (bms2's
    // ingress rules allow no TCP from port 81).
    assert!(
        tcp_passes(&gw, "bms2", "bms1", "192.168.1.10", 81),
        "bms1 is not policed"
    );
    assert!(
        !gw.agent().metrics().contains(&format!(
            "vmi=\"{ns}/bms1\",direction=\"ingress\",rule=\"default-deny\""
        )),
        "bms1 has no policy"
    );

    // Allow 80 to 81: a new connection to 81 passes within the bound.
    web(&gw, (80, 81)).await;
    tcp_to_bms2_becomes(&gw, 81, true).await;
    assert!(!tcp_passes(&gw, "bms1", "bms2", "192.168.1.20", 82));

    // The group removed from bms2: no "default" object, so no policy.
    bms2_groups(&gw, &[]).await;
    tcp_to_bms2_becomes(&gw, 82, true).await;

    // A missing group: accepted, Ready=False GroupNotFound, nothing allowed.
    bms2_groups(&gw, &["ghost"]).await;
    let (_, _, message) = eventually("bms2 Ready=False GroupNotFound", READY_TIMEOUT, || async {
        match condition(
            &gw,
            "VirtualMachineInterface",
            "virtualmachineinterfaces",
            "bms2",
            "Ready",
        )
        .await
        {
            Some(c) if c.0 == "False" && c.1 == "GroupNotFound" => Ok(c),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(message.contains("ghost"), "{message}");
    eventually("a missing group allows nothing", CHANGE_TIMEOUT, || async {
        let (ok, out) = gw.lab.ping("bms1", "192.168.1.20", 1);
        if ok { Err(out) } else { Ok(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// A flow table of two flows: two pings fill it; a third flow, allowed by
/// the rules, is the counted drop `flow_table_full` (the agent keeps
/// running), and passes once the pings' flows expired.
#[tokio::test]
async fn a_full_flow_table_is_a_counted_drop_not_a_crash() {
    let mut gw = Gateway::start(&[BMS1, BMS2], "auto").await;
    // Restarted with a tiny table (before any object: nothing to undo).
    gw.agent.as_mut().expect("agent").kill();
    gw.agent_args = [
        "--flow-table-size",
        "2",
        "--flow-timeout-icmp",
        "10",
        "--flow-timeout-tcp-transitory",
        "5",
    ]
    .map(String::from)
    .to_vec();
    gw.start_agent();
    gw.apply_objects(&[BMS1, BMS2]).await;
    for vlan in [100, 200] {
        gw.wait_li(&gw.li_name(vlan), "True").await;
    }
    web(&gw, (80, 80)).await;
    bms2_groups(&gw, &["web"]).await;
    web_enforced(&gw).await;
    // Policed once the forwarding thread runs the new tables: TCP 81 refused.
    tcp_to_bms2_becomes(&gw, 81, false).await;
    // The refused attempt's flow expires (TCP transitory: 5 s here).
    let flows = || {
        gw.agent()
            .metric("trunkline_dataplane_flows")
            .unwrap_or(-1.0)
    };
    eventually("an empty flow table", CHANGE_TIMEOUT, || async {
        match flows() {
            0.0 => Ok(()),
            n => Err(format!("{n} flows")),
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.agent().metrics()));
    // Two echo flows (one identifier per ping run) fill the table.
    for _ in 0..2 {
        let (ok, out) = gw.lab.ping("bms1", "192.168.1.20", 1);
        assert!(ok, "an echo flow gets a place: {out}");
    }
    assert_eq!(flows(), 2.0, "{}", gw.agent().metrics());
    let before = gw.drops("flow_table_full");
    assert!(
        !tcp_passes(&gw, "bms1", "bms2", "192.168.1.20", 80),
        "a third flow in a table of two"
    );
    assert!(
        gw.drops("flow_table_full") > before,
        "{}",
        gw.agent().metrics()
    );
    assert!(
        gw.agent()
            .metric("trunkline_dataplane_flow_allocation_failures_total{reason=\"table_full\"}")
            .unwrap_or(0.0)
            > 0.0,
        "{}",
        gw.agent().metrics()
    );
    // The agent still runs, and once the echo flows expire (10 s idle) a
    // new connection gets a place.
    tcp_to_bms2_becomes(&gw, 80, true).await;
}

/// Network policies (issue 18's second kind): net1 (bms1, bms2) and blue
/// (blue1, 192.168.2.0/24) on one node.
///
/// ```text
///  bms1 (VLAN 100, net1) --+                      +-- blue1 (VLAN 300, blue)
///  bms2 (VLAN 200, net1) --+-- gateway node ------+
///                          VirtualNetworkPolicy ssh: Allow TCP 22 net1 <> blue
/// ```
///
/// Without the policy the networks stay separate; with both naming it,
/// TCP 22 passes both ways (replies included), its established packets
/// crossing in the XDP tier (flow stage hits), TCP 80 and ICMP are
/// dropped and counted (`network_policy_denied`, the default deny's and
/// the rule's series), traffic inside net1 is untouched; net1 dropping the
/// policy from its list separates them again.
#[tokio::test]
async fn two_networks_connected_by_a_policy_talk_on_one_port_only() {
    const BLUE1: common::Instance = common::Instance {
        name: "blue1",
        vlan: 300,
        cidr: "192.168.2.10/24",
        mac: "02:00:00:00:04:01",
        gateway: "192.168.2.1",
    };
    let gw = Gateway::start(&[BMS1, BMS2, BLUE1], "auto").await;
    let ns = gw.ns.name().to_owned();
    // The router, net1 with bms1 and bms2, blue with blue1.
    gw.apply_objects(&[BMS1, BMS2]).await;
    let network = |name: &str, cidr: &str, gateway: &str, policies: &[&str]| {
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"subnets": [{"cidr": cidr, "gateway": gateway}],
                     "networkPolicies": policies}})
    };
    gw.apply_namespaced(
        "virtualnetworks",
        "blue",
        network("blue", "192.168.2.0/24", "192.168.2.1", &[]),
    )
    .await;
    gw.apply_vmi("blue1", "blue", BLUE1.mac, "192.168.2.10")
        .await;
    gw.apply_li(BLUE1.vlan, "blue1").await;
    for vlan in [100, 200, 300] {
        gw.wait_li(&gw.li_name(vlan), "True").await;
    }
    gw.ping_eventually("bms1", "192.168.1.20").await;
    gw.ping_eventually("blue1", "192.168.2.1").await;

    // No policy: separate. (net1 has no route to 192.168.2.0/24 at all.)
    let (ok, out) = gw.lab.ping("bms1", "192.168.2.10", 1);
    assert!(!ok, "no policy, no route: {out}");
    assert!(!tcp_passes(&gw, "bms1", "blue1", "192.168.2.10", 22));

    // The policy, named by both networks.
    gw.apply_namespaced(
        "virtualnetworkpolicies",
        "ssh",
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetworkPolicy",
            "metadata": {"name": "ssh", "namespace": ns},
            "spec": {"rules": [{"action": "Allow", "protocol": "TCP",
                                "ports": {"min": 22, "max": 22},
                                "source": "net1", "destination": "blue"}]}}),
    )
    .await;
    let attach = |policies: &'static [&'static str]| {
        let gw = &gw;
        let network = &network;
        async move {
            for (name, cidr, gateway) in [
                ("net1", "192.168.1.0/24", "192.168.1.1"),
                ("blue", "192.168.2.0/24", "192.168.2.1"),
            ] {
                gw.apply_namespaced(
                    "virtualnetworks",
                    name,
                    network(name, cidr, gateway, policies),
                )
                .await;
            }
        }
    };
    // Named by no network yet: accepted, not ready, and says why.
    let ready = |want: &'static str, why: &'static str| {
        let gw = &gw;
        async move {
            eventually(
                &format!("VirtualNetworkPolicy ssh Ready={want} {why}"),
                READY_TIMEOUT,
                || async {
                    let ready = condition(
                        gw,
                        "VirtualNetworkPolicy",
                        "virtualnetworkpolicies",
                        "ssh",
                        "Ready",
                    )
                    .await;
                    match &ready {
                        Some(c) if c.0 == want && c.1 == why => Ok(c.clone()),
                        _ => Err(format!("{ready:?}")),
                    }
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let (_, _, message) = ready("False", "NotAttached").await;
    assert!(message.contains("net1"), "{message}");
    attach(&["ssh"]).await;
    // Programmed on the node (it holds both networks), and Ready.
    ready("True", "Ok").await;
    let (programmed, _, message) = condition(
        &gw,
        "VirtualNetworkPolicy",
        "virtualnetworkpolicies",
        "ssh",
        "Programmed",
    )
    .await
    .expect("Programmed");
    assert_eq!(programmed, "True");
    assert!(message.contains(&gw.node), "{message}");
    let connected = |passes: bool| {
        let gw = &gw;
        async move {
            eventually(
                &format!("TCP bms1 -> blue1:22 passes: {passes}"),
                CHANGE_TIMEOUT,
                || async {
                    if tcp_passes(gw, "bms1", "blue1", "192.168.2.10", 22) == passes {
                        Ok(())
                    } else {
                        Err(format!("still {}", !passes))
                    }
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", gw.agent().metrics()));
        }
    };
    connected(true).await;
    // Both ways (the rule is both ways by default), replies included: a
    // TCP exchange needs them.
    assert!(
        tcp_passes(&gw, "blue1", "bms2", "192.168.1.20", 22),
        "blue -> net1 on 22"
    );
    // Established connections between the two networks stay in the XDP
    // tier (the default backend): past a connection's first packets
    // (userspace's, which open its flow and have it mirrored), its
    // packets cross by the flow map's entries, counted as flow stage hits
    // (nothing else here has a flow stage: no SNAT, no security group).
    let hits = "trunkline_dataplane_xdp_tier_flow_hits_total";
    let hits_before = gw.agent().metric(hits).unwrap_or(0.0);
    eventually(
        "established TCP 22 between the networks decided in the XDP tier",
        CHANGE_TIMEOUT,
        || async {
            let ok = tcp_passes(&gw, "bms1", "blue1", "192.168.2.10", 22);
            let now = gw.agent().metric(hits).unwrap_or(0.0);
            if ok && now >= hits_before + 2.0 {
                Ok(())
            } else {
                Err(format!(
                    "TCP passed: {ok}, flow stage hits {hits_before} -> {now}"
                ))
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", gw.agent().metrics()));
    // TCP 80 and ICMP: no rule, dropped and counted.
    let denied = gw.drops("network_policy_denied");
    assert!(!tcp_passes(&gw, "bms1", "blue1", "192.168.2.10", 80));
    let (ok, out) = gw.lab.ping("bms1", "192.168.2.10", 1);
    assert!(!ok, "ICMP has no rule: {out}");
    assert!(
        gw.drops("network_policy_denied") > denied,
        "{}",
        gw.agent().metrics()
    );
    let metric = |name: String| gw.agent().metric(&name).unwrap_or(0.0);
    let ssh_rule = |from: &str, to: &str| {
        format!(
            "trunkline_dataplane_network_policy_flows_total{{from=\"{ns}/{from}\",to=\"{ns}/{to}\",policy=\"{ns}/ssh\",rule=\"0\",action=\"Allow\"}}"
        )
    };
    assert!(
        metric(ssh_rule("net1", "blue")) >= 1.0,
        "{}",
        gw.agent().metrics()
    );
    assert!(
        metric(ssh_rule("blue", "net1")) >= 1.0,
        "{}",
        gw.agent().metrics()
    );
    let default_deny = format!(
        "trunkline_dataplane_network_policy_flows_total{{from=\"{ns}/net1\",to=\"{ns}/blue\",policy=\"\",rule=\"default-deny\",action=\"Deny\"}}"
    );
    assert!(metric(default_deny) >= 2.0, "{}", gw.agent().metrics());
    // Inside net1 nothing changed: TCP 80 between bms1 and bms2.
    assert!(
        tcp_passes(&gw, "bms1", "bms2", "192.168.1.20", 80),
        "intra-network traffic is not policed"
    );

    // net1 and blue drop the policy: separate again.
    attach(&[]).await;
    connected(false).await;
    ready("False", "NotAttached").await;
    assert!(!tcp_passes(&gw, "blue1", "bms2", "192.168.1.20", 22));
}

/// A condition of a cluster-scoped trunkline object, for its current
/// generation: (status, reason, message).
async fn cluster_condition(
    gw: &common::Gateway<'_>,
    kind: &str,
    plural: &str,
    name: &str,
    type_: &str,
) -> Option<(String, String, String)> {
    let resource = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("trunkline.io", "v1alpha1", kind),
        plural,
    );
    let api: Api<kube::core::DynamicObject> = Api::all_with(gw.client.clone(), &resource);
    let object = api.get(name).await.ok()?;
    let generation = object.metadata.generation;
    let status = object.data.get("status")?;
    if status.get("observedGeneration").and_then(|g| g.as_i64()) != generation {
        return None;
    }
    let c = status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    Some((text("status"), text("reason"), text("message")))
}

/// Two tenants (namespaces) on one node: net1 (bms1, bms2) in the
/// gateway's namespace, blue (blue1) in a second one.
///
/// ```text
///  bms1 (net1, tenant A) --TCP 22 only--> blue1 (blue, tenant B)
///        ClusterVirtualNetworkPolicy <ns>-ssh: Allow TCP 22 A/net1 <> B/blue
/// ```
///
/// Separate without a policy; tenant A's own policy naming "blue" finds no
/// such network in its namespace (`Ready=False NetworkNotFound`, pointing
/// at the administrator's kind) and connects nothing; the administrator's
/// cluster policy connects them on TCP 22 only, both ways with replies,
/// TCP 80 dropped and counted under the cluster policy's default deny;
/// a second cluster policy of the same priority on the connection makes
/// both `Conflicted=True PriorityTie` until its priority changes;
/// deleting the first separates them again.
#[tokio::test]
async fn networks_of_two_tenants_connected_by_the_administrators_policy_talk_on_one_port_only() {
    const BLUE1: common::Instance = common::Instance {
        name: "blue1",
        vlan: 300,
        cidr: "192.168.2.10/24",
        mac: "02:00:00:00:04:01",
        gateway: "192.168.2.1",
    };
    let gw = Gateway::start(&[BMS1, BMS2, BLUE1], "auto").await;
    let ns = gw.ns.name().to_owned();
    let plane = trunkline_test_support::ControlPlane::shared();
    let tenant_b = plane.namespace("tenant-b").await.expect("namespace");
    let ns_b = tenant_b.name().to_owned();
    gw.apply_objects(&[BMS1, BMS2]).await;
    // Tenant B's network and instance, and its logical interface.
    let apply_in_b = |plural: &'static str, name: &'static str, object: serde_json::Value| {
        let (client, ns_b) = (gw.client.clone(), ns_b.clone());
        async move {
            let kind = object["kind"].as_str().expect("kind").to_owned();
            let resource = kube::core::ApiResource::from_gvk_with_plural(
                &kube::core::GroupVersionKind::gvk("trunkline.io", "v1alpha1", &kind),
                plural,
            );
            let api: Api<kube::core::DynamicObject> =
                Api::namespaced_with(client, &ns_b, &resource);
            api.patch(
                name,
                &common::apply_params(),
                &kube::api::Patch::Apply(&object),
            )
            .await
            .unwrap_or_else(|e| panic!("{kind} {ns_b}/{name}: {e}"));
        }
    };
    apply_in_b(
        "virtualnetworks",
        "blue",
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": "blue", "namespace": ns_b},
            "spec": {"subnets": [{"cidr": "192.168.2.0/24", "gateway": "192.168.2.1"}]}}),
    )
    .await;
    apply_in_b(
        "virtualmachineinterfaces",
        "blue1",
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": {"name": "blue1", "namespace": ns_b},
            "spec": {"virtualNetwork": "blue", "macAddress": BLUE1.mac,
                     "ips": [{"address": "192.168.2.10"}]}}),
    )
    .await;
    let lis: Api<trunkline_api::LogicalInterface> = Api::all(gw.client.clone());
    let blue_li = gw.li_name(BLUE1.vlan);
    lis.patch(
        &blue_li,
        &common::apply_params(),
        &kube::api::Patch::Apply(json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "LogicalInterface",
            "metadata": {"name": blue_li},
            "spec": {"physicalRouter": gw.node, "physicalInterface": "eth1", "vlan": BLUE1.vlan,
                     "virtualMachineInterface": {"namespace": ns_b, "name": "blue1"}}})),
    )
    .await
    .expect("blue1's logical interface");
    for vlan in [100, 200, 300] {
        gw.wait_li(&gw.li_name(vlan), "True").await;
    }
    gw.ping_eventually("bms1", "192.168.1.20").await;
    gw.ping_eventually("blue1", "192.168.2.1").await;

    // No policy: separate.
    let (ok, out) = gw.lab.ping("bms1", "192.168.2.10", 1);
    assert!(!ok, "no policy, no route: {out}");
    assert!(!tcp_passes(&gw, "bms1", "blue1", "192.168.2.10", 22));

    // Tenant A's own policy naming "blue": there is no blue in its
    // namespace, and it says where the way is.
    gw.apply_namespaced(
        "virtualnetworkpolicies",
        "reach-blue",
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetworkPolicy",
            "metadata": {"name": "reach-blue", "namespace": ns},
            "spec": {"rules": [{"action": "Allow", "source": "net1", "destination": "blue"}]}}),
    )
    .await;
    gw.apply_namespaced(
        "virtualnetworks",
        "net1",
        json!({"apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualNetwork",
            "metadata": {"name": "net1", "namespace": ns},
            "spec": {"subnets": [{"cidr": "192.168.1.0/24", "gateway": "192.168.1.1"}],
                     "networkPolicies": ["reach-blue"]}}),
    )
    .await;
    let refused = eventually(
        "VirtualNetworkPolicy reach-blue Ready=False NetworkNotFound",
        READY_TIMEOUT,
        || async {
            let ready = condition(
                &gw,
                "VirtualNetworkPolicy",
                "virtualnetworkpolicies",
                "reach-blue",
                "Ready",
            )
            .await;
            match &ready {
                Some(c) if c.0 == "False" && c.1 == "NetworkNotFound" => Ok(c.2.clone()),
                _ => Err(format!("{ready:?}")),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        refused.contains("VirtualNetwork blue")
            && refused.contains("does not exist in this namespace")
            && refused.contains("ClusterVirtualNetworkPolicy"),
        "{refused}"
    );
    assert!(
        !tcp_passes(&gw, "bms1", "blue1", "192.168.2.10", 22),
        "a tenant's policy never reaches another namespace"
    );

    // The administrator's policy.
    let admin = format!("{ns}-ssh");
    let policies: Api<trunkline_api::ClusterVirtualNetworkPolicy> = Api::all(gw.client.clone());
    policies
        .patch(
            &admin,
            &common::apply_params(),
            &kube::api::Patch::Apply(json!({
                "apiVersion": "trunkline.io/v1alpha1", "kind": "ClusterVirtualNetworkPolicy",
                "metadata": {"name": admin},
                "spec": {"rules": [{"action": "Allow", "protocol": "TCP",
                                    "ports": {"min": 22, "max": 22},
                                    "source": {"namespace": ns, "name": "net1"},
                                    "destination": {"namespace": ns_b, "name": "blue"}}]}})),
        )
        .await
        .expect("the cluster policy");
    let programmed = eventually(
        "ClusterVirtualNetworkPolicy Ready=True, Programmed on the node",
        READY_TIMEOUT,
        || async {
            let ready = cluster_condition(
                &gw,
                "ClusterVirtualNetworkPolicy",
                "clustervirtualnetworkpolicies",
                &admin,
                "Ready",
            )
            .await;
            let programmed = cluster_condition(
                &gw,
                "ClusterVirtualNetworkPolicy",
                "clustervirtualnetworkpolicies",
                &admin,
                "Programmed",
            )
            .await;
            match (&ready, &programmed) {
                (Some(r), Some(p)) if r.0 == "True" && p.0 == "True" => Ok(p.2.clone()),
                _ => Err(format!("Ready {ready:?}, Programmed {programmed:?}")),
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(programmed.contains(&gw.node), "{programmed}");

    // Two cluster policies of one priority on one connection: each says
    // so, naming the other and the order their rules run in; another
    // priority ends it. (The second repeats the first's rule, so the
    // traffic below does not depend on the order.)
    let tie = format!("{ns}-tie");
    let apply_tie = |priority: u32| {
        let (policies, tie, ns, ns_b) = (policies.clone(), tie.clone(), ns.clone(), ns_b.clone());
        async move {
            policies
                .patch(
                    &tie,
                    &common::apply_params(),
                    &kube::api::Patch::Apply(json!({
                        "apiVersion": "trunkline.io/v1alpha1", "kind": "ClusterVirtualNetworkPolicy",
                        "metadata": {"name": tie},
                        "spec": {"priority": priority,
                                 "rules": [{"action": "Allow", "protocol": "TCP",
                                            "ports": {"min": 22, "max": 22},
                                            "source": {"namespace": ns, "name": "net1"},
                                            "destination": {"namespace": ns_b, "name": "blue"}}]}})),
                )
                .await
                .expect("the second cluster policy");
        }
    };
    let conflicted = |name: String, status: &'static str, reason: &'static str| {
        let gw = &gw;
        async move {
            eventually(
                &format!("ClusterVirtualNetworkPolicy {name} Conflicted={status} {reason}"),
                READY_TIMEOUT,
                || async {
                    let c = cluster_condition(
                        gw,
                        "ClusterVirtualNetworkPolicy",
                        "clustervirtualnetworkpolicies",
                        &name,
                        "Conflicted",
                    )
                    .await;
                    match &c {
                        Some(c) if c.0 == status && c.1 == reason => Ok(c.2.clone()),
                        _ => Err(format!("{c:?}")),
                    }
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    conflicted(admin.clone(), "False", "Ok").await;
    apply_tie(0).await;
    let first = conflicted(admin.clone(), "True", "PriorityTie").await;
    let second = conflicted(tie.clone(), "True", "PriorityTie").await;
    let order = format!("{admin}, then {tie}");
    assert!(first.contains(&tie) && first.contains(&order), "{first}");
    assert!(
        second.contains(&admin) && second.contains(&order),
        "{second}"
    );
    apply_tie(5).await;
    conflicted(admin.clone(), "False", "Ok").await;
    conflicted(tie.clone(), "False", "Ok").await;
    policies
        .delete(&tie, &Default::default())
        .await
        .expect("delete the second cluster policy");
    // The node's tables without it (a connection's flow counters start
    // again when its policies change: README, Limitations), before the
    // flows below are counted.
    let tie_series = format!("policy=\"{tie}\"");
    eventually(
        "the second cluster policy gone from the node",
        CHANGE_TIMEOUT,
        || async {
            let metrics = gw.agent().metrics();
            if metrics.contains(&tie_series) {
                Err("still in the node's tables".to_owned())
            } else {
                Ok(())
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let connected = |passes: bool| {
        let gw = &gw;
        async move {
            eventually(
                &format!("TCP bms1 -> blue1:22 passes: {passes}"),
                CHANGE_TIMEOUT,
                || async {
                    if tcp_passes(gw, "bms1", "blue1", "192.168.2.10", 22) == passes {
                        Ok(())
                    } else {
                        Err(format!("still {}", !passes))
                    }
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", gw.agent().metrics()));
        }
    };
    connected(true).await;
    // Both ways, replies included.
    assert!(
        tcp_passes(&gw, "blue1", "bms2", "192.168.1.20", 22),
        "blue -> net1 on 22"
    );
    // TCP 80 and ICMP: no rule, dropped and counted.
    let denied = gw.drops("network_policy_denied");
    assert!(!tcp_passes(&gw, "bms1", "blue1", "192.168.2.10", 80));
    let (ok, out) = gw.lab.ping("bms1", "192.168.2.10", 1);
    assert!(!ok, "ICMP has no rule: {out}");
    assert!(
        gw.drops("network_policy_denied") > denied,
        "{}",
        gw.agent().metrics()
    );
    // The flows are counted under the cluster policy's (bare) name.
    let allowed = format!(
        "trunkline_dataplane_network_policy_flows_total{{from=\"{ns}/net1\",to=\"{ns_b}/blue\",policy=\"{admin}\",rule=\"0\",action=\"Allow\"}}"
    );
    assert!(
        gw.agent().metric(&allowed).unwrap_or(0.0) >= 1.0,
        "{}",
        gw.agent().metrics()
    );

    // Deleted: separate again.
    policies
        .delete(&admin, &Default::default())
        .await
        .expect("delete the cluster policy");
    connected(false).await;
    assert!(!tcp_passes(&gw, "blue1", "bms2", "192.168.1.20", 22));
    lis.delete(&blue_li, &Default::default())
        .await
        .expect("delete blue1's logical interface");
}
