//! Security-group tests (issue 18): a policed VMI's first packets decided
//! by its rules and remembered in the flow table, replies of allowed flows
//! passing, ICMP errors about allowed flows passing, rule changes deciding
//! existing flows again, a full table counted, established flows between
//! two policed VMIs (routed and bridged, IPv4 and IPv6). Frames are built
//! by etherparse on the shared fixture: vmi-a (10.0.0.10, fd00::a, port 1
//! VLAN 100, not policed unless a test says so) and vmi-b (10.0.1.20,
//! fd00::b, port 1 VLAN 200, policed), routed to each other in net1;
//! vmi-d (10.0.0.40) has no logical interface.
//!
//! Every frame is recorded for the XDP tier's differential test with the
//! flow table as the agent's mirror holds it: a frame that passed by
//! established entries alone must be decided alike in the kernel.

use core::cell::RefCell;

use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{PacketBuilder, VlanId};

use super::tests::*;
use super::*;
use crate::config::*;
use crate::flow::{FlowConfig, FlowKey, FlowTable, FlowValue};
use crate::policy::{
    Direction, Policy, PortRange, Rule, RuleCount, RuleId, RuleProtocol, VmiPolicy,
};
use crate::tables::Tables;
use core::time::Duration;

pub(crate) mod differential;

const SEC: u64 = 1_000_000_000;
const A: [u8; 4] = [10, 0, 0, 10];
const B: [u8; 4] = [10, 0, 1, 20];

/// The drop reasons this file's frames cover (the shared every-reason
/// test leaves them here).
pub(crate) const REASONS: &[DropReason] = &[
    DropReason::PolicyIngressDenied,
    DropReason::PolicyEgressDenied,
    DropReason::PolicyUnsupported,
];

fn rule(
    index: u16,
    protocol: RuleProtocol,
    ports: Option<(u16, u16)>,
    remote: Option<&str>,
) -> Rule {
    Rule {
        id: RuleId { group: 0, index },
        ipv6: false,
        protocol,
        ports: ports.map(|(min, max)| PortRange { min, max }),
        remote: remote.map(|r| vec![prefix(r)]),
    }
}

/// vmi-b's group "web": ICMP and TCP 80 in from 10.0.0.0/24; out: UDP only.
fn web(ports: (u16, u16)) -> Policy {
    Policy {
        groups: vec!["web".into()],
        ingress: vec![
            rule(0, RuleProtocol::Icmp, None, Some("10.0.0.0/24")),
            rule(1, RuleProtocol::Tcp, Some(ports), Some("10.0.0.0/24")),
        ],
        egress: vec![rule(0, RuleProtocol::Udp, None, None)],
    }
}

fn config(policy: Policy) -> NodeConfig {
    let mut c = fixture();
    c.policies.insert("ns/vmi-b".into(), policy);
    c
}

struct Sg {
    tables: Tables,
    counters: Counters,
    flows: RefCell<FlowTable>,
}

impl Sg {
    fn new(config: &NodeConfig, capacity: usize) -> Sg {
        let (tables, rejected) = Tables::compile(config);
        assert!(rejected.is_empty(), "unexpected rejections: {rejected:?}");
        Sg {
            tables,
            counters: Counters::new(),
            flows: RefCell::new(FlowTable::new(FlowConfig {
                capacity,
                ..FlowConfig::default()
            })),
        }
    }

    /// The same flows under the tables of another configuration.
    fn recompile(&mut self, config: &NodeConfig) {
        let (tables, rejected) = Tables::recompile(config, &self.tables);
        assert!(rejected.is_empty());
        self.tables = tables;
    }

    fn run(&self, frame: &[u8], now: u64) -> Verdict {
        self.run_on(P1, frame, now)
    }

