//! Counters the fast path bumps without locks or allocation, and snapshots
//! another thread (the metrics exporter) reads.
//!
//! ```text
//!  worker 0 --> Counters::for_worker(0): frames, verdicts, sent, drops +
//!  worker 1 --> Counters::for_worker(1)                              +-> snapshot() + ... -> metrics
//!  worker w --> VmiCounters (one per VMI, in the Tables): shard w ---+   (tables.vmi_counters())
//! ```
//!
//! Verdicts and transmissions are counted apart: the pipeline decides
//! (`forwarded`, `flooded`, `passed`, a drop by reason), the I/O layer sends
//! and reports each frame that really left (`sent`, and the VMI's transmit
//! counters) or the reason it did not (a drop such as `tx_ring_full`). So
//! nothing is counted as sent that was not sent.
//!
//! Every counter is an `AtomicU64` read with `Relaxed` ordering: readers want
//! totals, not an order between counters. Locked read-modify-writes
//! (`fetch_add`) are what a counter costs most on the fast path (each drains
//! the store buffer: about a third of the time of a routed packet when four
//! of them were used), so each worker writes only its own cells, with a
//! relaxed load and store (plain moves on x86):
//!
//! - a worker owns a [`Counters`] made by [`Counters::for_worker`] (in an
//!   `Arc` the exporter also holds); the exporter sums their snapshots;
//! - [`VmiCounters`] live in the [`Tables`](crate::Tables), shared by the
//!   workers (a VMI's flows spread over queues), with one cache-line-sized
//!   shard per worker index below [`MAX_WORKERS`];
//!   [`Tables::recompile`](crate::Tables::recompile) carries them over by
//!   VMI key so that a configuration change does not reset them.
//!
//! A `Counters` made by [`Counters::new`] (or for a worker index at or above
//! [`MAX_WORKERS`]) writes with `fetch_add` instead: always exact, slower.
//! Two live `Counters` for the same worker index would lose counts (never
//! memory safety): give each worker its own index.

use core::ops::{Add, AddAssign};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::limit::TokenBucket;
use crate::verdict::{DropReason, Verdict};

/// How many workers get a single-writer shard of every VMI's counters.
pub const MAX_WORKERS: usize = 8;

/// How a [`Counters`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// The only writer of its cells and of VMI shard `n`.
    Worker(usize),
    /// One of possibly many writers: locked read-modify-writes.
    Shared,
}

