//! The `pipeline` fuzz target as an ordinary test: its corpus, kept in the
//! repository, and mutations of it go through the same entry point on every
//! `cargo test`, without cargo-fuzz; and the seeds reach the paths they were
//! written for, the tunnels on the fabric port included, so that fuzzing
//! starts from inputs that get deep.

use std::path::Path;

use trunkline_pipeline::Verdict;
use trunkline_pipeline_fuzz::{FABRIC, P1, frame, run};
use trunkline_wire_fuzz::replay;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/pipeline");
    let seeds = replay::corpus(&dir);
    assert!(
        seeds.len() >= 20,
        "the seed corpus is in the repository: {}",
        seeds.len()
    );
    seeds
}

#[test]
fn the_corpus_and_its_mutations_never_panic() {
    replay::run(&seeds(), replay::mutations(50_000), frame);
}

#[test]
fn the_seeds_reach_the_paths_they_are_for() {
    let seeds = seeds();
    let verdict = |name: &str| {
        let (_, input) = seeds
            .iter()
            .find(|(n, _)| n == &format!("seed-{name}"))
            .unwrap_or_else(|| panic!("no seed-{name}: run make_seeds.py"));
        run(input).expect("a non-empty input")
    };
    let sent_to = |name: &str| match verdict(name) {
        Verdict::Transmit { port, .. } => Some(port),
        _ => None,
    };
    for (name, port) in [
        ("routed-v4", P1),
        ("arp", P1),
        ("bridged", P1),
        ("mpls-routed", P1),
        ("mpls-bridged", P1),
        ("vxlan", P1),
        ("to-remote-vmi", FABRIC),
        ("to-remote-vmi-v6", FABRIC),
        ("bridged-to-remote", FABRIC),
        ("l3-to-peer", FABRIC),
        // A remote instance's first minute: DHCP answered, a router
        // advertisement, a too-big error back, a pair address routed.
        ("dhcp-discover", P1),
        ("dhcpv6-solicit", P1),
        ("router-solicit", P1),
        ("too-big-for-the-port", P1),
        ("to-address-pair", P1),
        // North-south: SNAT out and back (a reply, an echo reply, an ICMP
        // error about the flow), IP fabric forwarding both ways, a DC
        // gateway both ways.
        ("snat-out", FABRIC),
        ("snat-return", P1),
        ("snat-echo-reply", P1),
        ("snat-icmp-error", P1),
        ("ip-fabric-out", FABRIC),
        ("ip-fabric-in", P1),
        ("to-dc-gateway", FABRIC),
        ("from-dc-gateway", P1),
    ] {
        assert_eq!(
            sent_to(name),
            Some(port),
            "seed-{name}: {:?}",
            verdict(name)
        );
    }
    for name in ["arp-flooded", "vxlan-flooded", "l2-unknown-unicast"] {
        assert!(
            matches!(verdict(name), Verdict::Flood(_)),
            "seed-{name}: {:?}",
            verdict(name)
        );
    }
    assert_eq!(verdict("fabric-not-a-tunnel"), Verdict::Pass);
    for name in [
        "qinq",
        "double-tagged",
        "mpls-unknown-label",
        "vxlan-unknown-peer",
        "to-xvtep-endpoint",
        "discarded",
        "unknown-port",
        "snat-no-flow",
    ] {
        assert!(
            matches!(verdict(name), Verdict::Drop(_)),
            "seed-{name}: {:?}",
            verdict(name)
        );
    }
}