    fn run_on(&self, port: PortId, frame: &[u8], now: u64) -> Verdict {
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
        // entries (and updates their last-seen and counts). One that
        // passed by established entries alone is the kernel's.
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
        verdict
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

    /// Transmitted to `vlan` of port 1.
    fn passes(&self, frame: &[u8], now: u64) -> bool {
        matches!(self.run(frame, now), Verdict::Transmit { port, .. } if port == P1)
    }

    fn dropped(&self, frame: &[u8], now: u64) -> DropReason {
        match self.run(frame, now) {
            Verdict::Drop(reason) => reason,
            other => panic!("expected a drop, got {other:?}"),
        }
    }

    fn policy(&self) -> &VmiPolicy {
        self.policy_of("ns/vmi-b")
    }

    fn policy_of(&self, key: &str) -> &VmiPolicy {
        let id = self.tables.vmi_id(key).unwrap();
        self.tables.vmi(id).unwrap().policy().unwrap()
    }

    fn counts(&self) -> Vec<RuleCount> {
        let p = self.policy();
        p.counters.snapshot(&p.policy)
    }

    fn count(&self, direction: Direction, rule: Option<u16>) -> u64 {
        self.counts()
            .into_iter()
            .find(|c| c.direction == direction && c.rule.as_ref().map(|r| r.1) == rule)
            .map_or(0, |c| c.count)
    }
}

/// A TCP segment routed from `src` (VLAN `vlan`) to `dst`.
fn tcp(vlan: u16, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, syn: bool) -> Vec<u8> {
    let mac = if vlan == 100 { MAC_A } else { MAC_B };
    let mut out = Vec::new();
    let step = PacketBuilder::ethernet2(mac, GW)
        .single_vlan(VlanId::try_new(vlan).unwrap())
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1, 1000);
    let step = if syn { step.syn() } else { step.ack(1) };
    step.write(&mut out, b"").unwrap();
    out
}

fn udp(vlan: u16, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mac = if vlan == 100 { MAC_A } else { MAC_B };
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac, GW)
        .single_vlan(VlanId::try_new(vlan).unwrap())
        .ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut out, b"query")
        .unwrap();
    out
}

#[test]
fn an_allowed_first_packet_opens_the_flow_and_its_replies_pass() {
    let sg = Sg::new(&config(web((80, 80))), 16);
    assert!(sg.passes(&tcp(100, A, B, 40000, 80, true), 0));
    // Both entries, in vmi-b's zone.
    assert_eq!(sg.flows.borrow().len(), 1);
    let (_, key, _) = sg
        .flows
        .borrow()
        .flows()
        .map(|(i, k, v)| (i, *k, *v))
        .next()
        .unwrap();
    assert_eq!(key.vrf, sg.policy().zone);
    // vmi-b's answer: its egress allows UDP only, but this is a reply.
    assert!(sg.passes(&tcp(200, B, A, 80, 40000, true), SEC));
    assert!(sg.passes(&tcp(100, A, B, 40000, 80, false), 2 * SEC));
    assert_eq!(
        sg.count(Direction::Ingress, Some(1)),
        1,
        "one flow by rule 1"
    );
    // Port 81: no rule, the default deny, remembered and counted per packet.
    assert_eq!(
        sg.dropped(&tcp(100, A, B, 40001, 81, true), 0),
        DropReason::PolicyIngressDenied
    );
    assert_eq!(
        sg.dropped(&tcp(100, A, B, 40001, 81, true), SEC),
        DropReason::PolicyIngressDenied
    );
    assert_eq!(sg.count(Direction::Ingress, None), 2);
    assert_eq!(
        sg.counters
            .snapshot()
            .drops(DropReason::PolicyIngressDenied),
        2
    );
    // vmi-b opening TCP itself: its egress allows only UDP.
    assert_eq!(
        sg.dropped(&tcp(200, B, A, 50000, 22, true), 0),
        DropReason::PolicyEgressDenied
    );
    assert_eq!(sg.count(Direction::Egress, None), 1);
}

