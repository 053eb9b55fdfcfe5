//! The differential test of the XDP tier: frames through the Rust pipeline
//! (the specification) and through the loaded kernel program (BPF_PROG_RUN
//! on the real kernel) with the same tables; the program must reach the
//! same verdict, egress, bytes and counters, or hand the frame off
//! untouched. Needs root (namespaces, BPF); CI runs as root.
//!
//! ```text
//!  every test of process/tests.rs, tests_overlay.rs, tests_first_minute.rs,
//!  tests_north_south.rs and tests_ha.rs, recorded
//!     Rig::run_with ──record──> Case { image of the tables, port, frame, verdict, bytes }
//!  replay, in a network namespace with one veth per port (ifindex 1000 + port id):
//!     Mirror::install(image) ──> the tier's maps (generation swap, as the agent does)
//!     BPF_PROG_RUN(frame, ingress) ──> trace (decision), bytes out, counter deltas
//!     compare; tally per frame class the share decided in the kernel
//!  random frames (proptest): mutations of every recorded frame, arbitrary bytes
//!  the fuzz corpora (pipeline, wire) and mutations of them
//! ```
//!
//! Kernel decisions required for every frame of these classes: routed IPv4
//! and IPv6 to a VMI of this node, bridged between VMIs of this node, tunnel
//! encapsulation, tunnel decapsulation, and the established flows of SNAT,
//! of policed VMIs and of network policies' connections between two
//! networks of this node.
//!
//! Gateway HA's cells (a group's role, a multi-homed VMI's path and `seen`
//! mark) are not in the image: frames of tables with an HA group run under
//! every combination of the cells against the one image those tables give,
//! and must be decided alike under each or handed off.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use trunkline_xdp::tier::{Tier, TierMaps, TierPort, TierPortKind};

use super::Image;
use super::flows::{FLOWS_MAP, LAST_SEEN_AT};
use super::layout::{TRACE_DROP, TRACE_HANDOFF, TRACE_TX, TierMap};
use super::{KERNEL_DROPS, KernelCounters, MapWriter, Mirror, Slots, vmi_from_per_cpu};
use crate::config::PortId;
use crate::counters::{CounterSnapshot, VmiCounterSnapshot};
use crate::flow::{FlowKey, FlowValue};
use crate::process::tests::{FABRIC, GW, P1, P2, Rig, fixture};
use crate::process::tests_ha::differential::{self as ha, MEMBER_PORT};
use crate::process::{HEADROOM, parse_l2};
use crate::tables::{PortRole, Tables};
use crate::verdict::{DropReason, Verdict};
use std::time::Duration;

/// The interface index of a port in the test's namespace.
fn ifindex(port: PortId) -> Option<u32> {
    Some(1000 + u32::from(port.0))
}

/// The ports that get an interface: the fixture's trunks and fabric, and
/// the HA tables' member port.
const PORTS: [PortId; 4] = [P1, P2, FABRIC, MEMBER_PORT];

/// The fixture's ports (the fuzz corpora run on these).
const FIXTURE_PORTS: [PortId; 3] = [P1, P2, FABRIC];

/// A frame a test processed, with what the pipeline decided.
#[derive(Clone)]
struct Case {
    test: &'static str,
    image: Arc<Image>,
    underlay: Option<IpAddr>,
    port: PortId,
    /// The port's role in these tables: only trunks and the underlay's
    /// fabric port see XDP.
    xdp_port: bool,
    frame: Vec<u8>,
    headroom: usize,
    verdict: Verdict,
    out: Vec<u8>,
    /// The counter slots of the source VMI and of the VMI sent to.
    rx_slot: Option<u32>,
    tx_slot: Option<u32>,
    /// A class the frame belongs to whatever the verdict (see
    /// [`Class::of`]).
    special: Option<Class>,
    /// Whether the pipeline wrote a runtime cell of the tables (an address
    /// pair's holder, a multi-homed VMI's `seen` mark, the flow table's
    /// flows) while deciding the frame: the program cannot, so it must
    /// hand such a frame off.
    moved_a_cell: bool,
    /// The flow map as the agent's mirror holds it when the frame comes:
    /// every flow table entry before it, as (key, entry, age in ns at the
    /// frame's time: its last-seen is written that long before the run).
    flows: Arc<Vec<FlowEntry>>,
}

/// A kernel flow map entry of a case: key bytes, entry bytes, age.
type FlowEntry = (Vec<u8>, Vec<u8>, u64);

/// The flow table as a frame found it (tests with a flow table).
#[derive(Clone, Copy)]
pub(crate) struct Flows<'a> {
    /// Every entry (both directions), with its flow's idle timeout.
    pub(crate) entries: &'a [(FlowKey, FlowValue, Duration)],
    /// The pipeline's clock for the frame.
    pub(crate) now: u64,
    /// Whether the pipeline decided the frame by an established flow, one
    /// the kernel must translate itself (IPv4 or IPv6 TCP without SYN, FIN
    /// or RST, UDP, ICMP or ICMPv6 echo; nothing in the flow table changed
    /// but last-seen and counts; transmitted).
    pub(crate) established: bool,
}

impl Flows<'_> {
    const NONE: Flows<'static> = Flows {
        entries: &[],
        now: 0,
        established: false,
    };
}

struct Recording {
    test: &'static str,
    cases: Vec<Case>,
    /// The last image built, reused while the tables do not change.
    last: Option<Arc<Image>>,
}

thread_local! {
    static RECORDING: RefCell<Option<Recording>> = const { RefCell::new(None) };
    /// Whether the last frame `Rig::run_with` ran moved a runtime cell.
    static LAST_MOVED: Cell<bool> = const { Cell::new(false) };
}

/// Builds a case from a frame `Rig::run_with` just processed.
#[allow(clippy::too_many_arguments)]
fn case(
    test: &'static str,
    last: Option<&Arc<Image>>,
    tables: &Tables,
    port: PortId,
    frame: &[u8],
    headroom: usize,
    verdict: Verdict,
    out: &[u8],
    moved_a_cell: bool,
    flows: Flows<'_>,
) -> Case {
    let mut slots = Slots::default();
    let built = Image::build(tables, &mut slots, ifindex);
    let mirrored = flows
        .entries
        .iter()
        .filter_map(|(key, value, idle)| {
            let entry = super::flows::entry(tables, &slots, key, value, *idle)?;
            Some((
                super::flows::key_bytes(key).to_vec(),
                entry.to_vec(),
                flows.now.saturating_sub(value.last_seen_ns),
            ))
        })
        .collect();
    let image = match last {
        Some(last) if **last == built => last.clone(),
        _ => Arc::new(built),
    };
    let slot_of = |vmi: Option<crate::VmiId>| {
        vmi.and_then(|id| tables.vmi(id))
            .and_then(|v| slots.vmi(v.key()))
    };
    let source = parse_l2(frame)
        .ok()
        .and_then(|l2| tables.vmi_at(port, l2.vlan()));
    let tx = match verdict {
        Verdict::Transmit { vmi, .. } => vmi,
        _ => None,
    };
    let xdp_port = match tables.port(port).map(|p| &p.role) {
        Some(PortRole::Gateway { .. }) => true,
        Some(PortRole::Fabric) => tables.underlay().is_some_and(|(u, _)| u == port),
        _ => false,
    };
    Case {
        flows: Arc::new(mirrored),
        special: flows
            .established
            .then(|| match parse_l2(frame).map(|l2| l2.ethertype) {
                // Into another network of this node by a link: the link's
                // flow (and the VMIs' zones, when policed).
                _ if leaked(tables, port, frame) == Some(false) => Class::EstablishedLinked,
                // To a VMI on another node by a link: the link's flow,
                // then the tunnel.
                _ if leaked(tables, port, frame) == Some(true) => Class::EstablishedLinkedRemote,
                // A tunnel packet into a linked network, by the link its
                // source's route names.
                _ if linked(tables, port).is_some() => Class::EstablishedLinkedReceived,
                _ if policed(tables, port, frame, tx).is_some() => Class::EstablishedPoliced,
                Ok(trunkline_wire::ethernet::EtherType::Ipv6) => Class::EstablishedSnat6,
                _ => Class::EstablishedSnat,
            })
            .or_else(|| north_south(test))
            .or_else(|| policed(tables, port, frame, tx))
            .or_else(|| gateway_ha(tables))
            .or_else(|| linked(tables, port))
            .or_else(|| special(tables, port, frame)),
        moved_a_cell,
        test,
        image,
        underlay: tables.underlay().map(|(_, addr)| addr),
        port,
        xdp_port,
        frame: frame.to_vec(),
        headroom,
        verdict,
        out: out.to_vec(),
        rx_slot: slot_of(source),
        tx_slot: slot_of(tx),
    }
}

/// The class of every frame of the north-south tests.
fn north_south(test: &str) -> Option<Class> {
    crate::process::tests_north_south::differential::TESTS
        .iter()
        .any(|(name, _)| *name == test)
        .then_some(Class::NorthSouth)
}

