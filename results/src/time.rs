//! Start times as directory names and RFC 3339, computed by hand (UTC, millisecond precision).

use std::time::{SystemTime, UNIX_EPOCH};

/// `(directory name, RFC 3339)` of a start time: `("20261127T104343.123Z",
/// "2026-11-27T10:43:43.123Z")`. Times before 1970 are clamped to the epoch.
pub fn format_start_time(t: SystemTime) -> (String, String) {
    let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let millis = since_epoch.subsec_millis();
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    let (hour, minute, second) = (of_day / 3600, (of_day % 3600) / 60, of_day % 60);
    let (year, month, day) = civil_from_days(days);
    (
        format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}.{millis:03}Z"),
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z"),
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_776_223_123);
        assert_eq!(
            format_start_time(t),
            (
                "20261127T104343.123Z".to_owned(),
                "2026-11-27T10:43:43.123Z".to_owned()
            )
        );
        assert_eq!(format_start_time(UNIX_EPOCH).1, "1970-01-01T00:00:00.000Z");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_start_time(t).1, "2000-02-29T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(format_start_time(t).1, "2024-12-31T23:59:59.000Z");
    }
}
