//! A running lab: built from a [`LabSpec`] under a prefix, grown while it
//! runs, removed when dropped (also when a test panics) or by `down`.
//!
//! Each lab saves its spec and owner in `<state root>/<prefix>/lab.json`
//! (state root: `$TRUNKLINE_LAB_STATE`, else `$TMPDIR/trunkline-lab`), so
//! that `trunkline-lab show|exec|down --prefix P` work on a lab a test
//! built, and so that a lab whose owning process died without unwinding
//! (SIGKILL, abort) is removed by the next lab built on the machine: its
//! owner (PID and start time) no longer exists.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

use crate::LabError;
use crate::command::{ip, namespaces_of};
use crate::dc_gateway::build_dc_gateway;
use crate::instance::{build_instance, remove_instance};
use crate::spec::{
    DcGatewayRoute, DcGatewaySpec, FabricHostSpec, InstanceSpec, LabSpec, NodeSpec, SpecError,
    TrunkSpec, VtepSpec,
};
use crate::topology::{
    FABRIC, build_fabric, build_host, build_node, build_switch, build_trunk, netns,
};
use crate::vtep::build_vtep;

/// Environment variable naming the directory of lab state.
pub const STATE_ENV: &str = "TRUNKLINE_LAB_STATE";

/// The longest prefix.
const MAX_PREFIX: usize = 12;

/// A running lab. Dropping an owned lab ([`Lab::up`]) removes it; a lab
/// built for the command line ([`Lab::up_named`]) or opened
/// ([`Lab::open`]) stays until [`Lab::down`].
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    spec: LabSpec,
    state_root: PathBuf,
    owned: bool,
}

/// Who a lab belongs to: a process, by PID and start time (so that a
/// reused PID is not taken for the owner).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Owner {
    pid: u32,
    start: u64,
}

impl Owner {
    fn this_process() -> Option<Self> {
        let pid = std::process::id();
        start_time(pid).map(|start| Self { pid, start })
    }

    fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks after boot).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: count
    // from the last `)`; field 3 is the first after it.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(22 - 3)?
        .parse()
        .ok()
}

/// What `lab.json` holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct State {
    prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<Owner>,
    spec: LabSpec,
}

/// The state root: `$TRUNKLINE_LAB_STATE` or `$TMPDIR/trunkline-lab`.
pub fn state_root() -> PathBuf {
    std::env::var_os(STATE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("trunkline-lab"))
}

fn check_prefix(prefix: &str) -> Result<(), LabError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(LabError::Prefix {
            prefix: prefix.to_owned(),
        })
    }
}

/// `n` in base 36.
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("base-36 digits are ASCII")
}

