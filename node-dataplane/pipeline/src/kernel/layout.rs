//! The maps of the XDP tier, byte for byte as `node-dataplane/xdp/bpf/tier.h`
//! declares them: names, how the generation enters each key, and the
//! encoders of keys and values. Integers in host byte order, addresses and
//! MACs in network order, as the C structs hold them.

/// VMI slots (`TIER_MAX_VMIS`): also the size of the VMI counter array.
pub const MAX_VMIS: u32 = 8192;
/// VRF slots (`TIER_MAX_VRFS`).
pub const MAX_VRFS: u32 = 4096;
/// Peer slots (`TIER_MAX_PEERS`).
pub const MAX_PEERS: u32 = 1024;
/// Remote VMI slots (`TIER_MAX_REMOTES`).
pub const MAX_REMOTES: u32 = 8192;
/// Allowed address pairs a VMI entry holds (`TIER_MAX_PAIRS`); a VMI with
/// more is handed off.
pub const MAX_PAIRS: usize = 4;

/// `tier_state`: bit 0 the generation, bit 1 the tables are installed.
pub const STATE_GEN: u32 = 1;
/// See [`STATE_GEN`].
pub const STATE_ENABLED: u32 = 2;

/// `GLOBAL_UNDERLAY`.
pub const GLOBAL_UNDERLAY: u32 = 1;
/// `GLOBAL_SNAT`: some network translates (the SNAT range is set).
pub const GLOBAL_SNAT: u32 = 2;
/// `PORT_GATEWAY`.
pub const PORT_GATEWAY: u32 = 1;
/// `PORT_FABRIC`.
pub const PORT_FABRIC: u32 = 2;
/// `PORT_HANDOFF` (a flag): every frame of the port goes to userspace.
pub const PORT_HANDOFF: u32 = 1;
/// `VMI_VALID`.
pub const VMI_VALID: u32 = 1;
/// `VMI_PORT_SECURITY`.
pub const VMI_PORT_SECURITY: u32 = 2;
/// `VMI_HANDOFF`: frames from or to the VMI go to userspace.
pub const VMI_HANDOFF: u32 = 4;
/// `VMI_EGRESS`: the VMI has an egress logical interface.
pub const VMI_EGRESS: u32 = 8;
/// `VMI_LEARNS`: a frame from one of its pairs' addresses moves the pair's
/// holder (handed off).
pub const VMI_LEARNS: u32 = 16;
/// `VMI_POLICED`: security groups: its frames pass by the flow stage's
/// established flows of its zone (`zone`, `generation` in its entry).
pub const VMI_POLICED: u32 = 32;
/// `VRF_VALID`.
pub const VRF_VALID: u32 = 1;
/// `VRF_ROUTES`.
pub const VRF_ROUTES: u32 = 2;
/// `VRF_BRIDGES`.
pub const VRF_BRIDGES: u32 = 4;
/// `VRF_FLOOD_UNKNOWN`.
pub const VRF_FLOOD_UNKNOWN: u32 = 8;
/// `VRF_EXIT`: the network leaves by the fabric (SNAT, IP fabric
/// forwarding): a route miss is handed off.
pub const VRF_EXIT: u32 = 16;
/// `VRF_ROUTED_PEERS`: DC gateways route for the network: tunnel packets
/// from a peer not hosting it are handed off.
pub const VRF_ROUTED_PEERS: u32 = 32;
/// `VRF_SNAT`: the network's exit is SNAT: the flow stage may translate
/// its established flows.
pub const VRF_SNAT: u32 = 64;
/// `VRF_LINKED`: a network policy connects the network: tunnel packets
/// into it are handed off (the receiver decides the link's flows).
pub const VRF_LINKED: u32 = 128;
/// `FABRIC_VRF`: the pseudo VRF slot of the route tries holding the
/// subnets of networks with IP fabric forwarding (`NH_NORTH_SOUTH`).
pub const FABRIC_VRF: u32 = 0x00ff_ffff;
/// `REMOTE_VALID`.
pub const REMOTE_VALID: u32 = 1;
/// `REMOTE_HANDOFF`.
pub const REMOTE_HANDOFF: u32 = 2;
/// `PEER_VALID`.
pub const PEER_VALID: u32 = 1;
/// `PEER_RESOLVED`.
pub const PEER_RESOLVED: u32 = 2;
/// `NH_RECEIVE`.
pub const NH_RECEIVE: u32 = 1;
/// `NH_VMI`.
pub const NH_VMI: u32 = 2;
/// `NH_REMOTE`.
pub const NH_REMOTE: u32 = 3;
/// `NH_PEER`.
pub const NH_PEER: u32 = 4;
/// `NH_PORT`.
pub const NH_PORT: u32 = 5;
/// `NH_DISCARD`.
pub const NH_DISCARD: u32 = 6;
/// `NH_PAIR`: whoever holds an allowed pair's address now (handed off).
pub const NH_PAIR: u32 = 7;
/// `NH_NORTH_SOUTH`: a DC gateway's route, or the fabric's way back into a
/// network (IP fabric forwarding): north-south, decided in userspace.
pub const NH_NORTH_SOUTH: u32 = 8;
/// `NH_LINK_REMOTE`: a VMI on another node of a network a network policy
/// connects (id: its remote slot), by the link's established flows (the
/// route's zone and generation), then into a tunnel as `NH_REMOTE`.
pub const NH_LINK_REMOTE: u32 = 9;
/// `ROUTE_REVERSE` (`struct route`'s flags): an `NH_LINK_REMOTE` route's
/// link has its reverse direction, by which the receiver decides a tunnel
/// packet from that VMI.
pub const ROUTE_REVERSE: u32 = 1;
/// `NH_LINK`: a VMI of this node of a network a network policy connects
/// (`id` its slot): it crosses by the link's established flows, whose zone
/// and generation the route value carries (`struct route`).
pub const NH_LINK: u32 = 10;
/// `ENCAP_MPLS`.
pub const ENCAP_MPLS: u32 = 1;
/// `ENCAP_VXLAN`.
pub const ENCAP_VXLAN: u32 = 2;
/// `LABEL_VMI`.
pub const LABEL_VMI: u32 = 1;
/// `LABEL_VRF`.
pub const LABEL_VRF: u32 = 2;
/// `LABEL_ROUTED_VRF`: a network's routed label (from DC gateways),
/// handed off.
pub const LABEL_ROUTED_VRF: u32 = 3;