#[test]
fn egress_flows_let_their_replies_in_and_unsolicited_packets_stay_out() {
    let sg = Sg::new(&config(web((80, 80))), 16);
    assert!(sg.passes(&udp(200, B, A, 5353, 53), 0));
    assert_eq!(sg.count(Direction::Egress, Some(0)), 1);
    // The answer comes back although no ingress rule allows UDP.
    assert!(sg.passes(&udp(100, A, B, 53, 5353), SEC));
    // The same ports from elsewhere are another flow: denied.
    assert_eq!(
        sg.dropped(&udp(100, A, B, 54, 5353), SEC),
        DropReason::PolicyIngressDenied
    );
    // The reverse of a denied flow is decided anew in its own direction:
    // vmi-b may send UDP to port 54.
    assert!(sg.passes(&udp(200, B, A, 5353, 54), 2 * SEC));
    // An unpoliced pair is untouched, and keeps no state.
    let plain = Sg::new(&fixture(), 16);
    assert!(plain.passes(&tcp(100, A, B, 40000, 81, true), 0));
    assert!(plain.flows.borrow().is_empty());
}

#[test]
fn icmp_echo_and_errors_about_an_allowed_flow_pass() {
    let sg = Sg::new(&config(web((80, 80))), 16);
    let mut ping = Vec::new();
    PacketBuilder::ethernet2(MAC_A, GW)
        .single_vlan(VlanId::try_new(100).unwrap())
        .ipv4(A, B, 64)
        .icmpv4_echo_request(0x77, 1)
        .write(&mut ping, b"abcdefgh")
        .unwrap();
    assert!(sg.passes(&ping, 0));
    assert_eq!(sg.count(Direction::Ingress, Some(0)), 1);
    let mut pong = Vec::new();
    PacketBuilder::ethernet2(MAC_B, GW)
        .single_vlan(VlanId::try_new(200).unwrap())
        .ipv4(B, A, 64)
        .icmpv4_echo_reply(0x77, 1)
        .write(&mut pong, b"abcdefgh")
        .unwrap();
    assert!(sg.passes(&pong, SEC), "the echo reply is the flow's return");
    // vmi-b's UDP out is refused by vmi-a's host: the port unreachable
    // quoting it is about an allowed flow.
    let out = udp(200, B, A, 5353, 53);
    assert!(sg.passes(&out, 0));
    let error = |quoted: &[u8]| {
        let mut e = Vec::new();
        PacketBuilder::ethernet2(MAC_A, GW)
            .single_vlan(VlanId::try_new(100).unwrap())
            .ipv4(A, B, 64)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::Port,
            ))
            .write(&mut e, quoted)
            .unwrap();
        e
    };
    // The quote: the IP packet as vmi-b sent it (after the 18-byte tag header).
    assert!(sg.passes(&error(&out[18..]), SEC));
    // About a flow that never was: denied.
    let never = udp(200, B, A, 6000, 53);
    assert_eq!(
        sg.dropped(&error(&never[18..]), SEC),
        DropReason::PolicyIngressDenied
    );
}

#[test]
fn a_rule_change_decides_existing_flows_again() {
    let mut sg = Sg::new(&config(web((80, 80))), 16);
    assert!(sg.passes(&tcp(100, A, B, 40000, 80, true), 0));
    assert_eq!(
        sg.dropped(&tcp(100, A, B, 40001, 81, true), 0),
        DropReason::PolicyIngressDenied
    );
    let before = sg.policy().generation;
    // The same rules: same generation, flows and counters kept.
    sg.recompile(&config(web((80, 80))));
    assert_eq!(sg.policy().generation, before);
    assert_eq!(sg.count(Direction::Ingress, Some(1)), 1);
    // Allow 81 instead of 80: the denied flow passes at its next packet,
    // the allowed one is refused at its next packet.
    sg.recompile(&config(web((81, 81))));
    assert_ne!(sg.policy().generation, before);
    assert!(sg.passes(&tcp(100, A, B, 40001, 81, false), SEC));
    assert_eq!(
        sg.dropped(&tcp(100, A, B, 40000, 80, false), SEC),
        DropReason::PolicyIngressDenied
    );
    // vmi-b's groups removed (no policy): nothing is decided any more, and
    // the entries of before are never trusted again under other rules.
    sg.recompile(&fixture());
    assert!(
        sg.tables
            .vmi(sg.tables.vmi_id("ns/vmi-b").unwrap())
            .unwrap()
            .policy()
            .is_none()
    );
    assert!(sg.passes(&tcp(100, A, B, 40000, 80, false), 2 * SEC));
    sg.recompile(&config(web((22, 22))));
    assert_eq!(
        sg.dropped(&tcp(100, A, B, 40001, 81, false), 3 * SEC),
        DropReason::PolicyIngressDenied
    );
}

