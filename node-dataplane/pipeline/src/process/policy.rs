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
//!
//! The stateful part ([`Pipeline::decide_flow`]: a zone, a generation and
//! an evaluation of first packets) is shared with network policies
//! (`network_policy.rs`).

use core::net::IpAddr;

use trunkline_wire::ethernet::EtherType;

use super::Pipeline;
use super::snat::{Kind, Transport, quoted_header, transport};
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
        let remote_of = |t: &Transport| match direction {
            Direction::Ingress => t.src,
            Direction::Egress => t.dst,
        };
        let zone = FlowZone {
            zone: policy.zone,
            generation: policy.generation,
        };
        let decided = self.decide_flow(zone, buf, &t, |t| {
            let flow = FlowTuple {
                proto: t.proto,
                remote: remote_of(t),
                dport: t.dport,
            };
            match policy.policy.evaluate_at(direction, &flow) {
                Some(position) => RuleVerdict::Allow(position),
                None => RuleVerdict::Deny(()),
            }
        })?;
        match decided {
            Decided::Allowed(None) => Ok(()),
            Decided::Allowed(Some(position)) => {
                if O::SIDE_EFFECTS {
                    policy.counters.allowed(direction, position);
                }
                Ok(())
            }
            Decided::Denied(_) => {
                self.count_denied(policy, direction);
                Err(denied(direction))
            }
        }
    }

    /// The stateful part shared by security groups and network policies:
    /// the packet `t` in flow-table zone `zone` passes when its flow was
    /// allowed under the zone's generation (either direction), is denied
    /// when its flow was denied, and is decided by `evaluate` otherwise
    /// (`Some(position)`: the rule at that position allowed it), the
    /// verdict remembered as forward and reverse entries. An ICMP error
    /// passes when the packet it quotes belongs to an allowed flow.
    /// `Allowed(Some(_))` / `Denied(Some(_))`: decided now by that rule.
    #[inline]
    pub(super) fn decide_flow<A: Copy, D: Copy>(
        &self,
        zone: FlowZone,
        buf: &[u8],
        t: &Transport,
        evaluate: impl FnOnce(&Transport) -> RuleVerdict<A, D>,
    ) -> Result<Decided<A, D>, DropReason> {
        let flows = self.flows.ok_or(DropReason::NoFlowTable)?;
        let mut table = flows.borrow_mut();
        if t.kind == Kind::IcmpError {
            let allowed = quoted_header(buf, t).is_some_and(|(_, l4, proto, src, dst)| {
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
                let key = FlowKey::new(zone.zone, proto, src, dst, sport, dport);
                table.lookup(&key).is_some_and(|id| {
                    self.entry_valid(&table, id, zone.generation)
                        && table.value(id).action() == Some(FlowAction::Forward)
                })
            });
            return Ok(if allowed {
                Decided::Allowed(None)
            } else {
                Decided::Denied(None)
            });
        }
        let key = FlowKey::new(zone.zone, t.proto, t.src, t.dst, t.sport, t.dport);
        let bytes = t.end - t.l3;
        if let Some(id) = table.lookup(&key) {
            let valid = self.entry_valid(&table, id, zone.generation);
            match table.value(id).action() {
                Some(FlowAction::Forward) if valid => {
                    table.touch(id, self.now, bytes, t.tcp_flags);
                    return Ok(Decided::Allowed(None));
                }
                Some(FlowAction::Deny) if valid && !id.is_reverse() => {
                    table.touch(id, self.now, bytes, t.tcp_flags);
                    return Ok(Decided::Denied(None));
                }
                // Stale, idle, or the reverse of a denied flow (this
                // direction was never decided): decided anew.
                _ => table.remove(id),
            }
        }
        let verdict = evaluate(t);
        let action = match verdict {
            RuleVerdict::Allow(_) => FlowAction::Forward,
            RuleVerdict::Deny(_) => FlowAction::Deny,
        };
        let inserted = self.new_policy_flow(&mut table, zone, action, &key, &t_reverse(t));
        if let Ok(Some(id)) = inserted {
            table.touch(id, self.now, bytes, t.tcp_flags);
        }
        match (verdict, inserted) {
            (RuleVerdict::Allow(_), Err(reason)) => Err(reason),
            (RuleVerdict::Allow(r), Ok(_)) => Ok(Decided::Allowed(Some(r))),
            // Denied, whether remembered or not (a full table changes
            // nothing for a packet refused anyway).
            (RuleVerdict::Deny(r), _) => Ok(Decided::Denied(Some(r))),
        }
    }

    /// Whether entry `id` was decided under the zone's current rules
    /// (`generation`) and is not idle past its timeout.
    fn entry_valid(&self, table: &FlowTable, id: crate::flow::EntryId, generation: u32) -> bool {
        table.value(id).generation == generation && !table.expired(id, self.now)
    }

    /// Both entries of a flow decided `action`; a full table refuses it
    /// (`flow_table_full`, counted by the table too). `None`: a packet
    /// whose reverse is itself (same address and port at both ends),
    /// decided by the rules alone.
    fn new_policy_flow(
        &self,
        table: &mut FlowTable,
        zone: FlowZone,
        action: FlowAction,
        key: &FlowKey,
        reverse: &(IpAddr, IpAddr, u16, u16),
    ) -> Result<Option<crate::flow::EntryId>, DropReason> {
        let (src, dst, sport, dport) = *reverse;
        let back = FlowKey::new(zone.zone, key.proto, src, dst, sport, dport);
        let unspecified = if key.family == 4 {
            IpAddr::from([0u8; 4])
        } else {
            IpAddr::from([0u8; 16])
        };
        let value = FlowValue::new(action, zone.zone, unspecified, 0, zone.generation, self.now);
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

/// A flow-table zone and the generation its entries must carry to be
/// trusted.
#[derive(Clone, Copy, Debug)]
pub(super) struct FlowZone {
    /// `FlowKey::vrf` of the zone's entries.
    pub(super) zone: u32,
    /// The generation of the rules now in force.
    pub(super) generation: u32,
}

/// A verdict of the rules on a flow's first packet, with what decided it.
#[derive(Clone, Copy, Debug)]
pub(super) enum RuleVerdict<A, D> {
    /// Allowed by `A`.
    Allow(A),
    /// Denied by `D` (a deny rule, or the default).
    Deny(D),
}

/// What [`Pipeline::decide_flow`] decided: `Some(r)` when the rules
/// decided now (a first packet), `None` when the flow table did.
#[derive(Clone, Copy, Debug)]
pub(super) enum Decided<A, D> {
    /// The packet passes.
    Allowed(Option<A>),
    /// The packet is dropped.
    Denied(Option<D>),
}

/// The addresses and ports of the packets coming back, as `transport`
/// keys them (an echo request's identifier comes back on the destination
/// side of the reply).
fn t_reverse(t: &Transport) -> (IpAddr, IpAddr, u16, u16) {
    (t.dst, t.src, t.dport, t.sport)
}
