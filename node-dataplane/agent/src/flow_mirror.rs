//! The flow table's mirror in the XDP tier: the forwarding thread, after
//! each round of batches, writes what the pipeline changed in its flow
//! table into the kernel's flow map (`tier_flows`), so that the tier's
//! flow stage translates established SNAT flows and passes policed VMIs'
//! allowed flows itself; and it lets the idle sweep see the packets the
//! kernel decided.
//!
//! ```text
//!  forwarding thread, every loop:
//!    batches ──> Pipeline (first packets, TCP state moves, stale flows) ──> FlowTable + journal
//!    follow:  FlowTable::drain_mirror ──> Put: kernel entry (kernel::flows::entry) ──> tier_flows
//!                                         Remove: delete;  Reset: clear the map, put every entry
//!    expire:  FlowTable::expire_with ──> a flow quiet in userspace for half its timeout: its
//!                                        entries' last-seen read from tier_flows (the kernel's
//!                                        packets count)
//! ```
//!
//! The writes of one loop go to the kernel in batches, in the journal's
//! order: consecutive puts in one `BPF_MAP_UPDATE_BATCH`, consecutive
//! removals in one `BPF_MAP_DELETE_BATCH` (at most [`BATCH`] elements a
//! call), so that a loop's new flows, both directions of each, cost one
//! `bpf(2)` call together, and a key removed and written again (or the
//! reverse) ends as the journal says. A flow's forward entry is written
//! before its reverse one, in the same call: a frame finds neither, the
//! forward one only (its reply, not sent yet, finds the other), or both,
//! each whole (the kernel copies an element in before it links it), and
//! never an entry that translates to what the table no longer holds. One
//! read per flow the sweep would otherwise expire: no syscall per packet. The
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
use trunkline_pipeline::kernel::flows::{self, FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, FLOWS_MAP};
use trunkline_xdp::TierMaps;

/// The most elements one batch call carries (the buffers stay small even
/// when the whole table is written again).
pub const BATCH: usize = 1024;

/// Keeps `tier_flows` equal to the forwarding thread's flow table.
pub struct FlowMirror {
    maps: Arc<TierMaps>,
    /// Map writes that failed (their flows stay userspace's).
    failures: u64,
    warned: bool,
    /// The fabric neighbour cache's change count the entries were written
    /// with.
    neighbour_changes: Option<u64>,
    /// The batch being gathered: keys and entries back to back.
    keys: Vec<u8>,
    entries: Vec<u8>,
    /// `bpf(2)` calls made for writes and removals so far.
    calls: u64,
}

/// What the batch being gathered does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Put,
    Delete,
}

/// One loop's writes, gathered into runs of one kind, each run sent in
/// calls of at most [`BATCH`] elements.
struct Writes<'a> {
    maps: &'a TierMaps,
    run: Option<Run>,
    keys: &'a mut Vec<u8>,
    entries: &'a mut Vec<u8>,
    calls: &'a mut u64,
    errors: Vec<(&'static str, String)>,
}

impl Writes<'_> {
    fn push(&mut self, run: Run, key: &[u8; FLOW_KEY_SIZE], entry: Option<&[u8]>) {
        if self.run != Some(run) || self.keys.len() == BATCH * FLOW_KEY_SIZE {
            self.flush();
            self.run = Some(run);
        }
        self.keys.extend_from_slice(key);
        if let Some(entry) = entry {
            self.entries.extend_from_slice(entry);
        }
    }

    fn flush(&mut self) {
        let done = match self.run.take() {
            None => return,
            Some(_) if self.keys.is_empty() => Ok(Vec::new()),
            Some(Run::Put) => {
                *self.calls += 1;
                self.maps.update_batch(FLOWS_MAP, self.keys, self.entries)
            }
            Some(Run::Delete) => {
                *self.calls += 1;
                self.maps.delete_batch(FLOWS_MAP, self.keys)
            }
        };
        match done {
            Ok(failed) => self
                .errors
                .extend(failed.into_iter().map(|(_, e)| ("write", e.to_string()))),
            Err(e) => self.errors.push(("batch", e.to_string())),
        }
        self.keys.clear();
        self.entries.clear();
    }
}

