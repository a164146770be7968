//! Throttling of failed authentication (RFC 9700 §4.16 asks servers to stop online
//! guessing) that never becomes a lockout: a correct credential from a source that
//! has not itself been failing is never refused.
//!
//! Sources are counted by [`SourceKey`] (an IPv4 address or an IPv6 /64), taken
//! from the peer or, behind a `--trusted-proxy`, from the forwarded chain.
//!
//! - **Client secrets** ([`ClientThrottle`]) carry 256 random bits and cost one
//!   HMAC to check, so guessing them is hopeless and checking them is cheap: the
//!   secret is always checked first, a correct one always passes, and only a
//!   failing source is slowed (its failures past the limit answer 429). Nothing is
//!   counted per client id: the id is public, and counting it would hand anyone a
//!   way to lock that client out.
//! - **Passwords** ([`LoginThrottle`]) are guessable and cost an Argon2id hash each.
//!   Failures count per (user, source) and per source; either over its limit
//!   refuses that source (429). A flood against one user from many sources is met
//!   with a growing delay on that user's sign-ins, never a hard block for a source
//!   that has not failed, and with an audit event.

use portcullis_core::SourceKey;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Length of a counting window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Failed client authentications a source may make per window before its further
/// failures answer 429.
pub const CLIENT_FAILURES_PER_SOURCE: u32 = 20;
/// Failed sign-ins per (user, source) per window.
pub const LOGIN_FAILURES_PER_USER_AND_SOURCE: u32 = 10;
/// Failed sign-ins per source per window, whatever the user names. Higher than the
/// per-user limit, so one source guessing one user is cut off first, and a source
/// that mistypes two or three user names is not.
pub const LOGIN_FAILURES_PER_SOURCE: u32 = 30;
/// Failed sign-ins for one user, from all sources, per window, from which that
/// user's sign-ins are delayed: above the per-(user, source) limit, so it takes
/// more than one source.
pub const LOGIN_FLOOD_START: u32 = 20;
/// The first delay of a flooded user's sign-ins; it doubles with every further
/// [`LOGIN_FLOOD_START`] failures.
pub const LOGIN_FLOOD_DELAY: Duration = Duration::from_millis(100);
/// The longest a sign-in from a source that has not been failing waits.
pub const LOGIN_FLOOD_MAX_DELAY: Duration = Duration::from_secs(2);
/// The longest a failing source's sign-in is queued before it is refused (429).
pub const LOGIN_FLOOD_MAX_QUEUE: Duration = Duration::from_secs(10);
/// Bound on each map; windows that have ended are dropped first.
const MAX_KEYS: usize = 200_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

/// Failures per key in fixed windows.
#[derive(Debug)]
struct Counter<K> {
    map: Mutex<HashMap<K, Window>>,
}

impl<K> Default for Counter<K> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq> Counter<K> {
    /// Failures in the current window, and the seconds until it ends.
    fn get(&self, key: &K, now: Instant) -> (u32, u64) {
        let Ok(map) = self.map.lock() else {
            return (0, 0);
        };
        match map.get(key) {
            Some(w) if now.duration_since(w.start) < WINDOW => (
                w.failures,
                (WINDOW - now.duration_since(w.start)).as_secs().max(1),
            ),
            _ => (0, 0),
        }
    }

    /// Counts one failure; returns the count in the current window (0 when the map
    /// is full of live windows and this key could not be counted).
    fn add(&self, key: K, now: Instant) -> u32 {
        let Ok(mut map) = self.map.lock() else {
            return 0;
        };
        if map.len() >= MAX_KEYS && !map.contains_key(&key) {
            map.retain(|_, w| now.duration_since(w.start) < WINDOW);
            if map.len() >= MAX_KEYS {
                return 0;
            }
        }
        let w = map.entry(key).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now.duration_since(w.start) >= WINDOW {
            *w = Window {
                start: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
        w.failures
    }
}

/// What a failed client authentication leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFailure {
    /// Answer 401 `invalid_client`.
    Refused {
        /// This failure reached the source's limit: the start of a burst, worth an
        /// audit event.
        burst: bool,
    },
    /// The source is over its limit: answer 429 with this `Retry-After`.
    Throttled {
        /// Seconds until the window ends.
        retry_after: u64,
    },
}

/// Failed client authentication, per source.
#[derive(Debug, Default)]
pub struct ClientThrottle {
    by_source: Counter<SourceKey>,
}

impl ClientThrottle {
    /// Counts a failure from `source`.
    pub fn failed(&self, source: IpAddr) -> ClientFailure {
        self.failed_at(SourceKey::of(source), Instant::now())
    }

    fn failed_at(&self, key: SourceKey, now: Instant) -> ClientFailure {
        let n = self.by_source.add(key, now);
        if n > CLIENT_FAILURES_PER_SOURCE {
            let (_, retry_after) = self.by_source.get(&key, now);
            ClientFailure::Throttled { retry_after }
        } else {
            ClientFailure::Refused {
                burst: n == CLIENT_FAILURES_PER_SOURCE,
            }
        }
    }