/// `TRACE_HANDOFF`: the frame went to userspace (AF_XDP).
pub const TRACE_HANDOFF: u32 = 1;
/// `TRACE_DROP`.
pub const TRACE_DROP: u32 = 2;
/// `TRACE_TX`: sent (XDP_TX or through the devmap).
pub const TRACE_TX: u32 = 3;
/// `TRACE_PASS`.
pub const TRACE_PASS: u32 = 4;

/// How a map's key carries the generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Keying {
    /// A hash map whose key starts with the generation (a `u32`).
    Hash,
    /// An array of `2 * max` entries: index `generation * max + slot`.
    Array(u32),
    /// An LPM trie whose data starts with `generation << 24 | vrf`, big endian.
    Lpm,
}

/// A map of the tier that holds the tables' image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TierMap {
    /// `tier_globals`: gateway MAC, underlay.
    Globals,
    /// `tier_ports`: ifindex to role.
    Ports,
    /// `tier_vlans`: (ifindex, VLAN) to VMI slot.
    Vlans,
    /// `tier_vmis`.
    Vmis,
    /// `tier_sources`: a VMI's addresses.
    Sources,
    /// `tier_vrfs`.
    Vrfs,
    /// `tier_routes4`.
    Routes4,
    /// `tier_routes6`.
    Routes6,
    /// `tier_bridge`.
    Bridge,
    /// `tier_remotes`.
    Remotes,
    /// `tier_peers`.
    Peers,
    /// `tier_peer_addrs`.
    PeerAddrs,
    /// `tier_vrf_peers`.
    VrfPeers,
    /// `tier_labels`.
    Labels,
    /// `tier_vnis`.
    Vnis,
}

impl TierMap {
    /// Every map of the image.
    pub const ALL: [TierMap; 15] = [
        TierMap::Globals,
        TierMap::Ports,
        TierMap::Vlans,
        TierMap::Vmis,
        TierMap::Sources,
        TierMap::Vrfs,
        TierMap::Routes4,
        TierMap::Routes6,
        TierMap::Bridge,
        TierMap::Remotes,
        TierMap::Peers,
        TierMap::PeerAddrs,
        TierMap::VrfPeers,
        TierMap::Labels,
        TierMap::Vnis,
    ];