#[test]
fn idle_flows_expire_and_a_full_table_is_a_counted_drop() {
    let sg = Sg::new(&config(web((80, 81))), 1);
    assert!(sg.passes(&tcp(100, A, B, 40000, 80, true), 0));
    assert_eq!(
        sg.dropped(&tcp(100, A, B, 40001, 81, true), 0),
        DropReason::FlowTableFull
    );
    assert_eq!(sg.flows.borrow().stats().snapshot().table_full, 1);
    assert_eq!(sg.counters.snapshot().drops(DropReason::FlowTableFull), 1);
    // A denied first packet is dropped as denied, full table or not.
    assert_eq!(
        sg.dropped(&tcp(100, A, B, 40002, 82, true), 0),
        DropReason::PolicyIngressDenied
    );
    // Once the first flow is idle past its timeout (TCP not established:
    // 240 s), the sweep frees its place.
    assert_eq!(sg.flows.borrow_mut().expire(241 * SEC, 8), 1);
    assert!(sg.passes(&tcp(100, A, B, 40001, 81, true), 241 * SEC));
    // A packet of the swept flow is a first packet again: the table is
    // full again.
    assert_eq!(
        sg.dropped(&tcp(100, A, B, 40000, 80, false), 500 * SEC),
        DropReason::FlowTableFull
    );
}

#[test]
fn two_policed_vmis_of_the_node_decide_each_in_its_own_zone() {
    let mut c = config(web((80, 81)));
    // vmi-a may open TCP 80 only, and accepts nothing.
    let a = Policy {
        groups: vec!["client".into()],
        ingress: Vec::new(),
        egress: vec![rule(0, RuleProtocol::Tcp, Some((80, 80)), None)],
    };
    c.policies.insert("ns/vmi-a".into(), a);
    let sg = Sg::new(&c, 16);
    assert_ne!(sg.policy_of("ns/vmi-a").zone, sg.policy().zone);
    assert!(sg.passes(&tcp(100, A, B, 40000, 80, true), 0));
    // Decided for vmi-a's egress and for vmi-b's ingress: two flows.
    assert_eq!(sg.flows.borrow().len(), 2);
    assert!(
        sg.passes(&tcp(200, B, A, 80, 40000, true), SEC),
        "the reply, in both zones"
    );
    // vmi-b allows 81 in, but vmi-a may not open it.
    assert_eq!(
        sg.dropped(&tcp(100, A, B, 40001, 81, true), SEC),
        DropReason::PolicyEgressDenied
    );
}

