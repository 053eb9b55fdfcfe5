//! What a lab is made of, as plain data: the fabric, gateway nodes with
//! their trunk ports, remote instances behind those ports, hosts on the
//! fabric and kernel VXLAN VTEPs. A spec is built in code (builder methods),
//! read from a YAML/JSON file, or from the command line's `key=value` text
//! ([`text`]); [`LabSpec::validate`] checks it before anything is created.
//!
//! ```yaml
//! fabric: {mtu: 1500}
//! nodes:
//!   - {name: gw1, underlay: [10.0.0.1/24, "fd00:f::1/64"], trunks: [{name: eth1}]}
//! instances:
//!   - {name: bms1, node: gw1, port: eth1, vlan: 100, mac: "02:00:00:00:01:01",
//!      addresses: [192.168.1.10/24, "fd00:1::10/64"], gateways: [192.168.1.1, "fd00:1::1"]}
//! hosts:
//!   - {name: pub, addresses: [10.0.0.253/24], routes: [{to: 192.168.1.0/24, via: 10.0.0.1}]}
//! vteps:
//!   - {name: vtep1, local: 10.0.0.100/24, vni: 5001, remotes: [10.0.0.1], addresses: [192.168.1.50/24]}
//! switches:   # shared by several trunks (gateway HA): a trunk names it
//!   - {name: rack, stp: {helloTime: 1, maxAge: 6, forwardDelay: 4}}
//! ```

mod addr;
pub mod text;

use std::collections::HashSet;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use addr::{Cidr, Mac};

/// The longest name of a node, instance, fabric host or VTEP: short enough
/// for `a-<name>` / `f-<name>` to stay a valid Linux interface name (15).
pub const MAX_NAME: usize = 12;

/// Names a lab uses for itself.
const RESERVED: &[&str] = &["fab"];

/// A spec that cannot be built, saying which part and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A value that does not parse or is out of range.
    #[error("invalid {field} {value:?}: {reason}")]
    Value {
        /// What the value is for.
        field: &'static str,
        /// The text given.
        value: String,
        /// What would be valid.
        reason: &'static str,
    },
    /// A name that cannot name a namespace or interface of the lab.
    #[error("{kind} name {name:?}: {reason}")]
    Name {
        /// node, instance, fabric host, VTEP or trunk port.
        kind: &'static str,
        /// The name given.
        name: String,
        /// What would be valid.
        reason: String,
    },
    /// Two parts with one name (each becomes namespace `<prefix>-<name>`).
    #[error(
        "the name {name:?} is used twice: nodes, instances, fabric hosts and VTEPs each get namespace <prefix>-<name>"
    )]
    Duplicate {
        /// The name.
        name: String,
    },
    /// A reference to a node or port the lab does not have.
    #[error("{owner}: {reason}")]
    Reference {
        /// The part that refers (e.g. `instance bms1`).
        owner: String,
        /// What is missing.
        reason: String,
    },
    /// A part whose values contradict each other.
    #[error("{owner}: {reason}")]
    Invalid {
        /// The part (e.g. `instance bms1`).
        owner: String,
        /// What is wrong and what would be valid.
        reason: String,
    },
    /// `key=value,...` text that does not read.
    #[error("{text:?}: {reason}")]
    Syntax {
        /// The text given.
        text: String,
        /// What would be valid.
        reason: String,
    },
}

/// A whole lab.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabSpec {
    /// The underlay bridge.
    #[serde(default)]
    pub fabric: FabricSpec,
    /// Gateway nodes, each on the fabric through its `eth0`.
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    /// Remote instances, each behind an access port of a node's switch.
    #[serde(default)]
    pub instances: Vec<InstanceSpec>,
    /// Hosts on the fabric (a public host, an underlay service).
    #[serde(default)]
    pub hosts: Vec<FabricHostSpec>,
    /// Kernel VXLAN VTEPs on the fabric.
    #[serde(default)]
    pub vteps: Vec<VtepSpec>,
    /// Switches shared by several trunks (of one node or of several, as
    /// the members of a gateway HA group): a trunk joins one by naming it.
    #[serde(default)]
    pub switches: Vec<SwitchSpec>,
    /// DC gateways on the fabric, each with a host behind it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dc_gateways: Vec<DcGatewaySpec>,
}

/// A switch several trunks join: namespace `<prefix>-<name>` with bridge
/// `br0`, a port `t-<node>` per trunk (a node joins it with one trunk at
/// most), and the access ports of the instances behind those trunks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SwitchSpec {
    /// Its name.
    pub name: String,
    /// Kernel spanning tree (802.1D), when it runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stp: Option<StpSpec>,
}

