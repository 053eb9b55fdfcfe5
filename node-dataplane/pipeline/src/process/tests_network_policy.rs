//! Network-policy tests (issue 18's second kind): two networks of the
//! node connected by links get each other's VMI host routes, and what
//! crosses is decided by the links' ordered rules at a flow's first packet
//! and remembered in the flow table (replies follow). Frames are built by
//! etherparse on the shared fixture plus network ns/blue (10.9.0.0/24)
//! with vmi-f (10.9.0.20, port 1 VLAN 500); the red side is net1's vmi-a
//! (10.0.0.10, VLAN 100, not policed) and vmi-b (10.0.1.20, VLAN 200).
//! blue also has fd09::/64 (vmi-f fd09::20; vmi-a is fd00::a).
//!
//! Every frame is recorded for the XDP tier's differential test with the
//! flow table as the agent's mirror holds it: a frame routed into the
//! other network of this node that crossed by established entries alone
//! must be decided alike in the kernel (`EstablishedLinked`).

use core::cell::RefCell;

use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{PacketBuilder, VlanId};

use super::tests::*;
use super::*;
use crate::config::*;
use crate::flow::{FlowConfig, FlowKey, FlowTable, FlowValue};
use crate::network_policy::{LinkConfig, LinkRuleCount, NetworkAction, NetworkRule, PolicyRules};
use crate::policy::{PortRange, RuleProtocol};
use crate::tables::Tables;
use core::time::Duration;

pub(crate) mod across;
pub(crate) mod differential;

const SEC: u64 = 1_000_000_000;
const A: [u8; 4] = [10, 0, 0, 10];
const B: [u8; 4] = [10, 0, 1, 20];
const F: [u8; 4] = [10, 9, 0, 20];
const MAC_F: MacAddress = [2, 0, 0, 0, 0, 0x0f];
const RED: &str = "ns/net1";
const BLUE: &str = "ns/blue";

/// The drop reasons this file's frames cover (the shared every-reason
/// test leaves them here).
pub(crate) const REASONS: &[DropReason] = &[
    DropReason::NetworkPolicyDenied,
    DropReason::NetworkPolicyUnknownSource,
];

fn rule(
    index: u16,
    action: NetworkAction,
    protocol: RuleProtocol,
    port: Option<u16>,
) -> NetworkRule {
    NetworkRule {
        index,
        action,
        protocol,
        ports: port.map(|p| PortRange { min: p, max: p }),
    }
}

fn link(from: &str, to: &str, policies: &[(&str, Vec<NetworkRule>)]) -> LinkConfig {
    LinkConfig {
        from: from.into(),
        to: to.into(),
        policies: policies
            .iter()
            .map(|(name, rules)| PolicyRules {
                policy: (*name).into(),
                rules: rules.clone(),
            })
            .collect(),
    }
}

/// The policy ns/ssh: TCP 22 both ways.
fn ssh() -> Vec<NetworkRule> {
    vec![rule(0, NetworkAction::Allow, RuleProtocol::Tcp, Some(22))]
}

/// The fixture with network blue and vmi-f, and `links`.
fn config(links: Vec<LinkConfig>) -> NodeConfig {
    let mut c = fixture();
    c.networks.push(NetworkConfig {
        key: BLUE.into(),
        vrf: 4,
        subnets: vec![
            SubnetConfig {
                prefix: prefix("10.9.0.0/24"),
                gateway: ip("10.9.0.1"),
            },
            SubnetConfig {
                prefix: prefix("fd09::/64"),
                gateway: ip("fd09::1"),
            },
        ],
        ..Default::default()
    });
    c.vmis
        .push(vmi("ns/vmi-f", BLUE, MAC_F, &["10.9.0.20", "fd09::20"]));
    c.logical_interfaces
        .push(li("ns/li-f", P1, 500, "ns/vmi-f", 15));
    c.network_links = links;
    c
}

/// red <-> blue by ns/ssh.
fn connected() -> NodeConfig {
    config(vec![
        link(RED, BLUE, &[("ns/ssh", ssh())]),
        link(BLUE, RED, &[("ns/ssh", ssh())]),
    ])
}

struct Lab {
    tables: Tables,
    counters: Counters,
    flows: RefCell<FlowTable>,
}