impl Writer {
    /// Add `n` to a counter.
    #[inline(always)]
    fn add(self, counter: &AtomicU64, n: u64) {
        match self {
            Writer::Worker(_) => counter.store(
                counter.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            ),
            Writer::Shared => {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// One worker's frame and verdict counters: one writer (the worker), any
/// number of readers.
#[derive(Debug)]
pub struct Counters {
    writer: Writer,
    received: AtomicU64,
    forwarded: AtomicU64,
    flooded: AtomicU64,
    passed: AtomicU64,
    sent: AtomicU64,
    sent_bytes: AtomicU64,
    drops: [AtomicU64; DropReason::COUNT],
    /// The worker's budget of ICMP errors (see [`crate::limit`]).
    pub(crate) icmp_errors: TokenBucket,
}

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

impl Counters {
    /// Counters any number of threads may write (with `fetch_add`).
    pub fn new() -> Counters {
        Self::with_writer(Writer::Shared)
    }

    /// The counters of worker `index`, its only writer: cheaper bumps, and
    /// VMI counts go to shard `index` of each VMI (when below
    /// [`MAX_WORKERS`]; above, this is [`Counters::new`]).
    pub fn for_worker(index: usize) -> Counters {
        if index < MAX_WORKERS {
            Self::with_writer(Writer::Worker(index))
        } else {
            Self::new()
        }
    }

    fn with_writer(writer: Writer) -> Counters {
        Counters {
            writer,
            received: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            flooded: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            drops: core::array::from_fn(|_| AtomicU64::new(0)),
            icmp_errors: TokenBucket::default(),
        }
    }

    /// Count one frame and its verdict.
    #[inline]
    pub fn record(&self, verdict: &Verdict) {
        let w = self.writer;
        w.add(&self.received, 1);
        match verdict {
            Verdict::Transmit { .. } => w.add(&self.forwarded, 1),
            Verdict::Flood(_) => w.add(&self.flooded, 1),
            Verdict::Pass => w.add(&self.passed, 1),
            Verdict::Drop(reason) => w.add(&self.drops[reason.index()], 1),
        }
    }

    /// Count a frame that left by a port (`len` bytes).
    #[inline]
    pub fn sent(&self, len: usize) {
        self.writer.add(&self.sent, 1);
        self.writer.add(&self.sent_bytes, len as u64);
    }

    /// Count `n` frames dropped after (or before) the pipeline decided:
    /// by the I/O layer, for `reason`.
    #[inline]
    pub fn lost(&self, reason: DropReason, n: u64) {
        if n > 0 {
            self.writer.add(&self.drops[reason.index()], n);
        }
    }

    /// Count a frame received from a VMI.
    #[inline]
    pub(crate) fn vmi_rx(&self, vmi: &VmiCounters, bytes: usize) {
        let cells = vmi.cells(self.writer);
        self.writer.add(&cells.rx_packets, 1);
        self.writer.add(&cells.rx_bytes, bytes as u64);
    }

    /// Count a frame from a VMI that was dropped.
    #[inline]
    pub(crate) fn vmi_rx_dropped(&self, vmi: &VmiCounters) {
        self.writer.add(&vmi.cells(self.writer).rx_dropped, 1);
    }

    /// Count a frame sent to a VMI (once it was really sent).
    #[inline]
    pub(crate) fn vmi_tx(&self, vmi: &VmiCounters, bytes: usize) {
        let cells = vmi.cells(self.writer);
        self.writer.add(&cells.tx_packets, 1);
        self.writer.add(&cells.tx_bytes, bytes as u64);
    }

    /// How many frames were dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].load(Ordering::Relaxed)
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            received: self.received.load(Ordering::Relaxed),
            forwarded: self.forwarded.load(Ordering::Relaxed),
            flooded: self.flooded.load(Ordering::Relaxed),
            passed: self.passed.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            sent_bytes: self.sent_bytes.load(Ordering::Relaxed),
            drops: core::array::from_fn(|i| self.drops[i].load(Ordering::Relaxed)),
        }
    }
}

/// The values of a [`Counters`] at one moment; add snapshots of several
/// workers to get the node's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Frames processed.
    pub received: u64,
    /// Frames the pipeline decided to send to one egress.
    pub forwarded: u64,
    /// Frames the pipeline decided to flood (each copy sent counts in `sent`).
    pub flooded: u64,
    /// Frames passed to the host.
    pub passed: u64,
    /// Frames that left by a port (forwarded, replies, flood copies).
    pub sent: u64,
    /// Bytes of those frames.
    pub sent_bytes: u64,
    /// Frames dropped, indexed by [`DropReason::index`].
    pub drops: [u64; DropReason::COUNT],
}

impl Default for CounterSnapshot {
    fn default() -> Self {
        CounterSnapshot {
            received: 0,
            forwarded: 0,
            flooded: 0,
            passed: 0,
            sent: 0,
            sent_bytes: 0,
            drops: [0; DropReason::COUNT],
        }
    }
}

impl CounterSnapshot {
    /// Drops for one reason.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Every reason with its count, for a labelled metric.
    pub fn drops_by_reason(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.drops[r.index()]))
    }

    /// All drops.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }
}

impl AddAssign for CounterSnapshot {
    fn add_assign(&mut self, rhs: CounterSnapshot) {
        self.received += rhs.received;
        self.forwarded += rhs.forwarded;
        self.flooded += rhs.flooded;
        self.passed += rhs.passed;
        self.sent += rhs.sent;
        self.sent_bytes += rhs.sent_bytes;
        for (a, b) in self.drops.iter_mut().zip(rhs.drops) {
            *a += b;
        }
    }
}

impl Add for CounterSnapshot {
    type Output = CounterSnapshot;

    fn add(mut self, rhs: CounterSnapshot) -> CounterSnapshot {
        self += rhs;
        self
    }
}

/// One writer's cells of a VMI's counters, alone on its cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct VmiCells {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    rx_dropped: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
}

