//! Security groups, stateful (issue 18): a policed VMI's flows are decided
//! at their first packet and remembered in the node's flow table (the one
//! source NAT uses, `flow.rs`), in the VMI's own zone.
//!
//! ```text
//!  from a policed VMI (after the source check)        to a policed VMI of this node
//!     egress, key {zone(VMI), 5-tuple}                   ingress, key {zone(VMI), 5-tuple}
//!            |                                                 |
//!            +------------------+------------------------------+
//!                               v
//!   entry, same generation, not idle:  forward entry: its action (allow / deny)
//!                                      reverse entry of an allowed flow: allowed
//!                                        (the return of a flow the VMI opened,
//!                                         or its answer to one it accepted)
//!                                      reverse entry of a denied flow: decided anew
//!   none, stale or idle:  the rules of the direction (policy.rs) -> allow | deny,
//!                         forward + reverse entries (a full table: flow_table_full)
//!   an ICMP error: allowed when the packet it quotes belongs to an allowed flow
//! ```
//!
//! A flow between two policed VMIs of this node is decided twice: the
//! sender's egress, the receiver's ingress, each in its zone. Denied
//! packets are dropped as `policy_egress_denied` / `policy_ingress_denied`
//! and counted per VMI under the default deny; allowed flows are counted
//! per rule (`PolicyCounters`). What is not policed: ARP, neighbour
//! discovery, DHCP (answered before), broadcast and multicast frames, and
//! flooded unknown unicast. A policed VMI's IPv4 fragments have no ports
//! to decide on: they are dropped (`policy_unsupported`).

use core::net::IpAddr;

use trunkline_wire::ethernet::EtherType;

use super::Pipeline;
use super::snat::{Kind, quoted_header, transport};
use crate::flow::{FlowAction, FlowKey, FlowTable, FlowValue};
use crate::observe::Observer;
use crate::policy::{Direction, FlowTuple, VmiPolicy};
use crate::tables::Vmi;
use crate::verdict::DropReason;

/// The drop of a packet no rule of `direction` allows.
const fn denied(direction: Direction) -> DropReason {
    match direction {
        Direction::Ingress => DropReason::PolicyIngressDenied,
        Direction::Egress => DropReason::PolicyEgressDenied,
    }
}

/// ICMPv6 neighbour discovery and router messages (133 to 137): never
/// policed, like ARP.
fn neighbour_discovery(buf: &[u8], l4: usize, proto: u8) -> bool {
    proto == 58 && buf.get(l4).is_some_and(|t| (133..=137).contains(t))
}

