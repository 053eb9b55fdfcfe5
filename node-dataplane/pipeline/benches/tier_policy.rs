//! What security groups and network policies cost the XDP tier
//! (`tier.bpf.c`) once a flow is established, measured by the kernel
//! (issue 18's goal: forwarding with 100 rules on the VMI at least 0.8×
//! of no policy, same run). The real
//! program, loaded, with the image of the 4096-VMI tables of
//! `fixture/mod.rs` in its maps, and the flow map as the agent's mirror
//! writes it, runs frames through BPF_PROG_RUN; the kernel's own per-run
//! duration is kept (`make bench-tier-policy`, root).
//!
//! ```text
//!  tables: fixture + VMIs at VLAN 101 (port 1), 201 (port 1) and 101
//!          (port 2) policed (205 on port 1, same network, is not), 100
//!          rules each way (99 TCP rules that never match, the last
//!          allows UDP); networks ns/net3 and ns/net1 connected by a
//!          network policy of 100 rules alike (each gets the other's VMI
//!          host routes, and ns/net3 a host route to a VMI of ns/net1 on
//!          node-b, through a tunnel); node-b resolved
//!  pipeline: each frame once through Pipeline::with_flows (the first
//!          packets: flows in both policed VMIs' zones, and in the
//!          connection's zone)
//!  netns tltp<pid>: p1001 p1002 (trunks), p1003 (fabric), down
//!  Tier::load ─ attach ─ Mirror::install(image) ─ tier_flows ← every entry
//!  per round, pair order alternated: B × BPF_PROG_RUN(frame, repeat 1),
//!          median ns; bridged frames also once with repeat B (the mean)
//!  medians over rounds; ratio = ns unpoliced / ns policed (throughput)
//! ```
//!
//! Pairs of frames on one topology, unpoliced against policed: routed
//! IPv4 UDP VLAN 100 → VLAN 200 against VLAN 101 → VLAN 205 (the sender
//! policed: its egress entry looked up) and against VLAN 101 → VLAN 201
//! (both policed: the sender's egress and the receiver's ingress entries)
//! on port 1 (XDP_TX: MACs, TTL, re-tag), and bridged from port 1 VLAN
//! 100 (101) to port 2 VLAN 100 (101), both policed (devmap redirect; the
//! frame leaves unchanged, so repeats measure its path with the clock
//! amortised); and routed IPv4 UDP VLAN 100 → VLAN 200 (one network)
//! against VLAN 100 → VLAN 102 (ns/net3 into ns/net1 by the network
//! policy, neither VMI policed: the link's entry looked up); and routed
//! IPv4 UDP VLAN 100 to the remote VMI of its own network on node-b
//! against VLAN 100 to a VMI of ns/net1 on node-b by the network policy
//! (the link's entry looked up at the sender, then the same MPLS-over-UDP
//! encapsulation; devmap redirect to the fabric); and their answers as the
//! receiving node gets them, MPLS over UDP from node-b on the fabric port
//! with VLAN 100's label, from the remote VMI of its network against from
//! the connected VMI (the inner source's route looked up in the linked
//! VRF, then the link's entry; devmap redirect to port 1).
//! Before measuring, every frame is checked to be decided in the kernel
//! with the pipeline's bytes and egress, and the policed ones to be flow
//! stage hits.
//!
//! Flags (after `--`): `--rounds N` (default 200), `--runs B` (default
//! 200), `--smoke` (20 rounds), `--out FILE` (also write the markdown
//! table there).

use std::cell::RefCell;
use std::net::IpAddr;
use std::process::{Command, ExitCode};
use std::sync::Arc;

use trunkline_pipeline::config::LinkedVmiConfig;
use trunkline_pipeline::flow::{FlowConfig, FlowTable};
use trunkline_pipeline::kernel::flows::{FLOWS_MAP, entry, key_bytes};
use trunkline_pipeline::kernel::{KernelCounters, MapWriter, Mirror, TierMap, VMI_STATS_SIZE};
use trunkline_pipeline::network_policy::{LinkConfig, NetworkAction, NetworkRule, PolicyRules};
use trunkline_pipeline::policy::{Policy, PortRange, Rule, RuleId, RuleProtocol};
use trunkline_pipeline::{
    Counters, DEFAULT_GATEWAY_MAC, Encapsulation, HEADROOM, Pipeline, PortId, Tables, Verdict,
};
use trunkline_xdp::tier::{Tier, TierMaps, TierPort, TierPortKind};

