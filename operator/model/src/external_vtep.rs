//! A tunnel endpoint that is not a trunkline node, joined to networks, with
//! static hosts behind it.

use std::net::IpAddr;

use trunkline_api::external_vtep::ExternalVTEPEncapsulation;
use trunkline_wire::EthernetAddress;

use crate::encapsulation::Encapsulation;
use crate::from_api::{self, read};
use crate::object::{Kind, Meta, NamespacedName};

/// A tunnel endpoint outside trunkline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalVtep {
    /// Identity (cluster-scoped).
    pub meta: Meta,
    /// Its underlay address; `None` when unreadable (then `defects` says
    /// why).
    pub address: Option<IpAddr>,
    /// What it speaks (VXLAN only for now).
    pub encapsulation: Encapsulation,
    /// The networks it joins, with the hosts behind it in each.
    pub networks: Vec<ExternalVtepNetwork>,
    /// Field values that could not be read.
    pub defects: Vec<String>,
}

/// One network an external VTEP joins.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExternalVtepNetwork {
    /// The network.
    pub network: NamespacedName,
    /// Static hosts behind the VTEP in it, that could be read.
    pub endpoints: Vec<Endpoint>,
}

/// A static host behind an external VTEP.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// Its MAC.
    pub mac: EthernetAddress,
    /// Its addresses that could be read.
    pub ips: Vec<IpAddr>,
}

impl ExternalVtep {
    /// Converts the API object (see [`crate::from_api`]); an unreadable
    /// address or MAC becomes a defect (an endpoint without a readable MAC
    /// is left out).
    pub fn from_api(vtep: &trunkline_api::ExternalVTEP) -> Self {
        let mut defects = Vec::new();
        let address = read(
            "spec.address",
            from_api::ip(vtep.spec.address.as_str()),
            &mut defects,
        );
        let networks = vtep
            .spec
            .networks
            .iter()
            .map(|n| {
                let network = NamespacedName::new(n.namespace.as_str(), n.name.as_str());
                let field = format!("spec.networks[{network}].endpoints");
                let endpoints = n
                    .endpoints
                    .iter()
                    .filter_map(|e| {
                        let mac = read(
                            &field,
                            e.mac_address.as_str().parse::<EthernetAddress>(),
                            &mut defects,
                        );
                        let ips = e
                            .ips
                            .iter()
                            .filter_map(|ip| read(&field, from_api::ip(ip.as_str()), &mut defects))
                            .collect();
                        Some(Endpoint { mac: mac?, ips })
                    })
                    .collect();
                ExternalVtepNetwork { network, endpoints }
            })
            .collect();
        let conditions = vtep.status.as_ref().map(|s| &s.conditions[..]);
        ExternalVtep {
            meta: from_api::meta(
                Kind::ExternalVTEP,
                &vtep.metadata,
                conditions.unwrap_or_default(),
            ),
            address,
            encapsulation: match vtep.spec.encapsulation {
                ExternalVTEPEncapsulation::Vxlan => Encapsulation::Vxlan,
            },
            networks,
            defects,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vtep_reads_its_address_networks_and_hosts() {
        let v: trunkline_api::ExternalVTEP = serde_json::from_value(serde_json::json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "ExternalVTEP",
            "metadata": {"name": "tor-1", "generation": 1},
            "spec": {"address": "192.0.2.10", "networks": [
                {"namespace": "t", "name": "net1", "endpoints": [
                    {"macAddress": "02-00-00-00-0A-01", "ips": ["10.0.0.50", "bad"]},
                    {"macAddress": "zz"}]},
                {"namespace": "t", "name": "net2"}]}
        }))
        .unwrap();
        let v = ExternalVtep::from_api(&v);
        assert_eq!(v.address, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(v.encapsulation, Encapsulation::Vxlan);
        assert_eq!(v.networks.len(), 2);
        assert_eq!(v.networks[0].network, NamespacedName::new("t", "net1"));
        assert_eq!(
            v.networks[0].endpoints,
            [Endpoint {
                mac: EthernetAddress([2, 0, 0, 0, 0x0a, 1]),
                ips: vec!["10.0.0.50".parse().unwrap()]
            }]
        );
        assert_eq!(v.defects.len(), 2, "{:?}", v.defects);
        assert!(v.defects[0].starts_with("spec.networks[t/net1].endpoints: \"bad\""));
        assert_eq!(v.meta.key.to_string(), "ExternalVTEP tor-1");
    }
}
