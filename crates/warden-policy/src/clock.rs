//! The request's instant as the context's `hour`, `minute`, `weekday` and `now`. Pure: the time
//! comes in the request, so tests and `warden policy test` can decide "as of" any moment.

use std::time::{SystemTime, UNIX_EPOCH};

/// The fields of the context that come from the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Moment {
    /// Local hour, 0–23.
    pub hour: i64,
    /// Local minute, 0–59.
    pub minute: i64,
    /// Local weekday: "mon" … "sun".
    pub weekday: &'static str,
    /// Milliseconds since the Unix epoch (negative before it).
    pub utc_millis: i128,
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

pub(crate) fn moment(now: SystemTime, utc_offset_minutes: i32) -> Moment {
    let millis: i128 = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i128,
        Err(e) => -(e.duration().as_millis() as i128),
    };
    let utc_seconds = millis.div_euclid(1000);
    let local_minutes = utc_seconds.div_euclid(60) + i128::from(utc_offset_minutes);
    let local_days = local_minutes.div_euclid(24 * 60);
    let minute_of_day = local_minutes.rem_euclid(24 * 60);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(local_days + 3).rem_euclid(7) as usize];

    Moment {
        hour: (minute_of_day / 60) as i64,
        minute: (minute_of_day % 60) as i64,
        weekday,
        utc_millis: millis,
    }
}

impl Moment {
    /// The UTC instant as a Cedar `datetime` literal, `YYYY-MM-DDThh:mm:ss.sssZ`.
    pub fn utc_text(&self) -> String {
        let seconds = self.utc_millis.div_euclid(1000);
        let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
        let second_of_day = seconds.rem_euclid(86_400);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60,
            self.utc_millis.rem_euclid(1000)
        )
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's algorithm).
fn civil_from_days(days: i128) -> (i128, i128, i128) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn reads_local_time_and_weekday() {
        // 2026-03-14T23:30:00Z is a Saturday.
        let t = at(1_773_531_000);
        let utc = moment(t, 0);
        assert_eq!((utc.hour, utc.minute, utc.weekday), (23, 30, "sat"));
        assert_eq!(utc.utc_text(), "2026-03-14T23:30:00.000Z");
        let berlin = moment(t, 60);
        assert_eq!((berlin.hour, berlin.minute, berlin.weekday), (0, 30, "sun"));
        let new_york = moment(t, -300);
        assert_eq!((new_york.hour, new_york.weekday), (18, "sat"));
    }

    #[test]
    fn handles_the_epoch_and_before() {
        assert_eq!(moment(UNIX_EPOCH, 0).utc_text(), "1970-01-01T00:00:00.000Z");
        assert_eq!(moment(UNIX_EPOCH, 0).weekday, "thu");
        let before = UNIX_EPOCH - Duration::from_secs(1);
        let m = moment(before, 0);
        assert_eq!((m.hour, m.minute, m.weekday), (23, 59, "wed"));
        assert_eq!(m.utc_text(), "1969-12-31T23:59:59.000Z");
    }

    #[test]
    fn leap_days() {
        // 2024-02-29T12:00:00Z
        assert_eq!(
            moment(at(1_709_208_000), 0).utc_text(),
            "2024-02-29T12:00:00.000Z"
        );
    }
}