impl Lab {
    fn new(config: &NodeConfig) -> Lab {
        let (tables, rejected) = Tables::compile(config);
        assert!(rejected.is_empty(), "unexpected rejections: {rejected:?}");
        Lab {
            tables,
            counters: Counters::new(),
            flows: RefCell::new(FlowTable::new(FlowConfig {
                capacity: 64,
                ..FlowConfig::default()
            })),
        }
    }

    fn recompile(&mut self, config: &NodeConfig) {
        let (tables, rejected) = Tables::recompile(config, &self.tables);
        assert!(rejected.is_empty());
        self.tables = tables;
    }

    fn run(&self, frame: &[u8], now: u64) -> (Verdict, Vec<u8>) {
        self.run_on(P1, frame, now)
    }

    /// [`Lab::run`] with the frame arriving on `port`.
    fn run_on(&self, port: PortId, frame: &[u8], now: u64) -> (Verdict, Vec<u8>) {
        let mut buf = vec![0xee; HEADROOM + frame.len() + 64];
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        let before = self.flow_state();
        // What the agent's mirror holds in the kernel's flow map by now:
        // every entry of the table before this frame.
        let mirrored = self.flow_entries();
        let packets = |entries: &[(FlowKey, FlowValue, Duration)]| -> u64 {
            entries.iter().map(|(_, v, _)| v.packets).sum()
        };
        let pipeline = Pipeline::new(&self.tables, &self.counters).with_flows(&self.flows, now);
        let verdict = pipeline.process(port, &mut buf, HEADROOM, frame.len());
        let out = match verdict {
            Verdict::Transmit { offset, len, .. } => buf[offset..offset + len].to_vec(),
            _ => Vec::new(),
        };
        // A frame that changed the flow table (a new flow, a TCP state
        // move, a removal) must be handed off: the kernel only reads
        // entries (and updates their last-seen). One that crossed by
        // established entries alone is the kernel's.
        let moved_a_cell = self.flow_state() != before;
        let touched = packets(&self.flow_entries()) != packets(&mirrored);
        let established = !moved_a_cell
            && touched
            && matches!(verdict, Verdict::Transmit { .. })
            && super::tests_north_south::established_kind(frame);
        crate::kernel::differential::record_with_flows(
            &self.tables,
            port,
            frame,
            HEADROOM,
            verdict,
            &out,
            moved_a_cell,
            crate::kernel::differential::Flows {
                entries: &mirrored,
                now,
                established,
            },
        );
        (verdict, out)
    }

    /// What the flow table decides with (last-seen times and counts
    /// aside: the kernel updates those).
    fn flow_state(&self) -> String {
        let flows = self.flows.borrow();
        format!(
            "{:?} {:?}",
            self.flow_entries()
                .iter()
                .map(|(k, v, _)| (k, v.action, v.tcp, v.generation))
                .collect::<Vec<_>>(),
            flows.stats().snapshot()
        )
    }

    /// The flow table's entries (both directions of every flow), with
    /// their flows' idle timeouts.
    fn flow_entries(&self) -> Vec<(FlowKey, FlowValue, Duration)> {
        let flows = self.flows.borrow();
        flows
            .flows()
            .flat_map(|(id, _, _)| [id, id.other()])
            .map(|id| (*flows.key(id), *flows.value(id), flows.idle_timeout(id)))
            .collect()
    }

    /// Delivered to `vlan` of port 1, to `mac`, from the gateway.
    fn delivered(&self, frame: &[u8], now: u64, vlan: u16, mac: MacAddress) -> bool {
        self.delivered_from(P1, frame, now, vlan, mac)
    }

    /// [`Lab::delivered`] for a frame arriving on `port`.
    fn delivered_from(
        &self,
        port: PortId,
        frame: &[u8],
        now: u64,
        vlan: u16,
        mac: MacAddress,
    ) -> bool {
        let (verdict, out) = self.run_on(port, frame, now);
        let Verdict::Transmit { port, .. } = verdict else {
            return false;
        };
        let Ok(parsed) = etherparse::SlicedPacket::from_ethernet(&out) else {
            return false;
        };
        let tag = parsed.link_exts.iter().find_map(|e| match e {
            etherparse::LinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
            _ => None,
        });
        let eth = match parsed.link {
            Some(etherparse::LinkSlice::Ethernet2(e)) => e,
            _ => return false,
        };
        port == P1 && tag == Some(vlan) && eth.destination() == mac && eth.source() == GW
    }