/// 802.1D timers of a switch's kernel spanning tree, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StpSpec {
    /// Hello time, 1..10 (802.1D default 2).
    pub hello_time: u32,
    /// Max age, 6..40 (default 20).
    pub max_age: u32,
    /// Forward delay, 4..30 (default 15).
    pub forward_delay: u32,
}

impl Default for StpSpec {
    /// 802.1D's defaults: hello 2 s, max age 20 s, forward delay 15 s.
    fn default() -> Self {
        Self {
            hello_time: 2,
            max_age: 20,
            forward_delay: 15,
        }
    }
}

impl StpSpec {
    /// The smallest timers 802.1D allows (hello 1 s, max age 6 s, forward
    /// delay 4 s, with 2 x (forward delay - 1) >= max age).
    pub fn fastest() -> Self {
        Self {
            hello_time: 1,
            max_age: 6,
            forward_delay: 4,
        }
    }
}

/// A DC gateway (seed 004): namespace `<prefix>-<name>` with `eth0` on the
/// fabric (address `local`, IPv4) and `eth1` toward a host behind it
/// (namespace `<prefix>-<host>`), routing between the two; it decapsulates
/// MPLS over UDP arriving from the fabric and encapsulates what it routes
/// to `routes` (instances behind gateway nodes) with their labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DcGatewaySpec {
    /// Its name.
    pub name: String,
    /// Its fabric address (the tunnels' far end), IPv4.
    pub local: Cidr,
    /// The address of `eth1`, toward the host behind it.
    pub outside: Cidr,
    /// The host behind it: its name (its own namespace).
    pub host: String,
    /// The host's address, on `outside`'s subnet (its default route goes
    /// through the gateway).
    pub host_address: Cidr,
    /// Destinations reached by MPLS over UDP.
    #[serde(default)]
    pub routes: Vec<DcGatewayRoute>,
}

/// A route of a DC gateway into the overlay: `to` through gateway node
/// `node` (its underlay address) with the MPLS `label` (an instance's
/// routed label).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DcGatewayRoute {
    /// The destination (host bits zero), IPv4 or IPv6 (inside IPv4 tunnels).
    pub to: Cidr,
    /// The node's underlay address (IPv4).
    pub node: IpAddr,
    /// The label, 16 to 1048575.
    pub label: u32,
}

/// The underlay bridge `br0` of namespace `<prefix>-fab`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FabricSpec {
    /// MTU of the bridge and of every link on it (both ends).
    #[serde(default = "default_mtu")]
    pub mtu: u32,
}

fn default_mtu() -> u32 {
    1500
}

impl Default for FabricSpec {
    fn default() -> Self {
        Self { mtu: default_mtu() }
    }
}

/// A gateway node: namespace `<prefix>-<name>` with fabric port `eth0`
/// (underlay addresses in the host stack) and trunk ports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeSpec {
    /// Its name (`[a-z][a-z0-9]*`, at most [`MAX_NAME`]).
    pub name: String,
    /// Addresses of `eth0` (IPv4 and/or IPv6).
    #[serde(default)]
    pub underlay: Vec<Cidr>,
    /// MAC of `eth0` (default: derived from the namespace's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    /// Trunk ports (`eth1`, `eth2`, ...), each to a switch of its own.
    #[serde(default)]
    pub trunks: Vec<TrunkSpec>,
}

/// A trunk port of a node and its switch `<prefix>-<node>-<port>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrunkSpec {
    /// The port's name in the node (`eth1`, ...; not `eth0`).
    pub name: String,
    /// Its MAC (default: derived from node and port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    /// Its MTU (both ends of the trunk link; default 1500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The shared switch it joins (one of [`LabSpec::switches`]); default:
    /// a switch of its own, `<prefix>-<node>-<port>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<String>,
}

