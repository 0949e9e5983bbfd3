//! Time without a calendar crate: the clock (seconds and nanoseconds since the epoch), the
//! UTC calendar (Howard Hinnant's day algorithms), and times and durations written for
//! people. Imports nothing from the crate.

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

/// The first second (Unix time) of the UTC month that contains `now`.
pub fn month_start(now: i64) -> i64 {
    let days = now.div_euclid(86_400);
    let (year, month, _) = civil_from_days(days);
    days_from_civil(year, month, 1) * 86_400
}

// Howard Hinnant's algorithms (public domain): days since 1970-01-01 ↔ proleptic Gregorian.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A time as `2026-11-22 08:30` (UTC).
pub fn utc(secs: i64) -> String {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", of_day / 3600, (of_day / 60) % 60)
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
    }
}
