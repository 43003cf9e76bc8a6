//! Token buckets that keep one caller, one tenant or one address from taking the server
//! for itself. The bucket arithmetic is pure (time comes in as an `Instant`), so tests
//! drive it without sleeping.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A refill rate and a burst size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    pub const fn new(per_second: f64, burst: f64) -> Self {
        Self { per_second, burst }
    }

    /// `n` per minute, at most `burst` at once.
    pub const fn per_minute(n: f64, burst: f64) -> Self {
        Self {
            per_second: n / 60.0,
            burst,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Self {
        Self {
            tokens: rate.burst,
            updated: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.updated = now;
    }

    /// Takes `cost` tokens, or says how long until they would be there. A cost above the
    /// burst is charged as the burst, so one large request is possible but drains it.
    fn take(&mut self, rate: Rate, now: Instant, cost: f64) -> Result<(), Duration> {
        self.refill(rate, now);
        let cost = cost.min(rate.burst);
        if self.tokens >= cost {
            self.tokens -= cost;
            Ok(())
        } else {
            let missing = cost - self.tokens;
            Err(Duration::from_secs_f64(missing / rate.per_second.max(1e-9)))
        }
    }
}

/// Buckets by key, created full on first use.
#[derive(Debug)]
pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

/// Above this many keys, buckets that have refilled (and so equal a new one) are dropped.
const MAX_KEYS: usize = 50_000;

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Charges `cost` to `key`'s bucket: `Err(retry_after)` when it is empty.
    pub fn check(&self, key: &K, cost: f64, now: Instant) -> Result<(), Duration> {
        let rate = self.rate;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                b.refill(rate, now);
                b.tokens < rate.burst
            });
        }
        buckets
            .entry(key.clone())
            .or_insert_with(|| Bucket::full(rate, now))
            .take(rate, now, cost)
    }
}

/// The limits the server applies. Defaults suit a production tenant; the load benchmark
/// raises them (`SCRM_RATE_*`) so it measures the server, not the limiter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Requests per authenticated caller (tenant and subject).
    pub per_caller: Rate,
    /// Complexity points per tenant, charged after validation.
    pub tenant_points: Rate,
    /// Requests without valid credentials, per client address: slows token guessing.
    pub anonymous: Rate,
    /// Heavy mutations (rebuilds, handovers) per tenant.
    pub heavy: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_caller: Rate::new(50.0, 100.0),
            tenant_points: Rate::new(200_000.0, 400_000.0),
            anonymous: Rate::new(20.0, 40.0),
            heavy: Rate::per_minute(6.0, 3.0),
        }
    }
}

/// The live buckets for every kind of limit.
#[derive(Debug)]
pub struct RateLimiter {
    pub callers: Limiter<(String, String)>,
    pub tenants: Limiter<String>,
    pub anonymous: Limiter<std::net::IpAddr>,
    pub heavy: Limiter<String>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            callers: Limiter::new(limits.per_caller),
            tenants: Limiter::new(limits.tenant_points),
            anonymous: Limiter::new(limits.anonymous),
            heavy: Limiter::new(limits.heavy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_full_bucket_when_the_burst_is_spent_then_the_next_request_waits() {
        let limiter = Limiter::new(Rate::new(10.0, 3.0));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(&"a", 1.0, t0), Ok(()));
        }
        let wait = limiter.check(&"a", 1.0, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
    }

    #[test]
    fn given_an_empty_bucket_when_time_passes_then_it_refills_at_the_rate_up_to_the_burst() {
        let limiter = Limiter::new(Rate::new(10.0, 3.0));
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check(&"a", 1.0, t0).unwrap();
        }
        assert_eq!(
            limiter.check(&"a", 1.0, t0 + Duration::from_millis(100)),
            Ok(())
        );
        assert!(limiter
            .check(&"a", 1.0, t0 + Duration::from_millis(100))
            .is_err());
        // A long pause refills to the burst, not beyond it.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(limiter.check(&"a", 1.0, later), Ok(()));
        }
        assert!(limiter.check(&"a", 1.0, later).is_err());
    }

    #[test]
    fn given_two_keys_when_one_is_empty_then_the_other_is_unaffected() {
        let limiter = Limiter::new(Rate::new(1.0, 1.0));
        let t0 = Instant::now();
        limiter.check(&"a", 1.0, t0).unwrap();
        assert!(limiter.check(&"a", 1.0, t0).is_err());
        assert_eq!(limiter.check(&"b", 1.0, t0), Ok(()));
    }

    #[test]
    fn given_a_cost_above_the_burst_when_charged_then_it_empties_the_bucket_once() {
        let limiter = Limiter::new(Rate::new(100.0, 500.0));
        let t0 = Instant::now();
        assert_eq!(limiter.check(&"t", 2_000.0, t0), Ok(()));
        assert!(limiter.check(&"t", 1.0, t0).is_err());
    }

    #[test]
    fn given_many_keys_when_the_map_is_full_then_refilled_buckets_are_dropped() {
        let limiter = Limiter::new(Rate::new(1_000.0, 1.0));
        let t0 = Instant::now();
        for i in 0..MAX_KEYS {
            limiter.check(&i, 1.0, t0).unwrap();
        }
        // A second later every bucket is full again, so they can all go.
        limiter
            .check(&usize::MAX, 1.0, t0 + Duration::from_secs(1))
            .unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }
}