/// A remote instance: namespace `<prefix>-<name>` with `eth0` on an access
/// port of the switch behind `node`'s trunk `port`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InstanceSpec {
    /// Its name.
    pub name: String,
    /// The node whose trunk it is behind.
    pub node: String,
    /// The node's trunk port.
    pub port: String,
    /// VLAN its access port tags (0: untagged).
    #[serde(default)]
    pub vlan: u16,
    /// Addresses of `eth0`; none for a DHCP client (then no route either).
    #[serde(default)]
    pub addresses: Vec<Cidr>,
    /// Default gateways, at most one per family, each inside one of the
    /// instance's subnets.
    #[serde(default)]
    pub gateways: Vec<IpAddr>,
    /// MAC of `eth0` (default: derived from the namespace's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    /// MTU of its link (default 1500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// A host on the fabric: namespace `<prefix>-<name>`, `eth0` on the bridge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FabricHostSpec {
    /// Its name.
    pub name: String,
    /// Addresses of `eth0`.
    #[serde(default)]
    pub addresses: Vec<Cidr>,
    /// Routes through nodes' underlay addresses (e.g. to a virtual
    /// gateway's subnets).
    #[serde(default)]
    pub routes: Vec<Route>,
    /// MAC of `eth0` (default: derived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
}

/// `to` via `via`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Route {
    /// Destination prefix (host bits zero).
    pub to: Cidr,
    /// Next hop, on a subnet of the host.
    pub via: IpAddr,
}

/// A kernel VXLAN VTEP: namespace `<prefix>-<name>` with `eth0` on the
/// fabric (address `local`) and `vxlan0` (VNI, UDP 4789, learning, a flood
/// entry per remote) carrying `addresses`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VtepSpec {
    /// Its name.
    pub name: String,
    /// Underlay address of `eth0`, the tunnel's source.
    pub local: Cidr,
    /// The VXLAN network identifier.
    pub vni: u32,
    /// Remote VTEP addresses: all-zero FDB entries (flooding, and the
    /// destination of unknown unicast).
    #[serde(default)]
    pub remotes: Vec<IpAddr>,
    /// Static FDB entries: this MAC lives behind that VTEP.
    #[serde(default)]
    pub fdb: Vec<FdbEntry>,
    /// Addresses of `vxlan0` (the overlay side).
    #[serde(default)]
    pub addresses: Vec<Cidr>,
    /// MAC of `vxlan0` (default: derived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
}

/// A static VXLAN FDB entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FdbEntry {
    /// The inner MAC.
    pub mac: Mac,
    /// The VTEP it is behind.
    pub dst: IpAddr,
}

/// Parses a literal of a test; panics with the reason when it is not valid.
fn literal<T: FromStr<Err = SpecError>>(text: &str) -> T {
    text.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn ip_literal(text: &str) -> IpAddr {
    text.parse()
        .unwrap_or_else(|_| panic!("{text:?} is not an IPv4 or IPv6 address"))
}

// Builders. They take text literals, as tests write them, and panic on
// invalid text (`# Panics` on each); code reading untrusted input goes
// through `FromStr`/`text` instead, which return errors.

impl LabSpec {
    /// An empty lab (a fabric of MTU 1500).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the fabric's MTU.
    pub fn fabric_mtu(mut self, mtu: u32) -> Self {
        self.fabric.mtu = mtu;
        self
    }

    /// Adds a node.
    pub fn node(mut self, node: NodeSpec) -> Self {
        self.nodes.push(node);
        self
    }

    /// Adds an instance.
    pub fn instance(mut self, instance: InstanceSpec) -> Self {
        self.instances.push(instance);
        self
    }

    /// Adds a fabric host.
    pub fn host(mut self, host: FabricHostSpec) -> Self {
        self.hosts.push(host);
        self
    }

    /// Adds a kernel VXLAN VTEP.
    pub fn vtep(mut self, vtep: VtepSpec) -> Self {
        self.vteps.push(vtep);
        self
    }

    /// Adds a shared switch.
    pub fn switch(mut self, switch: SwitchSpec) -> Self {
        self.switches.push(switch);
        self
    }

    /// The lab-relative name of the switch behind `node`'s trunk `port`:
    /// its shared switch, or its own (`<node>-<port>`).
    pub fn switch_of(&self, node: &str, port: &str) -> String {
        self.find_node(node)
            .and_then(|n| n.trunks.iter().find(|t| t.name == port))
            .and_then(|t| t.switch.clone())
            .unwrap_or_else(|| crate::switch_name(node, port))
    }

    /// Adds a DC gateway.
    pub fn dc_gateway(mut self, gateway: DcGatewaySpec) -> Self {
        self.dc_gateways.push(gateway);
        self
    }

    /// The node called `name`.
    pub fn find_node(&self, name: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The instance called `name`.
    pub fn find_instance(&self, name: &str) -> Option<&InstanceSpec> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// Checks names, references and values; the first problem found.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_mtu("fabric", self.fabric.mtu)?;
        let mut names = HashSet::new();
        let mut claim = |kind: &'static str, name: &str| {
            check_name(kind, name)?;
            if names.insert(name.to_owned()) {
                Ok(())
            } else {
                Err(SpecError::Duplicate {
                    name: name.to_owned(),
                })
            }
        };
        for n in &self.nodes {
            claim("node", &n.name)?;
        }
        for i in &self.instances {
            claim("instance", &i.name)?;
        }
        for h in &self.hosts {
            claim("fabric host", &h.name)?;
        }
        for v in &self.vteps {
            claim("VTEP", &v.name)?;
        }
        for s in &self.switches {
            claim("switch", &s.name)?;
            s.validate()?;
        }
        for g in &self.dc_gateways {
            claim("DC gateway", &g.name)?;
            claim("host behind a DC gateway", &g.host)?;
        }
        for n in &self.nodes {
            n.validate()?;
            for (i, t) in n.trunks.iter().enumerate() {
                let Some(sw) = &t.switch else { continue };
                if !self.switches.iter().any(|s| &s.name == sw) {
                    return Err(SpecError::Reference {
                        owner: format!("trunk port {} of node {}", t.name, n.name),
                        reason: format!("switch {sw:?} is not in the lab's switches"),
                    });
                }
                if n.trunks[..i].iter().any(|o| o.switch.as_ref() == Some(sw)) {
                    return Err(SpecError::Invalid {
                        owner: format!("node {}", n.name),
                        reason: format!(
                            "two trunks join switch {sw}: one per node (its port is t-{})",
                            n.name
                        ),
                    });
                }
            }
        }
        for i in &self.instances {
            i.validate(self)?;
        }
        for h in &self.hosts {
            h.validate()?;
        }
        for v in &self.vteps {
            v.validate()?;
        }
        for g in &self.dc_gateways {
            g.validate()?;
        }
        Ok(())
    }
}

