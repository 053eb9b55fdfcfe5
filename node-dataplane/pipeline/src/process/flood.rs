//! Flooding: a broadcast, multicast or (when the network asks for it)
//! unknown-unicast frame goes to every logical interface of its network on
//! this node, each with its own VLAN, and to every peer hosting the network
//! by ingress replication, never back where it came from. A frame that came
//! through a tunnel goes to local members only (split horizon), so a flood
//! crosses the overlay once and never loops.
//!
//! ```text
//!  Verdict::Flood ──> caller: for member in 0..flood_members()
//!                        port = flood_egress(member)?       (None: skip it)
//!                        a transmit buffer of that port ──> flood_copy(member, frame, buffer)
//!                        sent: Pipeline::sent(vmi, len)    not sent: Pipeline::lost(reason)
//! ```
//!
//! Each copy is written once, straight into the egress port's buffer.

use trunkline_wire::ethernet;

use super::{Pipeline, parse_l2};
use crate::config::PortId;
use crate::tables::VmiId;
use crate::verdict::{DropReason, Flood, FloodSource};

impl<'a> Pipeline<'a> {
    /// How many members the flood list of `flood` has (some may be skipped:
    /// see [`Pipeline::flood_egress`]).
    pub fn flood_members(&self, flood: &Flood) -> usize {
        let Some(vrf) = self.tables.vrfs.get(flood.vrf as usize) else {
            return 0;
        };
        let tunnels = match flood.from {
            FloodSource::Tunnel(_) => 0,
            _ if self.tables.underlay.is_none() => 0,
            _ => vrf.peers.len(),
        };
        vrf.locals.len() + tunnels
    }

    /// The port member `member` of the flood leaves by, or `None` when the
    /// member is where the frame came from.
    pub fn flood_egress(&self, flood: &Flood, member: usize) -> Option<PortId> {
        let vrf = self.tables.vrfs.get(flood.vrf as usize)?;
        match vrf.locals.get(member) {
            Some(local) => match flood.from {
                FloodSource::Local { port, vlan } if port == local.port && vlan == local.vlan => {
                    None
                }
                // Never out of a standby member's trunk (split horizon of
                // the HA group).
                _ if self.ha_blocks(local.port) => None,
                _ => Some(local.port),
            },
            None => match flood.from {
                FloodSource::Tunnel(_) => None,
                _ => {
                    vrf.peers.get(member - vrf.locals.len())?;
                    self.tables.underlay.map(|u| u.port)
                }
            },
        }
    }

    /// Write member `member`'s copy of the flooded frame (in `src`, where
    /// the frame was received) into `dst`, a transmit buffer of the port
    /// [`Pipeline::flood_egress`] named: where it lies in `dst` and the VMI
    /// it goes to, if any.
    pub fn flood_copy(
        &self,
        flood: &Flood,
        member: usize,
        src: &[u8],
        dst: &mut [u8],
    ) -> Result<(usize, usize, Option<VmiId>), DropReason> {
        let frame = flood
            .offset
            .checked_add(flood.len)
            .and_then(|end| src.get(flood.offset..end))
            .ok_or(DropReason::TruncatedFrame)?;
        let l2 = parse_l2(frame)?;
        let vrf = self
            .tables
            .vrfs
            .get(flood.vrf as usize)
            .ok_or(DropReason::TruncatedFrame)?;
        if let Some(local) = vrf.locals.get(member) {
            // The frame with the member's tag (none for VLAN 0), the
            // priority bits of an incoming tag kept.
            let tag = if local.vlan == 0 { 0 } else { 4 };
            let rest = &frame[l2.header_len..];
            let len = ethernet::HEADER_LEN + tag + rest.len();
            let out = dst.get_mut(..len).ok_or(DropReason::FrameTooLarge)?;
            out[..12].copy_from_slice(&frame[..12]);
            let mut at = 12;
            if tag != 0 {
                let pcp = l2.tci.map_or(0, |tci| tci & 0xf000);
                out[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
                out[14..16].copy_from_slice(&(pcp | (local.vlan & 0x0fff)).to_be_bytes());
                at = 16;
            }
            out[at..at + 2].copy_from_slice(&u16::from(l2.ethertype).to_be_bytes());
            out[at + 2..].copy_from_slice(rest);
            return Ok((0, len, Some(local.vmi)));
        }
        let (peer, encap) = *vrf
            .peers
            .get(member - vrf.locals.len())
            .ok_or(DropReason::TruncatedFrame)?;
        let (offset, len) = self.encapsulate_copy(peer, encap, frame, &l2, dst)?;
        Ok((offset, len, None))
    }
}
