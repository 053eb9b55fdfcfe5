//! A kernel VXLAN VTEP on the fabric: an implementation of VXLAN that is
//! not ours, for interop tests.
//!
//! ```text
//!  <p>-<name>:  vxlan0 (VNI, UDP 4789, learning; addresses of the overlay)
//!                 |  encapsulates toward: remotes (all-zero FDB entries: flooding
//!                 |  and unknown unicast), static FDB entries (MAC -> VTEP)
//!               eth0 (local underlay address) ==veth== f-<name> on <p>-fab br0
//! ```
//! `vxlan0`'s MTU is the kernel's choice from `eth0` (fabric MTU minus 50
//! for an IPv4 underlay, 70 for IPv6). Without an IPv6 overlay address
//! `vxlan0` has no link-local address either, so that it sends nothing
//! (router solicitations, MLD reports) but what a test makes it send.

use crate::LabError;
use crate::command::{ip, run};
use crate::spec::{FabricSpec, Mac, VtepSpec};
use crate::topology::{add_address, add_netns, attach_to_fabric, netns};

/// The IANA VXLAN port, which trunkline's nodes use.
pub const VXLAN_PORT: u16 = 4789;

/// Builds VTEP `vtep` on the fabric.
pub(crate) fn build_vtep(
    prefix: &str,
    fabric: &FabricSpec,
    vtep: &VtepSpec,
) -> Result<(), LabError> {
    let ns = netns(prefix, &vtep.name);
    add_netns(&ns, true)?;
    attach_to_fabric(
        prefix,
        &vtep.name,
        fabric,
        Mac::derived(&format!("{ns}-eth0")),
        std::slice::from_ref(&vtep.local),
    )?;
    let vni = vtep.vni.to_string();
    let local = vtep.local.addr().to_string();
    let port = VXLAN_PORT.to_string();
    ip(&[
        "-n", &ns, "link", "add", "vxlan0", "type", "vxlan", "id", &vni, "local", &local,
        "dstport", &port, "dev", "eth0", "learning",
    ])?;
    let mac = vtep.mac.unwrap_or_else(|| Mac::derived(&ns));
    ip(&[
        "-n",
        &ns,
        "link",
        "set",
        "vxlan0",
        "address",
        &mac.to_string(),
    ])?;
    for remote in &vtep.remotes {
        run(
            "bridge",
            &[
                "-n",
                &ns,
                "fdb",
                "append",
                "00:00:00:00:00:00",
                "dev",
                "vxlan0",
                "dst",
                &remote.to_string(),
            ],
        )?;
    }
    for entry in &vtep.fdb {
        run(
            "bridge",
            &[
                "-n",
                &ns,
                "fdb",
                "add",
                &entry.mac.to_string(),
                "dev",
                "vxlan0",
                "dst",
                &entry.dst.to_string(),
                "static",
            ],
        )?;
    }
    if !vtep.addresses.iter().any(|a| a.is_ipv6()) {
        ip(&["-n", &ns, "link", "set", "vxlan0", "addrgenmode", "none"])?;
    }
    for a in &vtep.addresses {
        add_address(&ns, "vxlan0", a)?;
    }
    ip(&["-n", &ns, "link", "set", "vxlan0", "up"]).map(drop)
}