impl Lab {
    /// Builds `spec` under a prefix unique to this process and call
    /// (`l<pid><n>` in base 36), owned by this process: dropping the lab
    /// removes it. First removes labs whose owner has died.
    pub fn up(spec: LabSpec) -> Result<Self, LabError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let root = state_root();
        sweep_abandoned(&root);
        let pid = base36(u64::from(std::process::id()));
        let prefix = loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let prefix = format!("l{pid}{}", base36(u64::from(n)));
            if namespaces_of(&prefix).is_empty() && !root.join(&prefix).exists() {
                break prefix;
            }
        };
        Self::build(prefix, spec, root, Owner::this_process(), true)
    }

    /// Builds `spec` under `prefix` (after removing any lab of that prefix),
    /// for the command line: it stays after this process, until
    /// [`Lab::down`].
    pub fn up_named(prefix: &str, spec: LabSpec) -> Result<Self, LabError> {
        check_prefix(prefix)?;
        let root = state_root();
        remove(prefix, &root)?;
        Self::build(prefix.to_owned(), spec, root, None, false)
    }

    /// The running lab of `prefix` (from its saved state); dropping it
    /// leaves it running.
    pub fn open(prefix: &str) -> Result<Self, LabError> {
        check_prefix(prefix)?;
        let root = state_root();
        let path = root.join(prefix).join("lab.json");
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => LabError::NotFound {
                prefix: prefix.to_owned(),
                what: format!("no saved state ({} missing): is it up?", path.display()),
            },
            _ => LabError::Io {
                path: path.clone(),
                source: e,
            },
        })?;
        let state: State = serde_json::from_str(&text).map_err(|e| LabError::State {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            prefix: state.prefix,
            spec: state.spec,
            state_root: root,
            owned: false,
        })
    }

    /// Removes the lab of `prefix`: every namespace `<prefix>-*` and its
    /// state. Nothing to remove is not an error.
    pub fn down(prefix: &str) -> Result<(), LabError> {
        check_prefix(prefix)?;
        remove(prefix, &state_root())
    }

    fn build(
        prefix: String,
        spec: LabSpec,
        state_root: PathBuf,
        owner: Option<Owner>,
        owned: bool,
    ) -> Result<Self, LabError> {
        spec.validate()?;
        let lab = Self {
            prefix,
            spec: LabSpec {
                fabric: spec.fabric.clone(),
                ..LabSpec::default()
            },
            state_root,
            owned: true,
        };
        // State first: a build that fails half-way is still found by `down`
        // and by the sweep.
        let mut lab = lab;
        lab.save(owner)?;
        let built = (|| {
            build_fabric(&lab.prefix, &spec.fabric)?;
            for switch in &spec.switches {
                build_switch(&lab.prefix, switch)?;
                lab.spec.switches.push(switch.clone());
            }
            for node in &spec.nodes {
                build_node(&lab.prefix, &spec.fabric, node)?;
                lab.spec.nodes.push(node.clone());
            }
            for host in &spec.hosts {
                build_host(&lab.prefix, &spec.fabric, host)?;
                lab.spec.hosts.push(host.clone());
            }
            for vtep in &spec.vteps {
                build_vtep(&lab.prefix, &spec.fabric, vtep)?;
                lab.spec.vteps.push(vtep.clone());
            }
            for instance in &spec.instances {
                let switch = spec.switch_of(&instance.node, &instance.port);
                build_instance(&lab.prefix, &lab.state_root, instance, &switch)?;
                lab.spec.instances.push(instance.clone());
            }
            for gateway in &spec.dc_gateways {
                build_dc_gateway(&lab.prefix, &lab.state_root, &spec.fabric, gateway)?;
                lab.spec.dc_gateways.push(gateway.clone());
            }
            Ok::<_, LabError>(())
        })();
        // On failure `lab` drops here, owned: nothing stays behind.
        built?;
        lab.owned = owned;
        lab.save(owner)?;
        Ok(lab)
    }

    fn save(&self, owner: Option<Owner>) -> Result<(), LabError> {
        let dir = self.state_root.join(&self.prefix);
        std::fs::create_dir_all(&dir).map_err(|source| LabError::Io {
            path: dir.clone(),
            source,
        })?;
        let state = State {
            prefix: self.prefix.clone(),
            owner,
            spec: self.spec.clone(),
        };
        let path = dir.join("lab.json");
        let tmp = dir.join("lab.json.tmp");
        let text = serde_json::to_string_pretty(&state).expect("the state serializes");
        std::fs::write(&tmp, text).map_err(|source| LabError::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| LabError::Io { path, source })
    }

    /// Saves the spec after a change, keeping the recorded owner.
    fn save_change(&self) -> Result<(), LabError> {
        let owner = if self.owned {
            Owner::this_process()
        } else {
            None
        };
        self.save(owner)
    }

    /// The prefix of every namespace of the lab.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// What the lab is made of now.
    pub fn spec(&self) -> &LabSpec {
        &self.spec
    }

    /// Where the lab keeps its state and captures.
    pub fn state_dir(&self) -> PathBuf {
        self.state_root.join(&self.prefix)
    }

    /// The namespace of `name`: a node, instance, fabric host or VTEP name,
    /// `fab` (the fabric), or a switch ([`Lab::switch`]).
    pub fn namespace(&self, name: &str) -> String {
        netns(&self.prefix, name)
    }

    /// The path of `name`'s namespace (`/run/netns/<prefix>-<name>`), as
    /// the node dataplane's `--port-netns` takes it.
    pub fn netns_path(&self, name: &str) -> PathBuf {
        Path::new("/run/netns").join(self.namespace(name))
    }

    /// The lab-relative name of the switch behind `node`'s `port`, for
    /// [`Lab::exec`] and [`Lab::namespace`] (its trunk link is `trunk`, or
    /// `t-<node>` on a shared switch).
    pub fn switch(&self, node: &str, port: &str) -> String {
        self.spec.switch_of(node, port)
    }

    /// The spanning-tree state of each port of shared switch `switch`
    /// (`forwarding`, `blocking`, `listening`, `learning`, `disabled`), by
    /// port name, as the kernel bridge reports it.
    pub fn stp_states(&self, switch: &str) -> Result<Vec<(String, String)>, LabError> {
        let ns = self.namespace(switch);
        let out = crate::command::in_netns(&ns, "bridge", &["-j", "link", "show"])?;
        let links: Vec<serde_json::Value> =
            serde_json::from_str(&out).map_err(|e| LabError::State {
                path: PathBuf::from(format!("bridge -j link show in {ns}")),
                reason: e.to_string(),
            })?;
        Ok(links
            .iter()
            .filter_map(|l| {
                Some((
                    l.get("ifname")?.as_str()?.to_owned(),
                    l.get("state")?.as_str()?.to_owned(),
                ))
            })
            .collect())
    }

    /// The lab-relative name of the fabric's namespace (bridge `br0`, one
    /// port `f-<name>` per node, host and VTEP).
    pub fn fabric(&self) -> &'static str {
        FABRIC
    }

    /// The namespaces the lab has now.
    pub fn namespaces(&self) -> Vec<String> {
        namespaces_of(&self.prefix)
    }

    /// Adds a gateway node (with its trunks and their switches).
    pub fn add_node(&mut self, node: NodeSpec) -> Result<(), LabError> {
        let mut next = self.spec.clone();
        next.nodes.push(node.clone());
        next.validate()?;
        build_node(&self.prefix, &self.spec.fabric, &node)?;
        self.spec = next;
        self.save_change()
    }

    /// Adds a trunk port (and its switch) to node `node`.
    pub fn add_trunk(&mut self, node: &str, trunk: TrunkSpec) -> Result<(), LabError> {
        let mut next = self.spec.clone();
        let found = next
            .nodes
            .iter_mut()
            .find(|n| n.name == node)
            .ok_or_else(|| {
                LabError::Spec(SpecError::Reference {
                    owner: format!("trunk port {}", trunk.name),
                    reason: format!("node {node:?} is not in the lab"),
                })
            })?;
        found.trunks.push(trunk.clone());
        next.validate()?;
        build_trunk(&self.prefix, node, &trunk)?;
        self.spec = next;
        self.save_change()
    }

    /// Adds a remote instance behind an existing node's trunk.
    pub fn add_instance(&mut self, instance: InstanceSpec) -> Result<(), LabError> {
        let mut next = self.spec.clone();
        next.instances.push(instance.clone());
        next.validate()?;
        let switch = next.switch_of(&instance.node, &instance.port);
        if let Err(e) = build_instance(&self.prefix, &self.state_root, &instance, &switch) {
            // Half an instance must not block adding it again.
            let _ = remove_instance(&self.prefix, &instance, &switch);
            return Err(e);
        }
        self.spec = next;
        self.save_change()
    }

    /// Removes instance `name` (its namespace and access port).
    pub fn remove_instance(&mut self, name: &str) -> Result<(), LabError> {
        let index = self
            .spec
            .instances
            .iter()
            .position(|i| i.name == name)
            .ok_or_else(|| LabError::NotFound {
                prefix: self.prefix.clone(),
                what: format!("no instance {name:?}"),
            })?;
        let instance = &self.spec.instances[index];
        let switch = self.spec.switch_of(&instance.node, &instance.port);
        remove_instance(&self.prefix, instance, &switch)?;
        self.spec.instances.remove(index);
        self.save_change()
    }

    /// Adds a host on the fabric.
    pub fn add_host(&mut self, host: FabricHostSpec) -> Result<(), LabError> {
        let mut next = self.spec.clone();
        next.hosts.push(host.clone());
        next.validate()?;
        build_host(&self.prefix, &self.spec.fabric, &host)?;
        self.spec = next;
        self.save_change()
    }

    /// Adds a kernel VXLAN VTEP on the fabric.
    pub fn add_vtep(&mut self, vtep: VtepSpec) -> Result<(), LabError> {
        let mut next = self.spec.clone();
        next.vteps.push(vtep.clone());
        next.validate()?;
        build_vtep(&self.prefix, &self.spec.fabric, &vtep)?;
        self.spec = next;
        self.save_change()
    }

    /// Adds a DC gateway (and the host behind it) on the fabric.
    pub fn add_dc_gateway(&mut self, gateway: DcGatewaySpec) -> Result<(), LabError> {
        let mut next = self.spec.clone();
        next.dc_gateways.push(gateway.clone());
        next.validate()?;
        build_dc_gateway(&self.prefix, &self.state_root, &self.spec.fabric, &gateway)?;
        self.spec = next;
        self.save_change()
    }

    /// Adds (or replaces) a route of DC gateway `name` into the overlay:
    /// `route.to` by MPLS over UDP to `route.node` with `route.label`.
    pub fn add_dc_gateway_route(
        &mut self,
        name: &str,
        route: DcGatewayRoute,
    ) -> Result<(), LabError> {
        let mut next = self.spec.clone();
        let Some(gateway) = next.dc_gateways.iter_mut().find(|g| g.name == name) else {
            return Err(LabError::NotFound {
                prefix: self.prefix.clone(),
                what: format!("no DC gateway {name}"),
            });
        };
        gateway.routes.retain(|r| r.to != route.to);
        gateway.routes.push(route.clone());
        let gateway = gateway.clone();
        next.validate()?;
        crate::dc_gateway::add_route(&self.prefix, &self.state_root, &gateway, &route)?;
        self.spec = next;
        self.save_change()
    }

    /// Stops removing the lab on drop (it stays until [`Lab::down`]), e.g.
    /// to look at it after a test.
    pub fn keep(mut self) {
        self.owned = false;
        let _ = self.save(None);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.owned
            && let Err(e) = remove(&self.prefix, &self.state_root)
        {
            eprintln!("[lab] removing lab {}: {e}", self.prefix);
        }
    }
}