/// The class of a frame from a policed VMI or transmitted to one.
fn policed(tables: &Tables, port: PortId, frame: &[u8], tx: Option<crate::VmiId>) -> Option<Class> {
    let from = parse_l2(frame)
        .ok()
        .and_then(|l2| tables.vmi_at(port, l2.vlan()));
    [from, tx]
        .into_iter()
        .flatten()
        .filter_map(|id| tables.vmi(id))
        .any(|v| v.policy().is_some())
        .then_some(Class::Policed)
}

/// The class of a frame from the fabric into tables where a network
/// policy connects a network: a tunnel packet into such a network is
/// decided by its source's route (`VRF_LINKED`), in the kernel only by an
/// established flow of a connected VMI's link (or as the network's own).
fn linked(tables: &Tables, port: PortId) -> Option<Class> {
    let fabric = tables.underlay().map(|(p, _)| p) == Some(port);
    (fabric && tables.vrfs.iter().any(|v| v.linked)).then_some(Class::NetworkPolicy)
}

/// Whether the frame, from a VMI, is routed (to the gateway's MAC) by a
/// network policy's link: `Some(false)` to a VMI of this node
/// (`NextHop::Leak`), `Some(true)` through a tunnel (`LeakRemote`).
fn leaked(tables: &Tables, port: PortId, frame: &[u8]) -> Option<bool> {
    use trunkline_wire::ethernet::EtherType;
    use trunkline_wire::{ipv4, ipv6};
    let l2 = parse_l2(frame).ok()?;
    if l2.dst != tables.gateway_mac {
        return None;
    }
    let l3 = &frame[l2.header_len..];
    let dst: IpAddr = match l2.ethertype {
        EtherType::Ipv4 => ipv4::Packet::new_checked(l3).ok()?.dst_addr().into(),
        EtherType::Ipv6 => ipv6::Packet::new_checked(l3).ok()?.dst_addr().into(),
        _ => return None,
    };
    let vmi = tables
        .vmi_at(port, l2.vlan())
        .and_then(|id| tables.vmi(id))?;
    match tables.route(&tables.vrfs[vmi.vrf].network, dst) {
        Some(crate::tables::NextHop::Leak { .. }) => Some(false),
        Some(crate::tables::NextHop::LeakRemote { .. }) => Some(true),
        _ => None,
    }
}

/// The class of every frame run against tables with an HA group.
fn gateway_ha(tables: &Tables) -> Option<Class> {
    tables
        .ha_groups()
        .next()
        .is_some()
        .then_some(Class::GatewayHa)
}

/// The classes a frame belongs to by what it is rather than by the
/// verdict: a DHCP message (the gateway's server or relay answers, or, in a
/// network without either, bridges it: userspace's either way), and a
/// packet governed by an allowed address pair's holder cell (sent from the
/// pair's address, which moves the holder, or routed to it), which the
/// image does not carry.
fn special(tables: &Tables, port: PortId, frame: &[u8]) -> Option<Class> {
    use trunkline_wire::ethernet::EtherType;
    use trunkline_wire::{IpProtocol, ipv4, ipv6};
    let l2 = parse_l2(frame).ok()?;
    let l3 = &frame[l2.header_len..];
    let (src, dst, udp): (IpAddr, IpAddr, Option<&[u8]>) = match l2.ethertype {
        EtherType::Ipv4 => {
            let ip = ipv4::Packet::new_checked(l3).ok()?;
            let udp = (ip.protocol() == IpProtocol::Udp && !ip.is_fragment())
                .then(|| l3.get(usize::from(ip.header_len())..))
                .flatten();
            (ip.src_addr().into(), ip.dst_addr().into(), udp)
        }
        EtherType::Ipv6 => {
            let ip = ipv6::Packet::new_checked(l3).ok()?;
            let udp = (ip.next_header() == IpProtocol::Udp).then(|| ip.payload());
            (ip.src_addr().into(), ip.dst_addr().into(), udp)
        }
        _ => return None,
    };
    if let Some(udp) = udp.and_then(|u| u.get(..4)) {
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        if dport == 67 || dport == 547 {
            return Some(Class::Dhcp);
        }
    }
    let vmi = tables
        .vmi_at(port, l2.vlan())
        .and_then(|id| tables.vmi(id))?;
    if vmi.pair_routes.iter().any(|(p, _)| p.addr() == src) {
        return Some(Class::AddressPair);
    }
    let network = &tables.vrfs[vmi.vrf].network;
    match tables.route(network, dst) {
        Some(crate::tables::NextHop::Pair(_)) => Some(Class::AddressPair),
        Some(crate::tables::NextHop::Leak { .. } | crate::tables::NextHop::LeakRemote { .. }) => {
            Some(Class::NetworkPolicy)
        }
        _ => None,
    }
}

/// Called by `Rig::run_with` for every frame: kept when recording.
pub(crate) fn record(
    tables: &Tables,
    port: PortId,
    frame: &[u8],
    headroom: usize,
    verdict: Verdict,
    out: &[u8],
    moved_a_cell: bool,
) {
    record_with_flows(
        tables,
        port,
        frame,
        headroom,
        verdict,
        out,
        moved_a_cell,
        Flows::NONE,
    );
}

/// [`record`], for a frame that found the flow table `flows`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_with_flows(
    tables: &Tables,
    port: PortId,
    frame: &[u8],
    headroom: usize,
    verdict: Verdict,
    out: &[u8],
    moved_a_cell: bool,
    flows: Flows<'_>,
) {
    LAST_MOVED.with(|m| m.set(moved_a_cell));
    RECORDING.with(|r| {
        if let Some(rec) = r.borrow_mut().as_mut() {
            let c = case(
                rec.test,
                rec.last.as_ref(),
                tables,
                port,
                frame,
                headroom,
                verdict,
                out,
                moved_a_cell,
                flows,
            );
            rec.last = Some(c.image.clone());
            rec.cases.push(c);
        }
    });
}