impl NodeSpec {
    /// A node without addresses or ports.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            underlay: Vec::new(),
            mac: None,
            trunks: Vec::new(),
        }
    }

    /// Adds an underlay address (`10.0.0.1/24`, `fd00:f::1/64`).
    ///
    /// # Panics
    /// When `cidr` is not an address with a prefix length.
    pub fn underlay(mut self, cidr: &str) -> Self {
        self.underlay.push(literal(cidr));
        self
    }

    /// Sets the MAC of `eth0`.
    ///
    /// # Panics
    /// When `mac` is not a unicast MAC.
    pub fn mac(mut self, mac: &str) -> Self {
        self.mac = Some(literal(mac));
        self
    }

    /// Adds trunk port `name` with defaults.
    pub fn trunk(mut self, name: &str) -> Self {
        self.trunks.push(TrunkSpec::new(name));
        self
    }

    /// Adds a trunk port.
    pub fn trunk_spec(mut self, trunk: TrunkSpec) -> Self {
        self.trunks.push(trunk);
        self
    }

    /// The first underlay address of the family of `v6`.
    pub fn underlay_addr(&self, v6: bool) -> Option<IpAddr> {
        self.underlay
            .iter()
            .find(|c| c.is_ipv6() == v6)
            .map(Cidr::addr)
    }

    fn validate(&self) -> Result<(), SpecError> {
        let owner = format!("node {}", self.name);
        let mut seen = HashSet::new();
        for t in &self.trunks {
            t.validate(&owner)?;
            if !seen.insert(&t.name) {
                return Err(SpecError::Invalid {
                    owner,
                    reason: format!("trunk port {} is declared twice", t.name),
                });
            }
        }
        Ok(())
    }
}

impl SwitchSpec {
    /// A shared switch without spanning tree.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            stp: None,
        }
    }

    /// Runs the kernel's spanning tree with `timers`.
    pub fn stp(mut self, timers: StpSpec) -> Self {
        self.stp = Some(timers);
        self
    }

    fn validate(&self) -> Result<(), SpecError> {
        if let Some(t) = self.stp {
            let ok = (1..=10).contains(&t.hello_time)
                && (6..=40).contains(&t.max_age)
                && (4..=30).contains(&t.forward_delay)
                && 2 * (t.forward_delay - 1) >= t.max_age
                && t.max_age >= 2 * (t.hello_time + 1);
            if !ok {
                return Err(SpecError::Invalid {
                    owner: format!("switch {}", self.name),
                    reason: format!(
                        "STP timers hello {} max age {} forward delay {}: 802.1D wants hello 1..10, max age 6..40, forward delay 4..30, 2 x (forward delay - 1) >= max age >= 2 x (hello + 1)",
                        t.hello_time, t.max_age, t.forward_delay
                    ),
                });
            }
        }
        Ok(())
    }
}