mod fixture;
use fixture::{
    FABRIC, FABRIC_MAC, NETWORKS, PEER, UNDERLAY, VLANS_PER_PORT, config, label, udp_frame, vmi_at,
    vmi_ip, vmi_mac,
};

/// The interface of a port in the benchmark's namespace.
fn ifindex(port: PortId) -> Option<u32> {
    Some(1000 + u32::from(port.0))
}

/// The tier's maps as the mirror's writer.
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
        self.0
            .update_per_cpu("tier_vmi_stats", &slot.to_ne_bytes(), &[0; VMI_STATS_SIZE])
    }
}

/// The benchmark's network namespace, removed on drop.
struct Netns(String);

impl Netns {
    fn create() -> Result<Netns, String> {
        let name = format!("tltp{}", std::process::id());
        sh(&format!("ip netns add {name}"))?;
        let netns = Netns(name);
        for port in [1u16, 2, 3] {
            let i = ifindex(PortId(port)).expect("an interface");
            // Down: no frame but the benchmark's reaches the program.
            sh(&format!(
                "ip -n {} link add name p{i} index {i} type veth peer name q{i} index {}",
                netns.0,
                i + 1000
            ))?;
        }
        Ok(netns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sh(cmd: &str) -> Result<(), String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn is_root() -> bool {
    // Through `id`: the crate forbids unsafe code (geteuid).
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

struct Args {
    rounds: usize,
    runs: u32,
    out: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        rounds: 200,
        runs: 200,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            // cargo bench passes it to every bench binary.
            "--bench" => {}
            "--smoke" => a.rounds = 20,
            "--rounds" => {
                a.rounds = value("--rounds")?
                    .parse()
                    .map_err(|e| format!("--rounds: {e}"))?
            }
            "--runs" => {
                a.runs = value("--runs")?
                    .parse()
                    .map_err(|e| format!("--runs: {e}"))?
            }
            "--out" => a.out = Some(value("--out")?),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (--rounds N, --runs B, --smoke, --out FILE)"
                ));
            }
        }
    }
    if a.rounds == 0 || a.runs == 0 {
        return Err("--rounds and --runs must be at least 1".into());
    }
    Ok(a)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// 100 rules: 99 TCP rules on ports no frame uses, the last allows UDP.
fn rules() -> Vec<Rule> {
    (0..100u16)
        .map(|index| Rule {
            id: RuleId { group: 0, index },
            ipv6: false,
            protocol: if index == 99 {
                RuleProtocol::Udp
            } else {
                RuleProtocol::Tcp
            },
            ports: (index < 99).then_some(PortRange {
                min: 1000 + index,
                max: 1000 + index,
            }),
            remote: None,
        })
        .collect()
}

/// The network policy's 100 rules, for either direction: 99 TCP rules on
/// ports no frame uses, the last allows UDP.
fn link_rules() -> Vec<NetworkRule> {
    (0..100u16)
        .map(|index| NetworkRule {
            index,
            action: NetworkAction::Allow,
            protocol: if index == 99 {
                RuleProtocol::Udp
            } else {
                RuleProtocol::Tcp
            },
            ports: (index < 99).then_some(PortRange {
                min: 1000 + index,
                max: 1000 + index,
            }),
        })
        .collect()
}

/// A UDP frame bridged from VMI `src` (port 1, `vlan`) to VMI `dst`.
fn bridged_frame(src: usize, vlan: u16, dst: usize) -> Vec<u8> {
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2(vmi_mac(src), vmi_mac(dst))
        .single_vlan(etherparse::VlanId::try_new(vlan).expect("a VLAN"))
        .ipv4(vmi_ip(src), vmi_ip(dst), 64)
        .udp(40000, 53)
        .write(&mut frame, &[0u8; 18])
        .expect("a frame");
    frame
}

