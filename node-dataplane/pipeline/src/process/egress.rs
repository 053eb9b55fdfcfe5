//! Leaving by a logical interface: re-tagging (the VLAN of the egress
//! logical interface, none for VLAN 0), MAC rewrite for routed frames, and
//! replies sent back where a question came from (a VMI's logical interface,
//! a host port, or through the tunnel it arrived by).

use trunkline_wire::ethernet::{self, EtherType};
use trunkline_wire::{EthernetAddress, vlan};

use super::{Ingress, L2Header, Pipeline, Source};
use crate::tables::VmiId;
use crate::verdict::{DropReason, Verdict};

impl<'a> Pipeline<'a> {
    /// Send a frame to a VMI out of its egress logical interface; a routed
    /// frame also gets the VMI's MAC as destination and the gateway's as
    /// source, a bridged one keeps its MACs.
    #[inline]
    pub(super) fn send_to_vmi(
        &self,
        id: VmiId,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
        routed: bool,
    ) -> Result<Verdict, DropReason> {
        let vmi = &self.tables.vmis[id.index()];
        let egress = vmi.egress.ok_or(DropReason::VmiUnreachable)?;
        if routed {
            let mut eth = ethernet::Frame::new_unchecked(&mut buf[offset..offset + len]);
            eth.set_dst_addr(vmi.mac);
            eth.set_src_addr(self.tables.gateway_mac);
        }
        let (offset, len) = retag(buf, offset, len, l2.tci, egress.vlan)?;
        Ok(Verdict::Transmit {
            port: egress.port,
            offset,
            len,
            vmi: Some(id),
        })
    }

    /// Send a reply back where the request came from (same port and tag, or
    /// the same tunnel): destination `dst`, source the gateway MAC.
    #[inline]
    pub(super) fn reply(
        &self,
        ctx: Ingress<'a>,
        dst: EthernetAddress,
        buf: &mut [u8],
        offset: usize,
        len: usize,
    ) -> Result<Verdict, DropReason> {
        if let Source::Vmi(id) = ctx.source
            && !self.tables.vmis[id.index()].punt.take(self.now_ms)
        {
            return Err(DropReason::PuntRateLimited);
        }
        let mut eth = ethernet::Frame::new_unchecked(&mut buf[offset..offset + len]);
        eth.set_dst_addr(dst);
        eth.set_src_addr(self.tables.gateway_mac);
        match ctx.source {
            Source::Vmi(id) => Ok(Verdict::Transmit {
                port: ctx.port,
                offset,
                len,
                vmi: Some(id),
            }),
            Source::Host => Ok(Verdict::Transmit {
                port: ctx.port,
                offset,
                len,
                vmi: None,
            }),
            Source::Tunnel(peer) => self.reply_through_tunnel(ctx, peer, buf, offset, len),
        }
    }
}

/// Write an Ethernet header (with an 802.1Q tag when `vlan` is not 0) that
/// ends exactly at `end`; returns where it starts.
pub(super) fn write_l2_before(
    buf: &mut [u8],
    end: usize,
    dst: EthernetAddress,
    src: EthernetAddress,
    vlan: u16,
    ethertype: EtherType,
) -> Result<usize, DropReason> {
    let tag = if vlan == 0 { 0 } else { vlan::HEADER_LEN };
    let start = end
        .checked_sub(ethernet::HEADER_LEN + tag)
        .ok_or(DropReason::NoHeadroom)?;
    let mut eth = ethernet::Frame::new_unchecked(&mut buf[start..end]);
    eth.set_dst_addr(dst);
    eth.set_src_addr(src);
    if vlan == 0 {
        eth.set_ethertype(ethertype);
    } else {
        eth.set_ethertype(EtherType::Vlan);
        let mut tag = vlan::Packet::new_unchecked(&mut buf[start + ethernet::HEADER_LEN..end]);
        tag.set_tci(vlan & 0x0fff);
        tag.set_ethertype(ethertype);
    }
    Ok(start)
}

/// Give the frame at `buf[offset..offset + len]`, which has tag `tci` (or
/// none), the tag of `vlan` (none for VLAN 0): rewrite the VID in place,
/// pop the tag, or push one into the headroom. The priority bits of an
/// existing tag are kept. Returns the frame's new offset and length.
#[inline]
pub(super) fn retag(
    buf: &mut [u8],
    offset: usize,
    len: usize,
    tci: Option<u16>,
    vlan: u16,
) -> Result<(usize, usize), DropReason> {
    match (tci, vlan) {
        (None, 0) => Ok((offset, len)),
        (Some(_), 0) => {
            let offset = vlan::pop_tag(buf, offset, len).map_err(|_| DropReason::TruncatedFrame)?;
            Ok((offset, len - vlan::HEADER_LEN))
        }
        (Some(_), vid) => {
            let start = offset + ethernet::HEADER_LEN;
            let mut tag = vlan::Packet::new_unchecked(&mut buf[start..offset + len]);
            tag.set_vid(vid);
            Ok((offset, len))
        }
        (None, vid) => {
            let offset = vlan::push_tag(buf, offset, len, vid & 0x0fff).map_err(|e| match e {
                trunkline_wire::Error::NoRoom => DropReason::NoHeadroom,
                _ => DropReason::TruncatedFrame,
            })?;
            Ok((offset, len + vlan::HEADER_LEN))
        }
    }
}
