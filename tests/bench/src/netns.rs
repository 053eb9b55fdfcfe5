//! The benchmark's network: one generator namespace, one namespace per
//! device under test (two for the modes across nodes), one sink namespace,
//! joined by veth pairs.
//!
//! ```text
//!  <p>-gen                <p>-<mode>  (device under test)        <p>-sink
//!   g<mode> ---- veth ---- in  (VLAN 100)   out (VLAN 200) ---- veth ---- s<mode>
//!   (BPF_PROG_RUN                [agent | bare forwarder |                (sink XDP:
//!    live frames, XDP_TX)         Linux router | Open vSwitch]             count, drop)
//!
//!  across nodes ((e), (f), (g)): node A holds `in`, node B holds `out`
//!   g<mode> -- in [<p>-<mode>a] eth0 ==== fabric veth ==== eth0 [<p>-<mode>b] out -- s<mode>
//!                  node A       10.10.0.1/24   MTU 1600   10.10.0.2/24   node B
//!
//!  to the fabric ((l), (m)): the node's fabric port instead of `out`
//!   g<mode> -- in [<p>-<mode>] eth0 10.10.0.1/24 ---- s<mode> (fabric host 10.10.0.253)
//! ```
//!
//! The modes that forward in native XDP ((h)-(k)) run in the receive NAPI
//! of their ports, which veth schedules on the sender's core (the
//! generator's): those ports get a threaded NAPI whose thread is pinned to
//! the device's core with real-time priority, so that they too get one
//! core, the same one as everything else the device does, as ahead of
//! other tasks as the other modes' softirqs are.
//!
//! Every device under test has its own namespace(s) and ports, so the modes
//! never see each other's XDP programs or settings, and the generator and
//! sink tell them apart by interface. Both trunk ports carry the gateway
//! MAC; the generator's end carries VMI 1's, the sink's VMI 2's. The fabric
//! link has the same addresses, MACs and MTU in every mode across nodes,
//! each node a permanent neighbour entry for the other (no ARP during a
//! run; both the agents and the kernel read that table for the underlay
//! next hop). Its MTU, 1600, carries a 1518-byte frame's inner packet
//! behind VXLAN's 50 bytes. Every namespace carries the run's prefix and is
//! deleted on drop (and by `scripts/bench.sh` on exit, whatever happened).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::Error;
use crate::frame::{FABRIC_HOST_IP, FABRIC_HOST_MAC, GATEWAY_MAC, VMI1_MAC, VMI2_MAC};
use crate::modes::Mode;

/// The fabric interface of each node of a mode across nodes.
pub const FABRIC_PORT: &str = "eth0";
/// Node A's underlay address.
pub const UNDERLAY_A: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
/// Node B's underlay address.
pub const UNDERLAY_B: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 2);
/// The underlay's prefix length.
pub const UNDERLAY_PREFIX_LEN: u8 = 24;
/// Node A's fabric MAC.
pub const FABRIC_MAC_A: [u8; 6] = [0x02, 0xfa, 0xb0, 0x00, 0x00, 0x01];
/// Node B's fabric MAC.
pub const FABRIC_MAC_B: [u8; 6] = [0x02, 0xfa, 0xb0, 0x00, 0x00, 0x02];
/// The fabric link's MTU.
pub const FABRIC_MTU: u16 = 1600;

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

/// The process ids of the kernel's NAPI threads (`napi/<dev>-<id>`).
fn napi_threads() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            comm.starts_with("napi/").then_some(pid)
        })
        .collect()
}

