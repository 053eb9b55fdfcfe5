//! The runtime cells of gateway HA, flipped by the node's agent without a
//! rebuild and read by the fast path per frame (relaxed atomics):
//!
//! ```text
//!  agent (HA thread)                          fast path (per frame)
//!  set_ha_role(group, Active|Standby) ──> HaGroup.role ──> member ports: standby drops
//!                                                          ingress, floods skip them,
//!                                                          deliveries to them drop
//!  set_vmi_path(vmi, here | peer)     ──> Path.via     ──> traffic for a multi-homed
//!                                                          VMI: out of the local trunk,
//!                                                          or through the current peer
//!  take_seen(|vmi| ...)               <── Path.seen    <── the VMI's own traffic arrived
//!                                                          on a local logical interface
//!  announcements(group)               (frames to inject at takeover: gratuitous ARP and
//!                                      unsolicited NA for every gateway address on every
//!                                      VLAN of the group's member ports)
//! ```
//!
//! A group's role cell is shared with the tables that follow a rebuild
//! (like a peer's next-hop MAC); a path cell is carried over by the peer
//! it names, and the agent writes its state again after each rebuild.

use core::net::IpAddr;
use core::sync::atomic::Ordering;

use trunkline_wire::ethernet::{self, EtherType};
use trunkline_wire::icmpv6::{self, NeighborFlags};
use trunkline_wire::{EthernetAddress, IpProtocol, arp, ipv6, vlan};

use super::{NO_VMI, Path, PortRole, Tables, Vmi, VmiId};
use crate::config::{HaMode, PortId};

/// A member's role in an HA group, as the fast path applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HaRole {
    /// Forwards and answers on the group's member ports.
    Active,
    /// Receives nothing from, answers nothing on, sends nothing out of the
    /// group's member ports.
    Standby,
}

impl HaRole {
    pub(crate) const fn to_u8(self) -> u8 {
        match self {
            HaRole::Active => 1,
            HaRole::Standby => 0,
        }
    }

    pub(crate) const fn from_u8(v: u8) -> Self {
        if v == 1 {
            HaRole::Active
        } else {
            HaRole::Standby
        }
    }

    /// The role a group starts with: a spanning tree decides in mode STP
    /// (every member forwards what reaches it), an election in mode Fast
    /// (standby until the agent says otherwise).
    pub(crate) const fn initial(mode: HaMode) -> Self {
        match mode {
            HaMode::Stp => HaRole::Active,
            HaMode::Fast => HaRole::Standby,
        }
    }
}

/// A frame to send at takeover: a gratuitous ARP or unsolicited neighbour
/// advertisement for a gateway address, on one VLAN of a member port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The member port.
    pub port: PortId,
    /// The VLAN (0: untagged).
    pub vlan: u16,
    /// The gateway address announced.
    pub address: IpAddr,
    /// The whole Ethernet frame.
    pub frame: Vec<u8>,
}

/// The shortest Ethernet frame (without the FCS): shorter ones are padded.
const MIN_FRAME: usize = 60;

impl Tables {
    /// Sets this node's role in HA group `group`; takes effect at once for
    /// every batch using these tables (and the tables built after them).
    /// Returns whether the node is a member of such a group.
    pub fn set_ha_role(&self, group: &str, role: HaRole) -> bool {
        let Some(&g) = self.ha_group_keys.get(group) else {
            return false;
        };
        self.ha_groups[g]
            .role
            .store(role.to_u8(), Ordering::Relaxed);
        true
    }

    /// This node's role in HA group `group`, when it is a member.
    pub fn ha_role(&self, group: &str) -> Option<HaRole> {
        let g = self.ha_group_keys.get(group)?;
        Some(HaRole::from_u8(
            self.ha_groups[*g].role.load(Ordering::Relaxed),
        ))
    }

    /// The HA groups this node is a member of, by key.
    pub fn ha_groups(&self) -> impl Iterator<Item = &str> {
        self.ha_groups.iter().map(|g| g.key.as_str())
    }

