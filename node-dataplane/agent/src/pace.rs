//! When the compile loop may start its next build: a CPU budget with
//! credit, pure (times are given, never read).
//!
//! A build costs O(objects of the node) (about 250 ms at 16K remote
//! instances here). Builds back to back during a burst of API writes would
//! take a core from the API server and the forwarding thread, so over time
//! builds may use at most a `1 / spacing` share of a core: each build is
//! charged `spacing` times its duration against a credit that refills at
//! the speed of the clock, up to `burst`. An isolated change finds the
//! credit full and is built at once, whatever the node's size; only a
//! stream of changes is spaced. Two builds also start at least `debounce`
//! apart, so that a stream of small changes is built in batches.
//!
//! ```text
//!  credit ─┐ burst                  refills 1 s per s
//!          │\___ build (cost spacing × took)   ___/
//!          │    \________________________/
//!       0 ─┼──────────────────────────────────────── below 0: the next build waits
//! ```

use std::time::{Duration, Instant};

/// The share of a core builds may use over time is `1 / SPACING`.
pub const SPACING: u32 = 4;

/// How much build time (charged `SPACING` times) a quiet node saves up:
/// at 16K remote instances, about eight builds back to back.
pub const BURST: Duration = Duration::from_secs(8);

/// The build budget.
#[derive(Clone, Debug)]
pub struct Pacer {
    spacing: u32,
    burst: Duration,
    debounce: Duration,
    /// The credit at `at`, in nanoseconds (negative: owed).
    credit_ns: i128,
    at: Option<Instant>,
    last_start: Option<Instant>,
}

impl Pacer {
    /// A pacer with its credit full.
    pub fn new(spacing: u32, burst: Duration, debounce: Duration) -> Self {
        Self {
            spacing: spacing.max(1),
            burst,
            debounce,
            credit_ns: burst.as_nanos() as i128,
            at: None,
            last_start: None,
        }
    }

    /// The pacer of the compile loop (`SPACING`, `BURST`).
    pub fn for_debounce(debounce: Duration) -> Self {
        Self::new(SPACING, BURST, debounce)
    }

    fn refill(&mut self, now: Instant) {
        if let Some(at) = self.at
            && now > at
        {
            let cap = self.burst.as_nanos() as i128;
            self.credit_ns = (self.credit_ns + (now - at).as_nanos() as i128).min(cap);
        }
        self.at = Some(self.at.map_or(now, |at| at.max(now)));
    }

    /// The earliest time at or after `now` a build may start.
    pub fn next_start(&mut self, now: Instant) -> Instant {
        self.refill(now);
        let owed = if self.credit_ns < 0 {
            Duration::from_nanos((-self.credit_ns).min(u64::MAX as i128) as u64)
        } else {
            Duration::ZERO
        };
        let by_credit = now + owed;
        let by_debounce = self.last_start.map_or(now, |s| s + self.debounce);
        by_credit.max(by_debounce)
    }

    /// A build started at `started` took `took`: charge it.
    pub fn built(&mut self, started: Instant, took: Duration) {
        self.refill(started + took);
        self.last_start = Some(started);
        self.credit_ns -= took.as_nanos() as i128 * i128::from(self.spacing);
    }

    /// The credit left at `now` (negative: owed), for logs and tests.
    pub fn credit(&mut self, now: Instant) -> i128 {
        self.refill(now);
        self.credit_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn an_isolated_build_starts_at_once_whatever_it_costs() {
        let t0 = Instant::now();
        let mut p = Pacer::new(4, MS(8000), MS(20));
        assert_eq!(p.next_start(t0), t0);
        p.built(t0, MS(250));
        // Quiet for a while: the credit is back, the next change is built
        // as soon as it comes.
        let later = t0 + MS(10_000);
        assert_eq!(p.next_start(later), later);
    }

    #[test]
    fn a_stream_of_builds_uses_at_most_a_quarter_of_a_core() {
        let t0 = Instant::now();
        let mut p = Pacer::new(4, MS(8000), MS(20));
        let mut now = t0;
        let mut busy = Duration::ZERO;
        for _ in 0..200 {
            let start = p.next_start(now);
            p.built(start, MS(250));
            busy += MS(250);
            now = start + MS(250);
        }
        let share = busy.as_secs_f64() / (now - t0).as_secs_f64();
        // The burst lets the first builds go back to back; over 200 builds
        // the share tends to 1/4.
        assert!(share <= 0.25 + 8.0 / (now - t0).as_secs_f64(), "{share}");
        assert!(share > 0.2, "{share}");
    }

    #[test]
    fn the_burst_allows_a_few_builds_back_to_back_then_spaces_them() {
        let t0 = Instant::now();
        let mut p = Pacer::new(4, MS(2000), MS(0));
        let mut now = t0;
        let mut waited = Vec::new();
        for _ in 0..4 {
            let start = p.next_start(now);
            waited.push(start - now);
            p.built(start, MS(250));
            now = start + MS(250);
        }
        // 2 s of credit pays two builds charged 1 s each (plus what refills
        // meanwhile); then the loop owes and waits.
        assert_eq!(&waited[..2], &[MS(0), MS(0)]);
        assert!(waited[3] > MS(0), "{waited:?}");
    }

    #[test]
    fn small_builds_are_at_least_the_debounce_apart() {
        let t0 = Instant::now();
        let mut p = Pacer::new(4, MS(8000), MS(100));
        p.built(t0, MS(1));
        assert_eq!(p.next_start(t0 + MS(5)), t0 + MS(100));
        assert_eq!(p.next_start(t0 + MS(150)), t0 + MS(150));
    }

    #[test]
    fn the_credit_never_exceeds_the_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(4, MS(1000), MS(0));
        assert_eq!(p.credit(t0 + MS(60_000)), MS(1000).as_nanos() as i128);
        p.built(t0 + MS(60_000), MS(100));
        assert_eq!(p.credit(t0 + MS(60_100)), MS(600).as_nanos() as i128);
    }
}
