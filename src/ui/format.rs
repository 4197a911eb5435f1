//! Formatting shared by pages. Everything here gives the same text on the server and in the
//! browser, so hydration never sees a difference.

use chrono::{DateTime, Utc};

/// `2026-11-28 16:28 UTC`.
pub fn date_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}
