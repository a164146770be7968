//! Timestamps as they appear in JSON: RFC 3339, UTC, whole seconds.

use std::time::{Duration, UNIX_EPOCH};

/// Formats Unix seconds as RFC 3339 (`2026-11-23T19:51:13Z`).
pub fn rfc3339(unix: i64) -> String {
    let secs = u64::try_from(unix).unwrap_or(0);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}