    fn dropped(&self, frame: &[u8], now: u64) -> DropReason {
        self.dropped_from(P1, frame, now)
    }

    /// [`Lab::dropped`] for a frame arriving on `port`.
    fn dropped_from(&self, port: PortId, frame: &[u8], now: u64) -> DropReason {
        match self.run_on(port, frame, now).0 {
            Verdict::Drop(reason) => reason,
            other => panic!("expected a drop, got {other:?}"),
        }
    }

    fn counts(&self, from: &str) -> Vec<LinkRuleCount> {
        let link = self
            .tables
            .network_links()
            .iter()
            .find(|l| l.config.from == from)
            .unwrap();
        link.counters.snapshot(&link.config)
    }

    /// Flows decided by rule `index` of `policy` (`None`: the default).
    fn count(&self, from: &str, rule: Option<(&str, u16)>) -> u64 {
        self.counts(from)
            .into_iter()
            .find(|c| c.rule.as_ref().map(|(p, i)| (p.as_str(), *i)) == rule)
            .map_or(0, |c| c.count)
    }
}

fn mac_of(vlan: u16) -> MacAddress {
    match vlan {
        100 => MAC_A,
        200 => MAC_B,
        _ => MAC_F,
    }
}

/// A TCP segment routed from `src` (VLAN `vlan`) to `dst`.
fn tcp(vlan: u16, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, syn: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let step = PacketBuilder::ethernet2(mac_of(vlan), GW)
        .single_vlan(VlanId::try_new(vlan).unwrap())
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1, 1000);
    let step = if syn { step.syn() } else { step.ack(1) };
    step.write(&mut out, b"").unwrap();
    out
}

fn ping(vlan: u16, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac_of(vlan), GW)
        .single_vlan(VlanId::try_new(vlan).unwrap())
        .ipv4(src, dst, 64)
        .icmpv4_echo_request(0x42, 1)
        .write(&mut out, b"abcdefgh")
        .unwrap();
    out
}

#[test]
fn connected_networks_talk_on_the_allowed_port_only() {
    let lab = Lab::new(&connected());
    // Each VRF holds the other's VMI host routes.
    assert!(matches!(
        lab.tables.route(RED, ip("10.9.0.20")),
        Some(crate::tables::NextHop::Leak { .. })
    ));
    assert!(matches!(
        lab.tables.route(BLUE, ip("10.0.1.20")),
        Some(crate::tables::NextHop::Leak { .. })
    ));
    // TCP 22 red -> blue, and the replies back.
    assert!(lab.delivered(&tcp(100, A, F, 40000, 22, true), 0, 500, MAC_F));
    assert!(lab.delivered(&tcp(500, F, A, 22, 40000, true), SEC, 100, MAC_A));
    assert!(lab.delivered(&tcp(100, A, F, 40000, 22, false), 2 * SEC, 500, MAC_F));
    // TCP 22 blue -> red (the rule is both ways).
    assert!(lab.delivered(&tcp(500, F, B, 50000, 22, true), 0, 200, MAC_B));
    assert!(lab.delivered(&tcp(200, B, F, 22, 50000, false), SEC, 500, MAC_F));
    // TCP 80 and ICMP: no rule, denied, in both directions.
    assert_eq!(
        lab.dropped(&tcp(100, A, F, 40001, 80, true), 0),
        DropReason::NetworkPolicyDenied
    );
    assert_eq!(
        lab.dropped(&tcp(500, F, A, 40001, 80, true), 0),
        DropReason::NetworkPolicyDenied
    );
    assert_eq!(
        lab.dropped(&ping(100, A, F), 0),
        DropReason::NetworkPolicyDenied
    );
    // A later packet of a denied flow: dropped, not counted as a flow again.
    assert_eq!(
        lab.dropped(&tcp(100, A, F, 40001, 80, false), SEC),
        DropReason::NetworkPolicyDenied
    );
    assert_eq!(lab.count(RED, Some(("ns/ssh", 0))), 1);
    assert_eq!(
        lab.count(RED, None),
        2,
        "TCP 80 and the ping, one flow each"
    );
    assert_eq!(lab.count(BLUE, Some(("ns/ssh", 0))), 1);
    assert_eq!(lab.count(BLUE, None), 1);
    assert_eq!(
        lab.counters
            .snapshot()
            .drops(DropReason::NetworkPolicyDenied),
        4
    );
    // Inside a network nothing changes: vmi-a to vmi-b on port 80.
    assert!(lab.delivered(&tcp(100, A, B, 40002, 80, true), 0, 200, MAC_B));
}

