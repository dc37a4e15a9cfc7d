//! Record times: RFC 3339 in UTC with milliseconds, `2025-06-01T12:00:00.123Z`.
//!
//! The gateway passes its own (injected) clock's times in every record; the log needs a clock
//! only for the records it writes itself (`start`, `log_cut`), taken from
//! [`Options::clock`](crate::Options::clock).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the log takes the time of the records it writes itself.
pub type Clock = Arc<dyn Fn() -> String + Send + Sync>;

/// The system clock, formatted by [`rfc3339_millis`].
pub fn system_clock() -> Clock {
    Arc::new(|| rfc3339_millis(SystemTime::now()))
}

/// `time` as RFC 3339 UTC with milliseconds. Times before 1970 print as the epoch.
pub fn rfc3339_millis(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let millis = u64::from(since.subsec_millis());
    if year > 9999 {
        return format!(
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z"
        );
    }
    // Every call's records carry a time: written digit by digit, not through `format!`.
    let mut out = *b"0000-00-00T00:00:00.000Z";
    for (at, width, n) in [
        (0, 4, year),
        (5, 2, month),
        (8, 2, day),
        (11, 2, hour),
        (14, 2, minute),
        (17, 2, second),
        (20, 3, millis),
    ] {
        let mut n = n;
        for place in out[at..at + width].iter_mut().rev() {
            *place = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    // ASCII digits and punctuation only.
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

/// The proleptic Gregorian date `days` after 1970-01-01, by counting 400-year eras of
/// 146 097 days from 0000-03-01 (so the leap day ends each era's year).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146_096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the March-based year
    let mp = (5 * doy + 2) / 153; // month, March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats_known_instants() {
        let at =
            |s: u64, ms: u64| rfc3339_millis(UNIX_EPOCH + Duration::from_millis(s * 1000 + ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_748_779_200, 123), "2025-06-01T12:00:00.123Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
        assert_eq!(at(253_402_300_799, 999), "9999-12-31T23:59:59.999Z");
        assert_eq!(at(253_402_300_800, 0), "10000-01-01T00:00:00.000Z");
    }
}