    /// Whether `source` is over its limit (it may still present a correct secret).
    pub fn is_throttled(&self, source: IpAddr) -> bool {
        self.by_source.get(&SourceKey::of(source), Instant::now()).0 >= CLIENT_FAILURES_PER_SOURCE
    }
}

/// Whether a sign-in may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the password after waiting this long.
    Proceed {
        /// Zero unless the user is under a flood of failures.
        delay: Duration,
    },
    /// Refuse with 429 and this `Retry-After`: the source has been failing.
    Refuse {
        /// Seconds.
        retry_after: u64,
    },
}

/// What a failed sign-in set off, for the audit log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginFailure {
    /// The source reached one of its limits with this failure.
    pub source_burst: bool,
    /// The user's failures from all sources reached [`LOGIN_FLOOD_START`]: its
    /// sign-ins are delayed from now on, for the rest of the window.
    pub flood_started: bool,
}

/// Failed sign-ins with passwords (admins, and end users later).
#[derive(Debug, Default)]
pub struct LoginThrottle {
    by_pair: Counter<(String, SourceKey)>,
    by_source: Counter<SourceKey>,
    by_user: Counter<String>,
    /// When each flooded user's next queued sign-in from a failing source may run.
    next_slot: Mutex<HashMap<String, Instant>>,
}

impl LoginThrottle {
    /// Whether a sign-in for `user` from `source` may proceed, and after what delay.
    pub fn admit(&self, user: &str, source: IpAddr) -> Admission {
        self.admit_at(user, SourceKey::of(source), Instant::now())
    }

    fn admit_at(&self, user: &str, key: SourceKey, now: Instant) -> Admission {
        let (pair, pair_wait) = self.by_pair.get(&(user.to_owned(), key), now);
        let (source, source_wait) = self.by_source.get(&key, now);
        let over_pair = pair >= LOGIN_FAILURES_PER_USER_AND_SOURCE;
        let over_source = source >= LOGIN_FAILURES_PER_SOURCE;
        if over_pair || over_source {
            // Until every window this source is over has ended.
            let retry_after = if over_pair { pair_wait } else { 0 }.max(if over_source {
                source_wait
            } else {
                0
            });
            return Admission::Refuse { retry_after };
        }
        let (user_failures, _) = self.by_user.get(&user.to_owned(), now);
        if user_failures < LOGIN_FLOOD_START {
            return Admission::Proceed {
                delay: Duration::ZERO,
            };
        }
        let doublings = (user_failures / LOGIN_FLOOD_START - 1).min(16);
        let step = LOGIN_FLOOD_DELAY
            .saturating_mul(1 << doublings)
            .min(LOGIN_FLOOD_MAX_DELAY);
        if source == 0 {
            // A source that has not been failing waits, but is never refused.
            return Admission::Proceed { delay: step };
        }
        // A failing source queues behind the other failing sources for this user,
        // one sign-in per step, so many sources guess no faster than one.
        let Ok(mut slots) = self.next_slot.lock() else {
            return Admission::Proceed { delay: step };
        };
        if slots.len() >= MAX_KEYS {
            slots.retain(|_, at| *at > now);
        }
        let slot = slots
            .get(user)
            .copied()
            .filter(|at| *at > now)
            .unwrap_or(now);
        let wait = slot.duration_since(now);
        if wait > LOGIN_FLOOD_MAX_QUEUE {
            return Admission::Refuse {
                retry_after: wait.as_secs().max(1),
            };
        }
        slots.insert(user.to_owned(), slot + step);
        Admission::Proceed { delay: wait }
    }

    /// Counts a failed sign-in. `known_user` is false for a name that has no
    /// account: it counts against the source only, so made-up names cannot fill
    /// the per-user maps.
    pub fn failed(&self, user: &str, source: IpAddr, known_user: bool) -> LoginFailure {
        self.failed_at(user, SourceKey::of(source), known_user, Instant::now())
    }

