//! What a progress bar computes from a task's progress over time: its rate, the time it still
//! needs, and whether it has stalled. Samples come from the live updates the tab receives, so
//! these figures exist only in the browser; the server renders the bar without them.

use std::collections::VecDeque;

/// The span of history the rate is averaged over.
const RATE_WINDOW_MS: f64 = 20_000.0;
/// A rate needs samples at least this far apart to mean anything.
const MIN_RATE_SPAN_MS: f64 = 1_000.0;
/// A running task whose progress has not moved for this long is shown as stalled.
pub const STALL_AFTER_MS: f64 = 30_000.0;
const MAX_SAMPLES: usize = 64;

/// Samples of one task's processed count, newest last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProgressHistory {
    samples: VecDeque<(f64, i64)>,
    /// When the task last showed a change (count, stage or item).
    last_change_ms: Option<f64>,
}

impl ProgressHistory {
    /// Records the state seen at `now_ms`; `changed` tells whether anything moved since the
    /// previous sample (a stage or the current item counts, not just the count).
    pub fn record(&mut self, now_ms: f64, processed: i64, changed: bool) {
        if changed || self.last_change_ms.is_none() {
            self.last_change_ms = Some(now_ms);
        }
        if self
            .samples
            .back()
            .is_some_and(|&(_, last)| last > processed)
        {
            // The count went back (a retry started over): the old history says nothing now.
            self.samples.clear();
        }
        self.samples.push_back((now_ms, processed));
        while self.samples.len() > MAX_SAMPLES
            || self
                .samples
                .front()
                .is_some_and(|&(time, _)| now_ms - time > RATE_WINDOW_MS)
                && self.samples.len() > 2
        {
            self.samples.pop_front();
        }
    }

    /// Items per second over the recent window; `None` until there is enough history.
    pub fn rate_per_sec(&self) -> Option<f64> {
        let (&(first_ms, first), &(last_ms, last)) = (self.samples.front()?, self.samples.back()?);
        let span = last_ms - first_ms;
        (span >= MIN_RATE_SPAN_MS && last > first).then(|| (last - first) as f64 * 1000.0 / span)
    }

    /// Seconds until `total` is reached at the current rate.
    pub fn eta_secs(&self, processed: i64, total: Option<i64>) -> Option<f64> {
        let remaining = total? - processed;
        let rate = self.rate_per_sec()?;
        (remaining >= 0).then(|| remaining as f64 / rate)
    }

    /// Whether nothing moved for [`STALL_AFTER_MS`] up to `now_ms`.
    pub fn is_stalled(&self, now_ms: f64) -> bool {
        self.last_change_ms
            .is_some_and(|changed| now_ms - changed >= STALL_AFTER_MS)
    }
}

/// `45 s`, `3 min 20 s`, `2 h 5 min`: short and stable.
pub fn duration_text(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// `12.3/s` for slow rates, `1,204/s` for fast ones.
pub fn rate_text(per_sec: f64) -> String {
    if per_sec < 10.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{}/s", grouped(per_sec.round() as i64))
    }
}

/// `1,234,567`.
pub fn grouped(number: i64) -> String {
    let digits = number.unsigned_abs().to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if number < 0 {
        text.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta_come_from_the_recent_window() {
        let mut history = ProgressHistory::default();
        assert_eq!(history.rate_per_sec(), None);
        history.record(0.0, 0, true);
        history.record(500.0, 5, true);
        assert_eq!(history.rate_per_sec(), None, "half a second is too short");
        history.record(2_000.0, 20, true);
        assert_eq!(history.rate_per_sec(), Some(10.0));
        assert_eq!(history.eta_secs(20, Some(100)), Some(8.0));
        assert_eq!(history.eta_secs(20, None), None);
        // Old samples leave the window: the rate follows the recent pace.
        history.record(60_000.0, 620, true);
        history.record(62_000.0, 640, true);
        assert_eq!(history.rate_per_sec(), Some(10.0));
    }

    #[test]
    fn a_count_that_goes_back_starts_the_history_again() {
        let mut history = ProgressHistory::default();
        history.record(0.0, 50, true);
        history.record(2_000.0, 70, true);
        history.record(3_000.0, 0, true);
        assert_eq!(history.rate_per_sec(), None);
    }

    #[test]
    fn stalls_after_a_while_without_change() {
        let mut history = ProgressHistory::default();
        assert!(!history.is_stalled(1e9), "no history, no verdict");
        history.record(0.0, 3, true);
        history.record(20_000.0, 3, false);
        assert!(!history.is_stalled(29_999.0));
        assert!(history.is_stalled(30_000.0));
        history.record(31_000.0, 3, true);
        assert!(!history.is_stalled(40_000.0));
    }

    #[test]
    fn texts() {
        assert_eq!(duration_text(44.6), "45 s");
        assert_eq!(duration_text(200.0), "3 min 20 s");
        assert_eq!(duration_text(7_500.0), "2 h 5 min");
        assert_eq!(duration_text(-5.0), "0 s");
        assert_eq!(rate_text(2.345), "2.3/s");
        assert_eq!(rate_text(1204.4), "1,204/s");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(-1000), "-1,000");
        assert_eq!(grouped(999), "999");
    }
}
