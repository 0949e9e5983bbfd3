//! Time: the clock (seconds and nanoseconds since the epoch), UTC times in RFC 3339 (the
//! calendar is humantime's), and times and durations written for people. Imports nothing
//! from the crate.

use std::time::{Duration, SystemTime};

/// How long to wait between two polls of a resource that is getting ready: `default`, or
/// `SKIFF_POLL_INTERVAL_MS` (the tests shorten every wait with it).
pub fn poll_interval(default: Duration) -> Duration {
    std::env::var("SKIFF_POLL_INTERVAL_MS").ok().and_then(|v| v.parse().ok()).map_or(default, Duration::from_millis)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> i128 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0))
}

/// `secs` (Unix time) in RFC 3339 to the second, UTC: `2026-11-22T04:28:14Z`.
pub fn rfc3339(secs: i64) -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// The first second (Unix time) of the UTC month that contains `now`.
pub fn month_start(now: i64) -> i64 {
    let month = &rfc3339(now)[..7];
    humantime::parse_rfc3339(&format!("{month}-01T00:00:00Z"))
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// A time as `2026-11-22 08:30` (UTC).
pub fn utc(secs: i64) -> String {
    rfc3339(secs)[..16].replacen('T', " ", 1)
}

/// A duration for people: `45s`, `2m 5s`, `1h 0m`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_secs(45)), "45s");
        assert_eq!(duration(Duration::from_secs(125)), "2m 5s");
        assert_eq!(duration(Duration::from_hours(1)), "1h 0m");
    }

    #[test]
    fn months() {
        // 2026-11-22T04:28:14Z → 2026-11-01T00:00:00Z
        assert_eq!(month_start(1_795_321_694), 1_793_491_200);
        assert_eq!(month_start(1_793_491_200), 1_793_491_200);
        // 2024-02-29T12:00:00Z → 2024-02-01
        assert_eq!(month_start(1_709_208_000), 1_706_745_600);
        assert_eq!(utc(1_795_321_694), "2026-11-22 04:28");
        assert_eq!(rfc3339(1_795_321_694), "2026-11-22T04:28:14Z");
    }
}