#[test]
fn a_routed_label_from_a_peer_is_decided_by_the_ingress_rules() {
    let mut c = fixture();
    let a = Policy {
        groups: vec!["dns".into()],
        ingress: vec![rule(
            0,
            RuleProtocol::Udp,
            Some((53, 53)),
            Some("10.0.0.60/32"),
        )],
        egress: Vec::new(),
    };
    c.policies.insert("ns/vmi-a".into(), a);
    let (tables, rejected) = Tables::compile(&c);
    assert!(rejected.is_empty());
    tables.set_next_hop_mac(
        core::net::IpAddr::from(NODE_B),
        Some(trunkline_wire::EthernetAddress(NEXT_HOP_MAC)),
    );
    let sg = Sg {
        tables,
        counters: Counters::new(),
        flows: RefCell::new(FlowTable::new(FlowConfig::default())),
    };
    let from = |src: [u8; 4]| {
        let inner = udp(100, src, A, 40000, 53);
        // The inner IP packet after the 18-byte tagged Ethernet header.
        super::tests_overlay::mpls_from(NODE_B, LABEL_A, &inner[18..])
    };
    assert!(matches!(
        sg.run_on(FABRIC, &from([10, 0, 0, 60]), 0),
        Verdict::Transmit { port: P1, .. }
    ));
    assert_eq!(
        sg.run_on(FABRIC, &from([10, 0, 0, 61]), 0),
        Verdict::Drop(DropReason::PolicyIngressDenied)
    );
    // The allowed flow's next packets pass by its entry (in the XDP tier,
    // the routed label's delivery checks it).
    for at in 1..=2 {
        assert!(matches!(
            sg.run_on(FABRIC, &from([10, 0, 0, 60]), at * SEC),
            Verdict::Transmit { port: P1, .. }
        ));
    }
}

#[test]
fn every_policy_drop_reason_has_a_frame() {
    let sg = Sg::new(&config(web((80, 80))), 16);
    let mut seen = vec![
        sg.dropped(&tcp(100, A, B, 40001, 81, true), 0),
        sg.dropped(&tcp(200, B, A, 40001, 81, true), 0),
    ];
    // A fragment of vmi-b's: no ports to decide on.
    let mut frag = udp(200, B, A, 5353, 53);
    frag[18 + 6] = 0x20; // more fragments
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&frag[18..])
        .unwrap()
        .to_header();
    let sum = ip.calc_header_checksum();
    frag[18 + 10..18 + 12].copy_from_slice(&sum.to_be_bytes());
    seen.push(sg.dropped(&frag, 0));
    for reason in REASONS {
        assert!(seen.contains(reason), "no frame for {reason}");
        assert_eq!(
            sg.counters.snapshot().drops(*reason),
            1,
            "counter of {reason}"
        );
    }
}

/// What a frame of `established_flows_between_policed_vmis_pass` carries.
#[derive(Clone, Copy)]
enum Segment {
    Syn(u16, u16),
    Ack(u16, u16),
    Udp(u16, u16),
    EchoRequest(u16),
    EchoReply(u16),
}

/// A frame from vmi-a (VLAN 100) to vmi-b or back (VLAN 200), IPv4 or
/// IPv6, to MAC `to`: the gateway's (routed) or the other VMI's (bridged).
fn between(vlan: u16, to: MacAddress, v6: bool, segment: Segment) -> Vec<u8> {
    let from_a = vlan == 100;
    let mac = if from_a { MAC_A } else { MAC_B };
    let eth = PacketBuilder::ethernet2(mac, to).single_vlan(VlanId::try_new(vlan).unwrap());
    let step = if v6 {
        let a: [u8; 16] = "fd00::a".parse::<core::net::Ipv6Addr>().unwrap().octets();
        let b: [u8; 16] = "fd00::b".parse::<core::net::Ipv6Addr>().unwrap().octets();
        let (src, dst) = if from_a { (a, b) } else { (b, a) };
        eth.ipv6(src, dst, 64)
    } else {
        let (src, dst) = if from_a { (A, B) } else { (B, A) };
        eth.ipv4(src, dst, 64)
    };
    let mut out = Vec::new();
    match segment {
        Segment::Syn(s, d) => step.tcp(s, d, 1, 1000).syn().write(&mut out, b""),
        Segment::Ack(s, d) => step.tcp(s, d, 2, 1000).ack(2).write(&mut out, b"data"),
        Segment::Udp(s, d) => step.udp(s, d).write(&mut out, b"query"),
        Segment::EchoRequest(id) if v6 => step.icmpv6_echo_request(id, 1).write(&mut out, b"ping"),
        Segment::EchoRequest(id) => step.icmpv4_echo_request(id, 1).write(&mut out, b"ping"),
        Segment::EchoReply(id) if v6 => step.icmpv6_echo_reply(id, 1).write(&mut out, b"ping"),
        Segment::EchoReply(id) => step.icmpv4_echo_reply(id, 1).write(&mut out, b"ping"),
    }
    .unwrap();
    out
}

