//! A short run of the benchmark, so that it cannot rot: every mode (the
//! overlay's across two nodes, the XDP tier's, and SNAT against Linux's
//! masquerade with established and new flows, too, and the XDP tier while
//! an observation runs), both frame sizes,
//! one round of 1 s, 64 control-plane objects with their routes propagated
//! to FRR by the BGP speaker, as `make bench` does. It checks that the
//! report and the plot are written, that every mode forwarded something,
//! that the control plane reached Ready, that (a) forwarded again with its
//! objects installed and that FRR held every VMI's route (again after
//! gobgpd was killed); it does not judge rates.
//! Needs root (namespaces, XDP), clang, and Open vSwitch
//! (scripts/install-deps.sh); CI runs as root.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use trunkline_test_support::{gobgpd, workspace_binary};

fn median(report: &str, size: usize, label: &str) -> Option<f64> {
    let prefix = format!("| {size} B | {label} | **");
    let line = report.lines().find(|l| l.starts_with(&prefix))?;
    line[prefix.len()..].split("**").next()?.parse().ok()
}

/// The first row for `size` and `label` after `heading`.
fn median_after(report: &str, heading: &str, size: usize, label: &str) -> Option<f64> {
    median(&report[report.find(heading)?..], size, label)
}

#[test]
fn a_smoke_run_measures_every_mode_and_the_control_plane() {
    let agent = workspace_binary("trunkline-dataplane", "trunkline-dataplane");
    let operator = workspace_binary("trunkline-operator", "trunkline-operator");
    let speaker = workspace_binary("trunkline-bgp", "trunkline-bgp");
    let bin_dir = agent.parent().expect("a directory");
    assert_eq!(operator.parent(), Some(bin_dir), "built side by side");
    assert_eq!(speaker.parent(), Some(bin_dir), "built side by side");
    let out = std::env::temp_dir().join(format!("trunkline-bench-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_trunkline-bench"))
        .args([
            "run",
            "--smoke",
            "--prefix",
            &format!("ts{}", std::process::id() % 100_000),
        ])
        .arg("--out")
        .arg(&out)
        .arg("--bin-dir")
        .arg(bin_dir)
        .arg("--gobgpd")
        .arg(gobgpd().expect("gobgpd from scripts/build-gobgp.sh"))
        .output()
        .expect("trunkline-bench runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    eprintln!(
        "{stderr}\n(smoke run took {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    assert!(run.status.success(), "trunkline-bench failed:\n{stderr}");
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md written");
    let png = std::fs::read(out.join("forwarding.png")).expect("forwarding.png written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    for size in [64, 512] {
        for label in [
            "(a) trunkline AF_XDP",
            "(b) bare AF_XDP forwarder",
            "(c) Linux IP forwarding",
            "(d) Open vSwitch AF_XDP",
            "(e) trunkline overlay, VXLAN",
            "(f) Linux VXLAN",
            "(g) trunkline overlay, MPLSoUDP",
            "(h) trunkline XDP tier",
            "(i) bare XDP_REDIRECT forwarder",
            "(j) trunkline overlay, VXLAN, XDP tier",
            "(k) trunkline overlay, MPLSoUDP, XDP tier",
            "(l) trunkline SNAT",
            "(m) Linux masquerade",
            "(o) trunkline XDP tier, observed",
        ] {
            let rate = median(&report, size, label)
                .unwrap_or_else(|| panic!("no {size} B row for {label} in:\n{report}"));
            assert!(
                rate > 0.0,
                "{label} forwarded nothing at {size} B:\n{report}"
            );
        }
    }
    assert!(
        report.contains("| a / b (I/O ceiling) | a / c (Linux) | a / d (OVS) |"),
        "{report}"
    );
    assert!(
        report.contains("| h / c (tier / Linux) | h / i (tier / bare XDP_REDIRECT) |"),
        "{report}"
    );
    assert!(report.contains("| o / h (observed / not) |"), "{report}");
    assert!(
        report.contains("| e / f (VXLAN, ours / Linux) |"),
        "{report}"
    );
    let snat = "### SNAT: trunkline (l) against Linux masquerade (m)";
    assert!(report.contains("| l / m, new flows/s |"), "{report}");
    for size in [64, 512] {
        for label in ["(l) trunkline SNAT", "(m) Linux masquerade"] {
            let rate = median_after(&report, snat, size, label)
                .unwrap_or_else(|| panic!("no new-flow row for {label}, {size} B in:\n{report}"));
            assert!(
                rate > 0.0,
                "{label} translated no new flows at {size} B:\n{report}"
            );
        }
    }
    assert!(
        report.contains("| counted at the end: programmed / Ready (of 128) | 128 / 128 |"),
        "the 64 LIs and VMIs were programmed and Ready:\n{report}"
    );
    assert!(
        report
            .contains("| routes FRR held from the speaker at the end of the burst (of 64) | 64 |"),
        "FRR held every VMI's VPNv4 route:\n{report}"
    );
    // (a) forwarded again with the 64 pairs installed: a median above 0.
    let at_scale =
        "| (a) forwarding, 64 B, median [range]: the runs above / with the scale set installed | ";
    let at_scale = report
        .lines()
        .find_map(|l| l.strip_prefix(at_scale))
        .unwrap_or_else(|| panic!("no forwarding-at-scale row in:\n{report}"));
    let median_at_scale: f64 = at_scale
        .split(" / ")
        .nth(1)
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable forwarding-at-scale row: {at_scale}"));
    assert!(
        median_at_scale > 0.0,
        "(a) forwarded with the scale set installed: {at_scale}"
    );
    let again = "| every route again after gobgpd is killed";
    let again = report
        .lines()
        .find(|l| l.starts_with(again))
        .unwrap_or_else(|| panic!("no re-advertisement row in:\n{report}"));
    assert!(
        again.trim_end().ends_with(" s |"),
        "every route again after gobgpd was killed: {again}"
    );
    assert!(
        !report.contains("FALLBACK"),
        "Open vSwitch ran with AF_XDP ports:\n{report}"
    );
    let _ = std::fs::remove_dir_all(&out);
    assert!(!Path::new(&out).exists());
}
