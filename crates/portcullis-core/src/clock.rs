//! Time comes from a [`Clock`] passed in, so expiry rules are testable without sleeping.
//!
//! In debug builds only, [`OffsetFileClock`] lets the integration tests move a real
//! server's time forward from outside its process (the one exception to "no I/O" in
//! this crate, and never compiled into a release build).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time, in whole seconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since 1970-01-01T00:00:00Z.
    fn now(&self) -> i64;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to (for tests).
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock stopped at `now`.
    pub fn new(now: i64) -> Self {
        Self(AtomicI64::new(now))
    }
    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// **Test-only, and compiled into debug builds only**: the system clock moved by a
/// whole number of seconds read from a file, so an integration test can let a day
/// pass for a real `portcullis` process (and its CLI commands) without waiting a day.
///
/// The file holds one decimal integer, the offset in seconds (negative moves time
/// back); a missing, empty or garbled file is an offset of 0. It is read again on
/// every [`Clock::now`], so a change is seen by the very next call; writers replace
/// it whole (write another file, then rename it over this one) so that no reader
/// sees it half-written. A release binary has no such type: its time cannot be
/// steered this way.
#[cfg(debug_assertions)]
#[derive(Debug, Clone)]
pub struct OffsetFileClock {
    path: std::path::PathBuf,
}

#[cfg(debug_assertions)]
impl OffsetFileClock {
    /// The variable naming the offset file, which the binary honours in debug builds.
    pub const ENV: &str = "PORTCULLIS_TEST_CLOCK_FILE";

    /// A clock reading its offset from `path`.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The offset in seconds the file holds now (0 when it cannot be read or parsed).
    pub fn offset(&self) -> i64 {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}

#[cfg(debug_assertions)]
impl Clock for OffsetFileClock {
    fn now(&self) -> i64 {
        SystemClock.now().saturating_add(self.offset())
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{Clock, OffsetFileClock, SystemClock};

    #[test]
    fn the_offset_file_moves_the_clock_and_anything_unreadable_is_no_offset() {
        let dir = std::env::temp_dir().join(format!("portcullis-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("offset");
        let clock = OffsetFileClock::new(&path);
        let _ = std::fs::remove_file(&path);
        assert_eq!(clock.offset(), 0, "missing file");
        for (text, offset) in [
            ("86401\n", 86401),
            (" -60 ", -60),
            ("", 0),
            ("1.5", 0),
            ("a day", 0),
        ] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(clock.offset(), offset, "{text:?}");
        }
        std::fs::write(&path, "3600").unwrap();
        let (before, now, after) = (SystemClock.now(), clock.now(), SystemClock.now());
        assert!(before + 3600 <= now && now <= after + 3600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