#[test]
fn without_links_the_networks_stay_separate() {
    let lab = Lab::new(&config(Vec::new()));
    assert!(lab.tables.network_links().is_empty());
    // red's route to 10.9.0.20 is its default route (the virtual gateway's
    // tap), never blue's VMI.
    assert!(!lab.delivered(&tcp(100, A, F, 40000, 22, true), 0, 500, MAC_F));
    // blue has no route to red at all.
    assert_eq!(
        lab.dropped(&tcp(500, F, A, 40000, 22, true), 0),
        DropReason::NoRoute
    );
    assert!(lab.flows.borrow().is_empty());
}

#[test]
fn one_way_rules_let_replies_back_but_not_new_flows() {
    // The policy's rule is red -> blue only: blue's link has no rule.
    let lab = Lab::new(&config(vec![
        link(RED, BLUE, &[("ns/ssh", ssh())]),
        link(BLUE, RED, &[("ns/ssh", Vec::new())]),
    ]));
    assert!(lab.delivered(&tcp(100, A, F, 40000, 22, true), 0, 500, MAC_F));
    assert!(lab.delivered(&tcp(500, F, A, 22, 40000, true), SEC, 100, MAC_A));
    assert_eq!(
        lab.dropped(&tcp(500, F, A, 40000, 22, true), SEC),
        DropReason::NetworkPolicyDenied
    );
    // An ICMP error about the allowed flow crosses back; one about no
    // allowed flow does not.
    let error = |quoted: &[u8]| {
        let mut e = Vec::new();
        PacketBuilder::ethernet2(MAC_F, GW)
            .single_vlan(VlanId::try_new(500).unwrap())
            .ipv4(F, A, 64)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::Port,
            ))
            .write(&mut e, quoted)
            .unwrap();
        e
    };
    let allowed = tcp(100, A, F, 40000, 22, false);
    assert!(lab.delivered(&error(&allowed[18..]), 2 * SEC, 100, MAC_A));
    let never = tcp(100, A, F, 40009, 23, false);
    assert_eq!(
        lab.dropped(&error(&never[18..]), 2 * SEC),
        DropReason::NetworkPolicyDenied
    );
}

#[test]
fn rules_decide_in_order_and_pass_defers_to_the_next_policy() {
    use NetworkAction::*;
    let first = vec![
        rule(0, Deny, RuleProtocol::Tcp, Some(22)),
        rule(1, Pass, RuleProtocol::Tcp, Some(443)),
        rule(2, Allow, RuleProtocol::Tcp, None),
    ];
    let second = vec![rule(0, Allow, RuleProtocol::Tcp, Some(443))];
    let lab = Lab::new(&config(vec![
        link(
            RED,
            BLUE,
            &[("ns/first", first.clone()), ("ns/second", second.clone())],
        ),
        link(BLUE, RED, &[("ns/first", first), ("ns/second", second)]),
    ]));
    assert_eq!(
        lab.dropped(&tcp(100, A, F, 40000, 22, true), 0),
        DropReason::NetworkPolicyDenied
    );
    assert!(lab.delivered(&tcp(100, A, F, 40001, 80, true), 0, 500, MAC_F));
    assert!(lab.delivered(&tcp(100, A, F, 40002, 443, true), 0, 500, MAC_F));
    assert_eq!(lab.count(RED, Some(("ns/first", 0))), 1);
    assert_eq!(
        lab.count(RED, Some(("ns/first", 1))),
        0,
        "Pass decides nothing"
    );
    assert_eq!(lab.count(RED, Some(("ns/first", 2))), 1);
    assert_eq!(lab.count(RED, Some(("ns/second", 0))), 1);
    assert_eq!(lab.count(RED, None), 0);
}

