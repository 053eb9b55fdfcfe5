//! How overlay traffic crosses the fabric, and which encapsulation to use
//! toward a peer: the first of the network's priority list that the peer
//! supports (as the original's encapsulation priority).
//!
//! ```text
//!  cluster default (operator --encapsulation-priority, MPLSoUDP,VXLAN)
//!        | overridden per network by spec.encapsulation
//!        v
//!  VirtualNetwork.status.encapsulation = [MPLSoUDP, VXLAN]
//!        |  peer is a trunkline node (both)  -> MPLSoUDP
//!        |  peer is an ExternalVTEP (VXLAN)  -> VXLAN
//! ```

use std::fmt;
use std::str::FromStr;

use crate::VirtualNetwork;

/// An overlay encapsulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Encapsulation {
    /// MPLS over UDP (RFC 7510, UDP 6635): a label per VMI (routed, inner IP
    /// packet) and a label per network (bridged and flooded, inner frame).
    MplsOverUdp,
    /// VXLAN (RFC 7348, UDP 4789): the network's VNI, inner frame.
    Vxlan,
}

/// The cluster default priority: MPLSoUDP, then VXLAN.
pub const DEFAULT_ENCAPSULATION_PRIORITY: [Encapsulation; 2] =
    [Encapsulation::MplsOverUdp, Encapsulation::Vxlan];

/// The first MPLS label the operator allocates: 0 to 15 are reserved
/// (RFC 3032).
pub const FIRST_MPLS_LABEL: u32 = 16;
/// The largest MPLS label the operator allocates: the lower half of the
/// 20-bit space (524,272 labels for networks and VMIs); the upper half
/// holds the networks' routed labels ([`routed_label`]).
pub const MAX_MPLS_LABEL: u32 = ROUTED_LABEL_OFFSET - 1;
/// What a network's routed label adds to its bridged label.
pub const ROUTED_LABEL_OFFSET: u32 = 1 << 19;

/// A network's routed label, derived from its bridged label
/// (`status.mplsLabel`): what a DC gateway sends traffic with for a
/// prefix the network exports that is not one of its VMIs' addresses (a
/// virtual gateway's subnets and routes), an inner IP packet the node
/// routes in the network's VRF (the original's per-VRF table label).
/// Derived, not allocated: the operator hands out labels below
/// [`ROUTED_LABEL_OFFSET`] only, so no other object can hold it, and every
/// node and the BGP speaker agree on it without a status field to wait
/// for. `None` for a label outside the allocated range.
pub fn routed_label(bridged: u32) -> Option<u32> {
    (FIRST_MPLS_LABEL..=MAX_MPLS_LABEL)
        .contains(&bridged)
        .then_some(bridged + ROUTED_LABEL_OFFSET)
}

/// What a trunkline gateway node speaks: both.
pub const NODE_ENCAPSULATIONS: [Encapsulation; 2] =
    [Encapsulation::MplsOverUdp, Encapsulation::Vxlan];

impl Encapsulation {
    /// The API spelling: `MPLSoUDP` or `VXLAN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encapsulation::MplsOverUdp => "MPLSoUDP",
            Encapsulation::Vxlan => "VXLAN",
        }
    }

    /// From the API type.
    pub fn from_api(e: trunkline_api::virtual_network::Encapsulation) -> Self {
        match e {
            trunkline_api::virtual_network::Encapsulation::MplsOverUdp => Self::MplsOverUdp,
            trunkline_api::virtual_network::Encapsulation::Vxlan => Self::Vxlan,
        }
    }

    /// To the API type.
    pub fn to_api(self) -> trunkline_api::virtual_network::Encapsulation {
        match self {
            Self::MplsOverUdp => trunkline_api::virtual_network::Encapsulation::MplsOverUdp,
            Self::Vxlan => trunkline_api::virtual_network::Encapsulation::Vxlan,
        }
    }
}

impl fmt::Display for Encapsulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why text is not an encapsulation or a priority list of them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncapsulationError {
    /// Not a known encapsulation.
    #[error("{0:?} is not an encapsulation: use MPLSoUDP or VXLAN")]
    Unknown(String),
    /// A list naming one encapsulation twice.
    #[error("{0} is listed twice: name each encapsulation at most once, e.g. MPLSoUDP,VXLAN")]
    Repeated(Encapsulation),
    /// An empty list.
    #[error("the list is empty: name at least one encapsulation, e.g. MPLSoUDP,VXLAN")]
    Empty,
}

impl FromStr for Encapsulation {
    type Err = EncapsulationError;

    /// `MPLSoUDP` or `VXLAN`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Encapsulation::MplsOverUdp, Encapsulation::Vxlan]
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| EncapsulationError::Unknown(s.to_owned()))
    }
}

/// A priority list of encapsulations: non-empty, each at most once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EncapsulationPriority(Vec<Encapsulation>);

