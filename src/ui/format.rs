//! Formatting shared by pages. Everything here gives the same text on the server and in the
//! browser, so hydration never sees a difference.

use chrono::{DateTime, Datelike, Timelike, Utc};
use leptos_router::params::ParamsMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

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

/// How long ago `time` was, as people say it: "just now", "3 min ago", "5 h ago", "yesterday",
/// "4 days ago", then the date. A time slightly in the future (clocks differ between the server
/// and the browser) counts as "just now".
pub fn time_ago(time: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - time).num_minutes();
    match minutes {
        ..1 => "just now".to_owned(),
        1..60 => format!("{minutes} min ago"),
        60..1440 => format!("{} h ago", minutes / 60),
        1440..2880 => "yesterday".to_owned(),
        2880..10080 => format!("{} days ago", minutes / 1440),
        _ => format!("{:04}-{:02}-{:02}", time.year(), time.month(), time.day()),
    }
}

/// What a query value keeps as it is: RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `path` with a query of the `pairs` that have a value, each value percent-encoded: the URL
/// of a filtered view, which can be bookmarked.
pub fn with_query<const N: usize>(path: &str, pairs: [(&str, Option<String>); N]) -> String {
    let query: Vec<String> = pairs
        .into_iter()
        .filter_map(|(name, value)| {
            value.map(|value| format!("{name}={}", utf8_percent_encode(&value, QUERY_VALUE)))
        })
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// The value of query parameter `name`, trimmed; `None` when it is absent or blank.
pub fn query_text(query: &ParamsMap, name: &str) -> Option<String> {
    query
        .get(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn a_filtered_view_has_only_its_set_values_in_its_query_encoded() {
        assert_eq!(with_query("/tasks", [("q", None)]), "/tasks");
        assert_eq!(
            with_query(
                "/articles",
                [
                    ("status", Some("approved".to_owned())),
                    ("topic", None),
                    ("q", Some("rust & tokio/1.0 ~é".to_owned())),
                ]
            ),
            "/articles?status=approved&q=rust%20%26%20tokio%2F1.0%20~%C3%A9"
        );
    }

    #[test]
    fn formats_to_the_minute_in_utc() {
        let time = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 59).unwrap();
        assert_eq!(date_time(time), "2026-01-02 03:04 UTC");
    }

    #[test]
    fn says_how_long_ago_in_words() {
        let now = Utc.with_ymd_and_hms(2026, 3, 20, 12, 0, 0).unwrap();
        let ago = |duration: Duration| time_ago(now - duration, now);
        assert_eq!(
            ago(Duration::seconds(-30)),
            "just now",
            "a clock ahead of ours"
        );
        assert_eq!(ago(Duration::zero()), "just now");
        assert_eq!(ago(Duration::seconds(59)), "just now");
        assert_eq!(ago(Duration::minutes(1)), "1 min ago");
        assert_eq!(ago(Duration::minutes(59)), "59 min ago");
        assert_eq!(ago(Duration::minutes(60)), "1 h ago");
        assert_eq!(ago(Duration::hours(23) + Duration::minutes(59)), "23 h ago");
        assert_eq!(ago(Duration::hours(24)), "yesterday");
        assert_eq!(ago(Duration::hours(47)), "yesterday");
        assert_eq!(ago(Duration::hours(48)), "2 days ago");
        assert_eq!(ago(Duration::days(6)), "6 days ago");
        assert_eq!(ago(Duration::days(7)), "2026-03-13");
        assert_eq!(ago(Duration::days(400)), "2025-02-13");
    }
}