impl<'a, O: Observer> Pipeline<'a, O> {
    /// Decide the IP packet at `buf[l3..end]` (of EtherType `ethertype`)
    /// crossing `vmi` in `direction`: `Ok` when it may pass (always, for a
    /// VMI that is not policed).
    #[inline]
    pub(super) fn police(
        &self,
        vmi: &Vmi,
        direction: Direction,
        ethertype: EtherType,
        buf: &[u8],
        l3: usize,
        end: usize,
    ) -> Result<(), DropReason> {
        let Some(policy) = vmi.policy.as_deref() else {
            return Ok(());
        };
        if !matches!(ethertype, EtherType::Ipv4 | EtherType::Ipv6) {
            return Ok(());
        }
        let t = transport(buf, l3, end).map_err(|e| match e {
            DropReason::SnatUnsupported => DropReason::PolicyUnsupported,
            other => other,
        })?;
        if neighbour_discovery(buf, t.l4, t.proto) {
            return Ok(());
        }
        let flows = self.flows.ok_or(DropReason::NoFlowTable)?;
        let mut table = flows.borrow_mut();
        if t.kind == Kind::IcmpError {
            let allowed = quoted_header(buf, &t).is_some_and(|(_, l4, proto, src, dst)| {
                let word = |i: usize| {
                    buf.get(l4 + i..l4 + i + 2)
                        .map_or(0, |w| u16::from_be_bytes([w[0], w[1]]))
                };
                let (sport, dport) = match proto {
                    6 | 17 => (word(0), word(2)),
                    // An echo request's identifier is the source side, a
                    // reply's the destination side (as `transport` keys them).
                    1 | 58 => match buf.get(l4) {
                        Some(8 | 128) => (word(4), 0),
                        Some(0 | 129) => (0, word(4)),
                        _ => (0, 0),
                    },
                    _ => (0, 0),
                };
                let key = FlowKey::new(policy.zone, proto, src, dst, sport, dport);
                table.lookup(&key).is_some_and(|id| {
                    self.policy_entry_valid(&table, id, policy)
                        && table.value(id).action() == Some(FlowAction::Forward)
                })
            });
            return if allowed {
                Ok(())
            } else {
                self.count_denied(policy, direction);
                Err(denied(direction))
            };
        }
        let key = FlowKey::new(policy.zone, t.proto, t.src, t.dst, t.sport, t.dport);
        let bytes = t.end - t.l3;
        if let Some(id) = table.lookup(&key) {
            let valid = self.policy_entry_valid(&table, id, policy);
            match table.value(id).action() {
                Some(FlowAction::Forward) if valid => {
                    table.touch(id, self.now, bytes, t.tcp_flags);
                    return Ok(());
                }
                Some(FlowAction::Deny) if valid && !id.is_reverse() => {
                    table.touch(id, self.now, bytes, t.tcp_flags);
                    self.count_denied(policy, direction);
                    return Err(denied(direction));
                }
                // Stale, idle, or the reverse of a denied flow (this
                // direction was never decided): decided anew.
                _ => table.remove(id),
            }
        }
        let remote = match direction {
            Direction::Ingress => t.src,
            Direction::Egress => t.dst,
        };
        let flow = FlowTuple {
            proto: t.proto,
            remote,
            dport: t.dport,
        };
        let verdict = policy.policy.evaluate_at(direction, &flow);
        let action = match verdict {
            Some(_) => FlowAction::Forward,
            None => FlowAction::Deny,
        };
        let inserted = self.new_policy_flow(&mut table, policy, action, &key, &t_reverse(&t));
        if let Ok(Some(id)) = inserted {
            table.touch(id, self.now, bytes, t.tcp_flags);
        }
        match (verdict, inserted) {
            (Some(_), Err(reason)) => Err(reason),
            (Some(position), Ok(_)) => {
                if O::SIDE_EFFECTS {
                    policy.counters.allowed(direction, position);
                }
                Ok(())
            }
            // Denied, whether remembered or not (a full table changes
            // nothing for a packet refused anyway).
            (None, _) => {
                self.count_denied(policy, direction);
                Err(denied(direction))
            }
        }
    }

    /// Whether entry `id` was decided under the VMI's current rules and is
    /// not idle past its timeout.
    fn policy_entry_valid(
        &self,
        table: &FlowTable,
        id: crate::flow::EntryId,
        p: &VmiPolicy,
    ) -> bool {
        table.value(id).generation == p.generation && !table.expired(id, self.now)
    }

    /// Both entries of a flow decided `action`; a full table refuses it
    /// (`flow_table_full`, counted by the table too). `None`: a packet
    /// whose reverse is itself (same address and port at both ends),
    /// decided by the rules alone.
    fn new_policy_flow(
        &self,
        table: &mut FlowTable,
        policy: &VmiPolicy,
        action: FlowAction,
        key: &FlowKey,
        reverse: &(IpAddr, IpAddr, u16, u16),
    ) -> Result<Option<crate::flow::EntryId>, DropReason> {
        let (src, dst, sport, dport) = *reverse;
        let back = FlowKey::new(policy.zone, key.proto, src, dst, sport, dport);
        let unspecified = if key.family == 4 {
            IpAddr::from([0u8; 4])
        } else {
            IpAddr::from([0u8; 16])
        };
        let value = FlowValue::new(
            action,
            policy.zone,
            unspecified,
            0,
            policy.generation,
            self.now,
        );
        match table.insert((*key, value), (back, value)) {
            Ok(id) => Ok(Some(id)),
            Err(crate::flow::FlowError::Full) => Err(DropReason::FlowTableFull),
            Err(crate::flow::FlowError::Exists) => Ok(None),
        }
    }

    fn count_denied(&self, policy: &VmiPolicy, direction: Direction) {
        if O::SIDE_EFFECTS {
            policy.counters.denied(direction);
        }
    }
}

/// The addresses and ports of the packets coming back, as `transport`
/// keys them (an echo request's identifier comes back on the destination
/// side of the reply).
fn t_reverse(t: &super::snat::Transport) -> (IpAddr, IpAddr, u16, u16) {
    (t.dst, t.src, t.dport, t.sport)
}