/// Runs `tests`, recording the frames they process.
fn recorded(tests: &[(&'static str, fn())]) -> Vec<Case> {
    let mut cases = Vec::new();
    for (name, test) in tests {
        RECORDING.with(|r| {
            *r.borrow_mut() = Some(Recording {
                test: name,
                cases: Vec::new(),
                last: None,
            })
        });
        test();
        let rec = RECORDING
            .with(|r| r.borrow_mut().take())
            .expect("recording");
        cases.extend(rec.cases);
    }
    cases
}

fn all_tests() -> Vec<(&'static str, fn())> {
    crate::process::tests::differential::TESTS
        .iter()
        .chain(crate::process::tests_overlay::differential::TESTS)
        .chain(crate::process::tests_first_minute::differential::TESTS)
        .chain(crate::process::tests_north_south::differential::TESTS)
        .chain(crate::process::tests_policy::differential::TESTS)
        .chain(crate::process::tests_network_policy::differential::TESTS)
        .chain(crate::process::tests_network_policy::differential::ACROSS)
        .chain(ha::TESTS)
        .copied()
        .collect()
}

/// Checks that `tests` (plus `without`, tests that process no frame) names
/// every `#[test]` function of `source` outside the property tests.
pub(crate) fn check_list(source: &str, tests: &[(&str, fn())], without: &[&str]) {
    let mut declared: Vec<&str> = source
        .split("#[test]\nfn ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .collect();
    declared.sort_unstable();
    let mut listed: Vec<&str> = tests
        .iter()
        .map(|(n, _)| *n)
        .chain(without.iter().copied())
        .collect();
    listed.sort_unstable();
    assert_eq!(
        declared, listed,
        "every test of the file runs in the XDP tier's differential test: list new tests in its differential.rs"
    );
}

/// Tests run at once in one process: two kernel tests with one tag would
/// race for one namespace name (`ip netns add` fails for the later one).
#[test]
fn every_kernel_test_has_a_namespace_of_its_own() {
    let source = include_str!("differential.rs");
    let needle = concat!("Kernel::new", "(\"");
    let mut tags: Vec<&str> = source
        .match_indices(needle)
        .filter_map(|(at, _)| {
            let rest = &source[at + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect();
    let count = tags.len();
    assert!(count > 1, "found {count} kernel tests");
    tags.sort_unstable();
    tags.dedup();
    assert_eq!(tags.len(), count, "a tag used twice among {tags:?}");
}

// ---------------------------------------------------------------------------
// The kernel side.

fn sh(cmd: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tier's maps as the swap's writer.
struct Writer<'a>(&'a TierMaps);

impl MapWriter for Writer<'_> {
    type Error = trunkline_xdp::TierError;
    fn put(&mut self, map: TierMap, key: &[u8], value: &[u8]) -> Result<(), Self::Error> {
        self.0.update(map.name(), key, value)
    }
    fn remove(&mut self, map: TierMap, key: &[u8]) -> Result<(), Self::Error> {
        self.0.delete(map.name(), key)
    }
    fn set_state(&mut self, state: u32) -> Result<(), Self::Error> {
        self.0
            .update("tier_state", &0u32.to_ne_bytes(), &state.to_ne_bytes())
    }
    fn synchronize(&mut self) -> Result<(), Self::Error> {
        self.0.synchronize()
    }
    fn zero_vmi_counters(&mut self, slot: u32) -> Result<(), Self::Error> {
        self.0.update_per_cpu(
            "tier_vmi_stats",
            &slot.to_ne_bytes(),
            &[0; super::VMI_STATS_SIZE],
        )
    }
}

/// What the program did with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// XDP_PASS before deciding: not a tunnel packet for us (fabric).
    Pass,
    /// To the AF_XDP socket, the frame untouched.
    Handoff,
    Drop(DropReason),
    Tx {
        port: PortId,
        bytes: Vec<u8>,
        tx_slot: Option<u32>,
        rx_slot: Option<u32>,
    },
}

/// A namespace with the ports' interfaces and the loaded tier.
struct Kernel {
    netns: String,
    tier: Arc<Tier>,
    ports: Vec<TierPort>,
    mirror: Mirror,
    installed: Option<Arc<Image>>,
    fabric_addr: Option<IpAddr>,
    seq: u32,
    /// The flow map keys the last case wrote.
    flow_keys: Vec<Vec<u8>>,
}

impl Kernel {
    /// `tag` names the test's namespace: one per test (tests run at once
    /// in one process), see `every_kernel_test_has_a_namespace_of_its_own`.
    fn new(tag: &str) -> Kernel {
        let netns = format!("tlxd{}{tag}", std::process::id() % 100_000);
        sh(&format!("ip netns add {netns}"));
        for port in PORTS {
            let i = ifindex(port).expect("an interface");
            // Down: no frame but the test's reaches the program.
            sh(&format!(
                "ip -n {netns} link add name p{i} index {i} type veth peer name q{i} index {}",
                i + 1000
            ));
        }
        trunkline_xdp::enter_network_namespace(std::path::Path::new(&format!(
            "/run/netns/{netns}"
        )))
        .expect("enter the test namespace");
        let tier = Arc::new(Tier::load(true).unwrap_or_else(|e| panic!("{e}")));
        let ports = PORTS
            .iter()
            .map(|p| {
                let i = ifindex(*p).expect("an interface");
                let kind = if *p == FABRIC {
                    TierPortKind::Fabric("192.168.100.1".parse().expect("an address"))
                } else {
                    TierPortKind::Trunk
                };
                tier.attach(
                    &format!("p{i}"),
                    i,
                    trunkline_xdp::AttachMode::Generic,
                    kind,
                )
                .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        Kernel {
            netns,
            tier,
            ports,
            mirror: Mirror::default(),
            installed: None,
            fabric_addr: Some("192.168.100.1".parse().expect("an address")),
            seq: 0,
            flow_keys: Vec::new(),
        }
    }

    fn stats(&self) -> KernelCounters {
        let maps = self.tier.maps();
        let values = maps
            .lookup_per_cpu("tier_stats", &0u32.to_ne_bytes())
            .expect("stats");
        KernelCounters::from_per_cpu(&values)
    }

    fn vmi_stats(&self, slot: Option<u32>) -> VmiCounterSnapshot {
        let Some(slot) = slot else {
            return VmiCounterSnapshot::default();
        };
        let maps = self.tier.maps();
        vmi_from_per_cpu(
            &maps
                .lookup_per_cpu("tier_vmi_stats", &slot.to_ne_bytes())
                .expect("VMI stats"),
        )
    }

    /// Runs one frame; checks the counters the program kept against what
    /// it decided.
    fn run(&mut self, case: &Case) -> Outcome {
        let maps = self.tier.maps();
        if self.installed.as_ref() != Some(&case.image) {
            self.mirror
                .install((*case.image).clone(), &mut Writer(&maps))
                .unwrap_or_else(|e| panic!("install: {e}"));
            self.installed = Some(case.image.clone());
        }
        if case.underlay != self.fabric_addr
            && let Some(addr) = case.underlay
        {
            self.ports[2]
                .set_kind(TierPortKind::Fabric(addr))
                .expect("fabric address");
            self.fabric_addr = case.underlay;
        }
        // The flow map as the mirror holds it for this frame (last-seen
        // written `age` before now, on the kernel's clock).
        if !self.flow_keys.is_empty() || !case.flows.is_empty() {
            for key in self.flow_keys.drain(..) {
                maps.delete(FLOWS_MAP, &key).expect("delete a flow");
            }
            let now = trunkline_xdp::tier::monotonic_ns();
            for (key, entry, age) in case.flows.iter() {
                let mut entry = entry.clone();
                entry[LAST_SEEN_AT..LAST_SEEN_AT + 8]
                    .copy_from_slice(&now.saturating_sub(*age).to_ne_bytes());
                maps.update(FLOWS_MAP, key, &entry).expect("write a flow");
                self.flow_keys.push(key.clone());
            }
        }
        let before = self.stats();
        let (rx_before, tx_before) = (self.vmi_stats(case.rx_slot), self.vmi_stats(case.tx_slot));
        let ingress = ifindex(case.port).expect("an interface");
        let (ret, out) = self
            .tier
            .test_run(ingress, &case.frame)
            .unwrap_or_else(|e| panic!("{}: {e}", case.test));
        let mut trace = [0u8; 24];
        maps.lookup("tier_trace", &0u32.to_ne_bytes(), &mut trace)
            .expect("trace");
        let field = |i: usize| u32::from_ne_bytes(trace[i * 4..i * 4 + 4].try_into().expect("4"));
        let (action, reason, egress, rx_vmi, tx_vmi, seq) =
            (field(0), field(1), field(2), field(3), field(4), field(5));
        let decided = seq != self.seq;
        self.seq = seq;
        let after = self.stats();
        let delta = |a: u64, b: u64| a - b;
        let slot = |v: u32| v.checked_sub(1);
        if !decided {
            assert_eq!(ret, 2, "{}: not traced, not passed", case.test);
            assert_eq!(
                out, case.frame,
                "{}: a pass must leave the frame",
                case.test
            );
            return Outcome::Pass;
        }
        // The counters say what the trace says, once.
        let moved = |f: fn(&CounterSnapshot) -> u64| delta(f(&after.decided), f(&before.decided));
        match action {
            TRACE_HANDOFF => {
                assert_eq!(after.handed_off - before.handed_off, 1, "{}", case.test);
                assert_eq!(moved(|c| c.received), 0, "{}", case.test);
                assert_eq!(
                    out, case.frame,
                    "{}: a hand-off must leave the frame",
                    case.test
                );
                Outcome::Handoff
            }
            TRACE_DROP => {
                assert_eq!(ret, 1, "{}: XDP_DROP", case.test);
                let reason = KERNEL_DROPS[reason as usize];
                assert_eq!(moved(|c| c.received), 1, "{}", case.test);
                assert_eq!(
                    after.decided.drops(reason) - before.decided.drops(reason),
                    1,
                    "{}",
                    case.test
                );
                if let Some(s) = slot(rx_vmi).filter(|s| Some(*s) == case.rx_slot) {
                    let now = self.vmi_stats(Some(s));
                    assert_eq!(now.rx_packets - rx_before.rx_packets, 1, "{}", case.test);
                    assert_eq!(now.rx_dropped - rx_before.rx_dropped, 1, "{}", case.test);
                }
                Outcome::Drop(reason)
            }
            TRACE_TX => {
                let want = if egress == ingress { 3 } else { 4 };
                assert_eq!(ret, want, "{}: XDP_TX / XDP_REDIRECT", case.test);
                assert_eq!(moved(|c| c.forwarded), 1, "{}", case.test);
                assert_eq!(moved(|c| c.sent), 1, "{}", case.test);
                assert_eq!(moved(|c| c.sent_bytes), out.len() as u64, "{}", case.test);
                assert_eq!(
                    after.flow_hits - before.flow_hits,
                    u64::from(case.special.is_some_and(Class::established)),
                    "{}: flow stage hits",
                    case.test
                );
                if let Some(s) = slot(tx_vmi).filter(|s| Some(*s) == case.tx_slot) {
                    let now = self.vmi_stats(Some(s));
                    assert_eq!(now.tx_packets - tx_before.tx_packets, 1, "{}", case.test);
                    assert_eq!(
                        now.tx_bytes - tx_before.tx_bytes,
                        out.len() as u64,
                        "{}",
                        case.test
                    );
                }
                if let Some(s) = slot(rx_vmi).filter(|s| Some(*s) == case.rx_slot) {
                    let now = self.vmi_stats(Some(s));
                    assert_eq!(now.rx_packets - rx_before.rx_packets, 1, "{}", case.test);
                    assert_eq!(
                        now.rx_bytes - rx_before.rx_bytes,
                        case.frame.len() as u64,
                        "{}",
                        case.test
                    );
                }
                Outcome::Tx {
                    port: PortId((egress - 1000) as u16),
                    bytes: out,
                    tx_slot: slot(tx_vmi),
                    rx_slot: slot(rx_vmi),
                }
            }
            other => panic!("{}: unknown trace action {other}", case.test),
        }
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        self.ports.clear();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

/// The classes of frames whose share decided in the kernel is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    RoutedV4,
    RoutedV6,
    Bridged,
    Encapsulated,
    Decapsulated,
    /// Answers from the gateway (ARP, ND, echo, RA, ICMP errors): userspace's.
    Answer,
    /// DHCP client messages and replies to the relay: the gateway's server
    /// and relay, userspace's.
    Dhcp,
    /// To or from an allowed address pair's moving address: its holder is
    /// a runtime cell the image does not carry, userspace's.
    AddressPair,
    /// Frames of established SNAT flows (IPv4 TCP without SYN, FIN or
    /// RST, UDP, ICMP echo), both ways, with the flow map mirrored from
    /// the flow table: the kernel's flow stage translates them.
    EstablishedSnat,
    /// The same over an IPv6 underlay: IPv6 TCP, UDP, ICMPv6 echo.
    EstablishedSnat6,
    /// Frames from or to a policed VMI (security groups) that the flow
    /// table passed by established entries alone (IPv4 and IPv6 TCP
    /// without SYN, FIN or RST, UDP, ICMP and ICMPv6 echo; routed or
    /// bridged), with the flow map mirrored from the flow table: the
    /// kernel's flow stage passes them.
    EstablishedPoliced,
    /// The other frames of the north-south tests (first packets, ICMP
    /// errors, stale and expired flows, IP fabric forwarding, a DC
    /// gateway's routes): compared like the others (a hand-off always
    /// agrees).
    NorthSouth,
    /// The other frames from or to a policed VMI (first packets, denied
    /// flows, ICMP errors, stale or idle entries, TCP state moves):
    /// compared like the others (a frame that changed the flow table
    /// must be handed off).
    Policed,
    /// Frames of established connections between two networks of this
    /// node a network policy connects (a leaked route, `NH_LINK`; IPv4
    /// and IPv6 TCP without SYN, FIN or RST, UDP, ICMP and ICMPv6 echo,
    /// routed either way, the receiver policed or not), with the flow map
    /// mirrored from the flow table: the kernel's flow stage passes them.
    EstablishedLinked,
    /// Frames of established connections to a VMI on another node of a
    /// network a network policy connects, at the sending node (a leaked
    /// route through a tunnel, `NH_LINK_REMOTE`; IPv4 and IPv6 TCP
    /// without SYN, FIN or RST, UDP, ICMP and ICMPv6 echo; MPLS label or
    /// VXLAN), with the flow map mirrored from the flow table: the
    /// kernel's flow stage passes them and encapsulates.
    EstablishedLinkedRemote,
    /// Frames of established connections from a VMI on another node of a
    /// connected network, at the receiving node (a tunnel packet into a
    /// `VRF_LINKED` VRF whose inner source's route is `NH_LINK_REMOTE`;
    /// MPLS label or VXLAN, IPv4 and IPv6), with the flow map mirrored:
    /// the kernel decides them by the link's entry and delivers.
    EstablishedLinkedReceived,
    /// The other frames routed into another network by a network policy
    /// (first packets, denied flows, ICMP errors, stale or idle entries,
    /// TCP state moves; every other tunnel packet into a linked network
    /// at the receiving node, `VRF_LINKED`): compared like the others (a
    /// frame that changed the flow table must be handed off).
    NetworkPolicy,
    /// Frames against tables with an HA group: those governed by a role or
    /// path cell (member ports, multi-homed VMIs) are userspace's, the
    /// others are compared as usual.
    GatewayHa,
    Flood,
    Drop,
    Pass,
}

impl Class {
    /// The classes the kernel must decide whole.
    const REQUIRED: [Class; 11] = [
        Class::RoutedV4,
        Class::RoutedV6,
        Class::Bridged,
        Class::Encapsulated,
        Class::Decapsulated,
        Class::EstablishedSnat,
        Class::EstablishedSnat6,
        Class::EstablishedPoliced,
        Class::EstablishedLinked,
        Class::EstablishedLinkedRemote,
        Class::EstablishedLinkedReceived,
    ];

    /// Frames of an established flow the flow stage decides (SNAT,
    /// either family; a policed VMI's; a link's).
    fn established(self) -> bool {
        matches!(
            self,
            Class::EstablishedSnat
                | Class::EstablishedSnat6
                | Class::EstablishedPoliced
                | Class::EstablishedLinked
                | Class::EstablishedLinkedRemote
                | Class::EstablishedLinkedReceived
        )
    }

    fn of(case: &Case) -> Class {
        if let Some(class) = case.special {
            return class;
        }
        match case.verdict {
            Verdict::Pass => Class::Pass,
            Verdict::Drop(_) => Class::Drop,
            Verdict::Flood(_) => Class::Flood,
            Verdict::Transmit { port, .. } => {
                if case.port == FABRIC && port != FABRIC && case.tx_slot.is_some() {
                    Class::Decapsulated
                } else if case.port != FABRIC && port == FABRIC {
                    Class::Encapsulated
                } else if case.tx_slot.is_some() && case.tx_slot != case.rx_slot {
                    match parse_l2(&case.frame) {
                        Ok(l2) if l2.dst.0 == GW => {
                            if l2.ethertype == trunkline_wire::ethernet::EtherType::Ipv4 {
                                Class::RoutedV4
                            } else {
                                Class::RoutedV6
                            }
                        }
                        _ => Class::Bridged,
                    }
                } else {
                    Class::Answer
                }
            }
        }
    }
}

/// Compares the program's outcome with the pipeline's verdict: `Ok(true)`
/// when the kernel decided (alike), `Ok(false)` for a hand-off.
fn compare(case: &Case, outcome: &Outcome) -> Result<bool, String> {
    if case.frame.len() > trunkline_xdp::FAST_PATH_MAX_FRAME
        && !matches!(outcome, Outcome::Handoff | Outcome::Pass)
    {
        return Err(format!(
            "{} on port {}: a frame of {} bytes (longer than an AF_XDP buffer) decided in the kernel: {:?}",
            case.test,
            case.port,
            case.frame.len(),
            outcome
        ));
    }
    if case.moved_a_cell && *outcome != Outcome::Handoff {
        return Err(format!(
            "{} on port {}: the pipeline moved an address pair's holder, the kernel decided {:?}\n  frame {:02x?}",
            case.test, case.port, outcome, case.frame
        ));
    }
    let ok = match (outcome, &case.verdict) {
        (Outcome::Handoff, _) => return Ok(false),
        (Outcome::Pass, Verdict::Pass) => true,
        (Outcome::Drop(a), Verdict::Drop(b)) => a == b,
        (
            Outcome::Tx {
                port,
                bytes,
                tx_slot,
                rx_slot,
            },
            Verdict::Transmit { port: want, .. },
        ) => {
            port == want
                && *bytes == case.out
                && *tx_slot == case.tx_slot
                && (rx_slot.is_none() || *rx_slot == case.rx_slot)
        }
        _ => false,
    };
    if ok {
        Ok(true)
    } else {
        Err(format!(
            "{} on port {}: pipeline {:?} {:02x?}, kernel {:?}\n  frame {:02x?}",
            case.test, case.port, case.verdict, case.out, outcome, case.frame
        ))
    }
}

/// Whether the program would see the frame of `case`: it runs on trunks
/// and the fabric, with a full headroom, on frames of an Ethernet header at
/// least (the kernel delivers nothing shorter, and BPF_PROG_RUN refuses
/// it). Frames of taps, unknown ports and shrunken buffers test the
/// pipeline's own bounds, not a decision the program shares.
fn runnable(case: &Case) -> bool {
    case.xdp_port && case.headroom >= HEADROOM && case.frame.len() >= 14
}

/// Replays `cases`: mismatches, and per class (frames, decided in the kernel).
fn replay(kernel: &mut Kernel, cases: &[Case]) -> (Vec<String>, BTreeMap<Class, (u32, u32)>) {
    let mut mismatches = Vec::new();
    let mut tally: BTreeMap<Class, (u32, u32)> = BTreeMap::new();
    for case in cases {
        if !runnable(case) {
            continue;
        }
        let outcome = kernel.run(case);
        let entry = tally.entry(Class::of(case)).or_default();
        entry.0 += 1;
        match compare(case, &outcome) {
            Ok(decided) => entry.1 += u32::from(decided),
            Err(e) => mismatches.push(e),
        }
    }
    (mismatches, tally)
}

fn report(title: &str, tally: &BTreeMap<Class, (u32, u32)>) {
    eprintln!("{title}: share of frames decided in the kernel, by class");
    for (class, (frames, decided)) in tally {
        eprintln!(
            "  {:<14} {:>5} frames  {:>5} in the kernel  {:>5.1} %",
            format!("{class:?}"),
            frames,
            decided,
            100.0 * f64::from(*decided) / f64::from((*frames).max(1))
        );
    }
}

fn assert_no_mismatch(mismatches: &[String]) {
    assert!(
        mismatches.is_empty(),
        "{} frames decided differently by the XDP tier:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_test_frame_is_decided_alike_in_the_kernel() {
    let cases = recorded(&all_tests());
    assert!(cases.len() > 100, "recorded {} frames", cases.len());
    let mut kernel = Kernel::new("t");
    let (mismatches, tally) = replay(&mut kernel, &cases);
    report("pipeline test frames", &tally);
    assert_no_mismatch(&mismatches);
    for class in Class::REQUIRED {
        let (frames, decided) = tally.get(&class).copied().unwrap_or_default();
        assert!(frames > 0, "no test frame of class {class:?}");
        assert_eq!(
            decided, frames,
            "{class:?}: every frame must be decided in the kernel"
        );
    }
}

/// The established SNAT frames of the north-south tests (IPv4 and IPv6
/// underlays), each against the
/// flow map the mirror would hold, altered: without the flow's entries,
/// with a generation the VRF no longer has, idle past the flow's timeout,
/// with a VRF slot that is another VRF's (returns), without a fabric next
/// hop (out): each must be handed off untouched. As mirrored, each is
/// translated in the kernel (counted as a flow stage hit).
#[test]
fn established_flows_without_a_trusted_entry_are_handed_off() {
    let cases: Vec<Case> = recorded(crate::process::tests_north_south::differential::TESTS)
        .into_iter()
        .filter(|c| c.special.is_some_and(Class::established) && runnable(c))
        .collect();
    assert!(
        cases
            .iter()
            .all(|c| c.special != Some(Class::EstablishedPoliced))
    );
    assert!(cases.len() >= 20, "{} established frames", cases.len());
    let v6 = cases
        .iter()
        .filter(|c| c.special == Some(Class::EstablishedSnat6))
        .count();
    assert!(v6 >= 10, "{v6} established IPv6 frames");
    let mut kernel = Kernel::new("f");
    type Alter = fn(&mut FlowEntry);
    let alterations: [(&str, Alter, bool); 5] = [
        ("stale generation", |e| e.1[4] ^= 1, true),
        (
            "idle past its timeout",
            // A short timeout, passed: the kernel's clock may not have run
            // for a real timeout yet (a machine booted minutes ago).
            |e| {
                e.1[56..64].copy_from_slice(&1_000_000_000u64.to_ne_bytes());
                e.2 = 2_000_000_000;
            },
            true,
        ),
        ("another action", |e| e.1[0] = 0, true),
        ("another VRF's slot", |e| e.1[64] ^= 1, false),
        ("no fabric next hop", |e| e.1[68..74].fill(0), false),
    ];
    for (what, alter, both_ways) in alterations {
        let mut handed_off = 0;
        for case in &cases {
            let mut altered = case.clone();
            let mut flows = (*case.flows).clone();
            flows.iter_mut().for_each(alter);
            altered.flows = Arc::new(flows);
            let outcome = kernel.run(&altered);
            // The VRF slot matters to returns only, the next hop to frames out.
            let concerned = both_ways || {
                let ret = case.port == FABRIC;
                (what == "another VRF's slot") == ret
            };
            if concerned {
                assert_eq!(outcome, Outcome::Handoff, "{what}: {}", case.test);
                handed_off += 1;
            }
        }
        assert!(handed_off > 0, "{what}: no frame concerned");
    }
    let mut none = cases[0].clone();
    none.flows = Arc::new(Vec::new());
    assert_eq!(kernel.run(&none), Outcome::Handoff, "without entries");
    for case in &cases {
        let outcome = kernel.run(case);
        assert!(
            compare(case, &outcome) == Ok(true),
            "{}: {outcome:?}",
            case.test
        );
    }
}

/// The established frames between policed VMIs (security groups), each
/// against the flow map the mirror would hold, altered: with a generation
/// the VMI's rules no longer have, idle past the flow's timeout, denied
/// (a denied flow's drop is the pipeline's to count), without the flow's
/// entries, without one VMI's zone's entries: each must be handed off
/// untouched. As mirrored, each is decided in the kernel (a flow stage
/// hit).
#[test]
fn established_policed_flows_without_a_trusted_entry_are_handed_off() {
    let cases: Vec<Case> = recorded(crate::process::tests_policy::differential::TESTS)
        .into_iter()
        .filter(|c| c.special == Some(Class::EstablishedPoliced) && runnable(c))
        .collect();
    assert!(cases.len() >= 20, "{} established frames", cases.len());
    let mut kernel = Kernel::new("p");
    type Alter = fn(&mut Vec<FlowEntry>);
    let alterations: [(&str, Alter); 5] = [
        ("stale generation", |f| {
            f.iter_mut().for_each(|e| e.1[4] ^= 1)
        }),
        ("idle past its timeout", |f| {
            // A short timeout, passed (see the other test).
            f.iter_mut().for_each(|e| {
                e.1[56..64].copy_from_slice(&1_000_000_000u64.to_ne_bytes());
                e.2 = 2_000_000_000;
            })
        }),
        ("denied", |f| f.iter_mut().for_each(|e| e.1[0] = 1)),
        ("no entries", |f| f.clear()),
        // Zones have the high bit set; the two VMIs' differ: keep the
        // lowest zone's entries only (one side of a two-zone flow).
        ("one zone's entries only", |f| {
            let zone = |e: &FlowEntry| u32::from_ne_bytes(e.0[0..4].try_into().expect("4 bytes"));
            if let Some(low) = f.iter().map(zone).min() {
                f.retain(|e| zone(e) == low);
            }
        }),
    ];
    for (what, alter) in alterations {
        let mut handed_off = 0;
        for case in &cases {
            let mut altered = case.clone();
            let mut flows = (*case.flows).clone();
            alter(&mut flows);
            if flows.len() == case.flows.len() && what == "one zone's entries only" {
                // A flow with one policed end: nothing was taken away.
                continue;
            }
            altered.flows = Arc::new(flows);
            assert_eq!(
                kernel.run(&altered),
                Outcome::Handoff,
                "{what}: {}",
                case.test
            );
            handed_off += 1;
        }
        assert!(handed_off > 0, "{what}: no frame concerned");
    }
    for case in &cases {
        let outcome = kernel.run(case);
        assert!(
            compare(case, &outcome) == Ok(true),
            "{}: {outcome:?}",
            case.test
        );
    }
}

/// The established frames of connections between two networks of this
/// node (network policies' links), each against the flow map the mirror
/// would hold, altered: with a generation the link's rules no longer
/// have, idle past the flow's timeout, denied, without any entry, without
/// the link's zone's entries (a policed receiver's kept): each must be
/// handed off untouched. As mirrored, each is decided in the kernel (one
/// flow stage hit), and the share is reported.
#[test]
fn established_linked_flows_without_a_trusted_entry_are_handed_off() {
    let tests = crate::process::tests_network_policy::differential::TESTS;
    let cases = untrusted_links_are_handed_off(tests, Class::EstablishedLinked, linked_zone(), "l");
    assert!(cases.len() >= 30, "{} established frames", cases.len());
    // A policed receiver's frames: entries of a VMI's zone besides the link's.
    let zone = |e: &FlowEntry| u32::from_ne_bytes(e.0[0..4].try_into().expect("4 bytes"));
    let both = cases
        .iter()
        .filter(|c| c.flows.iter().any(|e| zone(e) != linked_zone()))
        .count();
    assert!(both >= 3, "{both} frames to or from a policed VMI");
    report(
        "established connections between networks",
        &tally_of(&cases, Class::EstablishedLinked),
    );
}

/// The same for connections to a VMI on another node, at the sending node
/// (`NH_LINK_REMOTE`): the link's flow checked, then the tunnel, MPLS
/// label or VXLAN, IPv4 and IPv6; without a trusted entry handed off.
#[test]
fn established_linked_remote_flows_without_a_trusted_entry_are_handed_off() {
    let tests = crate::process::tests_network_policy::differential::ACROSS;
    let zone = crate::network_policy::Link::zone_of("ns/net1", "ns/green");
    let cases = untrusted_links_are_handed_off(tests, Class::EstablishedLinkedRemote, zone, "r");
    assert!(cases.len() >= 24, "{} established frames", cases.len());
    let vxlan = cases
        .iter()
        .filter(|c| c.out.get(36..38) == Some(&4789u16.to_be_bytes()[..]))
        .count();
    assert!(vxlan >= 10, "{vxlan} established frames into VXLAN");
    report(
        "established connections to another node (sender)",
        &tally_of(&cases, Class::EstablishedLinkedRemote),
    );
}

/// The same at the receiving node: tunnel packets into a linked network
/// from a connected VMI on another node (`VRF_LINKED`, the inner source's
/// route `NH_LINK_REMOTE`), MPLS label or VXLAN, IPv4 and IPv6, decided by
/// the link's entry and delivered; without a trusted entry handed off.
#[test]
fn established_linked_flows_received_without_a_trusted_entry_are_handed_off() {
    let tests = crate::process::tests_network_policy::differential::ACROSS;
    let zone = crate::network_policy::Link::zone_of("ns/net1", "ns/green");
    let cases = untrusted_links_are_handed_off(tests, Class::EstablishedLinkedReceived, zone, "v");
    assert!(cases.len() >= 24, "{} established frames", cases.len());
    let vxlan = cases
        .iter()
        .filter(|c| c.frame.get(36..38) == Some(&4789u16.to_be_bytes()[..]))
        .count();
    assert!(vxlan >= 10, "{vxlan} established frames from VXLAN");
    report(
        "established connections from another node (receiver)",
        &tally_of(&cases, Class::EstablishedLinkedReceived),
    );
}

/// Records `tests`, keeps the established frames of `class` (at least 12
/// IPv6 ones), checks that each is handed off against altered flow maps
/// (the link's entries in `zone`) and decided alike as mirrored, and
/// returns them.
fn untrusted_links_are_handed_off(
    tests: &[(&'static str, fn())],
    class: Class,
    link_zone: u32,
    tag: &str,
) -> Vec<Case> {
    let cases: Vec<Case> = recorded(tests)
        .into_iter()
        .filter(|c| c.special == Some(class) && runnable(c))
        .collect();
    // IPv6 as sent by the VMI, or as delivered to it (a tunnel packet's
    // outer header is the underlay's).
    let ipv6 = |bytes: &[u8]| {
        parse_l2(bytes).is_ok_and(|l2| l2.ethertype == trunkline_wire::ethernet::EtherType::Ipv6)
    };
    let v6 = cases
        .iter()
        .filter(|c| ipv6(&c.frame) || ipv6(&c.out))
        .count();
    assert!(v6 >= 12, "{v6} established IPv6 frames");
    let mut kernel = Kernel::new(tag);
    let zone = |e: &FlowEntry| u32::from_ne_bytes(e.0[0..4].try_into().expect("4 bytes"));
    assert!(
        cases
            .iter()
            .all(|c| c.flows.iter().any(|e| zone(e) == link_zone)),
        "every frame has entries in the link's zone"
    );
    type Alter = fn(&mut Vec<FlowEntry>, u32);
    let alterations: [(&str, Alter); 5] = [
        ("stale generation", |f, _| {
            f.iter_mut().for_each(|e| e.1[4] ^= 1)
        }),
        ("idle past its timeout", |f, _| {
            // A short timeout, passed (see the SNAT test).
            f.iter_mut().for_each(|e| {
                e.1[56..64].copy_from_slice(&1_000_000_000u64.to_ne_bytes());
                e.2 = 2_000_000_000;
            })
        }),
        ("denied", |f, _| f.iter_mut().for_each(|e| e.1[0] = 1)),
        ("no entries", |f, _| f.clear()),
        ("the link's zone's entries gone", |f, link_zone| {
            f.retain(|e| u32::from_ne_bytes(e.0[0..4].try_into().expect("4 bytes")) != link_zone)
        }),
    ];
    for (what, alter) in alterations {
        for case in &cases {
            let mut altered = case.clone();
            let mut flows = (*case.flows).clone();
            alter(&mut flows, link_zone);
            altered.flows = Arc::new(flows);
            assert_eq!(
                kernel.run(&altered),
                Outcome::Handoff,
                "{what}: {}",
                case.test
            );
        }
    }
    let hits_before = kernel.stats().flow_hits;
    for case in &cases {
        let outcome = kernel.run(case);
        assert!(
            compare(case, &outcome) == Ok(true),
            "{}: {outcome:?}",
            case.test
        );
    }
    assert_eq!(
        kernel.stats().flow_hits - hits_before,
        cases.len() as u64,
        "one flow stage hit per established frame"
    );
    cases
}

/// Every case of `cases` counted as `class`, all decided in the kernel.
fn tally_of(cases: &[Case], class: Class) -> BTreeMap<Class, (u32, u32)> {
    let n = cases.len() as u32;
    BTreeMap::from([(class, (n, n))])
}

/// The zone of the network-policy tests' connection (net1 and blue).
fn linked_zone() -> u32 {
    crate::network_policy::Link::zone_of("ns/net1", "ns/blue")
}

/// A case for `frame` on `port` with the rig's tables.
fn fixture_case(rig: &Rig, last: &mut Option<Arc<Image>>, port: PortId, frame: &[u8]) -> Case {
    let (verdict, out) = rig.run_with(port, frame, HEADROOM, 64);
    // `run_with` recorded nothing (no recording runs here): the case is
    // built again, with what it noticed of the cells.
    let moved_a_cell = LAST_MOVED.with(|m| m.get());
    let c = case(
        "random",
        last.as_ref(),
        &rig.tables,
        port,
        frame,
        HEADROOM,
        verdict,
        &out,
        moved_a_cell,
        Flows::NONE,
    );
    *last = Some(c.image.clone());
    c
}

#[test]
fn random_frames_are_decided_alike_in_the_kernel() {
    // Valid frames of every kind: what the tests process, and what the
    // property tests mutate.
    let mut bases: Vec<(PortId, Vec<u8>)> = recorded(&all_tests())
        .into_iter()
        .filter(|c| c.xdp_port)
        .map(|c| (c.port, c.frame))
        .collect();
    bases.extend(crate::process::tests::differential::frames_to_mutate());
    bases.sort();
    bases.dedup();
    // The fixture's tables, and the first minute's (DHCP server or relay,
    // MTUs, a moving address pair): a third of the frames each.
    let configs: Vec<_> = std::iter::once(fixture())
        .chain(crate::process::tests_first_minute::differential::configs())
        .chain(crate::process::tests_north_south::differential::configs())
        .chain(crate::process::tests_policy::differential::configs())
        .chain(crate::process::tests_network_policy::differential::configs())
        .chain(ha::configs())
        .collect();
    let mut kernel = Kernel::new("r");
    let mut mismatches = Vec::new();
    let mut tally: BTreeMap<Class, (u32, u32)> = BTreeMap::new();
    for config in &configs {
        let rig = Rig::new(config);
        struct Run<'k> {
            kernel: &'k mut Kernel,
            last: Option<Arc<Image>>,
            mismatches: &'k mut Vec<String>,
            tally: &'k mut BTreeMap<Class, (u32, u32)>,
        }
        let run = RefCell::new(Run {
            kernel: &mut kernel,
            last: None,
            mismatches: &mut mismatches,
            tally: &mut tally,
        });
        let cases = 3000 / configs.len() as u32;
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = (
            any::<prop::sample::Index>(),
            proptest::collection::vec((0usize..96, 1u8..=255), 0..6),
            any::<Option<prop::sample::Index>>(),
            proptest::collection::vec(any::<u8>(), 0..128),
            0u8..8,
            prop::sample::select(PORTS.to_vec()),
            any::<u8>(),
        );
        let ha_tables = rig.tables.ha_groups().next().is_some();
        runner
            .run(
                &strategy,
                |(which, flips, cut, noise, mode, port, cells)| {
                    if ha_tables {
                        // A role flip or a path moved between any two frames.
                        ha::set_cells(&rig.tables, cells);
                    }
                    let (base_port, mut frame) = bases[which.index(bases.len())].clone();
                    let port = if mode == 0 { port } else { base_port };
                    if mode == 1 {
                        frame = noise;
                    } else {
                        for (at, xor) in flips {
                            if !frame.is_empty() {
                                let i = at % frame.len();
                                frame[i] ^= xor;
                            }
                        }
                        if let Some(cut) = cut.filter(|_| mode == 2) {
                            frame.truncate(cut.index(frame.len() + 1));
                        }
                    }
                    let mut run = run.borrow_mut();
                    let run = &mut *run;
                    let c = fixture_case(&rig, &mut run.last, port, &frame);
                    if !runnable(&c) {
                        return Ok(());
                    }
                    let outcome = run.kernel.run(&c);
                    let entry = run.tally.entry(Class::of(&c)).or_default();
                    entry.0 += 1;
                    match compare(&c, &outcome) {
                        Ok(decided) => entry.1 += u32::from(decided),
                        Err(e) => run.mismatches.push(e),
                    }
                    Ok(())
                },
            )
            .expect("the property runner");
    }
    report("random frames", &tally);
    assert_no_mismatch(&mismatches);
}

/// Gateway HA: the image does not carry the HA cells (a group's role, the
/// path of a multi-homed VMI, its `seen` mark), so a frame whose fate
/// depends on them must be handed off. Every frame of the HA tests, and
/// more (BPDUs, gratuitous ARPs, traffic to and from the multi-homed VMIs,
/// from tunnels), runs through the pipeline under every combination of the
/// cells, role flips included, and through the program with the one image
/// those tables give: the program must agree with the pipeline under each
/// combination, or hand the frame off.
#[test]
fn ha_frames_are_decided_alike_or_handed_off_whatever_the_roles_and_paths() {
    let mut frames: Vec<(PortId, Vec<u8>)> = recorded(ha::TESTS)
        .into_iter()
        .filter(runnable)
        .map(|c| (c.port, c.frame))
        .collect();
    frames.extend(ha::frames());
    frames.sort();
    frames.dedup();
    let rig = ha::ha_rig();
    let mut kernel = Kernel::new("h");
    let (mut last, mut image): (Option<Arc<Image>>, Option<Arc<Image>>) = (None, None);
    let mut mismatches = Vec::new();
    let mut tally: BTreeMap<Class, (u32, u32)> = BTreeMap::new();
    let (mut depends, mut member_port) = (0, 0);
    for (port, frame) in &frames {
        let mut verdicts = std::collections::BTreeSet::new();
        let mut outcomes = Vec::new();
        for n in 0..ha::CELL_SETTINGS {
            ha::set_cells(&rig.tables, n);
            rig.tables.take_seen(|_| {});
            let c = fixture_case(&rig, &mut last, *port, frame);
            match &image {
                None => image = Some(c.image.clone()),
                Some(first) => assert!(**first == *c.image, "the HA cells changed the image"),
            }
            assert_eq!(c.special, Some(Class::GatewayHa));
            if !runnable(&c) {
                break;
            }
            let outcome = kernel.run(&c);
            let entry = tally.entry(Class::of(&c)).or_default();
            entry.0 += 1;
            match compare(&c, &outcome) {
                Ok(decided) => entry.1 += u32::from(decided),
                Err(e) => mismatches.push(format!("cells {n}: {e}")),
            }
            verdicts.insert(format!("{:?} {:02x?}", c.verdict, c.out));
            outcomes.push(outcome);
        }
        if *port == MEMBER_PORT {
            member_port += 1;
            assert!(
                outcomes.iter().all(|o| *o == Outcome::Handoff),
                "a frame from a member port decided in the kernel: {:?}\n  frame {frame:02x?}",
                outcomes.iter().find(|o| **o != Outcome::Handoff)
            );
        }
        if verdicts.len() > 1 {
            depends += 1;
            assert!(
                outcomes.iter().all(|o| *o == Outcome::Handoff),
                "the pipeline's verdict depends on the HA cells, the kernel decided: {:?}\n  frame {frame:02x?}",
                outcomes.iter().find(|o| **o != Outcome::Handoff)
            );
        }
    }
    report("gateway HA frames, every combination of the cells", &tally);
    eprintln!(
        "  {} frames, {depends} of them decided differently by the cells, {member_port} from the member port",
        frames.len()
    );
    assert!(depends >= 8, "{depends} frames depend on the cells");
    assert_no_mismatch(&mismatches);
}

/// The inputs of a fuzz corpus directory.
fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .filter_map(|entry| std::fs::read(entry.ok()?.path()).ok())
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn the_fuzz_corpora_through_the_program_are_decided_alike_or_handed_off() {
    let rig = Rig::new(&fixture());
    let mut kernel = Kernel::new("c");
    let mut last = None;
    let mut frames: Vec<(PortId, Vec<u8>)> = Vec::new();
    // The pipeline's corpus: a selector byte (its low bits pick the port)
    // and a frame; the wire views' corpus: raw bytes, on every port.
    for input in corpus("fuzz/corpus/pipeline") {
        if let Some((selector, frame)) = input.split_first() {
            frames.push((
                FIXTURE_PORTS[usize::from(*selector) % FIXTURE_PORTS.len()],
                frame.to_vec(),
            ));
        }
    }
    for input in corpus("../wire/fuzz/corpus/wire_views") {
        for port in FIXTURE_PORTS {
            frames.push((port, input.clone()));
        }
    }
    // And every input cut at every length of its headers.
    let mut cut: Vec<(PortId, Vec<u8>)> = Vec::new();
    for (port, frame) in &frames {
        for len in (0..frame.len().min(96)).step_by(3) {
            cut.push((*port, frame[..len].to_vec()));
        }
    }
    frames.extend(cut);
    let mut mismatches = Vec::new();
    let mut tally: BTreeMap<Class, (u32, u32)> = BTreeMap::new();
    for (port, frame) in &frames {
        let c = fixture_case(&rig, &mut last, *port, frame);
        if !runnable(&c) {
            continue;
        }
        let outcome = kernel.run(&c);
        let entry = tally.entry(Class::of(&c)).or_default();
        entry.0 += 1;
        match compare(&c, &outcome) {
            Ok(decided) => entry.1 += u32::from(decided),
            Err(e) => mismatches.push(e),
        }
    }
    report("fuzz corpora", &tally);
    assert!(frames.len() > 500, "{} corpus frames", frames.len());
    assert_no_mismatch(&mismatches);
}

/// A frame longer than an AF_XDP buffer is handed off undecided, however
/// the pipeline would decide it (the socket refuses it, a counted drop, as
/// in the AF_XDP-only mode): the tier never carries what userspace cannot.
/// The longest that fits stays in the kernel.
#[test]
fn frames_longer_than_an_af_xdp_buffer_are_handed_off() {
    use crate::process::tests::{MAC_A, ipv4_step};
    let rig = Rig::new(&fixture());
    let mut kernel = Kernel::new("j");
    let mut last = None;
    let max = trunkline_xdp::FAST_PATH_MAX_FRAME;
    for len in [max, max + 1, 3000] {
        let mut frame = Vec::new();
        ipv4_step(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64)
            .udp(40000, 53)
            .write(&mut frame, &vec![0x5a; len - 18 - 28])
            .expect("a frame");
        assert_eq!(frame.len(), len);
        let c = fixture_case(&rig, &mut last, P1, &frame);
        assert!(
            matches!(c.verdict, Verdict::Transmit { .. }),
            "the pipeline routes it: {:?}",
            c.verdict
        );
        let outcome = kernel.run(&c);
        if len <= max {
            assert!(compare(&c, &outcome) == Ok(true), "{len}: {outcome:?}");
        } else {
            assert_eq!(outcome, Outcome::Handoff, "{len} bytes");
        }
    }
}

/// Tables swapped again and again while frames run through the program on
/// another thread: every frame leaves exactly as one of the two tables
/// says, never with parts of both (here, the destination VMI's MAC from one
/// and its VLAN from the other).
#[test]
fn frames_during_generation_swaps_follow_one_table_or_the_other() {
    use crate::process::tests::{MAC_A, udp4};
    let config_a = fixture();
    let mut config_b = fixture();
    for li in &mut config_b.logical_interfaces {
        if li.vmi == "ns/vmi-b" {
            li.vlan = 201;
        }
    }
    for vmi in &mut config_b.vmis {
        if vmi.key == "ns/vmi-b" {
            vmi.mac = [2, 0, 0, 0, 0, 0xbb];
        }
    }
    let frame = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64);
    let (rig_a, rig_b) = (Rig::new(&config_a), Rig::new(&config_b));
    let expected: Vec<Vec<u8>> = [&rig_a, &rig_b]
        .iter()
        .map(|rig| match rig.run(P1, &frame) {
            (Verdict::Transmit { port, .. }, out) if port == P1 => out,
            other => panic!("expected a transmit, got {other:?}"),
        })
        .collect();
    assert_ne!(expected[0], expected[1]);
    let mut slots = Slots::default();
    let images = [
        Image::build(&rig_a.tables, &mut slots, ifindex),
        Image::build(&rig_b.tables, &mut slots, ifindex),
    ];
    let mut kernel = Kernel::new("s");
    let maps = kernel.tier.maps();
    kernel
        .mirror
        .install(images[0].clone(), &mut Writer(&maps))
        .expect("install");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (tier, stop, frame) = (kernel.tier.clone(), stop.clone(), frame.clone());
        let netns = format!("/run/netns/{}", kernel.netns);
        std::thread::spawn(move || {
            trunkline_xdp::enter_network_namespace(std::path::Path::new(&netns))
                .expect("enter the test namespace");
            let mut outs: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (_, out) = tier
                    .test_run(ifindex(P1).expect("an interface"), &frame)
                    .expect("BPF_PROG_RUN");
                *outs.entry(out).or_default() += 1;
            }
            outs
        })
    };
    for round in 0..100 {
        kernel
            .mirror
            .install(images[(round + 1) % 2].clone(), &mut Writer(&maps))
            .expect("install");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let outs = traffic.join().expect("traffic thread");
    let total: u32 = outs.values().sum();
    eprintln!(
        "{total} frames during 100 swaps: {:?}",
        outs.iter()
            .map(|(out, n)| (expected.iter().position(|e| e == out), *n))
            .collect::<Vec<_>>()
    );
    for out in outs.keys() {
        assert!(
            expected.contains(out),
            "a frame left as neither table says: {out:02x?}"
        );
    }
    assert!(outs.len() == 2, "frames saw both tables");
}

/// Observe in the tier: with no observation armed the program records
/// nothing; armed, it records exactly the wanted frames it decides itself,
/// each with the verdict, egress and VLAN the pipeline gives the same frame
/// and the pipeline's reason; `drops only` keeps only drops; over the rate
/// every wanted verdict is counted, none recorded.
#[test]
fn an_armed_observation_records_the_kernel_verdicts_and_an_unarmed_one_nothing() {
    use super::observe::{ObsFilter, Record, not_recorded};
    use crate::process::tests::{MAC_A, udp4};
    use crate::sample::{DecidedIn, Filter};
    let rig = Rig::new(&fixture());
    let mut kernel = Kernel::new("o");
    let mut last = None;
    let maps = kernel.tier.maps();
    let port_of = |i: u32| i.checked_sub(1000).map(|p| PortId(p as u16));
    let routed = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64);
    let spoofed = udp4(MAC_A, GW, Some(100), [10, 0, 0, 99], [10, 0, 1, 20], 64);
    let no_li = udp4(MAC_A, GW, Some(999), [10, 0, 0, 10], [10, 0, 1, 20], 64);
    let cases: Vec<Case> = [&routed, &spoofed, &no_li]
        .iter()
        .map(|f| fixture_case(&rig, &mut last, P1, f))
        .collect();
    assert!(matches!(cases[0].verdict, Verdict::Transmit { .. }));
    assert!(
        matches!(cases[1].verdict, Verdict::Drop(_)),
        "{:?}",
        cases[1].verdict
    );
    assert!(
        matches!(cases[2].verdict, Verdict::Drop(_)),
        "{:?}",
        cases[2].verdict
    );
    let drain = || {
        let mut records = Vec::new();
        maps.drain_observations(|b| records.push(Record::parse(b).expect("a known record")));
        records
    };
    let dropped = || {
        not_recorded(
            &maps
                .lookup_per_cpu("tier_stats", &0u32.to_ne_bytes())
                .expect("tier_stats"),
        )
    };
    let epoch = Cell::new(0);
    let arm = |filter: Filter, rate: u32| {
        epoch.set(epoch.get() + 1);
        let value = ObsFilter {
            filter,
            ifindex: filter.port.and_then(ifindex),
            rate,
            epoch: epoch.get(),
        }
        .encode();
        maps.update("tier_observe", &0u32.to_ne_bytes(), &value)
            .expect("arm");
    };
    let run_all = |kernel: &mut Kernel| {
        for c in &cases {
            let outcome = kernel.run(c);
            assert!(compare(c, &outcome) == Ok(true), "{}: {outcome:?}", c.test);
            assert!(
                !matches!(outcome, Outcome::Handoff),
                "decided in the kernel"
            );
        }
    };

    // Not armed: nothing.
    run_all(&mut kernel);
    assert!(drain().is_empty(), "an unarmed tier records nothing");
    assert_eq!(dropped(), 0);

    // Armed for VLAN 100 on P1: the routed and the spoofed frames.
    arm(
        Filter {
            port: Some(P1),
            vlan: Some(100),
            ..Filter::default()
        },
        200,
    );
    let armed_ns = trunkline_xdp::tier::monotonic_ns();
    run_all(&mut kernel);
    let records = drain();
    assert_eq!(records.len(), 2, "{records:?}");
    for (record, c) in records.iter().zip(&cases) {
        let s = record.sample(armed_ns, port_of).expect("a sample");
        assert_eq!(s.decided_in, DecidedIn::Xdp);
        assert_eq!((s.port, s.vlan), (P1, 100));
        assert_eq!(
            s.head.src_ip,
            crate::sample::Head::parse(P1, &c.frame).unwrap().src_ip
        );
        match (s.verdict, c.verdict) {
            (Verdict::Drop(got), Verdict::Drop(want)) => assert_eq!(got, want),
            (Verdict::Transmit { port: got, .. }, Verdict::Transmit { port: want, .. }) => {
                assert_eq!(got, want);
                let out = &c.out;
                assert_eq!(
                    s.egress_vlan,
                    parse_l2(out).expect("a frame").tci.map(|t| t & 0x0fff),
                    "the VLAN it left with"
                );
            }
            (got, want) => panic!("{}: recorded {got:?}, the pipeline says {want:?}", c.test),
        }
    }

    // Drops only, any port.
    arm(
        Filter {
            drops_only: true,
            ..Filter::default()
        },
        200,
    );
    run_all(&mut kernel);
    let records = drain();
    let reasons: Vec<_> = records.iter().map(|r| r.verdict).collect();
    let want: Vec<_> = cases[1..]
        .iter()
        .map(|c| match c.verdict {
            Verdict::Drop(reason) => super::observe::RecordVerdict::Drop(reason),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(reasons, want);
    assert_eq!(dropped(), 0);

    // No tokens: every wanted verdict counted, none recorded.
    arm(Filter::default(), 0);
    run_all(&mut kernel);
    assert!(drain().is_empty());
    assert_eq!(dropped(), 3, "each wanted verdict over the rate is counted");
    // A wanted frame the program hands off (an echo to the gateway) is the
    // pipeline's to sample: counted on arrival, taken back.
    let to_gateway = fixture_case(
        &rig,
        &mut last,
        P1,
        &crate::process::tests::ping4(MAC_A, Some(100), [10, 0, 0, 10], [10, 0, 0, 1]),
    );
    assert_eq!(kernel.run(&to_gateway), Outcome::Handoff);
    assert!(drain().is_empty());
    assert_eq!(dropped(), 3, "a frame handed off is not counted here");

    // Off again: nothing more.
    maps.update("tier_observe", &0u32.to_ne_bytes(), &ObsFilter::OFF)
        .expect("disarm");
    run_all(&mut kernel);
    assert!(drain().is_empty());
    assert_eq!(dropped(), 3);
}

/// Observe over the rate in the tier: once a CPU's tokens of the second
/// are spent every wanted verdict is counted and none recorded; a new
/// second brings tokens within the program's recheck (64 counted frames a
/// CPU); a new observation starts with its tokens full whatever the last
/// one left; and at every step recorded + counted is every wanted verdict.
#[test]
fn verdicts_over_the_rate_are_counted_until_a_new_second_or_observation_brings_tokens() {
    use super::observe::{ObsFilter, not_recorded};
    use crate::process::tests::{MAC_A, udp4};
    use crate::sample::Filter;
    /// The program's OBS_RECHECK + 1.
    const RECHECK: usize = 64;
    let rig = Rig::new(&fixture());
    let mut kernel = Kernel::new("n");
    let mut last = None;
    let maps = kernel.tier.maps();
    let routed = udp4(MAC_A, GW, Some(100), [10, 0, 0, 10], [10, 0, 1, 20], 64);
    let case = fixture_case(&rig, &mut last, P1, &routed);
    assert!(matches!(case.verdict, Verdict::Transmit { .. }));
    let per_cpu = || {
        maps.lookup_per_cpu("tier_stats", &0u32.to_ne_bytes())
            .expect("tier_stats")
    };
    // One CPU's tokens: this thread (the test's own) pinned to the first
    // CPU it may run on, through taskset (the crate has no unsafe code).
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("thread status");
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list");
    let first: String = allowed
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let tid = std::fs::read_link("/proc/thread-self").expect("thread-self");
    let tid = tid.file_name().expect("a thread id").to_string_lossy();
    sh(&format!("taskset -p -c {first} {tid} >/dev/null"));
    let cpus = 1;
    let records = || {
        let mut n = 0;
        maps.drain_observations(|_| n += 1);
        n
    };
    let epoch = Cell::new(0);
    // One record a second per CPU.
    let arm = || {
        epoch.set(epoch.get() + 1);
        let value = ObsFilter {
            filter: Filter::default(),
            ifindex: None,
            rate: 1,
            epoch: epoch.get(),
        }
        .encode();
        maps.update("tier_observe", &0u32.to_ne_bytes(), &value)
            .expect("arm");
    };
    let second = || trunkline_xdp::tier::monotonic_ns() / 1_000_000_000;
    let run = |kernel: &mut Kernel| {
        let outcome = kernel.run(&case);
        assert!(compare(&case, &outcome) == Ok(true), "{outcome:?}");
    };
    let counted_before = not_recorded(&per_cpu());
    let (mut frames, mut recorded) = (0, 0);
    let check = |frames: usize, recorded: usize| {
        let counted = (not_recorded(&per_cpu()) - counted_before) as usize;
        assert_eq!(
            recorded + counted,
            frames,
            "every wanted verdict recorded or counted"
        );
    };

    // Spend: at most one record per CPU within a second.
    arm();
    let mut spent = false;
    for _ in 0..4 {
        let at = second();
        let got: usize = (0..8)
            .map(|_| {
                run(&mut kernel);
                records()
            })
            .sum();
        frames += 8;
        recorded += got;
        check(frames, recorded);
        if second() == at {
            assert!(got <= cpus, "{got} records in one second from {cpus} CPUs");
            spent = true;
            break;
        }
    }
    assert!(spent, "eight frames within one second");

    // A new second: a record again within the recheck.
    let next = second() + 1;
    // Wait for the clock's next second (what the program's recheck reads).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while second() < next {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock's second went by"
        );
        let remaining = (next * 1_000_000_000).saturating_sub(trunkline_xdp::tier::monotonic_ns());
        std::thread::sleep(std::time::Duration::from_nanos(remaining + 1_000_000));
    }
    let bound = RECHECK * cpus + cpus;
    let mut after = 0;
    while after < bound {
        run(&mut kernel);
        after += 1;
        let got = records();
        recorded += got;
        if got > 0 {
            break;
        }
    }
    frames += after;
    check(frames, recorded);
    assert!(
        after < bound,
        "no record within {bound} frames of a new second"
    );

    // Spent again, then a new observation: its first frame is recorded.
    for _ in 0..2 * cpus {
        run(&mut kernel);
        recorded += records();
        frames += 1;
    }
    arm();
    run(&mut kernel);
    frames += 1;
    let got = records();
    recorded += got;
    assert_eq!(got, 1, "a new observation's tokens start full");
    check(frames, recorded);

    maps.update("tier_observe", &0u32.to_ne_bytes(), &ObsFilter::OFF)
        .expect("disarm");
}
