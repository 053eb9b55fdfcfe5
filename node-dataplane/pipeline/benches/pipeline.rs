//! Per-packet cost of the pipeline and compile time of the tables, on a
//! node with 4096 VMIs and logical interfaces: two gateway ports, VLANs
//! 1..=2048 on each, spread over four networks, each also hosted by a peer
//! node with one remote VMI (the overlay: encapsulation and
//! decapsulation with MPLS over UDP; `fixture/mod.rs`, shared with
//! `tier_observe.rs`).
//!
//! Each iteration copies the frame back into its buffer (the pipeline
//! rewrites it in place); `copy_only` measures that copy alone.
//!
//! `observe/*`: a batch of 64 routed frames as the forwarding thread runs
//! it, with the Observe sampler idle (one relaxed load per batch) and
//! armed (per batch: one try_lock for the filter and the budget; per frame:
//! the filter compared in place before `process`, the verdict after it),
//! with a filter every frame matches (the worst case: each frame is wanted;
//! once the second's 200 tokens are spent, each is counted as dropped), one
//! none does, and one for another port (skipped per batch); and `paired`:
//! idle and armed-matching batches back to back in one loop, the ratio of
//! their medians printed (`observe/paired: ... = 0.9xx idle`): on a shared,
//! loaded machine, separate runs differ by more than the cost measured
//! (`make bench-observe`).
//!
//! `policy/*`: security groups (issue 18), the routed frame between two
//! policed VMIs with 100 rules each (99 that never match, the last allows
//! UDP) against the same frame unpoliced: an established flow (two flow
//! table hits, one per VMI's zone) and a first packet (both VMIs' rules
//! scanned, two flows inserted; the iteration removes them again, so
//! `first_packet` is the cost of a new flow, both directions decided).
//!
//! `network_policy/*`: network policies (issue 18), a routed frame from a
//! VMI of ns/net3 to one of ns/net2, connected by a policy of 100 rules
//! (99 TCP rules that never match the UDP frame, the last allows UDP),
//! against a routed frame inside ns/net3 in the same run: an established
//! flow (one flow-table hit in the connection's zone) and a first packet
//! (the rules scanned, a flow inserted and removed again).

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use trunkline_pipeline::sample::{Filter, Pending, Sampler};
use trunkline_pipeline::{
    Counters, DEFAULT_GATEWAY_MAC, HEADROOM, Pipeline, PortId, Tables, Verdict,
};

mod fixture;
use fixture::{
    FABRIC, FABRIC_MAC, NETWORKS, PEER, UNDERLAY, VMIS, config, label, udp_frame, vmi_at, vmi_ip,
    vmi_mac,
};

fn arp_frame(src: usize, vlan: u16, target: [u8; 4]) -> Vec<u8> {
    let arp = etherparse::ArpPacket::new(
        etherparse::ArpHardwareId::ETHERNET,
        etherparse::EtherType::IPV4,
        etherparse::ArpOperation::REQUEST,
        &vmi_mac(src),
        &vmi_ip(src),
        &[0; 6],
        &target,
    )
    .unwrap();
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2(vmi_mac(src), [0xff; 6])
        .single_vlan(etherparse::VlanId::try_new(vlan).unwrap())
        .arp(arp)
        .write(&mut frame)
        .unwrap();
    frame
}

/// An MPLS-over-UDP packet from the peer carrying `inner` (an IP packet)
/// with `label`.
fn tunnel_frame(label: u32, inner: &[u8]) -> Vec<u8> {
    let mut payload = ((label << 12) | 0x100 | 64).to_be_bytes().to_vec();
    payload.extend_from_slice(inner);
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0xfa, 0, 0, 0, 2], FABRIC_MAC)
        .ipv4(PEER, UNDERLAY, 64)
        .udp(50000, 6635)
        .write(&mut frame, &payload)
        .unwrap();
    frame
}

fn bench_frame(
    c: &mut Criterion,
    name: &str,
    pipeline: &Pipeline<'_>,
    port: PortId,
    frame: &[u8],
    check: fn(&Verdict) -> bool,
) {
    let mut buf = vec![0u8; HEADROOM + frame.len() + 64];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    let verdict = pipeline.process(port, &mut buf, HEADROOM, frame.len());
    assert!(check(&verdict), "{name}: unexpected {verdict:?}");
    c.bench_function(name, |b| {
        b.iter(|| {
            buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
            black_box(pipeline.process(black_box(port), black_box(&mut buf), HEADROOM, frame.len()))
        })
    });
}

