//! The port of a remote instance in a virtual network: its MAC, its
//! addresses and what else it may send from.

use std::net::IpAddr;

use trunkline_wire::{EthernetAddress, IpPrefix};

use crate::from_api::{self, read};
use crate::object::{Kind, Meta, NamespacedName};

/// The port of a remote instance in a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualMachineInterface {
    /// Identity (namespaced).
    pub meta: Meta,
    /// The network, in the VMI's namespace.
    pub network: String,
    /// The MAC; `None` when unreadable (then `defects` says why).
    pub mac: Option<EthernetAddress>,
    /// The instance's addresses that could be read.
    pub ips: Vec<IpAddr>,
    /// Its addresses (as host prefixes) and allowed-address-pair prefixes
    /// in mode `ActiveActive`, that could be read (the rest are
    /// `ActiveStandby`, the default).
    pub active_active: Vec<IpPrefix>,
    /// Other sources the instance may use, that could be read.
    pub allowed_address_pairs: Vec<AllowedAddressPair>,
    /// Whether source MAC and IP are checked and security groups apply.
    pub port_security: bool,
    /// `spec.securityGroups`: groups of its namespace, as named (empty:
    /// the default group; see [`VirtualMachineInterface::groups`]).
    pub security_groups: Vec<String>,
    /// `status.mplsLabel`: the label of traffic routed to the VMI,
    /// allocated by the operator (kept while still free).
    pub mpls_label: Option<u32>,
    /// Field values that could not be read, each a message for the user.
    pub defects: Vec<String>,
}

/// A source prefix (and MAC) a VMI may send from besides its own addresses.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AllowedAddressPair {
    /// The allowed source prefix (host bits cleared).
    pub prefix: IpPrefix,
    /// The MAC it comes with; `None` means the VMI's own MAC.
    pub mac: Option<EthernetAddress>,
}

impl VirtualMachineInterface {
    /// `namespace/name` of the VMI.
    pub fn name(&self) -> NamespacedName {
        self.meta.namespaced_name()
    }

    /// `namespace/name` of its network.
    pub fn network_name(&self) -> NamespacedName {
        NamespacedName::new(self.meta.namespace(), &self.network)
    }

    /// The groups whose rules apply to its traffic: those it names, or
    /// the namespace's group `default` when it names none (which applies
    /// only if a SecurityGroup of that name exists: otherwise the VMI is
    /// not policed); none at all with port security off.
    pub fn groups(&self) -> Vec<&str> {
        if !self.port_security {
            Vec::new()
        } else if self.security_groups.is_empty() {
            vec![crate::DEFAULT_GROUP]
        } else {
            self.security_groups.iter().map(String::as_str).collect()
        }
    }

