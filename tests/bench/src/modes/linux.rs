//! (c) Linux IP forwarding in the device's namespace, with the tagging done
//! around it by the lab's tc BPF tagger (`tests/lab/tagger.bpf.c`): on
//! port `in`'s ingress it accepts VLAN 100 only and pops the tag, on port
//! `out`'s egress it pushes VLAN 200. In between: strict reverse-path
//! filtering (the source check: 192.168.1.10 only from `in`), a FIB lookup
//! of a /32 route, TTL decrement, a permanent neighbour entry for VMI 2.

use std::path::Path;

use crate::Error;
use crate::frame::{GATEWAY_IP, VMI1_IP, VMI2_IP, VMI2_MAC};
use crate::netns::Topology;

use super::Mode;

static TAGGER_100: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tagger-100.bpf.o"));
static TAGGER_200: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tagger-200.bpf.o"));

/// What the report says about this mode.
pub fn notes() -> Vec<String> {
    vec![
        "(c) is the kernel's forwarding path with two tc BPF programs: untag on `in` (VLAN 100 only), tag 200 on `out`; strict rp_filter stands for the source check, a /32 route and a permanent neighbour entry for the VRF lookup and VMI 2's MAC. It has no VRF (the kernel here has no VRF module): one routing table. Its CPU is kernel softirq time on the device's core; there is no device process.".to_owned(),
    ]
}

/// Writes the tagger objects (VLAN 100, VLAN 200) into `dir`; their
/// paths, for `tc filter add ... bpf obj`.
pub fn write_taggers(dir: &Path) -> Result<[String; 2], Error> {
    let mut objects = [String::new(), String::new()];
    for (object, (vid, bytes)) in objects
        .iter_mut()
        .zip([(100, TAGGER_100), (200, TAGGER_200)])
    {
        let path = dir.join(format!("tagger-{vid}.bpf.o"));
        std::fs::write(&path, bytes).map_err(Error::io(format!("writing {}", path.display())))?;
        *object = path.display().to_string();
    }
    Ok(objects)
}

/// The configured router namespace (nothing runs: the kernel forwards).
pub struct LinuxDevice;

impl LinuxDevice {
    /// Configures mode (c)'s namespace; tagger objects are written to `dir`.
    pub fn start(topology: &Topology, dir: &Path) -> Result<Self, Error> {
        let ns = Mode::Linux.id();
        let objects = write_taggers(dir)?;
        let sh = |line: &str| topology.exec(ns, &["sh", "-c", line]);
        sh(
            "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.in.rp_filter=1 net.ipv4.conf.all.send_redirects=0",
        )?;
        let (gw, vmi1, vmi2) = (GATEWAY_IP, VMI1_IP, VMI2_IP);
        let mac = VMI2_MAC
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        sh(&format!(
            "ip addr add {gw}/32 dev in && ip addr add {gw}/32 dev out && \
             ip route add {vmi1}/32 dev in && ip route add {vmi2}/32 dev out && \
             ip neigh replace {vmi2} lladdr {mac} dev out nud permanent"
        ))?;
        sh(&format!(
            "tc qdisc add dev in clsact && \
             tc filter add dev in ingress bpf direct-action obj {} sec classifier/pop && \
             tc qdisc add dev out clsact && \
             tc filter add dev out egress bpf direct-action obj {} sec classifier/push",
            objects[0], objects[1]
        ))?;
        Ok(Self)
    }
}