/// Makes the receive NAPI of `link` (namespace `ns`) a thread of its own,
/// pins that thread to `core` and gives it real-time `priority`
/// (SCHED_FIFO): native XDP on the port then runs there, not on the core of
/// whoever sent to it, and like a softirq, ahead of other tasks. The thread
/// is the one that appears when the NAPI becomes threaded. Without
/// `priority` the thread keeps normal scheduling (it shares the core with
/// a process that needs it: (l)'s agent).
fn threaded_napi(ns: &str, link: &str, core: usize, priority: Option<u8>) -> Result<(), Error> {
    let before = napi_threads();
    run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "sh",
            "-c",
            &format!("echo 1 > /sys/class/net/{link}/threaded"),
        ],
    )?;
    let new: Vec<u32> = napi_threads()
        .into_iter()
        .filter(|pid| !before.contains(pid))
        .collect();
    if new.is_empty() {
        return Err(Error::Command {
            command: format!("echo 1 > /sys/class/net/{link}/threaded (in {ns})"),
            message: "no NAPI thread appeared to pin".to_owned(),
        });
    }
    for pid in new {
        run(
            "taskset",
            &["-p", "-c", &core.to_string(), &pid.to_string()],
        )?;
        // A softirq (where the other modes' receive processing runs) goes
        // before any task; a NAPI thread is a task: real-time priority puts
        // it back ahead of whatever else shares the core.
        if let Some(priority) = priority {
            run(
                "chrt",
                &["-f", "-p", &priority.to_string(), &pid.to_string()],
            )?;
        }
    }
    Ok(())
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
            let (ingress, egress) = (
                topology.namespace(&Self::ingress_role(mode)),
                topology.namespace(&Self::egress_role(mode)),
            );
            topology.add_namespace(&ingress)?;
            if egress != ingress {
                topology.add_namespace(&egress)?;
            }
            let (g, s) = (Self::generator_port(mode), Self::sink_port(mode));
            let out = Self::egress_port(mode);
            run(
                "ip",
                &[
                    "link", "add", &g, "netns", &gen_ns, "type", "veth", "peer", "name", "in",
                    "netns", &ingress,
                ],
            )?;
            run(
                "ip",
                &[
                    "link", "add", out, "netns", &egress, "type", "veth", "peer", "name", &s,
                    "netns", &sink_ns,
                ],
            )?;
            let (out_mac, sink_mac) = if mode.to_fabric() {
                (FABRIC_MAC_A, FABRIC_HOST_MAC)
            } else {
                (GATEWAY_MAC, VMI2_MAC)
            };
            for (ns, link, address) in [
                (&gen_ns, g.as_str(), VMI1_MAC),
                (&ingress, "in", GATEWAY_MAC),
                (&egress, out, out_mac),
                (&sink_ns, s.as_str(), sink_mac),
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
            // gives it that. Tags pushed by the stack (the Linux baselines'
            // tagger) travel in the frame bytes, as on a wire.
            run(
                "ip",
                &[
                    "netns", "exec", &ingress, "ethtool", "-K", "in", "gro", "on",
                ],
            )?;
            run(
                "ip",
                &[
                    "netns", "exec", &egress, "ethtool", "-K", out, "txvlan", "off",
                ],
            )?;
            if mode.to_fabric() {
                Self::fabric_port_to_host(&egress)?;
            }
            let mut receiving = vec![(ingress.clone(), "in")];
            if mode.across_nodes() {
                topology.fabric(&ingress, &egress)?;
                receiving.push((egress.clone(), FABRIC_PORT));
                if mode.native_xdp() {
                    // Node B's fabric port receives node A's XDP redirects:
                    // a NAPI from the start, so that it can be pinned now.
                    run(
                        "ip",
                        &[
                            "netns",
                            "exec",
                            &egress,
                            "ethtool",
                            "-K",
                            FABRIC_PORT,
                            "gro",
                            "on",
                        ],
                    )?;
                }
            }
            if let Some(core) = dut_core {
                let mask = format!("{:x}", 1u64 << core);
                for (ns, link) in &receiving {
                    run(
                        "ip",
                        &[
                            "netns",
                            "exec",
                            ns,
                            "sh",
                            "-c",
                            &format!("echo {mask} > /sys/class/net/{link}/queues/rx-0/rps_cpus"),
                        ],
                    )?;
                    if mode.native_xdp() {
                        // Node B's fabric port, downstream of `in`, above it:
                        // at one priority, `in`'s thread (never short of
                        // work under overload) would starve it.
                        let priority = if *link == "in" { 50 } else { 51 };
                        threaded_napi(ns, link, core, Some(priority))?;
                    } else if mode == Mode::Snat {
                        // (l)'s tier also runs in native XDP, but hands
                        // its frames to the agent's AF_XDP socket: the
                        // thread shares the core with the agent as equals
                        // (at real-time priority it would starve it).
                        threaded_napi(ns, link, core, None)?;
                    }
                }
            }
        }
        Ok(topology)
    }

    /// The fabric link between node A (namespace `a`) and node B (`b`):
    /// addresses, MACs, MTU and a permanent neighbour entry on each side.
    fn fabric(&self, a: &str, b: &str) -> Result<(), Error> {
        run(
            "ip",
            &[
                "link",
                "add",
                FABRIC_PORT,
                "netns",
                a,
                "type",
                "veth",
                "peer",
                "name",
                FABRIC_PORT,
                "netns",
                b,
            ],
        )?;
        let mtu = FABRIC_MTU.to_string();
        for (ns, me, my_mac, peer, peer_mac) in [
            (a, UNDERLAY_A, FABRIC_MAC_A, UNDERLAY_B, FABRIC_MAC_B),
            (b, UNDERLAY_B, FABRIC_MAC_B, UNDERLAY_A, FABRIC_MAC_A),
        ] {
            run(
                "ip",
                &[
                    "-n",
                    ns,
                    "link",
                    "set",
                    FABRIC_PORT,
                    "address",
                    &mac(my_mac),
                    "mtu",
                    &mtu,
                    "up",
                ],
            )?;
            run(
                "ip",
                &[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{me}/{UNDERLAY_PREFIX_LEN}"),
                    "dev",
                    FABRIC_PORT,
                ],
            )?;
            run(
                "ip",
                &[
                    "-n",
                    ns,
                    "neigh",
                    "replace",
                    &peer.to_string(),
                    "lladdr",
                    &mac(peer_mac),
                    "dev",
                    FABRIC_PORT,
                    "nud",
                    "permanent",
                ],
            )?;
        }
        Ok(())
    }

    /// The fabric port of a mode to the fabric (namespace `ns`): node A's
    /// underlay address, and a permanent neighbour entry for the fabric
    /// host (no ARP during a run; the agent reads its next hop's MAC from
    /// that table, as the kernel does).
    fn fabric_port_to_host(ns: &str) -> Result<(), Error> {
        run(
            "ip",
            &[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{UNDERLAY_A}/{UNDERLAY_PREFIX_LEN}"),
                "dev",
                FABRIC_PORT,
            ],
        )?;
        run(
            "ip",
            &[
                "-n",
                ns,
                "neigh",
                "replace",
                &FABRIC_HOST_IP.to_string(),
                "lladdr",
                &mac(FABRIC_HOST_MAC),
                "dev",
                FABRIC_PORT,
                "nud",
                "permanent",
            ],
        )?;
        Ok(())
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

    /// The role of the namespace holding `mode`'s port `in`: the mode's id,
    /// or its node A (`<id>a`) across nodes.
    pub fn ingress_role(mode: Mode) -> String {
        if mode.across_nodes() {
            format!("{}a", mode.id())
        } else {
            mode.id().to_owned()
        }
    }

    /// The role of the namespace holding `mode`'s port `out`: the mode's
    /// id, or its node B (`<id>b`) across nodes.
    pub fn egress_role(mode: Mode) -> String {
        if mode.across_nodes() {
            format!("{}b", mode.id())
        } else {
            mode.id().to_owned()
        }
    }

    /// The name of namespace `role` (`gen`, `sink`, a mode's id, or a
    /// node's role of a mode across nodes).
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

    /// The device's port toward the sink: `out`, or the fabric port for the
    /// modes to the fabric.
    pub fn egress_port(mode: Mode) -> &'static str {
        if mode.to_fabric() { FABRIC_PORT } else { "out" }
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
