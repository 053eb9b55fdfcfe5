//! Public access for a network through a host interface on selected nodes
//! (the seeds' simple gateway).

use std::collections::BTreeSet;

use trunkline_wire::IpPrefix;

use crate::from_api::{self, read};
use crate::object::{Kind, Meta, NamespacedName};

/// Public access for a network through a host interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualGateway {
    /// Identity (cluster-scoped).
    pub meta: Meta,
    /// Host interface name created on each node.
    pub interface: String,
    /// The network given access.
    pub network: NamespacedName,
    /// Subnets routed from the host through the interface, that could be
    /// read.
    pub subnets: Vec<IpPrefix>,
    /// `spec.routes`: destinations the VRF routes toward the interface,
    /// that could be read (see [`VirtualGateway::effective_routes`]).
    pub routes: Vec<IpPrefix>,
    /// Nodes (PhysicalRouter names) running it.
    pub nodes: BTreeSet<String>,
    /// Field values that could not be read.
    pub defects: Vec<String>,
}

impl VirtualGateway {
    /// The routes the VRF sends toward the interface: `spec.routes`, or by
    /// default (the seed's) a default route per address family of the
    /// subnets.
    pub fn effective_routes(&self) -> Vec<IpPrefix> {
        if !self.routes.is_empty() {
            return self.routes.clone();
        }
        let families: BTreeSet<IpPrefix> = self
            .subnets
            .iter()
            .map(|s| IpPrefix::default_of(s.addr()))
            .collect();
        families.into_iter().collect()
    }

    /// Converts the API object (see [`crate::from_api`]); unreadable
    /// prefixes become defects.
    pub fn from_api(gateway: &trunkline_api::VirtualGateway) -> Self {
        let mut defects = Vec::new();
        let mut prefixes = |field: &str, texts: &[trunkline_api::IpPrefix]| -> Vec<IpPrefix> {
            texts
                .iter()
                .filter_map(|t| read(field, t.as_str().parse::<IpPrefix>(), &mut defects))
                .collect()
        };
        let subnets = prefixes("spec.subnets", &gateway.spec.subnets);
        let routes = prefixes("spec.routes", &gateway.spec.routes);
        let conditions = gateway.status.as_ref().map(|s| &s.conditions[..]);
        VirtualGateway {
            meta: from_api::meta(
                Kind::VirtualGateway,
                &gateway.metadata,
                conditions.unwrap_or_default(),
            ),
            interface: gateway.spec.interface.as_str().to_owned(),
            network: NamespacedName::new(
                gateway.spec.virtual_network.namespace.as_str(),
                gateway.spec.virtual_network.name.as_str(),
            ),
            subnets,
            routes,
            nodes: gateway
                .spec
                .nodes
                .iter()
                .map(|n| n.as_str().to_owned())
                .collect(),
            defects,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(subnets: &[&str], routes: &[&str]) -> VirtualGateway {
        VirtualGateway::from_api(
            &serde_json::from_value(serde_json::json!({
                "apiVersion": "trunkline.io/v1alpha1", "kind": "VirtualGateway",
                "metadata": {"name": "g"},
                "spec": {"interface": "vgw1", "virtualNetwork": {"namespace": "t", "name": "net1"},
                         "subnets": subnets, "routes": routes, "nodes": ["gw-2", "gw-1"]}
            }))
            .unwrap(),
        )
    }

    #[test]
    fn routes_default_to_one_default_route_per_family() {
        let g = gateway(&["192.0.2.0/24", "198.51.100.0/24"], &[]);
        assert_eq!(g.effective_routes(), ["0.0.0.0/0".parse().unwrap()]);
        let g = gateway(&["192.0.2.0/24", "fd00::/64"], &[]);
        let routes: Vec<String> = g.effective_routes().iter().map(|r| r.to_string()).collect();
        assert_eq!(routes, ["0.0.0.0/0", "::/0"]);
        let g = gateway(&["192.0.2.0/24"], &["8.8.8.0/24"]);
        assert_eq!(g.effective_routes(), ["8.8.8.0/24".parse().unwrap()]);
        assert_eq!(g.nodes.iter().collect::<Vec<_>>(), ["gw-1", "gw-2"]);
        assert_eq!(g.network, NamespacedName::new("t", "net1"));
    }

    #[test]
    fn unreadable_prefixes_become_defects() {
        let g = gateway(&["192.0.2.0/24", "x"], &["y/8"]);
        assert_eq!(g.subnets.len(), 1);
        assert!(g.routes.is_empty());
        assert_eq!(g.defects.len(), 2, "{:?}", g.defects);
        assert!(g.defects[1].starts_with("spec.routes: "));
    }
}