/// A routed UDP frame from VMI `src` (port 1, `vlan`) to address `dst`
/// (a VMI on another node).
fn routed_to(src: usize, vlan: u16, dst: [u8; 4]) -> Vec<u8> {
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2(vmi_mac(src), DEFAULT_GATEWAY_MAC)
        .single_vlan(etherparse::VlanId::try_new(vlan).expect("a VLAN"))
        .ipv4(vmi_ip(src), dst, 64)
        .udp(40000, 53)
        .write(&mut frame, &[0u8; 18])
        .expect("a frame");
    frame
}

/// The answer of address `src` (UDP 53) to VMI `dst` (UDP 40000) as node
/// b tunnels it: MPLS over UDP from the peer with `dst`'s routed label.
fn answer_from(src: [u8; 4], dst: usize) -> Vec<u8> {
    let mut inner = Vec::new();
    etherparse::PacketBuilder::ipv4(src, vmi_ip(dst), 63)
        .udp(53, 40000)
        .write(&mut inner, &[0u8; 18])
        .expect("a packet");
    let mut payload = ((label(dst) << 12) | 0x100 | 64).to_be_bytes().to_vec();
    payload.extend_from_slice(&inner);
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0xfa, 0, 0, 0, 2], FABRIC_MAC)
        .ipv4(PEER, UNDERLAY, 64)
        .udp(50000, 6635)
        .write(&mut frame, &payload)
        .expect("a frame");
    frame
}

/// A frame of a pair, what the pipeline made of it.
struct Frame {
    ingress: PortId,
    frame: Vec<u8>,
    out: Vec<u8>,
    egress: PortId,
    policed: bool,
}