fn benches(c: &mut Criterion) {
    let config = config();
    let (tables, rejected) = Tables::compile(&config);
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(tables.logical_interfaces().len(), VMIS);
    tables.set_next_hop_mac(
        IpAddr::from(PEER),
        Some(trunkline_wire::EthernetAddress([2, 0xfa, 0, 0, 0, 2])),
    );
    let counters = Counters::for_worker(0);
    let pipeline = Pipeline::new(&tables, &counters);

    let routed = udp_frame(vmi_at(100), 100, vmi_at(200));
    let arp = arp_frame(vmi_at(100), 100, [10, (vmi_at(100) % NETWORKS) as u8, 0, 1]);
    let dropped = udp_frame(vmi_at(100), 3000, vmi_at(200));

    let mut buf = vec![0u8; HEADROOM + routed.len()];
    c.bench_function("copy_only", |b| {
        b.iter(|| {
            buf[HEADROOM..].copy_from_slice(black_box(&routed));
            black_box(&mut buf);
        })
    });
    bench_frame(
        c,
        "routed_ipv4_vlan100_to_vlan200",
        &pipeline,
        PortId(1),
        &routed,
        |v| {
            matches!(
                v,
                Verdict::Transmit {
                    port: PortId(1),
                    ..
                }
            )
        },
    );
    bench_frame(c, "arp_request_answered", &pipeline, PortId(1), &arp, |v| {
        matches!(
            v,
            Verdict::Transmit {
                port: PortId(1),
                ..
            }
        )
    });
    bench_frame(
        c,
        "dropped_no_logical_interface",
        &pipeline,
        PortId(1),
        &dropped,
        |v| matches!(v, Verdict::Drop(_)),
    );
    // The overlay: routed to a VMI behind the peer (encapsulation), and a
    // tunnel packet for a local VMI (decapsulation, then a VLAN tag pushed).
    let src = vmi_at(100);
    let mut to_remote = Vec::new();
    etherparse::PacketBuilder::ethernet2(vmi_mac(src), DEFAULT_GATEWAY_MAC)
        .single_vlan(etherparse::VlanId::try_new(100).unwrap())
        .ipv4(vmi_ip(src), [10, (src % NETWORKS) as u8, 200, 1], 64)
        .udp(40000, 53)
        .write(&mut to_remote, &[0u8; 18])
        .unwrap();
    bench_frame(
        c,
        "routed_ipv4_encapsulated_mpls_over_udp",
        &pipeline,
        PortId(1),
        &to_remote,
        |v| matches!(v, Verdict::Transmit { port: FABRIC, .. }),
    );
    let inner = &udp_frame(vmi_at(200), 200, src)[18..];
    bench_frame(
        c,
        "decapsulated_mpls_over_udp_to_vlan100",
        &pipeline,
        FABRIC,
        &tunnel_frame(label(src), inner),
        |v| {
            matches!(
                v,
                Verdict::Transmit {
                    port: PortId(1),
                    ..
                }
            )
        },
    );

    let mut group = c.benchmark_group("compile");
    group.sample_size(20);
    group.bench_function("tables_4096_vmis_and_logical_interfaces", |b| {
        b.iter(|| black_box(Tables::compile(black_box(&config))))
    });
    group.finish();
}

/// One batch of `frames` routed frames as `forward.rs` runs it: the
/// frames are in their buffers before the batch is decided (as the receive
/// ring hands them over), then each is decided.
fn forward_batch(
    pipeline: &Pipeline<'_>,
    sampler: &Sampler,
    bufs: &mut [Vec<u8>],
    frame: &[u8],
) -> usize {
    for buf in bufs.iter_mut() {
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    }
    let mut sampling = sampler.batch(PortId(1), 0);
    let mut sent = 0;
    for buf in bufs.iter_mut() {
        let pending = match sampling.as_mut() {
            Some(sampling) => sampling.before(&buf[HEADROOM..HEADROOM + frame.len()]),
            None => Pending::Skip,
        };
        let verdict = pipeline.process(PortId(1), buf, HEADROOM, frame.len());
        if let Some(sampling) = sampling.as_mut() {
            sampling.after(pending, &verdict, buf, 0);
        }
        sent += usize::from(matches!(verdict, Verdict::Transmit { .. }));
    }
    sent
}

