//! A DC gateway on the fabric (seed 004): a router that decapsulates MPLS
//! over UDP from the gateway nodes and encapsulates toward them, with a
//! host behind it. The kernel here has no MPLS routing, so the
//! encapsulation is two small BPF programs (`tests/lab/dcgw.bpf.c`, built by
//! clang, cached by source and parameters) around the namespace's ordinary
//! routing: an independent implementation of MPLS over UDP for interop
//! tests.
//!
//! ```text
//!  <p>-<host>: eth0 203.0.113.10/24, default via 203.0.113.1
//!     ==veth== eth1 203.0.113.1/24 of <p>-<name>            (ip_forward on)
//!  <p>-<name>: eth0 (local, on the fabric)
//!     tc ingress "decap": UDP 6635 to local -> outer IPv4/UDP/MPLS removed -> routed
//!     route <instance>/32 (or /128) encap bpf xmit "encap" (node, label) -> MPLSoUDP to the node
//!     (the tunnel is IPv4; the inner packet IPv4 or IPv6 both ways)
//! ```

use std::path::{Path, PathBuf};

use crate::LabError;
use crate::command::{in_netns, ip, run};
use crate::spec::{DcGatewayRoute, DcGatewaySpec, FabricSpec, Mac};
use crate::topology::{DEFAULT_MTU, add_netns, attach_to_fabric, host_port, netns, veth};

/// The programs' source, compiled into the lab so that it needs no checkout.
const SOURCE: &str = include_str!("../dcgw.bpf.c");

/// An IPv4 address as the `u32` the program compares with packet bytes
/// (network order in memory; a little-endian literal).
fn network_order(ip: std::net::IpAddr) -> Result<String, LabError> {
    match ip {
        std::net::IpAddr::V4(a) => Ok(format!("0x{:08x}u", u32::from_ne_bytes(a.octets()))),
        std::net::IpAddr::V6(a) => Err(LabError::Spec(crate::spec::SpecError::Invalid {
            owner: "DC gateway".into(),
            reason: format!("address {a} is IPv6: the lab's decapsulator speaks IPv4"),
        })),
    }
}

/// Builds DC gateway `gateway` and the host behind it.
pub(crate) fn build_dc_gateway(
    prefix: &str,
    state_root: &Path,
    fabric: &FabricSpec,
    gateway: &DcGatewaySpec,
) -> Result<(), LabError> {
    let ns = netns(prefix, &gateway.name);
    let host = netns(prefix, &gateway.host);
    add_netns(&ns, true)?;
    attach_to_fabric(
        prefix,
        &gateway.name,
        fabric,
        Mac::derived(&ns),
        std::slice::from_ref(&gateway.local),
    )?;
    add_netns(&host, true)?;
    veth(&ns, "eth1", &host, "eth0", DEFAULT_MTU)?;
    host_port(
        &ns,
        "eth1",
        Mac::derived(&format!("{ns}-eth1")),
        std::slice::from_ref(&gateway.outside),
    )?;
    host_port(
        &host,
        "eth0",
        Mac::derived(&host),
        std::slice::from_ref(&gateway.host_address),
    )?;
    ip(&[
        "-n",
        &host,
        "-4",
        "route",
        "add",
        "default",
        "via",
        &gateway.outside.addr().to_string(),
    ])?;
    in_netns(
        &ns,
        "sysctl",
        &[
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.eth0.rp_filter=0",
        ],
    )?;
    let local = network_order(gateway.local.addr())?;
    let decap = object(state_root, &[("LOCAL", &local)])?;
    run("tc", &["-n", &ns, "qdisc", "add", "dev", "eth0", "clsact"])?;
    run(
        "tc",
        &[
            "-n",
            &ns,
            "filter",
            "add",
            "dev",
            "eth0",
            "ingress",
            "bpf",
            "direct-action",
            "obj",
            &decap.display().to_string(),
            "sec",
            "decap",
        ],
    )?;
    for route in &gateway.routes {
        add_route(prefix, state_root, gateway, route)?;
    }
    Ok(())
}

/// Routes `route.to` of DC gateway `gateway` into the overlay: MPLS over
/// UDP to the node with the label (replacing a route to the same place).
pub(crate) fn add_route(
    prefix: &str,
    state_root: &Path,
    gateway: &DcGatewaySpec,
    route: &DcGatewayRoute,
) -> Result<(), LabError> {
    let ns = netns(prefix, &gateway.name);
    let local = network_order(gateway.local.addr())?;
    let node = network_order(route.node)?;
    let label = route.label.to_string();
    let encap = object(
        state_root,
        &[("LOCAL", &local), ("NODE", &node), ("LABEL", &label)],
    )?;
    ip(&[
        "-n",
        &ns,
        "route",
        "replace",
        &route.to.to_string(),
        "encap",
        "bpf",
        "xmit",
        "obj",
        &encap.display().to_string(),
        "section",
        "encap",
        "dev",
        "eth0",
    ])
    .map(drop)
}

/// The program object for `defines`, compiled once per source and
/// parameters into `<state root>/dcgw/<hash>.o` (written to a temporary
/// name and renamed, so concurrent labs never read half a file).
fn object(state_root: &Path, defines: &[(&str, &str)]) -> Result<PathBuf, LabError> {
    let key: String = defines
        .iter()
        .map(|(k, v)| format!("-D{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let dir = state_root.join("dcgw");
    let hash = fnv1a64(format!("{SOURCE}\n{key}").as_bytes());
    let object = dir.join(format!("{hash:016x}.o"));
    if object.exists() {
        return Ok(object);
    }
    std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
        path: dir.clone(),
        source,
    })?;
    let unique = format!("{hash:016x}.{}", std::process::id());
    let source = dir.join(format!("{unique}.bpf.c"));
    std::fs::write(&source, SOURCE).map_err(|e| LabError::Io {
        path: source.clone(),
        source: e,
    })?;
    let tmp = dir.join(format!("{unique}.o"));
    let include = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let mut args: Vec<String> = ["-O2", "-g", "-target", "bpf", &include]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(defines.iter().map(|(k, v)| format!("-D{k}={v}")));
    args.extend([
        "-c".to_owned(),
        source.display().to_string(),
        "-o".to_owned(),
        tmp.display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let built = run("clang", &args);
    let _ = std::fs::remove_file(&source);
    built?;
    std::fs::rename(&tmp, &object).map_err(|source| LabError::Io {
        path: object.clone(),
        source,
    })?;
    Ok(object)
}

/// FNV-1a, 64 bits: a cache key stable across builds and Rust versions.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_the_packet_holds_them() {
        let text = network_order("10.0.0.200".parse().unwrap()).unwrap();
        // On a little-endian host the first octet is the lowest byte.
        if cfg!(target_endian = "little") {
            assert_eq!(text, "0xc800000au");
        }
        assert!(network_order("fd00::1".parse().unwrap()).is_err());
    }
}