/// Removes every namespace `<prefix>-*` (instances first, the fabric last:
/// nothing is ever left half-wired to a bridge) and the state dir.
fn remove(prefix: &str, root: &Path) -> Result<(), LabError> {
    let mut first_error = None;
    let mut all = namespaces_of(prefix);
    let fabric = netns(prefix, FABRIC);
    all.sort_by_key(|ns| *ns == fabric);
    for ns in all {
        if let Err(e) = ip(&["netns", "del", &ns]) {
            // Someone else (a concurrent sweep) may have removed it.
            if Path::new("/run/netns").join(&ns).exists() {
                first_error.get_or_insert(e);
            }
        }
    }
    let dir = root.join(prefix);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(source) => {
            first_error.get_or_insert(LabError::Io { path: dir, source });
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Removes the labs under `root` whose owner process is gone.
fn sweep_abandoned(root: &Path) {
    let Ok(dir) = std::fs::read_dir(root) else {
        return;
    };
    for entry in dir.filter_map(Result::ok) {
        let path = entry.path().join("lab.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(state) = serde_json::from_str::<State>(&text) else {
            continue;
        };
        if state.owner.is_some_and(|o| !o.alive()) && check_prefix(&state.prefix).is_ok() {
            eprintln!(
                "[lab] removing lab {} of a process that is gone",
                state.prefix
            );
            let _ = remove(&state.prefix, root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = Owner::this_process().expect("/proc is mounted");
        assert!(me.alive());
        assert!(
            !Owner {
                start: me.start + 1,
                ..me
            }
            .alive()
        );
    }

    #[test]
    fn prefixes_are_checked() {
        for good in ["demo", "l1a2b3", "abcdefghijkl"] {
            check_prefix(good).unwrap();
        }
        for bad in ["", "Demo", "1lab", "a-b", "abcdefghijklm"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base36_counts() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }

    #[test]
    fn state_reads_back() {
        let state = State {
            prefix: "demo".into(),
            owner: Some(Owner { pid: 1, start: 2 }),
            spec: LabSpec::new().node(NodeSpec::new("gw").trunk("eth1")),
        };
        let text = serde_json::to_string(&state).unwrap();
        let back: State = serde_json::from_str(&text).unwrap();
        assert_eq!(back.owner, state.owner);
        assert_eq!(back.spec, state.spec);
    }
}