/// Two frames on one path, unpoliced and policed.
struct Pair {
    name: &'static str,
    frames: [Frame; 2],
    /// The program leaves the frames unchanged: repeats measure the path.
    idempotent: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tier_policy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = args()?;
    let (plain_from, plain_to) = (vmi_at(100), vmi_at(200));
    let (from, to, unpoliced_to) = (vmi_at(101), vmi_at(201), vmi_at(205));
    let (plain_bridged, bridged) = (plain_from + VLANS_PER_PORT, from + VLANS_PER_PORT);
    // A VMI of another network than VLAN 100's (fixture: network i % 4).
    let linked_to = vmi_at(102);
    let mut config = config();
    let (red, blue) = (
        format!("ns/net{}", plain_from % 4),
        format!("ns/net{}", linked_to % 4),
    );
    for (from, to) in [(&red, &blue), (&blue, &red)] {
        config.network_links.push(LinkConfig {
            from: from.clone(),
            to: to.clone(),
            policies: vec![PolicyRules {
                policy: "ns/bench".into(),
                rules: link_rules(),
            }],
        });
    }
    // A VMI of blue on node-b, connected to red by the policy: a host
    // route through a tunnel in red's VRF. Red's own remote VMI (fixture:
    // 10.n.200.1 on node-b) is the unpoliced counterpart.
    let red_n = plain_from % NETWORKS;
    let linked_ip = [10, (linked_to % NETWORKS) as u8, 201, 1];
    let remote_ip = [10, red_n as u8, 200, 1];
    config.linked_vmis.push(LinkedVmiConfig {
        key: "ns/linked-0".into(),
        network: blue.clone(),
        peer: "node-b".into(),
        mac: [2, 0, 0, 9, 1, 0],
        ips: vec![IpAddr::from(linked_ip)],
        label: Some(200_000),
        vni: None,
        encapsulations: vec![Encapsulation::MplsOverUdp],
    });
    for i in [from, to, bridged] {
        config.policies.insert(
            format!("ns/vmi-{i}"),
            Policy {
                groups: vec!["bench".into()],
                ingress: rules(),
                egress: rules(),
            },
        );
    }
    let (tables, rejected) = Tables::compile(&config);
    if !rejected.is_empty() {
        return Err(format!("the tables refused {rejected:?}"));
    }
    tables.set_next_hop_mac(
        IpAddr::from(PEER),
        Some(trunkline_wire::EthernetAddress([2, 0xfa, 0, 0, 0, 2])),
    );
    // The specification first: the pipeline forwards every frame; the
    // policed ones' first packets open their flows (on the kernel's clock:
    // the entries' last-seen compare with it).
    let counters = Counters::for_worker(0);
    let flows = RefCell::new(FlowTable::new(FlowConfig::default()));
    let now = trunkline_xdp::tier::monotonic_ns();
    let pipeline = Pipeline::new(&tables, &counters).with_flows(&flows, now);
    let decide_on = |ingress: PortId, frame: Vec<u8>, policed: bool| -> Result<Frame, String> {
        let mut buf = vec![0u8; HEADROOM + frame.len() + 64];
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(&frame);
        match pipeline.process(ingress, &mut buf, HEADROOM, frame.len()) {
            Verdict::Transmit {
                port, offset, len, ..
            } => Ok(Frame {
                ingress,
                out: buf[offset..offset + len].to_vec(),
                frame,
                egress: port,
                policed,
            }),
            other => Err(format!("the pipeline says {other:?}")),
        }
    };
    let decide = |frame: Vec<u8>, policed: bool| decide_on(PortId(1), frame, policed);
    let pairs = [
        Pair {
            name: "routed IPv4 UDP, port 1 VLAN 100 (101) -> VLAN 200 (205), the sender policed (XDP_TX)",
            frames: [
                decide(udp_frame(plain_from, 100, plain_to), false)?,
                decide(udp_frame(from, 101, unpoliced_to), true)?,
            ],
            idempotent: false,
        },
        Pair {
            name: "routed IPv4 UDP, port 1 VLAN 100 (101) -> VLAN 200 (201), both policed (XDP_TX)",
            frames: [
                decide(udp_frame(plain_from, 100, plain_to), false)?,
                decide(udp_frame(from, 101, to), true)?,
            ],
            idempotent: false,
        },
        Pair {
            name: "bridged IPv4 UDP, port 1 -> port 2, VLAN 100 (101), both policed (redirect)",
            frames: [
                decide(bridged_frame(plain_from, 100, plain_bridged), false)?,
                decide(bridged_frame(from, 101, bridged), true)?,
            ],
            idempotent: true,
        },
        Pair {
            name: "routed IPv4 UDP, port 1 VLAN 100 -> VLAN 200 (one network) vs -> VLAN 102 (another network, by a network policy of 100 rules) (XDP_TX)",
            frames: [
                decide(udp_frame(plain_from, 100, plain_to), false)?,
                decide(udp_frame(plain_from, 100, linked_to), true)?,
            ],
            idempotent: false,
        },
        Pair {
            name: "routed IPv4 UDP, port 1 VLAN 100 -> a VMI on another node: of its network vs of another network, by a network policy of 100 rules (MPLS over UDP, redirect to the fabric)",
            frames: [
                decide(routed_to(plain_from, 100, remote_ip), false)?,
                decide(routed_to(plain_from, 100, linked_ip), true)?,
            ],
            idempotent: false,
        },
        // After the pair above: the answers hit the flows it opened.
        Pair {
            name: "MPLS over UDP from another node to VLAN 100: from a remote VMI of its network vs from a VMI of another network, by a network policy of 100 rules (redirect to port 1)",
            frames: [
                decide_on(FABRIC, answer_from(remote_ip, plain_from), false)?,
                decide_on(FABRIC, answer_from(linked_ip, plain_from), true)?,
            ],
            idempotent: false,
        },
    ];
    // Each policed frame: the sender's egress and, when policed, the
    // receiver's ingress, each a flow in its VMI's zone; the linked frames
    // (to a VMI here, to one on node-b): a flow each in the connection's
    // zone.
    let opened = flows.borrow().len();
    if opened != 7 {
        return Err(format!("{opened} flows opened, expected 7"));
    }
    if pairs[4].frames.iter().any(|f| f.egress != FABRIC) {
        return Err("the frames to node-b do not leave by the fabric".into());
    }
    if pairs[5].frames.iter().any(|f| f.egress != PortId(1)) {
        return Err("the answers from node-b do not reach VLAN 100".into());
    }

