//! The network-namespace lab: gateway nodes on an underlay (fabric)
//! bridge, a switch behind each of their trunk ports with remote instances
//! on VLAN access ports, hosts and kernel VXLAN VTEPs on the fabric, and
//! packet capture. It drives `ip`, `tc`, `bridge`, `ethtool` and `tshark`;
//! it needs root and nothing of trunkline. Tests use it through
//! `trunkline_test_support::lab`; `scripts/lab.sh` wraps its command line
//! (`trunkline-lab`).
//!
//! ```text
//!                           <p>-fab: bridge br0 (fabric MTU)
//!       f-gw1 |              f-gw2 |               f-pub |              f-vtep1 |
//!   eth0 10.0.0.1        eth0 10.0.0.2        eth0 10.0.0.253      eth0 10.0.0.100
//!   <p>-gw1 (node)       <p>-gw2 (node)       <p>-pub (host:       <p>-vtep1: vxlan0 VNI 5001
//!    eth1      eth2        eth1                routes via a node)    192.168.1.50/24
//!     |          |           |
//!   trunk      trunk       trunk       (switch side: tx VLAN offload off, tags in the bytes)
//!  <p>-gw1-eth1 <p>-gw1-eth2 <p>-gw2-eth1   switches: bridge br0 + a tc tagger per access port
//!   a-bms1 a-bms2  a-dhcp1     a-bms3         (ingress: push VLAN tag; egress: pop, only that VLAN)
//!     |      |       |           |
//!   eth0   eth0    eth0        eth0
//!  <p>-bms1 <p>-bms2 <p>-dhcp1  <p>-bms3     instances: IPv4 and/or IPv6 + gateways, or nothing (DHCP)
//! ```
//!
//! A trunk may instead join a shared switch (`LabSpec::switch`, `TrunkSpec::switch`): the
//! members of a gateway HA group on one switch, which may run the kernel's 802.1D spanning
//! tree (`StpSpec`; `Lab::stp_states` reads its port states).
//!
//! ```no_run
//! use trunkline_lab::{FabricHostSpec, InstanceSpec, Lab, LabSpec, Limit, NodeSpec, VtepSpec};
//!
//! # fn main() -> Result<(), trunkline_lab::LabError> {
//! let spec = LabSpec::new()
//!     .node(NodeSpec::new("gw1").underlay("10.0.0.1/24").underlay("fd00:f::1/64").trunk("eth1"))
//!     .node(NodeSpec::new("gw2").underlay("10.0.0.2/24").trunk("eth1"))
//!     .instance(
//!         InstanceSpec::new("bms1", "gw1", "eth1")
//!             .vlan(100)
//!             .ip("192.168.1.10/24")
//!             .ip("fd00:1::10/64")
//!             .gateway("192.168.1.1")
//!             .gateway("fd00:1::1")
//!             .mac("02:00:00:00:01:01"),
//!     )
//!     .host(FabricHostSpec::new("pub").ip("10.0.0.253/24").route("192.168.1.0/24", "10.0.0.1"))
//!     .vtep(VtepSpec::new("vtep1", "10.0.0.100/24", 5001).remote("10.0.0.1").ip("192.168.1.50/24"));
//! let mut lab = Lab::up(spec)?; // removed when `lab` drops, also on panic
//! lab.add_node(NodeSpec::new("gw3").underlay("10.0.0.3/24").trunk("eth1"))?;
//! let capture = lab.capture("fab", "br0", "udp port 4789", Limit::packets(1))?;
//! let (ok, _) = lab.ping("gw1", "10.0.0.3", 1);
//! let packets = capture.finish()?.fields(&["vxlan.vni"], &[])?;
//! # let _ = (ok, packets);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod capture;
mod command;
mod dc_gateway;
mod error;
mod frr;
mod instance;
mod lab;
pub mod spec;
mod topology;
mod traffic;
mod vtep;

pub use capture::{Capture, Limit, MPLS_OVER_UDP, Packet, Pcap, bridged_label};
pub use error::LabError;
pub use frr::Frr;
pub use lab::{Lab, STATE_ENV, state_root};
pub use spec::{
    Cidr, DcGatewayRoute, DcGatewaySpec, FabricHostSpec, FabricSpec, FdbEntry, InstanceSpec,
    LabSpec, Mac, NodeSpec, Route, SpecError, StpSpec, SwitchSpec, TrunkSpec, VtepSpec,
};
pub use topology::{FABRIC, shared_trunk_port, switch_name};
pub use traffic::{output_text, poll_until};
pub use vtep::VXLAN_PORT;