fn observe_benches(c: &mut Criterion) {
    let (tables, _) = Tables::compile(&config());
    let counters = Counters::for_worker(0);
    let pipeline = Pipeline::new(&tables, &counters);
    let routed = udp_frame(vmi_at(100), 100, vmi_at(200));
    let mut bufs = vec![vec![0u8; HEADROOM + routed.len() + 64]; 64];
    let sampler = Sampler::default();
    let mut group = c.benchmark_group("observe");
    group.throughput(criterion::Throughput::Elements(bufs.len() as u64));
    group.bench_function("batch64_routed_idle", |b| {
        b.iter(|| black_box(forward_batch(&pipeline, &sampler, &mut bufs, &routed)))
    });
    let src = IpAddr::from(vmi_ip(vmi_at(100)));
    let filters = [
        (
            "batch64_routed_armed_matching",
            Filter {
                ip: Some(src),
                ..Filter::default()
            },
        ),
        (
            "batch64_routed_armed_filtered_out",
            Filter {
                ip: Some(IpAddr::from([192, 0, 2, 1])),
                ..Filter::default()
            },
        ),
        (
            "batch64_routed_armed_other_port",
            Filter {
                port: Some(PortId(2)),
                ..Filter::default()
            },
        ),
    ];
    // Paired: each iteration runs one batch with the sampler idle and one
    // with another sampler armed with the matching filter, back to back
    // (order alternating), so that the load of a shared machine falls on
    // both alike; criterion times the armed batches, and the ratio of the
    // medians (idle / armed: the throughput armed as a share of idle) is
    // printed. This is the figure the ≥ 0.95× goal is checked against.
    let armed = Sampler::default();
    let session = armed.arm(filters[0].1, 256, 0).expect("armed");
    let pairs = std::cell::RefCell::new(Vec::<(u64, u64)>::new());
    group.bench_function("batch64_routed_paired_armed_matching", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            let mut pairs = pairs.borrow_mut();
            for i in 0..iters {
                let mut times = [0u64; 2];
                for which in if i % 2 == 0 { [0, 1] } else { [1, 0] } {
                    let sampler = if which == 0 { &sampler } else { &armed };
                    let start = std::time::Instant::now();
                    black_box(forward_batch(&pipeline, sampler, &mut bufs, &routed));
                    let took = start.elapsed();
                    times[which] = took.as_nanos() as u64;
                    if which == 1 {
                        total += took;
                    }
                }
                pairs.push((times[0], times[1]));
            }
            total
        })
    });
    let (samples, dropped) = session.finish();
    let pairs = pairs.into_inner();
    // Unless criterion's filter skipped it.
    if !pairs.is_empty() {
        assert!(!samples.is_empty() && dropped > 0, "the filter matched");
        let median = |mut v: Vec<u64>| {
            v.sort_unstable();
            v[v.len() / 2]
        };
        let idle = median(pairs.iter().map(|p| p.0).collect());
        let armed = median(pairs.iter().map(|p| p.1).collect());
        println!(
            "observe/paired: {} pairs of 64-frame batches, median idle {idle} ns, armed (matching) {armed} ns: armed throughput = {:.3}x idle",
            pairs.len(),
            idle as f64 / armed as f64
        );
    }
    for (name, filter) in filters {
        let session = sampler.arm(filter, 256, 0).expect("armed");
        let ran = std::cell::Cell::new(false);
        group.bench_function(name, |b| {
            ran.set(true);
            b.iter(|| black_box(forward_batch(&pipeline, &sampler, &mut bufs, &routed)))
        });
        let (samples, dropped) = session.finish();
        // Unless criterion's filter skipped it.
        if filter.ip == Some(src) && ran.get() {
            assert!(
                !samples.is_empty() && dropped > 0,
                "{} {dropped}",
                samples.len()
            );
        }
    }
    group.finish();
}

