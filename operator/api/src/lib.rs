//! The Kubernetes API of trunkline: custom resource types of the
//! `trunkline.io/v1alpha1` group, and nothing else.
//!
//! ```text
//!   cluster-scoped (infrastructure: a tenant can never claim a VLAN or a host interface)
//!   +----------------+   +------------------+   +----------------+   +----------------+
//!   | PhysicalRouter |<--| LogicalInterface |   | GatewayHAGroup |   | VirtualGateway |
//!   |  one per node  |   | router/port/VLAN |   | members, mode  |   | host interface |
//!   +----------------+   +--------+---------+   +-------+--------+   +-------+--------+
//!                                 | binds              | bpduNetwork        | serves
//!   namespaced (tenant)           v                    v                    v
//!                      +--------------------------+        +----------------+
//!                      | VirtualMachineInterface  |------->| VirtualNetwork |
//!                      | MAC, IPs, address pairs  |  in    | subnets, VNI   |
//!                      +--------------------------+        +----------------+
//!                                            serves (routes,  ^ joins
//!   cluster-scoped                                  labels) |      |
//!                                           +-----------+   +------+---------+
//!                                           | DCGateway |   |  ExternalVTEP  |
//!                                           | address   |   | address, hosts |
//!                                           +-----------+   +----------------+
//!
//!   namespaced: SecurityGroup (ingress/egress rules) <-- named by VMIs (spec.securityGroups)
//!   namespaced: VirtualNetworkPolicy (ordered rules)  <-- named by networks (spec.networkPolicies)
//!   cluster-scoped: ClusterVirtualNetworkPolicy (the administrator's; names networks of any namespace)
//! ```
//!
//! Every rule about a single object lives in the schema (ranges, formats,
//! CEL `x-kubernetes-validations`, immutability), so the API server refuses
//! bad input before anything else sees it. Rules across objects (duplicate
//! VLANs, duplicate addresses, dangling references) belong to the operator.
//!
//! The types hold no logic: pure logic lives in crates that take these types
//! (or their own domain types) and know nothing of Kubernetes I/O.

pub mod bgp_peer;
pub mod cluster_virtual_network_policy;
pub mod dc_gateway;
pub mod external_vtep;
pub mod fields;
pub mod gateway_ha_group;
pub mod logical_interface;
pub mod node_label;
pub mod packet_trace;
pub mod physical_router;
pub mod samples;
pub mod security_group;
pub mod status;
pub mod virtual_gateway;
pub mod virtual_machine_interface;
pub mod virtual_network;
pub mod virtual_network_policy;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use bgp_peer::{BGPPeer, BGPPeerSpec, BGPPeerStatus};
pub use cluster_virtual_network_policy::{
    ClusterVirtualNetworkPolicy, ClusterVirtualNetworkPolicySpec,
};
pub use dc_gateway::{DCGateway, DCGatewaySpec, DCGatewayStatus};
pub use external_vtep::{ExternalVTEP, ExternalVTEPSpec, ExternalVTEPStatus};
pub use fields::{
    InterfaceName, IpAddress, IpAddressPrefix, IpPrefix, MacAddress, NamespaceName, NamespacedRef,
    ObjectName, RouteDistinguisher, RouteTarget,
};
pub use gateway_ha_group::{GatewayHAGroup, GatewayHAGroupSpec, GatewayHAGroupStatus};
pub use logical_interface::{LogicalInterface, LogicalInterfaceSpec, LogicalInterfaceStatus};
pub use packet_trace::{PacketTrace, PacketTraceSpec, PacketTraceStatus};
pub use physical_router::{PhysicalRouter, PhysicalRouterSpec, PhysicalRouterStatus};
pub use security_group::{SecurityGroup, SecurityGroupSpec, SecurityGroupStatus};
pub use virtual_gateway::{VirtualGateway, VirtualGatewaySpec, VirtualGatewayStatus};
pub use virtual_machine_interface::{
    VirtualMachineInterface, VirtualMachineInterfaceSpec, VirtualMachineInterfaceStatus,
};
pub use virtual_network::{VirtualNetwork, VirtualNetworkSpec, VirtualNetworkStatus};
pub use virtual_network_policy::{
    VirtualNetworkPolicy, VirtualNetworkPolicySpec, VirtualNetworkPolicyStatus,
};

/// The API group of every trunkline kind.
pub const GROUP: &str = "trunkline.io";
/// The API version served (and stored) today.
pub const VERSION: &str = "v1alpha1";
/// The category every kind belongs to: `kubectl get trunkline` lists them all.
pub const CATEGORY: &str = "trunkline";

/// Every CustomResourceDefinition of the API, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    [
        PhysicalRouter::crd(),
        LogicalInterface::crd(),
        VirtualMachineInterface::crd(),
        VirtualNetwork::crd(),
        GatewayHAGroup::crd(),
        VirtualGateway::crd(),
        ExternalVTEP::crd(),
        DCGateway::crd(),
        BGPPeer::crd(),
        PacketTrace::crd(),
        SecurityGroup::crd(),
        VirtualNetworkPolicy::crd(),
        ClusterVirtualNetworkPolicy::crd(),
    ]
    .into_iter()
    .map(without_unknown_formats)
    .collect()
}

/// Integer formats Kubernetes knows; schemars also emits `uint8`, `uint16`,
/// `uint32`, which the API server warns about on every apply.
const KNOWN_INTEGER_FORMATS: [&str; 2] = ["int32", "int64"];

fn without_unknown_formats(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                let integer = map.get("type").and_then(|t| t.as_str()) == Some("integer");
                let known = map
                    .get("format")
                    .and_then(|f| f.as_str())
                    .is_some_and(|f| KNOWN_INTEGER_FORMATS.contains(&f));
                if integer && !known {
                    map.remove("format");
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(&crd).expect("a CRD serializes");
    strip(&mut value);
    serde_json::from_value(value).expect("a CRD without formats deserializes")
}

/// The file name `make crds` writes a CRD to: `<group>_<plural>.yaml`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// Renders a CRD as the YAML committed under `crds/`.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::ser::Error> {
    let body = serde_saphyr::to_string(crd)?;
    Ok(format!(
        "# Generated by `make crds` from operator/api (crate trunkline-api). Do not edit.\n---\n{body}"
    ))
}
