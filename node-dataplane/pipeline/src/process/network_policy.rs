//! Network policies in the pipeline (issue 18's second kind): a routed
//! packet whose next hop is a VMI of another network (a leaked route,
//! `NextHop::Leak`) crosses only as the link's ordered rules say, decided
//! at the flow's first packet and remembered in the node's flow table in
//! the connection's zone (both directions share it, so replies follow the
//! verdict).
//!
//! ```text
//!  VRF red lookup -> Leak { vmi b, link red->blue }
//!        |
//!  decide_flow(zone of {red, blue}, generation of the connection)
//!        |-- flow allowed before (either direction) ----------> to VMI b
//!        |-- first packet: link.evaluate -> Allow ------------> to VMI b (b's groups still apply)
//!        +-- Deny / no rule / ICMP error of no allowed flow --> drop network_policy_denied
//! ```
//!
//! Across nodes (`NextHop::LeakRemote`), the sender decides as above and
//! encapsulates; the receiver decides again in its own flow table, by the
//! link in the direction the flow was opened, which it finds from the
//! inner source address's route in the destination network's VRF:
//!
//! ```text
//!  tunnel packet into VRF blue (linked), inner source s
//!    blue.lookup(s) = LeakRemote { VMI behind the sending peer, link blue->red }
//!        -> decide by red->blue (its reverse), zone of {red, blue} -> deliver
//!    another route, or none, from a peer hosting blue -> blue's own traffic
//!    anything else -------------------------> drop network_policy_unknown_source
//! ```
//!
//! Only TCP, UDP and ICMP/ICMPv6 have something to key a flow on beyond
//! the protocol; other protocols are keyed by addresses and protocol. IPv4
//! fragments cannot be decided (no ports): `policy_unsupported`.

use trunkline_wire::ethernet::EtherType;

use super::Pipeline;
use super::policy::{Decided, FlowZone, RuleVerdict};
use super::snat::transport;
use crate::network_policy::LinkVerdict;
use crate::observe::Observer;
use crate::tables::{LinkId, NextHop, PeerId, Vrf};
use crate::verdict::DropReason;
use core::net::IpAddr;

impl<'a, O: Observer> Pipeline<'a, O> {
    /// Decide the IP packet at `buf[l3..end]` crossing `link`: `Ok` when
    /// it may pass.
    #[inline]
    pub(super) fn police_link(
        &self,
        link: LinkId,
        ethertype: EtherType,
        buf: &[u8],
        l3: usize,
        end: usize,
    ) -> Result<(), DropReason> {
        let link = &self.tables.links[link.0 as usize];
        if !matches!(ethertype, EtherType::Ipv4 | EtherType::Ipv6) {
            return Err(DropReason::NetworkPolicyDenied);
        }
        let t = transport(buf, l3, end).map_err(|e| match e {
            DropReason::SnatUnsupported => DropReason::PolicyUnsupported,
            other => other,
        })?;
        let zone = FlowZone {
            zone: link.zone,
            generation: link.generation,
        };
        let decided = self.decide_flow(zone, buf, &t, |t| {
            match link.config.evaluate(t.family == 6, t.proto, t.dport) {
                LinkVerdict::Allowed(p, r) => RuleVerdict::Allow((p, r)),
                LinkVerdict::Denied(p, r) => RuleVerdict::Deny(Some((p, r))),
                LinkVerdict::DefaultDenied => RuleVerdict::Deny(None),
            }
        })?;
        match decided {
            Decided::Allowed(first) => {
                if O::SIDE_EFFECTS
                    && let Some((p, r)) = first
                {
                    link.counters.decided(p, r);
                }
                Ok(())
            }
            Decided::Denied(first) => {
                // Flows are counted at their first packet, by what decided
                // them; later packets of a denied flow (and ICMP errors of
                // no allowed flow) only in the drop counter.
                if O::SIDE_EFFECTS {
                    match first {
                        Some(Some((p, r))) => link.counters.decided(p, r),
                        Some(None) => link.counters.default_denied(),
                        None => {}
                    }
                }
                Err(DropReason::NetworkPolicyDenied)
            }
        }
    }

    /// The link a tunnel packet from `peer` into `vrf` (a VRF with links)
    /// crosses, in the direction it was opened (from the network of its
    /// source `src`), or `None` for the network's own traffic (`hosts`:
    /// the peer hosts the network, or routes for it).
    #[inline]
    pub(super) fn link_of_source(
        &self,
        vrf: &Vrf,
        peer: PeerId,
        src: IpAddr,
        hosts: bool,
    ) -> Result<Option<LinkId>, DropReason> {
        match vrf.lookup(src) {
            Some(NextHop::LeakRemote { remote, link }) => {
                if self.tables.linked[remote.0 as usize].peer != peer {
                    return Err(DropReason::NetworkPolicyUnknownSource);
                }
                self.tables.links[link.0 as usize]
                    .reverse
                    .map(Some)
                    .ok_or(DropReason::NetworkPolicyUnknownSource)
            }
            // A VMI of a connected network on this node does not send
            // through a tunnel.
            Some(NextHop::Leak { .. }) => Err(DropReason::NetworkPolicyUnknownSource),
            _ if hosts => Ok(None),
            _ => Err(DropReason::NetworkPolicyUnknownSource),
        }
    }
}