    /// Converts the API object (see [`crate::from_api`]); unreadable MACs,
    /// addresses and prefixes become defects.
    pub fn from_api(vmi: &trunkline_api::VirtualMachineInterface) -> Self {
        let mut defects = Vec::new();
        let mac = read(
            "spec.macAddress",
            vmi.spec.mac_address.as_str().parse::<EthernetAddress>(),
            &mut defects,
        );
        let ips = vmi
            .spec
            .ips
            .iter()
            .filter_map(|ip| read("spec.ips", from_api::ip(ip.address.as_str()), &mut defects))
            .collect();
        use trunkline_api::virtual_machine_interface::AddressMode;
        let active_active = vmi
            .spec
            .ips
            .iter()
            .filter(|ip| ip.mode == AddressMode::ActiveActive)
            .filter_map(|ip| from_api::ip(ip.address.as_str()).ok())
            .map(IpPrefix::host)
            .chain(
                vmi.spec
                    .allowed_address_pairs
                    .iter()
                    .filter(|pair| pair.mode == AddressMode::ActiveActive)
                    .filter_map(|pair| pair.prefix.as_str().parse::<IpPrefix>().ok()),
            )
            .collect();
        let allowed_address_pairs =
            vmi.spec
                .allowed_address_pairs
                .iter()
                .filter_map(|pair| {
                    let field = "spec.allowedAddressPairs";
                    let prefix = read(
                        field,
                        pair.prefix.as_str().parse::<IpPrefix>(),
                        &mut defects,
                    );
                    let mac = match &pair.mac_address {
                        None => Some(None),
                        Some(m) => read(field, m.as_str().parse::<EthernetAddress>(), &mut defects)
                            .map(Some),
                    };
                    Some(AllowedAddressPair {
                        prefix: prefix?,
                        mac: mac?,
                    })
                })
                .collect();
        let conditions = vmi.status.as_ref().map(|s| &s.conditions[..]);
        VirtualMachineInterface {
            meta: from_api::meta(
                Kind::VirtualMachineInterface,
                &vmi.metadata,
                conditions.unwrap_or_default(),
            ),
            network: vmi.spec.virtual_network.as_str().to_owned(),
            mac,
            ips,
            active_active,
            allowed_address_pairs,
            port_security: vmi.spec.port_security,
            security_groups: vmi
                .spec
                .security_groups
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            mpls_label: vmi.status.as_ref().and_then(|s| s.mpls_label),
            defects,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vmi(spec: serde_json::Value) -> trunkline_api::VirtualMachineInterface {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualMachineInterface",
            "metadata": {"name": "vmi1", "namespace": "t1", "generation": 1},
            "spec": spec,
            "status": {"mplsLabel": 20},
        }))
        .unwrap()
    }

    #[test]
    fn a_vmi_reads_its_mac_in_any_form_and_its_pairs() {
        let v = VirtualMachineInterface::from_api(&vmi(serde_json::json!({
            "virtualNetwork": "net1", "macAddress": "02-AA-00-00-00-01",
            "ips": [{"address": "10.0.0.5"}, {"address": "fd00::5"}],
            "allowedAddressPairs": [{"prefix": "10.0.0.100/24"},
                                    {"prefix": "10.0.0.7/32", "macAddress": "02:00:00:00:00:07"}],
            "portSecurity": false,
        })));
        assert_eq!(v.mac, Some(EthernetAddress([2, 0xaa, 0, 0, 0, 1])));
        assert_eq!(v.ips.len(), 2);
        assert_eq!(v.allowed_address_pairs[0].prefix.to_string(), "10.0.0.0/24");
        assert_eq!(v.allowed_address_pairs[0].mac, None);
        assert_eq!(
            v.allowed_address_pairs[1].mac,
            Some(EthernetAddress([2, 0, 0, 0, 0, 7]))
        );
        assert!(!v.port_security && v.defects.is_empty());
        assert_eq!(v.mpls_label, Some(20));
        assert_eq!(v.name(), NamespacedName::new("t1", "vmi1"));
        assert_eq!(v.network_name(), NamespacedName::new("t1", "net1"));
        assert!(!v.meta.accepted);
    }

    #[test]
    fn a_vmi_uses_its_groups_the_default_or_none() {
        let mut v = VirtualMachineInterface::from_api(&vmi(serde_json::json!({
            "virtualNetwork": "net1", "macAddress": "02:aa:00:00:00:01",
            "securityGroups": ["web", "admin"],
        })));
        assert_eq!(v.groups(), ["web", "admin"]);
        v.security_groups.clear();
        assert_eq!(v.groups(), [crate::DEFAULT_GROUP]);
        v.port_security = false;
        assert!(v.groups().is_empty());
    }

    #[test]
    fn unreadable_values_become_defects() {
        let v = VirtualMachineInterface::from_api(&vmi(serde_json::json!({
            "virtualNetwork": "net1", "macAddress": "02:aa:00:00:00",
            "ips": [{"address": "not-an-ip"}, {"address": "10.0.0.5"}],
            "allowedAddressPairs": [{"prefix": "10.0.0.100"},
                                    {"prefix": "10.0.0.7/32", "macAddress": "zz"}],
        })));
        assert_eq!(v.mac, None);
        assert_eq!(v.ips, ["10.0.0.5".parse::<IpAddr>().unwrap()]);
        assert!(v.allowed_address_pairs.is_empty());
        assert_eq!(v.defects.len(), 4, "{:?}", v.defects);
        assert!(
            v.defects[0].starts_with("spec.macAddress: \"02:aa:00:00:00\" is not a MAC address")
        );
        assert_eq!(
            v.defects[1],
            "spec.ips: \"not-an-ip\" is not an IPv4 or IPv6 address"
        );
    }
}
