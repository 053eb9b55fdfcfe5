//! Building the wired part of a lab: namespaces, the fabric bridge, gateway
//! nodes with their fabric port and trunk ports, the switch behind each
//! trunk, and hosts on the fabric. Instances and VTEPs have modules of
//! their own; they use the pieces here.
//!
//! ```text
//!  <p>-fab: br0 --- f-<name> ==veth== eth0 of <p>-<name>   (node, fabric host, VTEP)
//!  <p>-<node>: eth1 ==veth== trunk --- br0 of <p>-<node>-eth1   (a switch per trunk port)
//!  <p>-<node>: eth1 ==veth== t-<node> --- br0 of <p>-<switch>   (a shared switch, STP optional)
//! ```
//! Names: `<p>-<name>` for a node, instance, host or VTEP; `<p>-fab` for
//! the fabric; `<p>-<node>-<port>` for a switch (parts' names have no `-`,
//! so these never collide). Interface names are short and fixed, because
//! each lives in a namespace of its own: `eth0`, `eth1`.., `br0`, `trunk`,
//! `a-<instance>`, `f-<name>`.

use std::net::IpAddr;

use crate::LabError;
use crate::command::{in_netns, ip, run};
use crate::spec::{Cidr, FabricHostSpec, FabricSpec, Mac, NodeSpec, SwitchSpec, TrunkSpec};

/// The lab-relative name of the fabric's namespace.
pub const FABRIC: &str = "fab";

/// MTU of links whose spec does not say.
pub(crate) const DEFAULT_MTU: u32 = 1500;

/// Namespace `<prefix>-<name>`.
pub(crate) fn netns(prefix: &str, name: &str) -> String {
    format!("{prefix}-{name}")
}

/// The lab-relative name of the switch behind `node`'s `port`.
pub fn switch_name(node: &str, port: &str) -> String {
    format!("{node}-{port}")
}

