//! Throttling of failed client authentication (RFC 9700 §4.16 asks servers to stop
//! online guessing). Counted per source address and per client id in fixed
//! one-minute windows; over the limit, token requests from that source or for that
//! client answer 429 with `Retry-After` until the window ends, without even
//! checking the secret. The per-client limit is higher than the per-address one so
//! that one noisy address is cut off long before a client is locked out for everyone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Length of a counting window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Failures allowed per source address per window.
pub const MAX_PER_ADDRESS: u32 = 20;
/// Failures allowed per client id per window.
pub const MAX_PER_CLIENT: u32 = 100;
const MAX_KEYS: usize = 200_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

/// The failure counters.
#[derive(Debug)]
pub struct AuthLimiter {
    by_address: Mutex<HashMap<IpAddr, Window>>,
    by_client: Mutex<HashMap<String, Window>>,
    max_per_address: u32,
    max_per_key: u32,
}

impl Default for AuthLimiter {
    /// The client authentication limits.
    fn default() -> Self {
        Self::new(MAX_PER_ADDRESS, MAX_PER_CLIENT)
    }
}

fn blocked<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, Window>>,
    key: &K,
    max: u32,
) -> Option<u64> {
    let map = map.lock().ok()?;
    let w = map.get(key)?;
    let elapsed = w.start.elapsed();
    (w.failures >= max && elapsed < WINDOW).then(|| (WINDOW - elapsed).as_secs().max(1))
}

fn count<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, Window>>, key: K) -> u32 {
    let Ok(mut map) = map.lock() else { return 0 };
    if map.len() >= MAX_KEYS {
        map.retain(|_, w| w.start.elapsed() < WINDOW);
        if map.len() >= MAX_KEYS {
            return 0;
        }
    }
    let w = map.entry(key).or_insert(Window {
        start: Instant::now(),
        failures: 0,
    });
    if w.start.elapsed() >= WINDOW {
        *w = Window {
            start: Instant::now(),
            failures: 0,
        };
    }
    w.failures = w.failures.saturating_add(1);
    w.failures
}

impl AuthLimiter {
    /// Limits per address and per key (client id, or admin user name) per window.
    pub fn new(max_per_address: u32, max_per_key: u32) -> Self {
        Self {
            by_address: Mutex::default(),
            by_client: Mutex::default(),
            max_per_address,
            max_per_key,
        }
    }

    /// `Some(seconds)` when requests from `addr` or for `client_id` are blocked.
    pub fn check(&self, addr: IpAddr, client_id: Option<&str>) -> Option<u64> {
        let a = blocked(&self.by_address, &addr, self.max_per_address);
        let c = client_id.and_then(|c| blocked(&self.by_client, &c.to_owned(), self.max_per_key));
        a.max(c)
    }

    /// Records a failed authentication; returns whether this one crossed a limit
    /// (the start of a burst, worth an audit event).
    pub fn record_failure(&self, addr: IpAddr, client_id: Option<&str>) -> bool {
        let a = count(&self.by_address, addr) == self.max_per_address;
        let c = client_id.is_some_and(|c| count(&self.by_client, c.to_owned()) == self.max_per_key);
        a || c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn an_address_is_blocked_after_its_limit_and_others_are_not() {
        let l = AuthLimiter::default();
        let a = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        for _ in 0..MAX_PER_ADDRESS - 1 {
            l.record_failure(a, Some("pc_x"));
        }
        assert_eq!(l.check(a, Some("pc_x")), None);
        assert!(l.record_failure(a, Some("pc_x")));
        assert!(l.check(a, None).is_some_and(|s| (1..=60).contains(&s)));
        assert_eq!(l.check(b, Some("pc_x")), None);
    }
}