fn policy_benches(c: &mut Criterion) {
    use std::cell::RefCell;
    use trunkline_pipeline::flow::{FlowConfig, FlowTable};
    use trunkline_pipeline::policy::{Policy, PortRange, Rule, RuleId, RuleProtocol};
    let (from, to) = (vmi_at(100), vmi_at(200));
    let frame = udp_frame(from, 100, to);
    let routed = |v: &Verdict| {
        matches!(
            v,
            Verdict::Transmit {
                port: PortId(1),
                ..
            }
        )
    };
    let rules = || -> Vec<Rule> {
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
    };
    let mut config = config();
    for i in [from, to] {
        config.policies.insert(
            format!("ns/vmi-{i}"),
            Policy {
                groups: vec!["bench".into()],
                ingress: rules(),
                egress: rules(),
            },
        );
    }
    let (plain, _) = Tables::compile(&self::config());
    let (policed, rejected) = Tables::compile(&config);
    assert!(rejected.is_empty(), "{rejected:?}");
    let counters = Counters::for_worker(0);
    let flows = RefCell::new(FlowTable::new(FlowConfig::default()));
    let mut group = c.benchmark_group("policy");
    let mut buf = vec![0u8; HEADROOM + frame.len() + 64];
    for (name, tables) in [("unpoliced", &plain), ("established_100_rules", &policed)] {
        let pipeline = Pipeline::new(tables, &counters).with_flows(&flows, 1);
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(&frame);
        let verdict = pipeline.process(PortId(1), &mut buf, HEADROOM, frame.len());
        assert!(routed(&verdict), "{name}: {verdict:?}");
        group.bench_function(name, |b| {
            b.iter(|| {
                buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(&frame);
                black_box(pipeline.process(PortId(1), black_box(&mut buf), HEADROOM, frame.len()))
            })
        });
    }
    // A table of a few flows, so that emptying it costs nothing.
    let few = RefCell::new(FlowTable::new(FlowConfig {
        capacity: 4,
        ..FlowConfig::default()
    }));
    let pipeline = Pipeline::new(&policed, &counters).with_flows(&few, 1);
    group.bench_function("first_packet_100_rules", |b| {
        b.iter(|| {
            buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(&frame);
            let verdict =
                black_box(pipeline.process(PortId(1), black_box(&mut buf), HEADROOM, frame.len()));
            let mut table = few.borrow_mut();
            loop {
                let first = table.flows().map(|(id, _, _)| id).next();
                match first {
                    Some(id) => table.remove(id),
                    None => break,
                }
            }
            assert!(routed(&verdict));
            verdict
        })
    });
    group.finish();
}

fn network_policy_benches(c: &mut Criterion) {
    use std::cell::RefCell;
    use trunkline_pipeline::flow::{FlowConfig, FlowTable};
    use trunkline_pipeline::network_policy::{LinkConfig, NetworkAction, NetworkRule, PolicyRules};
    use trunkline_pipeline::policy::{PortRange, RuleProtocol};
    // VMI 99 (VLAN 100) is in ns/net3, 199 in ns/net3, 198 in ns/net2.
    let (from, same, other) = (vmi_at(100), vmi_at(200), vmi_at(199));
    let inside = udp_frame(from, 100, same);
    let across = udp_frame(from, 100, other);
    let routed = |v: &Verdict| {
        matches!(
            v,
            Verdict::Transmit {
                port: PortId(1),
                ..
            }
        )
    };
    let rules: Vec<NetworkRule> = (0..100u16)
        .map(|index| NetworkRule {
            index,
            action: if index == 99 {
                NetworkAction::Allow
            } else {
                NetworkAction::Deny
            },
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
        .collect();
    let mut config = config();
    for (a, b) in [("ns/net3", "ns/net2"), ("ns/net2", "ns/net3")] {
        config.network_links.push(LinkConfig {
            from: a.into(),
            to: b.into(),
            policies: vec![PolicyRules {
                policy: "ns/bench".into(),
                rules: rules.clone(),
            }],
        });
    }
    let (tables, rejected) = Tables::compile(&config);
    assert!(rejected.is_empty(), "{rejected:?}");
    let counters = Counters::for_worker(0);
    let flows = RefCell::new(FlowTable::new(FlowConfig::default()));
    let mut group = c.benchmark_group("network_policy");
    let mut buf = vec![0u8; HEADROOM + across.len() + 64];
    let pipeline = Pipeline::new(&tables, &counters).with_flows(&flows, 1);
    for (name, frame) in [
        ("same_network", &inside),
        ("established_100_rules", &across),
    ] {
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        let verdict = pipeline.process(PortId(1), &mut buf, HEADROOM, frame.len());
        assert!(routed(&verdict), "{name}: {verdict:?}");
        group.bench_function(name, |b| {
            b.iter(|| {
                buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
                black_box(pipeline.process(PortId(1), black_box(&mut buf), HEADROOM, frame.len()))
            })
        });
    }
    let few = RefCell::new(FlowTable::new(FlowConfig {
        capacity: 4,
        ..FlowConfig::default()
    }));
    let pipeline = Pipeline::new(&tables, &counters).with_flows(&few, 1);
    group.bench_function("first_packet_100_rules", |b| {
        b.iter(|| {
            buf[HEADROOM..HEADROOM + across.len()].copy_from_slice(&across);
            let verdict =
                black_box(pipeline.process(PortId(1), black_box(&mut buf), HEADROOM, across.len()));
            let mut table = few.borrow_mut();
            loop {
                let first = table.flows().map(|(id, _, _)| id).next();
                match first {
                    Some(id) => table.remove(id),
                    None => break,
                }
            }
            assert!(routed(&verdict));
            verdict
        })
    });
    group.finish();
}

criterion_group! {
    name = pipeline;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = benches, policy_benches, network_policy_benches, observe_benches
}
criterion_main!(pipeline);
