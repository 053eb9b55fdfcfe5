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
//! Only TCP, UDP and ICMP/ICMPv6 have something to key a flow on beyond
//! the protocol; other protocols are keyed by addresses and protocol. IPv4
//! fragments cannot be decided (no ports): `policy_unsupported`.

use trunkline_wire::ethernet::EtherType;

use super::Pipeline;
use super::policy::{Decided, FlowZone, RuleVerdict};
use super::snat::transport;
use crate::network_policy::LinkVerdict;
use crate::observe::Observer;
use crate::tables::LinkId;
use crate::verdict::DropReason;

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
}
