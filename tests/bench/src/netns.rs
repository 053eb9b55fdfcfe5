//! The benchmark's network: one generator namespace, one namespace per
//! device under test, one sink namespace, joined by veth pairs.
//!
//! ```text
//!  <p>-gen                <p>-<mode>  (device under test)        <p>-sink
//!   g<mode> ---- veth ---- in  (VLAN 100)   out (VLAN 200) ---- veth ---- s<mode>
//!   (BPF_PROG_RUN                [agent | bare forwarder |                (sink XDP:
//!    live frames, XDP_TX)         Linux router | Open vSwitch]             count, drop)
//! ```
//!
//! Every device under test has its own namespace and ports, so the modes
//! never see each other's XDP programs or settings, and the generator and
//! sink tell them apart by interface. Both ports of a device carry the
//! gateway MAC; the generator's end carries VMI 1's, the sink's VMI 2's.
//! Every namespace carries the run's prefix and is deleted on drop (and by
//! `scripts/bench.sh` on exit, whatever happened).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::Error;
use crate::frame::{GATEWAY_MAC, VMI1_MAC, VMI2_MAC};
use crate::modes::Mode;

/// Runs `program args...`; its stdout, or its stderr as the error.
pub fn run(program: &str, args: &[&str]) -> Result<String, Error> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Command {
            command: format!("{program} {}", args.join(" ")),
            message: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            command: format!("{program} {}", args.join(" ")),
            message: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

fn mac(bytes: [u8; 6]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The namespaces and links of one benchmark run.
pub struct Topology {
    prefix: String,
    namespaces: Vec<String>,
}

impl Topology {
    /// Builds the generator and sink namespaces and one device namespace
    /// per mode. With `dut_core`, the device's receive processing (RPS of
    /// port `in`) goes to that core, away from the generator's.
    pub fn build(prefix: &str, modes: &[Mode], dut_core: Option<usize>) -> Result<Self, Error> {
        if prefix.is_empty()
            || prefix.len() > 8
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(Error::Options(format!(
                "prefix {prefix:?}: 1 to 8 lower-case letters or digits"
            )));
        }
        let mut topology = Self {
            prefix: prefix.to_owned(),
            namespaces: Vec::new(),
        };
        topology.remove_leftovers();
        let gen_ns = topology.namespace("gen");
        let sink_ns = topology.namespace("sink");
        for ns in [&gen_ns, &sink_ns] {
            topology.add_namespace(ns)?;
        }
        for &mode in modes {
            let dut = topology.namespace(mode.id());
            topology.add_namespace(&dut)?;
            let (g, s) = (Self::generator_port(mode), Self::sink_port(mode));
            run(
                "ip",
                &[
                    "link", "add", &g, "netns", &gen_ns, "type", "veth", "peer", "name", "in",
                    "netns", &dut,
                ],
            )?;
            run(
                "ip",
                &[
                    "link", "add", "out", "netns", &dut, "type", "veth", "peer", "name", &s,
                    "netns", &sink_ns,
                ],
            )?;
            for (ns, link, address) in [
                (&gen_ns, g.as_str(), VMI1_MAC),
                (&dut, "in", GATEWAY_MAC),
                (&dut, "out", GATEWAY_MAC),
                (&sink_ns, s.as_str(), VMI2_MAC),
            ] {
                run(
                    "ip",
                    &[
                        "-n",
                        ns,
                        "link",
                        "set",
                        link,
                        "address",
                        &mac(address),
                        "up",
                    ],
                )?;
            }
            // The generator's frames arrive by XDP redirect (ndo_xdp_xmit),
            // which veth accepts only when the receiving end has NAPI: GRO
            // gives it that. Tags pushed by the stack (the Linux baseline's
            // tagger) travel in the frame bytes, as on a wire.
            run(
                "ip",
                &["netns", "exec", &dut, "ethtool", "-K", "in", "gro", "on"],
            )?;
            run(
                "ip",
                &[
                    "netns", "exec", &dut, "ethtool", "-K", "out", "txvlan", "off",
                ],
            )?;
            if let Some(core) = dut_core {
                let mask = format!("{:x}", 1u64 << core);
                run(
                    "ip",
                    &[
                        "netns",
                        "exec",
                        &dut,
                        "sh",
                        "-c",
                        &format!("echo {mask} > /sys/class/net/in/queues/rx-0/rps_cpus"),
                    ],
                )?;
            }
        }
        Ok(topology)
    }

    fn add_namespace(&mut self, name: &str) -> Result<(), Error> {
        run("ip", &["netns", "add", name])?;
        self.namespaces.push(name.to_owned());
        run("ip", &["-n", name, "link", "set", "lo", "up"])?;
        // No IPv6 on the links: their router solicitations and MLD reports
        // would reach the sink as stray frames.
        run(
            "ip",
            &[
                "netns",
                "exec",
                name,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        )?;
        Ok(())
    }

    /// Deletes namespaces of this prefix left by an earlier run that died.
    fn remove_leftovers(&self) {
        let listed = run("ip", &["netns", "list"]).unwrap_or_default();
        let ours = format!("{}-", self.prefix);
        for line in listed.lines() {
            if let Some(name) = line.split_whitespace().next()
                && name.starts_with(&ours)
            {
                let _ = run("ip", &["netns", "del", name]);
            }
        }
    }

    /// The name of namespace `role` (`gen`, `sink`, or a mode's id).
    pub fn namespace(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// The path of namespace `role`, for `setns` and `--port-netns`.
    pub fn path(&self, role: &str) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.namespace(role)))
    }

    /// The generator's port toward `mode`'s device.
    pub fn generator_port(mode: Mode) -> String {
        format!("g{}", mode.id())
    }

    /// The sink's port behind `mode`'s device.
    pub fn sink_port(mode: Mode) -> String {
        format!("s{}", mode.id())
    }

    /// The run's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs `args` in namespace `role`.
    pub fn exec(&self, role: &str, args: &[&str]) -> Result<String, Error> {
        let ns = self.namespace(role);
        let mut all = vec!["netns", "exec", ns.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = run("ip", &["netns", "del", ns]) {
                eprintln!("[bench] removing namespace {ns}: {e}");
            }
        }
    }
}