#[test]
fn a_policy_change_decides_existing_flows_again_and_removal_separates() {
    let mut lab = Lab::new(&connected());
    assert!(lab.delivered(&tcp(100, A, F, 40000, 22, true), 0, 500, MAC_F));
    // The same policy: flows and counters kept.
    lab.recompile(&connected());
    assert!(lab.delivered(&tcp(100, A, F, 40000, 22, false), SEC, 500, MAC_F));
    assert_eq!(lab.count(RED, Some(("ns/ssh", 0))), 1);
    // Port 2222 instead of 22: the running flow is refused at its next
    // packet, a new flow to 2222 passes.
    let moved = vec![rule(0, NetworkAction::Allow, RuleProtocol::Tcp, Some(2222))];
    lab.recompile(&config(vec![
        link(RED, BLUE, &[("ns/ssh", moved.clone())]),
        link(BLUE, RED, &[("ns/ssh", moved)]),
    ]));
    assert_eq!(
        lab.dropped(&tcp(100, A, F, 40000, 22, false), 2 * SEC),
        DropReason::NetworkPolicyDenied
    );
    assert!(lab.delivered(&tcp(100, A, F, 40003, 2222, true), 2 * SEC, 500, MAC_F));
    // The policy gone: no leaked route, the flow's entries never trusted.
    lab.recompile(&config(Vec::new()));
    assert!(!lab.delivered(&tcp(100, A, F, 40003, 2222, false), 3 * SEC, 500, MAC_F));
    assert_eq!(
        lab.dropped(&tcp(500, F, A, 2222, 40003, false), 3 * SEC),
        DropReason::NoRoute
    );
}

#[test]
fn a_networks_own_address_is_never_overridden_by_a_leaked_route() {
    // net2 overlaps net1 (vmi-c has vmi-a's 10.0.0.10): connecting them
    // leaves each its own VMI at that address.
    let lab = Lab::new(&config(vec![
        link(RED, "ns/net2", &[("ns/ssh", ssh())]),
        link("ns/net2", RED, &[("ns/ssh", ssh())]),
    ]));
    assert!(matches!(
        lab.tables.route(RED, ip("10.0.0.10")),
        Some(crate::tables::NextHop::Vmi(_))
    ));
    assert!(matches!(
        lab.tables.route("ns/net2", ip("10.0.1.20")),
        Some(crate::tables::NextHop::Leak { .. })
    ));
}

#[test]
fn every_network_policy_drop_reason_has_a_frame() {
    let lab = Lab::new(&across::across(Encapsulation::MplsOverUdp, ssh(), ssh()));
    let mut seen = Vec::new();
    seen.push(lab.dropped(&tcp(100, A, F, 40001, 80, true), 0));
    seen.push(lab.dropped_from(FABRIC, &across::forged(), 0));
    for reason in REASONS {
        assert!(seen.contains(reason), "no frame for {reason}");
        assert_eq!(
            lab.counters.snapshot().drops(*reason),
            seen.iter().filter(|r| *r == reason).count() as u64
        );
    }
}

/// What a frame of the established-connection tests carries.
#[derive(Clone, Copy)]
enum Segment {
    Syn(u16, u16),
    SynAck(u16, u16),
    Ack(u16, u16),
    Udp(u16, u16),
    EchoRequest(u16),
    EchoReply(u16),
}

impl Segment {
    /// The frame of this segment after `step`'s headers (Ethernet and IP;
    /// `v6`: which ICMP).
    fn frame(
        self,
        step: etherparse::PacketBuilderStep<etherparse::IpHeaders>,
        v6: bool,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Segment::Syn(s, d) => step.tcp(s, d, 1, 1000).syn().write(&mut out, b""),
            Segment::SynAck(s, d) => step.tcp(s, d, 1, 1000).syn().ack(2).write(&mut out, b""),
            Segment::Ack(s, d) => step.tcp(s, d, 2, 1000).ack(2).write(&mut out, b"data"),
            Segment::Udp(s, d) => step.udp(s, d).write(&mut out, b"query"),
            Segment::EchoRequest(id) if v6 => {
                step.icmpv6_echo_request(id, 1).write(&mut out, b"ping")
            }
            Segment::EchoRequest(id) => step.icmpv4_echo_request(id, 1).write(&mut out, b"ping"),
            Segment::EchoReply(id) if v6 => step.icmpv6_echo_reply(id, 1).write(&mut out, b"ping"),
            Segment::EchoReply(id) => step.icmpv4_echo_reply(id, 1).write(&mut out, b"ping"),
        }
        .unwrap();
        out
    }
}