impl EncapsulationPriority {
    /// The list, checked.
    pub fn new(list: Vec<Encapsulation>) -> Result<Self, EncapsulationError> {
        if list.is_empty() {
            return Err(EncapsulationError::Empty);
        }
        for (i, e) in list.iter().enumerate() {
            if list[..i].contains(e) {
                return Err(EncapsulationError::Repeated(*e));
            }
        }
        Ok(Self(list))
    }

    /// The encapsulations, first preferred.
    pub fn as_slice(&self) -> &[Encapsulation] {
        &self.0
    }
}

impl Default for EncapsulationPriority {
    /// MPLSoUDP, then VXLAN.
    fn default() -> Self {
        Self(DEFAULT_ENCAPSULATION_PRIORITY.to_vec())
    }
}

impl FromStr for EncapsulationPriority {
    type Err = EncapsulationError;

    /// A comma-separated list, e.g. `MPLSoUDP,VXLAN`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(EncapsulationError::Empty);
        }
        let list = s
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<Encapsulation>, _>>()?;
        Self::new(list)
    }
}

impl fmt::Display for EncapsulationPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|e| e.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

/// The encapsulation toward a peer that supports `peer_supports`: the first
/// of `network`'s list in effect ([`VirtualNetwork::encapsulation_in_effect`])
/// that the peer supports; `None` when they share none.
pub fn encapsulation_for(
    network: &VirtualNetwork,
    peer_supports: &[Encapsulation],
) -> Option<Encapsulation> {
    network
        .encapsulation_in_effect()
        .iter()
        .copied()
        .find(|e| peer_supports.contains(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Kind, Meta};

    #[test]
    fn a_routed_label_is_its_networks_label_in_the_upper_half() {
        assert_eq!(routed_label(16), Some(16 + (1 << 19)));
        assert_eq!(
            routed_label(MAX_MPLS_LABEL),
            Some((1 << 20) - 1),
            "fits 20 bits"
        );
        assert_eq!(routed_label(15), None, "reserved");
        assert_eq!(routed_label(ROUTED_LABEL_OFFSET), None, "never allocated");
    }

    fn network(spec: Option<Vec<Encapsulation>>, status: Vec<Encapsulation>) -> VirtualNetwork {
        VirtualNetwork {
            meta: Meta::namespaced(Kind::VirtualNetwork, "t", "n", Some(1), 1),
            subnets: vec![],
            vni: None,
            vni_in_use: None,
            forwarding_mode: Default::default(),
            flood_unknown_unicast: false,
            routing_instance: None,
            encapsulation: spec,
            encapsulation_in_use: status,
            mpls_label: None,
            north_south: Default::default(),
            fabric_exit_in_use: None,
            mtu: None,
            dhcp: Default::default(),
            network_policies: vec![],
            defects: vec![],
        }
    }

    #[test]
    fn the_first_of_the_list_the_peer_supports() {
        use Encapsulation::*;
        let default = network(None, vec![]);
        assert_eq!(
            encapsulation_for(&default, &NODE_ENCAPSULATIONS),
            Some(MplsOverUdp)
        );
        assert_eq!(encapsulation_for(&default, &[Vxlan]), Some(Vxlan));
        assert_eq!(encapsulation_for(&default, &[]), None);
        let vxlan_first = network(Some(vec![Vxlan, MplsOverUdp]), vec![]);
        assert_eq!(
            encapsulation_for(&vxlan_first, &NODE_ENCAPSULATIONS),
            Some(Vxlan)
        );
        let mpls_only = network(Some(vec![MplsOverUdp]), vec![]);
        assert_eq!(encapsulation_for(&mpls_only, &[Vxlan]), None);
        // The operator's decision (status) comes first.
        let decided = network(Some(vec![MplsOverUdp]), vec![Vxlan]);
        assert_eq!(
            encapsulation_for(&decided, &NODE_ENCAPSULATIONS),
            Some(Vxlan)
        );
    }

    #[test]
    fn priority_lists_read_and_refuse() {
        let p: EncapsulationPriority = "MPLSoUDP,VXLAN".parse().unwrap();
        assert_eq!(p, EncapsulationPriority::default());
        assert_eq!(p.to_string(), "MPLSoUDP,VXLAN");
        let p: EncapsulationPriority = "vxlan".parse().unwrap();
        assert_eq!(p.as_slice(), [Encapsulation::Vxlan]);
        assert_eq!(
            "VXLAN,GRE".parse::<EncapsulationPriority>(),
            Err(EncapsulationError::Unknown("GRE".into()))
        );
        assert_eq!(
            "VXLAN,vxlan".parse::<EncapsulationPriority>(),
            Err(EncapsulationError::Repeated(Encapsulation::Vxlan))
        );
        assert_eq!(
            "".parse::<EncapsulationPriority>(),
            Err(EncapsulationError::Empty)
        );
        assert!(
            EncapsulationError::Unknown("GRE".into())
                .to_string()
                .contains("use MPLSoUDP or VXLAN")
        );
    }
}
