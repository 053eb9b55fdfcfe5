//! `make demo-l3vpn` in CI: runs `scripts/demo-l3vpn.sh` as a user would
//! (its own control plane, lab `l3vpn`, FRR, the operator, a node
//! dataplane and the BGP speaker; about a minute once built) and checks
//! its exit status and the lines that carry seed 003's story, so that the
//! demo cannot rot into a script that fails or proves less than it says.
//!
//! Needs root (namespaces, XDP) and the Debian packages of
//! `scripts/install-deps.sh` (frr, tshark); CI runs as root. The demo uses
//! fixed names (lab prefix `l3vpn`, loopback ports 19480, 19481, 19490):
//! do not run it beside a `make demo-l3vpn`.

use std::process::{Command, Stdio};

/// The lines (after the green "ok") that must appear, each one check of
/// the demo.
const PROVED: [&str; 6] = [
    "ok BGPPeer mx1: session Established, 1 route sent",
    "ok FRR shows 198.51.100.70/32 with RD 10.1.1.100:",
    "ok gw-node-1's VRF for admin/public installs FRR's default route",
    "ok public1 (VLAN 340, admin/public) pings the public host 203.0.113.10",
    "ok tshark decodes the tunnel both ways: 10.1.1.1 -> 10.1.1.254 label 1000 (FRR's)",
    "all 9 checks passed",
];

/// The demo's output without its colours.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter).
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn make_demo_l3vpn_proves_seed_003_and_exits_zero() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/demo-l3vpn.sh");
    let state =
        std::env::temp_dir().join(format!("trunkline-demo-l3vpn-e2e-{}", std::process::id()));
    let mut command = Command::new("bash");
    // The demo builds with cargo: without the variables cargo set for this
    // test, which ring's build script watches, so that its build is the
    // developer's and not a rebuild of the dependency tree.
    trunkline_test_support::without_test_env(&mut command);
    let out = command
        .arg(script)
        .env("TRUNKLINE_DEMO_STATE", &state)
        .stdin(Stdio::null())
        .output()
        .expect("scripts/demo-l3vpn.sh runs");
    let text = plain(&format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ));
    eprintln!("{text}");
    assert!(out.status.success(), "the demo failed ({})", out.status);
    for line in PROVED {
        assert!(text.contains(line), "the demo's output lacks {line:?}");
    }
    assert!(!text.contains("FAILED"), "a check failed");
}

#[test]
fn colours_are_removed() {
    assert_eq!(plain("\u{1b}[32mok\u{1b}[0m done"), "ok done");
    assert_eq!(plain("\u{1b}[1m== x\u{1b}[0m"), "== x");
}
