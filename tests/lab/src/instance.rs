//! Remote instances: a namespace with `eth0` on an access port of the
//! switch behind a node's trunk, and the access port's VLAN tagger.
//!
//! ```text
//!  <p>-bms1: eth0 (MAC, addresses, default routes)
//!     ==veth== a-bms1 of <p>-<node>-<port>   tc clsact:
//!                ingress (from the instance): push the VLAN tag
//!                egress (toward the instance): pass only the VLAN, untagged
//! ```
//! The kernel here has no 802.1Q module (and the bridge no VLAN filtering),
//! so a tc BPF program (`tests/lab/tagger.bpf.c`, built per VLAN with
//! clang, cached by source and VLAN) does what a switch's access port does.

use std::path::{Path, PathBuf};

use crate::LabError;
use crate::command::{ip, run};
use crate::spec::{InstanceSpec, Mac};
use crate::topology::{DEFAULT_MTU, add_netns, bridge_port, host_port, netns, veth};

/// The tagger's source, compiled into the lab so that it needs no checkout.
const TAGGER_SOURCE: &str = include_str!("../tagger.bpf.c");

/// Builds instance `instance` (its node and trunk exist) on `switch`, the
/// lab-relative name of the switch behind its trunk.
pub(crate) fn build_instance(
    prefix: &str,
    state_root: &Path,
    instance: &InstanceSpec,
    switch: &str,
) -> Result<(), LabError> {
    let ns = netns(prefix, &instance.name);
    let sw = netns(prefix, switch);
    let access = access_port(&instance.name);
    let object = tagger_object(state_root, instance.vlan)?;
    add_netns(&ns, true)?;
    veth(
        &ns,
        "eth0",
        &sw,
        &access,
        instance.mtu.unwrap_or(DEFAULT_MTU),
    )?;
    let mac = instance.mac.unwrap_or_else(|| Mac::derived(&ns));
    host_port(&ns, "eth0", mac, &instance.addresses)?;
    for gw in &instance.gateways {
        let family = if gw.is_ipv6() { "-6" } else { "-4" };
        ip(&[
            "-n",
            &ns,
            family,
            "route",
            "add",
            "default",
            "via",
            &gw.to_string(),
            "dev",
            "eth0",
        ])?;
    }
    let object = object.display().to_string();
    run("tc", &["-n", &sw, "qdisc", "add", "dev", &access, "clsact"])?;
    for (direction, section) in [("ingress", "classifier/push"), ("egress", "classifier/pop")] {
        run(
            "tc",
            &[
                "-n",
                &sw,
                "filter",
                "add",
                "dev",
                &access,
                direction,
                "bpf",
                "direct-action",
                "obj",
                &object,
                "sec",
                section,
            ],
        )?;
    }
    bridge_port(&sw, &access)
}

/// Removes instance `instance`: first its link (deleting the switch-side
/// end takes the peer and the tagger with it, at once), then its namespace.
/// The link goes first because the kernel dismantles a deleted namespace
/// later, in the background: until then its devices would still answer.
pub(crate) fn remove_instance(
    prefix: &str,
    instance: &InstanceSpec,
    switch: &str,
) -> Result<(), LabError> {
    let sw = netns(prefix, switch);
    let access = access_port(&instance.name);
    if let Err(e) = ip(&["-n", &sw, "link", "del", &access]) {
        // Already gone (a half-built instance) is fine; anything else is not.
        if ip(&["-n", &sw, "link", "show", &access]).is_ok() {
            return Err(e);
        }
    }
    let ns = netns(prefix, &instance.name);
    if std::path::Path::new("/run/netns").join(&ns).exists() {
        ip(&["netns", "del", &ns])?;
    }
    Ok(())
}

/// The switch-side name of an instance's link.
pub(crate) fn access_port(instance: &str) -> String {
    format!("a-{instance}")
}

/// The tagger object for `vlan`, compiled once per source and VLAN into
/// `<state root>/taggers/<source hash>/vid-<vlan>.o`.
fn tagger_object(state_root: &Path, vlan: u16) -> Result<PathBuf, LabError> {
    bpf_object(
        state_root,
        "taggers",
        "tagger.bpf.c",
        TAGGER_SOURCE,
        &format!("vid-{vlan}"),
        &[&format!("-DVID={vlan}")],
    )
}

/// A BPF object compiled once per source and `stem` into
/// `<state root>/<dir>/<source hash>/<stem>.o` (written to a temporary
/// name unique to the process and the call, and renamed, so concurrent
/// labs, and concurrent tests in one process, never read half a file nor
/// move each other's temporary files).
pub(crate) fn bpf_object(
    state_root: &Path,
    dir: &str,
    name: &str,
    text: &str,
    stem: &str,
    defines: &[&str],
) -> Result<PathBuf, LabError> {
    let dir = state_root
        .join(dir)
        .join(format!("{:016x}", fnv1a64(text.as_bytes())));
    let object = dir.join(format!("{stem}.o"));
    if object.exists() {
        return Ok(object);
    }
    std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
        path: dir.clone(),
        source,
    })?;
    let source = dir.join(name);
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let unique = format!("{}-{call}-{stem}", std::process::id());
    let source_tmp = dir.join(format!("{name}.{unique}"));
    std::fs::write(&source_tmp, text).map_err(|source| LabError::Io {
        path: source_tmp.clone(),
        source,
    })?;
    std::fs::rename(&source_tmp, &source).map_err(|e| LabError::Io {
        path: source.clone(),
        source: e,
    })?;
    let tmp = dir.join(format!("{stem}.o.{unique}"));
    let include = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let source_arg = source.display().to_string();
    let tmp_arg = tmp.display().to_string();
    let mut args = vec!["-O2", "-g", "-target", "bpf"];
    args.extend_from_slice(defines);
    args.extend_from_slice(&[&include, "-c", &source_arg, "-o", &tmp_arg]);
    run("clang", &args)?;
    std::fs::rename(&tmp, &object).map_err(|source| LabError::Io {
        path: object.clone(),
        source,
    })?;
    Ok(object)
}

/// FNV-1a, 64 bits: a cache key stable across builds and Rust versions.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_follows_the_source() {
        assert_ne!(fnv1a64(b"a"), fnv1a64(b"b"));
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn access_ports_fit_an_interface_name() {
        assert!(access_port(&"x".repeat(crate::spec::MAX_NAME)).len() <= 15);
    }
}
