//! Formatting shared by pages. Everything here gives the same text on the server and in the
//! browser, so hydration never sees a difference.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// `2026-11-28 16:28 UTC`. Written out by hand rather than with `format()`, whose format-string
/// machinery would add to the size of the WASM bundle.
pub fn date_time(time: DateTime<Utc>) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute()
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn formats_to_the_minute_in_utc() {
        let time = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 59).unwrap();
        assert_eq!(date_time(time), "2026-01-02 03:04 UTC");
    }
}