    /// Whether what happens to frames from or to `vmi` depends on a gateway
    /// HA cell: it is multi-homed (its path cell), or its logical interface
    /// is on a member port (the group's role cell). The XDP tier hands such
    /// frames off.
    pub(crate) fn ha_governs_vmi(&self, vmi: &Vmi) -> bool {
        vmi.path.is_some()
            || vmi
                .egress
                .and_then(|e| self.port(e.port))
                .is_some_and(|p| p.ha_group != super::NO_GROUP)
    }

    /// Whether frames of gateway port `port` are blocked by a standby role.
    #[inline]
    pub(crate) fn standby_port(&self, port: PortId) -> bool {
        match self.port(port) {
            Some(p) if p.ha_group != super::NO_GROUP => self
                .ha_groups
                .get(p.ha_group as usize)
                .is_some_and(|g| g.role.load(Ordering::Relaxed) != HaRole::Active.to_u8()),
            _ => false,
        }
    }

    fn path_of(&self, vmi: &str) -> Option<&Path> {
        if let Some(id) = self.vmi_keys.get(vmi) {
            return self.vmis[id.index()].path.as_deref();
        }
        let id = self.remote_keys.get(vmi)?;
        self.remotes[id.0 as usize].path.as_deref()
    }

    /// Sends traffic for the multi-homed VMI `vmi` through peer `via`, or
    /// delivers it here (`None`, for a VMI of this node). Takes effect at
    /// once. Returns whether the VMI is multi-homed here and the choice
    /// possible (the peer serves it; a remote VMI cannot be served here).
    pub fn set_vmi_path(&self, vmi: &str, via: Option<&str>) -> bool {
        let local = self.vmi_keys.contains_key(vmi);
        let Some(path) = self.path_of(vmi) else {
            return false;
        };
        let value = match via {
            None if local => Path::HERE,
            None => return false,
            Some(key) => match path
                .peers
                .iter()
                .position(|p| self.peers[p.peer.0 as usize].key() == key)
            {
                Some(i) => i as u32,
                None => return false,
            },
        };
        path.via.store(value, Ordering::Relaxed);
        true
    }

    /// Where traffic for the multi-homed VMI `vmi` goes now: `Some(None)`
    /// here, `Some(Some(peer))` through that peer; `None` when the VMI is
    /// not multi-homed here.
    pub fn vmi_path(&self, vmi: &str) -> Option<Option<&str>> {
        let path = self.path_of(vmi)?;
        Some(path.current().map(|p| self.peers[p.peer.0 as usize].key()))
    }

    /// The multi-homed VMIs: (key, whether this node holds it, the peers
    /// that can deliver it).
    pub fn multihomed_vmis(&self) -> impl Iterator<Item = (&str, bool, Vec<&str>)> {
        let peers = |path: &Path| -> Vec<&str> {
            path.peers
                .iter()
                .map(|p| self.peers[p.peer.0 as usize].key())
                .collect()
        };
        let local = self
            .vmis
            .iter()
            .filter_map(move |v| v.path.as_deref().map(|p| (v.key.as_str(), true, peers(p))));
        let remote = self
            .remotes
            .iter()
            .filter_map(move |r| r.path.as_deref().map(|p| (r.key.as_str(), false, peers(p))));
        local.chain(remote)
    }

    /// Calls `seen` with every multi-homed VMI of this node whose own
    /// traffic arrived since the last call, and forgets it.
    pub fn take_seen(&self, mut seen: impl FnMut(&str)) {
        for vmi in &self.vmis {
            if let Some(path) = vmi.path.as_deref()
                && path.seen.load(Ordering::Relaxed)
            {
                path.seen.store(false, Ordering::Relaxed);
                seen(&vmi.key);
            }
        }
    }

