//! Traces against the forwarding path: a trace of every test frame class
//! ends with the verdict `process` returns for the same frame on the same
//! tables (differential), and a trace changes nothing shared.

use proptest::prelude::*;

use super::tests::*;
use super::*;
use crate::config::NodeConfig;
use crate::observe::Stage;
use crate::trace::{self, Payload, Probe, TAILROOM};

/// The verdict and the frame as it leaves, with the trace's room around
/// the frame, on fresh tables.
fn forwarded(config: &NodeConfig, port: PortId, frame: &[u8]) -> (Verdict, Vec<u8>) {
    Rig::new(config).run_with(port, frame, HEADROOM, TAILROOM)
}

fn same_decision(config: &NodeConfig, name: &str, port: PortId, frame: &[u8]) {
    let rig = Rig::new(config);
    let traced = trace::trace_frame(&rig.tables, port, frame);
    let (verdict, out) = forwarded(config, port, frame);
    assert_eq!(traced.verdict, verdict, "case {name}: {traced}");
    let last = traced.steps.last().expect("a verdict step");
    assert_eq!(last.stage, Stage::Verdict, "case {name}");
    if let (Verdict::Transmit { port, .. }, Some(egress)) = (verdict, &traced.egress) {
        assert_eq!(egress.port, port, "case {name}");
        assert_eq!(egress.len, out.len(), "case {name}");
        assert_eq!(egress.dst_mac.0, out[0..6], "case {name}");
        assert_eq!(egress.src_mac.0, out[6..12], "case {name}");
    }
}

#[test]
fn a_trace_of_every_valid_frame_ends_with_the_forwarding_verdict() {
    for (i, (port, frame)) in valid_frames().into_iter().enumerate() {
        same_decision(&fixture(), &format!("valid #{i}"), port, &frame);
    }
}

#[test]
fn a_trace_of_every_drop_case_ends_with_the_forwarding_verdict() {
    let cases = drop_cases()
        .into_iter()
        .chain(super::tests_overlay::drop_cases());
    for (name, port, frame, _, _, _) in cases {
        same_decision(&fixture(), name, port, &frame);
    }
    let ha = super::tests_ha::ha_fixture();
    for (name, port, frame, _, _, _) in super::tests_ha::drop_cases() {
        same_decision(&ha, name, port, &frame);
    }
}

#[test]
fn a_trace_changes_nothing_shared() {
    let rig = Rig::new(&fixture());
    let question = arp_request(MAC_A, Some(100), [10, 0, 0, 10], [10, 0, 0, 1]);
    // Far more than a VMI's punt budget: a real forwarder would be limited.
    for _ in 0..1000 {
        let t = trace::trace_frame(&rig.tables, P1, &question);
        assert!(matches!(t.verdict, Verdict::Transmit { .. }), "{t}");
    }
    assert_eq!(rig.counters.snapshot().dropped(), 0);
    assert_eq!(rig.vmi("ns/vmi-a").rx_packets, 0);
    // The budget is intact: the forwarding path still answers.
    assert!(matches!(rig.run(P1, &question).0, Verdict::Transmit { .. }));
}

#[test]
fn a_described_ping_is_routed_retagged_and_named_stage_by_stage() {
    let rig = Rig::new(&fixture());
    let probe = Probe {
        port: P1,
        vlan: Some(100),
        src_mac: EthernetAddress(MAC_A),
        dst_mac: EthernetAddress(GW),
        src_ip: ip("10.0.0.10"),
        dst_ip: ip("10.0.1.20"),
        ttl: 64,
        payload: Payload::Icmp {
            icmp_type: 8,
            code: 0,
        },
    };
    let t = trace::trace(&rig.tables, &probe).unwrap();
    // Checksums right: the same verdict as the same packet built by an
    // independent builder (whose payload is shorter).
    let reference = ping4(MAC_A, Some(100), [10, 0, 0, 10], [10, 0, 1, 20]);
    match (rig.run(P1, &reference).0, t.verdict) {
        (
            Verdict::Transmit {
                port: a, vmi: x, ..
            },
            Verdict::Transmit {
                port: b, vmi: y, ..
            },
        ) => {
            assert_eq!((a, x), (b, y))
        }
        other => panic!("{other:?}"),
    }
    let stages: Vec<_> = t.steps.iter().map(|s| s.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::Port,
            Stage::Parse,
            Stage::Classify,
            Stage::SourceCheck,
            Stage::Dispatch,
            Stage::Route,
            Stage::NextHop,
            Stage::Verdict
        ],
        "{t}"
    );
    let egress = t.egress.expect("transmitted");
    assert_eq!(egress.vlan, Some(200));
    assert_eq!(egress.src_mac, EthernetAddress(GW));
    assert!(egress.summary.contains("ttl 63"), "{}", egress.summary);

    let spoofed = Probe {
        src_ip: ip("10.0.0.99"),
        ..probe.clone()
    };
    let t = trace::trace(&rig.tables, &spoofed).unwrap();
    assert_eq!(t.verdict, Verdict::Drop(DropReason::SourceIpSpoofed), "{t}");
    let nowhere = Probe {
        vlan: Some(999),
        ..probe.clone()
    };
    let t = trace::trace(&rig.tables, &nowhere).unwrap();
    assert_eq!(t.verdict, Verdict::Drop(DropReason::NoLogicalInterface));
    let arp = Probe {
        dst_mac: EthernetAddress([0xff; 6]),
        dst_ip: ip("10.0.0.1"),
        payload: Payload::ArpRequest,
        ..probe
    };
    let t = trace::trace(&rig.tables, &arp).unwrap();
    assert!(
        t.steps
            .iter()
            .any(|s| s.stage == Stage::NeighbourProxy && s.decision == "gateway_address"),
        "{t}"
    );
    assert!(t.egress.unwrap().summary.starts_with("ARP reply"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever a frame becomes, the trace and the forwarding path agree.
    #[test]
    fn mutated_frames_trace_to_the_forwarding_verdict(
        which in 0usize..64,
        at in 0usize..128,
        byte in any::<u8>(),
        cut in 0usize..16,
    ) {
        let frames = valid_frames();
        let (port, mut frame) = frames[which % frames.len()].clone();
        let at = at % frame.len();
        frame[at] = byte;
        frame.truncate(frame.len().saturating_sub(cut));
        let config = fixture();
        let rig = Rig::new(&config);
        let traced = trace::trace_frame(&rig.tables, port, &frame);
        let (verdict, _) = forwarded(&config, port, &frame);
        prop_assert_eq!(traced.verdict, verdict);
    }
}
