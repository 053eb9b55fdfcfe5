//! The flow table's mirror in the XDP tier: the forwarding thread, after
//! each round of batches, writes what the pipeline changed in its flow
//! table into the kernel's flow map (`tier_flows`), so that the tier's
//! flow stage translates established SNAT flows itself; and it lets the
//! idle sweep see the packets the kernel translated.
//!
//! ```text
//!  forwarding thread, every loop:
//!    batches ──> Pipeline (first packets, TCP state moves, stale flows) ──> FlowTable + journal
//!    follow:  FlowTable::drain_mirror ──> Put: kernel entry (kernel::flows::entry) ──> tier_flows
//!                                         Remove: delete;  Reset: clear the map, put every entry
//!    expire:  FlowTable::expire_with ──> a flow idle in userspace: its entries' last-seen
//!                                        read from tier_flows first (the kernel's packets count)
//! ```
//!
//! One write per new flow direction (first packets only), one read per
//! flow the sweep would otherwise expire: no syscall per packet. The
//! forwarding thread's flow clock is CLOCK_MONOTONIC, the kernel's
//! (`bpf_ktime_get_ns`), so last-seen times compare. A write that fails
//! leaves that flow's frames to userspace (counted, logged once). The
//! fabric next hop's MAC a SNAT entry carries is copied from the
//! neighbour cache: when a resolved MAC changes or is forgotten, every
//! entry is written again.

use std::sync::Arc;

use trunkline_pipeline::Tables;
use trunkline_pipeline::flow::{FlowTable, MirrorEvent};
use trunkline_pipeline::kernel::Slots;
use trunkline_pipeline::kernel::flows::{self, FLOW_ENTRY_SIZE, FLOWS_MAP};
use trunkline_xdp::TierMaps;

/// Keeps `tier_flows` equal to the forwarding thread's flow table.
pub struct FlowMirror {
    maps: Arc<TierMaps>,
    /// Map writes that failed (their flows stay userspace's).
    failures: u64,
    warned: bool,
    /// The fabric neighbour cache's change count the entries were written
    /// with.
    neighbour_changes: Option<u64>,
}

impl FlowMirror {
    /// A mirror writing into the tier's `maps`.
    pub fn new(maps: Arc<TierMaps>) -> FlowMirror {
        FlowMirror {
            maps,
            failures: 0,
            warned: false,
            neighbour_changes: None,
        }
    }

    /// How many map writes failed so far.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    fn failed(&mut self, what: &str, e: impl std::fmt::Display) {
        self.failures += 1;
        if !self.warned {
            self.warned = true;
            tracing::warn!(error = %e, what, "XDP tier: a flow could not be mirrored; its frames stay in userspace");
        }
    }

    /// Writes the table's changes since the last call: `tables` and
    /// `slots` are those of the image the kernel decides with.
    pub fn follow(&mut self, table: &mut FlowTable, tables: &Tables, slots: &Slots) {
        // A fabric next hop's MAC changed (or went): the entries carry the
        // old one; all are written again (rare: a router's MAC moving).
        let changes = tables.fabric_neighbours().changes();
        if self.neighbour_changes.is_some_and(|seen| seen != changes) {
            tracing::info!(
                "XDP tier: a fabric next hop's MAC changed; the flow map is written again"
            );
            table.resync_mirror();
        }
        self.neighbour_changes = Some(changes);
        let maps = self.maps.clone();
        let mut errors: Vec<(&'static str, String)> = Vec::new();
        table.drain_mirror(|event| match event {
            MirrorEvent::Reset => {
                if let Err(e) = maps.clear(FLOWS_MAP) {
                    errors.push(("clear", e.to_string()));
                }
            }
            // Not the kernel's (IPv6, security groups' zones): nothing is
            // written, so nothing is ever stale (their keys never change
            // kind: zones and VRF ids are disjoint, a key's family is
            // fixed).
            MirrorEvent::Put(_, key, value, idle) => {
                if let Some(entry) = flows::entry(tables, slots, key, value, idle)
                    && let Err(e) = maps.update(FLOWS_MAP, &flows::key_bytes(key), &entry)
                {
                    errors.push(("put", e.to_string()));
                }
            }
            MirrorEvent::Remove(key) if flows::mirrored(&key) => {
                if let Err(e) = maps.delete(FLOWS_MAP, &flows::key_bytes(&key)) {
                    errors.push(("delete", e.to_string()));
                }
            }
            MirrorEvent::Remove(_) => {}
        });
        for (what, e) in errors {
            self.failed(what, e);
        }
    }

    /// The idle sweep, with the kernel's last-seen times.
    pub fn expire(&mut self, table: &mut FlowTable, now: u64, budget: usize) -> usize {
        let maps = &self.maps;
        let mut entry = [0u8; FLOW_ENTRY_SIZE];
        table.expire_with(now, budget, |key| {
            match maps.lookup(FLOWS_MAP, &flows::key_bytes(key), &mut entry) {
                Ok(true) => flows::last_seen(&entry),
                _ => None,
            }
        })
    }
}
