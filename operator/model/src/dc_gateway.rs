//! A data-center gateway reached over MPLS over UDP: the networks it serves
//! and the routes it provides them, each with its label.
//!
//! ```text
//!  DCGateway mx1 (192.0.2.1)
//!    serves tenant/octavia: 0.0.0.0/0 label 5000   --> ExternalRoute {0.0.0.0/0, next hop 192.0.2.1, label 5000}
//!    serves tenant/ironic:  (no route: it only sends toward the network's VMIs)
//! ```
//!
//! [`ExternalRoute`] is the route the data path installs: declared here
//! today, learned by BGP (a VPNv4/VPNv6 route: prefix, next hop, label)
//! later, so both feed the same VRF entries.

use std::net::IpAddr;

use trunkline_wire::IpPrefix;

use crate::encapsulation::Encapsulation;
use crate::from_api::{self, read};
use crate::object::{Kind, Meta, NamespacedName};

/// A DC gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DcGateway {
    /// Identity (cluster-scoped).
    pub meta: Meta,
    /// Its underlay address; `None` when unreadable (then `defects` says
    /// why).
    pub address: Option<IpAddr>,
    /// What it speaks (MPLS over UDP).
    pub encapsulation: Encapsulation,
    /// The networks it serves, with the routes it provides each.
    pub networks: Vec<DcGatewayNetwork>,
    /// Field values that could not be read.
    pub defects: Vec<String>,
}

/// One network a DC gateway serves.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DcGatewayNetwork {
    /// The network.
    pub network: NamespacedName,
    /// The routes it provides (those that could be read).
    pub routes: Vec<LabelledPrefix>,
}

/// A destination and the label a tunnel endpoint decapsulates it by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelledPrefix {
    /// The destination.
    pub prefix: IpPrefix,
    /// The MPLS label (the endpoint's own label space).
    pub label: u32,
}

/// A route into a network's VRF through a tunnel endpoint that is not a
/// trunkline node: MPLS over UDP to `next_hop` with `label`, the inner IP
/// packet as payload. What a DCGateway declares, and what a VPNv4/VPNv6
/// route learned by BGP will carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExternalRoute {
    /// The destination.
    pub prefix: IpPrefix,
    /// The tunnel's far end.
    pub next_hop: IpAddr,
    /// The label the far end decapsulates by.
    pub label: u32,
}

impl DcGateway {
    /// Converts the API object (see [`crate::from_api`]); an unreadable
    /// address or route prefix becomes a defect (the route is left out).
    pub fn from_api(gateway: &trunkline_api::DCGateway) -> Self {
        let mut defects = Vec::new();
        let address = read(
            "spec.address",
            from_api::ip(gateway.spec.address.as_str()),
            &mut defects,
        );
        let networks = gateway
            .spec
            .networks
            .iter()
            .map(|n| {
                let network = NamespacedName::new(n.namespace.as_str(), n.name.as_str());
                let field = format!("spec.networks[{network}].routes");
                let routes = n
                    .routes
                    .iter()
                    .filter_map(|r| {
                        let prefix =
                            read(&field, r.prefix.as_str().parse::<IpPrefix>(), &mut defects)?;
                        Some(LabelledPrefix {
                            prefix,
                            label: r.label,
                        })
                    })
                    .collect();
                DcGatewayNetwork { network, routes }
            })
            .collect();
        let conditions = gateway.status.as_ref().map(|s| &s.conditions[..]);
        DcGateway {
            meta: from_api::meta(
                Kind::DCGateway,
                &gateway.metadata,
                conditions.unwrap_or_default(),
            ),
            address,
            encapsulation: Encapsulation::MplsOverUdp,
            networks,
            defects,
        }
    }

    /// The routes it provides to `network` (none without a readable
    /// address).
    pub fn routes_for<'a>(
        &'a self,
        network: &'a NamespacedName,
    ) -> impl Iterator<Item = ExternalRoute> + 'a {
        self.networks
            .iter()
            .filter(move |n| &n.network == network)
            .flat_map(|n| n.routes.iter())
            .filter_map(|r| {
                Some(ExternalRoute {
                    prefix: r.prefix,
                    next_hop: self.address?,
                    label: r.label,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_reads_its_address_networks_and_routes() {
        let g: trunkline_api::DCGateway = serde_json::from_value(serde_json::json!({
            "apiVersion": "trunkline.io/v1alpha1", "kind": "DCGateway",
            "metadata": {"name": "mx1", "generation": 2},
            "spec": {"address": "192.0.2.1", "networks": [
                {"namespace": "t", "name": "net1", "routes": [
                    {"prefix": "0.0.0.0/0", "label": 5000},
                    {"prefix": "bad", "label": 17}]},
                {"namespace": "t", "name": "net2"}]}
        }))
        .unwrap();
        let g = DcGateway::from_api(&g);
        assert_eq!(g.address, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(g.encapsulation, Encapsulation::MplsOverUdp);
        assert_eq!(g.networks.len(), 2);
        assert_eq!(g.defects.len(), 1, "{:?}", g.defects);
        assert!(g.defects[0].starts_with("spec.networks[t/net1].routes: "));
        let net1 = NamespacedName::new("t", "net1");
        let routes: Vec<ExternalRoute> = g.routes_for(&net1).collect();
        assert_eq!(
            routes,
            [ExternalRoute {
                prefix: "0.0.0.0/0".parse().unwrap(),
                next_hop: "192.0.2.1".parse().unwrap(),
                label: 5000
            }]
        );
        assert_eq!(g.routes_for(&NamespacedName::new("t", "net2")).count(), 0);
        assert_eq!(g.meta.key.to_string(), "DCGateway mx1");
    }
}