/// Rules for both families.
fn both_families(rules: &[(RuleProtocol, Option<(u16, u16)>)]) -> Vec<Rule> {
    [false, true]
        .into_iter()
        .flat_map(|ipv6| rules.iter().map(move |r| (ipv6, *r)))
        .enumerate()
        .map(|(i, (ipv6, (protocol, ports)))| Rule {
            ipv6,
            ..rule(i as u16, protocol, ports, None)
        })
        .collect()
}

/// vmi-a may open TCP 80, UDP 53 and pings to anyone and accepts nothing;
/// vmi-b accepts them from anyone and opens nothing. Once a flow's first
/// packet and its reply passed (in both zones), its further packets pass
/// by the two zones' entries alone, routed and bridged, IPv4 and IPv6: the
/// frames the XDP tier decides itself (`EstablishedPoliced`).
#[test]
fn established_flows_between_policed_vmis_pass() {
    let services = [
        (RuleProtocol::Tcp, Some((80, 80))),
        (RuleProtocol::Udp, Some((53, 53))),
        (RuleProtocol::Icmp, None),
    ];
    let mut c = fixture();
    c.policies.insert(
        "ns/vmi-a".into(),
        Policy {
            groups: vec!["client".into()],
            ingress: Vec::new(),
            egress: both_families(&services),
        },
    );
    c.policies.insert(
        "ns/vmi-b".into(),
        Policy {
            groups: vec!["server".into()],
            ingress: both_families(&services),
            egress: Vec::new(),
        },
    );
    let sg = Sg::new(&c, 64);
    let mut now = 0;
    let mut at = || {
        now += SEC;
        now
    };
    for (i, (routed, v6)) in [(true, false), (false, false), (true, true), (false, true)]
        .into_iter()
        .enumerate()
    {
        let i = i as u16;
        let (to_b, to_a) = if routed { (GW, GW) } else { (MAC_B, MAC_A) };
        let a = |s| between(100, to_b, v6, s);
        let b = |s| between(200, to_a, v6, s);
        let (port, udp, id) = (40000 + i, 5000 + i, 0x100 + i);
        let what = format!("routed {routed}, IPv6 {v6}");
        for (frame, step) in [
            (a(Segment::Syn(port, 80)), "SYN"),
            (b(Segment::Syn(80, port)), "SYN back"),
            (a(Segment::Ack(port, 80)), "established"),
            (b(Segment::Ack(80, port)), "established back"),
            (a(Segment::Ack(port, 80)), "established again"),
            (a(Segment::Udp(udp, 53)), "UDP"),
            (b(Segment::Udp(53, udp)), "UDP answer"),
            (a(Segment::Udp(udp, 53)), "UDP again"),
            (a(Segment::EchoRequest(id)), "ping"),
            (b(Segment::EchoReply(id)), "pong"),
            (a(Segment::EchoRequest(id)), "ping again"),
        ] {
            assert!(sg.passes(&frame, at()), "{what}: {step}");
        }
        // vmi-b opening what vmi-a accepts nothing of: refused.
        assert_eq!(
            sg.dropped(&b(Segment::Udp(53, 6000 + i)), at()),
            DropReason::PolicyEgressDenied,
            "{what}"
        );
    }
    // Three flows per case, each in both zones, and the denied one.
    assert_eq!(sg.flows.borrow().len(), 4 * (3 * 2 + 1));
}
