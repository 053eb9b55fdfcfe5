//! (f) Linux's own overlay: routing into a kernel VXLAN device on node A,
//! bridging out of one on node B, with the lab's tc BPF taggers for the
//! VLANs (this kernel has no 802.1Q module).
//!
//! ```text
//!  node A (<p>-fa)                                        node B (<p>-fb)
//!  in: tc pop (VLAN 100 only)                              eth0 10.10.0.2 -- UDP 4789 socket
//!   -> rp_filter (strict), FIB: 192.168.1.20/32 dev vxlan0      -> vxlan0 (VNI) -> br0
//!   -> TTL, neighbour 192.168.1.20 = VMI 2's MAC (permanent)    -> FDB: VMI 2's MAC on out (static)
//!   -> vxlan0 (MAC = gateway MAC, VNI, learning off)            -> out: tc push VLAN 200
//!      FDB: VMI 2's MAC -> 10.10.0.2
//!   -> UDP/IPv4 from 10.10.0.1, eth0 ====== fabric ======> eth0
//! ```
//!
//! Route on A, bridge on B: the path of (e), whose node A routes and
//! addresses the inner frame to VMI 2's MAC, and whose node B delivers by
//! that MAC (no second TTL decrement). Nothing learns (FDB and neighbour
//! entries are static, as our tables come from the control plane), and the
//! bridge's netfilter hooks are off in node B's namespace.

use std::path::Path;

use crate::Error;
use crate::frame::{GATEWAY_IP, GATEWAY_MAC, VMI1_IP, VMI2_IP, VMI2_MAC};
use crate::netns::{FABRIC_PORT, Topology, UNDERLAY_A, UNDERLAY_B};

use super::Mode;
use super::cluster::mac_text;
use super::linux::write_taggers;

/// The VNI of the kernel's VXLAN devices.
pub const VNI: u32 = 4100;

/// The configured namespaces of mode (f) (nothing runs: the kernel
/// forwards).
pub struct LinuxVxlanDevice;

impl LinuxVxlanDevice {
    /// Configures node A and node B of mode (f); tagger objects are written
    /// to `dir`.
    pub fn start(topology: &Topology, dir: &Path) -> Result<Self, Error> {
        let [tag_100, tag_200] = write_taggers(dir)?;
        let (a, b) = (
            Topology::ingress_role(Mode::LinuxVxlan),
            Topology::egress_role(Mode::LinuxVxlan),
        );
        let on = |role: &str, line: &str| topology.exec(role, &["sh", "-c", line]);
        let (gw, vmi1, vmi2) = (GATEWAY_IP, VMI1_IP, VMI2_IP);
        let (gateway_mac, vmi2_mac) = (mac_text(GATEWAY_MAC), mac_text(VMI2_MAC));
        let fabric = FABRIC_PORT;
        on(
            &a,
            "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.in.rp_filter=1 net.ipv4.conf.all.send_redirects=0",
        )?;
        on(
            &a,
            &format!(
                "ip addr add {gw}/32 dev in && ip route add {vmi1}/32 dev in && \
                 ip link add vxlan0 address {gateway_mac} type vxlan id {VNI} local {UNDERLAY_A} dstport 4789 nolearning dev {fabric} && \
                 ip link set vxlan0 up && \
                 ip route add {vmi2}/32 dev vxlan0 && \
                 ip neigh replace {vmi2} lladdr {vmi2_mac} dev vxlan0 nud permanent && \
                 bridge fdb add {vmi2_mac} dev vxlan0 dst {UNDERLAY_B} && \
                 tc qdisc add dev in clsact && \
                 tc filter add dev in ingress bpf direct-action obj {tag_100} sec classifier/pop"
            ),
        )?;
        // The bridge's netfilter hooks exist in a namespace only where
        // br_netfilter is loaded: switched off where they do.
        on(
            &b,
            "for f in /proc/sys/net/bridge/bridge-nf-call-*; do [ -e \"$f\" ] && echo 0 > \"$f\"; done; true",
        )?;
        on(
            &b,
            &format!(
                "ip link add vxlan0 type vxlan id {VNI} local {UNDERLAY_B} dstport 4789 nolearning dev {fabric} && \
                 ip link add br0 type bridge && \
                 ip link set vxlan0 master br0 && ip link set out master br0 && \
                 bridge link set dev vxlan0 learning off && bridge link set dev out learning off && \
                 bridge fdb replace {vmi2_mac} dev out master static && \
                 ip link set vxlan0 up && ip link set br0 up && \
                 tc qdisc add dev out clsact && \
                 tc filter add dev out egress bpf direct-action obj {tag_200} sec classifier/push"
            ),
        )?;
        Ok(Self)
    }

    /// What the report says about this mode.
    pub fn notes(&self) -> Vec<String> {
        vec![format!(
            "(f) is the kernel's own overlay, route on A and bridge on B like (e): node A untags (tc BPF, VLAN 100 only), checks the source by strict rp_filter, looks up a /32 route into a `vxlan` device (VNI {VNI}, UDP 4789, MAC = the gateway MAC, learning off), decrements the TTL, takes VMI 2's MAC from a permanent neighbour entry and node B's address from a static VXLAN FDB entry, and sends UDP/IPv4 over the fabric; node B's UDP socket hands the packet to its `vxlan` device (VNI check), a bridge forwards the inner frame by a static FDB entry to `out` (learning off, no bridge netfilter), tc BPF tags it 200. No VRF (none in this kernel) and no check of the tunnel's source (our node B drops tunnel packets from non-peers). Kernel softirq on the device's core only, no process."
        )]
    }
}
