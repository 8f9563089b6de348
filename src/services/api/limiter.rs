//! Rate limiting by token bucket, per key (a client address, an account).
//! Pure: the caller passes the time. One limiter lives on each shard, so a
//! client whose connections the kernel spreads over N shards gets up to N
//! times the rate; the bound that matters (a single connection hammering
//! one shard, or one account) holds exactly.

use std::collections::HashMap;
use std::hash::Hash;

/// Keys one limiter tracks; when full, buckets that have refilled are
/// forgotten first, then the limiter refuses new keys (fails closed) until
/// some refill.
pub const TRACKED_KEYS_MAX: usize = 65_536;

/// A rate: `per_s` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per `period_ms`.
    pub tokens: u32,
    pub period_ms: u64,
    pub burst: u32,
}

impl Rate {
    pub fn per_second(tokens: u32, burst: u32) -> Rate {
        Rate { tokens, period_ms: 1_000, burst }
    }

    pub fn per_minute(tokens: u32) -> Rate {
        Rate { tokens, period_ms: 60_000, burst: tokens }
    }

    /// Milliseconds to earn one token (at least 1).
    fn ms_per_token(self) -> u64 {
        (self.period_ms / u64::from(self.tokens.max(1))).max(1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens in thousandths, so slow rates refill smoothly.
    milli_tokens: u64,
    updated_ms: u64,
}

/// What a limiter said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Retry after this many whole seconds (at least 1).
    Limited {
        retry_after_s: u32,
    },
}

/// Token buckets by key.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: Rate,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    pub fn new(rate: Rate) -> RateLimiter<K> {
        assert!(rate.burst > 0 && rate.tokens > 0 && rate.period_ms > 0, "{rate:?}");
        RateLimiter { rate, buckets: HashMap::new() }
    }

    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// Takes one token for `key` at `now_ms`, if there is one.
    pub fn check(&mut self, key: K, now_ms: u64) -> Verdict {
        let full = u64::from(self.rate.burst) * 1_000;
        if !self.buckets.contains_key(&key) && self.buckets.len() >= TRACKED_KEYS_MAX {
            self.forget_refilled(now_ms);
            if self.buckets.len() >= TRACKED_KEYS_MAX {
                return Verdict::Limited { retry_after_s: 1 };
            }
        }
        let rate = self.rate;
        let bucket =
            self.buckets.entry(key).or_insert(Bucket { milli_tokens: full, updated_ms: now_ms });
        let elapsed_ms = now_ms.saturating_sub(bucket.updated_ms);
        let earned = elapsed_ms.saturating_mul(u64::from(rate.tokens)).saturating_mul(1_000)
            / rate.period_ms;
        bucket.milli_tokens = bucket.milli_tokens.saturating_add(earned).min(full);
        bucket.updated_ms = bucket.updated_ms.max(now_ms);
        if bucket.milli_tokens >= 1_000 {
            bucket.milli_tokens -= 1_000;
            return Verdict::Allowed;
        }
        let missing = 1_000 - bucket.milli_tokens;
        let wait_ms = missing * rate.ms_per_token() / 1_000;
        Verdict::Limited { retry_after_s: wait_ms.div_ceil(1_000).clamp(1, 3_600) as u32 }
    }

    /// Drops buckets that are full again: they hold no information.
    pub fn forget_refilled(&mut self, now_ms: u64) {
        let rate = self.rate;
        let full_after_ms = u64::from(rate.burst) * rate.ms_per_token();
        self.buckets.retain(|_, bucket| now_ms.saturating_sub(bucket.updated_ms) < full_after_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst is allowed, the next request is refused with an honest
    /// Retry-After, and tokens come back at the configured rate.
    #[test]
    fn bursts_then_refills_at_the_rate() {
        let mut limiter = RateLimiter::new(Rate::per_second(2, 4));
        for _ in 0..4 {
            assert_eq!(limiter.check(1u32, 0), Verdict::Allowed);
        }
        assert_eq!(limiter.check(1, 0), Verdict::Limited { retry_after_s: 1 });
        assert_eq!(limiter.check(2, 0), Verdict::Allowed, "keys are independent");
        assert_eq!(limiter.check(1, 499), Verdict::Limited { retry_after_s: 1 });
        assert_eq!(limiter.check(1, 500), Verdict::Allowed, "one token per 500 ms");
        assert_eq!(limiter.check(1, 500), Verdict::Limited { retry_after_s: 1 });
        // Long idle refills to the burst, never beyond.
        for _ in 0..4 {
            assert_eq!(limiter.check(1, 100_000), Verdict::Allowed);
        }
        assert!(matches!(limiter.check(1, 100_000), Verdict::Limited { .. }));
    }

    #[test]
    fn slow_rates_say_how_long_to_wait() {
        let mut limiter = RateLimiter::new(Rate::per_minute(3));
        for _ in 0..3 {
            assert_eq!(limiter.check(7u8, 0), Verdict::Allowed);
        }
        assert_eq!(limiter.check(7, 0), Verdict::Limited { retry_after_s: 20 });
        assert_eq!(limiter.check(7, 10_000), Verdict::Limited { retry_after_s: 10 });
        assert_eq!(limiter.check(7, 20_000), Verdict::Allowed);
    }

    /// The table is bounded: refilled buckets are forgotten to make room,
    /// and when none has refilled new keys are refused, not tracked.
    #[test]
    fn the_table_is_bounded() {
        let mut limiter = RateLimiter::new(Rate::per_second(1, 1));
        for key in 0..TRACKED_KEYS_MAX as u32 {
            assert_eq!(limiter.check(key, 0), Verdict::Allowed);
        }
        assert_eq!(limiter.check(u32::MAX, 0), Verdict::Limited { retry_after_s: 1 });
        assert_eq!(limiter.tracked(), TRACKED_KEYS_MAX);
        assert_eq!(limiter.check(u32::MAX, 1_000), Verdict::Allowed, "refilled ones forgotten");
        assert_eq!(limiter.tracked(), 1);
    }
}