/// Adds namespace `ns` with `lo` up. Without `ipv6` the namespace never
/// speaks IPv6 (switches and the fabric bridge: they only forward, and
/// their own router solicitations would be noise on the trunks).
pub(crate) fn add_netns(ns: &str, ipv6: bool) -> Result<(), LabError> {
    ip(&["netns", "add", ns])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    if !ipv6 {
        in_netns(
            ns,
            "sysctl",
            &[
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        )?;
    }
    Ok(())
}

/// A veth pair: `a` in namespace `a_ns`, `b` in `b_ns`, both of MTU `mtu`,
/// both down. No end ever exists in the caller's namespace.
pub(crate) fn veth(a_ns: &str, a: &str, b_ns: &str, b: &str, mtu: u32) -> Result<(), LabError> {
    let mtu = mtu.to_string();
    ip(&[
        "link", "add", a, "netns", a_ns, "mtu", &mtu, "type", "veth", "peer", "name", b, "netns",
        b_ns, "mtu", &mtu,
    ])
    .map(drop)
}

/// A bridge `br0` in `ns` that floods multicast (no snooping: nothing
/// queries MLD/IGMP in the lab, and neighbour discovery must get through).
pub(crate) fn add_bridge(ns: &str, mtu: Option<u32>) -> Result<(), LabError> {
    let mtu = mtu.unwrap_or(DEFAULT_MTU).to_string();
    ip(&[
        "-n",
        ns,
        "link",
        "add",
        "br0",
        "mtu",
        &mtu,
        "type",
        "bridge",
        "mcast_snooping",
        "0",
    ])?;
    ip(&["-n", ns, "link", "set", "br0", "up"]).map(drop)
}

/// A shared switch: namespace `<p>-<name>` with a bridge `br0` that runs
/// the kernel's spanning tree when asked (timers in centiseconds for
/// `ip link`).
pub(crate) fn build_switch(prefix: &str, switch: &SwitchSpec) -> Result<(), LabError> {
    let ns = netns(prefix, &switch.name);
    add_netns(&ns, false)?;
    add_bridge(&ns, None)?;
    if let Some(stp) = switch.stp {
        let cs = |s: u32| (s * 100).to_string();
        ip(&[
            "-n",
            &ns,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "hello_time",
            &cs(stp.hello_time),
            "max_age",
            &cs(stp.max_age),
            "forward_delay",
            &cs(stp.forward_delay),
            "stp_state",
            "1",
        ])?;
    }
    Ok(())
}

/// The switch-side name of `node`'s trunk on a shared switch.
pub fn shared_trunk_port(node: &str) -> String {
    format!("t-{node}")
}

/// Puts `dev` of `ns` on the namespace's `br0` and brings it up.
pub(crate) fn bridge_port(ns: &str, dev: &str) -> Result<(), LabError> {
    ip(&["-n", ns, "link", "set", dev, "master", "br0", "up"]).map(drop)
}

/// Adds `addr` to `dev` (IPv6 without duplicate address detection, so it is
/// usable at once).
pub(crate) fn add_address(ns: &str, dev: &str, addr: &Cidr) -> Result<(), LabError> {
    let text = addr.to_string();
    let mut args = vec!["-n", ns, "addr", "add", &text, "dev", dev];
    if addr.is_ipv6() {
        args.push("nodad");
    }
    ip(&args).map(drop)
}

/// Adds a route to `to` via `via` in `ns`.
pub(crate) fn add_route(ns: &str, to: &str, via: IpAddr) -> Result<(), LabError> {
    let via = via.to_string();
    let family = if via.contains(':') { "-6" } else { "-4" };
    ip(&["-n", ns, family, "route", "add", to, "via", &via]).map(drop)
}

/// The source of the program [`receives_xdp`] attaches.
const XDP_PASS_SOURCE: &str = include_str!("../xdp_pass.bpf.c");

/// The far end `dev` of a node's veth receives what the node's XDP program
/// sends in native mode (XDP_TX, devmap redirects): a veth takes such
/// frames only when it runs an XDP program itself, so it gets one that
/// passes everything (as a real switch port simply receives them).
pub(crate) fn receives_xdp(ns: &str, dev: &str) -> Result<(), LabError> {
    let object = crate::instance::bpf_object(
        &crate::lab::state_root(),
        "xdp-pass",
        "xdp_pass.bpf.c",
        XDP_PASS_SOURCE,
        "xdp_pass",
        &[],
    )?;
    let object = object.display().to_string();
    ip(&[
        "-n",
        ns,
        "link",
        "set",
        "dev",
        dev,
        "xdpdrv",
        "obj",
        &object,
        "sec",
        "xdp.frags",
    ])
    .map(drop)
}

/// The host end of a link: MAC, complete checksums, addresses, up.
///
/// Checksum offload is off because a wire carries complete checksums:
/// with it on, veth leaves TCP/UDP checksums partial and frames forwarded
/// byte for byte through AF_XDP (or encapsulated) arrive with bad ones.
pub(crate) fn host_port(ns: &str, dev: &str, mac: Mac, addresses: &[Cidr]) -> Result<(), LabError> {
    ip(&["-n", ns, "link", "set", dev, "address", &mac.to_string()])?;
    in_netns(ns, "ethtool", &["-K", dev, "tx", "off"])?;
    for a in addresses {
        add_address(ns, dev, a)?;
    }
    ip(&["-n", ns, "link", "set", dev, "up"]).map(drop)
}

/// The fabric: namespace `<p>-fab` with bridge `br0`.
pub(crate) fn build_fabric(prefix: &str, fabric: &FabricSpec) -> Result<(), LabError> {
    let ns = netns(prefix, FABRIC);
    add_netns(&ns, false)?;
    add_bridge(&ns, Some(fabric.mtu))
}

/// Namespace `<p>-<name>` (made by the caller) gets `eth0` on the fabric.
pub(crate) fn attach_to_fabric(
    prefix: &str,
    name: &str,
    fabric: &FabricSpec,
    mac: Mac,
    addresses: &[Cidr],
) -> Result<(), LabError> {
    let ns = netns(prefix, name);
    let fab = netns(prefix, FABRIC);
    let port = format!("f-{name}");
    veth(&ns, "eth0", &fab, &port, fabric.mtu)?;
    receives_xdp(&fab, &port)?;
    bridge_port(&fab, &port)?;
    host_port(&ns, "eth0", mac, addresses)
}

/// A gateway node, its fabric port and its trunks (with their switches).
pub(crate) fn build_node(
    prefix: &str,
    fabric: &FabricSpec,
    node: &NodeSpec,
) -> Result<(), LabError> {
    let ns = netns(prefix, &node.name);
    add_netns(&ns, true)?;
    let mac = node.mac.unwrap_or_else(|| Mac::derived(&ns));
    attach_to_fabric(prefix, &node.name, fabric, mac, &node.underlay)?;
    for trunk in &node.trunks {
        build_trunk(prefix, &node.name, trunk)?;
    }
    Ok(())
}

/// Trunk port `trunk` of `node` and its switch `<p>-<node>-<port>` (or
/// port `t-<node>` of a shared switch): a bridge port that sends VLAN tags
/// in the frame bytes (tx VLAN offload off), as a real wire does, so that
/// the node's fast path sees them.
///
/// The bridge learns no MAC on the trunk. It is not VLAN-aware (one MAC
/// table for every VLAN, where a real switch keeps one per VLAN): an
/// instance's broadcast that the gateway floods back down the trunk on
/// another VLAN would otherwise move the instance's MAC onto the trunk, and
/// frames the gateway routes to it would be dropped as hairpins. Frames to
/// a MAC behind the trunk (the gateway's) are flooded instead; the access
/// ports' taggers drop those of other VLANs. On a shared switch this floods
/// frames for the gateway MAC to every member's trunk (the standby drops
/// them): the switch never needs the new active member's gratuitous ARP to
/// relearn, so a failover measured in the lab leaves out a real switch's
/// relearning (the tests check the gratuitous ARP's timing on the wire).
pub(crate) fn build_trunk(prefix: &str, node: &str, trunk: &TrunkSpec) -> Result<(), LabError> {
    let node_ns = netns(prefix, node);
    let (sw, port) = match &trunk.switch {
        Some(shared) => (netns(prefix, shared), shared_trunk_port(node)),
        None => {
            let sw = netns(prefix, &switch_name(node, &trunk.name));
            add_netns(&sw, false)?;
            add_bridge(&sw, None)?;
            (sw, "trunk".to_owned())
        }
    };
    veth(
        &sw,
        &port,
        &node_ns,
        &trunk.name,
        trunk.mtu.unwrap_or(DEFAULT_MTU),
    )?;
    in_netns(&sw, "ethtool", &["-K", &port, "txvlan", "off"])?;
    receives_xdp(&sw, &port)?;
    bridge_port(&sw, &port)?;
    run(
        "bridge",
        &["-n", &sw, "link", "set", "dev", &port, "learning", "off"],
    )?;
    let mac = trunk
        .mac
        .unwrap_or_else(|| Mac::derived(&format!("{node_ns}-{}", trunk.name)));
    // No address: the node's dataplane owns the port.
    ip(&[
        "-n",
        &node_ns,
        "link",
        "set",
        &trunk.name,
        "address",
        &mac.to_string(),
    ])?;
    ip(&["-n", &node_ns, "link", "set", &trunk.name, "up"]).map(drop)
}

/// A host on the fabric with its routes.
pub(crate) fn build_host(
    prefix: &str,
    fabric: &FabricSpec,
    host: &FabricHostSpec,
) -> Result<(), LabError> {
    let ns = netns(prefix, &host.name);
    add_netns(&ns, true)?;
    let mac = host.mac.unwrap_or_else(|| Mac::derived(&ns));
    attach_to_fabric(prefix, &host.name, fabric, mac, &host.addresses)?;
    for r in &host.routes {
        add_route(&ns, &r.to.to_string(), r.via)?;
    }
    Ok(())
}