impl TrunkSpec {
    /// Trunk port `name` with derived MAC and MTU 1500.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            mac: None,
            mtu: None,
            switch: None,
        }
    }

    /// Joins the shared switch `switch`.
    pub fn switch(mut self, switch: &str) -> Self {
        self.switch = Some(switch.to_owned());
        self
    }

    /// Sets its MAC.
    ///
    /// # Panics
    /// When `mac` is not a unicast MAC.
    pub fn mac(mut self, mac: &str) -> Self {
        self.mac = Some(literal(mac));
        self
    }

    /// Sets its MTU.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    pub(crate) fn validate(&self, owner: &str) -> Result<(), SpecError> {
        check_ifname("trunk port", &self.name)?;
        if self.name == "eth0" {
            return Err(SpecError::Name {
                kind: "trunk port",
                name: self.name.clone(),
                reason: format!("{owner}: eth0 is the fabric port; trunks are eth1, eth2, ..."),
            });
        }
        if let Some(mtu) = self.mtu {
            check_mtu(owner, mtu)?;
        }
        Ok(())
    }
}

impl InstanceSpec {
    /// An untagged instance without addresses behind `node`'s `port`.
    pub fn new(name: &str, node: &str, port: &str) -> Self {
        Self {
            name: name.to_owned(),
            node: node.to_owned(),
            port: port.to_owned(),
            vlan: 0,
            addresses: Vec::new(),
            gateways: Vec::new(),
            mac: None,
            mtu: None,
        }
    }

    /// Sets the VLAN of its access port (0: untagged).
    pub fn vlan(mut self, vlan: u16) -> Self {
        self.vlan = vlan;
        self
    }

    /// Adds an address (`192.168.1.10/24`, `fd00:1::10/64`).
    ///
    /// # Panics
    /// When `cidr` is not an address with a prefix length.
    pub fn ip(mut self, cidr: &str) -> Self {
        self.addresses.push(literal(cidr));
        self
    }

    /// Adds a default gateway (one per family).
    ///
    /// # Panics
    /// When `ip` is not an address.
    pub fn gateway(mut self, ip: &str) -> Self {
        self.gateways.push(ip_literal(ip));
        self
    }

    /// Sets its MAC.
    ///
    /// # Panics
    /// When `mac` is not a unicast MAC.
    pub fn mac(mut self, mac: &str) -> Self {
        self.mac = Some(literal(mac));
        self
    }

    /// Sets its link's MTU.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Its first address of the family of `v6`.
    pub fn addr(&self, v6: bool) -> Option<IpAddr> {
        self.addresses
            .iter()
            .find(|c| c.is_ipv6() == v6)
            .map(Cidr::addr)
    }