    if !is_root() {
        return Err(
            "needs root (a network namespace, BPF): run it as root (make bench-tier-policy)".into(),
        );
    }
    let netns = Netns::create()?;
    trunkline_xdp::enter_network_namespace(std::path::Path::new(&format!(
        "/run/netns/{}",
        netns.0
    )))
    .map_err(|e| format!("enter {}: {e}", netns.0))?;
    let tier = Arc::new(Tier::load(false).map_err(|e| e.to_string())?);
    let _ports: Vec<TierPort> = [PortId(1), PortId(2), FABRIC]
        .iter()
        .map(|p| {
            let i = ifindex(*p).expect("an interface");
            let kind = if *p == FABRIC {
                TierPortKind::Fabric(IpAddr::from(UNDERLAY))
            } else {
                TierPortKind::Trunk
            };
            tier.attach(
                &format!("p{i}"),
                i,
                trunkline_xdp::AttachMode::Generic,
                kind,
            )
            .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let maps = tier.maps();
    let mut mirror = Mirror::default();
    let image = mirror.build(&tables, ifindex);
    mirror
        .install(image, &mut Writer(&maps))
        .map_err(|e| format!("install the image: {e}"))?;
    // The flow map as the agent's mirror writes it.
    {
        let table = flows.borrow();
        for (id, _, _) in table.flows() {
            for id in [id, id.other()] {
                let kernel = entry(
                    &tables,
                    mirror.slots(),
                    table.key(id),
                    table.value(id),
                    table.idle_timeout(id),
                )
                .ok_or("an allowed flow has a kernel entry")?;
                maps.update(FLOWS_MAP, &key_bytes(table.key(id)), &kernel)
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    let flow_hits = || -> Result<u64, String> {
        maps.lookup_per_cpu("tier_stats", &0u32.to_ne_bytes())
            .map(|v| KernelCounters::from_per_cpu(&v).flow_hits)
            .map_err(|e| e.to_string())
    };
    let once = |f: &Frame, repeat: u32| {
        tier.test_run_repeat(ifindex(f.ingress).expect("a port"), &f.frame, repeat)
            .map_err(|e| e.to_string())
    };

    // Each frame is decided in the kernel as the pipeline decides it; a
    // policed one by the flow stage.
    for pair in &pairs {
        for f in &pair.frames {
            let before = flow_hits()?;
            let run = once(f, 1)?;
            let want = if f.egress == f.ingress { 3 } else { 4 };
            let hits = flow_hits()? - before;
            if run.return_value != want || run.frame != f.out || hits != u64::from(f.policed) {
                return Err(format!(
                    "{} (policed {}): the kernel returned {} with {} flow stage hits, the bytes {}",
                    pair.name,
                    f.policed,
                    run.return_value,
                    hits,
                    if run.frame == f.out {
                        "the pipeline's"
                    } else {
                        "not the pipeline's"
                    }
                ));
            }
        }
    }

    // [pair][frame]: per-round medians of single runs; bridged: per-round
    // means of repeat-B runs.
    let mut single = vec![[Vec::new(), Vec::new()]; pairs.len()];
    let mut repeated = vec![[Vec::new(), Vec::new()]; pairs.len()];
    for round in 0..args.rounds {
        for (p, pair) in pairs.iter().enumerate() {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for k in order {
                let f = &pair.frames[k];
                let mut ns = Vec::with_capacity(args.runs as usize);
                for _ in 0..args.runs {
                    ns.push(once(f, 1)?.ns_per_run as f64);
                }
                single[p][k].push(median(&mut ns));
                if pair.idempotent {
                    repeated[p][k].push(once(f, args.runs)?.ns_per_run as f64);
                }
            }
        }
    }
    let mut table = String::new();
    table.push_str(&format!(
        "XDP tier, security groups and network policies: ns per frame measured by the kernel (BPF_PROG_RUN), 4,096 VMIs, policed VMIs with 100 rules each way, a network policy of 100 rules each way; {} rounds of {} runs, medians\n\n",
        args.rounds, args.runs
    ));
    table.push_str("| frame | method | unpoliced (one network) | policed (across the policy), established | throughput ratio |\n|---|---|---|---|---|\n");
    for (p, pair) in pairs.iter().enumerate() {
        let mut rows = vec![("one run per call", &mut single[p])];
        if pair.idempotent {
            rows.push(("repeat B (mean)", &mut repeated[p]));
        }
        for (method, values) in rows {
            let [none, policed] = values;
            let (none, policed) = (median(none), median(policed));
            table.push_str(&format!(
                "| {} | {method} | {none:.0} ns | {policed:.0} ns | {:.2} |\n",
                pair.name,
                none / policed
            ));
        }
    }
    print!("{table}");
    if let Some(path) = &args.out {
        if let Some(dir) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{path}: {e}"))?;
        }
        std::fs::write(path, &table).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}