/// A frame routed from the VMI on `from` (VLAN 100: vmi-a, 200: vmi-b,
/// 500: vmi-f) to the one on `to`, IPv4 or IPv6.
fn routed(from: u16, to: u16, v6: bool, segment: Segment) -> Vec<u8> {
    let eth =
        PacketBuilder::ethernet2(mac_of(from), GW).single_vlan(VlanId::try_new(from).unwrap());
    let step = if v6 {
        let addr = |vlan: u16| -> [u8; 16] {
            let text = match vlan {
                100 => "fd00::a",
                200 => "fd00::b",
                _ => "fd09::20",
            };
            text.parse::<core::net::Ipv6Addr>().unwrap().octets()
        };
        eth.ipv6(addr(from), addr(to), 64)
    } else {
        let addr = |vlan: u16| match vlan {
            100 => A,
            200 => B,
            _ => F,
        };
        eth.ipv4(addr(from), addr(to), 64)
    };
    segment.frame(step, v6)
}

/// The policy ns/open: TCP 22, UDP 53 and ICMP, both ways.
fn open() -> Vec<NetworkRule> {
    use NetworkAction::Allow;
    vec![
        rule(0, Allow, RuleProtocol::Tcp, Some(22)),
        rule(1, Allow, RuleProtocol::Udp, Some(53)),
        rule(2, Allow, RuleProtocol::Icmp, None),
    ]
}

/// red <-> blue by ns/open.
fn opened() -> NodeConfig {
    config(vec![
        link(RED, BLUE, &[("ns/open", open())]),
        link(BLUE, RED, &[("ns/open", open())]),
    ])
}

/// Once a connection's first packet and its answer crossed, its further
/// packets cross by the connection's flow entries alone, both ways, IPv4
/// and IPv6, TCP, UDP and ICMP echo, opened from either network: the
/// frames the XDP tier decides itself (`EstablishedLinked`). A denied
/// flow's later packets stay dropped.
#[test]
fn established_connections_cross_by_their_flows_alone() {
    let lab = Lab::new(&opened());
    let mut now = 0;
    let mut at = || {
        now += SEC;
        now
    };
    for (i, v6) in [false, true].into_iter().enumerate() {
        let i = i as u16;
        let what = format!("IPv6 {v6}");
        // Opened from red (vmi-a) and from blue (to vmi-b).
        for (red, i) in [(100, i), (200, i + 10)] {
            let to_blue = |s| routed(red, 500, v6, s);
            let to_red = |s| routed(500, red, v6, s);
            let (port, udp, id) = (40000 + i, 5000 + i, 0x100 + i);
            let (red_mac, f) = (mac_of(red), (500, MAC_F));
            let steps = if red == 100 {
                [
                    (to_blue(Segment::Syn(port, 22)), f, "SYN"),
                    (to_red(Segment::SynAck(22, port)), (red, red_mac), "SYN-ACK"),
                    (to_blue(Segment::Ack(port, 22)), f, "established"),
                    (
                        to_red(Segment::Ack(22, port)),
                        (red, red_mac),
                        "established back",
                    ),
                    (to_blue(Segment::Ack(port, 22)), f, "established again"),
                    (to_blue(Segment::Udp(udp, 53)), f, "UDP"),
                    (to_red(Segment::Udp(53, udp)), (red, red_mac), "UDP answer"),
                    (to_blue(Segment::Udp(udp, 53)), f, "UDP again"),
                    (to_blue(Segment::EchoRequest(id)), f, "ping"),
                    (to_red(Segment::EchoReply(id)), (red, red_mac), "pong"),
                    (to_blue(Segment::EchoRequest(id)), f, "ping again"),
                ]
            } else {
                [
                    (to_red(Segment::Syn(port, 22)), (red, red_mac), "SYN"),
                    (to_blue(Segment::SynAck(22, port)), f, "SYN-ACK"),
                    (
                        to_red(Segment::Ack(port, 22)),
                        (red, red_mac),
                        "established",
                    ),
                    (to_blue(Segment::Ack(22, port)), f, "established back"),
                    (
                        to_red(Segment::Ack(port, 22)),
                        (red, red_mac),
                        "established again",
                    ),
                    (to_red(Segment::Udp(udp, 53)), (red, red_mac), "UDP"),
                    (to_blue(Segment::Udp(53, udp)), f, "UDP answer"),
                    (to_red(Segment::Udp(udp, 53)), (red, red_mac), "UDP again"),
                    (to_red(Segment::EchoRequest(id)), (red, red_mac), "ping"),
                    (to_blue(Segment::EchoReply(id)), f, "pong"),
                    (
                        to_red(Segment::EchoRequest(id)),
                        (red, red_mac),
                        "ping again",
                    ),
                ]
            };
            for (frame, (vlan, mac), step) in steps {
                assert!(
                    lab.delivered(&frame, at(), vlan, mac),
                    "{what}, from VLAN {red}: {step}"
                );
            }
        }
        // TCP 80 has no rule: its first packet and the later ones dropped.
        for (segment, step) in [
            (Segment::Syn(41000 + i, 80), "SYN"),
            (Segment::Ack(41000 + i, 80), "later"),
        ] {
            assert_eq!(
                lab.dropped(&routed(100, 500, v6, segment), at()),
                DropReason::NetworkPolicyDenied,
                "{what}: TCP 80 {step}"
            );
        }
    }
    // Three flows per family and side, and the denied one per family.
    assert_eq!(lab.flows.borrow().len(), 2 * (2 * 3 + 1));
    assert_eq!(lab.count(RED, Some(("ns/open", 0))), 2);
    assert_eq!(lab.count(BLUE, Some(("ns/open", 2))), 2);
    assert_eq!(lab.count(RED, None), 2);
}