    pub(crate) fn validate(&self, lab: &LabSpec) -> Result<(), SpecError> {
        let owner = format!("instance {}", self.name);
        let node = lab
            .find_node(&self.node)
            .ok_or_else(|| SpecError::Reference {
                owner: owner.clone(),
                reason: format!("node {:?} is not in the lab", self.node),
            })?;
        if !node.trunks.iter().any(|t| t.name == self.port) {
            return Err(SpecError::Reference {
                owner,
                reason: format!(
                    "node {} has no trunk port {:?} (it has: {})",
                    node.name,
                    self.port,
                    node.trunks
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        if self.vlan > 4094 {
            return Err(SpecError::Invalid {
                owner,
                reason: format!("VLAN {} is not 0 (untagged) to 4094", self.vlan),
            });
        }
        if let Some(mtu) = self.mtu {
            check_mtu(&owner, mtu)?;
        }
        check_gateways(&owner, &self.addresses, &self.gateways)
    }
}

impl FabricHostSpec {
    /// A host without addresses.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            addresses: Vec::new(),
            routes: Vec::new(),
            mac: None,
        }
    }

    /// Adds an address.
    ///
    /// # Panics
    /// When `cidr` is not an address with a prefix length.
    pub fn ip(mut self, cidr: &str) -> Self {
        self.addresses.push(literal(cidr));
        self
    }

    /// Adds a route to `to` via `via` (a node's underlay address).
    ///
    /// # Panics
    /// When `to` is not a prefix or `via` not an address.
    pub fn route(mut self, to: &str, via: &str) -> Self {
        self.routes.push(Route {
            to: literal(to),
            via: ip_literal(via),
        });
        self
    }

    /// Sets its MAC.
    ///
    /// # Panics
    /// When `mac` is not a unicast MAC.
    pub fn mac(mut self, mac: &str) -> Self {
        self.mac = Some(literal(mac));
        self
    }

    fn validate(&self) -> Result<(), SpecError> {
        let owner = format!("fabric host {}", self.name);
        for r in &self.routes {
            if !r.to.is_network() {
                return Err(SpecError::Invalid {
                    owner,
                    reason: format!(
                        "route destination {} has host bits set; write the network",
                        r.to
                    ),
                });
            }
            if r.to.is_ipv6() != r.via.is_ipv6() {
                return Err(SpecError::Invalid {
                    owner,
                    reason: format!("route to {} via {}: families differ", r.to, r.via),
                });
            }
            if !self.addresses.iter().any(|a| a.contains(r.via)) {
                return Err(SpecError::Invalid {
                    owner,
                    reason: format!("next hop {} is on none of its subnets", r.via),
                });
            }
        }
        Ok(())
    }
}

impl DcGatewaySpec {
    /// A DC gateway with fabric address `local` (IPv4), `eth1`
    /// 203.0.113.1/24 and host `<name>h` 203.0.113.10/24 behind it.
    ///
    /// # Panics
    /// When `local` is not an address with a prefix length.
    pub fn new(name: &str, local: &str) -> Self {
        Self {
            name: name.to_owned(),
            local: literal(local),
            outside: literal("203.0.113.1/24"),
            host: format!("{name}h"),
            host_address: literal("203.0.113.10/24"),
            routes: Vec::new(),
        }
    }

    /// Sets the address of `eth1`.
    ///
    /// # Panics
    /// When `cidr` is not an address with a prefix length.
    pub fn outside(mut self, cidr: &str) -> Self {
        self.outside = literal(cidr);
        self
    }

    /// Sets the host behind it.
    ///
    /// # Panics
    /// When `cidr` is not an address with a prefix length.
    pub fn host(mut self, name: &str, cidr: &str) -> Self {
        self.host = name.to_owned();
        self.host_address = literal(cidr);
        self
    }

    /// Adds a route: `to` through node `node` with `label`.
    ///
    /// # Panics
    /// When `to` is not a prefix or `node` not an address.
    pub fn route(mut self, to: &str, node: &str, label: u32) -> Self {
        self.routes.push(DcGatewayRoute {
            to: literal(to),
            node: ip_literal(node),
            label,
        });
        self
    }

    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        let owner = format!("DC gateway {}", self.name);
        let invalid = |reason: String| SpecError::Invalid {
            owner: owner.clone(),
            reason,
        };
        if self.local.is_ipv6() || self.outside.is_ipv6() || self.host_address.is_ipv6() {
            return Err(invalid(
                "its addresses (local, outside, host) must be IPv4: the lab's decapsulator speaks MPLS over UDP over IPv4".into(),
            ));
        }
        if !self.outside.contains(self.host_address.addr())
            || self.outside.addr() == self.host_address.addr()
        {
            return Err(invalid(format!(
                "host address {} must be another address of the outside subnet {}",
                self.host_address, self.outside
            )));
        }
        for r in &self.routes {
            // The inner packets may be IPv6 (the decapsulator reads the
            // version); the tunnel is IPv4.
            if !r.to.is_network() || r.node.is_ipv6() {
                return Err(invalid(format!(
                    "route {} via node {}: give a prefix without host bits and the node's IPv4 underlay address",
                    r.to, r.node
                )));
            }
            if !(16..=0xf_ffff).contains(&r.label) {
                return Err(invalid(format!(
                    "route {}: label {} is not 16 to 1048575",
                    r.to, r.label
                )));
            }
        }
        Ok(())
    }
}

impl VtepSpec {
    /// A VTEP with underlay address `local` for `vni`.
    ///
    /// # Panics
    /// When `local` is not an address with a prefix length.
    pub fn new(name: &str, local: &str, vni: u32) -> Self {
        Self {
            name: name.to_owned(),
            local: literal(local),
            vni,
            remotes: Vec::new(),
            fdb: Vec::new(),
            addresses: Vec::new(),
            mac: None,
        }
    }

    /// Adds a remote VTEP (flood entry).
    ///
    /// # Panics
    /// When `ip` is not an address.
    pub fn remote(mut self, ip: &str) -> Self {
        self.remotes.push(ip_literal(ip));
        self
    }

