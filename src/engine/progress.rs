//! Coalesced progress: jobs report every item; the runner takes what changed at its own pace —
//! a live update about ten times a second, a database write about once a second.

use std::sync::Mutex;

use serde_json::Value;

use crate::api::tasks::TaskProgress;

/// The progress of one running task, shared by its job (writer) and its runner (reader).
#[derive(Debug, Default)]
pub(super) struct ProgressTracker {
    state: Mutex<Tracked>,
}

#[derive(Debug, Default)]
struct Tracked {
    progress: TaskProgress,
    /// Detail reported and not yet logged.
    detail: Option<Value>,
    unpublished: bool,
    unsaved: bool,
}

/// What changed since the runner last looked.
pub(super) struct Changes {
    pub progress: TaskProgress,
    pub detail: Option<Value>,
}

impl ProgressTracker {
    fn update(&self, change: impl FnOnce(&mut TaskProgress)) {
        let mut state = self.state.lock().expect("progress lock");
        change(&mut state.progress);
        state.unpublished = true;
        state.unsaved = true;
    }

    pub fn set_total(&self, total: u64) {
        self.update(|progress| {
            progress.total_items = Some(saturating_i64(total));
            progress.progress =
                TaskProgress::percent(progress.processed_items, progress.total_items);
        });
    }

    pub fn advance(&self, count: u64, current_item: Option<&str>) {
        self.update(|progress| {
            progress.processed_items = progress
                .processed_items
                .saturating_add(saturating_i64(count));
            progress.progress =
                TaskProgress::percent(progress.processed_items, progress.total_items);
            if let Some(item) = current_item {
                // Reuses the string's buffer: no allocation per item in a tight loop.
                let current = progress.current_item.get_or_insert_with(String::new);
                current.clear();
                current.push_str(item);
            }
        });
    }

    pub fn set_stage(&self, stage: &str, message: Option<&str>) {
        self.update(|progress| {
            progress.stage = Some(stage.to_owned());
            progress.message = message.map(str::to_owned);
        });
    }

    pub fn set_detail(&self, detail: Value) {
        let mut state = self.state.lock().expect("progress lock");
        state.detail = Some(detail);
    }

    /// The current progress, whether or not it changed.
    pub fn snapshot(&self) -> TaskProgress {
        with_percent(self.state.lock().expect("progress lock").progress.clone())
    }

    /// Whether the progress changed since the last call (time for a live update).
    pub fn take_unpublished(&self) -> bool {
        std::mem::take(&mut self.state.lock().expect("progress lock").unpublished)
    }

    /// The progress and pending detail if either changed since the last save.
    pub fn take_unsaved(&self) -> Option<Changes> {
        let mut state = self.state.lock().expect("progress lock");
        let unsaved = std::mem::take(&mut state.unsaved);
        let detail = state.detail.take();
        (unsaved || detail.is_some()).then(|| Changes {
            progress: with_percent(state.progress.clone()),
            detail,
        })
    }
}

/// The progress with its percentage computed: done when read, not on every `advance`.
fn with_percent(mut progress: TaskProgress) -> TaskProgress {
    progress.progress = TaskProgress::percent(progress.processed_items, progress.total_items);
    progress
}

fn saturating_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_taken_once() {
        let tracker = ProgressTracker::default();
        assert!(!tracker.take_unpublished());
        tracker.set_total(4);
        tracker.advance(1, Some("a"));
        tracker.advance(1, Some("b"));
        assert!(tracker.take_unpublished());
        let published = tracker.snapshot();
        assert_eq!(published.processed_items, 2);
        assert_eq!(published.progress, 50.0);
        assert_eq!(published.current_item.as_deref(), Some("b"));
        assert!(!tracker.take_unpublished());
        let saved = tracker.take_unsaved().expect("unsaved");
        assert_eq!(saved.progress, published);
        assert!(tracker.take_unsaved().is_none());
    }

    #[test]
    fn progress_never_passes_100_percent() {
        let tracker = ProgressTracker::default();
        tracker.set_total(3);
        tracker.advance(10, None);
        assert_eq!(tracker.snapshot().progress, 100.0);
        assert_eq!(tracker.snapshot().processed_items, 10);
    }

    #[test]
    fn detail_is_kept_until_saved() {
        let tracker = ProgressTracker::default();
        tracker.set_detail(serde_json::json!({ "batch": 1 }));
        tracker.set_detail(serde_json::json!({ "batch": 2 }));
        let saved = tracker.take_unsaved().expect("detail pending");
        assert_eq!(saved.detail, Some(serde_json::json!({ "batch": 2 })));
        assert!(tracker.take_unsaved().is_none());
    }
}
