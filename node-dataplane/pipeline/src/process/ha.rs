//! Gateway HA on the fast path: what a member does by its role, and where
//! traffic for a VMI several nodes serve goes. Two relaxed loads per frame
//! at most, both runtime cells of the tables the agent flips (see
//! `tables/ha.rs`).
//!
//! ```text
//!  from a member port, role standby ─────────────────────────> drop ha_standby
//!  from a logical interface, multi-homed VMI, own traffic ───> mark seen (the agent
//!                                                              claims the path)
//!  to a multi-homed VMI of this node:
//!     path = a peer, not from a tunnel ──> through that peer (routed: its label,
//!                                          bridged: the network's label or VNI)
//!     else, its port standby ────────────> drop ha_standby
//!     else ───────────────────────────────> out of its logical interface
//!  to a remote multi-homed VMI ──────────> through its current peer
//!  a flood's copy for a member port of a standby group ──> not sent
//! ```
//!
//! A frame that came through a tunnel is never sent into one again (split
//! horizon): a peer that reached a standby member with stale information
//! loses that frame, until the claim that moved the path reaches it. A DC
//! gateway is not a node: it learns one member per VMI (BGP), and what it
//! sends by a VMI's label to a member not serving the VMI now goes on to
//! the member that does (`tunnel.rs`, `deliver_routed`), one hop at most.

use crate::observe::Observer;
use core::sync::atomic::Ordering;

use super::{Ingress, L2Header, Pipeline, Source};
use crate::config::PortId;
use crate::tables::{PathPeer, Remote, Vmi, VmiId};
use crate::verdict::{DropReason, Verdict};

impl<'a, O: Observer> Pipeline<'a, O> {
    /// A frame arrived on gateway port `port`: nothing passes a member port
    /// of a group in which this node is standby.
    #[inline]
    pub(super) fn ha_ingress(&self, port: PortId) -> Result<(), DropReason> {
        if self.tables.standby_port(port) {
            Err(DropReason::HaStandby)
        } else {
            Ok(())
        }
    }

    /// The multi-homed `vmi`'s own traffic arrived on this node: note it
    /// for the agent (one load, and a store only the first time).
    #[inline]
    pub(super) fn ha_seen(&self, vmi: &Vmi) {
        if O::SIDE_EFFECTS
            && let Some(path) = vmi.path.as_deref()
            && !path.seen.load(Ordering::Relaxed)
        {
            path.seen.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a flood's copy for the local member on `port` must not be
    /// sent (the port is a member port of a group this node is standby in).
    #[inline]
    pub(super) fn ha_blocks(&self, port: PortId) -> bool {
        self.tables.standby_port(port)
    }

    /// The peer a remote VMI is reached through now, with what routed and
    /// bridged traffic toward it carries.
    #[inline]
    pub(super) fn remote_via(&self, remote: &Remote) -> PathPeer {
        remote
            .path
            .as_deref()
            .and_then(|p| p.current())
            .copied()
            .unwrap_or(PathPeer {
                peer: remote.peer,
                routed: remote.routed,
                bridged: remote.bridged,
            })
    }

    /// Send a frame to VMI `id` of this node, wherever it is served now: out
    /// of its logical interface, or through the peer currently serving it
    /// (never for a frame from a tunnel), or nowhere while its member port
    /// is standby.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_to_local_vmi(
        &self,
        ctx: Ingress<'a>,
        id: VmiId,
        l2: &L2Header,
        buf: &mut [u8],
        offset: usize,
        len: usize,
        routed: bool,
    ) -> Result<Verdict, DropReason> {
        let vmi = &self.tables.vmis[id.index()];
        let via = vmi.path.as_deref().and_then(|p| p.current());
        match via {
            Some(via) if !matches!(ctx.source, Source::Tunnel(_)) => {
                if routed {
                    self.route_through(ctx, via.peer, via.routed, vmi.mac, l2, buf, offset, len)
                } else {
                    self.bridge_through(via.peer, via.bridged, l2, buf, offset, len)
                }
            }
            _ => {
                self.ha_deliver(vmi)?;
                if vmi.policy.is_some() {
                    let (l3, end) = (offset + l2.header_len, offset + len);
                    let ingress = crate::policy::Direction::Ingress;
                    self.police(vmi, ingress, l2.ethertype, buf, l3, end)?;
                }
                self.send_to_vmi(id, l2, buf, offset, len, routed)
            }
        }
    }

    /// Whether a frame may leave by `vmi`'s logical interface: not while
    /// its port is a member port of a group this node is standby in.
    #[inline]
    pub(super) fn ha_deliver(&self, vmi: &Vmi) -> Result<(), DropReason> {
        match vmi.egress {
            Some(egress) if self.tables.standby_port(egress.port) => Err(DropReason::HaStandby),
            _ => Ok(()),
        }
    }
}