    /// Adds a static FDB entry: `mac` is behind VTEP `dst`.
    ///
    /// # Panics
    /// When `mac` or `dst` do not parse.
    pub fn fdb(mut self, mac: &str, dst: &str) -> Self {
        self.fdb.push(FdbEntry {
            mac: literal(mac),
            dst: ip_literal(dst),
        });
        self
    }

    /// Adds an address of `vxlan0`.
    ///
    /// # Panics
    /// When `cidr` is not an address with a prefix length.
    pub fn ip(mut self, cidr: &str) -> Self {
        self.addresses.push(literal(cidr));
        self
    }

    /// Sets the MAC of `vxlan0`.
    ///
    /// # Panics
    /// When `mac` is not a unicast MAC.
    pub fn mac(mut self, mac: &str) -> Self {
        self.mac = Some(literal(mac));
        self
    }

    fn validate(&self) -> Result<(), SpecError> {
        let owner = format!("VTEP {}", self.name);
        if self.vni == 0 || self.vni > 0xff_ffff {
            return Err(SpecError::Invalid {
                owner,
                reason: format!("VNI {} is not 1 to 16777215", self.vni),
            });
        }
        let v6 = self.local.is_ipv6();
        for dst in self.remotes.iter().chain(self.fdb.iter().map(|e| &e.dst)) {
            if dst.is_ipv6() != v6 {
                return Err(SpecError::Invalid {
                    owner,
                    reason: format!(
                        "remote {dst} and local {} are of different families",
                        self.local
                    ),
                });
            }
        }
        Ok(())
    }
}

/// `[a-z][a-z0-9]*`, at most [`MAX_NAME`], not reserved.
fn check_name(kind: &'static str, name: &str) -> Result<(), SpecError> {
    let bad = |reason: &str| SpecError::Name {
        kind,
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(bad("1 to 12 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(bad("lower-case letters and digits, starting with a letter"));
    }
    if RESERVED.contains(&name) {
        return Err(bad("reserved for the fabric's namespace"));
    }
    Ok(())
}

/// A Linux interface name of letters and digits (at most 15).
fn check_ifname(kind: &'static str, name: &str) -> Result<(), SpecError> {
    if name.is_empty()
        || name.len() > 15
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(SpecError::Name {
            kind,
            name: name.to_owned(),
            reason: "1 to 15 lower-case letters and digits, starting with a letter".to_owned(),
        });
    }
    Ok(())
}

fn check_mtu(owner: &str, mtu: u32) -> Result<(), SpecError> {
    if (68..=65535).contains(&mtu) {
        Ok(())
    } else {
        Err(SpecError::Invalid {
            owner: owner.to_owned(),
            reason: format!("MTU {mtu} is not 68 to 65535"),
        })
    }
}

/// At most one gateway per family, each on one of the subnets.
fn check_gateways(owner: &str, addresses: &[Cidr], gateways: &[IpAddr]) -> Result<(), SpecError> {
    for (i, gw) in gateways.iter().enumerate() {
        if gateways[..i].iter().any(|g| g.is_ipv6() == gw.is_ipv6()) {
            return Err(SpecError::Invalid {
                owner: owner.to_owned(),
                reason: format!("a second default gateway of {gw}'s family"),
            });
        }
        if !addresses.iter().any(|a| a.contains(*gw)) {
            return Err(SpecError::Invalid {
                owner: owner.to_owned(),
                reason: format!(
                    "gateway {gw} is on none of its subnets ({})",
                    addresses
                        .iter()
                        .map(Cidr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> LabSpec {
        LabSpec::new()
            .node(
                NodeSpec::new("gw1")
                    .underlay("10.0.0.1/24")
                    .underlay("fd00:f::1/64")
                    .trunk("eth1"),
            )
            .node(
                NodeSpec::new("gw2")
                    .underlay("10.0.0.2/24")
                    .trunk("eth1")
                    .trunk("eth2"),
            )
            .instance(
                InstanceSpec::new("bms1", "gw1", "eth1")
                    .vlan(100)
                    .ip("192.168.1.10/24")
                    .ip("fd00:1::10/64")
                    .gateway("192.168.1.1")
                    .gateway("fd00:1::1")
                    .mac("02:00:00:00:01:01"),
            )
            .instance(InstanceSpec::new("dhcp1", "gw2", "eth2").vlan(7))
            .host(
                FabricHostSpec::new("pub")
                    .ip("10.0.0.253/24")
                    .route("192.168.1.0/24", "10.0.0.1"),
            )
            .vtep(
                VtepSpec::new("vtep1", "10.0.0.100/24", 5001)
                    .remote("10.0.0.1")
                    .ip("192.168.1.50/24"),
            )
    }

    #[test]
    fn a_full_lab_is_valid_and_round_trips_through_yaml_and_json() {
        let spec = lab();
        spec.validate().unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<LabSpec>(&json).unwrap(), spec);
        let yaml = r#"
fabric: {mtu: 1500}
nodes:
  - {name: gw1, underlay: [10.0.0.1/24, "fd00:f::1/64"], trunks: [{name: eth1}]}
  - {name: gw2, underlay: [10.0.0.2/24], trunks: [{name: eth1}, {name: eth2}]}
instances:
  - {name: bms1, node: gw1, port: eth1, vlan: 100, mac: "02:00:00:00:01:01",
     addresses: [192.168.1.10/24, "fd00:1::10/64"], gateways: [192.168.1.1, "fd00:1::1"]}
  - {name: dhcp1, node: gw2, port: eth2, vlan: 7}
hosts:
  - {name: pub, addresses: [10.0.0.253/24], routes: [{to: 192.168.1.0/24, via: 10.0.0.1}]}
vteps:
  - {name: vtep1, local: 10.0.0.100/24, vni: 5001, remotes: [10.0.0.1], addresses: [192.168.1.50/24]}
"#;
        let read: LabSpec = serde_saphyr::from_str(yaml).unwrap();
        assert_eq!(read, spec);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<LabSpec>(r#"{"nodes": [{"name": "gw", "ports": []}]}"#)
            .unwrap_err();
        assert!(err.to_string().contains("ports"), "{err}");
    }

    #[test]
    fn names_must_fit_namespaces_and_interfaces() {
        for (name, what) in [
            ("averyveryverylongname", "1 to 12"),
            ("Gw1", "lower-case"),
            ("1gw", "starting with a letter"),
            ("gw-1", "lower-case"),
            ("fab", "reserved"),
        ] {
            let err = LabSpec::new()
                .node(NodeSpec::new(name))
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(what), "{name}: {err}");
        }
        let err = LabSpec::new()
            .node(NodeSpec::new("gw").trunk("eth0"))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("fabric port"), "{err}");
    }

    #[test]
    fn names_are_unique_across_kinds() {
        let err = lab()
            .host(FabricHostSpec::new("bms1"))
            .validate()
            .unwrap_err();
        assert_eq!(
            err,
            SpecError::Duplicate {
                name: "bms1".into()
            }
        );
    }

    #[test]
    fn instances_refer_to_existing_nodes_and_ports() {
        let err = lab()
            .instance(InstanceSpec::new("x", "gw9", "eth1"))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("node \"gw9\""), "{err}");
        let err = lab()
            .instance(InstanceSpec::new("x", "gw1", "eth2"))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("it has: eth1"), "{err}");
    }

    #[test]
    fn gateways_are_on_link_and_one_per_family() {
        let bad = InstanceSpec::new("x", "gw1", "eth1")
            .ip("192.168.1.10/24")
            .gateway("192.168.2.1");
        let err = lab().instance(bad).validate().unwrap_err();
        assert!(err.to_string().contains("none of its subnets"), "{err}");
        let bad = InstanceSpec::new("x", "gw1", "eth1")
            .ip("192.168.1.10/24")
            .gateway("192.168.1.1")
            .gateway("192.168.1.2");
        let err = lab().instance(bad).validate().unwrap_err();
        assert!(err.to_string().contains("second default gateway"), "{err}");
    }

    #[test]
    fn vlan_vni_mtu_and_routes_are_checked() {
        let err = lab()
            .instance(InstanceSpec::new("x", "gw1", "eth1").vlan(4095))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("4094"), "{err}");
        let err = lab()
            .vtep(VtepSpec::new("v2", "10.0.0.101/24", 1 << 24))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("16777215"), "{err}");
        let err = lab()
            .vtep(VtepSpec::new("v2", "10.0.0.101/24", 7).remote("fd00::1"))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("different families"), "{err}");
        let err = lab().fabric_mtu(40).validate().unwrap_err();
        assert!(err.to_string().contains("68 to 65535"), "{err}");
        let err = lab()
            .host(
                FabricHostSpec::new("h2")
                    .ip("10.0.0.9/24")
                    .route("192.168.1.1/24", "10.0.0.1"),
            )
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("host bits"), "{err}");
    }
}