impl FlowMirror {
    /// A mirror writing into the tier's `maps`.
    pub fn new(maps: Arc<TierMaps>) -> FlowMirror {
        FlowMirror {
            maps,
            failures: 0,
            warned: false,
            neighbour_changes: None,
            keys: Vec::with_capacity(BATCH * FLOW_KEY_SIZE),
            entries: Vec::with_capacity(BATCH * FLOW_ENTRY_SIZE),
            calls: 0,
        }
    }

    /// How many `bpf(2)` calls its writes and removals took so far.
    pub fn calls(&self) -> u64 {
        self.calls
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
        let mut writes = Writes {
            maps: &maps,
            run: None,
            keys: &mut self.keys,
            entries: &mut self.entries,
            calls: &mut self.calls,
            errors: Vec::new(),
        };
        table.drain_mirror(|event| match event {
            MirrorEvent::Reset => {
                writes.flush();
                *writes.calls += 1;
                if let Err(e) = maps.clear(FLOWS_MAP) {
                    writes.errors.push(("clear", e.to_string()));
                }
            }
            // SNAT flows and allowed policy flows (security groups'
            // zones); a denied flow is not the kernel's (never written:
            // its removal deletes a key that is not there, which costs
            // nothing but the element in the batch).
            MirrorEvent::Put(_, key, value, idle) => {
                if let Some(entry) = flows::entry(tables, slots, key, value, idle) {
                    writes.push(Run::Put, &flows::key_bytes(key), Some(&entry));
                }
            }
            MirrorEvent::Remove(key) => {
                writes.push(Run::Delete, &flows::key_bytes(&key), None);
            }
        });
        writes.flush();
        for (what, e) in std::mem::take(&mut writes.errors) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> [u8; FLOW_KEY_SIZE] {
        let mut k = [0u8; FLOW_KEY_SIZE];
        k[0] = i;
        k[4] = 4;
        k
    }

    /// Runs of one kind go in one call each, in the order pushed: a key
    /// written, removed and written again ends written with its last
    /// entry; one removed after its write ends absent. Needs root (a
    /// loaded tier; CI runs as root).
    #[test]
    fn writes_go_in_one_call_per_run_in_the_journal_order() {
        let tier =
            trunkline_xdp::Tier::load_with_flows(false, 4096).unwrap_or_else(|e| panic!("{e}"));
        let maps = tier.maps();
        let (mut keys, mut entries, mut calls) = (Vec::new(), Vec::new(), 0);
        let mut writes = Writes {
            maps: &maps,
            run: None,
            keys: &mut keys,
            entries: &mut entries,
            calls: &mut calls,
            errors: Vec::new(),
        };
        let entry = |v: u8| [v; FLOW_ENTRY_SIZE];
        // Ten new flows, both directions: one call.
        for i in 0..20 {
            writes.push(Run::Put, &key(i), Some(&entry(i)));
        }
        writes.flush();
        assert_eq!(*writes.calls, 1);
        // Removed, written again, removed (absent keys among them), written.
        writes.push(Run::Delete, &key(1), None);
        writes.push(Run::Delete, &key(200), None);
        writes.push(Run::Delete, &key(2), None);
        writes.push(Run::Put, &key(1), Some(&entry(101)));
        writes.push(Run::Delete, &key(3), None);
        writes.push(Run::Put, &key(3), Some(&entry(103)));
        writes.push(Run::Put, &key(4), Some(&entry(104)));
        writes.push(Run::Delete, &key(4), None);
        writes.flush();
        assert_eq!(*writes.calls, 6);
        assert!(writes.errors.is_empty(), "{:?}", writes.errors);
        // More than one call's worth.
        for i in 0..(BATCH + 10) {
            let mut k = key(0);
            k[8..16].copy_from_slice(&(i as u64 + 1).to_ne_bytes());
            writes.push(Run::Put, &k, Some(&entry(7)));
        }
        writes.flush();
        assert_eq!(*writes.calls, 8);
        let mut got = [0u8; FLOW_ENTRY_SIZE];
        let mut at = |i: u8| {
            maps.lookup(FLOWS_MAP, &key(i), &mut got)
                .unwrap()
                .then_some(got[0])
        };
        assert_eq!(at(0), Some(0));
        assert_eq!(at(1), Some(101));
        assert_eq!(at(2), None);
        assert_eq!(at(3), Some(103));
        assert_eq!(at(4), None);
        assert_eq!(at(5), Some(5));
        assert_eq!(at(19), Some(19));
    }
}