    /// The frames that tell the switches and instances behind group
    /// `group`'s member ports where the gateway now is: a gratuitous ARP
    /// (IPv4) or unsolicited neighbour advertisement (IPv6, override flag)
    /// from the gateway MAC for every gateway address of every routing
    /// network, on every VLAN of every member port, tagged as the logical
    /// interface is. Built when needed (not on the fast path).
    pub fn announcements(&self, group: &str) -> Vec<Announcement> {
        let Some(&g) = self.ha_group_keys.get(group) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for port in self.ports.iter().filter(|p| p.ha_group == g as u32) {
            let PortRole::Gateway { vlans } = &port.role else {
                continue;
            };
            for (vlan, &id) in vlans.iter().enumerate() {
                if id == NO_VMI {
                    continue;
                }
                let vrf = &self.vrfs[self.vmis[VmiId(id).index()].vrf];
                if !vrf.routes {
                    continue;
                }
                let mut addresses: Vec<IpAddr> = vrf.gateways.iter().map(|(_, gw)| *gw).collect();
                addresses.sort();
                addresses.dedup();
                for address in addresses {
                    out.push(Announcement {
                        port: port.id,
                        vlan: vlan as u16,
                        address,
                        frame: announcement(self.gateway_mac, vlan as u16, address),
                    });
                }
            }
        }
        out
    }
}

/// A gratuitous ARP request (IPv4) or an unsolicited neighbour
/// advertisement to all nodes (IPv6) for `address` from `mac`, on `vlan`.
pub(crate) fn announcement(mac: EthernetAddress, vlan: u16, address: IpAddr) -> Vec<u8> {
    let tag = if vlan == 0 { 0 } else { vlan::HEADER_LEN };
    let l3 = ethernet::HEADER_LEN + tag;
    let (ethertype, dst, l3_len) = match address {
        IpAddr::V4(_) => (
            EtherType::Arp,
            EthernetAddress::BROADCAST,
            arp::ETHERNET_IPV4_LEN,
        ),
        IpAddr::V6(_) => (
            EtherType::Ipv6,
            EthernetAddress::from_ipv6_multicast(&ipv6::LINK_LOCAL_ALL_NODES),
            ipv6::HEADER_LEN + icmpv6::NDP_HEADER_LEN + icmpv6::LLADDR_OPTION_LEN,
        ),
    };
    let mut frame = vec![0u8; (l3 + l3_len).max(MIN_FRAME)];
    {
        let mut eth = ethernet::Frame::new_unchecked(&mut frame[..]);
        eth.set_dst_addr(dst);
        eth.set_src_addr(mac);
        if vlan == 0 {
            eth.set_ethertype(ethertype);
        } else {
            eth.set_ethertype(EtherType::Vlan);
        }
    }
    if vlan != 0 {
        let mut tag = vlan::Packet::new_unchecked(&mut frame[ethernet::HEADER_LEN..]);
        tag.set_tci(vlan & 0x0fff);
        tag.set_ethertype(ethertype);
    }
    match address {
        IpAddr::V4(ip) => arp::Repr {
            operation: arp::Operation::Request,
            source_hardware_addr: mac,
            source_protocol_addr: ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: ip,
        }
        .emit(&mut arp::Packet::new_unchecked(&mut frame[l3..])),
        IpAddr::V6(ip) => {
            let dst = ipv6::LINK_LOCAL_ALL_NODES;
            let icmp = icmpv6::Repr::NeighborAdvert {
                flags: NeighborFlags::ROUTER | NeighborFlags::OVERRIDE,
                target_addr: ip,
                lladdr: Some(mac),
            };
            let mut packet = ipv6::Packet::new_unchecked(&mut frame[l3..l3 + l3_len]);
            ipv6::Repr {
                src_addr: ip,
                dst_addr: dst,
                next_header: IpProtocol::Icmpv6,
                payload_len: icmp.buffer_len(),
                hop_limit: icmpv6::NDP_HOP_LIMIT,
            }
            .emit(&mut packet);
            icmp.emit(
                &ip,
                &dst,
                &mut icmpv6::Packet::new_unchecked(packet.payload_mut()),
            );
        }
    }
    frame
}
