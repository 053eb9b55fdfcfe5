//! The one domain model of trunkline: what every object means, for the
//! operator and for every node dataplane alike, so that the two can never
//! disagree.
//!
//! ```text
//!   trunkline-api objects (CRDs, as watched)
//!          |
//!          |  from_api: read once; unreadable values become `defects`
//!          v
//!   Snapshot { PhysicalRouter, LogicalInterface, VirtualMachineInterface,
//!              VirtualNetwork, GatewayHaGroup, VirtualGateway, ExternalVtep,
//!              DcGateway, SecurityGroup }
//!   VirtualNetworkPolicy (apart: virtual_network_policy::links -> what each
//!              node connects)
//!          |                                  |
//!          |  placement(accepted?)            |  operator core: decide
//!          v                                  v  (conditions, VNIs, ...)
//!   Placement: VMI -> nodes, network -> nodes, node -> underlay address,
//!              network -> external VTEPs, network -> DC gateways
//!   HaLayout:  member port -> group, group -> VMIs served, witnesses
//!          |
//!          v
//!   node dataplane: its objects -> pipeline NodeConfig
//! ```
//!
//! Pure: no Kubernetes client, no async, no clock. Addresses are the
//! `trunkline-wire` types ([`IpPrefix`], [`EthernetAddress`]) the fast path
//! uses. Each kind has its file, holding its type and its conversion from
//! the API type (`from_api`); [`from_api`] holds what the conversions share.

#![forbid(unsafe_code)]

mod dc_gateway;
pub mod encapsulation;
mod external_vtep;
pub mod from_api;
mod gateway_ha_group;
pub mod ha;
mod logical_interface;
mod object;
mod physical_router;
pub mod placement;
mod resource_version;
mod security_group;
mod snapshot;
mod virtual_gateway;
mod virtual_machine_interface;
mod virtual_network;
pub mod virtual_network_policy;

pub use dc_gateway::{DcGateway, DcGatewayNetwork, ExternalRoute, LabelledPrefix};
pub use encapsulation::{
    DEFAULT_ENCAPSULATION_PRIORITY, Encapsulation, EncapsulationError, EncapsulationPriority,
    FIRST_MPLS_LABEL, MAX_MPLS_LABEL, NODE_ENCAPSULATIONS, ROUTED_LABEL_OFFSET, encapsulation_for,
    routed_label,
};
pub use external_vtep::{Endpoint, ExternalVtep, ExternalVtepNetwork};
pub use gateway_ha_group::{
    DEFAULT_DEAD_MILLIS, DEFAULT_HELLO_MILLIS, GatewayHaGroup, HaMember, HaMode, HaTimers,
    MIN_HELLO_MILLIS,
};
pub use ha::{GroupLayout, HaLayout};
pub use logical_interface::{InterfaceType, LogicalInterface};
pub use object::{Age, Kind, Meta, NamespacedName, NodeNames, ObjectKey};
pub use physical_router::{
    Fabric, HaPeerView, HaReport, HaState, NodeReport, PhysicalInterface, PhysicalRouter,
};
pub use placement::{DcGatewayPeer, ExternalPeer, Moved, Peer, Placement};
pub use resource_version::ResourceVersion;
pub use security_group::{DEFAULT_GROUP, Family, Protocol, Remote, Rule, SecurityGroup};
pub use snapshot::{HasMeta, Object, Snapshot};
pub use trunkline_wire::{EthernetAddress, IpPrefix, PrefixError};
pub use virtual_gateway::VirtualGateway;
pub use virtual_machine_interface::{AllowedAddressPair, VirtualMachineInterface};
pub use virtual_network::{
    DEFAULT_LEASE_SECS, Dhcp, DhcpMode, FabricExit, ForwardingMode, NorthSouth, Subnet,
    VirtualNetwork,
};
pub use virtual_network_policy::VirtualNetworkPolicy;
