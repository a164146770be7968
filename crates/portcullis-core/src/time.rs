//! Timestamps as they appear in JSON: RFC 3339, UTC, whole seconds.

use std::time::{Duration, UNIX_EPOCH};

/// The start (00:00 UTC) of the day holding `unix`, in Unix seconds: the key of
/// the per-day counters the dashboard reads.
pub fn day_start(unix: i64) -> i64 {
    unix - unix.rem_euclid(86_400)
}

/// Formats Unix seconds as RFC 3339 (`2026-11-23T19:51:13Z`).
pub fn rfc3339(unix: i64) -> String {
    let secs = u64::try_from(unix).unwrap_or(0);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_starts_at_midnight_utc() {
        assert_eq!(day_start(20 * 86_400), 20 * 86_400);
        assert_eq!(day_start(20 * 86_400 + 86_399), 20 * 86_400);
        assert_eq!(day_start(-1), -86_400, "before 1970 too");
    }
}