    fn failed_at(&self, user: &str, key: SourceKey, known: bool, now: Instant) -> LoginFailure {
        let source = self.by_source.add(key, now);
        let mut out = LoginFailure {
            source_burst: source == LOGIN_FAILURES_PER_SOURCE,
            flood_started: false,
        };
        if known {
            let pair = self.by_pair.add((user.to_owned(), key), now);
            out.source_burst |= pair == LOGIN_FAILURES_PER_USER_AND_SOURCE;
            out.flood_started = self.by_user.add(user.to_owned(), now) == LOGIN_FLOOD_START;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn key(s: &str) -> SourceKey {
        SourceKey::of(s.parse().unwrap())
    }

    #[test]
    fn a_failing_client_source_is_throttled_and_others_are_not() {
        let t = ClientThrottle::default();
        let now = Instant::now();
        let (a, b) = (key("203.0.113.1"), key("203.0.113.2"));
        for i in 1..CLIENT_FAILURES_PER_SOURCE {
            assert_eq!(
                t.failed_at(a, now),
                ClientFailure::Refused { burst: false },
                "{i}"
            );
        }
        assert_eq!(t.failed_at(a, now), ClientFailure::Refused { burst: true });
        assert!(matches!(
            t.failed_at(a, now),
            ClientFailure::Throttled {
                retry_after: 1..=60
            }
        ));
        assert_eq!(t.failed_at(b, now), ClientFailure::Refused { burst: false });
        // A new window forgives.
        assert_eq!(
            t.failed_at(a, now + WINDOW),
            ClientFailure::Refused { burst: false }
        );
    }

    #[test]
    fn one_ipv6_64_is_one_client_source() {
        let t = ClientThrottle::default();
        let now = Instant::now();
        for i in 0..CLIENT_FAILURES_PER_SOURCE {
            t.failed_at(key(&format!("2001:db8:0:1::{i:x}")), now);
        }
        assert!(matches!(
            t.failed_at(key("2001:db8:0:1:ffff::9"), now),
            ClientFailure::Throttled { .. }
        ));
        assert_eq!(
            t.failed_at(key("2001:db8:0:2::1"), now),
            ClientFailure::Refused { burst: false }
        );
    }

    #[test]
    fn a_source_guessing_one_user_is_refused_before_the_user_is_touched_elsewhere() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let (bad, good) = (key("198.51.100.1"), key("198.51.100.2"));
        for _ in 0..LOGIN_FAILURES_PER_USER_AND_SOURCE - 1 {
            assert_eq!(
                t.failed_at("admin", bad, true, now),
                LoginFailure::default()
            );
        }
        assert!(t.failed_at("admin", bad, true, now).source_burst);
        assert!(matches!(
            t.admit_at("admin", bad, now),
            Admission::Refuse {
                retry_after: 1..=60
            }
        ));
        // The same user from elsewhere: straight in (one source cannot set off the
        // flood delay).
        assert_eq!(
            t.admit_at("admin", good, now),
            Admission::Proceed {
                delay: Duration::ZERO
            }
        );
        // Another user from the failing source is still allowed until its source limit.
        assert_eq!(
            t.admit_at("alice", bad, now),
            Admission::Proceed {
                delay: Duration::ZERO
            }
        );
    }

    #[test]
    fn the_source_limit_is_above_the_per_user_one() {
        const { assert!(LOGIN_FAILURES_PER_SOURCE > LOGIN_FAILURES_PER_USER_AND_SOURCE) };
        let t = LoginThrottle::default();
        let now = Instant::now();
        let src = key("198.51.100.1");
        for i in 0..LOGIN_FAILURES_PER_SOURCE {
            t.failed_at(&format!("nobody-{i}"), src, false, now);
        }
        assert!(matches!(
            t.admit_at("admin", src, now),
            Admission::Refuse { .. }
        ));
    }

    #[test]
    fn a_flood_from_many_sources_delays_but_never_refuses_a_clean_source() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let mut flood_started = 0;
        for i in 0..200u32 {
            let src = key(&format!("10.0.{}.{}", i / 250, i % 250));
            flood_started += u32::from(t.failed_at("admin", src, true, now).flood_started);
        }
        assert_eq!(flood_started, 1, "one audit event per window");
        let clean = key("192.0.2.77");
        for _ in 0..100 {
            match t.admit_at("admin", clean, now) {
                Admission::Proceed { delay } => assert!(delay <= LOGIN_FLOOD_MAX_DELAY),
                other => panic!("a clean source was refused: {other:?}"),
            }
        }
        // Failing sources queue one step apart, and are refused once the queue is long.
        let failing = key("10.0.0.1");
        let mut waits = Vec::new();
        let refused = loop {
            match t.admit_at("admin", failing, now) {
                Admission::Proceed { delay } => waits.push(delay),
                Admission::Refuse { retry_after } => break retry_after,
            }
        };
        assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
        assert!(refused >= LOGIN_FLOOD_MAX_QUEUE.as_secs());
        // Another user is untouched.
        assert_eq!(
            t.admit_at("alice", clean, now),
            Admission::Proceed {
                delay: Duration::ZERO
            }
        );
    }

    #[test]
    fn the_delay_grows_with_the_flood() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        let clean = key("192.0.2.77");
        let mut delays = Vec::new();
        for i in 0..400u32 {
            t.failed_at(
                "admin",
                key(&format!("10.1.{}.{}", i / 200, i % 200)),
                true,
                now,
            );
            if let Admission::Proceed { delay } = t.admit_at("admin", clean, now) {
                delays.push(delay);
            }
        }
        let start = LOGIN_FLOOD_START as usize;
        assert_eq!(delays[start - 2], Duration::ZERO);
        assert_eq!(delays[start - 1], LOGIN_FLOOD_DELAY);
        assert_eq!(delays[2 * start - 1], LOGIN_FLOOD_DELAY * 2);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*delays.last().unwrap(), LOGIN_FLOOD_MAX_DELAY);
    }

    #[test]
    fn unknown_user_names_count_against_the_source_only() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..50 {
            t.failed_at(&format!("x{i}"), key(&format!("10.2.0.{i}")), false, now);
        }
        assert!(t.by_user.map.lock().unwrap().is_empty());
        assert!(t.by_pair.map.lock().unwrap().is_empty());
    }
}