/// A policed VMI behind a link (vmi-f: its group lets TCP 22 in and
/// nothing else) is decided in its own zone too, after the link: an
/// established TCP 22 connection crosses by both zones' entries; UDP 53,
/// which the link allows and vmi-f's group does not, stays dropped as
/// vmi-f's ingress denial, its later packets included.
#[test]
fn a_policed_vmi_behind_a_link_is_decided_in_its_own_zone_too() {
    use crate::policy::{Policy, Rule, RuleId};
    let mut c = opened();
    c.policies.insert(
        "ns/vmi-f".into(),
        Policy {
            groups: vec!["ssh-in".into()],
            ingress: vec![Rule {
                id: RuleId { group: 0, index: 0 },
                ipv6: false,
                protocol: RuleProtocol::Tcp,
                ports: Some(PortRange { min: 22, max: 22 }),
                remote: None,
            }],
            egress: Vec::new(),
        },
    );
    let lab = Lab::new(&c);
    let to_f = |s| routed(100, 500, false, s);
    let to_a = |s| routed(500, 100, false, s);
    let mut now = 0;
    let mut at = || {
        now += SEC;
        now
    };
    for (frame, to_blue, step) in [
        (to_f(Segment::Syn(40000, 22)), true, "SYN"),
        (to_a(Segment::SynAck(22, 40000)), false, "SYN-ACK"),
        (to_f(Segment::Ack(40000, 22)), true, "established"),
        (to_a(Segment::Ack(22, 40000)), false, "established back"),
        (to_f(Segment::Ack(40000, 22)), true, "established again"),
    ] {
        let (vlan, mac) = if to_blue { (500, MAC_F) } else { (100, MAC_A) };
        assert!(lab.delivered(&frame, at(), vlan, mac), "{step}");
    }
    for step in ["first", "later"] {
        assert_eq!(
            lab.dropped(&to_f(Segment::Udp(5000, 53)), at()),
            DropReason::PolicyIngressDenied,
            "UDP 53, {step}"
        );
    }
    // The link's TCP and UDP flows; vmi-f's TCP flow (allowed) and UDP
    // flow (denied).
    assert_eq!(lab.flows.borrow().len(), 4);
}
