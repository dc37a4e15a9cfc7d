//! Token-bucket rate limits: per client address (at the edge, before any parsing), per principal
//! (user + agent) and per principal and tool. A refused call learns when to retry.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{RateLimit, RateLimits};

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Buckets of one kind of limit, by key.
pub struct Buckets<K> {
    limit: RateLimit,
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(limit: RateLimit) -> Self {
        Buckets {
            limit,
            map: Mutex::default(),
        }
    }

    /// Takes one token for `key` at `now`; when there is none, how long until there is.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let per_second = self.limit.rate / self.limit.per.as_secs_f64();
        let burst = self.limit.burst;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = map.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }

    /// Forgets buckets that have refilled completely (they hold no information).
    pub fn forget_full(&self, now: Instant) {
        let per_second = self.limit.rate / self.limit.per.as_secs_f64();
        let burst = self.limit.burst;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * per_second < burst
        });
    }
}

/// Every configured limit.
pub struct Limiter {
    pub per_address: Option<Buckets<std::net::IpAddr>>,
    pub per_principal: Option<Buckets<(String, String)>>,
    pub per_tool: HashMap<String, Buckets<(String, String)>>,
}

impl Limiter {
    pub fn new(config: &RateLimits) -> Limiter {
        Limiter {
            per_address: config.per_address.map(Buckets::new),
            per_principal: config.per_principal.map(Buckets::new),
            per_tool: config
                .tools
                .iter()
                .map(|(t, l)| (t.clone(), Buckets::new(*l)))
                .collect(),
        }
    }

    /// The call limits: the principal's, then the tool's for this principal.
    pub fn check_call(
        &self,
        user: &str,
        agent: &str,
        tool: Option<&str>,
        now: Instant,
    ) -> Result<(), Duration> {
        let who = (user.to_string(), agent.to_string());
        if let Some(b) = &self.per_principal {
            b.take(&who, now)?;
        }
        if let Some(b) = tool.and_then(|t| self.per_tool.get(t)) {
            b.take(&who, now)?;
        }
        Ok(())
    }

    pub fn forget_full(&self, now: Instant) {
        if let Some(b) = &self.per_address {
            b.forget_full(now);
        }
        if let Some(b) = &self.per_principal {
            b.forget_full(now);
        }
        for b in self.per_tool.values() {
            b.forget_full(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(rate: f64, per_secs: u64, burst: f64) -> RateLimit {
        RateLimit {
            rate,
            per: Duration::from_secs(per_secs),
            burst,
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let b = Buckets::new(limit(2.0, 1, 3.0));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.take(&"k", t0).is_ok());
        }
        let wait = b.take(&"k", t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(490) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(b.take(&"k", t0 + Duration::from_millis(500)).is_ok());
        assert!(b.take(&"k", t0 + Duration::from_millis(500)).is_err());
        assert!(b.take(&"other", t0).is_ok(), "keys are independent");
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let b = Buckets::new(limit(1.0, 1, 1.0));
        let t0 = Instant::now();
        b.take(&"k", t0).unwrap();
        b.forget_full(t0);
        assert_eq!(b.map.lock().unwrap().len(), 1);
        b.forget_full(t0 + Duration::from_secs(2));
        assert_eq!(b.map.lock().unwrap().len(), 0);
    }
}