    /// Its name in the object.
    pub const fn name(self) -> &'static str {
        match self {
            TierMap::Globals => "tier_globals",
            TierMap::Ports => "tier_ports",
            TierMap::Vlans => "tier_vlans",
            TierMap::Vmis => "tier_vmis",
            TierMap::Sources => "tier_sources",
            TierMap::Vrfs => "tier_vrfs",
            TierMap::Routes4 => "tier_routes4",
            TierMap::Routes6 => "tier_routes6",
            TierMap::Bridge => "tier_bridge",
            TierMap::Remotes => "tier_remotes",
            TierMap::Peers => "tier_peers",
            TierMap::PeerAddrs => "tier_peer_addrs",
            TierMap::VrfPeers => "tier_vrf_peers",
            TierMap::Labels => "tier_labels",
            TierMap::Vnis => "tier_vnis",
        }
    }

    /// How its key carries the generation.
    pub const fn keying(self) -> Keying {
        match self {
            TierMap::Globals => Keying::Array(1),
            TierMap::Vmis => Keying::Array(MAX_VMIS),
            TierMap::Vrfs => Keying::Array(MAX_VRFS),
            TierMap::Remotes => Keying::Array(MAX_REMOTES),
            TierMap::Peers => Keying::Array(MAX_PEERS),
            TierMap::Routes4 | TierMap::Routes6 => Keying::Lpm,
            _ => Keying::Hash,
        }
    }

    /// The sizes of its key and value, as in `tier.h`.
    pub const fn sizes(self) -> (usize, usize) {
        match self {
            TierMap::Globals => (4, 48),
            TierMap::Ports => (8, 8),
            TierMap::Vlans => (12, 4),
            TierMap::Vmis => (4, 28 + 28 * MAX_PAIRS + 8),
            TierMap::Sources => (28, 4),
            TierMap::Vrfs => (4, 16),
            TierMap::Routes4 => (12, 20),
            TierMap::Routes6 => (24, 20),
            TierMap::Bridge => (16, 8),
            TierMap::Remotes => (4, 32),
            TierMap::Peers => (4, 32),
            TierMap::PeerAddrs => (24, 4),
            TierMap::VrfPeers => (12, 8),
            TierMap::Labels => (8, 8),
            TierMap::Vnis => (8, 4),
        }
    }
}

/// The key of an entry, without its generation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// A hash key's bytes after the generation.
    Hash(Vec<u8>),
    /// An array slot.
    Slot(u32),
    /// An LPM entry: VRF slot, address bytes (4 or 16), prefix length.
    Route {
        /// The VRF slot.
        vrf: u32,
        /// The address (network order).
        addr: Vec<u8>,
        /// The prefix length.
        len: u8,
    },
}

impl Key {
    /// The key bytes of generation `generation` in `map`.
    pub fn encode(&self, map: TierMap, generation: u32) -> Vec<u8> {
        match (self, map.keying()) {
            (Key::Hash(rest), _) => {
                let mut key = Vec::with_capacity(4 + rest.len());
                key.extend_from_slice(&generation.to_ne_bytes());
                key.extend_from_slice(rest);
                key
            }
            (Key::Slot(slot), Keying::Array(max)) => {
                (generation * max + slot).to_ne_bytes().to_vec()
            }
            (Key::Slot(slot), _) => slot.to_ne_bytes().to_vec(),
            (Key::Route { vrf, addr, len }, _) => {
                let mut key = Vec::with_capacity(8 + addr.len());
                key.extend_from_slice(&(32 + u32::from(*len)).to_ne_bytes());
                key.extend_from_slice(&((generation << 24) | (vrf & 0x00ff_ffff)).to_be_bytes());
                key.extend_from_slice(addr);
                key
            }
        }
    }
}

/// Little helper to build byte values field by field.
#[derive(Debug, Default)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl Bytes {
    pub(crate) fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }

    pub(crate) fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }

    pub(crate) fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    pub(crate) fn raw(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }

    pub(crate) fn done(self) -> Vec<u8> {
        self.0
    }
}

/// The address of `ip` as 16 bytes (IPv4 in the first four) and its family.
pub(crate) fn addr16(ip: core::net::IpAddr) -> (u32, [u8; 16]) {
    let mut out = [0u8; 16];
    match ip {
        core::net::IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            (4, out)
        }
        core::net::IpAddr::V6(a) => (6, a.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_generation_where_the_program_looks_for_it() {
        assert_eq!(
            Key::Slot(5).encode(TierMap::Vmis, 1),
            (MAX_VMIS + 5).to_ne_bytes()
        );
        assert_eq!(Key::Slot(0).encode(TierMap::Globals, 1), 1u32.to_ne_bytes());
        let hash = Key::Hash(vec![9, 9]).encode(TierMap::Labels, 1);
        assert_eq!(&hash[..4], &1u32.to_ne_bytes());
        let route = Key::Route {
            vrf: 3,
            addr: vec![10, 0, 0, 0],
            len: 8,
        }
        .encode(TierMap::Routes4, 1);
        assert_eq!(&route[..4], &40u32.to_ne_bytes());
        assert_eq!(&route[4..], &[1, 0, 0, 3, 10, 0, 0, 0]);
    }
}
