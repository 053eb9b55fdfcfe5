//! Token buckets: the budget of ICMP errors a worker may originate, so
//! that a flood of expiring or oversized packets cannot turn the gateway
//! into an ICMP generator (RFC 1812 4.3.2.8, RFC 4443 2.4 (f)), and each
//! VMI's budget of frames the gateway answers (`PuntLimit`), so that one
//! instance flooding ARP cannot take the others' share. Like the
//! counters, written by the workers with relaxed atomics; the time comes from the
//! caller once per batch ([`Pipeline::at`](crate::Pipeline::at)), so the
//! pipeline itself never reads a clock.
//!
//! ```text
//!  tokens += elapsed_ms * RATE / 1000   (at most BURST)
//!  an error: tokens > 0 ? tokens -= 1, send : drop (icmp_rate_limited)
//! ```

use core::sync::atomic::{AtomicU64, Ordering};

/// Errors a worker may send per second, on average.
pub const ICMP_ERRORS_PER_SECOND: u64 = 1000;

/// Errors a worker may send at once after a quiet period.
pub const ICMP_ERROR_BURST: u64 = 50;

/// A token bucket. Relaxed loads and stores: one writer (its worker); a
/// bucket shared by several writers only loses precision, never memory
/// safety.
#[derive(Debug)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    tokens: AtomicU64,
    /// The time (ms, the caller's clock) up to which tokens were added.
    last_ms: AtomicU64,
}

impl Default for TokenBucket {
    fn default() -> Self {
        Self::new(ICMP_ERRORS_PER_SECOND, ICMP_ERROR_BURST)
    }
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `rate` per second.
    pub fn new(rate: u64, burst: u64) -> TokenBucket {
        TokenBucket {
            rate: rate.max(1),
            burst,
            tokens: AtomicU64::new(burst),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Its rate (per second) and burst.
    pub fn limits(&self) -> (u64, u64) {
        (self.rate, self.burst)
    }

    /// Take a token at time `now_ms`: whether one was there.
    #[inline]
    pub fn take(&self, now_ms: u64) -> bool {
        let last = self.last_ms.load(Ordering::Relaxed);
        let mut tokens = self.tokens.load(Ordering::Relaxed);
        if now_ms > last {
            let added = (now_ms - last).saturating_mul(self.rate) / 1000;
            if added > 0 {
                tokens = tokens.saturating_add(added).min(self.burst);
                // Only the time that yielded whole tokens is used up.
                let used = added.saturating_mul(1000).div_ceil(self.rate);
                self.last_ms
                    .store(last.saturating_add(used).min(now_ms), Ordering::Relaxed);
            }
        } else if now_ms < last {
            // A clock that went back (another caller's): start again from it.
            self.last_ms.store(now_ms, Ordering::Relaxed);
        }
        let allowed = tokens > 0;
        self.tokens
            .store(tokens - u64::from(allowed), Ordering::Relaxed);
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let bucket = TokenBucket::new(1000, 5);
        let sent = (0..20).filter(|_| bucket.take(0)).count();
        assert_eq!(sent, 5, "the burst");
        assert!(!bucket.take(0));
        assert!(bucket.take(1), "one token per millisecond");
        assert!(!bucket.take(1));
        let sent = (0..20).filter(|_| bucket.take(1000)).count();
        assert_eq!(sent, 5, "never more than the burst");
    }

    #[test]
    fn slow_rates_keep_their_fractions() {
        let bucket = TokenBucket::new(10, 1);
        assert!(bucket.take(0));
        assert!(!bucket.take(50), "half a token");
        assert!(bucket.take(100), "the second half came");
        assert!(!bucket.take(150));
        assert!(bucket.take(200));
    }
}