/// The traffic counters of one VMI: a shard per worker, and one shared by
/// the other writers.
#[derive(Debug, Default)]
pub struct VmiCounters {
    workers: [VmiCells; MAX_WORKERS],
    shared: VmiCells,
}

impl VmiCounters {
    #[inline(always)]
    fn cells(&self, writer: Writer) -> &VmiCells {
        match writer {
            Writer::Worker(i) => &self.workers[i],
            Writer::Shared => &self.shared,
        }
    }

    /// The sum of every shard.
    pub fn snapshot(&self) -> VmiCounterSnapshot {
        let mut total = VmiCounterSnapshot::default();
        for cells in self.workers.iter().chain([&self.shared]) {
            total.rx_packets += cells.rx_packets.load(Ordering::Relaxed);
            total.rx_bytes += cells.rx_bytes.load(Ordering::Relaxed);
            total.rx_dropped += cells.rx_dropped.load(Ordering::Relaxed);
            total.tx_packets += cells.tx_packets.load(Ordering::Relaxed);
            total.tx_bytes += cells.tx_bytes.load(Ordering::Relaxed);
        }
        total
    }
}

/// The values of a [`VmiCounters`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VmiCounterSnapshot {
    /// Frames received from the VMI (its remote instance).
    pub rx_packets: u64,
    /// Bytes received from the VMI.
    pub rx_bytes: u64,
    /// Frames received from the VMI and dropped.
    pub rx_dropped: u64,
    /// Frames sent to the VMI (forwarded, bridged or replies).
    pub tx_packets: u64,
    /// Bytes sent to the VMI.
    pub tx_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PortId;

    #[test]
    fn record_and_merge() {
        let a = Counters::new();
        a.record(&Verdict::Pass);
        a.record(&Verdict::Drop(DropReason::NoRoute));
        a.record(&Verdict::Drop(DropReason::NoRoute));
        let b = Counters::new();
        b.record(&Verdict::Transmit {
            port: PortId(1),
            offset: 0,
            len: 60,
            vmi: None,
        });
        b.sent(60);
        b.lost(DropReason::TxRingFull, 0);
        let total = a.snapshot() + b.snapshot();
        assert_eq!(total.received, 4);
        assert_eq!(total.forwarded, 1);
        assert_eq!((total.sent, total.sent_bytes), (1, 60));
        assert_eq!(total.passed, 1);
        assert_eq!(total.drops(DropReason::NoRoute), 2);
        assert_eq!(total.dropped(), 2);
        assert_eq!(a.drops(DropReason::NoRoute), 2);
        let labelled: Vec<_> = total.drops_by_reason().filter(|(_, n)| *n > 0).collect();
        assert_eq!(labelled, vec![(DropReason::NoRoute, 2)]);
    }

    #[test]
    fn vmi_shards_add_up() {
        let vmi = VmiCounters::default();
        let workers: Vec<Counters> = (0..MAX_WORKERS + 2).map(Counters::for_worker).collect();
        for (i, c) in workers.iter().enumerate() {
            c.vmi_rx(&vmi, 100 + i);
            c.vmi_tx(&vmi, 10);
            c.vmi_rx_dropped(&vmi);
        }
        Counters::new().vmi_rx(&vmi, 1);
        let n = (MAX_WORKERS + 2) as u64;
        let snapshot = vmi.snapshot();
        assert_eq!(snapshot.rx_packets, n + 1);
        assert_eq!(snapshot.rx_bytes, (0..n).map(|i| 100 + i).sum::<u64>() + 1);
        assert_eq!(snapshot.tx_packets, n);
        assert_eq!(snapshot.tx_bytes, 10 * n);
        assert_eq!(snapshot.rx_dropped, n);
    }

    #[test]
    fn shared_counters_are_exact_under_contention() {
        let counters = std::sync::Arc::new(Counters::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counters = counters.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        counters.record(&Verdict::Pass);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counters.snapshot().passed, 40_000);
    }

    #[test]
    fn readable_from_another_thread() {
        let counters = std::sync::Arc::new(Counters::for_worker(0));
        let worker = {
            let counters = counters.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    counters.record(&Verdict::Drop(DropReason::Multicast));
                }
            })
        };
        worker.join().unwrap();
        assert_eq!(counters.snapshot().drops(DropReason::Multicast), 1000);
    }
}
