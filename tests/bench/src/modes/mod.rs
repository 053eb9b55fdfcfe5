//! The devices under test. Each mode forwards the same flow, VLAN 100 on
//! port `in` to VLAN 200 on port `out`, rewriting the MACs and the TTL:
//!
//! | mode | device | per frame |
//! |---|---|---|
//! | (a) | `trunkline-dataplane`, AF_XDP, objects from the real control plane | (port, VLAN) -> LI -> VMI, source MAC/IP check, LPM in the VRF, TTL, MACs, re-tag |
//! | (b) | bare AF_XDP forwarder over `trunkline-xdp` | constant rewrite of MACs, tag and TTL: no parsing, no lookup |
//! | (c) | Linux IP forwarding, tc BPF taggers on the ports | untag (VLAN 100 only), rp_filter, FIB, TTL, neighbour, tag 200 |
//! | (d) | Open vSwitch userspace datapath, AF_XDP ports | one OpenFlow rule: match port, VLAN, MACs, IPs; set VLAN, MACs; dec_ttl |

pub mod agent;
pub mod bare;
pub mod linux;
pub mod ovs;

use crate::Error;

/// A device under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// (a) our node dataplane.
    Agent,
    /// (b) the bare AF_XDP forwarder.
    Bare,
    /// (c) Linux IP forwarding.
    Linux,
    /// (d) Open vSwitch, userspace datapath.
    Ovs,
}

impl Mode {
    /// Every mode, in the benchmark's order.
    pub const ALL: [Mode; 4] = [Mode::Agent, Mode::Bare, Mode::Linux, Mode::Ovs];

    /// The letter, also used in namespace and interface names.
    pub fn id(self) -> &'static str {
        match self {
            Mode::Agent => "a",
            Mode::Bare => "b",
            Mode::Linux => "c",
            Mode::Ovs => "d",
        }
    }

    /// A short name for tables and the plot.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Agent => "(a) trunkline AF_XDP",
            Mode::Bare => "(b) bare AF_XDP forwarder",
            Mode::Linux => "(c) Linux IP forwarding",
            Mode::Ovs => "(d) Open vSwitch AF_XDP",
        }
    }

    /// Parses `a`, `b`, `c`, `d` (or a mode's name).
    pub fn parse(s: &str) -> Result<Mode, Error> {
        match s.trim() {
            "a" | "agent" => Ok(Mode::Agent),
            "b" | "bare" => Ok(Mode::Bare),
            "c" | "linux" => Ok(Mode::Linux),
            "d" | "ovs" => Ok(Mode::Ovs),
            other => Err(Error::Options(format!(
                "unknown mode {other:?}: a (agent), b (bare), c (linux), d (ovs)"
            ))),
        }
    }
}

/// A running device under test.
pub enum Device {
    /// (a)
    Agent(Box<agent::AgentDevice>),
    /// (b)
    Bare(bare::BareDevice),
    /// (c)
    Linux(linux::LinuxDevice),
    /// (d)
    Ovs(ovs::OvsDevice),
}

impl Device {
    /// Which mode it is.
    pub fn mode(&self) -> Mode {
        match self {
            Device::Agent(_) => Mode::Agent,
            Device::Bare(_) => Mode::Bare,
            Device::Linux(_) => Mode::Linux,
            Device::Ovs(_) => Mode::Ovs,
        }
    }

    /// The process whose CPU time is the device's (none for the kernel).
    pub fn pid(&self) -> Option<u32> {
        match self {
            Device::Agent(d) => d.pid(),
            Device::Bare(d) => d.pid(),
            Device::Linux(_) => None,
            Device::Ovs(d) => d.pid(),
        }
    }

    /// Prepares a measurement (Open vSwitch adds its ports: its poll-mode
    /// thread spins while it has ports, so they exist only during its runs).
    pub fn before_run(&mut self) -> Result<(), Error> {
        match self {
            Device::Ovs(d) => d.add_ports(),
            Device::Agent(_) | Device::Bare(_) | Device::Linux(_) => Ok(()),
        }
    }

    /// Ends a measurement; fails when the device's process died.
    pub fn after_run(&mut self) -> Result<(), Error> {
        match self {
            Device::Ovs(d) => d.remove_ports(),
            Device::Bare(d) => d.check(),
            Device::Agent(_) | Device::Linux(_) => Ok(()),
        }
    }

    /// What differs from the other modes, for the report.
    pub fn notes(&self) -> Vec<String> {
        match self {
            Device::Agent(d) => d.notes(),
            Device::Bare(_) => bare::notes(),
            Device::Linux(_) => linux::notes(),
            Device::Ovs(d) => d.notes(),
        }
    }
}
